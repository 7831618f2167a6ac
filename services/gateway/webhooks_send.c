/*
 * webhooks_send.c - the webhooks' thread: deliveries made, journaled and sent.
 *
 * One thread does all the waiting: the fsyncs of the journal, the daily summary's
 * progress calls, and the HTTP tries, many at once through libcurl's multi
 * interface (the feed and HTTP threads only hand work over and wake it with
 * curl_multi_wakeup). A turn of its loop:
 *
 *   1. takes the wards the feed handed over: a ward newly green is journaled as
 *      announced together with one ward.green delivery per subscriber that wants
 *      it, in one append and one fsync, and only then is anything tried (so a
 *      crash after the announcement cannot lose its deliveries, and a crash before
 *      it leaves the ward unannounced, to be announced by its next change);
 *   2. at the daily hour, makes each daily subscriber's summary, once a day: the
 *      delivery id is derived from the subscriber and the day, so a restart within
 *      the hour finds the summary already made;
 *   3. starts the tries that are due: a POST of the stored body, signed with the
 *      subscriber's current secret, X-Phuxanh-Signature: t=<unix s>,v1=<hex of
 *      HMAC-SHA256(secret, "<t>.<body>")>, so a receiver can refuse old replays of
 *      a captured request by t and repeats by the delivery id;
 *   4. waits for the network, the next due try or a wake-up, and reaps finished
 *      tries: a 2xx is delivered; anything else, or no answer within the try's
 *      timeout, is retried after first, 2 x first, 4 x first ... up to the maximum
 *      delay, until give-up-after past the delivery's creation (or replay), when
 *      it is given up and kept for replay.
 *
 * Which tries are due is found by a scan of the deliveries, done only when the
 * earliest known due time has come or something changed (self->due_us), so a
 * large backlog costs nothing between its retries.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "phuxanh/clock.h"
#include "phuxanh/text.h"
#include "webhooks_int.h"

/* The longest the loop sleeps: the daily hour is noticed within it. */
#define POLL_MAX_MS 1000
/* A body bigger than this is not made (a daily summary of many units with many children
 * comes nearest): receivers are small web handlers, and the journal keeps every body. */
#define BODY_MAX (4 * 1024 * 1024)
/* The receiver's answer matters only by its status; its body is read and dropped. */
#define USER_AGENT "px-gateway-webhooks"
/* A daily summary that could be made for no unit is tried again this much later, within
 * the hour. */
#define DAILY_RETRY_US (60LL * 1000000)
/* A compaction that failed (a full disk) is not tried again at every turn. */
#define COMPACT_RETRY_US (60LL * 1000000)

struct gw__wh_try_t {
    CURL *easy;
    struct curl_slist *headers;
    gw__wh_delivery_t *d; /* never freed while in flight: only finished ones are dropped */
    int64_t started_us;
};

/* ---------------------------------------------------------------- making deliveries */

static void s_random_id(char *out)
{
    uint8_t raw[GW__WH_ID_LEN / 2];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, GW__WH_ID_LEN + 1, raw, sizeof raw);
}

/* RFC 3339 in UTC with microseconds, as in the logs. */
static void s_rfc3339(char *buf, size_t cap, int64_t seconds, int32_t nanos)
{
    time_t t = (time_t)seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    char head[32];
    strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%06dZ", head, (int)(nanos / 1000));
}

/* A pending delivery around body (taken, json_decref'd), or NULL. */
static gw__wh_delivery_t *s_delivery_new(const char *id, const char *subscriber, gw__wh_kind_t kind,
                                         int64_t now_us, json_t *body)
{
    gw__wh_delivery_t *d = NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text || strlen(text) > BODY_MAX || !(d = calloc(1, sizeof *d))) {
        free(text);
        return NULL;
    }
    snprintf(d->id, sizeof d->id, "%s", id);
    snprintf(d->subscriber, sizeof d->subscriber, "%s", subscriber);
    d->kind = kind;
    d->created_us = d->window_us = d->next_us = now_us;
    d->body = text;
    d->body_len = strlen(text);
    d->state = GW__WH_PENDING;
    return d;
}

/* Journals the records in b with the deliveries v[0..n), then (only then) keeps them in
 * memory. Under mu. false when the journal would not take them: nothing happened, and the
 * deliveries are freed and counted as dropped. */
static bool s_keep(gw_webhooks_t *self, gw_buf_t *b, gw__wh_delivery_t **v, size_t n,
                   const char *what)
{
    px_status_t st;
    for (size_t i = 0; i < n; i++) {
        gw__wh_rec_enqueue(b, v[i]);
    }
    if (gw__wh_store_commit(&self->store, b, &st) != PX_OK) {
        px_log_emit(self->opts.log, PX_LOG_ERROR, "GW-WEBHOOK-JOURNAL", st.message,
                    PX_LOG_FIELDS(PX_LS("webhook_event", what), PX_LI("deliveries", n)));
        atomic_fetch_add(&self->dropped, n);
        for (size_t i = 0; i < n; i++) {
            gw__wh_delivery_free(v[i]);
        }
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (gw__wh_store_add(&self->store, v[i])) {
            atomic_fetch_add(&self->pending, 1);
        } else {
            /* Journaled, so the next start sends it; this process cannot hold it. */
            gw__wh_delivery_free(v[i]);
        }
    }
    self->due_us = 0;
    return true;
}

/* Whether one more delivery fits under max_pending; counts and logs the refusal. */
static bool s_room(gw_webhooks_t *self, size_t adding, const char *subscriber, const char *what)
{
    if (atomic_load(&self->pending) + adding < self->opts.max_pending) {
        return true;
    }
    atomic_fetch_add(&self->dropped, 1);
    px_log_emit(self->opts.log, PX_LOG_ERROR, "GW-WEBHOOK-DROPPED",
                "a delivery is refused: too many are waiting",
                PX_LOG_FIELDS(PX_LS("subscriber", subscriber), PX_LS("webhook_event", what),
                              PX_LI("max_pending", self->opts.max_pending)));
    return false;
}

/* Undoes the feed side's belief that a ward was announced, so its next change tries again. */
static void s_forget_announced(gw_webhooks_t *self, const char *key)
{
    pthread_mutex_lock(&self->in_mu);
    gw__wh_map_del(&self->announced, key);
    pthread_mutex_unlock(&self->in_mu);
}

/* One ward whose green flag flipped (step 1). Under mu. */
static void s_announce(gw_webhooks_t *self, const gw__wh_change_t *c)
{
    char key[GW__WH_GREEN_KEY_MAX];
    gw__wh_green_key(key, c->campaign, c->unit);
    bool journaled = gw__wh_map_get(&self->store.green, key) != NULL;
    if (c->green == journaled) {
        return; /* flipped and flipped back before we got here */
    }
    px_status_t st;
    gw_buf_t b;
    gw_buf_init(&b);
    gw__wh_rec_green(&b, c->campaign, c->unit, c->green);
    if (!c->green) {
        if (gw__wh_store_commit(&self->store, &b, &st) == PX_OK) {
            gw__wh_map_del(&self->store.green, key);
        } else {
            px_log_emit(self->opts.log, PX_LOG_ERROR, "GW-WEBHOOK-JOURNAL", st.message, NULL);
        }
        gw_buf_free(&b);
        return;
    }
    int64_t now = gw__wh_now(self);
    char name[256] = "", changed[48];
    gw_units_name(self->opts.units, c->unit, name, sizeof name);
    s_rfc3339(changed, sizeof changed, c->changed_s, c->changed_ns);
    gw__wh_delivery_t **v = calloc(self->subs->n + 1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; v && i < self->subs->n; i++) {
        const gw__wh_sub_t *sub = &self->subs->v[i];
        if (!(sub->kinds & (1u << GW__WH_GREEN)) ||
            (*sub->campaign && strcmp(sub->campaign, c->campaign) != 0) ||
            (sub->nunits && !gw_units_within(self->opts.units, c->unit, sub->units, sub->nunits)) ||
            !s_room(self, n, sub->name, "ward.green")) {
            continue;
        }
        char id[GW__WH_ID_LEN + 1];
        s_random_id(id);
        json_t *body =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s}", "event", "ward.green",
                      "delivery_id", id, "campaign_id", c->campaign, "unit_code", c->unit,
                      "unit_name", px_utf8_valid(name, strlen(name)) ? name : "", "target",
                      (int)c->target, "activated", (int)c->activated, "changed_at", changed);
        gw__wh_delivery_t *d = s_delivery_new(id, sub->name, GW__WH_GREEN, now, body);
        if (d) {
            v[n++] = d;
        }
    }
    if (!v) {
        b.failed = true; /* the commit refuses it: the ward stays unannounced */
    }
    if (s_keep(self, &b, v, n, "ward.green")) {
        gw__wh_map_put(&self->store.green, key, (void *)1);
        px_log_emit(self->opts.log, PX_LOG_INFO, "GW-WEBHOOK-GREEN", "a ward went green",
                    PX_LOG_FIELDS(PX_LS("campaign_id", c->campaign), PX_LS("unit_code", c->unit),
                                  PX_LI("deliveries", n)));
    } else {
        s_forget_announced(self, key);
    }
    free(v);
    gw_buf_free(&b);
}

/* ---------------------------------------------------------------- the daily summary */

typedef struct {
    char name[GW__WH_NAME_MAX + 1];
    char campaign[GW__WH_CAMPAIGN_MAX + 1];
    size_t nunits;
    char units[GW_SCOPE_MAX][24];
} s_daily_sub_t;

/* The same subscriber and day give the same id, whichever process makes it. */
static void s_daily_id(char *out, const char *subscriber, const char *day)
{
    uint8_t raw[GW__WH_ID_LEN / 2];
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, sizeof raw);
    crypto_generichash_update(&h, (const uint8_t *)"daily.summary\n", 14);
    crypto_generichash_update(&h, (const uint8_t *)subscriber, strlen(subscriber) + 1);
    crypto_generichash_update(&h, (const uint8_t *)day, strlen(day));
    crypto_generichash_final(&h, raw, sizeof raw);
    sodium_bin2hex(out, GW__WH_ID_LEN + 1, raw, sizeof raw);
}

/* The summary's body, or NULL when no unit's progress could be had. Outside mu: the
 * progress calls may take a while. */
static json_t *s_daily_body(gw_webhooks_t *self, const s_daily_sub_t *sub, const char *id,
                            const char *day)
{
    json_t *units = json_array();
    size_t got = 0;
    for (size_t i = 0; units && i < sub->nunits; i++) {
        char *text = NULL;
        json_t *progress = NULL;
        if (self->opts.progress(self->opts.progress_ctx, sub->campaign, sub->units[i], &text) ==
            0) {
            progress = text ? json_loads(text, 0, NULL) : NULL;
        }
        free(text);
        json_t *row =
            progress ? json_pack("{s:s, s:o}", "unit_code", sub->units[i], "progress", progress)
                     : json_pack("{s:s, s:s}", "unit_code", sub->units[i], "error",
                                 "progress unavailable");
        got += progress != NULL;
        json_array_append_new(units, row);
    }
    if (!got) {
        json_decref(units);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "event", "daily.summary", "delivery_id", id,
                     "campaign_id", sub->campaign, "day", day, "units", units);
}

/* Step 2: at the daily hour (Viet Nam time), each daily subscriber's summary of the day. */
static void s_daily(gw_webhooks_t *self, int64_t now)
{
    if (self->opts.daily_hour < 0 || !self->opts.progress) {
        return;
    }
    int64_t local_s = now / 1000000 + PX_TZ_OFFSET_S;
    int32_t today = (int32_t)(local_s >= 0 ? local_s / 86400 : (local_s - 86399) / 86400);
    int hour = (int)((local_s - (int64_t)today * 86400) / 3600);
    if (hour != self->opts.daily_hour || today == self->daily_done_day ||
        now < self->daily_retry_us) {
        return;
    }
    char day[16];
    px_day_format(today, day);
    s_daily_sub_t *subs = NULL;
    size_t n = 0;
    bool all_made = true;
    pthread_mutex_lock(&self->mu);
    subs = calloc(self->subs->n + 1, sizeof *subs);
    for (size_t i = 0; subs && i < self->subs->n; i++) {
        const gw__wh_sub_t *sub = &self->subs->v[i];
        char id[GW__WH_ID_LEN + 1];
        s_daily_id(id, sub->name, day);
        if ((sub->kinds & (1u << GW__WH_DAILY)) && !gw__wh_store_find(&self->store, id)) {
            s_daily_sub_t *ds = &subs[n++];
            snprintf(ds->name, sizeof ds->name, "%s", sub->name);
            snprintf(ds->campaign, sizeof ds->campaign, "%s", sub->campaign);
            ds->nunits = sub->nunits;
            memcpy(ds->units, sub->units, sizeof ds->units);
        }
    }
    pthread_mutex_unlock(&self->mu);
    all_made = subs != NULL;
    for (size_t i = 0; i < n; i++) {
        char id[GW__WH_ID_LEN + 1];
        s_daily_id(id, subs[i].name, day);
        json_t *body = s_daily_body(self, &subs[i], id, day);
        if (!body) {
            all_made = false;
            px_log_emit(self->opts.log, PX_LOG_WARN, "GW-WEBHOOK-DAILY-LATER",
                        "no progress for a daily summary; trying again",
                        PX_LOG_FIELDS(PX_LS("subscriber", subs[i].name), PX_LS("day", day)));
            continue;
        }
        gw__wh_delivery_t *d = s_delivery_new(id, subs[i].name, GW__WH_DAILY, now, body);
        gw_buf_t b;
        gw_buf_init(&b);
        pthread_mutex_lock(&self->mu);
        if (!d) {
            atomic_fetch_add(&self->dropped, 1);
            px_log_emit(self->opts.log, PX_LOG_ERROR, "GW-WEBHOOK-DROPPED",
                        "a daily summary could not be made (too big, or out of memory)",
                        PX_LOG_FIELDS(PX_LS("subscriber", subs[i].name), PX_LS("day", day)));
        } else if (!gw__wh_store_find(&self->store, id) &&
                   s_room(self, 0, subs[i].name, "daily.summary")) {
            all_made &= s_keep(self, &b, &d, 1, "daily.summary");
        } else {
            gw__wh_delivery_free(d);
        }
        pthread_mutex_unlock(&self->mu);
        gw_buf_free(&b);
    }
    free(subs);
    if (all_made) {
        self->daily_done_day = today;
    } else {
        self->daily_retry_us = now + DAILY_RETRY_US;
    }
}

/* ---------------------------------------------------------------- tries */

static size_t s_discard(char *ptr, size_t size, size_t nmemb, void *user)
{
    return size * nmemb;
}

/* The end of a delivery's retries: kept for replay. Under mu. */
static void s_give_up(gw_webhooks_t *self, gw__wh_delivery_t *d, long status, const char *error,
                      gw_buf_t *b)
{
    d->state = GW__WH_GAVE_UP;
    gw__wh_rec_gave_up(b, d);
    atomic_fetch_add(&self->given_up, 1);
    atomic_fetch_sub(&self->pending, 1);
    px_log_emit(
        self->opts.log, PX_LOG_ERROR, "GW-WEBHOOK-GAVE-UP", "webhook given up (kept for replay)",
        PX_LOG_FIELDS(PX_LS("delivery_id", d->id), PX_LS("subscriber", d->subscriber),
                      PX_LS("webhook_event", gw__wh_kind_event(d->kind)), PX_LI("tries", d->tries),
                      PX_LI("status", status), PX_LS("error", error)));
}

/* A try's outcome (status 0: no answer), logged and journaled into b. Under mu. */
static void s_finish(gw_webhooks_t *self, gw__wh_delivery_t *d, long status, const char *error,
                     int64_t duration_us, gw_buf_t *b)
{
    int64_t now = gw__wh_now(self);
    const char *event = gw__wh_kind_event(d->kind);
    d->in_flight = false;
    if (status >= 200 && status < 300) {
        d->state = GW__WH_DONE;
        d->done_us = now;
        d->status = (int)status;
        gw__wh_rec_done(b, d);
        atomic_fetch_add(&self->delivered, 1);
        atomic_fetch_sub(&self->pending, 1);
        px_log_emit(self->opts.log, PX_LOG_INFO, "GW-WEBHOOK-DELIVERED", "webhook delivered",
                    PX_LOG_FIELDS(PX_LS("delivery_id", d->id), PX_LS("subscriber", d->subscriber),
                                  PX_LS("webhook_event", event), PX_LI("try", d->tries),
                                  PX_LI("status", status), PX_LI("duration_us", duration_us)));
        return;
    }
    atomic_fetch_add(&self->failed_tries, 1);
    /* first, 2 x first, 4 x first, ... up to the maximum */
    int64_t delay_ms = self->opts.retry_first_ms;
    for (int i = 1; i < d->tries && delay_ms < self->opts.retry_max_ms; i++) {
        delay_ms *= 2;
    }
    delay_ms = delay_ms < self->opts.retry_max_ms ? delay_ms : self->opts.retry_max_ms;
    d->next_us = now + delay_ms * 1000;
    if (d->next_us >= d->window_us + self->opts.give_up_after_ms * 1000) {
        s_give_up(self, d, status, error, b);
        return;
    }
    px_log_emit(self->opts.log, PX_LOG_WARN, "GW-WEBHOOK-RETRY", "webhook try failed",
                PX_LOG_FIELDS(PX_LS("delivery_id", d->id), PX_LS("subscriber", d->subscriber),
                              PX_LS("webhook_event", event), PX_LI("try", d->tries),
                              PX_LI("status", status), PX_LS("error", error),
                              PX_LI("duration_us", duration_us), PX_LI("retry_in_ms", delay_ms)));
    if (d->next_us < self->due_us) {
        self->due_us = d->next_us;
    }
}

static void s_try_free(gw_webhooks_t *self, gw__wh_try_t *t)
{
    if (t) {
        if (t->easy) {
            curl_multi_remove_handle(self->multi, t->easy);
            curl_easy_cleanup(t->easy);
        }
        curl_slist_free_all(t->headers);
        free(t);
    }
}

/* Appends one header line; *ok turns false (and stays) when it cannot. */
static struct curl_slist *s_header(struct curl_slist *list, bool *ok, const char *line)
{
    struct curl_slist *l = *ok ? curl_slist_append(list, line) : NULL;
    *ok = l != NULL;
    return l ? l : list;
}

/* A try of d (step 3). Under mu. false when it could not be started (d stays due). */
static bool s_try_start(gw_webhooks_t *self, gw__wh_delivery_t *d, const gw__wh_sub_t *sub,
                        int64_t now)
{
    char t[24], mac_hex[2 * crypto_auth_hmacsha256_BYTES + 1];
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state hs;
    snprintf(t, sizeof t, "%lld", (long long)(now / 1000000));
    crypto_auth_hmacsha256_init(&hs, (const uint8_t *)sub->secret, strlen(sub->secret));
    crypto_auth_hmacsha256_update(&hs, (const uint8_t *)t, strlen(t));
    crypto_auth_hmacsha256_update(&hs, (const uint8_t *)".", 1);
    crypto_auth_hmacsha256_update(&hs, (const uint8_t *)d->body, d->body_len);
    crypto_auth_hmacsha256_final(&hs, mac);
    sodium_memzero(&hs, sizeof hs);
    sodium_bin2hex(mac_hex, sizeof mac_hex, mac, sizeof mac);

    char delivery[64], event[64], signature[160];
    snprintf(delivery, sizeof delivery, "X-Phuxanh-Delivery: %s", d->id);
    snprintf(event, sizeof event, "X-Phuxanh-Event: %s", gw__wh_kind_event(d->kind));
    snprintf(signature, sizeof signature, "X-Phuxanh-Signature: t=%s,v1=%s", t, mac_hex);
    gw__wh_try_t *tr = calloc(1, sizeof *tr);
    bool ok = tr && (tr->easy = curl_easy_init()) != NULL;
    if (ok) {
        tr->headers = s_header(NULL, &ok, "Content-Type: application/json");
        tr->headers = s_header(tr->headers, &ok, delivery);
        tr->headers = s_header(tr->headers, &ok, event);
        tr->headers = s_header(tr->headers, &ok, signature);
        tr->headers = s_header(tr->headers, &ok, "Expect:"); /* no 100-continue round trip */
    }
    CURL *e = ok ? tr->easy : NULL;
    ok = ok && curl_easy_setopt(e, CURLOPT_URL, sub->url) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_POST, 1L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->body_len) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_HTTPHEADER, tr->headers) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_USERAGENT, USER_AGENT) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)self->opts.try_timeout_ms) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_discard) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_PRIVATE, tr) == CURLE_OK &&
         curl_multi_add_handle(self->multi, e) == CURLM_OK;
    if (!ok) {
        if (e) {
            curl_easy_cleanup(e);
            tr->easy = NULL;
        }
        s_try_free(self, tr);
        return false;
    }
    tr->d = d;
    tr->started_us = px_clock_us();
    d->in_flight = true;
    d->tries++;
    self->tries[self->ntries++] = tr;
    return true;
}

/* Step 3: every due delivery not yet in flight, as far as the slots go. */
static void s_start_due(gw_webhooks_t *self)
{
    gw_buf_t b;
    gw_buf_init(&b);
    pthread_mutex_lock(&self->mu);
    int64_t now = gw__wh_now(self);
    if (self->due_us > now) {
        goto done;
    }
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < self->store.n; i++) {
        gw__wh_delivery_t *d = self->store.v[i];
        if (d->state != GW__WH_PENDING || d->in_flight) {
            continue;
        }
        if (d->next_us > now || self->ntries == GW__WH_TRIES_MAX) {
            due = d->next_us < due ? d->next_us : due;
            continue;
        }
        if (now >= d->window_us + self->opts.give_up_after_ms * 1000) {
            /* Its day ran out while the gateway was down: the last try was its last. */
            s_give_up(self, d, 0, "its retry period ended while the gateway was down", &b);
            continue;
        }
        const gw__wh_sub_t *sub = gw__wh_sub_find(self->subs, d->subscriber);
        if (!sub) {
            d->tries++;
            s_finish(self, d, 0, "the subscriber is not in the subscribers file", 0, &b);
        } else if (!s_try_start(self, d, sub, now)) {
            d->tries++;
            s_finish(self, d, 0, "cannot start a try (out of memory)", 0, &b);
        }
        if (d->state == GW__WH_PENDING && !d->in_flight) {
            due = d->next_us < due ? d->next_us : due;
        }
    }
    /* A full set of slots frees one when a try ends, and that ends in a new scan. */
    self->due_us = self->ntries == GW__WH_TRIES_MAX && due <= now ? INT64_MAX : due;
    px_status_t st;
    if (gw__wh_store_commit(&self->store, &b, &st) != PX_OK) {
        px_log_emit(self->opts.log, PX_LOG_ERROR, "GW-WEBHOOK-JOURNAL", st.message, NULL);
    }
done:
    pthread_mutex_unlock(&self->mu);
    gw_buf_free(&b);
}

/* Step 4: the finished tries. */
static void s_reap(gw_webhooks_t *self)
{
    gw_buf_t b;
    gw_buf_init(&b);
    CURLMsg *msg;
    int left = 0;
    pthread_mutex_lock(&self->mu);
    while ((msg = curl_multi_info_read(self->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        char *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        gw__wh_try_t *tr = (gw__wh_try_t *)priv;
        long status = 0;
        CURLcode rc = msg->data.result;
        if (rc == CURLE_OK) {
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        }
        /* curl_easy_strerror names the failure without the URL, which may carry a token. */
        char error[64] = "";
        if (rc != CURLE_OK) {
            snprintf(error, sizeof error, "%s", curl_easy_strerror(rc));
        } else if (status < 200 || status >= 300) {
            snprintf(error, sizeof error, "HTTP %ld", status);
        }
        s_finish(self, tr->d, status, error, px_clock_us() - tr->started_us, &b);
        for (size_t i = 0; i < self->ntries; i++) {
            if (self->tries[i] == tr) {
                self->tries[i] = self->tries[--self->ntries];
                break;
            }
        }
        s_try_free(self, tr);
        if (self->due_us == INT64_MAX) {
            self->due_us = 0; /* a slot is free for what waited on one */
        }
    }
    px_status_t st;
    if (gw__wh_store_commit(&self->store, &b, &st) != PX_OK) {
        /* Memory is right; the journal, read back, would only send them again. */
        px_log_emit(self->opts.log, PX_LOG_ERROR, "GW-WEBHOOK-JOURNAL", st.message, NULL);
    }
    pthread_mutex_unlock(&self->mu);
    gw_buf_free(&b);
}

/* ---------------------------------------------------------------- the loop */

static int s_poll_ms(gw_webhooks_t *self)
{
    int64_t wait_ms = POLL_MAX_MS;
    wait_ms = self->opts.retry_first_ms < wait_ms ? self->opts.retry_first_ms : wait_ms;
    pthread_mutex_lock(&self->mu);
    int64_t due = self->due_us;
    pthread_mutex_unlock(&self->mu);
    if (due != INT64_MAX) {
        int64_t until = (due - gw__wh_now(self)) / 1000;
        wait_ms = until < wait_ms ? until : wait_ms;
    }
    return wait_ms > 0 ? (int)wait_ms : 0;
}

void *gw__wh_run(void *arg)
{
    gw_webhooks_t *self = arg;
    int64_t compact_retry_us = 0;
    for (;;) {
        pthread_mutex_lock(&self->in_mu);
        gw__wh_change_t *inbox = self->inbox;
        size_t n = self->in_n;
        bool stop = self->stop;
        self->inbox = NULL;
        self->in_n = self->in_cap = 0;
        pthread_mutex_unlock(&self->in_mu);
        /* Also on the way out: what the feed handed over is journaled, not lost. */
        pthread_mutex_lock(&self->mu);
        for (size_t i = 0; i < n; i++) {
            s_announce(self, &inbox[i]);
        }
        pthread_mutex_unlock(&self->mu);
        free(inbox);
        if (stop) {
            break;
        }
        s_daily(self, gw__wh_now(self));
        s_start_due(self);
        pthread_mutex_lock(&self->mu);
        int64_t now = gw__wh_now(self);
        if (now >= compact_retry_us && gw__wh_store_compact_due(&self->store, now)) {
            px_status_t st;
            if (gw__wh_store_compact(&self->store, now, self->opts.replay_horizon_ms * 1000, &st) !=
                PX_OK) {
                px_log_emit(self->opts.log, PX_LOG_ERROR, "GW-WEBHOOK-JOURNAL", st.message, NULL);
                compact_retry_us = now + COMPACT_RETRY_US; /* appends still work meanwhile */
            }
        }
        pthread_mutex_unlock(&self->mu);
        int running = 0;
        curl_multi_poll(self->multi, NULL, 0, s_poll_ms(self), NULL);
        curl_multi_perform(self->multi, &running);
        s_reap(self);
    }
    /* Tries in flight are abandoned: their deliveries are pending in the journal. */
    pthread_mutex_lock(&self->mu);
    for (size_t i = 0; i < self->ntries; i++) {
        self->tries[i]->d->in_flight = false;
        s_try_free(self, self->tries[i]);
    }
    self->ntries = 0;
    pthread_mutex_unlock(&self->mu);
    return NULL;
}
