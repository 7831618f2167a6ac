/*
 * pbcheck.h - checks protobuf wire bytes before protobuf-c unpacks them.
 *
 * protobuf-c's unpack takes a string field holding a NUL byte (the C string is then silently
 * cut) or invalid UTF-8 (which proto3 forbids, and which PostgreSQL and JSON would refuse
 * later with a message naming no field). The gateway receives application/proto bodies from
 * clients, and the RPC server receives requests from the network: both walk them once with this
 * before unpacking.
 */
#ifndef PHUXANH_PBCHECK_H
#define PHUXANH_PBCHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "phuxanh/json.h"
#include "phuxanh/status.h"

/* Walks the wire bytes of `desc` without building structs: every string field (at any depth,
 * repeated included, inside well-known types and map entries too) must be valid UTF-8 and
 * hold no NUL. Messages may nest at most PX_JSON_MAX_DEPTH deep (the top level is 1), which
 * also bounds the recursion of protobuf-c's unpack that follows. A known string or message
 * field must come length-delimited. Unknown fields are skipped (proto3 semantics) but must be
 * well formed; groups (wire types 3 and 4, which protobuf-c does not read) are refused.
 * PX_OK, or PX_INVALID_ARGUMENT with a field path: "events[0].citizen_id: holds a NUL byte",
 * also for malformed data (a truncated varint, a length past the end). */
px_code_t px_pb_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                              size_t len, px_status_t *st);

/* The same walk, also bounding what unpacking would allocate: every message's struct, every
 * string's bytes, every repeated element's slot, summed as an upper estimate. Over
 * max_decoded, RESOURCE_EXHAUSTED before anything is allocated: a few bytes on the wire can
 * otherwise cost a hundred times their size once decoded (an empty repeated message is 2
 * bytes on the wire and a whole struct in memory). */
px_code_t px_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      size_t max_decoded, px_status_t *st);

#endif
