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

-- many events in one transaction, across subtransactions: the events of
-- rolled-back subtransactions are absent, the others are stored in the
-- order they were queued, gapless, with one commit time
SELECT tego.event_seq() AS before_bulk \gset
BEGIN;
SELECT count(tego.publish('bulk', jsonb_build_object('i', i)))
  FROM generate_series(1, 1500) i;
SAVEPOINT a;
SELECT count(tego.publish('bulk', jsonb_build_object('i', -i)))
  FROM generate_series(1, 700) i;
ROLLBACK TO a;
SAVEPOINT b;
SELECT count(tego.publish('bulk', jsonb_build_object('i', i)))
  FROM generate_series(1501, 2500) i;
SAVEPOINT c;
SELECT tego.publish('bulk', '{"i": 2501}');
RELEASE c;
RELEASE b;
-- every other call fails in its own subtransaction (a PL/pgSQL block)
DO $$
BEGIN
  FOR n IN 2502..3000 LOOP
    BEGIN
      PERFORM tego.publish('bulk', jsonb_build_object('i', n));
      IF n % 2 = 0 THEN
        RAISE EXCEPTION 'rolled back';
      END IF;
    EXCEPTION WHEN raise_exception THEN
      NULL;
    END;
  END LOOP;
END $$;
COMMIT;
SELECT count(*) AS stored,
       min(seq) = :before_bulk + 1 AS follows,
       max(seq) - min(seq) + 1 = count(*) AS gapless,
       bool_and((payload->'message'->>'i')::int > 0) AS no_rolled_back_event,
       count(DISTINCT committed_at) AS commit_times,
       bool_and(topic = 'bulk' AND event = 'message') AS topic_and_event
  FROM tego.events WHERE seq > :before_bulk;
SELECT bool_and(i > prev) AS queue_order_kept,
       bool_and(i % 2 = 1 OR i <= 2501) AS odd_ones_after_2501
  FROM (SELECT (payload->'message'->>'i')::int AS i,
               lag((payload->'message'->>'i')::int, 1, 0) OVER (ORDER BY seq) AS prev
          FROM tego.events WHERE seq > :before_bulk) e;
SELECT tego.event_seq() = :before_bulk + 2750 AS event_seq_advanced;

-- message size cap: tego.max_publish_bytes (54000 above it), measured on
-- the message's jsonb form before it is read, compressed or not
SHOW tego.max_publish_bytes;
SET tego.max_publish_bytes = '1kB';
SELECT tego.publish('orders', jsonb_build_object('blob', repeat('x', 900))) AS fits;
SELECT tego.publish('orders', jsonb_build_object('blob', repeat('x', 2000)));
\set VERBOSITY sqlstate
SELECT tego.publish('orders', jsonb_build_object('blob', repeat('x', 2000)));
\set VERBOSITY default
CREATE TEMP TABLE big_message AS
  SELECT jsonb_build_object('blob', repeat('x', 100000)) AS m;
SELECT pg_column_size(m) < 10000 AS stored_compressed FROM big_message;
SET tego.max_publish_bytes = '64kB';
SELECT tego.publish('orders', m) FROM big_message;
RESET tego.max_publish_bytes;
SELECT count(tego.publish('orders', m)) AS accepted_by_default FROM big_message;
-- bounded, and a role that is not a superuser cannot lift it
SET tego.max_publish_bytes = 100;
SET tego.max_publish_bytes = '1100MB';
CREATE ROLE regress_tego_events_app;
SET ROLE regress_tego_events_app;
SET tego.max_publish_bytes = '2MB';
SHOW tego.max_publish_bytes;
RESET ROLE;
DROP ROLE regress_tego_events_app;
DROP TABLE big_message;

-- many plugins changed in one commit: each row is stamped with its event's
-- seq; stamps that do not fit their page as HOT get their index entries
SELECT tego.event_seq() AS before_many \gset
SELECT count(*) FROM generate_series(1, 300) g, LATERAL tego.plugin_add('many-' || g);
SET enable_seqscan = off;
SELECT count(*) AS stamped_and_found_by_name
  FROM generate_series(1, 300) g,
       LATERAL (SELECT * FROM tego.plugins WHERE name = 'many-' || g) p
 WHERE p.revision = (SELECT max(e.seq) FROM tego.events e
                      WHERE e.topic = 'tego_plugins' AND e.key = p.name
                        AND e.seq > :before_many);
RESET enable_seqscan;
-- a trigger on tego.plugins: the stamp is an UPDATE, which fires it
CREATE TABLE stamp_audit (name text, revision bigint);
CREATE FUNCTION stamp_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.stamp_audit VALUES (NEW.name, NEW.revision);
  RETURN NEW;
END $$;
CREATE TRIGGER stamp_audit AFTER UPDATE ON tego.plugins
  FOR EACH ROW EXECUTE FUNCTION stamp_audit();
SELECT name, state FROM tego.plugin_install('many-1');
SELECT a.revision = p.revision AS audited_stamp
  FROM stamp_audit a JOIN tego.plugins p USING (name)
 WHERE a.revision IS NOT NULL;
DROP TRIGGER stamp_audit ON tego.plugins;
DROP FUNCTION stamp_audit();
DROP TABLE stamp_audit;
SELECT count(*) FROM tego.plugin_remove(ARRAY(SELECT 'many-' || g FROM generate_series(1, 300) g));
-- a row whose options are stored out of line (TOAST) is stamped too (the
-- stamp reads the row whole, fetching the out-of-line value)
SELECT name FROM tego.plugin_add('toasted', options => jsonb_build_object('blob',
  (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g)));
SELECT pg_column_size(options) > 2000 AS stored_out_of_line FROM tego.plugins WHERE name = 'toasted';
SELECT name FROM tego.plugin_install('toasted');
SELECT revision = (SELECT max(seq) FROM tego.events WHERE key = 'toasted') AS stamped,
       length(options ->> 'blob') AS blob_length
  FROM tego.plugins WHERE name = 'toasted';
SELECT count(*) FROM tego.plugin_remove(ARRAY['toasted']);

-- a database whose collation orders names otherwise than "C" (ICU: "~"
-- and "_" before letters): every stamp finds its row through the index
\set regress_db :DBNAME
CREATE DATABASE regress_tego_icu LOCALE_PROVIDER icu ICU_LOCALE 'en-US'
  LOCALE 'C' ENCODING 'UTF8' TEMPLATE template0;
\c regress_tego_icu
CREATE EXTENSION tego;
SELECT count(*) FROM generate_series(1, 300) g,
  LATERAL tego.plugin_add(chr(97 + g % 26) || (ARRAY['~', '_', '-', '.', ''])[1 + g % 5]
                          || chr(97 + (g / 26) % 26) || g);
SELECT count(*) FILTER (WHERE revision IS NULL) AS unstamped, count(*) AS plugins
  FROM tego.plugins;
\c :regress_db
DROP DATABASE regress_tego_icu;

-- leave the log as the tests after this one expect it (one event)
TRUNCATE tego.events;
SELECT tego.publish('orders', '{"id": 8}');
SELECT tego.event_seq() AS last_seq;
