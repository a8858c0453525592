-- pgbench script, baseline of tego_publish.sql: the same message text sent
-- with PostgreSQL's own NOTIFY.
SELECT pg_notify('bench', '@MESSAGE@');
