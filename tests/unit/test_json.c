/*
 * test_json.c - the proto3 JSON transcoder (services/core/json*.c) over messages with every
 * field shape (tests/proto/phuxanh/test/v1/alltypes.proto, presence.proto) and over the real
 * service messages.
 *
 * Outputs are compared with exact text, so key spelling, 64-bit integers as strings, default
 * omission, enum names, base64 and RFC 3339 are all pinned. Every round trip goes both ways:
 * JSON -> wire -> message -> JSON, and message -> wire (protobuf-c's pack) -> JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/json.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "phuxanh/test/v1/alltypes.pb-c.h"
#include "phuxanh/test/v1/presence.pb-c.h"
#include "phuxanh/text.h"
#include "px_test.h"

#define ALLTYPES (&phuxanh__test__v1__all_types__descriptor)
#define PRESENCE (&phuxanh__test__v1__presence__descriptor)
#define NESTED (&phuxanh__test__v1__nested__descriptor)

/* JSON -> message -> JSON; NULL (and a failure recorded) when either step fails. Also checks
 * that the message's own wire bytes (protobuf-c's pack) give the same JSON. */
static char *s_round_trip(const ProtobufCMessageDescriptor *desc, const char *json)
{
    px_status_t st;
    ProtobufCMessage *msg = px_json_to_message(desc, json, strlen(json), &st);
    if (!msg) {
        px_test__fail(__FILE__, __LINE__, "px_json_to_message(%s): %s", json, st.message);
        return NULL;
    }
    size_t len = 0;
    char *out = px_json_from_message(msg, &len, &st);
    if (!out) {
        px_test__fail(__FILE__, __LINE__, "px_json_from_message: %s", st.message);
    } else {
        PX_CHECK_INT_EQ(len, strlen(out));
        size_t wire_len = protobuf_c_message_get_packed_size(msg);
        uint8_t *wire = malloc(wire_len + 1);
        protobuf_c_message_pack(msg, wire);
        char *again = px_json_from_pb(desc, wire, wire_len, NULL, &st);
        PX_CHECK_STR_EQ(again, out);
        free(again);
        free(wire);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    return out;
}

/* JSON in, the exact JSON expected out. */
typedef struct {
    const char *in;
    const char *out;
} s_io_t;

static void s_check_io(const ProtobufCMessageDescriptor *desc, const s_io_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *out = s_round_trip(desc, cases[i].in);
        if (!out || strcmp(out, cases[i].out) != 0) {
            px_test__fail(__FILE__, __LINE__, "case %zu: %s gave %s, expected %s", i, cases[i].in,
                          out ? out : "(null)", cases[i].out);
        }
        free(out);
    }
}

/* Every field of AllTypes, in canonical form: what comes in goes out byte for byte. */
static const char s_full[] =
    "{\"fInt32\":-123,\"fInt64\":\"-9223372036854775808\",\"fUint32\":4294967295,"
    "\"fUint64\":\"18446744073709551615\",\"fSint32\":-2147483648,"
    "\"fSint64\":\"9223372036854775807\",\"fFixed32\":7,\"fFixed64\":\"8\",\"fSfixed32\":-9,"
    "\"fSfixed64\":\"-10\",\"fFloat\":0.1,\"fDouble\":2.5e-300,\"fBool\":true,"
    "\"fString\":\"Nguy\xe1\xbb\x85n \\\"V\xc4\x83n\\\" An\\n\\t\\\\ \\u0001\","
    "\"fBytes\":\"AAEC/w==\",\"fEnum\":\"COLOR_GREEN\","
    "\"fNested\":{\"id\":1,\"label\":\"x\",\"child\":{},\"tags\":[\"a\",\"\"]},"
    "\"rInt32\":[1,-2,0],\"rInt64\":[\"1\",\"-2\"],\"rUint32\":[3],"
    "\"rUint64\":[\"18446744073709551615\"],\"rSint32\":[-1,1],\"rSint64\":[\"-3\"],"
    "\"rFixed32\":[0,4294967295],\"rFixed64\":[\"5\"],\"rSfixed32\":[-6],\"rSfixed64\":[\"-7\"],"
    "\"rFloat\":[1.5,\"NaN\",\"-Infinity\"],\"rDouble\":[0.1,1e+300,\"Infinity\"],"
    "\"rBool\":[true,false],\"rString\":[\"\",\"\xc3\xa9\"],\"rBytes\":[\"\",\"AA==\"],"
    "\"rEnum\":[\"COLOR_RED\",\"COLOR_UNSPECIFIED\",7],\"rNested\":[{},{\"id\":2}],"
    "\"rUnpacked\":[1,2,3],\"cText\":\"\",\"ts\":\"2023-07-29T03:00:00.500Z\","
    "\"dur\":\"-1.500s\",\"wBool\":false,\"wInt32\":0,\"wInt64\":\"-5\",\"wUint32\":6,"
    "\"wUint64\":\"7\",\"wFloat\":0.5,\"wDouble\":-0.25,\"wString\":\"\",\"wBytes\":\"/w==\","
    "\"empty\":{},\"rTs\":[\"0001-01-01T00:00:00Z\",\"9999-12-31T23:59:59.999999999Z\"],"
    "\"rWString\":[\"a\",\"\"],\"mStrInt\":{\"a\":1,\"b\":0},\"mIntMsg\":{\"-5\":{\"id\":5}},"
    "\"mBoolStr\":{\"true\":\"t\",\"false\":\"\"},\"mU32Enum\":{\"4294967295\":\"COLOR_BLUE\"}}";

static void test_every_field_round_trip(void)
{
    char *out = s_round_trip(ALLTYPES, s_full);
    PX_CHECK_STR_EQ(out, s_full);
    free(out);

    /* The C values behind the text. */
    px_status_t st;
    Phuxanh__Test__V1__AllTypes *m =
        (Phuxanh__Test__V1__AllTypes *)px_json_to_message(ALLTYPES, s_full, strlen(s_full), &st);
    PX_REQUIRE(m);
    PX_CHECK(m->f_int64 == INT64_MIN);
    PX_CHECK(m->f_uint64 == UINT64_MAX);
    PX_CHECK_INT_EQ(m->f_sint32, INT32_MIN);
    PX_CHECK(m->f_float == 0.1f);
    PX_CHECK_INT_EQ(m->f_bytes.len, 4);
    PX_CHECK(m->f_bytes.len == 4 && memcmp(m->f_bytes.data, "\x00\x01\x02\xff", 4) == 0);
    PX_CHECK_INT_EQ(m->f_enum, PHUXANH__TEST__V1__COLOR__COLOR_GREEN);
    PX_CHECK_STR_EQ(m->f_string, "Nguy\xe1\xbb\x85n \"V\xc4\x83n\" An\n\t\\ \x01");
    PX_CHECK_INT_EQ(m->n_r_enum, 3);
    PX_CHECK_INT_EQ(m->n_r_enum == 3 ? m->r_enum[2] : 0, 7);
    PX_CHECK_INT_EQ(m->choice_case, PHUXANH__TEST__V1__ALL_TYPES__CHOICE_C_TEXT);
    PX_REQUIRE(m->ts && m->dur && m->w_bool && m->w_int32 && m->empty);
    PX_CHECK_INT_EQ(m->ts->seconds, 1690599600);
    PX_CHECK_INT_EQ(m->ts->nanos, 500000000);
    PX_CHECK_INT_EQ(m->dur->seconds, -1);
    PX_CHECK_INT_EQ(m->dur->nanos, -500000000);
    PX_CHECK(!m->w_bool->value);
    PX_CHECK_INT_EQ(m->n_m_int_msg, 1);
    PX_CHECK_INT_EQ(m->m_int_msg[0]->key, -5);
    PX_CHECK_INT_EQ(m->m_int_msg[0]->value->id, 5);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void test_defaults_left_out(void)
{
    Phuxanh__Test__V1__AllTypes m = PHUXANH__TEST__V1__ALL_TYPES__INIT;
    px_status_t st;
    char *out = px_json_from_message(&m.base, NULL, &st);
    PX_CHECK_STR_EQ(out, "{}");
    free(out);
    /* A present message is written even when empty; a set oneof member even at default. */
    Phuxanh__Test__V1__Nested empty = PHUXANH__TEST__V1__NESTED__INIT;
    m.f_nested = &empty;
    m.choice_case = PHUXANH__TEST__V1__ALL_TYPES__CHOICE_C_COLOR;
    m.c_color = PHUXANH__TEST__V1__COLOR__COLOR_UNSPECIFIED;
    out = px_json_from_message(&m.base, NULL, &st);
    PX_CHECK_STR_EQ(out, "{\"fNested\":{},\"cColor\":\"COLOR_UNSPECIFIED\"}");
    free(out);
}

/* Accepted spellings and forms, and the one canonical text each gives. */
static void test_inputs_to_canonical(void)
{
    static const s_io_t cases[] = {
        {"{\"f_int32\":\"12\"}", "{\"fInt32\":12}"},
        {"{\"fInt32\":1e3}", "{\"fInt32\":1000}"},
        {"{\"fInt32\":\"1e3\"}", "{\"fInt32\":1000}"},
        {"{\"fInt32\":\"-0012\"}", "{\"fInt32\":-12}"},
        {"{\"fInt32\":5.0}", "{\"fInt32\":5}"},
        {"{\"fInt32\":-0}", "{}"},
        {"{\"fInt32\":2147483647,\"fUint32\":\"4294967295\"}",
         "{\"fInt32\":2147483647,\"fUint32\":4294967295}"},
        {"{\"fInt64\":9007199254740993}", "{\"fInt64\":\"9007199254740993\"}"},
        {"{\"fInt64\":-9223372036854775808}", "{\"fInt64\":\"-9223372036854775808\"}"},
        {"{\"fUint64\":9223372036854775807}", "{\"fUint64\":\"9223372036854775807\"}"},
        {"{\"fSfixed64\":\"-1\",\"fFixed64\":\"18446744073709551615\"}",
         "{\"fFixed64\":\"18446744073709551615\",\"fSfixed64\":\"-1\"}"},
        {"{\"fFloat\":\"1.5\"}", "{\"fFloat\":1.5}"},
        {"{\"fFloat\":3.4028234663852886e38}", "{\"fFloat\":3.4028235e+38}"},
        {"{\"fFloat\":\"-Infinity\"}", "{\"fFloat\":\"-Infinity\"}"},
        {"{\"fDouble\":\"NaN\"}", "{\"fDouble\":\"NaN\"}"},
        {"{\"fDouble\":1}", "{\"fDouble\":1}"},
        {"{\"fDouble\":0.30000000000000004}", "{\"fDouble\":0.30000000000000004}"},
        {"{\"fDouble\":1.2345678901234568e20}", "{\"fDouble\":1.2345678901234568e+20}"},
        {"{\"fDouble\":1e17}", "{\"fDouble\":100000000000000000}"},
        {"{\"fDouble\":999999999999999900}", "{\"fDouble\":999999999999999900}"},
        {"{\"fDouble\":1e18}", "{\"fDouble\":1e+18}"},
        {"{\"fFloat\":-4.7223666e20}", "{\"fFloat\":-4.7223666e+20}"},
        {"{\"fDouble\":15000000000000000000.0}", "{\"fDouble\":1.5e+19}"},
        {"{\"fDouble\":123456.789}", "{\"fDouble\":123456.789}"},
        {"{\"fDouble\":1e21}", "{\"fDouble\":1e+21}"},
        {"{\"fDouble\":-1.5e-7}", "{\"fDouble\":-1.5e-7}"},
        {"{\"fDouble\":0.000001}", "{\"fDouble\":0.000001}"},
        {"{\"fDouble\":5e-324}", "{\"fDouble\":5e-324}"},
        {"{\"fDouble\":1.7976931348623157e308}", "{\"fDouble\":1.7976931348623157e+308}"},
        {"{\"fDouble\":100}", "{\"fDouble\":100}"},
        {"{\"fFloat\":16777216}", "{\"fFloat\":16777216}"},
        {"{\"fFloat\":0.3}", "{\"fFloat\":0.3}"},
        {"{\"rDouble\":[-0.0,0]}", "{\"rDouble\":[-0,0]}"},
        {"{\"fDouble\":\"-2.5E-3\"}", "{\"fDouble\":-0.0025}"},
        {"{\"fBool\":false,\"fString\":\"\",\"fBytes\":\"\"}", "{}"},
        {"{\"fEnum\":2}", "{\"fEnum\":\"COLOR_GREEN\"}"},
        {"{\"fEnum\":99}", "{\"fEnum\":99}"},
        {"{\"fEnum\":\"COLOR_UNSPECIFIED\"}", "{}"},
        {"{\"rEnum\":[0,\"COLOR_RED\",-1]}",
         "{\"rEnum\":[\"COLOR_UNSPECIFIED\",\"COLOR_RED\",-1]}"},
        {"{\"fBytes\":\"-_8\"}", "{\"fBytes\":\"+/8=\"}"},
        {"{\"fBytes\":\"AAEC/w\"}", "{\"fBytes\":\"AAEC/w==\"}"},
        {"{\"fString\":\"\\u00e9\\ud83d\\ude00\\/\"}",
         "{\"fString\":\"\xc3\xa9\xf0\x9f\x98\x80/\"}"},
        {"{\"ts\":\"2023-07-29T10:00:00+07:00\"}", "{\"ts\":\"2023-07-29T03:00:00Z\"}"},
        {"{\"ts\":\"2023-07-28T23:30:00-03:30\"}", "{\"ts\":\"2023-07-29T03:00:00Z\"}"},
        {"{\"ts\":\"2023-07-29T03:00:00.1Z\"}", "{\"ts\":\"2023-07-29T03:00:00.100Z\"}"},
        {"{\"ts\":\"2023-07-29T03:00:00.000001Z\"}", "{\"ts\":\"2023-07-29T03:00:00.000001Z\"}"},
        {"{\"ts\":\"2023-07-29T03:00:00.123456789Z\"}",
         "{\"ts\":\"2023-07-29T03:00:00.123456789Z\"}"},
        {"{\"ts\":\"1969-12-31T23:59:59.5Z\"}", "{\"ts\":\"1969-12-31T23:59:59.500Z\"}"},
        {"{\"ts\":\"2024-02-29T00:00:00Z\"}", "{\"ts\":\"2024-02-29T00:00:00Z\"}"},
        {"{\"ts\":\"1970-01-01T00:00:00Z\"}", "{\"ts\":\"1970-01-01T00:00:00Z\"}"},
        {"{\"ts\":\"0001-01-01T07:00:00+07:00\"}", "{\"ts\":\"0001-01-01T00:00:00Z\"}"},
        {"{\"dur\":\"0s\"}", "{\"dur\":\"0s\"}"},
        {"{\"dur\":\"-0.5s\"}", "{\"dur\":\"-0.500s\"}"},
        {"{\"dur\":\"90.000000001s\"}", "{\"dur\":\"90.000000001s\"}"},
        {"{\"dur\":\"-315576000000.999999999s\"}", "{\"dur\":\"-315576000000.999999999s\"}"},
        {"{\"wBool\":null,\"fNested\":null,\"ts\":null}", "{}"},
        {"{\"wBool\":true,\"wString\":\"x\",\"wBytes\":\"AA\"}",
         "{\"wBool\":true,\"wString\":\"x\",\"wBytes\":\"AA==\"}"},
        {"{\"wUint64\":\"0\",\"wFloat\":\"Infinity\"}",
         "{\"wUint64\":\"0\",\"wFloat\":\"Infinity\"}"},
        {"{\"cNumber\":\"0\"}", "{\"cNumber\":\"0\"}"},
        {"{\"cColor\":0}", "{\"cColor\":\"COLOR_UNSPECIFIED\"}"},
        {"{\"cNested\":{}}", "{\"cNested\":{}}"},
        {"{\"cText\":null,\"cNumber\":\"1\"}", "{\"cNumber\":\"1\"}"},
        {"{\"rInt32\":[],\"rNested\":[],\"mStrInt\":{}}", "{}"},
        {"{\"m_int_msg\":{\"7\":{},\"0\":{\"label\":\"z\"},\"-9223372036854775808\":{}}}",
         "{\"mIntMsg\":{\"7\":{},\"0\":{\"label\":\"z\"},\"-9223372036854775808\":{}}}"},
        {"{\"fFloat\":-3.4028235e38,\"rFloat\":[1.17549435e-38,1e-45]}",
         "{\"fFloat\":-3.4028235e+38,\"rFloat\":[1.1754944e-38,1e-45]}"},
        {"{\"mU32Enum\":{\"1\":0}}", "{\"mU32Enum\":{\"1\":\"COLOR_UNSPECIFIED\"}}"},
        {"{\"empty\":{}}", "{\"empty\":{}}"},
        {"{\"f_nested\":{\"child\":{\"child\":{}}}}", "{\"fNested\":{\"child\":{\"child\":{}}}}"},
        {" \n {\"fBool\":false}\t ", "{}"},
        {"{\"rTs\":[\"2023-07-29T03:00:00Z\"],\"r_w_string\":[\"\"]}",
         "{\"rTs\":[\"2023-07-29T03:00:00Z\"],\"rWString\":[\"\"]}"},
    };
    s_check_io(ALLTYPES, cases, sizeof cases / sizeof cases[0]);
}

/* proto2 optional: the has_ flag decides, not the value (defaults here are not zero). */
static void test_explicit_presence(void)
{
    static const s_io_t cases[] = {
        {"{\"rId\":0}", "{\"rId\":0}"},
        {"{\"oInt32\":0,\"oString\":\"\",\"oBool\":false,\"oEnum\":\"MOOD_UNSPECIFIED\","
         "\"oBytes\":\"\",\"oDouble\":0,\"oUint64\":\"0\",\"oChild\":{\"rId\":2},\"rId\":1}",
         "{\"oInt32\":0,\"oString\":\"\",\"oBool\":false,\"oEnum\":\"MOOD_UNSPECIFIED\","
         "\"oBytes\":\"\",\"oDouble\":0,\"oUint64\":\"0\",\"oChild\":{\"rId\":2},\"rId\":1}"},
        {"{\"o_string\":\"x\",\"r_id\":3,\"tags\":[\"a\"]}",
         "{\"oString\":\"x\",\"rId\":3,\"tags\":[\"a\"]}"},
    };
    s_check_io(PRESENCE, cases, sizeof cases / sizeof cases[0]);

    Phuxanh__Test__V1__Presence p = PHUXANH__TEST__V1__PRESENCE__INIT;
    px_status_t st;
    PX_CHECK_INT_EQ(p.o_int32, 7);
    char *out = px_json_from_message(&p.base, NULL, &st);
    PX_CHECK_STR_EQ(out, "{\"rId\":0}");
    free(out);
}

/* The exact bytes written: varints, zigzag, fixed, packed, long length prefixes. */
static void test_wire_bytes(void)
{
    static const struct {
        const char *json;
        const char *wire;
        size_t len;
    } cases[] = {
        {"{\"fInt32\":-1}", "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11},
        {"{\"fSint32\":-1,\"fSint64\":\"1\"}", "\x28\x01\x30\x02", 4},
        {"{\"fFixed32\":1,\"fSfixed64\":\"-2\"}",
         "\x3d\x01\x00\x00\x00\x51\xfe\xff\xff\xff\xff\xff\xff\xff", 14},
        {"{\"fDouble\":1}", "\x61\x00\x00\x00\x00\x00\x00\xf0\x3f", 9},
        {"{\"rInt32\":[1,300]}", "\xaa\x01\x03\x01\xac\x02", 6},
        {"{\"rUnpacked\":[1,2]}", "\xb0\x02\x01\xb0\x02\x02", 6},
        {"{\"fString\":\"ab\",\"fBool\":true}",
         "\x72\x02"
         "ab"
         "\x68\x01",
         6},
        {"{\"fNested\":{}}", "\x8a\x01\x00", 3},
        {"{\"cText\":\"\"}", "\x9a\x03\x00", 3},
        {"{\"wInt32\":0}", "\x82\x04\x00", 3},
        {"{\"ts\":\"1970-01-01T00:00:01.5Z\"}", "\xea\x03\x08\x08\x01\x10\x80\xca\xb5\xee\x01", 11},
        {"{}", "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *wire = NULL;
        size_t len = 0;
        px_status_t st;
        PX_CHECK_INT_EQ(
            px_json_to_pb(ALLTYPES, cases[i].json, strlen(cases[i].json), &wire, &len, &st), PX_OK);
        PX_CHECK(wire != NULL);
        if (len != cases[i].len || (len && memcmp(wire, cases[i].wire, len) != 0)) {
            px_test__fail(__FILE__, __LINE__, "case %zu (%s): wrong bytes (%zu long)", i,
                          cases[i].json, len);
        }
        free(wire);
    }
}

/* Nested values of 200 and 70,000 bytes need 2- and 3-byte length prefixes, which move what
 * was written after the one byte reserved. */
static void test_long_lengths(void)
{
    size_t sizes[] = {127, 128, 200, 16383, 16384, 70000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        char *label = malloc(n + 1);
        memset(label, 'x', n);
        label[n] = '\0';
        size_t cap = n + 200;
        char *json = malloc(cap);
        snprintf(json, cap,
                 "{\"rNested\":[{\"child\":{\"label\":\"%s\",\"tags\":[\"t\"]},\"id\":1},"
                 "{\"id\":2}],\"fInt32\":3}",
                 label);
        px_status_t st;
        Phuxanh__Test__V1__AllTypes *m =
            (Phuxanh__Test__V1__AllTypes *)px_json_to_message(ALLTYPES, json, strlen(json), &st);
        PX_CHECK(m != NULL);
        if (m) {
            PX_CHECK_INT_EQ(m->n_r_nested, 2);
            PX_CHECK(m->n_r_nested == 2 && m->r_nested[0]->child &&
                     strcmp(m->r_nested[0]->child->label, label) == 0);
            PX_CHECK(m->n_r_nested == 2 && m->r_nested[1]->id == 2);
            PX_CHECK_INT_EQ(m->f_int32, 3);
            protobuf_c_message_free_unpacked(&m->base, NULL);
        }
        free(json);
        free(label);
    }
}

/* A malformed input: the code, and a piece of the message (naming the field). */
typedef struct {
    const ProtobufCMessageDescriptor *desc;
    const char *json;
    px_code_t code;
    const char *message;
} s_bad_t;

static void s_check_bad(const s_bad_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        px_status_t st;
        uint8_t *wire = NULL;
        size_t len = 0;
        px_code_t rc =
            px_json_to_pb(cases[i].desc, cases[i].json, strlen(cases[i].json), &wire, &len, &st);
        if (rc != cases[i].code || !strstr(st.message, cases[i].message)) {
            px_test__fail(__FILE__, __LINE__, "case %zu (%s): got %d \"%s\", expected %d \"%s\"", i,
                          cases[i].json, (int)rc, rc == PX_OK ? "" : st.message, (int)cases[i].code,
                          cases[i].message);
        }
        PX_CHECK(wire == NULL);
        PX_CHECK(px_utf8_valid(st.message, strlen(st.message)));
        free(wire);
        /* The message form refuses the same way. */
        ProtobufCMessage *m =
            px_json_to_message(cases[i].desc, cases[i].json, strlen(cases[i].json), &st);
        PX_CHECK(m == NULL);
        PX_CHECK_INT_EQ(st.code, cases[i].code);
        if (m) {
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
}

static void test_malformed_inputs(void)
{
    static const s_bad_t cases[] = {
        /* Unknown fields, named with the message type. */
        {ALLTYPES, "{\"nope\":1}", PX_INVALID_ARGUMENT,
         "unknown field \"nope\" in phuxanh.test.v1.AllTypes"},
        {ALLTYPES, "{\"fNested\":{\"x\":1}}", PX_INVALID_ARGUMENT,
         "f_nested: unknown field \"x\" in phuxanh.test.v1.Nested"},
        {ALLTYPES, "{\"FInt32\":1}", PX_INVALID_ARGUMENT, "unknown field \"FInt32\""},
        {ALLTYPES, "{\"f_Int32\":1}", PX_INVALID_ARGUMENT, "unknown field \"f_Int32\""},
        /* Type mismatches, one per family. */
        {ALLTYPES, "{\"fInt32\":\"abc\"}", PX_INVALID_ARGUMENT,
         "f_int32: expected an integer (int32) as a number or a string of digits, got \"abc\""},
        {ALLTYPES, "{\"fInt64\":true}", PX_INVALID_ARGUMENT,
         "f_int64: expected an integer (int64)"},
        {ALLTYPES, "{\"fUint32\":[]}", PX_INVALID_ARGUMENT, "got an array"},
        {ALLTYPES, "{\"fDouble\":{}}", PX_INVALID_ARGUMENT,
         "f_double: expected a number (double), got an object"},
        {ALLTYPES, "{\"fDouble\":\" 1\"}", PX_INVALID_ARGUMENT, "f_double: expected a number"},
        {ALLTYPES, "{\"fFloat\":\"inf\"}", PX_INVALID_ARGUMENT, "f_float: expected a number"},
        {ALLTYPES, "{\"fBool\":\"true\"}", PX_INVALID_ARGUMENT,
         "f_bool: expected true or false, got a string"},
        {ALLTYPES, "{\"fBool\":1}", PX_INVALID_ARGUMENT, "f_bool: expected true or false"},
        {ALLTYPES, "{\"fString\":1}", PX_INVALID_ARGUMENT,
         "f_string: expected a string, got a "
         "number"},
        {ALLTYPES, "{\"fBytes\":5}", PX_INVALID_ARGUMENT, "f_bytes: expected base64 text"},
        {ALLTYPES, "{\"fEnum\":true}", PX_INVALID_ARGUMENT,
         "f_enum: expected a name or number of enum phuxanh.test.v1.Color"},
        {ALLTYPES, "{\"fNested\":[]}", PX_INVALID_ARGUMENT,
         "f_nested: expected an object (phuxanh.test.v1.Nested), got an array"},
        {ALLTYPES, "{\"rInt32\":1}", PX_INVALID_ARGUMENT, "r_int32: expected an array"},
        {ALLTYPES, "{\"mStrInt\":[]}", PX_INVALID_ARGUMENT,
         "m_str_int: expected an object (a "
         "map)"},
        {ALLTYPES, "{\"ts\":5}", PX_INVALID_ARGUMENT, "ts: expected an RFC 3339 timestamp"},
        {ALLTYPES, "{\"dur\":1.5}", PX_INVALID_ARGUMENT, "dur: expected a duration string"},
        {ALLTYPES, "{\"wInt32\":\"x\"}", PX_INVALID_ARGUMENT, "w_int32: expected an integer"},
        {ALLTYPES, "{\"wBool\":\"true\"}", PX_INVALID_ARGUMENT,
         "w_bool: expected true or "
         "false"},
        {ALLTYPES, "{\"empty\":{\"a\":1}}", PX_INVALID_ARGUMENT,
         "empty: unknown field \"a\" in google.protobuf.Empty"},
        /* The same field twice. */
        {ALLTYPES, "{\"fInt32\":1,\"fInt32\":2}", PX_INVALID_ARGUMENT, "duplicate key \"fInt32\""},
        {ALLTYPES, "{\"fInt32\":1,\"f_int32\":2}", PX_INVALID_ARGUMENT, "f_int32: given twice"},
        {ALLTYPES, "{\"f_int32\":null,\"fInt32\":2}", PX_INVALID_ARGUMENT, "f_int32: given twice"},
        {ALLTYPES, "{\"fNested\":{\"id\":1,\"id\":1}}", PX_INVALID_ARGUMENT,
         "duplicate key \"id\""},
        {ALLTYPES, "{\"cText\":\"a\",\"cNumber\":\"1\"}", PX_INVALID_ARGUMENT,
         "c_number: c_text is already set and belongs to the same oneof"},
        /* Ranges and exactness. */
        {ALLTYPES, "{\"fInt32\":2147483648}", PX_INVALID_ARGUMENT,
         "f_int32: out of range for int32"},
        {ALLTYPES, "{\"fInt32\":-2147483649}", PX_INVALID_ARGUMENT,
         "f_int32: out of range for int32"},
        {ALLTYPES, "{\"fSfixed32\":\"3e9\"}", PX_INVALID_ARGUMENT, "out of range for sfixed32"},
        {ALLTYPES, "{\"fUint32\":-1}", PX_INVALID_ARGUMENT,
         "f_uint32: uint32 must not be "
         "negative"},
        {ALLTYPES, "{\"fUint64\":\"-1\"}", PX_INVALID_ARGUMENT, "uint64 must not be negative"},
        {ALLTYPES, "{\"fInt64\":\"9223372036854775808\"}", PX_INVALID_ARGUMENT,
         "f_int64: out of range for int64"},
        {ALLTYPES, "{\"fInt64\":\"-9223372036854775809\"}", PX_INVALID_ARGUMENT,
         "f_int64: out of range for int64"},
        {ALLTYPES, "{\"fUint64\":\"18446744073709551616\"}", PX_INVALID_ARGUMENT,
         "f_uint64: out of range for uint64"},
        {ALLTYPES, "{\"fInt64\":1e17}", PX_INVALID_ARGUMENT, "f_int64: number beyond 2^53"},
        {ALLTYPES, "{\"fInt32\":1.5}", PX_INVALID_ARGUMENT,
         "f_int32: expected an integer "
         "(int32), got a number with a "
         "fraction"},
        {ALLTYPES, "{\"fInt64\":\"2.5\"}", PX_INVALID_ARGUMENT, "fraction"},
        {ALLTYPES, "{\"fInt32\":\"0x10\"}", PX_INVALID_ARGUMENT, "f_int32: expected an integer"},
        {ALLTYPES, "{\"fFloat\":1e39}", PX_INVALID_ARGUMENT, "f_float: out of range for float"},
        {ALLTYPES, "{\"fDouble\":\"1e400\"}", PX_INVALID_ARGUMENT,
         "f_double: out of range for double"},
        {ALLTYPES, "{\"fDouble\":1e400}", PX_INVALID_ARGUMENT, "a number is out of range"},
        {ALLTYPES, "{\"fUint64\":18446744073709551615}", PX_INVALID_ARGUMENT,
         "64-bit integers may be sent as strings"},
        {ALLTYPES, "{\"fEnum\":2147483648}", PX_INVALID_ARGUMENT, "f_enum: out of range for enum"},
        {ALLTYPES, "{\"fEnum\":\"COLOR_PINK\"}", PX_INVALID_ARGUMENT,
         "f_enum: unknown value \"COLOR_PINK\" for enum phuxanh.test.v1.Color"},
        {ALLTYPES, "{\"fEnum\":\"color_red\"}", PX_INVALID_ARGUMENT, "unknown value"},
        /* bytes */
        {ALLTYPES, "{\"fBytes\":\"!!!!\"}", PX_INVALID_ARGUMENT, "f_bytes: not valid base64"},
        {ALLTYPES, "{\"fBytes\":\"A\"}", PX_INVALID_ARGUMENT, "f_bytes: not valid base64"},
        {ALLTYPES, "{\"fBytes\":\"AA=A\"}", PX_INVALID_ARGUMENT, "f_bytes: not valid base64"},
        {ALLTYPES, "{\"fBytes\":\"A-+A\"}", PX_INVALID_ARGUMENT, "f_bytes: not valid base64"},
        {ALLTYPES, "{\"fBytes\":\"AB==\"}", PX_INVALID_ARGUMENT, "f_bytes: not valid base64"},
        /* Timestamps and durations. */
        {ALLTYPES, "{\"ts\":\"2023-07-29 03:00:00Z\"}", PX_INVALID_ARGUMENT,
         "ts: not an RFC 3339 timestamp"},
        {ALLTYPES, "{\"ts\":\"2023-07-29T03:00:00\"}", PX_INVALID_ARGUMENT,
         "ts: not an RFC 3339 timestamp"},
        {ALLTYPES, "{\"ts\":\"2023-02-29T03:00:00Z\"}", PX_INVALID_ARGUMENT,
         "ts: not an RFC 3339 timestamp"},
        {ALLTYPES, "{\"ts\":\"2023-07-29T24:00:00Z\"}", PX_INVALID_ARGUMENT,
         "ts: not an RFC 3339 timestamp"},
        {ALLTYPES, "{\"ts\":\"2023-07-29T03:00:00.Z\"}", PX_INVALID_ARGUMENT,
         "ts: not an RFC 3339 timestamp"},
        {ALLTYPES, "{\"ts\":\"2023-07-29T03:00:00.1234567891Z\"}", PX_INVALID_ARGUMENT,
         "ts: not an RFC 3339 timestamp"},
        {ALLTYPES, "{\"ts\":\"2023-07-29T03:00:00+0700\"}", PX_INVALID_ARGUMENT,
         "ts: not an RFC 3339 timestamp"},
        {ALLTYPES, "{\"ts\":\"2023-07-29T03:00:00Zjunk\"}", PX_INVALID_ARGUMENT,
         "ts: not an RFC 3339 timestamp"},
        {ALLTYPES, "{\"ts\":\"10000-01-01T00:00:00Z\"}", PX_INVALID_ARGUMENT,
         "ts: not an RFC 3339 timestamp"},
        {ALLTYPES, "{\"ts\":\"9999-12-31T23:59:59-01:00\"}", PX_INVALID_ARGUMENT,
         "ts: timestamp out of range"},
        {ALLTYPES, "{\"ts\":\"0000-12-31T23:59:59Z\"}", PX_INVALID_ARGUMENT,
         "ts: timestamp out of range"},
        {ALLTYPES, "{\"rTs\":[\"2023-07-29T03:00:00Z\",\"nope\"]}", PX_INVALID_ARGUMENT,
         "r_ts[1]: not an RFC 3339 timestamp"},
        {ALLTYPES, "{\"dur\":\"1.5\"}", PX_INVALID_ARGUMENT, "dur: not a duration"},
        {ALLTYPES, "{\"dur\":\"1.5 s\"}", PX_INVALID_ARGUMENT, "dur: not a duration"},
        {ALLTYPES, "{\"dur\":\"315576000001s\"}", PX_INVALID_ARGUMENT,
         "dur: duration out of range"},
        {ALLTYPES, "{\"dur\":\"99999999999999999999999s\"}", PX_INVALID_ARGUMENT,
         "dur: duration out of range"},
        /* Strings: invalid UTF-8 (refused by jansson), NUL, lone surrogates. */
        {ALLTYPES, "{\"fString\":\"ab\xff\"}", PX_INVALID_ARGUMENT, "the text is not valid UTF-8"},
        {ALLTYPES, "{\"fString\":\"a\\u0000b\"}", PX_INVALID_ARGUMENT,
         "f_string: string holds a NUL character"},
        {ALLTYPES, "{\"rString\":[\"ok\",\"\\u0000\"]}", PX_INVALID_ARGUMENT,
         "r_string[1]: string holds a NUL character"},
        {ALLTYPES, "{\"fString\":\"\\ud800\"}", PX_INVALID_ARGUMENT, "invalid Unicode"},
        {ALLTYPES, "{\"fString\":\"\\udc00\\ud800\"}", PX_INVALID_ARGUMENT, "invalid Unicode"},
        {ALLTYPES, "{\"f\\u0000\":1}", PX_INVALID_ARGUMENT, "NUL"},
        /* Nulls where they mean nothing. */
        {ALLTYPES, "{\"rInt32\":[1,null]}", PX_INVALID_ARGUMENT,
         "r_int32[1]: null is not allowed in a list"},
        {ALLTYPES, "{\"mStrInt\":{\"a\":null}}", PX_INVALID_ARGUMENT,
         "m_str_int[\"a\"]: null is not allowed as a map value"},
        {ALLTYPES, "{\"mIntMsg\":{\"x\":{}}}", PX_INVALID_ARGUMENT,
         "m_int_msg[\"x\"]: map key must be an integer"},
        {ALLTYPES, "{\"mBoolStr\":{\"yes\":\"\"}}", PX_INVALID_ARGUMENT,
         "m_bool_str[\"yes\"]: map key must be \"true\" or \"false\""},
        {ALLTYPES, "{\"mIntMsg\":{\"01\":{},\"1\":{}}}", PX_INVALID_ARGUMENT,
         "m_int_msg[\"01\"]: map key must be an integer written without leading zeros"},
        {ALLTYPES, "{\"mIntMsg\":{\"-0\":{}}}", PX_INVALID_ARGUMENT, "without leading zeros"},
        {ALLTYPES, "{\"mIntMsg\":{\"1e0\":{}}}", PX_INVALID_ARGUMENT, "without leading zeros"},
        {ALLTYPES, "{\"mIntMsg\":{\"\":{}}}", PX_INVALID_ARGUMENT, "without leading zeros"},
        {ALLTYPES, "{\"mIntMsg\":{\"9223372036854775808\":{}}}", PX_INVALID_ARGUMENT,
         "out of range for int64"},
        {ALLTYPES, "{\"fFloat\":3.4028235677973366e38}", PX_INVALID_ARGUMENT,
         "f_float: out of range for float"},
        {ALLTYPES, "{\"mU32Enum\":{\"-1\":0}}", PX_INVALID_ARGUMENT,
         "uint32 must not be "
         "negative"},
        /* Deep paths. */
        {ALLTYPES, "{\"rNested\":[{},{\"child\":{\"tags\":[\"a\",5]}}]}", PX_INVALID_ARGUMENT,
         "r_nested[1].child.tags[1]: expected a string, got a number"},
        /* The text as a whole. */
        {ALLTYPES, "[1]", PX_INVALID_ARGUMENT,
         "expected a JSON object (phuxanh.test.v1.AllTypes) at the top level, got an array"},
        {ALLTYPES, "\"x\"", PX_INVALID_ARGUMENT, "expected a JSON object"},
        {ALLTYPES, "null", PX_INVALID_ARGUMENT, "expected a JSON object"},
        {ALLTYPES, "{} x", PX_INVALID_ARGUMENT, "unexpected text after the JSON value"},
        {ALLTYPES, "{}{}", PX_INVALID_ARGUMENT, "unexpected text after the JSON value"},
        {ALLTYPES, "", PX_INVALID_ARGUMENT, "empty input"},
        {ALLTYPES, " \n ", PX_INVALID_ARGUMENT, "empty input"},
        {ALLTYPES, "{\"fInt32\":1", PX_INVALID_ARGUMENT, "invalid JSON at line 1"},
        {ALLTYPES, "{'a':1}", PX_INVALID_ARGUMENT, "invalid JSON"},
        {ALLTYPES, "{\"fInt32\":01}", PX_INVALID_ARGUMENT, "invalid JSON"},
        {ALLTYPES, "{\"fDouble\":NaN}", PX_INVALID_ARGUMENT, "invalid JSON"},
        /* Explicit presence. */
        {PRESENCE, "{}", PX_INVALID_ARGUMENT, "r_id: required field is missing"},
        {PRESENCE, "{\"rId\":null}", PX_INVALID_ARGUMENT, "r_id: required field is missing"},
        {PRESENCE, "{\"rId\":1,\"oChild\":{}}", PX_INVALID_ARGUMENT,
         "o_child.r_id: required field is missing"},
    };
    s_check_bad(cases, sizeof cases / sizeof cases[0]);
}

/* A value is quoted back only when short and free of ID-like digit runs. */
static void test_echo_rules(void)
{
    px_status_t st;
    uint8_t *wire = NULL;
    size_t len = 0;
    static const char *const hidden[] = {
        "{\"001234567890\":1}",
        "{\"fEnum\":\"001234567890\"}",
        "{\"fInt32\":\"x001234567890\"}",
        "{\"fInt32\":\"0012345678901\"}",
        "{\"mIntMsg\":{\"001234567890x\":{}}}",
        "{\"fInt32\":1,\"001234567890\":1,\"001234567890\":2}",
        "{\"events\":1} 001234567890",
    };
    for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++) {
        PX_CHECK_INT_EQ(px_json_to_pb(ALLTYPES, hidden[i], strlen(hidden[i]), &wire, &len, &st),
                        PX_INVALID_ARGUMENT);
        if (strstr(st.message, "1234567890")) {
            px_test__fail(__FILE__, __LINE__, "case %zu: message repeats the digits: %s", i,
                          st.message);
        }
    }
    /* A long key is cut at PX_JSON_ECHO_MAX bytes, on a UTF-8 boundary. */
    char json[512] = "{\"";
    for (int i = 0; i < 100; i++) {
        strcat(json, "\xc3\xa9"); /* é, 2 bytes */
    }
    strcat(json, "\":1}");
    PX_CHECK_INT_EQ(px_json_to_pb(ALLTYPES, json, strlen(json), &wire, &len, &st),
                    PX_INVALID_ARGUMENT);
    PX_CHECK(px_utf8_valid(st.message, strlen(st.message)));
    PX_CHECK(strstr(st.message, "...") != NULL);
    PX_CHECK(strlen(st.message) < 60 + 60);
}

static void s_nested_json(char *buf, size_t cap, int levels)
{
    /* levels Nested objects inside AllTypes.f_nested: AllTypes is level 1. */
    buf[0] = '\0';
    strcat(buf, "{\"fNested\":");
    for (int i = 1; i < levels; i++) {
        strncat(buf, i + 1 < levels ? "{\"child\":" : "{}", cap - strlen(buf) - 1);
    }
    for (int i = 2; i < levels; i++) {
        strncat(buf, "}", cap - strlen(buf) - 1);
    }
    strncat(buf, "}", cap - strlen(buf) - 1);
}

static void test_depth_bound(void)
{
    char json[4096];
    px_status_t st;
    uint8_t *wire = NULL;
    size_t len = 0;
    s_nested_json(json, sizeof json, PX_JSON_MAX_DEPTH);
    PX_CHECK_INT_EQ(px_json_to_pb(ALLTYPES, json, strlen(json), &wire, &len, &st), PX_OK);
    free(wire);
    wire = NULL;
    s_nested_json(json, sizeof json, PX_JSON_MAX_DEPTH + 1);
    PX_CHECK_INT_EQ(px_json_to_pb(ALLTYPES, json, strlen(json), &wire, &len, &st),
                    PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "nested deeper than 32") != NULL);
    PX_CHECK(strstr(st.message, "f_nested.child.child") == st.message);
    PX_CHECK(px_utf8_valid(st.message, strlen(st.message)));

    /* Output is bounded the same way. */
    Phuxanh__Test__V1__Nested chain[PX_JSON_MAX_DEPTH + 1];
    for (int i = 0; i <= PX_JSON_MAX_DEPTH; i++) {
        phuxanh__test__v1__nested__init(&chain[i]);
        chain[i].child = i < PX_JSON_MAX_DEPTH ? &chain[i + 1] : NULL;
    }
    char *out = px_json_from_message(&chain[1].base, NULL, &st); /* 32 levels */
    PX_CHECK(out != NULL);
    free(out);
    out = px_json_from_message(&chain[0].base, NULL, &st); /* 33 levels */
    PX_CHECK(out == NULL);
    PX_CHECK_INT_EQ(st.code, PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "nested deeper than 32") != NULL);
}

/* What JSON cannot say is refused on the way out. */
static void test_output_refusals(void)
{
    px_status_t st;
    Phuxanh__Test__V1__AllTypes m = PHUXANH__TEST__V1__ALL_TYPES__INIT;
    m.f_string = "ab\xff";
    char *out = px_json_from_message(&m.base, NULL, &st);
    PX_CHECK(out == NULL);
    PX_CHECK_INT_EQ(st.code, PX_INVALID_ARGUMENT);
    PX_CHECK_STR_EQ(st.message, "f_string: string is not valid UTF-8");

    Phuxanh__Test__V1__AllTypes m2 = PHUXANH__TEST__V1__ALL_TYPES__INIT;
    char *strs[] = {"ok", "\xc3"};
    Phuxanh__Test__V1__Nested n = PHUXANH__TEST__V1__NESTED__INIT;
    Phuxanh__Test__V1__Nested *ns[] = {&n, &n};
    n.n_tags = 2;
    n.tags = strs;
    m2.n_r_nested = 2;
    m2.r_nested = ns;
    out = px_json_from_message(&m2.base, NULL, &st);
    PX_CHECK(out == NULL);
    PX_CHECK_STR_EQ(st.message, "r_nested[0].tags[1]: string is not valid UTF-8");

    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Phuxanh__Test__V1__AllTypes m3 = PHUXANH__TEST__V1__ALL_TYPES__INIT;
    m3.ts = &ts;
    ts.seconds = 253402300800LL; /* 10000-01-01 */
    out = px_json_from_message(&m3.base, NULL, &st);
    PX_CHECK(out == NULL);
    PX_CHECK(strstr(st.message, "ts: timestamp out of range") == st.message);
    ts.seconds = 0;
    ts.nanos = -1;
    out = px_json_from_message(&m3.base, NULL, &st);
    PX_CHECK(out == NULL);
    ts.nanos = 999999999;
    out = px_json_from_message(&m3.base, NULL, &st);
    PX_CHECK_STR_EQ(out, "{\"ts\":\"1970-01-01T00:00:00.999999999Z\"}");
    free(out);

    Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
    Phuxanh__Test__V1__AllTypes m4 = PHUXANH__TEST__V1__ALL_TYPES__INIT;
    m4.dur = &d;
    d.seconds = 1;
    d.nanos = -1;
    out = px_json_from_message(&m4.base, NULL, &st);
    PX_CHECK(out == NULL);
    PX_CHECK(strstr(st.message, "dur: duration") == st.message);
    d.seconds = 0;
    d.nanos = -1000;
    out = px_json_from_message(&m4.base, NULL, &st);
    PX_CHECK_STR_EQ(out, "{\"dur\":\"-0.000001s\"}");
    free(out);

    /* Bytes that are not an AllTypes. */
    const uint8_t junk[] = {0x0a, 0x05, 0x01};
    out = px_json_from_pb(ALLTYPES, junk, sizeof junk, NULL, &st);
    PX_CHECK(out == NULL);
    PX_CHECK_INT_EQ(st.code, PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "phuxanh.test.v1.AllTypes") != NULL);
}

/* On the wire a map may repeat a key (the last one wins); JSON must not. */
static void test_map_repeated_keys(void)
{
    Phuxanh__Test__V1__AllTypes m = PHUXANH__TEST__V1__ALL_TYPES__INIT;
    Phuxanh__Test__V1__AllTypes__MStrIntEntry s[3];
    Phuxanh__Test__V1__AllTypes__MStrIntEntry *sp[3] = {&s[0], &s[1], &s[2]};
    const char *skeys[] = {"a", "b", "a"};
    for (int i = 0; i < 3; i++) {
        phuxanh__test__v1__all_types__mstr_int_entry__init(&s[i]);
        s[i].key = (char *)skeys[i];
        s[i].value = i + 1;
    }
    m.n_m_str_int = 3;
    m.m_str_int = sp;
    Phuxanh__Test__V1__AllTypes__MIntMsgEntry e[4];
    Phuxanh__Test__V1__AllTypes__MIntMsgEntry *ep[4] = {&e[0], &e[1], &e[2], &e[3]};
    const int64_t ikeys[] = {-5, 7, -5, -5};
    for (int i = 0; i < 4; i++) {
        phuxanh__test__v1__all_types__mint_msg_entry__init(&e[i]);
        e[i].key = ikeys[i];
    }
    Phuxanh__Test__V1__Nested last = PHUXANH__TEST__V1__NESTED__INIT;
    last.id = 9;
    e[3].value = &last;
    m.n_m_int_msg = 4;
    m.m_int_msg = ep;
    px_status_t st;
    char *out = px_json_from_message(&m.base, NULL, &st);
    PX_CHECK_STR_EQ(out,
                    "{\"mStrInt\":{\"b\":2,\"a\":3},\"mIntMsg\":{\"7\":{},\"-5\":{\"id\":9}}}");
    free(out);
}

/* ---- the real service messages ------------------------------------------------------------ */

static void test_record_events_request(void)
{
    static const char in[] =
        "{\"events\":[{\"idempotencyKey\":\"k-1\",\"campaignId\":\"tn-2023\","
        "\"citizenId\":\"001234567890\",\"unitCode\":\"25966\",\"stage\":\"STAGE_APPROVED\","
        "\"channel\":\"CHANNEL_OWN_PHONE\",\"venue\":\"VENUE_DOOR_TO_DOOR\","
        "\"occurredAt\":\"2023-07-29T10:00:00+07:00\",\"note\":\"S\xe1\xbb\x91 12\","
        "\"consent\":true},"
        "{\"idempotency_key\":\"k-2\",\"campaign_id\":\"tn-2023\",\"citizen_id\":\"001234567891\","
        "\"unit_code\":\"25966\",\"neighborhood_code\":\"25966-01\",\"volunteer_code\":\"TN0001\","
        "\"stage\":1,\"occurred_at\":\"2023-07-29T03:00:00.250Z\",\"consent\":true}]}";
    static const char canonical[] =
        "{\"events\":[{\"idempotencyKey\":\"k-1\",\"campaignId\":\"tn-2023\","
        "\"citizenId\":\"001234567890\",\"unitCode\":\"25966\",\"stage\":\"STAGE_APPROVED\","
        "\"channel\":\"CHANNEL_OWN_PHONE\",\"venue\":\"VENUE_DOOR_TO_DOOR\","
        "\"occurredAt\":\"2023-07-29T03:00:00Z\",\"note\":\"S\xe1\xbb\x91 12\",\"consent\":true},"
        "{\"idempotencyKey\":\"k-2\",\"campaignId\":\"tn-2023\",\"citizenId\":\"001234567891\","
        "\"unitCode\":\"25966\",\"neighborhoodCode\":\"25966-01\",\"volunteerCode\":\"TN0001\","
        "\"stage\":\"STAGE_COLLECTED\",\"occurredAt\":\"2023-07-29T03:00:00.250Z\","
        "\"consent\":true}]}";
    const ProtobufCMessageDescriptor *desc =
        &phuxanh__activation__v1__record_events_request__descriptor;
    px_status_t st;
    Phuxanh__Activation__V1__RecordEventsRequest *req =
        (Phuxanh__Activation__V1__RecordEventsRequest *)px_json_to_message(desc, in, strlen(in),
                                                                           &st);
    PX_REQUIRE(req);
    PX_CHECK_INT_EQ(req->n_events, 2);
    PX_REQUIRE(req->n_events == 2);
    PX_CHECK_STR_EQ(req->events[0]->citizen_id, "001234567890");
    PX_CHECK_INT_EQ(req->events[0]->stage, PHUXANH__ACTIVATION__V1__STAGE__STAGE_APPROVED);
    PX_CHECK_INT_EQ(req->events[0]->occurred_at->seconds, 1690599600);
    PX_CHECK_INT_EQ(req->events[1]->occurred_at->nanos, 250000000);
    PX_CHECK(req->events[1]->consent);
    char *out = px_json_from_message(&req->base, NULL, &st);
    PX_CHECK_STR_EQ(out, canonical);
    free(out);
    protobuf_c_message_free_unpacked(&req->base, NULL);
    out = s_round_trip(desc, canonical);
    PX_CHECK_STR_EQ(out, canonical);
    free(out);

    /* Errors inside the batch name the event. */
    static const s_bad_t bad[] = {
        {&phuxanh__activation__v1__record_events_request__descriptor,
         "{\"events\":[{},{},{\"occurredAt\":\"yesterday\"}]}", PX_INVALID_ARGUMENT,
         "events[2].occurred_at: not an RFC 3339 timestamp"},
        {&phuxanh__activation__v1__record_events_request__descriptor,
         "{\"events\":[{\"campaignId\":\"tn\\u0000\"}]}", PX_INVALID_ARGUMENT,
         "events[0].campaign_id: string holds a NUL character"},
        {&phuxanh__activation__v1__record_events_request__descriptor,
         "{\"events\":[{\"stage\":\"STAGE_DONE\"}]}", PX_INVALID_ARGUMENT,
         "events[0].stage: unknown value \"STAGE_DONE\" for enum phuxanh.activation.v1.Stage"},
        {&phuxanh__activation__v1__record_events_request__descriptor,
         "{\"events\":[{\"consent\":\"yes\"}]}", PX_INVALID_ARGUMENT,
         "events[0].consent: expected true or false"},
    };
    s_check_bad(bad, sizeof bad / sizeof bad[0]);
}

static void test_get_progress_response(void)
{
    static const char canonical[] =
        "{\"unit\":{\"unitCode\":\"25966\",\"unitName\":\"Ph\xc6\xb0\xe1\xbb\x9dng L\xc3\xa1i "
        "Thi\xc3\xaau\",\"target\":1000,\"collected\":620,\"approved\":540,\"activated\":333,"
        "\"rejected\":4,\"approvedNotActivated\":207,\"followUpsOpen\":12,\"percent\":33.3,"
        "\"activationRate\":61.666666666666664},"
        "\"children\":[{\"unitCode\":\"25966-01\",\"unitName\":\"Khu ph\xe1\xbb\x91 1\","
        "\"target\":100,\"activated\":120,\"percent\":120,\"activationRate\":100,\"green\":true},"
        "{\"unitCode\":\"25966-02\"}]}";
    const ProtobufCMessageDescriptor *desc =
        &phuxanh__activation__v1__get_progress_response__descriptor;
    char *out = s_round_trip(desc, canonical);
    PX_CHECK_STR_EQ(out, canonical);
    free(out);

    /* Built in C, as the handler does. */
    Phuxanh__Activation__V1__ProgressRow unit = PHUXANH__ACTIVATION__V1__PROGRESS_ROW__INIT;
    unit.unit_code = "25966";
    unit.activated = 333;
    unit.target = 1000;
    unit.percent = 33.3;
    Phuxanh__Activation__V1__GetProgressResponse resp =
        PHUXANH__ACTIVATION__V1__GET_PROGRESS_RESPONSE__INIT;
    resp.unit = &unit;
    px_status_t st;
    size_t len = 0;
    out = px_json_from_message(&resp.base, &len, &st);
    PX_CHECK_STR_EQ(out, "{\"unit\":{\"unitCode\":\"25966\",\"target\":1000,\"activated\":333,"
                         "\"percent\":33.3}}");
    PX_CHECK_INT_EQ(len, out ? strlen(out) : 0);
    free(out);
}

static void test_roster_volunteer(void)
{
    const ProtobufCMessageDescriptor *desc = &phuxanh__roster__v1__volunteer__descriptor;
    static const char inactive[] =
        "{\"code\":\"TN0001\",\"fullName\":\"Nguy\xe1\xbb\x85n V\xc4\x83n An\","
        "\"rank\":\"Trung \xc3\xbay\",\"phone\":\"0912345678\",\"active\":false,"
        "\"createdAt\":\"2023-07-29T03:00:00.123456Z\"}";
    char *out = s_round_trip(desc, inactive);
    PX_CHECK_STR_EQ(out, inactive);
    free(out);

    px_status_t st;
    Phuxanh__Roster__V1__Volunteer *v =
        (Phuxanh__Roster__V1__Volunteer *)px_json_to_message(desc, inactive, strlen(inactive), &st);
    PX_REQUIRE(v);
    PX_CHECK(v->active != NULL && !v->active->value);
    PX_CHECK_INT_EQ(v->created_at->nanos, 123456000);
    protobuf_c_message_free_unpacked(&v->base, NULL);

    /* Absent (null) keeps the stored value: no BoolValue at all. */
    static const char absent[] = "{\"code\":\"TN0002\",\"active\":null}";
    v = (Phuxanh__Roster__V1__Volunteer *)px_json_to_message(desc, absent, strlen(absent), &st);
    PX_REQUIRE(v);
    PX_CHECK(v->active == NULL);
    out = px_json_from_message(&v->base, NULL, &st);
    PX_CHECK_STR_EQ(out, "{\"code\":\"TN0002\"}");
    free(out);
    protobuf_c_message_free_unpacked(&v->base, NULL);
}

/* A batch of the gateway's largest size transcodes in linear time: a guard against quadratic
 * work creeping in (a 1,000-event batch well within the ctest timeout many times over). */
static void test_large_batch(void)
{
    size_t cap = 1000 * 400 + 64;
    char *json = malloc(cap);
    size_t n = (size_t)snprintf(json, cap, "{\"events\":[");
    for (int i = 0; i < 1000; i++) {
        n += (size_t)snprintf(json + n, cap - n,
                              "%s{\"idempotencyKey\":\"key-%d\",\"campaignId\":\"tn-2023\","
                              "\"citizenId\":\"0012345%05d\",\"unitCode\":\"25966\","
                              "\"stage\":\"STAGE_ACTIVATED\",\"channel\":2,"
                              "\"occurredAt\":\"2023-07-29T03:00:00Z\",\"note\":\"n\","
                              "\"consent\":true}",
                              i ? "," : "", i, i);
    }
    n += (size_t)snprintf(json + n, cap - n, "]}");
    const ProtobufCMessageDescriptor *desc =
        &phuxanh__activation__v1__record_events_request__descriptor;
    for (int round = 0; round < 20; round++) {
        char *out = s_round_trip(desc, json);
        PX_CHECK(out != NULL);
        free(out);
    }
    free(json);
}

static const px_test_case_t s_cases[] = {
    {"every_field_round_trip", test_every_field_round_trip},
    {"defaults_left_out", test_defaults_left_out},
    {"inputs_to_canonical", test_inputs_to_canonical},
    {"explicit_presence", test_explicit_presence},
    {"wire_bytes", test_wire_bytes},
    {"long_lengths", test_long_lengths},
    {"malformed_inputs", test_malformed_inputs},
    {"echo_rules", test_echo_rules},
    {"depth_bound", test_depth_bound},
    {"output_refusals", test_output_refusals},
    {"map_repeated_keys", test_map_repeated_keys},
    {"record_events_request", test_record_events_request},
    {"get_progress_response", test_get_progress_response},
    {"roster_volunteer", test_roster_volunteer},
    {"large_batch", test_large_batch},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
