/*-------------------------------------------------------------------------
 *
 * cron_test.c
 *	  Unit test of the cron parser and next-fire calculator (src/cron.c).
 *
 *	  A plain C program that links src/cron.c directly and prints TAP:
 *	  "ok N - ..." / "not ok N - ...", then "1..N" and a last line
 *	  "N passed, N failed"; it exits 1 when anything failed.  It checks
 *	  every syntax form and every rejection, next fire times for a list of
 *	  schedules in UTC and in real zones (DST in America/New_York and
 *	  Europe/London), and compares a few hundred random schedules against
 *	  a slow brute-force reference that scans every minute (or second).
 *	  Real zones come from libc (TZ + localtime_r's tm_gmtoff), which is
 *	  fine here but never inside cron.c.
 *
 *	  Build and run (test/scripts/extra-suites.d/cron.sh does this):
 *		gcc -std=c99 -Wall -Wextra -Werror -O2 -I src \
 *			test/unit/cron_test.c src/cron.c -o cron_test && ./cron_test
 *
 *-------------------------------------------------------------------------
 */
#define _DEFAULT_SOURCE			/* timegm, tm_gmtoff, setenv */

#include "cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY		86400
#define HOUR	3600

static int	n_tests = 0;
static int	n_failed = 0;

#ifdef __GNUC__
static bool ok(bool cond, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
static void diag(const char *fmt,...)
			__attribute__((format(printf, 1, 2)));
#endif

/* Print one TAP result line and count it; return cond. */
static bool
ok(bool cond, const char *fmt,...)
{
	va_list		ap;

	n_tests++;
	if (!cond)
		n_failed++;
	printf("%sok %d - ", cond ? "" : "not ", n_tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

/* Print a TAP diagnostic line. */
static void
diag(const char *fmt,...)
{
	va_list		ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* ---------------------------------------------------------------- time --- */

/* UTC seconds of "YYYY-MM-DD HH:MM:SS" (or with T); aborts on bad input. */
static int64_t
ts(const char *s)
{
	struct tm	tm;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%d-%d-%d%*c%d:%d:%d", &tm.tm_year, &tm.tm_mon,
			   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
	{
		fprintf(stderr, "bad time literal \"%s\"\n", s);
		exit(2);
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t) timegm(&tm);
}

/* Format UTC seconds as "YYYY-MM-DD HH:MM:SS" into one of a few buffers. */
static const char *
fmt(int64_t t)
{
	static char bufs[8][32];
	static int	next = 0;
	char	   *b = bufs[next++ % 8];
	time_t		tt = (time_t) t;
	struct tm	tm;

	gmtime_r(&tt, &tm);
	strftime(b, 32, "%Y-%m-%d %H:%M:%S", &tm);
	return b;
}

/* Zone offset callback: always UTC. */
static long
off_utc(int64_t t, void *arg)
{
	(void) t;
	(void) arg;
	return 0;
}

/* Zone offset callback: a fixed offset, *(long *) arg seconds. */
static long
off_fixed(int64_t t, void *arg)
{
	(void) t;
	return *(long *) arg;
}

static const char *loaded_zone = NULL;

/* Zone offset callback: the IANA zone named by arg, through libc. */
static long
off_zone(int64_t t, void *arg)
{
	const char *zone = arg;
	time_t		tt = (time_t) t;
	struct tm	tm;

	if (loaded_zone == NULL || strcmp(loaded_zone, zone) != 0)
	{
		setenv("TZ", zone, 1);
		tzset();
		loaded_zone = zone;
	}
	localtime_r(&tt, &tm);
	return tm.tm_gmtoff;
}

/* A zone to run tests in: name and callback. */
typedef struct Zone
{
	const char *name;
	TegoCronUtcOffset off;
	void	   *arg;
} Zone;

static long plus_0530 = 5 * HOUR + 30 * 60;
static long minus_0345 = -(3 * HOUR + 45 * 60);

static const Zone zone_utc = {"UTC", off_utc, NULL};
static const Zone zone_ny = {"America/New_York", off_zone, "America/New_York"};
static const Zone zone_london = {"Europe/London", off_zone, "Europe/London"};
static const Zone zone_lhi = {"Australia/Lord_Howe", off_zone, "Australia/Lord_Howe"};
static const Zone zone_apia = {"Pacific/Apia", off_zone, "Pacific/Apia"};
static const Zone zone_p0530 = {"+05:30", off_fixed, &plus_0530};
static const Zone zone_m0345 = {"-03:45", off_fixed, &minus_0345};

/* ---------------------------------------------------------------- parse --- */

/* text with control and non-ASCII bytes shown as \xNN, cut at 40 bytes */
static const char *
shown(const char *text)
{
	static char buf[200];
	size_t		i;

	buf[0] = '\0';
	for (i = 0; text[i] != '\0' && i < 40; i++)
	{
		unsigned char c = (unsigned char) text[i];

		if (c < 0x20 || c >= 0x7f)
			sprintf(buf + strlen(buf), "\\x%02X", c);
		else
			sprintf(buf + strlen(buf), "%c", c);
	}
	if (text[i] != '\0')
		strcat(buf, "...");
	return buf;
}

/* Parse text, expecting success; returns the schedule (zeroed on failure). */
static TegoCronSchedule
parse_ok(const char *text)
{
	TegoCronSchedule s;
	char		err[TEGO_CRON_ERRLEN];
	bool		r;

	memset(&s, 0, sizeof(s));
	r = tego_cron_parse(text, &s, err, sizeof(err));
	ok(r, "parse accepts \"%s\"%s%s", shown(text), r ? "" : ": ", r ? "" : err);
	return s;
}

/* Bitset of the values lo..hi step st. */
static uint64_t
bits(int lo, int hi, int st)
{
	uint64_t	b = 0;
	int			v;

	for (v = lo; v <= hi; v += st)
		b |= UINT64_C(1) << v;
	return b;
}

/* Is a message shaped as an errdetail: capital first, one final period? */
static bool
detail_style(const char *m)
{
	size_t		len = strlen(m);

	return len > 1 && m[0] >= 'A' && m[0] <= 'Z' && m[len - 1] == '.' &&
		strchr(m, '\n') == NULL;
}

/* Parse text, expecting failure, and the message when want is not NULL. */
static void
parse_fails(const char *text, const char *want)
{
	TegoCronSchedule s;
	char		err[TEGO_CRON_ERRLEN];
	bool		r;

	strcpy(err, "(unset)");
	r = tego_cron_parse(text, &s, err, sizeof(err));
	if (want != NULL)
		ok(!r && strcmp(err, want) == 0, "parse rejects \"%s\": %s%s%s",
		   shown(text), err, (!r && strcmp(err, want) == 0) ? "" : " -- expected: ",
		   (!r && strcmp(err, want) == 0) ? "" : want);
	else
		ok(!r && detail_style(err), "parse rejects \"%s\": %s", shown(text), err);
}

/* Are two parsed schedules the same? */
static bool
same_schedule(const TegoCronSchedule *a, const TegoCronSchedule *b)
{
	return a->seconds == b->seconds && a->minutes == b->minutes &&
		a->hours == b->hours && a->days_of_month == b->days_of_month &&
		a->months == b->months && a->days_of_week == b->days_of_week &&
		a->last_day == b->last_day && a->dom_restricted == b->dom_restricted &&
		a->dow_restricted == b->dow_restricted &&
		a->hour_star == b->hour_star && a->interval == b->interval;
}

/* Every accepted syntax form, with the bitsets it must produce. */
static void
test_parse_accepts(void)
{
	TegoCronSchedule s,
				t;
	const uint64_t all_dom = bits(1, 31, 1);
	char		buf[300];
	static const char *const macro_pairs[][2] = {
		{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"},
		{"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
		{"@daily", "0 0 * * *"}, {"@midnight", "0 0 * * *"},
		{"@hourly", "0 * * * *"}, {"@HOURLY", "0 * * * *"},
		{"  @Daily\t", "0 0 * * *"}
	};
	size_t		i;

	s = parse_ok("* * * * *");
	ok(s.seconds == 1 && s.minutes == bits(0, 59, 1) && s.hours == bits(0, 23, 1) &&
	   s.days_of_month == all_dom && s.months == bits(1, 12, 1) &&
	   s.days_of_week == bits(0, 6, 1) && !s.last_day && !s.dom_restricted &&
	   !s.dow_restricted && s.hour_star && s.interval == 0,
	   "\"* * * * *\": every field full, seconds = {0}, nothing restricted");

	s = parse_ok("0 0 1 1 0");
	ok(s.minutes == 1 && s.hours == 1 && s.days_of_month == 2 && s.months == 2 &&
	   s.days_of_week == 1 && s.dom_restricted && s.dow_restricted && !s.hour_star,
	   "\"0 0 1 1 0\": single values, dom and dow restricted");

	s = parse_ok("1,2,3-5,*/20 * * * *");
	ok(s.minutes == (bits(1, 5, 1) | bits(0, 59, 20)), "lists, ranges and */n in one field");
	s = parse_ok("10-30/10 * * * *");
	ok(s.minutes == (bits(10, 30, 10)), "a-b/n");
	s = parse_ok("5/15 * * * *");
	ok(s.minutes == bits(5, 59, 15), "a/n runs from a to the maximum");
	s = parse_ok("59/5 * * * *");
	ok(s.minutes == bits(59, 59, 1), "a/n at the maximum is a alone");
	s = parse_ok("*/59 */23 */31 */12 */7");
	ok(s.minutes == bits(0, 59, 59) && s.hours == bits(0, 23, 23) &&
	   s.days_of_month == bits(1, 31, 31) && s.months == bits(1, 12, 12) &&
	   s.days_of_week == 1, "largest steps");
	s = parse_ok("00 05 01 01 00");
	ok(s.minutes == 1 && s.hours == bits(5, 5, 1) && s.days_of_month == 2 &&
	   s.months == 2 && s.days_of_week == 1, "leading zeros");
	s = parse_ok("0000 0 1 1 *");
	ok(s.minutes == 1, "four digits are fine");

	s = parse_ok("0 9 * jan-mar mon-fri");
	ok(s.months == bits(1, 3, 1) && s.days_of_week == bits(1, 5, 1) &&
	   !s.dom_restricted && s.dow_restricted, "month and day names in ranges");
	s = parse_ok("0 9 * JAN,Jun,dec SUN,Sat");
	ok(s.months == (bits(1, 1, 1) | bits(6, 6, 1) | bits(12, 12, 1)) &&
	   s.days_of_week == (bits(0, 0, 1) | bits(6, 6, 1)), "names in any case, in lists");
	s = parse_ok("0 0 * feb/3 *");
	ok(s.months == bits(2, 12, 3), "a name with a step");
	s = parse_ok("0 0 * * 7");
	ok(s.days_of_week == 1, "day of week 7 is Sunday");
	s = parse_ok("0 0 * * 5-7");
	ok(s.days_of_week == (bits(5, 6, 1) | 1), "range 5-7 ends on Sunday");
	s = parse_ok("0 0 * * 0-7");
	ok(s.days_of_week == bits(0, 6, 1), "range 0-7 is every day");
	s = parse_ok("0 0 * * */2");
	ok(s.days_of_week == bits(0, 6, 2), "*/2 in day of week");
	s = parse_ok("0 0 * * 1/2");
	ok(s.days_of_week == bits(1, 6, 2), "1/2 in day of week");

	s = parse_ok("0 0 ? * mon");
	ok(!s.dom_restricted && s.dow_restricted && s.days_of_month == all_dom,
	   "? in day of month is *");
	s = parse_ok("0 0 1 * ?");
	ok(s.dom_restricted && !s.dow_restricted && s.days_of_week == bits(0, 6, 1),
	   "? in day of week is *");
	s = parse_ok("0 0 */2 * mon");
	ok(!s.dom_restricted && s.days_of_month == bits(1, 31, 2),
	   "*/2 in day of month counts as unrestricted (Vixie)");

	s = parse_ok("0 0 $ * *");
	ok(s.last_day && s.days_of_month == 0 && s.dom_restricted, "$ is the last day");
	s = parse_ok("0 0 1,15,$ * *");
	ok(s.last_day && s.days_of_month == (bits(1, 1, 1) | bits(15, 15, 1)),
	   "$ in a list");

	s = parse_ok("*/10 * * * * *");
	ok(s.seconds == bits(0, 59, 10) && s.minutes == bits(0, 59, 1) && s.hour_star,
	   "6 fields: seconds first");
	s = parse_ok("30 15 10 * * *");
	ok(s.seconds == bits(30, 30, 1) && s.minutes == bits(15, 15, 1) &&
	   s.hours == bits(10, 10, 1) && !s.hour_star, "6 fields with values");

	s = parse_ok("0 */2 * * *");
	ok(s.hour_star, "*/2 in the hour field follows real time");
	s = parse_ok("0 0-23 * * *");
	ok(!s.hour_star, "0-23 in the hour field follows the wall clock");

	s = parse_ok(" \t0  0\t* *\n*\r ");
	ok(s.minutes == 1 && s.hours == 1, "any ASCII whitespace separates fields");

	s = parse_ok("5 seconds");
	ok(s.interval == 5, "\"5 seconds\"");
	s = parse_ok("1 second");
	ok(s.interval == 1, "\"1 second\"");
	s = parse_ok("  59   SECONDS \t");
	ok(s.interval == 59, "\"  59   SECONDS \\x09\"");
	s = parse_ok("7seconds");
	ok(s.interval == 7, "\"7seconds\"");
	s = parse_ok("05 Seconds");
	ok(s.interval == 5, "\"05 Seconds\"");

	for (i = 0; i < sizeof(macro_pairs) / sizeof(macro_pairs[0]); i++)
	{
		s = parse_ok(macro_pairs[i][0]);
		t = parse_ok(macro_pairs[i][1]);
		ok(same_schedule(&s, &t), "%s is %s", macro_pairs[i][0], macro_pairs[i][1]);
	}

	/* exactly the longest text accepted */
	memset(buf, ' ', TEGO_CRON_MAX_LENGTH);
	memcpy(buf, "* * * * *", 9);
	buf[TEGO_CRON_MAX_LENGTH] = '\0';
	ok(tego_cron_parse(buf, &s, NULL, 0), "a %d-byte schedule is accepted",
	   TEGO_CRON_MAX_LENGTH);

	/* the can-it-fire check must not reject what can fire */
	parse_ok("0 0 29 2 *");
	parse_ok("0 0 30 1-2 *");
	parse_ok("0 0 31 4 mon");	/* OR: Mondays in April */
	parse_ok("0 0 $ 2 *");
	parse_ok("0 0 29 2 */7");	/* a February 29th that is a Sunday */
}

/* Every rejection, with the message checked for most. */
static void
test_parse_rejects(void)
{
	char		buf[400];
	char		err[8];
	TegoCronSchedule s;

	parse_fails("", "Schedule is empty.");
	parse_fails(" \t\n ", "Schedule is empty.");
	parse_fails("* * * *", "Expected 5 or 6 fields, got 4.");
	parse_fails("* * * * * * *", "Expected 5 or 6 fields, got 7.");
	parse_fails("*", "Expected 5 or 6 fields, got 1.");
	parse_fails("5", "Expected 5 or 6 fields, got 1.");
	parse_fails("61 * * * *", "Field \"minute\" value 61 is out of range 0-59.");
	parse_fails("60 * * * * *", "Field \"second\" value 60 is out of range 0-59.");
	parse_fails("* 24 * * *", "Field \"hour\" value 24 is out of range 0-23.");
	parse_fails("* * 0 * *", "Field \"day of month\" value 0 is out of range 1-31.");
	parse_fails("* * 32 * *", "Field \"day of month\" value 32 is out of range 1-31.");
	parse_fails("* * * 0 *", "Field \"month\" value 0 is out of range 1-12.");
	parse_fails("* * * 13 *", "Field \"month\" value 13 is out of range 1-12.");
	parse_fails("* * * * 8", "Field \"day of week\" value 8 is out of range 0-7.");
	parse_fails("1-70 * * * *", "Field \"minute\" value 70 is out of range 0-59.");
	parse_fails("*/0 * * * *", "A step of 0 is not allowed.");
	parse_fails("1-5/0 * * * *", "A step of 0 is not allowed.");
	parse_fails("*/60 * * * *", "Field \"minute\" step 60 is out of range 1-59.");
	parse_fails("* * * */13 *", "Field \"month\" step 13 is out of range 1-12.");
	parse_fails("5-3 * * * *", "Range 5-3 is reversed.");
	parse_fails("* * * * fri-mon", "Range fri-mon is reversed.");
	parse_fails("* * * dec-jan *", "Range dec-jan is reversed.");
	parse_fails("* * * * 7-1", "Range 7-1 is reversed.");
	parse_fails("0 seconds", "Interval must be between 1 and 59 seconds.");
	parse_fails("60 seconds", "Interval must be between 1 and 59 seconds.");
	parse_fails("99999999999999999999999 seconds",
				"Interval must be between 1 and 59 seconds.");
	parse_fails("5 minutes", "Interval unit \"minutes\" is not supported; only seconds are.");
	parse_fails("5 secs", NULL);
	parse_fails("0 0 30 2 *",
				"Schedule can never fire: none of its days of month occur in its months.");
	parse_fails("0 0 31 4,6,9,11 *",
				"Schedule can never fire: none of its days of month occur in its months.");
	parse_fails("0 0 30,31 feb ?", NULL);
	parse_fails("0 0 0 31 2 *", NULL);
	parse_fails("00000 * * * *", "Field \"minute\" has a number with too many digits.");
	parse_fails("99999999999999999999 * * * *",
				"Field \"minute\" has a number with too many digits.");
	parse_fails("*/99999999999999999999 * * * *",
				"Field \"minute\" has a number with too many digits.");
	parse_fails("*x * * * *", "Field \"minute\" contains unexpected character \"x\".");
	parse_fails("* * * * 5#3", "Field \"day of week\" contains unexpected character \"#\".");
	parse_fails("* * * * 5L", "Field \"day of week\" contains unexpected character \"L\".");
	parse_fails("-1 * * * *", "Field \"minute\" contains unexpected character \"-\".");
	parse_fails("+1 * * * *", NULL);
	parse_fails("1-2-3 * * * *", NULL);
	parse_fails("*/2/3 * * * *", NULL);
	parse_fails("*-5 * * * *", NULL);
	parse_fails("1- * * * *", "Field \"minute\" has an incomplete range or step.");
	parse_fails("1-5/ * * * *", "Field \"minute\" has an incomplete range or step.");
	parse_fails("*/ * * * *", "Field \"minute\" has an incomplete range or step.");
	parse_fails("*/x * * * *", NULL);
	parse_fails("1-,2 * * * *", NULL);
	parse_fails(",1 * * * *", "Field \"minute\" has an empty list item.");
	parse_fails("1,,2 * * * *", "Field \"minute\" has an empty list item.");
	parse_fails("1, * * * *", "Field \"minute\" has an empty list item.");
	parse_fails("jan * * * *", "Field \"minute\" contains unknown name \"jan\".");
	parse_fails("* * * january *", "Field \"month\" contains unknown name \"january\".");
	parse_fails("* * * * monday", NULL);
	parse_fails("* * * mon *", NULL);
	parse_fails("* * * * jan", NULL);
	parse_fails("* * L * *", NULL);
	parse_fails("a b c d e", NULL);
	parse_fails("? * * * *", "Field \"minute\" does not accept \"?\".");
	parse_fails("* * * ? *", "Field \"month\" does not accept \"?\".");
	parse_fails("* $ * * *", "Field \"hour\" does not accept \"$\".");
	parse_fails("* * * * $", "Field \"day of week\" does not accept \"$\".");
	parse_fails("* * ?/2 * *", NULL);
	parse_fails("* * $/2 * *", NULL);
	parse_fails("* * $-5 * *", NULL);
	parse_fails("* * 5-$ * *", NULL);
	parse_fails("* * ?? * *", NULL);
	parse_fails("@every 5m", NULL);
	parse_fails("@every", "Unknown shortcut \"@every\".");
	parse_fails("@", NULL);
	parse_fails("@reboot", NULL);
	parse_fails("@hourly 5", "Unexpected text after \"@hourly\".");
	parse_fails("* @hourly * * *", NULL);
	parse_fails("\x80\x81", "Schedule contains invalid byte 0x80.");
	parse_fails("* * * * *\x01", "Schedule contains invalid byte 0x01.");
	parse_fails("* * * * \x7f", NULL);
	parse_fails("\xff\xfe\xfd\xfc\xfb", NULL);
	parse_fails("* * * * *\xc2\xa0", NULL);
	parse_fails("1;2 * * * *", NULL);
	parse_fails("\"1\" * * * *", NULL);

	/* overlong */
	memset(buf, ' ', sizeof(buf));
	memcpy(buf, "* * * * *", 9);
	buf[TEGO_CRON_MAX_LENGTH + 1] = '\0';
	parse_fails(buf, "Schedule is longer than 256 bytes.");
	buf[sizeof(buf) - 1] = '\0';
	parse_fails(buf, "Schedule is longer than 256 bytes.");

	/* NULL text, NULL or tiny error buffers */
	ok(!tego_cron_parse(NULL, &s, NULL, 0), "parse rejects NULL");
	ok(!tego_cron_parse("* * *", &s, NULL, 0), "parse works without an error buffer");
	memset(err, 'x', sizeof(err));
	ok(!tego_cron_parse("* * *", &s, err, sizeof(err)) &&
	   strcmp(err, "Expecte") == 0, "a short error buffer gets a truncated message");
}

/* ----------------------------------------------------------------- next --- */

/* One row of the next-fire table. */
typedef struct NextCase
{
	const char *schedule;
	const Zone *zone;
	const char *after;
	const char *expect[14];		/* successive fire times, UTC; NULL ends */
	const char *why;
} NextCase;

static const NextCase next_cases[] = {
	{"* * * * *", &zone_utc, "2026-01-01 00:00:00",
	{"2026-01-01 00:01:00", "2026-01-01 00:02:00"}, "every minute"},
	{"* * * * *", &zone_utc, "2026-01-01 00:00:30",
	{"2026-01-01 00:01:00"}, "from mid-minute"},
	{"*/15 * * * *", &zone_utc, "2026-01-01 00:07:30",
	{"2026-01-01 00:15:00", "2026-01-01 00:30:00", "2026-01-01 00:45:00",
	"2026-01-01 01:00:00"}, "*/15"},
	{"0 0 1 1 *", &zone_utc, "2026-06-15 00:00:00",
	{"2027-01-01 00:00:00", "2028-01-01 00:00:00"}, "yearly by fields"},
	{"59 23 31 12 *", &zone_utc, "2026-12-31 23:59:00",
	{"2027-12-31 23:59:00"}, "last minute of the year, strictly after"},
	{"0 0 29 2 *", &zone_utc, "2026-01-01 00:00:00",
	{"2028-02-29 00:00:00", "2032-02-29 00:00:00"}, "leap day"},
	{"0 0 29 2 *", &zone_utc, "2096-03-01 00:00:00",
	{"2104-02-29 00:00:00"}, "leap day across 2100, which is not a leap year"},
	{"0 0 $ 2 *", &zone_utc, "2026-06-01 00:00:00",
	{"2027-02-28 00:00:00", "2028-02-29 00:00:00", "2029-02-28 00:00:00"},
	"$ in February"},
	{"0 0 $ * *", &zone_utc, "2026-12-31 00:00:00",
		{"2027-01-31 00:00:00", "2027-02-28 00:00:00", "2027-03-31 00:00:00",
			"2027-04-30 00:00:00", "2027-05-31 00:00:00", "2027-06-30 00:00:00",
			"2027-07-31 00:00:00", "2027-08-31 00:00:00", "2027-09-30 00:00:00",
		"2027-10-31 00:00:00", "2027-11-30 00:00:00", "2027-12-31 00:00:00"},
	"$ over a year gives the month ends"},
	{"0 0 1,15,$ * *", &zone_utc, "2027-02-01 00:00:00",
	{"2027-02-15 00:00:00", "2027-02-28 00:00:00", "2027-03-01 00:00:00"},
	"$ in a list"},
	{"0 0 31 * *", &zone_utc, "2026-01-31 00:00:00",
	{"2026-03-31 00:00:00", "2026-05-31 00:00:00", "2026-07-31 00:00:00"},
	"day 31 skips the shorter months"},
	{"0 0 1 * mon", &zone_utc, "2026-05-31 00:00:00",
		{"2026-06-01 00:00:00", "2026-06-08 00:00:00", "2026-06-15 00:00:00",
		"2026-06-22 00:00:00", "2026-06-29 00:00:00", "2026-07-01 00:00:00"},
	"dom and dow both restricted: OR"},
	{"0 0 * * mon", &zone_utc, "2026-05-31 00:00:00",
	{"2026-06-01 00:00:00", "2026-06-08 00:00:00"}, "dom * : AND, Mondays"},
	{"0 0 ? * mon", &zone_utc, "2026-05-31 00:00:00",
	{"2026-06-01 00:00:00", "2026-06-08 00:00:00"}, "dom ? : AND, Mondays"},
	{"0 0 */10 * mon", &zone_utc, "2026-01-01 00:00:00",
	{"2026-05-11 00:00:00", "2026-06-01 00:00:00", "2026-08-31 00:00:00"},
	"dom */10 with dow: AND"},
	{"0 0 13 * fri", &zone_utc, "2026-03-01 00:00:00",
	{"2026-03-06 00:00:00", "2026-03-13 00:00:00", "2026-03-20 00:00:00"},
	"13 OR Friday"},
	{"5 seconds", &zone_utc, "2026-01-01 00:00:03",
	{"2026-01-01 00:00:05", "2026-01-01 00:00:10", "2026-01-01 00:00:15"},
	"5 seconds, aligned"},
	{"7 seconds", &zone_utc, "2026-01-01 00:00:03",
	{"2026-01-01 00:00:07", "2026-01-01 00:00:14"}, "7 seconds, aligned to the epoch"},
	{"7 seconds", &zone_ny, "2026-01-01 00:00:03",
	{"2026-01-01 00:00:07", "2026-01-01 00:00:14"}, "7 seconds ignores the zone"},
	{"*/10 * * * * *", &zone_utc, "2026-01-01 00:00:05",
	{"2026-01-01 00:00:10", "2026-01-01 00:00:20", "2026-01-01 00:00:30"},
	"6 fields, */10 seconds"},
	{"30 15 10 * * *", &zone_utc, "2026-01-01 10:15:30",
	{"2026-01-02 10:15:30"}, "6 fields, once a day"},
	{"0 9 * jan-mar mon-fri", &zone_utc, "2026-03-31 09:00:00",
	{"2027-01-01 09:00:00", "2027-01-04 09:00:00"}, "names"},
	{"0 0 * * 7", &zone_utc, "2026-01-01 00:00:00",
	{"2026-01-04 00:00:00", "2026-01-11 00:00:00"}, "7 is Sunday"},
	{"@hourly", &zone_utc, "2026-01-01 00:30:00",
	{"2026-01-01 01:00:00", "2026-01-01 02:00:00"}, "@hourly"},
	{"@weekly", &zone_utc, "2026-01-01 00:00:00",
	{"2026-01-04 00:00:00", "2026-01-11 00:00:00"}, "@weekly"},
	{"@yearly", &zone_utc, "2026-01-01 00:00:00",
	{"2027-01-01 00:00:00"}, "@yearly"},
	{"30 2 * * *", &zone_p0530, "2026-01-01 00:00:00",
	{"2026-01-01 21:00:00", "2026-01-02 21:00:00"}, "fixed +05:30"},
	{"0 0 * * *", &zone_m0345, "2026-01-01 00:00:00",
	{"2026-01-01 03:45:00"}, "fixed -03:45"},
	{"0 0 1 1 *", &zone_utc, "9999-01-01 00:00:00",
	{NULL}, "nothing after 9999"},

	/* New York, spring forward 2026-03-08 02:00 EST -> 03:00 EDT */
	{"30 2 * * *", &zone_ny, "2026-03-07 12:00:00",
		{"2026-03-08 07:00:00", "2026-03-09 06:30:00"},
	"NY: 02:30 is skipped, fires once at 03:00 EDT"},
	{"0,30 2 * * *", &zone_ny, "2026-03-07 12:00:00",
		{"2026-03-08 07:00:00", "2026-03-09 06:00:00", "2026-03-09 06:30:00"},
	"NY: 02:00 and 02:30 are skipped, fire once together"},
	{"0 3 * * *", &zone_ny, "2026-03-07 12:00:00",
	{"2026-03-08 07:00:00", "2026-03-09 07:00:00"}, "NY: 03:00 EDT on the jump day"},
	{"59 1 * * *", &zone_ny, "2026-03-07 12:00:00",
	{"2026-03-08 06:59:00", "2026-03-09 05:59:00"}, "NY: 01:59 EST before the jump"},
	{"*/30 * * * *", &zone_ny, "2026-03-08 06:00:00",
		{"2026-03-08 06:30:00", "2026-03-08 07:00:00", "2026-03-08 07:30:00"},
	"NY: */30 goes from 01:30 EST straight to 03:00 EDT"},
	{"0 */2 * * *", &zone_ny, "2026-03-08 04:00:00",
	{"2026-03-08 05:00:00", "2026-03-08 08:00:00"}, "NY: */2 hours skips 02:00 (real time)"},
	{"30 * 8 3 *", &zone_ny, "2026-03-08 06:00:00",
	{"2026-03-08 06:30:00", "2026-03-08 07:30:00"}, "NY: hourly-type job skips 02:30"},
	/* New York, fall back 2026-11-01 02:00 EDT -> 01:00 EST */
	{"30 1 * * *", &zone_ny, "2026-10-31 12:00:00",
		{"2026-11-01 05:30:00", "2026-11-02 06:30:00"},
	"NY: 01:30 repeats, fires once at the first"},
	{"15 1 * * *", &zone_ny, "2026-11-01 05:20:00",
	{"2026-11-02 06:15:00"}, "NY: from the first 01:20, not the second 01:15"},
	{"15 1 * * *", &zone_ny, "2026-11-01 06:05:00",
	{"2026-11-02 06:15:00"}, "NY: from the second 01:05, not the second 01:15"},
	{"* 1 * * *", &zone_ny, "2026-11-01 06:10:00",
	{"2026-11-02 06:00:00"}, "NY: every minute of hour 1, from the second copy"},
	{"*/5 * 1 * * *", &zone_ny, "2026-11-01 06:59:58",
	{"2026-11-02 06:00:00"}, "NY: every 5 s of hour 1, from the second copy"},
	{"0 2 * * *", &zone_ny, "2026-10-31 12:00:00",
	{"2026-11-01 07:00:00", "2026-11-02 07:00:00"}, "NY: 02:00 EST after the repeat"},
	{"*/30 * * * *", &zone_ny, "2026-11-01 05:00:00",
		{"2026-11-01 05:30:00", "2026-11-01 06:00:00", "2026-11-01 06:30:00",
		"2026-11-01 07:00:00"},
	"NY: */30 fires in both copies of 01:00-02:00"},
	{"0 */2 * * *", &zone_ny, "2026-11-01 03:30:00",
	{"2026-11-01 04:00:00", "2026-11-01 07:00:00"}, "NY: */2 hours over the fall back"},
	{"*/30 1 1 11 *", &zone_ny, "2026-11-01 04:00:00",
	{"2026-11-01 05:00:00", "2026-11-01 05:30:00", "2027-11-01 05:00:00"},
	"NY: hour 1 only: first copy only"},

	/* London, spring 2026-03-29 01:00 GMT -> 02:00 BST */
	{"30 1 * * *", &zone_london, "2026-03-28 12:00:00",
		{"2026-03-29 01:00:00", "2026-03-30 00:30:00"},
	"London: 01:30 is skipped, fires once at 02:00 BST"},
	{"*/30 * * * *", &zone_london, "2026-03-29 00:00:00",
	{"2026-03-29 00:30:00", "2026-03-29 01:00:00", "2026-03-29 01:30:00"},
	"London: */30 from 00:30 GMT straight to 02:00 BST"},
	/* London, fall 2026-10-25 02:00 BST -> 01:00 GMT */
	{"30 1 * * *", &zone_london, "2026-10-24 12:00:00",
	{"2026-10-25 00:30:00", "2026-10-26 01:30:00"}, "London: 01:30 repeats, fires once"},
	{"*/30 * * * *", &zone_london, "2026-10-25 00:00:00",
		{"2026-10-25 00:30:00", "2026-10-25 01:00:00", "2026-10-25 01:30:00",
		"2026-10-25 02:00:00"},
	"London: */30 fires in both copies"},

	/* Lord Howe: 30-minute DST, 2026-10-04 02:00 +10:30 -> 02:30 +11:00 */
	{"15 2 * * *", &zone_lhi, "2026-10-03 00:00:00",
	{"2026-10-03 15:30:00", "2026-10-04 15:15:00"}, "Lord Howe: 02:15 skipped"},
	/* Apia skipped 2011-12-30 altogether (-10:00 -> +14:00) */
	{"0 12 30 12 *", &zone_apia, "2011-12-01 00:00:00",
	{"2011-12-30 10:00:00", "2012-12-29 22:00:00"}, "Apia: a skipped day fires at its end"},
	{"0 * 30 12 *", &zone_apia, "2011-12-01 00:00:00",
	{"2012-12-29 10:00:00"}, "Apia: an hourly job on a skipped day does not fire"},
};

/* Run the next-fire table. */
static void
test_next_table(void)
{
	size_t		i;

	for (i = 0; i < sizeof(next_cases) / sizeof(next_cases[0]); i++)
	{
		const NextCase *c = &next_cases[i];
		TegoCronSchedule s;
		char		err[TEGO_CRON_ERRLEN];
		char		got[512];
		char		want[512];
		int64_t		t = ts(c->after);
		int64_t		r;
		int			k;
		bool		good = true;

		if (!tego_cron_parse(c->schedule, &s, err, sizeof(err)))
		{
			ok(false, "%s: \"%s\" does not parse: %s", c->why, c->schedule, err);
			continue;
		}
		got[0] = want[0] = '\0';
		for (k = 0; k < 14 && c->expect[k] != NULL; k++)
		{
			bool		found = tego_cron_next(&s, t, c->zone->off, c->zone->arg, &r);

			snprintf(want + strlen(want), sizeof(want) - strlen(want), " %s",
					 c->expect[k]);
			snprintf(got + strlen(got), sizeof(got) - strlen(got), " %s",
					 found ? fmt(r) : "(none)");
			if (!found || r != ts(c->expect[k]))
			{
				good = false;
				break;
			}
			t = r;
		}
		if (c->expect[0] == NULL)
		{
			/* no fire time expected */
			good = !tego_cron_next(&s, t, c->zone->off, c->zone->arg, &r);
			snprintf(want, sizeof(want), " (none)");
			snprintf(got, sizeof(got), " %s", good ? "(none)" : fmt(r));
		}
		if (!ok(good, "%s: \"%s\" in %s after %s", c->why, c->schedule,
				c->zone->name, c->after))
		{
			diag("want:%s", want);
			diag("got: %s", got);
		}
	}
}

/* Edge cases of tego_cron_next's arguments. */
static void
test_next_edges(void)
{
	TegoCronSchedule s;
	int64_t		r = 0;
	bool		found;

	tego_cron_parse("* * * * *", &s, NULL, 0);
	ok(tego_cron_next(&s, 0, NULL, NULL, &r) && r == 60, "a NULL zone is UTC");
	ok(!tego_cron_next(&s, TEGO_CRON_MAX_TIME, NULL, NULL, &r),
	   "nothing after the last supported instant");
	ok(!tego_cron_next(&s, TEGO_CRON_MIN_TIME - 1, NULL, NULL, &r),
	   "an instant before year 1 is refused");
	ok(tego_cron_next(&s, TEGO_CRON_MIN_TIME, NULL, NULL, &r) &&
	   r == TEGO_CRON_MIN_TIME + 60, "year 1 works");
	ok(tego_cron_next(&s, -1, NULL, NULL, &r) && r == 0, "negative instants work");
	tego_cron_parse("7 seconds", &s, NULL, 0);
	ok(tego_cron_next(&s, -1, NULL, NULL, &r) && r == 0 &&
	   tego_cron_next(&s, -8, NULL, NULL, &r) && r == -7,
	   "intervals before the epoch stay aligned");
	tego_cron_parse("0 0 29 2 */7", &s, NULL, 0);
	found = tego_cron_next(&s, ts("2004-03-01 00:00:00"), NULL, NULL, &r);
	ok(found && r == ts("2032-02-29 00:00:00"),
	   "a February 29th that is a Sunday, 28 years on: %s", found ? fmt(r) : "none");
	found = tego_cron_next(&s, ts("2088-02-29 00:00:00"), NULL, NULL, &r);
	ok(found && r == ts("2128-02-29 00:00:00"),
	   "... and the 40-year wait across 2100: %s", found ? fmt(r) : "none");
	tego_cron_parse("0 0 */31 1 mon", &s, NULL, 0);
	found = tego_cron_next(&s, ts("2018-01-01 00:00:00"), NULL, NULL, &r);
	ok(found && r == ts("2024-01-01 00:00:00"),
	   "January 1st that is a Monday: %s", found ? fmt(r) : "none");
}

/* -------------------------------------------------------- reference ----- */

/* A small deterministic random generator (xorshift64*). */
static uint64_t rng_state = 88172645463325252ULL;

/* Next random number. */
static uint64_t
rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* A random integer in lo..hi. */
static int
rnd_in(int lo, int hi)
{
	return lo + (int) (rnd() % (uint64_t) (hi - lo + 1));
}

/* Does local wall time w match s?  Uses libc's calendar, not cron.c's. */
static bool
ref_matches(const TegoCronSchedule *s, int64_t w)
{
	time_t		tt = (time_t) w;
	time_t		tomorrow = (time_t) (w + DAY);
	struct tm	tm;
	struct tm	tm2;
	bool		dom_ok;
	bool		dow_ok;

	gmtime_r(&tt, &tm);
	gmtime_r(&tomorrow, &tm2);
	if (!(s->seconds >> tm.tm_sec & 1) || !(s->minutes >> tm.tm_min & 1) ||
		!(s->hours >> tm.tm_hour & 1) || !(s->months >> (tm.tm_mon + 1) & 1))
		return false;
	dom_ok = (s->days_of_month >> tm.tm_mday & 1) ||
		(s->last_day && tm2.tm_mday == 1);
	dow_ok = (s->days_of_week >> tm.tm_wday & 1);
	if (s->dom_restricted && s->dow_restricted)
		return dom_ok || dow_ok;
	return dom_ok && dow_ok;
}

/* local(t) in zone z. */
static int64_t
local_of(const Zone *z, int64_t t)
{
	return t + z->off(t, z->arg);
}

/*
 * Brute force: every fire time in (after, end], by scanning instants that
 * are multiples of `step` (60 for 5-field schedules: every real zone here
 * changes offset on a minute boundary, and such schedules only match wall
 * times with second 0).  Wall-clock schedules fire at t when a matching
 * wall time lies in (highest local time before t, local(t)]: its first
 * occurrence, or the end of the gap that skipped it.  Real-time schedules
 * fire at t when local(t) matches.
 */
static int
ref_fires(const TegoCronSchedule *s, const Zone *z, int64_t after, int64_t end,
		  int step, int64_t *out, int max)
{
	int			n = 0;
	int64_t		t;
	int64_t		first = (after / step + 1) * step;

	if (s->interval > 0)
	{
		for (t = after + 1; t <= end && n < max; t++)
			if (t % s->interval == 0)
				out[n++] = t;
		return n;
	}
	if (s->hour_star)
	{
		for (t = first; t <= end && n < max; t += step)
			if (ref_matches(s, local_of(z, t)))
				out[n++] = t;
		return n;
	}
	else
	{
		int64_t		high = local_of(z, after);

		/* the highest local time shown up to `after` (minute boundaries suffice) */
		for (t = (after - 2 * DAY) / 60 * 60; t <= after; t += 60)
		{
			int64_t		a = local_of(z, t);
			int64_t		b = local_of(z, t - 1);

			if (a > high)
				high = a;
			if (b > high)
				high = b;
		}
		for (t = first; t <= end && n < max; t += step)
		{
			int64_t		before = local_of(z, t - 1);
			int64_t		now = local_of(z, t);
			int64_t		w;

			if (before > high)
				high = before;
			if (now > high)
			{
				for (w = (high / step + 1) * step; w <= now; w += step)
					if (ref_matches(s, w))
					{
						out[n++] = t;
						break;
					}
				high = now;
			}
		}
		return n;
	}
}

/* Append a random value of a field (min..max) in any form to buf. */
static void
gen_value(char *buf, int min, int max, int kind)
{
	static const char *const mon[] = {"jan", "Feb", "mar", "APR", "may", "jun",
	"jul", "aug", "Sep", "oct", "nov", "dec"};
	static const char *const dow[] = {"sun", "Mon", "tue", "wed", "thu", "FRI", "sat"};
	int			v = rnd_in(min, max);

	if (kind == 4 && rnd() % 3 == 0)
		strcat(buf, mon[v - 1]);
	else if (kind == 5 && v < 7 && rnd() % 3 == 0)
		strcat(buf, dow[v]);
	else
		sprintf(buf + strlen(buf), "%d", v);
}

/*
 * Append a random field to buf.  kind: 0 second, 1 minute, 2 hour, 3 dom,
 * 4 month, 5 dow.  Values are biased towards DST-sensitive hours and
 * round minutes.
 */
static void
gen_field(char *buf, int kind)
{
	static const int mins[] = {0, 1, 15, 30, 45, 59};
	static const int lo[] = {0, 0, 0, 1, 1, 0};
	static const int hi[] = {59, 59, 23, 31, 12, 7};
	int			items = rnd() % 4 == 0 ? rnd_in(2, 3) : 1;
	int			i;

	for (i = 0; i < items; i++)
	{
		int			form = rnd_in(0, 9);
		int			a;
		int			b;

		if (i > 0)
			strcat(buf, ",");
		if (form <= 2 && i == 0)
		{
			strcat(buf, kind == 3 && rnd() % 5 == 0 ? "?" : "*");
			continue;
		}
		if (form == 3)
		{
			sprintf(buf + strlen(buf), "*/%d", rnd_in(1, kind == 2 ? 8 : hi[kind] / 2));
			continue;
		}
		if (kind == 3 && form == 4)
		{
			strcat(buf, "$");
			continue;
		}
		if ((kind == 1 || kind == 0) && form >= 5 && form <= 7)
		{
			sprintf(buf + strlen(buf), "%d", mins[rnd_in(0, 5)]);
			continue;
		}
		if (kind == 2 && form >= 5 && form <= 7)
		{
			sprintf(buf + strlen(buf), "%d", rnd_in(0, 3));
			continue;
		}
		a = rnd_in(lo[kind], hi[kind]);
		b = rnd_in(a, hi[kind]);
		if (form == 8 && a < b)
		{
			char		tmp[16] = "";

			gen_value(buf, a, a, kind);
			strcat(buf, "-");
			gen_value(tmp, b, b, kind);
			strcat(buf, tmp);
			if (rnd() % 2)
				sprintf(buf + strlen(buf), "/%d", rnd_in(1, 5));
		}
		else if (form == 9 && kind != 5)
			sprintf(buf + strlen(buf), "%d/%d", a, rnd_in(1, 10));
		else
			gen_value(buf, lo[kind], hi[kind], kind);
	}
}

/* A random schedule text: usually 5 fields, sometimes 6, rarely others. */
static void
gen_schedule(char *buf, bool *six)
{
	static const char *const others[] = {"@hourly", "@daily", "@weekly",
	"@monthly", "@yearly", "5 seconds", "13 seconds", "59 seconds"};
	int			k;

	buf[0] = '\0';
	*six = false;
	if (rnd() % 20 == 0)
	{
		strcpy(buf, others[rnd_in(0, 7)]);
		return;
	}
	*six = rnd() % 5 == 0;
	for (k = *six ? 0 : 1; k < 6; k++)
	{
		if (k > (*six ? 0 : 1))
			strcat(buf, " ");
		gen_field(buf, k);
	}
}

/* An instant near one of the zone's transitions (or anywhere in 2026). */
static int64_t
gen_after(const Zone *z, int64_t before, int64_t span)
{
	static const char *const ny[] = {"2026-03-08 07:00:00", "2026-11-01 06:00:00"};
	static const char *const london[] = {"2026-03-29 01:00:00", "2026-10-25 01:00:00"};
	static const char *const lhi[] = {"2026-04-04 15:00:00", "2026-10-03 15:30:00"};
	static const char *const apia[] = {"2011-12-30 10:00:00", "2011-09-24 14:00:00"};
	const char *const *list = NULL;
	int64_t		base;

	if (z == &zone_ny)
		list = ny;
	else if (z == &zone_london)
		list = london;
	else if (z == &zone_lhi)
		list = lhi;
	else if (z == &zone_apia)
		list = apia;
	if (list == NULL || rnd() % 8 == 0)
		base = ts("2026-01-01 00:00:00") + (int64_t) (rnd() % (365 * DAY));
	else
		base = ts(list[rnd() % 2]);
	/* a quarter of the time, within two hours of the transition */
	if (list != NULL && rnd() % 4 == 0)
		return base - 2 * HOUR + (int64_t) (rnd() % (4 * HOUR));
	return base - before + (int64_t) (rnd() % (uint64_t) span);
}

/*
 * Random valid schedules against the brute-force reference, each in UTC
 * and in one DST zone, over windows of 3 days (5 fields, scanned by the
 * minute) or 6 hours (6 fields, by the second).
 */
static void
test_against_reference(int count)
{
	static const Zone *const zones[] = {&zone_ny, &zone_london, &zone_lhi,
	&zone_apia, &zone_ny, &zone_london};
	int			tried = 0;
	int			compared = 0;
	int			mismatches = 0;
	int			rejected = 0;
	int			fires = 0;

	while (compared < count)
	{
		char		text[256];
		char		err[TEGO_CRON_ERRLEN];
		TegoCronSchedule s;
		bool		six;
		int			zi;

		gen_schedule(text, &six);
		tried++;
		if (!tego_cron_parse(text, &s, err, sizeof(err)))
		{
			rejected++;
			if (!detail_style(err))
				ok(false, "random \"%s\" rejected with a badly shaped message: %s",
				   text, err);
			continue;
		}
		compared++;
		for (zi = 0; zi < 2; zi++)
		{
			const Zone *z = zi == 0 ? &zone_utc : zones[rnd() % 6];
			int64_t		window = six ? 6 * HOUR : 3 * DAY;
			int64_t		after = six ? gen_after(z, 4 * HOUR, 5 * HOUR)
			: gen_after(z, 2 * DAY, 2 * DAY);
			int64_t		end = after + window;
			int64_t		want[2000];
			int64_t		got[2000];
			int			nwant = ref_fires(&s, z, after, end, six ? 1 : 60, want, 2000);
			int			ngot = 0;
			int64_t		t = after;
			int64_t		r;
			bool		found = false;
			int			k;

			while (ngot < 2000 && (found = tego_cron_next(&s, t, z->off, z->arg, &r)) &&
				   r <= end)
			{
				got[ngot++] = r;
				t = r;
			}
			fires += ngot;
			if (!found && ngot < 2000)
			{
				mismatches++;
				ok(false, "\"%s\" in %s after %s: tego_cron_next found nothing",
				   text, z->name, fmt(t));
				continue;
			}
			for (k = 0; k < nwant && k < ngot && want[k] == got[k]; k++)
				;
			if (k < nwant || k < ngot)
			{
				mismatches++;
				ok(false, "\"%s\" in %s after %s: differs from the reference at fire %d: "
				   "want %s, got %s", text, z->name, fmt(after), k,
				   k < nwant ? fmt(want[k]) : "(none)",
				   k < ngot ? fmt(got[k]) : "(none)");
			}
		}
	}
	ok(mismatches == 0, "%d random schedules (of %d generated, %d rejected) agree "
	   "with the brute-force reference in UTC and a DST zone (%d fire times)",
	   compared, tried, rejected, fires);
}

/* ------------------------------------------------------------ speed --- */

/* Seconds on a monotonic clock. */
static double
now_seconds(void)
{
	struct timespec tv;

	clock_gettime(CLOCK_MONOTONIC, &tv);
	return tv.tv_sec + tv.tv_nsec / 1e9;
}

/* Next times for 10,000 random schedules must take well under 100 ms. */
static void
test_speed(void)
{
	enum
	{
	N = 10000};
	static TegoCronSchedule sched[N];
	int			n = 0;
	int			i;
	int			round;
	int			zi;
	int64_t		after = ts("2026-03-07 12:34:56");
	int64_t		r;
	int64_t		sum = 0;
	static const Zone *const zones[] = {&zone_utc, &zone_p0530, &zone_ny};

	while (n < N)
	{
		char		text[256];
		bool		six;

		gen_schedule(text, &six);
		if (tego_cron_parse(text, &sched[n], NULL, 0))
			n++;
	}
	for (zi = 0; zi < 3; zi++)
	{
		const Zone *z = zones[zi];
		double		best = 1e9;

		/* best of three, so that a busy machine does not fail the test */
		for (round = 0; round < 3; round++)
		{
			double		t0 = now_seconds();
			double		el;

			for (i = 0; i < N; i++)
				if (tego_cron_next(&sched[i], after, z->off, z->arg, &r))
					sum += r - after;
			el = now_seconds() - t0;
			if (el < best)
				best = el;
		}
		if (z->off == off_zone)
			ok(best < 1.0, "next fire time of %d schedules in %s (libc localtime_r): "
			   "%.1f ms", N, z->name, best * 1e3);
		else
			ok(best < 0.1, "next fire time of %d schedules in %s: %.1f ms (< 100 ms)",
			   N, z->name, best * 1e3);
	}
	(void) sum;
}

/* ------------------------------------------------------------- main --- */

/* Run everything; exit 1 on any failure. */
int
main(int argc, char **argv)
{
	int			count = argc > 1 ? atoi(argv[1]) : 1000;

	(void) argv;
	/* the zones must be real, or the DST tests test nothing */
	ok(off_zone(ts("2026-07-01 12:00:00"), "America/New_York") == -4 * HOUR &&
	   off_zone(ts("2026-01-01 12:00:00"), "America/New_York") == -5 * HOUR,
	   "libc knows America/New_York (tzdata is installed)");

	test_parse_accepts();
	test_parse_rejects();
	test_next_table();
	test_next_edges();
	test_against_reference(count);
	test_speed();

	printf("1..%d\n", n_tests);
	printf("%d passed, %d failed\n", n_tests - n_failed, n_failed);
	return n_failed > 0 ? 1 : 0;
}
