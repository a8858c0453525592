--
-- Plugin registry: lifecycle, dependency order, rules and events.
--
SET tego.client_id = 'regress';
SELECT tego.event_seq() AS start \gset

-- add: returns the new row; state is derived; revision is NULL until commit
SELECT name, package_name, version, state, enabled, installed, built_in,
       sub_view, options, depends_on, revision
  FROM tego.plugin_add('users', '@tachybase/plugin-users', '1.0.0');
SELECT name, state, depends_on
  FROM tego.plugin_add('acl', '@tachybase/plugin-acl', '1.0.0',
                       options => '{"strict": true}',
                       depends_on => ARRAY['users']);
SELECT name, state, built_in
  FROM tego.plugin_add('core', built_in => true, sub_view => false);
-- a dependency that does not exist yet is allowed at add time
SELECT name, depends_on FROM tego.plugin_add('audit', depends_on => '{acl,logger}');
SELECT revision - :start AS users_revision FROM tego.plugins WHERE name = 'users';

-- load order: dependencies first, then id
SELECT name, state FROM tego.plugin_list();
SELECT name FROM tego.plugin_add('logger');
SELECT name FROM tego.plugin_list();

-- enabling needs the dependencies enabled, or enabled in the same call
SELECT name FROM tego.plugin_enable('acl');
SELECT name, state FROM tego.plugin_enable('acl', 'users', 'core');
-- a no-op transition is not an error and returns nothing
SELECT name FROM tego.plugin_enable('acl');
SELECT name FROM tego.plugin_list(enabled_only => true);

-- install without enabling; users, enabled with its install pending, is
-- marked installed too
SELECT name, state FROM tego.plugin_install('logger');
SELECT name, state FROM tego.plugin_install('logger', 'users');

-- enabling leaves installed as it is (installed means the application's
-- install() has run): audit is enabled with its install pending, logger
-- stays installed
SELECT name, state, installed FROM tego.plugin_enable('audit', 'logger');

-- disabling what an enabled plugin needs is refused, listing the dependents
SELECT name FROM tego.plugin_disable('acl');
SELECT name FROM tego.plugin_disable('users');
-- built-in plugins cannot be disabled or removed
SELECT name FROM tego.plugin_disable('core');
SELECT name FROM tego.plugin_remove('{core}', force => true);
-- disabling dependents and dependencies together works, dependents first
SELECT name, state FROM tego.plugin_disable('users', 'acl', 'audit');
SELECT name FROM tego.plugin_disable('users');

-- get
SELECT name, state, options FROM tego.plugin_get('acl');
SELECT (tego.plugin_get('acl')).revision = revision AS same_revision
  FROM tego.plugins WHERE name = 'acl';

-- upgrade and update
SELECT name, version FROM tego.plugin_upgrade('acl', '1.1.0');
SELECT name FROM tego.plugin_upgrade('acl', '1.1.0');
SELECT name, version, options, sub_view
  FROM tego.plugin_update('acl', '{"options": {"strict": false}, "sub_view": false}');
SELECT name FROM tego.plugin_update('acl', '{"sub_view": false}');
SELECT revision AS acl_revision FROM tego.plugins WHERE name = 'acl' \gset
SELECT name, version FROM tego.plugin_update('acl', '{"version": "1.2.0"}', :acl_revision);
SELECT name FROM tego.plugin_update('acl', '{"version": "1.3.0"}', :acl_revision);
SELECT name, package_name FROM tego.plugin_update('acl', '{"package_name": null}');
SELECT name, depends_on FROM tego.plugin_update('audit', '{"depends_on": ["acl"]}');

-- updating the dependencies of an enabled plugin needs them enabled
SELECT name FROM tego.plugin_enable('logger', 'users');
SELECT name FROM tego.plugin_update('logger', '{"depends_on": ["acl"]}');
SELECT name, depends_on FROM tego.plugin_update('logger', '{"depends_on": ["users"]}');

-- remove: an enabled plugin only with force; not what an enabled plugin needs
SELECT name FROM tego.plugin_remove('{logger}');
SELECT name FROM tego.plugin_remove('{users}', force => true);
SELECT name, state FROM tego.plugin_remove('{logger}', force => true);
SELECT name, state FROM tego.plugin_remove('{audit,acl}');

-- every committed change is one event, in order; refused calls left none
SELECT seq - :start AS n, key, payload->>'action' AS action,
       payload->>'from' AS "from", payload->>'to' AS "to",
       (payload->>'revision')::bigint = seq AS revision_is_seq
  FROM tego.events
 WHERE seq > :start AND topic = 'tego_plugins'
 ORDER BY seq;

-- the revision of each row is the seq of its last event
SELECT p.name, p.revision = (SELECT max(e.seq) FROM tego.events e
                              WHERE e.topic = 'tego_plugins' AND e.key = p.name)
       AS revision_is_last_event
  FROM tego.plugins p ORDER BY p.id;

-- a transaction sees its own pending revision as NULL
BEGIN;
SELECT name, revision FROM tego.plugin_disable('users');
SELECT name, revision FROM tego.plugins WHERE name = 'users';
ROLLBACK;

-- batches are all-or-nothing: one unknown name and nothing is applied
SELECT tego.event_seq() AS before \gset
SELECT name FROM tego.plugin_disable('users', 'nosuch');
SELECT name, state FROM tego.plugins WHERE name = 'users';
SELECT tego.event_seq() - :before AS new_events;

-- installed: the application's install() has run.  A plugin is enabled
-- with its install pending, and the registry says so (its state is
-- 'enabled', installed is false); plugin_install marks it once the hook ran
SELECT tego.event_seq() AS before \gset
SELECT name FROM tego.plugin_add('crm');
SELECT name, state, enabled, installed FROM tego.plugin_enable('crm');
SELECT name, state, enabled, installed FROM tego.plugin_list() WHERE name = 'crm';
SELECT name, state, enabled, installed FROM tego.plugin_list(enabled_only => true)
 WHERE NOT installed;
SELECT name, state, enabled, installed FROM tego.plugin_install('crm');
SELECT name FROM tego.plugin_install('crm');
-- plugin_uninstall marks it not installed (its install() must run again);
-- enabled stays as it is
SELECT name, state, enabled, installed FROM tego.plugin_uninstall('crm');
SELECT name FROM tego.plugin_uninstall('crm');
-- TachyBase's write after an install() that failed, {enabled: false,
-- installed: false}: disable, then uninstall
SELECT name, state, installed FROM tego.plugin_install('crm');
SELECT name, state, installed FROM tego.plugin_disable('crm');
SELECT name, state, installed FROM tego.plugin_uninstall('crm');
-- a batch, dependents first; one unknown name and nothing changes
SELECT name FROM tego.plugin_add('crm-ext', depends_on => '{crm}');
SELECT name, state, installed FROM tego.plugin_enable('crm-ext', 'crm');
SELECT name, state, installed FROM tego.plugin_install('crm', 'crm-ext');
SELECT name FROM tego.plugin_uninstall('crm', 'crm-ext', 'nosuch');
SELECT name, installed FROM tego.plugins WHERE name LIKE 'crm%' ORDER BY id;
-- no rule ties installed to enabled: an enabled plugin that enabled plugins
-- depend on, and a built-in plugin, may be marked not installed
SELECT name, state, installed FROM tego.plugin_install('core');
SELECT name, state, installed FROM tego.plugin_uninstall('crm', 'crm-ext', 'core');
-- each change is one event: install and uninstall keep the state 'enabled'
-- of an enabled plugin, the payload's installed says what changed
SELECT key, payload->>'action' AS action, payload->>'from' AS "from",
       payload->>'to' AS "to", payload->>'enabled' AS enabled,
       payload->>'installed' AS installed
  FROM tego.events
 WHERE seq > :before AND topic = 'tego_plugins'
 ORDER BY seq;
SELECT count(*) FROM tego.plugin_remove('{crm,crm-ext}', force => true);

-- cleanup
SELECT name FROM tego.plugin_disable('users');
SELECT name FROM tego.plugin_remove('{users}');
SELECT count(*) AS left_over FROM tego.plugins WHERE NOT built_in;

-- DROP EXTENSION leaves nothing behind; CREATE EXTENSION starts afresh
DROP EXTENSION tego;
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'tego';
SELECT count(*) AS functions FROM pg_proc WHERE proname LIKE 'plugin\_%';
CREATE EXTENSION tego;
SELECT count(*) AS plugins FROM tego.plugins;
SELECT tego.event_seq();
-- the new event log is numbered from 1 again
SELECT tego.publish('orders', '{"id": 0}');
SELECT tego.event_seq() AS first_seq_of_new_log;
