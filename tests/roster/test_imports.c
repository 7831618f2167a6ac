/*
 * test_imports.c - BeginImport, StageRows, CommitImport and AbortImport against a
 * real px-roster: an import is written whole or not at all (a bad volunteer on
 * row 49,990 of 50,000 writes none of them, and no unit of the same import),
 * every refused row is named by kind and index, the same import twice changes
 * nothing, a lost batch cannot commit as a smaller import, and an import is its
 * caller's alone and ends with its commit, abort or expiry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "px_test.h"
#include "roster_fixture.h"

typedef Phuxanh__Roster__V1__CommitImportResponse commit_t;

static roster_fixture_t s_f;

/* ------------------------------------------------------------------- helpers */

static Phuxanh__Roster__V1__Unit s_unit(const char *code, const char *name, int level,
                                        const char *parent)
{
    Phuxanh__Roster__V1__Unit u = PHUXANH__ROSTER__V1__UNIT__INIT;
    u.code = (char *)code;
    u.name = (char *)name;
    u.level = (Phuxanh__Roster__V1__UnitLevel)level;
    u.parent_code = (char *)parent;
    return u;
}

static Phuxanh__Roster__V1__Volunteer s_vol(const char *code, const char *name, const char *phone)
{
    Phuxanh__Roster__V1__Volunteer v = PHUXANH__ROSTER__V1__VOLUNTEER__INIT;
    v.code = (char *)code;
    v.full_name = (char *)name;
    v.phone = (char *)phone;
    return v;
}

/* BeginImport's id (malloc'd), or NULL. */
static char *s_begin(px_rpc_client_t *client)
{
    Phuxanh__Roster__V1__BeginImportRequest req = PHUXANH__ROSTER__V1__BEGIN_IMPORT_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    px_status_t st;
    px_rpc_call_opts_t o = {.timeout_ms = 30000};
    px_code_t code =
        px_rpc_client_call(client, "/phuxanh.roster.v1.RosterService/BeginImport", &req.base,
                           &phuxanh__roster__v1__begin_import_response__descriptor, &rep, &o, &st);
    if (code != PX_OK) {
        fprintf(stderr, "BeginImport: %d %s\n", code, st.message);
        return NULL;
    }
    char *id = strdup(((Phuxanh__Roster__V1__BeginImportResponse *)rep)->import_id);
    protobuf_c_message_free_unpacked(rep, NULL);
    return id;
}

/* StageRows of one kind: which list is set by kind (1 units .. 4 waves). */
static px_code_t s_stage(const char *id, int kind, void *rows, size_t n, int first, px_status_t *st)
{
    Phuxanh__Roster__V1__StageRowsRequest req = PHUXANH__ROSTER__V1__STAGE_ROWS_REQUEST__INIT;
    req.import_id = (char *)id;
    req.first_index = first;
    switch (kind) {
    case 1:
        req.units = rows;
        req.n_units = n;
        break;
    case 2:
        req.volunteers = rows;
        req.n_volunteers = n;
        break;
    case 3:
        req.campaigns = rows;
        req.n_campaigns = n;
        break;
    default:
        req.waves = rows;
        req.n_waves = n;
        break;
    }
    ProtobufCMessage *rep = NULL;
    px_code_t code = roster_call(&s_f, "StageRows", &req.base,
                                 &phuxanh__roster__v1__stage_rows_response__descriptor, &rep, st);
    if (rep) {
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    return code;
}

static commit_t *s_commit(const char *id, const int counts[5], bool validate_only, px_code_t *code,
                          px_status_t *st)
{
    Phuxanh__Roster__V1__CommitImportRequest req = PHUXANH__ROSTER__V1__COMMIT_IMPORT_REQUEST__INIT;
    req.import_id = (char *)id;
    req.validate_only = validate_only;
    req.units = counts[1];
    req.volunteers = counts[2];
    req.campaigns = counts[3];
    req.waves = counts[4];
    ProtobufCMessage *rep = NULL;
    *code = roster_call(&s_f, "CommitImport", &req.base,
                        &phuxanh__roster__v1__commit_import_response__descriptor, &rep, st);
    return (commit_t *)rep;
}

static const Phuxanh__Roster__V1__ImportResult *s_result(const commit_t *c, int kind)
{
    for (size_t i = 0; c && i < c->n_results; i++) {
        if ((int)c->results[i]->kind == kind) {
            return c->results[i];
        }
    }
    return NULL;
}

static long long s_count(const char *table, const char *where)
{
    char sql[400];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s", table, where);
    return roster_sql_int(&s_f, sql);
}

/* A small district, its wards, volunteers, a campaign and its waves. */
typedef struct {
    Phuxanh__Roster__V1__Unit units[3];
    Phuxanh__Roster__V1__Unit *up[3];
    Phuxanh__Roster__V1__Volunteer vols[2];
    Phuxanh__Roster__V1__Volunteer *vp[2];
    Phuxanh__Roster__V1__Campaign camp;
    Phuxanh__Roster__V1__Campaign *cp[1];
    Phuxanh__Roster__V1__Wave waves[2];
    Phuxanh__Roster__V1__Wave *wp[2];
} s_set_t;

static void s_set(s_set_t *s, const char *bad_phone)
{
    s->units[0] = s_unit("IP1", "Tỉnh Nhập", 1, "");
    s->units[1] = s_unit("ID1", "Huyện Nhập", 2, "IP1");
    s->units[2] = s_unit("IW1", "Phường Nhập", 3, "ID1");
    s->vols[0] = s_vol("IV0001", "Nguyễn Văn Nhập", "0912345678");
    s->vols[1] = s_vol("IV0002", "Trần Thị Nhập", bad_phone ? bad_phone : "0387654321");
    Phuxanh__Roster__V1__Campaign c = PHUXANH__ROSTER__V1__CAMPAIGN__INIT;
    c.id = "nhap-2023";
    c.name = "Chiến dịch nhập";
    c.starts_on = "2023-07-29";
    c.ends_on = "2023-08-27";
    c.unit_code = "ID1"; /* a unit of the same import */
    s->camp = c;
    for (int i = 0; i < 2; i++) {
        Phuxanh__Roster__V1__Wave w = PHUXANH__ROSTER__V1__WAVE__INIT;
        w.campaign_id = "nhap-2023"; /* a campaign of the same import */
        w.day = i ? "2023-07-30" : "2023-07-29";
        w.capacity = 20;
        s->waves[i] = w;
        s->wp[i] = &s->waves[i];
        s->vp[i] = &s->vols[i];
    }
    for (int i = 0; i < 3; i++) {
        s->up[i] = &s->units[i];
    }
    s->cp[0] = &s->camp;
}

/* Stages the whole set in a new import; its id (malloc'd) or NULL. */
static char *s_stage_set(s_set_t *s)
{
    char *id = s_begin(s_f.client);
    px_status_t st;
    if (!id || s_stage(id, 1, s->up, 3, 0, &st) != PX_OK ||
        s_stage(id, 2, s->vp, 2, 0, &st) != PX_OK || s_stage(id, 3, s->cp, 1, 0, &st) != PX_OK ||
        s_stage(id, 4, s->wp, 2, 0, &st) != PX_OK) {
        fprintf(stderr, "staging: %s\n", st.message);
        free(id);
        return NULL;
    }
    return id;
}

static const int s_set_counts[5] = {0, 3, 2, 1, 2};

/* ------------------------------------------------------------------- cases */

static void test_bad_volunteer_writes_no_unit(void)
{
    s_set_t s;
    s_set(&s, "12345");
    char *id = s_stage_set(&s);
    PX_REQUIRE(id);
    px_code_t code;
    px_status_t st;
    commit_t *c = s_commit(id, s_set_counts, false, &code, &st);
    PX_CHECK_INT_EQ(code, PX_OK);
    PX_REQUIRE(c);
    PX_CHECK(!c->committed);
    const Phuxanh__Roster__V1__ImportResult *v = s_result(c, 2);
    PX_REQUIRE(v);
    PX_CHECK_INT_EQ(v->refused, 1);
    PX_REQUIRE(v->n_errors == 1);
    PX_CHECK_INT_EQ(v->errors[0]->index, 1);
    PX_CHECK_STR_EQ(v->errors[0]->field, "phone");
    /* The units were fine (and applied inside the transaction): nothing of them stays. */
    const Phuxanh__Roster__V1__ImportResult *u = s_result(c, 1);
    PX_REQUIRE(u);
    PX_CHECK_INT_EQ(u->refused, 0);
    PX_CHECK_INT_EQ(u->inserted, 0);
    PX_CHECK_INT_EQ(s_count("units", "code LIKE 'I%'"), 0);
    PX_CHECK_INT_EQ(s_count("volunteers", "code LIKE 'IV%'"), 0);
    PX_CHECK_INT_EQ(s_count("campaigns", "id = 'nhap-2023'"), 0);
    /* The import ended with the commit. */
    PX_CHECK_INT_EQ(s_count("imports", "true"), 0);
    PX_CHECK_INT_EQ(s_count("import_rows", "true"), 0);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    free(id);
}

static void test_commit_then_same_again_changes_nothing(void)
{
    s_set_t s;
    s_set(&s, NULL);
    char *id = s_stage_set(&s);
    PX_REQUIRE(id);
    px_code_t code;
    px_status_t st;
    commit_t *c = s_commit(id, s_set_counts, false, &code, &st);
    PX_CHECK_INT_EQ(code, PX_OK);
    PX_REQUIRE(c);
    PX_CHECK(c->committed);
    PX_REQUIRE(c->n_results == 4);
    PX_CHECK_INT_EQ(s_result(c, 1)->inserted, 3);
    PX_CHECK_INT_EQ(s_result(c, 2)->inserted, 2);
    PX_CHECK_INT_EQ(s_result(c, 3)->inserted, 1);
    PX_CHECK_INT_EQ(s_result(c, 4)->inserted, 2);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    free(id);
    PX_CHECK_INT_EQ(s_count("units", "code LIKE 'I%'"), 3);
    PX_CHECK_INT_EQ(s_count("waves", "campaign_id = 'nhap-2023'"), 2);
    long long audit = s_count("audit", "true");
    long long version = roster_sql_int(&s_f, "SELECT max(version) FROM units");

    id = s_stage_set(&s);
    PX_REQUIRE(id);
    c = s_commit(id, s_set_counts, false, &code, &st);
    PX_CHECK_INT_EQ(code, PX_OK);
    PX_REQUIRE(c);
    PX_CHECK(c->committed);
    for (size_t i = 0; i < c->n_results; i++) {
        PX_CHECK_INT_EQ(c->results[i]->inserted + c->results[i]->updated, 0);
        PX_CHECK(c->results[i]->unchanged > 0);
    }
    protobuf_c_message_free_unpacked(&c->base, NULL);
    free(id);
    PX_CHECK_INT_EQ(s_count("audit", "true"), audit);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT max(version) FROM units"), version);
}

/* 50,000 volunteers staged in five calls, a bad phone number at index 49,989 (line 49,991 of
 * a file with a header): none of them is written, and the error names that row. */
static void test_fifty_thousand_one_bad_writes_nothing(void)
{
    enum { N = 50000, BATCH = 10000, BAD = 49989 };
    Phuxanh__Roster__V1__Volunteer *rows = calloc(N, sizeof *rows);
    Phuxanh__Roster__V1__Volunteer **p = calloc(N, sizeof *p);
    char(*codes)[16] = calloc(N, sizeof *codes);
    PX_REQUIRE(rows && p && codes);
    for (int i = 0; i < N; i++) {
        snprintf(codes[i], sizeof codes[i], "FT%06d", i);
        rows[i] = s_vol(codes[i], "Lê Văn Năm Mươi", i == BAD ? "0123" : "0912345678");
        p[i] = &rows[i];
    }
    char *id = s_begin(s_f.client);
    PX_REQUIRE(id);
    px_status_t st;
    for (int off = 0; off < N; off += BATCH) {
        PX_CHECK_INT_EQ(s_stage(id, 2, p + off, BATCH, off, &st), PX_OK);
    }
    const int counts[5] = {0, 0, N, 0, 0};
    px_code_t code;
    commit_t *c = s_commit(id, counts, false, &code, &st);
    PX_CHECK_INT_EQ(code, PX_OK);
    if (code != PX_OK) {
        fprintf(stderr, "CommitImport: %s\n", st.message);
    }
    if (c) {
        PX_CHECK(!c->committed);
        const Phuxanh__Roster__V1__ImportResult *v = s_result(c, 2);
        PX_CHECK(v && v->refused == 1 && v->n_errors == 1 && v->errors[0]->index == BAD);
        protobuf_c_message_free_unpacked(&c->base, NULL);
    }
    PX_CHECK_INT_EQ(s_count("volunteers", "code LIKE 'FT%'"), 0);
    free(id);
    free(rows);
    free(p);
    free(codes);
}

static void test_validate_only_writes_nothing(void)
{
    s_set_t s;
    s_set(&s, NULL);
    s.units[2].code = "IW2";
    s.vols[0].code = "IV0009";
    char *id = s_stage_set(&s);
    PX_REQUIRE(id);
    px_code_t code;
    px_status_t st;
    long long units = s_count("units", "true");
    commit_t *c = s_commit(id, s_set_counts, true, &code, &st);
    PX_CHECK_INT_EQ(code, PX_OK);
    PX_REQUIRE(c);
    PX_CHECK(!c->committed);
    PX_CHECK_INT_EQ(s_result(c, 1)->refused, 0);
    PX_CHECK_INT_EQ(s_count("units", "true"), units);
    PX_CHECK_INT_EQ(s_count("volunteers", "code = 'IV0009'"), 0);
    PX_CHECK_INT_EQ(s_count("imports", "true"), 0);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    free(id);
}

/* Every bad row of every kind is named in one answer. */
static void test_every_bad_row_named(void)
{
    s_set_t s;
    s_set(&s, "999");
    s.units[2].parent_code = "NOSUCH";
    s.camp.ends_on = "2023-07-01"; /* before it starts */
    char *id = s_stage_set(&s);
    PX_REQUIRE(id);
    px_code_t code;
    px_status_t st;
    commit_t *c = s_commit(id, s_set_counts, false, &code, &st);
    PX_CHECK_INT_EQ(code, PX_OK);
    PX_REQUIRE(c);
    PX_CHECK(!c->committed);
    const Phuxanh__Roster__V1__ImportResult *u = s_result(c, 1), *v = s_result(c, 2),
                                            *k = s_result(c, 3);
    PX_REQUIRE(u && v && k);
    PX_CHECK(u->n_errors == 1 && u->errors[0]->index == 2 &&
             strcmp(u->errors[0]->field, "parent_code") == 0);
    PX_CHECK(v->n_errors == 1 && v->errors[0]->index == 1);
    PX_CHECK(k->n_errors == 1 && k->errors[0]->index == 0 &&
             strstr(k->errors[0]->message, "ends_on"));
    protobuf_c_message_free_unpacked(&c->base, NULL);
    free(id);
}

/* A batch that never arrived: the commit refuses rather than write a smaller import. */
static void test_lost_batch_refused(void)
{
    s_set_t s;
    s_set(&s, NULL);
    s.vols[0].code = "LB0001";
    s.vols[1].code = "LB0002";
    char *id = s_begin(s_f.client);
    PX_REQUIRE(id);
    px_status_t st;
    PX_CHECK_INT_EQ(s_stage(id, 2, &s.vp[1], 1, 1, &st), PX_OK); /* index 0 never staged */
    const int counts[5] = {0, 0, 2, 0, 0};
    px_code_t code;
    commit_t *c = s_commit(id, counts, false, &code, &st);
    PX_CHECK_INT_EQ(code, PX_FAILED_PRECONDITION);
    PX_CHECK(strstr(st.message, "nothing was written"));
    PX_CHECK(!c);
    PX_CHECK_INT_EQ(s_count("volunteers", "code LIKE 'LB%'"), 0);
    PX_CHECK_INT_EQ(s_count("imports", "true"), 0);
    free(id);
}

static void test_refusals(void)
{
    s_set_t s;
    s_set(&s, NULL);
    char *id = s_begin(s_f.client);
    PX_REQUIRE(id);
    px_status_t st;
    /* Two kinds in one call; none; a negative index; a malformed id. */
    Phuxanh__Roster__V1__StageRowsRequest req = PHUXANH__ROSTER__V1__STAGE_ROWS_REQUEST__INIT;
    req.import_id = id;
    req.units = s.up;
    req.n_units = 3;
    req.volunteers = s.vp;
    req.n_volunteers = 2;
    ProtobufCMessage *rep = NULL;
    PX_CHECK_INT_EQ(roster_call(&s_f, "StageRows", &req.base,
                                &phuxanh__roster__v1__stage_rows_response__descriptor, &rep, &st),
                    PX_INVALID_ARGUMENT);
    PX_CHECK_INT_EQ(s_stage(id, 1, s.up, 0, 0, &st), PX_INVALID_ARGUMENT);
    PX_CHECK_INT_EQ(s_stage(id, 1, s.up, 3, -1, &st), PX_INVALID_ARGUMENT);
    PX_CHECK_INT_EQ(s_stage(id, 1, s.up, 3, 199999, &st), PX_INVALID_ARGUMENT);
    PX_CHECK_INT_EQ(s_stage("not-an-id", 1, s.up, 3, 0, &st), PX_INVALID_ARGUMENT);
    PX_CHECK_INT_EQ(s_stage("0123456789abcdef0123456789abcdef", 1, s.up, 3, 0, &st), PX_NOT_FOUND);

    /* Another caller cannot touch it. */
    px_rpc_client_opts_t co = {.caller = "someone-else"};
    px_rpc_client_t *other = px_rpc_client_new(s_f.proc.endpoint, &co, &st);
    PX_REQUIRE(other);
    Phuxanh__Roster__V1__AbortImportRequest ab = PHUXANH__ROSTER__V1__ABORT_IMPORT_REQUEST__INIT;
    ab.import_id = id;
    px_rpc_call_opts_t o = {.timeout_ms = 30000};
    rep = NULL;
    PX_CHECK_INT_EQ(
        px_rpc_client_call(other, "/phuxanh.roster.v1.RosterService/AbortImport", &ab.base,
                           &phuxanh__roster__v1__abort_import_response__descriptor, &rep, &o, &st),
        PX_PERMISSION_DENIED);
    px_rpc_client_destroy(&other);

    /* Aborted: gone, and aborting again is fine. */
    PX_CHECK_INT_EQ(s_stage(id, 1, s.up, 3, 0, &st), PX_OK);
    rep = NULL;
    PX_CHECK_INT_EQ(roster_call(&s_f, "AbortImport", &ab.base,
                                &phuxanh__roster__v1__abort_import_response__descriptor, &rep, &st),
                    PX_OK);
    PX_CHECK(rep && ((Phuxanh__Roster__V1__AbortImportResponse *)rep)->aborted);
    if (rep) {
        protobuf_c_message_free_unpacked(rep, NULL);
        rep = NULL;
    }
    PX_CHECK_INT_EQ(s_count("import_rows", "true"), 0);
    PX_CHECK_INT_EQ(roster_call(&s_f, "AbortImport", &ab.base,
                                &phuxanh__roster__v1__abort_import_response__descriptor, &rep, &st),
                    PX_OK);
    PX_CHECK(rep && !((Phuxanh__Roster__V1__AbortImportResponse *)rep)->aborted);
    if (rep) {
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    px_code_t code;
    const int counts[5] = {0, 3, 0, 0, 0};
    commit_t *c = s_commit(id, counts, false, &code, &st);
    PX_CHECK_INT_EQ(code, PX_NOT_FOUND);
    PX_CHECK(!c);
    free(id);
}

/* An abandoned import expires, and the next BeginImport sweeps its rows away. */
static void test_abandoned_import_expires(void)
{
    s_set_t s;
    s_set(&s, NULL);
    char *id = s_begin(s_f.client);
    PX_REQUIRE(id);
    px_status_t st;
    PX_CHECK_INT_EQ(s_stage(id, 1, s.up, 3, 0, &st), PX_OK);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "WITH x AS (UPDATE imports SET expires_at = now() - "
                                         "interval '1 minute' RETURNING 1) SELECT count(*) FROM x"),
                    1);
    PX_CHECK_INT_EQ(s_stage(id, 1, s.up, 3, 0, &st), PX_NOT_FOUND);
    char *next = s_begin(s_f.client);
    PX_CHECK(next);
    PX_CHECK_INT_EQ(s_count("import_rows", "true"), 0);
    PX_CHECK_INT_EQ(s_count("imports", "true"), 1);
    Phuxanh__Roster__V1__AbortImportRequest ab = PHUXANH__ROSTER__V1__ABORT_IMPORT_REQUEST__INIT;
    ab.import_id = next;
    ProtobufCMessage *rep = NULL;
    PX_CHECK_INT_EQ(roster_call(&s_f, "AbortImport", &ab.base,
                                &phuxanh__roster__v1__abort_import_response__descriptor, &rep, &st),
                    PX_OK);
    if (rep) {
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    free(next);
    free(id);
}

static const px_test_case_t s_cases[] = {
    {"bad_volunteer_writes_no_unit", test_bad_volunteer_writes_no_unit},
    {"commit_then_same_again_changes_nothing", test_commit_then_same_again_changes_nothing},
    {"fifty_thousand_one_bad_writes_nothing", test_fifty_thousand_one_bad_writes_nothing},
    {"validate_only_writes_nothing", test_validate_only_writes_nothing},
    {"every_bad_row_named", test_every_bad_row_named},
    {"lost_batch_refused", test_lost_batch_refused},
    {"refusals", test_refusals},
    {"abandoned_import_expires", test_abandoned_import_expires},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return roster_fixture_main(&s_f, "roster_imports", NULL, NULL, NULL, argc, argv, s_cases);
}
