-- pgbench script, baseline of tego_toggle.sql: the same two transitions on
-- a plain table, each with a NOTIFY of the size of tego's notification
-- (@PAYLOAD@ is filled in by bench.sh with a captured tego payload).
BEGIN;
UPDATE bench_plain SET enabled = true WHERE name = 'bench-' || :client_id;
SELECT pg_notify('bench_plain', '@PAYLOAD@');
COMMIT;
BEGIN;
UPDATE bench_plain SET enabled = false WHERE name = 'bench-' || :client_id;
SELECT pg_notify('bench_plain', '@PAYLOAD@');
COMMIT;
