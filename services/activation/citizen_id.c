/*
 * citizen_id.c - the CCCD number check and the citizen key.
 *
 * A CCCD number is 12 digits: the province-of-birth code (3), the century-and-
 * sex digit (1), the last two digits of the birth year (2) and a serial (6)
 * (Decree 137/2015, Circular 07/2016). We check what can be checked without a
 * registry: the digits, that the province code is one of the 63 in force, and
 * that the citizen is at least 14 in the year of the event (only the birth
 * year is in the number, so the year difference is the test).
 *
 * Messages name the field and never carry the number, not even a part of it:
 * they travel to clients and into logs.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "activation.h"

/* The minimum age for a level-2 account (Decree 59/2022 lets 14-year-olds apply). */
#define S_MIN_AGE 14

/* Province-of-birth codes in force (Circular 07/2016, Annex); a table, indexed by code. */
static const char *const s_provinces[100] = {
    [1] = "Hà Nội",           [2] = "Hà Giang",        [4] = "Cao Bằng",
    [6] = "Bắc Kạn",          [8] = "Tuyên Quang",     [10] = "Lào Cai",
    [11] = "Điện Biên",       [12] = "Lai Châu",       [14] = "Sơn La",
    [15] = "Yên Bái",         [17] = "Hòa Bình",       [19] = "Thái Nguyên",
    [20] = "Lạng Sơn",        [22] = "Quảng Ninh",     [24] = "Bắc Giang",
    [25] = "Phú Thọ",         [26] = "Vĩnh Phúc",      [27] = "Bắc Ninh",
    [30] = "Hải Dương",       [31] = "Hải Phòng",      [33] = "Hưng Yên",
    [34] = "Thái Bình",       [35] = "Hà Nam",         [36] = "Nam Định",
    [37] = "Ninh Bình",       [38] = "Thanh Hóa",      [40] = "Nghệ An",
    [42] = "Hà Tĩnh",         [44] = "Quảng Bình",     [45] = "Quảng Trị",
    [46] = "Thừa Thiên Huế",  [48] = "Đà Nẵng",        [49] = "Quảng Nam",
    [51] = "Quảng Ngãi",      [52] = "Bình Định",      [54] = "Phú Yên",
    [56] = "Khánh Hòa",       [58] = "Ninh Thuận",     [60] = "Bình Thuận",
    [62] = "Kon Tum",         [64] = "Gia Lai",        [66] = "Đắk Lắk",
    [67] = "Đắk Nông",        [68] = "Lâm Đồng",       [70] = "Bình Phước",
    [72] = "Tây Ninh",        [74] = "Bình Dương",     [75] = "Đồng Nai",
    [77] = "Bà Rịa–Vũng Tàu", [79] = "TP Hồ Chí Minh", [80] = "Long An",
    [82] = "Tiền Giang",      [83] = "Bến Tre",        [84] = "Trà Vinh",
    [86] = "Vĩnh Long",       [87] = "Đồng Tháp",      [89] = "An Giang",
    [91] = "Kiên Giang",      [92] = "Cần Thơ",        [93] = "Hậu Giang",
    [94] = "Sóc Trăng",       [95] = "Bạc Liêu",       [96] = "Cà Mau",
};

bool act_province_code_valid(const char *code3)
{
    if (code3[0] != '0' || code3[1] < '0' || code3[1] > '9' || code3[2] < '0' || code3[2] > '9') {
        return false;
    }
    int n = (code3[1] - '0') * 10 + (code3[2] - '0');
    return s_provinces[n] != NULL;
}

bool act_citizen_id_check(const char *id, int event_year, char *msg, size_t cap)
{
    if (!id || !*id) {
        snprintf(msg, cap, "citizen_id: must be set (12 digits)");
        return false;
    }
    size_t n = strnlen(id, 13);
    bool digits = true;
    for (size_t i = 0; i < n && digits; i++) {
        digits = id[i] >= '0' && id[i] <= '9';
    }
    if (n != 12 || !digits) {
        snprintf(msg, cap, "citizen_id: must be exactly 12 digits");
        return false;
    }
    if (!act_province_code_valid(id)) {
        snprintf(msg, cap, "citizen_id: the first three digits are not a province-of-birth code");
        return false;
    }
    /* 0/1: 1900s, 2/3: 2000s, ... 8/9: 2300s (even male, odd female). */
    int century = 1900 + ((id[3] - '0') / 2) * 100;
    int birth_year = century + (id[4] - '0') * 10 + (id[5] - '0');
    if (birth_year > event_year) {
        snprintf(msg, cap, "citizen_id: the birth year it encodes is after the event");
        return false;
    }
    if (event_year - birth_year < S_MIN_AGE) {
        snprintf(msg, cap, "citizen_id: the citizen must be at least %d years old", S_MIN_AGE);
        return false;
    }
    return true;
}

void act_citizen_key(const unsigned char secret[ACT_SECRET_BYTES], const char *id,
                     unsigned char out[ACT_HMAC_BYTES])
{
    crypto_auth_hmacsha256(out, (const unsigned char *)id, 12, secret);
}
