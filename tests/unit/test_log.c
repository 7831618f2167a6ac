/*
 * test_log.c - log lines are one valid JSON object each: the required keys in
 * order, escapes that decode back to what was logged, valid UTF-8 whatever
 * was passed in, a clean cut for oversized lines, and whole lines when many
 * threads log at once.
 *
 * Lines are checked with a small strict JSON parser below rather than by
 * counting quotes, so an escaping mistake shows up as a parse failure.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phuxanh/log.h"
#include "px_test.h"

#define LINE_CAP (64 * 1024)

/* --------------------------------------------------------- a strict JSON checker */

#define MAX_KEYS 16

typedef struct {
    int n;
    char keys[MAX_KEYS][64];
    char *values[MAX_KEYS]; /* decoded strings, or the literal text of other values */
} parsed_t;

static void parsed_free(parsed_t *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->values[i]);
    }
    p->n = 0;
}

static const char *find_value(const parsed_t *p, const char *key)
{
    for (int i = 0; i < p->n; i++) {
        if (strcmp(p->keys[i], key) == 0) {
            return p->values[i];
        }
    }
    return NULL;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Appends code point cp (BMP only, which is all the logger emits as \u) as UTF-8. */
static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* Parses a JSON string at *s; returns a malloc'd decoded copy or NULL when invalid. */
static char *parse_string(const char **s)
{
    const char *p = *s;
    if (*p != '"') {
        return NULL;
    }
    p++;
    char *out = malloc(strlen(p) + 1);
    size_t n = 0;
    while (*p && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) {
            free(out);
            return NULL; /* raw control characters are not allowed in JSON strings */
        }
        if (c != '\\') {
            out[n++] = (char)c;
            p++;
            continue;
        }
        p++;
        switch (*p) {
        case '"':
        case '\\':
        case '/':
            out[n++] = *p++;
            break;
        case 'n':
            out[n++] = '\n';
            p++;
            break;
        case 't':
            out[n++] = '\t';
            p++;
            break;
        case 'r':
            out[n++] = '\r';
            p++;
            break;
        case 'b':
            out[n++] = '\b';
            p++;
            break;
        case 'f':
            out[n++] = '\f';
            p++;
            break;
        case 'u': {
            unsigned cp = 0;
            for (int i = 1; i <= 4; i++) {
                int h = hexval(p[i]);
                if (h < 0) {
                    free(out);
                    return NULL;
                }
                cp = cp * 16 + (unsigned)h;
            }
            n += put_utf8(out + n, cp);
            p += 5;
            break;
        }
        default:
            free(out);
            return NULL;
        }
    }
    if (*p != '"') {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *s = p + 1;
    return out;
}

static char *parse_scalar(const char **s)
{
    const char *p = *s;
    if (strncmp(p, "null", 4) == 0 || strncmp(p, "true", 4) == 0) {
        p += 4;
    } else if (strncmp(p, "false", 5) == 0) {
        p += 5;
    } else {
        if (*p == '-') {
            p++;
        }
        if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9')) {
            return NULL;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    char *out = strndup(*s, (size_t)(p - *s));
    *s = p;
    return out;
}

/* Is line exactly one flat JSON object (what the logger writes), no trailing bytes? */
static int parse_object(const char *line, parsed_t *out)
{
    const char *p = line;
    out->n = 0;
    if (*p++ != '{') {
        return -1;
    }
    if (*p == '}') {
        return p[1] == '\0' ? 0 : -1;
    }
    for (;;) {
        char *key = parse_string(&p);
        if (!key || *p++ != ':') {
            free(key);
            goto fail;
        }
        char *value = *p == '"' ? parse_string(&p) : parse_scalar(&p);
        if (!value || out->n == MAX_KEYS) {
            free(key);
            free(value);
            goto fail;
        }
        snprintf(out->keys[out->n], sizeof out->keys[0], "%s", key);
        out->values[out->n++] = value;
        free(key);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}' && p[1] == '\0') {
            return 0;
        }
        goto fail;
    }
fail:
    parsed_free(out);
    return -1;
}

/* Strict UTF-8: no overlongs, surrogates or code points past U+10FFFF. */
static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        int need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c == 0xE0) {
            need = 2, lo = 0xA0;
        } else if (c == 0xED) {
            need = 2, hi = 0x9F;
        } else if (c >= 0xE1 && c <= 0xEF) {
            need = 2;
        } else if (c == 0xF0) {
            need = 3, lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            need = 3;
        } else if (c == 0xF4) {
            need = 3, hi = 0x8F;
        } else {
            return 0;
        }
        if (p[1] < lo || p[1] > hi) {
            return 0;
        }
        for (int k = 2; k <= need; k++) {
            if (p[k] < 0x80 || p[k] > 0xBF) {
                return 0;
            }
        }
        p += need + 1;
    }
    return 1;
}

/* A line with the five required keys first, in order, valid UTF-8 throughout. */
static int line_ok(const char *line, parsed_t *out)
{
    static const char *required[] = {"ts", "level", "service", "event", "msg"};
    if (!utf8_valid(line) || parse_object(line, out) != 0) {
        return 0;
    }
    for (int i = 0; i < 5; i++) {
        if (i >= out->n || strcmp(out->keys[i], required[i]) != 0) {
            parsed_free(out);
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ helpers */

typedef struct {
    int rd;
    int wr;
    px_log_t *log;
    char *line;
} rig_t;

static int rig_open(rig_t *r, px_log_level_t level)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    r->rd = fds[0];
    r->wr = fds[1];
    r->log = px_log_new("test-svc", level, r->wr);
    r->line = malloc(LINE_CAP);
    return r->log && r->line ? 0 : -1;
}

static void rig_close(rig_t *r)
{
    px_log_destroy(&r->log);
    close(r->rd);
    close(r->wr);
    free(r->line);
}

static int rig_read(rig_t *r)
{
    return px_test_read_line(r->rd, r->line, LINE_CAP, 1000);
}

/* -------------------------------------------------------------------- cases */

static void test_line_shape(void)
{
    rig_t r;
    PX_REQUIRE(rig_open(&r, PX_LOG_INFO) == 0);
    px_log_emit(r.log, PX_LOG_INFO, "RPC-CALL", "call done",
                PX_LOG_FIELDS(PX_LS("method", "roster.v1.Roster/GetUnit"), PX_LI("code", 5),
                              PX_LI("big", INT64_MIN), PX_LS("absent", NULL)));
    PX_REQUIRE(rig_read(&r) == 0);
    parsed_t p;
    PX_REQUIRE(line_ok(r.line, &p));
    PX_CHECK_INT_EQ(p.n, 9);
    PX_CHECK_STR_EQ(find_value(&p, "level"), "info");
    PX_CHECK_STR_EQ(find_value(&p, "service"), "test-svc");
    PX_CHECK_STR_EQ(find_value(&p, "event"), "RPC-CALL");
    PX_CHECK_STR_EQ(find_value(&p, "msg"), "call done");
    PX_CHECK_STR_EQ(find_value(&p, "method"), "roster.v1.Roster/GetUnit");
    PX_CHECK_STR_EQ(find_value(&p, "code"), "5");
    PX_CHECK_STR_EQ(find_value(&p, "big"), "-9223372036854775808");
    PX_CHECK_STR_EQ(find_value(&p, "absent"), "null");
    PX_CHECK(strstr(r.line, "\"code\":5") != NULL);

    /* 2026-11-29T02:44:13.123456Z */
    const char *ts = find_value(&p, "ts");
    PX_REQUIRE(ts);
    PX_CHECK_INT_EQ(strlen(ts), 27);
    const char *shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    for (size_t i = 0; i < strlen(shape) && i < strlen(ts); i++) {
        if (shape[i] == 'd') {
            PX_CHECK(ts[i] >= '0' && ts[i] <= '9');
        } else {
            PX_CHECK_INT_EQ(ts[i], shape[i]);
        }
    }
    parsed_free(&p);

    /* No fields at all, and NULL event and msg. */
    px_log_emit(r.log, PX_LOG_ERROR, NULL, NULL, NULL);
    PX_REQUIRE(rig_read(&r) == 0);
    PX_REQUIRE(line_ok(r.line, &p));
    PX_CHECK_INT_EQ(p.n, 5);
    PX_CHECK_STR_EQ(find_value(&p, "level"), "error");
    PX_CHECK_STR_EQ(find_value(&p, "msg"), "null");
    parsed_free(&p);
    rig_close(&r);
}

static void test_levels(void)
{
    rig_t r;
    PX_REQUIRE(rig_open(&r, PX_LOG_WARN) == 0);
    PX_CHECK(!px_log_enabled(r.log, PX_LOG_INFO));
    PX_CHECK(px_log_enabled(r.log, PX_LOG_ERROR));
    px_log_emit(r.log, PX_LOG_INFO, "SKIPPED", "not written", NULL);
    px_log_emit(r.log, PX_LOG_WARN, "WRITTEN", "written", NULL);
    PX_REQUIRE(rig_read(&r) == 0);
    PX_CHECK(strstr(r.line, "\"event\":\"WRITTEN\"") != NULL);
    px_log_set_level(r.log, PX_LOG_DEBUG);
    px_log_emit(r.log, PX_LOG_DEBUG, "DEBUG-NOW", "written", NULL);
    PX_REQUIRE(rig_read(&r) == 0);
    PX_CHECK(strstr(r.line, "\"level\":\"debug\"") != NULL);
    rig_close(&r);

    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        px_log_level_t level = PX_LOG_ERROR;
        PX_CHECK(px_log_level_parse(names[i], &level));
        PX_CHECK_INT_EQ(level, i);
        PX_CHECK_STR_EQ(px_log_level_name(level), names[i]);
    }
    PX_CHECK(!px_log_level_parse("verbose", NULL));
    PX_CHECK(!px_log_level_parse("INFO", NULL));

    /* A NULL logger is a no-op, and destroy is idempotent. */
    PX_CHECK(!px_log_enabled(NULL, PX_LOG_ERROR));
    px_log_emit(NULL, PX_LOG_ERROR, "X", "y", NULL);
    px_log_t *log = px_log_new("x", PX_LOG_INFO, 2);
    px_log_destroy(&log);
    PX_CHECK(log == NULL);
    px_log_destroy(&log);
}

static void test_escapes_control_chars(void)
{
    rig_t r;
    PX_REQUIRE(rig_open(&r, PX_LOG_DEBUG) == 0);
    const char *nasty = "quote\" back\\slash nl\n cr\r tab\t bs\b ff\f one\x01 us\x1f del\x7f";
    px_log_emit(r.log, PX_LOG_INFO, "ESC", nasty, PX_LOG_FIELDS(PX_LS("k\"ey\n", nasty)));
    PX_REQUIRE(rig_read(&r) == 0);
    parsed_t p;
    PX_REQUIRE(line_ok(r.line, &p));
    PX_CHECK_STR_EQ(find_value(&p, "msg"), nasty);
    PX_CHECK_STR_EQ(find_value(&p, "k\"ey\n"), nasty);
    PX_CHECK(strstr(r.line, "one\\u0001 us\\u001f") != NULL);
    PX_CHECK(strstr(r.line, "nl\\n cr\\r tab\\t bs\\b ff\\f") != NULL);
    parsed_free(&p);
    rig_close(&r);
}

static void test_invalid_utf8_replaced(void)
{
    static const struct {
        const char *in;
        const char *want; /* decoded; \xEF\xBF\xBD is U+FFFD */
    } cases[] = {
        {"ok Vi\xE1\xBB\x87t", "ok Vi\xE1\xBB\x87t"},
        {"a\xFF"
         "b",
         "a\xEF\xBF\xBD"
         "b"},
        {"lone \x80 cont", "lone \xEF\xBF\xBD cont"},
        {"overlong \xC0\xAF", "overlong \xEF\xBF\xBD\xEF\xBF\xBD"},
        {"cut \xF0\x9F\x98x", "cut \xEF\xBF\xBDx"},
        {"cut at end \xE1\xBB", "cut at end \xEF\xBF\xBD"},
        {"surrogate \xED\xA0\x80", "surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"too big \xF4\x90\x80\x80", "too big \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"emoji \xF0\x9F\x98\x80", "emoji \xF0\x9F\x98\x80"},
    };
    rig_t r;
    PX_REQUIRE(rig_open(&r, PX_LOG_DEBUG) == 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        px_log_emit(r.log, PX_LOG_INFO, "UTF8", cases[i].in, NULL);
        PX_REQUIRE(rig_read(&r) == 0);
        parsed_t p;
        PX_CHECK(line_ok(r.line, &p));
        PX_CHECK_STR_EQ(find_value(&p, "msg"), cases[i].want);
        parsed_free(&p);
    }
    rig_close(&r);
}

/* snprintf's contract: the full length back, whole characters and both quotes in buf. */
static void test_json_escape_bounds(void)
{
    char buf[32];
    PX_CHECK_INT_EQ(px_json_escape(NULL, 0, "abc"), 5);
    PX_CHECK_INT_EQ(px_json_escape(buf, sizeof buf, "abc"), 5);
    PX_CHECK_STR_EQ(buf, "\"abc\"");
    PX_CHECK_INT_EQ(px_json_escape(buf, 6, "abcdef"), 8);
    PX_CHECK_STR_EQ(buf, "\"abc\"");
    PX_CHECK_INT_EQ(px_json_escape(buf, 5, "a\nb"), 6);
    PX_CHECK_STR_EQ(buf, "\"a\"");
    PX_CHECK_INT_EQ(px_json_escape(buf, 6, "a\xE1\xBB\x87"), 6);
    PX_CHECK_STR_EQ(buf, "\"a\"");
    PX_CHECK_INT_EQ(px_json_escape(buf, 7, "a\xE1\xBB\x87"), 6);
    PX_CHECK_STR_EQ(buf, "\"a\xE1\xBB\x87\"");
    PX_CHECK_INT_EQ(px_json_escape(buf, sizeof buf, "\xFF"), 5);
    PX_CHECK_STR_EQ(buf, "\"\xEF\xBF\xBD\"");
    PX_CHECK_INT_EQ(px_json_escape(buf, sizeof buf, NULL), 4);
    PX_CHECK_STR_EQ(buf, "null");
    PX_CHECK_INT_EQ(px_json_escape(buf, 2, "x"), 3);
    PX_CHECK_STR_EQ(buf, "");
}

static void test_long_line_truncated(void)
{
    size_t big = 100 * 1024;
    char *msg = malloc(big + 1);
    PX_REQUIRE(msg);
    /* Three-byte characters, so a careless cut would split one. */
    for (size_t i = 0; i + 3 <= big; i += 3) {
        memcpy(msg + i, "\xE1\xBB\x87", 3);
    }
    msg[big - big % 3] = '\0';
    rig_t r;
    if (rig_open(&r, PX_LOG_DEBUG) != 0) {
        free(msg);
        PX_REQUIRE(0);
    }
    px_log_emit(r.log, PX_LOG_INFO, "BIG", msg, PX_LOG_FIELDS(PX_LS("after", "dropped")));
    PX_CHECK(rig_read(&r) == 0);
    size_t len = strlen(r.line);
    PX_CHECK(len + 1 <= 16 * 1024);
    PX_CHECK(len + 1 > 15 * 1024);
    parsed_t p;
    PX_CHECK(line_ok(r.line, &p));
    PX_CHECK_STR_EQ(find_value(&p, "truncated"), "true");
    PX_CHECK(find_value(&p, "after") == NULL);
    const char *got = find_value(&p, "msg");
    PX_CHECK(got && strlen(got) % 3 == 0 && strncmp(got, msg, strlen(got)) == 0);
    parsed_free(&p);

    /* A long field after a short message: the message whole, the field cut. */
    px_log_emit(r.log, PX_LOG_INFO, "BIG", "short",
                PX_LOG_FIELDS(PX_LI("n", 1), PX_LS("blob", msg), PX_LI("never", 2)));
    PX_CHECK(rig_read(&r) == 0);
    PX_CHECK(line_ok(r.line, &p));
    PX_CHECK_STR_EQ(find_value(&p, "msg"), "short");
    PX_CHECK_STR_EQ(find_value(&p, "n"), "1");
    PX_CHECK(find_value(&p, "blob") != NULL);
    PX_CHECK(find_value(&p, "never") == NULL);
    PX_CHECK_STR_EQ(find_value(&p, "truncated"), "true");
    parsed_free(&p);

    /* Many control characters, each six bytes escaped: the cut never splits an escape. */
    memset(msg, '\x01', 20000);
    msg[20000] = '\0';
    px_log_emit(r.log, PX_LOG_INFO, "BIG", msg, NULL);
    PX_CHECK(rig_read(&r) == 0);
    PX_CHECK(line_ok(r.line, &p));
    PX_CHECK_STR_EQ(find_value(&p, "truncated"), "true");
    parsed_free(&p);
    rig_close(&r);
    free(msg);
}

/* ------------------------------------------------- many threads, whole lines */

#define THREADS 8
#define LINES_PER_THREAD 400

typedef struct {
    px_log_t *log;
    int id;
} writer_arg_t;

static void *writer(void *arg)
{
    writer_arg_t *w = arg;
    char *pad = malloc(8192);
    for (int i = 0; i < LINES_PER_THREAD; i++) {
        /* Lengths from tiny to past PIPE_BUF, so the kernel's atomicity alone would not do. */
        size_t n = (size_t)((i * 997 + w->id * 131) % 7000);
        memset(pad, 'a' + w->id, n);
        pad[n] = '\0';
        px_log_emit(w->log, PX_LOG_INFO, "LOAD", pad,
                    PX_LOG_FIELDS(PX_LI("thread", w->id), PX_LI("seq", i)));
    }
    free(pad);
    return NULL;
}

typedef struct {
    int fd;
    char *data;
    size_t len;
} reader_arg_t;

static void *reader(void *arg)
{
    reader_arg_t *r = arg;
    size_t cap = 1 << 20;
    r->data = malloc(cap);
    for (;;) {
        if (r->len + 65536 > cap) {
            cap *= 2;
            r->data = realloc(r->data, cap);
        }
        ssize_t n = read(r->fd, r->data + r->len, 65536);
        if (n <= 0) {
            break;
        }
        r->len += (size_t)n;
    }
    r->data[r->len] = '\0';
    return NULL;
}

static void test_concurrent_writers_whole_lines(void)
{
    int fds[2];
    PX_REQUIRE(pipe(fds) == 0);
    px_log_t *log = px_log_new("load", PX_LOG_INFO, fds[1]);
    PX_REQUIRE(log);
    reader_arg_t ra = {.fd = fds[0]};
    pthread_t rt;
    PX_REQUIRE(pthread_create(&rt, NULL, reader, &ra) == 0);
    pthread_t wt[THREADS];
    writer_arg_t wa[THREADS];
    for (int i = 0; i < THREADS; i++) {
        wa[i] = (writer_arg_t){log, i};
        pthread_create(&wt[i], NULL, writer, &wa[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(wt[i], NULL);
    }
    px_log_destroy(&log);
    close(fds[1]);
    pthread_join(rt, NULL);
    close(fds[0]);

    int next_seq[THREADS] = {0};
    int lines = 0, bad = 0;
    char *save = NULL;
    for (char *line = strtok_r(ra.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lines++;
        parsed_t p;
        if (!line_ok(line, &p)) {
            bad++;
            continue;
        }
        const char *t = find_value(&p, "thread");
        const char *s = find_value(&p, "seq");
        const char *msg = find_value(&p, "msg");
        int id = t ? atoi(t) : -1;
        if (id < 0 || id >= THREADS || !s || atoi(s) != next_seq[id]) {
            bad++;
        } else {
            /* The message is all one thread's letter: no bytes from another line inside. */
            for (const char *c = msg; c && *c; c++) {
                if (*c != 'a' + id) {
                    bad++;
                    break;
                }
            }
            next_seq[id]++;
        }
        parsed_free(&p);
    }
    PX_CHECK_INT_EQ(lines, THREADS * LINES_PER_THREAD);
    PX_CHECK_INT_EQ(bad, 0);
    for (int i = 0; i < THREADS; i++) {
        PX_CHECK_INT_EQ(next_seq[i], LINES_PER_THREAD);
    }
    free(ra.data);
}

static const px_test_case_t cases[] = {
    {"line_shape", test_line_shape},
    {"levels", test_levels},
    {"escapes_control_chars", test_escapes_control_chars},
    {"invalid_utf8_replaced", test_invalid_utf8_replaced},
    {"json_escape_bounds", test_json_escape_bounds},
    {"long_line_truncated", test_long_line_truncated},
    {"concurrent_writers_whole_lines", test_concurrent_writers_whole_lines},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, cases);
}
