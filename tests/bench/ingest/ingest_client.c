/*
 * ingest_client.c - the ingest benchmark's measuring side (tests/bench/ingest/run.sh).
 *
 *   bench-act-ingest --endpoint EP --db-url URL --wards 25966,25963,... [--events N]
 *                    [--single N] [--inflight 8] [--batch 100] [--rounds 5]
 *
 * `rounds` rounds of rpc then raw (`events` events each), then single; each phase and round on
 * citizens and keys of its own; the figures are medians over the rounds, and ratio the median
 * of the per-round ratios:
 *   rpc:    RecordEvents, `batch` events a call, `inflight` calls outstanding on one
 *           px_rpc_client; events/s over `events` events.
 *   raw:    the same number of rows, with the columns of the events table, INSERTed by
 *           libpq into raw_events (a copy of events with its indexes, made by the runner) in
 *           the same database: `inflight` connections, one batch of `batch` rows per statement
 *           (unnest of arrays, as the service writes), each its own durable transaction.
 *   single: one event per call, one call in flight; p50/p99 in milliseconds.
 * Prints one line: events_per_s=.. raw_events_per_s=.. ratio=.. single_p50_ms=..
 * single_p99_ms=.. rounds=..
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/rpc.h"

#define S_MAX_WARDS 256
#define S_MAX_EVENTS 1000000 /* ID serials are 6 digits */
#define S_CAMPAIGN "bench-ingest"
/* 2023-07-29 10:00 in Viet Nam. */
#define S_T0 1690599600LL

typedef struct {
    char key[40], id[13], unit[33];
    int stage;
    int64_t at;
} s_ev_t;

static char s_wards[S_MAX_WARDS][33];
static int s_nwards;

/* Event i (< 1,000,000) of phase p: a new citizen (born in 1960 + p % 40, serial i), collected
 * in ward i % n. Phases are S_PHASE_* plus the round. */
#define S_PHASE_SINGLE 3
#define S_PHASE_RPC 10
#define S_PHASE_RAW 25
static void s_make(s_ev_t *e, int phase, long i)
{
    snprintf(e->key, sizeof e->key, "ing-%d-%ld", phase, i);
    snprintf(e->id, sizeof e->id, "0740%02d%06ld", 60 + phase % 40, i % 1000000);
    snprintf(e->unit, sizeof e->unit, "%s", s_wards[i % s_nwards]);
    e->stage = 1;
    e->at = S_T0 + (i % 30000);
}

/* A RecordEvents request over ev[0..n), pointing into slot memory. */
typedef struct {
    Phuxanh__Activation__V1__ActivationEvent e[1000], *ep[1000];
    Google__Protobuf__Timestamp ts[1000];
    Phuxanh__Activation__V1__RecordEventsRequest req;
    px_rpc_call_t *call;
} s_slot_t;

static void s_fill(s_slot_t *s, const s_ev_t *ev, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        phuxanh__activation__v1__activation_event__init(&s->e[k]);
        google__protobuf__timestamp__init(&s->ts[k]);
        s->ts[k].seconds = ev[k].at;
        s->e[k].idempotency_key = (char *)ev[k].key;
        s->e[k].campaign_id = S_CAMPAIGN;
        s->e[k].citizen_id = (char *)ev[k].id;
        s->e[k].unit_code = (char *)ev[k].unit;
        s->e[k].stage = ev[k].stage;
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

static const char *s_method = "/phuxanh.activation.v1.ActivationService/RecordEvents";

/* Checks a finished call: OK and every event recorded. */
static int s_check(px_rpc_call_t *call, size_t n)
{
    if (px_rpc_call_code(call) != PX_OK) {
        fprintf(stderr, "ingest: RecordEvents: %s\n", px_rpc_call_message(call));
        return -1;
    }
    Phuxanh__Activation__V1__RecordEventsResponse *r = (void *)px_rpc_call_take_reply(call);
    int rc = r && (size_t)r->recorded == n ? 0 : -1;
    if (rc != 0 && r) {
        for (size_t k = 0; k < r->n_results; k++) {
            if (r->results[k]->code != 0) {
                fprintf(stderr, "ingest: event refused: %s\n", r->results[k]->message);
                break;
            }
        }
    }
    if (r) {
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    return rc;
}

static double s_rpc_phase(px_rpc_client_t *c, int phase, long events, int batch, int inflight)
{
    s_ev_t *ev = calloc((size_t)events, sizeof *ev);
    s_slot_t *slots = calloc((size_t)inflight, sizeof *slots);
    double rate = -1;
    if (!ev || !slots) {
        goto done;
    }
    for (long i = 0; i < events; i++) {
        s_make(&ev[i], phase, i);
    }
    px_rpc_call_opts_t o = {.timeout_ms = 60000};
    long next = 0, done_n = 0;
    int64_t t0 = px_bench_now_ns();
    for (int s = 0; s < inflight && next < events; s++) {
        size_t n = (size_t)(events - next < batch ? events - next : batch);
        s_fill(&slots[s], &ev[next], n);
        slots[s].call =
            px_rpc_client_start(c, s_method, &slots[s].req.base,
                                &phuxanh__activation__v1__record_events_response__descriptor, &o);
        px_rpc_call_set_user(slots[s].call, &slots[s]);
        next += (long)n;
    }
    while (done_n < events) {
        px_rpc_call_t *call = px_rpc_client_next(c, 60000);
        if (!call) {
            fprintf(stderr, "ingest: no reply within 60 s\n");
            goto done;
        }
        s_slot_t *s = px_rpc_call_user(call);
        size_t n = s->req.n_events;
        if (s_check(call, n) != 0) {
            goto done;
        }
        px_rpc_call_destroy(&s->call);
        done_n += (long)n;
        if (next < events) {
            size_t m = (size_t)(events - next < batch ? events - next : batch);
            s_fill(s, &ev[next], m);
            s->call = px_rpc_client_start(
                c, s_method, &s->req.base,
                &phuxanh__activation__v1__record_events_response__descriptor, &o);
            px_rpc_call_set_user(s->call, s);
            next += (long)m;
        }
    }
    rate = (double)events / ((double)(px_bench_now_ns() - t0) / 1e9);
done:
    for (int s = 0; slots && s < inflight; s++) {
        px_rpc_call_destroy(&slots[s].call);
    }
    free(slots);
    free(ev);
    return rate;
}

/* ---------------------------------------------------------------- raw libpq */

static const char *s_raw_sql =
    "INSERT INTO raw_events (idempotency_key, campaign_id, citizen_key, unit_code, "
    "neighborhood_code, volunteer_code, stage, channel, venue, occurred_at, note, recorded_by, "
    "request_id, cycle, volunteer_verified, duty_verdict, message, duplicate) "
    "SELECT k, $1, decode(h, 'hex'), u, '', '', 1, 1, 1, "
    "timestamptz 'epoch' + t * interval '1 second', '', 'bench', 'req', 1, true, 0, '', false "
    "FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[]) AS x(k, h, u, t)";

typedef struct {
    const char *url;
    int phase;
    long events;
    int batch;
    atomic_long *next;
    int failed;
} s_raw_t;

static void s_append(char **p, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 4 > *cap) {
        *cap = (*len + n + 4) * 2;
        *p = realloc(*p, *cap);
    }
    memcpy(*p + *len, s, n);
    *len += n;
    (*p)[*len] = '\0';
}

static void *s_raw_thread(void *arg)
{
    s_raw_t *r = arg;
    PGconn *conn = PQconnectdb(r->url);
    char *a[4] = {NULL, NULL, NULL, NULL};
    size_t len[4], cap[4] = {0, 0, 0, 0};
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "ingest: raw: %s", PQerrorMessage(conn));
        r->failed = 1;
        goto done;
    }
    PGresult *res = PQprepare(conn, "raw", s_raw_sql, 5, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "ingest: raw prepare: %s", PQerrorMessage(conn));
        r->failed = 1;
        PQclear(res);
        goto done;
    }
    PQclear(res);
    for (;;) {
        long from = atomic_fetch_add(r->next, r->batch);
        if (from >= r->events) {
            break;
        }
        long to = from + r->batch < r->events ? from + r->batch : r->events;
        for (int k = 0; k < 4; k++) {
            len[k] = 0;
            s_append(&a[k], &len[k], &cap[k], "{");
        }
        for (long i = from; i < to; i++) {
            s_ev_t e;
            s_make(&e, r->phase, i);
            char hex[65], num[24];
            /* A stand-in for the HMAC: 32 bytes from the key (the database sees the same). */
            unsigned long long h = 1469598103934665603ULL;
            for (const char *p = e.key; *p; p++) {
                h = (h ^ (unsigned char)*p) * 1099511628211ULL;
            }
            for (int b = 0; b < 4; b++) {
                snprintf(hex + 16 * b, 17, "%016llx", h * (unsigned long long)(b + 1));
            }
            snprintf(num, sizeof num, "%lld", (long long)e.at);
            const char *v[4] = {e.key, hex, e.unit, num};
            for (int k = 0; k < 4; k++) {
                s_append(&a[k], &len[k], &cap[k], i > from ? ",\"" : "\"");
                s_append(&a[k], &len[k], &cap[k], v[k]);
                s_append(&a[k], &len[k], &cap[k], "\"");
            }
        }
        for (int k = 0; k < 4; k++) {
            s_append(&a[k], &len[k], &cap[k], "}");
        }
        const char *params[5] = {S_CAMPAIGN, a[0], a[1], a[2], a[3]};
        res = PQexecPrepared(conn, "raw", 5, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            fprintf(stderr, "ingest: raw insert: %s", PQerrorMessage(conn));
            r->failed = 1;
            PQclear(res);
            goto done;
        }
        PQclear(res);
    }
done:
    for (int k = 0; k < 4; k++) {
        free(a[k]);
    }
    PQfinish(conn);
    return NULL;
}

static double s_raw_phase(const char *url, int phase, long events, int batch, int conns)
{
    atomic_long next;
    atomic_init(&next, 0);
    pthread_t th[64];
    s_raw_t r[64];
    int64_t t0 = px_bench_now_ns();
    for (int i = 0; i < conns; i++) {
        r[i] =
            (s_raw_t){.url = url, .phase = phase, .events = events, .batch = batch, .next = &next};
        pthread_create(&th[i], NULL, s_raw_thread, &r[i]);
    }
    int failed = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        failed |= r[i].failed;
    }
    return failed ? -1 : (double)events / ((double)(px_bench_now_ns() - t0) / 1e9);
}

/* ---------------------------------------------------------------- single events */

static int s_single_phase(px_rpc_client_t *c, long calls, double *p50, double *p99)
{
    int64_t *samples = calloc((size_t)calls, sizeof *samples);
    static s_slot_t slot;
    if (!samples) {
        return -1;
    }
    px_rpc_call_opts_t o = {.timeout_ms = 30000};
    for (long i = 0; i < calls; i++) {
        s_ev_t e;
        s_make(&e, S_PHASE_SINGLE, i);
        s_fill(&slot, &e, 1);
        int64_t t0 = px_bench_now_ns();
        px_rpc_call_t *call =
            px_rpc_client_start(c, s_method, &slot.req.base,
                                &phuxanh__activation__v1__record_events_response__descriptor, &o);
        px_rpc_client_wait(c, call);
        samples[i] = px_bench_now_ns() - t0;
        int rc = s_check(call, 1);
        px_rpc_call_destroy(&call);
        if (rc != 0) {
            free(samples);
            return -1;
        }
    }
    px_bench_result_t res = {0};
    px_bench_latency_summarise(&res, samples, (size_t)calls);
    *p50 = res.p50_us / 1000.0;
    *p99 = res.p99_us / 1000.0;
    free(samples);
    return 0;
}

static int s_dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, s_dbl_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *url = NULL, *wards = NULL;
    long events = 20000, single = 1000;
    int inflight = 8, batch = 100, rounds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--endpoint") == 0) {
            endpoint = argv[i + 1];
        } else if (strcmp(argv[i], "--db-url") == 0) {
            url = argv[i + 1];
        } else if (strcmp(argv[i], "--wards") == 0) {
            wards = argv[i + 1];
        } else if (strcmp(argv[i], "--events") == 0) {
            events = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--single") == 0) {
            single = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--inflight") == 0) {
            inflight = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--batch") == 0) {
            batch = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--rounds") == 0) {
            rounds = atoi(argv[i + 1]);
        }
    }
    if (!endpoint || !url || !wards || events < 1 || events > 999999 || single < 1 ||
        single > 999999 || inflight < 1 || inflight > 64 || batch < 1 || batch > 1000 ||
        rounds < 1 || rounds > 15) {
        fprintf(stderr, "usage: bench-act-ingest --endpoint EP --db-url URL --wards A,B,... "
                        "[--events N<1000000 a round] [--single N] [--inflight 1..64] "
                        "[--batch 1..1000] [--rounds 1..15]\n");
        return 2;
    }
    char *w = strdup(wards);
    for (char *save = NULL, *t = strtok_r(w, ",", &save); t && s_nwards < S_MAX_WARDS;
         t = strtok_r(NULL, ",", &save)) {
        snprintf(s_wards[s_nwards++], sizeof s_wards[0], "%s", t);
    }
    free(w);
    px_status_t st;
    px_rpc_client_opts_t co = {.caller = "bench-ingest", .connect_wait_ms = 5000};
    px_rpc_client_t *c = px_rpc_client_new(endpoint, &co, &st);
    if (!c) {
        fprintf(stderr, "ingest: %s\n", st.message);
        return 1;
    }
    /* The two sides take turns, round by round, so that a noisy moment of the machine falls on
     * one round's pair and the median of the per-round ratios leaves it out. */
    double rpc[15], raw[15], ratio[15];
    for (int r = 0; r < rounds; r++) {
        rpc[r] = s_rpc_phase(c, S_PHASE_RPC + r, events, batch, inflight);
        raw[r] = s_raw_phase(url, S_PHASE_RAW + r, events, batch, inflight);
        if (rpc[r] < 0 || raw[r] < 0) {
            px_rpc_client_destroy(&c);
            return 1;
        }
        ratio[r] = rpc[r] / raw[r];
        fprintf(stderr, "ingest: round %d: %ld events: ours %.0f/s, raw %.0f rows/s, ratio %.2f\n",
                r + 1, events, rpc[r], raw[r], ratio[r]);
    }
    fprintf(stderr, "ingest: single phase: %ld calls\n", single);
    double p50 = -1, p99 = -1;
    int rc = s_single_phase(c, single, &p50, &p99);
    px_rpc_client_destroy(&c);
    if (rc != 0) {
        return 1;
    }
    printf("events_per_s=%.0f raw_events_per_s=%.0f ratio=%.2f single_p50_ms=%.2f "
           "single_p99_ms=%.2f rounds=%d\n",
           s_median(rpc, rounds), s_median(raw, rounds), s_median(ratio, rounds), p50, p99, rounds);
    return 0;
}
