/*
 * test_rpc_resilience.c - many calls at once, servers that die and come back,
 * retries, replicas, deadline propagation and graceful stop, with px-testd
 * processes over real TCP sockets.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/clock.h"
#include "phuxanh/rpc.h"
#include "phuxanh/test/v1/echo.pb-c.h"
#include "px_test.h"
#include "testd_proc.h"

#define ECHO "/phuxanh.test.v1.Echo/Echo"
#define COUNT "/phuxanh.test.v1.Echo/Count"
#define FORWARD "/phuxanh.test.v1.Echo/Forward"

/* ------------------------------------------------------------ many in flight */

#define THREADS 4
#define CALLS_PER_THREAD 2000
#define IN_FLIGHT 16

typedef struct {
    const char *endpoint;
    int thread;
    int ok;
    int mismatched;
} worker_arg_t;

static void *s_caller(void *p)
{
    worker_arg_t *a = p;
    px_status_t st;
    px_rpc_client_t *c = px_rpc_client_new(a->endpoint, NULL, &st);
    if (!c) {
        return NULL;
    }
    char bufs[IN_FLIGHT][64];
    int started = 0, done = 0;
    for (int slot = 0; slot < IN_FLIGHT; slot++) {
        snprintf(bufs[slot], sizeof bufs[slot], "t%d-call%d", a->thread, started);
        Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
        req.payload.data = (uint8_t *)bufs[slot];
        req.payload.len = strlen(bufs[slot]);
        px_rpc_call_t *call = px_rpc_client_start(c, ECHO, &req.base,
                                                  &phuxanh__test__v1__echo_reply__descriptor, NULL);
        px_rpc_call_set_user(call, bufs[slot]);
        started++;
    }
    while (done < CALLS_PER_THREAD) {
        px_rpc_call_t *call = px_rpc_client_next(c, 10000);
        if (!call) {
            break;
        }
        done++;
        char *expect = px_rpc_call_user(call);
        Phuxanh__Test__V1__EchoReply *rep =
            (Phuxanh__Test__V1__EchoReply *)px_rpc_call_take_reply(call);
        if (px_rpc_call_code(call) == PX_OK && rep && rep->payload.len == strlen(expect) &&
            memcmp(rep->payload.data, expect, rep->payload.len) == 0) {
            a->ok++;
        } else {
            a->mismatched++;
        }
        if (rep) {
            protobuf_c_message_free_unpacked(&rep->base, NULL);
        }
        px_rpc_call_destroy(&call);
        if (started < CALLS_PER_THREAD) {
            snprintf(expect, 64, "t%d-call%d", a->thread, started);
            Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
            req.payload.data = (uint8_t *)expect;
            req.payload.len = strlen(expect);
            px_rpc_call_t *next = px_rpc_client_start(
                c, ECHO, &req.base, &phuxanh__test__v1__echo_reply__descriptor, NULL);
            px_rpc_call_set_user(next, expect);
            started++;
        }
    }
    px_rpc_client_destroy(&c);
    return NULL;
}

static void test_many_in_flight_from_many_threads(void)
{
    testd_t srv;
    PX_REQUIRE(testd_start(&srv, NULL, NULL) == 0);
    pthread_t th[THREADS];
    worker_arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg_t){.endpoint = srv.endpoint, .thread = i};
        pthread_create(&th[i], NULL, s_caller, &args[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        PX_CHECK_INT_EQ(args[i].ok, CALLS_PER_THREAD);
        PX_CHECK_INT_EQ(args[i].mismatched, 0);
    }
    testd_stop(&srv, SIGTERM);
}

/* ------------------------------------------------------------ kill and restart */

static px_code_t s_echo_sleep(px_rpc_client_t *c, unsigned sleep_ms, bool idempotent,
                              int64_t timeout_ms, int *attempts, int *pid)
{
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    req.sleep_ms = sleep_ms;
    px_rpc_call_opts_t o = {.timeout_ms = timeout_ms, .idempotent = idempotent};
    px_rpc_call_t *call =
        px_rpc_client_start(c, ECHO, &req.base, &phuxanh__test__v1__echo_reply__descriptor, &o);
    if (!call) {
        return PX_RESOURCE_EXHAUSTED;
    }
    px_rpc_client_wait(c, call);
    px_code_t code = px_rpc_call_code(call);
    if (attempts) {
        *attempts = px_rpc_call_attempts(call);
    }
    Phuxanh__Test__V1__EchoReply *rep =
        (Phuxanh__Test__V1__EchoReply *)px_rpc_call_take_reply(call);
    if (pid) {
        *pid = rep ? rep->pid : 0;
    }
    if (rep) {
        protobuf_c_message_free_unpacked(&rep->base, NULL);
    }
    px_rpc_call_destroy(&call);
    return code;
}

static void test_server_killed_and_restarted(void)
{
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", px_test_free_port());
    testd_t srv;
    PX_REQUIRE(testd_start(&srv, ep, NULL) == 0);
    px_status_t st;
    px_rpc_client_opts_t o = {.connect_wait_ms = 100};
    px_rpc_client_t *c = px_rpc_client_new(ep, &o, &st);
    PX_REQUIRE(c);
    int pid1 = 0, pid2 = 0;
    PX_CHECK_INT_EQ(s_echo_sleep(c, 0, false, 2000, NULL, &pid1), PX_OK);
    testd_stop(&srv, SIGKILL);
    /* While it is down, calls fail fast with UNAVAILABLE (not a hang). */
    int64_t t0 = px_clock_us();
    PX_CHECK_INT_EQ(s_echo_sleep(c, 0, false, 5000, NULL, NULL), PX_UNAVAILABLE);
    PX_CHECK(px_clock_us() - t0 < 1000000);
    PX_REQUIRE(testd_start(&srv, ep, NULL) == 0);
    /* The same client reaches the new process without being restarted. */
    px_code_t code = PX_UNAVAILABLE;
    for (int i = 0; i < 50 && code != PX_OK; i++) {
        code = s_echo_sleep(c, 0, false, 2000, NULL, &pid2);
        if (code != PX_OK) {
            px_sleep_us(50000);
        }
    }
    PX_CHECK_INT_EQ(code, PX_OK);
    PX_CHECK(pid1 != pid2 && pid2 > 0);
    px_rpc_client_destroy(&c);
    testd_stop(&srv, SIGTERM);
}

typedef struct {
    char ep[64];
    testd_t *srv;
    int delay_ms;
} restarter_t;

static void *s_kill_then_restart(void *p)
{
    restarter_t *r = p;
    px_sleep_us((int64_t)r->delay_ms * 1000);
    testd_stop(r->srv, SIGKILL);
    px_sleep_us(100000);
    testd_start(r->srv, r->ep, NULL);
    return NULL;
}

/* Starts a 500 ms call, kills the server under it and restarts it; returns the call's code
 * and how often it was sent. */
static px_code_t s_call_across_restart(bool idempotent, int *attempts)
{
    restarter_t r = {.delay_ms = 200};
    snprintf(r.ep, sizeof r.ep, "tcp://127.0.0.1:%d", px_test_free_port());
    testd_t srv;
    r.srv = &srv;
    if (testd_start(&srv, r.ep, NULL) != 0) {
        return PX_INTERNAL;
    }
    px_status_t st;
    px_rpc_client_t *c = px_rpc_client_new(r.ep, NULL, &st);
    pthread_t th;
    pthread_create(&th, NULL, s_kill_then_restart, &r);
    px_code_t code = c ? s_echo_sleep(c, 500, idempotent, 8000, attempts, NULL) : PX_INTERNAL;
    pthread_join(th, NULL);
    px_rpc_client_destroy(&c);
    testd_stop(&srv, SIGTERM);
    return code;
}

static void test_idempotent_call_retried(void)
{
    int attempts = 0;
    /* The server dies under the call, comes back, and the retry succeeds. */
    PX_CHECK_INT_EQ(s_call_across_restart(true, &attempts), PX_OK);
    PX_CHECK(attempts >= 2);
}

static void test_non_idempotent_call_not_retried(void)
{
    int attempts = 0;
    PX_CHECK_INT_EQ(s_call_across_restart(false, &attempts), PX_UNAVAILABLE);
    PX_CHECK_INT_EQ(attempts, 1);
}

static void test_replicas_share_calls(void)
{
    testd_t a, b;
    PX_REQUIRE(testd_start(&a, NULL, NULL) == 0);
    PX_REQUIRE(testd_start(&b, NULL, NULL) == 0);
    char eps[600];
    snprintf(eps, sizeof eps, "%s,%s", a.endpoint, b.endpoint);
    px_status_t st;
    px_rpc_client_t *c = px_rpc_client_new(eps, NULL, &st);
    PX_REQUIRE(c);
    /* Calls go to the replicas whose handshake is done: until both are, all go to one. Under
     * load the second handshake may take longer than 40 quick calls, so wait for it first
     * (both replicas answering), then count. */
    bool seen_a = false, seen_b = false;
    int64_t until = px_clock_us() + 5000000;
    while ((!seen_a || !seen_b) && px_clock_us() < until) {
        int pid = 0;
        PX_CHECK_INT_EQ(s_echo_sleep(c, 0, false, 2000, NULL, &pid), PX_OK);
        seen_a = seen_a || pid == a.pid;
        seen_b = seen_b || pid == b.pid;
    }
    PX_REQUIRE(seen_a && seen_b);
    int on_a = 0, on_b = 0;
    for (int i = 0; i < 40; i++) {
        int pid = 0;
        PX_CHECK_INT_EQ(s_echo_sleep(c, 0, false, 2000, NULL, &pid), PX_OK);
        on_a += pid == a.pid;
        on_b += pid == b.pid;
    }
    PX_CHECK(on_a >= 10 && on_b >= 10);
    PX_CHECK_INT_EQ(on_a + on_b, 40);
    /* One replica dies: idempotent calls keep succeeding on the other. */
    testd_stop(&a, SIGKILL);
    for (int i = 0; i < 20; i++) {
        int pid = 0;
        PX_CHECK_INT_EQ(s_echo_sleep(c, 0, true, 2000, NULL, &pid), PX_OK);
        PX_CHECK_INT_EQ(pid, b.pid);
    }
    px_rpc_client_destroy(&c);
    testd_stop(&b, SIGTERM);
}

static void test_deadline_propagates(void)
{
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", px_test_free_port());
    char peer[96];
    snprintf(peer, sizeof peer, "--self-endpoints=%s", ep);
    /* Enough workers that the inner calls never wait for one. */
    const char *extra[] = {peer, "--workers=4", NULL};
    testd_t srv;
    PX_REQUIRE(testd_start(&srv, ep, extra) == 0);
    px_status_t st;
    px_rpc_client_t *c = px_rpc_client_new(ep, NULL, &st);
    PX_REQUIRE(c);
    Phuxanh__Test__V1__ForwardRequest req = PHUXANH__TEST__V1__FORWARD_REQUEST__INIT;
    px_md_t *md = px_md_new();
    px_md_set(md, PX_MD_REQUEST_ID, "propagated-id");
    px_rpc_call_opts_t o = {.timeout_ms = 1500, .metadata = md};
    ProtobufCMessage *rep = NULL;
    PX_CHECK_INT_EQ(px_rpc_client_call(c, FORWARD, &req.base,
                                       &phuxanh__test__v1__echo_reply__descriptor, &rep, &o, &st),
                    PX_OK);
    if (rep) {
        Phuxanh__Test__V1__EchoReply *r = (Phuxanh__Test__V1__EchoReply *)rep;
        PX_CHECK(r->remaining_ms > 0 && r->remaining_ms <= 1500);
        PX_CHECK_STR_EQ(r->request_id, "propagated-id");
        PX_CHECK_STR_EQ(r->caller, "testd");
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    /* The inner call cannot outlive the outer budget: it sleeps longer than the budget. */
    Phuxanh__Test__V1__EchoRequest inner = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    inner.sleep_ms = 3000;
    req.inner = &inner;
    o.timeout_ms = 300;
    int64_t t0 = px_clock_us();
    PX_CHECK_INT_EQ(px_rpc_client_call(c, FORWARD, &req.base,
                                       &phuxanh__test__v1__echo_reply__descriptor, &rep, &o, &st),
                    PX_DEADLINE_EXCEEDED);
    PX_CHECK(px_clock_us() - t0 < 1000000);
    /* Regression: an inner timeout shorter than the parent's budget wins (the parent's
     * deadline used to override it). */
    inner.sleep_ms = 1000;
    req.inner_timeout_ms = 200;
    o.timeout_ms = 5000;
    t0 = px_clock_us();
    PX_CHECK_INT_EQ(px_rpc_client_call(c, FORWARD, &req.base,
                                       &phuxanh__test__v1__echo_reply__descriptor, &rep, &o, &st),
                    PX_DEADLINE_EXCEEDED);
    PX_CHECK(px_clock_us() - t0 < 800000);
    px_md_destroy(&md);
    px_rpc_client_destroy(&c);
    testd_stop(&srv, SIGKILL); /* a worker still sleeps in the inner call */
}

static void test_graceful_stop_finishes_calls(void)
{
    testd_t srv;
    PX_REQUIRE(testd_start(&srv, NULL, NULL) == 0);
    px_status_t st;
    px_rpc_client_t *c = px_rpc_client_new(srv.endpoint, NULL, &st);
    PX_REQUIRE(c);
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    px_rpc_call_opts_t o = {.timeout_ms = 5000};
    /* A first call answered: the connection is up, so the slow call below reaches the server
     * at once (on a loaded machine the connect alone outlasted the wait below, and the stop
     * came before the call: "connection to the server was lost"). */
    ProtobufCMessage *rep = NULL;
    PX_REQUIRE(px_rpc_client_call(c, ECHO, &req.base, &phuxanh__test__v1__echo_reply__descriptor,
                                  &rep, &o, &st) == PX_OK);
    protobuf_c_message_free_unpacked(rep, NULL);
    req.sleep_ms = 600;
    px_rpc_call_t *call =
        px_rpc_client_start(c, ECHO, &req.base, &phuxanh__test__v1__echo_reply__descriptor, &o);
    /* Let the client send it, so the call is running when we stop. */
    PX_CHECK(px_rpc_client_next(c, 150) == NULL);
    kill(srv.pid, SIGTERM);
    px_rpc_client_wait(c, call);
    PX_CHECK_INT_EQ(px_rpc_call_code(call), PX_OK);
    if (px_rpc_call_code(call) != PX_OK) {
        fprintf(stderr, "  message: %s\n", px_rpc_call_message(call));
    }
    px_rpc_call_destroy(&call);
    PX_CHECK_INT_EQ(testd_stop(&srv, 0), 0); /* exits by itself, status 0 */
    px_rpc_client_destroy(&c);
}

static const px_test_case_t s_cases[] = {
    {"many_in_flight_from_many_threads", test_many_in_flight_from_many_threads},
    {"server_killed_and_restarted", test_server_killed_and_restarted},
    {"idempotent_call_retried", test_idempotent_call_retried},
    {"non_idempotent_call_not_retried", test_non_idempotent_call_not_retried},
    {"replicas_share_calls", test_replicas_share_calls},
    {"deadline_propagates", test_deadline_propagates},
    {"graceful_stop_finishes_calls", test_graceful_stop_finishes_calls},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
