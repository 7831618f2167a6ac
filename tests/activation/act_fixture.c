/* act_fixture.c - see act_fixture.h. */
#include "act_fixture.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "phuxanh/text.h"
#include "px_test.h"

/* ---------------------------------------------------------------- the stand-in roster */

typedef struct {
    const char *code, *name;
    int level;
    const char *parent;
} s_unit_t;

static const s_unit_t s_units[] = {
    {"74", "Bình Dương", 1, ""},
    {"718", "Thủ Dầu Một", 2, "74"},
    {"725", "Thuận An", 2, "74"},
    {"25747", "Phú Cường", 3, "718"},
    {"25966", "Lái Thiêu", 3, "725"},
    {"25966-01", "Đông Nhì", 4, "25966"},
    {"25966-02", "Đông Tư", 4, "25966"},
    {"25969", "Bình Nhâm", 3, "725"},
    {"25975", "An Phú", 3, "725"},
    {"25978", "Vĩnh Phú", 3, "725"}, /* last: only once the tree has grown */
};
#define S_NUNITS (sizeof s_units / sizeof s_units[0])
#define S_VISIBLE(r) (atomic_load(&(r)->grown) ? S_NUNITS : S_NUNITS - 1)

static const struct {
    const char *volunteer, *ward, *day;
} s_duties[] = {
    {"TN0001", "25966", "2023-07-29"},
    {"TN0002", "25969", "2023-07-29"},
};

static const struct {
    const char *id, *starts_on, *ends_on;
} s_campaigns[] = {
    {"tn-2023", "2023-07-29", "2023-08-27"},
    {"tn-late", "2023-01-07", "2023-01-29"}, /* ended long ago; events may still come */
    {"tn-now", "2023-07-01", "2099-12-31"},
    {"tn-pub", "2023-07-01", "2099-12-31"},
    {"warmup", "2023-07-01", "2099-12-31"},
};
#define S_NCAMPAIGNS (sizeof s_campaigns / sizeof s_campaigns[0])

static Phuxanh__Roster__V1__Campaign *s_campaign_msg(px_rpc_ctx_t *ctx, size_t i)
{
    Phuxanh__Roster__V1__Campaign *m = px_rpc_ctx_alloc(ctx, sizeof *m);
    phuxanh__roster__v1__campaign__init(m);
    m->id = (char *)s_campaigns[i].id;
    m->name = px_rpc_ctx_printf(ctx, "Chiến dịch %s", s_campaigns[i].id);
    m->starts_on = (char *)s_campaigns[i].starts_on;
    m->ends_on = (char *)s_campaigns[i].ends_on;
    return m;
}

static px_code_t s_get_campaign(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                ProtobufCMessage *reply)
{
    const Phuxanh__Roster__V1__GetCampaignRequest *req = (const void *)request;
    Phuxanh__Roster__V1__GetCampaignResponse *resp = (void *)reply;
    for (size_t i = 0; i < S_NCAMPAIGNS; i++) {
        if (strcmp(s_campaigns[i].id, req->id) == 0) {
            resp->campaign = s_campaign_msg(ctx, i);
            return PX_OK;
        }
    }
    return px_rpc_fail(ctx, PX_NOT_FOUND, "id: no campaign \"%s\"", req->id);
}

/* All of them in one page. */
static px_code_t s_list_campaigns(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                  ProtobufCMessage *reply)
{
    (void)request;
    Phuxanh__Roster__V1__ListCampaignsResponse *resp = (void *)reply;
    resp->campaigns = px_rpc_ctx_alloc(ctx, S_NCAMPAIGNS * sizeof *resp->campaigns);
    for (size_t i = 0; i < S_NCAMPAIGNS; i++) {
        resp->campaigns[resp->n_campaigns++] = s_campaign_msg(ctx, i);
    }
    return PX_OK;
}

static const s_unit_t *s_unit(act_roster_t *r, const char *code)
{
    for (size_t i = 0; i < S_VISIBLE(r); i++) {
        if (strcmp(s_units[i].code, code) == 0) {
            return &s_units[i];
        }
    }
    return NULL;
}

static Phuxanh__Roster__V1__Unit *s_unit_msg(px_rpc_ctx_t *ctx, const s_unit_t *u)
{
    Phuxanh__Roster__V1__Unit *m = px_rpc_ctx_alloc(ctx, sizeof *m);
    phuxanh__roster__v1__unit__init(m);
    m->code = (char *)u->code;
    m->name = (char *)u->name;
    m->level = u->level;
    m->parent_code = (char *)u->parent;
    m->version = 1;
    return m;
}

static px_code_t s_get_units(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                             ProtobufCMessage *reply)
{
    act_roster_t *r = px_rpc_ctx_state(ctx);
    atomic_fetch_add(&r->get_units_calls, 1);
    const Phuxanh__Roster__V1__GetUnitsRequest *req = (const void *)request;
    Phuxanh__Roster__V1__GetUnitsResponse *resp = (void *)reply;
    bool want[S_NUNITS] = {false};
    resp->not_found_codes = px_rpc_ctx_alloc(ctx, (req->n_codes + 1) * sizeof(char *));
    for (size_t i = 0; i < req->n_codes; i++) {
        const s_unit_t *u = s_unit(r, req->codes[i]);
        if (!u) {
            resp->not_found_codes[resp->n_not_found_codes++] = req->codes[i];
        }
        while (u) {
            want[u - s_units] = true;
            u = req->include_ancestors && *u->parent ? s_unit(r, u->parent) : NULL;
        }
    }
    resp->units = px_rpc_ctx_alloc(ctx, S_NUNITS * sizeof *resp->units);
    for (size_t i = 0; i < S_VISIBLE(r); i++) {
        if (want[i]) {
            resp->units[resp->n_units++] = s_unit_msg(ctx, &s_units[i]);
        }
    }
    resp->tree_version = atomic_load(&r->grown) ? 2 : 1;
    return PX_OK;
}

static px_code_t s_list_units(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                              ProtobufCMessage *reply)
{
    act_roster_t *r = px_rpc_ctx_state(ctx);
    atomic_fetch_add(&r->list_units_calls, 1);
    const Phuxanh__Roster__V1__ListUnitsRequest *req = (const void *)request;
    Phuxanh__Roster__V1__ListUnitsResponse *resp = (void *)reply;
    resp->tree_version = atomic_load(&r->grown) ? 2 : 1;
    resp->units = px_rpc_ctx_alloc(ctx, S_NUNITS * sizeof *resp->units);
    for (size_t i = 0; i < S_VISIBLE(r); i++) {
        int64_t version = i == S_NUNITS - 1 ? 2 : 1;
        if (version > req->since_version) {
            resp->units[resp->n_units++] = s_unit_msg(ctx, &s_units[i]);
            resp->units[resp->n_units - 1]->version = version;
        }
    }
    return PX_OK;
}

static px_code_t s_check_duty(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                              ProtobufCMessage *reply)
{
    act_roster_t *r = px_rpc_ctx_state(ctx);
    atomic_fetch_add(&r->check_duty_calls, 1);
    const Phuxanh__Roster__V1__CheckDutyRequest *req = (const void *)request;
    Phuxanh__Roster__V1__CheckDutyResponse *resp = (void *)reply;
    resp->answers = px_rpc_ctx_alloc(ctx, (req->n_queries + 1) * sizeof *resp->answers);
    for (size_t i = 0; i < req->n_queries; i++) {
        const Phuxanh__Roster__V1__DutyQuery *q = req->queries[i];
        Phuxanh__Roster__V1__DutyAnswer *a = px_rpc_ctx_alloc(ctx, sizeof *a);
        phuxanh__roster__v1__duty_answer__init(a);
        resp->answers[resp->n_answers++] = a;
        if (strncmp(q->volunteer_code, "TN000", 5) != 0 || strlen(q->volunteer_code) != 6) {
            a->verdict = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_UNKNOWN_VOLUNTEER;
            continue;
        }
        const s_unit_t *u = s_unit(r, q->unit_code);
        if (!u) {
            a->verdict = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_UNKNOWN_UNIT;
            continue;
        }
        const char *ward = u->level == 4 ? u->parent : u->code;
        char day[11];
        px_day_format(px_day_of_unix(q->time ? q->time->seconds : 0), day);
        a->verdict = PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_NOT_ASSIGNED;
        for (size_t k = 0; k < sizeof s_duties / sizeof s_duties[0]; k++) {
            if (strcmp(s_duties[k].volunteer, q->volunteer_code) == 0 &&
                strcmp(s_duties[k].day, day) == 0) {
                a->on_duty = strcmp(s_duties[k].ward, ward) == 0;
                a->verdict = a->on_duty
                                 ? PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_ON_DUTY
                                 : PHUXANH__ROSTER__V1__DUTY_VERDICT__DUTY_VERDICT_OTHER_UNIT;
            }
        }
    }
    return PX_OK;
}

/* Names for the codes asked (TopVolunteers asks them in one call); others are left out. */
static px_code_t s_list_volunteers(px_rpc_ctx_t *ctx, const ProtobufCMessage *request,
                                   ProtobufCMessage *reply)
{
    act_roster_t *r = px_rpc_ctx_state(ctx);
    atomic_fetch_add(&r->list_volunteers_calls, 1);
    const Phuxanh__Roster__V1__ListVolunteersRequest *req = (const void *)request;
    Phuxanh__Roster__V1__ListVolunteersResponse *resp = (void *)reply;
    resp->volunteers = px_rpc_ctx_alloc(ctx, (req->n_codes + 1) * sizeof *resp->volunteers);
    for (size_t i = 0; i < req->n_codes; i++) {
        const char *c = req->codes[i];
        if (strncmp(c, "TN000", 5) != 0 || strlen(c) != 6 || c[5] < '1' || c[5] > '9') {
            continue;
        }
        Phuxanh__Roster__V1__Volunteer *v = px_rpc_ctx_alloc(ctx, sizeof *v);
        phuxanh__roster__v1__volunteer__init(v);
        v->code = (char *)c;
        v->full_name = px_rpc_ctx_printf(ctx, "Tình nguyện viên %c", c[5]);
        resp->volunteers[resp->n_volunteers++] = v;
    }
    return PX_OK;
}

static const px_rpc_method_t s_roster_methods[] = {
    {"GetUnits", s_get_units},       {"ListUnits", s_list_units},
    {"CheckDuty", s_check_duty},     {"ListVolunteers", s_list_volunteers},
    {"GetCampaign", s_get_campaign}, {"ListCampaigns", s_list_campaigns},
};

int act_roster_start(act_roster_t *r)
{
    px_status_t st;
    px_rpc_server_opts_t o = {
        .service_name = "roster-standin", .endpoint = r->endpoint, .workers = 2, .drain_ms = 500};
    /* The port may linger for a moment after a stop: try again briefly. */
    for (int attempt = 0; attempt < 50; attempt++) {
        r->server = px_rpc_server_new(&o, &st);
        if (r->server &&
            px_rpc_server_add(
                r->server, &phuxanh__roster__v1__roster_service__descriptor, s_roster_methods,
                sizeof s_roster_methods / sizeof s_roster_methods[0], r, &st) == PX_OK &&
            px_rpc_server_start(r->server, &st) == PX_OK) {
            return 0;
        }
        px_rpc_server_destroy(&r->server);
        usleep(100000);
    }
    fprintf(stderr, "roster stand-in: %s\n", st.message);
    return -1;
}

void act_roster_stop(act_roster_t *r)
{
    if (r->server) {
        px_rpc_server_stop(r->server);
        px_rpc_server_destroy(&r->server);
    }
}

/* ---------------------------------------------------------------- the service */

/* Starts px-activation on f's database and roster, stderr appended to f->log_path. */
static int s_spawn(act_fixture_t *f)
{
    char db_arg[600], roster_arg[200];
    snprintf(db_arg, sizeof db_arg, "--db-url=%s", f->db_url);
    snprintf(roster_arg, sizeof roster_arg, "--roster-endpoints=%s", f->roster.endpoint);
    const char *args[] = {"--listen=tcp://127.0.0.1:0",
                          db_arg,
                          roster_arg,
                          "--log-level=info",
                          "--person-readers=activation-test",
                          "--citizen-key=" ACT_T_SECRET,
                          "--verify-interval-ms=300",
                          NULL};
    /* The child inherits our stderr: point it at the file for the time of the fork. */
    int fd = open(f->log_path, O_CREAT | O_APPEND | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    int rc = proc_start(&f->proc, "services/activation/px-activation", args);
    dup2(saved, 2);
    close(saved);
    close(fd);
    if (rc != 0) {
        return -1;
    }
    px_status_t st;
    px_rpc_client_opts_t o = {.caller = "activation-test"};
    f->client = px_rpc_client_new(f->proc.endpoint, &o, &st);
    return f->client ? 0 : -1;
}

int act_fixture_start(act_fixture_t *f, const char *prefix)
{
    return act_fixture_start_with(f, prefix, NULL);
}

int act_fixture_start_with(act_fixture_t *f, const char *prefix, const char *roster_endpoint)
{
    memset(f, 0, sizeof *f);
    if (roster_endpoint) {
        snprintf(f->roster.endpoint, sizeof f->roster.endpoint, "%s", roster_endpoint);
    } else {
        int port = px_test_free_port();
        if (port < 0) {
            return -1;
        }
        snprintf(f->roster.endpoint, sizeof f->roster.endpoint, "tcp://127.0.0.1:%d", port);
        if (act_roster_start(&f->roster) != 0) {
            return -1;
        }
    }
    f->db_url = px_test_db_new(prefix);
    if (!f->db_url) {
        return -1;
    }
    snprintf(f->log_path, sizeof f->log_path, "/tmp/px-act-%s-%d.log", prefix, (int)getpid());
    unlink(f->log_path);
    if (s_spawn(f) != 0) {
        return -1;
    }
    if (roster_endpoint) {
        return 0;
    }
    /* The service reads the whole tree in the background at start: wait for it, so that
     * every test sees the same cache (progress lists children from it). */
    for (int i = 0; i < 100; i++) {
        if (act_sql_int(f, "SELECT count(*) FROM units") >= 9) {
            return 0;
        }
        usleep(50000);
    }
    fprintf(stderr, "act_fixture_start: the service did not read the unit tree\n");
    return -1;
}

int act_service_restart(act_fixture_t *f)
{
    px_rpc_client_destroy(&f->client);
    int rc = testd_stop(&f->proc, SIGTERM);
    if (rc != 0) {
        return -1;
    }
    return s_spawn(f);
}

int act_fixture_stop(act_fixture_t *f)
{
    px_rpc_client_destroy(&f->client);
    int rc = f->proc.pid > 0 ? testd_stop(&f->proc, SIGTERM) : -1;
    act_roster_stop(&f->roster);
    free(f->db_url);
    f->db_url = NULL;
    if (!getenv("PX_TEST_KEEP_DB")) {
        unlink(f->log_path);
    }
    return rc;
}

px_code_t act_call(act_fixture_t *f, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply,
                   px_status_t *st)
{
    char full[200];
    snprintf(full, sizeof full, "/phuxanh.activation.v1.ActivationService/%s", method);
    px_rpc_call_opts_t o = {.timeout_ms = 30000};
    return px_rpc_client_call(f->client, full, req, reply_type, reply, &o, st);
}

Phuxanh__Activation__V1__ActivationEvent *act_event(const char *key, const char *citizen_id,
                                                    const char *unit, int stage, int offset_s)
{
    Phuxanh__Activation__V1__ActivationEvent *e = calloc(1, sizeof *e);
    Google__Protobuf__Timestamp *ts = calloc(1, sizeof *ts);
    phuxanh__activation__v1__activation_event__init(e);
    google__protobuf__timestamp__init(ts);
    ts->seconds = ACT_T_DAY_US / 1000000 + offset_s;
    e->idempotency_key = strdup(key);
    e->campaign_id = strdup("tn-2023");
    e->citizen_id = strdup(citizen_id);
    e->unit_code = strdup(unit);
    e->neighborhood_code = strdup("");
    e->volunteer_code = strdup("");
    e->note = strdup("");
    e->stage = stage;
    e->channel = PHUXANH__ACTIVATION__V1__CHANNEL__CHANNEL_OWN_PHONE;
    e->venue = PHUXANH__ACTIVATION__V1__VENUE__VENUE_OFFICE;
    e->occurred_at = ts;
    e->consent = true;
    return e;
}

void act_event_free(Phuxanh__Activation__V1__ActivationEvent *e)
{
    if (!e) {
        return;
    }
    free(e->idempotency_key);
    free(e->campaign_id);
    free(e->citizen_id);
    free(e->unit_code);
    free(e->neighborhood_code);
    free(e->volunteer_code);
    free(e->note);
    free(e->occurred_at);
    free(e);
}

Phuxanh__Activation__V1__RecordEventsResponse *
act_record(act_fixture_t *f, Phuxanh__Activation__V1__ActivationEvent **events, size_t n,
           px_status_t *st)
{
    Phuxanh__Activation__V1__RecordEventsRequest req =
        PHUXANH__ACTIVATION__V1__RECORD_EVENTS_REQUEST__INIT;
    req.events = events;
    req.n_events = n;
    ProtobufCMessage *reply = NULL;
    if (act_call(f, "RecordEvents", &req.base,
                 &phuxanh__activation__v1__record_events_response__descriptor, &reply,
                 st) != PX_OK) {
        return NULL;
    }
    return (Phuxanh__Activation__V1__RecordEventsResponse *)reply;
}

int act_record1(act_fixture_t *f, Phuxanh__Activation__V1__ActivationEvent *e, bool *dup, char *msg,
                size_t cap)
{
    px_status_t st;
    Phuxanh__Activation__V1__RecordEventsResponse *r = act_record(f, &e, 1, &st);
    if (!r || r->n_results != 1) {
        fprintf(stderr, "RecordEvents: %s\n", r ? "wrong result count" : st.message);
        if (r) {
            protobuf_c_message_free_unpacked(&r->base, NULL);
        }
        return -1;
    }
    int code = r->results[0]->code;
    if (dup) {
        *dup = r->results[0]->duplicate;
    }
    if (msg) {
        snprintf(msg, cap, "%s", r->results[0]->message);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return code;
}

long long act_sql_int(act_fixture_t *f, const char *sql)
{
    PGconn *c = PQconnectdb(f->db_url);
    long long v = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        } else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "act_sql_int: %s", PQerrorMessage(c));
        }
        PQclear(r);
    }
    PQfinish(c);
    return v;
}

long long act_total(act_fixture_t *f, const char *campaign, const char *unit, int stage)
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(count), 0) FROM totals WHERE campaign_id = '%s' AND "
             "unit_code = '%s' AND stage = %d",
             campaign, unit, stage);
    return act_sql_int(f, sql);
}

Phuxanh__Activation__V1__GetProgressResponse *act_progress(act_fixture_t *f, const char *campaign,
                                                           const char *unit, px_status_t *st)
{
    Phuxanh__Activation__V1__GetProgressRequest req =
        PHUXANH__ACTIVATION__V1__GET_PROGRESS_REQUEST__INIT;
    req.campaign_id = (char *)campaign;
    req.unit_code = (char *)unit;
    ProtobufCMessage *reply = NULL;
    if (act_call(f, "GetProgress", &req.base,
                 &phuxanh__activation__v1__get_progress_response__descriptor, &reply,
                 st) != PX_OK) {
        return NULL;
    }
    return (Phuxanh__Activation__V1__GetProgressResponse *)reply;
}

int act_file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        return -1;
    }
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, fp)) > 0) {
        len += got;
        if (cap - len < 4096) {
            cap *= 2;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                buf = NULL;
            }
            buf = b;
        }
    }
    fclose(fp);
    if (!buf) {
        return -1;
    }
    buf[len] = '\0';
    int found = memmem(buf, len, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

int act_db_contains(act_fixture_t *f, const char *needle)
{
    PGconn *c = PQconnectdb(f->db_url);
    int found = -1;
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return -1;
    }
    PGresult *tables = PQexec(c, "SELECT quote_ident(table_name) FROM information_schema.tables "
                                 "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'");
    if (PQresultStatus(tables) == PGRES_TUPLES_OK) {
        found = 0;
        for (int i = 0; i < PQntuples(tables) && found == 0; i++) {
            /* Every column of every row as text (bytea as hex). */
            char sql[300];
            snprintf(sql, sizeof sql, "SELECT count(*) FROM %s t WHERE strpos(t::text, $1) > 0",
                     PQgetvalue(tables, i, 0));
            const char *p[1] = {needle};
            PGresult *r = PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                found = -1;
            } else if (atoll(PQgetvalue(r, 0, 0)) > 0) {
                found = 1;
            }
            PQclear(r);
        }
    }
    PQclear(tables);
    PQfinish(c);
    return found;
}
