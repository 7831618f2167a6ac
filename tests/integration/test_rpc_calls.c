/*
 * test_rpc_calls.c - one call at a time through the real runtime: round trips
 * and every error path of the envelope (docs/PROTOCOL.md), against a px-testd
 * process over TCP.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "phuxanh/clock.h"
#include "phuxanh/rpc.h"
#include "phuxanh/rpc/v1/rpc.pb-c.h"
#include "phuxanh/test/v1/echo.pb-c.h"
#include "phuxanh/text.h"
#include "px_test.h"
#include "testd_proc.h"

#define ECHO "/phuxanh.test.v1.Echo/Echo"
#define COUNT "/phuxanh.test.v1.Echo/Count"

static testd_t s_server;

static px_rpc_client_t *s_client(void)
{
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = "test-suite"};
    return px_rpc_client_new(s_server.endpoint, &o, &st);
}

static px_code_t s_echo(px_rpc_client_t *c, Phuxanh__Test__V1__EchoRequest *req,
                        Phuxanh__Test__V1__EchoReply **rep, const px_rpc_call_opts_t *o,
                        px_status_t *st)
{
    return px_rpc_client_call(c, ECHO, &req->base, &phuxanh__test__v1__echo_reply__descriptor,
                              (ProtobufCMessage **)rep, o, st);
}

static void test_round_trip(void)
{
    px_rpc_client_t *c = s_client();
    PX_REQUIRE(c);
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    uint8_t payload[200];
    for (size_t i = 0; i < sizeof payload; i++) {
        payload[i] = (uint8_t)(i * 7);
    }
    req.payload.data = payload;
    req.payload.len = sizeof payload;
    Phuxanh__Test__V1__EchoReply *rep = NULL;
    px_status_t st;
    px_md_t *md = px_md_new();
    px_md_set(md, PX_MD_REQUEST_ID, "req-round-trip-1");
    px_rpc_call_opts_t o = {.timeout_ms = 5000, .metadata = md};
    PX_CHECK_INT_EQ(s_echo(c, &req, &rep, &o, &st), PX_OK);
    PX_REQUIRE(rep);
    PX_CHECK_INT_EQ(rep->payload.len, sizeof payload);
    PX_CHECK(memcmp(rep->payload.data, payload, sizeof payload) == 0);
    PX_CHECK_STR_EQ(rep->request_id, "req-round-trip-1");
    PX_CHECK_STR_EQ(rep->caller, "test-suite");
    PX_CHECK(rep->remaining_ms > 0 && rep->remaining_ms <= 5000);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    px_md_destroy(&md);
    px_rpc_client_destroy(&c);
}

static void test_request_id_generated_and_returned(void)
{
    px_rpc_client_t *c = s_client();
    PX_REQUIRE(c);
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    px_rpc_call_t *call =
        px_rpc_client_start(c, ECHO, &req.base, &phuxanh__test__v1__echo_reply__descriptor, NULL);
    PX_REQUIRE(call);
    px_rpc_client_wait(c, call);
    PX_CHECK_INT_EQ(px_rpc_call_code(call), PX_OK);
    const char *rid = px_md_get(px_rpc_call_metadata(call), PX_MD_REQUEST_ID);
    PX_REQUIRE(rid);
    PX_CHECK_INT_EQ(strlen(rid), 32);
    Phuxanh__Test__V1__EchoReply *rep =
        (Phuxanh__Test__V1__EchoReply *)px_rpc_call_take_reply(call);
    PX_REQUIRE(rep);
    PX_CHECK_STR_EQ(rep->request_id, rid);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    px_rpc_call_destroy(&call);
    px_rpc_client_destroy(&c);
}

static void test_unknown_method(void)
{
    px_rpc_client_t *c = s_client();
    PX_REQUIRE(c);
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    px_status_t st;
    ProtobufCMessage *rep = NULL;
    PX_CHECK_INT_EQ(px_rpc_client_call(c, "/phuxanh.test.v1.Echo/Nope", &req.base,
                                       &phuxanh__test__v1__echo_reply__descriptor, &rep, NULL, &st),
                    PX_UNIMPLEMENTED);
    PX_CHECK(rep == NULL);
    PX_CHECK_INT_EQ(px_rpc_client_call(c, "/phuxanh.nope.v1.Nope/Echo", &req.base,
                                       &phuxanh__test__v1__echo_reply__descriptor, &rep, NULL, &st),
                    PX_UNIMPLEMENTED);
    PX_CHECK_INT_EQ(px_rpc_client_call(c, "no-slashes", &req.base,
                                       &phuxanh__test__v1__echo_reply__descriptor, &rep, NULL, &st),
                    PX_UNIMPLEMENTED);
    px_rpc_client_destroy(&c);
}

static void test_handler_error_codes(void)
{
    px_rpc_client_t *c = s_client();
    PX_REQUIRE(c);
    for (int code = 1; code <= 16; code++) {
        if (code == PX_UNAVAILABLE) {
            continue; /* covered by the retry tests: the client may retry it */
        }
        Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
        req.fail_code = code;
        req.fail_message = "unit_code: 99999 is not a ward";
        Phuxanh__Test__V1__EchoReply *rep = NULL;
        px_status_t st;
        PX_CHECK_INT_EQ(s_echo(c, &req, &rep, NULL, &st), code);
        PX_CHECK_STR_EQ(st.message, "unit_code: 99999 is not a ward");
        PX_CHECK(rep == NULL);
    }
    px_rpc_client_destroy(&c);
}

/* Raw DEALER: sends frames exactly as given and returns the decoded response header. */
static Phuxanh__Rpc__V1__ResponseHeader *s_raw_call(const void *hdr, size_t hdr_len,
                                                    const void *body, size_t body_len, int nframes,
                                                    size_t *reply_len)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, rcvtimeo = 5000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
    zmq_connect(s, s_server.endpoint);
    if (nframes == 1) {
        zmq_send(s, hdr, hdr_len, 0);
    } else {
        zmq_send(s, hdr, hdr_len, ZMQ_SNDMORE);
        for (int i = 1; i < nframes - 1; i++) {
            zmq_send(s, body, body_len, ZMQ_SNDMORE);
        }
        zmq_send(s, body, body_len, 0);
    }
    Phuxanh__Rpc__V1__ResponseHeader *h = NULL;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, 0) >= 0) {
        h = phuxanh__rpc__v1__response_header__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        int more = 0;
        size_t sz = sizeof more;
        zmq_getsockopt(s, ZMQ_RCVMORE, &more, &sz);
        if (more) {
            zmq_msg_t b;
            zmq_msg_init(&b);
            zmq_msg_recv(&b, s, 0);
            if (reply_len) {
                *reply_len = zmq_msg_size(&b);
            }
            zmq_msg_close(&b);
        }
    }
    zmq_msg_close(&m);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return h;
}

static size_t s_header(uint8_t *buf, uint64_t call_id, const char *method, uint32_t timeout_ms)
{
    Phuxanh__Rpc__V1__RequestHeader h = PHUXANH__RPC__V1__REQUEST_HEADER__INIT;
    h.call_id = call_id;
    h.method = (char *)method;
    h.timeout_ms = timeout_ms;
    return protobuf_c_message_pack(&h.base, buf);
}

static void test_garbage_request_bytes(void)
{
    uint8_t hdr[256];
    size_t n = s_header(hdr, 42, ECHO, 5000);
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
    size_t rlen = 99;
    Phuxanh__Rpc__V1__ResponseHeader *h = s_raw_call(hdr, n, garbage, sizeof garbage, 2, &rlen);
    PX_REQUIRE(h);
    PX_CHECK_INT_EQ(h->call_id, 42);
    PX_CHECK_INT_EQ(h->code, PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(h->message, "phuxanh.test.v1.EchoRequest") != NULL);
    PX_CHECK_INT_EQ(rlen, 0);
    phuxanh__rpc__v1__response_header__free_unpacked(h, NULL);
}

static void test_garbage_header(void)
{
    const uint8_t garbage[] = {0x0a, 0xff, 0x01};
    Phuxanh__Rpc__V1__ResponseHeader *h = s_raw_call(garbage, sizeof garbage, "", 0, 2, NULL);
    PX_REQUIRE(h);
    PX_CHECK_INT_EQ(h->call_id, 0);
    PX_CHECK_INT_EQ(h->code, PX_INVALID_ARGUMENT);
    phuxanh__rpc__v1__response_header__free_unpacked(h, NULL);
}

static void test_wrong_frame_count(void)
{
    uint8_t hdr[256];
    size_t n = s_header(hdr, 7, ECHO, 5000);
    Phuxanh__Rpc__V1__ResponseHeader *h = s_raw_call(hdr, n, NULL, 0, 1, NULL);
    PX_REQUIRE(h);
    PX_CHECK_INT_EQ(h->call_id, 7);
    PX_CHECK_INT_EQ(h->code, PX_INVALID_ARGUMENT);
    phuxanh__rpc__v1__response_header__free_unpacked(h, NULL);
    h = s_raw_call(hdr, n, "x", 1, 3, NULL);
    PX_REQUIRE(h);
    PX_CHECK_INT_EQ(h->call_id, 7);
    PX_CHECK_INT_EQ(h->code, PX_INVALID_ARGUMENT);
    phuxanh__rpc__v1__response_header__free_unpacked(h, NULL);
}

/* A length-delimited field of a hand-written header: strings may hold what C strings cannot. */
static size_t s_put(uint8_t *b, int field, const void *data, size_t n)
{
    size_t h = 0;
    b[h++] = (uint8_t)(field << 3 | 2);
    if (n < 128) {
        b[h++] = (uint8_t)n;
    } else { /* every value here is under 16384 bytes */
        b[h++] = (uint8_t)(0x80 | (n & 0x7f));
        b[h++] = (uint8_t)(n >> 7);
    }
    memcpy(b + h, data, n);
    return n + h;
}

/* A header of call id 21 for `method` (mlen bytes) with up to two metadata entries. */
static size_t s_raw_header(uint8_t *b, const char *method, size_t mlen, const char *const *kv,
                           const size_t *kvlen, int entries)
{
    size_t n = 0;
    b[n++] = 0x08; /* call_id = 21 */
    b[n++] = 21;
    n += s_put(b + n, 2, method, mlen);
    for (int e = 0; e < entries; e++) {
        uint8_t entry[300];
        size_t en = s_put(entry, 1, kv[2 * e], kvlen[2 * e]);
        en += s_put(entry + en, 2, kv[2 * e + 1], kvlen[2 * e + 1]);
        n += s_put(b + n, 4, entry, en);
    }
    return n;
}

/* Strings in the request header are refused, never cut short: a method or an x-caller with a
 * NUL, a request id that is not UTF-8 (it would be echoed into the reply, which a standard
 * decoder then refuses), and a key given twice (the later value used to win). Each answer is
 * INVALID_ARGUMENT with valid UTF-8, matched to its call id. */
static void test_header_strings_refused(void)
{
    static const char echo_nul[] = "/phuxanh.test.v1.Echo/Echo\0junk";
    static const char evil[] = "gateway\0evil";
    struct {
        const char *name;
        const char *method;
        size_t mlen;
        const char *kv[4];
        size_t kvlen[4];
        int entries;
        const char *want;
    } cases[] = {
        {"method with NUL",
         echo_nul,
         sizeof echo_nul - 1,
         {NULL},
         {0},
         0,
         "request header: method: holds a NUL byte"},
        {"x-caller with NUL",
         ECHO,
         strlen(ECHO),
         {"x-caller", evil},
         {8, sizeof evil - 1},
         1,
         "request header: x-caller: metadata[0].value: holds a NUL byte"},
        {"request id not UTF-8",
         ECHO,
         strlen(ECHO),
         {"x-request-id", "ab\xff\xfe"},
         {12, 4},
         1,
         "request header: x-request-id: metadata[0].value: is not valid UTF-8"},
        {"x-caller twice",
         ECHO,
         strlen(ECHO),
         {"x-caller", "evil", "x-caller", "gateway"},
         {8, 4, 8, 7},
         2,
         "metadata: a key is given more than once"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t hdr[512];
        size_t n = s_raw_header(hdr, cases[i].method, cases[i].mlen, cases[i].kv, cases[i].kvlen,
                                cases[i].entries);
        Phuxanh__Rpc__V1__ResponseHeader *h = s_raw_call(hdr, n, "", 0, 2, NULL);
        PX_REQUIRE(h);
        bool ok = h->call_id == 21 && (int)h->code == (int)PX_INVALID_ARGUMENT &&
                  strncmp(h->message, cases[i].want, strlen(cases[i].want)) == 0 &&
                  px_utf8_valid(h->message, strlen(h->message));
        if (!ok) {
            fprintf(stderr, "  %s: call %llu code %d \"%s\"\n", cases[i].name,
                    (unsigned long long)h->call_id, (int)h->code, h->message);
        }
        PX_CHECK(ok);
        phuxanh__rpc__v1__response_header__free_unpacked(h, NULL);
    }
}

/* A timeout_ms wider than 32 bits is refused, not read as its low 32 bits (2^32 was 0: no
 * deadline at all). */
static void test_timeout_wider_than_32_bits_refused(void)
{
    uint8_t hdr[512];
    size_t n = s_raw_header(hdr, ECHO, strlen(ECHO), NULL, NULL, 0);
    const uint8_t wide[] = {0x18, 0x80, 0x80, 0x80, 0x80, 0x10}; /* timeout_ms = 2^32 */
    memcpy(hdr + n, wide, sizeof wide);
    Phuxanh__Rpc__V1__ResponseHeader *h = s_raw_call(hdr, n + sizeof wide, "", 0, 2, NULL);
    PX_REQUIRE(h);
    PX_CHECK_INT_EQ((int)h->code, (int)PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(h->message, "timeout_ms: out of range") != NULL);
    phuxanh__rpc__v1__response_header__free_unpacked(h, NULL);
}

/* A long method name in Vietnamese is echoed in the answer cut at a character, never inside
 * one (a cut inside one made the reply invalid UTF-8, which standard decoders refuse). */
static void test_echoed_names_stay_utf8(void)
{
    char method[300];
    size_t n = 0;
    method[n++] = '/';
    while (n + 3 < 260) {
        memcpy(method + n, "\xe1\xba\xa1", 3); /* U+1EA1, 3 bytes: 200 is not a multiple of 3 */
        n += 3;
    }
    method[n] = '\0';
    const char *paths[] = {method, NULL};
    char with_slash[320];
    snprintf(with_slash, sizeof with_slash, "/a.B/%s", method + 1);
    paths[1] = with_slash;
    for (int k = 0; k < 2; k++) {
        uint8_t hdr[512];
        size_t len = s_raw_header(hdr, paths[k], strlen(paths[k]), NULL, NULL, 0);
        Phuxanh__Rpc__V1__ResponseHeader *h = s_raw_call(hdr, len, "", 0, 2, NULL);
        PX_REQUIRE(h);
        PX_CHECK_INT_EQ((int)h->code, (int)PX_UNIMPLEMENTED);
        PX_CHECK(px_utf8_valid(h->message, strlen(h->message)));
        phuxanh__rpc__v1__response_header__free_unpacked(h, NULL);
    }
}

/* A string holding a NUL is refused before decoding, naming the field, never cut short
 * (cut, "ab\0cd" would be "ab" and the handler would fail NOT_FOUND with it). */
static void test_string_with_nul_refused(void)
{
    uint8_t hdr[256];
    size_t n = s_header(hdr, 11, ECHO, 5000);
    const uint8_t body[] = {0x18, 0x05, 0x22, 0x05, 'a', 'b', 0x00, 'c', 'd'}; /* 3: 5, 4: .. */
    Phuxanh__Rpc__V1__ResponseHeader *h = s_raw_call(hdr, n, body, sizeof body, 2, NULL);
    PX_REQUIRE(h);
    PX_CHECK_INT_EQ(h->code, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(h->message, "fail_message: holds a NUL byte", 30) == 0);
    phuxanh__rpc__v1__response_header__free_unpacked(h, NULL);
}

/* 30,000 empty nested requests are 60 KB on the wire (under --max-message) but megabytes once
 * decoded: refused RESOURCE_EXHAUSTED before protobuf-c allocates them. */
static void test_decoded_size_bounded(void)
{
    uint8_t hdr[256];
    size_t n = s_header(hdr, 12, ECHO, 5000);
    size_t count = 30000;
    uint8_t *body = malloc(2 * count);
    PX_REQUIRE(body);
    for (size_t i = 0; i < count; i++) {
        body[2 * i] = 0x3a; /* field 7 (nested), length-delimited, empty */
        body[2 * i + 1] = 0x00;
    }
    Phuxanh__Rpc__V1__ResponseHeader *h = s_raw_call(hdr, n, body, 2 * count, 2, NULL);
    free(body);
    PX_REQUIRE(h);
    PX_CHECK_INT_EQ(h->code, PX_RESOURCE_EXHAUSTED);
    PX_CHECK(strstr(h->message, "once decoded") != NULL);
    phuxanh__rpc__v1__response_header__free_unpacked(h, NULL);
}

static void test_oversize_request_refused_by_server(void)
{
    /* The server runs with --max-message=65536: a 100 KB body is over it but under the
     * socket's hard cap, so the server answers RESOURCE_EXHAUSTED. */
    uint8_t hdr[256];
    size_t n = s_header(hdr, 9, ECHO, 5000);
    size_t big = 100 * 1024;
    uint8_t *body = calloc(1, big);
    PX_REQUIRE(body);
    Phuxanh__Rpc__V1__ResponseHeader *h = s_raw_call(hdr, n, body, big, 2, NULL);
    free(body);
    PX_REQUIRE(h);
    PX_CHECK_INT_EQ(h->call_id, 9);
    PX_CHECK_INT_EQ(h->code, PX_RESOURCE_EXHAUSTED);
    phuxanh__rpc__v1__response_header__free_unpacked(h, NULL);
}

static void test_far_oversize_dropped_server_survives(void)
{
    /* Beyond twice the limit libzmq drops the connection; the server must stay up. */
    uint8_t hdr[256];
    size_t n = s_header(hdr, 10, ECHO, 2000);
    size_t big = 1024 * 1024;
    uint8_t *body = calloc(1, big);
    PX_REQUIRE(body);
    Phuxanh__Rpc__V1__ResponseHeader *h = s_raw_call(hdr, n, body, big, 2, NULL);
    free(body);
    PX_CHECK(h == NULL);
    if (h) {
        phuxanh__rpc__v1__response_header__free_unpacked(h, NULL);
    }
    px_rpc_client_t *c = s_client();
    PX_REQUIRE(c);
    px_status_t st;
    PX_CHECK_INT_EQ(px_rpc_health_check(c, "", 5000, &st), 1);
    px_rpc_client_destroy(&c);
}

static void test_oversize_request_refused_by_client(void)
{
    px_status_t st;
    px_rpc_client_opts_t o = {.max_message = 1024};
    px_rpc_client_t *c = px_rpc_client_new(s_server.endpoint, &o, &st);
    PX_REQUIRE(c);
    uint8_t payload[4096] = {0};
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    req.payload.data = payload;
    req.payload.len = sizeof payload;
    Phuxanh__Test__V1__EchoReply *rep = NULL;
    PX_CHECK_INT_EQ(s_echo(c, &req, &rep, NULL, &st), PX_RESOURCE_EXHAUSTED);
    px_rpc_client_destroy(&c);
}

static void test_oversize_reply(void)
{
    px_rpc_client_t *c = s_client();
    PX_REQUIRE(c);
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    req.reply_size = 70000; /* over the server's 65536 */
    Phuxanh__Test__V1__EchoReply *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(s_echo(c, &req, &rep, NULL, &st), PX_RESOURCE_EXHAUSTED);
    req.reply_size = 60000;
    PX_CHECK_INT_EQ(s_echo(c, &req, &rep, NULL, &st), PX_OK);
    if (rep) {
        PX_CHECK_INT_EQ(rep->payload.len, 60000);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
    }
    px_rpc_client_destroy(&c);
}

static void test_client_deadline(void)
{
    px_rpc_client_t *c = s_client();
    PX_REQUIRE(c);
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    req.sleep_ms = 400;
    Phuxanh__Test__V1__EchoReply *rep = NULL;
    px_status_t st;
    px_rpc_call_opts_t o = {.timeout_ms = 100};
    int64_t t0 = px_clock_us();
    PX_CHECK_INT_EQ(s_echo(c, &req, &rep, &o, &st), PX_DEADLINE_EXCEEDED);
    int64_t took = px_clock_us() - t0;
    PX_CHECK(took >= 90000 && took < 350000);
    /* The late reply is dropped; the client keeps working. */
    req.sleep_ms = 0;
    o.timeout_ms = 5000;
    PX_CHECK_INT_EQ(s_echo(c, &req, &rep, &o, &st), PX_OK);
    if (rep) {
        protobuf_c_message_free_unpacked(&rep->base, NULL);
    }
    px_rpc_client_destroy(&c);
}

static void test_expired_deadline_skips_handler(void)
{
    /* The server has two workers: keep both busy, queue a Count whose budget runs out in the
     * queue, then ask Count again: it must have run once only. */
    px_rpc_client_t *c = s_client();
    PX_REQUIRE(c);
    Phuxanh__Test__V1__EchoRequest slow = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    slow.sleep_ms = 500;
    px_rpc_call_opts_t lo = {.timeout_ms = 5000};
    px_rpc_call_t *b1 =
        px_rpc_client_start(c, ECHO, &slow.base, &phuxanh__test__v1__echo_reply__descriptor, &lo);
    px_rpc_call_t *b2 =
        px_rpc_client_start(c, ECHO, &slow.base, &phuxanh__test__v1__echo_reply__descriptor, &lo);
    px_sleep_us(50000);
    char key[64];
    snprintf(key, sizeof key, "expired-%d", (int)px_clock_us());
    Phuxanh__Test__V1__CountRequest cr = PHUXANH__TEST__V1__COUNT_REQUEST__INIT;
    cr.key = key;
    px_rpc_call_opts_t so = {.timeout_ms = 100};
    px_rpc_call_t *q =
        px_rpc_client_start(c, COUNT, &cr.base, &phuxanh__test__v1__echo_reply__descriptor, &so);
    px_rpc_client_wait(c, q);
    PX_CHECK_INT_EQ(px_rpc_call_code(q), PX_DEADLINE_EXCEEDED);
    px_rpc_client_wait(c, b1);
    px_rpc_client_wait(c, b2);
    PX_CHECK_INT_EQ(px_rpc_call_code(b1), PX_OK);
    PX_CHECK_INT_EQ(px_rpc_call_code(b2), PX_OK);
    ProtobufCMessage *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(px_rpc_client_call(c, COUNT, &cr.base,
                                       &phuxanh__test__v1__echo_reply__descriptor, &rep, &lo, &st),
                    PX_OK);
    if (rep) {
        PX_CHECK_INT_EQ(((Phuxanh__Test__V1__EchoReply *)rep)->count, 1);
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    px_rpc_call_destroy(&q);
    px_rpc_call_destroy(&b1);
    px_rpc_call_destroy(&b2);
    px_rpc_client_destroy(&c);
}

static void test_health_without_db(void)
{
    px_rpc_client_t *c = s_client();
    PX_REQUIRE(c);
    px_status_t st;
    PX_CHECK_INT_EQ(px_rpc_health_check(c, "", 5000, &st), 1);
    PX_CHECK_INT_EQ(px_rpc_health_check(c, "phuxanh.test.v1.Echo", 5000, &st), 1);
    PX_CHECK_INT_EQ(px_rpc_health_check(c, "phuxanh.health.v1.Health", 5000, &st), 1);
    PX_CHECK_INT_EQ(px_rpc_health_check(c, "phuxanh.nope.v1.Nope", 5000, &st), -1);
    PX_CHECK_INT_EQ(st.code, PX_NOT_FOUND);
    px_rpc_client_destroy(&c);
}

static void test_no_server_unavailable(void)
{
    px_status_t st;
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", px_test_free_port());
    px_rpc_client_opts_t o = {.connect_wait_ms = 200};
    px_rpc_client_t *c = px_rpc_client_new(ep, &o, &st);
    PX_REQUIRE(c);
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    Phuxanh__Test__V1__EchoReply *rep = NULL;
    int64_t t0 = px_clock_us();
    PX_CHECK_INT_EQ(s_echo(c, &req, &rep, NULL, &st), PX_UNAVAILABLE);
    PX_CHECK(px_clock_us() - t0 < 2000000);
    px_rpc_client_destroy(&c);
}

/* Regression: a call carrying the most metadata allowed and no request id crashed the server
 * (no room left for the generated id). */
static void test_full_metadata_without_request_id(void)
{
    px_status_t st;
    px_rpc_client_t *c = px_rpc_client_new(s_server.endpoint, NULL, &st);
    PX_REQUIRE(c);
    px_md_t *md = px_md_new();
    for (int i = 0; i < PX_RPC_MAX_METADATA; i++) {
        char k[32];
        snprintf(k, sizeof k, "x-filler-%d", i);
        PX_CHECK_INT_EQ(px_md_set(md, k, "v"), 0);
    }
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    Phuxanh__Test__V1__EchoReply *rep = NULL;
    px_rpc_call_opts_t o = {.timeout_ms = 5000, .metadata = md};
    PX_CHECK_INT_EQ(s_echo(c, &req, &rep, &o, &st), PX_OK);
    if (rep) {
        PX_CHECK_INT_EQ(strlen(rep->request_id), 32);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
    }
    /* The server is still up. */
    PX_CHECK_INT_EQ(px_rpc_health_check(c, "", 5000, &st), 1);
    px_md_destroy(&md);
    px_rpc_client_destroy(&c);
}

static px_code_t s_never_called(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    (void)request;
    (void)reply;
    return px_rpc_fail(ctx, PX_INTERNAL, "not called");
}

/* A service's handlers added in several tables (each process-level RPC test also runs px-testd,
 * which adds two): more tables join, and what would be ambiguous is refused. */
static void test_server_add_tables(void)
{
    px_status_t st;
    px_rpc_server_opts_t o = {.service_name = "t", .endpoint = "tcp://127.0.0.1:0", .workers = 1};
    px_rpc_server_t *server = px_rpc_server_new(&o, &st);
    PX_REQUIRE(server);
    int state_a = 0, state_b = 0;
    const px_rpc_method_t echo[] = {{"Echo", s_never_called}};
    const px_rpc_method_t count[] = {{"Count", s_never_called}};
    const px_rpc_method_t nope[] = {{"Nope", s_never_called}};
    const ProtobufCServiceDescriptor *d = &phuxanh__test__v1__echo__descriptor;
    PX_CHECK_INT_EQ(px_rpc_server_add(server, d, echo, 1, &state_a, &st), PX_OK);
    PX_CHECK_INT_EQ(px_rpc_server_add(server, d, echo, 1, &state_a, &st), PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "added twice") != NULL);
    PX_CHECK_INT_EQ(px_rpc_server_add(server, d, count, 1, &state_b, &st), PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "another state") != NULL);
    PX_CHECK_INT_EQ(px_rpc_server_add(server, d, nope, 1, &state_a, &st), PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "no method Nope") != NULL);
    PX_CHECK_INT_EQ(px_rpc_server_add(server, d, count, 1, &state_a, &st), PX_OK);
    px_rpc_server_destroy(&server);
}

static const px_test_case_t s_cases[] = {
    {"server_add_tables", test_server_add_tables},
    {"round_trip", test_round_trip},
    {"request_id_generated_and_returned", test_request_id_generated_and_returned},
    {"unknown_method", test_unknown_method},
    {"handler_error_codes", test_handler_error_codes},
    {"garbage_request_bytes", test_garbage_request_bytes},
    {"string_with_nul_refused", test_string_with_nul_refused},
    {"header_strings_refused", test_header_strings_refused},
    {"echoed_names_stay_utf8", test_echoed_names_stay_utf8},
    {"timeout_wider_than_32_bits_refused", test_timeout_wider_than_32_bits_refused},
    {"decoded_size_bounded", test_decoded_size_bounded},
    {"garbage_header", test_garbage_header},
    {"wrong_frame_count", test_wrong_frame_count},
    {"oversize_request_refused_by_server", test_oversize_request_refused_by_server},
    {"far_oversize_dropped_server_survives", test_far_oversize_dropped_server_survives},
    {"oversize_request_refused_by_client", test_oversize_request_refused_by_client},
    {"oversize_reply", test_oversize_reply},
    {"client_deadline", test_client_deadline},
    {"expired_deadline_skips_handler", test_expired_deadline_skips_handler},
    {"health_without_db", test_health_without_db},
    {"no_server_unavailable", test_no_server_unavailable},
    {"full_metadata_without_request_id", test_full_metadata_without_request_id},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    const char *extra[] = {"--max-message=65536", "--workers=2", NULL};
    if (testd_start(&s_server, NULL, extra) != 0) {
        fprintf(stderr, "cannot start px-testd\n");
        return 1;
    }
    int rc = px_test_main(argc, argv, s_cases);
    if (testd_stop(&s_server, SIGTERM) != 0) {
        fprintf(stderr, "px-testd did not stop cleanly on SIGTERM\n");
        rc = 1;
    }
    return rc;
}
