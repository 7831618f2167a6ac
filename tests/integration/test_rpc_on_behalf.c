/*
 * test_rpc_on_behalf.c - x-on-behalf-of, whom a trusted caller acts for: only
 * the callers a server names (--on-behalf-callers) may send it, anyone else is
 * refused PERMISSION_DENIED before the handler runs; its value is a name
 * (1..128 bytes of UTF-8, no control characters); a handler sees it through
 * px_rpc_ctx_on_behalf_of and passes it on to the calls it makes (unless told
 * not to); the RPC-CALL log line carries it. Against a px-testd process whose
 * log goes to a file.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phuxanh/rpc.h"
#include "phuxanh/test/v1/echo.pb-c.h"
#include "px_test.h"
#include "testd_proc.h"

#define ECHO "/phuxanh.test.v1.Echo/Echo"
#define COUNT "/phuxanh.test.v1.Echo/Count"
#define FORWARD "/phuxanh.test.v1.Echo/Forward"
/* The person behind the gateway: a token's name, Vietnamese, as the gateway sends it. */
#define PERSON "Nguyễn Văn An (tn-admin)"

static testd_t s_server;
static char s_log[256];

static px_rpc_client_t *s_client(const char *caller)
{
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = caller};
    return px_rpc_client_new(s_server.endpoint, &o, &st);
}

/* A call to method with x-on-behalf-of set to obo (NULL: none) and the request id rid (NULL: a
 * new one); the reply, when OK, into *rep. */
static px_code_t s_call(px_rpc_client_t *c, const char *method, const ProtobufCMessage *req,
                        const char *obo, const char *rid, Phuxanh__Test__V1__EchoReply **rep,
                        px_status_t *st)
{
    px_md_t *md = px_md_new();
    if (obo) {
        px_md_set(md, PX_MD_ON_BEHALF_OF, obo);
    }
    if (rid) {
        px_md_set(md, PX_MD_REQUEST_ID, rid);
    }
    px_rpc_call_opts_t o = {.timeout_ms = 5000, .metadata = md};
    ProtobufCMessage *r = NULL;
    px_code_t code =
        px_rpc_client_call(c, method, req, &phuxanh__test__v1__echo_reply__descriptor, &r, &o, st);
    px_md_destroy(&md);
    if (rep) {
        *rep = (Phuxanh__Test__V1__EchoReply *)r;
    } else if (r) {
        protobuf_c_message_free_unpacked(r, NULL);
    }
    return code;
}

static uint64_t s_count(px_rpc_client_t *c, const char *key)
{
    Phuxanh__Test__V1__CountRequest req = PHUXANH__TEST__V1__COUNT_REQUEST__INIT;
    req.key = (char *)key;
    Phuxanh__Test__V1__EchoReply *rep = NULL;
    px_status_t st;
    if (s_call(c, COUNT, &req.base, NULL, NULL, &rep, &st) != PX_OK || !rep) {
        return 0;
    }
    uint64_t n = rep->count;
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    return n;
}

static void test_untrusted_caller_refused_before_the_handler(void)
{
    px_rpc_client_t *gw = s_client("gateway");
    PX_REQUIRE(gw);
    const char *untrusted[] = {"intruder", "gate", "gateway2", "", "gateway,testd"};
    for (size_t i = 0; i < sizeof untrusted / sizeof untrusted[0]; i++) {
        px_rpc_client_t *c = s_client(*untrusted[i] ? untrusted[i] : NULL);
        PX_REQUIRE(c);
        char key[64];
        snprintf(key, sizeof key, "untrusted-%zu-%d", i, (int)getpid());
        Phuxanh__Test__V1__CountRequest req = PHUXANH__TEST__V1__COUNT_REQUEST__INIT;
        req.key = key;
        px_status_t st;
        PX_CHECK_INT_EQ(s_call(c, COUNT, &req.base, PERSON, NULL, NULL, &st), PX_PERMISSION_DENIED);
        char want[128];
        snprintf(want, sizeof want, "caller \"%s\" may not act on behalf of others", untrusted[i]);
        PX_CHECK_STR_EQ(st.message, want);
        /* The same caller without the key is served as before. */
        PX_CHECK_INT_EQ(s_call(c, ECHO, &req.base, NULL, NULL, NULL, &st), PX_OK);
        /* Count never ran for the refused call: the first count the gateway sees is 1. */
        PX_CHECK_INT_EQ(s_count(gw, key), 1);
        px_rpc_client_destroy(&c);
    }
    /* Even an invalid value is refused as a permission matter first: the claim itself is not
     * this caller's to make. */
    px_rpc_client_t *c = s_client("intruder");
    PX_REQUIRE(c);
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    px_status_t st;
    PX_CHECK_INT_EQ(s_call(c, ECHO, &req.base, "", NULL, NULL, &st), PX_PERMISSION_DENIED);
    px_rpc_client_destroy(&c);
    px_rpc_client_destroy(&gw);
}

static void test_trusted_caller_passes(void)
{
    px_rpc_client_t *gw = s_client("gateway");
    PX_REQUIRE(gw);
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    Phuxanh__Test__V1__EchoReply *rep = NULL;
    px_status_t st;
    PX_CHECK_INT_EQ(s_call(gw, ECHO, &req.base, PERSON, NULL, &rep, &st), PX_OK);
    PX_REQUIRE(rep);
    PX_CHECK_STR_EQ(rep->caller, "gateway");
    PX_CHECK_STR_EQ(rep->on_behalf_of, PERSON);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    /* Without the key: nobody. */
    PX_CHECK_INT_EQ(s_call(gw, ECHO, &req.base, NULL, NULL, &rep, &st), PX_OK);
    PX_REQUIRE(rep);
    PX_CHECK_STR_EQ(rep->on_behalf_of, "");
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    px_rpc_client_destroy(&gw);
}

static void test_value_must_be_a_name(void)
{
    px_rpc_client_t *gw = s_client("gateway");
    PX_REQUIRE(gw);
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    px_status_t st;
    char longest[PX_RPC_ON_BEHALF_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[PX_RPC_ON_BEHALF_MAX] = '\0';
    PX_CHECK_INT_EQ(s_call(gw, ECHO, &req.base, longest, NULL, NULL, &st), PX_OK);
    longest[PX_RPC_ON_BEHALF_MAX] = 'a';
    longest[PX_RPC_ON_BEHALF_MAX + 1] = '\0';
    const char *bad[] = {"",
                         "   ",
                         longest,
                         "tab\there",
                         "line\nbreak",
                         "del\x7f",
                         "\xff\xfe",
                         /* U+00C3 "Ã" is fine, but a lone lead byte is not UTF-8 */ "\xc3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        PX_CHECK_INT_EQ(s_call(gw, ECHO, &req.base, bad[i], NULL, NULL, &st), PX_INVALID_ARGUMENT);
        PX_CHECK(strstr(st.message, PX_MD_ON_BEHALF_OF) != NULL);
    }
    /* 128 bytes of two-byte characters are 64 characters: fine. */
    char viet[PX_RPC_ON_BEHALF_MAX + 1] = "";
    for (int i = 0; i < PX_RPC_ON_BEHALF_MAX / 2; i++) {
        strcat(viet, "ư");
    }
    PX_CHECK_INT_EQ(s_call(gw, ECHO, &req.base, viet, NULL, NULL, &st), PX_OK);
    px_rpc_client_destroy(&gw);
}

static void test_passed_on_by_handlers(void)
{
    px_rpc_client_t *gw = s_client("gateway");
    PX_REQUIRE(gw);
    Phuxanh__Test__V1__ForwardRequest req = PHUXANH__TEST__V1__FORWARD_REQUEST__INIT;
    Phuxanh__Test__V1__EchoReply *rep = NULL;
    px_status_t st;
    /* Forward calls Echo on this same server: the inner call's caller is "testd" (trusted by
     * this server) and it carries whom the outer call acted for. */
    PX_CHECK_INT_EQ(s_call(gw, FORWARD, &req.base, PERSON, NULL, &rep, &st), PX_OK);
    PX_REQUIRE(rep);
    PX_CHECK_STR_EQ(rep->caller, "testd");
    PX_CHECK_STR_EQ(rep->on_behalf_of, PERSON);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    /* Left off on request. */
    req.drop_on_behalf = true;
    PX_CHECK_INT_EQ(s_call(gw, FORWARD, &req.base, PERSON, NULL, &rep, &st), PX_OK);
    PX_REQUIRE(rep);
    PX_CHECK_STR_EQ(rep->on_behalf_of, "");
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    /* A call acting for nobody passes nobody on. */
    req.drop_on_behalf = false;
    PX_CHECK_INT_EQ(s_call(gw, FORWARD, &req.base, NULL, NULL, &rep, &st), PX_OK);
    PX_REQUIRE(rep);
    PX_CHECK_STR_EQ(rep->on_behalf_of, "");
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    px_rpc_client_destroy(&gw);
}

/* The RPC-CALL line of the call with request id rid, or "" (within 5 s: the server logs just
 * after it replies). */
static void s_log_line(const char *rid, char *out, size_t cap)
{
    out[0] = '\0';
    char needle[128];
    snprintf(needle, sizeof needle, "\"request_id\":\"%s\"", rid);
    for (int waited = 0; waited < 5000 && !out[0]; waited += 50) {
        FILE *f = fopen(s_log, "r");
        char line[4096];
        while (f && fgets(line, sizeof line, f)) {
            if (strstr(line, "\"RPC-CALL\"") && strstr(line, needle)) {
                snprintf(out, cap, "%s", line);
            }
        }
        if (f) {
            fclose(f);
        }
        if (!out[0]) {
            usleep(50000);
        }
    }
}

static void test_log_line_carries_it(void)
{
    px_rpc_client_t *gw = s_client("gateway");
    PX_REQUIRE(gw);
    Phuxanh__Test__V1__EchoRequest req = PHUXANH__TEST__V1__ECHO_REQUEST__INIT;
    px_status_t st;
    char rid_with[64], rid_without[64], rid_refused[64];
    snprintf(rid_with, sizeof rid_with, "obo-with-%d", (int)getpid());
    snprintf(rid_without, sizeof rid_without, "obo-without-%d", (int)getpid());
    snprintf(rid_refused, sizeof rid_refused, "obo-refused-%d", (int)getpid());
    PX_CHECK_INT_EQ(s_call(gw, ECHO, &req.base, PERSON, rid_with, NULL, &st), PX_OK);
    PX_CHECK_INT_EQ(s_call(gw, ECHO, &req.base, NULL, rid_without, NULL, &st), PX_OK);
    px_rpc_client_t *c = s_client("intruder");
    PX_REQUIRE(c);
    PX_CHECK_INT_EQ(s_call(c, ECHO, &req.base, PERSON, rid_refused, NULL, &st),
                    PX_PERMISSION_DENIED);
    char line[4096];
    s_log_line(rid_with, line, sizeof line);
    PX_CHECK(strstr(line, "\"on_behalf_of\":\"" PERSON "\"") != NULL);
    PX_CHECK(strstr(line, "\"caller\":\"gateway\"") != NULL);
    s_log_line(rid_without, line, sizeof line);
    PX_CHECK(line[0] && strstr(line, "on_behalf_of") == NULL);
    /* A refused claim is not repeated in the log; the refusal and its caller are. */
    s_log_line(rid_refused, line, sizeof line);
    PX_CHECK(strstr(line, "\"code\":\"PERMISSION_DENIED\"") != NULL);
    PX_CHECK(strstr(line, "\"caller\":\"intruder\"") != NULL);
    PX_CHECK(strstr(line, "on_behalf_of") == NULL);
    px_rpc_client_destroy(&c);
    px_rpc_client_destroy(&gw);
}

static const px_test_case_t s_cases[] = {
    {"untrusted_caller_refused_before_the_handler",
     test_untrusted_caller_refused_before_the_handler},
    {"trusted_caller_passes", test_trusted_caller_passes},
    {"value_must_be_a_name", test_value_must_be_a_name},
    {"passed_on_by_handlers", test_passed_on_by_handlers},
    {"log_line_carries_it", test_log_line_carries_it},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    char ep[64], self_arg[96];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", px_test_free_port());
    snprintf(self_arg, sizeof self_arg, "--self-endpoints=%s", ep);
    snprintf(s_log, sizeof s_log, "/tmp/px-test-on-behalf-%d.log", (int)getpid());
    const char *extra[] = {self_arg, "--workers=4", "--log-level=debug",
                           "--on-behalf-callers=gateway,testd", NULL};
    /* The server's stderr (its log) goes to the file for the time of the fork. */
    int fd = open(s_log, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "cannot open %s\n", s_log);
        return 1;
    }
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    int started = testd_start(&s_server, ep, extra);
    dup2(saved, 2);
    close(saved);
    close(fd);
    if (started != 0) {
        fprintf(stderr, "cannot start px-testd\n");
        return 1;
    }
    int rc = px_test_main(argc, argv, s_cases);
    if (testd_stop(&s_server, SIGTERM) != 0) {
        fprintf(stderr, "px-testd did not stop cleanly on SIGTERM\n");
        rc = 1;
    }
    if (rc == 0) {
        unlink(s_log);
    }
    return rc;
}
