/*
 * pxctl.h - what pxctl's subcommands share: exit codes, argument parsing, the
 * services and how to call them, and the terminal's display width.
 *
 * Each subcommand is `int pxctl_<name>_main(int argc, char **argv)` in its own
 * file (argv[0] is the subcommand's name), listed in main.c's table. It describes
 * itself in a pxctl_command_t (synopsis, options, how many arguments), and
 * pxctl_args_parse turns argv into a px_config_t (environment < flag, --help
 * listing every option) and the positional arguments, so every subcommand reads
 * and documents its settings the same way as the services do.
 */
#ifndef PXCTL_H
#define PXCTL_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "phuxanh/config.h"
#include "phuxanh/rpc.h"
#include "phuxanh/status.h"

/* Exit status of every subcommand (listed by `pxctl --help`). */
enum {
    PXCTL_EXIT_OK = 0,
    PXCTL_EXIT_FAILED = 1,      /* the operation failed: a call refused, a file not written */
    PXCTL_EXIT_USAGE = 2,       /* bad arguments, flags or settings: nothing was done */
    PXCTL_EXIT_UNAVAILABLE = 3, /* a service (or the gateway) could not be reached */
    PXCTL_EXIT_NOT_SERVING = 4, /* a service answered that it is not serving */
};

/* ---------------------------------------------------------------- the subcommands */

/* A row of main.c's table. */
typedef struct {
    const char *name;
    int (*main)(int argc, char **argv); /* argv[0] is the subcommand's name */
    const char *summary;                /* one line, for `pxctl --help` */
    /* Words that complete its first argument (bash completion), space separated, or NULL. */
    const char *first_args;
} pxctl_entry_t;

extern const pxctl_entry_t pxctl_commands[];
extern const size_t pxctl_ncommands;

/* ---------------------------------------------------------------- arguments */

/* An option of a subcommand: a px_config option, maybe a switch (a flag without a value:
 * `--watch` stands for `--watch=on`), maybe with a one-letter alias (`-f`). */
#define PXCTL_SWITCH 1u

typedef struct {
    px_config_option_t opt; /* a switch has def "off" and no variable, as a rule */
    unsigned flags;         /* PXCTL_SWITCH */
    char short_name;        /* 'f' for -f, or 0 */
} pxctl_option_t;

/* Groups of shared options a subcommand takes besides its own. */
#define PXCTL_COMMON_SERVICES 1u /* roster-endpoints, activation-endpoints, as, timeout-ms */
#define PXCTL_COMMON_FEED 2u     /* activation-feed */
#define PXCTL_COMMON_GATEWAY 4u  /* gateway-url */
#define PXCTL_COMMON_CURVE 8u    /* curve-secret-key, curve-allow (with SERVICES or FEED too) */

typedef struct {
    const char *name;     /* "call", "tokens add": as typed after pxctl */
    const char *synopsis; /* the arguments, e.g. "SERVICE METHOD [JSON | -]"; may be NULL */
    const char *summary;  /* one line */
    const char *details;  /* printed after the options by --help; may be NULL */
    const pxctl_option_t *options; /* its own, NULL-name terminated; may be NULL */
    unsigned common;               /* PXCTL_COMMON_* */
    int min_args, max_args;        /* positional arguments; max -1: no bound */
} pxctl_command_t;

typedef struct {
    px_config_t *cfg;
    char **pos; /* the positional arguments (borrowed from argv) */
    int npos;
    /* CURVE (curve-secret-key, curve-allow) for commands that reach the services; NULL:
     * plaintext. Owned. */
    px_curve_t *curve;
    /* owned, for cfg's lifetime */
    px_config_option_t *table;
    char **owned;
    size_t nowned;
} pxctl_args_t;

/* Parses argv (argv[0] is the subcommand) against cmd. true: run with args (free them with
 * pxctl_args_free); *rc is then PXCTL_EXIT_FAILED, for the command to change once done.
 * false: return *rc - PXCTL_EXIT_OK after --help, PXCTL_EXIT_USAGE with the reason on stderr.
 * Flags and arguments may come in any order; "--" ends the flags. */
bool pxctl_args_parse(const pxctl_command_t *cmd, int argc, char **argv, pxctl_args_t *args,
                      int *rc);
void pxctl_args_free(pxctl_args_t *args);
/* A switch's value: true for on/true/yes/1. */
bool pxctl_on(const px_config_t *cfg, const char *name);
/* An integer option within [min, max]; false with the reason printed (a usage error). */
bool pxctl_int(const pxctl_command_t *cmd, const px_config_t *cfg, const char *name, int64_t min,
               int64_t max, int64_t *out);

/* "pxctl NAME: message" on stderr. */
void pxctl_err(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The exit status for a failed call's code: UNAVAILABLE is PXCTL_EXIT_UNAVAILABLE, anything
 * else PXCTL_EXIT_FAILED. */
int pxctl_exit_for(px_code_t code);

/* ---------------------------------------------------------------- services */

/* Who pxctl is to the services (x-caller): the name their trust lists use (on-behalf-callers,
 * person-readers). */
#define PXCTL_CALLER "pxctl"

typedef enum { PXCTL_SVC_ROSTER, PXCTL_SVC_ACTIVATION, PXCTL_SVC_COUNT } pxctl_svc_t;

typedef struct {
    const char *name;   /* "roster" */
    const char *option; /* its endpoints option, "roster-endpoints" */
    const ProtobufCServiceDescriptor *descriptor;
} pxctl_service_t;

extern const pxctl_service_t pxctl_services[PXCTL_SVC_COUNT];
/* By name ("roster", "activation"), or NULL. */
const pxctl_service_t *pxctl_service_find(const char *name);

/* A client for a service (caller PXCTL_CALLER), on its configured endpoints or on `endpoints`
 * when not NULL, trying an idempotent call at most max_attempts times (0: the client's
 * default). NULL with the reason printed. */
px_rpc_client_t *pxctl_client_new(const px_config_t *cfg, px_curve_t *curve,
                                  const pxctl_service_t *svc, const char *endpoints,
                                  int max_attempts, const char *cmd_name);

/* The metadata of one call: x-on-behalf-of (--as) and a fresh x-request-id, copied into
 * request_id (33 bytes) so that a failure can name it. NULL when out of memory. */
px_md_t *pxctl_md_new(const px_config_t *cfg, char *request_id);

/* One blocking call with pxctl's metadata and timeout (timeout-ms). PXCTL_EXIT_OK with *reply
 * set (free with protobuf_c_message_free_unpacked), or the exit status with
 * "pxctl CMD: CODE: message (request id ...)" printed. */
int pxctl_call(px_rpc_client_t *client, const px_config_t *cfg, const char *cmd_name,
               const char *path, const ProtobufCMessage *request,
               const ProtobufCMessageDescriptor *reply_type, bool idempotent,
               ProtobufCMessage **reply);

/* ---------------------------------------------------------------- input and output */

/* Reads all of fd (at most max bytes) into a malloc'd, NUL-terminated buffer. 0, or -1 with
 * errno (EFBIG past max). */
int pxctl_read_fd(int fd, size_t max, char **out, size_t *len);
/* Writes all of buf to fd, restarting on EINTR and short writes. 0, or -1 with errno. */
int pxctl_write_all(int fd, const void *buf, size_t len);
/* mkdir -p: path made with mode (less the umask) if missing, and its missing parents with
 * 0755, as mkdir -p would: a parent is not ours to close. 0, or -1 with errno. */
int pxctl_mkdirs(const char *path, mode_t mode);
/* Whether to colour what goes to fd: a terminal, NO_COLOR unset, TERM not "dumb". */
bool pxctl_color(int fd);

/* Columns a terminal gives s (UTF-8): combining marks and controls take none, East Asian
 * wide characters two, the rest one; ANSI colour sequences (ESC [ ... m) take none. */
size_t pxctl_width(const char *s);
/* Writes s padded with spaces to `width` columns: after it, or before it when right. */
void pxctl_pad(FILE *out, const char *s, size_t width, bool right);

#endif
