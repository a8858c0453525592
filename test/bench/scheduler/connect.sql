-- the cost of a new backend on this machine: pgbench -C (one connection per
-- transaction) running this, compared with the CPU a job worker costs
SELECT 1;
