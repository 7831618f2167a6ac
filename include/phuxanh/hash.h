/*
 * hash.h - one string hash for every table and lock id of phuxanh (FNV-1a, 64 bits).
 *
 * Stable across builds, machines and processes, unlike a pointer or a seeded hash: advisory
 * lock ids made from it must agree between every process of every version that shares a
 * database, so neither the function nor its seeds ever change.
 */
#ifndef PHUXANH_HASH_H
#define PHUXANH_HASH_H

#include <stdint.h>

/* FNV's published 64-bit offset basis (the migrations' lock key uses it). */
#define PX_HASH_FNV_BASIS 14695981039346656037ULL
/* The seed the tables and the events' lock ids have always used: one digit short of FNV's
 * basis, equally good for hashing, and kept because lock ids depend on it. */
#define PX_HASH_SEED 1469598103934665603ULL

/* h folded with every byte of s (FNV-1a): px_hash_str(s, PX_HASH_SEED) for one string, or
 * chained (px_hash_str(b, px_hash_str(a, seed))) for several. */
uint64_t px_hash_str(const char *s, uint64_t h);
/* h folded with one byte: a separator between chained strings, so that ("a","bc") and
 * ("ab","c") hash apart. */
uint64_t px_hash_byte(uint64_t h, unsigned char c);

#endif
