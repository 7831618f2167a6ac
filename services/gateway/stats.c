/*
 * stats.c - the gateway's own figures for /metrics, in the runtime's metrics
 * registry (phuxanh/metrics.h): requests by route and status, their latency,
 * requests in flight, the services' failures as the gateway saw them, the
 * progress cache, the feed, and whether each service answers.
 *
 * Updates happen on every request, so the series a request touches are found
 * through the registry's lock-free lookup; figures another module keeps (the
 * cache's hits, the feed's counts) are copied in when /metrics is read, by a
 * collect hook, rather than counted twice.
 */
#include <stdio.h>
#include <stdlib.h>

#include "gateway.h"

struct gw_stats_t {
    px_metrics_t *reg;
    px_metrics_family_t *requests, *duration, *backend_errors;
    px_metrics_series_t *in_flight, *cache_hits, *cache_misses, *feed_msgs, *feed_gaps, *feed_whole,
        *svc_up[GW_SVC_COUNT];
    gw_t *gw;
};

/* From 0.5 ms (an answer from memory) to 10 s (a deadline). */
static const double s_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};

static void s_collect(void *data, px_metrics_t *reg)
{
    (void)reg;
    gw_stats_t *self = data;
    gw_t *gw = self->gw;
    if (!gw) {
        return;
    }
    uint64_t a = 0, b = 0;
    if (gw->progress) {
        gw_progress_counts(gw->progress, &a, &b);
        px_metrics_set(self->cache_hits, (double)a);
        px_metrics_set(self->cache_misses, (double)b);
    }
    if (gw->feed) {
        gw_feed_counts(gw->feed, &a, &b);
        px_metrics_set(self->feed_msgs, (double)a);
        px_metrics_set(self->feed_gaps, (double)b);
        px_metrics_set(self->feed_whole, gw_feed_ok(gw->feed) ? 1 : 0);
    }
    if (gw->http) {
        px_metrics_set(self->in_flight, (double)gw_http_in_flight(gw->http));
    }
    for (int s = 0; s < GW_SVC_COUNT && gw->backend; s++) {
        px_metrics_set(self->svc_up[s], gw_backend_up(gw->backend, (gw_svc_t)s) ? 1 : 0);
    }
}

gw_stats_t *gw_stats_new(gw_t *gw)
{
    gw_stats_t *self = calloc(1, sizeof *self);
    if (!self || !(self->reg = px_metrics_new())) {
        free(self);
        return NULL;
    }
    self->gw = gw;
    px_metrics_t *r = self->reg;
    static const char *const route_code[] = {"route", "code", NULL};
    static const char *const route[] = {"route", NULL};
    static const char *const svc_code[] = {"service", "code", NULL};
    static const char *const svc[] = {"service", NULL};
    static const char *const result[] = {"result", NULL};
    self->requests = px_metrics_counter(
        r, "px_gateway_http_requests_total",
        "HTTP requests answered, by route (a Connect method's path, or the REST route) and HTTP "
        "status (0: the client left before an answer)",
        route_code);
    self->duration = px_metrics_histogram(r, "px_gateway_http_request_duration_seconds",
                                          "Time from a request's head to its last answer byte "
                                          "queued, by route",
                                          route, s_bounds, sizeof s_bounds / sizeof s_bounds[0]);
    self->backend_errors = px_metrics_counter(
        r, "px_gateway_backend_errors_total",
        "Calls to a service that failed for reasons of the service or the network "
        "(UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS), by service and code",
        svc_code);
    self->in_flight = px_metrics_series(
        px_metrics_gauge(r, "px_gateway_http_in_flight",
                         "Requests received and not yet finished, suspended ones included", NULL),
        NULL);
    px_metrics_family_t *cache = px_metrics_counter(
        r, "px_gateway_progress_cache_total",
        "GetProgress answers from memory (hit) or from the activation service (miss)", result);
    self->cache_hits = px_metrics_series(cache, (const char *const[]){"hit"});
    self->cache_misses = px_metrics_series(cache, (const char *const[]){"miss"});
    self->feed_msgs = px_metrics_series(
        px_metrics_counter(r, "px_gateway_feed_messages_total",
                           "Messages received from the activation feed, heartbeats included", NULL),
        NULL);
    self->feed_gaps = px_metrics_series(
        px_metrics_counter(r, "px_gateway_feed_gaps_total",
                           "Times the feed's sequence showed lost messages", NULL),
        NULL);
    self->feed_whole = px_metrics_series(
        px_metrics_gauge(r, "px_gateway_feed_whole",
                         "1 while the activation feed is connected, heard and without a gap", NULL),
        NULL);
    px_metrics_family_t *up =
        px_metrics_gauge(r, "px_gateway_service_up",
                         "1 while the service answers the gateway's health probe as SERVING", svc);
    for (int s = 0; s < GW_SVC_COUNT; s++) {
        self->svc_up[s] = px_metrics_series(up, (const char *const[]){gw_svc_name((gw_svc_t)s)});
    }
    px_metrics_on_collect(r, s_collect, self);
    return self;
}

void gw_stats_destroy(gw_stats_t **self_p)
{
    if (*self_p) {
        px_metrics_destroy(&(*self_p)->reg);
        free(*self_p);
        *self_p = NULL;
    }
}

px_metrics_t *gw_stats_registry(gw_stats_t *self)
{
    return self ? self->reg : NULL;
}

void gw_stats_request(gw_stats_t *self, const char *route, unsigned status, int64_t dur_us)
{
    if (!self) {
        return;
    }
    char code[8];
    snprintf(code, sizeof code, "%u", status);
    const char *rc[] = {route && *route ? route : "none", code};
    px_metrics_inc(px_metrics_series(self->requests, rc));
    px_metrics_observe(px_metrics_series(self->duration, rc), (double)dur_us / 1e6);
}

void gw_stats_backend_error(gw_stats_t *self, gw_svc_t svc, px_code_t code)
{
    if (!self) {
        return;
    }
    const char *v[] = {gw_svc_name(svc), px_code_name(code)};
    px_metrics_inc(px_metrics_series(self->backend_errors, v));
}
