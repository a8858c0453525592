-- baseline: the same claim on a bare table (bench_queue, same rows and
-- indexes as tego.job_runs), no function, no role check
UPDATE bench_queue q
   SET status = 'running', worker = 'w' || :client_id,
       started_at = clock_timestamp(), heartbeat_at = clock_timestamp()
 WHERE q.run_id = (SELECT c.run_id FROM bench_queue c
                    WHERE c.status = 'pending'
                    ORDER BY c.scheduled_for, c.run_id
                    LIMIT 1
                      FOR UPDATE SKIP LOCKED)
RETURNING q.run_id;
