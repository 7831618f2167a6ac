/*
 * config.h - process configuration from PX_* environment variables and flags.
 *
 * Each program declares a table of options; px_config_parse reads the
 * environment, then the command line (--name=value or --name value), which
 * wins. --help prints the table (flag, variable, default, description).
 */
#ifndef PHUXANH_CONFIG_H
#define PHUXANH_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "phuxanh/status.h"

typedef struct {
    const char *name; /* flag name without dashes, e.g. "listen" */
    const char *env;  /* environment variable, e.g. "PX_LISTEN" */
    const char *def;  /* default value, may be NULL (unset) */
    const char *help; /* one line */
} px_config_option_t;

typedef struct px_config_t px_config_t;

/* Parses env then argv against options (NULL-name terminated). On --help it prints the usage
 * to stdout and sets *help_shown. On an unknown flag or a missing value it returns NULL and
 * fills st with INVALID_ARGUMENT naming the flag. */
px_config_t *px_config_parse(const char *program, const char *summary,
                             const px_config_option_t *options, int argc, char **argv,
                             bool *help_shown, px_status_t *st);
void px_config_destroy(px_config_t **self_p);

/* The value for name (flag name), or NULL when unset. Asking for an undeclared name is a
 * programmer error (assert). */
const char *px_config_get(const px_config_t *self, const char *name);
/* Integer value with bounds; INVALID_ARGUMENT naming the option when not an integer in range. */
px_code_t px_config_int(const px_config_t *self, const char *name, int64_t min, int64_t max,
                        int64_t *out, px_status_t *st);

#endif
