/*
 * publisher.c - the PUB socket of the live feed for dashboards and the
 * gateway: count and target changes (CountsChanged) and heartbeats
 * (FeedHeartbeat).
 *
 * After a RecordEvents or SetTargets transaction commits, the worker hands the
 * (campaign, unit, stage) rows it changed to this file; one publisher thread
 * owns the PUB socket bound to pub-endpoint, reads the units' figures after the
 * commit and sends one two-frame message [topic "counts.<campaign>.<unit>"]
 * [CountsChanged] per changed row, and every pub-heartbeat-ms a two-frame
 * [topic "hb"][FeedHeartbeat].
 *
 * Why a thread and a queue: a ZeroMQ socket never crosses threads, and one
 * endpoint can be bound by one socket only, so the workers cannot each own a
 * PUB. The hand-over is a fixed-size ring under a mutex with a condition
 * variable, not an inproc PUSH per worker: with the ring no worker holds a
 * socket (nothing to create lazily, nothing to close at thread exit, and no
 * context that cannot terminate while a worker's socket lives), and a worker
 * spends a memcpy under a short lock. When the ring is full the batch's changes
 * are dropped - the call is never blocked or failed by a slow subscriber or a
 * slow read.
 *
 * Why a dropped change still uses up a sequence number: a subscriber (the
 * gateway keeps GetProgress answers from this feed) must know, without
 * guessing, whether it missed something. Every change handed over takes one
 * number, sent or not, so a gap in `sequence` means exactly "you missed
 * something". The numbers are the thread's; a change dropped elsewhere (a
 * worker finding the ring full) is counted in `unnumbered`, and the thread
 * adds those to the sequence before it numbers its next message or heartbeat.
 * The heartbeat carries the last number used, so a loss shows even when no
 * message follows it, and its silence shows a feed that is down. The
 * publisher id, random per process, tells a restart (a sequence starting
 * again) from a loss and one replica from another.
 *
 * Why the figures are read here, not by the worker: the message carries the
 * unit's whole row (every stage, the effective target, green), which the batch
 * alone does not know. Reading it costs a query; doing it on this thread, with
 * its own connection, keeps it off the RPC path. The figures are then those
 * after the commit (or a later one, which publishes its own message next).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "activation.h"
#include "phuxanh/clock.h"

/* The shortest time between two reads of the figures (see s_thread). */
#define S_GATHER_MS 20
/* Messages a slow subscriber may fall behind by before ZeroMQ drops for it. */
#define S_SNDHWM 100000
/* Random bytes of the publisher id (printed as twice as many hex characters): 64 bits make two
 * processes drawing the same id vanishingly unlikely. */
#define S_ID_BYTES 8
/* A packed CountsChanged: its strings are bounded codes, so it is far smaller than this. */
#define S_MSG_MAX 512

typedef struct {
    char campaign[ACT_CAMPAIGN_MAX + 1];
    char unit[ACT_CODE_MAX + 1];
    int stage;
    int64_t at_us;
} s_entry_t;

/* A unit's figures after the commit. */
typedef struct {
    const char *campaign, *unit;
    int32_t target, counts[5];
} s_fig_t;

struct act_pub_t {
    px_log_t *log;
    px_db_t *db;
    void *zctx, *pub;
    pthread_t thread;
    bool started;
    char id[2 * S_ID_BYTES + 1];
    int64_t heartbeat_us;
    size_t cap; /* of the ring */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC, the scale of px_clock_us */
    bool stop;
    s_entry_t *ring; /* under mu */
    size_t head, count;
    atomic_llong dropped;    /* changes not sent, for the log */
    atomic_llong unnumbered; /* dropped changes whose numbers the thread has not used up yet */
    uint64_t sequence;       /* the thread's only: the last number used */
};

/* Per (campaign, unit): the effective target (its own, else the sum of its children's, as
 * GetProgress computes it: the walk stops at every unit that has one) and the totals. */
static const px_db_stmt_t s_figures = {
    "act_pub_figures",
    "WITH RECURSIVE q AS (SELECT DISTINCT c, u FROM unnest($1::text[], $2::text[]) AS x(c, u)), "
    "walk(c, root, code, t, depth) AS ("
    "  SELECT q.c, q.u, q.u, tg.target, 0 FROM q LEFT JOIN targets tg "
    "  ON tg.campaign_id = q.c AND tg.unit_code = q.u"
    "  UNION ALL"
    "  SELECT w.c, w.root, un.code, tg.target, w.depth + 1 FROM walk w "
    "  JOIN units un ON un.parent_code = w.code "
    "  LEFT JOIN targets tg ON tg.campaign_id = w.c AND tg.unit_code = un.code "
    "  WHERE w.t IS NULL AND w.depth < 8) "
    "SELECT q.c, q.u, (SELECT coalesce(sum(w.t), 0) FROM walk w WHERE w.c = q.c AND w.root = q.u), "
    "coalesce(sum(t.count) FILTER (WHERE t.stage = 1), 0), "
    "coalesce(sum(t.count) FILTER (WHERE t.stage = 2), 0), "
    "coalesce(sum(t.count) FILTER (WHERE t.stage = 3), 0), "
    "coalesce(sum(t.count) FILTER (WHERE t.stage = 4), 0) "
    "FROM q LEFT JOIN totals_shards t ON t.campaign_id = q.c AND t.unit_code = q.u "
    "GROUP BY q.c, q.u ORDER BY q.c, q.u",
};

static int s_fig_cmp(const void *a, const void *b)
{
    const s_fig_t *x = a, *y = b;
    int c = strcmp(x->campaign, y->campaign);
    return c ? c : strcmp(x->unit, y->unit);
}

/* n changes will not be sent and have no number yet: the thread gives them theirs. */
static void s_drop(act_pub_t *self, long long n)
{
    atomic_fetch_add(&self->dropped, n);
    atomic_fetch_add(&self->unnumbered, n);
}

/* Uses up the numbers of the changes dropped so far; returns the last number used. */
static uint64_t s_fold(act_pub_t *self)
{
    self->sequence += (uint64_t)atomic_exchange(&self->unnumbered, 0);
    return self->sequence;
}

static void s_ts(Google__Protobuf__Timestamp *ts, int64_t at_us)
{
    ts->seconds = at_us / 1000000;
    ts->nanos = (int32_t)(at_us % 1000000) * 1000;
}

/* Sends one message of two frames; false when ZeroMQ refused it. PUB never blocks: past the
 * high-water mark ZeroMQ drops for that subscriber (and says nothing). */
static bool s_zsend(act_pub_t *self, const char *topic, size_t tn, const uint8_t *buf, size_t len)
{
    return zmq_send(self->pub, topic, tn, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
           zmq_send(self->pub, buf, len, ZMQ_DONTWAIT) >= 0;
}

static void s_send(act_pub_t *self, const s_entry_t *e, const s_fig_t *f)
{
    Phuxanh__Activation__V1__CountsChanged m = PHUXANH__ACTIVATION__V1__COUNTS_CHANGED__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    s_ts(&ts, e->at_us);
    m.campaign_id = (char *)e->campaign;
    m.unit_code = (char *)e->unit;
    m.stage = (Phuxanh__Activation__V1__Stage)e->stage;
    m.target = f->target;
    m.collected = f->counts[1];
    m.approved = f->counts[2];
    m.activated = f->counts[3];
    m.rejected = f->counts[4];
    m.approved_not_activated = m.approved > m.activated ? m.approved - m.activated : 0;
    m.green = m.target > 0 && m.activated >= m.target;
    m.changed_at = &ts;
    /* The number is used up from here on, whether the send below works or not. */
    s_fold(self);
    m.sequence = ++self->sequence;
    m.publisher = self->id;
    char topic[8 + ACT_CAMPAIGN_MAX + 1 + ACT_CODE_MAX + 1];
    int tn = snprintf(topic, sizeof topic, "counts.%s.%s", e->campaign, e->unit);
    uint8_t buf[S_MSG_MAX];
    size_t len = phuxanh__activation__v1__counts_changed__get_packed_size(&m);
    if (len > sizeof buf || tn < 0 || (size_t)tn >= sizeof topic) {
        atomic_fetch_add(&self->dropped, 1);
        return;
    }
    phuxanh__activation__v1__counts_changed__pack(&m, buf);
    if (!s_zsend(self, topic, (size_t)tn, buf, len)) {
        atomic_fetch_add(&self->dropped, 1);
    }
}

static void s_heartbeat(act_pub_t *self)
{
    Phuxanh__Activation__V1__FeedHeartbeat m = PHUXANH__ACTIVATION__V1__FEED_HEARTBEAT__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    s_ts(&ts, px_wall_us());
    m.publisher = self->id;
    m.sequence = s_fold(self);
    m.sent_at = &ts;
    uint8_t buf[S_MSG_MAX];
    size_t len = phuxanh__activation__v1__feed_heartbeat__get_packed_size(&m);
    if (len <= sizeof buf) {
        phuxanh__activation__v1__feed_heartbeat__pack(&m, buf);
        /* A heartbeat ZeroMQ refused is not counted: it has no number, and the next one
         * carries the same news. */
        s_zsend(self, "hb", 2, buf, len);
    }
}

/* Reads the figures of the units of batch[0..n) and publishes one message per entry. */
static void s_publish(act_pub_t *self, const s_entry_t *batch, size_t n)
{
    act_arr_t camps, units;
    act_arr_init(&camps), act_arr_init(&units);
    for (size_t i = 0; i < n; i++) {
        act_arr_add(&camps, batch[i].campaign);
        act_arr_add(&units, batch[i].unit);
    }
    const char *p[2] = {act_arr_end(&camps), act_arr_end(&units)};
    PGresult *res = NULL;
    s_fig_t *figs = NULL;
    px_status_t st;
    if (!p[0] || !p[1] || px_db_execp(self->db, &s_figures, 2, p, &res, &st) != PX_OK) {
        if (p[0] && p[1]) {
            px_log_emit(self->log, PX_LOG_WARN, "ACT-PUB-READ",
                        "count changes not published: figures not read",
                        PX_LOG_FIELDS(PX_LS("code", px_code_name(st.code)),
                                      PX_LS("error", st.message), PX_LI("changes", (int64_t)n)));
        }
        s_drop(self, (long long)n);
        goto done;
    }
    int rows = PQntuples(res);
    figs = calloc((size_t)rows + 1, sizeof *figs);
    if (!figs) {
        s_drop(self, (long long)n);
        goto done;
    }
    for (int r = 0; r < rows; r++) {
        figs[r].campaign = PQgetvalue(res, r, 0);
        figs[r].unit = PQgetvalue(res, r, 1);
        long long t = atoll(PQgetvalue(res, r, 2));
        figs[r].target = t > INT32_MAX ? INT32_MAX : (int32_t)t;
        for (int s = 1; s <= 4; s++) {
            figs[r].counts[s] = (int32_t)atol(PQgetvalue(res, r, 2 + s));
        }
    }
    /* Rows come sorted by (campaign, unit) in C collation order of the database; sort again
     * with strcmp so bsearch agrees. */
    qsort(figs, (size_t)rows, sizeof *figs, s_fig_cmp);
    for (size_t i = 0; i < n; i++) {
        s_fig_t key = {.campaign = batch[i].campaign, .unit = batch[i].unit};
        const s_fig_t *f = bsearch(&key, figs, (size_t)rows, sizeof *figs, s_fig_cmp);
        if (f) {
            s_send(self, &batch[i], f);
        } else {
            s_drop(self, 1);
        }
    }
done:
    free(figs);
    PQclear(res);
    act_arr_free(&camps), act_arr_free(&units);
}

/* Waits on cv (mu held) until at_us on px_clock_us's scale, a signal, or a spurious wake. */
static void s_wait(act_pub_t *self, int64_t at_us)
{
    struct timespec until = {.tv_sec = at_us / 1000000, .tv_nsec = (at_us % 1000000) * 1000};
    pthread_cond_timedwait(&self->cv, &self->mu, &until);
}

static void *s_thread(void *arg)
{
    act_pub_t *self = arg;
    s_entry_t *batch = malloc(self->cap * sizeof *batch);
    long long reported = 0;
    if (!batch) {
        px_log_emit(self->log, PX_LOG_ERROR, "ACT-PUB-OOM", "publisher stopped: out of memory",
                    NULL);
        return NULL;
    }
    int64_t last_us = 0, next_hb = px_clock_us() + self->heartbeat_us;
    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&self->mu);
        while (!self->stop && self->count == 0 && px_clock_us() < next_hb) {
            s_wait(self, next_hb);
        }
        /* At most one read of the figures per S_GATHER_MS: under load the commits of that
         * window share one query (each still gets its own messages, with the figures after
         * it or a later commit). Idle, the first change goes out at once. */
        int64_t gathered = last_us + S_GATHER_MS * 1000;
        while (self->count > 0 && !self->stop && px_clock_us() < gathered) {
            s_wait(self, gathered);
        }
        bool stop = self->stop;
        while (self->count > 0) {
            batch[n++] = self->ring[self->head];
            self->head = (self->head + 1) % self->cap;
            self->count--;
        }
        pthread_mutex_unlock(&self->mu);
        if (n > 0) {
            last_us = px_clock_us();
            s_publish(self, batch, n);
        }
        /* Due or overdue (after a long read of the figures): one now, the next an interval
         * later. */
        if (!stop && px_clock_us() >= next_hb) {
            s_heartbeat(self);
            next_hb = px_clock_us() + self->heartbeat_us;
        }
        long long dropped = atomic_load(&self->dropped);
        if (dropped != reported) {
            px_log_emit(self->log, PX_LOG_WARN, "ACT-PUB-DROP", "count changes not published",
                        PX_LOG_FIELDS(PX_LI("dropped_total", dropped),
                                      PX_LI("sequence", (int64_t)s_fold(self))));
            reported = dropped;
        }
        if (stop) {
            break;
        }
    }
    free(batch);
    return NULL;
}

act_pub_t *act_pub_start(const char *endpoint, const char *db_url, const act_pub_opts_t *opts,
                         px_log_t *log, px_status_t *st)
{
    act_pub_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    self->log = log;
    self->cap = opts->queue_max;
    self->heartbeat_us = (int64_t)opts->heartbeat_ms * 1000;
    unsigned char raw[S_ID_BYTES];
    randombytes_buf(raw, sizeof raw);
    act_hex(raw, sizeof raw, self->id);
    pthread_mutex_init(&self->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&self->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&self->dropped, 0);
    atomic_init(&self->unnumbered, 0);
    self->ring = self->cap > 0 ? malloc(self->cap * sizeof *self->ring) : NULL;
    self->db = px_db_new(db_url, log);
    self->zctx = zmq_ctx_new();
    if (!self->ring || !self->db || !self->zctx) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    self->pub = zmq_socket(self->zctx, ZMQ_PUB);
    if (self->pub && opts->curve &&
        px_curve_server_setup(opts->curve, self->zctx, self->pub, st) != PX_OK) {
        goto fail;
    }
    int hwm = S_SNDHWM, linger = 0;
    if (!self->pub || zmq_setsockopt(self->pub, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(self->pub, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(self->pub, endpoint) != 0) {
        px_status_set(st, PX_UNAVAILABLE, "pub-endpoint: cannot bind %s: %s", endpoint,
                      zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (pthread_create(&self->thread, NULL, s_thread, self) != 0) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "publisher thread not started");
        goto fail;
    }
    self->started = true;
    px_log_emit(log, PX_LOG_INFO, "ACT-PUB-START", "publishing count changes",
                PX_LOG_FIELDS(PX_LS("endpoint", endpoint), PX_LS("publisher", self->id)));
    return self;
fail:
    act_pub_stop(&self);
    return NULL;
}

void act_pub_stop(act_pub_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    act_pub_t *self = *self_p;
    if (self->started) {
        pthread_mutex_lock(&self->mu);
        self->stop = true;
        pthread_cond_signal(&self->cv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->thread, NULL);
    }
    if (self->pub) {
        zmq_close(self->pub);
    }
    if (self->zctx) {
        zmq_ctx_term(self->zctx);
    }
    px_db_destroy(&self->db);
    free(self->ring);
    pthread_cond_destroy(&self->cv);
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}

static bool s_published(int stage)
{
    /* 0 is a target change; 1..4 the stages; the follow-ups pseudo-stage is not a Stage. */
    return stage >= 0 && stage <= 4;
}

void act_pub_post(act_pub_t *self, const act_change_t *changes, size_t n, int64_t at_us)
{
    size_t take = 0;
    for (size_t i = 0; i < n; i++) {
        take += s_published(changes[i].stage);
    }
    if (!self || take == 0) {
        return;
    }
    pthread_mutex_lock(&self->mu);
    if (self->stop || self->cap - self->count < take) {
        pthread_mutex_unlock(&self->mu);
        s_drop(self, (long long)take);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!s_published(changes[i].stage)) {
            continue;
        }
        s_entry_t *e = &self->ring[(self->head + self->count++) % self->cap];
        snprintf(e->campaign, sizeof e->campaign, "%s", changes[i].campaign);
        snprintf(e->unit, sizeof e->unit, "%s", changes[i].unit);
        e->stage = changes[i].stage;
        e->at_us = at_us;
    }
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
}

void act_pub_lost(act_pub_t *self, size_t n)
{
    if (self && n > 0) {
        s_drop(self, (long long)n);
    }
}

long long act_pub_dropped(act_pub_t *self)
{
    return self ? atomic_load(&self->dropped) : 0;
}
