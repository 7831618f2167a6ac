/*
 * events.c - RecordEvents: the citizen state machine and the counts.
 *
 * A batch goes through five steps, and the number of database round trips is
 * the same for 1 event as for 1,000:
 *
 *  1. validate each event alone (fields, consent, the ID number, the note);
 *  2. ask the roster, once each, for a campaign or units the caches do not
 *     know (GetCampaign, GetUnits) and whether the named volunteers were on
 *     duty (CheckDuty) - before the transaction, so no lock is held while
 *     waiting on the network, and within one 2 s budget for all three;
 *  3. in one transaction: take advisory locks on every citizen and every
 *     idempotency key of the batch in one sorted statement (so two batches
 *     touching the same citizen - even one not yet stored - serialize, and
 *     never deadlock), read the keys already taken and the citizens' rows
 *     (FOR UPDATE, in key order);
 *  4. run the state machine in C, event by event in request order, folding
 *     every change into one delta per counter row (totals at every level of
 *     the tree, daily rows);
 *  5. write everything in one statement (s_write_all: unnest of arrays, one
 *     data-modifying CTE per table, counter rows in key order in the worker's
 *     shard), then COMMIT - and only then answer.
 *
 * Counting rules (API.md): counts are of distinct citizens per campaign. The
 * citizen row remembers, for each stage, when it was first reached - ever; a
 * stage is counted when that goes from NULL to a time, so each stage is
 * counted at most once per citizen whatever the order or the repeats. Stages
 * move forward collected > approved > activated, a later one implying the
 * earlier ones; rejected ends a cycle (and implies collected: an application
 * was taken to be rejected); a forward event after a rejection starts the next
 * cycle. Rejected after activated is impossible (FAILED_PRECONDITION). All
 * counts go to the ward that first recorded the citizen.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "phuxanh/clock.h"
#include "phuxanh/hash.h"
#include "phuxanh/pbutil.h"
#include "phuxanh/text.h"

typedef Phuxanh__Activation__V1__ActivationEvent event_t;

#define S_COLLECTED 1
#define S_APPROVED 2
#define S_ACTIVATED 3
#define S_REJECTED 4
#define S_CH_VOLUNTEER_PHONE 2
#define S_CH_NO_PHONE 3
/* Levels of the tree a count is written to: neighborhood, ward, district, province. */
#define S_CHAIN_MAX 6

/* ---------------------------------------------------------------- statements */

static const px_db_stmt_t s_lock = {
    "act_ev_lock",
    "SELECT count(pg_advisory_xact_lock(k)) FROM "
    "(SELECT DISTINCT k FROM unnest($1::bigint[]) AS k ORDER BY k) s",
};

static const px_db_stmt_t s_taken = {
    "act_ev_taken",
    "SELECT idempotency_key, message, volunteer_verified FROM events "
    "WHERE idempotency_key = ANY($1::text[])",
};

static const px_db_stmt_t s_citizens_get = {
    "act_ev_citizens_get",
    "SELECT c.campaign_id, encode(c.citizen_key, 'hex'), c.unit_code, c.neighborhood_code, "
    "c.cycle, c.stage, (extract(epoch FROM c.collected_at) * 1000000)::bigint, "
    "(extract(epoch FROM c.approved_at) * 1000000)::bigint, "
    "(extract(epoch FROM c.activated_at) * 1000000)::bigint, "
    "(extract(epoch FROM c.rejected_at) * 1000000)::bigint, c.volunteer_code, c.channel, "
    "c.follow_up_kinds "
    "FROM citizens c JOIN unnest($1::text[], $2::text[]) AS k(camp, hk) "
    "ON c.campaign_id = k.camp AND c.citizen_key = decode(k.hk, 'hex') "
    "ORDER BY c.campaign_id, c.citizen_key FOR UPDATE OF c",
};

/* The whole write phase in one statement (one round trip): the events as received, the
 * citizens' new state, the counter deltas into this worker's shard (rows in key order, so
 * that two writers of one shard never wait on each other in a cycle) and the follow-ups
 * opened. The parts touch different tables and none reads another's rows, so running them
 * as data-modifying CTEs of one statement - all to completion, on one snapshot - is the same
 * as running them one after another. An empty array writes nothing.
 * $1 recorded_by, $2 request_id, $3 shard; $4..$19 events, $20..$33 citizens, $34..$37
 * totals, $38..$44 daily, $45..$52 follow-ups (S_W_* below). */
static const px_db_stmt_t s_write_all = {
    "act_ev_write",
    "WITH ev AS (INSERT INTO events (idempotency_key, campaign_id, citizen_key, unit_code, "
    "neighborhood_code, volunteer_code, stage, channel, venue, occurred_at, note, recorded_by, "
    "request_id, cycle, volunteer_verified, duty_verdict, message, duplicate) "
    "SELECT k, c, decode(h, 'hex'), u, nb, v, s, ch, ve, "
    "timestamptz 'epoch' + t * interval '1 microsecond', no, $1, $2, cy, vv, dv, m, d "
    "FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], "
    "$10::smallint[], $11::smallint[], $12::smallint[], $13::bigint[], $14::text[], "
    "$15::int[], $16::bool[], $17::smallint[], $18::text[], $19::bool[]) "
    "AS x(k, c, h, u, nb, v, s, ch, ve, t, no, cy, vv, dv, m, d)), "
    "cit AS (INSERT INTO citizens (campaign_id, citizen_key, last3, unit_code, "
    "neighborhood_code, cycle, stage, collected_at, approved_at, activated_at, rejected_at, "
    "volunteer_code, channel, follow_up_kinds) "
    "SELECT c, decode(h, 'hex'), l3, u, nb, cy, st, "
    "timestamptz 'epoch' + a1 * interval '1 microsecond', "
    "timestamptz 'epoch' + a2 * interval '1 microsecond', "
    "timestamptz 'epoch' + a3 * interval '1 microsecond', "
    "timestamptz 'epoch' + a4 * interval '1 microsecond', v, ch, fk "
    "FROM unnest($20::text[], $21::text[], $22::text[], $23::text[], $24::text[], $25::int[], "
    "$26::smallint[], $27::bigint[], $28::bigint[], $29::bigint[], $30::bigint[], $31::text[], "
    "$32::smallint[], $33::smallint[]) "
    "AS x(c, h, l3, u, nb, cy, st, a1, a2, a3, a4, v, ch, fk) ORDER BY c, h "
    "ON CONFLICT (campaign_id, citizen_key) DO UPDATE SET cycle = EXCLUDED.cycle, "
    "stage = EXCLUDED.stage, collected_at = EXCLUDED.collected_at, "
    "approved_at = EXCLUDED.approved_at, activated_at = EXCLUDED.activated_at, "
    "rejected_at = EXCLUDED.rejected_at, volunteer_code = EXCLUDED.volunteer_code, "
    "channel = EXCLUDED.channel, follow_up_kinds = EXCLUDED.follow_up_kinds, "
    "updated_at = now()), "
    "tot AS (INSERT INTO totals_shards (campaign_id, unit_code, stage, shard, count) "
    "SELECT c, u, s, $3::smallint, d FROM unnest($34::text[], $35::text[], $36::smallint[], "
    "$37::int[]) AS x(c, u, s, d) ORDER BY c, u, s "
    "ON CONFLICT (campaign_id, unit_code, stage, shard) DO UPDATE SET count = "
    "totals_shards.count + EXCLUDED.count), "
    "dly AS (INSERT INTO daily_shards (campaign_id, unit_code, day, stage, channel, "
    "volunteer_code, shard, count) "
    "SELECT c, u, dy, s, ch, v, $3::smallint, d FROM unnest($38::text[], $39::text[], "
    "$40::date[], $41::smallint[], $42::smallint[], $43::text[], $44::int[]) "
    "AS x(c, u, dy, s, ch, v, d) ORDER BY c, u, dy, s, ch, v "
    "ON CONFLICT (campaign_id, unit_code, day, stage, channel, volunteer_code, shard) "
    "DO UPDATE SET count = daily_shards.count + EXCLUDED.count), "
    "fu AS (INSERT INTO follow_ups (campaign_id, citizen_key, kind, unit_code, "
    "neighborhood_code, volunteer_code, note, last3) "
    "SELECT c, decode(h, 'hex'), k, u, nb, v, no, l3 FROM unnest($45::text[], $46::text[], "
    "$47::smallint[], $48::text[], $49::text[], $50::text[], $51::text[], $52::text[]) "
    "AS x(c, h, k, u, nb, v, no, l3)) "
    "SELECT 1",
};

/* Where each part's arrays start in s_batch_t.w (the statement's $4 is w[0]). */
#define S_W_EV 0   /* 16 arrays */
#define S_W_CIT 16 /* 14 */
#define S_W_TOT 30 /* 4 */
#define S_W_DAY 34 /* 7 */
#define S_W_N 41   /* then the 8 follow-up arrays, s_batch_t.fu */

/* ---------------------------------------------------------------- working state */

/* One citizen of the batch, as loaded and as changed by its events. */
typedef struct {
    const char *campaign;
    char keyhex[2 * ACT_HMAC_BYTES + 1];
    char last3[4];
    bool exists, touched;
    char unit[ACT_CODE_MAX + 1], nbh[ACT_CODE_MAX + 1];
    int cycle, stage;
    int64_t at[5]; /* first time each stage was reached, ever; 0: never */
    char volunteer[ACT_CODE_MAX + 1];
    int channel, fu_kinds;
} s_cit_t;

/* One event of the batch. */
typedef struct {
    const event_t *ev;
    int code;
    const char *msg;
    bool dup, verified, valid, stored;
    int verdict; /* DutyVerdict; 0 when not asked or not answered */
    bool key_ok;
    char keyhex[2 * ACT_HMAC_BYTES + 1];
    char last3[4];
    int64_t at_us;
    int32_t day;
    int cit;      /* index into the citizens, -1 when invalid */
    int prev_key; /* previous event of the batch with the same idempotency key, -1 */
    int cycle;
} s_item_t;

/* A counter delta before folding. */
typedef struct {
    const char *campaign;
    char unit[ACT_CODE_MAX + 1];
    int stage;
    int32_t day; /* daily rows only */
    int channel;
    const char *volunteer;
    int delta;
} s_delta_t;

typedef struct {
    s_delta_t *v;
    size_t n, cap;
    bool oom;
} s_deltas_t;

static void s_delta_push(s_deltas_t *d, const s_delta_t *x)
{
    if (d->oom) {
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        s_delta_t *v = realloc(d->v, cap * sizeof *v);
        if (!v) {
            d->oom = true;
            return;
        }
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = *x;
}

static int s_delta_cmp(const void *a, const void *b)
{
    const s_delta_t *x = a, *y = b;
    int c = strcmp(x->campaign, y->campaign);
    if (c == 0) {
        c = strcmp(x->unit, y->unit);
    }
    if (c == 0) {
        c = (x->day > y->day) - (x->day < y->day);
    }
    if (c == 0) {
        c = x->stage - y->stage;
    }
    if (c == 0) {
        c = x->channel - y->channel;
    }
    if (c == 0) {
        c = strcmp(x->volunteer, y->volunteer);
    }
    return c;
}

/* Sorts and merges equal keys: one delta per counter row. */
static void s_fold(s_deltas_t *d)
{
    if (d->n == 0) {
        return;
    }
    qsort(d->v, d->n, sizeof *d->v, s_delta_cmp);
    size_t w = 0;
    for (size_t r = 1; r < d->n; r++) {
        if (s_delta_cmp(&d->v[w], &d->v[r]) == 0) {
            d->v[w].delta += d->v[r].delta;
        } else {
            d->v[++w] = d->v[r];
        }
    }
    d->n = w + 1;
}

typedef struct {
    px_rpc_ctx_t *ctx;
    act_t *act;
    s_item_t *items;
    size_t n;
    s_cit_t *cits;
    size_t ncits;
    s_deltas_t totals, daily;
    act_arr_t fu[8];    /* follow-up columns */
    act_arr_t w[S_W_N]; /* the other columns of the write statement (S_W_*) */
} s_batch_t;

/* ---------------------------------------------------------------- step 1: validate */

static bool s_key_ok(const char *k)
{
    size_t n = k ? strnlen(k, ACT_KEY_MAX + 1) : 0;
    if (n == 0 || n > ACT_KEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (k[i] < 0x21 || k[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* Folds ASCII and the Vietnamese letters of U+1EA0..U+1EF9 (upper even, lower odd) to lower
 * case, so that "MẬT KHẨU" matches "mật khẩu". */
static void s_fold_lower(const char *s, char *out, size_t cap)
{
    size_t i = 0, o = 0;
    while (s[i] && o + 1 < cap) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') {
            out[o++] = (char)(c + 32);
            i++;
        } else if (c == 0xE1 && (unsigned char)s[i + 1] >= 0xBA &&
                   (unsigned char)s[i + 1] <= 0xBB && s[i + 2] && o + 3 < cap) {
            unsigned cp = 0x1E00u | (((unsigned char)s[i + 1] & 0x3Fu) << 6) |
                          ((unsigned char)s[i + 2] & 0x3Fu);
            if (cp >= 0x1EA0 && cp <= 0x1EF9 && cp % 2 == 0) {
                cp++;
            }
            out[o++] = (char)0xE1;
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
            i += 3;
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = '\0';
}

/* No password is ever accepted, nor an ID number (12 digits in a row). */
static const char *s_note_problem(const char *note)
{
    static const char *const words[] = {"mật khẩu", "mat khau", "password", "pass:", "mk:"};
    char low[ACT_NOTE_MAX * 4 + 1];
    s_fold_lower(note, low, sizeof low);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strstr(low, words[i])) {
            return "note: must not contain a password";
        }
    }
    int run = 0;
    for (const char *p = note; *p; p++) {
        run = (*p >= '0' && *p <= '9') ? run + 1 : 0;
        if (run >= 12) {
            return "note: must not contain an ID number";
        }
    }
    return NULL;
}

/* Refuses one event; returns false for `return s_refuse(...)` in the checks. */
static bool s_refuse(s_batch_t *b, s_item_t *it, px_code_t code, const char *msg)
{
    it->code = code;
    it->msg = px_rpc_ctx_strdup(b->ctx, msg);
    it->valid = false;
    return false;
}

static bool s_validate(s_batch_t *b, s_item_t *it, int64_t now_us)
{
    const event_t *ev = it->ev;
    char msg[200];
    px_status_t st;
    it->valid = true;
    it->cit = -1;
    it->key_ok = s_key_ok(ev->idempotency_key);
    if (!it->key_ok) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT,
                        "idempotency_key: must be 1 to 128 printable ASCII characters");
    }
    if (!ev->consent) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT,
                        "consent: the citizen's consent to this recording is required");
    }
    if (!act_code_ok(ev->campaign_id, ACT_CAMPAIGN_MAX)) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT,
                        "campaign_id: must be 1 to 64 ASCII letters, digits, '-', '_' or '.'");
    }
    if (!ev->occurred_at) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT, "occurred_at: must be set");
    }
    if (!px_ts_to_us(ev->occurred_at, &it->at_us)) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT,
                        "occurred_at: not a valid time (seconds in 0001-01-01 to 9999-12-31, "
                        "nanos 0 to 999999999)");
    }
    if (it->at_us > now_us + ACT_FUTURE_SKEW_US) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT, "occurred_at: must not be in the future");
    }
    if (it->at_us < 946684800LL * 1000000) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT, "occurred_at: must be in 2000 or later");
    }
    it->day = px_day_of_unix(it->at_us / 1000000);
    char day[11];
    px_day_format(it->day, day);
    if (!act_citizen_id_check(ev->citizen_id, atoi(day), msg, sizeof msg)) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT, msg);
    }
    /* A 12-digit run is an ID number in the wrong field: refused here, never sent on. */
    if (act_echo(ev->unit_code) != ev->unit_code) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT, "unit_code: must be a unit code");
    }
    if (act_echo(ev->neighborhood_code) != ev->neighborhood_code) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT, "neighborhood_code: must be a unit code");
    }
    if (act_echo(ev->volunteer_code) != ev->volunteer_code) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT, "volunteer_code: must be a volunteer code");
    }
    if (!act_code_ok(ev->unit_code, ACT_CODE_MAX)) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT,
                        "unit_code: must be 1 to 32 ASCII letters, digits or '-'");
    }
    if (*ev->neighborhood_code && !act_code_ok(ev->neighborhood_code, ACT_CODE_MAX)) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT,
                        "neighborhood_code: must be 1 to 32 ASCII letters, digits or '-'");
    }
    if (*ev->volunteer_code && !act_code_ok(ev->volunteer_code, ACT_CODE_MAX)) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT,
                        "volunteer_code: must be 1 to 32 ASCII letters, digits or '-'");
    }
    /* UNSPECIFIED (0) is "not said", which an event may not leave: its counts are kept per
     * stage and channel, and the channel decides its follow-up. A number past the enum's last
     * value is another mistake and says so. */
    if (ev->stage == 0) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT, "stage: must be set (STAGE_UNSPECIFIED)");
    }
    if (ev->stage < S_COLLECTED || ev->stage > S_REJECTED) {
        snprintf(msg, sizeof msg, "stage: %d is not a stage", (int)ev->stage);
        return s_refuse(b, it, PX_INVALID_ARGUMENT, msg);
    }
    if (ev->channel == 0) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT, "channel: must be set (CHANNEL_UNSPECIFIED)");
    }
    if (ev->channel < 1 || ev->channel > 3) {
        snprintf(msg, sizeof msg, "channel: %d is not a channel", (int)ev->channel);
        return s_refuse(b, it, PX_INVALID_ARGUMENT, msg);
    }
    if (ev->venue == 0) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT, "venue: must be set (VENUE_UNSPECIFIED)");
    }
    if (ev->venue < 1 || ev->venue > 2) {
        snprintf(msg, sizeof msg, "venue: %d is not a venue", (int)ev->venue);
        return s_refuse(b, it, PX_INVALID_ARGUMENT, msg);
    }
    if (px_text_check("note", ev->note, ACT_NOTE_MAX, false, &st) != PX_OK) {
        return s_refuse(b, it, st.code, st.message);
    }
    const char *bad = s_note_problem(ev->note);
    if (bad) {
        return s_refuse(b, it, PX_INVALID_ARGUMENT, bad);
    }
    unsigned char key[ACT_HMAC_BYTES];
    act_citizen_key(b->act->secret, ev->citizen_id, key);
    act_hex(key, sizeof key, it->keyhex);
    sodium_memzero(key, sizeof key);
    memcpy(it->last3, ev->citizen_id + 9, 3);
    it->last3[3] = '\0';
    return true;
}

/* ---------------------------------------------------------------- step 2: the roster */

/* The campaign of every valid event must be one the roster has. A known campaign is a cache
 * lookup; an unknown one is asked of the roster once (GetCampaign), and every event of the
 * batch naming it gets the same answer. */
static void s_check_campaigns(s_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        s_item_t *it = &b->items[i];
        if (!it->valid) {
            continue;
        }
        px_status_t st;
        const char *id = it->ev->campaign_id;
        if (act_campaigns_known(b->act->campaigns, id)) {
            continue; /* the usual case: one lookup */
        }
        px_code_t rc = act_campaigns_ensure(b->act->campaigns, b->ctx, id, &st);
        if (act_campaigns_known(b->act->campaigns, id)) {
            continue;
        }
        char msg[160];
        if (rc != PX_OK) {
            snprintf(msg, sizeof msg,
                     "campaign_id: the campaign could not be looked up in the roster; retry");
        } else {
            snprintf(msg, sizeof msg, "campaign_id: no campaign \"%s\"", act_echo(id));
        }
        /* Refused here, the later ones are no longer valid and are not asked again. */
        for (size_t j = i; j < b->n; j++) {
            if (b->items[j].valid && strcmp(b->items[j].ev->campaign_id, id) == 0) {
                s_refuse(b, &b->items[j], rc != PX_OK ? PX_UNAVAILABLE : PX_NOT_FOUND, msg);
            }
        }
    }
}

static void s_check_units(s_batch_t *b)
{
    const char **codes = calloc(2 * b->n + 1, sizeof *codes);
    size_t nc = 0;
    px_status_t st;
    if (!codes) {
        for (size_t i = 0; i < b->n; i++) {
            if (b->items[i].valid) {
                s_refuse(b, &b->items[i], PX_RESOURCE_EXHAUSTED, "out of memory");
            }
        }
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i].valid) {
            codes[nc++] = b->items[i].ev->unit_code;
            codes[nc++] = b->items[i].ev->neighborhood_code;
        }
    }
    px_code_t rc = act_units_ensure(b->act->units, b->ctx, codes, nc, &st);
    free(codes);
    for (size_t i = 0; i < b->n; i++) {
        s_item_t *it = &b->items[i];
        if (!it->valid) {
            continue;
        }
        act_unit_t u, nb;
        char msg[160];
        if (!act_units_get(b->act->units, it->ev->unit_code, &u)) {
            if (rc != PX_OK) {
                s_refuse(b, it, PX_UNAVAILABLE,
                         "unit_code: the unit tree could not be read from the roster; retry");
            } else {
                snprintf(msg, sizeof msg, "unit_code: no unit \"%s\"", act_echo(it->ev->unit_code));
                s_refuse(b, it, PX_NOT_FOUND, msg);
            }
            continue;
        }
        if (u.level != PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_WARD) {
            snprintf(msg, sizeof msg, "unit_code: \"%s\" is not a ward or commune",
                     act_echo(it->ev->unit_code));
            s_refuse(b, it, PX_INVALID_ARGUMENT, msg);
            continue;
        }
        if (!*it->ev->neighborhood_code) {
            continue;
        }
        if (!act_units_get(b->act->units, it->ev->neighborhood_code, &nb)) {
            if (rc != PX_OK) {
                s_refuse(b, it, PX_UNAVAILABLE,
                         "neighborhood_code: the unit tree could not be read from the roster; "
                         "retry");
            } else {
                snprintf(msg, sizeof msg, "neighborhood_code: no unit \"%s\"",
                         act_echo(it->ev->neighborhood_code));
                s_refuse(b, it, PX_NOT_FOUND, msg);
            }
            continue;
        }
        if (strcmp(nb.parent, u.code) != 0) {
            s_refuse(b, it, PX_INVALID_ARGUMENT,
                     "neighborhood_code: not a neighborhood of unit_code");
        }
    }
}

/* Why the roster says a known volunteer was not on duty; NULL when on duty or not a refusal. */
static const char *s_not_on_duty(int verdict)
{
    switch (verdict) {
    case PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_NOT_ASSIGNED:
        return "not assigned that day";
    case PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_OTHER_UNIT:
        return "assigned to another ward that day";
    case PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_NO_SHOW:
        return "marked as a no-show that day";
    default:
        return NULL;
    }
}

/* One CheckDuty call for every event naming a volunteer. A volunteer the roster does not know
 * is refused NOT_FOUND, and one it knows but who was not on duty there that day is refused
 * FAILED_PRECONDITION (the proto's rule: the client corrects the volunteer or leaves it out,
 * and resends). When the roster cannot answer, the events are taken unverified rather than
 * lost - a weekend's work must not wait on the roster - and the background pass asks again
 * later; what it learns then is stored as the event's duty_verdict for review, since a
 * counted event cannot be taken back. */
static void s_check_duty(s_batch_t *b)
{
    size_t nq = 0;
    for (size_t i = 0; i < b->n; i++) {
        s_item_t *it = &b->items[i];
        it->verified = !*it->ev->volunteer_code;
        nq += it->valid && *it->ev->volunteer_code;
    }
    px_rpc_client_t *roster = px_rpc_ctx_peer(b->ctx, "roster");
    if (nq == 0 || !roster) {
        return;
    }
    Phuxanh__Roster__V1__DutyQuery *qs = px_rpc_ctx_alloc(b->ctx, nq * sizeof *qs);
    Phuxanh__Roster__V1__DutyQuery **qp = px_rpc_ctx_alloc(b->ctx, nq * sizeof *qp);
    Google__Protobuf__Timestamp *ts = px_rpc_ctx_alloc(b->ctx, nq * sizeof *ts);
    int *which = px_rpc_ctx_alloc(b->ctx, nq * sizeof *which);
    if (!qs || !qp || !ts || !which) {
        return;
    }
    size_t q = 0;
    for (size_t i = 0; i < b->n; i++) {
        s_item_t *it = &b->items[i];
        if (!it->valid || !*it->ev->volunteer_code) {
            continue;
        }
        phuxanh__roster__v1__duty_query__init(&qs[q]);
        google__protobuf__timestamp__init(&ts[q]);
        ts[q].seconds = it->ev->occurred_at->seconds;
        ts[q].nanos = it->ev->occurred_at->nanos;
        qs[q].volunteer_code = it->ev->volunteer_code;
        qs[q].unit_code =
            *it->ev->neighborhood_code ? it->ev->neighborhood_code : it->ev->unit_code;
        qs[q].time = &ts[q];
        qs[q].campaign_id = it->ev->campaign_id;
        qp[q] = &qs[q];
        which[q++] = (int)i;
    }
    Phuxanh__Roster__V1__CheckDutyRequest req = PHUXANH__ROSTER__V1__CHECK_DUTY_REQUEST__INIT;
    req.queries = qp;
    req.n_queries = q;
    req.verdict_only = true; /* the assignment itself is never read here */
    px_rpc_call_opts_t o = {
        .parent = b->ctx,
        .deadline_us = act_roster_deadline(b->ctx),
        .idempotent = true,
    };
    ProtobufCMessage *reply = NULL;
    px_status_t st;
    if (px_rpc_client_call(roster, "/phuxanh.roster.v1.RosterService/CheckDuty", &req.base,
                           &phuxanh__roster__v1__check_duty_response__descriptor, &reply, &o,
                           &st) != PX_OK) {
        px_log_emit(px_rpc_ctx_log(b->ctx), PX_LOG_WARN, "ACT-ROSTER-DUTY",
                    "duty not checked: events taken unverified",
                    PX_LOG_FIELDS(PX_LS("code", px_code_name(st.code)), PX_LI("events", (int64_t)q),
                                  PX_LS("request_id", px_rpc_ctx_request_id(b->ctx))));
        return;
    }
    Phuxanh__Roster__V1__CheckDutyResponse *r = (Phuxanh__Roster__V1__CheckDutyResponse *)reply;
    for (size_t k = 0; k < q && k < r->n_answers; k++) {
        s_item_t *it = &b->items[which[k]];
        it->verdict = r->answers[k]->verdict;
        it->verified = r->answers[k]->on_duty;
        const char *why = s_not_on_duty(it->verdict);
        char msg[200];
        if (it->verdict == PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_UNKNOWN_VOLUNTEER) {
            snprintf(msg, sizeof msg, "volunteer_code: no volunteer \"%s\"",
                     act_echo(it->ev->volunteer_code));
            s_refuse(b, it, PX_NOT_FOUND, msg);
        } else if (why) {
            char day[11];
            px_day_format(it->day, day);
            snprintf(msg, sizeof msg, "volunteer_code: \"%s\" was not on duty at \"%s\" on %s (%s)",
                     act_echo(it->ev->volunteer_code), act_echo(qs[k].unit_code), day, why);
            s_refuse(b, it, PX_FAILED_PRECONDITION, msg);
        }
    }
    protobuf_c_message_free_unpacked(reply, NULL);
}

/* ---------------------------------------------------------------- step 3: citizens */

static int s_cit_cmp(const void *a, const void *b)
{
    const s_cit_t *x = a, *y = b;
    int c = strcmp(x->campaign, y->campaign);
    return c ? c : strcmp(x->keyhex, y->keyhex);
}

static s_cit_t *s_cit_find(s_batch_t *b, const char *campaign, const char *keyhex)
{
    s_cit_t k;
    k.campaign = campaign;
    memcpy(k.keyhex, keyhex, sizeof k.keyhex);
    return bsearch(&k, b->cits, b->ncits, sizeof *b->cits, s_cit_cmp);
}

/* The distinct citizens of the valid events, sorted (the lock and load order). */
static bool s_collect_citizens(s_batch_t *b)
{
    b->cits = calloc(b->n + 1, sizeof *b->cits);
    if (!b->cits) {
        return false;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i].valid) {
            s_cit_t *c = &b->cits[b->ncits++];
            c->campaign = b->items[i].ev->campaign_id;
            memcpy(c->keyhex, b->items[i].keyhex, sizeof c->keyhex);
            memcpy(c->last3, b->items[i].last3, sizeof c->last3);
        }
    }
    qsort(b->cits, b->ncits, sizeof *b->cits, s_cit_cmp);
    size_t w = 0;
    for (size_t r = 0; r < b->ncits; r++) {
        if (w == 0 || s_cit_cmp(&b->cits[w - 1], &b->cits[r]) != 0) {
            b->cits[w++] = b->cits[r];
        }
    }
    b->ncits = w;
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i].valid) {
            b->items[i].cit =
                (int)(s_cit_find(b, b->items[i].ev->campaign_id, b->items[i].keyhex) - b->cits);
        }
    }
    return true;
}

/* The parameters of the batch's reads (round trip 1), built before it and kept until its
 * results are read. */
typedef struct {
    act_arr_t lock_ids, taken_keys, cit_camps, cit_keys;
} s_reads_t;

/* Lock ids: one per citizen (campaign and key) and one per idempotency key, so a batch
 * serializes with any other touching the same citizen or reusing one of its keys. Keys
 * already taken (before this batch), and the batch's citizens as stored. */
static void s_reads_build(s_batch_t *b, s_reads_t *r)
{
    act_arr_init(&r->lock_ids);
    act_arr_init(&r->taken_keys);
    act_arr_init(&r->cit_camps);
    act_arr_init(&r->cit_keys);
    for (size_t i = 0; i < b->ncits; i++) {
        uint64_t h = px_hash_str(b->cits[i].keyhex, px_hash_str(b->cits[i].campaign, PX_HASH_SEED));
        act_arr_addf(&r->lock_ids, "%lld", (long long)h);
        act_arr_add(&r->cit_camps, b->cits[i].campaign);
        act_arr_add(&r->cit_keys, b->cits[i].keyhex);
    }
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i].key_ok) {
            uint64_t h = px_hash_str(b->items[i].ev->idempotency_key, 0x9e3779b97f4a7c15ULL);
            act_arr_addf(&r->lock_ids, "%lld", (long long)h);
            act_arr_add(&r->taken_keys, b->items[i].ev->idempotency_key);
        }
    }
}

static void s_reads_free(s_reads_t *r)
{
    act_arr_free(&r->lock_ids);
    act_arr_free(&r->taken_keys);
    act_arr_free(&r->cit_camps);
    act_arr_free(&r->cit_keys);
}

static void s_apply_citizens(s_batch_t *b, PGresult *res)
{
    for (int r = 0; r < PQntuples(res); r++) {
        s_cit_t *c = s_cit_find(b, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
        if (!c) {
            continue;
        }
        c->exists = true;
        px_utf8_copy(c->unit, sizeof c->unit, PQgetvalue(res, r, 2));
        px_utf8_copy(c->nbh, sizeof c->nbh, PQgetvalue(res, r, 3));
        c->cycle = atoi(PQgetvalue(res, r, 4));
        c->stage = atoi(PQgetvalue(res, r, 5));
        for (int s = 1; s <= 4; s++) {
            c->at[s] =
                PQgetisnull(res, r, 5 + s) ? 0 : strtoll(PQgetvalue(res, r, 5 + s), NULL, 10);
        }
        px_utf8_copy(c->volunteer, sizeof c->volunteer, PQgetvalue(res, r, 10));
        c->channel = atoi(PQgetvalue(res, r, 11));
        c->fu_kinds = atoi(PQgetvalue(res, r, 12));
    }
}

/* Keys already taken: their events answer as first answered. */
static void s_apply_taken(s_batch_t *b, PGresult *res)
{
    for (int r = 0; r < PQntuples(res); r++) {
        const char *k = PQgetvalue(res, r, 0);
        for (size_t i = 0; i < b->n; i++) {
            s_item_t *it = &b->items[i];
            if (it->key_ok && strcmp(it->ev->idempotency_key, k) == 0) {
                /* Whatever else it says, it is that same event (the proto's rule). */
                it->code = PX_OK;
                it->msg = px_rpc_ctx_strdup(b->ctx, PQgetvalue(res, r, 1));
                it->dup = true;
                it->verified = PQgetvalue(res, r, 2)[0] == 't';
                it->valid = false;
                it->cit = -1;
                it->key_ok = false; /* settled: not a key to repeat within the batch */
            }
        }
    }
}

/* Round trip 1: BEGIN, the locks, the keys taken and the citizens, in one pipeline. */
static px_code_t s_read_phase(s_batch_t *b, px_status_t *st)
{
    s_reads_t r;
    s_reads_build(b, &r);
    const char *lock = act_arr_end(&r.lock_ids), *taken = act_arr_end(&r.taken_keys);
    const char *cit[2] = {act_arr_end(&r.cit_camps), act_arr_end(&r.cit_keys)};
    px_code_t code;
    if (!lock || !taken || !cit[0] || !cit[1]) {
        code = px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    } else {
        px_db_step_t steps[] = {
            {.sql = "BEGIN"},
            {.stmt = &s_lock, .nparams = 1, .params = &lock},
            {.stmt = &s_taken, .nparams = 1, .params = &taken, .want_res = true},
            {.stmt = &s_citizens_get, .nparams = 2, .params = cit, .want_res = true},
        };
        code = px_db_pipeline(px_rpc_ctx_db(b->ctx), steps, 4, st);
        if (code == PX_OK) {
            s_apply_taken(b, steps[2].res);
            s_apply_citizens(b, steps[3].res);
        }
        PQclear(steps[2].res);
        PQclear(steps[3].res);
    }
    s_reads_free(&r);
    return code;
}

/* ---------------------------------------------------------------- step 4: decide */

static void s_count(s_batch_t *b, const s_cit_t *c, const s_item_t *it, int stage)
{
    char chain[S_CHAIN_MAX][ACT_CODE_MAX + 1];
    size_t n = act_units_chain(b->act->units, c->unit, c->nbh, chain, S_CHAIN_MAX);
    for (size_t k = 0; k < n; k++) {
        s_delta_t d = {.campaign = c->campaign, .stage = stage, .volunteer = "", .delta = 1};
        memcpy(d.unit, chain[k], sizeof d.unit);
        s_delta_push(&b->totals, &d);
    }
    if (stage == ACT_TOTAL_FOLLOW_UPS) {
        return;
    }
    s_delta_t d = {.campaign = c->campaign,
                   .stage = stage,
                   .day = it->day,
                   .channel = it->ev->channel,
                   .volunteer = it->ev->volunteer_code,
                   .delta = 1};
    memcpy(d.unit, c->unit, sizeof d.unit);
    s_delta_push(&b->daily, &d);
}

static void s_reach(s_batch_t *b, s_cit_t *c, const s_item_t *it, int stage)
{
    if (c->at[stage] == 0) {
        c->at[stage] = it->at_us;
        s_count(b, c, it, stage);
    }
}

static void s_follow_up(s_batch_t *b, s_cit_t *c, const s_item_t *it)
{
    int kind = it->ev->channel == S_CH_NO_PHONE          ? 1
               : it->ev->channel == S_CH_VOLUNTEER_PHONE ? 2
                                                         : 0;
    if (kind == 0 || (c->fu_kinds & kind)) {
        return;
    }
    c->fu_kinds |= kind;
    act_arr_add(&b->fu[0], c->campaign);
    act_arr_add(&b->fu[1], c->keyhex);
    act_arr_addf(&b->fu[2], "%d", kind);
    act_arr_add(&b->fu[3], c->unit);
    act_arr_add(&b->fu[4], c->nbh);
    act_arr_add(&b->fu[5], act_echo(it->ev->volunteer_code));
    act_arr_add(&b->fu[6], it->ev->note);
    act_arr_add(&b->fu[7], c->last3);
    s_count(b, c, it, ACT_TOTAL_FOLLOW_UPS);
}

/* The state machine for one event; sets its answer. */
static void s_decide(s_batch_t *b, s_item_t *it)
{
    s_cit_t *c = &b->cits[it->cit];
    const event_t *ev = it->ev;
    if (!c->exists && !c->touched) {
        /* The first ward to record a citizen owns them. */
        snprintf(c->unit, sizeof c->unit, "%s", ev->unit_code);
        snprintf(c->nbh, sizeof c->nbh, "%s", ev->neighborhood_code);
        c->cycle = 1;
        c->stage = 0;
    }
    int s = (int)ev->stage;
    if (s == S_REJECTED) {
        if (c->stage == S_ACTIVATED) {
            s_refuse(b, it, PX_FAILED_PRECONDITION,
                     "stage: a rejection after the activation is not possible");
            return;
        }
        if (c->stage == S_REJECTED) {
            it->dup = true;
            it->msg = "stage: already rejected in this cycle";
        } else {
            s_reach(b, c, it, S_COLLECTED);
            s_reach(b, c, it, S_REJECTED);
            c->stage = S_REJECTED;
        }
    } else {
        if (c->stage == S_REJECTED) {
            c->cycle++;
            c->stage = 0;
        }
        if (s <= c->stage) {
            it->dup = true;
            it->msg = "stage: already reached";
        } else {
            for (int k = c->stage + 1; k <= s; k++) {
                s_reach(b, c, it, k);
            }
            c->stage = s;
            snprintf(c->volunteer, sizeof c->volunteer, "%s", ev->volunteer_code);
            c->channel = ev->channel;
        }
    }
    c->touched = true;
    it->code = PX_OK;
    if (!it->msg) {
        it->msg = "";
    }
    it->stored = true;
    it->cycle = c->cycle;
    s_follow_up(b, c, it);
}

/* ---------------------------------------------------------------- step 5: write */

/* The events stored, in request order. */
static void s_fill_events(s_batch_t *b)
{
    act_arr_t *a = &b->w[S_W_EV];
    for (size_t i = 0; i < b->n; i++) {
        const s_item_t *it = &b->items[i];
        if (!it->stored) {
            continue;
        }
        const event_t *ev = it->ev;
        act_arr_add(&a[0], ev->idempotency_key);
        act_arr_add(&a[1], ev->campaign_id);
        act_arr_add(&a[2], it->keyhex);
        act_arr_add(&a[3], ev->unit_code);
        act_arr_add(&a[4], ev->neighborhood_code);
        act_arr_add(&a[5], ev->volunteer_code);
        act_arr_addf(&a[6], "%d", ev->stage);
        act_arr_addf(&a[7], "%d", ev->channel);
        act_arr_addf(&a[8], "%d", ev->venue);
        act_arr_addf(&a[9], "%lld", (long long)it->at_us);
        act_arr_add(&a[10], ev->note);
        act_arr_addf(&a[11], "%d", it->cycle);
        act_arr_add(&a[12], it->verified ? "t" : "f");
        act_arr_addf(&a[13], "%d", it->verdict);
        act_arr_add(&a[14], it->msg);
        act_arr_add(&a[15], it->dup ? "t" : "f");
    }
}

/* The citizens the batch changed, with their new state. */
static void s_fill_citizens(s_batch_t *b)
{
    act_arr_t *a = &b->w[S_W_CIT];
    for (size_t i = 0; i < b->ncits; i++) {
        const s_cit_t *c = &b->cits[i];
        if (!c->touched) {
            continue;
        }
        act_arr_add(&a[0], c->campaign);
        act_arr_add(&a[1], c->keyhex);
        act_arr_add(&a[2], c->last3);
        act_arr_add(&a[3], c->unit);
        act_arr_add(&a[4], c->nbh);
        act_arr_addf(&a[5], "%d", c->cycle);
        act_arr_addf(&a[6], "%d", c->stage);
        for (int s = 1; s <= 4; s++) {
            if (c->at[s]) {
                act_arr_addf(&a[6 + s], "%lld", (long long)c->at[s]);
            } else {
                act_arr_add(&a[6 + s], NULL);
            }
        }
        act_arr_add(&a[11], c->volunteer);
        act_arr_addf(&a[12], "%d", c->channel);
        act_arr_addf(&a[13], "%d", c->fu_kinds);
    }
}

/* The counter deltas, folded to one per row. */
static void s_fill_counts(s_batch_t *b)
{
    s_fold(&b->totals);
    s_fold(&b->daily);
    act_arr_t *t = &b->w[S_W_TOT], *d = &b->w[S_W_DAY];
    for (size_t i = 0; i < b->totals.n; i++) {
        const s_delta_t *x = &b->totals.v[i];
        act_arr_add(&t[0], x->campaign);
        act_arr_add(&t[1], x->unit);
        act_arr_addf(&t[2], "%d", x->stage);
        act_arr_addf(&t[3], "%d", x->delta);
    }
    for (size_t i = 0; i < b->daily.n; i++) {
        const s_delta_t *x = &b->daily.v[i];
        char day[11];
        px_day_format(x->day, day);
        act_arr_add(&d[0], x->campaign);
        act_arr_add(&d[1], x->unit);
        act_arr_add(&d[2], day);
        act_arr_addf(&d[3], "%d", x->stage);
        act_arr_addf(&d[4], "%d", x->channel);
        act_arr_add(&d[5], x->volunteer);
        act_arr_addf(&d[6], "%d", x->delta);
    }
}

/* Round trip 2: everything the batch writes in one statement (s_write_all), its audit row
 * and COMMIT, in one pipeline. */
static px_code_t s_write_phase(s_batch_t *b, px_status_t *st)
{
    if (b->totals.oom || b->daily.oom) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    s_fill_events(b);
    s_fill_citizens(b);
    s_fill_counts(b);
    char shard[16];
    snprintf(shard, sizeof shard, "%d", act_shard(b->ctx));
    const char *p[3 + S_W_N + 8] = {px_rpc_ctx_caller(b->ctx), px_rpc_ctx_request_id(b->ctx),
                                    shard};
    bool oom = false;
    for (int k = 0; k < S_W_N; k++) {
        p[3 + k] = act_arr_end(&b->w[k]);
        oom = oom || !p[3 + k];
    }
    for (int k = 0; k < 8; k++) {
        p[3 + S_W_N + k] = act_arr_end(&b->fu[k]);
        oom = oom || !p[3 + S_W_N + k];
    }
    if (oom) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    int rec = 0, dup = 0, ref = 0;
    for (size_t i = 0; i < b->n; i++) {
        rec += b->items[i].code == PX_OK && !b->items[i].dup;
        dup += b->items[i].code == PX_OK && b->items[i].dup;
        ref += b->items[i].code != PX_OK;
    }
    char detail[160];
    snprintf(detail, sizeof detail,
             "{\"events\":%zu,\"recorded\":%d,\"duplicates\":%d,"
             "\"refused\":%d}",
             b->n, rec, dup, ref);
    const char *audit[5];
    px_db_step_t steps[3] = {
        {.stmt = &s_write_all, .nparams = 3 + S_W_N + 8, .params = p},
        {0},
        {.sql = "COMMIT"},
    };
    act_audit_step(b->ctx, detail, audit, &steps[1]);
    return px_db_pipeline(px_rpc_ctx_db(b->ctx), steps, 3, st);
}

/* ---------------------------------------------------------------- the handler */

/* Two round trips: the reads the decisions need (s_read_phase), then the writes with the
 * audit row and the commit (s_write_phase); what lies between is decided here, in memory. */
static px_code_t s_transaction(s_batch_t *b, px_status_t *st)
{
    px_db_t *db = px_rpc_ctx_db(b->ctx);
    if (s_read_phase(b, st) != PX_OK) {
        px_db_rollback(db);
        return st->code;
    }
    for (size_t i = 0; i < b->n; i++) {
        s_item_t *it = &b->items[i];
        if (it->code == PX_OK && it->dup) {
            continue; /* a key taken before this batch */
        }
        /* A key repeated within the batch: the same event as its first taken occurrence. */
        int p = it->key_ok ? it->prev_key : -1;
        while (p >= 0 && !b->items[p].stored) {
            p = b->items[p].prev_key;
        }
        if (p >= 0) {
            it->code = PX_OK;
            it->msg = b->items[p].msg;
            it->dup = true;
            it->verified = b->items[p].verified;
            it->valid = false;
            continue;
        }
        if (it->valid) {
            s_decide(b, it);
        }
    }
    if (s_write_phase(b, st) != PX_OK) {
        px_db_rollback(db);
        return st->code;
    }
    return PX_OK;
}

/* After the commit, the counter rows the batch changed go to the live feed (publisher.c),
 * which never blocks nor fails the call. */
static void s_publish(s_batch_t *b)
{
    if (!b->act->pub) {
        return;
    }
    act_change_t *ch = malloc((b->totals.n + 1) * sizeof *ch);
    size_t n = 0;
    for (size_t i = 0; i < b->totals.n; i++) {
        const int stage = b->totals.v[i].stage;
        if (b->totals.v[i].delta != 0 && stage >= 1 && stage <= 4) {
            if (ch) {
                ch[n] = (act_change_t){b->totals.v[i].campaign, b->totals.v[i].unit, stage};
            }
            n++;
        }
    }
    if (ch) {
        act_pub_post(b->act->pub, ch, n, px_wall_us());
    } else {
        act_pub_lost(b->act->pub, n); /* their numbers still go, so subscribers see the loss */
    }
    free(ch);
}

static int s_key_order(const void *a, const void *b, void *arg)
{
    const s_item_t *items = arg;
    int x = *(const int *)a, y = *(const int *)b;
    int c = strcmp(items[x].ev->idempotency_key, items[y].ev->idempotency_key);
    return c ? c : x - y;
}

static px_code_t s_record_events(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                 ProtobufCMessage *reply)
{
    const Phuxanh__Activation__V1__RecordEventsRequest *req =
        (const Phuxanh__Activation__V1__RecordEventsRequest *)request;
    Phuxanh__Activation__V1__RecordEventsResponse *resp =
        (Phuxanh__Activation__V1__RecordEventsResponse *)reply;
    if (req->n_events == 0 || req->n_events > ACT_MAX_EVENTS) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "events: must hold 1 to %d events (got %zu)",
                           ACT_MAX_EVENTS, req->n_events);
    }
    s_batch_t b = {.ctx = ctx, .act = px_rpc_ctx_state(ctx), .n = req->n_events};
    for (int k = 0; k < 8; k++) {
        act_arr_init(&b.fu[k]);
    }
    for (int k = 0; k < S_W_N; k++) {
        act_arr_init(&b.w[k]);
    }
    px_code_t code = PX_OK;
    px_status_t st;
    int *order = NULL;
    b.items = px_rpc_ctx_alloc(ctx, b.n * sizeof *b.items);
    if (!b.items) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    int64_t now = px_wall_us();
    for (size_t i = 0; i < b.n; i++) {
        b.items[i].ev = req->events[i];
        b.items[i].prev_key = -1;
        s_validate(&b, &b.items[i], now);
    }
    /* prev_key links each event to the previous one with the same key. */
    order = malloc(b.n * sizeof *order);
    if (!order) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    size_t nk = 0;
    for (size_t i = 0; i < b.n; i++) {
        if (b.items[i].key_ok) {
            order[nk++] = (int)i;
        }
    }
    qsort_r(order, nk, sizeof *order, s_key_order, b.items);
    for (size_t k = 1; k < nk; k++) {
        if (strcmp(b.items[order[k]].ev->idempotency_key,
                   b.items[order[k - 1]].ev->idempotency_key) == 0) {
            b.items[order[k]].prev_key = order[k - 1];
        }
    }
    s_check_campaigns(&b);
    s_check_units(&b);
    s_check_duty(&b);
    if (!s_collect_citizens(&b)) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    if (s_transaction(&b, &st) != PX_OK) {
        code = act_db_fail(ctx, &st);
        goto done;
    }
    s_publish(&b);
    resp->results = px_rpc_ctx_alloc(ctx, b.n * sizeof *resp->results);
    Phuxanh__Activation__V1__EventResult *rs = px_rpc_ctx_alloc(ctx, b.n * sizeof *rs);
    if (!resp->results || !rs) {
        code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    resp->n_results = b.n;
    for (size_t i = 0; i < b.n; i++) {
        const s_item_t *it = &b.items[i];
        phuxanh__activation__v1__event_result__init(&rs[i]);
        rs[i].index = (int32_t)i;
        rs[i].code = it->code;
        rs[i].message = (char *)(it->msg ? it->msg : "");
        rs[i].duplicate = it->code == PX_OK && it->dup;
        rs[i].volunteer_verified = it->code == PX_OK && it->verified;
        resp->results[i] = &rs[i];
        resp->recorded += it->code == PX_OK && !it->dup;
        resp->duplicates += it->code == PX_OK && it->dup;
        resp->refused += it->code != PX_OK;
    }
    const act_t *act = px_rpc_ctx_state(ctx);
    px_metrics_add(act->m_events_recorded, resp->recorded);
    px_metrics_add(act->m_events_duplicate, resp->duplicates);
    px_metrics_add(act->m_events_refused, resp->refused);
done:
    free(order);
    free(b.cits);
    free(b.totals.v);
    free(b.daily.v);
    for (int k = 0; k < 8; k++) {
        act_arr_free(&b.fu[k]);
    }
    for (int k = 0; k < S_W_N; k++) {
        act_arr_free(&b.w[k]);
    }
    return code;
}

const px_rpc_method_t act_events_methods[] = {
    {"RecordEvents", s_record_events},
};
const size_t act_events_methods_count = sizeof act_events_methods / sizeof act_events_methods[0];
