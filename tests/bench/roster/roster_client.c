/*
 * roster_client.c - the roster benchmark's measuring side (tests/bench/roster/run.sh).
 *
 *   bench-roster upsert    --endpoint EP --db-url URL [--rounds N]
 *   bench-roster checkduty --endpoint EP --db-url URL --campaign ID [--rounds N]
 *
 * Each mode times px-roster over ZeroMQ (one px_rpc_client, one call in flight) against a
 * direct libpq client doing the same work on the same database in the same run, and prints
 * one line of key=value figures: p50 and min over the rounds, in milliseconds. The two sides
 * take turns round by round, so that the tables growing, the WAL and the checkpoints weigh on
 * both alike; each side first makes a few untimed calls, because the first calls on a
 * database connection prepare the statement, load unaccent's rules into the backend and run
 * on plans made for their parameters rather than the cached one (S_DUTY_WARMUPS).
 *
 * upsert (5 rounds by default): UpsertVolunteers with 10,000 volunteers in one call, against
 *   one INSERT ... SELECT FROM unnest(arrays) ... ON CONFLICT (code) DO UPDATE of the same
 *   10,000 rows, one statement and so one transaction. Two kinds of round, `rounds` of each:
 *     insert: 10,000 codes never seen before (a unit's roster imported for the first time);
 *             the headline figure (upsert10k);
 *     update: the first insert round's codes again with every row changed (name, rank,
 *             department, role and phone), so the ON CONFLICT branch rewrites all 10,000.
 *   Ours writes codes P<round><5 digits>, raw Q<round><5 digits>, into the one volunteers
 *   table. The raw statement stores the same values in the same columns (names, rank,
 *   department and role in NFC, name_folded by px_fold, phone, updated_at; active left to its
 *   default as the service leaves it when the request has none) but skips what only the
 *   service does: the per-row checks in C, the join that keeps a stored `active`, the filter
 *   that leaves unchanged rows alone, and the audit row with its BEGIN and COMMIT round trips.
 *
 * checkduty (20 rounds by default): CheckDuty with 1,000 queries in one call, against one
 *   SELECT answering the same 1,000 queries: unnest WITH ORDINALITY joined to volunteers,
 *   units and the assignments primary key as duty.c does, with the verdict decided by CASE in
 *   SQL where the service decides it in C. The queries are drawn, afresh each round, from the
 *   assignments load.sql put in the database (s_mix gives the shares): on duty at the ward or
 *   at one of its neighborhoods, at another ward, on another day, volunteers never assigned,
 *   unknown volunteers and units. Both sides' verdicts must agree query by query, every round,
 *   or the run fails: the baseline answers the same questions, not easier ones.
 */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "phuxanh/rpc.h"
#include "phuxanh/text.h"

/* The sizes the issue names: a unit's whole roster in one UpsertVolunteers, and one activation
 * batch's worth of duty checks in one CheckDuty. Fixed, because the result keys name them. */
#define S_UPSERT_ROWS 10000
#define S_DUTY_QUERIES 1000
/* Untimed calls on each side before the timed rounds (see the top of the file). CheckDuty
 * takes six: PostgreSQL plans a prepared statement afresh for its first five executions, and
 * that plan, made for 1,000-element arrays, can differ from the cached one (with 20,000
 * volunteers it hashed the whole volunteers table instead of probing its index); from the
 * sixth on, both sides run the cached generic plan, which is what a long-running service runs.
 */
#define S_UPSERT_WARMUPS 2
#define S_UPSERT_WARMUP_ROWS 100
#define S_DUTY_WARMUPS 6
/* --rounds: an upsert round writes 40,000 rows (both sides, both kinds), so 100 is plenty. */
#define S_MAX_ROUNDS 100
/* One call's bound: far above what 10,000 rows take, low enough that a hang fails the run. */
#define S_CALL_TIMEOUT_MS 60000
/* Events happen between 07:00 and 17:00 in Viet Nam: seconds after 00:00 UTC of the day. */
#define S_DAY_SPAN_S (10 * 3600)
/* A unit code the tree does not have. */
#define S_NO_SUCH_UNIT "99999"

static const char *s_upsert_method = "/phuxanh.roster.v1.RosterService/UpsertVolunteers";
static const char *s_duty_method = "/phuxanh.roster.v1.RosterService/CheckDuty";

typedef enum { S_OURS, S_RAW } s_side_t;

/* ---------------------------------------------------------------- shared */

static int s_fail(const char *what, const char *why)
{
    fprintf(stderr, "roster: %s: %s\n", what, why);
    return -1;
}

/* p50 and min of n samples in milliseconds (nearest rank, as every benchmark here). */
static void s_summary(int64_t *samples_ns, size_t n, double *p50_ms, double *min_ms)
{
    px_bench_result_t r = {0};
    px_bench_latency_summarise(&r, samples_ns, n);
    *p50_ms = r.p50_us / 1000.0;
    *min_ms = (double)samples_ns[0] / 1e6; /* sorted by the summary */
}

typedef struct {
    char *p;
    size_t cap;
} s_buf_t;

static int s_buf_reserve(s_buf_t *b, size_t need)
{
    if (need <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/* A PostgreSQL array literal of n strings into b, quoted and escaped as the service's
 * roster_array writes it, so both sides hand the database the same text; a NULL item is SQL
 * NULL. Building it is the direct client's share of serialising, so it is timed. */
static int s_array(s_buf_t *b, const char *const *items, size_t n)
{
    size_t need = 3;
    for (size_t i = 0; i < n; i++) {
        need += items[i] ? 2 * strlen(items[i]) + 3 : 5;
    }
    if (s_buf_reserve(b, need) != 0) {
        return -1;
    }
    char *p = b->p;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }
        if (!items[i]) {
            memcpy(p, "NULL", 4);
            p += 4;
            continue;
        }
        *p++ = '"';
        for (const char *s = items[i]; *s; s++) {
            if (*s == '"' || *s == '\\') {
                *p++ = '\\';
            }
            *p++ = *s;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return 0;
}

static int s_prepare(PGconn *pg, const char *name, const char *sql, int nparams)
{
    PGresult *res = PQprepare(pg, name, sql, nparams, NULL);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : s_fail(name, PQerrorMessage(pg));
    PQclear(res);
    return rc;
}

/* ---------------------------------------------------------------- upsert */

/* Columns of the raw upsert, in its parameters' order. */
enum { S_UP_CODE, S_UP_NAME, S_UP_RANK, S_UP_DEPT, S_UP_ROLE, S_UP_PHONE, S_UP_COLS };

/* What a direct client writes to store what UpsertVolunteers stores (volunteers.c's
 * s_upsert), as one statement: the same normalize() and px_fold() on the way in, the same
 * columns set on conflict, updated_at = now(). Rows go in code order, as the service sorts
 * them (s_vol_make's codes ascend with the row). */
static const char *s_raw_upsert_sql =
    "INSERT INTO volunteers (code, full_name, name_folded, rank, department, union_role,"
    "  phone)"
    " SELECT x.code, n.full_name, px_fold(n.full_name), normalize(x.rank, NFC),"
    "  normalize(x.department, NFC), normalize(x.union_role, NFC), x.phone"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])"
    "  AS x(code, full_name, rank, department, union_role, phone)"
    " CROSS JOIN LATERAL (SELECT normalize(x.full_name, NFC) AS full_name) n"
    " ON CONFLICT (code) DO UPDATE SET full_name = EXCLUDED.full_name,"
    "  name_folded = EXCLUDED.name_folded, rank = EXCLUDED.rank,"
    "  department = EXCLUDED.department, union_role = EXCLUDED.union_role,"
    "  phone = EXCLUDED.phone, updated_at = now()";

/* Names, ranks, departments and roles as ../shared/data/thuan-an/volunteers.csv has them, so
 * NFC and unaccent work on real Vietnamese text. */
static const char *const s_family[] = {"Nguyễn", "Trần", "Lê",    "Phạm", "Hoàng", "Huỳnh",
                                       "Phan",   "Vũ",   "Võ",    "Đặng", "Bùi",   "Đỗ",
                                       "Hồ",     "Ngô",  "Dương", "Lý"};
static const char *const s_middle[] = {"Văn",   "Thị",  "Ngọc", "Thành", "Minh",  "Đức",
                                       "Hoàng", "Quốc", "Hữu",  "Bảo",   "Thanh", "Kim"};
static const char *const s_given[] = {
    "Vy",   "Phúc",  "Nga",  "Phong", "Mai",   "Dũng", "Chi",   "Quân", "Linh", "Lan",
    "Hải",  "Trang", "Minh", "Tuấn",  "Long",  "Khoa", "Hà",    "Yến",  "Tâm",  "Thắng",
    "Hùng", "Đạt",   "Sơn",  "Nam",   "Khánh", "Hạnh", "Trung", "Thảo", "Như",  "Nhi"};
static const char *const s_ranks[] = {"Hạ sĩ",    "Trung sĩ",  "Thượng sĩ", "Thiếu úy",
                                      "Trung úy", "Thượng úy", "Đại úy"};
static const char *const s_depts[] = {"Phòng Tham mưu",
                                      "Phòng Hậu cần",
                                      "Phòng An ninh chính trị nội bộ",
                                      "Phòng Cảnh sát hình sự",
                                      "Phòng Cảnh sát giao thông",
                                      "Phòng Cảnh sát cơ động",
                                      "Phòng Cảnh sát PCCC và CNCH",
                                      "Phòng Cảnh sát quản lý hành chính về trật tự xã hội"};
static const char *const s_roles[] = {
    "Đoàn viên", "Đoàn viên", "Đoàn viên", "Đoàn viên",           "Đoàn viên",
    "Đoàn viên", "Đoàn viên", "Đoàn viên", "Phó Bí thư chi đoàn", "Bí thư chi đoàn"};

#define S_PICK(table, k) ((table)[(size_t)(k) % (sizeof(table) / sizeof((table)[0]))])

typedef struct {
    char code[40]; /* room for any batch and row the format can print */
    char full_name[96];
    const char *rank;
    const char *department;
    const char *union_role;
    char phone[16];
} s_vol_t;

/* Volunteer i of batch `batch` under code letter `letter`, in its `variant`th version: every
 * variant has another phone (so the row differs from the one before) and mostly another
 * name, rank, department and role. Phones are already national ("09xxxxxxxx"), so the
 * service's normalisation leaves them as the raw side stores them. */
static void s_vol_make(s_vol_t *v, char letter, int batch, long i, int variant)
{
    unsigned long k = (unsigned long)i + 7919UL * (unsigned long)variant;
    snprintf(v->code, sizeof v->code, "%c%d%05ld", letter, batch, i);
    snprintf(v->full_name, sizeof v->full_name, "%s %s %s", S_PICK(s_family, k),
             S_PICK(s_middle, k / 16), S_PICK(s_given, k / 3 + k));
    v->rank = S_PICK(s_ranks, k / 5);
    v->department = S_PICK(s_depts, k / 7);
    v->union_role = S_PICK(s_roles, k / 11);
    snprintf(v->phone, sizeof v->phone, "09%08ld", (i * 7919L + variant * 1000003L) % 100000000L);
}

typedef struct {
    px_rpc_client_t *rpc;
    PGconn *pg;
    s_vol_t *vols;
    Phuxanh__Roster__V1__Volunteer *pb;
    Phuxanh__Roster__V1__Volunteer **pbp;
    const char **col; /* S_UP_COLS columns of S_UPSERT_ROWS items each */
    s_buf_t lit[S_UP_COLS];
} s_upsert_t;

static int s_upsert_ours(s_upsert_t *u, size_t n, bool fresh, int64_t *ns)
{
    for (size_t i = 0; i < n; i++) {
        Phuxanh__Roster__V1__Volunteer *p = &u->pb[i];
        phuxanh__roster__v1__volunteer__init(p);
        p->code = u->vols[i].code;
        p->full_name = u->vols[i].full_name;
        p->rank = (char *)u->vols[i].rank;
        p->department = (char *)u->vols[i].department;
        p->union_role = (char *)u->vols[i].union_role;
        p->phone = u->vols[i].phone;
        u->pbp[i] = p;
    }
    Phuxanh__Roster__V1__UpsertVolunteersRequest req =
        PHUXANH__ROSTER__V1__UPSERT_VOLUNTEERS_REQUEST__INIT;
    req.volunteers = u->pbp;
    req.n_volunteers = n;
    px_rpc_call_opts_t o = {.timeout_ms = S_CALL_TIMEOUT_MS};
    ProtobufCMessage *reply = NULL;
    px_status_t st;
    int64_t t0 = px_bench_now_ns();
    px_code_t code = px_rpc_client_call(u->rpc, s_upsert_method, &req.base,
                                        &phuxanh__roster__v1__batch_upsert_response__descriptor,
                                        &reply, &o, &st);
    *ns = px_bench_now_ns() - t0;
    if (code != PX_OK) {
        fprintf(stderr, "roster: UpsertVolunteers: %s (%s)\n", px_code_name(code), st.message);
        return -1;
    }
    const Phuxanh__Roster__V1__BatchUpsertResponse *r = (const void *)reply;
    int32_t want_ins = fresh ? (int32_t)n : 0, want_upd = fresh ? 0 : (int32_t)n;
    int rc = 0;
    if (!r->committed || r->n_errors > 0 || r->inserted != want_ins || r->updated != want_upd) {
        fprintf(stderr,
                "roster: UpsertVolunteers: committed=%d errors=%zu inserted=%d updated=%d, "
                "expected %d inserted and %d updated%s%s\n",
                r->committed, r->n_errors, r->inserted, r->updated, want_ins, want_upd,
                r->n_errors > 0 ? "; first error: " : "",
                r->n_errors > 0 ? r->errors[0]->message : "");
        rc = -1;
    }
    protobuf_c_message_free_unpacked(reply, NULL);
    return rc;
}

static int s_upsert_raw(s_upsert_t *u, size_t n, int64_t *ns)
{
    const char **col = u->col;
    for (size_t i = 0; i < n; i++) {
        col[S_UP_CODE * n + i] = u->vols[i].code;
        col[S_UP_NAME * n + i] = u->vols[i].full_name;
        col[S_UP_RANK * n + i] = u->vols[i].rank;
        col[S_UP_DEPT * n + i] = u->vols[i].department;
        col[S_UP_ROLE * n + i] = u->vols[i].union_role;
        col[S_UP_PHONE * n + i] = u->vols[i].phone;
    }
    const char *params[S_UP_COLS];
    int64_t t0 = px_bench_now_ns();
    for (size_t c = 0; c < S_UP_COLS; c++) {
        if (s_array(&u->lit[c], col + c * n, n) != 0) {
            return s_fail("raw upsert", "out of memory");
        }
        params[c] = u->lit[c].p;
    }
    PGresult *res = PQexecPrepared(u->pg, "bench_upsert", S_UP_COLS, params, NULL, NULL, 0);
    *ns = px_bench_now_ns() - t0;
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = s_fail("raw upsert", PQerrorMessage(u->pg));
    } else if ((size_t)atol(PQcmdTuples(res)) != n) {
        rc = s_fail("raw upsert", "did not write every row");
    }
    PQclear(res);
    return rc;
}

/* One call of `n` rows by `side`: volunteers 0..n of batch `batch` under `letter`, in their
 * `variant`th version (0: a fresh insert, above: an update of every row). */
static int s_upsert_call(s_upsert_t *u, s_side_t side, char letter, int batch, int variant,
                         size_t n, int64_t *ns)
{
    for (size_t i = 0; i < n; i++) {
        s_vol_make(&u->vols[i], letter, batch, (long)i, variant);
    }
    return side == S_OURS ? s_upsert_ours(u, n, variant == 0, ns) : s_upsert_raw(u, n, ns);
}

static int s_upsert_main(px_rpc_client_t *rpc, PGconn *pg, const char *campaign, long rounds)
{
    (void)campaign;
    const size_t n = S_UPSERT_ROWS;
    s_upsert_t u = {.rpc = rpc, .pg = pg};
    /* [kind: insert, update][side] */
    int64_t *samples[2][2] = {{NULL, NULL}, {NULL, NULL}};
    double p50[2][2], min[2][2];
    int rc = -1;
    u.vols = calloc(n, sizeof *u.vols);
    u.pb = calloc(n, sizeof *u.pb);
    u.pbp = calloc(n, sizeof *u.pbp);
    u.col = calloc(S_UP_COLS * n, sizeof *u.col);
    bool oom = !u.vols || !u.pb || !u.pbp || !u.col;
    for (int k = 0; k < 2; k++) {
        for (int s = 0; s < 2; s++) {
            samples[k][s] = calloc((size_t)rounds, sizeof samples[k][s][0]);
            oom = oom || !samples[k][s];
        }
    }
    if (oom) {
        s_fail("upsert", "out of memory");
        goto done;
    }
    if (s_prepare(pg, "bench_upsert", s_raw_upsert_sql, S_UP_COLS) != 0) {
        goto done;
    }
    int64_t ns;
    for (int w = 0; w < S_UPSERT_WARMUPS; w++) {
        if (s_upsert_call(&u, S_OURS, 'W', w, 0, S_UPSERT_WARMUP_ROWS, &ns) != 0 ||
            s_upsert_call(&u, S_RAW, 'X', w, 0, S_UPSERT_WARMUP_ROWS, &ns) != 0) {
            goto done;
        }
    }
    fprintf(stderr, "roster: upsert: %ld insert rounds of %zu rows a side\n", rounds, n);
    for (long r = 0; r < rounds; r++) {
        if (s_upsert_call(&u, S_OURS, 'P', (int)r, 0, n, &samples[0][S_OURS][r]) != 0 ||
            s_upsert_call(&u, S_RAW, 'Q', (int)r, 0, n, &samples[0][S_RAW][r]) != 0) {
            goto done;
        }
    }
    fprintf(stderr, "roster: upsert: %ld update rounds of %zu rows a side\n", rounds, n);
    for (long r = 0; r < rounds; r++) {
        if (s_upsert_call(&u, S_OURS, 'P', 0, (int)r + 1, n, &samples[1][S_OURS][r]) != 0 ||
            s_upsert_call(&u, S_RAW, 'Q', 0, (int)r + 1, n, &samples[1][S_RAW][r]) != 0) {
            goto done;
        }
    }
    for (int k = 0; k < 2; k++) {
        for (int s = 0; s < 2; s++) {
            s_summary(samples[k][s], (size_t)rounds, &p50[k][s], &min[k][s]);
        }
    }
    printf("upsert10k_ms=%.1f upsert10k_min_ms=%.1f raw_upsert10k_ms=%.1f "
           "raw_upsert10k_min_ms=%.1f update10k_ms=%.1f update10k_min_ms=%.1f "
           "raw_update10k_ms=%.1f raw_update10k_min_ms=%.1f rounds=%ld\n",
           p50[0][S_OURS], min[0][S_OURS], p50[0][S_RAW], min[0][S_RAW], p50[1][S_OURS],
           min[1][S_OURS], p50[1][S_RAW], min[1][S_RAW], rounds);
    rc = 0;
done:
    for (int k = 0; k < 2; k++) {
        for (int s = 0; s < 2; s++) {
            free(samples[k][s]);
        }
    }
    for (int c = 0; c < S_UP_COLS; c++) {
        free(u.lit[c].p);
    }
    free(u.col);
    free(u.pbp);
    free(u.pb);
    free(u.vols);
    return rc;
}

/* ---------------------------------------------------------------- checkduty */

/* The equivalent of duty.c's s_check and s_answer in one statement: the same joins on the
 * same parameters (the day of each instant in Viet Nam computed in C beforehand, with the
 * service's own px_day_of_unix, rather than by AT TIME ZONE per row in SQL, work the service
 * does not give the database), the verdict (DutyVerdict numbers) by CASE in s_answer's order,
 * and the assignment's columns as the service reads them. */
static const char *s_raw_duty_sql =
    "SELECT CASE WHEN v.code IS NULL THEN 5 WHEN u.code IS NULL THEN 6"
    "  WHEN a.volunteer_code IS NULL THEN 2"
    "  WHEN NOT (a.unit_code = q.unit OR (u.level = 4 AND u.parent_code = a.unit_code)"
    "   OR coalesce(a.neighborhood_code = q.unit, false)) THEN 3"
    "  WHEN a.status = 4 THEN 4 ELSE 1 END,"
    "  a.campaign_id, a.unit_code, coalesce(a.neighborhood_code, ''), a.status,"
    "  (extract(epoch FROM a.checked_in_at) * 1000000)::bigint,"
    "  (extract(epoch FROM a.checked_out_at) * 1000000)::bigint,"
    "  (extract(epoch FROM a.created_at) * 1000000)::bigint"
    " FROM unnest($1::text[], $2::text[], $3::date[], $4::text[])"
    "  WITH ORDINALITY AS q(vol, unit, day, camp, i)"
    " LEFT JOIN volunteers v ON v.code = q.vol"
    " LEFT JOIN units u ON u.code = q.unit"
    " LEFT JOIN assignments a ON a.volunteer_code = q.vol"
    "  AND a.day = q.day"
    "  AND (q.camp IS NULL OR a.campaign_id = q.camp)"
    " ORDER BY q.i";

enum { S_DQ_VOL, S_DQ_UNIT, S_DQ_DAY, S_DQ_CAMP, S_DQ_COLS };

/* DutyVerdict numbers, for counting and for the raw side's answers. */
#define S_VERDICTS 7
static const char *const s_verdict_names[S_VERDICTS] = {
    "unspecified", "on_duty",           "not_assigned", "other_unit",
    "no_show",     "unknown_volunteer", "unknown_unit",
};

/* Whether a verdict comes with the volunteer's assignment (roster.proto's DutyAnswer). */
static bool s_verdict_has_assignment(int v)
{
    return v == PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_ON_DUTY ||
           v == PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_OTHER_UNIT ||
           v == PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_NO_SHOW;
}

/* What the queries are drawn from: rows read once from the database, before the rounds. */
enum { S_W_ASSIGN, S_W_WARDS, S_W_HOODS, S_W_DAYS, S_W_IDLE, S_W_COUNT };

static const struct {
    const char *sql;
    int nparams; /* 1: takes the campaign id */
} s_world_sql[S_W_COUNT] = {
    [S_W_ASSIGN] = {"SELECT volunteer_code, extract(epoch FROM day::timestamp)::bigint, unit_code"
                    " FROM assignments WHERE campaign_id = $1 ORDER BY day, volunteer_code",
                    1},
    [S_W_WARDS] = {"SELECT code FROM units WHERE level = 3 ORDER BY code", 0},
    [S_W_HOODS] = {"SELECT code, parent_code FROM units WHERE level = 4 ORDER BY code", 0},
    [S_W_DAYS] = {"SELECT extract(epoch FROM day::timestamp)::bigint FROM waves"
                  " WHERE campaign_id = $1 ORDER BY day",
                  1},
    /* Volunteers with no assignment at all (load.sql assigns 3,000 of the 100,000 or so). */
    [S_W_IDLE] = {"SELECT code FROM volunteers v WHERE NOT EXISTS (SELECT 1 FROM assignments a"
                  " WHERE a.volunteer_code = v.code) ORDER BY code LIMIT 1000",
                  0},
};

typedef struct {
    PGresult *res[S_W_COUNT];
    int n[S_W_COUNT];
} s_world_t;

static int s_world_load(s_world_t *w, PGconn *pg, const char *campaign)
{
    const char *params[1] = {campaign};
    for (int k = 0; k < S_W_COUNT; k++) {
        w->res[k] = PQexecParams(pg, s_world_sql[k].sql, s_world_sql[k].nparams, NULL, params, NULL,
                                 NULL, 0);
        if (PQresultStatus(w->res[k]) != PGRES_TUPLES_OK) {
            return s_fail("reading the assignments", PQerrorMessage(pg));
        }
        w->n[k] = PQntuples(w->res[k]);
    }
    if (w->n[S_W_ASSIGN] < 1 || w->n[S_W_WARDS] < 2 || w->n[S_W_HOODS] < 1 || w->n[S_W_DAYS] < 2 ||
        w->n[S_W_IDLE] < 1) {
        return s_fail("checkduty", "no assignments, wards, waves or unassigned volunteers to "
                                   "ask about (load.sql not run?)");
    }
    return 0;
}

static void s_world_free(s_world_t *w)
{
    for (int k = 0; k < S_W_COUNT; k++) {
        PQclear(w->res[k]);
        w->res[k] = NULL;
    }
}

static const char *s_world_get(const s_world_t *w, int table, int row, int col)
{
    return PQgetvalue(w->res[table], row, col);
}

/* What a query asks, and so which verdict it should get. */
typedef enum {
    S_AT_WARD,           /* an assignment's volunteer, day and ward: on duty (or no-show) */
    S_AT_HOOD,           /* ... at a neighborhood of that ward: on duty through its parent */
    S_OTHER_WARD,        /* ... at another ward: other unit */
    S_OTHER_DAY,         /* ... on another wave day: not assigned */
    S_NEVER_ASSIGNED,    /* a volunteer with no assignment at all: not assigned */
    S_UNKNOWN_VOLUNTEER, /* a code the roster does not have */
    S_UNKNOWN_UNIT,      /* a unit the tree does not have */
} s_kind_t;

/* The batch's make-up, by query index modulo 20: mostly volunteers recording where and when
 * they are on duty (12 in 20, 1 in 20 of those a no-show), and the misses an activation batch
 * meets: the wrong ward, the wrong day, someone never assigned, a mistyped code. */
static const s_kind_t s_mix[20] = {
    S_AT_WARD,   S_AT_WARD,   S_AT_WARD,        S_AT_WARD,           S_AT_WARD,
    S_AT_WARD,   S_AT_WARD,   S_AT_WARD,        S_AT_HOOD,           S_AT_HOOD,
    S_AT_HOOD,   S_AT_HOOD,   S_OTHER_WARD,     S_OTHER_WARD,        S_OTHER_DAY,
    S_OTHER_DAY, S_OTHER_DAY, S_NEVER_ASSIGNED, S_UNKNOWN_VOLUNTEER, S_UNKNOWN_UNIT,
};

typedef struct {
    const char *vol;
    const char *unit;
    const char *camp; /* "" for any campaign */
    int64_t at;       /* seconds since the epoch */
    char own[24];     /* the code of an unknown volunteer */
} s_query_t;

/* xorshift64*: the same queries for the same seed, on every machine. */
static uint64_t s_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A neighborhood of ward, or the ward itself when it has none. */
static const char *s_hood_of(const s_world_t *w, const char *ward, uint64_t pick)
{
    int first = -1, count = 0;
    for (int h = 0; h < w->n[S_W_HOODS]; h++) {
        if (strcmp(s_world_get(w, S_W_HOODS, h, 1), ward) == 0) {
            first = first < 0 ? h : first;
            count++;
        }
    }
    return count ? s_world_get(w, S_W_HOODS, first + (int)(pick % (uint64_t)count), 0) : ward;
}

static void s_queries_make(const s_world_t *w, const char *campaign, uint64_t seed, s_query_t *qs,
                           size_t n)
{
    uint64_t st = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t k = 0; k < n; k++) {
        s_query_t *q = &qs[k];
        int a = (int)(s_rand(&st) % (uint64_t)w->n[S_W_ASSIGN]);
        int64_t day = strtoll(s_world_get(w, S_W_ASSIGN, a, 1), NULL, 10);
        q->vol = s_world_get(w, S_W_ASSIGN, a, 0);
        q->unit = s_world_get(w, S_W_ASSIGN, a, 2);
        q->camp = k % 2 ? campaign : "";
        switch (s_mix[k % 20]) {
        case S_AT_WARD:
            break;
        case S_AT_HOOD:
            q->unit = s_hood_of(w, q->unit, s_rand(&st));
            break;
        case S_OTHER_WARD: {
            int o = (int)(s_rand(&st) % (uint64_t)w->n[S_W_WARDS]);
            if (strcmp(s_world_get(w, S_W_WARDS, o, 0), q->unit) == 0) {
                o = (o + 1) % w->n[S_W_WARDS];
            }
            q->unit = s_world_get(w, S_W_WARDS, o, 0);
            break;
        }
        case S_OTHER_DAY: {
            int d = (int)(s_rand(&st) % (uint64_t)w->n[S_W_DAYS]);
            int64_t other = strtoll(s_world_get(w, S_W_DAYS, d, 0), NULL, 10);
            if (other == day) {
                other = strtoll(s_world_get(w, S_W_DAYS, (d + 1) % w->n[S_W_DAYS], 0), NULL, 10);
            }
            day = other;
            break;
        }
        case S_NEVER_ASSIGNED:
            q->vol = s_world_get(w, S_W_IDLE, (int)(s_rand(&st) % (uint64_t)w->n[S_W_IDLE]), 0);
            break;
        case S_UNKNOWN_VOLUNTEER:
            snprintf(q->own, sizeof q->own, "ZZ%05u", (unsigned)(s_rand(&st) % 100000));
            q->vol = q->own;
            break;
        case S_UNKNOWN_UNIT:
            q->unit = S_NO_SUCH_UNIT;
            break;
        }
        q->at = day + (int64_t)(s_rand(&st) % S_DAY_SPAN_S);
    }
}

typedef struct {
    px_rpc_client_t *rpc;
    PGconn *pg;
    Phuxanh__Roster__V1__DutyQuery pbq[S_DUTY_QUERIES];
    Phuxanh__Roster__V1__DutyQuery *pbqp[S_DUTY_QUERIES];
    Google__Protobuf__Timestamp ts[S_DUTY_QUERIES];
    const char *col[S_DQ_COLS * S_DUTY_QUERIES];
    char days[S_DUTY_QUERIES][11]; /* "YYYY-MM-DD" */
    s_buf_t lit[S_DQ_COLS];
} s_duty_t;

static int s_duty_ours(s_duty_t *d, const s_query_t *qs, size_t n, int *verdicts, int64_t *ns)
{
    for (size_t i = 0; i < n; i++) {
        phuxanh__roster__v1__duty_query__init(&d->pbq[i]);
        google__protobuf__timestamp__init(&d->ts[i]);
        d->ts[i].seconds = qs[i].at;
        d->pbq[i].volunteer_code = (char *)qs[i].vol;
        d->pbq[i].unit_code = (char *)qs[i].unit;
        d->pbq[i].campaign_id = (char *)qs[i].camp;
        d->pbq[i].time = &d->ts[i];
        d->pbqp[i] = &d->pbq[i];
    }
    Phuxanh__Roster__V1__CheckDutyRequest req = PHUXANH__ROSTER__V1__CHECK_DUTY_REQUEST__INIT;
    req.queries = d->pbqp;
    req.n_queries = n;
    px_rpc_call_opts_t o = {.timeout_ms = S_CALL_TIMEOUT_MS};
    ProtobufCMessage *reply = NULL;
    px_status_t st;
    int64_t t0 = px_bench_now_ns();
    px_code_t code =
        px_rpc_client_call(d->rpc, s_duty_method, &req.base,
                           &phuxanh__roster__v1__check_duty_response__descriptor, &reply, &o, &st);
    *ns = px_bench_now_ns() - t0;
    if (code != PX_OK) {
        fprintf(stderr, "roster: CheckDuty: %s (%s)\n", px_code_name(code), st.message);
        return -1;
    }
    const Phuxanh__Roster__V1__CheckDutyResponse *r = (const void *)reply;
    int rc = r->n_answers == n ? 0 : s_fail("CheckDuty", "not one answer per query");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        verdicts[i] = (int)r->answers[i]->verdict;
        if (verdicts[i] < 1 || verdicts[i] >= S_VERDICTS ||
            s_verdict_has_assignment(verdicts[i]) != (r->answers[i]->assignment != NULL)) {
            rc = s_fail("CheckDuty", "an answer's verdict and assignment disagree");
        }
    }
    protobuf_c_message_free_unpacked(reply, NULL);
    return rc;
}

static int s_duty_raw(s_duty_t *d, const s_query_t *qs, size_t n, int *verdicts, int64_t *ns)
{
    const char *params[S_DQ_COLS];
    int64_t t0 = px_bench_now_ns();
    for (size_t i = 0; i < n; i++) {
        px_day_format(px_day_of_unix(qs[i].at), d->days[i]);
        d->col[S_DQ_VOL * n + i] = qs[i].vol;
        d->col[S_DQ_UNIT * n + i] = qs[i].unit;
        d->col[S_DQ_DAY * n + i] = d->days[i];
        d->col[S_DQ_CAMP * n + i] = *qs[i].camp ? qs[i].camp : NULL;
    }
    for (size_t c = 0; c < S_DQ_COLS; c++) {
        if (s_array(&d->lit[c], d->col + c * n, n) != 0) {
            return s_fail("raw checkduty", "out of memory");
        }
        params[c] = d->lit[c].p;
    }
    PGresult *res = PQexecPrepared(d->pg, "bench_duty", S_DQ_COLS, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = s_fail("raw checkduty", PQerrorMessage(d->pg));
    } else if ((size_t)PQntuples(res) != n) {
        rc = s_fail("raw checkduty", "not one row per query");
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        verdicts[i] = atoi(PQgetvalue(res, (int)i, 0));
        /* An unknown unit's row may still carry the volunteer's assignment that day, which
         * the answer leaves out, as the service's does. */
        if (s_verdict_has_assignment(verdicts[i]) && PQgetisnull(res, (int)i, 1)) {
            rc = s_fail("raw checkduty", "a row's verdict and assignment disagree");
        }
    }
    PQclear(res);
    *ns = px_bench_now_ns() - t0;
    return rc;
}

/* Both sides must give every query the same verdict. */
static int s_duty_compare(const int *ours, const int *raw, size_t n, long round)
{
    for (size_t i = 0; i < n; i++) {
        if (ours[i] != raw[i]) {
            fprintf(stderr,
                    "roster: round %ld, query %zu (kind %d): CheckDuty says %s, the direct "
                    "query %s\n",
                    round, i, (int)s_mix[i % 20], s_verdict_names[ours[i]],
                    raw[i] >= 0 && raw[i] < S_VERDICTS ? s_verdict_names[raw[i]] : "?");
            return -1;
        }
    }
    return 0;
}

static int s_duty_main(px_rpc_client_t *rpc, PGconn *pg, const char *campaign, long rounds)
{
    const size_t n = S_DUTY_QUERIES;
    s_world_t w = {0};
    s_duty_t *d = calloc(1, sizeof *d);
    s_query_t *qs = calloc(n, sizeof *qs);
    int *ours = calloc(n, sizeof *ours), *raw = calloc(n, sizeof *raw);
    int64_t *samples[2] = {calloc((size_t)rounds, sizeof(int64_t)),
                           calloc((size_t)rounds, sizeof(int64_t))};
    long tally[S_VERDICTS] = {0};
    int rc = -1;
    if (!d || !qs || !ours || !raw || !samples[0] || !samples[1]) {
        s_fail("checkduty", "out of memory");
        goto done;
    }
    d->rpc = rpc;
    d->pg = pg;
    if (s_world_load(&w, pg, campaign) != 0 ||
        s_prepare(pg, "bench_duty", s_raw_duty_sql, S_DQ_COLS) != 0) {
        goto done;
    }
    fprintf(stderr,
            "roster: checkduty: %d assignments, %d wards, %d neighborhoods, %d waves; "
            "%ld rounds of %zu queries a side\n",
            w.n[S_W_ASSIGN], w.n[S_W_WARDS], w.n[S_W_HOODS], w.n[S_W_DAYS], rounds, n);
    for (long r = -S_DUTY_WARMUPS; r < rounds; r++) {
        int64_t ns[2] = {0, 0};
        s_queries_make(&w, campaign, (uint64_t)(r + S_DUTY_WARMUPS), qs, n);
        if (s_duty_ours(d, qs, n, ours, &ns[S_OURS]) != 0 ||
            s_duty_raw(d, qs, n, raw, &ns[S_RAW]) != 0 || s_duty_compare(ours, raw, n, r) != 0) {
            goto done;
        }
        if (r >= 0) {
            samples[S_OURS][r] = ns[S_OURS];
            samples[S_RAW][r] = ns[S_RAW];
            for (size_t i = 0; i < n; i++) {
                tally[ours[i]]++;
            }
        }
    }
    double p50[2], min[2];
    for (int s = 0; s < 2; s++) {
        s_summary(samples[s], (size_t)rounds, &p50[s], &min[s]);
    }
    printf("checkduty1000_ms=%.2f checkduty1000_min_ms=%.2f raw_checkduty1000_ms=%.2f "
           "raw_checkduty1000_min_ms=%.2f rounds=%ld",
           p50[S_OURS], min[S_OURS], p50[S_RAW], min[S_RAW], rounds);
    /* Verdicts per batch, averaged over the rounds: how many queries hit an assignment. */
    for (int v = 1; v < S_VERDICTS; v++) {
        printf(" %s=%.0f", s_verdict_names[v], (double)tally[v] / (double)rounds);
    }
    printf("\n");
    rc = 0;
done:
    s_world_free(&w);
    if (d) {
        for (int c = 0; c < S_DQ_COLS; c++) {
            free(d->lit[c].p);
        }
    }
    free(samples[0]);
    free(samples[1]);
    free(raw);
    free(ours);
    free(qs);
    free(d);
    return rc;
}

/* ---------------------------------------------------------------- main */

static const struct {
    const char *name;
    long rounds; /* default */
    bool needs_campaign;
    int (*run)(px_rpc_client_t *rpc, PGconn *pg, const char *campaign, long rounds);
} s_modes[] = {
    {"upsert", 5, false, s_upsert_main},
    {"checkduty", 20, true, s_duty_main},
};

#define S_NMODES (sizeof s_modes / sizeof s_modes[0])

static int s_usage(void)
{
    fprintf(stderr,
            "usage: bench-roster upsert --endpoint EP --db-url URL [--rounds N]\n"
            "       bench-roster checkduty --endpoint EP --db-url URL --campaign ID "
            "[--rounds N]\n"
            "N: 1 to %d\n",
            S_MAX_ROUNDS);
    return 2;
}

int main(int argc, char **argv)
{
    size_t mode = S_NMODES;
    for (size_t m = 0; argc > 1 && m < S_NMODES; m++) {
        if (strcmp(argv[1], s_modes[m].name) == 0) {
            mode = m;
        }
    }
    if (mode == S_NMODES) {
        return s_usage();
    }
    const char *endpoint = NULL, *url = NULL, *campaign = NULL;
    long rounds = s_modes[mode].rounds;
    for (int i = 2; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!v) {
            return s_usage();
        } else if (strcmp(a, "--endpoint") == 0) {
            endpoint = v;
        } else if (strcmp(a, "--db-url") == 0) {
            url = v;
        } else if (strcmp(a, "--campaign") == 0) {
            campaign = v;
        } else if (strcmp(a, "--rounds") == 0) {
            rounds = strtol(v, &end, 10);
            if (*end != '\0') {
                return s_usage();
            }
        } else {
            return s_usage();
        }
    }
    if (!endpoint || !url || (s_modes[mode].needs_campaign && !campaign) || rounds < 1 ||
        rounds > S_MAX_ROUNDS) {
        return s_usage();
    }
    int rc = 1;
    px_status_t st;
    px_rpc_client_opts_t co = {.caller = "bench-roster", .connect_wait_ms = 5000};
    px_rpc_client_t *rpc = px_rpc_client_new(endpoint, &co, &st);
    PGconn *pg = PQconnectdb(url);
    if (!rpc) {
        s_fail("connecting to px-roster", st.message);
        goto done;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        s_fail("connecting to PostgreSQL", PQerrorMessage(pg));
        goto done;
    }
    rc = s_modes[mode].run(rpc, pg, campaign, rounds) == 0 ? 0 : 1;
done:
    PQfinish(pg);
    px_rpc_client_destroy(&rpc);
    return rc;
}
