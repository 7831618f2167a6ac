/*
 * test_act_reads.c - QueryCounts and TopVolunteers: grouped counts over a subtree and a day
 * range equal GetProgress's roll-ups, pages add up to the whole, refusals name the field; the
 * top volunteers are ranked and named by the roster in one call, and still answered (without
 * names) when the roster is down.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "act_fixture.h"
#include "phuxanh/clock.h"
#include "px_test.h"

#define COLLECTED 1
#define APPROVED 2
#define ACTIVATED 3
#define C "tn-2023"

typedef Phuxanh__Activation__V1__QueryCountsRequest counts_req_t;
typedef Phuxanh__Activation__V1__QueryCountsResponse counts_resp_t;

static act_fixture_t F;

/* Records one event of citizen n (Bình Dương, born 1990) with an optional volunteer, offset_s
 * after the test day's 10:00; returns its code. */
static int s_rec(int n, const char *unit, int stage, const char *volunteer, int offset_s)
{
    char key[32], id[16];
    snprintf(key, sizeof key, "rd-%d-%d", n, stage);
    snprintf(id, sizeof id, "074090%06d", n);
    Phuxanh__Activation__V1__ActivationEvent *e = act_event(key, id, unit, stage, offset_s);
    free(e->volunteer_code);
    e->volunteer_code = strdup(volunteer);
    int code = act_record1(&F, e, NULL, NULL, 0);
    act_event_free(e);
    return code;
}

/* The data every case reads: Thuận An (725) and one ward of Thủ Dầu Một (718). */
static bool s_load(void)
{
    int bad = 0;
    for (int n = 1; n <= 3; n++) {
        bad += s_rec(n, "25966", ACTIVATED, "TN0001", n) != 0;
    }
    bad += s_rec(4, "25966", APPROVED, "TN0001", 10) != 0;
    bad += s_rec(5, "25966", COLLECTED, "", 11) != 0;
    bad += s_rec(6, "25969", ACTIVATED, "TN0002", 12) != 0;
    bad += s_rec(7, "25969", ACTIVATED, "TN0002", 13) != 0;
    bad += s_rec(8, "25969", COLLECTED, "TN0002", 14) != 0;
    bad += s_rec(9, "25975", COLLECTED, "", 86400) != 0; /* the next day */
    bad += s_rec(10, "25747", ACTIVATED, "", 15) != 0;
    return bad == 0;
}

static px_code_t s_counts(counts_req_t *req, counts_resp_t **out, px_status_t *st)
{
    ProtobufCMessage *reply = NULL;
    px_code_t code =
        act_call(&F, "QueryCounts", &req->base,
                 &phuxanh__activation__v1__query_counts_response__descriptor, &reply, st);
    *out = (counts_resp_t *)reply;
    return code;
}

static counts_req_t s_req(const char *unit)
{
    counts_req_t r = PHUXANH__ACTIVATION__V1__QUERY_COUNTS_REQUEST__INIT;
    r.campaign_id = C;
    r.unit_code = (char *)unit;
    return r;
}

static void test_counts_equal_progress(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_reads_rollup") == 0);
    PX_REQUIRE(s_load());
    px_status_t st;
    Phuxanh__Activation__V1__GroupBy by[2] = {PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_UNIT,
                                              PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_STAGE};
    counts_req_t req = s_req("725");
    req.group_by = by;
    req.n_group_by = 2;
    counts_resp_t *r = NULL;
    PX_REQUIRE(s_counts(&req, &r, &st) == PX_OK);
    Phuxanh__Activation__V1__GetProgressResponse *p = act_progress(&F, C, "725", &st);
    PX_REQUIRE(p && p->unit);
    /* Every (ward, stage) figure of the district's progress is a row of the counts, and no
     * other row exists. */
    size_t expected = 0;
    for (size_t i = 0; i < p->n_children; i++) {
        const Phuxanh__Activation__V1__ProgressRow *w = p->children[i];
        int32_t fig[5] = {0, w->collected, w->approved, w->activated, w->rejected};
        for (int s = 1; s <= 4; s++) {
            int32_t got = 0;
            for (size_t k = 0; k < r->n_rows; k++) {
                if (strcmp(r->rows[k]->unit_code, w->unit_code) == 0 &&
                    (int)r->rows[k]->stage == s) {
                    got = r->rows[k]->count;
                    PX_CHECK_STR_EQ(r->rows[k]->unit_name, w->unit_name);
                    PX_CHECK_STR_EQ(r->rows[k]->day, "");
                }
            }
            PX_CHECK_INT_EQ(got, fig[s]);
            expected += fig[s] > 0;
        }
    }
    PX_CHECK_INT_EQ(r->n_rows, expected);
    PX_CHECK_STR_EQ(r->next_page_token, "");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* No grouping: one row, the district's total of the stages asked. */
    Phuxanh__Activation__V1__Stage act = PHUXANH__ACTIVATION__V1__STAGE__STAGE_ACTIVATED;
    req.n_group_by = 0;
    req.stages = &act;
    req.n_stages = 1;
    PX_REQUIRE(s_counts(&req, &r, &st) == PX_OK);
    PX_CHECK_INT_EQ(r->n_rows, 1);
    if (r->n_rows == 1) {
        PX_CHECK_INT_EQ(r->rows[0]->count, p->unit->activated);
        PX_CHECK_STR_EQ(r->rows[0]->unit_code, "");
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    /* The province adds the other district. */
    req.unit_code = "74";
    PX_REQUIRE(s_counts(&req, &r, &st) == PX_OK);
    PX_CHECK(r->n_rows == 1 && r->rows[0]->count == 6);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* A ward is its own subtree. */
    req.unit_code = "25966";
    PX_REQUIRE(s_counts(&req, &r, &st) == PX_OK);
    PX_CHECK(r->n_rows == 1 && r->rows[0]->count == 3);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static void test_counts_days_volunteers_pages(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_reads_days") == 0);
    PX_REQUIRE(s_load());
    px_status_t st;
    counts_resp_t *r = NULL;
    Phuxanh__Activation__V1__GroupBy day = PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_DAY;
    counts_req_t req = s_req("725");
    req.group_by = &day;
    req.n_group_by = 1;
    PX_REQUIRE(s_counts(&req, &r, &st) == PX_OK);
    PX_CHECK_INT_EQ(r->n_rows, 2);
    if (r->n_rows == 2) {
        /* 25966: 3×3 + 2 + 1 stages reached; 25969: 2×3 + 1; all on the 29th. */
        PX_CHECK_STR_EQ(r->rows[0]->day, "2023-07-29");
        PX_CHECK_INT_EQ(r->rows[0]->count, 19);
        PX_CHECK_STR_EQ(r->rows[1]->day, "2023-07-30");
        PX_CHECK_INT_EQ(r->rows[1]->count, 1);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    req.from_day = "2023-07-30";
    req.to_day = "2023-07-30";
    PX_REQUIRE(s_counts(&req, &r, &st) == PX_OK);
    PX_CHECK(r->n_rows == 1 && r->rows[0]->count == 1);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    req.from_day = req.to_day = "";
    /* By volunteer and channel: "" (no volunteer) sorts first. */
    Phuxanh__Activation__V1__GroupBy vc[2] = {PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_VOLUNTEER,
                                              PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_CHANNEL};
    Phuxanh__Activation__V1__Stage act = PHUXANH__ACTIVATION__V1__STAGE__STAGE_ACTIVATED;
    req.group_by = vc;
    req.n_group_by = 2;
    req.stages = &act;
    req.n_stages = 1;
    PX_REQUIRE(s_counts(&req, &r, &st) == PX_OK);
    PX_CHECK_INT_EQ(r->n_rows, 2); /* the activations without a volunteer are in 718 */
    if (r->n_rows == 2) {
        PX_CHECK_STR_EQ(r->rows[0]->volunteer_code, "TN0001");
        PX_CHECK_INT_EQ(r->rows[0]->count, 3);
        PX_CHECK_INT_EQ(r->rows[0]->channel, PHUXANH__ACTIVATION__V1__CHANNEL__CHANNEL_OWN_PHONE);
        PX_CHECK_STR_EQ(r->rows[1]->volunteer_code, "TN0002");
        PX_CHECK_INT_EQ(r->rows[1]->count, 2);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* Pages of 2 add up to the one-page answer, in the same order. */
    Phuxanh__Activation__V1__GroupBy all[5] = {
        PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_VOLUNTEER,
        PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_STAGE,
        PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_UNIT,
        PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_DAY,
        PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_CHANNEL,
    };
    req = s_req("74");
    req.group_by = all;
    req.n_group_by = 5;
    counts_resp_t *whole = NULL;
    PX_REQUIRE(s_counts(&req, &whole, &st) == PX_OK);
    PX_CHECK(whole->n_rows > 6);
    req.page_size = 2;
    char token[256] = "";
    size_t seen = 0;
    for (int page = 0; page < 50; page++) {
        req.page_token = token;
        PX_REQUIRE(s_counts(&req, &r, &st) == PX_OK);
        PX_CHECK(r->n_rows <= 2);
        for (size_t k = 0; k < r->n_rows && seen < whole->n_rows; k++, seen++) {
            PX_CHECK_STR_EQ(r->rows[k]->unit_code, whole->rows[seen]->unit_code);
            PX_CHECK_STR_EQ(r->rows[k]->day, whole->rows[seen]->day);
            PX_CHECK_INT_EQ(r->rows[k]->stage, whole->rows[seen]->stage);
            PX_CHECK_STR_EQ(r->rows[k]->volunteer_code, whole->rows[seen]->volunteer_code);
            PX_CHECK_INT_EQ(r->rows[k]->count, whole->rows[seen]->count);
        }
        snprintf(token, sizeof token, "%s", r->next_page_token);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        if (!*token) {
            break;
        }
    }
    PX_CHECK_INT_EQ(seen, whole->n_rows);
    protobuf_c_message_free_unpacked(&whole->base, NULL);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

/* Expects code and a message naming field. */
static void s_refused(counts_req_t *req, px_code_t code, const char *field)
{
    px_status_t st;
    counts_resp_t *r = NULL;
    px_code_t got = s_counts(req, &r, &st);
    PX_CHECK_INT_EQ(got, code);
    if (got != PX_OK) {
        PX_CHECK(strstr(st.message, field) != NULL);
    } else {
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
}

static void test_counts_refusals(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_reads_refuse") == 0);
    Phuxanh__Activation__V1__GroupBy by[2] = {PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_UNIT,
                                              PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_UNIT};
    Phuxanh__Activation__V1__Stage stage = 7;
    counts_req_t req = s_req("725");
    req.group_by = by;
    req.n_group_by = 2;
    s_refused(&req, PX_INVALID_ARGUMENT, "group_by");
    by[0] = 9;
    req.n_group_by = 1;
    s_refused(&req, PX_INVALID_ARGUMENT, "group_by");
    req.n_group_by = 0;
    req.stages = &stage;
    req.n_stages = 1;
    s_refused(&req, PX_INVALID_ARGUMENT, "stages");
    /* A bad stage after a good one: refused too, and under the sanitizers the buffer the good
     * one began is not leaked (the service's exit status below says so). */
    Phuxanh__Activation__V1__Stage two[2] = {1, 7};
    req.stages = two;
    req.n_stages = 2;
    s_refused(&req, PX_INVALID_ARGUMENT, "stages");
    req.n_stages = 0;
    req.from_day = "2023-13-01";
    s_refused(&req, PX_INVALID_ARGUMENT, "from_day");
    req.from_day = "2023-07-30";
    req.to_day = "2023-07-29";
    s_refused(&req, PX_INVALID_ARGUMENT, "to_day");
    req.from_day = "2020-01-01";
    req.to_day = "2023-07-29";
    s_refused(&req, PX_INVALID_ARGUMENT, "to_day");
    req.from_day = req.to_day = "";
    req.page_size = -1;
    s_refused(&req, PX_INVALID_ARGUMENT, "page_size");
    req.page_size = 0;
    req.page_token = "garbage";
    s_refused(&req, PX_INVALID_ARGUMENT, "page_token");
    req.page_token = "";
    req.unit_code = "25966-01";
    s_refused(&req, PX_INVALID_ARGUMENT, "unit_code");
    req.unit_code = "99999";
    s_refused(&req, PX_NOT_FOUND, "unit_code");
    req.unit_code = "";
    s_refused(&req, PX_INVALID_ARGUMENT, "unit_code");
    req.unit_code = "725";
    req.campaign_id = "";
    s_refused(&req, PX_INVALID_ARGUMENT, "campaign_id");
    /* Huge page sizes are clamped, not refused. */
    req.campaign_id = C;
    req.page_size = 1000000;
    s_refused(&req, PX_OK, "");
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static px_code_t s_top(Phuxanh__Activation__V1__TopVolunteersRequest *req,
                       Phuxanh__Activation__V1__TopVolunteersResponse **out, px_status_t *st)
{
    ProtobufCMessage *reply = NULL;
    px_code_t code =
        act_call(&F, "TopVolunteers", &req->base,
                 &phuxanh__activation__v1__top_volunteers_response__descriptor, &reply, st);
    *out = (Phuxanh__Activation__V1__TopVolunteersResponse *)reply;
    return code;
}

static void test_top_volunteers_named(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_reads_top") == 0);
    PX_REQUIRE(s_load());
    px_status_t st;
    Phuxanh__Activation__V1__TopVolunteersRequest req =
        PHUXANH__ACTIVATION__V1__TOP_VOLUNTEERS_REQUEST__INIT;
    req.campaign_id = C;
    req.unit_code = "725";
    Phuxanh__Activation__V1__TopVolunteersResponse *r = NULL;
    int calls = act_roster_calls(&F.roster, "ListVolunteers");
    PX_REQUIRE(calls >= 0);
    PX_REQUIRE(s_top(&req, &r, &st) == PX_OK);
    PX_CHECK_INT_EQ(act_roster_calls_wait(&F.roster, "ListVolunteers", calls + 1),
                    calls + 1); /* one call */
    PX_CHECK(r->names_complete);
    PX_CHECK_INT_EQ(r->n_volunteers, 2);
    if (r->n_volunteers == 2) {
        PX_CHECK_STR_EQ(r->volunteers[0]->volunteer_code, "TN0001");
        PX_CHECK_STR_EQ(r->volunteers[0]->full_name, "Tình nguyện viên 1");
        PX_CHECK_INT_EQ(r->volunteers[0]->activated, 3);
        PX_CHECK_INT_EQ(r->volunteers[0]->approved, 4);
        PX_CHECK_INT_EQ(r->volunteers[0]->collected, 4);
        PX_CHECK_STR_EQ(r->volunteers[1]->volunteer_code, "TN0002");
        PX_CHECK_STR_EQ(r->volunteers[1]->full_name, "Tình nguyện viên 2");
        PX_CHECK_INT_EQ(r->volunteers[1]->activated, 2);
        PX_CHECK_INT_EQ(r->volunteers[1]->collected, 3);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* limit, and a subtree without volunteers. */
    req.limit = 1;
    PX_REQUIRE(s_top(&req, &r, &st) == PX_OK);
    PX_CHECK(r->n_volunteers == 1 && strcmp(r->volunteers[0]->volunteer_code, "TN0001") == 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    req.limit = 0;
    req.unit_code = "718";
    PX_REQUIRE(s_top(&req, &r, &st) == PX_OK);
    PX_CHECK(r->n_volunteers == 0 && r->names_complete);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* The roster down: the counts still come, quickly, without names. */
    act_roster_stop(&F.roster);
    req.unit_code = "";
    int64_t t0 = px_clock_us();
    PX_REQUIRE(s_top(&req, &r, &st) == PX_OK);
    PX_CHECK(px_clock_us() - t0 < 2000000);
    PX_CHECK(!r->names_complete);
    PX_CHECK_INT_EQ(r->n_volunteers, 2);
    if (r->n_volunteers == 2) {
        PX_CHECK_STR_EQ(r->volunteers[0]->volunteer_code, "TN0001");
        PX_CHECK_STR_EQ(r->volunteers[0]->full_name, "");
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* And back. */
    PX_REQUIRE(act_roster_start(&F.roster) == 0);
    bool named = false;
    for (int i = 0; i < 50 && !named; i++) {
        PX_REQUIRE(s_top(&req, &r, &st) == PX_OK);
        named = r->names_complete && r->n_volunteers == 2 &&
                strcmp(r->volunteers[1]->full_name, "Tình nguyện viên 2") == 0;
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    PX_CHECK(named);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static void test_top_volunteers_refusals(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_reads_topref") == 0);
    px_status_t st;
    Phuxanh__Activation__V1__TopVolunteersRequest req =
        PHUXANH__ACTIVATION__V1__TOP_VOLUNTEERS_REQUEST__INIT;
    Phuxanh__Activation__V1__TopVolunteersResponse *r = NULL;
    const struct {
        const char *campaign, *unit, *from;
        int limit, rank;
        px_code_t code;
        const char *field;
    } cases[] = {
        {"", "", "", 0, 0, PX_INVALID_ARGUMENT, "campaign_id"},
        {C, "", "", 101, 0, PX_INVALID_ARGUMENT, "limit"},
        {C, "", "", -1, 0, PX_INVALID_ARGUMENT, "limit"},
        {C, "", "", 0, 9, PX_INVALID_ARGUMENT, "rank_by"},
        {C, "", "29-07-2023", 0, 0, PX_INVALID_ARGUMENT, "from_day"},
        {C, "25966-01", "", 0, 0, PX_INVALID_ARGUMENT, "unit_code"},
        {C, "99999", "", 0, 0, PX_NOT_FOUND, "unit_code"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        req.campaign_id = (char *)cases[i].campaign;
        req.unit_code = (char *)cases[i].unit;
        req.from_day = (char *)cases[i].from;
        req.limit = cases[i].limit;
        req.rank_by = cases[i].rank;
        px_code_t got = s_top(&req, &r, &st);
        PX_CHECK_INT_EQ(got, cases[i].code);
        if (got == PX_OK) {
            protobuf_c_message_free_unpacked(&r->base, NULL);
        } else {
            PX_CHECK(strstr(st.message, cases[i].field) != NULL);
        }
    }
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static const px_test_case_t s_cases[] = {
    {"counts_equal_progress", test_counts_equal_progress},
    {"counts_days_volunteers_pages", test_counts_days_volunteers_pages},
    {"counts_refusals", test_counts_refusals},
    {"top_volunteers_named", test_top_volunteers_named},
    {"top_volunteers_refusals", test_top_volunteers_refusals},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
