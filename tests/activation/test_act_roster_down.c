/*
 * test_act_roster_down.c - the roster down, then back: events for known units are still
 * taken (volunteer_verified = false), an unknown unit or campaign is refused UNAVAILABLE with
 * nothing stored, and once the roster answers again the background pass verifies the events; the
 * local units table lets a restarted service take events while the roster is still down.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_fixture.h"
#include "phuxanh/clock.h"
#include "px_test.h"
#include <signal.h>
#include <unistd.h>

static act_fixture_t F;

static Phuxanh__Activation__V1__ActivationEvent *s_ev(const char *key, const char *id,
                                                      const char *unit, const char *volunteer)
{
    Phuxanh__Activation__V1__ActivationEvent *e = act_event(key, id, unit, 1, 0);
    free(e->volunteer_code);
    e->volunteer_code = strdup(volunteer);
    return e;
}

/* Polls sql until it answers want or 15 s pass; returns the last answer. */
static long long s_wait(const char *sql, long long want)
{
    long long got = -1;
    for (int i = 0; i < 150; i++) {
        got = act_sql_int(&F, sql);
        if (got == want) {
            break;
        }
        px_sleep_us(100000);
    }
    return got;
}

static void test_roster_down_then_back(void)
{
    PX_REQUIRE(act_fixture_start(&F, "act_down") == 0);
    bool dup = true;
    Phuxanh__Activation__V1__ActivationEvent *e = s_ev("d1", "074090000001", "25966", "TN0001");
    PX_CHECK_INT_EQ(act_record1(&F, e, &dup, NULL, 0), 0);
    act_event_free(e);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events WHERE volunteer_verified"), 1);
    /* The background pass has read the whole tree into the local table. */
    PX_CHECK_INT_EQ(s_wait("SELECT count(*) FROM units", 9), 9);

    act_roster_stop(&F.roster);
    /* Known unit: taken, unverified. */
    px_status_t st;
    Phuxanh__Activation__V1__ActivationEvent *ev[5] = {
        s_ev("d2", "074090000002", "25966", "TN0001"), s_ev("d3", "074090000003", "25966-01", ""),
        s_ev("d4", "074090000004", "25978", "TN0001"), /* not in the tree yet */
        s_ev("d6", "074090000006", "25966", "TN0002"), /* TN0002 was at 25969 that day */
        s_ev("d7", "074090000007", "25966", ""),       /* a campaign nobody knows */
    };
    free(ev[4]->campaign_id);
    ev[4]->campaign_id = strdup("tn-moi");
    free(ev[1]->unit_code);
    ev[1]->unit_code = strdup("25966");
    free(ev[1]->neighborhood_code);
    ev[1]->neighborhood_code = strdup("25966-01");
    int64_t t0 = px_clock_us();
    Phuxanh__Activation__V1__RecordEventsResponse *r = act_record(&F, ev, 5, &st);
    PX_REQUIRE(r);
    /* Not held up by the roster: its calls (campaign, units, duty) share one 2 s budget. */
    PX_CHECK(px_clock_us() - t0 < 3500000);
    PX_CHECK_INT_EQ(r->results[0]->code, 0);
    PX_CHECK(!r->results[0]->volunteer_verified);
    PX_CHECK_INT_EQ(r->results[1]->code, 0);
    PX_CHECK(r->results[1]->volunteer_verified); /* no volunteer named */
    PX_CHECK_INT_EQ(r->results[2]->code, 14);
    PX_CHECK(strncmp(r->results[2]->message, "unit_code: ", 11) == 0);
    /* Not on duty, but the roster cannot say so now: taken, unverified. */
    PX_CHECK_INT_EQ(r->results[3]->code, 0);
    PX_CHECK(!r->results[3]->volunteer_verified);
    /* A campaign the service never heard of cannot be checked: refused, retry later. */
    PX_CHECK_INT_EQ(r->results[4]->code, 14);
    PX_CHECK(strncmp(r->results[4]->message, "campaign_id: ", 13) == 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events WHERE idempotency_key = 'd7'"), 0);
    /* One no event named yet is known all the same: the background pass read every campaign
     * (ListCampaigns) while the roster was up. */
    e = s_ev("d8", "074090000008", "25966", "");
    free(e->campaign_id);
    e->campaign_id = strdup("tn-late");
    PX_CHECK_INT_EQ(act_record1(&F, e, &dup, NULL, 0), 0);
    act_event_free(e);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events WHERE idempotency_key = 'd4'"), 0);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events WHERE NOT volunteer_verified "
                                    "AND duty_verdict = 0"),
                    2);
    PX_CHECK_INT_EQ(act_total(&F, "tn-2023", "25966", 1), 4);

    /* Once the roster is found down, a batch naming a volunteer no longer waits for it: the
     * first call of each worker finds out, then duty is skipped at once (taken unverified). */
    int64_t slowest_late = 0;
    for (int i = 0; i < 12; i++) {
        char key[16], id[16];
        snprintf(key, sizeof key, "q%d", i);
        snprintf(id, sizeof id, "0740901%05d", i);
        Phuxanh__Activation__V1__ActivationEvent *q = s_ev(key, id, "25969", "TN0001");
        int64_t a = px_clock_us();
        PX_CHECK_INT_EQ(act_record1(&F, q, &dup, NULL, 0), 0);
        int64_t took = px_clock_us() - a;
        if (i >= 6 && took > slowest_late) {
            slowest_late = took;
        }
        act_event_free(q);
    }
    if (slowest_late >= 500000) {
        fprintf(stderr, "  a batch took %lld us with the roster known down\n",
                (long long)slowest_late);
    }
    PX_CHECK(slowest_late < 500000);
    /* A restarted service knows the tree from its own table while the roster is down. */
    PX_REQUIRE(act_service_restart(&F) == 0);
    e = s_ev("d5", "074090000005", "25969", "");
    PX_CHECK_INT_EQ(act_record1(&F, e, &dup, NULL, 0), 0);
    act_event_free(e);

    /* Back on the same endpoint, with a new ward: the background pass verifies what it could
     * not, and learns the new unit. */
    PX_REQUIRE(act_roster_grow(&F.roster) == 0);
    PX_REQUIRE(act_roster_start(&F.roster) == 0);
    PX_CHECK_INT_EQ(s_wait("SELECT count(*) FROM units WHERE code = '25978'", 1), 1);
    PX_CHECK_INT_EQ(s_wait("SELECT count(*) FROM events WHERE volunteer_code <> '' AND "
                           "duty_verdict = 0",
                           0),
                    0);
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events WHERE idempotency_key = 'd2' "
                                    "AND volunteer_verified AND duty_verdict = 1"),
                    1);
    /* What the roster says later is kept for review; a counted event stays counted. */
    PX_CHECK_INT_EQ(act_sql_int(&F, "SELECT count(*) FROM events WHERE idempotency_key = 'd6' "
                                    "AND NOT volunteer_verified AND duty_verdict = 3"),
                    1);
    PX_CHECK_INT_EQ(act_total(&F, "tn-2023", "25966", 1), 4);
    /* Retrying the refused events: now answered on their merits. */
    r = act_record(&F, &ev[2], 1, &st);
    PX_REQUIRE(r);
    PX_CHECK_INT_EQ(r->results[0]->code, 9); /* TN0001 was at 25966 that day */
    PX_CHECK(strstr(r->results[0]->message, "another ward") != NULL);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    char msg[160] = "";
    PX_CHECK_INT_EQ(act_record1(&F, ev[4], &dup, msg, sizeof msg), 5);
    PX_CHECK_STR_EQ(msg, "campaign_id: no campaign \"tn-moi\"");
    for (int i = 0; i < 5; i++) {
        act_event_free(ev[i]);
    }
    /* Nothing of the numbers in the database or the log. */
    PX_CHECK_INT_EQ(act_db_contains(&F, "074090000002"), 0);
    PX_CHECK_INT_EQ(act_file_contains(F.log_path, "074090000002"), 0);
    PX_CHECK_INT_EQ(act_file_contains(F.log_path, "074090000004"), 0);
    PX_CHECK_INT_EQ(act_file_contains(F.log_path, ACT_T_SECRET), 0);
    PX_CHECK_INT_EQ(act_fixture_stop(&F), 0);
}

static void test_refuses_to_start_without_secret(void)
{
    char *url = px_test_db_new("act_nosecret");
    PX_REQUIRE(url);
    char db_arg[600];
    snprintf(db_arg, sizeof db_arg, "--db-url=%s", url);
    const char *bad[][2] = {{"--citizen-key=", NULL},
                            {"--citizen-key=abcd", NULL},
                            {"--citizen-key-file=/nonexistent/key", NULL}};
    for (size_t i = 0; i < 3; i++) {
        const char *args[] = {"--listen=tcp://127.0.0.1:0", db_arg, "--log-level=error", bad[i][0],
                              NULL};
        testd_t t;
        PX_CHECK(proc_start(&t, "services/activation/px-activation", args) != 0);
    }
    /* From a file, it starts. */
    char path[] = "/tmp/px-act-keyXXXXXX";
    int fd = mkstemp(path);
    PX_REQUIRE(fd >= 0);
    PX_REQUIRE(write(fd, ACT_T_SECRET "\n", strlen(ACT_T_SECRET) + 1) > 0);
    close(fd);
    char key_arg[300];
    snprintf(key_arg, sizeof key_arg, "--citizen-key-file=%s", path);
    const char *args[] = {"--listen=tcp://127.0.0.1:0", db_arg, "--log-level=error", key_arg, NULL};
    testd_t t;
    PX_CHECK(proc_start(&t, "services/activation/px-activation", args) == 0);
    if (t.pid > 0) {
        PX_CHECK_INT_EQ(testd_stop(&t, SIGTERM), 0);
    }
    unlink(path);
    free(url);
}

static const px_test_case_t s_cases[] = {
    {"roster_down_then_back", test_roster_down_then_back},
    {"refuses_to_start_without_secret", test_refuses_to_start_without_secret},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
