-- baseline: the same batch claim on the bare table
UPDATE bench_queue q
   SET status = 'running', worker = 'w' || :client_id,
       started_at = clock_timestamp(), heartbeat_at = clock_timestamp()
 WHERE q.run_id = ANY (ARRAY(SELECT c.run_id FROM bench_queue c
                              WHERE c.status = 'pending'
                              ORDER BY c.scheduled_for, c.run_id
                              LIMIT :batch
                                FOR UPDATE SKIP LOCKED));
