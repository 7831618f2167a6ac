/*
 * client.c - the services pxctl talks to, and one call to them.
 *
 * pxctl is one more client of the services' RPC, with no back door: it calls as
 * "pxctl" (x-caller) on behalf of the operator (--as, default $USER, sent as
 * x-on-behalf-of, which the services write into their audit rows beside the
 * caller). Every call carries a request id made here, so that a failure can name
 * it and the operator can find the call in the services' logs.
 */
#include <stdlib.h>
#include <string.h>

#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "pxctl.h"

const pxctl_service_t pxctl_services[PXCTL_SVC_COUNT] = {
    [PXCTL_SVC_ROSTER] = {"roster", "roster-endpoints",
                          &phuxanh__roster__v1__roster_service__descriptor},
    [PXCTL_SVC_ACTIVATION] = {"activation", "activation-endpoints",
                              &phuxanh__activation__v1__activation_service__descriptor},
};

const pxctl_service_t *pxctl_service_find(const char *name)
{
    for (int i = 0; i < PXCTL_SVC_COUNT; i++) {
        if (strcmp(pxctl_services[i].name, name) == 0) {
            return &pxctl_services[i];
        }
    }
    return NULL;
}

int pxctl_exit_for(px_code_t code)
{
    return code == PX_OK            ? PXCTL_EXIT_OK
           : code == PX_UNAVAILABLE ? PXCTL_EXIT_UNAVAILABLE
                                    : PXCTL_EXIT_FAILED;
}

px_rpc_client_t *pxctl_client_new(const px_config_t *cfg, px_curve_t *curve,
                                  const pxctl_service_t *svc, const char *endpoints,
                                  int max_attempts, const char *cmd_name)
{
    const char *eps = endpoints ? endpoints : px_config_get(cfg, svc->option);
    if (!eps || !*eps) {
        pxctl_err(cmd_name, "--%s: no endpoint for the %s service", svc->option, svc->name);
        return NULL;
    }
    px_rpc_client_opts_t o = {.caller = PXCTL_CALLER,
                              .max_attempts = max_attempts,
                              .curve = curve,
                              .server_name = svc->name};
    px_status_t st;
    px_rpc_client_t *client = px_rpc_client_new(eps, &o, &st);
    if (!client) {
        pxctl_err(cmd_name, "%s: %s", svc->name, st.message);
    }
    return client;
}

px_md_t *pxctl_md_new(const px_config_t *cfg, char *request_id)
{
    px_md_t *md = px_md_new();
    px_rpc_request_id_new(request_id);
    const char *as = px_config_get(cfg, "as");
    if (!md || px_md_set(md, PX_MD_REQUEST_ID, request_id) != 0 ||
        (as && *as && px_md_set(md, PX_MD_ON_BEHALF_OF, as) != 0)) {
        px_md_destroy(&md);
    }
    return md;
}

int pxctl_call(px_rpc_client_t *client, const px_config_t *cfg, const char *cmd_name,
               const char *path, const ProtobufCMessage *request,
               const ProtobufCMessageDescriptor *reply_type, bool idempotent,
               ProtobufCMessage **reply)
{
    char rid[33];
    px_status_t st;
    int64_t timeout_ms = 0;
    *reply = NULL;
    if (px_config_int(cfg, "timeout-ms", 1, PX_RPC_MAX_TIMEOUT_MS, &timeout_ms, &st) != PX_OK) {
        pxctl_err(cmd_name, "%s", st.message);
        return PXCTL_EXIT_USAGE;
    }
    px_md_t *md = pxctl_md_new(cfg, rid);
    if (!md) {
        pxctl_err(cmd_name, "out of memory");
        return PXCTL_EXIT_FAILED;
    }
    px_rpc_call_opts_t o = {.timeout_ms = timeout_ms, .idempotent = idempotent, .metadata = md};
    px_code_t code = px_rpc_client_call(client, path, request, reply_type, reply, &o, &st);
    px_md_destroy(&md);
    if (code != PX_OK) {
        pxctl_err(cmd_name, "%s: %s (%s, request id %s)", px_code_name(code), st.message, path,
                  rid);
        return pxctl_exit_for(code);
    }
    return PXCTL_EXIT_OK;
}
