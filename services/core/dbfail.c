/*
 * dbfail.c - a call's answer when its database work failed (dbfail.h).
 */
#include "phuxanh/dbfail.h"

#include "phuxanh/log.h"

px_code_t px_db_fail_call(px_rpc_ctx_t *ctx, const char *what, const px_status_t *st)
{
    if (st->code != PX_UNAVAILABLE) {
        return px_rpc_fail_status(ctx, st);
    }
    px_log_emit(px_rpc_ctx_log(ctx), PX_LOG_WARN, "DB-UNAVAILABLE", "database unavailable",
                PX_LOG_FIELDS(PX_LS("database", what), PX_LS("detail", st->message),
                              PX_LS("method", px_rpc_ctx_method(ctx)),
                              PX_LS("request_id", px_rpc_ctx_request_id(ctx))));
    return px_rpc_fail(ctx, PX_UNAVAILABLE, "%s unavailable; retry later", what);
}
