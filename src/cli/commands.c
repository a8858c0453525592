/*
 * commands.c - pm, jobs, apps, leases and status: each parses its
 * options, runs its SQL with parameters (PQexecParams) and prints the rows.
 */
#include "tego_cli.h"

#include <stdlib.h>
#include <string.h>

#define COMMON_SPECS \
	{"help", '?', false, OPT_HELP}, \
	{"json", 0, false, OPT_JSON}, \
	{NULL, 0, false, 0}

/* columns of tego.plugins shown in tables (--json has them all) */
static const char *const plugin_list_cols[] = {
	"id", "name", "package_name", "version", "state", "built_in",
	"sub_view", "depends_on", "options", "revision", NULL
};

/*
 * The rows a lifecycle function returns have revision NULL (the change is
 * numbered at commit), so tables of changes leave the column out.
 */
static const char *const plugin_change_cols[] = {
	"id", "name", "package_name", "version", "state", "built_in",
	"sub_view", "depends_on", "options", NULL
};

typedef bool (*OptHandler) (int id, const char *value, void *ctx);

/*
 * Parse a command's arguments: --help (prints help, returns EXIT_OK),
 * --json, the command's own options (given to handler), positionals (into
 * *pos, malloc'd).  Returns -1 to go on, otherwise the exit code.
 */
static int
parse_command(int argc, char **argv, const OptSpec *specs, const char *help,
			  OptHandler handler, void *ctx, char ***pos, int *npos)
{
	ArgIter		it;
	int			opt;
	const char *value;

	*pos = xmalloc(sizeof(char *) * (argc + 1));
	*npos = 0;
	arg_init(&it, argc, argv, false);
	while ((opt = arg_next(&it, specs, &value)) != ARG_END)
	{
		if (opt == ARG_ERROR)
		{
			fprintf(stderr, "\n%s", help);
			return EXIT_USAGE;
		}
		if (opt == ARG_POSITIONAL)
			(*pos)[(*npos)++] = (char *) value;
		else if (opt == OPT_HELP)
		{
			fputs(help, stdout);
			return EXIT_OK;
		}
		else if (opt == OPT_JSON)
			g_opts.json = true;
		else if (!handler || !handler(opt, value, ctx))
		{
			fprintf(stderr, "\n%s", help);
			return EXIT_USAGE;
		}
	}
	return -1;
}

/*
 * Connect, run one statement, print its rows; the common shape of most
 * commands.  record: one row as column | value lines.
 */
static int
query_and_print(const char *sql, int nparams, const char *const *params,
				const char *const *table_cols, bool record)
{
	PGconn	   *conn = db_connect(true);
	PGresult   *res;
	int			rc;

	if (conn == NULL)
		return EXIT_CONNECT;
	rc = db_query(conn, sql, nparams, params, &res);
	if (rc == EXIT_OK)
	{
		if (record)
			print_record(res, g_opts.json);
		else
			print_results(&res, 1, table_cols, g_opts.json);
		PQclear(res);
	}
	PQfinish(conn);
	return rc;
}

/* ---- pm ---------------------------------------------------------------- */

static const OptSpec no_specs[] = {COMMON_SPECS};

enum
{
	OPT_ENABLED = 1,
	OPT_PACKAGE,
	OPT_VERSION,
	OPT_OPTIONS,
	OPT_DEPENDS_ON,
	OPT_BUILT_IN,
	OPT_NO_SUB_VIEW,
	OPT_FORCE,
	OPT_LIMIT
};

typedef struct PmOptions
{
	bool		enabled;
	const char *package;
	const char *version;
	const char *options;
	char	  **depends;
	int			ndepends;
	bool		built_in;
	bool		no_sub_view;
	bool		force;
	int64_t		limit;
} PmOptions;

static void
add_depends(PmOptions *o, const char *list)
{
	const char *p = list;

	while (*p)
	{
		const char *start;
		const char *end;
		char	   *item;

		while (*p == ' ' || *p == ',')
			p++;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && end[-1] == ' ')
			end--;
		if (end == start)
			continue;
		item = xmalloc((size_t) (end - start) + 1);
		memcpy(item, start, (size_t) (end - start));
		item[end - start] = '\0';
		o->depends = xrealloc(o->depends, sizeof(char *) * (o->ndepends + 1));
		o->depends[o->ndepends++] = item;
	}
}

static bool
pm_option(int id, const char *value, void *ctx)
{
	PmOptions  *o = ctx;

	switch (id)
	{
		case OPT_ENABLED:
			o->enabled = true;
			return true;
		case OPT_PACKAGE:
			o->package = value;
			return true;
		case OPT_VERSION:
			o->version = value;
			return true;
		case OPT_OPTIONS:
			o->options = value;
			return true;
		case OPT_DEPENDS_ON:
			add_depends(o, value);
			return true;
		case OPT_BUILT_IN:
			o->built_in = true;
			return true;
		case OPT_NO_SUB_VIEW:
			o->no_sub_view = true;
			return true;
		case OPT_FORCE:
			o->force = true;
			return true;
		case OPT_LIMIT:
			if (!parse_int64(value, &o->limit) || o->limit < 0)
			{
				fprintf(stderr, "%s: error: --limit must be a number of at least 0, not \"%s\"\n",
						progname, value);
				return false;
			}
			return true;
		default:
			return false;
	}
}

static void
pm_options_free(PmOptions *o)
{
	int			i;

	for (i = 0; i < o->ndepends; i++)
		free(o->depends[i]);
	free(o->depends);
}

static int
pm_list(int argc, char **argv)
{
	static const OptSpec specs[] = {
		{"enabled", 0, false, OPT_ENABLED},
		COMMON_SPECS
	};
	PmOptions	o = {0};
	char	  **pos;
	int			npos;
	int			rc;
	const char *params[1];

	rc = parse_command(argc, argv, specs, help_pm_list, pm_option, &o, &pos, &npos);
	if (rc < 0 && npos > 0)
		rc = usage_error(help_pm_list, "unexpected argument \"%s\"", pos[0]);
	if (rc < 0)
	{
		params[0] = o.enabled ? "true" : "false";
		rc = query_and_print("SELECT * FROM tego.plugin_list($1::boolean)",
							 1, params, plugin_list_cols, false);
	}
	free(pos);
	return rc;
}

static int
pm_add(int argc, char **argv)
{
	static const OptSpec specs[] = {
		{"package", 0, true, OPT_PACKAGE},
		{"version", 0, true, OPT_VERSION},
		{"options", 0, true, OPT_OPTIONS},
		{"depends-on", 0, true, OPT_DEPENDS_ON},
		{"built-in", 0, false, OPT_BUILT_IN},
		{"no-sub-view", 0, false, OPT_NO_SUB_VIEW},
		COMMON_SPECS
	};
	PmOptions	o = {0};
	char	  **pos;
	int			npos;
	int			rc;
	PGconn	   *conn = NULL;
	PGresult  **results = NULL;
	int			nresults = 0;
	char	   *depends = NULL;
	int			i;

	rc = parse_command(argc, argv, specs, help_pm_add, pm_option, &o, &pos, &npos);
	if (rc < 0 && npos == 0)
		rc = usage_error(help_pm_add, "no plugin name given");
	if (rc < 0 && npos > 1 && (o.package || o.version))
		rc = usage_error(help_pm_add, "--package and --version need a single plugin name");
	if (rc >= 0)
		goto done;

	conn = db_connect(true);
	if (conn == NULL)
	{
		rc = EXIT_CONNECT;
		goto done;
	}
	depends = pg_text_array_literal(o.depends, o.ndepends);
	results = xmalloc(sizeof(PGresult *) * npos);
	rc = EXIT_OK;
	if (npos > 1)
		rc = db_query(conn, "BEGIN", 0, NULL, NULL);
	for (i = 0; rc == EXIT_OK && i < npos; i++)
	{
		const char *params[7];

		params[0] = pos[i];
		params[1] = o.package;
		params[2] = o.version;
		params[3] = o.options ? o.options : "{}";
		params[4] = o.built_in ? "true" : "false";
		params[5] = o.no_sub_view ? "false" : "true";
		params[6] = depends;
		rc = db_query(conn,
					  "SELECT * FROM tego.plugin_add($1, $2, $3, $4::jsonb, "
					  "$5::boolean, $6::boolean, $7::text[])",
					  7, params, &results[nresults]);
		if (rc == EXIT_OK)
			nresults++;
	}
	if (rc == EXIT_OK && npos > 1)
		rc = db_query(conn, "COMMIT", 0, NULL, NULL);
	if (rc == EXIT_OK)
		print_results(results, nresults, plugin_change_cols, g_opts.json);

done:
	for (i = 0; i < nresults; i++)
		PQclear(results[i]);
	free(results);
	free(depends);
	if (conn)
		PQfinish(conn);
	pm_options_free(&o);
	free(pos);
	return rc;
}

/* install, uninstall, enable, disable: FUNC(VARIADIC names) */
static int
pm_variadic(int argc, char **argv, const char *func, const char *help)
{
	char	  **pos;
	int			npos;
	int			rc;
	char		sql[128];
	char	   *names;
	const char *params[1];

	rc = parse_command(argc, argv, no_specs, help, NULL, NULL, &pos, &npos);
	if (rc < 0 && npos == 0)
		rc = usage_error(help, "no plugin name given");
	if (rc < 0)
	{
		snprintf(sql, sizeof(sql), "SELECT * FROM tego.%s(VARIADIC $1::text[])", func);
		names = pg_text_array_literal(pos, npos);
		params[0] = names;
		rc = query_and_print(sql, 1, params, plugin_change_cols, false);
		free(names);
	}
	free(pos);
	return rc;
}

static int
pm_remove(int argc, char **argv)
{
	static const OptSpec specs[] = {
		{"force", 0, false, OPT_FORCE},
		COMMON_SPECS
	};
	PmOptions	o = {0};
	char	  **pos;
	int			npos;
	int			rc;
	char	   *names;
	const char *params[2];

	rc = parse_command(argc, argv, specs, help_pm_remove, pm_option, &o, &pos, &npos);
	if (rc < 0 && npos == 0)
		rc = usage_error(help_pm_remove, "no plugin name given");
	if (rc < 0)
	{
		names = pg_text_array_literal(pos, npos);
		params[0] = names;
		params[1] = o.force ? "true" : "false";
		rc = query_and_print("SELECT * FROM tego.plugin_remove($1::text[], $2::boolean)",
							 2, params, plugin_change_cols, false);
		free(names);
	}
	free(pos);
	return rc;
}

static int
pm_upgrade(int argc, char **argv)
{
	char	  **pos;
	int			npos;
	int			rc;

	rc = parse_command(argc, argv, no_specs, help_pm_upgrade, NULL, NULL, &pos, &npos);
	if (rc < 0 && npos < 2)
		rc = usage_error(help_pm_upgrade, "a plugin name and a version are needed");
	if (rc < 0 && npos > 2)
		rc = usage_error(help_pm_upgrade, "unexpected argument \"%s\"", pos[2]);
	if (rc < 0)
		rc = query_and_print("SELECT * FROM tego.plugin_upgrade($1, $2)",
							 2, (const char *const *) pos, plugin_change_cols, false);
	free(pos);
	return rc;
}

/*
 * "COMMAND SUB ..." where argv[0] is SUB: "--help" and "help" print the
 * command's help; no SUB or an unknown one is a usage error.
 */
static bool
wants_help(const char *arg)
{
	return strcmp(arg, "--help") == 0 || strcmp(arg, "-?") == 0 ||
		strcmp(arg, "help") == 0;
}

int
cmd_pm(int argc, char **argv)
{
	const char *sub;

	if (argc == 0)
		return usage_error(help_pm, "pm needs a subcommand");
	sub = argv[0];
	argc--;
	argv++;
	if (wants_help(sub))
	{
		fputs(help_pm, stdout);
		return EXIT_OK;
	}
	if (strcmp(sub, "list") == 0)
		return pm_list(argc, argv);
	if (strcmp(sub, "add") == 0)
		return pm_add(argc, argv);
	if (strcmp(sub, "install") == 0)
		return pm_variadic(argc, argv, "plugin_install", help_pm_install);
	if (strcmp(sub, "uninstall") == 0)
		return pm_variadic(argc, argv, "plugin_uninstall", help_pm_uninstall);
	if (strcmp(sub, "enable") == 0)
		return pm_variadic(argc, argv, "plugin_enable", help_pm_enable);
	if (strcmp(sub, "disable") == 0)
		return pm_variadic(argc, argv, "plugin_disable", help_pm_disable);
	if (strcmp(sub, "remove") == 0)
		return pm_remove(argc, argv);
	if (strcmp(sub, "upgrade") == 0)
		return pm_upgrade(argc, argv);
	return usage_error(help_pm, "unknown pm subcommand \"%s\"", sub);
}

/* ---- jobs -------------------------------------------------------------- */

static int
jobs_list(int argc, char **argv)
{
	static const char *const cols[] = {
		"name", "kind", "schedule", "timezone", "active", "next_run",
		"username", "database", "command", "payload", NULL
	};
	char	  **pos;
	int			npos;
	int			rc;

	rc = parse_command(argc, argv, no_specs, help_jobs_list, NULL, NULL, &pos, &npos);
	if (rc < 0 && npos > 0)
		rc = usage_error(help_jobs_list, "unexpected argument \"%s\"", pos[0]);
	if (rc < 0)
		rc = query_and_print(
			"SELECT j.job_id, j.name, j.kind, j.schedule, j.timezone, j.active,\n"
			"       CASE WHEN j.active THEN\n"
			"         (SELECT t FROM tego.cron_next(j.schedule, now(), j.timezone) t)\n"
			"       END AS next_run,\n"
			"       j.username, j.database, j.command, j.payload, j.overlap,\n"
			"       j.misfire, j.max_runtime, j.max_attempts, j.claim_timeout,\n"
			"       j.heartbeat_timeout, j.created_at, j.updated_at\n"
			"  FROM tego.jobs j\n"
			" ORDER BY j.name",
			0, NULL, cols, false);
	free(pos);
	return rc;
}

static int
jobs_run(int argc, char **argv)
{
	char	  **pos;
	int			npos;
	int			rc;

	rc = parse_command(argc, argv, no_specs, help_jobs_run, NULL, NULL, &pos, &npos);
	if (rc < 0 && npos != 1)
		rc = npos == 0 ? usage_error(help_jobs_run, "no job name given")
			: usage_error(help_jobs_run, "unexpected argument \"%s\"", pos[1]);
	if (rc < 0)
		rc = query_and_print("SELECT $1::text AS job, tego.run_now($1) AS run_id",
							 1, (const char *const *) pos, NULL, false);
	free(pos);
	return rc;
}

static int
jobs_history(int argc, char **argv)
{
	static const OptSpec specs[] = {
		{"limit", 'n', true, OPT_LIMIT},
		COMMON_SPECS
	};
	static const char *const cols[] = {
		"run_id", "job_name", "status", "manual", "attempt", "scheduled_for",
		"started_at", "duration", "message", NULL
	};
	PmOptions	o = {0};
	char	  **pos;
	int			npos;
	int			rc;
	char		limit[32];
	const char *params[2];

	o.limit = 20;
	rc = parse_command(argc, argv, specs, help_jobs_history, pm_option, &o, &pos, &npos);
	if (rc < 0 && npos > 1)
		rc = usage_error(help_jobs_history, "unexpected argument \"%s\"", pos[1]);
	if (rc < 0)
	{
		snprintf(limit, sizeof(limit), "%lld", (long long) o.limit);
		params[0] = npos > 0 ? pos[0] : NULL;
		params[1] = limit;
		rc = query_and_print(
			"SELECT r.run_id, r.job_name, r.status, r.manual, r.attempt,\n"
			"       r.scheduled_for, r.started_at, r.finished_at,\n"
			"       r.finished_at - r.started_at AS duration,\n"
			"       r.worker, r.pid, r.message\n"
			"  FROM tego.job_runs r\n"
			" WHERE $1::text IS NULL OR r.job_name = $1::text\n"
			" ORDER BY r.scheduled_for DESC, r.run_id DESC\n"
			" LIMIT $2::bigint",
			2, params, cols, false);
	}
	free(pos);
	return rc;
}

int
cmd_jobs(int argc, char **argv)
{
	const char *sub;

	if (argc == 0)
		return usage_error(help_jobs, "jobs needs a subcommand");
	sub = argv[0];
	argc--;
	argv++;
	if (wants_help(sub))
	{
		fputs(help_jobs, stdout);
		return EXIT_OK;
	}
	if (strcmp(sub, "list") == 0)
		return jobs_list(argc, argv);
	if (strcmp(sub, "run") == 0)
		return jobs_run(argc, argv);
	if (strcmp(sub, "history") == 0)
		return jobs_history(argc, argv);
	return usage_error(help_jobs, "unknown jobs subcommand \"%s\"", sub);
}

/* ---- apps, leases, status --------------------------------------------- */

static int
simple_command(int argc, char **argv, const char *help, const char *sql, bool record)
{
	char	  **pos;
	int			npos;
	int			rc;

	rc = parse_command(argc, argv, no_specs, help, NULL, NULL, &pos, &npos);
	if (rc < 0 && npos > 0)
		rc = usage_error(help, "unexpected argument \"%s\"", pos[0]);
	if (rc < 0)
		rc = query_and_print(sql, 0, NULL, NULL, record);
	free(pos);
	return rc;
}

int
cmd_apps(int argc, char **argv)
{
	return simple_command(argc, argv, help_apps,
						  "SELECT * FROM tego.apps ORDER BY app", false);
}

int
cmd_leases(int argc, char **argv)
{
	return simple_command(argc, argv, help_leases,
						  "SELECT * FROM tego.leases ORDER BY name", false);
}

int
cmd_status(int argc, char **argv)
{
	return simple_command(argc, argv, help_status,
						  "SELECT * FROM tego.status()", true);
}
