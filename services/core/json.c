/*
 * json.c - the pieces both directions of the JSON transcoder share, and the two public
 * functions that are only compositions of the others (JSON -> message, wire -> JSON).
 *
 * The transcoder is three files: json_in.c (JSON -> wire bytes), json_out.c (message ->
 * JSON) and this one. Input deliberately goes through wire bytes: protobuf_c_message_unpack
 * stays the one place that builds (and frees) C structs, and the gateway, which forwards
 * bytes to the services, needs nothing else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_internal.h"
#include "phuxanh/json.h"

/* First allocation of a buffer: most requests and replies fit. */
#define JBUF_MIN 256
/* A run of this many digits in a value may be an ID (12-digit CCCD, 9-digit CMND) or a phone
 * number (10 digits): such a value is never quoted back. */
#define ECHO_DIGIT_RUN 9

bool px__jbuf_reserve(px__jbuf_t *b, size_t n)
{
    if (b->oom) {
        return false;
    }
    if (b->cap - b->len >= n) {
        return true;
    }
    size_t cap = b->cap ? b->cap : JBUF_MIN;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (!data) {
        b->oom = true;
        return false;
    }
    b->data = data;
    b->cap = cap;
    return true;
}

void px__jbuf_put(px__jbuf_t *b, const void *p, size_t n)
{
    if (n && px__jbuf_reserve(b, n)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

void px__jbuf_puts(px__jbuf_t *b, const char *s)
{
    px__jbuf_put(b, s, strlen(s));
}

void px__jbuf_putc(px__jbuf_t *b, char c)
{
    if (px__jbuf_reserve(b, 1)) {
        b->data[b->len++] = c;
    }
}

void px__jbuf_free(px__jbuf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void px__jpath_init(px__jpath_t *p)
{
    p->text[0] = '\0';
    p->len = 0;
    p->full_at = 0;
}

/* Appends text all or nothing; the first piece that does not fit becomes "...", and nothing
 * more is appended until a pop goes back below it. */
static size_t s_jpath_append(px__jpath_t *p, const char *text)
{
    size_t before = p->len;
    if (p->full_at) {
        return before;
    }
    size_t n = strlen(text);
    if (n < sizeof p->text - p->len - 4) {
        memcpy(p->text + p->len, text, n + 1);
        p->len += n;
    } else {
        p->full_at = p->len;
        memcpy(p->text + p->len, "...", 4);
        p->len += 3;
    }
    return before;
}

size_t px__jpath_field(px__jpath_t *p, const char *name)
{
    size_t before = p->len;
    if (p->len) {
        s_jpath_append(p, ".");
    }
    s_jpath_append(p, name);
    return before;
}

size_t px__jpath_index(px__jpath_t *p, size_t i)
{
    char buf[32];
    snprintf(buf, sizeof buf, "[%zu]", i);
    return s_jpath_append(p, buf);
}

size_t px__jpath_key(px__jpath_t *p, const char *key, size_t n)
{
    char quoted[PX_JSON_ECHO_MAX + 16];
    char buf[sizeof quoted + 2];
    px__json_echo(quoted, sizeof quoted, key, n);
    snprintf(buf, sizeof buf, "[%s]", quoted);
    return s_jpath_append(p, buf);
}

void px__jpath_pop(px__jpath_t *p, size_t len)
{
    if (p->full_at && len <= p->full_at) {
        p->full_at = 0;
    }
    p->len = len;
    p->text[len] = '\0';
}

void px__json_echo(char *dst, size_t cap, const char *src, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        run = (src[i] >= '0' && src[i] <= '9') ? run + 1 : 0;
        if (run >= ECHO_DIGIT_RUN) {
            snprintf(dst, cap, "(not shown)");
            return;
        }
    }
    size_t cut = n;
    if (cut > PX_JSON_ECHO_MAX) {
        cut = PX_JSON_ECHO_MAX;
        /* Back up to the start of a UTF-8 sequence so the message stays valid UTF-8. */
        while (cut > 0 && ((unsigned char)src[cut] & 0xC0) == 0x80) {
            cut--;
        }
    }
    size_t o = 0;
    if (cap < cut + 6) {
        dst[0] = '\0';
        return;
    }
    dst[o++] = '"';
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[o++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    dst[o++] = '"';
    if (cut < n) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
}

void px__json_name_put(px__jbuf_t *b, const char *proto_name)
{
    bool upper = false;
    for (const char *s = proto_name; *s; s++) {
        if (*s == '_') {
            upper = true;
        } else {
            char c = *s;
            if (upper && c >= 'a' && c <= 'z') {
                c = (char)(c - 'a' + 'A');
            }
            upper = false;
            px__jbuf_putc(b, c);
        }
    }
}

bool px__json_name_eq(const char *proto_name, const char *key, size_t n)
{
    bool upper = false;
    size_t k = 0;
    for (const char *s = proto_name; *s; s++) {
        if (*s == '_') {
            upper = true;
            continue;
        }
        char c = *s;
        if (upper && c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        }
        upper = false;
        if (k >= n || key[k] != c) {
            return false;
        }
        k++;
    }
    return k == n;
}

typedef struct {
    const char *name; /* after "google.protobuf." */
    px__wkt_t kind;
} s_wkt_row_t;

static const s_wkt_row_t s_wkts[] = {
    {"Timestamp", PX__WKT_TIMESTAMP},   {"Duration", PX__WKT_DURATION},
    {"BoolValue", PX__WKT_WRAPPER},     {"Int32Value", PX__WKT_WRAPPER},
    {"Int64Value", PX__WKT_WRAPPER},    {"UInt32Value", PX__WKT_WRAPPER},
    {"UInt64Value", PX__WKT_WRAPPER},   {"FloatValue", PX__WKT_WRAPPER},
    {"DoubleValue", PX__WKT_WRAPPER},   {"StringValue", PX__WKT_WRAPPER},
    {"BytesValue", PX__WKT_WRAPPER},    {"Any", PX__WKT_UNSUPPORTED},
    {"Struct", PX__WKT_UNSUPPORTED},    {"Value", PX__WKT_UNSUPPORTED},
    {"ListValue", PX__WKT_UNSUPPORTED}, {"FieldMask", PX__WKT_UNSUPPORTED},
};

px__wkt_t px__json_wkt(const ProtobufCMessageDescriptor *desc)
{
    static const char prefix[] = "google.protobuf.";
    if (strncmp(desc->name, prefix, sizeof prefix - 1) != 0) {
        return PX__WKT_NONE;
    }
    const char *rest = desc->name + sizeof prefix - 1;
    for (size_t i = 0; i < sizeof s_wkts / sizeof s_wkts[0]; i++) {
        if (strcmp(rest, s_wkts[i].name) == 0) {
            return s_wkts[i].kind;
        }
    }
    return PX__WKT_NONE;
}

/* Does s start with the UpperCamelCase of proto_name, as protoc names a map's entry type?
 * Returns what follows it, or NULL. */
static const char *s_skip_camel(const char *s, const char *proto_name)
{
    bool upper = true;
    for (const char *p = proto_name; *p; p++) {
        if (*p == '_') {
            upper = true;
            continue;
        }
        char c = *p;
        if (upper && c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        }
        upper = false;
        if (*s != c) {
            return NULL;
        }
        s++;
    }
    return s;
}

bool px__json_is_map(const ProtobufCMessageDescriptor *parent, const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE) {
        return false;
    }
    const ProtobufCMessageDescriptor *entry = f->descriptor;
    if (entry->n_fields != 2 || entry->fields[0].id != 1 || entry->fields[1].id != 2 ||
        strcmp(entry->fields[0].name, "key") != 0 || strcmp(entry->fields[1].name, "value") != 0) {
        return false;
    }
    size_t n = strlen(parent->name);
    if (strncmp(entry->name, parent->name, n) != 0 || entry->name[n] != '.') {
        return false;
    }
    const char *rest = s_skip_camel(entry->name + n + 1, f->name);
    return rest && strcmp(rest, "Entry") == 0;
}

ProtobufCMessage *px_json_to_message(const ProtobufCMessageDescriptor *desc, const char *json,
                                     size_t len, px_status_t *st)
{
    uint8_t *wire = NULL;
    size_t wire_len = 0;
    ProtobufCMessage *msg = NULL;
    if (px_json_to_pb(desc, json, len, &wire, &wire_len, st) != PX_OK) {
        goto done;
    }
    msg = protobuf_c_message_unpack(desc, NULL, wire_len, wire);
    if (!msg) {
        /* The bytes are our own and well formed, and required fields were checked while
         * writing them: what is left is memory. */
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory building %s", desc->name);
    }
done:
    free(wire);
    return msg;
}

char *px_json_from_pb(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      size_t *out_len, px_status_t *st)
{
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, data);
    if (!msg) {
        px_status_set(st, PX_INVALID_ARGUMENT, "not a valid %s in protobuf wire format",
                      desc->name);
        return NULL;
    }
    char *json = px_json_from_message(msg, out_len, st);
    protobuf_c_message_free_unpacked(msg, NULL);
    return json;
}
