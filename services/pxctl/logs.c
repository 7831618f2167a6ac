/*
 * logs.c - pxctl logs: the log lines of every process, merged in time order, live with -f.
 *
 * Each process with a log stream (docs/LOGS.md) publishes its lines on a PUB
 * endpoint and keeps its recent ones behind a history endpoint. pxctl asks the
 * histories first (all at once, each bounded by --history-timeout-ms, so one dead process
 * costs one timeout, not one per process), prints them sorted by time, then with
 * -f follows the live streams: one SUB per process, because sequences count per
 * process and a gap in them is how a reader learns it lost lines. Live lines are
 * held for a short reorder window (--reorder-ms) and released in time order, so
 * that a gateway line and the activation line it caused come out in the order
 * they happened even though they arrived over different connections.
 *
 * A reader that cannot keep up (a slow terminal, a pipe nobody reads) is not
 * waited for: the process drops its lines past its HWM, and pxctl says how many
 * were lost, per process, on stderr ("… 12 lines of gateway lost"). Right after
 * the history, lines published between the history's answer and the live
 * subscription taking hold are fetched from the history again rather than
 * reported lost.
 *
 * What arrives is checked like any input from the network: frames bounded, the
 * line a JSON object, and on a terminal every string shown with its control
 * characters escaped (a log line must not drive the operator's terminal). Piped,
 * the lines are printed as JSON, one per line, as the processes wrote them.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "logs.h"
#include "phuxanh/clock.h"
#include "phuxanh/log.h"
#include "phuxanh/logstream.h"
#include "phuxanh/text.h"
#include "pxctl.h"

/* Processes followed at once; more is a typo in a list, not a deployment. */
#define LOGS_MAX_SOURCES 32
/* A process name and an endpoint, as given or as they arrive. */
#define LOGS_NAME_MAX 64
#define LOGS_ENDPOINT_MAX 256
/* A frame longer than any line a process writes (16 KiB) is not one of ours. */
#define LOGS_LINE_MAX (64 * 1024)
/* Live lines held for reordering at most; past it the oldest go out early. */
#define LOGS_PENDING_MAX 100000
/* History answers followed ("more") per process: 1 MiB each, far past any history kept. */
#define LOGS_HISTORY_ROUNDS 256
/* Unset --log-endpoints: deploy/quickstart.sh's system, as the other endpoints' defaults are
 * (the table's default would not fit --help's columns). */
#define LOGS_DEFAULT_ENDPOINTS                                                                     \
    "roster=tcp://127.0.0.1:7111+tcp://127.0.0.1:7112,"                                            \
    "activation=tcp://127.0.0.1:7113+tcp://127.0.0.1:7114,"                                        \
    "gateway=tcp://127.0.0.1:7115+tcp://127.0.0.1:7116"
/* The poll's tick while following: how late a line may go out past its window. */
#define LOGS_TICK_MS 50
/* The gateway takes a caller's X-Request-Id of up to 64 characters (GW_REQUEST_ID_MAX). */
#define LOGS_REQUEST_ID_MAX 64

static const pxctl_option_t s_options[] = {
    {{"log-endpoints", "PX_LOG_ENDPOINTS", NULL,
      "the processes' log streams, comma separated: [NAME=]PUB_ENDPOINT[+HISTORY_ENDPOINT]; "
      "unset: deploy/quickstart.sh's (ports 7111 to 7116)"},
     0,
     0},
    {{"follow", NULL, "off", "after the history, print new lines as they come, until interrupted"},
     PXCTL_SWITCH,
     'f'},
    {{"service", NULL, NULL, "only these services' lines (comma separated)"}, 0, 0},
    {{"level", NULL, "debug", "only lines at this level or above: debug, info, warn, error"}, 0, 0},
    {{"request-id", NULL, NULL, "only the lines of this request (their request_id)"}, 0, 0},
    {{"since", NULL, NULL,
      "lines from this long ago (30s, 10m, 2h, 1d) or this time (2026-12-02T08:00:00Z); "
      "without it: all kept lines, or with -f only new ones"},
     0,
     0},
    {{"format", NULL, "auto", "auto (text on a terminal, else JSON lines), text or json"}, 0, 0},
    {{"reorder-ms", NULL, "200", "with -f: how long a line waits for earlier ones from others"},
     0,
     0},
    {{"hwm", NULL, "1000",
      "with -f: lines held per process while this reader is busy; past them it loses lines"},
     0,
     0},
    {{"history-timeout-ms", "PX_LOG_HISTORY_TIMEOUT_MS", "3000",
      "how long a process may take to send its history"},
     0,
     0},
    {{NULL, NULL, NULL, NULL}, 0, 0},
};

static const pxctl_command_t s_cmd = {
    .name = "logs",
    .synopsis = NULL,
    .summary = "the services' log lines, merged in time order; -f follows them live",
    .details = "Reads the log streams of the processes named by --log-endpoints (each process's\n"
               "log-endpoint, and after a '+' its log-history-endpoint): first the lines they\n"
               "kept, then with -f the new ones, merged in time order. On a terminal the lines\n"
               "are shown readable and coloured, else as JSON lines. Lines a slow reader missed\n"
               "are counted: \"… N lines of SERVICE lost\" on stderr.\n\n"
               "Examples:\n"
               "  pxctl logs -f\n"
               "  pxctl logs --since 10m --level warn\n"
               "  pxctl logs -f --request-id 4bf92f3577b34da6 --service gateway,activation\n"
               "  pxctl logs --since 1h | jq -r 'select(.event == \"RPC-CALL\") | .method'",
    .options = s_options,
    .common = PXCTL_COMMON_CURVE,
    .min_args = 0,
    .max_args = 0,
};

typedef struct {
    char name[LOGS_NAME_MAX]; /* as given, else as its first message says */
    bool named;
    char pub[LOGS_ENDPOINT_MAX];
    char hist[LOGS_ENDPOINT_MAX]; /* "": no history */
    void *sub;
    bool have_last;     /* the history told its last published sequence */
    uint64_t last;      /* that sequence */
    bool joined;        /* a live line was seen */
    uint64_t expect;    /* the next live sequence */
    bool warned_bad;    /* a malformed message was reported */
    bool hist_answered; /* its history arrived (whole) */
} s_source_t;

typedef struct {
    int64_t ts_us;
    int64_t arrived_us; /* monotonic */
    uint64_t seq;
    int src;
    json_t *obj;
    char *raw; /* the line as it came (no newline) */
    size_t len;
} s_line_t;

typedef struct {
    s_line_t *v;
    size_t n, cap;
} s_lines_t;

typedef enum { S_TEXT, S_JSON } s_format_t;

typedef struct {
    const px_config_t *cfg;
    px_curve_t *curve; /* NULL: plaintext; with it each stream's key is found by its NAME */
    s_source_t src[LOGS_MAX_SOURCES];
    int nsrc;
    void *zctx;
    /* filters */
    char services[LOGS_MAX_SOURCES][LOGS_NAME_MAX];
    int nservices;
    px_log_level_t level;
    const char *request_id;
    int64_t since_us; /* 0: none */
    s_format_t format;
    bool color;
    int64_t timeout_ms, reorder_ms, hwm;
    bool out_broken;    /* stdout closed (| head): stop quietly */
    uint64_t hist_seen; /* lines a history answer had (shown or filtered out) */
} s_ctx_t;

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/* ---------------------------------------------------------------- settings */

static bool s_name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= LOGS_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

static bool s_endpoint_ok(const char *s, size_t n)
{
    if (n == 0 || n >= LOGS_ENDPOINT_MAX || !strstr(s, "://")) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

/* A bounded copy (the source's length was checked, or a cut is harmless: a display name). */
static void s_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    n = n < cap - 1 ? n : cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* "[NAME=]PUB[+HISTORY],..." into c->src. */
static bool s_parse_endpoints(s_ctx_t *c, const char *list)
{
    if (!list || !*list) {
        pxctl_err(s_cmd.name, "no log streams: set --log-endpoints (PX_LOG_ENDPOINTS)");
        return false;
    }
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (c->nsrc == LOGS_MAX_SOURCES) {
            pxctl_err(s_cmd.name, "--log-endpoints: at most %d processes", LOGS_MAX_SOURCES);
            return false;
        }
        char item[2 * LOGS_ENDPOINT_MAX + LOGS_NAME_MAX];
        if (len == 0 || len >= sizeof item) {
            pxctl_err(s_cmd.name, "--log-endpoints: an empty or overlong item");
            return false;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        s_source_t *s = &c->src[c->nsrc];
        char *ep = item;
        char *eq = strchr(item, '=');
        char *colon = strstr(item, "://");
        if (eq && (!colon || eq < colon)) {
            *eq = '\0';
            if (!s_name_ok(item, strlen(item))) {
                pxctl_err(s_cmd.name, "--log-endpoints: \"%.64s\" is not a process name", item);
                return false;
            }
            s_copy(s->name, sizeof s->name, item);
            s->named = true;
            ep = eq + 1;
        }
        char *plus = strchr(ep, '+');
        if (plus) {
            *plus = '\0';
            if (!s_endpoint_ok(plus + 1, strlen(plus + 1))) {
                pxctl_err(s_cmd.name, "--log-endpoints: \"%.128s\" is not an endpoint", plus + 1);
                return false;
            }
            s_copy(s->hist, sizeof s->hist, plus + 1);
        }
        if (!s_endpoint_ok(ep, strlen(ep))) {
            pxctl_err(s_cmd.name, "--log-endpoints: \"%.128s\" is not an endpoint", ep);
            return false;
        }
        s_copy(s->pub, sizeof s->pub, ep);
        if (!s->name[0]) {
            s_copy(s->name, sizeof s->name, s->pub); /* until it says its name */
        }
        c->nsrc++;
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return c->nsrc > 0;
}

/* "10m" ago, or an RFC 3339 UTC time, as microseconds since the epoch. */
static bool s_parse_since(const char *s, int64_t *out)
{
    static const struct {
        char unit;
        int64_t us;
    } units[] = {{'s', 1000000}, {'m', 60000000}, {'h', 3600000000LL}, {'d', 86400000000LL}};
    char *end = NULL;
    if (*s >= '0' && *s <= '9') {
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (!errno && end && end[0] && !end[1] && n <= 3650LL * 86400) {
            for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
                if (end[0] == units[i].unit && n <= 3650LL * 86400000000LL / units[i].us) {
                    *out = px_wall_us() - n * units[i].us;
                    return true;
                }
            }
        }
    }
    int y, mo, d, h, mi, sec, used = 0;
    if (strlen(s) < 40 &&
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) == 6 &&
        used == 19) {
        const char *rest = s + used;
        int64_t frac = 0;
        if (*rest == '.') {
            int64_t scale = 100000;
            rest++;
            if (!(*rest >= '0' && *rest <= '9')) {
                return false;
            }
            while (*rest >= '0' && *rest <= '9') {
                frac += (*rest - '0') * scale;
                scale /= 10;
                rest++;
            }
        }
        if (strcmp(rest, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
            sec > 60) {
            return false;
        }
        struct tm tm = {.tm_year = y - 1900,
                        .tm_mon = mo - 1,
                        .tm_mday = d,
                        .tm_hour = h,
                        .tm_min = mi,
                        .tm_sec = sec};
        *out = (int64_t)timegm(&tm) * 1000000 + frac;
        return true;
    }
    return false;
}

/* The ts of a line, "2026-11-29T02:44:13.123456Z", in microseconds; false when not one. */
static bool s_parse_ts(const char *ts, int64_t *out)
{
    return ts && strlen(ts) >= 20 && s_parse_since(ts, out) && ts[0] >= '1' && ts[0] <= '9' &&
           strchr(ts, 'T');
}

/* ---------------------------------------------------------------- lines */

static void s_line_free(s_line_t *l)
{
    json_decref(l->obj);
    free(l->raw);
    l->obj = NULL;
    l->raw = NULL;
}

static bool s_lines_push(s_lines_t *ls, const s_line_t *l)
{
    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? ls->cap * 2 : 256;
        s_line_t *v = realloc(ls->v, cap * sizeof *v);
        if (!v) {
            return false;
        }
        ls->v = v;
        ls->cap = cap;
    }
    ls->v[ls->n++] = *l;
    return true;
}

static void s_lines_free(s_lines_t *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        s_line_free(&ls->v[i]);
    }
    free(ls->v);
    memset(ls, 0, sizeof *ls);
}

/* Time order; a process's own lines by sequence when their times tie. */
static int s_line_cmp(const void *a, const void *b)
{
    const s_line_t *x = a, *y = b;
    if (x->ts_us != y->ts_us) {
        return x->ts_us < y->ts_us ? -1 : 1;
    }
    if (x->src != y->src) {
        return x->src < y->src ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const char *s_str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Parses and filters one line; true with *out filled when it is to be shown. */
static bool s_line_make(s_ctx_t *c, int src, uint64_t seq, const char *svc, const char *raw,
                        size_t len, s_line_t *out)
{
    json_error_t err;
    json_t *obj = json_loadb(raw, len, JSON_REJECT_DUPLICATES, &err);
    int64_t ts = 0;
    if (!obj || !json_is_object(obj) || !s_parse_ts(s_str(obj, "ts"), &ts)) {
        json_decref(obj);
        if (!c->src[src].warned_bad) {
            c->src[src].warned_bad = true;
            pxctl_err(s_cmd.name, "%s sent a line that is not a log line (skipped)",
                      c->src[src].name);
        }
        return false;
    }
    bool keep = c->since_us == 0 || ts >= c->since_us;
    if (keep && c->nservices > 0) {
        keep = false;
        for (int i = 0; i < c->nservices && !keep; i++) {
            keep = strcmp(c->services[i], svc) == 0;
        }
    }
    px_log_level_t lv;
    if (keep && c->level > PX_LOG_DEBUG) {
        keep = px_log_level_parse(s_str(obj, "level"), &lv) && lv >= c->level;
    }
    if (keep && c->request_id) {
        const char *rid = s_str(obj, "request_id");
        keep = rid && strcmp(rid, c->request_id) == 0;
    }
    if (!keep) {
        json_decref(obj);
        return false;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        json_decref(obj);
        return false;
    }
    memcpy(copy, raw, len);
    copy[len] = '\0';
    *out = (s_line_t){ts, px_clock_us(), seq, src, obj, copy, len};
    return true;
}

/* ---------------------------------------------------------------- printing */

/* A string for a terminal: control characters (C0, DEL, C1) escaped, so that no log line can
 * move the cursor or recolour the screen. quote: in quotes, as JSON, when it has a space, a
 * quote, '=' or is empty, so key=value pairs stay readable. */
static void s_put_safe(FILE *out, const char *s, bool quote)
{
    bool q = false;
    if (quote) {
        q = !*s;
        for (const char *p = s; *p && !q; p++) {
            q = *p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20;
        }
    }
    if (q) {
        fputc('"', out);
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\u%04x", *p);
        } else if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
            fprintf(out, "\\u%04x", p[1]);
            p++;
        } else if (q && (*p == '"' || *p == '\\')) {
            fputc('\\', out);
            fputc(*p, out);
        } else {
            fputc(*p, out);
        }
    }
    if (q) {
        fputc('"', out);
    }
}

static const char *const s_level_color[] = {"\033[2m", "\033[32m", "\033[33m", "\033[1;31m"};

static void s_print_text(s_ctx_t *c, const s_line_t *l)
{
    FILE *out = stdout;
    const char *ts = s_str(l->obj, "ts");
    const char *lvname = s_str(l->obj, "level");
    px_log_level_t lv = PX_LOG_INFO;
    bool known = px_log_level_parse(lvname, &lv);
    /* The time of day (UTC) to the microsecond: the date is rarely what one reads a tail for. */
    fputs(c->color ? "\033[2m" : "", out);
    fputs(strchr(ts, 'T') + 1, out);
    fputs(c->color ? "\033[0m " : " ", out);
    char lvbuf[8];
    snprintf(lvbuf, sizeof lvbuf, "%-5s", known ? px_log_level_name(lv) : "?");
    for (char *p = lvbuf; *p; p++) {
        *p = (char)((*p >= 'a' && *p <= 'z') ? *p - 32 : *p);
    }
    fprintf(out, "%s%s%s ", c->color ? s_level_color[lv] : "", lvbuf, c->color ? "\033[0m" : "");
    const char *svc = s_str(l->obj, "service");
    fputs(c->color ? "\033[36m" : "", out);
    s_put_safe(out, svc ? svc : c->src[l->src].name, false);
    fputs(c->color ? "\033[0m " : " ", out);
    const char *event = s_str(l->obj, "event");
    if (event) {
        fputs(c->color ? "\033[1m" : "", out);
        s_put_safe(out, event, false);
        fputs(c->color ? "\033[0m " : " ", out);
    }
    const char *msg = s_str(l->obj, "msg");
    if (msg) {
        s_put_safe(out, msg, false);
    }
    const char *key;
    json_t *v;
    json_object_foreach(l->obj, key, v)
    {
        if (strcmp(key, "ts") == 0 || strcmp(key, "level") == 0 || strcmp(key, "service") == 0 ||
            strcmp(key, "event") == 0 || strcmp(key, "msg") == 0) {
            continue;
        }
        fputc(' ', out);
        fputs(c->color ? "\033[2m" : "", out);
        s_put_safe(out, key, true);
        fputs(c->color ? "=\033[0m" : "=", out);
        if (json_is_string(v)) {
            s_put_safe(out, json_string_value(v), true);
        } else {
            char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            if (d) {
                s_put_safe(out, d, false);
                free(d);
            }
        }
    }
    fputc('\n', out);
}

static void s_print(s_ctx_t *c, const s_line_t *l)
{
    if (c->out_broken) {
        return;
    }
    if (c->format == S_TEXT) {
        s_print_text(c, l);
    } else if (memchr(l->raw, '\n', l->len) || memchr(l->raw, '\r', l->len)) {
        /* valid JSON spread over lines: one line of it, so the output stays JSON lines */
        char *d = json_dumps(l->obj, JSON_COMPACT);
        if (d) {
            puts(d);
            free(d);
        }
    } else {
        fwrite(l->raw, 1, l->len, stdout);
        fputc('\n', stdout);
    }
    if (ferror(stdout)) {
        c->out_broken = true;
    }
}

static void s_flush_out(s_ctx_t *c)
{
    if (!c->out_broken && fflush(stdout) != 0) {
        c->out_broken = true;
    }
}

/* ---------------------------------------------------------------- reading messages */

/* Reads one whole message into at most `max` frames; the number of frames, or -1 when nothing
 * was waiting, or -2 when it had more (read and dropped). */
static int s_recv(void *sock, zmq_msg_t *frames, int max, int flags)
{
    int n = 0;
    bool fits = true;
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, n == 0 ? flags : 0) < 0) {
            zmq_msg_close(&m);
            for (int i = 0; i < n; i++) {
                zmq_msg_close(&frames[i]);
            }
            return -1;
        }
        bool more = zmq_msg_more(&m);
        if (n < max) {
            frames[n++] = m;
        } else {
            fits = false;
            zmq_msg_close(&m);
        }
        if (!more) {
            break;
        }
    }
    if (!fits) {
        for (int i = 0; i < n; i++) {
            zmq_msg_close(&frames[i]);
        }
        return -2;
    }
    return n;
}

static void s_close_frames(zmq_msg_t *frames, int n)
{
    for (int i = 0; i < n; i++) {
        zmq_msg_close(&frames[i]);
    }
}

/* The frame as a bounded string: the service name. false when not a clean name. */
static bool s_frame_name(zmq_msg_t *m, char *out)
{
    size_t n = zmq_msg_size(m);
    if (!s_name_ok(zmq_msg_data(m), n)) {
        return false;
    }
    memcpy(out, zmq_msg_data(m), n);
    out[n] = '\0';
    return true;
}

/* ---------------------------------------------------------------- history */

/* The most frames one history answer may have: 1 MiB of lines, at least ~40 bytes each. */
#define LOGS_ANSWER_FRAMES (3 + 2 * 32768)

typedef struct {
    void *req;
    bool waiting;
    bool failed;
    uint64_t after;
    int rounds;
    int64_t deadline_us; /* of the answer awaited: each answer has --history-timeout-ms */
} s_hist_t;

static bool s_hist_ask(s_ctx_t *c, s_hist_t *h, int src, uint64_t after)
{
    px_status_t st;
    if (!h->req) {
        h->req = px_logstream_socket(c->zctx, ZMQ_REQ, 0, c->curve, c->src[src].name, &st);
        if (!h->req || zmq_connect(h->req, c->src[src].hist) != 0) {
            pxctl_err(s_cmd.name, "%s: cannot connect to %s%s%s", c->src[src].name,
                      c->src[src].hist, h->req ? "" : ": ", h->req ? "" : st.message);
            return false;
        }
    }
    char req[PX_LOGSTREAM_REQUEST_MAX + 1];
    snprintf(req, sizeof req, "since %lld after %llu", (long long)c->since_us,
             (unsigned long long)after);
    if (zmq_send(h->req, req, strlen(req), ZMQ_DONTWAIT) < 0) {
        return false;
    }
    h->after = after;
    h->waiting = true;
    h->rounds++;
    h->deadline_us = px_clock_us() + c->timeout_ms * 1000;
    return true;
}

/* Takes one answer of src's history into lines (only seq < before, when before > 0). 1 when
 * there is more to ask for, 0 when done, -1 on a malformed answer. */
static int s_hist_take(s_ctx_t *c, s_hist_t *h, int src, zmq_msg_t *frames, int n, uint64_t before,
                       s_lines_t *lines)
{
    s_source_t *s = &c->src[src];
    char name[LOGS_NAME_MAX];
    if (n < 3 || !s_frame_name(&frames[0], name) ||
        zmq_msg_size(&frames[2]) != PX_LOGSTREAM_SEQ_SIZE) {
        return -1;
    }
    const char *status = zmq_msg_data(&frames[1]);
    size_t slen = zmq_msg_size(&frames[1]);
    if (slen == 5 && memcmp(status, "error", 5) == 0) {
        pxctl_err(s_cmd.name, "%s refused the history request: %.*s", s->name,
                  n > 3 ? (int)(zmq_msg_size(&frames[3]) > 200 ? 200 : zmq_msg_size(&frames[3]))
                        : 0,
                  n > 3 ? (const char *)zmq_msg_data(&frames[3]) : "");
        return -1;
    }
    bool more = slen == 4 && memcmp(status, "more", 4) == 0;
    if (!more && !(slen == 3 && memcmp(status, "end", 3) == 0)) {
        return -1;
    }
    if ((n - 3) % 2 != 0) {
        return -1;
    }
    if (!s->named) {
        s_copy(s->name, sizeof s->name, name);
        s->named = true;
    }
    if (!s->have_last) {
        s->have_last = true;
        s->last = px_logstream_seq_get(zmq_msg_data(&frames[2]));
    }
    uint64_t last = h->after;
    for (int i = 3; i + 1 < n; i += 2) {
        if (zmq_msg_size(&frames[i]) != PX_LOGSTREAM_SEQ_SIZE ||
            zmq_msg_size(&frames[i + 1]) > LOGS_LINE_MAX) {
            return -1;
        }
        uint64_t seq = px_logstream_seq_get(zmq_msg_data(&frames[i]));
        last = seq > last ? seq : last;
        if (before && seq >= before) {
            more = false;
            break;
        }
        c->hist_seen++;
        s_line_t l;
        if (s_line_make(c, src, seq, name, zmq_msg_data(&frames[i + 1]),
                        zmq_msg_size(&frames[i + 1]), &l) &&
            !s_lines_push(lines, &l)) {
            s_line_free(&l);
        }
    }
    h->after = last;
    return more && n > 3 ? 1 : 0;
}

/* Asks every process in `which` (all when which < 0) for its history after `after` (the
 * history's own when 0), in parallel, until each has answered whole or timed out; lines (with
 * seq < before when before > 0) go to lines. Returns how many could not be read. */
static int s_history(s_ctx_t *c, int which, uint64_t after, uint64_t before, s_lines_t *lines)
{
    s_hist_t h[LOGS_MAX_SOURCES];
    memset(h, 0, sizeof h);
    int failed = 0;
    for (int i = 0; i < c->nsrc; i++) {
        if (which >= 0 && i != which) {
            continue;
        }
        if (!c->src[i].hist[0]) {
            if (which < 0) {
                pxctl_err(s_cmd.name, "%s has no history endpoint (NAME=PUB+HISTORY)",
                          c->src[i].name);
            }
            continue;
        }
        if (!s_hist_ask(c, &h[i], i, after)) {
            h[i].failed = true;
            failed++;
        }
    }
    zmq_msg_t *frames = malloc(LOGS_ANSWER_FRAMES * sizeof *frames);
    if (!frames) {
        failed++;
        goto done;
    }
    for (;;) {
        zmq_pollitem_t items[LOGS_MAX_SOURCES];
        int idx[LOGS_MAX_SOURCES], n = 0;
        int64_t now = px_clock_us(), next = INT64_MAX;
        for (int i = 0; i < c->nsrc; i++) {
            if (h[i].waiting && (now >= h[i].deadline_us || s_stop)) {
                if (!s_stop) { /* interrupted: the operator knows why */
                    pxctl_err(s_cmd.name, "%s (%s) did not send its history within %lld ms",
                              c->src[i].name, c->src[i].hist, (long long)c->timeout_ms);
                }
                h[i].waiting = false;
                failed++;
            } else if (h[i].waiting) {
                items[n] = (zmq_pollitem_t){h[i].req, 0, ZMQ_POLLIN, 0};
                idx[n++] = i;
                next = h[i].deadline_us < next ? h[i].deadline_us : next;
            }
        }
        if (n == 0) {
            break;
        }
        long left = (long)((next - now) / 1000) + 1;
        if (zmq_poll(items, n, (long)left) < 0 && zmq_errno() != EINTR) {
            break;
        }
        for (int k = 0; k < n; k++) {
            if (!(items[k].revents & ZMQ_POLLIN)) {
                continue;
            }
            int i = idx[k];
            h[i].waiting = false;
            int nf = s_recv(h[i].req, frames, LOGS_ANSWER_FRAMES, ZMQ_DONTWAIT);
            int r = nf > 0 ? s_hist_take(c, &h[i], i, frames, nf, before, lines) : -1;
            if (nf > 0) {
                s_close_frames(frames, nf);
            }
            if (r < 0) {
                pxctl_err(s_cmd.name, "%s sent a malformed history answer", c->src[i].name);
                failed++;
            } else if (r == 1 && h[i].rounds < LOGS_HISTORY_ROUNDS) {
                if (!s_hist_ask(c, &h[i], i, h[i].after)) {
                    failed++;
                }
            } else {
                c->src[i].hist_answered = true;
            }
        }
    }
done:
    free(frames);
    for (int i = 0; i < c->nsrc; i++) {
        if (h[i].req) {
            zmq_close(h[i].req);
        }
    }
    return failed;
}

/* ---------------------------------------------------------------- following */

static void s_lost(s_ctx_t *c, int src, uint64_t n)
{
    fflush(stdout);
    fprintf(stderr, "%s… %llu line%s of %s lost%s\n", c->color ? "\033[1;33m" : "",
            (unsigned long long)n, n == 1 ? "" : "s", c->src[src].name, c->color ? "\033[0m" : "");
    fflush(stderr);
}

/* Prints pending lines whose window has passed, in time order: those older than the window,
 * and those whose wait is over and everything earlier than them. all: every one (stopping). */
static void s_release(s_ctx_t *c, s_lines_t *pending, bool all)
{
    if (pending->n == 0) {
        return;
    }
    qsort(pending->v, pending->n, sizeof *pending->v, s_line_cmp);
    int64_t now_mono = px_clock_us();
    int64_t cutoff = px_wall_us() - c->reorder_ms * 1000;
    for (size_t i = 0; i < pending->n; i++) {
        s_line_t *l = &pending->v[i];
        if (now_mono - l->arrived_us >= c->reorder_ms * 1000 && l->ts_us > cutoff) {
            cutoff = l->ts_us; /* a clock ahead of ours must not hold its line forever */
        }
    }
    size_t out = 0;
    if (all || pending->n > LOGS_PENDING_MAX) {
        out = all ? pending->n : pending->n - LOGS_PENDING_MAX;
    }
    while (out < pending->n && pending->v[out].ts_us <= cutoff) {
        out++;
    }
    for (size_t i = 0; i < out; i++) {
        s_print(c, &pending->v[i]);
        s_line_free(&pending->v[i]);
    }
    memmove(pending->v, pending->v + out, (pending->n - out) * sizeof *pending->v);
    pending->n -= out;
    if (out) {
        s_flush_out(c);
    }
}

/* One live message of src. */
static void s_live(s_ctx_t *c, int src, zmq_msg_t *frames, int n, s_lines_t *pending)
{
    s_source_t *s = &c->src[src];
    char name[LOGS_NAME_MAX];
    if (n != 3 || !s_frame_name(&frames[0], name) ||
        zmq_msg_size(&frames[1]) != PX_LOGSTREAM_SEQ_SIZE ||
        zmq_msg_size(&frames[2]) > LOGS_LINE_MAX) {
        if (!s->warned_bad) {
            s->warned_bad = true;
            pxctl_err(s_cmd.name, "%s sent a malformed message (skipped)", s->name);
        }
        return;
    }
    if (!s->named) {
        s_copy(s->name, sizeof s->name, name);
        s->named = true;
    }
    uint64_t seq = px_logstream_seq_get(zmq_msg_data(&frames[1]));
    if (!s->joined) {
        s->joined = true;
        s->expect = s->have_last ? s->last + 1 : seq;
        if (s->have_last && seq > s->expect) {
            /* Published after the history's answer, before the subscription held: in the
             * history still, most likely. What it no longer has is lost; what the filters
             * leave out is not. */
            s_lines_t fill = {0};
            c->hist_seen = 0;
            s_history(c, src, s->expect - 1, seq, &fill);
            for (size_t i = 0; i < fill.n; i++) {
                if (!s_lines_push(pending, &fill.v[i])) {
                    s_line_free(&fill.v[i]);
                }
            }
            free(fill.v);
            uint64_t gap = seq - s->expect;
            if (gap > c->hist_seen) {
                s_lost(c, src, gap - c->hist_seen);
            }
            s->expect = seq;
        }
    }
    if (seq < s->expect) {
        /* Already had it (from the history), or the process restarted: sequences start again
         * at 1 in a new process. */
        if (seq + 1000 < s->expect || seq == 1) {
            s->expect = seq;
        } else {
            return;
        }
    }
    if (seq > s->expect) {
        s_lost(c, src, seq - s->expect);
    }
    s->expect = seq + 1;
    s_line_t l;
    if (s_line_make(c, src, seq, name, zmq_msg_data(&frames[2]), zmq_msg_size(&frames[2]), &l) &&
        !s_lines_push(pending, &l)) {
        s_line_free(&l);
    }
}

static int s_follow(s_ctx_t *c)
{
    s_lines_t pending = {0};
    zmq_msg_t frames[4];
    while (!s_stop && !c->out_broken) {
        zmq_pollitem_t items[LOGS_MAX_SOURCES];
        for (int i = 0; i < c->nsrc; i++) {
            items[i] = (zmq_pollitem_t){c->src[i].sub, 0, ZMQ_POLLIN, 0};
        }
        if (zmq_poll(items, c->nsrc, LOGS_TICK_MS) < 0 && zmq_errno() != EINTR) {
            pxctl_err(s_cmd.name, "%s", zmq_strerror(zmq_errno()));
            break;
        }
        for (int i = 0; i < c->nsrc; i++) {
            /* A bounded batch per process, so one loud process does not starve the others. */
            for (int k = 0; k < 1000 && (items[i].revents & ZMQ_POLLIN); k++) {
                int n = s_recv(c->src[i].sub, frames, 4, ZMQ_DONTWAIT);
                if (n == -1) {
                    break;
                }
                s_live(c, i, frames, n < 0 ? 0 : n, &pending);
                if (n > 0) {
                    s_close_frames(frames, n);
                }
            }
        }
        s_release(c, &pending, false);
    }
    s_release(c, &pending, true);
    s_lines_free(&pending);
    return PXCTL_EXIT_OK;
}

/* ---------------------------------------------------------------- the command */

int pxctl_logs_main(int argc, char **argv)
{
    pxctl_args_t args;
    int rc;
    if (!pxctl_args_parse(&s_cmd, argc, argv, &args, &rc)) {
        return rc;
    }
    s_ctx_t *c = calloc(1, sizeof *c);
    s_lines_t history = {0};
    if (!c) {
        pxctl_err(s_cmd.name, "out of memory");
        goto done;
    }
    c->cfg = args.cfg;
    c->curve = args.curve;
    rc = PXCTL_EXIT_USAGE;
    const char *eps = px_config_get(args.cfg, "log-endpoints");
    if (!s_parse_endpoints(c, eps ? eps : LOGS_DEFAULT_ENDPOINTS)) {
        goto done;
    }
    for (int i = 0; c->curve && i < c->nsrc; i++) {
        if (!c->src[i].named) {
            /* The allow-list gives each process's key under its name. */
            pxctl_err(s_cmd.name, "--log-endpoints: with CURVE, name each process (NAME=%s)",
                      c->src[i].pub);
            goto done;
        }
        if (!px_curve_knows(c->curve, c->src[i].name)) {
            pxctl_err(s_cmd.name, "--log-endpoints: the allow-list has no key named \"%s\"",
                      c->src[i].name);
            goto done;
        }
    }
    const char *svcs = px_config_get(args.cfg, "service");
    for (const char *p = svcs; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!s_name_ok(p, len) || c->nservices == LOGS_MAX_SOURCES) {
            pxctl_err(s_cmd.name, "--service: a comma separated list of service names");
            goto done;
        }
        memcpy(c->services[c->nservices], p, len);
        c->services[c->nservices++][len] = '\0';
        p += len + (end ? 1 : 0);
    }
    if (!px_log_level_parse(px_config_get(args.cfg, "level"), &c->level)) {
        pxctl_err(s_cmd.name, "--level: debug, info, warn or error");
        goto done;
    }
    c->request_id = px_config_get(args.cfg, "request-id");
    if (c->request_id && (!*c->request_id || strlen(c->request_id) > LOGS_REQUEST_ID_MAX ||
                          !px_utf8_valid(c->request_id, strlen(c->request_id)))) {
        pxctl_err(s_cmd.name, "--request-id: at most %d bytes of UTF-8", LOGS_REQUEST_ID_MAX);
        goto done;
    }
    const char *since = px_config_get(args.cfg, "since");
    if (since && !s_parse_since(since, &c->since_us)) {
        pxctl_err(s_cmd.name, "--since: a duration (30s, 10m, 2h, 1d) or a UTC time "
                              "(2026-12-02T08:00:00Z)");
        goto done;
    }
    const char *format = px_config_get(args.cfg, "format");
    if (strcmp(format, "auto") == 0) {
        c->format = isatty(STDOUT_FILENO) ? S_TEXT : S_JSON;
    } else if (strcmp(format, "text") == 0) {
        c->format = S_TEXT;
    } else if (strcmp(format, "json") == 0) {
        c->format = S_JSON;
    } else {
        pxctl_err(s_cmd.name, "--format: auto, text or json");
        goto done;
    }
    c->color = c->format == S_TEXT && pxctl_color(STDOUT_FILENO);
    if (!pxctl_int(&s_cmd, args.cfg, "reorder-ms", 0, 60000, &c->reorder_ms) ||
        !pxctl_int(&s_cmd, args.cfg, "history-timeout-ms", 1, 3600000, &c->timeout_ms) ||
        !pxctl_int(&s_cmd, args.cfg, "hwm", 1, 1000000, &c->hwm)) {
        goto done;
    }
    bool follow = pxctl_on(args.cfg, "follow");

    struct sigaction sa = {.sa_handler = s_on_signal}; /* no SA_RESTART: the poll wakes */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is seen as a write error, and ends quietly */

    rc = PXCTL_EXIT_FAILED;
    c->zctx = zmq_ctx_new();
    if (!c->zctx) {
        pxctl_err(s_cmd.name, "%s", zmq_strerror(zmq_errno()));
        goto done;
    }
    /* Subscribed before the history is asked, so that nothing falls between the two. */
    for (int i = 0; follow && i < c->nsrc; i++) {
        px_status_t st;
        c->src[i].sub = px_logstream_socket(c->zctx, ZMQ_SUB, 0, c->curve, c->src[i].name, &st);
        if (!c->src[i].sub) {
            pxctl_err(s_cmd.name, "%s: %s", c->src[i].name, st.message);
            rc = PXCTL_EXIT_USAGE;
            goto done;
        }
        int hwm = (int)c->hwm;
        if (!c->src[i].sub || zmq_setsockopt(c->src[i].sub, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
            zmq_setsockopt(c->src[i].sub, ZMQ_SUBSCRIBE, "", 0) != 0 ||
            zmq_connect(c->src[i].sub, c->src[i].pub) != 0) {
            pxctl_err(s_cmd.name, "%s: cannot connect to %s: %s", c->src[i].name, c->src[i].pub,
                      zmq_strerror(zmq_errno()));
            rc = PXCTL_EXIT_USAGE;
            goto done;
        }
    }
    int unread = 0;
    if (!follow || c->since_us) {
        unread = s_history(c, -1, 0, 0, &history);
        if (history.n > 0) {
            qsort(history.v, history.n, sizeof *history.v, s_line_cmp);
        }
        for (size_t i = 0; i < history.n; i++) {
            s_print(c, &history.v[i]);
        }
        s_flush_out(c);
    }
    rc = unread && !follow ? PXCTL_EXIT_UNAVAILABLE : PXCTL_EXIT_OK;
    if (follow) {
        rc = s_follow(c);
    }
done:
    s_lines_free(&history);
    if (c) {
        for (int i = 0; i < c->nsrc; i++) {
            if (c->src[i].sub) {
                zmq_close(c->src[i].sub);
            }
        }
        if (c->zctx) {
            zmq_ctx_term(c->zctx);
        }
        free(c);
    }
    pxctl_args_free(&args);
    return rc;
}
