/*
 * replica.c - count and progress reads from a PostgreSQL streaming replica.
 *
 * With read-db-url set, QueryCounts, TopVolunteers and GetProgress read from a
 * hot standby so that dashboards polling the counts do not compete with the
 * weekend's writes; everything else (writes, and one person's records, which
 * must never be stale) stays on the primary. A replica may be down or behind,
 * and a call must never fail or wait for it, so:
 *
 *   - one background thread (the prober) decides whether the replica is
 *     usable: every probe interval it asks the primary how far its WAL is and
 *     the replica how far it has replayed. Workers only read an atomic flag;
 *     a replica that is down costs the prober its connect timeout, never a
 *     call.
 *   - lag is measured in time without a heartbeat table (the runtime role may
 *     not write one on a standby anyway): the prober keeps a ring of (time,
 *     primary WAL position) samples; everything committed on the primary
 *     before the newest sample whose position the replica has replayed is on
 *     the replica, so now minus that sample's time bounds the staleness. An
 *     idle primary makes no WAL and the replica is simply caught up. The ring
 *     covers more than the allowed lag, so a replica off the end of it is
 *     behind by more than allowed.
 *   - a worker whose read fails on the replica retries it on the primary at
 *     once; a lost connection also clears the flag, so the other workers skip
 *     the replica from their next call until the prober sees it back.
 *
 * Each worker has its own replica connection (px_db_t is one thread's), in a
 * slot indexed by its worker number that only it touches.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "activation.h"
#include "phuxanh/clock.h"

/* As many slots as px_service_main allows workers. */
#define S_MAX_WORKERS 256
/* Samples in the ring: beyond max-lag / probe interval + 2 nothing is learnt. Bounded so a
 * huge lag over a tiny interval cannot ask for much memory (the options' bounds keep it so). */
#define S_RING_MAX 100000

typedef struct {
    int64_t at_us;
    uint64_t lsn;
} s_sample_t;

struct act_replica_t {
    char *url;
    char *primary_url;
    int max_lag_ms;
    int probe_ms;
    px_log_t *log;
    /* The flag workers read: 1 usable, 0 not (down, lagging, or not probed yet). */
    atomic_int usable;
    /* Milliseconds behind as last measured, -1 when unreachable: for metrics. */
    atomic_llong lag_ms;
    atomic_llong reads_replica, reads_primary; /* count reads by where they ran */
    /* Bumped each time the prober finds the replica usable again: a worker's connection made
     * before is from before an outage (dead, most likely) and is made anew, not tried. */
    atomic_uint up_gen;
    px_db_t *workers[S_MAX_WORKERS];
    unsigned worker_gen[S_MAX_WORKERS];
    /* The prober's own. */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    px_db_t *probe_primary, *probe_replica;
    s_sample_t *ring;
    size_t ring_cap, ring_n, ring_head; /* head: where the next sample goes */
    int state;                          /* last logged: -1 none, 0 down, 1 lagging, 2 usable */
};

static const px_db_stmt_t s_primary_lsn = {
    "act_replica_primary_lsn",
    "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::text",
};
/* On a server that is not in recovery (promoted, or the primary itself named as the replica)
 * there is no replay position: it is as fresh as a primary. */
static const px_db_stmt_t s_replica_lsn = {
    "act_replica_replay_lsn",
    "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::text",
};

static void s_ring_push(act_replica_t *self, int64_t at_us, uint64_t lsn)
{
    self->ring[self->ring_head] = (s_sample_t){at_us, lsn};
    self->ring_head = (self->ring_head + 1) % self->ring_cap;
    if (self->ring_n < self->ring_cap) {
        self->ring_n++;
    }
}

/* How far behind a replica that replayed up to `replayed` is, in ms (see the top). */
static int64_t s_lag_ms(const act_replica_t *self, uint64_t replayed, int64_t now_us)
{
    int64_t oldest_us = now_us;
    for (size_t i = 0; i < self->ring_n; i++) {
        size_t at = (self->ring_head + self->ring_cap - 1 - i) % self->ring_cap;
        const s_sample_t *s = &self->ring[at];
        if (s->lsn <= replayed) {
            return i == 0 ? 0 : (now_us - s->at_us) / 1000;
        }
        oldest_us = s->at_us;
    }
    return (now_us - oldest_us) / 1000;
}

static void s_log_state(act_replica_t *self, int state, int64_t lag_ms, const char *error)
{
    if (state == self->state) {
        return;
    }
    self->state = state;
    if (state == 2) {
        atomic_fetch_add(&self->up_gen, 1);
        px_log_emit(self->log, PX_LOG_INFO, "ACT-REPLICA-UP",
                    "count and progress reads go to the read replica",
                    PX_LOG_FIELDS(PX_LI("lag_ms", lag_ms)));
    } else if (state == 1) {
        px_log_emit(self->log, PX_LOG_WARN, "ACT-REPLICA-LAG",
                    "read replica behind more than read-max-lag-ms: reads go to the primary",
                    PX_LOG_FIELDS(PX_LI("lag_ms", lag_ms), PX_LI("max_lag_ms", self->max_lag_ms)));
    } else {
        px_log_emit(self->log, PX_LOG_WARN, "ACT-REPLICA-DOWN",
                    "read replica unreachable: reads go to the primary",
                    PX_LOG_FIELDS(PX_LS("error", error ? error : "")));
    }
}

static void s_probe(act_replica_t *self)
{
    px_status_t st;
    PGresult *p = NULL, *r = NULL;
    int64_t now = px_clock_us();
    if (px_db_execp(self->probe_primary, &s_primary_lsn, 0, NULL, &p, &st) == PX_OK) {
        s_ring_push(self, now, strtoull(PQgetvalue(p, 0, 0), NULL, 10));
    }
    /* Without a primary sample this round the ring's older ones still bound the lag. */
    if (px_db_execp(self->probe_replica, &s_replica_lsn, 0, NULL, &r, &st) != PX_OK) {
        atomic_store(&self->usable, 0);
        atomic_store(&self->lag_ms, -1);
        s_log_state(self, 0, -1, st.message);
        goto done;
    }
    int64_t lag = 0;
    if (strcmp(PQgetvalue(r, 0, 0), "t") == 0 && !PQgetisnull(r, 0, 1)) {
        lag = s_lag_ms(self, strtoull(PQgetvalue(r, 0, 1), NULL, 10), px_clock_us());
    }
    atomic_store(&self->lag_ms, lag);
    bool ok = lag <= self->max_lag_ms;
    atomic_store(&self->usable, ok ? 1 : 0);
    s_log_state(self, ok ? 2 : 1, lag, NULL);
done:
    PQclear(p);
    PQclear(r);
}

/* Waits one probe interval; true when asked to stop. */
static bool s_wait(act_replica_t *self)
{
    pthread_mutex_lock(&self->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = until.tv_nsec + (int64_t)self->probe_ms * 1000000;
    until.tv_sec += ns / 1000000000;
    until.tv_nsec = ns % 1000000000;
    while (!self->stop && pthread_cond_timedwait(&self->cv, &self->mu, &until) == 0) {
    }
    bool stop = self->stop;
    pthread_mutex_unlock(&self->mu);
    return stop;
}

static void *s_run(void *arg)
{
    act_replica_t *self = arg;
    do {
        s_probe(self);
    } while (!s_wait(self));
    return NULL;
}

act_replica_t *act_replica_start(const char *url, const char *primary_url, int max_lag_ms,
                                 int probe_ms, px_log_t *log, px_status_t *st)
{
    act_replica_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    self->max_lag_ms = max_lag_ms;
    self->probe_ms = probe_ms > 0 ? probe_ms : 1;
    self->log = log;
    self->state = -1;
    atomic_init(&self->usable, 0);
    atomic_init(&self->up_gen, 0);
    atomic_init(&self->lag_ms, -1);
    atomic_init(&self->reads_replica, 0);
    atomic_init(&self->reads_primary, 0);
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv, NULL);
    size_t cap = (size_t)(max_lag_ms / self->probe_ms) + 2;
    self->ring_cap = cap < S_RING_MAX ? cap : S_RING_MAX;
    self->url = strdup(url);
    self->primary_url = strdup(primary_url);
    self->ring = calloc(self->ring_cap, sizeof *self->ring);
    if (!self->url || !self->primary_url || !self->ring) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    self->probe_primary = px_db_new(primary_url, NULL);
    self->probe_replica = px_db_new(url, NULL);
    if (!self->probe_primary || !self->probe_replica) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "cannot start the read replica's prober");
        goto fail;
    }
    self->started = true;
    return self;
fail:
    act_replica_stop(&self);
    return NULL;
}

void act_replica_stop(act_replica_t **self_p)
{
    if (*self_p) {
        act_replica_t *self = *self_p;
        if (self->started) {
            pthread_mutex_lock(&self->mu);
            self->stop = true;
            pthread_cond_signal(&self->cv);
            pthread_mutex_unlock(&self->mu);
            pthread_join(self->thread, NULL);
        }
        for (size_t i = 0; i < S_MAX_WORKERS; i++) {
            px_db_destroy(&self->workers[i]);
        }
        px_db_destroy(&self->probe_primary);
        px_db_destroy(&self->probe_replica);
        pthread_mutex_destroy(&self->mu);
        pthread_cond_destroy(&self->cv);
        free(self->ring);
        free(self->url);
        free(self->primary_url);
        free(self);
        *self_p = NULL;
    }
}

bool act_replica_usable(act_replica_t *self)
{
    return self && atomic_load(&self->usable) != 0;
}

int64_t act_replica_lag_ms(act_replica_t *self)
{
    return self ? (int64_t)atomic_load(&self->lag_ms) : -1;
}

void act_replica_reads(act_replica_t *self, long long *replica, long long *primary)
{
    *replica = self ? atomic_load(&self->reads_replica) : 0;
    *primary = self ? atomic_load(&self->reads_primary) : 0;
}

px_code_t act_read_execp(px_rpc_ctx_t *ctx, const px_db_stmt_t *stmt, int nparams,
                         const char *const *params, PGresult **res, px_status_t *st)
{
    const act_t *act = px_rpc_ctx_state(ctx);
    act_replica_t *self = act->replica;
    int w = px_rpc_ctx_worker(ctx);
    if (act_replica_usable(self) && w >= 0 && w < S_MAX_WORKERS) {
        unsigned gen = atomic_load(&self->up_gen);
        if (self->workers[w] && self->worker_gen[w] != gen) {
            px_db_destroy(&self->workers[w]);
        }
        if (!self->workers[w]) {
            self->workers[w] = px_db_new(self->url, NULL);
            self->worker_gen[w] = gen;
        }
        if (self->workers[w]) {
            /* The call's deadline holds on the replica as on the primary (rpc_server.c sets
             * the primary's). */
            px_db_set_deadline(self->workers[w], px_rpc_ctx_deadline_us(ctx));
            px_code_t code = px_db_execp(self->workers[w], stmt, nparams, params, res, st);
            px_db_set_deadline(self->workers[w], 0);
            if (code == PX_OK) {
                atomic_fetch_add(&self->reads_replica, 1);
                return PX_OK;
            }
            if (code == PX_DEADLINE_EXCEEDED) {
                return code; /* nobody waits for the answer any more, from anywhere */
            }
        }
        /* Whatever failed there (a lost connection, a query cancelled by a recovery conflict)
         * is asked of the primary instead. Only a lost connection says the replica is down. */
        if (st->code == PX_UNAVAILABLE && atomic_exchange(&self->usable, 0)) {
            px_log_emit(act->log, PX_LOG_WARN, "ACT-REPLICA-FAIL",
                        "a read failed on the read replica: reads go to the primary",
                        PX_LOG_FIELDS(PX_LS("error", st->message)));
        }
    }
    if (self) {
        atomic_fetch_add(&self->reads_primary, 1);
    }
    return px_db_execp(px_rpc_ctx_db(ctx), stmt, nparams, params, res, st);
}
