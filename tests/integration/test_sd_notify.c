/*
 * test_sd_notify.c - the sd_notify datagram on real unix sockets: to a path, to
 * an abstract name, nobody listening, names refused; and a real service
 * (px-testd, on px_service_main) and the gateway telling READY=1 once they
 * serve and STOPPING=1 when SIGTERM arrives, as systemd's Type=notify expects.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "phuxanh/notify.h"
#include "px_test.h"
#include "testd_proc.h"

/* A bound datagram socket standing in for systemd's: name is a path or '@'+abstract name. */
static int s_listen(const char *name)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t len = strlen(name);
    memcpy(addr.sun_path, name, len);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (name[0] == '@') {
        addr.sun_path[0] = '\0';
    } else {
        unlink(name);
        alen++;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, alen) != 0) {
        perror("bind");
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

/* One datagram into buf (NUL-terminated), or -1 after timeout_ms. */
static int s_recv(int fd, char *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1) {
        return -1;
    }
    ssize_t n = recv(fd, buf, cap - 1, 0);
    if (n < 0) {
        return -1;
    }
    buf[n] = '\0';
    return 0;
}

static void s_path(char *buf, size_t cap, const char *what)
{
    snprintf(buf, cap, "/tmp/px-notify-%d-%s", (int)getpid(), what);
}

static void test_to_path(void)
{
    char path[108], got[256];
    s_path(path, sizeof path, "path");
    int fd = s_listen(path);
    PX_REQUIRE(fd >= 0);
    px_status_t st;
    PX_CHECK_INT_EQ(px_notify_to(path, "READY=1", &st), PX_OK);
    PX_CHECK(s_recv(fd, got, sizeof got, 2000) == 0);
    PX_CHECK_STR_EQ(got, "READY=1");
    close(fd);
    unlink(path);
}

static void test_to_abstract_name(void)
{
    char name[108], got[256];
    snprintf(name, sizeof name, "@px-notify-test-%d", (int)getpid());
    int fd = s_listen(name);
    PX_REQUIRE(fd >= 0);
    px_status_t st;
    PX_CHECK_INT_EQ(px_notify_to(name, "STOPPING=1", &st), PX_OK);
    PX_CHECK(s_recv(fd, got, sizeof got, 2000) == 0);
    PX_CHECK_STR_EQ(got, "STOPPING=1");
    close(fd);
}

static void test_from_environment(void)
{
    char path[108], got[256];
    s_path(path, sizeof path, "env");
    int fd = s_listen(path);
    PX_REQUIRE(fd >= 0);
    px_status_t st;
    setenv("NOTIFY_SOCKET", path, 1);
    PX_CHECK_INT_EQ(px_notify("READY=1\nSTATUS=serving", &st), PX_OK);
    PX_CHECK(s_recv(fd, got, sizeof got, 2000) == 0);
    PX_CHECK_STR_EQ(got, "READY=1\nSTATUS=serving");
    /* Unset or empty: not under a service manager, nothing to tell and no error. */
    unsetenv("NOTIFY_SOCKET");
    PX_CHECK_INT_EQ(px_notify("READY=1", &st), PX_OK);
    setenv("NOTIFY_SOCKET", "", 1);
    PX_CHECK_INT_EQ(px_notify("READY=1", &st), PX_OK);
    unsetenv("NOTIFY_SOCKET");
    PX_CHECK(s_recv(fd, got, sizeof got, 200) == -1);
    close(fd);
    unlink(path);
}

static void test_nobody_listening(void)
{
    char path[108];
    s_path(path, sizeof path, "gone");
    unlink(path);
    px_status_t st;
    PX_CHECK_INT_EQ(px_notify_to(path, "READY=1", &st), PX_UNAVAILABLE);
    PX_CHECK(strstr(st.message, path) != NULL);
}

static void test_names_refused(void)
{
    px_status_t st;
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[0] = '/';
    longname[sizeof longname - 1] = '\0';
    const char *bad[] = {"relative/path", "@", "/", "", longname, NULL};
    for (int i = 0; bad[i]; i++) {
        PX_CHECK_INT_EQ(px_notify_to(bad[i], "READY=1", &st), PX_INVALID_ARGUMENT);
    }
    PX_CHECK_INT_EQ(px_notify_to(NULL, "READY=1", &st), PX_INVALID_ARGUMENT);
}

/* px-testd runs px_service_main as every service does. READY=1 only after it serves (its
 * READY line on stdout came first, so the endpoint answers); STOPPING=1 on SIGTERM. */
static void test_service_ready_and_stopping(void)
{
    char name[108], got[256];
    snprintf(name, sizeof name, "@px-notify-svc-%d", (int)getpid());
    int fd = s_listen(name);
    PX_REQUIRE(fd >= 0);
    setenv("NOTIFY_SOCKET", name, 1);
    testd_t t;
    int started = testd_start(&t, NULL, NULL);
    unsetenv("NOTIFY_SOCKET");
    if (started != 0) {
        close(fd);
        PX_REQUIRE(started == 0);
    }
    PX_CHECK(s_recv(fd, got, sizeof got, 5000) == 0);
    PX_CHECK_STR_EQ(got, "READY=1");
    /* Nothing more while it serves. */
    PX_CHECK(s_recv(fd, got, sizeof got, 200) == -1);
    kill(t.pid, SIGTERM);
    PX_CHECK(s_recv(fd, got, sizeof got, 5000) == 0);
    PX_CHECK_STR_EQ(got, "STOPPING=1");
    PX_CHECK_INT_EQ(testd_stop(&t, SIGTERM), 0);
    close(fd);
}

/* The gateway, with backends that are not there (it serves its own routes all the same). */
static void test_gateway_ready_and_stopping(void)
{
    char name[108], got[256], tokens[128], listen[64];
    snprintf(name, sizeof name, "@px-notify-gw-%d", (int)getpid());
    s_path(tokens, sizeof tokens, "tokens");
    FILE *f = fopen(tokens, "w");
    PX_REQUIRE(f);
    fclose(f);
    int port = px_test_free_port();
    PX_REQUIRE(port > 0);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    int fd = s_listen(name);
    PX_REQUIRE(fd >= 0);
    setenv("NOTIFY_SOCKET", name, 1);
    setenv("PX_TOKENS_FILE", tokens, 1);
    setenv("PX_HTTP_LISTEN", listen, 1);
    testd_t t;
    const char *args[] = {NULL};
    int started = proc_start(&t, "services/gateway/px-gateway", args);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("PX_TOKENS_FILE");
    unsetenv("PX_HTTP_LISTEN");
    if (started != 0) {
        close(fd);
        unlink(tokens);
        PX_REQUIRE(started == 0);
    }
    PX_CHECK(s_recv(fd, got, sizeof got, 5000) == 0);
    PX_CHECK_STR_EQ(got, "READY=1");
    kill(t.pid, SIGTERM);
    PX_CHECK(s_recv(fd, got, sizeof got, 5000) == 0);
    PX_CHECK_STR_EQ(got, "STOPPING=1");
    PX_CHECK_INT_EQ(testd_stop(&t, SIGTERM), 0);
    close(fd);
    unlink(tokens);
}

int main(int argc, char **argv)
{
    static const px_test_case_t cases[] = {
        {"to_path", test_to_path},
        {"to_abstract_name", test_to_abstract_name},
        {"from_environment", test_from_environment},
        {"nobody_listening", test_nobody_listening},
        {"names_refused", test_names_refused},
        {"service_ready_and_stopping", test_service_ready_and_stopping},
        {"gateway_ready_and_stopping", test_gateway_ready_and_stopping},
        {NULL, NULL},
    };
    return px_test_main(argc, argv, cases);
}
