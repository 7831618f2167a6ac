/*
 * raw_zmq_client.c - drives bench-raw-zmq-server from one DEALER socket.
 *
 * Latency: send, receive, repeat. Throughput: `inflight` messages outstanding on the one
 * DEALER, each reply answered by a new send. A reply is checked (size and bytes) so a broken
 * echo cannot pass as a fast one. Prints the px_bench_report line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bench.h"

typedef struct {
    void *sock;
    const unsigned char *payload;
    size_t size;
    unsigned char *buf; /* receive buffer, one byte larger than the payload to see oversize */
} s_client_t;

static int s_send(s_client_t *c)
{
    if (zmq_send(c->sock, c->payload, c->size, 0) != (int)c->size) {
        fprintf(stderr, "raw-zmq-client: send: %s\n", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static int s_recv(s_client_t *c)
{
    int n = zmq_recv(c->sock, c->buf, c->size + 1, 0);
    if (n < 0) {
        fprintf(stderr, "raw-zmq-client: recv: %s\n", zmq_strerror(errno));
        return -1;
    }
    if ((size_t)n != c->size || memcmp(c->buf, c->payload, c->size) != 0) {
        fprintf(stderr, "raw-zmq-client: reply of %d bytes does not echo the request\n", n);
        return -1;
    }
    return 0;
}

static int s_latency(s_client_t *c, const px_bench_opts_t *o, px_bench_result_t *r)
{
    if (o->calls == 0) {
        return 0;
    }
    int64_t *samples = malloc((size_t)o->calls * sizeof(int64_t));
    if (!samples) {
        fprintf(stderr, "raw-zmq-client: out of memory\n");
        return -1;
    }
    int rc = -1;
    for (long i = 0; i < o->warmup; i++) {
        if (s_send(c) || s_recv(c)) {
            goto done;
        }
    }
    for (long i = 0; i < o->calls; i++) {
        int64_t t0 = px_bench_now_ns();
        if (s_send(c) || s_recv(c)) {
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

static int s_throughput(s_client_t *c, const px_bench_opts_t *o, px_bench_result_t *r)
{
    if (o->seconds <= 0) {
        return 0;
    }
    for (long i = 0; i < o->inflight; i++) {
        if (s_send(c)) {
            return -1;
        }
    }
    int64_t start = px_bench_now_ns();
    int64_t t0 = start + (int64_t)(o->warmup_s * 1e9);
    int64_t t1 = t0 + (int64_t)(o->seconds * 1e9);
    int64_t now = start;
    long counted = 0;
    long outstanding = o->inflight;
    while (outstanding > 0) {
        if (s_recv(c)) {
            return -1;
        }
        outstanding--;
        now = px_bench_now_ns();
        if (now >= t0 && now < t1) {
            counted++;
        }
        if (now < t1) {
            if (s_send(c)) {
                return -1;
            }
            outstanding++;
        }
    }
    r->inflight = o->inflight;
    r->thr_calls = counted;
    r->thr_s = o->seconds;
    return 0;
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
    s_client_t c = {.size = (size_t)o.size};
    unsigned char *payload = px_bench_payload_new(c.size);
    c.payload = payload;
    c.buf = malloc(c.size + 1);
    void *ctx = zmq_ctx_new();
    c.sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    if (!payload || !c.buf || !c.sock) {
        fprintf(stderr, "raw-zmq-client: cannot set up: %s\n", zmq_strerror(errno));
        goto done;
    }
    int linger = 0;
    /* A bound on every receive, so a dead server fails the run instead of hanging it. */
    int rcvtimeo = 10000;
    zmq_setsockopt(c.sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c.sock, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
    if (zmq_connect(c.sock, o.endpoint) != 0) {
        fprintf(stderr, "raw-zmq-client: cannot connect %s: %s\n", o.endpoint, zmq_strerror(errno));
        goto done;
    }
    if (s_latency(&c, &o, &r) || s_throughput(&c, &o, &r)) {
        goto done;
    }
    px_bench_report(&r);
    status = 0;
done:
    if (c.sock) {
        zmq_close(c.sock);
    }
    if (ctx) {
        zmq_ctx_term(ctx);
    }
    free(c.buf);
    free(payload);
    return status;
}
