/*
 * wh_receiver.h - a webhook receiver the webhook tests run in their own process.
 *
 * A real HTTP server (libmicrohttpd) on 127.0.0.1 that keeps every request it is
 * sent (method, path, the X-Phuxanh-* headers, the body) and answers 200, or,
 * when told, an error status to the next N requests, as a receiver that is down
 * or broken would.
 */
#ifndef WH_RECEIVER_H
#define WH_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char method[16];
    char path[128];
    char content_type[64];
    char delivery[64];
    char event[64];
    char signature[256];
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
    unsigned status; /* what the receiver answered */
} wh_request_t;

typedef struct wh_receiver_t wh_receiver_t;

/* Listens on 127.0.0.1:port (0: any free port). NULL on failure. */
wh_receiver_t *wh_receiver_new(uint16_t port);
void wh_receiver_destroy(wh_receiver_t **self_p);
uint16_t wh_receiver_port(const wh_receiver_t *self);
/* The next n requests are answered status (n < 0: every one until told otherwise; n = 0:
 * back to 200). */
void wh_receiver_fail(wh_receiver_t *self, int n, unsigned status);
/* Requests received so far. */
size_t wh_receiver_count(wh_receiver_t *self);
/* Waits until at least n requests came; returns the count (less than n on timeout). */
size_t wh_receiver_wait(wh_receiver_t *self, size_t n, int timeout_ms);
/* A copy of request i (body malloc'd: wh_request_clear). false when there is none. */
bool wh_receiver_get(wh_receiver_t *self, size_t i, wh_request_t *out);
void wh_request_clear(wh_request_t *r);
/* How many requests carrying this delivery id were answered 2xx. */
size_t wh_receiver_delivered(wh_receiver_t *self, const char *delivery_id);

#endif
