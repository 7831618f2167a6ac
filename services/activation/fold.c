/*
 * fold.c - folds the daily counter shards of closed days into shard 0.
 *
 * RecordEvents writes each worker's counts into its own shard (0004_counter_shards.sql), so
 * that batches in flight never wait on each other's rows; a reader then sums up to one row
 * per worker. Once a day is over its rows hardly change (an event recorded late may still
 * add to them), so the shards of days before yesterday (Viet Nam time) are folded into shard
 * 0, and QueryCounts and TopVolunteers over a campaign's past days read one row per key
 * instead of one per worker. totals are not folded: every batch of the campaign writes them.
 *
 * One statement per page, in one transaction: the moved rows are locked in key order and
 * deleted, and their sums added to shard 0 - readers see the same sums before and after. A
 * worker writing a late event into its shard meanwhile waits for that row or writes a new
 * row folded next time. Lock order cannot cycle: a worker locks rows of its own shard only,
 * in key order; the fold locks the moved rows in key order, then the shard-0 rows.
 */
#include <stdio.h>
#include <stdlib.h>

#include "activation.h"

/* Rows moved per statement: a short transaction, however much waits. */
#define S_PAGE 10000
#define S_PAGES_MAX 100

static const px_db_stmt_t s_fold = {
    "act_fold_daily",
    "WITH k AS (SELECT campaign_id, unit_code, day, stage, channel, volunteer_code, shard "
    "  FROM daily_shards WHERE shard <> 0 "
    "  AND day < (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date - 1 "
    "  ORDER BY campaign_id, unit_code, day, stage, channel, volunteer_code, shard "
    "  LIMIT $1::int FOR UPDATE), "
    "moved AS (DELETE FROM daily_shards d USING k WHERE d.campaign_id = k.campaign_id "
    "  AND d.unit_code = k.unit_code AND d.day = k.day AND d.stage = k.stage "
    "  AND d.channel = k.channel AND d.volunteer_code = k.volunteer_code AND d.shard = k.shard "
    "  RETURNING d.campaign_id, d.unit_code, d.day, d.stage, d.channel, d.volunteer_code, "
    "  d.count), "
    "ins AS (INSERT INTO daily_shards (campaign_id, unit_code, day, stage, channel, "
    "  volunteer_code, shard, count) "
    "  SELECT campaign_id, unit_code, day, stage, channel, volunteer_code, 0, sum(count) "
    "  FROM moved GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6 "
    "  ON CONFLICT (campaign_id, unit_code, day, stage, channel, volunteer_code, shard) "
    "  DO UPDATE SET count = daily_shards.count + EXCLUDED.count RETURNING 1) "
    "SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM ins)",
};

long long act_fold_daily(px_db_t *db, px_status_t *st)
{
    long long total = 0;
    char limit[16];
    snprintf(limit, sizeof limit, "%d", S_PAGE);
    const char *p[1] = {limit};
    for (int page = 0; page < S_PAGES_MAX; page++) {
        PGresult *res = NULL;
        if (px_db_execp(db, &s_fold, 1, p, &res, st) != PX_OK) {
            return total > 0 ? total : -1;
        }
        long long moved = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
        total += moved;
        if (moved < S_PAGE) {
            break;
        }
    }
    return total;
}
