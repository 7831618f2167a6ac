/* wh_receiver.c - a webhook receiver for the tests (see wh_receiver.h). */
#include "wh_receiver.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Test bodies are small; a bigger one is a bug of the sender worth seeing as a failure. */
#define BODY_MAX (8 * 1024 * 1024)

struct wh_receiver_t {
    struct MHD_Daemon *daemon;
    uint16_t port;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    wh_request_t *reqs;
    size_t n, cap;
    int fail_n;
    unsigned fail_status;
};

typedef struct {
    char *body;
    size_t len;
    bool too_big;
} s_upload_t;

static void s_copy_header(struct MHD_Connection *c, const char *name, char *out, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(out, cap, "%s", v ? v : "");
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *data,
                                size_t *data_size, void **con_cls)
{
    wh_receiver_t *self = cls;
    s_upload_t *up = *con_cls;
    if (!up) {
        if (!(up = calloc(1, sizeof *up))) {
            return MHD_NO;
        }
        *con_cls = up;
        return MHD_YES;
    }
    if (*data_size > 0) {
        if (up->len + *data_size > BODY_MAX) {
            up->too_big = true;
        } else {
            char *b = realloc(up->body, up->len + *data_size + 1);
            if (!b) {
                return MHD_NO;
            }
            memcpy(b + up->len, data, *data_size);
            up->body = b;
            up->len += *data_size;
            up->body[up->len] = '\0';
        }
        *data_size = 0;
        return MHD_YES;
    }
    wh_request_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.method, sizeof r.method, "%s", method);
    snprintf(r.path, sizeof r.path, "%s", url);
    s_copy_header(c, "Content-Type", r.content_type, sizeof r.content_type);
    s_copy_header(c, "X-Phuxanh-Delivery", r.delivery, sizeof r.delivery);
    s_copy_header(c, "X-Phuxanh-Event", r.event, sizeof r.event);
    s_copy_header(c, "X-Phuxanh-Signature", r.signature, sizeof r.signature);
    r.body = up->body ? up->body : strdup("");
    r.len = up->len;
    up->body = NULL;
    pthread_mutex_lock(&self->mu);
    r.status = up->too_big ? 413 : 200;
    if (self->fail_n != 0 && r.status == 200) {
        r.status = self->fail_status;
        if (self->fail_n > 0) {
            self->fail_n--;
        }
    }
    if (self->n == self->cap) {
        size_t cap = self->cap ? 2 * self->cap : 16;
        wh_request_t *v = realloc(self->reqs, cap * sizeof *v);
        if (v) {
            self->reqs = v;
            self->cap = cap;
        }
    }
    unsigned status = r.status;
    if (self->n < self->cap) {
        self->reqs[self->n++] = r;
    } else {
        free(r.body);
    }
    pthread_cond_broadcast(&self->cond);
    pthread_mutex_unlock(&self->mu);
    static const char ok[] = "{}";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(2, (void *)ok, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void s_done(void *cls, struct MHD_Connection *c, void **con_cls,
                   enum MHD_RequestTerminationCode toe)
{
    s_upload_t *up = *con_cls;
    if (up) {
        free(up->body);
        free(up);
        *con_cls = NULL;
    }
}

wh_receiver_t *wh_receiver_new(uint16_t port)
{
    wh_receiver_t *self = calloc(1, sizeof *self);
    if (!self) {
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cond, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    self->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, port, NULL, NULL, s_handle,
        self, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, s_done,
        self, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (!self->daemon) {
        wh_receiver_destroy(&self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : port;
    return self;
}

void wh_receiver_destroy(wh_receiver_t **self_p)
{
    if (*self_p) {
        wh_receiver_t *self = *self_p;
        if (self->daemon) {
            MHD_stop_daemon(self->daemon);
        }
        for (size_t i = 0; i < self->n; i++) {
            free(self->reqs[i].body);
        }
        free(self->reqs);
        pthread_mutex_destroy(&self->mu);
        pthread_cond_destroy(&self->cond);
        free(self);
        *self_p = NULL;
    }
}

uint16_t wh_receiver_port(const wh_receiver_t *self)
{
    return self->port;
}

void wh_receiver_fail(wh_receiver_t *self, int n, unsigned status)
{
    pthread_mutex_lock(&self->mu);
    self->fail_n = n;
    self->fail_status = status;
    pthread_mutex_unlock(&self->mu);
}

size_t wh_receiver_count(wh_receiver_t *self)
{
    pthread_mutex_lock(&self->mu);
    size_t n = self->n;
    pthread_mutex_unlock(&self->mu);
    return n;
}

size_t wh_receiver_wait(wh_receiver_t *self, size_t n, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&self->mu);
    while (self->n < n) {
        if (pthread_cond_timedwait(&self->cond, &self->mu, &until) != 0) {
            break;
        }
    }
    size_t got = self->n;
    pthread_mutex_unlock(&self->mu);
    return got;
}

bool wh_receiver_get(wh_receiver_t *self, size_t i, wh_request_t *out)
{
    bool ok = false;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&self->mu);
    if (i < self->n) {
        *out = self->reqs[i];
        out->body = malloc(self->reqs[i].len + 1);
        if (out->body) {
            memcpy(out->body, self->reqs[i].body, self->reqs[i].len + 1);
            ok = true;
        }
    }
    pthread_mutex_unlock(&self->mu);
    return ok;
}

void wh_request_clear(wh_request_t *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

size_t wh_receiver_delivered(wh_receiver_t *self, const char *delivery_id)
{
    size_t n = 0;
    pthread_mutex_lock(&self->mu);
    for (size_t i = 0; i < self->n; i++) {
        n += self->reqs[i].status >= 200 && self->reqs[i].status < 300 &&
             strcmp(self->reqs[i].delivery, delivery_id) == 0;
    }
    pthread_mutex_unlock(&self->mu);
    return n;
}
