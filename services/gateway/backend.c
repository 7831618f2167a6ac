/*
 * backend.c - the gateway's threads that talk to the services.
 *
 * HTTP threads never wait for a service: they hand a gw_call_t to a backend
 * thread and suspend the request. Each backend thread owns one RPC client per
 * service (ZeroMQ sockets never cross threads), a queue of calls handed to it and
 * an eventfd that wakes it; one zmq_poll waits on the eventfd and every socket of
 * its clients at once, so a call is sent the moment it arrives and completed the
 * moment its answer does, with any number of calls in flight per thread.
 *
 * Whether a service is reachable is found out by a health probe (thread 0, every
 * probe_up_ms while up, probe_down_ms while down, and at once after a call fails
 * UNAVAILABLE), not by every call waiting to find out: while a service is down (no
 * connection to any of its endpoints), calls to it fail UNAVAILABLE at once, and
 * the first probe that reaches it lets them through again; no restart needed. A
 * service that is connected but slow is not down: its calls wait for their
 * deadlines. Readiness (/readyz) wants more: the probe answered, and SERVING.
 *
 * Thread 0 also keeps the unit tree (units.c) from the roster: a full read at
 * start, then every units_refresh_ms a ListUnits of what changed since the
 * tree version it holds, and a full read again when anything did.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "gateway.h"
#include "phuxanh/clock.h"
#include "phuxanh/health/v1/health.pb-c.h"
#include "phuxanh/roster/v1/roster.pb-c.h"

#define PATH_HEALTH "/phuxanh.health.v1.Health/Check"
#define PATH_LIST_UNITS "/phuxanh.roster.v1.RosterService/ListUnits"
/* How long a call waits for a connection to some replica before it counts as UNAVAILABLE,
 * and how often an idempotent call is tried. */
#define CONNECT_WAIT_MS 250
#define ATTEMPTS 3
/* A probe longer than the connection wait: with nobody to connect to it answers UNAVAILABLE
 * (down); a connected service that does not answer in time is slow, not down. */
#define PROBE_TIMEOUT_MS 1000
/* The tree is small (a province: ~1,000 units; the country: ~12,000); pages of the roster's
 * largest size keep a full read to a few calls. */
#define UNITS_PAGE 10000
#define UNITS_REFRESH_MS 60000
#define UNITS_MAX 200000
#define POLL_MAX (1 + GW_SVC_COUNT * PX_RPC_CLIENT_POLL_MAX)
/* How long a stop waits for calls in flight before answering them UNAVAILABLE. */
#define DRAIN_MS 3000

typedef struct s_worker_t s_worker_t;

/* What thread 0 does in the background: probes and unit-tree reads. */
typedef enum { BG_NONE, BG_PROBE, BG_UNITS } bg_kind_t;

typedef struct {
    bg_kind_t kind;
    gw_svc_t svc;
    px_rpc_call_t *pc;
} s_bg_t;

/* A unit-tree read in progress (thread 0 only). */
typedef struct {
    bool active;
    bool full; /* a full read (else: a check of what changed) */
    int64_t version;
    size_t n, cap;
    char **codes, **parents, **names;
    int *levels;
} s_tree_read_t;

struct s_worker_t {
    gw_backend_t *be;
    int index;
    pthread_t thread;
    bool started;
    int efd;
    pthread_mutex_t mu;
    gw_call_t *head, *tail; /* under mu */
    bool stop;              /* under mu */
    bool stopped;           /* under mu: the thread is gone; calls fail at once */
    px_rpc_client_t *clients[GW_SVC_COUNT];
    /* calls sent and not yet answered: abandoned when a stop outlasts DRAIN_MS */
    px_rpc_call_t **flight;
    size_t in_flight, flight_cap;
    /* thread 0 */
    int64_t next_probe_us[GW_SVC_COUNT];
    s_bg_t probes[GW_SVC_COUNT];
    s_bg_t units_call;
    int64_t next_units_us;
    s_tree_read_t tree;
};

struct gw_backend_t {
    gw_backend_opts_t opts;
    s_worker_t *workers;
    int nworkers;
    atomic_uint next;
    atomic_bool reachable[GW_SVC_COUNT];
    atomic_bool serving[GW_SVC_COUNT];
    atomic_bool probe_now[GW_SVC_COUNT];
    gw_units_t *units;
};

/* ---------------------------------------------------------------- completion */

static void s_complete(gw_call_t *call, px_code_t code, const char *msg)
{
    call->code = code;
    snprintf(call->message, sizeof call->message, "%s", msg ? msg : "");
    call->done(call);
}

static void s_start_call(s_worker_t *w, gw_call_t *call)
{
    gw_backend_t *be = w->be;
    px_rpc_client_t *client =
        (unsigned)call->service < GW_SVC_COUNT ? w->clients[call->service] : NULL;
    char msg[160];
    if (!client) {
        snprintf(msg, sizeof msg, "the %s service is not configured at this gateway",
                 gw_svc_name(call->service));
        s_complete(call, PX_UNAVAILABLE, msg);
        return;
    }
    if (!atomic_load(&be->reachable[call->service])) {
        snprintf(msg, sizeof msg, "the %s service is unavailable; retry later",
                 gw_svc_name(call->service));
        gw_stats_backend_error(be->opts.stats, call->service, PX_UNAVAILABLE);
        s_complete(call, PX_UNAVAILABLE, msg);
        return;
    }
    px_md_t *md = px_md_new();
    if (!md || px_md_set(md, PX_MD_REQUEST_ID, call->request_id) != 0 ||
        (call->on_behalf_of[0] && px_md_set(md, PX_MD_ON_BEHALF_OF, call->on_behalf_of) != 0)) {
        px_md_destroy(&md);
        s_complete(call, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    px_rpc_call_opts_t o = {
        .deadline_us = call->deadline_us,
        .timeout_ms = PX_RPC_MAX_TIMEOUT_MS,
        .idempotent = call->idempotent,
        .metadata = md,
    };
    px_rpc_call_t *pc =
        px_rpc_client_start(client, call->path, call->request, call->reply_type, &o);
    px_md_destroy(&md);
    if (!pc) {
        s_complete(call, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (w->in_flight == w->flight_cap) {
        size_t cap = w->flight_cap ? w->flight_cap * 2 : 64;
        px_rpc_call_t **f = realloc(w->flight, cap * sizeof *f);
        if (!f) {
            px_rpc_call_destroy(&pc);
            s_complete(call, PX_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        w->flight = f;
        w->flight_cap = cap;
    }
    px_rpc_call_set_user(pc, call);
    w->flight[w->in_flight++] = pc;
}

static void s_flight_remove(s_worker_t *w, px_rpc_call_t *pc)
{
    for (size_t i = 0; i < w->in_flight; i++) {
        if (w->flight[i] == pc) {
            w->flight[i] = w->flight[--w->in_flight];
            return;
        }
    }
}

static void s_finish_call(s_worker_t *w, gw_svc_t svc, px_rpc_call_t *pc)
{
    gw_call_t *call = px_rpc_call_user(pc);
    s_flight_remove(w, pc);
    call->reply = px_rpc_call_take_reply(pc);
    px_code_t code = px_rpc_call_code(pc);
    if (code == PX_UNAVAILABLE) {
        /* Perhaps the service went away: the prober looks now rather than at its next turn. */
        atomic_store(&w->be->probe_now[svc], true);
    }
    if (code == PX_UNAVAILABLE || code == PX_DEADLINE_EXCEEDED || code == PX_INTERNAL ||
        code == PX_UNKNOWN || code == PX_DATA_LOSS) {
        gw_stats_backend_error(w->be->opts.stats, svc, code);
    }
    s_complete(call, code, px_rpc_call_message(pc));
    px_rpc_call_destroy(&pc);
}

/* ---------------------------------------------------------------- background (thread 0) */

static void s_probe_start(s_worker_t *w, gw_svc_t s)
{
    static Phuxanh__Health__V1__HealthCheckRequest req =
        PHUXANH__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    px_rpc_call_opts_t o = {.timeout_ms = PROBE_TIMEOUT_MS};
    px_rpc_call_t *pc =
        px_rpc_client_start(w->clients[s], PATH_HEALTH, &req.base,
                            &phuxanh__health__v1__health_check_response__descriptor, &o);
    if (pc) {
        w->probes[s] = (s_bg_t){BG_PROBE, s, pc};
        px_rpc_call_set_user(pc, &w->probes[s]);
    }
}

static void s_probe_done(s_worker_t *w, s_bg_t *bg)
{
    gw_backend_t *be = w->be;
    gw_svc_t s = bg->svc;
    px_code_t code = px_rpc_call_code(bg->pc);
    bool was = atomic_load(&be->reachable[s]);
    /* Only "nobody to talk to" means down. A probe that times out found a service that is
     * connected but slow (every worker busy, or the process paused): calls to it are let
     * through to wait for their own deadlines rather than refused at once. */
    bool reachable = code != PX_UNAVAILABLE;
    bool serving = false;
    if (code == PX_OK) {
        const Phuxanh__Health__V1__HealthCheckResponse *r =
            (const void *)px_rpc_call_take_reply(bg->pc);
        serving =
            r && r->status == PHUXANH__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
        if (r) {
            protobuf_c_message_free_unpacked((ProtobufCMessage *)r, NULL);
        }
    }
    atomic_store(&be->reachable[s], reachable);
    atomic_store(&be->serving[s], serving);
    if (was != reachable) {
        px_log_emit(be->opts.log, reachable ? PX_LOG_INFO : PX_LOG_WARN,
                    reachable ? "GW-SERVICE-UP" : "GW-SERVICE-DOWN",
                    reachable ? "service reachable again" : "service unreachable",
                    PX_LOG_FIELDS(PX_LS("service", gw_svc_name(s)),
                                  PX_LS("code", px_code_name(code)),
                                  PX_LS("detail", px_rpc_call_message(bg->pc))));
    }
    if (reachable && !was && s == GW_SVC_ROSTER) {
        w->next_units_us = 0; /* the roster is back: read the tree now */
    }
    px_rpc_call_destroy(&bg->pc);
    bg->kind = BG_NONE;
    int64_t period = reachable ? be->opts.probe_up_ms : be->opts.probe_down_ms;
    w->next_probe_us[s] = px_clock_us() + period * 1000;
}

static void s_tree_clear(s_tree_read_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->codes[i]);
        free(t->parents[i]);
        free(t->names[i]);
    }
    free(t->codes);
    free(t->parents);
    free(t->names);
    free(t->levels);
    memset(t, 0, sizeof *t);
}

static void s_units_page(s_worker_t *w, const char *token)
{
    Phuxanh__Roster__V1__ListUnitsRequest req = PHUXANH__ROSTER__V1__LIST_UNITS_REQUEST__INIT;
    req.page_size = UNITS_PAGE;
    req.page_token = (char *)token;
    if (!w->tree.full) {
        req.since_version = gw_units_version(w->be->units);
        req.page_size = 1;
    }
    px_rpc_call_opts_t o = {.timeout_ms = 10000, .idempotent = true};
    px_rpc_call_t *pc =
        px_rpc_client_start(w->clients[GW_SVC_ROSTER], PATH_LIST_UNITS, &req.base,
                            &phuxanh__roster__v1__list_units_response__descriptor, &o);
    if (!pc) {
        s_tree_clear(&w->tree);
        return;
    }
    w->units_call = (s_bg_t){BG_UNITS, GW_SVC_ROSTER, pc};
    px_rpc_call_set_user(pc, &w->units_call);
}

static void s_units_done(s_worker_t *w, s_bg_t *bg)
{
    s_tree_read_t *t = &w->tree;
    px_code_t code = px_rpc_call_code(bg->pc);
    Phuxanh__Roster__V1__ListUnitsResponse *r = (void *)px_rpc_call_take_reply(bg->pc);
    px_rpc_call_destroy(&bg->pc);
    bg->kind = BG_NONE;
    if (code != PX_OK || !r) {
        px_log_emit(w->be->opts.log, PX_LOG_WARN, "GW-UNITS-READ", "cannot read the unit tree",
                    PX_LOG_FIELDS(PX_LS("code", px_code_name(code))));
        s_tree_clear(t);
        w->next_units_us = px_clock_us() + 2000000; /* try again soon */
        goto done;
    }
    if (!t->full) {
        /* A check: nothing changed since the version we hold, or read everything again. */
        if (r->n_units == 0 && gw_units_version(w->be->units) > 0) {
            s_tree_clear(t);
            w->next_units_us = px_clock_us() + UNITS_REFRESH_MS * 1000LL;
            goto done;
        }
        t->full = true;
        s_units_page(w, "");
        goto done;
    }
    if (t->n == 0 && t->version == 0) {
        t->version = r->tree_version; /* the first page's version is the one to keep */
    }
    for (size_t i = 0; i < r->n_units && t->n < UNITS_MAX; i++) {
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 1024;
            char **c = realloc(t->codes, cap * sizeof *c);
            if (c) {
                t->codes = c;
            }
            char **p = realloc(t->parents, cap * sizeof *p);
            if (p) {
                t->parents = p;
            }
            char **nm = realloc(t->names, cap * sizeof *nm);
            if (nm) {
                t->names = nm;
            }
            int *lv = realloc(t->levels, cap * sizeof *lv);
            if (lv) {
                t->levels = lv;
            }
            if (!c || !p || !nm || !lv) {
                s_tree_clear(t);
                goto done;
            }
            t->cap = cap;
        }
        t->codes[t->n] = strdup(r->units[i]->code);
        t->parents[t->n] = strdup(r->units[i]->parent_code);
        t->names[t->n] = strdup(r->units[i]->name);
        t->levels[t->n] = (int)r->units[i]->level;
        t->n++;
    }
    if (r->next_page_token && *r->next_page_token) {
        s_units_page(w, r->next_page_token);
        goto done;
    }
    gw_units_set(w->be->units, (const char *const *)t->codes, (const char *const *)t->parents,
                 (const char *const *)t->names, t->levels, t->n, t->version);
    px_log_emit(w->be->opts.log, PX_LOG_INFO, "GW-UNITS", "unit tree read",
                PX_LOG_FIELDS(PX_LI("units", t->n), PX_LI("tree_version", t->version)));
    s_tree_clear(t);
    w->next_units_us = px_clock_us() + UNITS_REFRESH_MS * 1000LL;
done:
    if (r) {
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
}

/* Starts what is due; returns how long the poll may wait for the next (ms, -1: forever). */
static long s_background(s_worker_t *w)
{
    gw_backend_t *be = w->be;
    int64_t now = px_clock_us();
    int64_t next = 0;
    for (int s = 0; s < GW_SVC_COUNT; s++) {
        if (!w->clients[s]) {
            continue;
        }
        if (atomic_exchange(&be->probe_now[s], false)) {
            w->next_probe_us[s] = now;
        }
        if (w->probes[s].kind == BG_NONE && now >= w->next_probe_us[s]) {
            s_probe_start(w, (gw_svc_t)s);
        }
        if (w->probes[s].kind == BG_NONE && (!next || w->next_probe_us[s] < next)) {
            next = w->next_probe_us[s];
        }
    }
    if (w->clients[GW_SVC_ROSTER] && w->units_call.kind == BG_NONE &&
        atomic_load(&be->reachable[GW_SVC_ROSTER])) {
        if (now >= w->next_units_us) {
            w->tree.full = gw_units_version(be->units) == 0;
            s_units_page(w, "");
        } else if (!next || w->next_units_us < next) {
            next = w->next_units_us;
        }
    }
    if (!next) {
        return -1;
    }
    long ms = (long)((next - px_clock_us() + 999) / 1000);
    return ms < 0 ? 0 : ms;
}

static bool s_background_done(s_worker_t *w, px_rpc_call_t *pc)
{
    s_bg_t *bg = px_rpc_call_user(pc);
    if (w->index != 0 || !bg) {
        return false;
    }
    for (int s = 0; s < GW_SVC_COUNT; s++) {
        if (bg == &w->probes[s]) {
            s_probe_done(w, bg);
            return true;
        }
    }
    if (bg == &w->units_call) {
        s_units_done(w, bg);
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------- the thread */

static gw_call_t *s_take_queue(s_worker_t *w, bool *stop)
{
    pthread_mutex_lock(&w->mu);
    gw_call_t *list = w->head;
    w->head = w->tail = NULL;
    *stop = w->stop;
    pthread_mutex_unlock(&w->mu);
    return list;
}

static void *s_thread(void *arg)
{
    s_worker_t *w = arg;
    bool stop = false;
    int64_t drain_until = 0;
    for (;;) {
        if (stop) {
            if (!drain_until) {
                drain_until = px_clock_us() + DRAIN_MS * 1000LL;
            }
            if (w->in_flight == 0) {
                break;
            }
            if (px_clock_us() >= drain_until) {
                while (w->in_flight > 0) {
                    px_rpc_call_t *pc = w->flight[--w->in_flight];
                    gw_call_t *call = px_rpc_call_user(pc);
                    px_rpc_call_destroy(&pc);
                    s_complete(call, PX_UNAVAILABLE, "the gateway stopped before the answer came");
                }
                break;
            }
        }
        zmq_pollitem_t items[POLL_MAX];
        int off[GW_SVC_COUNT], cnt[GW_SVC_COUNT];
        int n = 0;
        long timeout = w->index == 0 && !stop ? s_background(w) : (stop ? 100 : -1);
        items[n++] = (zmq_pollitem_t){NULL, w->efd, ZMQ_POLLIN, 0};
        for (int s = 0; s < GW_SVC_COUNT; s++) {
            off[s] = n;
            cnt[s] = w->clients[s] ? px_rpc_client_poll_items(w->clients[s], items + n,
                                                              POLL_MAX - n, &timeout)
                                   : 0;
            n += cnt[s];
        }
        if (zmq_poll(items, n, timeout) < 0 && zmq_errno() != EINTR) {
            px_log_emit(w->be->opts.log, PX_LOG_ERROR, "GW-BACKEND-POLL", zmq_strerror(zmq_errno()),
                        NULL);
            px_sleep_us(10000);
        }
        if (items[0].revents & ZMQ_POLLIN) {
            uint64_t v;
            if (read(w->efd, &v, sizeof v) < 0 && errno != EAGAIN) {
                px_log_emit(w->be->opts.log, PX_LOG_ERROR, "GW-BACKEND-WAKE", strerror(errno),
                            NULL);
            }
        }
        gw_call_t *list = s_take_queue(w, &stop);
        while (list) {
            gw_call_t *next = list->next;
            if (stop) {
                s_complete(list, PX_UNAVAILABLE, "the gateway is stopping");
            } else {
                s_start_call(w, list);
            }
            list = next;
        }
        for (int s = 0; s < GW_SVC_COUNT; s++) {
            if (!w->clients[s]) {
                continue;
            }
            px_rpc_client_poll_handle(w->clients[s], items + off[s], cnt[s]);
            px_rpc_call_t *pc;
            while ((pc = px_rpc_client_next(w->clients[s], 0)) != NULL) {
                if (!s_background_done(w, pc)) {
                    s_finish_call(w, (gw_svc_t)s, pc);
                }
            }
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- public */

static int s_worker_init(gw_backend_t *be, s_worker_t *w, int index, px_status_t *st)
{
    w->be = be;
    w->index = index;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "eventfd: %s", strerror(errno));
        return -1;
    }
    for (int s = 0; s < GW_SVC_COUNT; s++) {
        const char *eps = be->opts.endpoints[s];
        if (!eps || !*eps) {
            continue;
        }
        /* A call waits at most CONNECT_WAIT_MS for a connection, tried ATTEMPTS times: the
         * first calls after a service died find out within a second, and the probe (whose
         * timeout is longer than the wait) then marks it down for everyone. */
        px_rpc_client_opts_t co = {.caller = "gateway",
                                   .connect_wait_ms = CONNECT_WAIT_MS,
                                   .max_attempts = ATTEMPTS,
                                   .log = be->opts.log,
                                   .curve = be->opts.curve,
                                   .server_name = gw_svc_name((gw_svc_t)s)};
        w->clients[s] = px_rpc_client_new(eps, &co, st);
        if (!w->clients[s]) {
            return -1;
        }
    }
    return 0;
}

gw_backend_t *gw_backend_new(const gw_backend_opts_t *opts, px_status_t *st)
{
    gw_backend_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    self->opts = *opts;
    if (self->opts.threads <= 0) {
        self->opts.threads = 1;
    }
    if (self->opts.probe_up_ms <= 0) {
        self->opts.probe_up_ms = 2000;
    }
    if (self->opts.probe_down_ms <= 0) {
        self->opts.probe_down_ms = 250;
    }
    self->units = gw_units_new();
    self->workers = calloc((size_t)self->opts.threads, sizeof *self->workers);
    if (!self->units || !self->workers) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        gw_backend_destroy(&self);
        return NULL;
    }
    self->nworkers = self->opts.threads;
    for (int i = 0; i < self->nworkers; i++) {
        self->workers[i].efd = -1;
        pthread_mutex_init(&self->workers[i].mu, NULL);
    }
    for (int s = 0; s < GW_SVC_COUNT; s++) {
        /* Until the first probe says otherwise: a call tried at start waits for the
         * connection like any RPC call, rather than failing before we know. */
        atomic_store(&self->reachable[s], true);
    }
    for (int i = 0; i < self->nworkers; i++) {
        if (s_worker_init(self, &self->workers[i], i, st) != 0) {
            gw_backend_destroy(&self);
            return NULL;
        }
    }
    for (int i = 0; i < self->nworkers; i++) {
        s_worker_t *w = &self->workers[i];
        if (pthread_create(&w->thread, NULL, s_thread, w) != 0) {
            px_status_set(st, PX_RESOURCE_EXHAUSTED, "cannot start a backend thread");
            gw_backend_destroy(&self);
            return NULL;
        }
        w->started = true;
    }
    return self;
}

static void s_wake(s_worker_t *w)
{
    uint64_t one = 1;
    if (write(w->efd, &one, sizeof one) < 0 && errno != EAGAIN) {
        /* The counter is saturated only if nobody reads it: the thread is awake anyway. */
    }
}

void gw_backend_stop(gw_backend_t *self)
{
    for (int i = 0; self->workers && i < self->nworkers; i++) {
        s_worker_t *w = &self->workers[i];
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_mutex_unlock(&w->mu);
        if (w->started) {
            s_wake(w);
            pthread_join(w->thread, NULL);
            w->started = false;
        }
        /* Calls queued after the thread's last look at the queue. */
        pthread_mutex_lock(&w->mu);
        w->stopped = true;
        gw_call_t *list = w->head;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        while (list) {
            gw_call_t *next = list->next;
            s_complete(list, PX_UNAVAILABLE, "the gateway is stopping");
            list = next;
        }
    }
}

void gw_backend_destroy(gw_backend_t **self_p)
{
    if (!*self_p) {
        return;
    }
    gw_backend_t *self = *self_p;
    gw_backend_stop(self);
    for (int i = 0; self->workers && i < self->nworkers; i++) {
        s_worker_t *w = &self->workers[i];
        for (int s = 0; s < GW_SVC_COUNT; s++) {
            if (w->probes[s].pc) {
                px_rpc_call_destroy(&w->probes[s].pc);
            }
            px_rpc_client_destroy(&w->clients[s]);
        }
        if (w->units_call.pc) {
            px_rpc_call_destroy(&w->units_call.pc);
        }
        s_tree_clear(&w->tree);
        free(w->flight);
        if (w->efd >= 0) {
            close(w->efd);
        }
        pthread_mutex_destroy(&w->mu);
    }
    free(self->workers);
    gw_units_destroy(&self->units);
    free(self);
    *self_p = NULL;
}

void gw_backend_submit(gw_backend_t *self, gw_call_t *call)
{
    unsigned i = atomic_fetch_add(&self->next, 1) % (unsigned)self->nworkers;
    s_worker_t *w = &self->workers[i];
    call->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->stopped) {
        pthread_mutex_unlock(&w->mu);
        s_complete(call, PX_UNAVAILABLE, "the gateway is stopping");
        return;
    }
    if (w->tail) {
        w->tail->next = call;
    } else {
        w->head = call;
    }
    w->tail = call;
    pthread_mutex_unlock(&w->mu);
    s_wake(w);
}

bool gw_backend_up(gw_backend_t *self, gw_svc_t s)
{
    return gw_backend_configured(self, s) && atomic_load(&self->reachable[s]) &&
           atomic_load(&self->serving[s]);
}

bool gw_backend_configured(gw_backend_t *self, gw_svc_t s)
{
    return (unsigned)s < GW_SVC_COUNT && self->opts.endpoints[s] && *self->opts.endpoints[s];
}

gw_units_t *gw_backend_units(gw_backend_t *self)
{
    return self->units;
}

/* ---------------------------------------------------------------- calls for requests */

void gw_call_start(gw_req_t *req, gw_call_t *call, const gw_method_t *m,
                   const ProtobufCMessage *request, int64_t timeout_ms, gw_call_done_fn done,
                   void *user)
{
    gw_t *gw = gw_req_gw(req);
    const gw_ident_t *id = gw_req_ident(req);
    memset(call, 0, sizeof *call);
    call->service = m->service;
    call->path = m->path;
    call->request = request;
    call->reply_type = m->desc->output;
    /* The deadline counts from when the request arrived, as the caller's clock does. */
    call->deadline_us = gw_req_started_us(req) + timeout_ms * 1000;
    call->idempotent = m->effects != GW_EFFECTS;
    snprintf(call->request_id, sizeof call->request_id, "%s", gw_req_id(req));
    if (id) {
        snprintf(call->on_behalf_of, sizeof call->on_behalf_of, "%s", id->name);
    }
    call->done = done;
    call->user = user;
    gw_backend_submit(gw->backend, call);
}

/* ---------------------------------------------------------------- blocking calls */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} s_sync_t;

static void s_sync_done(gw_call_t *call)
{
    s_sync_t *w = call->user;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

px_code_t gw_backend_call_sync(gw_backend_t *self, gw_svc_t svc, const char *path,
                               const ProtobufCMessage *request,
                               const ProtobufCMessageDescriptor *reply_type, int64_t timeout_ms,
                               ProtobufCMessage **reply, px_status_t *st)
{
    s_sync_t w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    gw_call_t call;
    memset(&call, 0, sizeof call);
    call.service = svc;
    call.path = path;
    call.request = request;
    call.reply_type = reply_type;
    call.deadline_us = px_clock_us() + timeout_ms * 1000;
    call.idempotent = true;
    px_rpc_request_id_new(call.request_id);
    call.done = s_sync_done;
    call.user = &w;
    gw_backend_submit(self, &call);
    pthread_mutex_lock(&w.mu);
    while (!w.done) {
        pthread_cond_wait(&w.cv, &w.mu);
    }
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    *reply = call.reply;
    if (call.code != PX_OK) {
        return px_status_set(st, call.code, "%s", call.message);
    }
    return PX_OK;
}
