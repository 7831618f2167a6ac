/*
 * test_act_retention.c - the retention pass with a tiny retention (0 days, every second):
 * an ended campaign's person-level data (citizen rows, follow-ups, keys and notes in events)
 * goes, its counts stay, the purge is logged (counts only) and audited; a campaign still
 * running is left alone. The last day is the roster's: a campaign that ended long ago is
 * purged even when its latest events are from today.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act_fixture.h"
#include "phuxanh/clock.h"
#include "px_test.h"

static act_fixture_t F;

static int s_rec(const char *campaign, int n, int stage, int channel, const char *note,
                 int64_t offset_s)
{
    char key[48], id[16];
    snprintf(key, sizeof key, "ret-%s-%d-%d", campaign, n, stage);
    snprintf(id, sizeof id, "074090%06d", n);
    Phuxanh__Activation__V1__ActivationEvent *e = act_event(key, id, "25966", stage, (int)offset_s);
    free(e->campaign_id);
    free(e->note);
    e->campaign_id = strdup(campaign);
    e->note = strdup(note);
    e->channel = channel;
    int code = act_record1(&F, e, NULL, NULL, 0);
    act_event_free(e);
    return code;
}

static long long s_q(const char *sql)
{
    return act_sql_int(&F, sql);
}

static void test_purge_keeps_counts(void)
{
    setenv("PX_RETENTION_DAYS", "0", 1);
    setenv("PX_RETENTION_INTERVAL_S", "1", 1);
    int started = act_fixture_start(&F, "act_retention");
    unsetenv("PX_RETENTION_DAYS");
    unsetenv("PX_RETENTION_INTERVAL_S");
    PX_REQUIRE(started == 0);
    /* The 2023 campaign ended long ago; the other records today. */
    PX_REQUIRE(s_rec("tn-2023", 1, 1, 3, "nhà 9", 1) == 0);
    PX_REQUIRE(s_rec("tn-2023", 2, 3, 1, "", 2) == 0);
    PX_REQUIRE(s_rec("tn-2023", 3, 2, 2, "hẻm 3", 3) == 0);
    int64_t now_offset = px_wall_us() / 1000000 - ACT_T_DAY_US / 1000000 - 60;
    PX_REQUIRE(s_rec("tn-now", 4, 1, 3, "nhà 4", now_offset) == 0);
    PX_REQUIRE(s_rec("tn-late", 5, 1, 3, "nhà 5", now_offset) == 0);
    bool purged = false;
    for (int i = 0; i < 100 && !purged; i++) {
        purged = s_q("SELECT count(*) FROM citizens WHERE campaign_id = 'tn-2023'") == 0 &&
                 s_q("SELECT count(*) FROM follow_ups WHERE campaign_id = 'tn-2023'") == 0 &&
                 s_q("SELECT count(*) FROM events WHERE campaign_id = 'tn-2023' AND "
                     "(citizen_key IS NOT NULL OR note <> '')") == 0 &&
                 s_q("SELECT count(*) FROM citizens WHERE campaign_id = 'tn-late'") == 0;
        if (!purged) {
            usleep(100000);
        }
    }
    PX_CHECK(purged);
    /* Counts stay: 1 + 3 + 2 stages reached, at every level; the follow-up list is gone and
     * with it its open counter. */
    PX_CHECK_INT_EQ(s_q("SELECT sum(count) FROM totals WHERE campaign_id = 'tn-2023' AND "
                        "unit_code = '25966' AND stage <> 101"),
                    6);
    PX_CHECK_INT_EQ(s_q("SELECT sum(count) FROM totals WHERE campaign_id = 'tn-2023' AND "
                        "unit_code = '74' AND stage <> 101"),
                    6);
    PX_CHECK_INT_EQ(s_q("SELECT sum(count) FROM daily WHERE campaign_id = 'tn-2023'"), 6);
    PX_CHECK_INT_EQ(act_total(&F, "tn-2023", "25966", 3), 1);
    PX_CHECK_INT_EQ(act_total(&F, "tn-2023", "25966", 101), 0);
    PX_CHECK_INT_EQ(act_total(&F, "tn-2023", "74", 101), 0);
    PX_CHECK_INT_EQ(s_q("SELECT count(*) FROM events WHERE campaign_id = 'tn-2023'"), 3);
    /* Ended on 2023-01-29 by the roster's calendar, whatever its latest event's day. */
    PX_CHECK_INT_EQ(s_q("SELECT count(*) FROM events WHERE campaign_id = 'tn-late' AND "
                        "citizen_key IS NULL AND note = ''"),
                    1);
    PX_CHECK_INT_EQ(act_total(&F, "tn-late", "25966", 1), 1);
    /* The running campaign keeps everything. */
    PX_CHECK_INT_EQ(s_q("SELECT count(*) FROM citizens WHERE campaign_id = 'tn-now'"), 1);
    PX_CHECK_INT_EQ(s_q("SELECT count(*) FROM follow_ups WHERE campaign_id = 'tn-now'"), 1);
    PX_CHECK_INT_EQ(s_q("SELECT count(*) FROM events WHERE campaign_id = 'tn-now' AND "
                        "citizen_key IS NOT NULL AND note = 'nhà 4'"),
                    1);
    PX_CHECK_INT_EQ(act_total(&F, "tn-now", "25966", 101), 1);
    /* Logged with counts only, audited. */
    PX_CHECK_INT_EQ(act_file_contains(F.log_path, "ACT-RETENTION-PURGE"), 1);
    PX_CHECK_INT_EQ(act_file_contains(F.log_path, "074090000001"), 0);
    PX_CHECK(s_q("SELECT count(*) FROM audit WHERE method = 'RetentionPurge' AND "
                 "detail->>'campaign_id' = 'tn-2023'") >= 1);
    /* Later passes find nothing more to do for it. */
    sleep(2);
    PX_CHECK_INT_EQ(s_q("SELECT count(*) FROM citizens WHERE campaign_id = 'tn-now'"), 1);
    long long audits = s_q("SELECT count(*) FROM audit WHERE method = 'RetentionPurge'");
    sleep(2);
    PX_CHECK_INT_EQ(s_q("SELECT count(*) FROM audit WHERE method = 'RetentionPurge'"), audits);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

/* The pass folds a closed day's counter shards into shard 0 and leaves today's alone. Events
 * come through RecordEvents (from whichever workers take them); a row in shard 5 for each day
 * is put in by hand, so that there is something to fold whatever the dispatch did. */
static void test_fold_closed_days(void)
{
    setenv("PX_RETENTION_DAYS", "3650", 1);
    setenv("PX_RETENTION_INTERVAL_S", "1", 1);
    int started = act_fixture_start(&F, "act_fold");
    unsetenv("PX_RETENTION_DAYS");
    unsetenv("PX_RETENTION_INTERVAL_S");
    PX_REQUIRE(started == 0);
    int64_t now_offset = px_wall_us() / 1000000 - ACT_T_DAY_US / 1000000 - 60;
    for (int i = 0; i < 8; i++) {
        PX_REQUIRE(s_rec("tn-2023", 100 + i, 1, 1, "", i) == 0);
        PX_REQUIRE(s_rec("tn-now", 200 + i, 1, 1, "", now_offset) == 0);
    }
    PX_REQUIRE(s_q("WITH i AS (INSERT INTO daily_shards (campaign_id, unit_code, day, stage, "
                   "channel, volunteer_code, shard, count) VALUES "
                   "('tn-2023', '25966', '2023-07-29', 2, 1, '', 5, 4), "
                   "('tn-now', '25966', (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, 2, 1, "
                   "'', 5, 3) RETURNING 1) SELECT count(*) FROM i") == 2);
    bool folded = false;
    for (int i = 0; i < 100 && !folded; i++) {
        folded = s_q("SELECT count(*) FROM daily_shards WHERE campaign_id = 'tn-2023' AND "
                     "shard <> 0") == 0;
        if (!folded) {
            usleep(100000);
        }
    }
    PX_CHECK(folded);
    PX_CHECK(act_file_contains(F.log_path, "\"event\":\"ACT-FOLD\"") >= 1);
    /* Same sums, one row a key for the closed day. */
    PX_CHECK_INT_EQ(s_q("SELECT count FROM daily_shards WHERE campaign_id = 'tn-2023' AND "
                        "shard = 0 AND day = '2023-07-29' AND stage = 1"),
                    8);
    PX_CHECK_INT_EQ(s_q("SELECT count FROM daily_shards WHERE campaign_id = 'tn-2023' AND "
                        "shard = 0 AND day = '2023-07-29' AND stage = 2"),
                    4);
    PX_CHECK_INT_EQ(s_q("SELECT count(*) FROM daily_shards WHERE campaign_id = 'tn-2023'"), 2);
    /* Today's rows stay where they are. */
    PX_CHECK_INT_EQ(s_q("SELECT count FROM daily_shards WHERE campaign_id = 'tn-now' AND "
                        "shard = 5"),
                    3);
    PX_CHECK_INT_EQ(s_q("SELECT sum(count) FROM daily WHERE campaign_id = 'tn-now' AND "
                        "stage = 1"),
                    8);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static const px_test_case_t s_cases[] = {
    {"purge_keeps_counts", test_purge_keeps_counts},
    {"fold_closed_days", test_fold_closed_days},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
