/*
 * rpc_internal.h - what the RPC runtime's own files share and nobody else sees:
 * the call arena, the envelope codec, the shared ZeroMQ context, and the
 * handler context's layout (health.c reads the server through it).
 */
#ifndef PX_RPC_INTERNAL_H
#define PX_RPC_INTERNAL_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "phuxanh/rpc.h"
#include "phuxanh/rpc/v1/rpc.pb-c.h"

/* Largest header frame accepted: headers hold a method name and a little metadata. */
#define PX_RPC_MAX_HEADER (64 * 1024)

/* ---- arena: call-lifetime memory, freed in one go after the reply is sent */
typedef struct px__arena_t px__arena_t;
px__arena_t *px__arena_new(void);
void px__arena_destroy(px__arena_t **self_p);
void *px__arena_alloc(px__arena_t *self, size_t size);
void px__arena_reset(px__arena_t *self);
/* A protobuf-c allocator drawing on the arena (free is a no-op). */
ProtobufCAllocator px__arena_allocator(px__arena_t *self);

/* ---- the process-wide ZeroMQ context (thread-safe, made once, never torn down) */
void *px__zmq_ctx(void);
/* A number never returned before in this process: names inproc endpoints. */
unsigned long px__unique_id(void);

/* ---- envelope */
/* Packs a header into a fresh zmq message. -1 on failure. */
int px__envelope_request(zmq_msg_t *out, uint64_t call_id, const char *method, uint32_t timeout_ms,
                         const px_md_t *md);
int px__envelope_response(zmq_msg_t *out, uint64_t call_id, px_code_t code, const char *message,
                          const px_md_t *md);
/* Splits "/pkg.Service/Method" into service and method (copied into the buffers). */
int px__method_split(const char *full, char *service, size_t service_cap, char *method,
                     size_t method_cap);
/* Copies protobuf metadata entries into md; -1 when bounds are exceeded, -2 when a key comes
 * twice. */
int px__md_from_pb(px_md_t *md, Phuxanh__Rpc__V1__MetadataEntry **entries, size_t n);

/* ---- server internals seen by the health and metrics services */
struct px_rpc_server_t;
int px__server_has_service(const struct px_rpc_server_t *server, const char *name);
int px__server_has_db(const struct px_rpc_server_t *server);

struct px_rpc_ctx_t {
    struct px_rpc_server_t *server;
    void *state;
    px_db_t *db;
    px_log_t *log;
    px__arena_t *arena;
    const char *method;
    const char *request_id;
    const char *caller;
    const char *on_behalf_of; /* "" when the call carries none */
    const px_md_t *md;
    int64_t deadline_us;
    int64_t started_us; /* when the handler was called (px_clock_us) */
    int worker;         /* the worker running it, 0..workers-1 */
    /* outgoing peers of this worker: names and lazily made clients */
    size_t npeers;
    const char *const *peer_names;
    const char *const *peer_endpoints;
    px_rpc_client_t **peer_clients;
    px_status_t status;
};

/* The built-in Health and Metrics services, registered by every server. */
extern const px_rpc_method_t px__health_methods[];
extern const size_t px__health_methods_count;
extern const px_rpc_method_t px__metrics_methods[];
extern const size_t px__metrics_methods_count;

#endif
