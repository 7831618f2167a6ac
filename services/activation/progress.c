/*
 * progress.c - SetTargets and GetProgress.
 *
 * Progress reads the counter rows RecordEvents keeps at every level of the
 * tree (totals) and the targets; it never scans events. A unit's target is its
 * own when set, otherwise the sum of its children's (recursively), so a
 * district with no target of its own shows the sum of its wards'.
 *
 * A target that changes changes the effective target of its unit and of
 * every ancestor, so after the commit SetTargets puts each of those units on
 * the live feed (publisher.c) with stage 0, once each however many rows of the
 * batch share them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "phuxanh/clock.h"

/* Levels of the tree a target's change reaches (the unit up to its province, spare). */
#define S_CHAIN_MAX 6

/* ---------------------------------------------------------------- statements */

static const px_db_stmt_t s_targets_get = {
    "act_targets_get",
    "SELECT t.campaign_id, t.unit_code, t.target FROM targets t "
    "JOIN unnest($1::text[], $2::text[]) AS k(c, u) ON t.campaign_id = k.c AND t.unit_code = k.u",
};

static const px_db_stmt_t s_targets_put = {
    "act_targets_put",
    "WITH x AS (SELECT c, u, t FROM unnest($1::text[], $2::text[], $3::int[]) AS x(c, u, t)), "
    "del AS (DELETE FROM targets USING x WHERE x.t = 0 AND targets.campaign_id = x.c "
    "AND targets.unit_code = x.u) "
    "INSERT INTO targets (campaign_id, unit_code, target) "
    "SELECT c, u, t FROM x WHERE t > 0 ORDER BY c, u "
    "ON CONFLICT (campaign_id, unit_code) DO UPDATE SET target = EXCLUDED.target, "
    "updated_at = now() WHERE targets.target <> EXCLUDED.target",
};

/* The asked unit's subtree from the local tree, each with its own target (NULL when none),
 * deepest first: enough to compute every effective target bottom-up in one pass. */
static const px_db_stmt_t s_subtree = {
    "act_progress_subtree",
    "WITH RECURSIVE sub(code, parent_code, name, depth) AS ("
    "  SELECT code, coalesce(parent_code, ''), name, 0 FROM units WHERE code = $2"
    "  UNION ALL"
    "  SELECT u.code, u.parent_code, u.name, s.depth + 1 FROM units u JOIN sub s "
    "  ON u.parent_code = s.code WHERE s.depth < 8) "
    "SELECT s.code, s.parent_code, s.name, s.depth, t.target FROM sub s "
    "LEFT JOIN targets t ON t.campaign_id = $1 AND t.unit_code = s.code "
    "ORDER BY s.depth DESC, s.code",
};

static const px_db_stmt_t s_totals = {
    "act_progress_totals",
    "SELECT unit_code, stage, sum(count) FROM totals_shards WHERE campaign_id = $1 AND "
    "unit_code = ANY (ARRAY(SELECT code FROM units WHERE code = $2 OR parent_code = $2)) "
    "GROUP BY unit_code, stage",
};

/* ---------------------------------------------------------------- SetTargets */

typedef struct {
    int index;
    const char *field;
    const char *message;
    int code;
} s_rowerr_t;

static int s_pair_cmp(const void *a, const void *b, void *arg)
{
    Phuxanh__Activation__V1__Target *const *t = arg;
    int x = *(const int *)a, y = *(const int *)b;
    int c = strcmp(t[x]->campaign_id, t[y]->campaign_id);
    if (c == 0) {
        c = strcmp(t[x]->unit_code, t[y]->unit_code);
    }
    return c ? c : x - y;
}

typedef struct {
    const char *campaign;
    char unit[ACT_CODE_MAX + 1];
} s_touched_t;

static int s_touched_cmp(const void *a, const void *b)
{
    const s_touched_t *x = a, *y = b;
    int c = strcmp(x->campaign, y->campaign);
    return c ? c : strcmp(x->unit, y->unit);
}

/* After the commit: every unit whose effective target may have changed - each unit of a
 * changed row and its ancestors - once, to the live feed. */
static void s_publish_targets(act_t *act, Phuxanh__Activation__V1__Target *const *targets,
                              const bool *changed, size_t n)
{
    size_t nchanged = 0;
    for (size_t i = 0; i < n; i++) {
        nchanged += changed[i];
    }
    if (!act->pub || nchanged == 0) {
        return;
    }
    s_touched_t *t = malloc(nchanged * S_CHAIN_MAX * sizeof *t);
    act_change_t *ch = malloc(nchanged * S_CHAIN_MAX * sizeof *ch);
    if (!t || !ch) {
        act_pub_lost(act->pub, nchanged); /* at least one number each: the gap shows */
        goto done;
    }
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        if (!changed[i]) {
            continue;
        }
        char chain[S_CHAIN_MAX][ACT_CODE_MAX + 1];
        size_t k = act_units_chain(act->units, targets[i]->unit_code, NULL, chain, S_CHAIN_MAX);
        for (size_t j = 0; j < k; j++) {
            t[nt].campaign = targets[i]->campaign_id;
            memcpy(t[nt++].unit, chain[j], sizeof chain[j]);
        }
    }
    qsort(t, nt, sizeof *t, s_touched_cmp);
    size_t nch = 0;
    for (size_t i = 0; i < nt; i++) {
        if (i == 0 || s_touched_cmp(&t[i - 1], &t[i]) != 0) {
            ch[nch++] = (act_change_t){t[i].campaign, t[i].unit, 0};
        }
    }
    act_pub_post(act->pub, ch, nch, px_wall_us());
done:
    free(t);
    free(ch);
}

static px_code_t s_set_targets(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                               ProtobufCMessage *reply)
{
    const Phuxanh__Activation__V1__SetTargetsRequest *req =
        (const Phuxanh__Activation__V1__SetTargetsRequest *)request;
    Phuxanh__Activation__V1__SetTargetsResponse *resp =
        (Phuxanh__Activation__V1__SetTargetsResponse *)reply;
    act_t *act = px_rpc_ctx_state(ctx);
    px_db_t *db = px_rpc_ctx_db(ctx);
    size_t n = req->n_targets;
    px_code_t code = PX_OK;
    px_status_t st;
    int *order = NULL;
    const char **codes = NULL;
    act_arr_t ac, au, at;
    act_arr_init(&ac), act_arr_init(&au), act_arr_init(&at);
    PGresult *res = NULL;
    if (n > ACT_MAX_TARGETS) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "targets: at most %d per call (got %zu)",
                           ACT_MAX_TARGETS, n);
    }
    Phuxanh__Activation__V1__RowError *errs = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *errs);
    resp->errors = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *resp->errors);
    order = malloc((n + 1) * sizeof *order);
    codes = malloc((n + 1) * sizeof *codes);
    if (!errs || !resp->errors || !order || !codes) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    /* Validate each row alone, then the unit codes against the tree (one roster call). */
    bool *bad = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *bad);
    bool *changed = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *changed);
    if (!bad || !changed) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
#define S_ROW_ERR(i, f, c, ...)                                                                    \
    do {                                                                                           \
        Phuxanh__Activation__V1__RowError *e_ = &errs[resp->n_errors];                             \
        phuxanh__activation__v1__row_error__init(e_);                                              \
        e_->index = (int32_t)(i);                                                                  \
        e_->field = (char *)(f);                                                                   \
        e_->code = (c);                                                                            \
        e_->message = px_rpc_ctx_printf(ctx, __VA_ARGS__);                                         \
        resp->errors[resp->n_errors++] = e_;                                                       \
        bad[i] = true;                                                                             \
    } while (0)
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        const Phuxanh__Activation__V1__Target *t = req->targets[i];
        if (!act_code_ok(t->campaign_id, ACT_CAMPAIGN_MAX)) {
            S_ROW_ERR(i, "campaign_id", PX_INVALID_ARGUMENT,
                      "must be 1 to 64 ASCII letters, digits, '-', '_' or '.'");
        } else if (!act_code_ok(t->unit_code, ACT_CODE_MAX) ||
                   act_echo(t->unit_code) != t->unit_code) {
            S_ROW_ERR(i, "unit_code", PX_INVALID_ARGUMENT,
                      "must be 1 to 32 ASCII letters, digits or '-'");
        } else if (t->target < 0 || t->target > ACT_MAX_TARGET) {
            S_ROW_ERR(i, "target", PX_INVALID_ARGUMENT, "must be 0 to %d", ACT_MAX_TARGET);
        } else {
            codes[nc++] = t->unit_code;
        }
    }
    if (act_units_ensure(act->units, ctx, codes, nc, &st) != PX_OK) {
        for (size_t i = 0; i < n; i++) {
            if (!bad[i] && !act_units_get(act->units, req->targets[i]->unit_code, NULL)) {
                code = px_rpc_fail(ctx, PX_UNAVAILABLE,
                                   "unit_code: the unit tree could not be read from the roster");
                goto done;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!bad[i] && !act_units_get(act->units, req->targets[i]->unit_code, NULL)) {
            S_ROW_ERR(i, "unit_code", PX_NOT_FOUND, "no unit \"%s\"",
                      act_echo(req->targets[i]->unit_code));
        }
    }
    /* The campaigns against the roster's (a cache lookup but for the first sight of one). */
    for (size_t i = 0; i < n; i++) {
        const char *id = req->targets[i]->campaign_id;
        if (bad[i]) {
            continue;
        }
        if (act_campaigns_ensure(act->campaigns, ctx, id, &st) != PX_OK) {
            code = px_rpc_fail(ctx, PX_UNAVAILABLE,
                               "campaign_id: the campaign could not be looked up in the roster");
            goto done;
        }
        if (!act_campaigns_known(act->campaigns, id)) {
            S_ROW_ERR(i, "campaign_id", PX_NOT_FOUND, "no campaign \"%s\"", act_echo(id));
        }
    }
    /* A (campaign_id, unit_code) at most once. */
    for (size_t i = 0; i < n; i++) {
        order[i] = (int)i;
    }
    qsort_r(order, n, sizeof *order, s_pair_cmp, req->targets);
    for (size_t k = 1; k < n; k++) {
        const Phuxanh__Activation__V1__Target *a = req->targets[order[k - 1]];
        const Phuxanh__Activation__V1__Target *b = req->targets[order[k]];
        if (!bad[order[k]] && strcmp(a->campaign_id, b->campaign_id) == 0 &&
            strcmp(a->unit_code, b->unit_code) == 0) {
            S_ROW_ERR(order[k], "unit_code", PX_INVALID_ARGUMENT,
                      "campaign_id and unit_code repeat row %d", order[k - 1]);
        }
    }
#undef S_ROW_ERR
    if (resp->n_errors > 0) {
        goto done; /* all or nothing: OK with the errors, nothing written */
    }
    for (size_t i = 0; i < n; i++) {
        act_arr_add(&ac, req->targets[i]->campaign_id);
        act_arr_add(&au, act_echo(req->targets[i]->unit_code));
        act_arr_addf(&at, "%d", req->targets[i]->target);
    }
    const char *p[3] = {act_arr_end(&ac), act_arr_end(&au), act_arr_end(&at)};
    if (!p[0] || !p[1] || !p[2]) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    if (px_db_begin(db, &st) != PX_OK) {
        code = act_db_fail(ctx, &st);
        goto done;
    }
    if (px_db_execp(db, &s_targets_get, 2, p, &res, &st) != PX_OK) {
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const Phuxanh__Activation__V1__Target *t = req->targets[i];
        int old = 0;
        for (int r = 0; r < PQntuples(res); r++) {
            if (strcmp(PQgetvalue(res, r, 0), t->campaign_id) == 0 &&
                strcmp(PQgetvalue(res, r, 1), t->unit_code) == 0) {
                old = atoi(PQgetvalue(res, r, 2));
                break;
            }
        }
        resp->inserted += old == 0 && t->target > 0;
        resp->updated += old > 0 && old != t->target;
        resp->unchanged += old == t->target;
        changed[i] = old != t->target;
    }
    if (req->validate_only) {
        px_db_rollback(db);
        goto done;
    }
    char detail[128];
    snprintf(detail, sizeof detail, "{\"rows\":%zu,\"inserted\":%d,\"updated\":%d}", n,
             resp->inserted, resp->updated);
    if (px_db_execp(db, &s_targets_put, 3, p, NULL, &st) != PX_OK) {
        goto fail;
    }
    if (act_audit(ctx, detail) != PX_OK) {
        px_db_rollback(db);
        code = PX_UNAVAILABLE;
        goto done;
    }
    if (px_db_commit(db, &st) != PX_OK) {
        code = act_db_fail(ctx, &st);
        goto done;
    }
    resp->committed = true;
    s_publish_targets(act, req->targets, changed, n);
    goto done;
fail:
    px_db_rollback(db);
    code = act_db_fail(ctx, &st);
done:
    if (code != PX_OK || resp->n_errors > 0) {
        resp->inserted = resp->updated = resp->unchanged = 0;
    }
    PQclear(res);
    act_arr_free(&ac), act_arr_free(&au), act_arr_free(&at);
    free(order);
    free(codes);
    return code;
}

/* ---------------------------------------------------------------- GetProgress */

typedef struct {
    const char *code, *parent, *name;
    int depth;
    long long own;  /* -1: none */
    long long kids; /* sum of the children's effective targets */
} s_node_t;

static int s_node_cmp(const void *a, const void *b)
{
    return strcmp(((const s_node_t *)a)->code, ((const s_node_t *)b)->code);
}

static Phuxanh__Activation__V1__ProgressRow *s_row(px_rpc_ctx_t *ctx, const s_node_t *nd,
                                                   PGresult *totals)
{
    Phuxanh__Activation__V1__ProgressRow *r = px_rpc_ctx_alloc(ctx, sizeof *r);
    if (!r) {
        return NULL;
    }
    phuxanh__activation__v1__progress_row__init(r);
    r->unit_code = (char *)nd->code;
    r->unit_name = (char *)nd->name;
    long long target = nd->own >= 0 ? nd->own : nd->kids;
    r->target = target > INT32_MAX ? INT32_MAX : (int32_t)target;
    for (int i = 0; i < PQntuples(totals); i++) {
        if (strcmp(PQgetvalue(totals, i, 0), nd->code) != 0) {
            continue;
        }
        int stage = atoi(PQgetvalue(totals, i, 1));
        int32_t count = (int32_t)atol(PQgetvalue(totals, i, 2));
        switch (stage) {
        case 1:
            r->collected = count;
            break;
        case 2:
            r->approved = count;
            break;
        case 3:
            r->activated = count;
            break;
        case 4:
            r->rejected = count;
            break;
        case ACT_TOTAL_FOLLOW_UPS:
            r->follow_ups_open = count;
            break;
        default:
            break;
        }
    }
    r->approved_not_activated = r->approved > r->activated ? r->approved - r->activated : 0;
    r->percent = r->target > 0 ? 100.0 * r->activated / r->target : 0.0;
    r->activation_rate = r->approved > 0 ? 100.0 * r->activated / r->approved : 0.0;
    r->green = r->target > 0 && r->activated >= r->target;
    return r;
}

static px_code_t s_get_progress(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    const Phuxanh__Activation__V1__GetProgressRequest *req =
        (const Phuxanh__Activation__V1__GetProgressRequest *)request;
    Phuxanh__Activation__V1__GetProgressResponse *resp =
        (Phuxanh__Activation__V1__GetProgressResponse *)reply;
    px_status_t st;
    px_code_t code = PX_OK;
    PGresult *sub = NULL, *tot = NULL;
    s_node_t *nodes = NULL;
    if ((code = act_check_scope(ctx, req->campaign_id, req->unit_code, NULL)) != PX_OK) {
        return code;
    }
    const char *p[2] = {req->campaign_id, req->unit_code};
    if (act_read_execp(ctx, &s_subtree, 2, p, &sub, &st) != PX_OK ||
        act_read_execp(ctx, &s_totals, 2, p, &tot, &st) != PX_OK) {
        code = act_db_fail(ctx, &st);
        goto done;
    }
    int n = PQntuples(sub);
    if (n == 0) {
        code =
            px_rpc_fail(ctx, PX_NOT_FOUND, "unit_code: no unit \"%s\"", act_echo(req->unit_code));
        goto done;
    }
    nodes = calloc((size_t)n, sizeof *nodes);
    s_node_t *sorted = px_rpc_ctx_alloc(ctx, (size_t)n * sizeof *sorted);
    if (!nodes || !sorted) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        nodes[i].code = px_rpc_ctx_strdup(ctx, PQgetvalue(sub, i, 0));
        nodes[i].parent = px_rpc_ctx_strdup(ctx, PQgetvalue(sub, i, 1));
        nodes[i].name = px_rpc_ctx_strdup(ctx, PQgetvalue(sub, i, 2));
        nodes[i].depth = atoi(PQgetvalue(sub, i, 3));
        nodes[i].own = PQgetisnull(sub, i, 4) ? -1 : atoll(PQgetvalue(sub, i, 4));
        if (!nodes[i].code || !nodes[i].parent || !nodes[i].name) {
            code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
    }
    /* Deepest first: each node's effective target is final before its parent's is read. An
     * index sorted by code finds the parent. */
    memcpy(sorted, nodes, (size_t)n * sizeof *sorted);
    for (int i = 0; i < n; i++) {
        sorted[i].depth = i; /* reuse as the position in nodes */
    }
    qsort(sorted, (size_t)n, sizeof *sorted, s_node_cmp);
    for (int i = 0; i < n; i++) {
        if (nodes[i].depth == 0) {
            continue;
        }
        s_node_t key = {.code = nodes[i].parent};
        s_node_t *parent = bsearch(&key, sorted, (size_t)n, sizeof *sorted, s_node_cmp);
        if (parent) {
            long long eff = nodes[i].own >= 0 ? nodes[i].own : nodes[i].kids;
            nodes[parent->depth].kids += eff;
        }
    }
    size_t nchildren = 0;
    for (int i = 0; i < n; i++) {
        nchildren += nodes[i].depth == 1;
    }
    resp->children = px_rpc_ctx_alloc(ctx, (nchildren + 1) * sizeof *resp->children);
    if (!resp->children) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    /* Rows of one depth come ordered by code, so the children are in code order. */
    for (int i = 0; i < n; i++) {
        Phuxanh__Activation__V1__ProgressRow *r = NULL;
        if (nodes[i].depth <= 1 && !(r = s_row(ctx, &nodes[i], tot))) {
            code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
        if (nodes[i].depth == 0) {
            resp->unit = r;
        } else if (nodes[i].depth == 1) {
            resp->children[resp->n_children++] = r;
        }
    }
done:
    free(nodes);
    PQclear(sub);
    PQclear(tot);
    return code;
}

const px_rpc_method_t act_progress_methods[] = {
    {"SetTargets", s_set_targets},
    {"GetProgress", s_get_progress},
};
const size_t act_progress_methods_count =
    sizeof act_progress_methods / sizeof act_progress_methods[0];
