/* roster_fixture.c - see roster_fixture.h. */
#include "roster_fixture.h"

#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/clock.h"
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

int roster_fixture_main(roster_fixture_t *f, const char *prefix, const char *const *extra,
                        int (*setup)(void), void (*teardown)(void), int argc, char **argv,
                        const px_test_case_t *cases)
{
    if (roster_fixture_start(f, prefix, extra) != 0) {
        fprintf(stderr, "cannot start px-roster\n");
        return 1;
    }
    int rc = 1;
    if (setup && setup() != 0) {
        fprintf(stderr, "cannot set up the test data\n");
    } else {
        rc = px_test_main(argc, argv, cases);
    }
    if (teardown) {
        teardown();
    }
    if (roster_fixture_stop(f) != 0) {
        fprintf(stderr, "px-roster did not stop cleanly on SIGTERM\n");
        rc = 1;
    }
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

/* ------------------------------------------------------------------- the activation peer */

/* A throwaway citizen-key secret: the service refuses to start without one. */
#define PEER_CITIZEN_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
/* How long the first read of the unit tree may take (it runs in the background at start). */
#define PEER_TREE_WAIT_MS 10000

long long roster_peer_sql_int(roster_peer_t *p, const char *sql)
{
    PGconn *c = PQconnectdb(p->db_url);
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

int roster_peer_start(roster_peer_t *p, const char *prefix, int port, const char *roster_endpoint,
                      int min_units, const char *const *extra)
{
    memset(p, 0, sizeof *p);
    p->db_url = px_test_db_new(prefix);
    if (!p->db_url) {
        return -1;
    }
    char listen_arg[64], db_arg[600], roster_arg[300];
    snprintf(listen_arg, sizeof listen_arg, "--listen=tcp://127.0.0.1:%d", port);
    snprintf(db_arg, sizeof db_arg, "--db-url=%s", p->db_url);
    snprintf(roster_arg, sizeof roster_arg, "--roster-endpoints=%s", roster_endpoint);
    /* No PUB socket: its default port is shared by every instance on the machine. */
    const char *args[32] = {listen_arg,        db_arg,
                            roster_arg,        "--log-level=warn",
                            "--pub-endpoint=", "--citizen-key=" PEER_CITIZEN_KEY};
    int n = 6;
    for (size_t i = 0; extra && extra[i] && n < 30; i++) {
        args[n++] = extra[i];
    }
    args[n] = NULL;
    if (proc_start(&p->proc, "services/activation/px-activation", args) != 0) {
        goto fail;
    }
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = "roster-test"};
    p->client = px_rpc_client_new(p->proc.endpoint, &o, &st);
    if (!p->client) {
        goto fail;
    }
    /* GetProgress lists a district's wards from the service's own copy of the tree, which the
     * background pass fills from ListUnits at start: wait for it, so that a plan sees every
     * ward. */
    for (int waited = 0;
         min_units > 0 && roster_peer_sql_int(p, "SELECT count(*) FROM units") < min_units;
         waited += 50) {
        if (waited >= PEER_TREE_WAIT_MS) {
            fprintf(stderr, "roster_peer_start: the activation service read fewer than %d units\n",
                    min_units);
            goto fail;
        }
        px_sleep_us(50000);
    }
    return 0;
fail:
    roster_peer_stop(p);
    return -1;
}

int roster_peer_stop(roster_peer_t *p)
{
    px_rpc_client_destroy(&p->client);
    int rc = -1;
    if (p->proc.pid > 0) {
        /* A stopped process would not act on the SIGTERM until woken. */
        kill(p->proc.pid, SIGCONT);
        rc = testd_stop(&p->proc, SIGTERM);
    }
    free(p->db_url);
    p->db_url = NULL;
    return rc;
}

px_code_t roster_peer_call(roster_peer_t *p, const char *method, const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply,
                           px_status_t *st)
{
    char full[200];
    snprintf(full, sizeof full, "/phuxanh.activation.v1.ActivationService/%s", method);
    px_rpc_call_opts_t o = {.timeout_ms = 30000};
    return px_rpc_client_call(p->client, full, req, reply_type, reply, &o, st);
}
