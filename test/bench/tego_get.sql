-- pgbench script: read one of 200 plugins with tego.plugin_get (from the
-- table or, with tego.registry_source = memory, from the mirror)
\set id random(1, 200)
SELECT * FROM tego.plugin_get('bench-get-' || :id);
