/*
 * test_rpc_health_db.c - Health/Check follows the server's database: NOT_SERVING
 * while PostgreSQL refuses the server, SERVING again once it accepts it, with no
 * restart of the server; the reconnections show in px_db_reconnects_total. A call's
 * deadline cancels its database work.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/clock.h"
#include "phuxanh/metrics.h"
#include "phuxanh/rpc.h"
#include "phuxanh/test/v1/echo.pb-c.h"
#include "px_test.h"
#include "testd_proc.h"

#define SERVING 1
#define NOT_SERVING 2

/* Polls health until it answers `want` or 10 s pass. */
static int s_wait_health(px_rpc_client_t *c, int want)
{
    px_status_t st;
    int got = -1;
    for (int i = 0; i < 100; i++) {
        got = px_rpc_health_check(c, "", 3000, &st);
        if (got == want) {
            return got;
        }
        px_sleep_us(100000);
    }
    return got;
}

/* px_db_reconnects_total as GetMetrics answers it; -1 when the call or the family fails. */
static double s_reconnects(px_rpc_client_t *c)
{
    Phuxanh__Metrics__V1__GetMetricsRequest req = PHUXANH__METRICS__V1__GET_METRICS_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    px_status_t st;
    double v = -1;
    if (px_rpc_client_call(c, "/phuxanh.metrics.v1.Metrics/GetMetrics", &req.base,
                           &phuxanh__metrics__v1__get_metrics_response__descriptor, &rep, NULL,
                           &st) != PX_OK) {
        return -1;
    }
    const Phuxanh__Metrics__V1__GetMetricsResponse *m =
        (const Phuxanh__Metrics__V1__GetMetricsResponse *)rep;
    for (size_t i = 0; i < m->n_families; i++) {
        if (strcmp(m->families[i]->name, "px_db_reconnects_total") == 0 &&
            m->families[i]->n_samples == 1) {
            v = m->families[i]->samples[0]->value;
        }
    }
    protobuf_c_message_free_unpacked(rep, NULL);
    return v;
}

/* px-testd with `workers` workers on a database of its own (named from prefix; *url is its
 * URL, the caller's to free), once it says SERVING: a client for it, or NULL. */
static px_rpc_client_t *s_serve(const char *prefix, const char *workers, testd_t *srv, char **url)
{
    *url = px_test_db_new(prefix);
    if (!*url) {
        return NULL;
    }
    char arg[512];
    snprintf(arg, sizeof arg, "--db-url=%s", *url);
    const char *extra[] = {arg, workers, NULL};
    if (testd_start(srv, NULL, extra) != 0) {
        return NULL;
    }
    px_status_t st;
    px_rpc_client_t *c = px_rpc_client_new(srv->endpoint, NULL, &st);
    if (c && s_wait_health(c, SERVING) != SERVING) {
        px_rpc_client_destroy(&c);
    }
    return c;
}

static void test_health_follows_database(void)
{
    char *url = NULL;
    testd_t srv;
    px_rpc_client_t *c = s_serve("health", "--workers=2", &srv, &url);
    PX_REQUIRE(c);
    const char *dbname = strrchr(url, '/') + 1;
    px_status_t st;
    PX_CHECK(s_reconnects(c) == 0);

    char sql[512];
    snprintf(sql, sizeof sql, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS false", dbname);
    PX_CHECK_INT_EQ(px_test_admin_exec(sql), 0);
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'", dbname);
    PX_CHECK_INT_EQ(px_test_admin_exec(sql), 0);
    /* Every worker must notice: ask several times so each answers at least once. */
    PX_CHECK_INT_EQ(s_wait_health(c, NOT_SERVING), NOT_SERVING);
    for (int i = 0; i < 6; i++) {
        PX_CHECK_INT_EQ(px_rpc_health_check(c, "", 3000, &st), NOT_SERVING);
    }

    snprintf(sql, sizeof sql, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS true", dbname);
    PX_CHECK_INT_EQ(px_test_admin_exec(sql), 0);
    PX_CHECK_INT_EQ(s_wait_health(c, SERVING), SERVING);
    for (int i = 0; i < 6; i++) {
        PX_CHECK_INT_EQ(px_rpc_health_check(c, "", 3000, &st), SERVING);
    }
    /* The workers that answered lost their connection and made it again: at least one (calls
     * one after another may all go to the same worker), at most both. */
    double reconnects = s_reconnects(c);
    PX_CHECK(reconnects >= 1 && reconnects <= 2);
    px_rpc_client_destroy(&c);
    PX_CHECK_INT_EQ(testd_stop(&srv, SIGTERM), 0);
    free(url);
}

/* Active pg_sleep statements on database dbname, or -1. */
static int s_sleeping(const char *dbname)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND state = 'active' "
             "AND query LIKE 'SELECT pg_sleep(%%'",
             dbname);
    char *v = px_test_admin_scalar(sql);
    int n = v ? atoi(v) : -1;
    free(v);
    return n;
}

/* A call's deadline reaches its database work: the statement is cancelled when the deadline
 * passes (not left running for nobody), and the worker's connection serves the next call. */
static void test_deadline_cancels_database_work(void)
{
    char *url = NULL;
    testd_t srv;
    px_rpc_client_t *c = s_serve("deadline", "--workers=1", &srv, &url);
    PX_REQUIRE(c);
    const char *dbname = strrchr(url, '/') + 1;
    px_status_t st;

    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    req.db_sleep_ms = 8000;
    px_rpc_call_opts_t o = {.timeout_ms = 300};
    ProtobufCMessage *rep = NULL;
    int64_t t0 = px_clock_us();
    PX_CHECK_INT_EQ(px_rpc_client_call(c, "/phuxanh.test.v1.Echo/Echo", &req.base,
                                       &phuxanh__test__v1__echo_reply__descriptor, &rep, &o, &st),
                    PX_DEADLINE_EXCEEDED);
    /* The statement stops within moments of the deadline, not 8 s later. */
    int sleeping = -1;
    for (int i = 0; i < 20 && sleeping != 0; i++) {
        px_sleep_us(50000);
        sleeping = s_sleeping(dbname);
    }
    PX_CHECK_INT_EQ(sleeping, 0);
    PX_CHECK(px_clock_us() - t0 < 2000000);

    /* The one worker answers the next call at once, on the same connection. */
    req.db_sleep_ms = 10;
    o.timeout_ms = 3000;
    PX_CHECK_INT_EQ(px_rpc_client_call(c, "/phuxanh.test.v1.Echo/Echo", &req.base,
                                       &phuxanh__test__v1__echo_reply__descriptor, &rep, &o, &st),
                    PX_OK);
    protobuf_c_message_free_unpacked(rep, NULL);
    PX_CHECK(s_reconnects(c) == 0);
    px_rpc_client_destroy(&c);
    PX_CHECK_INT_EQ(testd_stop(&srv, SIGTERM), 0);
    free(url);
}

static const px_test_case_t s_cases[] = {
    {"health_follows_database", test_health_follows_database},
    {"deadline_cancels_database_work", test_deadline_cancels_database_work},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
