-- Two identities travel with a call (API.md): the calling process (caller) and the person or
-- system it acts for (x-on-behalf-of: a token's name at the gateway, the operator at pxctl).
-- Audit rows keep both; '' when the caller acted for itself. A constant default adds the
-- column without rewriting the table, so the append-only triggers are not involved.
ALTER TABLE audit ADD COLUMN on_behalf_of text NOT NULL DEFAULT '';
-- Who resolved a follow-up: resolved_by stays the calling process, as before; this is whom it
-- acted for (the operator behind the gateway), '' when nobody.
ALTER TABLE follow_ups ADD COLUMN resolved_on_behalf_of text NOT NULL DEFAULT '';
