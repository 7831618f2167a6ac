/*
 * curve_client.c - bench-curve-client: the RPC echo on plaintext and under CURVE, side by side.
 *
 * One process holds two clients, one per px-testd: --endpoint (plaintext) and
 * PX_BENCH_CURVE_ENDPOINT (CURVE, with the key pair and allow-list of PX_CURVE_SECRET_KEY and
 * PX_CURVE_ALLOW; the server listed as "testd"). It alternates between them in short turns -
 * blocks of calls for latency, slices of time for throughput - so that whatever else the
 * machine does in the meantime falls on both alike: on a shared machine, runs one after the
 * other differ by more than CURVE costs.
 *
 * Latency: `calls` timed calls each, one in flight, in blocks of S_BLOCK, the order of the two
 * swapped every block. Throughput: `inflight` calls outstanding on one client for a slice of
 * S_SLICE_S seconds, the calls completed within it counted, then drained uncounted, turn
 * about, until each has `seconds` counted. Prints two px_bench_report lines, "plain ..." and
 * "curve ...".
 */
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "phuxanh/curve.h"
#include "phuxanh/rpc.h"
#include "phuxanh/test/v1/echo.pb-c.h"

#define S_METHOD "/phuxanh.test.v1.Echo/Echo"
#define S_NEXT_TIMEOUT_MS 10000
/* Turns short enough that the machine's moods reach both, long enough to be measured. */
#define S_BLOCK 200
#define S_SLICE_S 0.2

typedef struct {
    px_rpc_client_t *client;
    int64_t *samples;
    long nsamples;
    long thr_calls;
    double thr_s;
} s_side_t;

static Phuxanh__Test__V1__EchoRequest s_request = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;

static int s_check(px_code_t code, const char *message, ProtobufCMessage *reply)
{
    const Phuxanh__Test__V1__EchoReply *r = (const Phuxanh__Test__V1__EchoReply *)reply;
    if (code != PX_OK) {
        fprintf(stderr, "bench-curve-client: call failed: %s: %s\n", px_code_name(code), message);
        return -1;
    }
    if (!r || r->payload.len != s_request.payload.len ||
        memcmp(r->payload.data, s_request.payload.data, r->payload.len) != 0) {
        fprintf(stderr, "bench-curve-client: reply does not echo the request\n");
        return -1;
    }
    return 0;
}

static int s_call(s_side_t *s)
{
    px_status_t st;
    ProtobufCMessage *reply = NULL;
    px_code_t code =
        px_rpc_client_call(s->client, S_METHOD, &s_request.base,
                           &phuxanh__test__v1__echo_reply__descriptor, &reply, NULL, &st);
    int rc = s_check(code, st.message, reply);
    if (reply) {
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    return rc;
}

/* One block of n calls on s; timed when record. */
static int s_block(s_side_t *s, long n, bool record)
{
    for (long i = 0; i < n; i++) {
        int64_t t0 = px_bench_now_ns();
        if (s_call(s)) {
            return -1;
        }
        if (record) {
            s->samples[s->nsamples++] = px_bench_now_ns() - t0;
        }
    }
    return 0;
}

static int s_start(s_side_t *s)
{
    return px_rpc_client_start(s->client, S_METHOD, &s_request.base,
                               &phuxanh__test__v1__echo_reply__descriptor, NULL)
               ? 0
               : -1;
}

/* inflight calls on s for slice_s seconds; completions within it counted when record. */
static int s_slice(s_side_t *s, long inflight, double slice_s, bool record)
{
    int rc = 0;
    for (long i = 0; i < inflight && rc == 0; i++) {
        rc = s_start(s);
    }
    int64_t t0 = px_bench_now_ns();
    int64_t t1 = t0 + (int64_t)(slice_s * 1e9);
    long counted = 0;
    while (px_rpc_client_in_flight(s->client) > 0) {
        px_rpc_call_t *call = px_rpc_client_next(s->client, S_NEXT_TIMEOUT_MS);
        if (!call) {
            fprintf(stderr, "bench-curve-client: no call completed in %d ms\n", S_NEXT_TIMEOUT_MS);
            return -1;
        }
        ProtobufCMessage *reply = px_rpc_call_take_reply(call);
        if (s_check(px_rpc_call_code(call), px_rpc_call_message(call), reply)) {
            rc = -1;
        }
        if (reply) {
            protobuf_c_message_free_unpacked(reply, NULL);
        }
        px_rpc_call_destroy(&call);
        int64_t now = px_bench_now_ns();
        if (now < t1) {
            counted++;
            if (rc == 0 && s_start(s)) {
                rc = -1;
            }
        }
    }
    if (record) {
        s->thr_calls += counted;
        s->thr_s += slice_s;
    }
    return rc;
}

static void s_report(const char *name, s_side_t *s, long inflight)
{
    px_bench_result_t r;
    memset(&r, 0, sizeof r);
    px_bench_latency_summarise(&r, s->samples, (size_t)s->nsamples);
    r.inflight = inflight;
    r.thr_calls = s->thr_calls;
    r.thr_s = s->thr_s;
    printf("%s ", name);
    px_bench_report(&r);
}

int main(int argc, char **argv)
{
    px_bench_opts_t o;
    int prc = px_bench_opts_parse(&o, argc, argv);
    if (prc != 0) {
        return prc > 0 ? 0 : 2;
    }
    int status = 1;
    px_status_t st;
    px_curve_t *curve = NULL;
    s_side_t side[2] = {{0}, {0}}; /* 0 plain, 1 curve */
    unsigned char *payload = px_bench_payload_new((size_t)o.size);
    const char *curve_ep = getenv("PX_BENCH_CURVE_ENDPOINT");
    if (!payload || !curve_ep || !*curve_ep) {
        fprintf(stderr, "bench-curve-client: %s\n",
                payload ? "PX_BENCH_CURVE_ENDPOINT: the CURVE server's endpoint" : "out of memory");
        goto done;
    }
    s_request.payload.data = payload;
    s_request.payload.len = (size_t)o.size;
    if (px_curve_from_env(NULL, &curve, &st) != PX_OK || !curve) {
        fprintf(stderr, "bench-curve-client: PX_CURVE_SECRET_KEY, PX_CURVE_ALLOW: %s\n",
                curve ? "" : (st.code == PX_OK ? "both must be set" : st.message));
        goto done;
    }
    px_rpc_client_opts_t co = {.curve = curve, .server_name = "testd"};
    side[0].client = px_rpc_client_new(o.endpoint, NULL, &st);
    side[1].client = side[0].client ? px_rpc_client_new(curve_ep, &co, &st) : NULL;
    for (int k = 0; k < 2; k++) {
        side[k].samples = malloc(((size_t)o.calls + 1) * sizeof(int64_t));
    }
    if (!side[0].client || !side[1].client || !side[0].samples || !side[1].samples) {
        fprintf(stderr, "bench-curve-client: %s\n", st.message);
        goto done;
    }
    /* Warm-up: connections made, caches and keys warm, on both. */
    for (int k = 0; k < 2; k++) {
        if (s_block(&side[k], o.warmup, false) ||
            (o.warmup_s > 0 && s_slice(&side[k], o.inflight, o.warmup_s, false))) {
            goto done;
        }
    }
    for (long done = 0, b = 0; done < o.calls; b++) {
        long n = o.calls - done < S_BLOCK ? o.calls - done : S_BLOCK;
        for (int t = 0; t < 2; t++) {
            if (s_block(&side[(b + t) % 2], n, true)) {
                goto done;
            }
        }
        done += n;
    }
    for (long k = 0; side[1].thr_s + 1e-9 < o.seconds; k++) {
        double slice =
            o.seconds - side[1].thr_s < S_SLICE_S ? o.seconds - side[1].thr_s : S_SLICE_S;
        for (int t = 0; t < 2; t++) {
            if (s_slice(&side[(k + t) % 2], o.inflight, slice, true)) {
                goto done;
            }
        }
    }
    s_report("plain", &side[0], o.inflight);
    s_report("curve", &side[1], o.inflight);
    status = 0;
done:
    for (int k = 0; k < 2; k++) {
        px_rpc_client_destroy(&side[k].client);
        free(side[k].samples);
    }
    px_curve_destroy(&curve);
    free(payload);
    return status;
}
