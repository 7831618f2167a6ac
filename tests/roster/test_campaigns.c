/*
 * test_campaigns.c - UpsertCampaign, GetCampaign, ListCampaigns, UpsertWaves and
 * ListWaves against a real px-roster on its own database: campaigns keep their
 * waves inside their days, capacity 0 means 30 for a new wave and "unchanged"
 * for an existing one, a capacity is never lowered below the seats taken, a
 * refused wave batch writes nothing, and listings page in their stated order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "px_test.h"
#include "roster_fixture.h"

typedef Phuxanh__Roster__V1__Campaign camp_t;
typedef Phuxanh__Roster__V1__Wave wave_t;
typedef Phuxanh__Roster__V1__BatchUpsertResponse batch_t;

static roster_fixture_t s_f;

static camp_t s_camp(const char *id, const char *name, const char *from, const char *to,
                     const char *unit)
{
    camp_t c = PHUXANH__ROSTER__V1__CAMPAIGN__INIT;
    c.id = (char *)id;
    c.name = (char *)name;
    c.starts_on = (char *)from;
    c.ends_on = (char *)to;
    c.unit_code = (char *)unit;
    return c;
}

static Phuxanh__Roster__V1__UpsertCampaignResponse *s_put(camp_t *c, px_code_t *rc, px_status_t *st)
{
    Phuxanh__Roster__V1__UpsertCampaignRequest req =
        PHUXANH__ROSTER__V1__UPSERT_CAMPAIGN_REQUEST__INIT;
    req.campaign = c;
    ProtobufCMessage *rep = NULL;
    *rc = roster_call(&s_f, "UpsertCampaign", &req.base,
                      &phuxanh__roster__v1__upsert_campaign_response__descriptor, &rep, st);
    return (Phuxanh__Roster__V1__UpsertCampaignResponse *)rep;
}

/* Upserts a campaign that must be accepted; returns created. */
static int s_put_ok(const char *id, const char *from, const char *to)
{
    camp_t c = s_camp(id, "Chiến dịch thử", from, to, "");
    px_code_t rc;
    px_status_t st;
    Phuxanh__Roster__V1__UpsertCampaignResponse *r = s_put(&c, &rc, &st);
    if (!r) {
        fprintf(stderr, "UpsertCampaign %s: %d %s\n", id, rc, st.message);
        return -1;
    }
    int created = r->created;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return created;
}

static wave_t s_wave(const char *campaign, const char *day, int32_t capacity)
{
    wave_t w = PHUXANH__ROSTER__V1__WAVE__INIT;
    w.campaign_id = (char *)campaign;
    w.day = (char *)day;
    w.capacity = capacity;
    return w;
}

static batch_t *s_waves(wave_t *rows, size_t n, px_code_t *rc, px_status_t *st)
{
    wave_t **p = calloc(n + 1, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i] = &rows[i];
    }
    Phuxanh__Roster__V1__UpsertWavesRequest req = PHUXANH__ROSTER__V1__UPSERT_WAVES_REQUEST__INIT;
    req.waves = p;
    req.n_waves = n;
    ProtobufCMessage *rep = NULL;
    *rc = roster_call(&s_f, "UpsertWaves", &req.base,
                      &phuxanh__roster__v1__batch_upsert_response__descriptor, &rep, st);
    free(p);
    return (batch_t *)rep;
}

static Phuxanh__Roster__V1__ListWavesResponse *
s_list_waves(Phuxanh__Roster__V1__ListWavesRequest *q, px_code_t *rc, px_status_t *st)
{
    ProtobufCMessage *rep = NULL;
    *rc = roster_call(&s_f, "ListWaves", &q->base,
                      &phuxanh__roster__v1__list_waves_response__descriptor, &rep, st);
    return (Phuxanh__Roster__V1__ListWavesResponse *)rep;
}

static Phuxanh__Roster__V1__ListWavesResponse *s_all_waves(const char *campaign)
{
    Phuxanh__Roster__V1__ListWavesRequest q = PHUXANH__ROSTER__V1__LIST_WAVES_REQUEST__INIT;
    q.campaign_id = (char *)campaign;
    px_code_t rc;
    px_status_t st;
    return s_list_waves(&q, &rc, &st);
}

/* ------------------------------------------------------------------- cases */

static void test_campaign_upsert_and_get(void)
{
    long long audits =
        roster_sql_int(&s_f, "SELECT count(*) FROM audit WHERE method LIKE '%UpsertCampaign'");
    PX_CHECK_INT_EQ(s_put_ok("tn-cuoi-tuan-2023", "2023-07-29", "2023-08-27"), 1);
    PX_CHECK_INT_EQ(s_put_ok("tn-cuoi-tuan-2023", "2023-07-29", "2023-08-27"), 0);
    PX_CHECK_INT_EQ(
        roster_sql_int(&s_f, "SELECT count(*) FROM audit WHERE method LIKE '%UpsertCampaign'"),
        audits + 1); /* the identical second upsert wrote nothing, so no audit row */

    Phuxanh__Roster__V1__GetCampaignRequest req = PHUXANH__ROSTER__V1__GET_CAMPAIGN_REQUEST__INIT;
    req.id = "tn-cuoi-tuan-2023";
    ProtobufCMessage *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(roster_call(&s_f, "GetCampaign", &req.base,
                                &phuxanh__roster__v1__get_campaign_response__descriptor, &rep, &st),
                    PX_OK);
    Phuxanh__Roster__V1__GetCampaignResponse *g = (Phuxanh__Roster__V1__GetCampaignResponse *)rep;
    PX_REQUIRE(g && g->campaign);
    PX_CHECK_STR_EQ(g->campaign->name, "Chiến dịch thử");
    PX_CHECK_STR_EQ(g->campaign->starts_on, "2023-07-29");
    PX_CHECK_STR_EQ(g->campaign->ends_on, "2023-08-27");
    PX_CHECK_STR_EQ(g->campaign->unit_code, "");
    protobuf_c_message_free_unpacked(rep, NULL);

    req.id = "khong-co";
    rep = NULL;
    PX_CHECK_INT_EQ(roster_call(&s_f, "GetCampaign", &req.base,
                                &phuxanh__roster__v1__get_campaign_response__descriptor, &rep, &st),
                    PX_NOT_FOUND);
    PX_CHECK(strncmp(st.message, "id:", 3) == 0);
    req.id = "Bad_Id";
    PX_CHECK_INT_EQ(roster_call(&s_f, "GetCampaign", &req.base,
                                &phuxanh__roster__v1__get_campaign_response__descriptor, &rep, &st),
                    PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "id:", 3) == 0);

    /* A unit_code must name a unit. */
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "INSERT INTO units (code, name, level, version)"
                                         " VALUES ('74', 'Bình Dương', 1, 1) RETURNING 1"),
                    1);
    camp_t c = s_camp("tn-unit", "Có đơn vị", "2023-07-01", "2023-07-31", "74");
    px_code_t rc;
    Phuxanh__Roster__V1__UpsertCampaignResponse *r = s_put(&c, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(r && r->campaign);
    PX_CHECK(r->created);
    PX_CHECK_STR_EQ(r->campaign->unit_code, "74");
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_campaign_refusals(void)
{
    char longname[520];
    memset(longname, 'y', 501);
    longname[501] = '\0';
    static const struct {
        const char *id, *name, *from, *to, *unit;
        int code;
        const char *prefix;
    } cases[] = {
        {"Upper-Case", "Tên", "2023-07-01", "2023-07-31", "", PX_INVALID_ARGUMENT, "campaign.id:"},
        {"", "Tên", "2023-07-01", "2023-07-31", "", PX_INVALID_ARGUMENT, "campaign.id:"},
        {"ok-id", "", "2023-07-01", "2023-07-31", "", PX_INVALID_ARGUMENT, "campaign.name:"},
        {"ok-id", "Hỏng \xC0\x80", "2023-07-01", "2023-07-31", "", PX_INVALID_ARGUMENT,
         "campaign.name:"},
        {"ok-id", NULL, "2023-07-01", "2023-07-31", "", PX_INVALID_ARGUMENT, "campaign.name:"},
        {"ok-id", "Tên", "2023-02-30", "2023-07-31", "", PX_INVALID_ARGUMENT,
         "campaign.starts_on:"},
        {"ok-id", "Tên", "2023-07-01", "31/07/2023", "", PX_INVALID_ARGUMENT, "campaign.ends_on:"},
        {"ok-id", "Tên", "2023-07-31", "2023-07-01", "", PX_INVALID_ARGUMENT, "campaign.ends_on:"},
        {"ok-id", "Tên", "2023-07-01", "2023-07-31", "99999", PX_NOT_FOUND, "campaign.unit_code:"},
        {"ok-id", "Tên", "2023-07-01", "2023-07-31", "9 9", PX_INVALID_ARGUMENT,
         "campaign.unit_code:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        camp_t c = s_camp(cases[i].id, cases[i].name ? cases[i].name : longname, cases[i].from,
                          cases[i].to, cases[i].unit);
        px_code_t rc;
        px_status_t st;
        Phuxanh__Roster__V1__UpsertCampaignResponse *r = s_put(&c, &rc, &st);
        PX_CHECK(r == NULL);
        PX_CHECK_INT_EQ(rc, cases[i].code);
        if (strncmp(st.message, cases[i].prefix, strlen(cases[i].prefix)) != 0) {
            fprintf(stderr, "  case %zu: \"%s\" does not start with %s\n", i, st.message,
                    cases[i].prefix);
            PX_CHECK(0);
        }
    }
    Phuxanh__Roster__V1__UpsertCampaignRequest empty =
        PHUXANH__ROSTER__V1__UPSERT_CAMPAIGN_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(roster_call(&s_f, "UpsertCampaign", &empty.base,
                                &phuxanh__roster__v1__upsert_campaign_response__descriptor, &rep,
                                &st),
                    PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "campaign:", 9) == 0);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM campaigns WHERE id = 'ok-id'"), 0);
}

static void test_list_campaigns_order_and_pages(void)
{
    static const struct {
        const char *id, *from;
    } rows[] = {
        {"lc-b", "2024-03-01"}, {"lc-a", "2024-03-01"}, {"lc-c", "2024-01-01"},
        {"lc-d", "2024-05-01"}, {"lc-e", "2024-03-01"},
    };
    for (size_t i = 0; i < 5; i++) {
        PX_CHECK(s_put_ok(rows[i].id, rows[i].from, "2024-12-31") >= 0);
    }
    /* Only the lc- campaigns, in their expected order, among whatever else exists. */
    char got[400] = "";
    char *token = strdup("");
    int pages = 0;
    while (token && pages < 100) {
        Phuxanh__Roster__V1__ListCampaignsRequest req =
            PHUXANH__ROSTER__V1__LIST_CAMPAIGNS_REQUEST__INIT;
        req.page_size = 2;
        req.page_token = token;
        ProtobufCMessage *rep = NULL;
        px_status_t st;
        px_code_t rc =
            roster_call(&s_f, "ListCampaigns", &req.base,
                        &phuxanh__roster__v1__list_campaigns_response__descriptor, &rep, &st);
        free(token);
        token = NULL;
        PX_CHECK_INT_EQ(rc, PX_OK);
        PX_REQUIRE(rep);
        Phuxanh__Roster__V1__ListCampaignsResponse *r =
            (Phuxanh__Roster__V1__ListCampaignsResponse *)rep;
        PX_CHECK(r->n_campaigns <= 2);
        pages++;
        for (size_t i = 0; i < r->n_campaigns; i++) {
            if (strncmp(r->campaigns[i]->id, "lc-", 3) == 0) {
                size_t l = strlen(got);
                snprintf(got + l, sizeof got - l, "%s%s", l ? " " : "", r->campaigns[i]->id);
            }
        }
        if (r->next_page_token && *r->next_page_token) {
            token = strdup(r->next_page_token);
        }
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    PX_CHECK_STR_EQ(got, "lc-d lc-a lc-b lc-e lc-c");
    PX_CHECK(pages >= 3);

    Phuxanh__Roster__V1__ListCampaignsRequest bad =
        PHUXANH__ROSTER__V1__LIST_CAMPAIGNS_REQUEST__INIT;
    bad.page_token = "p1.41";
    ProtobufCMessage *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(roster_call(&s_f, "ListCampaigns", &bad.base,
                                &phuxanh__roster__v1__list_campaigns_response__descriptor, &rep,
                                &st),
                    PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "page_token:", 11) == 0);
}

static void test_waves_upsert_defaults_and_reimport(void)
{
    PX_REQUIRE(s_put_ok("wv-main", "2023-07-29", "2023-08-27") >= 0);
    wave_t rows[] = {
        s_wave("wv-main", "2023-07-29", 0),
        s_wave("wv-main", "2023-07-30", 25),
        s_wave("wv-main", "2023-08-05", 30),
    };
    px_code_t rc;
    px_status_t st;
    batch_t *b = s_waves(rows, 3, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(b);
    PX_CHECK(b->committed);
    PX_CHECK_INT_EQ(b->inserted, 3);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    b = s_waves(rows, 3, &rc, &st);
    PX_REQUIRE(b);
    PX_CHECK(b->committed);
    PX_CHECK_INT_EQ(b->unchanged, 3);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    /* 0 keeps an existing capacity; a new number changes it. */
    rows[1].capacity = 0;
    rows[2].capacity = 40;
    b = s_waves(rows, 3, &rc, &st);
    PX_REQUIRE(b);
    PX_CHECK_INT_EQ(b->updated, 1);
    PX_CHECK_INT_EQ(b->unchanged, 2);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    Phuxanh__Roster__V1__ListWavesResponse *l = s_all_waves("wv-main");
    PX_REQUIRE(l && l->n_waves == 3);
    PX_CHECK_STR_EQ(l->waves[0]->day, "2023-07-29");
    PX_CHECK_INT_EQ(l->waves[0]->capacity, 30);
    PX_CHECK_INT_EQ(l->waves[1]->capacity, 25);
    PX_CHECK_INT_EQ(l->waves[2]->capacity, 40);
    PX_CHECK_INT_EQ(l->waves[0]->assigned, 0);
    PX_CHECK_STR_EQ(l->waves[0]->campaign_id, "wv-main");
    protobuf_c_message_free_unpacked(&l->base, NULL);
}

static void test_wave_refusals_write_nothing(void)
{
    PX_REQUIRE(s_put_ok("wv-ref", "2023-07-29", "2023-08-27") >= 0);
    wave_t rows[] = {
        s_wave("wv-ref", "2023-07-29", 30),   /* 0: fine, not written */
        s_wave("wv-none", "2023-07-29", 30),  /* 1: unknown campaign */
        s_wave("wv-ref", "2023-09-02", 30),   /* 2: outside the campaign */
        s_wave("wv-ref", "2023-02-29", 30),   /* 3: no such day */
        s_wave("wv-ref", "2023-08-05", 1001), /* 4: too many seats */
        s_wave("wv-ref", "2023-08-06", -1),   /* 5: negative */
        s_wave("wv-ref", "2023-07-29", 10),   /* 6: same wave twice */
        s_wave("WV_REF", "2023-08-12", 10),   /* 7: bad campaign id */
        s_wave("wv-ref", "", 10),             /* 8: no day */
    };
    size_t n = sizeof rows / sizeof rows[0];
    px_code_t rc;
    px_status_t st;
    batch_t *b = s_waves(rows, n, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(b);
    PX_CHECK(!b->committed);
    PX_CHECK_INT_EQ(b->inserted + b->updated + b->unchanged, 0);
    static const struct {
        int index;
        const char *field;
        int code;
    } want[] = {
        {1, "campaign_id", PX_NOT_FOUND},        {2, "day", PX_FAILED_PRECONDITION},
        {3, "day", PX_INVALID_ARGUMENT},         {4, "capacity", PX_INVALID_ARGUMENT},
        {5, "capacity", PX_INVALID_ARGUMENT},    {6, "", PX_INVALID_ARGUMENT},
        {7, "campaign_id", PX_INVALID_ARGUMENT}, {8, "day", PX_INVALID_ARGUMENT},
    };
    size_t nw = sizeof want / sizeof want[0];
    PX_CHECK_INT_EQ(b->n_errors, nw);
    for (size_t i = 0; i < nw && i < b->n_errors; i++) {
        PX_CHECK_INT_EQ(b->errors[i]->index, want[i].index);
        PX_CHECK_STR_EQ(b->errors[i]->field, want[i].field);
        PX_CHECK_INT_EQ(b->errors[i]->code, want[i].code);
        PX_CHECK(b->errors[i]->message && *b->errors[i]->message);
    }
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM waves WHERE campaign_id = 'wv-ref'"),
                    0);
}

/* Three volunteers in wave wv-seat 2023-07-29: planned, checked in, checked out. */
static int s_take_seats(void)
{
    static const char *const sql[] = {
        "INSERT INTO units (code, name, level, parent_code, version) VALUES"
        " ('s74', 'Tỉnh', 1, NULL, 1), ('s725', 'Huyện', 2, 's74', 1),"
        " ('s25966', 'Phường', 3, 's725', 1) RETURNING 1",
        "INSERT INTO volunteers (code, full_name, name_folded) VALUES ('S1', 'A', 'a'),"
        " ('S2', 'B', 'b'), ('S3', 'C', 'c'), ('S4', 'D', 'd') RETURNING 1",
        "INSERT INTO assignments (volunteer_code, day, campaign_id, unit_code, status) VALUES"
        " ('S1', '2023-07-29', 'wv-seat', 's25966', 1),"
        " ('S2', '2023-07-29', 'wv-seat', 's25966', 2),"
        " ('S3', '2023-07-29', 'wv-seat', 's25966', 3),"
        " ('S4', '2023-07-29', 'wv-seat', 's25966', 4) RETURNING 1",
        "UPDATE waves SET assigned = 3 WHERE campaign_id = 'wv-seat' RETURNING 1",
    };
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        if (roster_sql_int(&s_f, sql[i]) != 1) {
            fprintf(stderr, "setup statement %zu failed\n", i);
            return -1;
        }
    }
    return 0;
}

static void test_capacity_not_below_seats_taken(void)
{
    PX_REQUIRE(s_put_ok("wv-seat", "2023-07-29", "2023-08-27") >= 0);
    wave_t rows[] = {s_wave("wv-seat", "2023-07-29", 30)};
    px_code_t rc;
    px_status_t st;
    batch_t *b = s_waves(rows, 1, &rc, &st);
    PX_REQUIRE(b && b->committed);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_REQUIRE(s_take_seats() == 0);

    Phuxanh__Roster__V1__ListWavesResponse *l = s_all_waves("wv-seat");
    PX_REQUIRE(l && l->n_waves == 1);
    PX_CHECK_INT_EQ(l->waves[0]->assigned, 3);
    PX_CHECK_INT_EQ(l->waves[0]->checked_in, 2);
    protobuf_c_message_free_unpacked(&l->base, NULL);

    rows[0].capacity = 2;
    b = s_waves(rows, 1, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(b);
    PX_CHECK(!b->committed);
    PX_REQUIRE(b->n_errors == 1);
    PX_CHECK_STR_EQ(b->errors[0]->field, "capacity");
    PX_CHECK_INT_EQ(b->errors[0]->code, PX_FAILED_PRECONDITION);
    PX_CHECK(strstr(b->errors[0]->message, "3 seats") != NULL);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(
        roster_sql_int(&s_f, "SELECT capacity FROM waves WHERE campaign_id = 'wv-seat'"), 30);

    rows[0].capacity = 3;
    b = s_waves(rows, 1, &rc, &st);
    PX_REQUIRE(b);
    PX_CHECK(b->committed);
    PX_CHECK_INT_EQ(b->updated, 1);
    protobuf_c_message_free_unpacked(&b->base, NULL);
}

static void test_campaign_days_keep_waves_inside(void)
{
    PX_REQUIRE(s_put_ok("wv-move", "2023-07-29", "2023-08-27") >= 0);
    wave_t rows[] = {s_wave("wv-move", "2023-07-30", 0), s_wave("wv-move", "2023-08-20", 0)};
    px_code_t rc;
    px_status_t st;
    batch_t *b = s_waves(rows, 2, &rc, &st);
    PX_REQUIRE(b && b->committed);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    camp_t c = s_camp("wv-move", "Chiến dịch thử", "2023-08-01", "2023-08-27", "");
    Phuxanh__Roster__V1__UpsertCampaignResponse *r = s_put(&c, &rc, &st);
    PX_CHECK(r == NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    PX_CHECK(strstr(st.message, "starts_on") != NULL);
    PX_CHECK(strstr(st.message, "2023-07-30") != NULL);
    c.starts_on = "2023-07-29";
    c.ends_on = "2023-08-19";
    PX_CHECK(s_put(&c, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f,
                                   "SELECT count(*) FROM campaigns WHERE id = 'wv-move'"
                                   " AND starts_on = '2023-07-29' AND ends_on = '2023-08-27'"),
                    1);
    /* Moving the days while every wave stays inside is fine. */
    c.starts_on = "2023-07-30";
    c.ends_on = "2023-08-20";
    r = s_put(&c, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(r && r->campaign);
    PX_CHECK(!r->created);
    PX_CHECK_STR_EQ(r->campaign->starts_on, "2023-07-30");
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_list_waves_filters_and_pages(void)
{
    PX_REQUIRE(s_put_ok("wv-list", "2023-07-01", "2023-07-31") >= 0);
    wave_t rows[10];
    char days[10][11];
    for (int i = 0; i < 10; i++) {
        snprintf(days[i], sizeof days[i], "2023-07-%02d", 30 - 3 * i); /* not in order */
        rows[i] = s_wave("wv-list", days[i], 10 + i);
    }
    px_code_t rc;
    px_status_t st;
    batch_t *b = s_waves(rows, 10, &rc, &st);
    PX_REQUIRE(b && b->committed);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    char got[200] = "", *token = strdup("");
    int pages = 0;
    while (token && pages < 20) {
        Phuxanh__Roster__V1__ListWavesRequest q = PHUXANH__ROSTER__V1__LIST_WAVES_REQUEST__INIT;
        q.campaign_id = "wv-list";
        q.from_day = "2023-07-06";
        q.to_day = "2023-07-24";
        q.page_size = 2;
        q.page_token = token;
        Phuxanh__Roster__V1__ListWavesResponse *l = s_list_waves(&q, &rc, &st);
        free(token);
        token = NULL;
        PX_REQUIRE(l);
        pages++;
        for (size_t i = 0; i < l->n_waves; i++) {
            size_t n = strlen(got);
            snprintf(got + n, sizeof got - n, "%s%s", n ? " " : "", l->waves[i]->day + 8);
        }
        if (l->next_page_token && *l->next_page_token) {
            token = strdup(l->next_page_token);
        }
        protobuf_c_message_free_unpacked(&l->base, NULL);
    }
    PX_CHECK_STR_EQ(got, "06 09 12 15 18 21 24");
    PX_CHECK_INT_EQ(pages, 4);

    Phuxanh__Roster__V1__ListWavesRequest q = PHUXANH__ROSTER__V1__LIST_WAVES_REQUEST__INIT;
    q.campaign_id = "khong-co";
    PX_CHECK(s_list_waves(&q, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_NOT_FOUND);
    PX_CHECK(strncmp(st.message, "campaign_id:", 12) == 0);
    q.campaign_id = "";
    PX_CHECK(s_list_waves(&q, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "campaign_id:", 12) == 0);
    q.campaign_id = "wv-list";
    q.from_day = "2023-13-01";
    PX_CHECK(s_list_waves(&q, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "from_day:", 9) == 0);
    q.from_day = "2023-07-20";
    q.to_day = "2023-07-10";
    PX_CHECK(s_list_waves(&q, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "to_day:", 7) == 0);
}

static const px_test_case_t s_cases[] = {
    {"campaign_upsert_and_get", test_campaign_upsert_and_get},
    {"campaign_refusals", test_campaign_refusals},
    {"list_campaigns_order_and_pages", test_list_campaigns_order_and_pages},
    {"waves_upsert_defaults_and_reimport", test_waves_upsert_defaults_and_reimport},
    {"wave_refusals_write_nothing", test_wave_refusals_write_nothing},
    {"capacity_not_below_seats_taken", test_capacity_not_below_seats_taken},
    {"campaign_days_keep_waves_inside", test_campaign_days_keep_waves_inside},
    {"list_waves_filters_and_pages", test_list_waves_filters_and_pages},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return roster_fixture_main(&s_f, "roster_campaigns", NULL, NULL, NULL, argc, argv, s_cases);
}
