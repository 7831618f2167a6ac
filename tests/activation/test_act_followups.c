/*
 * test_act_followups.c - the follow-up lists and the re-visit list: follow-ups made by events
 * are listed by subtree and kind, page by page; resolving one closes it once (the counters
 * move at every level, a second resolution changes nothing); ListStalled lists the approved
 * but not activated per neighborhood and agrees with GetProgress; every read leaves an audit
 * row with its caller and request id. A resolution limited to some units (within_units)
 * happens only for a follow-up of one of them or of a unit under one; otherwise it is refused
 * and nothing moves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_fixture.h"
#include "phuxanh/clock.h"
#include "px_test.h"

#define C "tn-2023"
#define NO_PHONE PHUXANH__ACTIVATION__V1__CHANNEL__CHANNEL_NO_PHONE
#define VOL_PHONE PHUXANH__ACTIVATION__V1__CHANNEL__CHANNEL_VOLUNTEER_PHONE
#define OWN_PHONE PHUXANH__ACTIVATION__V1__CHANNEL__CHANNEL_OWN_PHONE

typedef Phuxanh__Activation__V1__ListFollowUpsRequest list_req_t;
typedef Phuxanh__Activation__V1__ListFollowUpsResponse list_resp_t;

static act_fixture_t F;

static int s_rec(int n, const char *unit, const char *nbh, int stage, int channel,
                 const char *volunteer, const char *note, int64_t offset_s)
{
    char key[32], id[16];
    snprintf(key, sizeof key, "fu-%d-%d", n, stage);
    snprintf(id, sizeof id, "074090%06d", n);
    Phuxanh__Activation__V1__ActivationEvent *e = act_event(key, id, unit, stage, (int)offset_s);
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

/* Citizens 1 (no phone, Đông Nhì), 2 (volunteer's phone, activated), 3 (no phone, approved,
 * Bình Nhâm), 4 (approved, Đông Tư) on the test day; 5 approved now in An Phú. */
static bool s_load(void)
{
    int bad = 0;
    bad += s_rec(1, "25966", "25966-01", 1, NO_PHONE, "TN0001", "nhà số 12", 1) != 0;
    bad += s_rec(2, "25966", "", 3, VOL_PHONE, "TN0001", "", 2) != 0;
    bad += s_rec(3, "25969", "", 2, NO_PHONE, "TN0002", "", 3) != 0;
    bad += s_rec(4, "25966", "25966-02", 2, OWN_PHONE, "", "hẻm 5", 4) != 0;
    int64_t now_offset = px_wall_us() / 1000000 - ACT_T_DAY_US / 1000000 - 60;
    bad += s_rec(5, "25975", "", 2, OWN_PHONE, "", "", now_offset) != 0;
    return bad == 0;
}

static px_code_t s_list(list_req_t *req, list_resp_t **out, px_status_t *st)
{
    ProtobufCMessage *reply = NULL;
    px_code_t code =
        act_call(&F, "ListFollowUps", &req->base,
                 &phuxanh__activation__v1__list_follow_ups_response__descriptor, &reply, st);
    *out = (list_resp_t *)reply;
    return code;
}

static px_code_t s_resolve(int64_t id, const char *note,
                           Phuxanh__Activation__V1__ResolveFollowUpResponse **out, px_status_t *st)
{
    Phuxanh__Activation__V1__ResolveFollowUpRequest req =
        PHUXANH__ACTIVATION__V1__RESOLVE_FOLLOW_UP_REQUEST__INIT;
    req.id = id;
    req.resolution_note = (char *)note;
    ProtobufCMessage *reply = NULL;
    px_code_t code =
        act_call(&F, "ResolveFollowUp", &req.base,
                 &phuxanh__activation__v1__resolve_follow_up_response__descriptor, &reply, st);
    *out = (Phuxanh__Activation__V1__ResolveFollowUpResponse *)reply;
    return code;
}

/* ResolveFollowUp limited to the n units of within; the reply is freed. */
static px_code_t s_resolve_within(int64_t id, const char *const *within, size_t n, px_status_t *st)
{
    Phuxanh__Activation__V1__ResolveFollowUpRequest req =
        PHUXANH__ACTIVATION__V1__RESOLVE_FOLLOW_UP_REQUEST__INIT;
    req.id = id;
    req.resolution_note = "";
    req.within_units = (char **)within;
    req.n_within_units = n;
    ProtobufCMessage *reply = NULL;
    px_code_t code =
        act_call(&F, "ResolveFollowUp", &req.base,
                 &phuxanh__activation__v1__resolve_follow_up_response__descriptor, &reply, st);
    if (reply) {
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    return code;
}

static bool s_open(long long id)
{
    char sql[120];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM follow_ups WHERE id = %lld AND resolved_at IS NULL", id);
    return act_sql_int(&F, sql) == 1;
}

static long long s_audits(const char *method)
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE method LIKE '%%%s' AND caller = 'activation-test' "
             "AND request_id <> ''",
             method);
    return act_sql_int(&F, sql);
}

static void test_list_by_subtree_kind_pages(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_fu_list") == 0);
    PX_REQUIRE(s_load());
    px_status_t st;
    list_resp_t *r = NULL;
    list_req_t req = PHUXANH__ACTIVATION__V1__LIST_FOLLOW_UPS_REQUEST__INIT;
    req.campaign_id = C;
    req.unit_code = "725";
    PX_REQUIRE(s_list(&req, &r, &st) == PX_OK);
    PX_CHECK_INT_EQ(r->n_items, 3);
    if (r->n_items == 3) {
        const Phuxanh__Activation__V1__FollowUp *f = r->items[0];
        PX_CHECK_INT_EQ(f->kind, PHUXANH__ACTIVATION__V1__FOLLOW_UP_KIND__FOLLOW_UP_KIND_NO_PHONE);
        PX_CHECK_STR_EQ(f->campaign_id, C);
        PX_CHECK_STR_EQ(f->unit_code, "25966");
        PX_CHECK_STR_EQ(f->neighborhood_code, "25966-01");
        PX_CHECK_STR_EQ(f->volunteer_code, "TN0001");
        PX_CHECK_STR_EQ(f->note, "nhà số 12");
        PX_CHECK_STR_EQ(f->citizen_id_last3, "001");
        PX_CHECK(f->created_at && !f->resolved_at);
        PX_CHECK_INT_EQ(r->items[1]->kind,
                        PHUXANH__ACTIVATION__V1__FOLLOW_UP_KIND__FOLLOW_UP_KIND_VOLUNTEER_PHONE);
        PX_CHECK_STR_EQ(r->items[2]->unit_code, "25969");
        PX_CHECK(r->items[0]->id < r->items[1]->id && r->items[1]->id < r->items[2]->id);
    }
    PX_CHECK_STR_EQ(r->next_page_token, "");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    PX_CHECK_INT_EQ(s_audits("ListFollowUps"), 1);
    /* A neighborhood; a kind; another district. */
    req.unit_code = "25966-01";
    PX_REQUIRE(s_list(&req, &r, &st) == PX_OK);
    PX_CHECK(r->n_items == 1 && strcmp(r->items[0]->citizen_id_last3, "001") == 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    req.unit_code = "74";
    req.kind = PHUXANH__ACTIVATION__V1__FOLLOW_UP_KIND__FOLLOW_UP_KIND_VOLUNTEER_PHONE;
    PX_REQUIRE(s_list(&req, &r, &st) == PX_OK);
    PX_CHECK(r->n_items == 1 && strcmp(r->items[0]->citizen_id_last3, "002") == 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    req.kind = 0;
    req.unit_code = "718";
    PX_REQUIRE(s_list(&req, &r, &st) == PX_OK);
    PX_CHECK_INT_EQ(r->n_items, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* Pages of one. */
    req.unit_code = "725";
    req.page_size = 1;
    char token[128] = "";
    int pages = 0, items = 0;
    int64_t last = 0;
    do {
        req.page_token = token;
        PX_REQUIRE(s_list(&req, &r, &st) == PX_OK);
        pages++;
        items += (int)r->n_items;
        if (r->n_items == 1) {
            PX_CHECK(r->items[0]->id > last);
            last = r->items[0]->id;
        }
        snprintf(token, sizeof token, "%s", r->next_page_token);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    } while (*token && pages < 10);
    PX_CHECK_INT_EQ(items, 3);
    PX_CHECK_INT_EQ(s_audits("ListFollowUps"), 4 + pages);
    /* Refusals. */
    req.page_token = "f1.x";
    PX_CHECK(s_list(&req, &r, &st) == PX_INVALID_ARGUMENT && strstr(st.message, "page_token"));
    req.page_token = "";
    req.kind = 5;
    PX_CHECK(s_list(&req, &r, &st) == PX_INVALID_ARGUMENT && strstr(st.message, "kind"));
    req.kind = 0;
    req.unit_code = "99999";
    PX_CHECK(s_list(&req, &r, &st) == PX_NOT_FOUND && strstr(st.message, "unit_code"));
    req.unit_code = "725";
    req.campaign_id = "bad campaign";
    PX_CHECK(s_list(&req, &r, &st) == PX_INVALID_ARGUMENT && strstr(st.message, "campaign_id"));
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static void test_resolve_moves_counters_once(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_fu_resolve") == 0);
    PX_REQUIRE(s_load());
    px_status_t st;
    PX_CHECK_INT_EQ(act_total(&F, C, "25966-01", 101), 1);
    PX_CHECK_INT_EQ(act_total(&F, C, "25966", 101), 2);
    PX_CHECK_INT_EQ(act_total(&F, C, "725", 101), 3);
    PX_CHECK_INT_EQ(act_total(&F, C, "74", 101), 3);
    long long id = act_sql_int(&F, "SELECT id FROM follow_ups WHERE last3 = '001'");
    PX_REQUIRE(id > 0);
    Phuxanh__Activation__V1__ResolveFollowUpResponse *r = NULL;
    PX_REQUIRE(s_resolve(id, "đã đến nhà, hẹn tuần sau", &r, &st) == PX_OK);
    PX_REQUIRE(r->follow_up);
    PX_CHECK_INT_EQ(r->follow_up->id, id);
    PX_CHECK(r->follow_up->resolved_at != NULL);
    PX_CHECK_STR_EQ(r->follow_up->resolution_note, "đã đến nhà, hẹn tuần sau");
    PX_CHECK_STR_EQ(r->follow_up->resolved_by, "activation-test");
    int64_t first = r->follow_up->resolved_at->seconds;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    PX_CHECK_INT_EQ(act_total(&F, C, "25966-01", 101), 0);
    PX_CHECK_INT_EQ(act_total(&F, C, "25966", 101), 1);
    PX_CHECK_INT_EQ(act_total(&F, C, "725", 101), 2);
    PX_CHECK_INT_EQ(act_total(&F, C, "74", 101), 2);
    Phuxanh__Activation__V1__GetProgressResponse *p = act_progress(&F, C, "725", &st);
    PX_REQUIRE(p && p->unit);
    PX_CHECK_INT_EQ(p->unit->follow_ups_open, 2);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    /* Again: answered unchanged, nothing moves. */
    PX_REQUIRE(s_resolve(id, "another note", &r, &st) == PX_OK);
    PX_CHECK_STR_EQ(r->follow_up->resolution_note, "đã đến nhà, hẹn tuần sau");
    PX_CHECK_INT_EQ(r->follow_up->resolved_at->seconds, first);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    PX_CHECK_INT_EQ(act_total(&F, C, "725", 101), 2);
    PX_CHECK_INT_EQ(act_total(&F, C, "25966", 101), 1);
    PX_CHECK_INT_EQ(s_audits("ResolveFollowUp"), 2);
    /* Listed only with include_resolved. */
    list_req_t lreq = PHUXANH__ACTIVATION__V1__LIST_FOLLOW_UPS_REQUEST__INIT;
    lreq.campaign_id = C;
    lreq.unit_code = "25966";
    list_resp_t *l = NULL;
    PX_REQUIRE(s_list(&lreq, &l, &st) == PX_OK);
    PX_CHECK_INT_EQ(l->n_items, 1);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    lreq.include_resolved = true;
    PX_REQUIRE(s_list(&lreq, &l, &st) == PX_OK);
    PX_CHECK_INT_EQ(l->n_items, 2);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    /* Refusals. */
    PX_CHECK(s_resolve(987654, "", &r, &st) == PX_NOT_FOUND && strstr(st.message, "id"));
    PX_CHECK(s_resolve(0, "", &r, &st) == PX_INVALID_ARGUMENT && strstr(st.message, "id"));
    PX_CHECK(s_resolve(id, "CCCD 074090000001", &r, &st) == PX_INVALID_ARGUMENT &&
             strstr(st.message, "resolution_note"));
    char longnote[600];
    memset(longnote, 'a', 501);
    longnote[501] = '\0';
    PX_CHECK(s_resolve(id, longnote, &r, &st) == PX_INVALID_ARGUMENT &&
             strstr(st.message, "resolution_note"));
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static void test_resolve_within_units(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_fu_within") == 0);
    PX_REQUIRE(s_load());
    px_status_t st;
    /* 1: Lái Thiêu, Đông Nhì; 2: Lái Thiêu, no neighborhood; 3: Bình Nhâm. */
    long long one = act_sql_int(&F, "SELECT id FROM follow_ups WHERE last3 = '001'");
    long long two = act_sql_int(&F, "SELECT id FROM follow_ups WHERE last3 = '002'");
    long long three = act_sql_int(&F, "SELECT id FROM follow_ups WHERE last3 = '003'");
    PX_REQUIRE(one > 0 && two > 0 && three > 0);
    char denied[64];

    /* Outside: another ward, another district, a sibling neighborhood. Refused, nothing
     * moves, nothing is audited. */
    static const char *const outside[] = {"25969", "718", "25966-02"};
    PX_CHECK_INT_EQ(s_resolve_within(one, outside, 3, &st), PX_PERMISSION_DENIED);
    snprintf(denied, sizeof denied, "follow-up %lld is not within your units", one);
    PX_CHECK(strstr(st.message, denied) != NULL);
    PX_CHECK(s_open(one));
    PX_CHECK_INT_EQ(act_total(&F, C, "25966", 101), 2);
    PX_CHECK_INT_EQ(s_audits("ResolveFollowUp"), 0);
    /* A follow-up recorded without a neighborhood is not within one of the ward's. */
    static const char *const nbh[] = {"25966-01"};
    PX_CHECK_INT_EQ(s_resolve_within(two, nbh, 1, &st), PX_PERMISSION_DENIED);
    PX_CHECK(s_open(two));

    /* Inside: its neighborhood; its ward (among others); the district above the ward. */
    PX_CHECK_INT_EQ(s_resolve_within(one, nbh, 1, &st), PX_OK);
    PX_CHECK(!s_open(one));
    PX_CHECK_INT_EQ(act_total(&F, C, "25966", 101), 1);
    static const char *const wards[] = {"25969", "25966"};
    PX_CHECK_INT_EQ(s_resolve_within(two, wards, 2, &st), PX_OK);
    PX_CHECK(!s_open(two));
    static const char *const district[] = {"725"};
    PX_CHECK_INT_EQ(s_resolve_within(three, district, 1, &st), PX_OK);
    PX_CHECK(!s_open(three));
    PX_CHECK_INT_EQ(act_total(&F, C, "725", 101), 0);
    PX_CHECK_INT_EQ(s_audits("ResolveFollowUp"), 3);
    /* A resolved one is not answered outside either. */
    PX_CHECK_INT_EQ(s_resolve_within(three, outside + 1, 2, &st), PX_PERMISSION_DENIED);

    /* The codes are checked as unit codes, and counted. */
    static const char *const bad[] = {"25966", "25966;drop"};
    PX_CHECK(s_resolve_within(three, bad, 2, &st) == PX_INVALID_ARGUMENT &&
             strstr(st.message, "within_units"));
    static const char *const empty[] = {""};
    PX_CHECK(s_resolve_within(three, empty, 1, &st) == PX_INVALID_ARGUMENT &&
             strstr(st.message, "within_units"));
    static const char *const id_number[] = {"074090000001"};
    PX_CHECK(s_resolve_within(three, id_number, 1, &st) == PX_INVALID_ARGUMENT &&
             !strstr(st.message, "074090000001"));
    const char *many[65];
    for (int i = 0; i < 65; i++) {
        many[i] = "725";
    }
    PX_CHECK(s_resolve_within(three, many, 65, &st) == PX_INVALID_ARGUMENT &&
             strstr(st.message, "within_units"));
    PX_CHECK_INT_EQ(s_resolve_within(three, many, 64, &st), PX_OK);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static px_code_t s_stalled(const char *unit, int days, int page_size, const char *token,
                           Phuxanh__Activation__V1__ListStalledResponse **out, px_status_t *st)
{
    Phuxanh__Activation__V1__ListStalledRequest req =
        PHUXANH__ACTIVATION__V1__LIST_STALLED_REQUEST__INIT;
    req.campaign_id = C;
    req.unit_code = (char *)unit;
    req.older_than_days = days;
    req.page_size = page_size;
    req.page_token = (char *)token;
    ProtobufCMessage *reply = NULL;
    px_code_t code =
        act_call(&F, "ListStalled", &req.base,
                 &phuxanh__activation__v1__list_stalled_response__descriptor, &reply, st);
    *out = (Phuxanh__Activation__V1__ListStalledResponse *)reply;
    return code;
}

static void test_stalled_per_neighborhood(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_fu_stalled") == 0);
    PX_REQUIRE(s_load());
    px_status_t st;
    Phuxanh__Activation__V1__ListStalledResponse *r = NULL;
    PX_REQUIRE(s_stalled("725", 1, 0, "", &r, &st) == PX_OK);
    PX_CHECK_INT_EQ(r->total, 2); /* citizen 5 was approved a minute ago */
    PX_CHECK_INT_EQ(r->n_neighborhoods, 2);
    if (r->n_neighborhoods == 2) {
        const Phuxanh__Activation__V1__StalledNeighborhood *a = r->neighborhoods[0];
        PX_CHECK_STR_EQ(a->unit_code, "25966");
        PX_CHECK_STR_EQ(a->neighborhood_code, "25966-02");
        PX_CHECK_STR_EQ(a->neighborhood_name, "Đông Tư");
        PX_CHECK(a->n_citizens == 1 && strcmp(a->citizens[0]->citizen_id_last3, "004") == 0 &&
                 strcmp(a->citizens[0]->note, "hẻm 5") == 0 && a->citizens[0]->approved_at);
        const Phuxanh__Activation__V1__StalledNeighborhood *b = r->neighborhoods[1];
        PX_CHECK_STR_EQ(b->unit_code, "25969");
        PX_CHECK_STR_EQ(b->neighborhood_code, "");
        PX_CHECK(b->n_citizens == 1 && strcmp(b->citizens[0]->volunteer_code, "TN0002") == 0);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* 0: every approved and not activated, as GetProgress counts them. */
    PX_REQUIRE(s_stalled("725", 0, 0, "", &r, &st) == PX_OK);
    Phuxanh__Activation__V1__GetProgressResponse *p = act_progress(&F, C, "725", &st);
    PX_REQUIRE(p && p->unit);
    PX_CHECK_INT_EQ(r->total, 3);
    PX_CHECK_INT_EQ(r->total, p->unit->approved_not_activated);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* A neighborhood's own list. */
    PX_REQUIRE(s_stalled("25966-02", 0, 0, "", &r, &st) == PX_OK);
    PX_CHECK(r->total == 1 && r->n_neighborhoods == 1);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* Pages of one citizen. */
    char token[64] = "";
    int seen = 0, pages = 0;
    do {
        PX_REQUIRE(s_stalled("74", 0, 1, token, &r, &st) == PX_OK);
        PX_CHECK_INT_EQ(r->total, 3);
        for (size_t i = 0; i < r->n_neighborhoods; i++) {
            seen += (int)r->neighborhoods[i]->n_citizens;
        }
        snprintf(token, sizeof token, "%s", r->next_page_token);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        pages++;
    } while (*token && pages < 10);
    PX_CHECK_INT_EQ(seen, 3);
    PX_CHECK_INT_EQ(pages, 3);
    PX_CHECK_INT_EQ(s_audits("ListStalled"), 3 + pages);
    /* Refusals. */
    PX_CHECK(s_stalled("725", 366, 0, "", &r, &st) == PX_INVALID_ARGUMENT &&
             strstr(st.message, "older_than_days"));
    PX_CHECK(s_stalled("725", -1, 0, "", &r, &st) == PX_INVALID_ARGUMENT);
    PX_CHECK(s_stalled("725", 0, 0, "s1.-5", &r, &st) == PX_INVALID_ARGUMENT &&
             strstr(st.message, "page_token"));
    PX_CHECK(s_stalled("99999", 0, 0, "", &r, &st) == PX_NOT_FOUND);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

/* A caller not named in person-readers gets PERMISSION_DENIED from every person-level method,
 * before any check of what it sent, and nothing is audited as read. */
static void test_person_methods_need_a_reader(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_readers") == 0);
    PX_REQUIRE(s_rec(1, "25966", "", 1, 3, "", "nhà 1", 0) == 0);
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = "dashboard"};
    px_rpc_client_t *other = px_rpc_client_new(F.proc.endpoint, &o, &st);
    PX_REQUIRE(other);
    Phuxanh__Activation__V1__ListFollowUpsRequest lf =
        PHUXANH__ACTIVATION__V1__LIST_FOLLOW_UPS_REQUEST__INIT;
    lf.campaign_id = C;
    lf.unit_code = "25966";
    Phuxanh__Activation__V1__ListStalledRequest ls =
        PHUXANH__ACTIVATION__V1__LIST_STALLED_REQUEST__INIT;
    ls.campaign_id = C;
    ls.unit_code = "25966";
    Phuxanh__Activation__V1__ResolveFollowUpRequest rf =
        PHUXANH__ACTIVATION__V1__RESOLVE_FOLLOW_UP_REQUEST__INIT;
    rf.id = 1;
    Phuxanh__Activation__V1__GetCitizenStatusRequest gs =
        PHUXANH__ACTIVATION__V1__GET_CITIZEN_STATUS_REQUEST__INIT;
    gs.campaign_id = C;
    gs.citizen_id = "074090000001";
    Phuxanh__Activation__V1__ForgetCitizenRequest fc =
        PHUXANH__ACTIVATION__V1__FORGET_CITIZEN_REQUEST__INIT;
    fc.campaign_id = C;
    fc.citizen_id = "074090000001";
    const struct {
        const char *method;
        const ProtobufCMessage *req;
        const ProtobufCMessageDescriptor *reply;
    } calls[] = {
        {"ListFollowUps", &lf.base, &phuxanh__activation__v1__list_follow_ups_response__descriptor},
        {"ListStalled", &ls.base, &phuxanh__activation__v1__list_stalled_response__descriptor},
        {"ResolveFollowUp", &rf.base,
         &phuxanh__activation__v1__resolve_follow_up_response__descriptor},
        {"GetCitizenStatus", &gs.base,
         &phuxanh__activation__v1__get_citizen_status_response__descriptor},
        {"ForgetCitizen", &fc.base, &phuxanh__activation__v1__forget_citizen_response__descriptor},
    };
    long long audits = act_sql_int(&F, "SELECT count(*) FROM audit");
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        char full[128];
        snprintf(full, sizeof full, "/phuxanh.activation.v1.ActivationService/%s", calls[i].method);
        ProtobufCMessage *reply = NULL;
        px_rpc_call_opts_t co = {.timeout_ms = 10000};
        px_code_t code =
            px_rpc_client_call(other, full, calls[i].req, calls[i].reply, &reply, &co, &st);
        PX_CHECK_INT_EQ(code, PX_PERMISSION_DENIED);
        PX_CHECK(strstr(st.message, "\"dashboard\"") != NULL);
        if (reply) {
            protobuf_c_message_free_unpacked(reply, NULL);
        }
    }
    /* Names are matched whole: a prefix or an extension of a reader's name is not that reader
     * (the list is activation-test,gateway). */
    static const char *const near[] = {"activation", "activation-test2", "gate", "gateway-",
                                       "Gateway"};
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        px_rpc_client_opts_t no = {.caller = near[i]};
        px_rpc_client_t *c = px_rpc_client_new(F.proc.endpoint, &no, &st);
        PX_REQUIRE(c);
        ProtobufCMessage *reply = NULL;
        px_rpc_call_opts_t co = {.timeout_ms = 10000};
        px_code_t code = px_rpc_client_call(
            c, "/phuxanh.activation.v1.ActivationService/ListFollowUps", &lf.base,
            &phuxanh__activation__v1__list_follow_ups_response__descriptor, &reply, &co, &st);
        if (code != PX_PERMISSION_DENIED) {
            fprintf(stderr, "  caller \"%s\" got %d\n", near[i], (int)code);
        }
        PX_CHECK_INT_EQ(code, PX_PERMISSION_DENIED);
        if (reply) {
            protobuf_c_message_free_unpacked(reply, NULL);
        }
        px_rpc_client_destroy(&c);
    }
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM audit"), audits);
    /* The follow-up is still open and the citizen still known: nothing was done. */
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM follow_ups WHERE resolved_at IS NULL"),
                    1);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM citizens"), 1);
    px_rpc_client_destroy(&other);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static const px_test_case_t s_cases[] = {
    {"person_methods_need_a_reader", test_person_methods_need_a_reader},
    {"list_by_subtree_kind_pages", test_list_by_subtree_kind_pages},
    {"resolve_moves_counters_once", test_resolve_moves_counters_once},
    {"resolve_within_units", test_resolve_within_units},
    {"stalled_per_neighborhood", test_stalled_per_neighborhood},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
