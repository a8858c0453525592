--
-- Bad input: every error with its SQLSTATE, message, detail and hint, and
-- proof that nothing changed.
--
SET tego.client_id = 'regress-errors';
\pset format unaligned
\pset tuples_only on

CREATE FUNCTION pg_temp.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg
        || coalesce(E'\n    DETAIL: ' || nullif(det, ''), '')
        || coalesce(E'\n    HINT: ' || nullif(hnt, ''), '');
END
$$;

-- fingerprint of everything the registry and the log hold
CREATE FUNCTION pg_temp.fingerprint() RETURNS text
LANGUAGE sql AS $$
    SELECT md5(coalesce(string_agg(p::text, ',' ORDER BY p.id), ''))
           || '/' || tego.event_seq()
      FROM tego.plugins p
$$;

SELECT name FROM tego.plugin_add('base');
SELECT name FROM tego.plugin_add('mid', depends_on => '{base}');
SELECT name FROM tego.plugin_add('top', depends_on => '{mid}');
SELECT name FROM tego.plugin_add('pkg', package_name => '@scope/pkg');
SELECT name FROM tego.plugin_add('builtin', built_in => true);
SELECT name FROM tego.plugin_enable('base', 'mid', 'builtin');
SELECT name FROM tego.plugin_install('base', 'mid', 'builtin');
SELECT pg_temp.fingerprint() AS before \gset

-- names
SELECT pg_temp.try($$SELECT tego.plugin_add('')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add(repeat('a', 215))$$);
SELECT pg_temp.try($$SELECT tego.plugin_add(repeat('a', 214))$$) = 'ok' AS max_length_ok;
SELECT name FROM tego.plugin_remove(ARRAY[repeat('a', 214)]);
SELECT pg_temp.fingerprint() AS before \gset
SELECT pg_temp.try($$SELECT tego.plugin_add(' padded')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('has space')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('Upper')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('.hidden')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('_private')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('@scope')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('@/x')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', package_name => '@Scope/x')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', package_name => '')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', version => '')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', version => repeat('1', 257))$$);

-- NULL arguments
SELECT pg_temp.try($$SELECT tego.plugin_add(NULL)$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', options => NULL)$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', built_in => NULL)$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', sub_view => NULL)$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', depends_on => NULL)$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', depends_on => ARRAY[NULL::text])$$);
SELECT pg_temp.try($$SELECT tego.plugin_enable(VARIADIC NULL::text[])$$);
SELECT pg_temp.try($$SELECT tego.plugin_enable(NULL)$$);
SELECT pg_temp.try($$SELECT tego.plugin_enable(VARIADIC '{}'::text[])$$);
SELECT pg_temp.try($$SELECT tego.plugin_uninstall(VARIADIC NULL::text[])$$);
SELECT pg_temp.try($$SELECT tego.plugin_uninstall(NULL)$$);
SELECT pg_temp.try($$SELECT tego.plugin_uninstall(VARIADIC '{}'::text[])$$);
SELECT pg_temp.try($$SELECT tego.plugin_remove('{base}', NULL)$$);
SELECT pg_temp.try($$SELECT tego.plugin_upgrade(NULL, '1')$$);
SELECT pg_temp.try($$SELECT tego.plugin_upgrade('base', NULL)$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', NULL)$$);
SELECT pg_temp.try($$SELECT tego.plugin_get(NULL)$$);
SELECT pg_temp.try($$SELECT tego.plugin_list(NULL)$$);
SELECT pg_temp.try($$SELECT tego.publish(NULL, '{}')$$);
SELECT pg_temp.try($$SELECT tego.publish('t', NULL)$$);
SELECT pg_temp.try($$SELECT tego.events_since(NULL)$$);

-- options must be a JSON object
SELECT pg_temp.try($$SELECT tego.plugin_add('x', options => '[]')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', options => '"text"')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', options => 'null')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', options => '42')$$);

-- duplicates
SELECT pg_temp.try($$SELECT tego.plugin_add('base')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', package_name => '@scope/pkg')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '{"package_name": "@scope/pkg"}')$$);

-- dependencies: itself, twice, cycles
SELECT pg_temp.try($$SELECT tego.plugin_add('x', depends_on => '{x}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', depends_on => '{base,base}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', depends_on => '{Bad}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '{"depends_on": ["top"]}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('mid', '{"depends_on": ["mid"]}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_add('x', depends_on => '{{base},{mid}}')$$);

-- unknown plugins; a batch with one bad name applies nothing
SELECT pg_temp.try($$SELECT tego.plugin_get('nosuch')$$);
SELECT pg_temp.try($$SELECT tego.plugin_enable('top', 'nosuch')$$);
SELECT pg_temp.try($$SELECT tego.plugin_enable('top', 'Bad Name')$$);
SELECT pg_temp.try($$SELECT tego.plugin_disable('mid', 'nosuch')$$);
SELECT pg_temp.try($$SELECT tego.plugin_uninstall('base', 'nosuch')$$);
SELECT pg_temp.try($$SELECT tego.plugin_uninstall('base', 'Bad Name')$$);
SELECT pg_temp.try($$SELECT tego.plugin_remove('{pkg,nosuch}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_upgrade('nosuch', '1')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('nosuch', '{}')$$);
SELECT pg_temp.fingerprint() = :'before' AS unchanged;

-- invalid transitions
SELECT pg_temp.try($$SELECT tego.plugin_add('needs-missing', depends_on => '{missing}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_enable('needs-missing')$$);
SELECT name FROM tego.plugin_remove('{needs-missing}');
SELECT pg_temp.fingerprint() AS before \gset
SELECT pg_temp.try($$SELECT tego.plugin_disable('base')$$);
SELECT pg_temp.try($$SELECT tego.plugin_disable('builtin')$$);
SELECT pg_temp.try($$SELECT tego.plugin_remove('{builtin}', true)$$);
SELECT pg_temp.try($$SELECT tego.plugin_remove('{mid}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_remove('{base}', true)$$);
SELECT pg_temp.try($$SELECT tego.plugin_enable('pkg', 'top', 'needs-missing')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('mid', '{"depends_on": ["base", "pkg"]}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('mid', '{"depends_on": ["base", "ghost"]}')$$);
SELECT pg_temp.fingerprint() = :'before' AS unchanged;

-- plugin_update: shapes and fields
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '[]')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '{"enabled": false}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '{"installed": false}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '{"name": "other"}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '{"colour": "red"}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '{"options": []}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '{"sub_view": "yes"}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '{"version": 2}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '{"depends_on": "mid"}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '{"depends_on": [1]}')$$);
SELECT pg_temp.try($$SELECT tego.plugin_update('base', '{"version": "2"}', 999999)$$);

-- topics and events_since arguments
SELECT pg_temp.try($$SELECT tego.publish('', '{}')$$);
SELECT pg_temp.try($$SELECT tego.publish(repeat('t', 64), '{}')$$);
SELECT pg_temp.fingerprint() = :'before' AS unchanged;
SELECT pg_temp.try($$SELECT tego.publish(repeat('t', 63), '{}')$$) = 'ok' AS topic_63_ok;
SELECT pg_temp.fingerprint() AS before \gset
SELECT pg_temp.try($$SELECT tego.publish('tego_plugins', '{}')$$);
SELECT pg_temp.try($$SELECT set_config('tego.client_id', repeat('c', 201), false)$$);
SELECT pg_temp.try($$SELECT set_config('tego.client_id', E'tab\there', false)$$);
SHOW tego.client_id;
SELECT pg_temp.try($$SELECT tego.events_since(-1)$$);
SELECT pg_temp.try($$SELECT tego.events_since(0, NULL, 0)$$);
SELECT pg_temp.try($$SELECT tego.events_since(0, NULL, 100001)$$);
SELECT pg_temp.try($$SELECT tego.events_since(0, ARRAY[NULL::text])$$);

-- nothing above changed the registry or the log
SELECT pg_temp.fingerprint() = :'before' AS unchanged;

-- tego state cannot be changed in a prepared transaction
BEGIN;
SELECT tego.publish('orders', '{}');
PREPARE TRANSACTION 'tego_regress';
SELECT pg_temp.fingerprint() = :'before' AS unchanged;

ROLLBACK;

-- cleanup
SELECT name FROM tego.plugin_disable('mid', 'base');
SELECT name FROM tego.plugin_remove('{top,mid,base,pkg}');
