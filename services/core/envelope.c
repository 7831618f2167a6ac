/*
 * envelope.c - the header frames of a call (docs/PROTOCOL.md) and the
 * process-wide ZeroMQ context.
 *
 * One context per process: inproc endpoints (server broker to workers) only
 * work within one context, and a context per client would cost an I/O thread
 * each. libzmq contexts are thread-safe; this one is made on first use and
 * lives until the process ends.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "rpc_internal.h"

static void *s_ctx;
static pthread_once_t s_ctx_once = PTHREAD_ONCE_INIT;

static void s_ctx_init(void)
{
    s_ctx = zmq_ctx_new();
    if (s_ctx) {
        /* Replies must not be dropped because a process holds many sockets. */
        zmq_ctx_set(s_ctx, ZMQ_MAX_SOCKETS, 4096);
    }
}

void *px__zmq_ctx(void)
{
    pthread_once(&s_ctx_once, s_ctx_init);
    return s_ctx;
}

static void *s_term_main(void *ctx)
{
    zmq_ctx_term(ctx); /* returns once every socket is closed and its linger has passed */
    return NULL;
}

void px_rpc_shutdown(int timeout_ms)
{
    pthread_once(&s_ctx_once, s_ctx_init);
    if (!s_ctx) {
        return;
    }
    /* On a thread of its own, so that a socket some thread still holds open costs at most
     * timeout_ms, not a hang at exit. */
    pthread_t t;
    if (pthread_create(&t, NULL, s_term_main, s_ctx) != 0) {
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(t, NULL, &ts) != 0) {
        pthread_detach(t);
    }
}

unsigned long px__unique_id(void)
{
    static atomic_ulong next;
    return atomic_fetch_add(&next, 1) + 1;
}

/* Builds the repeated MetadataEntry array on the stack-owned arrays given. */
static size_t s_md_fill(const px_md_t *md, Phuxanh__Rpc__V1__MetadataEntry *entries,
                        Phuxanh__Rpc__V1__MetadataEntry **ptrs)
{
    size_t n = px_md_size(md);
    for (size_t i = 0; i < n; i++) {
        px_md_entry_t e = px_md_at(md, i);
        phuxanh__rpc__v1__metadata_entry__init(&entries[i]);
        entries[i].key = (char *)e.key;
        entries[i].value = (char *)e.value;
        ptrs[i] = &entries[i];
    }
    return n;
}

static int s_pack(zmq_msg_t *out, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (zmq_msg_init_size(out, len) != 0) {
        return -1;
    }
    protobuf_c_message_pack(msg, zmq_msg_data(out));
    return 0;
}

int px__envelope_request(zmq_msg_t *out, uint64_t call_id, const char *method, uint32_t timeout_ms,
                         const px_md_t *md)
{
    Phuxanh__Rpc__V1__MetadataEntry entries[PX_RPC_MAX_METADATA];
    Phuxanh__Rpc__V1__MetadataEntry *ptrs[PX_RPC_MAX_METADATA];
    Phuxanh__Rpc__V1__RequestHeader h = PHUXANH__RPC__V1__REQUEST_HEADER__INIT;
    h.call_id = call_id;
    h.method = (char *)method;
    h.timeout_ms = timeout_ms;
    h.n_metadata = s_md_fill(md, entries, ptrs);
    h.metadata = ptrs;
    return s_pack(out, &h.base);
}

int px__envelope_response(zmq_msg_t *out, uint64_t call_id, px_code_t code, const char *message,
                          const px_md_t *md)
{
    Phuxanh__Rpc__V1__MetadataEntry entries[PX_RPC_MAX_METADATA];
    Phuxanh__Rpc__V1__MetadataEntry *ptrs[PX_RPC_MAX_METADATA];
    Phuxanh__Rpc__V1__ResponseHeader h = PHUXANH__RPC__V1__RESPONSE_HEADER__INIT;
    h.call_id = call_id;
    h.code = (Phuxanh__Rpc__V1__Code)code;
    h.message = (char *)(message ? message : "");
    h.n_metadata = s_md_fill(md, entries, ptrs);
    h.metadata = ptrs;
    return s_pack(out, &h.base);
}

int px__method_split(const char *full, char *service, size_t service_cap, char *method,
                     size_t method_cap)
{
    if (!full || full[0] != '/') {
        return -1;
    }
    const char *slash = strrchr(full, '/');
    if (slash == full) {
        return -1;
    }
    size_t slen = (size_t)(slash - full - 1);
    size_t mlen = strlen(slash + 1);
    if (slen == 0 || mlen == 0 || slen >= service_cap || mlen >= method_cap) {
        return -1;
    }
    memcpy(service, full + 1, slen);
    service[slen] = '\0';
    memcpy(method, slash + 1, mlen + 1);
    return 0;
}

int px__md_from_pb(px_md_t *md, Phuxanh__Rpc__V1__MetadataEntry **entries, size_t n)
{
    if (n > PX_RPC_MAX_METADATA) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!entries[i]->key || !entries[i]->value) {
            return -1;
        }
        /* Every key means one value: a second one would silently win (or lose) a check. */
        if (px_md_get(md, entries[i]->key)) {
            return -2;
        }
        if (px_md_set(md, entries[i]->key, entries[i]->value) != 0) {
            return -1;
        }
    }
    return 0;
}

void px_rpc_request_id_new(char *buf)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[16];
    /* getrandom never fails for 16 bytes once the pool is initialised; a short read would
     * only make ids less random, not wrong. */
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        memset(raw, 0, sizeof raw);
    }
    for (size_t i = 0; i < sizeof raw; i++) {
        buf[2 * i] = hex[raw[i] >> 4];
        buf[2 * i + 1] = hex[raw[i] & 15];
    }
    buf[32] = '\0';
}
