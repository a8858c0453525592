/*-------------------------------------------------------------------------
 *
 * cron_fuzz.c
 *	  libFuzzer harness for the cron parser and next-fire calculator.
 *
 *	  Parses arbitrary bytes as a schedule.  When they parse, computes a
 *	  few successive fire times in UTC, in a fixed +05:45 zone and in three
 *	  synthetic DST zones (an hour at 02:00, half an hour at an odd base
 *	  offset, and a whole day skipped then repeated), and checks:
 *
 *	  - each fire time is strictly after the previous one;
 *	  - each fire time is one at which the schedule fires by cronie's rules,
 *		computed here by brute force: a real-time schedule (hour `*`) fires
 *		when the local time matches; a wall-clock schedule fires when a
 *		matching wall time lies between the highest local time shown
 *		before the instant and the local time at it (its first occurrence,
 *		or the end of the gap that skipped it);
 *	  - when the gap from the previous fire time is short, no instant in
 *		between fires;
 *	  - a schedule that parsed always has a next fire time.
 *
 *	  The synthetic zones are arithmetic, so the harness does not depend on
 *	  libc's time zone database.  Failing parses must leave a short
 *	  capitalised sentence ending in a period, and must not write past the
 *	  error buffer (AddressSanitizer watches: buffers are malloc'd to size).
 *
 *	  Build:
 *		clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -I src \
 *			test/fuzz/cron_fuzz.c src/cron.c -o cron_fuzz
 *	  Run: see test/fuzz/README.md.
 *
 *-------------------------------------------------------------------------
 */
#include "cron.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY		INT64_C(86400)
#define HOUR	INT64_C(3600)

/* Print what broke and abort, so that libFuzzer records the input. */
#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "cron_fuzz: check failed: %s\n  ", #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fprintf(stderr, "\n"); \
			abort(); \
		} \
	} while (0)

/*
 * A synthetic zone: offset std, except dst from to_dst to to_std (UTC
 * seconds into each period); period 0 means a fixed offset.  Transitions
 * fall on minute boundaries.
 */
typedef struct SynthZone
{
	const char *name;
	long		std;
	long		dst;
	int64_t		period;
	int64_t		to_dst;
	int64_t		to_std;
} SynthZone;

static const SynthZone zones[] = {
	/* New York-like: 02:00 -> 03:00 and 02:00 -> 01:00, every 20 days */
	{"dst", -5 * 3600, -4 * 3600, 20 * DAY, 5 * DAY + 7 * HOUR, 15 * DAY + 6 * HOUR},
	/* Lord Howe-like: +10:30, half an hour of DST */
	{"half", 10 * 3600 + 1800, 11 * 3600, 20 * DAY, 3 * DAY + 15 * HOUR + 1800,
	11 * DAY + 15 * HOUR},
	/* Apia-like: -10:00 -> +14:00 skips a day, and back repeats one */
	{"jump", -10 * 3600, 14 * 3600, 60 * DAY, 10 * DAY + 10 * HOUR, 40 * DAY + 10 * HOUR},
	{"+05:45", 5 * 3600 + 45 * 60, 0, 0, 0, 0},
	{"UTC", 0, 0, 0, 0, 0},
};

#define NZONES ((int) (sizeof(zones) / sizeof(zones[0])))

/* floor(a / b) for b > 0. */
static int64_t
fdiv(int64_t a, int64_t b)
{
	int64_t		q = a / b;

	return (a % b < 0) ? q - 1 : q;
}

/* The synthetic zone's offset at t. */
static long
zone_offset(const SynthZone *z, int64_t t)
{
	int64_t		r;

	if (z->period == 0)
		return z->std;
	r = t - fdiv(t, z->period) * z->period;
	return (r >= z->to_dst && r < z->to_std) ? z->dst : z->std;
}

/* TegoCronUtcOffset for a SynthZone. */
static long
synth_offset(int64_t t, void *arg)
{
	return zone_offset((const SynthZone *) arg, t);
}

/* Local time at t. */
static int64_t
local_at(const SynthZone *z, int64_t t)
{
	return t + zone_offset(z, t);
}

/*
 * Highest local time shown by any instant <= t.  NB: only the instant
 * just before a transition in the last two days can beat local(t).
 */
static int64_t
high_water(const SynthZone *z, int64_t t)
{
	int64_t		high = local_at(z, t);
	int64_t		k;

	if (z->period == 0)
		return high;
	for (k = fdiv(t - 2 * DAY, z->period); k <= fdiv(t, z->period); k++)
	{
		int64_t		xs[2];
		int			i;

		xs[0] = k * z->period + z->to_dst;
		xs[1] = k * z->period + z->to_std;
		for (i = 0; i < 2; i++)
			if (xs[i] <= t && xs[i] > t - 2 * DAY &&
				local_at(z, xs[i] - 1) > high)
				high = local_at(z, xs[i] - 1);
	}
	return high;
}

/* Does local wall time w match s?  libc's gmtime_r: no time zones. */
static bool
matches(const TegoCronSchedule *s, int64_t w)
{
	time_t		tt = (time_t) w;
	time_t		tomorrow = (time_t) (w + DAY);
	struct tm	tm;
	struct tm	tm2;
	bool		dom_ok;
	bool		dow_ok;

	if (gmtime_r(&tt, &tm) == NULL || gmtime_r(&tomorrow, &tm2) == NULL)
		abort();
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

/* Does s fire at instant t in zone z, by brute force? */
static bool
fires_at(const TegoCronSchedule *s, const SynthZone *z, int64_t t)
{
	int64_t		now;
	int64_t		high;
	int64_t		w;

	if (s->interval > 0)
		return t % s->interval == 0;
	now = local_at(z, t);
	if (s->hour_star)
		return matches(s, now);
	high = high_water(z, t - 1);
	if (s->seconds == 1)
	{
		/* NB: 5-field schedules only match second 0: try minutes only */
		for (w = fdiv(now, 60) * 60; w > high; w -= 60)
			if (matches(s, w))
				return true;
		return false;
	}
	for (w = now; w > high; w--)
		if (matches(s, w))
			return true;
	return false;
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

/* FNV-1a hash of the input, to pick instants deterministically. */
static uint64_t
hash_bytes(const uint8_t *data, size_t size)
{
	uint64_t	h = 1469598103934665603ULL;
	size_t		i;

	for (i = 0; i < size; i++)
	{
		h ^= data[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Next pseudo-random number from *h. */
static uint64_t
mix(uint64_t *h)
{
	*h ^= *h >> 33;
	*h *= 0xff51afd7ed558ccdULL;
	*h ^= *h >> 33;
	return *h;
}

/* An instant to start from: near a transition of z, or anywhere. */
static int64_t
pick_after(const SynthZone *z, uint64_t *h, int which)
{
	const int64_t around = INT64_C(1780000000);	/* 2026 */

	switch (which)
	{
		case 0:
		case 1:
			if (z->period > 0)
			{
				int64_t		k = fdiv(around, z->period) + (int64_t) (mix(h) % 200) - 100;
				int64_t		x = k * z->period + (mix(h) % 2 ? z->to_dst : z->to_std);

				if (which == 0)
					return x - 2 * HOUR + (int64_t) (mix(h) % (4 * HOUR));
				return x - 2 * DAY + (int64_t) (mix(h) % (3 * DAY));
			}
			return around + (int64_t) (mix(h) % (4 * 365 * DAY));
		case 2:
			return TEGO_CRON_MIN_TIME +
				(int64_t) (mix(h) % (uint64_t) (TEGO_CRON_MAX_TIME - TEGO_CRON_MIN_TIME));
		default:
			/* the ends of the supported range */
			if (mix(h) % 2)
				return TEGO_CRON_MAX_TIME - (int64_t) (mix(h) % (50 * 366 * DAY));
			return TEGO_CRON_MIN_TIME + (int64_t) (mix(h) % (3 * DAY));
	}
}

/* Check successive fire times of s in zone z from `after`. */
static void
check_next(const TegoCronSchedule *s, const char *text, const SynthZone *z,
		   int64_t after)
{
	int64_t		prev = after;
	int			i;

	for (i = 0; i < 4; i++)
	{
		int64_t		r = 0;
		bool		found;
		int64_t		t;
		int64_t		limit;

		found = tego_cron_next(s, prev, z->period || z->std ? synth_offset : NULL,
							   (void *) z, &r);
		if (!found)
		{
			/*
			 * Only allowed near the end of the supported range, or when
			 * the zone skips whole days: a real-time schedule does not fire
			 * on a skipped day, and `0 0 29 2` with Sundays only, say, can
			 * then wait beyond the horizon for its next February 29th.
			 */
			CHECK(prev > TEGO_CRON_MAX_TIME -
				  (int64_t) TEGO_CRON_HORIZON_DAYS * DAY + 2 * DAY ||
				  (s->hour_star && z->dst - z->std >= DAY),
				  "\"%s\" in %s: no fire time after %lld", text, z->name,
				  (long long) prev);
			return;
		}
		CHECK(r > prev, "\"%s\" in %s: next(%lld) = %lld is not later",
			  text, z->name, (long long) prev, (long long) r);
		CHECK(r <= TEGO_CRON_MAX_TIME, "\"%s\": %lld beyond the range",
			  text, (long long) r);
		if (s->interval > 0)
			CHECK(r % s->interval == 0 && r - prev <= s->interval,
				  "\"%s\": next(%lld) = %lld is not the next multiple",
				  text, (long long) prev, (long long) r);
		CHECK(fires_at(s, z, r),
			  "\"%s\" in %s: next(%lld) = %lld, local %lld, which does not fire",
			  text, z->name, (long long) prev, (long long) r,
			  (long long) local_at(z, r));

		/* nothing fires in between (when that is cheap to check) */
		limit = s->seconds == 1 ? 3 * HOUR : 600;
		if (r - prev <= limit)
		{
			for (t = prev + 1; t < r; t++)
			{
				/*
				 * NB: every offset here is whole minutes, so a 5-field
				 * schedule can only fire on a minute boundary
				 */
				if (s->seconds == 1 && s->interval == 0 && t % 60 != 0)
					continue;
				CHECK(!fires_at(s, z, t),
					  "\"%s\" in %s: next(%lld) = %lld skips %lld",
					  text, z->name, (long long) prev, (long long) r,
					  (long long) t);
			}
		}
		prev = r;
	}
}

/* Is m shaped as an errdetail: capital first, final period, one line? */
static bool
detail_style(const char *m)
{
	size_t		len = strlen(m);

	return len > 1 && m[0] >= 'A' && m[0] <= 'Z' && m[len - 1] == '.' &&
		strchr(m, '\n') == NULL;
}

/* libFuzzer entry point. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text;
	char	   *err;
	size_t		errlen;
	TegoCronSchedule s;
	TegoCronSchedule s2;
	bool		parsed;
	uint64_t	h;
	int			zi;

	if (size > 4096)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	/* an exact-size error buffer, sometimes tiny */
	errlen = (size % 5 == 0) ? 1 + size % 13 : TEGO_CRON_ERRLEN;
	err = malloc(errlen);
	if (err == NULL)
	{
		free(text);
		return 0;
	}
	parsed = tego_cron_parse(text, &s, err, errlen);
	CHECK(parsed == tego_cron_parse(text, &s2, NULL, 0),
		  "the result depends on the error buffer");
	if (!parsed)
	{
		CHECK(strlen(err) < errlen, "unterminated message");
		if (errlen == TEGO_CRON_ERRLEN)
			CHECK(detail_style(err), "badly shaped message \"%s\"", err);
		free(err);
		free(text);
		return 0;
	}
	CHECK(same_schedule(&s, &s2), "two parses differ");
	CHECK(s.interval > 0 ||
		  (s.seconds != 0 && s.minutes != 0 && s.hours != 0 &&
		   (s.days_of_month != 0 || s.last_day) && s.months != 0 &&
		   s.days_of_week != 0), "an empty field parsed");
	CHECK(s.interval >= 0 && s.interval <= 59, "interval %d", s.interval);
	CHECK((s.seconds >> 60) == 0 && (s.minutes >> 60) == 0 &&
		  (s.hours >> 24) == 0 && (s.days_of_month & 1) == 0 &&
		  (s.months & 0xE001) == 0 && (s.days_of_week >> 7) == 0,
		  "bits outside a field's range");

	h = hash_bytes(data, size);
	for (zi = 0; zi < NZONES; zi++)
		check_next(&s, text, &zones[zi], pick_after(&zones[zi], &h, (int) (mix(&h) % 4)));
	/* one more near a transition of each DST zone */
	for (zi = 0; zi < 3; zi++)
		check_next(&s, text, &zones[zi], pick_after(&zones[zi], &h, 0));

	free(err);
	free(text);
	return 0;
}
