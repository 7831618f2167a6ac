/*
 * hash.c - FNV-1a over strings (hash.h).
 */
#include "phuxanh/hash.h"

#define S_FNV_PRIME 1099511628211ULL

uint64_t px_hash_byte(uint64_t h, unsigned char c)
{
    return (h ^ c) * S_FNV_PRIME;
}

uint64_t px_hash_str(const char *s, uint64_t h)
{
    for (; *s; s++) {
        h = px_hash_byte(h, (unsigned char)*s);
    }
    return h;
}
