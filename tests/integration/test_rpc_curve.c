/*
 * test_rpc_curve.c - CurveZMQ with identities (include/phuxanh/curve.h): key
 * files and allow-lists read strictly; a px-testd serving under CURVE accepts
 * only listed keys, names each caller by its key whatever x-caller says
 * (a different claim is refused), refuses plaintext clients, and re-reads its
 * allow-list on SIGHUP (a bad file keeps the old list). Keys are made per run
 * in a temporary directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "phuxanh/clock.h"
#include "phuxanh/curve.h"
#include "phuxanh/logstream.h"
#include "phuxanh/rpc.h"
#include "phuxanh/test/v1/echo.pb-c.h"
#include "px_test.h"
#include "testd_proc.h"

#define ECHO "/phuxanh.test.v1.Echo/Echo"
#define COUNT "/phuxanh.test.v1.Echo/Count"

static char s_dir[128];
static char s_log[256];
static testd_t s_server;
static char s_key_testd[PX_CURVE_KEY_BUF], s_key_gateway[PX_CURVE_KEY_BUF],
    s_key_intruder[PX_CURVE_KEY_BUF];

static void s_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", s_dir, name);
}

static int s_write(const char *name, const char *text, size_t len)
{
    char path[256], tmp[280];
    s_path(path, sizeof path, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        return -1;
    }
    size_t n = fwrite(text, 1, len, f);
    fclose(f);
    return n == len ? rename(tmp, path) : -1;
}

/* Writes the allow-list file name with the keys given ("key name" pairs, NULL-terminated). */
static int s_allow(const char *name, const char *const *pairs)
{
    char text[2048] = "# test allow-list\n\n";
    for (size_t i = 0; pairs[i]; i += 2) {
        size_t len = strlen(text);
        snprintf(text + len, sizeof text - len, "%s %s\n", pairs[i], pairs[i + 1]);
    }
    return s_write(name, text, strlen(text));
}

static px_curve_t *s_curve(const char *who)
{
    char sec[256], allow[256], file[80];
    snprintf(file, sizeof file, "%s_secret", who);
    s_path(sec, sizeof sec, file);
    s_path(allow, sizeof allow, "clients.allow");
    px_status_t st;
    px_curve_t *c = px_curve_new(sec, allow, NULL, &st);
    if (!c) {
        fprintf(stderr, "px_curve_new(%s): %s\n", who, st.message);
    }
    return c;
}

static px_rpc_client_t *s_client(px_curve_t *curve, const char *caller)
{
    px_status_t st;
    px_rpc_client_opts_t o = {
        .caller = caller, .curve = curve, .server_name = "testd", .connect_wait_ms = 2000};
    px_rpc_client_t *c = px_rpc_client_new(s_server.endpoint, &o, &st);
    if (!c) {
        fprintf(stderr, "px_rpc_client_new: %s\n", st.message);
    }
    return c;
}

/* Echo; the reply's caller (as the server saw it) into caller_out when OK. */
static px_code_t s_echo(px_rpc_client_t *c, char *caller_out, size_t cap, px_status_t *st)
{
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    px_rpc_call_opts_t o = {.timeout_ms = 5000};
    ProtobufCMessage *r = NULL;
    px_code_t code = px_rpc_client_call(c, ECHO, &req.base,
                                        &phuxanh__test__v1__echo_reply__descriptor, &r, &o, st);
    if (r) {
        snprintf(caller_out, cap, "%s", ((Phuxanh__Test__V1__EchoReply *)r)->caller);
        protobuf_c_message_free_unpacked(r, NULL);
    }
    return code;
}

static uint64_t s_count(px_rpc_client_t *c, const char *key)
{
    Phuxanh__Test__V1__CountRequest req = PHUXANH__TEST__V1__COUNT_REQUEST__INIT;
    req.key = (char *)key;
    px_rpc_call_opts_t o = {.timeout_ms = 5000};
    ProtobufCMessage *r = NULL;
    px_status_t st;
    uint64_t n = 0;
    if (px_rpc_client_call(c, COUNT, &req.base, &phuxanh__test__v1__echo_reply__descriptor, &r, &o,
                           &st) == PX_OK) {
        n = ((Phuxanh__Test__V1__EchoReply *)r)->count;
    }
    if (r) {
        protobuf_c_message_free_unpacked(r, NULL);
    }
    return n;
}

static bool s_log_has(const char *needle)
{
    FILE *f = fopen(s_log, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f)) {
        found = strstr(line, needle) != NULL;
    }
    if (f) {
        fclose(f);
    }
    return found;
}

/* ------------------------------------------------------------------ files */

static void test_keys_gen_writes_a_certificate_pair(void)
{
    char pub_path[256], sec_path[256], pub[PX_CURVE_KEY_BUF], sec[PX_CURVE_KEY_BUF];
    s_path(pub_path, sizeof pub_path, "testd");
    s_path(sec_path, sizeof sec_path, "testd_secret");
    px_status_t st;
    PX_CHECK_INT_EQ(px_curve_cert_load(sec_path, pub, sec, &st), PX_OK);
    PX_CHECK_STR_EQ(pub, s_key_testd);
    /* The secret key belongs to the public one. */
    char derived[PX_CURVE_KEY_BUF];
    PX_CHECK_INT_EQ(zmq_curve_public(derived, sec), 0);
    PX_CHECK_STR_EQ(derived, s_key_testd);
    /* The public file has no secret; the secret file is the owner's alone. */
    PX_CHECK_INT_EQ(px_curve_cert_load(pub_path, pub, NULL, &st), PX_OK);
    PX_CHECK_INT_EQ(px_curve_cert_load(pub_path, pub, sec, &st), PX_FAILED_PRECONDITION);
    struct stat sb;
    PX_CHECK(stat(sec_path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    PX_CHECK(stat(pub_path, &sb) == 0 && (sb.st_mode & 0777) == 0644);
    /* Never overwritten by accident; --force replaces. */
    char again[PX_CURVE_KEY_BUF];
    PX_CHECK_INT_EQ(px_curve_keys_gen(s_dir, "testd", false, again, &st), PX_ALREADY_EXISTS);
    PX_CHECK_INT_EQ(px_curve_cert_load(sec_path, pub, NULL, &st), PX_OK);
    PX_CHECK_STR_EQ(pub, s_key_testd);
    PX_CHECK_INT_EQ(px_curve_keys_gen(s_dir, "spare", false, again, &st), PX_OK);
    PX_CHECK_INT_EQ(px_curve_keys_gen(s_dir, "spare", true, pub, &st), PX_OK);
    PX_CHECK(strcmp(pub, again) != 0);
    PX_CHECK_INT_EQ(px_curve_keys_gen(s_dir, "../evil", false, pub, &st), PX_INVALID_ARGUMENT);
    PX_CHECK_INT_EQ(px_curve_keys_gen(s_dir, ".hidden", false, pub, &st), PX_INVALID_ARGUMENT);
}

static void test_bad_allow_list_named_by_line(void)
{
    char sec[256], allow[256];
    s_path(sec, sizeof sec, "gateway_secret");
    s_path(allow, sizeof allow, "bad.allow");
    char good[128];
    snprintf(good, sizeof good, "# ok\n%s gateway\n", s_key_gateway);
    /* Each case: the good file, then a third line: the gateway's key (unless "short-key"
     * opens it) and the rest, len bytes (NULs included). */
    struct {
        const char *rest;
        size_t len;
        const char *why;
    } cases[] = {
        {"short-key gateway\n", 18, "line 3: the first field is not a 40-character Z85"},
        {"\n", 1, "line 3: no name after the key"},
        {" two names\n", 11, "line 3: more than a key and a name"},
        {" bad/name\n", 10, "line 3: name: 1 to 64"},
        {" gateway-again\n", 15, "line 3: the key is listed twice"},
        {" caf\xc3\n", 6, "line 3: not UTF-8"},
        {" nul\0x\n", 7, "holds a NUL byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        size_t n = strlen(good);
        memcpy(text, good, n);
        if (strncmp(cases[i].rest, "short-key", 9) != 0) {
            memcpy(text + n, s_key_gateway, PX_CURVE_KEY_LEN);
            n += PX_CURVE_KEY_LEN;
        }
        memcpy(text + n, cases[i].rest, cases[i].len);
        PX_REQUIRE(s_write("bad.allow", text, n + cases[i].len) == 0);
        px_status_t st;
        px_curve_t *c = px_curve_new(sec, allow, NULL, &st);
        PX_CHECK(c == NULL);
        px_curve_destroy(&c);
        if (!strstr(st.message, cases[i].why)) {
            PX_CHECK_STR_EQ(st.message, cases[i].why);
        }
    }
    /* A reload that meets a bad file keeps the list in force. */
    PX_REQUIRE(s_write("bad.allow", good, strlen(good)) == 0);
    px_status_t st;
    px_curve_t *c = px_curve_new(sec, allow, NULL, &st);
    PX_REQUIRE(c);
    PX_CHECK_INT_EQ(px_curve_allowed_count(c), 1);
    char text[512];
    int n = snprintf(text, sizeof text, "%s testd\n\nnot-a-key intruder\n", s_key_testd);
    PX_REQUIRE(s_write("bad.allow", text, (size_t)n) == 0);
    PX_CHECK_INT_EQ(px_curve_reload(c, &st), PX_INVALID_ARGUMENT);
    PX_CHECK(strstr(st.message, "line 3") != NULL);
    PX_CHECK_INT_EQ(px_curve_allowed_count(c), 1);
    n = snprintf(text, sizeof text, "%s testd\n%s gateway\n", s_key_testd, s_key_gateway);
    PX_REQUIRE(s_write("bad.allow", text, (size_t)n) == 0);
    PX_CHECK_INT_EQ(px_curve_reload(c, &st), PX_OK);
    PX_CHECK_INT_EQ(px_curve_allowed_count(c), 2);
    /* A key with a '#' inside (a Z85 digit) is no comment; one may follow the name. */
    char hash_pub[PX_CURVE_KEY_BUF], hash_sec[PX_CURVE_KEY_BUF];
    do {
        PX_REQUIRE(zmq_curve_keypair(hash_pub, hash_sec) == 0);
    } while (!strchr(hash_pub, '#'));
    n = snprintf(text, sizeof text, "# a comment\n%s hashed # and a comment after it\n", hash_pub);
    PX_REQUIRE(s_write("bad.allow", text, (size_t)n) == 0);
    PX_CHECK_INT_EQ(px_curve_reload(c, &st), PX_OK);
    PX_CHECK_INT_EQ(px_curve_allowed_count(c), 1);
    px_curve_destroy(&c);
    PX_CHECK(c == NULL);
}

/* ------------------------------------------------------------------ the server */

static void test_listed_key_is_the_caller(void)
{
    px_curve_t *gw = s_curve("gateway");
    PX_REQUIRE(gw);
    px_rpc_client_t *c = s_client(gw, "gateway");
    px_rpc_client_t *silent = s_client(gw, NULL); /* declares nobody */
    char caller[80] = "";
    px_status_t st;
    PX_CHECK_INT_EQ(s_echo(c, caller, sizeof caller, &st), PX_OK);
    PX_CHECK_STR_EQ(caller, "gateway");
    PX_CHECK_INT_EQ(s_echo(silent, caller, sizeof caller, &st), PX_OK);
    PX_CHECK_STR_EQ(caller, "gateway");
    px_rpc_client_destroy(&silent);
    px_rpc_client_destroy(&c);
    px_curve_destroy(&gw);
}

static void test_claiming_another_name_is_refused(void)
{
    px_curve_t *gw = s_curve("gateway");
    PX_REQUIRE(gw);
    px_rpc_client_t *c = s_client(gw, "activation");
    px_rpc_client_t *honest = s_client(gw, "gateway");
    PX_REQUIRE(c && honest);
    char key[64];
    snprintf(key, sizeof key, "claim-%d", (int)getpid());
    Phuxanh__Test__V1__CountRequest req = PHUXANH__TEST__V1__COUNT_REQUEST__INIT;
    req.key = key;
    px_rpc_call_opts_t o = {.timeout_ms = 5000};
    ProtobufCMessage *r = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(px_rpc_client_call(c, COUNT, &req.base,
                                       &phuxanh__test__v1__echo_reply__descriptor, &r, &o, &st),
                    PX_PERMISSION_DENIED);
    PX_CHECK_STR_EQ(st.message, "x-caller \"activation\" is not the caller's key, which is "
                                "\"gateway\"");
    PX_CHECK(r == NULL);
    /* The handler never ran: the first count is the honest call's. */
    PX_CHECK_INT_EQ(s_count(honest, key), 1);
    px_rpc_client_destroy(&honest);
    px_rpc_client_destroy(&c);
    px_curve_destroy(&gw);
}

static void test_unknown_key_is_refused(void)
{
    px_curve_t *in = s_curve("intruder");
    PX_REQUIRE(in);
    px_rpc_client_t *c = s_client(in, "gateway");
    PX_REQUIRE(c);
    char caller[80] = "";
    px_status_t st;
    int64_t t0 = px_clock_us();
    PX_CHECK_INT_EQ(s_echo(c, caller, sizeof caller, &st), PX_UNAUTHENTICATED);
    /* Found out at the handshake, not after the connect wait. */
    PX_CHECK(px_clock_us() - t0 < 1500000);
    PX_CHECK(strstr(st.message, "refused this process's CURVE key") != NULL);
    PX_CHECK(s_log_has("CURVE-REFUSED"));
    PX_CHECK(s_log_has(s_key_intruder));
    px_rpc_client_destroy(&c);
    px_curve_destroy(&in);
}

static void test_plaintext_client_cannot_talk(void)
{
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = "gateway", .connect_wait_ms = 1000, .max_attempts = 1};
    px_rpc_client_t *c = px_rpc_client_new(s_server.endpoint, &o, &st);
    PX_REQUIRE(c);
    char caller[80] = "";
    px_code_t code = s_echo(c, caller, sizeof caller, &st);
    PX_CHECK(code == PX_UNAUTHENTICATED || code == PX_UNAVAILABLE);
    PX_CHECK_STR_EQ(caller, "");
    px_rpc_client_destroy(&c);
}

/* Sends SIGHUP and waits for the reload's log line (the n-th one). */
static bool s_reload(int n)
{
    kill(s_server.pid, SIGHUP);
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(s_log, "r");
        char line[4096];
        int seen = 0;
        while (f && fgets(line, sizeof line, f)) {
            seen += strstr(line, "CURVE-ALLOW-RELOAD") || strstr(line, "CURVE-ALLOW-BAD");
        }
        if (f) {
            fclose(f);
        }
        if (seen >= n) {
            return true;
        }
        px_sleep_us(50000);
    }
    return false;
}

static void test_sighup_adds_and_removes_keys(void)
{
    px_curve_t *in = s_curve("intruder");
    px_curve_t *gw = s_curve("gateway");
    PX_REQUIRE(in && gw);
    char caller[80] = "";
    px_status_t st;
    /* Added: the intruder is now a known "auditor". */
    const char *with[] = {s_key_gateway, "gateway", s_key_intruder, "auditor", NULL};
    PX_REQUIRE(s_allow("server.allow", with) == 0);
    PX_REQUIRE(s_reload(1));
    px_rpc_client_t *c = s_client(in, NULL);
    PX_CHECK_INT_EQ(s_echo(c, caller, sizeof caller, &st), PX_OK);
    PX_CHECK_STR_EQ(caller, "auditor");
    px_rpc_client_destroy(&c);
    /* A bad file: the list stays as it was. */
    PX_REQUIRE(s_write("server.allow", "garbage\n", 8) == 0);
    PX_REQUIRE(s_reload(2));
    PX_CHECK(s_log_has("line 1: the first field is not a 40-character Z85 public key"));
    c = s_client(in, NULL);
    PX_CHECK_INT_EQ(s_echo(c, caller, sizeof caller, &st), PX_OK);
    px_rpc_client_destroy(&c);
    /* Removed: the gateway's new connections are refused. */
    const char *without[] = {s_key_intruder, "auditor", NULL};
    PX_REQUIRE(s_allow("server.allow", without) == 0);
    PX_REQUIRE(s_reload(3));
    c = s_client(gw, "gateway");
    PX_CHECK_INT_EQ(s_echo(c, caller, sizeof caller, &st), PX_UNAUTHENTICATED);
    px_rpc_client_destroy(&c);
    /* Put back for whatever runs next. */
    const char *orig[] = {s_key_gateway, "gateway", NULL};
    PX_REQUIRE(s_allow("server.allow", orig) == 0);
    PX_REQUIRE(s_reload(4));
    px_curve_destroy(&gw);
    px_curve_destroy(&in);
}

/* A log stream (its own ZeroMQ context, so its own ZAP handler) under CURVE: a listed reader
 * gets the lines, an unlisted one nothing. */
static void test_log_stream_under_curve(void)
{
    char sec[256], allow[256];
    s_path(sec, sizeof sec, "testd_secret");
    s_path(allow, sizeof allow, "server.allow");
    px_status_t st;
    px_curve_t *server = px_curve_new(sec, allow, NULL, &st);
    px_curve_t *gw = s_curve("gateway");
    px_curve_t *in = s_curve("intruder");
    PX_REQUIRE(server && gw && in);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    px_log_t *log = px_log_new("testd", PX_LOG_INFO, devnull);
    px_logstream_opts_t o = {"testd", "tcp://127.0.0.1:*", NULL, 0, 100, server};
    px_logstream_t *stream = px_logstream_new(&o, &st);
    PX_REQUIRE(log && stream);
    px_logstream_attach(stream, log);
    void *zctx = zmq_ctx_new();
    void *ok = px_logstream_socket(zctx, ZMQ_SUB, 0, gw, "testd", &st);
    void *bad = px_logstream_socket(zctx, ZMQ_SUB, 0, in, "testd", &st);
    PX_REQUIRE(ok && bad);
    zmq_setsockopt(ok, ZMQ_SUBSCRIBE, "", 0);
    zmq_setsockopt(bad, ZMQ_SUBSCRIBE, "", 0);
    PX_CHECK_INT_EQ(zmq_connect(ok, px_logstream_endpoint(stream)), 0);
    PX_CHECK_INT_EQ(zmq_connect(bad, px_logstream_endpoint(stream)), 0);
    int got_ok = 0, got_bad = 0;
    for (int i = 0; i < 60 && got_ok < 3; i++) {
        px_log_emit(log, PX_LOG_INFO, "TEST-LINE", "a line", NULL);
        zmq_pollitem_t items[2] = {{ok, 0, ZMQ_POLLIN, 0}, {bad, 0, ZMQ_POLLIN, 0}};
        zmq_poll(items, 2, 50);
        for (int k = 0; k < 2; k++) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            while (zmq_msg_recv(&m, k ? bad : ok, ZMQ_DONTWAIT) >= 0) {
                int more = 0;
                size_t sz = sizeof more;
                zmq_getsockopt(k ? bad : ok, ZMQ_RCVMORE, &more, &sz);
                if (!more) {
                    *(k ? &got_bad : &got_ok) += 1;
                }
            }
            zmq_msg_close(&m);
        }
    }
    PX_CHECK(got_ok >= 3);
    PX_CHECK_INT_EQ(got_bad, 0);
    /* Without a name the reader cannot find the stream's key. */
    PX_CHECK(px_logstream_socket(zctx, ZMQ_SUB, 0, gw, "nobody", &st) == NULL);
    PX_CHECK_INT_EQ(st.code, PX_FAILED_PRECONDITION);
    zmq_close(ok);
    zmq_close(bad);
    zmq_ctx_term(zctx);
    px_logstream_destroy(&stream);
    px_log_destroy(&log);
    close(devnull);
    px_curve_destroy(&in);
    px_curve_destroy(&gw);
    px_curve_destroy(&server);
}

static const px_test_case_t s_cases[] = {
    {"keys_gen_writes_a_certificate_pair", test_keys_gen_writes_a_certificate_pair},
    {"bad_allow_list_named_by_line", test_bad_allow_list_named_by_line},
    {"listed_key_is_the_caller", test_listed_key_is_the_caller},
    {"claiming_another_name_is_refused", test_claiming_another_name_is_refused},
    {"unknown_key_is_refused", test_unknown_key_is_refused},
    {"plaintext_client_cannot_talk", test_plaintext_client_cannot_talk},
    {"log_stream_under_curve", test_log_stream_under_curve},
    {"sighup_adds_and_removes_keys", test_sighup_adds_and_removes_keys},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/px-curve-test-XXXXXX");
    if (!mkdtemp(s_dir)) {
        perror("mkdtemp");
        return 1;
    }
    px_status_t st;
    if (px_curve_keys_gen(s_dir, "testd", false, s_key_testd, &st) != PX_OK ||
        px_curve_keys_gen(s_dir, "gateway", false, s_key_gateway, &st) != PX_OK ||
        px_curve_keys_gen(s_dir, "intruder", false, s_key_intruder, &st) != PX_OK) {
        fprintf(stderr, "keys: %s\n", st.message);
        return 1;
    }
    /* The server takes the gateway only; every client knows the server's key. */
    const char *server_list[] = {s_key_gateway, "gateway", NULL};
    const char *client_list[] = {s_key_testd, "testd", NULL};
    if (s_allow("server.allow", server_list) != 0 || s_allow("clients.allow", client_list) != 0) {
        fprintf(stderr, "cannot write the allow-lists\n");
        return 1;
    }
    char sec_arg[300], allow_arg[300];
    snprintf(sec_arg, sizeof sec_arg, "--curve-secret-key=%s/testd_secret", s_dir);
    snprintf(allow_arg, sizeof allow_arg, "--curve-allow=%s/server.allow", s_dir);
    const char *extra[] = {sec_arg, allow_arg, "--log-level=info", NULL};
    /* The server's log goes to a file the cases read. */
    snprintf(s_log, sizeof s_log, "%s/testd.log", s_dir);
    int fd = open(s_log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int saved = dup(2);
    dup2(fd, 2);
    int started = testd_start(&s_server, NULL, extra);
    dup2(saved, 2);
    close(saved);
    close(fd);
    if (started != 0) {
        fprintf(stderr, "cannot start px-testd under CURVE (log: %s)\n", s_log);
        return 1;
    }
    int rc = px_test_main(argc, argv, s_cases);
    if (testd_stop(&s_server, SIGTERM) != 0) {
        fprintf(stderr, "px-testd did not stop cleanly on SIGTERM\n");
        rc = 1;
    }
    if (rc == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", s_dir);
        }
    } else {
        fprintf(stderr, "kept %s (server log testd.log)\n", s_dir);
    }
    return rc;
}
