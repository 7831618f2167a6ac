/*
 * webhooks_int.h - what webhooks.c and webhooks_journal.c share (internal).
 *
 * webhooks.c owns the subscribers and what other threads call (the feed's
 * trigger, reload, replay); webhooks_send.c is the module's thread (journaling
 * what the feed handed over, the daily summary, the tries); webhooks_journal.c
 * owns the deliveries' memory and their journal file, so that what is in memory
 * and what is on disk are changed in one place and read back in the same shape.
 */
#ifndef PX_GATEWAY_WEBHOOKS_INT_H
#define PX_GATEWAY_WEBHOOKS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "gateway.h"
#include "webhooks.h"

/* A delivery id: 128 bits as 32 hex characters. */
#define GW__WH_ID_LEN 32
/* A subscriber's name, as the operator spells it in the file (and as replay selects it). */
#define GW__WH_NAME_MAX 64
/* A campaign id (the roster keeps them short; this bounds what the journal accepts). */
#define GW__WH_CAMPAIGN_MAX 64

typedef enum { GW__WH_GREEN = 0, GW__WH_DAILY = 1, GW__WH_KINDS } gw__wh_kind_t;
typedef enum { GW__WH_PENDING = 0, GW__WH_DONE = 1, GW__WH_GAVE_UP = 2 } gw__wh_state_t;

/* The X-Phuxanh-Event of a kind ("ward.green"), and back (false when unknown). */
const char *gw__wh_kind_event(gw__wh_kind_t kind);
bool gw__wh_kind_parse(const char *event, gw__wh_kind_t *kind);

typedef struct {
    /* journaled */
    char id[GW__WH_ID_LEN + 1];
    char subscriber[GW__WH_NAME_MAX + 1];
    gw__wh_kind_t kind;
    int64_t created_us; /* wall clock; replay selects by it */
    int64_t window_us;  /* tries run until window_us + give_up_after: creation, or last replay */
    char *body;         /* the exact bytes signed and sent; never changes */
    size_t body_len;
    gw__wh_state_t state;
    int64_t done_us;
    int status; /* the HTTP status that ended it (done) */
    /* the delivery thread's, not journaled: a restart tries again at once */
    int tries;
    int64_t next_us;
    bool in_flight;
} gw__wh_delivery_t;

void gw__wh_delivery_free(gw__wh_delivery_t *d);

/* ---------------------------------------------------------------- a map of strings */

/* Open addressing over malloc'd copies of the keys; deleted slots are tombstones until the
 * next growth. */
typedef struct {
    char **keys;
    void **vals;
    size_t cap, used, live; /* used counts tombstones too */
} gw__wh_map_t;

void *gw__wh_map_get(const gw__wh_map_t *m, const char *key);
/* Inserts or replaces; false when out of memory. */
bool gw__wh_map_put(gw__wh_map_t *m, const char *key, void *val);
void gw__wh_map_del(gw__wh_map_t *m, const char *key);
void gw__wh_map_free(gw__wh_map_t *m);
/* The i-th live key, for i in [0, cap): NULL for an empty or deleted slot. */
const char *gw__wh_map_key_at(const gw__wh_map_t *m, size_t i);

/* The green set's key for (campaign, unit). */
#define GW__WH_GREEN_KEY_MAX (GW__WH_CAMPAIGN_MAX + 24 + 2)
void gw__wh_green_key(char *buf, const char *campaign, const char *unit);

/* ---------------------------------------------------------------- the journal and the store */

typedef struct {
    char *path, *tmp_path, *dir;
    int fd;                /* O_APPEND */
    int lock_fd;           /* holds the state directory's lock while open */
    int64_t size;          /* bytes known whole: a failed append is cut back to here */
    gw__wh_delivery_t **v; /* every delivery kept, in creation order */
    size_t n, cap;
    gw__wh_map_t by_id;
    gw__wh_map_t green;   /* (campaign, unit) announced green, as journaled */
    size_t records;       /* records in the file */
    int64_t compacted_us; /* when it was last rewritten */
    px_log_t *log;
} gw__wh_store_t;

/* Locks the state directory (FAILED_PRECONDITION when another process has it), reads
 * <dir>/webhooks.journal (missing: empty; a torn last line ignored; a bad line in the middle
 * skipped, logged, and the old file kept as webhooks.journal.corrupt-<time>), then compacts
 * it. The store must be zeroed. */
px_code_t gw__wh_store_open(gw__wh_store_t *s, const char *dir, int64_t now_us, int64_t horizon_us,
                            px_log_t *log, px_status_t *st);
void gw__wh_store_close(gw__wh_store_t *s);
/* Drops finished deliveries created before now - horizon, from memory and from the file,
 * which is rewritten (temp file, fsync, rename, fsync of the directory). */
px_code_t gw__wh_store_compact(gw__wh_store_t *s, int64_t now_us, int64_t horizon_us,
                               px_status_t *st);
/* Whether the file has grown enough, or aged enough, to be worth compacting. */
bool gw__wh_store_compact_due(const gw__wh_store_t *s, int64_t now_us);

/* Records, one line each, appended to b; written by gw__wh_store_commit. */
void gw__wh_rec_enqueue(gw_buf_t *b, const gw__wh_delivery_t *d);
void gw__wh_rec_done(gw_buf_t *b, const gw__wh_delivery_t *d);
void gw__wh_rec_gave_up(gw_buf_t *b, const gw__wh_delivery_t *d);
void gw__wh_rec_replay(gw_buf_t *b, const gw__wh_delivery_t *d);
void gw__wh_rec_green(gw_buf_t *b, const char *campaign, const char *unit, bool green);
/* Appends b's records and fsyncs: only then may the caller change memory to match. A failed
 * write is cut back so the file stays whole. Empty b: PX_OK at once. */
px_code_t gw__wh_store_commit(gw__wh_store_t *s, const gw_buf_t *b, px_status_t *st);

/* Memory only (after a commit). add takes d (false, d untouched, when out of memory). */
bool gw__wh_store_add(gw__wh_store_t *s, gw__wh_delivery_t *d);
gw__wh_delivery_t *gw__wh_store_find(const gw__wh_store_t *s, const char *id);

/* ---------------------------------------------------------------- subscribers (webhooks.c) */

typedef struct {
    char name[GW__WH_NAME_MAX + 1];
    char *url;
    char *secret;                           /* never logged */
    unsigned kinds;                         /* 1u << gw__wh_kind_t */
    char campaign[GW__WH_CAMPAIGN_MAX + 1]; /* "": any (green only) */
    size_t nunits;                          /* 0: every unit */
    char units[GW_SCOPE_MAX][24];
} gw__wh_sub_t;

typedef struct {
    gw__wh_sub_t *v;
    size_t n;
} gw__wh_subs_t;

const gw__wh_sub_t *gw__wh_sub_find(const gw__wh_subs_t *subs, const char *name);

/* ---------------------------------------------------------------- the module */

/* What the feed thread hands over: a ward whose green flag differs from what was announced. */
typedef struct {
    char campaign[GW__WH_CAMPAIGN_MAX + 1];
    char unit[24];
    bool green;
    int32_t target, activated;
    int64_t changed_s;
    int32_t changed_ns;
} gw__wh_change_t;

typedef struct gw__wh_try_t gw__wh_try_t;

/* Tries in flight at once: enough for every subscriber of a province at once, few enough
 * that a flood of deliveries cannot take all the gateway's descriptors. */
#define GW__WH_TRIES_MAX 64

struct gw_webhooks_t {
    gw_webhooks_opts_t opts; /* numbers with their defaults; strings not kept (below) */
    char *subs_path;
    pthread_t thread;
    bool started;
    CURLM *multi; /* the thread's, but curl_multi_wakeup is for any thread */

    /* Under mu (never held by the feed thread): */
    pthread_mutex_t mu;
    gw__wh_subs_t *subs;
    gw__wh_store_t store;
    int64_t due_us; /* no pending delivery is due before this (0: look now) */

    /* Under in_mu (held only for memory, so the feed thread never waits on a disk): */
    pthread_mutex_t in_mu;
    bool stop;
    gw__wh_map_t announced; /* what the feed side believes announced: its filter */
    gw__wh_change_t *inbox;
    size_t in_n, in_cap;

    /* The thread's: */
    gw__wh_try_t *tries[GW__WH_TRIES_MAX];
    size_t ntries;
    int32_t daily_done_day; /* the day whose summaries are all made, -1 none */
    int64_t daily_retry_us;

    atomic_uint_fast64_t delivered, failed_tries, pending, given_up, dropped;
};

/* The module's thread (webhooks_send.c). */
void *gw__wh_run(void *self);
/* The clock every decision uses (opts.now, or the wall clock). */
int64_t gw__wh_now(const gw_webhooks_t *self);

#endif
