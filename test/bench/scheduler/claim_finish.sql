-- tego: claim one pending run and finish it, in one transaction
BEGIN;
SELECT run_id AS rid FROM tego.job_claim('w' || :client_id) \gset
SELECT status FROM tego.job_finish(:rid, 'w' || :client_id, true);
COMMIT;
