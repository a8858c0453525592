/*
 * tego_cli.h - declarations shared by the files of the tego command-line
 * tool (src/cli/): option parsing, the connection, output and the commands.
 */
#ifndef TEGO_CLI_H
#define TEGO_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

#define TEGO_CLI_VERSION "0.2.0"

/* Exit codes (documented in --help and the README). */
#define EXIT_OK       0			/* success */
#define EXIT_SERVER   1			/* the server reported an error */
#define EXIT_USAGE    2			/* unknown command or option, bad argument */
#define EXIT_CONNECT  3			/* could not connect, or connection lost */

/* Global options (main.c). */
typedef struct GlobalOptions
{
	const char *host;
	const char *port;
	const char *user;
	const char *dbname;
	bool		json;
} GlobalOptions;

extern GlobalOptions g_opts;
extern const char *progname;

/* ---- option parsing (args.c) ---------------------------------------- */

typedef struct OptSpec
{
	const char *longname;		/* without the leading "--" */
	char		shortname;		/* 0: none */
	bool		has_arg;
	int			id;				/* > 0 */
} OptSpec;

typedef struct ArgIter
{
	int			argc;
	char	  **argv;
	int			i;				/* next argument */
	bool		only_positional;	/* after "--" */
	bool		stop_at_positional; /* leave the first positional unread */
} ArgIter;

#define ARG_END         0
#define ARG_POSITIONAL  (-1)
#define ARG_ERROR       (-2)

/* Options every command accepts. */
#define OPT_HELP  1000
#define OPT_JSON  1001

void		arg_init(ArgIter *it, int argc, char **argv, bool stop_at_positional);
int			arg_next(ArgIter *it, const OptSpec *specs, const char **value);
bool		parse_int64(const char *s, int64_t *out);

/* usage error: message on stderr, then the given usage text; returns 2 */
int			usage_error(const char *usage, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* ---- connection and queries (conn.c) -------------------------------- */

/* NULL on failure (already reported when report is true). */
PGconn	   *db_connect(bool report);
PGconn	   *db_open(void);
void		report_connect_failure(PGconn *conn);

/*
 * Run one statement with text parameters.  On success returns EXIT_OK and
 * stores the result in *res (caller PQclear()s it; res may be NULL to
 * discard).  On failure reports the error on stderr and returns
 * EXIT_SERVER or EXIT_CONNECT; *res is NULL then.
 */
int			db_query(PGconn *conn, const char *sql, int nparams,
					 const char *const *params, PGresult **res);

/* Same, but quiet: the failed result is returned in *res for inspection. */
int			db_query_raw(PGconn *conn, const char *sql, int nparams,
						 const char *const *params, PGresult **res);

void		report_server_error(const PGresult *res);
void		report_error(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* ---- output (output.c) ---------------------------------------------- */

void		output_init(void);

/*
 * Print the rows of nres results that share one column layout: an aligned
 * table (only the columns named in table_cols, all when NULL) or, with
 * json, a JSON array of objects with every column.
 */
void		print_results(PGresult *const *res, int nres,
						  const char *const *table_cols, bool json);

/* One row shown as "column | value" lines (JSON: as print_results). */
void		print_record(PGresult *res, bool json);

/* JSON text of one value of the given type (NULL -> null). */
void		json_write_value(FILE *out, const char *value, Oid type);
void		json_write_string(FILE *out, const char *s);
void		json_write_string_n(FILE *out, const char *s, size_t len);

/* Build a PostgreSQL array literal {"a","b"} of the given strings (malloc). */
char	   *pg_text_array_literal(char *const *items, int n);

/* ---- tiny JSON reader (json.c) -------------------------------------- */

/* The raw text [*start, *end) of member key of the JSON object obj. */
bool		json_get_member(const char *obj, const char *key,
							const char **start, const char **end);
/* Decode a JSON string token [start, end) (quotes included); malloc'd. */
char	   *json_decode_string(const char *start, const char *end);

/* ---- commands (commands.c, events.c) -------------------------------- */

int			cmd_pm(int argc, char **argv);
int			cmd_jobs(int argc, char **argv);
int			cmd_apps(int argc, char **argv);
int			cmd_leases(int argc, char **argv);
int			cmd_status(int argc, char **argv);
int			cmd_events(int argc, char **argv);

/* Help texts (help.c). */
extern const char *const usage_main;
extern const char *const help_main;
extern const char *const help_pm;
extern const char *const help_pm_list;
extern const char *const help_pm_add;
extern const char *const help_pm_install;
extern const char *const help_pm_uninstall;
extern const char *const help_pm_enable;
extern const char *const help_pm_disable;
extern const char *const help_pm_remove;
extern const char *const help_pm_upgrade;
extern const char *const help_jobs;
extern const char *const help_jobs_list;
extern const char *const help_jobs_run;
extern const char *const help_jobs_history;
extern const char *const help_apps;
extern const char *const help_leases;
extern const char *const help_status;
extern const char *const help_events;
extern const char *const help_events_tail;

/* xmalloc and friends: exit on out of memory */
void	   *xmalloc(size_t n);
void	   *xrealloc(void *p, size_t n);
char	   *xstrdup(const char *s);

#endif							/* TEGO_CLI_H */
