/*
 * testd.c - px-testd, a server of phuxanh.test.v1.Echo on the real RPC runtime.
 *
 * The RPC tests need a server whose behaviour they can steer (sleep, fail with a
 * code, answer big, count calls, call itself) without any domain logic in the
 * way. It prints "READY <endpoint>" on stdout once it serves, so a test can
 * start it on port 0 and learn where it listens.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phuxanh/clock.h"
#include "phuxanh/db.h"
#include "phuxanh/rpc.h"
#include "phuxanh/service.h"
#include "phuxanh/test/v1/echo.pb-c.h"

#define COUNT_KEYS 1024

typedef struct {
    pthread_mutex_t lock;
    char *keys[COUNT_KEYS];
    uint64_t counts[COUNT_KEYS];
    size_t n;
} state_t;

static void s_fill_common(px_rpc_ctx_t *ctx, Phuxanh__Test__V1__EchoReply *rep)
{
    rep->request_id = px_rpc_ctx_strdup(ctx, px_rpc_ctx_request_id(ctx));
    rep->caller = px_rpc_ctx_strdup(ctx, px_rpc_ctx_caller(ctx));
    rep->on_behalf_of = px_rpc_ctx_strdup(ctx, px_rpc_ctx_on_behalf_of(ctx));
    int64_t left = px_rpc_ctx_remaining_us(ctx);
    rep->remaining_ms = left > 0 ? left / 1000 : left;
    rep->pid = (int32_t)getpid();
}

static px_code_t s_echo(px_rpc_ctx_t *ctx, const ProtobufCMessage *request, ProtobufCMessage *reply)
{
    const Phuxanh__Test__V1__EchoRequest *req = (const Phuxanh__Test__V1__EchoRequest *)request;
    Phuxanh__Test__V1__EchoReply *rep = (Phuxanh__Test__V1__EchoReply *)reply;
    if (req->sleep_ms) {
        px_sleep_us((int64_t)req->sleep_ms * 1000);
    }
    if (req->db_sleep_ms) {
        px_db_t *db = px_rpc_ctx_db(ctx);
        if (!db) {
            return px_rpc_fail(ctx, PX_FAILED_PRECONDITION, "no database (--db-url)");
        }
        char secs[32];
        snprintf(secs, sizeof secs, "%.3f", req->db_sleep_ms / 1000.0);
        const char *p[1] = {secs};
        px_status_t st;
        if (px_db_exec(db, "SELECT pg_sleep($1::float8)", 1, p, NULL, &st) != PX_OK) {
            return px_rpc_fail_status(ctx, &st);
        }
    }
    if (req->fail_code) {
        return px_rpc_fail(ctx, (px_code_t)req->fail_code, "%s",
                           req->fail_message ? req->fail_message : "");
    }
    if (req->reply_size) {
        rep->payload.data = px_rpc_ctx_alloc(ctx, req->reply_size);
        if (!rep->payload.data) {
            return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        }
        rep->payload.len = req->reply_size;
    } else {
        rep->payload = req->payload; /* the request lives until the reply is packed */
    }
    s_fill_common(ctx, rep);
    return PX_OK;
}

static px_code_t s_count(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                         ProtobufCMessage *reply)
{
    const Phuxanh__Test__V1__CountRequest *req = (const Phuxanh__Test__V1__CountRequest *)request;
    Phuxanh__Test__V1__EchoReply *rep = (Phuxanh__Test__V1__EchoReply *)reply;
    state_t *st = px_rpc_ctx_state(ctx);
    const char *key = req->key ? req->key : "";
    uint64_t count = 0;
    pthread_mutex_lock(&st->lock);
    size_t i = 0;
    while (i < st->n && strcmp(st->keys[i], key) != 0) {
        i++;
    }
    if (i == st->n && st->n < COUNT_KEYS) {
        st->keys[st->n++] = strdup(key);
    }
    if (i < st->n) {
        count = ++st->counts[i];
    }
    pthread_mutex_unlock(&st->lock);
    rep->count = count;
    s_fill_common(ctx, rep);
    return PX_OK;
}

static px_code_t s_forward(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                           ProtobufCMessage *reply)
{
    const Phuxanh__Test__V1__ForwardRequest *req =
        (const Phuxanh__Test__V1__ForwardRequest *)request;
    Phuxanh__Test__V1__EchoReply *rep = (Phuxanh__Test__V1__EchoReply *)reply;
    px_rpc_client_t *peer = px_rpc_ctx_peer(ctx, "self");
    if (!peer) {
        return px_rpc_fail(ctx, PX_FAILED_PRECONDITION, "no peer named self (--self-endpoints)");
    }
    Phuxanh__Test__V1__EchoRequest empty = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    px_rpc_call_opts_t o = {
        .parent = ctx, .timeout_ms = req->inner_timeout_ms, .drop_on_behalf = req->drop_on_behalf};
    ProtobufCMessage *inner = NULL;
    px_status_t st;
    if (px_rpc_client_call(peer, "/phuxanh.test.v1.Echo/Echo",
                           req->inner ? &req->inner->base : &empty.base,
                           &phuxanh__test__v1__echo_reply__descriptor, &inner, &o, &st) != PX_OK) {
        return px_rpc_fail_status(ctx, &st);
    }
    Phuxanh__Test__V1__EchoReply *in = (Phuxanh__Test__V1__EchoReply *)inner;
    /* Hand back what the inner call saw: its budget and request id prove propagation. */
    rep->remaining_ms = in->remaining_ms;
    rep->request_id = px_rpc_ctx_strdup(ctx, in->request_id ? in->request_id : "");
    rep->caller = px_rpc_ctx_strdup(ctx, in->caller ? in->caller : "");
    rep->on_behalf_of = px_rpc_ctx_strdup(ctx, in->on_behalf_of ? in->on_behalf_of : "");
    rep->pid = in->pid;
    protobuf_c_message_free_unpacked(inner, NULL);
    return PX_OK;
}

/* Two tables, as a service with two handler files has: every RPC test then also exercises
 * px_rpc_server_add joining them into one service. */
static const px_rpc_method_t s_echo_methods[] = {
    {"Echo", s_echo},
    {"Count", s_count},
};
static const px_rpc_method_t s_forward_methods[] = {
    {"Forward", s_forward},
};
static const px_service_methods_t s_methods[] = {
    {s_echo_methods, sizeof s_echo_methods / sizeof s_echo_methods[0]},
    {s_forward_methods, sizeof s_forward_methods / sizeof s_forward_methods[0]},
};

static void *s_state_new(const px_config_t *cfg, px_db_t *db, px_log_t *log, px_status_t *st)
{
    (void)cfg;
    (void)db;
    (void)log;
    state_t *state = calloc(1, sizeof *state);
    if (!state) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&state->lock, NULL);
    return state;
}

static void s_state_destroy(void **state_p)
{
    state_t *state = *state_p;
    if (state) {
        for (size_t i = 0; i < state->n; i++) {
            free(state->keys[i]);
        }
        pthread_mutex_destroy(&state->lock);
        free(state);
        *state_p = NULL;
    }
}

/* Forward calls its own peer "self" (--self-endpoints), to test deadline propagation. */
static const char *const s_peers[] = {"self", NULL};

static const px_config_option_t s_options[] = {
    {"on-behalf-callers", "PX_ON_BEHALF_CALLERS", "",
     "callers (comma-separated) trusted to send x-on-behalf-of"},
    {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    /* The same main as every service: a database is optional here (--db-url makes health
     * follow it), and there are no migrations. */
    px_service_def_t def = {
        .name = "testd",
        .summary = "Echo test server for the RPC runtime",
        .default_listen = "tcp://127.0.0.1:0",
        .descriptor = &phuxanh__test__v1__echo__descriptor,
        .methods = s_methods,
        .nmethods = sizeof s_methods / sizeof s_methods[0],
        .peers = s_peers,
        .options = s_options,
        .on_behalf_option = "on-behalf-callers",
        .state_new = s_state_new,
        .state_destroy = s_state_destroy,
    };
    return px_service_main(&def, argc, argv);
}
