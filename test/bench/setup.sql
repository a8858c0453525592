-- make bench: objects the benchmarks use (run once on a fresh database).

-- 2. lifecycle transitions: one plugin per pgbench client (client_id 0..7),
--    installed and disabled, so every enable/disable is a real transition.
SELECT tego.plugin_add('bench-' || i) FROM generate_series(0, 7) AS i;
SELECT tego.plugin_install(VARIADIC array_agg('bench-' || i ORDER BY i))
  FROM generate_series(0, 7) AS i;

-- ... and its baseline: a plain table changed the way an application would
-- do it without tego (UPDATE + pg_notify, one commit per transition).
CREATE TABLE bench_plain (name text PRIMARY KEY, enabled bool);
INSERT INTO bench_plain SELECT 'bench-' || i, false FROM generate_series(0, 7) AS i;

-- 1. latency: the plugin tego_latency toggles (it would create it too).
SELECT tego.plugin_add('bench-lat');
SELECT tego.plugin_install('bench-lat');

-- 3. context for tego.publish: a durable message without tego (a row in a
--    plain table plus pg_notify), i.e. a commit that waits for its WAL flush.
CREATE TABLE bench_msgs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, msg jsonb NOT NULL);

-- 4. leases: one per pgbench client, acquired here (token 1), and the same
--    leases in a plain table for the baseline.
SELECT count(*) FROM (SELECT tego.lease_acquire('lease-' || i, 'holder-' || i, '1 hour')
                        FROM generate_series(0, 7) AS i) s;
CREATE TABLE bench_leases (name text PRIMARY KEY, holder text, token bigint,
                           renewed_at timestamptz, expires_at timestamptz);
INSERT INTO bench_leases
SELECT 'lease-' || i, 'holder-' || i, 1, now(), now() + interval '1 hour'
  FROM generate_series(0, 7) AS i;

-- 6. plugin_get: 200 plugins to read
SELECT count(*) FROM generate_series(1, 200) AS g, LATERAL tego.plugin_add('bench-get-' || g);
