/*-------------------------------------------------------------------------
 *
 * job_runner.c
 *	  The dynamic background worker that runs one SQL job.
 *
 *	  The scheduler hands it a DSM segment with a run group: the runs of one
 *	  database and role due at the same time (see TegoRunGroup).  The worker
 *	  connects to the database, waits for the group's time (it is started a
 *	  little ahead), then takes the group's runs one at a time until none
 *	  is left.  Each run's command runs in one transaction as the job's
 *	  role, cancelled like a statement_timeout once max_runtime passes; its
 *	  outcome goes back into the segment, and the scheduler records it.
 *	  Then the worker stays in the pool (shared memory) for the next group
 *	  of the same database and role, so that frequent jobs do not pay for a
 *	  new backend each time; it exits after a minute without one.
 *
 *	  NB: a group gets as many workers as it has runs, but they do not all
 *	  start at its time: as many as the machine has cores do, and a worker
 *	  whose run is still going a millisecond after it took it calls
 *	  TEGO_GROUP_HELPERS more.  Runs that take little time are then run back to back by a few
 *	  warm workers, instead of by a hundred processes waking at once on a
 *	  few cores; runs that take long (waiting on a lock, say) still all
 *	  start within a few milliseconds.  A worker never called joins
 *	  TEGO_GROUP_FALLBACK_MS after the group's time, or goes back to the
 *	  pool if every run is taken by then.
 *
 *	  NB: the worker connects as the job's role, so that the session is
 *	  that role's (session_user, current_user, every privilege check, the
 *	  role's own settings) and PostgreSQL checks the connection as it does
 *	  a login's: the role must have LOGIN, and CONNECT on the database.  A
 *	  worker serves only runs of the role it connected as; between two runs
 *	  the session is discarded as DISCARD ALL does, so that no run sees
 *	  what an earlier one left (SET ROLE, settings, temporary tables,
 *	  advisory locks, LISTEN).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/discard.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/syncrep.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "port/atomics.h"
#include "storage/lwlock.h"

#include "leader.h"
#include "scheduler.h"

/* Set when the job's max_runtime has passed. */
static volatile sig_atomic_t runtime_exceeded = false;

/*
 * Timeout handler: cancel the running statement, as statement_timeout
 * does.  NB: a background worker has no STATEMENT_TIMEOUT handler (only a
 * client backend's main loop sets one up), hence a timeout of our own.
 */
static void
max_runtime_handler(void)
{
	runtime_exceeded = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/* Copy an error's message into the slot, and classify it. */
static void
record_error(TegoRunSlot *slot, ErrorData *edata)
{
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && runtime_exceeded)
	{
		slot->status = TEGO_RUN_TIMED_OUT;
		snprintf(slot->message, TEGO_RUN_MESSAGE_BYTES,
				 "57014: canceling the job after its max_runtime of %d ms",
				 slot->timeout_ms);
		return;
	}
	slot->status = (edata->sqlerrcode == ERRCODE_QUERY_CANCELED) ?
		TEGO_RUN_TIMED_OUT : TEGO_RUN_FAILED;
	snprintf(slot->message, TEGO_RUN_MESSAGE_BYTES, "%s: %s",
			 unpack_sql_state(edata->sqlerrcode),
			 edata->message ? edata->message : "unknown error");
}

/* The max_runtime timer, registered once per worker. */
static TimeoutId runtime_timeout = MAX_TIMEOUTS;

/* This worker's slot in the pool, or -1. */
static int	pool_index = -1;

/*
 * Group commit (tego.job_group_commit): the end of the WAL of the runs
 * committed without waiting for its flush, not yet flushed by us.
 */
static XLogRecPtr unflushed_end = InvalidXLogRecPtr;

/*
 * The runs of pending_group this worker has run but not yet reported (their
 * indexes), until finish_runs(); also finished when the worker exits.
 */
static TegoRunGroup *pending_group = NULL;
static uint32 *pending_runs = NULL;
static int	npending = 0;

/*
 * Run one run of group: run the command in one transaction, write the
 * outcome, then discard what the run left in the session.
 */
static void
run_job(TegoRunGroup *group, TegoRunSlot *slot, MemoryContext job_context)
{
	const char *command = TEGO_RUN_COMMAND(group, slot);
	bool		deferred;

	/*
	 * Fencing (tego.leader_check): a run handed over before this server's
	 * leadership lapsed is not started after it.
	 */
	if (!tego_leader_confirmed(NULL))
	{
		strlcpy(slot->message,
				"not run: tego cannot confirm that this server is the leader",
				TEGO_RUN_MESSAGE_BYTES);
		slot->status = TEGO_RUN_FAILED;
		slot->finished_at = GetCurrentTimestamp();
		return;
	}

	slot->started_at = GetCurrentTimestamp();
	slot->status = TEGO_RUN_RUNNING;
	runtime_exceeded = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();

	/*
	 * Group commit: the commit does not wait for the WAL flush; run_group()
	 * flushes once for the runs it took back to back, before any of them
	 * counts as finished.  For this transaction only, and only when the
	 * session (the role's settings) would have waited: a command that sets
	 * synchronous_commit itself gets what it asks for.
	 */
	deferred = tego_job_group_commit && synchronous_commit > SYNCHRONOUS_COMMIT_OFF;
	if (deferred)
		(void) set_config_option("synchronous_commit", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	if (slot->timeout_ms > 0)
	{
		if (runtime_timeout == MAX_TIMEOUTS)
			runtime_timeout = RegisterTimeout(USER_TIMEOUT, max_runtime_handler);
		enable_timeout_after(runtime_timeout, slot->timeout_ms);
	}
	pgstat_report_activity(STATE_RUNNING, command);

	PG_TRY();
	{
		int			rc;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		rc = SPI_execute(command, false, 0);
		if (rc < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not run the job: %s", SPI_result_code_string(rc))));
		snprintf(slot->message, TEGO_RUN_MESSAGE_BYTES, "%s %llu",
				 SPI_result_code_string(rc), (unsigned long long) SPI_processed);
		SPI_finish();
		PopActiveSnapshot();
		if (slot->timeout_ms > 0)
			disable_timeout(runtime_timeout, false);
		CommitTransactionCommand();
		if (deferred && XactLastCommitEnd > unflushed_end)
			unflushed_end = XactLastCommitEnd;
		slot->status = TEGO_RUN_SUCCEEDED;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		if (slot->timeout_ms > 0)
			disable_timeout(runtime_timeout, false);
		MemoryContextSwitchTo(job_context);
		edata = CopyErrorData();
		FlushErrorState();
		record_error(slot, edata);
		/* report it in the server log too, as any failed statement would be */
		ereport(LOG,
				(errmsg("tego job run %lld failed: %s", (long long) slot->run_id,
						edata->message)));
		AbortCurrentTransaction();
		QueryCancelPending = false;
	}
	PG_END_TRY();

	slot->finished_at = GetCurrentTimestamp();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextReset(job_context);

	/* NB: the next run (of the same role) must not inherit this one's state */
	StartTransactionCommand();
	{
		DiscardStmt stmt;

		stmt.type = T_DiscardStmt;
		stmt.target = DISCARD_ALL;
		DiscardCommand(&stmt, true);
	}
	CommitTransactionCommand();
}

/*
 * The runs this worker ran and has not reported (pending_runs) are made
 * durable as a synchronous commit would have made them: the WAL flushed,
 * and synchronous standbys waited for as the session's synchronous_commit
 * asks (not when the worker is exiting: it would wait for nothing).  Then
 * they count as finished, for the scheduler to record.
 */
static void
finish_runs(bool exiting)
{
	int			i;

	if (!XLogRecPtrIsInvalid(unflushed_end))
	{
		XLogFlush(unflushed_end);
		if (!exiting)
			SyncRepWaitForLSN(unflushed_end, true);
		unflushed_end = InvalidXLogRecPtr;
	}
	pg_write_barrier();
	for (i = 0; i < npending; i++)
		pending_group->runs[pending_runs[i]].done = true;
	npending = 0;
}

/*
 * The worker exits (stopped, a run past its max_runtime): the runs it has
 * committed still count as finished.  NB: before_shmem_exit, so the
 * group's segment is still attached.
 */
static void
finish_runs_at_exit(int code, Datum arg)
{
	if (pending_group != NULL && npending > 0)
		finish_runs(true);
}

/* Wake the scheduler, so that it records what finished. */
static void
wake_scheduler(void)
{
	Latch	   *latch = NULL;

	LWLockAcquire(tego_shared->lock, LW_SHARED);
	if (tego_shared->scheduler_pid != 0)
		latch = tego_shared->scheduler_latch;
	LWLockRelease(tego_shared->lock);
	if (latch)
		SetLatch(latch);
}

/* The group this worker is taking runs of, for help_handler(). */
static TegoRunGroup *volatile helping_group = NULL;

/* The help timer, registered once per worker. */
static TimeoutId help_timeout = MAX_TIMEOUTS;

/* Let the next worker of group that waits to be called take runs too. */
static void
call_worker(TegoRunGroup *group)
{
	uint32		c = pg_atomic_fetch_add_u32(&group->called, 1);

	if (c < (uint32) group->nworkers)
	{
		Latch	   *latch = TEGO_GROUP_LATCHES(group)[c];

		if (latch)
			SetLatch(latch);
	}
}

/*
 * Timeout handler: this worker's run is still going TEGO_GROUP_HELP_MS
 * after it took it, and runs are waiting: call TEGO_GROUP_HELPERS more
 * workers.  Runs in the SIGALRM handler: atomics and SetLatch only.
 */
static void
help_handler(void)
{
	TegoRunGroup *group = helping_group;

	if (group)
	{
		int			i;

		for (i = 0; i < TEGO_GROUP_HELPERS; i++)
			if (pg_atomic_read_u32(&group->next_run) < (uint32) group->nruns)
				call_worker(group);
	}
}

/*
 * Wait for the group's time (the first workers) or to be called (the
 * others), then run the group's runs that no other worker has taken, one
 * after another.  index: this worker's place in the order of attaching.
 */
static void
run_group(TegoRunGroup *group, uint32 index, MemoryContext job_context)
{
	uint32		next;

	/* NB: publish the latch before looking whether we were called */
	TEGO_GROUP_LATCHES(group)[index] = MyLatch;
	pg_memory_barrier();

	while (group->start_at != 0)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz until;

		if (pg_atomic_read_u32(&group->next_run) >= (uint32) group->nruns)
			return;				/* every run is taken: nothing to do */
		if (index < pg_atomic_read_u32(&group->called))
			until = group->start_at;
		else
			until = TimestampTzPlusMilliseconds(group->start_at,
												TEGO_GROUP_FALLBACK_MS);
		if (now >= until)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 (long) ((until - now + 999) / 1000), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	if (help_timeout == MAX_TIMEOUTS)
		help_timeout = RegisterTimeout(USER_TIMEOUT, help_handler);
	pending_runs = MemoryContextAlloc(TopMemoryContext,
									  group->nruns * sizeof(uint32));
	npending = 0;
	pending_group = group;
	helping_group = group;
	while ((next = pg_atomic_fetch_add_u32(&group->next_run, 1)) <
		   (uint32) group->nruns)
	{
		TegoRunSlot *slot = &group->runs[next];

		enable_timeout_after(help_timeout, TEGO_GROUP_HELP_MS);
		slot->worker_pid = MyProcPid;
		pg_write_barrier();
		run_job(group, slot, job_context);
		pending_runs[npending++] = next;

		/*
		 * Past the group's first moments (runs that take long), each run is
		 * made durable and reported on its own.
		 */
		if (group->start_at == 0 ||
			GetCurrentTimestamp() - group->start_at > TEGO_GROUP_BURST_USECS)
		{
			finish_runs(false);
			wake_scheduler();
		}
	}
	disable_timeout(help_timeout, false);
	helping_group = NULL;
	finish_runs(false);
	pending_group = NULL;
	pfree(pending_runs);
	pending_runs = NULL;
	wake_scheduler();
}

/*
 * Offer this worker for the next group of (database, role) and wait for
 * one.  Returns the handle of the group handed over, or DSM_HANDLE_INVALID when
 * none came within TEGO_POOL_IDLE_MS (or no pool slot is free).
 */
static dsm_handle
wait_for_run(Oid database_oid, Oid role_oid, pid_t owner)
{
	TimestampTz give_up = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  TEGO_POOL_IDLE_MS);
	dsm_handle	run = DSM_HANDLE_INVALID;
	int			i;

	LWLockAcquire(tego_shared->lock, LW_EXCLUSIVE);
	if (pool_index < 0)
	{
		int			idle = 0;

		/* at most tego.max_running_jobs idle workers per scheduler */
		for (i = 0; i < tego_shared->pool_size; i++)
			if (tego_shared->pool[i].state == TEGO_POOL_IDLE &&
				tego_shared->pool[i].owner == owner)
				idle++;
		for (i = 0; i < tego_shared->pool_size && pool_index < 0 &&
			 idle < tego_max_running_jobs; i++)
			if (tego_shared->pool[i].state == TEGO_POOL_FREE)
				pool_index = i;
	}
	if (pool_index >= 0)
	{
		TegoPoolSlot *ps = &tego_shared->pool[pool_index];

		ps->state = TEGO_POOL_IDLE;
		ps->pid = MyProcPid;
		ps->owner = owner;
		ps->latch = MyLatch;
		ps->database_oid = database_oid;
		ps->role_oid = role_oid;
		ps->assigned = DSM_HANDLE_INVALID;
	}
	LWLockRelease(tego_shared->lock);
	if (pool_index < 0)
		return DSM_HANDLE_INVALID;

	for (;;)
	{
		TegoPoolSlot *ps = &tego_shared->pool[pool_index];
		long		ms;

		LWLockAcquire(tego_shared->lock, LW_EXCLUSIVE);
		if (ps->pid != MyProcPid || ps->state == TEGO_POOL_FREE)
			pool_index = -1;	/* sent away by the scheduler */
		else if (ps->state == TEGO_POOL_ASSIGNED)
		{
			run = ps->assigned;
			ps->state = TEGO_POOL_BUSY;
		}
		else if (GetCurrentTimestamp() >= give_up)
		{
			ps->state = TEGO_POOL_FREE;
			ps->pid = 0;
			pool_index = -1;
		}
		LWLockRelease(tego_shared->lock);
		if (run != DSM_HANDLE_INVALID || pool_index < 0)
			return run;

		ms = (long) ((give_up - GetCurrentTimestamp() + 999) / 1000);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(ms, 1), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Leave the pool when the worker exits. */
static void
leave_pool(int code, Datum arg)
{
	if (pool_index < 0 || tego_shared == NULL)
		return;
	LWLockAcquire(tego_shared->lock, LW_EXCLUSIVE);
	if (tego_shared->pool[pool_index].pid == MyProcPid)
	{
		tego_shared->pool[pool_index].state = TEGO_POOL_FREE;
		tego_shared->pool[pool_index].pid = 0;
	}
	LWLockRelease(tego_shared->lock);
	pool_index = -1;
}

/*
 * Entry point of a "tego job" background worker: run the group it was
 * started for, then the groups the scheduler hands it, until it has waited
 * TEGO_POOL_IDLE_MS for one in vain.
 */
void
tego_job_runner_main(Datum main_arg)
{
	dsm_handle	handle = DatumGetUInt32(main_arg);
	MemoryContext job_context;
	Oid			database_oid = InvalidOid;
	pid_t		owner;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	owner = MyBgworkerEntry->bgw_notify_pid;
	job_context = AllocSetContextCreate(TopMemoryContext, "tego job",
										ALLOCSET_DEFAULT_SIZES);
	before_shmem_exit(leave_pool, (Datum) 0);
	before_shmem_exit(finish_runs_at_exit, (Datum) 0);

	while (handle != DSM_HANDLE_INVALID)
	{
		dsm_segment *seg = dsm_attach(handle);
		TegoRunGroup *group;
		uint32		index;
		Oid			role_oid;

		if (seg == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("tego job worker could not attach to its job")));
		group = dsm_segment_address(seg);
		index = pg_atomic_fetch_add_u32(&group->joined, 1);

		/* settings reloaded meanwhile apply from this group on */
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (!OidIsValid(database_oid))
		{
			database_oid = group->database_oid;
			BackgroundWorkerInitializeConnectionByOid(database_oid,
													  group->role_oid, 0);
			pgstat_report_appname("tego job");
		}

		run_group(group, index, job_context);
		role_oid = group->role_oid;

		/*
		 * NB: detach only once the next group has come (or none will):
		 * unmapping costs the CPU a moment that, right after the group's
		 * time, belongs to the runs still starting.
		 */
		handle = wait_for_run(database_oid, role_oid, owner);
		dsm_detach(seg);
	}
	proc_exit(0);
}
