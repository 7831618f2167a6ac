/*
 * json.h - proto3 canonical JSON <-> protobuf, for any message, from protobuf-c's descriptors.
 *
 * The gateway (Connect protocol, application/json) and pxctl speak JSON; the services speak
 * protobuf. One generic transcoder walks the descriptors protoc-c generates, so no message
 * has JSON code of its own and a new field needs nothing here. The mapping is
 * https://protobuf.dev/programming-guides/json/ :
 *
 * - Keys are lowerCamelCase out (`unit_code` -> "unitCode"); in, the camel and the proto
 *   spelling are both taken. A field given twice (duplicate key, or both spellings), an
 *   unknown key, or two members of one oneof are refused. `null` means "absent".
 * - Fields at their default (0, false, "", empty list, enum 0, absent message) are left out,
 *   except a message that is present (written even when empty) and a field with explicit
 *   presence (proto2 `optional`, a oneof member) that is set (written even at its default).
 * - 32-bit integers are JSON numbers; 64-bit integers are strings out ("123") and a string or
 *   a number in. A JSON number is exact only up to 2^53 as a real (1e3) and up to INT64_MAX as
 *   a plain integer (jansson keeps integers as long long): a uint64 above INT64_MAX can only
 *   be sent as a string. Integral exponent forms ("1e3") are taken; fractions are refused.
 * - float/double: numbers (shortest form that reads back exactly; whole numbers of 1e18 and
 *   more with an exponent, since digits alone beyond int64 are refused by jansson), or the
 *   strings "NaN", "Infinity", "-Infinity"; numeric strings accepted in.
 * - bool: true/false. string: UTF-8 without U+0000. bytes: base64 (standard, padded) out;
 *   standard or URL-safe, padding optional, in. enum: its name out (a number the enum does not
 *   name is written as the number); a name or any int32 in (proto3 enums are open; protobuf-c
 *   descriptors do not say whether a file is proto2, so proto2 enums are treated the same).
 * - map<K, V> fields: JSON objects keyed by the key's text. protobuf-c does not mark map
 *   entries, so a map is recognised by what protoc generates for one: a repeated field whose
 *   message is nested in the field's message, is named <CamelField>Entry and has exactly the
 *   fields key = 1 and value = 2. Integer keys are taken only in their canonical spelling
 *   ("7", not "07"), so that jansson's duplicate-key check is also the map's. Out, entries keep
 *   their wire order; of entries repeating a key (protobuf-c keeps them all) only the last is
 *   written, as protobuf's "last one wins" says.
 * - Well-known types: Timestamp <-> "2023-07-29T03:00:00Z" (0, 3, 6 or 9 fraction digits out;
 *   1 to 9 digits and a +hh:mm/-hh:mm offset in; years 0001 to 9999), Duration <-> "1.5s"
 *   (at most 10,000 years either way), the wrappers (BoolValue ... BytesValue) <-> the bare
 *   value, Empty <-> {}. Any, Struct, Value, ListValue and FieldMask are refused as
 *   unsupported.
 *
 * Errors name the field the way a person reads it, with proto field names as the API docs
 * spell them: `events[2].occurred_at: not an RFC 3339 timestamp`. A value is quoted back only
 * when it is short (at most PX_JSON_ECHO_MAX bytes, cut at a UTF-8 boundary) and holds no run
 * of 9 or more digits, so an ID or phone number sent to the wrong field is never repeated.
 *
 * Numbers are formatted and parsed with the C library in the "C" locale, which is what a
 * process that never calls setlocale has.
 */
#ifndef PHUXANH_JSON_H
#define PHUXANH_JSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "phuxanh/status.h"

/* How deep messages may nest in one another, counting the top-level message as 1. Our deepest
 * API message nests 3 levels; 32 leaves room for growth while bounding the recursion that
 * both directions (and px_pb_check_strings) do per level. The caller bounds the text size
 * (the gateway's body limit). jansson itself refuses JSON nested deeper than 2048 levels. */
#define PX_JSON_MAX_DEPTH 32

/* At most this many bytes of an offending value or key are quoted in an error message: enough
 * to recognise it, short enough for a log line. */
#define PX_JSON_ECHO_MAX 60

/* JSON text -> protobuf wire bytes of `desc`. On success *out is malloc'd (caller frees;
 * never NULL, even for an empty message), *out_len its size, returns PX_OK. On bad input
 * returns PX_INVALID_ARGUMENT and st->message names the field path, e.g.
 * `events[2].occurred_at: not an RFC 3339 timestamp`. PX_RESOURCE_EXHAUSTED when out of
 * memory. The top level must be a JSON object. */
px_code_t px_json_to_pb(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                        uint8_t **out, size_t *out_len, px_status_t *st);

/* Same, then unpacked: a message freed with protobuf_c_message_free_unpacked(msg, NULL). NULL
 * with st set (codes as above) on failure. */
ProtobufCMessage *px_json_to_message(const ProtobufCMessageDescriptor *desc, const char *json,
                                     size_t len, px_status_t *st);

/* A message -> canonical JSON text, malloc'd, NUL-terminated, its length in *len (len may be
 * NULL). Compact (no spaces), fields in field-number order. NULL with st set on out of memory
 * (RESOURCE_EXHAUSTED), or INVALID_ARGUMENT when the message holds something JSON cannot say:
 * a string that is not valid UTF-8, a Timestamp or Duration out of range, an unsupported
 * well-known type, messages nested deeper than PX_JSON_MAX_DEPTH. */
char *px_json_from_message(const ProtobufCMessage *msg, size_t *len, px_status_t *st);

/* Same from wire bytes of `desc` (unpacked, written, freed). INVALID_ARGUMENT also when the
 * bytes do not unpack as `desc`. */
char *px_json_from_pb(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      size_t *out_len, px_status_t *st);

#endif
