-- Sampled by bench.sh with \watch while pgbench runs: what the pgbench
-- backends are doing (CPU = active, not waiting).
SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity WHERE application_name = 'pgbench' AND state = 'active' AND pid <> pg_backend_pid() \watch 0.05
