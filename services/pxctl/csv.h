/*
 * csv.h - a streaming RFC 4180 reader for pxctl import: one record at a time,
 * each with the line it starts on, so a file of any length is read in bounded
 * memory and every problem can be reported against its line.
 */
#ifndef PXCTL_CSV_H
#define PXCTL_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fields in one record: the widest of our files has six. */
#define PXCTL_CSV_MAX_FIELDS 64
/* Bytes in one field: a name is at most 500 characters (2,000 bytes); far more is a wrong file
 * (or a quote never closed), refused before it fills the memory. */
#define PXCTL_CSV_FIELD_MAX (64 * 1024)
/* Room for a record's problem. */
#define PXCTL_CSV_ERR_MAX 200

typedef struct pxctl_csv_t pxctl_csv_t;

/* One record: fields are owned by the reader and valid until the next read. */
typedef struct {
    int line; /* the physical line it starts on, 1-based */
    size_t n;
    const char *fields[PXCTL_CSV_MAX_FIELDS];
    /* Non-empty when this record is malformed (the reader has moved past it, so the next one
     * can still be read and checked): a quote out of place, invalid UTF-8, a NUL byte, too
     * many fields or too long a one. */
    char err[PXCTL_CSV_ERR_MAX];
} pxctl_csv_rec_t;

/* Opens path for reading ("-": standard input). NULL with errno. */
pxctl_csv_t *pxctl_csv_open(const char *path);
void pxctl_csv_destroy(pxctl_csv_t **self_p);

/* The next record (blank lines skipped; a UTF-8 byte order mark at the start ignored):
 * 1 a record (maybe with rec->err set), 0 the end of the file, -1 a problem after which
 * nothing more can be read (a quote never closed, a read error), described in rec->err. */
int pxctl_csv_next(pxctl_csv_t *self, pxctl_csv_rec_t *rec);

/* Bytes read so far, and the file's size (0 when unknown: a pipe). For progress. */
uint64_t pxctl_csv_offset(const pxctl_csv_t *self);
uint64_t pxctl_csv_size(const pxctl_csv_t *self);

#endif
