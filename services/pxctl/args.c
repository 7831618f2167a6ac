/*
 * args.c - a subcommand's argv into its settings and its positional arguments.
 *
 * The settings go through px_config like every phuxanh program's (default <
 * PX_* variable < flag, and --help prints the table of flag, variable, default
 * and description), so an operator reads pxctl's options the way they read a
 * service's. px_config knows only `--flag value` options; a command line tool
 * also needs arguments (`pxctl call roster ListUnits '{}'`), switches (`--watch`,
 * no value) and a short alias or two (`-f`). So argv is first split here:
 * positional arguments are taken out, a switch becomes `--name=on`, an alias its
 * long name, and what remains is handed to px_config_parse. The split has to know
 * which flags take a value (the word after one is its value, not an argument),
 * which is why switches are declared rather than guessed.
 *
 * The shared options (endpoints, --as, timeouts) are added to a subcommand's own
 * table here, so that every subcommand spells them alike and --help lists them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "phuxanh/text.h"
#include "pxctl.h"

/* Options a subcommand may have, its own and the shared ones together. */
#define ARGS_MAX_OPTIONS 64
/* Longest synopsis line "pxctl tokens add NAME ROLE ..." built for --help. */
#define ARGS_PROGRAM_MAX 256

static const px_config_option_t s_services[] = {
    {"roster-endpoints", "PX_ROSTER_ENDPOINTS", "tcp://127.0.0.1:7101",
     "ZeroMQ endpoints of the roster service, comma separated"},
    {"activation-endpoints", "PX_ACTIVATION_ENDPOINTS", "tcp://127.0.0.1:7102",
     "ZeroMQ endpoints of the activation service, comma separated"},
    /* def filled at run time with $USER */
    {"as", "PX_AS", NULL,
     "whom pxctl acts for (x-on-behalf-of, kept in the services' audit rows): the operator; "
     "default $USER"},
    {"timeout-ms", "PX_TIMEOUT_MS", "10000", "how long a call may take"},
};
static const px_config_option_t s_feed[] = {
    {"activation-feed", "PX_ACTIVATION_FEED", "tcp://127.0.0.1:7103",
     "the activation service's PUB endpoints (its pub-endpoint), comma separated"},
};
/* For whatever reaches the services or the feed: pxctl's own key pair ("pxctl" in the
 * services' allow-lists) and where it finds theirs. */
static const px_config_option_t s_curve[] = {PX_CURVE_CONFIG_OPTIONS};
static const px_config_option_t s_gateway[] = {
    {"gateway-url", "PX_GATEWAY_URL", NULL,
     "the gateway's base URL (http://127.0.0.1:8080); unset: the gateway is not asked"},
};

void pxctl_err(const char *name, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "pxctl%s%s: ", name ? " " : "", name ? name : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const pxctl_option_t *s_find(const pxctl_option_t *own, const char *name, size_t len)
{
    for (size_t i = 0; own && own[i].opt.name; i++) {
        if (strlen(own[i].opt.name) == len && strncmp(own[i].opt.name, name, len) == 0) {
            return &own[i];
        }
    }
    return NULL;
}

static const pxctl_option_t *s_find_short(const pxctl_option_t *own, char c)
{
    for (size_t i = 0; own && own[i].opt.name; i++) {
        if (own[i].short_name == c) {
            return &own[i];
        }
    }
    return NULL;
}

static bool s_add(px_config_option_t *table, size_t *n, const px_config_option_t *opts,
                  size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (*n == ARGS_MAX_OPTIONS) {
            return false;
        }
        table[(*n)++] = opts[i];
    }
    return true;
}

static char *s_own(pxctl_args_t *args, char *s)
{
    if (s) {
        args->owned[args->nowned++] = s;
    }
    return s;
}

bool pxctl_args_parse(const pxctl_command_t *cmd, int argc, char **argv, pxctl_args_t *args,
                      int *rc)
{
    bool ok = false;
    char **flagv = NULL;
    int nflags = 0;
    memset(args, 0, sizeof *args);
    *rc = PXCTL_EXIT_USAGE;

    args->table = calloc(ARGS_MAX_OPTIONS + 1, sizeof *args->table);
    /* at most one owned string per argument ("--x=on") */
    args->owned = calloc((size_t)argc + 1, sizeof *args->owned);
    args->pos = calloc((size_t)argc + 1, sizeof *args->pos);
    flagv = calloc((size_t)argc + 2, sizeof *flagv);
    if (!args->table || !args->owned || !args->pos || !flagv) {
        pxctl_err(cmd->name, "out of memory");
        *rc = PXCTL_EXIT_FAILED;
        goto done;
    }

    size_t n = 0;
    bool fits = true;
    for (size_t i = 0; cmd->options && cmd->options[i].opt.name; i++) {
        fits = fits && s_add(args->table, &n, &cmd->options[i].opt, 1);
    }
    if (cmd->common & PXCTL_COMMON_SERVICES) {
        size_t first = n;
        fits = fits && s_add(args->table, &n, s_services, sizeof s_services / sizeof *s_services);
        for (size_t i = first; i < n; i++) {
            if (strcmp(args->table[i].name, "as") == 0) {
                const char *user = getenv("USER");
                args->table[i].def = user && *user ? user : NULL;
            }
        }
    }
    if (cmd->common & PXCTL_COMMON_FEED) {
        fits = fits && s_add(args->table, &n, s_feed, sizeof s_feed / sizeof *s_feed);
    }
    if (cmd->common & (PXCTL_COMMON_SERVICES | PXCTL_COMMON_FEED | PXCTL_COMMON_CURVE)) {
        fits = fits && s_add(args->table, &n, s_curve, sizeof s_curve / sizeof *s_curve);
    }
    if (cmd->common & PXCTL_COMMON_GATEWAY) {
        fits = fits && s_add(args->table, &n, s_gateway, sizeof s_gateway / sizeof *s_gateway);
    }
    if (!fits) {
        pxctl_err(cmd->name, "too many options (at most %d)", ARGS_MAX_OPTIONS);
        *rc = PXCTL_EXIT_FAILED;
        goto done;
    }

    /* Split: arguments out, switches and aliases rewritten, the rest left to px_config. */
    flagv[nflags++] = argv[0];
    bool only_args = false;
    for (int a = 1; a < argc; a++) {
        char *arg = argv[a];
        if (only_args || arg[0] != '-' || strcmp(arg, "-") == 0) {
            args->pos[args->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_args = true;
            continue;
        }
        const pxctl_option_t *o = NULL;
        const char *eq = NULL;
        if (arg[1] == '-') {
            eq = strchr(arg + 2, '=');
            o = s_find(cmd->options, arg + 2, eq ? (size_t)(eq - arg - 2) : strlen(arg + 2));
        } else if (arg[1] && !arg[2]) {
            if (arg[1] == 'h') {
                flagv[nflags++] = "--help";
                continue;
            }
            o = s_find_short(cmd->options, arg[1]);
            if (!o) {
                pxctl_err(cmd->name, "unknown option %s (see --help)", arg);
                goto done;
            }
        } else {
            pxctl_err(cmd->name, "unknown option %.64s (see --help)", arg);
            goto done;
        }
        if (o && (o->flags & PXCTL_SWITCH) && !eq) {
            char *s = NULL;
            if (asprintf(&s, "--%s=on", o->opt.name) < 0 || !s_own(args, s)) {
                pxctl_err(cmd->name, "out of memory");
                *rc = PXCTL_EXIT_FAILED;
                goto done;
            }
            flagv[nflags++] = s;
            continue;
        }
        if (o && arg[1] != '-') { /* a valued option by its alias: -x v is --name v */
            char *s = NULL;
            if (asprintf(&s, "--%s", o->opt.name) < 0 || !s_own(args, s)) {
                pxctl_err(cmd->name, "out of memory");
                *rc = PXCTL_EXIT_FAILED;
                goto done;
            }
            arg = s;
        }
        flagv[nflags++] = arg;
        /* A flag of the shared tables or an unknown one: px_config decides. A valued flag
         * takes the next word unless it starts with "--" (px_config's own rule). */
        bool valued = !eq && strcmp(arg, "--help") != 0;
        if (valued && !o) {
            valued = false;
            const char *name = arg + 2;
            for (size_t i = 0; i < n; i++) {
                if (strcmp(args->table[i].name, name) == 0) {
                    valued = true;
                }
            }
        }
        if (valued && a + 1 < argc && strncmp(argv[a + 1], "--", 2) != 0) {
            flagv[nflags++] = argv[++a];
        }
    }

    char program[ARGS_PROGRAM_MAX];
    snprintf(program, sizeof program, "pxctl %s%s%s", cmd->name, cmd->synopsis ? " " : "",
             cmd->synopsis ? cmd->synopsis : "");
    bool help = false;
    px_status_t st;
    args->cfg = px_config_parse(program, cmd->summary, args->table, nflags, flagv, &help, &st);
    if (help) {
        if (cmd->details) {
            printf("\n%s\n", cmd->details);
        }
        printf("\nExit status: 0 done, 1 failed, 2 usage, 3 a service unavailable, 4 a service "
               "not serving.\n");
        fflush(stdout);
        *rc = PXCTL_EXIT_OK;
        goto done;
    }
    if (!args->cfg) {
        pxctl_err(cmd->name, "%s", st.message);
        *rc = st.code == PX_RESOURCE_EXHAUSTED ? PXCTL_EXIT_FAILED : PXCTL_EXIT_USAGE;
        goto done;
    }
    if (args->npos < cmd->min_args || (cmd->max_args >= 0 && args->npos > cmd->max_args)) {
        if (cmd->synopsis) {
            pxctl_err(cmd->name, "%s: expected %s (see --help)",
                      args->npos < cmd->min_args ? "missing arguments" : "too many arguments",
                      cmd->synopsis);
        } else {
            pxctl_err(cmd->name, "takes no arguments (see --help)");
        }
        goto done;
    }
    for (size_t i = 0; cmd->options && cmd->options[i].opt.name; i++) {
        const char *v = px_config_get(args->cfg, cmd->options[i].opt.name);
        if ((cmd->options[i].flags & PXCTL_SWITCH) && v &&
            !pxctl_on(args->cfg, cmd->options[i].opt.name) && strcasecmp(v, "off") != 0 &&
            strcasecmp(v, "false") != 0 && strcasecmp(v, "no") != 0 && strcmp(v, "0") != 0) {
            pxctl_err(cmd->name, "--%s is a switch: on or off, not '%.32s'",
                      cmd->options[i].opt.name, v);
            goto done;
        }
    }
    /* x-on-behalf-of as the services take it (rpc.h); empty (--as=) sends none. */
    const char *as = (cmd->common & PXCTL_COMMON_SERVICES) ? px_config_get(args->cfg, "as") : NULL;
    if (as && (strlen(as) > PX_RPC_ON_BEHALF_MAX || !px_utf8_valid(as, strlen(as)))) {
        pxctl_err(cmd->name, "--as: a name of at most %d bytes of UTF-8", PX_RPC_ON_BEHALF_MAX);
        goto done;
    }
    for (const char *p = as; p && *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            pxctl_err(cmd->name, "--as: a name without control characters");
            goto done;
        }
    }
    if ((cmd->common & (PXCTL_COMMON_SERVICES | PXCTL_COMMON_FEED | PXCTL_COMMON_CURVE)) &&
        px_curve_from_config(args->cfg, NULL, &args->curve, &st) != PX_OK) {
        pxctl_err(cmd->name, "%s", st.message);
        goto done;
    }
    ok = true;
    *rc = PXCTL_EXIT_FAILED; /* the command's own default: a failure until it says done */

done:
    free(flagv);
    if (!ok) {
        pxctl_args_free(args);
    }
    return ok;
}

void pxctl_args_free(pxctl_args_t *args)
{
    px_curve_destroy(&args->curve);
    px_config_destroy(&args->cfg);
    for (size_t i = 0; i < args->nowned; i++) {
        free(args->owned[i]);
    }
    free(args->owned);
    free(args->table);
    free(args->pos);
    memset(args, 0, sizeof *args);
}

bool pxctl_on(const px_config_t *cfg, const char *name)
{
    const char *v = px_config_get(cfg, name);
    return v && (strcasecmp(v, "on") == 0 || strcasecmp(v, "true") == 0 ||
                 strcasecmp(v, "yes") == 0 || strcmp(v, "1") == 0);
}

bool pxctl_int(const pxctl_command_t *cmd, const px_config_t *cfg, const char *name, int64_t min,
               int64_t max, int64_t *out)
{
    px_status_t st;
    if (px_config_int(cfg, name, min, max, out, &st) != PX_OK) {
        pxctl_err(cmd->name, "%s", st.message);
        return false;
    }
    return true;
}
