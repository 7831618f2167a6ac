/*
 * followups.c - the follow-up lists (ListFollowUps, ResolveFollowUp) and the
 * re-visit list of citizens approved but not activated (ListStalled).
 *
 * These are reads of person-level data: every call writes a row to the audit
 * table (caller, method, request id; never who was read) before anything is
 * answered, and a call whose audit row cannot be written answers nothing.
 *
 * RecordEvents counts an open follow-up under the pseudo-stage
 * ACT_TOTAL_FOLLOW_UPS at every level of the tree the citizen is counted at
 * (neighborhood when recorded, ward, district, province). Closing one -
 * resolving it here, forgetting the citizen or purging the campaign - takes it
 * off the same chain in the same transaction, through act_follow_ups_count.
 *
 * A subtree is "the unit and every unit under it" from the local units table;
 * a follow-up or a citizen is in it when its ward or its neighborhood is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "phuxanh/pbutil.h"
#include "phuxanh/text.h"

#define S_FU_PAGE_DEFAULT 100
#define S_FU_PAGE_MAX 1000
#define S_STALLED_PAGE_DEFAULT 500
#define S_STALLED_PAGE_MAX 5000
#define S_STALLED_DAYS_MAX 365
/* Pages of the re-visit list are offsets (see ListStalled); past this, ask a smaller unit. */
#define S_STALLED_OFFSET_MAX 1000000
/* Levels of the tree a count goes to (neighborhood, ward, district, province, spare). */
#define S_CHAIN_MAX 6
/* Units a ResolveFollowUp may be limited to (within_units): a recorder's scope is a few wards
 * or a district; more would be a list to search, not a scope. */
#define S_WITHIN_MAX 64

#define S_SUBTREE                                                                                  \
    "WITH RECURSIVE sub(code, depth) AS ("                                                         \
    "  SELECT code, 0 FROM units WHERE code = $2"                                                  \
    "  UNION ALL SELECT u.code, s.depth + 1 FROM units u JOIN sub s ON u.parent_code = s.code"     \
    "  WHERE s.depth < 8) "

/* ---------------------------------------------------------------- statements */

/* $1 campaign, $2 unit, $3 kind (0 both), $4 include resolved, $5 has token, $6/$7 the
 * token's (created_at µs, id), $8 limit. */
static const px_db_stmt_t s_fu_list = {
    "act_fu_list",
    S_SUBTREE "SELECT " ACT_FU_COLS " FROM follow_ups f WHERE f.campaign_id = $1 "
              "AND (f.unit_code IN (SELECT code FROM sub) "
              "OR f.neighborhood_code IN (SELECT code FROM sub)) "
              "AND ($3::int = 0 OR f.kind = $3::int) AND ($4::bool OR f.resolved_at IS NULL) "
              "AND (NOT $5::bool OR (f.created_at, f.id) > "
              "(timestamptz 'epoch' + $6::bigint * interval '1 microsecond', $7::bigint)) "
              "ORDER BY f.created_at, f.id LIMIT $8::int",
};

static const px_db_stmt_t s_fu_lock = {
    "act_fu_lock",
    "SELECT " ACT_FU_COLS " FROM follow_ups f WHERE f.id = $1 FOR UPDATE",
};

static const px_db_stmt_t s_fu_resolve = {
    "act_fu_resolve",
    "UPDATE follow_ups f SET resolved_at = now(), resolution = $2, resolved_by = $3, "
    "resolved_on_behalf_of = $4 "
    "WHERE f.id = $1 AND f.resolved_at IS NULL RETURNING " ACT_FU_COLS,
};

/* Deltas per unit into the caller's shard, in unit order (the order RecordEvents writes
 * totals in, so that two writers sharing a shard never wait on each other in a cycle). */
static const px_db_stmt_t s_fu_count = {
    "act_fu_count",
    "INSERT INTO totals_shards (campaign_id, unit_code, stage, shard, count) "
    "SELECT $1, u, 101, $4::smallint, sum(d)::int FROM unnest($2::text[], $3::int[]) AS x(u, d) "
    "GROUP BY u ORDER BY u "
    "ON CONFLICT (campaign_id, unit_code, stage, shard) DO UPDATE SET count = "
    "totals_shards.count + EXCLUDED.count",
};

/* $1 campaign, $2 unit, $3 older than days, $4 offset, $5 limit. */
static const px_db_stmt_t s_stalled = {
    "act_fu_stalled",
    S_SUBTREE
    ", c AS (SELECT c.campaign_id, c.citizen_key, c.last3, c.unit_code, c.neighborhood_code, "
    "  c.approved_at, c.volunteer_code FROM citizens c WHERE c.campaign_id = $1 "
    "  AND c.approved_at IS NOT NULL AND c.activated_at IS NULL "
    "  AND c.approved_at < now() - $3::int * interval '1 day' "
    "  AND (c.unit_code IN (SELECT code FROM sub) "
    "  OR c.neighborhood_code IN (SELECT code FROM sub))) "
    "SELECT c.unit_code, c.neighborhood_code, coalesce(nb.name, ''), c.last3, "
    "(extract(epoch FROM c.approved_at) * 1000000)::bigint, "
    "CASE WHEN c.volunteer_code <> '' THEN c.volunteer_code ELSE coalesce((SELECT "
    "e.volunteer_code FROM events e WHERE e.campaign_id = c.campaign_id "
    "AND e.citizen_key = c.citizen_key AND e.volunteer_code <> '' ORDER BY e.id DESC LIMIT 1), "
    "'') END, "
    "coalesce((SELECT e.note FROM events e WHERE e.campaign_id = c.campaign_id "
    "AND e.citizen_key = c.citizen_key AND e.note <> '' ORDER BY e.id DESC LIMIT 1), ''), "
    "count(*) OVER () "
    "FROM c LEFT JOIN units nb ON c.neighborhood_code <> '' AND nb.code = c.neighborhood_code "
    "ORDER BY c.unit_code COLLATE \"C\", c.neighborhood_code COLLATE \"C\", c.approved_at, "
    "c.citizen_key OFFSET $4::int LIMIT $5::int",
};

/* ---------------------------------------------------------------- shared */

Phuxanh__Activation__V1__FollowUp *act_follow_up_row(px_rpc_ctx_t *ctx, const PGresult *res,
                                                     int row)
{
    Phuxanh__Activation__V1__FollowUp *f = px_rpc_ctx_alloc(ctx, sizeof *f);
    if (!f) {
        return NULL;
    }
    phuxanh__activation__v1__follow_up__init(f);
    f->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    f->kind = atoi(PQgetvalue(res, row, 1));
    char **s[] = {&f->campaign_id,    &f->unit_code, &f->neighborhood_code,
                  &f->volunteer_code, &f->note,      &f->citizen_id_last3};
    for (int k = 0; k < 6; k++) {
        if (!(*s[k] = px_rpc_ctx_strdup(ctx, PQgetvalue(res, row, 2 + k)))) {
            return NULL;
        }
    }
    f->created_at = px_ts_new(ctx, strtoll(PQgetvalue(res, row, 8), NULL, 10));
    if (!PQgetisnull(res, row, 9)) {
        f->resolved_at = px_ts_new(ctx, strtoll(PQgetvalue(res, row, 9), NULL, 10));
    }
    f->resolution_note = px_rpc_ctx_strdup(ctx, PQgetvalue(res, row, 10));
    f->resolved_by = px_rpc_ctx_strdup(ctx, PQgetvalue(res, row, 11));
    if (!f->created_at || !f->resolution_note || !f->resolved_by ||
        (!PQgetisnull(res, row, 9) && !f->resolved_at)) {
        return NULL;
    }
    return f;
}

px_code_t act_follow_ups_count(act_units_t *units, px_db_t *db, int shard, const char *campaign,
                               const char *const *wards, const char *const *neighborhoods,
                               const int *deltas, size_t n, px_status_t *st)
{
    char sh[16];
    snprintf(sh, sizeof sh, "%d", shard);
    act_arr_t us, ds;
    act_arr_init(&us);
    act_arr_init(&ds);
    for (size_t i = 0; i < n; i++) {
        char chain[S_CHAIN_MAX][ACT_CODE_MAX + 1];
        size_t k = act_units_chain(units, wards[i], neighborhoods[i], chain, S_CHAIN_MAX);
        for (size_t j = 0; j < k; j++) {
            act_arr_add(&us, chain[j]);
            act_arr_addf(&ds, "%d", deltas[i]);
        }
    }
    const char *p[4] = {campaign, act_arr_end(&us), act_arr_end(&ds), sh};
    px_code_t code = !p[1] || !p[2] ? px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory")
                                    : px_db_execp(db, &s_fu_count, 4, p, NULL, st);
    act_arr_free(&us);
    act_arr_free(&ds);
    return code;
}

static int s_page(int asked, int def, int max)
{
    return asked == 0 ? def : asked > max ? max : asked;
}

/* ---------------------------------------------------------------- ListFollowUps */

static px_code_t s_list_follow_ups(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                   ProtobufCMessage *reply)
{
    px_code_t denied = act_person_reader_check(ctx);
    if (denied != PX_OK) {
        return denied; /* before anything else: a caller not allowed learns nothing */
    }
    const Phuxanh__Activation__V1__ListFollowUpsRequest *req = (const void *)request;
    Phuxanh__Activation__V1__ListFollowUpsResponse *resp = (void *)reply;
    px_status_t st;
    PGresult *res = NULL;
    px_code_t code = PX_OK;
    act_unit_t unit = {0};
    /* validate */
    if (req->kind < 0 || req->kind > 2) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "kind: %d is not a follow-up kind",
                           (int)req->kind);
    }
    if (req->page_size < 0) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "page_size: must not be negative");
    }
    long long t_us = 0, t_id = 0;
    bool has_token = req->page_token && *req->page_token;
    char tail = 0;
    if (has_token &&
        (strlen(req->page_token) > 64 ||
         sscanf(req->page_token, "f1.%lld.%lld%c", &t_us, &t_id, &tail) != 2 || t_id <= 0)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "page_token: not a token of this method");
    }
    if ((code = act_check_scope(ctx, req->campaign_id, req->unit_code, &unit)) != PX_OK) {
        return code;
    }
    /* load */
    int page = s_page(req->page_size, S_FU_PAGE_DEFAULT, S_FU_PAGE_MAX);
    char kind[4], us[24], id[24], lim[16];
    snprintf(kind, sizeof kind, "%d", (int)req->kind);
    snprintf(us, sizeof us, "%lld", t_us);
    snprintf(id, sizeof id, "%lld", t_id);
    snprintf(lim, sizeof lim, "%d", page + 1);
    const char *p[8] = {req->campaign_id,
                        req->unit_code,
                        kind,
                        req->include_resolved ? "t" : "f",
                        has_token ? "t" : "f",
                        us,
                        id,
                        lim};
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_fu_list, 8, p, &res, &st) != PX_OK) {
        code = act_db_fail(ctx, &st);
        goto done;
    }
    int n = PQntuples(res), shown = n > page ? page : n;
    char detail[200];
    snprintf(detail, sizeof detail, "{\"campaign_id\":\"%s\",\"unit_code\":\"%s\",\"items\":%d}",
             req->campaign_id, req->unit_code, shown);
    if ((code = act_audit(ctx, detail)) != PX_OK) {
        goto done;
    }
    /* reply */
    resp->items = px_rpc_ctx_alloc(ctx, (size_t)(shown + 1) * sizeof *resp->items);
    if (!resp->items) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    for (int i = 0; i < shown; i++) {
        if (!(resp->items[resp->n_items++] = act_follow_up_row(ctx, res, i))) {
            code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
    }
    if (n > page) {
        resp->next_page_token = px_rpc_ctx_printf(ctx, "f1.%s.%s", PQgetvalue(res, shown - 1, 8),
                                                  PQgetvalue(res, shown - 1, 0));
    }
done:
    PQclear(res);
    return code;
}

/* ---------------------------------------------------------------- ResolveFollowUp */

/* Is the follow-up of (ward, neighborhood) within one of units: is one of them the
 * neighborhood, the ward or an ancestor of the ward? The same rule as a subtree's list
 * (ListFollowUps), read from the cached tree. */
static bool s_within(act_units_t *tree, const char *ward, const char *nbh, char *const *units,
                     size_t n)
{
    char chain[S_CHAIN_MAX][ACT_CODE_MAX + 1];
    size_t k = act_units_chain(tree, ward, nbh, chain, S_CHAIN_MAX);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < k; j++) {
            if (strcmp(units[i], chain[j]) == 0) {
                return true;
            }
        }
    }
    return false;
}

static px_code_t s_resolve_follow_up(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                     ProtobufCMessage *reply)
{
    px_code_t denied = act_person_reader_check(ctx);
    if (denied != PX_OK) {
        return denied; /* before anything else: a caller not allowed learns nothing */
    }
    const Phuxanh__Activation__V1__ResolveFollowUpRequest *req = (const void *)request;
    Phuxanh__Activation__V1__ResolveFollowUpResponse *resp = (void *)reply;
    act_t *act = px_rpc_ctx_state(ctx);
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    PGresult *res = NULL, *upd = NULL;
    px_code_t code = PX_OK;
    /* validate */
    if (req->id <= 0) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "id: must be a follow-up id (positive)");
    }
    if (px_text_check("resolution_note", req->resolution_note, ACT_NOTE_MAX, false, &st) != PX_OK) {
        return px_rpc_fail_status(ctx, &st);
    }
    if (act_echo(req->resolution_note) != req->resolution_note) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "resolution_note: must not contain an ID number");
    }
    if (req->n_within_units > S_WITHIN_MAX) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "within_units: at most %d units (got %zu)",
                           S_WITHIN_MAX, req->n_within_units);
    }
    for (size_t i = 0; i < req->n_within_units; i++) {
        const char *u = req->within_units[i];
        if (!act_code_ok(u, ACT_CODE_MAX) || act_echo(u) != u) {
            return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                               "within_units: entry %zu must be 1 to 32 ASCII letters, digits, "
                               "'-', '_' or '.'",
                               i);
        }
    }
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)req->id);
    const char *p1[1] = {id};
    /* load */
    if (px_db_begin(db, &st) != PX_OK) {
        return act_db_fail(ctx, &st);
    }
    if (px_db_execp(db, &s_fu_lock, 1, p1, &res, &st) != PX_OK) {
        goto fail;
    }
    if (PQntuples(res) == 0) {
        px_db_rollback(db);
        code = px_rpc_fail(ctx, PX_NOT_FOUND, "id: no follow-up %s", id);
        goto done;
    }
    /* Before anything is changed or answered: a resolved one's answer is person-level too. */
    if (req->n_within_units > 0 &&
        !s_within(act->units, PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4), req->within_units,
                  req->n_within_units)) {
        px_db_rollback(db);
        code = px_rpc_fail(ctx, PX_PERMISSION_DENIED, "follow-up %s is not within your units", id);
        goto done;
    }
    /* decide, write: an open one is closed and leaves the counters; a resolved one is
     * answered as it is (the first resolution stays). */
    const PGresult *answer = res;
    if (PQgetisnull(res, 0, 9)) {
        const char *p4[4] = {id, req->resolution_note, px_rpc_ctx_caller(ctx),
                             px_rpc_ctx_on_behalf_of(ctx)};
        if (px_db_execp(db, &s_fu_resolve, 4, p4, &upd, &st) != PX_OK) {
            goto fail;
        }
        const char *ward = PQgetvalue(res, 0, 3), *nbh = PQgetvalue(res, 0, 4);
        const int minus = -1;
        if (act_follow_ups_count(act->units, db, act_shard(ctx), PQgetvalue(res, 0, 2), &ward, &nbh,
                                 &minus, 1, &st) != PX_OK) {
            goto fail;
        }
        answer = upd;
    }
    char detail[64];
    snprintf(detail, sizeof detail, "{\"id\":%s,\"changed\":%s}", id,
             answer == upd ? "true" : "false");
    if (act_audit(ctx, detail) != PX_OK) {
        px_db_rollback(db);
        code = PX_UNAVAILABLE;
        goto done;
    }
    if (px_db_commit(db, &st) != PX_OK) {
        code = act_db_fail(ctx, &st);
        goto done;
    }
    /* reply */
    if (!(resp->follow_up = act_follow_up_row(ctx, answer, 0))) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    goto done;
fail:
    px_db_rollback(db);
    code = act_db_fail(ctx, &st);
done:
    PQclear(res);
    PQclear(upd);
    return code;
}

/* ---------------------------------------------------------------- ListStalled */

/* Pages are offsets into the list ordered by unit, neighborhood, approval: a keyset token
 * would have to carry the citizen key to the client, and this list is a weekend's snapshot
 * (a citizen activated between two pages moves the next one by one row at worst). */
static px_code_t s_list_stalled(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    px_code_t denied = act_person_reader_check(ctx);
    if (denied != PX_OK) {
        return denied; /* before anything else: a caller not allowed learns nothing */
    }
    const Phuxanh__Activation__V1__ListStalledRequest *req = (const void *)request;
    Phuxanh__Activation__V1__ListStalledResponse *resp = (void *)reply;
    px_status_t st;
    PGresult *res = NULL;
    px_code_t code = PX_OK;
    act_unit_t unit = {0};
    /* validate */
    if (req->older_than_days < 0 || req->older_than_days > S_STALLED_DAYS_MAX) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "older_than_days: must be 0 to %d",
                           S_STALLED_DAYS_MAX);
    }
    if (req->page_size < 0) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "page_size: must not be negative");
    }
    long long offset = 0;
    char tail = 0;
    if (req->page_token && *req->page_token &&
        (strlen(req->page_token) > 32 ||
         sscanf(req->page_token, "s1.%lld%c", &offset, &tail) != 1 || offset <= 0 ||
         offset > S_STALLED_OFFSET_MAX)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "page_token: not a token of this method");
    }
    if ((code = act_check_scope(ctx, req->campaign_id, req->unit_code, &unit)) != PX_OK) {
        return code;
    }
    /* load */
    int page = s_page(req->page_size, S_STALLED_PAGE_DEFAULT, S_STALLED_PAGE_MAX);
    char days[8], off[24], lim[16];
    snprintf(days, sizeof days, "%d", req->older_than_days);
    snprintf(off, sizeof off, "%lld", offset);
    snprintf(lim, sizeof lim, "%d", page + 1);
    const char *p[5] = {req->campaign_id, req->unit_code, days, off, lim};
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_stalled, 5, p, &res, &st) != PX_OK) {
        code = act_db_fail(ctx, &st);
        goto done;
    }
    int n = PQntuples(res), shown = n > page ? page : n;
    resp->total = n > 0 ? atoi(PQgetvalue(res, 0, 7)) : 0;
    char detail[200];
    snprintf(detail, sizeof detail, "{\"campaign_id\":\"%s\",\"unit_code\":\"%s\",\"citizens\":%d}",
             req->campaign_id, req->unit_code, shown);
    if ((code = act_audit(ctx, detail)) != PX_OK) {
        goto done;
    }
    /* reply: consecutive rows of one (ward, neighborhood) make one group */
    resp->neighborhoods = px_rpc_ctx_alloc(ctx, (size_t)(shown + 1) * sizeof *resp->neighborhoods);
    Phuxanh__Activation__V1__StalledCitizen *cs =
        px_rpc_ctx_alloc(ctx, (size_t)(shown + 1) * sizeof *cs);
    Phuxanh__Activation__V1__StalledCitizen **cp =
        px_rpc_ctx_alloc(ctx, (size_t)(shown + 1) * sizeof *cp);
    if (!resp->neighborhoods || !cs || !cp) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    Phuxanh__Activation__V1__StalledNeighborhood *g = NULL;
    for (int i = 0; i < shown; i++) {
        const char *ward = PQgetvalue(res, i, 0), *nbh = PQgetvalue(res, i, 1);
        if (!g || strcmp(g->unit_code, ward) != 0 || strcmp(g->neighborhood_code, nbh) != 0) {
            g = px_rpc_ctx_alloc(ctx, sizeof *g);
            if (!g) {
                code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
                goto done;
            }
            phuxanh__activation__v1__stalled_neighborhood__init(g);
            g->unit_code = px_rpc_ctx_strdup(ctx, ward);
            g->neighborhood_code = px_rpc_ctx_strdup(ctx, nbh);
            g->neighborhood_name = px_rpc_ctx_strdup(ctx, PQgetvalue(res, i, 2));
            g->citizens = &cp[i]; /* the group's citizens are consecutive in cp */
            resp->neighborhoods[resp->n_neighborhoods++] = g;
        }
        Phuxanh__Activation__V1__StalledCitizen *c = &cs[i];
        phuxanh__activation__v1__stalled_citizen__init(c);
        c->citizen_id_last3 = px_rpc_ctx_strdup(ctx, PQgetvalue(res, i, 3));
        c->approved_at = px_ts_new(ctx, strtoll(PQgetvalue(res, i, 4), NULL, 10));
        c->volunteer_code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, i, 5));
        c->note = px_rpc_ctx_strdup(ctx, PQgetvalue(res, i, 6));
        if (!g->unit_code || !g->neighborhood_code || !g->neighborhood_name ||
            !c->citizen_id_last3 || !c->approved_at || !c->volunteer_code || !c->note) {
            code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
        cp[i] = c;
        g->n_citizens++;
    }
    if (n > page) {
        resp->next_page_token = px_rpc_ctx_printf(ctx, "s1.%lld", offset + page);
    }
done:
    PQclear(res);
    return code;
}

const px_rpc_method_t act_followups_methods[] = {
    {"ListFollowUps", s_list_follow_ups},
    {"ResolveFollowUp", s_resolve_follow_up},
    {"ListStalled", s_list_stalled},
};
const size_t act_followups_methods_count =
    sizeof act_followups_methods / sizeof act_followups_methods[0];
