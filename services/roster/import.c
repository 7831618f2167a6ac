/*
 * import.c - px-roster-import: loads a campaign's CSV files into the roster
 * service through its batch upserts, and optionally plans the first wave.
 *
 *   px-roster-import --endpoint tcp://127.0.0.1:7101 --dir ../shared/data/thuan-an
 *                    [--plan-first-wave] [--timeout-ms N]
 *
 * Reads units.csv, volunteers.csv, campaign.csv and waves.csv (RFC 4180: quoted
 * fields with "" escapes, commas and newlines inside quotes, CRLF or LF, a
 * UTF-8 byte order mark tolerated, columns found by their header name). Every
 * file is read and checked before anything is sent, so a malformed file writes
 * nothing. Then it calls UpsertUnits, UpsertVolunteers (in batches of
 * ROSTER_MAX_BATCH), UpsertCampaign and UpsertWaves, printing one line per file:
 *
 *   units: inserted=N updated=N unchanged=N
 *
 * The upserts compare with what is stored, so importing the same files twice
 * answers all unchanged and writes nothing; the campaign is read first and only
 * sent when it differs. Row errors, local or the service's, are printed as
 * "file:line: field: message", one per line, and the exit status is 1. It talks
 * to the service only over RPC, like any other client, so it needs no database
 * access of its own.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "phuxanh/clock.h"
#include "phuxanh/pbutil.h"
#include "phuxanh/roster/v1/roster.pb-c.h"
#include "phuxanh/rpc.h"
#include "phuxanh/text.h"

/* A roster CSV is small (320 volunteers is 30 KB); 256 MiB is far past any real one and keeps
 * a wrong path (a disk image) from being read into memory. */
#define IMPORT_MAX_FILE (256u * 1024 * 1024)
/* Columns per record: the widest file has six. */
#define IMPORT_MAX_FIELDS 64
/* What one batch upsert takes (roster.proto: at most 10,000 rows). */
#define IMPORT_BATCH 10000
#define IMPORT_DEFAULT_ENDPOINT "tcp://127.0.0.1:7101"
/* Generous: a 10,000-row batch commits in about a second. */
#define IMPORT_DEFAULT_TIMEOUT_MS 60000

/* How long to wait for a roster that was started a moment ago (and may be migrating). */
#define IMPORT_DEFAULT_WAIT_S 30

#define SERVICE "/phuxanh.roster.v1.RosterService/"

/* ------------------------------------------------------------------- CSV */

typedef struct {
    int line; /* physical line where the record starts, 1-based */
    size_t n;
    char **fields;
} s_rec_t;

typedef struct {
    const char *name; /* file name for messages, e.g. "units.csv" */
    char **header;
    size_t ncols;
    s_rec_t *recs; /* data records, header excluded */
    size_t nrecs;
} s_csv_t;

/* A growable byte buffer for one field. */
typedef struct {
    char *data;
    size_t len, cap;
} s_buf_t;

static int s_buf_put(s_buf_t *b, char c)
{
    if (b->len + 1 >= b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        char *d = realloc(b->data, cap);
        if (!d) {
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return 0;
}

static char *s_buf_take(s_buf_t *b)
{
    char *s = b->data ? b->data : strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

static void s_rec_free(s_rec_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->fields[i]);
    }
    free(r->fields);
    r->fields = NULL;
    r->n = 0;
}

static void s_csv_free(s_csv_t *csv)
{
    for (size_t i = 0; i < csv->nrecs; i++) {
        s_rec_free(&csv->recs[i]);
    }
    free(csv->recs);
    for (size_t i = 0; i < csv->ncols; i++) {
        free(csv->header[i]);
    }
    free(csv->header);
    memset(csv, 0, sizeof *csv);
}

static int s_err(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int s_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* Parses buf (len bytes) into records. 0, or -1 with "file:line: ..." in err. */
static int s_csv_parse(s_csv_t *csv, const char *buf, size_t len, char *err, size_t errcap)
{
    size_t pos = 0, cap = 0;
    int line = 1;
    s_buf_t fb = {0};
    s_rec_t rec = {0};
    s_rec_t *all = NULL;
    size_t nall = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
        pos = 3; /* a byte order mark, as spreadsheet programs write */
    }
    while (pos < len) {
        if (buf[pos] == '\n' || buf[pos] == '\r') { /* a blank line */
            pos += (buf[pos] == '\r' && pos + 1 < len && buf[pos + 1] == '\n') ? 2 : 1;
            line++;
            continue;
        }
        rec.line = line;
        size_t fcap = 0;
        for (;;) {
            int field_line = line;
            if (pos < len && buf[pos] == '"') {
                pos++;
                for (;;) {
                    if (pos >= len) {
                        s_err(err, errcap, "%s:%d: a quoted field is never closed", csv->name,
                              field_line);
                        goto fail;
                    }
                    char c = buf[pos];
                    if (c == '"') {
                        if (pos + 1 < len && buf[pos + 1] == '"') {
                            c = '"';
                            pos++;
                        } else {
                            pos++;
                            break;
                        }
                    } else if (c == '\n') {
                        line++;
                    }
                    if (s_buf_put(&fb, c) != 0) {
                        goto oom;
                    }
                    pos++;
                }
                if (pos < len && buf[pos] != ',' && buf[pos] != '\r' && buf[pos] != '\n') {
                    s_err(err, errcap, "%s:%d: unexpected character after a closing quote",
                          csv->name, line);
                    goto fail;
                }
            } else {
                while (pos < len && buf[pos] != ',' && buf[pos] != '\r' && buf[pos] != '\n') {
                    if (buf[pos] == '"') {
                        s_err(err, errcap,
                              "%s:%d: a quote inside an unquoted field (quote the whole field "
                              "and double the quote)",
                              csv->name, line);
                        goto fail;
                    }
                    if (s_buf_put(&fb, buf[pos]) != 0) {
                        goto oom;
                    }
                    pos++;
                }
            }
            if (rec.n == IMPORT_MAX_FIELDS) {
                s_err(err, errcap, "%s:%d: more than %d fields", csv->name, rec.line,
                      IMPORT_MAX_FIELDS);
                goto fail;
            }
            if (rec.n == fcap) {
                fcap = fcap ? fcap * 2 : 8;
                char **f = realloc(rec.fields, fcap * sizeof *f);
                if (!f) {
                    goto oom;
                }
                rec.fields = f;
            }
            char *field = s_buf_take(&fb);
            if (!field) {
                goto oom;
            }
            rec.fields[rec.n++] = field;
            if (!px_utf8_valid(field, strlen(field))) {
                s_err(err, errcap, "%s:%d: field %zu is not valid UTF-8", csv->name, field_line,
                      rec.n);
                goto fail;
            }
            if (pos >= len) {
                break;
            }
            if (buf[pos] == ',') {
                pos++;
                continue;
            }
            pos += (buf[pos] == '\r' && pos + 1 < len && buf[pos + 1] == '\n') ? 2 : 1;
            line++;
            break;
        }
        if (nall == cap) {
            cap = cap ? cap * 2 : 64;
            s_rec_t *a = realloc(all, cap * sizeof *a);
            if (!a) {
                goto oom;
            }
            all = a;
        }
        all[nall++] = rec;
        memset(&rec, 0, sizeof rec);
    }
    free(fb.data);
    if (nall == 0) {
        free(all);
        return s_err(err, errcap, "%s:1: no header row", csv->name);
    }
    csv->header = all[0].fields;
    csv->ncols = all[0].n;
    csv->recs = all;
    csv->nrecs = nall;
    /* Drop the header from the records (its fields now belong to csv->header). */
    memmove(all, all + 1, (nall - 1) * sizeof *all);
    csv->nrecs = nall - 1;
    for (size_t i = 0; i < csv->nrecs; i++) {
        if (csv->recs[i].n != csv->ncols) {
            return s_err(err, errcap, "%s:%d: %zu fields where the header has %zu", csv->name,
                         csv->recs[i].line, csv->recs[i].n, csv->ncols);
        }
    }
    return 0;
oom:
    s_err(err, errcap, "%s: out of memory", csv->name);
fail:
    free(fb.data);
    s_rec_free(&rec);
    for (size_t i = 0; i < nall; i++) {
        s_rec_free(&all[i]);
    }
    free(all);
    return -1;
}

/* Reads dir/name whole and parses it. */
static int s_csv_load(s_csv_t *csv, const char *dir, const char *name, char *err, size_t errcap)
{
    memset(csv, 0, sizeof *csv);
    csv->name = name;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        return s_err(err, errcap, "%s: %s", path, strerror(errno));
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    for (;;) {
        if (len == cap) {
            if (cap >= IMPORT_MAX_FILE) {
                s_err(err, errcap, "%s: larger than %u bytes", path, IMPORT_MAX_FILE);
                goto done;
            }
            cap = cap ? cap * 2 : 65536;
            char *b = realloc(buf, cap);
            if (!b) {
                s_err(err, errcap, "%s: out of memory", path);
                goto done;
            }
            buf = b;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            break;
        }
    }
    if (ferror(f)) {
        s_err(err, errcap, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (memchr(buf, '\0', len)) {
        s_err(err, errcap, "%s: contains a NUL byte; not a text file", path);
        goto done;
    }
    rc = s_csv_parse(csv, buf ? buf : "", len, err, errcap);
done:
    free(buf);
    fclose(f);
    return rc;
}

/* Index of the column named name (ASCII case-insensitive, spaces around ignored), or -1. */
static int s_col(const s_csv_t *csv, const char *name)
{
    for (size_t i = 0; i < csv->ncols; i++) {
        const char *h = csv->header[i];
        while (*h == ' ') {
            h++;
        }
        size_t n = strlen(h);
        while (n > 0 && h[n - 1] == ' ') {
            n--;
        }
        if (n == strlen(name) && strncasecmp(h, name, n) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Finds the first of the names given (NULL-terminated) among the columns; prints an error
 * naming the first when none is there and required. */
static int s_need_col(const s_csv_t *csv, bool required, int *errors, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    int col = -1;
    for (const char *n = name; n && col < 0; n = va_arg(ap, const char *)) {
        col = s_col(csv, n);
    }
    va_end(ap);
    if (col < 0 && required) {
        fprintf(stderr, "%s:1: %s: missing column\n", csv->name, name);
        (*errors)++;
    }
    return col;
}

static const char *s_get(const s_rec_t *r, int col)
{
    return col >= 0 && (size_t)col < r->n ? r->fields[col] : "";
}

static void s_row_error(const s_csv_t *csv, int line, const char *field, const char *msg,
                        int *errors)
{
    fprintf(stderr, "%s:%d: %s: %s\n", csv->name, line, field && *field ? field : "(row)", msg);
    (*errors)++;
}

/* ------------------------------------------------------------------- mapping */

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

static bool s_level_parse(const char *s, Phuxanh__Roster__V1__UnitLevel *out)
{
    for (size_t i = 0; i < sizeof s_levels / sizeof s_levels[0]; i++) {
        if (strcasecmp(s, s_levels[i].name) == 0) {
            *out = s_levels[i].level;
            return true;
        }
    }
    return false;
}

static const struct {
    const char *name;
    bool value;
} s_bools[] = {
    {"true", true}, {"1", true}, {"yes", true}, {"false", false}, {"0", false}, {"no", false},
};

static bool s_bool_parse(const char *s, bool *out)
{
    for (size_t i = 0; i < sizeof s_bools / sizeof s_bools[0]; i++) {
        if (strcasecmp(s, s_bools[i].name) == 0) {
            *out = s_bools[i].value;
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------- the import */

typedef struct {
    const char *dir;
    const char *endpoint;
    bool plan_first_wave;
    int64_t timeout_ms;
    int64_t wait_s;
    px_rpc_client_t *client;
    px_curve_t *curve; /* PX_CURVE_SECRET_KEY / PX_CURVE_ALLOW; NULL: plaintext */

    s_csv_t units, volunteers, campaign, waves;

    Phuxanh__Roster__V1__Unit *unit_rows;
    Phuxanh__Roster__V1__Unit **unit_ptrs;
    int *unit_lines;
    size_t nunits;

    Phuxanh__Roster__V1__Volunteer *vol_rows;
    Phuxanh__Roster__V1__Volunteer **vol_ptrs;
    Google__Protobuf__BoolValue *vol_active;
    int *vol_lines;
    size_t nvols;

    Phuxanh__Roster__V1__Campaign *camp_rows;
    int *camp_lines;
    size_t ncamps;

    Phuxanh__Roster__V1__Wave *wave_rows;
    Phuxanh__Roster__V1__Wave **wave_ptrs;
    int *wave_lines;
    size_t nwaves;

    char district[64]; /* the one district holding the wards, or "" */
} s_import_t;

static void *s_calloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

static int s_map_units(s_import_t *self, int *errors)
{
    s_csv_t *c = &self->units;
    int code = s_need_col(c, true, errors, "code", NULL);
    int name = s_need_col(c, true, errors, "name", NULL);
    int level = s_need_col(c, true, errors, "level", NULL);
    int parent = s_need_col(c, true, errors, "parent_code", "parent", NULL);
    if (code < 0 || name < 0 || level < 0 || parent < 0) {
        return -1;
    }
    self->nunits = c->nrecs;
    self->unit_rows = s_calloc(c->nrecs, sizeof *self->unit_rows);
    self->unit_ptrs = s_calloc(c->nrecs, sizeof *self->unit_ptrs);
    self->unit_lines = s_calloc(c->nrecs, sizeof *self->unit_lines);
    if (!self->unit_rows || !self->unit_ptrs || !self->unit_lines) {
        return -1;
    }
    for (size_t i = 0; i < c->nrecs; i++) {
        const s_rec_t *r = &c->recs[i];
        Phuxanh__Roster__V1__Unit init = PHUXANH__ROSTER__V1__UNIT__INIT;
        Phuxanh__Roster__V1__Unit *u = &self->unit_rows[i];
        *u = init;
        u->code = (char *)s_get(r, code);
        u->name = (char *)s_get(r, name);
        u->parent_code = (char *)s_get(r, parent);
        if (!s_level_parse(s_get(r, level), &u->level)) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "\"%.40s\" is not province, district, ward, commune or neighborhood",
                     s_get(r, level));
            s_row_error(c, r->line, "level", msg, errors);
        }
        self->unit_ptrs[i] = u;
        self->unit_lines[i] = r->line;
    }
    /* The campaign's area: the district whose wards the file holds, when there is one. */
    const char *found = NULL;
    bool several = false;
    for (size_t i = 0; i < self->nunits; i++) {
        const Phuxanh__Roster__V1__Unit *u = &self->unit_rows[i];
        if (u->level == PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_WARD && *u->parent_code) {
            if (found && strcmp(found, u->parent_code) != 0) {
                several = true;
            }
            found = u->parent_code;
        }
    }
    if (found && !several && strlen(found) < sizeof self->district) {
        snprintf(self->district, sizeof self->district, "%s", found);
    }
    return 0;
}

static int s_map_volunteers(s_import_t *self, int *errors)
{
    s_csv_t *c = &self->volunteers;
    int code = s_need_col(c, true, errors, "code", NULL);
    int name = s_need_col(c, true, errors, "full_name", "name", NULL);
    int rank = s_need_col(c, false, errors, "rank", NULL);
    int dept = s_need_col(c, false, errors, "department", NULL);
    int role = s_need_col(c, false, errors, "union_role", NULL);
    int phone = s_need_col(c, false, errors, "phone", NULL);
    int active = s_need_col(c, false, errors, "active", NULL);
    if (code < 0 || name < 0) {
        return -1;
    }
    self->nvols = c->nrecs;
    self->vol_rows = s_calloc(c->nrecs, sizeof *self->vol_rows);
    self->vol_ptrs = s_calloc(c->nrecs, sizeof *self->vol_ptrs);
    self->vol_active = s_calloc(c->nrecs, sizeof *self->vol_active);
    self->vol_lines = s_calloc(c->nrecs, sizeof *self->vol_lines);
    if (!self->vol_rows || !self->vol_ptrs || !self->vol_active || !self->vol_lines) {
        return -1;
    }
    for (size_t i = 0; i < c->nrecs; i++) {
        const s_rec_t *r = &c->recs[i];
        Phuxanh__Roster__V1__Volunteer init = PHUXANH__ROSTER__V1__VOLUNTEER__INIT;
        Phuxanh__Roster__V1__Volunteer *v = &self->vol_rows[i];
        *v = init;
        v->code = (char *)s_get(r, code);
        v->full_name = (char *)s_get(r, name);
        v->rank = (char *)s_get(r, rank);
        v->department = (char *)s_get(r, dept);
        v->union_role = (char *)s_get(r, role);
        v->phone = (char *)s_get(r, phone);
        const char *a = s_get(r, active);
        if (*a) {
            Google__Protobuf__BoolValue binit = GOOGLE__PROTOBUF__BOOL_VALUE__INIT;
            self->vol_active[i] = binit;
            bool b = true;
            if (!s_bool_parse(a, &b)) {
                s_row_error(c, r->line, "active", "must be true or false", errors);
            }
            self->vol_active[i].value = b;
            v->active = &self->vol_active[i]; /* absent: the stored value stays */
        }
        self->vol_ptrs[i] = v;
        self->vol_lines[i] = r->line;
    }
    return 0;
}

static int s_map_campaign(s_import_t *self, int *errors)
{
    s_csv_t *c = &self->campaign;
    int id = s_need_col(c, true, errors, "id", "campaign_id", "campaign", NULL);
    int name = s_need_col(c, true, errors, "name", NULL);
    int from = s_need_col(c, true, errors, "starts_on", NULL);
    int to = s_need_col(c, true, errors, "ends_on", NULL);
    int unit = s_need_col(c, false, errors, "unit_code", NULL);
    if (id < 0 || name < 0 || from < 0 || to < 0) {
        return -1;
    }
    self->ncamps = c->nrecs;
    self->camp_rows = s_calloc(c->nrecs, sizeof *self->camp_rows);
    self->camp_lines = s_calloc(c->nrecs, sizeof *self->camp_lines);
    if (!self->camp_rows || !self->camp_lines) {
        return -1;
    }
    for (size_t i = 0; i < c->nrecs; i++) {
        const s_rec_t *r = &c->recs[i];
        Phuxanh__Roster__V1__Campaign init = PHUXANH__ROSTER__V1__CAMPAIGN__INIT;
        Phuxanh__Roster__V1__Campaign *k = &self->camp_rows[i];
        *k = init;
        k->id = (char *)s_get(r, id);
        k->name = (char *)s_get(r, name);
        k->starts_on = (char *)s_get(r, from);
        k->ends_on = (char *)s_get(r, to);
        k->unit_code = (char *)(unit >= 0 ? s_get(r, unit) : self->district);
        self->camp_lines[i] = r->line;
    }
    return 0;
}

static int s_map_waves(s_import_t *self, int *errors)
{
    s_csv_t *c = &self->waves;
    int camp = s_need_col(c, true, errors, "campaign", "campaign_id", NULL);
    int day = s_need_col(c, true, errors, "day", NULL);
    int capacity = s_need_col(c, false, errors, "capacity", NULL);
    if (camp < 0 || day < 0) {
        return -1;
    }
    self->nwaves = c->nrecs;
    self->wave_rows = s_calloc(c->nrecs, sizeof *self->wave_rows);
    self->wave_ptrs = s_calloc(c->nrecs, sizeof *self->wave_ptrs);
    self->wave_lines = s_calloc(c->nrecs, sizeof *self->wave_lines);
    if (!self->wave_rows || !self->wave_ptrs || !self->wave_lines) {
        return -1;
    }
    for (size_t i = 0; i < c->nrecs; i++) {
        const s_rec_t *r = &c->recs[i];
        Phuxanh__Roster__V1__Wave init = PHUXANH__ROSTER__V1__WAVE__INIT;
        Phuxanh__Roster__V1__Wave *w = &self->wave_rows[i];
        *w = init;
        w->campaign_id = (char *)s_get(r, camp);
        w->day = (char *)s_get(r, day);
        const char *cap = s_get(r, capacity);
        if (*cap) {
            char *end = NULL;
            errno = 0;
            long v = strtol(cap, &end, 10);
            if (errno || *end || v < 1 || v > 1000) {
                char msg[120];
                snprintf(msg, sizeof msg, "\"%.20s\" is not a whole number from 1 to 1000", cap);
                s_row_error(c, r->line, "capacity", msg, errors);
            }
            w->capacity = (int32_t)(v >= 1 && v <= 1000 ? v : 0);
        }
        self->wave_ptrs[i] = w;
        self->wave_lines[i] = r->line;
    }
    return 0;
}

/* ------------------------------------------------------------------- calls */

static px_code_t s_call(s_import_t *self, const char *method, const ProtobufCMessage *req,
                        const ProtobufCMessageDescriptor *type, ProtobufCMessage **rep,
                        bool idempotent)
{
    char full[128];
    snprintf(full, sizeof full, SERVICE "%s", method);
    px_rpc_call_opts_t o = {.timeout_ms = self->timeout_ms, .idempotent = idempotent};
    px_status_t st;
    px_code_t code = px_rpc_client_call(self->client, full, req, type, rep, &o, &st);
    if (code != PX_OK && code != PX_NOT_FOUND) {
        const char *name = px_code_name(code);
        fprintf(stderr, "px-roster-import: %s at %s: %s: %s\n", method, self->endpoint,
                name ? name : "UNKNOWN", st.message);
    }
    return code;
}

typedef struct {
    long inserted, updated, unchanged;
} s_counts_t;

/* Prints a batch's row errors against the file's lines; returns how many. */
static int s_batch_errors(const s_csv_t *csv, const int *lines, size_t off, size_t n,
                          const Phuxanh__Roster__V1__BatchUpsertResponse *rep)
{
    int errors = 0;
    for (size_t i = 0; i < rep->n_errors; i++) {
        const Phuxanh__Roster__V1__RowError *e = rep->errors[i];
        int line = e->index >= 0 && (size_t)e->index < n ? lines[off + (size_t)e->index] : 0;
        s_row_error(csv, line, e->field, e->message ? e->message : "refused", &errors);
    }
    if (!rep->committed && errors == 0) {
        fprintf(stderr, "%s: the service did not commit the batch and named no row\n", csv->name);
        errors = 1;
    }
    return errors;
}

/* The three batch upserts share one shape: rows in, BatchUpsertResponse out. */
typedef ProtobufCMessage *(*s_batch_req_fn)(void *rows, size_t n, void *storage);

static ProtobufCMessage *s_units_req(void *rows, size_t n, void *storage)
{
    Phuxanh__Roster__V1__UpsertUnitsRequest *r = storage;
    Phuxanh__Roster__V1__UpsertUnitsRequest init = PHUXANH__ROSTER__V1__UPSERT_UNITS_REQUEST__INIT;
    *r = init;
    r->units = rows;
    r->n_units = n;
    return &r->base;
}

static ProtobufCMessage *s_vols_req(void *rows, size_t n, void *storage)
{
    Phuxanh__Roster__V1__UpsertVolunteersRequest *r = storage;
    Phuxanh__Roster__V1__UpsertVolunteersRequest init =
        PHUXANH__ROSTER__V1__UPSERT_VOLUNTEERS_REQUEST__INIT;
    *r = init;
    r->volunteers = rows;
    r->n_volunteers = n;
    return &r->base;
}

static ProtobufCMessage *s_waves_req(void *rows, size_t n, void *storage)
{
    Phuxanh__Roster__V1__UpsertWavesRequest *r = storage;
    Phuxanh__Roster__V1__UpsertWavesRequest init = PHUXANH__ROSTER__V1__UPSERT_WAVES_REQUEST__INIT;
    *r = init;
    r->waves = rows;
    r->n_waves = n;
    return &r->base;
}

/* Sends rows in batches of IMPORT_BATCH and prints "label: inserted=..". 0 or 1. */
static int s_upsert(s_import_t *self, const char *label, const char *method, const s_csv_t *csv,
                    void **rows, const int *lines, size_t n, s_batch_req_fn make)
{
    s_counts_t sum = {0, 0, 0};
    union {
        Phuxanh__Roster__V1__UpsertUnitsRequest u;
        Phuxanh__Roster__V1__UpsertVolunteersRequest v;
        Phuxanh__Roster__V1__UpsertWavesRequest w;
    } storage;
    for (size_t off = 0; off < n; off += IMPORT_BATCH) {
        size_t k = n - off < IMPORT_BATCH ? n - off : IMPORT_BATCH;
        ProtobufCMessage *req = make(rows + off, k, &storage);
        ProtobufCMessage *msg = NULL;
        if (s_call(self, method, req, &phuxanh__roster__v1__batch_upsert_response__descriptor, &msg,
                   true) != PX_OK) {
            return 1;
        }
        const Phuxanh__Roster__V1__BatchUpsertResponse *rep =
            (const Phuxanh__Roster__V1__BatchUpsertResponse *)msg;
        int errors = s_batch_errors(csv, lines, off, k, rep);
        sum.inserted += rep->inserted;
        sum.updated += rep->updated;
        sum.unchanged += rep->unchanged;
        protobuf_c_message_free_unpacked(msg, NULL);
        if (errors) {
            fprintf(stderr, "%s: %d row(s) refused; nothing of this batch was written\n", csv->name,
                    errors);
            return 1;
        }
    }
    printf("%s: inserted=%ld updated=%ld unchanged=%ld\n", label, sum.inserted, sum.updated,
           sum.unchanged);
    fflush(stdout);
    return 0;
}

static bool s_str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* UpsertCampaign for each row, but only when it differs from what is stored. */
static int s_campaigns(s_import_t *self)
{
    s_counts_t sum = {0, 0, 0};
    for (size_t i = 0; i < self->ncamps; i++) {
        Phuxanh__Roster__V1__Campaign *k = &self->camp_rows[i];
        Phuxanh__Roster__V1__GetCampaignRequest get =
            PHUXANH__ROSTER__V1__GET_CAMPAIGN_REQUEST__INIT;
        get.id = k->id;
        ProtobufCMessage *msg = NULL;
        px_code_t code =
            s_call(self, "GetCampaign", &get.base,
                   &phuxanh__roster__v1__get_campaign_response__descriptor, &msg, true);
        if (code != PX_OK && code != PX_NOT_FOUND) {
            return 1;
        }
        if (code == PX_OK) {
            const Phuxanh__Roster__V1__Campaign *have =
                ((const Phuxanh__Roster__V1__GetCampaignResponse *)msg)->campaign;
            bool same =
                have && s_str_eq(have->name, k->name) && s_str_eq(have->starts_on, k->starts_on) &&
                s_str_eq(have->ends_on, k->ends_on) && s_str_eq(have->unit_code, k->unit_code);
            protobuf_c_message_free_unpacked(msg, NULL);
            if (same) {
                sum.unchanged++;
                continue;
            }
        }
        Phuxanh__Roster__V1__UpsertCampaignRequest up =
            PHUXANH__ROSTER__V1__UPSERT_CAMPAIGN_REQUEST__INIT;
        up.campaign = k;
        msg = NULL;
        px_status_t st;
        px_rpc_call_opts_t o = {.timeout_ms = self->timeout_ms, .idempotent = true};
        code = px_rpc_client_call(self->client, SERVICE "UpsertCampaign", &up.base,
                                  &phuxanh__roster__v1__upsert_campaign_response__descriptor, &msg,
                                  &o, &st);
        if (code == PX_INVALID_ARGUMENT || code == PX_NOT_FOUND || code == PX_FAILED_PRECONDITION) {
            /* The message names the field: a row error of this file. */
            int errors = 0;
            s_row_error(&self->campaign, self->camp_lines[i], "", st.message, &errors);
            return 1;
        }
        if (code != PX_OK) {
            const char *name = px_code_name(code);
            fprintf(stderr, "px-roster-import: UpsertCampaign at %s: %s: %s\n", self->endpoint,
                    name ? name : "UNKNOWN", st.message);
            return 1;
        }
        if (((const Phuxanh__Roster__V1__UpsertCampaignResponse *)msg)->created) {
            sum.inserted++;
        } else {
            sum.updated++;
        }
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    printf("campaign: inserted=%ld updated=%ld unchanged=%ld\n", sum.inserted, sum.updated,
           sum.unchanged);
    fflush(stdout);
    return 0;
}

/* PlanWave (written, not a dry run) for the earliest wave of the file, and its allocation. */
static int s_plan_first(s_import_t *self)
{
    const Phuxanh__Roster__V1__Wave *first = NULL;
    for (size_t i = 0; i < self->nwaves; i++) {
        const Phuxanh__Roster__V1__Wave *w = &self->wave_rows[i];
        if (!first || strcmp(w->day, first->day) < 0 ||
            (strcmp(w->day, first->day) == 0 && strcmp(w->campaign_id, first->campaign_id) < 0)) {
            first = w;
        }
    }
    if (!first) {
        fprintf(stderr, "px-roster-import: --plan-first-wave: waves.csv has no wave\n");
        return 1;
    }
    Phuxanh__Roster__V1__PlanWaveRequest req = PHUXANH__ROSTER__V1__PLAN_WAVE_REQUEST__INIT;
    req.campaign_id = first->campaign_id;
    req.day = first->day;
    ProtobufCMessage *msg = NULL;
    if (s_call(self, "PlanWave", &req.base, &phuxanh__roster__v1__plan_wave_response__descriptor,
               &msg, true) != PX_OK) {
        return 1;
    }
    const Phuxanh__Roster__V1__PlanWaveResponse *rep =
        (const Phuxanh__Roster__V1__PlanWaveResponse *)msg;
    printf("plan %s %s: capacity=%d already_assigned=%d planned=%zu unfilled=%d committed=%s\n",
           first->campaign_id, first->day, rep->capacity, rep->already_assigned, rep->n_planned,
           rep->unfilled, rep->committed ? "true" : "false");
    if (rep->even_spread_fallback) {
        printf("  even spread: %s\n", rep->fallback_reason ? rep->fallback_reason : "");
    }
    for (size_t i = 0; i < rep->n_wards; i++) {
        const Phuxanh__Roster__V1__WardAllocation *w = rep->wards[i];
        /* Pad by characters, not bytes: the names are Vietnamese. */
        const char *name = w->unit_name ? w->unit_name : "";
        size_t chars = px_utf8_valid(name, strlen(name)) ? px_utf8_chars(name) : strlen(name);
        int pad = chars < 24 ? (int)(24 - chars) : 0;
        printf("  %-8s %s%*s remaining_to_target=%d already_assigned=%d planned=%d\n", w->unit_code,
               name, pad, "", w->remaining_to_target, w->already_assigned, w->planned);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    fflush(stdout);
    return 0;
}

/* Waits until the roster answers its health check SERVING, up to wait_s. */
static int s_wait_ready(s_import_t *self)
{
    int64_t until = px_clock_us() + self->wait_s * 1000000;
    px_status_t st;
    px_status_clear(&st);
    for (;;) {
        int status =
            px_rpc_health_check(self->client, "phuxanh.roster.v1.RosterService", 2000, &st);
        if (status == 1) {
            return 0;
        }
        if (px_clock_us() >= until) {
            fprintf(stderr, "px-roster-import: the roster at %s is not serving after %lld s: %s\n",
                    self->endpoint, (long long)self->wait_s,
                    status < 0 ? st.message : "NOT_SERVING");
            return 1;
        }
        px_sleep_us(200000);
    }
}

static void s_import_free(s_import_t *self)
{
    px_rpc_client_destroy(&self->client);
    px_curve_destroy(&self->curve);
    s_csv_free(&self->units);
    s_csv_free(&self->volunteers);
    s_csv_free(&self->campaign);
    s_csv_free(&self->waves);
    free(self->unit_rows);
    free(self->unit_ptrs);
    free(self->unit_lines);
    free(self->vol_rows);
    free(self->vol_ptrs);
    free(self->vol_active);
    free(self->vol_lines);
    free(self->camp_rows);
    free(self->camp_lines);
    free(self->wave_rows);
    free(self->wave_ptrs);
    free(self->wave_lines);
}

static void s_usage(FILE *to)
{
    fprintf(to,
            "usage: px-roster-import [--endpoint %s] --dir DIR [--plan-first-wave]\n"
            "                        [--timeout-ms N] [--wait-s N]\n"
            "Loads DIR/units.csv, volunteers.csv, campaign.csv and waves.csv into the roster\n"
            "service; --plan-first-wave then plans the earliest wave. --wait-s: how long to\n"
            "wait for the service to serve (default 30). Environment:\n"
            "PX_ROSTER_ENDPOINTS (the endpoint), PX_DEMO_DATA (the directory).\n",
            IMPORT_DEFAULT_ENDPOINT);
}

/* --name value or --name=value; returns the value or NULL. */
static const char *s_flag(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) {
        return NULL;
    }
    if (argv[*i][n] == '=') {
        return argv[*i] + n + 1;
    }
    if (argv[*i][n] == '\0' && *i + 1 < argc) {
        return argv[++*i];
    }
    return NULL;
}

int main(int argc, char **argv)
{
    s_import_t self;
    memset(&self, 0, sizeof self);
    self.endpoint = getenv("PX_ROSTER_ENDPOINTS");
    self.dir = getenv("PX_DEMO_DATA");
    self.timeout_ms = IMPORT_DEFAULT_TIMEOUT_MS;
    self.wait_s = IMPORT_DEFAULT_WAIT_S;
    if (!self.endpoint || !*self.endpoint) {
        self.endpoint = IMPORT_DEFAULT_ENDPOINT;
    }
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--plan-first-wave") == 0) {
            self.plan_first_wave = true;
        } else if ((v = s_flag(argc, argv, &i, "--endpoint"))) {
            self.endpoint = v;
        } else if ((v = s_flag(argc, argv, &i, "--dir"))) {
            self.dir = v;
        } else if ((v = s_flag(argc, argv, &i, "--timeout-ms"))) {
            char *end = NULL;
            self.timeout_ms = strtoll(v, &end, 10);
            if (*end || self.timeout_ms < 1 || self.timeout_ms > PX_RPC_MAX_TIMEOUT_MS) {
                fprintf(stderr, "px-roster-import: --timeout-ms: \"%s\" is not 1 to %d\n", v,
                        PX_RPC_MAX_TIMEOUT_MS);
                return 2;
            }
        } else if ((v = s_flag(argc, argv, &i, "--wait-s"))) {
            char *end = NULL;
            self.wait_s = strtoll(v, &end, 10);
            if (*end || self.wait_s < 0 || self.wait_s > 3600) {
                fprintf(stderr, "px-roster-import: --wait-s: \"%s\" is not 0 to 3600\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "px-roster-import: unknown or incomplete argument \"%s\"\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
    }
    if (!self.dir || !*self.dir) {
        fprintf(stderr, "px-roster-import: --dir: must be set\n");
        s_usage(stderr);
        return 2;
    }

    /* Read and check everything before sending anything. */
    int rc = 1, errors = 0;
    char err[600];
    struct {
        s_csv_t *csv;
        const char *name;
        int (*map)(s_import_t *, int *);
    } files[] = {
        {&self.units, "units.csv", s_map_units},
        {&self.volunteers, "volunteers.csv", s_map_volunteers},
        {&self.campaign, "campaign.csv", s_map_campaign},
        {&self.waves, "waves.csv", s_map_waves},
    };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        if (s_csv_load(files[f].csv, self.dir, files[f].name, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            errors++;
            continue;
        }
        int before = errors;
        if (files[f].map(&self, &errors) != 0 && errors == before) {
            fprintf(stderr, "%s: out of memory\n", files[f].name);
            errors++;
        }
    }
    if (errors) {
        fprintf(stderr, "px-roster-import: %d error(s); nothing was sent\n", errors);
        goto done;
    }

    px_status_t st;
    if (px_curve_from_env(NULL, &self.curve, &st) != PX_OK) {
        fprintf(stderr, "px-roster-import: %s\n", st.message);
        goto done;
    }
    px_rpc_client_opts_t co = {
        .caller = "px-roster-import", .curve = self.curve, .server_name = "roster"};
    self.client = px_rpc_client_new(self.endpoint, &co, &st);
    if (!self.client) {
        fprintf(stderr, "px-roster-import: %s: %s\n", self.endpoint, st.message);
        goto done;
    }
    if (s_wait_ready(&self) != 0) {
        goto done;
    }
    if (s_upsert(&self, "units", "UpsertUnits", &self.units, (void **)self.unit_ptrs,
                 self.unit_lines, self.nunits, s_units_req) != 0 ||
        s_upsert(&self, "volunteers", "UpsertVolunteers", &self.volunteers, (void **)self.vol_ptrs,
                 self.vol_lines, self.nvols, s_vols_req) != 0 ||
        s_campaigns(&self) != 0 ||
        s_upsert(&self, "waves", "UpsertWaves", &self.waves, (void **)self.wave_ptrs,
                 self.wave_lines, self.nwaves, s_waves_req) != 0) {
        goto done;
    }
    if (self.plan_first_wave && s_plan_first(&self) != 0) {
        goto done;
    }
    rc = 0;
done:
    s_import_free(&self);
    return rc;
}
