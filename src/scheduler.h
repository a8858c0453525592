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
#include "port/atomics.h"
#include "storage/condition_variable.h"
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

/*
 * The highest committed event seq of one database's tego.events, so that a
 * commit need not read it from the table.  NB: a database's entry is read
 * and written only while holding that database's event lock (see
 * events.c), and the array under TegoShared.lock, since commits in other
 * databases write it at the same time.  The key includes
 * the table's OID and relfilenode, so a new or truncated table is read
 * again.
 */
typedef struct TegoSeqCache
{
	Oid			database_oid;	/* InvalidOid: unused */
	Oid			relid;
	Oid			relfilenode;
	int64		last_seq;
	int64		reserved;		/* durable ceiling of asynchronous numbering */
} TegoSeqCache;

#define TEGO_SEQ_CACHE_SIZE		64

#define TEGO_EVENTS_CVS			16
#define TEGO_EVENTS_CV_FOR(dboid) \
	(&tego_shared->events_committed[(dboid) % TEGO_EVENTS_CVS])

/* Longest reason a leader check failed for (leader.c). */
#define TEGO_LEADER_PROBLEM_BYTES	256

/* State every backend can see (exists only when tego is preloaded). */
typedef struct TegoShared
{
	TegoSeqCache seq_cache[TEGO_SEQ_CACHE_SIZE];	/* see TegoSeqCache */
	int			seq_cache_next; /* entry to reuse when all are taken */
	/*
	 * Broadcast after each commit that added events, for tego.wait_events:
	 * one per group of databases (TEGO_EVENTS_CV_FOR), so that a commit
	 * wakes the waiters of its own database and few others.
	 */
	ConditionVariable events_committed[TEGO_EVENTS_CVS];
	LWLock	   *lock;			/* protects seq_cache and the fields below */
	pid_t		scheduler_pid;	/* 0 when no scheduler runs */
	Latch	   *scheduler_latch;
	TimestampTz scheduler_started;
	uint64		wakeups;		/* times the scheduler was asked to wake */
	/* the leader check (leader.c): last success, last attempt, its error */
	TimestampTz leader_confirmed_at;
	TimestampTz leader_checked_at;
	char		leader_problem[TEGO_LEADER_PROBLEM_BYTES];
	int			pool_size;
	TegoPoolSlot pool[FLEXIBLE_ARRAY_MEMBER];
} TegoShared;

/* The state of one run in a run group. */
typedef enum TegoRunStatus
{
	TEGO_RUN_STARTING = 0,		/* not taken by a worker yet */
	TEGO_RUN_RUNNING,
	TEGO_RUN_SUCCEEDED,
	TEGO_RUN_FAILED,
	TEGO_RUN_TIMED_OUT
} TegoRunStatus;

#define TEGO_RUN_MESSAGE_BYTES	1024

typedef struct TegoRunSlot
{
	int64		run_id;
	int			timeout_ms;		/* statement_timeout; 0 = none */
	Size		command;		/* offset of the command in the group */
	pid_t		worker_pid;		/* the worker that took the run; 0 = none */
	volatile TegoRunStatus status;
	volatile bool done;			/* set last, once the outcome is written */
	TimestampTz started_at;
	TimestampTz finished_at;
	char		message[TEGO_RUN_MESSAGE_BYTES];
} TegoRunSlot;

/*
 * The SQL runs of one database and role due at the same time, handed in
 * one DSM segment to nworkers job workers (up to one a run, as the
 * running-job slots allow; see start_queued_runs()).  Each worker
 * takes the next run not taken yet (next_run) until none is left.  Only
 * the first "called" workers start at the group's time; a worker whose run
 * is still going TEGO_GROUP_HELP_MS after it took it calls
 * TEGO_GROUP_HELPERS more (see job_runner.c).  So runs that take little
 * time run back to back in a few warm workers, and runs that wait on
 * something still start together, a few milliseconds apart.
 */
typedef struct TegoRunGroup
{
	Oid			database_oid;
	Oid			role_oid;
	TimestampTz start_at;		/* run at this time; 0 = at once */
	int			nruns;
	int			nworkers;		/* workers handed the group */
	Size		latches;		/* offset of the workers' latches */
	pg_atomic_uint32 next_run;	/* index of the next run to take */
	pg_atomic_uint32 joined;	/* workers that attached so far */
	pg_atomic_uint32 called;	/* workers allowed to take runs */
	TegoRunSlot runs[FLEXIBLE_ARRAY_MEMBER];
	/* then a Latch pointer per worker (by attach order), then the commands */
} TegoRunGroup;

#define TEGO_GROUP_LATCHES(group) \
	((Latch *volatile *) ((char *) (group) + (group)->latches))
#define TEGO_RUN_COMMAND(group, slot) ((char *) (group) + (slot)->command)

/* A run still going this long after its worker took it calls for help... */
#define TEGO_GROUP_HELP_MS		1
/* ... from this many more workers (while runs wait). */
#define TEGO_GROUP_HELPERS		4

/* A worker never called joins this long after the group's time anyway. */
#define TEGO_GROUP_FALLBACK_MS	100

/*
 * Once a group's time is this far behind, a worker reports each finished
 * run to the scheduler at once; before, it reports when it has no run left
 * to take, so that runs due together start without the scheduler waking
 * between them.
 */
#define TEGO_GROUP_BURST_USECS	(50 * 1000)

/* settings (tego.c) */
extern char *tego_database;
extern int	tego_max_running_jobs;
extern int	tego_max_running_jobs_per_role;

/* The running-job slots one role may hold (tego.max_running_jobs_per_role). */
static inline int
tego_running_jobs_per_role(void)
{
	if (tego_max_running_jobs_per_role < 0)
		return (tego_max_running_jobs + 1) / 2;
	return Min(tego_max_running_jobs_per_role, tego_max_running_jobs);
}
extern int	tego_job_run_retention;
extern bool tego_allow_superuser_jobs;
extern bool tego_enable_scheduler;
extern bool tego_job_group_commit;

/* How long an idle job worker waits for another run before it exits. */
#define TEGO_POOL_IDLE_MS	(60 * 1000)

/* shmem.c */
extern TegoShared *tego_shared;
extern void tego_shmem_init(void);
extern void tego_wake_scheduler_at_commit(void);
struct BackgroundWorker;
extern void tego_pin_worker_settings(void);
extern void tego_dynamic_worker(struct BackgroundWorker *worker,
								const char *function);

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
