-- eCAF's PostgreSQL roles: the owner runs migrations; the web and worker processes connect as
-- ecaf_app, which may add to the audit trail and read it, but never change, remove or empty it,
-- and may not change the schema. See database-roles.md.

-- ---------------------------------------------------------------- 1. once, as a superuser
-- (psql -v owner_password=... -v app_password=... ; or set passwords however you manage secrets)
--
--   CREATE ROLE ecaf_owner LOGIN PASSWORD :'owner_password';
--   CREATE ROLE ecaf_app   LOGIN PASSWORD :'app_password';
--   CREATE DATABASE ecaf OWNER ecaf_owner;
--   \c ecaf
--   ALTER SCHEMA public OWNER TO ecaf_owner;
--   REVOKE ALL ON DATABASE ecaf FROM PUBLIC;
--   REVOKE ALL ON SCHEMA public FROM PUBLIC;

-- ---------------------------------------------------------------- 2. as ecaf_owner, after every `ecaf db upgrade`
-- Idempotent: run it again after each migration, so new tables get exactly these grants.

DO $$ BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO ecaf_app', current_database());
END $$;

-- Use the schema's objects, but create none (no DDL: CREATE TABLE, ALTER, DROP need ownership or CREATE).
GRANT USAGE ON SCHEMA public TO ecaf_app;
REVOKE CREATE ON SCHEMA public FROM ecaf_app;

-- Everything the pages and jobs do to the other tables: read, add, change, remove rows.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ecaf_app;
REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM ecaf_app;
-- Ids come from sequences (serial and identity columns).
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ecaf_app;

-- The audit trail: add and read only. (Its triggers refuse UPDATE, DELETE and TRUNCATE as well,
-- but only the owner can drop them; ecaf_app cannot even try.)
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_event FROM ecaf_app;
GRANT SELECT, INSERT ON audit_event TO ecaf_app;

-- The migration bookkeeping is the owner's alone.
REVOKE ALL ON alembic_version FROM ecaf_app;
