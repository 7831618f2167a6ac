/*
 * act_fixture.h - px-activation as a process on its own fresh database, the
 * px-roster process it asks about units, campaigns and duty (on a fresh
 * database of its own), and a client to it, for the activation tests.
 *
 * The roster is the real service, not a stand-in: what the activation service
 * is tested against is what it meets in production. It listens on a port
 * chosen once, so a test can stop it and start it again on the same endpoint;
 * it logs at debug level to a file, where each call it answered is one
 * RPC-CALL line, so a test can count the calls it got. The activation
 * service's stderr goes to a file too, that the test can search (for ID
 * numbers that must never appear).
 */
#ifndef PX_ACT_FIXTURE_H
#define PX_ACT_FIXTURE_H

#include <stdbool.h>

#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "phuxanh/rpc.h"
#include "testd_proc.h"

/* What the roster holds (loaded by SQL before the activation service starts). The tree (codes
 * are the national ones):
 *   74 Bình Dương > 725 Thuận An > 25966 Lái Thiêu > 25966-01 Đông Nhì, 25966-02 Đông Tư
 *                                > 25969 Bình Nhâm, 25975 An Phú
 *                 > 718 Thủ Dầu Một > 25747 Phú Cường
 * all at tree version 1, and once act_roster_grow has run, 725 > 25978 Vĩnh Phú at version 2.
 * Volunteers TN0001..TN0009, named "Tình nguyện viên <n>" (e.g. TN0003: "Tình nguyện viên
 * 3"); any other volunteer code is unknown. Campaigns ("Chiến dịch <id>"): tn-2023
 * (2023-07-29..2023-08-27), tn-late (2023-01-07..2023-01-29), tn-now, tn-pub and warmup
 * (2023-07-01..2099-12-31); any other id is unknown (GetCampaign NOT_FOUND). tn-2023 has a wave
 * on 2023-07-29 (Viet Nam day) with TN0001 assigned to 25966 and TN0002 to 25969; nobody is
 * assigned on any other day or in any other campaign. */
#define ACT_T_DAY_US 1690599600000000LL /* 2023-07-29T03:00:00Z = 10:00 in Viet Nam */
#define ACT_T_SECRET "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

typedef struct {
    testd_t proc;       /* pid 0 while stopped */
    char *db_url;       /* the roster's database */
    char endpoint[128]; /* tcp://127.0.0.1:<port>, the same across restarts */
    char log_path[256]; /* its stderr, at debug level */
} act_roster_t;

typedef struct {
    testd_t proc;
    char *db_url;       /* the service's database (tests may read it directly) */
    char log_path[256]; /* the service's stderr */
    act_roster_t roster;
    px_rpc_client_t *client; /* caller "activation-test" */
} act_fixture_t;

/* Starts px-roster on a fresh database and a free port and loads it (see above), then
 * px-activation on a fresh database (prefix [a-z0-9_]) with --verify-interval-ms=300 and the
 * test secret, and waits until the service has read the whole unit tree. 0 on success. */
int act_fixture_start(act_fixture_t *f, const char *prefix);
/* Stops the service and the roster (SIGTERM each, both must exit 0) and frees; returns the
 * service's exit status, or -1 when the roster did not exit cleanly. */
int act_fixture_stop(act_fixture_t *f);
/* Stops px-activation (SIGTERM, must exit 0) and starts it again on the same database. */
int act_service_restart(act_fixture_t *f);

/* Kills the roster (SIGKILL: down at once, as after a crash). */
void act_roster_stop(act_roster_t *r);
/* Starts it again on the same endpoint and database. 0 on success. */
int act_roster_start(act_roster_t *r);
/* Adds ward 25978 Vĩnh Phú under 725 to the roster's tree, at a new tree version (ListUnits
 * since the version before returns it). Works whether the roster is up or down. 0 on
 * success. */
int act_roster_grow(act_roster_t *r);
/* How many calls of method ("CheckDuty") the roster has answered so far, by its log; -1 on
 * error. The roster logs a call just after sending its reply, so a call whose reply the caller
 * has already seen may not be counted yet: act_roster_calls_wait polls until at least want are
 * counted (5 s at most), waits a little more so that a surplus call would show too, and returns
 * the count then. */
int act_roster_calls(act_roster_t *r, const char *method);
int act_roster_calls_wait(act_roster_t *r, const char *method, int want);

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
