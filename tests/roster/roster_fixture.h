/*
 * roster_fixture.h - a px-roster process on a fresh database, and a client to it,
 * for the roster tests. Every test file gets its own database, so files can run
 * in parallel.
 */
#ifndef PX_ROSTER_FIXTURE_H
#define PX_ROSTER_FIXTURE_H

#include "phuxanh/roster/v1/roster.pb-c.h"
#include "phuxanh/rpc.h"
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

/* A blocking call to "/phuxanh.roster.v1.RosterService/<method>"; *reply freed by the
 * caller with protobuf_c_message_free_unpacked. */
px_code_t roster_call(roster_fixture_t *f, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply,
                      px_status_t *st);

/* Runs SQL on the service's database and returns the first column of the first row as an
 * integer (for asserting on what was stored); -1 on error. */
long long roster_sql_int(roster_fixture_t *f, const char *sql);

#endif
