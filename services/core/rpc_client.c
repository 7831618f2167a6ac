/*
 * rpc_client.c - the calling side of phuxanh's RPC (docs/PROTOCOL.md).
 *
 * One DEALER socket per endpoint rather than one DEALER connected to all of
 * them: we must know which server a call went to, so that when a connection
 * drops (seen through the socket's monitor) exactly the calls in flight on it
 * fail with UNAVAILABLE, and so that calls are only sent to endpoints whose
 * handshake has completed. Not ZMQ_IMMEDIATE: with it libzmq discards replies
 * still unread when the connection closes, and a server that answers and then
 * stops (a graceful drain) would lose its last answers.
 *
 * Calls are completed by call id. A client is owned by one thread; progress
 * happens when its sockets and monitors are read and its timers fired
 * (deadlines, retry backoff, waits for a connection). That is one path,
 * px_rpc_client_poll_items / px_rpc_client_poll_handle around a zmq_poll,
 * taken either by px_rpc_client_wait/next (a poll of this client alone) or by
 * the owner's event loop (one poll of several clients and its own sockets).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/clock.h"
#include "phuxanh/curve.h"
#include "phuxanh/health/v1/health.pb-c.h"
#include "rpc_internal.h"

#define MAX_ENDPOINTS PX_RPC_MAX_ENDPOINTS
#define MAX_IDEMPOTENT 64

typedef enum { CALL_WAITING, CALL_SENT, CALL_DONE } call_state_t;

struct px_rpc_call_t {
    px_rpc_client_t *client; /* NULL once abandoned by px_rpc_call_destroy while in flight */
    uint64_t id;
    char *method;
    const ProtobufCMessageDescriptor *reply_type;
    unsigned char *request; /* packed, kept for retries */
    size_t request_len;
    px_md_t *md;
    int64_t deadline_us;
    int64_t next_try_us;   /* while waiting: when to try sending again */
    int64_t wait_until_us; /* while waiting for a connection: give up then */
    int backoff_ms;
    bool idempotent;
    int attempts; /* sends */
    int retries;  /* UNAVAILABLE answers turned into another try */
    int endpoint;
    call_state_t state;
    bool reported; /* returned by next() or waited for */
    px_code_t code;
    char *message;
    px_md_t *reply_md;
    ProtobufCMessage *reply;
    void *user;
};

typedef struct {
    char *address;
    void *sock;
    void *monitor;
    bool ready; /* handshake done, not disconnected since */
    /* The last handshake failed for security (its key refused, or CURVE on one side only):
     * calls fail at once instead of waiting for a connection that will not come. */
    const char *refused;
    int in_flight;
} endpoint_t;

struct px_rpc_client_t {
    px_rpc_client_opts_t opts;
    endpoint_t eps[MAX_ENDPOINTS];
    int neps;
    int next_ep;
    uint64_t next_id;
    px_rpc_call_t **active; /* not yet done */
    size_t nactive, cap_active;
    px_rpc_call_t **done; /* done, not yet reported */
    size_t ndone, cap_done;
    char *idempotent[MAX_IDEMPOTENT];
    int nidempotent;
    uint64_t completions; /* calls completed so far: tells a poll round that timers finished some */
    uint64_t refusals;    /* handshakes refused so far: waiting calls look again */
    uint64_t refusals_seen;
    /* A call waited connect_wait_ms and no server connected: until one does, calls fail at
     * once instead of each waiting again (libzmq keeps reconnecting in the background). */
    bool known_down;
};

/* ------------------------------------------------------------------ lists */

static int s_push(px_rpc_call_t ***arr, size_t *n, size_t *cap, px_rpc_call_t *c)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        px_rpc_call_t **a = realloc(*arr, ncap * sizeof *a);
        if (!a) {
            return -1;
        }
        *arr = a;
        *cap = ncap;
    }
    (*arr)[(*n)++] = c;
    return 0;
}

static void s_remove(px_rpc_call_t **arr, size_t *n, px_rpc_call_t *c)
{
    for (size_t i = 0; i < *n; i++) {
        if (arr[i] == c) {
            arr[i] = arr[--(*n)];
            return;
        }
    }
}

/* ------------------------------------------------------------------ lifecycle */

static int s_endpoint_open(px_rpc_client_t *self, int i, const char *address, px_status_t *st)
{
    endpoint_t *ep = &self->eps[i];
    void *ctx = px__zmq_ctx();
    char mon[64];
    ep->address = strdup(address);
    ep->sock = zmq_socket(ctx, ZMQ_DEALER);
    if (!ep->address || !ep->sock) {
        return -1;
    }
    int linger = 0, ivl = 20, ivl_max = 1000, hwm = 100000;
    int64_t hard = (int64_t)self->opts.max_message * 2 + 64 * 1024;
    zmq_setsockopt(ep->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(ep->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(ep->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(ep->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(ep->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(ep->sock, ZMQ_MAXMSGSIZE, &hard, sizeof hard);
    /* A fresh name each time: a freed client's monitor endpoint may linger a moment, and a
     * new client at the same address must not collide with it. */
    snprintf(mon, sizeof mon, "inproc://px-mon-%lu", px__unique_id());
    if (self->opts.curve &&
        px_curve_client_setup(self->opts.curve, ep->sock, self->opts.server_name, st) != PX_OK) {
        return -1;
    }
    if (zmq_socket_monitor(ep->sock, mon,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0) {
        return -1;
    }
    ep->monitor = zmq_socket(ctx, ZMQ_PAIR);
    if (!ep->monitor || zmq_setsockopt(ep->monitor, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_connect(ep->monitor, mon) != 0) {
        return -1;
    }
    if (zmq_connect(ep->sock, address) != 0) {
        return -1;
    }
    return 0;
}

px_rpc_client_t *px_rpc_client_new(const char *endpoints, const px_rpc_client_opts_t *opts,
                                   px_status_t *st)
{
    if (!endpoints || !*endpoints) {
        px_status_set(st, PX_INVALID_ARGUMENT, "endpoints: must name at least one endpoint");
        return NULL;
    }
    if (!px__zmq_ctx()) {
        px_status_set(st, PX_INTERNAL, "zmq_ctx_new failed");
        return NULL;
    }
    px_rpc_client_t *self = calloc(1, sizeof(px_rpc_client_t));
    char *list = strdup(endpoints);
    if (!self || !list) {
        free(self);
        free(list);
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    if (opts) {
        self->opts = *opts;
    }
    if (self->opts.max_attempts <= 0) {
        self->opts.max_attempts = 5;
    }
    if (self->opts.backoff_ms <= 0) {
        self->opts.backoff_ms = 10;
    }
    if (self->opts.backoff_max_ms <= 0) {
        self->opts.backoff_max_ms = 1000;
    }
    if (self->opts.curve && (!self->opts.server_name || !*self->opts.server_name)) {
        free(self);
        free(list);
        px_status_set(st, PX_INVALID_ARGUMENT, "server_name: needed with CURVE");
        return NULL;
    }
    if (self->opts.connect_wait_ms <= 0) {
        self->opts.connect_wait_ms = 1000;
    }
    if (!self->opts.max_message) {
        self->opts.max_message = PX_RPC_MAX_MESSAGE_DEFAULT;
    }
    self->opts.caller = NULL; /* copied below: the options' strings are borrowed */
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') {
            tok++;
        }
        if (!*tok) {
            continue;
        }
        if (self->neps == MAX_ENDPOINTS) {
            px_status_set(st, PX_INVALID_ARGUMENT, "endpoints: at most %d", MAX_ENDPOINTS);
            goto fail;
        }
        px_status_clear(st);
        if (s_endpoint_open(self, self->neps++, tok, st) != 0) {
            if (st->code == PX_OK) {
                px_status_set(st, PX_INVALID_ARGUMENT, "endpoint %.200s: %s", tok,
                              zmq_strerror(errno));
            }
            goto fail;
        }
    }
    if (self->neps == 0) {
        px_status_set(st, PX_INVALID_ARGUMENT, "endpoints: must name at least one endpoint");
        goto fail;
    }
    self->opts.server_name = NULL; /* borrowed, and needed only above */
    if (opts && opts->caller) {
        self->opts.caller = strdup(opts->caller);
    }
    px_rpc_client_set_idempotent(self, "/phuxanh.health.v1.Health/Check");
    px_rpc_client_set_idempotent(self, "/phuxanh.metrics.v1.Metrics/GetMetrics");
    free(list);
    return self;
fail:
    free(list);
    px_rpc_client_destroy(&self);
    return NULL;
}

static void s_call_free(px_rpc_call_t *c)
{
    free(c->method);
    free(c->request);
    free(c->message);
    px_md_destroy(&c->md);
    px_md_destroy(&c->reply_md);
    if (c->reply) {
        protobuf_c_message_free_unpacked(c->reply, NULL);
    }
    free(c);
}

void px_rpc_client_destroy(px_rpc_client_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        px_rpc_client_t *self = *self_p;
        /* Calls still owned by the user outlive the client as finished-and-orphaned. */
        for (size_t i = 0; i < self->nactive; i++) {
            px_rpc_call_t *c = self->active[i];
            if (c->client == NULL) {
                s_call_free(c);
            } else {
                c->client = NULL;
                c->state = CALL_DONE;
                c->code = PX_CANCELLED;
            }
        }
        for (size_t i = 0; i < self->ndone; i++) {
            if (self->done[i]->client == NULL) {
                s_call_free(self->done[i]);
            } else {
                self->done[i]->client = NULL;
            }
        }
        for (int i = 0; i < self->neps; i++) {
            endpoint_t *ep = &self->eps[i];
            if (ep->sock) {
                zmq_socket_monitor(ep->sock, NULL, 0);
                zmq_close(ep->sock);
            }
            if (ep->monitor) {
                zmq_close(ep->monitor);
            }
            free(ep->address);
        }
        for (int i = 0; i < self->nidempotent; i++) {
            free(self->idempotent[i]);
        }
        free((char *)self->opts.caller);
        free(self->active);
        free(self->done);
        free(self);
        *self_p = NULL;
    }
}

int px_rpc_client_set_idempotent(px_rpc_client_t *self, const char *method)
{
    for (int i = 0; i < self->nidempotent; i++) {
        if (strcmp(self->idempotent[i], method) == 0) {
            return 0;
        }
    }
    if (self->nidempotent == MAX_IDEMPOTENT) {
        return -1;
    }
    self->idempotent[self->nidempotent] = strdup(method);
    if (!self->idempotent[self->nidempotent]) {
        return -1;
    }
    self->nidempotent++;
    return 0;
}

static bool s_is_idempotent(const px_rpc_client_t *self, const char *method)
{
    for (int i = 0; i < self->nidempotent; i++) {
        if (strcmp(self->idempotent[i], method) == 0) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ completion */

static void s_complete(px_rpc_client_t *self, px_rpc_call_t *c, px_code_t code, const char *msg)
{
    if (c->state == CALL_SENT && c->endpoint >= 0) {
        self->eps[c->endpoint].in_flight--;
    }
    c->state = CALL_DONE;
    c->code = code;
    self->completions++;
    free(c->message);
    c->message = strdup(msg ? msg : "");
    s_remove(self->active, &self->nactive, c);
    if (c->client == NULL) {
        s_call_free(c); /* abandoned: nobody will look at it */
        return;
    }
    if (s_push(&self->done, &self->ndone, &self->cap_done, c) != 0) {
        c->reported = true; /* cannot queue it; wait() still sees it done */
    }
}

/* Fails the call or, when it may be retried, schedules the next attempt. */
static void s_retry_or_fail(px_rpc_client_t *self, px_rpc_call_t *c, px_code_t code,
                            const char *msg)
{
    int64_t now = px_clock_us();
    if (c->state == CALL_SENT && c->endpoint >= 0) {
        self->eps[c->endpoint].in_flight--;
        c->endpoint = -1;
    }
    if (code == PX_UNAVAILABLE && c->idempotent && c->retries + 1 < self->opts.max_attempts) {
        int64_t at = now + (int64_t)c->backoff_ms * 1000;
        if (at < c->deadline_us) {
            c->retries++;
            c->state = CALL_WAITING;
            c->next_try_us = at;
            c->wait_until_us = 0; /* the next try waits connect_wait for a server again */
            c->backoff_ms = c->backoff_ms * 2 > self->opts.backoff_max_ms
                                ? self->opts.backoff_max_ms
                                : c->backoff_ms * 2;
            return;
        }
    }
    c->state = CALL_WAITING; /* in_flight already released above */
    s_complete(self, c, code, msg);
}

/* ------------------------------------------------------------------ sending */

static int s_pick_endpoint(px_rpc_client_t *self)
{
    for (int k = 0; k < self->neps; k++) {
        int i = (self->next_ep + k) % self->neps;
        if (self->eps[i].ready) {
            self->next_ep = (i + 1) % self->neps;
            return i;
        }
    }
    return -1;
}

/* Tries to send c now. Leaves it SENT, or WAITING with a next_try time, or completes it. */
static void s_read_monitor(px_rpc_client_t *self, int epi);

static void s_try_send(px_rpc_client_t *self, px_rpc_call_t *c)
{
    if (self->known_down) {
        /* The owner may not have polled since: a handshake that succeeded meanwhile is news. */
        for (int i = 0; i < self->neps; i++) {
            s_read_monitor(self, i);
        }
    }
    int64_t now = px_clock_us();
    if (now >= c->deadline_us) {
        s_complete(self, c, PX_DEADLINE_EXCEEDED, "deadline exceeded before the call was sent");
        return;
    }
    bool blocked = false;
    for (int tries = 0; tries < self->neps; tries++) {
        int i = s_pick_endpoint(self);
        if (i < 0) {
            break;
        }
        int64_t left_ms = (c->deadline_us - now + 999) / 1000;
        if (left_ms > PX_RPC_MAX_TIMEOUT_MS) {
            left_ms = PX_RPC_MAX_TIMEOUT_MS;
        }
        zmq_msg_t hdr;
        if (px__envelope_request(&hdr, c->id, c->method, (uint32_t)left_ms, c->md) != 0) {
            s_complete(self, c, PX_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        if (zmq_msg_send(&hdr, self->eps[i].sock, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            /* Handshake seen but the pipe not attached yet, or the queue is full: try again
             * shortly rather than wait for an event that may not come. */
            zmq_msg_close(&hdr);
            blocked = true;
            continue;
        }
        /* The second frame of a message whose first went out never blocks. */
        zmq_send(self->eps[i].sock, c->request, c->request_len, 0);
        c->state = CALL_SENT;
        c->endpoint = i;
        c->attempts++;
        self->eps[i].in_flight++;
        return;
    }
    /* Every server refused our handshake: say so now; waiting would only end UNAVAILABLE. */
    const char *refused = self->neps > 0 ? self->eps[0].refused : NULL;
    for (int i = 1; i < self->neps && refused; i++) {
        refused = self->eps[i].refused;
    }
    if (refused && !blocked) {
        s_complete(self, c, PX_UNAUTHENTICATED, refused);
        return;
    }
    /* Known down (an earlier call waited in vain, and no handshake succeeded since): fail now,
     * so that a dead peer costs each caller nothing instead of connect_wait per call. */
    if (self->known_down) {
        s_complete(self, c, PX_UNAVAILABLE, "no server reachable (found down; not waited for)");
        return;
    }
    /* Nobody connected: wait for a handshake, up to connect_wait (and the deadline). */
    c->state = CALL_WAITING;
    if (c->wait_until_us == 0) {
        c->wait_until_us = now + (int64_t)self->opts.connect_wait_ms * 1000;
    }
    if (now >= c->wait_until_us) {
        self->known_down = true;
        s_retry_or_fail(self, c, PX_UNAVAILABLE, "no server reachable");
        return;
    }
    /* Retried when a handshake succeeds, at wait_until, or soon when a ready pipe was full. */
    c->next_try_us = blocked ? now + 1000 : 0;
}

px_rpc_call_t *px_rpc_client_start(px_rpc_client_t *self, const char *method,
                                   const ProtobufCMessage *request,
                                   const ProtobufCMessageDescriptor *reply_type,
                                   const px_rpc_call_opts_t *opts)
{
    static const px_rpc_call_opts_t defaults;
    if (!opts) {
        opts = &defaults;
    }
    px_rpc_call_t *c = calloc(1, sizeof(px_rpc_call_t));
    if (!c) {
        return NULL;
    }
    c->client = self;
    c->id = ++self->next_id;
    c->reply_type = reply_type;
    c->endpoint = -1;
    c->method = strdup(method);
    c->md = px_md_new();
    c->backoff_ms = self->opts.backoff_ms;
    c->idempotent = opts->idempotent || s_is_idempotent(self, method);
    int64_t now = px_clock_us();
    /* The earliest of what was given: an explicit deadline, the parent call's deadline, and
     * the timeout; the default timeout only when none was. */
    int64_t deadline = 0;
    int64_t given[3] = {opts->deadline_us, opts->parent ? px_rpc_ctx_deadline_us(opts->parent) : 0,
                        opts->timeout_ms > 0 ? now + opts->timeout_ms * 1000 : 0};
    for (int i = 0; i < 3; i++) {
        if (given[i] > 0 && (deadline == 0 || given[i] < deadline)) {
            deadline = given[i];
        }
    }
    c->deadline_us = deadline > 0 ? deadline : now + (int64_t)PX_RPC_DEFAULT_TIMEOUT_MS * 1000;
    if (!c->method || !c->md || s_push(&self->active, &self->nactive, &self->cap_active, c) != 0) {
        s_call_free(c);
        return NULL;
    }
    /* Metadata: the call's own, then what a parent call hands down, then the client's. */
    for (size_t i = 0; i < px_md_size(opts->metadata); i++) {
        px_md_entry_t e = px_md_at(opts->metadata, i);
        px_md_set(c->md, e.key, e.value);
    }
    if (opts->parent) {
        if (!px_md_get(c->md, PX_MD_REQUEST_ID)) {
            px_md_set(c->md, PX_MD_REQUEST_ID, px_rpc_ctx_request_id(opts->parent));
        }
        /* Whom the chain acts for travels with it, so the next service audits it too. */
        const char *obo = px_rpc_ctx_on_behalf_of(opts->parent);
        if (*obo && !opts->drop_on_behalf && !px_md_get(c->md, PX_MD_ON_BEHALF_OF)) {
            px_md_set(c->md, PX_MD_ON_BEHALF_OF, obo);
        }
    }
    if (!px_md_get(c->md, PX_MD_CALLER) && self->opts.caller) {
        px_md_set(c->md, PX_MD_CALLER, self->opts.caller);
    }
    if (!px_md_get(c->md, PX_MD_REQUEST_ID)) {
        char rid[33];
        px_rpc_request_id_new(rid);
        px_md_set(c->md, PX_MD_REQUEST_ID, rid);
    }
    c->request_len = request ? protobuf_c_message_get_packed_size(request) : 0;
    if (c->request_len > self->opts.max_message) {
        char msg[128];
        snprintf(msg, sizeof msg, "request of %zu bytes exceeds the limit of %zu", c->request_len,
                 self->opts.max_message);
        s_complete(self, c, PX_RESOURCE_EXHAUSTED, msg);
        return c;
    }
    c->request = malloc(c->request_len ? c->request_len : 1);
    if (!c->request) {
        s_complete(self, c, PX_RESOURCE_EXHAUSTED, "out of memory");
        return c;
    }
    if (request) {
        protobuf_c_message_pack(request, c->request);
    }
    if (now >= c->deadline_us) {
        s_complete(self, c, PX_DEADLINE_EXCEEDED, "deadline exceeded before the call was sent");
        return c;
    }
    s_try_send(self, c);
    return c;
}

/* ------------------------------------------------------------------ progress */

static px_rpc_call_t *s_find_active(px_rpc_client_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->nactive; i++) {
        if (self->active[i]->id == id) {
            return self->active[i];
        }
    }
    return NULL;
}

static void s_read_reply(px_rpc_client_t *self, int epi)
{
    void *sock = self->eps[epi].sock;
    for (int n = 0; n < 256; n++) {
        zmq_msg_t hdr, body;
        zmq_msg_init(&hdr);
        if (zmq_msg_recv(&hdr, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&hdr);
            return;
        }
        zmq_msg_init(&body);
        int more = 0;
        size_t sz = sizeof more;
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
        if (more) {
            zmq_msg_recv(&body, sock, 0);
            /* Discard anything beyond the two frames the protocol has. */
            zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
            while (more) {
                zmq_msg_t drop;
                zmq_msg_init(&drop);
                zmq_msg_recv(&drop, sock, 0);
                zmq_msg_close(&drop);
                zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
            }
        }
        Phuxanh__Rpc__V1__ResponseHeader *h =
            zmq_msg_size(&hdr) <= PX_RPC_MAX_HEADER
                ? phuxanh__rpc__v1__response_header__unpack(NULL, zmq_msg_size(&hdr),
                                                            zmq_msg_data(&hdr))
                : NULL;
        px_rpc_call_t *c = h ? s_find_active(self, h->call_id) : NULL;
        if (c && c->state == CALL_SENT && c->endpoint == epi) {
            px_code_t code = px_code_valid(h->code) ? (px_code_t)h->code : PX_UNKNOWN;
            px_md_destroy(&c->reply_md);
            c->reply_md = px_md_new();
            if (c->reply_md) {
                px__md_from_pb(c->reply_md, h->metadata, h->n_metadata);
            }
            if (code == PX_OK) {
                if (zmq_msg_size(&body) > self->opts.max_message) {
                    s_complete(self, c, PX_RESOURCE_EXHAUSTED, "reply exceeds the size limit");
                } else {
                    c->reply = c->reply_type ? protobuf_c_message_unpack(c->reply_type, NULL,
                                                                         zmq_msg_size(&body),
                                                                         zmq_msg_data(&body))
                                             : NULL;
                    if (c->reply_type && !c->reply) {
                        s_complete(self, c, PX_INTERNAL, "reply does not decode");
                    } else {
                        s_complete(self, c, PX_OK, "");
                    }
                }
            } else {
                s_retry_or_fail(self, c, code, h->message);
            }
        }
        /* Unknown ids are replies to calls given up on: dropped. */
        if (h) {
            phuxanh__rpc__v1__response_header__free_unpacked(h, NULL);
        }
        zmq_msg_close(&hdr);
        zmq_msg_close(&body);
    }
}

static void s_read_monitor(px_rpc_client_t *self, int epi)
{
    endpoint_t *ep = &self->eps[epi];
    for (;;) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, ep->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        zmq_msg_init(&addr);
        zmq_msg_recv(&addr, ep->monitor, 0);
        uint16_t event = 0;
        if (zmq_msg_size(&ev) >= 2) {
            memcpy(&event, zmq_msg_data(&ev), sizeof event);
        }
        zmq_msg_close(&ev);
        zmq_msg_close(&addr);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            ep->ready = true;
            ep->refused = NULL;
            self->known_down = false;
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            ep->refused = "the server refused this process's CURVE key (not in its allow-list)";
            self->refusals++;
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
            ep->refused = "handshake failed: the server speaks another security mechanism, or "
                          "another CURVE key than the allow-list gives for it";
            self->refusals++;
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            ep->ready = false;
            /* Replies that arrived before the connection closed are still in the socket's
             * queue: take them first, so only calls truly left without an answer fail. */
            s_read_reply(self, epi);
            /* Every call in flight on this connection is lost; it may or may not have run. */
            for (size_t i = 0; i < self->nactive;) {
                px_rpc_call_t *c = self->active[i];
                size_t before = self->nactive;
                if (c->state == CALL_SENT && c->endpoint == epi) {
                    s_retry_or_fail(self, c, PX_UNAVAILABLE, "connection to the server was lost");
                }
                if (self->nactive == before) {
                    i++;
                }
            }
            if (self->opts.log) {
                px_log_emit(self->opts.log, PX_LOG_WARN, "RPC-PEER-LOST", "connection lost",
                            PX_LOG_FIELDS(PX_LS("endpoint", ep->address)));
            }
        }
    }
}

/* Fires deadlines and retry timers; returns the time of the next timer (0: none). */
static int64_t s_timers(px_rpc_client_t *self)
{
    int64_t now = px_clock_us();
    int64_t next = 0;
    bool any_ready = self->refusals != self->refusals_seen;
    self->refusals_seen = self->refusals;
    for (int i = 0; i < self->neps; i++) {
        any_ready = any_ready || self->eps[i].ready;
    }
    for (size_t i = 0; i < self->nactive;) {
        px_rpc_call_t *c = self->active[i];
        size_t before = self->nactive;
        if (now >= c->deadline_us) {
            s_complete(self, c, PX_DEADLINE_EXCEEDED, "deadline exceeded");
        } else if (c->state == CALL_WAITING) {
            bool due =
                c->next_try_us ? now >= c->next_try_us : (any_ready || now >= c->wait_until_us);
            if (due) {
                c->next_try_us = 0;
                s_try_send(self, c);
            }
        }
        if (self->nactive == before) {
            px_rpc_call_t *k = self->active[i];
            int64_t t = k->deadline_us;
            if (k->state == CALL_WAITING) {
                int64_t w = k->next_try_us ? k->next_try_us : k->wait_until_us;
                if (w && w < t) {
                    t = w;
                }
            }
            if (!next || t < next) {
                next = t;
            }
            i++;
        }
    }
    return next;
}

/* Fires due timers, fills the items and lowers *timeout_ms to the next timer. A loop that
 * reports every completed call (the owner's) must not sleep while any waits to be reported;
 * px_rpc_client_wait, which looks for one call only, must not spin on the others, and only
 * needs waking for those the timers just completed. */
static int s_poll_items(px_rpc_client_t *self, zmq_pollitem_t *items, int cap, long *timeout_ms,
                        bool wake_for_unreported)
{
    assert(self && items && timeout_ms && cap >= 2 * self->neps);
    uint64_t before = self->completions;
    int64_t next = s_timers(self);
    for (int i = 0; i < self->neps; i++) {
        items[2 * i] = (zmq_pollitem_t){self->eps[i].sock, 0, ZMQ_POLLIN, 0};
        items[2 * i + 1] = (zmq_pollitem_t){self->eps[i].monitor, 0, ZMQ_POLLIN, 0};
    }
    if (next) {
        int64_t until = (next - px_clock_us() + 999) / 1000;
        if (until < 0) {
            until = 0;
        }
        if (*timeout_ms < 0 || until < *timeout_ms) {
            *timeout_ms = (long)until;
        }
    }
    if (wake_for_unreported ? self->ndone > 0 : self->completions != before) {
        *timeout_ms = 0;
    }
    return 2 * self->neps;
}

int px_rpc_client_poll_items(px_rpc_client_t *self, zmq_pollitem_t *items, int cap,
                             long *timeout_ms)
{
    return s_poll_items(self, items, cap, timeout_ms, true);
}

void px_rpc_client_poll_handle(px_rpc_client_t *self, const zmq_pollitem_t *items, int n)
{
    assert(self && items && n == 2 * self->neps);
    for (int i = 0; i < self->neps; i++) {
        if (items[2 * i].revents & ZMQ_POLLIN) {
            s_read_reply(self, i);
        }
        if (items[2 * i + 1].revents & ZMQ_POLLIN) {
            s_read_monitor(self, i);
        }
    }
    s_timers(self);
}

/* One round over this client alone: poll for up to timeout_ms (-1: until the next timer). */
static void s_pump(px_rpc_client_t *self, int timeout_ms)
{
    zmq_pollitem_t items[PX_RPC_CLIENT_POLL_MAX];
    long wait = timeout_ms;
    int n = s_poll_items(self, items, PX_RPC_CLIENT_POLL_MAX, &wait, false);
    if (zmq_poll(items, n, wait) <= 0) {
        for (int i = 0; i < n; i++) {
            items[i].revents = 0;
        }
    }
    px_rpc_client_poll_handle(self, items, n);
}

void px_rpc_client_wait(px_rpc_client_t *self, px_rpc_call_t *call)
{
    while (call->state != CALL_DONE) {
        s_pump(self, -1);
    }
    if (!call->reported) {
        call->reported = true;
        s_remove(self->done, &self->ndone, call);
    }
}

px_rpc_call_t *px_rpc_client_next(px_rpc_client_t *self, int timeout_ms)
{
    int64_t until = timeout_ms >= 0 ? px_clock_us() + (int64_t)timeout_ms * 1000 : 0;
    for (;;) {
        while (self->ndone > 0) {
            px_rpc_call_t *c = self->done[0];
            memmove(self->done, self->done + 1, (self->ndone - 1) * sizeof *self->done);
            self->ndone--;
            if (!c->reported) {
                c->reported = true;
                return c;
            }
        }
        if (self->nactive == 0) {
            return NULL;
        }
        int left = -1;
        if (timeout_ms >= 0) {
            int64_t l = (until - px_clock_us()) / 1000;
            if (l <= 0 && timeout_ms > 0) {
                return NULL;
            }
            left = l > 0 ? (int)l : 0;
        }
        s_pump(self, left);
        if (timeout_ms == 0 && self->ndone == 0) {
            return NULL;
        }
    }
}

size_t px_rpc_client_in_flight(const px_rpc_client_t *self)
{
    return self->nactive;
}

/* ------------------------------------------------------------------ call accessors */

bool px_rpc_call_done(const px_rpc_call_t *call)
{
    return call->state == CALL_DONE;
}

px_code_t px_rpc_call_code(const px_rpc_call_t *call)
{
    return call->code;
}

const char *px_rpc_call_message(const px_rpc_call_t *call)
{
    return call->message ? call->message : "";
}

const px_md_t *px_rpc_call_metadata(const px_rpc_call_t *call)
{
    return call->reply_md;
}

int px_rpc_call_attempts(const px_rpc_call_t *call)
{
    return call->attempts;
}

void *px_rpc_call_user(const px_rpc_call_t *call)
{
    return call->user;
}

void px_rpc_call_set_user(px_rpc_call_t *call, void *user)
{
    call->user = user;
}

ProtobufCMessage *px_rpc_call_take_reply(px_rpc_call_t *call)
{
    ProtobufCMessage *r = call->reply;
    call->reply = NULL;
    return r;
}

void px_rpc_call_destroy(px_rpc_call_t **call_p)
{
    assert(call_p);
    px_rpc_call_t *c = *call_p;
    if (!c) {
        return;
    }
    *call_p = NULL;
    px_rpc_client_t *self = c->client;
    if (self && c->state != CALL_DONE) {
        /* Abandoned in flight: the client frees it when it completes. */
        c->client = NULL;
        return;
    }
    if (self) {
        s_remove(self->done, &self->ndone, c);
    }
    s_call_free(c);
}

px_code_t px_rpc_client_call(px_rpc_client_t *self, const char *method,
                             const ProtobufCMessage *request,
                             const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply,
                             const px_rpc_call_opts_t *opts, px_status_t *st)
{
    px_rpc_call_t *c = px_rpc_client_start(self, method, request, reply_type, opts);
    if (!c) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    px_rpc_client_wait(self, c);
    px_code_t code = c->code;
    if (st) {
        st->code = code;
        px_utf8_copy(st->message, sizeof st->message, px_rpc_call_message(c));
    }
    if (reply) {
        *reply = code == PX_OK ? px_rpc_call_take_reply(c) : NULL;
    }
    px_rpc_call_destroy(&c);
    return code;
}

int px_rpc_health_check(px_rpc_client_t *self, const char *service, int64_t timeout_ms,
                        px_status_t *st)
{
    Phuxanh__Health__V1__HealthCheckRequest req = PHUXANH__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)(service ? service : "");
    px_rpc_call_opts_t o = {.timeout_ms = timeout_ms};
    ProtobufCMessage *rep = NULL;
    if (px_rpc_client_call(self, "/phuxanh.health.v1.Health/Check", &req.base,
                           &phuxanh__health__v1__health_check_response__descriptor, &rep, &o,
                           st) != PX_OK) {
        return -1;
    }
    int status = (int)((Phuxanh__Health__V1__HealthCheckResponse *)rep)->status;
    protobuf_c_message_free_unpacked(rep, NULL);
    return status;
}
