/*-------------------------------------------------------------------------
 *
 * cron.c
 *	  Cron schedule parser and next-fire-time calculator.
 *
 *	  tego_cron_parse() turns schedule text into bitsets, one per field, and
 *	  rejects anything outside the grammar described in cron.h, including
 *	  schedules that can never fire.  tego_cron_next() finds the first fire
 *	  time after an instant by jumping field by field through the local
 *	  calendar (month, day, hour, minute, second), then maps the local wall
 *	  time it found back to UTC with the zone's offset callback, following
 *	  cronie's DST rules.
 *
 *	  Plain C99 and libc only: no PostgreSQL headers, no libc time zone
 *	  state, no allocation, no globals.  The unit test (test/unit) and the
 *	  fuzz harness (test/fuzz) link this file on its own.
 *
 *-------------------------------------------------------------------------
 */
#include "cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SECS_PER_DAY	INT64_C(86400)

/*
 * Most windows tego_cron_next examines for a real-time schedule, and most
 * wall times it tries for a wall-clock one.  NB: a real zone needs a few;
 * the bounds only stop a callback that is not a sane zone from looping.
 */
#define MAX_WINDOWS		1000
#define MAX_WALL_TRIES	16

/* Longest number in a field; more digits is an error, never an overflow. */
#define MAX_DIGITS		4

/* What a field accepts beyond numbers, `*`, ranges, steps and lists. */
typedef enum FieldKind
{
	FIELD_PLAIN,				/* nothing more */
	FIELD_DOM,					/* `?` and `$` */
	FIELD_MONTH,				/* month names */
	FIELD_DOW					/* day names and `?`; 7 is Sunday */
} FieldKind;

/* How to parse one field. */
typedef struct FieldSpec
{
	const char *name;			/* for error messages */
	int			min;			/* smallest value accepted */
	int			max;			/* largest value accepted */
	int			star_max;		/* last value of `*` and of `a/n` */
	FieldKind	kind;
} FieldSpec;

static const FieldSpec second_spec = {"second", 0, 59, 59, FIELD_PLAIN};
static const FieldSpec minute_spec = {"minute", 0, 59, 59, FIELD_PLAIN};
static const FieldSpec hour_spec = {"hour", 0, 23, 23, FIELD_PLAIN};
static const FieldSpec dom_spec = {"day of month", 1, 31, 31, FIELD_DOM};
static const FieldSpec month_spec = {"month", 1, 12, 12, FIELD_MONTH};
static const FieldSpec dow_spec = {"day of week", 0, 7, 6, FIELD_DOW};

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec"
};

static const char *const day_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat"
};

/* The @ shortcuts and the 5-field schedules they stand for. */
static const struct
{
	const char *name;
	const char *fields;
}			macros[] = {
	{"@yearly", "0 0 1 1 *"},
	{"@annually", "0 0 1 1 *"},
	{"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"},
	{"@daily", "0 0 * * *"},
	{"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"}
};

#ifdef __GNUC__
static bool fail(char *errbuf, size_t errlen, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
#endif

/* Write an error message into errbuf (if any) and return false. */
static bool
fail(char *errbuf, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (errbuf != NULL && errlen > 0)
	{
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* Is c ASCII whitespace?  NB: not isspace(), which depends on the locale. */
static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		c == '\v' || c == '\f';
}

/* Is c an ASCII digit? */
static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Is c an ASCII letter? */
static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ASCII lower case of c. */
static char
to_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
}

/* Does p[0..len) equal the lower-case word w, ignoring case? */
static bool
word_equals(const char *p, size_t len, const char *w)
{
	size_t		i;

	if (strlen(w) != len)
		return false;
	for (i = 0; i < len; i++)
		if (to_lower(p[i]) != w[i])
			return false;
	return true;
}

/* Are all of p[0..len) letters (and is there at least one)? */
static bool
all_alpha(const char *p, size_t len)
{
	size_t		i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++)
		if (!is_alpha(p[i]))
			return false;
	return true;
}

/* Bound a length for a %.*s conversion, so that messages stay short. */
static int
clip(size_t len)
{
	return len > 20 ? 20 : (int) len;
}

/*
 * Parse the digits at *pp (there is at least one) into *value and advance
 * *pp.  More than MAX_DIGITS digits is an error, reported for field f.
 */
static bool
parse_digits(const char **pp, const char *end, const FieldSpec *f,
			 int *value, char *errbuf, size_t errlen)
{
	const char *p = *pp;
	int			v = 0;
	int			n = 0;

	while (p < end && is_digit(*p))
	{
		if (++n > MAX_DIGITS)
			return fail(errbuf, errlen,
						"Field \"%s\" has a number with too many digits.",
						f->name);
		v = v * 10 + (*p - '0');
		p++;
	}
	*pp = p;
	*value = v;
	return true;
}

/* Explain what is wrong at p, the first byte that does not fit field f. */
static bool
unexpected(const char *p, const char *end, const FieldSpec *f,
		   char *errbuf, size_t errlen)
{
	if (p >= end || *p == ',')
		return fail(errbuf, errlen,
					"Field \"%s\" has an incomplete range or step.", f->name);
	return fail(errbuf, errlen,
				"Field \"%s\" contains unexpected character \"%c\".",
				f->name, *p);
}

/*
 * Parse one value of field f at *pp: a number or, in the month and
 * day-of-week fields, a name.  Check its range and advance *pp.
 */
static bool
parse_value(const char **pp, const char *end, const FieldSpec *f,
			int *value, char *errbuf, size_t errlen)
{
	const char *p = *pp;

	if (p < end && is_digit(*p))
	{
		if (!parse_digits(pp, end, f, value, errbuf, errlen))
			return false;
		if (*value < f->min || *value > f->max)
			return fail(errbuf, errlen,
						"Field \"%s\" value %d is out of range %d-%d.",
						f->name, *value, f->min, f->max);
		return true;
	}
	if (p < end && is_alpha(*p))
	{
		const char *start = p;
		size_t		len;
		int			i;

		while (p < end && is_alpha(*p))
			p++;
		len = (size_t) (p - start);
		*pp = p;
		if (f->kind == FIELD_MONTH)
		{
			for (i = 0; i < 12; i++)
				if (word_equals(start, len, month_names[i]))
				{
					*value = i + 1;
					return true;
				}
		}
		else if (f->kind == FIELD_DOW)
		{
			for (i = 0; i < 7; i++)
				if (word_equals(start, len, day_names[i]))
				{
					*value = i;
					return true;
				}
		}
		return fail(errbuf, errlen,
					"Field \"%s\" contains unknown name \"%.*s\".",
					f->name, clip(len), start);
	}
	return unexpected(p, end, f, errbuf, errlen);
}

/*
 * Parse field f, the len bytes at p (at least one), into *bits.  Set *star
 * when the field starts with `*` or `?`, and *last when it holds `$`.
 */
static bool
parse_field(const char *p, size_t len, const FieldSpec *f, uint64_t *bits,
			bool *star, bool *last, char *errbuf, size_t errlen)
{
	const char *end = p + len;

	*bits = 0;
	*star = (*p == '*' || *p == '?');
	*last = false;

	for (;;)
	{
		const char *item = p;
		int			lo;
		int			hi;
		int			step = 1;
		int			v;
		bool		may_step = true;	/* not after `?` or `$` */

		if (p == end || *p == ',')
			return fail(errbuf, errlen,
						"Field \"%s\" has an empty list item.", f->name);

		if (*p == '*')
		{
			p++;
			lo = f->min;
			hi = f->star_max;
		}
		else if (*p == '?')
		{
			if (f->kind != FIELD_DOM && f->kind != FIELD_DOW)
				return fail(errbuf, errlen,
							"Field \"%s\" does not accept \"?\".", f->name);
			p++;
			lo = f->min;
			hi = f->star_max;
			may_step = false;
		}
		else if (*p == '$')
		{
			if (f->kind != FIELD_DOM)
				return fail(errbuf, errlen,
							"Field \"%s\" does not accept \"$\".", f->name);
			p++;
			*last = true;
			lo = 1;
			hi = 0;				/* no bits: last_day says it all */
			may_step = false;
		}
		else
		{
			if (!parse_value(&p, end, f, &lo, errbuf, errlen))
				return false;
			hi = lo;
			if (p < end && *p == '-')
			{
				p++;
				if (!parse_value(&p, end, f, &hi, errbuf, errlen))
					return false;
				if (lo > hi)
					return fail(errbuf, errlen, "Range %.*s is reversed.",
								clip((size_t) (p - item)), item);
			}
			else if (p < end && *p == '/' && lo < f->star_max)
				hi = f->star_max;	/* `a/n` runs from a to the maximum */
		}

		if (p < end && *p == '/' && may_step)
		{
			p++;
			if (p >= end || !is_digit(*p))
				return unexpected(p, end, f, errbuf, errlen);
			if (!parse_digits(&p, end, f, &step, errbuf, errlen))
				return false;
			if (step == 0)
				return fail(errbuf, errlen, "A step of 0 is not allowed.");
			if (step > f->max)
				return fail(errbuf, errlen,
							"Field \"%s\" step %d is out of range 1-%d.",
							f->name, step, f->max);
		}

		/* NB: day of week 7 is Sunday, bit 0 */
		for (v = lo; v <= hi; v += step)
			*bits |= UINT64_C(1) << (f->kind == FIELD_DOW && v == 7 ? 0 : v);

		if (p == end)
			return true;
		if (*p != ',')
			return unexpected(p, end, f, errbuf, errlen);
		p++;
	}
}

/* Is y a leap year (proleptic Gregorian)? */
static bool
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Number of days in month m (1-12) of year y. */
static int
days_in_month(int64_t y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return (m == 2 && is_leap(y)) ? 29 : days[m - 1];
}

/*
 * Can the schedule ever fire?  NB: over the 400-year Gregorian cycle every
 * date, February 29th included, falls on every weekday, so only the
 * day-of-month field against the month field can rule a schedule out, and
 * only when the day-of-week field does not OR in days of its own.
 */
static bool
can_fire(const TegoCronSchedule *s)
{
	int			m;
	int			d;

	if (s->interval > 0 || s->last_day ||
		(s->dom_restricted && s->dow_restricted))
		return true;
	for (m = 1; m <= 12; m++)
	{
		if (!(s->months & (1u << m)))
			continue;
		for (d = 1; d <= (m == 2 ? 29 : days_in_month(1, m)); d++)
			if (s->days_of_month & (UINT32_C(1) << d))
				return true;
	}
	return false;
}

/* Parse the 5 or 6 fields in tok[0..n) into *s. */
static bool
parse_fields(const char *const *tok, const size_t *toklen, int n,
			 TegoCronSchedule *s, char *errbuf, size_t errlen)
{
	static const FieldSpec *const specs[] = {
		&second_spec, &minute_spec, &hour_spec,
		&dom_spec, &month_spec, &dow_spec
	};
	uint64_t	bits[6];
	bool		star[6];
	bool		last[6];
	int			first = 6 - n;	/* 5 fields: no seconds */
	int			i;

	bits[0] = 1;				/* second 0 */
	star[0] = last[0] = false;
	for (i = first; i < 6; i++)
		if (!parse_field(tok[i - first], toklen[i - first], specs[i],
						 &bits[i], &star[i], &last[i], errbuf, errlen))
			return false;

	s->seconds = bits[0];
	s->minutes = bits[1];
	s->hours = (uint32_t) bits[2];
	s->days_of_month = (uint32_t) bits[3];
	s->months = (uint16_t) bits[4];
	s->days_of_week = (uint8_t) bits[5];
	s->last_day = last[3];
	s->dom_restricted = !star[3];
	s->dow_restricted = !star[5];
	s->hour_star = star[2];
	s->interval = 0;

	if (!can_fire(s))
		return fail(errbuf, errlen,
					"Schedule can never fire: none of its days of month occur in its months.");
	return true;
}

/*
 * Parse `N seconds` when the tokens have that shape.  Returns 1 when it
 * parsed, -1 on error (message written), 0 when the text is not an
 * interval at all.
 */
static int
parse_interval(const char *const *tok, const size_t *toklen, int n,
			   TegoCronSchedule *s, char *errbuf, size_t errlen)
{
	const char *p = tok[0];
	const char *end = tok[0] + toklen[0];
	const char *unit;
	size_t		unitlen;
	int			value = 0;

	if (n > 2 || !is_digit(*p))
		return 0;
	while (p < end && is_digit(*p))
	{
		/* NB: cap instead of overflowing; anything above 59 is an error */
		if (value < 1000)
			value = value * 10 + (*p - '0');
		p++;
	}
	if (p < end && n == 1)
	{
		unit = p;
		unitlen = (size_t) (end - p);
	}
	else if (p == end && n == 2)
	{
		unit = tok[1];
		unitlen = toklen[1];
	}
	else
		return 0;
	if (!all_alpha(unit, unitlen))
		return 0;
	if (!word_equals(unit, unitlen, "second") &&
		!word_equals(unit, unitlen, "seconds"))
	{
		fail(errbuf, errlen,
			 "Interval unit \"%.*s\" is not supported; only seconds are.",
			 clip(unitlen), unit);
		return -1;
	}
	if (value < 1 || value > 59)
	{
		fail(errbuf, errlen, "Interval must be between 1 and 59 seconds.");
		return -1;
	}
	memset(s, 0, sizeof(*s));
	s->interval = value;
	return 1;
}

/* Parse a schedule; see cron.h. */
bool
tego_cron_parse(const char *text, TegoCronSchedule *out,
				char *errbuf, size_t errlen)
{
	const char *tok[6];
	size_t		toklen[6];
	int			n = 0;
	size_t		len;
	size_t		i;
	TegoCronSchedule s;

	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (text == NULL)
		return fail(errbuf, errlen, "Schedule is empty.");

	/* NB: never read past the longest text we accept, plus its NUL */
	for (len = 0; len <= TEGO_CRON_MAX_LENGTH && text[len] != '\0'; len++)
		;
	if (len > TEGO_CRON_MAX_LENGTH)
		return fail(errbuf, errlen, "Schedule is longer than %d bytes.",
					TEGO_CRON_MAX_LENGTH);

	/* Every byte must be printable ASCII or whitespace. */
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) text[i];

		if ((c < 0x21 || c > 0x7e) && !is_space((char) c))
			return fail(errbuf, errlen,
						"Schedule contains invalid byte 0x%02X.", c);
	}

	/* Split into whitespace-separated tokens, counting them all. */
	i = 0;
	for (;;)
	{
		size_t		start;

		while (i < len && is_space(text[i]))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && !is_space(text[i]))
			i++;
		if (n < 6)
		{
			tok[n] = text + start;
			toklen[n] = i - start;
		}
		n++;
	}
	if (n == 0)
		return fail(errbuf, errlen, "Schedule is empty.");

	memset(&s, 0, sizeof(s));
	if (tok[0][0] == '@')
	{
		size_t		k;

		for (k = 0; k < sizeof(macros) / sizeof(macros[0]); k++)
		{
			if (word_equals(tok[0], toklen[0], macros[k].name))
			{
				if (n > 1)
					return fail(errbuf, errlen,
								"Unexpected text after \"%s\".",
								macros[k].name);
				return tego_cron_parse(macros[k].fields, out, errbuf, errlen);
			}
		}
		return fail(errbuf, errlen, "Unknown shortcut \"%.*s\".",
					clip(toklen[0]), tok[0]);
	}

	switch (parse_interval(tok, toklen, n, &s, errbuf, errlen))
	{
		case 1:
			*out = s;
			return true;
		case -1:
			return false;
		default:
			break;
	}

	if (n != 5 && n != 6)
		return fail(errbuf, errlen, "Expected 5 or 6 fields, got %d.", n);
	if (!parse_fields(tok, toklen, n, &s, errbuf, errlen))
		return false;
	*out = s;
	return true;
}

/* a / b rounded towards minus infinity (b > 0). */
static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t		q = a / b;

	if (a % b < 0)
		q--;
	return q;
}

/* The proleptic Gregorian date of day z since 1970-01-01. */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t		era;
	int64_t		doe;
	int64_t		yoe;
	int64_t		doy;
	int64_t		mp;

	/* NB: Howard Hinnant's algorithm; its years start in March */
	z += 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* Lowest set bit of mask at or above from (and at most max), or -1. */
static int
next_bit(uint64_t mask, int from, int max)
{
	int			n;

	for (n = from; n <= max; n++)
		if (mask & (UINT64_C(1) << n))
			return n;
	return -1;
}

/* Does day y-m-d (day number days) match the day fields of s? */
static bool
day_matches(const TegoCronSchedule *s, int64_t y, int m, int d, int64_t days)
{
	int			wday = (int) (days + 4 - floor_div(days + 4, 7) * 7);	/* 0 = Sunday */
	bool		dom_ok;
	bool		dow_ok;

	dom_ok = (s->days_of_month & (UINT32_C(1) << d)) != 0 ||
		(s->last_day && d == days_in_month(y, m));
	dow_ok = (s->days_of_week & (1u << wday)) != 0;
	/* NB: Vixie cron ORs the two only when both are restricted */
	if (s->dom_restricted && s->dow_restricted)
		return dom_ok || dow_ok;
	return dom_ok && dow_ok;
}

/*
 * First local day, numbered from 1970-01-01, at or after day `days` and at
 * or before day `limit` whose month and day match s.
 */
static bool
next_day(const TegoCronSchedule *s, int64_t days, int64_t limit, int64_t *out)
{
	/* NB: when the weekday cannot rule a day out, jump by day of month */
	bool		dom_only = s->days_of_week == 0x7F &&
		!(s->dom_restricted && s->dow_restricted);
	int64_t		y;
	int			m;
	int			d;

	civil_from_days(days, &y, &m, &d);
	while (days <= limit)
	{
		int			dim = days_in_month(y, m);
		int			nd = -1;

		if (s->months & (1u << m))
		{
			if (dom_only)
			{
				nd = next_bit(s->days_of_month, d, dim);
				if (nd < 0 && s->last_day)
					nd = dim;
			}
			else
			{
				for (nd = d; nd <= dim; nd++)
					if (day_matches(s, y, m, nd, days + nd - d))
						break;
				if (nd > dim)
					nd = -1;
			}
		}
		if (nd >= 0)
		{
			*out = days + nd - d;
			return *out <= limit;
		}
		/* on to the 1st of the next month */
		days += dim - d + 1;
		d = 1;
		if (++m > 12)
		{
			m = 1;
			y++;
		}
	}
	return false;
}

/* First second of the day at or after sod whose time fields match s, or -1. */
static int
next_time_of_day(const TegoCronSchedule *s, int sod)
{
	int			h = sod / 3600;
	int			mi = sod / 60 % 60;
	int			sec = sod % 60;
	int			n;

	while (h < 24)
	{
		n = next_bit(s->hours, h, 23);
		if (n < 0)
			return -1;
		if (n != h)
		{
			h = n;
			mi = sec = 0;
		}
		n = next_bit(s->minutes, mi, 59);
		if (n < 0)
		{
			h++;
			mi = sec = 0;
			continue;
		}
		if (n != mi)
		{
			mi = n;
			sec = 0;
		}
		n = next_bit(s->seconds, sec, 59);
		if (n < 0)
		{
			sec = 0;
			if (++mi > 59)
			{
				mi = 0;
				h++;
			}
			continue;
		}
		return h * 3600 + mi * 60 + n;
	}
	return -1;
}

/*
 * First local wall time (seconds, as if UTC) at or after `from` and at or
 * before `limit` that matches s, ignoring time zones.
 */
static bool
local_next(const TegoCronSchedule *s, int64_t from, int64_t limit,
		   int64_t *out)
{
	int64_t		days = floor_div(from, SECS_PER_DAY);
	int			sod = (int) (from - days * SECS_PER_DAY);
	int64_t		day;
	int			t;

	while (next_day(s, days, floor_div(limit, SECS_PER_DAY), &day))
	{
		if (day != days)
			sod = 0;
		t = next_time_of_day(s, sod);
		if (t >= 0)
		{
			*out = day * SECS_PER_DAY + t;
			return *out <= limit;
		}
		days = day + 1;
		sod = 0;
	}
	return false;
}

/* The zone's offset at instant t, clamped to +-TEGO_CRON_MAX_OFFSET. */
static int64_t
offset_at(TegoCronUtcOffset off, void *arg, int64_t t)
{
	long		o;

	if (off == NULL)
		return 0;
	o = off(t, arg);
	if (o > TEGO_CRON_MAX_OFFSET)
		return TEGO_CRON_MAX_OFFSET;
	if (o < -TEGO_CRON_MAX_OFFSET)
		return -TEGO_CRON_MAX_OFFSET;
	return o;
}

/*
 * First instant in (lo, hi] whose offset is not o, by binary search; the
 * offset at lo is o and the one at hi is not.
 */
static int64_t
first_change(TegoCronUtcOffset off, void *arg, int64_t lo, int64_t hi,
			 int64_t o)
{
	while (hi - lo > 1)
	{
		int64_t		mid = lo + (hi - lo) / 2;

		if (offset_at(off, arg, mid) == o)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

/*
 * The instant at which wall time w fires under the wall-clock rules: its
 * first occurrence, or, when a forward jump skips it, the first instant
 * after the jump.  That is the first instant whose local time is >= w.
 */
static int64_t
first_instant(TegoCronUtcOffset off, void *arg, int64_t w)
{
	/* NB: the offsets one day either side are the only candidates */
	int64_t		p = offset_at(off, arg, w - SECS_PER_DAY);
	int64_t		q = offset_at(off, arg, w + SECS_PER_DAY);
	int64_t		t1 = w - p;
	int64_t		t2 = w - q;
	bool		ok1 = offset_at(off, arg, t1) == p;
	bool		ok2 = offset_at(off, arg, t2) == q;
	int64_t		lo;
	int64_t		hi;
	int64_t		olo;

	if (ok1 && ok2)
		return t1 < t2 ? t1 : t2;
	if (ok1)
		return t1;
	if (ok2)
		return t2;

	/* w is in a gap: the jump happens between t2 and t1 */
	lo = t1 < t2 ? t1 : t2;
	hi = t1 < t2 ? t2 : t1;
	olo = offset_at(off, arg, lo);
	if (offset_at(off, arg, hi) == olo)
		return hi;				/* not a sane zone; do not loop */
	return first_change(off, arg, lo, hi, olo);
}

/*
 * Next fire time of a schedule whose hour field is not `*`: each matching
 * wall time fires once, at first_instant().  NB: first_instant() grows
 * with w, so the answer is first_instant() of the first matching wall time
 * beyond the latest wall time any instant up to `after` has shown.
 */
static bool
next_wall_clock(const TegoCronSchedule *s, int64_t after, int64_t end,
				TegoCronUtcOffset off, void *arg, int64_t *next)
{
	int64_t		o_now = offset_at(off, arg, after);
	int64_t		o_before = offset_at(off, arg, after - SECS_PER_DAY);
	int64_t		high = after + o_now;
	int64_t		w;
	int64_t		wm;
	int64_t		r;
	int			i;

	if (o_before > o_now)
	{
		/* the clock went back within the last day: it was later before */
		int64_t		x = first_change(off, arg, after - SECS_PER_DAY, after,
									 o_before);

		if (x - 1 + o_before > high)
			high = x - 1 + o_before;
	}

	w = high + 1;
	for (i = 0; i < MAX_WALL_TRIES; i++)
	{
		if (!local_next(s, w, end + TEGO_CRON_MAX_OFFSET, &wm))
			return false;
		r = first_instant(off, arg, wm);
		if (r > after)
		{
			if (r > end)
				return false;
			*next = r;
			return true;
		}
		w = wm + 1;
	}
	return false;
}

/*
 * Next fire time of a schedule whose hour field is `*`: the first real
 * instant after `after` whose local time matches.  Walks windows of at
 * most a day in which the offset is constant; before each, jumps to a day
 * before the next matching local date.
 */
static bool
next_real_time(const TegoCronSchedule *s, int64_t after, int64_t end,
			   TegoCronUtcOffset off, void *arg, int64_t *next)
{
	int64_t		t = after + 1;
	int			i;

	for (i = 0; i < MAX_WINDOWS && t <= end; i++)
	{
		int64_t		day;
		int64_t		skip;
		int64_t		wend;
		int64_t		o;
		int64_t		w;

		/*
		 * NB: an instant at or after t shows a local time of at least
		 * t - MAX_OFFSET, and one before day * 86400 - MAX_OFFSET shows a
		 * local time before that day: nothing in between can fire.
		 */
		if (!next_day(s, floor_div(t - TEGO_CRON_MAX_OFFSET, SECS_PER_DAY),
					  floor_div(end + TEGO_CRON_MAX_OFFSET, SECS_PER_DAY),
					  &day))
			return false;
		skip = day * SECS_PER_DAY - TEGO_CRON_MAX_OFFSET;
		if (skip > t)
			t = skip;
		if (t > end)
			return false;

		o = offset_at(off, arg, t);
		wend = t + SECS_PER_DAY - 1;
		if (wend > end)
			wend = end;
		if (offset_at(off, arg, wend) != o)
			wend = first_change(off, arg, t, wend, o) - 1;
		if (local_next(s, t + o, wend + o, &w))
		{
			*next = w - o;
			return true;
		}
		t = wend + 1;
	}
	return false;
}

/* First fire time strictly after after_utc_seconds; see cron.h. */
bool
tego_cron_next(const TegoCronSchedule *s, int64_t after_utc_seconds,
			   TegoCronUtcOffset off, void *arg, int64_t *next_utc_seconds)
{
	int64_t		after = after_utc_seconds;
	int64_t		end;

	if (after < TEGO_CRON_MIN_TIME || after > TEGO_CRON_MAX_TIME)
		return false;

	if (s->interval > 0)
	{
		int64_t		r = (floor_div(after, s->interval) + 1) * s->interval;

		if (r > TEGO_CRON_MAX_TIME)
			return false;
		*next_utc_seconds = r;
		return true;
	}

	end = after + TEGO_CRON_HORIZON_DAYS * SECS_PER_DAY;
	if (end > TEGO_CRON_MAX_TIME)
		end = TEGO_CRON_MAX_TIME;
	if (s->hour_star)
		return next_real_time(s, after, end, off, arg, next_utc_seconds);
	return next_wall_clock(s, after, end, off, arg, next_utc_seconds);
}
