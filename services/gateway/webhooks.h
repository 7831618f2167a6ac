/*
 * webhooks.h - signed, durable webhooks: px-gateway tells other systems when a
 * ward goes green, and sends each subscriber a daily summary, so nobody polls.
 *
 * The operator keeps the subscribers in a file (one per line, see webhooks.c);
 * every delivery is written to a journal under the state directory and fsync'ed
 * before its first try, retried with exponential backoff for a day, and kept for
 * replay. A receiver verifies X-Phuxanh-Signature and drops repeats by
 * X-Phuxanh-Delivery, which stays the same across retries, restarts and replays.
 *
 * Threads: gw_webhooks_on_change runs on the feed thread and only hands over;
 * deliveries, the daily summary and the journal's fsyncs run on the module's own
 * thread; reload, replay and counts may be called from any thread.
 */
#ifndef PX_GATEWAY_WEBHOOKS_H
#define PX_GATEWAY_WEBHOOKS_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway.h"
#include "phuxanh/log.h"
#include "phuxanh/status.h"

typedef struct gw_webhooks_t gw_webhooks_t;

/* A unit's progress for the daily summary: the GetProgress answer for (campaign, unit) as
 * JSON, malloc'd into *json_out (the module frees it). 0 on success, anything else when it
 * could not be had. Runs on the webhooks thread, which it may block (the lead's calls it
 * through the backend). */
typedef int (*gw_webhooks_progress_fn)(void *ctx, const char *campaign, const char *unit,
                                       char **json_out);

/* The wall clock in microseconds since the epoch (tests move it; NULL: the real one). */
typedef int64_t (*gw_webhooks_now_fn)(void *ctx);

/* Every number that is 0 takes the default named beside it. */
typedef struct {
    const char *subscribers_file;     /* the operator's file; required */
    const char *state_dir;            /* where webhooks.journal lives; required, must exist */
    gw_units_t *units;                /* the unit tree: which units are wards, what is under what */
    gw_webhooks_progress_fn progress; /* NULL: no daily summaries */
    void *progress_ctx;
    int daily_hour;            /* hour of the daily summary, 0-23 in Viet Nam (UTC+7); -1 off */
    int64_t retry_first_ms;    /* the first retry's delay: 10,000; then doubled each try */
    int64_t retry_max_ms;      /* ... up to 3,600,000 */
    int64_t give_up_after_ms;  /* no try starts this long after creation (or replay): 1 day */
    int64_t try_timeout_ms;    /* one try, connection included: 10,000 */
    int64_t replay_horizon_ms; /* finished deliveries are kept (and replayable) 7 days */
    size_t max_pending;        /* deliveries waiting at most: 100,000; past it new ones are
                                * refused (logged, counted as dropped) */
    gw_webhooks_now_fn now;
    void *now_ctx;
    px_log_t *log;
} gw_webhooks_opts_t;

/* Reads the subscribers file and the journal (a torn last line from a crash is ignored),
 * compacts the journal and starts the thread, which retries what was pending. NULL and st
 * set when the file has a bad line (its number is in the message), the state directory is
 * not writable, or the journal cannot be read. */
gw_webhooks_t *gw_webhooks_new(const gw_webhooks_opts_t *opts, px_status_t *st);

/* Stops the thread: tries in flight are abandoned and stay pending in the journal, to be
 * tried again by the next gw_webhooks_new on the same state directory. */
void gw_webhooks_destroy(gw_webhooks_t **self_p);

/* Reads the subscribers file again (SIGHUP). On a bad line the old set stays and st names
 * the line. */
px_code_t gw_webhooks_reload(gw_webhooks_t *self, px_status_t *st);

/* Has the signature of gw_feed_change_fn: give it as the feed's on_change with the module as
 * ctx. Called for each phuxanh.activation.v1.CountsChanged; never blocks. */
void gw_webhooks_on_change(void *ctx, const ProtobufCMessage *counts_changed);

/* Sends again every delivery created at or after since_unix_us, to one subscriber (by name) or
 * to all (NULL), with the same delivery ids; *count says how many. NOT_FOUND for a name that
 * is not a subscriber; RESOURCE_EXHAUSTED (nothing done) when they would not fit under
 * max_pending. */
px_code_t gw_webhooks_replay(gw_webhooks_t *self, int64_t since_unix_us, const char *subscriber,
                             size_t *count, px_status_t *st);

/* For /metrics: deliveries delivered, tries that failed, deliveries pending now, given up,
 * and refused (past max_pending, or the journal would not take them) since the start. Any
 * pointer may be NULL. */
void gw_webhooks_counts(gw_webhooks_t *self, uint64_t *delivered, uint64_t *failed_tries,
                        uint64_t *pending, uint64_t *given_up, uint64_t *dropped);

#endif
