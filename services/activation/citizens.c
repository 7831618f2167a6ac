/*
 * citizens.c - one person's record: GetCitizenStatus and ForgetCitizen.
 *
 * Both take the 12-digit ID number, check it (the age rule against the
 * current year: there is no event day to measure it on), and turn it into the
 * citizen key at once; the number goes no further - not into a message, a log
 * line, the audit detail or the database. Both write an audit row (caller,
 * method, request id, campaign, outcome), and never the key either: the audit
 * table is append-only, and a key left there would outlive ForgetCitizen.
 *
 * GetCitizenStatus replays the citizen's stored events (the same state
 * machine RecordEvents runs, per cycle) to tell which stages were reached,
 * when, how, and which only by implication.
 *
 * ForgetCitizen deletes what links a person to the records: the citizen row
 * (key, last digits, stages), their follow-ups (an open one leaves the open
 * follow-up counters, as if resolved), and in their events the key (NULL) and
 * the note. The stage counts stay as they are. Recording the same person
 * again afterwards makes a new citizen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "phuxanh/clock.h"
#include "phuxanh/pbutil.h"
#include "phuxanh/text.h"

/* Events replayed for one citizen: far more than a real application has. */
#define S_EVENTS_MAX 1000

/* ---------------------------------------------------------------- statements */

static const px_db_stmt_t s_citizen = {
    "act_cit_get",
    "SELECT last3, unit_code, neighborhood_code, stage FROM citizens "
    "WHERE campaign_id = $1 AND citizen_key = decode($2, 'hex')",
};

static const px_db_stmt_t s_citizen_lock = {
    "act_cit_lock",
    "SELECT 1 FROM citizens WHERE campaign_id = $1 AND citizen_key = decode($2, 'hex') "
    "FOR UPDATE",
};

static const px_db_stmt_t s_events = {
    "act_cit_events",
    "SELECT stage, channel, venue, volunteer_code, volunteer_verified, cycle, "
    "(extract(epoch FROM occurred_at) * 1000000)::bigint, duplicate, neighborhood_code "
    "FROM events WHERE campaign_id = $1 AND citizen_key = decode($2, 'hex') ORDER BY id "
    "LIMIT 1000",
};

static const px_db_stmt_t s_follow_ups = {
    "act_cit_follow_ups",
    "SELECT " ACT_FU_COLS " FROM follow_ups f WHERE f.campaign_id = $1 "
    "AND f.citizen_key = decode($2, 'hex') ORDER BY f.created_at, f.id",
};

static const px_db_stmt_t s_open_follow_ups = {
    "act_cit_open_follow_ups",
    "SELECT unit_code, neighborhood_code FROM follow_ups WHERE campaign_id = $1 "
    "AND citizen_key = decode($2, 'hex') AND resolved_at IS NULL ORDER BY id FOR UPDATE",
};

static const px_db_stmt_t s_forget = {
    "act_cit_forget",
    "WITH f AS (DELETE FROM follow_ups WHERE campaign_id = $1 "
    "  AND citizen_key = decode($2, 'hex') RETURNING 1), "
    "e AS (UPDATE events SET citizen_key = NULL, note = '' WHERE campaign_id = $1 "
    "  AND citizen_key = decode($2, 'hex') RETURNING 1), "
    "c AS (DELETE FROM citizens WHERE campaign_id = $1 AND citizen_key = decode($2, 'hex') "
    "  RETURNING 1) "
    "SELECT (SELECT count(*) FROM f) + (SELECT count(*) FROM e) + (SELECT count(*) FROM c)",
};

/* ---------------------------------------------------------------- shared */

/* Validates campaign_id and citizen_id and writes the key's hex into keyhex. */
static px_code_t s_key(px_rpc_ctx_t *ctx, const char *campaign, const char *id, char *keyhex)
{
    act_t *act = px_rpc_ctx_state(ctx);
    char msg[200], day[11];
    if (!act_code_ok(campaign, ACT_CAMPAIGN_MAX)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT,
                           "campaign_id: must be 1 to 64 ASCII letters, digits, '-', '_' or '.'");
    }
    px_day_format(px_day_of_unix(px_wall_us() / 1000000), day);
    if (!act_citizen_id_check(id, atoi(day), msg, sizeof msg)) {
        return px_rpc_fail(ctx, PX_INVALID_ARGUMENT, "%s", msg);
    }
    unsigned char key[ACT_HMAC_BYTES];
    act_citizen_key(act->secret, id, key);
    act_hex(key, sizeof key, keyhex);
    return PX_OK;
}

/* ---------------------------------------------------------------- GetCitizenStatus */

static Phuxanh__Activation__V1__StageReached *s_reached(px_rpc_ctx_t *ctx, const PGresult *ev,
                                                        int row, int stage, bool implied)
{
    Phuxanh__Activation__V1__StageReached *r = px_rpc_ctx_alloc(ctx, sizeof *r);
    if (!r) {
        return NULL;
    }
    phuxanh__activation__v1__stage_reached__init(r);
    r->stage = stage;
    r->implied = implied;
    r->channel = atoi(PQgetvalue(ev, row, 1));
    r->venue = atoi(PQgetvalue(ev, row, 2));
    r->volunteer_code = px_rpc_ctx_strdup(ctx, PQgetvalue(ev, row, 3));
    r->volunteer_verified = PQgetvalue(ev, row, 4)[0] == 't';
    r->cycle = atoi(PQgetvalue(ev, row, 5));
    r->reached_at = px_ts_new(ctx, strtoll(PQgetvalue(ev, row, 6), NULL, 10));
    return r->volunteer_code && r->reached_at ? r : NULL;
}

static px_code_t s_get_citizen_status(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                      ProtobufCMessage *reply)
{
    px_code_t denied = act_person_reader_check(ctx);
    if (denied != PX_OK) {
        return denied; /* before anything else: a caller not allowed learns nothing */
    }
    const Phuxanh__Activation__V1__GetCitizenStatusRequest *req = (const void *)request;
    Phuxanh__Activation__V1__GetCitizenStatusResponse *resp = (void *)reply;
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    PGresult *cit = NULL, *ev = NULL, *fu = NULL;
    px_code_t code;
    char keyhex[2 * ACT_HMAC_BYTES + 1];
    /* validate */
    if ((code = s_key(ctx, req->campaign_id, req->citizen_id, keyhex)) != PX_OK) {
        return code;
    }
    /* load */
    const char *p[2] = {req->campaign_id, keyhex};
    if (px_db_execp(db, &s_citizen, 2, p, &cit, &st) != PX_OK ||
        px_db_execp(db, &s_events, 2, p, &ev, &st) != PX_OK ||
        px_db_execp(db, &s_follow_ups, 2, p, &fu, &st) != PX_OK) {
        code = act_db_fail(ctx, &st);
        goto done;
    }
    bool found = PQntuples(cit) > 0;
    char detail[160];
    snprintf(detail, sizeof detail, "{\"campaign_id\":\"%s\",\"found\":%s}", req->campaign_id,
             found ? "true" : "false");
    if ((code = act_audit(ctx, detail)) != PX_OK) {
        goto done;
    }
    if (!found) {
        code = px_rpc_fail(ctx, PX_NOT_FOUND, "citizen_id: campaign \"%s\" has no record of it",
                           req->campaign_id);
        goto done;
    }
    /* decide: replay the stored events, cycle by cycle */
    int nev = PQntuples(ev);
    resp->stages = px_rpc_ctx_alloc(ctx, (size_t)(3 * nev + 1) * sizeof *resp->stages);
    resp->follow_ups =
        px_rpc_ctx_alloc(ctx, (size_t)(PQntuples(fu) + 1) * sizeof *resp->follow_ups);
    resp->citizen_id_last3 = px_rpc_ctx_strdup(ctx, PQgetvalue(cit, 0, 0));
    resp->unit_code = px_rpc_ctx_strdup(ctx, PQgetvalue(cit, 0, 1));
    const char *nbh = PQgetvalue(cit, 0, 2);
    resp->current_stage = atoi(PQgetvalue(cit, 0, 3));
    if (!resp->stages || !resp->follow_ups || !resp->citizen_id_last3 || !resp->unit_code) {
        goto oom;
    }
    int cycle = 0, cur = 0;
    for (int i = 0; i < nev; i++) {
        if (*PQgetvalue(ev, i, 8)) {
            nbh = PQgetvalue(ev, i, 8);
        }
        if (PQgetvalue(ev, i, 7)[0] == 't') {
            continue; /* a repeat: reached nothing */
        }
        int s = atoi(PQgetvalue(ev, i, 0)), cy = atoi(PQgetvalue(ev, i, 5));
        if (cy != cycle) {
            cycle = cy;
            cur = 0;
        }
        int from = cur + 1, to = s;
        if (s == 4) {
            /* a rejection implies the application it rejects */
            if (cur < 1 && !(resp->stages[resp->n_stages++] = s_reached(ctx, ev, i, 1, true))) {
                goto oom;
            }
            from = to = 4;
        }
        for (int k = from; k <= to; k++) {
            if (!(resp->stages[resp->n_stages++] = s_reached(ctx, ev, i, k, k < s))) {
                goto oom;
            }
        }
        cur = s;
    }
    if (!(resp->neighborhood_code = px_rpc_ctx_strdup(ctx, nbh))) {
        goto oom;
    }
    for (int i = 0; i < PQntuples(fu); i++) {
        if (!(resp->follow_ups[resp->n_follow_ups++] = act_follow_up_row(ctx, fu, i))) {
            goto oom;
        }
    }
    goto done;
oom:
    code = px_rpc_fail(ctx, PX_RESOURCE_EXHAUSTED, "out of memory");
done:
    PQclear(cit);
    PQclear(ev);
    PQclear(fu);
    return code;
}

/* ---------------------------------------------------------------- ForgetCitizen */

static px_code_t s_forget_citizen(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                  ProtobufCMessage *reply)
{
    px_code_t denied = act_person_reader_check(ctx);
    if (denied != PX_OK) {
        return denied; /* before anything else: a caller not allowed learns nothing */
    }
    const Phuxanh__Activation__V1__ForgetCitizenRequest *req = (const void *)request;
    Phuxanh__Activation__V1__ForgetCitizenResponse *resp = (void *)reply;
    act_t *act = px_rpc_ctx_state(ctx);
    px_db_t *db = px_rpc_ctx_db(ctx);
    px_status_t st;
    PGresult *open = NULL, *res = NULL;
    px_code_t code;
    char keyhex[2 * ACT_HMAC_BYTES + 1];
    const char **wards = NULL, **nbhs = NULL;
    int *minus = NULL;
    /* validate */
    if ((code = s_key(ctx, req->campaign_id, req->citizen_id, keyhex)) != PX_OK) {
        return code;
    }
    const char *p[2] = {req->campaign_id, keyhex};
    /* load: the citizen row first, as RecordEvents locks it, so the two take turns */
    if (px_db_begin(db, &st) != PX_OK) {
        return act_db_fail(ctx, &st);
    }
    if (px_db_execp(db, &s_citizen_lock, 2, p, NULL, &st) != PX_OK ||
        px_db_execp(db, &s_open_follow_ups, 2, p, &open, &st) != PX_OK) {
        goto fail;
    }
    /* write: open follow-ups leave the counters, then everything that links goes */
    size_t nopen = (size_t)PQntuples(open);
    if (nopen > 0) {
        wards = calloc(nopen, sizeof *wards);
        nbhs = calloc(nopen, sizeof *nbhs);
        minus = calloc(nopen, sizeof *minus);
        if (!wards || !nbhs || !minus) {
            px_status_set(&st, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < nopen; i++) {
            wards[i] = PQgetvalue(open, (int)i, 0);
            nbhs[i] = PQgetvalue(open, (int)i, 1);
            minus[i] = -1;
        }
        if (act_follow_ups_count(act->units, db, act_shard(ctx), req->campaign_id, wards, nbhs,
                                 minus, nopen, &st) != PX_OK) {
            goto fail;
        }
    }
    if (px_db_execp(db, &s_forget, 2, p, &res, &st) != PX_OK) {
        goto fail;
    }
    resp->forgotten = atoll(PQgetvalue(res, 0, 0)) > 0;
    char detail[160];
    snprintf(detail, sizeof detail, "{\"campaign_id\":\"%s\",\"forgotten\":%s}", req->campaign_id,
             resp->forgotten ? "true" : "false");
    if (act_audit(ctx, detail) != PX_OK) {
        px_db_rollback(db);
        code = PX_UNAVAILABLE;
        goto done;
    }
    if (px_db_commit(db, &st) != PX_OK) {
        code = act_db_fail(ctx, &st);
    }
    goto done;
fail:
    px_db_rollback(db);
    code = act_db_fail(ctx, &st);
done:
    if (code != PX_OK) {
        resp->forgotten = false;
    }
    free(wards);
    free(nbhs);
    free(minus);
    PQclear(open);
    PQclear(res);
    return code;
}

const px_rpc_method_t act_citizens_methods[] = {
    {"GetCitizenStatus", s_get_citizen_status},
    {"ForgetCitizen", s_forget_citizen},
};
const size_t act_citizens_methods_count =
    sizeof act_citizens_methods / sizeof act_citizens_methods[0];
