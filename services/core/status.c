/*
 * status.c - names of the 17 gRPC codes and the status value that carries a message.
 *
 * Two spellings exist because two protocols meet at the gateway: gRPC writes
 * "INVALID_ARGUMENT" (and "CANCELLED"), Connect writes "invalid_argument" (and
 * "canceled", American). Both live in one table indexed by the code's number,
 * so adding a code means adding one row, and parsing is a scan of that row set.
 * Connect defines no name for OK; we use "ok" so every code round-trips.
 *
 * Messages are bounded (PX_STATUS_MESSAGE_MAX) because they travel in RPC
 * replies and log lines. A message cut in the middle of a UTF-8 sequence would
 * be invalid in protobuf strings and JSON, so cuts land on sequence starts.
 */
#include "phuxanh/status.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *grpc;
    const char *connect;
} s_code_names_t;

/* Indexed by px_code_t; the static assert below keeps it in step with the enum. */
static const s_code_names_t s_names[] = {
    [PX_OK] = {"OK", "ok"},
    [PX_CANCELLED] = {"CANCELLED", "canceled"},
    [PX_UNKNOWN] = {"UNKNOWN", "unknown"},
    [PX_INVALID_ARGUMENT] = {"INVALID_ARGUMENT", "invalid_argument"},
    [PX_DEADLINE_EXCEEDED] = {"DEADLINE_EXCEEDED", "deadline_exceeded"},
    [PX_NOT_FOUND] = {"NOT_FOUND", "not_found"},
    [PX_ALREADY_EXISTS] = {"ALREADY_EXISTS", "already_exists"},
    [PX_PERMISSION_DENIED] = {"PERMISSION_DENIED", "permission_denied"},
    [PX_RESOURCE_EXHAUSTED] = {"RESOURCE_EXHAUSTED", "resource_exhausted"},
    [PX_FAILED_PRECONDITION] = {"FAILED_PRECONDITION", "failed_precondition"},
    [PX_ABORTED] = {"ABORTED", "aborted"},
    [PX_OUT_OF_RANGE] = {"OUT_OF_RANGE", "out_of_range"},
    [PX_UNIMPLEMENTED] = {"UNIMPLEMENTED", "unimplemented"},
    [PX_INTERNAL] = {"INTERNAL", "internal"},
    [PX_UNAVAILABLE] = {"UNAVAILABLE", "unavailable"},
    [PX_DATA_LOSS] = {"DATA_LOSS", "data_loss"},
    [PX_UNAUTHENTICATED] = {"UNAUTHENTICATED", "unauthenticated"},
};

_Static_assert(sizeof s_names / sizeof s_names[0] == PX_CODE_COUNT, "one name row per gRPC code");

bool px_code_valid(int code)
{
    return code >= 0 && code < PX_CODE_COUNT;
}

const char *px_code_name(px_code_t code)
{
    return px_code_valid((int)code) ? s_names[code].grpc : NULL;
}

const char *px_code_connect_name(px_code_t code)
{
    return px_code_valid((int)code) ? s_names[code].connect : NULL;
}

bool px_code_parse(const char *name, px_code_t *code)
{
    if (!name) {
        return false;
    }
    for (int i = 0; i < PX_CODE_COUNT; i++) {
        if (strcmp(name, s_names[i].grpc) == 0 || strcmp(name, s_names[i].connect) == 0) {
            if (code) {
                *code = (px_code_t)i;
            }
            return true;
        }
    }
    return false;
}

void px_status_clear(px_status_t *st)
{
    if (st) {
        st->code = PX_OK;
        st->message[0] = '\0';
    }
}

px_code_t px_status_set(px_status_t *st, px_code_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    px_status_setv(st, code, fmt, ap);
    va_end(ap);
    return code;
}

px_code_t px_status_setv(px_status_t *st, px_code_t code, const char *fmt, va_list ap)
{
    if (!st) {
        return code;
    }
    /* Format into scratch space a few bytes longer than the message so that px_utf8_copy can
     * see whether the sequence at the cut is complete. The scratch copy also makes
     * px_status_set(st, c, "...: %s", st->message) safe. */
    char scratch[PX_STATUS_MESSAGE_MAX + 4];
    scratch[0] = '\0';
    if (fmt && vsnprintf(scratch, sizeof scratch, fmt, ap) < 0) {
        scratch[0] = '\0';
    }
    st->code = code;
    px_utf8_copy(st->message, sizeof st->message, scratch);
    return code;
}

void px_utf8_copy(char *dst, size_t max, const char *src)
{
    if (!dst || max == 0) {
        return;
    }
    if (!src) {
        dst[0] = '\0';
        return;
    }
    size_t cut = strnlen(src, max - 1);
    if (src[cut] != '\0') {
        /* src[cut] is the first byte left out. If it continues a sequence, step back to that
         * sequence's lead byte (at most 3 bytes back) and cut there instead. */
        const unsigned char *u = (const unsigned char *)src;
        size_t lead = cut;
        while (lead > 0 && cut - lead < 3 && (u[lead] & 0xC0) == 0x80) {
            lead--;
        }
        size_t len = u[lead] >= 0xF0 ? 4 : u[lead] >= 0xE0 ? 3 : u[lead] >= 0xC0 ? 2 : 1;
        if (lead < cut && lead + len > cut) {
            cut = lead;
        }
    }
    memcpy(dst, src, cut);
    dst[cut] = '\0';
}
