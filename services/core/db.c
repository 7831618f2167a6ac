/*
 * db.c - PostgreSQL access: connect with backoff, prepared statements, error
 * mapping to gRPC codes, reconnection, and the migrations runner.
 *
 * Connecting. The URL is parsed once with PQconninfoParse into keyword/value
 * arrays (never edited as a string, so quoting and URI escapes stay libpq's
 * business). We connect with PQconnectStartParams/PQconnectPoll and poll(2)
 * ourselves, so an attempt never outlives the caller's deadline; each attempt
 * is also bounded by the URL's connect_timeout (S_CONNECT_TIMEOUT_DEFAULT_S if
 * it has none). Failed attempts are retried with exponential backoff.
 *
 * Losing the connection. A failed statement on a connection that is now bad
 * (or an SQLSTATE saying the server is going away) returns UNAVAILABLE and
 * drops the connection; the next call reconnects. The failed statement is
 * never re-run: it may have committed before the connection died, and only
 * the caller knows whether running it again is safe. For the same reason, a
 * connection lost inside a transaction leaves px_db_t refusing work
 * (UNAVAILABLE) until the caller rolls back or begins anew; otherwise the
 * caller's next statements, or its COMMIT, would run on a fresh connection
 * outside the transaction and "succeed".
 *
 * Prepared statements belong to a connection, so the set of names prepared
 * is kept per connection and forgotten on reconnect.
 *
 * Server notices (e.g. "relation already exists, skipping") would be printed
 * to stderr by libpq and break our one-JSON-object-per-line logs, so they go
 * through the logger instead.
 */
#include "phuxanh/db.h"
#include "phuxanh/hash.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "phuxanh/clock.h"

/* Per-attempt bound when the URL gives no connect_timeout: long enough for a server across
 * a WAN, short enough that a dead address is left for the next attempt quickly. */
#define S_CONNECT_TIMEOUT_DEFAULT_S 2
/* Backoff between attempts: quick first retries for a server that is just starting, capped
 * so a long outage is still probed every second. */
#define S_BACKOFF_START_US (50 * 1000)
#define S_BACKOFF_MAX_US (1000 * 1000)

struct px_db_t {
    px_log_t *log; /* not owned; may be NULL */
    /* Connection parameters, NULL-terminated, owned. */
    char **keywords;
    char **values;
    char *parse_error; /* set when the URL did not parse; connecting then fails */
    int64_t attempt_timeout_us;

    PGconn *conn;
    bool broken;         /* conn failed; drop it on the next use */
    bool in_tx;          /* conn was inside a transaction after the last statement */
    bool tx_lost;        /* a connection was lost inside a transaction the caller has not ended */
    int64_t lost_at_us;  /* when a working connection was dropped, for the reconnect log */
    uint64_t reconnects; /* connections made again after one was lost (px_db_reconnects) */

    PGcancel *cancel;    /* for conn: how to cancel what runs on it (PQgetCancel) */
    int64_t deadline_us; /* the caller's deadline for statements (px_clock_us), 0: none */
    bool cancelled;      /* the last wait cancelled its statement at the deadline */

    /* Names of the statements prepared on conn. */
    char **prepared;
    size_t nprepared;
    size_t cap_prepared;
};

/* ------------------------------------------------------------ SQLSTATE table */

typedef struct {
    const char *sqlstate; /* five characters, or a two-character class */
    px_code_t code;
} s_sqlstate_map_t;

/* Exact codes first; classes after, so an exact entry wins over its class. */
static const s_sqlstate_map_t s_sqlstates[] = {
    {"23505", PX_ALREADY_EXISTS},      /* unique_violation */
    {"23503", PX_FAILED_PRECONDITION}, /* foreign_key_violation */
    {"23514", PX_FAILED_PRECONDITION}, /* check_violation */
    {"23502", PX_FAILED_PRECONDITION}, /* not_null_violation */
    {"40001", PX_ABORTED},             /* serialization_failure */
    {"40P01", PX_ABORTED},             /* deadlock_detected */
    {"57014", PX_DEADLINE_EXCEEDED},   /* query_canceled, incl. statement_timeout */
    {"57P01", PX_UNAVAILABLE},         /* admin_shutdown (and pg_terminate_backend) */
    {"57P02", PX_UNAVAILABLE},         /* crash_shutdown */
    {"57P03", PX_UNAVAILABLE},         /* cannot_connect_now */
    {"08", PX_UNAVAILABLE},            /* connection_exception */
    {"22", PX_INVALID_ARGUMENT},       /* data_exception */
    {"53", PX_RESOURCE_EXHAUSTED},     /* insufficient_resources */
};

static px_code_t s_map_sqlstate(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) != 5) {
        return PX_INTERNAL;
    }
    for (size_t i = 0; i < sizeof s_sqlstates / sizeof s_sqlstates[0]; i++) {
        size_t n = strlen(s_sqlstates[i].sqlstate);
        if (strncmp(sqlstate, s_sqlstates[i].sqlstate, n) == 0) {
            return s_sqlstates[i].code;
        }
    }
    return PX_INTERNAL;
}

/* libpq's own messages end in a newline and often add an indented second line of advice;
 * the first line is the fact. */
static void s_first_line(char *dst, size_t cap, const char *msg)
{
    if (!msg || !*msg) {
        msg = "unknown error";
    }
    size_t n = strcspn(msg, "\r\n");
    char line[PX_STATUS_MESSAGE_MAX + 4];
    if (n >= sizeof line) {
        n = sizeof line - 1;
    }
    memcpy(line, msg, n);
    line[n] = '\0';
    px_utf8_copy(dst, cap, line);
}

/* --------------------------------------------------------------- lifecycle */

static int s_push_param(char ***kw, char ***val, size_t *n, const char *k, const char *v)
{
    char **nk = realloc(*kw, (*n + 2) * sizeof *nk);
    if (!nk) {
        return -1;
    }
    *kw = nk;
    nk[*n] = NULL; /* stays terminated if the next realloc fails */
    char **nv = realloc(*val, (*n + 2) * sizeof *nv);
    if (!nv) {
        return -1;
    }
    *val = nv;
    nk[*n] = strdup(k);
    nv[*n] = strdup(v);
    nk[*n + 1] = NULL;
    nv[*n + 1] = NULL;
    if (!nk[*n] || !nv[*n]) {
        free(nk[*n]);
        free(nv[*n]);
        nk[*n] = NULL;
        nv[*n] = NULL;
        return -1;
    }
    (*n)++;
    return 0;
}

static bool s_has_param(char **kw, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kw[i], k) == 0) {
            return true;
        }
    }
    return false;
}

px_db_t *px_db_new(const char *url, px_log_t *log)
{
    px_db_t *self = calloc(1, sizeof *self);
    PQconninfoOption *opts = NULL;
    char *err = NULL;
    bool ok = false;
    if (!self) {
        goto done;
    }
    self->log = log;
    self->attempt_timeout_us = (int64_t)S_CONNECT_TIMEOUT_DEFAULT_S * 1000000;

    opts = PQconninfoParse(url ? url : "", &err);
    if (!opts) {
        /* Kept for px_db_connect to report: a bad URL is a configuration error the caller
         * should see as such, not as a database that is down. */
        char msg[PX_STATUS_MESSAGE_MAX];
        s_first_line(msg, sizeof msg, err ? err : "out of memory");
        self->parse_error = strdup(msg);
        ok = self->parse_error != NULL;
        goto done;
    }
    size_t n = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val) {
            continue;
        }
        if (s_push_param(&self->keywords, &self->values, &n, o->keyword, o->val) != 0) {
            goto done;
        }
        if (strcmp(o->keyword, "connect_timeout") == 0) {
            long s = strtol(o->val, NULL, 10);
            if (s > 0) {
                self->attempt_timeout_us = (int64_t)s * 1000000;
            }
        }
    }
    /* Our strings are UTF-8 end to end (protobuf, JSON); let the server convert if the
     * database was created with another encoding. The application name shows in
     * pg_stat_activity. Neither overrides what the URL says. */
    if (!s_has_param(self->keywords, n, "client_encoding") &&
        s_push_param(&self->keywords, &self->values, &n, "client_encoding", "UTF8") != 0) {
        goto done;
    }
    if (!s_has_param(self->keywords, n, "fallback_application_name") &&
        s_push_param(&self->keywords, &self->values, &n, "fallback_application_name", "phuxanh") !=
            0) {
        goto done;
    }
    ok = true;

done:
    if (opts) {
        PQconninfoFree(opts);
    }
    PQfreemem(err);
    if (!ok) {
        px_db_destroy(&self);
    }
    return self;
}

static void s_forget_prepared(px_db_t *self)
{
    for (size_t i = 0; i < self->nprepared; i++) {
        free(self->prepared[i]);
    }
    self->nprepared = 0;
}

/* Closes the connection; a transaction open on it is lost (see the top of the file). */
static void s_drop(px_db_t *self)
{
    if (self->cancel) {
        PQfreeCancel(self->cancel);
        self->cancel = NULL;
    }
    if (self->conn) {
        PQfinish(self->conn);
        self->conn = NULL;
        if (self->lost_at_us == 0) {
            self->lost_at_us = px_clock_us();
        }
        if (self->in_tx) {
            self->tx_lost = true;
        }
    }
    self->broken = false;
    self->in_tx = false;
    s_forget_prepared(self);
}

void px_db_destroy(px_db_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        px_db_t *self = *self_p;
        s_drop(self);
        free(self->prepared);
        for (size_t i = 0; self->keywords && self->keywords[i]; i++) {
            free(self->keywords[i]);
            free(self->values[i]);
        }
        free(self->keywords);
        free(self->values);
        free(self->parse_error);
        free(self);
        *self_p = NULL;
    }
}

/* -------------------------------------------------------------- connecting */

static void s_notice(void *arg, const PGresult *res)
{
    px_db_t *self = arg;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    px_log_level_t level =
        severity && strcmp(severity, "WARNING") == 0 ? PX_LOG_WARN : PX_LOG_DEBUG;
    px_log_emit(self->log, level, "DB-NOTICE", primary ? primary : "",
                PX_LOG_FIELDS(PX_LS("severity", severity),
                              PX_LS("sqlstate", PQresultErrorField(res, PG_DIAG_SQLSTATE))));
}

/* One connection attempt, bounded by the per-attempt timeout and by deadline_us (if set). */
static px_code_t s_connect_once(px_db_t *self, int64_t deadline_us, px_status_t *st)
{
    int64_t now = px_clock_us();
    int64_t until = now + self->attempt_timeout_us;
    if (deadline_us > now && deadline_us < until) {
        until = deadline_us;
    }
    PGconn *conn = PQconnectStartParams((const char *const *)self->keywords,
                                        (const char *const *)self->values, 0);
    px_code_t code = PX_UNAVAILABLE;
    if (!conn) {
        px_status_set(st, PX_UNAVAILABLE, "cannot connect to PostgreSQL: out of memory");
        goto done;
    }
    /* Per libpq's protocol: before the first PQconnectPoll, act as if it said WRITING. */
    PostgresPollingStatusType ps =
        PQstatus(conn) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
    while (ps != PGRES_POLLING_OK && ps != PGRES_POLLING_FAILED) {
        int64_t left = until - px_clock_us();
        if (left <= 0) {
            px_status_set(st, PX_UNAVAILABLE, "cannot connect to PostgreSQL: timed out");
            goto done;
        }
        struct pollfd pfd = {.fd = PQsocket(conn),
                             .events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        if (pfd.fd >= 0) {
            int rc = poll(&pfd, 1, (int)((left + 999) / 1000));
            if (rc == 0 || (rc < 0 && errno == EINTR)) {
                continue;
            }
            if (rc < 0) {
                px_status_set(st, PX_UNAVAILABLE, "cannot connect to PostgreSQL: poll: %s",
                              strerror(errno));
                goto done;
            }
        }
        ps = PQconnectPoll(conn);
    }
    if (ps == PGRES_POLLING_FAILED) {
        char msg[PX_STATUS_MESSAGE_MAX];
        s_first_line(msg, sizeof msg, PQerrorMessage(conn));
        px_status_set(st, PX_UNAVAILABLE, "cannot connect to PostgreSQL: %s", msg);
        goto done;
    }
    PQsetNoticeReceiver(conn, s_notice, self);
    self->conn = conn;
    conn = NULL;
    self->broken = false;
    self->in_tx = false;
    s_forget_prepared(self);
    code = PX_OK;
    px_status_clear(st);

done:
    if (conn) {
        PQfinish(conn);
    }
    return code;
}

px_code_t px_db_connect(px_db_t *self, int64_t deadline_us, px_status_t *st)
{
    assert(self);
    if (self->conn && !self->broken && PQstatus(self->conn) == CONNECTION_OK) {
        px_status_clear(st);
        return PX_OK;
    }
    s_drop(self);
    if (self->parse_error) {
        return px_status_set(st, PX_INVALID_ARGUMENT, "bad database URL: %s", self->parse_error);
    }
    px_status_t last;
    int64_t backoff = S_BACKOFF_START_US;
    int attempts = 0;
    for (;;) {
        attempts++;
        if (s_connect_once(self, deadline_us, &last) == PX_OK) {
            break;
        }
        int64_t left = deadline_us - px_clock_us();
        if (left <= 0) {
            return px_status_set(st, PX_UNAVAILABLE, "%s (%d attempt%s)", last.message, attempts,
                                 attempts == 1 ? "" : "s");
        }
        px_sleep_us(backoff < left ? backoff : left);
        backoff = backoff * 2 < S_BACKOFF_MAX_US ? backoff * 2 : S_BACKOFF_MAX_US;
    }
    if (self->lost_at_us != 0) {
        int64_t down_ms = (px_clock_us() - self->lost_at_us) / 1000;
        self->lost_at_us = 0;
        self->reconnects++;
        px_log_emit(self->log, PX_LOG_INFO, "DB-RECONNECT", "reconnected to PostgreSQL",
                    PX_LOG_FIELDS(PX_LI("attempts", attempts), PX_LI("down_ms", down_ms)));
    }
    px_status_clear(st);
    return PX_OK;
}

uint64_t px_db_reconnects(const px_db_t *self)
{
    return self->reconnects;
}

PGconn *px_db_conn(px_db_t *self)
{
    assert(self);
    if (self->conn && (self->broken || PQstatus(self->conn) != CONNECTION_OK)) {
        s_drop(self);
    }
    return self->conn;
}

/* ---------------------------------------------------------------- statements */

px_code_t px_db_result_status(px_db_t *self, const PGresult *res, px_status_t *st)
{
    if (res) {
        ExecStatusType es = PQresultStatus(res);
        if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK || es == PGRES_EMPTY_QUERY) {
            px_status_clear(st);
            return PX_OK;
        }
    }
    PGconn *conn = self ? self->conn : NULL;
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    px_code_t code = s_map_sqlstate(sqlstate);
    if (!conn || PQstatus(conn) == CONNECTION_BAD) {
        code = PX_UNAVAILABLE;
    }
    if (code == PX_UNAVAILABLE && self && self->conn) {
        /* Not freed here: the caller may still hold the PGconn from px_db_conn. */
        self->broken = true;
    }
    char msg[PX_STATUS_MESSAGE_MAX];
    if (primary) {
        px_utf8_copy(msg, sizeof msg, primary);
    } else if (res && *PQresultErrorMessage(res)) {
        s_first_line(msg, sizeof msg, PQresultErrorMessage(res));
    } else if (res && PQresultStatus(res) != PGRES_FATAL_ERROR &&
               PQresultStatus(res) != PGRES_NONFATAL_ERROR) {
        snprintf(msg, sizeof msg, "unexpected result %s", PQresStatus(PQresultStatus(res)));
    } else {
        s_first_line(msg, sizeof msg, conn ? PQerrorMessage(conn) : "not connected");
    }
    return px_status_set(st, code, "%s", msg);
}

static bool s_conn_in_tx(PGconn *conn)
{
    PGTransactionStatusType ts = PQtransactionStatus(conn);
    return ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR || ts == PQTRANS_ACTIVE;
}

/* ------------------------------------------------------------- deadlines */

void px_db_set_deadline(px_db_t *self, int64_t deadline_us)
{
    assert(self);
    self->deadline_us = deadline_us > 0 ? deadline_us : 0;
}

/* Asks the server to cancel what runs on conn (it then fails with 57014, which is
 * DEADLINE_EXCEEDED). A failed request leaves the statement to finish: nothing is lost. */
static void s_cancel(px_db_t *self)
{
    if (!self->cancel) {
        self->cancel = PQgetCancel(self->conn);
    }
    char err[256];
    if (self->cancel && PQcancel(self->cancel, err, sizeof err)) {
        self->cancelled = true;
    }
}

/* Waits until a result can be read without blocking. With use_deadline, the statement is
 * cancelled once the caller's deadline passes, and then waited for (the server answers a
 * cancel at once). COMMIT and ROLLBACK are never cancelled: a cancelled COMMIT could not
 * say whether it committed. false when the connection failed. */
static bool s_await_input(px_db_t *self, bool use_deadline, bool *cancel_sent)
{
    PGconn *conn = self->conn;
    while (PQisBusy(conn)) {
        int timeout_ms = -1;
        if (use_deadline && self->deadline_us > 0 && !*cancel_sent) {
            int64_t left = self->deadline_us - px_clock_us();
            if (left <= 0) {
                s_cancel(self);
                *cancel_sent = true;
                continue;
            }
            timeout_ms = (int)((left + 999) / 1000);
        }
        struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
        if (p.fd < 0) {
            return false;
        }
        int n = poll(&p, 1, timeout_ms);
        if (n < 0 && errno != EINTR) {
            return false;
        }
        if (n > 0 && !PQconsumeInput(conn)) {
            return false;
        }
    }
    return true;
}

/* The answer to the one statement just sent, as PQexec gives it: its first error, or else its
 * last result. NULL when the connection failed before any result. */
static PGresult *s_await(px_db_t *self, bool use_deadline)
{
    bool cancel_sent = false;
    self->cancelled = false;
    PGresult *keep = NULL, *r;
    s_await_input(self, use_deadline, &cancel_sent);
    while ((r = PQgetResult(self->conn)) != NULL) {
        bool kept_failed = keep && (PQresultStatus(keep) == PGRES_FATAL_ERROR ||
                                    PQresultStatus(keep) == PGRES_NONFATAL_ERROR);
        if (kept_failed) {
            PQclear(r);
        } else {
            PQclear(keep);
            keep = r;
        }
        if (PQstatus(self->conn) == CONNECTION_BAD) {
            break;
        }
        s_await_input(self, use_deadline, &cancel_sent);
    }
    return keep;
}

/* A statement cancelled at the caller's deadline says so in the caller's terms. */
static px_code_t s_deadline_said(px_db_t *self, px_code_t code, px_status_t *st)
{
    if (code == PX_DEADLINE_EXCEEDED && self->cancelled) {
        code = px_status_set(st, PX_DEADLINE_EXCEEDED,
                             "the call's deadline passed: its database work was cancelled");
    }
    self->cancelled = false;
    return code;
}

/* Makes sure there is a connection to run on: one attempt if there is none. */
static px_code_t s_ready(px_db_t *self, bool check_tx, px_status_t *st)
{
    if (check_tx && self->tx_lost) {
        return px_status_set(st, PX_UNAVAILABLE,
                             "the connection was lost inside a transaction; roll it back first");
    }
    if (self->conn && !self->broken && PQstatus(self->conn) == CONNECTION_OK) {
        return PX_OK;
    }
    px_code_t code = px_db_connect(self, 0, st);
    if (check_tx && self->tx_lost) {
        /* Dropping a connection found dead just now may have lost a transaction too. */
        return px_status_set(st, PX_UNAVAILABLE,
                             "the connection was lost inside a transaction; roll it back first");
    }
    return code;
}

/* Takes ownership of r: hands it to the caller on success, maps and frees it otherwise. */
static px_code_t s_finish(px_db_t *self, PGresult *r, PGresult **res, px_status_t *st)
{
    ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    px_code_t code;
    if (r && (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK || es == PGRES_EMPTY_QUERY)) {
        if (res) {
            *res = r;
            r = NULL;
        }
        px_status_clear(st);
        code = PX_OK;
    } else if (r && es != PGRES_FATAL_ERROR && es != PGRES_NONFATAL_ERROR) {
        /* COPY or another mode these calls cannot drive: the connection is no longer in a
         * state we understand, so start over on a fresh one. */
        code = px_status_set(st, PX_INTERNAL, "unexpected result %s (use px_db_conn for COPY)",
                             PQresStatus(es));
        self->broken = true;
    } else {
        code = px_db_result_status(self, r, st);
    }
    PQclear(r);
    if (self->broken || !self->conn || PQstatus(self->conn) == CONNECTION_BAD) {
        s_drop(self);
    } else {
        self->in_tx = s_conn_in_tx(self->conn);
    }
    return code;
}

static px_code_t s_exec(px_db_t *self, bool check_tx, const char *sql, int nparams,
                        const char *const *params, PGresult **res, px_status_t *st)
{
    px_code_t code = s_ready(self, check_tx, st);
    if (code != PX_OK) {
        return code;
    }
    PGresult *r = PQsendQueryParams(self->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                      ? s_await(self, strcmp(sql, "COMMIT") != 0)
                      : NULL;
    return s_deadline_said(self, s_finish(self, r, res, st), st);
}

px_code_t px_db_exec(px_db_t *self, const char *sql, int nparams, const char *const *params,
                     PGresult **res, px_status_t *st)
{
    assert(self && sql);
    if (res) {
        *res = NULL;
    }
    return s_exec(self, true, sql, nparams, params, res, st);
}

static bool s_is_prepared(const px_db_t *self, const char *name)
{
    for (size_t i = 0; i < self->nprepared; i++) {
        if (strcmp(self->prepared[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* Remembering is an optimisation: when it fails for memory, the next use prepares again,
 * meets "already exists" (42P05) and carries on. */
static void s_remember_prepared(px_db_t *self, const char *name)
{
    if (self->nprepared == self->cap_prepared) {
        size_t cap = self->cap_prepared ? self->cap_prepared * 2 : 16;
        char **grown = realloc(self->prepared, cap * sizeof *grown);
        if (!grown) {
            return;
        }
        self->prepared = grown;
        self->cap_prepared = cap;
    }
    char *copy = strdup(name);
    if (copy) {
        self->prepared[self->nprepared++] = copy;
    }
}

static void s_forget_one(px_db_t *self, const char *name)
{
    for (size_t i = 0; i < self->nprepared; i++) {
        if (strcmp(self->prepared[i], name) == 0) {
            free(self->prepared[i]);
            self->prepared[i] = self->prepared[--self->nprepared];
            return;
        }
    }
}

static bool s_sqlstate_is(const PGresult *r, const char *sqlstate)
{
    const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return s && strcmp(s, sqlstate) == 0;
}

px_code_t px_db_execp(px_db_t *self, const px_db_stmt_t *stmt, int nparams,
                      const char *const *params, PGresult **res, px_status_t *st)
{
    assert(self && stmt && stmt->name && stmt->sql);
    if (res) {
        *res = NULL;
    }
    px_code_t code = s_ready(self, true, st);
    if (code != PX_OK) {
        return code;
    }
    if (!s_is_prepared(self, stmt->name)) {
        PGresult *r =
            PQsendPrepare(self->conn, stmt->name, stmt->sql, 0, NULL) ? s_await(self, true) : NULL;
        /* 42P05: someone prepared it through px_db_conn; it is there, which is what we want. */
        if (PQresultStatus(r) != PGRES_COMMAND_OK && !s_sqlstate_is(r, "42P05")) {
            return s_deadline_said(self, s_finish(self, r, NULL, st), st);
        }
        PQclear(r);
        s_remember_prepared(self, stmt->name);
    }
    PGresult *r = PQsendQueryPrepared(self->conn, stmt->name, nparams, params, NULL, NULL, 0)
                      ? s_await(self, true)
                      : NULL;
    /* 26000: it vanished (DEALLOCATE or DISCARD through px_db_conn); prepare it next time. */
    if (s_sqlstate_is(r, "26000")) {
        s_forget_one(self, stmt->name);
    }
    return s_deadline_said(self, s_finish(self, r, res, st), st);
}

/* ------------------------------------------------------------- transactions */

px_code_t px_db_begin(px_db_t *self, px_status_t *st)
{
    assert(self);
    /* Beginning anew means the caller has given up whatever transaction was lost. */
    self->tx_lost = false;
    return s_exec(self, true, "BEGIN", 0, NULL, NULL, st);
}

px_code_t px_db_commit(px_db_t *self, px_status_t *st)
{
    assert(self);
    PGresult *r = NULL;
    bool had_conn = self->conn != NULL && !self->tx_lost;
    px_code_t code = s_exec(self, true, "COMMIT", 0, NULL, &r, st);
    if (code == PX_OK && strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
        /* COMMIT of a transaction in which a statement failed "succeeds" as a ROLLBACK. */
        code =
            px_status_set(st, PX_ABORTED, "transaction rolled back: a statement in it had failed");
    } else if (code == PX_UNAVAILABLE && had_conn && self->tx_lost) {
        code = px_status_set(st, PX_UNAVAILABLE,
                             "connection lost during COMMIT; the transaction may have committed: "
                             "%s",
                             st->message);
    }
    PQclear(r);
    return code;
}

void px_db_rollback(px_db_t *self)
{
    assert(self);
    self->tx_lost = false;
    if (!self->conn || self->broken || PQstatus(self->conn) != CONNECTION_OK) {
        s_drop(self);
        self->tx_lost = false;
        return;
    }
    if (!s_conn_in_tx(self->conn)) {
        return;
    }
    PGresult *r = PQexec(self->conn, "ROLLBACK");
    s_finish(self, r, NULL, NULL);
    self->tx_lost = false;
}

px_code_t px_db_ping(px_db_t *self, px_status_t *st)
{
    assert(self);
    px_status_t last;
    px_status_clear(&last);
    /* Twice: the first run may only discover that an idle connection died. SELECT 1 is safe
     * to repeat. The lost-transaction guard is skipped: a health check runs between calls. */
    for (int i = 0; i < 2; i++) {
        px_code_t code = s_exec(self, false, "SELECT 1", 0, NULL, NULL, &last);
        if (code == PX_OK) {
            px_status_clear(st);
            return PX_OK;
        }
        if (code != PX_UNAVAILABLE) {
            break;
        }
    }
    return px_status_set(st, PX_UNAVAILABLE, "%s", last.message);
}

/* --------------------------------------------------------------- migrations */

/* FNV-1a, 64 bits: stable across builds and machines, unlike a pointer or a seeded hash, so
 * every process of every version agrees on the key for a lock name. */
static int64_t s_lock_key(const char *name)
{
    uint64_t h = px_hash_str(name, PX_HASH_FNV_BASIS);
    int64_t key;
    memcpy(&key, &h, sizeof key);
    return key;
}

static const char S_MIGRATIONS_TABLE[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                         " version int PRIMARY KEY,"
                                         " name text NOT NULL,"
                                         " applied_at timestamptz NOT NULL DEFAULT now())";

static bool s_version_applied(const PGresult *applied, int version)
{
    for (int row = 0; row < PQntuples(applied); row++) {
        if (atoi(PQgetvalue(applied, row, 0)) == version) {
            return true;
        }
    }
    return false;
}

px_code_t px_db_migrate(px_db_t *self, const char *lock_name, const px_migration_t *migrations,
                        size_t count, px_status_t *st)
{
    assert(self && lock_name && (migrations || count == 0));
    px_code_t code = PX_OK;
    const px_migration_t **order = NULL;
    PGresult *applied = NULL;
    bool in_tx = false;

    /* Version order whatever the table's order; a repeated version is a packaging mistake. */
    order = calloc(count ? count : 1, sizeof *order);
    if (!order) {
        code = px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        size_t j = i;
        while (j > 0 && order[j - 1]->version > migrations[i].version) {
            order[j] = order[j - 1];
            j--;
        }
        if (j > 0 && order[j - 1]->version == migrations[i].version) {
            code = px_status_set(st, PX_INVALID_ARGUMENT, "migration version %d appears twice",
                                 migrations[i].version);
            goto done;
        }
        order[j] = &migrations[i];
    }

    code = px_db_begin(self, st);
    if (code != PX_OK) {
        goto done;
    }
    in_tx = true;
    /* Held until COMMIT or ROLLBACK: a second process waits here, then finds the work done. */
    char key[24];
    snprintf(key, sizeof key, "%" PRId64, s_lock_key(lock_name));
    const char *lock_params[] = {key};
    code = px_db_exec(self, "SELECT pg_advisory_xact_lock($1::bigint)", 1, lock_params, NULL, st);
    /* Made only when missing: a role without CREATE (a service's runtime role, see
     * deploy/postgres/) may start on a database that is already up to date. */
    PGresult *exists = NULL;
    if (code == PX_OK) {
        code = px_db_exec(self, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL,
                          &exists, st);
    }
    if (code == PX_OK && strcmp(PQgetvalue(exists, 0, 0), "t") != 0) {
        code = px_db_exec(self, S_MIGRATIONS_TABLE, 0, NULL, NULL, st);
    }
    PQclear(exists);
    if (code == PX_OK) {
        code = px_db_exec(self, "SELECT version FROM schema_migrations", 0, NULL, &applied, st);
    }
    if (code != PX_OK) {
        px_status_set(st, code, "migrations: %s", st->message);
        goto done;
    }

    for (size_t i = 0; i < count; i++) {
        const px_migration_t *m = order[i];
        if (s_version_applied(applied, m->version)) {
            continue;
        }
        /* PQexec, not PQexecParams: a migration is our own embedded SQL and may hold several
         * statements, which only the simple query protocol accepts. */
        PGresult *r = PQexec(self->conn, m->sql);
        code = s_finish(self, r, NULL, st);
        if (code == PX_OK && (!self->conn || PQtransactionStatus(self->conn) != PQTRANS_INTRANS)) {
            code = px_status_set(st, PX_FAILED_PRECONDITION,
                                 "it ended the transaction (no BEGIN, COMMIT or ROLLBACK, please)");
        }
        if (code == PX_OK) {
            char version[16];
            snprintf(version, sizeof version, "%d", m->version);
            const char *params[] = {version, m->name ? m->name : ""};
            code = px_db_exec(self, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                              2, params, NULL, st);
        }
        if (code != PX_OK) {
            px_status_set(st, code, "migration %d (%s) failed: %s", m->version,
                          m->name ? m->name : "", st->message);
            goto done;
        }
        px_log_emit(self->log, PX_LOG_INFO, "DB-MIGRATE", "applied migration",
                    PX_LOG_FIELDS(PX_LI("version", m->version), PX_LS("name", m->name)));
    }

    code = px_db_commit(self, st);
    if (code != PX_OK) {
        px_status_set(st, code, "migrations: %s", st->message);
        goto done; /* still in_tx: the rollback below clears a lost transaction's state */
    }
    in_tx = false;

done:
    if (in_tx) {
        px_db_rollback(self);
    }
    PQclear(applied);
    free(order);
    return code;
}

/* ------------------------------------------------------------- pipelines */

/* Steps of one pipeline at most: a batch's handful of statements, with room to spare. */
#define S_PIPE_MAX 32

/* What a result read from the pipeline belongs to: step `step`'s prepare or its query. */
typedef struct {
    size_t step;
    bool prepare;
} s_pipe_slot_t;

static bool s_step_is(const px_db_step_t *s, const char *word)
{
    return !s->stmt && s->sql && strcasecmp(s->sql, word) == 0;
}

/* Queues every step (and the prepares of statements not yet prepared on this connection), then
 * the sync, which flushes them all. false when the connection refused to take them. */
static bool s_pipe_send(px_db_t *self, const px_db_step_t *steps, size_t n, s_pipe_slot_t *slots,
                        size_t *nslots)
{
    PGconn *conn = self->conn;
    *nslots = 0;
    for (size_t i = 0; i < n; i++) {
        const px_db_step_t *s = &steps[i];
        bool queued = false; /* its prepare already in this pipeline, for an earlier step */
        for (size_t k = 0; s->stmt && k < *nslots && !queued; k++) {
            queued =
                slots[k].prepare && strcmp(steps[slots[k].step].stmt->name, s->stmt->name) == 0;
        }
        if (s->stmt && !queued && !s_is_prepared(self, s->stmt->name)) {
            if (!PQsendPrepare(conn, s->stmt->name, s->stmt->sql, 0, NULL)) {
                return false;
            }
            slots[(*nslots)++] = (s_pipe_slot_t){i, true};
        }
        int ok =
            s->stmt ? PQsendQueryPrepared(conn, s->stmt->name, s->nparams, s->params, NULL, NULL, 0)
                    : PQsendQueryParams(conn, s->sql, s->nparams, NULL, s->params, NULL, NULL, 0);
        if (!ok) {
            return false;
        }
        slots[(*nslots)++] = (s_pipe_slot_t){i, false};
    }
    return PQpipelineSync(conn) == 1;
}

/* One result of slot `slot`: kept, or mapped to the pipeline's first failure. */
static void s_pipe_take(px_db_t *self, px_db_step_t *steps, const s_pipe_slot_t *slot, PGresult *r,
                        px_code_t *code, px_status_t *st)
{
    px_db_step_t *s = &steps[slot->step];
    ExecStatusType es = PQresultStatus(r);
    bool ok = es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK || es == PGRES_EMPTY_QUERY;
    if (*code != PX_OK) {
        PQclear(r); /* skipped after the first failure (PGRES_PIPELINE_ABORTED) */
        return;
    }
    if (!ok) {
        if (es == PGRES_PIPELINE_ABORTED) {
            *code = px_status_set(st, PX_INTERNAL, "pipeline aborted without an error");
        } else {
            if (s->stmt && s_sqlstate_is(r, "26000")) {
                s_forget_one(self, s->stmt->name); /* vanished: prepare it next time */
            } else if (slot->prepare && s_sqlstate_is(r, "42P05")) {
                s_remember_prepared(self, s->stmt->name); /* prepared through px_db_conn */
            }
            *code = px_db_result_status(self, r, st);
        }
        PQclear(r);
        return;
    }
    if (slot->prepare) {
        s_remember_prepared(self, s->stmt->name);
    } else if (s_step_is(s, "COMMIT") && strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
        *code =
            px_status_set(st, PX_ABORTED, "transaction rolled back: a statement in it had failed");
    } else if (s->want_res && !s->res) {
        s->res = r;
        return;
    }
    PQclear(r);
}

px_code_t px_db_pipeline(px_db_t *self, px_db_step_t *steps, size_t n, px_status_t *st)
{
    assert(self && (steps || n == 0) && n <= S_PIPE_MAX);
    for (size_t i = 0; i < n; i++) {
        steps[i].res = NULL;
    }
    px_code_t code = s_ready(self, true, st);
    if (code != PX_OK || n == 0) {
        return code;
    }
    PGconn *conn = self->conn;
    bool opens_tx = self->in_tx;
    size_t commit_step = n; /* none */
    for (size_t i = 0; i < n; i++) {
        opens_tx = opens_tx || s_step_is(&steps[i], "BEGIN");
        commit_step = s_step_is(&steps[i], "COMMIT") ? i : commit_step;
    }
    s_pipe_slot_t slots[2 * S_PIPE_MAX];
    size_t nslots = 0, next = 0;
    bool synced = false;
    if (!PQenterPipelineMode(conn)) {
        return s_finish(self, NULL, NULL, st);
    }
    if (s_pipe_send(self, steps, n, slots, &nslots)) {
        /* Each query's results end with a NULL; the sync's own result ends the pipeline. */
        bool got = false, cancel_sent = false;
        self->cancelled = false;
        while (!synced && PQstatus(conn) == CONNECTION_OK) {
            /* Once only the COMMIT's answer is due, the deadline no longer applies. */
            bool at_commit = next < nslots && slots[next].step == commit_step;
            if (!s_await_input(self, !at_commit, &cancel_sent)) {
                break;
            }
            PGresult *r = PQgetResult(conn);
            if (!r) {
                if (!got) {
                    break; /* nothing where a result was due: the connection is gone */
                }
                next++;
                got = false;
            } else if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
                PQclear(r);
                synced = true;
            } else if (next >= nslots) {
                PQclear(r);
                break; /* more results than statements: not a state we understand */
            } else {
                s_pipe_take(self, steps, &slots[next], r, &code, st);
                got = true;
            }
        }
    }
    if (synced && PQexitPipelineMode(conn)) {
        self->in_tx = s_conn_in_tx(conn);
    } else {
        /* Lost (or out of step) part-way: whatever the transaction was, it is gone, unless the
         * COMMIT had been sent and its answer is what was lost. */
        px_status_t lost;
        if (code == PX_OK) {
            px_db_result_status(self, NULL, &lost);
        } else {
            lost = *st; /* the lost connection's own error, read as a result */
        }
        if (code == PX_OK || code == PX_UNAVAILABLE) {
            code = commit_step < n
                       ? px_status_set(st, PX_UNAVAILABLE,
                                       "connection lost during COMMIT; the transaction may have "
                                       "committed: %s",
                                       lost.message)
                       : px_status_set(st, PX_UNAVAILABLE, "%s", lost.message);
        }
        self->broken = true;
        self->in_tx = opens_tx;
        s_drop(self);
    }
    code = s_deadline_said(self, code, st);
    if (code != PX_OK) {
        for (size_t i = 0; i < n; i++) {
            PQclear(steps[i].res);
            steps[i].res = NULL;
        }
    } else {
        px_status_clear(st);
    }
    return code;
}
