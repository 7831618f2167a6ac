/*
 * auth.c - API tokens: who a request acts for, and how fast it may go.
 *
 * The token file is the operator's (deploy/ and pxctl write it): one token per line,
 *
 *     <sha256 of the token, 64 hex>  <name>  <role>  [units=CODE,CODE] [rate=N] [burst=N]
 *
 * blank lines and lines starting with '#' ignored. Only the hash is ever stored: a
 * request's bearer token is hashed and looked up, so the file is no secret worth
 * stealing and the token itself exists only with its holder. The name is who the
 * gateway acts for: it goes to the services (x-on-behalf-of) and into their audit
 * tables, and into our logs; the token never does.
 *
 * A reload (SIGHUP) parses the whole file into a new set and swaps it in; a bad line
 * keeps the old set and is reported with its number. Requests keep the identity they
 * were given (a copy), so a reload never changes one in flight.
 *
 * The rate limit is a token bucket per token name (rate per second, burst), filled
 * lazily when taken from; the buckets of the names a reload keeps outlive it, so a reload
 * is no way around it.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "phuxanh/clock.h"
#include "phuxanh/hash.h"

/* Bearer tokens we accept: long enough to be unguessable when made by pxctl or quickstart
 * (32 random bytes, base64url), short enough to bound the work a stranger can cause. */
#define TOKEN_MIN 16
#define TOKEN_MAX 512
/* Lines of the file: a province has a few hundred wards, each perhaps with a token. */
#define TOKENS_MAX 10000
#define LINE_MAX_LEN 4096

typedef struct {
    uint8_t hash[crypto_hash_sha256_BYTES];
    gw_ident_t ident;
} s_token_t;

typedef struct {
    s_token_t *tokens;
    size_t n;
    size_t *table; /* open addressing over tokens, SIZE_MAX = empty */
    size_t cap;
    int refs;
} s_set_t;

typedef struct {
    char name[GW_TOKEN_NAME_MAX + 1];
    double tokens;
    int64_t at_us;
} s_bucket_t;

struct gw_auth_t {
    char *path;
    double rate, burst; /* defaults */
    px_log_t *log;
    pthread_rwlock_t lock;
    s_set_t *set;
    pthread_mutex_t bucket_mu;
    s_bucket_t *buckets; /* open addressing by name */
    size_t bucket_cap;
};

static const char *const s_role_names[GW_ROLE_COUNT] = {"viewer", "recorder", "planner", "admin"};

const char *gw_role_name(gw_role_t r)
{
    return (unsigned)r < GW_ROLE_COUNT ? s_role_names[r] : "?";
}

static size_t s_hash_slot(const uint8_t *hash, size_t cap)
{
    uint64_t v;
    memcpy(&v, hash, sizeof v); /* a SHA-256 is uniform: its first bytes are a fine hash */
    return (size_t)(v & (cap - 1));
}

static void s_set_free(s_set_t *set)
{
    if (set) {
        free(set->tokens);
        free(set->table);
        free(set);
    }
}

/* ---------------------------------------------------------------- parsing */

static bool s_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > GW_TOKEN_NAME_MAX) {
        return false;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && !strchr("._-@", *s)) {
            return false;
        }
    }
    return true;
}

static bool s_unit_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(((gw_ident_t *)0)->scope[0])) {
        return false;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '-') {
            return false;
        }
    }
    return true;
}

static bool s_number(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v <= 0 || v > 1e6) {
        return false;
    }
    *out = v;
    return true;
}

/* One line into t; PX_OK, or INVALID_ARGUMENT with what is wrong (no line number). */
static px_code_t s_parse_line(gw_auth_t *self, char *line, s_token_t *t, px_status_t *st)
{
    char *save = NULL;
    char *hash = strtok_r(line, " \t", &save);
    char *name = strtok_r(NULL, " \t", &save);
    char *role = strtok_r(NULL, " \t", &save);
    if (!hash || !name || !role) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "expected: <sha256 hex> <name> <role> [units=...] [rate=N] [burst=N]");
    }
    size_t len = 0;
    if (strlen(hash) != 2 * sizeof t->hash ||
        sodium_hex2bin(t->hash, sizeof t->hash, hash, strlen(hash), NULL, &len, NULL) != 0 ||
        len != sizeof t->hash) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "the first field must be the token's SHA-256 as 64 hex characters "
                             "(never the token itself)");
    }
    if (!s_name_ok(name)) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "name: 1 to %d letters, digits, '.', '_', '-' or '@'",
                             GW_TOKEN_NAME_MAX);
    }
    snprintf(t->ident.name, sizeof t->ident.name, "%s", name);
    int r = -1;
    for (int i = 0; i < GW_ROLE_COUNT; i++) {
        if (strcmp(role, s_role_names[i]) == 0) {
            r = i;
        }
    }
    if (r < 0) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "role: \"%.32s\" is not viewer, recorder, planner or admin", role);
    }
    t->ident.role = (gw_role_t)r;
    t->ident.rate = self->rate;
    t->ident.burst = self->burst;
    char *kv;
    while ((kv = strtok_r(NULL, " \t", &save)) != NULL) {
        if (strncmp(kv, "units=", 6) == 0) {
            char *usave = NULL;
            for (char *u = strtok_r(kv + 6, ",", &usave); u; u = strtok_r(NULL, ",", &usave)) {
                if (!s_unit_ok(u)) {
                    return px_status_set(st, PX_INVALID_ARGUMENT,
                                         "units: \"%.32s\" is not a unit code", u);
                }
                if (t->ident.nscope == GW_SCOPE_MAX) {
                    return px_status_set(st, PX_INVALID_ARGUMENT, "units: at most %d",
                                         GW_SCOPE_MAX);
                }
                snprintf(t->ident.scope[t->ident.nscope++], sizeof t->ident.scope[0], "%s", u);
            }
        } else if (strncmp(kv, "rate=", 5) == 0) {
            if (!s_number(kv + 5, &t->ident.rate)) {
                return px_status_set(st, PX_INVALID_ARGUMENT,
                                     "rate: a positive number of requests per second");
            }
        } else if (strncmp(kv, "burst=", 6) == 0) {
            if (!s_number(kv + 6, &t->ident.burst)) {
                return px_status_set(st, PX_INVALID_ARGUMENT,
                                     "burst: a positive number of requests");
            }
        } else {
            return px_status_set(st, PX_INVALID_ARGUMENT,
                                 "unknown field \"%.32s\" (units=, rate=, burst=)", kv);
        }
    }
    if (t->ident.role == GW_ROLE_RECORDER && t->ident.nscope == 0) {
        return px_status_set(st, PX_INVALID_ARGUMENT,
                             "a recorder needs its units: units=CODE[,CODE...]");
    }
    if (t->ident.role != GW_ROLE_RECORDER && t->ident.nscope > 0) {
        return px_status_set(st, PX_INVALID_ARGUMENT, "units= is for recorders only");
    }
    return PX_OK;
}

static s_set_t *s_load(gw_auth_t *self, px_status_t *st)
{
    s_set_t *set = calloc(1, sizeof *set);
    FILE *f = NULL;
    char *line = malloc(LINE_MAX_LEN);
    size_t cap = 0;
    if (!set || !line) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    f = fopen(self->path, "r");
    if (!f) {
        px_status_set(st, PX_FAILED_PRECONDITION, "tokens-file %s: %s", self->path,
                      strerror(errno));
        goto fail;
    }
    for (int lineno = 1; fgets(line, LINE_MAX_LEN, f); lineno++) {
        size_t n = strlen(line);
        if (n == LINE_MAX_LEN - 1 && line[n - 1] != '\n') {
            px_status_set(st, PX_INVALID_ARGUMENT, "tokens-file %s line %d: longer than %d bytes",
                          self->path, lineno, LINE_MAX_LEN - 2);
            goto fail;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                         line[n - 1] == '\t')) {
            line[--n] = '\0';
        }
        char *p = line + strspn(line, " \t");
        if (!*p || *p == '#') {
            continue;
        }
        if (set->n == TOKENS_MAX) {
            px_status_set(st, PX_INVALID_ARGUMENT, "tokens-file %s: more than %d tokens",
                          self->path, TOKENS_MAX);
            goto fail;
        }
        if (set->n == cap) {
            cap = cap ? cap * 2 : 16;
            s_token_t *t = realloc(set->tokens, cap * sizeof *t);
            if (!t) {
                px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
                goto fail;
            }
            set->tokens = t;
        }
        s_token_t *t = &set->tokens[set->n];
        memset(t, 0, sizeof *t);
        px_status_t lst;
        if (s_parse_line(self, p, t, &lst) != PX_OK) {
            px_status_set(st, PX_INVALID_ARGUMENT, "tokens-file %s line %d: %s", self->path, lineno,
                          lst.message);
            goto fail;
        }
        for (size_t k = 0; k < set->n; k++) {
            if (memcmp(set->tokens[k].hash, t->hash, sizeof t->hash) == 0 ||
                strcmp(set->tokens[k].ident.name, t->ident.name) == 0) {
                px_status_set(st, PX_INVALID_ARGUMENT,
                              "tokens-file %s line %d: the same token or name \"%s\" twice",
                              self->path, lineno, t->ident.name);
                goto fail;
            }
        }
        set->n++;
    }
    if (ferror(f)) {
        px_status_set(st, PX_UNAVAILABLE, "tokens-file %s: read error", self->path);
        goto fail;
    }
    set->cap = 16;
    while (set->cap < 2 * set->n) {
        set->cap *= 2;
    }
    set->table = malloc(set->cap * sizeof *set->table);
    if (!set->table) {
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    memset(set->table, 0xff, set->cap * sizeof *set->table);
    for (size_t k = 0; k < set->n; k++) {
        size_t i = s_hash_slot(set->tokens[k].hash, set->cap);
        while (set->table[i] != SIZE_MAX) {
            i = (i + 1) & (set->cap - 1);
        }
        set->table[i] = k;
    }
    fclose(f);
    free(line);
    return set;
fail:
    if (f) {
        fclose(f);
    }
    free(line);
    s_set_free(set);
    return NULL;
}

/* ---------------------------------------------------------------- rate buckets */

/* The slot of name's bucket in an open-addressing table of cap slots: its own, or the
 * empty one where it goes; NULL when the table is full of other names. */
static s_bucket_t *s_bucket_slot(s_bucket_t *table, size_t cap, const char *name)
{
    size_t i = (size_t)(px_hash_str(name, PX_HASH_SEED) % cap);
    for (size_t probes = 0; probes < cap; probes++, i = (i + 1) % cap) {
        if (!table[i].name[0] || strcmp(table[i].name, name) == 0) {
            return &table[i];
        }
    }
    return NULL;
}

/* After a reload: only the names of the new set keep their buckets (with what they hold,
 * so a reload is no way around the limit). Names only ever come from the file, at most
 * TOKENS_MAX of them, so the table (twice that) never fills; without this, every name
 * ever loaded kept its slot, and after 20,000 names over the process's life the next new
 * one looked for a free slot for ever, holding the lock every request takes. Called with
 * bucket_mu held. */
static void s_buckets_keep(gw_auth_t *self, const s_set_t *set)
{
    if (!self->buckets) {
        return;
    }
    s_bucket_t *table = calloc(self->bucket_cap, sizeof *table);
    if (!table) {
        return; /* out of memory: keep the old table; s_bucket_slot copes when it is full */
    }
    for (size_t k = 0; k < set->n; k++) {
        const char *name = set->tokens[k].ident.name;
        s_bucket_t *old = s_bucket_slot(self->buckets, self->bucket_cap, name);
        if (old && old->name[0]) {
            *s_bucket_slot(table, self->bucket_cap, name) = *old;
        }
    }
    free(self->buckets);
    self->buckets = table;
}

/* ---------------------------------------------------------------- public */

gw_auth_t *gw_auth_new(const char *tokens_file, double rate_per_s, double burst, px_log_t *log,
                       px_status_t *st)
{
    if (!tokens_file || !*tokens_file) {
        px_status_set(st, PX_INVALID_ARGUMENT, "tokens-file: must be set (PX_TOKENS_FILE)");
        return NULL;
    }
    gw_auth_t *self = calloc(1, sizeof *self);
    if (!self || !(self->path = strdup(tokens_file))) {
        free(self);
        px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    self->rate = rate_per_s;
    self->burst = burst;
    self->log = log;
    pthread_rwlock_init(&self->lock, NULL);
    pthread_mutex_init(&self->bucket_mu, NULL);
    self->set = s_load(self, st);
    if (!self->set) {
        gw_auth_destroy(&self);
        return NULL;
    }
    return self;
}

void gw_auth_destroy(gw_auth_t **self_p)
{
    if (*self_p) {
        gw_auth_t *self = *self_p;
        s_set_free(self->set);
        free(self->buckets);
        pthread_rwlock_destroy(&self->lock);
        pthread_mutex_destroy(&self->bucket_mu);
        free(self->path);
        free(self);
        *self_p = NULL;
    }
}

px_code_t gw_auth_reload(gw_auth_t *self, px_status_t *st)
{
    s_set_t *set = s_load(self, st);
    if (!set) {
        return st->code;
    }
    pthread_rwlock_wrlock(&self->lock);
    s_set_t *old = self->set;
    self->set = set;
    pthread_rwlock_unlock(&self->lock);
    s_set_free(old);
    pthread_mutex_lock(&self->bucket_mu);
    s_buckets_keep(self, set);
    pthread_mutex_unlock(&self->bucket_mu);
    px_status_set(st, PX_OK, "%zu tokens", set->n);
    return PX_OK;
}

size_t gw_auth_token_count(gw_auth_t *self)
{
    pthread_rwlock_rdlock(&self->lock);
    size_t n = self->set->n;
    pthread_rwlock_unlock(&self->lock);
    return n;
}

static const s_token_t *s_lookup(const s_set_t *set, const uint8_t *hash)
{
    for (size_t i = s_hash_slot(hash, set->cap);; i = (i + 1) & (set->cap - 1)) {
        if (set->table[i] == SIZE_MAX) {
            return NULL;
        }
        const s_token_t *t = &set->tokens[set->table[i]];
        if (memcmp(t->hash, hash, sizeof t->hash) == 0) {
            return t;
        }
    }
}

px_code_t gw_auth_check(gw_auth_t *self, const char *authorization, gw_ident_t *out,
                        px_status_t *st)
{
    if (!authorization) {
        return px_status_set(st, PX_UNAUTHENTICATED,
                             "missing token: send Authorization: Bearer <token>");
    }
    if (strncasecmp(authorization, "Bearer ", 7) != 0) {
        return px_status_set(st, PX_UNAUTHENTICATED,
                             "Authorization: expected the Bearer scheme and a token");
    }
    const char *tok = authorization + 7;
    while (*tok == ' ') {
        tok++;
    }
    size_t n = strlen(tok);
    while (n > 0 && tok[n - 1] == ' ') {
        n--;
    }
    if (n < TOKEN_MIN || n > TOKEN_MAX) {
        return px_status_set(st, PX_UNAUTHENTICATED, "unknown token");
    }
    uint8_t hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(hash, (const unsigned char *)tok, n);
    px_code_t code = PX_OK;
    pthread_rwlock_rdlock(&self->lock);
    const s_token_t *t = s_lookup(self->set, hash);
    if (t) {
        *out = t->ident;
    } else {
        code = px_status_set(st, PX_UNAUTHENTICATED, "unknown token");
    }
    pthread_rwlock_unlock(&self->lock);
    return code;
}

bool gw_auth_rate_take(gw_auth_t *self, const gw_ident_t *ident, int *retry_after_s)
{
    const char *name = ident->name;
    double rate = ident->rate, burst = ident->burst;
    pthread_mutex_lock(&self->bucket_mu);
    if (!self->buckets) {
        self->bucket_cap = 2 * TOKENS_MAX; /* names come from the file only: bounded */
        self->buckets = calloc(self->bucket_cap, sizeof *self->buckets);
        if (!self->buckets) {
            pthread_mutex_unlock(&self->bucket_mu);
            return true; /* out of memory: do not refuse service for it */
        }
    }
    s_bucket_t *b = s_bucket_slot(self->buckets, self->bucket_cap, name);
    if (!b) {
        pthread_mutex_unlock(&self->bucket_mu);
        return true; /* cannot happen (see s_buckets_keep); never refuse service for it */
    }
    int64_t now = px_clock_us();
    if (!b->name[0]) {
        snprintf(b->name, sizeof b->name, "%s", name);
        b->tokens = burst;
        b->at_us = now;
    }
    b->tokens += (double)(now - b->at_us) / 1e6 * rate;
    if (b->tokens > burst) {
        b->tokens = burst;
    }
    b->at_us = now;
    bool ok = b->tokens >= 1.0;
    if (ok) {
        b->tokens -= 1.0;
    } else {
        *retry_after_s = (int)ceil((1.0 - b->tokens) / rate);
        if (*retry_after_s < 1) {
            *retry_after_s = 1;
        }
    }
    pthread_mutex_unlock(&self->bucket_mu);
    return ok;
}
