/*
 * verifier.c - the background pass: events whose volunteer could not be
 * checked are checked once the roster answers again, and the unit tree is
 * refreshed.
 *
 * RecordEvents never waits long for the roster: when it cannot be asked, the
 * events are taken with volunteer_verified = false and duty_verdict = 0. Every
 * interval this thread asks CheckDuty for those (a bounded page at a time) and
 * stores the verdicts, asks ListUnits for the units changed since the
 * cache's tree version, and reads the campaigns again (ListCampaigns). It owns its database
 * connection and its ZeroMQ client: nothing of the workers' is touched from here.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "activation.h"
#include "phuxanh/clock.h"

/* Events checked per CheckDuty call and per round (the roster takes at most 10,000). */
#define S_PAGE 1000
#define S_ROUND_PAGES 20
#define S_CALL_TIMEOUT_MS 2000

struct act_verifier_t {
    act_t *act;
    px_db_t *db;
    px_rpc_client_t *roster;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

static const px_db_stmt_t s_unverified = {
    "act_verify_unverified",
    "SELECT id, volunteer_code, CASE WHEN neighborhood_code <> '' THEN neighborhood_code "
    "ELSE unit_code END, campaign_id, (extract(epoch FROM occurred_at) * 1000000)::bigint "
    "FROM events WHERE volunteer_code <> '' AND duty_verdict = 0 AND id > $1 ORDER BY id "
    "LIMIT 1000",
};

static const px_db_stmt_t s_verified = {
    "act_verify_update",
    "UPDATE events SET volunteer_verified = x.v, duty_verdict = x.d "
    "FROM unnest($1::bigint[], $2::bool[], $3::smallint[]) AS x(id, v, d) WHERE events.id = x.id",
};

/* One page of unverified events: asks the roster and stores what it says. Returns how many
 * were answered, -1 when the roster or the database failed; *last is the last id seen. */
static int s_verify_page(act_verifier_t *self, long long *last)
{
    px_status_t st;
    PGresult *res = NULL;
    char after[32];
    snprintf(after, sizeof after, "%lld", *last);
    const char *p1[1] = {after};
    int done = -1;
    Phuxanh__Roster__V1__DutyQuery *qs = NULL, **qp = NULL;
    Google__Protobuf__Timestamp *ts = NULL;
    ProtobufCMessage *reply = NULL;
    if (px_db_execp(self->db, &s_unverified, 1, p1, &res, &st) != PX_OK) {
        goto done;
    }
    int n = PQntuples(res);
    if (n == 0) {
        done = 0;
        goto done;
    }
    qs = calloc((size_t)n, sizeof *qs);
    qp = calloc((size_t)n, sizeof *qp);
    ts = calloc((size_t)n, sizeof *ts);
    if (!qs || !qp || !ts) {
        goto done;
    }
    for (int i = 0; i < n; i++) {
        phuxanh__roster__v1__duty_query__init(&qs[i]);
        google__protobuf__timestamp__init(&ts[i]);
        long long us = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        ts[i].seconds = us / 1000000;
        ts[i].nanos = (int32_t)(us % 1000000) * 1000;
        qs[i].volunteer_code = PQgetvalue(res, i, 1);
        qs[i].unit_code = PQgetvalue(res, i, 2);
        qs[i].campaign_id = PQgetvalue(res, i, 3);
        qs[i].time = &ts[i];
        qp[i] = &qs[i];
    }
    *last = strtoll(PQgetvalue(res, n - 1, 0), NULL, 10);
    Phuxanh__Roster__V1__CheckDutyRequest req = PHUXANH__ROSTER__V1__CHECK_DUTY_REQUEST__INIT;
    req.queries = qp;
    req.n_queries = (size_t)n;
    req.verdict_only = true; /* the assignment itself is never read here */
    px_rpc_call_opts_t o = {.timeout_ms = S_CALL_TIMEOUT_MS, .idempotent = true};
    if (px_rpc_client_call(self->roster, "/phuxanh.roster.v1.RosterService/CheckDuty", &req.base,
                           &phuxanh__roster__v1__check_duty_response__descriptor, &reply, &o,
                           &st) != PX_OK) {
        goto done;
    }
    Phuxanh__Roster__V1__CheckDutyResponse *r = (Phuxanh__Roster__V1__CheckDutyResponse *)reply;
    act_arr_t ids, vs, ds;
    act_arr_init(&ids), act_arr_init(&vs), act_arr_init(&ds);
    int answered = 0;
    for (size_t i = 0; i < r->n_answers && i < (size_t)n; i++) {
        if (r->answers[i]->verdict == 0) {
            continue;
        }
        act_arr_add(&ids, PQgetvalue(res, (int)i, 0));
        act_arr_add(&vs, r->answers[i]->on_duty ? "t" : "f");
        act_arr_addf(&ds, "%d", (int)r->answers[i]->verdict);
        answered++;
    }
    const char *p[3] = {act_arr_end(&ids), act_arr_end(&vs), act_arr_end(&ds)};
    if (answered > 0 && p[0] && p[1] && p[2] &&
        px_db_execp(self->db, &s_verified, 3, p, NULL, &st) == PX_OK) {
        done = answered;
    } else if (answered == 0) {
        done = 0;
    }
    act_arr_free(&ids), act_arr_free(&vs), act_arr_free(&ds);
done:
    if (reply) {
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    free(qs);
    free(qp);
    free(ts);
    PQclear(res);
    return done;
}

/* Units changed since the cache's version, page by page. */
static void s_refresh_units(act_verifier_t *self)
{
    px_status_t st;
    int64_t since = act_units_version(self->act->units);
    char *token = strdup("");
    int64_t first_version = 0;
    for (int page = 0; token && page < 1000; page++) {
        Phuxanh__Roster__V1__ListUnitsRequest req = PHUXANH__ROSTER__V1__LIST_UNITS_REQUEST__INIT;
        req.since_version = since;
        req.page_size = 10000;
        req.page_token = token;
        ProtobufCMessage *reply = NULL;
        px_rpc_call_opts_t o = {.timeout_ms = S_CALL_TIMEOUT_MS, .idempotent = true};
        if (px_rpc_client_call(self->roster, "/phuxanh.roster.v1.RosterService/ListUnits",
                               &req.base, &phuxanh__roster__v1__list_units_response__descriptor,
                               &reply, &o, &st) != PX_OK) {
            break;
        }
        Phuxanh__Roster__V1__ListUnitsResponse *r = (Phuxanh__Roster__V1__ListUnitsResponse *)reply;
        if (page == 0) {
            first_version = r->tree_version;
        }
        bool ok = act_units_store(self->act->units, self->db, r->units, r->n_units, &st) == PX_OK;
        free(token);
        token = ok && r->next_page_token && *r->next_page_token ? strdup(r->next_page_token) : NULL;
        protobuf_c_message_free_unpacked(reply, NULL);
        if (!token && ok) {
            act_units_set_version(self->act->units, self->db, first_version, &st);
        }
    }
    free(token);
}

/* Every campaign, page by page: a campaign's days may have moved (retention counts from its
 * last day), and a new one is then known before its first event. */
static void s_refresh_campaigns(act_verifier_t *self)
{
    px_status_t st;
    char *token = strdup("");
    for (int page = 0; token && page < 1000; page++) {
        Phuxanh__Roster__V1__ListCampaignsRequest req =
            PHUXANH__ROSTER__V1__LIST_CAMPAIGNS_REQUEST__INIT;
        req.page_size = 1000;
        req.page_token = token;
        ProtobufCMessage *reply = NULL;
        px_rpc_call_opts_t o = {.timeout_ms = S_CALL_TIMEOUT_MS, .idempotent = true};
        if (px_rpc_client_call(self->roster, "/phuxanh.roster.v1.RosterService/ListCampaigns",
                               &req.base, &phuxanh__roster__v1__list_campaigns_response__descriptor,
                               &reply, &o, &st) != PX_OK) {
            break;
        }
        Phuxanh__Roster__V1__ListCampaignsResponse *r =
            (Phuxanh__Roster__V1__ListCampaignsResponse *)reply;
        bool ok = act_campaigns_store(self->act->campaigns, self->db, r->campaigns, r->n_campaigns,
                                      &st) == PX_OK;
        free(token);
        token = ok && r->next_page_token && *r->next_page_token ? strdup(r->next_page_token) : NULL;
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    free(token);
}

/* One round: the tree and the campaigns first (events may name what they bring), then the
 * events. */
static void s_round(act_verifier_t *self)
{
    s_refresh_units(self);
    s_refresh_campaigns(self);
    long long last = 0;
    int total = 0;
    for (int page = 0; page < S_ROUND_PAGES; page++) {
        int k = s_verify_page(self, &last);
        if (k <= 0) {
            if (k < 0) {
                px_log_emit(self->act->log, PX_LOG_WARN, "ACT-VERIFY-FAIL",
                            "background duty check could not run; will retry", NULL);
            }
            break;
        }
        total += k;
    }
    if (total > 0) {
        px_log_emit(self->act->log, PX_LOG_INFO, "ACT-VERIFY",
                    "volunteer duty checked in the background",
                    PX_LOG_FIELDS(PX_LI("events", total)));
    }
}

static void *s_run(void *arg)
{
    act_verifier_t *self = arg;
    for (;;) {
        s_round(self);
        pthread_mutex_lock(&self->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (int64_t)self->act->verify_interval_ms * 1000000;
        until.tv_sec += ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        while (!self->stop && pthread_cond_timedwait(&self->cv, &self->mu, &until) == 0) {
        }
        bool stop = self->stop;
        pthread_mutex_unlock(&self->mu);
        if (stop) {
            break;
        }
    }
    return NULL;
}

act_verifier_t *act_verifier_start(act_t *act, const char *db_url, const char *roster_endpoints,
                                   px_status_t *st)
{
    act_verifier_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    self->act = act;
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv, NULL);
    self->db = px_db_new(db_url, act->log);
    px_rpc_client_opts_t o = {
        .caller = "activation", .log = act->log, .curve = act->curve, .server_name = "roster"};
    self->roster = px_rpc_client_new(roster_endpoints, &o, st);
    if (!self->db || !self->roster) {
        if (!self->db) {
            px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        }
        goto fail;
    }
    /* The client is made here but used only by the thread from now on. */
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "cannot start the background pass");
        goto fail;
    }
    return self;
fail:
    px_rpc_client_destroy(&self->roster);
    px_db_destroy(&self->db);
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->cv);
    free(self);
    return NULL;
}

void act_verifier_stop(act_verifier_t **self_p)
{
    if (*self_p) {
        act_verifier_t *self = *self_p;
        pthread_mutex_lock(&self->mu);
        self->stop = true;
        pthread_cond_signal(&self->cv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->thread, NULL);
        px_rpc_client_destroy(&self->roster);
        px_db_destroy(&self->db);
        pthread_mutex_destroy(&self->mu);
        pthread_cond_destroy(&self->cv);
        free(self);
        *self_p = NULL;
    }
}
