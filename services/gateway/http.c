/*
 * http.c - the HTTP/1.1 server of the gateway, on libmicrohttpd.
 *
 * libmicrohttpd runs its own threads (epoll, a small pool) and calls
 * s_access once when a request's head is in, once per piece of its body and
 * once at its end. This file turns that into one gw_req_t per request:
 *
 * - The head is checked before any body is read: ambiguous framing (both
 *   Content-Length and Transfer-Encoding, Content-Length given twice) is a
 *   request smuggling attempt and is refused 400; a declared body over the limit
 *   is refused 413 without reading it; query strings holding NUL or invalid
 *   UTF-8 are refused 400. libmicrohttpd bounds the head itself by the
 *   connection's memory (431 past it).
 * - The body is gathered up to max_body and must arrive within body_timeout_s.
 *   libmicrohttpd (0.9.75) can answer only before a body is read or after all of
 *   it, so a chunked body that grows past max_body is dropped and answered 413 at
 *   its end (s_body_piece bounds how much more is read), and a body too slow is
 *   cut off by closing the connection.
 * - Then the router runs. A handler answers at once or suspends the request
 *   (gw_req_suspend) while a backend thread works; whoever finishes prepares the
 *   answer and resumes it, and libmicrohttpd calls s_access again, which sends
 *   the prepared answer. A suspended request holds no thread.
 * - When the request ends (answered, or the client went away) s_completed writes
 *   its log line and frees it.
 *
 * Every answer carries X-Request-Id: the caller's when it sent a sane one, or a
 * new one; the same id travels to the services as x-request-id.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gateway.h"
#include "phuxanh/clock.h"
#include "phuxanh/text.h"

/* How much of a request body a handler may ask to see at most, whatever max_body says: a
 * RecordEvents of 1,000 events in JSON is ~400 KiB; past 64 MiB a typo in the config is
 * likelier than a need. */
#define BODY_HARD_MAX (64u * 1024 * 1024)
/* Request ids we accept from callers: what fits our logs and the services' metadata. */
#define REQUEST_ID_OK_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:"

typedef enum {
    REQ_READING,    /* head and body arriving */
    REQ_DISPATCHED, /* the router ran; the answer is prepared or coming */
    REQ_SENT,       /* the answer is queued */
} req_phase_t;

struct gw_http_t {
    gw_http_opts_t opts;
    struct MHD_Daemon *daemon;
    uint16_t port;
    atomic_long in_flight;
};

struct gw_req_t {
    gw_http_t *http;
    gw_t *gw;
    struct MHD_Connection *conn;
    const char *method; /* libmicrohttpd's, valid for the request */
    const char *url;
    char id[GW_REQUEST_ID_MAX + 1];
    char client[INET6_ADDRSTRLEN];
    int64_t started_us;
    req_phase_t phase;
    bool suspended_by_handler; /* the handler handed the answer to another thread */
    bool refused_early;        /* answered before the body was read (413, 400) */
    bool too_big;              /* the body grew past max_body: the rest is dropped */
    size_t dropped;            /* bytes of such a body so far (all past the limit too) */
    uint8_t *body;
    size_t body_len, body_cap;
    /* the answer */
    struct MHD_Response *resp;
    unsigned status;
    size_t resp_bytes;
    px_code_t code; /* for logs: the Connect code of an error answer, PX_OK otherwise */
    /* who and what */
    gw_ident_t ident;
    bool has_ident;
    const char *route;
    char rpc[128];
    void *state;
    void (*state_free)(void *);
    /* a streamed answer */
    gw_stream_fn stream_fn;
    void *stream_state;
    void (*stream_free)(void *);
};

/* ---------------------------------------------------------------- accessors */

const char *gw_req_method(const gw_req_t *req)
{
    return req->method;
}

const char *gw_req_path(const gw_req_t *req)
{
    return req->url;
}

const char *gw_req_header(const gw_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

typedef struct {
    const char *name;
    int count;
} s_count_t;

static enum MHD_Result s_count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    s_count_t *c = cls;
    if (key && strcasecmp(key, c->name) == 0) {
        c->count++;
    }
    return MHD_YES;
}

int gw_req_header_count(const gw_req_t *req, const char *name)
{
    s_count_t c = {name, 0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, s_count_header, &c);
    return c.count;
}

const char *gw_req_query(const gw_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct {
    const char *const *names;
    const char *bad;
} s_unknown_t;

static enum MHD_Result s_unknown_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    s_unknown_t *u = cls;
    for (size_t i = 0; u->names[i]; i++) {
        if (strcmp(u->names[i], key) == 0) {
            return MHD_YES;
        }
    }
    u->bad = key;
    return MHD_NO;
}

const char *gw_req_unknown_query(const gw_req_t *req, const char *const *names)
{
    s_unknown_t u = {names, NULL};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, s_unknown_arg, &u);
    return u.bad;
}

const uint8_t *gw_req_body(const gw_req_t *req, size_t *len)
{
    *len = req->body_len;
    return req->body ? req->body : (const uint8_t *)"";
}

const char *gw_req_id(const gw_req_t *req)
{
    return req->id;
}

const char *gw_req_client_addr(const gw_req_t *req)
{
    return req->client;
}

int64_t gw_req_started_us(const gw_req_t *req)
{
    return req->started_us;
}

gw_t *gw_req_gw(const gw_req_t *req)
{
    return req->gw;
}

const gw_ident_t *gw_req_ident(const gw_req_t *req)
{
    return req->has_ident ? &req->ident : NULL;
}

void gw_req_set_ident(gw_req_t *req, const gw_ident_t *ident)
{
    req->ident = *ident;
    req->has_ident = true;
}

void gw_req_set_route(gw_req_t *req, const char *route)
{
    req->route = route;
}

void gw_req_set_rpc(gw_req_t *req, const char *rpc)
{
    snprintf(req->rpc, sizeof req->rpc, "%s", rpc);
}

void gw_req_set_state(gw_req_t *req, void *state, void (*free_fn)(void *))
{
    req->state = state;
    req->state_free = free_fn;
}

void *gw_req_state(gw_req_t *req)
{
    return req->state;
}

/* ---------------------------------------------------------------- answers */

/* Connect's HTTP status for each code (connectrpc.com/docs/protocol, "Error Codes"). */
static const unsigned s_http_status[PX_CODE_COUNT] = {
    [PX_OK] = 200,
    [PX_CANCELLED] = 499,
    [PX_UNKNOWN] = 500,
    [PX_INVALID_ARGUMENT] = 400,
    [PX_DEADLINE_EXCEEDED] = 504,
    [PX_NOT_FOUND] = 404,
    [PX_ALREADY_EXISTS] = 409,
    [PX_PERMISSION_DENIED] = 403,
    [PX_RESOURCE_EXHAUSTED] = 429,
    [PX_FAILED_PRECONDITION] = 400,
    [PX_ABORTED] = 409,
    [PX_OUT_OF_RANGE] = 400,
    [PX_UNIMPLEMENTED] = 501,
    [PX_INTERNAL] = 500,
    [PX_UNAVAILABLE] = 503,
    [PX_DATA_LOSS] = 500,
    [PX_UNAUTHENTICATED] = 401,
};

unsigned gw_http_status_for(px_code_t code)
{
    return (unsigned)code < PX_CODE_COUNT ? s_http_status[code] : 500;
}

static void s_set_response(gw_req_t *req, unsigned status, struct MHD_Response *resp,
                           const char *content_type, const char *const *headers, size_t len)
{
    if (!resp) {
        /* Out of memory: nothing better to do than let libmicrohttpd close the connection. */
        return;
    }
    if (content_type) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    }
    MHD_add_response_header(resp, "X-Request-Id", req->id);
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2) {
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    }
    if (req->resp) {
        MHD_destroy_response(req->resp); /* a second answer replaces the first (a bug) */
    }
    req->resp = resp;
    req->status = status;
    req->resp_bytes = len;
}

void gw_req_respond(gw_req_t *req, unsigned status, const char *content_type, const void *body,
                    size_t len, const char *const *headers)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    s_set_response(req, status, resp, content_type, headers, len);
}

void gw_req_respond_take(gw_req_t *req, unsigned status, const char *content_type, void *body,
                         size_t len, const char *const *headers)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
    }
    s_set_response(req, status, resp, content_type, headers, len);
}

static void s_fail_v(gw_req_t *req, unsigned status, px_code_t code, const char *const *headers,
                     const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void s_fail_v(gw_req_t *req, unsigned status, px_code_t code, const char *const *headers,
                     const char *fmt, va_list ap)
{
    char msg[PX_STATUS_MESSAGE_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* The message may end inside a UTF-8 sequence where vsnprintf cut it; px_json_escape
     * writes invalid bytes as U+FFFD, so the body stays valid JSON and UTF-8. */
    char esc[PX_STATUS_MESSAGE_MAX * 6 + 3];
    px_json_escape(esc, sizeof esc, msg);
    char *body = NULL;
    int n = asprintf(&body, "{\"code\":\"%s\",\"message\":%s}", px_code_connect_name(code), esc);
    req->code = code;
    if (n < 0) {
        return;
    }
    /* RFC 6750: a 401 names the scheme the client should use. */
    static const char *const bearer[] = {"WWW-Authenticate", "Bearer", NULL};
    if (!headers && code == PX_UNAUTHENTICATED) {
        headers = bearer;
    }
    gw_req_respond_take(req, status, "application/json", body, (size_t)n, headers);
}

void gw_req_fail(gw_req_t *req, px_code_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_fail_v(req, gw_http_status_for(code), code, NULL, fmt, ap);
    va_end(ap);
}

void gw_req_fail_http(gw_req_t *req, unsigned status, px_code_t code, const char *const *headers,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_fail_v(req, status, code, headers, fmt, ap);
    va_end(ap);
}

void gw_req_suspend(gw_req_t *req)
{
    req->suspended_by_handler = true;
    MHD_suspend_connection(req->conn);
}

void gw_req_resume(gw_req_t *req)
{
    MHD_resume_connection(req->conn);
}

/* ---------------------------------------------------------------- streamed answers */

static ssize_t s_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    gw_req_t *req = cls;
    long n = req->stream_fn(req->stream_state, (uint8_t *)buf, max);
    if (n < 0) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    req->resp_bytes += (size_t)n;
    return (ssize_t)n;
}

void gw_req_respond_stream(gw_req_t *req, const char *content_type, gw_stream_fn fn, void *state,
                           void (*free_fn)(void *), const char *const *headers)
{
    req->stream_fn = fn;
    req->stream_state = state;
    req->stream_free = free_fn;
    /* The state lives as long as the request (s_req_free), not the response object, so a
     * reader parked at the end of the request is never left with freed state. */
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, s_stream_read, req, NULL);
    s_set_response(req, 200, resp, content_type, headers, 0);
}

long gw_req_stream_park(gw_req_t *req)
{
    MHD_suspend_connection(req->conn);
    return 0;
}

/* ---------------------------------------------------------------- request life */

static void s_client_addr(gw_req_t *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    req->client[0] = '\0';
    if (!ci || !ci->client_addr) {
        return;
    }
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, req->client,
                  sizeof req->client);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, req->client,
                  sizeof req->client);
    }
}

static void s_request_id(gw_req_t *req)
{
    const char *given = gw_req_header(req, "X-Request-Id");
    size_t n = given ? strlen(given) : 0;
    if (n > 0 && n <= GW_REQUEST_ID_MAX && strspn(given, REQUEST_ID_OK_CHARS) == n) {
        memcpy(req->id, given, n + 1);
    } else {
        px_rpc_request_id_new(req->id);
    }
}

typedef struct {
    bool bad;
} s_args_check_t;

/* Query arguments as libmicrohttpd decoded them: "%00" would cut a value short where C
 * strings are used, so a value whose length and strlen differ is refused, and so is one
 * that is not UTF-8. */
static enum MHD_Result s_check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    s_args_check_t *c = cls;
    if (!key || strlen(key) != key_size || !px_utf8_valid(key, key_size) ||
        (value && (strlen(value) != value_size || !px_utf8_valid(value, value_size)))) {
        c->bad = true;
        return MHD_NO;
    }
    return MHD_YES;
}

/* Transfer-Encoding: only "chunked" frames a body we can read. libmicrohttpd takes any other
 * value without a word and then waits for a body it cannot delimit, holding the connection
 * until the idle timeout. RFC 9112 6.3: when chunked is not the final coding the length is
 * unknown (400); RFC 9110: a coding we do not implement before it is 501. true when
 * answered. */
static bool s_refuse_coding(gw_req_t *req, const char *te)
{
    size_t n = strlen(te);
    while (n > 0 && (te[n - 1] == ' ' || te[n - 1] == '\t')) {
        n--;
    }
    const char *last = te + n;
    while (last > te && last[-1] != ',' && last[-1] != ' ' && last[-1] != '\t') {
        last--;
    }
    bool chunked_last = (size_t)(te + n - last) == 7 && strncasecmp(last, "chunked", 7) == 0;
    if (chunked_last && last == te + strspn(te, " \t")) {
        return false; /* "chunked" alone */
    }
    if (chunked_last) {
        gw_req_fail_http(req, 501, PX_UNIMPLEMENTED, NULL,
                         "Transfer-Encoding \"%.40s\": only chunked is supported", te);
    } else {
        gw_req_fail(req, PX_INVALID_ARGUMENT,
                    "Transfer-Encoding \"%.40s\": the body's length cannot be known unless "
                    "chunked comes last",
                    te);
    }
    return true;
}

/* RFC 9110 5.1: a field name is a token. libmicrohttpd keeps "Content-Length : 5" as a
 * field named "Content-Length " and does not frame the body by it, while a proxy in front
 * may: the body would then be read here as the next request (request smuggling). RFC 9112
 * 5.1 says refuse it with 400. */
#define TOKEN_CHARS "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

static enum MHD_Result s_check_name(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    const char **bad = cls;
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || strspn(key, TOKEN_CHARS) != n) {
        *bad = key ? key : "";
        return MHD_NO;
    }
    return MHD_YES;
}

/* The head is in: refuses what must not be read further. true when answered. */
static bool s_check_head(gw_req_t *req)
{
    const char *bad_name = NULL;
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, s_check_name, &bad_name);
    if (bad_name) {
        gw_req_fail(req, PX_INVALID_ARGUMENT, "a header name holds a character not allowed there");
        return true;
    }
    if (gw_req_header_count(req, MHD_HTTP_HEADER_HOST) > 1) {
        /* RFC 9112 3.2: which host was meant is not ours to guess. */
        gw_req_fail(req, PX_INVALID_ARGUMENT, "Host given more than once");
        return true;
    }
    int ncl = gw_req_header_count(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int nte = gw_req_header_count(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (ncl > 1) {
        gw_req_fail(req, PX_INVALID_ARGUMENT, "Content-Length given more than once");
        return true;
    }
    if (ncl > 0 && nte > 0) {
        gw_req_fail(req, PX_INVALID_ARGUMENT,
                    "both Content-Length and Transfer-Encoding given: ambiguous framing");
        return true;
    }
    if (nte > 1) {
        gw_req_fail(req, PX_INVALID_ARGUMENT, "Transfer-Encoding given more than once");
        return true;
    }
    if (nte == 1 && s_refuse_coding(req, gw_req_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING))) {
        return true;
    }
    const char *cl = gw_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (!*cl || *end || errno || cl[0] == '-' || cl[0] == '+') {
            gw_req_fail(req, PX_INVALID_ARGUMENT, "Content-Length is not a number");
            return true;
        }
        if (n > req->http->opts.max_body) {
            gw_req_fail_http(req, 413, PX_RESOURCE_EXHAUSTED, NULL,
                             "request body of %llu bytes exceeds the limit of %zu bytes", n,
                             req->http->opts.max_body);
            return true;
        }
    }
    s_args_check_t ac = {false};
    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, s_check_arg, &ac);
    if (ac.bad) {
        gw_req_fail(req, PX_INVALID_ARGUMENT,
                    "a query parameter holds a NUL character or is not valid UTF-8");
        return true;
    }
    return false;
}

/* Appends body bytes: 0, or 1 when the body grows past the limit, -1 out of memory. */
static int s_body_append(gw_req_t *req, const char *data, size_t n)
{
    size_t max = req->http->opts.max_body;
    if (n > max - req->body_len) {
        return 1;
    }
    if (req->body_len + n > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
        while (cap < req->body_len + n) {
            cap *= 2;
        }
        if (cap > max) {
            cap = max;
        }
        uint8_t *b = realloc(req->body, cap);
        if (!b) {
            return -1;
        }
        req->body = b;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
    return 0;
}

/* A piece of the body: kept, or (past the limit) dropped. MHD_NO closes the connection
 * without an answer: libmicrohttpd 0.9.75 can queue an answer only before the body is read
 * or after all of it is, never while it arrives (MHD_queue_response fails, and the answer
 * is lost). So a body that grows past max_body (chunked: its length is not known from the
 * head) is read on and dropped, and answered 413 when it ends, so that the client hears
 * why; but only up to as much again as the limit, past which we stop paying for it. */
static enum MHD_Result s_body_piece(gw_req_t *req, const char *data, size_t n)
{
    gw_http_t *http = req->http;
    int64_t limit = (int64_t)http->opts.body_timeout_s * 1000000;
    if (px_clock_us() - req->started_us > limit) {
        req->code = PX_DEADLINE_EXCEEDED; /* for the log line: closed, never answered */
        return MHD_NO;
    }
    if (req->too_big) {
        req->dropped += n;
        if (req->dropped - http->opts.max_body > http->opts.max_body) {
            req->code = PX_RESOURCE_EXHAUSTED;
            return MHD_NO;
        }
        return MHD_YES;
    }
    int rc = s_body_append(req, data, n);
    if (rc < 0) {
        req->code = PX_RESOURCE_EXHAUSTED;
        return MHD_NO;
    }
    if (rc > 0) {
        req->too_big = true;
        req->dropped = req->body_len + n;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
    }
    return MHD_YES;
}

static enum MHD_Result s_queue(gw_req_t *req)
{
    if (!req->resp) {
        return MHD_NO; /* nothing to send (out of memory): close */
    }
    req->phase = REQ_SENT;
    enum MHD_Result r = MHD_queue_response(req->conn, req->status, req->resp);
    MHD_destroy_response(req->resp); /* libmicrohttpd holds its own reference */
    req->resp = NULL;
    return r;
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls)
{
    gw_http_t *http = cls;
    gw_req_t *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req) {
            return MHD_NO;
        }
        *con_cls = req;
        req->http = http;
        req->gw = http->opts.gw;
        req->conn = conn;
        req->url = url;
        req->method = method;
        req->started_us = px_clock_us();
        req->route = "";
        atomic_fetch_add(&http->in_flight, 1);
        s_client_addr(req);
        s_request_id(req);
        if (s_check_head(req)) {
            req->refused_early = true;
            return s_queue(req);
        }
        return MHD_YES;
    }
    if (req->phase == REQ_SENT) {
        *upload_size = 0; /* the rest of a refused body: read and dropped */
        return MHD_YES;
    }
    if (*upload_size > 0) {
        enum MHD_Result r = s_body_piece(req, upload, *upload_size);
        *upload_size = 0;
        return r;
    }
    if (req->too_big) {
        gw_req_fail_http(req, 413, PX_RESOURCE_EXHAUSTED, NULL,
                         "request body exceeds the limit of %zu bytes", http->opts.max_body);
        return s_queue(req);
    }
    if (req->phase == REQ_READING) {
        req->phase = REQ_DISPATCHED;
        gw_router_dispatch(req);
        if (req->suspended_by_handler) {
            /* Another thread owns the answer now; s_access runs again once it resumes us. */
            req->suspended_by_handler = false;
            return MHD_YES;
        }
    }
    return s_queue(req);
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    gw_http_t *http = cls;
    gw_req_t *req = *con_cls;
    if (!req) {
        return;
    }
    *con_cls = NULL;
    int64_t dur = px_clock_us() - req->started_us;
    unsigned status = req->phase == REQ_SENT ? req->status : 0; /* 0: never answered */
    /* A Connect call is known by its method (a bounded set: unknown paths stay "connect"). */
    bool by_method = req->rpc[0] && strcmp(req->route, "connect") == 0;
    gw_stats_request(req->gw ? req->gw->stats : NULL, by_method ? req->rpc : req->route, status,
                     dur);
    px_log_level_t level = status >= 500 || status == 0 ? PX_LOG_WARN : PX_LOG_INFO;
    if (px_log_enabled(http->opts.log, level)) {
        const char *who = req->has_ident ? req->ident.name : "";
        px_log_emit(
            http->opts.log, level, "GW-HTTP", "request",
            PX_LOG_FIELDS(PX_LS("request_id", req->id), PX_LS("http_method", req->method),
                          PX_LS("path", req->url), PX_LS("route", req->route),
                          PX_LS("method", req->rpc), PX_LI("status", status),
                          PX_LS("code", req->code != PX_OK ? px_code_connect_name(req->code)
                                                           : (status == 0 ? "aborted" : "ok")),
                          PX_LI("duration_us", dur), PX_LI("bytes", req->resp_bytes),
                          PX_LS("client", req->client), PX_LS("token", who),
                          PX_LI("completion", toe)));
    }
    if (req->state_free) {
        req->state_free(req->state);
    }
    if (req->stream_free) {
        req->stream_free(req->stream_state);
    }
    if (req->resp) {
        MHD_destroy_response(req->resp);
    }
    free(req->body);
    free(req);
    atomic_fetch_sub(&http->in_flight, 1);
}

/* libmicrohttpd decodes %HH in the path and the query with this. "%00" would become a NUL
 * that cuts the path short wherever it is read as a C string ("/index.html%00.png" was
 * served as /index.html, "/v1/progress%00x" routed to /v1/progress). It is decoded as the
 * byte 0xFF instead: never part of valid UTF-8, so no route or file matches such a path
 * (404), and the query check refuses such a parameter (400). */
static size_t s_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    for (char *p = strstr(s, "%00"); p; p = strstr(p + 3, "%00")) {
        p[1] = 'F';
        p[2] = 'F';
    }
    return MHD_http_unescape(s);
}

static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    gw_http_t *http = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    px_log_emit(http->opts.log, PX_LOG_DEBUG, "GW-HTTP-LIB", msg, NULL);
}

/* ---------------------------------------------------------------- the server */

static px_code_t s_parse_listen(const char *listen, struct sockaddr_in *sa, px_status_t *st)
{
    char host[64];
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || (size_t)(colon - listen) >= sizeof host) {
        return px_status_set(st, PX_INVALID_ARGUMENT, "http-listen: expected HOST:PORT, got \"%s\"",
                             listen ? listen : "");
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    if (!colon[1] || *end || port < 0 || port > 65535 ||
        inet_pton(AF_INET, strcmp(host, "*") == 0 ? "0.0.0.0" : host, &sa->sin_addr) != 1) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "http-listen: expected IPv4-ADDRESS:PORT, got \"%s\"", listen);
    }
    sa->sin_port = htons((uint16_t)port);
    return PX_OK;
}

gw_http_t *gw_http_new(const gw_http_opts_t *opts, px_status_t *st)
{
    struct sockaddr_in sa;
    if (s_parse_listen(opts->listen, &sa, st) != PX_OK) {
        return NULL;
    }
    gw_http_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    self->opts = *opts;
    if (self->opts.max_body > BODY_HARD_MAX) {
        self->opts.max_body = BODY_HARD_MAX;
    }
    /* ITC: so that MHD_quiesce_daemon can stop accepting at shutdown. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    unsigned threads = opts->threads > 0 ? (unsigned)opts->threads : 1;
    struct MHD_OptionItem o[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &sa},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)s_completed, self},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)s_mhd_log, self},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)s_unescape, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)opts->max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)opts->per_ip_connections, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)opts->idle_timeout_s, NULL},
        /* The head of a request must fit the connection's memory: this is the header bound
         * (431 past it). */
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)opts->max_header, NULL},
        {MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL},
        {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    self->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, s_access, self, MHD_OPTION_ARRAY, o, MHD_OPTION_END);
    if (!self->daemon) {
        px_status_set(st, PX_UNAVAILABLE, "http-listen: cannot serve on %s", opts->listen);
        free(self);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = di ? di->port : ntohs(sa.sin_port);
    return self;
}

uint16_t gw_http_port(const gw_http_t *self)
{
    return self->port;
}

long gw_http_in_flight(const gw_http_t *self)
{
    return atomic_load(&((gw_http_t *)self)->in_flight);
}

void gw_http_quiesce(gw_http_t *self)
{
    if (self && self->daemon) {
        MHD_socket s = MHD_quiesce_daemon(self->daemon);
        if (s != MHD_INVALID_SOCKET) {
            close(s);
        }
    }
}

void gw_http_destroy(gw_http_t **self_p)
{
    if (*self_p) {
        gw_http_t *self = *self_p;
        if (self->daemon) {
            MHD_stop_daemon(self->daemon);
        }
        free(self);
        *self_p = NULL;
    }
}
