/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The "tego scheduler" background worker: one per cluster, connected to
 *	  tego.database, firing every active job once per scheduled time.
 *
 *	  The worker keeps the active jobs in a hash table and a min-heap of
 *	  their next fire times, and sleeps on its latch until the earliest of:
 *	  the next fire time, the next app-run deadline, the next history
 *	  pruning, a running job's time limit.  It never polls: a committed job
 *	  change, tego.run_now() and a finished app run set its latch, a job
 *	  worker that stops signals it (bgw_notify_pid), SIGHUP wakes it too.
 *	  Job changes are read incrementally from the event log (topic
 *	  tego_jobs), which is gapless and commit-ordered, so none is missed.
 *
 *	  Exactly once: a fire inserts the row (job, scheduled time) into
 *	  tego.job_runs, whose unique key makes a second insert a no-op, and the
 *	  job starts only after that row has committed.  A restart, a crash or
 *	  a promotion therefore cannot fire the same time twice; runs that a
 *	  crash left "running" become "interrupted" when the worker starts.
 *
 *	  The worker starts only once recovery has finished
 *	  (BgWorkerStart_RecoveryFinished): on a standby it is started by the
 *	  postmaster at promotion, and not before.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "lib/binaryheap.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "tego.h"
#include "leader.h"
#include "scheduler.h"

/* Fire times later than this are run; older ones follow the misfire policy. */
#define CATCH_UP_USECS		(10 * USECS_PER_SEC)

/* A job past its max_runtime is stopped after this much more. */
#define RUNTIME_GRACE_USECS (5 * USECS_PER_SEC)

/* Pruning of history and events happens at most this often. */
#define PRUNE_INTERVAL_USECS (60 * 60 * USECS_PER_SEC)

/*
 * SQL jobs are handed to their worker this long before their time: the
 * worker connects, then waits for the exact time, so a job starts on time
 * however long a backend takes to start.
 */
#define PRESTART_USECS		(500 * 1000)

/* Wake-ups that come this close together are handled in one pass. */
#define COALESCE_USECS		(20 * 1000)

/*
 * A job's intervals as the scheduler uses them: capped at what the SQL API
 * accepts, so that a row written some other way (or before the API had
 * bounds) cannot overflow a timestamp and fail every pass.
 */
#define TEGO_MAX_RUNTIME_SQL	"interval '7 days'"
#define CLAIM_TIMEOUT_SQL \
	"LEAST(GREATEST(j.claim_timeout, interval '0'), interval '1 day')"
#define HEARTBEAT_TIMEOUT_SQL \
	"LEAST(GREATEST(j.heartbeat_timeout, interval '0'), interval '1 day')"

/* Longest single sleep: a day (WaitLatch takes a long of milliseconds). */
#define MAX_SLEEP_MS		(24L * 60 * 60 * 1000)

/* One active job, as the scheduler keeps it. */
typedef struct SchedJob
{
	int64		job_id;			/* hash key */
	TegoCronSchedule sched;
	pg_tz	   *tz;
	bool		run_once_on_misfire;
	bool		is_sql;			/* SQL job (prestarted) or app job */
	TimestampTz next;			/* next fire time, or DT_NOEND */
} SchedJob;

/* When the scheduler acts on a job's next fire time. */
#define FIRE_AT(job) ((job)->next - ((job)->is_sql ? PRESTART_USECS : 0))

/* A job worker this scheduler started (it may serve many run groups). */
typedef struct JobWorker
{
	BackgroundWorkerHandle *handle;
	pid_t		pid;			/* 0 until known */
	int			groups;			/* run groups handed to it, not yet over */
} JobWorker;

/*
 * A run group (TegoRunGroup) handed to job workers.  Its workers hold
 * running-job slots (tego.max_running_jobs) until the outcome of its last
 * run is recorded.
 */
typedef struct RunGroup
{
	dsm_segment *seg;
	Oid			role_oid;
	List	   *workers;		/* JobWorker */
	int			open;			/* runs whose outcome is not recorded yet */
} RunGroup;

/* An SQL run handed to job workers, until its outcome is recorded. */
typedef struct RunningJob
{
	int64		run_id;
	char	   *job_name;
	Oid			role_oid;
	RunGroup   *group;
	int			index;			/* in group's runs */
	bool		terminated;		/* its worker was stopped (max_runtime) */
	bool		recorded;		/* its outcome is written by this pass */
} RunningJob;

/* An SQL run to hand to job workers once the pass has committed. */
typedef struct LaunchRequest
{
	int64		run_id;
	char	   *job_name;
	Oid			database_oid;
	Oid			role_oid;
	char	   *command;
	int64		max_runtime_ms; /* 0 = no limit */
	TimestampTz start_at;		/* 0 = at once */
} LaunchRequest;

/*
 * The SQL runs of one database, role and start time that a pass hands to
 * job workers together, and how many workers (running-job slots) they get.
 */
typedef struct LaunchGroup
{
	Oid			database_oid;
	Oid			role_oid;
	TimestampTz start_at;
	List	   *members;		/* LaunchRequest */
	int			nworkers;
} LaunchGroup;

/*
 * The most runs in one run group: more runs due together form more groups
 * (each with a slot of its own), so that a group's segment stays small.
 */
#define MAX_GROUP_RUNS		1000

static MemoryContext SchedulerContext = NULL;	/* jobs, running workers */
static MemoryContext PassContext = NULL;	/* reset before every pass */
static HTAB *jobs = NULL;
static binaryheap *heap = NULL;
static List *running = NIL;		/* RunningJob */
static List *run_groups = NIL;	/* RunGroup, until their runs are recorded */
static List *job_workers = NIL; /* JobWorker */
static Oid	loaded_extension = InvalidOid;
static bool recovered = false;	/* runs left by a crash were marked */
static int64 last_event_seq = 0;
static TimestampTz next_prune = 0;
static int	online_cpus = 1;		/* workers a run group starts with */
static bool careful = false;	/* the last pass failed: isolate each job */

static SPIPlanPtr plan_load_all = NULL;
static SPIPlanPtr plan_load_one = NULL;
static SPIPlanPtr plan_event_seq = NULL;
static SPIPlanPtr plan_job_events = NULL;
static SPIPlanPtr plan_recover = NULL;
static SPIPlanPtr plan_fire = NULL;
static SPIPlanPtr plan_queued = NULL;
static SPIPlanPtr plan_to_pending = NULL;
static SPIPlanPtr plan_to_running = NULL;
static SPIPlanPtr plan_fail_run = NULL;
static SPIPlanPtr plan_skip_run = NULL;
static SPIPlanPtr plan_finish_run = NULL;
static SPIPlanPtr plan_expire = NULL;
static SPIPlanPtr plan_app_deadline = NULL;
static SPIPlanPtr plan_prune = NULL;
static SPIPlanPtr plan_compact = NULL;

static void scheduler_shutdown(int code, Datum arg);

/* ------------------------------------------------------------------------
 * Registration
 * ------------------------------------------------------------------------
 */

/* Register the scheduler with the postmaster (at preload). */
void
tego_register_scheduler(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "tego");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "tego_scheduler_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "tego scheduler");
	snprintf(worker.bgw_type, BGW_MAXLEN, "tego scheduler");
	RegisterBackgroundWorker(&worker);
}

/* ------------------------------------------------------------------------
 * Jobs in memory
 * ------------------------------------------------------------------------
 */

/* binaryheap comparator: the job to act on first comes first. */
static int
heap_cmp_next(Datum a, Datum b, void *arg)
{
	TimestampTz ta = FIRE_AT((SchedJob *) DatumGetPointer(a));
	TimestampTz tb = FIRE_AT((SchedJob *) DatumGetPointer(b));

	return (ta < tb) ? 1 : (ta > tb) ? -1 : 0;
}

/* Rebuild the heap from the hash table (after jobs were added or removed). */
static void
rebuild_heap(void)
{
	HASH_SEQ_STATUS status;
	SchedJob   *job;
	long		n = hash_get_num_entries(jobs);
	MemoryContext old = MemoryContextSwitchTo(SchedulerContext);

	if (heap == NULL || heap->bh_space < n)
	{
		if (heap)
			binaryheap_free(heap);
		heap = binaryheap_allocate(Max(n * 2, 64), heap_cmp_next, NULL);
	}
	binaryheap_reset(heap);
	hash_seq_init(&status, jobs);
	while ((job = hash_seq_search(&status)) != NULL)
		if (job->next != DT_NOEND)
			binaryheap_add_unordered(heap, PointerGetDatum(job));
	binaryheap_build(heap);
	MemoryContextSwitchTo(old);
}

/* The first fire time of a job after t, or DT_NOEND. */
static TimestampTz
job_next_after(SchedJob *job, TimestampTz t)
{
	int64_t		next;

	if (!tego_cron_next(&job->sched, tego_timestamp_to_unix(t),
						tego_tz_offset, job->tz, &next))
		return DT_NOEND;
	return tego_unix_to_timestamp(next);
}

/* Forget every job (the extension is gone, or everything is reloaded). */
static void
forget_jobs(void)
{
	HASHCTL		ctl;

	if (jobs)
		hash_destroy(jobs);
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(SchedJob);
	ctl.hcxt = SchedulerContext;
	jobs = hash_create("tego scheduler jobs", 1024, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	if (heap)
		binaryheap_reset(heap);
}

/*
 * Take a job row (job_id, schedule, timezone, misfire, anchor, kind) from the
 * current SPI result into the hash table.  The anchor is the later of the
 * last scheduled run and the last change of the job: the next fire time is
 * the first one after it.
 */
static void
load_job_row(int row)
{
	HeapTuple	tup = SPI_tuptable->vals[row];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;
	int64		job_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	char	   *schedule = SPI_getvalue(tup, desc, 2);
	char	   *timezone = SPI_getvalue(tup, desc, 3);
	char	   *misfire = SPI_getvalue(tup, desc, 4);
	TimestampTz anchor = DatumGetTimestampTz(SPI_getbinval(tup, desc, 5, &isnull));
	char	   *kind = SPI_getvalue(tup, desc, 6);
	char		err[TEGO_CRON_ERRLEN];
	TegoCronSchedule sched;
	pg_tz	   *tz;
	SchedJob   *job;

	/* both were checked when the job was stored; stay quiet if not */
	if (!tego_cron_parse(schedule, &sched, err, sizeof(err)) ||
		(tz = tego_lookup_timezone(timezone, true)) == NULL)
	{
		ereport(WARNING,
				(errmsg("tego scheduler skips job %lld: invalid schedule or time zone",
						(long long) job_id)));
		return;
	}

	job = hash_search(jobs, &job_id, HASH_ENTER, NULL);
	job->sched = sched;
	job->tz = tz;
	job->run_once_on_misfire = (strcmp(misfire, "run_once") == 0);
	job->is_sql = (strcmp(kind, "sql") == 0);
	job->next = job_next_after(job, anchor);
}

/* SQL of the job rows load_job_row() takes. */
#define JOB_ROWS_SQL \
	"SELECT j.job_id, j.schedule, j.timezone, j.misfire, " \
	" GREATEST(j.updated_at, (SELECT max(r.scheduled_for) FROM tego.job_runs r " \
	"   WHERE r.job_id = j.job_id AND NOT r.manual)), j.kind " \
	"FROM tego.jobs j WHERE j.active"

/* Read every active job; remember the event position it corresponds to. */
static void
load_all_jobs(void)
{
	uint64		i;

	forget_jobs();
	tego_exec(&plan_event_seq,
			  "SELECT COALESCE(max(seq), 0) FROM tego.events",
			  0, NULL, NULL, NULL, TEGO_SNAPSHOT_WRITE, 1);
	{
		bool		isnull;

		last_event_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc,
													 1, &isnull));
	}
	tego_exec(&plan_load_all, JOB_ROWS_SQL, 0, NULL, NULL, NULL,
			  TEGO_SNAPSHOT_WRITE, 0);
	for (i = 0; i < SPI_processed; i++)
		load_job_row(i);
	rebuild_heap();
}

/*
 * Apply the job changes committed since the last pass, read from the event
 * log.  Falls back to a full reload when events were compacted away.
 */
static void
refresh_jobs(void)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	List	   *changed = NIL;
	ListCell   *lc;
	uint64		i;

	values[0] = Int64GetDatum(last_event_seq);
	tego_exec(&plan_job_events,
			  "SELECT e.seq, (e.payload OPERATOR(pg_catalog.->>) 'job_id')::bigint, "
			  " (SELECT min(m.seq) FROM tego.events m) "
			  "FROM tego.events e WHERE e.topic = 'tego_jobs' AND e.seq > $1 "
			  "AND e.event IN ('job-scheduled', 'job-altered', 'job-unscheduled') "
			  "ORDER BY e.seq",
			  1, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													  SPI_tuptable->tupdesc,
													  1, &isnull));
		int64		job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
														 SPI_tuptable->tupdesc,
														 2, &isnull));
		int64		oldest = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
														 SPI_tuptable->tupdesc,
														 3, &isnull));

		if (i == 0 && oldest > last_event_seq + 1)
		{
			/* changes were compacted away before we read them */
			load_all_jobs();
			return;
		}
		changed = lappend(changed, palloc(sizeof(int64)));
		*(int64 *) llast(changed) = job_id;
		last_event_seq = seq;
	}
	if (changed == NIL)
		return;

	foreach(lc, changed)
	{
		int64		job_id = *(int64 *) lfirst(lc);

		hash_search(jobs, &job_id, HASH_REMOVE, NULL);
		values[0] = Int64GetDatum(job_id);
		tego_exec(&plan_load_one, JOB_ROWS_SQL " AND j.job_id = $1",
				  1, types, values, NULL, TEGO_SNAPSHOT_WRITE, 1);
		if (SPI_processed == 1)
			load_job_row(0);
	}
	rebuild_heap();
}

/* ------------------------------------------------------------------------
 * Runs
 * ------------------------------------------------------------------------
 */

/*
 * Insert the run of a job for a scheduled time: queued, or skipped when a
 * run of the job already waits (whether a run still active at the time
 * makes this one wait or be skipped is decided in start_queued_runs()).
 * ON CONFLICT makes a second fire of the same time (after a crash) a no-op.
 */
static void
fire(SchedJob *job, TimestampTz scheduled_for)
{
	Oid			types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2];

	values[0] = Int64GetDatum(job->job_id);
	values[1] = TimestampTzGetDatum(scheduled_for);
	tego_exec(&plan_fire,
			  "WITH open AS ("
			  " SELECT count(*) AS queued"
			  "   FROM tego.job_runs r WHERE r.job_id = $1 AND r.status = 'queued') "
			  "INSERT INTO tego.job_runs (job_id, job_name, username, scheduled_for,"
			  "                           status, finished_at, message) "
			  "SELECT j.job_id, j.name, j.username, $2, s.status,"
			  "       CASE WHEN s.status = 'skipped' THEN pg_catalog.clock_timestamp() END,"
			  "       CASE WHEN s.status = 'skipped' THEN 'a run of the job was already waiting' END "
			  "  FROM tego.jobs j, open o,"
			  "       LATERAL (SELECT CASE WHEN o.queued = 0 THEN 'queued'"
			  "                            ELSE 'skipped' END AS status) s "
			  " WHERE j.job_id = $1 AND j.active "
			  "ON CONFLICT (job_id, scheduled_for) DO NOTHING",
			  2, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
}

/*
 * fire(), in a subtransaction of its own after a pass has failed: a job
 * whose row makes the insert fail is reported and passed over, so that it
 * cannot stop the passes of every other job.  NB: only then, since each
 * subtransaction that writes takes a subtransaction id, and a pass that
 * fires many jobs would overflow the cache of them that snapshots use.
 */
static void
fire_isolated(SchedJob *job, TimestampTz scheduled_for)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	if (!careful)
	{
		fire(job, scheduled_for);
		return;
	}
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fire(job, scheduled_for);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ereport(WARNING,
				(errmsg("tego scheduler could not fire job %lld: %s",
						(long long) job->job_id, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

/* The latest fire time of job that is not after t, starting from first. */
static TimestampTz
latest_fire_until(SchedJob *job, TimestampTz first, TimestampTz t)
{
	TimestampTz last = first;
	TimestampTz next;
	int			guard = 0;

	while ((next = job_next_after(job, last)) <= t && ++guard < 1000000)
		last = next;
	return last;
}

/* Fire every job whose time has come. */
static void
fire_due_jobs(TimestampTz now)
{
	while (!binaryheap_empty(heap))
	{
		SchedJob   *job = (SchedJob *) DatumGetPointer(binaryheap_first(heap));
		TimestampTz due = job->next;

		if (FIRE_AT(job) > now)
			break;

		if (now - due <= CATCH_UP_USECS)
		{
			fire_isolated(job, due);
			job->next = job_next_after(job, due);
		}
		else
		{
			/* missed while the scheduler was not running */
			TimestampTz latest = latest_fire_until(job, due, now);

			if (job->run_once_on_misfire)
				fire_isolated(job, latest);
			job->next = job_next_after(job, latest);
		}

		if (job->next == DT_NOEND)
			(void) binaryheap_remove_first(heap);
		else
			binaryheap_replace_first(heap, PointerGetDatum(job));
	}
}

/* Queue an event about a run on tego_jobs. */
static void
run_event(const char *event, const char *job_name, Jsonb *payload)
{
	tego_event_queue("tego_jobs", event, job_name, payload, NULL);
}

/*
 * The running-job slots held by job workers of role (InvalidOid: of every
 * role): the workers of the run groups handed over whose runs are not all
 * recorded, and those of the groups planned in this pass (planned).
 */
static int
slots_held(Oid role, List *planned)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, run_groups)
	{
		RunGroup   *g = lfirst(lc);

		if (!OidIsValid(role) || g->role_oid == role)
			n += list_length(g->workers);
	}
	foreach(lc, planned)
	{
		LaunchGroup *g = lfirst(lc);

		if (!OidIsValid(role) || g->role_oid == role)
			n += g->nworkers;
	}
	return n;
}

/*
 * Why role may not run a job in database, as PostgreSQL would refuse it a
 * login there (no LOGIN, no CONNECT privilege, connections not allowed),
 * or NULL when it may.  A superuser role needs tego.allow_superuser_jobs.
 */
static char *
login_problem(Oid dboid, const char *database, Oid roleoid, const char *username)
{
	HeapTuple	tuple;
	bool		can_login;
	bool		allow_conn;

	if (!OidIsValid(dboid))
		return psprintf("database \"%s\" does not exist", database);
	if (!OidIsValid(roleoid))
		return psprintf("role \"%s\" does not exist", username);
	if (superuser_arg(roleoid) && !tego_allow_superuser_jobs)
		return psprintf("role \"%s\" is a superuser and tego.allow_superuser_jobs is off",
						username);

	tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(roleoid));
	if (!HeapTupleIsValid(tuple))
		return psprintf("role \"%s\" does not exist", username);
	can_login = ((Form_pg_authid) GETSTRUCT(tuple))->rolcanlogin;
	ReleaseSysCache(tuple);
	if (!can_login)
		return psprintf("role \"%s\" is not permitted to log in", username);

	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));
	if (!HeapTupleIsValid(tuple))
		return psprintf("database \"%s\" does not exist", database);
	allow_conn = ((Form_pg_database) GETSTRUCT(tuple))->datallowconn;
	ReleaseSysCache(tuple);
	if (!allow_conn)
		return psprintf("database \"%s\" is not currently accepting connections",
						database);
	if (!superuser_arg(roleoid) &&
		pg_database_aclcheck(dboid, roleoid, ACL_CONNECT) != ACLCHECK_OK)
		return psprintf("permission denied for database \"%s\": role \"%s\" does not have CONNECT privilege",
						database, username);
	return NULL;
}

/*
 * The run group (LaunchGroup) that a run of database, role and start_at
 * joins: one planned in this pass with room left, else a new one, which
 * takes a running-job slot.  NULL when no slot is left for the role.
 */
static LaunchGroup *
launch_group_for(List **groups, Oid database_oid, Oid role_oid,
				 TimestampTz start_at, int *free_slots)
{
	ListCell   *lc;
	LaunchGroup *g;

	foreach(lc, *groups)
	{
		g = lfirst(lc);
		if (g->database_oid == database_oid && g->role_oid == role_oid &&
			g->start_at == start_at && list_length(g->members) < MAX_GROUP_RUNS)
			return g;
	}
	if (*free_slots <= 0 ||
		slots_held(role_oid, *groups) >= tego_running_jobs_per_role())
		return NULL;
	(*free_slots)--;
	g = MemoryContextAllocZero(PassContext, sizeof(LaunchGroup));
	g->database_oid = database_oid;
	g->role_oid = role_oid;
	g->start_at = start_at;
	g->nworkers = 1;
	{
		MemoryContext old = MemoryContextSwitchTo(PassContext);

		*groups = lappend(*groups, g);
		MemoryContextSwitchTo(old);
	}
	return g;
}

/*
 * Start the queued runs whose job has no active run: app runs become
 * pending (and are announced), SQL runs become running and are handed to
 * job workers after commit, in run groups (database, role, time).
 *
 * tego.max_running_jobs bounds the job workers, not the runs: a group takes
 * a slot, and more of them while slots are free, up to one a run and up to
 * its role's share (tego.max_running_jobs_per_role); its workers take its
 * runs one after another.  So a hundred short runs due together start at
 * their time with a few workers, and one role's long runs cannot hold
 * more than its share of the workers.
 *
 * A scheduled run whose job still has an active run at the run's time is
 * skipped under the "skip" overlap policy, and waits under "queue" (a
 * manual run always waits).  *wake is lowered to the time of the next such
 * decision.  Returns the groups to launch (LaunchGroup).
 */
static List *
start_queued_runs(TimestampTz now, TimestampTz *wake)
{
	List	   *groups = NIL;
	List	   *started_jobs = NIL;
	int			free_slots = tego_max_running_jobs - slots_held(InvalidOid, NIL);
	int			per_role_cap = tego_running_jobs_per_role();
	SPITupleTable *queued;
	uint64		nqueued;
	uint64		i;

	tego_exec(&plan_queued,
			  "SELECT r.run_id, r.job_id, j.kind, j.name, j.database, j.username,"
			  "       j.command,"
			  "       CASE WHEN j.max_runtime IS NOT NULL THEN (EXTRACT(epoch FROM"
			  "         LEAST(j.max_runtime, " TEGO_MAX_RUNTIME_SQL ")) * 1000)::bigint END,"
			  "       pg_catalog.jsonb_build_object('run_id', r.run_id, 'job_id', r.job_id,"
			  "         'job', j.name, 'scheduled_for', r.scheduled_for, 'attempt', r.attempt,"
			  "         'manual', r.manual),"
			  "       CASE WHEN NOT r.manual THEN r.scheduled_for END,"
			  "       EXISTS (SELECT 1 FROM tego.job_runs a WHERE a.job_id = r.job_id"
			  "               AND a.status IN ('pending', 'running')),"
			  "       j.overlap = 'skip' AND NOT r.manual, r.scheduled_for "
			  "  FROM tego.job_runs r JOIN tego.jobs j ON j.job_id = r.job_id "
			  " WHERE r.status = 'queued' "
			  " ORDER BY r.scheduled_for, r.run_id",
			  0, NULL, NULL, NULL, TEGO_SNAPSHOT_WRITE, 0);
	queued = SPI_tuptable;
	nqueued = SPI_processed;

	for (i = 0; i < nqueued; i++)
	{
		HeapTuple	tup = queued->vals[i];
		TupleDesc	desc = queued->tupdesc;
		bool		isnull;
		int64		run_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		int64		job_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		char	   *kind = SPI_getvalue(tup, desc, 3);
		char	   *name = SPI_getvalue(tup, desc, 4);
		Oid			types[2] = {INT8OID, TEXTOID};
		Datum		values[2];
		ListCell   *lc;
		bool		seen = false;

		/* one active run per job: the oldest queued one goes first */
		foreach(lc, started_jobs)
			if (*(int64 *) lfirst(lc) == job_id)
				seen = true;
		if (seen)
			continue;

		values[0] = Int64GetDatum(run_id);
		if (DatumGetBool(SPI_getbinval(tup, desc, 11, &isnull)))
		{
			/* the job's previous run is still active */
			TimestampTz due = DatumGetTimestampTz(SPI_getbinval(tup, desc, 13,
																&isnull));

			if (DatumGetBool(SPI_getbinval(tup, desc, 12, &isnull)))
			{
				if (due <= now)
					tego_exec(&plan_skip_run,
							  "UPDATE tego.job_runs SET status = 'skipped',"
							  " finished_at = pg_catalog.clock_timestamp(),"
							  " message = 'the previous run was still active'"
							  " WHERE run_id = $1",
							  1, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
				else
					*wake = Min(*wake, due);
			}
		}
		else if (strcmp(kind, "app") == 0)
		{
			Jsonb	   *payload = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 9,
																   &isnull));

			tego_exec(&plan_to_pending,
					  "UPDATE tego.job_runs SET status = 'pending',"
					  " due_at = pg_catalog.clock_timestamp() WHERE run_id = $1",
					  1, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
			run_event("run-due", name, payload);
		}
		else
		{
			char	   *database = SPI_getvalue(tup, desc, 5);
			char	   *username = SPI_getvalue(tup, desc, 6);
			char	   *command = SPI_getvalue(tup, desc, 7);
			bool		no_limit;
			Datum		ms = SPI_getbinval(tup, desc, 8, &no_limit);
			Oid			dboid;
			Oid			roleoid;
			const char *problem = NULL;
			Datum		start = SPI_getbinval(tup, desc, 10, &isnull);
			TimestampTz start_at = isnull ? 0 : DatumGetTimestampTz(start);
			LaunchGroup *group = NULL;

			dboid = get_database_oid(database, true);
			roleoid = get_role_oid(username, true);
			problem = login_problem(dboid, database, roleoid, username);
			if (problem == NULL)
			{
				group = launch_group_for(&groups, dboid, roleoid, start_at,
										 &free_slots);
				if (group == NULL)
					continue;	/* no slot left: it waits */
			}

			if (problem)
			{
				values[1] = CStringGetTextDatum(problem);
				tego_exec(&plan_fail_run,
						  "UPDATE tego.job_runs SET status = 'failed',"
						  " finished_at = pg_catalog.clock_timestamp(), message = $2"
						  " WHERE run_id = $1",
						  2, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
			}
			else
			{
				/* NB: the request outlives SPI: it is used after commit */
				LaunchRequest *req = MemoryContextAllocZero(PassContext,
															sizeof(LaunchRequest));

				req->start_at = start_at;
				tego_exec(&plan_to_running,
						  "UPDATE tego.job_runs SET status = 'running'"
						  " WHERE run_id = $1",
						  1, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
				req->run_id = run_id;
				req->job_name = MemoryContextStrdup(PassContext, name);
				req->database_oid = dboid;
				req->role_oid = roleoid;
				req->command = MemoryContextStrdup(PassContext, command);
				req->max_runtime_ms = no_limit ? 0 : DatumGetInt64(ms);
				{
					MemoryContext old = MemoryContextSwitchTo(PassContext);

					group->members = lappend(group->members, req);
					MemoryContextSwitchTo(old);
				}
			}
		}
		started_jobs = lappend(started_jobs, palloc(sizeof(int64)));
		*(int64 *) llast(started_jobs) = job_id;
	}

	/* the slots still free go to the groups, one more each in turn */
	for (;;)
	{
		bool		gave = false;
		ListCell   *lc;

		foreach(lc, groups)
		{
			LaunchGroup *g = lfirst(lc);

			if (free_slots > 0 && g->nworkers < list_length(g->members) &&
				slots_held(g->role_oid, groups) < per_role_cap)
			{
				g->nworkers++;
				free_slots--;
				gave = true;
			}
		}
		if (!gave)
			break;
	}
	return groups;
}

/*
 * App runs past their deadline: a pending run nobody claimed in time, a
 * running run whose worker stopped sending heartbeats.  Each is retried
 * (pending again, announced again) or, after max_attempts, failed.
 * Returns the next deadline of an open app run, or DT_NOEND.
 */
static TimestampTz
expire_app_runs(TimestampTz now)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1];
	uint64		i;
	bool		isnull;
	Datum		d;

	values[0] = TimestampTzGetDatum(now);
	tego_exec(&plan_expire,
			  "UPDATE tego.job_runs r SET"
			  "  status = CASE WHEN r.attempt < j.max_attempts THEN 'pending' ELSE 'failed' END,"
			  "  attempt = r.attempt + CASE WHEN r.attempt < j.max_attempts THEN 1 ELSE 0 END,"
			  "  due_at = $1, worker = NULL, heartbeat_at = NULL,"
			  "  finished_at = CASE WHEN r.attempt < j.max_attempts THEN NULL ELSE $1 END,"
			  "  message = CASE WHEN r.status = 'pending'"
			  "            THEN 'not claimed within ' || " CLAIM_TIMEOUT_SQL
			  "            ELSE 'no heartbeat from worker ' || pg_catalog.quote_ident(r.worker)"
			  "                 || ' within ' || " HEARTBEAT_TIMEOUT_SQL " END "
			  "  FROM tego.jobs j "
			  " WHERE j.job_id = r.job_id AND j.kind = 'app'"
			  "   AND ((r.status = 'pending' AND r.due_at + " CLAIM_TIMEOUT_SQL " <= $1)"
			  "     OR (r.status = 'running' AND r.heartbeat_at + " HEARTBEAT_TIMEOUT_SQL " <= $1)) "
			  "RETURNING r.status, j.name, pg_catalog.jsonb_build_object("
			  "  'run_id', r.run_id, 'job_id', r.job_id, 'job', j.name,"
			  "  'scheduled_for', r.scheduled_for, 'attempt', r.attempt,"
			  "  'manual', r.manual, 'status', r.status)",
			  1, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *status = SPI_getvalue(tup, desc, 1);

		run_event(strcmp(status, "pending") == 0 ? "run-due" : "run-failed",
				  SPI_getvalue(tup, desc, 2),
				  DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 3, &isnull)));
	}

	tego_exec(&plan_app_deadline,
			  "SELECT min(CASE WHEN r.status = 'pending'"
			  "                THEN r.due_at + " CLAIM_TIMEOUT_SQL
			  "                ELSE r.heartbeat_at + " HEARTBEAT_TIMEOUT_SQL " END) "
			  "  FROM tego.job_runs r JOIN tego.jobs j ON j.job_id = r.job_id "
			  " WHERE j.kind = 'app' AND r.status IN ('pending', 'running')",
			  0, NULL, NULL, NULL, TEGO_SNAPSHOT_WRITE, 1);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

/* Record the outcome of a finished SQL run and announce it. */
static void
record_outcome(RunningJob *rj, const char *status, TimestampTz started,
			   TimestampTz finished, const char *message)
{
	Oid			types[5] = {INT8OID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;

	values[0] = Int64GetDatum(rj->run_id);
	values[1] = CStringGetTextDatum(status);
	values[2] = TimestampTzGetDatum(started);
	if (started == 0)
		nulls[2] = 'n';
	values[3] = TimestampTzGetDatum(finished);
	if (message && message[0])
		values[4] = CStringGetTextDatum(message);
	else
		nulls[4] = 'n';
	tego_exec(&plan_finish_run,
			  "UPDATE tego.job_runs r SET status = $2,"
			  " started_at = COALESCE($3, r.started_at), finished_at = $4, message = $5 "
			  "WHERE r.run_id = $1 "
			  "RETURNING pg_catalog.jsonb_build_object('run_id', r.run_id,"
			  " 'job_id', r.job_id, 'job', r.job_name, 'scheduled_for', r.scheduled_for,"
			  " 'status', r.status, 'started_at', r.started_at,"
			  " 'finished_at', r.finished_at)",
			  5, types, values, nulls, TEGO_SNAPSHOT_WRITE, 0);
	if (SPI_processed == 1)
		run_event("run-finished", rj->job_name,
				  DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1,
												   &isnull)));
}

/* Has job worker w exited?  Learns its pid on the way. */
static bool
worker_stopped(JobWorker *w)
{
	pid_t		pid;
	BgwHandleStatus st = GetBackgroundWorkerPid(w->handle, &pid);

	if (st == BGWH_STARTED)
		w->pid = pid;
	return st == BGWH_STOPPED;
}

/* The worker of group with this pid, or NULL if none is. */
static JobWorker *
group_worker(RunGroup *group, pid_t pid)
{
	ListCell   *lc;

	foreach(lc, group->workers)
	{
		JobWorker  *w = lfirst(lc);

		if (w->pid == 0)
			(void) worker_stopped(w);
		if (w->pid == pid)
			return w;
	}
	return NULL;
}

/* One run of group is recorded: let the segment go with the last one. */
static void
group_release(RunGroup *group)
{
	ListCell   *lc;

	if (--group->open > 0)
		return;
	run_groups = list_delete_ptr(run_groups, group);
	dsm_detach(group->seg);
	foreach(lc, group->workers)
		((JobWorker *) lfirst(lc))->groups--;
	list_free(group->workers);
	pfree(group);
}

/*
 * Look at the runs handed to job workers: record the ones that finished
 * (or whose worker exited), stop a worker past its run's time limit.
 * Returns when to look again for a time limit.
 */
static TimestampTz
collect_job_workers(TimestampTz now)
{
	ListCell   *lc;
	TimestampTz next = DT_NOEND;

	foreach(lc, running)
	{
		RunningJob *rj = lfirst(lc);
		RunGroup   *group = rj->group;
		TegoRunGroup *hdr = dsm_segment_address(group->seg);
		TegoRunSlot *slot = &hdr->runs[rj->index];
		bool		done = slot->done;
		pid_t		taker;
		JobWorker  *w = NULL;
		bool		lost = false;
		int64		limit = (int64) slot->timeout_ms * 1000 + RUNTIME_GRACE_USECS;

		pg_read_barrier();
		taker = slot->worker_pid;
		if (!done)
		{
			if (taker != 0)
			{
				w = group_worker(group, taker);
				lost = (w == NULL || worker_stopped(w));
			}
			else
			{
				ListCell   *wl;

				lost = true;
				foreach(wl, group->workers)
					if (!worker_stopped(lfirst(wl)))
						lost = false;
			}
			/* it may have finished just before its worker exited */
			pg_read_barrier();
			done = slot->done;
			pg_read_barrier();
		}

		if (done || lost)
		{
			const char *status;
			const char *message = slot->message;

			switch (done ? slot->status : TEGO_RUN_STARTING)
			{
				case TEGO_RUN_SUCCEEDED:
					status = "succeeded";
					break;
				case TEGO_RUN_TIMED_OUT:
					status = "timed_out";
					break;
				case TEGO_RUN_FAILED:
					status = "failed";
					break;
				default:
					status = rj->terminated ? "timed_out" : "failed";
					message = rj->terminated ?
						"the job was stopped after exceeding its max_runtime" :
						taker != 0 ?
						"the job worker exited before the job finished" :
						"the job workers exited before the job started";
					break;
			}
			/* NB: forgotten only once the pass has committed; see scheduler_pass() */
			if (!rj->recorded)
				record_outcome(rj, status, taker != 0 ? slot->started_at : 0,
							   done && slot->finished_at ? slot->finished_at : now,
							   message);
			rj->recorded = true;
			continue;
		}

		if (slot->timeout_ms <= 0 || rj->terminated || rj->recorded)
			continue;
		if (taker != 0 && slot->started_at != 0)
		{
			TimestampTz deadline = slot->started_at + limit;

			if (deadline <= now)
			{
				TerminateBackgroundWorker(w->handle);
				rj->terminated = true;
			}
			else
				next = Min(next, deadline);
		}
		else
		{
			/* not started yet: look again once it could be past its limit */
			next = Min(next, now + limit);
		}
	}
	/* forget the workers that have exited and serve no group */
	foreach(lc, job_workers)
	{
		JobWorker  *w = lfirst(lc);

		if (worker_stopped(w) && w->groups == 0)
		{
			pfree(w->handle);
			pfree(w);
			job_workers = foreach_delete_current(job_workers, lc);
		}
	}
	return next;
}

/*
 * After the pass that recorded them has committed: forget the runs whose
 * outcome it wrote (committed says so), or, after an error, let the next
 * pass record them again.
 */
static void
settle_recorded_runs(bool committed)
{
	ListCell   *lc;

	foreach(lc, running)
	{
		RunningJob *rj = lfirst(lc);

		if (!rj->recorded)
			continue;
		if (!committed)
		{
			rj->recorded = false;
			continue;
		}
		group_release(rj->group);
		pfree(rj->job_name);
		pfree(rj);
		running = foreach_delete_current(running, lc);
	}
}

/*
 * An idle job worker of ours for (database, role), marked assigned the run
 * group in seg and woken; NULL when there is none.
 */
static JobWorker *
assign_to_idle_worker(Oid database_oid, Oid role_oid, dsm_segment *seg)
{
	int			i;
	Latch	   *latch = NULL;
	JobWorker  *found = NULL;

	LWLockAcquire(tego_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < tego_shared->pool_size && found == NULL; i++)
	{
		TegoPoolSlot *ps = &tego_shared->pool[i];
		ListCell   *lc;

		if (ps->state != TEGO_POOL_IDLE || ps->owner != MyProcPid ||
			ps->database_oid != database_oid || ps->role_oid != role_oid)
			continue;
		/* it must be one whose handle we hold, to notice if it dies */
		foreach(lc, job_workers)
		{
			JobWorker  *w = lfirst(lc);

			if (w->pid == 0)
				(void) worker_stopped(w);
			if (w->pid == ps->pid)
			{
				found = w;
				break;
			}
		}
		if (found)
		{
			ps->state = TEGO_POOL_ASSIGNED;
			ps->assigned = dsm_segment_handle(seg);
			latch = ps->latch;
		}
	}
	LWLockRelease(tego_shared->lock);
	if (latch)
		SetLatch(latch);
	return found;
}

/* A new job worker for the run group in seg; NULL if none can start. */
static JobWorker *
start_job_worker(dsm_segment *seg, int64 first_run_id)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	JobWorker  *w;

	tego_dynamic_worker(&worker, "tego_job_runner_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "tego job %lld", (long long) first_run_id);
	snprintf(worker.bgw_type, BGW_MAXLEN, "tego job");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		/* make room for the next attempt: send our idle workers away */
		int			i;

		LWLockAcquire(tego_shared->lock, LW_EXCLUSIVE);
		for (i = 0; i < tego_shared->pool_size; i++)
			if (tego_shared->pool[i].state == TEGO_POOL_IDLE &&
				tego_shared->pool[i].owner == MyProcPid)
			{
				tego_shared->pool[i].state = TEGO_POOL_FREE;
				SetLatch(tego_shared->pool[i].latch);
			}
		LWLockRelease(tego_shared->lock);
		return NULL;
	}
	w = palloc0(sizeof(JobWorker));
	w->handle = handle;
	job_workers = lappend(job_workers, w);
	return w;
}

/*
 * Hand the SQL runs of one database, role and time (outside any
 * transaction) to the group's job workers: idle ones of ours first, new
 * ones for the rest.  False if not even one could be had.
 */
static bool
launch_group(LaunchGroup *lg)
{
	List	   *members = lg->members;
	LaunchRequest *first = linitial(members);
	int			n = list_length(members);
	int			nworkers = Min(lg->nworkers, n);
	Size		slots = offsetof(TegoRunGroup, runs) + n * sizeof(TegoRunSlot);
	Size		latches = MAXALIGN(slots);
	Size		size = latches + nworkers * sizeof(Latch *);
	Size		off = size;
	MemoryContext old;
	dsm_segment *seg;
	TegoRunGroup *hdr;
	RunGroup   *group;
	ListCell   *lc;
	int			i;

	foreach(lc, members)
		size += strlen(((LaunchRequest *) lfirst(lc))->command) + 1;

	old = MemoryContextSwitchTo(SchedulerContext);
	seg = dsm_create(size, 0);
	hdr = dsm_segment_address(seg);
	memset(hdr, 0, off);
	hdr->database_oid = first->database_oid;
	hdr->role_oid = first->role_oid;
	hdr->start_at = first->start_at;
	hdr->nruns = n;
	hdr->nworkers = nworkers;
	hdr->latches = latches;
	pg_atomic_init_u32(&hdr->next_run, 0);
	pg_atomic_init_u32(&hdr->joined, 0);
	pg_atomic_init_u32(&hdr->called, (uint32) Min(nworkers, online_cpus));
	i = 0;
	foreach(lc, members)
	{
		LaunchRequest *req = lfirst(lc);
		TegoRunSlot *slot = &hdr->runs[i++];
		size_t		len = strlen(req->command);

		slot->run_id = req->run_id;
		slot->timeout_ms = (int) Min(req->max_runtime_ms, (int64) INT_MAX);
		slot->status = TEGO_RUN_STARTING;
		slot->command = off;
		memcpy((char *) hdr + off, req->command, len + 1);
		off += len + 1;
	}

	group = palloc0(sizeof(RunGroup));
	group->seg = seg;
	group->role_oid = first->role_oid;
	group->open = n;
	for (i = 0; i < nworkers; i++)
	{
		JobWorker  *w = assign_to_idle_worker(first->database_oid,
											  first->role_oid, seg);

		if (w == NULL && (w = start_job_worker(seg, first->run_id)) == NULL)
			break;
		w->groups++;
		group->workers = lappend(group->workers, w);
	}
	if (group->workers == NIL)
	{
		dsm_detach(seg);
		pfree(group);
		MemoryContextSwitchTo(old);
		return false;
	}

	i = 0;
	foreach(lc, members)
	{
		LaunchRequest *req = lfirst(lc);
		RunningJob *rj = palloc0(sizeof(RunningJob));

		rj->run_id = req->run_id;
		rj->job_name = pstrdup(req->job_name);
		rj->role_oid = req->role_oid;
		rj->group = group;
		rj->index = i++;
		running = lappend(running, rj);
	}
	run_groups = lappend(run_groups, group);
	MemoryContextSwitchTo(old);
	return true;
}

/*
 * Hand the SQL runs of a pass to job workers, group by group (LaunchGroup).
 * Returns the runs no worker could be had for.
 */
static List *
launch_runs(List *groups)
{
	List	   *failed = NIL;
	ListCell   *lc;

	foreach(lc, groups)
	{
		LaunchGroup *g = lfirst(lc);

		if (g->members != NIL && !launch_group(g))
			failed = list_concat(failed, g->members);
	}
	return failed;
}

/* Prune old runs and events, at most once per PRUNE_INTERVAL_USECS. */
static void
prune_history(TimestampTz now)
{
	if (now < next_prune)
		return;
	next_prune = now + PRUNE_INTERVAL_USECS;

	if (tego_job_run_retention > 0)
	{
		Oid			types[1] = {TIMESTAMPTZOID};
		Datum		values[1];

		values[0] = TimestampTzGetDatum(
			TimestampTzPlusMilliseconds(now, -(int64) tego_job_run_retention * 1000));
		tego_exec(&plan_prune,
				  "DELETE FROM tego.job_runs WHERE finished_at < $1",
				  1, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
	}
	tego_exec(&plan_compact, "SELECT tego.compact_events()",
			  0, NULL, NULL, NULL, TEGO_SNAPSHOT_WRITE, 0);
}

/* ------------------------------------------------------------------------
 * The worker
 * ------------------------------------------------------------------------
 */

/*
 * One pass: refresh the jobs, collect finished workers, fire what is due,
 * start queued runs, expire app runs, prune.  Returns when to wake next.
 */
static TimestampTz
scheduler_pass(void)
{
	Oid			ext;
	TimestampTz now;
	TimestampTz wake = DT_NOEND;
	TimestampTz t;
	List	   *launch = NIL;
	ListCell   *lc;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "tego scheduler pass");

	/*
	 * NB: lock the extension so that DROP EXTENSION cannot remove our tables
	 * during the pass, then look again: it may have been dropped while we
	 * waited for the lock.
	 */
	ext = get_extension_oid("tego", true);
	if (OidIsValid(ext))
	{
		LockDatabaseObject(ExtensionRelationId, ext, 0, AccessShareLock);
		if (get_extension_oid("tego", true) != ext)
			ext = InvalidOid;
	}
	if (!OidIsValid(ext))
	{
		/* wait quietly for CREATE EXTENSION, which wakes us */
		if (OidIsValid(loaded_extension))
			ereport(LOG,
					(errmsg("tego scheduler: extension tego was dropped from database \"%s\"",
							tego_database)));
		loaded_extension = InvalidOid;
		forget_jobs();
	}
	else
	{
		if (!recovered)
		{
			/* first pass of this worker: runs a crash left behind */
			tego_exec(&plan_recover,
					  "UPDATE tego.job_runs r SET status = 'interrupted',"
					  " finished_at = pg_catalog.clock_timestamp(),"
					  " message = 'the server or the scheduler stopped while the job ran' "
					  "FROM tego.jobs j WHERE j.job_id = r.job_id AND j.kind = 'sql'"
					  " AND r.status = 'running'",
					  0, NULL, NULL, NULL, TEGO_SNAPSHOT_WRITE, 0);
			recovered = true;
		}
		if (ext != loaded_extension)
		{
			/* first pass, the extension was created again, or an error */
			load_all_jobs();
			loaded_extension = ext;
			ereport(LOG,
					(errmsg("tego scheduler started in database \"%s\" with %ld active jobs",
							tego_database, hash_get_num_entries(jobs))));
		}
		else
			refresh_jobs();

		now = GetCurrentTimestamp();
		t = collect_job_workers(now);
		wake = Min(wake, t);
		fire_due_jobs(now);
		launch = start_queued_runs(now, &wake);
		t = expire_app_runs(now);
		wake = Min(wake, t);
		prune_history(now);
		wake = Min(wake, next_prune);
		if (!binaryheap_empty(heap))
			wake = Min(wake, FIRE_AT((SchedJob *) DatumGetPointer(binaryheap_first(heap))));
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(PassContext);
	pgstat_report_activity(STATE_IDLE, NULL);
	settle_recorded_runs(true);
	careful = false;

	/* start job workers only once their runs are committed as running */
	foreach(lc, launch_runs(launch))
	{
		LaunchRequest *req = lfirst(lc);
		Oid			types[2] = {INT8OID, TEXTOID};
		Datum		values[2];

		ereport(WARNING,
				(errmsg("tego scheduler could not start a worker for job \"%s\"",
						req->job_name),
				 errhint("Raise max_worker_processes or lower tego.max_running_jobs.")));
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		values[0] = Int64GetDatum(req->run_id);
		values[1] = CStringGetTextDatum("could not start a background worker for the job");
		tego_exec(&plan_fail_run,
				  "UPDATE tego.job_runs SET status = 'failed',"
				  " finished_at = pg_catalog.clock_timestamp(), message = $2"
				  " WHERE run_id = $1",
				  2, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(PassContext);
	}
	return wake;
}

/* Stop our job workers and unregister, when the scheduler exits. */
static void
scheduler_shutdown(int code, Datum arg)
{
	ListCell   *lc;

	foreach(lc, job_workers)
		TerminateBackgroundWorker(((JobWorker *) lfirst(lc))->handle);

	if (tego_shared)
	{
		LWLockAcquire(tego_shared->lock, LW_EXCLUSIVE);
		if (tego_shared->scheduler_pid == MyProcPid)
		{
			tego_shared->scheduler_pid = 0;
			tego_shared->scheduler_latch = NULL;
		}
		LWLockRelease(tego_shared->lock);
	}
}

/* Entry point of the "tego scheduler" background worker. */
void
tego_scheduler_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(tego_database, NULL, 0);
	tego_pin_worker_settings();
	pgstat_report_appname("tego scheduler");
	tego_plan_options = 0;		/* see tego_prepare() */
	{
		long		n = sysconf(_SC_NPROCESSORS_ONLN);

		online_cpus = (n > 0 && n < 1024) ? (int) n : 1;
	}

	SchedulerContext = AllocSetContextCreate(TopMemoryContext,
											 "tego scheduler",
											 ALLOCSET_DEFAULT_SIZES);
	PassContext = AllocSetContextCreate(TopMemoryContext,
										"tego scheduler pass",
										ALLOCSET_DEFAULT_SIZES);
	forget_jobs();

	LWLockAcquire(tego_shared->lock, LW_EXCLUSIVE);
	tego_shared->scheduler_pid = MyProcPid;
	tego_shared->scheduler_latch = MyLatch;
	tego_shared->scheduler_started = GetCurrentTimestamp();
	LWLockRelease(tego_shared->lock);
	before_shmem_exit(scheduler_shutdown, (Datum) 0);

	for (;;)
	{
		volatile TimestampTz wake;
		long		timeout_ms = -1;
		int			rc;
		int			events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH;

		MemoryContextReset(PassContext);
		MemoryContextSwitchTo(PassContext);

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* apply a new tego.job_run_retention at once */
			next_prune = 0;
		}

		PG_TRY();
		{
			TimestampTz next_check = tego_leader_check_run();

			/*
			 * Fenced (tego.leader_check): no pass at all until the check
			 * succeeds again; jobs already running finish on their own and
			 * are collected then.
			 */
			if (tego_leader_confirmed(NULL))
				wake = Min(scheduler_pass(), next_check);
			else
				wake = next_check;
		}
		PG_CATCH();
		{
			/*
			 * Report the error and carry on after a second, with every job
			 * read again: a job worker may still be running, so the worker
			 * does not exit (its jobs would be marked interrupted).
			 */
			MemoryContextSwitchTo(PassContext);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			MemoryContextSwitchTo(PassContext);
			pgstat_report_activity(STATE_IDLE, NULL);
			/* what the pass wrote is gone: memory follows the tables */
			settle_recorded_runs(false);
			loaded_extension = InvalidOid;
			careful = true;
			wake = GetCurrentTimestamp() + USECS_PER_SEC;
		}
		PG_END_TRY();

		if (wake != DT_NOEND)
		{
			TimestampTz now = GetCurrentTimestamp();

			timeout_ms = (wake <= now) ? 0 :
				(long) Min((wake - now + 999) / 1000, (TimestampTz) MAX_SLEEP_MS);
			events |= WL_TIMEOUT;
		}

		rc = WaitLatch(MyLatch, events, timeout_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		/*
		 * NB: woken early (a job worker finished, a job changed): gather
		 * what else arrives in the next few milliseconds into one pass,
		 * unless something is due sooner.  Jobs due at the same time then
		 * start and finish without a scheduler pass competing with them
		 * for the CPU after each one.
		 */
		if ((rc & WL_LATCH_SET) && !(rc & WL_TIMEOUT))
		{
			TimestampTz until = GetCurrentTimestamp() + COALESCE_USECS;

			if (wake != DT_NOEND)
				until = Min(until, wake);
			for (;;)
			{
				TimestampTz now = GetCurrentTimestamp();

				if (now >= until)
					break;
				(void) WaitLatch(MyLatch,
								 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 (long) ((until - now + 999) / 1000),
								 PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
		}
	}
}
