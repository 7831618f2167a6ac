/*
 * md.c - call metadata: a short ordered list of owned key/value strings.
 *
 * Calls carry a handful of entries (request id, caller), so a flat array with
 * linear lookup beats any map; bounds keep a hostile peer from growing it.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/rpc.h"

struct px_md_t {
    char **keys;
    char **values;
    size_t size;
    size_t cap;
};

px_md_t *px_md_new(void)
{
    return calloc(1, sizeof(px_md_t));
}

void px_md_destroy(px_md_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        px_md_t *self = *self_p;
        for (size_t i = 0; i < self->size; i++) {
            free(self->keys[i]);
            free(self->values[i]);
        }
        free(self->keys);
        free(self->values);
        free(self);
        *self_p = NULL;
    }
}

int px_md_set(px_md_t *self, const char *key, const char *value)
{
    assert(self && key && value);
    if (strlen(value) > PX_RPC_MAX_METADATA_VALUE || strlen(key) > PX_RPC_MAX_METADATA_VALUE) {
        return -1;
    }
    char *v = strdup(value);
    if (!v) {
        return -1;
    }
    for (size_t i = 0; i < self->size; i++) {
        if (strcmp(self->keys[i], key) == 0) {
            free(self->values[i]);
            self->values[i] = v;
            return 0;
        }
    }
    if (self->size == PX_RPC_MAX_METADATA) {
        free(v);
        return -1;
    }
    if (self->size == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 4;
        char **k = realloc(self->keys, cap * sizeof(char *));
        if (k) {
            self->keys = k;
        }
        char **vs = k ? realloc(self->values, cap * sizeof(char *)) : NULL;
        if (!vs) {
            free(v);
            return -1;
        }
        self->values = vs;
        self->cap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return -1;
    }
    self->keys[self->size] = k;
    self->values[self->size] = v;
    self->size++;
    return 0;
}

const char *px_md_get(const px_md_t *self, const char *key)
{
    if (!self) {
        return NULL;
    }
    for (size_t i = 0; i < self->size; i++) {
        if (strcmp(self->keys[i], key) == 0) {
            return self->values[i];
        }
    }
    return NULL;
}

size_t px_md_size(const px_md_t *self)
{
    return self ? self->size : 0;
}

px_md_entry_t px_md_at(const px_md_t *self, size_t i)
{
    assert(self && i < self->size);
    return (px_md_entry_t){self->keys[i], self->values[i]};
}
