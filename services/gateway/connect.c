/*
 * connect.c - Connect-protocol unary calls of every public RPC
 * (connectrpc.com/docs/protocol), onto the services' RPC.
 *
 * POST /<package>.<Service>/<Method> with a body in application/json (proto3
 * canonical JSON, through the shared transcoder) or application/proto; GET with
 * ?encoding=&message=[&base64=1] for the methods the protos mark free of side
 * effects. The checks run in the order Connect's own servers use, after the
 * router's route, HTTP method and token checks: the role (403), the content type
 * (415), the encoding (501), the protocol version (400), the timeout (400), then
 * the message itself (400), then a recorder's units (403). The body is checked
 * for NUL and invalid UTF-8 in every string before it is decoded whole.
 *
 * The call then goes to a backend thread and the request is suspended. The
 * answer is encoded on that backend thread, so an HTTP thread never waits for a
 * service and never spends time encoding a large reply.
 *
 * GetProgress answers come from the progress cache when it has a fresh one
 * (progress.c says what fresh means).
 */
#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/clock.h"
#include "phuxanh/json.h"
#include "phuxanh/pbcheck.h"

#define CT_JSON "application/json"
#define CT_PROTO "application/proto"
#define ACCEPT_POST CT_JSON ", " CT_PROTO

#define PATH_RECORD_EVENTS "/phuxanh.activation.v1.ActivationService/RecordEvents"
#define PATH_SET_TARGETS "/phuxanh.activation.v1.ActivationService/SetTargets"
#define PATH_GET_PROGRESS "/phuxanh.activation.v1.ActivationService/GetProgress"
#define PATH_LIST_FOLLOW_UPS "/phuxanh.activation.v1.ActivationService/ListFollowUps"
#define PATH_LIST_STALLED "/phuxanh.activation.v1.ActivationService/ListStalled"
#define PATH_RESOLVE_FOLLOW_UP "/phuxanh.activation.v1.ActivationService/ResolveFollowUp"
#define PATH_CITIZEN_STATUS "/phuxanh.activation.v1.ActivationService/GetCitizenStatus"

typedef struct {
    gw_req_t *req;
    const gw_method_t *m;
    bool json;
    ProtobufCMessage *request;
    uint64_t progress_stamp; /* GetProgress: the cache generation when the call started */
    gw_call_t call;
} s_call_t;

static void s_call_free(void *p)
{
    s_call_t *c = p;
    if (c) {
        if (c->request) {
            protobuf_c_message_free_unpacked(c->request, NULL);
        }
        if (c->call.reply) {
            protobuf_c_message_free_unpacked(c->call.reply, NULL);
        }
        free(c);
    }
}

/* ---------------------------------------------------------------- the request's form */

/* The media type of a Content-Type value: "application/json; charset=utf-8" is JSON; a
 * charset other than UTF-8 is not something we can read. */
static bool s_content_type(const char *ct, bool *json)
{
    if (!ct) {
        return false;
    }
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ') {
        n--;
    }
    if (n == strlen(CT_JSON) && strncasecmp(ct, CT_JSON, n) == 0) {
        *json = true;
    } else if (n == strlen(CT_PROTO) && strncasecmp(ct, CT_PROTO, n) == 0) {
        *json = false;
    } else {
        return false;
    }
    const char *params = ct + strcspn(ct, ";");
    while (*params == ';') {
        params++;
        while (*params == ' ') {
            params++;
        }
        size_t plen = strcspn(params, ";");
        if (strncasecmp(params, "charset=", 8) == 0) {
            const char *v = params + 8;
            size_t vlen = plen - 8;
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
                v++;
                vlen -= 2;
            }
            if (!(vlen == 5 && strncasecmp(v, "utf-8", 5) == 0) &&
                !(vlen == 4 && strncasecmp(v, "utf8", 4) == 0)) {
                return false;
            }
        }
        params += plen;
    }
    return true;
}

/* 415 with Accept-Post. Connect clients infer "unknown" from 415; the body says the same. */
static void s_unsupported_media(gw_req_t *req, const char *what)
{
    const char *h[] = {"Accept-Post", ACCEPT_POST, NULL};
    gw_req_fail_http(req, 415, PX_UNKNOWN, h, "%s", what);
}

/* Connect-Timeout-Ms: 1 to 10 digits. -1 when absent, -2 when malformed. */
static int64_t s_timeout(const char *v)
{
    if (!v) {
        return -1;
    }
    size_t n = strlen(v);
    if (n == 0 || n > 10 || strspn(v, "0123456789") != n) {
        return -2;
    }
    return strtoll(v, NULL, 10);
}

/* Decodes GET's message parameter: base64url (padding optional) or the text itself. */
static bool s_get_message(gw_req_t *req, const char *msg, bool b64, uint8_t **out, size_t *len)
{
    size_t n = strlen(msg);
    if (!b64) {
        *out = malloc(n + 1);
        if (!*out) {
            return false;
        }
        memcpy(*out, msg, n + 1);
        *len = n;
        return true;
    }
    size_t cap = n / 4 * 3 + 3;
    *out = malloc(cap + 1);
    if (!*out) {
        return false;
    }
    /* Accept both padded and unpadded forms of the URL-safe alphabet. */
    size_t trim = n;
    while (trim > 0 && msg[trim - 1] == '=') {
        trim--;
    }
    if (sodium_base642bin(*out, cap, msg, trim, NULL, len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(*out);
        *out = NULL;
        return false;
    }
    (void)req;
    return true;
}

/* ---------------------------------------------------------------- a recorder's units */

static bool s_within(gw_units_t *units, const gw_ident_t *id, const char *unit)
{
    return unit && gw_units_within(units, unit, (const char(*)[24])id->scope, id->nscope);
}

/* The units a recorder's request names, checked before the call. PX_OK when the call may go
 * on; otherwise the request is answered. */
static px_code_t s_scope_check(gw_req_t *req, const gw_method_t *m, ProtobufCMessage *msg)
{
    const gw_ident_t *id = gw_req_ident(req);
    if (!id || id->role != GW_ROLE_RECORDER) {
        return PX_OK;
    }
    gw_units_t *units = gw_backend_units(gw_req_gw(req)->backend);
    if (gw_units_version(units) == 0) {
        gw_req_fail(req, PX_UNAVAILABLE,
                    "the unit tree is not loaded yet (roster unavailable): cannot check the "
                    "units of token \"%s\"",
                    id->name);
        return PX_UNAVAILABLE;
    }
    if (strcmp(m->path, PATH_RECORD_EVENTS) == 0) {
        const Phuxanh__Activation__V1__RecordEventsRequest *r = (const void *)msg;
        for (size_t i = 0; i < r->n_events; i++) {
            if (!s_within(units, id, r->events[i]->unit_code)) {
                gw_req_fail(req, PX_PERMISSION_DENIED,
                            "events[%zu].unit_code: unit \"%.24s\" is not within the units of "
                            "token \"%s\"; nothing of this batch was recorded",
                            i, r->events[i]->unit_code, id->name);
                return PX_PERMISSION_DENIED;
            }
        }
        return PX_OK;
    }
    const char *unit = NULL;
    if (strcmp(m->path, PATH_LIST_FOLLOW_UPS) == 0) {
        unit =
            ((const Phuxanh__Activation__V1__ListFollowUpsRequest *)(const void *)msg)->unit_code;
    } else if (strcmp(m->path, PATH_LIST_STALLED) == 0) {
        unit = ((const Phuxanh__Activation__V1__ListStalledRequest *)(const void *)msg)->unit_code;
    } else {
        return gw_scope_fill(req, m, msg);
    }
    if (!s_within(units, id, unit)) {
        gw_req_fail(req, PX_PERMISSION_DENIED,
                    "unit_code: unit \"%.24s\" is not within the units of token \"%s\"",
                    unit ? unit : "", id->name);
        return PX_PERMISSION_DENIED;
    }
    return PX_OK;
}

/* ---------------------------------------------------------------- answers */

static void s_answer_message(gw_req_t *req, bool json, const ProtobufCMessage *msg)
{
    px_status_t st;
    if (json) {
        size_t len = 0;
        char *text = px_json_from_message(msg, &len, &st);
        if (!text) {
            gw_req_fail(req, PX_INTERNAL, "cannot write the answer as JSON: %s", st.message);
            return;
        }
        gw_req_respond_take(req, 200, CT_JSON, text, len, NULL);
        return;
    }
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        gw_req_fail(req, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    protobuf_c_message_pack(msg, buf);
    gw_req_respond_take(req, 200, CT_PROTO, buf, len, NULL);
}

/* On the backend thread. */
static void s_done(gw_call_t *call)
{
    s_call_t *c = call->user;
    gw_req_t *req = c->req;
    gw_t *gw = gw_req_gw(req);
    if (call->code != PX_OK) {
        gw_req_fail(req, call->code, "%s", call->message);
        gw_req_resume(req);
        return;
    }
    const gw_ident_t *id = gw_req_ident(req);
    if (strcmp(c->m->path, PATH_CITIZEN_STATUS) == 0 && id && id->role == GW_ROLE_RECORDER) {
        /* The unit of a person is known only from the answer: the read is audited by the
         * service either way, and nothing of it leaves the gateway. */
        const Phuxanh__Activation__V1__GetCitizenStatusResponse *r = (const void *)call->reply;
        if (!s_within(gw_backend_units(gw->backend), id, r->unit_code)) {
            gw_req_fail(req, PX_PERMISSION_DENIED,
                        "this citizen is recorded in a unit outside the units of token \"%s\"",
                        id->name);
            gw_req_resume(req);
            return;
        }
    }
    if (strcmp(c->m->path, PATH_GET_PROGRESS) == 0) {
        const Phuxanh__Activation__V1__GetProgressRequest *q = (const void *)c->request;
        gw_progress_put(gw->progress, q->campaign_id, q->unit_code, c->progress_stamp, call->reply);
    } else if (strcmp(c->m->path, PATH_RECORD_EVENTS) == 0 ||
               strcmp(c->m->path, PATH_SET_TARGETS) == 0) {
        /* What this caller wrote must show in its next read at once, not when the feed
         * brings it. */
        gw_progress_invalidate(gw->progress);
    }
    s_answer_message(req, c->json, call->reply);
    gw_req_resume(req);
}

/* ---------------------------------------------------------------- the handler */

void gw_connect_handle(gw_req_t *req)
{
    gw_t *gw = gw_req_gw(req);
    const gw_method_t *m = gw_method_find(gw_req_path(req));
    const gw_ident_t *id = gw_req_ident(req);
    if (!m || !id) {
        gw_req_fail(req, PX_INTERNAL, "connect handler reached without a method or token");
        return;
    }
    if (!(m->roles & GW_ROLE_BIT(id->role))) {
        gw_req_fail(req, PX_PERMISSION_DENIED, "token \"%s\" (role %s) may not call %s", id->name,
                    gw_role_name(id->role), m->name);
        return;
    }
    bool is_get = strcmp(gw_req_method(req), "GET") == 0;
    bool json = false;
    size_t body_len = 0;
    const uint8_t *body = gw_req_body(req, &body_len);
    uint8_t *get_msg = NULL;
    const char *encoding;
    if (is_get) {
        const char *enc = gw_req_query(req, "encoding");
        if (body_len > 0) {
            s_unsupported_media(req, "a GET request has no body");
            return;
        }
        if (enc && strcmp(enc, "json") == 0) {
            json = true;
        } else if (enc && strcmp(enc, "proto") == 0) {
            json = false;
        } else if (enc) {
            s_unsupported_media(req, "encoding: expected json or proto");
            return;
        }
        encoding = gw_req_query(req, "compression");
    } else {
        if (!s_content_type(gw_req_header(req, "Content-Type"), &json)) {
            s_unsupported_media(req, "Content-Type: expected application/json or "
                                     "application/proto");
            return;
        }
        encoding = gw_req_header(req, "Content-Encoding");
    }
    if (encoding && *encoding && strcmp(encoding, "identity") != 0) {
        const char *h[] = {"Accept-Encoding", "identity", NULL};
        gw_req_fail_http(req, 501, PX_UNIMPLEMENTED, h,
                         "compression \"%.32s\" is not supported; supported: identity", encoding);
        return;
    }
    if (is_get) {
        const char *cv = gw_req_query(req, "connect");
        if (cv && strcmp(cv, "v1") != 0) {
            gw_req_fail(req, PX_INVALID_ARGUMENT, "connect: expected v1");
            return;
        }
        if (!gw_req_query(req, "encoding")) {
            gw_req_fail(req, PX_INVALID_ARGUMENT, "encoding: missing (json or proto)");
            return;
        }
        const char *msg = gw_req_query(req, "message");
        if (!msg) {
            gw_req_fail(req, PX_INVALID_ARGUMENT, "message: missing");
            return;
        }
        const char *b64 = gw_req_query(req, "base64");
        if (!s_get_message(req, msg, b64 && strcmp(b64, "1") == 0, &get_msg, &body_len)) {
            gw_req_fail(req, PX_INVALID_ARGUMENT, "message: not valid base64url");
            return;
        }
        body = get_msg;
        if (body_len > gw->limits.max_body) {
            free(get_msg);
            gw_req_fail_http(req, 413, PX_RESOURCE_EXHAUSTED, NULL,
                             "message of %zu bytes exceeds the limit of %zu bytes", body_len,
                             gw->limits.max_body);
            return;
        }
    } else {
        const char *pv = gw_req_header(req, "Connect-Protocol-Version");
        if (pv && strcmp(pv, "1") != 0) {
            gw_req_fail(req, PX_INVALID_ARGUMENT, "Connect-Protocol-Version: expected 1");
            return;
        }
    }
    int64_t timeout_ms = s_timeout(gw_req_header(req, "Connect-Timeout-Ms"));
    if (timeout_ms == -2) {
        free(get_msg);
        gw_req_fail(req, PX_INVALID_ARGUMENT, "Connect-Timeout-Ms: expected 1 to 10 digits");
        return;
    }
    if (timeout_ms < 0) {
        timeout_ms = gw->limits.default_timeout_ms;
    } else if (timeout_ms > gw->limits.max_timeout_ms) {
        timeout_ms = gw->limits.max_timeout_ms;
    }

    /* The message: strings checked on the wire (NUL, UTF-8) before anything is built. */
    px_status_t st;
    ProtobufCMessage *msg = NULL;
    if (json) {
        if (body_len == 0) {
            free(get_msg);
            gw_req_fail(req, PX_INVALID_ARGUMENT,
                        "the body is empty; a JSON message is an "
                        "object, at least {}");
            return;
        }
        msg = px_json_to_message(m->desc->input, (const char *)body, body_len, &st);
    } else if (px_pb_check_strings(m->desc->input, body, body_len, &st) == PX_OK) {
        msg = protobuf_c_message_unpack(m->desc->input, NULL, body_len, body);
        if (!msg) {
            px_status_set(&st, PX_INVALID_ARGUMENT, "the body does not decode as %s",
                          m->desc->input->name);
        }
    }
    free(get_msg);
    if (!msg) {
        gw_req_fail(req, st.code == PX_OK ? PX_INVALID_ARGUMENT : st.code, "%s", st.message);
        return;
    }
    gw_connect_call(req, m, msg, json, timeout_ms);
}

void gw_connect_call(gw_req_t *req, const gw_method_t *m, ProtobufCMessage *msg, bool json,
                     int64_t timeout_ms)
{
    gw_t *gw = gw_req_gw(req);
    s_call_t *c = calloc(1, sizeof *c);
    if (!c) {
        protobuf_c_message_free_unpacked(msg, NULL);
        gw_req_fail(req, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    c->req = req;
    c->m = m;
    c->json = json;
    c->request = msg;
    gw_req_set_state(req, c, s_call_free);
    gw_req_set_rpc(req, m->path);
    if (s_scope_check(req, m, msg) != PX_OK) {
        return;
    }
    if (strcmp(m->path, PATH_GET_PROGRESS) == 0) {
        const Phuxanh__Activation__V1__GetProgressRequest *q = (const void *)msg;
        uint8_t *cached = NULL;
        size_t clen = 0;
        if (gw_progress_get(gw->progress, q->campaign_id, q->unit_code, json, &cached, &clen)) {
            gw_req_respond_take(req, 200, json ? CT_JSON : CT_PROTO, cached, clen, NULL);
            return;
        }
        c->progress_stamp = gw_progress_stamp(gw->progress);
    }
    gw_req_suspend(req);
    gw_call_start(req, &c->call, m, msg, timeout_ms, s_done, c);
}

ProtobufCMessage *gw_msg_own(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        return NULL;
    }
    protobuf_c_message_pack(msg, buf);
    ProtobufCMessage *own = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
    free(buf);
    return own;
}

px_code_t gw_scope_fill(gw_req_t *req, const gw_method_t *m, ProtobufCMessage *msg)
{
    const gw_ident_t *id = gw_req_ident(req);
    if (!id || id->role != GW_ROLE_RECORDER || strcmp(m->path, PATH_RESOLVE_FOLLOW_UP) != 0) {
        return PX_OK;
    }
    /* Which unit a follow-up belongs to is the service's to know: it is told the recorder's
     * units and resolves only within them. What the caller sent there is replaced. */
    Phuxanh__Activation__V1__ResolveFollowUpRequest *r = (void *)msg;
    for (size_t i = 0; i < r->n_within_units; i++) {
        free(r->within_units[i]);
    }
    free(r->within_units);
    r->n_within_units = 0;
    r->within_units = calloc(id->nscope, sizeof *r->within_units);
    if (!r->within_units) {
        gw_req_fail(req, PX_RESOURCE_EXHAUSTED, "out of memory");
        return PX_RESOURCE_EXHAUSTED;
    }
    for (size_t i = 0; i < id->nscope; i++) {
        r->within_units[i] = strdup(id->scope[i]);
        if (!r->within_units[i]) {
            gw_req_fail(req, PX_RESOURCE_EXHAUSTED, "out of memory");
            return PX_RESOURCE_EXHAUSTED;
        }
        r->n_within_units++;
    }
    return PX_OK;
}
