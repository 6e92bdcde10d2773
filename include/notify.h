/* The systemd readiness protocol (sd_notify(3)) without libsystemd: one datagram per state
 * change to the AF_UNIX socket named by $NOTIFY_SOCKET. */
#ifndef WEBSOCK_NOTIFY_H
#define WEBSOCK_NOTIFY_H

/* Sends state (e.g. "READY=1\nMAINPID=42") if $NOTIFY_SOCKET is set. Returns 1 if sent,
 * 0 if no service manager asked for it, -1 with errno on failure. */
int notify_service_manager(const char *state);

#endif
