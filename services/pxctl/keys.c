/*
 * keys.c - pxctl keys gen NAME: a CURVE key pair for one process's ZeroMQ links.
 *
 * Writes two files in the ZeroMQ certificate format (ZPL text, as CZMQ's zcert
 * reads and writes it, Z85 keys), so that the services, czmq tools and our
 * allow-lists all read the same files:
 *
 *     DIR/NAME          the public certificate: public-key only, mode 644, to be
 *                       copied into the allow-lists of the servers NAME talks to
 *     DIR/NAME_secret   the secret certificate: both keys, mode 600, for NAME alone
 *
 * Each file is written beside its final name and then linked into place, which
 * fails if the name is taken: an existing key pair is never overwritten by
 * accident (servers trust its public key); --force replaces it. The allow-list
 * line "<public key> <name>" is printed, for the operator to add to the
 * allow-lists of the servers NAME talks to.
 *
 * The files are written by the runtime (px_curve_keys_gen, services/core/curve.c),
 * which also reads them: this command is the operator's way to call it.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "phuxanh/curve.h"

#include "keys.h"
#include "pxctl.h"

static const pxctl_option_t s_gen_options[] = {
    {{"dir", "PX_KEYS_DIR", ".", "the directory to write the two files in (made if missing)"},
     0,
     0},
    {{"force", NULL, "off", "replace a key pair of that name (its old public key stops working)"},
     PXCTL_SWITCH,
     0},
    {{NULL, NULL, NULL, NULL}, 0, 0},
};

static const pxctl_command_t s_gen_cmd = {
    .name = "keys gen",
    .synopsis = "NAME",
    .summary = "a CURVE key pair for NAME: DIR/NAME (public) and DIR/NAME_secret",
    .details = "NAME is 1 to 64 of A-Z a-z 0-9 . _ - (the process's name in allow-lists: roster,\n"
               "activation, gateway, pxctl). Prints the allow-list line \"<public key> NAME\".\n\n"
               "Example:\n"
               "  pxctl keys gen gateway --dir /etc/phuxanh/keys",
    .options = s_gen_options,
    .min_args = 1,
    .max_args = 1,
};

static int s_gen(int argc, char **argv)
{
    pxctl_args_t args;
    int rc = PXCTL_EXIT_FAILED;
    char pub[PX_CURVE_KEY_BUF];
    px_status_t st;
    if (!pxctl_args_parse(&s_gen_cmd, argc, argv, &args, &rc)) {
        return rc;
    }
    const char *name = args.pos[0];
    const char *dir = px_config_get(args.cfg, "dir");
    if (!px_curve_name_ok(name)) {
        pxctl_err(s_gen_cmd.name, "NAME: 1 to %d of A-Z a-z 0-9 . _ - (not starting with '.')",
                  PX_CURVE_NAME_MAX);
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    if (pxctl_mkdirs(dir, 0755) != 0) {
        pxctl_err(s_gen_cmd.name, "%s: %s", dir, strerror(errno));
        goto done;
    }
    if (px_curve_keys_gen(dir, name, pxctl_on(args.cfg, "force"), pub, &st) != PX_OK) {
        pxctl_err(s_gen_cmd.name, "%s", st.message);
        goto done;
    }
    printf("%s %s\n", pub, name); /* an allow-list line */
    fflush(stdout);
    if (isatty(1)) {
        fprintf(stderr, "pxctl keys: %s/%s (public) and %s/%s_secret (secret, mode 600) written\n",
                dir, name, dir, name);
    }
    rc = PXCTL_EXIT_OK;
done:
    pxctl_args_free(&args);
    return rc;
}

int pxctl_keys_main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "gen") == 0) {
        return s_gen(argc - 1, argv + 1);
    }
    bool help = strcmp(what, "--help") == 0 || strcmp(what, "-h") == 0;
    if (!help) {
        pxctl_err("keys", "%s%.32s%s", *what ? "no action '" : "missing action: gen", what,
                  *what ? "' (gen)" : "");
    }
    fprintf(help ? stdout : stderr,
            "\nUsage:\n  pxctl keys gen NAME [--dir DIR] [--force]   %s\n"
            "\n`pxctl keys gen --help` for more.\n",
            s_gen_cmd.summary);
    return help ? PXCTL_EXIT_OK : PXCTL_EXIT_USAGE;
}
