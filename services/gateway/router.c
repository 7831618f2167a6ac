/*
 * router.c - which handler answers a request, and whether the caller may ask.
 *
 * Routes are a table: path (exact, or a prefix), the HTTP methods allowed, whether a
 * token is needed, and the handler. The order of refusals is the Connect protocol's
 * where it has one: no route 404, wrong HTTP method 405 with Allow, then the token
 * (401 missing or unknown, 429 over its rate), then the handler's own checks (role and
 * units, 403; content type, 415; the body, 400). The token is checked before the
 * body is decoded, so nobody unauthenticated costs us a parse.
 */
#include <stdio.h>
#include <string.h>

#include "gateway.h"

typedef enum { M_GET = 1, M_HEAD = 2, M_POST = 4 } s_methods_t;

typedef struct {
    const char *path;
    bool prefix;      /* path is a prefix */
    unsigned methods; /* s_methods_t bits; Connect routes decide per RPC (see below) */
    bool needs_token;
    const char *label; /* route label for logs and metrics */
    gw_handler_fn handler;
} s_route_t;

static const s_route_t s_routes[] = {
    {"/healthz", false, M_GET | M_HEAD, false, "/healthz", gw_ops_healthz},
    {"/readyz", false, M_GET | M_HEAD, false, "/readyz", gw_ops_readyz},
    {"/metrics", false, M_GET, true, "/metrics", gw_ops_metrics},
    {"/v1/progress", false, M_GET, true, "/v1/progress", gw_rest_progress},
    {"/v1/counts", false, M_GET, true, "/v1/counts", gw_rest_counts},
    {"/v1/events", false, M_GET, true, "/v1/events", gw_sse_events},
    {"/public/v1/progress", false, M_GET, false, "/public/v1/progress", gw_public_progress},
    {"/v1/webhooks/replay", false, M_POST, true, "/v1/webhooks/replay", gw_admin_webhooks_replay},
};

static unsigned s_method_bit(const char *m)
{
    if (strcmp(m, "GET") == 0) {
        return M_GET;
    }
    if (strcmp(m, "HEAD") == 0) {
        return M_HEAD;
    }
    if (strcmp(m, "POST") == 0) {
        return M_POST;
    }
    return 0;
}

static void s_allow(unsigned methods, char *buf, size_t cap)
{
    buf[0] = '\0';
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{M_GET, "GET"}, {M_HEAD, "HEAD"}, {M_POST, "POST"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (methods & names[i].bit) {
            size_t n = strlen(buf);
            snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", names[i].name);
        }
    }
}

/* 405 with Allow. The JSON code is the one Connect clients infer from 405 anyway. */
static void s_not_allowed(gw_req_t *req, unsigned methods)
{
    char allow[32];
    s_allow(methods, allow, sizeof allow);
    const char *h[] = {"Allow", allow, NULL};
    gw_req_fail_http(req, 405, PX_UNKNOWN, h, "HTTP method %.16s not allowed here; use %s",
                     gw_req_method(req), allow);
}

/* Checks the token and its rate. false when answered (401 or 429). */
static bool s_authenticate(gw_req_t *req)
{
    gw_t *gw = gw_req_gw(req);
    gw_ident_t ident;
    px_status_t st;
    if (gw_auth_check(gw->auth, gw_req_header(req, "Authorization"), &ident, &st) != PX_OK) {
        gw_req_fail(req, st.code, "%s", st.message);
        return false;
    }
    gw_req_set_ident(req, &ident);
    int retry_after = 1;
    if (!gw_auth_rate_take(gw->auth, &ident, &retry_after)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        const char *h[] = {"Retry-After", ra, NULL};
        gw_req_fail_http(req, 429, PX_RESOURCE_EXHAUSTED, h,
                         "rate limit of token \"%s\" exceeded; retry after %d s", ident.name,
                         retry_after);
        return false;
    }
    return true;
}

/* A Connect path is /<package>.<Service>/<Method>: its first segment holds a dot. */
static bool s_connect_shaped(const char *path)
{
    const char *slash = strchr(path + 1, '/');
    const char *dot = strchr(path + 1, '.');
    return slash && dot && dot < slash;
}

static void s_connect(gw_req_t *req)
{
    gw_req_set_route(req, "connect");
    const gw_method_t *m = gw_method_find(gw_req_path(req));
    if (!m) {
        /* The code Connect clients infer from 404. */
        gw_req_fail_http(req, 404, PX_UNIMPLEMENTED, NULL, "no such method: %.200s",
                         gw_req_path(req));
        return;
    }
    gw_req_set_rpc(req, m->path);
    unsigned allowed = M_POST | (m->effects == GW_NO_SIDE_EFFECTS ? M_GET : 0);
    if (!(s_method_bit(gw_req_method(req)) & allowed)) {
        s_not_allowed(req, allowed);
        return;
    }
    if (!s_authenticate(req)) {
        return;
    }
    gw_connect_handle(req);
}

void gw_router_dispatch(gw_req_t *req)
{
    const char *path = gw_req_path(req);
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes[0]; i++) {
        const s_route_t *r = &s_routes[i];
        bool match =
            r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0 : strcmp(path, r->path) == 0;
        if (!match) {
            continue;
        }
        gw_req_set_route(req, r->label);
        if (!(s_method_bit(gw_req_method(req)) & r->methods)) {
            s_not_allowed(req, r->methods);
            return;
        }
        if (r->needs_token && !s_authenticate(req)) {
            return;
        }
        r->handler(req);
        return;
    }
    if (path[0] == '/' && s_connect_shaped(path)) {
        s_connect(req);
        return;
    }
    if (gw_static_serve(req)) {
        return;
    }
    gw_req_set_route(req, "unknown");
    gw_req_fail(req, PX_NOT_FOUND, "no route for %.200s", path);
}
