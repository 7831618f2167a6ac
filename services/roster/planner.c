/*
 * planner.c - PlanWave: fills a weekend wave up to its capacity, spreading the
 * volunteers over the area's wards by how far each is from its target.
 *
 * The plan is computed twice on purpose. The first pass happens outside any
 * transaction and asks the activation service how far every ward is from its
 * target (GetProgress), so no lock is held while another service is waited on.
 * The second pass runs inside the writing transaction, after the wave row is
 * locked (SELECT ... FOR UPDATE): the free seats and the candidates are read
 * again under the lock, so two PlanWave calls on one wave queue up and the
 * second only sees what the first left. A retried PlanWave therefore only tops
 * the wave up; it can never overfill it or book anyone twice.
 *
 * Everything is deterministic for the same inputs: wards are taken in code
 * order (byte order, COLLATE "C"), candidates in (recent no-show last, fewest
 * assignments in the campaign, code) order, and the proportional split uses
 * the largest remainder method with ties broken by ward code.
 *
 * When the activation service is not configured, does not answer within
 * plan_progress_timeout_ms (or the caller's own deadline, when sooner), fails,
 * or leaves a ward out, the plan falls back to an even spread and says why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/clock.h"
#include "phuxanh/pbutil.h"
#include "roster.h"

/* The whole tree of Viet Nam has some 10,600 wards and communes; an area with more is not a
 * real area. */
#define PLAN_MAX_WARDS 20000
/* A campaign id: 1 to 64 lower-case ASCII letters, digits and '-' (roster.proto). */
#define PLAN_CAMPAIGN_ID_MAX 64
/* A concurrent Assign (or a plan of another campaign's wave on the same day) may book one of
 * our candidates between our read and our insert; the plan is then recomputed this often. */
#define PLAN_WRITE_ATTEMPTS 3

static const char s_not_configured[] = "activation service not configured";
static const char s_progress_method[] = "/phuxanh.activation.v1.ActivationService/GetProgress";

/* ------------------------------------------------------------------- SQL */

static const px_db_stmt_t s_campaign_get = {
    "roster_plan_campaign_get",
    "SELECT coalesce(unit_code, '') FROM campaigns WHERE id = $1",
};

static const px_db_stmt_t s_wave_get = {
    "roster_plan_wave_get",
    "SELECT capacity, assigned FROM waves WHERE campaign_id = $1 AND day = $2::date",
};

static const px_db_stmt_t s_wave_lock = {
    "roster_plan_wave_lock",
    "SELECT capacity, assigned FROM waves WHERE campaign_id = $1 AND day = $2::date FOR UPDATE",
};

static const px_db_stmt_t s_unit_level = {
    "roster_plan_unit_level",
    "SELECT level FROM units WHERE code = $1",
};

/* The wards (level 3) of an area: the ward itself, a district's children, a province's
 * grandchildren; every ward when the area is ''. */
static const px_db_stmt_t s_wards = {
    "roster_plan_wards",
    "SELECT w.code, w.name, w.parent_code FROM units w"
    " WHERE w.level = 3 AND ($1 = '' OR w.code = $1 OR w.parent_code = $1"
    "   OR w.parent_code IN (SELECT d.code FROM units d WHERE d.parent_code = $1))"
    " ORDER BY w.code COLLATE \"C\"",
};

/* Seats held in the wave, per ward (a no-show frees its seat). */
static const px_db_stmt_t s_taken = {
    "roster_plan_taken",
    "SELECT unit_code, count(*) FROM assignments"
    " WHERE campaign_id = $1 AND day = $2::date AND status <> 4"
    " GROUP BY unit_code ORDER BY unit_code COLLATE \"C\"",
};

/* Active volunteers free that day, best first: a no-show within the lookback goes last, then
 * whoever has had fewest assignments in this campaign, then code. */
static const px_db_stmt_t s_candidates = {
    "roster_plan_candidates",
    "SELECT v.code FROM volunteers v"
    " WHERE v.active"
    "   AND NOT EXISTS (SELECT 1 FROM assignments a"
    "                    WHERE a.volunteer_code = v.code AND a.day = $2::date)"
    " ORDER BY EXISTS (SELECT 1 FROM assignments n"
    "                   WHERE n.volunteer_code = v.code AND n.status = 4"
    "                     AND n.day < $2::date AND n.day >= $2::date - $3::int),"
    "          (SELECT count(*) FROM assignments c"
    "            WHERE c.volunteer_code = v.code AND c.campaign_id = $1),"
    "          v.code COLLATE \"C\""
    " LIMIT $4",
};

/* One statement for the whole plan. ON CONFLICT: someone booked one of them meanwhile; the
 * caller sees fewer rows than it sent and recomputes. */
static const px_db_stmt_t s_insert = {
    "roster_plan_insert",
    "INSERT INTO assignments (volunteer_code, day, campaign_id, unit_code, status)"
    " SELECT t.v, $2::date, $1, t.u, 1 FROM unnest($3::text[], $4::text[]) AS t(v, u)"
    " ON CONFLICT (volunteer_code, day) DO NOTHING"
    " RETURNING volunteer_code, (extract(epoch FROM created_at) * 1e6)::bigint",
};

static const px_db_stmt_t s_wave_add = {
    "roster_plan_wave_add",
    "UPDATE waves SET assigned = assigned + $3::int, updated_at = now()"
    " WHERE campaign_id = $1 AND day = $2::date",
};

/* ------------------------------------------------------------------- types */

typedef struct {
    const char *code;
    const char *name;
    const char *parent;
    int32_t remaining; /* target - activated, at least 0; 0 under the fallback */
    int32_t already;   /* seats held at this ward before planning */
    int32_t planned;   /* seats this plan adds */
    bool answered;     /* the activation service gave this ward's progress */
} s_ward_t;

typedef struct {
    const char *campaign_id;
    char day[11];
    s_ward_t *wards;
    size_t nwards;
    bool fallback;
    const char *fallback_reason;
} s_plan_t;

/* What one pass over the wave decided. */
typedef struct {
    int32_t capacity;
    int32_t taken; /* seats held before planning (max of the counter and the rows) */
    int32_t free;
    int32_t n;           /* seats planned = min(free, candidates) */
    const char **vol;    /* n candidates, in planning order */
    const char **vol_at; /* their wards, same order */
} s_pass_t;

/* ------------------------------------------------------------------- helpers */

static px_code_t s_campaign_id_check(px_rpc_ctx_t *ctx, const char *id)
{
    size_t n = id ? strlen(id) : 0;
    bool ok = n >= 1 && n <= PLAN_CAMPAIGN_ID_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = id[i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    }
    if (!ok) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "campaign_id: must be 1 to %d lower-case ASCII letters, digits or '-'",
                           PLAN_CAMPAIGN_ID_MAX);
    }
    return PX_OK;
}

static s_ward_t *s_ward_find(s_plan_t *plan, const char *code)
{
    size_t lo = 0, hi = plan->nwards;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(plan->wards[mid].code, code);
        if (c == 0) {
            return &plan->wards[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------- load */

/* The area's wards, ordered by code. */
static px_code_t s_load_wards(px_rpc_ctx_t *ctx, s_plan_t *plan, const char *area, bool area_asked)
{
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    PGresult *res = NULL;
    const char *field = area_asked ? "unit_code" : "campaign unit_code";
    if (*area) {
        const char *p1[1] = {area};
        if (px_db_execp(db, &s_unit_level, 1, p1, &res, &st) != PX_OK) {
            return roster_db_fail(ctx, &st);
        }
        int level = PQntuples(res) ? atoi(PQgetvalue(res, 0, 0)) : 0;
        PQclear(res);
        if (level == 0) {
            return px_rpc_fail(ctx, PX_NOT_FOUND, "%s: no unit \"%s\"", field, area);
        }
        if (level > 3) {
            return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                               "%s: \"%s\" is a neighborhood; give a ward, district or province",
                               field, area);
        }
    }
    const char *p[1] = {area};
    if (px_db_execp(db, &s_wards, 1, p, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    px_code_t code = PX_OK;
    int n = PQntuples(res);
    if (n == 0) {
        code = px_rpc_fail(ctx, PX_FAILED_PRECONDITION, "%s: area \"%s\" has no wards", field,
                           *area ? area : "(whole tree)");
        goto done;
    }
    if (n > PLAN_MAX_WARDS) {
        code = px_rpc_fail(ctx, PX_FAILED_PRECONDITION, "%s: area has %d wards, more than %d",
                           field, n, PLAN_MAX_WARDS);
        goto done;
    }
    plan->wards = px_rpc_ctx_alloc(ctx, (size_t)n * sizeof *plan->wards);
    if (!plan->wards) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        s_ward_t *w = &plan->wards[i];
        w->code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, i, 0));
        w->name = px_rpc_ctx_strdup(ctx, PQgetvalue(res, i, 1));
        w->parent = px_rpc_ctx_strdup(ctx, PQgetvalue(res, i, 2));
        if (!w->code || !w->name || !w->parent) {
            code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
    }
    plan->nwards = (size_t)n;
done:
    PQclear(res);
    return code;
}

/* ------------------------------------------------------------------- progress */

static void s_fallback(px_rpc_ctx_t *ctx, s_plan_t *plan, const char *reason)
{
    plan->fallback = true;
    plan->fallback_reason = reason ? reason : "activation service: no answer";
    for (size_t i = 0; i < plan->nwards; i++) {
        plan->wards[i].remaining = 0;
    }
    /* Not configured is a choice of the operator, not an incident. */
    px_log_level_t level =
        strcmp(plan->fallback_reason, s_not_configured) == 0 ? PX_LOG_INFO : PX_LOG_WARN;
    px_log_emit(px_rpc_ctx_log(ctx), level, "ROSTER-PLAN-FALLBACK", "planning with an even spread",
                PX_LOG_FIELDS(PX_LS("request_id", px_rpc_ctx_request_id(ctx)),
                              PX_LS("campaign_id", plan->campaign_id), PX_LS("day", plan->day),
                              PX_LS("reason", plan->fallback_reason)));
}

/* Asks GetProgress once per distinct parent district of the wards (all calls in flight at
 * once, under one deadline) and fills each ward's remaining. Any failure -> fallback. */
static void s_ask_progress(px_rpc_ctx_t *ctx, s_plan_t *plan)
{
    const roster_t *self = px_rpc_ctx_state(ctx);
    px_rpc_client_t *peer = px_rpc_ctx_peer(ctx, "activation");
    if (!peer) {
        s_fallback(ctx, plan, s_not_configured);
        return;
    }
    /* Distinct parents; wards are sorted by code, not by parent, so dedupe by search. */
    const char **parents = px_rpc_ctx_alloc(ctx, plan->nwards * sizeof *parents);
    px_rpc_call_t **calls = px_rpc_ctx_alloc(ctx, plan->nwards * sizeof *calls);
    Phuxanh__Activation__V1__GetProgressRequest *reqs =
        px_rpc_ctx_alloc(ctx, plan->nwards * sizeof *reqs);
    if (!parents || !calls || !reqs) {
        s_fallback(ctx, plan, "activation service: RESOURCE_EXHAUSTED: out of memory");
        return;
    }
    size_t np = 0;
    for (size_t i = 0; i < plan->nwards; i++) {
        size_t j = 0;
        while (j < np && strcmp(parents[j], plan->wards[i].parent) != 0) {
            j++;
        }
        if (j == np) {
            parents[np++] = plan->wards[i].parent;
        }
    }

    /* The caller's deadline wins over ours when it is sooner (a parent deadline would
     * otherwise replace the budget entirely). */
    int64_t deadline = px_clock_us() + (int64_t)self->plan_progress_timeout_ms * 1000;
    int64_t parent_deadline = px_rpc_ctx_deadline_us(ctx);
    if (parent_deadline > 0 && parent_deadline < deadline) {
        deadline = parent_deadline;
    }
    /* Progress is no one person's record: the activation service trusts only its person
     * readers to say whom they act for, and the roster is not one, so that is left off. */
    px_rpc_call_opts_t opts = {
        .deadline_us = deadline, .idempotent = true, .parent = ctx, .drop_on_behalf = true};

    char *reason = NULL;
    for (size_t j = 0; j < np; j++) {
        Phuxanh__Activation__V1__GetProgressRequest init =
            PHUXANH__ACTIVATION__V1__GET_PROGRESS_REQUEST__INIT;
        reqs[j] = init;
        reqs[j].campaign_id = (char *)plan->campaign_id;
        reqs[j].unit_code = (char *)parents[j];
        calls[j] =
            px_rpc_client_start(peer, s_progress_method, &reqs[j].base,
                                &phuxanh__activation__v1__get_progress_response__descriptor, &opts);
    }
    for (size_t j = 0; j < np; j++) {
        if (!calls[j]) {
            if (!reason) {
                reason = "activation service: RESOURCE_EXHAUSTED: out of memory";
            }
            continue;
        }
        px_rpc_client_wait(peer, calls[j]);
        px_code_t code = px_rpc_call_code(calls[j]);
        ProtobufCMessage *msg = code == PX_OK ? px_rpc_call_take_reply(calls[j]) : NULL;
        if (!msg) {
            if (!reason) {
                const char *name = px_code_name(code);
                reason = px_rpc_ctx_printf(ctx, "activation service: %s: %s",
                                           name ? name : "UNKNOWN", px_rpc_call_message(calls[j]));
            }
        } else {
            const Phuxanh__Activation__V1__GetProgressResponse *rep =
                (const Phuxanh__Activation__V1__GetProgressResponse *)msg;
            for (size_t k = 0; k < rep->n_children; k++) {
                const Phuxanh__Activation__V1__ProgressRow *row = rep->children[k];
                s_ward_t *w = row && row->unit_code ? s_ward_find(plan, row->unit_code) : NULL;
                if (w && strcmp(w->parent, parents[j]) == 0) {
                    int64_t left = (int64_t)row->target - row->activated;
                    w->remaining = left > 0 ? (int32_t)(left > INT32_MAX ? INT32_MAX : left) : 0;
                    w->answered = true;
                }
            }
            protobuf_c_message_free_unpacked(msg, NULL);
        }
        px_rpc_call_destroy(&calls[j]);
    }
    for (size_t i = 0; !reason && i < plan->nwards; i++) {
        if (!plan->wards[i].answered) {
            reason = px_rpc_ctx_printf(ctx, "activation service: no progress for ward %s",
                                       plan->wards[i].code);
        }
    }
    if (reason) {
        s_fallback(ctx, plan, reason);
    }
}

/* ------------------------------------------------------------------- decide */

/* A ward's place in a ranking: larger key first, then lower index (wards are in code order). */
typedef struct {
    int64_t key;
    size_t idx;
} s_rank_t;

static int s_rank_cmp(const void *a, const void *b)
{
    const s_rank_t *ra = a, *rb = b;
    if (ra->key != rb->key) {
        return ra->key > rb->key ? -1 : 1;
    }
    return ra->idx < rb->idx ? -1 : (ra->idx > rb->idx);
}

/* Gives the first k wards of the ranking by key one more seat each. */
static px_code_t s_give_by_rank(px_rpc_ctx_t *ctx, s_plan_t *plan, const int64_t *keys, int64_t k)
{
    s_rank_t *rank = px_rpc_ctx_alloc(ctx, plan->nwards * sizeof *rank);
    if (!rank) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (size_t i = 0; i < plan->nwards; i++) {
        rank[i] = (s_rank_t){keys[i], i};
    }
    qsort(rank, plan->nwards, sizeof *rank, s_rank_cmp);
    for (int64_t j = 0; j < k && (size_t)j < plan->nwards; j++) {
        plan->wards[rank[j].idx].planned++;
    }
    return PX_OK;
}

/* Sets planned on every ward so that they sum to n (see the file comment for the rules). */
static px_code_t s_allocate(px_rpc_ctx_t *ctx, s_plan_t *plan, int32_t n)
{
    size_t w = plan->nwards;
    for (size_t i = 0; i < w; i++) {
        plan->wards[i].planned = 0;
    }
    if (n <= 0) {
        return PX_OK;
    }
    int64_t *keys = px_rpc_ctx_alloc(ctx, w * sizeof *keys);
    if (!keys) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    if ((size_t)n < w) {
        /* Fewer seats than wards: the neediest wards get one each. */
        for (size_t i = 0; i < w; i++) {
            keys[i] = plan->wards[i].remaining;
        }
        return s_give_by_rank(ctx, plan, keys, n);
    }
    /* Every ward gets one first, so none is left out of a wave. */
    int64_t sum = 0;
    for (size_t i = 0; i < w; i++) {
        plan->wards[i].planned = 1;
        sum += plan->wards[i].remaining;
    }
    int64_t rest = n - (int64_t)w;
    if (rest == 0) {
        return PX_OK;
    }
    if (sum == 0) {
        /* Nobody is behind (or nobody said): round-robin by code. */
        for (size_t i = 0; i < w; i++) {
            int64_t extra = rest / (int64_t)w + ((int64_t)i < rest % (int64_t)w ? 1 : 0);
            plan->wards[i].planned += (int32_t)extra;
        }
        return PX_OK;
    }
    /* Largest remainder: the floor of each quota, then one more to the largest fractions.
     * rest <= 1000 and remaining < 2^31, so rest * remaining fits in 64 bits. */
    int64_t given = 0;
    for (size_t i = 0; i < w; i++) {
        int64_t q = rest * plan->wards[i].remaining;
        plan->wards[i].planned += (int32_t)(q / sum);
        keys[i] = q % sum;
        given += q / sum;
    }
    return s_give_by_rank(ctx, plan, keys, rest - given);
}

/* ------------------------------------------------------------------- one pass */

static int s_strcmp_p(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Reads the wave (locking its row when lock is set), the seats held per ward and the best
 * candidates for the free seats, and decides who goes where. */
static px_code_t s_pass(px_rpc_ctx_t *ctx, s_plan_t *plan, bool lock, s_pass_t *pass)
{
    const roster_t *self = px_rpc_ctx_state(ctx);
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    PGresult *res = NULL;
    px_code_t code = PX_OK;
    memset(pass, 0, sizeof *pass);

    const char *p2[2] = {plan->campaign_id, plan->day};
    if (px_db_execp(db, lock ? &s_wave_lock : &s_wave_get, 2, p2, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return px_rpc_fail(ctx, PX_NOT_FOUND, "day: campaign \"%s\" has no wave on %s",
                           plan->campaign_id, plan->day);
    }
    pass->capacity = atoi(PQgetvalue(res, 0, 0));
    int32_t counter = atoi(PQgetvalue(res, 0, 1));
    PQclear(res);

    if (px_db_execp(db, &s_taken, 2, p2, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    int32_t rows = 0;
    for (size_t i = 0; i < plan->nwards; i++) {
        plan->wards[i].already = 0;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        int32_t c = atoi(PQgetvalue(res, i, 1));
        s_ward_t *w = s_ward_find(plan, PQgetvalue(res, i, 0));
        if (w) {
            w->already = c;
        }
        rows += c;
    }
    PQclear(res);
    /* The counter and the rows agree unless something wrote one without the other; trust the
     * larger so that the plan can never push the counter past the capacity. */
    pass->taken = counter > rows ? counter : rows;
    pass->free = pass->capacity > pass->taken ? pass->capacity - pass->taken : 0;
    if (pass->free == 0) {
        return s_allocate(ctx, plan, 0);
    }

    char lookback[16], limit[16];
    snprintf(lookback, sizeof lookback, "%d", self->noshow_lookback_days);
    snprintf(limit, sizeof limit, "%d", pass->free);
    const char *p4[4] = {plan->campaign_id, plan->day, lookback, limit};
    if (px_db_execp(db, &s_candidates, 4, p4, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    pass->n = PQntuples(res);
    pass->vol = px_rpc_ctx_alloc(ctx, ((size_t)pass->n + 1) * sizeof *pass->vol);
    pass->vol_at = px_rpc_ctx_alloc(ctx, ((size_t)pass->n + 1) * sizeof *pass->vol_at);
    if (!pass->vol || !pass->vol_at) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    for (int32_t i = 0; i < pass->n; i++) {
        pass->vol[i] = px_rpc_ctx_strdup(ctx, PQgetvalue(res, i, 0));
        if (!pass->vol[i]) {
            code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
    }
    code = s_allocate(ctx, plan, pass->n);
    if (code != PX_OK) {
        goto done;
    }
    /* Candidates go to the wards in ward order, best first; the answer lists each ward's
     * volunteers by code. */
    int32_t k = 0;
    for (size_t i = 0; i < plan->nwards; i++) {
        int32_t first = k;
        for (int32_t j = 0; j < plan->wards[i].planned; j++, k++) {
            pass->vol_at[k] = plan->wards[i].code;
        }
        qsort(&pass->vol[first], (size_t)(k - first), sizeof *pass->vol, s_strcmp_p);
    }
done:
    PQclear(res);
    return code;
}

/* ------------------------------------------------------------------- write */

/* Writes the pass: one INSERT of all assignments, the wave's counter, the audit row. Answers
 * ABORTED (to recompute) when a candidate was booked by someone else meanwhile. */
static px_code_t s_write(px_rpc_ctx_t *ctx, const s_plan_t *plan, const s_pass_t *pass,
                         int64_t *created_us)
{
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    PGresult *res = NULL;
    char *vols = roster_array(ctx, pass->vol, (size_t)pass->n);
    char *units = roster_array(ctx, pass->vol_at, (size_t)pass->n);
    if (!vols || !units) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    const char *p4[4] = {plan->campaign_id, plan->day, vols, units};
    if (px_db_execp(db, &s_insert, 4, p4, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    int inserted = PQntuples(res);
    *created_us = inserted > 0 ? strtoll(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    PQclear(res);
    if (inserted != pass->n) {
        return px_rpc_fail(ctx, PX_ABORTED, "a planned volunteer was booked meanwhile");
    }
    char n[16];
    snprintf(n, sizeof n, "%d", pass->n);
    const char *p3[3] = {plan->campaign_id, plan->day, n};
    if (px_db_execp(db, &s_wave_add, 3, p3, NULL, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    char cid[2 * PLAN_CAMPAIGN_ID_MAX + 8];
    px_json_escape(cid, sizeof cid, plan->campaign_id);
    char *detail = px_rpc_ctx_printf(
        ctx, "{\"campaign_id\":%s,\"day\":\"%s\",\"planned\":%d,\"even_spread_fallback\":%s}", cid,
        plan->day, pass->n, plan->fallback ? "true" : "false");
    if (!detail) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    return roster_audit(ctx, detail);
}

/* ------------------------------------------------------------------- reply */

static px_code_t s_reply(px_rpc_ctx_t *ctx, const s_plan_t *plan, const s_pass_t *pass,
                         bool committed, int64_t created_us,
                         Phuxanh__Roster__V1__PlanWaveResponse *rep)
{
    rep->capacity = pass->capacity;
    rep->already_assigned = pass->taken;
    rep->unfilled = pass->free - pass->n;
    rep->committed = committed;
    rep->even_spread_fallback = plan->fallback;
    rep->fallback_reason = (char *)(plan->fallback ? plan->fallback_reason : "");
    rep->wards = px_rpc_ctx_alloc(ctx, plan->nwards * sizeof *rep->wards);
    Phuxanh__Roster__V1__WardAllocation *rows = px_rpc_ctx_alloc(ctx, plan->nwards * sizeof *rows);
    rep->planned = px_rpc_ctx_alloc(ctx, ((size_t)pass->n + 1) * sizeof *rep->planned);
    Phuxanh__Roster__V1__Assignment *as = px_rpc_ctx_alloc(ctx, ((size_t)pass->n + 1) * sizeof *as);
    Google__Protobuf__Timestamp *created = committed && pass->n ? px_ts_new(ctx, created_us) : NULL;
    if (!rep->wards || !rows || !rep->planned || !as || (committed && pass->n && !created)) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (size_t i = 0; i < plan->nwards; i++) {
        const s_ward_t *w = &plan->wards[i];
        Phuxanh__Roster__V1__WardAllocation init = PHUXANH__ROSTER__V1__WARD_ALLOCATION__INIT;
        rows[i] = init;
        rows[i].unit_code = (char *)w->code;
        rows[i].unit_name = (char *)w->name;
        rows[i].remaining_to_target = plan->fallback ? 0 : w->remaining;
        rows[i].already_assigned = w->already;
        rows[i].planned = w->planned;
        rep->wards[i] = &rows[i];
    }
    rep->n_wards = plan->nwards;
    /* plan lives on the handler's stack; the reply is packed after the handler returns. */
    char *day = px_rpc_ctx_strdup(ctx, plan->day);
    if (!day) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (int32_t i = 0; i < pass->n; i++) {
        Phuxanh__Roster__V1__Assignment init = PHUXANH__ROSTER__V1__ASSIGNMENT__INIT;
        as[i] = init;
        as[i].campaign_id = (char *)plan->campaign_id;
        as[i].day = day;
        as[i].volunteer_code = (char *)pass->vol[i];
        as[i].unit_code = (char *)pass->vol_at[i];
        as[i].neighborhood_code = "";
        as[i].status = PHUXANH__ROSTER__V1__ASSIGNMENT_STATUS__ASSIGNMENT_STATUS_PLANNED;
        as[i].created_at = created;
        rep->planned[i] = &as[i];
    }
    rep->n_planned = (size_t)pass->n;
    return PX_OK;
}

/* ------------------------------------------------------------------- handler */

static px_code_t s_plan_wave(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                             ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__PlanWaveRequest *req =
        (const Phuxanh__Roster__V1__PlanWaveRequest *)request;
    Phuxanh__Roster__V1__PlanWaveResponse *rep = (Phuxanh__Roster__V1__PlanWaveResponse *)reply;
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    PGresult *res = NULL;
    s_plan_t plan = {.campaign_id = req->campaign_id};
    s_pass_t pass;
    px_code_t code;

    /* validate */
    if ((code = s_campaign_id_check(ctx, req->campaign_id)) != PX_OK ||
        (code = roster_day(ctx, "day", req->day, plan.day)) != PX_OK) {
        return code;
    }
    bool area_asked = req->unit_code && *req->unit_code;
    if (area_asked && (code = roster_code(ctx, "unit_code", req->unit_code)) != PX_OK) {
        return code;
    }

    /* load */
    const char *p1[1] = {plan.campaign_id};
    if (px_db_execp(db, &s_campaign_get, 1, p1, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return px_rpc_fail(ctx, PX_NOT_FOUND, "campaign_id: no campaign \"%s\"", plan.campaign_id);
    }
    const char *area = area_asked ? req->unit_code : px_rpc_ctx_strdup(ctx, PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!area) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    const char *p2[2] = {plan.campaign_id, plan.day};
    if (px_db_execp(db, &s_wave_get, 2, p2, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    int waves = PQntuples(res);
    PQclear(res);
    if (waves == 0) {
        return px_rpc_fail(ctx, PX_NOT_FOUND, "day: campaign \"%s\" has no wave on %s",
                           plan.campaign_id, plan.day);
    }
    if ((code = s_load_wards(ctx, &plan, area, area_asked)) != PX_OK) {
        return code;
    }
    /* Outside any transaction: no lock is held while the other service is waited on. */
    s_ask_progress(ctx, &plan);

    /* decide (and show) */
    if (req->dry_run) {
        /* One snapshot for the wave, its seats and the candidates. */
        if (px_db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL, &st) !=
            PX_OK) {
            return roster_db_fail(ctx, &st);
        }
        code = s_pass(ctx, &plan, false, &pass);
        px_db_rollback(db);
        return code != PX_OK ? code : s_reply(ctx, &plan, &pass, false, 0, rep);
    }

    /* decide under the wave's lock, write */
    for (int attempt = 1;; attempt++) {
        int64_t created_us = 0;
        if (px_db_begin(db, &st) != PX_OK) {
            return roster_db_fail(ctx, &st);
        }
        code = s_pass(ctx, &plan, true, &pass);
        if (code == PX_OK && pass.n > 0) {
            code = s_write(ctx, &plan, &pass, &created_us);
        }
        if (code == PX_OK && px_db_commit(db, &st) != PX_OK) {
            code = roster_db_fail(ctx, &st);
        }
        if (code == PX_OK) {
            return s_reply(ctx, &plan, &pass, true, created_us, rep);
        }
        px_db_rollback(db);
        if (code != PX_ABORTED || attempt == PLAN_WRITE_ATTEMPTS) {
            return code;
        }
    }
}

const px_rpc_method_t roster_planner_methods[] = {
    {"PlanWave", s_plan_wave},
};
const size_t roster_planner_methods_count =
    sizeof roster_planner_methods / sizeof roster_planner_methods[0];
