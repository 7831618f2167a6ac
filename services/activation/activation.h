/*
 * activation.h - what the activation service's files share: its state, the
 * unit-tree cache, the citizen ID check, the method tables each file
 * contributes, and helpers for what every handler does (audit, database
 * failures, building array parameters).
 *
 * Each file owns one group of methods and exports its table; main.c joins
 * them. Handlers follow validate -> load -> decide -> write -> reply, with
 * their SQL as named statements at the top of their file.
 */
#ifndef PX_ACTIVATION_H
#define PX_ACTIVATION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/db.h"
#include "phuxanh/log.h"
#include "phuxanh/metrics.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "phuxanh/rpc.h"

/* Bounds on what one call may carry (the proto's comments state them to clients). */
#define ACT_MAX_EVENTS 1000
#define ACT_MAX_TARGETS 10000
#define ACT_MAX_TARGET 100000000
#define ACT_KEY_MAX 128
#define ACT_CODE_MAX 32
#define ACT_CAMPAIGN_MAX 64
#define ACT_NOTE_MAX 500
/* Clock skew allowed on occurred_at ("not in the future, a few minutes of skew"). */
#define ACT_FUTURE_SKEW_US (5LL * 60 * 1000000)
/* The longest the roster is waited for inside a call, all its roster calls together, from
 * the handler's start: past that the event is taken unverified (duty) or refused UNAVAILABLE
 * (an unknown unit or campaign). */
#define ACT_ROSTER_BUDGET_MS 2000
/* The pseudo-stage under which totals keeps the open follow-ups of a unit. */
#define ACT_TOTAL_FOLLOW_UPS 101

#define ACT_HMAC_BYTES 32
#define ACT_SECRET_BYTES 32

/* ---------------------------------------------------------------- citizen ID */

/* Checks a 12-digit CCCD number against the event's year (in Viet Nam): 12 ASCII digits, a
 * province-of-birth code of Decree 137/2015, a century-and-sex digit, and an age of at least
 * 14 that year. On failure writes a message naming "citizen_id" (never the number) into msg
 * and returns false. */
bool act_citizen_id_check(const char *id, int event_year, char *msg, size_t cap);
/* HMAC-SHA256 of the 12 digits under secret; the citizen's key. */
void act_citizen_key(const unsigned char secret[ACT_SECRET_BYTES], const char *id,
                     unsigned char out[ACT_HMAC_BYTES]);
/* Is code one of the 63 province-of-birth codes ("001".."096")? */
bool act_province_code_valid(const char *code3);

/* ---------------------------------------------------------------- unit tree cache */

typedef struct act_units_t act_units_t;

typedef struct {
    char code[ACT_CODE_MAX + 1];
    char parent[ACT_CODE_MAX + 1];
    int level; /* Phuxanh__Roster__V1__UnitLevel: 1 province .. 4 neighborhood */
    char *name;
} act_unit_t;

act_units_t *act_units_new(void);
void act_units_destroy(act_units_t **self_p);
/* Loads the local units table into the cache (at start). */
px_code_t act_units_load(act_units_t *self, px_db_t *db, px_status_t *st);
/* Copies the unit into *out; false when unknown to the cache. Thread-safe. */
bool act_units_get(act_units_t *self, const char *code, act_unit_t *out);
/* Makes sure every code (and its ancestors) is in the cache: asks the roster's GetUnits for
 * those it does not know (one call, deadline act_roster_deadline), stores what
 * comes back in the cache and the local units table. OK when the roster answered (codes it
 * does not know stay unknown); UNAVAILABLE when there was something to ask and the roster
 * could not answer. */
px_code_t act_units_ensure(act_units_t *self, px_rpc_ctx_t *ctx, const char *const *codes, size_t n,
                           px_status_t *st);
/* Stores units (from GetUnits or ListUnits) in the cache and, when db is not NULL, in the
 * local units table (one statement). */
px_code_t act_units_store(act_units_t *self, px_db_t *db, Phuxanh__Roster__V1__Unit *const *units,
                          size_t n, px_status_t *st);
/* The chain of codes a count goes to for a ward (and optional neighborhood): the
 * neighborhood, the ward, then each ancestor up to the province. Returns how many (<= cap). */
size_t act_units_chain(act_units_t *self, const char *ward, const char *neighborhood,
                       char out[][ACT_CODE_MAX + 1], size_t cap);
int64_t act_units_version(act_units_t *self);
/* Records the tree version of a complete read (in memory and in units_sync). */
px_code_t act_units_set_version(act_units_t *self, px_db_t *db, int64_t version, px_status_t *st);

/* ---------------------------------------------------------------- campaign cache */

typedef struct act_campaigns_t act_campaigns_t;

act_campaigns_t *act_campaigns_new(void);
void act_campaigns_destroy(act_campaigns_t **self_p);
/* Loads the local campaigns table into the cache (at start). */
px_code_t act_campaigns_load(act_campaigns_t *self, px_db_t *db, px_status_t *st);
/* Is the campaign known to the cache? Thread-safe. */
bool act_campaigns_known(act_campaigns_t *self, const char *id);
/* Makes sure the campaign is in the cache when the roster has it: asks GetCampaign when the
 * cache does not know it (deadline act_roster_deadline). OK when known or when
 * the roster answered (NOT_FOUND leaves it unknown); UNAVAILABLE when it could not answer. */
px_code_t act_campaigns_ensure(act_campaigns_t *self, px_rpc_ctx_t *ctx, const char *id,
                               px_status_t *st);
/* Stores campaigns (from GetCampaign or ListCampaigns) in the local table and the cache. */
px_code_t act_campaigns_store(act_campaigns_t *self, px_db_t *db,
                              Phuxanh__Roster__V1__Campaign *const *campaigns, size_t n,
                              px_status_t *st);
/* For a handler: fails the call NOT_FOUND ("<field>: no campaign ...") when the roster has no
 * such campaign, UNAVAILABLE when it could not be asked and the cache does not know it. */
px_code_t act_campaign_check(px_rpc_ctx_t *ctx, const char *field, const char *id);

/* ---------------------------------------------------------------- the service */

typedef struct act_verifier_t act_verifier_t;
typedef struct act_retention_t act_retention_t;
typedef struct act_pub_t act_pub_t;
typedef struct act_replica_t act_replica_t;

/* Shared by all workers: the secret and the config are read-only after start; the unit cache
 * locks itself. */
typedef struct {
    unsigned char secret[ACT_SECRET_BYTES];
    act_units_t *units;
    act_campaigns_t *campaigns;
    px_log_t *log;
    int verify_interval_ms;
    act_verifier_t *verifier;
    act_retention_t *retention; /* retention.c */
    act_pub_t *pub;             /* NULL when pub-endpoint is empty or could not be bound */
    act_replica_t *replica;     /* replica.c; NULL without read-db-url */
    /* CURVE for the feed and the verifier's roster client (NULL: plaintext); the RPC server
     * has the runtime's own, read from the same options. SIGHUP re-reads both lists. */
    px_curve_t *curve;
    char person_readers[512]; /* callers allowed one person's records, comma-separated */
    /* In the server's metrics registry (main.c's metrics hook); NULL until then, and a NULL
     * series takes updates as no-ops. */
    px_metrics_series_t *m_events_recorded;
    px_metrics_series_t *m_events_duplicate;
    px_metrics_series_t *m_events_refused;
    px_metrics_series_t *m_feed_dropped; /* copied from act_pub_dropped when collected */
    px_metrics_series_t *m_replica_usable, *m_replica_lag; /* copied from act_replica_* */
    px_metrics_series_t *m_reads_replica, *m_reads_primary;
} act_t;

/* Method tables, one per file. */
extern const px_rpc_method_t act_events_methods[];
extern const size_t act_events_methods_count;
extern const px_rpc_method_t act_progress_methods[];
extern const size_t act_progress_methods_count;
extern const px_rpc_method_t act_counts_methods[]; /* counts.c */
extern const size_t act_counts_methods_count;
extern const px_rpc_method_t act_followups_methods[]; /* followups.c */
extern const size_t act_followups_methods_count;
extern const px_rpc_method_t act_citizens_methods[]; /* citizens.c */
extern const size_t act_citizens_methods_count;

/* The background pass (verifier.c): every interval, asks the roster about the events whose
 * volunteer could not be checked, and refreshes the unit tree (ListUnits since_version) and
 * the campaigns (ListCampaigns). Its own database connection and its own client. */
act_verifier_t *act_verifier_start(act_t *act, const char *db_url, const char *roster_endpoints,
                                   px_status_t *st);
void act_verifier_stop(act_verifier_t **self_p);

/* The retention pass (retention.c): every interval_s, purges the person-level data (citizen
 * keys and notes in events, citizens rows, follow-ups) of the campaigns whose last day is more
 * than days ago, and folds closed days' counter shards (act_fold_daily); counts stay. Its own
 * database connection. The first pass runs one interval after start. */
/* Folds the daily counter shards of days before yesterday (Viet Nam) into shard 0, a page of
 * rows per statement (each its own transaction); run by the retention thread every pass.
 * Returns the rows moved, -1 when nothing could be (st says why). (fold.c) */
long long act_fold_daily(px_db_t *db, px_status_t *st);
act_retention_t *act_retention_start(act_t *act, const char *db_url, int days, int interval_s,
                                     px_status_t *st);
void act_retention_stop(act_retention_t **self_p);

/* The PUB socket of the live feed (publisher.c): one thread owns the socket bound to endpoint
 * and its own database connection; workers hand it what they changed. */
typedef struct {
    const char *campaign, *unit;
    int stage; /* 1..4, or 0: the target changed; others (the follow-ups pseudo-stage) skipped */
} act_change_t;
/* The changes waiting for the publisher thread. The default holds several batches of 1,000
 * events (each changes at most a few thousand rows: 4 levels x 4 stages per citizen, folded)
 * while the thread reads the figures; the ring and the thread's copy cost ~112 bytes an entry
 * each, so the most stays under 60 MB. The least is for tests that make it overflow. */
#define ACT_PUB_QUEUE_DEFAULT 16384
#define ACT_PUB_QUEUE_MIN 4
#define ACT_PUB_QUEUE_MAX 262144
/* Heartbeats: more often than every 100 ms is noise on every subscriber; rarer than a minute
 * and a feed that is down goes unnoticed for minutes. */
#define ACT_PUB_HEARTBEAT_DEFAULT_MS 1000
#define ACT_PUB_HEARTBEAT_MIN_MS 100
#define ACT_PUB_HEARTBEAT_MAX_MS 60000
typedef struct {
    size_t queue_max;  /* ACT_PUB_QUEUE_MIN..ACT_PUB_QUEUE_MAX */
    int heartbeat_ms;  /* ACT_PUB_HEARTBEAT_MIN_MS..ACT_PUB_HEARTBEAT_MAX_MS */
    px_curve_t *curve; /* borrowed, outlives the publisher; NULL: plaintext */
} act_pub_opts_t;
/* Binds endpoint and starts the thread, under a publisher id drawn at random (libsodium must
 * be initialised). NULL when it could not (st says why). */
act_pub_t *act_pub_start(const char *endpoint, const char *db_url, const act_pub_opts_t *opts,
                         px_log_t *log, px_status_t *st);
void act_pub_stop(act_pub_t **self_p);
/* After a commit: queues one CountsChanged per change, committed at at_us. Never blocks on
 * the network or the database and never fails: when the queue is full the changes are
 * dropped, and each still uses up its sequence number (the gap tells subscribers). self may
 * be NULL (publishing disabled). */
void act_pub_post(act_pub_t *self, const act_change_t *changes, size_t n, int64_t at_us);
/* n changes that could not even be handed over (out of memory building them): dropped, and
 * their numbers used up likewise. self may be NULL. */
void act_pub_lost(act_pub_t *self, size_t n);
/* Changes dropped so far (queue full, figures not read, send failed). */
long long act_pub_dropped(act_pub_t *self);

/* The read replica (replica.c): count and progress reads go to a streaming replica at url
 * while it is reachable and at most max_lag_ms behind primary_url, as a prober thread checks
 * every probe_ms; to the primary otherwise. NULL when it could not start (st says why). */
act_replica_t *act_replica_start(const char *url, const char *primary_url, int max_lag_ms,
                                 int probe_ms, px_log_t *log, px_status_t *st);
void act_replica_stop(act_replica_t **self_p);
/* Whether reads go to the replica now (false for NULL). */
bool act_replica_usable(act_replica_t *self);
/* How far behind it was at the last probe, in ms; -1 when unreachable (or self NULL). */
int64_t act_replica_lag_ms(act_replica_t *self);
/* Reads run on the replica and on the primary so far (0 for NULL). */
void act_replica_reads(act_replica_t *self, long long *replica, long long *primary);
/* px_db_execp for a count or progress read: on the replica when it is usable, else - or when
 * it fails there - on the worker's primary connection. Never waits for a replica known down. */
px_code_t act_read_execp(px_rpc_ctx_t *ctx, const px_db_stmt_t *stmt, int nparams,
                         const char *const *params, PGresult **res, px_status_t *st);

/* ---------------------------------------------------------------- helpers */

/* Checks a read's campaign_id and unit_code - both must be known to the roster - and finds
 * the unit (asking the roster when the cache does not know it). Fails the call
 * (INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE) and returns its code otherwise. out may be NULL;
 * out->name is not set. (counts.c) */
px_code_t act_check_scope(px_rpc_ctx_t *ctx, const char *campaign, const char *unit,
                          act_unit_t *out);
/* Adds delta to the open follow-up counters (totals, ACT_TOTAL_FOLLOW_UPS) of the chain of
 * (ward, neighborhood), n rows, inside the caller's transaction - the same chain RecordEvents
 * counted them on - in counter shard `shard` (act_shard). (followups.c) */
px_code_t act_follow_ups_count(act_units_t *units, px_db_t *db, int shard, const char *campaign,
                               const char *const *wards, const char *const *neighborhoods,
                               const int *deltas, size_t n, px_status_t *st);

/* The columns of a follow_ups row (aliased f) act_follow_up_row reads, in this order. */
#define ACT_FU_COLS                                                                                \
    "f.id, f.kind, f.campaign_id, f.unit_code, f.neighborhood_code, f.volunteer_code, f.note, "    \
    "f.last3, (extract(epoch FROM f.created_at) * 1000000)::bigint, "                              \
    "(extract(epoch FROM f.resolved_at) * 1000000)::bigint, f.resolution, f.resolved_by"
/* A FollowUp from row `row` of a result selecting ACT_FU_COLS, in call memory; NULL when out
 * of memory. (followups.c) */
Phuxanh__Activation__V1__FollowUp *act_follow_up_row(px_rpc_ctx_t *ctx, const PGresult *res,
                                                     int row);

/* Person-level methods (one person's record, the follow-up and stalled lists) answer only the
 * callers named in person-readers: otherwise fails the call PERMISSION_DENIED naming the
 * caller and returns that code. (common.c) */
px_code_t act_person_reader_check(px_rpc_ctx_t *ctx);
/* Appends one row to the audit table (inside the caller's transaction): caller, whom it acts
 * for (x-on-behalf-of, "" when nobody), method and request id from ctx, detail a JSON object
 * text or NULL. */
px_code_t act_audit(px_rpc_ctx_t *ctx, const char *detail_json);
/* The same row as a step of a pipeline (px_db_pipeline); params (5) must outlive the step. */
void act_audit_step(px_rpc_ctx_t *ctx, const char *detail_json, const char *params[5],
                    px_db_step_t *step);
/* The counter shard a handler writes totals and daily rows to (0004_counter_shards.sql):
 * its worker's number, so that calls in flight at once never wait on each other's rows. */
int act_shard(px_rpc_ctx_t *ctx);
/* Turns a database failure into the call's status (message kept, UNAVAILABLE stays). */
px_code_t act_db_fail(px_rpc_ctx_t *ctx, const px_status_t *st);
/* The deadline of a roster call made inside a handler: the call's own deadline or
 * ACT_ROSTER_BUDGET_MS from the handler's start, whichever comes first - one budget for all
 * the roster calls of a handler, so that a roster that is down costs a call 2 s, not 2 s a
 * step. (With opts.parent set the client takes
 * the parent's deadline and ignores timeout_ms, so the budget must be a deadline.) */
int64_t act_roster_deadline(px_rpc_ctx_t *ctx);
/* A code as it may be echoed in a message: itself, unless it holds 12 digits in a row (an ID
 * number put in the wrong field must not come back in a message or a log). */
const char *act_echo(const char *code);
/* A code: 1..max of [A-Za-z0-9-_.]. */
bool act_code_ok(const char *s, size_t max);

/* A PostgreSQL array literal built element by element ("{\"a\",\"b\",NULL}"). */
typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} act_arr_t;
void act_arr_init(act_arr_t *a);
/* s NULL appends SQL NULL. */
void act_arr_add(act_arr_t *a, const char *s);
void act_arr_addf(act_arr_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The finished literal ("{...}"), or NULL when out of memory. Owned by a. */
const char *act_arr_end(act_arr_t *a);
void act_arr_free(act_arr_t *a);

/* Lowercase hex of n bytes into out (2n+1). */
void act_hex(const unsigned char *in, size_t n, char *out);

#endif
