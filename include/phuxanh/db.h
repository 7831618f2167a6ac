/*
 * db.h - PostgreSQL access for services: one px_db_t per worker thread.
 *
 * Connecting retries with backoff; a lost connection is noticed on the next
 * use and re-established there, so a database that comes back is reached
 * again without restarting the process. Failures come back as gRPC codes:
 * a connection problem is UNAVAILABLE, a serialization failure ABORTED, and
 * so on, with PostgreSQL's own message in the status. Only parameterized
 * queries exist here; statements declared with px_db_stmt_t are prepared once
 * per connection on first use.
 */
#ifndef PHUXANH_DB_H
#define PHUXANH_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phuxanh/log.h"
#include "phuxanh/status.h"

typedef struct px_db_t px_db_t;

/* A named statement, declared once at the top of the file that uses it. */
typedef struct {
    const char *name; /* unique per process, e.g. "roster_unit_get" */
    const char *sql;  /* $1..$n parameters */
} px_db_stmt_t;

/* One migration: version from the file name's number, name from the rest. */
typedef struct {
    int version;
    const char *name;
    const char *sql;
} px_migration_t;

/* Does not connect yet. url is a libpq conninfo or URI. log may be NULL. */
px_db_t *px_db_new(const char *url, px_log_t *log);
void px_db_destroy(px_db_t **self_p);

/* Connects (if not connected) retrying with backoff until deadline_us (px_clock_us scale);
 * 0 means a single attempt. UNAVAILABLE when it never succeeded. */
px_code_t px_db_connect(px_db_t *self, int64_t deadline_us, px_status_t *st);

/* How many times a lost connection was made again (each DB-RECONNECT log line). Read by the
 * thread that owns self. */
uint64_t px_db_reconnects(const px_db_t *self);

/* The live connection or NULL. For pipelining and COPY, which need libpq directly. */
PGconn *px_db_conn(px_db_t *self);

/* Runs sql with text parameters (NULL entries are SQL NULL). On success *res (if res is not
 * NULL) holds the result, which the caller PQclear()s. Connects first when needed. */
px_code_t px_db_exec(px_db_t *self, const char *sql, int nparams, const char *const *params,
                     PGresult **res, px_status_t *st);
/* Same for a declared statement, prepared on this connection on first use. */
px_code_t px_db_execp(px_db_t *self, const px_db_stmt_t *stmt, int nparams,
                      const char *const *params, PGresult **res, px_status_t *st);

/* One statement of a pipeline (px_db_pipeline): a declared statement, or plain SQL when stmt
 * is NULL. want_res: keep its result in res (the caller PQclear()s it); otherwise res stays
 * NULL. */
typedef struct {
    const px_db_stmt_t *stmt;
    const char *sql;
    int nparams;
    const char *const *params;
    bool want_res;
    PGresult *res;
} px_db_step_t;

/* Runs the steps in order as one pipeline (libpq's pipeline mode): everything is sent in one
 * flush and the results read in one wait, so n statements cost one round trip, not n. The first
 * step that fails decides the code, and the steps after it do not run (PostgreSQL skips them).
 * Steps may open and close a transaction (plain "BEGIN", "COMMIT"): a COMMIT answered by a
 * ROLLBACK is ABORTED, and a connection lost before COMMIT's answer is UNAVAILABLE saying the
 * transaction may have committed, as px_db_commit says. On failure every res is NULL. */
px_code_t px_db_pipeline(px_db_t *self, px_db_step_t *steps, size_t n, px_status_t *st);

/* The caller's deadline (px_clock_us scale; 0: none) for the statements that follow: one still
 * running when it passes is cancelled and fails DEADLINE_EXCEEDED, so work nobody waits for
 * stops using the database, and the connection stays usable (roll back what was open). COMMIT
 * and ROLLBACK are never cancelled. The RPC server sets it from each call's deadline. */
void px_db_set_deadline(px_db_t *self, int64_t deadline_us);

px_code_t px_db_begin(px_db_t *self, px_status_t *st);
px_code_t px_db_commit(px_db_t *self, px_status_t *st);
/* Never fails from the caller's view; a broken connection is dropped for the next use. */
void px_db_rollback(px_db_t *self);

/* SELECT 1, reconnecting once if needed: OK or UNAVAILABLE. */
px_code_t px_db_ping(px_db_t *self, px_status_t *st);

/* Maps a failed result (or connection) to a code and message. */
px_code_t px_db_result_status(px_db_t *self, const PGresult *res, px_status_t *st);

/* Applies the migrations not yet recorded in schema_migrations, in version order, all in
 * one transaction under an advisory lock derived from lock_name, so that two processes
 * starting together apply each migration once. */
px_code_t px_db_migrate(px_db_t *self, const char *lock_name, const px_migration_t *migrations,
                        size_t count, px_status_t *st);

#endif
