/*
 * admin.c - operators' routes that change the gateway itself (admin tokens only).
 *
 *   POST /v1/webhooks/replay?since=2026-12-01T00:00:00Z[&subscriber=NAME]
 *       sends again every webhook delivery created since then (to one subscriber or all),
 *       with the same delivery ids, so receivers that already have them drop them.
 *       Answers {"replayed": N}.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gateway.h"
#include "webhooks.h"

/* "YYYY-MM-DDTHH:MM:SSZ" (or with +HH:MM) into microseconds since the epoch. */
static bool s_rfc3339(const char *s, int64_t *us)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) {
        return false;
    }
    int64_t offset = 0;
    if (*end == 'Z' && !end[1]) {
        offset = 0;
    } else if ((*end == '+' || *end == '-') && strlen(end) == 6 && end[3] == ':') {
        int h = 0, m = 0;
        if (sscanf(end + 1, "%2d:%2d", &h, &m) != 2 || h > 23 || m > 59) {
            return false;
        }
        offset = (*end == '+' ? 1 : -1) * (int64_t)(h * 3600 + m * 60);
    } else {
        return false;
    }
    time_t t = timegm(&tm);
    if (t == (time_t)-1) {
        return false;
    }
    *us = ((int64_t)t - offset) * 1000000;
    return true;
}

void gw_admin_webhooks_replay(gw_req_t *req)
{
    gw_t *gw = gw_req_gw(req);
    const gw_ident_t *id = gw_req_ident(req);
    if (!id || id->role != GW_ROLE_ADMIN) {
        gw_req_fail(req, PX_PERMISSION_DENIED, "replaying webhooks is for admin tokens");
        return;
    }
    if (!gw->webhooks) {
        gw_req_fail(req, PX_FAILED_PRECONDITION,
                    "webhooks are off at this gateway (no webhooks-file)");
        return;
    }
    static const char *const names[] = {"since", "subscriber", NULL};
    const char *bad = gw_req_unknown_query(req, names);
    if (bad) {
        gw_req_fail(req, PX_INVALID_ARGUMENT, "unknown parameter \"%.40s\"", bad);
        return;
    }
    const char *since = gw_req_query(req, "since");
    const char *who = gw_req_query(req, "subscriber");
    int64_t since_us = 0;
    if (!since || !s_rfc3339(since, &since_us)) {
        gw_req_fail(req, PX_INVALID_ARGUMENT,
                    "since: required, an RFC 3339 time such as 2026-12-01T00:00:00Z");
        return;
    }
    size_t count = 0;
    px_status_t st;
    if (gw_webhooks_replay(gw->webhooks, since_us, who && *who ? who : NULL, &count, &st) !=
        PX_OK) {
        gw_req_fail(req, st.code, "%s", st.message);
        return;
    }
    char body[64];
    int n = snprintf(body, sizeof body, "{\"replayed\":%zu}", count);
    gw_req_respond(req, 200, "application/json", body, (size_t)n, NULL);
}
