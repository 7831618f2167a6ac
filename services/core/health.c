/*
 * health.c - phuxanh.health.v1.Health/Check, served by every server.
 *
 * gRPC health semantics: the empty name asks about the whole server, a
 * registered service name about that service (here: the same answer, since a
 * service is only as healthy as the database under it), any other name is
 * NOT_FOUND. A server with a database is NOT_SERVING while this worker cannot
 * reach it; the check itself reconnects, so health recovers on its own. The answer
 * also names the build (PX_VERSION, the project's version), for `pxctl health`.
 */
#include "phuxanh/health/v1/health.pb-c.h"
#include "rpc_internal.h"

#ifndef PX_VERSION
#define PX_VERSION ""
#endif

static px_code_t s_check(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                         ProtobufCMessage *reply)
{
    const Phuxanh__Health__V1__HealthCheckRequest *req =
        (const Phuxanh__Health__V1__HealthCheckRequest *)request;
    Phuxanh__Health__V1__HealthCheckResponse *rep =
        (Phuxanh__Health__V1__HealthCheckResponse *)reply;
    const char *name = req->service ? req->service : "";
    if (*name && !px__server_has_service(ctx->server, name)) {
        char shown[201]; /* cut at a character, never inside one */
        px_utf8_copy(shown, sizeof shown, name);
        return px_rpc_fail(ctx, PX_NOT_FOUND, "service: %s is not served here", shown);
    }
    rep->status = PHUXANH__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rep->version = (char *)PX_VERSION; /* static: the reply is packed before the call ends */
    if (px__server_has_db(ctx->server)) {
        px_status_t st;
        if (px_db_ping(ctx->db, &st) != PX_OK) {
            rep->status = PHUXANH__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
        }
    }
    return PX_OK;
}

const px_rpc_method_t px__health_methods[] = {
    {"Check", s_check},
};
const size_t px__health_methods_count = sizeof px__health_methods / sizeof px__health_methods[0];
