/*
 * units.c - the administrative unit tree: UpsertUnits, ListUnits, GetUnits.
 *
 * The tree is strict (province > district > ward > neighborhood) and is
 * checked here, in C, before anything is written, so that a refusal can name
 * the row and the field: every parent must be in the batch or already stored,
 * and exactly one level up. A unit that has children keeps its level (changing
 * it would leave them under the wrong kind of parent).
 *
 * Unit writers take one transaction-scoped advisory lock first. The check and
 * the write then see the same tree, and tree versions are handed out in commit
 * order; the tree changes a few times a year, so serializing its writers costs
 * nothing. A batch is one INSERT ... SELECT FROM unnest(arrays) ... ON CONFLICT
 * statement whose WHERE skips rows identical to what is stored, so those
 * neither count as updated nor take a new version. All the rows one batch
 * changes share one version (a single nextval), and the tree's version is
 * max(version), read in the same snapshot as the units it is answered with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/text.h"
#include "roster.h"

/* ListUnits page sizes (roster.proto). */
#define UNITS_PAGE_DEFAULT 1000
#define UNITS_PAGE_MAX 10000

/* ------------------------------------------------------------------- SQL */

static const px_db_stmt_t s_lock = {
    "units_lock",
    "SELECT pg_advisory_xact_lock(hashtext('px_roster_unit_tree'))",
};

/* The stored level of each named unit, and whether it has children. */
static const px_db_stmt_t s_known = {
    "units_known",
    "SELECT u.code, u.level, EXISTS (SELECT 1 FROM units c WHERE c.parent_code = u.code)"
    " FROM units u WHERE u.code = ANY ($1::text[])",
};

static const px_db_stmt_t s_upsert = {
    "units_upsert",
    "WITH v AS (SELECT nextval('unit_tree_version') AS v),"
    " w AS (INSERT INTO units (code, name, level, parent_code, version)"
    "  SELECT x.code, normalize(x.name, NFC), x.level, nullif(x.parent, ''), v.v"
    "  FROM unnest($1::text[], $2::text[], $3::smallint[], $4::text[]) AS x(code, name, level,"
    "   parent), v"
    "  ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,"
    "   parent_code = EXCLUDED.parent_code, version = EXCLUDED.version, updated_at = now()"
    "  WHERE (units.name, units.level, units.parent_code)"
    "   IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.level, EXCLUDED.parent_code)"
    "  RETURNING (xmax = 0) AS ins)"
    " SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM w",
};

/* One row even when no unit matches: the tree version comes first. */
static const px_db_stmt_t s_list = {
    "units_list",
    "WITH tv AS (SELECT coalesce(max(version), 0) AS v FROM units)"
    " SELECT tv.v, u.code, u.name, u.level, u.parent, u.version FROM tv LEFT JOIN LATERAL ("
    "  SELECT code, name, level, coalesce(parent_code, '') AS parent, version FROM units"
    "  WHERE ($1 = '' OR parent_code = $1) AND ($2::int = 0 OR level = $2::int)"
    "   AND version > $3::bigint AND code COLLATE \"C\" > $4"
    "  ORDER BY code COLLATE \"C\" LIMIT $5::int) u ON true"
    " ORDER BY u.code COLLATE \"C\"",
};

static const px_db_stmt_t s_get = {
    "units_get",
    "WITH RECURSIVE t AS ("
    "  SELECT u.code, u.name, u.level, u.parent_code, u.version FROM units u"
    "  WHERE u.code = ANY ($1::text[])"
    "  UNION"
    "  SELECT p.code, p.name, p.level, p.parent_code, p.version FROM units p"
    "  JOIN t ON p.code = t.parent_code WHERE $2::bool),"
    " tv AS (SELECT coalesce(max(version), 0) AS v FROM units)"
    " SELECT tv.v, t.code, t.name, t.level, coalesce(t.parent_code, ''), t.version"
    " FROM tv LEFT JOIN t ON true ORDER BY t.code COLLATE \"C\"",
};

/* ------------------------------------------------------------------- helpers */

static const char *const s_level_names[] = {"unspecified", "province", "district", "ward",
                                            "neighborhood"};

static bool s_code_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    bool ok = n >= 1 && n <= ROSTER_CODE_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = s[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    }
    return ok;
}

/* What the database holds of a code the batch names. */
typedef struct {
    const char *code;
    int level;
    bool has_children;
} s_stored_t;

static int s_stored_cmp(const void *a, const void *b)
{
    return strcmp(((const s_stored_t *)a)->code, ((const s_stored_t *)b)->code);
}

static const s_stored_t *s_stored_find(const s_stored_t *v, size_t n, const char *code)
{
    s_stored_t k = {code, 0, false};
    return bsearch(&k, v, n, sizeof k, s_stored_cmp);
}

static px_code_t s_oom(px_rpc_ctx_t *ctx)
{
    return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
}

static Phuxanh__Roster__V1__Unit *s_unit_from_row(px_rpc_ctx_t *ctx, const PGresult *res, int r)
{
    Phuxanh__Roster__V1__Unit *u = px_rpc_ctx_alloc(ctx, sizeof *u);
    if (!u) {
        return NULL;
    }
    phuxanh__roster__v1__unit__init(u);
    u->code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 1));
    u->name = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 2));
    u->level = (Phuxanh__Roster__V1__UnitLevel)atoi(PQgetvalue(res, r, 3));
    u->parent_code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 4));
    u->version = strtoll(PQgetvalue(res, r, 5), NULL, 10);
    return u->code && u->name && u->parent_code ? u : NULL;
}

/* ------------------------------------------------------------------- UpsertUnits */

/* Checks each row alone, then the batch for duplicate codes. */
static void s_upsert_check_rows(roster_errors_t *e, Phuxanh__Roster__V1__Unit **units, size_t n,
                                roster_key_t *keys)
{
    for (size_t i = 0; i < n; i++) {
        const Phuxanh__Roster__V1__Unit *u = units[i];
        keys[i] = (roster_key_t){u->code, i};
        if (!s_code_ok(u->code)) {
            roster_row_fail(e, i, "code", PX_INVALID_ARGUMENT,
                            "must be 1 to %d ASCII letters, digits or '-'", ROSTER_CODE_MAX);
            keys[i].key = "";
            continue;
        }
        roster_row_text(e, i, "name", u->name, ROSTER_NAME_MAX, true);
        if (u->level < PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_PROVINCE ||
            u->level > PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_NEIGHBORHOOD) {
            roster_row_fail(e, i, "level", PX_INVALID_ARGUMENT,
                            "must be province, district, ward or neighborhood");
            continue;
        }
        bool province = u->level == PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_PROVINCE;
        bool has_parent = u->parent_code && *u->parent_code;
        if (province && has_parent) {
            roster_row_fail(e, i, "parent_code", PX_INVALID_ARGUMENT,
                            "must be empty for a province");
        } else if (!province && !has_parent) {
            roster_row_fail(e, i, "parent_code", PX_INVALID_ARGUMENT, "must be set for a %s",
                            s_level_names[u->level]);
        } else if (has_parent && !s_code_ok(u->parent_code)) {
            roster_row_fail(e, i, "parent_code", PX_INVALID_ARGUMENT,
                            "must be 1 to %d ASCII letters, digits or '-'", ROSTER_CODE_MAX);
        } else if (has_parent && strcmp(u->parent_code, u->code) == 0) {
            roster_row_fail(e, i, "parent_code", PX_INVALID_ARGUMENT,
                            "a unit cannot be its own parent");
        }
    }
    roster_keys_unique(e, keys, n);
}

/* Checks parents and level changes against the batch and the stored tree. */
static px_code_t s_upsert_check_tree(px_rpc_ctx_t *ctx, roster_errors_t *e,
                                     Phuxanh__Roster__V1__Unit **units, size_t n,
                                     const roster_key_t *keys)
{
    const char **names = px_rpc_ctx_alloc(ctx, (2 * n + 1) * sizeof *names);
    if (!names) {
        return s_oom(ctx);
    }
    size_t nn = 0;
    for (size_t i = 0; i < n; i++) {
        if (s_code_ok(units[i]->code)) {
            names[nn++] = units[i]->code;
        }
        if (units[i]->parent_code && s_code_ok(units[i]->parent_code)) {
            names[nn++] = units[i]->parent_code;
        }
    }
    const char *arr = roster_array(ctx, names, nn);
    if (!arr) {
        return s_oom(ctx);
    }
    PGresult *res = NULL;
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_known, 1, &arr, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    size_t ns = (size_t)PQntuples(res);
    s_stored_t *stored = px_rpc_ctx_alloc(ctx, (ns + 1) * sizeof *stored);
    if (!stored) {
        PQclear(res);
        return s_oom(ctx);
    }
    for (size_t r = 0; r < ns; r++) {
        stored[r].code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, (int)r, 0));
        stored[r].level = atoi(PQgetvalue(res, (int)r, 1));
        stored[r].has_children = PQgetvalue(res, (int)r, 2)[0] == 't';
        if (!stored[r].code) {
            PQclear(res);
            return s_oom(ctx);
        }
    }
    PQclear(res);
    qsort(stored, ns, sizeof *stored, s_stored_cmp);

    for (size_t i = 0; i < n; i++) {
        const Phuxanh__Roster__V1__Unit *u = units[i];
        if (e->by_row[i]) {
            continue;
        }
        const s_stored_t *self = s_stored_find(stored, ns, u->code);
        if (self && self->has_children && self->level != (int)u->level) {
            roster_row_fail(e, i, "level", PX_FAILED_PRECONDITION,
                            "unit %s has children: it cannot change from %s to %s", u->code,
                            s_level_names[self->level], s_level_names[u->level]);
            continue;
        }
        if (u->level == PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_PROVINCE) {
            continue;
        }
        /* The batch wins over the database: a parent in the batch is what will be stored. */
        int parent_level = 0;
        const roster_key_t *k = roster_key_find(keys, n, u->parent_code);
        if (k) {
            int l = (int)units[k->row]->level;
            parent_level = l >= 1 && l <= 4 ? l : -1; /* -1: that row is refused already */
        } else {
            const s_stored_t *p = s_stored_find(stored, ns, u->parent_code);
            if (!p) {
                roster_row_fail(e, i, "parent_code", PX_NOT_FOUND,
                                "no unit %s, in the database or in this batch", u->parent_code);
                continue;
            }
            parent_level = p->level;
        }
        if (parent_level > 0 && parent_level != (int)u->level - 1) {
            roster_row_fail(e, i, "parent_code", PX_INVALID_ARGUMENT,
                            "%s is a %s; a %s's parent must be a %s", u->parent_code,
                            s_level_names[parent_level], s_level_names[u->level],
                            s_level_names[u->level - 1]);
        }
    }
    return PX_OK;
}

px_code_t roster_units_apply(px_rpc_ctx_t *ctx, Phuxanh__Roster__V1__Unit **units, size_t n,
                             roster_errors_t *e, Phuxanh__Roster__V1__BatchUpsertResponse *rep)
{
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    roster_key_t *keys = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *keys);
    if (!keys) {
        return s_oom(ctx);
    }
    s_upsert_check_rows(e, units, n, keys);

    /* The tree is read under the writers' lock, so it cannot change before the write. */
    if (px_db_execp(db, &s_lock, 0, NULL, NULL, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    px_code_t code = s_upsert_check_tree(ctx, e, units, n, keys);
    if (code != PX_OK) {
        return code;
    }
    if (e->oom) {
        return s_oom(ctx);
    }
    if (e->count > 0 || n == 0) {
        return PX_OK;
    }

    const char **codes = px_rpc_ctx_alloc(ctx, 4 * n * sizeof *codes);
    if (!codes) {
        return s_oom(ctx);
    }
    const char **names = codes + n, **levels = codes + 2 * n, **parents = codes + 3 * n;
    static const char *const level_digits[] = {"0", "1", "2", "3", "4"};
    for (size_t i = 0; i < n; i++) {
        codes[i] = units[i]->code;
        names[i] = units[i]->name;
        levels[i] = level_digits[units[i]->level];
        parents[i] = units[i]->parent_code ? units[i]->parent_code : "";
    }
    const char *params[4] = {roster_array(ctx, codes, n), roster_array(ctx, names, n),
                             roster_array(ctx, levels, n), roster_array(ctx, parents, n)};
    if (!params[0] || !params[1] || !params[2] || !params[3]) {
        return s_oom(ctx);
    }
    return roster_upsert_write(ctx, &s_upsert, 4, params, n, rep);
}

static px_code_t s_upsert_units(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__UpsertUnitsRequest *req =
        (const Phuxanh__Roster__V1__UpsertUnitsRequest *)request;
    Phuxanh__Roster__V1__BatchUpsertResponse *rep =
        (Phuxanh__Roster__V1__BatchUpsertResponse *)reply;
    size_t n = req->n_units;
    bool done = false;
    roster_errors_t e;
    px_code_t code = roster_upsert_start(ctx, "units", n, req->validate_only, rep, &e, &done);
    if (code != PX_OK || done) {
        return code;
    }
    code = roster_units_apply(ctx, req->units, n, &e, rep);
    if (code != PX_OK) {
        return code;
    }
    return roster_upsert_end(ctx, &e, req->validate_only, rep);
}

/* ------------------------------------------------------------------- ListUnits */

static px_code_t s_list_units(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                              ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__ListUnitsRequest *req =
        (const Phuxanh__Roster__V1__ListUnitsRequest *)request;
    Phuxanh__Roster__V1__ListUnitsResponse *rep = (Phuxanh__Roster__V1__ListUnitsResponse *)reply;
    const char *parent = req->parent_code ? req->parent_code : "";
    if (*parent && !s_code_ok(parent)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "parent_code: must be 1 to %d ASCII letters, digits or '-'",
                           ROSTER_CODE_MAX);
    }
    int level_asked = (int)req->level;
    if (level_asked < 0 || level_asked > PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_NEIGHBORHOOD) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "level: %d is not a unit level", level_asked);
    }
    if (req->since_version < 0) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "since_version: must not be negative");
    }
    int size;
    const char *after;
    px_code_t code =
        roster_page_size(ctx, req->page_size, UNITS_PAGE_DEFAULT, UNITS_PAGE_MAX, &size);
    if (code != PX_OK || (code = roster_token_read(ctx, req->page_token, &after)) != PX_OK) {
        return code;
    }
    char level[12], since[24], limit[12];
    snprintf(level, sizeof level, "%d", level_asked);
    snprintf(since, sizeof since, "%lld", (long long)req->since_version);
    snprintf(limit, sizeof limit, "%d", size + 1);
    const char *params[5] = {parent, level, since, after, limit};
    PGresult *res = NULL;
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_list, 5, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    int rows = PQntuples(res);
    rep->tree_version = rows > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    if (rows == 1 && PQgetisnull(res, 0, 1)) {
        rows = 0;
    }
    int take = rows > size ? size : rows;
    rep->units = px_rpc_ctx_alloc(ctx, ((size_t)take + 1) * sizeof *rep->units);
    if (!rep->units) {
        PQclear(res);
        return s_oom(ctx);
    }
    for (int r = 0; r < take; r++) {
        if (!(rep->units[r] = s_unit_from_row(ctx, res, r))) {
            PQclear(res);
            return s_oom(ctx);
        }
        rep->n_units++;
    }
    PQclear(res);
    if (rows > size && take > 0) {
        rep->next_page_token = roster_token_make(ctx, rep->units[take - 1]->code);
        if (!rep->next_page_token) {
            return s_oom(ctx);
        }
    }
    return PX_OK;
}

/* ------------------------------------------------------------------- GetUnits */

static px_code_t s_get_units(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                             ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__GetUnitsRequest *req =
        (const Phuxanh__Roster__V1__GetUnitsRequest *)request;
    Phuxanh__Roster__V1__GetUnitsResponse *rep = (Phuxanh__Roster__V1__GetUnitsResponse *)reply;
    size_t n = req->n_codes;
    if (n > ROSTER_MAX_CODES) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "codes: %zu codes, at most %d in one call", n,
                           ROSTER_MAX_CODES);
    }
    /* A code that cannot name a unit is simply not found; only what cannot reach the
     * database as text is refused. */
    for (size_t i = 0; i < n; i++) {
        if (!px_utf8_valid(req->codes[i], strlen(req->codes[i]))) {
            return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "codes[%zu]: is not valid UTF-8", i);
        }
    }
    const char *params[2] = {roster_array(ctx, (const char *const *)req->codes, n),
                             req->include_ancestors ? "true" : "false"};
    if (!params[0]) {
        return s_oom(ctx);
    }
    PGresult *res = NULL;
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_get, 2, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    int rows = PQntuples(res);
    rep->tree_version = rows > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    if (rows == 1 && PQgetisnull(res, 0, 1)) {
        rows = 0;
    }
    rep->units = px_rpc_ctx_alloc(ctx, ((size_t)rows + 1) * sizeof *rep->units);
    rep->not_found_codes = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *rep->not_found_codes);
    if (!rep->units || !rep->not_found_codes) {
        PQclear(res);
        return s_oom(ctx);
    }
    for (int r = 0; r < rows; r++) {
        if (!(rep->units[r] = s_unit_from_row(ctx, res, r))) {
            PQclear(res);
            return s_oom(ctx);
        }
        rep->n_units++;
    }
    PQclear(res);
    /* The answer is in byte order of code (COLLATE "C"), the order strcmp searches. */
    for (size_t i = 0; i < n; i++) {
        const char *c = req->codes[i];
        bool found = false, seen = false;
        size_t lo = 0, hi = rep->n_units;
        while (lo < hi && !found) {
            size_t mid = lo + (hi - lo) / 2;
            int d = strcmp(rep->units[mid]->code, c);
            found = d == 0;
            if (d < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        for (size_t k = 0; !found && k < rep->n_not_found_codes && !seen; k++) {
            seen = strcmp(rep->not_found_codes[k], c) == 0;
        }
        if (!found && !seen) {
            if (!(rep->not_found_codes[rep->n_not_found_codes] = px_rpc_ctx_strdup(ctx, c))) {
                return s_oom(ctx);
            }
            rep->n_not_found_codes++;
        }
    }
    return PX_OK;
}

const px_rpc_method_t roster_units_methods[] = {
    {"UpsertUnits", s_upsert_units},
    {"ListUnits", s_list_units},
    {"GetUnits", s_get_units},
};
const size_t roster_units_methods_count =
    sizeof roster_units_methods / sizeof roster_units_methods[0];
