/*
 * common.c - helpers every activation handler uses: audit rows, database
 * failures turned into call status, code checks, and array literals for the
 * unnest() statements that keep a batch's round trips constant.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "phuxanh/clock.h"
#include "phuxanh/dbfail.h"

static const px_db_stmt_t s_audit_insert = {
    "act_audit_insert",
    "INSERT INTO audit (caller, on_behalf_of, method, request_id, detail) "
    "VALUES ($1, $2, $3, $4, $5::jsonb)",
};

void act_audit_step(px_rpc_ctx_t *ctx, const char *detail_json, const char *params[5],
                    px_db_step_t *step)
{
    params[0] = px_rpc_ctx_caller(ctx);
    params[1] = px_rpc_ctx_on_behalf_of(ctx);
    params[2] = px_rpc_ctx_method(ctx);
    params[3] = px_rpc_ctx_request_id(ctx);
    params[4] = detail_json;
    *step = (px_db_step_t){.stmt = &s_audit_insert, .nparams = 5, .params = params};
}

px_code_t act_audit(px_rpc_ctx_t *ctx, const char *detail_json)
{
    const char *params[5] = {px_rpc_ctx_caller(ctx), px_rpc_ctx_on_behalf_of(ctx),
                             px_rpc_ctx_method(ctx), px_rpc_ctx_request_id(ctx), detail_json};
    px_status_t st;
    if (px_db_execp(px_rpc_ctx_db(ctx), &s_audit_insert, 5, params, NULL, &st) != PX_OK) {
        return act_db_fail(ctx, &st);
    }
    return PX_OK;
}

px_code_t act_db_fail(px_rpc_ctx_t *ctx, const px_status_t *st)
{
    return px_db_fail_call(ctx, "activation database", st);
}

px_code_t act_person_reader_check(px_rpc_ctx_t *ctx)
{
    const act_t *act = px_rpc_ctx_state(ctx);
    const char *caller = px_rpc_ctx_caller(ctx);
    size_t n = strlen(caller);
    /* Whole names only: "gate" is not "gateway". */
    for (const char *p = act->person_readers; n > 0 && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, caller, n) == 0) {
            return PX_OK;
        }
        p += len + (end != NULL);
    }
    return px_rpc_fail(ctx, PX_PERMISSION_DENIED,
                       "caller \"%s\" may not read or change one person's records "
                       "(person-readers)",
                       act_echo(caller));
}

int act_shard(px_rpc_ctx_t *ctx)
{
    return px_rpc_ctx_worker(ctx);
}

int64_t act_roster_deadline(px_rpc_ctx_t *ctx)
{
    int64_t budget = px_rpc_ctx_started_us(ctx) + (int64_t)ACT_ROSTER_BUDGET_MS * 1000;
    int64_t parent = px_rpc_ctx_deadline_us(ctx);
    return parent > 0 && parent < budget ? parent : budget;
}

const char *act_echo(const char *code)
{
    int run = 0;
    for (const char *p = code; p && *p; p++) {
        run = (*p >= '0' && *p <= '9') ? run + 1 : 0;
        if (run >= 12) {
            return "(not shown)";
        }
    }
    return code ? code : "";
}

bool act_code_ok(const char *s, size_t max)
{
    if (!s || !*s) {
        return false;
    }
    size_t n = strnlen(s, max + 1);
    if (n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

void act_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void act_arr_init(act_arr_t *a)
{
    memset(a, 0, sizeof *a);
}

static void s_reserve(act_arr_t *a, size_t more)
{
    if (a->oom || a->len + more + 2 <= a->cap) {
        return;
    }
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + more + 2) {
        cap *= 2;
    }
    char *b = realloc(a->buf, cap);
    if (!b) {
        a->oom = true;
        return;
    }
    a->buf = b;
    a->cap = cap;
}

void act_arr_add(act_arr_t *a, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    s_reserve(a, 2 * n + 8);
    if (a->oom) {
        return;
    }
    char sep = a->len == 0 ? '{' : ',';
    a->buf[a->len++] = sep;
    if (!s) {
        memcpy(a->buf + a->len, "NULL", 4);
        a->len += 4;
        return;
    }
    /* Quoted, with '"' and '\' escaped: the array input syntax's rule. */
    a->buf[a->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            a->buf[a->len++] = '\\';
        }
        a->buf[a->len++] = s[i];
    }
    a->buf[a->len++] = '"';
}

void act_arr_addf(act_arr_t *a, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    act_arr_add(a, tmp);
}

const char *act_arr_end(act_arr_t *a)
{
    s_reserve(a, 2);
    if (a->oom) {
        return NULL;
    }
    if (a->len == 0) {
        a->buf[a->len++] = '{';
    }
    a->buf[a->len++] = '}';
    a->buf[a->len] = '\0';
    return a->buf;
}

void act_arr_free(act_arr_t *a)
{
    free(a->buf);
    memset(a, 0, sizeof *a);
}
