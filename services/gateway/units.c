/*
 * units.c - the gateway's copy of the roster's unit tree.
 *
 * A recorder's token names units; an event's unit is within them when it is one of
 * them or lies under one (a district's token covers its wards). Webhook subscribers
 * name units the same way. Deciding that needs each unit's parent, so the gateway
 * keeps the tree: code -> parent, name, in an open-addressing table that a reader
 * walks up at most MAX_DEPTH levels. backend.c refills it from the roster; a refill
 * builds a new table and swaps it in under the write lock, so readers never see half
 * a tree and wait only for the swap.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/hash.h"

#include "gateway.h"

/* province > district > ward > neighborhood: four levels; a little room beyond. */
#define MAX_DEPTH 8

typedef struct {
    char *code, *parent, *name;
    int level; /* phuxanh.roster.v1.UnitLevel */
} s_unit_t;

typedef struct {
    s_unit_t *slots;
    size_t cap; /* a power of two, at least twice the units */
} s_table_t;

struct gw_units_t {
    pthread_rwlock_t lock;
    s_table_t t;
    int64_t version;
};

static uint64_t s_hash(const char *s)
{
    return px_hash_str(s, PX_HASH_SEED);
}

static const s_unit_t *s_find(const s_table_t *t, const char *code)
{
    if (!t->cap || !code) {
        return NULL;
    }
    for (size_t i = s_hash(code) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (!t->slots[i].code) {
            return NULL;
        }
        if (strcmp(t->slots[i].code, code) == 0) {
            return &t->slots[i];
        }
    }
}

static void s_table_free(s_table_t *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        free(t->slots[i].code);
        free(t->slots[i].parent);
        free(t->slots[i].name);
    }
    free(t->slots);
    t->slots = NULL;
    t->cap = 0;
}

gw_units_t *gw_units_new(void)
{
    gw_units_t *self = calloc(1, sizeof *self);
    if (self) {
        pthread_rwlock_init(&self->lock, NULL);
    }
    return self;
}

void gw_units_destroy(gw_units_t **self_p)
{
    if (*self_p) {
        gw_units_t *self = *self_p;
        s_table_free(&self->t);
        pthread_rwlock_destroy(&self->lock);
        free(self);
        *self_p = NULL;
    }
}

void gw_units_set(gw_units_t *self, const char *const *codes, const char *const *parents,
                  const char *const *names, const int *levels, size_t n, int64_t version)
{
    s_table_t t = {NULL, 16};
    while (t.cap < 2 * n) {
        t.cap *= 2;
    }
    t.slots = calloc(t.cap, sizeof *t.slots);
    if (!t.slots) {
        return; /* out of memory: keep the old tree */
    }
    for (size_t k = 0; k < n; k++) {
        if (!codes[k] || s_find(&t, codes[k])) {
            continue;
        }
        size_t i = s_hash(codes[k]) & (t.cap - 1);
        while (t.slots[i].code) {
            i = (i + 1) & (t.cap - 1);
        }
        t.slots[i].code = strdup(codes[k]);
        t.slots[i].parent = strdup(parents[k] ? parents[k] : "");
        t.slots[i].name = strdup(names[k] ? names[k] : "");
        t.slots[i].level = levels ? levels[k] : 0;
        if (!t.slots[i].code || !t.slots[i].parent || !t.slots[i].name) {
            s_table_free(&t);
            return;
        }
    }
    pthread_rwlock_wrlock(&self->lock);
    s_table_t old = self->t;
    self->t = t;
    self->version = version;
    pthread_rwlock_unlock(&self->lock);
    s_table_free(&old);
}

int64_t gw_units_version(gw_units_t *self)
{
    pthread_rwlock_rdlock(&self->lock);
    int64_t v = self->version;
    pthread_rwlock_unlock(&self->lock);
    return v;
}

bool gw_units_known(gw_units_t *self, const char *code)
{
    pthread_rwlock_rdlock(&self->lock);
    bool known = s_find(&self->t, code) != NULL;
    pthread_rwlock_unlock(&self->lock);
    return known;
}

bool gw_units_within(gw_units_t *self, const char *unit, const char (*scope)[24], size_t n)
{
    bool within = false;
    pthread_rwlock_rdlock(&self->lock);
    const s_unit_t *u = s_find(&self->t, unit);
    for (int depth = 0; u && depth < MAX_DEPTH && !within; depth++) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(u->code, scope[i]) == 0) {
                within = true;
                break;
            }
        }
        u = *u->parent ? s_find(&self->t, u->parent) : NULL;
    }
    pthread_rwlock_unlock(&self->lock);
    return within;
}

bool gw_units_name(gw_units_t *self, const char *code, char *buf, size_t cap)
{
    pthread_rwlock_rdlock(&self->lock);
    const s_unit_t *u = s_find(&self->t, code);
    if (u && cap > 0) {
        px_utf8_copy(buf, cap, u->name);
    }
    pthread_rwlock_unlock(&self->lock);
    return u != NULL;
}

int gw_units_level(gw_units_t *self, const char *code)
{
    pthread_rwlock_rdlock(&self->lock);
    const s_unit_t *u = s_find(&self->t, code);
    int level = u ? u->level : 0;
    pthread_rwlock_unlock(&self->lock);
    return level;
}
