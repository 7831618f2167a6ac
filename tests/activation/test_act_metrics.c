/*
 * test_act_metrics.c - the activation service's own metrics, served by GetMetrics beside the
 * runtime's: px_activation_events_total counts the events of committed RecordEvents calls by
 * outcome (recorded, duplicate, refused), and px_activation_feed_dropped_total is there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_fixture.h"
#include "phuxanh/metrics.h"
#include "px_test.h"

static act_fixture_t F;

/* The value of family's sample whose one label is name=value (NULL: no label); -1 if none. */
static double s_value(const Phuxanh__Metrics__V1__GetMetricsResponse *m, const char *family,
                      const char *name, const char *value)
{
    for (size_t i = 0; i < m->n_families; i++) {
        const Phuxanh__Metrics__V1__MetricFamily *f = m->families[i];
        for (size_t k = 0; strcmp(f->name, family) == 0 && k < f->n_samples; k++) {
            const Phuxanh__Metrics__V1__Sample *s = f->samples[k];
            if (name ? s->n_labels == 1 && strcmp(s->labels[0]->name, name) == 0 &&
                           strcmp(s->labels[0]->value, value) == 0
                     : s->n_labels == 0) {
                return s->value;
            }
        }
    }
    return -1;
}

static Phuxanh__Metrics__V1__GetMetricsResponse *s_metrics(void)
{
    Phuxanh__Metrics__V1__GetMetricsRequest req = PHUXANH__METRICS__V1__GET_METRICS_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    px_status_t st;
    px_rpc_call_opts_t o = {.timeout_ms = 10000};
    if (px_rpc_client_call(F.client, "/phuxanh.metrics.v1.Metrics/GetMetrics", &req.base,
                           &phuxanh__metrics__v1__get_metrics_response__descriptor, &rep, &o,
                           &st) != PX_OK) {
        fprintf(stderr, "GetMetrics: %s\n", st.message);
        return NULL;
    }
    return (Phuxanh__Metrics__V1__GetMetricsResponse *)rep;
}

static void test_events_counted_by_outcome(void)
{
    Phuxanh__Metrics__V1__GetMetricsResponse *m = s_metrics();
    PX_REQUIRE(m);
    const char *outcomes[] = {"recorded", "duplicate", "refused"};
    for (int i = 0; i < 3; i++) {
        PX_CHECK(s_value(m, "px_activation_events_total", "outcome", outcomes[i]) == 0);
    }
    PX_CHECK(s_value(m, "px_activation_feed_dropped_total", NULL, NULL) == 0);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    /* Two new, the same key again (a duplicate), one without consent (refused). */
    Phuxanh__Activation__V1__ActivationEvent *ev[4] = {
        act_event("m-1", "074090000101", "25966", 1, 0),
        act_event("m-2", "074090000102", "25966", 1, 1),
        act_event("m-1", "074090000101", "25966", 1, 0),
        act_event("m-3", "074090000103", "25966", 1, 2),
    };
    ev[3]->consent = false;
    px_status_t st;
    Phuxanh__Activation__V1__RecordEventsResponse *r = act_record(&F, ev, 4, &st);
    PX_REQUIRE(r);
    PX_CHECK_INT_EQ(r->recorded, 2);
    PX_CHECK_INT_EQ(r->duplicates, 1);
    PX_CHECK_INT_EQ(r->refused, 1);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    for (int i = 0; i < 4; i++) {
        act_event_free(ev[i]);
    }
    m = s_metrics();
    PX_REQUIRE(m);
    PX_CHECK(s_value(m, "px_activation_events_total", "outcome", "recorded") == 2);
    PX_CHECK(s_value(m, "px_activation_events_total", "outcome", "duplicate") == 1);
    PX_CHECK(s_value(m, "px_activation_events_total", "outcome", "refused") == 1);
    /* The runtime's families are served beside the service's. */
    const char *const pairs[] = {"/phuxanh.activation.v1.ActivationService/RecordEvents", "OK"};
    bool found = false;
    for (size_t i = 0; i < m->n_families && !found; i++) {
        const Phuxanh__Metrics__V1__MetricFamily *f = m->families[i];
        for (size_t k = 0; strcmp(f->name, "px_rpc_calls_total") == 0 && k < f->n_samples; k++) {
            const Phuxanh__Metrics__V1__Sample *s = f->samples[k];
            found = found || (s->n_labels == 2 && strcmp(s->labels[0]->value, pairs[0]) == 0 &&
                              strcmp(s->labels[1]->value, pairs[1]) == 0 && s->value == 1);
        }
    }
    PX_CHECK(found);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static const px_test_case_t s_cases[] = {
    {"events_counted_by_outcome", test_events_counted_by_outcome},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    if (act_fixture_start(&F, "act_metrics") != 0) {
        fprintf(stderr, "cannot start the fixture\n");
        act_fixture_stop(&F);
        return 1;
    }
    int rc = px_test_main(argc, argv, s_cases);
    if (act_fixture_stop(&F) != 0) {
        fprintf(stderr, "px-activation or px-roster did not stop cleanly\n");
        rc = 1;
    }
    return rc;
}
