/* roster_fixture.c - see roster_fixture.h. */
#include "roster_fixture.h"

#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "px_test.h"

int roster_fixture_start(roster_fixture_t *f, const char *prefix, const char *const *extra)
{
    memset(f, 0, sizeof *f);
    f->db_url = px_test_db_new(prefix);
    if (!f->db_url) {
        return -1;
    }
    char db_arg[600];
    snprintf(db_arg, sizeof db_arg, "--db-url=%s", f->db_url);
    const char *args[32] = {"--listen=tcp://127.0.0.1:0", db_arg, "--log-level=warn"};
    int n = 3;
    for (size_t i = 0; extra && extra[i] && n < 30; i++) {
        args[n++] = extra[i];
    }
    args[n] = NULL;
    if (proc_start(&f->proc, "services/roster/px-roster", args) != 0) {
        return -1;
    }
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = "roster-test"};
    f->client = px_rpc_client_new(f->proc.endpoint, &o, &st);
    return f->client ? 0 : -1;
}

int roster_fixture_stop(roster_fixture_t *f)
{
    px_rpc_client_destroy(&f->client);
    int rc = f->proc.pid > 0 ? testd_stop(&f->proc, SIGTERM) : -1;
    free(f->db_url);
    f->db_url = NULL;
    return rc;
}

px_code_t roster_call(roster_fixture_t *f, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply,
                      px_status_t *st)
{
    char full[200];
    snprintf(full, sizeof full, "/phuxanh.roster.v1.RosterService/%s", method);
    px_rpc_call_opts_t o = {.timeout_ms = 30000};
    return px_rpc_client_call(f->client, full, req, reply_type, reply, &o, st);
}

long long roster_sql_int(roster_fixture_t *f, const char *sql)
{
    PGconn *c = PQconnectdb(f->db_url);
    long long v = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        }
        PQclear(r);
    }
    PQfinish(c);
    return v;
}
