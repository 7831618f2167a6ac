/*
 * demo.c - px-activation-demo: loads the demo targets into a running activation
 * service and records a plausible first weekend of the Thuận An campaign, so
 * that progress and counts show something real.
 *
 *   px-activation-demo [--endpoint tcp://127.0.0.1:7102] [--roster-endpoint tcp://...]
 *                      [--data DIR] [--seed N] [--citizens N] [--targets-only]
 *
 * --targets-only sets the targets and stops: deploy/load-demo.sh sets them before the roster
 * plans the first wave (PlanWave spreads by distance to target), and records the events after
 * (they name the volunteers that plan put on duty).
 *
 * Everything is generated from the seed (a fixed PRNG, no clock, no random
 * device): the same seed gives the same citizens, events and idempotency keys,
 * so a second run records nothing new - every event answers as a duplicate -
 * and running the quickstart twice doubles nothing. Volunteers come from the
 * roster's assignments for the weekend's waves (ListAssignments); without a
 * roster, or with no assignment, the events name no volunteer.
 *
 * ID numbers are synthetic but valid: province of birth 074 (Bình Dương), a
 * century-and-sex digit and a birth year giving an age of 14 to 73, a serial
 * that is a bijection of the citizen's index (no two citizens share a number).
 * They are sent only to the service, which keeps their keyed hash.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/clock.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "phuxanh/rpc.h"

#define S_CAMPAIGN "tn-cuoi-tuan-2023"
#define S_DAYS 2
static const char *const s_days[S_DAYS] = {"2023-07-29", "2023-07-30"};
/* 2023-07-29 00:00 in Viet Nam (UTC+7), in Unix seconds. */
#define S_DAY0_UNIX 1690563600LL
#define S_BATCH 500 /* events per RecordEvents (the service takes up to 1,000) */
#define S_WARDS_MAX 64
#define S_NBH_MAX 512
#define S_VOL_MAX 4096
#define S_LINE_MAX 1024
#define S_CITIZENS_MAX 1000000 /* the serial is 6 digits */
#define S_CALL_TIMEOUT_MS 60000

typedef struct {
    char code[33];
    int target;
} s_ward_t;

typedef struct {
    char code[33], ward[33];
} s_nbh_t;

typedef struct {
    char code[33], ward[33];
    int day;
} s_vol_t;

typedef struct {
    char key[64], id[13], ward[33], nbh[33], vol[33], note[80];
    int stage, channel, venue;
    int64_t at;
} s_event_t;

typedef struct {
    s_ward_t wards[S_WARDS_MAX];
    int nwards;
    s_nbh_t nbhs[S_NBH_MAX];
    int nnbhs;
    s_vol_t vols[S_VOL_MAX];
    int nvols;
} s_world_t;

/* splitmix64: small, fixed, and the same everywhere. */
static uint64_t s_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int s_pick(uint64_t *state, int n)
{
    return (int)(s_next(state) % (uint64_t)n);
}

/* Splits a CSV line (no quoted commas in the demo files) into at most max fields. */
static int s_split(char *line, char **f, int max)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line; n < max;) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c) {
            break;
        }
        *c = '\0';
        p = c + 1;
    }
    return n;
}

static int s_load_csv(const char *dir, s_world_t *w)
{
    char path[512], line[S_LINE_MAX], *f[8];
    snprintf(path, sizeof path, "%s/targets.csv", dir);
    FILE *in = fopen(path, "r");
    if (!in) {
        fprintf(stderr, "demo: cannot open %s\n", path);
        return -1;
    }
    for (int row = 0; fgets(line, sizeof line, in); row++) {
        if (row == 0 || s_split(line, f, 8) < 3 || strcmp(f[0], S_CAMPAIGN) != 0) {
            continue;
        }
        if (w->nwards < S_WARDS_MAX) {
            snprintf(w->wards[w->nwards].code, sizeof w->wards[0].code, "%s", f[1]);
            w->wards[w->nwards++].target = atoi(f[2]);
        }
    }
    fclose(in);
    snprintf(path, sizeof path, "%s/units.csv", dir);
    in = fopen(path, "r");
    if (!in) {
        fprintf(stderr, "demo: cannot open %s\n", path);
        return -1;
    }
    for (int row = 0; fgets(line, sizeof line, in); row++) {
        if (row == 0 || s_split(line, f, 8) < 4 || strcmp(f[2], "neighborhood") != 0) {
            continue;
        }
        if (w->nnbhs < S_NBH_MAX) {
            snprintf(w->nbhs[w->nnbhs].code, sizeof w->nbhs[0].code, "%s", f[0]);
            snprintf(w->nbhs[w->nnbhs++].ward, sizeof w->nbhs[0].ward, "%s", f[3]);
        }
    }
    fclose(in);
    return w->nwards > 0 ? 0 : -1;
}

/* The weekend's assignments, from the roster; none when it cannot answer. */
static void s_load_volunteers(const char *endpoint, px_curve_t *curve, s_world_t *w)
{
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = "px-activation-demo",
                              .connect_wait_ms = 3000,
                              .curve = curve,
                              .server_name = "roster"};
    px_rpc_client_t *roster = px_rpc_client_new(endpoint, &o, &st);
    if (!roster) {
        fprintf(stderr, "demo: no roster client (%s): events without volunteers\n", st.message);
        return;
    }
    for (int d = 0; d < S_DAYS; d++) {
        char token[256] = "";
        do {
            Phuxanh__Roster__V1__ListAssignmentsRequest req =
                PHUXANH__ROSTER__V1__LIST_ASSIGNMENTS_REQUEST__INIT;
            req.campaign_id = S_CAMPAIGN;
            req.day = (char *)s_days[d];
            req.page_size = 1000;
            req.page_token = token;
            ProtobufCMessage *reply = NULL;
            px_rpc_call_opts_t co = {.timeout_ms = 10000, .idempotent = true};
            if (px_rpc_client_call(roster, "/phuxanh.roster.v1.RosterService/ListAssignments",
                                   &req.base,
                                   &phuxanh__roster__v1__list_assignments_response__descriptor,
                                   &reply, &co, &st) != PX_OK) {
                fprintf(stderr, "demo: ListAssignments %s: %s (%s)\n", s_days[d],
                        px_code_name(st.code), st.message);
                break;
            }
            Phuxanh__Roster__V1__ListAssignmentsResponse *r = (void *)reply;
            for (size_t i = 0; i < r->n_assignments && w->nvols < S_VOL_MAX; i++) {
                s_vol_t *v = &w->vols[w->nvols++];
                snprintf(v->code, sizeof v->code, "%s", r->assignments[i]->volunteer_code);
                snprintf(v->ward, sizeof v->ward, "%s", r->assignments[i]->unit_code);
                v->day = d;
            }
            snprintf(token, sizeof token, "%s", r->next_page_token);
            protobuf_c_message_free_unpacked(reply, NULL);
        } while (*token);
    }
    px_rpc_client_destroy(&roster);
    fprintf(stderr, "demo: %d volunteer assignments over the weekend\n", w->nvols);
}

static const char *s_volunteer(uint64_t *rng, const s_world_t *w, const char *ward, int day)
{
    const char *found[S_VOL_MAX];
    int n = 0;
    for (int i = 0; i < w->nvols; i++) {
        if (w->vols[i].day == day && strcmp(w->vols[i].ward, ward) == 0) {
            found[n++] = w->vols[i].code;
        }
    }
    return n ? found[s_pick(rng, n)] : "";
}

static const char *s_neighborhood(uint64_t *rng, const s_world_t *w, const char *ward)
{
    const char *found[S_NBH_MAX];
    int n = 0;
    for (int i = 0; i < w->nnbhs; i++) {
        if (strcmp(w->nbhs[i].ward, ward) == 0) {
            found[n++] = w->nbhs[i].code;
        }
    }
    /* One in eight is recorded without a neighborhood. */
    return n && s_pick(rng, 8) != 0 ? found[s_pick(rng, n)] : "";
}

/* A weighted pick of the wards, by target: bigger wards see more people. */
static int s_ward(uint64_t *rng, const s_world_t *w)
{
    long long total = 0;
    for (int i = 0; i < w->nwards; i++) {
        total += w->wards[i].target > 0 ? w->wards[i].target : 1;
    }
    long long x = (long long)(s_next(rng) % (uint64_t)total);
    for (int i = 0; i < w->nwards; i++) {
        x -= w->wards[i].target > 0 ? w->wards[i].target : 1;
        if (x < 0) {
            return i;
        }
    }
    return w->nwards - 1;
}

/* The citizen's events: collected, then (most) approved, then (many) activated, or rejected. */
static int s_citizen(uint64_t seed, int i, const s_world_t *w, s_event_t *out)
{
    uint64_t rng = seed ^ ((uint64_t)i * 0x2545F4914F6CDD1DULL);
    s_next(&rng);
    int ward = s_ward(&rng, w);
    int day = s_pick(&rng, 100) < 55 ? 0 : 1;
    int64_t t0 = S_DAY0_UNIX + day * 86400LL + 7 * 3600 + 30 * 60 + s_pick(&rng, 9 * 3600);
    int64_t end = S_DAY0_UNIX + S_DAYS * 86400LL - 4 * 3600; /* Sunday 20:00 */
    int birth = 1950 + s_pick(&rng, 59);                     /* 1950..2008: 15 to 73 in 2023 */
    int female = s_pick(&rng, 2);
    int century = (birth >= 2000 ? 2 : 0) + female;
    /* 7919 is prime to 10^6: i -> serial is one to one below a million. */
    unsigned serial = (unsigned)(((uint64_t)i * 7919u + seed) % 1000000u);
    char id[32]; /* 12 digits; the bounds above keep each field to its width */
    snprintf(id, sizeof id, "074%d%02d%06u", century & 3, birth % 100, serial % 1000000u);
    int ch_roll = s_pick(&rng, 100);
    int channel = ch_roll < 74 ? 1 : ch_roll < 88 ? 2 : 3;
    int venue = s_pick(&rng, 100) < 45 ? 1 : 2;
    const char *nbh = s_neighborhood(&rng, w, w->wards[ward].code);
    const char *vol = s_pick(&rng, 100) < 80 ? s_volunteer(&rng, w, w->wards[ward].code, day) : "";
    char note[80] = "";
    if (channel != 1) {
        static const char *const streets[] = {"Nguyễn Văn Tiết", "Đông Nhì", "Phan Đình Phùng",
                                              "Cách Mạng Tháng Tám", "Châu Văn Tiếp"};
        snprintf(note, sizeof note, "%s %d/%d %s", channel == 3 ? "Không có ĐT, nhà" : "Nhà",
                 1 + s_pick(&rng, 200), 1 + s_pick(&rng, 30), streets[s_pick(&rng, 5)]);
    }
    int stages[3], ns = 0;
    stages[ns++] = 1;
    int roll = s_pick(&rng, 100);
    if (roll < 6) {
        stages[ns++] = 4;
    } else if (roll < 78) {
        stages[ns++] = 2;
        if (s_pick(&rng, 100) < 68) {
            stages[ns++] = 3;
        }
    }
    int64_t t = t0;
    for (int k = 0; k < ns; k++) {
        s_event_t *e = &out[k];
        memset(e, 0, sizeof *e);
        snprintf(e->key, sizeof e->key, "demo-%" PRIu64 "-%d-%d", seed, i, stages[k]);
        snprintf(e->id, sizeof e->id, "%.12s", id);
        snprintf(e->ward, sizeof e->ward, "%s", w->wards[ward].code);
        snprintf(e->nbh, sizeof e->nbh, "%s", nbh);
        snprintf(e->vol, sizeof e->vol, "%s", vol);
        snprintf(e->note, sizeof e->note, "%s", note);
        e->stage = stages[k];
        e->channel = channel;
        e->venue = venue;
        if (k > 0) {
            t += 10 * 60 + s_pick(&rng, 6 * 3600); /* approval, activation: later that day */
            t = t > end ? end - s_pick(&rng, 600) : t;
            if ((t - S_DAY0_UNIX) / 86400 != day) {
                /* Past midnight the volunteer is off duty (the service would refuse the
                 * event as naming one not on duty that day): it names nobody. */
                e->vol[0] = '\0';
            }
        }
        e->at = t;
    }
    return ns;
}

static int s_event_cmp(const void *a, const void *b)
{
    const s_event_t *x = a, *y = b;
    if (x->at != y->at) {
        return x->at < y->at ? -1 : 1;
    }
    return strcmp(x->key, y->key);
}

static int s_set_targets(px_rpc_client_t *act, const s_world_t *w)
{
    Phuxanh__Activation__V1__Target t[S_WARDS_MAX], *tp[S_WARDS_MAX];
    for (int i = 0; i < w->nwards; i++) {
        phuxanh__activation__v1__target__init(&t[i]);
        t[i].campaign_id = S_CAMPAIGN;
        t[i].unit_code = (char *)w->wards[i].code;
        t[i].target = w->wards[i].target;
        tp[i] = &t[i];
    }
    Phuxanh__Activation__V1__SetTargetsRequest req =
        PHUXANH__ACTIVATION__V1__SET_TARGETS_REQUEST__INIT;
    req.targets = tp;
    req.n_targets = (size_t)w->nwards;
    ProtobufCMessage *reply = NULL;
    px_status_t st;
    px_rpc_call_opts_t o = {.timeout_ms = S_CALL_TIMEOUT_MS, .idempotent = true};
    if (px_rpc_client_call(act, "/phuxanh.activation.v1.ActivationService/SetTargets", &req.base,
                           &phuxanh__activation__v1__set_targets_response__descriptor, &reply, &o,
                           &st) != PX_OK) {
        fprintf(stderr, "demo: SetTargets: %s (%s)\n", px_code_name(st.code), st.message);
        return -1;
    }
    Phuxanh__Activation__V1__SetTargetsResponse *r = (void *)reply;
    printf("demo: targets: %d inserted, %d updated, %d unchanged, %zu refused\n", r->inserted,
           r->updated, r->unchanged, r->n_errors);
    for (size_t i = 0; i < r->n_errors && i < 5; i++) {
        fprintf(stderr, "demo: target row %d: %s: %s\n", r->errors[i]->index, r->errors[i]->field,
                r->errors[i]->message);
    }
    int rc = r->committed ? 0 : -1;
    protobuf_c_message_free_unpacked(reply, NULL);
    return rc;
}

/* Records ev[0..n) in batches; adds to the three counters. */
static int s_record(px_rpc_client_t *act, const s_event_t *ev, size_t n, long long sum[3])
{
    Phuxanh__Activation__V1__ActivationEvent e[S_BATCH], *ep[S_BATCH];
    Google__Protobuf__Timestamp ts[S_BATCH];
    for (size_t off = 0; off < n; off += S_BATCH) {
        size_t m = n - off < S_BATCH ? n - off : S_BATCH;
        for (size_t k = 0; k < m; k++) {
            const s_event_t *x = &ev[off + k];
            phuxanh__activation__v1__activation_event__init(&e[k]);
            google__protobuf__timestamp__init(&ts[k]);
            ts[k].seconds = x->at;
            e[k].idempotency_key = (char *)x->key;
            e[k].campaign_id = S_CAMPAIGN;
            e[k].citizen_id = (char *)x->id;
            e[k].unit_code = (char *)x->ward;
            e[k].neighborhood_code = (char *)x->nbh;
            e[k].volunteer_code = (char *)x->vol;
            e[k].stage = x->stage;
            e[k].channel = x->channel;
            e[k].venue = x->venue;
            e[k].occurred_at = &ts[k];
            e[k].note = (char *)x->note;
            e[k].consent = true;
            ep[k] = &e[k];
        }
        Phuxanh__Activation__V1__RecordEventsRequest req =
            PHUXANH__ACTIVATION__V1__RECORD_EVENTS_REQUEST__INIT;
        req.events = ep;
        req.n_events = m;
        ProtobufCMessage *reply = NULL;
        px_status_t st;
        px_rpc_call_opts_t o = {.timeout_ms = S_CALL_TIMEOUT_MS, .idempotent = true};
        if (px_rpc_client_call(act, "/phuxanh.activation.v1.ActivationService/RecordEvents",
                               &req.base,
                               &phuxanh__activation__v1__record_events_response__descriptor, &reply,
                               &o, &st) != PX_OK) {
            fprintf(stderr, "demo: RecordEvents: %s (%s)\n", px_code_name(st.code), st.message);
            return -1;
        }
        Phuxanh__Activation__V1__RecordEventsResponse *r = (void *)reply;
        sum[0] += r->recorded;
        sum[1] += r->duplicates;
        /* The first few refusals, with their reasons: enough to see what went wrong. */
        for (size_t k = 0; k < r->n_results; k++) {
            if (r->results[k]->code != 0 && sum[2]++ < 5) {
                fprintf(stderr, "demo: event %s refused: %s\n", ev[off + k].key,
                        r->results[k]->message);
            }
        }
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    return 0;
}

static void s_usage(void)
{
    fprintf(stderr, "usage: px-activation-demo [--endpoint EP] [--roster-endpoint EP] "
                    "[--data DIR] [--seed N] [--citizens N] [--targets-only]\n");
}

int main(int argc, char **argv)
{
    const char *endpoint = "tcp://127.0.0.1:7102", *roster = "", *dir = "../shared/data/thuan-an";
    uint64_t seed = 20230729;
    long citizens = 3000;
    bool targets_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--targets-only") == 0) {
            targets_only = true;
            continue;
        }
        if (!v) {
            s_usage();
            return 2;
        }
        if (strcmp(a, "--endpoint") == 0) {
            endpoint = v;
        } else if (strcmp(a, "--roster-endpoint") == 0) {
            roster = v;
        } else if (strcmp(a, "--data") == 0) {
            dir = v;
        } else if (strcmp(a, "--seed") == 0) {
            seed = strtoull(v, NULL, 10);
        } else if (strcmp(a, "--citizens") == 0) {
            citizens = strtol(v, NULL, 10);
        } else {
            s_usage();
            return 2;
        }
        i++;
    }
    if (citizens < 1 || citizens > S_CITIZENS_MAX) {
        fprintf(stderr, "demo: --citizens: 1 to %d\n", S_CITIZENS_MAX);
        return 2;
    }
    int rc = 1;
    s_world_t *w = calloc(1, sizeof *w);
    s_event_t *ev = calloc((size_t)citizens * 3, sizeof *ev);
    px_rpc_client_t *act = NULL;
    px_curve_t *curve = NULL;
    px_status_t st;
    if (!w || !ev) {
        fprintf(stderr, "demo: out of memory\n");
        goto done;
    }
    if (px_curve_from_env(NULL, &curve, &st) != PX_OK) {
        fprintf(stderr, "demo: %s\n", st.message);
        goto done;
    }
    if (s_load_csv(dir, w) != 0) {
        fprintf(stderr, "demo: no targets for %s under %s\n", S_CAMPAIGN, dir);
        goto done;
    }
    if (*roster) {
        s_load_volunteers(roster, curve, w);
    }
    size_t n = 0;
    for (long i = 0; i < citizens; i++) {
        n += (size_t)s_citizen(seed, (int)i, w, &ev[n]);
    }
    qsort(ev, n, sizeof *ev, s_event_cmp);
    px_rpc_client_opts_t o = {.caller = "px-activation-demo",
                              .connect_wait_ms = 5000,
                              .curve = curve,
                              .server_name = "activation"};
    act = px_rpc_client_new(endpoint, &o, &st);
    if (!act) {
        fprintf(stderr, "demo: %s\n", st.message);
        goto done;
    }
    if (s_set_targets(act, w) != 0) {
        goto done;
    }
    if (targets_only) {
        printf("demo: targets set\n");
        rc = 0;
        goto done;
    }
    long long sum[3] = {0, 0, 0};
    if (s_record(act, ev, n, sum) != 0) {
        goto done;
    }
    printf("demo: citizens=%ld events=%zu recorded=%lld duplicates=%lld refused=%lld\n", citizens,
           n, sum[0], sum[1], sum[2]);
    rc = sum[2] == 0 ? 0 : 1;
done:
    px_rpc_client_destroy(&act);
    px_curve_destroy(&curve);
    free(ev);
    free(w);
    return rc;
}
