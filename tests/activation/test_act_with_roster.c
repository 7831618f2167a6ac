/*
 * test_act_with_roster.c - px-activation and px-roster end to end, on the fixture's data: units
 * come from the roster (an unknown one refused NOT_FOUND, a district refused as not a ward) and
 * the service's copy of the tree names progress; campaigns come from the roster too (an unknown
 * one refused NOT_FOUND, a known one's days kept locally); a volunteer the roster says was not
 * on duty there is refused FAILED_PRECONDITION; with the roster killed, events are still taken
 * unverified, and once it is started again on the same endpoint the background pass verifies
 * them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_fixture.h"
#include "phuxanh/clock.h"
#include "px_test.h"

static long long s_wait(act_fixture_t *f, const char *sql, long long want)
{
    long long got = -1;
    for (int i = 0; i < 150 && got != want; i++) {
        got = act_sql_int(f, sql);
        if (got != want) {
            px_sleep_us(100000);
        }
    }
    return got;
}

static void test_real_roster_units(void)
{
    act_fixture_t f;
    PX_REQUIRE(act_fixture_start(&f, "act_real_units") == 0);
    char msg[200];
    Phuxanh__Activation__V1__ActivationEvent *e = act_event("u1", "074090000901", "25966", 3, 0);
    PX_CHECK_INT_EQ(act_record1(&f, e, NULL, NULL, 0), 0);
    act_event_free(e);
    e = act_event("u2", "074090000902", "99999", 1, 0);
    PX_CHECK_INT_EQ(act_record1(&f, e, NULL, msg, sizeof msg), 5);
    act_event_free(e);
    e = act_event("u3", "074090000903", "725", 1, 0);
    PX_CHECK_INT_EQ(act_record1(&f, e, NULL, msg, sizeof msg), 3);
    act_event_free(e);
    PX_CHECK_INT_EQ(act_total(&f, "tn-2023", "74", 3), 1);
    /* The background pass reads the whole tree (ListUnits); progress names come from it. */
    PX_CHECK_INT_EQ(s_wait(&f, "SELECT count(*) FROM units", 9), 9);
    px_status_t st;
    Phuxanh__Activation__V1__GetProgressResponse *p = act_progress(&f, "tn-2023", "725", &st);
    PX_REQUIRE(p && p->unit);
    PX_CHECK_STR_EQ(p->unit->unit_name, "Thuận An");
    PX_CHECK_INT_EQ(p->unit->activated, 1);
    PX_CHECK_INT_EQ(p->n_children, 3); /* 25966, 25969, 25975 */
    protobuf_c_message_free_unpacked(&p->base, NULL);
    PX_CHECK_INT_EQ(act_fixture_stop(&f), 0);
}

static void test_real_roster_units_duty_and_outage(void)
{
    act_fixture_t f;
    PX_REQUIRE(act_fixture_start(&f, "act_real") == 0);
    const char *vols[] = {"TN0001", "TN0002"};
    Phuxanh__Activation__V1__ActivationEvent *ev[2];
    for (int i = 0; i < 2; i++) {
        char key[8], id[16];
        snprintf(key, sizeof key, "a%d", i);
        snprintf(id, sizeof id, "07409000%04d", i);
        ev[i] = act_event(key, id, "25966", 1, 0);
        free(ev[i]->volunteer_code);
        ev[i]->volunteer_code = strdup(vols[i]);
    }
    px_status_t st;
    Phuxanh__Activation__V1__RecordEventsResponse *r = act_record(&f, ev, 2, &st);
    PX_REQUIRE(r);
    PX_CHECK_INT_EQ(r->results[0]->code, 0);
    PX_CHECK(r->results[0]->volunteer_verified);
    PX_CHECK_INT_EQ(r->results[1]->code, 9); /* TN0002 was at another ward */
    PX_CHECK(strstr(r->results[1]->message, "another ward") != NULL);
    PX_CHECK(!r->results[1]->volunteer_verified);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    PX_CHECK_INT_EQ(act_total(&f, "tn-2023", "74", 1), 1);

    /* The roster killed: events for a known unit are taken, unverified. */
    act_roster_stop(&f.roster);
    Phuxanh__Activation__V1__ActivationEvent *e = act_event("a2", "074090001000", "25966", 2, 0);
    free(e->volunteer_code);
    e->volunteer_code = strdup("TN0001");
    bool dup = true;
    PX_CHECK_INT_EQ(act_record1(&f, e, &dup, NULL, 0), 0);
    PX_CHECK_INT_EQ(act_sql_int(&f, "SELECT count(*) FROM events WHERE idempotency_key = 'a2' "
                                    "AND NOT volunteer_verified AND duty_verdict = 0"),
                    1);
    /* Started again on the same endpoint: verified in the background. */
    PX_REQUIRE(act_roster_start(&f.roster) == 0);
    long long got = -1;
    for (int i = 0; i < 150 && got != 1; i++) {
        got = act_sql_int(&f, "SELECT count(*) FROM events WHERE idempotency_key = 'a2' AND "
                              "volunteer_verified");
        px_sleep_us(100000);
    }
    PX_CHECK_INT_EQ(got, 1);
    act_event_free(e);
    for (int i = 0; i < 2; i++) {
        act_event_free(ev[i]);
    }
    PX_CHECK_INT_EQ(act_fixture_stop(&f), 0);
}

static void test_real_roster_campaigns(void)
{
    act_fixture_t f;
    PX_REQUIRE(act_fixture_start(&f, "act_real_camp") == 0);
    char msg[200] = "";
    Phuxanh__Activation__V1__ActivationEvent *e = act_event("c1", "074090000951", "25966", 1, 0);
    free(e->campaign_id);
    e->campaign_id = strdup("tn-khong-co");
    PX_CHECK_INT_EQ(act_record1(&f, e, NULL, msg, sizeof msg), 5);
    PX_CHECK_STR_EQ(msg, "campaign_id: no campaign \"tn-khong-co\"");
    PX_CHECK_INT_EQ(act_sql_int(&f, "SELECT count(*) FROM events"), 0);
    free(e->campaign_id);
    e->campaign_id = strdup("tn-2023");
    PX_CHECK_INT_EQ(act_record1(&f, e, NULL, NULL, 0), 0);
    act_event_free(e);
    /* The campaign's days are kept locally (the retention pass counts from its last day). */
    PX_CHECK_INT_EQ(act_sql_int(&f, "SELECT count(*) FROM campaigns WHERE id = 'tn-2023' AND "
                                    "ends_on = '2023-08-27'"),
                    1);
    px_status_t st;
    Phuxanh__Activation__V1__GetProgressResponse *p = act_progress(&f, "tn-khong-co", "725", &st);
    PX_CHECK(p == NULL && st.code == PX_NOT_FOUND && strstr(st.message, "campaign_id") != NULL);
    if (p) {
        protobuf_c_message_free_unpacked(&p->base, NULL);
    }
    PX_CHECK_INT_EQ(act_fixture_stop(&f), 0);
}

/* One event of tn-2023 on the test day with a volunteer; returns its result code, its
 * message in msg and whether its duty was verified in *verified. */
static int s_duty_event(act_fixture_t *f, const char *key, const char *id, const char *campaign,
                        const char *ward, const char *nbh, const char *volunteer, bool *verified,
                        char *msg, size_t cap)
{
    Phuxanh__Activation__V1__ActivationEvent *e = act_event(key, id, ward, 1, 0);
    free(e->campaign_id);
    free(e->neighborhood_code);
    free(e->volunteer_code);
    e->campaign_id = strdup(campaign);
    e->neighborhood_code = strdup(nbh);
    e->volunteer_code = strdup(volunteer);
    px_status_t st;
    Phuxanh__Activation__V1__RecordEventsResponse *r = act_record(f, &e, 1, &st);
    int code = -1;
    if (r && r->n_results == 1) {
        code = r->results[0]->code;
        *verified = r->results[0]->volunteer_verified;
        snprintf(msg, cap, "%s", r->results[0]->message);
    }
    if (r) {
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    act_event_free(e);
    return code;
}

/* The duty rule as the real roster decides it: a neighborhood of the assigned ward is on
 * duty; the assignment belongs to its campaign; a volunteer the roster marked as a no-show
 * (through its own MarkNoShow) was not on duty. */
static void test_real_roster_duty_rules(void)
{
    act_fixture_t f;
    PX_REQUIRE(act_fixture_start(&f, "act_real_rules") == 0);
    bool verified = false;
    char msg[200] = "";
    PX_CHECK_INT_EQ(s_duty_event(&f, "r1", "074090000961", "tn-2023", "25966", "25966-01", "TN0001",
                                 &verified, msg, sizeof msg),
                    0);
    PX_CHECK(verified);
    PX_CHECK_INT_EQ(s_duty_event(&f, "r2", "074090000962", "tn-now", "25966", "", "TN0001",
                                 &verified, msg, sizeof msg),
                    9);
    PX_CHECK(strstr(msg, "not assigned that day") != NULL);
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = "activation-test"};
    px_rpc_client_t *roster = px_rpc_client_new(f.roster.endpoint, &o, &st);
    PX_REQUIRE(roster);
    Phuxanh__Roster__V1__MarkNoShowRequest ns = PHUXANH__ROSTER__V1__MARK_NO_SHOW_REQUEST__INIT;
    ns.campaign_id = "tn-2023";
    ns.day = "2023-07-29";
    ns.volunteer_code = "TN0002";
    ProtobufCMessage *reply = NULL;
    px_rpc_call_opts_t co = {.timeout_ms = 10000};
    PX_CHECK_INT_EQ(px_rpc_client_call(
                        roster, "/phuxanh.roster.v1.RosterService/MarkNoShow", &ns.base,
                        &phuxanh__roster__v1__mark_no_show_response__descriptor, &reply, &co, &st),
                    PX_OK);
    if (reply) {
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    px_rpc_client_destroy(&roster);
    PX_CHECK_INT_EQ(s_duty_event(&f, "r3", "074090000963", "tn-2023", "25969", "", "TN0002",
                                 &verified, msg, sizeof msg),
                    9);
    PX_CHECK(strstr(msg, "no-show") != NULL);
    PX_CHECK(!verified);
    PX_CHECK_INT_EQ(act_sql_int(&f, "SELECT count(*) FROM events"), 1);
    PX_CHECK_INT_EQ(act_fixture_stop(&f), 0);
}

static const px_test_case_t s_cases[] = {
    {"real_roster_duty_rules", test_real_roster_duty_rules},
    {"real_roster_units", test_real_roster_units},
    {"real_roster_campaigns", test_real_roster_campaigns},
    {"real_roster_units_duty_and_outage", test_real_roster_units_duty_and_outage},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
