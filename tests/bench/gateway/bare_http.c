/*
 * bare_http.c - the floor of the gateway benchmark: libmicrohttpd answering a fixed body.
 *
 *   bench-gw-bare --port P --body FILE [--threads 2]      (P may be 0: any free port)
 *
 * Every request is answered 200 with FILE's bytes, Content-Type application/json, on a
 * keep-alive connection. The server is set up the way px-gateway's http.c sets up its own:
 * the same libmicrohttpd, the same daemon flags (internal polling threads, epoll,
 * suspend/resume allowed, an inter-thread channel), the same thread pool size, connection
 * limits, timeout, per-connection memory and strictness, and the answer is given on the
 * same call of the access handler (the second, once the request is whole) with a response
 * object made for the request. What it leaves out is exactly what the gateway adds on top
 * of HTTP: routing, the token and its rate limit, the request id, the query checks, the
 * cache lookup and its copy, the log line and the metrics. So the gateway's figures over
 * this server's are the price of the gateway, not of libmicrohttpd or of the machine.
 *
 * Prints "READY http://127.0.0.1:PORT" on stdout once listening; stops on SIGINT or SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The body is a GetProgress answer (a few hundred bytes); anything past this is a mistake. */
#define S_BODY_MAX (1024 * 1024)
/* http.c's values at px-gateway's defaults (max-connections, idle-timeout-s, max-header). */
#define S_MAX_CONNECTIONS 4096
#define S_IDLE_TIMEOUT_S 30
#define S_MAX_HEADER 32768
#define S_THREADS_MAX 64

typedef struct {
    const char *body;
    size_t len;
} s_server_t;

/* A per-request marker, so that the first call (head in) and the second (request whole) can
 * be told apart as http.c tells them apart; its address is all that is used. */
static int s_seen;

static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls)
{
    s_server_t *srv = cls;
    if (!*con_cls) {
        *con_cls = &s_seen;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        *upload_size = 0; /* a body is read and dropped */
        return MHD_YES;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(srv->len, (void *)srv->body, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    *con_cls = NULL;
}

static char *s_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) {
        fprintf(stderr, "bench-gw-bare: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    buf = malloc(S_BODY_MAX);
    size_t n = buf ? fread(buf, 1, S_BODY_MAX, f) : 0;
    if (!buf || ferror(f) || n == S_BODY_MAX) {
        fprintf(stderr, "bench-gw-bare: %s: unreadable or over %d bytes\n", path, S_BODY_MAX);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    long port = -1, threads = 2;
    const char *body_path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) {
            port = strtol(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--body") == 0) {
            body_path = argv[i + 1];
        } else if (strcmp(argv[i], "--threads") == 0) {
            threads = strtol(argv[i + 1], NULL, 10);
        }
    }
    if (port < 0 || port > 65535 || !body_path || threads < 1 || threads > S_THREADS_MAX ||
        argc % 2 != 1) {
        fprintf(stderr, "usage: bench-gw-bare --port P --body FILE [--threads 1..%d]\n",
                S_THREADS_MAX);
        return 2;
    }
    int rc = 1;
    struct MHD_Daemon *d = NULL;
    s_server_t srv = {0};
    char *body = s_read_file(body_path, &srv.len);
    if (!body) {
        goto done;
    }
    srv.body = body;

    /* Signals go to the main thread's sigwait; libmicrohttpd's threads inherit the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* http.c's flags and options, one for one (see the top of the file). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    struct MHD_OptionItem o[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &sa},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)s_completed, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, S_MAX_CONNECTIONS, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, S_IDLE_TIMEOUT_S, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, S_MAX_HEADER, NULL},
        {MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL},
        {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    d = MHD_start_daemon(flags, 0, NULL, NULL, s_access, &srv, MHD_OPTION_ARRAY, o, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench-gw-bare: cannot serve on port %ld\n", port);
        goto done;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("READY http://127.0.0.1:%u\n", di ? (unsigned)di->port : (unsigned)port);
    fflush(stdout);
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) == 0 && (sig == SIGINT || sig == SIGTERM)) {
            break;
        }
    }
    rc = 0;
done:
    if (d) {
        MHD_stop_daemon(d);
    }
    free(body);
    return rc;
}
