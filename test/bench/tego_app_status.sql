-- pgbench script: each client sets the status of its own app
SELECT tego.app_status_set('bench-app-' || :client_id, 'running', 'serving');
