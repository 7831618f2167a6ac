/*
 * test_on_behalf.c - whom a caller acts for (x-on-behalf-of) in the roster: by default only
 * gateway, pxctl and activation may send it (on-behalf-callers); anyone else is refused
 * PERMISSION_DENIED and nothing is written; a write from the gateway leaves an audit row with
 * both the caller and whom it acted for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "px_test.h"
#include "roster_fixture.h"

#define PERSON "Lê Văn Cường (tn-planner)"

static roster_fixture_t s_f;

/* UpsertUnits of one province as `caller`, acting for obo (NULL: nobody). */
static px_code_t s_upsert_as(const char *caller, const char *obo, const char *unit,
                             const char *name, px_status_t *st)
{
    px_rpc_client_opts_t co = {.caller = caller};
    px_rpc_client_t *c = px_rpc_client_new(s_f.proc.endpoint, &co, st);
    if (!c) {
        return st->code;
    }
    Phuxanh__Roster__V1__Unit u = PHUXANH__ROSTER__V1__UNIT__INIT;
    u.code = (char *)unit;
    u.name = (char *)name;
    u.level = PHUXANH__ROSTER__V1__UNIT_LEVEL__UNIT_LEVEL_PROVINCE;
    u.parent_code = "";
    Phuxanh__Roster__V1__Unit *rows[1] = {&u};
    Phuxanh__Roster__V1__UpsertUnitsRequest req = PHUXANH__ROSTER__V1__UPSERT_UNITS_REQUEST__INIT;
    req.units = rows;
    req.n_units = 1;
    px_md_t *md = px_md_new();
    if (obo) {
        px_md_set(md, PX_MD_ON_BEHALF_OF, obo);
    }
    px_rpc_call_opts_t o = {.timeout_ms = 30000, .metadata = md};
    ProtobufCMessage *rep = NULL;
    px_code_t code =
        px_rpc_client_call(c, "/phuxanh.roster.v1.RosterService/UpsertUnits", &req.base,
                           &phuxanh__roster__v1__batch_upsert_response__descriptor, &rep, &o, st);
    if (rep) {
        Phuxanh__Roster__V1__BatchUpsertResponse *b =
            (Phuxanh__Roster__V1__BatchUpsertResponse *)rep;
        if (!b->committed || b->n_errors) {
            code = px_status_set(st, PX_UNKNOWN, "batch not committed");
        }
        protobuf_c_message_free_unpacked(rep, NULL);
    }
    px_md_destroy(&md);
    px_rpc_client_destroy(&c);
    return code;
}

static void test_untrusted_caller_refused_nothing_written(void)
{
    px_status_t st;
    const char *untrusted[] = {"roster-test", "planner-ui", "gate"};
    for (size_t i = 0; i < sizeof untrusted / sizeof untrusted[0]; i++) {
        PX_CHECK_INT_EQ(s_upsert_as(untrusted[i], PERSON, "91", "Kiên Giang", &st),
                        PX_PERMISSION_DENIED);
        char want[128];
        snprintf(want, sizeof want, "caller \"%s\" may not act on behalf of others", untrusted[i]);
        PX_CHECK_STR_EQ(st.message, want);
    }
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM units WHERE code = '91'"), 0);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM audit"), 0);
}

static void test_trusted_callers_audited_with_both(void)
{
    px_status_t st;
    PX_CHECK_INT_EQ(s_upsert_as("gateway", PERSON, "74", "Bình Dương", &st), PX_OK);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit WHERE caller = 'gateway' AND on_behalf_of = '%s' "
             "AND method LIKE '%%/UpsertUnits' AND request_id <> ''",
             PERSON);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, sql), 1);
    /* The activation service (passing on whom its own caller acted for) and pxctl are trusted
     * too by default. */
    PX_CHECK_INT_EQ(s_upsert_as("activation", PERSON, "74", "Tỉnh Bình Dương", &st), PX_OK);
    PX_CHECK_INT_EQ(s_upsert_as("pxctl", "operator", "74", "Bình Dương", &st), PX_OK);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM audit WHERE caller = 'pxctl' AND "
                                         "on_behalf_of = 'operator'"),
                    1);
    /* A write acting for nobody says so. */
    PX_CHECK_INT_EQ(s_upsert_as("roster-test", NULL, "74", "Bình Dương mới", &st), PX_OK);
    PX_CHECK_INT_EQ(roster_sql_int(&s_f, "SELECT count(*) FROM audit WHERE caller = 'roster-test' "
                                         "AND on_behalf_of = ''"),
                    1);
}

static const px_test_case_t s_cases[] = {
    {"untrusted_caller_refused_nothing_written", test_untrusted_caller_refused_nothing_written},
    {"trusted_callers_audited_with_both", test_trusted_callers_audited_with_both},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return roster_fixture_main(&s_f, "roster_obo", NULL, NULL, NULL, argc, argv, s_cases);
}
