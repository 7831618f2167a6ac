-- deploy/postgres/service-db.sql - one service's database and its two roles.
--
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -v service=roster -v db=roster -f service-db.sql
--
-- Run as a superuser (or a role with CREATEDB and CREATEROLE) of the PostgreSQL server, once per
-- service (roster, activation); running it again changes nothing that is already right.
--
--   px_<service>_owner  owns the database, its schema and every table: the migrations run as
--                       it (PX_DB_MIGRATE_URL). It logs in only while a service starts.
--   px_<service>        what the running service is (PX_DB_URL): reads and writes rows,
--                       nothing else - no CREATE, ALTER or DROP, no TRUNCATE, no other database.
--
-- Neither role can connect to the other service's database: CONNECT is revoked from PUBLIC and
-- granted to the two roles of each database only. The rows a migration adds later are covered
-- by ALTER DEFAULT PRIVILEGES: whatever px_<service>_owner creates in the schema is granted to
-- px_<service> as it is created. No password is set here: authenticate the roles as the
-- server's pg_hba.conf says (peer over the unix socket for the systemd units' users, or a
-- password the DBA sets with \password and gives the service in a PGPASSFILE, never in a URL).

\set owner 'px_' :service '_owner'
\set runtime 'px_' :service

SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', r)
  FROM unnest(ARRAY[:'owner', :'runtime']) AS r
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec

SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'db', :'owner',
              'UTF8')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
ALTER DATABASE :"db" OWNER TO :"owner";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
-- TEMPORARY: a session's own scratch tables (a staging table for an all-or-nothing import);
-- they vanish with the session and touch nothing shared.
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"runtime";

\connect :"db"

-- Only the owner creates anything in the schema (PostgreSQL 15 already keeps PUBLIC out).
ALTER SCHEMA public OWNER TO :"owner";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"runtime";

-- A database made before these roles existed (by an older quickstart, or by hand) holds tables
-- of another owner: the owner role takes them over, so the next migration may alter them.
SELECT format('ALTER %s %I.%I OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                             WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              n.nspname, c.relname, :'owner')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
   AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = :'owner')
   -- a bigserial's sequence moves with its table; an extension's objects stay its own
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass
                      AND (d.deptype = 'e' OR (c.relkind = 'S' AND d.deptype IN ('a', 'i')))) \gexec
SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, :'owner')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public'
   AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = :'owner')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.objid = p.oid AND d.classid = 'pg_proc'::regclass
                      AND d.deptype = 'e') \gexec

-- What the running service does: rows, and the sequences behind bigserial ids.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"runtime";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO :"runtime";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"runtime";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO :"runtime";
