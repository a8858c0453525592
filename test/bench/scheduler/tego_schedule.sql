-- tego.schedule() of one idle SQL job (pgbench -c 1 -t N; :minute and :hour
-- are a daily time about 12 hours away, so none of the jobs fires)
SELECT job_id FROM tego.schedule('idle_' || nextval('bench_names'),
                                 :minute || ' ' || :hour || ' * * *',
                                 'SELECT 1', username => 'bench_job');
