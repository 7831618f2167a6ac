/*
 * test_act_db_outage.c - the database refuses the service: RecordEvents answers UNAVAILABLE
 * (nothing acknowledged); once it accepts again the service reconnects by itself and the
 * retried batch is taken and counted once.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act_fixture.h"
#include "phuxanh/clock.h"
#include "px_test.h"

static void s_allow(const char *dbname, bool allow)
{
    char sql[512];
    snprintf(sql, sizeof sql, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS %s", dbname,
             allow ? "true" : "false");
    PX_CHECK_INT_EQ(px_test_admin_exec(sql), 0);
    if (!allow) {
        snprintf(sql, sizeof sql,
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'",
                 dbname);
        PX_CHECK_INT_EQ(px_test_admin_exec(sql), 0);
    }
}

static void test_outage_then_retry(void)
{
    act_fixture_t f;
    PX_REQUIRE(act_fixture_start(&f, "act_dbdown") == 0);
    const char *dbname = strrchr(f.db_url, '/') + 1;
    Phuxanh__Activation__V1__ActivationEvent *ev[3];
    for (int i = 0; i < 3; i++) {
        char key[8], id[16];
        snprintf(key, sizeof key, "o%d", i);
        snprintf(id, sizeof id, "07409000%04d", i);
        ev[i] = act_event(key, id, "25966", 3, 0);
    }
    s_allow(dbname, false);
    px_status_t st;
    Phuxanh__Activation__V1__RecordEventsResponse *r = NULL;
    /* Several calls, all refused (the broker may give them all to one worker). The answer
     * says what is missing in the service's terms; where the database lives (libpq's "connection
     * to server at ..., port ...") is for the log only, with the call's request id. */
    for (int i = 0; i < 4; i++) {
        r = act_record(&f, ev, 3, &st);
        PX_CHECK(r == NULL && st.code == PX_UNAVAILABLE);
        PX_CHECK(strncmp(st.message, "activation database unavailable", 31) == 0);
        PX_CHECK(!strstr(st.message, "127.0.0.1") && !strstr(st.message, "port") &&
                 !strstr(st.message, "server"));
        if (r) {
            protobuf_c_message_free_unpacked(&r->base, NULL);
        }
    }
    FILE *log = fopen(f.log_path, "r");
    PX_REQUIRE(log);
    char line[4096];
    bool detailed = false;
    while (fgets(line, sizeof line, log)) {
        detailed = detailed || (strstr(line, "\"DB-UNAVAILABLE\"") && strstr(line, "request_id") &&
                                strstr(line, "\"detail\""));
    }
    fclose(log);
    PX_CHECK(detailed);
    s_allow(dbname, true);
    r = NULL;
    for (int i = 0; i < 50 && !r; i++) {
        r = act_record(&f, ev, 3, &st);
        if (!r) {
            px_sleep_us(100000);
        }
    }
    PX_REQUIRE(r);
    PX_CHECK_INT_EQ(r->recorded, 3);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = act_record(&f, ev, 3, &st);
    PX_REQUIRE(r);
    PX_CHECK_INT_EQ(r->duplicates, 3);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    PX_CHECK_INT_EQ(act_total(&f, "tn-2023", "74", 3), 3);
    PX_CHECK_INT_EQ(act_sql_int(&f, "SELECT count(*) FROM events"), 3);
    for (int i = 0; i < 3; i++) {
        act_event_free(ev[i]);
    }
    PX_CHECK_INT_EQ(act_fixture_stop(&f), 0);
}

static const px_test_case_t s_cases[] = {
    {"outage_then_retry", test_outage_then_retry},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
