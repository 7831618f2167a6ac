/*
 * demo.c - pxctl demo events: records a plausible first weekend of the Thuận An
 * campaign in the activation service, so that progress and counts show
 * something real. deploy/load-demo.sh runs it after `pxctl import` has loaded
 * the demo's CSV files (targets included) and the first wave has been planned,
 * so the events can name the volunteers that plan put on duty.
 *
 *   pxctl demo events [--data DIR] [--seed N] [--citizens N]
 *
 * Everything is generated from the seed (a fixed PRNG, no clock, no random
 * device): the same seed gives the same citizens, events and idempotency keys,
 * so a second run records nothing new - every event answers as a duplicate -
 * and running the quickstart twice doubles nothing. The wards and their
 * weights are the demo's targets.csv, the neighborhoods its units.csv (read
 * with import's CSV reader); the volunteers come from the roster's assignments
 * for the weekend's waves (ListAssignments) - with no roster, or no assignment,
 * the events name no volunteer.
 *
 * ID numbers are synthetic but valid: province of birth 074 (Bình Dương), a
 * century-and-sex digit and a birth year giving an age of 14 to 73, a serial
 * that is a bijection of the citizen's index (no two citizens share a number).
 * They are sent only to the service, which keeps their keyed hash; they are
 * never printed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "demo.h"
#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "pxctl.h"

#define S_CAMPAIGN "tn-cuoi-tuan-2023"
#define S_DAYS 2
static const char *const s_days[S_DAYS] = {"2023-07-29", "2023-07-30"};
/* 2023-07-29 00:00 in Viet Nam (UTC+7), in Unix seconds. */
#define S_DAY0_UNIX 1690563600LL
#define S_BATCH 500 /* events per RecordEvents (the service takes up to 1,000) */
#define S_WARDS_MAX 64
#define S_NBH_MAX 512
#define S_VOL_MAX 4096
#define S_CITIZENS_MAX 1000000 /* the serial is 6 digits */
/* A call recording 500 events. */
#define S_CALL_TIMEOUT_MS 60000

static const pxctl_option_t s_options[] = {
    {{"data", "PX_DEMO_DATA", "../shared/data/thuan-an",
      "the demo's directory (targets.csv and units.csv are read)"},
     0,
     0},
    {{"seed", "PX_DEMO_SEED", "20230729", "the generator's seed: the same seed, the same events"},
     0,
     0},
    {{"citizens", "PX_DEMO_CITIZENS", "3000", "how many citizens come (1 to 1000000)"}, 0, 0},
    {{NULL, NULL, NULL, NULL}, 0, 0},
};

static const pxctl_command_t s_cmd = {
    .name = "demo events",
    .synopsis = NULL,
    .summary = "record a generated first weekend of the Thuận An demo (activation events)",
    .details = "Run after `pxctl import` of the demo's files and the first wave's PlanWave\n"
               "(deploy/load-demo.sh does all three). Running it again records nothing new.",
    .options = s_options,
    .common = PXCTL_COMMON_SERVICES,
    .min_args = 0,
    .max_args = 0,
};

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

/* Calls fn for each record of dir/name after its header, with the header's columns for the
 * names given (NULL-terminated; -1 when absent). 0, or -1 with the reason printed. */
static int s_read(const char *dir, const char *name, const char *const *cols,
                  void (*fn)(s_world_t *, const pxctl_csv_rec_t *, const int *), s_world_t *w)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    pxctl_csv_t *csv = pxctl_csv_open(path);
    pxctl_csv_rec_t *rec = malloc(sizeof *rec);
    int rc = -1, idx[8];
    if (!csv || !rec) {
        pxctl_err(s_cmd.name, "%s: cannot read", path);
        goto done;
    }
    if (pxctl_csv_next(csv, rec) != 1 || rec->err[0]) {
        pxctl_err(s_cmd.name, "%s: no header row", path);
        goto done;
    }
    for (int c = 0; cols[c] && c < 8; c++) {
        idx[c] = -1;
        for (size_t i = 0; i < rec->n; i++) {
            if (strcmp(rec->fields[i], cols[c]) == 0) {
                idx[c] = (int)i;
            }
        }
        if (idx[c] < 0) {
            pxctl_err(s_cmd.name, "%s: no column %s", path, cols[c]);
            goto done;
        }
    }
    int got;
    while ((got = pxctl_csv_next(csv, rec)) == 1) {
        if (!rec->err[0]) {
            fn(w, rec, idx);
        }
    }
    if (got < 0) {
        pxctl_err(s_cmd.name, "%s:%d: %s", path, rec->line, rec->err);
        goto done;
    }
    rc = 0;
done:
    free(rec);
    pxctl_csv_destroy(&csv);
    return rc;
}

static const char *s_col(const pxctl_csv_rec_t *rec, int i)
{
    return i >= 0 && (size_t)i < rec->n ? rec->fields[i] : "";
}

static void s_add_ward(s_world_t *w, const pxctl_csv_rec_t *rec, const int *idx)
{
    if (strcmp(s_col(rec, idx[0]), S_CAMPAIGN) == 0 && w->nwards < S_WARDS_MAX) {
        snprintf(w->wards[w->nwards].code, sizeof w->wards[0].code, "%s", s_col(rec, idx[1]));
        w->wards[w->nwards++].target = atoi(s_col(rec, idx[2]));
    }
}

static void s_add_nbh(s_world_t *w, const pxctl_csv_rec_t *rec, const int *idx)
{
    if (strcmp(s_col(rec, idx[1]), "neighborhood") == 0 && w->nnbhs < S_NBH_MAX) {
        snprintf(w->nbhs[w->nnbhs].code, sizeof w->nbhs[0].code, "%s", s_col(rec, idx[0]));
        snprintf(w->nbhs[w->nnbhs++].ward, sizeof w->nbhs[0].ward, "%s", s_col(rec, idx[2]));
    }
}

static int s_load_csv(const char *dir, s_world_t *w)
{
    static const char *const tcols[] = {"campaign", "unit_code", "target_activated", NULL};
    static const char *const ucols[] = {"code", "level", "parent_code", NULL};
    if (s_read(dir, "targets.csv", tcols, s_add_ward, w) != 0 ||
        s_read(dir, "units.csv", ucols, s_add_nbh, w) != 0) {
        return -1;
    }
    return w->nwards > 0 ? 0 : -1;
}

/* The weekend's assignments, from the roster; none when it cannot answer. */
static void s_load_volunteers(const px_config_t *cfg, px_curve_t *curve, s_world_t *w)
{
    const char *eps = px_config_get(cfg, "roster-endpoints");
    if (!eps || !*eps) {
        return;
    }
    px_rpc_client_t *roster =
        pxctl_client_new(cfg, curve, &pxctl_services[PXCTL_SVC_ROSTER], NULL, 0, s_cmd.name);
    if (!roster) {
        fprintf(stderr, "demo: no roster client: events without volunteers\n");
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
            if (pxctl_call(roster, cfg, s_cmd.name,
                           "/phuxanh.roster.v1.RosterService/ListAssignments", &req.base,
                           &phuxanh__roster__v1__list_assignments_response__descriptor, true,
                           &reply) != PXCTL_EXIT_OK) {
                fprintf(stderr, "demo: %s: events without volunteers that day\n", s_days[d]);
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

/* Records ev[0..n) in batches; adds to the three counters. */
static int s_record(px_rpc_client_t *act, const px_config_t *cfg, const s_event_t *ev, size_t n,
                    long long sum[3])
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
        int rc = pxctl_call(
            act, cfg, s_cmd.name, "/phuxanh.activation.v1.ActivationService/RecordEvents",
            &req.base, &phuxanh__activation__v1__record_events_response__descriptor, true, &reply);
        if (rc != PXCTL_EXIT_OK) {
            return rc;
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
    return PXCTL_EXIT_OK;
}

static int s_events(int argc, char **argv)
{
    pxctl_args_t args;
    int rc = PXCTL_EXIT_FAILED;
    if (!pxctl_args_parse(&s_cmd, argc, argv, &args, &rc)) {
        return rc;
    }
    int64_t seed = 0, citizens = 0;
    s_world_t *w = NULL;
    s_event_t *ev = NULL;
    px_rpc_client_t *act = NULL;
    if (!pxctl_int(&s_cmd, args.cfg, "seed", 0, INT64_MAX, &seed) ||
        !pxctl_int(&s_cmd, args.cfg, "citizens", 1, S_CITIZENS_MAX, &citizens)) {
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    w = calloc(1, sizeof *w);
    ev = calloc((size_t)citizens * 3, sizeof *ev);
    if (!w || !ev) {
        pxctl_err(s_cmd.name, "out of memory");
        goto done;
    }
    const char *dir = px_config_get(args.cfg, "data");
    if (s_load_csv(dir, w) != 0) {
        pxctl_err(s_cmd.name, "no targets for %s under %s", S_CAMPAIGN, dir);
        goto done;
    }
    s_load_volunteers(args.cfg, args.curve, w);
    size_t n = 0;
    for (long i = 0; i < citizens; i++) {
        n += (size_t)s_citizen((uint64_t)seed, (int)i, w, &ev[n]);
    }
    qsort(ev, n, sizeof *ev, s_event_cmp);
    act = pxctl_client_new(args.cfg, args.curve, &pxctl_services[PXCTL_SVC_ACTIVATION], NULL, 0,
                           s_cmd.name);
    if (!act) {
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    long long sum[3] = {0, 0, 0};
    if ((rc = s_record(act, args.cfg, ev, n, sum)) != PXCTL_EXIT_OK) {
        goto done;
    }
    printf("demo: citizens=%lld events=%zu recorded=%lld duplicates=%lld refused=%lld\n",
           (long long)citizens, n, sum[0], sum[1], sum[2]);
    rc = sum[2] == 0 ? PXCTL_EXIT_OK : PXCTL_EXIT_FAILED;
done:
    px_rpc_client_destroy(&act);
    free(ev);
    free(w);
    pxctl_args_free(&args);
    return rc;
}

int pxctl_demo_main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "events") == 0) {
        return s_events(argc - 1, argv + 1);
    }
    bool help = strcmp(what, "--help") == 0 || strcmp(what, "-h") == 0;
    FILE *out = help ? stdout : stderr;
    if (!help) {
        pxctl_err("demo", "%s%.32s%s", *what ? "no action '" : "missing action: events", what,
                  *what ? "' (events)" : "");
    }
    fprintf(out, "\nUsage:\n  pxctl %s  %s\n\n`pxctl demo events --help` for more.\n", s_cmd.name,
            s_cmd.summary);
    return help ? PXCTL_EXIT_OK : PXCTL_EXIT_USAGE;
}
