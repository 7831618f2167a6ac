/*
 * test_logstream.c - a logger's lines on a real ZeroMQ PUB socket and its history endpoint:
 * every line arrives as [service][sequence][JSON] in order; a reader that stops reading loses
 * lines, can count exactly how many from the sequences, and the logging threads are not slowed
 * by it; the history answers "since" and "after", is bounded, is cut into "more" answers, and
 * refuses a malformed request; destroying with lines still queued is clean (ASan).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "phuxanh/clock.h"
#include "phuxanh/logstream.h"
#include "px_test.h"

typedef struct {
    px_log_t *log;
    px_logstream_t *stream;
    void *zctx;
    int devnull;
} fixture_t;

static bool fixture_open(fixture_t *f, size_t history, int hwm)
{
    memset(f, 0, sizeof *f);
    f->devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    f->log = px_log_new("testsvc", PX_LOG_DEBUG, f->devnull);
    px_status_t st;
    px_logstream_opts_t o = {"testsvc", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", history, hwm,
                             NULL};
    f->stream = px_logstream_new(&o, &st);
    if (!f->stream) {
        fprintf(stderr, "px_logstream_new: %s\n", st.message);
        return false;
    }
    px_logstream_attach(f->stream, f->log);
    f->zctx = zmq_ctx_new();
    return true;
}

static void fixture_close(fixture_t *f)
{
    px_logstream_destroy(&f->stream);
    px_log_destroy(&f->log);
    if (f->zctx) {
        zmq_ctx_term(f->zctx);
    }
    close(f->devnull);
}

static void *subscribe(fixture_t *f, int rcvhwm)
{
    px_status_t st;
    void *sub = px_logstream_socket(f->zctx, ZMQ_SUB, 0, NULL, NULL, &st);
    zmq_setsockopt(sub, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    zmq_connect(sub, px_logstream_endpoint(f->stream));
    return sub;
}

/* One live message: 0, or -1 on timeout or a malformed message. */
static int recv_line(void *sub, int timeout_ms, uint64_t *seq, char *line, size_t cap)
{
    zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0) {
        return -1;
    }
    char svc[32];
    unsigned char s[PX_LOGSTREAM_SEQ_SIZE];
    int n1 = zmq_recv(sub, svc, sizeof svc, 0);
    int n2 = zmq_recv(sub, s, sizeof s, 0);
    int n3 = zmq_recv(sub, line, cap - 1, 0);
    if (n1 != 7 || memcmp(svc, "testsvc", 7) != 0 || n2 != PX_LOGSTREAM_SEQ_SIZE || n3 < 0) {
        return -1;
    }
    line[(size_t)n3 < cap - 1 ? (size_t)n3 : cap - 1] = '\0';
    *seq = px_logstream_seq_get(s);
    return 0;
}

/* Logs "ping" until the subscriber hears one (a SUB joins asynchronously); its sequence. */
static uint64_t join(fixture_t *f, void *sub)
{
    char line[4096];
    uint64_t seq = 0;
    for (int i = 0; i < 200; i++) {
        px_log_emit(f->log, PX_LOG_INFO, "TEST-PING", "ping", NULL);
        if (recv_line(sub, 20, &seq, line, sizeof line) == 0) {
            /* drain the pings that crossed */
            while (recv_line(sub, 50, &seq, line, sizeof line) == 0) {
            }
            return seq;
        }
    }
    return 0;
}

static void test_live_lines_in_order(void)
{
    fixture_t f;
    PX_REQUIRE(fixture_open(&f, 100, 1000));
    void *sub = subscribe(&f, 1000);
    uint64_t last = join(&f, sub);
    PX_REQUIRE(last > 0);
    for (int i = 0; i < 100; i++) {
        px_log_emit(f.log, PX_LOG_WARN, "TEST-LINE", "a line",
                    PX_LOG_FIELDS(PX_LI("i", i), PX_LS("request_id", "r-1")));
    }
    char line[4096];
    for (int i = 0; i < 100; i++) {
        uint64_t seq = 0;
        PX_REQUIRE(recv_line(sub, 2000, &seq, line, sizeof line) == 0);
        PX_CHECK_INT_EQ(seq, last + 1 + (uint64_t)i);
        char want[64];
        snprintf(want, sizeof want, "\"i\":%d,", i);
        PX_CHECK(strstr(line, want) != NULL);
        PX_CHECK(strstr(line, "\"event\":\"TEST-LINE\"") != NULL);
        PX_CHECK(strstr(line, "\"level\":\"warn\"") != NULL);
        PX_CHECK(line[strlen(line) - 1] == '}'); /* no newline in the frame */
    }
    PX_CHECK_INT_EQ(px_logstream_dropped(f.stream), 0);
    zmq_close(sub);
    fixture_close(&f);
}

/* A reader that stops reading: the logger goes on at full speed, and the reader can tell from
 * the sequences exactly how many lines it did not get. */
static void test_slow_reader_counts_losses(void)
{
    fixture_t f;
    PX_REQUIRE(fixture_open(&f, 100, 10));
    void *sub = subscribe(&f, 10);
    /* Kernel buffers would otherwise hold megabytes of lines before anything is dropped. */
    int small = 4096;
    zmq_setsockopt(sub, ZMQ_RCVBUF, &small, sizeof small);
    uint64_t first = join(&f, sub);
    PX_REQUIRE(first > 0);
    enum { LINES = 50000 };
    char pad[512];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    int64_t t0 = px_clock_us();
    int64_t worst = 0;
    for (int i = 0; i < LINES; i++) {
        int64_t a = px_clock_us();
        px_log_emit(f.log, PX_LOG_INFO, "TEST-FLOOD", "flood",
                    PX_LOG_FIELDS(PX_LI("i", i), PX_LS("pad", pad)));
        int64_t d = px_clock_us() - a;
        worst = d > worst ? d : worst;
    }
    int64_t took = px_clock_us() - t0;
    /* Nobody read a line meanwhile, and yet logging did not wait: 50000 lines in well under
     * the time a reader at its HWM would have made it wait (forever). */
    printf("# %d lines logged in %lld us (worst %lld us) with a stalled reader\n", LINES,
           (long long)took, (long long)worst);
    PX_CHECK(took < 20 * 1000000);
    PX_CHECK(worst < 1000000);
    px_sleep_us(300 * 1000);
    char line[4096];
    uint64_t expect = first + 1, seq = 0, received = 0, lost = 0, last = first;
    while (recv_line(sub, 500, &seq, line, sizeof line) == 0) {
        PX_REQUIRE(seq >= expect);
        lost += seq - expect;
        expect = seq + 1;
        last = seq;
        received++;
    }
    printf("# received %llu, lost %llu (queue drops %llu)\n", (unsigned long long)received,
           (unsigned long long)lost, (unsigned long long)px_logstream_dropped(f.stream));
    PX_CHECK(lost > 0);
    PX_CHECK(received > 0);
    /* Every line is either received or counted lost. */
    PX_CHECK_INT_EQ(received + lost, last - first);
    /* The last line logged reached the reader after it caught up: nothing lost silently at
     * the end (the sender had caught up on its queue by then). */
    px_log_emit(f.log, PX_LOG_INFO, "TEST-AFTER", "after", NULL);
    PX_REQUIRE(recv_line(sub, 2000, &seq, line, sizeof line) == 0);
    PX_CHECK(strstr(line, "TEST-AFTER") != NULL);
    PX_CHECK_INT_EQ(seq, first + LINES + 1);
    zmq_close(sub);
    fixture_close(&f);
}

typedef struct {
    char status[8];
    uint64_t published;
    int nlines;
    uint64_t seqs[4096];
    char *lines[4096];
} answer_t;

static void answer_free(answer_t *a)
{
    for (int i = 0; i < a->nlines; i++) {
        free(a->lines[i]);
    }
    a->nlines = 0;
}

/* One history request; 0, or -1 when no (well-formed) answer came. */
static int ask(fixture_t *f, const char *req, answer_t *a)
{
    memset(a, 0, sizeof *a);
    px_status_t st;
    void *s = px_logstream_socket(f->zctx, ZMQ_REQ, 0, NULL, NULL, &st);
    zmq_connect(s, px_logstream_history_endpoint(f->stream));
    zmq_send(s, req, strlen(req), 0);
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    int rc = -1;
    if (zmq_poll(&it, 1, 3000) <= 0) {
        goto done;
    }
    zmq_msg_t m;
    int frame = 0;
    bool more = true;
    unsigned char seq[PX_LOGSTREAM_SEQ_SIZE];
    while (more) {
        zmq_msg_init(&m);
        zmq_msg_recv(&m, s, 0);
        more = zmq_msg_more(&m);
        size_t n = zmq_msg_size(&m);
        const char *d = zmq_msg_data(&m);
        if (frame == 0) {
            rc = (n == 7 && memcmp(d, "testsvc", 7) == 0) ? 0 : -1;
        } else if (frame == 1) {
            snprintf(a->status, sizeof a->status, "%.*s", (int)(n < 7 ? n : 7), d);
        } else if (frame == 2 && n == sizeof seq) {
            a->published = px_logstream_seq_get((const unsigned char *)d);
        } else if (frame >= 3 && frame % 2 == 1 && n == sizeof seq && a->nlines < 4096) {
            memcpy(seq, d, sizeof seq);
        } else if (frame >= 4 && frame % 2 == 0 && a->nlines < 4096) {
            a->seqs[a->nlines] = px_logstream_seq_get(seq);
            a->lines[a->nlines] = strndup(d, n);
            a->nlines++;
        }
        frame++;
        zmq_msg_close(&m);
    }
done:
    zmq_close(s);
    return rc;
}

static void test_history_since_and_after(void)
{
    fixture_t f;
    PX_REQUIRE(fixture_open(&f, 50, 1000));
    for (int i = 0; i < 30; i++) {
        px_log_emit(f.log, PX_LOG_INFO, "TEST-OLD", "old", PX_LOG_FIELDS(PX_LI("i", i)));
    }
    px_sleep_us(20 * 1000);
    int64_t mid = px_wall_us();
    px_sleep_us(20 * 1000);
    for (int i = 0; i < 40; i++) {
        px_log_emit(f.log, PX_LOG_INFO, "TEST-NEW", "new", PX_LOG_FIELDS(PX_LI("i", i)));
    }
    px_sleep_us(100 * 1000); /* the publisher thread has moved them to the history */
    answer_t a;
    /* Only the last 50 of 70 are kept. */
    PX_REQUIRE(ask(&f, "since 0", &a) == 0);
    PX_CHECK_STR_EQ(a.status, "end");
    PX_CHECK_INT_EQ(a.nlines, 50);
    PX_CHECK_INT_EQ(a.published, 70);
    PX_CHECK_INT_EQ(a.seqs[0], 21);
    PX_CHECK_INT_EQ(a.seqs[49], 70);
    answer_free(&a);
    /* Since the middle: the 40 new ones only. */
    char req[96];
    snprintf(req, sizeof req, "since %lld", (long long)mid);
    PX_REQUIRE(ask(&f, req, &a) == 0);
    PX_CHECK_INT_EQ(a.nlines, 40);
    PX_CHECK(a.nlines > 0 && strstr(a.lines[0], "TEST-NEW") && strstr(a.lines[0], "\"i\":0"));
    answer_free(&a);
    /* After a sequence. */
    snprintf(req, sizeof req, "since %lld after 65", (long long)mid);
    PX_REQUIRE(ask(&f, req, &a) == 0);
    PX_CHECK_INT_EQ(a.nlines, 5);
    PX_CHECK_INT_EQ(a.seqs[0], 66);
    answer_free(&a);
    /* Malformed requests are refused, not guessed at. */
    const char *bad[] = {"",
                         "since",
                         "since -5",
                         "since 12x",
                         "since 1 after",
                         "until 5",
                         "since 1 after 2 more",
                         "since 99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        PX_REQUIRE(ask(&f, bad[i], &a) == 0);
        PX_CHECK_STR_EQ(a.status, "error");
        PX_CHECK_INT_EQ(a.nlines, 0);
        answer_free(&a);
    }
    fixture_close(&f);
}

/* An answer is bounded: past 1 MiB it says "more" and the reader asks after its last line. */
static void test_history_more(void)
{
    fixture_t f;
    PX_REQUIRE(fixture_open(&f, 1000, 1000));
    static char pad[8001];
    memset(pad, 'y', sizeof pad - 1);
    for (int i = 0; i < 300; i++) {
        px_log_emit(f.log, PX_LOG_INFO, "TEST-BIG", "big",
                    PX_LOG_FIELDS(PX_LI("i", i), PX_LS("pad", pad)));
    }
    px_sleep_us(200 * 1000);
    answer_t a;
    int total = 0, rounds = 0;
    uint64_t after = 0;
    for (;;) {
        char req[96];
        snprintf(req, sizeof req, "since 0 after %llu", (unsigned long long)after);
        PX_REQUIRE(ask(&f, req, &a) == 0);
        PX_REQUIRE(a.nlines > 0);
        PX_CHECK_INT_EQ(a.seqs[0], after + 1);
        total += a.nlines;
        after = a.seqs[a.nlines - 1];
        rounds++;
        bool more = strcmp(a.status, "more") == 0;
        answer_free(&a);
        if (!more || rounds > 10) {
            break;
        }
    }
    PX_CHECK_INT_EQ(total, 300);
    PX_CHECK(rounds >= 3); /* 300 x 8 KB is more than two answers */
    fixture_close(&f);
}

/* Destroyed while lines are queued and a reader is connected: no leak, no hang (ASan). */
static void test_destroy_busy(void)
{
    fixture_t f;
    PX_REQUIRE(fixture_open(&f, 10, 5));
    void *sub = subscribe(&f, 5);
    for (int i = 0; i < 5000; i++) {
        px_log_emit(f.log, PX_LOG_INFO, "TEST-BUSY", "busy", NULL);
    }
    px_logstream_destroy(&f.stream);
    PX_CHECK(f.stream == NULL);
    px_logstream_destroy(&f.stream); /* twice is harmless */
    /* The logger still works without its stream. */
    px_log_emit(f.log, PX_LOG_INFO, "TEST-AFTER", "after", NULL);
    zmq_close(sub);
    fixture_close(&f);
}

static void test_bad_endpoint(void)
{
    px_status_t st;
    px_logstream_opts_t o = {"testsvc", "nonsense://x", NULL, 10, 10, NULL};
    px_logstream_t *s = px_logstream_new(&o, &st);
    PX_CHECK(s == NULL);
    PX_CHECK_INT_EQ(st.code, PX_INVALID_ARGUMENT);
}

static const px_test_case_t cases[] = {
    {"live_lines_in_order", test_live_lines_in_order},
    {"slow_reader_counts_losses", test_slow_reader_counts_losses},
    {"history_since_and_after", test_history_since_and_after},
    {"history_more", test_history_more},
    {"destroy_busy", test_destroy_busy},
    {"bad_endpoint", test_bad_endpoint},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, cases);
}
