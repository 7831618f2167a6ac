/*
 * test_act_forget.c - one person's record: GetCitizenStatus answers the stages reached (with
 * times, implied stages and cycles), the unit and the follow-ups, audited, NOT_FOUND for an
 * unknown person; ForgetCitizen removes every link to the person (citizen row, follow-ups,
 * keys and notes in events) while every count stays, and answers forgotten=false the second
 * time. The ID number never shows in an answer, the database or the log.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_fixture.h"
#include "px_test.h"

#define C "tn-2023"
#define ID1 "074090000001"

static act_fixture_t F;

static int s_rec(const char *key, int n, const char *nbh, int stage, int channel,
                 const char *volunteer, const char *note, int offset_s)
{
    char id[16];
    snprintf(id, sizeof id, "074090%06d", n);
    Phuxanh__Activation__V1__ActivationEvent *e = act_event(key, id, "25966", stage, offset_s);
    free(e->volunteer_code);
    free(e->neighborhood_code);
    free(e->note);
    e->volunteer_code = strdup(volunteer);
    e->neighborhood_code = strdup(nbh);
    e->note = strdup(note);
    e->channel = channel;
    int code = act_record1(&F, e, NULL, NULL, 0);
    act_event_free(e);
    return code;
}

static bool s_load(void)
{
    int bad = 0;
    bad += s_rec("f1", 1, "25966-01", 1, 3, "TN0001", "nhà 7", 1) != 0; /* no phone */
    bad += s_rec("f2", 1, "", 2, 1, "", "", 2) != 0;
    bad += s_rec("f3", 1, "25966-01", 3, 1, "TN0001", "", 3) != 0;
    bad += s_rec("f4", 1, "", 3, 1, "", "", 4) != 0; /* a repeat */
    bad += s_rec("g1", 2, "", 3, 1, "", "", 5) != 0;
    bad += s_rec("h1", 3, "", 1, 1, "", "", 6) != 0;
    bad += s_rec("h2", 3, "", 4, 1, "", "", 7) != 0;
    bad += s_rec("h3", 3, "", 1, 1, "", "", 8) != 0; /* a new application */
    return bad == 0;
}

static px_code_t s_status(const char *id, Phuxanh__Activation__V1__GetCitizenStatusResponse **out,
                          px_status_t *st)
{
    Phuxanh__Activation__V1__GetCitizenStatusRequest req =
        PHUXANH__ACTIVATION__V1__GET_CITIZEN_STATUS_REQUEST__INIT;
    req.campaign_id = C;
    req.citizen_id = (char *)id;
    ProtobufCMessage *reply = NULL;
    px_code_t code =
        act_call(&F, "GetCitizenStatus", &req.base,
                 &phuxanh__activation__v1__get_citizen_status_response__descriptor, &reply, st);
    *out = (Phuxanh__Activation__V1__GetCitizenStatusResponse *)reply;
    return code;
}

static px_code_t s_forget(const char *campaign, const char *id, bool *forgotten, px_status_t *st)
{
    Phuxanh__Activation__V1__ForgetCitizenRequest req =
        PHUXANH__ACTIVATION__V1__FORGET_CITIZEN_REQUEST__INIT;
    req.campaign_id = (char *)campaign;
    req.citizen_id = (char *)id;
    ProtobufCMessage *reply = NULL;
    px_code_t code =
        act_call(&F, "ForgetCitizen", &req.base,
                 &phuxanh__activation__v1__forget_citizen_response__descriptor, &reply, st);
    if (code == PX_OK) {
        *forgotten = ((Phuxanh__Activation__V1__ForgetCitizenResponse *)reply)->forgotten;
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    return code;
}

static void test_status(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_cit_status") == 0);
    PX_REQUIRE(s_load());
    px_status_t st;
    Phuxanh__Activation__V1__GetCitizenStatusResponse *r = NULL;
    PX_REQUIRE(s_status(ID1, &r, &st) == PX_OK);
    PX_CHECK_STR_EQ(r->citizen_id_last3, "001");
    PX_CHECK_STR_EQ(r->unit_code, "25966");
    PX_CHECK_STR_EQ(r->neighborhood_code, "25966-01");
    PX_CHECK_INT_EQ(r->current_stage, 3);
    PX_CHECK_INT_EQ(r->n_stages, 3);
    if (r->n_stages == 3) {
        PX_CHECK(r->stages[0]->stage == 1 && !r->stages[0]->implied && r->stages[0]->cycle == 1);
        PX_CHECK_INT_EQ(r->stages[0]->channel, 3);
        PX_CHECK_STR_EQ(r->stages[0]->volunteer_code, "TN0001");
        PX_CHECK(r->stages[0]->volunteer_verified);
        PX_CHECK_INT_EQ(r->stages[0]->reached_at->seconds, ACT_T_DAY_US / 1000000 + 1);
        PX_CHECK(r->stages[1]->stage == 2 && !r->stages[1]->implied);
        PX_CHECK(r->stages[2]->stage == 3 &&
                 r->stages[2]->reached_at->seconds == ACT_T_DAY_US / 1000000 + 3);
    }
    PX_CHECK_INT_EQ(r->n_follow_ups, 1);
    if (r->n_follow_ups == 1) {
        PX_CHECK_STR_EQ(r->follow_ups[0]->note, "nhà 7");
        PX_CHECK(!r->follow_ups[0]->resolved_at);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* Implied stages. */
    PX_REQUIRE(s_status("074090000002", &r, &st) == PX_OK);
    PX_CHECK_INT_EQ(r->n_stages, 3);
    if (r->n_stages == 3) {
        PX_CHECK(r->stages[0]->stage == 1 && r->stages[0]->implied);
        PX_CHECK(r->stages[1]->stage == 2 && r->stages[1]->implied);
        PX_CHECK(r->stages[2]->stage == 3 && !r->stages[2]->implied);
        PX_CHECK_INT_EQ(r->stages[0]->reached_at->seconds, ACT_T_DAY_US / 1000000 + 5);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* A rejection, then a new application: the next cycle. */
    PX_REQUIRE(s_status("074090000003", &r, &st) == PX_OK);
    PX_CHECK_INT_EQ(r->current_stage, 1);
    PX_CHECK_INT_EQ(r->n_stages, 3);
    if (r->n_stages == 3) {
        PX_CHECK(r->stages[0]->stage == 1 && r->stages[0]->cycle == 1);
        PX_CHECK(r->stages[1]->stage == 4 && r->stages[1]->cycle == 1);
        PX_CHECK(r->stages[2]->stage == 1 && r->stages[2]->cycle == 2);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM audit WHERE method LIKE "
                                    "'%GetCitizenStatus' AND caller = 'activation-test' AND "
                                    "request_id <> ''"),
                    3);
    /* Unknown: NOT_FOUND, and the attempt is audited too. */
    PX_CHECK(s_status("074090000099", &r, &st) == PX_NOT_FOUND &&
             strstr(st.message, "citizen_id") && !strstr(st.message, "074090000099"));
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM audit WHERE method LIKE "
                                    "'%GetCitizenStatus'"),
                    4);
    /* Malformed: INVALID_ARGUMENT naming the field, never echoing it. */
    const char *bad[] = {"123", "07409000000x", "999090000001", "0740900000011"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        PX_CHECK(s_status(bad[i], &r, &st) == PX_INVALID_ARGUMENT &&
                 strstr(st.message, "citizen_id") && !strstr(st.message, bad[i]));
    }
    /* Born this year: too young for an account, refused against the current year. */
    PX_CHECK(s_status("074226000001", &r, &st) == PX_INVALID_ARGUMENT);
    PX_CHECK_INT_EQ(act_file_contains(F.log_path, ID1), 0);
    PX_CHECK_INT_EQ(act_db_contains(&F, ID1), 0);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static long long s_sum(const char *sql)
{
    return act_sql_int(&F, sql);
}

static void test_forget(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_cit_forget") == 0);
    PX_REQUIRE(s_load());
    px_status_t st;
    char keyhex[80] = "";
    PGconn *c = PQconnectdb(F.db_url);
    PGresult *k = PQexec(c, "SELECT encode(citizen_key, 'hex') FROM citizens WHERE last3 = '001'");
    if (PQresultStatus(k) == PGRES_TUPLES_OK && PQntuples(k) == 1) {
        snprintf(keyhex, sizeof keyhex, "%s", PQgetvalue(k, 0, 0));
    }
    PQclear(k);
    PQfinish(c);
    PX_REQUIRE(strlen(keyhex) == 64);
    PX_CHECK_INT_EQ(act_db_contains(&F, keyhex), 1);
    long long stages = s_sum("SELECT sum(count) FROM totals WHERE stage <> 101");
    long long daily = s_sum("SELECT sum(count) FROM daily");
    long long fu_ward = act_total(&F, C, "25966", 101);
    long long events = s_sum("SELECT count(*) FROM events");
    PX_CHECK_INT_EQ(fu_ward, 1);
    bool forgotten = false;
    PX_REQUIRE(s_forget(C, ID1, &forgotten, &st) == PX_OK);
    PX_CHECK(forgotten);
    /* Counts stay; the open follow-up left its counters with the list. */
    PX_CHECK_INT_EQ(s_sum("SELECT sum(count) FROM totals WHERE stage <> 101"), stages);
    PX_CHECK_INT_EQ(s_sum("SELECT sum(count) FROM daily"), daily);
    PX_CHECK_INT_EQ(act_total(&F, C, "25966", 3), 2);
    PX_CHECK_INT_EQ(act_total(&F, C, "25966", 101), 0);
    PX_CHECK_INT_EQ(act_total(&F, C, "25966-01", 101), 0);
    PX_CHECK_INT_EQ(act_total(&F, C, "74", 101), 0);
    /* No link left: the key nowhere, the events kept without key or note. */
    PX_CHECK_INT_EQ(act_db_contains(&F, keyhex), 0);
    PX_CHECK_INT_EQ(s_sum("SELECT count(*) FROM events"), events);
    PX_CHECK_INT_EQ(s_sum("SELECT count(*) FROM events WHERE citizen_key IS NULL"), 4);
    PX_CHECK_INT_EQ(s_sum("SELECT count(*) FROM events WHERE note <> ''"), 0);
    PX_CHECK_INT_EQ(s_sum("SELECT count(*) FROM citizens WHERE last3 = '001'"), 0);
    PX_CHECK_INT_EQ(s_sum("SELECT count(*) FROM follow_ups"), 0);
    Phuxanh__Activation__V1__GetCitizenStatusResponse *r = NULL;
    PX_CHECK(s_status(ID1, &r, &st) == PX_NOT_FOUND);
    /* The others untouched. */
    PX_REQUIRE(s_status("074090000002", &r, &st) == PX_OK);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* Idempotent. */
    PX_REQUIRE(s_forget(C, ID1, &forgotten, &st) == PX_OK);
    PX_CHECK(!forgotten);
    PX_CHECK_INT_EQ(s_sum("SELECT sum(count) FROM totals WHERE stage <> 101"), stages);
    PX_CHECK_INT_EQ(s_sum("SELECT count(*) FROM audit WHERE method LIKE '%ForgetCitizen' AND "
                          "caller = 'activation-test'"),
                    2);
    /* Refusals. */
    PX_CHECK(s_forget(C, "12345", &forgotten, &st) == PX_INVALID_ARGUMENT &&
             strstr(st.message, "citizen_id"));
    PX_CHECK(s_forget("", ID1, &forgotten, &st) == PX_INVALID_ARGUMENT &&
             strstr(st.message, "campaign_id"));
    PX_CHECK_INT_EQ(act_file_contains(F.log_path, ID1), 0);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static const px_test_case_t s_cases[] = {
    {"status", test_status},
    {"forget", test_forget},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
