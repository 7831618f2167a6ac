/*
 * act_fixture.h - px-activation as a process on its own fresh database, a
 * roster it asks about units and duty, and a client to it, for the activation
 * tests.
 *
 * The roster is a stand-in served from this test process (the runtime's own
 * px_rpc_server with GetUnits, ListUnits and CheckDuty answered from the small
 * Thuận An tree below), so a test can stop it and start it again on the same
 * endpoint, and count the calls it gets. The service's stderr goes to a file
 * the test can search (for ID numbers that must never appear).
 */
#ifndef PX_ACT_FIXTURE_H
#define PX_ACT_FIXTURE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "phuxanh/rpc.h"
#include "testd_proc.h"

/* The tree (codes are the national ones):
 *   74 Bình Dương > 725 Thuận An > 25966 Lái Thiêu > 25966-01 Đông Nhì, 25966-02 Đông Tư
 *                                > 25969 Bình Nhâm, 25975 An Phú
 *                 > 718 Thủ Dầu Một > 25747 Phú Cường
 * and, once roster.grown is set, 725 > 25978 Vĩnh Phú.
 * Volunteers TN0001..TN0009 exist; on 2023-07-29 (Viet Nam day) TN0001 is on duty at 25966,
 * TN0002 at 25969. Any other volunteer code is unknown. ListVolunteers (codes) names them
 * "Tình nguyện viên <n>" (e.g. TN0003: "Tình nguyện viên 3"). Campaigns: tn-2023
 * (2023-07-29..2023-08-27), tn-late (ended 2023-01-29), tn-now, tn-pub and warmup (running
 * until 2099); any other id is unknown (GetCampaign NOT_FOUND). */
#define ACT_T_DAY_US 1690599600000000LL /* 2023-07-29T03:00:00Z = 10:00 in Viet Nam */
#define ACT_T_SECRET "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

typedef struct {
    px_rpc_server_t *server;
    char endpoint[128];
    atomic_int get_units_calls, check_duty_calls, list_units_calls, list_volunteers_calls;
    atomic_bool grown; /* set: the tree has a new ward, 25978 Vĩnh Phú (tree version 2) */
} act_roster_t;

typedef struct {
    testd_t proc;
    char *db_url;       /* the service's database (tests may read it directly) */
    char log_path[256]; /* the service's stderr */
    act_roster_t roster;
    px_rpc_client_t *client; /* caller "activation-test" */
} act_fixture_t;

/* Starts the stand-in roster on a free port, then px-activation on a fresh database (prefix
 * [a-z0-9_]) with --verify-interval-ms=300 and the test secret. 0 on success. */
int act_fixture_start(act_fixture_t *f, const char *prefix);
/* The same with a roster of the caller's (e.g. a px-roster process) instead of the stand-in;
 * does not wait for the unit tree. */
int act_fixture_start_with(act_fixture_t *f, const char *prefix, const char *roster_endpoint);
/* Stops the service (SIGTERM; its exit status is returned), the roster, frees. */
int act_fixture_stop(act_fixture_t *f);
/* Stops px-activation (SIGTERM, must exit 0) and starts it again on the same database. */
int act_service_restart(act_fixture_t *f);
/* Stops / starts the stand-in roster (same endpoint). 0 on success. */
void act_roster_stop(act_roster_t *r);
int act_roster_start(act_roster_t *r);

/* "/phuxanh.activation.v1.ActivationService/<method>", 30 s timeout. */
px_code_t act_call(act_fixture_t *f, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply,
                   px_status_t *st);

/* An event on the test's day (plus offset_s), consent given, venue office, own phone. The
 * strings are copied; free with act_event_free. */
Phuxanh__Activation__V1__ActivationEvent *act_event(const char *key, const char *citizen_id,
                                                    const char *unit, int stage, int offset_s);
void act_event_free(Phuxanh__Activation__V1__ActivationEvent *e);
/* RecordEvents of n events; NULL on a call failure (st says why). Free with
 * protobuf_c_message_free_unpacked. */
Phuxanh__Activation__V1__RecordEventsResponse *
act_record(act_fixture_t *f, Phuxanh__Activation__V1__ActivationEvent **events, size_t n,
           px_status_t *st);
/* One event, by value of its fields; returns its result code, or -1 on a call failure. The
 * result is copied into *out when out is not NULL (message into msg of cap bytes). */
int act_record1(act_fixture_t *f, Phuxanh__Activation__V1__ActivationEvent *e, bool *dup, char *msg,
                size_t cap);

/* First column of the first row of sql on the service's database as an integer; -1 on
 * error. */
long long act_sql_int(act_fixture_t *f, const char *sql);
/* The count of a totals row (0 when none). stage 1..4, 101 open follow-ups. */
long long act_total(act_fixture_t *f, const char *campaign, const char *unit, int stage);
/* GetProgress; NULL on failure. */
Phuxanh__Activation__V1__GetProgressResponse *act_progress(act_fixture_t *f, const char *campaign,
                                                           const char *unit, px_status_t *st);

/* Does the file, or the text of every column of every row of every table of the service's
 * database, contain needle? 1 yes, 0 no, -1 on error. */
int act_file_contains(const char *path, const char *needle);
int act_db_contains(act_fixture_t *f, const char *needle);

#endif
