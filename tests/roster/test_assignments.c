/*
 * test_assignments.c - Assign, Unassign, ListAssignments, CheckIn, CheckOut and
 * MarkNoShow against a real px-roster (eight workers) on its own database.
 *
 * What it proves: each method's success and every refusal with its status code
 * and a message that names the field; of eight planners taking the last seat of
 * a wave at the same moment exactly one wins, twenty times over; a volunteer is
 * never in two places on one day, not even when eight planners book them into
 * eight campaigns at once; a no-show gives its seat back; check-in and
 * check-out times fall on the wave's day in Viet Nam and repeats answer
 * unchanged; listings follow their filters and page in (day, unit, volunteer)
 * order. After every case waves.assigned equals the rows holding a seat.
 *
 * Units, volunteers, campaigns and waves are put in with plain SQL, so these
 * tests depend on nothing but the handlers under test.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "phuxanh/text.h"
#include "px_test.h"
#include "roster_fixture.h"

#define CAMP "tn-test"
#define OTHER "tn-khac"
#define DAY "2023-07-29"
/* Planners racing for a seat: one client and one server worker each. */
#define NRACERS 8
#define RACE_ROUNDS 20
#define BOOKING_ROUNDS 10

typedef Phuxanh__Roster__V1__Assignment asg_t;

static roster_fixture_t s_f;
static PGconn *s_db;
static char s_today[11]; /* today in Viet Nam, for check-ins without `at` */

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
    " ('25969-01', 'Khu phố 1', 4, '25969', nextval('unit_tree_version'));"
    "INSERT INTO volunteers (code, full_name, name_folded)"
    " SELECT 'TN' || lpad(g::text, 4, '0'), 'Nguyễn Văn Tình ' || g,"
    "  px_fold('Nguyễn Văn Tình ' || g) FROM generate_series(1, 300) g;"
    "INSERT INTO volunteers (code, full_name, name_folded, active)"
    " VALUES ('TN9999', 'Trần Thị Nghỉ', px_fold('Trần Thị Nghỉ'), false);"
    "INSERT INTO campaigns (id, name, starts_on, ends_on, unit_code) VALUES"
    " ('" CAMP "', 'Thanh niên cuối tuần', '2023-07-01', '2023-12-31', '725'),"
    " ('" OTHER "', 'Chiến dịch khác', '2023-07-01', '2023-12-31', '725'),"
    " ('tn-today', 'Hôm nay', '2000-01-01', '2999-12-31', '725');"
    "INSERT INTO waves (campaign_id, day, capacity) VALUES"
    " ('" CAMP "', '" DAY "', 30), ('" OTHER "', '" DAY "', 30);"
    /* Eight campaigns with waves on the same days, for the double-booking race. */
    "INSERT INTO campaigns (id, name, starts_on, ends_on)"
    " SELECT 'race-' || g, 'Đua ' || g, '2023-07-01', '2023-12-31' FROM generate_series(1, 8) g;"
    "INSERT INTO waves (campaign_id, day, capacity)"
    " SELECT 'race-' || g, d::date, 5 FROM generate_series(1, 8) g,"
    "  generate_series('2023-10-01'::date, '2023-10-10'::date, '1 day') d;";

/* ------------------------------------------------------------------- helpers */

static int s_sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int s_sql(const char *fmt, ...)
{
    char sql[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(s_db, sql);
    ExecStatusType s = PQresultStatus(r);
    int rc = (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) ? 0 : -1;
    if (rc != 0) {
        fprintf(stderr, "sql failed: %s\n%s\n", PQerrorMessage(s_db), sql);
    }
    PQclear(r);
    return rc;
}

static long long s_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static long long s_int(const char *fmt, ...)
{
    char sql[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(s_db, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    } else {
        fprintf(stderr, "sql failed: %s\n%s\n", PQerrorMessage(s_db), sql);
    }
    PQclear(r);
    return v;
}

/* Waves whose counter differs from the assignments holding a seat (should be 0). */
static long long s_out_of_step(void)
{
    return s_int("SELECT count(*) FROM waves w WHERE w.assigned <> (SELECT count(*) FROM"
                 " assignments a WHERE a.campaign_id = w.campaign_id AND a.day = w.day"
                 " AND a.status <> 4)");
}

static long long s_assigned(const char *campaign, const char *day)
{
    return s_int("SELECT assigned FROM waves WHERE campaign_id = '%s' AND day = '%s'", campaign,
                 day);
}

static int s_wave(const char *campaign, const char *day, int capacity)
{
    return s_sql("INSERT INTO waves (campaign_id, day, capacity) VALUES ('%s', '%s', %d)", campaign,
                 day, capacity);
}

/* The message starts with "field:". */
static int s_names(const px_status_t *st, const char *field)
{
    size_t n = strlen(field);
    int ok = strncmp(st->message, field, n) == 0 && st->message[n] == ':';
    if (!ok) {
        fprintf(stderr, "message \"%s\" does not name %s\n", st->message, field);
    }
    return ok;
}

static px_code_t s_call(px_rpc_client_t *c, const char *method, const ProtobufCMessage *req,
                        const ProtobufCMessageDescriptor *type, ProtobufCMessage **rep,
                        px_status_t *st)
{
    char full[128];
    snprintf(full, sizeof full, "/phuxanh.roster.v1.RosterService/%s", method);
    px_rpc_call_opts_t o = {.timeout_ms = 30000};
    *rep = NULL;
    px_code_t rc = px_rpc_client_call(c, full, req, type, rep, &o, st);
    if (rc == PX_OK) {
        st->message[0] = '\0';
    }
    return rc;
}

static px_code_t s_assign_c(px_rpc_client_t *c, const char *campaign, const char *day,
                            const char *vol, const char *unit, const char *hood, asg_t **out,
                            px_status_t *st)
{
    Phuxanh__Roster__V1__AssignRequest req = PHUXANH__ROSTER__V1__ASSIGN_REQUEST__INIT;
    req.campaign_id = (char *)campaign;
    req.day = (char *)day;
    req.volunteer_code = (char *)vol;
    req.unit_code = (char *)unit;
    req.neighborhood_code = (char *)(hood ? hood : "");
    ProtobufCMessage *rep = NULL;
    px_code_t rc =
        s_call(c, "Assign", &req.base, &phuxanh__roster__v1__assign_response__descriptor, &rep, st);
    if (out) {
        *out = NULL;
    }
    if (rep) {
        Phuxanh__Roster__V1__AssignResponse *r = (Phuxanh__Roster__V1__AssignResponse *)rep;
        if (out && r->assignment) {
            *out = r->assignment;
            r->assignment = NULL; /* handed over: freed by the caller */
        }
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    return rc;
}

static px_code_t s_assign(const char *campaign, const char *day, const char *vol, const char *unit,
                          const char *hood, px_status_t *st)
{
    return s_assign_c(s_f.client, campaign, day, vol, unit, hood, NULL, st);
}

static void s_asg_free(asg_t *a)
{
    if (a) {
        protobuf_c_message_free_unpacked(&a->base, NULL);
    }
}

/* One of the three calls that take (campaign, day, volunteer[, at]). at_s < 0: no `at`. */
typedef enum { CALL_CHECK_IN, CALL_CHECK_OUT, CALL_NO_SHOW } s_which_t;

static asg_t *s_mark(s_which_t which, const char *campaign, const char *day, const char *vol,
                     long long at_s, int nanos, px_code_t *rc, px_status_t *st)
{
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = at_s;
    ts.nanos = nanos;
    Google__Protobuf__Timestamp *at = at_s >= 0 ? &ts : NULL;
    ProtobufCMessage *rep = NULL;
    asg_t *out = NULL;
    if (which == CALL_CHECK_IN) {
        Phuxanh__Roster__V1__CheckInRequest req = PHUXANH__ROSTER__V1__CHECK_IN_REQUEST__INIT;
        req.campaign_id = (char *)campaign;
        req.day = (char *)day;
        req.volunteer_code = (char *)vol;
        req.at = at;
        *rc = s_call(s_f.client, "CheckIn", &req.base,
                     &phuxanh__roster__v1__check_in_response__descriptor, &rep, st);
        if (rep) {
            out = ((Phuxanh__Roster__V1__CheckInResponse *)rep)->assignment;
            ((Phuxanh__Roster__V1__CheckInResponse *)rep)->assignment = NULL;
        }
    } else if (which == CALL_CHECK_OUT) {
        Phuxanh__Roster__V1__CheckOutRequest req = PHUXANH__ROSTER__V1__CHECK_OUT_REQUEST__INIT;
        req.campaign_id = (char *)campaign;
        req.day = (char *)day;
        req.volunteer_code = (char *)vol;
        req.at = at;
        *rc = s_call(s_f.client, "CheckOut", &req.base,
                     &phuxanh__roster__v1__check_out_response__descriptor, &rep, st);
        if (rep) {
            out = ((Phuxanh__Roster__V1__CheckOutResponse *)rep)->assignment;
            ((Phuxanh__Roster__V1__CheckOutResponse *)rep)->assignment = NULL;
        }
    } else {
        Phuxanh__Roster__V1__MarkNoShowRequest req =
            PHUXANH__ROSTER__V1__MARK_NO_SHOW_REQUEST__INIT;
        req.campaign_id = (char *)campaign;
        req.day = (char *)day;
        req.volunteer_code = (char *)vol;
        *rc = s_call(s_f.client, "MarkNoShow", &req.base,
                     &phuxanh__roster__v1__mark_no_show_response__descriptor, &rep, st);
        if (rep) {
            out = ((Phuxanh__Roster__V1__MarkNoShowResponse *)rep)->assignment;
            ((Phuxanh__Roster__V1__MarkNoShowResponse *)rep)->assignment = NULL;
        }
    }
    if (rep) {
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    return out;
}

static Phuxanh__Roster__V1__UnassignResponse *
s_unassign(const char *campaign, const char *day, const char *vol, px_code_t *rc, px_status_t *st)
{
    Phuxanh__Roster__V1__UnassignRequest req = PHUXANH__ROSTER__V1__UNASSIGN_REQUEST__INIT;
    req.campaign_id = (char *)campaign;
    req.day = (char *)day;
    req.volunteer_code = (char *)vol;
    ProtobufCMessage *rep = NULL;
    *rc = s_call(s_f.client, "Unassign", &req.base,
                 &phuxanh__roster__v1__unassign_response__descriptor, &rep, st);
    return (Phuxanh__Roster__V1__UnassignResponse *)rep;
}

static Phuxanh__Roster__V1__ListAssignmentsResponse *
s_list(Phuxanh__Roster__V1__ListAssignmentsRequest *q, px_code_t *rc, px_status_t *st)
{
    ProtobufCMessage *rep = NULL;
    *rc = s_call(s_f.client, "ListAssignments", &q->base,
                 &phuxanh__roster__v1__list_assignments_response__descriptor, &rep, st);
    return (Phuxanh__Roster__V1__ListAssignmentsResponse *)rep;
}

/* UNIX seconds of a wall-clock time in Viet Nam. */
static long long s_vn(const char *day, int h, int m)
{
    int32_t d = 0;
    if (!px_day_parse(day, &d)) {
        return -1;
    }
    return (long long)d * 86400 + h * 3600 + m * 60 - PX_TZ_OFFSET_S;
}

/* ------------------------------------------------------------------- Assign */

static void test_assign_success(void)
{
    long long audits = s_int("SELECT count(*) FROM audit WHERE method LIKE '%%/Assign'");
    asg_t *a = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(s_assign_c(s_f.client, CAMP, DAY, "TN0001", "25966", "25966-01", &a, &st),
                    PX_OK);
    PX_REQUIRE(a);
    PX_CHECK_STR_EQ(a->campaign_id, CAMP);
    PX_CHECK_STR_EQ(a->day, DAY);
    PX_CHECK_STR_EQ(a->volunteer_code, "TN0001");
    PX_CHECK_STR_EQ(a->unit_code, "25966");
    PX_CHECK_STR_EQ(a->neighborhood_code, "25966-01");
    PX_CHECK_INT_EQ(a->status, PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_PLANNED);
    PX_CHECK(a->checked_in_at == NULL);
    PX_CHECK(a->checked_out_at == NULL);
    PX_CHECK(a->created_at != NULL && a->created_at->seconds > 1600000000);
    s_asg_free(a);

    /* Without a neighborhood, and a day written in its normal form only. */
    PX_CHECK_INT_EQ(s_assign_c(s_f.client, CAMP, DAY, "TN0002", "25969", NULL, &a, &st), PX_OK);
    PX_REQUIRE(a);
    PX_CHECK_STR_EQ(a->neighborhood_code, "");
    s_asg_free(a);

    PX_CHECK_INT_EQ(s_assigned(CAMP, DAY), 2);
    PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM assignments WHERE volunteer_code = 'TN0001'"
                          " AND neighborhood_code = '25966-01' AND status = 1"),
                    1);
    PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM audit WHERE method LIKE '%%/Assign'"), audits + 2);
    PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM audit WHERE method LIKE '%%/Assign'"
                          " AND caller = 'roster-test' AND request_id <> ''"
                          " AND detail->>'volunteer_code' = 'TN0001'"),
                    1);
    PX_CHECK_INT_EQ(s_out_of_step(), 0);
}

static void test_assign_refusals(void)
{
    struct {
        const char *campaign, *day, *vol, *unit, *hood;
        px_code_t code;
        const char *field;
    } cases[] = {
        {"", DAY, "TN0010", "25966", NULL, PX_INVALID_ARGUMENT, "campaign_id"},
        {"TN-Test", DAY, "TN0010", "25966", NULL, PX_INVALID_ARGUMENT, "campaign_id"},
        {CAMP, "", "TN0010", "25966", NULL, PX_INVALID_ARGUMENT, "day"},
        {CAMP, "2023-02-30", "TN0010", "25966", NULL, PX_INVALID_ARGUMENT, "day"},
        {CAMP, "29/07/2023", "TN0010", "25966", NULL, PX_INVALID_ARGUMENT, "day"},
        {CAMP, DAY, "", "25966", NULL, PX_INVALID_ARGUMENT, "volunteer_code"},
        {CAMP, DAY, "TN 0010", "25966", NULL, PX_INVALID_ARGUMENT, "volunteer_code"},
        {CAMP, DAY, "TN\"0010", "25966", NULL, PX_INVALID_ARGUMENT, "volunteer_code"},
        {CAMP, DAY, "TN0010", "", NULL, PX_INVALID_ARGUMENT, "unit_code"},
        {CAMP, DAY, "TN0010", "25966", "khu phố", PX_INVALID_ARGUMENT, "neighborhood_code"},
        {CAMP, DAY, "TN8888", "25966", NULL, PX_NOT_FOUND, "volunteer_code"},
        {CAMP, DAY, "TN9999", "25966", NULL, PX_FAILED_PRECONDITION, "volunteer_code"},
        {CAMP, DAY, "TN0010", "99999", NULL, PX_NOT_FOUND, "unit_code"},
        {CAMP, DAY, "TN0010", "725", NULL, PX_INVALID_ARGUMENT, "unit_code"},
        {CAMP, DAY, "TN0010", "74", NULL, PX_INVALID_ARGUMENT, "unit_code"},
        {CAMP, DAY, "TN0010", "25966-01", NULL, PX_INVALID_ARGUMENT, "unit_code"},
        {CAMP, DAY, "TN0010", "25966", "25966-99", PX_NOT_FOUND, "neighborhood_code"},
        {CAMP, DAY, "TN0010", "25966", "25969-01", PX_INVALID_ARGUMENT, "neighborhood_code"},
        {CAMP, DAY, "TN0010", "25966", "25969", PX_INVALID_ARGUMENT, "neighborhood_code"},
        {"khong-co", DAY, "TN0010", "25966", NULL, PX_NOT_FOUND, "campaign_id"},
        {CAMP, "2023-07-30", "TN0010", "25966", NULL, PX_NOT_FOUND, "day"},
    };
    long long rows = s_int("SELECT count(*) FROM assignments");
    long long seats = s_assigned(CAMP, DAY);
    long long audits = s_int("SELECT count(*) FROM audit");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        px_status_t st;
        px_code_t rc = s_assign(cases[i].campaign, cases[i].day, cases[i].vol, cases[i].unit,
                                cases[i].hood, &st);
        if (rc != cases[i].code) {
            fprintf(stderr, "case %zu: %d %s\n", i, rc, st.message);
        }
        PX_CHECK_INT_EQ(rc, cases[i].code);
        PX_CHECK(s_names(&st, cases[i].field));
    }
    /* The messages say what is wrong, not only where. */
    px_status_t st;
    PX_CHECK_INT_EQ(s_assign(CAMP, DAY, "TN9999", "25966", NULL, &st), PX_FAILED_PRECONDITION);
    PX_CHECK(strstr(st.message, "TN9999") && strstr(st.message, "inactive"));
    PX_CHECK_INT_EQ(s_assign(CAMP, DAY, "TN0010", "725", NULL, &st), PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "district") && strstr(st.message, "not a ward"));
    PX_CHECK_INT_EQ(s_assign(CAMP, DAY, "TN0010", "99999", NULL, &st), PX_NOT_FOUND);
    PX_CHECK(strstr(st.message, "99999") != NULL);

    PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM assignments"), rows);
    PX_CHECK_INT_EQ(s_assigned(CAMP, DAY), seats);
    PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM audit"), audits);
}

static void test_no_double_booking(void)
{
    px_status_t st;
    PX_CHECK_INT_EQ(s_assign(CAMP, DAY, "TN0020", "25966", NULL, &st), PX_OK);
    long long other = s_assigned(OTHER, DAY);
    /* Another campaign, another ward, the same day. */
    PX_CHECK_INT_EQ(s_assign(OTHER, DAY, "TN0020", "25969", NULL, &st), PX_ALREADY_EXISTS);
    PX_CHECK_STR_EQ(st.message, "volunteer_code: TN0020 is already assigned on 2023-07-29 (at "
                                "ward 25966, campaign tn-test)");
    /* The same wave again (a retried Assign whose reply was lost). */
    PX_CHECK_INT_EQ(s_assign(CAMP, DAY, "TN0020", "25972", NULL, &st), PX_ALREADY_EXISTS);
    PX_CHECK(s_names(&st, "volunteer_code"));
    PX_CHECK_INT_EQ(s_assigned(OTHER, DAY), other);
    PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM assignments WHERE volunteer_code = 'TN0020'"), 1);

    /* Already there and the wave full: ALREADY_EXISTS says more than RESOURCE_EXHAUSTED. */
    PX_REQUIRE(s_wave(CAMP, "2023-08-12", 1) == 0);
    PX_CHECK_INT_EQ(s_assign(CAMP, "2023-08-12", "TN0021", "25966", NULL, &st), PX_OK);
    PX_CHECK_INT_EQ(s_assign(CAMP, "2023-08-12", "TN0021", "25966", NULL, &st), PX_ALREADY_EXISTS);
    PX_CHECK_INT_EQ(s_out_of_step(), 0);
}

static void test_wave_full(void)
{
    PX_REQUIRE(s_wave(CAMP, "2023-08-05", 2) == 0);
    px_status_t st;
    PX_CHECK_INT_EQ(s_assign(CAMP, "2023-08-05", "TN0030", "25966", NULL, &st), PX_OK);
    PX_CHECK_INT_EQ(s_assign(CAMP, "2023-08-05", "TN0031", "25969", NULL, &st), PX_OK);
    PX_CHECK_INT_EQ(s_assign(CAMP, "2023-08-05", "TN0032", "25972", NULL, &st),
                    PX_RESOURCE_EXHAUSTED);
    PX_CHECK(s_names(&st, "day"));
    PX_CHECK(strstr(st.message, "is full (capacity 2)") != NULL);
    PX_CHECK_INT_EQ(s_assigned(CAMP, "2023-08-05"), 2);
    PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM assignments WHERE day = '2023-08-05'"), 2);
    PX_CHECK_INT_EQ(s_out_of_step(), 0);
}

/* ------------------------------------------------------------------- races */

typedef struct {
    const char *endpoint;
    pthread_barrier_t *start;
    char campaign[32], day[11], vol[8], unit[8];
    px_code_t code;
    char message[PX_STATUS_MESSAGE_MAX];
} s_racer_t;

static void *s_racer(void *arg)
{
    s_racer_t *r = arg;
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = "roster-racer"};
    px_rpc_client_t *c = px_rpc_client_new(r->endpoint, &o, &st);
    /* Connected before the barrier, so the calls leave together. */
    if (c) {
        px_rpc_health_check(c, "", 5000, &st);
    }
    pthread_barrier_wait(r->start);
    r->code =
        c ? s_assign_c(c, r->campaign, r->day, r->vol, r->unit, NULL, NULL, &st) : PX_UNAVAILABLE;
    snprintf(r->message, sizeof r->message, "%s", c ? st.message : "no client");
    px_rpc_client_destroy(&c);
    return NULL;
}

/* Runs NRACERS Assign calls at once; counts the codes. */
static void s_race(s_racer_t *r, int *ok, int *full, int *exists, int *other)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NRACERS);
    pthread_t t[NRACERS];
    for (int i = 0; i < NRACERS; i++) {
        r[i].endpoint = s_f.proc.endpoint;
        r[i].start = &start;
        pthread_create(&t[i], NULL, s_racer, &r[i]);
    }
    *ok = *full = *exists = *other = 0;
    for (int i = 0; i < NRACERS; i++) {
        pthread_join(t[i], NULL);
        if (r[i].code == PX_OK) {
            (*ok)++;
        } else if (r[i].code == PX_RESOURCE_EXHAUSTED) {
            (*full)++;
        } else if (r[i].code == PX_ALREADY_EXISTS) {
            (*exists)++;
        } else {
            (*other)++;
            fprintf(stderr, "racer %d: %d %s\n", i, r[i].code, r[i].message);
        }
    }
    pthread_barrier_destroy(&start);
}

static void test_last_seat_race(void)
{
    static const char *const wards[] = {"25966", "25969", "25972"};
    for (int round = 0; round < RACE_ROUNDS; round++) {
        char day[11];
        snprintf(day, sizeof day, "2023-09-%02d", round + 1);
        int capacity = round % 3 + 1; /* capacity - 1 seats are taken before the race */
        PX_REQUIRE(s_wave(CAMP, day, capacity) == 0);
        for (int k = 0; k < capacity - 1; k++) {
            char vol[16];
            px_status_t st;
            snprintf(vol, sizeof vol, "TN%04d", 200 + k);
            PX_REQUIRE(s_assign(CAMP, day, vol, "25966", NULL, &st) == PX_OK);
        }
        s_racer_t r[NRACERS];
        memset(r, 0, sizeof r);
        for (int i = 0; i < NRACERS; i++) {
            snprintf(r[i].campaign, sizeof r[i].campaign, "%s", CAMP);
            snprintf(r[i].day, sizeof r[i].day, "%s", day);
            snprintf(r[i].vol, sizeof r[i].vol, "TN%04d", 101 + i);
            snprintf(r[i].unit, sizeof r[i].unit, "%s", wards[i % 3]);
        }
        int ok, full, exists, other;
        s_race(r, &ok, &full, &exists, &other);
        PX_CHECK_INT_EQ(ok, 1);
        PX_CHECK_INT_EQ(full, NRACERS - 1);
        PX_CHECK_INT_EQ(exists + other, 0);
        for (int i = 0; i < NRACERS; i++) {
            if (r[i].code == PX_RESOURCE_EXHAUSTED) {
                PX_CHECK(strstr(r[i].message, "is full") != NULL);
            }
        }
        PX_CHECK_INT_EQ(s_assigned(CAMP, day), capacity);
        PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM assignments WHERE campaign_id = '" CAMP
                              "' AND day = '%s'",
                              day),
                        capacity);
    }
    PX_CHECK_INT_EQ(s_out_of_step(), 0);
}

static void test_double_booking_race(void)
{
    static const char *const wards[] = {"25966", "25969", "25972", "26001"};
    for (int round = 0; round < BOOKING_ROUNDS; round++) {
        char day[11], vol[8];
        snprintf(day, sizeof day, "2023-10-%02d", round + 1);
        snprintf(vol, sizeof vol, "TN%04d", 120 + round);
        /* The same volunteer, eight campaigns, at once. */
        s_racer_t r[NRACERS];
        memset(r, 0, sizeof r);
        for (int i = 0; i < NRACERS; i++) {
            snprintf(r[i].campaign, sizeof r[i].campaign, "race-%d", i + 1);
            snprintf(r[i].day, sizeof r[i].day, "%s", day);
            snprintf(r[i].vol, sizeof r[i].vol, "%s", vol);
            snprintf(r[i].unit, sizeof r[i].unit, "%s", wards[i % 4]);
        }
        int ok, full, exists, other;
        s_race(r, &ok, &full, &exists, &other);
        PX_CHECK_INT_EQ(ok, 1);
        PX_CHECK_INT_EQ(exists, NRACERS - 1);
        PX_CHECK_INT_EQ(full + other, 0);
        for (int i = 0; i < NRACERS; i++) {
            if (r[i].code == PX_ALREADY_EXISTS) {
                PX_CHECK(strncmp(r[i].message, "volunteer_code: ", 16) == 0);
            }
        }
        PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM assignments WHERE day = '%s'", day), 1);
        PX_CHECK_INT_EQ(s_int("SELECT sum(assigned) FROM waves WHERE day = '%s'", day), 1);
    }
    PX_CHECK_INT_EQ(s_out_of_step(), 0);
}

/* ------------------------------------------------------------------- Unassign, MarkNoShow */

static void test_unassign(void)
{
    const char *day = "2023-08-19";
    PX_REQUIRE(s_wave(CAMP, day, 5) == 0);
    px_status_t st;
    px_code_t rc;
    PX_REQUIRE(s_assign(CAMP, day, "TN0040", "25966", "25966-01", &st) == PX_OK);
    PX_REQUIRE(s_assign(CAMP, day, "TN0041", "25966", NULL, &st) == PX_OK);
    PX_CHECK_INT_EQ(s_assigned(CAMP, day), 2);

    Phuxanh__Roster__V1__UnassignResponse *u = s_unassign(CAMP, day, "TN0040", &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(u);
    PX_CHECK(u->removed);
    PX_CHECK(u->assignment && strcmp(u->assignment->volunteer_code, "TN0040") == 0 &&
             strcmp(u->assignment->neighborhood_code, "25966-01") == 0);
    protobuf_c_message_free_unpacked(&u->base, NULL);
    PX_CHECK_INT_EQ(s_assigned(CAMP, day), 1);

    /* Again: nothing to do, still OK. */
    u = s_unassign(CAMP, day, "TN0040", &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(u);
    PX_CHECK(!u->removed);
    PX_CHECK(u->assignment == NULL);
    protobuf_c_message_free_unpacked(&u->base, NULL);
    PX_CHECK_INT_EQ(s_assigned(CAMP, day), 1);

    /* Assigned that day in another campaign: not in this wave, so nothing removed. */
    PX_REQUIRE(s_assign(OTHER, DAY, "TN0042", "25969", NULL, &st) == PX_OK);
    u = s_unassign(CAMP, DAY, "TN0042", &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_CHECK(u && !u->removed);
    if (u) {
        protobuf_c_message_free_unpacked(&u->base, NULL);
    }
    PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM assignments WHERE volunteer_code = 'TN0042'"), 1);

    /* Refusals. */
    PX_CHECK(s_unassign("khong-co", day, "TN0041", &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_NOT_FOUND);
    PX_CHECK(s_names(&st, "campaign_id"));
    PX_CHECK(s_unassign(CAMP, "2023-08-20", "TN0041", &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_NOT_FOUND);
    PX_CHECK(s_names(&st, "day"));
    PX_CHECK(s_unassign(CAMP, day, "TN8888", &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_NOT_FOUND);
    PX_CHECK(s_names(&st, "volunteer_code"));
    PX_CHECK(s_unassign(CAMP, "2023-8-19", "TN0041", &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(s_names(&st, "day"));

    /* Checked in: stays. */
    asg_t *a = s_mark(CALL_CHECK_IN, CAMP, day, "TN0041", s_vn(day, 8, 0), 0, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    s_asg_free(a);
    PX_CHECK(s_unassign(CAMP, day, "TN0041", &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    PX_CHECK(s_names(&st, "volunteer_code"));
    a = s_mark(CALL_CHECK_OUT, CAMP, day, "TN0041", s_vn(day, 17, 0), 0, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    s_asg_free(a);
    PX_CHECK(s_unassign(CAMP, day, "TN0041", &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    PX_CHECK_INT_EQ(s_assigned(CAMP, day), 1);

    /* A no-show is removed without giving back a seat it no longer holds. */
    PX_REQUIRE(s_assign(CAMP, day, "TN0043", "25972", NULL, &st) == PX_OK);
    PX_CHECK_INT_EQ(s_assigned(CAMP, day), 2);
    a = s_mark(CALL_NO_SHOW, CAMP, day, "TN0043", -1, 0, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    s_asg_free(a);
    PX_CHECK_INT_EQ(s_assigned(CAMP, day), 1);
    u = s_unassign(CAMP, day, "TN0043", &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_CHECK(u && u->removed && u->assignment &&
             u->assignment->status ==
                 PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_NO_SHOW);
    if (u) {
        protobuf_c_message_free_unpacked(&u->base, NULL);
    }
    PX_CHECK_INT_EQ(s_assigned(CAMP, day), 1);
    PX_CHECK_INT_EQ(s_out_of_step(), 0);
}

static void test_no_show_frees_the_seat(void)
{
    const char *day = "2023-08-06";
    PX_REQUIRE(s_wave(CAMP, day, 1) == 0);
    px_status_t st;
    px_code_t rc;
    PX_REQUIRE(s_assign(CAMP, day, "TN0050", "25966", NULL, &st) == PX_OK);
    PX_CHECK_INT_EQ(s_assign(CAMP, day, "TN0051", "25966", NULL, &st), PX_RESOURCE_EXHAUSTED);

    long long audits = s_int("SELECT count(*) FROM audit WHERE method LIKE '%%/MarkNoShow'");
    asg_t *a = s_mark(CALL_NO_SHOW, CAMP, day, "TN0050", -1, 0, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(a);
    PX_CHECK_INT_EQ(a->status, PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_NO_SHOW);
    s_asg_free(a);
    PX_CHECK_INT_EQ(s_assigned(CAMP, day), 0);
    /* Repeated: the same answer, nothing written. */
    a = s_mark(CALL_NO_SHOW, CAMP, day, "TN0050", -1, 0, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_CHECK(a && a->status == PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_NO_SHOW);
    s_asg_free(a);
    PX_CHECK_INT_EQ(s_assigned(CAMP, day), 0);
    PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM audit WHERE method LIKE '%%/MarkNoShow'"),
                    audits + 1);

    /* The seat is free again; the no-show is still that volunteer's one place that day. */
    PX_CHECK_INT_EQ(s_assign(CAMP, day, "TN0051", "25966", NULL, &st), PX_OK);
    PX_CHECK_INT_EQ(s_assigned(CAMP, day), 1);
    PX_CHECK_INT_EQ(s_assign(OTHER, day, "TN0050", "25966", NULL, &st), PX_NOT_FOUND); /* no wave */
    PX_REQUIRE(s_wave(OTHER, day, 3) == 0);
    PX_CHECK_INT_EQ(s_assign(OTHER, day, "TN0050", "25966", NULL, &st), PX_ALREADY_EXISTS);

    /* Once checked in, not a no-show. */
    a = s_mark(CALL_CHECK_IN, CAMP, day, "TN0051", s_vn(day, 7, 30), 0, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    s_asg_free(a);
    PX_CHECK(s_mark(CALL_NO_SHOW, CAMP, day, "TN0051", -1, 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    PX_CHECK(s_names(&st, "volunteer_code"));
    /* Not in the wave. */
    PX_CHECK(s_mark(CALL_NO_SHOW, CAMP, day, "TN0052", -1, 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_NOT_FOUND);
    PX_CHECK(s_names(&st, "volunteer_code"));
    PX_CHECK(s_mark(CALL_NO_SHOW, "", day, "TN0052", -1, 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(s_names(&st, "campaign_id"));
    PX_CHECK(s_mark(CALL_NO_SHOW, CAMP, "2023-08-07", "TN0052", -1, 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_NOT_FOUND);
    PX_CHECK(s_names(&st, "day"));
    PX_CHECK_INT_EQ(s_out_of_step(), 0);
}

/* ------------------------------------------------------------------- CheckIn, CheckOut */

static void test_check_in_and_out(void)
{
    px_status_t st;
    px_code_t rc;
    PX_REQUIRE(s_assign(CAMP, DAY, "TN0060", "25966", NULL, &st) == PX_OK);
    PX_REQUIRE(s_assign(CAMP, DAY, "TN0061", "25969", NULL, &st) == PX_OK);
    long long seats = s_assigned(CAMP, DAY);

    /* Not yet in: no check-out. */
    PX_CHECK(s_mark(CALL_CHECK_OUT, CAMP, DAY, "TN0060", s_vn(DAY, 9, 0), 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    PX_CHECK(s_names(&st, "volunteer_code"));

    /* 00:30 on the 30th in Viet Nam is not the wave's day; 23:59 on the 28th neither. */
    PX_CHECK(s_mark(CALL_CHECK_IN, CAMP, DAY, "TN0060", s_vn("2023-07-30", 0, 30), 0, &rc, &st) ==
             NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    PX_CHECK(s_names(&st, "at"));
    PX_CHECK(strstr(st.message, "2023-07-30") != NULL);
    PX_CHECK(s_mark(CALL_CHECK_IN, CAMP, DAY, "TN0060", s_vn("2023-07-28", 23, 59), 0, &rc, &st) ==
             NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    /* 2023-07-28T17:30:00Z is 00:30 on the 29th in Viet Nam: on the day. */
    long long in_s = 1690565400; /* 2023-07-28T17:30:00Z */
    PX_CHECK_INT_EQ(in_s, s_vn(DAY, 0, 30));
    asg_t *a = s_mark(CALL_CHECK_IN, CAMP, DAY, "TN0060", in_s, 250000000, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(a);
    PX_CHECK_INT_EQ(a->status,
                    PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_CHECKED_IN);
    PX_CHECK(a->checked_in_at && a->checked_in_at->seconds == in_s &&
             a->checked_in_at->nanos == 250000000);
    PX_CHECK(a->checked_out_at == NULL);
    s_asg_free(a);

    /* A repeat keeps the first arrival. */
    long long audits = s_int("SELECT count(*) FROM audit WHERE method LIKE '%%/CheckIn'");
    a = s_mark(CALL_CHECK_IN, CAMP, DAY, "TN0060", s_vn(DAY, 9, 0), 0, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_CHECK(a && a->checked_in_at && a->checked_in_at->seconds == in_s);
    s_asg_free(a);
    PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM audit WHERE method LIKE '%%/CheckIn'"), audits);

    /* Leaving before arriving is refused; so is leaving on another day. */
    PX_CHECK(s_mark(CALL_CHECK_OUT, CAMP, DAY, "TN0060", in_s - 60, 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    PX_CHECK(s_names(&st, "at"));
    PX_CHECK(strstr(st.message, "before the check-in") != NULL);
    PX_CHECK(s_mark(CALL_CHECK_OUT, CAMP, DAY, "TN0060", in_s, 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION); /* 0.25 s before the check-in */
    PX_CHECK(s_mark(CALL_CHECK_OUT, CAMP, DAY, "TN0060", s_vn("2023-07-30", 1, 0), 0, &rc, &st) ==
             NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    PX_CHECK(s_names(&st, "at"));

    long long out_s = s_vn(DAY, 23, 59);
    a = s_mark(CALL_CHECK_OUT, CAMP, DAY, "TN0060", out_s, 0, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(a);
    PX_CHECK_INT_EQ(a->status,
                    PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_CHECKED_OUT);
    PX_CHECK(a->checked_in_at && a->checked_in_at->seconds == in_s);
    PX_CHECK(a->checked_out_at && a->checked_out_at->seconds == out_s);
    s_asg_free(a);
    a = s_mark(CALL_CHECK_OUT, CAMP, DAY, "TN0060", s_vn(DAY, 12, 0), 0, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK); /* repeat: unchanged */
    PX_CHECK(a && a->checked_out_at && a->checked_out_at->seconds == out_s);
    s_asg_free(a);
    /* After check-out, no check-in. */
    PX_CHECK(s_mark(CALL_CHECK_IN, CAMP, DAY, "TN0060", s_vn(DAY, 12, 0), 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    PX_CHECK(s_names(&st, "volunteer_code"));

    /* A no-show cannot check in. */
    a = s_mark(CALL_NO_SHOW, CAMP, DAY, "TN0061", -1, 0, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    s_asg_free(a);
    PX_CHECK(s_mark(CALL_CHECK_IN, CAMP, DAY, "TN0061", s_vn(DAY, 8, 0), 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    PX_CHECK(s_mark(CALL_CHECK_OUT, CAMP, DAY, "TN0061", s_vn(DAY, 8, 0), 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);

    /* Not assigned, bad input. */
    PX_CHECK(s_mark(CALL_CHECK_IN, CAMP, DAY, "TN0062", s_vn(DAY, 8, 0), 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_NOT_FOUND);
    PX_CHECK(s_names(&st, "volunteer_code"));
    PX_CHECK(s_mark(CALL_CHECK_IN, OTHER, DAY, "TN0060", s_vn(DAY, 8, 0), 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_NOT_FOUND);
    PX_CHECK(s_mark(CALL_CHECK_IN, CAMP, DAY, "TN0060", s_vn(DAY, 8, 0), -1, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(s_names(&st, "at"));
    PX_CHECK(s_mark(CALL_CHECK_OUT, CAMP, DAY, "", s_vn(DAY, 8, 0), 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(s_names(&st, "volunteer_code"));
    PX_CHECK(s_mark(CALL_CHECK_IN, CAMP, "2023-07-32", "TN0060", -1, 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(s_names(&st, "day"));

    /* A checked-in or checked-out volunteer still holds the seat; the no-show gave it back. */
    PX_CHECK_INT_EQ(s_assigned(CAMP, DAY), seats - 1);
    PX_CHECK_INT_EQ(s_out_of_step(), 0);
}

static void test_check_in_now(void)
{
    px_status_t st;
    px_code_t rc;
    PX_REQUIRE(s_wave("tn-today", s_today, 5) == 0);
    PX_REQUIRE(s_assign("tn-today", s_today, "TN0070", "25966", NULL, &st) == PX_OK);
    long long before = (long long)time(NULL);
    asg_t *a = s_mark(CALL_CHECK_IN, "tn-today", s_today, "TN0070", -1, 0, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(a);
    PX_CHECK(a->checked_in_at && a->checked_in_at->seconds >= before - 1 &&
             a->checked_in_at->seconds <= before + 5);
    s_asg_free(a);
    a = s_mark(CALL_CHECK_OUT, "tn-today", s_today, "TN0070", -1, 0, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_CHECK(a && a->checked_out_at && a->checked_out_at->seconds >= before - 1);
    s_asg_free(a);

    /* Now is not the day of a wave in 2023. */
    PX_REQUIRE(s_assign(CAMP, DAY, "TN0071", "25966", NULL, &st) == PX_OK);
    PX_CHECK(s_mark(CALL_CHECK_IN, CAMP, DAY, "TN0071", -1, 0, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_FAILED_PRECONDITION);
    PX_CHECK(s_names(&st, "at"));
}

/* ------------------------------------------------------------------- ListAssignments */

/* "day unit volunteer" of every row, over all pages of size page_size. */
static int s_list_all(Phuxanh__Roster__V1__ListAssignmentsRequest *q, int page_size, char *out,
                      size_t cap, int *pages)
{
    char *token = NULL;
    out[0] = '\0';
    *pages = 0;
    q->page_size = page_size;
    do {
        q->page_token = token ? token : "";
        px_code_t rc;
        px_status_t st;
        Phuxanh__Roster__V1__ListAssignmentsResponse *l = s_list(q, &rc, &st);
        free(token);
        token = NULL;
        if (!l) {
            fprintf(stderr, "ListAssignments: %d %s\n", rc, st.message);
            return -1;
        }
        (*pages)++;
        for (size_t i = 0; i < l->n_assignments; i++) {
            size_t n = strlen(out);
            snprintf(out + n, cap - n, "%s%s/%s/%s", n ? " " : "", l->assignments[i]->day + 5,
                     l->assignments[i]->unit_code, l->assignments[i]->volunteer_code);
        }
        if (l->next_page_token && *l->next_page_token) {
            token = strdup(l->next_page_token);
        }
        protobuf_c_message_free_unpacked(&l->base, NULL);
    } while (token && *pages < 100);
    free(token);
    return 0;
}

static void test_list_assignments(void)
{
    const char *camp = "tn-list";
    PX_REQUIRE(s_sql("INSERT INTO campaigns (id, name, starts_on, ends_on) VALUES ('%s', 'Liệt"
                     " kê', '2023-11-01', '2023-11-30')",
                     camp) == 0);
    PX_REQUIRE(s_wave(camp, "2023-11-04", 30) == 0 && s_wave(camp, "2023-11-05", 30) == 0);
    px_status_t st;
    px_code_t rc;
    /* Inserted out of order; listed by (day, unit, volunteer). */
    struct {
        const char *day, *vol, *unit, *hood;
    } rows[] = {
        {"2023-11-05", "TN0083", "25969", NULL},
        {"2023-11-04", "TN0082", "25972", NULL},
        {"2023-11-04", "TN0081", "25966", NULL},
        {"2023-11-04", "TN0080", "25966", "25966-01"},
        {"2023-11-05", "TN0080", "25966", NULL},
        {"2023-11-04", "TN0084", "26001", NULL},
        {"2023-11-04", "TN0085", "25969", "25969-01"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        PX_REQUIRE(s_assign(camp, rows[i].day, rows[i].vol, rows[i].unit, rows[i].hood, &st) ==
                   PX_OK);
    }
    asg_t *a = s_mark(CALL_NO_SHOW, camp, "2023-11-04", "TN0082", -1, 0, &rc, &st);
    s_asg_free(a);
    a = s_mark(CALL_CHECK_IN, camp, "2023-11-05", "TN0083", s_vn("2023-11-05", 8, 0), 0, &rc, &st);
    s_asg_free(a);

    char got[2048];
    int pages;
    Phuxanh__Roster__V1__ListAssignmentsRequest q =
        PHUXANH__ROSTER__V1__LIST_ASSIGNMENTS_REQUEST__INIT;
    q.campaign_id = (char *)camp;
    PX_REQUIRE(s_list_all(&q, 0, got, sizeof got, &pages) == 0);
    const char *all = "11-04/25966/TN0080 11-04/25966/TN0081 11-04/25969/TN0085 "
                      "11-04/25972/TN0082 11-04/26001/TN0084 11-05/25966/TN0080 "
                      "11-05/25969/TN0083";
    PX_CHECK_STR_EQ(got, all);
    PX_CHECK_INT_EQ(pages, 1);
    for (int size = 1; size <= 4; size++) {
        PX_REQUIRE(s_list_all(&q, size, got, sizeof got, &pages) == 0);
        PX_CHECK_STR_EQ(got, all);
        PX_CHECK_INT_EQ(pages, (7 + size - 1) / size);
    }

    q.day = "2023-11-05";
    PX_REQUIRE(s_list_all(&q, 0, got, sizeof got, &pages) == 0);
    PX_CHECK_STR_EQ(got, "11-05/25966/TN0080 11-05/25969/TN0083");
    q.day = "";
    q.unit_code = "25966";
    PX_REQUIRE(s_list_all(&q, 2, got, sizeof got, &pages) == 0);
    PX_CHECK_STR_EQ(got, "11-04/25966/TN0080 11-04/25966/TN0081 11-05/25966/TN0080");
    q.unit_code = "725"; /* a district: all its wards, not 26001 of Dĩ An */
    PX_REQUIRE(s_list_all(&q, 0, got, sizeof got, &pages) == 0);
    PX_CHECK_STR_EQ(got, "11-04/25966/TN0080 11-04/25966/TN0081 11-04/25969/TN0085 "
                         "11-04/25972/TN0082 11-05/25966/TN0080 11-05/25969/TN0083");
    q.unit_code = "74"; /* the province: everything */
    PX_REQUIRE(s_list_all(&q, 0, got, sizeof got, &pages) == 0);
    PX_CHECK_STR_EQ(got, all);
    q.unit_code = "25969-01"; /* a neighborhood: the assignments placed in it */
    PX_REQUIRE(s_list_all(&q, 0, got, sizeof got, &pages) == 0);
    PX_CHECK_STR_EQ(got, "11-04/25969/TN0085");
    q.unit_code = "";
    q.volunteer_code = "TN0080";
    PX_REQUIRE(s_list_all(&q, 0, got, sizeof got, &pages) == 0);
    PX_CHECK_STR_EQ(got, "11-04/25966/TN0080 11-05/25966/TN0080");
    q.volunteer_code = "";
    Phuxanh__Roster__V1__AssignmentStatus statuses[2] = {
        PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_NO_SHOW,
        PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_CHECKED_IN};
    q.statuses = statuses;
    q.n_statuses = 2;
    PX_REQUIRE(s_list_all(&q, 0, got, sizeof got, &pages) == 0);
    PX_CHECK_STR_EQ(got, "11-04/25972/TN0082 11-05/25969/TN0083");
    q.n_statuses = 1;
    q.unit_code = "725";
    q.day = "2023-11-04";
    PX_REQUIRE(s_list_all(&q, 0, got, sizeof got, &pages) == 0);
    PX_CHECK_STR_EQ(got, "11-04/25972/TN0082");

    /* The fields of a listed assignment. */
    Phuxanh__Roster__V1__ListAssignmentsRequest one =
        PHUXANH__ROSTER__V1__LIST_ASSIGNMENTS_REQUEST__INIT;
    one.campaign_id = (char *)camp;
    one.volunteer_code = "TN0083";
    Phuxanh__Roster__V1__ListAssignmentsResponse *l = s_list(&one, &rc, &st);
    PX_REQUIRE(l && l->n_assignments == 1);
    PX_CHECK_STR_EQ(l->assignments[0]->campaign_id, camp);
    PX_CHECK_INT_EQ(l->assignments[0]->status,
                    PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_CHECKED_IN);
    PX_CHECK(l->assignments[0]->checked_in_at &&
             l->assignments[0]->checked_in_at->seconds == s_vn("2023-11-05", 8, 0));
    PX_CHECK(l->assignments[0]->created_at != NULL);
    PX_CHECK(l->next_page_token == NULL || *l->next_page_token == '\0');
    protobuf_c_message_free_unpacked(&l->base, NULL);

    /* Refusals. */
    struct {
        const char *campaign, *day, *unit, *vol, *token;
        int status, size;
        px_code_t code;
        const char *field;
    } bad[] = {
        {"", "", "", "", "", 0, 0, PX_INVALID_ARGUMENT, "campaign_id"},
        {"khong-co", "", "", "", "", 0, 0, PX_NOT_FOUND, "campaign_id"},
        {camp, "2023-11-31", "", "", "", 0, 0, PX_INVALID_ARGUMENT, "day"},
        {camp, "", "99999", "", "", 0, 0, PX_NOT_FOUND, "unit_code"},
        {camp, "", "2596 6", "", "", 0, 0, PX_INVALID_ARGUMENT, "unit_code"},
        {camp, "", "", "TN_1", "", 0, 0, PX_INVALID_ARGUMENT, "volunteer_code"},
        {camp, "", "", "", "", 9, 0, PX_INVALID_ARGUMENT, "statuses[0]"},
        {camp, "", "", "", "", 0, -1, PX_INVALID_ARGUMENT, "page_size"},
        {camp, "", "", "", "bogus", 0, 0, PX_INVALID_ARGUMENT, "page_token"},
        {camp, "", "", "", "p1.3230323", 0, 0, PX_INVALID_ARGUMENT, "page_token"},
        {camp, "", "", "", "p1.41", 0, 0, PX_INVALID_ARGUMENT, "page_token"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Phuxanh__Roster__V1__ListAssignmentsRequest b =
            PHUXANH__ROSTER__V1__LIST_ASSIGNMENTS_REQUEST__INIT;
        Phuxanh__Roster__V1__AssignmentStatus s1[1] = {
            (Phuxanh__Roster__V1__AssignmentStatus)bad[i].status};
        b.campaign_id = (char *)bad[i].campaign;
        b.day = (char *)bad[i].day;
        b.unit_code = (char *)bad[i].unit;
        b.volunteer_code = (char *)bad[i].vol;
        b.page_token = (char *)bad[i].token;
        b.page_size = bad[i].size;
        if (bad[i].status) {
            b.statuses = s1;
            b.n_statuses = 1;
        }
        PX_CHECK(s_list(&b, &rc, &st) == NULL);
        if (rc != bad[i].code) {
            fprintf(stderr, "bad case %zu: %d %s\n", i, rc, st.message);
        }
        PX_CHECK_INT_EQ(rc, bad[i].code);
        PX_CHECK(s_names(&st, bad[i].field));
    }
}

static void test_counters_match_rows(void)
{
    PX_CHECK_INT_EQ(s_out_of_step(), 0);
    PX_CHECK_INT_EQ(s_int("SELECT count(*) FROM waves WHERE assigned > capacity"), 0);
}

static const px_test_case_t s_cases[] = {
    {"assign_success", test_assign_success},
    {"assign_refusals_name_the_field_and_write_nothing", test_assign_refusals},
    {"no_double_booking", test_no_double_booking},
    {"wave_full", test_wave_full},
    {"last_seat_race_exactly_one_wins", test_last_seat_race},
    {"double_booking_race_exactly_one_wins", test_double_booking_race},
    {"unassign", test_unassign},
    {"no_show_frees_the_seat", test_no_show_frees_the_seat},
    {"check_in_and_out", test_check_in_and_out},
    {"check_in_now", test_check_in_now},
    {"list_assignments_filters_and_pages", test_list_assignments},
    {"counters_match_rows", test_counters_match_rows},
    {NULL, NULL},
};

static int s_setup(void)
{
    px_day_format(px_day_of_unix((int64_t)time(NULL)), s_today);
    s_db = PQconnectdb(s_f.db_url);
    return PQstatus(s_db) == CONNECTION_OK && s_sql("%s", s_setup_sql) == 0 ? 0 : -1;
}

static void s_teardown(void)
{
    PQfinish(s_db);
}

int main(int argc, char **argv)
{
    const char *extra[] = {"--workers=8", NULL};
    return roster_fixture_main(&s_f, "roster_assignments", extra, s_setup, s_teardown, argc, argv,
                               s_cases);
}
