-- pgbench script, baseline of tego_lease.sql: the same two renewals as
-- plain UPDATEs of a table of leases (name, holder, token, expires_at),
-- checking holder, token and expiry the way the functions do.
UPDATE bench_leases SET renewed_at = clock_timestamp(),
       expires_at = clock_timestamp() + interval '30 seconds'
 WHERE name = 'lease-' || :client_id AND holder = 'holder-' || :client_id
   AND expires_at > clock_timestamp();
UPDATE bench_leases SET renewed_at = clock_timestamp(),
       expires_at = clock_timestamp() + interval '30 seconds'
 WHERE name = 'lease-' || :client_id AND holder = 'holder-' || :client_id
   AND token = 1 AND expires_at > clock_timestamp();
