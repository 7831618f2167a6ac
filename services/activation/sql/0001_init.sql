-- The activation service's schema: targets, the events as received, one row per citizen and
-- campaign, counts kept in the same transaction as the events that change them, the follow-up
-- lists and the audit trail.
--
-- A citizen is known only by citizen_key, HMAC-SHA256 of the 12-digit ID under a secret held
-- outside the database, and the last three digits for people to tell records apart. The
-- number itself is never stored.

-- A local copy of the roster's unit tree (phuxanh.roster.v1.Unit), refreshed from the roster:
-- what roll-ups walk and what events are checked against when the roster is slow or down.
CREATE TABLE units (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    level       smallint NOT NULL CHECK (level BETWEEN 1 AND 4), -- 1 province .. 4 neighborhood
    parent_code text,
    version     bigint NOT NULL DEFAULT 0,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX units_parent ON units (parent_code, code);

-- The roster's tree version as of the last complete read (ListUnits, all pages): the next
-- refresh asks for the changes since then. Units learnt one by one (GetUnits) do not move it.
CREATE TABLE units_sync (
    id           smallint PRIMARY KEY CHECK (id = 1),
    tree_version bigint NOT NULL
);

CREATE TABLE targets (
    campaign_id text NOT NULL,
    unit_code   text NOT NULL,
    target      integer NOT NULL CHECK (target BETWEEN 1 AND 100000000),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, unit_code)
);

-- One row per citizen and campaign. unit_code is the ward that owns the citizen (the first
-- that recorded them): every count of theirs is in that ward. stage is the furthest stage of
-- the current cycle (Stage numbers; 0 none yet, 4 rejected); the *_at columns are when each
-- stage was first reached, ever: a stage is counted when its column goes from NULL to a time,
-- which is what makes "each stage at most once per citizen per campaign" hold.
CREATE TABLE citizens (
    campaign_id       text NOT NULL,
    citizen_key       bytea NOT NULL,
    last3             text NOT NULL,
    unit_code         text NOT NULL,
    neighborhood_code text NOT NULL DEFAULT '',
    cycle             integer NOT NULL DEFAULT 1,
    stage             smallint NOT NULL DEFAULT 0,
    collected_at      timestamptz,
    approved_at       timestamptz,
    activated_at      timestamptz,
    rejected_at       timestamptz,
    volunteer_code    text NOT NULL DEFAULT '',
    channel           smallint NOT NULL DEFAULT 0,
    follow_up_kinds   smallint NOT NULL DEFAULT 0, -- bit 1: NO_PHONE opened, bit 2: VOLUNTEER_PHONE
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, citizen_key)
);
CREATE INDEX citizens_stalled ON citizens (campaign_id, unit_code, approved_at)
    WHERE activated_at IS NULL AND approved_at IS NOT NULL;

-- Every event taken, as received. A refused event is not stored (its key stays free, as the
-- proto says); an event taken keeps the answer it was given (code, message, duplicate), so a
-- retry of its key is answered the same. duty_verdict is the roster's DutyVerdict, 0 while the
-- roster has not answered (the background pass asks again for those).
CREATE TABLE events (
    id                 bigserial PRIMARY KEY,
    idempotency_key    text NOT NULL UNIQUE,
    campaign_id        text NOT NULL,
    citizen_key        bytea NOT NULL,
    unit_code          text NOT NULL,
    neighborhood_code  text NOT NULL DEFAULT '',
    volunteer_code     text NOT NULL DEFAULT '',
    stage              smallint NOT NULL CHECK (stage BETWEEN 1 AND 4),
    channel            smallint NOT NULL,
    venue              smallint NOT NULL,
    occurred_at        timestamptz NOT NULL,
    note               text NOT NULL DEFAULT '',
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    recorded_by        text NOT NULL,
    request_id         text NOT NULL,
    cycle              integer NOT NULL,
    volunteer_verified boolean NOT NULL,
    duty_verdict       smallint NOT NULL DEFAULT 0,
    code               smallint NOT NULL DEFAULT 0,
    message            text NOT NULL DEFAULT '',
    duplicate          boolean NOT NULL
);
CREATE INDEX events_citizen ON events (campaign_id, citizen_key, id);
CREATE INDEX events_unverified ON events (id) WHERE volunteer_code <> '' AND duty_verdict = 0;

-- Citizens per stage at every level of the tree (neighborhood when recorded, ward, district,
-- province), so progress reads rows and never scans events. stage is a Stage number (1..4),
-- or 101 for the open follow-ups of both kinds: one table, one statement per batch.
CREATE TABLE totals (
    campaign_id text NOT NULL,
    unit_code   text NOT NULL,
    stage       smallint NOT NULL CHECK (stage BETWEEN 1 AND 4 OR stage = 101),
    count       integer NOT NULL CHECK (count >= 0),
    PRIMARY KEY (campaign_id, unit_code, stage)
);

-- Citizens reaching a stage, per ward, day (Asia/Ho_Chi_Minh), channel and volunteer ('' when
-- none) of the event that reached it: what QueryCounts and TopVolunteers add up.
CREATE TABLE daily (
    campaign_id    text NOT NULL,
    unit_code      text NOT NULL,
    day            date NOT NULL,
    stage          smallint NOT NULL CHECK (stage BETWEEN 1 AND 4),
    channel        smallint NOT NULL,
    volunteer_code text NOT NULL,
    count          integer NOT NULL CHECK (count >= 0),
    PRIMARY KEY (campaign_id, unit_code, day, stage, channel, volunteer_code)
);

-- kind: 1 NO_PHONE (revisit), 2 VOLUNTEER_PHONE (hand the account over). FollowUpKind numbers.
CREATE TABLE follow_ups (
    id                bigserial PRIMARY KEY,
    campaign_id       text NOT NULL,
    citizen_key       bytea NOT NULL,
    kind              smallint NOT NULL CHECK (kind IN (1, 2)),
    unit_code         text NOT NULL,
    neighborhood_code text NOT NULL DEFAULT '',
    volunteer_code    text NOT NULL DEFAULT '',
    note              text NOT NULL DEFAULT '',
    last3             text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    resolved_at       timestamptz,
    resolution        text NOT NULL DEFAULT '',
    resolved_by       text NOT NULL DEFAULT '',
    UNIQUE (campaign_id, citizen_key, kind)
);
CREATE INDEX follow_ups_unit ON follow_ups (campaign_id, unit_code, created_at, id);

-- Every write and every read of one person's record, who made it and under which request.
-- Append-only: the triggers refuse UPDATE, DELETE and TRUNCATE.
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
