/* buf.c - gw_buf_t: text built piece by piece (see gateway.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

void gw_buf_init(gw_buf_t *b)
{
    memset(b, 0, sizeof *b);
}

void gw_buf_free(gw_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static bool s_reserve(gw_buf_t *b, size_t n)
{
    if (b->failed) {
        return false;
    }
    if (b->len + n + 1 <= b->cap) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1) {
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void gw_buf_put(gw_buf_t *b, const void *data, size_t n)
{
    if (s_reserve(b, n)) {
        memcpy(b->data + b->len, data, n);
        b->len += n;
        b->data[b->len] = '\0';
    }
}

void gw_buf_puts(gw_buf_t *b, const char *s)
{
    gw_buf_put(b, s, strlen(s));
}

void gw_buf_putc(gw_buf_t *b, char c)
{
    gw_buf_put(b, &c, 1);
}

void gw_buf_printf(gw_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !s_reserve(b, (size_t)n)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}
