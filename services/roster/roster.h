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
extern const px_rpc_method_t roster_imports_methods[];
extern const size_t roster_imports_methods_count;

/* Appends one row to the audit table (inside the caller's transaction): caller, whom it acts
 * for (x-on-behalf-of, "" when nobody), method and request id from ctx, detail a JSON object
 * text or NULL. */
px_code_t roster_audit(px_rpc_ctx_t *ctx, const char *detail_json);

/* Turns a database failure into the call's status (message kept, UNAVAILABLE stays). */
px_code_t roster_db_fail(px_rpc_ctx_t *ctx, const px_status_t *st);

/* The write every batch upsert shares, inside the caller's open transaction: runs stmt (one
 * row: inserted, updated) for n rows, fills rep's counts and audits a batch that changed
 * something. Commits nothing: an import applies several kinds in one transaction. */
px_code_t roster_upsert_write(px_rpc_ctx_t *ctx, const px_db_stmt_t *stmt, int nparams,
                              const char *const *params, size_t n,
                              Phuxanh__Roster__V1__BatchUpsertResponse *rep);
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

/* A batch upsert's row errors: at most one per row (the first problem found), kept by row so
 * they come out in index order whatever pass found them. Every row is checked before any is
 * written, so one call can name all the rows a client must fix. Lives on the call's arena. */
typedef struct {
    px_rpc_ctx_t *ctx;
    Phuxanh__Roster__V1__RowError **by_row; /* n slots; NULL while the row is fine */
    size_t n;
    size_t count; /* rows refused so far */
    bool oom;     /* an error could not be recorded: the call must fail RESOURCE_EXHAUSTED */
} roster_errors_t;

/* Ready for a batch of n rows (n > 0); false when out of memory. */
bool roster_errors_init(roster_errors_t *e, px_rpc_ctx_t *ctx, size_t n);
/* The start every batch upsert shares: INVALID_ARGUMENT ("<field>: N rows, at most ...") for a
 * batch over ROSTER_MAX_BATCH; an empty one is answered at once (nothing to write, so all of it
 * is committed unless validate_only), *done set. Otherwise the row-error collector e is ready
 * and the call's transaction open, for the kind's apply function and roster_upsert_end. */
px_code_t roster_upsert_start(px_rpc_ctx_t *ctx, const char *field, size_t n, bool validate_only,
                              Phuxanh__Roster__V1__BatchUpsertResponse *rep, roster_errors_t *e,
                              bool *done);
/* Refuses row with a message that does not repeat the field (the RowError names it); a row
 * already refused keeps its first error. */
void roster_row_fail(roster_errors_t *e, size_t row, const char *field, px_code_t code,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* px_text_check of one field of row, its message without the "field: " prefix. */
void roster_row_text(roster_errors_t *e, size_t row, const char *field, const char *s, size_t max,
                     bool required);
/* The refused rows into rep->errors, in index order (committed stays false). */
px_code_t roster_errors_reply(const roster_errors_t *e,
                              Phuxanh__Roster__V1__BatchUpsertResponse *rep);

/* A batch row's key (a code, or parts joined by '\x1f') and the row it came from. Sorted with
 * roster_key_cmp, a batch finds its own rows by key and sees its duplicates side by side. */
typedef struct {
    const char *key;
    size_t row;
} roster_key_t;

/* qsort order: key in byte order (COLLATE "C"), then row. */
int roster_key_cmp(const void *a, const void *b);
/* An entry with this key in keys sorted by roster_key_cmp, or NULL. Of equal keys it answers the
 * one the bisection meets, not the first: after roster_keys_unique they all name the first row
 * anyway, and UpsertWaves (which refuses its repeats) keeps the answer it has always had. */
const roster_key_t *roster_key_find(const roster_key_t *keys, size_t n, const char *key);
/* Sorts keys and refuses each later row that repeats a code ("" keys, from rows whose code was
 * refused, are left alone); the repeats then point at the first row, the one whose values count. */
void roster_keys_unique(roster_errors_t *e, roster_key_t *keys, size_t n);

/* Ends a batch upsert's transaction: with row errors in e, rolls back and answers them (counts
 * zero); rolls back for validate_only; else commits and sets rep->committed. */
px_code_t roster_upsert_end(px_rpc_ctx_t *ctx, const roster_errors_t *e, bool validate_only,
                            Phuxanh__Roster__V1__BatchUpsertResponse *rep);

/* The checks and writes of the batch upserts, inside the caller's open transaction, for any
 * number of rows (the callers bound it): UpsertUnits and the others are these between a begin
 * and roster_upsert_end, and CommitImport runs them all in one transaction. Rows refused land
 * in e (made for n rows) and then nothing of this kind is written; rep gets the counts of a
 * write. A failure that is not a row's (the database, memory) is the returned code. */
px_code_t roster_units_apply(px_rpc_ctx_t *ctx, Phuxanh__Roster__V1__Unit **units, size_t n,
                             roster_errors_t *e, Phuxanh__Roster__V1__BatchUpsertResponse *rep);
px_code_t roster_volunteers_apply(px_rpc_ctx_t *ctx, Phuxanh__Roster__V1__Volunteer **vols,
                                  size_t n, roster_errors_t *e,
                                  Phuxanh__Roster__V1__BatchUpsertResponse *rep);
px_code_t roster_waves_apply(px_rpc_ctx_t *ctx, Phuxanh__Roster__V1__Wave **waves, size_t n,
                             roster_errors_t *e, Phuxanh__Roster__V1__BatchUpsertResponse *rep);
/* UpsertCampaign's checks and write inside the caller's open transaction: a refusal is the
 * returned code with the call's status set (px_rpc_ctx_status), as the handler answers it;
 * *changed tells whether a row was written. */
px_code_t roster_campaign_apply(px_rpc_ctx_t *ctx, const Phuxanh__Roster__V1__Campaign *c,
                                Phuxanh__Roster__V1__UpsertCampaignResponse *rep, bool *changed);

#endif
