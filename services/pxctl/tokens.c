/*
 * tokens.c - pxctl tokens add|list|revoke: the gateway's API token file.
 *
 * The file is the gateway's (docs/GATEWAY.md, services/gateway/auth.c), one token
 * per line:
 *
 *     <sha256 of the token, 64 hex>  <name>  <role>  [units=CODE,CODE] [rate=N] [burst=N]
 *
 * with comments and blank lines. A new token is 32 random bytes in base64url,
 * printed once on stdout (so `tok=$(pxctl tokens add ...)` keeps it) and written
 * down only as its SHA-256: the file is no secret worth stealing, and the token
 * exists only with whoever was given it. Nothing here ever prints a hash in full.
 *
 * The file is rewritten whole, atomically: a temporary file beside it (mode 600),
 * flushed to disk, renamed over it, so a reader - the gateway reloading on SIGHUP
 * - sees the old file or the new one, never half of one. Comments and every line
 * not touched are kept as they are. Two pxctl runs at once take turns on a lock
 * file beside it (FILE.lock), or one would lose the other's change.
 *
 * Lines are checked with the gateway's rules, so a token pxctl writes is one the
 * gateway takes. A line already bad is kept (it is the operator's) but reported:
 * while it is there the gateway refuses the whole file and keeps its old tokens.
 *
 * --reload tells a running gateway (SIGHUP) once the file is written, by --pid or
 * by the pid in --pid-file, after checking that the process is a px-gateway: a
 * stale pid file naming some other process must not get it killed.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pxctl.h"
#include "tokens.h"

/* The gateway's bounds (services/gateway/auth.c, gateway.h). */
#define TOKENS_NAME_MAX 64  /* GW_TOKEN_NAME_MAX */
#define TOKENS_UNITS_MAX 64 /* GW_SCOPE_MAX */
#define TOKENS_UNIT_MAX 23  /* gw_ident_t.scope[][24] */
#define TOKENS_RATE_MAX 1e6
/* The gateway reads at most 10,000 lines of at most 4 KiB: a larger file is not a token
 * file, and reading it whole must stay cheap. */
#define TOKENS_FILE_MAX (64u * 1024 * 1024)
#define TOKENS_LINES_MAX 20000
/* 32 random bytes: 256 bits, unguessable; 43 characters of base64url. */
#define TOKENS_RANDOM_BYTES 32
/* How much of a hash `list` shows: enough to tell two lines apart, not the whole. */
#define TOKENS_HASH_SHOWN 8

static const char *const s_roles[] = {"viewer", "recorder", "planner", "admin"};

/* ---------------------------------------------------------------- the commands */

static const pxctl_option_t s_add_options[] = {
    {{"file", "PX_TOKENS_FILE", NULL, "the gateway's token file (its tokens-file)"}, 0, 0},
    {{"units", NULL, NULL,
      "a recorder's units, comma separated codes (a unit covers those under "
      "it)"},
     0,
     0},
    {{"rate", NULL, NULL, "requests per second for this token (default: the gateway's rate)"},
     0,
     0},
    {{"burst", NULL, NULL, "requests at once for this token (default: the gateway's burst)"}, 0, 0},
    {{"replace", NULL, "off",
      "NAME may have a token already: its line is replaced (the old "
      "token stops working)"},
     PXCTL_SWITCH,
     0},
    {{"reload", NULL, "off", "then tell the gateway (SIGHUP to --pid or the pid in --pid-file)"},
     PXCTL_SWITCH,
     0},
    {{"pid", NULL, NULL, "the gateway's process id, for --reload"}, 0, 0},
    {{"pid-file", "PX_GATEWAY_PID_FILE", NULL, "a file holding the gateway's pid, for --reload"},
     0,
     0},
    {{NULL, NULL, NULL, NULL}, 0, 0},
};

static const pxctl_command_t s_add_cmd = {
    .name = "tokens add",
    .synopsis = "NAME ROLE",
    .summary = "make a token for NAME with ROLE (viewer, recorder, planner, admin)",
    .details =
        "Prints the new token once, on stdout; the file keeps only its SHA-256. NAME is 1 to 64\n"
        "of A-Z a-z 0-9 . _ - @ (whom the gateway acts for: it reaches the services' audit\n"
        "rows); a recorder needs --units, other roles take none.\n\n"
        "Example:\n"
        "  pxctl tokens add ward-lai-thieu recorder --units 25966 --file var/gateway/tokens "
        "--reload --pid-file var/run/gateway.pid",
    .options = s_add_options,
    .min_args = 2,
    .max_args = 2,
};

static const pxctl_option_t s_list_options[] = {
    {{"file", "PX_TOKENS_FILE", NULL, "the gateway's token file (its tokens-file)"}, 0, 0},
    {{NULL, NULL, NULL, NULL}, 0, 0},
};

static const pxctl_command_t s_list_cmd = {
    .name = "tokens list",
    .summary = "the tokens' names, roles, units and limits (never a token, nor a whole hash)",
    .details =
        "Lines the gateway would refuse are named on stderr, and the exit status is then 1:\n"
        "while one is in the file the gateway keeps its old tokens.",
    .options = s_list_options,
    .min_args = 0,
    .max_args = 0,
};

static const pxctl_option_t s_revoke_options[] = {
    {{"file", "PX_TOKENS_FILE", NULL, "the gateway's token file (its tokens-file)"}, 0, 0},
    {{"reload", NULL, "off", "then tell the gateway (SIGHUP to --pid or the pid in --pid-file)"},
     PXCTL_SWITCH,
     0},
    {{"pid", NULL, NULL, "the gateway's process id, for --reload"}, 0, 0},
    {{"pid-file", "PX_GATEWAY_PID_FILE", NULL, "a file holding the gateway's pid, for --reload"},
     0,
     0},
    {{NULL, NULL, NULL, NULL}, 0, 0},
};

static const pxctl_command_t s_revoke_cmd = {
    .name = "tokens revoke",
    .synopsis = "NAME",
    .summary = "remove NAME's token: the gateway answers 401 to it once reloaded",
    .options = s_revoke_options,
    .min_args = 1,
    .max_args = 1,
};

/* ---------------------------------------------------------------- lines */

typedef struct {
    char hash[65];
    char name[TOKENS_NAME_MAX + 1];
    char role[16];
    char units[TOKENS_UNITS_MAX * (TOKENS_UNIT_MAX + 1) + 1];
    char rate[32], burst[32];
} s_token_t;

typedef struct {
    char **lines; /* without their newline */
    size_t n;
} s_file_t;

static void s_file_free(s_file_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->lines[i]);
    }
    free(f->lines);
    memset(f, 0, sizeof *f);
}

static bool s_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TOKENS_NAME_MAX) {
        return false;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!(c < 0x80 && (isalnum(c) || strchr("._-@", c)))) {
            return false;
        }
    }
    return true;
}

static bool s_units_ok(const char *s, char *why, size_t cap)
{
    size_t count = 0, len = 0;
    for (const char *p = s;; p++) {
        if (*p == ',' || *p == '\0') {
            if (len == 0 || len > TOKENS_UNIT_MAX) {
                snprintf(why, cap,
                         "units: codes of 1 to %d letters, digits or '-', comma "
                         "separated",
                         TOKENS_UNIT_MAX);
                return false;
            }
            if (++count > TOKENS_UNITS_MAX) {
                snprintf(why, cap, "units: at most %d", TOKENS_UNITS_MAX);
                return false;
            }
            len = 0;
            if (*p == '\0') {
                return true;
            }
            continue;
        }
        if (!((unsigned char)*p < 0x80 && (isalnum((unsigned char)*p) || *p == '-'))) {
            snprintf(why, cap, "units: codes of letters, digits or '-', comma separated");
            return false;
        }
        len++;
    }
}

static bool s_number_ok(const char *s)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    return *s && !*end && !errno && isfinite(v) && v > 0 && v <= TOKENS_RATE_MAX;
}

/* Checks what a line says, with the gateway's rules; false with the reason in why. */
static bool s_token_check(const s_token_t *t, char *why, size_t cap)
{
    if (!s_name_ok(t->name)) {
        snprintf(why, cap, "name: 1 to %d letters, digits, '.', '_', '-' or '@'", TOKENS_NAME_MAX);
        return false;
    }
    bool role = false;
    for (size_t i = 0; i < sizeof s_roles / sizeof *s_roles; i++) {
        role = role || strcmp(t->role, s_roles[i]) == 0;
    }
    if (!role) {
        snprintf(why, cap, "role: \"%.32s\" is not viewer, recorder, planner or admin", t->role);
        return false;
    }
    if (t->units[0] && !s_units_ok(t->units, why, cap)) {
        return false;
    }
    if (strcmp(t->role, "recorder") == 0 && !t->units[0]) {
        snprintf(why, cap, "a recorder needs its units (--units CODE[,CODE...])");
        return false;
    }
    if (strcmp(t->role, "recorder") != 0 && t->units[0]) {
        snprintf(why, cap, "units are for recorders only");
        return false;
    }
    if ((t->rate[0] && !s_number_ok(t->rate)) || (t->burst[0] && !s_number_ok(t->burst))) {
        snprintf(why, cap, "rate and burst: positive numbers up to %g", TOKENS_RATE_MAX);
        return false;
    }
    return true;
}

/* Reads a token line. 1: a token into t; 0: a comment or blank; -1: bad (why says). */
static int s_parse(const char *line, s_token_t *t, char *why, size_t cap)
{
    memset(t, 0, sizeof *t);
    const char *p = line + strspn(line, " \t");
    if (!*p || *p == '#') {
        return 0;
    }
    char *copy = strdup(p), *save = NULL;
    int rc = -1;
    if (!copy) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    char *hash = strtok_r(copy, " \t\r", &save);
    char *name = strtok_r(NULL, " \t\r", &save);
    char *role = strtok_r(NULL, " \t\r", &save);
    if (!hash || !name || !role) {
        snprintf(why, cap, "expected: <sha256 hex> <name> <role> [units=...] [rate=N] [burst=N]");
        goto done;
    }
    if (strlen(hash) != 64 || strspn(hash, "0123456789abcdefABCDEF") != 64) {
        snprintf(why, cap, "the first field must be a SHA-256 as 64 hex characters");
        goto done;
    }
    snprintf(t->hash, sizeof t->hash, "%s", hash);
    if (strlen(name) >= sizeof t->name || strlen(role) >= sizeof t->role) {
        snprintf(why, cap, "name or role too long");
        goto done;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->role, sizeof t->role, "%s", role);
    for (char *kv; (kv = strtok_r(NULL, " \t\r", &save)) != NULL;) {
        char *dst = NULL;
        size_t dcap = 0;
        if (strncmp(kv, "units=", 6) == 0) {
            dst = t->units, dcap = sizeof t->units, kv += 6;
        } else if (strncmp(kv, "rate=", 5) == 0) {
            dst = t->rate, dcap = sizeof t->rate, kv += 5;
        } else if (strncmp(kv, "burst=", 6) == 0) {
            dst = t->burst, dcap = sizeof t->burst, kv += 6;
        }
        if (!dst || strlen(kv) >= dcap || !*kv) {
            snprintf(why, cap, "unknown or bad field \"%.32s\" (units=, rate=, burst=)", kv);
            goto done;
        }
        snprintf(dst, dcap, "%s", kv);
    }
    rc = s_token_check(t, why, cap) ? 1 : -1;
done:
    free(copy);
    return rc;
}

/* ---------------------------------------------------------------- the file */

/* Reads path into lines; a missing file is an empty one. -1 with the reason printed. */
static int s_read(const char *cmd, const char *path, s_file_t *f)
{
    memset(f, 0, sizeof *f);
    char *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        pxctl_err(cmd, "%s: %s", path, strerror(errno));
        return -1;
    }
    int r = pxctl_read_fd(fd, TOKENS_FILE_MAX, &buf, &len);
    close(fd);
    if (r != 0) {
        pxctl_err(cmd, "%s: %s", path,
                  errno == EFBIG ? "larger than any token file" : strerror(errno));
        return -1;
    }
    f->lines = calloc(TOKENS_LINES_MAX, sizeof *f->lines);
    if (!f->lines) {
        free(buf);
        pxctl_err(cmd, "out of memory");
        return -1;
    }
    for (char *p = buf, *nl; p < buf + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(buf + len - p));
        if (!nl) {
            nl = buf + len;
        }
        if (f->n == TOKENS_LINES_MAX) {
            pxctl_err(cmd, "%s: more than %d lines", path, TOKENS_LINES_MAX);
            goto fail;
        }
        size_t n = (size_t)(nl - p);
        if (n > 0 && p[n - 1] == '\r') {
            n--;
        }
        if (!(f->lines[f->n] = strndup(p, n))) {
            pxctl_err(cmd, "out of memory");
            goto fail;
        }
        f->n++;
    }
    free(buf);
    return 0;
fail:
    free(buf);
    s_file_free(f);
    return -1;
}

/* Writes f to path atomically (temporary file, fsync, rename, fsync of the directory). */
static int s_write(const char *cmd, const char *path, const s_file_t *f)
{
    int rc = -1, fd = -1;
    char *tmp = NULL, *dcopy = strdup(path);
    FILE *out = NULL;
    if (!dcopy || asprintf(&tmp, "%s.XXXXXX", path) < 0) {
        tmp = NULL;
        pxctl_err(cmd, "out of memory");
        goto done;
    }
    fd = mkostemp(tmp, O_CLOEXEC); /* mode 600 */
    if (fd < 0) {
        pxctl_err(cmd, "%s: cannot create a file beside it: %s", path, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto done;
    }
    out = fdopen(fd, "w");
    if (!out) {
        pxctl_err(cmd, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1; /* the stream owns it */
    for (size_t i = 0; i < f->n; i++) {
        fputs(f->lines[i], out);
        fputc('\n', out);
    }
    if (fchmod(fileno(out), 0600) != 0 || fflush(out) != 0 || fsync(fileno(out)) != 0) {
        pxctl_err(cmd, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    int closed = fclose(out);
    out = NULL;
    if (closed != 0 || rename(tmp, path) != 0) {
        pxctl_err(cmd, "%s: %s", path, strerror(errno));
        goto done;
    }
    free(tmp);
    tmp = NULL;
    int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* the rename itself on disk */
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
done:
    if (out) {
        fclose(out);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dcopy);
    return rc;
}

/* Creates the file's directory if missing (mode 700: it is the gateway's), and takes the
 * lock beside the file. The lock's descriptor, or -1 with the reason printed. */
static int s_lock(const char *cmd, const char *path)
{
    char *dcopy = strdup(path), *lock = NULL;
    int fd = -1;
    if (!dcopy || asprintf(&lock, "%s.lock", path) < 0) {
        lock = NULL;
        pxctl_err(cmd, "out of memory");
        goto done;
    }
    const char *dir = dirname(dcopy);
    if (pxctl_mkdirs(dir, 0700) != 0) {
        pxctl_err(cmd, "%s: %s", dir, strerror(errno));
        goto done;
    }
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        pxctl_err(cmd, "%s: %s", lock, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
done:
    free(lock);
    free(dcopy);
    return fd;
}

static const char *s_file_path(const pxctl_command_t *cmd, const px_config_t *cfg)
{
    const char *path = px_config_get(cfg, "file");
    if (!path || !*path) {
        pxctl_err(cmd->name, "which token file? give --file or set PX_TOKENS_FILE");
        return NULL;
    }
    return path;
}

/* Reports lines the gateway would refuse; returns how many. */
static size_t s_report_bad(const char *cmd, const char *path, const s_file_t *f)
{
    size_t bad = 0;
    for (size_t i = 0; i < f->n; i++) {
        s_token_t t;
        char why[256];
        if (s_parse(f->lines[i], &t, why, sizeof why) < 0) {
            pxctl_err(cmd, "%s line %zu: %s (the gateway refuses the file while it is there)", path,
                      i + 1, why);
            bad++;
        }
    }
    return bad;
}

/* ---------------------------------------------------------------- --reload */

static int s_reload(const pxctl_command_t *cmd, const px_config_t *cfg)
{
    const char *pid_s = px_config_get(cfg, "pid");
    const char *pid_file = px_config_get(cfg, "pid-file");
    char buf[32] = "";
    if (!(pid_s && *pid_s) && pid_file && *pid_file) {
        FILE *in = fopen(pid_file, "r");
        if (!in || !fgets(buf, sizeof buf, in)) {
            pxctl_err(cmd->name, "the file is written, but the gateway was not told: %s: %s",
                      pid_file, in ? "empty" : strerror(errno));
            if (in) {
                fclose(in);
            }
            return PXCTL_EXIT_FAILED;
        }
        fclose(in);
        buf[strcspn(buf, " \r\n")] = '\0';
        pid_s = buf;
    }
    if (!pid_s || !*pid_s) {
        pxctl_err(cmd->name, "the file is written; --reload needs --pid or --pid-file to tell "
                             "the gateway");
        return PXCTL_EXIT_USAGE;
    }
    char *end = NULL;
    long pid = strtol(pid_s, &end, 10);
    if (*end || pid <= 1) {
        pxctl_err(cmd->name, "the file is written, but '%.32s' is not a process id", pid_s);
        return PXCTL_EXIT_USAGE;
    }
    /* Only a px-gateway gets the signal: SIGHUP ends a process that does not handle it. */
    char path[64], argv0[4096] = "";
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    FILE *in = fopen(path, "r");
    size_t n = in ? fread(argv0, 1, sizeof argv0 - 1, in) : 0;
    if (in) {
        fclose(in);
    }
    argv0[n] = '\0';
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    if (!in || strcmp(base, "px-gateway") != 0) {
        pxctl_err(cmd->name, "the file is written, but process %ld is %s: not told", pid,
                  in ? "not a px-gateway" : "not running");
        return PXCTL_EXIT_UNAVAILABLE;
    }
    if (kill((pid_t)pid, SIGHUP) != 0) {
        pxctl_err(cmd->name, "the file is written, but the gateway (pid %ld) was not told: %s", pid,
                  strerror(errno));
        return PXCTL_EXIT_FAILED;
    }
    return PXCTL_EXIT_OK;
}

/* ---------------------------------------------------------------- add, list, revoke */

static int s_add(int argc, char **argv)
{
    pxctl_args_t args;
    int rc = PXCTL_EXIT_FAILED, lock = -1;
    s_file_t f = {0};
    if (!pxctl_args_parse(&s_add_cmd, argc, argv, &args, &rc)) {
        return rc;
    }
    const char *path = s_file_path(&s_add_cmd, args.cfg);
    const char *units = px_config_get(args.cfg, "units");
    const char *rate = px_config_get(args.cfg, "rate");
    const char *burst = px_config_get(args.cfg, "burst");
    s_token_t t = {0};
    char why[256];
    if (!path) {
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    if (strlen(args.pos[0]) >= sizeof t.name || strlen(args.pos[1]) >= sizeof t.role ||
        (units && strlen(units) >= sizeof t.units) || (rate && strlen(rate) >= sizeof t.rate) ||
        (burst && strlen(burst) >= sizeof t.burst)) {
        pxctl_err(s_add_cmd.name, "an argument is too long (see --help)");
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    snprintf(t.name, sizeof t.name, "%s", args.pos[0]);
    snprintf(t.role, sizeof t.role, "%s", args.pos[1]);
    snprintf(t.units, sizeof t.units, "%s", units ? units : "");
    snprintf(t.rate, sizeof t.rate, "%s", rate ? rate : "");
    snprintf(t.burst, sizeof t.burst, "%s", burst ? burst : "");
    if (!s_token_check(&t, why, sizeof why)) {
        pxctl_err(s_add_cmd.name, "%s", why);
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    if (sodium_init() < 0) {
        pxctl_err(s_add_cmd.name, "libsodium did not start");
        goto done;
    }
    uint8_t raw[TOKENS_RANDOM_BYTES], digest[crypto_hash_sha256_BYTES];
    char token[sodium_base64_ENCODED_LEN(TOKENS_RANDOM_BYTES,
                                         sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(token, sizeof token, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    crypto_hash_sha256(digest, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(t.hash, sizeof t.hash, digest, sizeof digest);

    char *line = NULL;
    if (asprintf(&line, "%s %s %s%s%s%s%s%s%s", t.hash, t.name, t.role, t.units[0] ? " units=" : "",
                 t.units, t.rate[0] ? " rate=" : "", t.rate, t.burst[0] ? " burst=" : "",
                 t.burst) < 0) {
        pxctl_err(s_add_cmd.name, "out of memory");
        goto done;
    }
    if ((lock = s_lock(s_add_cmd.name, path)) < 0 || s_read(s_add_cmd.name, path, &f) != 0) {
        free(line);
        goto done;
    }
    /* NAME's line (the first, if several), replaced in place; any other of NAME's dropped. */
    bool replace = pxctl_on(args.cfg, "replace");
    size_t kept = 0;
    bool placed = false;
    for (size_t i = 0; i < f.n; i++) {
        s_token_t old;
        bool same = s_parse(f.lines[i], &old, why, sizeof why) > 0 && strcmp(old.name, t.name) == 0;
        if (same && !replace) {
            pxctl_err(s_add_cmd.name,
                      "%s has a token already (line %zu); --replace makes a new "
                      "one, and the old one stops working",
                      t.name, i + 1);
            free(line);
            goto done;
        }
        if (same) {
            free(f.lines[i]);
            if (placed) {
                continue;
            }
            f.lines[i] = line;
            line = NULL;
            placed = true;
        }
        f.lines[kept++] = f.lines[i];
    }
    f.n = kept;
    if (!placed) {
        if (!f.lines && !(f.lines = calloc(1, sizeof *f.lines))) {
            free(line);
            pxctl_err(s_add_cmd.name, "out of memory");
            goto done;
        }
        if (f.n == TOKENS_LINES_MAX) {
            free(line);
            pxctl_err(s_add_cmd.name, "%s: more than %d lines", path, TOKENS_LINES_MAX);
            goto done;
        }
        f.lines[f.n++] = line;
    }
    if (s_write(s_add_cmd.name, path, &f) != 0) {
        goto done;
    }
    printf("%s\n", token);
    fflush(stdout);
    sodium_memzero(token, sizeof token);
    if (isatty(1)) {
        fprintf(stderr, "pxctl tokens: a %s token for %s is in %s; it is shown this once\n", t.role,
                t.name, path);
    }
    s_report_bad(s_add_cmd.name, path, &f);
    rc = pxctl_on(args.cfg, "reload") ? s_reload(&s_add_cmd, args.cfg) : PXCTL_EXIT_OK;

done:
    if (lock >= 0) {
        close(lock);
    }
    s_file_free(&f);
    pxctl_args_free(&args);
    return rc;
}

static int s_list(int argc, char **argv)
{
    pxctl_args_t args;
    int rc = PXCTL_EXIT_FAILED;
    s_file_t f = {0};
    if (!pxctl_args_parse(&s_list_cmd, argc, argv, &args, &rc)) {
        return rc;
    }
    const char *path = s_file_path(&s_list_cmd, args.cfg);
    if (!path) {
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    if (s_read(s_list_cmd.name, path, &f) != 0) {
        goto done;
    }
    size_t wn = strlen("NAME"), wr = strlen("ROLE"), wu = strlen("UNITS"), wl = strlen("RATE");
    for (size_t i = 0; i < f.n; i++) {
        s_token_t t;
        char why[256];
        if (s_parse(f.lines[i], &t, why, sizeof why) > 0) {
            wn = strlen(t.name) > wn ? strlen(t.name) : wn;
            wr = strlen(t.role) > wr ? strlen(t.role) : wr;
            wu = strlen(t.units) > wu ? strlen(t.units) : wu;
            wl = strlen(t.rate) > wl ? strlen(t.rate) : wl;
        }
    }
    printf("%-*s  %-*s  %-*s  %-*s  %-5s  %s\n", (int)wn, "NAME", (int)wr, "ROLE", (int)wu, "UNITS",
           (int)wl, "RATE", "BURST", "HASH");
    for (size_t i = 0; i < f.n; i++) {
        s_token_t t;
        char why[256];
        if (s_parse(f.lines[i], &t, why, sizeof why) > 0) {
            printf("%-*s  %-*s  %-*s  %-*s  %-5s  %.*s...\n", (int)wn, t.name, (int)wr, t.role,
                   (int)wu, t.units[0] ? t.units : "-", (int)wl, t.rate[0] ? t.rate : "-",
                   t.burst[0] ? t.burst : "-", TOKENS_HASH_SHOWN, t.hash);
        }
    }
    fflush(stdout);
    rc = s_report_bad(s_list_cmd.name, path, &f) ? PXCTL_EXIT_FAILED : PXCTL_EXIT_OK;
done:
    s_file_free(&f);
    pxctl_args_free(&args);
    return rc;
}

static int s_revoke(int argc, char **argv)
{
    pxctl_args_t args;
    int rc = PXCTL_EXIT_FAILED, lock = -1;
    s_file_t f = {0};
    if (!pxctl_args_parse(&s_revoke_cmd, argc, argv, &args, &rc)) {
        return rc;
    }
    const char *path = s_file_path(&s_revoke_cmd, args.cfg);
    const char *name = args.pos[0];
    if (!path) {
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    if ((lock = s_lock(s_revoke_cmd.name, path)) < 0 || s_read(s_revoke_cmd.name, path, &f) != 0) {
        goto done;
    }
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < f.n; i++) {
        s_token_t t;
        char why[256];
        if (s_parse(f.lines[i], &t, why, sizeof why) > 0 && strcmp(t.name, name) == 0) {
            free(f.lines[i]);
            dropped++;
            continue;
        }
        f.lines[kept++] = f.lines[i];
    }
    f.n = kept;
    if (!dropped) {
        pxctl_err(s_revoke_cmd.name, "no token named '%.64s' in %s", name, path);
        goto done;
    }
    if (s_write(s_revoke_cmd.name, path, &f) != 0) {
        goto done;
    }
    s_report_bad(s_revoke_cmd.name, path, &f);
    rc = pxctl_on(args.cfg, "reload") ? s_reload(&s_revoke_cmd, args.cfg) : PXCTL_EXIT_OK;
done:
    if (lock >= 0) {
        close(lock);
    }
    s_file_free(&f);
    pxctl_args_free(&args);
    return rc;
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const pxctl_command_t *cmd;
} s_actions[] = {
    {"add", s_add, &s_add_cmd},
    {"list", s_list, &s_list_cmd},
    {"revoke", s_revoke, &s_revoke_cmd},
};

int pxctl_tokens_main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    for (size_t i = 0; i < sizeof s_actions / sizeof *s_actions; i++) {
        if (strcmp(what, s_actions[i].name) == 0) {
            return s_actions[i].fn(argc - 1, argv + 1);
        }
    }
    bool help = strcmp(what, "--help") == 0 || strcmp(what, "-h") == 0;
    FILE *out = help ? stdout : stderr;
    if (!help) {
        pxctl_err("tokens", "%s%.32s%s",
                  *what ? "no action '"
                        : "missing action: add, list or "
                          "revoke",
                  what, *what ? "' (add, list or revoke)" : "");
    }
    fprintf(out, "\nUsage:\n");
    for (size_t i = 0; i < sizeof s_actions / sizeof *s_actions; i++) {
        fprintf(out, "  pxctl %s %-10s %s\n", s_actions[i].cmd->name,
                s_actions[i].cmd->synopsis ? s_actions[i].cmd->synopsis : "",
                s_actions[i].cmd->summary);
    }
    fprintf(out, "\nThe file is the gateway's tokens-file (--file or PX_TOKENS_FILE); "
                 "`pxctl tokens ACTION --help` for more.\n");
    return help ? PXCTL_EXIT_OK : PXCTL_EXIT_USAGE;
}
