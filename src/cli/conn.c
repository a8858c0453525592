/*
 * conn.c - connecting to the server and running statements, with error
 * reports on stderr:
 *
 *     tego: error: <message> (SQLSTATE <code>)
 *     DETAIL:  <detail>
 *     HINT:  <hint>
 */
#include "tego_cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void
report_error(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: error: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* libpq messages end with a newline; print without the last one. */
static void
print_trimmed(const char *prefix, const char *msg)
{
	size_t		len = strlen(msg);

	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		len--;
	fprintf(stderr, "%s%.*s\n", prefix, (int) len, msg);
}

PGconn *
db_connect(bool report)
{
	PGconn	   *conn = db_open();

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		if (report)
			report_connect_failure(conn);
		if (conn)
			PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* The connection as libpq left it, whatever its status (NULL: no memory). */
PGconn *
db_open(void)
{
	const char *keys[8];
	const char *vals[8];
	int			n = 0;

	/* first, so that a connection string in dbname can override it */
	keys[n] = "application_name";
	vals[n++] = "tego";
	if (g_opts.host && *g_opts.host)
	{
		keys[n] = "host";
		vals[n++] = g_opts.host;
	}
	if (g_opts.port && *g_opts.port)
	{
		keys[n] = "port";
		vals[n++] = g_opts.port;
	}
	if (g_opts.user && *g_opts.user)
	{
		keys[n] = "user";
		vals[n++] = g_opts.user;
	}
	if (g_opts.dbname && *g_opts.dbname)
	{
		keys[n] = "dbname";
		vals[n++] = g_opts.dbname;
	}
	/* last: output (table widths, JSON) is computed on UTF-8 */
	keys[n] = "client_encoding";
	vals[n++] = "UTF8";
	keys[n] = NULL;
	vals[n] = NULL;

	return PQconnectdbParams(keys, vals, 1);
}

/* Where libpq tried to connect, and what it said. */
void
report_connect_failure(PGconn *conn)
{
	const char *host = conn ? PQhost(conn) : NULL;
	const char *port = conn ? PQport(conn) : NULL;

	if (host && *host)
	{
		bool		socket = (host[0] == '/' || host[0] == '@');

		fprintf(stderr, "%s: error: could not connect to the server at %s \"%s\", port %s\n",
				progname, socket ? "socket directory" : "host", host,
				(port && *port) ? port : "(default)");
	}
	else
		fprintf(stderr, "%s: error: could not connect to the server\n", progname);
	if (conn)
		print_trimmed("", PQerrorMessage(conn));
	else
		fprintf(stderr, "out of memory\n");
}

void
report_server_error(const PGresult *res)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);

	if (primary == NULL)
	{
		/* an error libpq made itself */
		fprintf(stderr, "%s: error: ", progname);
		print_trimmed("", PQresultErrorMessage(res));
		return;
	}
	if (sqlstate)
		fprintf(stderr, "%s: error: %s (SQLSTATE %s)\n", progname, primary, sqlstate);
	else
		fprintf(stderr, "%s: error: %s\n", progname, primary);
	if (detail)
		print_trimmed("DETAIL:  ", detail);
	if (hint)
		print_trimmed("HINT:  ", hint);
}

int
db_query_raw(PGconn *conn, const char *sql, int nparams,
			 const char *const *params, PGresult **res)
{
	PGresult   *r;
	ExecStatusType st;

	r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	*res = r;
	st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return EXIT_OK;
	if (PQstatus(conn) == CONNECTION_BAD)
		return EXIT_CONNECT;
	return EXIT_SERVER;
}

int
db_query(PGconn *conn, const char *sql, int nparams,
		 const char *const *params, PGresult **res)
{
	PGresult   *r;
	int			rc = db_query_raw(conn, sql, nparams, params, &r);

	if (rc == EXIT_CONNECT)
	{
		fprintf(stderr, "%s: error: the connection to the server was lost\n", progname);
		print_trimmed("", PQerrorMessage(conn));
	}
	else if (rc == EXIT_SERVER)
	{
		if (r)
			report_server_error(r);
		else
			print_trimmed("tego: error: ", PQerrorMessage(conn));
	}
	if (rc != EXIT_OK)
	{
		PQclear(r);				/* PQclear(NULL) is a no-op */
		r = NULL;
	}
	if (res)
		*res = r;
	else
		PQclear(r);
	return rc;
}
