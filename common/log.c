/*
 * log.c - the program-level log sink (see log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

static const char *log_prog = "keywarden";
static enum kw_log_sink log_sink = KW_LOG_STDERR;
static int log_max = LOG_INFO;

void
kw_log_init(const char *prog, enum kw_log_sink sink, int max_level)
{
	log_prog = prog;
	log_sink = sink;
	log_max = max_level;
	if (sink == KW_LOG_SYSLOG)
		openlog(prog, LOG_PID, LOG_AUTHPRIV);
}

void
kw_log_msg(int level, const char *func, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (log_sink == KW_LOG_SYSLOG) {
		syslog(level, "%s", msg);
		return;
	}
	/* Function names help developers; users see them only in debug. */
	if (log_max >= LOG_DEBUG)
		fprintf(stderr, "%s: %s: %s%s\n", log_prog, func,
		    level <= LOG_ERR ? "error: " : level == LOG_WARNING ? "warning: " : "", msg);
	else
		fprintf(stderr, "%s: %s%s\n", log_prog,
		    level == LOG_WARNING ? "warning: " : "", msg);
}
