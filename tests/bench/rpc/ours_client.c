/*
 * ours_client.c - drives px-testd's /phuxanh.test.v1.Echo/Echo through px_rpc_client.
 *
 * Latency: px_rpc_client_call in a loop, one call in flight. Throughput: one client with
 * `inflight` calls started by px_rpc_client_start; every completion from px_rpc_client_next
 * starts the next call. The same client and the same request serve both phases, as an
 * application would use them. A reply is checked (status, size and bytes) so a broken echo
 * cannot pass as a fast one. Prints the px_bench_report line.
 *
 * With PX_CURVE_SECRET_KEY and PX_CURVE_ALLOW set it speaks CURVE to the server listed as
 * "testd" (tests/bench/curve).
 */
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "phuxanh/rpc.h"
#include "phuxanh/status.h"
#include "phuxanh/test/v1/echo.pb-c.h"

#define S_METHOD "/phuxanh.test.v1.Echo/Echo"
/* How long px_rpc_client_next may wait for one completion before the run counts as failed. */
#define S_NEXT_TIMEOUT_MS 10000

typedef struct {
    px_rpc_client_t *client;
    Phuxanh__Test__V1__EchoRequest *request;
} s_bench_t;

/* 0 when reply is a faithful echo of the request. */
static int s_check(const s_bench_t *b, const ProtobufCMessage *msg)
{
    const Phuxanh__Test__V1__EchoReply *reply = (const Phuxanh__Test__V1__EchoReply *)msg;
    if (!reply || reply->payload.len != b->request->payload.len ||
        memcmp(reply->payload.data, b->request->payload.data, reply->payload.len) != 0) {
        fprintf(stderr, "bench-rpc-ours: reply does not echo the request\n");
        return -1;
    }
    return 0;
}

static int s_call(s_bench_t *b)
{
    px_status_t st;
    ProtobufCMessage *reply = NULL;
    px_code_t code =
        px_rpc_client_call(b->client, S_METHOD, &b->request->base,
                           &phuxanh__test__v1__echo_reply__descriptor, &reply, NULL, &st);
    if (code != PX_OK) {
        fprintf(stderr, "bench-rpc-ours: call failed: %s: %s\n", px_code_name(code), st.message);
        return -1;
    }
    int rc = s_check(b, reply);
    protobuf_c_message_free_unpacked(reply, NULL);
    return rc;
}

static int s_latency(s_bench_t *b, const px_bench_opts_t *o, px_bench_result_t *r)
{
    if (o->calls == 0) {
        return 0;
    }
    int64_t *samples = malloc((size_t)o->calls * sizeof(int64_t));
    if (!samples) {
        fprintf(stderr, "bench-rpc-ours: out of memory\n");
        return -1;
    }
    int rc = -1;
    for (long i = 0; i < o->warmup; i++) {
        if (s_call(b)) {
            goto done;
        }
    }
    for (long i = 0; i < o->calls; i++) {
        int64_t t0 = px_bench_now_ns();
        if (s_call(b)) {
            goto done;
        }
        samples[i] = px_bench_now_ns() - t0;
    }
    px_bench_latency_summarise(r, samples, (size_t)o->calls);
    rc = 0;
done:
    free(samples);
    return rc;
}

static int s_start(s_bench_t *b)
{
    px_rpc_call_t *call = px_rpc_client_start(b->client, S_METHOD, &b->request->base,
                                              &phuxanh__test__v1__echo_reply__descriptor, NULL);
    if (!call) {
        fprintf(stderr, "bench-rpc-ours: cannot start a call: out of memory\n");
        return -1;
    }
    return 0;
}

/* Checks a completed call and frees it; 0 when it succeeded with a faithful echo. */
static int s_finish(s_bench_t *b, px_rpc_call_t *call)
{
    int rc = -1;
    px_code_t code = px_rpc_call_code(call);
    if (code != PX_OK) {
        fprintf(stderr, "bench-rpc-ours: call failed: %s: %s\n", px_code_name(code),
                px_rpc_call_message(call));
        goto done;
    }
    ProtobufCMessage *reply = px_rpc_call_take_reply(call);
    rc = s_check(b, reply);
    if (reply) {
        protobuf_c_message_free_unpacked(reply, NULL);
    }
done:
    px_rpc_call_destroy(&call);
    return rc;
}

static int s_throughput(s_bench_t *b, const px_bench_opts_t *o, px_bench_result_t *r)
{
    if (o->seconds <= 0) {
        return 0;
    }
    for (long i = 0; i < o->inflight; i++) {
        if (s_start(b)) {
            return -1;
        }
    }
    int64_t start = px_bench_now_ns();
    int64_t t0 = start + (int64_t)(o->warmup_s * 1e9);
    int64_t t1 = t0 + (int64_t)(o->seconds * 1e9);
    long counted = 0;
    int rc = 0;
    /* After a failure keep draining, so no call is left in flight when the client goes. */
    while (px_rpc_client_in_flight(b->client) > 0) {
        px_rpc_call_t *call = px_rpc_client_next(b->client, S_NEXT_TIMEOUT_MS);
        if (!call) {
            fprintf(stderr, "bench-rpc-ours: no call completed within %d ms\n", S_NEXT_TIMEOUT_MS);
            return -1;
        }
        if (s_finish(b, call)) {
            rc = -1;
        }
        int64_t now = px_bench_now_ns();
        if (now >= t0 && now < t1) {
            counted++;
        }
        if (rc == 0 && now < t1 && s_start(b)) {
            rc = -1;
        }
    }
    r->inflight = o->inflight;
    r->thr_calls = counted;
    r->thr_s = o->seconds;
    return rc;
}

int main(int argc, char **argv)
{
    px_bench_opts_t o;
    int prc = px_bench_opts_parse(&o, argc, argv);
    if (prc != 0) {
        return prc > 0 ? 0 : 2;
    }
    int status = 1;
    px_bench_result_t r;
    memset(&r, 0, sizeof r);
    px_status_t st;
    Phuxanh__Test__V1__EchoRequest request = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    unsigned char *payload = px_bench_payload_new((size_t)o.size);
    s_bench_t b = {.client = NULL, .request = &request};
    px_curve_t *curve = NULL;
    if (!payload) {
        fprintf(stderr, "bench-rpc-ours: out of memory\n");
        goto done;
    }
    request.payload.data = payload;
    request.payload.len = (size_t)o.size;
    if (px_curve_from_env(NULL, &curve, &st) != PX_OK) {
        fprintf(stderr, "bench-rpc-ours: %s\n", st.message);
        goto done;
    }
    px_rpc_client_opts_t co = {.curve = curve, .server_name = "testd"};
    b.client = px_rpc_client_new(o.endpoint, &co, &st);
    if (!b.client) {
        fprintf(stderr, "bench-rpc-ours: cannot make a client for %s: %s: %s\n", o.endpoint,
                px_code_name(st.code), st.message);
        goto done;
    }
    if (s_latency(&b, &o, &r) || s_throughput(&b, &o, &r)) {
        goto done;
    }
    px_bench_report(&r);
    status = 0;
done:
    px_rpc_client_destroy(&b.client);
    px_curve_destroy(&curve);
    free(payload);
    return status;
}
