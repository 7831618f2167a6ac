/*
 * text.c - validation of text, days and phone numbers at the API's edge.
 *
 * Everything a client sends is checked here before it reaches SQL, so that a
 * refusal can name the field and the problem (PostgreSQL would refuse invalid
 * UTF-8 too, but with a message about encodings, not about `full_name`).
 */
#include <string.h>

#include "phuxanh/text.h"

bool px_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c == 0) {
                return false;
            }
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n) {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

size_t px_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

px_code_t px_text_check(const char *field, const char *s, size_t max_chars, bool required,
                        px_status_t *st)
{
    if (!s || !*s) {
        if (required) {
            return px_status_set(st, PX_INVALID_ARGUMENT, "%s: must not be empty", field);
        }
        return PX_OK;
    }
    size_t len = strlen(s);
    if (!px_utf8_valid(s, len)) {
        return px_status_set(st, PX_INVALID_ARGUMENT, "%s: is not valid UTF-8", field);
    }
    bool blank = true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7F) {
            return px_status_set(st, PX_INVALID_ARGUMENT, "%s: contains a control character",
                                 field);
        }
        if (*p != ' ') {
            blank = false;
        }
    }
    if (blank && required) {
        return px_status_set(st, PX_INVALID_ARGUMENT, "%s: must not be blank", field);
    }
    if (px_utf8_chars(s) > max_chars) {
        return px_status_set(st, PX_INVALID_ARGUMENT, "%s: longer than %zu characters", field,
                             max_chars);
    }
    return PX_OK;
}

/* Days from civil date (proleptic Gregorian), after Howard Hinnant's well-known algorithm. */
static int32_t s_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void s_civil_from_days(int32_t z, int *y, int *m, int *d)
{
    z += 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp + (mp < 10 ? 3 : -9);
    *y = yoe + era * 400 + (*m <= 2);
}

bool px_day_parse(const char *s, int32_t *days)
{
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') {
        return false;
    }
    for (int i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) {
            return false;
        }
    }
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || y > 2999 || m < 1 || m > 12 || d < 1) {
        return false;
    }
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int max = mdays[m - 1] + (m == 2 && leap);
    if (d > max) {
        return false;
    }
    *days = s_days_from_civil(y, m, d);
    return true;
}

void px_day_format(int32_t days, char *buf)
{
    int y, m, d;
    s_civil_from_days(days, &y, &m, &d);
    /* Written by hand: the ranges are known, and snprintf's truncation warning cannot see it. */
    y = y < 0 ? 0 : y % 10000;
    buf[0] = (char)('0' + y / 1000);
    buf[1] = (char)('0' + y / 100 % 10);
    buf[2] = (char)('0' + y / 10 % 10);
    buf[3] = (char)('0' + y % 10);
    buf[4] = '-';
    buf[5] = (char)('0' + m / 10);
    buf[6] = (char)('0' + m % 10);
    buf[7] = '-';
    buf[8] = (char)('0' + d / 10);
    buf[9] = (char)('0' + d % 10);
    buf[10] = '\0';
}

int32_t px_day_of_unix(int64_t seconds)
{
    int64_t local = seconds + PX_TZ_OFFSET_S;
    int64_t day = local / 86400;
    if (local % 86400 < 0) {
        day--;
    }
    return (int32_t)day;
}

bool px_phone_vn_normalize(const char *s, char *out)
{
    if (!s) {
        return false;
    }
    /* People write numbers grouped ("0912 345 678", "0912.345.678", "(+84) 912-345-678"):
     * the separators go, a '+' may only lead, and what is left must be digits. */
    char digits[16];
    size_t len = 0;
    bool plus = false;
    for (const char *p = s; *p; p++) {
        if (*p == ' ' || *p == '.' || *p == '-' || *p == '(' || *p == ')') {
            continue;
        }
        if (*p == '+' && len == 0 && !plus) {
            plus = true;
            continue;
        }
        if (*p < '0' || *p > '9' || len + 1 >= sizeof digits) {
            return false;
        }
        digits[len++] = *p;
    }
    digits[len] = '\0';
    const char *nat; /* the 9 digits after the leading 0 */
    if (len == 10 && digits[0] == '0' && !plus) {
        nat = digits + 1;
    } else if (len == 11 && digits[0] == '8' && digits[1] == '4') {
        nat = digits + 2;
    } else {
        return false;
    }
    if (!strchr("35789", nat[0])) {
        return false;
    }
    out[0] = '0';
    memcpy(out + 1, nat, 9);
    out[10] = '\0';
    return true;
}
