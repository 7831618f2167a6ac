/*
 * pbcheck.c - the strings inside protobuf wire bytes, checked before protobuf-c unpacks them.
 *
 * One pass over the bytes, guided by the message descriptor: each tag is read, the value
 * skipped, except a known string field (its bytes checked for NUL and UTF-8) and a known
 * message field (walked recursively, depth bounded). Nothing is allocated.
 *
 * The path of an error ("events[3].citizen_id") needs the index of each repeated element on
 * the way down. Counting elements as we go would need a counter per field per level; instead
 * each level remembers where its message starts and where the current field starts, and only
 * when an error is reported are the earlier occurrences of that field counted by re-reading
 * the (already checked) bytes before it. The common case, valid input, pays nothing for paths.
 */
#include <stdio.h>
#include <string.h>

#include "phuxanh/pbcheck.h"
#include "phuxanh/text.h"

#define WIRE_VARINT 0
#define WIRE_FIXED64 1
#define WIRE_LEN 2
#define WIRE_FIXED32 5
/* A varint holds at most 64 bits: 10 bytes of 7. */
#define VARINT_MAX_BYTES 10
/* Field numbers are 1 to 2^29 - 1. */
#define FIELD_NUMBER_MAX 536870911u

/* Where the walk is at one level of nesting. */
typedef struct {
    const uint8_t *msg;                    /* the message's bytes start here */
    const uint8_t *at;                     /* the field being checked starts here */
    const ProtobufCFieldDescriptor *field; /* that field, when known */
} s_frame_t;

typedef struct {
    px_status_t *st;
    s_frame_t frames[PX_JSON_MAX_DEPTH];
    int depth;          /* frames in use */
    size_t decoded;     /* what unpacking would allocate, estimated from above */
    size_t max_decoded; /* past it: RESOURCE_EXHAUSTED */
} s_check_t;

/* A repeated element's slot in protobuf-c's array: a pointer, or a scalar of at most 8 bytes. */
#define SLOT_BYTES 8

/* Adds n bytes to the estimate; false once it passes the bound (the status is then set). */
static bool s_budget(s_check_t *c, size_t n)
{
    c->decoded = n > SIZE_MAX - c->decoded ? SIZE_MAX : c->decoded + n;
    if (c->decoded <= c->max_decoded) {
        return true;
    }
    px_status_set(c->st, PX_RESOURCE_EXHAUSTED,
                  "the request would take more than %zu bytes once decoded", c->max_decoded);
    return false;
}

static bool s_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < VARINT_MAX_BYTES; i++) {
        if (*p >= end) {
            return false;
        }
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Skips the value of a field of wire type `wire` at *p. false when it runs past end. */
static bool s_skip(const uint8_t **p, const uint8_t *end, unsigned wire)
{
    uint64_t n;
    switch (wire) {
    case WIRE_VARINT:
        return s_varint(p, end, &n);
    case WIRE_FIXED64:
        n = 8;
        break;
    case WIRE_FIXED32:
        n = 4;
        break;
    case WIRE_LEN:
        if (!s_varint(p, end, &n)) {
            return false;
        }
        break;
    default:
        return false;
    }
    if (n > (uint64_t)(end - *p)) {
        return false;
    }
    *p += n;
    return true;
}

/* How many times field `id` occurs in [msg, at): bytes the walk has already found well formed. */
static size_t s_index_of(const uint8_t *msg, const uint8_t *at, uint32_t id)
{
    size_t count = 0;
    const uint8_t *p = msg;
    while (p < at) {
        uint64_t key;
        if (!s_varint(&p, at, &key) || !s_skip(&p, at, (unsigned)(key & 7))) {
            break;
        }
        count += (key >> 3) == id;
    }
    return count;
}

/* Reports `what` at the path of every level's current field. */
static px_code_t s_fail(s_check_t *c, const char *what)
{
    char path[256] = "";
    size_t len = 0;
    for (int d = 0; d < c->depth; d++) {
        const s_frame_t *fr = &c->frames[d];
        const ProtobufCFieldDescriptor *f = fr->field;
        if (!f) {
            continue;
        }
        int n = snprintf(path + len, sizeof path - len, "%s%s", len ? "." : "", f->name);
        if (n > 0 && (size_t)n < sizeof path - len) {
            len += (size_t)n;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = snprintf(path + len, sizeof path - len, "[%zu]",
                         s_index_of(fr->msg, fr->at, f->id));
            if (n > 0 && (size_t)n < sizeof path - len) {
                len += (size_t)n;
            }
        }
    }
    if (len) {
        return px_status_set(c->st, PX_INVALID_ARGUMENT, "%s: %s", path, what);
    }
    return px_status_set(c->st, PX_INVALID_ARGUMENT, "%s", what);
}

/* Whether a varint's value is one a field of this type can hold. int32 and enums come as
 * 64-bit varints, negative ones sign-extended. */
static bool s_fits(ProtobufCType type, uint64_t v)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM:
        return v <= (uint64_t)INT32_MAX || v >= (uint64_t)(int64_t)INT32_MIN;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_SINT32:
        return v <= UINT32_MAX;
    default:
        return true;
    }
}

static px_code_t s_string(s_check_t *c, const uint8_t *s, size_t n)
{
    if (memchr(s, 0, n)) {
        return s_fail(c, "holds a NUL byte");
    }
    if (!px_utf8_valid((const char *)s, n)) {
        return s_fail(c, "is not valid UTF-8");
    }
    return PX_OK;
}

static px_code_t s_message(s_check_t *c, const ProtobufCMessageDescriptor *desc,
                           const uint8_t *data, size_t len)
{
    if (c->depth >= PX_JSON_MAX_DEPTH) {
        char what[64];
        snprintf(what, sizeof what, "messages nested deeper than %d levels", PX_JSON_MAX_DEPTH);
        return s_fail(c, what);
    }
    if (!s_budget(c, desc->sizeof_message)) {
        return c->st->code;
    }
    s_frame_t *fr = &c->frames[c->depth++];
    fr->msg = data;
    const uint8_t *p = data;
    const uint8_t *end = data + len;
    px_code_t rc = PX_OK;
    while (p < end && rc == PX_OK) {
        fr->at = p;
        fr->field = NULL;
        uint64_t key;
        if (!s_varint(&p, end, &key)) {
            rc = s_fail(c, "malformed protobuf: truncated varint in a field tag");
            break;
        }
        uint64_t id = key >> 3;
        unsigned wire = (unsigned)(key & 7);
        if (id == 0 || id > FIELD_NUMBER_MAX) {
            rc = s_fail(c, "malformed protobuf: field number out of range");
            break;
        }
        fr->field = protobuf_c_message_descriptor_get_field(desc, (unsigned)id);
        const ProtobufCFieldDescriptor *f = fr->field;
        bool delimited =
            f && (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES ||
                  f->type == PROTOBUF_C_TYPE_MESSAGE);
        if (wire != WIRE_VARINT && wire != WIRE_FIXED64 && wire != WIRE_LEN &&
            wire != WIRE_FIXED32) {
            char what[80];
            snprintf(what, sizeof what, "malformed protobuf: field %u has wire type %u",
                     (unsigned)id, wire);
            rc = s_fail(c, what);
            break;
        }
        if (delimited && wire != WIRE_LEN) {
            rc = s_fail(c, "malformed protobuf: expected a length-delimited value");
            break;
        }
        bool repeated = f && f->label == PROTOBUF_C_LABEL_REPEATED;
        if (repeated && !s_budget(c, SLOT_BYTES)) {
            rc = c->st->code;
            break;
        }
        if (wire != WIRE_LEN || !delimited) {
            const uint8_t *from = p;
            /* A packed run of n bytes unpacks to at most n elements. */
            if (repeated && wire == WIRE_LEN && s_skip(&from, end, wire) &&
                !s_budget(c, (size_t)(from - p) * SLOT_BYTES)) {
                rc = c->st->code;
                break;
            }
            const uint8_t *at = p;
            uint64_t v;
            if (wire == WIRE_VARINT && f && s_varint(&at, end, &v) && !s_fits(f->type, v)) {
                /* protobuf-c would keep the low 32 bits: 2^32 ms would become 0, no deadline */
                rc = s_fail(c, "out of range for a 32-bit field");
                break;
            }
            if (!s_skip(&p, end, wire)) {
                rc = s_fail(c, "malformed protobuf: value runs past the end of the data (or is an "
                               "over-long varint)");
            }
            continue;
        }
        uint64_t n;
        if (!s_varint(&p, end, &n)) {
            rc = s_fail(c, "malformed protobuf: truncated varint in a length");
            break;
        }
        if (n > (uint64_t)(end - p)) {
            rc = s_fail(c, "malformed protobuf: length runs past the end of the data");
            break;
        }
        if (f->type != PROTOBUF_C_TYPE_MESSAGE && !s_budget(c, (size_t)n + 1)) {
            rc = c->st->code;
            break;
        }
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            rc = s_string(c, p, (size_t)n);
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            rc = s_message(c, f->descriptor, p, (size_t)n);
        }
        p += n;
    }
    if (rc == PX_OK) {
        c->depth--;
    }
    return rc;
}

px_code_t px_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      size_t max_decoded, px_status_t *st)
{
    s_check_t c = {.st = st, .depth = 0, .max_decoded = max_decoded};
    if (len == 0) {
        return PX_OK; /* the empty message */
    }
    return s_message(&c, desc, data, len);
}

px_code_t px_pb_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                              size_t len, px_status_t *st)
{
    return px_pb_check(desc, data, len, SIZE_MAX, st);
}
