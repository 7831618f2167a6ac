/*
 * metrics.c - the metrics registry and the Prometheus text exposition.
 *
 * The hot path is an update from a worker thread, many times a second, so it
 * must cost a few atomic instructions: no lock, no allocation. Hence:
 *
 *  - values are atomics: counts of histogram buckets are plain 64-bit
 *    counters; counter, gauge and histogram sums are doubles, kept as their
 *    bits in a 64-bit atomic and added to with a compare-and-swap loop (under
 *    contention a few retries; never a lock);
 *  - a family's series are made once and never freed nor moved until the
 *    registry is destroyed, so a caller may keep a series pointer; looking one
 *    up by its label values reads an open-addressing index whose slots are
 *    published with release stores after the series is complete, so readers
 *    take no lock; only making a new series takes the family's mutex;
 *  - series per family are bounded (PX_METRICS_MAX_SERIES), and an update that
 *    finds no room goes to a series never shown, counted per family in
 *    px_metrics_label_sets_dropped_total: a label fed from input cannot grow
 *    the process.
 *
 * Histogram buckets are stored each on its own (not cumulative) and summed
 * when read, so a snapshot taken while observations go on is still a valid
 * histogram: cumulative counts never decrease and the +Inf bucket equals the
 * count. (The sum is read separately and may be one observation apart.)
 *
 * Rendering works from GetMetricsResponse messages, ours or fetched from other
 * services, so there is one renderer and it treats what it renders as input:
 * names are checked, label values and help escaped, bad samples skipped.
 */
#include "phuxanh/metrics.h"
#include "phuxanh/hash.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/text.h"

/* Slots of a family's index: a power of two, about twice the most series, so probe runs stay
 * short. */
#define S_INDEX_SIZE 2048
/* What the renderer takes from one response: far more than a service declares, bounded so a
 * broken peer cannot make the merge (quadratic in families) slow. */
#define S_RENDER_MAX_FAMILIES 256
#define S_RENDER_MAX_LABELS 16
#define S_RENDER_MAX_BUCKETS 256

typedef enum {
    S_COUNTER = PHUXANH__METRICS__V1__METRIC_TYPE__METRIC_TYPE_COUNTER,
    S_GAUGE = PHUXANH__METRICS__V1__METRIC_TYPE__METRIC_TYPE_GAUGE,
    S_HISTOGRAM = PHUXANH__METRICS__V1__METRIC_TYPE__METRIC_TYPE_HISTOGRAM,
} s_type_t;

struct px_metrics_series_t {
    px_metrics_family_t *family;
    char *values[PX_METRICS_MAX_LABELS];
    _Atomic uint64_t value;    /* counter or gauge: the bits of a double */
    _Atomic uint64_t sum;      /* histogram: the bits of a double */
    _Atomic uint64_t *buckets; /* histogram: nbounds + 1 counts, each its own, the last +Inf */
};

struct px_metrics_family_t {
    px_metrics_t *registry;
    char *name;
    char *help;
    s_type_t type;
    char *labels[PX_METRICS_MAX_LABELS];
    size_t nlabels;
    double bounds[PX_METRICS_MAX_BUCKETS];
    size_t nbounds;
    pthread_mutex_t lock; /* taken to make a series; never to find one */
    px_metrics_series_t *series[PX_METRICS_MAX_SERIES];
    _Atomic size_t nseries;
    _Atomic uint32_t index[S_INDEX_SIZE]; /* 0: empty; else 1 + the series' position */
    px_metrics_series_t discard;          /* where updates without a series of their own go */
};

typedef struct {
    void (*fn)(void *data, px_metrics_t *metrics);
    void *data;
} s_hook_t;

struct px_metrics_t {
    pthread_mutex_t lock; /* declaring families, setting hooks */
    px_metrics_family_t *families[PX_METRICS_MAX_FAMILIES];
    _Atomic size_t nfamilies;
    px_metrics_family_t *dropped; /* px_metrics_label_sets_dropped_total{family}, shown last */
    s_hook_t hooks[PX_METRICS_MAX_HOOKS];
    size_t nhooks;
};

/* ------------------------------------------------------------------ atomics of doubles */

static double s_dload(_Atomic uint64_t *a)
{
    uint64_t bits = atomic_load_explicit(a, memory_order_relaxed);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static void s_dstore(_Atomic uint64_t *a, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    atomic_store_explicit(a, bits, memory_order_relaxed);
}

static void s_dadd(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    for (;;) {
        double d;
        memcpy(&d, &old, sizeof d);
        d += v;
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        if (atomic_compare_exchange_weak_explicit(a, &old, bits, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            return;
        }
    }
}

/* ------------------------------------------------------------------ names */

static bool s_metric_name_ok(const char *s)
{
    size_t n = s ? strnlen(s, PX_METRICS_MAX_NAME + 1) : 0;
    if (n == 0 || n > PX_METRICS_MAX_NAME) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Label names are metric names without ':', and "__" starts names Prometheus keeps. */
static bool s_label_name_ok(const char *s)
{
    return s_metric_name_ok(s) && !strchr(s, ':') && strncmp(s, "__", 2) != 0;
}

/* ------------------------------------------------------------------ registry */

static void s_series_free(px_metrics_series_t *s)
{
    for (size_t i = 0; i < PX_METRICS_MAX_LABELS; i++) {
        free(s->values[i]);
    }
    free(s->buckets);
}

static void s_family_free(px_metrics_family_t *f)
{
    if (!f) {
        return;
    }
    size_t n = atomic_load(&f->nseries);
    for (size_t i = 0; i < n; i++) {
        s_series_free(f->series[i]);
        free(f->series[i]);
    }
    s_series_free(&f->discard);
    for (size_t i = 0; i < f->nlabels; i++) {
        free(f->labels[i]);
    }
    free(f->name);
    free(f->help);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static px_metrics_family_t *s_family_make(px_metrics_t *self, const char *name, const char *help,
                                          s_type_t type, const char *const *labels,
                                          const double *bounds, size_t nbounds);

px_metrics_t *px_metrics_new(void)
{
    px_metrics_t *self = calloc(1, sizeof *self);
    if (!self) {
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    atomic_init(&self->nfamilies, 0);
    static const char *const labels[] = {"family", NULL};
    self->dropped = s_family_make(
        self, "px_metrics_label_sets_dropped_total",
        "Updates not recorded because their family had no room for another label set (or a "
        "label value was too long or not UTF-8).",
        S_COUNTER, labels, NULL, 0);
    if (!self->dropped) {
        px_metrics_destroy(&self);
    }
    return self;
}

void px_metrics_destroy(px_metrics_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        px_metrics_t *self = *self_p;
        size_t n = atomic_load(&self->nfamilies);
        for (size_t i = 0; i < n; i++) {
            s_family_free(self->families[i]);
        }
        s_family_free(self->dropped);
        pthread_mutex_destroy(&self->lock);
        free(self);
        *self_p = NULL;
    }
}

/* Allocates a series of f with the given (checked) values; NULL when out of memory. */
static int s_series_init(px_metrics_family_t *f, px_metrics_series_t *s, const char *const *values)
{
    s->family = f;
    atomic_init(&s->value, 0);
    atomic_init(&s->sum, 0);
    for (size_t i = 0; i < f->nlabels; i++) {
        s->values[i] = strdup(values && values[i] ? values[i] : "");
        if (!s->values[i]) {
            return -1;
        }
    }
    if (f->type == S_HISTOGRAM) {
        s->buckets = calloc(f->nbounds + 1, sizeof *s->buckets);
        if (!s->buckets) {
            return -1;
        }
        for (size_t i = 0; i <= f->nbounds; i++) {
            atomic_init(&s->buckets[i], 0);
        }
    }
    return 0;
}

static uint64_t s_hash(const px_metrics_family_t *f, const char *const *values)
{
    uint64_t h = PX_HASH_SEED;
    for (size_t i = 0; i < f->nlabels; i++) {
        h = px_hash_str(values && values[i] ? values[i] : "", h);
        h = px_hash_byte(h, 0xff); /* ("a","bc") is not ("ab","c") */
    }
    return h;
}

static bool s_same(const px_metrics_series_t *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s->values[i], values && values[i] ? values[i] : "") != 0) {
            return false;
        }
    }
    return true;
}

static px_metrics_series_t *s_find(px_metrics_family_t *f, const char *const *values, uint64_t h)
{
    for (size_t k = 0; k < S_INDEX_SIZE; k++) {
        uint32_t v =
            atomic_load_explicit(&f->index[(h + k) & (S_INDEX_SIZE - 1)], memory_order_acquire);
        if (v == 0) {
            return NULL;
        }
        if (s_same(f->series[v - 1], values, f->nlabels)) {
            return f->series[v - 1];
        }
    }
    return NULL;
}

/* Makes the series (under f->lock); NULL when there is no room or memory. */
static px_metrics_series_t *s_series_add(px_metrics_family_t *f, const char *const *values,
                                         uint64_t h)
{
    size_t n = atomic_load_explicit(&f->nseries, memory_order_relaxed);
    if (n == PX_METRICS_MAX_SERIES) {
        return NULL;
    }
    px_metrics_series_t *s = calloc(1, sizeof *s);
    if (!s || s_series_init(f, s, values) != 0) {
        if (s) {
            s_series_free(s);
        }
        free(s);
        return NULL;
    }
    f->series[n] = s;
    size_t k = 0;
    while (atomic_load_explicit(&f->index[(h + k) & (S_INDEX_SIZE - 1)], memory_order_relaxed)) {
        k++; /* fewer than half the slots are used: an empty one is near */
    }
    /* Published complete: a reader that sees the slot sees the series it names. */
    atomic_store_explicit(&f->index[(h + k) & (S_INDEX_SIZE - 1)], (uint32_t)(n + 1),
                          memory_order_release);
    atomic_store_explicit(&f->nseries, n + 1, memory_order_release);
    return s;
}

static px_metrics_family_t *s_family_make(px_metrics_t *self, const char *name, const char *help,
                                          s_type_t type, const char *const *labels,
                                          const double *bounds, size_t nbounds)
{
    if (!s_metric_name_ok(name)) {
        return NULL;
    }
    help = help ? help : "";
    if (strlen(help) > PX_METRICS_MAX_HELP || !px_utf8_valid(help, strlen(help))) {
        return NULL;
    }
    size_t nlabels = 0;
    while (labels && labels[nlabels]) {
        const char *l = labels[nlabels];
        if (nlabels == PX_METRICS_MAX_LABELS || !s_label_name_ok(l) ||
            (type == S_HISTOGRAM && strcmp(l, "le") == 0)) {
            return NULL;
        }
        for (size_t j = 0; j < nlabels; j++) {
            if (strcmp(labels[j], l) == 0) {
                return NULL;
            }
        }
        nlabels++;
    }
    if (type == S_HISTOGRAM) {
        if (nbounds == 0 || nbounds > PX_METRICS_MAX_BUCKETS) {
            return NULL;
        }
        for (size_t i = 0; i < nbounds; i++) {
            if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
                return NULL;
            }
        }
    }
    px_metrics_family_t *f = calloc(1, sizeof *f);
    if (!f) {
        return NULL;
    }
    pthread_mutex_init(&f->lock, NULL);
    atomic_init(&f->nseries, 0);
    f->registry = self;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help);
    bool ok = f->name && f->help;
    for (size_t i = 0; ok && i < nlabels; i++) {
        ok = (f->labels[i] = strdup(labels[i])) != NULL;
        f->nlabels += ok;
    }
    if (type == S_HISTOGRAM) {
        memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
        f->nbounds = nbounds;
    }
    ok = ok && s_series_init(f, &f->discard, NULL) == 0;
    /* A family without labels has its one series from the start. */
    if (ok && nlabels == 0) {
        ok = s_series_add(f, NULL, s_hash(f, NULL)) != NULL;
    }
    if (!ok) {
        s_family_free(f);
        return NULL;
    }
    return f;
}

static px_metrics_family_t *s_declare(px_metrics_t *self, const char *name, const char *help,
                                      s_type_t type, const char *const *labels,
                                      const double *bounds, size_t nbounds)
{
    if (!self) {
        return NULL;
    }
    px_metrics_family_t *f = NULL;
    pthread_mutex_lock(&self->lock);
    size_t n = atomic_load_explicit(&self->nfamilies, memory_order_relaxed);
    bool taken = !name || (self->dropped && strcmp(self->dropped->name, name) == 0);
    for (size_t i = 0; !taken && i < n; i++) {
        taken = strcmp(self->families[i]->name, name) == 0;
    }
    if (!taken && n < PX_METRICS_MAX_FAMILIES) {
        f = s_family_make(self, name, help, type, labels, bounds, nbounds);
        if (f) {
            self->families[n] = f;
            atomic_store_explicit(&self->nfamilies, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&self->lock);
    return f;
}

px_metrics_family_t *px_metrics_counter(px_metrics_t *self, const char *name, const char *help,
                                        const char *const *labels)
{
    return s_declare(self, name, help, S_COUNTER, labels, NULL, 0);
}

px_metrics_family_t *px_metrics_gauge(px_metrics_t *self, const char *name, const char *help,
                                      const char *const *labels)
{
    return s_declare(self, name, help, S_GAUGE, labels, NULL, 0);
}

px_metrics_family_t *px_metrics_histogram(px_metrics_t *self, const char *name, const char *help,
                                          const char *const *labels, const double *bounds,
                                          size_t nbounds)
{
    if (!bounds) {
        return NULL;
    }
    return s_declare(self, name, help, S_HISTOGRAM, labels, bounds, nbounds);
}

px_metrics_series_t *px_metrics_series(px_metrics_family_t *f, const char *const *values)
{
    if (!f) {
        return NULL;
    }
    if (f->nlabels == 0) {
        return f->series[0];
    }
    uint64_t h = s_hash(f, values);
    px_metrics_series_t *s = s_find(f, values, h);
    if (s) {
        return s;
    }
    bool acceptable = true;
    for (size_t i = 0; i < f->nlabels && acceptable; i++) {
        const char *v = values && values[i] ? values[i] : "";
        size_t len = strnlen(v, PX_METRICS_MAX_LABEL_VALUE + 1);
        acceptable = len <= PX_METRICS_MAX_LABEL_VALUE && px_utf8_valid(v, len);
    }
    if (acceptable) {
        pthread_mutex_lock(&f->lock);
        s = s_find(f, values, h); /* made by another thread meanwhile? */
        if (!s) {
            s = s_series_add(f, values, h);
        }
        pthread_mutex_unlock(&f->lock);
    }
    if (!s) {
        px_metrics_t *r = f->registry;
        if (f != r->dropped) { /* the count of refusals must not recurse into itself */
            const char *name[1] = {f->name};
            px_metrics_inc(px_metrics_series(r->dropped, name));
        }
        s = &f->discard;
    }
    return s;
}

/* ------------------------------------------------------------------ updates */

void px_metrics_inc(px_metrics_series_t *s)
{
    px_metrics_add(s, 1.0);
}

void px_metrics_add(px_metrics_series_t *s, double v)
{
    if (!s || s->family->type == S_HISTOGRAM || (s->family->type == S_COUNTER && !(v >= 0))) {
        return;
    }
    s_dadd(&s->value, v);
}

void px_metrics_set(px_metrics_series_t *s, double v)
{
    if (!s || s->family->type == S_HISTOGRAM) {
        return;
    }
    s_dstore(&s->value, v);
}

void px_metrics_observe(px_metrics_series_t *s, double v)
{
    if (!s || s->family->type != S_HISTOGRAM) {
        return;
    }
    const px_metrics_family_t *f = s->family;
    size_t i = 0;
    while (i < f->nbounds && !(v <= f->bounds[i])) {
        i++; /* le is inclusive; NaN lands in +Inf */
    }
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    s_dadd(&s->sum, v);
}

int px_metrics_on_collect(px_metrics_t *self, void (*fn)(void *data, px_metrics_t *metrics),
                          void *data)
{
    int rc = -1;
    pthread_mutex_lock(&self->lock);
    if (self->nhooks < PX_METRICS_MAX_HOOKS) {
        self->hooks[self->nhooks++] = (s_hook_t){fn, data};
        rc = 0;
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

/* ------------------------------------------------------------------ snapshot */

static void *s_zalloc(ProtobufCAllocator *a, size_t n)
{
    void *p = a ? a->alloc(a->allocator_data, n) : malloc(n);
    if (p) {
        memset(p, 0, n);
    }
    return p;
}

static char *s_strdup(ProtobufCAllocator *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = s_zalloc(a, n);
    if (p) {
        memcpy(p, s, n);
    }
    return p;
}

/* Each piece is hung on the message as soon as it is made, with its count, so that a message
 * left half-filled by a failed allocation is still whole enough to be freed. */
static int s_fill_sample(ProtobufCAllocator *a, const px_metrics_family_t *f,
                         px_metrics_series_t *s, Phuxanh__Metrics__V1__Sample *out)
{
    if (f->nlabels) {
        out->labels = s_zalloc(a, f->nlabels * sizeof *out->labels);
        if (!out->labels) {
            return -1;
        }
        for (size_t i = 0; i < f->nlabels; i++) {
            Phuxanh__Metrics__V1__Label *l = s_zalloc(a, sizeof *l);
            if (!l) {
                return -1;
            }
            phuxanh__metrics__v1__label__init(l);
            out->labels[out->n_labels++] = l;
            if (!(l->name = s_strdup(a, f->labels[i])) || !(l->value = s_strdup(a, s->values[i]))) {
                return -1;
            }
        }
    }
    if (f->type != S_HISTOGRAM) {
        out->value = s_dload(&s->value);
        return 0;
    }
    out->cumulative_counts = s_zalloc(a, f->nbounds * sizeof *out->cumulative_counts);
    if (!out->cumulative_counts) {
        return -1;
    }
    uint64_t total = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        total += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        if (i < f->nbounds) {
            out->cumulative_counts[out->n_cumulative_counts++] = total;
        }
    }
    out->count = total;
    out->sum = s_dload(&s->sum);
    return 0;
}

static int s_fill_family(ProtobufCAllocator *a, px_metrics_family_t *f,
                         Phuxanh__Metrics__V1__MetricFamily *out)
{
    out->type = (Phuxanh__Metrics__V1__MetricType)f->type;
    if (!(out->name = s_strdup(a, f->name)) || !(out->help = s_strdup(a, f->help))) {
        return -1;
    }
    if (f->nbounds) {
        out->bucket_bounds = s_zalloc(a, f->nbounds * sizeof *out->bucket_bounds);
        if (!out->bucket_bounds) {
            return -1;
        }
        memcpy(out->bucket_bounds, f->bounds, f->nbounds * sizeof *f->bounds);
        out->n_bucket_bounds = f->nbounds;
    }
    size_t n = atomic_load_explicit(&f->nseries, memory_order_acquire);
    if (n == 0) {
        return 0;
    }
    out->samples = s_zalloc(a, n * sizeof *out->samples);
    if (!out->samples) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        Phuxanh__Metrics__V1__Sample *smp = s_zalloc(a, sizeof *smp);
        if (!smp) {
            return -1;
        }
        phuxanh__metrics__v1__sample__init(smp);
        out->samples[out->n_samples++] = smp;
        if (s_fill_sample(a, f, f->series[i], smp) != 0) {
            return -1;
        }
    }
    return 0;
}

px_code_t px_metrics_fill(px_metrics_t *self, ProtobufCAllocator *alloc,
                          Phuxanh__Metrics__V1__GetMetricsResponse *rep, px_status_t *st)
{
    s_hook_t hooks[PX_METRICS_MAX_HOOKS];
    pthread_mutex_lock(&self->lock);
    size_t nhooks = self->nhooks;
    memcpy(hooks, self->hooks, nhooks * sizeof *hooks);
    pthread_mutex_unlock(&self->lock);
    for (size_t i = 0; i < nhooks; i++) {
        hooks[i].fn(hooks[i].data, self);
    }
    size_t n = atomic_load_explicit(&self->nfamilies, memory_order_acquire);
    rep->families = s_zalloc(alloc, (n + 1) * sizeof *rep->families);
    if (!rep->families) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (size_t i = 0; i <= n; i++) {
        Phuxanh__Metrics__V1__MetricFamily *f = s_zalloc(alloc, sizeof *f);
        if (!f) {
            return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        }
        phuxanh__metrics__v1__metric_family__init(f);
        rep->families[rep->n_families++] = f;
        if (s_fill_family(alloc, i < n ? self->families[i] : self->dropped, f) != 0) {
            return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        }
    }
    return PX_OK;
}

Phuxanh__Metrics__V1__GetMetricsResponse *px_metrics_snapshot(px_metrics_t *self)
{
    Phuxanh__Metrics__V1__GetMetricsResponse *rep = malloc(sizeof *rep);
    if (!rep) {
        return NULL;
    }
    phuxanh__metrics__v1__get_metrics_response__init(rep);
    px_status_t st;
    if (px_metrics_fill(self, NULL, rep, &st) != PX_OK) {
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        return NULL;
    }
    return rep;
}

/* ------------------------------------------------------------------ text exposition */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} s_buf_t;

static void s_put(s_buf_t *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void s_puts(s_buf_t *b, const char *s)
{
    s_put(b, s, strlen(s));
}

/* Label values escape '\', '"' and newline; help text '\' and newline (the format's rules). */
static void s_put_escaped(s_buf_t *b, const char *s, bool quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\') {
            s_puts(b, "\\\\");
        } else if (*p == '\n') {
            s_puts(b, "\\n");
        } else if (*p == '"' && quote) {
            s_puts(b, "\\\"");
        } else {
            s_put(b, p, 1);
        }
    }
}

/* The shortest of %.15g and %.17g that reads back as the same double: "0.25", not
 * "0.25000000000000000"; and the format's spellings of the infinities and NaN. */
static void s_format_value(char *out, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
    } else if (isinf(v)) {
        snprintf(out, cap, "%s", v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, cap, "%.15g", v);
        if (strtod(out, NULL) != v) {
            snprintf(out, cap, "%.17g", v);
        }
    }
}

static void s_put_value(s_buf_t *b, double v)
{
    char tmp[40];
    s_format_value(tmp, sizeof tmp, v);
    s_puts(b, tmp);
}

static void s_put_u64(s_buf_t *b, uint64_t v)
{
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    s_puts(b, tmp);
}

static bool s_text_ok(const char *s)
{
    return s && px_utf8_valid(s, strlen(s));
}

static bool s_family_ok(const Phuxanh__Metrics__V1__MetricFamily *f)
{
    if (!s_metric_name_ok(f->name)) {
        return false;
    }
    switch ((int)f->type) {
    case S_COUNTER:
    case S_GAUGE:
        return true;
    case S_HISTOGRAM:
        if (f->n_bucket_bounds > S_RENDER_MAX_BUCKETS) {
            return false;
        }
        for (size_t i = 0; i < f->n_bucket_bounds; i++) {
            if (!isfinite(f->bucket_bounds[i]) ||
                (i > 0 && !(f->bucket_bounds[i] > f->bucket_bounds[i - 1]))) {
                return false;
            }
        }
        return true;
    default:
        return false;
    }
}

/* Is name among the added labels? */
static bool s_extra_has(const char *const *extra, const char *name)
{
    for (size_t i = 0; extra && extra[i] && extra[i + 1]; i += 2) {
        if (strcmp(extra[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* Can this sample be written: sound label names, none twice, UTF-8 values, histogram counts
 * that match the bounds and never decrease? */
static bool s_sample_ok(const Phuxanh__Metrics__V1__MetricFamily *f,
                        const Phuxanh__Metrics__V1__Sample *s)
{
    if (s->n_labels > S_RENDER_MAX_LABELS) {
        return false;
    }
    for (size_t i = 0; i < s->n_labels; i++) {
        const Phuxanh__Metrics__V1__Label *l = s->labels[i];
        if (!l || !s_label_name_ok(l->name) || !s_text_ok(l->value)) {
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->labels[j]->name, l->name) == 0) {
                return false;
            }
        }
    }
    if ((int)f->type == S_HISTOGRAM) {
        if (s->n_cumulative_counts != f->n_bucket_bounds) {
            return false;
        }
        for (size_t i = 0; i < s->n_cumulative_counts; i++) {
            uint64_t next = i + 1 < s->n_cumulative_counts ? s->cumulative_counts[i + 1] : s->count;
            if (s->cumulative_counts[i] > next) {
                return false;
            }
        }
    }
    return true;
}

/* {extra..., own..., le="..."}; nothing when there is no label at all. */
static void s_put_labels(s_buf_t *b, const Phuxanh__Metrics__V1__MetricFamily *f,
                         const Phuxanh__Metrics__V1__Sample *s, const char *const *extra,
                         const char *le)
{
    bool first = true;
    for (size_t i = 0; extra && extra[i] && extra[i + 1]; i += 2) {
        s_puts(b, first ? "{" : ",");
        first = false;
        s_puts(b, extra[i]);
        s_puts(b, "=\"");
        s_put_escaped(b, extra[i + 1], true);
        s_puts(b, "\"");
    }
    for (size_t i = 0; i < s->n_labels; i++) {
        const char *name = s->labels[i]->name;
        if (s_extra_has(extra, name) || ((int)f->type == S_HISTOGRAM && strcmp(name, "le") == 0)) {
            continue;
        }
        s_puts(b, first ? "{" : ",");
        first = false;
        s_puts(b, name);
        s_puts(b, "=\"");
        s_put_escaped(b, s->labels[i]->value, true);
        s_puts(b, "\"");
    }
    if (le) {
        s_puts(b, first ? "{" : ",");
        first = false;
        s_puts(b, "le=\"");
        s_puts(b, le);
        s_puts(b, "\"");
    }
    if (!first) {
        s_puts(b, "}");
    }
}

static void s_put_samples(s_buf_t *b, const Phuxanh__Metrics__V1__MetricFamily *f,
                          const char *const *extra)
{
    for (size_t i = 0; i < f->n_samples; i++) {
        const Phuxanh__Metrics__V1__Sample *s = f->samples[i];
        if (!s || !s_sample_ok(f, s)) {
            continue;
        }
        if ((int)f->type != S_HISTOGRAM) {
            s_puts(b, f->name);
            s_put_labels(b, f, s, extra, NULL);
            s_puts(b, " ");
            s_put_value(b, s->value);
            s_puts(b, "\n");
            continue;
        }
        for (size_t k = 0; k <= f->n_bucket_bounds; k++) {
            char le[40];
            s_format_value(le, sizeof le, k < f->n_bucket_bounds ? f->bucket_bounds[k] : INFINITY);
            s_puts(b, f->name);
            s_puts(b, "_bucket");
            s_put_labels(b, f, s, extra, le);
            s_puts(b, " ");
            s_put_u64(b, k < f->n_bucket_bounds ? s->cumulative_counts[k] : s->count);
            s_puts(b, "\n");
        }
        s_puts(b, f->name);
        s_puts(b, "_sum");
        s_put_labels(b, f, s, extra, NULL);
        s_puts(b, " ");
        s_put_value(b, s->sum);
        s_puts(b, "\n");
        s_puts(b, f->name);
        s_puts(b, "_count");
        s_put_labels(b, f, s, extra, NULL);
        s_puts(b, " ");
        s_put_u64(b, s->count);
        s_puts(b, "\n");
    }
}

static size_t s_nfamilies(const px_metrics_source_t *src)
{
    if (!src->metrics) {
        return 0;
    }
    size_t n = src->metrics->n_families;
    return n > S_RENDER_MAX_FAMILIES ? S_RENDER_MAX_FAMILIES : n;
}

static const Phuxanh__Metrics__V1__MetricFamily *s_family_at(const px_metrics_source_t *src,
                                                             size_t i)
{
    const Phuxanh__Metrics__V1__MetricFamily *f = src->metrics->families[i];
    return f && s_family_ok(f) ? f : NULL;
}

static bool s_extra_ok(const char *const *extra)
{
    for (size_t i = 0; extra && extra[i]; i += 2) {
        if (!extra[i + 1] || !s_label_name_ok(extra[i]) || !s_text_ok(extra[i + 1]) ||
            strcmp(extra[i], "le") == 0) {
            return false;
        }
    }
    return true;
}

/* Was a family of this name written already (an earlier source, or earlier in this one)? */
static bool s_written(const px_metrics_source_t *sources, size_t si, size_t fi, const char *name)
{
    for (size_t s = 0; s <= si; s++) {
        if (!s_extra_ok(sources[s].labels)) {
            continue; /* left out whole */
        }
        size_t n = s == si ? fi : s_nfamilies(&sources[s]);
        for (size_t i = 0; i < n; i++) {
            const Phuxanh__Metrics__V1__MetricFamily *f = s_family_at(&sources[s], i);
            if (f && strcmp(f->name, name) == 0) {
                return true;
            }
        }
    }
    return false;
}

char *px_metrics_render_sources(const px_metrics_source_t *sources, size_t n, size_t *len)
{
    s_buf_t b = {0};
    s_put(&b, "", 0); /* an empty exposition is still a string */
    for (size_t si = 0; si < n; si++) {
        if (!s_extra_ok(sources[si].labels)) {
            continue; /* a programmer's mistake: nothing of this source could be written */
        }
        for (size_t fi = 0; fi < s_nfamilies(&sources[si]); fi++) {
            const Phuxanh__Metrics__V1__MetricFamily *f = s_family_at(&sources[si], fi);
            if (!f || s_written(sources, si, fi, f->name)) {
                continue;
            }
            if (s_text_ok(f->help) && *f->help) {
                s_puts(&b, "# HELP ");
                s_puts(&b, f->name);
                s_puts(&b, " ");
                s_put_escaped(&b, f->help, false);
                s_puts(&b, "\n");
            }
            s_puts(&b, "# TYPE ");
            s_puts(&b, f->name);
            s_puts(&b, (int)f->type == S_COUNTER ? " counter\n"
                       : (int)f->type == S_GAUGE ? " gauge\n"
                                                 : " histogram\n");
            s_put_samples(&b, f, sources[si].labels);
            /* The same family in the sources after this one: its samples go here too, so the
             * family stays one group. */
            for (size_t sj = si; sj < n; sj++) {
                if (!s_extra_ok(sources[sj].labels)) {
                    continue;
                }
                for (size_t fj = sj == si ? fi + 1 : 0; fj < s_nfamilies(&sources[sj]); fj++) {
                    const Phuxanh__Metrics__V1__MetricFamily *g = s_family_at(&sources[sj], fj);
                    if (g && g->type == f->type && strcmp(g->name, f->name) == 0) {
                        s_put_samples(&b, g, sources[sj].labels);
                    }
                }
            }
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len) {
        *len = b.len;
    }
    return b.p;
}

char *px_metrics_render(px_metrics_t *self, size_t *len)
{
    Phuxanh__Metrics__V1__GetMetricsResponse *snap = px_metrics_snapshot(self);
    if (!snap) {
        return NULL;
    }
    px_metrics_source_t src = {snap, NULL};
    char *text = px_metrics_render_sources(&src, 1, len);
    protobuf_c_message_free_unpacked(&snap->base, NULL);
    return text;
}
