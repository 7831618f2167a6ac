/*
 * test_pbcheck.c - the wire string checker (services/core/pbcheck.c): valid messages pass,
 * NUL bytes and invalid UTF-8 in strings at any depth are refused with their path, malformed
 * wire data is refused, unknown fields are skipped.
 *
 * Bad bytes are written by hand (protobuf-c cannot pack a C string holding a NUL); the
 * comments spell out each tag.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/json.h"
#include "phuxanh/pbcheck.h"
#include "phuxanh/test/v1/alltypes.pb-c.h"
#include "phuxanh/text.h"
#include "px_test.h"

#define ALLTYPES (&phuxanh__test__v1__all_types__descriptor)
#define EVENTS (&phuxanh__activation__v1__record_events_request__descriptor)

typedef struct {
    const char *name;
    const ProtobufCMessageDescriptor *desc;
    const char *wire;
    size_t len;
    px_code_t code;
    const char *message; /* expected at the start of st.message; NULL when OK */
} s_case_t;

static void s_run(const s_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        px_status_t st;
        px_status_clear(&st);
        px_code_t rc =
            px_pb_check_strings(cases[i].desc, (const uint8_t *)cases[i].wire, cases[i].len, &st);
        bool ok = rc == cases[i].code;
        if (cases[i].message) {
            ok = ok && strncmp(st.message, cases[i].message, strlen(cases[i].message)) == 0;
        }
        if (!ok) {
            px_test__fail(__FILE__, __LINE__, "%s: got %d \"%s\", expected %d \"%s\"",
                          cases[i].name, (int)rc, st.message, (int)cases[i].code,
                          cases[i].message ? cases[i].message : "");
        }
        PX_CHECK(px_utf8_valid(st.message, strlen(st.message)));
    }
}

/* Messages packed by protobuf-c from valid JSON pass. */
static void test_valid_messages_pass(void)
{
    static const char *const texts[] = {
        "{}",
        "{\"fString\":\"Nguy\xe1\xbb\x85n\",\"rString\":[\"a\",\"\",\"\xc3\xa9\"],"
        "\"fNested\":{\"label\":\"x\",\"child\":{\"tags\":[\"y\"]}},\"fBytes\":\"AAA=\","
        "\"rInt32\":[1,2,3],\"rUnpacked\":[4,5],\"wString\":\"w\",\"rWString\":[\"\"],"
        "\"mStrInt\":{\"k\":1},\"mBoolStr\":{\"true\":\"v\"},\"cText\":\"c\","
        "\"ts\":\"2023-07-29T03:00:00Z\",\"fDouble\":1.5,\"fFixed32\":1,\"fSint64\":\"-4\"}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        px_status_t st;
        ProtobufCMessage *m = px_json_to_message(ALLTYPES, texts[i], strlen(texts[i]), &st);
        PX_REQUIRE(m);
        size_t len = protobuf_c_message_get_packed_size(m);
        uint8_t *wire = malloc(len + 1);
        protobuf_c_message_pack(m, wire);
        PX_CHECK_INT_EQ(px_pb_check_strings(ALLTYPES, wire, len, &st), PX_OK);
        free(wire);
        protobuf_c_message_free_unpacked(m, NULL);
    }

    Phuxanh__Activation__V1__ActivationEvent e = PHUXANH__ACTIVATION__V1__ACTIVATION_EVENT__INIT;
    e.citizen_id = "001234567890";
    e.note = "S\xe1\xbb\x91 12";
    Phuxanh__Activation__V1__ActivationEvent *events[] = {&e, &e};
    Phuxanh__Activation__V1__RecordEventsRequest req =
        PHUXANH__ACTIVATION__V1__RECORD_EVENTS_REQUEST__INIT;
    req.n_events = 2;
    req.events = events;
    uint8_t buf[256];
    size_t len = phuxanh__activation__v1__record_events_request__pack(&req, buf);
    px_status_t st;
    PX_CHECK_INT_EQ(px_pb_check_strings(EVENTS, buf, len, &st), PX_OK);
}

static void test_strings_refused(void)
{
    static const s_case_t cases[] = {
        /* events (1) [{citizen_id (3) = "0\0"}] */
        {"nul in a repeated message's string", EVENTS,
         "\x0a\x04\x1a\x02"
         "0\x00",
         6, PX_INVALID_ARGUMENT, "events[0].citizen_id: holds a NUL byte"},
        /* events[0] fine, events[1].note (11) invalid */
        {"invalid UTF-8 in the second event", EVENTS,
         "\x0a\x03\x1a\x01"
         "1"
         "\x0a\x03\x5a\x01\xff",
         10, PX_INVALID_ARGUMENT, "events[1].note: is not valid UTF-8"},
        /* r_nested (37: aa 02) [{}, {tags (4): "ok", tags: "a\0b"}] */
        {"nul in a nested repeated string", ALLTYPES,
         "\xaa\x02\x00"
         "\xaa\x02\x09\x22\x02"
         "ok"
         "\x22\x03"
         "a\x00"
         "b",
         15, PX_INVALID_ARGUMENT, "r_nested[1].tags[1]: holds a NUL byte"},
        /* f_nested (17: 8a 01) {child (3) {label (2) = "\xc3"}} */
        {"truncated UTF-8 two levels down", ALLTYPES, "\x8a\x01\x05\x1a\x03\x12\x01\xc3", 8,
         PX_INVALID_ARGUMENT, "f_nested.child.label: is not valid UTF-8"},
        /* f_string (14: 72) = overlong "/" */
        {"overlong UTF-8", ALLTYPES, "\x72\x02\xc0\xaf", 4, PX_INVALID_ARGUMENT,
         "f_string: is not valid UTF-8"},
        /* f_string = a UTF-16 surrogate written as UTF-8 */
        {"surrogate", ALLTYPES, "\x72\x03\xed\xa0\x80", 5, PX_INVALID_ARGUMENT,
         "f_string: is not valid UTF-8"},
        /* w_string (70: b2 04) {value (1) = ff} */
        {"inside a wrapper", ALLTYPES, "\xb2\x04\x03\x0a\x01\xff", 6, PX_INVALID_ARGUMENT,
         "w_string.value: is not valid UTF-8"},
        /* r_w_string (74: d2 04) [{}, {value = "\0"}] */
        {"inside a repeated wrapper", ALLTYPES, "\xd2\x04\x00\xd2\x04\x03\x0a\x01\x00", 9,
         PX_INVALID_ARGUMENT, "r_w_string[1].value: holds a NUL byte"},
        /* m_str_int (81: 8a 05) [{key (1) = ff, value (2) = 1}] */
        {"a map key", ALLTYPES, "\x8a\x05\x05\x0a\x01\xff\x10\x01", 8, PX_INVALID_ARGUMENT,
         "m_str_int[0].key: is not valid UTF-8"},
        /* c_text (51: 9a 03) = "\0" */
        {"a oneof member", ALLTYPES, "\x9a\x03\x01\x00", 4, PX_INVALID_ARGUMENT,
         "c_text: holds a NUL byte"},
        /* bytes may hold anything: f_bytes (15: 7a) = 00 ff */
        {"bytes are not strings", ALLTYPES, "\x7a\x02\x00\xff", 4, PX_OK, NULL},
    };
    s_run(cases, sizeof cases / sizeof cases[0]);
}

static void test_malformed_refused(void)
{
    static const s_case_t cases[] = {
        {"truncated varint value", ALLTYPES, "\x08\xff", 2, PX_INVALID_ARGUMENT,
         "f_int32: malformed protobuf: value runs past the end"},
        {"truncated tag", ALLTYPES, "\x08\x01\x80", 3, PX_INVALID_ARGUMENT,
         "malformed protobuf: truncated varint in a field tag"},
        {"varint of 11 bytes", ALLTYPES, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12,
         PX_INVALID_ARGUMENT, "f_int32: malformed protobuf"},
        {"length past the end", ALLTYPES,
         "\x72\x05"
         "ab",
         4, PX_INVALID_ARGUMENT, "f_string: malformed protobuf: length runs past the end"},
        {"truncated length", ALLTYPES, "\x72\x80", 2, PX_INVALID_ARGUMENT,
         "f_string: malformed protobuf: truncated varint in a length"},
        {"nested length past its message", ALLTYPES,
         "\x8a\x01\x03\x12\x05"
         "a",
         6, PX_INVALID_ARGUMENT, "f_nested.label: malformed protobuf: length runs past the end"},
        {"fixed64 cut short", ALLTYPES, "\x61\x00\x00", 3, PX_INVALID_ARGUMENT,
         "f_double: malformed protobuf"},
        {"field number 0", ALLTYPES, "\x00\x01", 2, PX_INVALID_ARGUMENT,
         "malformed protobuf: field number out of range"},
        {"group (wire type 3)", ALLTYPES, "\x0b\x0c", 2, PX_INVALID_ARGUMENT,
         "f_int32: malformed protobuf: field 1 has wire type 3"},
        {"wire type 7", ALLTYPES, "\xff\x0f\x00", 3, PX_INVALID_ARGUMENT, "malformed protobuf"},
        {"string as a varint", ALLTYPES, "\x70\x01", 2, PX_INVALID_ARGUMENT,
         "f_string: malformed protobuf: expected a length-delimited value"},
        {"message as fixed32", ALLTYPES, "\x8d\x01\x00\x00\x00\x00", 6, PX_INVALID_ARGUMENT,
         "f_nested: malformed protobuf: expected a length-delimited value"},
        {"unknown field cut short", ALLTYPES,
         "\xc2\x3e\x0a"
         "ab",
         5, PX_INVALID_ARGUMENT, "malformed protobuf: value runs past the end"},
    };
    s_run(cases, sizeof cases / sizeof cases[0]);
}

static void test_unknown_fields_skipped(void)
{
    /* Fields 1000 (varint), 1001 (fixed64), 1002 (length-delimited, holding a NUL and invalid
     * UTF-8: not ours to judge), 1003 (fixed32), then a known string. */
    static const char wire[] = "\xc0\x3e\x96\x01"
                               "\xc9\x3e\x01\x02\x03\x04\x05\x06\x07\x08"
                               "\xd2\x3e\x02\x00\xff"
                               "\xdd\x3e\x01\x02\x03\x04"
                               "\x72\x02"
                               "ok";
    size_t len = sizeof wire - 1;
    px_status_t st;
    PX_CHECK_INT_EQ(px_pb_check_strings(ALLTYPES, (const uint8_t *)wire, len, &st), PX_OK);
    /* protobuf-c agrees they are well formed. */
    Phuxanh__Test__V1__AllTypes *m =
        phuxanh__test__v1__all_types__unpack(NULL, len, (const uint8_t *)wire);
    PX_REQUIRE(m);
    PX_CHECK_STR_EQ(m->f_string, "ok");
    phuxanh__test__v1__all_types__free_unpacked(m, NULL);
    /* Packed scalars (length-delimited) and the empty message pass too. */
    PX_CHECK_INT_EQ(px_pb_check_strings(ALLTYPES, (const uint8_t *)"\xaa\x01\x02\x01\x02", 5, &st),
                    PX_OK);
    PX_CHECK_INT_EQ(px_pb_check_strings(ALLTYPES, NULL, 0, &st), PX_OK);
}

/* levels messages deep: AllTypes, then Nested.child (3) inside f_nested (17). */
static size_t s_deep(uint8_t *buf, size_t cap, int levels)
{
    /* Built inside out: the innermost Nested is empty. */
    size_t len = 0;
    uint8_t *end = buf + cap;
    uint8_t *p = end;
    for (int level = levels; level >= 2; level--) {
        /* Wrap what is there (len bytes at p) as a field of the level above. */
        if (level == 2) {
            *--p = (uint8_t)len;
            *--p = 0x01;
            *--p = 0x8a; /* f_nested */
        } else {
            *--p = (uint8_t)len;
            *--p = 0x1a; /* child */
        }
        len = (size_t)(end - p);
        if (len > 127) {
            return 0; /* the test keeps lengths to one byte */
        }
    }
    memmove(buf, p, len);
    return len;
}

static void test_depth_bound(void)
{
    uint8_t buf[256];
    px_status_t st;
    size_t len = s_deep(buf, sizeof buf, PX_JSON_MAX_DEPTH);
    PX_REQUIRE(len > 0);
    PX_CHECK_INT_EQ(px_pb_check_strings(ALLTYPES, buf, len, &st), PX_OK);
    len = s_deep(buf, sizeof buf, PX_JSON_MAX_DEPTH + 1);
    PX_REQUIRE(len > 0);
    PX_CHECK_INT_EQ(px_pb_check_strings(ALLTYPES, buf, len, &st), PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "nested deeper than 32 levels") != NULL);
    PX_CHECK(strncmp(st.message, "f_nested.child.child", 20) == 0);
}

/* What decoding would allocate is bounded on the wire: 200,000 empty events (2 bytes each on
 * the wire, a whole struct each once decoded) pass an unbounded walk and are refused with a
 * bound, while a real batch of the same wire size is well within it. */
static void test_decoded_budget(void)
{
    size_t n = 200000, len = 2 * n;
    uint8_t *buf = malloc(len);
    PX_REQUIRE(buf);
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = 0x0a; /* field 1 (events), length-delimited */
        buf[2 * i + 1] = 0x00;
    }
    px_status_t st;
    size_t per_event = phuxanh__activation__v1__activation_event__descriptor.sizeof_message;
    PX_CHECK_INT_EQ(px_pb_check(EVENTS, buf, len, SIZE_MAX, &st), PX_OK);
    PX_CHECK_INT_EQ(px_pb_check(EVENTS, buf, len, 8 * len, &st), PX_RESOURCE_EXHAUSTED);
    PX_CHECK(strstr(st.message, "once decoded") != NULL);
    /* The estimate holds every struct: a bound just above it passes, just below refuses. */
    size_t need = EVENTS->sizeof_message + n * (per_event + 8);
    PX_CHECK_INT_EQ(px_pb_check(EVENTS, buf, len, need, &st), PX_OK);
    PX_CHECK_INT_EQ(px_pb_check(EVENTS, buf, len, need - 1, &st), PX_RESOURCE_EXHAUSTED);
    free(buf);

    /* A packed run counts a slot per byte (a bound on its elements), beside the field's own. */
    const uint8_t packed[] = {0xaa, 0x01, 0x04, 0x01, 0x02, 0x03, 0x04}; /* r_int32 = 21 */
    size_t base = ALLTYPES->sizeof_message;
    PX_CHECK_INT_EQ(px_pb_check(ALLTYPES, packed, sizeof packed, base + 8 + 5 * 8, &st), PX_OK);
    PX_CHECK_INT_EQ(px_pb_check(ALLTYPES, packed, sizeof packed, base + 8, &st),
                    PX_RESOURCE_EXHAUSTED);
}

/* A varint too wide for its 32-bit field is refused: protobuf-c would keep its low 32 bits
 * (a timeout of 2^32 ms would read as 0, no deadline). Negative int32s, which come as 64-bit
 * varints, pass. */
static void test_32_bit_ranges(void)
{
    static const s_case_t cases[] = {
        {"uint32 of 2^32", ALLTYPES, "\x18\x80\x80\x80\x80\x10", 6, PX_INVALID_ARGUMENT,
         "f_uint32: out of range for a 32-bit field"},
        {"uint32 of 2^32-1", ALLTYPES, "\x18\xff\xff\xff\xff\x0f", 6, PX_OK, NULL},
        {"int32 of 2^31", ALLTYPES, "\x08\x80\x80\x80\x80\x08", 6, PX_INVALID_ARGUMENT,
         "f_int32: out of range"},
        {"int32 of -1", ALLTYPES, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11, PX_OK, NULL},
        {"uint64 of 2^32", ALLTYPES, "\x20\x80\x80\x80\x80\x10", 6, PX_OK, NULL},
    };
    s_run(cases, sizeof cases / sizeof cases[0]);
}

static const px_test_case_t s_cases[] = {
    {"32_bit_ranges", test_32_bit_ranges},
    {"decoded_budget", test_decoded_budget},
    {"valid_messages_pass", test_valid_messages_pass},
    {"strings_refused", test_strings_refused},
    {"malformed_refused", test_malformed_refused},
    {"unknown_fields_skipped", test_unknown_fields_skipped},
    {"depth_bound", test_depth_bound},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
