/*-------------------------------------------------------------------------
 *
 * apps.c
 *	  Application status (TachyBase's AppSupervisor and the maintaining
 *	  status of an Application) kept in shared memory for the whole
 *	  cluster, and the "tego notifier" worker that announces its changes.
 *
 *	  The state is ephemeral on purpose: it says what the running processes
 *	  are doing, so it starts empty with the server, and a change takes
 *	  effect at once, whether or not the caller's transaction commits (as
 *	  a sequence does).  Each app belongs to the database it was set in,
 *	  and to the role that set it first (its owner): only members of that
 *	  role (and superusers) may change or forget it, and only they (and
 *	  roles with the privileges of pg_read_all_stats) read its message,
 *	  error and pid.  Quotas per database and per role keep one database
 *	  or role from taking every slot.
 *
 *	  Announcing a change with NOTIFY from the caller's transaction would
 *	  put every status change through the NOTIFY lock and a commit of its
 *	  own.  Instead a change marks its app dirty and wakes the database's
 *	  notifier, a background worker started on demand, which sends one
 *	  NOTIFY per dirty app (its state at that moment) in one transaction
 *	  and exits after a while without work.  Changes in quick succession
 *	  can therefore reach listeners as one notification, with the latest
 *	  state; each app's version counts every change.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "tego.h"
#include "apps.h"
#include "scheduler.h"

/* settings (PGC_POSTMASTER: they size shared memory) */
int			tego_max_apps = 100;
int			tego_max_message_bytes = 1024;

/* quotas (-1: derived from tego.max_apps; see tego_apps_define_settings) */
static int	tego_max_apps_per_database = -1;
static int	tego_max_apps_per_role = -1;

/* tego.max_leases_per_role: read by the SQL lease functions */
static int	tego_max_leases_per_role = 100;

/* Longest app or command name. */
#define APP_NAME_BYTES		(NAMEDATALEN - 1)

/* Databases whose changes can be announced at the same time. */
#define MAX_NOTIFIERS		16

/* A notifier exits after this long without a change to announce. */
#define NOTIFIER_IDLE_MS	(10 * 1000)

static const char *const app_statuses[] = {
	"initializing", "initialized", "running", "commanding", "stopped",
	"error", "not_found", NULL
};

#define APP_INITIALIZING	0
#define APP_COMMANDING	3
#define APP_ERROR		5
#define APP_NOT_FOUND	6

static const char *const maintaining_statuses[] = {
	"command_begin", "command_running", "command_end", "command_error", NULL
};

#define MAINT_BEGIN		0
#define MAINT_RUNNING	1
#define MAINT_END		2
#define MAINT_ERROR		3

/* One app.  message and error follow it, max_message_bytes + 1 each. */
typedef struct AppSlot
{
	Oid			database_oid;	/* InvalidOid: free */
	char		name[NAMEDATALEN];
	Oid			owner;			/* the role that set it first */
	int			status;			/* index into app_statuses */
	int			previous_status;	/* status before a command; -1: none */
	int			maintaining;	/* index into maintaining_statuses; -1 */
	char		command[NAMEDATALEN];	/* "" when none */
	bool		has_message;
	bool		has_error;
	bool		dirty;			/* changed since last announced */
	Oid			announce_database;	/* whose notifier announces it */
	TimestampTz updated_at;
	int			pid;			/* the session that changed it last */
	uint64		version;		/* changes so far */
} AppSlot;

/* The notifier of one database. */
typedef struct NotifierSlot
{
	Oid			database_oid;	/* InvalidOid: free */
	pid_t		pid;			/* 0 while it starts */
	Latch	   *latch;
	bool		woken;			/* its latch was set since its last look */
} NotifierSlot;

typedef struct TegoApps
{
	LWLock	   *lock;			/* protects everything below */
	int			max_apps;
	int			message_bytes;
	Size		slot_size;
	int			napps;			/* slots in use */
	NotifierSlot notifiers[MAX_NOTIFIERS];
	char		slots[FLEXIBLE_ARRAY_MEMBER];
} TegoApps;

static TegoApps *tego_apps = NULL;

#define SLOT(i)			((AppSlot *) (tego_apps->slots + (Size) (i) * tego_apps->slot_size))
#define SLOT_MESSAGE(s)	((char *) (s) + MAXALIGN(sizeof(AppSlot)))
#define SLOT_ERROR(s)	(SLOT_MESSAGE(s) + tego_apps->message_bytes + 1)

PG_FUNCTION_INFO_V1(app_status_set);
PG_FUNCTION_INFO_V1(app_maintaining_set);
PG_FUNCTION_INFO_V1(app_forget);
PG_FUNCTION_INFO_V1(app_list);
PG_FUNCTION_INFO_V1(app_entries);

/*
 * Define the quota settings of the shared state (at every load: they size
 * nothing): apps per database and per role, and leases per role.
 */
void
tego_apps_define_settings(void)
{
	DefineCustomIntVariable("tego.max_apps_per_database",
							"Most apps whose status one database keeps.",
							"-1 means half of tego.max_apps, so that one database cannot take every slot.",
							&tego_max_apps_per_database,
							-1,
							-1, 100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tego.max_apps_per_role",
							"Most apps whose status one role keeps, over all databases.",
							"-1 means the value of tego.max_apps_per_database.",
							&tego_max_apps_per_role,
							-1,
							-1, 100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tego.max_leases_per_role",
							"Most lease names one role keeps.",
							"A role that has this many reclaims its leases that are not live to make a new one.",
							&tego_max_leases_per_role,
							100,
							1, 1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}

/* For tego.status(): apps and notifiers in use, and their limits. */
void
tego_apps_usage(int *apps, int *max_apps, int *notifiers, int *max_notifiers)
{
	int			i;

	*apps = *max_apps = *notifiers = 0;
	*max_notifiers = MAX_NOTIFIERS;
	if (tego_apps == NULL)
		return;
	LWLockAcquire(tego_apps->lock, LW_SHARED);
	*apps = tego_apps->napps;
	*max_apps = tego_apps->max_apps;
	for (i = 0; i < MAX_NOTIFIERS; i++)
		if (OidIsValid(tego_apps->notifiers[i].database_oid))
			(*notifiers)++;
	LWLockRelease(tego_apps->lock);
}

/* ------------------------------------------------------------------------
 * Shared memory
 * ------------------------------------------------------------------------
 */

static Size
app_slot_size(void)
{
	return MAXALIGN(MAXALIGN(sizeof(AppSlot)) + 2 * ((Size) tego_max_message_bytes + 1));
}

/* Shared memory the app store needs (called at preload). */
Size
tego_apps_shmem_size(void)
{
	return add_size(offsetof(TegoApps, slots),
					mul_size(tego_max_apps, app_slot_size()));
}

/* Create or attach to the app store; lock is its LWLock. */
void
tego_apps_shmem_init(LWLock *lock)
{
	bool		found;

	tego_apps = ShmemInitStruct("tego apps", tego_apps_shmem_size(), &found);
	if (!found)
	{
		memset(tego_apps, 0, tego_apps_shmem_size());
		tego_apps->lock = lock;
		tego_apps->max_apps = tego_max_apps;
		tego_apps->message_bytes = tego_max_message_bytes;
		tego_apps->slot_size = app_slot_size();
	}
}

/* Raise an error unless the app store exists (tego preloaded). */
static void
require_app_store(void)
{
	if (tego_apps == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tego shared state is not available"),
				 errhint("Add tego to shared_preload_libraries and restart the server.")));
}

/* ------------------------------------------------------------------------
 * Argument checks
 * ------------------------------------------------------------------------
 */

/* The text argument argno as a C string; an error names it when NULL. */
static char *
text_arg(FunctionCallInfo fcinfo, int argno, const char *what, bool required)
{
	if (PG_ARGISNULL(argno))
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", what)));
		return NULL;
	}
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

static void
check_name(const char *name, const char *what)
{
	size_t		len = strlen(name);

	if (len == 0 || len > APP_NAME_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be 1 to %d bytes long", what, APP_NAME_BYTES),
				 len ? errdetail("It is %zu bytes long.", len) : 0));
}

static void
check_message(const char *message, const char *what)
{
	size_t		len;

	if (message == NULL)
		return;
	len = strlen(message);
	if (len > (size_t) tego_apps->message_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s is too long", what),
				 errdetail("It is %zu bytes long; tego.max_message_bytes is %d.",
						   len, tego_apps->message_bytes)));
}

/* Index of value in list, or an error listing the valid values. */
static int
lookup_value(const char *value, const char *const *list, const char *what)
{
	StringInfoData valid;
	int			i;

	for (i = 0; list[i]; i++)
		if (strcmp(value, list[i]) == 0)
			return i;
	initStringInfo(&valid);
	for (i = 0; list[i]; i++)
		appendStringInfo(&valid, "%s%s", i ? ", " : "", list[i]);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid %s \"%s\"", what, value),
			 errdetail("Valid values: %s.", valid.data)));
	return -1;					/* keep compiler quiet */
}

/* ------------------------------------------------------------------------
 * Changes
 * ------------------------------------------------------------------------
 */

/* Most apps one database may keep (tego.max_apps_per_database). */
static int
database_quota(void)
{
	if (tego_max_apps_per_database >= 0)
		return tego_max_apps_per_database;
	return Max(tego_apps->max_apps / 2, 1);
}

/* Most apps one role may keep (tego.max_apps_per_role). */
static int
role_quota(void)
{
	if (tego_max_apps_per_role >= 0)
		return tego_max_apps_per_role;
	return database_quota();
}

/*
 * The slot of app in this database, created (status initializing, owned by
 * owner) when create and there is none; NULL when there is none and
 * !create.  Call with the lock held exclusively; it is released before a
 * quota error.
 */
static AppSlot *
find_app(const char *app, bool create, Oid owner)
{
	int			i;
	AppSlot    *free_slot = NULL;
	int			in_database = 0;
	int			of_owner = 0;
	int			quota;

	for (i = 0; i < tego_apps->max_apps; i++)
	{
		AppSlot    *s = SLOT(i);

		if (s->database_oid == MyDatabaseId && strcmp(s->name, app) == 0)
			return s;
		if (!OidIsValid(s->database_oid))
		{
			if (free_slot == NULL)
				free_slot = s;
			continue;
		}
		if (s->database_oid == MyDatabaseId)
			in_database++;
		if (s->owner == owner)
			of_owner++;
	}
	if (!create)
		return NULL;
	if (in_database >= (quota = database_quota()))
	{
		LWLockRelease(tego_apps->lock);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many apps in database \"%s\"", get_database_name(MyDatabaseId)),
				 errdetail("tego.max_apps_per_database is %d.", quota),
				 errhint("Forget apps that are gone with tego.app_forget(), or raise tego.max_apps_per_database.")));
	}
	if (of_owner >= (quota = role_quota()))
	{
		LWLockRelease(tego_apps->lock);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many apps for role \"%s\"", GetUserNameFromId(owner, false)),
				 errdetail("tego.max_apps_per_role is %d.", quota),
				 errhint("Forget apps that are gone with tego.app_forget(), or raise tego.max_apps_per_role.")));
	}
	if (free_slot == NULL)
	{
		int			max_apps = tego_apps->max_apps;

		LWLockRelease(tego_apps->lock);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many apps"),
				 errdetail("tego.max_apps is %d.", max_apps),
				 errhint("Forget apps that are gone with tego.app_forget(), or raise tego.max_apps (it takes a restart).")));
	}
	memset(free_slot, 0, sizeof(AppSlot));
	free_slot->database_oid = MyDatabaseId;
	strlcpy(free_slot->name, app, NAMEDATALEN);
	free_slot->owner = owner;
	free_slot->status = APP_INITIALIZING;
	free_slot->previous_status = -1;
	free_slot->maintaining = -1;
	tego_apps->napps++;
	return free_slot;
}

/*
 * Take the lock exclusively and return the slot of app in this database
 * for a change by the caller: created for it when create and there is none
 * (NULL when there is none and !create).  Raises 42501 when the app belongs
 * to a role the caller is not a member of.
 */
static AppSlot *
lock_app_for_change(const char *app, bool create)
{
	Oid			me = GetOuterUserId();
	Oid			allowed = InvalidOid;	/* an owner the caller may act for */

	for (;;)
	{
		AppSlot    *s;
		Oid			owner;

		LWLockAcquire(tego_apps->lock, LW_EXCLUSIVE);
		s = find_app(app, create, me);
		if (s == NULL || s->owner == me ||
			(OidIsValid(allowed) && s->owner == allowed))
			return s;
		owner = s->owner;
		LWLockRelease(tego_apps->lock);

		/*
		 * NB: membership is looked up in the catalogs, which must not be
		 * done under an LWLock; the slot is looked up again afterwards, and
		 * checked again if it changed hands meanwhile
		 */
		if (!is_member_of_role(me, owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for app \"%s\"", app),
					 errdetail("The app belongs to another role."),
					 errhint("Change it as its owning role or a member of that role.")));
		allowed = owner;
	}
}

static void
set_text(AppSlot *s, bool is_error, const char *value)
{
	char	   *dest = is_error ? SLOT_ERROR(s) : SLOT_MESSAGE(s);

	if (is_error)
		s->has_error = (value != NULL);
	else
		s->has_message = (value != NULL);
	strlcpy(dest, value ? value : "", tego_apps->message_bytes + 1);
}

/*
 * Mark s changed and make sure this database's notifier will announce it.
 * Returns the latch to set once the lock is released, or NULL when a new
 * notifier must be started (*start) or is starting already.
 */
static Latch *
touch(AppSlot *s, bool *start)
{
	int			i;
	NotifierSlot *free_slot = NULL;

	s->dirty = true;
	s->announce_database = MyDatabaseId;
	s->version++;
	s->updated_at = GetCurrentTimestamp();
	s->pid = MyProcPid;

	*start = false;
	/* NB: a standby cannot NOTIFY: its changes are announced after promotion */
	if (RecoveryInProgress())
		return NULL;
	for (i = 0; i < MAX_NOTIFIERS; i++)
	{
		NotifierSlot *n = &tego_apps->notifiers[i];

		if (n->database_oid == MyDatabaseId)
		{
			/*
			 * NB: one wake-up per look of the notifier is enough: at a high
			 * rate of changes, most of them then cost no signal
			 */
			if (n->woken)
				return NULL;
			n->woken = true;
			return n->latch;	/* NULL while it starts: it will look */
		}
		if (free_slot == NULL && !OidIsValid(n->database_oid))
			free_slot = n;
	}
	if (free_slot)
	{
		free_slot->database_oid = MyDatabaseId;
		free_slot->pid = 0;
		free_slot->latch = NULL;
		free_slot->woken = true;
		*start = true;
	}
	return NULL;
}

/* Start the notifier of this database; forget its slot if that fails. */
static void
start_notifier(void)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	int			i;

	tego_dynamic_worker(&worker, "tego_notifier_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "tego notifier for database %u", MyDatabaseId);
	snprintf(worker.bgw_type, BGW_MAXLEN, "tego notifier");
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	worker.bgw_notify_pid = 0;

	if (RegisterDynamicBackgroundWorker(&worker, &handle))
		return;

	LWLockAcquire(tego_apps->lock, LW_EXCLUSIVE);
	for (i = 0; i < MAX_NOTIFIERS; i++)
		if (tego_apps->notifiers[i].database_oid == MyDatabaseId &&
			tego_apps->notifiers[i].pid == 0)
			tego_apps->notifiers[i].database_oid = InvalidOid;
	LWLockRelease(tego_apps->lock);
	ereport(WARNING,
			(errmsg("could not start the tego notifier: app status changes are not announced"),
			 errhint("Raise max_worker_processes.")));
}

/* After a change: wake (or start) the notifier, with the lock released. */
static void
announce(Latch *latch, bool start)
{
	if (latch)
		SetLatch(latch);
	else if (start)
		start_notifier();
}

/*
 * End a change of s: store its message and error, mark it changed, release
 * the lock and announce it.
 */
static void
finish_change(AppSlot *s, const char *message, const char *error)
{
	Latch	   *latch;
	bool		start;

	set_text(s, false, message);
	set_text(s, true, error);
	latch = touch(s, &start);
	LWLockRelease(tego_apps->lock);
	announce(latch, start);
}

/*
 * tego.app_status_set(app text, status text, message text DEFAULT NULL,
 *                     error text DEFAULT NULL) RETURNS void
 */
Datum
app_status_set(PG_FUNCTION_ARGS)
{
	char	   *app = text_arg(fcinfo, 0, "app name", true);
	char	   *status_name = text_arg(fcinfo, 1, "status", true);
	char	   *message = text_arg(fcinfo, 2, "message", false);
	char	   *error = text_arg(fcinfo, 3, "error", false);
	int			status;
	AppSlot    *s;

	require_app_store();
	check_name(app, "app name");
	status = lookup_value(status_name, app_statuses, "app status");
	check_message(message, "message");
	check_message(error, "error");

	s = lock_app_for_change(app, true);
	s->status = status;
	finish_change(s, message, error);
	PG_RETURN_VOID();
}

/*
 * tego.app_maintaining_set(app text, command text, status text,
 *                          message text DEFAULT NULL,
 *                          error text DEFAULT NULL) RETURNS void
 *
 * command_begin saves the app's status and sets "commanding";
 * command_running only records progress; command_end restores the saved
 * status; command_error with an error is fatal (status "error", the error
 * kept), without one it restores the saved status as command_end does.
 */
Datum
app_maintaining_set(PG_FUNCTION_ARGS)
{
	char	   *app = text_arg(fcinfo, 0, "app name", true);
	char	   *command = text_arg(fcinfo, 1, "command", true);
	char	   *status_name = text_arg(fcinfo, 2, "maintaining status", true);
	char	   *message = text_arg(fcinfo, 3, "message", false);
	char	   *error = text_arg(fcinfo, 4, "error", false);
	int			maintaining;
	AppSlot    *s;

	require_app_store();
	check_name(app, "app name");
	check_name(command, "command");
	maintaining = lookup_value(status_name, maintaining_statuses, "maintaining status");
	check_message(message, "message");
	check_message(error, "error");

	s = lock_app_for_change(app, true);
	switch (maintaining)
	{
		case MAINT_BEGIN:
			if (s->status != APP_COMMANDING)
				s->previous_status = s->status;
			s->status = APP_COMMANDING;
			break;
		case MAINT_RUNNING:
			break;
		case MAINT_END:
		case MAINT_ERROR:
			if (maintaining == MAINT_ERROR && error != NULL)
				s->status = APP_ERROR;
			else if (s->previous_status >= 0)
				s->status = s->previous_status;
			s->previous_status = -1;
			break;
	}
	s->maintaining = maintaining;
	strlcpy(s->command, command, NAMEDATALEN);
	finish_change(s, message, error);
	PG_RETURN_VOID();
}

/* tego.app_forget(app text) RETURNS boolean: drop an app's entry. */
Datum
app_forget(PG_FUNCTION_ARGS)
{
	char	   *app = text_arg(fcinfo, 0, "app name", true);
	AppSlot    *s;
	bool		found = false;
	Latch	   *latch = NULL;
	bool		start = false;

	require_app_store();
	check_name(app, "app name");

	s = lock_app_for_change(app, false);
	if (s)
	{
		/* announced as not_found, then the slot is free */
		s->status = APP_NOT_FOUND;
		latch = touch(s, &start);
		s->database_oid = InvalidOid;
		tego_apps->napps--;
		found = true;
	}
	LWLockRelease(tego_apps->lock);
	if (found)
		announce(latch, start);
	PG_RETURN_BOOL(found);
}

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------
 */

/* A copy of one app's state, taken under the lock. */
typedef struct AppCopy
{
	char		name[NAMEDATALEN];
	Oid			owner;
	int			status;
	int			previous_status;
	int			maintaining;
	char		command[NAMEDATALEN];
	char	   *message;
	char	   *error;
	TimestampTz updated_at;
	int			pid;
	uint64		version;
	bool		forgotten;
} AppCopy;

static void
copy_app(AppSlot *s, AppCopy *c)
{
	memcpy(c->name, s->name, NAMEDATALEN);
	c->owner = s->owner;
	c->status = s->status;
	c->previous_status = s->previous_status;
	c->maintaining = s->maintaining;
	memcpy(c->command, s->command, NAMEDATALEN);
	c->message = s->has_message ? pstrdup(SLOT_MESSAGE(s)) : NULL;
	c->error = s->has_error ? pstrdup(SLOT_ERROR(s)) : NULL;
	c->updated_at = s->updated_at;
	c->pid = s->pid;
	c->version = s->version;
	c->forgotten = !OidIsValid(s->database_oid);
}

/*
 * Put the apps of this database into the result of an SRF, as reader sees
 * them: the message, error and pid of an app only when reader is a member
 * of its owner or has the privileges of pg_read_all_stats (as
 * pg_stat_activity shows queries); the owner too when with_owner.
 */
static void
list_apps(FunctionCallInfo fcinfo, Oid reader, bool with_owner)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AppCopy    *copies;
	int			n = 0;
	int			i;
	bool		reads_all;
	Oid			seen_owner = InvalidOid;
	bool		sees = false;

	require_app_store();
	InitMaterializedSRF(fcinfo, 0);

	copies = palloc(sizeof(AppCopy) * Max(tego_apps->max_apps, 1));
	LWLockAcquire(tego_apps->lock, LW_SHARED);
	for (i = 0; i < tego_apps->max_apps; i++)
	{
		AppSlot    *s = SLOT(i);

		if (s->database_oid == MyDatabaseId)
			copy_app(s, &copies[n++]);
	}
	LWLockRelease(tego_apps->lock);

	reads_all = has_privs_of_role(reader, ROLE_PG_READ_ALL_STATS);
	for (i = 0; i < n; i++)
	{
		AppCopy    *c = &copies[i];
		Datum		values[11];
		bool		nulls[11] = {0};
		char	   *owner_name;

		if (!OidIsValid(seen_owner) || c->owner != seen_owner)
		{
			seen_owner = c->owner;
			sees = reads_all || is_member_of_role(reader, c->owner);
		}
		values[0] = CStringGetTextDatum(c->name);
		values[1] = CStringGetTextDatum(app_statuses[c->status]);
		if (c->previous_status >= 0)
			values[2] = CStringGetTextDatum(app_statuses[c->previous_status]);
		else
			nulls[2] = true;
		if (c->command[0])
			values[3] = CStringGetTextDatum(c->command);
		else
			nulls[3] = true;
		if (c->maintaining >= 0)
			values[4] = CStringGetTextDatum(maintaining_statuses[c->maintaining]);
		else
			nulls[4] = true;
		if (c->message && sees)
			values[5] = CStringGetTextDatum(c->message);
		else
			nulls[5] = true;
		if (c->error && sees)
			values[6] = CStringGetTextDatum(c->error);
		else
			nulls[6] = true;
		values[7] = TimestampTzGetDatum(c->updated_at);
		values[8] = Int32GetDatum(c->pid);
		nulls[8] = !sees;
		values[9] = Int64GetDatum((int64) c->version);
		if (with_owner)
		{
			/* NULL when the owner has been dropped */
			owner_name = GetUserNameFromId(c->owner, true);
			if (owner_name)
				values[10] = DirectFunctionCall1(namein, CStringGetDatum(owner_name));
			else
				nulls[10] = true;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * tego._apps() RETURNS SETOF record: the apps of this database, as the
 * view tego.apps showed them before 0.3.0.  NB: SECURITY DEFINER, so the
 * reader is the outer user.
 */
Datum
app_list(PG_FUNCTION_ARGS)
{
	list_apps(fcinfo, GetOuterUserId(), false);
	return (Datum) 0;
}

/*
 * tego._app_entries() RETURNS SETOF record: the apps of this database with
 * their owners (the view tego.apps).  Executable by everyone, and run as
 * the reader of the view: it answers only a role that may read tego.apps.
 */
Datum
app_entries(PG_FUNCTION_ARGS)
{
	Oid			nsp = get_func_namespace(fcinfo->flinfo->fn_oid);
	Oid			view = get_relname_relid("apps", nsp);

	if (!OidIsValid(view) ||
		pg_class_aclcheck(view, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for view apps"),
				 errhint("Read the view tego.apps; it needs the SELECT privilege on it.")));
	list_apps(fcinfo, GetUserId(), true);
	return (Datum) 0;
}

/* The JSON object announced for an app: what anyone may know of it. */
static Jsonb *
app_json(AppCopy *c)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"app\": ");
	escape_json(&buf, c->name);
	appendStringInfo(&buf, ", \"status\": \"%s\"", app_statuses[c->status]);
	if (c->previous_status >= 0)
		appendStringInfo(&buf, ", \"previous_status\": \"%s\"",
						 app_statuses[c->previous_status]);
	else
		appendStringInfoString(&buf, ", \"previous_status\": null");
	appendStringInfoString(&buf, ", \"command\": ");
	if (c->command[0])
		escape_json(&buf, c->command);
	else
		appendStringInfoString(&buf, "null");
	if (c->maintaining >= 0)
		appendStringInfo(&buf, ", \"maintaining_status\": \"%s\"",
						 maintaining_statuses[c->maintaining]);
	else
		appendStringInfoString(&buf, ", \"maintaining_status\": null");
	/*
	 * NB: no message, error or pid: any role can LISTEN, and those are for
	 * the members of the app's owner (tego.apps shows them only to them).
	 */
	appendStringInfo(&buf, ", \"version\": " UINT64_FORMAT ", \"updated_at\": ",
					 c->version);
	escape_json(&buf, timestamptz_to_str(c->updated_at));
	appendStringInfoChar(&buf, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/* ------------------------------------------------------------------------
 * The notifier
 * ------------------------------------------------------------------------
 */

static NotifierSlot *my_notifier = NULL;

/* Leave the notifier slot when the worker exits. */
static void
notifier_exit(int code, Datum arg)
{
	if (my_notifier == NULL || tego_apps == NULL)
		return;
	LWLockAcquire(tego_apps->lock, LW_EXCLUSIVE);
	if (my_notifier->pid == MyProcPid)
		my_notifier->database_oid = InvalidOid;
	LWLockRelease(tego_apps->lock);
	my_notifier = NULL;
}

/*
 * Entry point of a "tego notifier" background worker: announce the dirty
 * apps of its database on tego_apps until it has had nothing to do for
 * NOTIFIER_IDLE_MS.
 */
void
tego_notifier_main(Datum main_arg)
{
	Oid			database_oid = DatumGetObjectId(main_arg);
	TimestampTz idle_since;
	MemoryContext pass_context;
	int			i;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(database_oid, BOOTSTRAP_SUPERUSERID, 0);
	tego_pin_worker_settings();
	pgstat_report_appname("tego notifier");
	before_shmem_exit(notifier_exit, (Datum) 0);

	LWLockAcquire(tego_apps->lock, LW_EXCLUSIVE);
	for (i = 0; i < MAX_NOTIFIERS; i++)
		if (tego_apps->notifiers[i].database_oid == database_oid &&
			tego_apps->notifiers[i].pid == 0)
		{
			my_notifier = &tego_apps->notifiers[i];
			my_notifier->pid = MyProcPid;
			my_notifier->latch = MyLatch;
			break;
		}
	LWLockRelease(tego_apps->lock);
	if (my_notifier == NULL)
		proc_exit(0);			/* another one serves this database */

	pass_context = AllocSetContextCreate(TopMemoryContext, "tego notifier",
										 ALLOCSET_DEFAULT_SIZES);
	idle_since = GetCurrentTimestamp();
	for (;;)
	{
		AppCopy    *copies;
		int			n = 0;
		MemoryContext old;
		long		left;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(pass_context);
		old = MemoryContextSwitchTo(pass_context);

		copies = palloc(sizeof(AppCopy) * Max(tego_apps->max_apps, 1));
		LWLockAcquire(tego_apps->lock, LW_EXCLUSIVE);
		my_notifier->woken = false;
		for (i = 0; i < tego_apps->max_apps; i++)
		{
			AppSlot    *s = SLOT(i);

			if (s->dirty && s->announce_database == database_oid)
			{
				copy_app(s, &copies[n++]);
				s->dirty = false;
			}
		}
		if (n == 0 &&
			GetCurrentTimestamp() >= TimestampTzPlusMilliseconds(idle_since, NOTIFIER_IDLE_MS))
		{
			/* NB: under the lock, so that no change can miss us */
			my_notifier->database_oid = InvalidOid;
			my_notifier = NULL;
			LWLockRelease(tego_apps->lock);
			proc_exit(0);
		}
		LWLockRelease(tego_apps->lock);

		if (n > 0)
		{
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			for (i = 0; i < n; i++)
				Async_Notify(TEGO_TOPIC_APPS,
							 tego_notify_text(-1, TEGO_TOPIC_APPS,
											  copies[i].forgotten ? "app-forgotten" : "app-status-changed",
											  copies[i].name, app_json(&copies[i])));
			CommitTransactionCommand();
			idle_since = GetCurrentTimestamp();
		}
		MemoryContextSwitchTo(old);

		left = (long) ((TimestampTzPlusMilliseconds(idle_since, NOTIFIER_IDLE_MS) -
						GetCurrentTimestamp() + 999) / 1000);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(left, 1), PG_WAIT_EXTENSION);
	}
}
