/*
 * log.h - diagnostics for programs.  Library code returns error codes; the
 * programs (broker, CLI, PAM module) decide where messages go by choosing a
 * sink: stderr for a program at a terminal, syslog inside PAM or a daemon.
 */
#ifndef KW_LOG_H
#define KW_LOG_H

#include <syslog.h>

#include "common/macros.h"

enum kw_log_sink {
	KW_LOG_STDERR,		/* "prog: message" on stderr */
	KW_LOG_SYSLOG,		/* syslog(3) with the program's ident */
};

/* Choose where messages go and the program name they carry (borrowed). */
void kw_log_init(const char *prog, enum kw_log_sink sink, int max_level);

/* Log at a syslog level; the message never contains secrets (callers' duty). */
void kw_log_msg(int level, const char *func, const char *fmt, ...) KW_PRINTF(3, 4);

#define kw_log_error(...)	kw_log_msg(LOG_ERR, __func__, __VA_ARGS__)
#define kw_log_warn(...)	kw_log_msg(LOG_WARNING, __func__, __VA_ARGS__)
#define kw_log_info(...)	kw_log_msg(LOG_INFO, __func__, __VA_ARGS__)
#define kw_log_debug(...)	kw_log_msg(LOG_DEBUG, __func__, __VA_ARGS__)

#endif
