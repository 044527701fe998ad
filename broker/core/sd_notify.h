/*
 * notify.h - systemd readiness notification (Type=notify).
 */
#ifndef KW_NOTIFY_H
#define KW_NOTIFY_H

/*
 * Send state (e.g. "READY=1") to $NOTIFY_SOCKET when systemd set it; a no-op
 * otherwise.  Returns 0, or -1 when the message could not be sent.
 */
int kw_sd_notify(const char *state);

#endif
