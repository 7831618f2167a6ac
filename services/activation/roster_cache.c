/*
 * roster_cache.c - the roster's unit tree, cached in memory and in the local
 * units table.
 *
 * Every event names a ward that must exist; every count walks up the tree to
 * the province. Asking the roster each time would put it on the hot path and
 * make activation fail when it is down, so the tree is kept here: loaded from
 * the local table at start, filled from GetUnits when a code is unknown (one
 * call per batch), and refreshed by the background pass with ListUnits
 * since_version. Units are never deleted in the roster, so the cache only
 * grows or changes.
 *
 * A hash table of fixed-size entries behind a read-write lock: workers read it
 * concurrently; writes are rare.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phuxanh/hash.h"

#include "activation.h"

struct act_units_t {
    pthread_rwlock_t lock;
    act_unit_t *slots; /* open addressing; code[0] == '\0' is empty */
    size_t cap, count;
    int64_t version;
};

static const px_db_stmt_t s_units_load = {
    "act_units_load",
    "SELECT code, name, level, coalesce(parent_code, ''), "
    "(SELECT coalesce(max(tree_version), 0) FROM units_sync) FROM units",
};

static const px_db_stmt_t s_sync_put = {
    "act_units_sync_put",
    "INSERT INTO units_sync (id, tree_version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE "
    "SET tree_version = greatest(units_sync.tree_version, EXCLUDED.tree_version)",
};

/* One statement for a whole answer: unnest of parallel arrays. */
static const px_db_stmt_t s_units_upsert = {
    "act_units_upsert",
    "INSERT INTO units (code, name, level, parent_code, version) "
    "SELECT c, n, l, nullif(p, ''), v "
    "FROM unnest($1::text[], $2::text[], $3::smallint[], $4::text[], $5::bigint[]) "
    "AS u(c, n, l, p, v) ORDER BY c "
    "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level, "
    "parent_code = EXCLUDED.parent_code, version = EXCLUDED.version, refreshed_at = now()",
};

static uint64_t s_hash(const char *s)
{
    return px_hash_str(s, PX_HASH_SEED);
}

act_units_t *act_units_new(void)
{
    act_units_t *self = calloc(1, sizeof *self);
    if (!self) {
        return NULL;
    }
    self->cap = 1024;
    self->slots = calloc(self->cap, sizeof *self->slots);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    pthread_rwlock_init(&self->lock, NULL);
    return self;
}

void act_units_destroy(act_units_t **self_p)
{
    if (*self_p) {
        act_units_t *self = *self_p;
        for (size_t i = 0; i < self->cap; i++) {
            free(self->slots[i].name);
        }
        free(self->slots);
        pthread_rwlock_destroy(&self->lock);
        free(self);
        *self_p = NULL;
    }
}

static act_unit_t *s_find(act_unit_t *slots, size_t cap, const char *code)
{
    size_t i = s_hash(code) & (cap - 1);
    while (slots[i].code[0] && strcmp(slots[i].code, code) != 0) {
        i = (i + 1) & (cap - 1);
    }
    return &slots[i];
}

/* Caller holds the write lock. */
static bool s_put(act_units_t *self, const char *code, const char *name, int level,
                  const char *parent)
{
    if (strlen(code) > ACT_CODE_MAX || strlen(parent) > ACT_CODE_MAX) {
        return true; /* not a code we could be asked about */
    }
    if ((self->count + 1) * 2 > self->cap) {
        size_t cap = self->cap * 2;
        act_unit_t *slots = calloc(cap, sizeof *slots);
        if (!slots) {
            return false;
        }
        for (size_t i = 0; i < self->cap; i++) {
            if (self->slots[i].code[0]) {
                *s_find(slots, cap, self->slots[i].code) = self->slots[i];
            }
        }
        free(self->slots);
        self->slots = slots;
        self->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
        return false;
    }
    act_unit_t *e = s_find(self->slots, self->cap, code);
    if (!e->code[0]) {
        self->count++;
        strcpy(e->code, code);
    }
    free(e->name);
    e->name = copy;
    e->level = level;
    strcpy(e->parent, parent);
    return true;
}

px_code_t act_units_load(act_units_t *self, px_db_t *db, px_status_t *st)
{
    PGresult *res = NULL;
    if (px_db_execp(db, &s_units_load, 0, NULL, &res, st) != PX_OK) {
        return st->code;
    }
    pthread_rwlock_wrlock(&self->lock);
    px_code_t code = PX_OK;
    for (int r = 0; r < PQntuples(res); r++) {
        if (!s_put(self, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), atoi(PQgetvalue(res, r, 2)),
                   PQgetvalue(res, r, 3))) {
            code = px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
        int64_t v = strtoll(PQgetvalue(res, r, 4), NULL, 10);
        if (v > self->version) {
            self->version = v;
        }
    }
    pthread_rwlock_unlock(&self->lock);
    PQclear(res);
    return code;
}

bool act_units_get(act_units_t *self, const char *code, act_unit_t *out)
{
    if (!code || !*code || strlen(code) > ACT_CODE_MAX) {
        return false;
    }
    pthread_rwlock_rdlock(&self->lock);
    act_unit_t *e = s_find(self->slots, self->cap, code);
    bool found = e->code[0] != '\0';
    if (found && out) {
        *out = *e;
        out->name = NULL; /* the name stays owned by the cache (names come from the table) */
    }
    pthread_rwlock_unlock(&self->lock);
    return found;
}

int64_t act_units_version(act_units_t *self)
{
    pthread_rwlock_rdlock(&self->lock);
    int64_t v = self->version;
    pthread_rwlock_unlock(&self->lock);
    return v;
}

px_code_t act_units_set_version(act_units_t *self, px_db_t *db, int64_t version, px_status_t *st)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)version);
    const char *p[1] = {v};
    if (px_db_execp(db, &s_sync_put, 1, p, NULL, st) != PX_OK) {
        return st->code;
    }
    pthread_rwlock_wrlock(&self->lock);
    if (version > self->version) {
        self->version = version;
    }
    pthread_rwlock_unlock(&self->lock);
    return PX_OK;
}

px_code_t act_units_store(act_units_t *self, px_db_t *db, Phuxanh__Roster__V1__Unit *const *units,
                          size_t n, px_status_t *st)
{
    if (n == 0) {
        return PX_OK;
    }
    px_code_t code = PX_OK;
    if (db) {
        act_arr_t c, nm, l, p, v;
        act_arr_init(&c), act_arr_init(&nm), act_arr_init(&l), act_arr_init(&p), act_arr_init(&v);
        for (size_t i = 0; i < n; i++) {
            act_arr_add(&c, units[i]->code);
            act_arr_add(&nm, units[i]->name);
            act_arr_addf(&l, "%d", (int)units[i]->level);
            act_arr_add(&p, units[i]->parent_code);
            act_arr_addf(&v, "%lld", (long long)units[i]->version);
        }
        const char *params[5] = {act_arr_end(&c), act_arr_end(&nm), act_arr_end(&l),
                                 act_arr_end(&p), act_arr_end(&v)};
        bool oom = !params[0] || !params[1] || !params[2] || !params[3] || !params[4];
        code = oom ? px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory")
                   : px_db_execp(db, &s_units_upsert, 5, params, NULL, st);
        act_arr_free(&c), act_arr_free(&nm), act_arr_free(&l), act_arr_free(&p), act_arr_free(&v);
        if (code != PX_OK) {
            return code;
        }
    }
    pthread_rwlock_wrlock(&self->lock);
    for (size_t i = 0; i < n && code == PX_OK; i++) {
        if (!s_put(self, units[i]->code, units[i]->name, (int)units[i]->level,
                   units[i]->parent_code)) {
            code = px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
        }
    }
    pthread_rwlock_unlock(&self->lock);
    return code;
}

px_code_t act_units_ensure(act_units_t *self, px_rpc_ctx_t *ctx, const char *const *codes, size_t n,
                           px_status_t *st)
{
    px_code_t code = PX_OK;
    char **ask = calloc(n ? n : 1, sizeof *ask);
    size_t nask = 0;
    if (!ask) {
        return px_status_set(st, PX_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (!codes[i] || !*codes[i] || !act_code_ok(codes[i], ACT_CODE_MAX) ||
            act_units_get(self, codes[i], NULL)) {
            continue;
        }
        bool seen = false;
        for (size_t j = 0; j < nask && !seen; j++) {
            seen = strcmp(ask[j], codes[i]) == 0;
        }
        if (!seen) {
            ask[nask++] = (char *)codes[i];
        }
    }
    if (nask == 0) {
        goto done;
    }
    px_rpc_client_t *roster = px_rpc_ctx_peer(ctx, "roster");
    if (!roster) {
        code = px_status_set(st, PX_UNAVAILABLE, "the roster is not configured");
        goto done;
    }
    Phuxanh__Roster__V1__GetUnitsRequest req = PHUXANH__ROSTER__V1__GET_UNITS_REQUEST__INIT;
    req.codes = ask;
    req.n_codes = nask;
    req.include_ancestors = true;
    px_rpc_call_opts_t o = {
        .parent = ctx,
        .deadline_us = act_roster_deadline(ctx),
        .idempotent = true,
    };
    ProtobufCMessage *reply = NULL;
    if (px_rpc_client_call(roster, "/phuxanh.roster.v1.RosterService/GetUnits", &req.base,
                           &phuxanh__roster__v1__get_units_response__descriptor, &reply, &o,
                           st) != PX_OK) {
        /* Whatever the roster said (down, slow, not implemented): we could not learn. */
        px_log_emit(px_rpc_ctx_log(ctx), PX_LOG_WARN, "ACT-ROSTER-UNITS",
                    "could not ask the roster for units",
                    PX_LOG_FIELDS(PX_LS("code", px_code_name(st->code)),
                                  PX_LS("request_id", px_rpc_ctx_request_id(ctx))));
        code = px_status_set(st, PX_UNAVAILABLE, "the roster could not be asked for units");
        goto done;
    }
    Phuxanh__Roster__V1__GetUnitsResponse *r = (Phuxanh__Roster__V1__GetUnitsResponse *)reply;
    /* Not the cache's version: only a full read (the background pass) may set that. */
    code = act_units_store(self, px_rpc_ctx_db(ctx), r->units, r->n_units, st);
    protobuf_c_message_free_unpacked(reply, NULL);
done:
    free(ask);
    return code;
}

size_t act_units_chain(act_units_t *self, const char *ward, const char *neighborhood,
                       char out[][ACT_CODE_MAX + 1], size_t cap)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&self->lock);
    if (neighborhood && *neighborhood && n < cap) {
        strcpy(out[n++], neighborhood);
    }
    const char *code = ward;
    /* Bounded by cap: a cycle in a broken tree cannot loop forever. */
    while (code && *code && n < cap) {
        act_unit_t *e = s_find(self->slots, self->cap, code);
        if (!e->code[0]) {
            break;
        }
        strcpy(out[n++], e->code);
        code = e->parent;
    }
    pthread_rwlock_unlock(&self->lock);
    return n;
}
