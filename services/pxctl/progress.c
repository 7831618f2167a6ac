/*
 * progress.c - pxctl progress: a campaign's progress by unit, as a table for
 * people, CSV or JSON for scripts, and live with --watch.
 *
 * One GetProgress answers everything shown: the unit (rolled up) and each of its
 * direct children. Without --campaign the roster's most recent campaign is shown
 * (ListCampaigns lists the latest first), and without --unit that campaign's own
 * area, or the tree's province when the campaign names none.
 *
 * The table pads by display columns (term.c), not bytes, so that "Lái Thiêu"
 * (11 bytes, 9 columns) lines up under "An Sơn". --json prints the
 * GetProgressResponse exactly as `pxctl call activation GetProgress` would, and
 * --csv its rows (the unit first, then its children) with every field.
 *
 * --watch subscribes to the activation service's live feed (topic
 * counts.<campaign>.<unit>: every change under the unit is published for the
 * unit too) and reads the progress again when it says something changed -
 * gathering changes for a moment, so a burst of events is one redraw - and at
 * least every --refresh-s seconds, so a silent or broken feed only makes the
 * table slower to follow, never wrong for long. It runs until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/clock.h"
#include "phuxanh/json.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "progress.h"
#include "pxctl.h"

#define PATH_LIST_CAMPAIGNS "/phuxanh.roster.v1.RosterService/ListCampaigns"
#define PATH_GET_CAMPAIGN "/phuxanh.roster.v1.RosterService/GetCampaign"
#define PATH_LIST_UNITS "/phuxanh.roster.v1.RosterService/ListUnits"
#define PATH_GET_PROGRESS "/phuxanh.activation.v1.ActivationService/GetProgress"

/* After a change arrives, wait this long for more before reading the progress again: events
 * come in batches, each publishing a change per stage and ancestor. */
#define PROGRESS_GATHER_MS 250
/* A reading that failed (the activation service restarting) is tried again this soon, or at
 * the next change the feed announces, whichever comes first. */
#define PROGRESS_RETRY_MS 5000
/* The feed is called silent after this long without a message (it heartbeats every second by
 * default): the title then says so. */
#define PROGRESS_SILENT_MS 5000
/* Campaign ids are at most 64 bytes and unit codes 32 (roster.proto); room for both, and for
 * the topic "counts.<campaign>.<unit>" made of them. */
#define PROGRESS_ID_MAX 128
#define PROGRESS_TOPIC_MAX (2 * PROGRESS_ID_MAX + 16)
/* Columns of the table. */
#define PROGRESS_COLS 8
/* A cell's bytes: a unit name is at most 200 characters (roster.proto), 800 bytes of UTF-8. */
#define PROGRESS_CELL_MAX 1024

static const pxctl_option_t s_options[] = {
    {{"campaign", "PX_CAMPAIGN", NULL, "the campaign; default: the roster's most recent"}, 0, 0},
    {{"unit", "PX_UNIT", NULL,
      "the unit whose children are shown; default: the campaign's area (else the province)"},
     0,
     0},
    {{"watch", NULL, "off", "redraw whenever the live feed says the counts changed"},
     PXCTL_SWITCH,
     'w'},
    {{"refresh-s", NULL, "30", "with --watch: redraw at least this often, changes or not"}, 0, 0},
    {{"csv", NULL, "off", "CSV (a header, then the unit and its children) instead of a table"},
     PXCTL_SWITCH,
     0},
    {{"json", NULL, "off", "the GetProgress answer as JSON (one line) instead of a table"},
     PXCTL_SWITCH,
     0},
    {{NULL, NULL, NULL, NULL}, 0, 0},
};

static const pxctl_command_t s_cmd = {
    .name = "progress",
    .synopsis = NULL,
    .summary = "a campaign's progress by unit: target, collected, approved, activated",
    .details =
        "Prints the unit's children and the unit itself with their target, citizens collected,\n"
        "approved and activated, the percent of the target activated, and a mark for units\n"
        "that turned green (activated >= target). --csv and --json are for scripts; --watch\n"
        "keeps the table current from the activation service's live feed until interrupted.\n\n"
        "Examples:\n"
        "  pxctl progress --unit 725\n"
        "  pxctl progress --campaign tn-cuoi-tuan-2023 --unit 25966 --watch\n"
        "  pxctl progress --unit 725 --csv > progress.csv",
    .options = s_options,
    .common = PXCTL_COMMON_SERVICES | PXCTL_COMMON_FEED,
    .min_args = 0,
    .max_args = 0,
};

typedef enum { S_TABLE, S_CSV, S_JSON } s_format_t;

typedef struct {
    const px_config_t *cfg;
    px_curve_t *curve; /* NULL: plaintext */
    px_rpc_client_t *roster, *activation;
    char campaign[PROGRESS_ID_MAX];
    char unit[PROGRESS_ID_MAX];
    s_format_t format;
    bool color;    /* the green mark in green */
    bool in_place; /* --watch on a terminal: each reading replaces the last on the screen */
} s_ctx_t;

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

/* ---------------------------------------------------------------- what to show */

static int s_roster(s_ctx_t *c)
{
    if (!c->roster) {
        c->roster = pxctl_client_new(c->cfg, c->curve, &pxctl_services[PXCTL_SVC_ROSTER], NULL, 0,
                                     s_cmd.name);
    }
    return c->roster ? PXCTL_EXIT_OK : PXCTL_EXIT_USAGE;
}

/* Fills c->campaign and c->unit from the flags, or else from the roster. */
static int s_resolve(s_ctx_t *c)
{
    const char *campaign = px_config_get(c->cfg, "campaign");
    const char *unit = px_config_get(c->cfg, "unit");
    ProtobufCMessage *reply = NULL;
    int rc = PXCTL_EXIT_OK;
    if ((campaign && strlen(campaign) >= sizeof c->campaign) ||
        (unit && strlen(unit) >= sizeof c->unit)) {
        pxctl_err(s_cmd.name, "--campaign or --unit: longer than any campaign id or unit code");
        return PXCTL_EXIT_USAGE;
    }
    if (campaign && *campaign) {
        snprintf(c->campaign, sizeof c->campaign, "%s", campaign);
    }
    if (unit && *unit) {
        snprintf(c->unit, sizeof c->unit, "%s", unit);
    }
    if (c->campaign[0] && c->unit[0]) {
        return PXCTL_EXIT_OK;
    }
    if ((rc = s_roster(c)) != PXCTL_EXIT_OK) {
        return rc;
    }
    const char *area = NULL;
    if (!c->campaign[0]) {
        Phuxanh__Roster__V1__ListCampaignsRequest q =
            PHUXANH__ROSTER__V1__LIST_CAMPAIGNS_REQUEST__INIT;
        q.page_size = 1;
        rc = pxctl_call(c->roster, c->cfg, s_cmd.name, PATH_LIST_CAMPAIGNS, &q.base,
                        &phuxanh__roster__v1__list_campaigns_response__descriptor, true, &reply);
        if (rc != PXCTL_EXIT_OK) {
            goto done;
        }
        const Phuxanh__Roster__V1__ListCampaignsResponse *r = (const void *)reply;
        if (r->n_campaigns == 0) {
            pxctl_err(s_cmd.name, "the roster has no campaign (give --campaign)");
            rc = PXCTL_EXIT_FAILED;
            goto done;
        }
        snprintf(c->campaign, sizeof c->campaign, "%s", r->campaigns[0]->id);
        area = r->campaigns[0]->unit_code;
    } else if (!c->unit[0]) {
        Phuxanh__Roster__V1__GetCampaignRequest q = PHUXANH__ROSTER__V1__GET_CAMPAIGN_REQUEST__INIT;
        q.id = c->campaign;
        rc = pxctl_call(c->roster, c->cfg, s_cmd.name, PATH_GET_CAMPAIGN, &q.base,
                        &phuxanh__roster__v1__get_campaign_response__descriptor, true, &reply);
        if (rc != PXCTL_EXIT_OK) {
            goto done;
        }
        const Phuxanh__Roster__V1__GetCampaignResponse *r = (const void *)reply;
        area = r->campaign ? r->campaign->unit_code : NULL;
    }
    if (!c->unit[0] && area && *area) {
        snprintf(c->unit, sizeof c->unit, "%s", area);
    }
    if (reply) {
        protobuf_c_message_free_unpacked(reply, NULL);
        reply = NULL;
    }
    if (!c->unit[0]) { /* the campaign names no area: the top of the tree, if it has one top */
        Phuxanh__Roster__V1__ListUnitsRequest q = PHUXANH__ROSTER__V1__LIST_UNITS_REQUEST__INIT;
        q.level = PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_PROVINCE;
        q.page_size = 2;
        rc = pxctl_call(c->roster, c->cfg, s_cmd.name, PATH_LIST_UNITS, &q.base,
                        &phuxanh__roster__v1__list_units_response__descriptor, true, &reply);
        if (rc != PXCTL_EXIT_OK) {
            goto done;
        }
        const Phuxanh__Roster__V1__ListUnitsResponse *r = (const void *)reply;
        if (r->n_units != 1) {
            pxctl_err(s_cmd.name,
                      "campaign %s names no area and the tree has %s province: "
                      "give --unit",
                      c->campaign, r->n_units ? "more than one" : "no");
            rc = PXCTL_EXIT_FAILED;
            goto done;
        }
        snprintf(c->unit, sizeof c->unit, "%s", r->units[0]->code);
    }

done:
    if (reply) {
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    return rc;
}

/* ---------------------------------------------------------------- output */

/* The shortest decimal that reads back as v ("12.5", not "12.500000"): CSV for scripts keeps
 * what the service computed. */
static void s_number(char *buf, size_t cap, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) {
            return;
        }
    }
}

static void s_csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') {
            fputc('"', out);
        }
        fputc(*s, out);
    }
    fputc('"', out);
}

static void s_csv_row(FILE *out, const Phuxanh__Activation__V1__ProgressRow *r)
{
    char pct[32], rate[32];
    s_number(pct, sizeof pct, r->percent);
    s_number(rate, sizeof rate, r->activation_rate);
    s_csv_field(out, r->unit_code);
    fputc(',', out);
    s_csv_field(out, r->unit_name);
    fprintf(out, ",%d,%d,%d,%d,%d,%d,%d,%s,%s,%s\r\n", r->target, r->collected, r->approved,
            r->activated, r->rejected, r->approved_not_activated, r->follow_ups_open, pct, rate,
            r->green ? "true" : "false");
}

static void s_print_csv(FILE *out, const Phuxanh__Activation__V1__GetProgressResponse *p)
{
    fputs("unit_code,unit_name,target,collected,approved,activated,rejected,"
          "approved_not_activated,follow_ups_open,percent,activation_rate,green\r\n",
          out);
    if (p->unit) {
        s_csv_row(out, p->unit);
    }
    for (size_t i = 0; i < p->n_children; i++) {
        s_csv_row(out, p->children[i]);
    }
}

typedef struct {
    char cells[PROGRESS_COLS][PROGRESS_CELL_MAX];
} s_line_t;

static void s_line(s_line_t *l, const Phuxanh__Activation__V1__ProgressRow *r, bool color)
{
    snprintf(l->cells[0], sizeof l->cells[0], "%s", r->unit_code);
    snprintf(l->cells[1], sizeof l->cells[1], "%s", r->unit_name);
    snprintf(l->cells[2], sizeof l->cells[2], "%d", r->target);
    if (r->target == 0) { /* none set (a neighborhood): no target and no percent */
        snprintf(l->cells[2], sizeof l->cells[2], "-");
    }
    snprintf(l->cells[3], sizeof l->cells[3], "%d", r->collected);
    snprintf(l->cells[4], sizeof l->cells[4], "%d", r->approved);
    snprintf(l->cells[5], sizeof l->cells[5], "%d", r->activated);
    if (r->target > 0) {
        snprintf(l->cells[6], sizeof l->cells[6], "%.1f", r->percent);
    } else {
        snprintf(l->cells[6], sizeof l->cells[6], "-");
    }
    /* Phủ xanh: the mark of a unit that reached its target */
    snprintf(l->cells[7], sizeof l->cells[7], "%s",
             !r->green ? ""
             : color   ? "\033[1;32m\u2713\033[0m"
                       : "\u2713");
}

static const char *const s_head[PROGRESS_COLS] = {"CODE",     "UNIT",      "TARGET", "COLLECTED",
                                                  "APPROVED", "ACTIVATED", "%",      ""};
static const bool s_right[PROGRESS_COLS] = {false, false, true, true, true, true, true, false};

static void s_print_cells(FILE *out, const char *const *cells, const size_t *w)
{
    for (int k = 0; k < PROGRESS_COLS - 1; k++) {
        fputs(k ? "  " : "", out);
        pxctl_pad(out, cells[k], w[k], s_right[k]);
    }
    /* the mark, last: no padding at the end of a line */
    fprintf(out, "%s%s\n", *cells[PROGRESS_COLS - 1] ? "  " : "", cells[PROGRESS_COLS - 1]);
}

static void s_print_table(FILE *out, const s_ctx_t *c,
                          const Phuxanh__Activation__V1__GetProgressResponse *p)
{
    size_t n = p->n_children + (p->unit ? 1 : 0);
    s_line_t *lines = calloc(n ? n : 1, sizeof *lines);
    if (!lines) {
        pxctl_err(s_cmd.name, "out of memory");
        return;
    }
    for (size_t i = 0; i < p->n_children; i++) {
        s_line(&lines[i], p->children[i], c->color);
    }
    if (p->unit) {
        s_line(&lines[n - 1], p->unit, c->color);
    }
    size_t w[PROGRESS_COLS], total = 0;
    for (int k = 0; k < PROGRESS_COLS; k++) {
        w[k] = pxctl_width(s_head[k]);
        for (size_t i = 0; i < n; i++) {
            size_t cw = pxctl_width(lines[i].cells[k]);
            w[k] = cw > w[k] ? cw : w[k];
        }
        total += w[k] + (k ? 2 : 0);
    }
    s_print_cells(out, s_head, w);
    for (size_t i = 0; i < n; i++) {
        const char *cells[PROGRESS_COLS];
        for (int k = 0; k < PROGRESS_COLS; k++) {
            cells[k] = lines[i].cells[k];
        }
        if (p->unit && i == n - 1) { /* a rule above the unit's own row, the total */
            for (size_t k = 0; k < total; k++) {
                fputc('-', out);
            }
            fputc('\n', out);
        }
        s_print_cells(out, cells, w);
    }
    free(lines);
}

/* One reading of the progress, printed in the chosen format. */
static int s_show(s_ctx_t *c, const char *title)
{
    Phuxanh__Activation__V1__GetProgressRequest q =
        PHUXANH__ACTIVATION__V1__GET_PROGRESS_REQUEST__INIT;
    q.campaign_id = c->campaign;
    q.unit_code = c->unit;
    ProtobufCMessage *reply = NULL;
    int rc = pxctl_call(c->activation, c->cfg, s_cmd.name, PATH_GET_PROGRESS, &q.base,
                        &phuxanh__activation__v1__get_progress_response__descriptor, true, &reply);
    if (rc != PXCTL_EXIT_OK) {
        return rc;
    }
    const Phuxanh__Activation__V1__GetProgressResponse *p = (const void *)reply;
    switch (c->format) {
    case S_JSON: {
        px_status_t st;
        size_t len = 0;
        char *text = px_json_from_message(reply, &len, &st);
        if (!text) {
            pxctl_err(s_cmd.name, "%s", st.message);
            rc = PXCTL_EXIT_FAILED;
            break;
        }
        fwrite(text, 1, len, stdout);
        fputc('\n', stdout);
        free(text);
        break;
    }
    case S_CSV:
        s_print_csv(stdout, p);
        break;
    case S_TABLE:
        if (title) {
            printf("%s\n\n", title);
        }
        s_print_table(stdout, c, p);
        break;
    }
    protobuf_c_message_free_unpacked(reply, NULL);
    if (fflush(stdout) != 0) {
        pxctl_err(s_cmd.name, "writing: %s", strerror(errno));
        rc = PXCTL_EXIT_FAILED;
    }
    return rc;
}

/* ---------------------------------------------------------------- --watch */

/* Reads what the feed has; true when a change of our unit came. Updates *heard_us. */
static bool s_drain(void *sub, const char *topic, int64_t *heard_us)
{
    bool changed = false;
    char got[PROGRESS_TOPIC_MAX + 1];
    for (;;) {
        int n = zmq_recv(sub, got, sizeof got - 1, ZMQ_DONTWAIT);
        if (n < 0) {
            return changed;
        }
        got[n < (int)sizeof got - 1 ? n : (int)sizeof got - 1] = '\0';
        int more = 0;
        size_t sz = sizeof more;
        zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &sz);
        while (more) { /* the message itself: its figures are read again with GetProgress */
            char junk[64];
            zmq_recv(sub, junk, sizeof junk, 0);
            zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &sz);
        }
        *heard_us = px_clock_us();
        /* the subscription is a prefix: counts.c.25966 also brings counts.c.25966-01 */
        if (strcmp(got, topic) == 0) {
            changed = true;
        }
    }
}

static void s_title(const s_ctx_t *c, int64_t heard_us, int64_t refresh_s, char *buf, size_t cap)
{
    char when[16];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%H:%M:%S", localtime_r(&now, &tm));
    if (px_clock_us() - heard_us > (int64_t)PROGRESS_SILENT_MS * 1000) {
        snprintf(buf, cap, "%s  unit %s  at %s  (the live feed is silent: redrawn every %lld s)",
                 c->campaign, c->unit, when, (long long)refresh_s);
    } else {
        snprintf(buf, cap, "%s  unit %s  at %s  (live; Ctrl-C to stop)", c->campaign, c->unit,
                 when);
    }
}

static int s_watch(s_ctx_t *c, int64_t refresh_s)
{
    int rc = PXCTL_EXIT_FAILED;
    void *zctx = zmq_ctx_new();
    void *sub = zctx ? zmq_socket(zctx, ZMQ_SUB) : NULL;
    char topic[PROGRESS_TOPIC_MAX];
    char *eps = NULL;
    if (!sub) {
        pxctl_err(s_cmd.name, "the feed: %s", zmq_strerror(zmq_errno()));
        goto done;
    }
    snprintf(topic, sizeof topic, "counts.%s.%s", c->campaign, c->unit);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, strlen(topic));
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "hb", 2);
    px_status_t st;
    if (c->curve && px_curve_client_setup(c->curve, sub, "activation", &st) != PX_OK) {
        pxctl_err(s_cmd.name, "the feed: %s", st.message);
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    const char *feed = px_config_get(c->cfg, "activation-feed");
    eps = strdup(feed ? feed : "");
    char *save = NULL;
    int connected = 0;
    for (char *ep = eps ? strtok_r(eps, ",", &save) : NULL; ep; ep = strtok_r(NULL, ",", &save)) {
        ep += strspn(ep, " ");
        if (*ep && zmq_connect(sub, ep) != 0) {
            pxctl_err(s_cmd.name, "--activation-feed %s: %s", ep, zmq_strerror(zmq_errno()));
            rc = PXCTL_EXIT_USAGE;
            goto done;
        }
        connected += *ep != '\0';
    }
    if (!connected) {
        pxctl_err(s_cmd.name, "--watch needs the feed: set --activation-feed (PX_ACTIVATION_FEED)");
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }

    struct sigaction sa = {.sa_handler = s_on_signal}; /* no SA_RESTART: the poll wakes */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int64_t heard_us = px_clock_us(); /* not silent before it had a chance to speak */
    int64_t due_us = 0;               /* next redraw; 0: now */
    bool first = true;
    while (!s_stop) {
        int64_t now = px_clock_us();
        if (now >= due_us) {
            char title[512];
            s_title(c, heard_us, refresh_s, title, sizeof title);
            if (c->in_place) {
                fputs("\033[H\033[2J", stdout); /* home, clear */
            } else if (!first && c->format != S_JSON) {
                fputc('\n', stdout); /* readings one after the other, a blank line between */
            }
            int r = s_show(c, c->format == S_TABLE ? title : NULL);
            if (r == PXCTL_EXIT_USAGE) {
                rc = r;
                goto done;
            }
            first = false;
            int64_t next_ms = r == PXCTL_EXIT_OK ? refresh_s * 1000 : PROGRESS_RETRY_MS;
            if (next_ms > refresh_s * 1000) {
                next_ms = refresh_s * 1000;
            }
            due_us = px_clock_us() + next_ms * 1000;
        }
        zmq_pollitem_t it = {.socket = sub, .events = ZMQ_POLLIN};
        long wait_ms = (long)((due_us - now) / 1000) + 1;
        if (zmq_poll(&it, 1, wait_ms) < 0) {
            if (zmq_errno() == EINTR) {
                continue;
            }
            pxctl_err(s_cmd.name, "the feed: %s", zmq_strerror(zmq_errno()));
            goto done;
        }
        if ((it.revents & ZMQ_POLLIN) && s_drain(sub, topic, &heard_us)) {
            int64_t soon = px_clock_us() + (int64_t)PROGRESS_GATHER_MS * 1000;
            due_us = soon < due_us ? soon : due_us;
        }
    }
    rc = PXCTL_EXIT_OK;

done:
    free(eps);
    if (sub) {
        zmq_close(sub);
    }
    if (zctx) {
        zmq_ctx_term(zctx);
    }
    return rc;
}

int pxctl_progress_main(int argc, char **argv)
{
    pxctl_args_t args;
    int rc = PXCTL_EXIT_FAILED;
    s_ctx_t c = {0};
    if (!pxctl_args_parse(&s_cmd, argc, argv, &args, &rc)) {
        return rc;
    }
    c.cfg = args.cfg;
    c.curve = args.curve;
    bool csv = pxctl_on(args.cfg, "csv"), json = pxctl_on(args.cfg, "json");
    int64_t refresh_s = 30;
    if (csv && json) {
        pxctl_err(s_cmd.name, "--csv or --json, not both");
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    if (!pxctl_int(&s_cmd, args.cfg, "refresh-s", 1, 86400, &refresh_s)) {
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    c.format = csv ? S_CSV : json ? S_JSON : S_TABLE;
    c.color = c.format == S_TABLE && pxctl_color(1);
    const char *term = getenv("TERM");
    c.in_place = c.format == S_TABLE && isatty(1) && !(term && strcmp(term, "dumb") == 0);
    if ((rc = s_resolve(&c)) != PXCTL_EXIT_OK) {
        goto done;
    }
    c.activation = pxctl_client_new(args.cfg, args.curve, &pxctl_services[PXCTL_SVC_ACTIVATION],
                                    NULL, 0, s_cmd.name);
    if (!c.activation) {
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    rc = pxctl_on(args.cfg, "watch") ? s_watch(&c, refresh_s) : s_show(&c, NULL);

done:
    px_rpc_client_destroy(&c.roster);
    px_rpc_client_destroy(&c.activation);
    pxctl_args_free(&args);
    return rc;
}
