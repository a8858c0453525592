/*
 * help.c - the --help texts of the tego tool and of each command.
 */
#include "tego_cli.h"

#define EXIT_CODES \
	"Exit status:\n" \
	"  0  success\n" \
	"  1  the server reported an error (the message names its SQLSTATE)\n" \
	"  2  usage error: unknown command or option, missing or bad argument\n" \
	"  3  could not connect to the server, or the connection was lost\n"

#define COMMON_OPTIONS \
	"      --json            print JSON: an array of objects, every column\n" \
	"      --help            show this help, then exit\n"

const char *const usage_main =
"Usage:\n"
"  tego [OPTION]... COMMAND [ARG]...\n"
"\n"
"Commands: pm, jobs, apps, leases, status, events, help.\n"
"\"tego --help\" shows the commands and options.\n";

const char *const help_main =
"tego - command-line tool of the tego PostgreSQL extension\n"
"\n"
"Usage:\n"
"  tego [OPTION]... COMMAND [ARG]...\n"
"\n"
"Commands:\n"
"  pm list [--enabled]              list the plugins, in load order\n"
"  pm add NAME... [OPTION]...       register plugins\n"
"  pm install NAME...               mark plugins installed (their install() ran)\n"
"  pm uninstall NAME...             mark plugins not installed\n"
"  pm enable NAME...                enable plugins\n"
"  pm disable NAME...               disable plugins\n"
"  pm remove NAME... [--force]      remove plugins\n"
"  pm upgrade NAME VERSION          set the version of a plugin\n"
"  jobs list                        list the scheduled jobs\n"
"  jobs run NAME                    queue a run of a job now\n"
"  jobs history [NAME] [--limit N]  show job runs, newest first\n"
"  apps                             show the status of the applications\n"
"  leases                           show the leases\n"
"  status                           show the health of tego (tego.status())\n"
"  events tail [OPTION]...          print events as they are committed\n"
"  help [COMMAND [SUBCOMMAND]]      show the help of a command\n"
"\n"
"Connection options (before the command):\n"
"  -h, --host=HOST        database server host or socket directory\n"
"  -p, --port=PORT        database server port\n"
"  -U, --username=USER    database user name\n"
"  -d, --dbname=DBNAME    database name, or a connection string or URI\n"
"                         (\"host=db1 dbname=app\", \"postgresql://app@db1/app\")\n"
"Unset options come from the environment (PGHOST, PGPORT, PGUSER,\n"
"PGDATABASE, PGPASSWORD, PGSERVICE, ...) and libpq's defaults; passwords\n"
"from PGPASSWORD or ~/.pgpass.  The session's application_name is \"tego\".\n"
"\n"
"Other options:\n"
"      --json             print JSON instead of a table (also after the command)\n"
"      --help             show this help, then exit\n"
"      --version          show the version, then exit\n"
"\n"
EXIT_CODES
"\n"
"\"tego COMMAND --help\" shows the options of a command.\n";

const char *const help_pm =
"Usage:\n"
"  tego [CONNECTION OPTION]... pm SUBCOMMAND [ARG]...\n"
"\n"
"Manage the plugin registry (tego.plugins).  Each change prints the rows it\n"
"changed; a change that changes nothing prints no row and is not an error.\n"
"A command given several names applies to all of them or to none.\n"
"\n"
"Subcommands:\n"
"  list [--enabled]              list the plugins, in load order\n"
"  add NAME... [OPTION]...       register plugins\n"
"  install NAME...               mark plugins installed (their install() ran)\n"
"  uninstall NAME...             mark plugins not installed\n"
"  enable NAME...                enable plugins\n"
"  disable NAME...               disable plugins\n"
"  remove NAME... [--force]      remove plugins\n"
"  upgrade NAME VERSION          set the version of a plugin\n"
"\n"
"\"tego pm SUBCOMMAND --help\" shows the options of a subcommand.\n";

const char *const help_pm_list =
"Usage:\n"
"  tego [CONNECTION OPTION]... pm list [--enabled] [--json]\n"
"\n"
"List the plugins in load order (tego.plugin_list()): every plugin after\n"
"the plugins it depends on, otherwise in the order they were added.\n"
"\n"
"Options:\n"
"      --enabled         only the enabled plugins\n"
COMMON_OPTIONS;

const char *const help_pm_add =
"Usage:\n"
"  tego [CONNECTION OPTION]... pm add NAME... [OPTION]...\n"
"\n"
"Register plugins (tego.plugin_add()); several names are added in one\n"
"transaction, with the same options.\n"
"\n"
"Options:\n"
"      --package=PACKAGE      npm package name (one NAME only)\n"
"      --version=VERSION      version (one NAME only)\n"
"      --options=JSON         options, a JSON object (default {})\n"
"      --depends-on=A,B       names of the plugins it needs (repeatable)\n"
"      --built-in             a built-in plugin (cannot be disabled or removed)\n"
"      --no-sub-view          sub_view = false (default true)\n"
COMMON_OPTIONS
"\n"
"Example:\n"
"  tego pm add acl --package @tachybase/plugin-acl --version 1.0.0 --depends-on users\n";

const char *const help_pm_install =
"Usage:\n"
"  tego [CONNECTION OPTION]... pm install NAME... [--json]\n"
"\n"
"Mark plugins installed (tego.plugin_install()): the application's install()\n"
"hook of each has run.\n"
"\n"
"Options:\n"
COMMON_OPTIONS;

const char *const help_pm_uninstall =
"Usage:\n"
"  tego [CONNECTION OPTION]... pm uninstall NAME... [--json]\n"
"\n"
"Mark plugins not installed (tego.plugin_uninstall()), as after an install()\n"
"that failed; enabled plugins stay enabled.\n"
"\n"
"Options:\n"
COMMON_OPTIONS;

const char *const help_pm_enable =
"Usage:\n"
"  tego [CONNECTION OPTION]... pm enable NAME... [--json]\n"
"\n"
"Enable plugins (tego.plugin_enable()).  Enabling does not mark a plugin\n"
"installed: the application runs its install() and then \"pm install\".\n"
"A plugin is enabled only when every plugin it depends on is enabled or is\n"
"among the names given.\n"
"\n"
"Options:\n"
COMMON_OPTIONS;

const char *const help_pm_disable =
"Usage:\n"
"  tego [CONNECTION OPTION]... pm disable NAME... [--json]\n"
"\n"
"Disable plugins (tego.plugin_disable()).  A plugin that an enabled plugin\n"
"depends on, and a built-in plugin, cannot be disabled.\n"
"\n"
"Options:\n"
COMMON_OPTIONS;

const char *const help_pm_remove =
"Usage:\n"
"  tego [CONNECTION OPTION]... pm remove NAME... [--force] [--json]\n"
"\n"
"Remove plugins (tego.plugin_remove()); prints the rows as they were.\n"
"\n"
"Options:\n"
"      --force           remove enabled plugins too\n"
COMMON_OPTIONS;

const char *const help_pm_upgrade =
"Usage:\n"
"  tego [CONNECTION OPTION]... pm upgrade NAME VERSION [--json]\n"
"\n"
"Set the version of a plugin (tego.plugin_upgrade()); the same version\n"
"changes nothing.\n"
"\n"
"Options:\n"
COMMON_OPTIONS;

const char *const help_jobs =
"Usage:\n"
"  tego [CONNECTION OPTION]... jobs SUBCOMMAND [ARG]...\n"
"\n"
"Jobs of the tego scheduler.\n"
"\n"
"Subcommands:\n"
"  list                          list the jobs (tego.jobs) with their next run\n"
"  run NAME                      queue a run of a job now (tego.run_now())\n"
"  history [NAME] [--limit N]    show runs (tego.job_runs), newest first\n"
"\n"
"\"tego jobs SUBCOMMAND --help\" shows the options of a subcommand.\n";

const char *const help_jobs_list =
"Usage:\n"
"  tego [CONNECTION OPTION]... jobs list [--json]\n"
"\n"
"List the jobs (tego.jobs) by name, with the next time each active job\n"
"fires (next_run, from tego.cron_next()).\n"
"\n"
"Options:\n"
COMMON_OPTIONS;

const char *const help_jobs_run =
"Usage:\n"
"  tego [CONNECTION OPTION]... jobs run NAME [--json]\n"
"\n"
"Queue a run of the job now (tego.run_now()); prints its run_id.  The run\n"
"shows in \"tego jobs history NAME\".\n"
"\n"
"Options:\n"
COMMON_OPTIONS;

const char *const help_jobs_history =
"Usage:\n"
"  tego [CONNECTION OPTION]... jobs history [NAME] [--limit N] [--json]\n"
"\n"
"Show the runs of all jobs, or of job NAME (tego.job_runs), newest first.\n"
"\n"
"Options:\n"
"      --limit=N         at most N runs (default 20)\n"
COMMON_OPTIONS;

const char *const help_apps =
"Usage:\n"
"  tego [CONNECTION OPTION]... apps [--json]\n"
"\n"
"Show the status of the applications of the database (tego.apps).\n"
"\n"
"Options:\n"
COMMON_OPTIONS;

const char *const help_leases =
"Usage:\n"
"  tego [CONNECTION OPTION]... leases [--json]\n"
"\n"
"Show the leases (tego.leases): holder, token, expiry, whether live.\n"
"\n"
"Options:\n"
COMMON_OPTIONS;

const char *const help_status =
"Usage:\n"
"  tego [CONNECTION OPTION]... status [--json]\n"
"\n"
"Show the health of tego (tego.status()): the scheduler, the event log,\n"
"running jobs, and shared memory in use against its limits.\n"
"\n"
"Options:\n"
COMMON_OPTIONS;

const char *const help_events =
"Usage:\n"
"  tego [CONNECTION OPTION]... events tail [OPTION]...\n"
"\n"
"Subcommands:\n"
"  tail                          print events as they are committed\n"
"\n"
"\"tego events tail --help\" shows its options.\n";

const char *const help_events_tail =
"Usage:\n"
"  tego [CONNECTION OPTION]... events tail [OPTION]...\n"
"\n"
"Print the events of the topics as they are committed, one line each:\n"
"  SEQ TOPIC EVENT KEY PAYLOAD\n"
"(KEY \"-\" when it is null; SEQ \"-\" for tego_apps events, which are not in\n"
"the event log).  With --json, one JSON object a line: seq, topic, event,\n"
"key, payload, committed_at.\n"
"\n"
"Every event of the log is printed once, in seq order: tego LISTENs, then\n"
"reads what it missed with tego.events_since().  When the connection is\n"
"lost it reconnects (at once, then waiting 100 ms, doubling up to 2 s,\n"
"between attempts), LISTENs again and resumes after the last seq printed.\n"
"\n"
"A notification is only a hint (any role may send one): what is printed\n"
"comes from tego.events_since(), and for tego_apps from tego.apps, whose\n"
"apps are printed when their row changed since the last read\n"
"(app-status-changed) or is gone (app-forgotten).\n"
"\n"
"Options:\n"
"      --from=SEQ        first print the events after SEQ (0: the whole log);\n"
"                        default: only events committed from now on\n"
"      --topic=TOPIC     a topic to follow (repeatable); default: tego_plugins,\n"
"                        tego_jobs, tego_leases and tego_apps\n"
"      --count=N         exit after printing N events\n"
"      --timeout=SECONDS exit after SECONDS (decimals allowed)\n"
"      --json            print one JSON object a line\n"
"      --help            show this help, then exit\n"
"\n"
"SIGINT and SIGTERM end it with exit status 0, as do --count and --timeout.\n"
"When the events after the position were compacted away (SQLSTATE TG001),\n"
"it prints the error and exits with status 1: read the current state again,\n"
"then resume from tego.event_seq().\n";
