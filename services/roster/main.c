/*
 * main.c - px-roster: units, volunteers, campaigns, waves, assignments, duty
 * checks and wave planning (phuxanh.roster.v1.RosterService).
 *
 * Each file contributes the table of the methods it implements; this one
 * joins them and hands the service to the common service main.
 */
#include <stdlib.h>
#include <string.h>

#include "phuxanh/service.h"
#include "roster.h"

extern const px_migration_t px_roster_migrations[];
extern const size_t px_roster_migrations_count;

static const px_config_option_t s_options[] = {
    {"plan-progress-timeout-ms", "PX_PLAN_PROGRESS_TIMEOUT_MS", "2000",
     "how long PlanWave waits for the activation service's progress"},
    {"noshow-lookback-days", "PX_NOSHOW_LOOKBACK_DAYS", "28",
     "a no-show within this many days puts a volunteer last in PlanWave"},
    /* The activation service passes on whom its callers act for when it asks about units,
     * campaigns and duty: it must be trusted here for that. */
    {"on-behalf-callers", "PX_ON_BEHALF_CALLERS", "gateway,pxctl,activation",
     "callers (comma-separated) trusted to say whom they act for (x-on-behalf-of), which audit "
     "rows keep"},
    {NULL, NULL, NULL, NULL},
};

static const char *const s_peers[] = {"activation", NULL};

static void *s_state_new(const px_config_t *cfg, px_db_t *db, px_log_t *log, px_status_t *st)
{
    (void)db;
    (void)log;
    int64_t timeout = 0, lookback = 0;
    if (px_config_int(cfg, "plan-progress-timeout-ms", 1, 600000, &timeout, st) != PX_OK ||
        px_config_int(cfg, "noshow-lookback-days", 0, 3650, &lookback, st) != PX_OK) {
        return NULL;
    }
    roster_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    self->plan_progress_timeout_ms = (int)timeout;
    self->noshow_lookback_days = (int)lookback;
    return self;
}

static void s_state_destroy(void **state_p)
{
    free(*state_p);
    *state_p = NULL;
}

int main(int argc, char **argv)
{
    const px_service_methods_t methods[] = {
        {roster_units_methods, roster_units_methods_count},
        {roster_volunteers_methods, roster_volunteers_methods_count},
        {roster_campaigns_methods, roster_campaigns_methods_count},
        {roster_assignments_methods, roster_assignments_methods_count},
        {roster_duty_methods, roster_duty_methods_count},
        {roster_planner_methods, roster_planner_methods_count},
        {roster_imports_methods, roster_imports_methods_count},
    };
    px_service_def_t def = {
        .name = "roster",
        .summary = "phuxanh roster service: units, volunteers, waves, assignments, duty checks",
        .default_listen = "tcp://127.0.0.1:7101",
        .descriptor = &phuxanh__roster__v1__roster_service__descriptor,
        .methods = methods,
        .nmethods = sizeof methods / sizeof methods[0],
        .migrations = px_roster_migrations,
        .nmigrations = px_roster_migrations_count,
        .peers = s_peers,
        .options = s_options,
        .on_behalf_option = "on-behalf-callers",
        .state_new = s_state_new,
        .state_destroy = s_state_destroy,
    };
    return px_service_main(&def, argc, argv);
}
