/*
 * test_volunteers.c - UpsertVolunteers, GetVolunteer and ListVolunteers against
 * a real px-roster on its own database: batches are all or nothing and say which
 * rows were wrong, re-importing changes nothing, 10,000 rows commit in one call
 * quickly, names with awkward characters survive the array encoding, the name
 * search ignores diacritics, and paging visits every row once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/clock.h"
#include "px_test.h"
#include "roster_fixture.h"

typedef Phuxanh__Roster__V1__Volunteer vol_t;
typedef Phuxanh__Roster__V1__BatchUpsertResponse batch_t;

static roster_fixture_t s_f;
static Google__Protobuf__BoolValue s_true = {
    PROTOBUF_C_MESSAGE_INIT(&google__protobuf__bool_value__descriptor), 1};
static Google__Protobuf__BoolValue s_false = {
    PROTOBUF_C_MESSAGE_INIT(&google__protobuf__bool_value__descriptor), 0};

static vol_t s_vol(const char *code, const char *name, const char *dept, const char *phone)
{
    vol_t v = PHUXANH__ROSTER__V1__VOLUNTEER__INIT;
    v.code = (char *)code;
    v.full_name = (char *)name;
    v.rank = "Trung úy";
    v.department = (char *)dept;
    v.union_role = "Đoàn viên";
    v.phone = (char *)phone;
    return v;
}

/* UpsertVolunteers of n rows; NULL on a call error (code in *code). */
static batch_t *s_upsert(vol_t *rows, size_t n, bool validate_only, px_code_t *code,
                         px_status_t *st)
{
    vol_t **p = calloc(n + 1, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i] = &rows[i];
    }
    Phuxanh__Roster__V1__UpsertVolunteersRequest req =
        PHUXANH__ROSTER__V1__UPSERT_VOLUNTEERS_REQUEST__INIT;
    req.volunteers = p;
    req.n_volunteers = n;
    req.validate_only = validate_only;
    ProtobufCMessage *rep = NULL;
    *code = roster_call(&s_f, "UpsertVolunteers", &req.base,
                        &phuxanh__roster__v1__batch_upsert_response__descriptor, &rep, st);
    free(p);
    return (batch_t *)rep;
}

static batch_t *s_upsert_ok(vol_t *rows, size_t n)
{
    px_code_t code;
    px_status_t st;
    batch_t *b = s_upsert(rows, n, false, &code, &st);
    if (code != PX_OK) {
        fprintf(stderr, "UpsertVolunteers: %d %s\n", code, st.message);
    }
    return b;
}

static Phuxanh__Roster__V1__GetVolunteerResponse *s_get(const char *code, px_code_t *rc,
                                                        px_status_t *st)
{
    Phuxanh__Roster__V1__GetVolunteerRequest req = PHUXANH__ROSTER__V1__GET_VOLUNTEER_REQUEST__INIT;
    req.code = (char *)code;
    ProtobufCMessage *rep = NULL;
    *rc = roster_call(&s_f, "GetVolunteer", &req.base,
                      &phuxanh__roster__v1__get_volunteer_response__descriptor, &rep, st);
    return (Phuxanh__Roster__V1__GetVolunteerResponse *)rep;
}

static Phuxanh__Roster__V1__ListVolunteersResponse *
s_list(Phuxanh__Roster__V1__ListVolunteersRequest *req, px_code_t *rc, px_status_t *st)
{
    ProtobufCMessage *rep = NULL;
    *rc = roster_call(&s_f, "ListVolunteers", &req->base,
                      &phuxanh__roster__v1__list_volunteers_response__descriptor, &rep, st);
    return (Phuxanh__Roster__V1__ListVolunteersResponse *)rep;
}

/* The codes a search finds among the search case's rows (department "Phòng S"), joined by
 * spaces. */
static void s_search(const char *query, char *out, size_t cap)
{
    Phuxanh__Roster__V1__ListVolunteersRequest req =
        PHUXANH__ROSTER__V1__LIST_VOLUNTEERS_REQUEST__INIT;
    req.query = (char *)query;
    req.department = "Phòng S";
    req.page_size = 1000;
    px_code_t rc;
    px_status_t st;
    Phuxanh__Roster__V1__ListVolunteersResponse *r = s_list(&req, &rc, &st);
    out[0] = '\0';
    if (rc != PX_OK || !r) {
        snprintf(out, cap, "error %d: %.200s", rc, st.message);
        return;
    }
    for (size_t i = 0; i < r->n_volunteers; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", l ? " " : "", r->volunteers[i]->code);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static long long s_count(const char *where)
{
    char sql[400];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM volunteers WHERE %s", where);
    return roster_sql_int(&s_f, sql);
}

/* ------------------------------------------------------------------- cases */

static void test_upsert_get_and_reimport(void)
{
    vol_t rows[] = {
        s_vol("UG0001", "Nguyễn Văn An", "Phòng Tham mưu", "+84912345678"),
        s_vol("UG0002", "Đặng Thị Bình", "Phòng Tham mưu", "038 765.43-21"),
        s_vol("UG0003", "Lê Văn Cường", "Phòng Cảnh sát hình sự", ""),
    };
    batch_t *b = s_upsert_ok(rows, 3);
    PX_REQUIRE(b);
    PX_CHECK(b->committed);
    PX_CHECK_INT_EQ(b->inserted, 3);
    PX_CHECK_INT_EQ(b->updated, 0);
    PX_CHECK_INT_EQ(b->unchanged, 0);
    PX_CHECK_INT_EQ(b->n_errors, 0);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    px_code_t rc;
    px_status_t st;
    Phuxanh__Roster__V1__GetVolunteerResponse *g = s_get("UG0001", &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(g && g->volunteer);
    PX_CHECK_STR_EQ(g->volunteer->full_name, "Nguyễn Văn An");
    PX_CHECK_STR_EQ(g->volunteer->rank, "Trung úy");
    PX_CHECK_STR_EQ(g->volunteer->department, "Phòng Tham mưu");
    PX_CHECK_STR_EQ(g->volunteer->phone, "0912345678");
    PX_CHECK(g->volunteer->active && g->volunteer->active->value);
    /* Written grouped, stored in the national form. */
    PX_CHECK_INT_EQ(s_count("code = 'UG0002' AND phone = '0387654321'"), 1);
    PX_CHECK(g->volunteer->created_at && g->volunteer->created_at->seconds > 1600000000);
    PX_CHECK(g->volunteer->updated_at && g->volunteer->updated_at->seconds > 1600000000);
    protobuf_c_message_free_unpacked(&g->base, NULL);

    /* The same batch again: all unchanged; one changed row: one updated. */
    b = s_upsert_ok(rows, 3);
    PX_REQUIRE(b);
    PX_CHECK(b->committed);
    PX_CHECK_INT_EQ(b->inserted, 0);
    PX_CHECK_INT_EQ(b->updated, 0);
    PX_CHECK_INT_EQ(b->unchanged, 3);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    rows[2].department = "Phòng Tham mưu";
    b = s_upsert_ok(rows, 3);
    PX_REQUIRE(b);
    PX_CHECK_INT_EQ(b->inserted, 0);
    PX_CHECK_INT_EQ(b->updated, 1);
    PX_CHECK_INT_EQ(b->unchanged, 2);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(s_count("code = 'UG0003' AND department = 'Phòng Tham mưu'"), 1);
}

static void test_active_absent_keeps_stored(void)
{
    vol_t rows[] = {s_vol("AC0001", "Phạm Văn Dũng", "Phòng A", "")};
    rows[0].active = &s_false;
    batch_t *b = s_upsert_ok(rows, 1);
    PX_REQUIRE(b);
    PX_CHECK_INT_EQ(b->inserted, 1);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    rows[0].active = NULL; /* absent: stays false */
    b = s_upsert_ok(rows, 1);
    PX_REQUIRE(b);
    PX_CHECK_INT_EQ(b->unchanged, 1);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(s_count("code = 'AC0001' AND NOT active"), 1);
    rows[0].active = &s_true;
    b = s_upsert_ok(rows, 1);
    PX_REQUIRE(b);
    PX_CHECK_INT_EQ(b->updated, 1);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(s_count("code = 'AC0001' AND active"), 1);
}

static void test_awkward_characters_survive(void)
{
    static const char *const names[] = {
        "Quote \" in the middle", "Comma, and {braces}",     "Back\\slash \\\\ twice", "NULL", "\"",
        "Trailing backslash \\",  "Tab-free 'single' quote", "Ngô {\"mix\"}, \\ end",
    };
    size_t n = sizeof names / sizeof names[0];
    vol_t rows[8];
    char codes[8][16];
    for (size_t i = 0; i < n; i++) {
        snprintf(codes[i], sizeof codes[i], "AW%04zu", i);
        rows[i] = s_vol(codes[i], names[i], names[i], "");
    }
    batch_t *b = s_upsert_ok(rows, n);
    PX_REQUIRE(b);
    PX_CHECK(b->committed);
    PX_CHECK_INT_EQ(b->inserted, (int)n);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    for (size_t i = 0; i < n; i++) {
        px_code_t rc;
        px_status_t st;
        Phuxanh__Roster__V1__GetVolunteerResponse *g = s_get(codes[i], &rc, &st);
        PX_CHECK_INT_EQ(rc, PX_OK);
        if (g && g->volunteer) {
            PX_CHECK_STR_EQ(g->volunteer->full_name, names[i]);
            PX_CHECK_STR_EQ(g->volunteer->department, names[i]);
        }
        if (g) {
            protobuf_c_message_free_unpacked(&g->base, NULL);
        }
    }
}

static void test_bad_rows_refused_nothing_written(void)
{
    char longname[260];
    memset(longname, 'a', 201);
    longname[201] = '\0';
    vol_t rows[] = {
        s_vol("BR0001", "Good Row", "Phòng A", "0912345678"),   /* 0: fine */
        s_vol("BR0002", "Bad Phone Too", "Phòng A", "12"),      /* 1: too short */
        s_vol("BR0003", "", "Phòng A", ""),                     /* 2: empty name */
        s_vol("BR0004", longname, "Phòng A", ""),               /* 3: 201 characters */
        s_vol("BR0005", "Bad Phone", "Phòng A", "0212345678"),  /* 4: not a mobile prefix */
        s_vol("BR-06", "Bad Code", "Phòng A", ""),              /* 5: '-' not allowed */
        s_vol("BR0001", "Twice", "Phòng A", ""),                /* 6: duplicate of row 0 */
        s_vol("BR0008", "Letter O", "Phòng A", "O91 234 5678"), /* 7: not a digit */
        s_vol("BR0009", "Fine Too", "Phòng A", "84912345678"),  /* 8: fine */
    };
    px_code_t rc;
    px_status_t st;
    batch_t *b = s_upsert(rows, 9, false, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(b);
    PX_CHECK(!b->committed);
    PX_CHECK_INT_EQ(b->inserted + b->updated + b->unchanged, 0);
    PX_REQUIRE(b->n_errors == 7);
    static const struct {
        int index;
        const char *field;
        const char *needle;
    } want[] = {
        {1, "phone", ""},       {2, "full_name", "empty"}, {3, "full_name", "200"},
        {4, "phone", "mobile"}, {5, "code", "letters"},    {6, "", "twice"},
        {7, "phone", "mobile"},
    };
    for (size_t i = 0; i < 7; i++) {
        PX_CHECK_INT_EQ(b->errors[i]->index, want[i].index);
        PX_CHECK_STR_EQ(b->errors[i]->field, want[i].field);
        PX_CHECK_INT_EQ(b->errors[i]->code, PX_INVALID_ARGUMENT);
        PX_CHECK(strstr(b->errors[i]->message, want[i].needle) != NULL);
    }
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(s_count("code LIKE 'BR%'"), 0);

    /* Invalid UTF-8 refuses the whole call before it is decoded, naming the row and field. */
    vol_t bad[] = {
        s_vol("BR0001", "Good Row", "Phòng A", "0912345678"),
        s_vol("BR0002", "Bad \xC3\x28 UTF-8", "Phòng A", ""),
    };
    b = s_upsert(bad, 2, false, &rc, &st);
    PX_CHECK(b == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "volunteers[1].full_name: is not valid UTF-8", 43) == 0);
    if (b) {
        protobuf_c_message_free_unpacked(&b->base, NULL);
    }
    PX_CHECK_INT_EQ(s_count("code LIKE 'BR%'"), 0);
}

static void test_too_many_rows(void)
{
    size_t n = 10001;
    vol_t *rows = calloc(n, sizeof *rows);
    char(*codes)[16] = calloc(n, sizeof *codes);
    PX_REQUIRE(rows && codes);
    for (size_t i = 0; i < n; i++) {
        snprintf(codes[i], sizeof codes[i], "TM%05zu", i);
        rows[i] = s_vol(codes[i], "X", "", "");
    }
    px_code_t rc;
    px_status_t st;
    batch_t *b = s_upsert(rows, n, false, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "volunteers") != NULL);
    PX_CHECK(b == NULL);
    free(rows);
    free(codes);
}

static void test_validate_only_writes_nothing(void)
{
    vol_t rows[] = {s_vol("VO0001", "Chỉ Kiểm Tra", "Phòng A", "")};
    px_code_t rc;
    px_status_t st;
    batch_t *b = s_upsert(rows, 1, true, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(b);
    PX_CHECK(!b->committed);
    PX_CHECK_INT_EQ(b->inserted, 1);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(s_count("code = 'VO0001'"), 0);
}

static void test_get_refusals(void)
{
    px_code_t rc;
    px_status_t st;
    PX_CHECK(s_get("NOPE9999", &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_NOT_FOUND);
    PX_CHECK(strncmp(st.message, "code:", 5) == 0);
    PX_CHECK(s_get("no-such", &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "code:", 5) == 0);
    PX_CHECK(s_get("", &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
}

static void test_search_ignores_diacritics(void)
{
    vol_t rows[] = {
        s_vol("SE0001", "Nguyễn Văn An", "Phòng S", ""),
        s_vol("SE0002", "Đặng  Minh Minh", "Phòng S", ""),
        s_vol("SE0003", "Nguyễn Văn Anh", "Phòng S", ""),
        s_vol("SE0004", "Trần 50% Lộc", "Phòng S", ""),
        s_vol("SE0005", "Trần 500 Lộc", "Phòng S", ""),
        s_vol("SE0006", "Lý_Thị Hoa", "Phòng S", ""),
        s_vol("SE0007", "Lý Thị Hoa", "Phòng S", ""),
        s_vol("SE0008", "Vũ Back\\x Slash", "Phòng S", ""),
        s_vol("SE0009", "Vũ Backx Slash", "Phòng S", ""),
    };
    batch_t *b = s_upsert_ok(rows, 9);
    PX_REQUIRE(b);
    PX_CHECK(b->committed);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    char out[512];
    s_search("nguyen van an", out, sizeof out);
    PX_CHECK_STR_EQ(out, "SE0001 SE0003");
    s_search("NGUYỄN   văn anh", out, sizeof out);
    PX_CHECK_STR_EQ(out, "SE0003");
    s_search("dang", out, sizeof out);
    PX_CHECK_STR_EQ(out, "SE0002");
    s_search("đặng minh", out, sizeof out);
    PX_CHECK_STR_EQ(out, "SE0002");
    /* LIKE metacharacters match themselves. */
    s_search("50%", out, sizeof out);
    PX_CHECK_STR_EQ(out, "SE0004");
    s_search("ly_", out, sizeof out);
    PX_CHECK_STR_EQ(out, "SE0006");
    s_search("back\\x", out, sizeof out);
    PX_CHECK_STR_EQ(out, "SE0008");
}

static void test_filters(void)
{
    vol_t rows[] = {
        s_vol("FI0001", "Filter One", "Phòng Lọc", ""),
        s_vol("FI0002", "Filter Two", "Phòng Lọc", ""),
        s_vol("FI0003", "Filter Three", "Phòng Khác", ""),
    };
    rows[1].active = &s_false;
    batch_t *b = s_upsert_ok(rows, 3);
    PX_REQUIRE(b);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    Phuxanh__Roster__V1__ListVolunteersRequest req =
        PHUXANH__ROSTER__V1__LIST_VOLUNTEERS_REQUEST__INIT;
    px_code_t rc;
    px_status_t st;
    req.department = "Phòng Lọc";
    Phuxanh__Roster__V1__ListVolunteersResponse *r = s_list(&req, &rc, &st);
    PX_REQUIRE(r);
    PX_CHECK_INT_EQ(r->n_volunteers, 2);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    req.active = &s_true;
    r = s_list(&req, &rc, &st);
    PX_REQUIRE(r);
    PX_REQUIRE(r->n_volunteers == 1);
    PX_CHECK_STR_EQ(r->volunteers[0]->code, "FI0001");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    req.active = &s_false;
    r = s_list(&req, &rc, &st);
    PX_REQUIRE(r);
    PX_REQUIRE(r->n_volunteers == 1);
    PX_CHECK_STR_EQ(r->volunteers[0]->code, "FI0002");
    PX_CHECK(r->volunteers[0]->active && !r->volunteers[0]->active->value);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    Phuxanh__Roster__V1__ListVolunteersRequest byc =
        PHUXANH__ROSTER__V1__LIST_VOLUNTEERS_REQUEST__INIT;
    char *codes[] = {"FI0003", "FI0001", "NOSUCH1"};
    byc.codes = codes;
    byc.n_codes = 3;
    r = s_list(&byc, &rc, &st);
    PX_REQUIRE(r);
    PX_REQUIRE(r->n_volunteers == 2);
    PX_CHECK_STR_EQ(r->volunteers[0]->code, "FI0001");
    PX_CHECK_STR_EQ(r->volunteers[1]->code, "FI0003");
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* Refusals. */
    Phuxanh__Roster__V1__ListVolunteersRequest bad =
        PHUXANH__ROSTER__V1__LIST_VOLUNTEERS_REQUEST__INIT;
    bad.page_size = -1;
    PX_CHECK(s_list(&bad, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "page_size:", 10) == 0);
    bad.page_size = 0;
    bad.page_token = "garbage";
    PX_CHECK(s_list(&bad, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "page_token:", 11) == 0);
    bad.page_token = "";
    bad.query = "bad \xff utf-8";
    PX_CHECK(s_list(&bad, &rc, &st) == NULL);
    PX_CHECK_INT_EQ(rc, PX_INVALID_ARGUMENT);
    PX_CHECK(strncmp(st.message, "query:", 6) == 0);
}

static void test_pagination_walks_all_once(void)
{
    enum { N = 250 };
    vol_t rows[N];
    char codes[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(codes[i], sizeof codes[i], "PG%04d", (i * 37) % N); /* not in order */
        rows[i] = s_vol(codes[i], "Người Phân Trang", "Phòng Trang", "");
    }
    batch_t *b = s_upsert_ok(rows, N);
    PX_REQUIRE(b);
    PX_CHECK_INT_EQ(b->inserted, N);
    protobuf_c_message_free_unpacked(&b->base, NULL);

    int seen[N] = {0}, total = 0, pages = 0;
    char last[40] = "";
    char *token = strdup("");
    while (token && pages < 100) {
        Phuxanh__Roster__V1__ListVolunteersRequest req =
            PHUXANH__ROSTER__V1__LIST_VOLUNTEERS_REQUEST__INIT;
        req.department = "Phòng Trang";
        req.page_size = 7;
        req.page_token = token;
        px_code_t rc;
        px_status_t st;
        Phuxanh__Roster__V1__ListVolunteersResponse *r = s_list(&req, &rc, &st);
        free(token);
        token = NULL;
        PX_REQUIRE(r);
        pages++;
        PX_CHECK(r->n_volunteers <= 7);
        for (size_t i = 0; i < r->n_volunteers; i++) {
            const char *c = r->volunteers[i]->code;
            PX_CHECK(strcmp(c, last) > 0);
            snprintf(last, sizeof last, "%s", c);
            int k = atoi(c + 2);
            if (k >= 0 && k < N) {
                seen[k]++;
            }
            total++;
        }
        if (r->next_page_token && *r->next_page_token) {
            token = strdup(r->next_page_token);
        }
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    PX_CHECK_INT_EQ(total, N);
    PX_CHECK_INT_EQ(pages, (N + 6) / 7);
    for (int i = 0; i < N; i++) {
        PX_CHECK_INT_EQ(seen[i], 1);
    }
}

static void test_ten_thousand_in_one_call(void)
{
    enum { N = 10000 };
    static const char *const family[] = {"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Đặng"};
    static const char *const given[] = {"Văn An", "Thị Bình", "Minh Châu", "Ngọc Lan", "Quốc Huy"};
    vol_t *rows = calloc(N, sizeof *rows);
    char(*codes)[16] = calloc(N, sizeof *codes);
    char(*names)[64] = calloc(N, sizeof *names);
    char(*phones)[16] = calloc(N, sizeof *phones);
    PX_REQUIRE(rows && codes && names && phones);
    for (int i = 0; i < N; i++) {
        snprintf(codes[i], sizeof codes[i], "BK%05d", i);
        snprintf(names[i], sizeof names[i], "%s %s %d", family[i % 6], given[i % 5], i);
        snprintf(phones[i], sizeof phones[i], "09%08d", i);
        rows[i] = s_vol(codes[i], names[i], i % 2 ? "Phòng Tham mưu" : "Phòng An ninh", phones[i]);
    }
    long long audit_before = roster_sql_int(&s_f, "SELECT count(*) FROM audit");
    int64_t t0 = px_clock_us();
    batch_t *b = s_upsert_ok(rows, N);
    int64_t t1 = px_clock_us();
    PX_REQUIRE(b);
    printf("upsert of %d volunteers in one call: %.1f ms\n", N, (double)(t1 - t0) / 1000.0);
    PX_CHECK(b->committed);
    PX_CHECK_INT_EQ(b->inserted, N);
    PX_CHECK(t1 - t0 < 2000000);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(s_count("code LIKE 'BK%'"), N);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM audit"), audit_before + 1);

    /* The same file again changes nothing. */
    t0 = px_clock_us();
    b = s_upsert_ok(rows, N);
    t1 = px_clock_us();
    PX_REQUIRE(b);
    printf("re-import of the same %d volunteers: %.1f ms\n", N, (double)(t1 - t0) / 1000.0);
    PX_CHECK(b->committed);
    PX_CHECK_INT_EQ(b->inserted, 0);
    PX_CHECK_INT_EQ(b->updated, 0);
    PX_CHECK_INT_EQ(b->unchanged, N);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    /* Nothing was written, so nothing was audited. */
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM audit"), audit_before + 1);

    /* One bad row sinks the batch: the other 9,999 changes are not written. */
    for (int i = 0; i < N; i++) {
        rows[i].rank = "Thượng úy";
    }
    rows[N - 1].phone = "12345";
    px_code_t rc;
    px_status_t st;
    b = s_upsert(rows, N, false, &rc, &st);
    PX_CHECK_INT_EQ(rc, PX_OK);
    PX_REQUIRE(b);
    PX_CHECK(!b->committed);
    PX_REQUIRE(b->n_errors == 1);
    PX_CHECK_INT_EQ(b->errors[0]->index, N - 1);
    PX_CHECK_STR_EQ(b->errors[0]->field, "phone");
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(s_count("code LIKE 'BK%' AND rank = 'Thượng úy'"), 0);
    free(rows);
    free(codes);
    free(names);
    free(phones);
}

static void test_audit_written_and_append_only(void)
{
    long long before =
        roster_sql_int(&s_f, "SELECT count(*) FROM audit WHERE method LIKE '%UpsertVolunteers'");
    vol_t rows[] = {s_vol("AU0001", "Kiểm Toán", "Phòng A", "")};
    batch_t *b = s_upsert_ok(rows, 1);
    PX_REQUIRE(b);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    PX_CHECK_INT_EQ(
        roster_sql_int(&s_f, "SELECT count(*) FROM audit WHERE method LIKE '%UpsertVolunteers'"),
        before + 1);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM (SELECT * FROM audit"
                                         " ORDER BY id DESC LIMIT 1) a"
                                         " WHERE caller = 'roster-test' AND request_id <> ''"
                                         " AND (detail->>'inserted')::int = 1"
                                         " AND (detail->>'rows')::int = 1"),
                    1);
    /* A refused batch writes no audit row. */
    rows[0].full_name = "";
    px_code_t rc;
    px_status_t st;
    b = s_upsert(rows, 1, false, &rc, &st);
    PX_REQUIRE(b);
    PX_CHECK(!b->committed);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    long long total = roster_sql_int(&s_f, "SELECT count(*) FROM audit");
    PX_CHECK_INT_EQ(
        roster_sql_int(&s_f, "SELECT count(*) FROM audit WHERE method LIKE '%UpsertVolunteers'"),
        before + 1);
    /* The trail cannot be edited or removed, even with direct SQL. */
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "UPDATE audit SET caller = 'x' RETURNING 1"), -1);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "DELETE FROM audit RETURNING 1"), -1);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM audit"), total);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM audit WHERE caller = 'x'"), 0);
}

static const px_test_case_t s_cases[] = {
    {"upsert_get_and_reimport", test_upsert_get_and_reimport},
    {"active_absent_keeps_stored", test_active_absent_keeps_stored},
    {"awkward_characters_survive", test_awkward_characters_survive},
    {"bad_rows_refused_nothing_written", test_bad_rows_refused_nothing_written},
    {"too_many_rows", test_too_many_rows},
    {"validate_only_writes_nothing", test_validate_only_writes_nothing},
    {"get_refusals", test_get_refusals},
    {"search_ignores_diacritics", test_search_ignores_diacritics},
    {"filters", test_filters},
    {"pagination_walks_all_once", test_pagination_walks_all_once},
    {"ten_thousand_in_one_call", test_ten_thousand_in_one_call},
    {"audit_written_and_append_only", test_audit_written_and_append_only},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return roster_fixture_main(&s_f, "roster_volunteers", NULL, NULL, NULL, argc, argv, s_cases);
}
