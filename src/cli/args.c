/*
 * args.c - command-line option parsing for the tego tool.
 *
 * Each command has a table of options (OptSpec).  arg_next() returns the
 * options and positional arguments one at a time, in the order given:
 * "--name", "--name=value", "--name value", "-x", "-xvalue", "-x value";
 * "--" ends the options.  Unknown options and missing values are usage
 * errors, reported here.
 */
#include "tego_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
	{
		fprintf(stderr, "%s: error: out of memory\n", progname);
		exit(EXIT_SERVER);
	}
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void	   *q = realloc(p, n ? n : 1);

	if (q == NULL)
	{
		fprintf(stderr, "%s: error: out of memory\n", progname);
		exit(EXIT_SERVER);
	}
	return q;
}

char *
xstrdup(const char *s)
{
	size_t		n = strlen(s) + 1;
	char	   *p = xmalloc(n);

	memcpy(p, s, n);
	return p;
}

void
arg_init(ArgIter *it, int argc, char **argv, bool stop_at_positional)
{
	it->argc = argc;
	it->argv = argv;
	it->i = 0;
	it->only_positional = false;
	it->stop_at_positional = stop_at_positional;
}

int
usage_error(const char *usage, const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: error: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (usage)
		fprintf(stderr, "\n%s", usage);
	return EXIT_USAGE;
}

/*
 * Returns the option's id (value set for options with an argument),
 * ARG_POSITIONAL (value = the argument), ARG_END, or ARG_ERROR after
 * printing what is wrong (the caller prints the usage).
 */
int
arg_next(ArgIter *it, const OptSpec *specs, const char **value)
{
	const char *a;
	const OptSpec *s;

	*value = NULL;
	if (it->i >= it->argc)
		return ARG_END;
	a = it->argv[it->i];

	if (it->only_positional || a[0] != '-' || a[1] == '\0')
	{
		if (it->stop_at_positional)
			return ARG_END;
		it->i++;
		*value = a;
		return ARG_POSITIONAL;
	}
	if (strcmp(a, "--") == 0)
	{
		it->i++;
		if (it->stop_at_positional)
			return ARG_END;
		it->only_positional = true;
		return arg_next(it, specs, value);
	}
	it->i++;

	if (a[1] == '-')
	{
		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		size_t		len = eq ? (size_t) (eq - name) : strlen(name);

		for (s = specs; s->id; s++)
			if (s->longname && strlen(s->longname) == len &&
				strncmp(s->longname, name, len) == 0)
				break;
		if (!s->id)
		{
			fprintf(stderr, "%s: error: unknown option \"--%.*s\"\n",
					progname, (int) len, name);
			return ARG_ERROR;
		}
		if (!s->has_arg)
		{
			if (eq)
			{
				fprintf(stderr, "%s: error: option \"--%s\" takes no value\n",
						progname, s->longname);
				return ARG_ERROR;
			}
			return s->id;
		}
		if (eq)
			*value = eq + 1;
		else if (it->i < it->argc)
			*value = it->argv[it->i++];
		else
		{
			fprintf(stderr, "%s: error: option \"--%s\" needs a value\n",
					progname, s->longname);
			return ARG_ERROR;
		}
		return s->id;
	}

	for (s = specs; s->id; s++)
		if (s->shortname && s->shortname == a[1])
			break;
	if (!s->id)
	{
		fprintf(stderr, "%s: error: unknown option \"%s\"\n", progname, a);
		return ARG_ERROR;
	}
	if (!s->has_arg)
	{
		if (a[2] != '\0')
		{
			fprintf(stderr, "%s: error: unknown option \"%s\"\n", progname, a);
			return ARG_ERROR;
		}
		return s->id;
	}
	if (a[2] != '\0')
		*value = a + 2;
	else if (it->i < it->argc)
		*value = it->argv[it->i++];
	else
	{
		fprintf(stderr, "%s: error: option \"-%c\" needs a value\n",
				progname, s->shortname);
		return ARG_ERROR;
	}
	return s->id;
}

/* A decimal integer, all of s, in int64 range. */
bool
parse_int64(const char *s, int64_t *out)
{
	char	   *end;
	long long	v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s)
		return false;
	*out = (int64_t) v;
	return true;
}
