-- pgbench script, baseline of tego_get.sql: the same row with a plain SELECT
-- by primary key (name is UNIQUE) on the table
\set id random(1, 200)
SELECT * FROM tego.plugins WHERE name = 'bench-get-' || :id;
