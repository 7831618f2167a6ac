/*
 * test_pxctl_width.c - pxctl's display width (services/pxctl/term.c): Vietnamese names
 * take as many columns as a terminal gives them, whatever their bytes, so tables line up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "px_test.h"
#include "pxctl.h"

static void test_ascii(void)
{
    PX_CHECK_INT_EQ(pxctl_width(""), 0);
    PX_CHECK_INT_EQ(pxctl_width("725"), 3);
    PX_CHECK_INT_EQ(pxctl_width("Chợ"), 3);
}

/* Precomposed (NFC), as the demo data and most keyboards write them: one column per letter,
 * though the letters take 2 or 3 bytes. */
static void test_vietnamese_nfc(void)
{
    PX_CHECK_INT_EQ(strlen("Lái Thiêu"), 11);
    PX_CHECK_INT_EQ(pxctl_width("Lái Thiêu"), 9);
    PX_CHECK_INT_EQ(pxctl_width("Bình Chuẩn"), 10);
    PX_CHECK_INT_EQ(pxctl_width("Thuận Giao"), 10);
    PX_CHECK_INT_EQ(pxctl_width("Đông Nhì"), 8);
    PX_CHECK_INT_EQ(pxctl_width("Phủ xanh ✓"), 10);
}

/* Decomposed (NFD): a base letter and combining marks, which take no column. */
static void test_vietnamese_nfd(void)
{
    /* "Lái Thiêu" as a + U+0301, e + U+0302 */
    const char *nfd = "La\xcc\x81i Thie\xcc\x82u";
    PX_CHECK_INT_EQ(pxctl_width(nfd), 9);
    /* "Thuận": u, a + U+0302 + U+0323 (two marks on one letter) */
    PX_CHECK_INT_EQ(pxctl_width("Thua\xcc\x82\xcc\xa3n"), 5);
}

static void test_wide_and_controls(void)
{
    PX_CHECK_INT_EQ(pxctl_width("越南"), 4);               /* East Asian wide: two each */
    PX_CHECK_INT_EQ(pxctl_width("a\tb"), 2);               /* a control takes none */
    PX_CHECK_INT_EQ(pxctl_width("\033[1;32m✓\033[0m"), 1); /* colour takes none */
    PX_CHECK_INT_EQ(pxctl_width("\xff"
                                "a"),
                    2);                          /* a bad byte shows as one U+FFFD */
    PX_CHECK_INT_EQ(pxctl_width("\xe1\xba"), 1); /* a cut sequence at the end: one */
}

static void test_pad(void)
{
    char buf[64];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    PX_REQUIRE(f);
    pxctl_pad(f, "Lái Thiêu", 12, false);
    fputc('|', f);
    pxctl_pad(f, "42", 5, true);
    fclose(f);
    PX_CHECK_STR_EQ(buf, "Lái Thiêu   |   42");
}

static const px_test_case_t s_cases[] = {
    {"ascii", test_ascii},
    {"vietnamese_nfc", test_vietnamese_nfc},
    {"vietnamese_nfd", test_vietnamese_nfd},
    {"wide_and_controls", test_wide_and_controls},
    {"pad", test_pad},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
