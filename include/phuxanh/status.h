/*
 * status.h - gRPC status codes and a status value that carries a message.
 *
 * Every fallible function in phuxanh returns a px_code_t and, where the caller
 * may need to explain the failure, fills a px_status_t. The codes are gRPC's,
 * with gRPC's numbers, so they travel unchanged in the RPC envelope and map
 * one to one onto Connect/HTTP codes in the gateway.
 */
#ifndef PHUXANH_STATUS_H
#define PHUXANH_STATUS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    PX_OK = 0,
    PX_CANCELLED = 1,
    PX_UNKNOWN = 2,
    PX_INVALID_ARGUMENT = 3,
    PX_DEADLINE_EXCEEDED = 4,
    PX_NOT_FOUND = 5,
    PX_ALREADY_EXISTS = 6,
    PX_PERMISSION_DENIED = 7,
    PX_RESOURCE_EXHAUSTED = 8,
    PX_FAILED_PRECONDITION = 9,
    PX_ABORTED = 10,
    PX_OUT_OF_RANGE = 11,
    PX_UNIMPLEMENTED = 12,
    PX_INTERNAL = 13,
    PX_UNAVAILABLE = 14,
    PX_DATA_LOSS = 15,
    PX_UNAUTHENTICATED = 16,
} px_code_t;

#define PX_CODE_COUNT 17

/* Longest message a status keeps; longer ones are cut at a UTF-8 boundary. */
#define PX_STATUS_MESSAGE_MAX 512

typedef struct {
    px_code_t code;
    char message[PX_STATUS_MESSAGE_MAX];
} px_status_t;

/* "INVALID_ARGUMENT" (gRPC's spelling), or NULL for a number out of range. */
const char *px_code_name(px_code_t code);
/* "invalid_argument" (Connect's spelling), or NULL. */
const char *px_code_connect_name(px_code_t code);
/* Parses either spelling; returns false when the name is unknown. */
bool px_code_parse(const char *name, px_code_t *code);
/* Is this number one of the 17 codes? */
bool px_code_valid(int code);

/* Clears to OK with an empty message. */
void px_status_clear(px_status_t *st);
/* Sets code and a printf-style message; returns code, so `return px_status_set(...)` reads well. */
px_code_t px_status_set(px_status_t *st, px_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
px_code_t px_status_setv(px_status_t *st, px_code_t code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Copies at most max-1 bytes of src into dst, never splitting a UTF-8 sequence. */
void px_utf8_copy(char *dst, size_t max, const char *src);

#endif
