/*-------------------------------------------------------------------------
 *
 * mirror.c
 *	  The memory-backed registry: a shared-memory mirror of each database's
 *	  tego.plugins, for readers that ask for it (tego.registry_source =
 *	  memory).
 *
 *	  The table stays the source of truth ("dual write"): a committed
 *	  change of a plugin row is written to the mirror right after its
 *	  commit, from the same commit hook that numbers its event, with the
 *	  row's revision (the event's seq); an entry is never replaced by an
 *	  older revision.  A database's mirror is loaded from the table on its
 *	  first use after a start, a crash or CREATE EXTENSION.
 *
 *	  NB: both the commit hook and the load hold the database's event lock
 *	  (see events.c), which serializes every commit that numbers events in
 *	  the database: a load
 *	  reads the table with a snapshot that sees every commit before it, and
 *	  no change can commit between that read and the load's end.
 *
 *	  Rows are kept in PostgreSQL's binary format (record_send), so a
 *	  reader gets exactly the values the table holds, whatever its DateStyle.
 *	  A row larger than MIRROR_ROW_BYTES (large options) is marked so and
 *	  read from the table; so is a whole database with more plugins than
 *	  tego.max_plugins, and every read on a standby (whose mirror would not
 *	  see the primary's commits).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "tego.h"
#include "mirror.h"

/* settings */
int			tego_max_plugins = 1000;
int			tego_registry_source = TEGO_REGISTRY_TABLE;

/* Databases whose registry can be mirrored at once. */
#define MIRROR_DBS			16

/* Largest row (binary) kept in memory; larger ones are read from the table. */
#define MIRROR_ROW_BYTES	2048

typedef struct MirrorEntry
{
	Oid			database_oid;	/* InvalidOid: free */
	char		name[TEGO_MAX_NAME_BYTES + 1];
	int64		revision;
	uint64		version;		/* changes with every write of the entry */
	int			len;			/* bytes in row; -1: too large */
	char		row[MIRROR_ROW_BYTES];
} MirrorEntry;

typedef struct MirrorDb
{
	Oid			database_oid;	/* InvalidOid: free */
	Oid			relid;			/* tego.plugins when it was loaded */
	bool		loaded;
	bool		overflow;		/* more plugins than entries: use the table */
	int64		epoch;
} MirrorDb;

typedef struct TegoMirror
{
	LWLock	   *lock;
	int			max_plugins;
	int			next_db;		/* slot to reuse when all are taken */
	uint64		next_version;	/* of the next entry written */
	MirrorDb	dbs[MIRROR_DBS];
	MirrorEntry entries[FLEXIBLE_ARRAY_MEMBER];
} TegoMirror;

static TegoMirror *mirror = NULL;

/*
 * An index of the entries by (database, plugin name), a shared hash table
 * protected by the mirror's lock.
 */
typedef struct MirrorKey
{
	Oid			database_oid;
	char		name[TEGO_MAX_NAME_BYTES + 1];	/* zero-padded */
} MirrorKey;

typedef struct MirrorIndexEntry
{
	MirrorKey	key;
	int			slot;			/* in mirror->entries */
} MirrorIndexEntry;

static HTAB *mirror_index = NULL;

/* A committed change waiting for the commit hook. */
typedef struct MirrorChange
{
	char	   *name;
	int64		revision;
	bytea	   *row;			/* NULL: the row is gone */
} MirrorChange;

static List *pending = NIL;		/* MirrorChange, in TopTransactionContext */
static Oid	pending_relid = InvalidOid;

static SPIPlanPtr plan_load = NULL;
static SPIPlanPtr plan_epoch = NULL;

PG_FUNCTION_INFO_V1(registry_epoch);

Size
tego_mirror_shmem_size(void)
{
	return add_size(add_size(offsetof(TegoMirror, entries),
							 mul_size(tego_max_plugins, sizeof(MirrorEntry))),
					hash_estimate_size(tego_max_plugins, sizeof(MirrorIndexEntry)));
}

void
tego_mirror_shmem_init(LWLock *lock)
{
	bool		found;
	int			i;

	mirror = ShmemInitStruct("tego registry mirror", tego_mirror_shmem_size(), &found);
	if (!found)
	{
		memset(mirror, 0, offsetof(TegoMirror, entries));
		mirror->lock = lock;
		mirror->max_plugins = tego_max_plugins;
		for (i = 0; i < tego_max_plugins; i++)
			mirror->entries[i].database_oid = InvalidOid;
	}
	{
		HASHCTL		info;

		memset(&info, 0, sizeof(info));
		info.keysize = sizeof(MirrorKey);
		info.entrysize = sizeof(MirrorIndexEntry);
		mirror_index = ShmemInitHash("tego registry mirror index",
									 tego_max_plugins, tego_max_plugins,
									 &info, HASH_ELEM | HASH_BLOBS);
	}
}

static void
make_key(MirrorKey *key, const char *name)
{
	memset(key, 0, sizeof(MirrorKey));
	key->database_oid = MyDatabaseId;
	strlcpy(key->name, name, sizeof(key->name));
}

/* Free entry e (and its index entry); lock held exclusively. */
static void
free_entry(MirrorEntry *e)
{
	MirrorKey	key;

	memset(&key, 0, sizeof(key));
	key.database_oid = e->database_oid;
	strlcpy(key.name, e->name, sizeof(key.name));
	(void) hash_search(mirror_index, &key, HASH_REMOVE, NULL);
	e->database_oid = InvalidOid;
}

/*
 * tego.plugins of this database, or InvalidOid when there is none.  NB:
 * remembered per backend; a table that is gone (DROP EXTENSION) has no
 * row type any more, and then it is looked up again.
 */
static Oid
plugins_relid(void)
{
	static Oid	relid = InvalidOid;

	if (!OidIsValid(relid) || !OidIsValid(get_rel_type_id(relid)))
		relid = RangeVarGetRelid(makeRangeVar("tego", "plugins", -1), NoLock, true);
	return relid;
}

/* The row type of tego.plugins (see plugins_relid()). */
Oid
tego_plugins_rowtype(void)
{
	Oid			relid = plugins_relid();

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"tego.plugins\" does not exist")));
	return get_rel_type_id(relid);
}

/* The mirror slot of this database (created when create); lock held. */
static MirrorDb *
find_db(bool create)
{
	MirrorDb   *free_slot = NULL;
	int			i;

	for (i = 0; i < MIRROR_DBS; i++)
	{
		if (mirror->dbs[i].database_oid == MyDatabaseId)
			return &mirror->dbs[i];
		if (free_slot == NULL && !OidIsValid(mirror->dbs[i].database_oid))
			free_slot = &mirror->dbs[i];
	}
	if (!create)
		return NULL;
	if (free_slot == NULL)
	{
		/* reuse another database's slot: its entries go */
		free_slot = &mirror->dbs[mirror->next_db];
		mirror->next_db = (mirror->next_db + 1) % MIRROR_DBS;
		for (i = 0; i < mirror->max_plugins; i++)
			if (mirror->entries[i].database_oid == free_slot->database_oid)
				free_entry(&mirror->entries[i]);
	}
	memset(free_slot, 0, sizeof(MirrorDb));
	free_slot->database_oid = MyDatabaseId;
	return free_slot;
}

/* The entry of plugin name in this database, or NULL; lock held. */
static MirrorEntry *
find_entry(const char *name)
{
	MirrorKey	key;
	MirrorIndexEntry *ie;

	make_key(&key, name);
	ie = hash_search(mirror_index, &key, HASH_FIND, NULL);
	return ie ? &mirror->entries[ie->slot] : NULL;
}

/* Store row (or forget the entry when row is NULL); lock held exclusively. */
static bool
put_entry(const char *name, int64 revision, bytea *row)
{
	MirrorEntry *e = find_entry(name);

	if (e && e->revision > revision)
		return true;			/* never backwards */
	if (row == NULL)
	{
		if (e)
			free_entry(e);
		return true;
	}
	if (e == NULL)
	{
		MirrorKey	key;
		MirrorIndexEntry *ie;
		int			i;

		/* NB: a scan, but only when a plugin is added or the mirror loaded */
		for (i = 0; i < mirror->max_plugins; i++)
			if (!OidIsValid(mirror->entries[i].database_oid))
				break;
		if (i == mirror->max_plugins)
			return false;		/* full */
		make_key(&key, name);
		ie = hash_search(mirror_index, &key, HASH_ENTER_NULL, NULL);
		if (ie == NULL)
			return false;
		ie->slot = i;
		e = &mirror->entries[i];
		e->database_oid = MyDatabaseId;
		strlcpy(e->name, name, sizeof(e->name));
	}
	e->revision = revision;
	e->version = ++mirror->next_version;
	if (VARSIZE_ANY_EXHDR(row) > MIRROR_ROW_BYTES)
		e->len = -1;
	else
	{
		e->len = VARSIZE_ANY_EXHDR(row);
		memcpy(e->row, VARDATA_ANY(row), e->len);
	}
	return true;
}

/* ------------------------------------------------------------------------
 * Writing: the commit hook
 * ------------------------------------------------------------------------
 */

/*
 * Does this database's mirror want the changes of the committing
 * transaction?  Only a loaded one does: an unloaded mirror reads the table
 * when it is loaded.  Called at pre-commit, under the database's event
 * lock, which a load takes too, so the answer holds until the commit hook runs.
 */
bool
tego_mirror_wanted(void)
{
	MirrorDb   *db;
	bool		wanted;

	if (mirror == NULL)
		return false;
	LWLockAcquire(mirror->lock, LW_SHARED);
	db = find_db(false);
	wanted = db && db->loaded;
	LWLockRelease(mirror->lock);
	return wanted;
}

/*
 * Remember that plugin name has the row (a whole-row Datum of
 * tego.plugins; isnull: the row is gone) as of revision, to be written to
 * the mirror if the transaction commits.  Called at pre-commit, under the
 * database's event lock.
 */
void
tego_mirror_queue(const char *name, int64 revision, Datum row, bool isnull)
{
	MemoryContext old;
	MirrorChange *c;

	if (mirror == NULL)
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	c = palloc(sizeof(MirrorChange));
	c->name = pstrdup(name);
	c->revision = revision;
	c->row = isnull ? NULL : OidSendFunctionCall(F_RECORD_SEND, row);
	pending = lappend(pending, c);
	pending_relid = plugins_relid();
	MemoryContextSwitchTo(old);
}

/*
 * The transaction ends: on commit (still under the event lock) write its
 * changes to this database's mirror, if it is loaded; forget them anyway.
 */
void
tego_mirror_xact_end(bool commit)
{
	ListCell   *lc;
	MirrorDb   *db;

	if (pending == NIL || mirror == NULL)
	{
		pending = NIL;
		return;
	}
	if (commit)
	{
		LWLockAcquire(mirror->lock, LW_EXCLUSIVE);
		db = find_db(false);
		if (db && db->loaded && !db->overflow)
		{
			if (db->relid != pending_relid)
				db->loaded = false; /* the extension was created again */
			else
				foreach(lc, pending)
				{
					MirrorChange *c = lfirst(lc);

					if (!put_entry(c->name, c->revision, c->row))
						db->overflow = true;
					db->epoch = Max(db->epoch, c->revision);
				}
		}
		else if (db && db->loaded)
			foreach(lc, pending)
				db->epoch = Max(db->epoch, ((MirrorChange *) lfirst(lc))->revision);
		LWLockRelease(mirror->lock);
	}
	pending = NIL;				/* the memory goes with the transaction */
}

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------
 */

/*
 * Make sure this database's mirror is loaded and current.  Returns false
 * when reads must go to the table (a standby, no extension).
 */
static bool
ensure_loaded(void)
{
	Oid			relid = plugins_relid();
	MirrorDb   *db;
	bool		ok;
	uint64		i;
	int64		epoch;
	bool		isnull;
	bool		overflow = false;
	uint64		nrows;
	char	  **names;
	int64	   *revisions;
	bytea	  **rows;

	if (mirror == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tego shared state is not available"),
				 errhint("Add tego to shared_preload_libraries and restart the server.")));
	if (!OidIsValid(relid) || RecoveryInProgress())
		return false;

	LWLockAcquire(mirror->lock, LW_SHARED);
	db = find_db(false);
	ok = db && db->loaded && db->relid == relid;
	LWLockRelease(mirror->lock);
	if (ok)
		return true;

	/* NB: see the header comment: no registry change commits meanwhile */
	tego_events_lock();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	tego_exec(&plan_epoch, "SELECT pg_catalog.max(seq) FROM tego.events",
			  0, NULL, NULL, NULL, TEGO_SNAPSHOT_LATEST, 1);
	epoch = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull)
		epoch = 0;
	tego_exec(&plan_load,
			  "SELECT p.name, COALESCE(p.revision, 0), p FROM tego.plugins p",
			  0, NULL, NULL, NULL, TEGO_SNAPSHOT_LATEST, 0);

	/* NB: everything that may look up catalogs happens before the LWLock */
	nrows = SPI_processed;
	names = palloc(sizeof(char *) * Max(nrows, 1));
	revisions = palloc(sizeof(int64) * Max(nrows, 1));
	rows = palloc(sizeof(bytea *) * Max(nrows, 1));
	for (i = 0; i < nrows; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		names[i] = SPI_getvalue(tup, desc, 1);
		revisions[i] = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		rows[i] = OidSendFunctionCall(F_RECORD_SEND,
									  SPI_getbinval(tup, desc, 3, &isnull));
	}

	LWLockAcquire(mirror->lock, LW_EXCLUSIVE);
	db = find_db(true);
	for (i = 0; i < (uint64) mirror->max_plugins; i++)
		if (mirror->entries[i].database_oid == MyDatabaseId)
			free_entry(&mirror->entries[i]);
	for (i = 0; i < nrows && !overflow; i++)
		if (!put_entry(names[i], revisions[i], rows[i]))
			overflow = true;
	db->relid = relid;
	db->epoch = Max(db->epoch, epoch);
	db->overflow = overflow;
	db->loaded = true;
	LWLockRelease(mirror->lock);
	SPI_finish();
	tego_events_unlock();
	return true;
}

/*
 * A row of tego.plugins from its binary form.  NB: one record_recv FmgrInfo
 * per backend, so that it keeps its per-type cache (fn_extra) across calls.
 */
static Datum
row_from_bytes(const char *bytes, int len, Oid rowtype)
{
	static FmgrInfo recv;
	static bool ready = false;
	StringInfoData buf;

	if (!ready)
	{
		fmgr_info_cxt(F_RECORD_RECV, &recv, TopMemoryContext);
		ready = true;
	}
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, bytes, len);
	return ReceiveFunctionCall(&recv, &buf, rowtype, -1);
}

/*
 * This backend's rows decoded from the mirror, by entry slot: a lookup of
 * an entry not written since returns a copy of the decoded row instead of
 * decoding it again.  (version identifies one write of one entry.)
 */
typedef struct RowCacheEntry
{
	int			slot;			/* hash key */
	uint64		version;
	Oid			rowtype;
	HeapTupleHeader row;		/* in row_cache_context */
} RowCacheEntry;

static HTAB *row_cache = NULL;
static MemoryContext row_cache_context = NULL;

/*
 * The row of plugin name from the mirror.  Returns false when the caller
 * must read the table instead; *found tells whether the plugin exists.
 */
bool
tego_mirror_get(const char *name, Oid rowtype, Datum *row, bool *found)
{
	char	   *copy = NULL;
	int			len = 0;
	bool		use_table = false;
	bool		exists = false;
	MirrorDb   *db;
	MirrorEntry *e;
	RowCacheEntry *ce = NULL;
	int			slot = -1;
	uint64		version = 0;

	if (!ensure_loaded())
		return false;
	if (row_cache == NULL)
	{
		HASHCTL		ctl;

		row_cache_context = AllocSetContextCreate(TopMemoryContext,
												  "tego mirror rows",
												  ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = sizeof(int);
		ctl.entrysize = sizeof(RowCacheEntry);
		ctl.hcxt = row_cache_context;
		row_cache = hash_create("tego mirror rows", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	LWLockAcquire(mirror->lock, LW_SHARED);
	db = find_db(false);
	if (db == NULL || !db->loaded || db->overflow)
		use_table = true;
	else if ((e = find_entry(name)) != NULL)
	{
		if (e->len < 0)
			use_table = true;
		else
		{
			exists = true;
			slot = (int) (e - mirror->entries);
			version = e->version;
			ce = hash_search(row_cache, &slot, HASH_FIND, NULL);
			if (ce == NULL || ce->row == NULL || ce->version != version ||
				ce->rowtype != rowtype)
			{
				ce = NULL;
				len = e->len;
				copy = palloc(len);
				memcpy(copy, e->row, len);
			}
		}
	}
	LWLockRelease(mirror->lock);
	if (use_table)
		return false;
	*found = exists;
	if (!exists)
		return true;
	if (ce == NULL)
	{
		Datum		d = row_from_bytes(copy, len, rowtype);
		HeapTupleHeader th = DatumGetHeapTupleHeader(d);
		bool		had;

		ce = hash_search(row_cache, &slot, HASH_ENTER, &had);
		if (had && ce->row)
			pfree(ce->row);
		/* NB: matches nothing until filled, should the allocation fail */
		ce->row = NULL;
		ce->row = MemoryContextAlloc(row_cache_context,
									 HeapTupleHeaderGetDatumLength(th));
		memcpy(ce->row, th, HeapTupleHeaderGetDatumLength(th));
		ce->version = version;
		ce->rowtype = rowtype;
		*row = d;
		return true;
	}
	{
		Size		size = HeapTupleHeaderGetDatumLength(ce->row);
		HeapTupleHeader th = palloc(size);

		memcpy(th, ce->row, size);
		*row = PointerGetDatum(th);
	}
	return true;
}

/*
 * Every row of this database's mirror, as whole-row Datums (in no order).
 * Returns false when the caller must read the table instead.
 */
bool
tego_mirror_list(Oid rowtype, Datum **rows, int *nrows)
{
	MirrorDb   *db;
	char	  **copies;
	int		   *lens;
	int			n = 0;
	int			i;
	bool		use_table = false;

	if (!ensure_loaded())
		return false;
	copies = palloc(sizeof(char *) * Max(mirror->max_plugins, 1));
	lens = palloc(sizeof(int) * Max(mirror->max_plugins, 1));
	LWLockAcquire(mirror->lock, LW_SHARED);
	db = find_db(false);
	if (db == NULL || !db->loaded || db->overflow)
		use_table = true;
	for (i = 0; i < mirror->max_plugins && !use_table; i++)
	{
		MirrorEntry *e = &mirror->entries[i];

		if (e->database_oid != MyDatabaseId)
			continue;
		if (e->len < 0)
		{
			use_table = true;
			break;
		}
		copies[n] = palloc(e->len);
		memcpy(copies[n], e->row, e->len);
		lens[n++] = e->len;
	}
	LWLockRelease(mirror->lock);
	if (use_table)
		return false;
	*rows = palloc(sizeof(Datum) * Max(n, 1));
	for (i = 0; i < n; i++)
		(*rows)[i] = row_from_bytes(copies[i], lens[i], rowtype);
	*nrows = n;
	return true;
}

/*
 * tego.registry_epoch() RETURNS bigint: moves with every committed change
 * of the registry (the seq of the latest one); never goes back, and may
 * jump forward when the mirror is loaded after a restart (it is then the
 * latest seq of the event log).
 */
Datum
registry_epoch(PG_FUNCTION_ARGS)
{
	MirrorDb   *db;
	int64		epoch = 0;

	if (!ensure_loaded())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the registry mirror is not available on a standby")));
	LWLockAcquire(mirror->lock, LW_SHARED);
	db = find_db(false);
	if (db)
		epoch = db->epoch;
	LWLockRelease(mirror->lock);
	PG_RETURN_INT64(epoch);
}
