/*
 * rpc.h - gRPC-style unary RPC over ZeroMQ (wire format: docs/PROTOCOL.md).
 *
 * Server: binds a ROUTER socket and serves protobuf-c generated services. A
 * broker thread owns the socket and hands each call to the least busy of a
 * pool of worker threads; each worker owns its database connection and its
 * outgoing clients, so one slow handler stalls nobody else.
 *
 * Client: owned by one thread (ZeroMQ sockets never cross threads). It keeps
 * one DEALER per endpoint, spreads calls over the connected ones, may have
 * many calls in flight, and completes them by call id. A dead endpoint fails
 * its calls with UNAVAILABLE; idempotent calls are retried elsewhere or later
 * with backoff, within their deadline.
 */
#ifndef PHUXANH_RPC_H
#define PHUXANH_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h> /* zmq_pollitem_t, for clients driven by the caller's own event loop */

#include "phuxanh/curve.h"
#include "phuxanh/db.h"
#include "phuxanh/log.h"
#include "phuxanh/metrics.h"
#include "phuxanh/status.h"

/* Default largest message (either frame) a server or client accepts: gRPC's default. */
#define PX_RPC_MAX_MESSAGE_DEFAULT (4 * 1024 * 1024)
/* Timeout applied when a caller gives none; servers cap what they accept at the max. */
#define PX_RPC_DEFAULT_TIMEOUT_MS 10000
#define PX_RPC_MAX_TIMEOUT_MS (24 * 3600 * 1000)
/* Endpoints one client may be given (replicas of one service). */
#define PX_RPC_MAX_ENDPOINTS 16
/* The most poll items one client needs: a socket and its monitor per endpoint. */
#define PX_RPC_CLIENT_POLL_MAX (2 * PX_RPC_MAX_ENDPOINTS)
/* Metadata bounds: a call carrying more is refused INVALID_ARGUMENT. */
#define PX_RPC_MAX_METADATA 32
#define PX_RPC_MAX_METADATA_VALUE 1024

/* Well-known metadata keys. */
#define PX_MD_REQUEST_ID "x-request-id"
#define PX_MD_CALLER "x-caller"
/* The person or system the calling process acts for (a token's name at the gateway, the
 * operator at pxctl): audited beside x-caller. Only callers the server trusts for it may send
 * it (px_rpc_server_opts_t.on_behalf_callers); handlers pass it on to their own calls. */
#define PX_MD_ON_BEHALF_OF "x-on-behalf-of"
/* Its value: 1..128 bytes of UTF-8 without control characters - a name, not a document. */
#define PX_RPC_ON_BEHALF_MAX 128

/* ---------------------------------------------------------------- metadata */

typedef struct {
    const char *key;
    const char *value;
} px_md_entry_t;

/* A small ordered list of key/value pairs, owning copies of its strings. */
typedef struct px_md_t px_md_t;
px_md_t *px_md_new(void);
void px_md_destroy(px_md_t **self_p);
/* Replaces an existing key; returns -1 on allocation failure or bounds exceeded. */
int px_md_set(px_md_t *self, const char *key, const char *value);
const char *px_md_get(const px_md_t *self, const char *key);
size_t px_md_size(const px_md_t *self);
px_md_entry_t px_md_at(const px_md_t *self, size_t i);

/* A new random request id (32 hex chars) into buf of at least 33 bytes. */
void px_rpc_request_id_new(char *buf);

/* ---------------------------------------------------------------- server */

typedef struct px_rpc_server_t px_rpc_server_t;
typedef struct px_rpc_ctx_t px_rpc_ctx_t;
typedef struct px_rpc_client_t px_rpc_client_t;

/* A handler fills `reply` (already initialised to the method's output type) and returns a
 * code. Anything it allocates for the reply comes from px_rpc_ctx_alloc (freed after the reply
 * is sent). On a code other than OK the reply is not sent; px_rpc_fail sets the message. */
typedef px_code_t (*px_rpc_handler_fn)(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                       ProtobufCMessage *reply);

typedef struct {
    const char *method; /* the method's name in the service descriptor, e.g. "Check" */
    px_rpc_handler_fn handler;
} px_rpc_method_t;

typedef struct {
    const char *service_name; /* for logs: "roster" */
    const char *endpoint;     /* "tcp://127.0.0.1:7101" */
    int workers;              /* 0: one per core */
    size_t max_message;       /* 0: PX_RPC_MAX_MESSAGE_DEFAULT */
    /* Bound on what a request may take once decoded, checked on its wire bytes before it is
     * (px_pb_check); 0: 8 times max_message. */
    size_t max_decoded;
    const char *db_url; /* NULL: workers have no database; health is always SERVING */
    int drain_ms;       /* bound on finishing calls in flight at stop; 0: 5000 */
    /* Callers (x-caller, whole names, comma-separated) trusted to send x-on-behalf-of; NULL or
     * "": nobody. A call carrying it from anyone else is refused PERMISSION_DENIED before its
     * handler runs. Copied. */
    const char *on_behalf_callers;
    px_log_t *log; /* borrowed; may be NULL */
    /* Borrowed, outlives the server; NULL: plaintext. With it the socket is a CURVE server
     * taking only allow-listed keys, a caller is the name its key is listed under (an x-caller
     * that differs is refused PERMISSION_DENIED), and the server's peers are CURVE clients
     * finding each peer's key under the peer's name. */
    px_curve_t *curve;
} px_rpc_server_opts_t;

px_rpc_server_t *px_rpc_server_new(const px_rpc_server_opts_t *opts, px_status_t *st);
void px_rpc_server_destroy(px_rpc_server_t **self_p);
/* At the end of a process, once its servers and clients are destroyed: waits up to timeout_ms
 * for what its ZeroMQ sockets still hold to be sent (the last replies of a graceful stop; a
 * socket's linger only works while its context is terminated, and the process's context is
 * otherwise never terminated), so that exiting does not drop them. */
void px_rpc_shutdown(int timeout_ms);

/* Serves service with the handlers given; methods without one answer UNIMPLEMENTED. `state`
 * is handed to handlers through px_rpc_ctx_state and must be safe to share between workers.
 * Adding the same service again adds more handlers (a service's methods may be spread over
 * several tables), with the same state. INVALID_ARGUMENT, nothing added, when a handler names
 * no method of the descriptor, a method already has one, or the state differs. Call before
 * start. */
px_code_t px_rpc_server_add(px_rpc_server_t *self, const ProtobufCServiceDescriptor *service,
                            const px_rpc_method_t *methods, size_t nmethods, void *state,
                            px_status_t *st);

/* Outgoing calls from handlers: each worker gets its own client for `endpoints` (comma
 * separated), reached through px_rpc_ctx_peer(ctx, name). Call before start. */
px_code_t px_rpc_server_add_peer(px_rpc_server_t *self, const char *name, const char *endpoints,
                                 px_status_t *st);

/* Binds and starts the broker and workers. UNAVAILABLE when the endpoint cannot be bound. */
px_code_t px_rpc_server_start(px_rpc_server_t *self, px_status_t *st);
/* The server's metrics registry, served as phuxanh.metrics.v1.Metrics/GetMetrics (as every
 * server serves Health). It holds the runtime's own families - px_rpc_calls_total{method,code},
 * px_rpc_call_duration_seconds{method}, px_rpc_in_flight, px_rpc_queued and, with a database,
 * px_db_reconnects_total - and a service adds its own (before start). Owned by the server. */
px_metrics_t *px_rpc_server_metrics(px_rpc_server_t *self);
/* The endpoint actually bound (useful with tcp://127.0.0.1:0 or "*"). */
const char *px_rpc_server_endpoint(const px_rpc_server_t *self);
/* Stops taking calls, finishes those in flight (bounded by drain_ms), joins the threads.
 * Safe to call from a signal-handling thread; idempotent. */
void px_rpc_server_stop(px_rpc_server_t *self);
/* Blocks until SIGINT or SIGTERM, then stops. The signals (and SIGHUP, a reload) must be blocked in
 * all threads (px_rpc_block_signals before creating any) so this thread receives them with sigwait.
 */
void px_rpc_server_run_until_signal(px_rpc_server_t *self);
void px_rpc_block_signals(void);

/* ---------------------------------------------------------------- handler context */

void *px_rpc_ctx_state(px_rpc_ctx_t *ctx);
/* The worker's database connection (NULL when the server has no db_url). */
px_db_t *px_rpc_ctx_db(px_rpc_ctx_t *ctx);
px_log_t *px_rpc_ctx_log(px_rpc_ctx_t *ctx);
const char *px_rpc_ctx_method(const px_rpc_ctx_t *ctx);
const char *px_rpc_ctx_request_id(const px_rpc_ctx_t *ctx);
/* The caller's identity: with CURVE, the name its key is listed under; without, what it
 * declares (x-caller), or "". */
const char *px_rpc_ctx_caller(const px_rpc_ctx_t *ctx);
/* Whom the caller acts for (x-on-behalf-of, from a trusted caller), or "". */
const char *px_rpc_ctx_on_behalf_of(const px_rpc_ctx_t *ctx);
const px_md_t *px_rpc_ctx_metadata(const px_rpc_ctx_t *ctx);
/* Absolute deadline (px_clock_us scale) and what is left of it, in microseconds (<= 0: none). */
int64_t px_rpc_ctx_deadline_us(const px_rpc_ctx_t *ctx);
int64_t px_rpc_ctx_remaining_us(const px_rpc_ctx_t *ctx);
/* When the handler was called (px_clock_us scale): for budgets shared by a handler's steps. */
int64_t px_rpc_ctx_started_us(const px_rpc_ctx_t *ctx);
/* The worker running the call, 0..workers-1: no two calls in flight at once share it (e.g. to
 * spread hot counters over rows one per worker). */
int px_rpc_ctx_worker(const px_rpc_ctx_t *ctx);
/* This worker's client for a peer declared with px_rpc_server_add_peer, or NULL. */
px_rpc_client_t *px_rpc_ctx_peer(px_rpc_ctx_t *ctx, const char *name);
/* Call-lifetime memory: zeroed, freed after the reply is sent. NULL only when out of memory. */
void *px_rpc_ctx_alloc(px_rpc_ctx_t *ctx, size_t size);
char *px_rpc_ctx_strdup(px_rpc_ctx_t *ctx, const char *s);
char *px_rpc_ctx_printf(px_rpc_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Sets the call's error message; returns code for `return px_rpc_fail(...)`. */
px_code_t px_rpc_fail(px_rpc_ctx_t *ctx, px_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copies a status (code and message) into the call; returns its code. */
px_code_t px_rpc_fail_status(px_rpc_ctx_t *ctx, const px_status_t *st);
/* The status px_rpc_fail last set: for a handler that turns one part's refusal into part of
 * an answer (a row error) instead of failing the call. */
const px_status_t *px_rpc_ctx_status(const px_rpc_ctx_t *ctx);

/* ---------------------------------------------------------------- client */

typedef struct {
    int max_attempts;    /* for idempotent calls; 0: 5 */
    int backoff_ms;      /* first retry delay, doubled each time; 0: 10 */
    int backoff_max_ms;  /* 0: 1000 */
    int connect_wait_ms; /* how long a call waits for some endpoint to connect; 0: 1000 */
    size_t max_message;  /* 0: PX_RPC_MAX_MESSAGE_DEFAULT */
    const char *caller;  /* x-caller put on every call unless the call has its own; may be NULL */
    px_log_t *log;       /* borrowed; may be NULL */
    /* Borrowed, outlives the client; NULL: plaintext. With it the client speaks CURVE to the
     * server whose key the allow-list gives under server_name ("roster"). A server that refuses
     * the handshake fails calls with UNAUTHENTICATED at once. */
    px_curve_t *curve;
    const char *server_name;
} px_rpc_client_opts_t;

/* Per-call options; a zeroed struct is the default (10 s timeout, not idempotent). The call's
 * deadline is the earliest of deadline_us, the parent's deadline and now + timeout_ms. */
typedef struct {
    int64_t timeout_ms;      /* 0: PX_RPC_DEFAULT_TIMEOUT_MS */
    int64_t deadline_us;     /* absolute (px_clock_us); 0: none */
    bool idempotent;         /* retry UNAVAILABLE */
    const px_md_t *metadata; /* may be NULL */
    /* Inside a handler: inherit the deadline, the request id and x-on-behalf-of. (x-caller is
     * this process: the client's own.) */
    const px_rpc_ctx_t *parent;
    /* With parent: leave x-on-behalf-of off, for a peer that does not trust this process to
     * send it (the call is then audited there under this process alone). */
    bool drop_on_behalf;
} px_rpc_call_opts_t;

typedef struct px_rpc_call_t px_rpc_call_t;

/* endpoints: comma separated ("tcp://a:1,tcp://b:1"). opts may be NULL. */
px_rpc_client_t *px_rpc_client_new(const char *endpoints, const px_rpc_client_opts_t *opts,
                                   px_status_t *st);
void px_rpc_client_destroy(px_rpc_client_t **self_p);

/* Marks a method ("/pkg.Service/Method") idempotent for every call on this client. */
int px_rpc_client_set_idempotent(px_rpc_client_t *self, const char *method);

/* Starts a call; never NULL unless out of memory. The call completes in px_rpc_client_wait or
 * px_rpc_client_next. reply_type is the method's output descriptor. */
px_rpc_call_t *px_rpc_client_start(px_rpc_client_t *self, const char *method,
                                   const ProtobufCMessage *request,
                                   const ProtobufCMessageDescriptor *reply_type,
                                   const px_rpc_call_opts_t *opts);
/* Blocks until call is complete (other calls may complete meanwhile). */
void px_rpc_client_wait(px_rpc_client_t *self, px_rpc_call_t *call);
/* Waits up to timeout_ms (-1: forever) for any call to complete and returns it, NULL if none
 * did or none is in flight. Completed calls are returned once each. With 0 it only looks at
 * what is already there (and reads the sockets without waiting): it never blocks. */
px_rpc_call_t *px_rpc_client_next(px_rpc_client_t *self, int timeout_ms);
size_t px_rpc_client_in_flight(const px_rpc_client_t *self);

/* Driving clients from one's own event loop: a thread that polls several clients and its own
 * sockets (an eventfd, an inproc socket) in one zmq_poll does, each round,
 *
 *     long timeout = -1;                       (or its own bound)
 *     n1 = px_rpc_client_poll_items(a, items, PX_RPC_CLIENT_POLL_MAX, &timeout);
 *     n2 = px_rpc_client_poll_items(b, items + n1, PX_RPC_CLIENT_POLL_MAX, &timeout);
 *     items[n1 + n2] = its own item;
 *     zmq_poll(items, n1 + n2 + 1, timeout);
 *     px_rpc_client_poll_handle(a, items, n1);
 *     px_rpc_client_poll_handle(b, items + n1, n2);
 *     while ((call = px_rpc_client_next(a, 0))) ...   (and b)
 *
 * poll_items fires the timers that are due (deadlines, retries, waits for a connection), writes
 * this client's items into items[0..n) (cap >= PX_RPC_CLIENT_POLL_MAX) and returns n. It lowers
 * *timeout_ms (-1: none yet) to the time until this client's next timer, so the poll wakes for
 * it, and to 0 when calls are complete and not yet returned by px_rpc_client_next. */
int px_rpc_client_poll_items(px_rpc_client_t *self, zmq_pollitem_t *items, int cap,
                             long *timeout_ms);
/* After zmq_poll: handles what items (as filled above, revents set; all zero after a poll that
 * failed or timed out) found ready, and fires due timers. Completed calls are then returned by
 * px_rpc_client_next(self, 0), which never blocks. */
void px_rpc_client_poll_handle(px_rpc_client_t *self, const zmq_pollitem_t *items, int n);

bool px_rpc_call_done(const px_rpc_call_t *call);
px_code_t px_rpc_call_code(const px_rpc_call_t *call);
const char *px_rpc_call_message(const px_rpc_call_t *call);
/* Response metadata (may be empty). */
const px_md_t *px_rpc_call_metadata(const px_rpc_call_t *call);
/* How many times the call was sent. */
int px_rpc_call_attempts(const px_rpc_call_t *call);
void *px_rpc_call_user(const px_rpc_call_t *call);
void px_rpc_call_set_user(px_rpc_call_t *call, void *user);
/* Hands over the unpacked reply (free with protobuf_c_message_free_unpacked(msg, NULL)), or
 * NULL when the call failed or the reply was already taken. */
ProtobufCMessage *px_rpc_call_take_reply(px_rpc_call_t *call);
/* Frees a call; an unfinished call is abandoned (its late reply is dropped). */
void px_rpc_call_destroy(px_rpc_call_t **call_p);

/* Blocking call: start + wait. On OK *reply holds the reply (caller frees). */
px_code_t px_rpc_client_call(px_rpc_client_t *self, const char *method,
                             const ProtobufCMessage *request,
                             const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply,
                             const px_rpc_call_opts_t *opts, px_status_t *st);

/* Health check helper: SERVING (1), NOT_SERVING (2)... or -1 with st set on call failure. */
int px_rpc_health_check(px_rpc_client_t *self, const char *service, int64_t timeout_ms,
                        px_status_t *st);

#endif
