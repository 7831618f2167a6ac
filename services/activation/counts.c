/*
 * counts.c - QueryCounts and TopVolunteers: the counts other systems read all
 * day.
 *
 * Both read only the `daily` counter rows RecordEvents keeps in the same
 * transaction as the events (one row per ward, day, stage, channel and
 * volunteer), never the events: a district's figures over a day range are a
 * GROUP BY over a few hundred rows however many citizens there are.
 *
 * daily rows are kept per ward, not per neighborhood, so a neighborhood cannot
 * be counted here (INVALID_ARGUMENT); GetProgress has the neighborhoods' totals.
 *
 * QueryCounts groups by any subset of five dimensions. Rather than assemble
 * the GROUP BY from strings, one prepared statement groups by all five
 * columns, each replaced by a constant ('' or 0) when it is not asked for:
 * the same rows, one plan, no SQL built at run time. Pages are keyset pages
 * on the five keys, compared in the "C" collation so that the order is the
 * bytes' and the token's comparison matches the ORDER BY.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "phuxanh/clock.h"
#include "phuxanh/text.h"

/* QueryCounts' page: the proto's default and maximum. */
#define S_COUNTS_PAGE_DEFAULT 1000
#define S_COUNTS_PAGE_MAX 10000
/* The longest day range one call may ask: campaigns last weeks; two years covers any campaign
 * and its aftermath while bounding what one call reads. */
#define S_MAX_DAY_RANGE 731
#define S_TOP_DEFAULT 10
#define S_TOP_MAX 100
/* The names are a nicety: a slow roster must not hold the counts back for long. */
#define S_NAMES_BUDGET_MS 500
#define S_TOKEN_MAX 200

/* ---------------------------------------------------------------- statements */

/* $1 campaign, $2 unit, $3..$7 group by unit/day/stage/channel/volunteer, $8/$9 day range
 * (NULL: open), $10 stages ({} all), $11 has a token, $12..$16 the token's keys, $17 limit. */
static const px_db_stmt_t s_counts = {
    "act_counts_query",
    "WITH RECURSIVE sub(code, depth) AS ("
    "  SELECT code, 0 FROM units WHERE code = $2"
    "  UNION ALL SELECT u.code, s.depth + 1 FROM units u JOIN sub s ON u.parent_code = s.code"
    "  WHERE s.depth < 8), "
    "g AS (SELECT CASE WHEN $3 THEN d.unit_code ELSE '' END AS u, "
    "  CASE WHEN $4 THEN to_char(d.day, 'YYYY-MM-DD') ELSE '' END AS dy, "
    "  CASE WHEN $5 THEN d.stage ELSE 0 END::int AS s, "
    "  CASE WHEN $6 THEN d.channel ELSE 0 END::int AS ch, "
    "  CASE WHEN $7 THEN d.volunteer_code ELSE '' END AS v, sum(d.count) AS n "
    "  FROM daily_shards d WHERE d.campaign_id = $1 AND d.unit_code = ANY (ARRAY(SELECT code FROM "
    "sub)) "
    "  AND ($8::date IS NULL OR d.day >= $8::date) AND ($9::date IS NULL OR d.day <= $9::date) "
    "  AND (cardinality($10::smallint[]) = 0 OR d.stage = ANY($10::smallint[])) "
    "  GROUP BY 1, 2, 3, 4, 5 HAVING sum(d.count) > 0) "
    "SELECT u, dy, s, ch, v, n, coalesce((SELECT name FROM units WHERE code = g.u), '') "
    "FROM g WHERE NOT $11::bool OR "
    "(u COLLATE \"C\", dy COLLATE \"C\", s, ch, v COLLATE \"C\") > "
    "($12::text COLLATE \"C\", $13::text COLLATE \"C\", $14::int, $15::int, "
    "$16::text COLLATE \"C\") "
    "ORDER BY u COLLATE \"C\", dy COLLATE \"C\", s, ch, v COLLATE \"C\" LIMIT $17::int",
};

/* $1 campaign, $2 unit ('' the whole campaign), $3/$4 day range, $5 rank stage, $6 limit. */
static const px_db_stmt_t s_top = {
    "act_counts_top",
    "WITH RECURSIVE sub(code, depth) AS ("
    "  SELECT code, 0 FROM units WHERE code = $2"
    "  UNION ALL SELECT u.code, s.depth + 1 FROM units u JOIN sub s ON u.parent_code = s.code"
    "  WHERE s.depth < 8), "
    "v AS (SELECT volunteer_code AS v, "
    "  coalesce(sum(count) FILTER (WHERE stage = 1), 0) AS c1, "
    "  coalesce(sum(count) FILTER (WHERE stage = 2), 0) AS c2, "
    "  coalesce(sum(count) FILTER (WHERE stage = 3), 0) AS c3, "
    "  coalesce(sum(count) FILTER (WHERE stage = 4), 0) AS c4, "
    "  coalesce(sum(count) FILTER (WHERE stage = $5::int), 0) AS r "
    "  FROM daily_shards WHERE campaign_id = $1 AND volunteer_code <> '' "
    "  AND ($2 = '' OR unit_code = ANY (ARRAY(SELECT code FROM sub))) "
    "  AND ($3::date IS NULL OR day >= $3::date) AND ($4::date IS NULL OR day <= $4::date) "
    "  GROUP BY volunteer_code) "
    "SELECT v, c1, c2, c3, c4 FROM v WHERE r > 0 ORDER BY r DESC, v COLLATE \"C\" "
    "LIMIT $6::int",
};

/* ---------------------------------------------------------------- shared checks */

px_code_t act_check_scope(px_rpc_ctx_t *ctx, const char *campaign, const char *unit,
                          act_unit_t *out)
{
    act_t *act = px_rpc_ctx_state(ctx);
    px_status_t st;
    if (!act_code_ok(campaign, ACT_CAMPAIGN_MAX)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "campaign_id: must be 1 to 64 ASCII letters, digits, '-', '_' or '.'");
    }
    if (!act_code_ok(unit, ACT_CODE_MAX) || act_echo(unit) != unit) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "unit_code: must be 1 to 32 ASCII letters, digits or '-'");
    }
    px_code_t code = act_campaign_check(ctx, "campaign_id", campaign);
    if (code != PX_OK) {
        return code;
    }
    const char *codes[1] = {unit};
    if (act_units_ensure(act->units, ctx, codes, 1, &st) != PX_OK &&
        !act_units_get(act->units, unit, NULL)) {
        return px_rpc_fail(ctx, PX_UNAVAILABLE,
                           "unit_code: the unit tree could not be read from the roster");
    }
    if (!act_units_get(act->units, unit, out)) {
        return px_rpc_fail(ctx, PX_NOT_FOUND, "unit_code: no unit \"%s\"", unit);
    }
    return PX_OK;
}

/* An optional day: "" leaves *set false. */
static px_code_t s_day(px_rpc_ctx_t *ctx, const char *field, const char *s, int32_t *day, bool *set)
{
    *set = s && *s;
    if (*set && (strlen(s) != 10 || !px_day_parse(s, day))) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "%s: must be a day, \"YYYY-MM-DD\"", field);
    }
    return PX_OK;
}

static px_code_t s_day_range(px_rpc_ctx_t *ctx, const char *from, const char *to)
{
    int32_t a = 0, b = 0;
    bool has_a, has_b;
    if (s_day(ctx, "from_day", from, &a, &has_a) != PX_OK ||
        s_day(ctx, "to_day", to, &b, &has_b) != PX_OK) {
        return PX_INVALID_ARGUMENT;
    }
    if (has_a && has_b && b < a) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "to_day: must not be before from_day");
    }
    if (has_a && has_b && b - a + 1 > S_MAX_DAY_RANGE) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "to_day: the range is at most %d days",
                           S_MAX_DAY_RANGE);
    }
    return PX_OK;
}

/* ---------------------------------------------------------------- QueryCounts */

/* The token: "c1|unit|day|stage|channel|volunteer" of the page's last row. Codes hold no '|'. */
typedef struct {
    char unit[ACT_CODE_MAX + 1], day[11], stage[4], channel[4], vol[ACT_CODE_MAX + 1];
} s_ckey_t;

static bool s_field(char *dst, size_t cap, const char **p)
{
    const char *end = strchr(*p, '|');
    size_t n = end ? (size_t)(end - *p) : strlen(*p);
    if (n >= cap) {
        return false;
    }
    memcpy(dst, *p, n);
    dst[n] = '\0';
    *p += n + (end ? 1 : 0);
    return end != NULL;
}

static bool s_ctoken_parse(const char *t, s_ckey_t *k)
{
    if (strlen(t) > S_TOKEN_MAX || strncmp(t, "c1|", 3) != 0) {
        return false;
    }
    const char *p = t + 3;
    if (!s_field(k->unit, sizeof k->unit, &p) || !s_field(k->day, sizeof k->day, &p) ||
        !s_field(k->stage, sizeof k->stage, &p) || !s_field(k->channel, sizeof k->channel, &p) ||
        s_field(k->vol, sizeof k->vol, &p)) {
        return false;
    }
    int32_t d;
    char *e1, *e2;
    long st = strtol(k->stage, &e1, 10), ch = strtol(k->channel, &e2, 10);
    return (!*k->unit || act_code_ok(k->unit, ACT_CODE_MAX)) &&
           (!*k->day || px_day_parse(k->day, &d)) && (!*k->vol || act_code_ok(k->vol, 32)) &&
           *k->stage && !*e1 && st >= 0 && st <= 4 && *k->channel && !*e2 && ch >= 0 && ch <= 3;
}

static px_code_t s_query_counts(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    const Phuxanh__Activation__V1__QueryCountsRequest *req = (const void *)request;
    Phuxanh__Activation__V1__QueryCountsResponse *resp = (void *)reply;
    act_unit_t unit = {0};
    px_status_t st;
    PGresult *res = NULL;
    px_code_t code = PX_OK;
    act_arr_t stages;
    act_arr_init(&stages);
    bool by[6] = {false};
    /* validate: every refusal goes through done, which frees stages once it holds a buffer */
    for (size_t i = 0; i < req->n_group_by; i++) {
        int g = req->group_by[i];
        if (g < 1 || g > 5) {
            code = px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "group_by: %d is not a dimension", g);
            goto done;
        }
        if (by[g]) {
            code = px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "group_by: a dimension at most once");
            goto done;
        }
        by[g] = true;
    }
    if (req->n_stages > 4) {
        code = px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "stages: at most the four stages");
        goto done;
    }
    for (size_t i = 0; i < req->n_stages; i++) {
        if (req->stages[i] < 1 || req->stages[i] > 4) {
            code = px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "stages: %d is not a stage",
                               (int)req->stages[i]);
            goto done;
        }
        act_arr_addf(&stages, "%d", (int)req->stages[i]);
    }
    if (req->page_size < 0) {
        code = px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "page_size: must not be negative");
        goto done;
    }
    int page = req->page_size == 0                  ? S_COUNTS_PAGE_DEFAULT
               : req->page_size > S_COUNTS_PAGE_MAX ? S_COUNTS_PAGE_MAX
                                                    : req->page_size;
    s_ckey_t key = {.stage = "0", .channel = "0"};
    bool has_token = req->page_token && *req->page_token;
    if (has_token && !s_ctoken_parse(req->page_token, &key)) {
        code = px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "page_token: not a token of this method");
        goto done;
    }
    if (s_day_range(ctx, req->from_day, req->to_day) != PX_OK) {
        code = PX_INVALID_ARGUMENT;
        goto done;
    }
    if ((code = act_check_scope(ctx, req->campaign_id, req->unit_code, &unit)) != PX_OK) {
        goto done;
    }
    if (unit.level >= 4) {
        code =
            px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                        "unit_code: counts are kept per ward; \"%s\" is a neighborhood", unit.code);
        goto done;
    }
    /* load */
    char limit[16];
    snprintf(limit, sizeof limit, "%d", page + 1);
    const char *p[17] = {req->campaign_id,
                         req->unit_code,
                         by[1] ? "t" : "f",
                         by[2] ? "t" : "f",
                         by[3] ? "t" : "f",
                         by[4] ? "t" : "f",
                         by[5] ? "t" : "f",
                         *req->from_day ? req->from_day : NULL,
                         *req->to_day ? req->to_day : NULL,
                         act_arr_end(&stages),
                         has_token ? "t" : "f",
                         key.unit,
                         key.day,
                         key.stage,
                         key.channel,
                         key.vol,
                         limit};
    if (!p[9]) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    if (act_read_execp(ctx, &s_counts, 17, p, &res, &st) != PX_OK) {
        code = act_db_fail(ctx, &st);
        goto done;
    }
    /* reply */
    int n = PQntuples(res);
    int shown = n > page ? page : n;
    Phuxanh__Activation__V1__CountRow *rows =
        px_rpc_ctx_alloc(ctx, (size_t)(shown + 1) * sizeof *rows);
    resp->rows = px_rpc_ctx_alloc(ctx, (size_t)(shown + 1) * sizeof *resp->rows);
    if (!rows || !resp->rows) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    for (int i = 0; i < shown; i++) {
        Phuxanh__Activation__V1__CountRow *r = &rows[i];
        phuxanh__activation__v1__count_row__init(r);
        r->unit_code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, i, 0));
        r->day = px_rpc_ctx_strdup(ctx, PQgetvalue(res, i, 1));
        r->stage = atoi(PQgetvalue(res, i, 2));
        r->channel = atoi(PQgetvalue(res, i, 3));
        r->volunteer_code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, i, 4));
        long long c = atoll(PQgetvalue(res, i, 5));
        r->count = c > INT32_MAX ? INT32_MAX : (int32_t)c;
        r->unit_name = px_rpc_ctx_strdup(ctx, PQgetvalue(res, i, 6));
        if (!r->unit_code || !r->day || !r->volunteer_code || !r->unit_name) {
            code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
        resp->rows[resp->n_rows++] = r;
    }
    if (n > page) {
        resp->next_page_token =
            px_rpc_ctx_printf(ctx, "c1|%s|%s|%s|%s|%s", PQgetvalue(res, shown - 1, 0),
                              PQgetvalue(res, shown - 1, 1), PQgetvalue(res, shown - 1, 2),
                              PQgetvalue(res, shown - 1, 3), PQgetvalue(res, shown - 1, 4));
    }
done:
    PQclear(res);
    act_arr_free(&stages);
    return code;
}

/* ---------------------------------------------------------------- TopVolunteers */

/* Names for the page's codes in one ListVolunteers call, within a short budget. False when
 * the roster did not answer (the names then stay empty). */
static bool s_names(px_rpc_ctx_t *ctx, Phuxanh__Activation__V1__VolunteerCounts **vs, size_t n)
{
    px_rpc_client_t *roster = px_rpc_ctx_peer(ctx, "roster");
    if (!roster) {
        return false;
    }
    char **codes = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *codes);
    if (!codes) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        codes[i] = vs[i]->volunteer_code;
    }
    Phuxanh__Roster__V1__ListVolunteersRequest req =
        PHUXANH__ROSTER__V1__LIST_VOLUNTEERS_REQUEST__INIT;
    req.codes = codes;
    req.n_codes = n;
    req.page_size = (int32_t)n;
    int64_t budget = px_clock_us() + (int64_t)S_NAMES_BUDGET_MS * 1000;
    int64_t parent = px_rpc_ctx_deadline_us(ctx);
    px_rpc_call_opts_t o = {
        .timeout_ms = S_NAMES_BUDGET_MS,
        .deadline_us = parent > 0 && parent < budget ? parent : budget,
        .idempotent = true,
        .parent = ctx,
    };
    ProtobufCMessage *reply = NULL;
    px_status_t st;
    if (px_rpc_client_call(roster, "/phuxanh.roster.v1.RosterService/ListVolunteers", &req.base,
                           &phuxanh__roster__v1__list_volunteers_response__descriptor, &reply, &o,
                           &st) != PX_OK) {
        return false;
    }
    const Phuxanh__Roster__V1__ListVolunteersResponse *r = (const void *)reply;
    bool ok = true;
    for (size_t k = 0; k < r->n_volunteers; k++) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(vs[i]->volunteer_code, r->volunteers[k]->code) == 0) {
                vs[i]->full_name = px_rpc_ctx_strdup(ctx, r->volunteers[k]->full_name);
                ok = ok && vs[i]->full_name;
                if (!vs[i]->full_name) {
                    vs[i]->full_name = "";
                }
            }
        }
    }
    protobuf_c_message_free_unpacked(reply, NULL);
    return ok;
}

static px_code_t s_top_volunteers(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                  ProtobufCMessage *reply)
{
    const Phuxanh__Activation__V1__TopVolunteersRequest *req = (const void *)request;
    Phuxanh__Activation__V1__TopVolunteersResponse *resp = (void *)reply;
    act_unit_t unit = {0};
    px_status_t st;
    PGresult *res = NULL;
    px_code_t code = PX_OK;
    if (!act_code_ok(req->campaign_id, ACT_CAMPAIGN_MAX)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "campaign_id: must be 1 to 64 ASCII letters, digits, '-', '_' or '.'");
    }
    if (req->limit < 0 || req->limit > S_TOP_MAX) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "limit: must be 0 to %d", S_TOP_MAX);
    }
    int rank = req->rank_by == 0 ? 3 : req->rank_by;
    if (rank < 1 || rank > 4) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "rank_by: %d is not a stage",
                           (int)req->rank_by);
    }
    if (s_day_range(ctx, req->from_day, req->to_day) != PX_OK) {
        return PX_INVALID_ARGUMENT;
    }
    if (*req->unit_code) {
        if ((code = act_check_scope(ctx, req->campaign_id, req->unit_code, &unit)) != PX_OK) {
            return code;
        }
        if (unit.level >= 4) {
            code = px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                               "unit_code: counts are kept per ward; \"%s\" is a neighborhood",
                               unit.code);
            goto done;
        }
    }
    char rk[4], lim[8];
    snprintf(rk, sizeof rk, "%d", rank);
    snprintf(lim, sizeof lim, "%d", req->limit == 0 ? S_TOP_DEFAULT : req->limit);
    const char *p[6] = {req->campaign_id,
                        req->unit_code,
                        *req->from_day ? req->from_day : NULL,
                        *req->to_day ? req->to_day : NULL,
                        rk,
                        lim};
    if (act_read_execp(ctx, &s_top, 6, p, &res, &st) != PX_OK) {
        code = act_db_fail(ctx, &st);
        goto done;
    }
    size_t n = (size_t)PQntuples(res);
    Phuxanh__Activation__V1__VolunteerCounts *vs = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *vs);
    resp->volunteers = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *resp->volunteers);
    if (!vs || !resp->volunteers) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        phuxanh__activation__v1__volunteer_counts__init(&vs[i]);
        vs[i].volunteer_code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, (int)i, 0));
        if (!vs[i].volunteer_code) {
            code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
        vs[i].full_name = "";
        int32_t *c[4] = {&vs[i].collected, &vs[i].approved, &vs[i].activated, &vs[i].rejected};
        for (int k = 0; k < 4; k++) {
            long long x = atoll(PQgetvalue(res, (int)i, 1 + k));
            *c[k] = x > INT32_MAX ? INT32_MAX : (int32_t)x;
        }
        resp->volunteers[resp->n_volunteers++] = &vs[i];
    }
    /* An empty list needs no names: complete. */
    resp->names_complete = n == 0 || s_names(ctx, resp->volunteers, n);
done:
    PQclear(res);
    return code;
}

const px_rpc_method_t act_counts_methods[] = {
    {"QueryCounts", s_query_counts},
    {"TopVolunteers", s_top_volunteers},
};
const size_t act_counts_methods_count = sizeof act_counts_methods / sizeof act_counts_methods[0];
