/*
 * test_planwave.c - PlanWave against a real px-roster and PostgreSQL, with the
 * real activation service (px-activation, on its own database) answering
 * GetProgress - live, paused, failing, behind the roster's unit tree, stopped -
 * or not there at all.
 *
 * What it proves: the spread follows how far each ward is from its target, as
 * the activation service counts it from the events it was given; the same
 * inputs give the same plan; dry_run writes nothing; an activation service that
 * is not configured, not listening, stopped, paused (SIGSTOP: it takes the call
 * but never answers), failing (its database refuses it) or that leaves a ward
 * out gives an even spread, says why, and the call still answers in bounded
 * time - and once the service is back the plan follows its figures again;
 * recent no-shows are planned last; a retried or concurrent PlanWave never
 * overfills the wave nor books anyone twice.
 *
 * The two services point at each other: PlanWave asks the activation service
 * for progress, and the activation service asks the roster for the unit tree
 * and the campaign. So the activation service's port is picked first, px-roster
 * is started with it, the roster's data is put in, and only then is
 * px-activation started on that port - it reads the tree once at start (and is
 * told not to read it again during a case) - and given its figures through its
 * own API: SetTargets, then RecordEvents with synthetic but valid citizens.
 *
 * The roster's data is put into its database with plain SQL so that these tests
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
/* Every unit of s_setup_sql: the activation service has read the tree once it holds these. */
#define NUNITS 16
/* 2023-07-28 10:00 in Viet Nam, the day before DAY1: when the seeded events happened. */
#define EVENTS_AT_UNIX 1690513200LL
/* The planner's own budget for GetProgress in the cases that wait it out: well above what a
 * live answer takes (even in a sanitizer build on a busy machine), well below the bounds the
 * cases assert. */
#define SLOW_BUDGET "--plan-progress-timeout-ms=1000"

/* Thuận An's wards, in code order, as in ../shared/data/thuan-an/units.csv. */
static const char *const s_wards[NWARDS] = {"25963", "25966", "25969", "25972", "25975",
                                            "25978", "25981", "25984", "25987", "25990"};

/* The activation service's figures: targets.csv's targets and some activations, a hundredth
 * of the real ones (rounded) so that a few hundred events make them. 25984 is far behind (its
 * approved-but-not-activated citizens do not count), 25972 nearly green, 25975 green already;
 * 26001 and 26002 are in the other district. */
static const struct {
    const char *ward;
    int target, activated, approved_only;
} s_figures[] = {
    {"25963", 102, 30, 0}, {"25966", 109, 12, 0}, {"25969", 125, 20, 0}, {"25972", 42, 40, 0},
    {"25975", 53, 60, 0},  {"25978", 100, 10, 0}, {"25981", 115, 5, 0},  {"25984", 152, 0, 20},
    {"25987", 125, 25, 0}, {"25990", 159, 79, 0}, {"26001", 10, 0, 0},   {"26002", 10, 9, 0},
};
#define NFIGURES (sizeof s_figures / sizeof s_figures[0])
/* One event per citizen; RecordEvents takes up to 1,000 in one call. */
#define MAX_EVENTS 1000

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

/* SetTargets of n (ward, target) pairs of the test campaign; 0 when committed. */
static int s_set_targets(roster_peer_t *a, const char *const *wards, const int *targets, size_t n)
{
    Phuxanh__Activation__V1__Target t[NFIGURES + 1], *tp[NFIGURES + 1];
    if (n > NFIGURES + 1) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        phuxanh__activation__v1__target__init(&t[i]);
        t[i].campaign_id = CAMPAIGN;
        t[i].unit_code = (char *)wards[i];
        t[i].target = targets[i];
        tp[i] = &t[i];
    }
    Phuxanh__Activation__V1__SetTargetsRequest req =
        PHUXANH__ACTIVATION__V1__SET_TARGETS_REQUEST__INIT;
    req.targets = tp;
    req.n_targets = n;
    ProtobufCMessage *msg = NULL;
    px_status_t st;
    if (roster_peer_call(a, "SetTargets", &req.base,
                         &phuxanh__activation__v1__set_targets_response__descriptor, &msg,
                         &st) != PX_OK) {
        fprintf(stderr, "SetTargets: %s\n", st.message);
        return -1;
    }
    const Phuxanh__Activation__V1__SetTargetsResponse *rep = (const void *)msg;
    int rc = rep->committed && rep->n_errors == 0 ? 0 : -1;
    if (rc != 0) {
        fprintf(stderr, "SetTargets: not committed: %s\n",
                rep->n_errors ? rep->errors[0]->message : "");
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}

/* Gives the activation service s_figures: the targets, then one event per citizen (activated,
 * or only approved), each citizen a valid ID of their own - born in Bình Dương in 1990. */
static int s_seed(roster_peer_t *a)
{
    const char *wards[NFIGURES];
    int targets[NFIGURES];
    for (size_t i = 0; i < NFIGURES; i++) {
        wards[i] = s_figures[i].ward;
        targets[i] = s_figures[i].target;
    }
    if (s_set_targets(a, wards, targets, NFIGURES) != 0) {
        return -1;
    }
    struct s_events {
        Phuxanh__Activation__V1__ActivationEvent ev[MAX_EVENTS];
        Phuxanh__Activation__V1__ActivationEvent *evp[MAX_EVENTS];
        Google__Protobuf__Timestamp ts[MAX_EVENTS];
        char key[MAX_EVENTS][16], id[MAX_EVENTS][16];
    } *e = calloc(1, sizeof *e);
    if (!e) {
        return -1;
    }
    size_t n = 0;
    for (size_t w = 0; w < NFIGURES; w++) {
        int count = s_figures[w].activated + s_figures[w].approved_only;
        for (int k = 0; k < count && n < MAX_EVENTS; k++, n++) {
            snprintf(e->key[n], sizeof e->key[n], "pw-%zu", n);
            snprintf(e->id[n], sizeof e->id[n], "074090%06zu", n);
            google__protobuf__timestamp__init(&e->ts[n]);
            e->ts[n].seconds = EVENTS_AT_UNIX + (int64_t)n;
            Phuxanh__Activation__V1__ActivationEvent *ev = &e->ev[n];
            phuxanh__activation__v1__activation_event__init(ev);
            ev->idempotency_key = e->key[n];
            ev->campaign_id = CAMPAIGN;
            ev->citizen_id = e->id[n];
            ev->unit_code = (char *)s_figures[w].ward;
            ev->stage = k < s_figures[w].activated ? PHUXANH__ACTIVATION__V1__STAGE__STAGE_ACTIVATED
                                                   : PHUXANH__ACTIVATION__V1__STAGE__STAGE_APPROVED;
            ev->channel = PHUXANH__ACTIVATION__V1__CHANNEL__CHANNEL_OWN_PHONE;
            ev->venue = PHUXANH__ACTIVATION__V1__VENUE__VENUE_OFFICE;
            ev->occurred_at = &e->ts[n];
            ev->consent = true;
            e->evp[n] = ev;
        }
    }
    Phuxanh__Activation__V1__RecordEventsRequest req =
        PHUXANH__ACTIVATION__V1__RECORD_EVENTS_REQUEST__INIT;
    req.events = e->evp;
    req.n_events = n;
    ProtobufCMessage *msg = NULL;
    px_status_t st;
    int rc = -1;
    if (roster_peer_call(a, "RecordEvents", &req.base,
                         &phuxanh__activation__v1__record_events_response__descriptor, &msg,
                         &st) != PX_OK) {
        fprintf(stderr, "RecordEvents: %s\n", st.message);
    } else {
        const Phuxanh__Activation__V1__RecordEventsResponse *rep = (const void *)msg;
        rc = rep->recorded == (int32_t)n ? 0 : -1;
        for (size_t i = 0; rc != 0 && i < rep->n_results; i++) {
            if (rep->results[i]->code != PX_OK) {
                fprintf(stderr, "RecordEvents: event %zu: %s\n", i, rep->results[i]->message);
                break;
            }
        }
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    free(e);
    return rc;
}

/* The roster with its rows and a live activation service with s_figures, pointing at each
 * other. */
typedef struct {
    roster_fixture_t roster;
    roster_peer_t act;
} s_env_t;

static int s_env_start(s_env_t *env, const char *const *roster_extra, const char *const *act_extra)
{
    memset(env, 0, sizeof *env);
    int port = px_test_free_port();
    if (port <= 0) {
        return -1;
    }
    char peer[100];
    snprintf(peer, sizeof peer, "--activation-endpoints=tcp://127.0.0.1:%d", port);
    const char *rflags[16] = {peer};
    size_t n = 1;
    for (size_t i = 0; roster_extra && roster_extra[i] && n < 15; i++) {
        rflags[n++] = roster_extra[i];
    }
    rflags[n] = NULL;
    /* The tree is read once at start; no second read during a case, so that a ward the roster
     * gains meanwhile stays unknown to the service until it is asked about it. */
    const char *aflags[16] = {"--verify-interval-ms=3600000"};
    n = 1;
    for (size_t i = 0; act_extra && act_extra[i] && n < 15; i++) {
        aflags[n++] = act_extra[i];
    }
    aflags[n] = NULL;
    if (s_start(&env->roster, rflags) != 0 ||
        roster_peer_start(&env->act, "planwave_act", port, env->roster.proc.endpoint, NUNITS,
                          aflags) != 0 ||
        s_seed(&env->act) != 0) {
        /* Nothing left running behind a case that cannot start. */
        roster_fixture_stop(&env->roster);
        roster_peer_stop(&env->act);
        return -1;
    }
    return 0;
}

static void s_env_stop(s_env_t *env)
{
    PX_CHECK_INT_EQ(roster_fixture_stop(&env->roster), 0);
    if (env->act.db_url) {
        PX_CHECK_INT_EQ(roster_peer_stop(&env->act), 0);
    }
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

/* ------------------------------------------------------------------- with the service */

static void test_proportional_to_remaining(void)
{
    s_env_t env;
    PX_REQUIRE(s_env_start(&env, NULL, NULL) == 0);
    roster_fixture_t *f = &env.roster;

    Phuxanh__Roster__V1__PlanWaveResponse *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(s_plan(f, DAY1, true, NULL, &rep, &st), PX_OK);
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
        PX_CHECK_INT_EQ(far->remaining_to_target, 152); /* its 20 approved are not activated */
        PX_CHECK_INT_EQ(near->remaining_to_target, 2);
        PX_CHECK_INT_EQ(green->remaining_to_target, 0); /* past its target: not negative */
        PX_CHECK_STR_EQ(far->unit_name, "Bình Nhâm");
        PX_CHECK(far->planned > near->planned);
        PX_CHECK_INT_EQ(near->planned, 1);
        PX_CHECK_INT_EQ(green->planned, 1);
        /* Remaining 808 in all; 20 seats after one each. 25984: 1 + 3.76 -> 5 (a largest
         * remainder); 25981: 1 + 2.72 -> 4; 25966: 1 + 2.40 -> 3 (its remainder too small);
         * 25990: 1 + 1.98 -> 3. */
        PX_CHECK_INT_EQ(far->planned, 5);
        PX_CHECK_INT_EQ(s_ward(rep, "25981")->planned, 4);
        PX_CHECK_INT_EQ(s_ward(rep, "25966")->planned, 3);
        PX_CHECK_INT_EQ(s_ward(rep, "25990")->planned, 3);
    }
    s_free(&rep);

    /* Only asked area: one ward takes the whole wave. */
    PX_CHECK_INT_EQ(s_plan(f, DAY1, true, "25966", &rep, &st), PX_OK);
    if (rep) {
        PX_CHECK_INT_EQ(rep->n_wards, 1);
        PX_CHECK_INT_EQ(rep->n_planned, 30);
        PX_CHECK(!rep->even_spread_fallback);
        PX_CHECK_INT_EQ(rep->wards[0]->remaining_to_target, 97);
    }
    s_free(&rep);

    /* A province: the wards of both districts, each district asked for its own. */
    PX_CHECK_INT_EQ(s_plan(f, DAY1, true, "74", &rep, &st), PX_OK);
    if (rep) {
        s_check_shape(rep);
        PX_CHECK_INT_EQ(rep->n_wards, NWARDS + 2);
        PX_CHECK(!rep->even_spread_fallback);
        PX_CHECK(s_ward(rep, "26001") && s_ward(rep, "26001")->remaining_to_target == 10);
        PX_CHECK(s_ward(rep, "26002") && s_ward(rep, "26002")->remaining_to_target == 1);
    }
    s_free(&rep);

    /* A neighborhood is no area; an unknown unit is NOT_FOUND. */
    PX_CHECK_INT_EQ(s_plan(f, DAY1, true, "25966-01", &rep, &st), PX_INVALID_ARGUMENT);
    PX_CHECK_INT_EQ(s_plan(f, DAY1, true, "99999", &rep, &st), PX_NOT_FOUND);
    PX_CHECK(strstr(st.message, "unit_code") != NULL);

    s_env_stop(&env);
}

static void test_dry_run_is_deterministic_and_writes_nothing(void)
{
    s_env_t env;
    PX_REQUIRE(s_env_start(&env, NULL, NULL) == 0);
    roster_fixture_t *f = &env.roster;

    Phuxanh__Roster__V1__PlanWaveResponse *a = NULL, *b = NULL, *w = NULL;
    px_status_t st;
    static char ta[8192], tb[8192], tw[8192];
    PX_CHECK_INT_EQ(s_plan(f, DAY1, true, NULL, &a, &st), PX_OK);
    PX_CHECK_INT_EQ(s_plan(f, DAY1, true, NULL, &b, &st), PX_OK);
    if (!a || !b) {
        s_free(&a);
        s_free(&b);
        s_env_stop(&env);
        PX_REQUIRE(a && b);
    }
    PX_CHECK(!a->even_spread_fallback); /* the figures come from the service */
    s_plan_text(a, ta, sizeof ta);
    s_plan_text(b, tb, sizeof tb);
    PX_CHECK_STR_EQ(ta, tb);
    PX_CHECK_INT_EQ(roster_sql_int(f, "SELECT count(*) FROM assignments"), 0);
    PX_CHECK_INT_EQ(roster_sql_int(f, "SELECT sum(assigned) FROM waves"), 0);
    PX_CHECK_INT_EQ(roster_sql_int(f, "SELECT count(*) FROM audit"), 0);
    /* Inactive volunteers are never planned. */
    for (size_t i = 0; i < a->n_planned; i++) {
        PX_CHECK(strcmp(a->planned[i]->volunteer_code, "TV001") != 0);
        PX_CHECK(strcmp(a->planned[i]->volunteer_code, "TV002") != 0);
    }

    /* The written plan is the plan the dry run showed. */
    PX_CHECK_INT_EQ(s_plan(f, DAY1, false, NULL, &w, &st), PX_OK);
    if (w) {
        PX_CHECK(w->committed);
        s_plan_text(w, tw, sizeof tw);
        PX_CHECK_STR_EQ(ta, tw);
        PX_CHECK(w->n_planned > 0 && w->planned[0]->created_at != NULL);
    }
    PX_CHECK_INT_EQ(
        roster_sql_int(f, "SELECT count(*) FROM assignments WHERE day = '" DAY1 "' AND status = 1"),
        30);
    PX_CHECK_INT_EQ(roster_sql_int(f, "SELECT assigned FROM waves WHERE day = '" DAY1 "'"), 30);
    PX_CHECK_INT_EQ(roster_sql_int(f, "SELECT count(*) FROM audit WHERE method LIKE '%PlanWave'"),
                    1);
    s_free(&w);

    /* A retry only tops up: nothing left to add. */
    PX_CHECK_INT_EQ(s_plan(f, DAY1, false, NULL, &w, &st), PX_OK);
    if (w) {
        PX_CHECK_INT_EQ(w->n_planned, 0);
        PX_CHECK_INT_EQ(w->already_assigned, 30);
        PX_CHECK_INT_EQ(w->unfilled, 0);
        PX_CHECK_INT_EQ(s_planned_sum(w), 0);
        PX_CHECK(s_ward(w, "25984") && s_ward(w, "25984")->already_assigned == 5);
    }
    s_free(&w);
    /* A seat freed (a no-show) is filled by the next PlanWave, by someone not yet that day. */
    PX_CHECK_INT_EQ(s_sql(f, "UPDATE assignments SET status = 4 WHERE day = '" DAY1
                             "' AND volunteer_code = (SELECT min(volunteer_code) FROM assignments"
                             " WHERE day = '" DAY1 "');"
                             "UPDATE waves SET assigned = 29 WHERE day = '" DAY1 "'"),
                    0);
    PX_CHECK_INT_EQ(s_plan(f, DAY1, false, NULL, &w, &st), PX_OK);
    if (w) {
        PX_CHECK_INT_EQ(w->n_planned, 1);
        PX_CHECK_INT_EQ(w->already_assigned, 29);
    }
    s_free(&w);
    PX_CHECK_INT_EQ(roster_sql_int(f, "SELECT assigned FROM waves WHERE day = '" DAY1 "'"), 30);
    PX_CHECK_INT_EQ(roster_sql_int(f, "SELECT count(*) FROM assignments WHERE day = '" DAY1
                                      "' AND status <> 4"),
                    30);

    s_free(&a);
    s_free(&b);
    s_env_stop(&env);
}

/* ------------------------------------------------------------------- without it, or not all of it
 */

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

/* The plan follows the service's figures again (after an outage of some kind). */
static void s_check_live(const Phuxanh__Roster__V1__PlanWaveResponse *rep)
{
    PX_CHECK(!rep->even_spread_fallback);
    PX_CHECK_STR_EQ(rep->fallback_reason, "");
    const Phuxanh__Roster__V1__WardAllocation *far = s_ward(rep, "25984");
    PX_CHECK(far && far->remaining_to_target == 152 && far->planned == 5);
    PX_CHECK_INT_EQ(rep->n_planned, 30);
}

/* Paused with SIGSTOP, the service keeps its connection and takes the call but never answers:
 * the planner waits out its budget, not longer. Woken, it answers the stale call late (the
 * roster must drop that answer) and the next plan is proportional again. Stopped, it is not
 * there at all. */
static void test_fallback_paused_then_stopped_service(void)
{
    s_env_t env;
    const char *rflags[] = {SLOW_BUDGET, NULL};
    PX_REQUIRE(s_env_start(&env, rflags, NULL) == 0);
    roster_fixture_t *f = &env.roster;
    Phuxanh__Roster__V1__PlanWaveResponse *rep = NULL;
    px_status_t st;

    PX_CHECK_INT_EQ(kill(env.act.proc.pid, SIGSTOP), 0);
    int64_t t0 = px_clock_us();
    PX_CHECK_INT_EQ(s_plan(f, DAY1, false, NULL, &rep, &st), PX_OK);
    int64_t took_ms = (px_clock_us() - t0) / 1000;
    PX_CHECK_INT_EQ(kill(env.act.proc.pid, SIGCONT), 0);
    PX_CHECK(took_ms >= 900 && took_ms < 3000); /* the budget was waited out, and no more */
    if (rep) {
        s_check_even(rep);
        PX_CHECK(rep->committed);
        PX_CHECK(strstr(rep->fallback_reason, "activation service: DEADLINE_EXCEEDED") ==
                 rep->fallback_reason);
    }
    s_free(&rep);
    PX_CHECK_INT_EQ(roster_sql_int(f, "SELECT assigned FROM waves WHERE day = '" DAY1 "'"), 30);

    PX_CHECK_INT_EQ(s_plan(f, DAY2, true, NULL, &rep, &st), PX_OK);
    if (rep) {
        s_check_live(rep);
    }
    s_free(&rep);

    PX_CHECK_INT_EQ(roster_peer_stop(&env.act), 0);
    t0 = px_clock_us();
    PX_CHECK_INT_EQ(s_plan(f, DAY2, true, NULL, &rep, &st), PX_OK);
    took_ms = (px_clock_us() - t0) / 1000;
    PX_CHECK(took_ms < 3000);
    if (rep) {
        s_check_even(rep);
        PX_CHECK(strncmp(rep->fallback_reason, "activation service: ", 20) == 0);
        PX_CHECK(strstr(rep->fallback_reason, "UNAVAILABLE") ||
                 strstr(rep->fallback_reason, "DEADLINE_EXCEEDED"));
    }
    s_free(&rep);
    s_env_stop(&env);
}

static void s_allow_connections(const char *db_url, bool allow)
{
    const char *dbname = strrchr(db_url, '/') + 1;
    char sql[512];
    snprintf(sql, sizeof sql, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS %s", dbname,
             allow ? "true" : "false");
    PX_CHECK_INT_EQ(px_test_admin_exec(sql), 0);
    if (!allow) {
        snprintf(sql, sizeof sql,
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'",
                 dbname);
        PX_CHECK_INT_EQ(px_test_admin_exec(sql), 0);
    }
}

/* The service answers, with an error: its database refuses it. One worker, so that the call
 * after the outage is served by the worker that saw it (and reconnects by itself). */
static void test_fallback_service_fails(void)
{
    s_env_t env;
    const char *aflags[] = {"--workers=1", NULL};
    PX_REQUIRE(s_env_start(&env, NULL, aflags) == 0);
    roster_fixture_t *f = &env.roster;
    Phuxanh__Roster__V1__PlanWaveResponse *rep = NULL;
    px_status_t st;

    s_allow_connections(env.act.db_url, false);
    PX_CHECK_INT_EQ(s_plan(f, DAY1, true, NULL, &rep, &st), PX_OK);
    if (rep) {
        s_check_even(rep);
        PX_CHECK(strstr(rep->fallback_reason,
                        "activation service: UNAVAILABLE: activation database unavailable") ==
                 rep->fallback_reason);
    }
    s_free(&rep);
    s_allow_connections(env.act.db_url, true);

    PX_CHECK_INT_EQ(s_plan(f, DAY1, true, NULL, &rep, &st), PX_OK);
    if (rep) {
        s_check_live(rep);
    }
    s_free(&rep);
    s_env_stop(&env);
}

/* The roster gains a ward after the service read the tree: GetProgress of its district leaves
 * it out, and the planner will not guess its figures. Once the service has heard of the ward
 * (a target set for it makes it ask the roster), the plan covers it proportionally. */
static void test_fallback_ward_unknown_to_service(void)
{
    s_env_t env;
    PX_REQUIRE(s_env_start(&env, NULL, NULL) == 0);
    roster_fixture_t *f = &env.roster;
    Phuxanh__Roster__V1__PlanWaveResponse *rep = NULL;
    px_status_t st;

    PX_CHECK_INT_EQ(s_sql(f, "INSERT INTO units (code, name, level, parent_code, version)"
                             " VALUES ('25993', 'Phường Thử', 3, '725', 2)"),
                    0);
    PX_CHECK_INT_EQ(s_plan(f, DAY1, true, NULL, &rep, &st), PX_OK);
    if (rep) {
        s_check_shape(rep);
        PX_CHECK(rep->even_spread_fallback);
        PX_CHECK_STR_EQ(rep->fallback_reason, "activation service: no progress for ward 25993");
        PX_CHECK_INT_EQ(rep->n_wards, NWARDS + 1);
        /* 30 seats over 11 wards: 3 each to the first eight by code, 2 to the last three. */
        for (size_t i = 0; i < rep->n_wards; i++) {
            PX_CHECK_INT_EQ(rep->wards[i]->planned, i < 8 ? 3 : 2);
            PX_CHECK_INT_EQ(rep->wards[i]->remaining_to_target, 0);
        }
    }
    s_free(&rep);

    const char *ward[] = {"25993"};
    const int target[] = {50};
    PX_CHECK_INT_EQ(s_set_targets(&env.act, ward, target, 1), 0);
    PX_CHECK_INT_EQ(s_plan(f, DAY1, true, NULL, &rep, &st), PX_OK);
    if (rep) {
        PX_CHECK(!rep->even_spread_fallback);
        PX_CHECK_INT_EQ(rep->n_wards, NWARDS + 1);
        PX_CHECK(s_ward(rep, "25993") && s_ward(rep, "25993")->remaining_to_target == 50);
        PX_CHECK(s_ward(rep, "25984") && s_ward(rep, "25984")->remaining_to_target == 152);
    }
    s_free(&rep);
    s_env_stop(&env);
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
    bool fallback;
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
            r->fallback = ((Phuxanh__Roster__V1__PlanWaveResponse *)rep)->even_spread_fallback;
            protobuf_c_message_free_unpacked(rep, NULL);
        }
        px_rpc_client_destroy(&c);
    }
    return NULL;
}

/* Every racer asks the activation service first, outside any transaction, so their writes
 * come close together; the wave's lock must still let only 30 through. */
static void test_concurrent_plans_never_overfill(void)
{
    s_env_t env;
    const char *rflags[] = {"--workers=4", NULL};
    PX_REQUIRE(s_env_start(&env, rflags, NULL) == 0);
    roster_fixture_t *f = &env.roster;
    for (int round = 0; round < 3; round++) {
        PX_CHECK_INT_EQ(s_sql(f, "DELETE FROM assignments; UPDATE waves SET assigned = 0"), 0);
        enum { NRACERS = 4 };
        s_racer_t r[NRACERS];
        pthread_t t[NRACERS];
        for (int i = 0; i < NRACERS; i++) {
            r[i] = (s_racer_t){.endpoint = f->proc.endpoint};
            pthread_create(&t[i], NULL, s_racer, &r[i]);
        }
        int sum = 0;
        for (int i = 0; i < NRACERS; i++) {
            pthread_join(t[i], NULL);
            PX_CHECK_INT_EQ(r[i].code, PX_OK);
            PX_CHECK(!r[i].fallback);
            sum += r[i].planned;
        }
        PX_CHECK_INT_EQ(sum, 30);
        PX_CHECK_INT_EQ(roster_sql_int(f, "SELECT count(*) FROM assignments"), 30);
        PX_CHECK_INT_EQ(roster_sql_int(f, "SELECT assigned FROM waves WHERE day = '" DAY1 "'"), 30);
        /* The proportional plan, whoever wrote which part of it. */
        PX_CHECK_INT_EQ(roster_sql_int(f, "SELECT count(*) FROM assignments"
                                          " WHERE unit_code = '25984'"),
                        5);
    }
    s_env_stop(&env);
}

int main(int argc, char **argv)
{
    static const px_test_case_t cases[] = {
        {"proportional_to_remaining", test_proportional_to_remaining},
        {"dry_run_is_deterministic_and_writes_nothing",
         test_dry_run_is_deterministic_and_writes_nothing},
        {"fallback_no_peer_configured", test_fallback_no_peer_configured},
        {"fallback_nobody_listens", test_fallback_nobody_listens},
        {"fallback_paused_then_stopped_service", test_fallback_paused_then_stopped_service},
        {"fallback_service_fails", test_fallback_service_fails},
        {"fallback_ward_unknown_to_service", test_fallback_ward_unknown_to_service},
        {"noshow_planned_last", test_noshow_planned_last},
        {"unfilled_when_volunteers_run_out", test_unfilled_when_volunteers_run_out},
        {"refusals", test_refusals},
        {"concurrent_plans_never_overfill", test_concurrent_plans_never_overfill},
        {NULL, NULL},
    };
    return px_test_main(argc, argv, cases);
}
