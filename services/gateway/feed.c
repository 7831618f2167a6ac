/*
 * feed.c - the activation service's live feed, as the gateway hears it.
 *
 * One thread owns a SUB socket connected to every activation feed endpoint and
 * a monitor of it. Each CountsChanged it receives is:
 *   - turned once into the JSON of a Server-Sent Event and kept in a ring of the
 *     last `ring` events, numbered by the gateway, from which every /v1/events
 *     stream reads (sse.c) and a client that reconnects resumes (Last-Event-ID);
 *   - a reason to drop the progress answers kept in memory (progress.c);
 *   - handed to the webhooks, which look for wards going green.
 *
 * Whether the feed is whole decides whether memory may answer at all: the
 * publisher (one per activation process, known by its random id) numbers its
 * messages and sends a heartbeat with its last number every second, so silence,
 * a disconnect, a new publisher or a gap in the numbers each mean "something may
 * have been missed", and the progress cache is told.
 *
 * Parked streams: a stream with nothing to send parks its connection in the
 * waiter list under the feed's lock (gw_feed_read), and every new event, and a
 * tick each second (for keep-alive comments), resumes them all under the same
 * lock, so no wake-up is lost between "nothing new" and "parked".
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "gateway.h"
#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/clock.h"
#include "phuxanh/json.h"

/* Publishers (activation replicas) tracked at once. */
#define PUBLISHERS_MAX 16
/* Heartbeats missed before the feed counts as silent. */
#define SILENT_BEATS 3
#define TICK_MS 1000
#define MSG_MAX 4096

typedef struct {
    char id[33];
    uint64_t last_seq;
    int64_t last_heard_us;
} s_pub_t;

struct gw_feed_t {
    gw_feed_opts_t opts;
    pthread_t thread;
    bool started;
    void *ctx; /* a context of its own: the feed shares no socket with the RPC runtime */
    pthread_mutex_t mu;
    /* under mu */
    bool stop;
    gw_feed_event_t *ring;
    uint64_t next_id; /* id of the next event; ids start at 1 */
    gw_req_t **waiters;
    size_t nwaiters, waiters_cap;
    /* the thread's */
    s_pub_t pubs[PUBLISHERS_MAX];
    int connected;
    int64_t last_heard_us;
    atomic_bool ok;
    atomic_uint_fast64_t received, gaps;
    char boot[9];
};

/* ---------------------------------------------------------------- health */

static void s_set_ok(gw_feed_t *self, bool ok, const char *why)
{
    if (atomic_exchange(&self->ok, ok) != ok) {
        px_log_emit(self->opts.log, ok ? PX_LOG_INFO : PX_LOG_WARN,
                    ok ? "GW-FEED-OK" : "GW-FEED-BROKEN", why, NULL);
    }
    if (self->opts.progress) {
        gw_progress_set_feed_ok(self->opts.progress, ok);
    }
}

/* A message from publisher id with sequence seq (a heartbeat's: the last one used). */
static void s_seen(gw_feed_t *self, const char *id, uint64_t seq, bool heartbeat)
{
    int64_t now = px_clock_us();
    self->last_heard_us = now;
    s_pub_t *p = NULL, *oldest = &self->pubs[0];
    for (int i = 0; i < PUBLISHERS_MAX; i++) {
        if (strcmp(self->pubs[i].id, id) == 0) {
            p = &self->pubs[i];
            break;
        }
        if (self->pubs[i].last_heard_us < oldest->last_heard_us) {
            oldest = &self->pubs[i];
        }
    }
    if (!p) {
        /* A publisher we have not heard: a new process, or one we lost track of. Its earlier
         * messages may have gone by: what memory holds is suspect. */
        p = oldest;
        snprintf(p->id, sizeof p->id, "%s", id);
        p->last_seq = seq;
        p->last_heard_us = now;
        if (self->opts.progress) {
            gw_progress_invalidate(self->opts.progress);
        }
        s_set_ok(self, self->connected > 0, "feed heard from a publisher");
        return;
    }
    uint64_t expected = heartbeat ? p->last_seq : p->last_seq + 1;
    if (seq != expected && !(heartbeat && seq < p->last_seq)) {
        atomic_fetch_add(&self->gaps, 1);
        px_log_emit(self->opts.log, PX_LOG_WARN, "GW-FEED-GAP", "feed messages were lost",
                    PX_LOG_FIELDS(PX_LS("publisher", id), PX_LI("expected", (int64_t)expected),
                                  PX_LI("got", (int64_t)seq)));
        if (self->opts.progress) {
            gw_progress_invalidate(self->opts.progress);
        }
    }
    if (seq > p->last_seq) {
        p->last_seq = seq;
    }
    p->last_heard_us = now;
    s_set_ok(self, self->connected > 0, "feed whole again");
}

/* ---------------------------------------------------------------- the ring */

static void s_wake_all(gw_feed_t *self)
{
    for (size_t i = 0; i < self->nwaiters; i++) {
        gw_req_resume(self->waiters[i]);
    }
    self->nwaiters = 0;
}

static void s_event_free(gw_feed_event_t *e)
{
    free(e->campaign);
    free(e->unit);
    free(e->json);
    memset(e, 0, sizeof *e);
}

static void s_counts(gw_feed_t *self, const Phuxanh__Activation__V1__CountsChanged *m)
{
    px_status_t st;
    size_t len = 0;
    char *json = px_json_from_message(&m->base, &len, &st);
    if (!json) {
        return;
    }
    if (self->opts.progress) {
        gw_progress_invalidate(self->opts.progress);
    }
    if (self->opts.on_change) {
        self->opts.on_change(self->opts.on_change_ctx, &m->base);
    }
    pthread_mutex_lock(&self->mu);
    gw_feed_event_t *e = &self->ring[self->next_id % self->opts.ring];
    s_event_free(e);
    e->id = self->next_id++;
    e->campaign = strdup(m->campaign_id);
    e->unit = strdup(m->unit_code);
    e->json = json;
    e->len = len;
    s_wake_all(self);
    pthread_mutex_unlock(&self->mu);
}

/* ---------------------------------------------------------------- the thread */

static void s_monitor_event(gw_feed_t *self, void *mon)
{
    zmq_msg_t m1, m2;
    zmq_msg_init(&m1);
    zmq_msg_init(&m2);
    if (zmq_msg_recv(&m1, mon, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m1);
        zmq_msg_close(&m2);
        return;
    }
    uint16_t event = 0;
    if (zmq_msg_size(&m1) >= 2) {
        memcpy(&event, zmq_msg_data(&m1), 2);
    }
    if (zmq_msg_more(&m1)) {
        zmq_msg_recv(&m2, mon, 0);
    }
    zmq_msg_close(&m1);
    zmq_msg_close(&m2);
    if (event == ZMQ_EVENT_CONNECTED) {
        self->connected++;
        /* Connected is not yet whole: the first heartbeat or message tells. */
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
        if (self->connected > 0) {
            self->connected--;
        }
        s_set_ok(self, false, "feed disconnected");
    }
}

static void s_receive(gw_feed_t *self, void *sub)
{
    char topic[256];
    uint8_t buf[MSG_MAX];
    for (int k = 0; k < 1000; k++) {
        int tn = zmq_recv(sub, topic, sizeof topic - 1, ZMQ_DONTWAIT);
        if (tn < 0) {
            return;
        }
        int more = 0;
        size_t sz = sizeof more;
        zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &sz);
        if (!more) {
            continue;
        }
        int n = zmq_recv(sub, buf, sizeof buf, 0);
        zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &sz);
        while (more) { /* nothing we know has three frames: drop the rest */
            char junk[64];
            zmq_recv(sub, junk, sizeof junk, 0);
            zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &sz);
        }
        if (n < 0 || (size_t)n > sizeof buf) {
            continue;
        }
        topic[tn < (int)sizeof topic ? tn : (int)sizeof topic - 1] = '\0';
        atomic_fetch_add(&self->received, 1);
        if (strcmp(topic, "hb") == 0) {
            Phuxanh__Activation__V1__FeedHeartbeat *hb =
                phuxanh__activation__v1__feed_heartbeat__unpack(NULL, (size_t)n, buf);
            if (hb) {
                s_seen(self, hb->publisher, hb->sequence, true);
                phuxanh__activation__v1__feed_heartbeat__free_unpacked(hb, NULL);
            }
        } else if (strncmp(topic, "counts.", 7) == 0) {
            Phuxanh__Activation__V1__CountsChanged *m =
                phuxanh__activation__v1__counts_changed__unpack(NULL, (size_t)n, buf);
            if (m) {
                s_seen(self, m->publisher, m->sequence, false);
                s_counts(self, m);
                phuxanh__activation__v1__counts_changed__free_unpacked(m, NULL);
            }
        }
    }
}

static void *s_thread(void *arg)
{
    gw_feed_t *self = arg;
    void *sub = zmq_socket(self->ctx, ZMQ_SUB);
    void *mon = NULL;
    char mon_addr[64];
    snprintf(mon_addr, sizeof mon_addr, "inproc://gw-feed-mon-%p", (void *)self);
    int linger = 0, ivl = 100, ivl_max = 2000, hwm = 1000000;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sub, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(sub, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "counts.", 7);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "hb", 2);
    if (zmq_socket_monitor(sub, mon_addr, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) == 0) {
        mon = zmq_socket(self->ctx, ZMQ_PAIR);
        zmq_setsockopt(mon, ZMQ_LINGER, &linger, sizeof linger);
        zmq_connect(mon, mon_addr);
    }
    px_status_t st;
    const char *endpoints = self->opts.endpoints;
    if (self->opts.curve &&
        px_curve_client_setup(self->opts.curve, sub, "activation", &st) != PX_OK) {
        /* Logged and left unconnected: plaintext to a CURVE feed would only be refused. */
        px_log_emit(self->opts.log, PX_LOG_ERROR, "GW-FEED-CURVE", st.message, NULL);
        endpoints = "";
    }
    char *eps = strdup(endpoints);
    char *save = NULL;
    for (char *ep = eps ? strtok_r(eps, ",", &save) : NULL; ep; ep = strtok_r(NULL, ",", &save)) {
        if (zmq_connect(sub, ep) != 0) {
            px_log_emit(self->opts.log, PX_LOG_ERROR, "GW-FEED-CONNECT", zmq_strerror(zmq_errno()),
                        PX_LOG_FIELDS(PX_LS("endpoint", ep)));
        }
    }
    free(eps);
    int64_t next_tick = px_clock_us() + TICK_MS * 1000;
    for (;;) {
        pthread_mutex_lock(&self->mu);
        bool stop = self->stop;
        pthread_mutex_unlock(&self->mu);
        if (stop) {
            break;
        }
        zmq_pollitem_t items[2] = {{sub, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
        long wait = (long)((next_tick - px_clock_us()) / 1000);
        zmq_poll(items, mon ? 2 : 1, wait < 0 ? 0 : wait);
        if (mon && (items[1].revents & ZMQ_POLLIN)) {
            s_monitor_event(self, mon);
        }
        if (items[0].revents & ZMQ_POLLIN) {
            s_receive(self, sub);
        }
        int64_t now = px_clock_us();
        if (now >= next_tick) {
            next_tick = now + TICK_MS * 1000;
            int64_t silent = (int64_t)self->opts.heartbeat_ms * SILENT_BEATS * 1000;
            if (atomic_load(&self->ok) && now - self->last_heard_us > silent) {
                s_set_ok(self, false, "feed silent: no heartbeat");
            }
            pthread_mutex_lock(&self->mu);
            s_wake_all(self); /* keep-alive comments are due by now for some streams */
            pthread_mutex_unlock(&self->mu);
        }
    }
    if (mon) {
        zmq_socket_monitor(sub, NULL, 0);
        zmq_close(mon);
    }
    zmq_close(sub);
    return NULL;
}

/* ---------------------------------------------------------------- public */

gw_feed_t *gw_feed_new(const gw_feed_opts_t *opts, px_status_t *st)
{
    gw_feed_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    self->opts = *opts;
    if (self->opts.ring == 0) {
        self->opts.ring = 10000;
    }
    if (self->opts.heartbeat_ms <= 0) {
        self->opts.heartbeat_ms = 1000;
    }
    self->next_id = 1;
    uint32_t boot = randombytes_random();
    snprintf(self->boot, sizeof self->boot, "%08x", boot);
    pthread_mutex_init(&self->mu, NULL);
    self->ring = calloc(self->opts.ring, sizeof *self->ring);
    self->ctx = zmq_ctx_new();
    if (!self->ring || !self->ctx) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        gw_feed_destroy(&self);
        return NULL;
    }
    if (self->opts.progress) {
        gw_progress_set_feed_ok(self->opts.progress, false);
    }
    if (self->opts.endpoints && *self->opts.endpoints) {
        if (pthread_create(&self->thread, NULL, s_thread, self) != 0) {
            px_status_set(st, PX_RESOURCE_EXHAUSTED, "cannot start the feed thread");
            gw_feed_destroy(&self);
            return NULL;
        }
        self->started = true;
    }
    return self;
}

void gw_feed_destroy(gw_feed_t **self_p)
{
    if (!*self_p) {
        return;
    }
    gw_feed_t *self = *self_p;
    pthread_mutex_lock(&self->mu);
    self->stop = true;
    s_wake_all(self);
    pthread_mutex_unlock(&self->mu);
    if (self->started) {
        pthread_join(self->thread, NULL);
    }
    for (size_t i = 0; self->ring && i < self->opts.ring; i++) {
        s_event_free(&self->ring[i]);
    }
    free(self->ring);
    free(self->waiters);
    if (self->ctx) {
        zmq_ctx_term(self->ctx);
    }
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}

void gw_feed_close(gw_feed_t *self)
{
    pthread_mutex_lock(&self->mu);
    self->stop = true;
    s_wake_all(self);
    pthread_mutex_unlock(&self->mu);
    if (self->started) {
        pthread_join(self->thread, NULL);
        self->started = false;
    }
}

bool gw_feed_ok(gw_feed_t *self)
{
    return atomic_load(&self->ok);
}

const char *gw_feed_boot(gw_feed_t *self)
{
    return self->boot;
}

void gw_feed_counts(gw_feed_t *self, uint64_t *received, uint64_t *gaps)
{
    *received = atomic_load(&self->received);
    *gaps = atomic_load(&self->gaps);
}

uint64_t gw_feed_next_id(gw_feed_t *self)
{
    pthread_mutex_lock(&self->mu);
    uint64_t n = self->next_id;
    pthread_mutex_unlock(&self->mu);
    return n;
}

int gw_feed_read(gw_feed_t *self, uint64_t *next, gw_feed_visit_fn fn, void *ctx, gw_req_t *park)
{
    int rc = 0;
    pthread_mutex_lock(&self->mu);
    if (self->stop) {
        pthread_mutex_unlock(&self->mu);
        return -1;
    }
    uint64_t oldest = self->next_id > self->opts.ring ? self->next_id - self->opts.ring : 1;
    if (*next < oldest) {
        *next = oldest;
        rc = 1; /* the reader fell behind the ring: events were lost to it */
    }
    if (*next > self->next_id) {
        *next = self->next_id;
    }
    bool visited = false;
    while (*next < self->next_id) {
        const gw_feed_event_t *e = &self->ring[*next % self->opts.ring];
        if (!fn(ctx, e)) {
            break;
        }
        visited = true;
        (*next)++;
    }
    if (!visited && rc == 0 && park && *next == self->next_id) {
        if (self->nwaiters == self->waiters_cap) {
            size_t cap = self->waiters_cap ? self->waiters_cap * 2 : 16;
            gw_req_t **w = realloc(self->waiters, cap * sizeof *w);
            if (w) {
                self->waiters = w;
                self->waiters_cap = cap;
            }
        }
        if (self->nwaiters < self->waiters_cap) {
            gw_req_stream_park(park);
            self->waiters[self->nwaiters++] = park;
            rc = 2;
        }
    }
    pthread_mutex_unlock(&self->mu);
    return rc;
}

void gw_feed_forget(gw_feed_t *self, gw_req_t *req)
{
    pthread_mutex_lock(&self->mu);
    for (size_t i = 0; i < self->nwaiters; i++) {
        if (self->waiters[i] == req) {
            self->waiters[i] = self->waiters[--self->nwaiters];
            break;
        }
    }
    pthread_mutex_unlock(&self->mu);
}
