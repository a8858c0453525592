-- pgbench script: one after-commit sync message per transaction
-- (@MESSAGE@ is filled in by bench.sh).
SELECT tego.publish('bench', '@MESSAGE@');
