/*
 * px_test.c - the test harness: checks, the case runner, throwaway databases,
 * and process helpers for tests that start real programs.
 *
 * Cases run one after another in this process; a crash ends the run and ctest
 * reports it. State here (the current case's failure count, the databases to
 * drop) is global because a test binary is one main and these are its globals.
 *
 * Databases are named <prefix>_<pid>_<counter> so that test binaries running in
 * parallel against one cluster never collide, and dropped WITH (FORCE) at the
 * end so a server a test left running cannot keep one alive.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, asprintf; CMake defines it for the whole tree */
#endif
#include "px_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Longest database name PostgreSQL keeps (NAMEDATALEN - 1). */
#define S_DB_NAME_MAX 63
/* Databases one test binary may create before it is surely doing something wrong. */
#define S_DBS_MAX 64

static int s_case_failures;
static char *s_dbs[S_DBS_MAX];
static int s_ndbs;

/* ------------------------------------------------------------------ checks */

void px_test__fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  %s:%d: ", file, line);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    s_case_failures++;
}

int px_test__str_eq(const char *a, const char *b)
{
    if (!a || !b) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

/* --------------------------------------------------------------- databases */

static const char *s_admin_url(void)
{
    const char *url = getenv("PX_TEST_PG_URL");
    if (!url || !*url) {
        fprintf(stderr, "PX_TEST_PG_URL is not set: this test needs PostgreSQL. Set it to a URL "
                        "for the superuser's 'postgres' database, e.g. "
                        "postgresql://postgres@127.0.0.1:5432/postgres (tests/run.sh does).\n");
        exit(1);
    }
    return url;
}

static PGconn *s_admin_connect(void)
{
    PGconn *conn = PQconnectdb(s_admin_url());
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "px_test: cannot connect to PX_TEST_PG_URL: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

int px_test_admin_exec(const char *sql)
{
    int rc = -1;
    PGresult *res = NULL;
    PGconn *conn = s_admin_connect();
    if (!conn) {
        goto done;
    }
    res = PQexec(conn, sql);
    ExecStatusType es = PQresultStatus(res);
    if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK) {
        fprintf(stderr, "px_test: %s: %s", sql, PQresultErrorMessage(res));
        goto done;
    }
    rc = 0;

done:
    PQclear(res);
    PQfinish(conn);
    return rc;
}

char *px_test_admin_scalar(const char *sql)
{
    char *out = NULL;
    PGresult *res = NULL;
    PGconn *conn = s_admin_connect();
    if (!conn) {
        goto done;
    }
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "px_test: %s: %s", sql, PQresultErrorMessage(res));
        goto done;
    }
    if (PQntuples(res) > 0 && PQnfields(res) > 0) {
        out = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    }

done:
    PQclear(res);
    PQfinish(conn);
    return out;
}

/* The admin URL with its database replaced by name. A URI's path is its database; a
 * key=value string takes a later dbname over an earlier one. */
static char *s_url_for(const char *admin, const char *name)
{
    char *out = NULL;
    const char *scheme_end = strstr(admin, "://");
    if (strncmp(admin, "postgres", 8) == 0 && scheme_end) {
        const char *authority = scheme_end + 3;
        const char *path = authority + strcspn(authority, "/?");
        const char *query = path + strcspn(path, "?");
        if (asprintf(&out, "%.*s/%s%s", (int)(path - admin), admin, name, query) < 0) {
            out = NULL;
        }
    } else if (asprintf(&out, "%s dbname=%s", admin, name) < 0) {
        out = NULL;
    }
    return out;
}

char *px_test_db_new(const char *prefix)
{
    static int counter;
    const char *admin = s_admin_url();
    for (const char *p = prefix; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            fprintf(stderr, "px_test_db_new: prefix '%s' must be [a-z0-9_]\n", prefix);
            exit(1);
        }
    }
    char name[S_DB_NAME_MAX + 1];
    int n = snprintf(name, sizeof name, "%s_%d_%d", prefix, (int)getpid(), ++counter);
    if (n < 0 || n >= (int)sizeof name || s_ndbs >= S_DBS_MAX) {
        fprintf(stderr, "px_test_db_new: prefix '%s' too long or too many databases\n", prefix);
        exit(1);
    }
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
    char *url = s_url_for(admin, name);
    if (!url || px_test_admin_exec(sql) != 0) {
        fprintf(stderr, "px_test_db_new: cannot create database %s\n", name);
        exit(1);
    }
    s_dbs[s_ndbs++] = strdup(name);
    return url;
}

static void s_drop_dbs(void)
{
    bool keep = getenv("PX_TEST_KEEP_DB") != NULL;
    for (int i = 0; i < s_ndbs; i++) {
        if (keep) {
            printf("# kept database %s\n", s_dbs[i]);
        } else if (s_dbs[i]) {
            char sql[128];
            snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", s_dbs[i]);
            px_test_admin_exec(sql);
        }
        free(s_dbs[i]);
        s_dbs[i] = NULL;
    }
    s_ndbs = 0;
}

/* --------------------------------------------------------------- processes */

int px_test_free_port(void)
{
    int port = -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
}

pid_t px_test_spawn(char *const argv[], int *stdout_fd)
{
    int pipefd[2] = {-1, -1};
    if (stdout_fd && pipe2(pipefd, O_CLOEXEC) != 0) {
        return -1;
    }
    /* Whatever sits in our stdio buffers would otherwise be written twice if exec fails. */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        if (stdout_fd) {
            close(pipefd[0]);
            close(pipefd[1]);
        }
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        /* px_test_main ignores SIGPIPE, and an ignored signal stays ignored across exec. */
        signal(SIGPIPE, SIG_DFL);
        if (stdout_fd) {
            dup2(pipefd[1], STDOUT_FILENO);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "px_test_spawn: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    /* Also here, so the group exists before we might signal it, whichever runs first. */
    setpgid(pid, pid);
    if (stdout_fd) {
        close(pipefd[1]);
        *stdout_fd = pipefd[0];
    }
    return pid;
}

static long long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int px_test_read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    long long deadline = s_now_ms() + timeout_ms;
    size_t len = 0;
    if (cap > 0) {
        buf[0] = '\0';
    }
    /* A byte at a time, so nothing past the newline is consumed and lost to the next call. */
    for (;;) {
        long long left = deadline - s_now_ms();
        if (left <= 0) {
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc <= 0) {
            return -1;
        }
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        if (c == '\n') {
            return 0;
        }
        if (len + 1 < cap) {
            buf[len++] = c;
            buf[len] = '\0';
        }
    }
}

static int s_exit_code(int status)
{
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

int px_test_stop(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0) {
        return -1;
    }
    kill(pid, sig);
    long long deadline = s_now_ms() + timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return s_exit_code(status);
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (s_now_ms() >= deadline) {
            break;
        }
        usleep(10 * 1000);
    }
    fprintf(stderr, "px_test_stop: pid %d ignored signal %d for %d ms; killing it\n", (int)pid, sig,
            timeout_ms);
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return -1;
}

const char *px_test_bin_dir(void)
{
    const char *env = getenv("PX_BIN_DIR");
    if (env && *env) {
        return env;
    }
#ifdef PX_BIN_DIR
    return PX_BIN_DIR;
#else
    /* Test binaries live in <build>/tests/<kind>/; the build root is three levels up. */
    static char dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0) {
        return ".";
    }
    dir[n] = '\0';
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) {
            return "/";
        }
        *slash = '\0';
    }
    return dir;
#endif
}

/* ------------------------------------------------------------------ runner */

int px_test_main(int argc, char **argv, const px_test_case_t *cases)
{
    int passed = 0, failed = 0;
    const char *only = argc > 1 ? argv[1] : NULL;
    bool found = false;
    /* Line-buffered so output interleaves sensibly with children's; SIGPIPE ignored so a test
     * writing to a pipe whose reader died sees EPIPE instead of dying without a word. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);

    for (const px_test_case_t *c = cases; c->name; c++) {
        if (only && strcmp(only, c->name) != 0) {
            continue;
        }
        found = true;
        s_case_failures = 0;
        c->fn();
        if (s_case_failures == 0) {
            printf("ok %s\n", c->name);
            passed++;
        } else {
            printf("FAIL %s\n", c->name);
            failed++;
        }
        fflush(stdout);
    }
    if (only && !found) {
        printf("no case named %s\n", only);
        failed++;
    }
    s_drop_dbs();
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed == 0 ? 0 : 1;
}
