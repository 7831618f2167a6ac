/*
 * import.c - pxctl import: CSV files into the roster (units, volunteers,
 * campaigns, waves) and the activation service (targets), all or nothing.
 *
 *   pxctl import units units.csv volunteers volunteers.csv [KIND FILE]... [--dry-run]
 *
 * Every file is read as a stream (csv.c), a record at a time, and checked as it
 * goes: a malformed record or a value that cannot be what its column says is
 * reported with its line and the reading goes on, so one run lists every bad
 * line. The roster's rows are staged in batches (BeginImport, StageRows) and
 * applied by one CommitImport in one transaction, which checks every row
 * again with the service's own rules and names the refused ones by index, which
 * is mapped back here to the file and line. When any row is bad, locally or at
 * the service, the commit is only a check (validate_only) and nothing is
 * written; --dry-run does the same on purpose.
 *
 * Targets belong to another service, so they cannot share the roster's
 * transaction: they are sent after the roster's rows committed (their units
 * may be new), every batch first checked with validate_only and only then
 * written. SetTargets takes 10,000 rows a call, each call all or nothing.
 *
 * Progress goes to stderr: a bar redrawn in place on a terminal, plain lines
 * (one per batch) when it is a pipe or a file, so logs hold no escape codes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "csv.h"
#include "import.h"
#include "phuxanh/activation/v1/activation.pb-c.h"
#include "phuxanh/clock.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "pxctl.h"

#define PATH_BEGIN "/phuxanh.roster.v1.RosterService/BeginImport"
#define PATH_STAGE "/phuxanh.roster.v1.RosterService/StageRows"
#define PATH_COMMIT "/phuxanh.roster.v1.RosterService/CommitImport"
#define PATH_ABORT "/phuxanh.roster.v1.RosterService/AbortImport"
#define PATH_SET_TARGETS "/phuxanh.activation.v1.ActivationService/SetTargets"

/* What one StageRows and one SetTargets take (roster.proto, activation.proto). */
#define IMPORT_CALL_MAX 10000
/* Bytes of rows in one StageRows: well inside the services' 4 MiB message bound, whatever
 * the rows hold (a batch is sent early when its rows are long). */
#define IMPORT_BATCH_BYTES (1024 * 1024)
/* Rows of one import (roster.proto's bound, kept for targets too): the line of every row is
 * kept to report the service's errors against it. */
#define IMPORT_MAX_ROWS 200000
/* A commit checks and writes every row in one transaction: 50,000 rows take seconds, so it
 * gets far longer than an ordinary call. */
#define IMPORT_COMMIT_TIMEOUT_MS 600000
/* The bar is redrawn at most this often. */
#define IMPORT_BAR_EVERY_US 100000
#define IMPORT_BAR_WIDTH 30
/* Bad rows printed per file; the count is always complete. */
#define IMPORT_MAX_REPORTED 1000

static const pxctl_option_t s_options[] = {
    {{"dry-run", NULL, "off", "check every row (with the services' own rules); write nothing"},
     PXCTL_SWITCH,
     'n'},
    {{"batch-rows", "PX_IMPORT_BATCH_ROWS", "5000", "rows per call while staging (1 to 10000)"},
     0,
     0},
    {{"commit-timeout-ms", "PX_IMPORT_COMMIT_TIMEOUT_MS", "600000",
      "how long the commit (every row checked and written) may take"},
     0,
     0},
    {{NULL, NULL, NULL, NULL}, 0, 0},
};

static const pxctl_command_t s_cmd = {
    .name = "import",
    .synopsis = "KIND FILE.csv [KIND FILE.csv]...",
    .summary = "CSV files into the roster and the activation service, all or nothing",
    .details =
        "KIND is units, volunteers, campaigns, waves or targets; FILE is a CSV file with a\n"
        "header row (RFC 4180, UTF-8; columns found by name, in any order), '-' for stdin:\n"
        "  units       code, name, level (province, district, ward or commune,\n"
        "              neighborhood), parent_code\n"
        "  volunteers  code, full_name; rank, department, union_role, phone, active optional\n"
        "  campaigns   id, name, starts_on, ends_on; unit_code optional (default: the one\n"
        "              district holding the wards of the units file imported with it)\n"
        "  waves       campaign, day; capacity optional (default 30 for a new wave)\n"
        "  targets     campaign, unit_code, target_activated\n\n"
        "Every file is read to the end and every bad row reported as FILE:LINE: field:\n"
        "reason. The roster's files are one import: every row of them is written, in one\n"
        "transaction, or none is - a single bad row anywhere writes nothing. Importing the\n"
        "same files again changes nothing.\n\n"
        "Targets go to the activation service after the roster's rows are written (they may\n"
        "name new units). Each call takes 10,000 targets and is all or nothing; a larger file\n"
        "is checked in full first (every call validate_only) and then written call by call,\n"
        "so only a failure between those calls (a service going down) can leave part of it\n"
        "written - run the same import again to finish it. With --dry-run, targets naming\n"
        "units that only this import would add are reported as unknown.\n\n"
        "Examples:\n"
        "  pxctl import units units.csv volunteers volunteers.csv\n"
        "  pxctl import --dry-run volunteers big.csv\n"
        "  pxctl import campaigns campaign.csv waves waves.csv targets targets.csv",
    .options = s_options,
    .common = PXCTL_COMMON_SERVICES,
    .min_args = 2,
    .max_args = 10,
};

/* ---------------------------------------------------------------- kinds and files */

typedef enum { K_UNITS, K_VOLUNTEERS, K_CAMPAIGNS, K_WAVES, K_TARGETS, K_COUNT } s_kind_t;

typedef struct s_import s_import_t;
typedef struct s_file s_file_t;

/* Column slots a kind reads; -1 when the file has no such column. */
#define S_COLS 8

typedef struct {
    const char *name;
    /* Column names, slot by slot, each "name" or "name|alias|..."; a leading '?' is optional. */
    const char *columns[S_COLS];
    /* The row as a message (malloc'd, freed with protobuf_c_message_free_unpacked), or NULL
     * with the problem reported. */
    ProtobufCMessage *(*map)(s_import_t *im, s_file_t *f, const pxctl_csv_rec_t *rec);
} s_kind_def_t;

struct s_file {
    s_kind_t kind;
    const char *path;
    pxctl_csv_t *csv;
    int col[S_COLS];
    /* The line of each row sent, by its index (the service names rows by index). */
    int *lines;
    size_t nrows, caprows;
    size_t bad, reported;
    /* Rows read but not yet sent. */
    ProtobufCMessage **batch;
    size_t nbatch;
    size_t batch_bytes;
};

struct s_import {
    const px_config_t *cfg;
    px_rpc_client_t *roster, *activation;
    char import_id[64];
    bool begun;
    bool dry_run;
    size_t batch_rows;
    int64_t commit_timeout_ms;
    s_file_t files[K_COUNT];
    bool have[K_COUNT];
    size_t bad; /* bad rows over all files, local and the services' */
    bool bar;   /* a progress bar on a terminal */
    bool bar_shown;
    int64_t bar_at;
    long inserted, updated, unchanged; /* the roster's, over all kinds */
    char district[64];                 /* the one district holding the units file's wards, or "" */
    bool several_districts;
    /* targets: every row kept until the roster is done */
    ProtobufCMessage **targets;
    size_t ntargets;
};

static const s_kind_def_t s_kinds[K_COUNT];

/* ---------------------------------------------------------------- output */

static void s_bar_clear(s_import_t *im)
{
    if (im->bar_shown) {
        fputs("\r\033[K", stderr);
        im->bar_shown = false;
    }
}

/* "FILE:LINE: field: reason" on stderr, for the first IMPORT_MAX_REPORTED of a file. */
static void s_row_error(s_import_t *im, s_file_t *f, int line, const char *field, const char *fmt,
                        ...) __attribute__((format(printf, 5, 6)));
static void s_row_error(s_import_t *im, s_file_t *f, int line, const char *field, const char *fmt,
                        ...)
{
    f->bad++;
    im->bad++;
    if (f->reported++ >= IMPORT_MAX_REPORTED) {
        return;
    }
    s_bar_clear(im);
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0) {
        fprintf(stderr, "%s:%d: %s: %s\n", f->path, line, field && *field ? field : "(row)", msg);
    } else {
        fprintf(stderr, "%s: %s: %s\n", f->path, field && *field ? field : "(row)", msg);
    }
}

static void s_progress(s_import_t *im, s_file_t *f, bool done)
{
    size_t rows = f->nrows + f->nbatch + f->bad;
    if (!im->bar) {
        fprintf(stderr, "%s: %zu rows read%s\n", f->path, rows, done ? ", to the end" : "");
        return;
    }
    int64_t now = px_clock_us();
    if (!done && now - im->bar_at < IMPORT_BAR_EVERY_US) {
        return;
    }
    im->bar_at = now;
    uint64_t size = pxctl_csv_size(f->csv), off = pxctl_csv_offset(f->csv);
    int pct = size ? (int)(off * 100 / size) : 0;
    if (done || pct > 100) {
        pct = 100;
    }
    char bar[IMPORT_BAR_WIDTH + 1];
    int fill = pct * IMPORT_BAR_WIDTH / 100;
    for (int i = 0; i < IMPORT_BAR_WIDTH; i++) {
        bar[i] = i < fill ? '#' : '.';
    }
    bar[IMPORT_BAR_WIDTH] = '\0';
    fprintf(stderr, "\r\033[K%s [%s] %3d%% %zu rows", f->path, bar, pct, rows);
    im->bar_shown = true;
    if (done) {
        fputc('\n', stderr);
        im->bar_shown = false;
    }
    fflush(stderr);
}

/* ---------------------------------------------------------------- mapping rows */

static const char *s_field(const s_file_t *f, const pxctl_csv_rec_t *rec, int slot)
{
    int c = f->col[slot];
    return c >= 0 && (size_t)c < rec->n ? rec->fields[c] : "";
}

static char *s_dup(s_import_t *im, const char *s, bool *oom)
{
    (void)im;
    char *d = strdup(s);
    if (!d) {
        *oom = true;
    }
    return d;
}

/* The message made for a row, or NULL (and the row counted bad) when memory ran out. */
static ProtobufCMessage *s_mapped(s_import_t *im, s_file_t *f, const pxctl_csv_rec_t *rec,
                                  ProtobufCMessage *m, bool oom)
{
    if (oom) {
        if (m) {
            protobuf_c_message_free_unpacked(m, NULL);
        }
        s_row_error(im, f, rec->line, "", "out of memory");
        return NULL;
    }
    return m;
}

static const struct {
    const char *name;
    Phuxanh__Roster__V1__UnitLevel level;
} s_levels[] = {
    {"province", PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_PROVINCE},
    {"district", PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_DISTRICT},
    {"ward", PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_WARD},
    {"commune", PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_WARD},
    {"neighborhood", PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_NEIGHBORHOOD},
};

static const struct {
    const char *name;
    bool value;
} s_bools[] = {
    {"true", true}, {"1", true}, {"yes", true}, {"false", false}, {"0", false}, {"no", false},
};

/* A whole number in [min, max]; false when the text is not one. */
static bool s_int(const char *s, long min, long max, int32_t *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || errno || *end || v < min || v > max) {
        return false;
    }
    *out = (int32_t)v;
    return true;
}

static ProtobufCMessage *s_map_unit(s_import_t *im, s_file_t *f, const pxctl_csv_rec_t *rec)
{
    Phuxanh__Roster__V1__UnitLevel level = 0;
    const char *lv = s_field(f, rec, 2);
    for (size_t i = 0; i < sizeof s_levels / sizeof s_levels[0] && !level; i++) {
        if (strcasecmp(lv, s_levels[i].name) == 0) {
            level = s_levels[i].level;
        }
    }
    if (!level) {
        s_row_error(im, f, rec->line, "level",
                    "\"%.40s\" is not province, district, ward, commune or neighborhood", lv);
        return NULL;
    }
    Phuxanh__Roster__V1__Unit *u = malloc(sizeof *u);
    bool oom = !u;
    if (u) {
        phuxanh__roster__v1__unit__init(u);
        u->code = s_dup(im, s_field(f, rec, 0), &oom);
        u->name = s_dup(im, s_field(f, rec, 1), &oom);
        u->level = level;
        u->parent_code = s_dup(im, s_field(f, rec, 3), &oom);
    }
    if (!oom && level == PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_WARD && *u->parent_code) {
        if (!im->district[0] && strlen(u->parent_code) < sizeof im->district) {
            snprintf(im->district, sizeof im->district, "%s", u->parent_code);
        } else if (strcmp(im->district, u->parent_code) != 0) {
            im->several_districts = true;
        }
    }
    return s_mapped(im, f, rec, &u->base, oom);
}

static ProtobufCMessage *s_map_volunteer(s_import_t *im, s_file_t *f, const pxctl_csv_rec_t *rec)
{
    const char *a = s_field(f, rec, 6);
    bool active = true;
    bool has_active = *a != '\0';
    if (has_active) {
        size_t i = 0;
        while (i < sizeof s_bools / sizeof s_bools[0] && strcasecmp(a, s_bools[i].name) != 0) {
            i++;
        }
        if (i == sizeof s_bools / sizeof s_bools[0]) {
            s_row_error(im, f, rec->line, "active", "\"%.20s\" is not true or false", a);
            return NULL;
        }
        active = s_bools[i].value;
    }
    Phuxanh__Roster__V1__Volunteer *v = malloc(sizeof *v);
    bool oom = !v;
    if (v) {
        phuxanh__roster__v1__volunteer__init(v);
        v->code = s_dup(im, s_field(f, rec, 0), &oom);
        v->full_name = s_dup(im, s_field(f, rec, 1), &oom);
        v->rank = s_dup(im, s_field(f, rec, 2), &oom);
        v->department = s_dup(im, s_field(f, rec, 3), &oom);
        v->union_role = s_dup(im, s_field(f, rec, 4), &oom);
        v->phone = s_dup(im, s_field(f, rec, 5), &oom);
        if (has_active) { /* absent: the stored value stays */
            v->active = malloc(sizeof *v->active);
            if (v->active) {
                google__protobuf__bool_value__init(v->active);
                v->active->value = active;
            } else {
                oom = true;
            }
        }
    }
    return s_mapped(im, f, rec, &v->base, oom);
}

static ProtobufCMessage *s_map_campaign(s_import_t *im, s_file_t *f, const pxctl_csv_rec_t *rec)
{
    Phuxanh__Roster__V1__Campaign *c = malloc(sizeof *c);
    bool oom = !c;
    if (c) {
        phuxanh__roster__v1__campaign__init(c);
        c->id = s_dup(im, s_field(f, rec, 0), &oom);
        c->name = s_dup(im, s_field(f, rec, 1), &oom);
        c->starts_on = s_dup(im, s_field(f, rec, 2), &oom);
        c->ends_on = s_dup(im, s_field(f, rec, 3), &oom);
        const char *unit = f->col[4] >= 0          ? s_field(f, rec, 4)
                           : im->several_districts ? ""
                                                   : im->district;
        c->unit_code = s_dup(im, unit, &oom);
    }
    return s_mapped(im, f, rec, &c->base, oom);
}

static ProtobufCMessage *s_map_wave(s_import_t *im, s_file_t *f, const pxctl_csv_rec_t *rec)
{
    int32_t capacity = 0;
    const char *cap = s_field(f, rec, 2);
    if (*cap && !s_int(cap, 1, 1000, &capacity)) {
        s_row_error(im, f, rec->line, "capacity", "\"%.20s\" is not a whole number from 1 to 1000",
                    cap);
        return NULL;
    }
    Phuxanh__Roster__V1__Wave *w = malloc(sizeof *w);
    bool oom = !w;
    if (w) {
        phuxanh__roster__v1__wave__init(w);
        w->campaign_id = s_dup(im, s_field(f, rec, 0), &oom);
        w->day = s_dup(im, s_field(f, rec, 1), &oom);
        w->capacity = capacity;
    }
    return s_mapped(im, f, rec, &w->base, oom);
}

static ProtobufCMessage *s_map_target(s_import_t *im, s_file_t *f, const pxctl_csv_rec_t *rec)
{
    int32_t target = 0;
    const char *t = s_field(f, rec, 2);
    if (!s_int(t, 0, 100000000, &target)) {
        s_row_error(im, f, rec->line, "target",
                    "\"%.20s\" is not a whole number from 0 to "
                    "100,000,000",
                    t);
        return NULL;
    }
    Phuxanh__Activation__V1__Target *x = malloc(sizeof *x);
    bool oom = !x;
    if (x) {
        phuxanh__activation__v1__target__init(x);
        x->campaign_id = s_dup(im, s_field(f, rec, 0), &oom);
        x->unit_code = s_dup(im, s_field(f, rec, 1), &oom);
        x->target = target;
    }
    return s_mapped(im, f, rec, &x->base, oom);
}

static const s_kind_def_t s_kinds[K_COUNT] = {
    [K_UNITS] = {"units", {"code", "name", "level", "parent_code|parent"}, s_map_unit},
    [K_VOLUNTEERS] = {"volunteers",
                      {"code", "full_name|name", "?rank", "?department", "?union_role", "?phone",
                       "?active"},
                      s_map_volunteer},
    [K_CAMPAIGNS] = {"campaigns",
                     {"id|campaign_id|campaign", "name", "starts_on", "ends_on", "?unit_code"},
                     s_map_campaign},
    [K_WAVES] = {"waves", {"campaign|campaign_id", "day", "?capacity"}, s_map_wave},
    [K_TARGETS] = {"targets",
                   {"campaign|campaign_id", "unit_code", "target_activated|target"},
                   s_map_target},
};

/* The header's column for one slot's names ("a|b"), ASCII case-insensitive, spaces around
 * ignored; -1 when none. */
static int s_find_col(const pxctl_csv_rec_t *hdr, const char *names)
{
    const char *p = names[0] == '?' ? names + 1 : names;
    while (*p) {
        size_t nl = strcspn(p, "|");
        for (size_t i = 0; i < hdr->n; i++) {
            const char *h = hdr->fields[i];
            while (*h == ' ') {
                h++;
            }
            size_t hl = strlen(h);
            while (hl > 0 && h[hl - 1] == ' ') {
                hl--;
            }
            if (hl == nl && strncasecmp(h, p, nl) == 0) {
                return (int)i;
            }
        }
        p += nl + (p[nl] == '|');
    }
    return -1;
}

/* ---------------------------------------------------------------- calls */

static int s_call(s_import_t *im, px_rpc_client_t *client, const char *path,
                  const ProtobufCMessage *req, const ProtobufCMessageDescriptor *type,
                  bool idempotent, int64_t timeout_ms, ProtobufCMessage **reply)
{
    char rid[33];
    px_status_t st;
    *reply = NULL;
    px_md_t *md = pxctl_md_new(im->cfg, rid);
    if (!md) {
        pxctl_err(s_cmd.name, "out of memory");
        return PXCTL_EXIT_FAILED;
    }
    px_rpc_call_opts_t o = {.timeout_ms = timeout_ms, .idempotent = idempotent, .metadata = md};
    px_code_t code = px_rpc_client_call(client, path, req, type, reply, &o, &st);
    px_md_destroy(&md);
    if (code != PX_OK) {
        s_bar_clear(im);
        pxctl_err(s_cmd.name, "%s: %s (%s, request id %s)", px_code_name(code), st.message, path,
                  rid);
        return pxctl_exit_for(code);
    }
    return PXCTL_EXIT_OK;
}

static int64_t s_timeout(s_import_t *im)
{
    int64_t t = 10000;
    px_status_t st;
    if (px_config_int(im->cfg, "timeout-ms", 1, PX_RPC_MAX_TIMEOUT_MS, &t, &st) != PX_OK) {
        t = 10000; /* checked when the command started */
    }
    return t;
}

static int s_begin(s_import_t *im)
{
    Phuxanh__Roster__V1__BeginImportRequest req = PHUXANH__ROSTER__V1__BEGIN_IMPORT_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;
    int rc = s_call(im, im->roster, PATH_BEGIN, &req.base,
                    &phuxanh__roster__v1__begin_import_response__descriptor, false, s_timeout(im),
                    &reply);
    if (rc != PXCTL_EXIT_OK) {
        return rc;
    }
    const char *id = ((Phuxanh__Roster__V1__BeginImportResponse *)reply)->import_id;
    snprintf(im->import_id, sizeof im->import_id, "%s", id ? id : "");
    protobuf_c_message_free_unpacked(reply, NULL);
    im->begun = true;
    return PXCTL_EXIT_OK;
}

static void s_abort(s_import_t *im)
{
    if (!im->begun) {
        return;
    }
    Phuxanh__Roster__V1__AbortImportRequest req = PHUXANH__ROSTER__V1__ABORT_IMPORT_REQUEST__INIT;
    req.import_id = im->import_id;
    ProtobufCMessage *reply = NULL;
    if (s_call(im, im->roster, PATH_ABORT, &req.base,
               &phuxanh__roster__v1__abort_import_response__descriptor, true, s_timeout(im),
               &reply) == PXCTL_EXIT_OK) {
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    im->begun = false;
}

static void s_free_batch(s_file_t *f)
{
    for (size_t i = 0; i < f->nbatch; i++) {
        protobuf_c_message_free_unpacked(f->batch[i], NULL);
    }
    f->nbatch = 0;
    f->batch_bytes = 0;
}

/* Sends the file's pending rows with StageRows; their lines are already in f->lines. */
static int s_stage(s_import_t *im, s_file_t *f)
{
    if (f->nbatch == 0) {
        return PXCTL_EXIT_OK;
    }
    Phuxanh__Roster__V1__StageRowsRequest req = PHUXANH__ROSTER__V1__STAGE_ROWS_REQUEST__INIT;
    req.import_id = im->import_id;
    req.first_index = (int32_t)(f->nrows - f->nbatch);
    switch (f->kind) {
    case K_UNITS:
        req.units = (Phuxanh__Roster__V1__Unit **)f->batch;
        req.n_units = f->nbatch;
        break;
    case K_VOLUNTEERS:
        req.volunteers = (Phuxanh__Roster__V1__Volunteer **)f->batch;
        req.n_volunteers = f->nbatch;
        break;
    case K_CAMPAIGNS:
        req.campaigns = (Phuxanh__Roster__V1__Campaign **)f->batch;
        req.n_campaigns = f->nbatch;
        break;
    default:
        req.waves = (Phuxanh__Roster__V1__Wave **)f->batch;
        req.n_waves = f->nbatch;
        break;
    }
    ProtobufCMessage *reply = NULL;
    int rc =
        s_call(im, im->roster, PATH_STAGE, &req.base,
               &phuxanh__roster__v1__stage_rows_response__descriptor, true, s_timeout(im), &reply);
    if (reply) {
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    s_free_batch(f);
    return rc;
}

/* ---------------------------------------------------------------- reading a file */

/* Reads f to its end: every row checked, good ones staged (roster) or kept (targets). A
 * failure here is one of a call or of the file as a whole; bad rows are only counted. */
static int s_read_file(s_import_t *im, s_file_t *f)
{
    const s_kind_def_t *k = &s_kinds[f->kind];
    pxctl_csv_rec_t *rec = malloc(sizeof *rec);
    int rc = PXCTL_EXIT_FAILED;
    if (!rec) {
        pxctl_err(s_cmd.name, "out of memory");
        return rc;
    }
    f->csv = pxctl_csv_open(f->path);
    if (!f->csv) {
        pxctl_err(s_cmd.name, "%s: %s", f->path, strerror(errno));
        goto done;
    }
    int got = pxctl_csv_next(f->csv, rec);
    if (got <= 0 || rec->err[0]) {
        s_row_error(im, f, 1, "", "%s",
                    got == 0      ? "no header row"
                    : rec->err[0] ? rec->err
                                  : "unreadable header");
        rc = PXCTL_EXIT_OK; /* counted as a bad row: the other files are still checked */
        goto done;
    }
    bool cols_ok = true;
    for (int s = 0; s < S_COLS; s++) {
        f->col[s] = k->columns[s] ? s_find_col(rec, k->columns[s]) : -1;
        if (k->columns[s] && k->columns[s][0] != '?' && f->col[s] < 0) {
            size_t nl = strcspn(k->columns[s], "|");
            s_row_error(im, f, 1, "", "no column %.*s in the header", (int)nl, k->columns[s]);
            cols_ok = false;
        }
    }
    if (!cols_ok) {
        rc = PXCTL_EXIT_OK;
        goto done;
    }
    size_t ncols = rec->n;
    for (;;) {
        got = pxctl_csv_next(f->csv, rec);
        if (got == 0) {
            break;
        }
        if (got < 0) {
            s_row_error(im, f, rec->line, "", "%s; the rest of the file cannot be read", rec->err);
            break;
        }
        if (rec->err[0]) {
            s_row_error(im, f, rec->line, "", "%s", rec->err);
            continue;
        }
        if (rec->n != ncols) {
            s_row_error(im, f, rec->line, "", "%zu fields where the header has %zu", rec->n, ncols);
            continue;
        }
        if (f->nrows >= IMPORT_MAX_ROWS) {
            s_row_error(im, f, rec->line, "", "more than %d rows in one import; split the file",
                        IMPORT_MAX_ROWS);
            break;
        }
        ProtobufCMessage *m = k->map(im, f, rec);
        if (!m) {
            continue; /* reported */
        }
        if (f->nrows == f->caprows) {
            size_t cap = f->caprows ? f->caprows * 2 : 1024;
            int *l = realloc(f->lines, cap * sizeof *l);
            if (!l) {
                protobuf_c_message_free_unpacked(m, NULL);
                pxctl_err(s_cmd.name, "out of memory");
                goto done;
            }
            f->lines = l;
            f->caprows = cap;
        }
        f->lines[f->nrows++] = rec->line;
        if (f->kind == K_TARGETS) {
            im->targets[im->ntargets++] = m;
        } else {
            f->batch[f->nbatch++] = m;
            f->batch_bytes += protobuf_c_message_get_packed_size(m);
            if (f->nbatch == im->batch_rows || f->batch_bytes >= IMPORT_BATCH_BYTES) {
                if ((rc = s_stage(im, f)) != PXCTL_EXIT_OK) {
                    goto done;
                }
                s_progress(im, f, false);
            }
        }
        if (im->bar) {
            s_progress(im, f, false);
        }
    }
    if (f->kind != K_TARGETS && (rc = s_stage(im, f)) != PXCTL_EXIT_OK) {
        goto done;
    }
    s_progress(im, f, true);
    rc = PXCTL_EXIT_OK;
done:
    s_bar_clear(im);
    pxctl_csv_destroy(&f->csv);
    free(rec);
    return rc;
}

/* ---------------------------------------------------------------- committing */

static const s_kind_t s_roster_kind[] = {
    [PHUXANH__ROSTER__V1__IMPORT_KIND__IMPORT_KIND_UNITS] = K_UNITS,
    [PHUXANH__ROSTER__V1__IMPORT_KIND__IMPORT_KIND_VOLUNTEERS] = K_VOLUNTEERS,
    [PHUXANH__ROSTER__V1__IMPORT_KIND__IMPORT_KIND_CAMPAIGNS] = K_CAMPAIGNS,
    [PHUXANH__ROSTER__V1__IMPORT_KIND__IMPORT_KIND_WAVES] = K_WAVES,
};

static int s_line_of(const s_file_t *f, int32_t index)
{
    return index >= 0 && (size_t)index < f->nrows ? f->lines[index] : 0;
}

/* The service names a repeated row by its index in what was sent ("... appears twice in the
 * batch (first at index 7)"); the operator knows the file: the same words with its line. */
static const char *s_in_file(const s_file_t *f, const char *msg, char *buf, size_t cap)
{
    static const char mark[] = " in the batch (first at index ";
    const char *at = strstr(msg, mark);
    if (!at) {
        return msg;
    }
    char *end = NULL;
    long index = strtol(at + strlen(mark), &end, 10);
    if (end == at + strlen(mark) || *end != ')') {
        return msg;
    }
    snprintf(buf, cap, "%.*s in the file (first on line %d)%s", (int)(at - msg), msg,
             s_line_of(f, (int32_t)index), end + 1);
    return buf;
}

/* CommitImport: a real one when nothing was bad and this is no dry run, else a check. */
static int s_commit(s_import_t *im, bool *committed)
{
    *committed = false;
    Phuxanh__Roster__V1__CommitImportRequest req = PHUXANH__ROSTER__V1__COMMIT_IMPORT_REQUEST__INIT;
    req.import_id = im->import_id;
    req.validate_only = im->dry_run || im->bad > 0;
    req.units = (int32_t)im->files[K_UNITS].nrows;
    req.volunteers = (int32_t)im->files[K_VOLUNTEERS].nrows;
    req.campaigns = (int32_t)im->files[K_CAMPAIGNS].nrows;
    req.waves = (int32_t)im->files[K_WAVES].nrows;
    ProtobufCMessage *reply = NULL;
    int rc = s_call(im, im->roster, PATH_COMMIT, &req.base,
                    &phuxanh__roster__v1__commit_import_response__descriptor, false,
                    im->commit_timeout_ms, &reply);
    im->begun = rc != PXCTL_EXIT_OK; /* an answer ends the import; a failure may not have */
    if (rc != PXCTL_EXIT_OK) {
        if (!req.validate_only) {
            pxctl_err(s_cmd.name, "whether the import was written is not known (all of it or "
                                  "none); run it again: the same files twice change nothing");
        }
        return rc;
    }
    const Phuxanh__Roster__V1__CommitImportResponse *r =
        (const Phuxanh__Roster__V1__CommitImportResponse *)reply;
    for (size_t i = 0; i < r->n_results; i++) {
        const Phuxanh__Roster__V1__ImportResult *x = r->results[i];
        if ((int)x->kind < 1 || (size_t)x->kind >= sizeof s_roster_kind / sizeof *s_roster_kind) {
            continue;
        }
        s_file_t *f = &im->files[s_roster_kind[x->kind]];
        for (size_t e = 0; e < x->n_errors; e++) {
            const Phuxanh__Roster__V1__RowError *re = x->errors[e];
            char buf[600];
            s_row_error(im, f, s_line_of(f, re->index), re->field, "%s",
                        s_in_file(f, re->message ? re->message : "", buf, sizeof buf));
        }
        for (size_t e = x->n_errors; e < (size_t)x->refused; e++) {
            f->bad++; /* refused but not listed: counted all the same */
            im->bad++;
        }
    }
    /* The counts mean something only for a set that is fine: written, or a clean dry run. */
    for (size_t i = 0; im->bad == 0 && i < r->n_results; i++) {
        const Phuxanh__Roster__V1__ImportResult *x = r->results[i];
        if ((int)x->kind >= 1 && (size_t)x->kind < sizeof s_roster_kind / sizeof *s_roster_kind) {
            printf("%s: %sinserted=%d updated=%d unchanged=%d\n",
                   s_kinds[s_roster_kind[x->kind]].name, r->committed ? "" : "would be ",
                   x->inserted, x->updated, x->unchanged);
            im->inserted += x->inserted;
            im->updated += x->updated;
            im->unchanged += x->unchanged;
        }
    }
    *committed = r->committed;
    protobuf_c_message_free_unpacked(reply, NULL);
    return PXCTL_EXIT_OK;
}

/* SetTargets over every kept target, call by call: validate_only, or for real. */
static int s_targets_pass(s_import_t *im, bool validate_only, int *ins, int *upd, int *same)
{
    s_file_t *f = &im->files[K_TARGETS];
    for (size_t off = 0; off < im->ntargets; off += IMPORT_CALL_MAX) {
        size_t n = im->ntargets - off < IMPORT_CALL_MAX ? im->ntargets - off : IMPORT_CALL_MAX;
        Phuxanh__Activation__V1__SetTargetsRequest req =
            PHUXANH__ACTIVATION__V1__SET_TARGETS_REQUEST__INIT;
        req.targets = (Phuxanh__Activation__V1__Target **)im->targets + off;
        req.n_targets = n;
        req.validate_only = validate_only;
        ProtobufCMessage *reply = NULL;
        int rc = s_call(im, im->activation, PATH_SET_TARGETS, &req.base,
                        &phuxanh__activation__v1__set_targets_response__descriptor, true,
                        s_timeout(im), &reply);
        if (rc != PXCTL_EXIT_OK) {
            return rc;
        }
        const Phuxanh__Activation__V1__SetTargetsResponse *r =
            (const Phuxanh__Activation__V1__SetTargetsResponse *)reply;
        for (size_t e = 0; e < r->n_errors; e++) {
            const Phuxanh__Activation__V1__RowError *re = r->errors[e];
            s_row_error(im, f, s_line_of(f, (int32_t)off + re->index), re->field, "%s",
                        re->message);
        }
        bool refused = r->n_errors > 0 || (!validate_only && !r->committed);
        *ins += r->inserted;
        *upd += r->updated;
        *same += r->unchanged;
        protobuf_c_message_free_unpacked(reply, NULL);
        if (refused && !validate_only) {
            if (off > 0) {
                pxctl_err(s_cmd.name,
                          "targets: rows before line %d were written, the rest were not; "
                          "import the same file again once it is fixed",
                          s_line_of(f, (int32_t)off));
            }
            return PXCTL_EXIT_FAILED;
        }
    }
    return PXCTL_EXIT_OK;
}

static int s_targets(s_import_t *im, bool write)
{
    int ins = 0, upd = 0, same = 0;
    size_t bad_before = im->bad;
    int rc = s_targets_pass(im, true, &ins, &upd, &same);
    if (rc != PXCTL_EXIT_OK || im->bad > bad_before || !write) {
        if (rc == PXCTL_EXIT_OK && im->bad == bad_before) {
            printf("targets: would be inserted=%d updated=%d unchanged=%d\n", ins, upd, same);
        }
        return rc;
    }
    ins = upd = same = 0;
    if ((rc = s_targets_pass(im, false, &ins, &upd, &same)) != PXCTL_EXIT_OK) {
        return rc;
    }
    printf("targets: inserted=%d updated=%d unchanged=%d\n", ins, upd, same);
    return PXCTL_EXIT_OK;
}

/* ---------------------------------------------------------------- the command */

static int s_parse_files(s_import_t *im, const pxctl_args_t *args)
{
    if (args->npos % 2 != 0) {
        pxctl_err(s_cmd.name, "arguments come in pairs, KIND FILE (pxctl import --help)");
        return PXCTL_EXIT_USAGE;
    }
    for (int i = 0; i < args->npos; i += 2) {
        int k = 0;
        while (k < K_COUNT && strcmp(args->pos[i], s_kinds[k].name) != 0) {
            k++;
        }
        if (k == K_COUNT) {
            pxctl_err(s_cmd.name, "'%.40s' is not units, volunteers, campaigns, waves or targets",
                      args->pos[i]);
            return PXCTL_EXIT_USAGE;
        }
        if (im->have[k]) {
            pxctl_err(s_cmd.name, "%s: given twice; one file of each kind", s_kinds[k].name);
            return PXCTL_EXIT_USAGE;
        }
        im->have[k] = true;
        im->files[k].kind = (s_kind_t)k;
        im->files[k].path = args->pos[i + 1];
    }
    return PXCTL_EXIT_OK;
}

int pxctl_import_main(int argc, char **argv)
{
    pxctl_args_t args;
    int rc = PXCTL_EXIT_FAILED;
    s_import_t im;
    memset(&im, 0, sizeof im);
    if (!pxctl_args_parse(&s_cmd, argc, argv, &args, &rc)) {
        return rc;
    }
    im.cfg = args.cfg;
    im.dry_run = pxctl_on(args.cfg, "dry-run");
    int64_t batch = 0;
    if (!pxctl_int(&s_cmd, args.cfg, "batch-rows", 1, IMPORT_CALL_MAX, &batch) ||
        !pxctl_int(&s_cmd, args.cfg, "commit-timeout-ms", 1, PX_RPC_MAX_TIMEOUT_MS,
                   &im.commit_timeout_ms) ||
        !pxctl_int(&s_cmd, args.cfg, "timeout-ms", 1, PX_RPC_MAX_TIMEOUT_MS, &(int64_t){0})) {
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    im.batch_rows = (size_t)batch;
    if ((rc = s_parse_files(&im, &args)) != PXCTL_EXIT_OK) {
        goto done;
    }
    rc = PXCTL_EXIT_FAILED;
    const char *term = getenv("TERM");
    im.bar = isatty(STDERR_FILENO) && !(term && strcmp(term, "dumb") == 0);
    bool roster =
        im.have[K_UNITS] || im.have[K_VOLUNTEERS] || im.have[K_CAMPAIGNS] || im.have[K_WAVES];
    for (int k = 0; k < K_COUNT; k++) {
        im.files[k].batch = calloc(im.batch_rows, sizeof *im.files[k].batch);
        if (!im.files[k].batch) {
            pxctl_err(s_cmd.name, "out of memory");
            goto done;
        }
    }
    if (im.have[K_TARGETS] && !(im.targets = calloc(IMPORT_MAX_ROWS, sizeof *im.targets))) {
        pxctl_err(s_cmd.name, "out of memory");
        goto done;
    }
    if (roster &&
        !(im.roster = pxctl_client_new(args.cfg, args.curve, &pxctl_services[PXCTL_SVC_ROSTER],
                                       NULL, 0, s_cmd.name))) {
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    if (im.have[K_TARGETS] &&
        !(im.activation = pxctl_client_new(
              args.cfg, args.curve, &pxctl_services[PXCTL_SVC_ACTIVATION], NULL, 0, s_cmd.name))) {
        rc = PXCTL_EXIT_USAGE;
        goto done;
    }
    if (roster && (rc = s_begin(&im)) != PXCTL_EXIT_OK) {
        goto done;
    }
    /* In the order the roster applies them: a campaign's default area comes from the units. */
    for (int k = 0; k < K_COUNT; k++) {
        if (im.have[k] && (rc = s_read_file(&im, &im.files[k])) != PXCTL_EXIT_OK) {
            goto done;
        }
    }
    bool committed = false;
    if (roster && (rc = s_commit(&im, &committed)) != PXCTL_EXIT_OK) {
        goto done;
    }
    size_t roster_rows = 0;
    for (int k = K_UNITS; k <= K_WAVES; k++) {
        roster_rows += im.files[k].nrows;
    }
    if (roster && committed) {
        printf("import: committed in one transaction: %zu rows (inserted=%ld updated=%ld "
               "unchanged=%ld)\n",
               roster_rows, im.inserted, im.updated, im.unchanged);
    }
    if (im.have[K_TARGETS]) {
        bool write = !im.dry_run && im.bad == 0 && (!roster || committed);
        if ((rc = s_targets(&im, write)) != PXCTL_EXIT_OK) {
            if (committed) {
                pxctl_err(s_cmd.name, "the roster's rows were written; targets were not");
            }
            goto done;
        }
    }
    fflush(stdout);
    if (im.bad > 0) {
        pxctl_err(s_cmd.name, "%zu bad row(s); %s", im.bad,
                  committed ? "the roster's rows were written, targets were not"
                            : "nothing was written");
        rc = PXCTL_EXIT_FAILED;
        goto done;
    }
    if (im.dry_run) {
        printf("import: dry run: every row checked and fine; nothing was written\n");
    }
    rc = PXCTL_EXIT_OK;
done:
    s_bar_clear(&im);
    s_abort(&im);
    for (int k = 0; k < K_COUNT; k++) {
        s_free_batch(&im.files[k]);
        free(im.files[k].batch);
        free(im.files[k].lines);
    }
    for (size_t i = 0; i < im.ntargets; i++) {
        protobuf_c_message_free_unpacked(im.targets[i], NULL);
    }
    free(im.targets);
    px_rpc_client_destroy(&im.roster);
    px_rpc_client_destroy(&im.activation);
    pxctl_args_free(&args);
    return rc;
}
