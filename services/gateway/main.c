/*
 * main.c - px-gateway: the one HTTP door to the roster and activation services.
 *
 * Builds the parts from PX_* configuration (see --help) and hands requests to
 * them (gateway.h tells how a request flows). The main thread then only waits
 * for signals: SIGHUP reloads the token file (a bad file keeps the old tokens and
 * says which line), SIGTERM or SIGINT stop the gateway gracefully: no new
 * connections, live streams ended, calls in flight answered (or, past a bound,
 * answered UNAVAILABLE), then the server stops.
 *
 * The gateway keeps no state a restart may lose: tokens come from their file,
 * progress answers and the feed's ring are rebuilt from the services.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "gateway.h"
#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/config.h"
#include "phuxanh/json.h"
#include "phuxanh/logstream.h"
#include "phuxanh/notify.h"
#include "webhooks.h"

#ifndef PX_VERSION
#define PX_VERSION "0.0.0"
#endif

static const px_config_option_t s_options[] = {
    {"http-listen", "PX_HTTP_LISTEN", "127.0.0.1:8080", "IPv4 address and port to serve HTTP on"},
    {"roster-endpoints", "PX_ROSTER_ENDPOINTS", NULL,
     "ZeroMQ endpoints of the roster service, comma separated"},
    {"activation-endpoints", "PX_ACTIVATION_ENDPOINTS", NULL,
     "ZeroMQ endpoints of the activation service, comma separated"},
    {"activation-feed", "PX_ACTIVATION_FEED", "tcp://127.0.0.1:7103",
     "the activation service's PUB endpoints (its pub-endpoint), comma separated"},
    {"tokens-file", "PX_TOKENS_FILE", NULL,
     "the API token file: '<sha256> <name> <role> [units=..] [rate=N] [burst=N]' per line"},
    {"http-threads", "PX_HTTP_THREADS", "2", "threads serving HTTP connections"},
    {"backend-threads", "PX_BACKEND_THREADS", "1", "threads calling the services"},
    {"max-body", "PX_MAX_BODY", "1048576", "largest request body in bytes (413 past it)"},
    {"max-header", "PX_MAX_HEADER", "32768", "bytes a request's head may take (431 past it)"},
    {"idle-timeout-s", "PX_IDLE_TIMEOUT_S", "30", "seconds a quiet connection is kept"},
    {"body-timeout-s", "PX_BODY_TIMEOUT_S", "30", "seconds a request body may take to arrive"},
    {"max-connections", "PX_MAX_CONNECTIONS", "4096", "open connections at most"},
    {"per-ip-connections", "PX_PER_IP_CONNECTIONS", "0",
     "open connections per client address at most (0: no limit)"},
    {"default-timeout-ms", "PX_DEFAULT_TIMEOUT_MS", "10000",
     "a call's deadline when the request gives no Connect-Timeout-Ms"},
    {"max-timeout-ms", "PX_MAX_TIMEOUT_MS", "60000", "the longest deadline a request may ask"},
    {"rate", "PX_RATE", "50", "requests per second a token may make (its own rate= wins)"},
    {"burst", "PX_BURST", "100", "requests a token may make at once (its own burst= wins)"},
    {"progress-max-age-ms", "PX_PROGRESS_MAX_AGE_MS", "5000",
     "longest a progress answer is served from memory (0: never)"},
    {"feed-ring", "PX_FEED_RING", "10000", "live events kept for /v1/events to resume from"},
    {"sse-keepalive-s", "PX_SSE_KEEPALIVE_S", "15",
     "seconds without an event after which /v1/events sends a keep-alive comment"},
    {"feed-heartbeat-ms", "PX_FEED_HEARTBEAT_MS", "1000",
     "the activation feed's heartbeat period (its pub-heartbeat-ms)"},
    {"public-progress", "PX_PUBLIC_PROGRESS", "off",
     "on: serve /public/v1/progress without a token (units' progress, small counts hidden)"},
    {"public-cache-ms", "PX_PUBLIC_CACHE_MS", "30000", "how long one public answer is reused"},
    {"public-rate", "PX_PUBLIC_RATE", "2", "public requests per second per client address"},
    {"public-burst", "PX_PUBLIC_BURST", "20", "public requests a client address may make at once"},
    {"public-threshold", "PX_PUBLIC_THRESHOLD", "10",
     "public counts below this are shown as \"<N\""},
    {"webhooks-file", "PX_WEBHOOKS_FILE", NULL,
     "the webhook subscribers file (docs/GATEWAY.md); unset: no webhooks"},
    {"state-dir", "PX_STATE_DIR", NULL,
     "a directory of the gateway's own where webhook deliveries are journaled"},
    {"webhooks-daily-hour", "PX_WEBHOOKS_DAILY_HOUR", "20",
     "hour (Viet Nam time, 0-23) of the daily summary to subscribers; -1: none"},
    {"webhooks-retry-first-ms", "PX_WEBHOOKS_RETRY_FIRST_MS", "10000",
     "the first retry of a failed delivery, then doubled each try"},
    {"webhooks-retry-max-ms", "PX_WEBHOOKS_RETRY_MAX_MS", "3600000", "the longest retry delay"},
    {"webhooks-give-up-ms", "PX_WEBHOOKS_GIVE_UP_MS", "86400000",
     "no try starts this long after a delivery was made (or replayed)"},
    {"log-level", "PX_LOG_LEVEL", "info", "debug, info, warn or error"},
    PX_CURVE_CONFIG_OPTIONS,
    PX_LOGSTREAM_OPTIONS,
    {NULL, NULL, NULL, NULL},
};

typedef struct {
    const char *name;
    int64_t min, max, *out;
} s_int_opt_t;

/* The daily summary's figures, on the webhooks thread: one GetProgress through the backend. */
static int s_webhook_progress(void *ctx, const char *campaign, const char *unit, char **json_out)
{
    gw_t *gw = ctx;
    Phuxanh__Activation__V1__GetProgressRequest q =
        PHUXANH__ACTIVATION__V1__GET_PROGRESS_REQUEST__INIT;
    q.campaign_id = (char *)campaign;
    q.unit_code = (char *)unit;
    ProtobufCMessage *reply = NULL;
    px_status_t st;
    if (gw_backend_call_sync(gw->backend, GW_SVC_ACTIVATION,
                             "/phuxanh.activation.v1.ActivationService/GetProgress", &q.base,
                             &phuxanh__activation__v1__get_progress_response__descriptor, 5000,
                             &reply, &st) != PX_OK) {
        return -1;
    }
    *json_out = px_json_from_message(reply, NULL, &st);
    protobuf_c_message_free_unpacked(reply, NULL);
    return *json_out ? 0 : -1;
}

typedef struct {
    gw_t *gw;
    px_metrics_series_t *delivered, *failed, *given_up, *dropped, *pending;
} s_hook_metrics_t;

static void s_webhook_collect(void *data, px_metrics_t *reg)
{
    s_hook_metrics_t *m = data;
    uint64_t delivered = 0, failed = 0, pending = 0, given_up = 0, dropped = 0;
    if (m->gw->webhooks) {
        gw_webhooks_counts(m->gw->webhooks, &delivered, &failed, &pending, &given_up, &dropped);
    }
    px_metrics_set(m->delivered, (double)delivered);
    px_metrics_set(m->failed, (double)failed);
    px_metrics_set(m->given_up, (double)given_up);
    px_metrics_set(m->dropped, (double)dropped);
    px_metrics_set(m->pending, (double)pending);
}

static void s_webhook_metrics(gw_t *gw, s_hook_metrics_t *m)
{
    px_metrics_t *r = gw_stats_registry(gw->stats);
    static const char *const outcome[] = {"outcome", NULL};
    px_metrics_family_t *f =
        px_metrics_counter(r, "px_gateway_webhook_deliveries_total",
                           "Webhook deliveries delivered, tries that failed, deliveries given "
                           "up after a day, and deliveries refused (queue full)",
                           outcome);
    m->gw = gw;
    m->delivered = px_metrics_series(f, (const char *const[]){"delivered"});
    m->failed = px_metrics_series(f, (const char *const[]){"failed_try"});
    m->given_up = px_metrics_series(f, (const char *const[]){"given_up"});
    m->dropped = px_metrics_series(f, (const char *const[]){"dropped"});
    m->pending = px_metrics_series(px_metrics_gauge(r, "px_gateway_webhook_pending",
                                                    "Webhook deliveries waiting to be sent", NULL),
                                   NULL);
    px_metrics_on_collect(r, s_webhook_collect, m);
}

/* Enough descriptors for max-connections plus the services' sockets; the soft limit is
 * often 1,024, below what a gateway holding 1,000 suspended requests needs. */
static void s_raise_nofile(px_log_t *log, int64_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    rlim_t target = (rlim_t)want;
    if (rl.rlim_max != RLIM_INFINITY && target > rl.rlim_max) {
        target = rl.rlim_max;
    }
    if (rl.rlim_cur < target) {
        rl.rlim_cur = target;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            px_log_emit(log, PX_LOG_WARN, "GW-NOFILE", "cannot raise the open file limit",
                        PX_LOG_FIELDS(PX_LS("error", strerror(errno))));
        }
    }
}

/* Tells the service manager (sd_notify) a state change; one that cannot be told is logged and
 * otherwise ignored: the gateway serves either way. */
static void s_notify(px_log_t *log, const char *state)
{
    px_status_t st;
    if (px_notify(state, &st) != PX_OK) {
        px_log_emit(log, PX_LOG_WARN, "GW-NOTIFY", "the service manager could not be told",
                    PX_LOG_FIELDS(PX_LS("state", state), PX_LS("error", st.message)));
    }
}

int main(int argc, char **argv)
{
    int rc = 1;
    bool help = false;
    px_status_t st;
    px_config_t *cfg = NULL;
    px_log_t *log = NULL;
    px_curve_t *curve = NULL;
    px_logstream_t *logstream = NULL;
    gw_http_t *http = NULL;
    gw_t gw;
    s_hook_metrics_t hook_metrics;
    memset(&gw, 0, sizeof gw);
    memset(&hook_metrics, 0, sizeof hook_metrics);
    snprintf(gw.version, sizeof gw.version, "%s", PX_VERSION);

    /* Every thread made from here on inherits the mask; only this one takes signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    cfg = px_config_parse("px-gateway", "the HTTP gateway of phuxanh (Connect, REST, dashboard)",
                          s_options, argc, argv, &help, &st);
    if (!cfg) {
        if (!help) {
            fprintf(stderr, "px-gateway: %s\n", st.message);
        }
        return help ? 0 : 2;
    }
    px_log_level_t level;
    if (!px_log_level_parse(px_config_get(cfg, "log-level"), &level)) {
        fprintf(stderr, "px-gateway: log-level: expected debug, info, warn or error\n");
        px_config_destroy(&cfg);
        return 2;
    }
    log = px_log_new("gateway", level, 2);
    gw.log = log;
    if (px_curve_from_config(cfg, log, &curve, &st) != PX_OK) {
        px_log_emit(log, PX_LOG_ERROR, "GW-CONFIG", st.message, NULL);
        rc = 2;
        goto done;
    }
    if (px_logstream_from_config(cfg, "gateway", log, curve, &logstream, &st) != PX_OK) {
        px_log_emit(log, PX_LOG_ERROR, "GW-LOG-STREAM", st.message, NULL);
        rc = st.code == PX_INVALID_ARGUMENT ? 2 : 1;
        goto done;
    }

    int64_t http_threads, backend_threads, max_body, max_header, idle_s, body_s, max_conn, per_ip,
        def_timeout, max_timeout, rate, burst, max_age, ring, hb, pub_cache, pub_rate, pub_burst,
        pub_threshold, daily_hour, retry_first, retry_max, give_up, keepalive;
    const s_int_opt_t ints[] = {
        {"http-threads", 1, 64, &http_threads},
        {"backend-threads", 1, 64, &backend_threads},
        {"max-body", 1024, 64 * 1024 * 1024, &max_body},
        {"max-header", 4096, 1024 * 1024, &max_header},
        {"idle-timeout-s", 1, 3600, &idle_s},
        {"body-timeout-s", 1, 3600, &body_s},
        {"max-connections", 16, 1000000, &max_conn},
        {"per-ip-connections", 0, 1000000, &per_ip},
        {"default-timeout-ms", 1, 3600000, &def_timeout},
        {"max-timeout-ms", 1, 24 * 3600000LL, &max_timeout},
        {"rate", 1, 1000000, &rate},
        {"burst", 1, 1000000, &burst},
        {"progress-max-age-ms", 0, 3600000, &max_age},
        {"feed-ring", 16, 10000000, &ring},
        {"feed-heartbeat-ms", 100, 60000, &hb},
        {"sse-keepalive-s", 1, 3600, &keepalive},
        {"public-cache-ms", 0, 3600000, &pub_cache},
        {"public-rate", 1, 100000, &pub_rate},
        {"public-burst", 1, 100000, &pub_burst},
        {"public-threshold", 0, 1000000, &pub_threshold},
        {"webhooks-daily-hour", -1, 23, &daily_hour},
        {"webhooks-retry-first-ms", 1, 86400000, &retry_first},
        {"webhooks-retry-max-ms", 1, 86400000, &retry_max},
        {"webhooks-give-up-ms", 1, 30 * 86400000LL, &give_up},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (px_config_int(cfg, ints[i].name, ints[i].min, ints[i].max, ints[i].out, &st) != PX_OK) {
            px_log_emit(log, PX_LOG_ERROR, "GW-CONFIG", st.message, NULL);
            rc = 2;
            goto done;
        }
    }
    s_raise_nofile(log, max_conn + 1024);
    gw.limits = (gw_limits_t){(size_t)max_body, def_timeout, max_timeout, keepalive};

    gw.auth = gw_auth_new(px_config_get(cfg, "tokens-file"), (double)rate, (double)burst, log, &st);
    if (!gw.auth) {
        px_log_emit(log, PX_LOG_ERROR, "GW-TOKENS", st.message, NULL);
        rc = 2;
        goto done;
    }
    const char *pub = px_config_get(cfg, "public-progress");
    if (!pub || (strcmp(pub, "on") != 0 && strcmp(pub, "off") != 0)) {
        px_log_emit(log, PX_LOG_ERROR, "GW-CONFIG", "public-progress: on or off", NULL);
        rc = 2;
        goto done;
    }
    if (strcmp(pub, "on") == 0) {
        gw_public_opts_t po = {pub_cache, (double)pub_rate, (double)pub_burst, (int)pub_threshold};
        gw.public_progress = gw_public_new(&po);
    }
    gw.progress = gw_progress_new(max_age);
    gw.stats = gw_stats_new(&gw);
    gw_backend_opts_t bo = {
        .endpoints = {[GW_SVC_ROSTER] = px_config_get(cfg, "roster-endpoints"),
                      [GW_SVC_ACTIVATION] = px_config_get(cfg, "activation-endpoints")},
        .threads = (int)backend_threads,
        .stats = gw.stats,
        .log = log,
        .curve = curve,
    };
    gw.backend = gw.progress && gw.stats ? gw_backend_new(&bo, &st) : NULL;
    if (!gw.backend) {
        px_log_emit(log, PX_LOG_ERROR, "GW-START", gw.progress ? st.message : "out of memory",
                    NULL);
        goto done;
    }
    const char *hooks_file = px_config_get(cfg, "webhooks-file");
    if (hooks_file && *hooks_file) {
        const char *state_dir = px_config_get(cfg, "state-dir");
        if (!state_dir || !*state_dir) {
            px_log_emit(log, PX_LOG_ERROR, "GW-CONFIG",
                        "state-dir: must be set when webhooks-file is (the journal lives there)",
                        NULL);
            rc = 2;
            goto done;
        }
        gw_webhooks_opts_t wo = {
            .subscribers_file = hooks_file,
            .state_dir = state_dir,
            .units = gw_backend_units(gw.backend),
            .progress = s_webhook_progress,
            .progress_ctx = &gw,
            .daily_hour = (int)daily_hour,
            .retry_first_ms = retry_first,
            .retry_max_ms = retry_max,
            .give_up_after_ms = give_up,
            .log = log,
        };
        gw.webhooks = gw_webhooks_new(&wo, &st);
        if (!gw.webhooks) {
            px_log_emit(log, PX_LOG_ERROR, "GW-WEBHOOKS", st.message, NULL);
            rc = 2;
            goto done;
        }
        s_webhook_metrics(&gw, &hook_metrics);
    }
    gw_feed_opts_t fo = {
        .endpoints = px_config_get(cfg, "activation-feed"),
        .ring = (size_t)ring,
        .heartbeat_ms = (int)hb,
        .progress = gw.progress,
        .on_change = gw.webhooks ? gw_webhooks_on_change : NULL,
        .on_change_ctx = gw.webhooks,
        .log = log,
        .curve = curve,
    };
    gw.feed = gw_feed_new(&fo, &st);
    if (!gw.feed) {
        px_log_emit(log, PX_LOG_ERROR, "GW-START", st.message, NULL);
        goto done;
    }
    gw_http_opts_t ho = {
        .listen = px_config_get(cfg, "http-listen"),
        .threads = (int)http_threads,
        .max_body = (size_t)max_body,
        .max_header = (size_t)max_header,
        .idle_timeout_s = (int)idle_s,
        .body_timeout_s = (int)body_s,
        .max_connections = (unsigned)max_conn,
        .per_ip_connections = (unsigned)per_ip,
        .gw = &gw,
        .log = log,
    };
    http = gw_http_new(&ho, &st);
    gw.http = http;
    if (!http) {
        px_log_emit(log, PX_LOG_ERROR, "GW-START", st.message, NULL);
        goto done;
    }
    px_log_emit(log, PX_LOG_INFO, "GW-START", "serving",
                PX_LOG_FIELDS(PX_LS("listen", ho.listen), PX_LI("port", gw_http_port(http)),
                              PX_LI("tokens", (int64_t)gw_auth_token_count(gw.auth))));
    /* Scripts wait for this line on stdout to know the gateway is reachable. */
    printf("READY http://127.0.0.1:%u\n", (unsigned)gw_http_port(http));
    fflush(stdout);
    s_notify(log, "READY=1");

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            if (gw.webhooks && gw_webhooks_reload(gw.webhooks, &st) != PX_OK) {
                px_log_emit(log, PX_LOG_ERROR, "GW-WEBHOOKS-RELOAD",
                            "subscribers file refused; the old subscribers stay",
                            PX_LOG_FIELDS(PX_LS("detail", st.message)));
            }
            if (curve) {
                px_curve_reload(curve, &st); /* logs its outcome */
            }
            if (gw_auth_reload(gw.auth, &st) == PX_OK) {
                px_log_emit(log, PX_LOG_INFO, "GW-TOKENS-RELOAD", "tokens reloaded",
                            PX_LOG_FIELDS(PX_LI("tokens", (int64_t)gw_auth_token_count(gw.auth))));
            } else {
                px_log_emit(log, PX_LOG_ERROR, "GW-TOKENS-RELOAD",
                            "token file refused; the old tokens stay",
                            PX_LOG_FIELDS(PX_LS("detail", st.message)));
            }
            continue;
        }
        if (sig == SIGINT || sig == SIGTERM) {
            break;
        }
    }
    px_log_emit(log, PX_LOG_INFO, "GW-STOP", "stopping", NULL);
    s_notify(log, "STOPPING=1");
    rc = 0;
done:
    /* Order matters: no new connections; streams ended; calls answered; then the server,
     * which must have no request left suspended when it stops. */
    if (http) {
        gw_http_quiesce(http);
    }
    if (gw.feed) {
        gw_feed_close(gw.feed);
    }
    /* The feed's thread has stopped: no more changes reach the webhooks. Their thread goes
     * before the backend's, since a daily summary may be waiting on a call. */
    gw_webhooks_destroy(&gw.webhooks);
    if (gw.backend) {
        gw_backend_stop(gw.backend);
    }
    gw.http = NULL; /* the stats' collect hook reads it */
    gw_http_destroy(&http);
    gw_feed_destroy(&gw.feed); /* after the server: ending streams still tell the feed */
    gw_backend_destroy(&gw.backend);
    gw_stats_destroy(&gw.stats);
    gw_progress_destroy(&gw.progress);
    gw_auth_destroy(&gw.auth);
    gw_public_destroy(&gw.public_progress);
    if (rc == 0) {
        px_log_emit(log, PX_LOG_INFO, "GW-STOP", "stopped", NULL);
    }
    px_logstream_destroy(&logstream); /* after the last line, which it still publishes */
    px_curve_destroy(&curve);         /* after every socket that used it */
    px_log_destroy(&log);
    px_config_destroy(&cfg);
    return rc;
}
