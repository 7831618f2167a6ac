/*
 * test_rpc_client_poll.c - RPC clients driven by their owner's event loop
 * (px_rpc_client_poll_items / px_rpc_client_poll_handle): one thread, two
 * clients of two px-testd processes and an eventfd in one zmq_poll, as a
 * gateway backend thread has them. Calls complete on both; a deadline and a
 * wait for a connection fire with no socket activity at all (only the
 * timeout the clients asked for wakes the poll); the eventfd wakes the loop
 * while calls are in flight; px_rpc_client_next(self, 0) never blocks.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "phuxanh/clock.h"
#include "phuxanh/rpc.h"
#include "phuxanh/test/v1/echo.pb-c.h"
#include "px_test.h"
#include "testd_proc.h"

#define ECHO "/phuxanh.test.v1.Echo/Echo"
/* Calls started per client in the many-calls case: more than the servers' workers, so some
 * queue and replies come back out of order. */
#define MANY 40

static testd_t s_a, s_b;

/* The loop under test: clients a and b and an eventfd, one zmq_poll per round. */
typedef struct {
    px_rpc_client_t *c[2];
    int efd;
    int rounds;              /* zmq_poll calls */
    int idle_wakes;          /* polls that returned 0: woken by the timeout alone */
    int efd_wakes;           /* polls that found the eventfd readable */
    long last_timeout;       /* the timeout handed to the last zmq_poll */
    int64_t efd_at_us;       /* when the eventfd was first seen readable */
    size_t in_flight_at_efd; /* calls in flight on both clients at that moment */
} loop_t;

static px_rpc_client_t *s_client(const char *endpoint, int connect_wait_ms)
{
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = "poll-test", .connect_wait_ms = connect_wait_ms};
    return px_rpc_client_new(endpoint, &o, &st);
}

static px_rpc_call_t *s_start(px_rpc_client_t *c, uint32_t sleep_ms, int64_t timeout_ms)
{
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    req.sleep_ms = sleep_ms;
    px_rpc_call_opts_t o = {.timeout_ms = timeout_ms};
    return px_rpc_client_start(c, ECHO, &req.base, &phuxanh__test__v1__echo_reply__descriptor, &o);
}

/* One round: poll both clients and the eventfd (bounded by cap_ms, -1: none), handle what is
 * ready, and hand every completed call to done(call, user). */
static void s_round(loop_t *l, long cap_ms, void (*done)(px_rpc_call_t *, void *), void *user)
{
    zmq_pollitem_t items[2 * PX_RPC_CLIENT_POLL_MAX + 1];
    long timeout = cap_ms;
    int n0 = px_rpc_client_poll_items(l->c[0], items, PX_RPC_CLIENT_POLL_MAX, &timeout);
    int n1 = px_rpc_client_poll_items(l->c[1], items + n0, PX_RPC_CLIENT_POLL_MAX, &timeout);
    items[n0 + n1] = (zmq_pollitem_t){NULL, l->efd, ZMQ_POLLIN, 0};
    l->last_timeout = timeout;
    int rc = zmq_poll(items, n0 + n1 + 1, timeout);
    l->rounds++;
    if (rc == 0) {
        l->idle_wakes++;
    }
    if (rc <= 0) {
        for (int i = 0; i < n0 + n1 + 1; i++) {
            items[i].revents = 0;
        }
    }
    if (items[n0 + n1].revents & ZMQ_POLLIN) {
        uint64_t v;
        if (read(l->efd, &v, sizeof v) == (ssize_t)sizeof v && l->efd_wakes++ == 0) {
            l->efd_at_us = px_clock_us();
            l->in_flight_at_efd =
                px_rpc_client_in_flight(l->c[0]) + px_rpc_client_in_flight(l->c[1]);
        }
    }
    px_rpc_client_poll_handle(l->c[0], items, n0);
    px_rpc_client_poll_handle(l->c[1], items + n0, n1);
    for (int k = 0; k < 2; k++) {
        px_rpc_call_t *call;
        while ((call = px_rpc_client_next(l->c[k], 0)) != NULL) {
            done(call, user);
        }
    }
}

static int s_loop_open(loop_t *l, const char *ep_a, const char *ep_b, int connect_wait_ms)
{
    memset(l, 0, sizeof *l);
    l->c[0] = s_client(ep_a, connect_wait_ms);
    l->c[1] = s_client(ep_b, connect_wait_ms);
    l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return l->c[0] && l->c[1] && l->efd >= 0 ? 0 : -1;
}

static void s_loop_close(loop_t *l)
{
    px_rpc_client_destroy(&l->c[0]);
    px_rpc_client_destroy(&l->c[1]);
    if (l->efd >= 0) {
        close(l->efd);
    }
}

/* ------------------------------------------------------------------ many calls */

typedef struct {
    int ok[2];
    int failed;
    px_rpc_client_t *c0;
    int last_pid[2];
} many_t;

static void s_many_done(px_rpc_call_t *call, void *user)
{
    many_t *m = user;
    int which = (int)(intptr_t)px_rpc_call_user(call);
    if (px_rpc_call_code(call) == PX_OK) {
        m->ok[which]++;
        Phuxanh__Test__V1__EchoReply *rep =
            (Phuxanh__Test__V1__EchoReply *)px_rpc_call_take_reply(call);
        if (rep) {
            m->last_pid[which] = rep->pid;
            protobuf_c_message_free_unpacked(&rep->base, NULL);
        }
    } else {
        m->failed++;
    }
    px_rpc_call_destroy(&call);
}

static void test_calls_complete_on_both_clients(void)
{
    loop_t l;
    PX_REQUIRE(s_loop_open(&l, s_a.endpoint, s_b.endpoint, 0) == 0);
    many_t m = {{0, 0}, 0, l.c[0], {0, 0}};
    for (int i = 0; i < MANY; i++) {
        for (int k = 0; k < 2; k++) {
            /* Varied sleeps: replies arrive in another order than the calls left. */
            px_rpc_call_t *call = s_start(l.c[k], (uint32_t)((MANY - i) % 7), 10000);
            PX_REQUIRE(call);
            px_rpc_call_set_user(call, (void *)(intptr_t)k);
        }
    }
    int64_t until = px_clock_us() + 20 * 1000000LL;
    while (m.ok[0] + m.ok[1] + m.failed < 2 * MANY && px_clock_us() < until) {
        s_round(&l, -1, s_many_done, &m);
    }
    PX_CHECK_INT_EQ(m.ok[0], MANY);
    PX_CHECK_INT_EQ(m.ok[1], MANY);
    PX_CHECK_INT_EQ(m.failed, 0);
    /* Each client reached its own server. */
    PX_CHECK(m.last_pid[0] == (int)s_a.pid && m.last_pid[1] == (int)s_b.pid);
    PX_CHECK_INT_EQ(px_rpc_client_in_flight(l.c[0]) + px_rpc_client_in_flight(l.c[1]), 0);
    /* Nothing left: next(0) answers NULL at once. */
    PX_CHECK(px_rpc_client_next(l.c[0], 0) == NULL);
    s_loop_close(&l);
}

/* ------------------------------------------------------------------ timers */

typedef struct {
    px_code_t code;
    int64_t at_us;
    int n;
} one_t;

static void s_one_done(px_rpc_call_t *call, void *user)
{
    one_t *o = user;
    o->code = px_rpc_call_code(call);
    o->at_us = px_clock_us();
    o->n++;
    px_rpc_call_destroy(&call);
}

static void test_deadline_fires_without_socket_activity(void)
{
    loop_t l;
    PX_REQUIRE(s_loop_open(&l, s_a.endpoint, s_b.endpoint, 0) == 0);
    /* Warm both connections up, so that no handshake event is pending later. */
    px_status_t st;
    PX_REQUIRE(px_rpc_health_check(l.c[0], "", 5000, &st) == 1);
    PX_REQUIRE(px_rpc_health_check(l.c[1], "", 5000, &st) == 1);
    /* The server sleeps 3 s: nothing arrives on any socket before the 200 ms deadline. */
    int64_t t0 = px_clock_us();
    px_rpc_call_t *call = s_start(l.c[0], 3000, 200);
    PX_REQUIRE(call);
    one_t o = {PX_OK, 0, 0};
    long first_timeout = -2;
    while (o.n == 0 && px_clock_us() - t0 < 5000000) {
        s_round(&l, -1, s_one_done, &o);
        if (first_timeout == -2) {
            first_timeout = l.last_timeout;
        }
    }
    PX_CHECK_INT_EQ(o.n, 1);
    PX_CHECK_INT_EQ(o.code, PX_DEADLINE_EXCEEDED);
    /* The loop gave no timeout of its own: the client's deadline bounded the poll... */
    PX_CHECK(first_timeout > 0 && first_timeout <= 200);
    /* ...and the poll's timing out, not some socket, is what woke it to fire. */
    PX_CHECK(l.idle_wakes >= 1);
    int64_t took = o.at_us - t0;
    PX_CHECK(took >= 190000 && took < 1000000);
    /* Nothing in flight now: the loop's poll has no client timer left to wait for. */
    long timeout = -1;
    zmq_pollitem_t items[PX_RPC_CLIENT_POLL_MAX];
    px_rpc_client_poll_items(l.c[0], items, PX_RPC_CLIENT_POLL_MAX, &timeout);
    PX_CHECK_INT_EQ(timeout, -1);
    s_loop_close(&l);
}

static void test_connect_wait_fires_without_socket_activity(void)
{
    /* Nobody listens on b: the call waits for a connection (150 ms) and then fails, with no
     * event on any socket; only the timer can end it. */
    char nobody[64];
    snprintf(nobody, sizeof nobody, "tcp://127.0.0.1:%d", px_test_free_port());
    loop_t l;
    PX_REQUIRE(s_loop_open(&l, s_a.endpoint, nobody, 150) == 0);
    int64_t t0 = px_clock_us();
    px_rpc_call_t *call = s_start(l.c[1], 0, 5000);
    PX_REQUIRE(call);
    one_t o = {PX_OK, 0, 0};
    while (o.n == 0 && px_clock_us() - t0 < 5000000) {
        s_round(&l, -1, s_one_done, &o);
    }
    PX_CHECK_INT_EQ(o.n, 1);
    PX_CHECK_INT_EQ(o.code, PX_UNAVAILABLE);
    int64_t took = o.at_us - t0;
    PX_CHECK(took >= 140000 && took < 1500000);
    PX_CHECK(l.idle_wakes >= 1);
    s_loop_close(&l);
}

/* ------------------------------------------------------------------ eventfd */

typedef struct {
    int efd;
    int delay_ms;
} poke_t;

static void *s_poke(void *arg)
{
    poke_t *p = arg;
    px_sleep_us((int64_t)p->delay_ms * 1000);
    uint64_t one = 1;
    ssize_t w = write(p->efd, &one, sizeof one);
    (void)w;
    return NULL;
}

typedef struct {
    int slow_done;
    int job_done;
    int64_t job_at_us;
    int64_t slow_at_us;
    int failed;
} jobs_t;

static void s_jobs_done(px_rpc_call_t *call, void *user)
{
    jobs_t *j = user;
    if (px_rpc_call_code(call) != PX_OK) {
        j->failed++;
    } else if (px_rpc_call_user(call) == (void *)1) {
        j->job_done++;
        j->job_at_us = px_clock_us();
    } else {
        j->slow_done++;
        j->slow_at_us = px_clock_us();
    }
    px_rpc_call_destroy(&call);
}

static void test_eventfd_wakes_loop_with_calls_in_flight(void)
{
    loop_t l;
    PX_REQUIRE(s_loop_open(&l, s_a.endpoint, s_b.endpoint, 0) == 0);
    int64_t t0 = px_clock_us();
    /* One slow call on each client: their deadlines (5 s) are the only timers. */
    px_rpc_call_t *s0 = s_start(l.c[0], 800, 5000);
    px_rpc_call_t *s1 = s_start(l.c[1], 800, 5000);
    PX_REQUIRE(s0 && s1);
    /* Another thread hands the loop a job through the eventfd 100 ms in, as an HTTP thread
     * does. */
    poke_t p = {l.efd, 100};
    pthread_t th;
    PX_REQUIRE(pthread_create(&th, NULL, s_poke, &p) == 0);
    jobs_t j = {0, 0, 0, 0, 0};
    bool job_started = false;
    while (j.slow_done + j.failed < 2 && px_clock_us() - t0 < 10000000) {
        s_round(&l, -1, s_jobs_done, &j);
        if (l.efd_wakes > 0 && !job_started) {
            /* The job: a quick call on b while the slow ones are still out. */
            px_rpc_call_t *job = s_start(l.c[1], 0, 5000);
            PX_REQUIRE(job);
            px_rpc_call_set_user(job, (void *)1);
            job_started = true;
        }
    }
    pthread_join(th, NULL);
    PX_CHECK_INT_EQ(l.efd_wakes, 1);
    /* Woken by the eventfd itself, long before any client timer or reply. */
    int64_t woke = l.efd_at_us - t0;
    PX_CHECK(woke >= 90000 && woke < 600000);
    PX_CHECK_INT_EQ(l.in_flight_at_efd, 2);
    PX_CHECK_INT_EQ(j.job_done, 1);
    PX_CHECK_INT_EQ(j.slow_done, 2);
    PX_CHECK_INT_EQ(j.failed, 0);
    /* The job was answered while the slow calls were still running. */
    PX_CHECK(j.job_at_us > 0 && j.job_at_us < j.slow_at_us);
    s_loop_close(&l);
}

/* ------------------------------------------------------------------ next(0) */

static void test_next_zero_never_blocks(void)
{
    px_rpc_client_t *c = s_client(s_a.endpoint, 0);
    PX_REQUIRE(c);
    /* Nothing in flight. */
    PX_CHECK(px_rpc_client_next(c, 0) == NULL);
    /* Connected first, so the call below leaves at once: nobody drives the client while this
     * test sleeps. */
    px_status_t st;
    PX_REQUIRE(px_rpc_health_check(c, "", 5000, &st) == 1);
    /* In flight, not done: NULL promptly, again and again. */
    px_rpc_call_t *slow = s_start(c, 500, 5000);
    PX_REQUIRE(slow);
    int64_t t0 = px_clock_us();
    int nulls = 0;
    for (int i = 0; i < 20; i++) {
        nulls += px_rpc_client_next(c, 0) == NULL;
    }
    PX_CHECK_INT_EQ(nulls, 20);
    PX_CHECK(px_clock_us() - t0 < 100000);
    /* Done: next(0) hands it over, once, without waiting. */
    px_sleep_us(700000);
    t0 = px_clock_us();
    px_rpc_call_t *got = px_rpc_client_next(c, 0);
    PX_CHECK(px_clock_us() - t0 < 100000);
    PX_CHECK(got == slow);
    PX_CHECK(got && px_rpc_call_code(got) == PX_OK);
    PX_CHECK(px_rpc_client_next(c, 0) == NULL);
    px_rpc_call_destroy(&slow);
    px_rpc_client_destroy(&c);
}

/* A call completed by a timer inside poll_items makes it ask for an immediate poll: the loop
 * would otherwise sleep (here: forever) before reporting it. */
static void test_completed_call_cuts_the_timeout(void)
{
    px_rpc_client_t *c = s_client(s_a.endpoint, 0);
    PX_REQUIRE(c);
    px_rpc_call_t *call = s_start(c, 2000, 100);
    PX_REQUIRE(call);
    px_sleep_us(150000); /* its deadline passes while nobody polls */
    zmq_pollitem_t items[PX_RPC_CLIENT_POLL_MAX];
    long timeout = -1;
    int n = px_rpc_client_poll_items(c, items, PX_RPC_CLIENT_POLL_MAX, &timeout);
    PX_CHECK_INT_EQ(n, 2);
    PX_CHECK_INT_EQ(timeout, 0);
    PX_CHECK(px_rpc_call_done(call));
    px_rpc_call_t *got = px_rpc_client_next(c, 0);
    PX_CHECK(got == call);
    PX_CHECK_INT_EQ(px_rpc_call_code(call), PX_DEADLINE_EXCEEDED);
    px_rpc_call_destroy(&call);
    px_rpc_client_destroy(&c);
}

static const px_test_case_t s_cases[] = {
    {"calls_complete_on_both_clients", test_calls_complete_on_both_clients},
    {"deadline_fires_without_socket_activity", test_deadline_fires_without_socket_activity},
    {"connect_wait_fires_without_socket_activity", test_connect_wait_fires_without_socket_activity},
    {"eventfd_wakes_loop_with_calls_in_flight", test_eventfd_wakes_loop_with_calls_in_flight},
    {"next_zero_never_blocks", test_next_zero_never_blocks},
    {"completed_call_cuts_the_timeout", test_completed_call_cuts_the_timeout},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    const char *extra[] = {"--workers=4", NULL};
    if (testd_start(&s_a, NULL, extra) != 0 || testd_start(&s_b, NULL, extra) != 0) {
        fprintf(stderr, "cannot start px-testd\n");
        testd_stop(&s_a, SIGKILL);
        return 1;
    }
    int rc = px_test_main(argc, argv, s_cases);
    if (testd_stop(&s_a, SIGTERM) != 0 || testd_stop(&s_b, SIGTERM) != 0) {
        fprintf(stderr, "px-testd did not stop cleanly on SIGTERM\n");
        rc = 1;
    }
    return rc;
}
