/*
 * campaign_cache.c - the roster's campaigns, cached in memory and in the local
 * campaigns table.
 *
 * Every event and every read names a campaign that must exist, and the
 * retention pass needs each campaign's last day. The roster owns campaigns;
 * asking it on every call would put it on the hot path and make activation
 * fail when it is down, so - as with the unit tree - what it said is kept
 * here: loaded from the local table at start, filled from GetCampaign when an
 * id is unknown, and refreshed by the background pass with ListCampaigns (a
 * campaign's days may move). The roster never deletes a campaign, so neither
 * does the cache.
 *
 * Campaigns are few (one a season per province): a sorted array behind a
 * read-write lock is enough.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "phuxanh/text.h"

/* Only the id is kept in memory: the retention pass reads the days from the table. */
typedef struct {
    char id[ACT_CAMPAIGN_MAX + 1];
} s_campaign_t;

struct act_campaigns_t {
    pthread_rwlock_t lock;
    s_campaign_t *v;
    size_t n, cap;
};

static const px_db_stmt_t s_load = {
    "act_campaigns_load",
    "SELECT id FROM campaigns",
};

static const px_db_stmt_t s_upsert = {
    "act_campaigns_upsert",
    "INSERT INTO campaigns (id, name, starts_on, ends_on) "
    "SELECT i, n, s::date, e::date FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) "
    "AS c(i, n, s, e) ORDER BY i "
    "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, starts_on = EXCLUDED.starts_on, "
    "ends_on = EXCLUDED.ends_on, refreshed_at = now()",
};

act_campaigns_t *act_campaigns_new(void)
{
    act_campaigns_t *self = calloc(1, sizeof *self);
    if (self) {
        pthread_rwlock_init(&self->lock, NULL);
    }
    return self;
}

void act_campaigns_destroy(act_campaigns_t **self_p)
{
    if (*self_p) {
        act_campaigns_t *self = *self_p;
        free(self->v);
        pthread_rwlock_destroy(&self->lock);
        free(self);
        *self_p = NULL;
    }
}

/* The slot of id, or where it would go (binary search); caller holds a lock. */
static size_t s_lower(const act_campaigns_t *self, const char *id)
{
    size_t lo = 0, hi = self->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(self->v[mid].id, id) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Caller holds the write lock. False only when out of memory; an id that could never be
 * asked about is skipped. */
static bool s_put(act_campaigns_t *self, const char *id)
{
    if (!act_code_ok(id, ACT_CAMPAIGN_MAX)) {
        return true;
    }
    size_t i = s_lower(self, id);
    if (i < self->n && strcmp(self->v[i].id, id) == 0) {
        return true;
    }
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        s_campaign_t *v = realloc(self->v, cap * sizeof *v);
        if (!v) {
            return false;
        }
        self->v = v;
        self->cap = cap;
    }
    memmove(&self->v[i + 1], &self->v[i], (self->n - i) * sizeof *self->v);
    snprintf(self->v[i].id, sizeof self->v[i].id, "%s", id);
    self->n++;
    return true;
}

px_code_t act_campaigns_load(act_campaigns_t *self, px_db_t *db, px_status_t *st)
{
    PGresult *res = NULL;
    if (px_db_execp(db, &s_load, 0, NULL, &res, st) != PX_OK) {
        return st->code;
    }
    px_code_t code = PX_OK;
    pthread_rwlock_wrlock(&self->lock);
    for (int r = 0; r < PQntuples(res) && code == PX_OK; r++) {
        if (!s_put(self, PQgetvalue(res, r, 0))) {
            code = px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        }
    }
    pthread_rwlock_unlock(&self->lock);
    PQclear(res);
    return code;
}

bool act_campaigns_known(act_campaigns_t *self, const char *id)
{
    if (!id || !*id) {
        return false;
    }
    pthread_rwlock_rdlock(&self->lock);
    size_t i = s_lower(self, id);
    bool found = i < self->n && strcmp(self->v[i].id, id) == 0;
    pthread_rwlock_unlock(&self->lock);
    return found;
}

/* What the roster validated; anything else is not a campaign this service can use. */
static bool s_usable(const Phuxanh__Roster__V1__Campaign *c)
{
    int32_t a, b;
    return c && act_code_ok(c->id, ACT_CAMPAIGN_MAX) && px_day_parse(c->starts_on, &a) &&
           px_day_parse(c->ends_on, &b);
}

px_code_t act_campaigns_store(act_campaigns_t *self, px_db_t *db,
                              Phuxanh__Roster__V1__Campaign *const *campaigns, size_t n,
                              px_status_t *st)
{
    if (n == 0) {
        return PX_OK;
    }
    act_arr_t ids, names, starts, ends;
    act_arr_init(&ids), act_arr_init(&names), act_arr_init(&starts), act_arr_init(&ends);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const Phuxanh__Roster__V1__Campaign *c = campaigns[i];
        if (!s_usable(c)) {
            continue;
        }
        act_arr_add(&ids, c->id);
        act_arr_add(&names, c->name);
        act_arr_add(&starts, c->starts_on);
        act_arr_add(&ends, c->ends_on);
        kept++;
    }
    const char *p[4] = {act_arr_end(&ids), act_arr_end(&names), act_arr_end(&starts),
                        act_arr_end(&ends)};
    px_code_t code = PX_OK;
    if (kept > 0) {
        code = (!p[0] || !p[1] || !p[2] || !p[3])
                   ? px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory")
                   : px_db_execp(db, &s_upsert, 4, p, NULL, st);
    }
    act_arr_free(&ids), act_arr_free(&names), act_arr_free(&starts), act_arr_free(&ends);
    if (code != PX_OK || kept == 0) {
        return code;
    }
    pthread_rwlock_wrlock(&self->lock);
    for (size_t i = 0; i < n && code == PX_OK; i++) {
        if (s_usable(campaigns[i]) && !s_put(self, campaigns[i]->id)) {
            code = px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        }
    }
    pthread_rwlock_unlock(&self->lock);
    return code;
}

px_code_t act_campaigns_ensure(act_campaigns_t *self, px_rpc_ctx_t *ctx, const char *id,
                               px_status_t *st)
{
    if (act_campaigns_known(self, id)) {
        return PX_OK;
    }
    px_rpc_client_t *roster = px_rpc_ctx_peer(ctx, "roster");
    if (!roster) {
        return px_status_set(st, PX_UNAVAILABLE, "the roster is not configured");
    }
    Phuxanh__Roster__V1__GetCampaignRequest req = PHUXANH__ROSTER__V1__GET_CAMPAIGN_REQUEST__INIT;
    req.id = (char *)id;
    px_rpc_call_opts_t o = {
        .parent = ctx,
        .deadline_us = act_roster_deadline(ctx),
        .idempotent = true,
    };
    ProtobufCMessage *reply = NULL;
    px_code_t code =
        px_rpc_client_call(roster, "/phuxanh.roster.v1.RosterService/GetCampaign", &req.base,
                           &phuxanh__roster__v1__get_campaign_response__descriptor, &reply, &o, st);
    if (code == PX_NOT_FOUND) {
        px_status_clear(st); /* the roster answered: no such campaign */
        return PX_OK;
    }
    if (code != PX_OK) {
        px_log_emit(px_rpc_ctx_log(ctx), PX_LOG_WARN, "ACT-ROSTER-CAMPAIGN",
                    "could not ask the roster for a campaign",
                    PX_LOG_FIELDS(PX_LS("code", px_code_name(st->code)),
                                  PX_LS("request_id", px_rpc_ctx_request_id(ctx))));
        return px_status_set(st, PX_UNAVAILABLE, "the roster could not be asked for the campaign");
    }
    Phuxanh__Roster__V1__GetCampaignResponse *r = (Phuxanh__Roster__V1__GetCampaignResponse *)reply;
    code = act_campaigns_store(self, px_rpc_ctx_db(ctx), &r->campaign, r->campaign ? 1 : 0, st);
    protobuf_c_message_free_unpacked(reply, NULL);
    return code;
}

px_code_t act_campaign_check(px_rpc_ctx_t *ctx, const char *field, const char *id)
{
    act_t *act = px_rpc_ctx_state(ctx);
    px_status_t st;
    if (act_campaigns_known(act->campaigns, id)) {
        return PX_OK;
    }
    if (act_campaigns_ensure(act->campaigns, ctx, id, &st) != PX_OK) {
        return px_rpc_fail(ctx, PX_UNAVAILABLE,
                           "%s: the campaign could not be looked up in the roster; retry", field);
    }
    if (!act_campaigns_known(act->campaigns, id)) {
        return px_rpc_fail(ctx, PX_NOT_FOUND, "%s: no campaign \"%s\"", field, act_echo(id));
    }
    return PX_OK;
}
