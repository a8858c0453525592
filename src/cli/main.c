/*
 * main.c - the tego command-line tool: global options and dispatch.
 *
 *   tego [-h HOST] [-p PORT] [-U USER] [-d DBNAME] [--json] COMMAND [ARG]...
 *
 * Commands are in commands.c (pm, jobs, apps, leases, status) and
 * events.c (events tail).  Exit codes: see EXIT_* in tego_cli.h.
 */
#include "tego_cli.h"

#include <string.h>

GlobalOptions g_opts;
const char *progname = "tego";

enum
{
	OPT_HOST = 1,
	OPT_PORT,
	OPT_USER,
	OPT_DBNAME,
	OPT_VERSION
};

static const OptSpec global_specs[] = {
	{"host", 'h', true, OPT_HOST},
	{"port", 'p', true, OPT_PORT},
	{"username", 'U', true, OPT_USER},
	{"dbname", 'd', true, OPT_DBNAME},
	{"json", 0, false, OPT_JSON},
	{"help", '?', false, OPT_HELP},
	{"version", 'V', false, OPT_VERSION},
	{NULL, 0, false, 0}
};

typedef struct HelpEntry
{
	const char *command;
	const char *sub;			/* NULL: the command itself */
	const char *const *text;
} HelpEntry;

static const HelpEntry help_entries[] = {
	{"pm", NULL, &help_pm},
	{"pm", "list", &help_pm_list},
	{"pm", "add", &help_pm_add},
	{"pm", "install", &help_pm_install},
	{"pm", "uninstall", &help_pm_uninstall},
	{"pm", "enable", &help_pm_enable},
	{"pm", "disable", &help_pm_disable},
	{"pm", "remove", &help_pm_remove},
	{"pm", "upgrade", &help_pm_upgrade},
	{"jobs", NULL, &help_jobs},
	{"jobs", "list", &help_jobs_list},
	{"jobs", "run", &help_jobs_run},
	{"jobs", "history", &help_jobs_history},
	{"apps", NULL, &help_apps},
	{"leases", NULL, &help_leases},
	{"status", NULL, &help_status},
	{"events", NULL, &help_events},
	{"events", "tail", &help_events_tail},
	{NULL, NULL, NULL}
};

/* tego help [COMMAND [SUBCOMMAND]] */
static int
cmd_help(int argc, char **argv)
{
	const HelpEntry *e;
	const char *cmd = argc > 0 ? argv[0] : NULL;
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (cmd == NULL)
	{
		fputs(help_main, stdout);
		return EXIT_OK;
	}
	for (e = help_entries; e->command; e++)
		if (strcmp(e->command, cmd) == 0 &&
			((sub == NULL && e->sub == NULL) ||
			 (sub != NULL && e->sub != NULL && strcmp(e->sub, sub) == 0)))
		{
			fputs(*e->text, stdout);
			return EXIT_OK;
		}
	if (sub)
		return usage_error(usage_main, "no help for \"%s %s\"", cmd, sub);
	return usage_error(usage_main, "unknown command \"%s\"", cmd);
}

int
main(int argc, char **argv)
{
	ArgIter		it;
	int			opt;
	const char *value;
	const char *command;
	int			rest_argc;
	char	  **rest_argv;

	output_init();

	arg_init(&it, argc - 1, argv + 1, true);
	while ((opt = arg_next(&it, global_specs, &value)) != ARG_END)
	{
		switch (opt)
		{
			case OPT_HOST:
				g_opts.host = value;
				break;
			case OPT_PORT:
				g_opts.port = value;
				break;
			case OPT_USER:
				g_opts.user = value;
				break;
			case OPT_DBNAME:
				g_opts.dbname = value;
				break;
			case OPT_JSON:
				g_opts.json = true;
				break;
			case OPT_HELP:
				fputs(help_main, stdout);
				return EXIT_OK;
			case OPT_VERSION:
				printf("tego %s (libpq %d.%d)\n", TEGO_CLI_VERSION,
					   PQlibVersion() / 10000, PQlibVersion() % 10000);
				return EXIT_OK;
			default:
				fprintf(stderr, "\n%s", usage_main);
				return EXIT_USAGE;
		}
	}
	if (it.i >= it.argc)
		return usage_error(usage_main, "no command given");

	command = it.argv[it.i];
	rest_argc = it.argc - it.i - 1;
	rest_argv = it.argv + it.i + 1;

	if (strcmp(command, "pm") == 0)
		return cmd_pm(rest_argc, rest_argv);
	if (strcmp(command, "jobs") == 0)
		return cmd_jobs(rest_argc, rest_argv);
	if (strcmp(command, "apps") == 0)
		return cmd_apps(rest_argc, rest_argv);
	if (strcmp(command, "leases") == 0)
		return cmd_leases(rest_argc, rest_argv);
	if (strcmp(command, "status") == 0)
		return cmd_status(rest_argc, rest_argv);
	if (strcmp(command, "events") == 0)
		return cmd_events(rest_argc, rest_argv);
	if (strcmp(command, "help") == 0)
		return cmd_help(rest_argc, rest_argv);
	return usage_error(usage_main, "unknown command \"%s\"", command);
}
