/*
 * logstream.h - a process's log lines, live over ZeroMQ, with the recent ones kept.
 *
 * A process with a log endpoint publishes every line its px_log_t writes on a
 * PUB socket, and answers for the last lines it kept on a ROUTER socket, so that
 * `pxctl logs` can follow (and look back over) many processes at once. The
 * logging thread only hands the line to a bounded queue; one publisher thread owns
 * both sockets (docs/LOGS.md has the whole story).
 *
 * Live stream, one message per line, three frames:
 *   [service name] [sequence: 8 bytes, unsigned, big-endian] [the JSON line, no newline]
 * Sequences count every line the process logged since it started, from 1, whether
 * published or dropped, so a reader that sees 41 after 37 knows it lost 3 lines.
 *
 * History, a request (REQ socket, one frame of text) and its answer:
 *   "since <microseconds since the epoch> [after <sequence>]"
 *   -> [service] ["end" | "more"] [last sequence published, 8 bytes] then for each line kept
 *      with ts >= since and sequence > after, oldest first: [sequence, 8 bytes] [JSON line]
 *   "more": the answer was full; ask again after its last sequence. A bad request is answered
 *   [service] ["error"] [8 bytes] [message].
 */
#ifndef PHUXANH_LOGSTREAM_H
#define PHUXANH_LOGSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "phuxanh/config.h"
#include "phuxanh/curve.h"
#include "phuxanh/log.h"
#include "phuxanh/status.h"

/* The options every process with a log stream takes (px_config rows, for its option table). */
#define PX_LOGSTREAM_OPTIONS                                                                       \
    {"log-endpoint", "PX_LOG_ENDPOINT", NULL,                                                      \
     "ZeroMQ endpoint to publish log lines on (PUB; empty: off)"},                                 \
        {"log-history-endpoint", "PX_LOG_HISTORY_ENDPOINT", NULL,                                  \
         "ZeroMQ endpoint answering for recent log lines (ROUTER; empty: off)"},                   \
        {"log-history", "PX_LOG_HISTORY", "10000", "log lines kept for the history endpoint"},     \
    {                                                                                              \
        "log-hwm", "PX_LOG_HWM", "1000", "log lines queued per reader before it loses some"        \
    }

/* Frames of the stream. */
#define PX_LOGSTREAM_SEQ_SIZE 8
/* A history request's longest text. */
#define PX_LOGSTREAM_REQUEST_MAX 96

typedef struct px_logstream_t px_logstream_t;

typedef struct {
    const char *service;          /* first frame of every message */
    const char *endpoint;         /* PUB, bound; required */
    const char *history_endpoint; /* ROUTER, bound; NULL or "": no history served */
    size_t history;               /* lines kept (0: none) */
    int hwm;                      /* ZMQ_SNDHWM of the PUB socket, in lines */
    px_curve_t *curve; /* borrowed, outlives the stream; NULL: plaintext. With it both sockets
                        * are CURVE servers taking the allow-listed keys only */
} px_logstream_opts_t;

/* Binds the sockets and starts the publisher thread. NULL with st filled (an endpoint that
 * cannot be bound: INVALID_ARGUMENT or UNAVAILABLE). */
px_logstream_t *px_logstream_new(const px_logstream_opts_t *opts, px_status_t *st);
/* Detaches from its logger, publishes what is queued, stops the thread, closes the sockets. */
void px_logstream_destroy(px_logstream_t **self_p);

/* Makes every line log writes go to the stream too (until destroy). One logger per stream. */
void px_logstream_attach(px_logstream_t *self, px_log_t *log);

/* The tee (px_log_tee_fn): queues one line. Never blocks on the network: when the queue is
 * full the line is dropped and counted (its sequence is spent, so readers see the gap). */
void px_logstream_tee(void *self, int64_t ts_us, px_log_level_t level, const char *line,
                      size_t len);

/* Lines dropped because the queue was full (not those a slow reader lost at its HWM). */
uint64_t px_logstream_dropped(px_logstream_t *self);
/* The endpoints actually bound (a tcp port 0 or * resolved), "" when none. */
const char *px_logstream_endpoint(const px_logstream_t *self);
const char *px_logstream_history_endpoint(const px_logstream_t *self);

/* From a process's config (PX_LOGSTREAM_OPTIONS): *out is the stream attached to log, or NULL
 * when log-endpoint is unset or empty. PX_OK, or INVALID_ARGUMENT / UNAVAILABLE with st set. */
px_code_t px_logstream_from_config(const px_config_t *cfg, const char *service, px_log_t *log,
                                   px_curve_t *curve, px_logstream_t **out, px_status_t *st);

/* Every log-stream socket, ours and readers' (pxctl logs), is made here, so that what all of them
 * need (transport security) is set in one place. bind: this side binds (the process) rather
 * than connects (a reader). curve (may be NULL: plaintext) makes a binding socket a CURVE
 * server, and a connecting one a CURVE client of the process whose key the allow-list gives
 * under server_name. NULL with st filled. */
void *px_logstream_socket(void *zctx, int type, int bind, px_curve_t *curve,
                          const char *server_name, px_status_t *st);

/* The 8-byte big-endian sequence frame. */
void px_logstream_seq_put(unsigned char out[PX_LOGSTREAM_SEQ_SIZE], uint64_t seq);
uint64_t px_logstream_seq_get(const unsigned char in[PX_LOGSTREAM_SEQ_SIZE]);

#endif
