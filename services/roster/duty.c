/*
 * duty.c - CheckDuty: was this volunteer on duty at this unit at this time?
 *
 * The activation service asks this for every batch of events it records, so a
 * batch is one SQL statement however many queries it holds. The queries go in
 * as parallel arrays, the day of each instant in Viet Nam computed here in C;
 * the statement unnests them WITH ORDINALITY (which keeps the order) and joins
 * each to its volunteer, its unit (a neighborhood's parent ward comes along)
 * and the assignments primary key (volunteer_code, day): one index probe per
 * query. The verdict is then decided here from what each row says, in the
 * proto's terms, so the SQL stays a plain lookup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/pbutil.h"
#include "phuxanh/text.h"
#include "roster.h"

/* A campaign id: 1 to 64 lower-case ASCII letters, digits and '-' (roster.proto). */
#define DUTY_CAMPAIGN_MAX 64
/* Days a wave can have (px_day_parse's range); an instant outside them is never on duty. */
#define DUTY_FIRST_DAY "1900-01-01"
#define DUTY_LAST_DAY "2999-12-31"

/* ------------------------------------------------------------------- SQL */

static const px_db_stmt_t s_check = {
    "duty_check",
    "SELECT v.code IS NOT NULL, u.level, coalesce(u.parent_code, ''),"
    "  a.campaign_id, a.unit_code, coalesce(a.neighborhood_code, ''), a.status,"
    "  (extract(epoch FROM a.checked_in_at) * 1000000)::bigint,"
    "  (extract(epoch FROM a.checked_out_at) * 1000000)::bigint,"
    "  (extract(epoch FROM a.created_at) * 1000000)::bigint"
    " FROM unnest($1::text[], $2::text[], $3::date[], $4::text[])"
    "  WITH ORDINALITY AS q(vol, unit, day, camp, i)"
    " LEFT JOIN volunteers v ON v.code = q.vol"
    " LEFT JOIN units u ON u.code = q.unit"
    " LEFT JOIN assignments a ON a.volunteer_code = q.vol AND a.day = q.day"
    "  AND (q.camp IS NULL OR a.campaign_id = q.camp)"
    " ORDER BY q.i",
};

/* Columns of s_check. */
enum {
    COL_VOL_KNOWN,
    COL_UNIT_LEVEL,
    COL_UNIT_PARENT,
    COL_A_CAMPAIGN,
    COL_A_UNIT,
    COL_A_HOOD,
    COL_A_STATUS,
    COL_A_IN,
    COL_A_OUT,
    COL_A_CREATED,
};

#define UNIT_LEVEL_NEIGHBORHOOD 4
#define STATUS_NO_SHOW 4

/* ------------------------------------------------------------------- helpers */

static px_code_t s_oom(px_rpc_ctx_t *ctx)
{
    return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
}

static bool s_campaign_ok(const char *s)
{
    size_t n = strlen(s);
    bool ok = n >= 1 && n <= DUTY_CAMPAIGN_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    }
    return ok;
}

/* Checks query i and fills its column entries (day: "YYYY-MM-DD" into dayb, or NULL when the
 * instant falls on no day a wave can have). */
static px_code_t s_query_check(px_rpc_ctx_t *ctx, size_t i, const Phuxanh__Roster__V1__DutyQuery *q,
                               int32_t first, int32_t last, char *dayb, const char **day,
                               const char **camp)
{
    char field[64];
    px_code_t code;
    if (!q) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "queries[%zu]: must be set", i);
    }
    snprintf(field, sizeof field, "queries[%zu].volunteer_code", i);
    if ((code = roster_code(ctx, field, q->volunteer_code)) != PX_OK) {
        return code;
    }
    snprintf(field, sizeof field, "queries[%zu].unit_code", i);
    if ((code = roster_code(ctx, field, q->unit_code)) != PX_OK) {
        return code;
    }
    int64_t us;
    if (!q->time) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "queries[%zu].time: must be set", i);
    }
    if (!px_ts_to_us(q->time, &us)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "queries[%zu].time: not a valid timestamp (seconds %lld, nanos %d)", i,
                           (long long)q->time->seconds, q->time->nanos);
    }
    *camp = NULL;
    if (q->campaign_id && *q->campaign_id) {
        if (!s_campaign_ok(q->campaign_id)) {
            return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                               "queries[%zu].campaign_id: must be 1 to %d lower-case ASCII "
                               "letters, digits or '-'",
                               i, DUTY_CAMPAIGN_MAX);
        }
        *camp = q->campaign_id;
    }
    int64_t s = us / 1000000 - (us % 1000000 < 0);
    int32_t d = px_day_of_unix(s);
    if (d < first || d > last) {
        *day = NULL;
    } else {
        px_day_format(d, dayb);
        *day = dayb;
    }
    return PX_OK;
}

/* The answer to one query from its row of s_check. */
static px_code_t s_answer(px_rpc_ctx_t *ctx, const Phuxanh__Roster__V1__DutyQuery *q,
                          const char *day, const PGresult *res, int r, bool verdict_only,
                          Phuxanh__Roster__V1__DutyAnswer *ans)
{
    phuxanh__roster__v1__duty_answer__init(ans);
    if (PQgetvalue(res, r, COL_VOL_KNOWN)[0] != 't') {
        ans->verdict = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_UNKNOWN_VOLUNTEER;
        return PX_OK;
    }
    if (PQgetisnull(res, r, COL_UNIT_LEVEL)) {
        ans->verdict = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_UNKNOWN_UNIT;
        return PX_OK;
    }
    if (PQgetisnull(res, r, COL_A_CAMPAIGN)) {
        ans->verdict = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_NOT_ASSIGNED;
        return PX_OK;
    }
    const char *a_unit = PQgetvalue(res, r, COL_A_UNIT);
    const char *a_hood = PQgetvalue(res, r, COL_A_HOOD);
    int level = atoi(PQgetvalue(res, r, COL_UNIT_LEVEL));
    int status = atoi(PQgetvalue(res, r, COL_A_STATUS));
    /* The asked unit is the assigned ward, a neighborhood of it, or the assigned
     * neighborhood itself. */
    bool here = strcmp(a_unit, q->unit_code) == 0 ||
                (level == UNIT_LEVEL_NEIGHBORHOOD &&
                 strcmp(PQgetvalue(res, r, COL_UNIT_PARENT), a_unit) == 0) ||
                (*a_hood && strcmp(a_hood, q->unit_code) == 0);
    if (!here) {
        ans->verdict = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_OTHER_UNIT;
    } else if (status == STATUS_NO_SHOW) {
        ans->verdict = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_NO_SHOW;
    } else {
        ans->verdict = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_ON_DUTY;
        ans->on_duty = true;
    }
    if (verdict_only) {
        return PX_OK;
    }
    Phuxanh__Roster__V1__Assignment *a = px_rpc_ctx_alloc(ctx, sizeof *a);
    if (!a) {
        return s_oom(ctx);
    }
    phuxanh__roster__v1__assignment__init(a);
    a->campaign_id = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, COL_A_CAMPAIGN));
    a->day = px_rpc_ctx_strdup(ctx, day);
    a->volunteer_code = px_rpc_ctx_strdup(ctx, q->volunteer_code);
    a->unit_code = px_rpc_ctx_strdup(ctx, a_unit);
    a->neighborhood_code = px_rpc_ctx_strdup(ctx, a_hood);
    a->status = (Phuxanh__Roster__V1__AssignmentStatus)status;
    a->checked_in_at = roster_ts_from_pg(ctx, res, r, COL_A_IN);
    a->checked_out_at = roster_ts_from_pg(ctx, res, r, COL_A_OUT);
    a->created_at = roster_ts_from_pg(ctx, res, r, COL_A_CREATED);
    if (!a->campaign_id || !a->day || !a->volunteer_code || !a->unit_code ||
        !a->neighborhood_code || !a->created_at) {
        return s_oom(ctx);
    }
    ans->assignment = a;
    return PX_OK;
}

/* ------------------------------------------------------------------- CheckDuty */

static px_code_t s_check_duty(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                              ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__CheckDutyRequest *req =
        (const Phuxanh__Roster__V1__CheckDutyRequest *)request;
    Phuxanh__Roster__V1__CheckDutyResponse *rep = (Phuxanh__Roster__V1__CheckDutyResponse *)reply;
    size_t n = req->n_queries;
    if (n > ROSTER_MAX_DUTY_QUERIES) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "queries: %zu given, at most %d in one call",
                           n, ROSTER_MAX_DUTY_QUERIES);
    }
    if (n == 0) {
        return PX_OK;
    }
    int32_t first, last;
    if (!px_day_parse(DUTY_FIRST_DAY, &first) || !px_day_parse(DUTY_LAST_DAY, &last)) {
        return px_rpc_fail(ctx, PX_INTERNAL, "day range constants do not parse");
    }
    /* Four columns of n entries each, and the days' text. */
    const char **col = px_rpc_ctx_alloc(ctx, 4 * n * sizeof *col);
    char *days = px_rpc_ctx_alloc(ctx, 11 * n);
    if (!col || !days) {
        return s_oom(ctx);
    }
    px_code_t code;
    for (size_t i = 0; i < n; i++) {
        const Phuxanh__Roster__V1__DutyQuery *q = req->queries[i];
        if ((code = s_query_check(ctx, i, q, first, last, days + 11 * i, &col[2 * n + i],
                                  &col[3 * n + i])) != PX_OK) {
            return code;
        }
        col[i] = q->volunteer_code;
        col[n + i] = q->unit_code;
    }
    const char *params[4];
    for (size_t c = 0; c < 4; c++) {
        if (!(params[c] = roster_array(ctx, col + c * n, n))) {
            return s_oom(ctx);
        }
    }
    PGresult *res = NULL;
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_check, 4, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    if ((size_t)PQntuples(res) != n) {
        size_t got = (size_t)PQntuples(res);
        PQclear(res);
        return px_rpc_fail(ctx, PX_INTERNAL, "duty check answered %zu rows for %zu queries", got,
                           n);
    }
    rep->answers = px_rpc_ctx_alloc(ctx, n * sizeof *rep->answers);
    Phuxanh__Roster__V1__DutyAnswer *answers = px_rpc_ctx_alloc(ctx, n * sizeof *answers);
    if (!rep->answers || !answers) {
        PQclear(res);
        return s_oom(ctx);
    }
    for (size_t i = 0; i < n; i++) {
        if ((code = s_answer(ctx, req->queries[i], col[2 * n + i], res, (int)i, req->verdict_only,
                             &answers[i])) != PX_OK) {
            PQclear(res);
            return code;
        }
        rep->answers[i] = &answers[i];
    }
    rep->n_answers = n;
    PQclear(res);
    return PX_OK;
}

const px_rpc_method_t roster_duty_methods[] = {
    {"CheckDuty", s_check_duty},
};
const size_t roster_duty_methods_count = sizeof roster_duty_methods / sizeof roster_duty_methods[0];
