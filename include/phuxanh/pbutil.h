/*
 * pbutil.h - small conversions between protobuf well-known types and our values.
 */
#ifndef PHUXANH_PBUTIL_H
#define PHUXANH_PBUTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "phuxanh/rpc.h"

/* Microseconds since the epoch; false when ts is NULL or out of range (nanos not in
 * [0, 1e9), or seconds outside years 1-9999 as the proto spec bounds them). */
bool px_ts_to_us(const Google__Protobuf__Timestamp *ts, int64_t *us);
/* A Timestamp allocated on the call's arena (NULL when out of memory). */
Google__Protobuf__Timestamp *px_ts_new(px_rpc_ctx_t *ctx, int64_t us);
/* A BoolValue allocated on the call's arena. */
Google__Protobuf__BoolValue *px_bool_new(px_rpc_ctx_t *ctx, bool value);

#endif
