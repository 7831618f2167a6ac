/*
 * curve.h - CurveZMQ on phuxanh's ZeroMQ links, with identities (docs/PROTOCOL.md).
 *
 * Each process has one key pair (a ZeroMQ certificate file pair written by
 * `pxctl keys gen NAME`) and reads one allow-list: lines "<Z85 public key> <name>".
 * The allow-list does two jobs:
 *   - a server accepts a client only if its key is listed, and the client's
 *     identity is then the key's name (ZAP user id, read from each message's
 *     "User-Id" property): a caller is who its key says, not what it declares;
 *   - a client finds the public key of the server it talks to by the server's
 *     name ("roster", "activation").
 * Servers check keys through a ZAP handler (RFC 27) that this module runs, one
 * per ZeroMQ context; the list is re-read by px_curve_reload (SIGHUP in the
 * services), and a bad file keeps the old list.
 *
 * Off unless configured: with neither curve-secret-key nor curve-allow set,
 * links are plaintext (the NULL mechanism) as before.
 */
#ifndef PHUXANH_CURVE_H
#define PHUXANH_CURVE_H

#include <stdbool.h>
#include <stddef.h>

#include "phuxanh/config.h"
#include "phuxanh/log.h"
#include "phuxanh/status.h"

/* A Z85 key is 40 characters (32 bytes); buffers hold it and a NUL. */
#define PX_CURVE_KEY_LEN 40
#define PX_CURVE_KEY_BUF (PX_CURVE_KEY_LEN + 1)
/* Names of processes: file names of their keys and identities in allow-lists. */
#define PX_CURVE_NAME_MAX 64

/* The two options every process that speaks ZeroMQ declares (in its px_config table). */
#define PX_CURVE_CONFIG_OPTIONS                                                                    \
    {"curve-secret-key", "PX_CURVE_SECRET_KEY", NULL,                                              \
     "this process's CURVE secret certificate (pxctl keys gen); unset: plaintext links"},          \
    {                                                                                              \
        "curve-allow", "PX_CURVE_ALLOW", NULL,                                                     \
            "allow-list of \"<public key> <name>\" lines: the clients accepted and the servers' "  \
            "keys"                                                                                 \
    }

/* Is name 1..PX_CURVE_NAME_MAX of A-Z a-z 0-9 . _ - not starting with '.'? */
bool px_curve_name_ok(const char *name);

/* Writes a new key pair: DIR/NAME (public certificate, mode 644) and DIR/NAME_secret (both
 * keys, mode 600), in the ZeroMQ certificate format (ZPL, as CZMQ's zcert writes it). An
 * existing pair is kept (ALREADY_EXISTS) unless force. The public key goes to public_key. */
px_code_t px_curve_keys_gen(const char *dir, const char *name, bool force,
                            char public_key[PX_CURVE_KEY_BUF], px_status_t *st);

/* Reads a certificate file: its public key, and its secret key when secret_key is not NULL
 * (FAILED_PRECONDITION when the file has none). */
px_code_t px_curve_cert_load(const char *path, char public_key[PX_CURVE_KEY_BUF],
                             char secret_key[PX_CURVE_KEY_BUF], px_status_t *st);

typedef struct px_curve_t px_curve_t;

/* Loads the process's secret certificate and its allow-list. Both paths are required. log is
 * borrowed (may be NULL). */
px_curve_t *px_curve_new(const char *secret_path, const char *allow_path, px_log_t *log,
                         px_status_t *st);
/* From the options of PX_CURVE_CONFIG_OPTIONS: *out is NULL (CURVE off) when both are unset;
 * INVALID_ARGUMENT when only one is. */
px_code_t px_curve_from_config(const px_config_t *cfg, px_log_t *log, px_curve_t **out,
                               px_status_t *st);
/* The same from the environment (PX_CURVE_SECRET_KEY, PX_CURVE_ALLOW), for tools that take
 * no px_config table. */
px_code_t px_curve_from_env(px_log_t *log, px_curve_t **out, px_status_t *st);
/* Stops the ZAP handlers; sockets set up by this object must be closed first. */
void px_curve_destroy(px_curve_t **self_p);

/* Re-reads the allow-list file. On a bad file (the first bad line named with its number) the
 * old list stays in force and the error is returned. Safe from any thread. */
px_code_t px_curve_reload(px_curve_t *self, px_status_t *st);
/* Entries of the list in force. */
size_t px_curve_allowed_count(px_curve_t *self);
/* Does the list in force give a key for name? */
bool px_curve_knows(px_curve_t *self, const char *name);
/* This process's public key. */
const char *px_curve_public_key(const px_curve_t *self);

/* Makes sock (not yet bound) a CURVE server whose clients are checked against the allow-list,
 * starting this object's ZAP handler in zctx (the socket's context) if not yet running. Only
 * one object may serve per context: FAILED_PRECONDITION otherwise. */
px_code_t px_curve_server_setup(px_curve_t *self, void *zctx, void *sock, px_status_t *st);
/* Makes sock (not yet connected) a CURVE client of the server listed as server_name.
 * FAILED_PRECONDITION when the allow-list has no such name. */
px_code_t px_curve_client_setup(px_curve_t *self, void *sock, const char *server_name,
                                px_status_t *st);

#endif
