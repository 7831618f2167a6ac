/*
 * health.c - pxctl health: is every service serving, and which build is it?
 *
 * Each endpoint of each service is asked on its own (Health/Check): replicas of
 * a service sit behind a comma-separated list of endpoints, and "the roster
 * answers" must not hide "one of its two replicas is down". With a gateway URL
 * (--gateway-url / PX_GATEWAY_URL) the gateway is asked too: /healthz for its
 * version, /readyz for whether it can serve (every service it needs answering,
 * its live feed whole).
 *
 * The exit status is for monitoring and scripts: 0 when all serve, 3 when one
 * could not be reached at all, else 4 when one answered that it is not serving
 * (a service whose database is down answers NOT_SERVING).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "phuxanh/clock.h"
#include "phuxanh/health/v1/health.pb-c.h"
#include "pxctl.h"

/* Endpoints asked in one run: every replica of both services. */
#define HEALTH_MAX_ROWS (2 * PX_RPC_MAX_ENDPOINTS + 1)
/* Longest endpoint or URL kept for the table. */
#define HEALTH_WHERE_MAX 256
/* The gateway's /healthz and /readyz answers are a few hundred bytes; more is not them. */
#define HEALTH_HTTP_BODY_MAX 65536

static const pxctl_option_t s_options[] = {
    {{"json", NULL, "off", "one JSON array of the answers instead of a table"}, PXCTL_SWITCH, 0},
    {{NULL, NULL, NULL, NULL}, 0, 0},
};

static const pxctl_command_t s_cmd = {
    .name = "health",
    .synopsis = NULL,
    .summary = "every service's health and version",
    .details = "Asks every endpoint of the roster and activation services (Health/Check) and,\n"
               "when --gateway-url is set, the gateway (/healthz, /readyz). Prints one row per\n"
               "endpoint: status (SERVING, NOT_SERVING, UNAVAILABLE...), version, time taken.\n"
               "Exit status 0 when every one serves, 3 when one could not be reached, else 4\n"
               "when one answered that it is not serving.",
    .options = s_options,
    .common = PXCTL_COMMON_SERVICES | PXCTL_COMMON_GATEWAY,
    .min_args = 0,
    .max_args = 0,
};

typedef struct {
    const char *service;
    char where[HEALTH_WHERE_MAX];
    char status[32];
    char version[64];
    char detail[PX_STATUS_MESSAGE_MAX];
    int64_t took_us;
    int exit; /* this row's share of the exit status */
} s_row_t;

static void s_check_endpoint(const px_config_t *cfg, px_curve_t *curve, const pxctl_service_t *svc,
                             const char *endpoint, s_row_t *row)
{
    row->service = svc->name;
    snprintf(row->where, sizeof row->where, "%s", endpoint);
    snprintf(row->version, sizeof row->version, "-");
    int64_t t0 = px_clock_us();
    /* One try: a check says how the endpoint is now (down: within the client's connect wait,
     * a second), not whether it comes back while retried. */
    px_rpc_client_t *client = pxctl_client_new(cfg, curve, svc, endpoint, 1, s_cmd.name);
    if (!client) {
        snprintf(row->status, sizeof row->status, "UNAVAILABLE");
        snprintf(row->detail, sizeof row->detail, "bad endpoint");
        row->exit = PXCTL_EXIT_UNAVAILABLE;
        return;
    }
    Phuxanh__Health__V1__HealthCheckRequest req = PHUXANH__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    char rid[33];
    px_status_t st;
    int64_t timeout_ms = 0;
    px_md_t *md = pxctl_md_new(cfg, rid);
    px_code_t code = PX_RESOURCE_EXHAUSTED;
    px_status_set(&st, code, "out of memory");
    if (md && (code = px_config_int(cfg, "timeout-ms", 1, PX_RPC_MAX_TIMEOUT_MS, &timeout_ms,
                                    &st)) == PX_OK) {
        px_rpc_call_opts_t o = {.timeout_ms = timeout_ms, .metadata = md};
        code = px_rpc_client_call(client, "/phuxanh.health.v1.Health/Check", &req.base,
                                  &phuxanh__health__v1__health_check_response__descriptor, &reply,
                                  &o, &st);
    }
    row->took_us = px_clock_us() - t0;
    if (code != PX_OK) {
        bool gone = code == PX_UNAVAILABLE || code == PX_DEADLINE_EXCEEDED;
        snprintf(row->status, sizeof row->status, "%s", gone ? "UNAVAILABLE" : px_code_name(code));
        snprintf(row->detail, sizeof row->detail, "%s", st.message);
        row->exit = gone ? PXCTL_EXIT_UNAVAILABLE : PXCTL_EXIT_NOT_SERVING;
    } else {
        const Phuxanh__Health__V1__HealthCheckResponse *rep =
            (const Phuxanh__Health__V1__HealthCheckResponse *)reply;
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
            &phuxanh__health__v1__health_check_response__serving_status__descriptor, rep->status);
        snprintf(row->status, sizeof row->status, "%s", v ? v->name : "UNKNOWN");
        if (rep->version && *rep->version) {
            snprintf(row->version, sizeof row->version, "%s", rep->version);
        }
        row->exit =
            rep->status == PHUXANH__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                ? PXCTL_EXIT_OK
                : PXCTL_EXIT_NOT_SERVING;
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    px_md_destroy(&md);
    px_rpc_client_destroy(&client);
}

typedef struct {
    char *data;
    size_t len;
} s_body_t;

static size_t s_on_body(char *ptr, size_t size, size_t nmemb, void *user)
{
    s_body_t *b = user;
    size_t n = size * nmemb;
    if (b->len + n > HEALTH_HTTP_BODY_MAX) {
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    char *d = realloc(b->data, b->len + n + 1);
    if (!d) {
        return 0;
    }
    memcpy(d + b->len, ptr, n);
    b->data = d;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* GET base+path: the HTTP status (0 when no answer, with the reason in err) and the body. */
static long s_get(const char *base, const char *path, int64_t timeout_ms, s_body_t *body, char *err)
{
    char url[HEALTH_WHERE_MAX + 16];
    snprintf(url, sizeof url, "%s%s", base, path);
    long status = 0;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, CURL_ERROR_SIZE, "out of memory");
        return 0;
    }
    err[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    CURLcode r = curl_easy_perform(c);
    if (r == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    } else if (!err[0]) {
        snprintf(err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(r));
    }
    curl_easy_cleanup(c);
    return status;
}

static void s_check_gateway(const px_config_t *cfg, const char *url, s_row_t *row)
{
    row->service = "gateway";
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/') {
        n--;
    }
    snprintf(row->where, sizeof row->where, "%.*s", (int)n, url);
    snprintf(row->version, sizeof row->version, "-");
    int64_t timeout_ms = 10000;
    px_status_t st;
    px_config_int(cfg, "timeout-ms", 1, PX_RPC_MAX_TIMEOUT_MS, &timeout_ms, &st);
    char err[CURL_ERROR_SIZE];
    s_body_t live = {0}, ready = {0};
    int64_t t0 = px_clock_us();
    long hs = s_get(row->where, "/healthz", timeout_ms, &live, err);
    long rs = hs ? s_get(row->where, "/readyz", timeout_ms, &ready, err) : 0;
    row->took_us = px_clock_us() - t0;
    if (hs == 200 && live.data) {
        json_t *j = json_loads(live.data, 0, NULL);
        const char *v = json_string_value(json_object_get(j, "version"));
        if (v && *v) {
            snprintf(row->version, sizeof row->version, "%s", v);
        }
        json_decref(j);
    }
    if (!hs || !rs) {
        snprintf(row->status, sizeof row->status, "UNAVAILABLE");
        snprintf(row->detail, sizeof row->detail, "%s", err);
        row->exit = PXCTL_EXIT_UNAVAILABLE;
    } else if (rs == 200) {
        snprintf(row->status, sizeof row->status, "SERVING");
        row->exit = PXCTL_EXIT_OK;
    } else {
        /* 503 names what is missing: {..., "status":"not_ready", "missing":["activation"]} */
        json_t *j = ready.data ? json_loads(ready.data, 0, NULL) : NULL;
        json_t *missing = json_object_get(j, "missing");
        size_t len = (size_t)snprintf(row->detail, sizeof row->detail, "/readyz answered %ld", rs);
        for (size_t i = 0; i < json_array_size(missing) && len < sizeof row->detail; i++) {
            const char *what = json_string_value(json_array_get(missing, i));
            len += (size_t)snprintf(row->detail + len, sizeof row->detail - len, "%s%s",
                                    i ? ", " : ": missing ", what ? what : "?");
        }
        snprintf(row->status, sizeof row->status, "NOT_SERVING");
        json_decref(j);
        row->exit = PXCTL_EXIT_NOT_SERVING;
    }
    free(live.data);
    free(ready.data);
}

static void s_print_table(const s_row_t *rows, size_t n, bool color)
{
    size_t ws = strlen("SERVICE"), ww = strlen("ENDPOINT"), wt = strlen("STATUS"),
           wv = strlen("VERSION");
    for (size_t i = 0; i < n; i++) {
        ws = strlen(rows[i].service) > ws ? strlen(rows[i].service) : ws;
        ww = strlen(rows[i].where) > ww ? strlen(rows[i].where) : ww;
        wt = strlen(rows[i].status) > wt ? strlen(rows[i].status) : wt;
        wv = strlen(rows[i].version) > wv ? strlen(rows[i].version) : wv;
    }
    printf("%-*s  %-*s  %-*s  %-*s  %s\n", (int)ws, "SERVICE", (int)ww, "ENDPOINT", (int)wt,
           "STATUS", (int)wv, "VERSION", "TIME");
    for (size_t i = 0; i < n; i++) {
        const s_row_t *r = &rows[i];
        const char *on = !color ? "" : r->exit == PXCTL_EXIT_OK ? "\033[32m" : "\033[31m";
        printf("%-*s  %-*s  %s%-*s%s  %-*s  %lld ms%s%s\n", (int)ws, r->service, (int)ww, r->where,
               on, (int)wt, r->status, color ? "\033[0m" : "", (int)wv, r->version,
               (long long)(r->took_us / 1000), r->detail[0] ? "  " : "", r->detail);
    }
}

static int s_print_json(const s_row_t *rows, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        const s_row_t *r = &rows[i];
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "service", r->service, "endpoint", r->where,
                      "status", r->status, "version", strcmp(r->version, "-") ? r->version : "",
                      "ms", (json_int_t)(r->took_us / 1000), "detail", r->detail);
        if (!o || json_array_append_new(a, o) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!text) {
        pxctl_err(s_cmd.name, "out of memory");
        return -1;
    }
    puts(text);
    free(text);
    return 0;
}

int pxctl_health_main(int argc, char **argv)
{
    pxctl_args_t args;
    int rc = PXCTL_EXIT_FAILED;
    s_row_t *rows = NULL;
    size_t n = 0;
    if (!pxctl_args_parse(&s_cmd, argc, argv, &args, &rc)) {
        return rc;
    }
    rows = calloc(HEALTH_MAX_ROWS, sizeof *rows);
    if (!rows) {
        pxctl_err(s_cmd.name, "out of memory");
        goto done;
    }
    for (int s = 0; s < PXCTL_SVC_COUNT; s++) {
        const pxctl_service_t *svc = &pxctl_services[s];
        const char *eps = px_config_get(args.cfg, svc->option);
        char *copy = strdup(eps ? eps : "");
        char *save = NULL;
        if (!copy) {
            pxctl_err(s_cmd.name, "out of memory");
            goto done;
        }
        for (char *ep = strtok_r(copy, ",", &save); ep && n < HEALTH_MAX_ROWS - 1;
             ep = strtok_r(NULL, ",", &save)) {
            ep += strspn(ep, " ");
            if (*ep) {
                s_check_endpoint(args.cfg, args.curve, svc, ep, &rows[n++]);
            }
        }
        free(copy);
    }
    const char *gw = px_config_get(args.cfg, "gateway-url");
    if (gw && *gw) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        s_check_gateway(args.cfg, gw, &rows[n++]);
        curl_global_cleanup();
    }
    if (pxctl_on(args.cfg, "json")) {
        if (s_print_json(rows, n) != 0) {
            goto done;
        }
    } else {
        s_print_table(rows, n, pxctl_color(1));
    }
    fflush(stdout);
    rc = PXCTL_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].exit == PXCTL_EXIT_UNAVAILABLE ||
            (rows[i].exit == PXCTL_EXIT_NOT_SERVING && rc == PXCTL_EXIT_OK)) {
            rc = rows[i].exit;
        }
    }

done:
    free(rows);
    pxctl_args_free(&args);
    return rc;
}
