-- pgbench script, the ceiling of tego_get.sql: a statement that returns a
-- row of tego.plugins' shape with no lookup at all (constants), i.e. what
-- any plugin_get would cost if finding the row were free
\set id random(1, 200)
SELECT 7::bigint AS id, 'bench-get-' || :id AS name, 'pkg7'::text AS package_name,
       '1.0.0'::text AS version, false AS enabled, false AS installed, false AS built_in,
       true AS sub_view, '{}'::jsonb AS options, '{}'::text[] AS depends_on,
       'added'::text AS state, 7::bigint AS revision,
       '2026-11-26 04:12:53.34995+00'::timestamptz AS created_at,
       '2026-11-26 04:12:53.34995+00'::timestamptz AS updated_at;
