/*
 * test_act_pub.c - the live feed. After RecordEvents commits, a subscriber gets one
 * CountsChanged per changed (unit, stage) - for the neighborhood, the ward and each ancestor -
 * carrying the unit's figures after the commit, with a topic it can filter on, the publisher's
 * id and a sequence without gaps; a duplicate publishes nothing; an empty pub-endpoint
 * publishes nothing and the service runs. After SetTargets, one message per unit whose
 * effective target changed (the unit and its ancestors, stage unspecified), none when nothing
 * changed. Heartbeats (topic "hb") carry the publisher id and the last sequence used; a
 * restart is a new publisher whose sequence starts again; changes dropped because the queue
 * was full use up their numbers, so the subscriber sees the gap (in the next heartbeat, and in
 * the next message).
 *
 * The service reads PX_PUB_* from the environment it inherits from this process, so each case
 * points it at its own free port, a short heartbeat and, for the drops, a tiny queue.
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

/* The heartbeat the cases run with: short, so that waiting for a few costs little. */
#define S_HB_MS 200
#define S_HB "200"
/* The queue of the drop case: one event without a neighborhood changes 3 rows (ward,
 * district, province) and fits; an activation with a neighborhood changes 12 and does not. */
#define S_SMALL_QUEUE "8"
#define TARGET_CHANGED PHUXANH__ACTIVATION__V1__STAGE__STAGE_UNSPECIFIED

typedef struct {
    char topic[128];
    Phuxanh__Activation__V1__CountsChanged *m;
} s_msg_t;

typedef Phuxanh__Activation__V1__FeedHeartbeat s_hb_t;

static act_fixture_t F;
/* s_sub hears the count changes, s_hbsub the heartbeats. */
static void *s_zctx, *s_sub, *s_hbsub;

static void *s_socket(const char *ep, const char *prefix)
{
    void *s = zmq_socket(s_zctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, prefix, strlen(prefix));
    return zmq_connect(s, ep) == 0 ? s : NULL;
}

/* queue NULL: the service's default. */
static int s_start(const char *name, bool enabled, const char *queue)
{
    int port = px_test_free_port();
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    setenv("PX_PUB_ENDPOINT", enabled ? ep : "", 1);
    setenv("PX_PUB_HEARTBEAT_MS", S_HB, 1);
    if (queue) {
        setenv("PX_PUB_QUEUE_MAX", queue, 1);
    } else {
        unsetenv("PX_PUB_QUEUE_MAX");
    }
    if (act_fixture_start(&F, name) != 0) {
        return -1;
    }
    s_zctx = zmq_ctx_new();
    s_sub = s_socket(ep, "counts.");
    s_hbsub = s_socket(ep, "hb");
    return s_sub && s_hbsub ? 0 : -1;
}

static void s_stop(void)
{
    zmq_close(s_sub);
    zmq_close(s_hbsub);
    zmq_ctx_term(s_zctx);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

/* 16 lowercase hex characters. */
static bool s_id_ok(const char *id)
{
    if (!id || strlen(id) != 16) {
        return false;
    }
    for (const char *p = id; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* The next heartbeat within timeout_ms, or NULL. Free with protobuf_c_message_free_unpacked. */
static s_hb_t *s_hb_recv(int timeout_ms)
{
    zmq_pollitem_t it = {.socket = s_hbsub, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, timeout_ms) <= 0) {
        return NULL;
    }
    char topic[16];
    int n = zmq_recv(s_hbsub, topic, sizeof topic, 0);
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(s_hbsub, ZMQ_RCVMORE, &more, &ml);
    if (n != 2 || memcmp(topic, "hb", 2) != 0 || !more) {
        return NULL;
    }
    uint8_t buf[256];
    n = zmq_recv(s_hbsub, buf, sizeof buf, 0);
    return n > 0 && n <= (int)sizeof buf
               ? phuxanh__activation__v1__feed_heartbeat__unpack(NULL, (size_t)n, buf)
               : NULL;
}

/* The first heartbeat whose sequence is at least seq (older ones may wait in the socket),
 * within a few intervals; NULL when none. */
static s_hb_t *s_hb_reaching(uint64_t seq)
{
    for (int i = 0; i < 25; i++) {
        s_hb_t *hb = s_hb_recv(5 * S_HB_MS);
        if (!hb || hb->sequence >= seq) {
            return hb;
        }
        protobuf_c_message_free_unpacked(&hb->base, NULL);
    }
    return NULL;
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

static int s_rec_in(const char *campaign, const char *key, const char *id, int stage,
                    const char *nbh)
{
    Phuxanh__Activation__V1__ActivationEvent *e = act_event(key, id, "25966", stage, 0);
    free(e->campaign_id);
    e->campaign_id = strdup(campaign);
    free(e->neighborhood_code);
    e->neighborhood_code = strdup(nbh);
    bool dup = false;
    int code = act_record1(&F, e, &dup, NULL, 0);
    act_event_free(e);
    return code == 0 ? (dup ? 1 : 0) : -1;
}

/* An event in Lái Thiêu, neighborhood Đông Nhì. */
static int s_rec(const char *campaign, const char *key, const char *id, int stage)
{
    return s_rec_in(campaign, key, id, stage, "25966-01");
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

/* SetTargets of n (unit, target) pairs of campaign C; true when committed. */
static bool s_set_targets(const char *const *units, const int *targets, size_t n)
{
    Phuxanh__Activation__V1__Target t[4];
    Phuxanh__Activation__V1__Target *tp[4];
    for (size_t i = 0; i < n && i < 4; i++) {
        phuxanh__activation__v1__target__init(&t[i]);
        t[i].campaign_id = C;
        t[i].unit_code = (char *)units[i];
        t[i].target = targets[i];
        tp[i] = &t[i];
    }
    Phuxanh__Activation__V1__SetTargetsRequest req =
        PHUXANH__ACTIVATION__V1__SET_TARGETS_REQUEST__INIT;
    req.targets = tp;
    req.n_targets = n < 4 ? n : 4;
    ProtobufCMessage *reply = NULL;
    px_status_t st;
    if (act_call(&F, "SetTargets", &req.base,
                 &phuxanh__activation__v1__set_targets_response__descriptor, &reply,
                 &st) != PX_OK) {
        return false;
    }
    bool committed = ((Phuxanh__Activation__V1__SetTargetsResponse *)reply)->committed;
    protobuf_c_message_free_unpacked(reply, NULL);
    return committed;
}

static bool s_set_target(const char *unit, int target)
{
    return s_set_targets(&unit, &target, 1);
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
    PX_REQUIRE(s_start("act_pub_change", true, NULL) == 0);
    PX_REQUIRE(s_warm_up());
    PX_REQUIRE(s_set_target("25966", 2));
    s_msg_t got[16];
    int n = s_collect(got, 3); /* the target's: the ward, its district and province */
    PX_CHECK_INT_EQ(n, 3);
    s_free(got, n);

    /* An activation implies collected and approved: 3 stages x 4 units. */
    PX_REQUIRE(s_rec(C, "p1", "074090000001", 3) == 0);
    n = s_collect(got, 3 * S_NCHAIN);
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
    /* One message per publish, numbered without gaps, all from one publisher. */
    for (int i = 1; i < n; i++) {
        PX_CHECK(got[i].m->sequence == got[i - 1].m->sequence + 1);
        PX_CHECK_STR_EQ(got[i].m->publisher, got[0].m->publisher);
    }
    PX_CHECK(n > 0 && s_id_ok(got[0].m->publisher));
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
    PX_REQUIRE(s_start("act_pub_dup", true, NULL) == 0);
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
    PX_REQUIRE(s_start("act_pub_off", false, NULL) == 0);
    PX_CHECK_INT_EQ(s_rec(C, "o1", "074090000004", 3), 0);
    s_msg_t m;
    bool heard = s_recv(&m, 500);
    PX_CHECK(!heard);
    if (heard) {
        protobuf_c_message_free_unpacked(&m.m->base, NULL);
    }
    s_hb_t *hb = s_hb_recv(3 * S_HB_MS);
    PX_CHECK(hb == NULL);
    if (hb) {
        protobuf_c_message_free_unpacked(&hb->base, NULL);
    }
    s_stop();
}

static void test_heartbeat_carries_publisher_and_sequence(void)
{
    PX_REQUIRE(s_start("act_pub_hb", true, NULL) == 0);
    PX_REQUIRE(s_warm_up());
    PX_REQUIRE(s_rec(C, "h1", "074090000005", 1) == 0);
    s_msg_t got[8];
    int n = s_collect(got, S_NCHAIN);
    PX_CHECK_INT_EQ(n, S_NCHAIN);
    PX_REQUIRE(n > 0);
    uint64_t last = got[n - 1].m->sequence;
    char publisher[32];
    snprintf(publisher, sizeof publisher, "%s", got[n - 1].m->publisher);
    s_free(got, n);

    /* Nothing else happens: the heartbeat says the last number used is the last received. */
    s_hb_t *hb = s_hb_reaching(last);
    PX_REQUIRE(hb != NULL);
    PX_CHECK(hb->sequence == last);
    PX_CHECK_STR_EQ(hb->publisher, publisher);
    PX_CHECK(hb->sent_at != NULL && hb->sent_at->seconds > 1690000000);
    /* And again an interval later, with nothing new. */
    s_hb_t *next = s_hb_recv(5 * S_HB_MS);
    PX_CHECK(next != NULL);
    if (next && hb->sent_at && next->sent_at) {
        int64_t gap_ms = (next->sent_at->seconds - hb->sent_at->seconds) * 1000 +
                         (next->sent_at->nanos - hb->sent_at->nanos) / 1000000;
        PX_CHECK(gap_ms >= S_HB_MS - 20 && gap_ms < 10 * S_HB_MS);
        PX_CHECK(next->sequence == last);
        PX_CHECK_STR_EQ(next->publisher, publisher);
    }
    if (next) {
        protobuf_c_message_free_unpacked(&next->base, NULL);
    }
    protobuf_c_message_free_unpacked(&hb->base, NULL);
    s_stop();
}

static void test_restart_is_a_new_publisher(void)
{
    PX_REQUIRE(s_start("act_pub_restart", true, NULL) == 0);
    s_hb_t *hb = s_hb_recv(10 * S_HB_MS);
    PX_REQUIRE(hb != NULL);
    char before[32];
    snprintf(before, sizeof before, "%s", hb->publisher);
    PX_CHECK(s_id_ok(before));
    protobuf_c_message_free_unpacked(&hb->base, NULL);

    PX_REQUIRE(act_service_restart(&F) == 0);
    /* The subscriber reconnects by itself; heartbeats of the old process may still wait. */
    char after[32] = "";
    uint64_t seq = 1;
    for (int i = 0; i < 50 && (!*after || strcmp(after, before) == 0); i++) {
        hb = s_hb_recv(10 * S_HB_MS);
        if (hb) {
            snprintf(after, sizeof after, "%s", hb->publisher);
            seq = hb->sequence;
            protobuf_c_message_free_unpacked(&hb->base, NULL);
        }
    }
    PX_CHECK(s_id_ok(after));
    PX_CHECK(strcmp(after, before) != 0);
    PX_CHECK(seq == 0); /* nothing published yet by the new process */

    /* Its first message is number 1, under the new id. */
    PX_REQUIRE(s_rec(C, "r1", "074090000006", 1) == 0);
    s_msg_t got[8];
    int n = s_collect(got, S_NCHAIN);
    PX_CHECK_INT_EQ(n, S_NCHAIN);
    if (n > 0) {
        PX_CHECK(got[0].m->sequence == 1);
        PX_CHECK_STR_EQ(got[0].m->publisher, after);
    }
    s_free(got, n);
    s_stop();
}

static void test_drops_make_a_gap(void)
{
    PX_REQUIRE(s_start("act_pub_drop", true, S_SMALL_QUEUE) == 0);
    PX_REQUIRE(s_warm_up());
    /* Fits: the ward, the district, the province. */
    PX_REQUIRE(s_rec_in(C, "g1", "074090000007", 1, "") == 0);
    s_msg_t got[8];
    int n = s_collect(got, 3);
    PX_CHECK_INT_EQ(n, 3);
    PX_REQUIRE(n > 0);
    uint64_t last = got[n - 1].m->sequence;
    s_free(got, n);

    /* 12 changes at once do not fit the queue of 8: recorded, not published. */
    PX_REQUIRE(s_rec(C, "g2", "074090000008", 3) == 0);
    s_msg_t m;
    bool heard = s_recv(&m, 3 * S_HB_MS);
    PX_CHECK(!heard);
    if (heard) {
        protobuf_c_message_free_unpacked(&m.m->base, NULL);
    }
    /* The heartbeat shows the numbers they used up. */
    s_hb_t *hb = s_hb_reaching(last + 1);
    PX_CHECK(hb != NULL);
    if (hb) {
        PX_CHECK(hb->sequence == last + 12);
        protobuf_c_message_free_unpacked(&hb->base, NULL);
    }
    /* And so does the next message, whose figures count the dropped event. */
    PX_REQUIRE(s_rec_in(C, "g3", "074090000009", 1, "") == 0);
    n = s_collect(got, 3);
    PX_CHECK_INT_EQ(n, 3);
    if (n == 3) {
        PX_CHECK(got[0].m->sequence == last + 13);
        PX_CHECK(got[2].m->sequence == last + 15);
        const s_msg_t *w = s_find(got, n, "25966", 1);
        PX_CHECK(w && w->m->collected == 3 && w->m->activated == 1);
    }
    s_free(got, n);
    PX_CHECK_INT_EQ(act_file_contains(F.log_path, "ACT-PUB-DROP"), 1);
    s_stop();
}

/* Expects exactly the target messages for units[0..n) (any order), stage unspecified, with
 * the targets given, consecutive numbers after *last (updated). */
static void s_expect_targets(const char *const *units, const int *targets, int n, uint64_t *last)
{
    s_msg_t got[8];
    int k = s_collect(got, n);
    PX_CHECK_INT_EQ(k, n);
    for (int i = 0; i < n && k == n; i++) {
        const s_msg_t *m = s_find(got, k, units[i], TARGET_CHANGED);
        PX_CHECK(m != NULL);
        if (m) {
            PX_CHECK_INT_EQ(m->m->target, targets[i]);
            PX_CHECK(m->m->changed_at != NULL);
        }
    }
    for (int i = 0; i < k; i++) {
        PX_CHECK(got[i].m->sequence == *last + 1 + (uint64_t)i);
    }
    if (k > 0) {
        *last = got[k - 1].m->sequence;
    }
    s_free(got, k);
    /* And nothing more. */
    s_msg_t m;
    bool heard = s_recv(&m, 500);
    PX_CHECK(!heard);
    if (heard) {
        protobuf_c_message_free_unpacked(&m.m->base, NULL);
    }
}

static void test_targets_published_up_the_tree(void)
{
    PX_REQUIRE(s_start("act_pub_targets", true, NULL) == 0);
    PX_REQUIRE(s_warm_up());
    PX_REQUIRE(s_rec(C, "t1", "074090000010", 3) == 0);
    s_msg_t got[16];
    int n = s_collect(got, 3 * S_NCHAIN);
    PX_CHECK_INT_EQ(n, 3 * S_NCHAIN);
    PX_REQUIRE(n > 0);
    uint64_t last = got[n - 1].m->sequence;
    s_free(got, n);

    /* The ward's target: the ward, its district and its province (not the neighborhood), with
     * the new effective target and, as one citizen is activated, green. */
    PX_REQUIRE(s_set_target("25966", 1));
    n = s_collect(got, 3);
    PX_CHECK_INT_EQ(n, 3);
    static const char *const up[] = {"25966", "725", "74"};
    for (int i = 0; i < 3 && n == 3; i++) {
        const s_msg_t *m = s_find(got, n, up[i], TARGET_CHANGED);
        PX_CHECK(m != NULL);
        if (m) {
            PX_CHECK_INT_EQ(m->m->target, 1);
            PX_CHECK_INT_EQ(m->m->activated, 1);
            PX_CHECK(m->m->green);
        }
    }
    for (int i = 0; i < n; i++) {
        PX_CHECK(got[i].m->sequence == last + 1 + (uint64_t)i);
    }
    last = n > 0 ? got[n - 1].m->sequence : last;
    s_free(got, n);

    /* The same again changes nothing and publishes nothing. */
    PX_REQUIRE(s_set_target("25966", 1));
    s_msg_t m;
    bool heard = s_recv(&m, 800);
    PX_CHECK(!heard);
    if (heard) {
        protobuf_c_message_free_unpacked(&m.m->base, NULL);
    }

    /* The district's own target: the district and the province only. */
    PX_REQUIRE(s_set_target("725", 10));
    static const char *const d[] = {"725", "74"};
    static const int dt[] = {10, 10};
    s_expect_targets(d, dt, 2, &last);

    /* Two wards of the district in one call: each unit once (725 and 74 are shared), the
     * district keeping its own target. */
    static const char *const wards[] = {"25969", "25975"};
    static const int wt[] = {3, 4};
    PX_REQUIRE(s_set_targets(wards, wt, 2));
    static const char *const w[] = {"25969", "25975", "725", "74"};
    static const int wwt[] = {3, 4, 10, 10};
    s_expect_targets(w, wwt, 4, &last);

    /* Removing the district's own target: it sums its wards again. */
    PX_REQUIRE(s_set_target("725", 0));
    static const int rt[] = {8, 8};
    s_expect_targets(d, rt, 2, &last);
    s_stop();
}

static const px_test_case_t s_cases[] = {
    {"change_published_after_commit", test_change_published_after_commit},
    {"duplicate_publishes_nothing", test_duplicate_publishes_nothing},
    {"disabled_publishes_nothing", test_disabled_publishes_nothing},
    {"heartbeat_carries_publisher_and_sequence", test_heartbeat_carries_publisher_and_sequence},
    {"restart_is_a_new_publisher", test_restart_is_a_new_publisher},
    {"drops_make_a_gap", test_drops_make_a_gap},
    {"targets_published_up_the_tree", test_targets_published_up_the_tree},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
