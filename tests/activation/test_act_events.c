/*
 * test_act_events.c - RecordEvents against API.md's counting rules one by one (repeats,
 * out-of-order and implied stages, one citizen in two wards, a rejection then a new
 * application, the impossible move), idempotency, consent, the ID-number checks over the
 * wire, units and volunteers, follow-ups, roll-ups, SetTargets and GetProgress.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_fixture.h"
#include "px_test.h"

#define COLLECTED 1
#define APPROVED 2
#define ACTIVATED 3
#define REJECTED 4
#define C "tn-2023"

static act_fixture_t F;

/* A valid number: Bình Dương, born 1990, serial n. */
static const char *s_id(int n)
{
    static char buf[8][24]; /* room for any int, though ids use 6 digits */
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "074090%06d", n);
    return buf[k];
}

/* Records one event; returns its code (dup and msg filled when given). */
static int s_rec(const char *key, int id, const char *unit, int stage, bool *dup, char *msg)
{
    Phuxanh__Activation__V1__ActivationEvent *e = act_event(key, s_id(id), unit, stage, 0);
    int code = act_record1(&F, e, dup, msg, msg ? 200 : 0);
    act_event_free(e);
    return code;
}

static long long s_tot(const char *unit, int stage)
{
    return act_total(&F, C, unit, stage);
}

static bool s_start(const char *name)
{
    return act_fixture_start(&F, name) == 0;
}

static void s_stop(void)
{
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static void test_repeat_counts_once(void)
{
    PX_REQUIRE(s_start("act_repeat"));
    bool dup = true;
    PX_CHECK_INT_EQ(s_rec("r1", 1, "25966", COLLECTED, &dup, NULL), 0);
    PX_CHECK(!dup);
    PX_CHECK_INT_EQ(s_rec("r2", 1, "25966", COLLECTED, &dup, NULL), 0);
    PX_CHECK(dup);
    PX_CHECK_INT_EQ(s_tot("25966", COLLECTED), 1);
    PX_CHECK_INT_EQ(s_tot("725", COLLECTED), 1);
    PX_CHECK_INT_EQ(s_tot("74", COLLECTED), 1);
    /* Both events are stored, the repeat marked as a duplicate. */
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events"), 2);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events WHERE duplicate"), 1);
    s_stop();
}

static void test_later_stage_implies_earlier(void)
{
    PX_REQUIRE(s_start("act_implied"));
    bool dup = true;
    PX_CHECK_INT_EQ(s_rec("i1", 2, "25966", ACTIVATED, &dup, NULL), 0);
    PX_CHECK(!dup);
    PX_CHECK_INT_EQ(s_tot("25966", COLLECTED), 1);
    PX_CHECK_INT_EQ(s_tot("25966", APPROVED), 1);
    PX_CHECK_INT_EQ(s_tot("25966", ACTIVATED), 1);
    /* The late earlier stages are stored, answered duplicate, and change nothing. */
    PX_CHECK_INT_EQ(s_rec("i2", 2, "25966", COLLECTED, &dup, NULL), 0);
    PX_CHECK(dup);
    PX_CHECK_INT_EQ(s_rec("i3", 2, "25966", APPROVED, &dup, NULL), 0);
    PX_CHECK(dup);
    PX_CHECK_INT_EQ(s_tot("25966", COLLECTED), 1);
    PX_CHECK_INT_EQ(s_tot("25966", APPROVED), 1);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events"), 3);
    s_stop();
}

static void test_out_of_order_then_forward(void)
{
    PX_REQUIRE(s_start("act_order"));
    bool dup = true;
    PX_CHECK_INT_EQ(s_rec("o1", 3, "25966", APPROVED, &dup, NULL), 0);
    PX_CHECK_INT_EQ(s_rec("o2", 3, "25966", COLLECTED, &dup, NULL), 0);
    PX_CHECK(dup);
    PX_CHECK_INT_EQ(s_rec("o3", 3, "25966", ACTIVATED, &dup, NULL), 0);
    PX_CHECK(!dup);
    PX_CHECK_INT_EQ(s_tot("25966", COLLECTED), 1);
    PX_CHECK_INT_EQ(s_tot("25966", APPROVED), 1);
    PX_CHECK_INT_EQ(s_tot("25966", ACTIVATED), 1);
    s_stop();
}

static void test_same_citizen_two_wards(void)
{
    PX_REQUIRE(s_start("act_twowards"));
    bool dup = true;
    PX_CHECK_INT_EQ(s_rec("w1", 4, "25966", COLLECTED, &dup, NULL), 0);
    PX_CHECK_INT_EQ(s_rec("w2", 4, "25969", APPROVED, &dup, NULL), 0);
    PX_CHECK(!dup);
    PX_CHECK_INT_EQ(s_rec("w3", 4, "25969", COLLECTED, &dup, NULL), 0);
    PX_CHECK(dup);
    /* Counted once, in the ward that recorded them first. */
    PX_CHECK_INT_EQ(s_tot("25966", COLLECTED), 1);
    PX_CHECK_INT_EQ(s_tot("25966", APPROVED), 1);
    PX_CHECK_INT_EQ(s_tot("25969", COLLECTED), 0);
    PX_CHECK_INT_EQ(s_tot("25969", APPROVED), 0);
    PX_CHECK_INT_EQ(s_tot("725", COLLECTED), 1);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events WHERE unit_code = '25969'"), 2);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM citizens WHERE unit_code = '25966'"), 1);
    s_stop();
}

static void test_rejection_then_new_application(void)
{
    PX_REQUIRE(s_start("act_reject"));
    bool dup = true;
    PX_CHECK_INT_EQ(s_rec("j1", 5, "25966", COLLECTED, &dup, NULL), 0);
    PX_CHECK_INT_EQ(s_rec("j2", 5, "25966", REJECTED, &dup, NULL), 0);
    PX_CHECK(!dup);
    PX_CHECK_INT_EQ(s_rec("j3", 5, "25966", REJECTED, &dup, NULL), 0);
    PX_CHECK(dup);
    /* A new application starts cycle 2; the stages count once per campaign, ever. */
    PX_CHECK_INT_EQ(s_rec("j4", 5, "25966", COLLECTED, &dup, NULL), 0);
    PX_CHECK(!dup);
    PX_CHECK_INT_EQ(s_rec("j5", 5, "25966", APPROVED, &dup, NULL), 0);
    PX_CHECK_INT_EQ(s_rec("j6", 5, "25966", ACTIVATED, &dup, NULL), 0);
    PX_CHECK_INT_EQ(s_tot("25966", REJECTED), 1);
    PX_CHECK_INT_EQ(s_tot("25966", COLLECTED), 1);
    PX_CHECK_INT_EQ(s_tot("25966", APPROVED), 1);
    PX_CHECK_INT_EQ(s_tot("25966", ACTIVATED), 1);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT cycle FROM citizens"), 2);
    /* A rejection for a citizen never seen implies the application was collected. */
    PX_CHECK_INT_EQ(s_rec("j7", 6, "25966", REJECTED, &dup, NULL), 0);
    PX_CHECK_INT_EQ(s_tot("25966", REJECTED), 2);
    PX_CHECK_INT_EQ(s_tot("25966", COLLECTED), 2);
    s_stop();
}

static void test_rejected_after_activated_refused(void)
{
    PX_REQUIRE(s_start("act_impossible"));
    bool dup = true;
    char msg[200];
    PX_CHECK_INT_EQ(s_rec("x1", 7, "25966", ACTIVATED, &dup, NULL), 0);
    PX_CHECK_INT_EQ(s_rec("x2", 7, "25966", REJECTED, &dup, msg), 9);
    PX_CHECK(!dup);
    PX_CHECK(strncmp(msg, "stage: ", 7) == 0);
    PX_CHECK_INT_EQ(s_tot("25966", REJECTED), 0);
    /* Refused events are not stored: the key stays free and answers the same again. */
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events WHERE idempotency_key = 'x2'"), 0);
    PX_CHECK_INT_EQ(s_rec("x2", 7, "25966", REJECTED, &dup, NULL), 9);
    s_stop();
}

static void test_idempotency_key(void)
{
    PX_REQUIRE(s_start("act_idem"));
    bool dup = true;
    char m1[200], m2[200];
    PX_CHECK_INT_EQ(s_rec("k1", 8, "25966", COLLECTED, &dup, m1), 0);
    PX_CHECK(!dup);
    PX_CHECK_INT_EQ(s_rec("k1", 8, "25966", COLLECTED, &dup, m2), 0);
    PX_CHECK(dup);
    PX_CHECK_STR_EQ(m1, m2);
    /* The same key is the same event whatever else it says. */
    PX_CHECK_INT_EQ(s_rec("k1", 9, "25969", ACTIVATED, &dup, NULL), 0);
    PX_CHECK(dup);
    PX_CHECK_INT_EQ(s_tot("25966", COLLECTED), 1);
    PX_CHECK_INT_EQ(s_tot("25969", COLLECTED), 0);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events"), 1);

    /* A retried batch: counted once; a key twice within one batch: one event. */
    Phuxanh__Activation__V1__ActivationEvent *ev[6];
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof key, "b%d", i);
        ev[i] = act_event(key, s_id(100 + i), "25969", ACTIVATED, i);
    }
    ev[5] = act_event("b0", s_id(100), "25969", ACTIVATED, 0);
    px_status_t st;
    Phuxanh__Activation__V1__RecordEventsResponse *r = act_record(&F, ev, 6, &st);
    PX_REQUIRE(r);
    PX_CHECK_INT_EQ(r->n_results, 6);
    PX_CHECK_INT_EQ(r->recorded, 5);
    PX_CHECK_INT_EQ(r->duplicates, 1);
    PX_CHECK(r->results[5]->duplicate && r->results[5]->code == 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = act_record(&F, ev, 6, &st);
    PX_REQUIRE(r);
    PX_CHECK_INT_EQ(r->recorded, 0);
    PX_CHECK_INT_EQ(r->duplicates, 6);
    for (size_t i = 0; i < r->n_results; i++) {
        PX_CHECK_INT_EQ(r->results[i]->index, (int)i);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    PX_CHECK_INT_EQ(s_tot("25969", ACTIVATED), 5);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events"), 6);
    for (int i = 0; i < 6; i++) {
        act_event_free(ev[i]);
    }
    /* A key twice within one batch with another payload (citizen, ward, stage): the second is
     * the first event again, answered as it, and nothing of its own payload is counted. */
    Phuxanh__Activation__V1__ActivationEvent *two[2] = {
        act_event("c0", s_id(200), "25747", COLLECTED, 0),
        act_event("c0", s_id(201), "25975", ACTIVATED, 5),
    };
    r = act_record(&F, two, 2, &st);
    PX_REQUIRE(r);
    PX_CHECK_INT_EQ(r->recorded, 1);
    PX_CHECK_INT_EQ(r->duplicates, 1);
    PX_CHECK(!r->results[0]->duplicate && r->results[1]->duplicate);
    PX_CHECK_INT_EQ(r->results[1]->code, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    PX_CHECK_INT_EQ(s_tot("25747", COLLECTED), 1);
    PX_CHECK_INT_EQ(s_tot("25975", COLLECTED), 0);
    PX_CHECK_INT_EQ(s_tot("25975", ACTIVATED), 0);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events"), 7);
    act_event_free(two[0]);
    act_event_free(two[1]);
    s_stop();
}

static void test_consent_required(void)
{
    PX_REQUIRE(s_start("act_consent"));
    Phuxanh__Activation__V1__ActivationEvent *e = act_event("c1", s_id(10), "25966", COLLECTED, 0);
    e->consent = false;
    bool dup = true;
    char msg[200];
    PX_CHECK_INT_EQ(act_record1(&F, e, &dup, msg, sizeof msg), 3);
    PX_CHECK(strncmp(msg, "consent: ", 9) == 0);
    PX_CHECK(!dup);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events WHERE idempotency_key = 'c1'"), 0);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events"), 0);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM citizens"), 0);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM totals"), 0);
    /* The key stays free: given consent it is taken. */
    e->consent = true;
    PX_CHECK_INT_EQ(act_record1(&F, e, &dup, NULL, 0), 0);
    PX_CHECK(!dup);
    act_event_free(e);
    s_stop();
}

static void test_citizen_id_checks_over_the_wire(void)
{
    PX_REQUIRE(s_start("act_idcheck"));
    const char *bad[] = {"07409000123", "003090001234", "074210123456", "07409000123x",
                         "0740900012345"};
    const size_t nbad = sizeof bad / sizeof bad[0];
    Phuxanh__Activation__V1__ActivationEvent *ev[8];
    for (size_t i = 0; i < nbad; i++) {
        char key[16];
        snprintf(key, sizeof key, "id%zu", i);
        ev[i] = act_event(key, bad[i], "25966", COLLECTED, 0);
    }
    ev[nbad] = act_event("good", s_id(11), "25966", COLLECTED, 0);
    px_status_t st;
    Phuxanh__Activation__V1__RecordEventsResponse *r = act_record(&F, ev, nbad + 1, &st);
    PX_REQUIRE(r);
    for (size_t i = 0; i < nbad; i++) {
        PX_CHECK_INT_EQ(r->results[i]->code, 3);
        PX_CHECK(strncmp(r->results[i]->message, "citizen_id: ", 12) == 0);
        PX_CHECK(strstr(r->results[i]->message, bad[i]) == NULL);
    }
    PX_CHECK_INT_EQ(r->results[nbad]->code, 0);
    PX_CHECK_INT_EQ(r->recorded, 1);
    PX_CHECK_INT_EQ(r->refused, (int)nbad);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    for (size_t i = 0; i <= nbad; i++) {
        act_event_free(ev[i]);
    }
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events"), 1);
    /* An ID number in the wrong field does not come back either. */
    char msg[200];
    Phuxanh__Activation__V1__ActivationEvent *e =
        act_event("wrong", s_id(12), "074090000077", COLLECTED, 0);
    PX_CHECK_INT_EQ(act_record1(&F, e, NULL, msg, sizeof msg), 3);
    PX_CHECK(strncmp(msg, "unit_code: ", 11) == 0 && strstr(msg, "074090000077") == NULL);
    act_event_free(e);
    PX_CHECK_INT_EQ(act_file_contains(F.log_path, "074090000077"), 0);
    PX_CHECK_INT_EQ(act_db_contains(&F, "074090000011"), 0);
    PX_CHECK_INT_EQ(act_db_contains(&F, "074210123456"), 0);
    s_stop();
}

static void test_fields_checked(void)
{
    PX_REQUIRE(s_start("act_fields"));
    char msg[200];
    struct {
        const char *unit, *nbh, *note;
        int stage, channel, venue, offset_s;
        int code;
        const char *prefix;
    } cases[] = {
        {"99999", "", "", COLLECTED, 1, 1, 0, 5, "unit_code: "},
        {"725", "", "", COLLECTED, 1, 1, 0, 3, "unit_code: "},
        {"25969", "25966-01", "", COLLECTED, 1, 1, 0, 3, "neighborhood_code: "},
        {"25966", "25966-99", "", COLLECTED, 1, 1, 0, 5, "neighborhood_code: "},
        {"25966", "", "", 0, 1, 1, 0, 3, "stage: must be set"},
        {"25966", "", "", 9, 1, 1, 0, 3, "stage: 9 is not a stage"},
        {"25966", "", "", COLLECTED, 0, 1, 0, 3, "channel: must be set"},
        {"25966", "", "", COLLECTED, 77, 1, 0, 3, "channel: 77 is not a channel"},
        {"25966", "", "", COLLECTED, 1, 0, 0, 3, "venue: must be set"},
        {"25966", "", "", COLLECTED, 1, 9, 0, 3, "venue: 9 is not a venue"},
        {"25966", "", "", COLLECTED, 1, 1, 86400 * 400 * 10, 3, "occurred_at: "},
        {"25966", "", "nhà 12, mật khẩu 1234", COLLECTED, 1, 1, 0, 3, "note: "},
        {"25966", "", "MẬT KHẨU: abc", COLLECTED, 1, 1, 0, 3, "note: "},
        {"25966", "", "Password is x", COLLECTED, 1, 1, 0, 3, "note: "},
        {"25966", "", "MK: 1", COLLECTED, 1, 1, 0, 3, "note: "},
        {"25966", "", "số 074090000012", COLLECTED, 1, 1, 0, 3, "note: "},
        {"25966", "25966-01", "số nhà 12/3", COLLECTED, 1, 1, 0, 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char key[16];
        snprintf(key, sizeof key, "f%zu", i);
        Phuxanh__Activation__V1__ActivationEvent *e =
            act_event(key, s_id(20 + (int)i), cases[i].unit, cases[i].stage, cases[i].offset_s);
        free(e->neighborhood_code);
        e->neighborhood_code = strdup(cases[i].nbh);
        free(e->note);
        e->note = strdup(cases[i].note);
        e->channel = cases[i].channel;
        e->venue = cases[i].venue;
        int code = act_record1(&F, e, NULL, msg, sizeof msg);
        act_event_free(e);
        if (code != cases[i].code || strncmp(msg, cases[i].prefix, strlen(cases[i].prefix))) {
            fprintf(stderr, "case %zu: code %d message \"%s\"\n", i, code, msg);
        }
        PX_CHECK_INT_EQ(code, cases[i].code);
        PX_CHECK(strncmp(msg, cases[i].prefix, strlen(cases[i].prefix)) == 0);
    }
    /* A time no Timestamp can hold is not "missing": it says what is wrong with it. */
    Phuxanh__Activation__V1__ActivationEvent *far = act_event("far", s_id(70), "25966", 1, 0);
    far->occurred_at->seconds = INT64_MAX;
    PX_CHECK_INT_EQ(act_record1(&F, far, NULL, msg, sizeof msg), 3);
    PX_CHECK(strncmp(msg, "occurred_at: not a valid time", 29) == 0);
    act_event_free(far);
    /* The good one is counted in its neighborhood too. */
    PX_CHECK_INT_EQ(s_tot("25966-01", COLLECTED), 1);
    PX_CHECK_INT_EQ(s_tot("25966", COLLECTED), 1);
    PX_CHECK_INT_EQ(act_db_contains(&F, "mật khẩu"), 0);
    /* Batch bounds: the call as a whole. */
    px_status_t st;
    PX_CHECK(act_record(&F, NULL, 0, &st) == NULL && st.code == PX_INVALID_ARGUMENT);
    Phuxanh__Activation__V1__ActivationEvent *one = act_event("big", s_id(99), "25966", 1, 0);
    Phuxanh__Activation__V1__ActivationEvent **many = calloc(1001, sizeof *many);
    for (int i = 0; i < 1001; i++) {
        many[i] = one;
    }
    PX_CHECK(act_record(&F, many, 1001, &st) == NULL && st.code == PX_INVALID_ARGUMENT);
    free(many);
    act_event_free(one);
    s_stop();
}

static void test_volunteers_and_follow_ups(void)
{
    PX_REQUIRE(s_start("act_volunteer"));
    Phuxanh__Activation__V1__ActivationEvent *ev[6];
    ev[0] = act_event("v0", s_id(30), "25966", COLLECTED, 0); /* TN0001 on duty here */
    ev[1] = act_event("v1", s_id(31), "25966", COLLECTED, 0); /* TN0002 is at 25969 */
    ev[2] = act_event("v2", s_id(32), "25966", COLLECTED, 0); /* unknown volunteer */
    ev[3] = act_event("v3", s_id(33), "25966", COLLECTED, 0); /* none */
    ev[4] = act_event("v4", s_id(34), "25966", COLLECTED, 0); /* TN0003: no duty that day */
    ev[5] = act_event("v5", s_id(35), "25966", COLLECTED, 0); /* TN0001 again */
    const char *vols[] = {"TN0001", "TN0002", "ZZ9", "", "TN0003", "TN0001"};
    for (int i = 0; i < 6; i++) {
        free(ev[i]->volunteer_code);
        ev[i]->volunteer_code = strdup(vols[i]);
    }
    ev[0]->channel = PHUXANH__ACTIVATION__V1__CHANNEL__CHANNEL_NO_PHONE;
    free(ev[0]->note);
    ev[0]->note = strdup("số 5 hẻm 3");
    ev[1]->channel = PHUXANH__ACTIVATION__V1__CHANNEL__CHANNEL_VOLUNTEER_PHONE;
    ev[5]->channel = PHUXANH__ACTIVATION__V1__CHANNEL__CHANNEL_VOLUNTEER_PHONE;
    int calls = act_roster_calls(&F.roster, "CheckDuty");
    PX_REQUIRE(calls >= 0);
    px_status_t st;
    Phuxanh__Activation__V1__RecordEventsResponse *r = act_record(&F, ev, 6, &st);
    PX_REQUIRE(r);
    /* One call for the whole batch, however many volunteers it names. */
    PX_CHECK_INT_EQ(act_roster_calls_wait(&F.roster, "CheckDuty", calls + 1), calls + 1);
    PX_CHECK_INT_EQ(r->results[0]->code, 0);
    PX_CHECK(r->results[0]->volunteer_verified);
    /* Not on duty there that day (the roster says so): refused, and why. */
    PX_CHECK_INT_EQ(r->results[1]->code, 9);
    PX_CHECK(strstr(r->results[1]->message, "volunteer_code: \"TN0002\" was not on duty at "
                                            "\"25966\" on 2023-07-29 (assigned to another "
                                            "ward that day)") == r->results[1]->message);
    PX_CHECK(!r->results[1]->volunteer_verified);
    PX_CHECK_INT_EQ(r->results[4]->code, 9);
    PX_CHECK(strstr(r->results[4]->message, "not assigned that day") != NULL);
    PX_CHECK_INT_EQ(r->results[5]->code, 0);
    PX_CHECK(r->results[5]->volunteer_verified);
    PX_CHECK_INT_EQ(r->refused, 3);
    PX_CHECK_INT_EQ(r->results[2]->code, 5);
    PX_CHECK(strncmp(r->results[2]->message, "volunteer_code: ", 16) == 0);
    PX_CHECK_INT_EQ(r->results[3]->code, 0);
    PX_CHECK(r->results[3]->volunteer_verified);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* Nothing of a refused event is stored. */
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events WHERE idempotency_key IN "
                                    "('v1', 'v2', 'v4')"),
                    0);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM follow_ups WHERE kind = 1 AND "
                                    "note = 'số 5 hẻm 3' AND volunteer_code = 'TN0001'"),
                    1);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM follow_ups WHERE kind = 2"), 1);
    PX_CHECK_INT_EQ(s_tot("25966", 101), 2);
    PX_CHECK_INT_EQ(s_tot("74", 101), 2);
    /* Once per citizen: a second no-phone event opens nothing new. */
    free(ev[0]->idempotency_key);
    ev[0]->idempotency_key = strdup("v0b");
    ev[0]->stage = APPROVED;
    PX_CHECK_INT_EQ(act_record1(&F, ev[0], NULL, NULL, 0), 0);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM follow_ups"), 2);
    PX_CHECK_INT_EQ(s_tot("25966", 101), 2);
    /* Progress shows them. */
    Phuxanh__Activation__V1__GetProgressResponse *p = act_progress(&F, C, "25966", &st);
    PX_REQUIRE(p && p->unit);
    PX_CHECK_INT_EQ(p->unit->follow_ups_open, 2);
    PX_CHECK_INT_EQ(p->unit->approved_not_activated, 1);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    for (int i = 0; i < 6; i++) {
        act_event_free(ev[i]);
    }
    s_stop();
}

static void test_rollups_targets_progress(void)
{
    PX_REQUIRE(s_start("act_rollup"));
    /* 25966: 3 activated, 1 approved; 25969: 1 activated; 25747 (other district): 2 collected */
    int id = 40;
    const struct {
        const char *unit;
        int stage, n;
    } plan[] = {{"25966", ACTIVATED, 3},
                {"25966", APPROVED, 1},
                {"25969", ACTIVATED, 1},
                {"25747", COLLECTED, 2},
                {"25975", REJECTED, 1}};
    for (size_t p = 0; p < sizeof plan / sizeof plan[0]; p++) {
        for (int i = 0; i < plan[p].n; i++) {
            char key[16];
            snprintf(key, sizeof key, "ru%d", id);
            PX_CHECK_INT_EQ(s_rec(key, id++, plan[p].unit, plan[p].stage, NULL, NULL), 0);
        }
    }
    /* District rows equal the sum of their wards', province the sum of its districts'. */
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM totals p WHERE p.unit_code IN ('725', "
                                    "'718', '74') AND p.count <> (SELECT coalesce(sum(c.count), 0) "
                                    "FROM totals c JOIN units u ON u.code = c.unit_code WHERE "
                                    "u.parent_code = p.unit_code AND c.stage = p.stage AND "
                                    "c.campaign_id = p.campaign_id)"),
                    0);
    PX_CHECK_INT_EQ(s_tot("725", ACTIVATED), 4);
    PX_CHECK_INT_EQ(s_tot("74", COLLECTED), 8);

    Phuxanh__Activation__V1__Target t1 = PHUXANH__ACTIVATION__V1__TARGET__INIT,
                                    t2 = PHUXANH__ACTIVATION__V1__TARGET__INIT,
                                    t3 = PHUXANH__ACTIVATION__V1__TARGET__INIT;
    t1.campaign_id = t2.campaign_id = t3.campaign_id = C;
    t1.unit_code = "25966", t1.target = 3;
    t2.unit_code = "25969", t2.target = 5;
    t3.unit_code = "25747", t3.target = 10;
    Phuxanh__Activation__V1__Target *ts[] = {&t1, &t2, &t3};
    Phuxanh__Activation__V1__SetTargetsRequest req =
        PHUXANH__ACTIVATION__V1__SET_TARGETS_REQUEST__INIT;
    req.targets = ts;
    req.n_targets = 3;
    ProtobufCMessage *reply = NULL;
    px_status_t st;
    PX_REQUIRE(act_call(&F, "SetTargets", &req.base,
                        &phuxanh__activation__v1__set_targets_response__descriptor, &reply,
                        &st) == PX_OK);
    Phuxanh__Activation__V1__SetTargetsResponse *sr = (void *)reply;
    PX_CHECK(sr->committed);
    PX_CHECK_INT_EQ(sr->inserted, 3);
    protobuf_c_message_free_unpacked(reply, NULL);
    /* Again, one changed, and an unknown unit: all or nothing. */
    t2.target = 2;
    PX_REQUIRE(act_call(&F, "SetTargets", &req.base,
                        &phuxanh__activation__v1__set_targets_response__descriptor, &reply,
                        &st) == PX_OK);
    sr = (void *)reply;
    PX_CHECK(sr->committed);
    PX_CHECK_INT_EQ(sr->inserted, 0);
    PX_CHECK_INT_EQ(sr->updated, 1);
    PX_CHECK_INT_EQ(sr->unchanged, 2);
    protobuf_c_message_free_unpacked(reply, NULL);
    t3.unit_code = "00000";
    PX_REQUIRE(act_call(&F, "SetTargets", &req.base,
                        &phuxanh__activation__v1__set_targets_response__descriptor, &reply,
                        &st) == PX_OK);
    sr = (void *)reply;
    PX_CHECK(!sr->committed);
    PX_CHECK_INT_EQ(sr->n_errors, 1);
    PX_CHECK(sr->n_errors == 1 && sr->errors[0]->index == 2 && sr->errors[0]->code == 5);
    protobuf_c_message_free_unpacked(reply, NULL);

    Phuxanh__Activation__V1__GetProgressResponse *p = act_progress(&F, C, "74", &st);
    PX_REQUIRE(p && p->unit);
    PX_CHECK_STR_EQ(p->unit->unit_name, "Bình Dương");
    PX_CHECK_INT_EQ(p->unit->target, 15); /* 3 + 2 + 10, no targets of its own */
    PX_CHECK_INT_EQ(p->unit->activated, 4);
    PX_CHECK_INT_EQ(p->unit->collected, 8);
    PX_CHECK_INT_EQ(p->unit->rejected, 1);
    PX_CHECK_INT_EQ(p->n_children, 2);
    if (p->n_children == 2) {
        PX_CHECK_STR_EQ(p->children[0]->unit_code, "718");
        PX_CHECK_STR_EQ(p->children[1]->unit_code, "725");
        PX_CHECK_INT_EQ(p->children[1]->target, 5);
        PX_CHECK_INT_EQ(p->children[1]->activated, 4);
        PX_CHECK(!p->children[1]->green); /* 4 of 5 */
    }
    protobuf_c_message_free_unpacked(&p->base, NULL);
    p = act_progress(&F, C, "725", &st);
    PX_REQUIRE(p && p->unit);
    PX_CHECK_INT_EQ(p->n_children, 3);
    if (p->n_children == 3) {
        Phuxanh__Activation__V1__ProgressRow *lt = p->children[0];
        PX_CHECK_STR_EQ(lt->unit_code, "25966");
        PX_CHECK_STR_EQ(lt->unit_name, "Lái Thiêu");
        PX_CHECK_INT_EQ(lt->target, 3);
        PX_CHECK_INT_EQ(lt->activated, 3);
        PX_CHECK_INT_EQ(lt->approved, 4);
        PX_CHECK_INT_EQ(lt->approved_not_activated, 1);
        PX_CHECK(lt->green);
        PX_CHECK(lt->percent > 99.9 && lt->percent < 100.1);
        PX_CHECK(lt->activation_rate > 74.9 && lt->activation_rate < 75.1);
        PX_CHECK(!p->children[1]->green);
    }
    protobuf_c_message_free_unpacked(&p->base, NULL);
    /* A ward's children are its neighborhoods. */
    p = act_progress(&F, C, "25966", &st);
    PX_REQUIRE(p && p->unit);
    PX_CHECK_INT_EQ(p->n_children, 2);
    if (p->n_children == 2) {
        PX_CHECK_STR_EQ(p->children[0]->unit_code, "25966-01");
        PX_CHECK_STR_EQ(p->children[1]->unit_name, "Đông Tư");
        PX_CHECK_INT_EQ(p->children[0]->target, 0);
        PX_CHECK(!p->children[0]->green);
    }
    protobuf_c_message_free_unpacked(&p->base, NULL);
    PX_CHECK(act_progress(&F, C, "12345", &st) == NULL && st.code == PX_NOT_FOUND);
    /* validate_only counts and writes nothing; 0 removes a target. */
    t3.unit_code = "25747";
    t3.target = 0;
    req.validate_only = true;
    PX_REQUIRE(act_call(&F, "SetTargets", &req.base,
                        &phuxanh__activation__v1__set_targets_response__descriptor, &reply,
                        &st) == PX_OK);
    sr = (void *)reply;
    PX_CHECK(!sr->committed);
    PX_CHECK_INT_EQ(sr->updated, 1);
    protobuf_c_message_free_unpacked(reply, NULL);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT target FROM targets WHERE unit_code = '25747'"), 10);
    req.validate_only = false;
    PX_REQUIRE(act_call(&F, "SetTargets", &req.base,
                        &phuxanh__activation__v1__set_targets_response__descriptor, &reply,
                        &st) == PX_OK);
    sr = (void *)reply;
    PX_CHECK(sr->committed);
    protobuf_c_message_free_unpacked(reply, NULL);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM targets WHERE unit_code = '25747'"), 0);
    s_stop();
}

static const px_test_case_t s_cases[] = {
    {"repeat_counts_once", test_repeat_counts_once},
    {"later_stage_implies_earlier", test_later_stage_implies_earlier},
    {"out_of_order_then_forward", test_out_of_order_then_forward},
    {"same_citizen_two_wards", test_same_citizen_two_wards},
    {"rejection_then_new_application", test_rejection_then_new_application},
    {"rejected_after_activated_refused", test_rejected_after_activated_refused},
    {"idempotency_key", test_idempotency_key},
    {"consent_required", test_consent_required},
    {"citizen_id_checks_over_the_wire", test_citizen_id_checks_over_the_wire},
    {"fields_checked", test_fields_checked},
    {"volunteers_and_follow_ups", test_volunteers_and_follow_ups},
    {"rollups_targets_progress", test_rollups_targets_progress},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
