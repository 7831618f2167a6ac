/*
 * text.h - checks for text and dates that enter through the API.
 *
 * Names are Vietnamese UTF-8; days are "YYYY-MM-DD" calendar days in the
 * province's time zone (Asia/Ho_Chi_Minh, UTC+7, no daylight saving).
 */
#ifndef PHUXANH_TEXT_H
#define PHUXANH_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phuxanh/status.h"

/* The province's offset from UTC: Viet Nam has kept UTC+7 without DST since 1975. */
#define PX_TZ_OFFSET_S (7 * 3600)

/* Is s (len bytes) well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF)? */
bool px_utf8_valid(const char *s, size_t len);
/* Number of code points in valid UTF-8. */
size_t px_utf8_chars(const char *s);

/* A required text field: non-empty, not only spaces, valid UTF-8, no control characters,
 * at most max_chars code points. INVALID_ARGUMENT naming `field` otherwise. An optional field
 * may be NULL or "" when required is false. */
px_code_t px_text_check(const char *field, const char *s, size_t max_chars, bool required,
                        px_status_t *st);

/* Parses "YYYY-MM-DD" (a real calendar day, years 1900-2999) into days since 1970-01-01. */
bool px_day_parse(const char *s, int32_t *days);
/* Writes "YYYY-MM-DD" for days since 1970-01-01 into buf (at least 11 bytes). */
void px_day_format(int32_t days, char *buf);
/* The calendar day in Viet Nam of a UNIX time in seconds. */
int32_t px_day_of_unix(int64_t seconds);

/* A Vietnamese mobile number: 10 digits, 0 then 3/5/7/8/9 (or +84 / 84 then 9 digits), in
 * groups separated by spaces, dots, dashes or parentheses if the writer likes. On success
 * writes the national form ("09xxxxxxxx") into out (at least 11 bytes). */
bool px_phone_vn_normalize(const char *s, char *out);

#endif
