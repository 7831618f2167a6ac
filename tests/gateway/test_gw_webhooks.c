/*
 * test_gw_webhooks.c - px-gateway's webhooks against a real receiver (wh_receiver.c)
 * in this process: what is sent and how it is signed, retries, restarts and crashes
 * between tries, replay, which wards fire, the journal read back after damage, the
 * subscribers file, the daily summary, and the bound on what waits.
 *
 * The module runs as in the gateway: its own thread, libcurl over real TCP, the
 * journal in a fresh state directory per case. Only the clock is moved (through
 * the option made for it) and only for the daily summary; backoff is shortened to
 * 100 ms through the options.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gateway.h"
#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/clock.h"
#include "px_test.h"
#include "webhooks.h"
#include "wh_receiver.h"

#define SECRET "s3cr3t-0123456789abcdef0123456789abcdef"
#define SECRET2 "another-secret-0123456789abcdef-0123456789"
#define WAIT_MS 10000

/* Waits (polling) until cond holds or ms pass. */
#define WAIT_FOR(cond, ms)                                                                         \
    for (int64_t wait_end_ = px_clock_us() + (ms)*1000LL; !(cond) && px_clock_us() < wait_end_;    \
         px_sleep_us(10000)) {                                                                     \
    }

/* ---------------------------------------------------------------- the clock */

static atomic_llong s_clock_offset_us;

static int64_t s_now(void *ctx)
{
    return px_wall_us() + atomic_load(&s_clock_offset_us);
}

/* From now on the module's clock reads unix_s (and runs on from there). */
static void s_clock_set(int64_t unix_s)
{
    atomic_store(&s_clock_offset_us, unix_s * 1000000 - px_wall_us());
}

/* ---------------------------------------------------------------- the fixture */

typedef struct {
    char dir[64];
    char subs[128];
    char journal[128];
    char logpath[128];
    int log_fd;
    px_log_t *log;
    gw_units_t *units;
    wh_receiver_t *rx;
    unsigned port;
    gw_webhooks_opts_t opts;
} fx_t;

/* A province, two districts, three wards, a neighborhood. */
static void s_tree(gw_units_t *units)
{
    static const char *const codes[] = {"74", "725", "726", "25966", "25969", "26000", "25966-01"};
    static const char *const parents[] = {"", "74", "74", "725", "725", "726", "25966"};
    static const char *const names[] = {"Bình Dương", "Thuận An", "Dĩ An",   "Lái Thiêu",
                                        "Bình Nhâm",  "Dĩ An",    "Đông Nhì"};
    static const int levels[] = {1, 2, 2, 3, 3, 3, 4}; /* phuxanh.roster.v1.UnitLevel */
    gw_units_set(units, codes, parents, names, levels, 7, 1);
}

static bool fx_init(fx_t *f)
{
    memset(f, 0, sizeof *f);
    atomic_store(&s_clock_offset_us, 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/px-wh-XXXXXX");
    if (!mkdtemp(f->dir)) {
        return false;
    }
    snprintf(f->subs, sizeof f->subs, "%s/subscribers", f->dir);
    snprintf(f->journal, sizeof f->journal, "%s/webhooks.journal", f->dir);
    snprintf(f->logpath, sizeof f->logpath, "%s/log", f->dir);
    f->log_fd = open(f->logpath, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    f->log = px_log_new("px-gateway", PX_LOG_DEBUG, f->log_fd);
    f->units = gw_units_new();
    f->rx = wh_receiver_new(0);
    if (f->log_fd < 0 || !f->log || !f->units || !f->rx) {
        return false;
    }
    s_tree(f->units);
    f->port = wh_receiver_port(f->rx);
    f->opts.subscribers_file = f->subs;
    f->opts.state_dir = f->dir;
    f->opts.units = f->units;
    f->opts.daily_hour = -1;
    f->opts.retry_first_ms = 100;
    f->opts.retry_max_ms = 400;
    f->opts.try_timeout_ms = 3000;
    f->opts.now = s_now;
    f->opts.log = f->log;
    return true;
}

static void s_rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(dir);
}

static void fx_fini(fx_t *f)
{
    wh_receiver_destroy(&f->rx);
    gw_units_destroy(&f->units);
    px_log_destroy(&f->log);
    if (f->log_fd >= 0) {
        close(f->log_fd);
    }
    if (!getenv("PX_TEST_KEEP_DIR")) {
        s_rm_rf(f->dir);
    }
}

static void s_write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

/* The subscribers file, from text whose every {port} is the receiver's port. */
static void fx_subs(fx_t *f, const char *text)
{
    char out[4096], port[8];
    size_t n = 0;
    snprintf(port, sizeof port, "%u", f->port);
    for (const char *p = text; *p && n + sizeof port < sizeof out;) {
        if (strncmp(p, "{port}", 6) == 0) {
            n += (size_t)snprintf(out + n, sizeof out - n, "%s", port);
            p += 6;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    s_write_file(f->subs, out);
}

/* malloc'd contents of a file, "" when missing. */
static char *s_read_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (fp && mem) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
            fwrite(chunk, 1, n, mem);
        }
    }
    if (fp) {
        fclose(fp);
    }
    if (mem) {
        fclose(mem);
    }
    return buf;
}

static bool s_file_has(const char *path, const char *needle)
{
    char *text = s_read_file(path);
    bool has = text && strstr(text, needle);
    free(text);
    return has;
}

static size_t s_count_in_file(const char *path, const char *needle)
{
    char *text = s_read_file(path);
    size_t n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        n++;
    }
    free(text);
    return n;
}

/* A CountsChanged for (campaign, unit) as the feed would hand it over. */
static void s_change(gw_webhooks_t *wh, const char *campaign, const char *unit, bool green)
{
    Phuxanh__Activation__V1__CountsChanged m = PHUXANH__ACTIVATION__V1__COUNTS_CHANGED__INIT;
    Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    at.seconds = 1690000000; /* 2023-07-22T04:26:40Z */
    at.nanos = 123456000;
    m.campaign_id = (char *)campaign;
    m.unit_code = (char *)unit;
    m.stage = PHUXANH__ACTIVATION__V1__STAGE__STAGE_ACTIVATED;
    m.target = 10;
    m.activated = green ? 10 : 9;
    m.green = green;
    m.changed_at = &at;
    m.sequence = 1;
    gw_webhooks_on_change(wh, &m.base);
}

static uint64_t s_delivered(gw_webhooks_t *wh)
{
    uint64_t n = 0;
    gw_webhooks_counts(wh, &n, NULL, NULL, NULL, NULL);
    return n;
}

static uint64_t s_pending(gw_webhooks_t *wh)
{
    uint64_t n = 0;
    gw_webhooks_counts(wh, NULL, NULL, &n, NULL, NULL);
    return n;
}

/* The delivery id of request i ("" when none). */
static void s_id_of(wh_receiver_t *rx, size_t i, char *out)
{
    wh_request_t r;
    out[0] = '\0';
    if (wh_receiver_get(rx, i, &r)) {
        snprintf(out, 64, "%s", r.delivery);
        wh_request_clear(&r);
    }
}

/* ---------------------------------------------------------------- cases */

static void test_signature_verifies(void)
{
    fx_t f;
    PX_REQUIRE(fx_init(&f));
    fx_subs(&f,
            "# ops\nops http://127.0.0.1:{port}/hook secret=" SECRET " units=725 kinds=green\n");
    px_status_t st;
    gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    int64_t before_s = px_wall_us() / 1000000;
    s_change(wh, "c1", "25966", true);
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 1, WAIT_MS), 1);
    wh_request_t r;
    PX_REQUIRE(wh_receiver_get(f.rx, 0, &r));
    PX_CHECK_STR_EQ(r.method, "POST");
    PX_CHECK_STR_EQ(r.path, "/hook");
    PX_CHECK_STR_EQ(r.content_type, "application/json");
    PX_CHECK_STR_EQ(r.event, "ward.green");
    PX_CHECK_INT_EQ(strlen(r.delivery), 32);
    PX_CHECK_INT_EQ(strspn(r.delivery, "0123456789abcdef"), 32);

    /* t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")> */
    long long t = 0;
    char v1[65] = "";
    PX_CHECK(sscanf(r.signature, "t=%lld,v1=%64[0-9a-f]", &t, v1) == 2);
    PX_CHECK(t >= before_s - 1 && t <= before_s + 30);
    char signed_text[64];
    snprintf(signed_text, sizeof signed_text, "%lld.", t);
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    char hex[2 * sizeof mac + 1];
    crypto_auth_hmacsha256_state hs;
    crypto_auth_hmacsha256_init(&hs, (const uint8_t *)SECRET, strlen(SECRET));
    crypto_auth_hmacsha256_update(&hs, (const uint8_t *)signed_text, strlen(signed_text));
    crypto_auth_hmacsha256_update(&hs, (const uint8_t *)r.body, r.len);
    crypto_auth_hmacsha256_final(&hs, mac);
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    PX_CHECK_STR_EQ(v1, hex);
    /* A body changed by one byte does not verify. */
    r.body[0] = ' ';
    crypto_auth_hmacsha256_init(&hs, (const uint8_t *)SECRET, strlen(SECRET));
    crypto_auth_hmacsha256_update(&hs, (const uint8_t *)signed_text, strlen(signed_text));
    crypto_auth_hmacsha256_update(&hs, (const uint8_t *)r.body, r.len);
    crypto_auth_hmacsha256_final(&hs, mac);
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    PX_CHECK(strcmp(v1, hex) != 0);
    r.body[0] = '{';

    json_t *body = json_loads(r.body, 0, NULL);
    PX_REQUIRE(body);
    PX_CHECK_STR_EQ(json_string_value(json_object_get(body, "event")), "ward.green");
    PX_CHECK_STR_EQ(json_string_value(json_object_get(body, "delivery_id")), r.delivery);
    PX_CHECK_STR_EQ(json_string_value(json_object_get(body, "campaign_id")), "c1");
    PX_CHECK_STR_EQ(json_string_value(json_object_get(body, "unit_code")), "25966");
    PX_CHECK_STR_EQ(json_string_value(json_object_get(body, "unit_name")), "Lái Thiêu");
    PX_CHECK_INT_EQ(json_integer_value(json_object_get(body, "target")), 10);
    PX_CHECK_INT_EQ(json_integer_value(json_object_get(body, "activated")), 10);
    PX_CHECK_STR_EQ(json_string_value(json_object_get(body, "changed_at")),
                    "2023-07-22T04:26:40.123456Z");
    json_decref(body);
    WAIT_FOR(s_delivered(wh) == 1, WAIT_MS);
    PX_CHECK_INT_EQ(s_delivered(wh), 1);
    PX_CHECK_INT_EQ(s_pending(wh), 0);
    wh_request_clear(&r);
    gw_webhooks_destroy(&wh);
    PX_CHECK(wh == NULL);
    gw_webhooks_destroy(&wh); /* harmless twice */
    fx_fini(&f);
}

static void test_500_is_retried_then_delivered(void)
{
    fx_t f;
    PX_REQUIRE(fx_init(&f));
    fx_subs(&f, "ops http://127.0.0.1:{port}/hook?key=querytoken secret=" SECRET " kinds=green\n");
    wh_receiver_fail(f.rx, 2, 500);
    px_status_t st;
    gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    int64_t t0 = px_clock_us();
    s_change(wh, "c1", "25969", true);
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 3, WAIT_MS), 3);
    WAIT_FOR(s_delivered(wh) == 1, WAIT_MS);
    /* first try, then 100 ms, then 200 ms later */
    PX_CHECK(px_clock_us() - t0 >= 300000);
    char id0[64], id1[64], id2[64];
    s_id_of(f.rx, 0, id0);
    s_id_of(f.rx, 1, id1);
    s_id_of(f.rx, 2, id2);
    PX_CHECK_STR_EQ(id1, id0);
    PX_CHECK_STR_EQ(id2, id0);
    PX_CHECK_INT_EQ(wh_receiver_delivered(f.rx, id0), 1);
    uint64_t delivered, failed, pending, given_up, dropped;
    gw_webhooks_counts(wh, &delivered, &failed, &pending, &given_up, &dropped);
    PX_CHECK_INT_EQ(delivered, 1);
    PX_CHECK_INT_EQ(failed, 2);
    PX_CHECK_INT_EQ(pending, 0);
    PX_CHECK_INT_EQ(given_up, 0);
    PX_CHECK_INT_EQ(dropped, 0);
    px_sleep_us(300000);
    PX_CHECK_INT_EQ(wh_receiver_count(f.rx), 3); /* nothing after the 200 */
    gw_webhooks_destroy(&wh);
    /* One line per try outcome; never the secret, nor the URL (its query may be a token). */
    PX_CHECK_INT_EQ(s_count_in_file(f.logpath, "\"GW-WEBHOOK-RETRY\""), 2);
    PX_CHECK_INT_EQ(s_count_in_file(f.logpath, "\"GW-WEBHOOK-DELIVERED\""), 1);
    PX_CHECK(s_file_has(f.logpath, "\"status\":500"));
    PX_CHECK(!s_file_has(f.logpath, SECRET));
    PX_CHECK(!s_file_has(f.logpath, "querytoken"));
    PX_CHECK(!s_file_has(f.journal, SECRET));
    fx_fini(&f);
}

static void test_gives_up_then_replay(void)
{
    fx_t f;
    PX_REQUIRE(fx_init(&f));
    fx_subs(&f, "ops http://127.0.0.1:{port}/hook secret=" SECRET " kinds=green\n");
    f.opts.give_up_after_ms = 500;
    wh_receiver_fail(f.rx, -1, 503);
    px_status_t st;
    gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    s_change(wh, "c1", "25966", true);
    uint64_t given_up = 0;
    WAIT_FOR((gw_webhooks_counts(wh, NULL, NULL, NULL, &given_up, NULL), given_up == 1), WAIT_MS);
    PX_CHECK_INT_EQ(given_up, 1);
    PX_CHECK_INT_EQ(s_pending(wh), 0);
    size_t tries = wh_receiver_count(f.rx);
    PX_CHECK(tries >= 2 && tries <= 4); /* 0, 100, 300 ms; the next would be past 500 ms */
    PX_CHECK_INT_EQ(s_count_in_file(f.logpath, "\"GW-WEBHOOK-GAVE-UP\""), 1);
    px_sleep_us(300000);
    PX_CHECK_INT_EQ(wh_receiver_count(f.rx), tries);

    wh_receiver_fail(f.rx, 0, 0);
    size_t count = 0;
    PX_CHECK_INT_EQ(gw_webhooks_replay(wh, 0, NULL, &count, &st), PX_OK);
    PX_CHECK_INT_EQ(count, 1);
    WAIT_FOR(s_delivered(wh) == 1, WAIT_MS);
    char id0[64], last[64];
    s_id_of(f.rx, 0, id0);
    s_id_of(f.rx, wh_receiver_count(f.rx) - 1, last);
    PX_CHECK_STR_EQ(last, id0);
    PX_CHECK_INT_EQ(wh_receiver_delivered(f.rx, id0), 1);
    gw_webhooks_destroy(&wh);
    fx_fini(&f);
}

static void test_restart_between_tries_loses_nothing(void)
{
    fx_t f;
    PX_REQUIRE(fx_init(&f));
    fx_subs(&f, "ops http://127.0.0.1:{port}/hook secret=" SECRET " kinds=green\n");
    wh_receiver_fail(f.rx, -1, 500);
    px_status_t st;
    gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    s_change(wh, "c1", "25966", true);
    PX_CHECK(wh_receiver_wait(f.rx, 1, WAIT_MS) >= 1);
    char id[64];
    s_id_of(f.rx, 0, id);
    /* One gateway per state directory. */
    gw_webhooks_t *second = gw_webhooks_new(&f.opts, &st);
    PX_CHECK(second == NULL);
    PX_CHECK_INT_EQ(st.code, PX_FAILED_PRECONDITION);
    gw_webhooks_destroy(&second);
    gw_webhooks_destroy(&wh); /* pending: in backoff or in flight */
    PX_CHECK_INT_EQ(wh_receiver_delivered(f.rx, id), 0);

    wh_receiver_fail(f.rx, 0, 0);
    size_t before = wh_receiver_count(f.rx);
    wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    PX_CHECK_INT_EQ(s_pending(wh) + s_delivered(wh), 1);
    WAIT_FOR(wh_receiver_delivered(f.rx, id) == 1, WAIT_MS);
    PX_CHECK_INT_EQ(wh_receiver_delivered(f.rx, id), 1);
    WAIT_FOR(s_delivered(wh) == 1, WAIT_MS);
    px_sleep_us(300000);
    PX_CHECK_INT_EQ(wh_receiver_count(f.rx), before + 1);
    PX_CHECK_INT_EQ(s_pending(wh), 0);
    gw_webhooks_destroy(&wh);

    /* Delivered is durable too: a third start sends nothing. */
    wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    PX_CHECK_INT_EQ(s_pending(wh), 0);
    px_sleep_us(300000);
    PX_CHECK_INT_EQ(wh_receiver_count(f.rx), before + 1);
    gw_webhooks_destroy(&wh);
    fx_fini(&f);
}

static void test_crash_loses_nothing(void)
{
    fx_t f;
    PX_REQUIRE(fx_init(&f));
    fx_subs(&f, "ops http://127.0.0.1:{port}/hook secret=" SECRET " kinds=green\n");
    wh_receiver_fail(f.rx, -1, 500);
    fflush(NULL);
    pid_t pid = fork();
    PX_REQUIRE(pid >= 0);
    if (pid == 0) {
        /* The "gateway" that crashes: no destroy, no exit handlers, its thread mid-work. */
        px_status_t cst;
        gw_webhooks_t *cwh = gw_webhooks_new(&f.opts, &cst);
        if (!cwh) {
            _exit(2);
        }
        s_change(cwh, "c1", "25966", true);
        for (int i = 0; i < 500 && !s_file_has(f.journal, "\"op\":\"enqueue\""); i++) {
            px_sleep_us(10000);
        }
        _exit(s_file_has(f.journal, "\"op\":\"enqueue\"") ? 0 : 3);
    }
    int status = 0;
    PX_REQUIRE(waitpid(pid, &status, 0) == pid);
    PX_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* The id the crashed process journaled, from the file itself. */
    char *text = s_read_file(f.journal);
    char id[64] = "";
    const char *p = text ? strstr(text, "\"op\":\"enqueue\",\"id\":\"") : NULL;
    PX_REQUIRE(p);
    snprintf(id, sizeof id, "%.32s", p + strlen("\"op\":\"enqueue\",\"id\":\""));
    free(text);

    /* The crashed process may have had an attempt on the wire as it died: let it land (and be
     * refused) before the receiver starts accepting, or it would count as a delivery the
     * crashed process made - a delivery at least once, which this test does not look at. */
    px_sleep_us(300000);
    wh_receiver_fail(f.rx, 0, 0);
    size_t before = wh_receiver_count(f.rx);
    px_status_t st;
    gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    WAIT_FOR(wh_receiver_delivered(f.rx, id) == 1, WAIT_MS);
    PX_CHECK_INT_EQ(wh_receiver_delivered(f.rx, id), 1);
    px_sleep_us(300000);
    PX_CHECK_INT_EQ(wh_receiver_count(f.rx), before + 1);
    /* The announcement survived too: the ward's next change is no news. */
    s_change(wh, "c1", "25966", true);
    px_sleep_us(300000);
    PX_CHECK_INT_EQ(wh_receiver_count(f.rx), before + 1);
    gw_webhooks_destroy(&wh);
    fx_fini(&f);
}

static void test_replay_resends_same_ids(void)
{
    fx_t f;
    PX_REQUIRE(fx_init(&f));
    fx_subs(&f, "a http://127.0.0.1:{port}/a secret=" SECRET " kinds=green\n"
                "b http://127.0.0.1:{port}/b secret=" SECRET2 " kinds=green\n");
    px_status_t st;
    gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    int64_t t0 = px_wall_us();
    s_change(wh, "c1", "25966", true);
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 2, WAIT_MS), 2);
    WAIT_FOR(s_delivered(wh) == 2, WAIT_MS);
    char first[2][64];
    s_id_of(f.rx, 0, first[0]);
    s_id_of(f.rx, 1, first[1]);
    PX_CHECK(strcmp(first[0], first[1]) != 0);

    size_t count = 99;
    PX_CHECK_INT_EQ(gw_webhooks_replay(wh, t0 + 3600LL * 1000000, NULL, &count, &st), PX_OK);
    PX_CHECK_INT_EQ(count, 0);
    PX_CHECK_INT_EQ(gw_webhooks_replay(wh, t0, "nobody", &count, &st), PX_NOT_FOUND);

    PX_CHECK_INT_EQ(gw_webhooks_replay(wh, t0, NULL, &count, &st), PX_OK);
    PX_CHECK_INT_EQ(count, 2);
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 4, WAIT_MS), 4);
    char again[2][64];
    s_id_of(f.rx, 2, again[0]);
    s_id_of(f.rx, 3, again[1]);
    PX_CHECK((strcmp(again[0], first[0]) == 0 && strcmp(again[1], first[1]) == 0) ||
             (strcmp(again[0], first[1]) == 0 && strcmp(again[1], first[0]) == 0));

    /* One subscriber's only. */
    WAIT_FOR(s_delivered(wh) == 4, WAIT_MS);
    PX_CHECK_INT_EQ(gw_webhooks_replay(wh, t0, "b", &count, &st), PX_OK);
    PX_CHECK_INT_EQ(count, 1);
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 5, WAIT_MS), 5);
    wh_request_t r;
    PX_REQUIRE(wh_receiver_get(f.rx, 4, &r));
    PX_CHECK_STR_EQ(r.path, "/b");
    PX_CHECK(strcmp(r.delivery, first[0]) == 0 || strcmp(r.delivery, first[1]) == 0);
    wh_request_clear(&r);
    WAIT_FOR(s_delivered(wh) == 5, WAIT_MS);
    gw_webhooks_destroy(&wh);

    /* Replay is journaled and the deliveries kept: it works after a restart too. */
    wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    PX_CHECK_INT_EQ(gw_webhooks_replay(wh, t0, "a", &count, &st), PX_OK);
    PX_CHECK_INT_EQ(count, 1);
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 6, WAIT_MS), 6);
    PX_REQUIRE(wh_receiver_get(f.rx, 5, &r));
    PX_CHECK_STR_EQ(r.path, "/a");
    wh_request_clear(&r);
    gw_webhooks_destroy(&wh);
    fx_fini(&f);
}

static void test_green_fires_for_wards_within(void)
{
    fx_t f;
    PX_REQUIRE(fx_init(&f));
    fx_subs(&f, "thuan-an http://127.0.0.1:{port}/hook secret=" SECRET
                " units=725 kinds=green campaign=c1\n");
    px_status_t st;
    gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    /* Each "no" comes before a "yes": the thread takes changes in order, so once the yes
     * arrived, a wrong no would have arrived too. */
    s_change(wh, "c1", "26000", true);    /* a ward in another district */
    s_change(wh, "c1", "725", true);      /* the district itself: not a ward */
    s_change(wh, "c1", "25966-01", true); /* a neighborhood */
    s_change(wh, "c2", "25966", true);    /* another campaign */
    s_change(wh, "c1", "unknown", true);  /* not in the tree */
    s_change(wh, "c1", "25966", true);    /* yes */
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 1, WAIT_MS), 1);
    wh_request_t r;
    PX_REQUIRE(wh_receiver_get(f.rx, 0, &r));
    PX_CHECK(strstr(r.body, "\"unit_code\":\"25966\"") != NULL);
    wh_request_clear(&r);

    s_change(wh, "c1", "25966", true); /* green again: no news */
    s_change(wh, "c1", "25969", true); /* yes */
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 2, WAIT_MS), 2);
    PX_REQUIRE(wh_receiver_get(f.rx, 1, &r));
    PX_CHECK(strstr(r.body, "\"unit_code\":\"25969\"") != NULL);
    wh_request_clear(&r);

    s_change(wh, "c1", "25966", false); /* the target was raised */
    s_change(wh, "c1", "25966", true);  /* and reached again: yes */
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 3, WAIT_MS), 3);
    PX_REQUIRE(wh_receiver_get(f.rx, 2, &r));
    PX_CHECK(strstr(r.body, "\"unit_code\":\"25966\"") != NULL);
    wh_request_clear(&r);
    WAIT_FOR(s_delivered(wh) == 3, WAIT_MS);
    gw_webhooks_destroy(&wh);

    /* The announced set is durable: after a restart, green again is still no news, and
     * a ward taken back before the restart announces again. */
    wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    s_change(wh, "c1", "25966", true);
    s_change(wh, "c1", "25969", true);
    s_change(wh, "c1", "25969", false);
    gw_webhooks_destroy(&wh);
    wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    s_change(wh, "c1", "25966", true);
    s_change(wh, "c1", "25969", true); /* yes */
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 4, WAIT_MS), 4);
    PX_REQUIRE(wh_receiver_get(f.rx, 3, &r));
    PX_CHECK(strstr(r.body, "\"unit_code\":\"25969\"") != NULL);
    wh_request_clear(&r);
    px_sleep_us(200000);
    PX_CHECK_INT_EQ(wh_receiver_count(f.rx), 4);
    gw_webhooks_destroy(&wh);
    fx_fini(&f);
}

#define ID_A "0123456789abcdef0123456789abcdef"
#define ID_B "fedcba9876543210fedcba9876543210"

static void s_enqueue_line(char *buf, size_t cap, const char *id)
{
    snprintf(buf, cap,
             "{\"op\":\"enqueue\",\"id\":\"%s\",\"subscriber\":\"ops\",\"kind\":\"ward.green\","
             "\"created_us\":%lld,\"body\":\"{\\\"event\\\":\\\"ward.green\\\"}\"}\n",
             id, (long long)px_wall_us());
}

static void test_torn_last_line_ignored(void)
{
    fx_t f;
    PX_REQUIRE(fx_init(&f));
    fx_subs(&f, "ops http://127.0.0.1:{port}/hook secret=" SECRET " kinds=green\n");
    char line[512], text[1024];
    s_enqueue_line(line, sizeof line, ID_A);
    /* A crash in the middle of writing "done": the delivery is still pending. */
    snprintf(text, sizeof text, "%s{\"op\":\"done\",\"id\":\"" ID_A "\",\"at", line);
    s_write_file(f.journal, text);
    px_status_t st;
    gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    PX_CHECK_INT_EQ(s_count_in_file(f.logpath, "GW-WEBHOOK-JOURNAL-TORN"), 1);
    PX_CHECK_INT_EQ(s_count_in_file(f.logpath, "GW-WEBHOOK-JOURNAL-BAD"), 0);
    WAIT_FOR(wh_receiver_delivered(f.rx, ID_A) == 1, WAIT_MS);
    PX_CHECK_INT_EQ(wh_receiver_delivered(f.rx, ID_A), 1);
    wh_request_t r;
    PX_REQUIRE(wh_receiver_get(f.rx, 0, &r));
    PX_CHECK_STR_EQ(r.body, "{\"event\":\"ward.green\"}"); /* the stored bytes, exactly */
    wh_request_clear(&r);
    WAIT_FOR(s_delivered(wh) == 1, WAIT_MS);
    gw_webhooks_destroy(&wh);

    /* Compacted at the start: the torn text is gone and every line is a record. */
    char *journal = s_read_file(f.journal);
    PX_REQUIRE(journal);
    PX_CHECK(journal[0] && journal[strlen(journal) - 1] == '\n');
    int lines = 0;
    for (char *save = NULL, *l = strtok_r(journal, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        json_t *rec = json_loads(l, 0, NULL);
        PX_CHECK(rec != NULL);
        json_decref(rec);
        lines++;
    }
    PX_CHECK_INT_EQ(lines, 2); /* enqueue, done */
    free(journal);
    fx_fini(&f);
}

static void test_bad_journal_line_skipped_and_kept(void)
{
    fx_t f;
    PX_REQUIRE(fx_init(&f));
    fx_subs(&f, "ops http://127.0.0.1:{port}/hook secret=" SECRET " kinds=green\n");
    char a[512], b[512], text[2048];
    s_enqueue_line(a, sizeof a, ID_A);
    s_enqueue_line(b, sizeof b, ID_B);
    snprintf(text, sizeof text, "%snot a record\n{\"op\":\"launch\"}\n%s", a, b);
    s_write_file(f.journal, text);
    px_status_t st;
    gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    PX_CHECK_INT_EQ(s_count_in_file(f.logpath, "GW-WEBHOOK-JOURNAL-BAD"), 2);
    WAIT_FOR(s_delivered(wh) == 2, WAIT_MS);
    PX_CHECK_INT_EQ(wh_receiver_delivered(f.rx, ID_A), 1);
    PX_CHECK_INT_EQ(wh_receiver_delivered(f.rx, ID_B), 1);
    gw_webhooks_destroy(&wh);
    /* The damaged file is kept for a person to read. */
    bool kept = false;
    DIR *d = opendir(f.dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, "webhooks.journal.corrupt-", 25) == 0) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", f.dir, e->d_name);
            kept = s_file_has(p, "not a record");
        }
    }
    if (d) {
        closedir(d);
    }
    PX_CHECK(kept);
    fx_fini(&f);
}

static void test_bad_subscriber_line_keeps_old_set(void)
{
    fx_t f;
    PX_REQUIRE(fx_init(&f));
    px_status_t st;
    /* Each file is refused at its line, without echoing what may be a secret. */
    static const struct {
        const char *text;
        const char *line;
    } bad[] = {
        {"# c\n\nops http://h/x secret=short-secretvalue\n", "line 3"},
        {"ops ftp://h/x secret=" SECRET "\n", "line 1"},
        {"ops http:// secret=" SECRET "\n", "line 1"},
        {"ops http://h/x\n", "line 1"},
        {"ops http://h/x secret=" SECRET " kinds=weekly\n", "line 1"},
        {"ops http://h/x secret=" SECRET " kinds=daily units=725\n", "line 1"},
        {"ops http://h/x secret=" SECRET "\n", "line 1"}, /* daily by default: no campaign */
        {"ops http://h/x secret=" SECRET " kinds=green sekret=mistyped-secret-value\n", "line 1"},
        {"ops http://h/x secret=" SECRET " kinds=green units=72/5\n", "line 1"},
        {"ops http://h/x secret=" SECRET " kinds=green\nops http://h/y secret=" SECRET
         " kinds=green\n",
         "line 2"},
        {"o/ps http://h/x secret=" SECRET " kinds=green\n", "line 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_write_file(f.subs, bad[i].text);
        px_status_clear(&st);
        gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
        PX_CHECK(wh == NULL);
        gw_webhooks_destroy(&wh);
        PX_CHECK_INT_EQ(st.code, PX_INVALID_ARGUMENT);
        if (!strstr(st.message, bad[i].line)) {
            px_test__fail(__FILE__, __LINE__, "case %zu: \"%s\" lacks \"%s\"", i, st.message,
                          bad[i].line);
        }
        PX_CHECK(!strstr(st.message, "secretvalue") && !strstr(st.message, "secret-value") &&
                 !strstr(st.message, SECRET));
    }

    fx_subs(&f, "ops http://127.0.0.1:{port}/old secret=" SECRET " kinds=green\n");
    gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    fx_subs(&f, "ops http://127.0.0.1:{port}/new secret=" SECRET " kinds=green\n"
                "broken http://127.0.0.1:{port}/new secret=" SECRET " kinds=green,weekly\n");
    PX_CHECK_INT_EQ(gw_webhooks_reload(wh, &st), PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "line 2") != NULL);
    s_change(wh, "c1", "25966", true);
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 1, WAIT_MS), 1);
    wh_request_t r;
    PX_REQUIRE(wh_receiver_get(f.rx, 0, &r));
    PX_CHECK_STR_EQ(r.path, "/old"); /* the old set stayed */
    wh_request_clear(&r);

    fx_subs(&f, "ops http://127.0.0.1:{port}/new secret=" SECRET " kinds=green\n");
    PX_CHECK_INT_EQ(gw_webhooks_reload(wh, &st), PX_OK);
    s_change(wh, "c1", "25969", true);
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 2, WAIT_MS), 2);
    PX_REQUIRE(wh_receiver_get(f.rx, 1, &r));
    PX_CHECK_STR_EQ(r.path, "/new");
    wh_request_clear(&r);
    gw_webhooks_destroy(&wh);
    fx_fini(&f);
}

static atomic_int s_progress_calls;

/* The lead's callback asks the activation service; this one answers for 725 and fails for
 * every other unit, as a service that does not know it would. */
static int s_progress(void *ctx, const char *campaign, const char *unit, char **json_out)
{
    atomic_fetch_add(&s_progress_calls, 1);
    if (strcmp(campaign, "c1") != 0 || strcmp(unit, "725") != 0) {
        return -1;
    }
    *json_out = strdup("{\"unit\":{\"unitCode\":\"725\",\"target\":100,\"activated\":40},"
                       "\"children\":[]}");
    return *json_out ? 0 : -1;
}

static void test_daily_summary_once_a_day(void)
{
    fx_t f;
    PX_REQUIRE(fx_init(&f));
    fx_subs(&f, "daily http://127.0.0.1:{port}/daily secret=" SECRET
                " kinds=daily campaign=c1 units=725,726\n"
                "green-only http://127.0.0.1:{port}/green secret=" SECRET " kinds=green\n");
    f.opts.daily_hour = 7;
    f.opts.progress = s_progress;
    atomic_store(&s_progress_calls, 0);
    /* 2024-05-01 06:50 in Viet Nam (23:50 UTC the day before): not yet. */
    const int64_t may1_0650 = 1714521000, may1_0710 = 1714522200;
    px_status_t st;
    gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    s_clock_set(may1_0650);
    px_sleep_us(400000);
    PX_CHECK_INT_EQ(wh_receiver_count(f.rx), 0);
    PX_CHECK_INT_EQ(atomic_load(&s_progress_calls), 0);

    s_clock_set(may1_0710);
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 1, WAIT_MS), 1);
    wh_request_t r;
    PX_REQUIRE(wh_receiver_get(f.rx, 0, &r));
    PX_CHECK_STR_EQ(r.path, "/daily");
    PX_CHECK_STR_EQ(r.event, "daily.summary");
    char day1[64];
    snprintf(day1, sizeof day1, "%s", r.delivery);
    json_t *body = json_loads(r.body, 0, NULL);
    PX_REQUIRE(body);
    PX_CHECK_STR_EQ(json_string_value(json_object_get(body, "event")), "daily.summary");
    PX_CHECK_STR_EQ(json_string_value(json_object_get(body, "delivery_id")), r.delivery);
    PX_CHECK_STR_EQ(json_string_value(json_object_get(body, "campaign_id")), "c1");
    PX_CHECK_STR_EQ(json_string_value(json_object_get(body, "day")), "2024-05-01");
    json_t *units = json_object_get(body, "units");
    PX_CHECK_INT_EQ(json_array_size(units), 2);
    json_t *u0 = json_array_get(units, 0), *u1 = json_array_get(units, 1);
    PX_CHECK_STR_EQ(json_string_value(json_object_get(u0, "unit_code")), "725");
    PX_CHECK_INT_EQ(json_integer_value(json_object_get(
                        json_object_get(json_object_get(u0, "progress"), "unit"), "activated")),
                    40);
    PX_CHECK_STR_EQ(json_string_value(json_object_get(u1, "unit_code")), "726");
    PX_CHECK(json_object_get(u1, "error") != NULL);
    json_decref(body);
    wh_request_clear(&r);

    px_sleep_us(400000);
    PX_CHECK_INT_EQ(wh_receiver_count(f.rx), 1); /* once */
    WAIT_FOR(s_delivered(wh) == 1, WAIT_MS);
    gw_webhooks_destroy(&wh);

    /* A restart within the hour finds today's summary made. */
    wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    px_sleep_us(400000);
    PX_CHECK_INT_EQ(wh_receiver_count(f.rx), 1);

    /* The next day, at the hour: a new summary with an id of its own. */
    s_clock_set(may1_0710 + 86400);
    PX_CHECK_INT_EQ(wh_receiver_wait(f.rx, 2, WAIT_MS), 2);
    PX_REQUIRE(wh_receiver_get(f.rx, 1, &r));
    PX_CHECK(strcmp(r.delivery, day1) != 0);
    PX_CHECK(strstr(r.body, "\"day\":\"2024-05-02\"") != NULL);
    wh_request_clear(&r);
    px_sleep_us(300000);
    PX_CHECK_INT_EQ(wh_receiver_count(f.rx), 2);
    gw_webhooks_destroy(&wh);
    fx_fini(&f);
}

static void test_pending_bound_refuses_not_blocks(void)
{
    fx_t f;
    PX_REQUIRE(fx_init(&f));
    fx_subs(&f, "a http://127.0.0.1:{port}/a secret=" SECRET " kinds=green\n"
                "b http://127.0.0.1:{port}/b secret=" SECRET " kinds=green\n"
                "c http://127.0.0.1:{port}/c secret=" SECRET " kinds=green\n");
    f.opts.max_pending = 2;
    wh_receiver_fail(f.rx, -1, 500);
    px_status_t st;
    gw_webhooks_t *wh = gw_webhooks_new(&f.opts, &st);
    PX_REQUIRE(wh);
    s_change(wh, "c1", "25966", true);
    uint64_t pending = 0, dropped = 0;
    WAIT_FOR((gw_webhooks_counts(wh, NULL, NULL, &pending, NULL, &dropped),
              dropped == 1 && pending == 2),
             WAIT_MS);
    PX_CHECK_INT_EQ(pending, 2);
    PX_CHECK_INT_EQ(dropped, 1);
    PX_CHECK(s_file_has(f.logpath, "GW-WEBHOOK-DROPPED"));
    wh_receiver_fail(f.rx, 0, 0);
    WAIT_FOR(s_delivered(wh) == 2, WAIT_MS);
    PX_CHECK_INT_EQ(s_delivered(wh), 2);

    /* Two more wait; a replay that would add the two delivered ones is refused whole. */
    wh_receiver_fail(f.rx, -1, 500);
    s_change(wh, "c1", "25969", true);
    WAIT_FOR((gw_webhooks_counts(wh, NULL, NULL, &pending, NULL, &dropped),
              dropped == 2 && pending == 2),
             WAIT_MS);
    PX_CHECK_INT_EQ(pending, 2);
    size_t count = 9;
    PX_CHECK_INT_EQ(gw_webhooks_replay(wh, 0, NULL, &count, &st), PX_RESOURCE_EXHAUSTED);
    PX_CHECK_INT_EQ(count, 0);
    PX_CHECK_INT_EQ(s_pending(wh), 2);
    gw_webhooks_destroy(&wh);
    fx_fini(&f);
}

static const px_test_case_t cases[] = {
    {"signature_verifies", test_signature_verifies},
    {"500_is_retried_then_delivered", test_500_is_retried_then_delivered},
    {"gives_up_then_replay", test_gives_up_then_replay},
    {"restart_between_tries_loses_nothing", test_restart_between_tries_loses_nothing},
    {"crash_loses_nothing", test_crash_loses_nothing},
    {"replay_resends_same_ids", test_replay_resends_same_ids},
    {"green_fires_for_wards_within", test_green_fires_for_wards_within},
    {"torn_last_line_ignored", test_torn_last_line_ignored},
    {"bad_journal_line_skipped_and_kept", test_bad_journal_line_skipped_and_kept},
    {"bad_subscriber_line_keeps_old_set", test_bad_subscriber_line_keeps_old_set},
    {"daily_summary_once_a_day", test_daily_summary_once_a_day},
    {"pending_bound_refuses_not_blocks", test_pending_bound_refuses_not_blocks},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        return 1;
    }
    return px_test_main(argc, argv, cases);
}
