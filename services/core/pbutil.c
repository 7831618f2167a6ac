/* pbutil.c - see pbutil.h. */
#include "phuxanh/pbutil.h"

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the bounds of google.protobuf.Timestamp. */
#define TS_MIN_SECONDS (-62135596800LL)
#define TS_MAX_SECONDS (253402300799LL)

bool px_ts_to_us(const Google__Protobuf__Timestamp *ts, int64_t *us)
{
    if (!ts || ts->nanos < 0 || ts->nanos >= 1000000000 || ts->seconds < TS_MIN_SECONDS ||
        ts->seconds > TS_MAX_SECONDS) {
        return false;
    }
    *us = ts->seconds * 1000000 + ts->nanos / 1000;
    return true;
}

Google__Protobuf__Timestamp *px_ts_new(px_rpc_ctx_t *ctx, int64_t us)
{
    Google__Protobuf__Timestamp *ts = px_rpc_ctx_alloc(ctx, sizeof *ts);
    if (ts) {
        google__protobuf__timestamp__init(ts);
        int64_t s = us / 1000000;
        int64_t r = us % 1000000;
        if (r < 0) {
            s--;
            r += 1000000;
        }
        ts->seconds = s;
        ts->nanos = (int32_t)(r * 1000);
    }
    return ts;
}

Google__Protobuf__BoolValue *px_bool_new(px_rpc_ctx_t *ctx, bool value)
{
    Google__Protobuf__BoolValue *b = px_rpc_ctx_alloc(ctx, sizeof *b);
    if (b) {
        google__protobuf__bool_value__init(b);
        b->value = value;
    }
    return b;
}
