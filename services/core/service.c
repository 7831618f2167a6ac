/*
 * service.c - px_service_main: config, logging, database, migrations, serving.
 *
 * The database must be migrated before the first call is served, so start-up
 * waits for PostgreSQL (bounded by db-wait-s) rather than serving a schema it
 * has not checked; once serving, an outage only makes calls UNAVAILABLE and
 * health NOT_SERVING until the database returns.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/clock.h"
#include "phuxanh/logstream.h"
#include "phuxanh/notify.h"
#include "phuxanh/service.h"

#define MAX_OPTIONS 64

static const px_config_option_t s_common[] = {
    {"listen", "PX_LISTEN", NULL, "ZeroMQ endpoint to bind (tcp://host:port)"},
    {"db-url", "PX_DB_URL", NULL, "PostgreSQL URL of this service's own database"},
    {"db-migrate-url", "PX_DB_MIGRATE_URL", NULL,
     "PostgreSQL URL the migrations run as (the database's owner); unset: db-url"},
    {"db-wait-s", "PX_DB_WAIT_S", "60", "how long start-up waits for the database"},
    {"workers", "PX_WORKERS", "0", "worker threads, each with a database connection (0: cores)"},
    {"max-message", "PX_MAX_MESSAGE", "4194304", "largest request or reply in bytes"},
    {"drain-ms", "PX_DRAIN_MS", "5000", "how long a stop waits for calls in flight"},
    {"log-level", "PX_LOG_LEVEL", "info", "debug, info, warn or error"},
    PX_CURVE_CONFIG_OPTIONS,
    PX_LOGSTREAM_OPTIONS,
};

/* Builds the option table: common, then peers, then the service's own. Peer option names and
 * variables are allocated and listed in owned[] for freeing. */
static px_config_option_t *s_options(const px_service_def_t *def, char **owned, size_t *nowned)
{
    px_config_option_t *opts = calloc(MAX_OPTIONS + 1, sizeof *opts);
    if (!opts) {
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < sizeof s_common / sizeof s_common[0]; i++) {
        opts[n] = s_common[i];
        if (strcmp(opts[n].name, "listen") == 0) {
            opts[n].def = def->default_listen;
        }
        n++;
    }
    for (size_t i = 0; def->peers && def->peers[i] && n < MAX_OPTIONS; i++) {
        char name[128], env[128];
        snprintf(name, sizeof name, "%s-endpoints", def->peers[i]);
        snprintf(env, sizeof env, "PX_%s_ENDPOINTS", def->peers[i]);
        for (char *p = env; *p; p++) {
            *p = (*p == '-') ? '_' : (char)((*p >= 'a' && *p <= 'z') ? *p - 32 : *p);
        }
        owned[(*nowned)++] = strdup(name);
        owned[(*nowned)++] = strdup(env);
        opts[n++] = (px_config_option_t){owned[*nowned - 2], owned[*nowned - 1], NULL,
                                         "ZeroMQ endpoints of this peer, comma separated"};
    }
    for (size_t i = 0; def->options && def->options[i].name && n < MAX_OPTIONS; i++) {
        opts[n++] = def->options[i];
    }
    return opts;
}

/* Tells the service manager (sd_notify) a state change; a manager that cannot be told is
 * logged and otherwise ignored: the service serves either way. */
static void s_notify(px_log_t *log, const char *state)
{
    px_status_t st;
    if (px_notify(state, &st) != PX_OK) {
        px_log_emit(log, PX_LOG_WARN, "SVC-NOTIFY", "the service manager could not be told",
                    PX_LOG_FIELDS(PX_LS("state", state), PX_LS("error", st.message)));
    }
}

/* Applies the service's migrations as the role of migrate_url when one is given (the owner of
 * the database: tables and their grants are made by it, see deploy/postgres/), else as the
 * role of db-url. The connection is closed afterwards, so nothing serves as the owner. */
static px_code_t s_migrate(const px_service_def_t *def, const char *migrate_url,
                           int64_t deadline_us, px_log_t *log, px_status_t *st)
{
    const char *url = migrate_url;
    if (!url || !*url) {
        return PX_OK; /* migrated on the serving connection, below */
    }
    px_db_t *db = px_db_new(url, log);
    if (!db) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    px_code_t code = px_db_connect(db, deadline_us, st);
    if (code == PX_OK) {
        code = px_db_migrate(db, def->name, def->migrations, def->nmigrations, st);
    }
    px_db_destroy(&db);
    return code;
}

static int s_fail(px_log_t *log, const char *event, const px_status_t *st)
{
    if (log) {
        px_log_emit(log, PX_LOG_ERROR, event, st->message,
                    PX_LOG_FIELDS(PX_LS("code", px_code_name(st->code))));
    } else {
        fprintf(stderr, "%s\n", st->message);
    }
    return 1;
}

/* Blocks until SIGINT or SIGTERM (blocked in every thread by px_rpc_block_signals, with
 * SIGHUP). */
static void s_wait_for_stop(const px_service_def_t *def, px_curve_t *curve, void *state,
                            px_log_t *log)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) {
            continue;
        }
        if (sig != SIGHUP) {
            px_log_emit(log, PX_LOG_INFO, "RPC-SIGNAL", "stop requested",
                        PX_LOG_FIELDS(PX_LI("signal", sig)));
            return;
        }
        /* SIGHUP: the CURVE allow-list again (a bad file keeps the old one), and whatever the
         * service reloads. */
        px_status_t st;
        if (curve) {
            px_curve_reload(curve, &st); /* logs its outcome */
        }
        if (def->reload && def->reload(state, &st) != PX_OK) {
            s_fail(log, "SVC-RELOAD", &st);
        }
    }
}

int px_service_main(const px_service_def_t *def, int argc, char **argv)
{
    int rc = 1;
    bool help = false;
    px_status_t st;
    char *owned[2 * MAX_OPTIONS];
    size_t nowned = 0;
    px_config_t *cfg = NULL;
    px_log_t *log = NULL;
    px_logstream_t *logstream = NULL;
    px_db_t *db = NULL;
    void *state = NULL;
    px_rpc_server_t *server = NULL;
    px_curve_t *curve = NULL;

    px_rpc_block_signals();
    px_config_option_t *opts = s_options(def, owned, &nowned);
    if (!opts) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    cfg = px_config_parse(def->name, def->summary, opts, argc, argv, &help, &st);
    if (!cfg) {
        rc = help ? 0 : 2;
        if (!help) {
            fprintf(stderr, "%s: %s\n", def->name, st.message);
        }
        goto done;
    }
    px_log_level_t level;
    if (!px_log_level_parse(px_config_get(cfg, "log-level"), &level)) {
        fprintf(stderr, "%s: log-level: \"%s\" is not debug, info, warn or error\n", def->name,
                px_config_get(cfg, "log-level"));
        rc = 2;
        goto done;
    }
    log = px_log_new(def->name, level, 2);
    int64_t workers = 0, max_message = 0, drain_ms = 0, wait_s = 0;
    if (px_config_int(cfg, "workers", 0, 256, &workers, &st) != PX_OK ||
        px_config_int(cfg, "max-message", 1024, 1 << 30, &max_message, &st) != PX_OK ||
        px_config_int(cfg, "drain-ms", 1, 600000, &drain_ms, &st) != PX_OK ||
        px_config_int(cfg, "db-wait-s", 0, 3600, &wait_s, &st) != PX_OK) {
        rc = 2;
        s_fail(log, "SVC-CONFIG", &st);
        goto done;
    }
    if (px_curve_from_config(cfg, log, &curve, &st) != PX_OK) {
        rc = 2;
        s_fail(log, "SVC-CURVE", &st);
        goto done;
    }
    if (px_logstream_from_config(cfg, def->name, log, curve, &logstream, &st) != PX_OK) {
        rc = st.code == PX_INVALID_ARGUMENT ? 2 : 1;
        s_fail(log, "SVC-LOG-STREAM", &st);
        goto done;
    }
    const char *db_url = px_config_get(cfg, "db-url");
    if (def->migrations && (!db_url || !*db_url)) {
        px_status_set(&st, PX_INVALID_ARGUMENT, "db-url: must be set (PX_DB_URL)");
        rc = 2;
        s_fail(log, "SVC-CONFIG", &st);
        goto done;
    }
    if (db_url && *db_url) {
        int64_t deadline = px_clock_us() + wait_s * 1000000;
        if (s_migrate(def, px_config_get(cfg, "db-migrate-url"), deadline, log, &st) != PX_OK) {
            s_fail(log, "SVC-DB-START", &st);
            goto done;
        }
        const char *mig = px_config_get(cfg, "db-migrate-url");
        db = px_db_new(db_url, log);
        if (!db || px_db_connect(db, deadline, &st) != PX_OK ||
            ((!mig || !*mig) &&
             px_db_migrate(db, def->name, def->migrations, def->nmigrations, &st) != PX_OK)) {
            s_fail(log, "SVC-DB-START", &st);
            goto done;
        }
    }
    if (def->state_new) {
        state = def->state_new(cfg, db, log, &st);
        if (!state) {
            s_fail(log, "SVC-STATE", &st);
            goto done;
        }
    }
    px_rpc_server_opts_t so = {
        .service_name = def->name,
        .endpoint = px_config_get(cfg, "listen"),
        .workers = (int)workers,
        .max_message = (size_t)max_message,
        .db_url = db_url,
        .drain_ms = (int)drain_ms,
        .on_behalf_callers =
            def->on_behalf_option ? px_config_get(cfg, def->on_behalf_option) : NULL,
        .log = log,
        .curve = curve,
    };
    server = px_rpc_server_new(&so, &st);
    if (!server) {
        s_fail(log, "SVC-START", &st);
        goto done;
    }
    for (size_t i = 0; i < def->nmethods; i++) {
        if (px_rpc_server_add(server, def->descriptor, def->methods[i].methods,
                              def->methods[i].count, state, &st) != PX_OK) {
            s_fail(log, "SVC-START", &st);
            goto done;
        }
    }
    if (def->metrics && def->metrics(state, px_rpc_server_metrics(server), &st) != PX_OK) {
        s_fail(log, "SVC-START", &st);
        goto done;
    }
    for (size_t i = 0; def->peers && def->peers[i]; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s-endpoints", def->peers[i]);
        const char *eps = px_config_get(cfg, name);
        if (eps && *eps && px_rpc_server_add_peer(server, def->peers[i], eps, &st) != PX_OK) {
            s_fail(log, "SVC-START", &st);
            goto done;
        }
    }
    if (px_rpc_server_start(server, &st) != PX_OK ||
        (def->started && def->started(state, cfg, &st) != PX_OK)) {
        s_fail(log, "SVC-START", &st);
        goto done;
    }
    /* Scripts wait for this line on stdout to know the service is reachable. */
    printf("READY %s\n", px_rpc_server_endpoint(server));
    fflush(stdout);
    s_notify(log, "READY=1");
    s_wait_for_stop(def, curve, state, log);
    /* Said before the drain, so the manager knows the wait that follows is a stop. */
    s_notify(log, "STOPPING=1");
    px_rpc_server_stop(server);
    rc = 0;
done:
    px_rpc_server_destroy(&server);
    if (def->state_destroy) {
        def->state_destroy(&state);
    }
    /* The last replies of the drain may still be in the sockets' queues: sent before exit. */
    px_rpc_shutdown(2000);
    px_db_destroy(&db);
    px_logstream_destroy(&logstream); /* last, so that the lines of the stop are published */
    px_curve_destroy(&curve);         /* after every socket that used its ZAP handlers */
    px_log_destroy(&log);
    px_config_destroy(&cfg);
    for (size_t i = 0; i < nowned; i++) {
        free(owned[i]);
    }
    free(opts);
    return rc;
}
