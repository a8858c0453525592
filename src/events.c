/*-------------------------------------------------------------------------
 *
 * events.c
 *	  Ordered, durable state events.
 *
 *	  Functions that change state queue events in backend memory for the
 *	  current (sub)transaction.  At commit, a pre-commit callback numbers
 *	  them, writes them to tego.events and sends one NOTIFY per event on the
 *	  channel named by its topic.  An aborted (sub)transaction drops its
 *	  events, so nothing is numbered, stored or sent for work that did not
 *	  commit.
 *
 *	  Ordering: before numbering, the callback takes the database's event
 *	  lock (tego_events_lock) and holds it until the transaction has ended.
 *	  Every tego commit in a database therefore reads the highest committed
 *	  seq, appends after it and becomes visible before the next one can
 *	  number anything: seq is gapless and follows commit order.  Such a
 *	  commit then takes the NOTIFY lock in PreCommit_Notify, after the event
 *	  lock, so the NOTIFY queue gets the events in the same order.  The
 *	  event lock is per database: storing a large batch of events delays
 *	  the tego commits of its own database only, while the cluster-wide
 *	  NOTIFY lock is held for what PostgreSQL's NOTIFY itself needs (the
 *	  queue entries and the commit record).
 *
 *	  A transaction's events are stored in one batch: the rows' values and
 *	  the NOTIFY texts are prepared before the lock is taken, and the rows
 *	  are inserted with the table AM's multi-insert and one index entry per
 *	  index, as COPY does (tego.events has no triggers; its constraints are
 *	  checked).
 *
 *	  The highest committed seq comes from shared memory when tego is
 *	  preloaded (TegoSeqCache: written after commit, still under the event
 *	  lock), and from the table otherwise or after a restart.  NB: tego.events is
 *	  written by tego only; a row inserted by hand would make the next
 *	  numbering collide with it until the server restarts.
 *
 *	  Asynchronous commits (synchronous_commit = off) make their events
 *	  visible before the WAL is flushed, so a crash can lose events that a
 *	  reader has already seen; numbering again from the table would then
 *	  give their seqs to other events, which that reader would skip.  Such a
 *	  commit therefore numbers below a ceiling kept in the sequence
 *	  tego.event_seq_reserved, raised (and flushed) TEGO_SEQ_RESERVE seqs at
 *	  a time, and numbering after a restart continues past that ceiling: a
 *	  gap instead of a reuse.  Without the preload there is no shared memory
 *	  to keep the ceiling in, and such a commit is made synchronous.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "libpq/libpq.h"
#include "libpq/libpq-be.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/condition_variable.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "tego.h"
#include "scheduler.h"
#include "mirror.h"
#include "leader.h"

/* One state change waiting for its transaction to commit. */
typedef struct PendingEvent
{
	int			nestlevel;		/* subtransaction level that queued it */
	char	   *topic;
	char	   *event;
	char	   *key;			/* may be NULL */
	Jsonb	   *payload;
	char	   *revision_of;	/* plugin whose revision becomes the seq */
} PendingEvent;

/* Events of the current transaction, in TopTransactionContext. */
static List *pending_events = NIL;

static SPIPlanPtr plan_max_seq = NULL;
static SPIPlanPtr plan_reserved = NULL;
static SPIPlanPtr plan_reserve = NULL;
static SPIPlanPtr plan_stamp = NULL;
static SPIPlanPtr plan_plugin_row = NULL;

/*
 * How far ahead of the highest seq an asynchronous commit raises the
 * durable ceiling: one WAL flush per this many events, and at most this
 * large a gap after a restart.
 */
#define TEGO_SEQ_RESERVE	10000

/*
 * The seq cache entry to write when this transaction commits: set by
 * flush_events(), used by the commit callback (which runs while the NOTIFY
 * lock is still held), cleared at the end of every transaction.
 */
static bool seq_to_cache = false;
static TegoSeqCache seq_cached;
static SPIPlanPtr plan_compact = NULL;
static SPIPlanPtr plan_wait = NULL;

/* Longest tego.wait_events timeout. */
#define WAIT_EVENTS_MAX_TIMEOUT_MS	(3600 * 1000)

/*
 * How often tego.wait_events looks again when no commit can wake it: on a
 * standby (whose commits are replayed, not made) and without the preload.
 */
#define WAIT_EVENTS_POLL_MS			100

/* How often a waiter checks that its client is still connected. */
#define WAIT_EVENTS_CHECK_MS		1000

PG_FUNCTION_INFO_V1(publish);
PG_FUNCTION_INFO_V1(compact_events);
PG_FUNCTION_INFO_V1(wait_events);

static void events_xact_callback(XactEvent event, void *arg);
static void events_subxact_callback(SubXactEvent event,
									SubTransactionId mySubid,
									SubTransactionId parentSubid, void *arg);
static void flush_events(List *events);
static void seq_cache_store(const TegoSeqCache *entry);

/* Install the transaction callbacks (called once per backend). */
void
tego_events_init(void)
{
	RegisterXactCallback(events_xact_callback, NULL);
	RegisterSubXactCallback(events_subxact_callback, NULL);
}

/*
 * Queue an event for the current transaction.  revision_of, when not NULL,
 * names the plugin whose revision column receives the event's seq.
 */
void
tego_event_queue(const char *topic, const char *event, const char *key,
				 Jsonb *payload, const char *revision_of)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingEvent *ev = palloc(sizeof(PendingEvent));

	ev->nestlevel = GetCurrentTransactionNestLevel();
	ev->topic = pstrdup(topic);
	ev->event = pstrdup(event);
	ev->key = key ? pstrdup(key) : NULL;
	ev->payload = palloc(VARSIZE(payload));
	memcpy(ev->payload, payload, VARSIZE(payload));
	ev->revision_of = revision_of ? pstrdup(revision_of) : NULL;
	pending_events = lappend(pending_events, ev);
	MemoryContextSwitchTo(old);
}

/* The id that tego.publish() writes as the publisher of a message. */
char *
tego_publisher_id(void)
{
	if (tego_client_id != NULL && tego_client_id[0] != '\0')
		return pstrdup(tego_client_id);
	return psprintf("%s:%d",
					(application_name && application_name[0] != '\0') ?
					application_name : "backend",
					MyProcPid);
}

/* Number, store and announce queued events at commit; forget them at end. */
static void
events_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (pending_events != NIL)
			{
				List	   *events = pending_events;

				pending_events = NIL;
				flush_events(events);
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (pending_events != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has changed tego state"),
						 errdetail("Events are numbered and announced at commit.")));
			break;
		case XACT_EVENT_COMMIT:
			/* NB: the database's event lock is still held here */
			if (seq_to_cache)
			{
				seq_cache_store(&seq_cached);
				/* our events are visible now: wake tego.wait_events */
				if (tego_shared != NULL)
					ConditionVariableBroadcast(TEGO_EVENTS_CV_FOR(MyDatabaseId));
			}
			seq_to_cache = false;
			tego_mirror_xact_end(true);
			pending_events = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* the memory goes away with TopTransactionContext */
			seq_to_cache = false;
			tego_mirror_xact_end(false);
			pending_events = NIL;
			break;
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			break;
	}
}

/*
 * A committed subtransaction hands its events to its parent; an aborted
 * one drops them.
 */
static void
events_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_events)
		{
			PendingEvent *ev = lfirst(lc);

			if (ev->nestlevel >= level)
				ev->nestlevel = level - 1;
		}
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(lc, pending_events)
		{
			PendingEvent *ev = lfirst(lc);

			if (ev->nestlevel >= level)
				pending_events = foreach_delete_current(pending_events, lc);
		}
	}
}

/*
 * OID, owner and relfilenode of tego.events; false when the extension is
 * gone.
 */
static bool
events_rel(Oid *relid, Oid *owner, Oid *relfilenode)
{
	HeapTuple	tuple;
	Form_pg_class form;

	*relid = RangeVarGetRelid(makeRangeVar("tego", "events", -1), NoLock, true);
	if (!OidIsValid(*relid))
		return false;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(*relid));
	if (!HeapTupleIsValid(tuple))
		return false;
	form = (Form_pg_class) GETSTRUCT(tuple);
	*owner = form->relowner;
	*relfilenode = form->relfilenode;
	ReleaseSysCache(tuple);
	return true;
}

/*
 * The sequence tego.event_seq_reserved, or InvalidOid (absent before ALTER
 * EXTENSION tego UPDATE TO '0.3.0').
 */
static Oid
seq_reserved_rel(void)
{
	return RangeVarGetRelid(makeRangeVar("tego", "event_seq_reserved", -1),
							NoLock, true);
}

/*
 * The cached highest seq of key's table, or -1, and in *reserved the
 * ceiling of asynchronous numbering.  Call with the database's event lock
 * (tego_events_lock) held.
 */
static int64
seq_cache_lookup(const TegoSeqCache *key, int64 *reserved)
{
	int			i;

	int64		seq = -1;

	*reserved = 0;

	if (tego_shared == NULL)
		return -1;
	LWLockAcquire(tego_shared->lock, LW_SHARED);
	for (i = 0; i < TEGO_SEQ_CACHE_SIZE; i++)
	{
		TegoSeqCache *e = &tego_shared->seq_cache[i];

		if (e->database_oid == key->database_oid)
		{
			if (e->relid == key->relid && e->relfilenode == key->relfilenode)
			{
				seq = e->last_seq;
				*reserved = e->reserved;
			}
			break;
		}
	}
	LWLockRelease(tego_shared->lock);
	return seq;
}

/*
 * Remember entry's seq as the highest committed one of its database's
 * table.  Call with the database's event lock held, after the commit.
 */
static void
seq_cache_store(const TegoSeqCache *entry)
{
	int			i;
	int			free_slot = -1;

	if (tego_shared == NULL)
		return;
	LWLockAcquire(tego_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < TEGO_SEQ_CACHE_SIZE; i++)
	{
		TegoSeqCache *e = &tego_shared->seq_cache[i];

		if (e->database_oid == entry->database_oid)
		{
			*e = *entry;
			LWLockRelease(tego_shared->lock);
			return;
		}
		if (free_slot < 0 && !OidIsValid(e->database_oid))
			free_slot = i;
	}
	if (free_slot < 0)
	{
		free_slot = tego_shared->seq_cache_next;
		tego_shared->seq_cache_next = (free_slot + 1) % TEGO_SEQ_CACHE_SIZE;
	}
	tego_shared->seq_cache[free_slot] = *entry;
	LWLockRelease(tego_shared->lock);
}

/* One top-level member of an event payload, rendered as JSON text. */
typedef struct PayloadMember
{
	char	   *key;			/* JSON-escaped key, with quotes */
	char	   *value;			/* JSON text of the value */
	int			len;
	bool		dropped;
} PayloadMember;

/* Append the NOTIFY envelope's fixed members to buf (seq < 0: null). */
static void
notify_header(StringInfo buf, int64 seq, const char *topic,
			  const char *event, const char *key)
{
	if (seq < 0)
		appendStringInfoString(buf, "{\"seq\": null, \"topic\": ");
	else
		appendStringInfo(buf, "{\"seq\": " INT64_FORMAT ", \"topic\": ", seq);
	escape_json(buf, topic);
	appendStringInfoString(buf, ", \"event\": ");
	escape_json(buf, event);
	appendStringInfoString(buf, ", \"key\": ");
	if (key)
		escape_json(buf, key);
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ", \"payload\": ");
}

/* JSON text of one value met while iterating a jsonb container. */
static char *
jsonb_value_text(JsonbValue *v)
{
	if (v->type == jbvBinary)
		return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	else
	{
		Jsonb	   *j = JsonbValueToJsonb(v);

		return JsonbToCString(NULL, &j->root, VARSIZE(j));
	}
}

/*
 * The NOTIFY payload of an event: seq (null when negative: an event that is
 * not in the log), topic, event, key and payload as one JSON object.  When
 * that would reach TEGO_MAX_NOTIFY_BYTES, the largest top-level members of
 * the payload are left out, largest first, and listed in "omitted"; the
 * client reads them from tego.events (or, for an event not in the log, from
 * the state it describes).
 */
char *
tego_notify_text(int64 seq, const char *topic, const char *event,
				 const char *key, Jsonb *payload)
{
	StringInfoData buf;
	PayloadMember *members;
	int			nmembers = 0;
	int			i;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *member_key = NULL;

	initStringInfo(&buf);
	notify_header(&buf, seq, topic, event, key);
	JsonbToCString(&buf, &payload->root, VARSIZE(payload));
	appendStringInfoChar(&buf, '}');
	if (buf.len < TEGO_MAX_NOTIFY_BYTES)
		return buf.data;

	/* too large: collect the top-level members with their sizes */
	members = palloc0(sizeof(PayloadMember) * (JB_ROOT_COUNT(payload) + 1));
	if (JB_ROOT_IS_OBJECT(payload))
	{
		it = JsonbIteratorInit(&payload->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
			{
				StringInfoData k;

				initStringInfo(&k);
				escape_json(&k, pnstrdup(v.val.string.val, v.val.string.len));
				member_key = k.data;
			}
			else if (tok == WJB_VALUE)
			{
				members[nmembers].key = member_key;
				members[nmembers].value = jsonb_value_text(&v);
				members[nmembers].len = strlen(members[nmembers].value) +
					strlen(member_key) + 4;
				nmembers++;
			}
		}
	}

	for (;;)
	{
		int			largest = -1;
		bool		first = true;

		resetStringInfo(&buf);
		notify_header(&buf, seq, topic, event, key);
		if (!JB_ROOT_IS_OBJECT(payload))
			appendStringInfoString(&buf, "null");
		else
		{
			appendStringInfoChar(&buf, '{');
			for (i = 0; i < nmembers; i++)
			{
				if (members[i].dropped)
					continue;
				appendStringInfo(&buf, "%s%s: %s", first ? "" : ", ",
								 members[i].key, members[i].value);
				first = false;
			}
			appendStringInfoChar(&buf, '}');
		}
		appendStringInfoString(&buf, ", \"omitted\": [");
		if (!JB_ROOT_IS_OBJECT(payload))
			appendStringInfoString(&buf, "\"payload\"");
		first = true;
		for (i = 0; i < nmembers; i++)
		{
			if (!members[i].dropped)
				continue;
			appendStringInfo(&buf, "%s%s", first ? "" : ", ", members[i].key);
			first = false;
		}
		appendStringInfoString(&buf, "]}");
		if (buf.len < TEGO_MAX_NOTIFY_BYTES)
			return buf.data;

		for (i = 0; i < nmembers; i++)
			if (!members[i].dropped &&
				(largest < 0 || members[i].len > members[largest].len))
				largest = i;
		if (largest < 0)
			break;
		members[largest].dropped = true;
	}

	/* even the bare envelope is too large: cannot happen with our limits */
	elog(ERROR, "could not fit event %lld into a NOTIFY payload",
		 (long long) seq);
	return NULL;				/* keep compiler quiet */
}

/*
 * Take the lock that orders this database's event commits (see the file
 * header): exclusive, held until the end of the transaction.
 */
void
tego_events_lock(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, TEGO_EVENTS_LOCK_KEY, 0,
						 TEGO_EVENTS_LOCK_FIELD4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* Release tego_events_lock() before the end of the transaction. */
void
tego_events_unlock(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, TEGO_EVENTS_LOCK_KEY, 0,
						 TEGO_EVENTS_LOCK_FIELD4);
	LockRelease(&tag, ExclusiveLock, false);
}

/*
 * The NOTIFY payload of an event without its seq: everything after
 * "{\"seq\": N", or NULL when the whole payload could come near
 * TEGO_MAX_NOTIFY_BYTES (then tego_notify_text() shrinks it, with the seq).
 */
static char *
notify_tail(const char *topic, const char *event, const char *key,
			Jsonb *payload)
{
	StringInfoData buf;
	int			skip;

	initStringInfo(&buf);
	notify_header(&buf, 0, topic, event, key);
	skip = strlen("{\"seq\": 0");
	JsonbToCString(&buf, &payload->root, VARSIZE(payload));
	appendStringInfoChar(&buf, '}');
	/* the longest seq has 19 digits where this one has 1 */
	if (buf.len + 18 >= TEGO_MAX_NOTIFY_BYTES)
		return NULL;
	return buf.data + skip;
}

/* payload || {"revision": seq}, as the stamped plugin event stores it. */
static Jsonb *
payload_with_revision(Jsonb *payload, int64 seq)
{
	JsonbParseState *state = NULL;
	JsonbValue	k;
	JsonbValue	v;
	JsonbValue *res;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = "revision";
	k.val.string.len = strlen("revision");
	pushJsonbValue(&state, WJB_KEY, &k);
	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric,
														Int64GetDatum(seq)));
	pushJsonbValue(&state, WJB_VALUE, &v);
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
											  JsonbPGetDatum(payload),
											  JsonbPGetDatum(JsonbValueToJsonb(res))));
}

/* One event as flush_events() stores it. */
typedef struct FlushEvent
{
	PendingEvent *ev;
	Datum		topic;			/* text */
	Datum		event;			/* text */
	Datum		key;			/* text; 0 when ev->key is NULL */
	Jsonb	   *payload;		/* as stored: set before the lock, except
								 * for a stamped plugin event */
	char	   *tail;			/* notify_tail(), or NULL */
} FlushEvent;

/* Slots filled per table_multi_insert() call. */
#define FLUSH_BATCH		1000

/* Events from which flush_events() flushes the WAL before the commit. */
#define FLUSH_WAL_EVENTS	1000

/*
 * What insert_events() needs, set up by inserter_begin(): the executor
 * state, the indexes and the slots of tego.events.
 */
typedef struct EventInserter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot **slots;
	int			nslots;
	BulkInsertState bistate;
	CommandId	cid;
	bool		check;			/* NOT NULL or CHECK constraints to check */
} EventInserter;

/* Prepare to insert n events into the open tego.events (rel). */
static void
inserter_begin(EventInserter *ins, Relation rel, int n)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	int			i;

	ins->rel = rel;
	ins->estate = CreateExecutorState();
	ins->rri = makeNode(ResultRelInfo);
	ins->bistate = GetBulkInsertState();
	ins->cid = GetCurrentCommandId(true);
	ins->check = rel->rd_att->constr != NULL &&
		(rel->rd_att->constr->has_not_null || rel->rd_att->constr->num_check > 0);
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(ins->estate, list_make1(rte));
	InitResultRelInfo(ins->rri, rel, 1, NULL, 0);
	ExecOpenIndices(ins->rri, false);
	ins->estate->es_output_cid = ins->cid;

	/* NB: as many slots as needed: most commits store one event */
	ins->nslots = Min(n, FLUSH_BATCH);
	ins->slots = palloc(sizeof(TupleTableSlot *) * ins->nslots);
	for (i = 0; i < ins->nslots; i++)
		ins->slots[i] = table_slot_create(rel, NULL);
}

/*
 * Insert n events numbered from first_seq, with the table AM's
 * multi-insert and one entry per index, as COPY does.
 */
static void
insert_events(EventInserter *ins, FlushEvent *fe, int n, int64 first_seq,
			  TimestampTz committed_at)
{
	int			done = 0;
	int			i;

	while (done < n)
	{
		int			batch = Min(n - done, FLUSH_BATCH);

		for (i = 0; i < batch; i++)
		{
			FlushEvent *e = &fe[done + i];
			TupleTableSlot *slot = ins->slots[i];

			ExecClearTuple(slot);
			slot->tts_values[0] = Int64GetDatum(first_seq + done + i);
			slot->tts_isnull[0] = false;
			slot->tts_values[1] = e->topic;
			slot->tts_isnull[1] = false;
			slot->tts_values[2] = e->event;
			slot->tts_isnull[2] = false;
			slot->tts_values[3] = e->key;
			slot->tts_isnull[3] = (e->ev->key == NULL);
			slot->tts_values[4] = JsonbPGetDatum(e->payload);
			slot->tts_isnull[4] = false;
			slot->tts_values[5] = TimestampTzGetDatum(committed_at);
			slot->tts_isnull[5] = false;
			ExecStoreVirtualTuple(slot);
			if (ins->check)
				ExecConstraints(ins->rri, slot, ins->estate);
		}
		table_multi_insert(ins->rel, ins->slots, batch, ins->cid, 0, ins->bistate);
		for (i = 0; i < batch; i++)
		{
			List	   *recheck;

			recheck = ExecInsertIndexTuples(ins->rri, ins->slots[i], ins->estate,
											false, false, NULL, NIL);
			list_free(recheck);
			ResetPerTupleExprContext(ins->estate);
		}
		done += batch;
	}
}

/* Release what inserter_begin() set up. */
static void
inserter_end(EventInserter *ins)
{
	int			i;

	for (i = 0; i < ins->nslots; i++)
		ExecDropSingleTupleTableSlot(ins->slots[i]);
	pfree(ins->slots);
	FreeBulkInsertState(ins->bistate);
	ExecCloseIndices(ins->rri);
	FreeExecutorState(ins->estate);
}

/*
 * SPI for flush_events(), connected on first use: most commits need no
 * statement (the highest seq is cached, the revision stamped directly).
 */
static bool flush_spi = false;

static void
flush_spi_begin(void)
{
	if (flush_spi)
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* no portal is active at pre-commit: statements need a snapshot */
	PushActiveSnapshot(GetTransactionSnapshot());
	flush_spi = true;
}

/* What stamp_revision_direct() looks up once per tego.plugins table. */
static struct
{
	Oid			relid;
	AttrNumber	name_att;
	AttrNumber	rev_att;
	Oid			indexid;		/* the unique index on name */
	Oid			collation;		/* its collation, which the scan key needs */
}			plugins_meta;

/* Whether attribute attno of desc is a live column called name, of type. */
static bool
attribute_is(TupleDesc desc, AttrNumber attno, const char *name, Oid type)
{
	Form_pg_attribute att;

	if (attno < 1 || attno > desc->natts)
		return false;
	att = TupleDescAttr(desc, attno - 1);
	return !att->attisdropped && att->atttypid == type &&
		strcmp(NameStr(att->attname), name) == 0;
}

/*
 * The unique index of tego.plugins on name (rel), or InvalidOid.
 */
static Oid
plugins_name_index(Relation rel, AttrNumber name_att)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index form;

		if (!HeapTupleIsValid(tup))
			continue;
		form = (Form_pg_index) GETSTRUCT(tup);
		if (form->indisunique && form->indisvalid && form->indnkeyatts == 1 &&
			form->indkey.values[0] == name_att &&
			heap_attisnull(tup, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(tup, Anum_pg_index_indexprs, NULL))
			found = form->indexrelid;
		ReleaseSysCache(tup);
		if (OidIsValid(found))
			break;
	}
	list_free(indexes);
	return found;
}

/*
 * Stamp the revision of the row version of plugin name that this
 * transaction wrote with seq, as "UPDATE tego.plugins SET revision = seq"
 * would, but through the table AM: no executor, no plan.  *row receives
 * the new row (a composite datum) for the registry mirror.
 *
 * Returns false, having done nothing, where the statement is needed: the
 * table has triggers, is not a heap, or the row version is not this
 * transaction's.
 */
static bool
stamp_revision_direct(const char *name, int64 seq, Datum *row, bool *gone)
{
	Oid			relid = RangeVarGetRelid(makeRangeVar("tego", "plugins", -1),
										 NoLock, true);
	Relation	rel;
	TupleDesc	desc;
	AttrNumber	name_att;
	AttrNumber	rev_att;
	Oid			indexid;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	old;
	bool		done = false;

	if (!OidIsValid(relid))
		return false;
	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);

	/* what to look up once per table (a new one after DROP EXTENSION) */
	if (plugins_meta.relid != relid ||
		!attribute_is(desc, plugins_meta.name_att, "name", TEXTOID) ||
		!attribute_is(desc, plugins_meta.rev_att, "revision", INT8OID))
	{
		plugins_meta.relid = relid;
		plugins_meta.name_att = get_attnum(relid, "name");
		plugins_meta.rev_att = get_attnum(relid, "revision");
		plugins_meta.indexid = InvalidOid;
	}
	name_att = plugins_meta.name_att;
	rev_att = plugins_meta.rev_att;
	if (rel->trigdesc != NULL || rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		!attribute_is(desc, name_att, "name", TEXTOID) ||
		!attribute_is(desc, rev_att, "revision", INT8OID))
	{
		table_close(rel, NoLock);
		return false;
	}
	{
		List	   *indexes = RelationGetIndexList(rel);

		if (!list_member_oid(indexes, plugins_meta.indexid))
		{
			plugins_meta.indexid = plugins_name_index(rel, name_att);
			if (OidIsValid(plugins_meta.indexid))
			{
				Relation	irel = index_open(plugins_meta.indexid, AccessShareLock);

				plugins_meta.collation = irel->rd_indcollation[0];
				index_close(irel, AccessShareLock);
			}
		}
		list_free(indexes);
	}
	indexid = plugins_meta.indexid;
	if (!OidIsValid(indexid))
	{
		table_close(rel, NoLock);
		return false;
	}

	/*
	 * NB: SnapshotSelf sees the newest version of the row we wrote.  The key
	 * compares with the index's collation (ScanKeyInit's default, "C", would
	 * search an index ordered by another collation wrongly).
	 */
	ScanKeyInit(&key, name_att, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(name));
	key.sk_collation = plugins_meta.collation;
	scan = systable_beginscan(rel, indexid, true, SnapshotSelf, 1, &key);
	old = systable_getnext(scan);
	if (old == NULL)
	{
		/* removed later in this transaction */
		*row = (Datum) 0;
		*gone = true;
		done = true;
	}
	else if (TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(old->t_data)))
	{
		Datum	   *values = palloc(sizeof(Datum) * desc->natts);
		bool	   *nulls = palloc(sizeof(bool) * desc->natts);
		HeapTuple	newtup;

		heap_deform_tuple(old, desc, values, nulls);
		values[rev_att - 1] = Int64GetDatum(seq);
		nulls[rev_att - 1] = false;
		newtup = heap_form_tuple(desc, values, nulls);
		simple_heap_update(rel, &old->t_self, newtup);
		/* NB: a later event of the same plugin in this commit stamps it again */
		CommandCounterIncrement();

		/* a non-HOT version needs its index entries, as CatalogTupleUpdate makes */
		if (!HeapTupleIsHeapOnly(newtup))
		{
			EState	   *estate = CreateExecutorState();
			ResultRelInfo *rri = makeNode(ResultRelInfo);
			TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
			List	   *recheck;

			InitResultRelInfo(rri, rel, 1, NULL, 0);
			ExecOpenIndices(rri, false);
			ExecStoreHeapTuple(newtup, slot, false);
			recheck = ExecInsertIndexTuples(rri, slot, estate, false, false,
											NULL, NIL);
			list_free(recheck);
			ExecDropSingleTupleTableSlot(slot);
			ExecCloseIndices(rri);
			FreeExecutorState(estate);
		}
		/* NB: fetching toasted values for the composite needs a snapshot */
		if (HeapTupleHasExternal(newtup))
			flush_spi_begin();
		*row = heap_copy_tuple_as_datum(newtup, desc);
		*gone = false;
		done = true;
	}
	systable_endscan(scan);
	table_close(rel, NoLock);
	return done;
}

/*
 * Stamp the plugin's revision with seq (stamp) and/or feed the registry
 * mirror the plugin's row as this commit leaves it (mirror).  Runs SPI
 * where the table AM cannot do it (stamp_revision_direct).
 */
static void
plugin_event_done(PendingEvent *ev, int64 seq, bool stamp, bool mirror)
{
	Datum		row = (Datum) 0;
	bool		gone = true;

	if (stamp && strcmp(ev->revision_of, ev->key) == 0 &&
		stamp_revision_direct(ev->revision_of, seq, &row, &gone))
	{
		if (mirror)
			tego_mirror_queue(ev->key, seq, row, gone);
		return;
	}
	flush_spi_begin();
	if (stamp)
	{
		Oid			types[2] = {INT8OID, TEXTOID};
		Datum		values[2];

		values[0] = Int64GetDatum(seq);
		values[1] = CStringGetTextDatum(ev->revision_of);
		tego_exec(&plan_stamp,
				  "UPDATE tego.plugins p SET revision = $1"
				  " WHERE p.name OPERATOR(pg_catalog.=) $2 RETURNING p",
				  2, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
	}
	if (!mirror)
		return;
	if (!stamp || strcmp(ev->revision_of, ev->key) != 0)
	{
		Oid			ktypes[1] = {TEXTOID};
		Datum		kvalues[1];

		kvalues[0] = CStringGetTextDatum(ev->key);
		tego_exec(&plan_plugin_row,
				  "SELECT p FROM tego.plugins p"
				  " WHERE p.name OPERATOR(pg_catalog.=) $1",
				  1, ktypes, kvalues, NULL, TEGO_SNAPSHOT_WRITE, 1);
	}
	if (SPI_processed > 0)
		row = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
							&gone);
	tego_mirror_queue(ev->key, seq, row, gone);
}

/*
 * Number the events, insert them into tego.events, stamp plugin revisions
 * and queue the NOTIFYs.  Runs in the pre-commit phase of the transaction.
 *
 * NB: what needs no seq (the rows' values, the NOTIFY texts) is prepared
 * before the lock is taken; under it, the events are stored in one
 * multi-insert, and only plugin events run a statement each.
 */
static void
flush_events(List *events)
{
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;
	int64		seq;
	int64		reserved;
	Oid			reserved_relid;
	bool		async_commit;
	TimestampTz committed_at;
	ListCell   *lc;
	bool		mirror_wanted;
	bool		has_plugin_events = false;
	int			n = list_length(events);
	int			i;
	FlushEvent *fe;
	Relation	rel;
	EventInserter ins;

	memset(&seq_cached, 0, sizeof(seq_cached));
	if (!events_rel(&seq_cached.relid, &owner, &seq_cached.relfilenode))
		return;					/* DROP EXTENSION in this transaction */

	/* fencing: a server that may have lost its leadership commits no events */
	{
		char	   *problem = NULL;

		if (!tego_leader_confirmed(&problem))
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("tego cannot confirm that this server is the leader"),
					 errdetail_internal("%s", problem),
					 errhint("Events are committed only while tego.leader_check confirms it; connect to the current leader.")));
	}
	seq_cached.database_oid = MyDatabaseId;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);

	/* before the lock: everything that does not depend on the seq */
	fe = palloc(sizeof(FlushEvent) * n);
	i = 0;
	foreach(lc, events)
	{
		PendingEvent *ev = lfirst(lc);
		FlushEvent *e = &fe[i++];

		e->ev = ev;
		e->topic = CStringGetTextDatum(ev->topic);
		e->event = CStringGetTextDatum(ev->event);
		e->key = ev->key ? CStringGetTextDatum(ev->key) : (Datum) 0;
		if (strcmp(ev->topic, TEGO_TOPIC_PLUGINS) == 0)
			has_plugin_events = true;
		if (ev->revision_of)
		{
			e->payload = NULL;
			e->tail = NULL;
		}
		else
		{
			e->payload = ev->payload;
			e->tail = notify_tail(ev->topic, ev->event, ev->key, ev->payload);
		}
	}

	/*
	 * The ceiling of asynchronous numbering: needed by an asynchronous
	 * commit, and when the highest seq is read from the table (below).
	 */
	async_commit = synchronous_commit == SYNCHRONOUS_COMMIT_OFF;
	reserved_relid = async_commit ? seq_reserved_rel() : InvalidOid;

	/*
	 * NB: held until the end of the transaction, after our commit is
	 * visible to every snapshot; taking it before reading the highest seq is
	 * what makes seq gapless and commit-ordered.
	 */
	tego_events_lock();

	rel = table_open(seq_cached.relid, RowExclusiveLock);
	/* a TRUNCATE committed while we waited makes a new table */
	seq_cached.relfilenode = RelationGetForm(rel)->relfilenode;
	inserter_begin(&ins, rel, n);

	flush_spi = false;
	seq = seq_cache_lookup(&seq_cached, &reserved);
	mirror_wanted = has_plugin_events && tego_mirror_wanted();
	if (seq < 0)
	{
		bool		isnull;
		Datum		d;

		/* the latest snapshot sees every event committed before the lock */
		flush_spi_begin();
		tego_exec(&plan_max_seq,
				  "SELECT pg_catalog.max(seq) FROM tego.events",
				  0, NULL, NULL, NULL, TEGO_SNAPSHOT_LATEST, 1);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						  &isnull);
		seq = isnull ? 0 : DatumGetInt64(d);

		reserved = 0;
		if (!async_commit)
			reserved_relid = seq_reserved_rel();
		if (OidIsValid(reserved_relid))
		{
			tego_exec(&plan_reserved,
					  "SELECT CASE WHEN is_called THEN last_value ELSE 0 END"
					  " FROM tego.event_seq_reserved",
					  0, NULL, NULL, NULL, TEGO_SNAPSHOT_LATEST, 1);
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
							  &isnull);
			reserved = isnull ? 0 : DatumGetInt64(d);
		}
		/* asynchronous commits may have used seqs up to there: skip them */
		if (reserved > seq)
			seq = reserved;
	}

	/*
	 * An asynchronous commit numbers below a durable ceiling; raise it first
	 * when this batch would pass it.
	 */
	if (async_commit && (tego_shared == NULL || !OidIsValid(reserved_relid)))
	{
		ForceSyncCommit();
		async_commit = false;
	}
	if (async_commit && seq + n > reserved)
	{
		Datum		arg = Int64GetDatum(seq + n + TEGO_SEQ_RESERVE);
		Oid			argtype = INT8OID;

		flush_spi_begin();
		tego_exec(&plan_reserve,
				  "SELECT pg_catalog.setval('tego.event_seq_reserved', $1)",
				  1, &argtype, &arg, NULL, TEGO_SNAPSHOT_LATEST, 1);
		/* NB: setval is not transactional; make it durable before use */
		XLogFlush(XactLastRecEnd);
		reserved = seq + n + TEGO_SEQ_RESERVE;
	}
	seq_cached.reserved = reserved;
	committed_at = GetCurrentTimestamp();

	for (i = 0; i < n; i++)
		if (fe[i].ev->revision_of)
			fe[i].payload = payload_with_revision(fe[i].ev->payload,
												  seq + 1 + i);
	insert_events(&ins, fe, n, seq + 1, committed_at);
	inserter_end(&ins);
	table_close(rel, NoLock);

	for (i = 0; i < n; i++)
	{
		FlushEvent *e = &fe[i];
		PendingEvent *ev = e->ev;
		int64		event_seq = seq + 1 + i;
		char	   *text;

		/* the plugin's revision, and its row for the registry mirror */
		if (ev->revision_of ||
			(mirror_wanted && ev->key &&
			 strcmp(ev->topic, TEGO_TOPIC_PLUGINS) == 0))
			plugin_event_done(ev, event_seq, ev->revision_of != NULL,
							  mirror_wanted && ev->key &&
							  strcmp(ev->topic, TEGO_TOPIC_PLUGINS) == 0);

		/* PreCommit_Notify sends the queued notifications in this order */
		if (e->tail)
			text = psprintf("{\"seq\": " INT64_FORMAT "%s", event_seq, e->tail);
		else
			text = tego_notify_text(event_seq, ev->topic, ev->event, ev->key,
									e->payload);
		Async_Notify(ev->topic, text);
		pfree(text);
	}

	if (flush_spi)
	{
		PopActiveSnapshot();
		SPI_finish();
		flush_spi = false;
	}
	SetUserIdAndSecContext(save_userid, save_sec_context);

	/*
	 * NB: a large batch has written much WAL; flush it now, so that the
	 * commit record's flush, which PostgreSQL makes while holding the NOTIFY
	 * lock (taken by PreCommit_Notify, after us), has little left to do.
	 */
	if (n >= FLUSH_WAL_EVENTS && synchronous_commit > SYNCHRONOUS_COMMIT_OFF)
		XLogFlush(XactLastRecEnd);

	seq_cached.last_seq = seq + n;
	seq_to_cache = true;
}

/* Raise an error unless topic is a valid name for application messages. */
static void
check_topic(const char *topic)
{
	size_t		len = strlen(topic);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("topic must not be empty")));
	if (len > TEGO_MAX_TOPIC_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("topic name is too long"),
				 errdetail("A topic is a NOTIFY channel name, at most %d bytes; this one has %zu.",
						   TEGO_MAX_TOPIC_BYTES, len)));
	if (strncmp(topic, "tego_", 5) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("topic \"%s\" is reserved", topic),
				 errdetail("Topics beginning with \"tego_\" carry tego's own events.")));
}

/*
 * tego.publish(topic text, message jsonb) RETURNS void
 *
 * Queue an application sync message: stored and sent only if the
 * transaction commits.  The payload carries the publisher id.  A message
 * larger than tego.max_publish_bytes (as jsonb) is refused.
 */
Datum
publish(PG_FUNCTION_ARGS)
{
	char	   *topic;
	Jsonb	   *message;
	Size		size;
	char	   *publisher;
	JsonbParseState *state = NULL;
	JsonbValue	k;
	JsonbValue	v;
	JsonbValue *res;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("topic must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message must not be null")));
	topic = text_to_cstring(PG_GETARG_TEXT_PP(0));
	check_topic(topic);
	/* NB: measured before detoasting, so a huge value is refused unread */
	size = toast_raw_datum_size(PG_GETARG_DATUM(1));
	if (size > (Size) tego_max_publish_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("message is too large"),
				 errdetail("The message has %zu bytes (as jsonb); tego.max_publish_bytes allows %d.",
						   size, tego_max_publish_bytes),
				 errhint("Store large data in a table and publish its key.")));
	message = PG_GETARG_JSONB_P(1);
	/* as NOTIFY: not on a standby, nor in a read-only transaction */
	PreventCommandIfReadOnly("tego.publish()");
	publisher = tego_publisher_id();

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = "publisher";
	k.val.string.len = strlen("publisher");
	pushJsonbValue(&state, WJB_KEY, &k);
	v.type = jbvString;
	v.val.string.val = publisher;
	v.val.string.len = strlen(publisher);
	pushJsonbValue(&state, WJB_VALUE, &v);
	k.val.string.val = "message";
	k.val.string.len = strlen("message");
	pushJsonbValue(&state, WJB_KEY, &k);
	v.type = jbvBinary;
	v.val.binary.data = &message->root;
	v.val.binary.len = VARSIZE(message) - VARHDRSZ;
	pushJsonbValue(&state, WJB_VALUE, &v);
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);

	tego_event_queue(topic, "message", publisher, JsonbValueToJsonb(res), NULL);
	PG_RETURN_VOID();
}

/*
 * tego.compact_events() RETURNS bigint
 *
 * Delete events committed longer than tego.event_retention ago, always
 * keeping the newest one (it anchors the next seq).  Returns the number of
 * events deleted.
 */
Datum
compact_events(PG_FUNCTION_ARGS)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1];
	uint64		deleted;

	if (tego_event_retention <= 0)
		PG_RETURN_INT64(0);

	values[0] = TimestampTzGetDatum(
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
									-(int64) tego_event_retention * 1000));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * NB: the cutoff is the first event new enough to keep, found by walking
	 * the primary key from the oldest event, so the cost is proportional to
	 * what is deleted, not to what is kept.
	 */
	tego_exec(&plan_compact,
			  "DELETE FROM tego.events e "
			  "WHERE e.seq OPERATOR(pg_catalog.<) COALESCE("
			  " (SELECT k.seq FROM tego.events k"
			  "   WHERE k.committed_at OPERATOR(pg_catalog.>=) $1"
			  "   ORDER BY k.seq LIMIT 1),"
			  " (SELECT pg_catalog.max(m.seq) FROM tego.events m))",
			  1, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
	deleted = SPI_processed;
	SPI_finish();

	PG_RETURN_INT64((int64) deleted);
}

/*
 * tego.wait_events(after_seq bigint, topics text[] DEFAULT NULL,
 *					timeout interval DEFAULT '30 seconds',
 *					max_events integer DEFAULT 1000) RETURNS SETOF tego.events
 *
 * tego.events_since, but when there is nothing past after_seq yet, wait
 * until a commit adds events or the timeout passes (then return nothing).
 * For clients that cannot LISTEN, such as those behind a pooler in
 * transaction mode: the whole wait is one statement.
 *
 * A commit that added events broadcasts its database's condition variable
 * after it became visible; a waiter wakes, reads again and sleeps again
 * when what was added is of other topics (or of another database sharing
 * the variable).  On a standby, or without the preload, there is no such
 * commit to wait for, and the waiter reads again every WAIT_EVENTS_POLL_MS.
 * Every WAIT_EVENTS_CHECK_MS the waiter checks that its client is still
 * there, so that a client gone mid-wait does not hold its backend (and
 * snapshot) until the timeout.
 */
Datum
wait_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Interval   *timeout;
	Interval	zero;
	Interval	limit;
	TimestampTz deadline;
	Oid			types[3] = {INT8OID, TEXTARRAYOID, INT4OID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	ConditionVariable *cv = NULL;
	bool		read_again = true;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("after_seq must not be null")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("timeout must not be null")));
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("max_events must not be null")));
	timeout = PG_GETARG_INTERVAL_P(2);
	memset(&zero, 0, sizeof(zero));
	memset(&limit, 0, sizeof(limit));
	limit.time = (int64) WAIT_EVENTS_MAX_TIMEOUT_MS * 1000;
	/* NB: compared as intervals, so no arithmetic on the fields can overflow */
	if (DatumGetBool(DirectFunctionCall2(interval_lt, IntervalPGetDatum(timeout),
										 IntervalPGetDatum(&zero))) ||
		DatumGetBool(DirectFunctionCall2(interval_gt, IntervalPGetDatum(timeout),
										 IntervalPGetDatum(&limit))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must be between 0 and 1 hour"),
				 errdetail("The timeout was %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(timeout))))));
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("tego.wait_events cannot wait in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errhint("Call it in a READ COMMITTED transaction: the transaction's snapshot would hide the events it waits for.")));

	/* tego.events_since checks the values and whether after_seq was compacted */
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[2] = PG_GETARG_DATUM(3);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	/* within [0, 1 hour], so the days and months add up to at most that */
	deadline = GetCurrentTimestamp() + timeout->time +
		((int64) timeout->month * DAYS_PER_MONTH + timeout->day) * USECS_PER_DAY;

	for (;;)
	{
		long		wait_ms;
		bool		can_wake;

		/*
		 * NB: on the condition variable's wait list before reading, so that
		 * a commit between the read and the sleep still wakes us.
		 */
		can_wake = (tego_shared != NULL && !RecoveryInProgress());
		if (can_wake && cv == NULL)
		{
			cv = TEGO_EVENTS_CV_FOR(MyDatabaseId);
			ConditionVariablePrepareToSleep(cv);
		}

		if (read_again || !can_wake)
		{
			uint64		n;
			uint64		i;

			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			/* read-write: a new snapshot each time (READ COMMITTED) */
			tego_exec(&plan_wait,
					  "SELECT e.* FROM tego.events_since($1, $2, $3) e",
					  3, types, values, nulls, TEGO_SNAPSHOT_WRITE, 0);
			n = SPI_processed;
			for (i = 0; i < n; i++)
				tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
			SPI_finish();
			if (n > 0)
				break;
		}

		wait_ms = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		if (wait_ms <= 0)
			break;
		wait_ms = Min(wait_ms, can_wake ? WAIT_EVENTS_CHECK_MS : WAIT_EVENTS_POLL_MS);
		if (cv != NULL)
			read_again = !ConditionVariableTimedSleep(cv, wait_ms, PG_WAIT_EXTENSION);
		else
		{
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}

		/* a client gone mid-wait: end the backend, as PostgreSQL would */
		if (MyProcPort != NULL && !pq_check_connection())
			ereport(FATAL,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("connection to client lost")));
	}
	if (cv != NULL)
		ConditionVariableCancelSleep();
	return (Datum) 0;
}
