/*
 * config.c - process configuration from PX_* environment variables and flags.
 *
 * Precedence is default < environment < command line: systemd units and the
 * quickstart script set the environment, and a person at a terminal overrides
 * one thing with a flag without editing either. An empty variable counts as
 * unset, because `PX_FOO=` in an environment file usually means "not given".
 *
 * Values are copied, so the config outlives argv and a later setenv(). A value
 * may hold a secret (a database URL with a password), so messages about a bad
 * value quote it only for integer options, whose values are not secrets.
 *
 * On --help (or -h) the usage is printed to stdout, *help_shown is set, and
 * px_config_parse returns NULL with st left OK: there is nothing to run, and a
 * caller that treats NULL as "stop" does the right thing.
 */
#include "phuxanh/config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct px_config_t {
    const px_config_option_t *options; /* the caller's table, which is static */
    size_t count;
    char **values; /* values[i] for options[i]; owned; NULL when unset */
};

static int s_find(const px_config_option_t *options, size_t count, const char *name, size_t len)
{
    for (size_t i = 0; i < count; i++) {
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int s_set(px_config_t *self, size_t i, const char *value)
{
    char *copy = NULL;
    if (value) {
        copy = strdup(value);
        if (!copy) {
            return -1;
        }
    }
    free(self->values[i]);
    self->values[i] = copy;
    return 0;
}

static int s_width(const char *s, int min)
{
    int n = s ? (int)strlen(s) : 0;
    return n > min ? n : min;
}

static void s_usage(const char *program, const char *summary, const px_config_option_t *options,
                    size_t count)
{
    /* Columns sized to their widest entry so the table lines up without a fixed guess. */
    int wflag = (int)strlen("FLAG"), wenv = (int)strlen("ENVIRONMENT"),
        wdef = (int)strlen("DEFAULT");
    for (size_t i = 0; i < count; i++) {
        wflag = s_width(options[i].name, wflag - 2) + 2;
        wenv = s_width(options[i].env, wenv);
        wdef = s_width(options[i].def, wdef);
    }
    printf("%s%s%s\n\n", program ? program : "", summary ? " - " : "", summary ? summary : "");
    printf("Usage: %s [--flag=value | --flag value]...\n\n", program ? program : "");
    printf("  %-*s  %-*s  %-*s  %s\n", wflag, "FLAG", wenv, "ENVIRONMENT", wdef, "DEFAULT",
           "DESCRIPTION");
    for (size_t i = 0; i < count; i++) {
        char flag[256];
        snprintf(flag, sizeof flag, "--%s", options[i].name);
        printf("  %-*s  %-*s  %-*s  %s\n", wflag, flag, wenv, options[i].env ? options[i].env : "-",
               wdef, options[i].def ? options[i].def : "-", options[i].help ? options[i].help : "");
    }
    printf("\nA flag overrides its environment variable, which overrides the default.\n");
    fflush(stdout);
}

px_config_t *px_config_parse(const char *program, const char *summary,
                             const px_config_option_t *options, int argc, char **argv,
                             bool *help_shown, px_status_t *st)
{
    assert(options);
    px_config_t *self = NULL;
    bool ok = false;
    if (help_shown) {
        *help_shown = false;
    }
    px_status_clear(st);

    size_t count = 0;
    while (options[count].name) {
        count++;
    }
    self = calloc(1, sizeof *self);
    if (!self || !(self->values = calloc(count ? count : 1, sizeof *self->values))) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    self->options = options;
    self->count = count;

    for (size_t i = 0; i < count; i++) {
        const char *env = options[i].env ? getenv(options[i].env) : NULL;
        const char *value = env && *env ? env : options[i].def;
        if (s_set(self, i, value) != 0) {
            px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
    }

    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            s_usage(program, summary, options, count);
            if (help_shown) {
                *help_shown = true;
            }
            goto done;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            px_status_set(st, PX_INVALID_ARGUMENT, "unexpected argument '%.64s' (see --help)", arg);
            goto done;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int i = s_find(options, count, name, len);
        if (i < 0) {
            px_status_set(st, PX_INVALID_ARGUMENT, "unknown flag --%.*s (see --help)",
                          (int)(len > 64 ? 64 : len), name);
            goto done;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (a + 1 < argc && strncmp(argv[a + 1], "--", 2) != 0) {
            /* A following "--x" is taken for the next flag, not a value: forgetting a value
             * is a likelier mistake than a value that starts with two dashes. */
            value = argv[++a];
        } else {
            px_status_set(st, PX_INVALID_ARGUMENT, "flag --%s needs a value", options[i].name);
            goto done;
        }
        if (s_set(self, (size_t)i, value) != 0) {
            px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
    }
    ok = true;

done:
    if (!ok) {
        px_config_destroy(&self);
    }
    return self;
}

void px_config_destroy(px_config_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        px_config_t *self = *self_p;
        if (self->values) {
            for (size_t i = 0; i < self->count; i++) {
                free(self->values[i]);
            }
            free(self->values);
        }
        free(self);
        *self_p = NULL;
    }
}

static int s_index(const px_config_t *self, const char *name)
{
    assert(self && name);
    int i = s_find(self->options, self->count, name, strlen(name));
    assert(i >= 0 && "px_config: option not declared in the table");
    return i;
}

const char *px_config_get(const px_config_t *self, const char *name)
{
    int i = s_index(self, name);
    return i >= 0 ? self->values[i] : NULL;
}

px_code_t px_config_int(const px_config_t *self, const char *name, int64_t min, int64_t max,
                        int64_t *out, px_status_t *st)
{
    int i = s_index(self, name);
    const char *env = i >= 0 && self->options[i].env ? self->options[i].env : "-";
    const char *value = i >= 0 ? self->values[i] : NULL;
    if (!value) {
        return px_status_set(st, PX_INVALID_ARGUMENT, "--%s (%s) is not set", name, env);
    }
    errno = 0;
    char *end = NULL;
    long long n = strtoll(value, &end, 10);
    /* strtoll would skip leading blanks; a stray blank is more likely a quoting mistake. */
    if (end == value || *end != '\0' || isspace((unsigned char)value[0]) || errno == ERANGE ||
        n < min || n > max) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "--%s (%s) must be an integer in [%" PRId64 ", %" PRId64
                             "], not '%.32s'",
                             name, env, min, max, value);
    }
    if (out) {
        *out = (int64_t)n;
    }
    px_status_clear(st);
    return PX_OK;
}
