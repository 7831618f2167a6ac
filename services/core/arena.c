/*
 * arena.c - call-lifetime memory for the RPC server.
 *
 * A handler builds its reply out of many small pieces (strings, repeated
 * fields, sub-messages); giving them all one lifetime means the handler never
 * frees anything and the worker frees everything with one reset after the
 * reply is packed. The first chunk is kept across resets so a steady stream of
 * small calls allocates nothing.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"

#define ARENA_CHUNK (64 * 1024)
#define ARENA_ALIGN 16

typedef struct chunk_t {
    struct chunk_t *next;
    size_t cap;
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
} chunk_t;

struct px__arena_t {
    chunk_t *head; /* the chunk being filled; older ones follow */
};

static chunk_t *s_chunk_new(size_t cap)
{
    chunk_t *c = malloc(sizeof(chunk_t) + cap);
    if (c) {
        c->next = NULL;
        c->cap = cap;
        c->used = 0;
    }
    return c;
}

px__arena_t *px__arena_new(void)
{
    px__arena_t *self = calloc(1, sizeof(px__arena_t));
    if (self) {
        self->head = s_chunk_new(ARENA_CHUNK);
        if (!self->head) {
            free(self);
            return NULL;
        }
    }
    return self;
}

void px__arena_destroy(px__arena_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        px__arena_t *self = *self_p;
        chunk_t *c = self->head;
        while (c) {
            chunk_t *next = c->next;
            free(c);
            c = next;
        }
        free(self);
        *self_p = NULL;
    }
}

void *px__arena_alloc(px__arena_t *self, size_t size)
{
    size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < size) {
        return NULL; /* overflow */
    }
    if (self->head->cap - self->head->used < need) {
        size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK;
        chunk_t *c = s_chunk_new(cap);
        if (!c) {
            return NULL;
        }
        c->next = self->head;
        self->head = c;
    }
    void *p = self->head->data + self->head->used;
    self->head->used += need;
    memset(p, 0, size);
    return p;
}

void px__arena_reset(px__arena_t *self)
{
    /* Keep only the oldest chunk (the standard-sized first one). */
    chunk_t *c = self->head;
    while (c->next) {
        chunk_t *next = c->next;
        free(c);
        c = next;
    }
    c->used = 0;
    self->head = c;
}

static void *s_pb_alloc(void *data, size_t size)
{
    return px__arena_alloc(data, size);
}

static void s_pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

ProtobufCAllocator px__arena_allocator(px__arena_t *self)
{
    return (ProtobufCAllocator){s_pb_alloc, s_pb_free, self};
}
