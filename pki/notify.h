/*
 * The systemd notification protocol (sd_notify(3)) without libsystemd: one datagram of
 * "KEY=VALUE\n" lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an
 * abstract name starting with '@'). Without $NOTIFY_SOCKET nothing is sent, so the
 * daemons behave the same outside systemd.
 */
#ifndef REVO_PKI_NOTIFY_H
#define REVO_PKI_NOTIFY_H

/**
 * Send @state (e.g. "READY=1\nSTATUS=serving") to the service manager. Returns 1 when
 * sent, 0 when there is no manager to tell, -1 when sending failed (errors are not
 * fatal to a daemon: the caller may log and go on).
 */
int revo_notify(const char *state);

/** printf-style revo_notify. */
int revo_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
