/*
 * campaigns.c - campaigns and their weekend waves: UpsertCampaign,
 * GetCampaign, ListCampaigns, UpsertWaves, ListWaves.
 *
 * A wave lies inside its campaign's days, and both sides keep it so under
 * concurrency: UpsertCampaign locks the campaign row (FOR UPDATE) before it
 * looks for waves outside the new days, and UpsertWaves holds the campaigns it
 * names FOR SHARE while it checks the days, so neither can slip past the other.
 * UpsertWaves also locks the existing waves it changes (FOR UPDATE): Assign
 * takes the same row lock, so a capacity is never lowered below the seats
 * taken while a seat is being taken. Capacity 0 ("30 for a new wave, unchanged
 * for an existing one") is resolved here in C from those locked rows, so the
 * write itself is a plain unnest upsert.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/log.h"
#include "phuxanh/text.h"
#include "roster.h"

/* A campaign id: 1 to 64 lower-case ASCII letters, digits and '-' (roster.proto). */
#define CAMP_ID_MAX 64
#define CAMP_NAME_MAX 500
/* Wave seats (roster.proto): 0 on upsert means the default for a new wave. */
#define WAVE_CAPACITY_MAX 1000
#define WAVE_CAPACITY_DEFAULT 30
/* Page sizes (roster.proto). */
#define CAMP_PAGE_DEFAULT 100
#define CAMP_PAGE_MAX 1000
/* Room for one audit detail object: an id (escaped, at most 6 bytes per character) and flags. */
#define CAMP_AUDIT_MAX 600

/* ------------------------------------------------------------------- SQL */

#define CAMP_COLUMNS                                                                               \
    "id, name, to_char(starts_on, 'YYYY-MM-DD'), to_char(ends_on, 'YYYY-MM-DD'),"                  \
    " coalesce(unit_code, '')"

static const px_db_stmt_t s_camp_get = {
    "campaigns_get",
    "SELECT " CAMP_COLUMNS " FROM campaigns WHERE id = $1",
};

static const px_db_stmt_t s_camp_lock = {
    "campaigns_lock",
    "SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE",
};

static const px_db_stmt_t s_camp_unit = {
    "campaigns_unit_exists",
    "SELECT 1 FROM units WHERE code = $1",
};

/* The first and last waves that the new days would leave outside. */
static const px_db_stmt_t s_camp_outside = {
    "campaigns_waves_outside",
    "SELECT count(*), to_char(min(day), 'YYYY-MM-DD'), to_char(max(day), 'YYYY-MM-DD')"
    " FROM waves WHERE campaign_id = $1 AND (day < $2::date OR day > $3::date)",
};

static const px_db_stmt_t s_camp_upsert = {
    "campaigns_upsert",
    "INSERT INTO campaigns AS c (id, name, starts_on, ends_on, unit_code)"
    " VALUES ($1, normalize($2, NFC), $3::date, $4::date, nullif($5, ''))"
    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, starts_on = EXCLUDED.starts_on,"
    "  ends_on = EXCLUDED.ends_on, unit_code = EXCLUDED.unit_code, updated_at = now()"
    " WHERE (c.name, c.starts_on, c.ends_on, c.unit_code)"
    "  IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.starts_on, EXCLUDED.ends_on, EXCLUDED.unit_code)"
    " RETURNING (xmax = 0)",
};

/* Most recent first, then id; $1/$2 the last row of the previous page (NULL: first page). */
static const px_db_stmt_t s_camp_list = {
    "campaigns_list",
    "SELECT " CAMP_COLUMNS " FROM campaigns"
    " WHERE $1::date IS NULL OR starts_on < $1::date"
    "  OR (starts_on = $1::date AND id COLLATE \"C\" > $2)"
    " ORDER BY starts_on DESC, id COLLATE \"C\" LIMIT $3::int",
};

static const px_db_stmt_t s_wave_campaigns = {
    "campaigns_wave_campaigns",
    "SELECT id, to_char(starts_on, 'YYYY-MM-DD'), to_char(ends_on, 'YYYY-MM-DD')"
    " FROM campaigns WHERE id = ANY ($1::text[]) FOR SHARE",
};

/* Seats taken: the counter, or the rows holding a seat if they say more. */
static const px_db_stmt_t s_wave_existing = {
    "campaigns_wave_existing",
    "SELECT w.campaign_id, to_char(w.day, 'YYYY-MM-DD'), w.capacity,"
    "  greatest(w.assigned, (SELECT count(*) FROM assignments a WHERE a.campaign_id ="
    "   w.campaign_id AND a.day = w.day AND a.status <> 4))"
    " FROM waves w JOIN unnest($1::text[], $2::date[]) AS k(c, d)"
    "  ON w.campaign_id = k.c AND w.day = k.d"
    " FOR UPDATE OF w",
};

static const px_db_stmt_t s_wave_upsert = {
    "campaigns_wave_upsert",
    "WITH w AS (INSERT INTO waves AS w (campaign_id, day, capacity)"
    "  SELECT x.c, x.d, x.cap FROM unnest($1::text[], $2::date[], $3::int[]) AS x(c, d, cap)"
    "  ON CONFLICT (campaign_id, day) DO UPDATE SET capacity = EXCLUDED.capacity,"
    "   updated_at = now()"
    "  WHERE w.capacity <> EXCLUDED.capacity"
    "  RETURNING (xmax = 0) AS ins)"
    " SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM w",
};

static const px_db_stmt_t s_wave_list = {
    "campaigns_wave_list",
    "SELECT to_char(w.day, 'YYYY-MM-DD'), w.capacity, s.assigned, s.checked_in"
    " FROM (SELECT campaign_id, day, capacity FROM waves WHERE campaign_id = $1"
    "   AND ($2::date IS NULL OR day >= $2::date) AND ($3::date IS NULL OR day <= $3::date)"
    "   AND ($4::date IS NULL OR day > $4::date) ORDER BY day LIMIT $5::int) w"
    " CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE a.status <> 4) AS assigned,"
    "   count(*) FILTER (WHERE a.status IN (2, 3)) AS checked_in FROM assignments a"
    "   WHERE a.campaign_id = w.campaign_id AND a.day = w.day) s"
    " ORDER BY w.day",
};

/* ------------------------------------------------------------------- helpers */

static bool s_id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    bool ok = n >= 1 && n <= CAMP_ID_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    }
    return ok;
}

static px_code_t s_id_check(px_rpc_ctx_t *ctx, const char *field, const char *id)
{
    if (!id || !*id) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "%s: must be set", field);
    }
    if (!s_id_ok(id)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "%s: must be 1 to %d lower-case ASCII letters, digits or '-'", field,
                           CAMP_ID_MAX);
    }
    return PX_OK;
}

static px_code_t s_oom(px_rpc_ctx_t *ctx)
{
    return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
}

static Phuxanh__Roster__V1__Campaign *s_campaign_from_row(px_rpc_ctx_t *ctx, const PGresult *res,
                                                          int r)
{
    Phuxanh__Roster__V1__Campaign *c = px_rpc_ctx_alloc(ctx, sizeof *c);
    if (!c) {
        return NULL;
    }
    phuxanh__roster__v1__campaign__init(c);
    c->id = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 0));
    c->name = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 1));
    c->starts_on = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 2));
    c->ends_on = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 3));
    c->unit_code = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 4));
    return c->id && c->name && c->starts_on && c->ends_on && c->unit_code ? c : NULL;
}

/* ------------------------------------------------------------------- UpsertCampaign */

px_code_t roster_campaign_apply(px_rpc_ctx_t *ctx, const Phuxanh__Roster__V1__Campaign *c,
                                Phuxanh__Roster__V1__UpsertCampaignResponse *rep, bool *changed_p)
{
    *changed_p = false;
    char from[11], to[11];
    px_status_t st;
    px_code_t code;
    if ((code = s_id_check(ctx, "campaign.id", c->id)) != PX_OK) {
        return code;
    }
    if (px_text_check("campaign.name", c->name, CAMP_NAME_MAX, true, &st) != PX_OK) {
        return px_rpc_fail_status(ctx, &st);
    }
    if ((code = roster_day(ctx, "campaign.starts_on", c->starts_on, from)) != PX_OK ||
        (code = roster_day(ctx, "campaign.ends_on", c->ends_on, to)) != PX_OK) {
        return code;
    }
    if (strcmp(to, from) < 0) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "campaign.ends_on: %s is before starts_on %s",
                           to, from);
    }
    const char *unit = c->unit_code ? c->unit_code : "";
    if (*unit && (code = roster_code(ctx, "campaign.unit_code", unit)) != PX_OK) {
        return code;
    }

    px_db_t *db = px_rpc_ctx_db(ctx);
    PGresult *res = NULL;
    const char *id_param[1] = {c->id};
    if (px_db_execp(db, &s_camp_lock, 1, id_param, NULL, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    if (*unit) {
        const char *p[1] = {unit};
        if (px_db_execp(db, &s_camp_unit, 1, p, &res, &st) != PX_OK) {
            return roster_db_fail(ctx, &st);
        }
        int found = PQntuples(res);
        PQclear(res);
        if (!found) {
            return px_rpc_fail(ctx, PX_NOT_FOUND, "campaign.unit_code: no unit %s", unit);
        }
    }
    const char *out_params[3] = {c->id, from, to};
    if (px_db_execp(db, &s_camp_outside, 3, out_params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    long outside = atol(PQgetvalue(res, 0, 0));
    if (outside > 0) {
        char first[11], last[11];
        snprintf(first, sizeof first, "%s", PQgetvalue(res, 0, 1));
        snprintf(last, sizeof last, "%s", PQgetvalue(res, 0, 2));
        PQclear(res);
        return px_rpc_fail(ctx, PX_FAILED_PRECONDITION,
                           "campaign.starts_on, campaign.ends_on: %ld existing wave(s) from %s to "
                           "%s would fall outside %s..%s",
                           outside, first, last, from, to);
    }
    PQclear(res);
    const char *params[5] = {c->id, c->name, from, to, unit};
    if (px_db_execp(db, &s_camp_upsert, 5, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    bool changed = PQntuples(res) > 0; /* identical to what is stored: no row, no audit */
    *changed_p = changed;
    rep->created = changed && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    char id_json[CAMP_AUDIT_MAX / 2], detail[CAMP_AUDIT_MAX];
    px_json_escape(id_json, sizeof id_json, c->id);
    snprintf(detail, sizeof detail, "{\"id\":%s,\"created\":%s}", id_json,
             rep->created ? "true" : "false");
    if (changed && (code = roster_audit(ctx, detail)) != PX_OK) {
        return code;
    }
    if (px_db_execp(db, &s_camp_get, 1, id_param, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    rep->campaign = PQntuples(res) == 1 ? s_campaign_from_row(ctx, res, 0) : NULL;
    PQclear(res);
    return rep->campaign ? PX_OK : s_oom(ctx);
}

static px_code_t s_upsert_campaign(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                   ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__UpsertCampaignRequest *req =
        (const Phuxanh__Roster__V1__UpsertCampaignRequest *)request;
    Phuxanh__Roster__V1__UpsertCampaignResponse *rep =
        (Phuxanh__Roster__V1__UpsertCampaignResponse *)reply;
    if (!req->campaign) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "campaign: must be set");
    }
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    bool changed = false;
    if (px_db_begin(db, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    px_code_t code = roster_campaign_apply(ctx, req->campaign, rep, &changed);
    if (code != PX_OK) {
        return code;
    }
    if (px_db_commit(db, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    return PX_OK;
}

/* ------------------------------------------------------------------- GetCampaign */

static px_code_t s_get_campaign(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__GetCampaignRequest *req =
        (const Phuxanh__Roster__V1__GetCampaignRequest *)request;
    Phuxanh__Roster__V1__GetCampaignResponse *rep =
        (Phuxanh__Roster__V1__GetCampaignResponse *)reply;
    px_code_t code = s_id_check(ctx, "id", req->id);
    if (code != PX_OK) {
        return code;
    }
    const char *params[1] = {req->id};
    PGresult *res = NULL;
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_camp_get, 1, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return px_rpc_fail(ctx, PX_NOT_FOUND, "id: no campaign %s", req->id);
    }
    rep->campaign = s_campaign_from_row(ctx, res, 0);
    PQclear(res);
    return rep->campaign ? PX_OK : s_oom(ctx);
}

/* ------------------------------------------------------------------- ListCampaigns */

static px_code_t s_list_campaigns(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                  ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__ListCampaignsRequest *req =
        (const Phuxanh__Roster__V1__ListCampaignsRequest *)request;
    Phuxanh__Roster__V1__ListCampaignsResponse *rep =
        (Phuxanh__Roster__V1__ListCampaignsResponse *)reply;
    int size;
    const char *key;
    px_code_t code = roster_page_size(ctx, req->page_size, CAMP_PAGE_DEFAULT, CAMP_PAGE_MAX, &size);
    if (code != PX_OK || (code = roster_token_read(ctx, req->page_token, &key)) != PX_OK) {
        return code;
    }
    /* The key is "starts_on\x1fid" of the previous page's last campaign. */
    const char *after_day = NULL, *after_id = "";
    char day[11];
    if (*key) {
        const char *sep = strchr(key, '\x1f');
        int32_t days;
        char given[11] = "";
        if (sep && sep - key == 10) {
            memcpy(given, key, 10);
            given[10] = '\0';
        }
        if (!sep || !px_day_parse(given, &days) || !s_id_ok(sep + 1)) {
            return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                               "page_token: not a token from this service");
        }
        px_day_format(days, day);
        after_day = day;
        after_id = sep + 1;
    }
    char limit[12];
    snprintf(limit, sizeof limit, "%d", size + 1);
    const char *params[3] = {after_day, after_id, limit};
    PGresult *res = NULL;
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_camp_list, 3, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    int rows = PQntuples(res);
    int take = rows > size ? size : rows;
    rep->campaigns = px_rpc_ctx_alloc(ctx, ((size_t)take + 1) * sizeof *rep->campaigns);
    if (!rep->campaigns) {
        PQclear(res);
        return s_oom(ctx);
    }
    for (int r = 0; r < take; r++) {
        if (!(rep->campaigns[r] = s_campaign_from_row(ctx, res, r))) {
            PQclear(res);
            return s_oom(ctx);
        }
        rep->n_campaigns++;
    }
    PQclear(res);
    if (rows > size && take > 0) {
        const Phuxanh__Roster__V1__Campaign *last = rep->campaigns[take - 1];
        char *k = px_rpc_ctx_printf(ctx, "%s\x1f%s", last->starts_on, last->id);
        if (!k || !(rep->next_page_token = roster_token_make(ctx, k))) {
            return s_oom(ctx);
        }
    }
    return PX_OK;
}

/* ------------------------------------------------------------------- UpsertWaves */

/* What one wave of the batch resolves to, by row; its key "campaign\x1fday" is in the sorted
 * roster_key_t array beside it. */
typedef struct {
    char day[11];
    int32_t capacity; /* as written: 0 resolved */
} s_wave_t;

typedef struct {
    const char *id;
    char from[11], to[11];
} s_span_t;

static int s_span_cmp(const void *a, const void *b)
{
    return strcmp(((const s_span_t *)a)->id, ((const s_span_t *)b)->id);
}

/* Each row alone, then keys given twice. Fills w by row and keys (sorted on return). */
static px_code_t s_waves_check_rows(px_rpc_ctx_t *ctx, roster_errors_t *e,
                                    Phuxanh__Roster__V1__Wave **waves, size_t n, s_wave_t *w,
                                    roster_key_t *keys)
{
    for (size_t i = 0; i < n; i++) {
        const Phuxanh__Roster__V1__Wave *v = waves[i];
        int32_t days;
        keys[i] = (roster_key_t){"", i};
        w[i].capacity = v->capacity;
        if (!v->campaign_id || !*v->campaign_id) {
            roster_row_fail(e, i, "campaign_id", PX_INVALID_ARGUMENT, "must be set");
            continue;
        }
        if (!s_id_ok(v->campaign_id)) {
            roster_row_fail(e, i, "campaign_id", PX_INVALID_ARGUMENT,
                            "must be 1 to %d lower-case ASCII letters, digits or '-'", CAMP_ID_MAX);
            continue;
        }
        if (!v->day || !*v->day) {
            roster_row_fail(e, i, "day", PX_INVALID_ARGUMENT, "must be set (YYYY-MM-DD)");
            continue;
        }
        if (!px_day_parse(v->day, &days)) {
            roster_row_fail(e, i, "day", PX_INVALID_ARGUMENT,
                            "\"%.40s\" is not a calendar day (YYYY-MM-DD)",
                            px_utf8_valid(v->day, strlen(v->day)) ? v->day : "?");
            continue;
        }
        px_day_format(days, w[i].day);
        if (v->capacity < 0 || v->capacity > WAVE_CAPACITY_MAX) {
            roster_row_fail(
                e, i, "capacity", PX_INVALID_ARGUMENT,
                "%d is not between 1 and %d (0: 30 for a new wave, unchanged otherwise)",
                v->capacity, WAVE_CAPACITY_MAX);
        }
        if (!(keys[i].key = px_rpc_ctx_printf(ctx, "%s\x1f%s", v->campaign_id, w[i].day))) {
            return s_oom(ctx);
        }
    }
    qsort(keys, n, sizeof *keys, roster_key_cmp);
    for (size_t i = 1; i < n; i++) {
        size_t row = keys[i].row;
        if (*keys[i].key && strcmp(keys[i].key, keys[i - 1].key) == 0) {
            roster_row_fail(e, row, "", PX_INVALID_ARGUMENT,
                            "wave %s %s appears twice in the batch (first at index %zu)",
                            waves[row]->campaign_id, w[row].day, keys[i - 1].row);
        }
    }
    return PX_OK;
}

/* The campaigns the batch names (locked FOR SHARE): unknown ones and days outside them. */
static px_code_t s_waves_check_campaigns(px_rpc_ctx_t *ctx, roster_errors_t *e,
                                         Phuxanh__Roster__V1__Wave **waves, size_t n,
                                         const s_wave_t *w, const roster_key_t *keys)
{
    const char **ids = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *ids);
    if (!ids) {
        return s_oom(ctx);
    }
    size_t nid = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = waves[keys[i].row]->campaign_id;
        if (*keys[i].key && (nid == 0 || strcmp(ids[nid - 1], id) != 0)) {
            ids[nid++] = id; /* keys are sorted: ids come out distinct */
        }
    }
    const char *arr = roster_array(ctx, ids, nid);
    if (!arr) {
        return s_oom(ctx);
    }
    PGresult *res = NULL;
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_wave_campaigns, 1, &arr, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    size_t ns = (size_t)PQntuples(res);
    s_span_t *spans = px_rpc_ctx_alloc(ctx, (ns + 1) * sizeof *spans);
    if (!spans) {
        PQclear(res);
        return s_oom(ctx);
    }
    for (size_t r = 0; r < ns; r++) {
        spans[r].id = px_rpc_ctx_strdup(ctx, PQgetvalue(res, (int)r, 0));
        snprintf(spans[r].from, sizeof spans[r].from, "%s", PQgetvalue(res, (int)r, 1));
        snprintf(spans[r].to, sizeof spans[r].to, "%s", PQgetvalue(res, (int)r, 2));
        if (!spans[r].id) {
            PQclear(res);
            return s_oom(ctx);
        }
    }
    PQclear(res);
    qsort(spans, ns, sizeof *spans, s_span_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t row = keys[i].row;
        if (!*keys[i].key || e->by_row[row]) {
            continue;
        }
        s_span_t k = {.id = waves[row]->campaign_id};
        const s_span_t *s = bsearch(&k, spans, ns, sizeof k, s_span_cmp);
        if (!s) {
            roster_row_fail(e, row, "campaign_id", PX_NOT_FOUND, "no campaign %s", k.id);
        } else if (strcmp(w[row].day, s->from) < 0 || strcmp(w[row].day, s->to) > 0) {
            roster_row_fail(e, row, "day", PX_FAILED_PRECONDITION,
                            "%s is outside campaign %s (%s to %s)", w[row].day, k.id, s->from,
                            s->to);
        }
    }
    return PX_OK;
}

/* The waves that exist already (locked FOR UPDATE): resolves capacity 0 and refuses a
 * capacity below the seats taken. */
static px_code_t s_waves_check_existing(px_rpc_ctx_t *ctx, roster_errors_t *e,
                                        Phuxanh__Roster__V1__Wave **waves, size_t n, s_wave_t *w,
                                        const roster_key_t *keys)
{
    const char **col = px_rpc_ctx_alloc(ctx, (2 * n + 1) * sizeof *col);
    if (!col) {
        return s_oom(ctx);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (*keys[i].key) {
            col[k] = waves[keys[i].row]->campaign_id;
            col[n + k] = w[keys[i].row].day;
            k++;
        }
    }
    const char *params[2] = {roster_array(ctx, col, k), roster_array(ctx, col + n, k)};
    if (!params[0] || !params[1]) {
        return s_oom(ctx);
    }
    PGresult *res = NULL;
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_wave_existing, 2, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    for (int r = 0; r < PQntuples(res); r++) {
        char key[CAMP_ID_MAX + 16];
        snprintf(key, sizeof key, "%s\x1f%s", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
        const roster_key_t *found = roster_key_find(keys, n, key);
        if (!found) {
            continue;
        }
        s_wave_t *x = &w[found->row];
        int32_t stored = atoi(PQgetvalue(res, r, 2)), taken = atoi(PQgetvalue(res, r, 3));
        if (x->capacity == 0) {
            x->capacity = stored;
        } else if (x->capacity < taken) {
            roster_row_fail(e, found->row, "capacity", PX_FAILED_PRECONDITION,
                            "%d is below the %d seats already taken in wave %s", x->capacity, taken,
                            x->day);
        }
    }
    PQclear(res);
    for (size_t i = 0; i < n; i++) {
        if (w[i].capacity == 0) {
            w[i].capacity = WAVE_CAPACITY_DEFAULT;
        }
    }
    return PX_OK;
}

px_code_t roster_waves_apply(px_rpc_ctx_t *ctx, Phuxanh__Roster__V1__Wave **waves, size_t n,
                             roster_errors_t *e, Phuxanh__Roster__V1__BatchUpsertResponse *rep)
{
    s_wave_t *w = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *w);
    roster_key_t *keys = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *keys);
    if (!w || !keys) {
        return s_oom(ctx);
    }
    px_code_t code = s_waves_check_rows(ctx, e, waves, n, w, keys);
    if (code != PX_OK) {
        return code;
    }
    if ((code = s_waves_check_campaigns(ctx, e, waves, n, w, keys)) != PX_OK ||
        (code = s_waves_check_existing(ctx, e, waves, n, w, keys)) != PX_OK) {
        return code;
    }
    if (e->oom) {
        return s_oom(ctx);
    }
    if (e->count > 0 || n == 0) {
        return PX_OK;
    }

    const char **col = px_rpc_ctx_alloc(ctx, 3 * n * sizeof *col);
    if (!col) {
        return s_oom(ctx);
    }
    for (size_t i = 0; i < n; i++) {
        const s_wave_t *x = &w[keys[i].row];
        col[i] = waves[keys[i].row]->campaign_id;
        col[n + i] = x->day;
        if (!(col[2 * n + i] = px_rpc_ctx_printf(ctx, "%d", x->capacity))) {
            return s_oom(ctx);
        }
    }
    const char *params[3] = {roster_array(ctx, col, n), roster_array(ctx, col + n, n),
                             roster_array(ctx, col + 2 * n, n)};
    if (!params[0] || !params[1] || !params[2]) {
        return s_oom(ctx);
    }
    return roster_upsert_write(ctx, &s_wave_upsert, 3, params, n, rep);
}

static px_code_t s_upsert_waves(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__UpsertWavesRequest *req =
        (const Phuxanh__Roster__V1__UpsertWavesRequest *)request;
    Phuxanh__Roster__V1__BatchUpsertResponse *rep =
        (Phuxanh__Roster__V1__BatchUpsertResponse *)reply;
    size_t n = req->n_waves;
    bool done = false;
    roster_errors_t e;
    px_code_t code = roster_upsert_start(ctx, "waves", n, req->validate_only, rep, &e, &done);
    if (code != PX_OK || done) {
        return code;
    }
    code = roster_waves_apply(ctx, req->waves, n, &e, rep);
    if (code != PX_OK) {
        return code;
    }
    return roster_upsert_end(ctx, &e, req->validate_only, rep);
}

/* ------------------------------------------------------------------- ListWaves */

static px_code_t s_list_waves(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                              ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__ListWavesRequest *req =
        (const Phuxanh__Roster__V1__ListWavesRequest *)request;
    Phuxanh__Roster__V1__ListWavesResponse *rep = (Phuxanh__Roster__V1__ListWavesResponse *)reply;
    px_code_t code = s_id_check(ctx, "campaign_id", req->campaign_id);
    if (code != PX_OK) {
        return code;
    }
    char from[11], to[11], after[11];
    const char *from_p = NULL, *to_p = NULL, *after_p = NULL;
    if (req->from_day && *req->from_day) {
        if ((code = roster_day(ctx, "from_day", req->from_day, from)) != PX_OK) {
            return code;
        }
        from_p = from;
    }
    if (req->to_day && *req->to_day) {
        if ((code = roster_day(ctx, "to_day", req->to_day, to)) != PX_OK) {
            return code;
        }
        to_p = to;
    }
    if (from_p && to_p && strcmp(to, from) < 0) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "to_day: %s is before from_day %s", to, from);
    }
    int size;
    const char *key;
    if ((code = roster_page_size(ctx, req->page_size, CAMP_PAGE_DEFAULT, CAMP_PAGE_MAX, &size)) !=
            PX_OK ||
        (code = roster_token_read(ctx, req->page_token, &key)) != PX_OK) {
        return code;
    }
    if (*key) {
        int32_t days;
        if (!px_day_parse(key, &days)) {
            return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                               "page_token: not a token from this service");
        }
        px_day_format(days, after);
        after_p = after;
    }
    px_db_t *db = px_rpc_ctx_db(ctx);
    PGresult *res = NULL;
    px_status_t st;
    const char *id_param[1] = {req->campaign_id};
    if (px_db_execp(db, &s_camp_get, 1, id_param, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    int exists = PQntuples(res);
    PQclear(res);
    if (!exists) {
        return px_rpc_fail(ctx, PX_NOT_FOUND, "campaign_id: no campaign %s", req->campaign_id);
    }
    char limit[12];
    snprintf(limit, sizeof limit, "%d", size + 1);
    const char *params[5] = {req->campaign_id, from_p, to_p, after_p, limit};
    if (px_db_execp(db, &s_wave_list, 5, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    int rows = PQntuples(res);
    int take = rows > size ? size : rows;
    rep->waves = px_rpc_ctx_alloc(ctx, ((size_t)take + 1) * sizeof *rep->waves);
    if (!rep->waves) {
        PQclear(res);
        return s_oom(ctx);
    }
    for (int r = 0; r < take; r++) {
        Phuxanh__Roster__V1__Wave *v = px_rpc_ctx_alloc(ctx, sizeof *v);
        if (!v) {
            PQclear(res);
            return s_oom(ctx);
        }
        phuxanh__roster__v1__wave__init(v);
        v->campaign_id = px_rpc_ctx_strdup(ctx, req->campaign_id);
        v->day = px_rpc_ctx_strdup(ctx, PQgetvalue(res, r, 0));
        v->capacity = atoi(PQgetvalue(res, r, 1));
        v->assigned = atoi(PQgetvalue(res, r, 2));
        v->checked_in = atoi(PQgetvalue(res, r, 3));
        if (!v->campaign_id || !v->day) {
            PQclear(res);
            return s_oom(ctx);
        }
        rep->waves[rep->n_waves++] = v;
    }
    PQclear(res);
    if (rows > size && take > 0) {
        rep->next_page_token = roster_token_make(ctx, rep->waves[take - 1]->day);
        if (!rep->next_page_token) {
            return s_oom(ctx);
        }
    }
    return PX_OK;
}

const px_rpc_method_t roster_campaigns_methods[] = {
    {"UpsertCampaign", s_upsert_campaign}, {"GetCampaign", s_get_campaign},
    {"ListCampaigns", s_list_campaigns},   {"UpsertWaves", s_upsert_waves},
    {"ListWaves", s_list_waves},
};
const size_t roster_campaigns_methods_count =
    sizeof roster_campaigns_methods / sizeof roster_campaigns_methods[0];
