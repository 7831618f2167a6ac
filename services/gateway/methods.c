/*
 * methods.c - the public RPCs of the gateway and who may call each.
 *
 * The methods themselves come from the generated service descriptors, so a method
 * added to a proto is served without a change here; what it does (its idempotency
 * level) comes from the protos too, through a table generated at build time
 * (gen_effects.py). What this file adds is policy: the roles allowed each method.
 * A method missing from the policy table is for admin only, so forgetting to list a
 * new method can only make it stricter.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/roster/v1/roster.pb-c.h"

struct gw_effects_row {
    const char *path;
    gw_effects_t effects;
};
extern const struct gw_effects_row gw_effects_rows[];

#define V GW_ROLE_BIT(GW_ROLE_VIEWER)
#define R GW_ROLE_BIT(GW_ROLE_RECORDER)
#define P GW_ROLE_BIT(GW_ROLE_PLANNER)
#define A GW_ROLE_BIT(GW_ROLE_ADMIN)

/* API.md "The gateway over HTTP/1.1": viewer reads; recorder records for its units and reads;
 * planner writes the roster (and targets, which plan the campaign); admin does everything.
 * Volunteers' own records (names, phone numbers) are not for viewers: a dashboard shows them
 * only through TopVolunteers. Person-level methods are admin's, and a recorder's within its
 * units (connect.c checks the units). */
static const struct {
    const char *name;
    unsigned roles;
    bool person_level;
} s_policy[GW_SVC_COUNT][32] = {
    [GW_SVC_ROSTER] =
        {
            {"ListUnits", V | R | P | A, false},
            {"GetUnits", V | R | P | A, false},
            {"GetCampaign", V | R | P | A, false},
            {"ListCampaigns", V | R | P | A, false},
            {"ListWaves", V | R | P | A, false},
            {"GetVolunteer", R | P | A, false},
            {"ListVolunteers", R | P | A, false},
            {"ListAssignments", R | P | A, false},
            {"CheckDuty", R | P | A, false},
            {"UpsertUnits", P | A, false},
            {"UpsertVolunteers", P | A, false},
            {"UpsertCampaign", P | A, false},
            {"UpsertWaves", P | A, false},
            {"Assign", P | A, false},
            {"Unassign", P | A, false},
            {"CheckIn", P | A, false},
            {"CheckOut", P | A, false},
            {"MarkNoShow", P | A, false},
            {"PlanWave", P | A, false},
            {NULL, 0, false},
        },
    [GW_SVC_ACTIVATION] =
        {
            {"SetTargets", P | A, false},
            {"RecordEvents", R | A, false},
            {"GetProgress", V | R | P | A, false},
            {"QueryCounts", V | R | P | A, false},
            {"TopVolunteers", V | R | P | A, false},
            {"ListFollowUps", R | A, true},
            {"ResolveFollowUp", R | A, true},
            {"ListStalled", R | A, true},
            {"GetCitizenStatus", R | A, true},
            {"ForgetCitizen", A, true},
            {NULL, 0, false},
        },
};

#undef V
#undef R
#undef P
#undef A

/* The roster and activation services have 31 methods today; room to grow. */
#define METHODS_MAX 96
#define PATH_MAX_LEN 128

static gw_method_t s_methods[METHODS_MAX];
static char s_paths[METHODS_MAX][PATH_MAX_LEN];
static size_t s_nmethods;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static const ProtobufCServiceDescriptor *s_service_desc(gw_svc_t s)
{
    return s == GW_SVC_ROSTER ? &phuxanh__roster__v1__roster_service__descriptor
                              : &phuxanh__activation__v1__activation_service__descriptor;
}

static void s_build(void)
{
    for (int s = 0; s < GW_SVC_COUNT; s++) {
        const ProtobufCServiceDescriptor *sd = s_service_desc((gw_svc_t)s);
        for (unsigned i = 0; i < sd->n_methods && s_nmethods < METHODS_MAX; i++) {
            gw_method_t *m = &s_methods[s_nmethods];
            char *path = s_paths[s_nmethods];
            snprintf(path, PATH_MAX_LEN, "/%s/%s", sd->name, sd->methods[i].name);
            m->path = path;
            m->name = sd->methods[i].name;
            m->service = (gw_svc_t)s;
            m->desc = &sd->methods[i];
            m->effects = GW_EFFECTS;
            for (size_t k = 0; gw_effects_rows[k].path; k++) {
                if (strcmp(gw_effects_rows[k].path, path) == 0) {
                    m->effects = gw_effects_rows[k].effects;
                }
            }
            m->roles = GW_ROLE_BIT(GW_ROLE_ADMIN);
            for (size_t k = 0; s_policy[s][k].name; k++) {
                if (strcmp(s_policy[s][k].name, m->name) == 0) {
                    m->roles = s_policy[s][k].roles | GW_ROLE_BIT(GW_ROLE_ADMIN);
                    m->person_level = s_policy[s][k].person_level;
                }
            }
            s_nmethods++;
        }
    }
}

const gw_method_t *gw_method_find(const char *path)
{
    pthread_once(&s_once, s_build);
    for (size_t i = 0; i < s_nmethods; i++) {
        if (strcmp(s_methods[i].path, path) == 0) {
            return &s_methods[i];
        }
    }
    return NULL;
}

const gw_method_t *gw_method_at(size_t i)
{
    pthread_once(&s_once, s_build);
    return i < s_nmethods ? &s_methods[i] : NULL;
}

size_t gw_method_count(void)
{
    pthread_once(&s_once, s_build);
    return s_nmethods;
}

const char *gw_svc_name(gw_svc_t s)
{
    static const char *const names[GW_SVC_COUNT] = {"roster", "activation"};
    return (unsigned)s < GW_SVC_COUNT ? names[s] : "?";
}
