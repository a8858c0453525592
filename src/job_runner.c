/*-------------------------------------------------------------------------
 *
 * job_runner.c
 *	  The dynamic background worker that runs one SQL job.
 *
 *	  The scheduler hands it a DSM segment with the run: database, role,
 *	  command and time limit.  The worker connects to the database, takes
 *	  the job's role for the rest of its life, waits for the job's time
 *	  (it is started a little ahead), runs the command in one transaction,
 *	  cancelled like a statement_timeout once max_runtime passes, and writes
 *	  the outcome back into the segment, which the scheduler records once
 *	  the worker has exited.
 *
 *	  NB: PostgreSQL 15 refuses background-worker connections as roles
 *	  without LOGIN, so the worker connects as the bootstrap superuser and
 *	  switches to the job's role with SECURITY_LOCAL_USERID_CHANGE, the
 *	  same mechanism SECURITY DEFINER functions use: the job cannot SET
 *	  ROLE or SET SESSION AUTHORIZATION its way back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

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

/* Entry point of a "tego job" background worker. */
void
tego_job_runner_main(Datum main_arg)
{
	dsm_segment *seg;
	TegoRunSlot *slot;
	MemoryContext job_context;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tego job worker could not attach to its job")));
	slot = dsm_segment_address(seg);

	BackgroundWorkerInitializeConnectionByOid(slot->database_oid,
											  BOOTSTRAP_SUPERUSERID, 0);
	pgstat_report_appname("tego job");
	job_context = AllocSetContextCreate(TopMemoryContext, "tego job",
										ALLOCSET_DEFAULT_SIZES);

	SetUserIdAndSecContext(slot->role_oid, SECURITY_LOCAL_USERID_CHANGE);

	/* started ahead of time: wait for the job's scheduled time */
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		ms;

		if (slot->start_at == 0 || now >= slot->start_at)
			break;
		ms = (long) ((slot->start_at - now + 999) / 1000);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	slot->started_at = GetCurrentTimestamp();
	slot->status = TEGO_RUN_RUNNING;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (slot->timeout_ms > 0)
	{
		TimeoutId	id = RegisterTimeout(USER_TIMEOUT, max_runtime_handler);

		enable_timeout_after(id, slot->timeout_ms);
	}
	pgstat_report_activity(STATE_RUNNING, slot->command);

	PG_TRY();
	{
		int			rc;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		rc = SPI_execute(slot->command, false, 0);
		if (rc < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not run the job: %s", SPI_result_code_string(rc))));
		snprintf(slot->message, TEGO_RUN_MESSAGE_BYTES, "%s %llu",
				 SPI_result_code_string(rc), (unsigned long long) SPI_processed);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		slot->status = TEGO_RUN_SUCCEEDED;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(job_context);
		edata = CopyErrorData();
		FlushErrorState();
		record_error(slot, edata);
		/* report it in the server log too, as any failed statement would be */
		ereport(LOG,
				(errmsg("tego job run %lld failed: %s", (long long) slot->run_id,
						edata->message)));
		AbortCurrentTransaction();
	}
	PG_END_TRY();

	slot->finished_at = GetCurrentTimestamp();
	pgstat_report_activity(STATE_IDLE, NULL);
	dsm_detach(seg);
	proc_exit(0);
}
