/*
 * log.c - structured logs: one JSON object per line, one write(2) per line.
 *
 * A line is built whole in a bounded buffer and handed to the kernel in one
 * write(2), under the logger's mutex: a pipe only promises atomic writes up to
 * PIPE_BUF (4 KiB) and a line may be longer, so the mutex is what keeps lines
 * from different threads of one process apart. Nothing here allocates per line.
 *
 * A line never exceeds S_LINE_MAX. When the fields do not fit, string values are
 * cut at a character boundary (never inside an escape or a UTF-8 sequence), the
 * fields that no longer fit are left out, and the object ends with
 * "truncated":true, so the line is still valid JSON a collector can parse.
 *
 * Strings are escaped per RFC 8259; bytes that are not valid UTF-8 become
 * U+FFFD, one per maximal ill-formed subpart (Unicode's recommended practice),
 * so a line is valid UTF-8 whatever the caller passed in.
 */
#include "phuxanh/log.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "phuxanh/clock.h"

/* Longest line written, newline included. Collectors (journald, Loki, Docker's json-file
 * driver) split or drop lines past 16 KiB, and a bigger line is a bug, not a log. */
#define S_LINE_MAX (16 * 1024)

/* What closes a line that had to be cut. Space for it is held back while building. */
static const char S_TRUNCATED_TAIL[] = ",\"truncated\":true}\n";
#define S_TAIL_RESERVE (sizeof S_TRUNCATED_TAIL - 1)

struct px_log_t {
    char *service;
    int fd;
    /* Atomic because px_log_set_level may run while other threads emit. */
    atomic_int level;
    pthread_mutex_t write_lock;
    /* Under write_lock: px_log_set_tee then knows no call of the old tee is still running. */
    px_log_tee_fn tee;
    void *tee_arg;
};

static const char *const s_level_names[] = {
    [PX_LOG_DEBUG] = "debug",
    [PX_LOG_INFO] = "info",
    [PX_LOG_WARN] = "warn",
    [PX_LOG_ERROR] = "error",
};
#define S_LEVEL_COUNT ((int)(sizeof s_level_names / sizeof s_level_names[0]))

px_log_t *px_log_new(const char *service, px_log_level_t level, int fd)
{
    px_log_t *self = calloc(1, sizeof *self);
    if (!self) {
        return NULL;
    }
    self->service = strdup(service ? service : "");
    if (!self->service) {
        free(self);
        return NULL;
    }
    self->fd = fd;
    atomic_init(&self->level, (int)level);
    pthread_mutex_init(&self->write_lock, NULL);
    return self;
}

void px_log_destroy(px_log_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        px_log_t *self = *self_p;
        pthread_mutex_destroy(&self->write_lock);
        free(self->service);
        free(self);
        *self_p = NULL;
    }
}

bool px_log_level_parse(const char *name, px_log_level_t *level)
{
    if (!name) {
        return false;
    }
    for (int i = 0; i < S_LEVEL_COUNT; i++) {
        if (strcmp(name, s_level_names[i]) == 0) {
            if (level) {
                *level = (px_log_level_t)i;
            }
            return true;
        }
    }
    return false;
}

const char *px_log_level_name(px_log_level_t level)
{
    if ((int)level < 0 || (int)level >= S_LEVEL_COUNT) {
        return "unknown";
    }
    return s_level_names[level];
}

bool px_log_enabled(const px_log_t *self, px_log_level_t level)
{
    if (!self) {
        return false;
    }
    /* atomic_load takes a non-const pointer in C11; reading does not modify the logger. */
    return (int)level >= atomic_load(&((px_log_t *)self)->level);
}

void px_log_set_level(px_log_t *self, px_log_level_t level)
{
    if (self) {
        atomic_store(&self->level, (int)level);
    }
}

/* ------------------------------------------------------------------ escaping */

/* Length of the valid UTF-8 sequence at p, or 0 when it is ill-formed, in which case *skip is
 * the length of the maximal ill-formed subpart to replace with one U+FFFD. The bounds on the
 * second byte exclude overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
static size_t s_utf8_seq(const unsigned char *p, size_t *skip)
{
    unsigned char c = p[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c == 0xE0) {
        need = 2;
        lo = 0xA0;
    } else if (c == 0xED) {
        need = 2;
        hi = 0x9F;
    } else if (c >= 0xE1 && c <= 0xEF) {
        need = 2;
    } else if (c == 0xF0) {
        need = 3;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
        need = 3;
    } else if (c == 0xF4) {
        need = 3;
        hi = 0x8F;
    } else {
        *skip = 1;
        return 0;
    }
    /* The terminating NUL is never a continuation byte, so this stops at the string's end. */
    for (size_t k = 1; k <= need; k++) {
        unsigned char b = p[k];
        bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
        if (!ok) {
            *skip = k;
            return 0;
        }
    }
    return need + 1;
}

/* Escapes s into buf[0..cap) as a JSON string literal with its quotes, writing only whole
 * characters and always the closing quote, and NUL-terminating when cap > 0. Returns the
 * full length the literal needs; *written gets the bytes actually written (without the NUL).
 * When cap is too small even for "" nothing is written. */
static size_t s_escape(char *buf, size_t cap, const char *s, size_t *written)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t need = 1; /* opening quote */
    size_t out = 0;
    /* Room for the content: cap minus both quotes and the NUL. */
    bool fits = cap >= 3;
    size_t room = fits ? cap - 3 : 0;
    if (fits) {
        buf[out++] = '"';
    }
    while (*p) {
        char esc[6];
        const char *piece = esc;
        size_t len;
        size_t adv;
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            len = 2;
            adv = 1;
        } else if (c < 0x20) {
            const char *short_form = c == '\n'   ? "\\n"
                                     : c == '\r' ? "\\r"
                                     : c == '\t' ? "\\t"
                                     : c == '\b' ? "\\b"
                                     : c == '\f' ? "\\f"
                                                 : NULL;
            if (short_form) {
                piece = short_form;
                len = 2;
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xF];
                len = 6;
            }
            adv = 1;
        } else {
            size_t skip = 0;
            size_t seq = s_utf8_seq(p, &skip);
            if (seq > 0) {
                piece = (const char *)p;
                len = seq;
                adv = seq;
            } else {
                piece = "\xEF\xBF\xBD"; /* U+FFFD REPLACEMENT CHARACTER */
                len = 3;
                adv = skip;
            }
        }
        if (fits && need - 1 + len <= room) {
            memcpy(buf + out, piece, len);
            out += len;
        } else {
            fits = false; /* later, shorter characters must not be written after a gap */
        }
        need += len;
        p += adv;
    }
    need += 1; /* closing quote */
    if (cap >= 3) {
        buf[out++] = '"';
        buf[out] = '\0';
    } else if (cap > 0) {
        buf[0] = '\0';
    }
    if (written) {
        *written = out;
    }
    return need;
}

size_t px_json_escape(char *buf, size_t cap, const char *s)
{
    if (!s) {
        /* Like a string that does not fit: all of the token or none of it. */
        if (cap > 4) {
            memcpy(buf, "null", 5);
        } else if (cap > 0) {
            buf[0] = '\0';
        }
        return 4;
    }
    return s_escape(buf, cap, s, NULL);
}

/* -------------------------------------------------------------- line builder */

/* Appends go all-or-nothing into buf[0..limit); limit keeps S_TAIL_RESERVE bytes back. */
typedef struct {
    char buf[S_LINE_MAX + 1];
    size_t len;
    size_t limit;
    bool truncated;
} s_line_t;

static bool s_put(s_line_t *line, const char *bytes, size_t n)
{
    if (line->truncated || line->len + n > line->limit) {
        line->truncated = true;
        return false;
    }
    memcpy(line->buf + line->len, bytes, n);
    line->len += n;
    return true;
}

/* A string value; cut (still a valid literal) when it does not fit whole. */
static bool s_put_str(s_line_t *line, const char *s)
{
    if (line->truncated) {
        return false;
    }
    if (!s) {
        return s_put(line, "null", 4);
    }
    /* +1: s_escape wants room for a NUL, which is overwritten by whatever comes next. */
    size_t room = line->limit - line->len + 1;
    size_t written = 0;
    size_t need = s_escape(line->buf + line->len, room, s, &written);
    if (written == 0) {
        line->truncated = true;
        return false;
    }
    line->len += written;
    if (need != written) {
        line->truncated = true;
    }
    return true;
}

/* ,"key": — all or nothing, so a cut never leaves a key without a value. */
static bool s_put_key(s_line_t *line, const char *key, bool first)
{
    size_t mark = line->len;
    char tmp[256];
    size_t need = s_escape(tmp, sizeof tmp, key ? key : "", NULL);
    if (need >= sizeof tmp) {
        /* Keys are identifiers chosen by programmers; a 250-byte one is not worth a line. */
        need = s_escape(tmp, sizeof tmp, "key_too_long", NULL);
    }
    if ((!first && !s_put(line, ",", 1)) || !s_put(line, tmp, need) || !s_put(line, ":", 1)) {
        line->len = mark;
        return false;
    }
    return true;
}

static void s_put_field_str(s_line_t *line, const char *key, const char *value, bool first)
{
    size_t mark = line->len;
    if (!s_put_key(line, key, first)) {
        return;
    }
    /* At least "" must follow the key, or the key goes too. */
    if (!s_put_str(line, value)) {
        line->len = mark;
    }
}

static void s_put_field_int(s_line_t *line, const char *key, int64_t value)
{
    size_t mark = line->len;
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, value);
    if (!s_put_key(line, key, false) || !s_put(line, num, (size_t)n)) {
        line->len = mark;
    }
}

/* RFC 3339 in UTC with microseconds: 2026-11-29T02:44:13.123456Z. */
static void s_timestamp(int64_t us, char *out, size_t cap)
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%06dZ", (int)(us % 1000000));
}

void px_log_set_tee(px_log_t *self, px_log_tee_fn fn, void *arg)
{
    if (!self) {
        return;
    }
    pthread_mutex_lock(&self->write_lock);
    self->tee = fn;
    self->tee_arg = arg;
    pthread_mutex_unlock(&self->write_lock);
}

static void s_write_all(px_log_t *self, int64_t ts_us, px_log_level_t level, const char *buf,
                        size_t len)
{
    pthread_mutex_lock(&self->write_lock);
    if (self->tee) {
        self->tee(self->tee_arg, ts_us, level, buf, len);
    }
    /* One write(2) in the normal case; the loop only finishes a write a signal interrupted. */
    while (len > 0) {
        ssize_t n = write(self->fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break; /* nowhere to report a failing log; dropping the line is all we can do */
        }
        buf += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&self->write_lock);
}

void px_log_emit(px_log_t *self, px_log_level_t level, const char *event, const char *msg,
                 const px_log_field_t *fields)
{
    if (!px_log_enabled(self, level)) {
        return;
    }
    /* Thread-local rather than on the stack: 16 KiB is a lot to take from a worker's stack in
     * whatever deep call logs an error. */
    static _Thread_local s_line_t line;
    line.len = 0;
    line.limit = S_LINE_MAX - S_TAIL_RESERVE;
    line.truncated = false;

    char ts[40];
    int64_t ts_us = px_wall_us();
    s_timestamp(ts_us, ts, sizeof ts);
    s_put(&line, "{", 1);
    s_put_field_str(&line, "ts", ts, true);
    s_put_field_str(&line, "level", px_log_level_name(level), false);
    s_put_field_str(&line, "service", self->service, false);
    s_put_field_str(&line, "event", event, false);
    s_put_field_str(&line, "msg", msg, false);
    for (const px_log_field_t *f = fields; f && f->type != PX_LOG_F_END; f++) {
        if (line.truncated) {
            break;
        }
        if (f->type == PX_LOG_F_INT) {
            s_put_field_int(&line, f->key, f->i);
        } else {
            s_put_field_str(&line, f->key, f->s, false);
        }
    }
    if (line.truncated) {
        memcpy(line.buf + line.len, S_TRUNCATED_TAIL, S_TAIL_RESERVE);
        line.len += S_TAIL_RESERVE;
    } else {
        memcpy(line.buf + line.len, "}\n", 2);
        line.len += 2;
    }
    s_write_all(self, ts_us, level, line.buf, line.len);
}
