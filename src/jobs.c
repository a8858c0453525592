/*-------------------------------------------------------------------------
 *
 * jobs.c
 *	  SQL-callable helpers of the scheduler: tego.cron_next(), schedule and
 *	  time zone validation, the caller's role, event emission for the job
 *	  functions, and the request to wake the scheduler at commit.
 *
 *	  The job functions themselves (tego.schedule() and friends) are
 *	  PL/pgSQL in the install script; they call these.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "tego.h"
#include "scheduler.h"

/* Seconds between the Unix epoch and PostgreSQL's (2000-01-01). */
#define UNIX_TO_PG_EPOCH_SECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

PG_FUNCTION_INFO_V1(cron_next);
PG_FUNCTION_INFO_V1(check_schedule);
PG_FUNCTION_INFO_V1(invoker);
PG_FUNCTION_INFO_V1(emit);
PG_FUNCTION_INFO_V1(wake_scheduler);

/* Whole seconds since the Unix epoch of a timestamptz, rounded down. */
int64
tego_timestamp_to_unix(TimestampTz t)
{
	int64		secs = t / USECS_PER_SEC;

	if (t < 0 && t % USECS_PER_SEC != 0)
		secs--;
	return secs + UNIX_TO_PG_EPOCH_SECS;
}

/* The timestamptz of a count of seconds since the Unix epoch. */
TimestampTz
tego_unix_to_timestamp(int64 secs)
{
	return (secs - UNIX_TO_PG_EPOCH_SECS) * USECS_PER_SEC;
}

/* TegoCronUtcOffset for a pg_tz: the zone's UTC offset at an instant. */
long
tego_tz_offset(int64_t utc_seconds, void *arg)
{
	pg_time_t	t = (pg_time_t) utc_seconds;
	struct pg_tm *tm = pg_localtime(&t, (pg_tz *) arg);

	return tm ? tm->tm_gmtoff : 0;
}

/*
 * The time zone called name, or NULL when it is unknown and missing_ok;
 * otherwise an unknown zone is an error.
 */
pg_tz *
tego_lookup_timezone(const char *name, bool missing_ok)
{
	pg_tz	   *tz = pg_tzset(name);

	if (tz == NULL || !pg_tz_acceptable(tz))
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" is not recognized", name),
				 errhint("Use a time zone name from pg_timezone_names, such as \"Europe/London\".")));
	}
	return tz;
}

/* Parse a schedule, raising an error that shows the parser's reason. */
static void
parse_schedule(const char *text, TegoCronSchedule *sched)
{
	char		err[TEGO_CRON_ERRLEN];

	if (!tego_cron_parse(text, sched, err, sizeof(err)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid schedule \"%s\"", text),
				 errdetail("%s", err)));
}

/*
 * tego._check_schedule(schedule text, timezone text) RETURNS void
 *
 * Raise an error unless the schedule parses and the time zone is known.
 */
Datum
check_schedule(PG_FUNCTION_ARGS)
{
	TegoCronSchedule sched;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("schedule and timezone must not be null")));
	parse_schedule(text_to_cstring(PG_GETARG_TEXT_PP(0)), &sched);
	(void) tego_lookup_timezone(text_to_cstring(PG_GETARG_TEXT_PP(1)), false);
	PG_RETURN_VOID();
}

/*
 * tego.cron_next(schedule text, after timestamptz, timezone text,
 *				  count integer) RETURNS SETOF timestamptz
 *
 * The next count fire times of schedule strictly after "after", in the
 * given time zone.
 */
Datum
cron_next(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TegoCronSchedule sched;
	pg_tz	   *tz;
	int64		t;
	int			count;
	int			i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("schedule must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("after must not be null")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("timezone must not be null")));
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("count must not be null")));

	parse_schedule(text_to_cstring(PG_GETARG_TEXT_PP(0)), &sched);
	tz = tego_lookup_timezone(text_to_cstring(PG_GETARG_TEXT_PP(2)), false);
	count = PG_GETARG_INT32(3);
	if (count < 1 || count > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("count must be between 1 and 1000")));
	if (TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(1)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("after must be a finite timestamp")));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	t = tego_timestamp_to_unix(PG_GETARG_TIMESTAMPTZ(1));
	for (i = 0; i < count; i++)
	{
		int64_t		next;
		Datum		value;
		bool		isnull = false;

		if (!tego_cron_next(&sched, t, tego_tz_offset, tz, &next))
			break;
		value = TimestampTzGetDatum(tego_unix_to_timestamp(next));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value,
							 &isnull);
		t = next;
	}
	return (Datum) 0;
}

/*
 * tego._invoker() RETURNS name
 *
 * The role that called the SECURITY DEFINER function we are in: the
 * current user outside any security-definer context (SET ROLE counts).
 */
Datum
invoker(PG_FUNCTION_ARGS)
{
	char	   *name = GetUserNameFromId(GetOuterUserId(), false);

	PG_RETURN_DATUM(DirectFunctionCall1(namein, CStringGetDatum(name)));
}

/*
 * tego._emit(topic text, event text, key text, payload jsonb) RETURNS void
 *
 * Queue an event on one of tego's own topics for commit.
 */
Datum
emit(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("topic, event and payload must not be null")));
	tego_event_queue(text_to_cstring(PG_GETARG_TEXT_PP(0)),
					 text_to_cstring(PG_GETARG_TEXT_PP(1)),
					 PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
					 PG_GETARG_JSONB_P(3), NULL);
	PG_RETURN_VOID();
}

/*
 * tego._wake_scheduler() RETURNS void
 *
 * Wake the scheduler when the current transaction commits.
 */
Datum
wake_scheduler(PG_FUNCTION_ARGS)
{
	tego_wake_scheduler_at_commit();
	PG_RETURN_VOID();
}
