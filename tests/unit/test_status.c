/*
 * test_status.c - code names in both spellings, status messages, and UTF-8-safe copies.
 */
#include <string.h>

#include "phuxanh/status.h"
#include "px_test.h"

/* Every code's name in both spellings round-trips through px_code_parse. */
static void test_names_round_trip(void)
{
    for (int c = 0; c < PX_CODE_COUNT; c++) {
        PX_CHECK(px_code_valid(c));
        const char *grpc = px_code_name((px_code_t)c);
        const char *connect = px_code_connect_name((px_code_t)c);
        PX_REQUIRE(grpc && connect);
        px_code_t parsed = PX_UNKNOWN;
        PX_CHECK(px_code_parse(grpc, &parsed));
        PX_CHECK_INT_EQ(parsed, c);
        parsed = PX_UNKNOWN;
        PX_CHECK(px_code_parse(connect, &parsed));
        PX_CHECK_INT_EQ(parsed, c);
    }
}

/* The exact spellings the two protocols use, including where they differ (CANCELLED). */
static void test_names_spelling(void)
{
    static const struct {
        px_code_t code;
        const char *grpc;
        const char *connect;
    } want[] = {
        {PX_OK, "OK", "ok"},
        {PX_CANCELLED, "CANCELLED", "canceled"},
        {PX_UNKNOWN, "UNKNOWN", "unknown"},
        {PX_INVALID_ARGUMENT, "INVALID_ARGUMENT", "invalid_argument"},
        {PX_DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", "deadline_exceeded"},
        {PX_NOT_FOUND, "NOT_FOUND", "not_found"},
        {PX_ALREADY_EXISTS, "ALREADY_EXISTS", "already_exists"},
        {PX_PERMISSION_DENIED, "PERMISSION_DENIED", "permission_denied"},
        {PX_RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED", "resource_exhausted"},
        {PX_FAILED_PRECONDITION, "FAILED_PRECONDITION", "failed_precondition"},
        {PX_ABORTED, "ABORTED", "aborted"},
        {PX_OUT_OF_RANGE, "OUT_OF_RANGE", "out_of_range"},
        {PX_UNIMPLEMENTED, "UNIMPLEMENTED", "unimplemented"},
        {PX_INTERNAL, "INTERNAL", "internal"},
        {PX_UNAVAILABLE, "UNAVAILABLE", "unavailable"},
        {PX_DATA_LOSS, "DATA_LOSS", "data_loss"},
        {PX_UNAUTHENTICATED, "UNAUTHENTICATED", "unauthenticated"},
    };
    PX_CHECK_INT_EQ(sizeof want / sizeof want[0], PX_CODE_COUNT);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        PX_CHECK_INT_EQ(want[i].code, i);
        PX_CHECK_STR_EQ(px_code_name(want[i].code), want[i].grpc);
        PX_CHECK_STR_EQ(px_code_connect_name(want[i].code), want[i].connect);
    }
}

static void test_names_out_of_range(void)
{
    PX_CHECK(!px_code_valid(-1));
    PX_CHECK(!px_code_valid(PX_CODE_COUNT));
    PX_CHECK(px_code_name((px_code_t)PX_CODE_COUNT) == NULL);
    PX_CHECK(px_code_connect_name((px_code_t)-1) == NULL);
    px_code_t c = PX_INTERNAL;
    PX_CHECK(!px_code_parse("Invalid_Argument", &c));
    PX_CHECK(!px_code_parse("", &c));
    PX_CHECK(!px_code_parse(NULL, &c));
    PX_CHECK_INT_EQ(c, PX_INTERNAL);
}

static void test_status_set_and_clear(void)
{
    px_status_t st;
    PX_CHECK_INT_EQ(px_status_set(&st, PX_NOT_FOUND, "unit %d not found", 42), PX_NOT_FOUND);
    PX_CHECK_INT_EQ(st.code, PX_NOT_FOUND);
    PX_CHECK_STR_EQ(st.message, "unit 42 not found");
    /* A message that quotes the status's own message must not read what it is writing. */
    px_status_set(&st, PX_INTERNAL, "loading: %s", st.message);
    PX_CHECK_STR_EQ(st.message, "loading: unit 42 not found");
    px_status_clear(&st);
    PX_CHECK_INT_EQ(st.code, PX_OK);
    PX_CHECK_STR_EQ(st.message, "");
    PX_CHECK_INT_EQ(px_status_set(NULL, PX_ABORTED, "ignored"), PX_ABORTED);
}

/* A long message is cut below PX_STATUS_MESSAGE_MAX and never inside a character. */
static void test_status_long_message_cut_on_boundary(void)
{
    char big[2 * PX_STATUS_MESSAGE_MAX];
    /* 'a' then "ế" (3 bytes) repeated: cuts fall at every offset within a character. */
    for (int shift = 0; shift < 3; shift++) {
        size_t n = 0;
        for (int i = 0; i < shift; i++) {
            big[n++] = 'a';
        }
        while (n + 3 < sizeof big) {
            memcpy(big + n, "\xE1\xBA\xBF", 3);
            n += 3;
        }
        big[n] = '\0';
        px_status_t st;
        px_status_set(&st, PX_INTERNAL, "%s", big);
        size_t len = strlen(st.message);
        PX_CHECK(len <= PX_STATUS_MESSAGE_MAX - 1);
        PX_CHECK(len >= PX_STATUS_MESSAGE_MAX - 3);
        PX_CHECK_INT_EQ((len - (size_t)shift) % 3, 0);
        PX_CHECK_INT_EQ(memcmp(st.message, big, len), 0);
    }
}

/* px_utf8_copy at each boundary: exactly fits, one short, inside 2-, 3- and 4-byte sequences. */
static void test_utf8_copy_boundaries(void)
{
    char dst[16];
    px_utf8_copy(dst, sizeof dst, "hello");
    PX_CHECK_STR_EQ(dst, "hello");

    px_utf8_copy(dst, 6, "hello");
    PX_CHECK_STR_EQ(dst, "hello");
    px_utf8_copy(dst, 5, "hello");
    PX_CHECK_STR_EQ(dst, "hell");

    /* "aé" = 61 C3 A9: room for 2 bytes would split é. */
    px_utf8_copy(dst, 3, "a\xC3\xA9");
    PX_CHECK_STR_EQ(dst, "a");
    px_utf8_copy(dst, 4, "a\xC3\xA9");
    PX_CHECK_STR_EQ(dst, "a\xC3\xA9");

    /* "ế" = E1 BA BF: 1 or 2 of its bytes would fit; neither is copied. */
    px_utf8_copy(dst, 2, "\xE1\xBA\xBF");
    PX_CHECK_STR_EQ(dst, "");
    px_utf8_copy(dst, 3, "\xE1\xBA\xBFx");
    PX_CHECK_STR_EQ(dst, "");
    px_utf8_copy(dst, 4, "\xE1\xBA\xBFx");
    PX_CHECK_STR_EQ(dst, "\xE1\xBA\xBF");

    /* U+1F600 = F0 9F 98 80, after "ab". */
    for (size_t max = 3; max <= 6; max++) {
        px_utf8_copy(dst, max, "ab\xF0\x9F\x98\x80");
        PX_CHECK_STR_EQ(dst, "ab");
    }
    px_utf8_copy(dst, 7, "ab\xF0\x9F\x98\x80");
    PX_CHECK_STR_EQ(dst, "ab\xF0\x9F\x98\x80");

    /* Nothing to keep: max 1 gives "", max 0 writes nothing, NULL src is "". */
    px_utf8_copy(dst, 1, "abc");
    PX_CHECK_STR_EQ(dst, "");
    dst[0] = 'z';
    px_utf8_copy(dst, 0, "abc");
    PX_CHECK_INT_EQ(dst[0], 'z');
    px_utf8_copy(dst, sizeof dst, NULL);
    PX_CHECK_STR_EQ(dst, "");

    /* Stray continuation bytes are not a sequence to protect: cut where the room ends. */
    px_utf8_copy(dst, 4, "\x80\x80\x80\x80\x80");
    PX_CHECK_STR_EQ(dst, "\x80\x80\x80");
}

static const px_test_case_t cases[] = {
    {"names_round_trip", test_names_round_trip},
    {"names_spelling", test_names_spelling},
    {"names_out_of_range", test_names_out_of_range},
    {"status_set_and_clear", test_status_set_and_clear},
    {"status_long_message_cut_on_boundary", test_status_long_message_cut_on_boundary},
    {"utf8_copy_boundaries", test_utf8_copy_boundaries},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, cases);
}
