/*-------------------------------------------------------------------------
 *
 * cron.h
 *	  Cron schedule parser and next-fire-time calculator.
 *
 *	  Plain C99 with no PostgreSQL headers, so that a unit test and a fuzz
 *	  harness can link cron.c on its own.  The scheduler parses a job's
 *	  schedule text once with tego_cron_parse() and asks tego_cron_next()
 *	  for the first fire time after a given instant.
 *
 *	  Accepted syntax:
 *
 *	  - 5 fields: minute hour day-of-month month day-of-week;
 *	  - 6 fields: second minute hour day-of-month month day-of-week (Node's
 *		`cron` and `cron-parser`);
 *	  - `N seconds` / `N second`, 1 <= N <= 59 (pg_cron), case-insensitive;
 *	  - `@yearly @annually @monthly @weekly @daily @midnight @hourly`.
 *
 *	  In a field: `*`, numbers, ranges `a-b`, lists `x,y` and steps
 *	  (`a-b/n`; `a/n` for a to the field's maximum; `*` followed by `/n`).
 *	  Month names jan-dec and day names sun-sat, case-insensitive, also in
 *	  ranges.  Day of week 7 is Sunday.  `?` means `*` in the day-of-month
 *	  and day-of-week fields.  `$` in the day-of-month field is the last day
 *	  of the month, also in a list (`1,15,$`).  A schedule that can never
 *	  fire (`0 0 30 2 *`) is rejected.
 *
 *	  Times are int64 seconds since the Unix epoch (UTC).  The job's time
 *	  zone is a callback returning the zone's offset from UTC at an instant
 *	  (local wall time = utc + offset); cron.c never touches libc's TZ.
 *	  Schedule fields match local wall time, with cronie's DST rules:
 *
 *	  - a wall time skipped by a spring-forward jump fires once, at the
 *		first instant after the jump;
 *	  - a wall time that repeats in a fall-back hour fires once, at its
 *		first occurrence;
 *	  - but when the hour field starts with `*` (also `*` with a step),
 *		and for `N seconds`, the schedule follows real elapsed time: every real
 *		instant whose local time matches fires (both copies of a repeated
 *		hour; nothing for times inside a gap);
 *	  - day of month and day of week combine with OR when both are
 *		restricted (neither starts with `*` or `?`), else with AND (Vixie).
 *
 *	  `N seconds` fires at every instant that is a multiple of N seconds
 *	  since the Unix epoch, whatever the zone.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TEGO_CRON_H
#define TEGO_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest schedule text accepted, in bytes. */
#define TEGO_CRON_MAX_LENGTH	256

/* A buffer this size holds every error message tego_cron_parse writes. */
#define TEGO_CRON_ERRLEN		160

/* Instants tego_cron_next works with: 0001-01-01 to 9999-12-31 (UTC). */
#define TEGO_CRON_MIN_TIME		INT64_C(-62135596800)
#define TEGO_CRON_MAX_TIME		INT64_C(253402300799)

/*
 * How far ahead tego_cron_next searches, in days (about 41 years).  NB: a
 * schedule that passes tego_cron_parse's can-it-fire check can need 40
 * years to fire.  With day of month 29, month 2 and, as day of week, a
 * star with a step of 7 (Sunday only; a field starting with a star counts
 * as unrestricted, so the two are ANDed), it waits for a February 29th
 * that is a Sunday: 2088, then 2128.  Any other date falls on a given
 * weekday at least every 12 years.
 */
#define TEGO_CRON_HORIZON_DAYS	15000

/* Offsets the callback may return, in seconds; larger ones are clamped. */
#define TEGO_CRON_MAX_OFFSET	86400

/* A parsed schedule. */
typedef struct TegoCronSchedule
{
	uint64_t	seconds;		/* bit n: second n (0-59); bit 0 for 5 fields */
	uint64_t	minutes;		/* bit n: minute n (0-59) */
	uint32_t	hours;			/* bit n: hour n (0-23) */
	uint32_t	days_of_month;	/* bit n: day n (1-31) */
	uint16_t	months;			/* bit n: month n (1-12) */
	uint8_t		days_of_week;	/* bit n: weekday n (0 = Sunday .. 6) */
	bool		last_day;		/* `$`: the month's last day also matches */
	bool		dom_restricted; /* day-of-month field does not start with * or ? */
	bool		dow_restricted; /* day-of-week field does not start with * or ? */
	bool		hour_star;		/* hour field starts with *: follow real time */
	int			interval;		/* > 0: `N seconds`; the bitsets are unused */
} TegoCronSchedule;

/*
 * A time zone: the offset from UTC, in seconds, that the zone has at the
 * instant utc_seconds (local wall time = utc_seconds + offset).  It must
 * be a pure function of its arguments.  NB: tego_cron_next assumes that
 * the offset changes at most once in any 24 hours (true of the tz database
 * since 1970); where it does not, results are still later than `after`
 * but may miss or misplace a fire time.
 */
typedef long (*TegoCronUtcOffset) (int64_t utc_seconds, void *arg);

/*
 * Parse a schedule.  On success fill *out and return true.  On failure
 * leave *out alone, return false and, when errbuf is not NULL, write into
 * it (at most errlen bytes, NUL-terminated) one English sentence saying
 * what is wrong, in PostgreSQL's errdetail style: "Expected 5 or 6 fields,
 * got 4."  Reads at most TEGO_CRON_MAX_LENGTH + 1 bytes of text.
 */
extern bool tego_cron_parse(const char *text, TegoCronSchedule *out,
							char *errbuf, size_t errlen);

/*
 * Compute the first fire time strictly after after_utc_seconds.  off is
 * the job's zone (NULL means UTC) and arg is passed to it.  Return true and
 * set *next_utc_seconds, or return false when there is none within
 * TEGO_CRON_HORIZON_DAYS or before TEGO_CRON_MAX_TIME, or when
 * after_utc_seconds is outside TEGO_CRON_MIN_TIME..TEGO_CRON_MAX_TIME.
 * Every schedule that parses fires within the horizon, except that a
 * real-time schedule (hour `*`) does not fire on a day its zone skips
 * (Pacific/Apia skipped 2011-12-30), and one that could fire only on that
 * day in 40 years may then find nothing.
 */
extern bool tego_cron_next(const TegoCronSchedule *s, int64_t after_utc_seconds,
						   TegoCronUtcOffset off, void *arg,
						   int64_t *next_utc_seconds);

#endif							/* TEGO_CRON_H */
