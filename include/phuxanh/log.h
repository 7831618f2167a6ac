/*
 * log.h - structured logs: one JSON object per line on stderr.
 *
 * Every line has ts (RFC 3339, UTC, microseconds), level, service, event (a
 * stable id operators grep for, e.g. "RPC-CALL"), msg, then the fields the
 * caller adds. A line is written with a single write(2) so lines from many
 * threads never interleave. Never pass a citizen ID, a token or a password.
 */
#ifndef PHUXANH_LOG_H
#define PHUXANH_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    PX_LOG_DEBUG = 0,
    PX_LOG_INFO = 1,
    PX_LOG_WARN = 2,
    PX_LOG_ERROR = 3,
} px_log_level_t;

typedef enum { PX_LOG_F_END = 0, PX_LOG_F_STR, PX_LOG_F_INT } px_log_ftype_t;

typedef struct {
    px_log_ftype_t type;
    const char *key;
    const char *s;
    int64_t i;
} px_log_field_t;

/* Field constructors for px_log_emit's field list. A NULL string is written as null. */
#define PX_LS(k, v) ((px_log_field_t){PX_LOG_F_STR, (k), (v), 0})
#define PX_LI(k, v) ((px_log_field_t){PX_LOG_F_INT, (k), NULL, (int64_t)(v)})
/* A NULL-terminated field list: PX_LOG_FIELDS(PX_LS("method", m), PX_LI("code", 3)). */
#define PX_LOG_FIELDS(...) ((const px_log_field_t[]){__VA_ARGS__, {PX_LOG_F_END, NULL, NULL, 0}})

typedef struct px_log_t px_log_t;

/* A logger for `service` writing to fd (2 for stderr). Returns NULL on allocation failure. */
px_log_t *px_log_new(const char *service, px_log_level_t level, int fd);
void px_log_destroy(px_log_t **self_p);

/* "debug" | "info" | "warn" | "error"; false when unknown. */
bool px_log_level_parse(const char *name, px_log_level_t *level);
const char *px_log_level_name(px_log_level_t level);

bool px_log_enabled(const px_log_t *self, px_log_level_t level);
void px_log_set_level(px_log_t *self, px_log_level_t level);

/* Writes one line if level is enabled. fields may be NULL. self may be NULL (no-op). */
void px_log_emit(px_log_t *self, px_log_level_t level, const char *event, const char *msg,
                 const px_log_field_t *fields);

/* A tee: called with every line written (newline included), its time and its level, under the
 * logger's write lock, so calls come one at a time and in the order of the lines written. It
 * must return quickly and never log (logstream.h's px_logstream_tee is one). */
typedef void (*px_log_tee_fn)(void *arg, int64_t ts_us, px_log_level_t level, const char *line,
                              size_t len);
/* Sets (or with fn NULL removes) the tee. Safe while other threads log: once it returns, the old
 * tee is never called again. */
void px_log_set_tee(px_log_t *self, px_log_tee_fn fn, void *arg);

/* Appends s as a JSON string literal (with quotes) to buf; used by the log and the JSON writer.
 * Returns the number of bytes that would be written (like snprintf). Invalid UTF-8 becomes
 * U+FFFD. */
size_t px_json_escape(char *buf, size_t cap, const char *s);

#endif
