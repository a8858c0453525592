-- pgbench script: two lifecycle transitions of this client's own plugin,
-- one transaction (one commit, one event, one NOTIFY) each.
SELECT tego.plugin_enable('bench-' || :client_id);
SELECT tego.plugin_disable('bench-' || :client_id);
