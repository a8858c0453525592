/*-------------------------------------------------------------------------
 *
 * tego.c
 *	  Entry point of the tego extension: module magic, settings and the
 *	  registration of the per-backend machinery (transaction callbacks
 *	  that turn queued state changes into ordered events at commit).
 *
 *	  Everything in this file works whether or not tego is listed in
 *	  shared_preload_libraries: the library is loaded into a backend the
 *	  first time one of its functions is called there.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "tego.h"
#include "apps.h"
#include "leader.h"
#include "mirror.h"
#include "scheduler.h"

PG_MODULE_MAGIC;

/* tego.client_id: publisher id put into published messages. */
char	   *tego_client_id = NULL;

/* tego.event_retention: seconds of events kept by compaction (0 = all). */
int			tego_event_retention = 7 * 24 * 60 * 60;

/* tego.max_publish_bytes: largest tego.publish() message (jsonb bytes). */
int			tego_max_publish_bytes = 1024 * 1024;

/* tego.max_leases: most lease names (the SQL lease functions read it). */
static int	tego_max_leases = 1000;

/* Scheduler settings. */
char	   *tego_database = NULL;
int			tego_max_running_jobs = 5;
int			tego_max_running_jobs_per_role = -1;
int			tego_job_run_retention = 7 * 24 * 60 * 60;
bool		tego_allow_superuser_jobs = false;
bool		tego_enable_scheduler = true;
bool		tego_job_group_commit = true;

void		_PG_init(void);

static const struct config_enum_entry registry_source_options[] = {
	{"table", TEGO_REGISTRY_TABLE, false},
	{"memory", TEGO_REGISTRY_MEMORY, false},
	{NULL, 0, false}
};

/* Longest tego.client_id, in bytes. */
#define TEGO_MAX_CLIENT_ID_BYTES 200

/* GUC check hook: a client id is short and printable. */
static bool
check_client_id(char **newval, void **extra, GucSource source)
{
	const char *p;

	if (strlen(*newval) > TEGO_MAX_CLIENT_ID_BYTES)
	{
		GUC_check_errdetail("A client id is at most %d bytes long.",
							TEGO_MAX_CLIENT_ID_BYTES);
		return false;
	}
	for (p = *newval; *p; p++)
	{
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
		{
			GUC_check_errdetail("A client id must not contain control characters.");
			return false;
		}
	}
	return true;
}

/*
 * Define the settings and install the transaction callbacks; at preload,
 * also reserve shared memory and register the scheduler.
 */
void
_PG_init(void)
{
	DefineCustomStringVariable("tego.client_id",
							   "Publisher id written into messages sent with tego.publish().",
							   "Empty means application_name and the backend's process id.",
							   &tego_client_id,
							   "",
							   PGC_USERSET,
							   0,
							   check_client_id, NULL, NULL);

	DefineCustomIntVariable("tego.event_retention",
							"How long tego.compact_events() keeps events.",
							"Zero keeps every event.  The newest event is always kept.",
							&tego_event_retention,
							7 * 24 * 60 * 60,
							0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tego.max_publish_bytes",
							"Largest message tego.publish() accepts, in bytes of its jsonb form.",
							"Only a superuser (or a role granted SET on it) can change it, so a role cannot lift it for itself.",
							&tego_max_publish_bytes,
							1024 * 1024,
							1024, MaxAllocSize,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tego.max_running_jobs",
							"Most SQL jobs the scheduler runs at the same time.",
							"Each runs in a background worker; max_worker_processes must leave room for them.",
							&tego_max_running_jobs,
							5,
							1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tego.max_running_jobs_per_role",
							"Most SQL jobs of one role the scheduler runs at the same time.",
							"-1 means half of tego.max_running_jobs, rounded up, so that one role's long jobs leave slots for the others.",
							&tego_max_running_jobs_per_role,
							-1,
							-1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tego.max_leases",
							"Most lease names tego.lease_acquire() keeps.",
							"A lease name stays after release, to keep its last token.",
							&tego_max_leases,
							1000,
							1, 1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	tego_apps_define_settings();

	DefineCustomStringVariable("tego.leader_check",
							   "HTTP endpoint that answers 200 only while this server is the leader.",
							   "When set, the scheduler asks it every tego.leader_check_interval; without a successful answer in the last two intervals, no job fires and no commit with tego events succeeds (Patroni: http://127.0.0.1:8008/primary).",
							   &tego_leader_check,
							   "",
							   PGC_SIGHUP,
							   0,
							   tego_check_leader_check, NULL, NULL);

	DefineCustomIntVariable("tego.leader_check_interval",
							"How often the scheduler runs the leader check.",
							"Leadership counts as confirmed for two intervals after a successful check.",
							&tego_leader_check_interval,
							1000,
							100, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tego.leader_check_timeout",
							"How long the leader check waits for a connection and an answer.",
							NULL,
							&tego_leader_check_timeout,
							500,
							10, 10000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tego.job_run_retention",
							"How long the scheduler keeps finished job runs.",
							"Zero keeps every run.",
							&tego_job_run_retention,
							7 * 24 * 60 * 60,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("tego.allow_superuser_jobs",
							 "Allow jobs that run as a superuser.",
							 NULL,
							 &tego_allow_superuser_jobs,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("tego.job_group_commit",
							 "Let the job runs due together share one WAL flush.",
							 "A job worker commits the runs it takes back to back without waiting for the WAL flush, then flushes once (and waits for synchronous standbys as the role's synchronous_commit asks) before any of them counts as finished.",
							 &tego_job_group_commit,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("tego.registry_source",
							 "Where tego.plugin_get and tego.plugin_list read: the table or its shared-memory mirror.",
							 "memory needs tego in shared_preload_libraries.",
							 &tego_registry_source,
							 TEGO_REGISTRY_TABLE,
							 registry_source_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	tego_events_init();

	if (!process_shared_preload_libraries_in_progress)
	{
		MarkGUCPrefixReserved("tego");
		return;
	}

	DefineCustomStringVariable("tego.database",
							   "Database in which the tego scheduler runs.",
							   NULL,
							   &tego_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("tego.max_plugins",
							"Most plugins the shared-memory mirror of the registry holds, over all databases.",
							NULL,
							&tego_max_plugins,
							1000,
							16, 100000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tego.max_apps",
							"Most apps whose status tego keeps (shared memory).",
							NULL,
							&tego_max_apps,
							100,
							1, 100000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tego.max_message_bytes",
							"Longest app status message or error tego keeps.",
							"Longer ones are refused, not truncated.",
							&tego_max_message_bytes,
							1024,
							64, 65536,
							PGC_POSTMASTER,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("tego.enable_scheduler",
							 "Start the tego scheduler background worker.",
							 NULL,
							 &tego_enable_scheduler,
							 true,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("tego");

	tego_shmem_init();
	if (tego_enable_scheduler)
		tego_register_scheduler();
}
