-- pgbench script, the ceiling of any durable publish (not a baseline): the
-- message stored in a plain table, no NOTIFY at all.  Commits of plain
-- INSERTs share WAL flushes (group commit), which commits that NOTIFY
-- cannot: they hold the NOTIFY lock until they end.  A design that stores
-- each message durably cannot publish faster than this on this disk.
INSERT INTO bench_msgs (msg) VALUES ('@MESSAGE@');
