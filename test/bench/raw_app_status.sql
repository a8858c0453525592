-- pgbench script, baseline of tego_app_status.sql: broadcast the same
-- status with PostgreSQL's own NOTIFY (what each process would do without
-- a shared store; nothing is kept)
SELECT pg_notify('bench_apps', '{"app": "bench-app-' || :client_id || '", "status": "running", "message": "serving"}');
