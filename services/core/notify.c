/*
 * notify.c - the sd_notify datagram, written by hand.
 *
 * The protocol is one datagram of "KEY=VALUE" lines to the unix socket named by
 * NOTIFY_SOCKET; libsystemd is not needed for that, and a build or a container
 * without it keeps working. An abstract socket name ('@' in the variable) is a
 * leading NUL byte in sun_path, and its address length must count only the
 * name's bytes, not the rest of sun_path. The send never blocks the service
 * (MSG_DONTWAIT): a manager that does not read in time only misses a state.
 */
#include "phuxanh/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

px_code_t px_notify_to(const char *socket_path, const char *state, px_status_t *st)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t len = socket_path ? strlen(socket_path) : 0;
    if (len < 2 || (socket_path[0] != '/' && socket_path[0] != '@') ||
        len > sizeof addr.sun_path - 1) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "NOTIFY_SOCKET: not an absolute path or an '@' abstract name of at "
                             "most %zu bytes",
                             sizeof addr.sun_path - 1);
    }
    memcpy(addr.sun_path, socket_path, len);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (socket_path[0] == '@') {
        addr.sun_path[0] = '\0';
    } else {
        alen++; /* a path's terminating NUL is part of its address */
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return px_status_set(st, PX_UNAVAILABLE, "notify: socket: %s", strerror(errno));
    }
    size_t n = strlen(state);
    ssize_t sent;
    do {
        sent = sendto(fd, state, n, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&addr, alen);
    } while (sent < 0 && errno == EINTR);
    int err = errno;
    close(fd);
    if (sent < 0 || (size_t)sent != n) {
        return px_status_set(st, PX_UNAVAILABLE, "notify: %s: %s", socket_path,
                             sent < 0 ? strerror(err) : "short send");
    }
    return PX_OK;
}

px_code_t px_notify(const char *state, px_status_t *st)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) {
        return PX_OK;
    }
    return px_notify_to(path, state, st);
}
