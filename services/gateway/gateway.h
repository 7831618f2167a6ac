/*
 * gateway.h - the parts of px-gateway and how they meet (internal header).
 *
 * px-gateway is the only process that speaks HTTP. One request flows:
 *
 *   http.c     reads it (bounded), names it (request id), hands it to
 *   router.c   which finds its route (404 / 405), checks the token (auth.c) and the
 *              rate limit, then calls the route's handler:
 *   connect.c  Connect-protocol unary calls of every public RPC;
 *   rest.c     the GET /v1/... routes; sse.c the live event stream;
 *   ops.c      health, readiness, metrics.
 *   A handler answers at once, or hands calls to
 *   backend.c  whose threads own the RPC clients, and suspends the request; the
 *              backend thread finishes the call, the handler's completion prepares
 *              the answer and resumes the request, and http.c sends it.
 *
 * Nothing here blocks an HTTP thread on a service: a request waiting for a call
 * is suspended, costing its memory and no thread.
 */
#ifndef PX_GATEWAY_H
#define PX_GATEWAY_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phuxanh/log.h"
#include "phuxanh/metrics.h"
#include "phuxanh/rpc.h"
#include "phuxanh/status.h"

typedef struct gw_t gw_t;
typedef struct gw_req_t gw_req_t;
typedef struct gw_backend_t gw_backend_t;
typedef struct gw_auth_t gw_auth_t;
typedef struct gw_progress_t gw_progress_t;
typedef struct gw_feed_t gw_feed_t;
typedef struct gw_units_t gw_units_t;
typedef struct gw_stats_t gw_stats_t;
typedef struct gw_public_t gw_public_t;
typedef struct gw_webhooks_t gw_webhooks_t;

/* ---------------------------------------------------------------- a growing buffer (buf.c) */

/* Text built piece by piece; after a failed allocation every call is a no-op and `failed`
 * says so, so a writer checks once at the end. data is malloc'd (the caller may take it). */
typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} gw_buf_t;

void gw_buf_init(gw_buf_t *b);
void gw_buf_free(gw_buf_t *b);
void gw_buf_put(gw_buf_t *b, const void *data, size_t n);
void gw_buf_puts(gw_buf_t *b, const char *s);
void gw_buf_putc(gw_buf_t *b, char c);
void gw_buf_printf(gw_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- methods (methods.c) */

/* The services behind the gateway. */
typedef enum { GW_SVC_ROSTER = 0, GW_SVC_ACTIVATION = 1, GW_SVC_COUNT } gw_svc_t;

/* What a method does, from the proto's idempotency_level (generated at build time). */
typedef enum { GW_EFFECTS = 0, GW_IDEMPOTENT = 1, GW_NO_SIDE_EFFECTS = 2 } gw_effects_t;

/* Who may call a method: a bit per role (auth.h's gw_role_t). */
typedef struct {
    const char *path; /* "/phuxanh.activation.v1.ActivationService/GetProgress" */
    const char *name; /* "GetProgress" */
    gw_svc_t service;
    const ProtobufCMethodDescriptor *desc;
    gw_effects_t effects;
    unsigned roles; /* 1u << gw_role_t */
    /* One citizen's records (API.md): audited, for admin and scoped recorders only. */
    bool person_level;
} gw_method_t;

/* The public method for an HTTP path, or NULL. */
const gw_method_t *gw_method_find(const char *path);
const gw_method_t *gw_method_at(size_t i);
size_t gw_method_count(void);
const char *gw_svc_name(gw_svc_t s);

/* ---------------------------------------------------------------- roles and tokens (auth.c) */

typedef enum {
    GW_ROLE_VIEWER = 0,
    GW_ROLE_RECORDER = 1,
    GW_ROLE_PLANNER = 2,
    GW_ROLE_ADMIN = 3,
    GW_ROLE_COUNT
} gw_role_t;

#define GW_ROLE_BIT(r) (1u << (r))
#define GW_TOKEN_NAME_MAX 64
#define GW_SCOPE_MAX 64

/* Who a request acts as: a copy, so that a reload of the token file never changes a request
 * in flight. */
typedef struct {
    char name[GW_TOKEN_NAME_MAX + 1];
    gw_role_t role;
    size_t nscope;
    char scope[GW_SCOPE_MAX][24]; /* unit codes; a unit covers its descendants */
    double rate, burst;           /* its rate limit: requests per second, and the bucket */
} gw_ident_t;

const char *gw_role_name(gw_role_t r);

gw_auth_t *gw_auth_new(const char *tokens_file, double rate_per_s, double burst, px_log_t *log,
                       px_status_t *st);
void gw_auth_destroy(gw_auth_t **self_p);
/* Reads the token file again; on any bad line the old set stays and st names the line. */
px_code_t gw_auth_reload(gw_auth_t *self, px_status_t *st);
/* Looks up "Bearer <token>" (the Authorization header's value, may be NULL). PX_OK and *out
 * filled; UNAUTHENTICATED when missing or unknown. */
px_code_t gw_auth_check(gw_auth_t *self, const char *authorization, gw_ident_t *out,
                        px_status_t *st);
/* Takes one request from the token's bucket. false when empty; *retry_after_s says when to
 * come back. */
bool gw_auth_rate_take(gw_auth_t *self, const gw_ident_t *ident, int *retry_after_s);
size_t gw_auth_token_count(gw_auth_t *self);

/* ---------------------------------------------------------------- the unit tree (units.c) */

gw_units_t *gw_units_new(void);
void gw_units_destroy(gw_units_t **self_p);
/* Replaces the tree (from ListUnits pages): codes[i]'s parent is parents[i] ("" for a root),
 * its level levels[i] (phuxanh.roster.v1.UnitLevel; levels may be NULL). */
void gw_units_set(gw_units_t *self, const char *const *codes, const char *const *parents,
                  const char *const *names, const int *levels, size_t n, int64_t version);
/* The unit's level (phuxanh.roster.v1.UnitLevel: 3 is a ward), 0 when unknown. */
int gw_units_level(gw_units_t *self, const char *code);
int64_t gw_units_version(gw_units_t *self);
bool gw_units_known(gw_units_t *self, const char *code);
/* Is unit the same as, or under, one of scope[0..n)? false for a unit not in the tree. */
bool gw_units_within(gw_units_t *self, const char *unit, const char (*scope)[24], size_t n);
/* Copies the unit's name into buf; false when unknown. */
bool gw_units_name(gw_units_t *self, const char *code, char *buf, size_t cap);

/* ---------------------------------------------------------------- backend (backend.c) */

typedef struct gw_call_t gw_call_t;
typedef void (*gw_call_done_fn)(gw_call_t *call);

/* One RPC for a request. The submitter fills the inputs; the backend thread fills the
 * outputs and calls done (on the backend thread), after which it never touches the call. */
struct gw_call_t {
    /* in */
    gw_svc_t service;
    const char *path;                /* full method path */
    const ProtobufCMessage *request; /* borrowed until done */
    const ProtobufCMessageDescriptor *reply_type;
    int64_t deadline_us; /* absolute, px_clock_us scale */
    bool idempotent;     /* may be retried on UNAVAILABLE */
    char request_id[65];
    char on_behalf_of[GW_TOKEN_NAME_MAX + 1]; /* "" for none */
    gw_call_done_fn done;
    void *user;
    /* out */
    px_code_t code;
    char message[PX_STATUS_MESSAGE_MAX];
    ProtobufCMessage *reply; /* owned by the call's owner once done (free_unpacked) */
    /* the backend's */
    gw_call_t *next;
};

typedef struct {
    const char *endpoints[GW_SVC_COUNT]; /* comma separated; NULL or "": not configured */
    int threads;                         /* backend threads; 0: 1 */
    int probe_up_ms;                     /* health probe period while a service is up */
    int probe_down_ms;                   /* ... while it is down */
    gw_stats_t *stats;                   /* failed calls are counted here; may be NULL */
    px_log_t *log;
    px_curve_t *curve; /* borrowed, outlives the backend; NULL: plaintext */
} gw_backend_opts_t;

gw_backend_t *gw_backend_new(const gw_backend_opts_t *opts, px_status_t *st);
/* Stops the threads: calls in flight are answered (or, past a few seconds, completed
 * UNAVAILABLE); calls submitted afterwards complete UNAVAILABLE at once, on the caller's
 * thread. */
void gw_backend_stop(gw_backend_t *self);
/* Stops (if not yet) and frees. */
void gw_backend_destroy(gw_backend_t **self_p);
/* Queues a call (any thread). Its done callback runs exactly once, on a backend thread (also
 * when the service is known to be down: then at once, with UNAVAILABLE). */
void gw_backend_submit(gw_backend_t *self, gw_call_t *call);
/* Whether the service answered its last health probe (false when not configured). */
bool gw_backend_up(gw_backend_t *self, gw_svc_t s);
bool gw_backend_configured(gw_backend_t *self, gw_svc_t s);
/* A call made and waited for, for threads of the gateway's own that may block (never an HTTP
 * or backend thread). On OK *reply holds the answer (free_unpacked). */
px_code_t gw_backend_call_sync(gw_backend_t *self, gw_svc_t svc, const char *path,
                               const ProtobufCMessage *request,
                               const ProtobufCMessageDescriptor *reply_type, int64_t timeout_ms,
                               ProtobufCMessage **reply, px_status_t *st);
/* The unit tree the backend keeps from the roster (refreshed in the background). */
gw_units_t *gw_backend_units(gw_backend_t *self);

/* ---------------------------------------------------------------- requests (http.c) */

#define GW_REQUEST_ID_MAX 64

/* Per request, on an HTTP thread: */
const char *gw_req_method(const gw_req_t *req);
const char *gw_req_path(const gw_req_t *req);
/* A request header (first of the name, case-insensitive) or NULL. */
const char *gw_req_header(const gw_req_t *req, const char *name);
/* How many times a header occurs. */
int gw_req_header_count(const gw_req_t *req, const char *name);
/* A query parameter (decoded) or NULL; *present tells "?a" from absent when not NULL. */
const char *gw_req_query(const gw_req_t *req, const char *name);
/* The first query parameter whose name is not in names (NULL-terminated), or NULL. */
const char *gw_req_unknown_query(const gw_req_t *req, const char *const *names);
const uint8_t *gw_req_body(const gw_req_t *req, size_t *len);
const char *gw_req_id(const gw_req_t *req);
const char *gw_req_client_addr(const gw_req_t *req);
int64_t gw_req_started_us(const gw_req_t *req);
gw_t *gw_req_gw(const gw_req_t *req);
/* The authenticated identity (router.c fills it; NULL on routes without a token). */
const gw_ident_t *gw_req_ident(const gw_req_t *req);
void gw_req_set_ident(gw_req_t *req, const gw_ident_t *ident);
/* Route label for logs and metrics ("connect", "/v1/progress", ...). */
void gw_req_set_route(gw_req_t *req, const char *route);
/* The method label for logs (an RPC path). */
void gw_req_set_rpc(gw_req_t *req, const char *rpc);
/* Handler state freed with the request: free_fn(state) when the request ends. */
void gw_req_set_state(gw_req_t *req, void *state, void (*free_fn)(void *));
void *gw_req_state(gw_req_t *req);

/* Answers (any thread; exactly once per request). body is copied. The response gets
 * X-Request-Id. Extra headers: NULL-terminated name, value pairs, or NULL. */
void gw_req_respond(gw_req_t *req, unsigned status, const char *content_type, const void *body,
                    size_t len, const char *const *headers);
/* The same, taking ownership of a malloc'd body. */
void gw_req_respond_take(gw_req_t *req, unsigned status, const char *content_type, void *body,
                         size_t len, const char *const *headers);
/* A JSON error body {"code": "...", "message": "..."} with the HTTP status for code. */
void gw_req_fail(gw_req_t *req, px_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with an HTTP status of the caller's choosing (404 for an unknown route, 413...)
 * and extra headers (NULL-terminated name, value pairs, or NULL). */
void gw_req_fail_http(gw_req_t *req, unsigned status, px_code_t code, const char *const *headers,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The Connect code's HTTP status. */
unsigned gw_http_status_for(px_code_t code);

/* Asynchronous answers: a handler that goes on elsewhere calls gw_req_suspend before handing
 * the work over (on the HTTP thread, inside the handler); whoever finishes calls one of the
 * respond functions and then gw_req_resume (any thread), after which it never touches req. */
void gw_req_suspend(gw_req_t *req);
void gw_req_resume(gw_req_t *req);

/* Streaming answers (Server-Sent Events): the reader writes up to cap bytes into buf and
 * returns how many; 0 means nothing now (it must have arranged a resume), -1 ends the
 * stream. Runs on the HTTP thread. */
typedef long (*gw_stream_fn)(void *state, uint8_t *buf, size_t cap);
void gw_req_respond_stream(gw_req_t *req, const char *content_type, gw_stream_fn fn, void *state,
                           void (*free_fn)(void *), const char *const *headers);
/* From inside a stream reader: park the connection until gw_req_resume (returns 0 for the
 * reader to return). */
long gw_req_stream_park(gw_req_t *req);

/* ---------------------------------------------------------------- the server (http.c) */

typedef struct gw_http_t gw_http_t;
typedef struct {
    const char *listen;          /* "127.0.0.1:8080" (port 0: any free port) */
    int threads;                 /* libmicrohttpd's thread pool; 0: 1 */
    size_t max_body;             /* bytes: 413 past it (declared: nothing read; chunked:
                                  * the rest dropped, the connection closed past twice it) */
    size_t max_header;           /* bytes of a connection's memory for the request head */
    int idle_timeout_s;          /* a connection quiet this long is closed */
    int body_timeout_s;          /* a body must be in within this long of its head */
    unsigned max_connections;    /* open connections, suspended ones included */
    unsigned per_ip_connections; /* 0: no limit */
    gw_t *gw;
    px_log_t *log;
} gw_http_opts_t;

gw_http_t *gw_http_new(const gw_http_opts_t *opts, px_status_t *st);
uint16_t gw_http_port(const gw_http_t *self);
long gw_http_in_flight(const gw_http_t *self);
/* Stops accepting connections; those open are served on. */
void gw_http_quiesce(gw_http_t *self);
void gw_http_destroy(gw_http_t **self_p);

/* ---------------------------------------------------------------- statistics (stats.c) */

/* Reads the figures other modules keep from gw (cache, feed, backend, HTTP) when scraped. */
gw_stats_t *gw_stats_new(gw_t *gw);
void gw_stats_destroy(gw_stats_t **self_p);
/* The registry, for other modules' families (webhooks) and for /metrics. */
px_metrics_t *gw_stats_registry(gw_stats_t *self);
/* One finished request: route label, HTTP status (0: never answered), duration. */
void gw_stats_request(gw_stats_t *self, const char *route, unsigned status, int64_t dur_us);
/* A call to a service that failed with UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL or UNKNOWN. */
void gw_stats_backend_error(gw_stats_t *self, gw_svc_t svc, px_code_t code);

/* ---------------------------------------------------------------- router and handlers */

typedef void (*gw_handler_fn)(gw_req_t *req);

/* The route for a request: runs on the HTTP thread once the body is in. */
void gw_router_dispatch(gw_req_t *req);

void gw_connect_handle(gw_req_t *req); /* connect.c: POST/GET /<pkg>.<Service>/<Method> */
void gw_rest_progress(gw_req_t *req);  /* rest.c */
void gw_rest_counts(gw_req_t *req);
void gw_sse_events(gw_req_t *req);  /* sse.c */
void gw_ops_healthz(gw_req_t *req); /* ops.c */
void gw_ops_readyz(gw_req_t *req);
void gw_ops_metrics(gw_req_t *req);
/* admin.c: POST /v1/webhooks/replay?since=RFC3339[&subscriber=NAME] (admin). */
void gw_admin_webhooks_replay(gw_req_t *req);
/* public.c: GET /public/v1/progress, without a token. */
void gw_public_progress(gw_req_t *req);
/* static.c: the dashboard's files; false when path names none (the router answers 404). */
bool gw_static_serve(gw_req_t *req);

/* ---------------------------------------------------------------- progress cache (progress.c) */

gw_progress_t *gw_progress_new(int64_t max_age_ms);
void gw_progress_destroy(gw_progress_t **self_p);
/* A fresh GetProgress answer for (campaign, unit), JSON or binary, malloc'd into *out. */
bool gw_progress_get(gw_progress_t *self, const char *campaign, const char *unit, bool json,
                     uint8_t **out, size_t *len);
/* The generation to remember when a GetProgress call starts, for gw_progress_put. */
uint64_t gw_progress_stamp(gw_progress_t *self);
/* Keeps an answer fetched from a call started at stamp: kept only if nothing changed since. */
void gw_progress_put(gw_progress_t *self, const char *campaign, const char *unit, uint64_t stamp,
                     const ProtobufCMessage *reply);
/* Something changed: every answer kept so far is stale. */
void gw_progress_invalidate(gw_progress_t *self);
/* While the feed is not known to be whole (down, or a gap), nothing is answered from memory. */
void gw_progress_set_feed_ok(gw_progress_t *self, bool ok);
/* Hits and misses so far (metrics). */
void gw_progress_counts(gw_progress_t *self, uint64_t *hits, uint64_t *misses);

/* connect.c: the call of a public method with a decoded message (owned from here on),
 * answered in JSON or binary: the recorder's units checked, GetProgress from memory when
 * fresh, otherwise the service asked while the request is suspended. */
void gw_connect_call(gw_req_t *req, const gw_method_t *m, ProtobufCMessage *msg, bool json,
                     int64_t timeout_ms);
/* A copy of msg that protobuf_c_message_free_unpacked can free (built by packing and
 * unpacking), for messages put together on the stack from borrowed strings. */
ProtobufCMessage *gw_msg_own(const ProtobufCMessage *msg);

/* connect.c: fills the request of a recorder's call with its units where the method carries
 * them (ResolveFollowUp's within_units). PX_OK, or the request is answered. */
px_code_t gw_scope_fill(gw_req_t *req, const gw_method_t *m, ProtobufCMessage *msg);

/* ---------------------------------------------------------------- the live feed (feed.c) */

/* Called on the feed thread for each change (webhooks look for wards going green). */
typedef void (*gw_feed_change_fn)(void *ctx, const ProtobufCMessage *counts_changed);

typedef struct {
    const char *endpoints;   /* the activation service's PUB endpoints, comma separated */
    size_t ring;             /* events kept for streams to read and resume; 0: 10,000 */
    int heartbeat_ms;        /* the publisher's heartbeat period; 0: 1000 */
    gw_progress_t *progress; /* told when the feed is whole and when anything changed */
    gw_feed_change_fn on_change;
    void *on_change_ctx;
    px_log_t *log;
    px_curve_t *curve; /* borrowed, outlives the feed; NULL: plaintext */
} gw_feed_opts_t;

/* One event of the ring. */
typedef struct {
    uint64_t id;
    char *campaign, *unit;
    char *json; /* the CountsChanged as proto3 JSON */
    size_t len;
} gw_feed_event_t;

/* Visits an event under the feed's lock; false to stop before it (it is visited again). */
typedef bool (*gw_feed_visit_fn)(void *ctx, const gw_feed_event_t *e);

gw_feed_t *gw_feed_new(const gw_feed_opts_t *opts, px_status_t *st);
void gw_feed_destroy(gw_feed_t **self_p);
/* Ends every stream (their readers see the end), stops parking new ones, and stops the
 * thread: on_change is not called after it returns. Streams may still call in until freed. */
void gw_feed_close(gw_feed_t *self);
/* Connected, heard within its heartbeat, and no gap since (what readiness reports). */
bool gw_feed_ok(gw_feed_t *self);
const char *gw_feed_boot(gw_feed_t *self);
uint64_t gw_feed_next_id(gw_feed_t *self);
void gw_feed_counts(gw_feed_t *self, uint64_t *received, uint64_t *gaps);
/* Visits the events from *next on, advancing it. Returns 0; 1 when events before *next were
 * already gone (*next moved to the oldest kept); 2 when there was nothing and park was
 * given: the request's stream is parked until the next event or tick; -1 when closed. */
int gw_feed_read(gw_feed_t *self, uint64_t *next, gw_feed_visit_fn fn, void *ctx, gw_req_t *park);
/* A stream that ends: never resume it again. */
void gw_feed_forget(gw_feed_t *self, gw_req_t *req);

/* ---------------------------------------------------------------- public progress (public.c) */

typedef struct {
    int64_t cache_ms; /* how long one answer serves everyone */
    double rate;      /* requests per second per client address */
    double burst;
    int threshold; /* counts below it are shown as "<threshold" */
} gw_public_opts_t;

gw_public_t *gw_public_new(const gw_public_opts_t *opts);
void gw_public_destroy(gw_public_t **self_p);

/* ---------------------------------------------------------------- the gateway (main.c) */

typedef struct {
    size_t max_body; /* bytes of a request body */
    int64_t default_timeout_ms;
    int64_t max_timeout_ms;
    int64_t sse_keepalive_s; /* a quiet event stream gets a comment line this often */
} gw_limits_t;

struct gw_t {
    px_log_t *log;
    gw_limits_t limits;
    gw_backend_t *backend;
    gw_auth_t *auth;
    gw_progress_t *progress;
    gw_feed_t *feed;
    gw_stats_t *stats;
    gw_http_t *http;
    gw_public_t *public_progress; /* NULL: the public route is off */
    gw_webhooks_t *webhooks;      /* NULL: no subscribers file */
    char version[32];
};

/* Starts an RPC for a request: fills the call's common inputs (service, deadline from the
 * request, request id, the identity it acts for) and submits it. */
void gw_call_start(gw_req_t *req, gw_call_t *call, const gw_method_t *m,
                   const ProtobufCMessage *request, int64_t timeout_ms, gw_call_done_fn done,
                   void *user);

#endif
