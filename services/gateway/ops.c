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
 */
#include <stdio.h>
#include <string.h>

#include "gateway.h"

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
