-- pgbench script, the baseline of tego_publish.sql: the message stored in a
-- plain table and sent with pg_notify in one transaction (the pattern of
-- graphile-worker), so that, like tego.publish, the commit waits for its WAL
-- flush (a transaction that only calls pg_notify writes no WAL before its
-- commit record, and PostgreSQL then commits it without waiting for the
-- flush: see RecordTransactionCommit in xact.c).
BEGIN;
INSERT INTO bench_msgs (msg) VALUES ('@MESSAGE@');
SELECT pg_notify('bench', '@MESSAGE@');
COMMIT;
