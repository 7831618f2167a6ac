/*
 * progress.c - GetProgress answers kept in memory, as fresh as the live feed.
 *
 * Dashboards and other systems ask for the same few units' progress over and
 * over; asking PostgreSQL each time would make the gateway only as fast as a
 * query. So an answer is kept, in both encodings, and reused while nothing can
 * have changed it. "Nothing changed" is known from the activation service's feed
 * (feed.c), which publishes every committed change of counts or targets:
 *
 * - Every change on the feed, and every write through this gateway
 *   (RecordEvents, SetTargets), moves one generation counter; an answer is kept
 *   with the generation its call started under and is served only while the
 *   counter has not moved. An answer whose call raced a change is thus never
 *   served, even if it arrives after the change.
 * - While the feed is not known to be whole (not connected, silent for longer
 *   than its heartbeat allows, a gap in its sequence), nothing is served from
 *   memory: every request asks the service.
 * - An answer is also refreshed after max_age, which bounds what the feed does
 *   not carry (a unit renamed in the roster): the first caller past max_age asks
 *   the service, and the others are served the kept answer meanwhile (at most
 *   twice max_age old), so an expiry does not send every caller to the service
 *   at once.
 *
 * So an answer from memory reflects every change the feed had delivered when the
 * answer was given; the feed trails commits by the publisher's gathering window
 * (20 ms) plus delivery.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "phuxanh/clock.h"
#include "phuxanh/hash.h"
#include "phuxanh/json.h"

/* Distinct (campaign, unit) pairs kept: a dashboard asks for a province, its districts and
 * wards; a province has a few hundred units. A collision replaces the older entry. */
#define SLOTS 4096
#define KEY_MAX 160

typedef struct {
    char key[KEY_MAX];
    uint64_t stamp;
    int64_t at_us;
    int64_t refresh_us; /* when one caller was sent to refresh it past max age (0: none) */
    uint8_t *json, *proto;
    size_t json_len, proto_len;
} s_entry_t;

struct gw_progress_t {
    pthread_mutex_t mu;
    s_entry_t *slots;
    int64_t max_age_us;
    atomic_uint_fast64_t gen;
    atomic_bool feed_ok;
    atomic_uint_fast64_t hits, misses;
};

static size_t s_slot(const char *key)
{
    return (size_t)(px_hash_str(key, PX_HASH_SEED) % SLOTS);
}

static bool s_key(char *key, const char *campaign, const char *unit)
{
    int n = snprintf(key, KEY_MAX, "%s\x1f%s", campaign ? campaign : "", unit ? unit : "");
    return n > 0 && n < KEY_MAX;
}

gw_progress_t *gw_progress_new(int64_t max_age_ms)
{
    gw_progress_t *self = calloc(1, sizeof *self);
    if (!self || !(self->slots = calloc(SLOTS, sizeof *self->slots))) {
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    self->max_age_us = max_age_ms * 1000;
    atomic_store(&self->gen, 1);
    return self;
}

void gw_progress_destroy(gw_progress_t **self_p)
{
    if (*self_p) {
        gw_progress_t *self = *self_p;
        for (size_t i = 0; i < SLOTS; i++) {
            free(self->slots[i].json);
            free(self->slots[i].proto);
        }
        free(self->slots);
        pthread_mutex_destroy(&self->mu);
        free(self);
        *self_p = NULL;
    }
}

bool gw_progress_get(gw_progress_t *self, const char *campaign, const char *unit, bool json,
                     uint8_t **out, size_t *len)
{
    char key[KEY_MAX];
    if (!atomic_load(&self->feed_ok) || self->max_age_us <= 0 || !s_key(key, campaign, unit)) {
        atomic_fetch_add(&self->misses, 1);
        return false;
    }
    bool hit = false;
    uint64_t gen = atomic_load(&self->gen);
    int64_t now = px_clock_us();
    pthread_mutex_lock(&self->mu);
    s_entry_t *e = &self->slots[s_slot(key)];
    bool fresh = false;
    if (e->stamp == gen && strcmp(e->key, key) == 0) {
        if (now - e->at_us < self->max_age_us) {
            fresh = true;
        } else if (now - e->refresh_us >= self->max_age_us) {
            /* Past max age with nothing changed on the feed: this caller refreshes it, and
             * until its answer comes (or a max age more passes) the others keep being served
             * this one, instead of all asking the service at the same moment. */
            e->refresh_us = now;
        } else {
            fresh = now - e->at_us < 2 * self->max_age_us;
        }
    }
    if (fresh) {
        const uint8_t *src = json ? e->json : e->proto;
        size_t n = json ? e->json_len : e->proto_len;
        *out = malloc(n ? n : 1);
        if (*out) {
            memcpy(*out, src, n);
            *len = n;
            hit = true;
        }
    }
    pthread_mutex_unlock(&self->mu);
    atomic_fetch_add(hit ? &self->hits : &self->misses, 1);
    return hit;
}

uint64_t gw_progress_stamp(gw_progress_t *self)
{
    return atomic_load(&self->gen);
}

void gw_progress_put(gw_progress_t *self, const char *campaign, const char *unit, uint64_t stamp,
                     const ProtobufCMessage *reply)
{
    char key[KEY_MAX];
    if (!reply || !s_key(key, campaign, unit) || stamp != atomic_load(&self->gen)) {
        return; /* something changed while the call ran: this answer may be stale */
    }
    px_status_t st;
    size_t json_len = 0;
    char *json = px_json_from_message(reply, &json_len, &st);
    size_t proto_len = protobuf_c_message_get_packed_size(reply);
    uint8_t *proto = malloc(proto_len ? proto_len : 1);
    if (!json || !proto) {
        free(json);
        free(proto);
        return;
    }
    protobuf_c_message_pack(reply, proto);
    pthread_mutex_lock(&self->mu);
    s_entry_t *e = &self->slots[s_slot(key)];
    free(e->json);
    free(e->proto);
    snprintf(e->key, sizeof e->key, "%s", key);
    e->stamp = stamp;
    e->at_us = px_clock_us();
    e->refresh_us = 0;
    e->json = (uint8_t *)json;
    e->json_len = json_len;
    e->proto = proto;
    e->proto_len = proto_len;
    pthread_mutex_unlock(&self->mu);
}

void gw_progress_invalidate(gw_progress_t *self)
{
    atomic_fetch_add(&self->gen, 1);
}

void gw_progress_set_feed_ok(gw_progress_t *self, bool ok)
{
    /* Both ways the generation moves: answers kept while the feed was not whole may have
     * missed changes, so they must not be served once it is whole again. */
    if (atomic_exchange(&self->feed_ok, ok) != ok) {
        atomic_fetch_add(&self->gen, 1);
    }
}

void gw_progress_counts(gw_progress_t *self, uint64_t *hits, uint64_t *misses)
{
    *hits = atomic_load(&self->hits);
    *misses = atomic_load(&self->misses);
}
