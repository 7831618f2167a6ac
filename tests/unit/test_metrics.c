/*
 * test_metrics.c - the metrics registry (services/core/metrics.c): the exact
 * Prometheus text of a small registry (escaping of label values and help,
 * histogram buckets with le="+Inf", _sum and _count); families refused when
 * their names or bounds are not sound; label sets bounded, the refusals
 * counted; exact totals under concurrent updates and series made from many
 * threads at once; the merge of several services' answers with a label added
 * to each, and what a malformed answer loses.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/metrics.h"
#include "px_test.h"

#define DROPPED_HELP                                                                               \
    "# HELP px_metrics_label_sets_dropped_total Updates not recorded because their family had "    \
    "no room for another label set (or a label value was too long or not UTF-8).\n"                \
    "# TYPE px_metrics_label_sets_dropped_total counter\n"

static const char *const s_kind[] = {"kind", NULL};
static const char *const s_method[] = {"method", NULL};

/* The registry of the exact-text test. */
static px_metrics_t *s_small(void)
{
    px_metrics_t *m = px_metrics_new();
    if (!m) {
        return NULL;
    }
    px_metrics_family_t *c =
        px_metrics_counter(m, "px_test_things_total", "Things done, by kind.", s_kind);
    px_metrics_add(px_metrics_series(c, (const char *const[]){"a"}), 2);
    px_metrics_inc(px_metrics_series(c, (const char *const[]){"a"}));
    px_metrics_inc(px_metrics_series(c, (const char *const[]){"quote\"back\\slash\nnewline"}));
    px_metrics_family_t *g = px_metrics_gauge(
        m, "px_test_level", "A level with a backslash \\ and a\nnewline, \"quoted\".", NULL);
    px_metrics_set(px_metrics_series(g, NULL), -2.5);
    const double bounds[] = {0.1, 1, 2.5};
    px_metrics_family_t *h =
        px_metrics_histogram(m, "px_test_seconds", "Durations.", s_method, bounds, 3);
    px_metrics_series_t *x = px_metrics_series(h, (const char *const[]){"x"});
    px_metrics_observe(x, 0.25);
    px_metrics_observe(x, 0.5);
    px_metrics_observe(x, 1); /* le is inclusive: in le="1" */
    px_metrics_observe(x, 4);
    return m;
}

static void test_exact_text(void)
{
    px_metrics_t *m = s_small();
    PX_REQUIRE(m);
    size_t len = 0;
    char *text = px_metrics_render(m, &len);
    PX_REQUIRE(text);
    const char *want =
        "# HELP px_test_things_total Things done, by kind.\n"
        "# TYPE px_test_things_total counter\n"
        "px_test_things_total{kind=\"a\"} 3\n"
        "px_test_things_total{kind=\"quote\\\"back\\\\slash\\nnewline\"} 1\n"
        "# HELP px_test_level A level with a backslash \\\\ and a\\nnewline, \"quoted\".\n"
        "# TYPE px_test_level gauge\n"
        "px_test_level -2.5\n"
        "# HELP px_test_seconds Durations.\n"
        "# TYPE px_test_seconds histogram\n"
        "px_test_seconds_bucket{method=\"x\",le=\"0.1\"} 0\n"
        "px_test_seconds_bucket{method=\"x\",le=\"1\"} 3\n"
        "px_test_seconds_bucket{method=\"x\",le=\"2.5\"} 3\n"
        "px_test_seconds_bucket{method=\"x\",le=\"+Inf\"} 4\n"
        "px_test_seconds_sum{method=\"x\"} 5.75\n"
        "px_test_seconds_count{method=\"x\"} 4\n" DROPPED_HELP;
    PX_CHECK_STR_EQ(text, want);
    PX_CHECK_INT_EQ(len, strlen(want));
    free(text);

    /* The same through a snapshot, with the service's label added to every sample. */
    Phuxanh__Metrics__V1__GetMetricsResponse *snap = px_metrics_snapshot(m);
    PX_REQUIRE(snap);
    const char *labels[] = {"service", "roster", NULL};
    px_metrics_source_t src = {snap, labels};
    text = px_metrics_render_sources(&src, 1, NULL);
    PX_REQUIRE(text);
    PX_CHECK(strstr(text, "\npx_test_things_total{service=\"roster\",kind=\"a\"} 3\n") != NULL);
    PX_CHECK(strstr(text, "\npx_test_level{service=\"roster\"} -2.5\n") != NULL);
    PX_CHECK(strstr(text, "\npx_test_seconds_bucket{service=\"roster\",method=\"x\",le=\"+Inf\"} "
                          "4\n") != NULL);
    PX_CHECK(strstr(text, "\npx_test_seconds_count{service=\"roster\",method=\"x\"} 4\n") != NULL);
    free(text);
    protobuf_c_message_free_unpacked(&snap->base, NULL);
    px_metrics_destroy(&m);
    PX_CHECK(m == NULL);
    px_metrics_destroy(&m); /* twice is harmless */
}

static void test_values_formatted(void)
{
    px_metrics_t *m = px_metrics_new();
    PX_REQUIRE(m);
    px_metrics_family_t *g = px_metrics_gauge(m, "v", "", s_kind);
    px_metrics_set(px_metrics_series(g, (const char *const[]){"tenth"}), 0.1);
    px_metrics_set(px_metrics_series(g, (const char *const[]){"third"}), 1.0 / 3);
    px_metrics_set(px_metrics_series(g, (const char *const[]){"big"}), 1e21);
    px_metrics_set(px_metrics_series(g, (const char *const[]){"inf"}), INFINITY);
    px_metrics_set(px_metrics_series(g, (const char *const[]){"ninf"}), -INFINITY);
    px_metrics_set(px_metrics_series(g, (const char *const[]){"nan"}), NAN);
    px_metrics_set(px_metrics_series(g, (const char *const[]){"count"}), 123456789012.0);
    char *text = px_metrics_render(m, NULL);
    PX_REQUIRE(text);
    /* No HELP line for an empty help. */
    PX_CHECK(strncmp(text, "# TYPE v gauge\n", 15) == 0);
    PX_CHECK(strstr(text, "v{kind=\"tenth\"} 0.1\n") != NULL);
    PX_CHECK(strstr(text, "v{kind=\"third\"} 0.33333333333333331\n") != NULL);
    PX_CHECK(strstr(text, "v{kind=\"big\"} 1e+21\n") != NULL);
    PX_CHECK(strstr(text, "v{kind=\"inf\"} +Inf\n") != NULL);
    PX_CHECK(strstr(text, "v{kind=\"ninf\"} -Inf\n") != NULL);
    PX_CHECK(strstr(text, "v{kind=\"nan\"} NaN\n") != NULL);
    PX_CHECK(strstr(text, "v{kind=\"count\"} 123456789012\n") != NULL);
    free(text);
    px_metrics_destroy(&m);
}

static void test_declarations_checked(void)
{
    px_metrics_t *m = px_metrics_new();
    PX_REQUIRE(m);
    const double ok_bounds[] = {1, 2};
    const double down[] = {2, 1};
    const double same[] = {1, 1};
    const double nan_bound[] = {1, NAN};
    PX_CHECK(px_metrics_counter(m, "", "", NULL) == NULL);
    PX_CHECK(px_metrics_counter(m, NULL, "", NULL) == NULL);
    PX_CHECK(px_metrics_counter(m, "1st", "", NULL) == NULL);
    PX_CHECK(px_metrics_counter(m, "a-b", "", NULL) == NULL);
    PX_CHECK(px_metrics_counter(m, "a b", "", NULL) == NULL);
    PX_CHECK(px_metrics_counter(m, "ok:name_1", "", NULL) != NULL);
    PX_CHECK(px_metrics_counter(m, "ok:name_1", "", NULL) == NULL); /* taken */
    PX_CHECK(px_metrics_gauge(m, "px_metrics_label_sets_dropped_total", "", NULL) == NULL);
    PX_CHECK(px_metrics_counter(m, "l1", "", (const char *const[]){"__reserved", NULL}) == NULL);
    PX_CHECK(px_metrics_counter(m, "l2", "", (const char *const[]){"a:b", NULL}) == NULL);
    PX_CHECK(px_metrics_counter(m, "l3", "", (const char *const[]){"a", "a", NULL}) == NULL);
    PX_CHECK(px_metrics_counter(m, "l4", "",
                                (const char *const[]){"a", "b", "c", "d", "e", NULL}) == NULL);
    PX_CHECK(px_metrics_counter(m, "l5", "", (const char *const[]){"a", "b", "c", "d", NULL}) !=
             NULL);
    PX_CHECK(px_metrics_counter(m, "l6", "bad \xff help", NULL) == NULL);
    PX_CHECK(px_metrics_histogram(m, "h1", "", (const char *const[]){"le", NULL}, ok_bounds, 2) ==
             NULL);
    PX_CHECK(px_metrics_histogram(m, "h2", "", NULL, down, 2) == NULL);
    PX_CHECK(px_metrics_histogram(m, "h3", "", NULL, same, 2) == NULL);
    PX_CHECK(px_metrics_histogram(m, "h4", "", NULL, nan_bound, 2) == NULL);
    PX_CHECK(px_metrics_histogram(m, "h5", "", NULL, ok_bounds, 0) == NULL);
    PX_CHECK(px_metrics_histogram(m, "h6", "", NULL, NULL, 2) == NULL);
    PX_CHECK(px_metrics_histogram(m, "h7", "", NULL, ok_bounds, PX_METRICS_MAX_BUCKETS + 1) ==
             NULL);
    PX_CHECK(px_metrics_gauge(m, "le", "", (const char *const[]){"le", NULL}) != NULL);
    /* The families a registry may hold are bounded. */
    int made = 0;
    for (int i = 0; i < 2 * PX_METRICS_MAX_FAMILIES; i++) {
        char name[32];
        snprintf(name, sizeof name, "many_%d", i);
        made += px_metrics_gauge(m, name, "", NULL) != NULL;
    }
    PX_CHECK_INT_EQ(made, PX_METRICS_MAX_FAMILIES - 3); /* ok:name_1, l5 and le came first */
    /* Updates through a refused family are no-ops, not crashes. */
    PX_CHECK(px_metrics_series(NULL, NULL) == NULL);
    px_metrics_inc(NULL);
    px_metrics_add(NULL, 1);
    px_metrics_set(NULL, 1);
    px_metrics_observe(NULL, 1);
    px_metrics_destroy(&m);
}

static void test_updates_by_type(void)
{
    px_metrics_t *m = px_metrics_new();
    PX_REQUIRE(m);
    const double b[] = {1};
    px_metrics_series_t *c = px_metrics_series(px_metrics_counter(m, "c", "", NULL), NULL);
    px_metrics_series_t *g = px_metrics_series(px_metrics_gauge(m, "g", "", NULL), NULL);
    px_metrics_series_t *h = px_metrics_series(px_metrics_histogram(m, "h", "", NULL, b, 1), NULL);
    px_metrics_add(c, 5);
    px_metrics_add(c, -1);  /* a counter never goes down */
    px_metrics_add(c, NAN); /* nor becomes NaN */
    px_metrics_observe(c, 100);
    px_metrics_add(g, 5);
    px_metrics_add(g, -7);
    px_metrics_observe(g, 100);
    px_metrics_add(h, 3);
    px_metrics_set(h, 3);
    px_metrics_observe(h, NAN); /* lands in +Inf */
    char *text = px_metrics_render(m, NULL);
    PX_REQUIRE(text);
    PX_CHECK(strstr(text, "\nc 5\n") != NULL);
    PX_CHECK(strstr(text, "\ng -2\n") != NULL);
    PX_CHECK(
        strstr(text, "\nh_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 1\nh_sum NaN\nh_count 1\n") !=
        NULL);
    free(text);
    px_metrics_destroy(&m);
}

static void test_label_sets_bounded(void)
{
    px_metrics_t *m = px_metrics_new();
    PX_REQUIRE(m);
    px_metrics_family_t *f = px_metrics_counter(m, "px_test_by_user_total", "", s_kind);
    px_metrics_series_t *first = NULL;
    for (int i = 0; i < PX_METRICS_MAX_SERIES + 5; i++) {
        char v[32];
        snprintf(v, sizeof v, "user-%d", i);
        px_metrics_series_t *s = px_metrics_series(f, (const char *const[]){v});
        PX_REQUIRE(s);
        px_metrics_inc(s);
        if (i == 0) {
            first = s;
        }
    }
    /* Known label sets are still found (and counted) once the family is full. */
    PX_CHECK(px_metrics_series(f, (const char *const[]){"user-0"}) == first);
    px_metrics_inc(first);
    /* Values too long or not UTF-8 are refused and counted too. */
    char longv[PX_METRICS_MAX_LABEL_VALUE + 2];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    px_metrics_inc(px_metrics_series(f, (const char *const[]){longv}));
    px_metrics_inc(px_metrics_series(f, (const char *const[]){"bad \xc3"}));
    Phuxanh__Metrics__V1__GetMetricsResponse *snap = px_metrics_snapshot(m);
    PX_REQUIRE(snap);
    PX_REQUIRE(snap->n_families == 2);
    const Phuxanh__Metrics__V1__MetricFamily *fam = snap->families[0];
    PX_CHECK_INT_EQ(fam->n_samples, PX_METRICS_MAX_SERIES);
    PX_CHECK(fam->n_samples > 0 && fam->samples[0]->value == 2);
    double total = 0;
    for (size_t i = 0; i < fam->n_samples; i++) {
        total += fam->samples[i]->value;
    }
    PX_CHECK(total == PX_METRICS_MAX_SERIES + 1);
    const Phuxanh__Metrics__V1__MetricFamily *dropped = snap->families[1];
    PX_CHECK_STR_EQ(dropped->name, "px_metrics_label_sets_dropped_total");
    PX_REQUIRE(dropped->n_samples == 1);
    PX_CHECK_STR_EQ(dropped->samples[0]->labels[0]->value, "px_test_by_user_total");
    PX_CHECK(dropped->samples[0]->value == 5 + 2);
    protobuf_c_message_free_unpacked(&snap->base, NULL);
    px_metrics_destroy(&m);
}

/* ------------------------------------------------------------------ threads */

#define THREADS 4
#define ROUNDS 50000
#define NEW_SETS 200

typedef struct {
    px_metrics_series_t *counter;
    px_metrics_series_t *hist;
    px_metrics_family_t *by_label;
    int index;
} worker_t;

static void *s_worker(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        px_metrics_inc(w->counter);
        px_metrics_observe(w->hist, (double)(i % 4)); /* 0, 1, 2, 3 */
        if (i % (ROUNDS / NEW_SETS) == 0) {
            /* Every thread makes the same label sets at about the same time. */
            char v[32];
            snprintf(v, sizeof v, "set-%d", i / (ROUNDS / NEW_SETS));
            px_metrics_inc(px_metrics_series(w->by_label, (const char *const[]){v}));
        }
    }
    return NULL;
}

static void test_concurrent_updates_exact(void)
{
    px_metrics_t *m = px_metrics_new();
    PX_REQUIRE(m);
    const double b[] = {0.5, 1.5, 2.5};
    worker_t w[THREADS];
    pthread_t th[THREADS];
    px_metrics_series_t *c = px_metrics_series(px_metrics_counter(m, "c_total", "", NULL), NULL);
    px_metrics_series_t *h = px_metrics_series(px_metrics_histogram(m, "h", "", NULL, b, 3), NULL);
    px_metrics_family_t *bl = px_metrics_counter(m, "bl_total", "", s_kind);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){c, h, bl, i};
        PX_REQUIRE(pthread_create(&th[i], NULL, s_worker, &w[i]) == 0);
    }
    /* Snapshots taken while the updates go on are valid histograms. */
    for (int k = 0; k < 20; k++) {
        Phuxanh__Metrics__V1__GetMetricsResponse *snap = px_metrics_snapshot(m);
        PX_REQUIRE(snap);
        const Phuxanh__Metrics__V1__Sample *s = snap->families[1]->samples[0];
        for (size_t i = 0; i < s->n_cumulative_counts; i++) {
            uint64_t next = i + 1 < s->n_cumulative_counts ? s->cumulative_counts[i + 1] : s->count;
            PX_CHECK(s->cumulative_counts[i] <= next);
        }
        protobuf_c_message_free_unpacked(&snap->base, NULL);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    Phuxanh__Metrics__V1__GetMetricsResponse *snap = px_metrics_snapshot(m);
    PX_REQUIRE(snap);
    PX_CHECK(snap->families[0]->samples[0]->value == (double)THREADS * ROUNDS);
    const Phuxanh__Metrics__V1__Sample *s = snap->families[1]->samples[0];
    PX_CHECK_INT_EQ(s->count, THREADS * ROUNDS);
    PX_CHECK_INT_EQ(s->cumulative_counts[0], THREADS * ROUNDS / 4);
    PX_CHECK_INT_EQ(s->cumulative_counts[1], THREADS * ROUNDS / 2);
    PX_CHECK_INT_EQ(s->cumulative_counts[2], THREADS * ROUNDS / 4 * 3);
    PX_CHECK(s->sum == (double)THREADS * ROUNDS / 4 * (0 + 1 + 2 + 3));
    /* One series per label set however many threads made it at once, each counted by all. */
    const Phuxanh__Metrics__V1__MetricFamily *f = snap->families[2];
    PX_CHECK_INT_EQ(f->n_samples, NEW_SETS);
    for (size_t i = 0; i < f->n_samples; i++) {
        PX_CHECK(f->samples[i]->value == THREADS);
    }
    protobuf_c_message_free_unpacked(&snap->base, NULL);
    px_metrics_destroy(&m);
}

/* ------------------------------------------------------------------ collect hooks */

static void s_collect(void *data, px_metrics_t *m)
{
    (void)m;
    int *calls = data;
    (*calls)++;
}

static void test_collect_hook_runs_at_each_snapshot(void)
{
    px_metrics_t *m = px_metrics_new();
    PX_REQUIRE(m);
    int calls = 0;
    for (int i = 0; i < PX_METRICS_MAX_HOOKS; i++) {
        PX_CHECK_INT_EQ(px_metrics_on_collect(m, s_collect, &calls), 0);
    }
    PX_CHECK_INT_EQ(px_metrics_on_collect(m, s_collect, &calls), -1);
    char *text = px_metrics_render(m, NULL);
    free(text);
    PX_CHECK_INT_EQ(calls, PX_METRICS_MAX_HOOKS);
    px_metrics_destroy(&m);
}

/* ------------------------------------------------------------------ sources */

static void test_sources_merged_by_family(void)
{
    px_metrics_t *a = px_metrics_new(), *b = px_metrics_new();
    PX_REQUIRE(a && b);
    px_metrics_inc(px_metrics_series(px_metrics_counter(a, "calls_total", "Calls.", s_method),
                                     (const char *const[]){"A"}));
    px_metrics_set(px_metrics_series(px_metrics_gauge(a, "only_a", "Only in a.", NULL), NULL), 1);
    px_metrics_set(px_metrics_series(px_metrics_gauge(a, "clash", "A gauge in a.", NULL), NULL), 1);
    /* b: the same family (its own help ignored), a label named like the added one, and a
     * family of the same name but another type (left out). */
    px_metrics_add(px_metrics_series(px_metrics_counter(b, "calls_total", "Other help.",
                                                        (const char *const[]){"service", NULL}),
                                     (const char *const[]){"mine"}),
                   2);
    px_metrics_inc(
        px_metrics_series(px_metrics_counter(b, "clash", "A counter in b.", NULL), NULL));
    Phuxanh__Metrics__V1__GetMetricsResponse *sa = px_metrics_snapshot(a),
                                             *sb = px_metrics_snapshot(b);
    PX_REQUIRE(sa && sb);
    const char *la[] = {"service", "roster", NULL};
    const char *lb[] = {"service", "activation", NULL};
    px_metrics_source_t src[2] = {{sa, la}, {sb, lb}};
    char *text = px_metrics_render_sources(src, 2, NULL);
    PX_REQUIRE(text);
    const char *want = "# HELP calls_total Calls.\n"
                       "# TYPE calls_total counter\n"
                       "calls_total{service=\"roster\",method=\"A\"} 1\n"
                       "calls_total{service=\"activation\"} 2\n"
                       "# HELP only_a Only in a.\n"
                       "# TYPE only_a gauge\n"
                       "only_a{service=\"roster\"} 1\n"
                       "# HELP clash A gauge in a.\n"
                       "# TYPE clash gauge\n"
                       "clash{service=\"roster\"} 1\n" DROPPED_HELP;
    PX_CHECK_STR_EQ(text, want);
    free(text);
    /* Nothing at all: an empty text, not NULL. */
    text = px_metrics_render_sources(NULL, 0, NULL);
    PX_CHECK(text && *text == '\0');
    free(text);
    protobuf_c_message_free_unpacked(&sa->base, NULL);
    protobuf_c_message_free_unpacked(&sb->base, NULL);
    px_metrics_destroy(&a);
    px_metrics_destroy(&b);
}

static void test_malformed_answer_skipped(void)
{
    /* A response as a broken or hostile peer might send it, built by hand. */
    Phuxanh__Metrics__V1__Label good_l = PHUXANH__METRICS__V1__LABEL__INIT;
    good_l.name = "m";
    good_l.value = "x";
    Phuxanh__Metrics__V1__Label bad_name = PHUXANH__METRICS__V1__LABEL__INIT;
    bad_name.name = "bad-name";
    bad_name.value = "x";
    Phuxanh__Metrics__V1__Label bad_value = PHUXANH__METRICS__V1__LABEL__INIT;
    bad_value.name = "m";
    bad_value.value = "\xff";
    Phuxanh__Metrics__V1__Label *l_good[] = {&good_l};
    Phuxanh__Metrics__V1__Label *l_bad_name[] = {&bad_name};
    Phuxanh__Metrics__V1__Label *l_bad_value[] = {&bad_value};
    Phuxanh__Metrics__V1__Label *l_twice[] = {&good_l, &good_l};

    Phuxanh__Metrics__V1__Sample s_ok = PHUXANH__METRICS__V1__SAMPLE__INIT;
    s_ok.labels = l_good;
    s_ok.n_labels = 1;
    s_ok.value = 7;
    Phuxanh__Metrics__V1__Sample s_bn = s_ok, s_bv = s_ok, s_tw = s_ok;
    s_bn.labels = l_bad_name;
    s_bv.labels = l_bad_value;
    s_tw.labels = l_twice;
    s_tw.n_labels = 2;
    Phuxanh__Metrics__V1__Sample *gauge_samples[] = {&s_ok, &s_bn, &s_bv, &s_tw};

    Phuxanh__Metrics__V1__MetricFamily good = PHUXANH__METRICS__V1__METRIC_FAMILY__INIT;
    good.name = "good";
    good.help = "bad help \xff";
    good.type = PHUXANH__METRICS__V1__METRIC_TYPE__METRIC_TYPE_GAUGE;
    good.samples = gauge_samples;
    good.n_samples = 4;
    Phuxanh__Metrics__V1__MetricFamily bad1 = good, bad2 = good, bad3 = good;
    bad1.name = "bad name";
    bad2.name = "untyped";
    bad2.type = PHUXANH__METRICS__V1__METRIC_TYPE__METRIC_TYPE_UNSPECIFIED;
    bad3.name = "unsorted";
    bad3.type = PHUXANH__METRICS__V1__METRIC_TYPE__METRIC_TYPE_HISTOGRAM;
    double unsorted[] = {2, 1};
    bad3.bucket_bounds = unsorted;
    bad3.n_bucket_bounds = 2;

    /* Histogram samples: one sound, one with counts not matching its bounds, one decreasing. */
    double bounds[] = {1, 2};
    uint64_t ok_counts[] = {1, 3}, short_counts[] = {1}, down_counts[] = {3, 1};
    Phuxanh__Metrics__V1__Sample h_ok = PHUXANH__METRICS__V1__SAMPLE__INIT;
    h_ok.cumulative_counts = ok_counts;
    h_ok.n_cumulative_counts = 2;
    h_ok.count = 4;
    h_ok.sum = 6;
    Phuxanh__Metrics__V1__Sample h_short = h_ok, h_down = h_ok, h_over = h_ok;
    h_short.cumulative_counts = short_counts;
    h_short.n_cumulative_counts = 1;
    h_down.cumulative_counts = down_counts;
    h_over.count = 2; /* fewer in +Inf than at le="2" */
    Phuxanh__Metrics__V1__Sample *h_samples[] = {&h_ok, &h_short, &h_down, &h_over};
    Phuxanh__Metrics__V1__MetricFamily hist = PHUXANH__METRICS__V1__METRIC_FAMILY__INIT;
    hist.name = "hist";
    hist.type = PHUXANH__METRICS__V1__METRIC_TYPE__METRIC_TYPE_HISTOGRAM;
    hist.bucket_bounds = bounds;
    hist.n_bucket_bounds = 2;
    hist.samples = h_samples;
    hist.n_samples = 4;

    Phuxanh__Metrics__V1__MetricFamily *fams[] = {&bad1, &bad2, &bad3, &good, &hist};
    Phuxanh__Metrics__V1__GetMetricsResponse rep = PHUXANH__METRICS__V1__GET_METRICS_RESPONSE__INIT;
    rep.families = fams;
    rep.n_families = 5;
    px_metrics_source_t src = {&rep, NULL};
    char *text = px_metrics_render_sources(&src, 1, NULL);
    PX_REQUIRE(text);
    PX_CHECK_STR_EQ(text, "# TYPE good gauge\n"
                          "good{m=\"x\"} 7\n"
                          "# TYPE hist histogram\n"
                          "hist_bucket{le=\"1\"} 1\n"
                          "hist_bucket{le=\"2\"} 3\n"
                          "hist_bucket{le=\"+Inf\"} 4\n"
                          "hist_sum 6\n"
                          "hist_count 4\n");
    free(text);
    /* Added labels that are not sound leave their source out. */
    const char *bad_extra[] = {"le", "x", NULL};
    px_metrics_source_t src2 = {&rep, bad_extra};
    text = px_metrics_render_sources(&src2, 1, NULL);
    PX_CHECK(text && *text == '\0');
    free(text);
}

static const px_test_case_t s_cases[] = {
    {"exact_text", test_exact_text},
    {"values_formatted", test_values_formatted},
    {"declarations_checked", test_declarations_checked},
    {"updates_by_type", test_updates_by_type},
    {"label_sets_bounded", test_label_sets_bounded},
    {"concurrent_updates_exact", test_concurrent_updates_exact},
    {"collect_hook_runs_at_each_snapshot", test_collect_hook_runs_at_each_snapshot},
    {"sources_merged_by_family", test_sources_merged_by_family},
    {"malformed_answer_skipped", test_malformed_answer_skipped},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return px_test_main(argc, argv, s_cases);
}
