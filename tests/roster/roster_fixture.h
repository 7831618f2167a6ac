/*
 * roster_fixture.h - a px-roster process on a fresh database, and a client to it,
 * for the roster tests; and px-activation as its peer, for the planning tests.
 * Every test file gets its own databases, so files can run in parallel.
 */
#ifndef PX_ROSTER_FIXTURE_H
#define PX_ROSTER_FIXTURE_H

#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "phuxanh/rpc.h"
#include "px_test.h"
#include "testd_proc.h"

typedef struct {
    testd_t proc;
    char *db_url;            /* the service's database (tests may read it directly) */
    px_rpc_client_t *client; /* caller "roster-test" */
} roster_fixture_t;

/* Creates a database named after prefix and starts px-roster on it; extra flags may be NULL
 * (e.g. {"--activation-endpoints=tcp://...", NULL}). 0 on success. */
int roster_fixture_start(roster_fixture_t *f, const char *prefix, const char *const *extra);
/* Stops the service (SIGTERM, must exit 0) and frees; returns its exit status. */
int roster_fixture_stop(roster_fixture_t *f);

/* A roster test file's main: starts f (prefix, extra as roster_fixture_start), runs setup
 * (may be NULL; nonzero: the data could not be put in, the cases do not run), the cases,
 * teardown (may be NULL), and stops f. 1 when anything failed, px-roster's stop included. */
int roster_fixture_main(roster_fixture_t *f, const char *prefix, const char *const *extra,
                        int (*setup)(void), void (*teardown)(void), int argc, char **argv,
                        const px_test_case_t *cases);

/* A blocking call to "/phuxanh.roster.v1.RosterService/<method>"; *reply freed by the
 * caller with protobuf_c_message_free_unpacked. */
px_code_t roster_call(roster_fixture_t *f, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply,
                      px_status_t *st);

/* Runs SQL on the service's database and returns the first column of the first row as an
 * integer (for asserting on what was stored); -1 on error. */
long long roster_sql_int(roster_fixture_t *f, const char *sql);

/* px-activation as the roster's peer, on its own fresh database. The two services point at
 * each other (PlanWave asks GetProgress; the activation service asks the roster for units,
 * campaigns and duty), so the activation service's port is chosen first (px_test_free_port),
 * given to px-roster as --activation-endpoints, and then to this as the one to listen on. */
typedef struct {
    testd_t proc;
    char *db_url;            /* the activation service's database */
    px_rpc_client_t *client; /* caller "roster-test" */
} roster_peer_t;

/* Starts px-activation on tcp://127.0.0.1:<port> with a fresh database named after prefix, a
 * test citizen key, no PUB socket, asking the roster at roster_endpoint; extra flags may be
 * NULL. Then waits until its first read of the roster's unit tree holds at least min_units
 * units (0: does not wait). 0 on success. */
int roster_peer_start(roster_peer_t *p, const char *prefix, int port, const char *roster_endpoint,
                      int min_units, const char *const *extra);
/* Stops it (SIGCONT first, in case a test paused it; then SIGTERM, must exit 0) and frees;
 * returns its exit status, -1 when it was not running. */
int roster_peer_stop(roster_peer_t *p);
/* roster_sql_int on the activation service's database. */
long long roster_peer_sql_int(roster_peer_t *p, const char *sql);
/* A blocking call to "/phuxanh.activation.v1.ActivationService/<method>", 30 s timeout. */
px_code_t roster_peer_call(roster_peer_t *p, const char *method, const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply,
                           px_status_t *st);

#endif
