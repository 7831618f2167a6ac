/*
 * term.c - input, output and the terminal: reading and writing whole buffers,
 * colour only for people, and how many columns a text takes.
 *
 * Unit names are Vietnamese: "Lái Thiêu" is 11 bytes and 9 columns, and the same
 * name may arrive decomposed (a base letter and combining marks, 0 columns each).
 * Tables line up only when padded by columns, not bytes, so pxctl_width counts
 * what a terminal shows. It is our own small function rather than wcwidth(3):
 * wcwidth needs a UTF-8 locale, which a minimal host or a systemd unit may not
 * have, and the JSON transcoder expects the process to stay in the "C" locale;
 * what it must know is short - combining marks and controls take no column, East
 * Asian wide characters two (a name in CJK script, an emoji in a note), all else
 * one - and needs no locale.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pxctl.h"

typedef struct {
    uint32_t lo, hi;
} s_range_t;

/* Characters that take no column: combining marks (Vietnamese tone marks when decomposed:
 * U+0300..U+036F), zero-width spaces and joiners, direction marks, variation selectors. */
static const s_range_t s_zero[] = {
    {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x05BF, 0x05BF}, {0x05C1, 0x05C2},
    {0x05C4, 0x05C5}, {0x05C7, 0x05C7}, {0x0610, 0x061A}, {0x064B, 0x065F}, {0x0670, 0x0670},
    {0x06D6, 0x06DC}, {0x06DF, 0x06E4}, {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E},
    {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x2064},
    {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF},
};

/* Characters that take two columns (East Asian Wide and Fullwidth, in blocks). */
static const s_range_t s_wide[] = {
    {0x1100, 0x115F},   {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},
    {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},
    {0xFE30, 0xFE4F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x1F300, 0x1F64F},
    {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

static bool s_in(uint32_t c, const s_range_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (c >= r[i].lo && c <= r[i].hi) {
            return true;
        }
    }
    return false;
}

/* Decodes one UTF-8 sequence at s; returns its length. What is not UTF-8 shows as U+FFFD,
 * one column: a stray byte, or a sequence cut short (its bytes so far), as terminals do. */
static size_t s_decode(const unsigned char *s, uint32_t *cp)
{
    unsigned char b = s[0];
    size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    uint32_t c = n == 1 ? b : n == 2 ? (b & 0x1Fu) : n == 3 ? (b & 0x0Fu) : (b & 0x07u);
    *cp = 0xFFFD;
    if (n == 0) {
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return i;
        }
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    *cp = c;
    return n;
}

size_t pxctl_width(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t w = 0;
    while (*s) {
        if (s[0] == 0x1B && s[1] == '[') { /* a colour: ESC [ params m */
            const unsigned char *p = s + 2;
            while (*p && ((*p >= '0' && *p <= '9') || *p == ';')) {
                p++;
            }
            if (*p == 'm') {
                s = p + 1;
                continue;
            }
        }
        uint32_t c;
        s += s_decode(s, &c);
        if (c < 0x20 || (c >= 0x7F && c < 0xA0) ||
            s_in(c, s_zero, sizeof s_zero / sizeof *s_zero)) {
            continue;
        }
        w += s_in(c, s_wide, sizeof s_wide / sizeof *s_wide) ? 2 : 1;
    }
    return w;
}

void pxctl_pad(FILE *out, const char *s, size_t width, bool right)
{
    size_t w = pxctl_width(s);
    size_t pad = w < width ? width - w : 0;
    if (right) {
        fprintf(out, "%*s%s", (int)pad, "", s);
    } else {
        fprintf(out, "%s%*s", s, (int)pad, "");
    }
}

bool pxctl_color(int fd)
{
    const char *term = getenv("TERM");
    const char *no = getenv("NO_COLOR"); /* https://no-color.org: set and not empty */
    return isatty(fd) && !(no && *no) && !(term && strcmp(term, "dumb") == 0);
}

int pxctl_read_fd(int fd, size_t max, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        return -1;
    }
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                free(buf);
                errno = EFBIG;
                return -1;
            }
            cap *= 2;
            char *b = realloc(buf, cap + 1);
            if (!b) {
                free(buf);
                return -1;
            }
            buf = b;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int e = errno;
            free(buf);
            errno = e;
            return -1;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    if (n > max) {
        free(buf);
        errno = EFBIG;
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int pxctl_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int pxctl_mkdirs(const char *path, mode_t mode)
{
    char *p = strdup(path);
    int rc = -1;
    if (!p) {
        return -1;
    }
    for (char *slash = strchr(p + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash) {
            *slash = '\0';
        }
        if (mkdir(p, slash ? 0755 : mode) != 0 && errno != EEXIST) {
            goto done;
        }
        if (!slash) {
            break;
        }
        *slash = '/';
    }
    rc = 0;
done:
    free(p);
    return rc;
}
