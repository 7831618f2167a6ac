/*
 * publisher.c - the PUB socket of count changes (CountsChanged) for live
 * dashboards.
 *
 * After a RecordEvents transaction commits, the worker hands the (campaign,
 * unit, stage) rows it changed to this file; one publisher thread owns the PUB
 * socket bound to pub-endpoint, reads the units' figures after the commit and
 * sends one two-frame message [topic "counts.<campaign>.<unit>"][CountsChanged]
 * per changed row.
 *
 * Why a thread and a queue: a ZeroMQ socket never crosses threads, and one
 * endpoint can be bound by one socket only, so the workers cannot each own a
 * PUB. The hand-over is a fixed-size ring under a mutex with a condition
 * variable, not an inproc PUSH per worker: with the ring no worker holds a
 * socket (nothing to create lazily, nothing to close at thread exit, and no
 * context that cannot terminate while a worker's socket lives), and a worker
 * spends a memcpy under a short lock. When the ring is full the batch's changes
 * are dropped and counted - the call is never blocked or failed by a slow
 * subscriber or a slow read; a dashboard sees the gap in `sequence`.
 *
 * Why the figures are read here, not by the worker: the message carries the
 * unit's whole row (every stage, the effective target, green), which the batch
 * alone does not know. Reading it costs a query; doing it on this thread, with
 * its own connection, keeps it off the RPC path. The figures are then those
 * after the commit (or a later one, which publishes its own message next).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "activation.h"
#include "phuxanh/clock.h"

/* Changes waiting for the thread: a batch of 1,000 events changes at most a few thousand
 * rows (4 levels x 4 stages per citizen, folded); this holds several such batches while the
 * thread reads, and 16,384 x ~120 bytes stays a small fixed cost. */
#define S_QUEUE_MAX 16384
/* The shortest time between two reads of the figures (see s_thread). */
#define S_GATHER_MS 20
/* Messages a slow subscriber may fall behind by before ZeroMQ drops for it. */
#define S_SNDHWM 100000

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
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    s_entry_t *ring; /* under mu */
    size_t head, count;
    atomic_llong dropped;
    uint64_t sequence; /* the thread's only */
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

static void s_send(act_pub_t *self, const s_entry_t *e, const s_fig_t *f)
{
    Phuxanh__Activation__V1__CountsChanged m = PHUXANH__ACTIVATION__V1__COUNTS_CHANGED__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = e->at_us / 1000000;
    ts.nanos = (int32_t)(e->at_us % 1000000) * 1000;
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
    m.sequence = ++self->sequence;
    char topic[8 + ACT_CAMPAIGN_MAX + 1 + ACT_CODE_MAX + 1];
    int tn = snprintf(topic, sizeof topic, "counts.%s.%s", e->campaign, e->unit);
    uint8_t buf[512];
    size_t len = phuxanh__activation__v1__counts_changed__get_packed_size(&m);
    if (len > sizeof buf || tn < 0 || (size_t)tn >= sizeof topic) {
        atomic_fetch_add(&self->dropped, 1);
        return;
    }
    phuxanh__activation__v1__counts_changed__pack(&m, buf);
    /* PUB never blocks: past the high-water mark ZeroMQ drops for that subscriber. */
    if (zmq_send(self->pub, topic, (size_t)tn, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->pub, buf, len, ZMQ_DONTWAIT) < 0) {
        atomic_fetch_add(&self->dropped, 1);
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
        atomic_fetch_add(&self->dropped, (long long)n);
        goto done;
    }
    int rows = PQntuples(res);
    figs = calloc((size_t)rows + 1, sizeof *figs);
    if (!figs) {
        atomic_fetch_add(&self->dropped, (long long)n);
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
            atomic_fetch_add(&self->dropped, 1);
        }
    }
done:
    free(figs);
    PQclear(res);
    act_arr_free(&camps), act_arr_free(&units);
}

static void *s_thread(void *arg)
{
    act_pub_t *self = arg;
    s_entry_t *batch = malloc(S_QUEUE_MAX * sizeof *batch);
    long long reported = 0;
    if (!batch) {
        px_log_emit(self->log, PX_LOG_ERROR, "ACT-PUB-OOM", "publisher stopped: out of memory",
                    NULL);
        return NULL;
    }
    int64_t last_us = 0;
    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&self->mu);
        while (!self->stop && self->count == 0) {
            pthread_cond_wait(&self->cv, &self->mu);
        }
        /* At most one read of the figures per S_GATHER_MS: under load the commits of that
         * window share one query (each still gets its own messages, with the figures after
         * it or a later commit). Idle, the first change goes out at once. */
        struct timespec until;
        int64_t wait_us = last_us + S_GATHER_MS * 1000 - px_clock_us();
        if (wait_us > 0 && !self->stop) {
            clock_gettime(CLOCK_REALTIME, &until);
            int64_t ns = until.tv_nsec + wait_us * 1000;
            until.tv_sec += ns / 1000000000;
            until.tv_nsec = ns % 1000000000;
            while (!self->stop && pthread_cond_timedwait(&self->cv, &self->mu, &until) == 0) {
            }
        }
        bool stop = self->stop;
        while (self->count > 0) {
            batch[n++] = self->ring[self->head];
            self->head = (self->head + 1) % S_QUEUE_MAX;
            self->count--;
        }
        pthread_mutex_unlock(&self->mu);
        if (n > 0) {
            last_us = px_clock_us();
            s_publish(self, batch, n);
        }
        long long dropped = atomic_load(&self->dropped);
        if (dropped != reported) {
            px_log_emit(self->log, PX_LOG_WARN, "ACT-PUB-DROP", "count changes not published",
                        PX_LOG_FIELDS(PX_LI("dropped_total", dropped)));
            reported = dropped;
        }
        if (stop) {
            break;
        }
    }
    free(batch);
    return NULL;
}

act_pub_t *act_pub_start(const char *endpoint, const char *db_url, px_log_t *log, px_status_t *st)
{
    act_pub_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    self->log = log;
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv, NULL);
    atomic_init(&self->dropped, 0);
    self->ring = malloc(S_QUEUE_MAX * sizeof *self->ring);
    self->db = px_db_new(db_url, log);
    self->zctx = zmq_ctx_new();
    if (!self->ring || !self->db || !self->zctx) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    self->pub = zmq_socket(self->zctx, ZMQ_PUB);
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

void act_pub_post(act_pub_t *self, const act_change_t *changes, size_t n, int64_t at_us)
{
    size_t take = 0;
    for (size_t i = 0; i < n; i++) {
        take += changes[i].stage >= 1 && changes[i].stage <= 4;
    }
    if (!self || take == 0) {
        return;
    }
    pthread_mutex_lock(&self->mu);
    if (self->stop || S_QUEUE_MAX - self->count < take) {
        pthread_mutex_unlock(&self->mu);
        atomic_fetch_add(&self->dropped, (long long)take);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (changes[i].stage < 1 || changes[i].stage > 4) {
            continue; /* the follow-ups pseudo-stage is not a Stage */
        }
        s_entry_t *e = &self->ring[(self->head + self->count++) % S_QUEUE_MAX];
        snprintf(e->campaign, sizeof e->campaign, "%s", changes[i].campaign);
        snprintf(e->unit, sizeof e->unit, "%s", changes[i].unit);
        e->stage = changes[i].stage;
        e->at_us = at_us;
    }
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
}

long long act_pub_dropped(act_pub_t *self)
{
    return self ? atomic_load(&self->dropped) : 0;
}
