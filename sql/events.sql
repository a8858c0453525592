--
-- Events: publish, ordering, replay with events_since, retention.
--
SET tego.client_id = 'regress-events';
SELECT tego.event_seq() AS start \gset

-- a message is stored only if its transaction commits
BEGIN;
SELECT tego.publish('orders', '{"id": 1}');
ROLLBACK;
SELECT tego.event_seq() - :start AS after_rollback;

BEGIN;
SELECT tego.publish('orders', '{"id": 2}');
SAVEPOINT s1;
SELECT tego.publish('orders', '{"id": 3}');
ROLLBACK TO s1;
SAVEPOINT s2;
SELECT tego.publish('orders', '{"id": 4}');
RELEASE s2;
SELECT tego.publish('invoices', '[1, 2, 3]');
-- nothing is numbered before commit
SELECT tego.event_seq() - :start AS before_commit;
COMMIT;

SELECT seq - :start AS n, topic, event, key, payload
  FROM tego.events_since(:start);

-- topics filter and page size
SELECT seq - :start AS n, topic FROM tego.events_since(:start, ARRAY['invoices']);
SELECT seq - :start AS n FROM tego.events_since(:start, max_events => 1);
SELECT count(*) FROM tego.events_since(tego.event_seq());

-- events committed in one transaction share committed_at and stay in order
SELECT count(DISTINCT committed_at) AS commit_times
  FROM tego.events WHERE seq > :start;

-- the default publisher is application_name and the process id
RESET tego.client_id;
SELECT tego.publish('orders', '{"id": 5}');
SELECT key = current_setting('application_name') || ':' || pg_backend_pid() AS default_publisher,
       payload->>'publisher' = key AS payload_has_publisher
  FROM tego.events WHERE seq = tego.event_seq();
SET tego.client_id = 'regress-events';

-- a large message is stored whole
SELECT tego.publish('blobs', jsonb_build_object('blob', repeat('x', 1000000)));
SELECT topic, length(payload->'message'->>'blob') AS stored_bytes
  FROM tego.events WHERE seq = tego.event_seq();

-- seq has no gap
SELECT count(*) = max(seq) - min(seq) + 1 AS gapless FROM tego.events;

-- retention: compaction keeps recent events and always the newest one
SELECT tego.event_seq() AS last \gset
UPDATE tego.events SET committed_at = committed_at - interval '30 days'
 WHERE seq <= :last - 2;
SET tego.event_retention = '7d';
SELECT tego.compact_events() > 0 AS compacted;
SELECT min(seq) = :last - 1 AS oldest_kept FROM tego.events;
-- resuming from a compacted position fails with SQLSTATE TG001
\set SHOW_CONTEXT never
SELECT * FROM tego.events_since(:start);
\set VERBOSITY sqlstate
SELECT * FROM tego.events_since(:start);
\set VERBOSITY default
-- resuming right before the oldest retained event works
SELECT count(*) FROM tego.events_since(:last - 2);
-- even when everything is old, the newest event stays
UPDATE tego.events SET committed_at = committed_at - interval '30 days';
SELECT tego.compact_events() AS deleted;
SELECT count(*) AS kept, max(seq) = :last AS newest_kept FROM tego.events;
SET tego.event_retention = 0;
SELECT tego.compact_events() AS deleted_with_retention_off;
-- numbering continues after compaction
SELECT tego.publish('orders', '{"id": 6}');
SELECT tego.event_seq() = :last + 1 AS continues;
RESET tego.event_retention;
-- an event log emptied by its owner (TRUNCATE) is numbered from 1 again
TRUNCATE tego.events;
SELECT tego.publish('orders', '{"id": 8}');
SELECT tego.event_seq() AS after_truncate;

-- publish is refused where NOTIFY is: in a read-only transaction (and so on
-- a standby)
BEGIN READ ONLY;
SELECT tego.publish('orders', '{"id": 1}');
ROLLBACK;
