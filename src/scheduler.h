/*-------------------------------------------------------------------------
 *
 * scheduler.h
 *	  Declarations shared by the scheduler worker, the job runner, the
 *	  shared-memory state and the SQL-callable job helpers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TEGO_SCHEDULER_H
#define TEGO_SCHEDULER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "pgtime.h"
#include "storage/dsm.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#include "cron.h"

/* What a job worker is doing, as the scheduler sees it. */
typedef enum TegoPoolState
{
	TEGO_POOL_FREE = 0,			/* slot unused */
	TEGO_POOL_IDLE,				/* connected, waiting for a run */
	TEGO_POOL_ASSIGNED,			/* handed a run, not yet taken */
	TEGO_POOL_BUSY				/* running a run */
} TegoPoolState;

/*
 * A job worker that stays connected between runs, so that a job does not
 * pay for a new backend every time.  It serves one database and one role.
 */
typedef struct TegoPoolSlot
{
	TegoPoolState state;
	pid_t		pid;
	pid_t		owner;			/* the scheduler that may hand it runs */
	Latch	   *latch;
	Oid			database_oid;
	Oid			role_oid;
	dsm_handle	assigned;		/* the run handed to it */
} TegoPoolSlot;

/* State every backend can see (exists only when tego is preloaded). */
typedef struct TegoShared
{
	LWLock	   *lock;			/* protects the fields below */
	pid_t		scheduler_pid;	/* 0 when no scheduler runs */
	Latch	   *scheduler_latch;
	TimestampTz scheduler_started;
	uint64		wakeups;		/* times the scheduler was asked to wake */
	int			pool_size;
	TegoPoolSlot pool[FLEXIBLE_ARRAY_MEMBER];
} TegoShared;

/* A job run handed to a runner worker, in a DSM segment of its own. */
typedef enum TegoRunStatus
{
	TEGO_RUN_STARTING = 0,
	TEGO_RUN_RUNNING,
	TEGO_RUN_SUCCEEDED,
	TEGO_RUN_FAILED,
	TEGO_RUN_TIMED_OUT
} TegoRunStatus;

#define TEGO_RUN_MESSAGE_BYTES	1024

typedef struct TegoRunSlot
{
	int64		run_id;
	Oid			database_oid;
	Oid			role_oid;
	int			timeout_ms;		/* statement_timeout; 0 = none */
	TimestampTz start_at;		/* run the command at this time; 0 = at once */
	volatile TegoRunStatus status;
	volatile bool done;			/* set last, once the outcome is written */
	TimestampTz started_at;
	TimestampTz finished_at;
	char		message[TEGO_RUN_MESSAGE_BYTES];
	char		command[FLEXIBLE_ARRAY_MEMBER];
} TegoRunSlot;

/* settings (tego.c) */
extern char *tego_database;
extern int	tego_max_running_jobs;
extern int	tego_job_run_retention;
extern bool tego_allow_superuser_jobs;
extern bool tego_enable_scheduler;

/* How long an idle job worker waits for another run before it exits. */
#define TEGO_POOL_IDLE_MS	(60 * 1000)

/* shmem.c */
extern TegoShared *tego_shared;
extern void tego_shmem_init(void);
extern void tego_wake_scheduler_at_commit(void);

/* jobs.c */
extern int64 tego_timestamp_to_unix(TimestampTz t);
extern TimestampTz tego_unix_to_timestamp(int64 secs);
extern long tego_tz_offset(int64_t utc_seconds, void *arg);
extern pg_tz *tego_lookup_timezone(const char *name, bool missing_ok);

/* scheduler.c, job_runner.c */
extern void tego_register_scheduler(void);
extern PGDLLEXPORT void tego_scheduler_main(Datum main_arg);
extern PGDLLEXPORT void tego_job_runner_main(Datum main_arg);

#endif							/* TEGO_SCHEDULER_H */
