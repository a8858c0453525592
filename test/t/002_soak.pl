
# Copyright: the tego authors.  PostgreSQL::Test::Cluster TAP test.
#
# Soak: 8 sessions make 2,000 random lifecycle calls on a dozen plugins
# with dependencies (many are refused, some are rolled back on purpose
# after they succeeded, inside a subtransaction).  Afterwards:
#   - replaying tego.events from seq 1 reproduces tego.plugins exactly
#     (every column but the derived state, revision included), and every
#     event's "from" is the replayed state before it;
#   - seq is 1..max, gapless, and committed_at follows seq;
#   - no enabled plugin needs a missing or disabled plugin, and
#     tego.plugin_list() puts dependencies first;
#   - refused calls failed with the documented SQLSTATEs only;
#   - the soak did enough of everything;
#   - the registry's shared-memory mirror, loaded before the soak and kept
#     by the commits, lists exactly the table's rows in the same order, its
#     epoch is the last registry event; after an immediate shutdown it is
#     loaded again, the same, and its epoch has not gone back.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $clients = 8;
my $per_client = 250;
my $calls = $clients * $per_client;

my $node = PostgreSQL::Test::Cluster->new('soak');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'tego'");
$node->append_conf(
	'postgresql.conf', qq{
max_connections = 30
deadlock_timeout = '50ms'
});
$node->start;

my $db = 'soak';
$node->safe_psql('postgres', "CREATE DATABASE $db");

# The registry: a DAG of 12 plugins, two of them built in, some enabled.
$node->safe_psql(
	$db, q{
CREATE EXTENSION tego;
SELECT count(*) FROM tego.plugin_add('core', '@soak/core', '1.0.0', built_in => true);
SELECT count(*) FROM tego.plugin_add('acl', '@soak/acl', '1.0.0', built_in => true, depends_on => '{core}');
SELECT count(*) FROM tego.plugin_add('users', '@soak/users', '1.0.0', depends_on => '{core}');
SELECT count(*) FROM tego.plugin_add('ui', NULL, '1.0.0', depends_on => '{core}');
SELECT count(*) FROM tego.plugin_add('auth', '@soak/auth', '1.0.0', depends_on => '{users,acl}');
SELECT count(*) FROM tego.plugin_add('workflow', '@soak/workflow', '1.0.0', depends_on => '{users}');
SELECT count(*) FROM tego.plugin_add('files', NULL, '1.0.0');
SELECT count(*) FROM tego.plugin_add('charts', '@soak/charts', '1.0.0', depends_on => '{ui}');
SELECT count(*) FROM tego.plugin_add('mail', '@soak/mail', '1.0.0', depends_on => '{workflow}');
SELECT count(*) FROM tego.plugin_add('audit', NULL, '1.0.0', depends_on => '{auth,workflow}');
SELECT count(*) FROM tego.plugin_add('sync', '@soak/sync', '1.0.0', options => '{"interval": 5}');
SELECT count(*) FROM tego.plugin_add('theme', NULL, '1.0.0', depends_on => '{ui}');
SELECT count(*) FROM tego.plugin_enable('core', 'acl', 'users', 'ui', 'files');
SELECT count(*) FROM tego.plugin_install('auth', 'sync');
});
is($node->safe_psql($db, 'SELECT count(*) FROM tego.plugins'), 12, '12 plugins registered');

# The test-only random step (not part of the extension).  soak_call makes
# one lifecycle call; soak_step runs one or two of them in a subtransaction
# that swallows any error, sometimes raising on purpose after success so
# that the subtransaction (and its events) roll back.  Every step logs its
# outcome in soak_log, outside the subtransaction.
$node->safe_psql(
	$db, q{
CREATE TABLE soak_log (
    id       bigserial PRIMARY KEY,
    op       text NOT NULL,
    outcome  text NOT NULL,      -- ok, refused, rolled_back
    sqlstate text,
    message  text
);

CREATE FUNCTION soak_names() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['core', 'acl', 'users', 'ui', 'auth', 'workflow', 'files',
                 'charts', 'mail', 'audit', 'sync', 'theme']
$$;

-- n distinct random names of the pool
CREATE FUNCTION soak_pick(n int) RETURNS text[]
LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(array_agg(x), '{}')
      FROM (SELECT x FROM unnest(soak_names()) x ORDER BY random() LIMIT n) s
$$;

CREATE FUNCTION soak_call(op text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    pick text[] := soak_pick(1 + floor(random() * 3)::int);
    nm   text := pick[1];
    deps text[] := (SELECT coalesce(array_agg(x), '{}')
                      FROM unnest(soak_pick(floor(random() * 3)::int)) x
                     WHERE x <> pick[1]);
    rev  bigint;
BEGIN
    CASE op
    WHEN 'install' THEN
        PERFORM count(*) FROM tego.plugin_install(VARIADIC pick);
    WHEN 'uninstall' THEN
        PERFORM count(*) FROM tego.plugin_uninstall(VARIADIC pick);
    WHEN 'enable' THEN
        PERFORM count(*) FROM tego.plugin_enable(VARIADIC pick);
    WHEN 'disable' THEN
        PERFORM count(*) FROM tego.plugin_disable(VARIADIC pick);
    WHEN 'remove' THEN
        PERFORM count(*) FROM tego.plugin_remove(pick, random() < 0.3);
    WHEN 'add' THEN
        -- a removed name again (or, when none is missing, a duplicate)
        SELECT x INTO nm FROM unnest(soak_names()) x
         WHERE NOT EXISTS (SELECT 1 FROM tego.plugins p WHERE p.name = x)
         ORDER BY random() LIMIT 1;
        nm := coalesce(nm, pick[1]);
        PERFORM count(*) FROM tego.plugin_add(
            nm,
            package_name => CASE WHEN random() < 0.5 THEN '@soak/' || nm END,
            version => '1.' || floor(random() * 10) || '.0',
            options => jsonb_build_object('n', floor(random() * 100)),
            built_in => random() < 0.1,
            sub_view => random() < 0.5,
            depends_on => (SELECT coalesce(array_agg(x), '{}')
                             FROM unnest(deps) x WHERE x <> nm));
    WHEN 'upgrade' THEN
        PERFORM count(*) FROM tego.plugin_upgrade(nm, '2.' || floor(random() * 4) || '.0');
    WHEN 'update' THEN
        SELECT p.revision INTO rev FROM tego.plugins p WHERE p.name = nm;
        PERFORM count(*) FROM tego.plugin_update(
            nm,
            CASE floor(random() * 6)::int
            WHEN 0 THEN jsonb_build_object('options',
                            jsonb_build_object('k', floor(random() * 5)))
            WHEN 1 THEN jsonb_build_object('depends_on', to_jsonb(deps))
            WHEN 2 THEN jsonb_build_object('version', '3.' || floor(random() * 4) || '.0')
            WHEN 3 THEN jsonb_build_object('sub_view', random() < 0.5,
                                           'built_in', random() < 0.15)
            WHEN 4 THEN jsonb_build_object('package_name',
                            CASE WHEN random() < 0.5 THEN '@soak/' || nm END)
            ELSE jsonb_build_object('depends_on', '[]'::jsonb,
                                    'options', '{}'::jsonb)
            END,
            CASE WHEN random() < 0.3 THEN rev
                 WHEN random() < 0.1 THEN rev - 1 END);
    END CASE;
END
$$;

CREATE FUNCTION soak_step() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ops  text[] := ARRAY['install', 'install', 'uninstall', 'enable', 'enable',
                         'enable', 'disable', 'disable', 'remove', 'add', 'add',
                         'upgrade', 'update', 'update'];
    op   text := ops[1 + floor(random() * array_length(ops, 1))::int];
    op2  text := ops[1 + floor(random() * array_length(ops, 1))::int];
    mode int := floor(random() * 10)::int;   -- 0: roll back, 1: two calls
    st   text;
    msg  text;
BEGIN
    BEGIN
        PERFORM soak_call(op);
        IF mode = 1 THEN
            op := op || '+' || op2;
            PERFORM soak_call(op2);
        END IF;
        IF mode = 0 THEN
            RAISE EXCEPTION 'soak rollback probe' USING ERRCODE = 'SK001';
        END IF;
    EXCEPTION WHEN others THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        INSERT INTO soak_log (op, outcome, sqlstate, message)
        VALUES (op, CASE WHEN st = 'SK001' THEN 'rolled_back' ELSE 'refused' END,
                st, msg);
        RETURN;
    END;
    INSERT INTO soak_log (op, outcome) VALUES (op, 'ok');
END
$$;
});

my $seq0 = $node->safe_psql($db, 'SELECT tego.event_seq()');

# load the registry mirror now: from here on, commits keep it
is($node->safe_psql($db, q{SET tego.registry_source = memory;
	SELECT count(*) > 0 FROM tego.plugin_list()}), 't', 'the registry mirror is loaded');

# --- the soak --------------------------------------------------------------------
my $t0 = time;
$node->pgbench(
	"-n -c $clients -j 2 -t $per_client -d $db",
	0,
	[qr/number of transactions actually processed: $calls\/$calls/],
	[],
	"soak: $clients sessions, $calls random lifecycle calls",
	{ '002_soak_step.sql' => "SELECT soak_step();\n" });
note('soak took ' . (time - $t0) . ' s');

# --- what the soak did ------------------------------------------------------------
is($node->safe_psql($db, 'SELECT count(*) FROM soak_log'), $calls, "all $calls steps logged");
my ($ok, $refused, $rolled) = split /\|/, $node->safe_psql(
	$db, q{
SELECT count(*) FILTER (WHERE outcome = 'ok'),
       count(*) FILTER (WHERE outcome = 'refused'),
       count(*) FILTER (WHERE outcome = 'rolled_back')
  FROM soak_log});
note("steps: $ok ok, $refused refused, $rolled rolled back");
cmp_ok($ok, '>=', 300, 'many steps succeeded');
cmp_ok($refused, '>=', 100, 'many steps were refused');
cmp_ok($rolled, '>=', 50, 'many steps were rolled back after they succeeded');

# refusals carry the documented SQLSTATEs (and deadlocks, which concurrent
# graph changes may cause); anything else, such as an internal error or a
# unique violation on tego.events, is a bug
is( $node->safe_psql(
		$db, q{
SELECT coalesce(string_agg(DISTINCT sqlstate || ': ' || message, E'\n'), '')
  FROM soak_log
 WHERE outcome = 'refused'
   AND sqlstate NOT IN ('42704', '55000', '22023', '23505', '40001', '40P01')}),
	'',
	'refused calls failed only with the documented SQLSTATEs');

my $events = $node->safe_psql($db, "SELECT count(*) FROM tego.events WHERE seq > $seq0");
note("events during the soak: $events");
cmp_ok($events, '>=', 300, 'the soak produced at least 300 events');
is( $node->safe_psql(
		$db, q{
SELECT string_agg(a, ',' ORDER BY a) FROM (
  SELECT DISTINCT payload->>'action' AS a FROM tego.events
   WHERE topic = 'tego_plugins') s}),
	'add,disable,enable,install,remove,uninstall,update,upgrade',
	'every lifecycle action happened');
is( $node->safe_psql(
		$db, q{SELECT count(*) FROM tego.events WHERE topic <> 'tego_plugins'}),
	0, 'only plugin events');

# --- (b) seq is gapless and in commit order ----------------------------------------
is( $node->safe_psql(
		$db, q{
SELECT count(*) = max(seq) AND min(seq) = 1 AND max(seq) = tego.event_seq()
  FROM tego.events}),
	't',
	'seq is 1..max without gaps and event_seq() is max(seq)');
is( $node->safe_psql(
		$db, q{
SELECT count(*) FROM (
  SELECT committed_at < lag(committed_at) OVER (ORDER BY seq) AS back
    FROM tego.events) s WHERE back}),
	0,
	'committed_at never goes backwards along seq');

# --- (a) replaying the events reproduces the registry -------------------------------
$node->safe_psql(
	$db, q{
CREATE TABLE replay (
    id           bigint PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    package_name text UNIQUE,
    version      text,
    enabled      boolean NOT NULL,
    installed    boolean NOT NULL,
    built_in     boolean NOT NULL,
    sub_view     boolean NOT NULL,
    options      jsonb NOT NULL,
    depends_on   text[] NOT NULL,
    revision     bigint,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE TABLE replay_problems (seq bigint, problem text);

DO $$
DECLARE
    e     record;
    p     jsonb;
    r     replay;
    prev  replay;
    found_prev boolean;
    prev_state text;
    act   text;
BEGIN
    FOR e IN SELECT * FROM tego.events ORDER BY seq LOOP
        p := e.payload;
        act := p->>'action';
        r := ROW((p->>'id')::bigint, p->>'name', p->>'package_name',
                 p->>'version', (p->>'enabled')::boolean,
                 (p->>'installed')::boolean, (p->>'built_in')::boolean,
                 (p->>'sub_view')::boolean, p->'options',
                 ARRAY(SELECT jsonb_array_elements_text(p->'depends_on')),
                 e.seq, (p->>'created_at')::timestamptz,
                 (p->>'updated_at')::timestamptz);

        SELECT * INTO prev FROM replay WHERE id = r.id;
        found_prev := FOUND;
        prev_state := CASE WHEN NOT found_prev THEN NULL
                           WHEN prev.enabled THEN 'enabled'
                           WHEN prev.installed THEN 'installed'
                           ELSE 'added' END;

        IF e.event <> 'plugin-state-changed' THEN
            INSERT INTO replay_problems VALUES (e.seq, 'event ' || e.event);
        END IF;
        IF e.key IS DISTINCT FROM r.name THEN
            INSERT INTO replay_problems VALUES (e.seq, 'key is not the name');
        END IF;
        IF (p->>'from') IS DISTINCT FROM prev_state THEN
            INSERT INTO replay_problems
            VALUES (e.seq, format('%s: from %s, replayed state %s',
                                  act, p->>'from', prev_state));
        END IF;

        IF act = 'remove' THEN
            IF NOT (p ? 'to') OR jsonb_typeof(p->'to') <> 'null' THEN
                INSERT INTO replay_problems VALUES (e.seq, 'remove: "to" is not null');
            END IF;
            IF p ? 'revision' THEN
                INSERT INTO replay_problems VALUES (e.seq, 'remove: has a revision');
            END IF;
            -- the payload is the row before deletion: the replayed row
            IF found_prev AND
               (r.name, r.package_name, r.version, r.enabled, r.installed,
                r.built_in, r.sub_view, r.options, r.depends_on,
                r.created_at, r.updated_at)
               IS DISTINCT FROM
               (prev.name, prev.package_name, prev.version, prev.enabled,
                prev.installed, prev.built_in, prev.sub_view, prev.options,
                prev.depends_on, prev.created_at, prev.updated_at) THEN
                INSERT INTO replay_problems
                VALUES (e.seq, 'remove: payload is not the replayed row');
            END IF;
            DELETE FROM replay WHERE id = r.id;
        ELSE
            IF act NOT IN ('add', 'install', 'uninstall', 'enable', 'disable',
                           'upgrade', 'update') THEN
                INSERT INTO replay_problems VALUES (e.seq, 'unknown action ' || act);
            END IF;
            -- installed changes only through install and uninstall, and
            -- enabled only through enable and disable; a new plugin is
            -- neither
            IF act = 'add' AND (r.enabled OR r.installed) THEN
                INSERT INTO replay_problems VALUES (e.seq, 'add: enabled or installed');
            END IF;
            IF found_prev AND
               (r.installed IS DISTINCT FROM prev.installed) <>
               (act IN ('install', 'uninstall')) THEN
                INSERT INTO replay_problems
                VALUES (e.seq, act || ': installed changed or did not');
            END IF;
            IF found_prev AND act IN ('install', 'uninstall') AND
               r.installed <> (act = 'install') THEN
                INSERT INTO replay_problems VALUES (e.seq, act || ': wrong installed');
            END IF;
            IF found_prev AND
               (r.enabled IS DISTINCT FROM prev.enabled) <>
               (act IN ('enable', 'disable')) THEN
                INSERT INTO replay_problems
                VALUES (e.seq, act || ': enabled changed or did not');
            END IF;
            IF (act = 'add') = found_prev THEN
                INSERT INTO replay_problems VALUES (e.seq, act || ': row existence');
            END IF;
            IF (p->>'revision')::bigint IS DISTINCT FROM e.seq THEN
                INSERT INTO replay_problems VALUES (e.seq, 'revision is not seq');
            END IF;
            IF (p->>'to') IS DISTINCT FROM
               (CASE WHEN r.enabled THEN 'enabled'
                     WHEN r.installed THEN 'installed'
                     ELSE 'added' END) THEN
                INSERT INTO replay_problems VALUES (e.seq, act || ': "to" is not the row state');
            END IF;
            IF act = 'update' AND found_prev AND
               (r.package_name, r.version, r.options, r.depends_on, r.sub_view, r.built_in)
               IS NOT DISTINCT FROM
               (prev.package_name, prev.version, prev.options, prev.depends_on,
                prev.sub_view, prev.built_in) THEN
                INSERT INTO replay_problems VALUES (e.seq, 'update: changed nothing');
            END IF;
            INSERT INTO replay VALUES (r.*)
            ON CONFLICT (id) DO UPDATE SET
                name = EXCLUDED.name, package_name = EXCLUDED.package_name,
                version = EXCLUDED.version, enabled = EXCLUDED.enabled,
                installed = EXCLUDED.installed, built_in = EXCLUDED.built_in,
                sub_view = EXCLUDED.sub_view, options = EXCLUDED.options,
                depends_on = EXCLUDED.depends_on, revision = EXCLUDED.revision,
                created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at;
        END IF;
    END LOOP;
END
$$;
});

is( $node->safe_psql(
		$db, q{
SELECT coalesce(string_agg(seq || ': ' || problem, E'\n' ORDER BY seq), '')
  FROM (SELECT * FROM replay_problems ORDER BY seq LIMIT 20) s}),
	'',
	'every event is consistent with the replayed state before it');

my $cols = 'id, name, package_name, version, enabled, installed, built_in, '
  . 'sub_view, options, depends_on, revision, created_at, updated_at';
is( $node->safe_psql(
		$db, qq{
SELECT count(*) FROM (SELECT $cols FROM tego.plugins
                      EXCEPT SELECT $cols FROM replay) d}),
	0,
	'every row of tego.plugins is reproduced by the replay');
is( $node->safe_psql(
		$db, qq{
SELECT count(*) FROM (SELECT $cols FROM replay
                      EXCEPT SELECT $cols FROM tego.plugins) d}),
	0,
	'the replay has no row that tego.plugins lacks');
is( $node->safe_psql(
		$db, q{SELECT (SELECT count(*) FROM replay) = (SELECT count(*) FROM tego.plugins)}),
	't',
	'replay and tego.plugins have the same number of rows');
is( $node->safe_psql(
		$db, q{
SELECT count(*) FROM tego.plugins p
 WHERE p.revision IS NULL
    OR p.revision <> (SELECT max(e.seq) FROM tego.events e
                       WHERE e.key = p.name AND e.payload->>'id' = p.id::text)}),
	0,
	'revision is the seq of the last event of each row');

# --- (c) the dependency rules hold ----------------------------------------------------
is( $node->safe_psql(
		$db, q{
SELECT coalesce(string_agg(p.name || ' -> ' || d, ', '), '')
  FROM tego.plugins p, unnest(p.depends_on) d
 WHERE p.enabled
   AND NOT EXISTS (SELECT 1 FROM tego.plugins q WHERE q.name = d AND q.enabled)}),
	'',
	'no enabled plugin needs a missing or disabled plugin');
# installed is independent of enabled (the application's install() has
# run): the replay above checks that only install and uninstall change it
is( $node->safe_psql(
		$db, q{
WITH l AS (SELECT name, depends_on, ordinality AS pos
             FROM tego.plugin_list() WITH ORDINALITY)
SELECT coalesce(string_agg(l.name || ' before ' || d.name, ', '), '')
  FROM l JOIN l d ON d.name = ANY (l.depends_on)
 WHERE d.pos > l.pos}),
	'',
	'plugin_list() lists dependencies first');
is( $node->safe_psql(
		$db, q{
SELECT (SELECT count(*) FROM tego.plugin_list()) = (SELECT count(*) FROM tego.plugins)
   AND (SELECT count(*) FROM tego.plugin_list(true)) =
       (SELECT count(*) FROM tego.plugins WHERE enabled)}),
	't',
	'plugin_list() returns every plugin, plugin_list(true) the enabled ones');

# --- (d) the registry mirror ------------------------------------------------------------
# mirror_vs_table(): rows listed from memory that differ from the table's,
# position by position ('' when none), and the list's length
my $mirror_vs_table = q{
SET tego.registry_source = memory;
CREATE TEMP TABLE m AS SELECT ordinality AS pos, p::text AS row
  FROM tego.plugin_list() WITH ORDINALITY p;
CREATE TEMP TABLE g AS SELECT p.name, (SELECT x::text FROM tego.plugin_get(p.name) x) AS row
  FROM tego.plugins p;
RESET tego.registry_source;
CREATE TEMP TABLE t AS SELECT ordinality AS pos, p::text AS row
  FROM tego.plugin_list() WITH ORDINALITY p;
SELECT (SELECT count(*) FROM m) || ':' ||
       coalesce((SELECT string_agg(coalesce(m.pos, t.pos)::text, ',')
                   FROM m FULL JOIN t USING (pos) WHERE m.row IS DISTINCT FROM t.row), '') || ':' ||
       (SELECT count(*) FROM g JOIN tego.plugins p USING (name) WHERE g.row IS DISTINCT FROM p::text);
};
my $nplugins = $node->safe_psql($db, 'SELECT count(*) FROM tego.plugins');
is($node->safe_psql($db, $mirror_vs_table), "${nplugins}::0",
	'after the soak, the mirror lists the same rows in the same order, and plugin_get agrees');
my $epoch = $node->safe_psql($db, 'SELECT tego.registry_epoch()');
is($epoch,
	$node->safe_psql($db, q{SELECT max(seq) FROM tego.events WHERE topic = 'tego_plugins'}),
	'its epoch is the seq of the last registry change');

$node->stop('immediate');
$node->start;
is($node->safe_psql($db, $mirror_vs_table), "${nplugins}::0",
	'after an immediate shutdown the mirror is loaded again, the same');
cmp_ok($node->safe_psql($db, 'SELECT tego.registry_epoch()'), '>=', $epoch,
	'and its epoch has not gone back');

$node->stop;
done_testing();
