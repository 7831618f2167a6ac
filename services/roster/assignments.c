/*
 * assignments.c - who goes where on a wave's day: Assign, Unassign,
 * ListAssignments, CheckIn, CheckOut, MarkNoShow.
 *
 * Two rules must hold however many planners write at once, and the database
 * is what holds them:
 * - A wave never holds more than its capacity. waves.assigned counts the
 *   assignments that hold a seat (every status but no-show). Assign takes a
 *   seat with one conditional UPDATE (assigned < capacity), which row-locks the
 *   wave: of two planners racing for the last seat the second waits for the
 *   first, re-reads the counter and finds no seat left. Every path that takes
 *   or frees a seat changes the counter in the transaction that changes the
 *   assignment, so the counter always equals the rows it counts.
 * - A volunteer is in one place a day: the assignments primary key is
 *   (volunteer_code, day), across campaigns. Assign inserts ON CONFLICT DO
 *   NOTHING so that losing that race is "no row" rather than an error that
 *   poisons the transaction, and the refusal can still name where the
 *   volunteer already is. The whole transaction, seat included, rolls back.
 * Locks are taken wave first, then assignment: Unassign and MarkNoShow lock the
 * wave before they look at the assignment, the order Assign and PlanWave use,
 * so none of them can deadlock with another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "phuxanh/clock.h"
#include "phuxanh/log.h"
#include "phuxanh/pbutil.h"
#include "phuxanh/text.h"
#include "roster.h"

/* A campaign id: 1 to 64 lower-case ASCII letters, digits and '-' (roster.proto). */
#define ASSIGN_CAMPAIGN_MAX 64
/* ListAssignments page sizes (roster.proto). */
#define ASSIGN_PAGE_DEFAULT 100
#define ASSIGN_PAGE_MAX 1000
/* ListAssignments statuses: there are four; a few repeats are harmless, a flood is not. */
#define ASSIGN_MAX_STATUSES 16
/* Room for one audit detail object: five escaped codes (at most 6 bytes a character). */
#define ASSIGN_AUDIT_MAX 1400
/* AssignmentStatus numbers, as stored in assignments.status. */
#define ST_PLANNED PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_PLANNED
#define ST_CHECKED_IN PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_CHECKED_IN
#define ST_CHECKED_OUT PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_CHECKED_OUT
#define ST_NO_SHOW PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_NO_SHOW

/* ------------------------------------------------------------------- SQL */

#define ASSIGN_COLUMNS                                                                             \
    "a.campaign_id, to_char(a.day, 'YYYY-MM-DD'), a.volunteer_code, a.unit_code,"                  \
    " coalesce(a.neighborhood_code, ''), a.status,"                                                \
    " (extract(epoch FROM a.checked_in_at) * 1000000)::bigint,"                                    \
    " (extract(epoch FROM a.checked_out_at) * 1000000)::bigint,"                                   \
    " (extract(epoch FROM a.created_at) * 1000000)::bigint"

/* Microseconds since the epoch as a timestamptz, exactly (no trip through a double). */
#define ASSIGN_AT(p)                                                                               \
    "('epoch'::timestamptz + (" p "::bigint / 1000000) * interval '1 second'"                      \
    " + (" p "::bigint % 1000000) * interval '1 microsecond')"

static const px_db_stmt_t s_volunteer = {
    "assign_volunteer",
    "SELECT active FROM volunteers WHERE code = $1",
};

static const px_db_stmt_t s_unit = {
    "assign_unit",
    "SELECT level, coalesce(parent_code, '') FROM units WHERE code = $1",
};

static const px_db_stmt_t s_campaign = {
    "assign_campaign",
    "SELECT 1 FROM campaigns WHERE id = $1",
};

static const px_db_stmt_t s_wave = {
    "assign_wave",
    "SELECT capacity FROM waves WHERE campaign_id = $1 AND day = $2::date",
};

static const px_db_stmt_t s_wave_lock = {
    "assign_wave_lock",
    "SELECT capacity FROM waves WHERE campaign_id = $1 AND day = $2::date FOR NO KEY UPDATE",
};

static const px_db_stmt_t s_seat_take = {
    "assign_seat_take",
    "UPDATE waves SET assigned = assigned + 1, updated_at = now()"
    " WHERE campaign_id = $1 AND day = $2::date AND assigned < capacity RETURNING assigned",
};

static const px_db_stmt_t s_seat_free = {
    "assign_seat_free",
    "UPDATE waves SET assigned = assigned - 1, updated_at = now()"
    " WHERE campaign_id = $1 AND day = $2::date AND assigned > 0 RETURNING assigned",
};

/* Where the volunteer already is that day, in any campaign. */
static const px_db_stmt_t s_day_taken = {
    "assign_day_taken",
    "SELECT unit_code, campaign_id FROM assignments WHERE volunteer_code = $1 AND day = $2::date",
};

static const px_db_stmt_t s_insert = {
    "assign_insert",
    "INSERT INTO assignments AS a (volunteer_code, day, campaign_id, unit_code,"
    " neighborhood_code) VALUES ($1, $2::date, $3, $4, nullif($5, ''))"
    " ON CONFLICT (volunteer_code, day) DO NOTHING RETURNING " ASSIGN_COLUMNS,
};

static const px_db_stmt_t s_get_lock = {
    "assign_get_lock",
    "SELECT " ASSIGN_COLUMNS " FROM assignments a"
    " WHERE a.volunteer_code = $1 AND a.day = $2::date AND a.campaign_id = $3 FOR UPDATE",
};

static const px_db_stmt_t s_delete = {
    "assign_delete",
    "DELETE FROM assignments WHERE volunteer_code = $1 AND day = $2::date AND campaign_id = $3",
};

/* CheckIn, CheckOut, MarkNoShow: one assignment's new status and, where the change records an
 * instant, that instant ($3, microseconds) in its column. */
#define ASSIGN_MOVE(status, stamp)                                                                 \
    "UPDATE assignments a SET status = " status stamp ", updated_at = now()"                       \
    " WHERE a.volunteer_code = $1 AND a.day = $2::date RETURNING " ASSIGN_COLUMNS
#define ASSIGN_STAMP(column) ", " column " = " ASSIGN_AT("$3")

static const px_db_stmt_t s_check_in = {
    "assign_check_in",
    ASSIGN_MOVE("2", ASSIGN_STAMP("checked_in_at")),
};

static const px_db_stmt_t s_check_out = {
    "assign_check_out",
    ASSIGN_MOVE("3", ASSIGN_STAMP("checked_out_at")),
};

static const px_db_stmt_t s_no_show = {
    "assign_no_show",
    ASSIGN_MOVE("4", ""),
};

/* Ordered by (day, unit_code, volunteer_code) in byte order, so that the keyset ($6..$8: the
 * previous page's last row) and the order agree whatever the database's collation. unit_code
 * matches the ward itself, a neighborhood of the assignment, or a district's or province's
 * wards. */
static const px_db_stmt_t s_list = {
    "assign_list",
    "SELECT " ASSIGN_COLUMNS " FROM assignments a WHERE a.campaign_id = $1"
    " AND ($2::date IS NULL OR a.day = $2::date)"
    " AND ($3::text IS NULL OR a.unit_code = $3 OR a.neighborhood_code = $3"
    "  OR a.unit_code IN (SELECT w.code FROM units w WHERE w.parent_code = $3"
    "   OR w.parent_code IN (SELECT d.code FROM units d WHERE d.parent_code = $3)))"
    " AND ($4::text IS NULL OR a.volunteer_code = $4)"
    " AND ($5::smallint[] IS NULL OR a.status = ANY ($5::smallint[]))"
    " AND ($6::date IS NULL OR (a.day, a.unit_code COLLATE \"C\", a.volunteer_code COLLATE \"C\")"
    "  > ($6::date, $7::text, $8::text))"
    " ORDER BY a.day, a.unit_code COLLATE \"C\", a.volunteer_code COLLATE \"C\""
    " LIMIT $9::int",
};

/* ------------------------------------------------------------------- helpers */

static const char *const s_level_names[] = {"unit", "province", "district", "ward", "neighborhood"};

static const char *s_level_name(int level)
{
    return level >= 1 && level <= 4 ? s_level_names[level] : s_level_names[0];
}

static px_code_t s_oom(px_rpc_ctx_t *ctx)
{
    return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
}

static bool s_campaign_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    bool ok = n >= 1 && n <= ASSIGN_CAMPAIGN_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    }
    return ok;
}

static px_code_t s_campaign_check(px_rpc_ctx_t *ctx, const char *field, const char *id)
{
    if (!id || !*id) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "%s: must be set", field);
    }
    if (!s_campaign_ok(id)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "%s: must be 1 to %d lower-case ASCII letters, digits or '-'", field,
                           ASSIGN_CAMPAIGN_MAX);
    }
    return PX_OK;
}

static bool s_code_ok(const char *s)
{
    size_t n = strlen(s);
    bool ok = n >= 1 && n <= ROSTER_CODE_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = s[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    }
    return ok;
}

/* The (campaign_id, day, volunteer_code) that names an assignment; day normalized into out. */
static px_code_t s_key_check(px_rpc_ctx_t *ctx, const char *campaign, const char *day,
                             const char *volunteer, char *out)
{
    px_code_t code;
    if ((code = s_campaign_check(ctx, "campaign_id", campaign)) != PX_OK ||
        (code = roster_day(ctx, "day", day, out)) != PX_OK ||
        (code = roster_code(ctx, "volunteer_code", volunteer)) != PX_OK) {
        return code;
    }
    return PX_OK;
}

/* One row of ASSIGN_COLUMNS as an arena Assignment (NULL when out of memory). */
static Phuxanh__Roster__V1__Assignment *s_from_row(px_rpc_ctx_t *ctx, const PGresult *res, int r)
{
    Phuxanh__Roster__V1__Assignment *a = px_rpc_ctx_alloc(ctx, sizeof *a);
    if (!a) {
        return NULL;
    }
    phuxanh__roster__v1__assignment__init(a);
    a->campaign_id = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 0));
    a->day = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 1));
    a->volunteer_code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 2));
    a->unit_code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 3));
    a->neighborhood_code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 4));
    a->status = (Phuxanh__Roster__V1__AssignmentStatus)atoi(PQgetvalue(res, r, 5));
    a->checked_in_at = roster_ts_from_pg(ctx, res, r, 6);
    a->checked_out_at = roster_ts_from_pg(ctx, res, r, 7);
    a->created_at = roster_ts_from_pg(ctx, res, r, 8);
    if (!a->campaign_id || !a->day || !a->volunteer_code || !a->unit_code ||
        !a->neighborhood_code || !a->created_at) {
        return NULL;
    }
    return a;
}

static int64_t s_ts_us(const Google__Protobuf__Timestamp *ts)
{
    return ts ? ts->seconds * 1000000 + ts->nanos / 1000 : 0;
}

/* "2023-07-29T01:30:00.000000Z" for messages. */
static void s_rfc3339(int64_t us, char *buf, size_t cap)
{
    int64_t s = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        s--;
        frac += 1000000;
    }
    time_t t = (time_t)s;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, cap, "%lld us", (long long)us);
        return;
    }
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%06lldZ", base, (long long)frac);
}

/* The instant a CheckIn/CheckOut records: `at`, or now when absent. */
static px_code_t s_at(px_rpc_ctx_t *ctx, const Google__Protobuf__Timestamp *at, int64_t *us)
{
    if (!at) {
        *us = px_wall_us();
        return PX_OK;
    }
    if (!px_ts_to_us(at, us)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "at: not a valid timestamp (seconds %lld, nanos %d)",
                           (long long)at->seconds, at->nanos);
    }
    return PX_OK;
}

/* The instant must fall on the wave's day in Viet Nam. */
static px_code_t s_at_on_day(px_rpc_ctx_t *ctx, int64_t us, bool given, const char *day)
{
    int64_t s = us / 1000000 - (us % 1000000 < 0);
    char on[11];
    px_day_format(px_day_of_unix(s), on);
    if (strcmp(on, day) == 0) {
        return PX_OK;
    }
    char when[48];
    s_rfc3339(us, when, sizeof when);
    return px_rpc_fail(ctx, PX_FAILED_PRECONDITION,
                       "at: %s%s is on %s in Asia/Ho_Chi_Minh, not on the wave's day %s",
                       given ? "" : "now, ", when, on, day);
}

/* The audit detail of a write to one assignment. */
static px_code_t s_audit(px_rpc_ctx_t *ctx, const Phuxanh__Roster__V1__Assignment *a,
                         const char *action)
{
    char c[200], v[200], u[200], h[200], detail[ASSIGN_AUDIT_MAX];
    px_json_escape(c, sizeof c, a->campaign_id);
    px_json_escape(v, sizeof v, a->volunteer_code);
    px_json_escape(u, sizeof u, a->unit_code);
    px_json_escape(h, sizeof h, a->neighborhood_code);
    snprintf(detail, sizeof detail,
             "{\"action\":\"%s\",\"campaign_id\":%s,\"day\":\"%s\",\"volunteer_code\":%s,"
             "\"unit_code\":%s,\"neighborhood_code\":%s,\"status\":%d}",
             action, c, a->day, v, u, h, (int)a->status);
    return roster_audit(ctx, detail);
}

/* Runs stmt and expects at most one row; *res is set only when there is one. */
static px_code_t s_one(px_rpc_ctx_t *ctx, const px_db_stmt_t *stmt, int n, const char *const *p,
                       PGresult **res)
{
    px_status_t st;
    PGresult *r = NULL;
    *res = NULL;
    if (px_db_execp(px_rpc_ctx_db(ctx), stmt, n, p, &r, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return PX_OK;
    }
    *res = r;
    return PX_OK;
}

/* NOT_FOUND unless the campaign and its wave on day exist. lock takes the wave's row lock, the
 * one Assign's seat UPDATE takes (FOR NO KEY UPDATE, which leaves foreign key checks free).
 * *capacity (may be NULL) gets the wave's capacity. */
static px_code_t s_wave_find(px_rpc_ctx_t *ctx, const char *campaign, const char *day, bool lock,
                             int *capacity)
{
    PGresult *res = NULL;
    const char *p[2] = {campaign, day};
    px_code_t code = s_one(ctx, &s_campaign, 1, p, &res);
    if (code != PX_OK) {
        return code;
    }
    if (!res) {
        return px_rpc_fail(ctx, PX_NOT_FOUND, "campaign_id: no campaign %s", campaign);
    }
    PQclear(res);
    if ((code = s_one(ctx, lock ? &s_wave_lock : &s_wave, 2, p, &res)) != PX_OK) {
        return code;
    }
    if (!res) {
        return px_rpc_fail(ctx, PX_NOT_FOUND, "day: campaign %s has no wave on %s", campaign, day);
    }
    if (capacity) {
        *capacity = atoi(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return PX_OK;
}

/* NOT_FOUND for an unknown volunteer; FAILED_PRECONDITION for an inactive one when
 * must_be_active. */
static px_code_t s_volunteer_find(px_rpc_ctx_t *ctx, const char *code_, bool must_be_active)
{
    PGresult *res = NULL;
    const char *p[1] = {code_};
    px_code_t code = s_one(ctx, &s_volunteer, 1, p, &res);
    if (code != PX_OK) {
        return code;
    }
    if (!res) {
        return px_rpc_fail(ctx, PX_NOT_FOUND, "volunteer_code: no volunteer %s", code_);
    }
    bool active = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (must_be_active && !active) {
        return px_rpc_fail(ctx, PX_FAILED_PRECONDITION,
                           "volunteer_code: %s is inactive and cannot be assigned", code_);
    }
    return PX_OK;
}

/* A unit's level and parent code (level 0: no such unit). */
static px_code_t s_unit_find(px_rpc_ctx_t *ctx, const char *code_, int *level, char *parent,
                             size_t cap)
{
    PGresult *res = NULL;
    const char *p[1] = {code_};
    px_code_t code = s_one(ctx, &s_unit, 1, p, &res);
    *level = 0;
    parent[0] = '\0';
    if (code != PX_OK || !res) {
        return code;
    }
    *level = atoi(PQgetvalue(res, 0, 0));
    snprintf(parent, cap, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    return PX_OK;
}

/* The volunteer's assignment in this wave, row-locked; *a is NULL when there is none. */
static px_code_t s_lock_assignment(px_rpc_ctx_t *ctx, const char *campaign, const char *day,
                                   const char *volunteer, Phuxanh__Roster__V1__Assignment **a)
{
    PGresult *res = NULL;
    const char *p[3] = {volunteer, day, campaign};
    px_code_t code = s_one(ctx, &s_get_lock, 3, p, &res);
    *a = NULL;
    if (code != PX_OK || !res) {
        return code;
    }
    *a = s_from_row(ctx, res, 0);
    PQclear(res);
    return *a ? PX_OK : s_oom(ctx);
}

/* Runs an UPDATE ... RETURNING ASSIGN_COLUMNS on one assignment and answers the new row. */
static px_code_t s_update(px_rpc_ctx_t *ctx, const px_db_stmt_t *stmt, int n, const char *const *p,
                          Phuxanh__Roster__V1__Assignment **a)
{
    PGresult *res = NULL;
    px_code_t code = s_one(ctx, stmt, n, p, &res);
    if (code != PX_OK) {
        return code;
    }
    if (!res) {
        return px_rpc_fail(ctx, PX_INTERNAL, "the assignment disappeared while locked");
    }
    *a = s_from_row(ctx, res, 0);
    PQclear(res);
    return *a ? PX_OK : s_oom(ctx);
}

static px_code_t s_seat_release(px_rpc_ctx_t *ctx, const char *campaign, const char *day)
{
    PGresult *res = NULL;
    const char *p[2] = {campaign, day};
    px_code_t code = s_one(ctx, &s_seat_free, 2, p, &res);
    if (code != PX_OK) {
        return code;
    }
    if (!res) {
        return px_rpc_fail(ctx, PX_INTERNAL, "wave %s %s: seat counter already at zero", campaign,
                           day);
    }
    PQclear(res);
    return PX_OK;
}

static px_code_t s_commit(px_rpc_ctx_t *ctx)
{
    px_status_t st;
    if (px_db_commit(px_rpc_ctx_db(ctx), &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    return PX_OK;
}

static px_code_t s_begin(px_rpc_ctx_t *ctx)
{
    px_status_t st;
    if (px_db_begin(px_rpc_ctx_db(ctx), &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    return PX_OK;
}

/* ALREADY_EXISTS naming where the volunteer already is that day. */
static px_code_t s_already(px_rpc_ctx_t *ctx, const char *volunteer, const char *day)
{
    PGresult *res = NULL;
    const char *p[2] = {volunteer, day};
    px_code_t code = s_one(ctx, &s_day_taken, 2, p, &res);
    if (code != PX_OK) {
        return code;
    }
    if (!res) { /* the winner was itself undone meanwhile: still this call's refusal */
        return px_rpc_fail(ctx, PX_ALREADY_EXISTS, "volunteer_code: %s is already assigned on %s",
                           volunteer, day);
    }
    char unit[ROSTER_CODE_MAX + 1], campaign[ASSIGN_CAMPAIGN_MAX + 1];
    snprintf(unit, sizeof unit, "%s", PQgetvalue(res, 0, 0));
    snprintf(campaign, sizeof campaign, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    return px_rpc_fail(ctx, PX_ALREADY_EXISTS,
                       "volunteer_code: %s is already assigned on %s (at ward %s, campaign %s)",
                       volunteer, day, unit, campaign);
}

/* ------------------------------------------------------------------- Assign */

static px_code_t s_assign(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                          ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__AssignRequest *req =
        (const Phuxanh__Roster__V1__AssignRequest *)request;
    Phuxanh__Roster__V1__AssignResponse *rep = (Phuxanh__Roster__V1__AssignResponse *)reply;
    char day[11];
    px_code_t code = s_key_check(ctx, req->campaign_id, req->day, req->volunteer_code, day);
    if (code != PX_OK || (code = roster_code(ctx, "unit_code", req->unit_code)) != PX_OK) {
        return code;
    }
    const char *hood = req->neighborhood_code ? req->neighborhood_code : "";
    if (*hood && (code = roster_code(ctx, "neighborhood_code", hood)) != PX_OK) {
        return code;
    }

    if ((code = s_begin(ctx)) != PX_OK ||
        (code = s_volunteer_find(ctx, req->volunteer_code, true)) != PX_OK) {
        return code;
    }
    int level;
    char parent[ROSTER_CODE_MAX + 1];
    if ((code = s_unit_find(ctx, req->unit_code, &level, parent, sizeof parent)) != PX_OK) {
        return code;
    }
    if (level == 0) {
        return px_rpc_fail(ctx, PX_NOT_FOUND, "unit_code: no unit %s", req->unit_code);
    }
    if (level != 3) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "unit_code: %s is a %s, not a ward",
                           req->unit_code, s_level_name(level));
    }
    if (*hood) {
        if ((code = s_unit_find(ctx, hood, &level, parent, sizeof parent)) != PX_OK) {
            return code;
        }
        if (level == 0) {
            return px_rpc_fail(ctx, PX_NOT_FOUND, "neighborhood_code: no unit %s", hood);
        }
        if (level != 4 || strcmp(parent, req->unit_code) != 0) {
            return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                               "neighborhood_code: %s is not a neighborhood of ward %s", hood,
                               req->unit_code);
        }
    }
    int capacity = 0;
    if ((code = s_wave_find(ctx, req->campaign_id, day, false, &capacity)) != PX_OK) {
        return code;
    }
    /* Already busy that day: say so rather than "full" (a retried Assign whose reply was lost
     * must not be told the wave is full). The insert below settles the race for real. */
    PGresult *res = NULL;
    const char *taken_p[2] = {req->volunteer_code, day};
    if ((code = s_one(ctx, &s_day_taken, 2, taken_p, &res)) != PX_OK) {
        return code;
    }
    if (res) {
        PQclear(res);
        return s_already(ctx, req->volunteer_code, day);
    }

    const char *seat_p[2] = {req->campaign_id, day};
    if ((code = s_one(ctx, &s_seat_take, 2, seat_p, &res)) != PX_OK) {
        return code;
    }
    if (!res) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "day: wave %s %s is full (capacity %d)",
                           req->campaign_id, day, capacity);
    }
    PQclear(res);
    const char *ins_p[5] = {req->volunteer_code, day, req->campaign_id, req->unit_code, hood};
    if ((code = s_one(ctx, &s_insert, 5, ins_p, &res)) != PX_OK) {
        return code;
    }
    if (!res) {
        /* Another planner booked this volunteer for the day meanwhile: give the seat back by
         * rolling everything back, then name where they went (now committed, so visible). */
        px_db_rollback(px_rpc_ctx_db(ctx));
        return s_already(ctx, req->volunteer_code, day);
    }
    rep->assignment = s_from_row(ctx, res, 0);
    PQclear(res);
    if (!rep->assignment) {
        return s_oom(ctx);
    }
    if ((code = s_audit(ctx, rep->assignment, "assign")) != PX_OK) {
        return code;
    }
    return s_commit(ctx);
}

/* ------------------------------------------------------------------- Unassign */

static px_code_t s_unassign(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                            ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__UnassignRequest *req =
        (const Phuxanh__Roster__V1__UnassignRequest *)request;
    Phuxanh__Roster__V1__UnassignResponse *rep = (Phuxanh__Roster__V1__UnassignResponse *)reply;
    char day[11];
    px_code_t code = s_key_check(ctx, req->campaign_id, req->day, req->volunteer_code, day);
    if (code != PX_OK || (code = s_begin(ctx)) != PX_OK ||
        (code = s_wave_find(ctx, req->campaign_id, day, true, NULL)) != PX_OK ||
        (code = s_volunteer_find(ctx, req->volunteer_code, false)) != PX_OK) {
        return code;
    }
    Phuxanh__Roster__V1__Assignment *a = NULL;
    if ((code = s_lock_assignment(ctx, req->campaign_id, day, req->volunteer_code, &a)) != PX_OK) {
        return code;
    }
    if (!a) {
        rep->removed = false; /* nothing to do: also the answer to a repeated Unassign */
        return s_commit(ctx);
    }
    if (a->status == ST_CHECKED_IN || a->status == ST_CHECKED_OUT) {
        return px_rpc_fail(ctx, PX_FAILED_PRECONDITION,
                           "volunteer_code: %s has already checked %s in wave %s %s; an "
                           "assignment with a check-in stays",
                           req->volunteer_code, a->status == ST_CHECKED_IN ? "in" : "out",
                           req->campaign_id, day);
    }
    const char *p[3] = {req->volunteer_code, day, req->campaign_id};
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_delete, 3, p, NULL, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    /* A no-show already gave its seat back (MarkNoShow). */
    if (a->status == ST_PLANNED && (code = s_seat_release(ctx, req->campaign_id, day)) != PX_OK) {
        return code;
    }
    if ((code = s_audit(ctx, a, "unassign")) != PX_OK || (code = s_commit(ctx)) != PX_OK) {
        return code;
    }
    rep->removed = true;
    rep->assignment = a;
    return PX_OK;
}

/* ------------------------------------------------------------------- ListAssignments */

/* The page token's key: "day\x1funit_code\x1fvolunteer_code" of the previous page's last row. */
typedef struct {
    char day[11];
    char unit[ROSTER_CODE_MAX + 1];
    char volunteer[ROSTER_CODE_MAX + 1];
} s_after_t;

static bool s_after_parse(const char *key, s_after_t *out)
{
    const char *s1 = strchr(key, '\x1f');
    const char *s2 = s1 ? strchr(s1 + 1, '\x1f') : NULL;
    if (!s1 || !s2 || s1 - key != 10 || (size_t)(s2 - s1 - 1) > ROSTER_CODE_MAX ||
        strlen(s2 + 1) > ROSTER_CODE_MAX) {
        return false;
    }
    char given[11];
    int32_t days;
    memcpy(given, key, 10);
    given[10] = '\0';
    if (!px_day_parse(given, &days)) {
        return false;
    }
    px_day_format(days, out->day);
    memcpy(out->unit, s1 + 1, (size_t)(s2 - s1 - 1));
    out->unit[s2 - s1 - 1] = '\0';
    snprintf(out->volunteer, sizeof out->volunteer, "%s", s2 + 1);
    return s_code_ok(out->unit) && s_code_ok(out->volunteer);
}

/* statuses as a smallint[] literal ("{1,4}"), or NULL for none. */
static px_code_t s_statuses(px_rpc_ctx_t *ctx,
                            const Phuxanh__Roster__V1__ListAssignmentsRequest *req,
                            const char **out)
{
    *out = NULL;
    if (req->n_statuses == 0) {
        return PX_OK;
    }
    if (req->n_statuses > ASSIGN_MAX_STATUSES) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "statuses: %zu given, at most %d",
                           req->n_statuses, ASSIGN_MAX_STATUSES);
    }
    char buf[ASSIGN_MAX_STATUSES * 3 + 3] = "{";
    size_t len = 1;
    for (size_t i = 0; i < req->n_statuses; i++) {
        int s = (int)req->statuses[i];
        if (s < ST_PLANNED || s > ST_NO_SHOW) {
            return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                               "statuses[%zu]: %d is not an assignment status (1 to 4)", i, s);
        }
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d", i ? "," : "", s);
    }
    snprintf(buf + len, sizeof buf - len, "}");
    *out = px_rpc_ctx_strdup(ctx, buf);
    return *out ? PX_OK : s_oom(ctx);
}

static px_code_t s_list_assignments(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                    ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__ListAssignmentsRequest *req =
        (const Phuxanh__Roster__V1__ListAssignmentsRequest *)request;
    Phuxanh__Roster__V1__ListAssignmentsResponse *rep =
        (Phuxanh__Roster__V1__ListAssignmentsResponse *)reply;
    px_code_t code = s_campaign_check(ctx, "campaign_id", req->campaign_id);
    if (code != PX_OK) {
        return code;
    }
    char day[11];
    const char *day_p = NULL, *unit_p = NULL, *vol_p = NULL, *statuses = NULL;
    if (req->day && *req->day) {
        if ((code = roster_day(ctx, "day", req->day, day)) != PX_OK) {
            return code;
        }
        day_p = day;
    }
    if (req->unit_code && *req->unit_code) {
        if ((code = roster_code(ctx, "unit_code", req->unit_code)) != PX_OK) {
            return code;
        }
        unit_p = req->unit_code;
    }
    if (req->volunteer_code && *req->volunteer_code) {
        if ((code = roster_code(ctx, "volunteer_code", req->volunteer_code)) != PX_OK) {
            return code;
        }
        vol_p = req->volunteer_code;
    }
    int size;
    const char *key;
    s_after_t after;
    if ((code = s_statuses(ctx, req, &statuses)) != PX_OK ||
        (code = roster_page_size(ctx, req->page_size, ASSIGN_PAGE_DEFAULT, ASSIGN_PAGE_MAX,
                                 &size)) != PX_OK ||
        (code = roster_token_read(ctx, req->page_token, &key)) != PX_OK) {
        return code;
    }
    if (*key && !s_after_parse(key, &after)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "page_token: not a token from this service");
    }

    PGresult *res = NULL;
    const char *cp[1] = {req->campaign_id};
    if ((code = s_one(ctx, &s_campaign, 1, cp, &res)) != PX_OK) {
        return code;
    }
    if (!res) {
        return px_rpc_fail(ctx, PX_NOT_FOUND, "campaign_id: no campaign %s", req->campaign_id);
    }
    PQclear(res);
    if (unit_p) {
        int level;
        char parent[ROSTER_CODE_MAX + 1];
        if ((code = s_unit_find(ctx, unit_p, &level, parent, sizeof parent)) != PX_OK) {
            return code;
        }
        if (level == 0) {
            return px_rpc_fail(ctx, PX_NOT_FOUND, "unit_code: no unit %s", unit_p);
        }
    }
    char limit[12];
    snprintf(limit, sizeof limit, "%d", size + 1);
    const char *params[9] = {req->campaign_id,
                             day_p,
                             unit_p,
                             vol_p,
                             statuses,
                             *key ? after.day : NULL,
                             *key ? after.unit : NULL,
                             *key ? after.volunteer : NULL,
                             limit};
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_list, 9, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    int rows = PQntuples(res);
    int take = rows > size ? size : rows;
    rep->assignments = px_rpc_ctx_alloc(ctx, ((size_t)take + 1) * sizeof *rep->assignments);
    if (!rep->assignments) {
        PQclear(res);
        return s_oom(ctx);
    }
    for (int r = 0; r < take; r++) {
        if (!(rep->assignments[r] = s_from_row(ctx, res, r))) {
            PQclear(res);
            return s_oom(ctx);
        }
        rep->n_assignments++;
    }
    PQclear(res);
    if (rows > size && take > 0) {
        const Phuxanh__Roster__V1__Assignment *last = rep->assignments[take - 1];
        char *k = px_rpc_ctx_printf(ctx, "%s\x1f%s\x1f%s", last->day, last->unit_code,
                                    last->volunteer_code);
        if (!k || !(rep->next_page_token = roster_token_make(ctx, k))) {
            return s_oom(ctx);
        }
    }
    return PX_OK;
}

/* ------------------------------------------------------ CheckIn, CheckOut, MarkNoShow */

/* The instant a move records, and so the column its UPDATE sets. */
typedef enum {
    S_STAMP_NONE,
    S_STAMP_CHECKED_IN,
    S_STAMP_CHECKED_OUT, /* must not precede checked_in_at */
} s_stamp_t;

/* Why a move is refused from a status: "volunteer_code: V <why> wave C D<note>". */
typedef struct {
    const char *why;
    const char *note;
} s_refusal_t;

/* One status change of an assignment. The three methods differ only in what this says, so one
 * function (s_move) runs them all and the rules can be read side by side. */
typedef struct {
    const char *action;         /* the audit detail's "action" */
    unsigned from;              /* statuses it starts from, as 1u << status */
    int to;                     /* already there: a repeat, answered with the row unchanged */
    s_stamp_t stamp;            /* the request's `at` (or now) goes there */
    const px_db_stmt_t *update; /* sets status `to` (and the stamp from $3) */
    bool frees_seat;            /* a no-show gives its seat back, so the wave is locked first */
    s_refusal_t refused[ST_NO_SHOW + 1]; /* by current status, for each one not in from */
} s_move_t;

enum { S_CHECK_IN, S_CHECK_OUT, S_MARK_NO_SHOW };

static const s_move_t s_moves[] = {
    [S_CHECK_IN] =
        {
            .action = "check_in",
            .from = 1u << ST_PLANNED,
            .to = ST_CHECKED_IN, /* a repeat: the first arrival stays */
            .stamp = S_STAMP_CHECKED_IN,
            .update = &s_check_in,
            .refused =
                {
                    [ST_CHECKED_OUT] = {"has already checked out of", ""},
                    [ST_NO_SHOW] = {"is marked as a no-show in", ""},
                },
        },
    [S_CHECK_OUT] =
        {
            .action = "check_out",
            .from = 1u << ST_CHECKED_IN,
            .to = ST_CHECKED_OUT, /* a repeat: the first departure stays */
            .stamp = S_STAMP_CHECKED_OUT,
            .update = &s_check_out,
            .refused =
                {
                    [ST_PLANNED] = {"has not checked in to", ""},
                    [ST_NO_SHOW] = {"has not checked in to", " (marked as a no-show)"},
                },
        },
    [S_MARK_NO_SHOW] =
        {
            .action = "no_show",
            .from = 1u << ST_PLANNED,
            .to = ST_NO_SHOW,
            .stamp = S_STAMP_NONE,
            .update = &s_no_show,
            .frees_seat = true,
            .refused =
                {
                    [ST_CHECKED_IN] = {"has already checked in in", ""},
                    [ST_CHECKED_OUT] = {"has already checked out in", ""},
                },
        },
};

/* Validate, lock, decide by the table, write, audit. given_at is the request's `at` (NULL: now);
 * a move without a stamp never reads it. */
static px_code_t s_move(px_rpc_ctx_t *ctx, const s_move_t *m, const char *campaign,
                        const char *day_in, const char *volunteer,
                        const Google__Protobuf__Timestamp *given_at,
                        Phuxanh__Roster__V1__Assignment **out)
{
    char day[11];
    int64_t at = 0;
    bool stamped = m->stamp != S_STAMP_NONE;
    px_code_t code = s_key_check(ctx, campaign, day_in, volunteer, day);
    if (code != PX_OK || (stamped && (code = s_at(ctx, given_at, &at)) != PX_OK) ||
        (code = s_begin(ctx)) != PX_OK) {
        return code;
    }
    /* The wave first: the seat goes back to it, and wave-then-assignment is the lock order. */
    if (m->frees_seat && (code = s_wave_find(ctx, campaign, day, true, NULL)) != PX_OK) {
        return code;
    }
    Phuxanh__Roster__V1__Assignment *a = NULL;
    if ((code = s_lock_assignment(ctx, campaign, day, volunteer, &a)) != PX_OK) {
        return code;
    }
    if (!a) {
        return px_rpc_fail(ctx, PX_NOT_FOUND,
                           "volunteer_code: %s has no assignment in campaign %s on %s", volunteer,
                           campaign, day);
    }
    int status = (int)a->status;
    if (status == m->to) {
        *out = a;
        return PX_OK;
    }
    /* The table is indexed by status; the schema's CHECK keeps it in range, this keeps a
     * broken row from indexing past it. */
    if (status < ST_PLANNED || status > ST_NO_SHOW) {
        return px_rpc_fail(ctx, PX_INTERNAL, "assignment has an unknown status %d", status);
    }
    if (!(m->from & (1u << status))) {
        const s_refusal_t *r = &m->refused[status];
        return px_rpc_fail(ctx, PX_FAILED_PRECONDITION, "volunteer_code: %s %s wave %s %s%s",
                           volunteer, r->why, campaign, day, r->note);
    }
    char at_s[24] = "";
    const char *p[3] = {volunteer, day, at_s};
    if (stamped) {
        if ((code = s_at_on_day(ctx, at, given_at != NULL, day)) != PX_OK) {
            return code;
        }
        int64_t in = s_ts_us(a->checked_in_at);
        if (m->stamp == S_STAMP_CHECKED_OUT && at < in) {
            char at_txt[48], in_txt[48];
            s_rfc3339(at, at_txt, sizeof at_txt);
            s_rfc3339(in, in_txt, sizeof in_txt);
            return px_rpc_fail(ctx, PX_FAILED_PRECONDITION, "at: %s%s is before the check-in at %s",
                               given_at ? "" : "now, ", at_txt, in_txt);
        }
        snprintf(at_s, sizeof at_s, "%lld", (long long)at);
    }
    if ((code = s_update(ctx, m->update, stamped ? 3 : 2, p, out)) != PX_OK ||
        (m->frees_seat && (code = s_seat_release(ctx, campaign, day)) != PX_OK) ||
        (code = s_audit(ctx, *out, m->action)) != PX_OK) {
        return code;
    }
    return s_commit(ctx);
}

static px_code_t s_check_in_fn(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                               ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__CheckInRequest *req =
        (const Phuxanh__Roster__V1__CheckInRequest *)request;
    return s_move(ctx, &s_moves[S_CHECK_IN], req->campaign_id, req->day, req->volunteer_code,
                  req->at, &((Phuxanh__Roster__V1__CheckInResponse *)reply)->assignment);
}

static px_code_t s_check_out_fn(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__CheckOutRequest *req =
        (const Phuxanh__Roster__V1__CheckOutRequest *)request;
    return s_move(ctx, &s_moves[S_CHECK_OUT], req->campaign_id, req->day, req->volunteer_code,
                  req->at, &((Phuxanh__Roster__V1__CheckOutResponse *)reply)->assignment);
}

static px_code_t s_mark_no_show(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__MarkNoShowRequest *req =
        (const Phuxanh__Roster__V1__MarkNoShowRequest *)request;
    return s_move(ctx, &s_moves[S_MARK_NO_SHOW], req->campaign_id, req->day, req->volunteer_code,
                  NULL, &((Phuxanh__Roster__V1__MarkNoShowResponse *)reply)->assignment);
}

const px_rpc_method_t roster_assignments_methods[] = {
    {"Assign", s_assign},
    {"Unassign", s_unassign},
    {"ListAssignments", s_list_assignments},
    {"CheckIn", s_check_in_fn},
    {"CheckOut", s_check_out_fn},
    {"MarkNoShow", s_mark_no_show},
};
const size_t roster_assignments_methods_count =
    sizeof roster_assignments_methods / sizeof roster_assignments_methods[0];
