/*
 * bench.h - what every benchmark client shares: options, timing and the result line.
 *
 * All clients of a comparison (ours, raw libzmq, gRPC C++) parse the same options, take time
 * from the same clock and compute percentiles the same way, so a difference in the figures is
 * a difference in the transports and not in the measuring. The C++ clients include this too.
 *
 * A client measures in two phases:
 *   latency:    one call in flight; `warmup` calls untimed, then `calls` calls each timed.
 *   throughput: `inflight` calls outstanding; `warmup_s` seconds uncounted, then calls
 *               completed during `seconds` seconds are counted.
 * and prints one line of key=value pairs (px_bench_report) that the benchmark runner parses.
 */
#ifndef PX_BENCH_H
#define PX_BENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds on what the command line may ask: enough for any sensible run, small enough that
 * the latency samples (8 bytes a call) and the payload fit comfortably in memory. */
#define PX_BENCH_MAX_CALLS 10000000L
#define PX_BENCH_MAX_SECONDS 600.0
#define PX_BENCH_MAX_INFLIGHT 1024L
#define PX_BENCH_MAX_PAYLOAD (1024L * 1024)

typedef struct {
    const char *endpoint; /* where the server listens, in the transport's own spelling */
    long size;            /* payload bytes */
    long warmup;          /* untimed calls before the latency phase */
    long calls;           /* timed calls; 0 skips the latency phase */
    double warmup_s;      /* uncounted seconds before the throughput phase */
    double seconds;       /* counted seconds; 0 skips the throughput phase */
    long inflight;        /* calls outstanding in the throughput phase */
} px_bench_opts_t;

typedef struct {
    long calls; /* timed calls in the latency phase (0: phase skipped) */
    double p50_us;
    double p99_us;
    double mean_us;
    double max_us;
    long inflight;  /* as measured in the throughput phase */
    long thr_calls; /* calls completed in the counted window (0 with thr_s 0: skipped) */
    double thr_s;   /* length of the counted window */
} px_bench_result_t;

/* Fills opts from argv (defaults first). On a bad or unknown option prints usage to stderr
 * and returns -1; on --help prints usage to stdout and returns 1; otherwise 0. */
int px_bench_opts_parse(px_bench_opts_t *opts, int argc, char **argv);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t px_bench_now_ns(void);

/* A payload of `size` bytes in a fixed pattern (so a reply can be checked), or NULL. */
unsigned char *px_bench_payload_new(size_t size);

/* Fills the latency figures of result from samples (nanoseconds), sorting them in place. */
void px_bench_latency_summarise(px_bench_result_t *result, int64_t *samples_ns, size_t n);

/* Prints the result line, e.g. "p50_us=27.1 p99_us=40.2 ... thr16=41234", on stdout. The
 * throughput key carries the in-flight count so a line cannot be misread. */
void px_bench_report(const px_bench_result_t *result);

#ifdef __cplusplus
}
#endif

#endif
