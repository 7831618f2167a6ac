/*
 * notify.h - readiness and stopping told to the service manager (systemd's
 * sd_notify protocol), without linking libsystemd.
 *
 * Under a Type=notify unit systemd sets NOTIFY_SOCKET to a unix datagram socket
 * (a path, or an abstract name written with a leading '@'); a process tells it
 * "READY=1" once it serves and "STOPPING=1" when a stop begins. Outside systemd
 * the variable is unset and telling is a no-op, so every process may call it.
 */
#ifndef PHUXANH_NOTIFY_H
#define PHUXANH_NOTIFY_H

#include "phuxanh/status.h"

/* Sends state ("READY=1", "STOPPING=1", "STATUS=...": newline-separated assignments) as one
 * datagram to socket_path: an absolute path, or '@' then an abstract socket name. OK when
 * sent; INVALID_ARGUMENT for a name that is neither or too long; UNAVAILABLE when nobody
 * takes the datagram. */
px_code_t px_notify_to(const char *socket_path, const char *state, px_status_t *st);

/* px_notify_to($NOTIFY_SOCKET, state); OK without sending when NOTIFY_SOCKET is unset or
 * empty (not started by a service manager that listens). */
px_code_t px_notify(const char *state, px_status_t *st);

#endif
