/*
 * roster.h - what the roster service's files share: its state, the method
 * tables each file contributes, and helpers for the things every handler does
 * (audit, paging, days, database failures).
 *
 * Each file owns one group of methods and exports its table; main.c joins
 * them. Handlers follow validate -> load -> decide -> write -> reply, with
 * their SQL as named statements at the top of their file.
 */
#ifndef PX_ROSTER_H
#define PX_ROSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "phuxanh/db.h"
#include "phuxanh/log.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "phuxanh/rpc.h"

/* Bounds on what one call may carry (the proto's comments state them to clients). */
#define ROSTER_MAX_BATCH 10000
#define ROSTER_MAX_CODES 1000
#define ROSTER_MAX_DUTY_QUERIES 10000
#define ROSTER_NAME_MAX 200
#define ROSTER_CODE_MAX 32

/* Shared by all workers; read-only after start. */
typedef struct {
    int plan_progress_timeout_ms; /* budget for asking activation GetProgress while planning */
    int noshow_lookback_days;     /* how far back a no-show puts a volunteer last in line */
} roster_t;

/* Method tables, one per file. */
extern const px_rpc_method_t roster_units_methods[];
extern const size_t roster_units_methods_count;
extern const px_rpc_method_t roster_volunteers_methods[];
extern const size_t roster_volunteers_methods_count;
extern const px_rpc_method_t roster_campaigns_methods[];
extern const size_t roster_campaigns_methods_count;
extern const px_rpc_method_t roster_assignments_methods[];
extern const size_t roster_assignments_methods_count;
extern const px_rpc_method_t roster_duty_methods[];
extern const size_t roster_duty_methods_count;
extern const px_rpc_method_t roster_planner_methods[];
extern const size_t roster_planner_methods_count;

/* Appends one row to the audit table (inside the caller's transaction): caller, method and
 * request id from ctx, detail a JSON object text or NULL. */
px_code_t roster_audit(px_rpc_ctx_t *ctx, const char *detail_json);

/* Turns a database failure into the call's status (message kept, UNAVAILABLE stays). */
px_code_t roster_db_fail(px_rpc_ctx_t *ctx, const px_status_t *st);

/* page_size: 0 -> def, above max -> max, negative -> INVALID_ARGUMENT. */
px_code_t roster_page_size(px_rpc_ctx_t *ctx, int32_t asked, int32_t def, int32_t max, int *out);
/* Keyset paging: a token carries the last key of the previous page (several parts joined
 * by '\x1f' for composite keys). make returns an arena string; read gives "" for an empty
 * token and INVALID_ARGUMENT "page_token: ..." for a malformed one. */
char *roster_token_make(px_rpc_ctx_t *ctx, const char *key);
px_code_t roster_token_read(px_rpc_ctx_t *ctx, const char *token, const char **key);

/* A required "YYYY-MM-DD" field: copies it to out (11 bytes) or fails INVALID_ARGUMENT
 * naming the field. */
px_code_t roster_day(px_rpc_ctx_t *ctx, const char *field, const char *value, char *out);
/* A required code: 1..ROSTER_CODE_MAX of [A-Za-z0-9-]; INVALID_ARGUMENT naming the field. */
px_code_t roster_code(px_rpc_ctx_t *ctx, const char *field, const char *value);

/* PostgreSQL text of a timestamptz read as "extract(epoch from x) * 1e6" bigint -> arena
 * Timestamp (NULL for SQL NULL). */
Google__Protobuf__Timestamp *roster_ts_from_pg(px_rpc_ctx_t *ctx, const PGresult *res, int row,
                                               int col);

/* A PostgreSQL text[] literal of n strings on the call's arena: every element quoted, backslash and
 * '"' escaped, NULL items as SQL NULL. For passing a batch as one array parameter. */
char *roster_array(px_rpc_ctx_t *ctx, const char *const *items, size_t n);

#endif
