/*
 * test_db.c - px_db against a real PostgreSQL (PX_TEST_PG_URL): parameters,
 * prepared statements, SQLSTATE mapping, transactions, losing and regaining
 * the server, and migrations (idempotent, concurrent, all-or-nothing).
 *
 * Each case makes its own database, so cases are independent and a failure
 * leaves nothing behind for the next.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "phuxanh/clock.h"
#include "phuxanh/db.h"
#include "phuxanh/log.h"
#include "px_test.h"

#define CONNECT_BUDGET_US (5 * 1000 * 1000)

/* ------------------------------------------------------------------ helpers */

static px_db_t *open_db(const char *url, px_log_t *log)
{
    px_db_t *db = px_db_new(url, log);
    px_status_t st;
    if (db && px_db_connect(db, px_clock_us() + CONNECT_BUDGET_US, &st) != PX_OK) {
        printf("  connect: %s\n", st.message);
        px_db_destroy(&db);
    }
    return db;
}

/* First column of the first row as a malloc'd string ("NULL" for SQL NULL), or NULL. */
static char *scalar(px_db_t *db, const char *sql)
{
    PGresult *res = NULL;
    px_status_t st;
    char *out = NULL;
    if (px_db_exec(db, sql, 0, NULL, &res, &st) != PX_OK) {
        printf("  %s: %s\n", sql, st.message);
        return NULL;
    }
    if (PQntuples(res) > 0 && PQnfields(res) > 0) {
        out = strdup(PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return out;
}

static int scalar_eq(px_db_t *db, const char *sql, const char *want)
{
    char *got = scalar(db, sql);
    int eq = got && strcmp(got, want) == 0;
    if (!eq) {
        printf("  %s: got %s, want %s\n", sql, got ? got : "(error)", want);
    }
    free(got);
    return eq;
}

/* Terminates db's backend from the admin connection, waiting until it is gone. */
static int kill_backend(px_db_t *db)
{
    char *pid = scalar(db, "SELECT pg_backend_pid()");
    if (!pid) {
        return -1;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s, 5000)", pid);
    free(pid);
    return px_test_admin_exec(sql);
}

typedef struct {
    int rd;
    int wr;
    px_log_t *log;
} log_pipe_t;

static int log_pipe_open(log_pipe_t *lp)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    lp->rd = fds[0];
    lp->wr = fds[1];
    lp->log = px_log_new("test-db", PX_LOG_INFO, lp->wr);
    return lp->log ? 0 : -1;
}

static void log_pipe_close(log_pipe_t *lp)
{
    px_log_destroy(&lp->log);
    close(lp->rd);
    close(lp->wr);
}

/* How many lines with this event are waiting in the pipe (reads until it is quiet). */
static int count_events(log_pipe_t *lp, const char *event)
{
    char line[4096];
    char needle[128];
    snprintf(needle, sizeof needle, "\"event\":\"%s\"", event);
    int n = 0;
    while (px_test_read_line(lp->rd, line, sizeof line, 100) == 0) {
        if (strstr(line, needle)) {
            n++;
        }
    }
    return n;
}

/* -------------------------------------------------------------------- cases */

static void test_exec_params(void)
{
    char *url = px_test_db_new("pxdb_exec");
    px_db_t *db = open_db(url, NULL);
    free(url);
    PX_REQUIRE(db);
    px_status_t st;
    PX_CHECK_INT_EQ(
        px_db_exec(db, "CREATE TABLE kv (k text PRIMARY KEY, v text, n int)", 0, NULL, NULL, &st),
        PX_OK);
    /* Parameters travel apart from the SQL: a quote in a value is just a character. */
    const char *p1[] = {"o'brien", NULL, "7"};
    PX_CHECK_INT_EQ(px_db_exec(db, "INSERT INTO kv VALUES ($1, $2, $3)", 3, p1, NULL, &st), PX_OK);
    const char *p2[] = {"o'brien"};
    PGresult *res = NULL;
    PX_CHECK_INT_EQ(px_db_exec(db, "SELECT v, n FROM kv WHERE k = $1", 1, p2, &res, &st), PX_OK);
    PX_REQUIRE(res);
    PX_CHECK_INT_EQ(PQntuples(res), 1);
    PX_CHECK(PQgetisnull(res, 0, 0));
    PX_CHECK_STR_EQ(PQgetvalue(res, 0, 1), "7");
    PQclear(res);
    PX_CHECK(px_db_conn(db) != NULL);
    px_db_destroy(&db);
    PX_CHECK(db == NULL);
    px_db_destroy(&db);
}

static void test_execp_prepared_once(void)
{
    static const px_db_stmt_t add = {"test_db_add", "SELECT $1::int + $2::int"};
    char *url = px_test_db_new("pxdb_execp");
    px_db_t *db = open_db(url, NULL);
    free(url);
    PX_REQUIRE(db);
    px_status_t st;
    for (int i = 0; i < 3; i++) {
        char a[16];
        snprintf(a, sizeof a, "%d", i);
        const char *params[] = {a, "40"};
        PGresult *res = NULL;
        PX_CHECK_INT_EQ(px_db_execp(db, &add, 2, params, &res, &st), PX_OK);
        PX_REQUIRE(res);
        char want[16];
        snprintf(want, sizeof want, "%d", 40 + i);
        PX_CHECK_STR_EQ(PQgetvalue(res, 0, 0), want);
        PQclear(res);
    }
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'test_db_add'",
                       "1"));

    /* Statements prepared behind px_db's back, or dropped behind it, are coped with. */
    PX_CHECK_INT_EQ(px_db_exec(db, "DEALLOCATE test_db_add", 0, NULL, NULL, &st), PX_OK);
    const char *params[] = {"1", "1"};
    PGresult *res = NULL;
    PX_CHECK(px_db_execp(db, &add, 2, params, &res, &st) != PX_OK);
    PX_CHECK_INT_EQ(px_db_execp(db, &add, 2, params, &res, &st), PX_OK);
    PX_CHECK(res && strcmp(PQgetvalue(res, 0, 0), "2") == 0);
    PQclear(res);

    static const px_db_stmt_t twice = {"test_db_twice", "SELECT 2"};
    PGresult *r = PQprepare(px_db_conn(db), twice.name, twice.sql, 0, NULL);
    PX_CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    PX_CHECK_INT_EQ(px_db_execp(db, &twice, 0, NULL, NULL, &st), PX_OK);
    px_db_destroy(&db);
}

/* SQLSTATEs become gRPC codes, with PostgreSQL's primary message. */
static void test_error_mapping(void)
{
    char *url = px_test_db_new("pxdb_errors");
    px_db_t *db = open_db(url, NULL);
    free(url);
    PX_REQUIRE(db);
    px_status_t st;
    PX_REQUIRE(px_db_exec(db, "CREATE TABLE parent (id int PRIMARY KEY)", 0, NULL, NULL, &st) ==
               PX_OK);
    PX_REQUIRE(px_db_exec(db,
                          "CREATE TABLE child (id int PRIMARY KEY, "
                          "parent int REFERENCES parent(id), n int NOT NULL CHECK (n > 0))",
                          0, NULL, NULL, &st) == PX_OK);
    PX_REQUIRE(px_db_exec(db, "INSERT INTO parent VALUES (1)", 0, NULL, NULL, &st) == PX_OK);

    static const struct {
        const char *sql;
        px_code_t code;
        const char *message_part;
    } cases[] = {
        {"INSERT INTO parent VALUES (1)", PX_ALREADY_EXISTS, "duplicate key"},
        {"INSERT INTO child VALUES (1, 2, 1)", PX_FAILED_PRECONDITION, "foreign key"},
        {"INSERT INTO child VALUES (1, 1, 0)", PX_FAILED_PRECONDITION, "check constraint"},
        {"INSERT INTO child VALUES (1, 1, NULL)", PX_FAILED_PRECONDITION, "not-null"},
        {"SELECT 1/0", PX_INVALID_ARGUMENT, "division by zero"},
        {"SELECT 'x'::int", PX_INVALID_ARGUMENT, "invalid input syntax"},
        {"DO $$BEGIN RAISE EXCEPTION 'ser' USING ERRCODE = '40001'; END$$", PX_ABORTED, "ser"},
        {"DO $$BEGIN RAISE EXCEPTION 'dl' USING ERRCODE = '40P01'; END$$", PX_ABORTED, "dl"},
        {"DO $$BEGIN RAISE EXCEPTION 'full' USING ERRCODE = '53100'; END$$", PX_RESOURCE_EXHAUSTED,
         "full"},
        {"SELECT * FROM no_such_table", PX_INTERNAL, "no_such_table"},
        {"SELEC 1", PX_INTERNAL, "syntax error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        px_code_t code = px_db_exec(db, cases[i].sql, 0, NULL, NULL, &st);
        if (code != cases[i].code || !strstr(st.message, cases[i].message_part)) {
            printf("  %s -> %s \"%s\"\n", cases[i].sql, px_code_name(code), st.message);
        }
        PX_CHECK_INT_EQ(code, cases[i].code);
        PX_CHECK(strstr(st.message, cases[i].message_part) != NULL);
        /* Only the primary message: no "ERROR:" prefix, no DETAIL. */
        PX_CHECK(strncmp(st.message, "ERROR", 5) != 0 && !strchr(st.message, '\n'));
    }

    /* statement_timeout cancels: the caller's deadline passed. */
    PX_CHECK_INT_EQ(px_db_exec(db, "SET statement_timeout = 50", 0, NULL, NULL, &st), PX_OK);
    PX_CHECK_INT_EQ(px_db_exec(db, "SELECT pg_sleep(2)", 0, NULL, NULL, &st), PX_DEADLINE_EXCEEDED);
    PX_CHECK_INT_EQ(px_db_exec(db, "RESET statement_timeout", 0, NULL, NULL, &st), PX_OK);

    /* A server-going-away SQLSTATE is UNAVAILABLE and costs the connection; the next call
     * gets a new one. */
    char *pid = scalar(db, "SELECT pg_backend_pid()");
    PX_CHECK_INT_EQ(px_db_exec(db,
                               "DO $$BEGIN RAISE EXCEPTION 'bye' USING ERRCODE = '57P01'; END$$", 0,
                               NULL, NULL, &st),
                    PX_UNAVAILABLE);
    PX_CHECK(px_db_conn(db) == NULL);
    char *pid2 = scalar(db, "SELECT pg_backend_pid()");
    PX_CHECK(pid && pid2 && strcmp(pid, pid2) != 0);
    free(pid);
    free(pid2);

    /* px_db_result_status on a successful result is OK. */
    PGresult *res = NULL;
    PX_CHECK_INT_EQ(px_db_exec(db, "SELECT 1", 0, NULL, &res, &st), PX_OK);
    PX_CHECK_INT_EQ(px_db_result_status(db, res, &st), PX_OK);
    PQclear(res);
    px_db_destroy(&db);
}

static void test_transactions(void)
{
    char *url = px_test_db_new("pxdb_tx");
    px_db_t *db = open_db(url, NULL);
    free(url);
    PX_REQUIRE(db);
    px_status_t st;
    PX_REQUIRE(px_db_exec(db, "CREATE TABLE t (id int PRIMARY KEY)", 0, NULL, NULL, &st) == PX_OK);

    PX_CHECK_INT_EQ(px_db_begin(db, &st), PX_OK);
    PX_CHECK_INT_EQ(px_db_exec(db, "INSERT INTO t VALUES (1)", 0, NULL, NULL, &st), PX_OK);
    px_db_rollback(db);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM t", "0"));

    PX_CHECK_INT_EQ(px_db_begin(db, &st), PX_OK);
    PX_CHECK_INT_EQ(px_db_exec(db, "INSERT INTO t VALUES (1)", 0, NULL, NULL, &st), PX_OK);
    PX_CHECK_INT_EQ(px_db_commit(db, &st), PX_OK);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM t", "1"));

    /* COMMIT after a failed statement is a rollback, and says so. */
    PX_CHECK_INT_EQ(px_db_begin(db, &st), PX_OK);
    PX_CHECK_INT_EQ(px_db_exec(db, "INSERT INTO t VALUES (2)", 0, NULL, NULL, &st), PX_OK);
    PX_CHECK_INT_EQ(px_db_exec(db, "INSERT INTO t VALUES (1)", 0, NULL, NULL, &st),
                    PX_ALREADY_EXISTS);
    PX_CHECK_INT_EQ(px_db_commit(db, &st), PX_ABORTED);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM t", "1"));

    /* Rollback with nothing open, or with no connection, is harmless. */
    px_db_rollback(db);
    px_db_t *idle = px_db_new("postgresql://127.0.0.1:1/none", NULL);
    px_db_rollback(idle);
    px_db_destroy(&idle);
    px_db_destroy(&db);
}

/* A killed backend: the next call is UNAVAILABLE (and not retried), a later call works. */
static void test_reconnect_after_terminate(void)
{
    static const px_db_stmt_t one = {"test_db_one", "SELECT 1"};
    char *url = px_test_db_new("pxdb_reconnect");
    log_pipe_t lp;
    PX_REQUIRE(log_pipe_open(&lp) == 0);
    px_db_t *db = open_db(url, lp.log);
    free(url);
    PX_REQUIRE(db);
    px_status_t st;
    PX_REQUIRE(px_db_exec(db, "CREATE TABLE hits (n int)", 0, NULL, NULL, &st) == PX_OK);
    PX_CHECK_INT_EQ(px_db_execp(db, &one, 0, NULL, NULL, &st), PX_OK);

    PX_REQUIRE(kill_backend(db) == 0);
    /* The INSERT may not run twice behind our back: it fails, and the table stays empty. */
    PX_CHECK_INT_EQ(px_db_exec(db, "INSERT INTO hits VALUES (1)", 0, NULL, NULL, &st),
                    PX_UNAVAILABLE);
    PX_CHECK(st.message[0] != '\0');
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM hits", "0"));
    /* Prepared statements are per connection: re-prepared on the new one. */
    PX_CHECK_INT_EQ(px_db_execp(db, &one, 0, NULL, NULL, &st), PX_OK);
    PX_CHECK_INT_EQ(count_events(&lp, "DB-RECONNECT"), 1);

    /* Same through execp first. */
    PX_REQUIRE(kill_backend(db) == 0);
    PX_CHECK_INT_EQ(px_db_execp(db, &one, 0, NULL, NULL, &st), PX_UNAVAILABLE);
    PX_CHECK_INT_EQ(px_db_execp(db, &one, 0, NULL, NULL, &st), PX_OK);

    /* Ping reconnects by itself: SELECT 1 is safe to repeat. */
    PX_REQUIRE(kill_backend(db) == 0);
    PX_CHECK_INT_EQ(px_db_ping(db, &st), PX_OK);
    px_db_destroy(&db);
    log_pipe_close(&lp);
}

/* Losing the connection inside a transaction must not let later statements, or COMMIT, run
 * on a new connection outside it. */
static void test_lost_transaction_not_continued(void)
{
    char *url = px_test_db_new("pxdb_losttx");
    px_db_t *db = open_db(url, NULL);
    free(url);
    PX_REQUIRE(db);
    px_status_t st;
    PX_REQUIRE(px_db_exec(db, "CREATE TABLE t (id int)", 0, NULL, NULL, &st) == PX_OK);
    PX_CHECK_INT_EQ(px_db_begin(db, &st), PX_OK);
    PX_CHECK_INT_EQ(px_db_exec(db, "INSERT INTO t VALUES (1)", 0, NULL, NULL, &st), PX_OK);
    PX_REQUIRE(kill_backend(db) == 0);
    PX_CHECK_INT_EQ(px_db_exec(db, "INSERT INTO t VALUES (2)", 0, NULL, NULL, &st), PX_UNAVAILABLE);
    PX_CHECK_INT_EQ(px_db_exec(db, "INSERT INTO t VALUES (3)", 0, NULL, NULL, &st), PX_UNAVAILABLE);
    PX_CHECK_INT_EQ(px_db_commit(db, &st), PX_UNAVAILABLE);
    px_db_rollback(db);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM t", "0"));

    /* Lost during COMMIT itself (the server dies with the COMMIT in flight is hard to stage;
     * a dead connection found at COMMIT is the same to the caller). */
    PX_CHECK_INT_EQ(px_db_begin(db, &st), PX_OK);
    PX_CHECK_INT_EQ(px_db_exec(db, "INSERT INTO t VALUES (4)", 0, NULL, NULL, &st), PX_OK);
    PX_REQUIRE(kill_backend(db) == 0);
    PX_CHECK_INT_EQ(px_db_commit(db, &st), PX_UNAVAILABLE);
    px_db_rollback(db);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM t", "0"));
    px_db_destroy(&db);
}

/* A pipeline runs its steps in order in one round trip: statements prepared on first use,
 * results where asked for, the transaction opened and committed by its own steps. */
static void test_pipeline(void)
{
    static const px_db_stmt_t ins = {"test_db_pipe_ins", "INSERT INTO t VALUES ($1::int)"};
    char *url = px_test_db_new("pxdb_pipe");
    px_db_t *db = open_db(url, NULL);
    free(url);
    PX_REQUIRE(db);
    px_status_t st;
    PX_REQUIRE(px_db_exec(db, "CREATE TABLE t (id int PRIMARY KEY)", 0, NULL, NULL, &st) == PX_OK);

    for (int round = 0; round < 2; round++) { /* the second finds `ins` prepared */
        const char *a[1] = {round ? "3" : "1"}, *b[1] = {round ? "4" : "2"};
        px_db_step_t steps[] = {
            {.sql = "BEGIN"},
            {.stmt = &ins, .nparams = 1, .params = a},
            {.stmt = &ins, .nparams = 1, .params = b},
            {.sql = "SELECT count(*), sum(id) FROM t", .want_res = true},
            {.sql = "COMMIT"},
        };
        PX_CHECK_INT_EQ(px_db_pipeline(db, steps, 5, &st), PX_OK);
        PX_REQUIRE(steps[3].res);
        PX_CHECK_STR_EQ(PQgetvalue(steps[3].res, 0, 0), round ? "4" : "2");
        PX_CHECK(steps[1].res == NULL && steps[4].res == NULL);
        PQclear(steps[3].res);
    }
    PX_CHECK(scalar_eq(db, "SELECT string_agg(id::text, ',' ORDER BY id) FROM t", "1,2,3,4"));

    /* A failing step: the steps after it do not run, no result is handed out, the open
     * transaction is rolled back by the caller, and the connection is usable after it. */
    const char *dup[1] = {"1"}, *five[1] = {"5"};
    px_db_step_t bad[] = {
        {.sql = "BEGIN"},
        {.stmt = &ins, .nparams = 1, .params = five},
        {.stmt = &ins, .nparams = 1, .params = dup},
        {.sql = "SELECT 1", .want_res = true},
        {.sql = "COMMIT"},
    };
    PX_CHECK_INT_EQ(px_db_pipeline(db, bad, 5, &st), PX_ALREADY_EXISTS);
    PX_CHECK(bad[3].res == NULL);
    px_db_rollback(db);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM t", "4"));

    /* A COMMIT of a transaction whose earlier statement failed is a rollback, and says so. */
    PX_CHECK_INT_EQ(px_db_begin(db, &st), PX_OK);
    PX_CHECK_INT_EQ(px_db_exec(db, "INSERT INTO t VALUES (1)", 0, NULL, NULL, &st),
                    PX_ALREADY_EXISTS);
    px_db_step_t commit[] = {{.sql = "COMMIT"}};
    PX_CHECK_INT_EQ(px_db_pipeline(db, commit, 1, &st), PX_ABORTED);

    /* A statement deallocated behind the pipeline's back fails once, then is prepared again. */
    PX_CHECK_INT_EQ(px_db_exec(db, "DEALLOCATE test_db_pipe_ins", 0, NULL, NULL, &st), PX_OK);
    px_db_step_t again[] = {{.stmt = &ins, .nparams = 1, .params = five}};
    PX_CHECK(px_db_pipeline(db, again, 1, &st) != PX_OK);
    PX_CHECK_INT_EQ(px_db_pipeline(db, again, 1, &st), PX_OK);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM t", "5"));
    px_db_destroy(&db);
}

/* A pipeline on a connection that died: UNAVAILABLE; inside a transaction the loss is kept
 * until the caller rolls back; with a COMMIT among the steps the answer says it may have
 * committed (the caller cannot know). Nothing runs twice on a new connection. */
static void test_pipeline_lost_connection(void)
{
    char *url = px_test_db_new("pxdb_pipelost");
    px_db_t *db = open_db(url, NULL);
    free(url);
    PX_REQUIRE(db);
    px_status_t st;
    PX_REQUIRE(px_db_exec(db, "CREATE TABLE t (id int)", 0, NULL, NULL, &st) == PX_OK);

    PX_CHECK_INT_EQ(px_db_begin(db, &st), PX_OK);
    PX_REQUIRE(kill_backend(db) == 0);
    px_db_step_t ins[] = {{.sql = "INSERT INTO t VALUES (1)"}};
    PX_CHECK_INT_EQ(px_db_pipeline(db, ins, 1, &st), PX_UNAVAILABLE);
    PX_CHECK_INT_EQ(px_db_pipeline(db, ins, 1, &st), PX_UNAVAILABLE); /* still lost */
    px_db_rollback(db);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM t", "0"));

    PX_REQUIRE(kill_backend(db) == 0);
    px_db_step_t all[] = {{.sql = "BEGIN"}, {.sql = "INSERT INTO t VALUES (2)"}, {.sql = "COMMIT"}};
    PX_CHECK_INT_EQ(px_db_pipeline(db, all, 3, &st), PX_UNAVAILABLE);
    PX_CHECK(strstr(st.message, "may have committed") != NULL);
    px_db_rollback(db);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM t", "0"));
    PX_CHECK_INT_EQ(px_db_pipeline(db, all, 3, &st), PX_OK);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM t", "1"));
    px_db_destroy(&db);
}

/* A deadline cancels a statement still running when it passes (plain, prepared, pipelined),
 * on the same connection, which then serves on; COMMIT is never cancelled. */
static void test_deadline(void)
{
    static const px_db_stmt_t nap = {"test_db_nap", "SELECT pg_sleep($1::float8)"};
    char *url = px_test_db_new("pxdb_deadline");
    px_db_t *db = open_db(url, NULL);
    free(url);
    PX_REQUIRE(db);
    px_status_t st;
    PX_REQUIRE(px_db_exec(db, "CREATE TABLE t (id int)", 0, NULL, NULL, &st) == PX_OK);
    const char *five[1] = {"5"};

    int64_t t0 = px_clock_us();
    px_db_set_deadline(db, t0 + 150000);
    PX_CHECK_INT_EQ(px_db_exec(db, "SELECT pg_sleep(5)", 0, NULL, NULL, &st), PX_DEADLINE_EXCEEDED);
    PX_CHECK(strstr(st.message, "deadline") != NULL);
    PX_CHECK_INT_EQ(px_db_execp(db, &nap, 1, five, NULL, &st), PX_DEADLINE_EXCEEDED);
    PX_CHECK(px_clock_us() - t0 < 1500000);

    px_db_set_deadline(db, px_clock_us() + 150000);
    PX_CHECK_INT_EQ(px_db_begin(db, &st), PX_OK);
    px_db_step_t steps[] = {
        {.sql = "INSERT INTO t VALUES (1)"},
        {.stmt = &nap, .nparams = 1, .params = five},
        {.sql = "COMMIT"},
    };
    t0 = px_clock_us();
    PX_CHECK_INT_EQ(px_db_pipeline(db, steps, 3, &st), PX_DEADLINE_EXCEEDED);
    PX_CHECK(px_clock_us() - t0 < 1500000);
    px_db_rollback(db);

    /* Past its deadline a COMMIT still commits: it is never cancelled. */
    px_db_set_deadline(db, 0);
    PX_CHECK_INT_EQ(px_db_begin(db, &st), PX_OK);
    PX_CHECK_INT_EQ(px_db_exec(db, "INSERT INTO t VALUES (2)", 0, NULL, NULL, &st), PX_OK);
    px_db_set_deadline(db, px_clock_us() - 1000);
    PX_CHECK_INT_EQ(px_db_commit(db, &st), PX_OK);
    px_db_set_deadline(db, 0);
    PX_CHECK(scalar_eq(db, "SELECT string_agg(id::text, ',') FROM t", "2"));
    PX_CHECK_INT_EQ((int)px_db_reconnects(db), 0);
    px_db_destroy(&db);
}

typedef struct {
    const char *dbname;
    int delay_ms;
} allow_later_t;

static void *allow_later(void *arg)
{
    allow_later_t *a = arg;
    px_sleep_us((int64_t)a->delay_ms * 1000);
    char sql[256];
    snprintf(sql, sizeof sql, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS true", a->dbname);
    px_test_admin_exec(sql);
    return NULL;
}

/* The database refuses connections: UNAVAILABLE, retried until the deadline; back when it
 * accepts them again. */
static void test_unavailable_when_db_refuses(void)
{
    char *url = px_test_db_new("pxdb_refuse");
    px_db_t *db = open_db(url, NULL);
    free(url);
    PX_REQUIRE(db);
    char *name = scalar(db, "SELECT current_database()");
    PX_REQUIRE(name);
    char sql[256];
    px_status_t st;

    snprintf(sql, sizeof sql, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS false", name);
    PX_CHECK(px_test_admin_exec(sql) == 0);
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '%s'",
             name);
    PX_CHECK(px_test_admin_exec(sql) == 0);

    PX_CHECK_INT_EQ(px_db_exec(db, "SELECT 1", 0, NULL, NULL, &st), PX_UNAVAILABLE);
    PX_CHECK_INT_EQ(px_db_exec(db, "SELECT 1", 0, NULL, NULL, &st), PX_UNAVAILABLE);
    PX_CHECK(strstr(st.message, "not currently accepting connections") != NULL);
    PX_CHECK_INT_EQ(px_db_ping(db, &st), PX_UNAVAILABLE);

    /* Retries with backoff until the deadline, not much past it. */
    int64_t start = px_clock_us();
    PX_CHECK_INT_EQ(px_db_connect(db, start + 400 * 1000, &st), PX_UNAVAILABLE);
    int64_t took = px_clock_us() - start;
    PX_CHECK(took >= 350 * 1000 && took < 1500 * 1000);
    PX_CHECK(strstr(st.message, "attempts") != NULL);

    /* Allowed again while px_db_connect is still retrying: it gets in. */
    allow_later_t a = {name, 300};
    pthread_t t;
    PX_REQUIRE(pthread_create(&t, NULL, allow_later, &a) == 0);
    PX_CHECK_INT_EQ(px_db_connect(db, px_clock_us() + CONNECT_BUDGET_US, &st), PX_OK);
    pthread_join(t, NULL);
    PX_CHECK_INT_EQ(px_db_exec(db, "SELECT 1", 0, NULL, NULL, &st), PX_OK);
    free(name);
    px_db_destroy(&db);
}

static void test_connect_failures(void)
{
    px_status_t st;
    /* A URL that does not parse is a configuration error, not an outage. */
    px_db_t *db = px_db_new("postgresql://host/db?nonsense_option=1", NULL);
    PX_REQUIRE(db);
    PX_CHECK_INT_EQ(px_db_connect(db, 0, &st), PX_INVALID_ARGUMENT);
    PX_CHECK_INT_EQ(px_db_exec(db, "SELECT 1", 0, NULL, NULL, &st), PX_INVALID_ARGUMENT);
    px_db_destroy(&db);

    /* Nobody listening: one attempt with deadline 0, quickly. */
    char url[128];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%d/postgres", px_test_free_port());
    db = px_db_new(url, NULL);
    PX_REQUIRE(db);
    int64_t start = px_clock_us();
    PX_CHECK_INT_EQ(px_db_connect(db, 0, &st), PX_UNAVAILABLE);
    PX_CHECK(px_clock_us() - start < 1000 * 1000);
    PX_CHECK(strstr(st.message, "1 attempt") != NULL);
    PX_CHECK(px_db_conn(db) == NULL);
    PX_CHECK_INT_EQ(px_db_ping(db, &st), PX_UNAVAILABLE);
    px_db_destroy(&db);

    /* An address that drops packets: the attempt ends at the deadline, not connect_timeout. */
    db = px_db_new("host=10.255.255.1 port=5432 connect_timeout=10", NULL);
    PX_REQUIRE(db);
    start = px_clock_us();
    PX_CHECK_INT_EQ(px_db_connect(db, start + 300 * 1000, &st), PX_UNAVAILABLE);
    PX_CHECK(px_clock_us() - start < 1500 * 1000);
    px_db_destroy(&db);
}

/* ------------------------------------------------------------------ migrations */

/* CREATE TABLE without IF NOT EXISTS: running any of these twice fails. */
static const px_migration_t migrations_v2[] = {
    {2, "add_column", "ALTER TABLE items ADD COLUMN qty int NOT NULL DEFAULT 0"},
    {1, "create_items",
     "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);"
     "INSERT INTO items VALUES (1, 'first')"},
};

static const px_migration_t migrations_v3[] = {
    {1, "create_items",
     "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);"
     "INSERT INTO items VALUES (1, 'first')"},
    {2, "add_column", "ALTER TABLE items ADD COLUMN qty int NOT NULL DEFAULT 0"},
    {3, "create_orders", "CREATE TABLE orders (id int PRIMARY KEY, item int REFERENCES items)"},
};

static void test_migrate_twice(void)
{
    char *url = px_test_db_new("pxdb_migrate");
    log_pipe_t lp;
    PX_REQUIRE(log_pipe_open(&lp) == 0);
    px_db_t *db = open_db(url, lp.log);
    free(url);
    PX_REQUIRE(db);
    px_status_t st;
    PX_CHECK_INT_EQ(px_db_migrate(db, "test", migrations_v2, 2, &st), PX_OK);
    PX_CHECK_INT_EQ(count_events(&lp, "DB-MIGRATE"), 2);
    PX_CHECK_INT_EQ(px_db_migrate(db, "test", migrations_v2, 2, &st), PX_OK);
    PX_CHECK_INT_EQ(count_events(&lp, "DB-MIGRATE"), 0);
    PX_CHECK(scalar_eq(db,
                       "SELECT string_agg(version || ':' || name, ',' ORDER BY version) "
                       "FROM schema_migrations",
                       "1:create_items,2:add_column"));
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM items", "1"));

    /* A newer build adds one: only it runs. */
    PX_CHECK_INT_EQ(px_db_migrate(db, "test", migrations_v3, 3, &st), PX_OK);
    PX_CHECK_INT_EQ(count_events(&lp, "DB-MIGRATE"), 1);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM schema_migrations", "3"));
    PX_CHECK(scalar_eq(db, "SELECT to_regclass('orders') IS NOT NULL", "t"));
    PX_CHECK(
        scalar_eq(db, "SELECT applied_at IS NOT NULL FROM schema_migrations WHERE version=3", "t"));

    /* Zero migrations is fine; a repeated version is refused before touching anything. */
    PX_CHECK_INT_EQ(px_db_migrate(db, "test", NULL, 0, &st), PX_OK);
    const px_migration_t dup[] = {{4, "a", "SELECT 1"}, {4, "b", "SELECT 2"}};
    PX_CHECK_INT_EQ(px_db_migrate(db, "test", dup, 2, &st), PX_INVALID_ARGUMENT);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM schema_migrations", "3"));
    px_db_destroy(&db);
    log_pipe_close(&lp);
}

/* Two processes migrate one fresh database at the same moment: the advisory lock makes one
 * wait, and it then finds the work done. */
static void test_migrate_two_processes(void)
{
    /* The first migration sleeps to hold the lock long enough for the other to collide. */
    static const px_migration_t slow[] = {
        {1, "create_items", "SELECT pg_sleep(0.3); CREATE TABLE items (id int PRIMARY KEY)"},
        {2, "seed", "INSERT INTO items VALUES (1)"},
        {3, "create_orders", "CREATE TABLE orders (id int PRIMARY KEY)"},
    };
    for (int round = 0; round < 2; round++) {
        char *url = px_test_db_new("pxdb_race");
        int go[2];
        PX_REQUIRE(pipe(go) == 0);
        pid_t kids[2];
        fflush(stdout);
        for (int k = 0; k < 2; k++) {
            kids[k] = fork();
            if (kids[k] == 0) {
                close(go[1]);
                char c;
                /* Wait for the starting gun so both reach the lock together. */
                if (read(go[0], &c, 1) != 1) {
                    _exit(3);
                }
                px_db_t *db = px_db_new(url, NULL);
                px_status_t st;
                int rc = 2;
                if (db && px_db_connect(db, px_clock_us() + CONNECT_BUDGET_US, &st) == PX_OK) {
                    rc = px_db_migrate(db, "race", slow, 3, &st) == PX_OK ? 0 : 1;
                    if (rc != 0) {
                        fprintf(stderr, "child %d: %s\n", k, st.message);
                    }
                }
                px_db_destroy(&db);
                _exit(rc);
            }
        }
        close(go[0]);
        PX_CHECK(write(go[1], "gg", 2) == 2);
        close(go[1]);
        for (int k = 0; k < 2; k++) {
            int status = 0;
            PX_CHECK(kids[k] > 0 && waitpid(kids[k], &status, 0) == kids[k]);
            PX_CHECK(WIFEXITED(status));
            PX_CHECK_INT_EQ(WEXITSTATUS(status), 0);
        }
        px_db_t *db = open_db(url, NULL);
        free(url);
        PX_REQUIRE(db);
        PX_CHECK(scalar_eq(db,
                           "SELECT string_agg(version::text, ',' ORDER BY version) "
                           "FROM schema_migrations",
                           "1,2,3"));
        PX_CHECK(scalar_eq(db, "SELECT count(*) FROM items", "1"));
        px_db_destroy(&db);
    }
}

/* A failing migration undoes everything of that run and names itself. */
static void test_migrate_failure_rolls_back(void)
{
    static const px_migration_t bad[] = {
        {1, "create_a", "CREATE TABLE a (id int)"},
        {2, "create_b_then_fail", "CREATE TABLE b (id int); SELECT no_such_function()"},
        {3, "never_reached", "CREATE TABLE c (id int)"},
    };
    char *url = px_test_db_new("pxdb_migfail");
    px_db_t *db = open_db(url, NULL);
    free(url);
    PX_REQUIRE(db);
    px_status_t st;
    px_code_t code = px_db_migrate(db, "test", bad, 3, &st);
    PX_CHECK(code != PX_OK);
    PX_CHECK(strstr(st.message, "migration 2 (create_b_then_fail)") != NULL);
    PX_CHECK(strstr(st.message, "no_such_function") != NULL);
    PX_CHECK(scalar_eq(db,
                       "SELECT to_regclass('a') IS NULL AND to_regclass('b') IS NULL AND "
                       "to_regclass('c') IS NULL AND to_regclass('schema_migrations') IS NULL",
                       "t"));

    /* The runner is usable afterwards, and a fixed set then applies from scratch. */
    PX_CHECK_INT_EQ(px_db_migrate(db, "test", bad, 1, &st), PX_OK);
    PX_CHECK(scalar_eq(db, "SELECT count(*) FROM schema_migrations", "1"));
    px_db_destroy(&db);
}

static const px_test_case_t cases[] = {
    {"exec_params", test_exec_params},
    {"execp_prepared_once", test_execp_prepared_once},
    {"error_mapping", test_error_mapping},
    {"transactions", test_transactions},
    {"reconnect_after_terminate", test_reconnect_after_terminate},
    {"lost_transaction_not_continued", test_lost_transaction_not_continued},
    {"pipeline", test_pipeline},
    {"pipeline_lost_connection", test_pipeline_lost_connection},
    {"deadline", test_deadline},
    {"unavailable_when_db_refuses", test_unavailable_when_db_refuses},
    {"connect_failures", test_connect_failures},
    {"migrate_twice", test_migrate_twice},
    {"migrate_two_processes", test_migrate_two_processes},
    {"migrate_failure_rolls_back", test_migrate_failure_rolls_back},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, cases);
}
