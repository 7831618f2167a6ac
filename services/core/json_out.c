/*
 * json_out.c - a protobuf-c message -> proto3 canonical JSON text (px_json_from_message).
 *
 * Walks the C struct through its descriptor: each field's member is found at its offset, its
 * presence read from the quantifier (has_ flag, repeated count, oneof case) or, for implicit
 * presence, from the value itself. How each scalar type is read from the struct and written as
 * JSON is one row of s_types, indexed by ProtobufCType. Output goes into one growing buffer;
 * compact, fields in field-number order, so equal messages give equal text.
 *
 * The message may have come from anywhere (unpacked from a client's bytes, built by a
 * handler), so what JSON cannot carry is refused rather than written: strings that are not
 * valid UTF-8, Timestamps and Durations outside their ranges, nesting past the bound.
 */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "json_internal.h"
#include "phuxanh/json.h"
#include "phuxanh/text.h"

/* Whole floating-point numbers of up to 18 digits are written without an exponent: they stay
 * below 2^63, the largest integer a JSON reader keeping integers as int64 takes. */
#define PLAIN_INTEGER_DIGITS 18

typedef struct {
    px__jbuf_t out;
    px__jpath_t path;
    px_status_t *st;
    int depth;
} s_out_t;

/* A scalar read from the struct: signed integers and enums in i, unsigned and bool in u,
 * float and double in d. */
typedef union {
    int64_t i;
    uint64_t u;
    double d;
} s_num_t;

typedef enum { K_SIGNED, K_UNSIGNED, K_REAL, K_BOOL, K_ENUM, K_LEN } s_kind_t;

/* A member of the struct -> a scalar. */
typedef void (*s_get_fn)(const void *p, s_num_t *num);
/* A scalar -> JSON. */
typedef void (*s_fmt_fn)(s_out_t *o, const ProtobufCFieldDescriptor *f, s_num_t num);
/* A string, bytes or message member -> JSON. */
typedef px_code_t (*s_value_fn)(s_out_t *o, const ProtobufCFieldDescriptor *f, const void *p);

typedef struct {
    s_kind_t kind;
    size_t size; /* of one element of a repeated field's array */
    s_get_fn get;
    s_fmt_fn fmt;
    s_value_fn value;
} s_type_t;

static px_code_t s_fail(s_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static px_code_t s_fail(s_out_t *o, const char *fmt, ...)
{
    char msg[PX_STATUS_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (o->path.len) {
        return px_status_set(o->st, PX_INVALID_ARGUMENT, "%s: %s", o->path.text, msg);
    }
    return px_status_set(o->st, PX_INVALID_ARGUMENT, "%s", msg);
}

static void s_printf(s_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_printf(s_out_t *o, const char *fmt, ...)
{
    char buf[64]; /* every use is a number or a date */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) {
        px__jbuf_put(&o->out, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    }
}

/* A JSON string: quotes, and the escapes JSON requires (", \ and control characters). */
static void s_put_string(px__jbuf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    px__jbuf_putc(b, '"');
    size_t run = 0; /* start of the bytes not yet copied */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        px__jbuf_put(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0};
        size_t k = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xF];
            k = 6;
            break;
        }
        px__jbuf_put(b, esc, k);
    }
    px__jbuf_put(b, s + run, n - run);
    px__jbuf_putc(b, '"');
}

/* ---- scalars ------------------------------------------------------------------------------ */

static void s_get_i32(const void *p, s_num_t *num)
{
    num->i = *(const int32_t *)p;
}

static void s_get_i64(const void *p, s_num_t *num)
{
    num->i = *(const int64_t *)p;
}

static void s_get_u32(const void *p, s_num_t *num)
{
    num->u = *(const uint32_t *)p;
}

static void s_get_u64(const void *p, s_num_t *num)
{
    num->u = *(const uint64_t *)p;
}

static void s_get_float(const void *p, s_num_t *num)
{
    num->d = *(const float *)p;
}

static void s_get_double(const void *p, s_num_t *num)
{
    num->d = *(const double *)p;
}

static void s_get_bool(const void *p, s_num_t *num)
{
    num->u = *(const protobuf_c_boolean *)p ? 1 : 0;
}

static void s_get_enum(const void *p, s_num_t *num)
{
    /* protobuf-c forces every generated enum to the size of an int. */
    num->i = *(const int *)p;
}

static void s_fmt_i32(s_out_t *o, const ProtobufCFieldDescriptor *f, s_num_t num)
{
    (void)f;
    s_printf(o, "%" PRId64, num.i);
}

static void s_fmt_u32(s_out_t *o, const ProtobufCFieldDescriptor *f, s_num_t num)
{
    (void)f;
    s_printf(o, "%" PRIu64, num.u);
}

/* 64-bit integers are strings: JavaScript's numbers hold integers exactly only to 2^53. */
static void s_fmt_i64(s_out_t *o, const ProtobufCFieldDescriptor *f, s_num_t num)
{
    (void)f;
    s_printf(o, "\"%" PRId64 "\"", num.i);
}

static void s_fmt_u64(s_out_t *o, const ProtobufCFieldDescriptor *f, s_num_t num)
{
    (void)f;
    s_printf(o, "\"%" PRIu64 "\"", num.u);
}

/* Lays out the significant digits (k of them, no trailing zeros) of a number whose decimal
 * point sits after digit n, much as JavaScript's Number.prototype.toString does: plain from
 * 1e-7 up ("120", "0.0025"), else with an exponent ("1e+21", "1.5e-7"). One difference: a
 * whole number is plain only below 1e18, because a JSON reader like jansson reads digits
 * without '.' or 'e' as a 64-bit integer and refuses larger ones ("1e+19", not
 * "10000000000000000000"). */
static void s_put_digits(s_out_t *o, bool neg, const char *digits, int k, int n)
{
    if (neg) {
        px__jbuf_putc(&o->out, '-');
    }
    if (k <= n && n <= PLAIN_INTEGER_DIGITS) {
        px__jbuf_put(&o->out, digits, (size_t)k);
        for (int i = k; i < n; i++) {
            px__jbuf_putc(&o->out, '0');
        }
    } else if (k > n && 0 < n && n <= 21) {
        px__jbuf_put(&o->out, digits, (size_t)n);
        px__jbuf_putc(&o->out, '.');
        px__jbuf_put(&o->out, digits + n, (size_t)(k - n));
    } else if (-6 < n && n <= 0) {
        px__jbuf_put(&o->out, "0.", 2);
        for (int i = n; i < 0; i++) {
            px__jbuf_putc(&o->out, '0');
        }
        px__jbuf_put(&o->out, digits, (size_t)k);
    } else {
        px__jbuf_putc(&o->out, digits[0]);
        if (k > 1) {
            px__jbuf_putc(&o->out, '.');
            px__jbuf_put(&o->out, digits + 1, (size_t)(k - 1));
        }
        s_printf(o, "e%c%d", n - 1 >= 0 ? '+' : '-', n - 1 >= 0 ? n - 1 : 1 - n);
    }
}

/* The shortest decimal that reads back as the same value. If p significant digits read back,
 * so do p + 1 (the p-digit decimal is also a (p+1)-digit one, and the nearest such is no
 * farther), so the shortest is found by bisection: 4 or 5 tries instead of up to 17. */
static void s_put_real(s_out_t *o, double d, bool is_float)
{
    if (isnan(d)) {
        px__jbuf_puts(&o->out, "\"NaN\"");
        return;
    }
    if (isinf(d)) {
        px__jbuf_puts(&o->out, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    if (d == 0) {
        px__jbuf_puts(&o->out, signbit(d) ? "-0" : "0");
        return;
    }
    char buf[40];
    int lo = 1;
    int hi = is_float ? 9 : 17; /* enough digits for any float / double */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(buf, sizeof buf, "%.*e", mid - 1, d);
        bool same = is_float ? strtof(buf, NULL) == (float)d : strtod(buf, NULL) == d;
        if (same) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    /* "-d.ddde+XX": collect the digits and the exponent. */
    snprintf(buf, sizeof buf, "%.*e", lo - 1, d);
    char digits[20];
    int k = 0;
    const char *s = buf;
    bool neg = *s == '-';
    if (neg) {
        s++;
    }
    for (; *s && *s != 'e'; s++) {
        if (*s >= '0' && *s <= '9' && k < (int)sizeof digits) {
            digits[k++] = *s;
        }
    }
    int exp = *s == 'e' ? atoi(s + 1) : 0;
    while (k > 1 && digits[k - 1] == '0') {
        k--;
    }
    s_put_digits(o, neg, digits, k, exp + 1);
}

static void s_fmt_float(s_out_t *o, const ProtobufCFieldDescriptor *f, s_num_t num)
{
    (void)f;
    s_put_real(o, num.d, true);
}

static void s_fmt_double(s_out_t *o, const ProtobufCFieldDescriptor *f, s_num_t num)
{
    (void)f;
    s_put_real(o, num.d, false);
}

static void s_fmt_bool(s_out_t *o, const ProtobufCFieldDescriptor *f, s_num_t num)
{
    (void)f;
    px__jbuf_puts(&o->out, num.u ? "true" : "false");
}

static void s_fmt_enum(s_out_t *o, const ProtobufCFieldDescriptor *f, s_num_t num)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, (int)num.i);
    if (ev) {
        s_put_string(&o->out, ev->name, strlen(ev->name));
    } else {
        /* A number this build's enum does not name (a newer peer's value): as a number. */
        s_printf(o, "%" PRId64, num.i);
    }
}

/* ---- string, bytes, message --------------------------------------------------------------- */

static px_code_t s_value_string(s_out_t *o, const ProtobufCFieldDescriptor *f, const void *p)
{
    (void)f;
    const char *s = *(char *const *)p;
    if (!s) {
        s = "";
    }
    size_t n = strlen(s);
    if (!px_utf8_valid(s, n)) {
        return s_fail(o, "string is not valid UTF-8");
    }
    s_put_string(&o->out, s, n);
    return PX_OK;
}

static px_code_t s_value_bytes(s_out_t *o, const ProtobufCFieldDescriptor *f, const void *p)
{
    (void)f;
    const ProtobufCBinaryData *bin = p;
    px__jbuf_putc(&o->out, '"');
    if (bin->len) {
        size_t n = 4 * ((bin->len + 2) / 3);
        if (px__jbuf_reserve(&o->out, n + 1)) { /* + the NUL libsodium writes */
            sodium_bin2base64(o->out.data + o->out.len, n + 1, bin->data, bin->len,
                              sodium_base64_VARIANT_ORIGINAL);
            o->out.len += n;
        }
    }
    px__jbuf_putc(&o->out, '"');
    return PX_OK;
}

static px_code_t s_message(s_out_t *o, const ProtobufCMessageDescriptor *desc,
                           const ProtobufCMessage *msg);

static px_code_t s_value_message(s_out_t *o, const ProtobufCFieldDescriptor *f, const void *p)
{
    return s_message(o, f->descriptor, *(const ProtobufCMessage *const *)p);
}

/* Indexed by ProtobufCType. */
static const s_type_t s_types[] = {
    [PROTOBUF_C_TYPE_INT32] = {K_SIGNED, sizeof(int32_t), s_get_i32, s_fmt_i32, NULL},
    [PROTOBUF_C_TYPE_SINT32] = {K_SIGNED, sizeof(int32_t), s_get_i32, s_fmt_i32, NULL},
    [PROTOBUF_C_TYPE_SFIXED32] = {K_SIGNED, sizeof(int32_t), s_get_i32, s_fmt_i32, NULL},
    [PROTOBUF_C_TYPE_INT64] = {K_SIGNED, sizeof(int64_t), s_get_i64, s_fmt_i64, NULL},
    [PROTOBUF_C_TYPE_SINT64] = {K_SIGNED, sizeof(int64_t), s_get_i64, s_fmt_i64, NULL},
    [PROTOBUF_C_TYPE_SFIXED64] = {K_SIGNED, sizeof(int64_t), s_get_i64, s_fmt_i64, NULL},
    [PROTOBUF_C_TYPE_UINT32] = {K_UNSIGNED, sizeof(uint32_t), s_get_u32, s_fmt_u32, NULL},
    [PROTOBUF_C_TYPE_FIXED32] = {K_UNSIGNED, sizeof(uint32_t), s_get_u32, s_fmt_u32, NULL},
    [PROTOBUF_C_TYPE_UINT64] = {K_UNSIGNED, sizeof(uint64_t), s_get_u64, s_fmt_u64, NULL},
    [PROTOBUF_C_TYPE_FIXED64] = {K_UNSIGNED, sizeof(uint64_t), s_get_u64, s_fmt_u64, NULL},
    [PROTOBUF_C_TYPE_FLOAT] = {K_REAL, sizeof(float), s_get_float, s_fmt_float, NULL},
    [PROTOBUF_C_TYPE_DOUBLE] = {K_REAL, sizeof(double), s_get_double, s_fmt_double, NULL},
    [PROTOBUF_C_TYPE_BOOL] = {K_BOOL, sizeof(protobuf_c_boolean), s_get_bool, s_fmt_bool, NULL},
    [PROTOBUF_C_TYPE_ENUM] = {K_ENUM, sizeof(int), s_get_enum, s_fmt_enum, NULL},
    [PROTOBUF_C_TYPE_STRING] = {K_LEN, sizeof(char *), NULL, NULL, s_value_string},
    [PROTOBUF_C_TYPE_BYTES] = {K_LEN, sizeof(ProtobufCBinaryData), NULL, NULL, s_value_bytes},
    [PROTOBUF_C_TYPE_MESSAGE] = {K_LEN, sizeof(ProtobufCMessage *), NULL, NULL, s_value_message},
};

/* One value of f at p (a member, or an element of a repeated field's array). */
static px_code_t s_value(s_out_t *o, const ProtobufCFieldDescriptor *f, const void *p)
{
    const s_type_t *t = &s_types[f->type];
    if (t->value) {
        return t->value(o, f, p);
    }
    s_num_t num;
    t->get(p, &num);
    t->fmt(o, f, num);
    return PX_OK;
}

/* ---- well-known types --------------------------------------------------------------------- */

/* Year, month, day of days since 1970-01-01 (H. Hinnant's civil_from_days). */
static void s_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0, 3, 6 or 9 fraction digits, as few as say the value. nanos in [0, 1e9). */
static void s_put_fraction(s_out_t *o, int32_t nanos)
{
    if (nanos == 0) {
        return;
    }
    if (nanos % 1000000 == 0) {
        s_printf(o, ".%03d", (int)(nanos / 1000000));
    } else if (nanos % 1000 == 0) {
        s_printf(o, ".%06d", (int)(nanos / 1000));
    } else {
        s_printf(o, ".%09d", (int)nanos);
    }
}

/* Timestamp and Duration: seconds = 1, nanos = 2. */
static void s_seconds_nanos(const ProtobufCMessageDescriptor *desc, const ProtobufCMessage *msg,
                            int64_t *seconds, int32_t *nanos)
{
    *seconds = *(const int64_t *)px__member(msg, desc->fields[0].offset);
    *nanos = *(const int32_t *)px__member(msg, desc->fields[1].offset);
}

static px_code_t s_timestamp_out(s_out_t *o, const ProtobufCMessageDescriptor *desc,
                                 const ProtobufCMessage *msg)
{
    int64_t seconds;
    int32_t nanos;
    s_seconds_nanos(desc, msg, &seconds, &nanos);
    if (seconds < PX__TS_MIN_SECONDS || seconds > PX__TS_MAX_SECONDS || nanos < 0 ||
        nanos >= PX__NANOS_PER_SECOND) {
        return s_fail(o, "timestamp out of range (0001-01-01 to 9999-12-31 UTC)");
    }
    int64_t days = seconds / 86400;
    int64_t rest = seconds % 86400;
    if (rest < 0) {
        days--;
        rest += 86400;
    }
    int64_t y;
    int m, d;
    s_civil_from_days(days, &y, &m, &d);
    s_printf(o, "\"%04d-%02d-%02dT%02d:%02d:%02d", (int)y, m, d, (int)(rest / 3600),
             (int)(rest / 60 % 60), (int)(rest % 60));
    s_put_fraction(o, nanos);
    px__jbuf_puts(&o->out, "Z\"");
    return PX_OK;
}

static px_code_t s_duration_out(s_out_t *o, const ProtobufCMessageDescriptor *desc,
                                const ProtobufCMessage *msg)
{
    int64_t seconds;
    int32_t nanos;
    s_seconds_nanos(desc, msg, &seconds, &nanos);
    if (seconds < -PX__DURATION_MAX_SECONDS || seconds > PX__DURATION_MAX_SECONDS ||
        nanos <= -PX__NANOS_PER_SECOND || nanos >= PX__NANOS_PER_SECOND ||
        (seconds < 0 && nanos > 0) || (seconds > 0 && nanos < 0)) {
        return s_fail(o, "duration out of range or with seconds and nanos of opposite signs");
    }
    bool neg = seconds < 0 || nanos < 0;
    s_printf(o, "\"%s%" PRId64, neg ? "-" : "", neg ? -seconds : seconds);
    s_put_fraction(o, neg ? -nanos : nanos);
    px__jbuf_puts(&o->out, "s\"");
    return PX_OK;
}

/* ---- messages ----------------------------------------------------------------------------- */

/* Is the (non-repeated) field set, by protobuf-c's rules of presence? */
static bool s_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const void *p = px__member(m, f->offset);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        return *(const uint32_t *)px__member(m, f->quantifier_offset) == f->id;
    }
    bool pointer = f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING;
    const void *ptr = pointer ? *(const void *const *)p : NULL;
    switch (f->label) {
    case PROTOBUF_C_LABEL_OPTIONAL:
        /* proto2: a has_ flag, or a pointer that is not the shared default. */
        if (pointer) {
            return ptr && ptr != f->default_value;
        }
        return *(const protobuf_c_boolean *)px__member(m, f->quantifier_offset);
    case PROTOBUF_C_LABEL_REQUIRED:
        return !pointer || ptr;
    default:
        break;
    }
    /* proto3 implicit presence: set when not the default. */
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        return ptr != NULL;
    }
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        return ptr && *(const char *)ptr;
    }
    if (f->type == PROTOBUF_C_TYPE_BYTES) {
        return ((const ProtobufCBinaryData *)p)->len > 0;
    }
    const s_type_t *t = &s_types[f->type];
    s_num_t num;
    t->get(p, &num);
    return t->kind == K_REAL ? num.d != 0 : num.u != 0;
}

static void s_put_key(s_out_t *o, const ProtobufCFieldDescriptor *f, bool *first)
{
    if (!*first) {
        px__jbuf_putc(&o->out, ',');
    }
    *first = false;
    px__jbuf_putc(&o->out, '"');
    px__json_name_put(&o->out, f->name);
    px__jbuf_put(&o->out, "\":", 2);
}

/* A map key is always a JSON string: "abc", "12", "true". */
static px_code_t s_map_key(s_out_t *o, const ProtobufCFieldDescriptor *kf, const void *p)
{
    const s_type_t *t = &s_types[kf->type];
    if (kf->type == PROTOBUF_C_TYPE_STRING) {
        return s_value_string(o, kf, p);
    }
    s_num_t num;
    t->get(p, &num);
    if (t->kind == K_BOOL) {
        px__jbuf_puts(&o->out, num.u ? "\"true\"" : "\"false\"");
    } else if (t->kind == K_SIGNED) {
        s_printf(o, "\"%" PRId64 "\"", num.i);
    } else {
        s_printf(o, "\"%" PRIu64 "\"", num.u);
    }
    return PX_OK;
}

/* One map entry's key, for finding repeated keys. */
typedef struct {
    const char *s; /* string keys */
    s_num_t num;   /* other keys */
    s_kind_t kind;
    size_t index; /* in the repeated field */
} s_key_t;

static int s_key_cmp(const void *a, const void *b)
{
    const s_key_t *x = a;
    const s_key_t *y = b;
    int c = 0;
    if (x->kind == K_LEN) {
        c = strcmp(x->s, y->s);
    } else if (x->kind == K_SIGNED) {
        c = (x->num.i > y->num.i) - (x->num.i < y->num.i);
    } else {
        c = (x->num.u > y->num.u) - (x->num.u < y->num.u);
    }
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* Marks in skip[] every entry whose key a later entry repeats: on the wire the last one
 * wins, and a JSON object must not repeat a key. Sorting keeps this O(n log n) however many
 * entries a client packs. false when out of memory. */
static bool s_map_shadowed(const ProtobufCFieldDescriptor *kf,
                           const ProtobufCMessage *const *entries, size_t n, bool *skip)
{
    const s_type_t *t = &s_types[kf->type];
    s_key_t *keys = malloc(n * sizeof *keys);
    if (!keys) {
        return false;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        skip[i] = entries[i] == NULL; /* an entry without key or value says nothing */
        if (entries[i]) {
            const void *p = px__member(entries[i], kf->offset);
            s_key_t *k = &keys[m++];
            k->kind = t->kind;
            k->index = i;
            k->s = NULL;
            k->num.u = 0;
            if (t->kind == K_LEN) {
                k->s = *(char *const *)p ? *(char *const *)p : "";
            } else {
                t->get(p, &k->num);
            }
        }
    }
    qsort(keys, m, sizeof *keys, s_key_cmp);
    for (size_t j = 0; j + 1 < m; j++) {
        s_key_t next = keys[j + 1];
        next.index = keys[j].index;
        if (s_key_cmp(&keys[j], &next) == 0) {
            skip[keys[j].index] = true;
        }
    }
    free(keys);
    return true;
}

static px_code_t s_map_out(s_out_t *o, const ProtobufCFieldDescriptor *f,
                           const ProtobufCMessage *const *entries, size_t n)
{
    const ProtobufCMessageDescriptor *entry = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &entry->fields[0];
    const ProtobufCFieldDescriptor *vf = &entry->fields[1];
    bool *skip = calloc(n, sizeof *skip);
    if (!skip || (n > 1 && !s_map_shadowed(kf, entries, n, skip))) {
        free(skip);
        o->out.oom = true;
        return PX_OK;
    }
    px_code_t rc = PX_OK;
    bool first = true;
    px__jbuf_putc(&o->out, '{');
    for (size_t i = 0; i < n && rc == PX_OK; i++) {
        const ProtobufCMessage *e = entries[i];
        if (!e || skip[i]) {
            continue;
        }
        size_t back = px__jpath_index(&o->path, i);
        if (!first) {
            px__jbuf_putc(&o->out, ',');
        }
        first = false;
        rc = s_map_key(o, kf, px__member(e, kf->offset));
        if (rc == PX_OK) {
            px__jbuf_putc(&o->out, ':');
            rc = s_value(o, vf, px__member(e, vf->offset));
        }
        if (rc == PX_OK) {
            px__jpath_pop(&o->path, back);
        }
    }
    px__jbuf_putc(&o->out, '}');
    free(skip);
    return rc;
}

static px_code_t s_repeated_out(s_out_t *o, const ProtobufCMessageDescriptor *desc,
                                const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                                bool *first)
{
    size_t n = *(const size_t *)px__member(m, f->quantifier_offset);
    if (n == 0) {
        return PX_OK;
    }
    const char *arr = *(const char *const *)px__member(m, f->offset);
    s_put_key(o, f, first);
    if (px__json_is_map(desc, f)) {
        return s_map_out(o, f, (const ProtobufCMessage *const *)arr, n);
    }
    size_t size = s_types[f->type].size;
    px__jbuf_putc(&o->out, '[');
    for (size_t i = 0; i < n; i++) {
        size_t back = px__jpath_index(&o->path, i);
        if (i) {
            px__jbuf_putc(&o->out, ',');
        }
        px_code_t rc = s_value(o, f, arr + i * size);
        if (rc != PX_OK) {
            return rc;
        }
        px__jpath_pop(&o->path, back);
    }
    px__jbuf_putc(&o->out, ']');
    return PX_OK;
}

static px_code_t s_object_out(s_out_t *o, const ProtobufCMessageDescriptor *desc,
                              const ProtobufCMessage *msg)
{
    bool first = true;
    px__jbuf_putc(&o->out, '{');
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        size_t back = px__jpath_field(&o->path, f->name);
        px_code_t rc = PX_OK;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = s_repeated_out(o, desc, msg, f, &first);
        } else if (s_present(msg, f)) {
            s_put_key(o, f, &first);
            rc = s_value(o, f, px__member(msg, f->offset));
        }
        if (rc != PX_OK) {
            return rc;
        }
        px__jpath_pop(&o->path, back);
    }
    px__jbuf_putc(&o->out, '}');
    return PX_OK;
}

static px_code_t s_message(s_out_t *o, const ProtobufCMessageDescriptor *desc,
                           const ProtobufCMessage *msg)
{
    if (o->depth >= PX_JSON_MAX_DEPTH) {
        return s_fail(o, "messages nested deeper than %d levels", PX_JSON_MAX_DEPTH);
    }
    ProtobufCMessage *blank = NULL;
    if (!msg) {
        /* A NULL element of a repeated field or map value: written as the default message. */
        blank = malloc(desc->sizeof_message);
        if (!blank) {
            o->out.oom = true;
            return PX_OK;
        }
        desc->message_init(blank);
        msg = blank;
    }
    o->depth++;
    px_code_t rc;
    switch (px__json_wkt(desc)) {
    case PX__WKT_TIMESTAMP:
        rc = s_timestamp_out(o, desc, msg);
        break;
    case PX__WKT_DURATION:
        rc = s_duration_out(o, desc, msg);
        break;
    case PX__WKT_WRAPPER:
        rc = s_value(o, &desc->fields[0], px__member(msg, desc->fields[0].offset));
        break;
    case PX__WKT_UNSUPPORTED:
        rc = s_fail(o, "%s is unsupported in JSON", desc->name);
        break;
    default:
        rc = s_object_out(o, desc, msg);
        break;
    }
    o->depth--;
    free(blank);
    return rc;
}

char *px_json_from_message(const ProtobufCMessage *msg, size_t *len, px_status_t *st)
{
    assert(msg && msg->descriptor);
    s_out_t o = {.st = st};
    px__jpath_init(&o.path);
    char *text = NULL;
    px_code_t rc = s_message(&o, msg->descriptor, msg);
    px__jbuf_putc(&o.out, '\0');
    if (rc == PX_OK && o.out.oom) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory writing %s as JSON",
                      msg->descriptor->name);
    } else if (rc == PX_OK) {
        text = o.out.data;
        if (len) {
            *len = o.out.len - 1;
        }
        o.out.data = NULL;
    }
    px__jbuf_free(&o.out);
    return text;
}
