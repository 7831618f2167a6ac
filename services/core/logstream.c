/*
 * logstream.c - publishes a process's log lines over ZeroMQ and keeps the recent ones.
 *
 * Logging must never wait for a reader: a line is logged from whatever thread
 * handles a call, and a stalled `pxctl logs` on the other side of the world must
 * not slow that call. So the tee (called under the logger's write lock) only
 * copies the line onto a bounded queue and, when the queue was empty, wakes the
 * publisher thread through an eventfd; a full queue drops the line and counts it.
 * The publisher thread alone owns the PUB and ROUTER sockets (a ZeroMQ socket
 * never crosses threads): it sends each line with ZMQ_DONTWAIT on a PUB whose
 * SNDHWM bounds what a slow reader may hold back - past it ZeroMQ drops that
 * reader's lines, never blocking - and moves the line into the history ring.
 *
 * Sequences are given in the tee, in the order of the lines written, to every line
 * including those dropped, so a gap in what a reader receives is exactly the
 * number of lines it lost, wherever they were lost (queue or HWM).
 *
 * The history ring (log-history lines, and at most S_HISTORY_BYTES) belongs to the
 * publisher thread too, which answers requests for it between lines; an answer is
 * bounded (S_REPLY_BYTES) and says "more" when the reader should ask again.
 */
#include "phuxanh/logstream.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

/* The queue between loggers and the publisher: enough for a burst of thousands of lines while
 * the publisher thread waits for a core, small enough that a wedged one costs little memory. */
#define S_QUEUE_LINES 8192
#define S_QUEUE_BYTES (8 * 1024 * 1024)
/* The history's memory, whatever log-history says: 10000 lines of 16 KiB would be 160 MiB. */
#define S_HISTORY_BYTES (32 * 1024 * 1024)
#define S_HISTORY_MAX 1000000
/* One history answer's lines; a reader asks again for the rest ("more"). */
#define S_REPLY_BYTES (1024 * 1024)

typedef struct s_line {
    struct s_line *next;
    uint64_t seq;
    int64_t ts_us;
    size_t len;
    char text[]; /* the JSON line without its newline */
} s_line_t;

struct px_logstream_t {
    char *service;
    void *zctx;
    void *pub;    /* publisher thread's */
    void *router; /* publisher thread's; NULL without a history endpoint */
    char endpoint[256];
    char history_endpoint[256];
    int efd; /* wakes the publisher: lines queued, or stop */
    pthread_t thread;
    bool started;
    px_log_t *log; /* attached to, detached on destroy */

    /* Shared with the loggers, under lock. */
    pthread_mutex_t lock;
    s_line_t *head, *tail;
    size_t queued, queued_bytes;
    uint64_t next_seq;
    uint64_t dropped;
    bool stop;

    /* The publisher thread's alone. */
    s_line_t **ring;
    size_t ring_cap, ring_start, ring_count, ring_bytes;
    uint64_t published; /* the last sequence published (or dropped before publishing) */
};

void px_logstream_seq_put(unsigned char out[PX_LOGSTREAM_SEQ_SIZE], uint64_t seq)
{
    for (int i = PX_LOGSTREAM_SEQ_SIZE - 1; i >= 0; i--) {
        out[i] = (unsigned char)(seq & 0xFF);
        seq >>= 8;
    }
}

uint64_t px_logstream_seq_get(const unsigned char in[PX_LOGSTREAM_SEQ_SIZE])
{
    uint64_t seq = 0;
    for (int i = 0; i < PX_LOGSTREAM_SEQ_SIZE; i++) {
        seq = (seq << 8) | in[i];
    }
    return seq;
}

void *px_logstream_socket(void *zctx, int type, int bind, px_curve_t *curve,
                          const char *server_name, px_status_t *st)
{
    void *sock = zmq_socket(zctx, type);
    if (!sock) {
        px_status_set(st, PX_INTERNAL, "log stream socket: %s", zmq_strerror(errno));
        return NULL;
    }
    /* Closing never waits for lines nobody reads. */
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    if (curve &&
        (bind ? px_curve_server_setup(curve, zctx, sock, st)
              : px_curve_client_setup(curve, sock, server_name ? server_name : "", st)) != PX_OK) {
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

/* ---------------------------------------------------------------- the loggers' side */

void px_logstream_tee(void *arg, int64_t ts_us, px_log_level_t level, const char *line, size_t len)
{
    (void)level;
    px_logstream_t *self = arg;
    if (len > 0 && line[len - 1] == '\n') {
        len--;
    }
    /* Allocated before the lock, so that the lock is only held for a few pointer moves. */
    s_line_t *l = malloc(sizeof *l + len + 1);
    if (l) {
        l->next = NULL;
        l->ts_us = ts_us;
        l->len = len;
        memcpy(l->text, line, len);
        l->text[len] = '\0';
    }
    pthread_mutex_lock(&self->lock);
    uint64_t seq = self->next_seq++;
    if (!l || self->stop || self->queued >= S_QUEUE_LINES ||
        self->queued_bytes + len > S_QUEUE_BYTES) {
        self->dropped++;
        pthread_mutex_unlock(&self->lock);
        free(l);
        return;
    }
    l->seq = seq;
    bool was_empty = self->head == NULL;
    if (self->tail) {
        self->tail->next = l;
    } else {
        self->head = l;
    }
    self->tail = l;
    self->queued++;
    self->queued_bytes += len;
    pthread_mutex_unlock(&self->lock);
    if (was_empty) {
        uint64_t one = 1;
        /* An eventfd write only fails when the counter would overflow: it is then readable. */
        ssize_t n = write(self->efd, &one, sizeof one);
        (void)n;
    }
}

/* ---------------------------------------------------------------- the publisher thread */

static void s_history_add(px_logstream_t *self, s_line_t *l)
{
    if (self->ring_cap == 0) {
        free(l);
        return;
    }
    while (self->ring_count > 0 &&
           (self->ring_count == self->ring_cap || self->ring_bytes + l->len > S_HISTORY_BYTES)) {
        s_line_t *old = self->ring[self->ring_start];
        self->ring[self->ring_start] = NULL;
        self->ring_start = (self->ring_start + 1) % self->ring_cap;
        self->ring_count--;
        self->ring_bytes -= old->len;
        free(old);
    }
    self->ring[(self->ring_start + self->ring_count) % self->ring_cap] = l;
    self->ring_count++;
    self->ring_bytes += l->len;
}

static void s_publish(px_logstream_t *self, s_line_t *l)
{
    unsigned char seq[PX_LOGSTREAM_SEQ_SIZE];
    px_logstream_seq_put(seq, l->seq);
    /* A PUB never blocks: past a reader's HWM the message is dropped for that reader. */
    zmq_send(self->pub, self->service, strlen(self->service), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->pub, seq, sizeof seq, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->pub, l->text, l->len, ZMQ_DONTWAIT);
    self->published = l->seq;
    s_history_add(self, l);
}

/* Parses "since <us> [after <seq>]" strictly: digits only, nothing else. */
static bool s_parse_request(const char *req, size_t len, int64_t *since, uint64_t *after)
{
    char buf[PX_LOGSTREAM_REQUEST_MAX + 1];
    if (len == 0 || len > PX_LOGSTREAM_REQUEST_MAX || memchr(req, '\0', len)) {
        return false;
    }
    memcpy(buf, req, len);
    buf[len] = '\0';
    char word[8], word2[8];
    char num[24], num2[24];
    int used = 0;
    *after = 0;
    if (sscanf(buf, "%7s %23[0-9]%n", word, num, &used) != 2 || strcmp(word, "since") != 0) {
        return false;
    }
    if (buf[used] != '\0') {
        int used2 = 0;
        if (sscanf(buf + used, " %7s %23[0-9]%n", word2, num2, &used2) != 2 ||
            strcmp(word2, "after") != 0 || buf[used + used2] != '\0') {
            return false;
        }
        errno = 0;
        unsigned long long a = strtoull(num2, NULL, 10);
        if (errno) {
            return false;
        }
        *after = (uint64_t)a;
    }
    errno = 0;
    long long s = strtoll(num, NULL, 10);
    if (errno) {
        return false;
    }
    *since = (int64_t)s;
    return true;
}

/* Answers one request, frames after the routing id (which is already sent with SNDMORE). */
static void s_answer(px_logstream_t *self, const char *req, size_t len)
{
    int64_t since = 0;
    uint64_t after = 0;
    unsigned char seq[PX_LOGSTREAM_SEQ_SIZE];
    px_logstream_seq_put(seq, self->published);
    zmq_send(self->router, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->router, self->service, strlen(self->service), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (!s_parse_request(req, len, &since, &after)) {
        static const char msg[] = "expected \"since <microseconds> [after <sequence>]\"";
        zmq_send(self->router, "error", 5, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(self->router, seq, sizeof seq, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(self->router, msg, sizeof msg - 1, ZMQ_DONTWAIT);
        return;
    }
    /* Which lines go: from the oldest matching, until the answer is full. */
    size_t first = self->ring_count, last = self->ring_count, bytes = 0;
    bool more = false;
    for (size_t i = 0; i < self->ring_count; i++) {
        s_line_t *l = self->ring[(self->ring_start + i) % self->ring_cap];
        if (l->seq <= after || l->ts_us < since) {
            continue;
        }
        if (bytes + l->len > S_REPLY_BYTES && bytes > 0) {
            more = true;
            break;
        }
        if (first == self->ring_count) {
            first = i;
        }
        last = i + 1;
        bytes += l->len;
    }
    bool any = first < last;
    zmq_send(self->router, more ? "more" : "end", more ? 4 : 3, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(self->router, seq, sizeof seq, (any ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
    /* The lines between first and last that do not match are skipped again on the way out;
     * the last frame sent must be the only one without SNDMORE. */
    s_line_t *pending = NULL;
    for (size_t i = first; any && i < last; i++) {
        s_line_t *l = self->ring[(self->ring_start + i) % self->ring_cap];
        if (l->seq <= after || l->ts_us < since) {
            continue;
        }
        if (pending) {
            unsigned char s[PX_LOGSTREAM_SEQ_SIZE];
            px_logstream_seq_put(s, pending->seq);
            zmq_send(self->router, s, sizeof s, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(self->router, pending->text, pending->len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        }
        pending = l;
    }
    if (pending) {
        unsigned char s[PX_LOGSTREAM_SEQ_SIZE];
        px_logstream_seq_put(s, pending->seq);
        zmq_send(self->router, s, sizeof s, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(self->router, pending->text, pending->len, ZMQ_DONTWAIT);
    }
}

/* Reads the requests waiting on the ROUTER: [routing id] [""] [request]. Anything else is
 * dropped whole (a REQ peer always sends that shape). */
static void s_serve_history(px_logstream_t *self)
{
    for (;;) {
        zmq_msg_t frames[3];
        int n = 0;
        bool more = true;
        bool ok = true;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, self->router, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                for (int i = 0; i < n; i++) {
                    zmq_msg_close(&frames[i]);
                }
                return; /* nothing (more) waiting */
            }
            more = zmq_msg_more(&m);
            if (n < 3) {
                frames[n++] = m;
            } else {
                ok = false;
                zmq_msg_close(&m);
            }
        }
        if (ok && n == 3 && zmq_msg_size(&frames[1]) == 0) {
            zmq_send(self->router, zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]),
                     ZMQ_SNDMORE | ZMQ_DONTWAIT);
            s_answer(self, zmq_msg_data(&frames[2]), zmq_msg_size(&frames[2]));
        }
        for (int i = 0; i < n; i++) {
            zmq_msg_close(&frames[i]);
        }
    }
}

static void *s_run(void *arg)
{
    px_logstream_t *self = arg;
    zmq_pollitem_t items[2] = {
        {NULL, self->efd, ZMQ_POLLIN, 0},
        {self->router, 0, ZMQ_POLLIN, 0},
    };
    int nitems = self->router ? 2 : 1;
    for (;;) {
        if (zmq_poll(items, nitems, -1) < 0 && errno != EINTR) {
            break; /* the context is never ended before this thread is joined */
        }
        if (items[0].revents & ZMQ_POLLIN) {
            uint64_t v;
            ssize_t n = read(self->efd, &v, sizeof v);
            (void)n;
        }
        pthread_mutex_lock(&self->lock);
        s_line_t *batch = self->head;
        self->head = self->tail = NULL;
        self->queued = self->queued_bytes = 0;
        bool stop = self->stop;
        pthread_mutex_unlock(&self->lock);
        while (batch) {
            s_line_t *next = batch->next;
            s_publish(self, batch);
            batch = next;
        }
        if (nitems == 2 && (items[1].revents & ZMQ_POLLIN)) {
            s_serve_history(self);
        }
        if (stop) {
            break;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- life */

static bool s_bind(void *sock, const char *endpoint, char *bound, size_t cap, px_status_t *st)
{
    if (zmq_bind(sock, endpoint) != 0) {
        px_status_set(st, errno == EADDRINUSE ? PX_UNAVAILABLE : PX_INVALID_ARGUMENT,
                      "cannot bind the log stream to %.200s: %s", endpoint, zmq_strerror(errno));
        return false;
    }
    size_t len = cap;
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &len) != 0) {
        snprintf(bound, cap, "%s", endpoint);
    }
    return true;
}

px_logstream_t *px_logstream_new(const px_logstream_opts_t *opts, px_status_t *st)
{
    assert(opts && opts->endpoint);
    px_logstream_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    self->efd = -1;
    self->next_seq = 1;
    pthread_mutex_init(&self->lock, NULL);
    self->service = strdup(opts->service ? opts->service : "");
    self->ring_cap = opts->history > S_HISTORY_MAX ? S_HISTORY_MAX : opts->history;
    self->ring = self->ring_cap ? calloc(self->ring_cap, sizeof *self->ring) : NULL;
    self->zctx = zmq_ctx_new();
    self->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!self->service || (self->ring_cap && !self->ring) || !self->zctx || self->efd < 0) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "log stream: out of resources");
        goto fail;
    }
    self->pub = px_logstream_socket(self->zctx, ZMQ_PUB, 1, opts->curve, NULL, st);
    if (!self->pub) {
        goto fail;
    }
    int hwm = opts->hwm > 0 ? opts->hwm : 1000;
    zmq_setsockopt(self->pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (!s_bind(self->pub, opts->endpoint, self->endpoint, sizeof self->endpoint, st)) {
        goto fail;
    }
    if (opts->history_endpoint && *opts->history_endpoint) {
        self->router = px_logstream_socket(self->zctx, ZMQ_ROUTER, 1, opts->curve, NULL, st);
        if (!self->router || !s_bind(self->router, opts->history_endpoint, self->history_endpoint,
                                     sizeof self->history_endpoint, st)) {
            goto fail;
        }
    }
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "log stream: cannot start its thread");
        goto fail;
    }
    self->started = true;
    return self;
fail:
    px_logstream_destroy(&self);
    return NULL;
}

void px_logstream_attach(px_logstream_t *self, px_log_t *log)
{
    assert(self && !self->log);
    self->log = log;
    px_log_set_tee(log, px_logstream_tee, self);
}

void px_logstream_destroy(px_logstream_t **self_p)
{
    assert(self_p);
    if (!*self_p) {
        return;
    }
    px_logstream_t *self = *self_p;
    if (self->log) {
        px_log_set_tee(self->log, NULL, NULL); /* no tee call runs past this */
    }
    if (self->started) {
        pthread_mutex_lock(&self->lock);
        self->stop = true;
        pthread_mutex_unlock(&self->lock);
        uint64_t one = 1;
        ssize_t n = write(self->efd, &one, sizeof one);
        (void)n;
        pthread_join(self->thread, NULL);
    }
    while (self->head) {
        s_line_t *next = self->head->next;
        free(self->head);
        self->head = next;
    }
    for (size_t i = 0; i < self->ring_count; i++) {
        free(self->ring[(self->ring_start + i) % self->ring_cap]);
    }
    free(self->ring);
    if (self->pub) {
        zmq_close(self->pub);
    }
    if (self->router) {
        zmq_close(self->router);
    }
    if (self->zctx) {
        zmq_ctx_term(self->zctx);
    }
    if (self->efd >= 0) {
        close(self->efd);
    }
    pthread_mutex_destroy(&self->lock);
    free(self->service);
    free(self);
    *self_p = NULL;
}

uint64_t px_logstream_dropped(px_logstream_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t n = self->dropped;
    pthread_mutex_unlock(&self->lock);
    return n;
}

const char *px_logstream_endpoint(const px_logstream_t *self)
{
    return self->endpoint;
}

const char *px_logstream_history_endpoint(const px_logstream_t *self)
{
    return self->history_endpoint;
}

px_code_t px_logstream_from_config(const px_config_t *cfg, const char *service, px_log_t *log,
                                   px_curve_t *curve, px_logstream_t **out, px_status_t *st)
{
    *out = NULL;
    const char *ep = px_config_get(cfg, "log-endpoint");
    if (!ep || !*ep) {
        return PX_OK;
    }
    int64_t history = 0, hwm = 0;
    if (px_config_int(cfg, "log-history", 0, S_HISTORY_MAX, &history, st) != PX_OK ||
        px_config_int(cfg, "log-hwm", 1, 10000000, &hwm, st) != PX_OK) {
        return st->code;
    }
    px_logstream_opts_t o = {
        .service = service,
        .endpoint = ep,
        .history_endpoint = px_config_get(cfg, "log-history-endpoint"),
        .history = (size_t)history,
        .hwm = (int)hwm,
        .curve = curve,
    };
    px_logstream_t *self = px_logstream_new(&o, st);
    if (!self) {
        return st->code;
    }
    px_logstream_attach(self, log);
    px_log_emit(log, PX_LOG_INFO, "LOG-STREAM", "publishing log lines",
                PX_LOG_FIELDS(PX_LS("endpoint", self->endpoint),
                              PX_LS("history_endpoint", self->history_endpoint),
                              PX_LI("history", history)));
    *out = self;
    return PX_OK;
}
