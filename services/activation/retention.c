/*
 * retention.c - the retention pass: a campaign's person-level data is purged a
 * configurable number of days after its last day; the counts stay.
 *
 * Person-level data is what links a record to a person: the citizen key and
 * the note of each event, the citizens rows (key, last digits, stages) and
 * the follow-ups (notes, last digits). totals and daily are counts of
 * citizens and are never touched - except that the open follow-up counter of
 * a purged campaign goes to zero with the list it counted, exactly as if each
 * entry had been resolved (there is nothing left to follow up).
 *
 * The campaign's last day is the roster's (it owns campaigns), read from the
 * local copy the campaign cache keeps (campaigns table, refreshed by the
 * background pass), so purging does not depend on the roster answering. Events
 * may come after that day (a citizen activating at home a week later): they do
 * not push the purge back - the rule is days after the campaign's last day.
 * Only for a campaign the local copy does not hold (data recorded before the
 * copy existed) does it fall back to the last day on which any citizen of the
 * campaign reached a stage, from the daily counter rows.
 *
 * Events recorded for a campaign after its purge make new citizens (and are
 * counted as such): by then the campaign ended retention-days ago.
 *
 * A thread of its own with its own database connection; nothing is shared
 * with the workers but the unit cache (which locks itself). The first pass
 * runs one interval after start, so that a restart does not purge at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "activation.h"

/* Campaigns purged per pass: the rest wait for the next one. */
#define S_CAMPAIGNS_PER_PASS 100
/* Open follow-up groups (ward, neighborhood) of one campaign: more than any tree has. */
#define S_GROUPS_MAX 100000

struct act_retention_t {
    act_t *act;
    px_db_t *db;
    int days, interval_s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

/* ---------------------------------------------------------------- statements */

static const px_db_stmt_t s_due = {
    "act_ret_due",
    "SELECT d.campaign_id FROM (SELECT campaign_id, max(day) AS last FROM daily_shards "
    "GROUP BY campaign_id) d LEFT JOIN campaigns k ON k.id = d.campaign_id "
    "WHERE coalesce(k.ends_on, d.last) < (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date - "
    "$1::int AND (EXISTS (SELECT 1 FROM citizens c WHERE c.campaign_id = d.campaign_id) "
    "OR EXISTS (SELECT 1 FROM follow_ups f WHERE f.campaign_id = d.campaign_id) "
    "OR EXISTS (SELECT 1 FROM events e WHERE e.campaign_id = d.campaign_id "
    "AND e.citizen_key IS NOT NULL)) ORDER BY d.campaign_id LIMIT 100",
};

/* The campaign's citizens, locked in key order as RecordEvents locks them. */
static const px_db_stmt_t s_lock = {
    "act_ret_lock",
    "SELECT count(*) FROM (SELECT 1 FROM citizens WHERE campaign_id = $1 "
    "ORDER BY citizen_key FOR UPDATE) s",
};

static const px_db_stmt_t s_open = {
    "act_ret_open",
    "SELECT unit_code, neighborhood_code, count(*) FROM follow_ups WHERE campaign_id = $1 "
    "AND resolved_at IS NULL GROUP BY unit_code, neighborhood_code",
};

static const px_db_stmt_t s_purge = {
    "act_ret_purge",
    "WITH f AS (DELETE FROM follow_ups WHERE campaign_id = $1 RETURNING 1), "
    "e AS (UPDATE events SET citizen_key = NULL, note = '' WHERE campaign_id = $1 "
    "  AND (citizen_key IS NOT NULL OR note <> '') RETURNING 1), "
    "c AS (DELETE FROM citizens WHERE campaign_id = $1 RETURNING 1) "
    "SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM e), (SELECT count(*) FROM f)",
};

static const px_db_stmt_t s_audit = {
    "act_ret_audit",
    "INSERT INTO audit (caller, method, request_id, detail) "
    "VALUES ('activation-retention', 'RetentionPurge', '', $1::jsonb)",
};

/* ---------------------------------------------------------------- the pass */

/* Purges one campaign in one transaction. */
static px_code_t s_purge_campaign(act_retention_t *self, const char *campaign, px_status_t *st)
{
    PGresult *open = NULL, *res = NULL;
    const char **wards = NULL, **nbhs = NULL;
    int *deltas = NULL;
    const char *p[1] = {campaign};
    if (px_db_begin(self->db, st) != PX_OK) {
        return st->code;
    }
    if (px_db_execp(self->db, &s_lock, 1, p, NULL, st) != PX_OK ||
        px_db_execp(self->db, &s_open, 1, p, &open, st) != PX_OK) {
        goto fail;
    }
    size_t n = (size_t)PQntuples(open);
    if (n > S_GROUPS_MAX) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "too many follow-up groups");
        goto fail;
    }
    if (n > 0) {
        wards = calloc(n, sizeof *wards);
        nbhs = calloc(n, sizeof *nbhs);
        deltas = calloc(n, sizeof *deltas);
        if (!wards || !nbhs || !deltas) {
            px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            wards[i] = PQgetvalue(open, (int)i, 0);
            nbhs[i] = PQgetvalue(open, (int)i, 1);
            deltas[i] = -atoi(PQgetvalue(open, (int)i, 2));
        }
        /* Shard 0: shared with worker 0, which at worst waits for this transaction. */
        if (act_follow_ups_count(self->act->units, self->db, 0, campaign, wards, nbhs, deltas, n,
                                 st) != PX_OK) {
            goto fail;
        }
    }
    if (px_db_execp(self->db, &s_purge, 1, p, &res, st) != PX_OK) {
        goto fail;
    }
    long long cits = atoll(PQgetvalue(res, 0, 0)), evs = atoll(PQgetvalue(res, 0, 1)),
              fus = atoll(PQgetvalue(res, 0, 2));
    char detail[200];
    snprintf(detail, sizeof detail,
             "{\"campaign_id\":\"%s\",\"citizens\":%lld,\"events\":%lld,\"follow_ups\":%lld,"
             "\"retention_days\":%d}",
             campaign, cits, evs, fus, self->days);
    const char *pa[1] = {detail};
    if (px_db_execp(self->db, &s_audit, 1, pa, NULL, st) != PX_OK ||
        px_db_commit(self->db, st) != PX_OK) {
        goto fail;
    }
    px_log_emit(self->act->log, PX_LOG_INFO, "ACT-RETENTION-PURGE",
                "person-level data of an ended campaign purged; counts kept",
                PX_LOG_FIELDS(PX_LS("campaign_id", campaign), PX_LI("citizens", cits),
                              PX_LI("events", evs), PX_LI("follow_ups", fus),
                              PX_LI("retention_days", self->days)));
    free(wards);
    free(nbhs);
    free(deltas);
    PQclear(open);
    PQclear(res);
    return PX_OK;
fail:
    px_db_rollback(self->db);
    free(wards);
    free(nbhs);
    free(deltas);
    PQclear(open);
    PQclear(res);
    return st->code;
}

static void s_pass(act_retention_t *self)
{
    px_status_t st;
    PGresult *due = NULL;
    long long folded = act_fold_daily(self->db, &st);
    if (folded < 0) {
        px_log_emit(self->act->log, PX_LOG_WARN, "ACT-FOLD-FAIL",
                    "counter shards not folded; will retry",
                    PX_LOG_FIELDS(PX_LS("error", st.message)));
    } else if (folded > 0) {
        px_log_emit(self->act->log, PX_LOG_INFO, "ACT-FOLD",
                    "daily counter shards of closed days folded",
                    PX_LOG_FIELDS(PX_LI("rows", folded)));
    }
    char days[16];
    snprintf(days, sizeof days, "%d", self->days);
    const char *p[1] = {days};
    if (px_db_execp(self->db, &s_due, 1, p, &due, &st) != PX_OK) {
        px_log_emit(self->act->log, PX_LOG_WARN, "ACT-RETENTION-FAIL",
                    "retention pass could not run; will retry",
                    PX_LOG_FIELDS(PX_LS("error", st.message)));
        return;
    }
    for (int i = 0; i < PQntuples(due) && i < S_CAMPAIGNS_PER_PASS; i++) {
        if (s_purge_campaign(self, PQgetvalue(due, i, 0), &st) != PX_OK) {
            px_log_emit(self->act->log, PX_LOG_WARN, "ACT-RETENTION-FAIL",
                        "campaign not purged; will retry",
                        PX_LOG_FIELDS(PX_LS("campaign_id", PQgetvalue(due, i, 0)),
                                      PX_LS("error", st.message)));
        }
    }
    PQclear(due);
}

/* Waits one interval; true when asked to stop. */
static bool s_wait(act_retention_t *self)
{
    pthread_mutex_lock(&self->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += self->interval_s;
    while (!self->stop && pthread_cond_timedwait(&self->cv, &self->mu, &until) == 0) {
    }
    bool stop = self->stop;
    pthread_mutex_unlock(&self->mu);
    return stop;
}

static void *s_run(void *arg)
{
    act_retention_t *self = arg;
    while (!s_wait(self)) {
        s_pass(self);
    }
    return NULL;
}

act_retention_t *act_retention_start(act_t *act, const char *db_url, int days, int interval_s,
                                     px_status_t *st)
{
    act_retention_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    self->act = act;
    self->days = days;
    self->interval_s = interval_s;
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv, NULL);
    self->db = px_db_new(db_url, act->log);
    if (!self->db) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if (pthread_create(&self->thread, NULL, s_run, self) != 0) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "cannot start the retention pass");
        goto fail;
    }
    return self;
fail:
    px_db_destroy(&self->db);
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->cv);
    free(self);
    return NULL;
}

void act_retention_stop(act_retention_t **self_p)
{
    if (*self_p) {
        act_retention_t *self = *self_p;
        pthread_mutex_lock(&self->mu);
        self->stop = true;
        pthread_cond_signal(&self->cv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->thread, NULL);
        px_db_destroy(&self->db);
        pthread_mutex_destroy(&self->mu);
        pthread_cond_destroy(&self->cv);
        free(self);
        *self_p = NULL;
    }
}
