/* act_fixture.c - see act_fixture.h. */
#include "act_fixture.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "px_test.h"

/* How long a count of the roster's calls waits for the calls it expects, and then for any
 * surplus: the roster logs a call microseconds after its reply, so both are generous. */
#define S_CALLS_WAIT_MS 5000
#define S_CALLS_SETTLE_MS 150
/* Starts (100 ms apart) a restarted roster gets, should the port its predecessor held not be
 * free again yet. */
#define S_BIND_ATTEMPTS 50
/* How long the service may take to read the unit tree after it starts. */
#define S_TREE_WAIT_MS 10000
/* Processes this test started and has not stopped: two per fixture, and those of cases that
 * stopped early. */
#define S_LIVE_MAX 32

/* ---------------------------------------------------------------- processes */

/* A case that stops early (PX_REQUIRE) never reaches act_fixture_stop: what it started is
 * killed at exit, so that a failing run leaves no service behind on the machine. */
static pid_t s_live[S_LIVE_MAX];

static void s_kill_live(void)
{
    for (int i = 0; i < S_LIVE_MAX; i++) {
        if (s_live[i] > 0) {
            px_test_stop(s_live[i], SIGKILL, 2000);
            s_live[i] = 0;
        }
    }
}

static void s_live_set(pid_t old, pid_t pid)
{
    static bool registered;
    if (!registered) {
        atexit(s_kill_live);
        registered = true;
    }
    for (int i = 0; i < S_LIVE_MAX; i++) {
        if (s_live[i] == old) {
            s_live[i] = pid;
            return;
        }
    }
}

/* proc_start with the child's stderr appended to log_path (it inherits ours: point it at the
 * file for the time of the fork). */
static int s_start_logged(testd_t *t, const char *binary, const char *const *args,
                          const char *log_path)
{
    int fd = open(log_path, O_CREAT | O_APPEND | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    int rc = proc_start(t, binary, args);
    dup2(saved, 2);
    close(saved);
    close(fd);
    if (rc == 0) {
        s_live_set(0, t->pid);
    }
    return rc;
}

static int s_stop(testd_t *t, int sig)
{
    s_live_set(t->pid, 0);
    return testd_stop(t, sig);
}

/* ---------------------------------------------------------------- the roster */

/* The data of act_fixture.h. The units share one tree version, as one UpsertUnits batch
 * would give them; the wave's assigned count is kept as the roster keeps it. */
static const char *const s_roster_sql =
    "BEGIN;"
    "WITH v AS (SELECT nextval('unit_tree_version') AS v)"
    " INSERT INTO units (code, name, level, parent_code, version)"
    " SELECT x.code, x.name, x.level, x.parent, v.v FROM v, (VALUES"
    "  ('74', 'Bình Dương', 1, NULL),"
    "  ('718', 'Thủ Dầu Một', 2, '74'),"
    "  ('725', 'Thuận An', 2, '74'),"
    "  ('25747', 'Phú Cường', 3, '718'),"
    "  ('25966', 'Lái Thiêu', 3, '725'),"
    "  ('25966-01', 'Đông Nhì', 4, '25966'),"
    "  ('25966-02', 'Đông Tư', 4, '25966'),"
    "  ('25969', 'Bình Nhâm', 3, '725'),"
    "  ('25975', 'An Phú', 3, '725')) AS x(code, name, level, parent);"
    "INSERT INTO volunteers (code, full_name, name_folded)"
    " SELECT 'TN000' || n, 'Tình nguyện viên ' || n, px_fold('Tình nguyện viên ' || n)"
    " FROM generate_series(1, 9) AS n;"
    "INSERT INTO campaigns (id, name, starts_on, ends_on)"
    " SELECT id, 'Chiến dịch ' || id, s::date, e::date FROM (VALUES"
    "  ('tn-2023', '2023-07-29', '2023-08-27'),"
    "  ('tn-late', '2023-01-07', '2023-01-29'),"
    "  ('tn-now', '2023-07-01', '2099-12-31'),"
    "  ('tn-pub', '2023-07-01', '2099-12-31'),"
    "  ('warmup', '2023-07-01', '2099-12-31')) AS x(id, s, e);"
    "INSERT INTO waves (campaign_id, day, capacity, assigned)"
    " VALUES ('tn-2023', '2023-07-29', 30, 2);"
    "INSERT INTO assignments (volunteer_code, day, campaign_id, unit_code) VALUES"
    " ('TN0001', '2023-07-29', 'tn-2023', '25966'),"
    " ('TN0002', '2023-07-29', 'tn-2023', '25969');"
    "COMMIT;";

/* A unit write as the roster makes one: under its tree lock, at a new tree version, so that
 * the activation service's ListUnits since the version it holds returns the ward. */
static const char *const s_grow_sql =
    "BEGIN;"
    "SELECT pg_advisory_xact_lock(hashtext('px_roster_unit_tree'));"
    "INSERT INTO units (code, name, level, parent_code, version)"
    " VALUES ('25978', 'Vĩnh Phú', 3, '725', nextval('unit_tree_version'));"
    "COMMIT;";

static int s_exec(const char *db_url, const char *sql)
{
    PGconn *c = PQconnectdb(db_url);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            rc = 0;
        }
        PQclear(r);
    }
    if (rc != 0) {
        fprintf(stderr, "act_fixture: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return rc;
}

int act_roster_start(act_roster_t *r)
{
    char listen_arg[160], db_arg[600];
    snprintf(listen_arg, sizeof listen_arg, "--listen=%s", r->endpoint);
    snprintf(db_arg, sizeof db_arg, "--db-url=%s", r->db_url);
    /* Debug level: every call answered is logged (act_roster_calls counts them). */
    const char *args[] = {listen_arg, db_arg, "--log-level=debug", NULL};
    /* The port may still be held for a moment after a stop: try again briefly. */
    for (int attempt = 0; attempt < S_BIND_ATTEMPTS; attempt++) {
        if (s_start_logged(&r->proc, "services/roster/px-roster", args, r->log_path) == 0) {
            return 0;
        }
        usleep(100000);
    }
    fprintf(stderr, "act_roster_start: px-roster did not start on %s\n", r->endpoint);
    return -1;
}

void act_roster_stop(act_roster_t *r)
{
    if (r->proc.pid > 0) {
        s_stop(&r->proc, SIGKILL);
    }
}

int act_roster_grow(act_roster_t *r)
{
    return s_exec(r->db_url, s_grow_sql);
}

int act_roster_calls(act_roster_t *r, const char *method)
{
    char want[200];
    snprintf(want, sizeof want, "\"method\":\"/phuxanh.roster.v1.RosterService/%s\"", method);
    FILE *fp = fopen(r->log_path, "r");
    if (!fp) {
        return -1;
    }
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, fp) > 0) {
        n += strstr(line, "\"event\":\"RPC-CALL\"") && strstr(line, want);
    }
    free(line);
    fclose(fp);
    return n;
}

int act_roster_calls_wait(act_roster_t *r, const char *method, int want)
{
    for (int waited = 0; waited < S_CALLS_WAIT_MS && act_roster_calls(r, method) < want;
         waited += 10) {
        usleep(10000);
    }
    usleep(S_CALLS_SETTLE_MS * 1000);
    return act_roster_calls(r, method);
}

/* A fresh database, px-roster started on it (which makes its schema), the data loaded. */
static int s_roster_new(act_roster_t *r, const char *prefix)
{
    char name[64];
    snprintf(name, sizeof name, "%s_roster", prefix);
    r->db_url = px_test_db_new(name);
    int port = px_test_free_port();
    if (!r->db_url || port < 0) {
        return -1;
    }
    snprintf(r->endpoint, sizeof r->endpoint, "tcp://127.0.0.1:%d", port);
    snprintf(r->log_path, sizeof r->log_path, "/tmp/px-act-%s-%d-roster.log", prefix,
             (int)getpid());
    unlink(r->log_path);
    if (act_roster_start(r) != 0) {
        return -1;
    }
    return s_exec(r->db_url, s_roster_sql);
}

/* ---------------------------------------------------------------- the service */

/* Starts px-activation on f's database and roster, stderr appended to f->log_path. */
static int s_spawn(act_fixture_t *f)
{
    char db_arg[600], roster_arg[200];
    snprintf(db_arg, sizeof db_arg, "--db-url=%s", f->db_url);
    snprintf(roster_arg, sizeof roster_arg, "--roster-endpoints=%s", f->roster.endpoint);
    const char *args[] = {"--listen=tcp://127.0.0.1:0",
                          db_arg,
                          roster_arg,
                          "--log-level=info",
                          "--person-readers=activation-test,gateway",
                          "--citizen-key=" ACT_T_SECRET,
                          "--verify-interval-ms=300",
                          NULL};
    if (s_start_logged(&f->proc, "services/activation/px-activation", args, f->log_path) != 0) {
        return -1;
    }
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = "activation-test"};
    f->client = px_rpc_client_new(f->proc.endpoint, &o, &st);
    return f->client ? 0 : -1;
}

int act_fixture_start(act_fixture_t *f, const char *prefix)
{
    memset(f, 0, sizeof *f);
    if (s_roster_new(&f->roster, prefix) != 0) {
        return -1;
    }
    f->db_url = px_test_db_new(prefix);
    if (!f->db_url) {
        return -1;
    }
    snprintf(f->log_path, sizeof f->log_path, "/tmp/px-act-%s-%d.log", prefix, (int)getpid());
    unlink(f->log_path);
    if (s_spawn(f) != 0) {
        return -1;
    }
    /* The service reads the whole tree in the background at start: wait for it, so that
     * every test sees the same cache (progress lists children from it). */
    for (int waited = 0; waited < S_TREE_WAIT_MS; waited += 50) {
        if (act_sql_int(f, "SELECT count(*) FROM units") >= 9) {
            return 0;
        }
        usleep(50000);
    }
    fprintf(stderr, "act_fixture_start: the service did not read the unit tree\n");
    return -1;
}

int act_service_restart(act_fixture_t *f)
{
    px_rpc_client_destroy(&f->client);
    int rc = s_stop(&f->proc, SIGTERM);
    if (rc != 0) {
        return -1;
    }
    return s_spawn(f);
}

int act_fixture_stop(act_fixture_t *f)
{
    px_rpc_client_destroy(&f->client);
    int rc = f->proc.pid > 0 ? s_stop(&f->proc, SIGTERM) : -1;
    if (f->roster.proc.pid > 0 && s_stop(&f->roster.proc, SIGTERM) != 0) {
        fprintf(stderr, "act_fixture_stop: px-roster did not exit cleanly\n");
        rc = -1;
    }
    free(f->db_url);
    f->db_url = NULL;
    free(f->roster.db_url);
    f->roster.db_url = NULL;
    if (!getenv("PX_TEST_KEEP_DB")) {
        unlink(f->log_path);
        unlink(f->roster.log_path);
    }
    return rc;
}

px_code_t act_call(act_fixture_t *f, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply,
                   px_status_t *st)
{
    char full[200];
    snprintf(full, sizeof full, "/phuxanh.activation.v1.ActivationService/%s", method);
    px_rpc_call_opts_t o = {.timeout_ms = 30000};
    return px_rpc_client_call(f->client, full, req, reply_type, reply, &o, st);
}

Phuxanh__Activation__V1__ActivationEvent *act_event(const char *key, const char *citizen_id,
                                                    const char *unit, int stage, int offset_s)
{
    Phuxanh__Activation__V1__ActivationEvent *e = calloc(1, sizeof *e);
    Google__Protobuf__Timestamp *ts = calloc(1, sizeof *ts);
    phuxanh__activation__v1__activation_event__init(e);
    google__protobuf__timestamp__init(ts);
    ts->seconds = ACT_T_DAY_US / 1000000 + offset_s;
    e->idempotency_key = strdup(key);
    e->campaign_id = strdup("tn-2023");
    e->citizen_id = strdup(citizen_id);
    e->unit_code = strdup(unit);
    e->neighborhood_code = strdup("");
    e->volunteer_code = strdup("");
    e->note = strdup("");
    e->stage = stage;
    e->channel = PHUXANH__ACTIVATION__V1__CHANNEL__CHANNEL_OWN_PHONE;
    e->venue = PHUXANH__ACTIVATION__V1__VENUE__VENUE_OFFICE;
    e->occurred_at = ts;
    e->consent = true;
    return e;
}

void act_event_free(Phuxanh__Activation__V1__ActivationEvent *e)
{
    if (!e) {
        return;
    }
    free(e->idempotency_key);
    free(e->campaign_id);
    free(e->citizen_id);
    free(e->unit_code);
    free(e->neighborhood_code);
    free(e->volunteer_code);
    free(e->note);
    free(e->occurred_at);
    free(e);
}

Phuxanh__Activation__V1__RecordEventsResponse *
act_record(act_fixture_t *f, Phuxanh__Activation__V1__ActivationEvent **events, size_t n,
           px_status_t *st)
{
    Phuxanh__Activation__V1__RecordEventsRequest req =
        PHUXANH__ACTIVATION__V1__RECORD_EVENTS_REQUEST__INIT;
    req.events = events;
    req.n_events = n;
    ProtobufCMessage *reply = NULL;
    if (act_call(f, "RecordEvents", &req.base,
                 &phuxanh__activation__v1__record_events_response__descriptor, &reply,
                 st) != PX_OK) {
        return NULL;
    }
    return (Phuxanh__Activation__V1__RecordEventsResponse *)reply;
}

int act_record1(act_fixture_t *f, Phuxanh__Activation__V1__ActivationEvent *e, bool *dup, char *msg,
                size_t cap)
{
    px_status_t st;
    Phuxanh__Activation__V1__RecordEventsResponse *r = act_record(f, &e, 1, &st);
    if (!r || r->n_results != 1) {
        fprintf(stderr, "RecordEvents: %s\n", r ? "wrong result count" : st.message);
        if (r) {
            protobuf_c_message_free_unpacked(&r->base, NULL);
        }
        return -1;
    }
    int code = r->results[0]->code;
    if (dup) {
        *dup = r->results[0]->duplicate;
    }
    if (msg) {
        snprintf(msg, cap, "%s", r->results[0]->message);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return code;
}

long long act_sql_int(act_fixture_t *f, const char *sql)
{
    PGconn *c = PQconnectdb(f->db_url);
    long long v = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        } else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "act_sql_int: %s", PQerrorMessage(c));
        }
        PQclear(r);
    }
    PQfinish(c);
    return v;
}

long long act_total(act_fixture_t *f, const char *campaign, const char *unit, int stage)
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(count), 0) FROM totals WHERE campaign_id = '%s' AND "
             "unit_code = '%s' AND stage = %d",
             campaign, unit, stage);
    return act_sql_int(f, sql);
}

Phuxanh__Activation__V1__GetProgressResponse *act_progress(act_fixture_t *f, const char *campaign,
                                                           const char *unit, px_status_t *st)
{
    Phuxanh__Activation__V1__GetProgressRequest req =
        PHUXANH__ACTIVATION__V1__GET_PROGRESS_REQUEST__INIT;
    req.campaign_id = (char *)campaign;
    req.unit_code = (char *)unit;
    ProtobufCMessage *reply = NULL;
    if (act_call(f, "GetProgress", &req.base,
                 &phuxanh__activation__v1__get_progress_response__descriptor, &reply,
                 st) != PX_OK) {
        return NULL;
    }
    return (Phuxanh__Activation__V1__GetProgressResponse *)reply;
}

int act_file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        return -1;
    }
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, fp)) > 0) {
        len += got;
        if (cap - len < 4096) {
            cap *= 2;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                buf = NULL;
            }
            buf = b;
        }
    }
    fclose(fp);
    if (!buf) {
        return -1;
    }
    buf[len] = '\0';
    int found = memmem(buf, len, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

int act_db_contains(act_fixture_t *f, const char *needle)
{
    PGconn *c = PQconnectdb(f->db_url);
    int found = -1;
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return -1;
    }
    PGresult *tables = PQexec(c, "SELECT quote_ident(table_name) FROM information_schema.tables "
                                 "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'");
    if (PQresultStatus(tables) == PGRES_TUPLES_OK) {
        found = 0;
        for (int i = 0; i < PQntuples(tables) && found == 0; i++) {
            /* Every column of every row as text (bytea as hex). */
            char sql[300];
            snprintf(sql, sizeof sql, "SELECT count(*) FROM %s t WHERE strpos(t::text, $1) > 0",
                     PQgetvalue(tables, i, 0));
            const char *p[1] = {needle};
            PGresult *r = PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                found = -1;
            } else if (atoll(PQgetvalue(r, 0, 0)) > 0) {
                found = 1;
            }
            PQclear(r);
        }
    }
    PQclear(tables);
    PQfinish(c);
    return found;
}
