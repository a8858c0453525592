-- tego: claim up to :batch pending app-job runs in one call (pgbench -c 4;
-- :client_id is 0..3)
SELECT count(*) FROM tego.job_claim('w' || :client_id, max_runs => :batch);
