/*
 * test_units.c - UpsertUnits, ListUnits and GetUnits against a real px-roster on
 * its own database: the tree is validated (parents exist, one level up, may come
 * later in the batch), a refused batch writes nothing, re-importing changes
 * nothing and keeps the tree version, changes are found by since_version, and
 * GetUnits answers ancestors and unknown codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "px_test.h"
#include "roster_fixture.h"

typedef Phuxanh__Roster__V1__Unit unit_t;
typedef Phuxanh__Roster__V1__BatchUpsertResponse batch_t;

#define PROVINCE PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_PROVINCE
#define DISTRICT PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_DISTRICT
#define WARD PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_WARD
#define NEIGHBORHOOD PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_NEIGHBORHOOD

static roster_fixture_t s_f;

static unit_t s_unit(const char *code, const char *name, Phuxanh__Roster__V1__UnitLevel level,
                     const char *parent)
{
    unit_t u = PHUXANH__ROSTER__V1__UNIT__INIT;
    u.code = (char *)code;
    u.name = (char *)name;
    u.level = level;
    u.parent_code = (char *)parent;
    return u;
}

static batch_t *s_upsert(unit_t *rows, size_t n, bool validate_only, px_code_t *code,
                         px_status_t *st)
{
    unit_t **p = calloc(n + 1, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i] = &rows[i];
    }
    Phuxanh__Roster__V1__UpsertUnitsRequest req = PHUXANH__ROSTER__V1__UPSERT_UNITS_REQUEST__INIT;
    req.units = p;
    req.n_units = n;
    req.validate_only = validate_only;
    ProtobufCMessage *rep = NULL;
    *code = roster_call(&s_f, "UpsertUnits", &req.base,
                        &phuxanh__roster__v1__batch_upsert_response__descriptor, &rep, st);
    free(p);
    return (batch_t *)rep;
}

static batch_t *s_upsert_ok(unit_t *rows, size_t n)
{
    px_code_t code;
    px_status_t st;
    batch_t *b = s_upsert(rows, n, false, &code, &st);
    if (code != PX_OK) {
        fprintf(stderr, "UpsertUnits: %d %s\n", code, st.message);
    }
    return b;
}

static Phuxanh__Roster__V1__ListUnitsResponse *s_list(Phuxanh__Roster__V1__ListUnitsRequest *req,
                                                      px_code_t *rc, px_status_t *st)
{
    ProtobufCMessage *rep = NULL;
    *rc = roster_call(&s_f, "ListUnits", &req->base,
                      &phuxanh__roster__v1__list_units_response__descriptor, &rep, st);
    return (Phuxanh__Roster__V1__ListUnitsResponse *)rep;
}

static Phuxanh__Roster__V1__GetUnitsResponse *s_get(char **codes, size_t n, bool ancestors,
                                                    px_code_t *rc, px_status_t *st)
{
    Phuxanh__Roster__V1__GetUnitsRequest req = PHUXANH__ROSTER__V1__GET_UNITS_REQUEST__INIT;
    req.codes = codes;
    req.n_codes = n;
    req.include_ancestors = ancestors;
    ProtobufCMessage *rep = NULL;
    *rc = roster_call(&s_f, "GetUnits", &req.base,
                      &phuxanh__roster__v1__get_units_response__descriptor, &rep, st);
    return (Phuxanh__Roster__V1__GetUnitsResponse *)rep;
}

/* Codes of a list, joined by spaces. */
static void s_codes(unit_t **units, size_t n, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", l ? " " : "", units[i]->code);
    }
}

/* The base tree every case builds on; children come before their parents on purpose. */
static void s_base_tree(void)
{
    unit_t rows[] = {
        s_unit("25966-01", "Đông Nhì", NEIGHBORHOOD, "25966"),
        s_unit("25966", "Lái Thiêu", WARD, "725"),
        s_unit("25963", "An Thạnh", WARD, "725"),
        s_unit("725", "Thuận An", DISTRICT, "74"),
        s_unit("74", "Bình Dương", PROVINCE, ""),
    };
    batch_t *b = s_upsert_ok(rows, 5);
    if (b) {
        protobuf_c_message_free_unpacked(&b->base, NULL);
    }
}

static long long s_units(void)
{
    return roster_sql_int(&s_f, "SELECT count(*) FROM units");
}

/* ------------------------------------------------------------------- cases */

static void test_tree_parents_later_in_batch(void)
{
    unit_t rows[] = {
        s_unit("25966-01", "Đông Nhì", NEIGHBORHOOD, "25966"),
        s_unit("25966", "Lái Thiêu", WARD, "725"),
        s_unit("25963", "An Thạnh", WARD, "725"),
        s_unit("725", "Thuận An", DISTRICT, "74"),
        s_unit("74", "Bình Dương", PROVINCE, ""),
    };
    batch_t *b = s_upsert_ok(rows, 5);
    PX_REQUIRE(b);
    PX_CHECK(b->committed);
    PX_CHECK_INT_EQ(b->n_errors, 0);
    PX_CHECK_INT_EQ(b->inserted + b->unchanged, 5);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM units WHERE code IN"
                                         " ('74','725','25966','25963','25966-01')"),
                    5);

    Phuxanh__Roster__V1__ListUnitsRequest req = PHUXANH__ROSTER__V1__LIST_UNITS_REQUEST__INIT;
    px_code_t rc;
    px_status_t st;
    req.parent_code = "725";
    Phuxanh__Roster__V1__ListUnitsResponse *r = s_list(&req, &rc, &st);
    PX_REQUIRE(r);
    char out[200];
    s_codes(r->units, r->n_units, out, sizeof out);
    PX_CHECK_STR_EQ(out, "25963 25966");
    PX_CHECK(r->tree_version > 0);
    PX_CHECK_STR_EQ(r->units[0]->name, "An Thạnh");
    PX_CHECK_INT_EQ(r->units[0]->level, WARD);
    PX_CHECK_STR_EQ(r->units[0]->parent_code, "725");
    PX_CHECK(r->units[0]->version > 0 && r->units[0]->version <= r->tree_version);
    PX_CHECK_STR_EQ(r->next_page_token, "");
    protobuf_c_message_free_unpacked(&r->base, NULL);

    Phuxanh__Roster__V1__ListUnitsRequest lv = PHUXANH__ROSTER__V1__LIST_UNITS_REQUEST__INIT;
    lv.level = PROVINCE;
    r = s_list(&lv, &rc, &st);
    PX_REQUIRE(r);
    s_codes(r->units, r->n_units, out, sizeof out);
    PX_CHECK_STR_EQ(out, "74");
    PX_CHECK_STR_EQ(r->units[0]->parent_code, "");
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_reimport_unchanged_and_since_version(void)
{
    s_base_tree();
    Phuxanh__Roster__V1__ListUnitsRequest req = PHUXANH__ROSTER__V1__LIST_UNITS_REQUEST__INIT;
    px_code_t rc;
    px_status_t st;
    Phuxanh__Roster__V1__ListUnitsResponse *r = s_list(&req, &rc, &st);
    PX_REQUIRE(r);
    int64_t v0 = r->tree_version;
    protobuf_c_message_free_unpacked(&r->base, NULL);

    unit_t rows[] = {
        s_unit("74", "Bình Dương", PROVINCE, ""),
        s_unit("725", "Thuận An", DISTRICT, "74"),
        s_unit("25966", "Lái Thiêu", WARD, "725"),
    };
    batch_t *b = s_upsert_ok(rows, 3);
    PX_REQUIRE(b);
    PX_CHECK(b->committed);
    PX_CHECK_INT_EQ(b->inserted, 0);
    PX_CHECK_INT_EQ(b->updated, 0);
    PX_CHECK_INT_EQ(b->unchanged, 3);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    r = s_list(&req, &rc, &st);
    PX_REQUIRE(r);
    PX_CHECK_INT_EQ(r->tree_version, v0);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    rows[2].name = "Lái Thiêu (mới)";
    b = s_upsert_ok(rows, 3);
    PX_REQUIRE(b);
    PX_CHECK_INT_EQ(b->updated, 1);
    PX_CHECK_INT_EQ(b->unchanged, 2);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    req.since_version = v0;
    r = s_list(&req, &rc, &st);
    PX_REQUIRE(r);
    char out[200];
    s_codes(r->units, r->n_units, out, sizeof out);
    PX_CHECK_STR_EQ(out, "25966");
    PX_CHECK(r->tree_version > v0);
    PX_CHECK(r->n_units == 1 && r->units[0]->version == r->tree_version);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    rows[2].name = "Lái Thiêu";
    b = s_upsert_ok(rows, 3);
    if (b) {
        protobuf_c_message_free_unpacked(&b->base, NULL);
    }
}

static void test_tree_refusals_write_nothing(void)
{
    s_base_tree();
    long long before = s_units();
    char longname[260];
    memset(longname, 'x', 201);
    longname[201] = '\0';
    unit_t rows[] = {
        s_unit("90001", "Phường Hợp Lệ", WARD, "725"),    /* 0: fine, not written */
        s_unit("90002", "Sai Cấp", WARD, "74"),           /* 1: ward under a province */
        s_unit("90003", "Mồ Côi", WARD, "99999"),         /* 2: unknown parent */
        s_unit("90004", "Tỉnh Có Cha", PROVINCE, "74"),   /* 3: province with a parent */
        s_unit("90005", "Huyện Không Cha", DISTRICT, ""), /* 4: district without one */
        s_unit("90006", "Không Cấp", 0, "725"),           /* 5: level unspecified */
        s_unit("90007", "", WARD, "725"),                 /* 6: empty name too */
        s_unit("90008", "", WARD, "725"),                 /* 7: empty name */
        s_unit("90009", longname, WARD, "725"),           /* 8: 201 characters */
        s_unit("90 10", "Mã Sai", WARD, "725"),           /* 9: bad code */
        s_unit("90001", "Trùng", WARD, "725"),            /* 10: same code twice */
        s_unit("90012", "Cha Trong Lô Sai Cấp", NEIGHBORHOOD, "90001-x"), /* 11: unknown */
    };
    size_t n = sizeof rows / sizeof rows[0];
    px_code_t rc;
    px_status_t st;
    batch_t *b = s_upsert(rows, n, false, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(b);
    PX_CHECK(!b->committed);
    PX_CHECK_INT_EQ(b->inserted + b->updated + b->unchanged, 0);
    static const struct {
        int index;
        const char *field;
        int code;
        const char *needle;
    } want[] = {
        {1, "parent_code", PX_INVALID_ARGUMENT, "province"},
        {2, "parent_code", PX_NOT_FOUND, "99999"},
        {3, "parent_code", PX_INVALID_ARGUMENT, "empty"},
        {4, "parent_code", PX_INVALID_ARGUMENT, "must be set"},
        {5, "level", PX_INVALID_ARGUMENT, "province"},
        {6, "name", PX_INVALID_ARGUMENT, "empty"},
        {7, "name", PX_INVALID_ARGUMENT, "empty"},
        {8, "name", PX_INVALID_ARGUMENT, "200"},
        {9, "code", PX_INVALID_ARGUMENT, "letters"},
        {10, "", PX_INVALID_ARGUMENT, "twice"},
        {11, "parent_code", PX_NOT_FOUND, "90001-x"},
    };
    size_t nw = sizeof want / sizeof want[0];
    PX_CHECK_INT_EQ(b->n_errors, nw);
    for (size_t i = 0; i < nw && i < b->n_errors; i++) {
        PX_CHECK_INT_EQ(b->errors[i]->index, want[i].index);
        PX_CHECK_STR_EQ(b->errors[i]->field, want[i].field);
        PX_CHECK_INT_EQ(b->errors[i]->code, want[i].code);
        PX_CHECK(strstr(b->errors[i]->message, want[i].needle) != NULL);
    }
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(s_units(), before);

    /* Invalid UTF-8 is not a row's problem but the request's: proto3 strings are UTF-8, and the
     * RPC layer refuses the whole call before decoding it, naming the row and field. */
    unit_t bad[] = {
        s_unit("90001", "Phường Hợp Lệ", WARD, "725"),
        s_unit("90007", "Hỏng \xE1\xBA UTF-8", WARD, "725"),
    };
    b = s_upsert(bad, 2, false, &rc, &st);
    PX_CHECK(b == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "units[1].name: is not valid UTF-8", 33) == 0);
    if (b) {
        protobuf_c_message_free_unpacked(&b->base, NULL);
    }
    PX_CHECK_INT_EQ(s_units(), before);
}

static void test_parent_in_batch_wrong_level(void)
{
    s_base_tree();
    /* The batch's level wins over nothing stored: a neighborhood under a new district. */
    unit_t rows[] = {
        s_unit("726-01", "Khu Phố Lạc", NEIGHBORHOOD, "726"),
        s_unit("726", "Dĩ An", DISTRICT, "74"),
    };
    px_code_t rc;
    px_status_t st;
    batch_t *b = s_upsert(rows, 2, false, &rc, &st);
    PX_REQUIRE(b);
    PX_CHECK(!b->committed);
    PX_REQUIRE(b->n_errors == 1);
    PX_CHECK_INT_EQ(b->errors[0]->index, 0);
    PX_CHECK_STR_EQ(b->errors[0]->field, "parent_code");
    PX_CHECK(strstr(b->errors[0]->message, "district") != NULL);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM units WHERE code LIKE '726%'"), 0);
}

static void test_level_change_with_children_refused(void)
{
    s_base_tree();
    unit_t rows[] = {s_unit("725", "Thuận An", WARD, "74")};
    px_code_t rc;
    px_status_t st;
    batch_t *b = s_upsert(rows, 1, false, &rc, &st);
    PX_REQUIRE(b);
    PX_CHECK(!b->committed);
    PX_REQUIRE(b->n_errors == 1);
    PX_CHECK_STR_EQ(b->errors[0]->field, "level");
    PX_CHECK_INT_EQ(b->errors[0]->code, PX_FAILED_PRECONDITION);
    PX_CHECK(strstr(b->errors[0]->message, "children") != NULL);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT level FROM units WHERE code = '725'"), 2);
}

static void test_get_units_with_ancestors(void)
{
    s_base_tree();
    char *codes[] = {"25966-01", "nope", "25966-01", "725", "nope", "also-missing"};
    px_code_t rc;
    px_status_t st;
    Phuxanh__Roster__V1__GetUnitsResponse *r = s_get(codes, 6, true, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(r);
    char out[200];
    s_codes(r->units, r->n_units, out, sizeof out);
    PX_CHECK_STR_EQ(out, "25966 25966-01 725 74");
    PX_REQUIRE(r->n_not_found_codes == 2);
    PX_CHECK_STR_EQ(r->not_found_codes[0], "nope");
    PX_CHECK_STR_EQ(r->not_found_codes[1], "also-missing");
    PX_CHECK(r->tree_version > 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    r = s_get(codes, 6, false, &rc, &st);
    PX_REQUIRE(r);
    s_codes(r->units, r->n_units, out, sizeof out);
    PX_CHECK_STR_EQ(out, "25966-01 725");
    protobuf_c_message_free_unpacked(&r->base, NULL);

    char **many = calloc(1001, sizeof *many);
    PX_REQUIRE(many);
    for (int i = 0; i < 1001; i++) {
        many[i] = "74";
    }
    PX_CHECK(s_get(many, 1001, false, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "codes:", 6) == 0);
    free(many);
}

static void test_list_pagination_and_refusals(void)
{
    s_base_tree();
    enum { N = 23 };
    unit_t rows[N];
    char codes[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(codes[i], sizeof codes[i], "725-P%02d", (i * 7) % N);
        rows[i] = s_unit(codes[i], "Phường Trang", WARD, "725");
    }
    batch_t *b = s_upsert_ok(rows, N);
    PX_REQUIRE(b);
    PX_CHECK(b->committed);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    long long total_units = s_units();

    int seen = 0, pages = 0;
    char last[40] = "";
    char *token = strdup("");
    int64_t first_version = -1;
    while (token && pages < 100) {
        Phuxanh__Roster__V1__ListUnitsRequest req = PHUXANH__ROSTER__V1__LIST_UNITS_REQUEST__INIT;
        req.page_size = 4;
        req.page_token = token;
        px_code_t rc;
        px_status_t st;
        Phuxanh__Roster__V1__ListUnitsResponse *r = s_list(&req, &rc, &st);
        free(token);
        token = NULL;
        PX_REQUIRE(r);
        if (first_version < 0) {
            first_version = r->tree_version;
        }
        PX_CHECK_INT_EQ(r->tree_version, first_version);
        pages++;
        for (size_t i = 0; i < r->n_units; i++) {
            PX_CHECK(strcmp(r->units[i]->code, last) > 0);
            snprintf(last, sizeof last, "%s", r->units[i]->code);
            seen++;
        }
        if (r->next_page_token && *r->next_page_token) {
            token = strdup(r->next_page_token);
        }
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    PX_CHECK_INT_EQ(seen, total_units);
    PX_CHECK_INT_EQ(pages, (int)((total_units + 3) / 4));

    px_code_t rc;
    px_status_t st;
    Phuxanh__Roster__V1__ListUnitsRequest bad = PHUXANH__ROSTER__V1__LIST_UNITS_REQUEST__INIT;
    bad.page_token = "p1.zz";
    PX_CHECK(s_list(&bad, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "page_token:", 11) == 0);
    bad.page_token = "";
    bad.page_size = -5;
    PX_CHECK(s_list(&bad, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "page_size:", 10) == 0);
    bad.page_size = 0;
    bad.level = 9;
    PX_CHECK(s_list(&bad, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "level:", 6) == 0);
    bad.level = 0;
    bad.since_version = -1;
    PX_CHECK(s_list(&bad, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "since_version:", 14) == 0);
    bad.since_version = 0;
    bad.parent_code = "không hợp lệ";
    PX_CHECK(s_list(&bad, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "parent_code:", 12) == 0);
}

static void test_validate_only_audit_and_bounds(void)
{
    s_base_tree();
    long long audits =
        roster_sql_int(&s_f, "SELECT count(*) FROM audit WHERE method LIKE '%UpsertUnits'");
    unit_t rows[] = {s_unit("25969", "Bình Hòa", WARD, "725")};
    px_code_t rc;
    px_status_t st;
    batch_t *b = s_upsert(rows, 1, true, &rc, &st);
    PX_REQUIRE(b);
    PX_CHECK(!b->committed);
    PX_CHECK_INT_EQ(b->inserted, 1);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM units WHERE code = '25969'"), 0);
    PX_CHECK_INT_EQ(
        roster_sql_int(&s_f, "SELECT count(*) FROM audit WHERE method LIKE '%UpsertUnits'"),
        audits);

    b = s_upsert_ok(rows, 1);
    PX_REQUIRE(b);
    PX_CHECK(b->committed);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM units WHERE code = '25969'"), 1);
    PX_CHECK_INT_EQ(
        roster_sql_int(&s_f, "SELECT count(*) FROM audit WHERE method LIKE '%UpsertUnits'"),
        audits + 1);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT (detail->>'inserted')::int FROM audit"
                                         " ORDER BY id DESC LIMIT 1"),
                    1);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "UPDATE audit SET method = 'x' RETURNING 1"), -1);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "DELETE FROM audit RETURNING 1"), -1);

    size_t n = 10001;
    unit_t *many = calloc(n, sizeof *many);
    PX_REQUIRE(many);
    for (size_t i = 0; i < n; i++) {
        many[i] = s_unit("74", "Bình Dương", PROVINCE, "");
    }
    PX_CHECK(s_upsert(many, n, false, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "units:", 6) == 0);
    free(many);
    /* An empty batch: nothing to write, so all of it committed - unless only validated. */
    b = s_upsert(rows, 0, false, &rc, &st);
    PX_REQUIRE(b);
    PX_CHECK(b->committed);
    PX_CHECK_INT_EQ(b->inserted + b->updated + b->unchanged + (int)b->n_errors, 0);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    b = s_upsert(rows, 0, true, &rc, &st);
    PX_REQUIRE(b);
    PX_CHECK(!b->committed);
    protobuf_c_message_free_unpacked(&b->base, NULL);
}

static const px_test_case_t s_cases[] = {
    {"tree_parents_later_in_batch", test_tree_parents_later_in_batch},
    {"reimport_unchanged_and_since_version", test_reimport_unchanged_and_since_version},
    {"tree_refusals_write_nothing", test_tree_refusals_write_nothing},
    {"parent_in_batch_wrong_level", test_parent_in_batch_wrong_level},
    {"level_change_with_children_refused", test_level_change_with_children_refused},
    {"get_units_with_ancestors", test_get_units_with_ancestors},
    {"list_pagination_and_refusals", test_list_pagination_and_refusals},
    {"validate_only_audit_and_bounds", test_validate_only_audit_and_bounds},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return roster_fixture_main(&s_f, "roster_units", NULL, NULL, NULL, argc, argv, s_cases);
}
