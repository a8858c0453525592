/*
 * tego_latency.c - measure commit-to-listener latency of tego events.
 *
 * Opens N listener connections and one writer.  Each iteration the writer
 * opens a transaction that produces one notification, takes t0 from
 * CLOCK_MONOTONIC right before sending COMMIT, and then waits (poll() over
 * every listener socket and its own) until every listener has received the
 * notification and the COMMIT result is in.  Two samples per listener and
 * iteration:
 *
 *   - commit-to-listener ("ack_"): t_receive - t_ack, where t_ack is when
 *     the writer received its COMMIT result, i.e. the commit had completed
 *     (0 when the listener heard first): what the notification path adds
 *     after a commit;
 *   - end to end: t_receive - t0, which also counts the commit itself (for
 *     a durable commit, the WAL flush; a transaction that only NOTIFYs
 *     writes no WAL and does not wait for a flush).
 *
 *   --mode tego  toggles plugin "bench-lat" with tego.plugin_enable /
 *                tego.plugin_disable; listeners LISTEN on tego_plugins.
 *   --mode raw   sends pg_notify('bench_raw', <JSON of --payload-bytes>);
 *                the baseline: PostgreSQL's NOTIFY without tego.
 *   --mode wait  toggles "bench-lat" like tego mode, but the listeners do not
 *                LISTEN: each keeps a tego.wait_events(last seq) call
 *                running, as a client behind a transaction-mode pooler
 *                would; a listener receives when that call returns the
 *                event.
 *   --mode app   sets the status of app "bench-lat-app" with
 *                tego.app_status_set (no transaction of its own: the change
 *                is announced by the tego notifier worker); listeners LISTEN
 *                on tego_apps; t0 is taken right before sending the call.
 *
 * Prints one line:
 *   mode=<m> listeners=<N> iterations=<K> samples=<S> p50_us=.. p90_us=..
 *   p99_us=.. max_us=.. mean_us=.. ack_p50_us=.. ack_p90_us=.. ack_p99_us=..
 *   ack_max_us=.. ack_mean_us=..
 * (microseconds, rounded).  In tego mode the average notification payload
 * size is reported on stderr, to feed --payload-bytes of a raw run.
 *
 * Exit status: 0 on success, 1 on error, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "tego_json.h"

#define ITERATION_TIMEOUT_MS 5000
#define BENCH_PLUGIN "bench-lat"
#define BENCH_APP "bench-lat-app"
#define MAX_PAYLOAD 7999

static const char *progname = "tego_latency";

static PGconn **listeners;
static int	nlisteners;
static PGconn *writer;
static double *samples;
static double *ack_samples;
static int64_t *received_at;
static struct pollfd *fds;
static int *fd_owner;
static int *received;
static int64_t *listener_seq;
static char *raw_payload;
static int *waiting;			/* wait mode: a wait_events call is running */

static void die(void);

/* wait mode: start listener i's tego.wait_events call after its last seq */
static void
send_wait(int i)
{
	char		after[32];
	const char *params[1];

	snprintf(after, sizeof(after), "%lld", (long long) listener_seq[i]);
	params[0] = after;
	if (!PQsendQueryParams(listeners[i],
						   "SELECT seq, key FROM tego.wait_events($1::bigint,"
						   " ARRAY['tego_plugins'], '10 seconds')",
						   1, NULL, params, NULL, NULL, 0))
	{
		fprintf(stderr, "%s: could not send wait_events: %s", progname,
				PQerrorMessage(listeners[i]));
		die();
	}
	waiting[i] = 1;
}

/* Print the usage text to the given stream. */
static void
usage(FILE *out)
{
	fprintf(out,
			"Usage: %s -d CONNINFO --mode tego|wait|app|raw|raw-durable --listeners N --iterations K\n"
			"       [--warmup W] [--payload-bytes B]\n"
			"\n"
			"Measure the time from sending COMMIT to each listener receiving the\n"
			"notification.\n"
			"\n"
			"  -d, --dbname CONNINFO  libpq connection string or database name\n"
			"  --mode tego            toggle plugin \"" BENCH_PLUGIN "\" (channel tego_plugins)\n"
			"  --mode wait            toggle it too; listeners call tego.wait_events instead\n"
			"                         of LISTEN\n"
			"  --mode raw             pg_notify on channel bench_raw (baseline)\n"
			"  --mode app             tego.app_status_set of app \"" BENCH_APP "\" (channel\n"
			"                         tego_apps), t0 before the call\n"
			"  --mode raw-durable     the same, in a transaction that also updates a row\n"
			"                         of table tego_bench_latency (created if missing),\n"
			"                         so that its commit waits for the WAL flush as a\n"
			"                         tego commit does\n"
			"  --listeners N          listener connections (>= 1)\n"
			"  --iterations K         measured iterations (>= 1)\n"
			"  --warmup W             unmeasured iterations first (default 20)\n"
			"  --payload-bytes B      raw mode payload size (default 420)\n"
			"  -h, --help             show this help\n",
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
	exit(2);
}

/* Close all connections and free everything. */
static void
cleanup(void)
{
	int			i;

	if (listeners)
	{
		for (i = 0; i < nlisteners; i++)
			if (listeners[i])
				PQfinish(listeners[i]);
		free(listeners);
		listeners = NULL;
	}
	if (writer)
		PQfinish(writer);
	writer = NULL;
	free(samples);
	free(ack_samples);
	free(received_at);
	free(fds);
	free(fd_owner);
	free(received);
	free(listener_seq);
	free(waiting);
	free(raw_payload);
	samples = NULL;
	ack_samples = NULL;
	received_at = NULL;
	fds = NULL;
	fd_owner = NULL;
	received = NULL;
	listener_seq = NULL;
	waiting = NULL;
	raw_payload = NULL;
}

/* Clean up and exit 1. */
static void
die(void)
{
	cleanup();
	exit(1);
}

/* Report a failed query result (server message), free it and exit 1. */
static void
fail_result(PGconn *conn, const char *what, PGresult *res)
{
	const char *msg = res ? PQresultErrorMessage(res) : "";
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (msg == NULL || msg[0] == '\0')
		msg = PQerrorMessage(conn);
	if (msg[0] == '\0')
		msg = "unexpected result status";
	fprintf(stderr, "%s: %s failed%s%s%s: %s", progname, what,
			state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "", msg);
	if (msg[strlen(msg) - 1] != '\n')
		fputc('\n', stderr);
	PQclear(res);
	die();
}

/* Run a command that returns no rows; exit on error. */
static void
exec_command(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail_result(conn, sql, res);
	PQclear(res);
}

/* Run a query; exit on error; the caller PQclears the result. */
static PGresult *
exec_query(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_result(conn, sql, res);
	return res;
}

/* Current CLOCK_MONOTONIC time in nanoseconds. */
static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Open one connection; exit on failure. */
static PGconn *
connect_db(const char *conninfo, const char *appname)
{
	const char *keywords[3] = {"dbname", "fallback_application_name", NULL};
	const char *values[3];
	PGconn	   *conn;

	values[0] = conninfo;
	values[1] = appname;
	values[2] = NULL;
	conn = PQconnectdbParams(keywords, values, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s: could not connect: %s", progname,
				conn ? PQerrorMessage(conn) : "out of memory\n");
		if (conn)
			PQfinish(conn);
		die();
	}
	return conn;
}

/* ---- minimal JSON scanning: find a top-level member of an object ---- */


/* Integer value of top-level member "key" (a number or a quoted number). */
static int
json_int_member(const char *json, const char *key, int64_t *out)
{
	const char *s,
			   *e;
	int64_t		v = 0;

	if (!json_member(json, key, &s, &e))
		return 0;
	if (e - s >= 2 && *s == '"' && e[-1] == '"')
	{
		s++;
		e--;
	}
	if (s == e)
		return 0;
	for (; s < e; s++)
	{
		if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 1;
}

/* Does top-level member "key" hold exactly the JSON string "want"? */
static int
json_string_member_is(const char *json, const char *key, const char *want)
{
	const char *s,
			   *e;
	size_t		n = strlen(want);

	if (!json_member(json, key, &s, &e))
		return 0;
	return (size_t) (e - s) == n + 2 && s[0] == '"' && memcmp(s + 1, want, n) == 0;
}

/* ---- benchmark ---- */

/* Parse an integer option value within [min, max] or exit 2. */
static long
parse_int_arg(const char *opt, const char *val, long min, long max)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(val, &end, 10);
	if (errno != 0 || end == val || *end != '\0' || v < min || v > max)
	{
		fprintf(stderr, "%s: invalid value \"%s\" for %s\n\n", progname, val, opt);
		usage(stderr);
		exit(2);
	}
	return v;
}

/* qsort comparator for doubles. */
static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile p (0..100] of sorted values. */
static double
percentile(const double *sorted, long n, double p)
{
	long		rank = (long) ceil(p / 100.0 * (double) n);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

int
main(int argc, char **argv)
{
	const char *conninfo = NULL;
	const char *mode = NULL;
	long		nl = 0,
				iterations = 0,
				warmup = 20,
				payload_bytes = 420;
	int			tego_mode;
	int			app_mode;
	int			wait_mode;
	int64_t		base_version = 0;
	const char *channel;
	int			writer_pid;
	int			enable_next = 1;
	int64_t		base_seq = 0;
	long		it,
				total,
				nsamples = 0,
				nack = 0;
	long long	payload_size_sum = 0;
	long		payload_size_n = 0;
	int			i;
	PGresult   *res;

	for (i = 1; i < argc; i++)
	{
		const char *arg = argv[i];
		const char *val = NULL;
		const char *eq;
		char		name[64];

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
		{
			usage(stdout);
			return 0;
		}
		if (arg[0] == '-' && arg[1] == 'd' && arg[2] != '\0')
		{
			strcpy(name, "-d");
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
			snprintf(name, sizeof(name), "%s", arg);

		if (strcmp(name, "-d") != 0 && strcmp(name, "--dbname") != 0 &&
			strcmp(name, "--mode") != 0 && strcmp(name, "--listeners") != 0 &&
			strcmp(name, "--iterations") != 0 && strcmp(name, "--warmup") != 0 &&
			strcmp(name, "--payload-bytes") != 0)
			usage_error("unknown option \"%s\"", arg);
		if (val == NULL)
		{
			if (i + 1 >= argc)
				usage_error("option %s needs a value", name);
			val = argv[++i];
		}
		if (strcmp(name, "-d") == 0 || strcmp(name, "--dbname") == 0)
			conninfo = val;
		else if (strcmp(name, "--mode") == 0)
		{
			if (strcmp(val, "tego") != 0 && strcmp(val, "wait") != 0 && strcmp(val, "raw") != 0 &&
				strcmp(val, "raw-durable") != 0 && strcmp(val, "app") != 0)
				usage_error("--mode must be tego, wait, app, raw or raw-durable, not \"%s\"", val);
			mode = val;
		}
		else if (strcmp(name, "--listeners") == 0)
			nl = parse_int_arg(name, val, 1, 10000);
		else if (strcmp(name, "--iterations") == 0)
			iterations = parse_int_arg(name, val, 1, 100000000);
		else if (strcmp(name, "--warmup") == 0)
			warmup = parse_int_arg(name, val, 0, 100000000);
		else if (strcmp(name, "--payload-bytes") == 0)
			payload_bytes = parse_int_arg(name, val, 64, MAX_PAYLOAD);
	}
	if (conninfo == NULL)
		usage_error("%s", "missing -d CONNINFO");
	if (mode == NULL)
		usage_error("%s", "missing --mode tego|raw");
	if (nl == 0)
		usage_error("%s", "missing --listeners N");
	if (iterations == 0)
		usage_error("%s", "missing --iterations K");
	if ((double) nl * (double) iterations > 2e8)
		usage_error("%s", "--listeners times --iterations is too large");

	wait_mode = strcmp(mode, "wait") == 0;
	tego_mode = strcmp(mode, "tego") == 0 || wait_mode;
	app_mode = strcmp(mode, "app") == 0;
	channel = tego_mode ? "tego_plugins" : app_mode ? "tego_apps" : "bench_raw";
	nlisteners = (int) nl;

	listeners = calloc((size_t) nlisteners, sizeof(PGconn *));
	samples = malloc(sizeof(double) * (size_t) nl * (size_t) iterations);
	ack_samples = malloc(sizeof(double) * (size_t) nl * (size_t) iterations);
	received_at = calloc((size_t) nlisteners, sizeof(int64_t));
	fds = malloc(sizeof(struct pollfd) * (size_t) (nlisteners + 1));
	fd_owner = malloc(sizeof(int) * (size_t) (nlisteners + 1));
	received = malloc(sizeof(int) * (size_t) nlisteners);
	listener_seq = malloc(sizeof(int64_t) * (size_t) nlisteners);
	waiting = calloc((size_t) nlisteners, sizeof(int));
	if (!listeners || !samples || !ack_samples || !received_at || !fds ||
		!fd_owner || !received || !listener_seq || !waiting)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		die();
	}

	/* connections: listeners first, so they are all listening before any write */
	for (i = 0; i < nlisteners; i++)
	{
		char		sql[64];

		listeners[i] = connect_db(conninfo, "tego_latency listener");
		if (wait_mode)
			continue;
		snprintf(sql, sizeof(sql), "LISTEN %s", channel);
		exec_command(listeners[i], sql);
	}
	writer = connect_db(conninfo, "tego_latency writer");
	writer_pid = PQbackendPID(writer);

	if (tego_mode)
	{
		/* idempotent set-up of the benchmark plugin */
		res = exec_query(writer, "SELECT 1 FROM tego.plugins WHERE name = '" BENCH_PLUGIN "'");
		if (PQntuples(res) == 0)
		{
			PQclear(res);
			res = exec_query(writer, "SELECT tego.plugin_add('" BENCH_PLUGIN "')");
		}
		PQclear(res);
		/* start with the transition that changes the state, so every commit emits */
		res = exec_query(writer, "SELECT enabled FROM tego.plugins WHERE name = '" BENCH_PLUGIN "'");
		if (PQntuples(res) != 1)
		{
			fprintf(stderr, "%s: plugin \"%s\" not found after tego.plugin_add\n",
					progname, BENCH_PLUGIN);
			PQclear(res);
			die();
		}
		enable_next = strcmp(PQgetvalue(res, 0, 0), "t") != 0;
		PQclear(res);
		/* notifications up to here (set-up, other sessions) are not ours */
		res = exec_query(writer, "SELECT tego.event_seq()");
		if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
			base_seq = 0;
		else
			base_seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	else if (app_mode)
	{
		res = exec_query(writer, "SELECT coalesce((SELECT version FROM tego.apps"
						 " WHERE app = '" BENCH_APP "'), 0)");
		base_version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	else
	{
		if (strcmp(mode, "raw-durable") == 0)
		{
			exec_command(writer, "SET client_min_messages = warning");
			exec_command(writer, "CREATE TABLE IF NOT EXISTS tego_bench_latency"
						 " (id int PRIMARY KEY, enabled boolean NOT NULL)");
			exec_command(writer, "INSERT INTO tego_bench_latency VALUES (1, false)"
						 " ON CONFLICT DO NOTHING");
		}
		raw_payload = malloc((size_t) payload_bytes + 1);
		if (raw_payload == NULL)
		{
			fprintf(stderr, "%s: out of memory\n", progname);
			die();
		}
	}
	for (i = 0; i < nlisteners; i++)
		listener_seq[i] = base_seq;

	total = warmup + iterations;
	for (it = 0; it < total; it++)
	{
		int64_t		t0,
					t_ack = 0,
					deadline;
		int			pending = nlisteners;
		int			writer_done = 0;
		int			measured = it >= warmup;

		if (wait_mode)
		{
			/* every listener has a wait running before the change */
			for (i = 0; i < nlisteners; i++)
			{
				PGresult   *r;

				while (waiting[i] && (r = PQgetResult(listeners[i])) != NULL)
					PQclear(r);
				send_wait(i);
			}
		}
		if (!app_mode)
			exec_command(writer, "BEGIN");
		if (app_mode)
			;					/* the call itself is what is measured */
		else if (tego_mode)
		{
			res = exec_query(writer, enable_next
							 ? "SELECT tego.plugin_enable('" BENCH_PLUGIN "')"
							 : "SELECT tego.plugin_disable('" BENCH_PLUGIN "')");
			PQclear(res);
			enable_next = !enable_next;
		}
		else
		{
			const char *params[1];
			int			len;

			len = snprintf(raw_payload, (size_t) payload_bytes + 1,
						   "{\"bench\":\"raw\",\"pid\":%d,\"i\":%ld,\"pad\":\"",
						   writer_pid, it);
			while (len < payload_bytes - 2)
				raw_payload[len++] = 'x';
			raw_payload[len++] = '"';
			raw_payload[len++] = '}';
			raw_payload[len] = '\0';
			params[0] = raw_payload;
			if (strcmp(mode, "raw-durable") == 0)
				exec_command(writer, "UPDATE tego_bench_latency SET enabled = NOT enabled WHERE id = 1");
			res = PQexecParams(writer, "SELECT pg_notify('bench_raw', $1)",
							   1, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_TUPLES_OK)
				fail_result(writer, "pg_notify", res);
			PQclear(res);
		}
		memset(received, 0, sizeof(int) * (size_t) nlisteners);

		t0 = now_ns();
		if (app_mode)
		{
			char		sql[160];

			snprintf(sql, sizeof(sql),
					 "SELECT tego.app_status_set('" BENCH_APP "', 'running', 'i=%ld')", it);
			if (!PQsendQuery(writer, sql))
			{
				fprintf(stderr, "%s: could not send app_status_set: %s", progname,
						PQerrorMessage(writer));
				die();
			}
		}
		else if (!PQsendQuery(writer, "COMMIT"))
		{
			fprintf(stderr, "%s: could not send COMMIT: %s", progname, PQerrorMessage(writer));
			die();
		}
		deadline = t0 + (int64_t) ITERATION_TIMEOUT_MS * 1000000;

		while (pending > 0 || !writer_done)
		{
			int			nfds = 0;
			int			rc;
			int64_t		now,
						left;
			int			k;

			for (i = 0; i < nlisteners; i++)
			{
				if (received[i])
					continue;
				fds[nfds].fd = PQsocket(listeners[i]);
				fds[nfds].events = POLLIN;
				fds[nfds].revents = 0;
				fd_owner[nfds++] = i;
			}
			if (!writer_done)
			{
				fds[nfds].fd = PQsocket(writer);
				fds[nfds].events = POLLIN;
				fds[nfds].revents = 0;
				fd_owner[nfds++] = -1;
			}
			left = deadline - now_ns();
			if (left <= 0)
				rc = 0;
			else
				rc = poll(fds, (nfds_t) nfds, (int) ((left + 999999) / 1000000));
			if (rc < 0)
			{
				if (errno == EINTR)
					continue;
				fprintf(stderr, "%s: poll failed: %s\n", progname, strerror(errno));
				die();
			}
			if (rc == 0)
			{
				if (now_ns() < deadline)
					continue;
				fprintf(stderr, "%s: iteration %ld timed out after %d ms: "
						"%d of %d listeners got no notification%s\n",
						progname, it, ITERATION_TIMEOUT_MS, pending, nlisteners,
						writer_done ? "" : ", COMMIT did not complete");
				die();
			}
			now = now_ns();

			for (k = 0; k < nfds; k++)
			{
				PGconn	   *conn;
				PGnotify   *n;

				if (fds[k].revents == 0)
					continue;
				conn = fd_owner[k] < 0 ? writer : listeners[fd_owner[k]];
				if (!PQconsumeInput(conn))
				{
					fprintf(stderr, "%s: connection lost: %s", progname, PQerrorMessage(conn));
					die();
				}
				if (fd_owner[k] < 0)
				{
					/* the writer: collect the COMMIT result */
					while (!PQisBusy(writer))
					{
						PGresult   *r = PQgetResult(writer);

						if (r == NULL)
						{
							writer_done = 1;
							t_ack = now;
							break;
						}
						if (app_mode)
						{
							if (PQresultStatus(r) != PGRES_TUPLES_OK)
								fail_result(writer, "app_status_set", r);
							PQclear(r);
							continue;
						}
						if (PQresultStatus(r) != PGRES_COMMAND_OK)
							fail_result(writer, "COMMIT", r);
						if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
						{
							fprintf(stderr, "%s: COMMIT returned \"%s\"\n", progname,
									PQcmdStatus(r));
							PQclear(r);
							die();
						}
						PQclear(r);
					}
					/* notifications to the writer itself are not expected; drop them */
					while ((n = PQnotifies(writer)) != NULL)
						PQfreemem(n);
					continue;
				}

				i = fd_owner[k];
				if (wait_mode)
				{
					int			ours = 0;

					while (!PQisBusy(conn))
					{
						PGresult   *r = PQgetResult(conn);
						int			row;

						if (r == NULL)
						{
							waiting[i] = 0;
							break;
						}
						if (PQresultStatus(r) != PGRES_TUPLES_OK)
							fail_result(conn, "wait_events", r);
						for (row = 0; row < PQntuples(r); row++)
						{
							int64_t		seq = strtoll(PQgetvalue(r, row, 0), NULL, 10);

							if (seq > listener_seq[i])
							{
								listener_seq[i] = seq;
								if (strcmp(PQgetvalue(r, row, 1), BENCH_PLUGIN) == 0)
									ours = 1;
							}
						}
						PQclear(r);
					}
					if (ours && !received[i])
					{
						received[i] = 1;
						received_at[i] = now;
						pending--;
						if (measured)
							samples[nsamples++] = (double) (now - t0) / 1000.0;
					}
					/* returned without our event (timeout, other events): wait again */
					if (!received[i] && !waiting[i])
						send_wait(i);
					continue;
				}
				while ((n = PQnotifies(conn)) != NULL)
				{
					int			ours = 0;

					if (strcmp(n->relname, channel) != 0)
						ours = 0;	/* another channel: ignore */
					else if (app_mode)
					{
						const char *vs,
								   *ve;
						int64_t		version;

						if (json_string_member_is(n->extra, "key", BENCH_APP) &&
							json_member(n->extra, "payload", &vs, &ve))
						{
							char	   *inner = strndup(vs, (size_t) (ve - vs));

							if (inner && json_int_member(inner, "version", &version) &&
								version == base_version + it + 1)
								ours = 1;
							free(inner);
						}
					}
					else if (tego_mode)
					{
						int64_t		seq;

						if (json_int_member(n->extra, "seq", &seq) &&
							seq > listener_seq[i] &&
							json_string_member_is(n->extra, "key", BENCH_PLUGIN))
						{
							listener_seq[i] = seq;
							ours = 1;
							payload_size_sum += (long long) strlen(n->extra);
							payload_size_n++;
						}
					}
					else
					{
						int64_t		pid,
									iter;

						if (json_int_member(n->extra, "pid", &pid) &&
							json_int_member(n->extra, "i", &iter) &&
							pid == writer_pid && iter == it)
							ours = 1;
					}
					if (ours && !received[i])
					{
						received[i] = 1;
						received_at[i] = now;
						pending--;
						if (measured)
							samples[nsamples++] = (double) (now - t0) / 1000.0;
					}
					PQfreemem(n);
				}
			}
		}

		/*
		 * Commit-to-listener: from the moment the writer learned that its
		 * COMMIT completed to the listener's receipt (0 when the listener
		 * was first).
		 */
		if (measured)
			for (i = 0; i < nlisteners; i++)
				ack_samples[nack++] = received_at[i] > t_ack ?
					(double) (received_at[i] - t_ack) / 1000.0 : 0.0;
	}

	/* statistics */
	{
		double		sum = 0;
		long		k;

		qsort(samples, (size_t) nsamples, sizeof(double), cmp_double);
		for (k = 0; k < nsamples; k++)
			sum += samples[k];
		double		ack_sum = 0;

		qsort(ack_samples, (size_t) nack, sizeof(double), cmp_double);
		for (k = 0; k < nack; k++)
			ack_sum += ack_samples[k];
		printf("mode=%s listeners=%d iterations=%ld samples=%ld "
			   "p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f mean_us=%.0f "
			   "ack_p50_us=%.0f ack_p90_us=%.0f ack_p99_us=%.0f ack_max_us=%.0f ack_mean_us=%.0f\n",
			   mode, nlisteners, iterations, nsamples,
			   percentile(samples, nsamples, 50), percentile(samples, nsamples, 90),
			   percentile(samples, nsamples, 99), samples[nsamples - 1],
			   sum / (double) nsamples,
			   percentile(ack_samples, nack, 50), percentile(ack_samples, nack, 90),
			   percentile(ack_samples, nack, 99), ack_samples[nack - 1],
			   ack_sum / (double) nack);
	}
	if (tego_mode && payload_size_n > 0)
		fprintf(stderr, "%s: average tego notification payload %lld bytes\n",
				progname, payload_size_sum / payload_size_n);
	if (fflush(stdout) != 0)
	{
		fprintf(stderr, "%s: could not write output: %s\n", progname, strerror(errno));
		die();
	}
	cleanup();
	return 0;
}
