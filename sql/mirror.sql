--
-- The registry mirror: tego.registry_source = memory reads the same rows,
-- in the same order, from shared memory; tego.registry_epoch().
--
\set SHOW_CONTEXT never
SELECT tego.registry_epoch() AS e0 \gset
SELECT name FROM tego.plugin_add('m-base', '@demo/m-base', '1.0.0');
SELECT name FROM tego.plugin_add('m-ext', depends_on => ARRAY['m-base']);
SELECT name FROM tego.plugin_add('m-big', options => jsonb_build_object('blob', repeat('x', 5000)));
SELECT name FROM tego.plugin_enable('m-base', 'm-ext');
SELECT tego.registry_epoch() AS e1 \gset
SELECT :e1 > :e0 AS epoch_moved, :e1 = tego.event_seq() AS epoch_is_last_seq;

-- plugin_list: the same rows in the same order
CREATE TEMP TABLE from_table AS
  SELECT row_number() OVER () AS pos, p::text AS row FROM tego.plugin_list() p;
SET tego.registry_source = memory;
CREATE TEMP TABLE from_memory AS
  SELECT row_number() OVER () AS pos, p::text AS row FROM tego.plugin_list() p;
SELECT count(*) AS rows,
       bool_and(t.row = m.row) AS same_rows_same_order
  FROM from_table t FULL JOIN from_memory m USING (pos);
SELECT count(*) AS enabled_rows FROM tego.plugin_list(true);

-- plugin_get: the same row (m-big is too large for memory: read from the table)
SELECT bool_and(g.m = g.t) AS same_row
  FROM (SELECT (SELECT p::text FROM tego.plugin_get(n) p) AS m, n FROM unnest(ARRAY['m-base', 'm-ext', 'm-big']) n) x,
       LATERAL (SELECT x.m, (SELECT p::text FROM tego.plugins p WHERE p.name = x.n) AS t) g;
SELECT tego.plugin_get('no-such-plugin');

-- a change shows at once, with the epoch
SELECT name FROM tego.plugin_disable('m-ext');
SELECT name, state, revision = tego.registry_epoch() AS latest FROM tego.plugin_get('m-ext');
SELECT name FROM tego.plugin_remove(ARRAY['m-ext']);
SELECT tego.plugin_get('m-ext');

-- what a reader sees: the latest committed state, not its own snapshot:
-- its own uncommitted change is not in memory yet
BEGIN;
SELECT name FROM tego.plugin_disable('m-base');
SELECT state FROM tego.plugin_get('m-base');
SET LOCAL tego.registry_source = 'table';
SELECT state FROM tego.plugin_get('m-base');
ROLLBACK;

RESET tego.registry_source;
SELECT name FROM tego.plugin_remove(ARRAY['m-base', 'm-big'], force => true);
SELECT registry_epoch = tego.registry_epoch() AS status_has_epoch FROM tego.status();
SET tego.registry_source = nowhere;
DROP TABLE from_table, from_memory;
