/*
 * test_config.c - defaults, PX_* variables and flags in that order of
 * precedence, both flag forms, --help, unknown flags, missing values and
 * integer bounds.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phuxanh/config.h"
#include "px_test.h"

static const px_config_option_t options[] = {
    {"listen", "PX_TEST_LISTEN", "tcp://127.0.0.1:7001", "endpoint to bind"},
    {"db", "PX_TEST_DB", NULL, "PostgreSQL URL"},
    {"workers", "PX_TEST_WORKERS", "4", "worker threads"},
    {"log-level", "PX_TEST_LOG_LEVEL", "info", "debug, info, warn or error"},
    {NULL, NULL, NULL, NULL},
};

static void clear_env(void)
{
    for (const px_config_option_t *o = options; o->name; o++) {
        unsetenv(o->env);
    }
}

static px_config_t *parse(int argc, char **argv, bool *help, px_status_t *st)
{
    return px_config_parse("pxtest", "a test program", options, argc, argv, help, st);
}

static void test_defaults(void)
{
    clear_env();
    char *argv[] = {"pxtest", NULL};
    bool help = true;
    px_status_t st;
    px_config_t *cfg = parse(1, argv, &help, &st);
    PX_REQUIRE(cfg);
    PX_CHECK(!help);
    PX_CHECK_INT_EQ(st.code, PX_OK);
    PX_CHECK_STR_EQ(px_config_get(cfg, "listen"), "tcp://127.0.0.1:7001");
    PX_CHECK(px_config_get(cfg, "db") == NULL);
    int64_t n = 0;
    PX_CHECK_INT_EQ(px_config_int(cfg, "workers", 1, 64, &n, &st), PX_OK);
    PX_CHECK_INT_EQ(n, 4);
    px_config_destroy(&cfg);
    PX_CHECK(cfg == NULL);
    px_config_destroy(&cfg);
}

/* default < environment < flag; an empty variable counts as unset. */
static void test_env_then_flag_precedence(void)
{
    clear_env();
    setenv("PX_TEST_LISTEN", "tcp://0.0.0.0:9000", 1);
    setenv("PX_TEST_DB", "postgresql://env/db", 1);
    setenv("PX_TEST_WORKERS", "", 1);
    char *argv[] = {"pxtest", "--db=postgresql://flag/db", NULL};
    px_status_t st;
    px_config_t *cfg = parse(2, argv, NULL, &st);
    PX_REQUIRE(cfg);
    PX_CHECK_STR_EQ(px_config_get(cfg, "listen"), "tcp://0.0.0.0:9000");
    PX_CHECK_STR_EQ(px_config_get(cfg, "db"), "postgresql://flag/db");
    PX_CHECK_STR_EQ(px_config_get(cfg, "workers"), "4");
    px_config_destroy(&cfg);
    clear_env();
}

/* --name value and --name=value, a value with '=' in it, an empty value, last flag wins. */
static void test_flag_forms(void)
{
    clear_env();
    char *argv[] = {
        "pxtest",       "--listen",     "tcp://a:1", "--db=host=x port=5", "--workers", "8",
        "--workers=16", "--log-level=", NULL};
    px_status_t st;
    px_config_t *cfg = parse(8, argv, NULL, &st);
    PX_REQUIRE(cfg);
    PX_CHECK_STR_EQ(px_config_get(cfg, "listen"), "tcp://a:1");
    PX_CHECK_STR_EQ(px_config_get(cfg, "db"), "host=x port=5");
    PX_CHECK_STR_EQ(px_config_get(cfg, "workers"), "16");
    PX_CHECK_STR_EQ(px_config_get(cfg, "log-level"), "");
    px_config_destroy(&cfg);
}

static void test_unknown_flag_named(void)
{
    clear_env();
    char *argv[] = {"pxtest", "--listen=x", "--lisen=y", NULL};
    px_status_t st;
    px_config_t *cfg = parse(3, argv, NULL, &st);
    PX_CHECK(cfg == NULL);
    PX_CHECK_INT_EQ(st.code, PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "--lisen") != NULL);

    char *argv2[] = {"pxtest", "stray", NULL};
    cfg = parse(2, argv2, NULL, &st);
    PX_CHECK(cfg == NULL);
    PX_CHECK_INT_EQ(st.code, PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "stray") != NULL);
}

static void test_missing_value(void)
{
    clear_env();
    char *argv[] = {"pxtest", "--db", NULL};
    px_status_t st;
    px_config_t *cfg = parse(2, argv, NULL, &st);
    PX_CHECK(cfg == NULL);
    PX_CHECK_INT_EQ(st.code, PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "--db") != NULL);

    char *argv2[] = {"pxtest", "--db", "--workers=3", NULL};
    cfg = parse(3, argv2, NULL, &st);
    PX_CHECK(cfg == NULL);
    PX_CHECK(strstr(st.message, "--db") != NULL);
}

/* --help prints the table to stdout: every flag, variable, default and description. */
static void test_help(void)
{
    clear_env();
    char path[] = "/tmp/px_test_config_help_XXXXXX";
    int fd = mkstemp(path);
    PX_REQUIRE(fd >= 0);
    unlink(path);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);

    char *argv[] = {"pxtest", "--workers=2", "--help", "--bogus", NULL};
    bool help = false;
    px_status_t st;
    px_config_t *cfg = parse(4, argv, &help, &st);

    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);

    char out[4096] = {0};
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    close(fd);
    PX_CHECK(n > 0);
    PX_CHECK(help);
    PX_CHECK(cfg == NULL);
    PX_CHECK_INT_EQ(st.code, PX_OK);
    static const char *want[] = {"pxtest",
                                 "a test program",
                                 "--listen",
                                 "PX_TEST_LISTEN",
                                 "tcp://127.0.0.1:7001",
                                 "endpoint to bind",
                                 "--db",
                                 "PX_TEST_DB",
                                 "--workers",
                                 "PX_TEST_WORKERS",
                                 "worker threads",
                                 "--log-level",
                                 "DEFAULT"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!strstr(out, want[i])) {
            printf("  missing from --help: %s\n", want[i]);
            PX_CHECK(strstr(out, want[i]) != NULL);
        }
    }
    /* One row per option, each starting with its flag. */
    int rows = 0;
    for (const char *p = out; (p = strstr(p, "\n  --")) != NULL; p++) {
        rows++;
    }
    PX_CHECK_INT_EQ(rows, 4);
}

static void test_int_bounds(void)
{
    clear_env();
    static const struct {
        const char *value;
        px_code_t code;
        int64_t want;
    } cases[] = {
        {"1", PX_OK, 1},
        {"64", PX_OK, 64},
        {"0", PX_INVALID_ARGUMENT, 0},
        {"65", PX_INVALID_ARGUMENT, 0},
        {"-3", PX_INVALID_ARGUMENT, 0},
        {"12abc", PX_INVALID_ARGUMENT, 0},
        {"", PX_INVALID_ARGUMENT, 0},
        {" 5", PX_INVALID_ARGUMENT, 0},
        {"99999999999999999999999", PX_INVALID_ARGUMENT, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--workers=%s", cases[i].value);
        char *argv[] = {"pxtest", flag, NULL};
        px_status_t st;
        px_config_t *cfg = parse(2, argv, NULL, &st);
        PX_REQUIRE(cfg);
        int64_t n = -1;
        px_code_t code = px_config_int(cfg, "workers", 1, 64, &n, &st);
        PX_CHECK_INT_EQ(code, cases[i].code);
        if (code == PX_OK) {
            PX_CHECK_INT_EQ(n, cases[i].want);
        } else {
            PX_CHECK(strstr(st.message, "--workers") != NULL);
        }
        px_config_destroy(&cfg);
    }

    /* The full int64 range is reachable, and an unset option is an error naming it. */
    char *argv[] = {"pxtest", "--workers=-9223372036854775808", NULL};
    px_status_t st;
    px_config_t *cfg = parse(2, argv, NULL, &st);
    PX_REQUIRE(cfg);
    int64_t n = 0;
    PX_CHECK_INT_EQ(px_config_int(cfg, "workers", INT64_MIN, INT64_MAX, &n, &st), PX_OK);
    PX_CHECK(n == INT64_MIN);
    PX_CHECK_INT_EQ(px_config_int(cfg, "db", 0, 10, &n, &st), PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "--db") != NULL);
    px_config_destroy(&cfg);
}

static const px_test_case_t cases[] = {
    {"defaults", test_defaults},
    {"env_then_flag_precedence", test_env_then_flag_precedence},
    {"flag_forms", test_flag_forms},
    {"unknown_flag_named", test_unknown_flag_named},
    {"missing_value", test_missing_value},
    {"help", test_help},
    {"int_bounds", test_int_bounds},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, cases);
}
