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
 * Kept small and self-contained on purpose: the runtime's CURVE support may bring
 * its own key files, and then this command becomes a call of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "keys.h"
#include "pxctl.h"

/* A Z85 key is 40 characters (32 bytes), and zmq_curve_keypair writes a NUL after it. */
#define KEYS_Z85_LEN 41
/* Names become file names and the allow-list's names of processes. */
#define KEYS_NAME_MAX 64

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

static bool s_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > KEYS_NAME_MAX || s[0] == '.') {
        return false;
    }
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._-", *s))) {
            return false;
        }
    }
    return true;
}

/* Writes text to path with mode, through a temporary file: linked into place (failing if
 * path exists) or, with force, renamed over it. -1 with the reason printed. */
static int s_put(const char *path, const char *text, mode_t mode, bool force)
{
    int rc = -1;
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
        pxctl_err(s_gen_cmd.name, "out of memory");
        return -1;
    }
    int fd = mkostemp(tmp, O_CLOEXEC); /* mode 600 until chmod: the secret is never readable */
    if (fd < 0) {
        pxctl_err(s_gen_cmd.name, "%s: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    if (pxctl_write_all(fd, text, strlen(text)) != 0 || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        pxctl_err(s_gen_cmd.name, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    if (force ? rename(tmp, path) != 0 : link(tmp, path) != 0) {
        pxctl_err(s_gen_cmd.name, "%s: %s%s", path, strerror(errno),
                  errno == EEXIST ? " (--force replaces it)" : "");
        goto done;
    }
    rc = 0;
done:
    close(fd);
    if (rc != 0 || !force) {
        unlink(tmp); /* after link: the name in place stays */
    }
    free(tmp);
    return rc;
}

static int s_gen(int argc, char **argv)
{
    pxctl_args_t args;
    int rc = PXCTL_EXIT_FAILED;
    char pub[KEYS_Z85_LEN], sec[KEYS_Z85_LEN];
    char *pub_path = NULL, *sec_path = NULL, *pub_text = NULL, *sec_text = NULL;
    if (!pxctl_args_parse(&s_gen_cmd, argc, argv, &args, &rc)) {
        return rc;
    }
    const char *name = args.pos[0];
    const char *dir = px_config_get(args.cfg, "dir");
    bool force = pxctl_on(args.cfg, "force");
    if (!s_name_ok(name)) {
        pxctl_err(s_gen_cmd.name, "NAME: 1 to %d of A-Z a-z 0-9 . _ - (not starting with '.')",
                  KEYS_NAME_MAX);
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    if (!zmq_has("curve")) {
        pxctl_err(s_gen_cmd.name, "this libzmq was built without CURVE");
        goto done;
    }
    if (zmq_curve_keypair(pub, sec) != 0) {
        pxctl_err(s_gen_cmd.name, "zmq_curve_keypair: %s", zmq_strerror(zmq_errno()));
        goto done;
    }
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    if (asprintf(&pub_path, "%s/%s", dir, name) < 0 ||
        asprintf(&sec_path, "%s/%s_secret", dir, name) < 0 ||
        asprintf(&pub_text,
                 "#   ****  Generated on %s by pxctl keys gen  ****\n"
                 "#   ZeroMQ CURVE Public Certificate of %s\n"
                 "#   Copy it into the allow-lists of the servers %s talks to.\n"
                 "\n"
                 "metadata\n"
                 "    name = \"%s\"\n"
                 "curve\n"
                 "    public-key = \"%s\"\n",
                 when, name, name, name, pub) < 0 ||
        asprintf(&sec_text,
                 "#   ****  Generated on %s by pxctl keys gen  ****\n"
                 "#   ZeroMQ CURVE **Secret** Certificate of %s\n"
                 "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n"
                 "\n"
                 "metadata\n"
                 "    name = \"%s\"\n"
                 "curve\n"
                 "    public-key = \"%s\"\n"
                 "    secret-key = \"%s\"\n",
                 when, name, name, pub, sec) < 0) {
        pxctl_err(s_gen_cmd.name, "out of memory");
        goto done;
    }
    if (pxctl_mkdirs(dir, 0755) != 0) {
        pxctl_err(s_gen_cmd.name, "%s: %s", dir, strerror(errno));
        goto done;
    }
    /* The secret first: a public key whose secret was never written would be trusted for
     * nothing, while the other way round the pair is usable once the public file is made. */
    if (s_put(sec_path, sec_text, 0600, force) != 0) {
        goto done;
    }
    if (s_put(pub_path, pub_text, 0644, force) != 0) {
        if (!force) {
            unlink(sec_path); /* no half pair: a secret alone is useless and confusing */
        }
        goto done;
    }
    printf("%s %s\n", pub, name); /* an allow-list line */
    fflush(stdout);
    if (isatty(1)) {
        fprintf(stderr, "pxctl keys: %s (public) and %s (secret, mode 600) written\n", pub_path,
                sec_path);
    }
    rc = PXCTL_EXIT_OK;

done:
    explicit_bzero(sec, sizeof sec);
    if (sec_text) {
        explicit_bzero(sec_text, strlen(sec_text));
    }
    free(sec_text);
    free(pub_text);
    free(sec_path);
    free(pub_path);
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
