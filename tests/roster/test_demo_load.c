/*
 * test_demo_load.c - the Thuận An demo set end to end: `pxctl import` loads
 * ../shared/data/thuan-an into a real px-roster twice (the second time changes
 * nothing) and, in the order of deploy/load-demo.sh, targets.csv into a real
 * px-activation that asks that roster about units, campaigns and duty, the
 * first wave is planned, and `pxctl demo events` records a seeded weekend of
 * events naming that wave's volunteers; then every one of the ten waves is
 * planned from the activation service's figures.
 *
 * What it proves: pxctl and the roster's import agree on the files; a re-import
 * is all unchanged; the first wave is planned by the targets; the volunteers it
 * put on duty are accepted on the events; every wave gets its 30, spread by what
 * the activation service says each ward still lacks, nobody is booked twice on
 * one day, and every ward gets volunteers in every wave; a malformed file is
 * refused with nothing written.
 *
 * The data directory is found beside the repository: PX_SOURCE_DIR from the
 * environment, else the one CMake compiled in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "px_test.h"
#include "roster_fixture.h"

#ifndef PX_SOURCE_DIR
#define PX_SOURCE_DIR "."
#endif

#define CAMPAIGN "tn-cuoi-tuan-2023"
#define DISTRICT "725" /* Thuận An, the campaign's area */
#define NWAVES 10
#define NWARDS 10
/* The sum of targets.csv's targets. */
#define TARGETS_SUM 107950
/* Citizens `pxctl demo events` makes up (its default is 3,000): enough that every ward has
 * activations, few enough to load in a moment. */
#define DEMO_CITIZENS "600"
#define PXCTL_BIN "services/pxctl/pxctl"

static const char *s_data_dir(void)
{
    static char dir[2048];
    const char *src = getenv("PX_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/../shared/data/thuan-an", src && *src ? src : PX_SOURCE_DIR);
    return dir;
}

/* Runs one of our programs (binary relative to the build tree) with args; its stdout lines
 * joined by '\n' into out. Exit status. */
static int s_run(const char *binary, const char *const *args, char *out, size_t cap)
{
    char bin[1024];
    snprintf(bin, sizeof bin, "%s/%s", px_test_bin_dir(), binary);
    char *argv[16] = {bin};
    int n = 1;
    for (size_t i = 0; args[i] && n < 15; i++) {
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    int fd = -1;
    pid_t pid = px_test_spawn(argv, &fd);
    if (pid <= 0) {
        return -1;
    }
    size_t len = 0;
    out[0] = '\0';
    char line[512];
    while (px_test_read_line(fd, line, sizeof line, 60000) == 0) {
        len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s\n", line);
    }
    close(fd);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* pxctl import of the demo's four roster files from dir. */
static int s_import(const char *endpoint, const char *dir, char *out, size_t cap)
{
    char ep[300], units[2100], vols[2100], camp[2100], waves[2100];
    snprintf(ep, sizeof ep, "--roster-endpoints=%s", endpoint);
    snprintf(units, sizeof units, "%s/units.csv", dir);
    snprintf(vols, sizeof vols, "%s/volunteers.csv", dir);
    snprintf(camp, sizeof camp, "%s/campaign.csv", dir);
    snprintf(waves, sizeof waves, "%s/waves.csv", dir);
    const char *args[] = {"import",    ep,   "units", units, "volunteers", vols,
                          "campaigns", camp, "waves", waves, NULL};
    return s_run(PXCTL_BIN, args, out, cap);
}

/* What the activation service says each ward of the district still lacks (target minus
 * activated, never below 0), as the planner must read it; the number of wards, -1 on failure.
 * Also checks that the targets are targets.csv's (their sum) and that events were counted. */
static int s_remaining(roster_peer_t *a, char codes[][16], int *remaining, int cap)
{
    Phuxanh__Activation__V1__GetProgressRequest req =
        PHUXANH__ACTIVATION__V1__GET_PROGRESS_REQUEST__INIT;
    req.campaign_id = CAMPAIGN;
    req.unit_code = DISTRICT;
    ProtobufCMessage *msg = NULL;
    px_status_t st;
    if (roster_peer_call(a, "GetProgress", &req.base,
                         &phuxanh__activation__v1__get_progress_response__descriptor, &msg,
                         &st) != PX_OK) {
        fprintf(stderr, "GetProgress: %s\n", st.message);
        return -1;
    }
    const Phuxanh__Activation__V1__GetProgressResponse *rep = (const void *)msg;
    int n = 0;
    long long targets = 0, activated = 0;
    for (size_t i = 0; i < rep->n_children && n < cap; i++, n++) {
        const Phuxanh__Activation__V1__ProgressRow *row = rep->children[i];
        snprintf(codes[n], sizeof codes[n], "%s", row->unit_code);
        remaining[n] = row->target > row->activated ? row->target - row->activated : 0;
        targets += row->target;
        activated += row->activated;
    }
    PX_CHECK_INT_EQ(targets, TARGETS_SUM);
    PX_CHECK(activated > 0);
    protobuf_c_message_free_unpacked(msg, NULL);
    return n;
}

static void test_import_twice_then_plan_every_wave(void)
{
    /* The two services point at each other: the activation service's port first. */
    int port = px_test_free_port();
    PX_REQUIRE(port > 0);
    char peer[100];
    snprintf(peer, sizeof peer, "--activation-endpoints=tcp://127.0.0.1:%d", port);
    const char *extra[] = {peer, NULL};
    roster_fixture_t f;
    roster_peer_t a = {0};
    PX_REQUIRE(roster_fixture_start(&f, "demoload", extra) == 0);

    static char out[16384];
    PX_CHECK_INT_EQ(s_import(f.proc.endpoint, s_data_dir(), out, sizeof out), 0);
    PX_CHECK(strstr(out, "units: inserted=71 updated=0 unchanged=0\n") != NULL);
    PX_CHECK(strstr(out, "volunteers: inserted=320 updated=0 unchanged=0\n") != NULL);
    PX_CHECK(strstr(out, "campaigns: inserted=1 updated=0 unchanged=0\n") != NULL);
    PX_CHECK(strstr(out, "waves: inserted=10 updated=0 unchanged=0\n") != NULL);
    printf("%s", out);

    /* The activation service, once the roster has the tree it reads at start. Then the order
     * of deploy/load-demo.sh: the demo targets through the service's API, the first wave's
     * plan, a seeded weekend of events naming the volunteers that plan put on duty. */
    int started = roster_peer_start(&a, "demoload_act", port, f.proc.endpoint, 71, NULL);
    if (started != 0) {
        roster_fixture_stop(&f);
    }
    PX_REQUIRE(started == 0);
    char act_ep[300], ros_ep[300], targets_csv[2100];
    snprintf(act_ep, sizeof act_ep, "--activation-endpoints=%s", a.proc.endpoint);
    snprintf(ros_ep, sizeof ros_ep, "--roster-endpoints=%s", f.proc.endpoint);
    snprintf(targets_csv, sizeof targets_csv, "%s/targets.csv", s_data_dir());
    const char *targets[] = {"import", act_ep, ros_ep, "targets", targets_csv, NULL};
    PX_CHECK_INT_EQ(s_run(PXCTL_BIN, targets, out, sizeof out), 0);
    PX_CHECK(strstr(out, "targets: inserted=10 updated=0 unchanged=0\n") != NULL);
    printf("%s", out);

    /* The campaign's area is the district holding the wards (campaign.csv names none). */
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM campaigns WHERE unit_code = '725'"),
                    1);
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM units WHERE level = 3"), NWARDS);

    /* Again, planning the first wave: nothing changes, and the wave is filled, by the targets
     * (nothing is activated yet): 25990 has the largest, 25972 the smallest. */
    long long audit = roster_sql_int(&f, "SELECT count(*) FROM audit");
    PX_CHECK_INT_EQ(s_import(f.proc.endpoint, s_data_dir(), out, sizeof out), 0);
    PX_CHECK(strstr(out, "units: inserted=0 updated=0 unchanged=71\n") != NULL);
    PX_CHECK(strstr(out, "volunteers: inserted=0 updated=0 unchanged=320\n") != NULL);
    PX_CHECK(strstr(out, "campaigns: inserted=0 updated=0 unchanged=1\n") != NULL);
    PX_CHECK(strstr(out, "waves: inserted=0 updated=0 unchanged=10\n") != NULL);
    printf("%s", out);
    /* The re-import added no audit row. */
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM audit"), audit);
    {
        Phuxanh__Roster__V1__PlanWaveRequest req = PHUXANH__ROSTER__V1__PLAN_WAVE_REQUEST__INIT;
        req.campaign_id = CAMPAIGN;
        req.day = "2023-07-29";
        ProtobufCMessage *msg = NULL;
        px_status_t st;
        PX_CHECK_INT_EQ(roster_call(&f, "PlanWave", &req.base,
                                    &phuxanh__roster__v1__plan_wave_response__descriptor, &msg,
                                    &st),
                        PX_OK);
        PX_REQUIRE(msg);
        const Phuxanh__Roster__V1__PlanWaveResponse *rep = (const void *)msg;
        PX_CHECK(rep->committed && !rep->even_spread_fallback);
        PX_CHECK_INT_EQ(rep->capacity, 30);
        PX_CHECK_INT_EQ(rep->n_planned, 30);
        PX_CHECK_INT_EQ(rep->unfilled, 0);
        int seen = 0;
        for (size_t w = 0; w < rep->n_wards; w++) {
            const Phuxanh__Roster__V1__WardAllocation *x = rep->wards[w];
            seen += x->remaining_to_target == 15900 && x->planned == 4;
            seen += x->remaining_to_target == 4150 && x->planned == 2;
        }
        PX_CHECK_INT_EQ(seen, 2);
        protobuf_c_message_free_unpacked(msg, NULL);
    }

    /* The events: the activation service asks the roster whether each named volunteer was on
     * duty there that day, and refuses those who were not - none here. */
    const char *events[] = {"demo",       "events",     act_ep,        ros_ep, "--data",
                            s_data_dir(), "--citizens", DEMO_CITIZENS, NULL};
    PX_CHECK_INT_EQ(s_run(PXCTL_BIN, events, out, sizeof out), 0);
    PX_CHECK(strstr(out, " refused=0\n") != NULL);
    printf("%s", out);
    /* Again: every event a duplicate. */
    PX_CHECK_INT_EQ(s_run(PXCTL_BIN, events, out, sizeof out), 0);
    PX_CHECK(strstr(out, " recorded=0 ") != NULL);
    PX_CHECK(roster_peer_sql_int(&a, "SELECT count(*) FROM events WHERE volunteer_code <> ''"
                                     " AND volunteer_verified") > 0);
    char codes[NWARDS][16];
    int remaining[NWARDS];
    PX_CHECK_INT_EQ(s_remaining(&a, codes, remaining, NWARDS), NWARDS);

    /* Every wave, in day order. */
    PGconn *c = PQconnectdb(f.db_url);
    PX_REQUIRE(PQstatus(c) == CONNECTION_OK);
    PGresult *days = PQexec(c, "SELECT day::text FROM waves ORDER BY day");
    PX_REQUIRE(PQresultStatus(days) == PGRES_TUPLES_OK);
    PX_CHECK_INT_EQ(PQntuples(days), NWAVES);
    for (int i = 0; i < PQntuples(days); i++) {
        Phuxanh__Roster__V1__PlanWaveRequest req = PHUXANH__ROSTER__V1__PLAN_WAVE_REQUEST__INIT;
        req.campaign_id = CAMPAIGN;
        req.day = PQgetvalue(days, i, 0);
        ProtobufCMessage *msg = NULL;
        px_status_t st;
        PX_CHECK_INT_EQ(roster_call(&f, "PlanWave", &req.base,
                                    &phuxanh__roster__v1__plan_wave_response__descriptor, &msg,
                                    &st),
                        PX_OK);
        if (!msg) {
            fprintf(stderr, "PlanWave %s: %s\n", req.day, st.message);
            continue;
        }
        const Phuxanh__Roster__V1__PlanWaveResponse *rep =
            (const Phuxanh__Roster__V1__PlanWaveResponse *)msg;
        PX_CHECK(!rep->even_spread_fallback);
        PX_CHECK_INT_EQ(rep->already_assigned + (int)rep->n_planned, 30);
        PX_CHECK_INT_EQ(rep->unfilled, 0);
        PX_CHECK_INT_EQ(rep->n_wards, NWARDS);
        for (size_t w = 0; w < rep->n_wards; w++) {
            PX_CHECK(rep->wards[w]->already_assigned + rep->wards[w]->planned >= 1);
        }
        /* The service's figures, ward by ward; and a ward that lacks more never gets fewer
         * (a fresh wave only: the first was planned above), the neediest more than the least
         * needy. */
        const Phuxanh__Roster__V1__WardAllocation *most = NULL, *least = NULL;
        for (size_t w = 0; w < rep->n_wards && w < NWARDS; w++) {
            const Phuxanh__Roster__V1__WardAllocation *x = rep->wards[w];
            PX_CHECK_STR_EQ(x->unit_code, codes[w]);
            PX_CHECK_INT_EQ(x->remaining_to_target, remaining[w]);
            most = !most || x->remaining_to_target > most->remaining_to_target ? x : most;
            least = !least || x->remaining_to_target < least->remaining_to_target ? x : least;
            for (size_t v = 0; rep->already_assigned == 0 && v < rep->n_wards; v++) {
                const Phuxanh__Roster__V1__WardAllocation *y = rep->wards[v];
                PX_CHECK(x->remaining_to_target <= y->remaining_to_target ||
                         x->planned >= y->planned);
            }
        }
        PX_CHECK(rep->already_assigned > 0 || (most && least && most->planned > least->planned));
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    PQclear(days);
    PQfinish(c);

    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM waves WHERE assigned <> 30"), 0);
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM assignments WHERE status <> 4"),
                    30 * NWAVES);
    /* Nobody twice on one day (the key forbids it; this says so in the data too). */
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM (SELECT volunteer_code, day"
                                       " FROM assignments GROUP BY 1, 2 HAVING count(*) > 1) x"),
                    0);
    /* Every ward in every wave. */
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM (SELECT DISTINCT day, unit_code"
                                       " FROM assignments) x"),
                    NWAVES * NWARDS);
    /* Nobody planned who is not an active volunteer, nowhere but at a ward. */
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM assignments a JOIN units u"
                                       " ON u.code = a.unit_code WHERE u.level <> 3"),
                    0);

    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);
    PX_CHECK_INT_EQ(roster_peer_stop(&a), 0);
}

/* A broken file: pxctl names it and its line, and nothing is written. */
static void test_malformed_file_sends_nothing(void)
{
    roster_fixture_t f;
    PX_REQUIRE(roster_fixture_start(&f, "demoload", NULL) == 0);
    char dir[] = "/tmp/px-demo-load-XXXXXX";
    PX_REQUIRE(mkdtemp(dir) != NULL);
    static const struct {
        const char *name;
        const char *text;
    } files[] = {
        {"units.csv", "\xEF\xBB\xBF"
                      "code,name,level,parent_code\r\n74,\"Bình Dương\",province,\r\n"},
        {"volunteers.csv", "code,full_name\nTN0001,\"Nguyễn \"Văn\" An\"\n"},
        {"campaign.csv", "id,name,starts_on,ends_on\nc,\"x, \"\"y\"\"\",2023-07-01,2023-07-02\n"},
        {"waves.csv", "campaign,day,capacity\nc,2023-07-01,30\n"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        FILE *fp = fopen(path, "w");
        PX_REQUIRE(fp != NULL);
        fputs(files[i].text, fp);
        fclose(fp);
    }
    static char out[4096];
    PX_CHECK_INT_EQ(s_import(f.proc.endpoint, dir, out, sizeof out), 1);
    PX_CHECK_STR_EQ(out, "");
    PX_CHECK_INT_EQ(roster_sql_int(&f, "SELECT count(*) FROM units"), 0);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        unlink(path);
    }
    rmdir(dir);
    PX_CHECK_INT_EQ(roster_fixture_stop(&f), 0);
}

int main(int argc, char **argv)
{
    static const px_test_case_t cases[] = {
        {"import_twice_then_plan_every_wave", test_import_twice_then_plan_every_wave},
        {"malformed_file_sends_nothing", test_malformed_file_sends_nothing},
        {NULL, NULL},
    };
    return px_test_main(argc, argv, cases);
}
