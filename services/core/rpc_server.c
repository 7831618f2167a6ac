/*
 * rpc_server.c - serves protobuf-c services over a ZeroMQ ROUTER socket.
 *
 * Shape: one broker thread owns the public ROUTER socket and an inproc ROUTER
 * facing the workers. Each worker owns a DEALER to the broker, its database
 * connection, its call arena and its outgoing clients; ZeroMQ sockets never
 * leave the thread that made them. The broker hands a call to an idle worker
 * only (a worker holds at most one call), so a slow handler delays nobody
 * else; calls that find every worker busy wait in the broker's queue, which
 * is bounded. The broker stamps each call with its arrival time so the worker
 * can answer DEADLINE_EXCEEDED, without running the handler, for a call whose
 * budget ran out in the queue.
 *
 * Every call is counted in the server's metrics registry by the thread that
 * answers it (a worker, or the broker for the calls it refuses), under its
 * method when the method is one served here and "other" otherwise: a method
 * name is the caller's input, and must not grow the registry.
 *
 * With CURVE, a caller is the name its key is listed under: the ZAP handler
 * (curve.c) puts it on every message of the connection as the "User-Id"
 * property, which the broker reads and passes to the worker in the meta frame
 * it builds itself; nothing the client sends can reach that frame.
 *
 * Frames between broker and worker:
 *   broker -> worker: [worker id] [client id] [meta: arrival us, part count, user id]
 *                     [header] [body]
 *   worker -> broker: [client id] [response header] [reply]   (also means "idle again")
 *   worker -> broker: ["R"] once at start (ready)
 *   broker -> worker: [worker id] ["S"] to stop
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phuxanh/clock.h"
#include "phuxanh/health/v1/health.pb-c.h"
#include "phuxanh/metrics/v1/metrics.pb-c.h"
#include "phuxanh/pbcheck.h"
#include "phuxanh/text.h"
#include "rpc_internal.h"

/* Calls waiting for a worker beyond this are refused RESOURCE_EXHAUSTED: a server that
 * cannot keep up says so instead of growing without bound. */
#define QUEUE_MAX 65536
/* A call has a header and a body; anything past this many parts is discarded unread. */
#define MAX_PARTS 2
#define MAX_SERVICES 8
#define MAX_PEERS 8
#define MAX_WORKERS 256
#define NAME_MAX_LEN 256
/* The label of calls to methods not served here (or not read): see the top of the file. */
#define OTHER_METHOD "other"

typedef struct {
    const ProtobufCServiceDescriptor *desc;
    px_rpc_handler_fn *handlers; /* indexed like desc->methods */
    void *state;
} service_t;

typedef struct {
    zmq_msg_t client;
    zmq_msg_t parts[MAX_PARTS];
    int nparts; /* as received, may exceed MAX_PARTS */
    int64_t arrived_us;
    char user[PX_CURVE_NAME_MAX + 1]; /* the authenticated name (CURVE), or "" */
} pending_t;

typedef struct {
    struct px_rpc_server_t *server;
    int index;
    pthread_t thread;
    int started;
    int joined;
} worker_t;

struct px_rpc_server_t {
    px_rpc_server_opts_t opts;
    char *endpoint_cfg;
    char *on_behalf_callers; /* opts.on_behalf_callers, copied; "" trusts nobody */
    char bound[NAME_MAX_LEN];
    char inproc[64];
    service_t services[MAX_SERVICES];
    size_t nservices;
    char *peer_names[MAX_PEERS];
    char *peer_endpoints[MAX_PEERS];
    size_t npeers;
    worker_t *workers;
    int nworkers;
    void *frontend; /* created in start (bind errors reach the caller), then broker-owned */
    pthread_t broker;
    int broker_started;
    px_metrics_t *metrics;
    px_metrics_family_t *m_calls;    /* px_rpc_calls_total{method,code} */
    px_metrics_family_t *m_duration; /* px_rpc_call_duration_seconds{method} */
    px_metrics_series_t *m_in_flight;
    px_metrics_series_t *m_queued;
    px_metrics_series_t *m_reconnects; /* NULL without a database */
    int stop_pipe[2];
    int stopped;
    pthread_mutex_t stop_lock;
};

/* ------------------------------------------------------------------ setup */

static void s_worker_count(px_rpc_server_t *self)
{
    if (self->opts.workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        self->nworkers = n > 0 ? (int)n : 1;
    } else {
        self->nworkers = self->opts.workers > MAX_WORKERS ? MAX_WORKERS : self->opts.workers;
    }
}

/* Buckets of px_rpc_call_duration_seconds: 0.5 ms (a cached read) to 10 s (the default
 * deadline), about 2.5x apart. */
static const double s_duration_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1,     2.5,  5,     10};

static int s_metrics_declare(px_rpc_server_t *self)
{
    static const char *const method_code[] = {"method", "code", NULL};
    static const char *const method[] = {"method", NULL};
    self->metrics = px_metrics_new();
    if (!self->metrics) {
        return -1;
    }
    self->m_calls = px_metrics_counter(self->metrics, "px_rpc_calls_total",
                                       "Calls answered, by method and status code.", method_code);
    self->m_duration = px_metrics_histogram(
        self->metrics, "px_rpc_call_duration_seconds",
        "Time from a call's arrival to its answer (the wait for a worker included), by method.",
        method, s_duration_buckets, sizeof s_duration_buckets / sizeof s_duration_buckets[0]);
    self->m_in_flight = px_metrics_series(
        px_metrics_gauge(self->metrics, "px_rpc_in_flight", "Calls being run by a worker.", NULL),
        NULL);
    self->m_queued = px_metrics_series(
        px_metrics_gauge(self->metrics, "px_rpc_queued", "Calls waiting for a worker.", NULL),
        NULL);
    if (px__server_has_db(self)) {
        self->m_reconnects = px_metrics_series(
            px_metrics_counter(self->metrics, "px_db_reconnects_total",
                               "Times a worker connected again to the database after losing "
                               "its connection.",
                               NULL),
            NULL);
    }
    return self->m_calls && self->m_duration && self->m_in_flight && self->m_queued &&
                   (self->m_reconnects || !px__server_has_db(self))
               ? 0
               : -1;
}

px_rpc_server_t *px_rpc_server_new(const px_rpc_server_opts_t *opts, px_status_t *st)
{
    assert(opts);
    if (!opts->endpoint || !*opts->endpoint) {
        px_status_set(st, PX_INVALID_ARGUMENT, "endpoint: must be set");
        return NULL;
    }
    px_rpc_server_t *self = calloc(1, sizeof(px_rpc_server_t));
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    self->opts = *opts;
    if (!self->opts.max_decoded) {
        self->opts.max_decoded =
            8 * (self->opts.max_message ? self->opts.max_message : PX_RPC_MAX_MESSAGE_DEFAULT);
    }
    if (!self->opts.max_message) {
        self->opts.max_message = PX_RPC_MAX_MESSAGE_DEFAULT;
    }
    if (self->opts.drain_ms <= 0) {
        self->opts.drain_ms = 5000;
    }
    if (!self->opts.service_name) {
        self->opts.service_name = "server";
    }
    self->endpoint_cfg = strdup(opts->endpoint);
    self->on_behalf_callers = strdup(opts->on_behalf_callers ? opts->on_behalf_callers : "");
    self->opts.on_behalf_callers = self->on_behalf_callers;
    self->stop_pipe[0] = self->stop_pipe[1] = -1;
    pthread_mutex_init(&self->stop_lock, NULL);
    s_worker_count(self);
    snprintf(self->inproc, sizeof self->inproc, "inproc://px-rpc-%lu", px__unique_id());
    if (!self->endpoint_cfg || !self->on_behalf_callers) {
        px_rpc_server_destroy(&self);
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    if (s_metrics_declare(self) != 0) {
        px_rpc_server_destroy(&self);
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    px_status_t ignore;
    if (px_rpc_server_add(self, &phuxanh__health__v1__health__descriptor, px__health_methods,
                          px__health_methods_count, NULL, &ignore) != PX_OK ||
        px_rpc_server_add(self, &phuxanh__metrics__v1__metrics__descriptor, px__metrics_methods,
                          px__metrics_methods_count, NULL, &ignore) != PX_OK) {
        px_rpc_server_destroy(&self);
        px_status_set(st, PX_INTERNAL, "built-in services: %s", ignore.message);
        return NULL;
    }
    return self;
}

px_code_t px_rpc_server_add(px_rpc_server_t *self, const ProtobufCServiceDescriptor *service,
                            const px_rpc_method_t *methods, size_t nmethods, void *state,
                            px_status_t *st)
{
    assert(self && service);
    if (self->broker_started) {
        return px_status_set(st, PX_FAILED_PRECONDITION, "server already started");
    }
    /* A service already added takes more methods: a service's handlers may come from several
     * files, each with its own table. */
    service_t *svc = NULL;
    for (size_t i = 0; i < self->nservices && !svc; i++) {
        svc = self->services[i].desc == service ? &self->services[i] : NULL;
    }
    if (svc && svc->state != state) {
        return px_status_set(st, PX_INVALID_ARGUMENT, "%s added again with another state",
                             service->name);
    }
    bool fresh = svc == NULL;
    if (fresh) {
        if (self->nservices == MAX_SERVICES) {
            return px_status_set(st, PX_RESOURCE_EXHAUSTED, "too many services (max %d)",
                                 MAX_SERVICES);
        }
        svc = &self->services[self->nservices];
        svc->handlers =
            calloc(service->n_methods ? service->n_methods : 1, sizeof(px_rpc_handler_fn));
        if (!svc->handlers) {
            return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        }
    }
    /* Checked whole before any handler is set: a refused table leaves the service as it was. */
    for (size_t i = 0; i < nmethods; i++) {
        const ProtobufCMethodDescriptor *m =
            protobuf_c_service_descriptor_get_method_by_name(service, methods[i].method);
        if (!m || svc->handlers[m - service->methods]) {
            if (fresh) {
                free(svc->handlers);
                svc->handlers = NULL;
            }
            return px_status_set(st, PX_INVALID_ARGUMENT,
                                 m ? "%s: method %s added twice" : "%s has no method %s",
                                 service->name, methods[i].method);
        }
    }
    for (size_t i = 0; i < nmethods; i++) {
        const ProtobufCMethodDescriptor *m =
            protobuf_c_service_descriptor_get_method_by_name(service, methods[i].method);
        svc->handlers[m - service->methods] = methods[i].handler;
    }
    if (fresh) {
        svc->desc = service;
        svc->state = state;
        self->nservices++;
    }
    return PX_OK;
}

px_code_t px_rpc_server_add_peer(px_rpc_server_t *self, const char *name, const char *endpoints,
                                 px_status_t *st)
{
    assert(self && name && endpoints);
    if (self->npeers == MAX_PEERS) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "too many peers (max %d)", MAX_PEERS);
    }
    self->peer_names[self->npeers] = strdup(name);
    self->peer_endpoints[self->npeers] = strdup(endpoints);
    if (!self->peer_names[self->npeers] || !self->peer_endpoints[self->npeers]) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    self->npeers++;
    return PX_OK;
}

int px__server_has_service(const px_rpc_server_t *self, const char *name)
{
    for (size_t i = 0; i < self->nservices; i++) {
        if (strcmp(self->services[i].desc->name, name) == 0) {
            return 1;
        }
    }
    return 0;
}

int px__server_has_db(const px_rpc_server_t *self)
{
    return self->opts.db_url != NULL && *self->opts.db_url;
}

px_metrics_t *px_rpc_server_metrics(px_rpc_server_t *self)
{
    return self->metrics;
}

const char *px_rpc_server_endpoint(const px_rpc_server_t *self)
{
    return self->bound;
}

/* ------------------------------------------------------------------ worker */

typedef struct {
    px_rpc_server_t *server;
    int index; /* the worker's number, 0..workers-1 */
    void *sock;
    px__arena_t *arena;
    px_db_t *db;
    px_rpc_client_t *peers[MAX_PEERS];
    px_md_t *md;
    px_md_t *reply_md;
    uint64_t db_reconnects; /* of db, as last counted in the metrics */
} wstate_t;

static const service_t *s_find_service(const px_rpc_server_t *self, const char *name)
{
    for (size_t i = 0; i < self->nservices; i++) {
        if (strcmp(self->services[i].desc->name, name) == 0) {
            return &self->services[i];
        }
    }
    return NULL;
}

static void s_send_reply(void *sock, zmq_msg_t *client, uint64_t call_id, px_code_t code,
                         const char *message, const px_md_t *md, zmq_msg_t *body)
{
    zmq_msg_t hdr;
    if (px__envelope_response(&hdr, call_id, code, message, md) != 0) {
        return; /* out of memory: the client's deadline will tell it */
    }
    zmq_msg_t empty;
    if (!body) {
        zmq_msg_init(&empty);
        body = &empty;
    }
    zmq_msg_send(client, sock, ZMQ_SNDMORE);
    zmq_msg_send(&hdr, sock, ZMQ_SNDMORE);
    zmq_msg_send(body, sock, 0);
    zmq_msg_close(&hdr);
    zmq_msg_close(body);
}

static void s_log_call(px_rpc_server_t *server, const char *method, const char *request_id,
                       const char *caller, const char *on_behalf_of, px_code_t code,
                       const char *message, int64_t dur_us)
{
    px_log_level_t level = PX_LOG_DEBUG;
    if (code == PX_INTERNAL || code == PX_UNKNOWN || code == PX_DATA_LOSS) {
        level = PX_LOG_ERROR;
    } else if (code != PX_OK) {
        level = PX_LOG_INFO;
    }
    if (!px_log_enabled(server->opts.log, level)) {
        return;
    }
    px_log_field_t fields[] = {
        PX_LS("method", method),
        PX_LS("request_id", request_id),
        PX_LS("caller", caller),
        PX_LS("code", px_code_name(code)),
        PX_LI("duration_us", dur_us),
        PX_LS("on_behalf_of", on_behalf_of), /* cut off below when the call has none */
        {PX_LOG_F_END, NULL, NULL, 0},
    };
    if (!*on_behalf_of) {
        fields[5] = fields[6];
    }
    px_log_emit(server->opts.log, level, "RPC-CALL", code == PX_OK ? "call" : message, fields);
}

/* Is name one of the comma-separated whole names of list ("gate" is not "gateway")? */
static bool s_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; n > 0 && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) {
            return true;
        }
        p += len + (end != NULL);
    }
    return false;
}

/* x-on-behalf-of, when the call carries it: only from a trusted caller, and a name. Fills
 * msgbuf and returns the refusal's code, or OK. */
static px_code_t s_check_on_behalf(const px_rpc_server_t *server, const char *caller,
                                   const char *on_behalf_of, char *msgbuf, size_t cap)
{
    if (!s_listed(server->on_behalf_callers, caller)) {
        char shown[64];
        px_utf8_copy(shown, sizeof shown, px_utf8_valid(caller, strlen(caller)) ? caller : "?");
        snprintf(msgbuf, cap, "caller \"%s\" may not act on behalf of others", shown);
        return PX_PERMISSION_DENIED;
    }
    px_status_t st;
    if (strlen(on_behalf_of) > PX_RPC_ON_BEHALF_MAX ||
        px_text_check(PX_MD_ON_BEHALF_OF, on_behalf_of, PX_RPC_ON_BEHALF_MAX, true, &st) != PX_OK) {
        snprintf(msgbuf, cap,
                 "%s: must be 1 to %d bytes of UTF-8 without control characters (a name)",
                 PX_MD_ON_BEHALF_OF, PX_RPC_ON_BEHALF_MAX);
        return PX_INVALID_ARGUMENT;
    }
    return PX_OK;
}

/* With CURVE: the call's authenticated name (user) against the x-caller it declares (may be
 * ""). Fills msgbuf and returns the refusal's code, or OK. */
static px_code_t s_check_identity(const char *declared, const char *user, char *msgbuf, size_t cap)
{
    if (!*user) {
        /* Cannot happen with the ZAP handler running: every accepted key has a name. */
        snprintf(msgbuf, cap, "no authenticated identity on this connection");
        return PX_UNAUTHENTICATED;
    }
    if (*declared && strcmp(declared, user) != 0) {
        char shown[PX_CURVE_NAME_MAX + 1];
        px_utf8_copy(shown, sizeof shown,
                     px_utf8_valid(declared, strlen(declared)) ? declared : "?");
        snprintf(msgbuf, cap, "x-caller \"%s\" is not the caller's key, which is \"%s\"", shown,
                 user);
        return PX_PERMISSION_DENIED;
    }
    return PX_OK;
}

/* The method label of a call: its name when this server serves it, OTHER_METHOD otherwise. */
static const char *s_method_label(const px_rpc_server_t *server, const char *method)
{
    char svc_name[NAME_MAX_LEN], m_name[NAME_MAX_LEN];
    if (!method ||
        px__method_split(method, svc_name, sizeof svc_name, m_name, sizeof m_name) != 0) {
        return OTHER_METHOD;
    }
    const service_t *svc = s_find_service(server, svc_name);
    return svc && protobuf_c_service_descriptor_get_method_by_name(svc->desc, m_name)
               ? method
               : OTHER_METHOD;
}

/* Counts an answered call; dur_us < 0: it never reached a worker (no duration). */
static void s_count_call(px_rpc_server_t *server, const char *method, px_code_t code,
                         int64_t dur_us)
{
    const char *label = s_method_label(server, method);
    const char *mc[2] = {label, px_code_name(code)};
    px_metrics_inc(px_metrics_series(server->m_calls, mc));
    if (dur_us >= 0) {
        const char *m[1] = {label};
        px_metrics_observe(px_metrics_series(server->m_duration, m), (double)dur_us / 1e6);
    }
}

/* Runs one call received by a worker. Every path answers exactly once. */
static void s_worker_call(wstate_t *w, zmq_msg_t *client, const int64_t meta[2], const char *user,
                          zmq_msg_t *hdr_m, zmq_msg_t *body_m)
{
    px_rpc_server_t *server = w->server;
    int64_t start = px_clock_us();
    int64_t arrived = meta[0];
    int nparts = (int)meta[1];
    uint64_t call_id = 0;
    px_code_t code = PX_OK;
    const char *msg = "";
    char msgbuf[PX_STATUS_MESSAGE_MAX];
    char rid[33];
    const char *method = "";
    const char *request_id = "";
    const char *caller = "";
    const char *on_behalf_of = "";
    zmq_msg_t reply_body;
    int have_body = 0;
    ProtobufCAllocator alloc = px__arena_allocator(w->arena);
    Phuxanh__Rpc__V1__RequestHeader *h = NULL;

    px_metrics_add(server->m_in_flight, 1);
    px__arena_reset(w->arena);
    px_md_destroy(&w->md);
    px_md_destroy(&w->reply_md);
    w->md = px_md_new();
    w->reply_md = px_md_new();
    if (!w->md || !w->reply_md) {
        code = PX_RESOURCE_EXHAUSTED;
        msg = "out of memory";
        goto reply;
    }
    if (zmq_msg_size(hdr_m) > PX_RPC_MAX_HEADER) {
        code = PX_RESOURCE_EXHAUSTED;
        msg = "header frame too large";
        goto reply;
    }
    h = phuxanh__rpc__v1__request_header__unpack(&alloc, zmq_msg_size(hdr_m), zmq_msg_data(hdr_m));
    if (!h) {
        code = PX_INVALID_ARGUMENT;
        msg = "header frame does not decode as phuxanh.rpc.v1.RequestHeader";
        goto reply;
    }
    call_id = h->call_id;
    /* Strings in the header (method, metadata) are refused, never cut, when they hold a NUL or
     * invalid UTF-8: "gateway\0evil" must not pass for "gateway". The method is not echoed
     * before this check. */
    px_status_t hdr_st;
    if (px_pb_check(&phuxanh__rpc__v1__request_header__descriptor, zmq_msg_data(hdr_m),
                    zmq_msg_size(hdr_m), SIZE_MAX, &hdr_st) != PX_OK) {
        code = PX_INVALID_ARGUMENT;
        /* A bad metadata value is named by its key too, when the key itself is sound. */
        unsigned idx;
        int at = 0;
        char key[64] = "";
        if (sscanf(hdr_st.message, "metadata[%u].value:%n", &idx, &at) == 1 && at > 0 &&
            idx < h->n_metadata && h->metadata[idx]->key &&
            strlen(h->metadata[idx]->key) < sizeof key &&
            px_utf8_valid(h->metadata[idx]->key, strlen(h->metadata[idx]->key))) {
            snprintf(key, sizeof key, "%s: ", h->metadata[idx]->key);
        }
        int len = snprintf(msgbuf, sizeof msgbuf, "request header: %s", key);
        px_utf8_copy(msgbuf + len, sizeof msgbuf - (size_t)len, hdr_st.message);
        msg = msgbuf;
        goto reply;
    }
    method = h->method ? h->method : "";
    int md_rc = px__md_from_pb(w->md, h->metadata, h->n_metadata);
    if (md_rc != 0) {
        code = PX_INVALID_ARGUMENT;
        if (md_rc == -2) {
            snprintf(msgbuf, sizeof msgbuf,
                     "metadata: a key is given more than once (each "
                     "key holds one value)");
        } else {
            snprintf(msgbuf, sizeof msgbuf, "metadata: at most %d entries of at most %d bytes",
                     PX_RPC_MAX_METADATA, PX_RPC_MAX_METADATA_VALUE);
        }
        msg = msgbuf;
        goto reply;
    }
    request_id = px_md_get(w->md, PX_MD_REQUEST_ID);
    if (!request_id || !*request_id) {
        /* The edge of the system: make one. Kept in rid, since a call that already carries
         * the most metadata allowed has no room left for it in w->md. */
        px_rpc_request_id_new(rid);
        px_md_set(w->md, PX_MD_REQUEST_ID, rid);
        request_id = rid;
    }
    px_md_set(w->reply_md, PX_MD_REQUEST_ID, request_id);
    caller = px_md_get(w->md, PX_MD_CALLER);
    if (!caller) {
        caller = "";
    }
    if (server->opts.curve) {
        /* The key decides who calls; a declared name may only repeat it. */
        code = s_check_identity(caller, user, msgbuf, sizeof msgbuf);
        caller = user;
        if (code != PX_OK) {
            msg = msgbuf;
            goto reply;
        }
        px_md_set(w->md, PX_MD_CALLER, user); /* handlers reading the metadata see the same */
    }
    if (nparts != 2) {
        code = PX_INVALID_ARGUMENT;
        snprintf(msgbuf, sizeof msgbuf, "a call has 2 frames (header, request), got %d", nparts);
        msg = msgbuf;
        goto reply;
    }
    /* Who may say whom it acts for is settled before anything else is looked at: a refused
     * call runs nothing, and its log line does not repeat the claim. */
    const char *obo = px_md_get(w->md, PX_MD_ON_BEHALF_OF);
    if (obo) {
        code = s_check_on_behalf(server, caller, obo, msgbuf, sizeof msgbuf);
        if (code != PX_OK) {
            msg = msgbuf;
            goto reply;
        }
        on_behalf_of = obo;
    }
    int64_t deadline = 0;
    if (h->timeout_ms > 0) {
        uint32_t t = h->timeout_ms > PX_RPC_MAX_TIMEOUT_MS ? PX_RPC_MAX_TIMEOUT_MS : h->timeout_ms;
        deadline = arrived + (int64_t)t * 1000;
        if (start >= deadline) {
            code = PX_DEADLINE_EXCEEDED;
            msg = "deadline exceeded before the call was started";
            goto reply;
        }
    }
    char svc_name[NAME_MAX_LEN], m_name[NAME_MAX_LEN];
    if (px__method_split(method, svc_name, sizeof svc_name, m_name, sizeof m_name) != 0) {
        code = PX_UNIMPLEMENTED;
        char shown[201]; /* cut at a character, never inside one */
        px_utf8_copy(shown, sizeof shown, method);
        snprintf(msgbuf, sizeof msgbuf, "method: \"%s\" is not of the form /package.Service/Method",
                 shown);
        msg = msgbuf;
        goto reply;
    }
    const service_t *svc = s_find_service(server, svc_name);
    const ProtobufCMethodDescriptor *md =
        svc ? protobuf_c_service_descriptor_get_method_by_name(svc->desc, m_name) : NULL;
    px_rpc_handler_fn fn = md ? svc->handlers[md - svc->desc->methods] : NULL;
    if (!fn) {
        code = PX_UNIMPLEMENTED;
        char shown[201]; /* cut at a character, never inside one */
        px_utf8_copy(shown, sizeof shown, method);
        snprintf(msgbuf, sizeof msgbuf, "method %s is not implemented by this server", shown);
        msg = msgbuf;
        goto reply;
    }
    if (zmq_msg_size(body_m) > server->opts.max_message) {
        code = PX_RESOURCE_EXHAUSTED;
        snprintf(msgbuf, sizeof msgbuf, "request of %zu bytes exceeds the limit of %zu",
                 zmq_msg_size(body_m), server->opts.max_message);
        msg = msgbuf;
        goto reply;
    }
    /* Strings are checked on the wire (a NUL would otherwise cut a C string short, and invalid
     * UTF-8 pass), and what decoding would allocate is bounded before it happens. */
    px_status_t wire_st;
    if (px_pb_check(md->input, zmq_msg_data(body_m), zmq_msg_size(body_m), server->opts.max_decoded,
                    &wire_st) != PX_OK) {
        code = wire_st.code;
        if (strstr(wire_st.message, "malformed protobuf")) {
            int len =
                snprintf(msgbuf, sizeof msgbuf, "request does not decode as %s: ", md->input->name);
            if (len > 0 && (size_t)len < sizeof msgbuf) {
                px_utf8_copy(msgbuf + len, sizeof msgbuf - (size_t)len, wire_st.message);
            }
        } else {
            memcpy(msgbuf, wire_st.message, sizeof msgbuf); /* both PX_STATUS_MESSAGE_MAX */
        }
        msg = msgbuf;
        goto reply;
    }
    ProtobufCMessage *req =
        protobuf_c_message_unpack(md->input, &alloc, zmq_msg_size(body_m), zmq_msg_data(body_m));
    ProtobufCMessage *rep = px__arena_alloc(w->arena, md->output->sizeof_message);
    if (!req || !rep) {
        code = req ? PX_RESOURCE_EXHAUSTED : PX_INVALID_ARGUMENT;
        snprintf(msgbuf, sizeof msgbuf, "request does not decode as %s", md->input->name);
        msg = req ? "out of memory" : msgbuf;
        goto reply;
    }
    md->output->message_init(rep);

    px_rpc_ctx_t ctx = {
        .server = server,
        .state = svc->state,
        .db = w->db,
        .log = server->opts.log,
        .arena = w->arena,
        .method = method,
        .request_id = request_id,
        .caller = caller,
        .on_behalf_of = on_behalf_of,
        .md = w->md,
        .deadline_us = deadline,
        .started_us = px_clock_us(),
        .worker = w->index,
        .npeers = server->npeers,
        .peer_names = (const char *const *)server->peer_names,
        .peer_endpoints = (const char *const *)server->peer_endpoints,
        .peer_clients = w->peers,
    };
    px_status_clear(&ctx.status);
    code = fn(&ctx, req, rep);
    if (w->db) {
        /* A handler that failed half-way may leave a transaction open (or lost): close it
         * here, once, so the next call on this worker starts clean. Free when idle. */
        px_db_rollback(w->db);
        px_db_set_deadline(w->db, 0); /* this call's deadline is not the next one's */
    }
    if (!px_code_valid((int)code)) {
        code = PX_UNKNOWN;
    }
    if (code != PX_OK) {
        memcpy(msgbuf, ctx.status.message, sizeof msgbuf);
        msg = msgbuf;
        goto reply;
    }
    size_t len = protobuf_c_message_get_packed_size(rep);
    if (len > server->opts.max_message) {
        code = PX_RESOURCE_EXHAUSTED;
        snprintf(msgbuf, sizeof msgbuf, "reply of %zu bytes exceeds the limit of %zu", len,
                 server->opts.max_message);
        msg = msgbuf;
        goto reply;
    }
    if (zmq_msg_init_size(&reply_body, len) != 0) {
        code = PX_RESOURCE_EXHAUSTED;
        msg = "out of memory";
        goto reply;
    }
    protobuf_c_message_pack(rep, zmq_msg_data(&reply_body));
    have_body = 1;

reply:
    s_send_reply(w->sock, client, call_id, code, msg, w->reply_md, have_body ? &reply_body : NULL);
    int64_t end = px_clock_us();
    s_log_call(server, method, request_id, caller, on_behalf_of, code, msg, end - start);
    s_count_call(server, method, code, end - arrived);
    px_metrics_add(server->m_in_flight, -1);
    /* The db module counts its reconnections; the difference is this worker's news. */
    uint64_t reconnects = w->db ? px_db_reconnects(w->db) : 0;
    if (reconnects != w->db_reconnects) {
        px_metrics_add(server->m_reconnects, (double)(reconnects - w->db_reconnects));
        w->db_reconnects = reconnects;
    }
}

static void s_recv_rest(void *sock)
{
    int more = 0;
    size_t sz = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, sock, 0);
        zmq_msg_close(&m);
    }
}

static int s_more(void *sock)
{
    int more = 0;
    size_t sz = sizeof more;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
    return more;
}

static void *s_worker_main(void *arg)
{
    worker_t *wk = arg;
    px_rpc_server_t *server = wk->server;
    wstate_t w = {.server = server, .index = wk->index};
    w.sock = zmq_socket(px__zmq_ctx(), ZMQ_DEALER);
    w.arena = px__arena_new();
    if (px__server_has_db(server)) {
        w.db = px_db_new(server->opts.db_url, server->opts.log);
    }
    int linger = 0;
    zmq_setsockopt(w.sock, ZMQ_LINGER, &linger, sizeof linger);
    if (!w.sock || !w.arena || zmq_connect(w.sock, server->inproc) != 0 ||
        zmq_send(w.sock, "R", 1, 0) != 1) {
        px_log_emit(server->opts.log, PX_LOG_ERROR, "RPC-WORKER-FAIL", "worker could not start",
                    PX_LOG_FIELDS(PX_LI("worker", wk->index)));
        goto done;
    }
    for (;;) {
        zmq_msg_t client, meta, hdr, body;
        zmq_msg_init(&client);
        if (zmq_msg_recv(&client, w.sock, 0) < 0) {
            zmq_msg_close(&client);
            if (errno == EINTR) {
                continue;
            }
            break; /* context terminated */
        }
        if (zmq_msg_size(&client) == 1 && *(char *)zmq_msg_data(&client) == 'S') {
            zmq_msg_close(&client);
            break;
        }
        zmq_msg_init(&meta);
        zmq_msg_init(&hdr);
        zmq_msg_init(&body);
        int ok = s_more(w.sock) && zmq_msg_recv(&meta, w.sock, 0) >= 0 &&
                 zmq_msg_size(&meta) >= 2 * sizeof(int64_t) &&
                 zmq_msg_size(&meta) <= 2 * sizeof(int64_t) + PX_CURVE_NAME_MAX && s_more(w.sock) &&
                 zmq_msg_recv(&hdr, w.sock, 0) >= 0 && s_more(w.sock) &&
                 zmq_msg_recv(&body, w.sock, 0) >= 0;
        s_recv_rest(w.sock);
        if (ok) {
            int64_t m[2];
            char user[PX_CURVE_NAME_MAX + 1];
            size_t ulen = zmq_msg_size(&meta) - sizeof m;
            memcpy(m, zmq_msg_data(&meta), sizeof m);
            memcpy(user, (char *)zmq_msg_data(&meta) + sizeof m, ulen);
            user[ulen] = '\0';
            s_worker_call(&w, &client, m, user, &hdr, &body);
        }
        zmq_msg_close(&client);
        zmq_msg_close(&meta);
        zmq_msg_close(&hdr);
        zmq_msg_close(&body);
    }
done:
    for (size_t i = 0; i < MAX_PEERS; i++) {
        px_rpc_client_destroy(&w.peers[i]);
    }
    px_md_destroy(&w.md);
    px_md_destroy(&w.reply_md);
    px_db_destroy(&w.db);
    px__arena_destroy(&w.arena);
    if (w.sock) {
        zmq_close(w.sock);
    }
    return NULL;
}

/* ------------------------------------------------------------------ broker */

typedef struct {
    px_rpc_server_t *server;
    void *front;
    void *back;
    zmq_msg_t *idle; /* worker ids, used as a stack */
    int nidle;
    int nready; /* workers that said ready at least once */
    pending_t *queue;
    size_t qhead, qlen;
    int draining;
    int64_t drain_deadline;
} broker_t;

/* Reads one call (all its parts) from the front socket into p. 0 or -1. */
static int s_read_call(void *sock, pending_t *p)
{
    zmq_msg_init(&p->client);
    for (int i = 0; i < MAX_PARTS; i++) {
        zmq_msg_init(&p->parts[i]);
    }
    if (zmq_msg_recv(&p->client, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&p->client);
        return -1;
    }
    p->nparts = 0;
    while (s_more(sock)) {
        if (p->nparts < MAX_PARTS) {
            zmq_msg_recv(&p->parts[p->nparts], sock, 0);
        } else {
            zmq_msg_t drop;
            zmq_msg_init(&drop);
            zmq_msg_recv(&drop, sock, 0);
            zmq_msg_close(&drop);
        }
        p->nparts++;
    }
    p->arrived_us = px_clock_us();
    p->user[0] = '\0';
    const char *user = p->nparts > 0 ? zmq_msg_gets(&p->parts[0], "User-Id") : NULL;
    if (user && strlen(user) <= PX_CURVE_NAME_MAX) {
        memcpy(p->user, user, strlen(user) + 1);
    }
    return 0;
}

static void s_pending_close(pending_t *p)
{
    zmq_msg_close(&p->client);
    for (int i = 0; i < MAX_PARTS; i++) {
        zmq_msg_close(&p->parts[i]);
    }
}

/* Answers a call from the broker itself (draining, overloaded), decoding only the call id. */
static void s_broker_refuse(broker_t *b, pending_t *p, px_code_t code, const char *message)
{
    uint64_t call_id = 0;
    const char *method = NULL;
    Phuxanh__Rpc__V1__RequestHeader *h = NULL;
    if (p->nparts >= 1 && zmq_msg_size(&p->parts[0]) <= PX_RPC_MAX_HEADER) {
        h = phuxanh__rpc__v1__request_header__unpack(NULL, zmq_msg_size(&p->parts[0]),
                                                     zmq_msg_data(&p->parts[0]));
        if (h) {
            call_id = h->call_id;
            method = h->method;
        }
    }
    s_count_call(b->server, method, code, -1);
    if (h) {
        phuxanh__rpc__v1__request_header__free_unpacked(h, NULL);
    }
    zmq_msg_t client;
    zmq_msg_init(&client);
    zmq_msg_copy(&client, &p->client);
    s_send_reply(b->front, &client, call_id, code, message, NULL, NULL);
    zmq_msg_close(&client);
    s_pending_close(p);
}

static void s_dispatch(broker_t *b, pending_t *p)
{
    b->nidle--;
    zmq_msg_t *wid = &b->idle[b->nidle];
    int64_t meta[2] = {p->arrived_us, p->nparts};
    size_t ulen = strlen(p->user);
    zmq_msg_t m;
    zmq_msg_init_size(&m, sizeof meta + ulen);
    memcpy(zmq_msg_data(&m), meta, sizeof meta);
    memcpy((char *)zmq_msg_data(&m) + sizeof meta, p->user, ulen);
    zmq_msg_send(wid, b->back, ZMQ_SNDMORE);
    zmq_msg_send(&p->client, b->back, ZMQ_SNDMORE);
    zmq_msg_send(&m, b->back, ZMQ_SNDMORE);
    zmq_msg_send(&p->parts[0], b->back, ZMQ_SNDMORE);
    zmq_msg_send(&p->parts[1], b->back, 0);
    s_pending_close(p);
}

static void s_front_ready(broker_t *b)
{
    /* Drain what is readable without blocking, bounded so the workers' replies get a turn. */
    for (int n = 0; n < 64; n++) {
        pending_t p;
        if (s_read_call(b->front, &p) != 0) {
            return;
        }
        if (b->draining) {
            s_broker_refuse(b, &p, PX_UNAVAILABLE, "server is shutting down");
        } else if (b->nidle > 0 && b->qlen == 0) {
            s_dispatch(b, &p);
        } else if (b->qlen < QUEUE_MAX) {
            b->queue[(b->qhead + b->qlen) % QUEUE_MAX] = p;
            b->qlen++;
            px_metrics_set(b->server->m_queued, (double)b->qlen);
        } else {
            s_broker_refuse(b, &p, PX_RESOURCE_EXHAUSTED, "server overloaded: call queue full");
        }
    }
}

static void s_back_ready(broker_t *b)
{
    for (int n = 0; n < 64; n++) {
        zmq_msg_t wid;
        zmq_msg_init(&wid);
        if (zmq_msg_recv(&wid, b->back, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&wid);
            return;
        }
        zmq_msg_t first;
        zmq_msg_init(&first);
        zmq_msg_recv(&first, b->back, 0);
        if (!s_more(b->back)) {
            b->nready++; /* "R" */
            zmq_msg_close(&first);
        } else {
            /* A reply: forward [client][header][body] to the front. */
            zmq_msg_send(&first, b->front, ZMQ_SNDMORE);
            while (1) {
                zmq_msg_t part;
                zmq_msg_init(&part);
                zmq_msg_recv(&part, b->back, 0);
                int more = s_more(b->back);
                zmq_msg_send(&part, b->front, more ? ZMQ_SNDMORE : 0);
                zmq_msg_close(&part);
                if (!more) {
                    break;
                }
            }
        }
        zmq_msg_init(&b->idle[b->nidle]);
        zmq_msg_move(&b->idle[b->nidle], &wid);
        b->nidle++;
        zmq_msg_close(&wid);
        if (b->qlen > 0 && !b->draining) {
            pending_t *p = &b->queue[b->qhead];
            b->qhead = (b->qhead + 1) % QUEUE_MAX;
            b->qlen--;
            px_metrics_set(b->server->m_queued, (double)b->qlen);
            s_dispatch(b, p);
        }
    }
}

static void s_begin_drain(broker_t *b)
{
    b->draining = 1;
    b->drain_deadline = px_clock_us() + (int64_t)b->server->opts.drain_ms * 1000;
    while (b->qlen > 0) {
        pending_t *p = &b->queue[b->qhead];
        b->qhead = (b->qhead + 1) % QUEUE_MAX;
        b->qlen--;
        s_broker_refuse(b, p, PX_UNAVAILABLE, "server is shutting down");
    }
    px_metrics_set(b->server->m_queued, 0);
    px_log_emit(b->server->opts.log, PX_LOG_INFO, "RPC-DRAIN",
                "stopping: finishing calls in flight",
                PX_LOG_FIELDS(PX_LI("busy", b->server->nworkers - b->nidle)));
}

static void *s_broker_main(void *arg)
{
    px_rpc_server_t *server = arg;
    broker_t b = {.server = server, .front = server->frontend};
    b.back = zmq_socket(px__zmq_ctx(), ZMQ_ROUTER);
    b.idle = calloc((size_t)server->nworkers, sizeof(zmq_msg_t));
    b.queue = calloc(QUEUE_MAX, sizeof(pending_t));
    int linger = 0;
    if (!b.back || !b.idle || !b.queue) {
        goto done;
    }
    zmq_setsockopt(b.back, ZMQ_LINGER, &linger, sizeof linger);
    int hwm = 0;
    zmq_setsockopt(b.back, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(b.back, ZMQ_RCVHWM, &hwm, sizeof hwm);
    /* Workers may connect before this bind: libzmq queues inproc connects until it happens. */
    if (zmq_bind(b.back, server->inproc) != 0) {
        px_log_emit(server->opts.log, PX_LOG_ERROR, "RPC-BROKER-FAIL",
                    "cannot bind the worker socket",
                    PX_LOG_FIELDS(PX_LS("error", zmq_strerror(errno))));
        goto done;
    }
    for (;;) {
        zmq_pollitem_t items[3] = {
            {b.back, 0, ZMQ_POLLIN, 0},
            {b.front, 0, ZMQ_POLLIN, 0},
            {NULL, server->stop_pipe[0], ZMQ_POLLIN, 0},
        };
        long timeout = -1;
        if (b.draining) {
            if (b.nidle == server->nworkers || px_clock_us() >= b.drain_deadline) {
                break;
            }
            timeout = (long)((b.drain_deadline - px_clock_us()) / 1000) + 1;
        }
        /* While no worker is idle the front is left unread only if the queue is full. */
        int rc = zmq_poll(items, b.draining ? 2 : 3, timeout);
        if (rc < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            s_back_ready(&b);
        }
        if (items[1].revents & ZMQ_POLLIN) {
            s_front_ready(&b);
        }
        if (!b.draining && (items[2].revents & ZMQ_POLLIN)) {
            s_begin_drain(&b);
        }
    }
    if (b.nidle < server->nworkers) {
        px_log_emit(server->opts.log, PX_LOG_WARN, "RPC-DRAIN-TIMEOUT",
                    "calls still running at the end of the drain period",
                    PX_LOG_FIELDS(PX_LI("busy", server->nworkers - b.nidle)));
    }
    /* Tell idle workers to stop; busy ones read their stop after their call. */
    for (int i = 0; i < b.nidle; i++) {
        zmq_msg_send(&b.idle[i], b.back, ZMQ_SNDMORE);
        zmq_send(b.back, "S", 1, 0);
    }
done:
    if (b.idle) {
        for (int i = 0; i < b.nidle; i++) {
            zmq_msg_close(&b.idle[i]);
        }
    }
    for (size_t i = 0; i < b.qlen; i++) {
        s_pending_close(&b.queue[(b.qhead + i) % QUEUE_MAX]);
    }
    free(b.queue);
    free(b.idle);
    /* Give the last replies a moment to leave, then close. */
    int front_linger = 1000;
    zmq_setsockopt(server->frontend, ZMQ_LINGER, &front_linger, sizeof front_linger);
    zmq_close(server->frontend);
    server->frontend = NULL;
    (void)b.back; /* closed after the workers have stopped (px_rpc_server_stop) */
    return b.back;
}

/* ------------------------------------------------------------------ start / stop */

static px_code_t s_bind_front(px_rpc_server_t *self, px_status_t *st)
{
    char ep[NAME_MAX_LEN];
    size_t len = strlen(self->endpoint_cfg);
    if (len >= sizeof ep) {
        return px_status_set(st, PX_INVALID_ARGUMENT, "endpoint: too long");
    }
    memcpy(ep, self->endpoint_cfg, len + 1);
    /* Port 0 means "any free port", which libzmq spells "*". */
    if (len > 2 && strcmp(ep + len - 2, ":0") == 0) {
        ep[len - 1] = '*';
    }
    self->frontend = zmq_socket(px__zmq_ctx(), ZMQ_ROUTER);
    if (!self->frontend) {
        return px_status_set(st, PX_INTERNAL, "zmq_socket: %s", zmq_strerror(errno));
    }
    int hwm = 100000;
    zmq_setsockopt(self->frontend, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->frontend, ZMQ_RCVHWM, &hwm, sizeof hwm);
    /* Frames between the limit and this answer RESOURCE_EXHAUSTED; beyond it libzmq drops the
     * connection before we ever allocate the frame. */
    int64_t hard = (int64_t)self->opts.max_message * 2 + 64 * 1024;
    zmq_setsockopt(self->frontend, ZMQ_MAXMSGSIZE, &hard, sizeof hard);
    int linger = 0;
    zmq_setsockopt(self->frontend, ZMQ_LINGER, &linger, sizeof linger);
    if (self->opts.curve) {
        px_code_t c = px_curve_server_setup(self->opts.curve, px__zmq_ctx(), self->frontend, st);
        if (c != PX_OK) {
            zmq_close(self->frontend);
            self->frontend = NULL;
            return c;
        }
    }
    if (zmq_bind(self->frontend, ep) != 0) {
        px_code_t c = px_status_set(st, PX_UNAVAILABLE, "cannot bind %s: %s", self->endpoint_cfg,
                                    zmq_strerror(errno));
        zmq_close(self->frontend);
        self->frontend = NULL;
        return c;
    }
    size_t sz = sizeof self->bound;
    zmq_getsockopt(self->frontend, ZMQ_LAST_ENDPOINT, self->bound, &sz);
    return PX_OK;
}

px_code_t px_rpc_server_start(px_rpc_server_t *self, px_status_t *st)
{
    assert(self);
    if (self->broker_started) {
        return px_status_set(st, PX_FAILED_PRECONDITION, "server already started");
    }
    if (!px__zmq_ctx()) {
        return px_status_set(st, PX_INTERNAL, "zmq_ctx_new failed");
    }
    px_code_t code = s_bind_front(self, st);
    if (code != PX_OK) {
        return code;
    }
    if (pipe2(self->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        return px_status_set(st, PX_INTERNAL, "pipe: %s", strerror(errno));
    }
    self->workers = calloc((size_t)self->nworkers, sizeof(worker_t));
    if (!self->workers) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    if (pthread_create(&self->broker, NULL, s_broker_main, self) != 0) {
        return px_status_set(st, PX_INTERNAL, "cannot start the broker thread");
    }
    self->broker_started = 1;
    for (int i = 0; i < self->nworkers; i++) {
        self->workers[i].server = self;
        self->workers[i].index = i;
        if (pthread_create(&self->workers[i].thread, NULL, s_worker_main, &self->workers[i]) == 0) {
            self->workers[i].started = 1;
        }
    }
    px_log_emit(self->opts.log, PX_LOG_INFO, "RPC-LISTEN", "serving",
                PX_LOG_FIELDS(PX_LS("endpoint", self->bound), PX_LI("workers", self->nworkers)));
    return PX_OK;
}

void px_rpc_server_stop(px_rpc_server_t *self)
{
    if (!self) {
        return;
    }
    pthread_mutex_lock(&self->stop_lock);
    if (self->broker_started && !self->stopped) {
        self->stopped = 1;
        ssize_t w = write(self->stop_pipe[1], "x", 1);
        (void)w;
        void *back = NULL;
        pthread_join(self->broker, &back);
        /* Busy workers finish their call, then read the stop the broker queued for them; a
         * worker stuck past the drain period is waited for a little longer, then left. */
        int64_t until = px_clock_us() + 2000000;
        for (int i = 0; i < self->nworkers; i++) {
            if (!self->workers[i].started) {
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t left = until - px_clock_us();
            if (left < 0) {
                left = 0;
            }
            ts.tv_sec += left / 1000000;
            ts.tv_nsec += (left % 1000000) * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            if (pthread_timedjoin_np(self->workers[i].thread, NULL, &ts) == 0) {
                self->workers[i].joined = 1;
            }
        }
        if (back) {
            zmq_close(back);
        }
    }
    pthread_mutex_unlock(&self->stop_lock);
}

void px_rpc_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP); /* a reload, for the thread that sigwaits for it */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void px_rpc_server_run_until_signal(px_rpc_server_t *self)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    px_log_emit(self->opts.log, PX_LOG_INFO, "RPC-SIGNAL", "stop requested",
                PX_LOG_FIELDS(PX_LI("signal", sig)));
    px_rpc_server_stop(self);
}

void px_rpc_server_destroy(px_rpc_server_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        px_rpc_server_t *self = *self_p;
        px_rpc_server_stop(self);
        int all_joined = 1;
        for (int i = 0; self->workers && i < self->nworkers; i++) {
            if (self->workers[i].started && !self->workers[i].joined) {
                all_joined = 0;
            }
        }
        if (!all_joined) {
            /* A worker is still inside a handler: freeing what it reads would be worse than
             * leaking it; the process is about to exit anyway. */
            *self_p = NULL;
            return;
        }
        if (self->frontend) {
            zmq_close(self->frontend);
        }
        for (size_t i = 0; i < self->nservices; i++) {
            free(self->services[i].handlers);
        }
        for (size_t i = 0; i < self->npeers; i++) {
            free(self->peer_names[i]);
            free(self->peer_endpoints[i]);
        }
        if (self->stop_pipe[0] >= 0) {
            close(self->stop_pipe[0]);
            close(self->stop_pipe[1]);
        }
        pthread_mutex_destroy(&self->stop_lock);
        free(self->workers);
        free(self->endpoint_cfg);
        free(self->on_behalf_callers);
        px_metrics_destroy(&self->metrics);
        free(self);
        *self_p = NULL;
    }
}

/* ------------------------------------------------------------------ handler context */

void *px_rpc_ctx_state(px_rpc_ctx_t *ctx)
{
    return ctx->state;
}

px_db_t *px_rpc_ctx_db(px_rpc_ctx_t *ctx)
{
    /* A handler's database work ends with its call: past the deadline it is cancelled. */
    if (ctx->db) {
        px_db_set_deadline(ctx->db, ctx->deadline_us);
    }
    return ctx->db;
}

px_log_t *px_rpc_ctx_log(px_rpc_ctx_t *ctx)
{
    return ctx->log;
}

const char *px_rpc_ctx_method(const px_rpc_ctx_t *ctx)
{
    return ctx->method;
}

const char *px_rpc_ctx_request_id(const px_rpc_ctx_t *ctx)
{
    return ctx->request_id;
}

const char *px_rpc_ctx_caller(const px_rpc_ctx_t *ctx)
{
    return ctx->caller;
}

const char *px_rpc_ctx_on_behalf_of(const px_rpc_ctx_t *ctx)
{
    return ctx->on_behalf_of ? ctx->on_behalf_of : "";
}

const px_md_t *px_rpc_ctx_metadata(const px_rpc_ctx_t *ctx)
{
    return ctx->md;
}

int64_t px_rpc_ctx_deadline_us(const px_rpc_ctx_t *ctx)
{
    return ctx->deadline_us;
}

int64_t px_rpc_ctx_started_us(const px_rpc_ctx_t *ctx)
{
    return ctx->started_us;
}

int px_rpc_ctx_worker(const px_rpc_ctx_t *ctx)
{
    return ctx->worker;
}

int64_t px_rpc_ctx_remaining_us(const px_rpc_ctx_t *ctx)
{
    if (ctx->deadline_us <= 0) {
        return 0;
    }
    int64_t left = ctx->deadline_us - px_clock_us();
    return left > 0 ? left : -1;
}

px_rpc_client_t *px_rpc_ctx_peer(px_rpc_ctx_t *ctx, const char *name)
{
    for (size_t i = 0; i < ctx->npeers; i++) {
        if (strcmp(ctx->peer_names[i], name) == 0) {
            if (!ctx->peer_clients[i]) {
                px_status_t st;
                px_rpc_client_opts_t o = {.log = ctx->log,
                                          .caller = ctx->server->opts.service_name,
                                          .curve = ctx->server->opts.curve,
                                          .server_name = ctx->peer_names[i]};
                ctx->peer_clients[i] = px_rpc_client_new(ctx->peer_endpoints[i], &o, &st);
            }
            return ctx->peer_clients[i];
        }
    }
    return NULL;
}

void *px_rpc_ctx_alloc(px_rpc_ctx_t *ctx, size_t size)
{
    return px__arena_alloc(ctx->arena, size);
}

char *px_rpc_ctx_strdup(px_rpc_ctx_t *ctx, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = px__arena_alloc(ctx->arena, n);
    if (p) {
        memcpy(p, s, n);
    }
    return p;
}

char *px_rpc_ctx_printf(px_rpc_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return NULL;
    }
    char *p = px__arena_alloc(ctx->arena, (size_t)n + 1);
    if (p) {
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return p;
}

px_code_t px_rpc_fail(px_rpc_ctx_t *ctx, px_code_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    px_status_setv(&ctx->status, code, fmt, ap);
    va_end(ap);
    return code;
}

px_code_t px_rpc_fail_status(px_rpc_ctx_t *ctx, const px_status_t *st)
{
    ctx->status = *st;
    return st->code;
}

const px_status_t *px_rpc_ctx_status(const px_rpc_ctx_t *ctx)
{
    return &ctx->status;
}
