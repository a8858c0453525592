-- tego: claim one pending app-job run (pgbench -c 4; :client_id is 0..3)
SELECT run_id FROM tego.job_claim('w' || :client_id);
