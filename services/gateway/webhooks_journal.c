/*
 * webhooks_journal.c - the webhooks' deliveries, in memory and in their journal.
 *
 * The gateway has no database, and a delivery must outlive a restart or a crash
 * from the moment it exists. So every change is a record appended to
 * <state-dir>/webhooks.journal, one JSON object per line, and fsync'ed before
 * memory changes to match:
 *
 *   {"op":"enqueue","id":..,"subscriber":..,"kind":"ward.green","created_us":..,"body":".."}
 *   {"op":"done","id":..,"at_us":..,"status":200}
 *   {"op":"gave_up","id":..}
 *   {"op":"replay","id":..,"at_us":..}       (pending again; its retry day starts at at_us)
 *   {"op":"green","campaign":..,"unit":..}   (announced; "not_green" takes it back)
 *
 * The body is kept as a string, byte for byte, so a retry or a replay signs and
 * sends exactly what the first try did.
 *
 * Reading back applies the records in order. A crash can leave a last line cut
 * short (no newline): that record was never acknowledged, so it is ignored. A bad
 * line anywhere else is corruption: it is skipped and logged, and the old file is
 * kept beside the new one for a person to look at.
 *
 * The file only grows between compactions, which rewrite it (temp file, fsync,
 * rename, fsync of the directory, so a crash leaves the old file or the new one,
 * never half of either) with what is still wanted: pending deliveries, finished
 * ones younger than the replay horizon, and the green set. Compaction runs at
 * every start (which also removes a torn tail before anything is appended after
 * it) and when the file has grown to several times what it keeps, or is a day old.
 *
 * Two gateways appending to one journal would each compact away the other's
 * records, so the state directory is locked (flock on webhooks.lock) while open;
 * the lock goes with the process, however it ends.
 *
 * Locking between threads is the caller's (webhooks.c holds its lock around every
 * call here).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "phuxanh/hash.h"
#include "phuxanh/log.h"
#include "webhooks_int.h"

#define JOURNAL_NAME "webhooks.journal"
#define LOCK_NAME "webhooks.lock"
/* A record is at most a body (webhooks.c bounds it at 4 MiB) with its escapes: a longer line
 * can only be damage. */
#define LINE_MAX_BYTES (16 * 1024 * 1024)
/* Compact when the file holds this many records and more than twice what it would keep... */
#define COMPACT_MIN_RECORDS 10000
/* ... or once a day, so finished deliveries past the replay horizon leave memory too. */
#define COMPACT_EVERY_US (24LL * 3600 * 1000000)

static const char *const s_events[GW__WH_KINDS] = {"ward.green", "daily.summary"};

const char *gw__wh_kind_event(gw__wh_kind_t kind)
{
    return (unsigned)kind < GW__WH_KINDS ? s_events[kind] : "?";
}

bool gw__wh_kind_parse(const char *event, gw__wh_kind_t *kind)
{
    for (int i = 0; i < GW__WH_KINDS; i++) {
        if (event && strcmp(event, s_events[i]) == 0) {
            *kind = (gw__wh_kind_t)i;
            return true;
        }
    }
    return false;
}

void gw__wh_delivery_free(gw__wh_delivery_t *d)
{
    if (d) {
        free(d->body);
        free(d);
    }
}

void gw__wh_green_key(char *buf, const char *campaign, const char *unit)
{
    /* \x1f (unit separator) appears in neither a campaign id nor a unit code. */
    snprintf(buf, GW__WH_GREEN_KEY_MAX, "%.*s\x1f%.23s", GW__WH_CAMPAIGN_MAX, campaign, unit);
}

/* ---------------------------------------------------------------- the map */

static char s_tomb; /* marks a deleted slot */
#define TOMB (&s_tomb)

static uint64_t s_hash(const char *s)
{
    return px_hash_str(s, PX_HASH_SEED);
}

/* The slot holding key, or else the first free one on its path (a tombstone if passed). */
static size_t s_slot(const gw__wh_map_t *m, const char *key, bool *found)
{
    size_t mask = m->cap - 1, free_at = SIZE_MAX;
    for (size_t i = s_hash(key) & mask;; i = (i + 1) & mask) {
        char *k = m->keys[i];
        if (!k) {
            *found = false;
            return free_at != SIZE_MAX ? free_at : i;
        }
        if (k == TOMB) {
            free_at = free_at == SIZE_MAX ? i : free_at;
        } else if (strcmp(k, key) == 0) {
            *found = true;
            return i;
        }
    }
}

void *gw__wh_map_get(const gw__wh_map_t *m, const char *key)
{
    bool found = false;
    if (!m->cap) {
        return NULL;
    }
    size_t i = s_slot(m, key, &found);
    return found ? m->vals[i] : NULL;
}

static bool s_grow(gw__wh_map_t *m)
{
    size_t cap = 16;
    while (cap < 4 * (m->live + 1)) {
        cap *= 2;
    }
    gw__wh_map_t g = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(void *)), cap, 0, 0};
    if (!g.keys || !g.vals) {
        free(g.keys);
        free(g.vals);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] && m->keys[i] != TOMB) {
            bool found;
            size_t j = s_slot(&g, m->keys[i], &found);
            g.keys[j] = m->keys[i];
            g.vals[j] = m->vals[i];
            g.used++;
            g.live++;
        }
    }
    free(m->keys);
    free(m->vals);
    *m = g;
    return true;
}

bool gw__wh_map_put(gw__wh_map_t *m, const char *key, void *val)
{
    if (2 * (m->used + 1) > m->cap && !s_grow(m)) {
        return false;
    }
    bool found = false;
    size_t i = s_slot(m, key, &found);
    if (!found) {
        char *k = strdup(key);
        if (!k) {
            return false;
        }
        m->used += m->keys[i] == TOMB ? 0 : 1;
        m->keys[i] = k;
        m->live++;
    }
    m->vals[i] = val;
    return true;
}

void gw__wh_map_del(gw__wh_map_t *m, const char *key)
{
    bool found = false;
    if (!m->cap) {
        return;
    }
    size_t i = s_slot(m, key, &found);
    if (found) {
        free(m->keys[i]);
        m->keys[i] = TOMB;
        m->vals[i] = NULL;
        m->live--;
    }
}

void gw__wh_map_free(gw__wh_map_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] != TOMB) {
            free(m->keys[i]);
        }
    }
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

const char *gw__wh_map_key_at(const gw__wh_map_t *m, size_t i)
{
    return i < m->cap && m->keys[i] != TOMB ? m->keys[i] : NULL;
}

/* ---------------------------------------------------------------- memory */

bool gw__wh_store_add(gw__wh_store_t *s, gw__wh_delivery_t *d)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        gw__wh_delivery_t **v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            return false;
        }
        s->v = v;
        s->cap = cap;
    }
    if (!gw__wh_map_put(&s->by_id, d->id, d)) {
        return false;
    }
    s->v[s->n++] = d;
    return true;
}

gw__wh_delivery_t *gw__wh_store_find(const gw__wh_store_t *s, const char *id)
{
    return gw__wh_map_get(&s->by_id, id);
}

/* ---------------------------------------------------------------- records */

static int s_dump_cb(const char *buffer, size_t size, void *data)
{
    gw_buf_put(data, buffer, size);
    return 0;
}

/* Takes rec (NULL: out of memory, which fails the buffer). */
static void s_put_rec(gw_buf_t *b, json_t *rec)
{
    if (!rec || json_dump_callback(rec, s_dump_cb, b, JSON_COMPACT) != 0) {
        b->failed = true;
    }
    gw_buf_putc(b, '\n');
    json_decref(rec);
}

void gw__wh_rec_enqueue(gw_buf_t *b, const gw__wh_delivery_t *d)
{
    s_put_rec(b, json_pack("{s:s, s:s, s:s, s:s, s:I, s:s%}", "op", "enqueue", "id", d->id,
                           "subscriber", d->subscriber, "kind", gw__wh_kind_event(d->kind),
                           "created_us", (json_int_t)d->created_us, "body", d->body, d->body_len));
}

void gw__wh_rec_done(gw_buf_t *b, const gw__wh_delivery_t *d)
{
    s_put_rec(b, json_pack("{s:s, s:s, s:I, s:i}", "op", "done", "id", d->id, "at_us",
                           (json_int_t)d->done_us, "status", d->status));
}

void gw__wh_rec_gave_up(gw_buf_t *b, const gw__wh_delivery_t *d)
{
    s_put_rec(b, json_pack("{s:s, s:s}", "op", "gave_up", "id", d->id));
}

void gw__wh_rec_replay(gw_buf_t *b, const gw__wh_delivery_t *d)
{
    s_put_rec(b, json_pack("{s:s, s:s, s:I}", "op", "replay", "id", d->id, "at_us",
                           (json_int_t)d->window_us));
}

void gw__wh_rec_green(gw_buf_t *b, const char *campaign, const char *unit, bool green)
{
    s_put_rec(b, json_pack("{s:s, s:s, s:s}", "op", green ? "green" : "not_green", "campaign",
                           campaign, "unit", unit));
}

/* ---------------------------------------------------------------- files */

static int s_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A rename or a new file is durable only once its directory is. */
static int s_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync(fd);
    close(fd);
    return rc;
}

px_code_t gw__wh_store_commit(gw__wh_store_t *s, const gw_buf_t *b, px_status_t *st)
{
    if (b->failed) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    if (b->len == 0) {
        return PX_OK;
    }
    if (s->fd < 0) {
        return px_status_set(st, PX_UNAVAILABLE, "the webhooks journal is not open");
    }
    if (s_write_all(s->fd, b->data, b->len) != 0 || fsync(s->fd) != 0) {
        int err = errno;
        /* Cut back what part of it went in, so the next append starts on a line of its own
         * and a later read sees no record the caller was told had failed. */
        if (ftruncate(s->fd, (off_t)s->size) != 0) {
            px_log_emit(s->log, PX_LOG_ERROR, "GW-WEBHOOK-JOURNAL", "cannot cut a failed append",
                        PX_LOG_FIELDS(PX_LS("error", strerror(errno))));
        }
        return px_status_set(st, PX_UNAVAILABLE, "webhooks journal %s: %s", s->path, strerror(err));
    }
    s->size += (int64_t)b->len;
    for (size_t i = 0; i < b->len; i++) {
        s->records += b->data[i] == '\n';
    }
    return PX_OK;
}

/* ---------------------------------------------------------------- reading back */

static bool s_id_ok(const char *id)
{
    if (!id || strlen(id) != GW__WH_ID_LEN) {
        return false;
    }
    return strspn(id, "0123456789abcdef") == GW__WH_ID_LEN;
}

static bool s_str_ok(const char *v, size_t max)
{
    return v && *v && strlen(v) <= max;
}

/* One record into memory; false when it is not one we write. */
static bool s_apply(gw__wh_store_t *s, json_t *rec)
{
    const char *op = json_string_value(json_object_get(rec, "op"));
    const char *id = json_string_value(json_object_get(rec, "id"));
    json_t *at = json_object_get(rec, "at_us");
    if (!op) {
        return false;
    }
    if (strcmp(op, "green") == 0 || strcmp(op, "not_green") == 0) {
        const char *campaign = json_string_value(json_object_get(rec, "campaign"));
        const char *unit = json_string_value(json_object_get(rec, "unit"));
        if (!s_str_ok(campaign, GW__WH_CAMPAIGN_MAX) || !s_str_ok(unit, 23)) {
            return false;
        }
        char key[GW__WH_GREEN_KEY_MAX];
        gw__wh_green_key(key, campaign, unit);
        if (op[0] == 'g') {
            return gw__wh_map_put(&s->green, key, (void *)1);
        }
        gw__wh_map_del(&s->green, key);
        return true;
    }
    if (!s_id_ok(id)) {
        return false;
    }
    gw__wh_delivery_t *d = gw__wh_store_find(s, id);
    if (strcmp(op, "enqueue") == 0) {
        const char *sub = json_string_value(json_object_get(rec, "subscriber"));
        json_t *body = json_object_get(rec, "body");
        json_t *created = json_object_get(rec, "created_us");
        gw__wh_kind_t kind;
        if (!s_str_ok(sub, GW__WH_NAME_MAX) || !json_is_string(body) || !json_is_integer(created) ||
            !gw__wh_kind_parse(json_string_value(json_object_get(rec, "kind")), &kind)) {
            return false;
        }
        if (d) {
            return true; /* the same delivery twice: the first stands */
        }
        d = calloc(1, sizeof *d);
        if (!d || !(d->body = malloc(json_string_length(body) + 1))) {
            free(d);
            return false;
        }
        memcpy(d->body, json_string_value(body), json_string_length(body) + 1);
        d->body_len = json_string_length(body);
        memcpy(d->id, id, GW__WH_ID_LEN + 1);
        snprintf(d->subscriber, sizeof d->subscriber, "%s", sub);
        d->kind = kind;
        d->created_us = d->window_us = json_integer_value(created);
        d->state = GW__WH_PENDING;
        if (!gw__wh_store_add(s, d)) {
            gw__wh_delivery_free(d);
            return false;
        }
        return true;
    }
    if (!d) {
        return true; /* about a delivery compacted away: nothing to do */
    }
    if (strcmp(op, "done") == 0 && json_is_integer(at)) {
        d->state = GW__WH_DONE;
        d->done_us = json_integer_value(at);
        d->status = (int)json_integer_value(json_object_get(rec, "status"));
        return true;
    }
    if (strcmp(op, "gave_up") == 0) {
        d->state = GW__WH_GAVE_UP;
        return true;
    }
    if (strcmp(op, "replay") == 0 && json_is_integer(at)) {
        d->state = GW__WH_PENDING;
        d->window_us = json_integer_value(at);
        return true;
    }
    return false;
}

/* Applies every whole line of the file; *bad counts the lines that were not records. */
static px_code_t s_read(gw__wh_store_t *s, size_t *bad, px_status_t *st)
{
    px_code_t code = PX_OK;
    char *line = NULL;
    size_t cap = 0;
    FILE *f = fopen(s->path, "r");
    if (!f) {
        if (errno == ENOENT) {
            return PX_OK;
        }
        return px_status_set(st, PX_FAILED_PRECONDITION, "webhooks journal %s: %s", s->path,
                             strerror(errno));
    }
    ssize_t n;
    for (long lineno = 1; (n = getline(&line, &cap, f)) > 0; lineno++) {
        if (line[n - 1] != '\n') {
            /* The last write of a crashed process: never acknowledged, so never happened. */
            px_log_emit(s->log, PX_LOG_WARN, "GW-WEBHOOK-JOURNAL-TORN",
                        "an unfinished last journal record is ignored",
                        PX_LOG_FIELDS(PX_LI("line", lineno), PX_LI("bytes", n)));
            break;
        }
        json_t *rec = NULL;
        if (n <= LINE_MAX_BYTES) {
            rec = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
        }
        if (!rec || !json_is_object(rec) || !s_apply(s, rec)) {
            (*bad)++;
            px_log_emit(s->log, PX_LOG_ERROR, "GW-WEBHOOK-JOURNAL-BAD",
                        "a journal line is not a record; skipped",
                        PX_LOG_FIELDS(PX_LS("path", s->path), PX_LI("line", lineno)));
        }
        json_decref(rec);
    }
    if (ferror(f)) {
        code = px_status_set(st, PX_UNAVAILABLE, "webhooks journal %s: read error", s->path);
    }
    free(line);
    fclose(f);
    return code;
}

px_code_t gw__wh_store_open(gw__wh_store_t *s, const char *dir, int64_t now_us, int64_t horizon_us,
                            px_log_t *log, px_status_t *st)
{
    size_t bad = 0;
    char *lock_path = NULL;
    s->fd = s->lock_fd = -1;
    s->log = log;
    if (asprintf(&lock_path, "%s/" LOCK_NAME, dir) < 0) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int err = errno;
    free(lock_path);
    if (s->lock_fd < 0) {
        return px_status_set(st, PX_FAILED_PRECONDITION, "webhooks state directory %s: %s", dir,
                             strerror(err));
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        return px_status_set(st, PX_FAILED_PRECONDITION,
                             "webhooks state directory %s: in use by another process", dir);
    }
    if (!(s->dir = strdup(dir)) || asprintf(&s->path, "%s/" JOURNAL_NAME, dir) < 0) {
        s->path = NULL; /* asprintf leaves it undefined on failure */
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    if (asprintf(&s->tmp_path, "%s/" JOURNAL_NAME ".tmp", dir) < 0) {
        s->tmp_path = NULL;
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    px_code_t code = s_read(s, &bad, st);
    if (code != PX_OK) {
        return code;
    }
    if (bad > 0) {
        /* Keep what was read for a person to look at: compaction is about to replace it. */
        char *keep = NULL;
        if (asprintf(&keep, "%s.corrupt-%lld", s->path, (long long)(now_us / 1000000)) >= 0) {
            if (link(s->path, keep) != 0) {
                px_log_emit(log, PX_LOG_ERROR, "GW-WEBHOOK-JOURNAL",
                            "cannot keep the damaged journal",
                            PX_LOG_FIELDS(PX_LS("error", strerror(errno))));
            }
            free(keep);
        }
    }
    return gw__wh_store_compact(s, now_us, horizon_us, st);
}

px_code_t gw__wh_store_compact(gw__wh_store_t *s, int64_t now_us, int64_t horizon_us,
                               px_status_t *st)
{
    px_code_t code = PX_OK;
    gw_buf_t b;
    gw_buf_init(&b);
    int fd = -1;
    size_t kept = 0;
    for (size_t i = 0; i < s->n; i++) {
        gw__wh_delivery_t *d = s->v[i];
        if (d->state != GW__WH_PENDING && d->created_us < now_us - horizon_us) {
            gw__wh_map_del(&s->by_id, d->id);
            gw__wh_delivery_free(d);
            continue;
        }
        s->v[kept++] = d;
        gw__wh_rec_enqueue(&b, d);
        if (d->window_us != d->created_us) {
            gw__wh_rec_replay(&b, d);
        }
        if (d->state == GW__WH_DONE) {
            gw__wh_rec_done(&b, d);
        } else if (d->state == GW__WH_GAVE_UP) {
            gw__wh_rec_gave_up(&b, d);
        }
    }
    s->n = kept;
    for (size_t i = 0; i < s->green.cap; i++) {
        const char *key = gw__wh_map_key_at(&s->green, i);
        const char *sep = key ? strchr(key, '\x1f') : NULL;
        if (sep) {
            char campaign[GW__WH_CAMPAIGN_MAX + 1];
            snprintf(campaign, sizeof campaign, "%.*s", (int)(sep - key), key);
            gw__wh_rec_green(&b, campaign, sep + 1, true);
        }
    }
    if (b.failed) {
        code = px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || s_write_all(fd, b.data ? b.data : "", b.len) != 0 || fsync(fd) != 0) {
        code = px_status_set(st, PX_UNAVAILABLE, "webhooks journal %s: %s", s->tmp_path,
                             strerror(errno));
        goto done;
    }
    close(fd);
    fd = -1;
    if (rename(s->tmp_path, s->path) != 0 || s_fsync_dir(s->dir) != 0) {
        code =
            px_status_set(st, PX_UNAVAILABLE, "webhooks journal %s: %s", s->path, strerror(errno));
        goto done;
    }
    /* The old descriptor names the replaced file: appends go to the new one. */
    if (s->fd >= 0) {
        close(s->fd);
    }
    s->fd = open(s->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    s->size = 0;
    if (s->fd < 0) {
        code =
            px_status_set(st, PX_UNAVAILABLE, "webhooks journal %s: %s", s->path, strerror(errno));
        goto done;
    }
    s->size = (int64_t)b.len;
    s->records = 0;
    for (size_t i = 0; i < b.len; i++) {
        s->records += b.data[i] == '\n';
    }
    s->compacted_us = now_us;
done:
    if (fd >= 0) {
        close(fd);
        unlink(s->tmp_path);
    }
    gw_buf_free(&b);
    return code;
}

bool gw__wh_store_compact_due(const gw__wh_store_t *s, int64_t now_us)
{
    size_t keeps = s->n + s->green.live;
    return (s->records > COMPACT_MIN_RECORDS && s->records > 2 * keeps) ||
           now_us - s->compacted_us > COMPACT_EVERY_US;
}

void gw__wh_store_close(gw__wh_store_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        gw__wh_delivery_free(s->v[i]);
    }
    free(s->v);
    gw__wh_map_free(&s->by_id);
    gw__wh_map_free(&s->green);
    if (s->fd >= 0) {
        close(s->fd);
    }
    if (s->lock_fd >= 0) {
        close(s->lock_fd); /* and with it the lock */
    }
    free(s->path);
    free(s->tmp_path);
    free(s->dir);
    memset(s, 0, sizeof *s);
    s->fd = s->lock_fd = -1;
}
