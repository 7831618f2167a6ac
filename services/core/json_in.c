/*
 * json_in.c - JSON text -> protobuf wire bytes of any message type (px_json_to_pb).
 *
 * jansson parses the text (refusing duplicate keys, and with JSON_ALLOW_NUL so that a
 * "\u0000" inside a string is seen and refused rather than silently cutting the C string).
 * One walk over that tree and the message descriptor then writes the wire format straight
 * into one growing buffer: tags, varints, zigzag, fixed-width, length-delimited, packed
 * repeated scalars. How each scalar type is read from JSON and written to the wire is one row
 * of s_types, indexed by ProtobufCType.
 *
 * A nested message's length prefix precedes it but is known only after it is written: one
 * byte is reserved, and when the content turns out to be 128 bytes or more it is moved up by
 * the extra length bytes. That is linear work per nesting level, and levels are bounded.
 *
 * Fields at their default are not written (the bytes protobuf itself would send), except
 * where presence is explicit (proto2 optional, oneof members, repeated elements, map
 * entries) and for messages, which are present once given. Errors stop the walk at the
 * first bad value and name its path.
 */
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "json_internal.h"
#include "phuxanh/json.h"
#include "phuxanh/text.h"

#define WIRE_VARINT 0
#define WIRE_FIXED64 1
#define WIRE_LEN 2
#define WIRE_FIXED32 5

/* 2^53: beyond it a double no longer holds every integer, so a JSON number parsed as a real
 * (1e20, 9007199254740993.0) may not be the integer that was written. */
#define EXACT_DOUBLE_INT 9007199254740992.0
/* 2^128 - 2^103: half a float ulp above FLT_MAX, where a double starts to round to infinity
 * as a float. Below it a value rounds to at most FLT_MAX, so "3.4028235e38" (FLT_MAX as we
 * write it) reads back. */
#define FLOAT_ROUNDS_TO_INF 3.4028235677973366e38
/* A message with at most this many fields keeps its per-field marks on the stack. */
#define MARKS_ON_STACK 128
/* A key longer than this is no field name of ours; it is not converted from camelCase. */
#define FIELD_NAME_MAX 128

/* Per-field marks while reading one object. */
#define MARK_SEEN 1 /* the key (in either spelling) was given */
#define MARK_SET 2  /* ... with a value other than null */

typedef struct {
    px__jbuf_t out;
    px__jpath_t path;
    px_status_t *st;
    int depth;
} s_in_t;

/* A scalar between reading it from JSON and writing it to the wire. Signed integers and enums
 * use i (sign-extended), unsigned integers and bool u, float and double d. */
typedef union {
    int64_t i;
    uint64_t u;
    double d;
} s_num_t;

typedef struct s_type_t s_type_t;

/* JSON -> a scalar (range-checked for the type). */
typedef px_code_t (*s_read_fn)(s_in_t *in, const s_type_t *t, const ProtobufCFieldDescriptor *f,
                               const json_t *v, s_num_t *num);
/* A scalar -> its wire bytes, without tag. */
typedef void (*s_put_fn)(px__jbuf_t *b, s_num_t num);
/* JSON -> one length-delimited value (string, bytes, message), without tag; *zero tells
 * whether it was the default, so that an implicit-presence field can be left out. */
typedef px_code_t (*s_value_fn)(s_in_t *in, const ProtobufCFieldDescriptor *f, const json_t *v,
                                bool *zero);

struct s_type_t {
    const char *name;
    unsigned wire;
    int64_t min; /* integers: range; min < 0 means signed */
    uint64_t max;
    s_read_fn read; /* scalars */
    s_put_fn put;
    s_value_fn value; /* string, bytes, message */
};

static px_code_t s_fail(s_in_t *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static px_code_t s_fail(s_in_t *in, const char *fmt, ...)
{
    char msg[PX_STATUS_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (in->path.len) {
        return px_status_set(in->st, PX_INVALID_ARGUMENT, "%s: %s", in->path.text, msg);
    }
    return px_status_set(in->st, PX_INVALID_ARGUMENT, "%s", msg);
}

/* What a JSON value is, for "expected X, got Y". */
static const char *s_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

/* ---- wire format -------------------------------------------------------------------------- */

static void s_put_varint(px__jbuf_t *b, uint64_t v)
{
    char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (char)((v & 0x7F) | 0x80);
        v >>= 7;
    }
    tmp[n++] = (char)v;
    px__jbuf_put(b, tmp, n);
}

static void s_put_tag(px__jbuf_t *b, uint32_t id, unsigned wire)
{
    s_put_varint(b, ((uint64_t)id << 3) | wire);
}

static void s_put_le(px__jbuf_t *b, uint64_t v, size_t n)
{
    char tmp[8];
    for (size_t i = 0; i < n; i++) {
        tmp[i] = (char)(v >> (8 * i));
    }
    px__jbuf_put(b, tmp, n);
}

/* Reserves the length prefix of a length-delimited value; returns where it is. */
static size_t s_len_begin(px__jbuf_t *b)
{
    size_t at = b->len;
    px__jbuf_putc(b, 0);
    return at;
}

/* Writes the length of what followed s_len_begin, moving it up when the length needs more
 * than the one byte reserved. */
static void s_len_end(px__jbuf_t *b, size_t at)
{
    if (b->oom) {
        return;
    }
    size_t n = b->len - at - 1;
    char tmp[10];
    size_t k = 0;
    uint64_t v = n;
    while (v >= 0x80) {
        tmp[k++] = (char)((v & 0x7F) | 0x80);
        v >>= 7;
    }
    tmp[k++] = (char)v;
    if (k > 1) {
        if (!px__jbuf_reserve(b, k - 1)) {
            return;
        }
        memmove(b->data + at + k, b->data + at + 1, n);
        b->len += k - 1;
    }
    memcpy(b->data + at, tmp, k);
}

static void s_put_int(px__jbuf_t *b, s_num_t num)
{
    /* int32 and enum too: a negative value is sign-extended to ten bytes, as protobuf says. */
    s_put_varint(b, num.u);
}

static void s_put_sint(px__jbuf_t *b, s_num_t num)
{
    /* zigzag; for a value in int32 range this equals the 32-bit zigzag. */
    s_put_varint(b, ((uint64_t)num.i << 1) ^ (uint64_t)(num.i >> 63));
}

static void s_put_fixed32(px__jbuf_t *b, s_num_t num)
{
    s_put_le(b, (uint32_t)num.u, 4);
}

static void s_put_fixed64(px__jbuf_t *b, s_num_t num)
{
    s_put_le(b, num.u, 8);
}

static void s_put_float(px__jbuf_t *b, s_num_t num)
{
    float f = (float)num.d;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    s_put_le(b, bits, 4);
}

static void s_put_double(px__jbuf_t *b, s_num_t num)
{
    uint64_t bits;
    memcpy(&bits, &num.d, sizeof bits);
    s_put_le(b, bits, 8);
}

/* ---- numbers ------------------------------------------------------------------------------ */

/* Does s (n bytes) follow the JSON number grammar? Numeric strings are held to it, so that
 * " 12", "0x10", "inf" or "1_000" are refused rather than read by strtod's looser rules. */
static bool s_is_number_text(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-') {
        i++;
    }
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        if (i == start) {
            return false;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        size_t start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        if (i == start) {
            return false;
        }
    }
    return i == n;
}

/* Reads a numeric string that s_is_number_text accepted. false when out of double range. */
static bool s_text_to_double(const char *s, size_t n, double *d)
{
    char buf[64];
    char *copy = n < sizeof buf ? buf : malloc(n + 1);
    if (!copy) {
        return false;
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    errno = 0;
    *d = strtod(copy, NULL);
    bool ok = !(errno == ERANGE && isinf(*d));
    if (copy != buf) {
        free(copy);
    }
    return ok;
}

typedef enum { INT_OK, INT_NOT_DIGITS, INT_OVERFLOW } s_int_text_t;

/* "-?[0-9]+" exactly (leading zeros allowed) -> sign and magnitude. */
static s_int_text_t s_int_text(const char *s, size_t n, bool *neg, uint64_t *mag)
{
    size_t i = 0;
    *neg = n > 0 && s[0] == '-';
    i = *neg ? 1 : 0;
    if (i == n) {
        return INT_NOT_DIGITS;
    }
    uint64_t m = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return INT_NOT_DIGITS;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (m > (UINT64_MAX - d) / 10) {
            return INT_OVERFLOW;
        }
        m = m * 10 + d;
    }
    *mag = m;
    return INT_OK;
}

/* A real that must stand for an integer: integral and exact. */
static px_code_t s_real_to_int(s_in_t *in, const s_type_t *t, double d, bool *neg, uint64_t *mag)
{
    if (!isfinite(d)) {
        return s_fail(in, "expected an integer (%s), got a non-finite number", t->name);
    }
    if (d != floor(d)) {
        return s_fail(in, "expected an integer (%s), got a number with a fraction", t->name);
    }
    if (fabs(d) > EXACT_DOUBLE_INT) {
        return s_fail(in,
                      "number beyond 2^53 is not exact in this form; send %s values this "
                      "large as a string of digits",
                      t->name);
    }
    *neg = d < 0;
    *mag = (uint64_t)fabs(d);
    return PX_OK;
}

static px_code_t s_int_in_range(s_in_t *in, const s_type_t *t, bool neg, uint64_t mag, s_num_t *num)
{
    if (t->min < 0) {
        uint64_t lim = neg ? (uint64_t)(-(t->min + 1)) + 1 : t->max;
        if (mag > lim) {
            return s_fail(in, "out of range for %s", t->name);
        }
        num->u = neg ? 0 - mag : mag; /* two's complement, read back through num->i */
    } else {
        if (neg && mag != 0) {
            return s_fail(in, "%s must not be negative", t->name);
        }
        if (mag > t->max) {
            return s_fail(in, "out of range for %s", t->name);
        }
        num->u = mag;
    }
    return PX_OK;
}

/* Integer text (a string value or a map key) -> a range-checked integer. */
static px_code_t s_int_from_text(s_in_t *in, const s_type_t *t, const char *s, size_t n,
                                 s_num_t *num)
{
    bool neg = false;
    uint64_t mag = 0;
    switch (s_int_text(s, n, &neg, &mag)) {
    case INT_OK:
        return s_int_in_range(in, t, neg, mag, num);
    case INT_OVERFLOW:
        return s_fail(in, "out of range for %s", t->name);
    case INT_NOT_DIGITS:
        break;
    }
    double d;
    if (s_is_number_text(s, n)) {
        if (!s_text_to_double(s, n, &d)) {
            return s_fail(in, "out of range for %s", t->name);
        }
        px_code_t rc = s_real_to_int(in, t, d, &neg, &mag);
        return rc != PX_OK ? rc : s_int_in_range(in, t, neg, mag, num);
    }
    char echo[PX_JSON_ECHO_MAX + 16];
    px__json_echo(echo, sizeof echo, s, n);
    return s_fail(in, "expected an integer (%s) as a number or a string of digits, got %s", t->name,
                  echo);
}

static px_code_t s_read_int(s_in_t *in, const s_type_t *t, const ProtobufCFieldDescriptor *f,
                            const json_t *v, s_num_t *num)
{
    (void)f;
    bool neg = false;
    uint64_t mag = 0;
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        neg = x < 0;
        mag = neg ? (uint64_t)(-(x + 1)) + 1 : (uint64_t)x;
    } else if (json_is_real(v)) {
        px_code_t rc = s_real_to_int(in, t, json_real_value(v), &neg, &mag);
        if (rc != PX_OK) {
            return rc;
        }
    } else if (json_is_string(v)) {
        return s_int_from_text(in, t, json_string_value(v), json_string_length(v), num);
    } else {
        return s_fail(in, "expected an integer (%s) as a number or a string of digits, got %s",
                      t->name, s_kind(v));
    }
    return s_int_in_range(in, t, neg, mag, num);
}

static px_code_t s_read_real(s_in_t *in, const s_type_t *t, const ProtobufCFieldDescriptor *f,
                             const json_t *v, s_num_t *num)
{
    (void)f;
    double d;
    if (json_is_number(v)) {
        d = json_number_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (strcmp(s, "NaN") == 0 && n == 3) {
            d = NAN;
        } else if (strcmp(s, "Infinity") == 0 && n == 8) {
            d = INFINITY;
        } else if (strcmp(s, "-Infinity") == 0 && n == 9) {
            d = -INFINITY;
        } else if (s_is_number_text(s, n)) {
            if (!s_text_to_double(s, n, &d)) {
                return s_fail(in, "out of range for %s", t->name);
            }
        } else {
            char echo[PX_JSON_ECHO_MAX + 16];
            px__json_echo(echo, sizeof echo, s, n);
            return s_fail(in,
                          "expected a number (%s), \"NaN\", \"Infinity\" or \"-Infinity\", "
                          "got %s",
                          t->name, echo);
        }
    } else {
        return s_fail(in, "expected a number (%s), got %s", t->name, s_kind(v));
    }
    if (t->wire == WIRE_FIXED32 && isfinite(d) && fabs(d) >= FLOAT_ROUNDS_TO_INF) {
        return s_fail(in, "out of range for float");
    }
    num->d = d;
    return PX_OK;
}

static px_code_t s_read_bool(s_in_t *in, const s_type_t *t, const ProtobufCFieldDescriptor *f,
                             const json_t *v, s_num_t *num)
{
    (void)t;
    (void)f;
    if (!json_is_boolean(v)) {
        return s_fail(in, "expected true or false, got %s", s_kind(v));
    }
    num->u = json_is_true(v) ? 1 : 0;
    return PX_OK;
}

static px_code_t s_read_enum(s_in_t *in, const s_type_t *t, const ProtobufCFieldDescriptor *f,
                             const json_t *v, s_num_t *num)
{
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        const ProtobufCEnumValue *ev =
            memchr(s, 0, n) ? NULL : protobuf_c_enum_descriptor_get_value_by_name(ed, s);
        if (!ev) {
            char echo[PX_JSON_ECHO_MAX + 16];
            px__json_echo(echo, sizeof echo, s, n);
            return s_fail(in, "unknown value %s for enum %s", echo, ed->name);
        }
        num->i = ev->value;
        return PX_OK;
    }
    if (json_is_number(v)) {
        /* Any int32: proto3 enums are open, so a number this build does not name is kept. */
        return s_read_int(in, t, f, v, num);
    }
    return s_fail(in, "expected a name or number of enum %s, got %s", ed->name, s_kind(v));
}

/* ---- string, bytes, message --------------------------------------------------------------- */

static px_code_t s_value_string(s_in_t *in, const ProtobufCFieldDescriptor *f, const json_t *v,
                                bool *zero)
{
    (void)f;
    if (!json_is_string(v)) {
        return s_fail(in, "expected a string, got %s", s_kind(v));
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (memchr(s, 0, n)) {
        return s_fail(in, "string holds a NUL character (\\u0000)");
    }
    if (!px_utf8_valid(s, n)) {
        return s_fail(in, "string is not valid UTF-8");
    }
    s_put_varint(&in->out, n);
    px__jbuf_put(&in->out, s, n);
    *zero = n == 0;
    return PX_OK;
}

static px_code_t s_value_bytes(s_in_t *in, const ProtobufCFieldDescriptor *f, const json_t *v,
                               bool *zero)
{
    (void)f;
    if (!json_is_string(v)) {
        return s_fail(in, "expected base64 text, got %s", s_kind(v));
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    /* Either alphabet, padded or not: pick libsodium's variant from what the text uses, and
     * let it refuse anything else (mixed alphabets, bad padding, stray bits). */
    bool url = memchr(s, '-', n) || memchr(s, '_', n);
    bool padded = memchr(s, '=', n) != NULL;
    int variant =
        url ? (padded ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_URLSAFE_NO_PADDING)
            : (padded ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    size_t cap = n / 4 * 3 + 3;
    size_t at = s_len_begin(&in->out);
    if (!px__jbuf_reserve(&in->out, cap)) {
        return PX_OK; /* reported as out of memory at the end */
    }
    size_t got = 0;
    if (sodium_base642bin((unsigned char *)in->out.data + in->out.len, cap, s, n, NULL, &got, NULL,
                          variant) != 0) {
        return s_fail(in, "not valid base64");
    }
    in->out.len += got;
    s_len_end(&in->out, at);
    *zero = got == 0;
    return PX_OK;
}

static px_code_t s_message_body(s_in_t *in, const ProtobufCMessageDescriptor *desc,
                                const json_t *v);

static px_code_t s_value_message(s_in_t *in, const ProtobufCFieldDescriptor *f, const json_t *v,
                                 bool *zero)
{
    size_t at = s_len_begin(&in->out);
    px_code_t rc = s_message_body(in, f->descriptor, v);
    s_len_end(&in->out, at);
    *zero = false; /* a message given is present, even when empty */
    return rc;
}

/* Indexed by ProtobufCType. */
static const s_type_t s_types[] = {
    [PROTOBUF_C_TYPE_INT32] = {"int32", WIRE_VARINT, INT32_MIN, INT32_MAX, s_read_int, s_put_int,
                               NULL},
    [PROTOBUF_C_TYPE_SINT32] = {"sint32", WIRE_VARINT, INT32_MIN, INT32_MAX, s_read_int, s_put_sint,
                                NULL},
    [PROTOBUF_C_TYPE_SFIXED32] = {"sfixed32", WIRE_FIXED32, INT32_MIN, INT32_MAX, s_read_int,
                                  s_put_fixed32, NULL},
    [PROTOBUF_C_TYPE_INT64] = {"int64", WIRE_VARINT, INT64_MIN, INT64_MAX, s_read_int, s_put_int,
                               NULL},
    [PROTOBUF_C_TYPE_SINT64] = {"sint64", WIRE_VARINT, INT64_MIN, INT64_MAX, s_read_int, s_put_sint,
                                NULL},
    [PROTOBUF_C_TYPE_SFIXED64] = {"sfixed64", WIRE_FIXED64, INT64_MIN, INT64_MAX, s_read_int,
                                  s_put_fixed64, NULL},
    [PROTOBUF_C_TYPE_UINT32] = {"uint32", WIRE_VARINT, 0, UINT32_MAX, s_read_int, s_put_int, NULL},
    [PROTOBUF_C_TYPE_FIXED32] = {"fixed32", WIRE_FIXED32, 0, UINT32_MAX, s_read_int, s_put_fixed32,
                                 NULL},
    [PROTOBUF_C_TYPE_UINT64] = {"uint64", WIRE_VARINT, 0, UINT64_MAX, s_read_int, s_put_int, NULL},
    [PROTOBUF_C_TYPE_FIXED64] = {"fixed64", WIRE_FIXED64, 0, UINT64_MAX, s_read_int, s_put_fixed64,
                                 NULL},
    [PROTOBUF_C_TYPE_FLOAT] = {"float", WIRE_FIXED32, 0, 0, s_read_real, s_put_float, NULL},
    [PROTOBUF_C_TYPE_DOUBLE] = {"double", WIRE_FIXED64, 0, 0, s_read_real, s_put_double, NULL},
    [PROTOBUF_C_TYPE_BOOL] = {"bool", WIRE_VARINT, 0, 1, s_read_bool, s_put_int, NULL},
    [PROTOBUF_C_TYPE_ENUM] = {"enum", WIRE_VARINT, INT32_MIN, INT32_MAX, s_read_enum, s_put_int,
                              NULL},
    [PROTOBUF_C_TYPE_STRING] = {"string", WIRE_LEN, 0, 0, NULL, NULL, s_value_string},
    [PROTOBUF_C_TYPE_BYTES] = {"bytes", WIRE_LEN, 0, 0, NULL, NULL, s_value_bytes},
    [PROTOBUF_C_TYPE_MESSAGE] = {"message", WIRE_LEN, 0, 0, NULL, NULL, s_value_message},
};

/* One value of f, without its tag. */
static px_code_t s_value(s_in_t *in, const ProtobufCFieldDescriptor *f, const json_t *v, bool *zero)
{
    const s_type_t *t = &s_types[f->type];
    if (t->value) {
        return t->value(in, f, v, zero);
    }
    s_num_t num = {.u = 0};
    px_code_t rc = t->read(in, t, f, v, &num);
    if (rc != PX_OK) {
        return rc;
    }
    t->put(&in->out, num);
    *zero = t->read == s_read_real ? num.d == 0 : num.u == 0;
    return PX_OK;
}

/* Tag and value of f; left out when it is the default and presence is implicit. */
static px_code_t s_tagged(s_in_t *in, const ProtobufCFieldDescriptor *f, const json_t *v,
                          bool always)
{
    size_t mark = in->out.len;
    s_put_tag(&in->out, f->id, s_types[f->type].wire);
    bool zero = false;
    px_code_t rc = s_value(in, f, v, &zero);
    if (rc == PX_OK && zero && !always && !in->out.oom) {
        in->out.len = mark;
    }
    return rc;
}

/* ---- well-known types --------------------------------------------------------------------- */

/* Reads exactly n digits. */
static bool s_digits(const char *s, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return true;
}

/* ".d{1,9}" at s[*i] -> nanoseconds (none: 0). false when malformed. */
static bool s_fraction(const char *s, size_t n, size_t *i, int32_t *nanos)
{
    *nanos = 0;
    if (*i >= n || s[*i] != '.') {
        return true;
    }
    size_t start = ++*i;
    int32_t x = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        if (*i - start == 9) {
            return false;
        }
        x = x * 10 + (s[*i] - '0');
        ++*i;
    }
    size_t digits = *i - start;
    if (digits == 0) {
        return false;
    }
    for (size_t k = digits; k < 9; k++) {
        x *= 10;
    }
    *nanos = x;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t s_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int s_days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* The content of a Timestamp (seconds = 1, nanos = 2) or Duration, defaults left out. */
static void s_put_seconds_nanos(s_in_t *in, int64_t seconds, int32_t nanos)
{
    if (seconds) {
        s_put_tag(&in->out, 1, WIRE_VARINT);
        s_put_varint(&in->out, (uint64_t)seconds);
    }
    if (nanos) {
        s_put_tag(&in->out, 2, WIRE_VARINT);
        s_put_varint(&in->out, (uint64_t)(int64_t)nanos);
    }
}

/* "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM)" */
static px_code_t s_timestamp_in(s_in_t *in, const json_t *v)
{
    static const char bad[] = "not an RFC 3339 timestamp like \"2023-07-29T03:00:00Z\"";
    if (!json_is_string(v)) {
        return s_fail(in, "expected an RFC 3339 timestamp string, got %s", s_kind(v));
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    int y, mo, d, h, mi, se;
    if (n < 20 || !s_digits(s, 4, &y) || s[4] != '-' || !s_digits(s + 5, 2, &mo) || s[7] != '-' ||
        !s_digits(s + 8, 2, &d) || s[10] != 'T' || !s_digits(s + 11, 2, &h) || s[13] != ':' ||
        !s_digits(s + 14, 2, &mi) || s[16] != ':' || !s_digits(s + 17, 2, &se)) {
        return s_fail(in, "%s", bad);
    }
    size_t i = 19;
    int32_t nanos;
    if (!s_fraction(s, n, &i, &nanos) || i >= n) {
        return s_fail(in, "%s", bad);
    }
    int64_t offset = 0;
    if (s[i] == 'Z' && i + 1 == n) {
        offset = 0;
    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == n && s[i + 3] == ':') {
        int oh, om;
        if (!s_digits(s + i + 1, 2, &oh) || !s_digits(s + i + 4, 2, &om) || oh > 23 || om > 59) {
            return s_fail(in, "%s", bad);
        }
        offset = (s[i] == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
    } else {
        return s_fail(in, "%s", bad);
    }
    if (mo < 1 || mo > 12 || d < 1 || d > s_days_in_month(y, mo) || h > 23 || mi > 59 || se > 59) {
        return s_fail(in, "%s", bad);
    }
    int64_t seconds = s_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    if (seconds < PX__TS_MIN_SECONDS || seconds > PX__TS_MAX_SECONDS) {
        return s_fail(in, "timestamp out of range (0001-01-01 to 9999-12-31 UTC)");
    }
    s_put_seconds_nanos(in, seconds, nanos);
    return PX_OK;
}

/* "-?S+(.f{1,9})?s" */
static px_code_t s_duration_in(s_in_t *in, const json_t *v)
{
    static const char bad[] = "not a duration like \"1.5s\"";
    if (!json_is_string(v)) {
        return s_fail(in, "expected a duration string like \"1.5s\", got %s", s_kind(v));
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    size_t i = 0;
    bool neg = n > 0 && s[0] == '-';
    i = neg ? 1 : 0;
    size_t start = i;
    int64_t seconds = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (seconds > PX__DURATION_MAX_SECONDS) {
            return s_fail(in, "duration out of range (at most %llds either way)",
                          (long long)PX__DURATION_MAX_SECONDS);
        }
        seconds = seconds * 10 + (s[i] - '0');
        i++;
    }
    int32_t nanos;
    if (i == start || !s_fraction(s, n, &i, &nanos) || i + 1 != n || s[i] != 's') {
        return s_fail(in, "%s", bad);
    }
    if (seconds > PX__DURATION_MAX_SECONDS) {
        return s_fail(in, "duration out of range (at most %llds either way)",
                      (long long)PX__DURATION_MAX_SECONDS);
    }
    s_put_seconds_nanos(in, neg ? -seconds : seconds, neg ? -nanos : nanos);
    return PX_OK;
}

/* ---- messages ----------------------------------------------------------------------------- */

static const ProtobufCFieldDescriptor *s_find_field(const ProtobufCMessageDescriptor *desc,
                                                    const char *key, size_t n)
{
    if (memchr(key, 0, n)) {
        return NULL;
    }
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
    if (f) {
        return f;
    }
    /* lowerCamelCase back to snake_case finds the usual names in one more binary search. */
    if (n <= FIELD_NAME_MAX) {
        char snake[2 * FIELD_NAME_MAX + 1];
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (key[i] >= 'A' && key[i] <= 'Z') {
                snake[k++] = '_';
                snake[k++] = (char)(key[i] - 'A' + 'a');
            } else {
                snake[k++] = key[i];
            }
        }
        snake[k] = '\0';
        f = protobuf_c_message_descriptor_get_field_by_name(desc, snake);
        if (f && px__json_name_eq(f->name, key, n)) {
            return f;
        }
    }
    /* Names the conversion cannot invert ("a_1b" is "a1b"): compare with every field. Only
     * unknown keys and such names get here. */
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (px__json_name_eq(desc->fields[i].name, key, n)) {
            return &desc->fields[i];
        }
    }
    return NULL;
}

static px_code_t s_map_key(s_in_t *in, const ProtobufCFieldDescriptor *kf, const char *key,
                           size_t n)
{
    const s_type_t *t = &s_types[kf->type];
    s_put_tag(&in->out, kf->id, t->wire);
    if (kf->type == PROTOBUF_C_TYPE_STRING) {
        if (!px_utf8_valid(key, n)) {
            return s_fail(in, "map key is not valid UTF-8 or holds a NUL character");
        }
        s_put_varint(&in->out, n);
        px__jbuf_put(&in->out, key, n);
        return PX_OK;
    }
    s_num_t num = {.u = 0};
    if (kf->type == PROTOBUF_C_TYPE_BOOL) {
        if (n == 4 && memcmp(key, "true", 4) == 0) {
            num.u = 1;
        } else if (!(n == 5 && memcmp(key, "false", 5) == 0)) {
            return s_fail(in, "map key must be \"true\" or \"false\"");
        }
    } else {
        /* Only the canonical spelling ("7", "-7"; not "07", "-0", "7e0"), so that one key has
         * one text and jansson's duplicate check is also the map's. */
        bool neg = n > 0 && key[0] == '-';
        const char *digits = neg ? key + 1 : key;
        size_t nd = neg ? n - 1 : n;
        if (nd == 0 || (nd > 1 && digits[0] == '0') || (neg && digits[0] == '0') ||
            strspn(digits, "0123456789") != nd) {
            return s_fail(in, "map key must be an integer written without leading zeros");
        }
        px_code_t rc = s_int_from_text(in, t, key, n, &num);
        if (rc != PX_OK) {
            return rc;
        }
    }
    t->put(&in->out, num);
    return PX_OK;
}

static px_code_t s_map_in(s_in_t *in, const ProtobufCFieldDescriptor *f, const json_t *v)
{
    if (!json_is_object(v)) {
        return s_fail(in, "expected an object (a map), got %s", s_kind(v));
    }
    const ProtobufCMessageDescriptor *entry = f->descriptor;
    for (void *it = json_object_iter((json_t *)v); it;
         it = json_object_iter_next((json_t *)v, it)) {
        const char *key = json_object_iter_key(it);
        size_t n = json_object_iter_key_len(it);
        const json_t *val = json_object_iter_value(it);
        size_t back = px__jpath_key(&in->path, key, n);
        if (json_is_null(val)) {
            return s_fail(in, "null is not allowed as a map value");
        }
        s_put_tag(&in->out, f->id, WIRE_LEN);
        size_t at = s_len_begin(&in->out);
        px_code_t rc = s_map_key(in, &entry->fields[0], key, n);
        if (rc == PX_OK) {
            rc = s_tagged(in, &entry->fields[1], val, true);
        }
        if (rc != PX_OK) {
            return rc;
        }
        s_len_end(&in->out, at);
        px__jpath_pop(&in->path, back);
    }
    return PX_OK;
}

static px_code_t s_repeated_in(s_in_t *in, const ProtobufCFieldDescriptor *f, const json_t *v)
{
    if (!json_is_array(v)) {
        return s_fail(in, "expected an array, got %s", s_kind(v));
    }
    size_t n = json_array_size(v);
    if (n == 0) {
        return PX_OK;
    }
    bool packed = (f->flags & PROTOBUF_C_FIELD_FLAG_PACKED) && s_types[f->type].wire != WIRE_LEN;
    size_t at = 0;
    if (packed) {
        s_put_tag(&in->out, f->id, WIRE_LEN);
        at = s_len_begin(&in->out);
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        size_t back = px__jpath_index(&in->path, i);
        if (json_is_null(e)) {
            return s_fail(in, "null is not allowed in a list");
        }
        bool zero;
        px_code_t rc = packed ? s_value(in, f, e, &zero) : s_tagged(in, f, e, true);
        if (rc != PX_OK) {
            return rc;
        }
        px__jpath_pop(&in->path, back);
    }
    if (packed) {
        s_len_end(&in->out, at);
    }
    return PX_OK;
}

/* A key's field was seen before `f` for another member of f's oneof? */
static const ProtobufCFieldDescriptor *s_oneof_rival(const ProtobufCMessageDescriptor *desc,
                                                     const ProtobufCFieldDescriptor *f,
                                                     const uint8_t *marks)
{
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *g = &desc->fields[i];
        if (g != f && (g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            g->quantifier_offset == f->quantifier_offset && (marks[i] & MARK_SET)) {
            return g;
        }
    }
    return NULL;
}

static px_code_t s_object_in(s_in_t *in, const ProtobufCMessageDescriptor *desc, const json_t *v)
{
    if (!json_is_object(v)) {
        return s_fail(in, "expected an object (%s), got %s", desc->name, s_kind(v));
    }
    uint8_t on_stack[MARKS_ON_STACK] = {0};
    uint8_t *marks = on_stack;
    if (desc->n_fields > MARKS_ON_STACK) {
        marks = calloc(desc->n_fields, 1);
        if (!marks) {
            in->out.oom = true;
            return PX_OK;
        }
    }
    px_code_t rc = PX_OK;
    for (void *it = json_object_iter((json_t *)v); it && rc == PX_OK;
         it = json_object_iter_next((json_t *)v, it)) {
        const char *key = json_object_iter_key(it);
        size_t n = json_object_iter_key_len(it);
        const json_t *val = json_object_iter_value(it);
        const ProtobufCFieldDescriptor *f = s_find_field(desc, key, n);
        if (!f) {
            char echo[PX_JSON_ECHO_MAX + 16];
            px__json_echo(echo, sizeof echo, key, n);
            rc = s_fail(in, "unknown field %s in %s", echo, desc->name);
            break;
        }
        unsigned idx = (unsigned)(f - desc->fields);
        size_t back = px__jpath_field(&in->path, f->name);
        if (marks[idx] & MARK_SEEN) {
            /* jansson refused the same spelling twice: this is the other spelling. */
            rc = s_fail(in, "given twice (by its proto name and by its JSON name)");
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
                   px__json_wkt(f->descriptor) == PX__WKT_UNSUPPORTED) {
            rc = s_fail(in, "%s is unsupported in JSON",
                        ((const ProtobufCMessageDescriptor *)f->descriptor)->name);
        } else if (!json_is_null(val)) {
            const ProtobufCFieldDescriptor *rival = NULL;
            if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                (rival = s_oneof_rival(desc, f, marks)) != NULL) {
                rc = s_fail(in, "%s is already set and belongs to the same oneof: give one",
                            rival->name);
            } else {
                marks[idx] |= MARK_SET;
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                    rc =
                        px__json_is_map(desc, f) ? s_map_in(in, f, val) : s_repeated_in(in, f, val);
                } else {
                    /* proto3 implicit presence (LABEL_NONE) leaves defaults out; proto2
                     * optional/required and oneof members are written as given. */
                    bool always = f->label != PROTOBUF_C_LABEL_NONE ||
                                  (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
                    rc = s_tagged(in, f, val, always);
                }
            }
        }
        marks[idx] |= MARK_SEEN;
        if (rc == PX_OK) {
            px__jpath_pop(&in->path, back);
        }
    }
    for (unsigned i = 0; i < desc->n_fields && rc == PX_OK; i++) {
        if (desc->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && !(marks[i] & MARK_SET)) {
            size_t back = px__jpath_field(&in->path, desc->fields[i].name);
            rc = s_fail(in, "required field is missing");
            px__jpath_pop(&in->path, back);
        }
    }
    if (marks != on_stack) {
        free(marks);
    }
    return rc;
}

static px_code_t s_message_body(s_in_t *in, const ProtobufCMessageDescriptor *desc, const json_t *v)
{
    if (in->depth >= PX_JSON_MAX_DEPTH) {
        return s_fail(in, "messages nested deeper than %d levels", PX_JSON_MAX_DEPTH);
    }
    in->depth++;
    px_code_t rc;
    switch (px__json_wkt(desc)) {
    case PX__WKT_TIMESTAMP:
        rc = s_timestamp_in(in, v);
        break;
    case PX__WKT_DURATION:
        rc = s_duration_in(in, v);
        break;
    case PX__WKT_WRAPPER:
        /* The bare value of field 1, left out at its default like any proto3 field. */
        rc = s_tagged(in, &desc->fields[0], v, false);
        break;
    case PX__WKT_UNSUPPORTED:
        rc = s_fail(in, "%s is unsupported in JSON", desc->name);
        break;
    default:
        rc = s_object_in(in, desc, v);
        break;
    }
    in->depth--;
    return rc;
}

/* ---- parsing ------------------------------------------------------------------------------ */

/* jansson's error as ours. Its text ends with "near '<token>'", which may be any part of the
 * input (an ID number): that part is dropped, and the token kept only for a duplicate key,
 * quoted by the echo rule. */
static px_code_t s_parse_error(px_status_t *st, const json_error_t *e)
{
    enum json_error_code code = json_error_code(e);
    if (code == json_error_out_of_memory) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory parsing JSON");
    }
    char text[JSON_ERROR_TEXT_LENGTH];
    snprintf(text, sizeof text, "%s", e->text);
    char *near = strstr(text, " near '");
    char token[JSON_ERROR_TEXT_LENGTH] = "";
    if (near) {
        snprintf(token, sizeof token, "%s", near + strlen(" near '"));
        size_t n = strlen(token);
        if (n && token[n - 1] == '\'') {
            token[--n] = '\0';
        }
        *near = '\0';
    }
    char what[JSON_ERROR_TEXT_LENGTH + PX_JSON_ECHO_MAX + 32];
    switch (code) {
    case json_error_invalid_utf8:
        snprintf(what, sizeof what, "the text is not valid UTF-8");
        break;
    case json_error_stack_overflow:
        snprintf(what, sizeof what, "nested too deeply");
        break;
    case json_error_numeric_overflow:
        snprintf(what, sizeof what,
                 "a number is out of range (64-bit integers may be sent as strings)");
        break;
    case json_error_end_of_input_expected:
        snprintf(what, sizeof what, "unexpected text after the JSON value");
        break;
    case json_error_null_byte_in_key:
        snprintf(what, sizeof what, "an object key holds a NUL character");
        break;
    case json_error_duplicate_key: {
        char *k = token;
        size_t n = strlen(k);
        if (n >= 2 && k[0] == '"' && k[n - 1] == '"') {
            k++;
            n -= 2;
        }
        char echo[PX_JSON_ECHO_MAX + 16];
        px__json_echo(echo, sizeof echo, k, n);
        snprintf(what, sizeof what, "duplicate key %s", echo);
        break;
    }
    default:
        snprintf(what, sizeof what, "%s", text);
        break;
    }
    return px_status_set(st, PX_INVALID_ARGUMENT, "invalid JSON at line %d, column %d: %s", e->line,
                         e->column, what);
}

px_code_t px_json_to_pb(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                        uint8_t **out, size_t *out_len, px_status_t *st)
{
    s_in_t in = {.st = st};
    px__jpath_init(&in.path);
    json_t *root = NULL;
    px_code_t rc = PX_OK;
    *out = NULL;
    *out_len = 0;

    size_t blank = 0;
    while (blank < len && (json[blank] == ' ' || json[blank] == '\t' || json[blank] == '\n' ||
                           json[blank] == '\r')) {
        blank++;
    }
    if (blank == len) {
        rc = px_status_set(st, PX_INVALID_ARGUMENT, "empty input: expected a JSON object");
        goto done;
    }
    json_error_t err;
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    if (!root) {
        rc = s_parse_error(st, &err);
        goto done;
    }
    if (!json_is_object(root)) {
        rc = px_status_set(st, PX_INVALID_ARGUMENT,
                           "expected a JSON object (%s) at the top level, got %s", desc->name,
                           s_kind(root));
        goto done;
    }
    px__jbuf_reserve(&in.out, 1); /* *out is malloc'd even for an empty message */
    rc = s_message_body(&in, desc, root);
    if (rc == PX_OK && in.out.oom) {
        rc = px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory encoding %s", desc->name);
    }
    if (rc == PX_OK) {
        *out = (uint8_t *)in.out.data;
        *out_len = in.out.len;
        in.out.data = NULL;
    }
done:
    px__jbuf_free(&in.out);
    json_decref(root);
    return rc;
}
