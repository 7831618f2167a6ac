/*
 * service.h - the common main() of a phuxanh service process.
 *
 * Every service does the same things around its handlers: read PX_* config and
 * flags, log as JSON, connect to its database with retry, apply its embedded
 * migrations under an advisory lock, serve its RPC service plus Health, and
 * stop gracefully on SIGTERM. A service describes itself in a px_service_def_t
 * and calls px_service_main from its main().
 */
#ifndef PHUXANH_SERVICE_H
#define PHUXANH_SERVICE_H

#include "phuxanh/config.h"
#include "phuxanh/db.h"
#include "phuxanh/log.h"
#include "phuxanh/metrics.h"
#include "phuxanh/rpc.h"

/* One table of handlers; a service's handler files export one each. */
typedef struct {
    const px_rpc_method_t *methods;
    size_t count;
} px_service_methods_t;

typedef struct {
    const char *name;    /* "roster": logs, advisory lock, x-caller of its outgoing calls */
    const char *summary; /* one line for --help */
    const char *default_listen;
    const ProtobufCServiceDescriptor *descriptor;
    /* The handlers, in as many tables as the service has handler files. */
    const px_service_methods_t *methods;
    size_t nmethods;
    const px_migration_t *migrations;
    size_t nmigrations;
    /* Peers this service calls: for each name N, option "N-endpoints" / PX_N_ENDPOINTS. */
    const char *const *peers;
    /* Service-specific options (NULL-name terminated), or NULL. */
    const px_config_option_t *options;
    /* The name of the option (one of `options`) that lists the callers trusted to send
     * x-on-behalf-of (px_rpc_server_opts_t.on_behalf_callers), or NULL: nobody. */
    const char *on_behalf_option;
    /* Builds the state shared by all handlers after migrations ran; may be NULL. */
    void *(*state_new)(const px_config_t *cfg, px_db_t *db, px_log_t *log, px_status_t *st);
    void (*state_destroy)(void **state_p);
    /* Declares the service's own metric families in the server's registry (served with the
     * runtime's by GetMetrics), after state_new and before serving; may be NULL. */
    px_code_t (*metrics)(void *state, px_metrics_t *metrics, px_status_t *st);
    /* Called once serving, from the main thread's view; may start background threads. */
    px_code_t (*started)(void *state, const px_config_t *cfg, px_status_t *st);
    /* Called on SIGHUP, after the runtime re-read its CURVE allow-list; may be NULL. */
    px_code_t (*reload)(void *state, px_status_t *st);
} px_service_def_t;

/* Runs the service until SIGTERM/SIGINT. Returns the process exit code. */
int px_service_main(const px_service_def_t *def, int argc, char **argv);

#endif
