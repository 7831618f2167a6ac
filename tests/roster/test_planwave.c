/*
 * test_planwave.c - PlanWave against a real px-roster and PostgreSQL, with the
 * activation service played by px-activation-double (the real one, issue 4, is
 * not there yet), slow, failing, unreachable or not configured at all.
 *
 * What it proves: the spread follows how far each ward is from its target; the
 * same inputs give the same plan; dry_run writes nothing; a missing or slow
 * activation service gives an even spread, says why, and the call still answers
 * in bounded time; recent no-shows are planned last; a retried or concurrent
 * PlanWave never overfills the wave nor books anyone twice.
 *
 * The data is put into the service's database with plain SQL so that these tests
 * depend on nothing but the planner (not on the upsert handlers).
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/clock.h"
#include "px_test.h"
#include "roster_fixture.h"

#define CAMPAIGN "tn-test"
#define DAY1 "2023-07-29"
#define DAY2 "2023-07-30"
#define NWARDS 10

/* Thuận An's wards, in code order, as in ../shared/data/thuan-an/units.csv. */
static const char *const s_wards[NWARDS] = {"25963", "25966", "25969", "25972", "25975",
                                            "25978", "25981", "25984", "25987", "25990"};

/* targets.csv's targets with some activations: 25984 is far behind, 25972 nearly green,
 * 25975 green already. */
static const char s_progress[] =
    "--progress=25966:10850:1200,25963:10150:3000,25969:12450:2000,25972:4150:4000,"
    "25975:5300:6000,25978:10000:1000,25981:11450:500,25984:15200:0,25987:12500:2500,"
    "25990:15900:7900,26001:1000:0,26002:1000:900";

static const char s_setup_sql[] =
    "INSERT INTO units (code, name, level, parent_code, version) VALUES"
    " ('74', 'Bình Dương', 1, NULL, 1), ('725', 'Thuận An', 2, '74', 1),"
    " ('726', 'Dĩ An', 2, '74', 1),"
    " ('25966', 'Lái Thiêu', 3, '725', 1), ('25963', 'An Thạnh', 3, '725', 1),"
    " ('25969', 'Bình Chuẩn', 3, '725', 1), ('25972', 'Thuận Giao', 3, '725', 1),"
    " ('25975', 'An Phú', 3, '725', 1), ('25978', 'Hưng Định', 3, '725', 1),"
    " ('25981', 'An Sơn', 3, '725', 1), ('25984', 'Bình Nhâm', 3, '725', 1),"
    " ('25987', 'Bình Hòa', 3, '725', 1), ('25990', 'Vĩnh Phú', 3, '725', 1),"
    " ('26001', 'Dĩ An', 3, '726', 1), ('26002', 'Tân Bình', 3, '726', 1),"
    " ('25966-01', 'Đông Nhì', 4, '25966', 1);"
    "INSERT INTO volunteers (code, full_name, name_folded)"
    " SELECT 'TV' || lpad(g::text, 3, '0'), 'Tình nguyện ' || g, 'tinh nguyen ' || g"
    " FROM generate_series(1, 80) g;"
    "UPDATE volunteers SET active = false WHERE code IN ('TV001', 'TV002');"
    "INSERT INTO campaigns (id, name, starts_on, ends_on, unit_code)"
    " VALUES ('" CAMPAIGN "', 'Thử', '2023-06-01', '2023-08-31', '725');"
    "INSERT INTO waves (campaign_id, day, capacity) VALUES"
    " ('" CAMPAIGN "', '2023-06-30', 30), ('" CAMPAIGN "', '" DAY1 "', 30),"
    " ('" CAMPAIGN "', '" DAY2 "', 30), ('" CAMPAIGN "', '2023-08-05', 5);";

/* ------------------------------------------------------------------- helpers */

static int s_sql(roster_fixture_t *f, const char *sql)
{
    PGconn *c = PQconnectdb(f->db_url);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType s = PQresultStatus(r);
        rc = (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) ? 0 : -1;
        if (rc != 0) {
            fprintf(stderr, "sql failed: %s\n", PQerrorMessage(c));
        }
        PQclear(r);
    }
    PQfinish(c);
    return rc;
}

/* Starts px-roster on fresh data with the extra flags (NULL-terminated) and the test's rows. */
static int s_start(roster_fixture_t *f, const char *const *extra)
{
    if (roster_fixture_start(f, "planwave", extra) != 0) {
        return -1;
    }
    return s_sql(f, s_setup_sql);
}

static int s_double_start(testd_t *d, const char *const *flags)
{
    const char *args[16] = {"--listen=tcp://127.0.0.1:0", "--log-level=warn"};
    int n = 2;
    for (size_t i = 0; flags && flags[i] && n < 15; i++) {
        args[n++] = flags[i];
    }
    args[n] = NULL;
    return proc_start(d, "tests/roster/px-activation-double", args);
}

static px_code_t s_plan(roster_fixture_t *f, const char *day, bool dry_run, const char *unit,
                        Phuxanh__Roster__V1__PlanWaveResponse **rep, px_status_t *st)
{
    Phuxanh__Roster__V1__PlanWaveRequest req = PHUXANH__ROSTER__V1__PLAN_WAVE_REQUEST__INIT;
    req.campaign_id = CAMPAIGN;
    req.day = (char *)day;
    req.dry_run = dry_run;
    req.unit_code = (char *)(unit ? unit : "");
    *rep = NULL;
    return roster_call(f, "PlanWave", &req.base,
                       &phuxanh__roster__v1__plan_wave_response__descriptor,
                       (ProtobufCMessage **)rep, st);
}

static void s_free(Phuxanh__Roster__V1__PlanWaveResponse **rep)
{
    if (*rep) {
        protobuf_c_message_free_unpacked(&(*rep)->base, NULL);
        *rep = NULL;
    }
}

static const Phuxanh__Roster__V1__WardAllocation *
s_ward(const Phuxanh__Roster__V1__PlanWaveResponse *rep, const char *code)
{
    for (size_t i = 0; i < rep->n_wards; i++) {
        if (strcmp(rep->wards[i]->unit_code, code) == 0) {
            return rep->wards[i];
        }
    }
    return NULL;
}

static int s_planned_sum(const Phuxanh__Roster__V1__PlanWaveResponse *rep)
{
    int sum = 0;
    for (size_t i = 0; i < rep->n_wards; i++) {
        sum += rep->wards[i]->planned;
    }
    return sum;
}

/* The answer's own invariants: wards and assignments in order, counts that agree. */
static void s_check_shape(const Phuxanh__Roster__V1__PlanWaveResponse *rep)
{
    for (size_t i = 1; i < rep->n_wards; i++) {
        PX_CHECK(strcmp(rep->wards[i - 1]->unit_code, rep->wards[i]->unit_code) < 0);
    }
    for (size_t i = 1; i < rep->n_planned; i++) {
        int c = strcmp(rep->planned[i - 1]->unit_code, rep->planned[i]->unit_code);
        PX_CHECK(c < 0 || (c == 0 && strcmp(rep->planned[i - 1]->volunteer_code,
                                            rep->planned[i]->volunteer_code) < 0));
    }
    for (size_t i = 0; i < rep->n_planned; i++) {
        PX_CHECK_INT_EQ(rep->planned[i]->status,
                        PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_PLANNED);
        const Phuxanh__Roster__V1__WardAllocation *w = s_ward(rep, rep->planned[i]->unit_code);
        PX_CHECK(w != NULL);
    }
    PX_CHECK_INT_EQ(s_planned_sum(rep), rep->n_planned);
    PX_CHECK_INT_EQ(rep->capacity - rep->already_assigned - (int)rep->n_planned, rep->unfilled);
}

/* A plan as text, to compare two plans whole. */
static void s_plan_text(const Phuxanh__Roster__V1__PlanWaveResponse *rep, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < rep->n_wards && n < cap; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s:%d:%d;", rep->wards[i]->unit_code,
                              rep->wards[i]->remaining_to_target, rep->wards[i]->planned);
    }
    for (size_t i = 0; i < rep->n_planned && n < cap; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s@%s,", rep->planned[i]->volunteer_code,
                              rep->planned[i]->unit_code);
    }
}

/* ------------------------------------------------------------------- with the double */

static void test_proportional_to_remaining(void)
{
    testd_t d;
    const char *dflags[] = {s_progress, NULL};
    PX_REQUIRE(s_double_start(&d, dflags) == 0);
    char peer[300];
    snprintf(peer, sizeof peer, "--activation-endpoints=%s", d.endpoint);
    const char *extra[] = {peer, NULL};
    roster_fixture_t f;
    PX_REQUIRE(s_start(&f, extra) == 0);

    Phuxanh__Roster__V1__PlanWaveResponse *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, true, NULL, &rep, &st), PX_OK);
    if (rep) {
        s_check_shape(rep);
        PX_CHECK(!rep->even_spread_fallback);
        PX_CHECK_STR_EQ(rep->fallback_reason, "");
        PX_CHECK_INT_EQ(rep->n_wards, NWARDS);
        PX_CHECK_INT_EQ(rep->capacity, 30);
        PX_CHECK_INT_EQ(rep->n_planned, 30);
        PX_CHECK_INT_EQ(rep->unfilled, 0);
        PX_CHECK(!rep->committed);
        for (size_t i = 0; i < rep->n_wards; i++) {
            PX_CHECK(rep->wards[i]->planned >= 1); /* every ward gets someone */
        }
        const Phuxanh__Roster__V1__WardAllocation *far = s_ward(rep, "25984");
        const Phuxanh__Roster__V1__WardAllocation *near = s_ward(rep, "25972");
        const Phuxanh__Roster__V1__WardAllocation *green = s_ward(rep, "25975");
        PX_REQUIRE(far && near && green);
        PX_CHECK_INT_EQ(far->remaining_to_target, 15200);
        PX_CHECK_INT_EQ(near->remaining_to_target, 150);
        PX_CHECK_INT_EQ(green->remaining_to_target, 0); /* past its target: not negative */
        PX_CHECK_STR_EQ(far->unit_name, "Bình Nhâm");
        PX_CHECK(far->planned > near->planned);
        PX_CHECK_INT_EQ(green->planned, 1);
        /* Remaining 80,550 in all; 20 seats after one each. 25984: 1 + 3.77 -> 5 (a largest
         * remainder); 25981: 1 + 2.72 -> 4; 25966: 1 + 2.40 -> 3 (its remainder too small). */
        PX_CHECK_INT_EQ(far->planned, 5);
        PX_CHECK_INT_EQ(s_ward(rep, "25981")->planned, 4);
        PX_CHECK_INT_EQ(s_ward(rep, "25966")->planned, 3);
        PX_CHECK_INT_EQ(s_ward(rep, "25990")->planned, 3); /* 1 + 1.99 */
    }
    s_free(&rep);

    /* Only asked area: one ward takes the whole wave. */
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, true, "25966", &rep, &st), PX_OK);
    if (rep) {
        PX_CHECK_INT_EQ(rep->n_wards, 1);
        PX_CHECK_INT_EQ(rep->n_planned, 30);
        PX_CHECK(!rep->even_spread_fallback);
        PX_CHECK_INT_EQ(rep->wards[0]->remaining_to_target, 9650);
    }
    s_free(&rep);

    /* A province: the wards of both districts, each district asked for its own. */
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, true, "74", &rep, &st), PX_OK);
    if (rep) {
        s_check_shape(rep);
        PX_CHECK_INT_EQ(rep->n_wards, NWARDS + 2);
        PX_CHECK(!rep->even_spread_fallback);
        PX_CHECK(s_ward(rep, "26002") && s_ward(rep, "26002")->remaining_to_target == 100);
    }
    s_free(&rep);

    /* A neighborhood is no area; an unknown unit is NOT_FOUND. */
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, true, "25966-01", &rep, &st), PX_INVALID_ARGUMENT);
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, true, "99999", &rep, &st), PX_NOT_FOUND);
    PX_CHECK(strstr(st.message, "unit_code") != NULL);

    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);
    testd_stop(&d, SIGTERM);
}

static void test_dry_run_is_deterministic_and_writes_nothing(void)
{
    testd_t d;
    const char *dflags[] = {s_progress, NULL};
    PX_REQUIRE(s_double_start(&d, dflags) == 0);
    char peer[300];
    snprintf(peer, sizeof peer, "--activation-endpoints=%s", d.endpoint);
    const char *extra[] = {peer, NULL};
    roster_fixture_t f;
    PX_REQUIRE(s_start(&f, extra) == 0);

    Phuxanh__Roster__V1__PlanWaveResponse *a = NULL, *b = NULL, *w = NULL;
    px_status_t st;
    static char ta[8192], tb[8192], tw[8192];
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, true, NULL, &a, &st), PX_OK);
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, true, NULL, &b, &st), PX_OK);
    PX_REQUIRE(a && b);
    s_plan_text(a, ta, sizeof ta);
    s_plan_text(b, tb, sizeof tb);
    PX_CHECK_STR_EQ(ta, tb);
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM assignments"), 0);
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT sum(assigned) FROM waves"), 0);
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM audit"), 0);
    /* Inactive volunteers are never planned. */
    for (size_t i = 0; i < a->n_planned; i++) {
        PX_CHECK(strcmp(a->planned[i]->volunteer_code, "TV001") != 0);
        PX_CHECK(strcmp(a->planned[i]->volunteer_code, "TV002") != 0);
    }

    /* The written plan is the plan the dry run showed. */
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, false, NULL, &w, &st), PX_OK);
    PX_REQUIRE(w);
    PX_CHECK(w->committed);
    s_plan_text(w, tw, sizeof tw);
    PX_CHECK_STR_EQ(ta, tw);
    PX_CHECK(w->n_planned > 0 && w->planned[0]->created_at != NULL);
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM assignments WHERE day = '" DAY1
                                       "' AND status = 1"),
                    30);
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT assigned FROM waves WHERE day = '" DAY1 "'"), 30);
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM audit WHERE method LIKE '%PlanWave'"),
                    1);
    s_free(&w);

    /* A retry only tops up: nothing left to add. */
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, false, NULL, &w, &st), PX_OK);
    if (w) {
        PX_CHECK_INT_EQ(w->n_planned, 0);
        PX_CHECK_INT_EQ(w->already_assigned, 30);
        PX_CHECK_INT_EQ(w->unfilled, 0);
        PX_CHECK_INT_EQ(s_planned_sum(w), 0);
        PX_CHECK_INT_EQ(s_ward(w, "25984")->already_assigned, 5);
    }
    s_free(&w);
    /* A seat freed (a no-show) is filled by the next PlanWave, by someone not yet that day. */
    PX_CHECK_INT_EQ(s_sql(&f, "UPDATE assignments SET status = 4 WHERE day = '" DAY1
                              "' AND volunteer_code = (SELECT min(volunteer_code) FROM assignments"
                              " WHERE day = '" DAY1 "');"
                              "UPDATE waves SET assigned = 29 WHERE day = '" DAY1 "'"),
                    0);
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, false, NULL, &w, &st), PX_OK);
    if (w) {
        PX_CHECK_INT_EQ(w->n_planned, 1);
        PX_CHECK_INT_EQ(w->already_assigned, 29);
    }
    s_free(&w);
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT assigned FROM waves WHERE day = '" DAY1 "'"), 30);
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM assignments WHERE day = '" DAY1
                                       "' AND status <> 4"),
                    30);

    s_free(&a);
    s_free(&b);
    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);
    testd_stop(&d, SIGTERM);
}

/* ------------------------------------------------------------------- without it */

static void s_check_even(const Phuxanh__Roster__V1__PlanWaveResponse *rep)
{
    PX_CHECK(rep->even_spread_fallback);
    PX_CHECK_INT_EQ(rep->n_wards, NWARDS);
    for (size_t i = 0; i < rep->n_wards && i < NWARDS; i++) {
        PX_CHECK_STR_EQ(rep->wards[i]->unit_code, s_wards[i]);
        PX_CHECK_INT_EQ(rep->wards[i]->planned, 3);
        PX_CHECK_INT_EQ(rep->wards[i]->remaining_to_target, 0);
    }
    PX_CHECK_INT_EQ(rep->n_planned, 30);
}

static void test_fallback_no_peer_configured(void)
{
    roster_fixture_t f;
    PX_REQUIRE(s_start(&f, NULL) == 0);
    Phuxanh__Roster__V1__PlanWaveResponse *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, true, NULL, &rep, &st), PX_OK);
    if (rep) {
        s_check_shape(rep);
        s_check_even(rep);
        PX_CHECK_STR_EQ(rep->fallback_reason, "activation service not configured");
    }
    s_free(&rep);
    /* The wards beyond the seats: a 5-seat wave goes to the first five wards by code. */
    PX_CHECK_INT_EQ(s_plan(&f, "2023-08-05", true, NULL, &rep, &st), PX_OK);
    if (rep) {
        for (size_t i = 0; i < rep->n_wards; i++) {
            PX_CHECK_INT_EQ(rep->wards[i]->planned, i < 5 ? 1 : 0);
        }
    }
    s_free(&rep);
    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);
}

static void test_fallback_nobody_listens(void)
{
    int port = px_test_free_port();
    PX_REQUIRE(port > 0);
    char peer[200];
    snprintf(peer, sizeof peer, "--activation-endpoints=tcp://127.0.0.1:%d", port);
    const char *extra[] = {peer, "--plan-progress-timeout-ms=700", NULL};
    roster_fixture_t f;
    PX_REQUIRE(s_start(&f, extra) == 0);
    Phuxanh__Roster__V1__PlanWaveResponse *rep = NULL;
    px_status_t st;
    int64_t t0 = px_clock_us();
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, true, NULL, &rep, &st), PX_OK);
    int64_t took_ms = (px_clock_us() - t0) / 1000;
    PX_CHECK(took_ms < 3000);
    if (rep) {
        s_check_even(rep);
        PX_CHECK(strncmp(rep->fallback_reason, "activation service: ", 20) == 0);
        PX_CHECK(strstr(rep->fallback_reason, "UNAVAILABLE") ||
                 strstr(rep->fallback_reason, "DEADLINE_EXCEEDED"));
    }
    s_free(&rep);
    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);
}

static void test_fallback_slow_double(void)
{
    testd_t d;
    const char *dflags[] = {s_progress, "--delay-ms=5000", NULL};
    PX_REQUIRE(s_double_start(&d, dflags) == 0);
    char peer[300];
    snprintf(peer, sizeof peer, "--activation-endpoints=%s", d.endpoint);
    const char *extra[] = {peer, "--plan-progress-timeout-ms=300", NULL};
    roster_fixture_t f;
    PX_REQUIRE(s_start(&f, extra) == 0);
    Phuxanh__Roster__V1__PlanWaveResponse *rep = NULL;
    px_status_t st;
    int64_t t0 = px_clock_us();
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, false, NULL, &rep, &st), PX_OK);
    int64_t took_ms = (px_clock_us() - t0) / 1000;
    PX_CHECK(took_ms < 2000);
    if (rep) {
        s_check_even(rep);
        PX_CHECK(rep->committed);
        PX_CHECK(strstr(rep->fallback_reason, "activation service: DEADLINE_EXCEEDED") ==
                 rep->fallback_reason);
    }
    s_free(&rep);
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT assigned FROM waves WHERE day = '" DAY1 "'"), 30);
    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);
    testd_stop(&d, SIGTERM);
}

static void test_fallback_failing_or_partial_double(void)
{
    testd_t d, p;
    const char *fail[] = {s_progress, "--fail-code=13", NULL};
    const char *partial[] = {"--progress=25966:100:0,25963:100:0", NULL};
    PX_REQUIRE(s_double_start(&d, fail) == 0);
    PX_REQUIRE(s_double_start(&p, partial) == 0);
    char peer[300];
    snprintf(peer, sizeof peer, "--activation-endpoints=%s", d.endpoint);
    const char *extra[] = {peer, NULL};
    roster_fixture_t f;
    PX_REQUIRE(s_start(&f, extra) == 0);
    Phuxanh__Roster__V1__PlanWaveResponse *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, true, NULL, &rep, &st), PX_OK);
    if (rep) {
        s_check_even(rep);
        PX_CHECK_STR_EQ(rep->fallback_reason,
                        "activation service: INTERNAL: activation double told to fail");
    }
    s_free(&rep);
    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);

    snprintf(peer, sizeof peer, "--activation-endpoints=%s", p.endpoint);
    PX_REQUIRE(s_start(&f, extra) == 0);
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, true, NULL, &rep, &st), PX_OK);
    if (rep) {
        s_check_even(rep);
        PX_CHECK_STR_EQ(rep->fallback_reason, "activation service: no progress for ward 25969");
    }
    s_free(&rep);
    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);
    testd_stop(&d, SIGTERM);
    testd_stop(&p, SIGTERM);
}

/* ------------------------------------------------------------------- who goes first */

static void test_noshow_planned_last(void)
{
    roster_fixture_t f;
    const char *extra[] = {"--noshow-lookback-days=28", NULL};
    PX_REQUIRE(s_start(&f, extra) == 0);
    /* 78 active volunteers. TV003 was a no-show on 2023-06-30, 30 days before DAY2: outside
     * the lookback. TV004..TV008 were no-shows on DAY1, the day before DAY2: inside it.
     * TV009..TV020 served DAY1 (one assignment in the campaign). */
    PX_REQUIRE(s_sql(&f, "INSERT INTO assignments (volunteer_code, day, campaign_id, unit_code,"
                         " status) VALUES ('TV003', '2023-06-30', '" CAMPAIGN "', '25966', 4);"
                         "INSERT INTO assignments (volunteer_code, day, campaign_id, unit_code,"
                         " status) SELECT 'TV' || lpad(g::text, 3, '0'), '" DAY1 "', '" CAMPAIGN
                         "', '25966', CASE WHEN g <= 8 THEN 4 ELSE 1 END"
                         " FROM generate_series(4, 20) g;"
                         "UPDATE waves SET assigned = 12 WHERE day = '" DAY1 "'") == 0);
    Phuxanh__Roster__V1__PlanWaveResponse *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(s_plan(&f, DAY2, true, NULL, &rep, &st), PX_OK);
    PX_REQUIRE(rep);
    PX_CHECK_INT_EQ(rep->n_planned, 30);
    bool seen[81] = {false};
    for (size_t i = 0; i < rep->n_planned; i++) {
        int n = atoi(rep->planned[i]->volunteer_code + 2);
        if (n > 0 && n <= 80) {
            seen[n] = true;
        }
    }
    /* Fresh volunteers first, in code order: TV021..TV050. TV003 (its old no-show is still an
     * assignment in the campaign), the served-once and the recent no-shows are not reached. */
    for (int n = 21; n <= 50; n++) {
        PX_CHECK(seen[n]);
    }
    for (int n = 1; n <= 20; n++) {
        PX_CHECK(!seen[n]);
    }
    s_free(&rep);

    /* The leftovers: with TV021..TV076 inactive and TV077..TV080 holding 4 of the 20 seats of
     * 2023-07-31, the 18 candidates are TV003 and TV009..TV020 (served once), then the recent
     * no-shows TV004..TV008 (inside the lookback of 2023-07-31 too). */
    PX_REQUIRE(s_sql(&f, "INSERT INTO waves (campaign_id, day, capacity, assigned) VALUES"
                         " ('" CAMPAIGN "', '2023-07-31', 20, 4);"
                         "INSERT INTO assignments (volunteer_code, day, campaign_id, unit_code)"
                         " SELECT 'TV' || lpad(g::text, 3, '0'), '2023-07-31', '" CAMPAIGN
                         "', '25963' FROM generate_series(77, 80) g;"
                         "UPDATE volunteers SET active = false"
                         " WHERE code BETWEEN 'TV021' AND 'TV076'") == 0);
    /* 4 taken of 20: 16 free, 18 candidates: the two left out are no-shows TV007, TV008;
     * TV003, whose no-show is older than the lookback, is not held back. */
    PX_CHECK_INT_EQ(s_plan(&f, "2023-07-31", true, NULL, &rep, &st), PX_OK);
    if (rep) {
        PX_CHECK_INT_EQ(rep->n_planned, 16);
        bool tv003 = false;
        for (size_t i = 0; i < rep->n_planned; i++) {
            tv003 = tv003 || strcmp(rep->planned[i]->volunteer_code, "TV003") == 0;
        }
        PX_CHECK(tv003);
        for (size_t i = 0; i < rep->n_planned; i++) {
            PX_CHECK(strcmp(rep->planned[i]->volunteer_code, "TV007") != 0);
            PX_CHECK(strcmp(rep->planned[i]->volunteer_code, "TV008") != 0);
        }
    }
    s_free(&rep);
    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);
}

static void test_unfilled_when_volunteers_run_out(void)
{
    roster_fixture_t f;
    PX_REQUIRE(s_start(&f, NULL) == 0);
    PX_REQUIRE(s_sql(&f, "UPDATE volunteers SET active = false WHERE code > 'TV020'") == 0);
    Phuxanh__Roster__V1__PlanWaveResponse *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(s_plan(&f, DAY1, false, NULL, &rep, &st), PX_OK);
    if (rep) {
        s_check_shape(rep);
        PX_CHECK_INT_EQ(rep->n_planned, 18);
        PX_CHECK_INT_EQ(rep->unfilled, 12);
    }
    s_free(&rep);
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT assigned FROM waves WHERE day = '" DAY1 "'"), 18);
    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);
}

static void test_refusals(void)
{
    roster_fixture_t f;
    PX_REQUIRE(s_start(&f, NULL) == 0);
    Phuxanh__Roster__V1__PlanWaveResponse *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(s_plan(&f, "2023-07-28", true, NULL, &rep, &st), PX_NOT_FOUND);
    PX_CHECK(strstr(st.message, "day") != NULL);
    PX_CHECK_INT_EQ(s_plan(&f, "2023-02-30", true, NULL, &rep, &st), PX_INVALID_ARGUMENT);
    Phuxanh__Roster__V1__PlanWaveRequest req = PHUXANH__ROSTER__V1__PLAN_WAVE_REQUEST__INIT;
    req.campaign_id = "no-such-campaign";
    req.day = DAY1;
    ProtobufCMessage *msg = NULL;
    PX_CHECK_INT_EQ(roster_call(&f, "PlanWave", &req.base,
                                &phuxanh__roster__v1__plan_wave_response__descriptor, &msg, &st),
                    PX_NOT_FOUND);
    PX_CHECK(strstr(st.message, "campaign_id") != NULL);
    req.campaign_id = "";
    PX_CHECK_INT_EQ(roster_call(&f, "PlanWave", &req.base,
                                &phuxanh__roster__v1__plan_wave_response__descriptor, &msg, &st),
                    PX_INVALID_ARGUMENT);
    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);
}

/* ------------------------------------------------------------------- concurrency */

typedef struct {
    const char *endpoint;
    int planned;
    px_code_t code;
} s_racer_t;

static void *s_racer(void *arg)
{
    s_racer_t *r = arg;
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = "racer"};
    px_rpc_client_t *c = px_rpc_client_new(r->endpoint, &o, &st);
    r->code = PX_UNKNOWN;
    if (c) {
        Phuxanh__Roster__V1__PlanWaveRequest req = PHUXANH__ROSTER__V1__PLAN_WAVE_REQUEST__INIT;
        req.campaign_id = CAMPAIGN;
        req.day = DAY1;
        ProtobufCMessage *rep = NULL;
        px_rpc_call_opts_t co = {.timeout_ms = 30000};
        r->code = px_rpc_client_call(c, "/phuxanh.roster.v1.RosterService/PlanWave", &req.base,
                                     &phuxanh__roster__v1__plan_wave_response__descriptor, &rep,
                                     &co, &st);
        if (rep) {
            r->planned = (int)((Phuxanh__Roster__V1__PlanWaveResponse *)rep)->n_planned;
            protobuf_c_message_free_unpacked(rep, NULL);
        }
        px_rpc_client_destroy(&c);
    }
    return NULL;
}

static void test_concurrent_plans_never_overfill(void)
{
    roster_fixture_t f;
    const char *extra[] = {"--workers=4", NULL};
    PX_REQUIRE(s_start(&f, extra) == 0);
    for (int round = 0; round < 3; round++) {
        PX_REQUIRE(s_sql(&f, "DELETE FROM assignments; UPDATE waves SET assigned = 0") == 0);
        enum { NRACERS = 4 };
        s_racer_t r[NRACERS];
        pthread_t t[NRACERS];
        for (int i = 0; i < NRACERS; i++) {
            r[i] = (s_racer_t){.endpoint = f.proc.endpoint};
            pthread_create(&t[i], NULL, s_racer, &r[i]);
        }
        int sum = 0;
        for (int i = 0; i < NRACERS; i++) {
            pthread_join(t[i], NULL);
            PX_CHECK_INT_EQ(r[i].code, PX_OK);
            sum += r[i].planned;
        }
        PX_CHECK_INT_EQ(sum, 30);
        PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM assignments"), 30);
        PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT assigned FROM waves WHERE day = '" DAY1 "'"),
                        30);
    }
    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);
}

int main(int argc, char **argv)
{
    static const px_test_case_t cases[] = {
        {"proportional_to_remaining", test_proportional_to_remaining},
        {"dry_run_is_deterministic_and_writes_nothing",
         test_dry_run_is_deterministic_and_writes_nothing},
        {"fallback_no_peer_configured", test_fallback_no_peer_configured},
        {"fallback_nobody_listens", test_fallback_nobody_listens},
        {"fallback_slow_double", test_fallback_slow_double},
        {"fallback_failing_or_partial_double", test_fallback_failing_or_partial_double},
        {"noshow_planned_last", test_noshow_planned_last},
        {"unfilled_when_volunteers_run_out", test_unfilled_when_volunteers_run_out},
        {"refusals", test_refusals},
        {"concurrent_plans_never_overfill", test_concurrent_plans_never_overfill},
        {NULL, NULL},
    };
    return px_test_main(argc, argv, cases);
}
