-- Imports staged for an all-or-nothing commit (imports.c): BeginImport makes the row,
-- StageRows adds serialized rows (a Unit, Volunteer, Campaign or Wave message) keyed by kind
-- and index, CommitImport applies them in one transaction and drops them. An import nobody
-- touches until expires_at is swept away by the next BeginImport.
CREATE TABLE imports (
    id           text PRIMARY KEY,
    caller       text NOT NULL,
    on_behalf_of text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX imports_expires ON imports (expires_at);

CREATE TABLE import_rows (
    import_id text NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    kind      smallint NOT NULL CHECK (kind BETWEEN 1 AND 4), -- ImportKind
    seq       integer NOT NULL CHECK (seq >= 0),
    row       bytea NOT NULL,
    PRIMARY KEY (import_id, kind, seq)
);
