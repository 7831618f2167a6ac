/*
 * scale_client.c - the scale benchmark's measuring side (tests/bench/scale/run.sh).
 *
 *   bench-act-scale --endpoint EP --campaign C --province P --ward W --district D [--calls N]
 *
 * Times, one call in flight, `calls` calls each of GetProgress(province), GetProgress(ward)
 * and QueryCounts(district, group by day) after 10 untimed ones, and prints one line:
 *   progress_p50_ms=.. progress_p99_ms=.. ward_p50_ms=.. ward_p99_ms=.. counts_p50_ms=..
 *   counts_p99_ms=.. province_activated=..
 * QueryCounts answering UNIMPLEMENTED reads "na" (another method's work, not this run's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/rpc.h"

#define S_WARMUP 10
#define S_MAX_CALLS 100000

static const char *s_progress = "/phuxanh.activation.v1.ActivationService/GetProgress";
static const char *s_counts = "/phuxanh.activation.v1.ActivationService/QueryCounts";

/* Times calls of one request; 0 OK, 1 UNIMPLEMENTED, -1 failure. *last gets the last reply. */
static int s_time(px_rpc_client_t *c, const char *method, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *rt, long calls, double *p50, double *p99,
                  ProtobufCMessage **last)
{
    int64_t *samples = calloc((size_t)calls, sizeof *samples);
    px_rpc_call_opts_t o = {.timeout_ms = 30000};
    int rc = 0;
    for (long i = -S_WARMUP; samples && i < calls; i++) {
        ProtobufCMessage *reply = NULL;
        px_status_t st;
        int64_t t0 = px_bench_now_ns();
        px_code_t code = px_rpc_client_call(c, method, req, rt, &reply, &o, &st);
        int64_t dt = px_bench_now_ns() - t0;
        if (code == PX_UNIMPLEMENTED) {
            rc = 1;
            break;
        }
        if (code != PX_OK) {
            fprintf(stderr, "scale: %s: %s (%s)\n", method, px_code_name(code), st.message);
            rc = -1;
            break;
        }
        if (i >= 0) {
            samples[i] = dt;
        }
        if (last && i == calls - 1) {
            *last = reply;
        } else {
            protobuf_c_message_free_unpacked(reply, NULL);
        }
    }
    if (rc == 0 && samples) {
        px_bench_result_t r = {0};
        px_bench_latency_summarise(&r, samples, (size_t)calls);
        *p50 = r.p50_us / 1000.0;
        *p99 = r.p99_us / 1000.0;
    }
    free(samples);
    return samples ? rc : -1;
}

static void s_fmt(char *buf, size_t cap, int rc, double v)
{
    if (rc == 0) {
        snprintf(buf, cap, "%.2f", v);
    } else {
        snprintf(buf, cap, "na");
    }
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *campaign = NULL, *province = NULL, *ward = NULL, *district = NULL;
    long calls = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--endpoint") == 0) {
            endpoint = v;
        } else if (strcmp(a, "--campaign") == 0) {
            campaign = v;
        } else if (strcmp(a, "--province") == 0) {
            province = v;
        } else if (strcmp(a, "--ward") == 0) {
            ward = v;
        } else if (strcmp(a, "--district") == 0) {
            district = v;
        } else if (strcmp(a, "--calls") == 0) {
            calls = atol(v);
        }
    }
    if (!endpoint || !campaign || !province || !ward || !district || calls < 1 ||
        calls > S_MAX_CALLS) {
        fprintf(stderr, "usage: bench-act-scale --endpoint EP --campaign C --province P "
                        "--ward W --district D [--calls N]\n");
        return 2;
    }
    px_status_t st;
    px_rpc_client_opts_t co = {.caller = "bench-scale", .connect_wait_ms = 5000};
    px_rpc_client_t *c = px_rpc_client_new(endpoint, &co, &st);
    if (!c) {
        fprintf(stderr, "scale: %s\n", st.message);
        return 1;
    }
    Phuxanh__Activation__V1__GetProgressRequest gp =
        PHUXANH__ACTIVATION__V1__GET_PROGRESS_REQUEST__INIT;
    gp.campaign_id = (char *)campaign;
    double p[6] = {0};
    int rc[3];
    ProtobufCMessage *last = NULL;
    gp.unit_code = (char *)province;
    rc[0] =
        s_time(c, s_progress, &gp.base, &phuxanh__activation__v1__get_progress_response__descriptor,
               calls, &p[0], &p[1], &last);
    gp.unit_code = (char *)ward;
    rc[1] =
        s_time(c, s_progress, &gp.base, &phuxanh__activation__v1__get_progress_response__descriptor,
               calls, &p[2], &p[3], NULL);
    Phuxanh__Activation__V1__QueryCountsRequest qc =
        PHUXANH__ACTIVATION__V1__QUERY_COUNTS_REQUEST__INIT;
    Phuxanh__Activation__V1__GroupBy gb[1] = {PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_DAY};
    qc.campaign_id = (char *)campaign;
    qc.unit_code = (char *)district;
    qc.group_by = gb;
    qc.n_group_by = 1;
    rc[2] =
        s_time(c, s_counts, &qc.base, &phuxanh__activation__v1__query_counts_response__descriptor,
               calls, &p[4], &p[5], NULL);
    px_rpc_client_destroy(&c);
    if (rc[0] != 0 || rc[1] != 0 || rc[2] < 0) {
        return 1;
    }
    long long activated = -1;
    if (last) {
        Phuxanh__Activation__V1__GetProgressResponse *r = (void *)last;
        activated = r->unit ? r->unit->activated : -1;
        protobuf_c_message_free_unpacked(last, NULL);
    }
    char f[6][32];
    for (int k = 0; k < 6; k++) {
        s_fmt(f[k], sizeof f[k], rc[k / 2], p[k]);
    }
    printf("progress_p50_ms=%s progress_p99_ms=%s ward_p50_ms=%s ward_p99_ms=%s "
           "counts_p50_ms=%s counts_p99_ms=%s province_activated=%lld\n",
           f[0], f[1], f[2], f[3], f[4], f[5], activated);
    return 0;
}
