/*
 * volunteers.c - the roster of youth-union members: UpsertVolunteers,
 * GetVolunteer, ListVolunteers.
 *
 * UpsertVolunteers must take a whole unit's roster (10,000 rows) in well
 * under a second, all or nothing. So every row is checked here in C first,
 * collecting a RowError per refused row; only a clean batch reaches the
 * database, as one INSERT ... SELECT FROM unnest(arrays) ... ON CONFLICT
 * statement whose WHERE skips rows identical to what is stored (importing the
 * same file twice changes nothing). `active` absent keeps the stored value,
 * which the statement reads by joining the batch to the table. Names are
 * stored in NFC, and their folded form (px_fold: no case, no diacritics, one
 * space) is computed in SQL next to them, for the search.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/pbutil.h"
#include "phuxanh/text.h"
#include "roster.h"

/* Field bounds (roster.proto). */
#define VOL_RANK_MAX 100
#define VOL_DEPARTMENT_MAX 200
#define VOL_ROLE_MAX 100
#define VOL_QUERY_MAX 200
/* ListVolunteers page sizes (roster.proto). */
#define VOL_PAGE_DEFAULT 100
#define VOL_PAGE_MAX 1000

/* ------------------------------------------------------------------- SQL */

#define VOL_COLUMNS                                                                                \
    "code, full_name, rank, department, union_role, phone, active,"                                \
    " (extract(epoch FROM created_at) * 1000000)::bigint,"                                         \
    " (extract(epoch FROM updated_at) * 1000000)::bigint"

static const px_db_stmt_t s_upsert = {
    "volunteers_upsert",
    "WITH x AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    "   $6::text[], $7::bool[]) AS x(code, full_name, rank, department, union_role, phone,"
    "   active)),"
    " w AS (INSERT INTO volunteers AS v (code, full_name, name_folded, rank, department,"
    "   union_role, phone, active)"
    "  SELECT x.code, n.full_name, px_fold(n.full_name), normalize(x.rank, NFC),"
    "   normalize(x.department, NFC), normalize(x.union_role, NFC), x.phone,"
    "   coalesce(x.active, cur.active, true)"
    "  FROM x CROSS JOIN LATERAL (SELECT normalize(x.full_name, NFC) AS full_name) n"
    "  LEFT JOIN volunteers cur ON cur.code = x.code"
    "  ON CONFLICT (code) DO UPDATE SET full_name = EXCLUDED.full_name,"
    "   name_folded = EXCLUDED.name_folded, rank = EXCLUDED.rank,"
    "   department = EXCLUDED.department, union_role = EXCLUDED.union_role,"
    "   phone = EXCLUDED.phone, active = EXCLUDED.active, updated_at = now()"
    "  WHERE (v.full_name, v.rank, v.department, v.union_role, v.phone, v.active)"
    "   IS DISTINCT FROM (EXCLUDED.full_name, EXCLUDED.rank, EXCLUDED.department,"
    "   EXCLUDED.union_role, EXCLUDED.phone, EXCLUDED.active)"
    "  RETURNING (xmax = 0) AS ins)"
    " SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM w",
};

static const px_db_stmt_t s_get = {
    "volunteers_get",
    "SELECT " VOL_COLUMNS " FROM volunteers WHERE code = $1",
};

/* The query is folded like the names, then its LIKE metacharacters (\ % _) are escaped, so
 * "50%" or "a_b" match themselves. */
static const px_db_stmt_t s_list = {
    "volunteers_list",
    "SELECT " VOL_COLUMNS " FROM volunteers"
    " WHERE ($1 = '' OR department = $1) AND ($2::bool IS NULL OR active = $2::bool)"
    "  AND ($3 = '' OR name_folded LIKE '%' || replace(replace(replace(px_fold(normalize($3, NFC)),"
    "   '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%' ESCAPE '\\')"
    "  AND ($4::text[] IS NULL OR code = ANY ($4::text[]))"
    "  AND code COLLATE \"C\" > $5"
    " ORDER BY code COLLATE \"C\" LIMIT $6::int",
};

/* ------------------------------------------------------------------- helpers */

/* A roster code: 1 to 32 ASCII letters and digits. */
static bool s_code_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    bool ok = n >= 1 && n <= ROSTER_CODE_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = s[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    }
    return ok;
}

static px_code_t s_oom(px_rpc_ctx_t *ctx)
{
    return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
}

static Phuxanh__Roster__V1__Volunteer *s_volunteer_from_row(px_rpc_ctx_t *ctx, const PGresult *res,
                                                            int r)
{
    Phuxanh__Roster__V1__Volunteer *v = px_rpc_ctx_alloc(ctx, sizeof *v);
    if (!v) {
        return NULL;
    }
    phuxanh__roster__v1__volunteer__init(v);
    v->code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 0));
    v->full_name = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 1));
    v->rank = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 2));
    v->department = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 3));
    v->union_role = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 4));
    v->phone = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 5));
    v->active = px_bool_new(ctx, PQgetvalue(res, r, 6)[0] == 't');
    v->created_at = roster_ts_from_pg(ctx, res, r, 7);
    v->updated_at = roster_ts_from_pg(ctx, res, r, 8);
    if (!v->code || !v->full_name || !v->rank || !v->department || !v->union_role || !v->phone ||
        !v->active || !v->created_at || !v->updated_at) {
        return NULL;
    }
    return v;
}

/* ------------------------------------------------------------------- UpsertVolunteers */

/* Checks every row alone, writing each normalized phone into phones[i] (11 bytes each), then
 * the batch for codes given twice. */
static void s_upsert_check(roster_errors_t *e, Phuxanh__Roster__V1__Volunteer **vols, size_t n,
                           roster_key_t *keys, char (*phones)[11])
{
    for (size_t i = 0; i < n; i++) {
        const Phuxanh__Roster__V1__Volunteer *v = vols[i];
        keys[i] = (roster_key_t){"", i};
        if (!s_code_ok(v->code)) {
            roster_row_fail(e, i, "code", PX_INVALID_ARGUMENT,
                            "must be 1 to %d ASCII letters and digits", ROSTER_CODE_MAX);
            continue;
        }
        keys[i].key = v->code;
        roster_row_text(e, i, "full_name", v->full_name, ROSTER_NAME_MAX, true);
        roster_row_text(e, i, "rank", v->rank, VOL_RANK_MAX, false);
        roster_row_text(e, i, "department", v->department, VOL_DEPARTMENT_MAX, false);
        roster_row_text(e, i, "union_role", v->union_role, VOL_ROLE_MAX, false);
        phones[i][0] = '\0';
        if (v->phone && *v->phone && !px_phone_vn_normalize(v->phone, phones[i])) {
            roster_row_fail(e, i, "phone", PX_INVALID_ARGUMENT,
                            "not a Vietnamese mobile number (0 then 3, 5, 7, 8 or 9 and 8 more "
                            "digits, or +84/84 instead of the 0; spaces, dots and dashes "
                            "between digits are fine)");
        }
    }
    roster_keys_unique(e, keys, n);
}

px_code_t roster_volunteers_apply(px_rpc_ctx_t *ctx, Phuxanh__Roster__V1__Volunteer **vols,
                                  size_t n, roster_errors_t *e,
                                  Phuxanh__Roster__V1__BatchUpsertResponse *rep)
{
    roster_key_t *keys = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *keys);
    char(*phones)[11] = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *phones);
    if (!keys || !phones) {
        return s_oom(ctx);
    }
    s_upsert_check(e, vols, n, keys, phones);
    if (e->oom) {
        return s_oom(ctx);
    }
    if (e->count > 0 || n == 0) {
        return PX_OK;
    }

    enum { COLS = 7 };
    const char **col = px_rpc_ctx_alloc(ctx, COLS * n * sizeof *col);
    if (!col) {
        return s_oom(ctx);
    }
    /* Rows go in code order (keys is sorted), so two batches that overlap lock their rows in
     * the same order and cannot deadlock. */
    for (size_t i = 0; i < n; i++) {
        const Phuxanh__Roster__V1__Volunteer *v = vols[keys[i].row];
        col[0 * n + i] = v->code;
        col[1 * n + i] = v->full_name;
        col[2 * n + i] = v->rank ? v->rank : "";
        col[3 * n + i] = v->department ? v->department : "";
        col[4 * n + i] = v->union_role ? v->union_role : "";
        col[5 * n + i] = phones[keys[i].row];
        col[6 * n + i] = v->active ? (v->active->value ? "t" : "f") : NULL;
    }
    const char *params[COLS];
    for (int c = 0; c < COLS; c++) {
        if (!(params[c] = roster_array(ctx, col + (size_t)c * n, n))) {
            return s_oom(ctx);
        }
    }
    return roster_upsert_write(ctx, &s_upsert, COLS, params, n, rep);
}

static px_code_t s_upsert_volunteers(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                     ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__UpsertVolunteersRequest *req =
        (const Phuxanh__Roster__V1__UpsertVolunteersRequest *)request;
    Phuxanh__Roster__V1__BatchUpsertResponse *rep =
        (Phuxanh__Roster__V1__BatchUpsertResponse *)reply;
    size_t n = req->n_volunteers;
    bool done = false;
    roster_errors_t e;
    px_code_t code = roster_upsert_start(ctx, "volunteers", n, req->validate_only, rep, &e, &done);
    if (code != PX_OK || done) {
        return code;
    }
    code = roster_volunteers_apply(ctx, req->volunteers, n, &e, rep);
    if (code != PX_OK) {
        return code;
    }
    return roster_upsert_end(ctx, &e, req->validate_only, rep);
}

/* ------------------------------------------------------------------- GetVolunteer */

static px_code_t s_get_volunteer(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                 ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__GetVolunteerRequest *req =
        (const Phuxanh__Roster__V1__GetVolunteerRequest *)request;
    Phuxanh__Roster__V1__GetVolunteerResponse *rep =
        (Phuxanh__Roster__V1__GetVolunteerResponse *)reply;
    if (!req->code || !*req->code) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "code: must be set");
    }
    if (!s_code_ok(req->code)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "code: must be 1 to %d ASCII letters and digits", ROSTER_CODE_MAX);
    }
    const char *params[1] = {req->code};
    PGresult *res = NULL;
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_get, 1, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return px_rpc_fail(ctx, PX_NOT_FOUND, "code: no volunteer %s", req->code);
    }
    rep->volunteer = s_volunteer_from_row(ctx, res, 0);
    PQclear(res);
    return rep->volunteer ? PX_OK : s_oom(ctx);
}

/* ------------------------------------------------------------------- ListVolunteers */

static px_code_t s_list_volunteers(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                   ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__ListVolunteersRequest *req =
        (const Phuxanh__Roster__V1__ListVolunteersRequest *)request;
    Phuxanh__Roster__V1__ListVolunteersResponse *rep =
        (Phuxanh__Roster__V1__ListVolunteersResponse *)reply;
    px_status_t st;
    const char *dept = req->department ? req->department : "";
    const char *query = req->query ? req->query : "";
    if (px_text_check("department", dept, VOL_DEPARTMENT_MAX, false, &st) != PX_OK ||
        px_text_check("query", query, VOL_QUERY_MAX, false, &st) != PX_OK) {
        return px_rpc_fail_status(ctx, &st);
    }
    if (req->n_codes > ROSTER_MAX_CODES) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "codes: %zu codes, at most %d in one call",
                           req->n_codes, ROSTER_MAX_CODES);
    }
    for (size_t i = 0; i < req->n_codes; i++) {
        if (!px_utf8_valid(req->codes[i], strlen(req->codes[i]))) {
            return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "codes[%zu]: is not valid UTF-8", i);
        }
    }
    int size;
    const char *after;
    px_code_t code = roster_page_size(ctx, req->page_size, VOL_PAGE_DEFAULT, VOL_PAGE_MAX, &size);
    if (code != PX_OK || (code = roster_token_read(ctx, req->page_token, &after)) != PX_OK) {
        return code;
    }
    const char *codes = NULL;
    if (req->n_codes > 0 &&
        !(codes = roster_array(ctx, (const char *const *)req->codes, req->n_codes))) {
        return s_oom(ctx);
    }
    char limit[12];
    snprintf(limit, sizeof limit, "%d", size + 1);
    const char *params[6] = {
        dept, req->active ? (req->active->value ? "t" : "f") : NULL, query, codes, after, limit,
    };
    PGresult *res = NULL;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_list, 6, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    int rows = PQntuples(res);
    int take = rows > size ? size : rows;
    rep->volunteers = px_rpc_ctx_alloc(ctx, ((size_t)take + 1) * sizeof *rep->volunteers);
    if (!rep->volunteers) {
        PQclear(res);
        return s_oom(ctx);
    }
    for (int r = 0; r < take; r++) {
        if (!(rep->volunteers[r] = s_volunteer_from_row(ctx, res, r))) {
            PQclear(res);
            return s_oom(ctx);
        }
        rep->n_volunteers++;
    }
    PQclear(res);
    if (rows > size && take > 0) {
        rep->next_page_token = roster_token_make(ctx, rep->volunteers[take - 1]->code);
        if (!rep->next_page_token) {
            return s_oom(ctx);
        }
    }
    return PX_OK;
}

const px_rpc_method_t roster_volunteers_methods[] = {
    {"UpsertVolunteers", s_upsert_volunteers},
    {"GetVolunteer", s_get_volunteer},
    {"ListVolunteers", s_list_volunteers},
};
const size_t roster_volunteers_methods_count =
    sizeof roster_volunteers_methods / sizeof roster_volunteers_methods[0];
