/*
 * rest.c - the plain GET routes for other systems: /v1/progress and /v1/counts.
 *
 * They are the same methods as the Connect routes (GetProgress, QueryCounts),
 * asked with query parameters a spreadsheet or a shell script can write, and
 * /v1/counts answers several units at once and in CSV:
 *
 *   GET /v1/progress?campaign=ID&unit=CODE
 *   GET /v1/counts?campaign=ID&unit=CODE[,CODE...]&group_by=unit,day,stage,channel,volunteer
 *                  &from=DAY&to=DAY&stage=collected,...&format=json|csv
 *
 * Unknown parameters are refused, not ignored: a typo ("grup_by") would otherwise
 * answer something other than what was meant. For several units, each unit's rows
 * come in the order asked, grouped by unit (so the units can be told apart). All
 * pages of each unit are read (bounded by ROWS_MAX), the units in parallel.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/json.h"
#include "phuxanh/text.h"

#define PATH_GET_PROGRESS "/phuxanh.activation.v1.ActivationService/GetProgress"
#define PATH_QUERY_COUNTS "/phuxanh.activation.v1.ActivationService/QueryCounts"
#define UNITS_MAX 32
/* Rows one /v1/counts answer may carry: a province's wards x 60 days x 4 stages x 3
 * channels is ~100,000; past that the caller should narrow the question. */
#define ROWS_MAX 200000
#define PAGE_SIZE 10000

static bool s_known_params(gw_req_t *req, const char *const *names)
{
    const char *bad = gw_req_unknown_query(req, names);
    if (bad) {
        gw_req_fail(req, PX_INVALID_ARGUMENT, "unknown parameter \"%.40s\"", bad);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- /v1/progress */

void gw_rest_progress(gw_req_t *req)
{
    static const char *const names[] = {"campaign", "unit", NULL};
    if (!s_known_params(req, names)) {
        return;
    }
    const char *campaign = gw_req_query(req, "campaign");
    const char *unit = gw_req_query(req, "unit");
    if (!campaign || !*campaign || !unit || !*unit) {
        gw_req_fail(req, PX_INVALID_ARGUMENT,
                    "campaign and unit are required: "
                    "/v1/progress?campaign=ID&unit=CODE");
        return;
    }
    Phuxanh__Activation__V1__GetProgressRequest q =
        PHUXANH__ACTIVATION__V1__GET_PROGRESS_REQUEST__INIT;
    q.campaign_id = (char *)campaign;
    q.unit_code = (char *)unit;
    ProtobufCMessage *own = gw_msg_own(&q.base);
    if (!own) {
        gw_req_fail(req, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    gw_connect_call(req, gw_method_find(PATH_GET_PROGRESS), own, true,
                    gw_req_gw(req)->limits.default_timeout_ms);
}

/* ---------------------------------------------------------------- /v1/counts */

typedef struct s_counts_t s_counts_t;

typedef struct {
    s_counts_t *all;
    char unit[24];
    Phuxanh__Activation__V1__QueryCountsRequest *q; /* owned */
    Phuxanh__Activation__V1__QueryCountsResponse **pages;
    size_t npages;
    gw_call_t call;
    px_code_t code;
    char message[PX_STATUS_MESSAGE_MAX];
} s_unit_query_t;

struct s_counts_t {
    gw_req_t *req;
    bool csv;
    Phuxanh__Activation__V1__GroupBy group_by[5];
    size_t ngroup;
    s_unit_query_t units[UNITS_MAX];
    size_t nunits;
    /* completion: the last unit to finish answers */
    pthread_mutex_t mu;
    size_t pending;
    size_t rows;
};

static void s_counts_free(void *p)
{
    s_counts_t *c = p;
    if (!c) {
        return;
    }
    for (size_t i = 0; i < c->nunits; i++) {
        s_unit_query_t *u = &c->units[i];
        if (u->q) {
            protobuf_c_message_free_unpacked(&u->q->base, NULL);
        }
        for (size_t k = 0; k < u->npages; k++) {
            protobuf_c_message_free_unpacked(&u->pages[k]->base, NULL);
        }
        free(u->pages);
        if (u->call.reply) {
            protobuf_c_message_free_unpacked(u->call.reply, NULL);
        }
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static const struct {
    const char *name;
    Phuxanh__Activation__V1__GroupBy value;
} s_groups[] = {
    {"unit", PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_UNIT},
    {"day", PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_DAY},
    {"stage", PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_STAGE},
    {"channel", PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_CHANNEL},
    {"volunteer", PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_VOLUNTEER},
};

static const struct {
    const char *name;
    Phuxanh__Activation__V1__Stage value;
} s_stages[] = {
    {"collected", PHUXANH__ACTIVATION__V1__STAGE__STAGE_COLLECTED},
    {"approved", PHUXANH__ACTIVATION__V1__STAGE__STAGE_APPROVED},
    {"activated", PHUXANH__ACTIVATION__V1__STAGE__STAGE_ACTIVATED},
    {"rejected", PHUXANH__ACTIVATION__V1__STAGE__STAGE_REJECTED},
};

static bool s_grouped(const s_counts_t *c, Phuxanh__Activation__V1__GroupBy g)
{
    for (size_t i = 0; i < c->ngroup; i++) {
        if (c->group_by[i] == g) {
            return true;
        }
    }
    return false;
}

/* RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled. */
static void s_csv_field(gw_buf_t *b, const char *s, bool last)
{
    s = s ? s : "";
    if (strpbrk(s, ",\"\r\n")) {
        gw_buf_putc(b, '"');
        for (const char *p = s; *p; p++) {
            if (*p == '"') {
                gw_buf_putc(b, '"');
            }
            gw_buf_putc(b, *p);
        }
        gw_buf_putc(b, '"');
    } else {
        gw_buf_puts(b, s);
    }
    gw_buf_puts(b, last ? "\r\n" : ",");
}

static const char *s_enum_name(const ProtobufCEnumDescriptor *d, int v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    return ev ? ev->name : "";
}

static void s_write_csv(s_counts_t *c)
{
    gw_buf_t b;
    gw_buf_init(&b);
    bool unit = s_grouped(c, PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_UNIT);
    bool day = s_grouped(c, PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_DAY);
    bool stage = s_grouped(c, PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_STAGE);
    bool channel = s_grouped(c, PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_CHANNEL);
    bool vol = s_grouped(c, PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_VOLUNTEER);
    /* The asked unit first, so that rows of several units can be told apart. */
    s_csv_field(&b, "asked_unit", false);
    if (unit) {
        s_csv_field(&b, "unit_code", false);
        s_csv_field(&b, "unit_name", false);
    }
    if (day) {
        s_csv_field(&b, "day", false);
    }
    if (stage) {
        s_csv_field(&b, "stage", false);
    }
    if (channel) {
        s_csv_field(&b, "channel", false);
    }
    if (vol) {
        s_csv_field(&b, "volunteer_code", false);
    }
    s_csv_field(&b, "count", true);
    for (size_t i = 0; i < c->nunits; i++) {
        s_unit_query_t *u = &c->units[i];
        for (size_t p = 0; p < u->npages; p++) {
            for (size_t r = 0; r < u->pages[p]->n_rows; r++) {
                const Phuxanh__Activation__V1__CountRow *row = u->pages[p]->rows[r];
                char num[24];
                s_csv_field(&b, u->unit, false);
                if (unit) {
                    s_csv_field(&b, row->unit_code, false);
                    s_csv_field(&b, row->unit_name, false);
                }
                if (day) {
                    s_csv_field(&b, row->day, false);
                }
                if (stage) {
                    s_csv_field(
                        &b, s_enum_name(&phuxanh__activation__v1__stage__descriptor, row->stage),
                        false);
                }
                if (channel) {
                    s_csv_field(
                        &b,
                        s_enum_name(&phuxanh__activation__v1__channel__descriptor, row->channel),
                        false);
                }
                if (vol) {
                    s_csv_field(&b, row->volunteer_code, false);
                }
                snprintf(num, sizeof num, "%d", row->count);
                s_csv_field(&b, num, true);
            }
        }
    }
    if (b.failed) {
        gw_buf_free(&b);
        gw_req_fail(c->req, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    const char *h[] = {"Content-Disposition", "attachment; filename=\"counts.csv\"", NULL};
    gw_req_respond_take(c->req, 200, "text/csv; charset=utf-8; header=present", b.data, b.len, h);
}

static void s_write_json(s_counts_t *c)
{
    gw_buf_t b;
    gw_buf_init(&b);
    gw_buf_puts(&b, "{\"rows\":[");
    bool first = true;
    for (size_t i = 0; i < c->nunits; i++) {
        s_unit_query_t *u = &c->units[i];
        for (size_t p = 0; p < u->npages; p++) {
            for (size_t r = 0; r < u->pages[p]->n_rows; r++) {
                px_status_t st;
                size_t len = 0;
                char *row = px_json_from_message(&u->pages[p]->rows[r]->base, &len, &st);
                if (!row) {
                    gw_buf_free(&b);
                    gw_req_fail(c->req, PX_INTERNAL, "cannot write a row as JSON: %s", st.message);
                    return;
                }
                /* Each row carries the unit it was asked under: {"askedUnit":"...", ...}. */
                char esc[64];
                px_json_escape(esc, sizeof esc, u->unit);
                gw_buf_puts(&b, first ? "{\"askedUnit\":" : ",{\"askedUnit\":");
                gw_buf_puts(&b, esc);
                if (len > 2) {
                    gw_buf_putc(&b, ',');
                }
                gw_buf_put(&b, row + 1, len - 1); /* the row's own members and its '}' */
                free(row);
                first = false;
            }
        }
    }
    gw_buf_puts(&b, "]}");
    if (b.failed) {
        gw_buf_free(&b);
        gw_req_fail(c->req, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    gw_req_respond_take(c->req, 200, "application/json", b.data, b.len, NULL);
}

static void s_unit_next_page(s_unit_query_t *u, const char *token);

/* On a backend thread: one page of one unit came back. */
static void s_page_done(gw_call_t *call)
{
    s_unit_query_t *u = call->user;
    s_counts_t *c = u->all;
    bool finished = true;
    if (call->code != PX_OK) {
        u->code = call->code;
        /* The service's message names the unit when it matters; cut at a character. */
        px_utf8_copy(u->message, sizeof u->message, call->message);
    } else {
        Phuxanh__Activation__V1__QueryCountsResponse *r = (void *)call->reply;
        call->reply = NULL;
        void *grown = realloc(u->pages, (u->npages + 1) * sizeof *u->pages);
        pthread_mutex_lock(&c->mu);
        c->rows += r->n_rows;
        size_t rows = c->rows;
        pthread_mutex_unlock(&c->mu);
        if (!grown) {
            protobuf_c_message_free_unpacked(&r->base, NULL);
            u->code = PX_RESOURCE_EXHAUSTED;
            snprintf(u->message, sizeof u->message, "out of memory");
        } else {
            u->pages = grown;
            u->pages[u->npages++] = r;
            if (rows > ROWS_MAX) {
                u->code = PX_RESOURCE_EXHAUSTED;
                snprintf(u->message, sizeof u->message,
                         "more than %d rows: ask for fewer units, days or groups", ROWS_MAX);
            } else if (r->next_page_token && *r->next_page_token) {
                s_unit_next_page(u, r->next_page_token);
                finished = false;
            }
        }
    }
    if (!finished) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    bool last = --c->pending == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last) {
        return;
    }
    for (size_t i = 0; i < c->nunits; i++) {
        if (c->units[i].code != PX_OK) {
            gw_req_fail(c->req, c->units[i].code, "%s", c->units[i].message);
            gw_req_resume(c->req);
            return;
        }
    }
    if (c->csv) {
        s_write_csv(c);
    } else {
        s_write_json(c);
    }
    gw_req_resume(c->req);
}

static void s_unit_next_page(s_unit_query_t *u, const char *token)
{
    free(u->q->page_token);
    u->q->page_token = strdup(token);
    if (!u->q->page_token) {
        u->q->page_token = NULL;
    }
    gw_call_start(u->all->req, &u->call, gw_method_find(PATH_QUERY_COUNTS), &u->q->base,
                  gw_req_gw(u->all->req)->limits.default_timeout_ms, s_page_done, u);
}

void gw_rest_counts(gw_req_t *req)
{
    static const char *const names[] = {"campaign", "unit",  "group_by", "from",
                                        "to",       "stage", "format",   NULL};
    if (!s_known_params(req, names)) {
        return;
    }
    const char *campaign = gw_req_query(req, "campaign");
    const char *units = gw_req_query(req, "unit");
    const char *group = gw_req_query(req, "group_by");
    const char *from = gw_req_query(req, "from");
    const char *to = gw_req_query(req, "to");
    const char *stages = gw_req_query(req, "stage");
    const char *format = gw_req_query(req, "format");
    if (!campaign || !*campaign || !units || !*units) {
        gw_req_fail(req, PX_INVALID_ARGUMENT,
                    "campaign and unit are required: /v1/counts?campaign=ID&unit=CODE[,CODE]");
        return;
    }
    int32_t day;
    if ((from && *from && !px_day_parse(from, &day)) || (to && *to && !px_day_parse(to, &day))) {
        gw_req_fail(req, PX_INVALID_ARGUMENT, "from, to: a day is written YYYY-MM-DD");
        return;
    }
    if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
        gw_req_fail(req, PX_INVALID_ARGUMENT, "format: json or csv");
        return;
    }
    s_counts_t *c = calloc(1, sizeof *c);
    if (!c) {
        gw_req_fail(req, PX_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->req = req;
    c->csv = format && strcmp(format, "csv") == 0;
    gw_req_set_state(req, c, s_counts_free);

    Phuxanh__Activation__V1__Stage stage_list[4];
    size_t nstages = 0;
    char buf[256];
    if (group && *group) {
        snprintf(buf, sizeof buf, "%s", group);
        char *save = NULL;
        for (char *g = strtok_r(buf, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
            size_t k = 0;
            while (k < 5 && strcmp(s_groups[k].name, g) != 0) {
                k++;
            }
            if (k == 5 || s_grouped(c, s_groups[k].value)) {
                gw_req_fail(req, PX_INVALID_ARGUMENT,
                            "group_by: \"%.20s\" is not one of unit, day, stage, channel, "
                            "volunteer, or is given twice",
                            g);
                return;
            }
            c->group_by[c->ngroup++] = s_groups[k].value;
        }
    }
    if (stages && *stages) {
        snprintf(buf, sizeof buf, "%s", stages);
        char *save = NULL;
        for (char *g = strtok_r(buf, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
            size_t k = 0;
            while (k < 4 && strcmp(s_stages[k].name, g) != 0) {
                k++;
            }
            if (k == 4 || nstages == 4) {
                gw_req_fail(req, PX_INVALID_ARGUMENT,
                            "stage: \"%.20s\" is not one of collected, approved, activated, "
                            "rejected",
                            g);
                return;
            }
            stage_list[nstages++] = s_stages[k].value;
        }
    }
    char ubuf[UNITS_MAX * 24 + 1];
    if (strlen(units) >= sizeof ubuf) {
        gw_req_fail(req, PX_INVALID_ARGUMENT, "unit: at most %d codes", UNITS_MAX);
        return;
    }
    snprintf(ubuf, sizeof ubuf, "%s", units);
    char *save = NULL;
    for (char *u = strtok_r(ubuf, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
        if (c->nunits == UNITS_MAX || strlen(u) >= sizeof c->units[0].unit) {
            gw_req_fail(req, PX_INVALID_ARGUMENT,
                        "unit: at most %d codes of at most 23 "
                        "characters",
                        UNITS_MAX);
            return;
        }
        snprintf(c->units[c->nunits++].unit, sizeof c->units[0].unit, "%s", u);
    }
    if (c->nunits == 0) {
        /* "unit=," names none: with no call to wait for, the request would stay suspended
         * for ever (and its connection with it). */
        gw_req_fail(req, PX_INVALID_ARGUMENT,
                    "unit: at least one unit code: /v1/counts?campaign=ID&unit=CODE[,CODE]");
        return;
    }
    if (c->nunits > 1 && !s_grouped(c, PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_UNIT)) {
        /* Several units: rows by ward, so that each unit's answer reads on its own. */
        c->group_by[c->ngroup++] = PHUXANH__ACTIVATION__V1__GROUP_BY__GROUP_BY_UNIT;
    }
    for (size_t i = 0; i < c->nunits; i++) {
        Phuxanh__Activation__V1__QueryCountsRequest q =
            PHUXANH__ACTIVATION__V1__QUERY_COUNTS_REQUEST__INIT;
        q.campaign_id = (char *)campaign;
        q.unit_code = c->units[i].unit;
        q.n_group_by = c->ngroup;
        q.group_by = c->group_by;
        q.from_day = (char *)(from ? from : "");
        q.to_day = (char *)(to ? to : "");
        q.n_stages = nstages;
        q.stages = stage_list;
        q.page_size = PAGE_SIZE;
        c->units[i].all = c;
        c->units[i].q = (void *)gw_msg_own(&q.base);
        if (!c->units[i].q) {
            gw_req_fail(req, PX_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
    }
    c->pending = c->nunits;
    gw_req_set_rpc(req, PATH_QUERY_COUNTS);
    gw_req_suspend(req);
    for (size_t i = 0; i < c->nunits; i++) {
        gw_call_start(req, &c->units[i].call, gw_method_find(PATH_QUERY_COUNTS),
                      &c->units[i].q->base, gw_req_gw(req)->limits.default_timeout_ms, s_page_done,
                      &c->units[i]);
    }
}
