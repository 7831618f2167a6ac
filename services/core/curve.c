/*
 * curve.c - CurveZMQ keys, the allow-list, and the ZAP handler (curve.h).
 *
 * Bare libzmq rather than CZMQ's zauth: zauth runs in CZMQ's own context, and
 * a ZAP handler only serves sockets of its own context (ours is px__zmq_ctx,
 * and the activation feed has one of its own); its certificate store also maps
 * keys to nothing, where we need key -> name. What remains is small: parse two
 * text formats, answer RFC 27 requests.
 *
 * The allow-list is parsed whole into a new list before it replaces the old
 * one, under a mutex the ZAP threads take for each lookup: a reload never
 * leaves a half-read list in force, and a bad file changes nothing.
 *
 * A ZAP handler binds inproc://zeromq.zap.01 in its context. The socket is
 * made and bound by the thread that sets up the server (so a second handler in
 * one context is refused there, and the server socket bound next finds a
 * handler waiting), then handed to the handler's thread, which alone uses it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "phuxanh/curve.h"
#include "phuxanh/text.h"

/* An allow-list is a few dozen processes; the bounds only stop a wrong file. */
#define ALLOW_MAX_ENTRIES 4096
#define ALLOW_LINE_MAX 1024
#define FILE_MAX (1024 * 1024)
/* Contexts one object may serve in: the process-wide one and a feed's. */
#define ZAP_MAX 4
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* Servers set this domain; the handler answers no other (RFC 27 lets one handler serve
 * several domains; ours serves one). */
#define ZAP_DOMAIN "phuxanh"

typedef struct {
    unsigned char key[32];
    char name[PX_CURVE_NAME_MAX + 1];
} entry_t;

typedef struct {
    entry_t *entries;
    size_t n;
} allow_t;

typedef struct {
    struct px_curve_t *owner;
    void *zctx;
    void *sock; /* bound by setup, then the thread's alone */
    int stop_pipe[2];
    pthread_t thread;
} zap_t;

struct px_curve_t {
    char *secret_path;
    char *allow_path;
    char public_key[PX_CURVE_KEY_BUF];
    char secret_key[PX_CURVE_KEY_BUF];
    px_log_t *log;
    pthread_mutex_t lock; /* guards list */
    allow_t list;
    zap_t zaps[ZAP_MAX];
    int nzaps;
};

/* ------------------------------------------------------------------ names and files */

bool px_curve_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PX_CURVE_NAME_MAX || s[0] == '.') {
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

/* A whole small file into a NUL-terminated buffer; NUL bytes and oversize refused. */
static char *s_read_file(const char *path, px_status_t *st)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        px_status_set(st, PX_FAILED_PRECONDITION, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, FILE_MAX + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!buf) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    if (err || n > FILE_MAX || memchr(buf, '\0', n)) {
        px_status_set(st, PX_FAILED_PRECONDITION, "%s: %s", path,
                      err            ? "read error"
                      : n > FILE_MAX ? "larger than 1 MiB"
                                     : "holds a NUL byte");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Writes text to path with mode, through a temporary file: linked into place (failing if
 * path exists) or, with force, renamed over it. */
static px_code_t s_put(const char *path, const char *text, mode_t mode, bool force, px_status_t *st)
{
    px_code_t code = PX_OK;
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    int fd = mkostemp(tmp, O_CLOEXEC); /* mode 600 until fchmod: a secret is never readable */
    if (fd < 0) {
        code = px_status_set(st, PX_FAILED_PRECONDITION, "%s: %s", path, strerror(errno));
        free(tmp);
        return code;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            break;
        }
        off += (size_t)w;
    }
    if (off < len || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        code = px_status_set(st, PX_FAILED_PRECONDITION, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    if (force ? rename(tmp, path) != 0 : link(tmp, path) != 0) {
        code = px_status_set(st, errno == EEXIST ? PX_ALREADY_EXISTS : PX_FAILED_PRECONDITION,
                             "%s: %s%s", path, strerror(errno),
                             errno == EEXIST ? " (--force replaces it)" : "");
        goto done;
    }
done:
    close(fd);
    if (code != PX_OK || !force) {
        unlink(tmp); /* after link: the name in place stays */
    }
    free(tmp);
    return code;
}

px_code_t px_curve_keys_gen(const char *dir, const char *name, bool force,
                            char public_key[PX_CURVE_KEY_BUF], px_status_t *st)
{
    px_code_t code = PX_INTERNAL;
    char sec[PX_CURVE_KEY_BUF];
    char *pub_path = NULL, *sec_path = NULL, *pub_text = NULL, *sec_text = NULL;
    if (!px_curve_name_ok(name)) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "NAME: 1 to %d of A-Z a-z 0-9 . _ - (not starting with '.')",
                             PX_CURVE_NAME_MAX);
    }
    if (!zmq_has("curve")) {
        return px_status_set(st, PX_FAILED_PRECONDITION, "this libzmq was built without CURVE");
    }
    if (zmq_curve_keypair(public_key, sec) != 0) {
        return px_status_set(st, PX_INTERNAL, "zmq_curve_keypair: %s", zmq_strerror(zmq_errno()));
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
                 when, name, name, name, public_key) < 0 ||
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
                 when, name, name, public_key, sec) < 0) {
        code = px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    /* The secret first: a public key whose secret was never written would be trusted for
     * nothing, while the other way round the pair is usable once the public file is made. */
    code = s_put(sec_path, sec_text, 0600, force, st);
    if (code != PX_OK) {
        goto done;
    }
    code = s_put(pub_path, pub_text, 0644, force, st);
    if (code != PX_OK && !force) {
        unlink(sec_path); /* no half pair: a secret alone is useless and confusing */
    }
done:
    explicit_bzero(sec, sizeof sec);
    if (sec_text) {
        explicit_bzero(sec_text, strlen(sec_text));
    }
    free(sec_text);
    free(pub_text);
    free(sec_path);
    free(pub_path);
    return code;
}

static bool s_z85_key_ok(const char *z85)
{
    unsigned char bin[32];
    return strlen(z85) == PX_CURVE_KEY_LEN && zmq_z85_decode(bin, z85) != NULL;
}

/* In a ZPL certificate, the quoted value of `key = "..."` on a line (leading spaces allowed),
 * copied into out (PX_CURVE_KEY_BUF); false when the line is not that key's. */
static bool s_zpl_value(const char *line, const char *key, char *out)
{
    line += strspn(line, " \t");
    size_t kl = strlen(key);
    if (strncmp(line, key, kl) != 0) {
        return false;
    }
    line += kl;
    line += strspn(line, " \t");
    if (*line++ != '=') {
        return false;
    }
    line += strspn(line, " \t");
    char quote = (*line == '"' || *line == '\'') ? *line++ : 0;
    size_t n = strcspn(line, quote ? (quote == '"' ? "\"" : "'") : " \t\r\n#");
    if (n != PX_CURVE_KEY_LEN) {
        out[0] = '\0';
        return true; /* that key, with a value that is no key: reported by the caller */
    }
    memcpy(out, line, n);
    out[n] = '\0';
    return true;
}

px_code_t px_curve_cert_load(const char *path, char public_key[PX_CURVE_KEY_BUF],
                             char secret_key[PX_CURVE_KEY_BUF], px_status_t *st)
{
    char *text = s_read_file(path, st);
    if (!text) {
        return st->code;
    }
    char pub[PX_CURVE_KEY_BUF] = "", sec[PX_CURVE_KEY_BUF] = "";
    bool saw_pub = false, saw_sec = false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        saw_pub = s_zpl_value(line, "public-key", pub) || saw_pub;
        saw_sec = s_zpl_value(line, "secret-key", sec) || saw_sec;
    }
    explicit_bzero(text, strlen(text));
    free(text);
    px_code_t code = PX_OK;
    if (!saw_pub || !s_z85_key_ok(pub)) {
        code =
            px_status_set(st, PX_FAILED_PRECONDITION,
                          "%s: no valid public-key (a ZeroMQ certificate: pxctl keys gen)", path);
    } else if (secret_key && (!saw_sec || !s_z85_key_ok(sec))) {
        code =
            px_status_set(st, PX_FAILED_PRECONDITION,
                          "%s: no valid secret-key (the NAME_secret file of pxctl keys gen)", path);
    } else {
        memcpy(public_key, pub, sizeof pub);
        if (secret_key) {
            memcpy(secret_key, sec, sizeof sec);
        }
    }
    explicit_bzero(sec, sizeof sec);
    return code;
}

/* ------------------------------------------------------------------ allow-list */

static void s_allow_free(allow_t *list)
{
    free(list->entries);
    list->entries = NULL;
    list->n = 0;
}

/* Parses the allow-list text into list. Lines: "<Z85 key> <name>", blank, or '#' comments;
 * the first bad line fails the whole file, named with its number. */
static px_code_t s_allow_parse(const char *path, char *text, allow_t *list, px_status_t *st)
{
    list->entries = NULL;
    list->n = 0;
    size_t cap = 0;
    int lineno = 0;
    px_code_t code = PX_OK;
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r') {
            line[--len] = '\0';
        }
        const char *why = NULL;
        char *p = line + strspn(line, " \t");
        char key[PX_CURVE_KEY_BUF], name[PX_CURVE_NAME_MAX + 1];
        if (len > ALLOW_LINE_MAX) {
            why = "line longer than 1024 bytes";
        } else if (!px_utf8_valid(line, len)) {
            why = "not UTF-8";
        } else if (*p == '\0' || *p == '#') {
            /* '#' is a Z85 digit, but never a key's first: 32 bits in base 85 start below
             * 83, and '#' is 84. */
            line = next;
            continue;
        } else {
            size_t kl = strcspn(p, " \t");
            char *q = p + kl;
            q += strspn(q, " \t");
            size_t nl = strcspn(q, " \t#");
            char *rest = q + nl;
            rest += strspn(rest, " \t");
            if (kl != PX_CURVE_KEY_LEN) {
                why = "the first field is not a 40-character Z85 public key";
            } else if (nl == 0) {
                why = "no name after the key (\"<public key> <name>\")";
            } else if (nl > PX_CURVE_NAME_MAX) {
                why = "name longer than 64 characters";
            } else if (*rest != '\0' && *rest != '#') {
                why = "more than a key and a name on the line";
            } else {
                memcpy(key, p, kl);
                key[kl] = '\0';
                memcpy(name, q, nl);
                name[nl] = '\0';
                if (!s_z85_key_ok(key)) {
                    why = "the first field is not a 40-character Z85 public key";
                } else if (!px_curve_name_ok(name)) {
                    why = "name: 1 to 64 of A-Z a-z 0-9 . _ - (not starting with '.')";
                }
            }
        }
        if (!why && list->n == ALLOW_MAX_ENTRIES) {
            why = "more than 4096 entries";
        }
        unsigned char bin[32];
        if (!why) {
            zmq_z85_decode(bin, key);
            for (size_t i = 0; i < list->n && !why; i++) {
                if (memcmp(list->entries[i].key, bin, sizeof bin) == 0) {
                    why = "the key is listed twice";
                }
            }
        }
        if (why) {
            code = px_status_set(st, PX_INVALID_ARGUMENT, "%s line %d: %s", path, lineno, why);
            goto fail;
        }
        if (list->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            entry_t *e = realloc(list->entries, ncap * sizeof *e);
            if (!e) {
                code = px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
                goto fail;
            }
            list->entries = e;
            cap = ncap;
        }
        memcpy(list->entries[list->n].key, bin, sizeof bin);
        memcpy(list->entries[list->n].name, name, strlen(name) + 1);
        list->n++;
        line = next;
    }
    return PX_OK;
fail:
    s_allow_free(list);
    return code;
}

static px_code_t s_allow_load(const char *path, allow_t *list, px_status_t *st)
{
    char *text = s_read_file(path, st);
    if (!text) {
        return st->code;
    }
    px_code_t code = s_allow_parse(path, text, list, st);
    free(text);
    return code;
}

/* ------------------------------------------------------------------ object */

px_curve_t *px_curve_new(const char *secret_path, const char *allow_path, px_log_t *log,
                         px_status_t *st)
{
    if (!secret_path || !*secret_path || !allow_path || !*allow_path) {
        px_status_set(st, PX_INVALID_ARGUMENT,
                      "curve-secret-key and curve-allow: both are needed for CURVE");
        return NULL;
    }
    if (!zmq_has("curve")) {
        px_status_set(st, PX_FAILED_PRECONDITION, "this libzmq was built without CURVE");
        return NULL;
    }
    px_curve_t *self = calloc(1, sizeof *self);
    if (!self) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->log = log;
    self->secret_path = strdup(secret_path);
    self->allow_path = strdup(allow_path);
    if (!self->secret_path || !self->allow_path) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if (px_curve_cert_load(secret_path, self->public_key, self->secret_key, st) != PX_OK ||
        s_allow_load(allow_path, &self->list, st) != PX_OK) {
        goto fail;
    }
    px_log_emit(
        log, PX_LOG_INFO, "CURVE-ON", "ZeroMQ links under CURVE",
        PX_LOG_FIELDS(PX_LS("public_key", self->public_key), PX_LI("allowed_keys", self->list.n)));
    return self;
fail:
    px_curve_destroy(&self);
    return NULL;
}

static px_code_t s_from(const char *sec, const char *allow, px_log_t *log, px_curve_t **out,
                        px_status_t *st)
{
    bool has_sec = sec && *sec, has_allow = allow && *allow;
    *out = NULL;
    if (!has_sec && !has_allow) {
        return PX_OK;
    }
    if (has_sec != has_allow) {
        return px_status_set(st, PX_INVALID_ARGUMENT, "%s is set but not %s: CURVE needs both",
                             has_sec ? "curve-secret-key" : "curve-allow",
                             has_sec ? "curve-allow (PX_CURVE_ALLOW)"
                                     : "curve-secret-key (PX_CURVE_SECRET_KEY)");
    }
    *out = px_curve_new(sec, allow, log, st);
    return *out ? PX_OK : st->code;
}

px_code_t px_curve_from_config(const px_config_t *cfg, px_log_t *log, px_curve_t **out,
                               px_status_t *st)
{
    return s_from(px_config_get(cfg, "curve-secret-key"), px_config_get(cfg, "curve-allow"), log,
                  out, st);
}

px_code_t px_curve_from_env(px_log_t *log, px_curve_t **out, px_status_t *st)
{
    return s_from(getenv("PX_CURVE_SECRET_KEY"), getenv("PX_CURVE_ALLOW"), log, out, st);
}

void px_curve_destroy(px_curve_t **self_p)
{
    if (self_p && *self_p) {
        px_curve_t *self = *self_p;
        for (int i = 0; i < self->nzaps; i++) {
            zap_t *z = &self->zaps[i];
            ssize_t w = write(z->stop_pipe[1], "x", 1);
            (void)w;
            pthread_join(z->thread, NULL);
            close(z->stop_pipe[0]);
            close(z->stop_pipe[1]);
        }
        s_allow_free(&self->list);
        explicit_bzero(self->secret_key, sizeof self->secret_key);
        pthread_mutex_destroy(&self->lock);
        free(self->secret_path);
        free(self->allow_path);
        free(self);
        *self_p = NULL;
    }
}

px_code_t px_curve_reload(px_curve_t *self, px_status_t *st)
{
    allow_t fresh;
    if (s_allow_load(self->allow_path, &fresh, st) != PX_OK) {
        px_log_emit(self->log, PX_LOG_ERROR, "CURVE-ALLOW-BAD",
                    "allow-list not reloaded: the old list stays in force",
                    PX_LOG_FIELDS(PX_LS("error", st->message)));
        return st->code;
    }
    pthread_mutex_lock(&self->lock);
    allow_t old = self->list;
    self->list = fresh;
    pthread_mutex_unlock(&self->lock);
    s_allow_free(&old);
    px_log_emit(self->log, PX_LOG_INFO, "CURVE-ALLOW-RELOAD", "allow-list reloaded",
                PX_LOG_FIELDS(PX_LI("keys", fresh.n)));
    return PX_OK;
}

size_t px_curve_allowed_count(px_curve_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->list.n;
    pthread_mutex_unlock(&self->lock);
    return n;
}

bool px_curve_knows(px_curve_t *self, const char *name)
{
    bool found = false;
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->list.n && !found; i++) {
        found = strcmp(self->list.entries[i].name, name) == 0;
    }
    pthread_mutex_unlock(&self->lock);
    return found;
}

const char *px_curve_public_key(const px_curve_t *self)
{
    return self->public_key;
}

/* The name listed for a binary key into name (PX_CURVE_NAME_MAX + 1); false when unlisted. */
static bool s_lookup_key(px_curve_t *self, const unsigned char key[32], char *name)
{
    bool found = false;
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->list.n && !found; i++) {
        if (memcmp(self->list.entries[i].key, key, 32) == 0) {
            memcpy(name, self->list.entries[i].name, sizeof self->list.entries[i].name);
            found = true;
        }
    }
    pthread_mutex_unlock(&self->lock);
    return found;
}

/* ------------------------------------------------------------------ ZAP handler */

#define ZAP_FRAMES 7 /* a CURVE request: version, id, domain, address, identity, mechanism, key */

static void s_zap_answer(px_curve_t *self, void *sock, zmq_msg_t *req, int nreq)
{
    const char *status = "400", *text = "unknown key";
    char name[PX_CURVE_NAME_MAX + 1] = "";
    char peer[64] = "";
    if (nreq != ZAP_FRAMES || zmq_msg_size(&req[0]) != 3 ||
        memcmp(zmq_msg_data(&req[0]), "1.0", 3) != 0) {
        status = "400";
        text = "malformed request";
    } else if (zmq_msg_size(&req[2]) != strlen(ZAP_DOMAIN) ||
               memcmp(zmq_msg_data(&req[2]), ZAP_DOMAIN, strlen(ZAP_DOMAIN)) != 0) {
        text = "unknown domain";
    } else if (zmq_msg_size(&req[5]) != 5 || memcmp(zmq_msg_data(&req[5]), "CURVE", 5) != 0) {
        text = "CURVE only";
    } else if (zmq_msg_size(&req[6]) == 32 && s_lookup_key(self, zmq_msg_data(&req[6]), name)) {
        status = "200";
        text = "OK";
    }
    if (*status != '2') {
        char key[PX_CURVE_KEY_BUF] = "";
        size_t al = 0;
        if (nreq == ZAP_FRAMES) {
            al = zmq_msg_size(&req[3]) < sizeof peer ? zmq_msg_size(&req[3]) : 0;
            memcpy(peer, zmq_msg_data(&req[3]), al);
            if (zmq_msg_size(&req[6]) == 32) {
                zmq_z85_encode(key, zmq_msg_data(&req[6]), 32);
            }
        }
        peer[al < sizeof peer ? al : sizeof peer - 1] = '\0';
        /* A public key is no secret: logging it lets the operator add it if it is theirs. */
        px_log_emit(self->log, PX_LOG_WARN, "CURVE-REFUSED", text,
                    PX_LOG_FIELDS(PX_LS("peer", px_utf8_valid(peer, strlen(peer)) ? peer : "?"),
                                  PX_LS("key", key)));
    }
    /* Reply: version, request id, status code, status text, user id, metadata. */
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    if (nreq >= 2) {
        zmq_send(sock, zmq_msg_data(&req[1]), zmq_msg_size(&req[1]), ZMQ_SNDMORE);
    } else {
        zmq_send(sock, "", 0, ZMQ_SNDMORE);
    }
    zmq_send(sock, status, 3, ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, name, strlen(name), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0);
}

static void *s_zap_main(void *arg)
{
    zap_t *z = arg;
    zmq_msg_t req[ZAP_FRAMES];
    for (;;) {
        zmq_pollitem_t items[2] = {{z->sock, 0, ZMQ_POLLIN, 0},
                                   {NULL, z->stop_pipe[0], ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break; /* ETERM: the context is ending */
        }
        if (items[1].revents & ZMQ_POLLIN) {
            break;
        }
        if (!(items[0].revents & ZMQ_POLLIN)) {
            continue;
        }
        int n = 0, more = 1;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, z->sock, 0) < 0) {
                zmq_msg_close(&m);
                goto done;
            }
            if (n < ZAP_FRAMES) {
                zmq_msg_init(&req[n]);
                zmq_msg_move(&req[n], &m);
            }
            zmq_msg_close(&m);
            n++;
            size_t sz = sizeof more;
            zmq_getsockopt(z->sock, ZMQ_RCVMORE, &more, &sz);
        }
        s_zap_answer(z->owner, z->sock, req, n);
        for (int i = 0; i < n && i < ZAP_FRAMES; i++) {
            zmq_msg_close(&req[i]);
        }
    }
done:
    zmq_close(z->sock);
    return NULL;
}

static px_code_t s_zap_start(px_curve_t *self, void *zctx, px_status_t *st)
{
    for (int i = 0; i < self->nzaps; i++) {
        if (self->zaps[i].zctx == zctx) {
            return PX_OK;
        }
    }
    if (self->nzaps == ZAP_MAX) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "CURVE: at most %d ZeroMQ contexts",
                             ZAP_MAX);
    }
    zap_t *z = &self->zaps[self->nzaps];
    *z = (zap_t){.owner = self, .zctx = zctx, .stop_pipe = {-1, -1}};
    z->sock = zmq_socket(zctx, ZMQ_REP);
    if (!z->sock) {
        return px_status_set(st, PX_INTERNAL, "zmq_socket: %s", zmq_strerror(errno));
    }
    int linger = 0;
    zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
        px_code_t c = px_status_set(st, PX_FAILED_PRECONDITION,
                                    "CURVE: cannot run the ZAP handler (%s): another CURVE "
                                    "identity already serves in this process?",
                                    zmq_strerror(errno));
        zmq_close(z->sock);
        return c;
    }
    if (pipe2(z->stop_pipe, O_CLOEXEC) != 0) {
        zmq_close(z->sock);
        return px_status_set(st, PX_INTERNAL, "pipe: %s", strerror(errno));
    }
    if (pthread_create(&z->thread, NULL, s_zap_main, z) != 0) {
        zmq_close(z->sock);
        close(z->stop_pipe[0]);
        close(z->stop_pipe[1]);
        return px_status_set(st, PX_INTERNAL, "cannot start the ZAP thread");
    }
    self->nzaps++;
    return PX_OK;
}

px_code_t px_curve_server_setup(px_curve_t *self, void *zctx, void *sock, px_status_t *st)
{
    px_code_t code = s_zap_start(self, zctx, st);
    if (code != PX_OK) {
        return code;
    }
    int on = 1;
    if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &on, sizeof on) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, self->secret_key, PX_CURVE_KEY_LEN) != 0) {
        return px_status_set(st, PX_INTERNAL, "CURVE server options: %s", zmq_strerror(errno));
    }
    return PX_OK;
}

px_code_t px_curve_client_setup(px_curve_t *self, void *sock, const char *server_name,
                                px_status_t *st)
{
    unsigned char server[32];
    bool found = false;
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->list.n && !found; i++) {
        if (strcmp(self->list.entries[i].name, server_name) == 0) {
            memcpy(server, self->list.entries[i].key, sizeof server);
            found = true;
        }
    }
    pthread_mutex_unlock(&self->lock);
    if (!found) {
        char shown[PX_CURVE_NAME_MAX + 1];
        snprintf(shown, sizeof shown, "%s", px_curve_name_ok(server_name) ? server_name : "?");
        return px_status_set(st, PX_FAILED_PRECONDITION,
                             "CURVE: %s lists no key named \"%s\" (the server's public key)",
                             self->allow_path, shown);
    }
    char server_z85[PX_CURVE_KEY_BUF];
    zmq_z85_encode(server_z85, server, sizeof server);
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_z85, PX_CURVE_KEY_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, self->public_key, PX_CURVE_KEY_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, self->secret_key, PX_CURVE_KEY_LEN) != 0) {
        return px_status_set(st, PX_INTERNAL, "CURVE client options: %s", zmq_strerror(errno));
    }
    return PX_OK;
}
