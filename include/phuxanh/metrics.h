/*
 * metrics.h - a process's counters, gauges and histograms, and the Prometheus
 * text they are shown as.
 *
 * A registry (px_metrics_t) holds families declared up front: a name, a help
 * line, a type and a fixed list of label names (histograms also fixed bucket
 * bounds). A family's series - one per set of label values - is looked up
 * once (px_metrics_series) and then updated with atomics: no lock and no
 * allocation on the hot path once a label set exists. The number of label
 * sets per family is bounded (PX_METRICS_MAX_SERIES); updates that find no
 * room for theirs are counted in px_metrics_label_sets_dropped_total instead
 * of growing the registry.
 *
 * Every RPC server has a registry (px_rpc_server_metrics) and serves it as
 * phuxanh.metrics.v1.Metrics/GetMetrics. px_metrics_render_sources renders
 * one or more GetMetricsResponse - fetched from several services - as one
 * Prometheus text exposition (format 0.0.4), with labels such as
 * service="roster" added to every sample.
 */
#ifndef PHUXANH_METRICS_H
#define PHUXANH_METRICS_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "phuxanh/metrics/v1/metrics.pb-c.h"
#include "phuxanh/status.h"

/* Families per registry: a service declares a handful; the bound keeps a mistake in a loop
 * from growing it. */
#define PX_METRICS_MAX_FAMILIES 64
/* Label names per family. */
#define PX_METRICS_MAX_LABELS 4
/* Label sets per family: enough for every method x code of a service; a label fed from input
 * (an unknown method name) cannot make the registry grow past it. */
#define PX_METRICS_MAX_SERIES 1000
/* Bucket bounds per histogram. */
#define PX_METRICS_MAX_BUCKETS 24
/* Names (metric and label), help lines and label values, in bytes. */
#define PX_METRICS_MAX_NAME 128
#define PX_METRICS_MAX_HELP 512
#define PX_METRICS_MAX_LABEL_VALUE 256
/* Collect hooks per registry. */
#define PX_METRICS_MAX_HOOKS 8

typedef struct px_metrics_t px_metrics_t;
typedef struct px_metrics_family_t px_metrics_family_t;
typedef struct px_metrics_series_t px_metrics_series_t;

px_metrics_t *px_metrics_new(void);
void px_metrics_destroy(px_metrics_t **self_p);

/* Declares a family. labels: the label names, NULL-terminated (NULL: none); histogram bounds:
 * nbounds finite upper bounds, strictly ascending (+Inf is implied). Returns NULL - and every
 * update through it is a no-op - when a name is not a Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*
 * for metrics, [a-zA-Z_][a-zA-Z0-9_]* not starting "__" for labels, "le" not a histogram's),
 * a label repeats, a bound is out of order, a bound is exceeded, or the name is taken.
 * Families live as long as the registry. Thread-safe, but meant for start-up. */
px_metrics_family_t *px_metrics_counter(px_metrics_t *self, const char *name, const char *help,
                                        const char *const *labels);
px_metrics_family_t *px_metrics_gauge(px_metrics_t *self, const char *name, const char *help,
                                      const char *const *labels);
px_metrics_family_t *px_metrics_histogram(px_metrics_t *self, const char *name, const char *help,
                                          const char *const *labels, const double *bounds,
                                          size_t nbounds);

/* The series of family for these label values (one per label name, in order; NULL reads as
 * ""; values may be NULL when the family has no labels). Made on first use; after that a
 * lookup takes no lock and allocates nothing, and the pointer stays valid as long as the
 * registry, so a caller may keep it. When the family is full, or a value is longer than
 * PX_METRICS_MAX_LABEL_VALUE or not UTF-8, a series that is never shown is returned and the
 * refusal counted. NULL only when family is NULL. Thread-safe. */
px_metrics_series_t *px_metrics_series(px_metrics_family_t *family, const char *const *values);

/* Updates, each one atomic; every one accepts NULL (a no-op). */
/* Counter or gauge: += 1. */
void px_metrics_inc(px_metrics_series_t *s);
/* Counter: += v for v >= 0 (a counter never goes down: anything else is ignored); gauge: += v. */
void px_metrics_add(px_metrics_series_t *s, double v);
/* Gauge: = v. Also a counter, to mirror a count kept elsewhere (see px_metrics_on_collect). */
void px_metrics_set(px_metrics_series_t *s, double v);
/* Histogram: one observation (into the first bucket whose bound is >= v). */
void px_metrics_observe(px_metrics_series_t *s, double v);

/* Runs fn(data, self) at the start of every snapshot: for figures kept elsewhere (an atomic in
 * another module) to be copied in with px_metrics_set. -1 when PX_METRICS_MAX_HOOKS are set. */
int px_metrics_on_collect(px_metrics_t *self, void (*fn)(void *data, px_metrics_t *metrics),
                          void *data);

/* Fills rep (initialised by the caller) with every family, in the order declared, the count of
 * refused label sets last. Every piece comes from alloc (NULL: malloc). RESOURCE_EXHAUSTED
 * when out of memory. Thread-safe: updates go on meanwhile (each number read once). */
px_code_t px_metrics_fill(px_metrics_t *self, ProtobufCAllocator *alloc,
                          Phuxanh__Metrics__V1__GetMetricsResponse *rep, px_status_t *st);
/* px_metrics_fill into a new message; free it with
 * protobuf_c_message_free_unpacked(&rep->base, NULL). NULL when out of memory. */
Phuxanh__Metrics__V1__GetMetricsResponse *px_metrics_snapshot(px_metrics_t *self);

/* One service's metrics and the labels to add to each of its samples. */
typedef struct {
    const Phuxanh__Metrics__V1__GetMetricsResponse *metrics;
    /* name, value, name, value, ..., NULL; may be NULL. They replace a sample's own label of
     * the same name. */
    const char *const *labels;
} px_metrics_source_t;

/* The Prometheus text exposition (version 0.0.4) of the sources: a family that several
 * sources have is written once (# HELP and # TYPE from the first), with the samples of all of
 * them; a source whose family of that name has another type is left out of it. What a
 * response holds is checked as input: families and labels whose names are not Prometheus
 * names, unknown types, and histogram samples whose counts do not match their bounds are
 * skipped. Returns a malloc'd NUL-terminated text (its length in *len when len is not NULL),
 * or NULL when out of memory. */
char *px_metrics_render_sources(const px_metrics_source_t *sources, size_t n, size_t *len);
/* The registry's own text (a snapshot rendered without added labels). */
char *px_metrics_render(px_metrics_t *self, size_t *len);

#endif
