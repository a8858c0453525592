-- baseline: claim + finish on the bare table, in one transaction
BEGIN;
UPDATE bench_queue q
   SET status = 'running', worker = 'w' || :client_id,
       started_at = clock_timestamp(), heartbeat_at = clock_timestamp()
 WHERE q.run_id = (SELECT c.run_id FROM bench_queue c
                    WHERE c.status = 'pending'
                    ORDER BY c.scheduled_for, c.run_id
                    LIMIT 1
                      FOR UPDATE SKIP LOCKED)
RETURNING q.run_id AS rid \gset
UPDATE bench_queue SET status = 'succeeded', finished_at = clock_timestamp()
 WHERE run_id = :rid AND status = 'running' AND worker = 'w' || :client_id;
COMMIT;
