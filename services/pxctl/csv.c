/*
 * csv.c - the streaming RFC 4180 reader behind pxctl import.
 *
 * Quoted fields may hold commas, doubled quotes and line breaks; lines end in
 * LF or CRLF; a byte order mark (spreadsheets write one) is skipped. A record
 * that breaks the format is returned with its problem and the reader moves on
 * to the next line, so an operator sees every bad line of a file in one run
 * instead of fixing them one at a time. Only a quote that is never closed ends
 * the reading: everything after it is inside the field, so there is nothing
 * more to check.
 *
 * Fields are checked here for what must never reach a service as text: a NUL
 * byte and invalid UTF-8 are refused, never cut or repaired.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "csv.h"
#include "phuxanh/text.h"

struct pxctl_csv_t {
    FILE *f;
    bool owned; /* not stdin */
    int line;   /* the line the next character is on */
    uint64_t offset, size;
    bool started;
    /* The fields of the current record, back to back, each NUL-terminated. */
    char *buf;
    size_t len, cap;
    size_t starts[PXCTL_CSV_MAX_FIELDS];
};

pxctl_csv_t *pxctl_csv_open(const char *path)
{
    pxctl_csv_t *self = calloc(1, sizeof *self);
    if (!self) {
        return NULL;
    }
    if (strcmp(path, "-") == 0) {
        self->f = stdin;
    } else {
        self->f = fopen(path, "rb");
        self->owned = true;
    }
    if (!self->f) {
        int e = errno;
        free(self);
        errno = e;
        return NULL;
    }
    struct stat sb;
    if (fstat(fileno(self->f), &sb) == 0 && S_ISREG(sb.st_mode)) {
        self->size = (uint64_t)sb.st_size;
    }
    self->line = 1;
    return self;
}

void pxctl_csv_destroy(pxctl_csv_t **self_p)
{
    if (*self_p) {
        pxctl_csv_t *self = *self_p;
        if (self->owned) {
            fclose(self->f);
        }
        free(self->buf);
        free(self);
        *self_p = NULL;
    }
}

uint64_t pxctl_csv_offset(const pxctl_csv_t *self)
{
    return self->offset;
}

uint64_t pxctl_csv_size(const pxctl_csv_t *self)
{
    return self->size;
}

static int s_get(pxctl_csv_t *self)
{
    int c = getc(self->f);
    if (c != EOF) {
        self->offset++;
    }
    return c;
}

/* Records the record's first problem only: the one to fix first. */
static void s_bad(pxctl_csv_rec_t *rec, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_bad(pxctl_csv_rec_t *rec, const char *fmt, ...)
{
    if (rec->err[0]) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rec->err, sizeof rec->err, fmt, ap);
    va_end(ap);
}

/* Appends c to the current field; false only when out of memory. */
static bool s_put(pxctl_csv_t *self, pxctl_csv_rec_t *rec, size_t field_start, int c)
{
    if (c == '\0') {
        s_bad(rec, "field %zu holds a NUL byte; not a text file", rec->n + 1);
        return true;
    }
    if (self->len - field_start >= PXCTL_CSV_FIELD_MAX) {
        s_bad(rec, "field %zu is longer than %d bytes", rec->n + 1, PXCTL_CSV_FIELD_MAX);
        return true;
    }
    if (self->len + 2 > self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 4096;
        char *b = realloc(self->buf, cap);
        if (!b) {
            return false;
        }
        self->buf = b;
        self->cap = cap;
    }
    self->buf[self->len++] = (char)c;
    return true;
}

/* Moves past the rest of the line (after a record went wrong mid-way). c is the current
 * character; returns the one ending the line (or EOF). */
static int s_skip_line(pxctl_csv_t *self, int c)
{
    while (c != EOF && c != '\n' && c != '\r') {
        c = s_get(self);
    }
    return c;
}

int pxctl_csv_next(pxctl_csv_t *self, pxctl_csv_rec_t *rec)
{
    rec->n = 0;
    rec->err[0] = '\0';
    self->len = 0;
    int c = s_get(self);
    if (!self->started) {
        self->started = true;
        if (c == 0xEF) { /* a byte order mark, as spreadsheet programs write */
            int b = s_get(self), o = s_get(self);
            if (b != 0xBB || o != 0xBF) {
                snprintf(rec->err, sizeof rec->err, "starts with a broken byte order mark");
                rec->line = 1;
                return -1;
            }
            c = s_get(self);
        }
    }
    while (c == '\n' || c == '\r') { /* blank lines */
        if (c == '\r') {
            int d = s_get(self);
            if (d != '\n') {
                c = d;
                self->line++;
                continue;
            }
        }
        self->line++;
        c = s_get(self);
    }
    if (c == EOF) {
        if (ferror(self->f)) {
            snprintf(rec->err, sizeof rec->err, "%s", strerror(errno));
            rec->line = self->line;
            return -1;
        }
        return 0;
    }
    rec->line = self->line;
    for (;;) {
        size_t start = self->len;
        if (c == '"') {
            int opened = self->line;
            for (;;) {
                c = s_get(self);
                if (c == EOF) {
                    snprintf(rec->err, sizeof rec->err,
                             "a quoted field opened on line %d is never closed", opened);
                    return -1;
                }
                if (c == '"') {
                    c = s_get(self);
                    if (c != '"') {
                        break;
                    }
                } else if (c == '\n') {
                    self->line++;
                }
                if (!s_put(self, rec, start, c)) {
                    goto oom;
                }
            }
            if (c != ',' && c != '\r' && c != '\n' && c != EOF) {
                s_bad(rec, "field %zu: a character after its closing quote", rec->n + 1);
                c = s_skip_line(self, c);
            }
        } else {
            while (c != ',' && c != '\r' && c != '\n' && c != EOF) {
                if (c == '"') {
                    s_bad(rec,
                          "field %zu: a quote inside an unquoted field (quote the whole field "
                          "and double the quote)",
                          rec->n + 1);
                }
                if (!s_put(self, rec, start, c)) {
                    goto oom;
                }
                c = s_get(self);
            }
        }
        if (!s_put(self, rec, start, 'x')) { /* room for the NUL */
            goto oom;
        }
        self->buf[self->len - 1] = '\0';
        if (rec->n < PXCTL_CSV_MAX_FIELDS) {
            self->starts[rec->n] = start;
            if (!px_utf8_valid(self->buf + start, strlen(self->buf + start))) {
                s_bad(rec, "field %zu is not valid UTF-8", rec->n + 1);
            }
            rec->n++;
        } else {
            s_bad(rec, "more than %d fields", PXCTL_CSV_MAX_FIELDS);
        }
        if (c == ',') {
            c = s_get(self);
            continue;
        }
        if (c == '\r') {
            int d = s_get(self);
            if (d != '\n' && d != EOF) {
                ungetc(d, self->f);
                self->offset--;
            }
        }
        if (c != EOF) {
            self->line++;
        }
        break;
    }
    /* The buffer may have moved while it grew: point at the fields only now. */
    for (size_t i = 0; i < rec->n; i++) {
        rec->fields[i] = self->buf + self->starts[i];
    }
    return 1;
oom:
    snprintf(rec->err, sizeof rec->err, "out of memory");
    return -1;
}
