/*
 * json_internal.h - what the two halves of the JSON transcoder share (json.c implements it):
 * json_in.c turns JSON into wire bytes, json_out.c turns a message into JSON, and both need a
 * growing buffer, a field path for error messages, the JSON spelling of field names, and to
 * recognise well-known types and map fields among protobuf-c's descriptors.
 */
#ifndef PHUXANH_JSON_INTERNAL_H
#define PHUXANH_JSON_INTERNAL_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One growing output buffer per call: amortised O(1) appends, and a failed allocation sets
 * oom and turns every later write into a no-op, so writers test once at the end instead of
 * after each byte. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
} px__jbuf_t;

/* Room for n more bytes after len; false (and oom set) when memory ran out. */
bool px__jbuf_reserve(px__jbuf_t *b, size_t n);
void px__jbuf_put(px__jbuf_t *b, const void *p, size_t n);
void px__jbuf_puts(px__jbuf_t *b, const char *s);
void px__jbuf_putc(px__jbuf_t *b, char c);
/* Frees the data and zeroes the buffer. */
void px__jbuf_free(px__jbuf_t *b);

/* Longest field path an error message shows; deeper parts are replaced by "...". 32 levels of
 * typical names fit. */
#define PX__JPATH_MAX 256

/* The path of the value being worked on, e.g. "events[2].occurred_at". A push returns the
 * length to pop back to. */
typedef struct {
    char text[PX__JPATH_MAX];
    size_t len;
    size_t full_at; /* len when a push did not fit ("..." was written); 0 when none */
} px__jpath_t;

void px__jpath_init(px__jpath_t *p);
size_t px__jpath_field(px__jpath_t *p, const char *name);
size_t px__jpath_index(px__jpath_t *p, size_t i);
/* A map key: ["key"], the key quoted by the rule of px__json_echo. */
size_t px__jpath_key(px__jpath_t *p, const char *key, size_t n);
void px__jpath_pop(px__jpath_t *p, size_t len);

/* Writes into dst (cap bytes) a value quoted for an error message: "abc", cut to
 * PX_JSON_ECHO_MAX bytes at a UTF-8 boundary (with "..." after), control characters shown as
 * '?'. A value holding 9 or more digits in a row is written as (not shown): it may be an ID
 * or phone number, which never enter messages. */
void px__json_echo(char *dst, size_t cap, const char *src, size_t n);

/* Appends the JSON name of a field: its proto name in lowerCamelCase as protoc computes it
 * (each '_' dropped and the next character upper-cased). */
void px__json_name_put(px__jbuf_t *b, const char *proto_name);
/* Is key (n bytes) the JSON name of proto_name? */
bool px__json_name_eq(const char *proto_name, const char *key, size_t n);

/* How a message type is written in JSON. */
typedef enum {
    PX__WKT_NONE,        /* an ordinary message: an object of its fields (Empty too) */
    PX__WKT_TIMESTAMP,   /* google.protobuf.Timestamp: an RFC 3339 string */
    PX__WKT_DURATION,    /* google.protobuf.Duration: "1.5s" */
    PX__WKT_WRAPPER,     /* BoolValue ... BytesValue: the bare value of field 1 */
    PX__WKT_UNSUPPORTED, /* Any, Struct, Value, ListValue, FieldMask */
} px__wkt_t;

px__wkt_t px__json_wkt(const ProtobufCMessageDescriptor *desc);

/* Is f (a field of parent) a map<K, V>? See json.h for how one is recognised. */
bool px__json_is_map(const ProtobufCMessageDescriptor *parent, const ProtobufCFieldDescriptor *f);

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range of google.protobuf.Timestamp. */
#define PX__TS_MIN_SECONDS (-62135596800LL)
#define PX__TS_MAX_SECONDS (253402300799LL)
/* google.protobuf.Duration spans about +-10,000 years. */
#define PX__DURATION_MAX_SECONDS 315576000000LL
#define PX__NANOS_PER_SECOND 1000000000

/* The message member a field descriptor points at. */
static inline const void *px__member(const ProtobufCMessage *m, unsigned offset)
{
    return (const char *)m + offset;
}

#endif
