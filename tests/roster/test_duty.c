/*
 * test_duty.c - CheckDuty against a real px-roster on its own database.
 *
 * What it proves: a batch of 1,000 mixed queries is answered in order, each
 * with the verdict a small model of the roster computes here (the model gets
 * the day from how the test built the instant, not from the service's
 * arithmetic); instants near midnight in Viet Nam fall on the right day; a
 * neighborhood counts for its ward; no-shows, other wards, unknown volunteers
 * and units, and the campaign filter each get their verdict; an empty batch
 * answers nothing; a bad query sinks the call naming its index; 10,000 queries
 * go in one call.
 *
 * The roster is put into the database with plain SQL, so these tests depend on
 * nothing but CheckDuty.
 */
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/clock.h"
#include "phuxanh/text.h"
#include "px_test.h"
#include "roster_fixture.h"

#define NVOL 300      /* TN0001..TN0300 exist */
#define NASSIGNED 240 /* of those, TN0001..TN0240 may have assignments (see s_model) */
#define BATCH 1000
#define MAX_BATCH 10000

typedef Phuxanh__Roster__V1__DutyQuery query_t;
typedef Phuxanh__Roster__V1__DutyAnswer answer_t;
typedef Phuxanh__Roster__V1__CheckDutyResponse duty_t;

enum {
    V_ON = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_ON_DUTY,
    V_NOT = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_NOT_ASSIGNED,
    V_OTHER = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_OTHER_UNIT,
    V_NOSHOW = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_NO_SHOW,
    V_UNKNOWN_VOL = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_UNKNOWN_VOLUNTEER,
    V_UNKNOWN_UNIT = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_UNKNOWN_UNIT,
};

static roster_fixture_t s_f;
static PGconn *s_db;

static const char s_setup_sql[] =
    "INSERT INTO units (code, name, level, parent_code, version) VALUES"
    " ('74', 'Bình Dương', 1, NULL, nextval('unit_tree_version')),"
    " ('725', 'Thuận An', 2, '74', nextval('unit_tree_version')),"
    " ('726', 'Dĩ An', 2, '74', nextval('unit_tree_version')),"
    " ('25966', 'Lái Thiêu', 3, '725', nextval('unit_tree_version')),"
    " ('25969', 'An Thạnh', 3, '725', nextval('unit_tree_version')),"
    " ('25972', 'Bình Nhâm', 3, '725', nextval('unit_tree_version')),"
    " ('26001', 'Dĩ An', 3, '726', nextval('unit_tree_version')),"
    " ('25966-01', 'Đông Nhì', 4, '25966', nextval('unit_tree_version')),"
    " ('25966-02', 'Đông Tư', 4, '25966', nextval('unit_tree_version')),"
    " ('25969-01', 'Khu phố 1', 4, '25969', nextval('unit_tree_version'));"
    "INSERT INTO volunteers (code, full_name, name_folded)"
    " SELECT 'TN' || lpad(g::text, 4, '0'), 'Lê Thị Hạnh ' || g, px_fold('Lê Thị Hạnh ' || g)"
    " FROM generate_series(1, 300) g;"
    "INSERT INTO campaigns (id, name, starts_on, ends_on, unit_code) VALUES"
    " ('tn-a', 'Chiến dịch A', '2023-07-01', '2023-08-31', '725'),"
    " ('tn-b', 'Chiến dịch B', '2023-07-01', '2023-08-31', '725');"
    "INSERT INTO waves (campaign_id, day, capacity) VALUES"
    " ('tn-a', '2023-07-29', 1000), ('tn-a', '2023-07-30', 1000), ('tn-b', '2023-07-29', 1000);";

/* ------------------------------------------------------------------- the model */

static const char *const s_wards[] = {"25966", "25969", "25972", "26001"};

/* A unit the queries may name, and the ward it lies in ("" for a district, NULL unknown). */
static const struct {
    const char *code, *ward;
} s_units[] = {
    {"25966", "25966"},    {"25969", "25969"},    {"25972", "25972"},
    {"26001", "26001"},    {"25966-01", "25966"}, {"25966-02", "25966"},
    {"25969-01", "25969"}, {"725", ""},           {"99999", NULL},
};
#define NUNITS (sizeof s_units / sizeof s_units[0])

/* Volunteer v's assignment (1 <= v <= NASSIGNED): none when v % 3 == 0; otherwise on the
 * 29th (v % 3 == 1, campaign tn-a for odd v, tn-b for even) or the 30th (tn-a), at one of
 * four wards, some in a neighborhood, with every status. */
typedef struct {
    bool any;
    const char *day, *campaign, *ward, *hood;
    int status;
} s_asg_t;

static s_asg_t s_model(int v)
{
    s_asg_t a = {0};
    if (v < 1 || v > NASSIGNED || v % 3 == 0) {
        return a;
    }
    a.any = true;
    a.day = v % 3 == 1 ? "2023-07-29" : "2023-07-30";
    a.campaign = v % 3 == 1 && v % 2 == 0 ? "tn-b" : "tn-a";
    a.ward = s_wards[(v / 3) % 4];
    a.hood = "";
    if (strcmp(a.ward, "25966") == 0 && v % 5 == 0) {
        a.hood = "25966-01";
    } else if (strcmp(a.ward, "25969") == 0 && v % 5 == 1) {
        a.hood = "25969-01";
    }
    a.status = v % 7 == 0 ? 4 : v % 7 == 1 ? 2 : v % 7 == 2 ? 3 : 1;
    return a;
}

/* The verdict for volunteer v (0: unknown) at unit u on day, with the campaign filter. */
static int s_expect(int v, size_t u, const char *day, const char *campaign, s_asg_t *out)
{
    memset(out, 0, sizeof *out);
    if (v == 0) {
        return V_UNKNOWN_VOL;
    }
    if (!s_units[u].ward) {
        return V_UNKNOWN_UNIT;
    }
    s_asg_t a = s_model(v);
    if (!a.any || strcmp(a.day, day) != 0 || (*campaign && strcmp(a.campaign, campaign) != 0)) {
        return V_NOT;
    }
    *out = a;
    bool here = strcmp(s_units[u].code, a.ward) == 0 || strcmp(s_units[u].ward, a.ward) == 0 ||
                strcmp(s_units[u].code, a.hood) == 0;
    if (!here) {
        return V_OTHER;
    }
    return a.status == 4 ? V_NOSHOW : V_ON;
}

/* ------------------------------------------------------------------- helpers */

static int s_sql(const char *sql)
{
    PGresult *r = PQexec(s_db, sql);
    ExecStatusType s = PQresultStatus(r);
    int rc = (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) ? 0 : -1;
    if (rc != 0) {
        fprintf(stderr, "sql failed: %s\n", PQerrorMessage(s_db));
    }
    PQclear(r);
    return rc;
}

/* The model's assignments into the database, and the waves' counters to match. */
static int s_load_model(void)
{
    size_t cap = 64 * 1024, len = 0;
    char *sql = malloc(cap);
    if (!sql) {
        return -1;
    }
    len += (size_t)snprintf(sql + len, cap - len,
                            "INSERT INTO assignments (volunteer_code, day, campaign_id, unit_code,"
                            " neighborhood_code, status, checked_in_at, checked_out_at) VALUES ");
    bool first = true;
    for (int v = 1; v <= NASSIGNED; v++) {
        s_asg_t a = s_model(v);
        if (!a.any) {
            continue;
        }
        char hood[32] = "NULL";
        if (*a.hood) {
            snprintf(hood, sizeof hood, "'%s'", a.hood);
        }
        len +=
            (size_t)snprintf(sql + len, cap - len, "%s('TN%04d', '%s', '%s', '%s', %s, %d, %s, %s)",
                             first ? "" : ",", v, a.day, a.campaign, a.ward, hood, a.status,
                             a.status == 2 || a.status == 3 ? "now() - interval '2 hours'" : "NULL",
                             a.status == 3 ? "now() - interval '1 hour'" : "NULL");
        first = false;
    }
    snprintf(sql + len, cap - len,
             "; UPDATE waves w SET assigned = (SELECT count(*) FROM assignments a WHERE"
             " a.campaign_id = w.campaign_id AND a.day = w.day AND a.status <> 4)");
    int rc = s_sql(sql);
    free(sql);
    return rc;
}

/* UNIX seconds of a wall-clock second of a day in Viet Nam. */
static long long s_vn(const char *day, long long second_of_day)
{
    int32_t d = 0;
    if (!px_day_parse(day, &d)) {
        return -1;
    }
    return (long long)d * 86400 + second_of_day - PX_TZ_OFFSET_S;
}

/* Queries built in one place so that their strings and timestamps live as long as the batch. */
typedef struct {
    size_t n;
    query_t *q;
    query_t **p;
    Google__Protobuf__Timestamp *ts;
    char (*vol)[16];
    char (*camp)[16];
} s_batch_t;

static int s_batch_new(s_batch_t *b, size_t n)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->q = calloc(n + 1, sizeof *b->q);
    b->p = calloc(n + 1, sizeof *b->p);
    b->ts = calloc(n + 1, sizeof *b->ts);
    b->vol = calloc(n + 1, sizeof *b->vol);
    b->camp = calloc(n + 1, sizeof *b->camp);
    if (!b->q || !b->p || !b->ts || !b->vol || !b->camp) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        phuxanh__roster__v1__duty_query__init(&b->q[i]);
        google__protobuf__timestamp__init(&b->ts[i]);
        b->q[i].volunteer_code = b->vol[i];
        b->q[i].campaign_id = b->camp[i];
        b->q[i].unit_code = "";
        b->q[i].time = &b->ts[i];
        b->p[i] = &b->q[i];
    }
    return 0;
}

static void s_batch_free(s_batch_t *b)
{
    free(b->q);
    free(b->p);
    free(b->ts);
    free(b->vol);
    free(b->camp);
    memset(b, 0, sizeof *b);
}

static void s_set(s_batch_t *b, size_t i, const char *vol, const char *unit, long long at,
                  const char *campaign)
{
    snprintf(b->vol[i], sizeof b->vol[i], "%s", vol);
    b->q[i].unit_code = (char *)unit;
    b->ts[i].seconds = at;
    b->ts[i].nanos = 0;
    snprintf(b->camp[i], sizeof b->camp[i], "%s", campaign ? campaign : "");
}

static duty_t *s_check_as(s_batch_t *b, bool verdict_only, px_code_t *rc, px_status_t *st)
{
    Phuxanh__Roster__V1__CheckDutyRequest req = PHUXANH__ROSTER__V1__CHECK_DUTY_REQUEST__INIT;
    req.queries = b->p;
    req.n_queries = b->n;
    req.verdict_only = verdict_only;
    ProtobufCMessage *rep = NULL;
    *rc = roster_call(&s_f, "CheckDuty", &req.base,
                      &phuxanh__roster__v1__check_duty_response__descriptor, &rep, st);
    return (duty_t *)rep;
}

static duty_t *s_check(s_batch_t *b, px_code_t *rc, px_status_t *st)
{
    return s_check_as(b, false, rc, st);
}

/* One query's answer, checked against an expected verdict and (for assigned ones) fields. */
static int s_answer_ok(const answer_t *a, int verdict, const s_asg_t *m, const char *vol,
                       const char *day)
{
    int ok = a && (int)a->verdict == verdict && a->on_duty == (verdict == V_ON);
    bool with = verdict == V_ON || verdict == V_OTHER || verdict == V_NOSHOW;
    if (ok && with) {
        const Phuxanh__Roster__V1__Assignment *x = a->assignment;
        ok = x && strcmp(x->volunteer_code, vol) == 0 && strcmp(x->day, day) == 0 &&
             strcmp(x->campaign_id, m->campaign) == 0 && strcmp(x->unit_code, m->ward) == 0 &&
             strcmp(x->neighborhood_code, m->hood) == 0 && (int)x->status == m->status &&
             (x->checked_in_at != NULL) == (m->status == 2 || m->status == 3) &&
             (x->checked_out_at != NULL) == (m->status == 3) && x->created_at != NULL;
    } else if (ok) {
        ok = a->assignment == NULL;
    }
    if (!ok) {
        fprintf(stderr, "%s %s: got verdict %d%s, want %d\n", vol, day, a ? (int)a->verdict : -1,
                a && a->assignment ? " with assignment" : "", verdict);
    }
    return ok;
}

/* Runs one query and returns its verdict (-1 on failure). */
static int s_one(const char *vol, const char *unit, long long at, const char *campaign)
{
    s_batch_t b;
    if (s_batch_new(&b, 1) != 0) {
        return -1;
    }
    s_set(&b, 0, vol, unit, at, campaign);
    px_code_t rc;
    px_status_t st;
    duty_t *d = s_check(&b, &rc, &st);
    int v = d && d->n_answers == 1 ? (int)d->answers[0]->verdict : -1;
    if (d && d->n_answers == 1 && d->answers[0]->on_duty != (v == V_ON)) {
        v = -2;
    }
    if (!d) {
        fprintf(stderr, "CheckDuty: %d %s\n", rc, st.message);
    } else {
        protobuf_c_message_free_unpacked(&d->base, NULL);
    }
    s_batch_free(&b);
    return v;
}

/* ------------------------------------------------------------------- cases */

static void test_batch_of_1000_in_order(void)
{
    static const char *const days[] = {"2023-07-28", "2023-07-29", "2023-07-30", "2023-07-31"};
    static const char *const camps[] = {"", "", "tn-a", "tn-b"};
    s_batch_t b;
    PX_REQUIRE(s_batch_new(&b, BATCH) == 0);
    int *want = calloc(BATCH, sizeof *want);
    s_asg_t *models = calloc(BATCH, sizeof *models);
    const char **want_day = calloc(BATCH, sizeof *want_day);
    PX_REQUIRE(want && models && want_day);
    uint32_t r = 20230729;
    int counts[7] = {0};
    for (size_t i = 0; i < BATCH; i++) {
        r = r * 1664525u + 1013904223u;
        int v = (int)((r >> 8) % (NVOL + 30)) + 1; /* past NVOL: unknown */
        r = r * 1664525u + 1013904223u;
        size_t u = (r >> 8) % NUNITS;
        r = r * 1664525u + 1013904223u;
        const char *day = days[(r >> 8) % 4];
        r = r * 1664525u + 1013904223u;
        /* A third of the instants sit on the edges of the Vietnamese day. */
        static const long long edges[] = {0, 1, 86399, 86398};
        long long sec = (r >> 8) % 3 == 0 ? edges[(r >> 4) % 4] : (long long)((r >> 8) % 86400);
        r = r * 1664525u + 1013904223u;
        const char *camp = camps[(r >> 8) % 4];
        r = r * 1664525u + 1013904223u;
        if ((r >> 8) % 3 == 0) {
            /* A third ask where someone was assigned, so that every verdict is common. */
            v = (int)((r >> 12) % (NASSIGNED - 1)) + 1;
            v += v % 3 == 0 ? 1 : 0; /* at most NASSIGNED, never a multiple of 3 */
            s_asg_t m = s_model(v);
            day = m.day;
            for (u = 0; u < 4 && strcmp(s_units[u].code, m.ward) != 0; u++) {
            }
            if (u == 0 && (r >> 20) % 2) {
                u = 4 + (r >> 21) % 2; /* a neighborhood of 25966 */
            }
        }
        char vol[16];
        snprintf(vol, sizeof vol, v > NVOL ? "TX%04d" : "TN%04d", v);
        s_set(&b, i, vol, s_units[u].code, s_vn(day, sec), camp);
        want[i] = s_expect(v > NVOL ? 0 : v, u, day, camp, &models[i]);
        want_day[i] = day;
        counts[want[i]]++;
    }
    /* The mix covers every verdict. */
    for (int k = V_ON; k <= V_UNKNOWN_UNIT; k++) {
        if (counts[k] == 0) {
            fprintf(stderr, "verdict %d never expected\n", k);
        }
        PX_CHECK(counts[k] > 0);
    }
    px_code_t rc;
    px_status_t st;
    duty_t *d = s_check(&b, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    if (d) {
        PX_CHECK_INT_EQ(d->n_answers, BATCH);
        int bad = 0;
        for (size_t i = 0; i < d->n_answers && i < BATCH; i++) {
            if (!s_answer_ok(d->answers[i], want[i], &models[i], b.vol[i], want_day[i]) &&
                ++bad > 10) {
                break;
            }
        }
        PX_CHECK_INT_EQ(bad, 0);
        protobuf_c_message_free_unpacked(&d->base, NULL);
    } else {
        fprintf(stderr, "CheckDuty: %d %s\n", rc, st.message);
    }
    /* verdict_only: the same verdicts, and no assignment in any answer. */
    d = s_check_as(&b, true, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    if (d) {
        PX_CHECK_INT_EQ(d->n_answers, BATCH);
        int bad = 0;
        for (size_t i = 0; i < d->n_answers && i < BATCH; i++) {
            const answer_t *a = d->answers[i];
            bad += (int)a->verdict != want[i] || a->on_duty != (want[i] == V_ON) ||
                   a->assignment != NULL;
        }
        PX_CHECK_INT_EQ(bad, 0);
        protobuf_c_message_free_unpacked(&d->base, NULL);
    }
    free(want);
    free(models);
    free(want_day);
    s_batch_free(&b);
}

static void test_days_in_viet_nam(void)
{
    /* TN0001 is on duty at 25966 on the 29th only (checked in). */
    s_asg_t m = s_model(1);
    PX_REQUIRE(m.any && strcmp(m.day, "2023-07-29") == 0 && strcmp(m.ward, "25966") == 0);
    /* 2023-07-28T17:30:00Z is 00:30 on the 29th in Viet Nam. */
    PX_CHECK_INT_EQ(s_one("TN0001", "25966", 1690565400, NULL), V_ON);
    /* 2023-07-28T16:59:59Z is 23:59:59 on the 28th. */
    PX_CHECK_INT_EQ(s_one("TN0001", "25966", 1690563599, NULL), V_NOT);
    /* 2023-07-28T17:00:00Z is midnight starting the 29th. */
    PX_CHECK_INT_EQ(s_one("TN0001", "25966", 1690563600, NULL), V_ON);
    /* 2023-07-29T16:59:59Z is 23:59:59 on the 29th; a second later it is the 30th. */
    PX_CHECK_INT_EQ(s_one("TN0001", "25966", 1690649999, NULL), V_ON);
    PX_CHECK_INT_EQ(s_one("TN0001", "25966", 1690650000, NULL), V_NOT);
    /* Noon UTC on the 29th is evening of the 29th. */
    PX_CHECK_INT_EQ(s_one("TN0001", "25966", 1690632000, NULL), V_ON);
    /* Far from any wave: just not assigned. */
    PX_CHECK_INT_EQ(s_one("TN0001", "25966", 0, NULL), V_NOT);
    PX_CHECK_INT_EQ(s_one("TN0001", "25966", 253402300000LL - 1, NULL), V_NOT);
}

static void test_neighborhood_counts_for_its_ward(void)
{
    long long t = s_vn("2023-07-29", 9 * 3600);
    /* TN0001: ward 25966, no neighborhood. */
    PX_CHECK_INT_EQ(s_one("TN0001", "25966-01", t, NULL), V_ON);
    PX_CHECK_INT_EQ(s_one("TN0001", "25966-02", t, NULL), V_ON);
    PX_CHECK_INT_EQ(s_one("TN0001", "25969-01", t, NULL), V_OTHER);
    PX_CHECK_INT_EQ(s_one("TN0001", "25969", t, NULL), V_OTHER);
    PX_CHECK_INT_EQ(s_one("TN0001", "725", t, NULL), V_OTHER); /* the district is not the ward */
    /* TN0025: ward 25966 in neighborhood 25966-01. */
    s_asg_t m = s_model(25);
    PX_REQUIRE(m.any && strcmp(m.hood, "25966-01") == 0 && strcmp(m.day, "2023-07-29") == 0);
    PX_CHECK_INT_EQ(s_one("TN0025", "25966-01", t, NULL), V_ON);
    PX_CHECK_INT_EQ(s_one("TN0025", "25966", t, NULL), V_ON);
    PX_CHECK_INT_EQ(s_one("TN0025", "25966-02", t, NULL), V_ON); /* anywhere in its ward */
    PX_CHECK_INT_EQ(s_one("TN0025", "26001", t, NULL), V_OTHER);
}

static void test_other_verdicts(void)
{
    long long t29 = s_vn("2023-07-29", 10 * 3600);
    /* TN0007: 25972 on the 29th, a no-show. */
    s_asg_t m = s_model(7);
    PX_REQUIRE(m.any && m.status == 4 && strcmp(m.ward, "25972") == 0);
    PX_CHECK_INT_EQ(s_one("TN0007", "25972", t29, NULL), V_NOSHOW);
    PX_CHECK_INT_EQ(s_one("TN0007", "25966", t29, NULL), V_OTHER);
    /* TN0003 has no assignment; TN0250 none at all; TX0001 does not exist. */
    PX_CHECK_INT_EQ(s_one("TN0003", "25966", t29, NULL), V_NOT);
    PX_CHECK_INT_EQ(s_one("TN0250", "25966", t29, NULL), V_NOT);
    PX_CHECK_INT_EQ(s_one("TX0001", "25966", t29, NULL), V_UNKNOWN_VOL);
    PX_CHECK_INT_EQ(s_one("TX0001", "99999", t29, NULL), V_UNKNOWN_VOL);
    PX_CHECK_INT_EQ(s_one("TN0001", "99999", t29, NULL), V_UNKNOWN_UNIT);
    PX_CHECK_INT_EQ(s_one("TN0003", "99999", t29, NULL), V_UNKNOWN_UNIT);
    /* Campaign filter: TN0001 is in tn-a, TN0004 in tn-b, both on the 29th. */
    m = s_model(4);
    PX_REQUIRE(m.any && strcmp(m.campaign, "tn-b") == 0 && strcmp(m.ward, "25969") == 0);
    PX_CHECK_INT_EQ(s_one("TN0001", "25966", t29, "tn-a"), V_ON);
    PX_CHECK_INT_EQ(s_one("TN0001", "25966", t29, "tn-b"), V_NOT);
    PX_CHECK_INT_EQ(s_one("TN0004", "25969", t29, "tn-b"), V_ON);
    PX_CHECK_INT_EQ(s_one("TN0004", "25969", t29, "tn-a"), V_NOT);
    PX_CHECK_INT_EQ(s_one("TN0004", "25969", t29, "khong-co"), V_NOT);
    PX_CHECK_INT_EQ(s_one("TN0004", "25969", t29, ""), V_ON);
}

static void test_empty_batch(void)
{
    s_batch_t b = {0};
    px_code_t rc;
    px_status_t st;
    duty_t *d = s_check(&b, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(d);
    PX_CHECK_INT_EQ(d->n_answers, 0);
    protobuf_c_message_free_unpacked(&d->base, NULL);
}

static void test_bad_query_names_its_index(void)
{
    long long t = s_vn("2023-07-29", 36000);
    struct {
        size_t index;
        const char *vol, *unit, *campaign;
        int nanos;
        bool no_time;
        const char *field;
    } cases[] = {
        {3, "", "25966", "", 0, false, "queries[3].volunteer_code"},
        {0, "TN0001", "", "", 0, false, "queries[0].unit_code"},
        {5, "TN0001", "25966", "", 0, true, "queries[5].time"},
        {1, "TN0001", "25966", "", -5, false, "queries[1].time"},
        {1, "TN0001", "25966", "", 1000000000, false, "queries[1].time"},
        {2, "TN\"1\\", "25966", "", 0, false, "queries[2].volunteer_code"},
        {4, "TN0001", "25966',''", "", 0, false, "queries[4].unit_code"},
        {2, "TN0001", "25966", "TN-A", 0, false, "queries[2].campaign_id"},
        {2, "TN0001", "25966", "a\"b", 0, false, "queries[2].campaign_id"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        s_batch_t b;
        PX_REQUIRE(s_batch_new(&b, 6) == 0);
        for (size_t i = 0; i < 6; i++) {
            s_set(&b, i, "TN0001", "25966", t, NULL);
        }
        size_t i = cases[c].index;
        s_set(&b, i, cases[c].vol, cases[c].unit, t, cases[c].campaign);
        b.ts[i].nanos = cases[c].nanos;
        if (cases[c].no_time) {
            b.q[i].time = NULL;
        }
        px_code_t rc;
        px_status_t st;
        duty_t *d = s_check(&b, &rc, &st);
        PX_CHECK(d == NULL);
        PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
        size_t n = strlen(cases[c].field);
        if (strncmp(st.message, cases[c].field, n) != 0 || st.message[n] != ':') {
            fprintf(stderr, "case %zu: \"%s\" does not name %s\n", c, st.message, cases[c].field);
            PX_CHECK(0);
        }
        if (d) {
            protobuf_c_message_free_unpacked(&d->base, NULL);
        }
        s_batch_free(&b);
    }
}

static void test_ten_thousand_in_one_call(void)
{
    s_batch_t b;
    PX_REQUIRE(s_batch_new(&b, MAX_BATCH + 1) == 0);
    long long t = s_vn("2023-07-30", 12 * 3600);
    for (size_t i = 0; i <= MAX_BATCH; i++) {
        char vol[16];
        snprintf(vol, sizeof vol, "TN%04zu", i % NVOL + 1);
        s_set(&b, i, vol, s_wards[i % 4], t, NULL);
    }
    px_code_t rc;
    px_status_t st;
    duty_t *d = s_check(&b, &rc, &st); /* one too many */
    PX_CHECK(d == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "queries:", 8) == 0);

    b.n = MAX_BATCH;
    int64_t t0 = px_clock_us();
    d = s_check(&b, &rc, &st);
    int64_t took_ms = (px_clock_us() - t0) / 1000;
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(d);
    PX_CHECK_INT_EQ(d->n_answers, MAX_BATCH);
    int bad = 0;
    for (size_t i = 0; i < d->n_answers; i++) {
        s_asg_t m;
        size_t u = i % 4; /* s_units[0..3] are the four wards, as s_wards */
        int want = s_expect((int)(i % NVOL + 1), u, "2023-07-30", "", &m);
        bad += !s_answer_ok(d->answers[i], want, &m, b.vol[i], "2023-07-30");
        if (bad > 5) {
            break;
        }
    }
    PX_CHECK_INT_EQ(bad, 0);
    fprintf(stderr, "CheckDuty of %d queries: %lld ms\n", MAX_BATCH, (long long)took_ms);
    PX_CHECK(took_ms < 10000);
    protobuf_c_message_free_unpacked(&d->base, NULL);
    s_batch_free(&b);
}

static const px_test_case_t s_cases[] = {
    {"batch_of_1000_in_order", test_batch_of_1000_in_order},
    {"days_in_viet_nam", test_days_in_viet_nam},
    {"neighborhood_counts_for_its_ward", test_neighborhood_counts_for_its_ward},
    {"other_verdicts", test_other_verdicts},
    {"empty_batch", test_empty_batch},
    {"bad_query_names_its_index", test_bad_query_names_its_index},
    {"ten_thousand_in_one_call", test_ten_thousand_in_one_call},
    {NULL, NULL},
};

static int s_setup(void)
{
    s_db = PQconnectdb(s_f.db_url);
    return PQstatus(s_db) == CONNECTION_OK && s_sql(s_setup_sql) == 0 && s_load_model() == 0 ? 0
                                                                                             : -1;
}

static void s_teardown(void)
{
    PQfinish(s_db);
}

int main(int argc, char **argv)
{
    return roster_fixture_main(&s_f, "roster_duty", NULL, s_setup, s_teardown, argc, argv, s_cases);
}
