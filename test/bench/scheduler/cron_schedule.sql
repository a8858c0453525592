-- baseline: cron.schedule() of one idle job (pg_cron 1.4, same schedule)
SELECT cron.schedule('idle_' || nextval('bench_names'),
                     :minute || ' ' || :hour || ' * * *', 'SELECT 1');
