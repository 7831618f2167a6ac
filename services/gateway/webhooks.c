/*
 * webhooks.c - webhook subscribers, and the module's doors for other threads.
 *
 * The operator keeps the subscribers in a file, one per line, '#' comments:
 *
 *     <name> <url> secret=<32+ chars> [units=CODE,CODE] [kinds=green,daily] [campaign=ID]
 *
 * url is http:// or https://; units default to every unit, kinds to both. A
 * subscriber of the daily summary names its campaign and its units (the summary
 * gives each unit's progress, and "every unit" has no single unit to ask for).
 * Like the token file, a reload (SIGHUP) parses the whole file into a new set and
 * swaps it in; a bad line keeps the old set and is reported with its number, and
 * neither a secret nor anything that may be one is ever echoed.
 *
 * The feed thread calls gw_webhooks_on_change for every change of counts. It must
 * never wait on a disk or a network, so it only compares the ward's green flag
 * with an in-memory set of what was announced and, when they differ, hands the
 * change to the module's thread (webhooks_send.c), which journals it, makes the
 * deliveries and sends them. The set is updated on the spot, so the following
 * changes of a ward that stays green cost a lookup and nothing else.
 *
 * Replay (an admin route) and reload run on their callers' threads, under the
 * module's lock; replay's journal write waits for an fsync, which an admin can
 * afford and the feed thread never has to.
 */
#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/clock.h"
#include "webhooks_int.h"

#define DEFAULT_RETRY_FIRST_MS 10000
#define DEFAULT_RETRY_MAX_MS (3600 * 1000)
#define DEFAULT_GIVE_UP_AFTER_MS (24LL * 3600 * 1000)
#define DEFAULT_TRY_TIMEOUT_MS 10000
#define DEFAULT_HORIZON_MS (7LL * 24 * 3600 * 1000)
#define DEFAULT_MAX_PENDING 100000

/* A province has a few hundred wards and a handful of systems that listen. */
#define SUBSCRIBERS_MAX 1000
#define LINE_MAX_LEN 8192
/* A secret is an HMAC key: 32 characters is about what a 128-bit random key takes in
 * base64 or hex; the upper bound keeps a stray paste from becoming one. */
#define SECRET_MIN 32
#define SECRET_MAX 512
#define URL_MAX 2048
/* Ward changes waiting for the thread. Only flips of the green flag come here, so this many
 * means the thread is stuck; past it a flip is refused (counted) rather than wait. */
#define INBOX_MAX 10000
/* The roster's UnitLevel of a ward (or commune). */
#define UNIT_LEVEL_WARD 3

int64_t gw__wh_now(const gw_webhooks_t *self)
{
    return self->opts.now ? self->opts.now(self->opts.now_ctx) : px_wall_us();
}

/* ---------------------------------------------------------------- the subscribers file */

static void s_subs_free(gw__wh_subs_t *subs)
{
    if (subs) {
        for (size_t i = 0; i < subs->n; i++) {
            free(subs->v[i].url);
            if (subs->v[i].secret) {
                sodium_memzero(subs->v[i].secret, strlen(subs->v[i].secret));
                free(subs->v[i].secret);
            }
        }
        free(subs->v);
        free(subs);
    }
}

const gw__wh_sub_t *gw__wh_sub_find(const gw__wh_subs_t *subs, const char *name)
{
    for (size_t i = 0; subs && i < subs->n; i++) {
        if (strcmp(subs->v[i].name, name) == 0) {
            return &subs->v[i];
        }
    }
    return NULL;
}

/* 1 to max characters, each a letter, a digit or one of extra. */
static bool s_word_ok(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) {
        return false;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s)) {
            return false;
        }
    }
    return true;
}

static bool s_url_ok(const char *s)
{
    if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) {
        return false;
    }
    size_t n = strlen(s);
    if (n > URL_MAX || n == strlen(strncmp(s, "http://", 7) == 0 ? "http://" : "https://")) {
        return false;
    }
    for (; *s; s++) {
        if ((unsigned char)*s <= ' ' || *s == 0x7f) {
            return false;
        }
    }
    return true;
}

/* One line into sub; PX_OK, or INVALID_ARGUMENT saying what is wrong (no line number, no
 * value that may be the secret). */
static px_code_t s_parse_line(char *line, gw__wh_sub_t *sub, px_status_t *st)
{
    char *save = NULL;
    char *name = strtok_r(line, " \t", &save);
    char *url = strtok_r(NULL, " \t", &save);
    bool have_kinds = false, have_units = false, have_campaign = false;
    if (!name || !url) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "expected: <name> <url> secret=<at least %d characters> "
                             "[units=CODE,...] [kinds=green,daily] [campaign=ID]",
                             SECRET_MIN);
    }
    if (!s_word_ok(name, GW__WH_NAME_MAX, "._-@")) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "name: 1 to %d letters, digits, '.', '_', '-' or '@'",
                             GW__WH_NAME_MAX);
    }
    snprintf(sub->name, sizeof sub->name, "%s", name);
    if (!s_url_ok(url)) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "url: http:// or https:// and a host, at most %d characters", URL_MAX);
    }
    if (!(sub->url = strdup(url))) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    sub->kinds = (1u << GW__WH_GREEN) | (1u << GW__WH_DAILY);
    char *kv;
    while ((kv = strtok_r(NULL, " \t", &save)) != NULL) {
        char *eq = strchr(kv, '=');
        char *v = eq ? eq + 1 : NULL;
        size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
        if (eq && strncmp(kv, "secret", klen) == 0 && klen == 6) {
            size_t n = strlen(v);
            if (sub->secret || n < SECRET_MIN || n > SECRET_MAX) {
                return px_status_set(st, PX_INVALID_ARGUMENT, "secret: once, %d to %d characters",
                                     SECRET_MIN, SECRET_MAX);
            }
            if (!(sub->secret = strdup(v))) {
                return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
            }
        } else if (eq && strncmp(kv, "units", klen) == 0 && klen == 5 && !have_units) {
            have_units = true;
            char *usave = NULL;
            for (char *u = strtok_r(v, ",", &usave); u; u = strtok_r(NULL, ",", &usave)) {
                if (!s_word_ok(u, sizeof sub->units[0] - 1, "-")) {
                    return px_status_set(st, PX_INVALID_ARGUMENT,
                                         "units: \"%.32s\" is not a unit code", u);
                }
                if (sub->nunits == GW_SCOPE_MAX) {
                    return px_status_set(st, PX_INVALID_ARGUMENT, "units: at most %d",
                                         GW_SCOPE_MAX);
                }
                snprintf(sub->units[sub->nunits++], sizeof sub->units[0], "%s", u);
            }
        } else if (eq && strncmp(kv, "kinds", klen) == 0 && klen == 5 && !have_kinds) {
            have_kinds = true;
            sub->kinds = 0;
            char *ksave = NULL;
            for (char *k = strtok_r(v, ",", &ksave); k; k = strtok_r(NULL, ",", &ksave)) {
                if (strcmp(k, "green") == 0) {
                    sub->kinds |= 1u << GW__WH_GREEN;
                } else if (strcmp(k, "daily") == 0) {
                    sub->kinds |= 1u << GW__WH_DAILY;
                } else {
                    return px_status_set(st, PX_INVALID_ARGUMENT,
                                         "kinds: \"%.32s\" is not green or daily", k);
                }
            }
        } else if (eq && strncmp(kv, "campaign", klen) == 0 && klen == 8 && !have_campaign) {
            have_campaign = true;
            if (!s_word_ok(v, GW__WH_CAMPAIGN_MAX, "._-")) {
                return px_status_set(st, PX_INVALID_ARGUMENT,
                                     "campaign: \"%.64s\" is not a "
                                     "campaign id",
                                     v);
            }
            snprintf(sub->campaign, sizeof sub->campaign, "%s", v);
        } else {
            /* Only the name of the field: what follows '=' may be a mistyped secret. */
            return px_status_set(st, PX_INVALID_ARGUMENT,
                                 "unknown or repeated field \"%.*s\" (secret=, units=, kinds=, "
                                 "campaign=)",
                                 (int)(klen > 32 ? 32 : klen), kv);
        }
    }
    if (!sub->secret) {
        return px_status_set(st, PX_INVALID_ARGUMENT, "secret=: required, at least %d characters",
                             SECRET_MIN);
    }
    if (!sub->kinds) {
        return px_status_set(st, PX_INVALID_ARGUMENT, "kinds: green, daily or both");
    }
    if ((sub->kinds & (1u << GW__WH_DAILY)) && (!*sub->campaign || sub->nunits == 0)) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "the daily summary%s needs campaign= and units=; kinds=green "
                             "subscribes to ward.green alone",
                             have_kinds ? "" : " (a default kind)");
    }
    return PX_OK;
}

static gw__wh_subs_t *s_subs_load(const char *path, px_status_t *st)
{
    gw__wh_subs_t *subs = calloc(1, sizeof *subs);
    char *line = malloc(LINE_MAX_LEN);
    FILE *f = NULL;
    size_t cap = 0;
    if (!subs || !line) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if (!(f = fopen(path, "r"))) {
        px_status_set(st, PX_FAILED_PRECONDITION, "webhooks subscribers %s: %s", path,
                      strerror(errno));
        goto fail;
    }
    for (int lineno = 1; fgets(line, LINE_MAX_LEN, f); lineno++) {
        size_t n = strlen(line);
        if (n == LINE_MAX_LEN - 1 && line[n - 1] != '\n') {
            px_status_set(st, PX_INVALID_ARGUMENT,
                          "webhooks subscribers %s line %d: longer than %d bytes", path, lineno,
                          LINE_MAX_LEN - 2);
            goto fail;
        }
        char *p = line + strspn(line, " \t\r\n");
        if (!*p || *p == '#') {
            continue;
        }
        p[strcspn(p, "\r\n")] = '\0';
        if (subs->n == SUBSCRIBERS_MAX) {
            px_status_set(st, PX_INVALID_ARGUMENT, "webhooks subscribers %s: more than %d", path,
                          SUBSCRIBERS_MAX);
            goto fail;
        }
        if (subs->n == cap) {
            cap = cap ? 2 * cap : 8;
            gw__wh_sub_t *v = realloc(subs->v, cap * sizeof *v);
            if (!v) {
                px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
                goto fail;
            }
            subs->v = v;
        }
        gw__wh_sub_t *sub = &subs->v[subs->n++];
        memset(sub, 0, sizeof *sub);
        px_status_t lst;
        if (s_parse_line(p, sub, &lst) != PX_OK) {
            px_status_set(st, PX_INVALID_ARGUMENT, "webhooks subscribers %s line %d: %s", path,
                          lineno, lst.message);
            goto fail;
        }
        for (size_t k = 0; k + 1 < subs->n; k++) {
            if (strcmp(subs->v[k].name, sub->name) == 0) {
                px_status_set(st, PX_INVALID_ARGUMENT,
                              "webhooks subscribers %s line %d: the name \"%s\" twice", path,
                              lineno, sub->name);
                goto fail;
            }
        }
    }
    if (ferror(f)) {
        px_status_set(st, PX_UNAVAILABLE, "webhooks subscribers %s: read error", path);
        goto fail;
    }
    fclose(f);
    free(line);
    return subs;
fail:
    if (f) {
        fclose(f);
    }
    free(line);
    s_subs_free(subs);
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_init_rc;

/* libcurl wants its global set-up once per process, before its first handle. */
static void s_curl_init(void)
{
    s_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

gw_webhooks_t *gw_webhooks_new(const gw_webhooks_opts_t *opts, px_status_t *st)
{
    gw_webhooks_t *self = NULL;
    if (!opts->subscribers_file || !*opts->subscribers_file || !opts->state_dir ||
        !*opts->state_dir || !opts->units) {
        px_status_set(st, PX_INVALID_ARGUMENT,
                      "webhooks: a subscribers file, a state directory and the unit tree");
        return NULL;
    }
    if (opts->daily_hour < -1 || opts->daily_hour > 23) {
        px_status_set(st, PX_INVALID_ARGUMENT, "webhooks: the daily hour is 0 to 23, or -1");
        return NULL;
    }
    pthread_once(&s_curl_once, s_curl_init);
    if (s_curl_init_rc != CURLE_OK || sodium_init() < 0) {
        px_status_set(st, PX_INTERNAL, "webhooks: cannot start libcurl or libsodium");
        return NULL;
    }
    if (!(self = calloc(1, sizeof *self)) || !(self->subs_path = strdup(opts->subscribers_file))) {
        free(self);
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    pthread_mutex_init(&self->in_mu, NULL);
    self->store.fd = self->store.lock_fd = -1;
    self->daily_done_day = -1;
    self->opts = *opts;
    self->opts.subscribers_file = self->opts.state_dir = NULL; /* not ours to keep */
    gw_webhooks_opts_t *o = &self->opts;
    o->retry_first_ms = o->retry_first_ms > 0 ? o->retry_first_ms : DEFAULT_RETRY_FIRST_MS;
    o->retry_max_ms = o->retry_max_ms > 0 ? o->retry_max_ms : DEFAULT_RETRY_MAX_MS;
    o->give_up_after_ms = o->give_up_after_ms > 0 ? o->give_up_after_ms : DEFAULT_GIVE_UP_AFTER_MS;
    o->try_timeout_ms = o->try_timeout_ms > 0 ? o->try_timeout_ms : DEFAULT_TRY_TIMEOUT_MS;
    o->replay_horizon_ms = o->replay_horizon_ms > 0 ? o->replay_horizon_ms : DEFAULT_HORIZON_MS;
    o->max_pending = o->max_pending > 0 ? o->max_pending : DEFAULT_MAX_PENDING;

    if (!(self->subs = s_subs_load(self->subs_path, st))) {
        goto fail;
    }
    if (gw__wh_store_open(&self->store, opts->state_dir, gw__wh_now(self),
                          o->replay_horizon_ms * 1000, o->log, st) != PX_OK) {
        goto fail;
    }
    uint64_t pending = 0;
    for (size_t i = 0; i < self->store.n; i++) {
        pending += self->store.v[i]->state == GW__WH_PENDING;
    }
    atomic_store(&self->pending, pending);
    for (size_t i = 0; i < self->store.green.cap; i++) {
        const char *key = gw__wh_map_key_at(&self->store.green, i);
        if (key && !gw__wh_map_put(&self->announced, key, (void *)1)) {
            px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto fail;
        }
    }
    if (!(self->multi = curl_multi_init())) {
        px_status_set(st, PX_INTERNAL, "webhooks: cannot start libcurl");
        goto fail;
    }
    if (pthread_create(&self->thread, NULL, gw__wh_run, self) != 0) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "webhooks: cannot start a thread");
        goto fail;
    }
    self->started = true;
    px_log_emit(o->log, PX_LOG_INFO, "GW-WEBHOOK-START", "webhooks started",
                PX_LOG_FIELDS(PX_LI("subscribers", self->subs->n), PX_LI("pending", pending),
                              PX_LI("kept", self->store.n),
                              PX_LI("green", self->store.green.live)));
    return self;
fail:
    gw_webhooks_destroy(&self);
    return NULL;
}

void gw_webhooks_destroy(gw_webhooks_t **self_p)
{
    if (*self_p) {
        gw_webhooks_t *self = *self_p;
        if (self->started) {
            pthread_mutex_lock(&self->in_mu);
            self->stop = true;
            pthread_mutex_unlock(&self->in_mu);
            curl_multi_wakeup(self->multi);
            pthread_join(self->thread, NULL);
        }
        if (self->multi) {
            curl_multi_cleanup(self->multi);
        }
        gw__wh_store_close(&self->store);
        gw__wh_map_free(&self->announced);
        free(self->inbox);
        s_subs_free(self->subs);
        free(self->subs_path);
        pthread_mutex_destroy(&self->mu);
        pthread_mutex_destroy(&self->in_mu);
        free(self);
        *self_p = NULL;
    }
}

px_code_t gw_webhooks_reload(gw_webhooks_t *self, px_status_t *st)
{
    gw__wh_subs_t *subs = s_subs_load(self->subs_path, st);
    if (!subs) {
        return st->code;
    }
    pthread_mutex_lock(&self->mu);
    gw__wh_subs_t *old = self->subs;
    self->subs = subs;
    self->due_us = 0; /* a subscriber back in the file may have deliveries waiting */
    pthread_mutex_unlock(&self->mu);
    s_subs_free(old);
    curl_multi_wakeup(self->multi);
    px_log_emit(self->opts.log, PX_LOG_INFO, "GW-WEBHOOK-SUBSCRIBERS", "subscribers reloaded",
                PX_LOG_FIELDS(PX_LI("subscribers", subs->n)));
    return PX_OK;
}

/* ---------------------------------------------------------------- the feed's trigger */

void gw_webhooks_on_change(void *ctx, const ProtobufCMessage *msg)
{
    gw_webhooks_t *self = ctx;
    if (!self || !msg || msg->descriptor != &phuxanh__activation__v1__counts_changed__descriptor) {
        return;
    }
    const Phuxanh__Activation__V1__CountsChanged *m = (const void *)msg;
    if (!m->campaign_id || !m->unit_code || !*m->campaign_id ||
        strlen(m->campaign_id) > GW__WH_CAMPAIGN_MAX || !*m->unit_code ||
        strlen(m->unit_code) > 23 ||
        gw_units_level(self->opts.units, m->unit_code) != UNIT_LEVEL_WARD) {
        return;
    }
    char key[GW__WH_GREEN_KEY_MAX];
    gw__wh_green_key(key, m->campaign_id, m->unit_code);
    bool wake = false, full = false;
    pthread_mutex_lock(&self->in_mu);
    bool announced = gw__wh_map_get(&self->announced, key) != NULL;
    if ((bool)m->green != announced) {
        if (self->in_n == self->in_cap && self->in_cap < INBOX_MAX) {
            size_t cap = self->in_cap ? 2 * self->in_cap : 64;
            gw__wh_change_t *v = realloc(self->inbox, cap * sizeof *v);
            if (v) {
                self->inbox = v;
                self->in_cap = cap;
            }
        }
        if (self->in_n == self->in_cap ||
            (m->green && !gw__wh_map_put(&self->announced, key, (void *)1))) {
            full = true;
        } else {
            if (!m->green) {
                gw__wh_map_del(&self->announced, key);
            }
            gw__wh_change_t *c = &self->inbox[self->in_n++];
            memset(c, 0, sizeof *c);
            snprintf(c->campaign, sizeof c->campaign, "%s", m->campaign_id);
            snprintf(c->unit, sizeof c->unit, "%s", m->unit_code);
            c->green = m->green;
            c->target = m->target;
            c->activated = m->activated;
            if (m->changed_at) {
                c->changed_s = m->changed_at->seconds;
                c->changed_ns = m->changed_at->nanos;
            } else {
                c->changed_s = gw__wh_now(self) / 1000000;
            }
            wake = true;
        }
    }
    pthread_mutex_unlock(&self->in_mu);
    if (wake) {
        curl_multi_wakeup(self->multi);
    }
    if (full) {
        atomic_fetch_add(&self->dropped, 1);
        px_log_emit(
            self->opts.log, PX_LOG_ERROR, "GW-WEBHOOK-DROPPED",
            "a ward's change is refused: the webhooks thread is behind",
            PX_LOG_FIELDS(PX_LS("campaign_id", m->campaign_id), PX_LS("unit_code", m->unit_code)));
    }
}

/* ---------------------------------------------------------------- replay and counts */

px_code_t gw_webhooks_replay(gw_webhooks_t *self, int64_t since_unix_us, const char *subscriber,
                             size_t *count, px_status_t *st)
{
    px_code_t code = PX_OK;
    size_t n = 0;
    uint64_t newly_pending = 0;
    gw_buf_t b;
    gw_buf_init(&b);
    pthread_mutex_lock(&self->mu);
    if (subscriber && !gw__wh_sub_find(self->subs, subscriber)) {
        code =
            px_status_set(st, PX_NOT_FOUND, "no webhook subscriber is named \"%.64s\"", subscriber);
        goto done;
    }
    int64_t now = gw__wh_now(self);
    for (size_t i = 0; i < self->store.n; i++) {
        gw__wh_delivery_t *d = self->store.v[i];
        if (d->created_us >= since_unix_us && !d->in_flight &&
            (!subscriber || strcmp(d->subscriber, subscriber) == 0)) {
            gw__wh_delivery_t again = *d;
            again.window_us = now;
            gw__wh_rec_replay(&b, &again);
            n++;
            newly_pending += d->state != GW__WH_PENDING;
        }
    }
    if (atomic_load(&self->pending) + newly_pending > self->opts.max_pending) {
        code = px_status_set(st, PX_RESOURCE_EXHAUSTED,
                             "%zu deliveries would pass the bound of %zu waiting", n,
                             self->opts.max_pending);
        goto done;
    }
    if ((code = gw__wh_store_commit(&self->store, &b, st)) != PX_OK) {
        goto done;
    }
    for (size_t i = 0; i < self->store.n; i++) {
        gw__wh_delivery_t *d = self->store.v[i];
        if (d->created_us >= since_unix_us && !d->in_flight &&
            (!subscriber || strcmp(d->subscriber, subscriber) == 0)) {
            d->state = GW__WH_PENDING;
            d->window_us = d->next_us = now;
            d->tries = 0;
        }
    }
    atomic_fetch_add(&self->pending, newly_pending);
    self->due_us = 0;
    px_log_emit(self->opts.log, PX_LOG_INFO, "GW-WEBHOOK-REPLAY", "deliveries sent again",
                PX_LOG_FIELDS(PX_LI("since_us", since_unix_us), PX_LS("subscriber", subscriber),
                              PX_LI("count", n)));
done:
    pthread_mutex_unlock(&self->mu);
    gw_buf_free(&b);
    if (code == PX_OK) {
        curl_multi_wakeup(self->multi);
    }
    if (count) {
        *count = code == PX_OK ? n : 0;
    }
    return code;
}

void gw_webhooks_counts(gw_webhooks_t *self, uint64_t *delivered, uint64_t *failed_tries,
                        uint64_t *pending, uint64_t *given_up, uint64_t *dropped)
{
    if (delivered) {
        *delivered = atomic_load(&self->delivered);
    }
    if (failed_tries) {
        *failed_tries = atomic_load(&self->failed_tries);
    }
    if (pending) {
        *pending = atomic_load(&self->pending);
    }
    if (given_up) {
        *given_up = atomic_load(&self->given_up);
    }
    if (dropped) {
        *dropped = atomic_load(&self->dropped);
    }
}
