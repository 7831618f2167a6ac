/*
 * activation_double.c - px-activation-double: a stand-in for the activation
 * service that answers only phuxanh.activation.v1.ActivationService/GetProgress,
 * from figures given on the command line.
 *
 * It exists because the real activation service (issue 4) is not written yet,
 * and the roster's PlanWave tests need a GetProgress they can steer: chosen
 * targets and activations, a slow answer (past the planner's budget), an error.
 * Replace it in the tests with px-activation once that service can be seeded
 * with targets and events.
 *
 *   px-activation-double --listen=tcp://127.0.0.1:0
 *       --progress=25966:10850:1200,25963:10150:0   unit:target:activated, comma separated
 *       [--delay-ms=N]     sleep before answering
 *       [--fail-code=N]    answer every call with this status code (and a message)
 *       [--campaign=ID]    answer NOT_FOUND for any other campaign (default: any campaign)
 *
 * The double knows no tree: asked for a unit that is in --progress it answers that unit's row
 * and no children; asked for any other unit (a district, a province) it answers every unit
 * of --progress as a child, ordered by code, and their sum as the unit's row. It prints
 * "READY <endpoint>" on stdout once it serves, like every service on the common main.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/clock.h"
#include "phuxanh/rpc.h"
#include "phuxanh/service.h"

/* Enough for every ward of a province, and a bound on what the command line may ask for. */
#define DOUBLE_MAX_ROWS 2000
#define DOUBLE_CODE_MAX 32

typedef struct {
    char code[DOUBLE_CODE_MAX + 1];
    int32_t target;
    int32_t activated;
} s_row_t;

typedef struct {
    s_row_t rows[DOUBLE_MAX_ROWS];
    size_t n;
    int64_t delay_ms;
    int64_t fail_code;
    char *campaign;
} s_state_t;

static int s_row_cmp(const void *a, const void *b)
{
    return strcmp(((const s_row_t *)a)->code, ((const s_row_t *)b)->code);
}

/* Parses "unit:target:activated,..." into state. */
static px_code_t s_parse_progress(s_state_t *self, const char *spec, px_status_t *st)
{
    const char *p = spec;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[128];
        if (len == 0 || len >= sizeof item) {
            return px_status_set(st, PX_INVALID_ARGUMENT, "progress: bad item near \"%.40s\"", p);
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (self->n == DOUBLE_MAX_ROWS) {
            return px_status_set(st, PX_INVALID_ARGUMENT, "progress: more than %d units",
                                 DOUBLE_MAX_ROWS);
        }
        s_row_t *row = &self->rows[self->n];
        long target = 0, activated = 0;
        char extra;
        /* 32 = DOUBLE_CODE_MAX */
        if (sscanf(item, "%32[^:]:%ld:%ld%c", row->code, &target, &activated, &extra) != 3 ||
            target < 0 || activated < 0 || target > INT32_MAX || activated > INT32_MAX) {
            return px_status_set(st, PX_INVALID_ARGUMENT,
                                 "progress: \"%s\" is not unit:target:activated", item);
        }
        row->target = (int32_t)target;
        row->activated = (int32_t)activated;
        self->n++;
        p = end ? end + 1 : NULL;
    }
    qsort(self->rows, self->n, sizeof self->rows[0], s_row_cmp);
    return PX_OK;
}

static Phuxanh__Activation__V1__ProgressRow *s_row_new(px_rpc_ctx_t *ctx, const char *code,
                                                       int64_t target, int64_t activated)
{
    Phuxanh__Activation__V1__ProgressRow *r = px_rpc_ctx_alloc(ctx, sizeof *r);
    if (!r) {
        return NULL;
    }
    Phuxanh__Activation__V1__ProgressRow init = PHUXANH__ACTIVATION__V1__PROGRESS_ROW__INIT;
    *r = init;
    r->unit_code = px_rpc_ctx_strdup(ctx, code);
    r->unit_name = px_rpc_ctx_strdup(ctx, code);
    if (!r->unit_code || !r->unit_name) {
        return NULL;
    }
    r->target = (int32_t)(target > INT32_MAX ? INT32_MAX : target);
    r->activated = (int32_t)(activated > INT32_MAX ? INT32_MAX : activated);
    r->collected = r->activated;
    r->approved = r->activated;
    r->percent = target > 0 ? 100.0 * (double)activated / (double)target : 0;
    r->activation_rate = activated > 0 ? 100.0 : 0;
    r->green = target > 0 && activated >= target;
    return r;
}

static px_code_t s_get_progress(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    const Phuxanh__Activation__V1__GetProgressRequest *req =
        (const Phuxanh__Activation__V1__GetProgressRequest *)request;
    Phuxanh__Activation__V1__GetProgressResponse *rep =
        (Phuxanh__Activation__V1__GetProgressResponse *)reply;
    const s_state_t *self = px_rpc_ctx_state(ctx);
    if (self->delay_ms > 0) {
        px_sleep_us(self->delay_ms * 1000);
    }
    if (self->fail_code > 0) {
        return px_rpc_fail(ctx, (px_code_t)self->fail_code, "activation double told to fail");
    }
    if (!req->campaign_id || !*req->campaign_id) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "campaign_id: must be set");
    }
    if (!req->unit_code || !*req->unit_code) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "unit_code: must be set");
    }
    if (self->campaign && *self->campaign && strcmp(self->campaign, req->campaign_id) != 0) {
        return px_rpc_fail(ctx, PX_NOT_FOUND, "campaign_id: no campaign \"%.64s\"",
                           req->campaign_id);
    }
    for (size_t i = 0; i < self->n; i++) {
        if (strcmp(self->rows[i].code, req->unit_code) == 0) {
            rep->unit =
                s_row_new(ctx, self->rows[i].code, self->rows[i].target, self->rows[i].activated);
            return rep->unit ? PX_OK : px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        }
    }
    rep->children = px_rpc_ctx_alloc(ctx, (self->n + 1) * sizeof *rep->children);
    if (!rep->children) {
        return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    int64_t target = 0, activated = 0;
    for (size_t i = 0; i < self->n; i++) {
        rep->children[i] =
            s_row_new(ctx, self->rows[i].code, self->rows[i].target, self->rows[i].activated);
        if (!rep->children[i]) {
            return px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
        }
        target += self->rows[i].target;
        activated += self->rows[i].activated;
    }
    rep->n_children = self->n;
    rep->unit = s_row_new(ctx, req->unit_code, target, activated);
    return rep->unit ? PX_OK : px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
}

static const px_rpc_method_t s_methods[] = {
    {"GetProgress", s_get_progress},
};

static const px_config_option_t s_options[] = {
    {"progress", "PX_DOUBLE_PROGRESS", "", "unit:target:activated,... answered by GetProgress"},
    {"delay-ms", "PX_DOUBLE_DELAY_MS", "0", "sleep this long before answering"},
    {"fail-code", "PX_DOUBLE_FAIL_CODE", "0", "answer every call with this status code"},
    {"campaign", "PX_DOUBLE_CAMPAIGN", "", "the only campaign known (empty: any)"},
    {NULL, NULL, NULL, NULL},
};

static void s_state_destroy(void **state_p)
{
    s_state_t *self = *state_p;
    if (self) {
        free(self->campaign);
        free(self);
        *state_p = NULL;
    }
}

static void *s_state_new(const px_config_t *cfg, px_db_t *db, px_log_t *log, px_status_t *st)
{
    (void)db;
    (void)log;
    s_state_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    const char *campaign = px_config_get(cfg, "campaign");
    self->campaign = strdup(campaign ? campaign : "");
    if (!self->campaign ||
        px_config_int(cfg, "delay-ms", 0, 600000, &self->delay_ms, st) != PX_OK ||
        px_config_int(cfg, "fail-code", 0, 16, &self->fail_code, st) != PX_OK ||
        s_parse_progress(self, px_config_get(cfg, "progress"), st) != PX_OK) {
        if (!self->campaign) {
            px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        }
        void *p = self;
        s_state_destroy(&p);
        return NULL;
    }
    return self;
}

int main(int argc, char **argv)
{
    px_service_def_t def = {
        .name = "activation-double",
        .summary = "test double of ActivationService/GetProgress for the roster tests",
        .default_listen = "tcp://127.0.0.1:0",
        .descriptor = &phuxanh__activation__v1__activation_service__descriptor,
        .methods = s_methods,
        .nmethods = sizeof s_methods / sizeof s_methods[0],
        .options = s_options,
        .state_new = s_state_new,
        .state_destroy = s_state_destroy,
    };
    return px_service_main(&def, argc, argv);
}
