/*
 * test_rpc_metrics.c - phuxanh.metrics.v1.Metrics/GetMetrics, served by every
 * server: after a known set of calls to a px-testd process, the runtime's own
 * families count them - px_rpc_calls_total by method and code (methods not
 * served here under "other"), px_rpc_call_duration_seconds per method, the
 * calls in flight and queued - and the answer renders as Prometheus text with
 * the service label added.
 */
#include <math.h>
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

#define ECHO "/phuxanh.test.v1.Echo/Echo"
#define GET_METRICS "/phuxanh.metrics.v1.Metrics/GetMetrics"

typedef Phuxanh__Metrics__V1__GetMetricsResponse metrics_t;

static testd_t s_server;

static px_rpc_client_t *s_client(const char *caller)
{
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = caller};
    return px_rpc_client_new(s_server.endpoint, &o, &st);
}

static metrics_t *s_get(px_rpc_client_t *c)
{
    Phuxanh__Metrics__V1__GetMetricsRequest req = PHUXANH__METRICS__V1__GET_METRICS_REQUEST__INIT;
    px_rpc_call_opts_t o = {.timeout_ms = 5000};
    ProtobufCMessage *rep = NULL;
    px_status_t st;
    if (px_rpc_client_call(c, GET_METRICS, &req.base,
                           &phuxanh__metrics__v1__get_metrics_response__descriptor, &rep, &o,
                           &st) != PX_OK) {
        fprintf(stderr, "GetMetrics: %s\n", st.message);
        return NULL;
    }
    return (metrics_t *)rep;
}

static const Phuxanh__Metrics__V1__MetricFamily *s_family(const metrics_t *m, const char *name)
{
    for (size_t i = 0; m && i < m->n_families; i++) {
        if (strcmp(m->families[i]->name, name) == 0) {
            return m->families[i];
        }
    }
    return NULL;
}

/* The sample of family name whose labels are exactly the pairs given (name, value, ...,
 * NULL); NULL when there is none. */
static const Phuxanh__Metrics__V1__Sample *s_sample(const metrics_t *m, const char *name,
                                                    const char *const *pairs)
{
    const Phuxanh__Metrics__V1__MetricFamily *f = s_family(m, name);
    size_t npairs = 0;
    while (pairs && pairs[2 * npairs]) {
        npairs++;
    }
    for (size_t i = 0; f && i < f->n_samples; i++) {
        const Phuxanh__Metrics__V1__Sample *s = f->samples[i];
        bool match = s->n_labels == npairs;
        for (size_t k = 0; match && k < npairs; k++) {
            match = strcmp(s->labels[k]->name, pairs[2 * k]) == 0 &&
                    strcmp(s->labels[k]->value, pairs[2 * k + 1]) == 0;
        }
        if (match) {
            return s;
        }
    }
    return NULL;
}

static double s_calls(const metrics_t *m, const char *method, const char *code)
{
    const char *pairs[] = {"method", method, "code", code, NULL};
    const Phuxanh__Metrics__V1__Sample *s = s_sample(m, "px_rpc_calls_total", pairs);
    return s ? s->value : 0;
}

static double s_gauge(const metrics_t *m, const char *name)
{
    const Phuxanh__Metrics__V1__Sample *s = s_sample(m, name, NULL);
    return s ? s->value : NAN;
}

static px_code_t s_echo(px_rpc_client_t *c, const char *method, int fail_code)
{
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    req.fail_code = fail_code;
    ProtobufCMessage *rep = NULL;
    px_status_t st;
    px_rpc_call_opts_t o = {.timeout_ms = 5000};
    px_code_t code = px_rpc_client_call(c, method, &req.base,
                                        &phuxanh__test__v1__echo_reply__descriptor, &rep, &o, &st);
    if (rep) {
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    return code;
}

static void test_calls_counted_by_method_and_code(void)
{
    px_rpc_client_t *c = s_client("metrics-test");
    PX_REQUIRE(c);
    metrics_t *before = s_get(c);
    PX_REQUIRE(before);
    double ok0 = s_calls(before, ECHO, "OK"), nf0 = s_calls(before, ECHO, "NOT_FOUND");
    double other0 = s_calls(before, "other", "UNIMPLEMENTED");
    const Phuxanh__Metrics__V1__Sample *d0 = s_sample(before, "px_rpc_call_duration_seconds",
                                                      (const char *const[]){"method", ECHO, NULL});
    uint64_t dur0 = d0 ? d0->count : 0;
    for (int i = 0; i < 7; i++) {
        PX_CHECK_INT_EQ(s_echo(c, ECHO, 0), PX_OK);
    }
    PX_CHECK_INT_EQ(s_echo(c, ECHO, PX_NOT_FOUND), PX_NOT_FOUND);
    PX_CHECK_INT_EQ(s_echo(c, ECHO, PX_NOT_FOUND), PX_NOT_FOUND);
    /* Methods not served here: one label for all of them, whatever the caller sent. */
    PX_CHECK_INT_EQ(s_echo(c, "/phuxanh.test.v1.Echo/Nope", 0), PX_UNIMPLEMENTED);
    PX_CHECK_INT_EQ(s_echo(c, "/no.such.v1.Service/Method", 0), PX_UNIMPLEMENTED);
    PX_CHECK_INT_EQ(s_echo(c, "not a method at all", 0), PX_UNIMPLEMENTED);
    metrics_t *m = s_get(c);
    PX_REQUIRE(m);
    PX_CHECK_INT_EQ(s_calls(m, ECHO, "OK") - ok0, 7);
    PX_CHECK_INT_EQ(s_calls(m, ECHO, "NOT_FOUND") - nf0, 2);
    PX_CHECK_INT_EQ(s_calls(m, "other", "UNIMPLEMENTED") - other0, 3);
    PX_CHECK(s_sample(m, "px_rpc_calls_total",
                      (const char *const[]){"method", "/phuxanh.test.v1.Echo/Nope", "code",
                                            "UNIMPLEMENTED", NULL}) == NULL);
    /* The GetMetrics before this one was counted too. */
    PX_CHECK(s_calls(m, GET_METRICS, "OK") >= 1);
    /* Durations: one observation per Echo answered, in cumulative buckets. */
    const Phuxanh__Metrics__V1__MetricFamily *df = s_family(m, "px_rpc_call_duration_seconds");
    PX_REQUIRE(df);
    PX_CHECK_INT_EQ(df->type, PHUXANH__METRICS__V1__METRIC_TYPE__METRIC_TYPE_HISTOGRAM);
    PX_CHECK_INT_EQ(df->n_bucket_bounds, 14);
    PX_CHECK(df->n_bucket_bounds == 14 && df->bucket_bounds[0] == 0.0005 &&
             df->bucket_bounds[13] == 10);
    const Phuxanh__Metrics__V1__Sample *d =
        s_sample(m, "px_rpc_call_duration_seconds", (const char *const[]){"method", ECHO, NULL});
    PX_REQUIRE(d);
    PX_CHECK_INT_EQ(d->count - dur0, 9);
    PX_CHECK(d->sum > 0 && d->sum < 9 * 5.0);
    PX_CHECK_INT_EQ(d->n_cumulative_counts, 14);
    for (size_t i = 1; i < d->n_cumulative_counts; i++) {
        PX_CHECK(d->cumulative_counts[i] >= d->cumulative_counts[i - 1]);
    }
    /* Quick calls: all within 10 s. */
    PX_CHECK(d->n_cumulative_counts == 14 && d->cumulative_counts[13] == d->count);
    /* Now: only this GetMetrics runs, nothing waits; no database, no reconnect counter. */
    PX_CHECK(s_gauge(m, "px_rpc_in_flight") == 1);
    PX_CHECK(s_gauge(m, "px_rpc_queued") == 0);
    PX_CHECK(s_family(m, "px_db_reconnects_total") == NULL);
    PX_CHECK(s_family(m, "px_metrics_label_sets_dropped_total") != NULL);
    protobuf_c_message_free_unpacked(&before->base, NULL);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    px_rpc_client_destroy(&c);
}

static void test_in_flight_follows_running_calls(void)
{
    px_rpc_client_t *c = s_client("metrics-test");
    PX_REQUIRE(c);
    Phuxanh__Test__V1__EchoRequest slow = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    slow.sleep_ms = 800;
    px_rpc_call_opts_t o = {.timeout_ms = 5000};
    px_rpc_call_t *a =
        px_rpc_client_start(c, ECHO, &slow.base, &phuxanh__test__v1__echo_reply__descriptor, &o);
    px_rpc_call_t *b =
        px_rpc_client_start(c, ECHO, &slow.base, &phuxanh__test__v1__echo_reply__descriptor, &o);
    PX_REQUIRE(a && b);
    /* A second client, so that polling it does not wait on the slow calls. */
    px_rpc_client_t *c2 = s_client("metrics-test");
    PX_REQUIRE(c2);
    double seen = 0;
    for (int i = 0; i < 20 && seen < 3; i++) {
        px_rpc_client_next(c, 0); /* lets the slow calls leave */
        metrics_t *m = s_get(c2);
        seen = m ? s_gauge(m, "px_rpc_in_flight") : 0;
        if (m) {
            protobuf_c_message_free_unpacked(&m->base, NULL);
        }
        px_sleep_us(20000);
    }
    PX_CHECK(seen == 3); /* the two slow ones and the GetMetrics asking */
    px_rpc_client_wait(c, a);
    px_rpc_client_wait(c, b);
    metrics_t *m = s_get(c2);
    PX_REQUIRE(m);
    PX_CHECK(s_gauge(m, "px_rpc_in_flight") == 1);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    px_rpc_call_destroy(&a);
    px_rpc_call_destroy(&b);
    px_rpc_client_destroy(&c2);
    px_rpc_client_destroy(&c);
}

static void test_refused_on_behalf_counted(void)
{
    px_rpc_client_t *c = s_client("intruder");
    PX_REQUIRE(c);
    metrics_t *before = s_get(c);
    PX_REQUIRE(before);
    px_md_t *md = px_md_new();
    px_md_set(md, PX_MD_ON_BEHALF_OF, "someone");
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    px_rpc_call_opts_t o = {.timeout_ms = 5000, .metadata = md};
    px_status_t st;
    PX_CHECK_INT_EQ(px_rpc_client_call(c, ECHO, &req.base,
                                       &phuxanh__test__v1__echo_reply__descriptor, NULL, &o, &st),
                    PX_PERMISSION_DENIED);
    metrics_t *m = s_get(c);
    PX_REQUIRE(m);
    PX_CHECK_INT_EQ(
        s_calls(m, ECHO, "PERMISSION_DENIED") - s_calls(before, ECHO, "PERMISSION_DENIED"), 1);
    protobuf_c_message_free_unpacked(&before->base, NULL);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    px_md_destroy(&md);
    px_rpc_client_destroy(&c);
}

static void test_rendered_with_service_label(void)
{
    px_rpc_client_t *c = s_client("metrics-test");
    PX_REQUIRE(c);
    for (int i = 0; i < 3; i++) {
        PX_CHECK_INT_EQ(s_echo(c, ECHO, 0), PX_OK);
    }
    metrics_t *m = s_get(c);
    PX_REQUIRE(m);
    const char *labels[] = {"service", "testd", NULL};
    px_metrics_source_t src = {m, labels};
    size_t len = 0;
    char *text = px_metrics_render_sources(&src, 1, &len);
    PX_REQUIRE(text);
    PX_CHECK_INT_EQ(strlen(text), len);
    char want[256];
    snprintf(want, sizeof want,
             "\npx_rpc_calls_total{service=\"testd\",method=\"%s\",code=\"OK\"} %.0f\n", ECHO,
             s_calls(m, ECHO, "OK"));
    PX_CHECK(strstr(text, want) != NULL);
    PX_CHECK(strstr(text, "# TYPE px_rpc_call_duration_seconds histogram\n") != NULL);
    snprintf(want, sizeof want,
             "px_rpc_call_duration_seconds_bucket{service=\"testd\",method=\"%s\",le=\"+Inf\"} ",
             ECHO);
    PX_CHECK(strstr(text, want) != NULL);
    PX_CHECK(strstr(text, "\npx_rpc_in_flight{service=\"testd\"} 1\n") != NULL);
    PX_CHECK(strstr(text, "\npx_rpc_queued{service=\"testd\"} 0\n") != NULL);
    free(text);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    px_rpc_client_destroy(&c);
}

static const px_test_case_t s_cases[] = {
    {"calls_counted_by_method_and_code", test_calls_counted_by_method_and_code},
    {"in_flight_follows_running_calls", test_in_flight_follows_running_calls},
    {"refused_on_behalf_counted", test_refused_on_behalf_counted},
    {"rendered_with_service_label", test_rendered_with_service_label},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    const char *extra[] = {"--workers=4", NULL};
    if (testd_start(&s_server, NULL, extra) != 0) {
        fprintf(stderr, "cannot start px-testd\n");
        return 1;
    }
    int rc = px_test_main(argc, argv, s_cases);
    if (testd_stop(&s_server, SIGTERM) != 0) {
        fprintf(stderr, "px-testd did not stop cleanly on SIGTERM\n");
        rc = 1;
    }
    return rc;
}
