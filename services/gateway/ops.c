/*
 * ops.c - what operators and orchestrators ask: /healthz, /readyz, /metrics.
 *
 * /healthz answers 200 while the process serves HTTP at all (a liveness probe: no
 * dependency is asked, so a database outage never gets the gateway restarted).
 * /readyz answers 200 only when every service the gateway needs answers its health
 * probe as SERVING and the live feed is whole, and otherwise 503 naming what is
 * missing, so a load balancer can take this gateway out and an operator reads why.
 * Both answer from what backend.c and feed.c already know: no call is made per
 * request.
 *
 * /metrics (Prometheus text format, a token of any role) is the gateway's own
 * registry (stats.c) and each service's, fetched over RPC (Metrics/GetMetrics)
 * at scrape time and labelled service="roster" / "activation"; a service that does
 * not answer within the scrape's bound is left out, and px_gateway_service_up
 * shows it as 0.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "phuxanh/clock.h"
#include "phuxanh/metrics.h"

void gw_ops_healthz(gw_req_t *req)
{
    gw_t *gw = gw_req_gw(req);
    char body[128];
    int n = snprintf(body, sizeof body, "{\"status\":\"ok\",\"version\":\"%s\"}", gw->version);
    const char *h[] = {"Cache-Control", "no-store", NULL};
    gw_req_respond(req, 200, "application/json", body, (size_t)n, h);
}

void gw_ops_readyz(gw_req_t *req)
{
    gw_t *gw = gw_req_gw(req);
    gw_buf_t b;
    gw_buf_init(&b);
    bool ready = true;
    gw_buf_puts(&b, "{\"services\":{");
    char missing[256] = "";
    for (int s = 0; s < GW_SVC_COUNT; s++) {
        bool configured = gw_backend_configured(gw->backend, (gw_svc_t)s);
        bool up = gw_backend_up(gw->backend, (gw_svc_t)s);
        gw_buf_printf(&b, "%s\"%s\":{\"configured\":%s,\"serving\":%s}", s ? "," : "",
                      gw_svc_name((gw_svc_t)s), configured ? "true" : "false",
                      up ? "true" : "false");
        if (!up) {
            ready = false;
            size_t n = strlen(missing);
            snprintf(missing + n, sizeof missing - n, "%s\"%s\"", n ? "," : "",
                     gw_svc_name((gw_svc_t)s));
        }
    }
    bool feed = gw_feed_ok(gw->feed);
    if (!feed) {
        ready = false;
        size_t n = strlen(missing);
        snprintf(missing + n, sizeof missing - n, "%s\"activation feed\"", n ? "," : "");
    }
    int64_t units = gw_units_version(gw_backend_units(gw->backend));
    gw_buf_printf(&b, "},\"feed\":{\"whole\":%s},\"unit_tree_version\":%lld,",
                  feed ? "true" : "false", (long long)units);
    gw_buf_printf(&b, "\"status\":\"%s\",\"missing\":[%s]}", ready ? "ready" : "not_ready",
                  missing);
    if (b.failed) {
        gw_buf_free(&b);
        gw_req_fail(req, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    const char *h[] = {"Cache-Control", "no-store", NULL};
    gw_req_respond_take(req, ready ? 200 : 503, "application/json", b.data, b.len, h);
}

/* ---------------------------------------------------------------- /metrics */

#define PATH_GET_METRICS "/phuxanh.metrics.v1.Metrics/GetMetrics"
/* A scrape must not hang on a service that does not answer: Prometheus times out at 10 s by
 * default; ours is well inside it. */
#define SCRAPE_TIMEOUT_MS 2000

typedef struct {
    gw_req_t *req;
    Phuxanh__Metrics__V1__GetMetricsRequest q;
    gw_call_t calls[GW_SVC_COUNT];
    pthread_mutex_t mu;
    int pending;
} s_scrape_t;

static void s_scrape_free(void *p)
{
    s_scrape_t *s = p;
    if (s) {
        for (int i = 0; i < GW_SVC_COUNT; i++) {
            if (s->calls[i].reply) {
                protobuf_c_message_free_unpacked(s->calls[i].reply, NULL);
            }
        }
        pthread_mutex_destroy(&s->mu);
        free(s);
    }
}

/* On a backend thread: the last service to answer renders the page. */
static void s_scrape_done(gw_call_t *call)
{
    s_scrape_t *s = call->user;
    pthread_mutex_lock(&s->mu);
    bool last = --s->pending == 0;
    pthread_mutex_unlock(&s->mu);
    if (!last) {
        return;
    }
    gw_t *gw = gw_req_gw(s->req);
    Phuxanh__Metrics__V1__GetMetricsResponse *own =
        px_metrics_snapshot(gw_stats_registry(gw->stats));
    px_metrics_source_t src[1 + GW_SVC_COUNT];
    const char *labels[GW_SVC_COUNT][3];
    size_t n = 0;
    if (own) {
        src[n++] = (px_metrics_source_t){own, NULL};
    }
    for (int i = 0; i < GW_SVC_COUNT; i++) {
        /* A service that did not answer is left out; px_gateway_service_up says so. */
        if (s->calls[i].code == PX_OK && s->calls[i].reply) {
            labels[i][0] = "service";
            labels[i][1] = gw_svc_name((gw_svc_t)i);
            labels[i][2] = NULL;
            src[n++] = (px_metrics_source_t){(const void *)s->calls[i].reply, labels[i]};
        }
    }
    size_t len = 0;
    char *text = px_metrics_render_sources(src, n, &len);
    if (own) {
        protobuf_c_message_free_unpacked(&own->base, NULL);
    }
    if (!text) {
        gw_req_fail(s->req, PX_RESOURCE_EXHAUSTED, "out of memory");
    } else {
        const char *h[] = {"Cache-Control", "no-store", NULL};
        gw_req_respond_take(s->req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, h);
    }
    gw_req_resume(s->req);
}

void gw_ops_metrics(gw_req_t *req)
{
    gw_t *gw = gw_req_gw(req);
    s_scrape_t *s = calloc(1, sizeof *s);
    if (!s) {
        gw_req_fail(req, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    s->req = req;
    phuxanh__metrics__v1__get_metrics_request__init(&s->q);
    pthread_mutex_init(&s->mu, NULL);
    s->pending = GW_SVC_COUNT;
    gw_req_set_state(req, s, s_scrape_free);
    gw_req_suspend(req);
    for (int i = 0; i < GW_SVC_COUNT; i++) {
        gw_call_t *c = &s->calls[i];
        c->service = (gw_svc_t)i;
        c->path = PATH_GET_METRICS;
        c->request = &s->q.base;
        c->reply_type = &phuxanh__metrics__v1__get_metrics_response__descriptor;
        c->deadline_us = px_clock_us() + SCRAPE_TIMEOUT_MS * 1000LL;
        c->idempotent = true;
        snprintf(c->request_id, sizeof c->request_id, "%s", gw_req_id(req));
        c->done = s_scrape_done;
        c->user = s;
        gw_backend_submit(gw->backend, c);
    }
}
