/*
 * sse.c - GET /v1/events: count changes as Server-Sent Events.
 *
 * Each event is one CountsChanged from the activation service's feed, in the
 * proto3 JSON of every other answer:
 *
 *     id: 5f3a9c01-1287
 *     event: counts
 *     data: {"campaignId":"tn-cuoi-tuan-2023","unitCode":"25966","stage":...}
 *
 * Ids are "<gateway boot>-<number>": a client that reconnects with Last-Event-ID
 * (browsers do it by themselves) resumes right after that event while the
 * gateway's ring still holds it. When it cannot (the gateway restarted, or the
 * events are gone), or when a slow reader falls behind the ring, the stream says
 * so with an `event: reset` before going on, and the client should read the
 * figures again (GetProgress) rather than trust its running total.
 *
 * Filters: campaign=ID, unit=CODE[,CODE...] (a unit also matches the units under
 * it). A comment line ": keep-alive" goes out after sse-keepalive-s (15 s) without
 * an event, so proxies do not close a quiet stream.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "phuxanh/clock.h"

#define FILTER_UNITS_MAX 16
/* What one pass of the reader gathers before handing it to the socket. */
#define CHUNK_MAX (64 * 1024)

typedef struct {
    gw_t *gw;
    gw_req_t *req;
    char campaign[128];
    char units[FILTER_UNITS_MAX][24];
    size_t nunits;
    uint64_t next;
    int64_t last_write_us;
    bool started;
    bool reset_pending;
    /* bytes gathered, not yet handed to the socket */
    char *buf;
    size_t len, off, cap;
} s_stream_t;

static void s_stream_free(void *p)
{
    s_stream_t *s = p;
    if (s) {
        gw_feed_forget(s->gw->feed, s->req);
        free(s->buf);
        free(s);
    }
}

static bool s_append(s_stream_t *s, const char *data, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n) {
            cap *= 2;
        }
        char *b = realloc(s->buf, cap);
        if (!b) {
            return false;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return true;
}

static bool s_matches(s_stream_t *s, const gw_feed_event_t *e)
{
    if (s->campaign[0] && strcmp(s->campaign, e->campaign) != 0) {
        return false;
    }
    if (s->nunits == 0) {
        return true;
    }
    return gw_units_within(gw_backend_units(s->gw->backend), e->unit, (const char(*)[24])s->units,
                           s->nunits);
}

static bool s_visit(void *ctx, const gw_feed_event_t *e)
{
    s_stream_t *s = ctx;
    if (s->len >= CHUNK_MAX) {
        return false; /* enough for this pass; the rest on the next */
    }
    if (!s_matches(s, e)) {
        return true;
    }
    char head[96];
    int n = snprintf(head, sizeof head,
                     "id: %s-%" PRIu64 "\nevent: counts\ndata: ", gw_feed_boot(s->gw->feed), e->id);
    return s_append(s, head, (size_t)n) && s_append(s, e->json, e->len) && s_append(s, "\n\n", 2);
}

static void s_reset(s_stream_t *s, const char *why)
{
    char line[256];
    int n = snprintf(line, sizeof line,
                     "id: %s-%" PRIu64 "\nevent: reset\ndata: {\"reason\":\"%s\"}\n\n",
                     gw_feed_boot(s->gw->feed), s->next > 0 ? s->next - 1 : 0, why);
    s_append(s, line, (size_t)n);
}

static long s_read(void *state, uint8_t *out, size_t cap)
{
    s_stream_t *s = state;
    if (s->off == s->len) {
        s->off = s->len = 0;
        if (!s->started) {
            s->started = true;
            /* Reconnect after 3 s; and a first line, so the client knows it is connected. */
            static const char hello[] = "retry: 3000\n: connected\n\n";
            s_append(s, hello, sizeof hello - 1);
            if (s->reset_pending) {
                s_reset(s, "cannot resume from Last-Event-ID: read the figures again");
            }
        }
        if (s->len == 0) {
            int64_t keepalive_us = s->gw->limits.sse_keepalive_s * 1000000LL;
            bool keepalive_due = px_clock_us() - s->last_write_us >= keepalive_us;
            int rc = gw_feed_read(s->gw->feed, &s->next, s_visit, s, keepalive_due ? NULL : s->req);
            if (rc < 0) {
                return -1; /* the gateway is stopping */
            }
            if (rc == 1) {
                s_reset(s, "events were missed: read the figures again");
                gw_feed_read(s->gw->feed, &s->next, s_visit, s, NULL);
            }
            if (rc == 2) {
                return 0; /* parked until the feed has more or the tick */
            }
            if (s->len == 0 && keepalive_due) {
                static const char keepalive[] = ": keep-alive\n\n";
                s_append(s, keepalive, sizeof keepalive - 1);
            }
            if (s->len == 0) {
                /* Everything new was filtered out: wait again. */
                rc = gw_feed_read(s->gw->feed, &s->next, s_visit, s, s->req);
                if (rc == 2) {
                    return 0;
                }
                if (rc < 0) {
                    return -1;
                }
            }
        }
    }
    size_t n = s->len - s->off;
    if (n > cap) {
        n = cap;
    }
    memcpy(out, s->buf + s->off, n);
    s->off += n;
    s->last_write_us = px_clock_us();
    return (long)n;
}

/* Last-Event-ID "<boot>-<n>": the next id to send, or 0 when it is not ours to resume. */
static uint64_t s_resume_from(gw_t *gw, const char *last)
{
    const char *dash = last ? strchr(last, '-') : NULL;
    const char *boot = gw_feed_boot(gw->feed);
    if (!dash || (size_t)(dash - last) != strlen(boot) || strncmp(last, boot, strlen(boot)) != 0) {
        return 0;
    }
    char *end = NULL;
    unsigned long long n = strtoull(dash + 1, &end, 10);
    if (!dash[1] || *end) {
        return 0;
    }
    return (uint64_t)n + 1;
}

void gw_sse_events(gw_req_t *req)
{
    gw_t *gw = gw_req_gw(req);
    s_stream_t *s = calloc(1, sizeof *s);
    if (!s) {
        gw_req_fail(req, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    s->gw = gw;
    s->req = req;
    const char *campaign = gw_req_query(req, "campaign");
    if (campaign && strlen(campaign) >= sizeof s->campaign) {
        free(s);
        gw_req_fail(req, PX_INVALID_ARGUMENT, "campaign: too long");
        return;
    }
    snprintf(s->campaign, sizeof s->campaign, "%s", campaign ? campaign : "");
    const char *units = gw_req_query(req, "unit");
    if (units && *units) {
        char copy[FILTER_UNITS_MAX * 24];
        if (strlen(units) >= sizeof copy) {
            free(s);
            gw_req_fail(req, PX_INVALID_ARGUMENT, "unit: at most %d codes", FILTER_UNITS_MAX);
            return;
        }
        snprintf(copy, sizeof copy, "%s", units);
        char *save = NULL;
        for (char *u = strtok_r(copy, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
            if (s->nunits == FILTER_UNITS_MAX || strlen(u) >= sizeof s->units[0]) {
                free(s);
                gw_req_fail(req, PX_INVALID_ARGUMENT,
                            "unit: at most %d codes of at most %zu "
                            "characters",
                            FILTER_UNITS_MAX, sizeof s->units[0] - 1);
                return;
            }
            snprintf(s->units[s->nunits++], sizeof s->units[0], "%s", u);
        }
    }
    const char *last = gw_req_header(req, "Last-Event-ID");
    if (!last) {
        last = gw_req_query(req, "last_event_id");
    }
    uint64_t from = last ? s_resume_from(gw, last) : 0;
    if (from) {
        s->next = from;
    } else {
        s->next = gw_feed_next_id(gw->feed);
        s->reset_pending = last != NULL && *last;
    }
    s->last_write_us = px_clock_us();
    const char *h[] = {"Cache-Control", "no-store", "X-Accel-Buffering", "no", NULL};
    gw_req_respond_stream(req, "text/event-stream; charset=utf-8", s_read, s, s_stream_free, h);
}
