/*
 * raw_zmq_server.c - the floor of the rpc benchmark: a ROUTER that echoes every message.
 *
 * No envelope, no protobuf, no worker threads: a DEALER's single frame arrives as
 * [peer identity][payload] and goes straight back. Whatever our runtime costs above this is
 * the price of its envelope, its broker/worker hand-off and its protobuf work.
 *
 *   bench-raw-zmq-server --listen tcp://127.0.0.1:PORT     (PORT may be * for any)
 *
 * Prints "READY <endpoint>" on stdout once bound; stops on SIGINT or SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

/* A request is exactly identity + payload; anything with more frames is not ours to echo and
 * is dropped after reading at most this many frames. */
#define S_MAX_FRAMES 16

static volatile sig_atomic_t s_stop = 0;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/* Receives one whole message; returns its frame count (frames beyond the first two are
 * read and discarded), or -1 on error/interruption. */
static int s_recv(void *sock, zmq_msg_t *id, zmq_msg_t *body)
{
    if (zmq_msg_recv(id, sock, 0) < 0) {
        return -1;
    }
    int frames = 1;
    int more = zmq_msg_more(id);
    if (more) {
        if (zmq_msg_recv(body, sock, 0) < 0) {
            return -1;
        }
        frames++;
        more = zmq_msg_more(body);
    }
    while (more && frames < S_MAX_FRAMES) {
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        int rc = zmq_msg_recv(&extra, sock, 0);
        more = rc >= 0 && zmq_msg_more(&extra);
        zmq_msg_close(&extra);
        if (rc < 0) {
            return -1;
        }
        frames++;
    }
    return frames;
}

int main(int argc, char **argv)
{
    const char *listen = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0) {
            listen = argv[i + 1];
        }
    }
    if (!listen) {
        fprintf(stderr, "usage: %s --listen tcp://127.0.0.1:PORT\n", argv[0]);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal; /* no SA_RESTART: a blocked recv must return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int status = 1;
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
    if (!sock) {
        fprintf(stderr, "raw-zmq-server: cannot create socket: %s\n", zmq_strerror(errno));
        goto done;
    }
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(sock, listen) != 0) {
        fprintf(stderr, "raw-zmq-server: cannot bind %s: %s\n", listen, zmq_strerror(errno));
        goto done;
    }
    char bound[256];
    size_t bound_len = sizeof bound;
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &bound_len) != 0) {
        snprintf(bound, sizeof bound, "%s", listen);
    }
    printf("READY %s\n", bound);
    fflush(stdout);

    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    while (!s_stop) {
        int frames = s_recv(sock, &id, &body);
        if (frames < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "raw-zmq-server: recv: %s\n", zmq_strerror(errno));
            break;
        }
        if (frames != 2) {
            continue;
        }
        /* zmq_msg_send hands the frame's content to the socket and leaves the msg empty,
         * ready for the next recv: the payload is never copied. */
        if (zmq_msg_send(&id, sock, ZMQ_SNDMORE) < 0 || zmq_msg_send(&body, sock, 0) < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "raw-zmq-server: send: %s\n", zmq_strerror(errno));
            break;
        }
    }
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    status = s_stop ? 0 : 1;

done:
    if (sock) {
        zmq_close(sock);
    }
    if (ctx) {
        zmq_ctx_term(ctx);
    }
    return status;
}
