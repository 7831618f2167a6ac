/*
 * main.c - px-activation: targets, application events and the citizen state
 * machine, counts and progress (phuxanh.activation.v1.ActivationService).
 *
 * Each file contributes the table of the methods it implements; this one
 * joins them, reads the citizen-key secret (refusing to start without it:
 * without the secret no citizen could be told from another), and hands the
 * service to the common service main. The secret is never logged.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "phuxanh/service.h"

extern const px_migration_t px_activation_migrations[];
extern const size_t px_activation_migrations_count;

/* A constant's value as the text of an option's default. */
#define S_STR_(x) #x
#define S_STR(x) S_STR_(x)

static const px_config_option_t s_options[] = {
    {"citizen-key-file", "PX_CITIZEN_KEY_FILE", NULL,
     "file holding the citizen-key secret: 64 hex characters (32 bytes)"},
    {"citizen-key", "PX_CITIZEN_KEY", NULL,
     "the citizen-key secret itself, 64 hex characters (prefer the file)"},
    {"verify-interval-ms", "PX_VERIFY_INTERVAL_MS", "30000",
     "how often the background pass re-checks unverified volunteers and refreshes units"},
    {"retention-days", "PX_RETENTION_DAYS", "90",
     "days after a campaign's last day when its person-level data is purged (counts stay)"},
    {"retention-interval-s", "PX_RETENTION_INTERVAL_S", "3600",
     "how often the retention pass runs (the first one an interval after start)"},
    {"pub-endpoint", "PX_PUB_ENDPOINT", "tcp://127.0.0.1:7103",
     "where the PUB socket of count changes (CountsChanged) binds; empty disables it"},
    {"pub-heartbeat-ms", "PX_PUB_HEARTBEAT_MS", S_STR(ACT_PUB_HEARTBEAT_DEFAULT_MS),
     "how often the PUB socket sends a heartbeat (FeedHeartbeat, topic hb): 100 to 60000"},
    {"pub-queue-max", "PX_PUB_QUEUE_MAX", S_STR(ACT_PUB_QUEUE_DEFAULT),
     "count changes waiting to be published, 4 to 262144; past it they are dropped"},
    {"read-db-url", "PX_READ_DB_URL", NULL,
     "PostgreSQL URL of a streaming replica for count and progress reads; unset: the primary"},
    {"read-max-lag-ms", "PX_READ_MAX_LAG_MS", "5000",
     "a replica further behind than this (0 to 3600000) is skipped for the primary"},
    {"read-probe-ms", "PX_READ_PROBE_MS", "1000",
     "how often the replica's reachability and lag are checked (100 to 60000)"},
    {"person-readers", "PX_PERSON_READERS", "gateway,pxctl",
     "callers (comma-separated) allowed one person's records: GetCitizenStatus, ForgetCitizen, "
     "the follow-up lists, ListStalled; and to say whom they act for (x-on-behalf-of)"},
    {NULL, NULL, NULL, NULL},
};

static const char *const s_peers[] = {"roster", NULL};

/* Reads 64 hex characters (surrounding spaces and a newline allowed) into secret. */
static px_code_t s_secret_parse(const char *text, unsigned char *secret, px_status_t *st)
{
    size_t len = 0;
    const char *end = NULL;
    while (*text == ' ' || *text == '\n' || *text == '\r' || *text == '\t') {
        text++;
    }
    if (sodium_hex2bin(secret, ACT_SECRET_BYTES, text, strlen(text), " \r\n\t", &len, &end) != 0 ||
        len != ACT_SECRET_BYTES || (end && *end)) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "citizen-key: must be 64 hex characters (32 bytes)");
    }
    return PX_OK;
}

static px_code_t s_secret_load(const px_config_t *cfg, unsigned char *secret, px_status_t *st)
{
    const char *file = px_config_get(cfg, "citizen-key-file");
    const char *inline_key = px_config_get(cfg, "citizen-key");
    if (file && *file) {
        char buf[256] = {0};
        FILE *f = fopen(file, "r");
        if (!f) {
            return px_status_set(st, PX_INVALID_ARGUMENT, "citizen-key-file: cannot open: %s",
                                 strerror(errno));
        }
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        px_code_t code = s_secret_parse(buf, secret, st);
        sodium_memzero(buf, sizeof buf);
        return code;
    }
    if (inline_key && *inline_key) {
        return s_secret_parse(inline_key, secret, st);
    }
    return px_status_set(st, PX_INVALID_ARGUMENT,
                         "citizen-key: must be set (citizen-key-file / PX_CITIZEN_KEY_FILE, or "
                         "citizen-key / PX_CITIZEN_KEY): refusing to start without it");
}

/* The read replica, when read-db-url is set: its prober starts now, so the first reads after
 * start already know whether it is usable (until its first probe they go to the primary). */
static px_code_t s_replica_start(act_t *self, const px_config_t *cfg, px_log_t *log,
                                 px_status_t *st)
{
    const char *url = px_config_get(cfg, "read-db-url");
    int64_t lag = 0, probe = 0;
    if (px_config_int(cfg, "read-max-lag-ms", 0, 3600000, &lag, st) != PX_OK ||
        px_config_int(cfg, "read-probe-ms", 100, 60000, &probe, st) != PX_OK) {
        return st->code;
    }
    if (!url || !*url) {
        return PX_OK;
    }
    self->replica =
        act_replica_start(url, px_config_get(cfg, "db-url"), (int)lag, (int)probe, log, st);
    return self->replica ? PX_OK : st->code;
}

static void s_state_destroy(void **state_p)
{
    act_t *self = *state_p;
    if (self) {
        act_verifier_stop(&self->verifier);
        act_retention_stop(&self->retention);
        act_pub_stop(&self->pub);
        act_replica_stop(&self->replica);
        px_curve_destroy(&self->curve); /* after the feed and the verifier that used it */
        act_units_destroy(&self->units);
        act_campaigns_destroy(&self->campaigns);
        sodium_memzero(self->secret, sizeof self->secret);
        free(self);
        *state_p = NULL;
    }
}

static void *s_state_new(const px_config_t *cfg, px_db_t *db, px_log_t *log, px_status_t *st)
{
    if (sodium_init() < 0) {
        px_status_set(st, PX_INTERNAL, "libsodium could not be initialised");
        return NULL;
    }
    int64_t interval = 0;
    if (px_config_int(cfg, "verify-interval-ms", 10, 86400000, &interval, st) != PX_OK) {
        return NULL;
    }
    act_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    void *state = self;
    self->log = log;
    self->verify_interval_ms = (int)interval;
    if (s_secret_load(cfg, self->secret, st) != PX_OK ||
        px_curve_from_config(cfg, log, &self->curve, st) != PX_OK) {
        goto fail;
    }
    const char *readers = px_config_get(cfg, "person-readers");
    if (strlen(readers ? readers : "") >= sizeof self->person_readers) {
        px_status_set(st, PX_INVALID_ARGUMENT, "person-readers: at most %zu characters",
                      sizeof self->person_readers - 1);
        goto fail;
    }
    snprintf(self->person_readers, sizeof self->person_readers, "%s", readers ? readers : "");
    self->units = act_units_new();
    if (!self->units) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if (act_units_load(self->units, db, st) != PX_OK) {
        goto fail;
    }
    self->campaigns = act_campaigns_new();
    if (!self->campaigns) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if (act_campaigns_load(self->campaigns, db, st) != PX_OK) {
        goto fail;
    }
    /* Started before serving, so the workers read self->pub only once it is final. A bind
     * that fails (the port taken) leaves publishing off rather than the service down: the
     * counts are the contract, the live feed is for dashboards. */
    const char *pub = px_config_get(cfg, "pub-endpoint");
    int64_t hb_ms = 0, queue_max = 0;
    if (px_config_int(cfg, "pub-heartbeat-ms", ACT_PUB_HEARTBEAT_MIN_MS, ACT_PUB_HEARTBEAT_MAX_MS,
                      &hb_ms, st) != PX_OK ||
        px_config_int(cfg, "pub-queue-max", ACT_PUB_QUEUE_MIN, ACT_PUB_QUEUE_MAX, &queue_max, st) !=
            PX_OK) {
        goto fail;
    }
    if (pub && *pub) {
        px_status_t pst;
        act_pub_opts_t po = {
            .queue_max = (size_t)queue_max, .heartbeat_ms = (int)hb_ms, .curve = self->curve};
        self->pub = act_pub_start(pub, px_config_get(cfg, "db-url"), &po, log, &pst);
        if (!self->pub) {
            px_log_emit(log, PX_LOG_WARN, "ACT-PUB-OFF", "count changes will not be published",
                        PX_LOG_FIELDS(PX_LS("error", pst.message)));
        }
    }
    if (s_replica_start(self, cfg, log, st) != PX_OK) {
        goto fail;
    }
    return self;
fail:
    s_state_destroy(&state);
    return NULL;
}

static px_code_t s_started(void *state, const px_config_t *cfg, px_status_t *st)
{
    act_t *self = state;
    int64_t days = 0, interval_s = 0;
    if (px_config_int(cfg, "retention-days", 0, 3650, &days, st) != PX_OK ||
        px_config_int(cfg, "retention-interval-s", 1, 86400, &interval_s, st) != PX_OK) {
        return st->code;
    }
    self->retention =
        act_retention_start(self, px_config_get(cfg, "db-url"), (int)days, (int)interval_s, st);
    if (!self->retention) {
        return st->code;
    }
    const char *roster = px_config_get(cfg, "roster-endpoints");
    if (!roster || !*roster) {
        px_log_emit(self->log, PX_LOG_WARN, "ACT-NO-ROSTER",
                    "no roster endpoints: units and duty cannot be checked", NULL);
        return PX_OK;
    }
    self->verifier = act_verifier_start(self, px_config_get(cfg, "db-url"), roster, st);
    return self->verifier ? PX_OK : st->code;
}

/* SIGHUP: the feed's allow-list (the runtime re-reads the server's). */
static px_code_t s_reload(void *state, px_status_t *st)
{
    act_t *self = state;
    return self->curve ? px_curve_reload(self->curve, st) : PX_OK;
}

/* The feed's drops are counted by the publisher (an atomic of its own): copied in at each
 * GetMetrics rather than threading the registry through it. */
static void s_collect(void *data, px_metrics_t *metrics)
{
    (void)metrics;
    act_t *self = data;
    px_metrics_set(self->m_feed_dropped, (double)act_pub_dropped(self->pub));
    long long on_replica = 0, on_primary = 0;
    act_replica_reads(self->replica, &on_replica, &on_primary);
    px_metrics_set(self->m_reads_replica, (double)on_replica);
    px_metrics_set(self->m_reads_primary, (double)on_primary);
    px_metrics_set(self->m_replica_usable, act_replica_usable(self->replica) ? 1 : 0);
    px_metrics_set(self->m_replica_lag, (double)act_replica_lag_ms(self->replica) / 1000.0);
}

static px_code_t s_metrics(void *state, px_metrics_t *metrics, px_status_t *st)
{
    act_t *self = state;
    static const char *const outcome[] = {"outcome", NULL};
    px_metrics_family_t *events = px_metrics_counter(
        metrics, "px_activation_events_total",
        "Events of committed RecordEvents calls, by outcome: recorded, duplicate (a key or a "
        "stage seen before) or refused (the event's own result not OK).",
        outcome);
    px_metrics_family_t *dropped =
        px_metrics_counter(metrics, "px_activation_feed_dropped_total",
                           "Count changes not published on the live feed (CountsChanged): a "
                           "full queue or a slow subscriber.",
                           NULL);
    static const char *const target[] = {"target", NULL};
    px_metrics_family_t *reads = px_metrics_counter(
        metrics, "px_activation_count_reads_total",
        "Count and progress reads by where they ran: replica (read-db-url) or primary (no "
        "replica configured, or it was down or lagging).",
        target);
    px_metrics_family_t *usable =
        px_metrics_gauge(metrics, "px_activation_read_replica_usable",
                         "1 when count and progress reads go to the read replica, else 0.", NULL);
    px_metrics_family_t *lag = px_metrics_gauge(
        metrics, "px_activation_read_replica_lag_seconds",
        "How far the read replica was behind the primary at the last probe; -0.001 when it "
        "could not be reached or none is configured.",
        NULL);
    if (!events || !dropped || !reads || !usable || !lag ||
        px_metrics_on_collect(metrics, s_collect, self) != 0) {
        return px_status_set(st, PX_INTERNAL, "metrics: cannot declare the service's families");
    }
    self->m_events_recorded = px_metrics_series(events, (const char *const[]){"recorded"});
    self->m_events_duplicate = px_metrics_series(events, (const char *const[]){"duplicate"});
    self->m_events_refused = px_metrics_series(events, (const char *const[]){"refused"});
    self->m_feed_dropped = px_metrics_series(dropped, NULL);
    self->m_reads_replica = px_metrics_series(reads, (const char *const[]){"replica"});
    self->m_reads_primary = px_metrics_series(reads, (const char *const[]){"primary"});
    self->m_replica_usable = px_metrics_series(usable, NULL);
    self->m_replica_lag = px_metrics_series(lag, NULL);
    return PX_OK;
}

int main(int argc, char **argv)
{
    const px_service_methods_t methods[] = {
        {act_events_methods, act_events_methods_count},
        {act_progress_methods, act_progress_methods_count},
        {act_counts_methods, act_counts_methods_count},
        {act_followups_methods, act_followups_methods_count},
        {act_citizens_methods, act_citizens_methods_count},
    };
    px_service_def_t def = {
        .name = "activation",
        .summary = "phuxanh activation service: application events, counts, progress",
        .default_listen = "tcp://127.0.0.1:7102",
        .descriptor = &phuxanh__activation__v1__activation_service__descriptor,
        .methods = methods,
        .nmethods = sizeof methods / sizeof methods[0],
        .migrations = px_activation_migrations,
        .nmigrations = px_activation_migrations_count,
        .peers = s_peers,
        .options = s_options,
        /* API.md: only processes trusted for it, the person-readers set, may say whom they
         * act for. */
        .on_behalf_option = "person-readers",
        .state_new = s_state_new,
        .state_destroy = s_state_destroy,
        .metrics = s_metrics,
        .started = s_started,
        .reload = s_reload,
    };
    return px_service_main(&def, argc, argv);
}
