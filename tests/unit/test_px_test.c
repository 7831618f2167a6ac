/*
 * test_px_test.c - the harness's process helpers, which every integration test
 * leans on: spawning with a piped stdout, reading lines with a timeout, and
 * stopping a child that may ignore the polite signal.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "phuxanh/clock.h"
#include "px_test.h"

/* What it returns is a port a server can then listen on, every time (a port in use, or one
 * on another address, would fail the bind here). */
static void test_free_port(void)
{
    for (int i = 0; i < 20; i++) {
        int port = px_test_free_port();
        PX_REQUIRE(port > 0 && port < 65536);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        PX_REQUIRE(fd >= 0);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        PX_CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
        PX_CHECK(listen(fd, 1) == 0);
        close(fd);
    }
}

static void test_spawn_read_stop(void)
{
    char *argv[] = {"/bin/sh", "-c", "echo first; printf 'second\\n'; exec sleep 30", NULL};
    int out = -1;
    pid_t pid = px_test_spawn(argv, &out);
    PX_REQUIRE(pid > 0 && out >= 0);
    PX_CHECK(getpgid(pid) == pid);
    char line[64];
    PX_CHECK_INT_EQ(px_test_read_line(out, line, sizeof line, 2000), 0);
    PX_CHECK_STR_EQ(line, "first");
    PX_CHECK_INT_EQ(px_test_read_line(out, line, sizeof line, 2000), 0);
    PX_CHECK_STR_EQ(line, "second");
    /* Nothing more is coming: a timeout, not a hang. */
    int64_t start = px_clock_us();
    PX_CHECK_INT_EQ(px_test_read_line(out, line, sizeof line, 100), -1);
    PX_CHECK(px_clock_us() - start < 1000 * 1000);
    PX_CHECK_INT_EQ(px_test_stop(pid, SIGTERM, 2000), 128 + SIGTERM);
    /* The writer is gone: end of file. */
    PX_CHECK_INT_EQ(px_test_read_line(out, line, sizeof line, 1000), -1);
    close(out);
}

static void test_exit_status_and_long_line(void)
{
    char *argv[] = {"/bin/sh", "-c", "printf '0123456789abcdef\\nok\\n'; exit 7", NULL};
    int out = -1;
    pid_t pid = px_test_spawn(argv, &out);
    PX_REQUIRE(pid > 0);
    char small[8];
    PX_CHECK_INT_EQ(px_test_read_line(out, small, sizeof small, 2000), 0);
    PX_CHECK_STR_EQ(small, "0123456");
    PX_CHECK_INT_EQ(px_test_read_line(out, small, sizeof small, 2000), 0);
    PX_CHECK_STR_EQ(small, "ok");
    PX_CHECK_INT_EQ(px_test_stop(pid, 0, 2000), 7);
    close(out);
}

static void test_stop_escalates(void)
{
    char *argv[] = {"/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done", NULL};
    int out = -1;
    pid_t pid = px_test_spawn(argv, &out);
    PX_REQUIRE(pid > 0);
    char line[16];
    PX_CHECK_INT_EQ(px_test_read_line(out, line, sizeof line, 2000), 0);
    int64_t start = px_clock_us();
    PX_CHECK_INT_EQ(px_test_stop(pid, SIGTERM, 200), -1);
    PX_CHECK(px_clock_us() - start < 2000 * 1000);
    PX_CHECK(kill(pid, 0) != 0);
    close(out);
}

static void test_bin_dir(void)
{
    const char *dir = px_test_bin_dir();
    PX_CHECK(dir && dir[0] == '/');
    PX_CHECK(access(dir, F_OK) == 0);
}

static const px_test_case_t cases[] = {
    {"free_port", test_free_port},
    {"spawn_read_stop", test_spawn_read_stop},
    {"exit_status_and_long_line", test_exit_status_and_long_line},
    {"stop_escalates", test_stop_escalates},
    {"bin_dir", test_bin_dir},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, cases);
}
