/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  tego's shared memory: where the scheduler can be found, so that a
 *	  backend whose transaction changed jobs can wake it at commit; the
 *	  job worker pool; the highest event seq of each database; the app
 *	  store (apps.c).
 *
 *	  The segment is reserved only when tego is in shared_preload_libraries;
 *	  without it, tego_shared stays NULL and there is no scheduler to wake.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "apps.h"
#include "mirror.h"
#include "scheduler.h"

TegoShared *tego_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Set when this transaction should wake the scheduler if it commits. */
static bool wake_at_commit = false;

static void tego_shmem_request(void);
static void tego_shmem_startup(void);
static void wake_xact_callback(XactEvent event, void *arg);

/* Install the shared-memory hooks (called from _PG_init at preload). */
void
tego_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = tego_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tego_shmem_startup;
}

/* Size of the shared state: one pool slot per possible background worker. */
static Size
tego_shmem_size(void)
{
	return MAXALIGN(add_size(offsetof(TegoShared, pool),
							 mul_size(max_worker_processes,
									  sizeof(TegoPoolSlot))));
}

/* Ask for our share of shared memory and one named LWLock. */
static void
tego_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(tego_shmem_size());
	RequestAddinShmemSpace(tego_apps_shmem_size());
	RequestAddinShmemSpace(tego_mirror_shmem_size());
	/* 0: scheduler and job workers; 1: the app store; 2: the mirror */
	RequestNamedLWLockTranche("tego", 3);
}

/* Attach to (or create) the shared state. */
static void
tego_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	tego_shared = ShmemInitStruct("tego", tego_shmem_size(), &found);
	if (!found)
	{
		memset(tego_shared, 0, tego_shmem_size());
		tego_shared->lock = &(GetNamedLWLockTranche("tego"))->lock;
		tego_shared->pool_size = max_worker_processes;
		for (int i = 0; i < TEGO_EVENTS_CVS; i++)
			ConditionVariableInit(&tego_shared->events_committed[i]);
	}
	tego_apps_shmem_init(&(GetNamedLWLockTranche("tego"))[1].lock);
	tego_mirror_shmem_init(&(GetNamedLWLockTranche("tego"))[2].lock);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * A dynamic background worker of this library that connects to a database
 * and is never restarted, running function; the caller names it and sets
 * its argument.
 */
void
tego_dynamic_worker(BackgroundWorker *worker, const char *function)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_ConsistentState;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "tego");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
}

/*
 * Pin the settings that a worker of ours connected as a superuser depends
 * on (the scheduler, the notifier).  NB: such a worker is a superuser
 * session in a database that an application role may own, and ALTER
 * DATABASE ... SET applies to every session there: no name may resolve
 * through a schema that role can create objects in (its operators and
 * functions would run as superuser), and no timeout, read-only default or
 * role it sets may stop the worker's work for everyone.
 */
void
tego_pin_worker_settings(void)
{
	static const char *const pinned[][2] = {
		{"search_path", "pg_catalog, pg_temp"},
		{"role", "none"},
		{"statement_timeout", "0"},
		{"lock_timeout", "0"},
		{"idle_in_transaction_session_timeout", "0"},
		{"default_transaction_read_only", "off"},
		{"default_transaction_isolation", "read committed"},
		{"DateStyle", "ISO, MDY"},
		{"IntervalStyle", "postgres"},
	};
	int			i;

	for (i = 0; i < lengthof(pinned); i++)
		SetConfigOption(pinned[i][0], pinned[i][1], PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * Wake the scheduler when the current transaction commits (so it sees the
 * change).  Does nothing when no scheduler can exist.
 */
void
tego_wake_scheduler_at_commit(void)
{
	static bool registered = false;

	if (tego_shared == NULL)
		return;
	if (!registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		registered = true;
	}
	wake_at_commit = true;
}

/* Set the scheduler's latch after commit; forget the request on abort. */
static void
wake_xact_callback(XactEvent event, void *arg)
{
	if (!wake_at_commit)
		return;
	if (event == XACT_EVENT_COMMIT)
	{
		Latch	   *latch = NULL;

		LWLockAcquire(tego_shared->lock, LW_EXCLUSIVE);
		if (tego_shared->scheduler_pid != 0)
		{
			latch = tego_shared->scheduler_latch;
			tego_shared->wakeups++;
		}
		LWLockRelease(tego_shared->lock);
		if (latch)
			SetLatch(latch);
		wake_at_commit = false;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
		wake_at_commit = false;
}

PG_FUNCTION_INFO_V1(shmem_usage);

/*
 * tego._shmem_usage() RETURNS record: what tego.status() reports from shared
 * memory (all NULL but preloaded when tego is not preloaded).
 */
Datum
shmem_usage(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[12];
	bool		nulls[12] = {0};
	int			i;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = BoolGetDatum(tego_shared != NULL);
	if (tego_shared == NULL)
	{
		for (i = 1; i < 12; i++)
			nulls[i] = true;
	}
	else
	{
		int			pool_used = 0;
		int			seq_used = 0;
		int			apps,
					max_apps,
					notifiers,
					max_notifiers;
		pid_t		pid;
		TimestampTz started;

		LWLockAcquire(tego_shared->lock, LW_SHARED);
		pid = tego_shared->scheduler_pid;
		started = tego_shared->scheduler_started;
		for (i = 0; i < tego_shared->pool_size; i++)
			if (tego_shared->pool[i].state != TEGO_POOL_FREE)
				pool_used++;
		LWLockRelease(tego_shared->lock);
		/* NB: read without the NOTIFY lock: a count, not a value to act on */
		for (i = 0; i < TEGO_SEQ_CACHE_SIZE; i++)
			if (OidIsValid(tego_shared->seq_cache[i].database_oid))
				seq_used++;
		tego_apps_usage(&apps, &max_apps, &notifiers, &max_notifiers);

		values[1] = Int32GetDatum((int32) pid);
		nulls[1] = (pid == 0);
		values[2] = TimestampTzGetDatum(started);
		nulls[2] = (pid == 0);
		values[3] = Int32GetDatum(apps);
		values[4] = Int32GetDatum(max_apps);
		values[5] = Int32GetDatum(tego_max_message_bytes);
		values[6] = Int32GetDatum(notifiers);
		values[7] = Int32GetDatum(max_notifiers);
		values[8] = Int32GetDatum(pool_used);
		values[9] = Int32GetDatum(tego_shared->pool_size);
		values[10] = Int32GetDatum(seq_used);
		values[11] = Int32GetDatum(TEGO_SEQ_CACHE_SIZE);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
