/*
 * record_client.c - the gateway benchmark's recording side (tests/bench/gateway/run.sh).
 *
 *   bench-gw-record --url http://127.0.0.1:PORT --token-file FILE --endpoint tcp://HOST:PORT
 *                   --wards A,B,... [--rounds 5] [--events 10000] [--inflight 8]
 *                   [--batch 100] [--no-proto]
 *
 * RecordEvents of `batch` events a call, `inflight` calls outstanding, measured three ways in
 * each round, in this order:
 *   gateway: Connect JSON POSTs to px-gateway (application/json), over `inflight` keep-alive
 *            HTTP/1.1 connections driven by one thread (libcurl's multi interface);
 *   direct:  the same calls straight to px-activation over ZeroMQ, one px_rpc_client driven
 *            by one thread (as a service calling another does);
 *   proto:   the gateway again with application/proto bodies (unless --no-proto).
 * Each side records `events` new events a round and its figure is events/s from its first
 * call to its last answer. Before the rounds each side records one untimed call per slot
 * (connections made, caches of both services warm).
 *
 * Every event is new: its own idempotency key and citizen (a valid 12-digit CCCD number of a
 * citizen born in TP Hồ Chí Minh in 1960-99: province 079, never one of the demo's 074),
 * collected with consent in a ward of the demo inside the campaign tn-cuoi-tuan-2023
 * (2023-07-29..2023-08-27). Every answer must say every event of the call RECORDED: a refusal
 * or a duplicate fails the run (the events would not have cost what a recording costs).
 *
 * The token is read from a file so that it is never on a command line. Prints progress to
 * stderr and one line on stdout:
 *   record_events_per_s=.. direct_events_per_s=.. record_ratio=.. record_proto_events_per_s=..
 *   record_proto_ratio=.. rounds=..
 * (figures: medians over the rounds; ratios: the median of the rounds' gateway/direct ratios).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/json.h"
#include "phuxanh/rpc.h"

#define S_CAMPAIGN "tn-cuoi-tuan-2023"
/* 2023-07-29 10:00 in Viet Nam, the campaign's first morning; events spread over 28 days
 * from it, so they all fall inside the campaign. */
#define S_T0 1690599600LL
#define S_SPREAD_S (28LL * 86400)
#define S_METHOD "/phuxanh.activation.v1.ActivationService/RecordEvents"
/* Bounds on what the command line may ask. Citizens are numbered by a serial of 6 digits
 * and a birth year of 40 values, so 40 million distinct ones; a run stays far below. */
#define S_MAX_WARDS 64
#define S_MAX_BATCH 1000
#define S_MAX_INFLIGHT 64
#define S_MAX_ROUNDS 100
#define S_MAX_EVENTS 1000000L
#define S_TOKEN_MAX 512
/* An answer of 1,000 results in JSON is ~100 KiB; past this something is wrong. */
#define S_REPLY_MAX (4L * 1024 * 1024)
#define S_CALL_TIMEOUT_MS 60000

typedef enum { S_GATEWAY = 0, S_DIRECT = 1, S_PROTO = 2, S_SIDES } s_side_t;
static const char *const s_side_names[S_SIDES] = {"gateway", "direct", "proto"};

typedef struct {
    char key[48], id[24]; /* id: 12 digits (room for what the compiler cannot bound) */
} s_ev_t;

/* One call's worth of events and its request, living until the call is answered. */
typedef struct {
    s_ev_t ev[S_MAX_BATCH];
    Phuxanh__Activation__V1__ActivationEvent e[S_MAX_BATCH], *ep[S_MAX_BATCH];
    Google__Protobuf__Timestamp ts[S_MAX_BATCH];
    Phuxanh__Activation__V1__RecordEventsRequest req;
    /* over HTTP */
    CURL *easy;
    uint8_t *body;
    size_t body_len;
    char *reply;
    size_t reply_len, reply_cap;
    bool reply_too_big;
    /* over ZeroMQ */
    px_rpc_call_t *call;
} s_slot_t;

typedef struct {
    const char *url;
    int batch, inflight;
    char wards[S_MAX_WARDS][33];
    int nwards;
    long serial; /* the next citizen: every event of the run names a new one */
    px_rpc_client_t *rpc;
    CURLM *multi;
    struct curl_slist *headers[S_SIDES];
    s_slot_t *slots;
    long refused, duplicates;
} s_ctx_t;

/* ---------------------------------------------------------------- events */

/* Fills slot with n new events for (round, side); round -1 is the warm-up. */
static void s_fill(s_ctx_t *c, s_slot_t *s, int round, s_side_t side, long first, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        long g = c->serial++;
        s_ev_t *v = &s->ev[k];
        snprintf(v->key, sizeof v->key, "gwb-%d-%s-%ld", round, s_side_names[side],
                 first + (long)k);
        snprintf(v->id, sizeof v->id, "0790%02ld%06ld", 60 + (g / 1000000) % 40, g % 1000000);
        phuxanh__activation__v1__activation_event__init(&s->e[k]);
        google__protobuf__timestamp__init(&s->ts[k]);
        s->ts[k].seconds = S_T0 + (g * 97) % S_SPREAD_S;
        s->e[k].idempotency_key = v->key;
        s->e[k].campaign_id = S_CAMPAIGN;
        s->e[k].citizen_id = v->id;
        s->e[k].unit_code = c->wards[g % c->nwards];
        s->e[k].stage = PHUXANH__ACTIVATION__V1__STAGE__STAGE_COLLECTED;
        s->e[k].channel = PHUXANH__ACTIVATION__V1__CHANNEL__CHANNEL_OWN_PHONE;
        s->e[k].venue = PHUXANH__ACTIVATION__V1__VENUE__VENUE_OFFICE;
        s->e[k].occurred_at = &s->ts[k];
        s->e[k].consent = true;
        s->ep[k] = &s->e[k];
    }
    phuxanh__activation__v1__record_events_request__init(&s->req);
    s->req.events = s->ep;
    s->req.n_events = n;
}

/* Counts an answer; 0 when every event of the call was recorded. */
static int s_check_reply(s_ctx_t *c, const Phuxanh__Activation__V1__RecordEventsResponse *r,
                         size_t n)
{
    if (!r) {
        fprintf(stderr, "record: an answer that does not decode as RecordEventsResponse\n");
        return -1;
    }
    c->refused += r->refused;
    c->duplicates += r->duplicates;
    if (r->refused > 0) {
        /* The service's messages never carry the number itself (citizen_id.c). */
        for (size_t k = 0; k < r->n_results; k++) {
            if (r->results[k]->code != 0) {
                fprintf(stderr, "record: event refused: %s\n", r->results[k]->message);
                break;
            }
        }
    }
    if ((size_t)r->recorded != n) {
        fprintf(stderr, "record: %d of %zu events recorded (%d duplicates, %d refused)\n",
                r->recorded, n, r->duplicates, r->refused);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- through the gateway */

static size_t s_on_reply(char *data, size_t size, size_t nmemb, void *user)
{
    s_slot_t *s = user;
    size_t n = size * nmemb;
    if (s->reply_len + n + 1 > (size_t)S_REPLY_MAX) {
        s->reply_too_big = true;
        return 0; /* libcurl ends the transfer with an error */
    }
    if (s->reply_len + n + 1 > s->reply_cap) {
        size_t cap = (s->reply_len + n + 1) * 2;
        char *p = realloc(s->reply, cap);
        if (!p) {
            return 0;
        }
        s->reply = p;
        s->reply_cap = cap;
    }
    memcpy(s->reply + s->reply_len, data, n);
    s->reply_len += n;
    s->reply[s->reply_len] = '\0';
    return n;
}

/* Encodes the slot's request as the side's body and hands the transfer to the multi handle. */
static int s_http_start(s_ctx_t *c, s_slot_t *s, s_side_t side)
{
    px_status_t st;
    free(s->body);
    s->body = NULL;
    if (side == S_GATEWAY) {
        s->body = (uint8_t *)px_json_from_message(&s->req.base, &s->body_len, &st);
        if (!s->body) {
            fprintf(stderr, "record: cannot write the request as JSON: %s\n", st.message);
            return -1;
        }
    } else {
        s->body_len = protobuf_c_message_get_packed_size(&s->req.base);
        s->body = malloc(s->body_len ? s->body_len : 1);
        if (!s->body) {
            return -1;
        }
        protobuf_c_message_pack(&s->req.base, s->body);
    }
    s->reply_len = 0;
    s->reply_too_big = false;
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, c->headers[side]);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, (char *)s->body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
    return curl_multi_add_handle(c->multi, s->easy) == CURLM_OK ? 0 : -1;
}

/* A finished transfer: 200 and every event recorded, or -1. */
static int s_http_finish(s_ctx_t *c, s_slot_t *s, s_side_t side, CURLcode result)
{
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(c->multi, s->easy);
    if (result != CURLE_OK) {
        fprintf(stderr, "record: %s: %s%s\n", s_side_names[side], curl_easy_strerror(result),
                s->reply_too_big ? " (answer too large)" : "");
        return -1;
    }
    if (status != 200) {
        fprintf(stderr, "record: %s: HTTP %ld: %.300s\n", s_side_names[side], status,
                s->reply ? s->reply : "");
        return -1;
    }
    px_status_t st;
    ProtobufCMessage *m = NULL;
    if (side == S_GATEWAY) {
        m = px_json_to_message(&phuxanh__activation__v1__record_events_response__descriptor,
                               s->reply ? s->reply : "", s->reply_len, &st);
    } else {
        m = protobuf_c_message_unpack(&phuxanh__activation__v1__record_events_response__descriptor,
                                      NULL, s->reply_len, (const uint8_t *)s->reply);
    }
    int rc = s_check_reply(c, (const void *)m, s->req.n_events);
    if (m) {
        protobuf_c_message_free_unpacked(m, NULL);
    }
    return rc;
}

/* Records events through the gateway; events/s, or -1. */
static double s_http_side(s_ctx_t *c, s_side_t side, int round, long events)
{
    long next = 0, done_n = 0;
    int64_t t0 = px_bench_now_ns();
    for (int i = 0; i < c->inflight && next < events; i++) {
        size_t n = (size_t)(events - next < c->batch ? events - next : c->batch);
        s_fill(c, &c->slots[i], round, side, next, n);
        if (s_http_start(c, &c->slots[i], side) != 0) {
            goto fail;
        }
        next += (long)n;
    }
    while (done_n < events) {
        int running = 0;
        if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
            goto fail;
        }
        CURLMsg *msg;
        int left = 0;
        while ((msg = curl_multi_info_read(c->multi, &left))) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            s_slot_t *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            CURLcode result = msg->data.result; /* msg is gone once the handle is removed */
            if (s_http_finish(c, s, side, result) != 0) {
                goto fail;
            }
            done_n += (long)s->req.n_events;
            if (next < events) {
                size_t n = (size_t)(events - next < c->batch ? events - next : c->batch);
                s_fill(c, s, round, side, next, n);
                if (s_http_start(c, s, side) != 0) {
                    goto fail;
                }
                next += (long)n;
            }
        }
        if (done_n < events && curl_multi_poll(c->multi, NULL, 0, 1000, NULL) != CURLM_OK) {
            goto fail;
        }
    }
    return (double)events / ((double)(px_bench_now_ns() - t0) / 1e9);
fail:
    for (int i = 0; i < c->inflight; i++) {
        curl_multi_remove_handle(c->multi, c->slots[i].easy); /* harmless when not added */
    }
    return -1;
}

/* ---------------------------------------------------------------- straight to the service */

static int s_rpc_finish(s_ctx_t *c, px_rpc_call_t *call, size_t n)
{
    if (px_rpc_call_code(call) != PX_OK) {
        fprintf(stderr, "record: direct: RecordEvents: %s\n", px_rpc_call_message(call));
        return -1;
    }
    ProtobufCMessage *m = px_rpc_call_take_reply(call);
    int rc = s_check_reply(c, (const void *)m, n);
    if (m) {
        protobuf_c_message_free_unpacked(m, NULL);
    }
    return rc;
}

static void s_rpc_start(s_ctx_t *c, s_slot_t *s)
{
    px_rpc_call_opts_t o = {.timeout_ms = S_CALL_TIMEOUT_MS};
    s->call = px_rpc_client_start(c->rpc, S_METHOD, &s->req.base,
                                  &phuxanh__activation__v1__record_events_response__descriptor, &o);
    px_rpc_call_set_user(s->call, s);
}

static double s_direct_side(s_ctx_t *c, int round, long events)
{
    long next = 0, done_n = 0;
    double rate = -1;
    int64_t t0 = px_bench_now_ns();
    for (int i = 0; i < c->inflight && next < events; i++) {
        size_t n = (size_t)(events - next < c->batch ? events - next : c->batch);
        s_fill(c, &c->slots[i], round, S_DIRECT, next, n);
        s_rpc_start(c, &c->slots[i]);
        next += (long)n;
    }
    while (done_n < events) {
        px_rpc_call_t *call = px_rpc_client_next(c->rpc, S_CALL_TIMEOUT_MS);
        if (!call) {
            fprintf(stderr, "record: direct: no answer within %d ms\n", S_CALL_TIMEOUT_MS);
            goto done;
        }
        s_slot_t *s = px_rpc_call_user(call);
        int rc = s_rpc_finish(c, call, s->req.n_events);
        px_rpc_call_destroy(&s->call);
        if (rc != 0) {
            goto done;
        }
        done_n += (long)s->req.n_events;
        if (next < events) {
            size_t n = (size_t)(events - next < c->batch ? events - next : c->batch);
            s_fill(c, s, round, S_DIRECT, next, n);
            s_rpc_start(c, s);
            next += (long)n;
        }
    }
    rate = (double)events / ((double)(px_bench_now_ns() - t0) / 1e9);
done:
    for (int i = 0; i < c->inflight; i++) {
        px_rpc_call_destroy(&c->slots[i].call);
    }
    return rate;
}

static double s_side(s_ctx_t *c, s_side_t side, int round, long events)
{
    return side == S_DIRECT ? s_direct_side(c, round, events) : s_http_side(c, side, round, events);
}

/* ---------------------------------------------------------------- set-up and figures */

static double s_median(const double *v, int n)
{
    double s[S_MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof *s);
    for (int i = 1; i < n; i++) { /* a handful of values: insertion sort */
        double x = s[i];
        int j = i - 1;
        for (; j >= 0 && s[j] > x; j--) {
            s[j + 1] = s[j];
        }
        s[j + 1] = x;
    }
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static int s_read_token(const char *path, char *tok, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "record: cannot open the token file\n");
        return -1;
    }
    int rc = fgets(tok, (int)cap, f) ? 0 : -1;
    fclose(f);
    tok[strcspn(tok, "\r\n")] = '\0';
    return rc == 0 && tok[0] ? 0 : -1;
}

static int s_setup_http(s_ctx_t *c, const char *token)
{
    char auth[S_TOKEN_MAX + 32];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    /* "Expect:" keeps libcurl from asking 100-continue before a large body: a Connect client
     * sends its body at once, and the wait would be a round trip the service side never pays. */
    static const char *const types[S_SIDES] = {"Content-Type: application/json", NULL,
                                               "Content-Type: application/proto"};
    for (int side = 0; side < S_SIDES; side++) {
        if (!types[side]) {
            continue;
        }
        struct curl_slist *h = curl_slist_append(NULL, types[side]);
        h = h ? curl_slist_append(h, auth) : NULL;
        h = h ? curl_slist_append(h, "Expect:") : NULL;
        if (!h) {
            return -1;
        }
        c->headers[side] = h;
    }
    c->multi = curl_multi_init();
    if (!c->multi) {
        return -1;
    }
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->inflight);
    char url[512];
    snprintf(url, sizeof url, "%s%s", c->url, S_METHOD);
    for (int i = 0; i < c->inflight; i++) {
        s_slot_t *s = &c->slots[i];
        s->easy = curl_easy_init();
        if (!s->easy) {
            return -1;
        }
        curl_easy_setopt(s->easy, CURLOPT_URL, url);
        curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
        curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, s_on_reply);
        curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (char *)s);
        curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)S_CALL_TIMEOUT_MS);
        curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
    }
    return 0;
}

static void s_teardown(s_ctx_t *c)
{
    for (int i = 0; c->slots && i < c->inflight; i++) {
        s_slot_t *s = &c->slots[i];
        if (s->easy) {
            if (c->multi) {
                curl_multi_remove_handle(c->multi, s->easy);
            }
            curl_easy_cleanup(s->easy);
        }
        px_rpc_call_destroy(&s->call);
        free(s->body);
        free(s->reply);
    }
    if (c->multi) {
        curl_multi_cleanup(c->multi);
    }
    for (int side = 0; side < S_SIDES; side++) {
        curl_slist_free_all(c->headers[side]);
    }
    free(c->slots);
    px_rpc_client_destroy(&c->rpc);
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *wards = NULL, *token_file = NULL;
    long events = 10000, rounds = 5;
    bool proto = true;
    s_ctx_t c = {.batch = 100, .inflight = 8};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-proto") == 0) {
            proto = false;
            continue;
        }
        if (!v) {
            endpoint = NULL; /* an option without its value: usage */
            break;
        }
        i++;
        if (strcmp(a, "--url") == 0) {
            c.url = v;
        } else if (strcmp(a, "--token-file") == 0) {
            token_file = v;
        } else if (strcmp(a, "--endpoint") == 0) {
            endpoint = v;
        } else if (strcmp(a, "--wards") == 0) {
            wards = v;
        } else if (strcmp(a, "--rounds") == 0) {
            rounds = atol(v);
        } else if (strcmp(a, "--events") == 0) {
            events = atol(v);
        } else if (strcmp(a, "--inflight") == 0) {
            c.inflight = atoi(v);
        } else if (strcmp(a, "--batch") == 0) {
            c.batch = atoi(v);
        } else {
            endpoint = NULL;
            break;
        }
    }
    if (!c.url || strlen(c.url) > 256 || !token_file || !endpoint || !wards || rounds < 1 ||
        rounds > S_MAX_ROUNDS || events < 1 || events > S_MAX_EVENTS || c.inflight < 1 ||
        c.inflight > S_MAX_INFLIGHT || c.batch < 1 || c.batch > S_MAX_BATCH) {
        fprintf(stderr,
                "usage: bench-gw-record --url URL --token-file FILE --endpoint EP --wards A,B,.. "
                "[--rounds 1..%d] [--events 1..%ld] [--inflight 1..%d] [--batch 1..%d] "
                "[--no-proto]\n",
                S_MAX_ROUNDS, S_MAX_EVENTS, S_MAX_INFLIGHT, S_MAX_BATCH);
        return 2;
    }
    char *w = strdup(wards);
    for (char *save = NULL, *t = w ? strtok_r(w, ",", &save) : NULL; t && c.nwards < S_MAX_WARDS;
         t = strtok_r(NULL, ",", &save)) {
        snprintf(c.wards[c.nwards++], sizeof c.wards[0], "%s", t);
    }
    free(w);
    if (c.nwards == 0) {
        fprintf(stderr, "record: --wards names no ward\n");
        return 2;
    }

    int rc = 1;
    char token[S_TOKEN_MAX + 2];
    px_status_t st;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c.slots = calloc((size_t)c.inflight, sizeof *c.slots);
    if (!c.slots || s_read_token(token_file, token, sizeof token) != 0 ||
        s_setup_http(&c, token) != 0) {
        fprintf(stderr, "record: cannot set up the HTTP side (token file, memory)\n");
        goto done;
    }
    px_rpc_client_opts_t co = {.caller = "bench-gw-record", .connect_wait_ms = 5000};
    c.rpc = px_rpc_client_new(endpoint, &co, &st);
    if (!c.rpc) {
        fprintf(stderr, "record: %s\n", st.message);
        goto done;
    }

    int nsides = proto ? S_SIDES : S_PROTO;
    fprintf(stderr, "record: warm-up: %d calls of %d events a side\n", c.inflight, c.batch);
    for (int side = 0; side < nsides; side++) {
        if (s_side(&c, (s_side_t)side, -1, (long)c.inflight * c.batch) < 0) {
            goto done;
        }
    }
    double rate[S_SIDES][S_MAX_ROUNDS], ratio[S_SIDES][S_MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        for (int side = 0; side < nsides; side++) {
            rate[side][r] = s_side(&c, (s_side_t)side, r, events);
            if (rate[side][r] < 0) {
                goto done;
            }
        }
        ratio[S_GATEWAY][r] = rate[S_GATEWAY][r] / rate[S_DIRECT][r];
        ratio[S_PROTO][r] = proto ? rate[S_PROTO][r] / rate[S_DIRECT][r] : 0;
        fprintf(stderr,
                "record: round %d: gateway %.0f events/s, direct %.0f, ratio %.2f; proto %.0f, "
                "ratio %.2f\n",
                r + 1, rate[S_GATEWAY][r], rate[S_DIRECT][r], ratio[S_GATEWAY][r],
                proto ? rate[S_PROTO][r] : 0, ratio[S_PROTO][r]);
    }
    if (c.refused > 0 || c.duplicates > 0) {
        fprintf(stderr, "record: %ld events refused, %ld duplicates\n", c.refused, c.duplicates);
        goto done;
    }
    int n = (int)rounds;
    printf("record_events_per_s=%.0f direct_events_per_s=%.0f record_ratio=%.2f",
           s_median(rate[S_GATEWAY], n), s_median(rate[S_DIRECT], n),
           s_median(ratio[S_GATEWAY], n));
    if (proto) {
        printf(" record_proto_events_per_s=%.0f record_proto_ratio=%.2f",
               s_median(rate[S_PROTO], n), s_median(ratio[S_PROTO], n));
    }
    printf(" rounds=%d\n", n);
    rc = 0;
done:
    memset(token, 0, sizeof token);
    s_teardown(&c);
    curl_global_cleanup();
    return rc;
}
