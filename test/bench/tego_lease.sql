-- pgbench script: each client renews its own lease ('lease-' || client_id,
-- acquired before the run, token 1), once by lease_acquire (the holder
-- acquiring again) and once by lease_renew; one commit each.
SELECT acquired FROM tego.lease_acquire('lease-' || :client_id, 'holder-' || :client_id, '30 seconds');
SELECT tego.lease_renew('lease-' || :client_id, 'holder-' || :client_id, 1, '30 seconds');
