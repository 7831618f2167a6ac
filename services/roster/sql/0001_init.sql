-- The roster's schema: units, volunteers, campaigns, waves, assignments, and the audit trail.
-- Keys are the codes clients use (API.md); there are no surrogate ids to leak.

-- unaccent folds Vietnamese diacritics (đ -> d, ễ -> e) for name search. Trusted since PG 13,
-- so the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS unaccent;

-- Folded form of a name for diacritic- and case-insensitive search: "Nguyễn  Văn An" ->
-- "nguyen van an".
CREATE FUNCTION px_fold(t text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT btrim(regexp_replace(lower(unaccent(t)), '\s+', ' ', 'g')) $$;

-- The tree version: every write that changes a unit takes the next value, so a cache can ask
-- for the changes since the version it holds.
CREATE SEQUENCE unit_tree_version;

CREATE TABLE units (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    level       smallint NOT NULL CHECK (level BETWEEN 1 AND 4), -- 1 province .. 4 neighborhood
    parent_code text REFERENCES units (code) DEFERRABLE INITIALLY DEFERRED,
    version     bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((level = 1) = (parent_code IS NULL))
);
CREATE INDEX units_parent ON units (parent_code, code);
CREATE INDEX units_version ON units (version);

CREATE TABLE volunteers (
    code        text PRIMARY KEY,
    full_name   text NOT NULL,
    name_folded text NOT NULL,
    rank        text NOT NULL DEFAULT '',
    department  text NOT NULL DEFAULT '',
    union_role  text NOT NULL DEFAULT '',
    phone       text NOT NULL DEFAULT '',
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX volunteers_department ON volunteers (department, code);

CREATE TABLE campaigns (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    starts_on  date NOT NULL,
    ends_on    date NOT NULL,
    unit_code  text REFERENCES units (code),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_on >= starts_on)
);

-- assigned counts the assignments holding a seat (every status but no-show); it is kept in
-- the same transaction as the assignments, and the CHECK makes overfilling impossible even
-- if a code path forgot the capacity test.
CREATE TABLE waves (
    campaign_id text NOT NULL REFERENCES campaigns (id),
    day         date NOT NULL,
    capacity    integer NOT NULL CHECK (capacity BETWEEN 1 AND 1000),
    assigned    integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, day),
    CHECK (assigned >= 0 AND assigned <= capacity)
);

-- status: 1 planned, 2 checked in, 3 checked out, 4 no-show (AssignmentStatus numbers).
-- The primary key is the rule "never in two places on one day", across campaigns, and the
-- index CheckDuty answers from.
CREATE TABLE assignments (
    volunteer_code    text NOT NULL REFERENCES volunteers (code),
    day               date NOT NULL,
    campaign_id       text NOT NULL,
    unit_code         text NOT NULL REFERENCES units (code),
    neighborhood_code text REFERENCES units (code),
    status            smallint NOT NULL DEFAULT 1 CHECK (status BETWEEN 1 AND 4),
    checked_in_at     timestamptz,
    checked_out_at    timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (volunteer_code, day),
    FOREIGN KEY (campaign_id, day) REFERENCES waves (campaign_id, day)
);
CREATE INDEX assignments_wave ON assignments (campaign_id, day, unit_code, volunteer_code);

-- Every write, who made it and under which request. Append-only: the trigger refuses any
-- UPDATE or DELETE, so the trail cannot be edited through the service's own role either.
CREATE TABLE audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    caller     text NOT NULL,
    method     text NOT NULL,
    request_id text NOT NULL,
    detail     jsonb
);

CREATE FUNCTION audit_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'audit is append-only'; END $$;

CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
