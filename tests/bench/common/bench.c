/*
 * bench.c - options, clock, percentiles and the result line shared by the benchmark clients.
 *
 * Options live in a table (name, kind, where in px_bench_opts_t, bounds) so every client takes
 * the same flags with the same limits. Percentiles are nearest-rank over all samples, sorted
 * once: no histogram buckets whose width would blur a few microseconds of difference.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { S_STRING, S_LONG, S_DOUBLE } s_kind_t;

typedef struct {
    const char *flag;
    s_kind_t kind;
    size_t offset;
    double min;
    double max;
    const char *help;
} s_option_t;

static const s_option_t s_options[] = {
    {"--endpoint", S_STRING, offsetof(px_bench_opts_t, endpoint), 0, 0,
     "server address (required)"},
    {"--size", S_LONG, offsetof(px_bench_opts_t, size), 1, PX_BENCH_MAX_PAYLOAD,
     "payload bytes (200)"},
    {"--warmup", S_LONG, offsetof(px_bench_opts_t, warmup), 0, PX_BENCH_MAX_CALLS,
     "untimed calls before the latency phase (2000)"},
    {"--calls", S_LONG, offsetof(px_bench_opts_t, calls), 0, PX_BENCH_MAX_CALLS,
     "timed calls with one in flight; 0 skips (20000)"},
    {"--warmup-seconds", S_DOUBLE, offsetof(px_bench_opts_t, warmup_s), 0, PX_BENCH_MAX_SECONDS,
     "uncounted seconds before the throughput phase (1)"},
    {"--seconds", S_DOUBLE, offsetof(px_bench_opts_t, seconds), 0, PX_BENCH_MAX_SECONDS,
     "counted seconds of the throughput phase; 0 skips (3)"},
    {"--inflight", S_LONG, offsetof(px_bench_opts_t, inflight), 1, PX_BENCH_MAX_INFLIGHT,
     "calls outstanding in the throughput phase (16)"},
};

#define S_NOPTIONS (sizeof(s_options) / sizeof(s_options[0]))

static void s_usage(FILE *out, const char *prog)
{
    fprintf(out, "usage: %s --endpoint ADDR [options]\n", prog);
    for (size_t i = 0; i < S_NOPTIONS; i++) {
        fprintf(out, "  %-18s %s\n", s_options[i].flag, s_options[i].help);
    }
}

static int s_set(px_bench_opts_t *opts, const s_option_t *opt, const char *text)
{
    char *field = (char *)opts + opt->offset;
    char *end = NULL;
    errno = 0;
    if (opt->kind == S_STRING) {
        if (*text == '\0') {
            return -1;
        }
        *(const char **)field = text;
        return 0;
    }
    if (opt->kind == S_LONG) {
        long v = strtol(text, &end, 10);
        if (errno || end == text || *end || v < (long)opt->min || v > (long)opt->max) {
            return -1;
        }
        *(long *)field = v;
        return 0;
    }
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= opt->min && v <= opt->max)) {
        return -1;
    }
    *(double *)field = v;
    return 0;
}

int px_bench_opts_parse(px_bench_opts_t *opts, int argc, char **argv)
{
    const char *prog = argc > 0 ? argv[0] : "bench";
    *opts = (px_bench_opts_t){
        .endpoint = NULL,
        .size = 200,
        .warmup = 2000,
        .calls = 20000,
        .warmup_s = 1.0,
        .seconds = 3.0,
        .inflight = 16,
    };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout, prog);
            return 1;
        }
        const s_option_t *opt = NULL;
        for (size_t k = 0; k < S_NOPTIONS; k++) {
            if (strcmp(argv[i], s_options[k].flag) == 0) {
                opt = &s_options[k];
            }
        }
        if (!opt) {
            fprintf(stderr, "%s: unknown option %s\n", prog, argv[i]);
            s_usage(stderr, prog);
            return -1;
        }
        if (i + 1 >= argc || s_set(opts, opt, argv[i + 1]) != 0) {
            fprintf(stderr, "%s: %s needs a value in [%g, %g]\n", prog, opt->flag, opt->min,
                    opt->max);
            return -1;
        }
        i++;
    }
    if (!opts->endpoint) {
        fprintf(stderr, "%s: --endpoint is required\n", prog);
        s_usage(stderr, prog);
        return -1;
    }
    return 0;
}

int64_t px_bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

unsigned char *px_bench_payload_new(size_t size)
{
    unsigned char *p = malloc(size ? size : 1);
    if (p) {
        for (size_t i = 0; i < size; i++) {
            p[i] = (unsigned char)(i * 31 + 7);
        }
    }
    return p;
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least q of all samples at or below it. */
static double s_rank_us(const int64_t *sorted, size_t n, double q)
{
    double want = q * (double)n;
    size_t rank = (size_t)want;
    if ((double)rank < want) {
        rank++;
    }
    if (rank < 1) {
        rank = 1;
    }
    if (rank > n) {
        rank = n;
    }
    return (double)sorted[rank - 1] / 1000.0;
}

void px_bench_latency_summarise(px_bench_result_t *result, int64_t *samples_ns, size_t n)
{
    result->calls = (long)n;
    if (n == 0) {
        return;
    }
    qsort(samples_ns, n, sizeof(samples_ns[0]), s_cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += (double)samples_ns[i];
    }
    result->p50_us = s_rank_us(samples_ns, n, 0.50);
    result->p99_us = s_rank_us(samples_ns, n, 0.99);
    result->mean_us = sum / (double)n / 1000.0;
    result->max_us = (double)samples_ns[n - 1] / 1000.0;
}

void px_bench_report(const px_bench_result_t *r)
{
    char line[512];
    size_t len = 0;
    line[0] = '\0';
    if (r->calls > 0) {
        len += (size_t)snprintf(line + len, sizeof line - len,
                                "p50_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f lat_calls=%ld ",
                                r->p50_us, r->p99_us, r->mean_us, r->max_us, r->calls);
    }
    if (r->thr_s > 0 && len < sizeof line) {
        len +=
            (size_t)snprintf(line + len, sizeof line - len, "thr%ld=%.0f thr_calls=%ld thr_s=%.2f ",
                             r->inflight, (double)r->thr_calls / r->thr_s, r->thr_calls, r->thr_s);
    }
    if (len > 0 && len < sizeof line) {
        line[len - 1] = '\0'; /* the trailing space */
    }
    printf("%s\n", line);
    fflush(stdout);
}
