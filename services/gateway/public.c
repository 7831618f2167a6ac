/*
 * public.c - GET /public/v1/progress: units' progress for anyone, without a token.
 *
 * For a ward's notice board or the province's web site: how far each unit is, and
 * nothing else. Because anyone may ask, three things differ from /v1/progress:
 *
 * - Small figures are not shown: a count below the threshold is written as the
 *   string "<N" (and the percent of such a unit as "<P"), so that a handful of
 *   people in a neighborhood cannot be singled out by comparing answers.
 *   Follow-ups, rejections and everything about people are left out entirely.
 * - Answers are cached for cache_ms whatever the feed says: the public may see
 *   figures that old, and the services see at most one call per unit per period
 *   however many people ask.
 * - Each client address has a token bucket; past it, 429 with Retry-After.
 *
 *     {"campaignId":"...","unit":{...},"children":[{...}],"asOf":"2026-...Z",
 *      "threshold":10}
 *     a unit: {"unitCode","unitName","target","collected","approved","activated",
 *              "percent","green"}
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"
#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/clock.h"
#include "phuxanh/hash.h"

#define PATH_GET_PROGRESS "/phuxanh.activation.v1.ActivationService/GetProgress"
/* Distinct (campaign, unit) answers kept; client addresses rate-limited at once. */
#define SLOTS 256
#define CLIENTS 8192
#define KEY_MAX 160

typedef struct {
    char key[KEY_MAX];
    int64_t at_us;
    char *json;
    size_t len;
} s_slot_t;

typedef struct {
    char addr[48];
    double tokens;
    int64_t at_us;
} s_client_t;

struct gw_public_t {
    gw_public_opts_t opts;
    pthread_mutex_t mu;
    s_slot_t slots[SLOTS];
    s_client_t *clients;
};

static uint64_t s_hash(const char *s)
{
    return px_hash_str(s, PX_HASH_SEED);
}

gw_public_t *gw_public_new(const gw_public_opts_t *opts)
{
    gw_public_t *self = calloc(1, sizeof *self);
    if (!self || !(self->clients = calloc(CLIENTS, sizeof *self->clients))) {
        free(self);
        return NULL;
    }
    self->opts = *opts;
    pthread_mutex_init(&self->mu, NULL);
    return self;
}

void gw_public_destroy(gw_public_t **self_p)
{
    if (*self_p) {
        gw_public_t *self = *self_p;
        for (size_t i = 0; i < SLOTS; i++) {
            free(self->slots[i].json);
        }
        free(self->clients);
        pthread_mutex_destroy(&self->mu);
        free(self);
        *self_p = NULL;
    }
}

/* A token from the client's bucket; a full table forgets the slot it lands on (an address
 * seen long ago), which at worst gives that address a fresh bucket. */
static bool s_rate_take(gw_public_t *self, const char *addr, int *retry_after)
{
    int64_t now = px_clock_us();
    pthread_mutex_lock(&self->mu);
    s_client_t *c = &self->clients[s_hash(addr) % CLIENTS];
    if (strcmp(c->addr, addr) != 0) {
        snprintf(c->addr, sizeof c->addr, "%s", addr);
        c->tokens = self->opts.burst;
        c->at_us = now;
    }
    c->tokens += (double)(now - c->at_us) / 1e6 * self->opts.rate;
    if (c->tokens > self->opts.burst) {
        c->tokens = self->opts.burst;
    }
    c->at_us = now;
    bool ok = c->tokens >= 1.0;
    if (ok) {
        c->tokens -= 1.0;
    } else {
        *retry_after = (int)ceil((1.0 - c->tokens) / self->opts.rate);
        if (*retry_after < 1) {
            *retry_after = 1;
        }
    }
    pthread_mutex_unlock(&self->mu);
    return ok;
}

/* ---------------------------------------------------------------- writing */

static void s_count(gw_buf_t *b, const char *name, int32_t v, int threshold)
{
    if (v < threshold) {
        gw_buf_printf(b, ",\"%s\":\"<%d\"", name, threshold);
    } else {
        gw_buf_printf(b, ",\"%s\":%d", name, v);
    }
}

static void s_row(gw_buf_t *b, const Phuxanh__Activation__V1__ProgressRow *r, int threshold)
{
    char code[80], name[640];
    px_json_escape(code, sizeof code, r->unit_code);
    px_json_escape(name, sizeof name, r->unit_name);
    gw_buf_printf(b, "{\"unitCode\":%s,\"unitName\":%s,\"target\":%d", code, name, r->target);
    s_count(b, "collected", r->collected, threshold);
    s_count(b, "approved", r->approved, threshold);
    s_count(b, "activated", r->activated, threshold);
    if (r->activated < threshold && r->target > 0) {
        /* The percent of a hidden count would give it away: say only what bound it is under. */
        gw_buf_printf(b, ",\"percent\":\"<%.2f\"", 100.0 * threshold / r->target);
    } else {
        gw_buf_printf(b, ",\"percent\":%.2f", r->percent);
    }
    gw_buf_printf(b, ",\"green\":%s}", r->green ? "true" : "false");
}

static char *s_render(const char *campaign, const Phuxanh__Activation__V1__GetProgressResponse *p,
                      int threshold, size_t *len)
{
    gw_buf_t b;
    gw_buf_init(&b);
    char esc[300];
    px_json_escape(esc, sizeof esc, campaign);
    char asof[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(asof, sizeof asof, "%Y-%m-%dT%H:%M:%SZ", &tm);
    gw_buf_printf(&b, "{\"campaignId\":%s,\"asOf\":\"%s\",\"threshold\":%d,\"unit\":", esc, asof,
                  threshold);
    if (p->unit) {
        s_row(&b, p->unit, threshold);
    } else {
        gw_buf_puts(&b, "null");
    }
    gw_buf_puts(&b, ",\"children\":[");
    for (size_t i = 0; i < p->n_children; i++) {
        if (i) {
            gw_buf_putc(&b, ',');
        }
        s_row(&b, p->children[i], threshold);
    }
    gw_buf_puts(&b, "]}");
    if (b.failed) {
        gw_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

/* ---------------------------------------------------------------- the route */

typedef struct {
    gw_req_t *req;
    gw_public_t *pub;
    char key[KEY_MAX];
    char campaign[128];
    Phuxanh__Activation__V1__GetProgressRequest *q;
    gw_call_t call;
} s_pending_t;

static void s_pending_free(void *p)
{
    s_pending_t *x = p;
    if (x) {
        if (x->q) {
            protobuf_c_message_free_unpacked(&x->q->base, NULL);
        }
        if (x->call.reply) {
            protobuf_c_message_free_unpacked(x->call.reply, NULL);
        }
        free(x);
    }
}

static const char *const s_headers[] = {"Cache-Control", "public, max-age=30",
                                        "Access-Control-Allow-Origin", "*", NULL};

static void s_done(gw_call_t *call)
{
    s_pending_t *x = call->user;
    gw_public_t *self = x->pub;
    if (call->code != PX_OK) {
        /* Whatever the service said, the public learns only whether it may try again. */
        px_code_t code = call->code == PX_NOT_FOUND || call->code == PX_INVALID_ARGUMENT
                             ? call->code
                             : PX_UNAVAILABLE;
        gw_req_fail(x->req, code, "%s",
                    code == PX_UNAVAILABLE ? "figures unavailable; try again later"
                                           : call->message);
        gw_req_resume(x->req);
        return;
    }
    size_t len = 0;
    char *json = s_render(x->campaign, (const void *)call->reply, self->opts.threshold, &len);
    if (!json) {
        gw_req_fail(x->req, PX_RESOURCE_EXHAUSTED, "out of memory");
        gw_req_resume(x->req);
        return;
    }
    pthread_mutex_lock(&self->mu);
    s_slot_t *s = &self->slots[s_hash(x->key) % SLOTS];
    free(s->json);
    snprintf(s->key, sizeof s->key, "%s", x->key);
    s->at_us = px_clock_us();
    s->json = malloc(len);
    if (s->json) {
        memcpy(s->json, json, len);
        s->len = len;
    }
    pthread_mutex_unlock(&self->mu);
    gw_req_respond_take(x->req, 200, "application/json", json, len, s_headers);
    gw_req_resume(x->req);
}

void gw_public_progress(gw_req_t *req)
{
    gw_t *gw = gw_req_gw(req);
    gw_public_t *self = gw->public_progress;
    if (!self) {
        gw_req_fail(req, PX_NOT_FOUND, "no route for %.200s", gw_req_path(req));
        return;
    }
    int retry_after = 1;
    if (!s_rate_take(self, gw_req_client_addr(req), &retry_after)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        const char *h[] = {"Retry-After", ra, NULL};
        gw_req_fail_http(req, 429, PX_RESOURCE_EXHAUSTED, h,
                         "too many requests from this address; retry after %d s", retry_after);
        return;
    }
    static const char *const names[] = {"campaign", "unit", NULL};
    const char *bad = gw_req_unknown_query(req, names);
    if (bad) {
        gw_req_fail(req, PX_INVALID_ARGUMENT, "unknown parameter \"%.40s\"", bad);
        return;
    }
    const char *campaign = gw_req_query(req, "campaign");
    const char *unit = gw_req_query(req, "unit");
    if (!campaign || !*campaign || !unit || !*unit || strlen(campaign) > 100 || strlen(unit) > 32) {
        gw_req_fail(req, PX_INVALID_ARGUMENT,
                    "campaign and unit are required: /public/v1/progress?campaign=ID&unit=CODE");
        return;
    }
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%s\x1f%s", campaign, unit);
    int64_t now = px_clock_us();
    pthread_mutex_lock(&self->mu);
    s_slot_t *s = &self->slots[s_hash(key) % SLOTS];
    if (s->json && strcmp(s->key, key) == 0 && now - s->at_us < self->opts.cache_ms * 1000LL) {
        gw_req_respond(req, 200, "application/json", s->json, s->len, s_headers);
        pthread_mutex_unlock(&self->mu);
        return;
    }
    pthread_mutex_unlock(&self->mu);
    s_pending_t *x = calloc(1, sizeof *x);
    if (!x) {
        gw_req_fail(req, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    x->req = req;
    x->pub = self;
    snprintf(x->key, sizeof x->key, "%s", key);
    snprintf(x->campaign, sizeof x->campaign, "%s", campaign);
    gw_req_set_state(req, x, s_pending_free);
    Phuxanh__Activation__V1__GetProgressRequest q =
        PHUXANH__ACTIVATION__V1__GET_PROGRESS_REQUEST__INIT;
    q.campaign_id = (char *)campaign;
    q.unit_code = (char *)unit;
    x->q = (void *)gw_msg_own(&q.base);
    if (!x->q) {
        gw_req_fail(req, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    gw_req_set_rpc(req, PATH_GET_PROGRESS);
    gw_req_suspend(req);
    gw_call_start(req, &x->call, gw_method_find(PATH_GET_PROGRESS), &x->q->base,
                  gw->limits.default_timeout_ms, s_done, x);
}
