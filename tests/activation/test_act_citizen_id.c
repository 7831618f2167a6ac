/*
 * test_act_citizen_id.c - the CCCD number check: length and digits, the 63 province-of-birth
 * codes, the century-and-sex digit and the minimum age; messages name the field and never
 * carry the number; the key is a keyed hash that depends on the secret.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "activation.h"
#include "px_test.h"

static bool s_ok(const char *id, int year, char *msg)
{
    return act_citizen_id_check(id, year, msg, 200);
}

static void test_valid_numbers_pass(void)
{
    char msg[200];
    PX_CHECK(s_ok("074090001234", 2023, msg)); /* Bình Dương, male, 1990 */
    PX_CHECK(s_ok("001195012345", 2023, msg)); /* Hà Nội, female, 1950 */
    PX_CHECK(s_ok("096309000001", 2023, msg)); /* Cà Mau, female, 2009: 14 in 2023 */
    PX_CHECK(s_ok("079200000001", 2014, msg)); /* 2000, 14 in 2014 */
}

static void test_length_and_digits(void)
{
    char msg[200];
    const char *bad[] = {
        "", "07409000123", "0740900012345", "07409000123a", "0740 9000123", "+74090001234"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        PX_CHECK(!s_ok(bad[i], 2023, msg));
        PX_CHECK(strncmp(msg, "citizen_id: ", 12) == 0);
    }
    PX_CHECK(!act_citizen_id_check(NULL, 2023, msg, sizeof msg));
}

static void test_province_codes(void)
{
    int valid = 0;
    for (int p = 0; p < 1000; p++) {
        char code[4];
        snprintf(code, sizeof code, "%03d", p);
        valid += act_province_code_valid(code);
    }
    PX_CHECK_INT_EQ(valid, 63);
    char msg[200];
    const char *bad[] = {"000090001234", "003090001234", "097090001234",
                         "099090001234", "100090001234", "073090001234"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        PX_CHECK(!s_ok(bad[i], 2023, msg));
        PX_CHECK(strstr(msg, "province") != NULL);
    }
    PX_CHECK(act_province_code_valid("079") && act_province_code_valid("092"));
}

static void test_age_and_century(void)
{
    char msg[200];
    PX_CHECK(!s_ok("074210123456", 2023, msg)); /* born 2010: 13 in 2023 */
    PX_CHECK(strstr(msg, "at least 14") != NULL);
    PX_CHECK(s_ok("074209123456", 2023, msg));  /* born 2009 */
    PX_CHECK(!s_ok("074230123456", 2023, msg)); /* born 2030 */
    PX_CHECK(!s_ok("074400123456", 2023, msg)); /* 2100s */
    PX_CHECK(!s_ok("074800123456", 2023, msg)); /* 2300s */
    PX_CHECK(s_ok("074199123456", 2023, msg));  /* female, 1999 */
}

static void test_messages_never_carry_the_number(void)
{
    const char *ids[] = {"07409000123", "003090001234", "074210123456", "074230123456",
                         "07409000123x"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char msg[200];
        PX_CHECK(!s_ok(ids[i], 2023, msg));
        PX_CHECK(strstr(msg, ids[i]) == NULL);
        /* Not even its tail. */
        PX_CHECK(strstr(msg, ids[i] + 6) == NULL);
    }
}

static void test_key_depends_on_secret(void)
{
    PX_REQUIRE(sodium_init() >= 0);
    unsigned char s1[ACT_SECRET_BYTES] = {1}, s2[ACT_SECRET_BYTES] = {2};
    unsigned char a[ACT_HMAC_BYTES], b[ACT_HMAC_BYTES], c[ACT_HMAC_BYTES], d[ACT_HMAC_BYTES];
    act_citizen_key(s1, "074090001234", a);
    act_citizen_key(s1, "074090001234", b);
    act_citizen_key(s2, "074090001234", c);
    act_citizen_key(s1, "074090001235", d);
    PX_CHECK(memcmp(a, b, sizeof a) == 0);
    PX_CHECK(memcmp(a, c, sizeof a) != 0);
    PX_CHECK(memcmp(a, d, sizeof a) != 0);
}

static const px_test_case_t s_cases[] = {
    {"valid_numbers_pass", test_valid_numbers_pass},
    {"length_and_digits", test_length_and_digits},
    {"province_codes", test_province_codes},
    {"age_and_century", test_age_and_century},
    {"messages_never_carry_the_number", test_messages_never_carry_the_number},
    {"key_depends_on_secret", test_key_depends_on_secret},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
