/*
 * common.c - helpers every roster handler uses: audit rows, paging tokens,
 * day and code checks, database failures turned into call status, array
 * parameters, and the row errors and sorted keys of the batch upserts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/dbfail.h"
#include "phuxanh/pbutil.h"
#include "phuxanh/text.h"
#include "roster.h"

static const px_db_stmt_t s_audit_insert = {
    "roster_audit_insert",
    "INSERT INTO audit (caller, on_behalf_of, method, request_id, detail) "
    "VALUES ($1, $2, $3, $4, $5::jsonb)",
};

px_code_t roster_audit(px_rpc_ctx_t *ctx, const char *detail_json)
{
    const char *params[5] = {px_rpc_ctx_caller(ctx), px_rpc_ctx_on_behalf_of(ctx),
                             px_rpc_ctx_method(ctx), px_rpc_ctx_request_id(ctx), detail_json};
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_audit_insert, 5, params, NULL, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    return PX_OK;
}

px_code_t roster_db_fail(px_rpc_ctx_t *ctx, const px_status_t *st)
{
    return px_db_fail_call(ctx, "roster database", st);
}

px_code_t roster_upsert_start(px_rpc_ctx_t *ctx, const char *field, size_t n, bool validate_only,
                              Phuxanh__Roster__V1__BatchUpsertResponse *rep, roster_errors_t *e,
                              bool *done)
{
    *done = n == 0;
    if (n > ROSTER_MAX_BATCH) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "%s: %zu rows, at most %d in one call", field,
                           n, ROSTER_MAX_BATCH);
    }
    rep->committed = n == 0 && !validate_only;
    if (*done) {
        return PX_OK;
    }
    if (!roster_errors_init(e, ctx, n)) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    px_status_t st;
    if (px_db_begin(px_rpc_ctx_db(ctx), &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    return PX_OK;
}

px_code_t roster_upsert_write(px_rpc_ctx_t *ctx, const px_db_stmt_t *stmt, int nparams,
                              const char *const *params, size_t n,
                              Phuxanh__Roster__V1__BatchUpsertResponse *rep)
{
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    PGresult *res = NULL;
    if (px_db_execp(db, stmt, nparams, params, &res, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    rep->inserted = atoi(PQgetvalue(res, 0, 0));
    rep->updated = atoi(PQgetvalue(res, 0, 1));
    rep->unchanged = (int32_t)n - rep->inserted - rep->updated;
    PQclear(res);
    /* Only a batch that changed something is a write worth an audit row (rolled back with the
     * rest when the transaction is). */
    if (rep->inserted + rep->updated > 0) {
        char detail[160];
        snprintf(detail, sizeof detail,
                 "{\"rows\":%zu,\"inserted\":%d,\"updated\":%d,\"unchanged\":%d}", n, rep->inserted,
                 rep->updated, rep->unchanged);
        return roster_audit(ctx, detail);
    }
    return PX_OK;
}

px_code_t roster_upsert_end(px_rpc_ctx_t *ctx, const roster_errors_t *e, bool validate_only,
                            Phuxanh__Roster__V1__BatchUpsertResponse *rep)
{
    px_db_t *db = px_rpc_ctx_db(ctx);
    if (e->oom) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    if (e->count > 0) {
        px_db_rollback(db);
        rep->inserted = rep->updated = rep->unchanged = 0;
        return roster_errors_reply(e, rep);
    }
    if (validate_only) {
        px_db_rollback(db);
        return PX_OK;
    }
    /* Deferred constraints (the units' parent key) are checked here. */
    px_status_t st;
    if (px_db_commit(db, &st) != PX_OK) {
        return roster_db_fail(ctx, &st);
    }
    rep->committed = true;
    return PX_OK;
}

px_code_t roster_page_size(px_rpc_ctx_t *ctx, int32_t asked, int32_t def, int32_t max, int *out)
{
    if (asked < 0) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "page_size: must not be negative (%d)", asked);
    }
    *out = asked == 0 ? def : (asked > max ? max : asked);
    return PX_OK;
}

/* Tokens are "p1." then the key in hex: opaque to clients, trivially checked here. */
char *roster_token_make(px_rpc_ctx_t *ctx, const char *key)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(key);
    char *t = px_rpc_ctx_alloc(ctx, 3 + 2 * n + 1);
    if (!t) {
        return NULL;
    }
    memcpy(t, "p1.", 3);
    for (size_t i = 0; i < n; i++) {
        t[3 + 2 * i] = hex[(unsigned char)key[i] >> 4];
        t[3 + 2 * i + 1] = hex[(unsigned char)key[i] & 15];
    }
    t[3 + 2 * n] = '\0';
    return t;
}

static int s_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

px_code_t roster_token_read(px_rpc_ctx_t *ctx, const char *token, const char **key)
{
    if (!token || !*token) {
        *key = "";
        return PX_OK;
    }
    size_t n = strlen(token);
    if (n < 3 || strncmp(token, "p1.", 3) != 0 || (n - 3) % 2 != 0 || n > 4096) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "page_token: not a token from this service");
    }
    size_t len = (n - 3) / 2;
    char *k = px_rpc_ctx_alloc(ctx, len + 1);
    if (!k) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (size_t i = 0; i < len; i++) {
        int hi = s_hexval(token[3 + 2 * i]), lo = s_hexval(token[3 + 2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                               "page_token: not a token from this service");
        }
        k[i] = (char)(hi << 4 | lo);
        if (k[i] == '\0') {
            return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                               "page_token: not a token from this service");
        }
    }
    k[len] = '\0';
    if (!px_utf8_valid(k, len)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "page_token: not a token from this service");
    }
    *key = k;
    return PX_OK;
}

px_code_t roster_day(px_rpc_ctx_t *ctx, const char *field, const char *value, char *out)
{
    int32_t days;
    if (!value || !*value) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "%s: must be set (YYYY-MM-DD)", field);
    }
    if (!px_day_parse(value, &days)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "%s: \"%.40s\" is not a calendar day (YYYY-MM-DD)", field,
                           px_utf8_valid(value, strlen(value)) ? value : "?");
    }
    px_day_format(days, out);
    return PX_OK;
}

px_code_t roster_code(px_rpc_ctx_t *ctx, const char *field, const char *value)
{
    if (!value || !*value) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "%s: must be set", field);
    }
    size_t n = strlen(value);
    bool ok = n <= ROSTER_CODE_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = value[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    }
    if (!ok) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "%s: must be 1 to %d ASCII letters, digits or '-'", field,
                           ROSTER_CODE_MAX);
    }
    return PX_OK;
}

Google__Protobuf__Timestamp *roster_ts_from_pg(px_rpc_ctx_t *ctx, const PGresult *res, int row,
                                               int col)
{
    if (PQgetisnull(res, row, col)) {
        return NULL;
    }
    return px_ts_new(ctx, strtoll(PQgetvalue(res, row, col), NULL, 10));
}

/* A PostgreSQL array literal of n strings. Every element is quoted and '\' and '"' escaped,
 * so commas, braces, quotes, backslashes and spaces in names reach the database as they are;
 * a NULL item is SQL NULL. */
char *roster_array(px_rpc_ctx_t *ctx, const char *const *items, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++) {
        len += items[i] ? 2 * strlen(items[i]) + 3 : 5;
    }
    char *out = px_rpc_ctx_alloc(ctx, len);
    if (!out) {
        return NULL;
    }
    char *p = out;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }
        if (!items[i]) {
            memcpy(p, "NULL", 4);
            p += 4;
            continue;
        }
        *p++ = '"';
        for (const char *s = items[i]; *s; s++) {
            if (*s == '"' || *s == '\\') {
                *p++ = '\\';
            }
            *p++ = *s;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

bool roster_errors_init(roster_errors_t *e, px_rpc_ctx_t *ctx, size_t n)
{
    *e = (roster_errors_t){ctx, px_rpc_ctx_alloc(ctx, n * sizeof *e->by_row), n, 0, false};
    return e->by_row != NULL;
}

void roster_row_fail(roster_errors_t *e, size_t row, const char *field, px_code_t code,
                     const char *fmt, ...)
{
    if (e->by_row[row]) {
        return;
    }
    Phuxanh__Roster__V1__RowError *r = px_rpc_ctx_alloc(e->ctx, sizeof *r);
    char msg[PX_STATUS_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!r) {
        e->oom = true;
        return;
    }
    phuxanh__roster__v1__row_error__init(r);
    r->index = (int32_t)row;
    r->field = px_rpc_ctx_strdup(e->ctx, field);
    r->message = px_rpc_ctx_strdup(e->ctx, msg);
    r->code = (int32_t)code;
    if (!r->field || !r->message) {
        e->oom = true;
        return;
    }
    e->by_row[row] = r;
    e->count++;
}

void roster_row_text(roster_errors_t *e, size_t row, const char *field, const char *s, size_t max,
                     bool required)
{
    px_status_t st;
    if (px_text_check(field, s, max, required, &st) != PX_OK) {
        size_t fl = strlen(field);
        const char *m = st.message;
        if (strncmp(m, field, fl) == 0 && m[fl] == ':' && m[fl + 1] == ' ') {
            m += fl + 2;
        }
        roster_row_fail(e, row, field, st.code, "%s", m);
    }
}

px_code_t roster_errors_reply(const roster_errors_t *e,
                              Phuxanh__Roster__V1__BatchUpsertResponse *rep)
{
    rep->errors = px_rpc_ctx_alloc(e->ctx, e->count * sizeof *rep->errors);
    if (!rep->errors) {
        return px_rpc_fail(e->ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (size_t i = 0; i < e->n; i++) {
        if (e->by_row[i]) {
            rep->errors[rep->n_errors++] = e->by_row[i];
        }
    }
    return PX_OK;
}

int roster_key_cmp(const void *a, const void *b)
{
    const roster_key_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c) {
        return c;
    }
    return x->row < y->row ? -1 : x->row > y->row;
}

const roster_key_t *roster_key_find(const roster_key_t *keys, size_t n, const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(keys[mid].key, key);
        if (c == 0) {
            return &keys[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

void roster_keys_unique(roster_errors_t *e, roster_key_t *keys, size_t n)
{
    qsort(keys, n, sizeof *keys, roster_key_cmp);
    for (size_t i = 1; i < n; i++) {
        if (*keys[i].key && strcmp(keys[i].key, keys[i - 1].key) == 0) {
            roster_row_fail(e, keys[i].row, "", PX_INVALID_ARGUMENT,
                            "code %s appears twice in the batch (first at index %zu)", keys[i].key,
                            keys[i - 1].row);
            keys[i].row = keys[i - 1].row; /* a run of duplicates all point at the first */
        }
    }
}
