/*
 * px_test.h - the small harness every phuxanh test links against.
 *
 * A test file is a set of void functions and, at its end, a table of named
 * cases handed to px_test_main. Checks record a failure and carry on, so one
 * run shows every broken expectation; PX_REQUIRE stops the case when going on
 * would only crash. Helpers create throwaway databases on the cluster named by
 * PX_TEST_PG_URL and start, read and stop the programs under test.
 */
#ifndef PX_TEST_H
#define PX_TEST_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} px_test_case_t;

/* Internal to the macros below. */
void px_test__fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int px_test__str_eq(const char *a, const char *b);

/* Records "file:line: cond" as a failure of the current case and continues. */
#define PX_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            px_test__fail(__FILE__, __LINE__, "%s", #cond);                                        \
        }                                                                                          \
    } while (0)

/* Compares as long long and prints both values on failure. */
#define PX_CHECK_INT_EQ(a, b)                                                                      \
    do {                                                                                           \
        long long px__a = (long long)(a);                                                          \
        long long px__b = (long long)(b);                                                          \
        if (px__a != px__b) {                                                                      \
            px_test__fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b, px__a, px__b);    \
        }                                                                                          \
    } while (0)

/* Compares C strings (NULL equals only NULL) and prints both on failure. */
#define PX_CHECK_STR_EQ(a, b)                                                                      \
    do {                                                                                           \
        const char *px__a = (a);                                                                   \
        const char *px__b = (b);                                                                   \
        if (!px_test__str_eq(px__a, px__b)) {                                                      \
            px_test__fail(__FILE__, __LINE__, "%s == %s (\"%s\" != \"%s\")", #a, #b,               \
                          px__a ? px__a : "(null)", px__b ? px__b : "(null)");                     \
        }                                                                                          \
    } while (0)

/* Records a failure and returns from the current (void) test function. */
#define PX_REQUIRE(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            px_test__fail(__FILE__, __LINE__, "required: %s", #cond);                              \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Runs every case (or only the one named by argv[1]), printing "ok name" or "FAIL name" per
 * case and finally "N passed, M failed". Returns 0 only when nothing failed. cases ends with
 * {NULL, NULL}. Databases made by px_test_db_new are dropped at the end unless
 * PX_TEST_KEEP_DB is set. */
int px_test_main(int argc, char **argv, const px_test_case_t *cases);

/* Creates database <prefix>_<pid>_<counter> on the cluster of PX_TEST_PG_URL (a URL to the
 * superuser's 'postgres' database) and returns a malloc'd URL for it. prefix is letters,
 * digits and underscores. Without PX_TEST_PG_URL it says so and exit(1)s; on failure too. */
char *px_test_db_new(const char *prefix);
/* Runs sql on PX_TEST_PG_URL. 0, or -1 after printing the error. */
int px_test_admin_exec(const char *sql);
/* Runs sql on PX_TEST_PG_URL and returns the first column of its first row, malloc'd ("" for
 * SQL NULL), or NULL after printing the error (or when there is no row). */
char *px_test_admin_scalar(const char *sql);

/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int px_test_free_port(void);

/* fork+exec of argv (argv[0] a path, or a name looked up in PATH), in its own process group.
 * Its stdout is a pipe whose read end goes to *stdout_fd when stdout_fd is not NULL; stderr is
 * inherited. Returns the pid, or -1. */
pid_t px_test_spawn(char *const argv[], int *stdout_fd);
/* Reads one line without its newline into buf (cut to cap-1 bytes, the rest discarded).
 * 0, or -1 on timeout or end of file. */
int px_test_read_line(int fd, char *buf, size_t cap, int timeout_ms);
/* kill(pid, sig), then waits up to timeout_ms for it to exit, SIGKILLing its process group
 * after that. Returns its exit status (128 + n when killed by signal n), or -1 when it had to
 * be SIGKILLed or could not be waited for. */
int px_test_stop(pid_t pid, int sig, int timeout_ms);

/* The build tree's root: env PX_BIN_DIR, else the one this library was compiled for. */
const char *px_test_bin_dir(void);

#endif
