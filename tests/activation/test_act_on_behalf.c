/*
 * test_act_on_behalf.c - whom a caller acts for (x-on-behalf-of) in the activation service:
 * only the person readers (--person-readers, here activation-test and gateway) may send it,
 * anyone else is refused PERMISSION_DENIED and nothing is written; from the gateway, audit rows
 * keep both the caller and whom it acted for - a person-level read (ListFollowUps,
 * GetCitizenStatus), RecordEvents, and a resolved follow-up; and the calls the service makes
 * to the roster for it carry it on (the roster trusts "activation" for that by default and logs
 * it with each call).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_fixture.h"
#include "phuxanh/clock.h"
#include "px_test.h"

#define SVC "/phuxanh.activation.v1.ActivationService/"
#define PERSON "Trần Thị Bình (tn-admin)"
#define NO_PHONE PHUXANH__ACTIVATION__V1__CHANNEL__CHANNEL_NO_PHONE

static act_fixture_t F;

/* A call as `caller`, acting for obo (NULL: nobody), with request id rid (NULL: a new one). */
static px_code_t s_call_as(const char *caller, const char *obo, const char *rid, const char *method,
                           const ProtobufCMessage *req, const ProtobufCMessageDescriptor *type,
                           ProtobufCMessage **reply, px_status_t *st)
{
    px_rpc_client_opts_t co = {.caller = caller};
    px_rpc_client_t *c = px_rpc_client_new(F.proc.endpoint, &co, st);
    if (!c) {
        return st->code;
    }
    px_md_t *md = px_md_new();
    if (obo) {
        px_md_set(md, PX_MD_ON_BEHALF_OF, obo);
    }
    if (rid) {
        px_md_set(md, PX_MD_REQUEST_ID, rid);
    }
    char full[128];
    snprintf(full, sizeof full, SVC "%s", method);
    px_rpc_call_opts_t o = {.timeout_ms = 30000, .metadata = md};
    ProtobufCMessage *r = NULL;
    px_code_t code = px_rpc_client_call(c, full, req, type, &r, &o, st);
    if (reply) {
        *reply = r;
    } else if (r) {
        protobuf_c_message_free_unpacked(r, NULL);
    }
    px_md_destroy(&md);
    px_rpc_client_destroy(&c);
    return code;
}

static Phuxanh__Activation__V1__ActivationEvent *s_event(const char *key, int n, int channel,
                                                         const char *volunteer)
{
    char id[16];
    snprintf(id, sizeof id, "074090%06d", n);
    Phuxanh__Activation__V1__ActivationEvent *e = act_event(key, id, "25966", 2, n);
    e->channel = channel;
    free(e->volunteer_code);
    e->volunteer_code = strdup(volunteer);
    return e;
}

static px_code_t s_record_as(const char *caller, const char *obo, const char *rid,
                             Phuxanh__Activation__V1__ActivationEvent *e, px_status_t *st)
{
    Phuxanh__Activation__V1__RecordEventsRequest req =
        PHUXANH__ACTIVATION__V1__RECORD_EVENTS_REQUEST__INIT;
    req.n_events = 1;
    req.events = &e;
    ProtobufCMessage *reply = NULL;
    px_code_t code =
        s_call_as(caller, obo, rid, "RecordEvents", &req.base,
                  &phuxanh__activation__v1__record_events_response__descriptor, &reply, st);
    if (code == PX_OK) {
        Phuxanh__Activation__V1__RecordEventsResponse *r =
            (Phuxanh__Activation__V1__RecordEventsResponse *)reply;
        if (r->n_results != 1 || r->results[0]->code != 0) {
            code = PX_UNKNOWN;
            px_status_set(st, code, "event refused: %s",
                          r->n_results == 1 ? r->results[0]->message : "no result");
        }
    }
    if (reply) {
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    return code;
}

static long long s_audits(void)
{
    return act_sql_int(&F, "SELECT count(*) FROM audit");
}

static void test_untrusted_caller_refused_nothing_written(void)
{
    long long audits = s_audits();
    long long events = act_sql_int(&F, "SELECT count(*) FROM events");
    px_status_t st;
    /* A person-level read by a caller that is not a person reader, claiming a person. */
    Phuxanh__Activation__V1__ListFollowUpsRequest list =
        PHUXANH__ACTIVATION__V1__LIST_FOLLOW_UPS_REQUEST__INIT;
    list.campaign_id = "tn-2023";
    list.unit_code = "725";
    PX_CHECK_INT_EQ(s_call_as("dashboard", PERSON, NULL, "ListFollowUps", &list.base,
                              &phuxanh__activation__v1__list_follow_ups_response__descriptor, NULL,
                              &st),
                    PX_PERMISSION_DENIED);
    PX_CHECK_STR_EQ(st.message, "caller \"dashboard\" may not act on behalf of others");
    /* A write, which any caller may make - but not while claiming to act for someone. */
    Phuxanh__Activation__V1__ActivationEvent *e = s_event("obo-refused", 1, NO_PHONE, "");
    PX_CHECK_INT_EQ(s_record_as("recorder-app", PERSON, NULL, e, &st), PX_PERMISSION_DENIED);
    PX_CHECK_INT_EQ(s_audits(), audits);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events"), events);
    /* The same write without the claim goes through (the caller was refused for the claim
     * only). */
    PX_CHECK_INT_EQ(s_record_as("recorder-app", NULL, NULL, e, &st), PX_OK);
    act_event_free(e);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events"), events + 1);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM audit WHERE caller = 'recorder-app' "
                                    "AND on_behalf_of = ''"),
                    1);
}

/* The roster's RPC-CALL line for method with request id rid, or "" (within 5 s). */
static void s_roster_line(const char *method, const char *rid, char *out, size_t cap)
{
    out[0] = '\0';
    char m[160], r[128];
    snprintf(m, sizeof m, "\"method\":\"/phuxanh.roster.v1.RosterService/%s\"", method);
    snprintf(r, sizeof r, "\"request_id\":\"%s\"", rid);
    for (int waited = 0; waited < 5000 && !out[0]; waited += 50) {
        FILE *fp = fopen(F.roster.log_path, "r");
        char line[4096];
        while (fp && fgets(line, sizeof line, fp)) {
            if (strstr(line, "\"RPC-CALL\"") && strstr(line, m) && strstr(line, r)) {
                snprintf(out, cap, "%s", line);
            }
        }
        if (fp) {
            fclose(fp);
        }
        if (!out[0]) {
            usleep(50000);
        }
    }
}

static void test_gateway_write_audited_and_passed_to_the_roster(void)
{
    char rid[64];
    snprintf(rid, sizeof rid, "obo-record-%d", (int)getpid());
    px_status_t st;
    /* TN0001 was on duty in 25966 that day: the service asks the roster (CheckDuty). */
    Phuxanh__Activation__V1__ActivationEvent *e = s_event("obo-rec", 2, NO_PHONE, "TN0001");
    PX_CHECK_INT_EQ(s_record_as("gateway", PERSON, rid, e, &st), PX_OK);
    act_event_free(e);
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE caller = 'gateway' AND on_behalf_of = '%s' "
             "AND method LIKE '%%/RecordEvents' AND request_id = '%s'",
             PERSON, rid);
    PX_CHECK_INT_EQ(act_sql_int(&F, sql), 1);
    /* The roster saw the activation service as the caller, acting for the same person. */
    char line[4096];
    s_roster_line("CheckDuty", rid, line, sizeof line);
    PX_CHECK(strstr(line, "\"caller\":\"activation\"") != NULL);
    PX_CHECK(strstr(line, "\"on_behalf_of\":\"" PERSON "\"") != NULL);
    PX_CHECK(strstr(line, "\"code\":\"OK\"") != NULL);
}

static void test_gateway_person_reads_audited(void)
{
    char rid[64];
    snprintf(rid, sizeof rid, "obo-list-%d", (int)getpid());
    px_status_t st;
    /* A citizen without a phone: a follow-up to list and resolve. */
    Phuxanh__Activation__V1__ActivationEvent *e = s_event("obo-read", 3, NO_PHONE, "");
    PX_CHECK_INT_EQ(act_record1(&F, e, NULL, NULL, 0), 0);
    act_event_free(e);
    Phuxanh__Activation__V1__ListFollowUpsRequest list =
        PHUXANH__ACTIVATION__V1__LIST_FOLLOW_UPS_REQUEST__INIT;
    list.campaign_id = "tn-2023";
    list.unit_code = "725";
    ProtobufCMessage *reply = NULL;
    PX_CHECK_INT_EQ(s_call_as("gateway", PERSON, rid, "ListFollowUps", &list.base,
                              &phuxanh__activation__v1__list_follow_ups_response__descriptor,
                              &reply, &st),
                    PX_OK);
    PX_REQUIRE(reply);
    Phuxanh__Activation__V1__ListFollowUpsResponse *r =
        (Phuxanh__Activation__V1__ListFollowUpsResponse *)reply;
    PX_CHECK(r->n_items >= 1);
    int64_t fu_id = r->n_items ? r->items[0]->id : 0;
    protobuf_c_message_free_unpacked(reply, NULL);
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE caller = 'gateway' AND on_behalf_of = '%s' "
             "AND method LIKE '%%/ListFollowUps' AND request_id = '%s'",
             PERSON, rid);
    PX_CHECK_INT_EQ(act_sql_int(&F, sql), 1);
    /* GetCitizenStatus: one person's record. */
    Phuxanh__Activation__V1__GetCitizenStatusRequest cs =
        PHUXANH__ACTIVATION__V1__GET_CITIZEN_STATUS_REQUEST__INIT;
    cs.campaign_id = "tn-2023";
    cs.citizen_id = "074090000003";
    PX_CHECK_INT_EQ(s_call_as("gateway", PERSON, NULL, "GetCitizenStatus", &cs.base,
                              &phuxanh__activation__v1__get_citizen_status_response__descriptor,
                              NULL, &st),
                    PX_OK);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE caller = 'gateway' AND on_behalf_of = '%s' "
             "AND method LIKE '%%/GetCitizenStatus'",
             PERSON);
    PX_CHECK_INT_EQ(act_sql_int(&F, sql), 1);
    /* The fixture's own client acts for nobody: its rows say so. */
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM audit WHERE caller = 'gateway' "
                                    "AND on_behalf_of = ''"),
                    0);
    /* Resolving a follow-up keeps whom the resolver acted for beside resolved_by. */
    PX_REQUIRE(fu_id > 0);
    Phuxanh__Activation__V1__ResolveFollowUpRequest res =
        PHUXANH__ACTIVATION__V1__RESOLVE_FOLLOW_UP_REQUEST__INIT;
    res.id = fu_id;
    res.resolution_note = "đã gặp";
    PX_CHECK_INT_EQ(s_call_as("gateway", PERSON, NULL, "ResolveFollowUp", &res.base,
                              &phuxanh__activation__v1__resolve_follow_up_response__descriptor,
                              NULL, &st),
                    PX_OK);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM follow_ups WHERE id = %lld AND resolved_by = 'gateway' "
             "AND resolved_on_behalf_of = '%s'",
             (long long)fu_id, PERSON);
    PX_CHECK_INT_EQ(act_sql_int(&F, sql), 1);
}

static const px_test_case_t s_cases[] = {
    {"untrusted_caller_refused_nothing_written", test_untrusted_caller_refused_nothing_written},
    {"gateway_write_audited_and_passed_to_the_roster",
     test_gateway_write_audited_and_passed_to_the_roster},
    {"gateway_person_reads_audited", test_gateway_person_reads_audited},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    if (act_fixture_start(&F, "act_obo") != 0) {
        fprintf(stderr, "cannot start the fixture\n");
        act_fixture_stop(&F);
        return 1;
    }
    int rc = px_test_main(argc, argv, s_cases);
    if (act_fixture_stop(&F) != 0) {
        fprintf(stderr, "px-activation or px-roster did not stop cleanly\n");
        rc = 1;
    }
    return rc;
}
