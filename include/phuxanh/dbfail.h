/*
 * dbfail.h - a call's answer when its database work failed, in the service's terms.
 *
 * libpq's messages for a database that cannot be reached name the server's host and port
 * ("connection to server at "10.0.0.5", port 5432 failed: ..."): callers must not learn the
 * deployment's inside from an answer. They get "<what> unavailable", and the detail goes to
 * the log with the call's request id, where operators find it. Other failures (constraints,
 * serialization) keep their message, which names no infrastructure.
 */
#ifndef PHUXANH_DBFAIL_H
#define PHUXANH_DBFAIL_H

#include "phuxanh/rpc.h"
#include "phuxanh/status.h"

/* Fails the call with st's code (from px_db_*); `what` names the database for people
 * ("activation database"). Returns the code, for `return px_db_fail_call(...)`. */
px_code_t px_db_fail_call(px_rpc_ctx_t *ctx, const char *what, const px_status_t *st);

#endif
