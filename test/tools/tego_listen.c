/*
 * tego_listen.c - print tego state events as a LISTEN client sees them.
 *
 * LISTENs on one or more channels (tego topics), optionally catches up
 * from a known position with tego.events_since(), then prints every
 * notification as it arrives, one line per event:
 *
 *     <seq> <topic> <payload-json>
 *
 * where <payload-json> is the notification text as the server sent it; an
 * event read by the catch-up is printed in the same layout, built from its
 * tego.events row (so it carries the full payload, never "omitted").
 *
 * The output is gapless and duplicate-free: LISTEN comes first, catch-up
 * second, and a live notification whose seq is not above the last printed
 * one is skipped (it was already printed by the catch-up).  Waiting is done
 * with poll() on the connection socket and a self-pipe for SIGINT/SIGTERM.
 *
 * Usage: tego_listen -d CONNINFO -c CHANNEL [-c CHANNEL]... [--from SEQ]
 *                    [--count N] [--timeout SECONDS] [--quiet-payload]
 *
 * Exit status: 0 when done (count reached, timeout, signal), 1 on error,
 * 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "tego_json.h"

#define PAGE_SIZE 1000

static const char *progname = "tego_listen";

static PGconn *conn;
static char **channels;             /* -c values (point into argv) */
static int64_t last_seq;            /* last printed seq */
static int have_last;               /* last_seq is meaningful */
static long long printed;           /* events printed so far */
static long long max_count;         /* --count, 0 = unlimited */
static int quiet_payload;           /* --quiet-payload */

/* Self-pipe written by the signal handler so poll() wakes up. */
static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t got_signal;

/* Print the usage text to the given stream. */
static void
usage(FILE *out)
{
	fprintf(out,
			"Usage: %s -d CONNINFO -c CHANNEL [-c CHANNEL]... [--from SEQ]\n"
			"       [--count N] [--timeout SECONDS] [--quiet-payload]\n"
			"\n"
			"Print tego events, one line each: <seq> <topic> <payload-json>.\n"
			"\n"
			"  -d, --dbname CONNINFO   libpq connection string or database name\n"
			"  -c, --channel CHANNEL   topic to LISTEN on (repeatable)\n"
			"  --from SEQ              first print events after SEQ from\n"
			"                          tego.events_since (0 = from the beginning)\n"
			"  --count N               exit after N events (catch-up included)\n"
			"  --timeout SECONDS       exit after SECONDS without any event\n"
			"  --quiet-payload         print only <seq> <topic>\n"
			"  -h, --help              show this help\n"
			"\n"
			"Exits 0 on --count, --timeout, SIGINT or SIGTERM; 1 on error; 2 on usage error.\n",
			progname);
}

/* Report a usage error and exit 2. */
static void
usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", progname);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n\n");
	usage(stderr);
	free(channels);
	exit(2);
}

/* Close the connection and exit with the given status. */
static void
finish(int status)
{
	if (fflush(stdout) != 0 && status == 0)
	{
		fprintf(stderr, "%s: could not write output: %s\n", progname, strerror(errno));
		status = 1;
	}
	if (conn)
		PQfinish(conn);
	conn = NULL;
	free(channels);
	channels = NULL;
	exit(status);
}

/* Report a failed query result (server message) and exit 1. */
static void
fail_result(const char *what, PGresult *res)
{
	const char *msg = res ? PQresultErrorMessage(res) : "";
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (msg == NULL || msg[0] == '\0')
		msg = PQerrorMessage(conn);
	fprintf(stderr, "%s: %s failed%s%s%s: %s", progname, what,
			state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "",
			msg);
	if (msg[0] == '\0' || msg[strlen(msg) - 1] != '\n')
		fputc('\n', stderr);
	PQclear(res);
	finish(1);
}

/* Signal handler: remember the signal and wake up poll(). */
static void
on_signal(int signo)
{
	int			save_errno = errno;
	ssize_t		rc;

	(void) signo;
	got_signal = 1;
	rc = write(sig_pipe[1], "x", 1);
	(void) rc;
	errno = save_errno;
}

/* Current CLOCK_MONOTONIC time in seconds. */
static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ---- minimal JSON scanning: find a top-level member of an object ---- */


/* Parse a non-negative decimal int64 from [s, e); optional quotes.  1 if ok. */
static int
parse_seq_text(const char *s, const char *e, int64_t *out)
{
	int64_t		v = 0;

	if (e - s >= 2 && *s == '"' && e[-1] == '"')
	{
		s++;
		e--;
	}
	if (s == e)
		return 0;
	for (; s < e; s++)
	{
		if (*s < '0' || *s > '9')
			return 0;
		if (v > (INT64_MAX - (*s - '0')) / 10)
			return 0;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 1;
}

/* ---- output ---- */

/* Write s as a JSON string literal (escaped as PostgreSQL's escape_json does). */
static void
put_json_string(const char *s)
{
	const unsigned char *p;

	putchar('"');
	for (p = (const unsigned char *) s; *p; p++)
	{
		if (*p == '"' || *p == '\\')
		{
			putchar('\\');
			putchar(*p);
		}
		else if (*p == '\n')
			fputs("\\n", stdout);
		else if (*p == '\r')
			fputs("\\r", stdout);
		else if (*p == '\t')
			fputs("\\t", stdout);
		else if (*p == '\b')
			fputs("\\b", stdout);
		else if (*p == '\f')
			fputs("\\f", stdout);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* Write JSON text, turning raw line breaks (whitespace) into spaces. */
static void
put_one_line(const char *s)
{
	for (; *s; s++)
		putchar(*s == '\n' || *s == '\r' ? ' ' : *s);
}

/* Finish an output line, flush it, and count the event. */
static void
end_event(int64_t seq)
{
	putchar('\n');
	if (fflush(stdout) != 0)
	{
		fprintf(stderr, "%s: could not write output: %s\n", progname, strerror(errno));
		finish(1);
	}
	last_seq = seq;
	have_last = 1;
	printed++;
}

/* Has --count been reached? */
static int
count_reached(void)
{
	return max_count > 0 && printed >= max_count;
}

/*
 * Print one event row from tego.events_since, in the layout of the server's
 * NOTIFY text ({"seq": 1, "topic": ..., "payload": ...}), so a caught-up
 * line looks like the live line of the same event.
 */
static void
print_row(PGresult *res, int row, int64_t seq)
{
	const char *topic = PQgetvalue(res, row, 1);

	printf("%" PRId64 " ", seq);
	put_one_line(topic);
	if (!quiet_payload)
	{
		printf(" {\"seq\": %" PRId64 ", \"topic\": ", seq);
		put_json_string(topic);
		fputs(", \"event\": ", stdout);
		if (PQgetisnull(res, row, 2))
			fputs("null", stdout);
		else
			put_json_string(PQgetvalue(res, row, 2));
		fputs(", \"key\": ", stdout);
		if (PQgetisnull(res, row, 3))
			fputs("null", stdout);
		else
			put_json_string(PQgetvalue(res, row, 3));
		fputs(", \"payload\": ", stdout);
		if (PQgetisnull(res, row, 4))
			fputs("null", stdout);
		else
			put_one_line(PQgetvalue(res, row, 4));
		putchar('}');
	}
	end_event(seq);
}

/* Handle one live notification: print it unless already printed. */
static void
handle_notify(PGnotify *n)
{
	const char *vs,
			   *ve;
	int64_t		seq;

	if (!json_member(n->extra, "seq", &vs, &ve) || !parse_seq_text(vs, ve, &seq))
	{
		fprintf(stderr, "%s: ignoring notification without a seq on channel \"%s\": %.200s\n",
				progname, n->relname, n->extra);
		return;
	}
	if (have_last && seq <= last_seq)
		return;					/* already printed (catch-up overlap) */
	printf("%" PRId64 " ", seq);
	put_one_line(n->relname);
	if (!quiet_payload)
	{
		putchar(' ');
		put_one_line(n->extra);
	}
	end_event(seq);
}

/* Print the notifications libpq has buffered, until --count or a signal. */
static void
drain_notifies(void)
{
	PGnotify   *n;

	while (!count_reached() && !got_signal && (n = PQnotifies(conn)) != NULL)
	{
		handle_notify(n);
		PQfreemem(n);
	}
}

/* LISTEN on every channel (one quoted identifier each). */
static void
listen_all(int nchannels)
{
	int			i;

	for (i = 0; i < nchannels; i++)
	{
		char	   *ident = PQescapeIdentifier(conn, channels[i], strlen(channels[i]));
		char	   *sql;
		PGresult   *res;

		if (ident == NULL)
		{
			fprintf(stderr, "%s: could not quote channel \"%s\": %s",
					progname, channels[i], PQerrorMessage(conn));
			finish(1);
		}
		sql = malloc(strlen(ident) + 8);
		if (sql == NULL)
		{
			fprintf(stderr, "%s: out of memory\n", progname);
			finish(1);
		}
		sprintf(sql, "LISTEN %s", ident);
		PQfreemem(ident);
		res = PQexec(conn, sql);
		free(sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			fail_result("LISTEN", res);
		PQclear(res);
	}
}

/* Catch up from seq "from" with tego.events_since, in pages. */
static void
catch_up(int64_t from, int nchannels)
{
	/* "SELECT ... ARRAY[$2::text,$3::text,...] ..." */
	size_t		cap = 256 + (size_t) nchannels * 24;
	char	   *sql = malloc(cap);
	const char **params = malloc(sizeof(char *) * (size_t) (nchannels + 1));
	char		afterbuf[32];
	size_t		len;
	int			i;
	int64_t		after = from;

	if (sql == NULL || params == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		finish(1);
	}
	len = (size_t) snprintf(sql, cap,
							"SELECT seq, topic, event, key, payload::text "
							"FROM tego.events_since($1::bigint, ARRAY[");
	for (i = 0; i < nchannels; i++)
		len += (size_t) snprintf(sql + len, cap - len, "%s$%d::text",
								 i > 0 ? "," : "", i + 2);
	snprintf(sql + len, cap - len, "]::text[], %d)", PAGE_SIZE);
	for (i = 0; i < nchannels; i++)
		params[i + 1] = channels[i];

	for (;;)
	{
		PGresult   *res;
		int			ntuples,
					row;

		snprintf(afterbuf, sizeof(afterbuf), "%" PRId64, after);
		params[0] = afterbuf;
		res = PQexecParams(conn, sql, nchannels + 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			free(sql);
			free(params);
			fail_result("tego.events_since", res);
		}
		ntuples = PQntuples(res);
		for (row = 0; row < ntuples; row++)
		{
			const char *v = PQgetvalue(res, row, 0);
			int64_t		seq;

			if (!parse_seq_text(v, v + strlen(v), &seq))
			{
				fprintf(stderr, "%s: tego.events_since returned a bad seq \"%s\"\n",
						progname, v);
				PQclear(res);
				free(sql);
				free(params);
				finish(1);
			}
			if (seq <= after)
			{
				fprintf(stderr, "%s: tego.events_since returned seq %" PRId64
						" not after %" PRId64 "\n", progname, seq, after);
				PQclear(res);
				free(sql);
				free(params);
				finish(1);
			}
			after = seq;
			if (!have_last || seq > last_seq)
				print_row(res, row, seq);
			if (count_reached())
				break;
		}
		PQclear(res);
		if (ntuples < PAGE_SIZE || got_signal || count_reached())
			break;
	}
	free(sql);
	free(params);
}

/* Parse an integer option value within [min, max] or exit 2. */
static long long
parse_int_arg(const char *opt, const char *val, long long min, long long max)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(val, &end, 10);
	if (errno != 0 || end == val || *end != '\0' || v < min || v > max)
	{
		fprintf(stderr, "%s: invalid value \"%s\" for %s\n\n", progname, val, opt);
		usage(stderr);
		free(channels);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	const char *conninfo = NULL;
	int			nchannels = 0;
	int			have_from = 0;
	int64_t		from = 0;
	double		timeout = -1;
	double		last_event_at;
	int			i;
	const char *keywords[3] = {"dbname", "fallback_application_name", NULL};
	const char *values[3];
	struct sigaction sa;

	channels = calloc((size_t) argc, sizeof(char *));
	if (channels == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		return 1;
	}

	for (i = 1; i < argc; i++)
	{
		const char *arg = argv[i];
		const char *val = NULL;
		const char *eq;
		char		name[64];

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
		{
			usage(stdout);
			finish(0);
		}
		if (strcmp(arg, "--quiet-payload") == 0)
		{
			quiet_payload = 1;
			continue;
		}
		/* options taking a value: -dX, -d X, --opt=X, --opt X */
		if (arg[0] == '-' && arg[1] != '-' && arg[1] != '\0' && arg[2] != '\0')
		{
			snprintf(name, sizeof(name), "-%c", arg[1]);
			val = arg + 2;
		}
		else if (strncmp(arg, "--", 2) == 0 && (eq = strchr(arg, '=')) != NULL)
		{
			size_t		n = (size_t) (eq - arg);

			if (n >= sizeof(name))
				n = sizeof(name) - 1;
			memcpy(name, arg, n);
			name[n] = '\0';
			val = eq + 1;
		}
		else
		{
			snprintf(name, sizeof(name), "%s", arg);
		}

		if (strcmp(name, "-d") != 0 && strcmp(name, "--dbname") != 0 &&
			strcmp(name, "-c") != 0 && strcmp(name, "--channel") != 0 &&
			strcmp(name, "--from") != 0 && strcmp(name, "--count") != 0 &&
			strcmp(name, "--timeout") != 0)
			usage_error("unknown option \"%s\"", arg);
		if (val == NULL)
		{
			if (i + 1 >= argc)
				usage_error("option %s needs a value", name);
			val = argv[++i];
		}

		if (strcmp(name, "-d") == 0 || strcmp(name, "--dbname") == 0)
			conninfo = val;
		else if (strcmp(name, "-c") == 0 || strcmp(name, "--channel") == 0)
		{
			if (val[0] == '\0')
				usage_error("%s", "empty channel name");
			channels[nchannels++] = (char *) val;
		}
		else if (strcmp(name, "--from") == 0)
		{
			from = (int64_t) parse_int_arg(name, val, 0, LLONG_MAX);
			have_from = 1;
		}
		else if (strcmp(name, "--count") == 0)
			max_count = parse_int_arg(name, val, 1, LLONG_MAX);
		else if (strcmp(name, "--timeout") == 0)
		{
			char	   *end;

			errno = 0;
			timeout = strtod(val, &end);
			if (errno != 0 || end == val || *end != '\0' || !(timeout >= 0) ||
				timeout > 1e9)
				usage_error("invalid value \"%s\" for --timeout", val);
		}
	}
	if (conninfo == NULL)
		usage_error("%s", "missing -d CONNINFO");
	if (nchannels == 0)
		usage_error("%s", "missing -c CHANNEL");

	/* signals: SIGINT/SIGTERM end the program cleanly via the self-pipe */
	if (pipe(sig_pipe) != 0 ||
		fcntl(sig_pipe[0], F_SETFL, O_NONBLOCK) != 0 ||
		fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK) != 0)
	{
		fprintf(stderr, "%s: could not create pipe: %s\n", progname, strerror(errno));
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	values[0] = conninfo;
	values[1] = progname;
	values[2] = NULL;
	conn = PQconnectdbParams(keywords, values, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s: could not connect: %s", progname,
				conn ? PQerrorMessage(conn) : "out of memory\n");
		finish(1);
	}

	/* 1. LISTEN first, so nothing committed from now on can be missed */
	listen_all(nchannels);

	/* 2. catch up; live notifications queue up in libpq meanwhile */
	if (have_from)
	{
		last_seq = from;
		have_last = 1;
		catch_up(from, nchannels);
	}
	if (got_signal || count_reached())
		finish(0);

	/* 3. live notifications, skipping what the catch-up printed */
	last_event_at = now_seconds();
	for (;;)
	{
		struct pollfd fds[2];
		long long	before = printed;
		int			wait_ms = -1;
		int			rc;

		drain_notifies();
		if (printed != before)
			last_event_at = now_seconds();
		if (got_signal || count_reached())
			break;
		if (timeout >= 0)
		{
			double		left = last_event_at + timeout - now_seconds();

			if (left <= 0)
				break;
			wait_ms = (int) ceil(left * 1000.0);
		}

		fds[0].fd = PQsocket(conn);
		fds[0].events = POLLIN;
		fds[0].revents = 0;
		fds[1].fd = sig_pipe[0];
		fds[1].events = POLLIN;
		fds[1].revents = 0;
		if (fds[0].fd < 0)
		{
			fprintf(stderr, "%s: connection lost: %s", progname, PQerrorMessage(conn));
			finish(1);
		}
		rc = poll(fds, 2, wait_ms);
		if (rc < 0)
		{
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: poll failed: %s\n", progname, strerror(errno));
			finish(1);
		}
		if (fds[0].revents != 0)
		{
			if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
			{
				fprintf(stderr, "%s: connection lost: %s", progname, PQerrorMessage(conn));
				finish(1);
			}
		}
	}
	finish(0);
	return 0;
}
