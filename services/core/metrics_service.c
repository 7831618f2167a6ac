/*
 * metrics_service.c - phuxanh.metrics.v1.Metrics/GetMetrics, served by every
 * server: a snapshot of the server's registry (the runtime's own families and
 * the service's), for the gateway's /metrics page. Built in the call's arena,
 * so a large answer costs one free at the end of the call.
 */
#include "phuxanh/metrics.h"
#include "phuxanh/metrics/v1/metrics.pb-c.h"
#include "rpc_internal.h"

static px_code_t s_get_metrics(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                               ProtobufCMessage *reply)
{
    (void)request;
    ProtobufCAllocator alloc = px__arena_allocator(ctx->arena);
    px_status_t st;
    if (px_metrics_fill(px_rpc_server_metrics(ctx->server), &alloc,
                        (Phuxanh__Metrics__V1__GetMetricsResponse *)reply, &st) != PX_OK) {
        return px_rpc_fail_status(ctx, &st);
    }
    return PX_OK;
}

const px_rpc_method_t px__metrics_methods[] = {
    {"GetMetrics", s_get_metrics},
};
const size_t px__metrics_methods_count = sizeof px__metrics_methods / sizeof px__metrics_methods[0];
