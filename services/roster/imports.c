/*
 * imports.c - all-or-nothing imports: BeginImport, StageRows, CommitImport,
 * AbortImport.
 *
 * An operator's spreadsheet of 50,000 volunteers is more than one call may carry,
 * yet it must be written whole or not at all: a bad phone number on line 49,991
 * must leave the 49,989 good rows before it unwritten, and a bad volunteer must
 * leave the new units of the same import unwritten too. So rows are staged first
 * (import_rows, each a serialized Unit, Volunteer, Campaign or Wave keyed by kind
 * and index) and CommitImport applies all of them in one transaction, through the
 * very checks and upserts of UpsertUnits, UpsertVolunteers, UpsertCampaign and
 * UpsertWaves (roster_*_apply): units, then volunteers, campaigns and waves, so a
 * campaign may name a unit of the same import and a wave a campaign of it. Every
 * kind is checked even after one was refused, so one commit names every bad row;
 * then, if anything was refused, the transaction rolls back. Either way the
 * import ends and its staged rows are dropped.
 *
 * Staging is idempotent (a row is kept by kind and index, a retry replaces it), and
 * the commit compares what was staged with what the client says it sent, so a
 * batch lost on the way cannot turn into a smaller import. An import belongs to the
 * caller that began it; it expires an hour after its last StageRows, and the next
 * BeginImport sweeps expired ones away.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/pbutil.h"
#include "roster.h"

/* Rows in one import: CommitImport holds all of them in memory at once (about 1 KiB each
 * with their checks), so this bounds a commit's memory to a few hundred MiB. */
#define IMPORT_MAX_ROWS 200000
/* Imports open at once: each holds staged rows until it ends or expires. */
#define IMPORT_MAX_OPEN 16
/* Row errors listed in one CommitImportResponse (over all kinds): each is up to a status
 * message long, and the reply must stay well inside the message size bound. The count of
 * refused rows is always complete. */
#define IMPORT_MAX_ERRORS 1000
/* An import id: 32 lower-case hex digits (a random UUID without its dashes). */
#define IMPORT_ID_LEN 32
#define IMPORT_KINDS 4

/* ------------------------------------------------------------------- SQL */

static const px_db_stmt_t s_sweep = {
    "imports_sweep",
    "DELETE FROM imports WHERE expires_at < now()",
};

static const px_db_stmt_t s_open_count = {
    "imports_open_count",
    "SELECT count(*) FROM imports",
};

static const px_db_stmt_t s_insert = {
    "imports_insert",
    "INSERT INTO imports (id, caller, on_behalf_of, expires_at)"
    " VALUES (replace(gen_random_uuid()::text, '-', ''), $1, $2, now() + interval '1 hour')"
    " RETURNING id, (extract(epoch FROM expires_at) * 1000000)::bigint",
};

/* Moves the expiry on and answers the owner; no row when there is no such live import. */
static const px_db_stmt_t s_touch = {
    "imports_touch",
    "UPDATE imports SET expires_at = now() + interval '1 hour'"
    " WHERE id = $1 AND expires_at >= now() RETURNING caller",
};

static const px_db_stmt_t s_stage = {
    "imports_stage",
    "INSERT INTO import_rows (import_id, kind, seq, row)"
    " SELECT $1, $2::smallint, $3::int + (x.o - 1)::int, x.r"
    " FROM unnest($4::bytea[]) WITH ORDINALITY AS x(r, o)"
    " ON CONFLICT (import_id, kind, seq) DO UPDATE SET row = EXCLUDED.row",
};

static const px_db_stmt_t s_staged = {
    "imports_staged",
    "SELECT count(*) FILTER (WHERE kind = $2::smallint), count(*)"
    " FROM import_rows WHERE import_id = $1",
};

static const px_db_stmt_t s_claim = {
    "imports_claim",
    "SELECT caller FROM imports WHERE id = $1 AND expires_at >= now() FOR UPDATE",
};

/* Per kind: how many rows and the highest index (indexes are distinct and not negative, so
 * they are exactly 0..n-1 when max + 1 = n). */
static const px_db_stmt_t s_kinds = {
    "imports_kinds",
    "SELECT kind, count(*), max(seq) FROM import_rows WHERE import_id = $1 GROUP BY kind",
};

static const px_db_stmt_t s_rows = {
    "imports_rows",
    "SELECT row FROM import_rows WHERE import_id = $1 AND kind = $2::smallint ORDER BY seq",
};

static const px_db_stmt_t s_delete = {
    "imports_delete",
    "DELETE FROM imports WHERE id = $1",
};

/* ------------------------------------------------------------------- helpers */

static const char *const s_kind_names[IMPORT_KINDS + 1] = {"", "units", "volunteers", "campaigns",
                                                           "waves"};

static px_code_t s_oom(px_rpc_ctx_t *ctx)
{
    return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
}

static px_code_t s_id_check(px_rpc_ctx_t *ctx, const char *id)
{
    size_t n = id ? strlen(id) : 0;
    bool ok = n == IMPORT_ID_LEN;
    for (size_t i = 0; ok && i < n; i++) {
        ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');
    }
    if (!ok) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "import_id: must be the id BeginImport answered (%d hex digits)",
                           IMPORT_ID_LEN);
    }
    return PX_OK;
}

/* The import must be the caller's own: an id seen in a log is not a key to someone else's. */
static px_code_t s_owner_check(px_rpc_ctx_t *ctx, const char *id, const char *owner)
{
    if (strcmp(owner, px_rpc_ctx_caller(ctx)) != 0) {
        return px_rpc_fail(ctx, PX_PERMISSION_DENIED, "import_id: import %s was begun by %s", id,
                           owner);
    }
    return PX_OK;
}

/* Opens the call's transaction and takes the open import `id` with stmt (which locks it and
 * answers its owner): PX_OK with *found false when there is no such open import, PX_OK with
 * *found true when it is the caller's, and the call failed otherwise. */
static px_code_t s_take_import(px_rpc_ctx_t *ctx, const px_db_stmt_t *stmt, const char *id,
                               bool *found)
{
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    PGresult *res = NULL;
    const char *p[1] = {id};
    *found = false;
    if (px_db_begin(db, &st) != PX_OK || px_db_execp(db, stmt, 1, p, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    char owner[256] = "";
    *found = PQntuples(res) > 0;
    if (*found) {
        snprintf(owner, sizeof owner, "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return *found ? s_owner_check(ctx, id, owner) : PX_OK;
}

static px_code_t s_no_open_import(px_rpc_ctx_t *ctx, const char *id)
{
    return px_rpc_fail(ctx, PX_NOT_FOUND,
                       "import_id: no open import %s (committed, aborted or expired)", id);
}

static void *s_pb_alloc(void *data, size_t size)
{
    return px_rpc_ctx_alloc(data, size);
}

static void s_pb_free(void *data, void *p)
{
    (void)data;
    (void)p; /* the call's arena frees everything at once */
}

/* "\x" and hex: how bytea travels inside a text array parameter. */
static char *s_hex(px_rpc_ctx_t *ctx, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *out = px_rpc_ctx_alloc(ctx, 2 + 2 * n + 1);
    if (!out) {
        return NULL;
    }
    out[0] = '\\';
    out[1] = 'x';
    for (size_t i = 0; i < n; i++) {
        out[2 + 2 * i] = hex[p[i] >> 4];
        out[2 + 2 * i + 1] = hex[p[i] & 15];
    }
    out[2 + 2 * n] = '\0';
    return out;
}

/* ------------------------------------------------------------------- BeginImport */

static px_code_t s_begin_import(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    (void)request;
    Phuxanh__Roster__V1__BeginImportResponse *rep =
        (Phuxanh__Roster__V1__BeginImportResponse *)reply;
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    PGresult *res = NULL;
    if (px_db_begin(db, &st) != PX_OK || px_db_execp(db, &s_sweep, 0, NULL, NULL, &st) != PX_OK ||
        px_db_execp(db, &s_open_count, 0, NULL, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    long open = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (open >= IMPORT_MAX_OPEN) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED,
                           "%ld imports are open, at most %d: commit or abort one, or wait an "
                           "hour for abandoned ones to expire",
                           open, IMPORT_MAX_OPEN);
    }
    const char *params[2] = {px_rpc_ctx_caller(ctx), px_rpc_ctx_on_behalf_of(ctx)};
    if (px_db_execp(db, &s_insert, 2, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    rep->import_id = px_rpc_ctx_strdup(ctx, PQgetvalue(res, 0, 0));
    rep->expires_at = px_ts_new(ctx, strtoll(PQgetvalue(res, 0, 1), NULL, 10));
    PQclear(res);
    if (!rep->import_id || !rep->expires_at) {
        return s_oom(ctx);
    }
    if (px_db_commit(db, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    return PX_OK;
}

/* ------------------------------------------------------------------- StageRows */

static px_code_t s_stage_rows(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                              ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__StageRowsRequest *req =
        (const Phuxanh__Roster__V1__StageRowsRequest *)request;
    Phuxanh__Roster__V1__StageRowsResponse *rep = (Phuxanh__Roster__V1__StageRowsResponse *)reply;
    px_code_t code = s_id_check(ctx, req->import_id);
    if (code != PX_OK) {
        return code;
    }
    const size_t counts[IMPORT_KINDS + 1] = {0, req->n_units, req->n_volunteers, req->n_campaigns,
                                             req->n_waves};
    void *const *lists[IMPORT_KINDS + 1] = {
        NULL, (void *const *)req->units, (void *const *)req->volunteers,
        (void *const *)req->campaigns, (void *const *)req->waves};
    int kind = 0, kinds = 0;
    for (int k = 1; k <= IMPORT_KINDS; k++) {
        if (counts[k] > 0) {
            kind = k;
            kinds++;
        }
    }
    if (kinds != 1) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "units, volunteers, campaigns, waves: exactly one must have rows "
                           "(%d do)",
                           kinds);
    }
    size_t n = counts[kind];
    if (n > ROSTER_MAX_BATCH) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "%s: %zu rows, at most %d in one call",
                           s_kind_names[kind], n, ROSTER_MAX_BATCH);
    }
    if (req->first_index < 0 || (size_t)req->first_index + n > IMPORT_MAX_ROWS) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "first_index: %d with %zu rows is outside 0..%d (the most one import "
                           "holds)",
                           req->first_index, n, IMPORT_MAX_ROWS);
    }
    /* Serialized as they came: CommitImport checks them, with everything else staged. */
    const char **rows = px_rpc_ctx_alloc(ctx, n * sizeof *rows);
    if (!rows) {
        return s_oom(ctx);
    }
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessage *m = lists[kind][i];
        size_t len = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = px_rpc_ctx_alloc(ctx, len + 1);
        if (!buf) {
            return s_oom(ctx);
        }
        protobuf_c_message_pack(m, buf);
        if (!(rows[i] = s_hex(ctx, buf, len))) {
            return s_oom(ctx);
        }
    }
    const char *arr = roster_array(ctx, rows, n);
    if (!arr) {
        return s_oom(ctx);
    }

    bool found;
    if ((code = s_take_import(ctx, &s_touch, req->import_id, &found)) != PX_OK) {
        return code;
    }
    if (!found) {
        return s_no_open_import(ctx, req->import_id);
    }
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    PGresult *res = NULL;
    char kind_s[12], first[12];
    snprintf(kind_s, sizeof kind_s, "%d", kind);
    snprintf(first, sizeof first, "%d", req->first_index);
    const char *params[4] = {req->import_id, kind_s, first, arr};
    if (px_db_execp(db, &s_stage, 4, params, NULL, &st) != PX_OK ||
        px_db_execp(db, &s_staged, 2, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    long of_kind = atol(PQgetvalue(res, 0, 0)), total = atol(PQgetvalue(res, 0, 1));
    PQclear(res);
    if (total > IMPORT_MAX_ROWS) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "%s: the import would hold %ld rows, at most %d", s_kind_names[kind],
                           total, IMPORT_MAX_ROWS);
    }
    if (px_db_commit(db, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    rep->staged = (int32_t)of_kind;
    return PX_OK;
}

/* ------------------------------------------------------------------- CommitImport */

typedef struct {
    px_rpc_ctx_t *ctx;
    const char *import_id;
    ProtobufCAllocator alloc;
    size_t listed; /* row errors put in the reply so far, over all kinds */
} s_commit_t;

/* The staged rows of one kind, unpacked on the call's arena, in index order. */
static px_code_t s_load(s_commit_t *c, int kind, const ProtobufCMessageDescriptor *desc, size_t n,
                        ProtobufCMessage ***out)
{
    px_rpc_ctx_t *ctx = c->ctx;
    char kind_s[12];
    snprintf(kind_s, sizeof kind_s, "%d", kind);
    const char *params[2] = {c->import_id, kind_s};
    PGresult *res = NULL;
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_rows, 2, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    ProtobufCMessage **rows = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *rows);
    px_code_t code = rows && (size_t)PQntuples(res) == n ? PX_OK : PX_RESOURCE_EXHAUSTED;
    for (size_t i = 0; code == PX_OK && i < n; i++) {
        size_t len = 0;
        unsigned char *bytes =
            PQunescapeBytea((const unsigned char *)PQgetvalue(res, (int)i, 0), &len);
        if (!bytes) {
            code = PX_RESOURCE_EXHAUSTED;
            break;
        }
        rows[i] = protobuf_c_message_unpack(desc, &c->alloc, len, bytes);
        PQfreemem(bytes);
        if (!rows[i]) {
            /* Staged by StageRows from a message it had parsed: this is not the client's. */
            code = PX_INTERNAL;
        }
    }
    PQclear(res);
    if (code == PX_INTERNAL) {
        return px_rpc_fail(ctx, PX_INTERNAL, "%s: a staged row does not parse", s_kind_names[kind]);
    }
    if (code != PX_OK) {
        return s_oom(ctx);
    }
    *out = rows;
    return PX_OK;
}

/* Campaigns one by one, as UpsertCampaign takes them; a refusal is the row's error. */
static px_code_t s_apply_campaigns(px_rpc_ctx_t *ctx, Phuxanh__Roster__V1__Campaign **camps,
                                   size_t n, roster_errors_t *e,
                                   Phuxanh__Roster__V1__BatchUpsertResponse *rep)
{
    roster_key_t *keys = px_rpc_ctx_alloc(ctx, (n + 1) * sizeof *keys);
    if (!keys) {
        return s_oom(ctx);
    }
    for (size_t i = 0; i < n; i++) {
        keys[i] = (roster_key_t){camps[i]->id ? camps[i]->id : "", i};
    }
    roster_keys_unique(e, keys, n); /* the same campaign twice: which one would win? */
    for (size_t i = 0; i < n; i++) {
        if (e->by_row[i]) {
            continue;
        }
        Phuxanh__Roster__V1__UpsertCampaignResponse one =
            PHUXANH__ROSTER__V1__UPSERT_CAMPAIGN_RESPONSE__INIT;
        bool changed = false;
        px_code_t code = roster_campaign_apply(ctx, camps[i], &one, &changed);
        if (code == PX_INVALID_ARGUMENT || code == PX_NOT_FOUND || code == PX_FAILED_PRECONDITION) {
            /* Refused before anything was written: the transaction goes on, for the other
             * rows' checks. */
            roster_row_fail(e, i, "", code, "%s", px_rpc_ctx_status(ctx)->message);
            continue;
        }
        if (code != PX_OK) {
            return code;
        }
        if (!changed) {
            rep->unchanged++;
        } else if (one.created) {
            rep->inserted++;
        } else {
            rep->updated++;
        }
    }
    return e->oom ? s_oom(ctx) : PX_OK;
}

/* One kind: load, check and write (inside the commit's transaction), and its result. */
static px_code_t s_apply_kind(s_commit_t *c, int kind, size_t n,
                              Phuxanh__Roster__V1__ImportResult *res, size_t *refused)
{
    static const ProtobufCMessageDescriptor *const descs[IMPORT_KINDS + 1] = {
        NULL,
        &phuxanh__roster__v1__unit__descriptor,
        &phuxanh__roster__v1__volunteer__descriptor,
        &phuxanh__roster__v1__campaign__descriptor,
        &phuxanh__roster__v1__wave__descriptor,
    };
    px_rpc_ctx_t *ctx = c->ctx;
    ProtobufCMessage **rows = NULL;
    px_code_t code = s_load(c, kind, descs[kind], n, &rows);
    if (code != PX_OK) {
        return code;
    }
    roster_errors_t e;
    if (!roster_errors_init(&e, ctx, n + 1)) {
        return s_oom(ctx);
    }
    e.n = n;
    Phuxanh__Roster__V1__BatchUpsertResponse counts =
        PHUXANH__ROSTER__V1__BATCH_UPSERT_RESPONSE__INIT;
    switch (kind) {
    case PHUXANH__ROSTER__V1__IMPORT_KIND__IMPORT_KIND_UNITS:
        code = roster_units_apply(ctx, (Phuxanh__Roster__V1__Unit **)rows, n, &e, &counts);
        break;
    case PHUXANH__ROSTER__V1__IMPORT_KIND__IMPORT_KIND_VOLUNTEERS:
        code =
            roster_volunteers_apply(ctx, (Phuxanh__Roster__V1__Volunteer **)rows, n, &e, &counts);
        break;
    case PHUXANH__ROSTER__V1__IMPORT_KIND__IMPORT_KIND_CAMPAIGNS:
        code = s_apply_campaigns(ctx, (Phuxanh__Roster__V1__Campaign **)rows, n, &e, &counts);
        break;
    default:
        code = roster_waves_apply(ctx, (Phuxanh__Roster__V1__Wave **)rows, n, &e, &counts);
        break;
    }
    if (code != PX_OK) {
        return code;
    }
    if (e.oom) {
        return s_oom(ctx);
    }
    res->kind = (Phuxanh__Roster__V1__ImportKind)kind;
    res->refused = (int32_t)e.count;
    *refused += e.count;
    if (e.count == 0) {
        res->inserted = counts.inserted;
        res->updated = counts.updated;
        res->unchanged = counts.unchanged;
        return PX_OK;
    }
    size_t room = IMPORT_MAX_ERRORS - c->listed;
    size_t take = e.count < room ? e.count : room;
    res->errors = px_rpc_ctx_alloc(ctx, (take + 1) * sizeof *res->errors);
    if (!res->errors) {
        return s_oom(ctx);
    }
    for (size_t i = 0; i < n && res->n_errors < take; i++) {
        if (e.by_row[i]) {
            res->errors[res->n_errors++] = e.by_row[i];
        }
    }
    c->listed += res->n_errors;
    return PX_OK;
}

/* Ends an import that did not commit: its rows go, in a transaction of their own. */
static px_code_t s_drop(px_rpc_ctx_t *ctx, const char *id)
{
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    px_db_rollback(db);
    if (px_db_execp(db, &s_delete, 1, &id, NULL, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    return PX_OK;
}

static px_code_t s_commit_import(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                 ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__CommitImportRequest *req =
        (const Phuxanh__Roster__V1__CommitImportRequest *)request;
    Phuxanh__Roster__V1__CommitImportResponse *rep =
        (Phuxanh__Roster__V1__CommitImportResponse *)reply;
    px_code_t code = s_id_check(ctx, req->import_id);
    if (code != PX_OK) {
        return code;
    }
    const int32_t expected[IMPORT_KINDS + 1] = {0, req->units, req->volunteers, req->campaigns,
                                                req->waves};
    for (int k = 1; k <= IMPORT_KINDS; k++) {
        if (expected[k] < 0 || expected[k] > IMPORT_MAX_ROWS) {
            return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "%s: %d is not 0 to %d", s_kind_names[k],
                               expected[k], IMPORT_MAX_ROWS);
        }
    }
    bool found;
    if ((code = s_take_import(ctx, &s_claim, req->import_id, &found)) != PX_OK) {
        return code;
    }
    if (!found) {
        return s_no_open_import(ctx, req->import_id);
    }
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    PGresult *res = NULL;
    const char *id[1] = {req->import_id};

    /* What was staged must be exactly what the client sent. */
    long staged[IMPORT_KINDS + 1] = {0}, top[IMPORT_KINDS + 1] = {0};
    if (px_db_execp(db, &s_kinds, 1, id, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    for (int r = 0; r < PQntuples(res); r++) {
        int k = atoi(PQgetvalue(res, r, 0));
        if (k >= 1 && k <= IMPORT_KINDS) {
            staged[k] = atol(PQgetvalue(res, r, 1));
            top[k] = atol(PQgetvalue(res, r, 2));
        }
    }
    PQclear(res);
    for (int k = 1; k <= IMPORT_KINDS; k++) {
        if (staged[k] != expected[k] || (staged[k] > 0 && top[k] + 1 != staged[k])) {
            code = px_rpc_fail(ctx, PX_FAILED_PRECONDITION,
                               "%s: %ld rows staged (indexes up to %ld) where %d were sent; "
                               "nothing was written",
                               s_kind_names[k], staged[k], staged[k] ? top[k] : -1L, expected[k]);
            px_code_t dropped = s_drop(ctx, req->import_id);
            return dropped == PX_OK ? code : dropped;
        }
    }

    s_commit_t c = {ctx, req->import_id, {s_pb_alloc, s_pb_free, ctx}, 0};
    rep->results = px_rpc_ctx_alloc(ctx, IMPORT_KINDS * sizeof *rep->results);
    if (!rep->results) {
        return s_oom(ctx);
    }
    size_t refused = 0;
    for (int k = 1; k <= IMPORT_KINDS; k++) {
        if (staged[k] == 0) {
            continue;
        }
        Phuxanh__Roster__V1__ImportResult *r = px_rpc_ctx_alloc(ctx, sizeof *r);
        if (!r) {
            return s_oom(ctx);
        }
        phuxanh__roster__v1__import_result__init(r);
        if ((code = s_apply_kind(&c, k, (size_t)staged[k], r, &refused)) != PX_OK) {
            return code;
        }
        rep->results[rep->n_results++] = r;
    }
    if (refused > 0 || req->validate_only) {
        if (refused > 0) {
            for (size_t i = 0; i < rep->n_results; i++) {
                rep->results[i]->inserted = rep->results[i]->updated = 0;
                rep->results[i]->unchanged = 0;
            }
        }
        return s_drop(ctx, req->import_id);
    }
    if (px_db_execp(db, &s_delete, 1, id, NULL, &st) != PX_OK || px_db_commit(db, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    rep->committed = true;
    return PX_OK;
}

/* ------------------------------------------------------------------- AbortImport */

static px_code_t s_abort_import(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__AbortImportRequest *req =
        (const Phuxanh__Roster__V1__AbortImportRequest *)request;
    Phuxanh__Roster__V1__AbortImportResponse *rep =
        (Phuxanh__Roster__V1__AbortImportResponse *)reply;
    px_code_t code = s_id_check(ctx, req->import_id);
    if (code != PX_OK) {
        return code;
    }
    bool found;
    if ((code = s_take_import(ctx, &s_claim, req->import_id, &found)) != PX_OK || !found) {
        return code; /* not found: already ended, and aborting twice is not an error */
    }
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    const char *id[1] = {req->import_id};
    if (px_db_execp(db, &s_delete, 1, id, NULL, &st) != PX_OK || px_db_commit(db, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    rep->aborted = true;
    return PX_OK;
}

const px_rpc_method_t roster_imports_methods[] = {
    {"BeginImport", s_begin_import},
    {"StageRows", s_stage_rows},
    {"CommitImport", s_commit_import},
    {"AbortImport", s_abort_import},
};
const size_t roster_imports_methods_count =
    sizeof roster_imports_methods / sizeof roster_imports_methods[0];
