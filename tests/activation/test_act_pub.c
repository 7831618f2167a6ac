/*
 * test_act_pub.c - the PUB socket of count changes: after RecordEvents commits, a subscriber
 * gets one CountsChanged per changed (unit, stage) - for the neighborhood, the ward and each
 * ancestor - carrying the unit's figures after the commit, with a topic it can filter on and
 * a sequence without gaps; a duplicate publishes nothing; an empty pub-endpoint publishes
 * nothing and the service runs.
 *
 * The service reads PX_PUB_ENDPOINT from the environment it inherits from this process, so
 * each case points it at its own free port.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "act_fixture.h"
#include "px_test.h"

#define C "tn-pub"
#define WARM "warmup"
/* Units a ward event with a neighborhood counts in (the fixture's tree). */
static const char *const s_chain[] = {"25966-01", "25966", "725", "74"};
#define S_NCHAIN 4

typedef struct {
    char topic[128];
    Phuxanh__Activation__V1__CountsChanged *m;
} s_msg_t;

static act_fixture_t F;
static void *s_zctx, *s_sub;

static int s_start(const char *name, bool enabled)
{
    int port = px_test_free_port();
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    setenv("PX_PUB_ENDPOINT", enabled ? ep : "", 1);
    if (act_fixture_start(&F, name) != 0) {
        return -1;
    }
    s_zctx = zmq_ctx_new();
    s_sub = zmq_socket(s_zctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(s_sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s_sub, ZMQ_SUBSCRIBE, "counts.", 7);
    return zmq_connect(s_sub, ep);
}

static void s_stop(void)
{
    zmq_close(s_sub);
    zmq_ctx_term(s_zctx);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

/* The next message within timeout_ms, or false. */
static bool s_recv(s_msg_t *out, int timeout_ms)
{
    zmq_pollitem_t it = {.socket = s_sub, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, timeout_ms) <= 0) {
        return false;
    }
    int n = zmq_recv(s_sub, out->topic, sizeof out->topic - 1, 0);
    if (n < 0) {
        return false;
    }
    out->topic[n < (int)sizeof out->topic - 1 ? n : (int)sizeof out->topic - 1] = '\0';
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(s_sub, ZMQ_RCVMORE, &more, &ml);
    if (!more) {
        return false;
    }
    uint8_t buf[1024];
    n = zmq_recv(s_sub, buf, sizeof buf, 0);
    out->m = n > 0 && n <= (int)sizeof buf
                 ? phuxanh__activation__v1__counts_changed__unpack(NULL, (size_t)n, buf)
                 : NULL;
    return out->m != NULL;
}

static int s_rec(const char *campaign, const char *key, const char *id, int stage)
{
    Phuxanh__Activation__V1__ActivationEvent *e = act_event(key, id, "25966", stage, 0);
    free(e->campaign_id);
    e->campaign_id = strdup(campaign);
    free(e->neighborhood_code);
    e->neighborhood_code = strdup("25966-01");
    bool dup = false;
    int code = act_record1(&F, e, &dup, NULL, 0);
    act_event_free(e);
    return code == 0 ? (dup ? 1 : 0) : -1;
}

/* The subscription takes a moment to reach the publisher (ZeroMQ's slow joiner): record
 * events of another campaign until one is heard, then drain. */
static bool s_warm_up(void)
{
    s_msg_t m;
    for (int i = 0; i < 50; i++) {
        char key[32], id[16];
        snprintf(key, sizeof key, "warm-%d", i);
        snprintf(id, sizeof id, "074090%06d", 900000 + i);
        if (s_rec(WARM, key, id, 1) < 0) {
            return false;
        }
        if (s_recv(&m, 200)) {
            protobuf_c_message_free_unpacked(&m.m->base, NULL);
            while (s_recv(&m, 300)) {
                protobuf_c_message_free_unpacked(&m.m->base, NULL);
            }
            return true;
        }
    }
    return false;
}

static void s_set_target(const char *unit, int target)
{
    Phuxanh__Activation__V1__Target t = PHUXANH__ACTIVATION__V1__TARGET__INIT;
    t.campaign_id = C;
    t.unit_code = (char *)unit;
    t.target = target;
    Phuxanh__Activation__V1__Target *tp = &t;
    Phuxanh__Activation__V1__SetTargetsRequest req =
        PHUXANH__ACTIVATION__V1__SET_TARGETS_REQUEST__INIT;
    req.targets = &tp;
    req.n_targets = 1;
    ProtobufCMessage *reply = NULL;
    px_status_t st;
    PX_REQUIRE(act_call(&F, "SetTargets", &req.base,
                        &phuxanh__activation__v1__set_targets_response__descriptor, &reply,
                        &st) == PX_OK);
    protobuf_c_message_free_unpacked(reply, NULL);
}

/* Receives exactly `want` messages of campaign C (others are skipped), into got. */
static int s_collect(s_msg_t *got, int want)
{
    int n = 0;
    s_msg_t m;
    while (n < want && s_recv(&m, 3000)) {
        if (strcmp(m.m->campaign_id, C) == 0) {
            got[n++] = m;
        } else {
            protobuf_c_message_free_unpacked(&m.m->base, NULL);
        }
    }
    return n;
}

static const s_msg_t *s_find(const s_msg_t *got, int n, const char *unit, int stage)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(got[i].m->unit_code, unit) == 0 && (int)got[i].m->stage == stage) {
            return &got[i];
        }
    }
    return NULL;
}

static void s_free(s_msg_t *got, int n)
{
    for (int i = 0; i < n; i++) {
        protobuf_c_message_free_unpacked(&got[i].m->base, NULL);
    }
}

static void test_change_published_after_commit(void)
{
    PX_REQUIRE(s_start("act_pub_change", true) == 0);
    PX_REQUIRE(s_warm_up());
    s_set_target("25966", 2);

    /* An activation implies collected and approved: 3 stages x 4 units. */
    PX_REQUIRE(s_rec(C, "p1", "074090000001", 3) == 0);
    s_msg_t got[16];
    int n = s_collect(got, 3 * S_NCHAIN);
    PX_CHECK_INT_EQ(n, 3 * S_NCHAIN);
    for (int u = 0; u < S_NCHAIN; u++) {
        for (int s = 1; s <= 3; s++) {
            const s_msg_t *m = s_find(got, n, s_chain[u], s);
            PX_CHECK(m != NULL);
            if (!m) {
                continue;
            }
            char topic[64];
            snprintf(topic, sizeof topic, "counts.%s.%s", C, s_chain[u]);
            PX_CHECK_STR_EQ(m->topic, topic);
            PX_CHECK_INT_EQ(m->m->collected, 1);
            PX_CHECK_INT_EQ(m->m->approved, 1);
            PX_CHECK_INT_EQ(m->m->activated, 1);
            PX_CHECK_INT_EQ(m->m->rejected, 0);
            PX_CHECK_INT_EQ(m->m->approved_not_activated, 0);
            PX_CHECK(m->m->changed_at != NULL && m->m->changed_at->seconds > 1690000000);
            /* The ward's own target; the district and province sum their wards'. */
            PX_CHECK_INT_EQ(m->m->target, u == 0 ? 0 : 2);
            PX_CHECK(!m->m->green);
        }
    }
    /* One message per publish, numbered without gaps. */
    for (int i = 1; i < n; i++) {
        PX_CHECK(got[i].m->sequence == got[i - 1].m->sequence + 1);
    }
    uint64_t last = n > 0 ? got[n - 1].m->sequence : 0;
    s_free(got, n);

    /* A second citizen approved: 2 stages x 4 units, the approved-not-activated figure. */
    PX_REQUIRE(s_rec(C, "p2", "074090000002", 2) == 0);
    n = s_collect(got, 2 * S_NCHAIN);
    PX_CHECK_INT_EQ(n, 2 * S_NCHAIN);
    const s_msg_t *w = s_find(got, n, "25966", 2);
    PX_CHECK(w != NULL);
    if (w) {
        PX_CHECK_INT_EQ(w->m->collected, 2);
        PX_CHECK_INT_EQ(w->m->approved, 2);
        PX_CHECK_INT_EQ(w->m->activated, 1);
        PX_CHECK_INT_EQ(w->m->approved_not_activated, 1);
        PX_CHECK(w->m->sequence > last);
    }
    PX_CHECK(s_find(got, n, "25966", 3) == NULL);
    s_free(got, n);

    /* Then activated: the ward reaches its target. */
    PX_REQUIRE(s_rec(C, "p3", "074090000002", 3) == 0);
    n = s_collect(got, S_NCHAIN);
    PX_CHECK_INT_EQ(n, S_NCHAIN);
    w = s_find(got, n, "25966", 3);
    PX_CHECK(w != NULL);
    if (w) {
        PX_CHECK_INT_EQ(w->m->activated, 2);
        PX_CHECK_INT_EQ(w->m->target, 2);
        PX_CHECK(w->m->green);
    }
    s_free(got, n);
    s_stop();
}

static void test_duplicate_publishes_nothing(void)
{
    PX_REQUIRE(s_start("act_pub_dup", true) == 0);
    PX_REQUIRE(s_warm_up());
    PX_REQUIRE(s_rec(C, "d1", "074090000003", 1) == 0);
    s_msg_t got[8];
    int n = s_collect(got, S_NCHAIN);
    PX_CHECK_INT_EQ(n, S_NCHAIN);
    s_free(got, n);
    /* The same key again, and a new key for a stage already reached: both duplicates. */
    PX_CHECK_INT_EQ(s_rec(C, "d1", "074090000003", 1), 1);
    PX_CHECK_INT_EQ(s_rec(C, "d2", "074090000003", 1), 1);
    s_msg_t m;
    bool heard = s_recv(&m, 800);
    PX_CHECK(!heard);
    if (heard) {
        protobuf_c_message_free_unpacked(&m.m->base, NULL);
    }
    s_stop();
}

static void test_disabled_publishes_nothing(void)
{
    PX_REQUIRE(s_start("act_pub_off", false) == 0);
    PX_CHECK_INT_EQ(s_rec(C, "o1", "074090000004", 3), 0);
    s_msg_t m;
    bool heard = s_recv(&m, 500);
    PX_CHECK(!heard);
    if (heard) {
        protobuf_c_message_free_unpacked(&m.m->base, NULL);
    }
    s_stop();
}

static const px_test_case_t s_cases[] = {
    {"change_published_after_commit", test_change_published_after_commit},
    {"duplicate_publishes_nothing", test_duplicate_publishes_nothing},
    {"disabled_publishes_nothing", test_disabled_publishes_nothing},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
