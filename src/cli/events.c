/*
 * events.c - "tego events tail": print the events of some topics as they
 * are committed, each once, in seq order, across lost connections.
 *
 * NOTIFY cannot be restricted in PostgreSQL: any role that can connect may
 * send a notification on tego's channels, with any payload.  So a
 * notification is only a hint that something may have changed, and what is
 * printed always comes from what the sender cannot forge:
 *
 *   1. LISTEN on every topic;
 *   2. read the log after the last printed seq with tego.events_since(), in
 *      pages, printing each row and remembering its seq (the position moves
 *      only from the log);
 *   3. with tego_apps among the topics: read tego.apps and print each app
 *      whose row changed since the last read (app status lives in shared
 *      memory, not in the log); the first read only sets the baseline;
 *   4. wait on the socket (poll(), with a self-pipe for signals).  A
 *      notification on tego_apps means: read tego.apps again (3); any other
 *      one, unless it announces a seq already printed: read the log (2).
 *      A notification's payload is never printed, so a forged one costs a
 *      read and prints nothing.
 *
 * When the connection is lost: reconnect with a growing delay (100 ms,
 * doubled up to 2 s), then 1, 2 and 3 from the last printed seq and the
 * last apps read.  Anything committed meanwhile is in the log, so nothing
 * is lost; what was printed is never printed again.
 */
#define _POSIX_C_SOURCE 200809L

#include "tego_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGE_SIZE        1000
#define PAGE_SIZE_TEXT   "1000"
#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   2000

/* what the steps return besides EXIT_* codes */
#define TAIL_DONE  (-1)			/* count reached, timeout or signal */

#define APPS_TOPIC "tego_apps"

static const char *const default_topics[] = {
	"tego_plugins", "tego_jobs", "tego_leases", APPS_TOPIC
};

/*
 * The row of an app as tego.apps last showed it, in the form the tego
 * notifier announces (a JSON object; updated_at as text).
 */
#define APPS_QUERY \
	"SELECT app, pg_catalog.jsonb_build_object(" \
	"'app', app, 'status', status, 'previous_status', previous_status, " \
	"'command', command, 'maintaining_status', maintaining_status, " \
	"'message', message, 'error', error, 'version', version, 'pid', pid, " \
	"'updated_at', updated_at::pg_catalog.text)::pg_catalog.text " \
	"FROM tego.apps ORDER BY app"

typedef struct AppSeen
{
	char	   *name;
	char	   *row;			/* the JSON text of its row */
	bool		present;		/* in the current read */
} AppSeen;

static struct
{
	PGconn	   *conn;
	char	  **topics;
	int			ntopics;
	char	   *topics_literal; /* {"a","b"} for events_since */
	int64_t		last;			/* last printed seq */
	long long	printed;
	long long	count;			/* 0: no limit */
	double		deadline;		/* monotonic seconds; 0: none */
	bool		apps;			/* following tego_apps (from tego.apps) */
	bool		apps_asked;		/* tego_apps was named with --topic */
	bool		apps_read;		/* the baseline has been read */
	AppSeen    *seen;			/* the apps of the last read */
	int			nseen;
	int			seen_cap;
} tail;

static int	sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t got_signal;

static void
on_signal(int signo)
{
	int			save = errno;
	ssize_t		r;

	(void) signo;
	got_signal = 1;
	r = write(sig_pipe[1], "x", 1);
	(void) r;
	errno = save;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static bool
tail_done(void)
{
	return got_signal ||
		(tail.count > 0 && tail.printed >= tail.count) ||
		(tail.deadline > 0 && now_seconds() >= tail.deadline);
}

/* Milliseconds poll() may wait: at most max_ms (-1: no limit) and the deadline. */
static int
wait_ms(int max_ms)
{
	double		left;
	int			ms;

	if (tail.deadline <= 0)
		return max_ms;
	left = tail.deadline - now_seconds();
	if (left <= 0)
		return 0;
	ms = (int) (left * 1000.0) + 1;
	if (max_ms >= 0 && ms > max_ms)
		ms = max_ms;
	return ms;
}

static void
drain_sig_pipe(void)
{
	char		buf[64];

	while (read(sig_pipe[0], buf, sizeof(buf)) > 0)
		;
}

/* ---- printing ----------------------------------------------------------- */

/* One event; seq NULL for events that are not in the log (tego_apps). */
static void
print_event(const char *seq, const char *topic, const char *event,
			const char *key, const char *payload, size_t payload_len,
			const char *committed_at)
{
	if (g_opts.json)
	{
		fputs("{\"seq\": ", stdout);
		fputs(seq ? seq : "null", stdout);
		fputs(", \"topic\": ", stdout);
		json_write_value(stdout, topic, 0);
		fputs(", \"event\": ", stdout);
		json_write_value(stdout, event, 0);
		fputs(", \"key\": ", stdout);
		json_write_value(stdout, key, 0);
		fputs(", \"payload\": ", stdout);
		fwrite(payload, 1, payload_len, stdout);
		fputs(", \"committed_at\": ", stdout);
		json_write_value(stdout, committed_at, 0);
		fputs("}\n", stdout);
	}
	else
	{
		printf("%s %s %s %s ", seq ? seq : "-", topic ? topic : "-",
			   event ? event : "-", key ? key : "-");
		fwrite(payload, 1, payload_len, stdout);
		fputc('\n', stdout);
	}
	tail.printed++;
}

/* ---- database steps ------------------------------------------------------ */

static void
report_lost(void)
{
	const char *msg = tail.conn ? PQerrorMessage(tail.conn) : "";
	const char *nl = strchr(msg, '\n');
	int			len = nl ? (int) (nl - msg) : (int) strlen(msg);

	fprintf(stderr, "%s: connection lost%s%.*s%s; reconnecting, to resume after seq %lld\n",
			progname, len ? " (" : "", len, msg, len ? ")" : "", (long long) tail.last);
}

/* LISTEN on every topic, in one round trip. */
static int
listen_all(void)
{
	size_t		cap = 64;
	char	   *sql = xmalloc(cap);
	size_t		len = 0;
	int			i;
	PGresult   *res;
	int			rc;

	sql[0] = '\0';
	for (i = 0; i < tail.ntopics; i++)
	{
		char	   *ident = PQescapeIdentifier(tail.conn, tail.topics[i],
											   strlen(tail.topics[i]));
		size_t		need;

		if (ident == NULL)
		{
			free(sql);
			return PQstatus(tail.conn) == CONNECTION_BAD ? EXIT_CONNECT : EXIT_SERVER;
		}
		need = len + strlen(ident) + 16;
		if (need > cap)
		{
			cap = need * 2;
			sql = xrealloc(sql, cap);
		}
		len += (size_t) sprintf(sql + len, "LISTEN %s;", ident);
		PQfreemem(ident);
	}
	res = PQexec(tail.conn, sql);
	free(sql);
	if (res && PQresultStatus(res) == PGRES_COMMAND_OK)
		rc = EXIT_OK;
	else if (PQstatus(tail.conn) == CONNECTION_BAD)
		rc = EXIT_CONNECT;
	else
	{
		rc = EXIT_SERVER;
		if (res)
			report_server_error(res);
		else
			report_error("%s", PQerrorMessage(tail.conn));
	}
	PQclear(res);
	return rc;
}

/*
 * Print what the log has after tail.last, page by page.  Returns EXIT_OK,
 * TAIL_DONE (count reached), EXIT_CONNECT (lost; not reported) or
 * EXIT_SERVER (reported).
 */
static int
catch_up(void)
{
	for (;;)
	{
		char		after[32];
		const char *params[2];
		PGresult   *res;
		int			rc;
		int			n,
					i;

		snprintf(after, sizeof(after), "%lld", (long long) tail.last);
		params[0] = after;
		params[1] = tail.topics_literal;
		rc = db_query_raw(tail.conn,
						  "SELECT seq, topic, event, key, payload, committed_at "
						  "FROM tego.events_since($1::bigint, $2::text[], " PAGE_SIZE_TEXT ")",
						  2, params, &res);
		if (rc == EXIT_SERVER)
		{
			const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

			if (res)
				report_server_error(res);
			else
				report_error("%s", PQerrorMessage(tail.conn));
			if (state && strcmp(state, "TG001") == 0)
				fprintf(stderr,
						"%s: cannot resume after seq %lld: read the current state again "
						"(tego pm list), then follow with --from SEQ, SEQ from "
						"tego.event_seq()\n",
						progname, (long long) tail.last);
		}
		if (rc != EXIT_OK)
		{
			PQclear(res);
			return rc;
		}
		n = PQntuples(res);
		for (i = 0; i < n; i++)
		{
			int64_t		seq;

			if (tail.count > 0 && tail.printed >= tail.count)
				break;
			if (!parse_int64(PQgetvalue(res, i, 0), &seq) || seq <= tail.last)
				continue;
			print_event(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
						PQgetvalue(res, i, 2),
						PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3),
						PQgetvalue(res, i, 4), strlen(PQgetvalue(res, i, 4)),
						PQgetvalue(res, i, 5));
			tail.last = seq;
		}
		PQclear(res);
		fflush(stdout);
		if (tail.count > 0 && tail.printed >= tail.count)
			return TAIL_DONE;
		if (n < PAGE_SIZE)
			return EXIT_OK;
	}
}

/* The entry of app name in tail.seen, or NULL. */
static AppSeen *
find_seen(const char *name)
{
	int			i;

	for (i = 0; i < tail.nseen; i++)
		if (strcmp(tail.seen[i].name, name) == 0)
			return &tail.seen[i];
	return NULL;
}

/* Print one app line, unless --count has been reached. */
static void
print_app(const char *event, const char *name, const char *row)
{
	if (tail.count > 0 && tail.printed >= tail.count)
		return;
	print_event(NULL, APPS_TOPIC, event, name, row, strlen(row), NULL);
}

/*
 * Read tego.apps and print what changed since the last read: an app whose
 * row is new or different as app-status-changed, an app that is no longer
 * there as app-forgotten (with its last row).  The first read only sets the
 * baseline.  Returns EXIT_OK, TAIL_DONE (count reached), EXIT_CONNECT
 * (lost; not reported) or EXIT_SERVER (with *res_out set when asked, else
 * reported).
 */
static int
read_apps(PGresult **res_out)
{
	PGresult   *res;
	int			rc;
	int			n,
				i;
	bool		print = tail.apps_read;

	if (res_out)
		*res_out = NULL;
	rc = db_query_raw(tail.conn, APPS_QUERY, 0, NULL, &res);
	if (rc == EXIT_SERVER && res_out)
	{
		*res_out = res;
		return rc;
	}
	if (rc == EXIT_SERVER)
	{
		if (res)
			report_server_error(res);
		else
			report_error("%s", PQerrorMessage(tail.conn));
	}
	if (rc != EXIT_OK)
	{
		PQclear(res);
		return rc;
	}
	for (i = 0; i < tail.nseen; i++)
		tail.seen[i].present = false;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
	{
		const char *name = PQgetvalue(res, i, 0);
		const char *row = PQgetvalue(res, i, 1);
		AppSeen    *a = find_seen(name);

		if (a == NULL)
		{
			if (tail.nseen == tail.seen_cap)
			{
				tail.seen_cap = tail.seen_cap ? tail.seen_cap * 2 : 16;
				tail.seen = xrealloc(tail.seen, sizeof(AppSeen) * tail.seen_cap);
			}
			a = &tail.seen[tail.nseen++];
			a->name = xstrdup(name);
			a->row = NULL;
		}
		a->present = true;
		if (a->row != NULL && strcmp(a->row, row) == 0)
			continue;
		if (print)
			print_app("app-status-changed", name, row);
		free(a->row);
		a->row = xstrdup(row);
	}
	PQclear(res);
	/* apps gone since the last read: printed, then dropped */
	for (i = 0; i < tail.nseen;)
	{
		AppSeen    *a = &tail.seen[i];

		if (a->present)
		{
			i++;
			continue;
		}
		if (print)
			print_app("app-forgotten", a->name, a->row);
		free(a->name);
		free(a->row);
		tail.seen[i] = tail.seen[--tail.nseen];
	}
	tail.apps_read = true;
	fflush(stdout);
	if (tail.count > 0 && tail.printed >= tail.count)
		return TAIL_DONE;
	return EXIT_OK;
}

/* Forget the apps read (at exit). */
static void
free_seen(void)
{
	int			i;

	for (i = 0; i < tail.nseen; i++)
	{
		free(tail.seen[i].name);
		free(tail.seen[i].row);
	}
	free(tail.seen);
	tail.seen = NULL;
	tail.nseen = tail.seen_cap = 0;
}

/* The seq a notification announces: 1 a number, 0 null, -1 unreadable. */
static int
notification_seq(const PGnotify *n, int64_t *seq)
{
	const char *s,
			   *e;
	char		num[32];
	size_t		len;

	if (!json_get_member(n->extra, "seq", &s, &e))
		return -1;
	len = (size_t) (e - s);
	if (len == 4 && strncmp(s, "null", 4) == 0)
		return 0;
	if (len >= sizeof(num))
		return -1;
	memcpy(num, s, len);
	num[len] = '\0';
	return parse_int64(num, seq) ? 1 : -1;
}

/*
 * Handle the notifications libpq has read.  Each is a hint only: one on
 * tego_apps makes it read tego.apps; any other one makes it read the log,
 * unless it announces a seq already printed (a forged one can then only
 * cost a read).  Nothing of a payload is printed.  A query may bring more
 * notifications: loop until none is queued.
 */
static int
handle_notifications(void)
{
	for (;;)
	{
		PGnotify   *n;
		bool		behind = false;
		bool		apps_changed = false;
		int			rc;

		while ((n = PQnotifies(tail.conn)) != NULL)
		{
			int64_t		seq = 0;

			if (strcmp(n->relname, APPS_TOPIC) == 0)
				apps_changed = tail.apps;
			else if (notification_seq(n, &seq) != 1 || seq > tail.last)
				behind = true;
			PQfreemem(n);
		}
		if (tail.count > 0 && tail.printed >= tail.count)
			return TAIL_DONE;
		if (!behind && !apps_changed)
			return EXIT_OK;
		if (behind)
		{
			rc = catch_up();
			if (rc != EXIT_OK)
				return rc;
		}
		if (apps_changed)
		{
			rc = read_apps(NULL);
			if (rc != EXIT_OK)
				return rc;
		}
	}
}

/*
 * Connect again until it works (LISTEN and catch-up included), a server
 * error, or the end (signal, deadline).
 */
static int
reconnect(void)
{
	int			delay = BACKOFF_MIN_MS;

	for (;;)
	{
		struct pollfd pfd;
		int			rc;

		if (tail_done())
			return TAIL_DONE;
		tail.conn = db_open();
		if (tail.conn && PQstatus(tail.conn) == CONNECTION_OK)
		{
			rc = listen_all();
			if (rc == EXIT_OK)
			{
				fprintf(stderr, "%s: reconnected; resuming after seq %lld\n",
						progname, (long long) tail.last);
				rc = catch_up();
				/* what changed in tego.apps while it was away */
				if (rc == EXIT_OK && tail.apps)
					rc = read_apps(NULL);
			}
			if (rc != EXIT_CONNECT)
				return rc;
			report_lost();
		}
		else
		{
			const char *msg = tail.conn ? PQerrorMessage(tail.conn) : "out of memory";
			const char *nl = strchr(msg, '\n');

			fprintf(stderr, "%s: could not reconnect: %.*s; retrying in %d ms\n",
					progname, nl ? (int) (nl - msg) : (int) strlen(msg), msg, delay);
		}
		if (tail.conn)
			PQfinish(tail.conn);
		tail.conn = NULL;

		pfd.fd = sig_pipe[0];
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, wait_ms(delay)) > 0)
			drain_sig_pipe();
		delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
	}
}

/* The connection is lost: say so, drop it, and reconnect (see reconnect()). */
static int
resume_after_loss(void)
{
	report_lost();
	PQfinish(tail.conn);
	tail.conn = NULL;
	return reconnect();
}

/*
 * Wait for the socket, a signal or the deadline; read what came and handle
 * it.  Returns EXIT_OK, TAIL_DONE, EXIT_CONNECT or EXIT_SERVER.
 */
static int
wait_and_read(void)
{
	struct pollfd pfd[2];
	int			sock = PQsocket(tail.conn);
	int			n;

	if (sock < 0)
		return EXIT_CONNECT;
	pfd[0].fd = sock;
	pfd[0].events = POLLIN;
	pfd[0].revents = 0;
	pfd[1].fd = sig_pipe[0];
	pfd[1].events = POLLIN;
	pfd[1].revents = 0;
	n = poll(pfd, 2, wait_ms(-1));
	if (n < 0)
	{
		if (errno == EINTR)
			return EXIT_OK;
		report_error("poll() failed: %s", strerror(errno));
		return EXIT_SERVER;
	}
	if (pfd[1].revents)
		drain_sig_pipe();
	if (pfd[0].revents == 0)
		return EXIT_OK;			/* a signal or the deadline: the caller checks */
	if (!PQconsumeInput(tail.conn))
		return EXIT_CONNECT;
	return handle_notifications();
}

/* The loop: wait, read, print; reconnect when the connection is lost. */
static int
follow(void)
{
	for (;;)
	{
		int			rc;

		if (tail_done())
			return EXIT_OK;
		/* notifications read during the last query wait in libpq, not on the socket */
		rc = handle_notifications();
		if (rc == EXIT_OK && !tail_done())
			rc = wait_and_read();
		if (rc == EXIT_OK && PQstatus(tail.conn) == CONNECTION_BAD)
			rc = EXIT_CONNECT;
		if (rc == EXIT_CONNECT)
		{
			rc = resume_after_loss();
		}
		if (rc == TAIL_DONE)
			return EXIT_OK;
		if (rc != EXIT_OK)
			return rc;
	}
}

static int
setup_signals(void)
{
	struct sigaction sa;
	int			i;

	if (pipe(sig_pipe) != 0)
	{
		report_error("could not create a pipe: %s", strerror(errno));
		return EXIT_SERVER;
	}
	for (i = 0; i < 2; i++)
	{
		fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
		fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return EXIT_OK;
}

/*
 * The first read of tego.apps, after LISTEN: the baseline later reads are
 * compared with.  When the role cannot read tego.apps (no grant, or tego is
 * not preloaded), a tego_apps named with --topic is an error; one of the
 * default topics is left out, with a note on stderr.
 */
static int
start_apps(void)
{
	PGresult   *res;
	int			rc = read_apps(&res);

	if (rc == EXIT_SERVER && res && !tail.apps_asked)
	{
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		fprintf(stderr, "%s: not following " APPS_TOPIC ": could not read tego.apps: %s (SQLSTATE %s)\n",
				progname, primary ? primary : "?", state ? state : "?");
		tail.apps = false;
		rc = EXIT_OK;
	}
	else if (rc == EXIT_SERVER)
	{
		if (res)
			report_server_error(res);
		else
			report_error("%s", PQerrorMessage(tail.conn));
		fprintf(stderr, "%s: " APPS_TOPIC " is followed from tego.apps, which this role must be able to read\n",
				progname);
	}
	PQclear(res);
	return rc == TAIL_DONE ? EXIT_OK : rc;
}

enum
{
	OPT_FROM = 1,
	OPT_TOPIC,
	OPT_COUNT,
	OPT_TIMEOUT
};

static int
events_tail(int argc, char **argv)
{
	static const OptSpec specs[] = {
		{"from", 0, true, OPT_FROM},
		{"topic", 't', true, OPT_TOPIC},
		{"count", 'n', true, OPT_COUNT},
		{"timeout", 0, true, OPT_TIMEOUT},
		{"help", '?', false, OPT_HELP},
		{"json", 0, false, OPT_JSON},
		{NULL, 0, false, 0}
	};
	ArgIter		it;
	int			opt;
	const char *value;
	bool		have_from = false;
	bool		defaulted;
	int64_t		from = 0;
	int64_t		count = 0;
	double		timeout = 0;
	int			rc;
	int			i;

	tail.topics = xmalloc(sizeof(char *) * (argc + 4));
	tail.ntopics = 0;
	arg_init(&it, argc, argv, false);
	while ((opt = arg_next(&it, specs, &value)) != ARG_END)
	{
		char	   *end;

		switch (opt)
		{
			case OPT_HELP:
				fputs(help_events_tail, stdout);
				free(tail.topics);
				return EXIT_OK;
			case OPT_JSON:
				g_opts.json = true;
				break;
			case OPT_FROM:
				if (!parse_int64(value, &from) || from < 0)
				{
					free(tail.topics);
					return usage_error(help_events_tail,
									   "--from must be a seq (0 or more), not \"%s\"", value);
				}
				have_from = true;
				break;
			case OPT_TOPIC:
				if (*value == '\0')
				{
					free(tail.topics);
					return usage_error(help_events_tail, "--topic must not be empty");
				}
				tail.topics[tail.ntopics++] = (char *) value;
				break;
			case OPT_COUNT:
				if (!parse_int64(value, &count) || count < 1)
				{
					free(tail.topics);
					return usage_error(help_events_tail,
									   "--count must be a number of at least 1, not \"%s\"", value);
				}
				break;
			case OPT_TIMEOUT:
				errno = 0;
				timeout = strtod(value, &end);
				if (errno != 0 || end == value || *end != '\0' || !(timeout > 0) ||
					timeout > 1e9)
				{
					free(tail.topics);
					return usage_error(help_events_tail,
									   "--timeout must be a number of seconds above 0, not \"%s\"", value);
				}
				break;
			case ARG_POSITIONAL:
				free(tail.topics);
				return usage_error(help_events_tail, "unexpected argument \"%s\"", value);
			default:
				free(tail.topics);
				fprintf(stderr, "\n%s", help_events_tail);
				return EXIT_USAGE;
		}
	}
	defaulted = tail.ntopics == 0;
	if (defaulted)
		for (i = 0; i < 4; i++)
			tail.topics[tail.ntopics++] = (char *) default_topics[i];
	tail.apps = false;
	for (i = 0; i < tail.ntopics; i++)
		if (strcmp(tail.topics[i], APPS_TOPIC) == 0)
			tail.apps = true;
	tail.apps_asked = tail.apps && !defaulted;
	tail.apps_read = false;
	tail.topics_literal = pg_text_array_literal(tail.topics, tail.ntopics);
	tail.count = count;
	tail.deadline = timeout > 0 ? now_seconds() + timeout : 0;
	tail.last = from;

	rc = setup_signals();
	if (rc == EXIT_OK)
	{
		tail.conn = db_connect(true);
		if (tail.conn == NULL)
			rc = EXIT_CONNECT;
	}
	if (rc == EXIT_OK)
		rc = listen_all();
	if (rc == EXIT_OK && !have_from)
	{
		PGresult   *res;

		/* after LISTEN: what commits from here on is notified */
		rc = db_query_raw(tail.conn, "SELECT tego.event_seq()", 0, NULL, &res);
		if (rc == EXIT_OK)
			parse_int64(PQgetvalue(res, 0, 0), &tail.last);
		else if (rc == EXIT_SERVER && res)
			report_server_error(res);
		else if (rc == EXIT_SERVER)
			report_error("%s", PQerrorMessage(tail.conn));
		PQclear(res);
	}
	if (rc == EXIT_OK && tail.apps)
		rc = start_apps();
	if (rc == EXIT_OK)
	{
		rc = catch_up();
		if (rc == EXIT_CONNECT)
		{
			rc = resume_after_loss();
		}
		if (rc == TAIL_DONE)
			rc = EXIT_OK;
		else if (rc == EXIT_OK)
			rc = follow();
	}
	else if (rc == EXIT_CONNECT && tail.conn)
	{
		fprintf(stderr, "%s: error: the connection to the server was lost\n", progname);
		fputs(PQerrorMessage(tail.conn), stderr);
	}

	fflush(stdout);
	if (tail.conn)
		PQfinish(tail.conn);
	tail.conn = NULL;
	free(tail.topics_literal);
	free(tail.topics);
	free_seen();
	return rc;
}

int
cmd_events(int argc, char **argv)
{
	if (argc == 0)
		return usage_error(help_events, "events needs a subcommand");
	if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-?") == 0 ||
		strcmp(argv[0], "help") == 0)
	{
		fputs(help_events, stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[0], "tail") == 0)
		return events_tail(argc - 1, argv + 1);
	return usage_error(help_events, "unknown events subcommand \"%s\"", argv[0]);
}
