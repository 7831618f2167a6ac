/*
 * test_act_random.c - a randomized run (50,000 events by default, PX_ACT_RANDOM_EVENTS to
 * change) with repeated stages, out-of-order stages, citizens moving wards, rejections,
 * impossible moves, keys reused within and across batches and whole batches retried; then
 * the maintained counts must equal a recount from the events table, written as the rules
 * say it declaratively (a citizen reached a stage when some stored event of theirs says it or
 * a later one; counted in the ward of their first stored event), roll-ups must add up, and
 * no ID number may appear in the database dump or the service's log. Several clients send at
 * once (PX_ACT_RANDOM_THREADS, default 4), racing on the same citizens and keys.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_fixture.h"
#include "phuxanh/clock.h"
#include "px_test.h"

#define NCITIZENS 6000
#define MAX_BATCH 200

static act_fixture_t F;

/* Each client thread has its own generator, client and keys: nothing is shared but the ID
 * numbers (read-only) and a small set of keys every thread may use ("shared%d"), so that
 * batches race on the same citizens and the same keys. */
typedef struct {
    int no;
    uint64_t rng;
    int events;
    px_rpc_client_t *client;
    char (*keys)[24];
    int nkeys, key_no, sent, batches, retries;
    long long recorded;
    int failures;
    char first_failure[600];
} s_worker_t;

static uint32_t s_rand(s_worker_t *w, uint32_t n)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (uint32_t)(w->rng % n);
}

static char s_ids[NCITIZENS][13];

static void s_make_ids(void)
{
    static const char *const prov[] = {"074", "079", "001", "048", "096", "075"};
    s_worker_t w = {.rng = 0x9e3779b97f4a7c15ULL};
    for (int i = 0; i < NCITIZENS; i++) {
        /* Century digit 0..3 (1900s/2000s), year so that everyone is at least 14 in 2023. */
        int cs = (int)s_rand(&w, 4);
        int year = cs < 2 ? 40 + (int)s_rand(&w, 60) : (int)s_rand(&w, 10);
        snprintf(s_ids[i], sizeof s_ids[i], "%s%d%02d%06d", prov[s_rand(&w, 6)], cs, year, i);
    }
}

static const char *const s_wards[] = {"25966", "25969", "25975", "25747"};

static Phuxanh__Activation__V1__ActivationEvent *s_random_event(s_worker_t *w)
{
    char key[24];
    uint32_t k = s_rand(w, 100);
    if (w->nkeys > 0 && k < 3) {
        memcpy(key, w->keys[s_rand(w, (uint32_t)w->nkeys)], sizeof key); /* a reused key */
    } else if (k < 4) {
        snprintf(key, sizeof key, "shared%u", s_rand(w, 300)); /* maybe another thread's */
    } else {
        snprintf(key, sizeof key, "t%d-%d", w->no, w->key_no++);
    }
    int c = (int)s_rand(w, NCITIZENS);
    const char *ward = s_wards[s_rand(w, 100) < 95 ? (uint32_t)c % 4 : s_rand(w, 4)];
    int r = (int)s_rand(w, 100);
    int stage = r < 40 ? 1 : r < 65 ? 2 : r < 90 ? 3 : 4;
    Phuxanh__Activation__V1__ActivationEvent *e =
        act_event(key, s_ids[c], ward, stage, (int)s_rand(w, 100000) - 80000);
    e->channel = 1 + (int)s_rand(w, 3);
    e->venue = 1 + (int)s_rand(w, 2);
    int v = (int)s_rand(w, 10);
    if (v < 3) {
        free(e->volunteer_code);
        e->volunteer_code = strdup(v == 0 ? "TN0002" : "TN0001");
    }
    if (strcmp(ward, "25966") == 0 && s_rand(w, 2) == 0) {
        free(e->neighborhood_code);
        e->neighborhood_code = strdup(s_rand(w, 2) ? "25966-01" : "25966-02");
    }
    if (s_rand(w, 5) == 0) {
        char note[40];
        snprintf(note, sizeof note, "nhà số %d", (int)s_rand(w, 300));
        free(e->note);
        e->note = strdup(note);
    }
    return e;
}

static void s_fail(s_worker_t *w, const char *what)
{
    if (w->failures++ == 0) {
        snprintf(w->first_failure, sizeof w->first_failure, "%s", what);
    }
}

static void *s_worker(void *arg)
{
    s_worker_t *w = arg;
    Phuxanh__Activation__V1__ActivationEvent *batch[MAX_BATCH];
    int prev_codes[MAX_BATCH];
    size_t n = 0;
    px_status_t st;
    while (w->sent < w->events && w->failures == 0) {
        bool retry = n > 0 && s_rand(w, 100) < 8;
        if (!retry) {
            for (size_t i = 0; i < n; i++) {
                act_event_free(batch[i]);
            }
            n = 1 + s_rand(w, MAX_BATCH);
            for (size_t i = 0; i < n; i++) {
                batch[i] = s_random_event(w);
            }
        }
        Phuxanh__Activation__V1__RecordEventsRequest req =
            PHUXANH__ACTIVATION__V1__RECORD_EVENTS_REQUEST__INIT;
        req.events = batch;
        req.n_events = n;
        ProtobufCMessage *reply = NULL;
        px_rpc_call_opts_t o = {.timeout_ms = 30000};
        if (px_rpc_client_call(w->client, "/phuxanh.activation.v1.ActivationService/RecordEvents",
                               &req.base,
                               &phuxanh__activation__v1__record_events_response__descriptor, &reply,
                               &o, &st) != PX_OK) {
            s_fail(w, st.message);
            break;
        }
        Phuxanh__Activation__V1__RecordEventsResponse *r = (void *)reply;
        if (r->n_results != n) {
            s_fail(w, "wrong number of results");
        }
        for (size_t i = 0; i < n && i < r->n_results; i++) {
            const Phuxanh__Activation__V1__EventResult *x = r->results[i];
            if (x->code != 0 && x->code != 9) {
                s_fail(w, x->message);
            }
            /* A retried batch answers as the first time, and changes nothing. (An event
             * refused the first time whose key another event took since is now that event:
             * OK and a duplicate.) */
            if (retry && !(x->code == prev_codes[i] || (prev_codes[i] == 9 && x->code == 0))) {
                s_fail(w, "a retried event answered differently");
            }
            if (retry && x->code == 0 && !x->duplicate) {
                s_fail(w, "a retried event was not a duplicate");
            }
            prev_codes[i] = x->code;
            if (!retry && w->nkeys < 60000) {
                snprintf(w->keys[w->nkeys++], 24, "%s", batch[i]->idempotency_key);
            }
        }
        w->recorded += r->recorded;
        protobuf_c_message_free_unpacked(reply, NULL);
        w->sent += (int)n;
        w->batches++;
        w->retries += retry;
    }
    for (size_t i = 0; i < n; i++) {
        act_event_free(batch[i]);
    }
    return NULL;
}

/* Scans text for runs of exactly 12 digits and counts those that are one of our numbers. */
static int s_ids_in(const char *text, size_t len)
{
    int found = 0;
    size_t run = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] >= '0' && text[i] <= '9') {
            run++;
            continue;
        }
        if (run >= 12) {
            /* Any 12-digit window of the run. */
            for (size_t s = i - run; s + 12 <= i; s++) {
                char serial_text[7];
                memcpy(serial_text, text + s + 6, 6);
                serial_text[6] = '\0';
                int serial = atoi(serial_text);
                if (serial >= 0 && serial < NCITIZENS && memcmp(s_ids[serial], text + s, 12) == 0) {
                    found++;
                }
            }
        }
        run = 0;
    }
    return found;
}

static char *s_slurp(FILE *fp, size_t *len)
{
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    *len = 0;
    size_t got;
    while (buf && (got = fread(buf + *len, 1, cap - *len, fp)) > 0) {
        *len += got;
        if (*len == cap) {
            cap *= 2;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
        }
    }
    return buf;
}

static void test_random_run_matches_recount(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_random") == 0);
    s_make_ids();
    const char *env = getenv("PX_ACT_RANDOM_EVENTS");
    const char *tenv = getenv("PX_ACT_RANDOM_THREADS");
    int total = env ? atoi(env) : 50000;
    int nthreads = tenv ? atoi(tenv) : 4;
    if (nthreads < 1 || nthreads > 16) {
        nthreads = 4;
    }
    s_worker_t w[16];
    pthread_t th[16];
    int64_t t0 = px_clock_us();
    for (int i = 0; i < nthreads; i++) {
        px_status_t st;
        px_rpc_client_opts_t o = {.caller = "activation-test"};
        w[i] = (s_worker_t){
            .no = i, .rng = 0x1234567ULL * (uint64_t)(i + 1), .events = total / nthreads};
        w[i].client = px_rpc_client_new(F.proc.endpoint, &o, &st);
        w[i].keys = calloc(60000, 24);
        PX_REQUIRE(w[i].client && w[i].keys);
    }
    for (int i = 0; i < nthreads; i++) {
        PX_REQUIRE(pthread_create(&th[i], NULL, s_worker, &w[i]) == 0);
    }
    long long recorded = 0;
    int sent = 0, batches = 0, retries = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failures) {
            fprintf(stderr, "client %d: %d failures, first: %s\n", i, w[i].failures,
                    w[i].first_failure);
        }
        PX_CHECK_INT_EQ(w[i].failures, 0);
        recorded += w[i].recorded;
        sent += w[i].sent;
        batches += w[i].batches;
        retries += w[i].retries;
        px_rpc_client_destroy(&w[i].client);
        free(w[i].keys);
    }
    double secs = (double)(px_clock_us() - t0) / 1e6;
    fprintf(stderr,
            "random: %d events in %d batches (%d retried) from %d clients in %.1f s: "
            "%.0f events/s\n",
            sent, batches, retries, nthreads, secs, sent / secs);

    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events WHERE NOT duplicate"), recorded);
    PX_CHECK(act_sql_int(&F, "SELECT count(*) FROM totals WHERE count > 0") > 0);
    /* Batches in flight at once were counted by different workers into their own rows (so
     * they never waited on each other's row locks); the views below sum them. */
    PX_CHECK(act_sql_int(&F, "SELECT count(DISTINCT shard) FROM totals_shards "
                             "WHERE unit_code = '74'") > 1);
    /* The recount, from the rules: ward-level rows. */
    PX_CHECK_INT_EQ(
        act_sql_int(&F,
                    "WITH owner AS (SELECT DISTINCT ON (campaign_id, citizen_key) campaign_id, "
                    "citizen_key, unit_code FROM events ORDER BY campaign_id, citizen_key, id), "
                    "reach AS (SELECT DISTINCT e.campaign_id, e.citizen_key, s.stage FROM events e "
                    "JOIN (VALUES (1), (2), (3), (4)) AS s(stage) ON s.stage = 1 OR (s.stage = 2 "
                    "AND e.stage IN (2, 3)) OR (s.stage = e.stage AND e.stage IN (3, 4))), "
                    "recount AS (SELECT o.campaign_id, o.unit_code, r.stage, count(*) AS n FROM "
                    "reach r JOIN owner o USING (campaign_id, citizen_key) GROUP BY 1, 2, 3), "
                    "kept AS (SELECT t.campaign_id, t.unit_code, t.stage, t.count FROM totals t "
                    "JOIN units u ON u.code = t.unit_code AND u.level = 3 WHERE t.stage <= 4) "
                    "SELECT count(*) FROM recount r FULL JOIN kept k USING (campaign_id, "
                    "unit_code, stage) WHERE coalesce(r.n, 0) <> coalesce(k.count, 0)"),
        0);
    /* Roll-ups: every district and province row is the sum of its children's. */
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM totals p JOIN units pu ON pu.code = "
                                    "p.unit_code AND pu.level < 3 WHERE p.count <> (SELECT "
                                    "coalesce(sum(c.count), 0) FROM totals c JOIN units u ON "
                                    "u.code = c.unit_code WHERE u.parent_code = p.unit_code AND "
                                    "c.stage = p.stage AND c.campaign_id = p.campaign_id)"),
                    0);
    /* Neighborhood rows never exceed their ward's; daily rows add up to the ward's totals. */
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM totals w WHERE w.unit_code = '25966' "
                                    "AND w.count < (SELECT sum(count) FROM totals n WHERE "
                                    "n.unit_code LIKE '25966-%' AND n.stage = w.stage)"),
                    0);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM totals t JOIN units u ON u.code = "
                                    "t.unit_code AND u.level = 3 WHERE t.stage <= 4 AND t.count "
                                    "<> (SELECT coalesce(sum(d.count), 0) FROM daily d WHERE "
                                    "d.unit_code = t.unit_code AND d.stage = t.stage)"),
                    0);
    /* collected >= approved >= activated everywhere. */
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM (SELECT unit_code, "
                                    "sum(count) FILTER (WHERE stage = 1) c, "
                                    "sum(count) FILTER (WHERE stage = 2) a, "
                                    "sum(count) FILTER (WHERE stage = 3) v FROM totals GROUP BY 1) "
                                    "x WHERE x.c < x.a OR x.a < x.v"),
                    0);
    /* No stored rejection after an activation of the same citizen. */
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events r JOIN events a ON "
                                    "a.citizen_key = r.citizen_key AND a.stage = 3 AND a.id < r.id "
                                    "WHERE r.stage = 4"),
                    0);
    /* Follow-ups: one per citizen and kind, matching the open counts. */
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM follow_ups"),
                    act_sql_int(&F, "SELECT count(DISTINCT (citizen_key, channel)) FROM events "
                                    "WHERE channel IN (2, 3)"));
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT coalesce(sum(count), 0) FROM totals WHERE unit_code "
                                    "= '74' AND stage = 101"),
                    act_sql_int(&F, "SELECT count(*) FROM follow_ups WHERE resolved_at IS NULL"));

    /* No ID number in the database (a full dump) or the service's log. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/lib/postgresql/15/bin/pg_dump --data-only '%s'", F.db_url);
    FILE *dump = popen(cmd, "r");
    PX_REQUIRE(dump);
    size_t len = 0;
    char *text = s_slurp(dump, &len);
    int rc = pclose(dump);
    PX_CHECK_INT_EQ(rc, 0);
    PX_REQUIRE(text);
    PX_CHECK(len > 100000);
    PX_CHECK_INT_EQ(s_ids_in(text, len), 0);
    /* The scan itself works: a number put in the text is found. */
    PX_CHECK_INT_EQ(s_ids_in(s_ids[42], 12), 1);
    free(text);
    FILE *log = fopen(F.log_path, "r");
    PX_REQUIRE(log);
    text = s_slurp(log, &len);
    fclose(log);
    PX_REQUIRE(text);
    PX_CHECK_INT_EQ(s_ids_in(text, len), 0);
    free(text);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static const px_test_case_t s_cases[] = {
    {"random_run_matches_recount", test_random_run_matches_recount},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
