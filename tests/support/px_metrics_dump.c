/*
 * px_metrics_dump.c - px-metrics-dump: fetches GetMetrics from one or more
 * servers and prints them as one Prometheus text exposition, each server's
 * samples labelled service="<name>" - what the gateway's /metrics does, as a
 * program a test (tests/interop/metrics_parse.py) can run and parse.
 *
 *   px-metrics-dump [--calls=N] [NAME=]ENDPOINT...
 *
 * --calls=N first makes N health checks on each server, so that the call
 * counters and the duration histograms have something in them. Without NAME=
 * no label is added. Exit status 1 when a server does not answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/metrics.h"
#include "phuxanh/rpc.h"

/* Servers one run may name: more than a deployment has services. */
#define MAX_SERVERS 16
#define CALL_TIMEOUT_MS 10000

int main(int argc, char **argv)
{
    int rc = 1;
    long calls = 0;
    size_t n = 0;
    char *names[MAX_SERVERS] = {0};
    const char *labels[MAX_SERVERS][3];
    Phuxanh__Metrics__V1__GetMetricsResponse *got[MAX_SERVERS] = {0};
    px_metrics_source_t sources[MAX_SERVERS];
    char *text = NULL;

    for (int a = 1; a < argc; a++) {
        if (strncmp(argv[a], "--calls=", 8) == 0) {
            calls = strtol(argv[a] + 8, NULL, 10);
            continue;
        }
        if (n == MAX_SERVERS || strncmp(argv[a], "--", 2) == 0) {
            fprintf(stderr, "usage: px-metrics-dump [--calls=N] [NAME=]ENDPOINT... (at most %d)\n",
                    MAX_SERVERS);
            goto done;
        }
        char *arg = argv[a];
        char *eq = strchr(arg, '=');
        char *scheme = strstr(arg, "://");
        const char *endpoint = arg;
        labels[n][0] = NULL;
        if (eq && (!scheme || eq < scheme)) {
            names[n] = strndup(arg, (size_t)(eq - arg));
            endpoint = eq + 1;
            labels[n][0] = "service";
            labels[n][1] = names[n];
            labels[n][2] = NULL;
        }
        px_status_t st;
        px_rpc_client_opts_t o = {.caller = "px-metrics-dump"};
        px_rpc_client_t *c = px_rpc_client_new(endpoint, &o, &st);
        if (!c) {
            fprintf(stderr, "px-metrics-dump: %s: %s\n", endpoint, st.message);
            goto done;
        }
        for (long i = 0; i < calls; i++) {
            px_rpc_health_check(c, "", CALL_TIMEOUT_MS, &st);
        }
        Phuxanh__Metrics__V1__GetMetricsRequest req =
            PHUXANH__METRICS__V1__GET_METRICS_REQUEST__INIT;
        px_rpc_call_opts_t co = {.timeout_ms = CALL_TIMEOUT_MS};
        ProtobufCMessage *rep = NULL;
        px_code_t code = px_rpc_client_call(c, "/phuxanh.metrics.v1.Metrics/GetMetrics", &req.base,
                                            &phuxanh__metrics__v1__get_metrics_response__descriptor,
                                            &rep, &co, &st);
        px_rpc_client_destroy(&c);
        if (code != PX_OK) {
            fprintf(stderr, "px-metrics-dump: %s: GetMetrics: %s\n", endpoint, st.message);
            goto done;
        }
        got[n] = (Phuxanh__Metrics__V1__GetMetricsResponse *)rep;
        sources[n] = (px_metrics_source_t){got[n], labels[n][0] ? labels[n] : NULL};
        n++;
    }
    if (n == 0) {
        fprintf(stderr, "usage: px-metrics-dump [--calls=N] [NAME=]ENDPOINT...\n");
        goto done;
    }
    size_t len = 0;
    text = px_metrics_render_sources(sources, n, &len);
    if (!text) {
        fprintf(stderr, "px-metrics-dump: out of memory\n");
        goto done;
    }
    rc = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
done:
    free(text);
    for (size_t i = 0; i < MAX_SERVERS; i++) {
        free(names[i]);
        if (got[i]) {
            protobuf_c_message_free_unpacked(&got[i]->base, NULL);
        }
    }
    return rc;
}
