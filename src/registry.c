/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  The plugin registry: lifecycle functions over tego.plugins.
 *
 *	  Every transition is validated here, in the database, so that no
 *	  application process can break the rules: a plugin is enabled only
 *	  when all it depends on is enabled (or enabled in the same call); a
 *	  plugin that an enabled plugin needs cannot be disabled or removed;
 *	  built-in plugins cannot be disabled or removed; dependency cycles are
 *	  refused.  Batches are all-or-nothing and applied in dependency order.
 *	  A transition that changes nothing is not an error and emits no event.
 *	  "installed" says whether the application's install() hook has run, as
 *	  in TachyBase: no rule ties it to "enabled", and a plugin may be
 *	  enabled with its install pending.
 *
 *	  Concurrency: a batch locks its target rows (FOR NO KEY UPDATE, or FOR
 *	  UPDATE when deleting) in id order, and enabling locks the
 *	  dependencies FOR SHARE.  A disable therefore waits for any enable that
 *	  relies on the same plugin, and the check for enabled dependents runs
 *	  afterwards with the latest snapshot.  Changes of the dependency graph
 *	  are serialized by a ShareUpdateExclusiveLock on tego.plugins, so two
 *	  sessions cannot each add half of a cycle.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/binaryheap.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "tego.h"
#include "mirror.h"

/* Attribute numbers of tego.plugins (and of "SELECT p.*"). */
#define ATT_ID			1
#define ATT_NAME		2
#define ATT_PACKAGE		3
#define ATT_VERSION		4
#define ATT_ENABLED		5
#define ATT_INSTALLED	6
#define ATT_BUILT_IN	7
#define ATT_SUB_VIEW	8
#define ATT_OPTIONS		9
#define ATT_DEPENDS_ON	10
#define ATT_STATE		11
#define ATT_REVISION	12
#define NUM_PLUGIN_ATTS	14

/* One plugin row, as the lifecycle code needs it. */
typedef struct Plugin
{
	int64		id;
	char	   *name;
	char	   *package_name;	/* may be NULL */
	char	   *version;		/* may be NULL */
	bool		enabled;
	bool		installed;
	bool		built_in;
	bool		sub_view;
	Jsonb	   *options;
	char	  **deps;
	int			ndeps;
	char	   *state;
	bool		has_revision;
	int64		revision;
	int			tuple_index;	/* plugin_list from the mirror: its row */
} Plugin;

/*
 * SQL expression of a plugin event's payload, for the RETURNING clause of a
 * statement on "tego.plugins p": the row (without the derived state and the
 * revision, which is added at commit), the action and the states.
 */
#define PAYLOAD_SQL(action, from, to) \
	"(pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.-) 'state' " \
	"OPERATOR(pg_catalog.-) 'revision') OPERATOR(pg_catalog.||) " \
	"pg_catalog.jsonb_build_object('action', " action ", 'from', " from \
	", 'to', " to ")"

/* How a batch locks its target rows. */
typedef enum TargetLock
{
	LOCK_NONE,
	LOCK_NO_KEY_UPDATE,
	LOCK_UPDATE
} TargetLock;

/* The rows a lifecycle function returns, and their tuple descriptor. */
typedef struct Output
{
	Tuplestorestate *store;
	TupleDesc	desc;
} Output;

static SPIPlanPtr plan_targets[3] = {NULL, NULL, NULL};
static SPIPlanPtr plan_deps_share = NULL;
static SPIPlanPtr plan_dependents = NULL;
static SPIPlanPtr plan_graph = NULL;
static SPIPlanPtr plan_insert = NULL;
static SPIPlanPtr plan_set_state = NULL;
static SPIPlanPtr plan_delete = NULL;
static SPIPlanPtr plan_upgrade = NULL;
static SPIPlanPtr plan_update = NULL;
static SPIPlanPtr plan_get = NULL;
static SPIPlanPtr plan_all = NULL;
static SPIPlanPtr plan_name_taken = NULL;
static SPIPlanPtr plan_package_taken = NULL;

PG_FUNCTION_INFO_V1(plugin_add);
PG_FUNCTION_INFO_V1(plugin_install);
PG_FUNCTION_INFO_V1(plugin_uninstall);
PG_FUNCTION_INFO_V1(plugin_enable);
PG_FUNCTION_INFO_V1(plugin_disable);
PG_FUNCTION_INFO_V1(plugin_remove);
PG_FUNCTION_INFO_V1(plugin_upgrade);
PG_FUNCTION_INFO_V1(plugin_update);
PG_FUNCTION_INFO_V1(plugin_get);
PG_FUNCTION_INFO_V1(plugin_list);
PG_FUNCTION_INFO_V1(read_plugin_source);

/* ------------------------------------------------------------------------
 * Argument checks
 * ------------------------------------------------------------------------
 */

/* Raise a null_value_not_allowed error for argument "what" if it is NULL. */
static void
require_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/*
 * Check a plugin or package name against npm's rules: 1 to 214 bytes of
 * lower-case letters, digits, "-", ".", "_" and "~", optionally behind an
 * "@scope/" prefix, not beginning with "." or "_".  "what" is "plugin" or
 * "package".
 */
static void
check_name(const char *name, const char *what)
{
	size_t		len = strlen(name);
	const char *p = name;
	bool		ok = true;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s name must not be empty", what)));
	if (len > TEGO_MAX_NAME_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s name is too long", what),
				 errdetail("Names are at most %d bytes; this one has %zu.",
						   TEGO_MAX_NAME_BYTES, len)));

	if (*p == '@')
	{
		const char *slash = strchr(p, '/');

		if (slash == NULL || slash == p + 1)
			ok = false;
		else
		{
			for (p = p + 1; p < slash && ok; p++)
				if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
					  *p == '-' || *p == '.' || *p == '_' || *p == '~'))
					ok = false;
			p = slash + 1;
		}
	}
	if (ok && (*p == '\0' || *p == '.' || *p == '_'))
		ok = false;
	for (; ok && *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			  *p == '-' || *p == '.' || *p == '_' || *p == '~'))
			ok = false;

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s name \"%s\"", what, name),
				 errdetail("Names use lower-case letters, digits, \"-\", \".\", \"_\" and \"~\", may have an \"@scope/\" prefix, and do not begin with \".\" or \"_\".")));
}

/* Check a version string: not empty, at most TEGO_MAX_VERSION_BYTES. */
static void
check_version(const char *version)
{
	size_t		len = strlen(version);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("version must not be empty")));
	if (len > TEGO_MAX_VERSION_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("version is too long"),
				 errdetail("Versions are at most %d bytes; this one has %zu.",
						   TEGO_MAX_VERSION_BYTES, len)));
}

/* Name of a JSON value's type, for error details. */
static const char *
jsonb_type_name(Jsonb *j)
{
	JsonbIterator *it;
	JsonbValue	v;

	if (JB_ROOT_IS_OBJECT(j))
		return "object";
	if (JB_ROOT_IS_ARRAY(j) && !JB_ROOT_IS_SCALAR(j))
		return "array";
	it = JsonbIteratorInit(&j->root);
	(void) JsonbIteratorNext(&it, &v, true);	/* the raw scalar array */
	(void) JsonbIteratorNext(&it, &v, true);
	switch (v.type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "string";
		case jbvNumeric:
			return "number";
		case jbvBool:
			return "boolean";
		default:
			return "value";
	}
}

/* Check that options is a JSON object. */
static void
check_options(Jsonb *options)
{
	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object"),
				 errdetail("The value given is a JSON %s.",
						   jsonb_type_name(options))));
}

/*
 * Check a depends_on list for plugin "name": valid names, no duplicates,
 * not the plugin itself.
 */
static void
check_deps(const char *name, char **deps, int ndeps)
{
	int			i,
				j;

	for (i = 0; i < ndeps; i++)
	{
		check_name(deps[i], "plugin");
		if (strcmp(deps[i], name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("plugin \"%s\" cannot depend on itself", name)));
		for (j = 0; j < i; j++)
			if (strcmp(deps[i], deps[j]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("plugin \"%s\" is listed twice in depends_on",
								deps[i])));
	}
}

/*
 * The names of a VARIADIC batch: not NULL, not empty, each valid; repeated
 * names count once.
 */
static char **
batch_names(FunctionCallInfo fcinfo, int argno, int *n)
{
	char	  **names;
	int			count;
	int			i,
				j,
				k = 0;

	require_arg(fcinfo, argno, "names");
	names = tego_deconstruct_text_array(PG_GETARG_ARRAYTYPE_P(argno), &count,
										"names");
	if (count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at least one plugin name is required")));
	for (i = 0; i < count; i++)
	{
		bool		dup = false;

		check_name(names[i], "plugin");
		for (j = 0; j < k; j++)
			if (strcmp(names[i], names[j]) == 0)
				dup = true;
		if (!dup)
			names[k++] = names[i];
	}
	*n = k;
	return names;
}

/* ------------------------------------------------------------------------
 * Rows
 * ------------------------------------------------------------------------
 */

/* Read a tego.plugins row from the current SPI result. */
static Plugin *
plugin_from_tuple(HeapTuple tup, TupleDesc desc)
{
	Plugin	   *p = palloc0(sizeof(Plugin));
	bool		isnull;
	Datum		d;

	p->id = DatumGetInt64(SPI_getbinval(tup, desc, ATT_ID, &isnull));
	p->name = SPI_getvalue(tup, desc, ATT_NAME);
	p->package_name = SPI_getvalue(tup, desc, ATT_PACKAGE);
	p->version = SPI_getvalue(tup, desc, ATT_VERSION);
	p->enabled = DatumGetBool(SPI_getbinval(tup, desc, ATT_ENABLED, &isnull));
	p->installed = DatumGetBool(SPI_getbinval(tup, desc, ATT_INSTALLED, &isnull));
	p->built_in = DatumGetBool(SPI_getbinval(tup, desc, ATT_BUILT_IN, &isnull));
	p->sub_view = DatumGetBool(SPI_getbinval(tup, desc, ATT_SUB_VIEW, &isnull));
	p->options = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, ATT_OPTIONS, &isnull));
	d = SPI_getbinval(tup, desc, ATT_DEPENDS_ON, &isnull);
	p->deps = tego_deconstruct_text_array(DatumGetArrayTypeP(d), &p->ndeps,
										  "depends_on");
	p->state = SPI_getvalue(tup, desc, ATT_STATE);
	d = SPI_getbinval(tup, desc, ATT_REVISION, &isnull);
	p->has_revision = !isnull;
	p->revision = isnull ? 0 : DatumGetInt64(d);
	return p;
}

/* A plugin from row "row" of the last SPI result. */
static Plugin *
plugin_from_spi(int row)
{
	return plugin_from_tuple(SPI_tuptable->vals[row], SPI_tuptable->tupdesc);
}

/*
 * Lock and read the target rows of a batch, in id order.  Every name must
 * exist; the result is in the order of the names.
 */
static Plugin **
load_targets(char **names, int n, TargetLock lock)
{
	static const char *const sql[3] = {
		"SELECT p.* FROM tego.plugins p WHERE p.name OPERATOR(pg_catalog.=) ANY ($1) ORDER BY p.id",
		"SELECT p.* FROM tego.plugins p WHERE p.name OPERATOR(pg_catalog.=) ANY ($1) ORDER BY p.id FOR NO KEY UPDATE",
		"SELECT p.* FROM tego.plugins p WHERE p.name OPERATOR(pg_catalog.=) ANY ($1) ORDER BY p.id FOR UPDATE"
	};
	Oid			types[1] = {TEXTARRAYOID};
	Datum		values[1];
	Plugin	  **found;
	Plugin	  **out = palloc0(sizeof(Plugin *) * n);
	uint64		nfound;
	uint64		r;
	int			i;

	values[0] = tego_text_array(names, n);
	tego_exec(&plan_targets[lock], sql[lock], 1, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
	nfound = SPI_processed;
	found = palloc(sizeof(Plugin *) * Max(nfound, 1));
	for (r = 0; r < nfound; r++)
		found[r] = plugin_from_spi(r);

	for (i = 0; i < n; i++)
	{
		for (r = 0; r < nfound; r++)
			if (strcmp(found[r]->name, names[i]) == 0)
				out[i] = found[r];
		if (out[i] == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("plugin \"%s\" does not exist", names[i])));
	}
	return out;
}

/* Set up the tuplestore that a set-returning lifecycle function fills. */
static Output
output_begin(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Output		out;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	out.store = rsinfo->setResult;
	out.desc = rsinfo->setDesc;
	return out;
}

/*
 * Take the row that a "RETURNING p.*, payload" statement produced: add it
 * to the output and queue its event.  revision_of names the plugin whose
 * revision receives the event's seq (NULL for a removed plugin).
 */
static void
emit_change(Output *out, bool keep_revision)
{
	HeapTuple	tup = SPI_tuptable->vals[0];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	int			natts = out->desc->natts;
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	char	   *name;

	heap_deform_tuple(tup, desc, values, nulls);
	tuplestore_putvalues(out->store, out->desc, values, nulls);

	name = TextDatumGetCString(values[ATT_NAME - 1]);
	tego_event_queue(TEGO_TOPIC_PLUGINS, "plugin-state-changed", name,
					 DatumGetJsonbP(values[natts]),
					 keep_revision ? name : NULL);
}

/* ------------------------------------------------------------------------
 * Dependency graph
 * ------------------------------------------------------------------------
 */

/* Index of the plugin called name in plugins[0..n), or -1. */
static int
find_plugin(Plugin **plugins, int n, const char *name)
{
	int			i;

	for (i = 0; i < n; i++)
		if (strcmp(plugins[i]->name, name) == 0)
			return i;
	return -1;
}

/* binaryheap comparator: smaller id first (the heap keeps the "largest"). */
static int
heap_cmp_id(Datum a, Datum b, void *arg)
{
	Plugin	  **plugins = (Plugin **) arg;
	int64		ia = plugins[DatumGetInt32(a)]->id;
	int64		ib = plugins[DatumGetInt32(b)]->id;

	return (ia < ib) ? 1 : (ia > ib) ? -1 : 0;
}

/*
 * Load order of plugins[0..n): every plugin after the plugins of the set it
 * depends on, and otherwise by id.  Dependencies outside the set are
 * ignored.  Returns an array of indexes into plugins.
 */
static int *
load_order(Plugin **plugins, int n)
{
	int		   *order = palloc(sizeof(int) * Max(n, 1));
	int		   *pending = palloc0(sizeof(int) * Max(n, 1));
	List	  **dependents = palloc0(sizeof(List *) * Max(n, 1));
	bool	   *done = palloc0(sizeof(bool) * Max(n, 1));
	binaryheap *ready;
	int			count = 0;
	int			i,
				j;
	HTAB	   *index = NULL;

	/* large sets get a hash table from name to position */
	if (n > 32)
	{
		HASHCTL		ctl;

		ctl.keysize = TEGO_MAX_NAME_BYTES + 1;
		ctl.entrysize = ctl.keysize + sizeof(int);
		ctl.hcxt = CurrentMemoryContext;
		index = hash_create("tego plugin index", n, &ctl,
							HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		for (i = 0; i < n; i++)
		{
			char	   *entry = hash_search(index, plugins[i]->name,
											HASH_ENTER, NULL);

			memcpy(entry + ctl.keysize, &i, sizeof(int));
		}
	}

	for (i = 0; i < n; i++)
	{
		for (j = 0; j < plugins[i]->ndeps; j++)
		{
			int			d;

			if (index)
			{
				char	   *entry = hash_search(index, plugins[i]->deps[j],
												HASH_FIND, NULL);

				if (entry == NULL)
					continue;
				memcpy(&d, entry + TEGO_MAX_NAME_BYTES + 1, sizeof(int));
			}
			else if ((d = find_plugin(plugins, n, plugins[i]->deps[j])) < 0)
				continue;
			pending[i]++;
			dependents[d] = lappend_int(dependents[d], i);
		}
	}

	ready = binaryheap_allocate(Max(n, 1), heap_cmp_id, plugins);
	for (i = 0; i < n; i++)
		if (pending[i] == 0)
			binaryheap_add(ready, Int32GetDatum(i));
	while (!binaryheap_empty(ready))
	{
		ListCell   *lc;

		i = DatumGetInt32(binaryheap_remove_first(ready));
		order[count++] = i;
		done[i] = true;
		foreach(lc, dependents[i])
			if (--pending[lfirst_int(lc)] == 0)
				binaryheap_add(ready, Int32GetDatum(lfirst_int(lc)));
	}

	/* members of a cycle (only if the table was edited by hand): by id */
	while (count < n)
	{
		int			best = -1;

		for (i = 0; i < n; i++)
			if (!done[i] && (best < 0 || plugins[i]->id < plugins[best]->id))
				best = i;
		done[best] = true;
		order[count++] = best;
	}
	if (index)
		hash_destroy(index);
	return order;
}

/* Serialize changes of the dependency graph until the transaction ends. */
static void
lock_graph(void)
{
	Oid			relid = RangeVarGetRelid(makeRangeVar("tego", "plugins", -1),
										 NoLock, false);

	/*
	 * NB: ShareUpdateExclusiveLock conflicts with itself but not with the
	 * row-level writes of ordinary transitions, so only graph changes wait.
	 */
	LockRelationOid(relid, ShareUpdateExclusiveLock);
}

/*
 * Refuse to give plugin "name" the dependencies deps if that closes a
 * cycle, i.e. if "name" is reachable from one of them.  Reads the graph
 * with the latest snapshot; the caller holds the graph lock.
 */
static void
check_cycle(const char *name, char **deps, int ndeps)
{
	Plugin	  **all;
	int			n;
	int			i;
	int		   *parent;
	int		   *stack;
	int			top = 0;
	int			target_from = -1;
	int			start_dep = -1;

	tego_exec(&plan_graph,
			  "SELECT p.* FROM tego.plugins p ORDER BY p.id",
			  0, NULL, NULL, NULL, TEGO_SNAPSHOT_LATEST, 0);
	n = SPI_processed;
	all = palloc(sizeof(Plugin *) * Max(n, 1));
	for (i = 0; i < n; i++)
		all[i] = plugin_from_spi(i);

	/* depth-first search from each new dependency, recording parents */
	parent = palloc(sizeof(int) * Max(n, 1));
	stack = palloc(sizeof(int) * Max(n, 1));
	for (i = 0; i < n; i++)
		parent[i] = -2;			/* unvisited */

	for (i = 0; i < ndeps && target_from < 0; i++)
	{
		int			d = find_plugin(all, n, deps[i]);

		if (d < 0 || parent[d] != -2)
			continue;
		parent[d] = -1;
		stack[top++] = d;
		while (top > 0 && target_from < 0)
		{
			int			cur = stack[--top];
			int			j;

			for (j = 0; j < all[cur]->ndeps; j++)
			{
				int			next;

				if (strcmp(all[cur]->deps[j], name) == 0)
				{
					target_from = cur;
					start_dep = d;
					break;
				}
				next = find_plugin(all, n, all[cur]->deps[j]);
				if (next >= 0 && parent[next] == -2)
				{
					parent[next] = cur;
					stack[top++] = next;
				}
			}
		}
	}

	if (target_from >= 0)
	{
		StringInfoData path;
		List	   *chain = NIL;
		ListCell   *lc;
		int			cur;

		for (cur = target_from; cur >= 0; cur = parent[cur])
			chain = lcons_int(cur, chain);
		initStringInfo(&path);
		appendStringInfo(&path, "%s", name);
		foreach(lc, chain)
			appendStringInfo(&path, " -> %s", all[lfirst_int(lc)]->name);
		appendStringInfo(&path, " -> %s", name);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("plugin \"%s\" cannot depend on \"%s\"",
						name, all[start_dep]->name),
				 errdetail("That would create a dependency cycle: %s.",
						   path.data)));
	}
}

/*
 * Check that every dependency of plugin "name" outside the batch exists and
 * is enabled, locking those rows FOR SHARE so they cannot be disabled before
 * this transaction ends.  for_update: the plugin is already enabled and
 * tego.plugin_update() is changing its dependencies.
 */
static void
check_deps_enabled(const char *name, char **deps, int ndeps,
				   char **batch, int nbatch, bool for_update)
{
	char	  **outside = palloc(sizeof(char *) * Max(ndeps, 1));
	int			nout = 0;
	Oid			types[1] = {TEXTARRAYOID};
	Datum		values[1];
	int			i;

	for (i = 0; i < ndeps; i++)
	{
		int			j;
		bool		inbatch = false;

		for (j = 0; j < nbatch; j++)
			if (strcmp(deps[i], batch[j]) == 0)
				inbatch = true;
		if (!inbatch)
			outside[nout++] = deps[i];
	}
	if (nout == 0)
		return;

	values[0] = tego_text_array(outside, nout);
	tego_exec(&plan_deps_share,
			  "SELECT p.name, p.enabled FROM tego.plugins p "
			  "WHERE p.name OPERATOR(pg_catalog.=) ANY ($1) "
			  "ORDER BY p.id FOR SHARE",
			  1, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);

	for (i = 0; i < nout; i++)
	{
		uint64		r;
		int			status = 0; /* 0 missing, 1 disabled, 2 enabled */

		for (r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			char	   *dn = SPI_getvalue(SPI_tuptable->vals[r],
										  SPI_tuptable->tupdesc, 1);

			if (strcmp(dn, outside[i]) == 0)
				status = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[r],
													SPI_tuptable->tupdesc,
													2, &isnull)) ? 2 : 1;
		}
		if (status != 2 && for_update)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("enabled plugin \"%s\" cannot depend on \"%s\"",
							name, outside[i]),
					 errdetail(status == 0 ?
							   "Plugin \"%s\" does not exist." :
							   "Plugin \"%s\" is not enabled.", outside[i]),
					 errhint("Enable \"%s\" first.", outside[i])));
		if (status == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot enable plugin \"%s\"", name),
					 errdetail("It depends on plugin \"%s\", which does not exist.",
							   outside[i]),
					 errhint("Add plugin \"%s\" first.", outside[i])));
		if (status == 1)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot enable plugin \"%s\"", name),
					 errdetail("It depends on plugin \"%s\", which is not enabled.",
							   outside[i]),
					 errhint("Enable \"%s\" first, or enable both in one call.",
							 outside[i])));
	}
}

/*
 * Refuse to take the plugins in names[0..n) away ("disable" or "remove")
 * while an enabled plugin outside the batch depends on one of them.  Reads
 * with the latest snapshot, after the targets are locked.
 */
static void
check_no_enabled_dependents(const char *verb, char **names, int n)
{
	Oid			types[1] = {TEXTARRAYOID};
	Datum		values[1];
	int			i;

	values[0] = tego_text_array(names, n);
	tego_exec(&plan_dependents,
			  "SELECT p.* FROM tego.plugins p "
			  "WHERE p.enabled AND p.depends_on OPERATOR(pg_catalog.&&) $1 "
			  "AND NOT (p.name OPERATOR(pg_catalog.=) ANY ($1)) "
			  "ORDER BY p.id",
			  1, types, values, NULL, TEGO_SNAPSHOT_LATEST, 0);
	if (SPI_processed == 0)
		return;

	for (i = 0; i < n; i++)
	{
		StringInfoData list;
		uint64		r;
		int			found = 0;

		initStringInfo(&list);
		for (r = 0; r < SPI_processed; r++)
		{
			Plugin	   *d = plugin_from_spi(r);
			int			j;

			for (j = 0; j < d->ndeps; j++)
				if (strcmp(d->deps[j], names[i]) == 0)
				{
					appendStringInfo(&list, "%s\"%s\"", found ? ", " : "",
									 d->name);
					found++;
					break;
				}
		}
		if (found)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot %s plugin \"%s\"", verb, names[i]),
					 errdetail_plural("Enabled plugin %s depends on it.",
									  "Enabled plugins %s depend on it.",
									  found, list.data),
					 errhint("Disable the dependent plugins first, or include them in the same call.")));
	}
}

/*
 * Refuse a package name that another plugin already uses (read with the
 * latest snapshot; the unique index catches a concurrent insert).
 */
static void
check_package_free(const char *package_name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(package_name);
	tego_exec(&plan_package_taken,
			  "SELECT p.name FROM tego.plugins p "
			  "WHERE p.package_name OPERATOR(pg_catalog.=) $1",
			  1, types, values, NULL, TEGO_SNAPSHOT_LATEST, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("package \"%s\" is already registered", package_name),
				 errdetail("Plugin \"%s\" uses it.",
						   SPI_getvalue(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1))));
}

/* ------------------------------------------------------------------------
 * Transitions
 * ------------------------------------------------------------------------
 */

/*
 * Set enabled/installed of plugin p, add the row to the output and queue
 * the event.
 */
static void
set_state(Output *out, Plugin *p, const char *action, bool enabled,
		  bool installed)
{
	Oid			types[5] = {INT8OID, BOOLOID, BOOLOID, TEXTOID, TEXTOID};
	Datum		values[5];

	values[0] = Int64GetDatum(p->id);
	values[1] = BoolGetDatum(enabled);
	values[2] = BoolGetDatum(installed);
	values[3] = CStringGetTextDatum(action);
	values[4] = CStringGetTextDatum(p->state);
	tego_exec(&plan_set_state,
			  "UPDATE tego.plugins p SET enabled = $2, installed = $3, "
			  "updated_at = pg_catalog.now(), revision = NULL "
			  "WHERE p.id OPERATOR(pg_catalog.=) $1 "
			  "RETURNING p.*, " PAYLOAD_SQL("$4", "$5", "p.state"),
			  5, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
	if (SPI_processed != 1)
		elog(ERROR, "plugin \"%s\" vanished while locked", p->name);
	emit_change(out, true);
}

/*
 * True while tego.plugins still has the rule of versions before 0.3.0 that
 * an enabled plugin is installed: this library runs against a schema that
 * ALTER EXTENSION tego UPDATE has not brought to 0.3.0 yet, and enabling
 * installs, as it did then.
 */
static bool
enable_installs(void)
{
	Oid			relid = RangeVarGetRelid(makeRangeVar("tego", "plugins", -1),
										 NoLock, false);

	return OidIsValid(get_relation_constraint_oid(relid,
												  "plugins_enabled_needs_installed",
												  true));
}

/* Connect to SPI for a lifecycle function. */
static void
spi_begin(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/*
 * tego.plugin_add(name, package_name, version, options, built_in,
 *				   sub_view, depends_on) RETURNS SETOF tego.plugins
 */
Datum
plugin_add(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *package_name = NULL;
	char	   *version = NULL;
	Jsonb	   *options;
	char	  **deps;
	int			ndeps;
	Output		out;
	Oid			types[7] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, BOOLOID,
	BOOLOID, TEXTARRAYOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Oid			ltypes[1] = {TEXTOID};
	Datum		lvalues[1];

	require_arg(fcinfo, 0, "plugin name");
	require_arg(fcinfo, 3, "options");
	require_arg(fcinfo, 4, "built_in");
	require_arg(fcinfo, 5, "sub_view");
	require_arg(fcinfo, 6, "depends_on");

	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	check_name(name, "plugin");
	if (!PG_ARGISNULL(1))
	{
		package_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
		check_name(package_name, "package");
	}
	if (!PG_ARGISNULL(2))
	{
		version = text_to_cstring(PG_GETARG_TEXT_PP(2));
		check_version(version);
	}
	options = PG_GETARG_JSONB_P(3);
	check_options(options);
	deps = tego_deconstruct_text_array(PG_GETARG_ARRAYTYPE_P(6), &ndeps,
									   "depends_on");
	check_deps(name, deps, ndeps);

	out = output_begin(fcinfo);
	spi_begin();

	if (ndeps > 0)
	{
		lock_graph();
		check_cycle(name, deps, ndeps);
	}

	lvalues[0] = CStringGetTextDatum(name);
	tego_exec(&plan_name_taken,
			  "SELECT 1 FROM tego.plugins p WHERE p.name OPERATOR(pg_catalog.=) $1",
			  1, ltypes, lvalues, NULL, TEGO_SNAPSHOT_LATEST, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("plugin \"%s\" already exists", name)));
	if (package_name)
		check_package_free(package_name);

	values[0] = CStringGetTextDatum(name);
	if (package_name)
		values[1] = CStringGetTextDatum(package_name);
	else
		nulls[1] = 'n';
	if (version)
		values[2] = CStringGetTextDatum(version);
	else
		nulls[2] = 'n';
	values[3] = JsonbPGetDatum(options);
	values[4] = PG_GETARG_DATUM(4);
	values[5] = PG_GETARG_DATUM(5);
	values[6] = tego_text_array(deps, ndeps);
	tego_exec(&plan_insert,
			  "INSERT INTO tego.plugins AS p "
			  "(name, package_name, version, options, built_in, sub_view, depends_on) "
			  "VALUES ($1, $2, $3, $4, $5, $6, $7) "
			  "RETURNING p.*, " PAYLOAD_SQL("'add'", "NULL::text", "p.state"),
			  7, types, values, nulls, TEGO_SNAPSHOT_WRITE, 0);
	emit_change(&out, true);

	SPI_finish();
	return (Datum) 0;
}

/*
 * tego.plugin_install(VARIADIC names text[]) RETURNS SETOF tego.plugins
 *
 * Marks plugins installed: the application calls it once their install()
 * hook has run.  Enabled or not, either is fine.
 */
Datum
plugin_install(PG_FUNCTION_ARGS)
{
	int			n;
	char	  **names = batch_names(fcinfo, 0, &n);
	Output		out = output_begin(fcinfo);
	Plugin	  **targets;
	int		   *order;
	int			i;

	spi_begin();
	targets = load_targets(names, n, LOCK_NO_KEY_UPDATE);
	order = load_order(targets, n);
	for (i = 0; i < n; i++)
	{
		Plugin	   *p = targets[order[i]];

		if (!p->installed)
			set_state(&out, p, "install", p->enabled, true);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * tego.plugin_uninstall(VARIADIC names text[]) RETURNS SETOF tego.plugins
 *
 * Marks plugins not installed, leaving enabled as it is: their install()
 * hook has not run, or must run again (TachyBase writes this after an
 * install() that failed).  Nothing depends on installed, so no rule can
 * refuse it; built-in plugins too may be marked.
 */
Datum
plugin_uninstall(PG_FUNCTION_ARGS)
{
	int			n;
	char	  **names = batch_names(fcinfo, 0, &n);
	Output		out = output_begin(fcinfo);
	Plugin	  **targets;
	int		   *order;
	int			i;

	spi_begin();
	targets = load_targets(names, n, LOCK_NO_KEY_UPDATE);
	order = load_order(targets, n);
	/* dependents first, as for disable */
	for (i = n - 1; i >= 0; i--)
	{
		Plugin	   *p = targets[order[i]];

		if (p->installed)
			set_state(&out, p, "uninstall", p->enabled, false);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * tego.plugin_enable(VARIADIC names text[]) RETURNS SETOF tego.plugins
 *
 * Leaves installed as it is: a plugin enabled before its install() hook
 * has run is enabled with its install pending, and the application marks
 * it installed (tego.plugin_install()) once the hook has run, as
 * TachyBase's "pm enable" does.  (Before 0.3.0 enabling installed.)
 */
Datum
plugin_enable(PG_FUNCTION_ARGS)
{
	int			n;
	char	  **names = batch_names(fcinfo, 0, &n);
	Output		out = output_begin(fcinfo);
	Plugin	  **targets;
	int		   *order;
	int			i;
	bool		installs = enable_installs();

	spi_begin();
	targets = load_targets(names, n, LOCK_NO_KEY_UPDATE);
	order = load_order(targets, n);
	for (i = 0; i < n; i++)
	{
		Plugin	   *p = targets[order[i]];

		if (!p->enabled)
			check_deps_enabled(p->name, p->deps, p->ndeps, names, n, false);
	}
	for (i = 0; i < n; i++)
	{
		Plugin	   *p = targets[order[i]];

		if (!p->enabled)
			set_state(&out, p, "enable", true, p->installed || installs);
	}
	SPI_finish();
	return (Datum) 0;
}

/* tego.plugin_disable(VARIADIC names text[]) RETURNS SETOF tego.plugins */
Datum
plugin_disable(PG_FUNCTION_ARGS)
{
	int			n;
	char	  **names = batch_names(fcinfo, 0, &n);
	Output		out = output_begin(fcinfo);
	Plugin	  **targets;
	int		   *order;
	char	  **changing;
	int			nchanging = 0;
	int			i;

	spi_begin();
	targets = load_targets(names, n, LOCK_NO_KEY_UPDATE);
	order = load_order(targets, n);
	changing = palloc(sizeof(char *) * n);
	for (i = 0; i < n; i++)
	{
		Plugin	   *p = targets[order[i]];

		if (!p->enabled)
			continue;
		if (p->built_in)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot disable built-in plugin \"%s\"", p->name)));
		changing[nchanging++] = p->name;
	}
	if (nchanging > 0)
		check_no_enabled_dependents("disable", changing, nchanging);

	/* dependents first */
	for (i = n - 1; i >= 0; i--)
	{
		Plugin	   *p = targets[order[i]];

		if (p->enabled)
			set_state(&out, p, "disable", false, p->installed);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * tego.plugin_remove(names text[], force boolean DEFAULT false)
 *		RETURNS SETOF tego.plugins
 *
 * Returns the removed rows.  An enabled plugin is removed only with force.
 */
Datum
plugin_remove(PG_FUNCTION_ARGS)
{
	int			n;
	char	  **names;
	bool		force;
	Output		out;
	Plugin	  **targets;
	int		   *order;
	int			i;

	names = batch_names(fcinfo, 0, &n);
	require_arg(fcinfo, 1, "force");
	force = PG_GETARG_BOOL(1);
	out = output_begin(fcinfo);

	spi_begin();
	targets = load_targets(names, n, LOCK_UPDATE);
	order = load_order(targets, n);
	for (i = 0; i < n; i++)
	{
		Plugin	   *p = targets[order[i]];

		if (p->built_in)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot remove built-in plugin \"%s\"", p->name)));
		if (p->enabled && !force)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot remove enabled plugin \"%s\"", p->name),
					 errhint("Disable it first, or pass force => true.")));
	}
	check_no_enabled_dependents("remove", names, n);

	/* dependents first */
	for (i = n - 1; i >= 0; i--)
	{
		Plugin	   *p = targets[order[i]];
		Oid			types[1] = {INT8OID};
		Datum		values[1];

		values[0] = Int64GetDatum(p->id);
		tego_exec(&plan_delete,
				  "DELETE FROM tego.plugins p WHERE p.id OPERATOR(pg_catalog.=) $1 "
				  "RETURNING p.*, " PAYLOAD_SQL("'remove'", "p.state", "NULL::text"),
				  1, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
		if (SPI_processed != 1)
			elog(ERROR, "plugin \"%s\" vanished while locked", p->name);
		emit_change(&out, false);
	}
	SPI_finish();
	return (Datum) 0;
}

/* tego.plugin_upgrade(name text, version text) RETURNS SETOF tego.plugins */
Datum
plugin_upgrade(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *version;
	Output		out;
	Plugin	  **targets;

	require_arg(fcinfo, 0, "plugin name");
	require_arg(fcinfo, 1, "version");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	version = text_to_cstring(PG_GETARG_TEXT_PP(1));
	check_name(name, "plugin");
	check_version(version);
	out = output_begin(fcinfo);

	spi_begin();
	targets = load_targets(&name, 1, LOCK_NO_KEY_UPDATE);
	if (targets[0]->version == NULL || strcmp(targets[0]->version, version) != 0)
	{
		Oid			types[2] = {INT8OID, TEXTOID};
		Datum		values[2];

		values[0] = Int64GetDatum(targets[0]->id);
		values[1] = CStringGetTextDatum(version);
		tego_exec(&plan_upgrade,
				  "UPDATE tego.plugins p SET version = $2, "
				  "updated_at = pg_catalog.now(), revision = NULL "
				  "WHERE p.id OPERATOR(pg_catalog.=) $1 "
				  "RETURNING p.*, " PAYLOAD_SQL("'upgrade'", "p.state", "p.state"),
				  2, types, values, NULL, TEGO_SNAPSHOT_WRITE, 0);
		emit_change(&out, true);
	}
	SPI_finish();
	return (Datum) 0;
}

/* Fields of tego.plugin_update()'s changes object. */
typedef struct Changes
{
	char	   *package_name;
	bool		package_name_set;
	char	   *version;
	bool		version_set;
	Jsonb	   *options;
	int			sub_view;		/* -1 unchanged, else 0/1 */
	int			built_in;		/* likewise */
	char	  **deps;
	int			ndeps;
	bool		deps_set;
} Changes;

/* Raise the error for a changes field of the wrong JSON type. */
static void
bad_field_type(const char *field, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("field \"%s\" must be a JSON %s", field, expected)));
}

/* Parse and check the changes object of tego.plugin_update(). */
static Changes
parse_changes(const char *name, Jsonb *changes)
{
	Changes		c;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *field = NULL;

	memset(&c, 0, sizeof(c));
	c.sub_view = -1;
	c.built_in = -1;

	if (!JB_ROOT_IS_OBJECT(changes))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("changes must be a JSON object"),
				 errdetail("The value given is a JSON %s.",
						   jsonb_type_name(changes))));

	it = JsonbIteratorInit(&changes->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			field = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;

		if (strcmp(field, "package_name") == 0)
		{
			c.package_name_set = true;
			if (v.type == jbvString)
			{
				c.package_name = pnstrdup(v.val.string.val, v.val.string.len);
				check_name(c.package_name, "package");
			}
			else if (v.type != jbvNull)
				bad_field_type(field, "string or null");
		}
		else if (strcmp(field, "version") == 0)
		{
			c.version_set = true;
			if (v.type == jbvString)
			{
				c.version = pnstrdup(v.val.string.val, v.val.string.len);
				check_version(c.version);
			}
			else if (v.type != jbvNull)
				bad_field_type(field, "string or null");
		}
		else if (strcmp(field, "options") == 0)
		{
			if (v.type != jbvBinary ||
				!JsonContainerIsObject(v.val.binary.data))
				bad_field_type(field, "object");
			c.options = JsonbValueToJsonb(&v);
		}
		else if (strcmp(field, "sub_view") == 0 || strcmp(field, "built_in") == 0)
		{
			if (v.type != jbvBool)
				bad_field_type(field, "boolean");
			if (field[0] == 's')
				c.sub_view = v.val.boolean ? 1 : 0;
			else
				c.built_in = v.val.boolean ? 1 : 0;
		}
		else if (strcmp(field, "depends_on") == 0)
		{
			JsonbIterator *ait;
			JsonbValue	e;
			JsonbIteratorToken atok;
			List	   *names = NIL;
			ListCell   *lc;
			int			i = 0;

			if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
				bad_field_type(field, "array of strings");
			ait = JsonbIteratorInit(v.val.binary.data);
			while ((atok = JsonbIteratorNext(&ait, &e, true)) != WJB_DONE)
			{
				if (atok != WJB_ELEM)
					continue;
				if (e.type != jbvString)
					bad_field_type(field, "array of strings");
				names = lappend(names, pnstrdup(e.val.string.val,
												e.val.string.len));
			}
			c.deps_set = true;
			c.ndeps = list_length(names);
			c.deps = palloc(sizeof(char *) * Max(c.ndeps, 1));
			foreach(lc, names)
				c.deps[i++] = lfirst(lc);
			check_deps(name, c.deps, c.ndeps);
		}
		else if (strcmp(field, "enabled") == 0 || strcmp(field, "installed") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot change \"%s\" with tego.plugin_update()", field),
					 errhint("Use tego.plugin_install(), tego.plugin_uninstall(), tego.plugin_enable() or tego.plugin_disable().")));
		else if (strcmp(field, "id") == 0 || strcmp(field, "name") == 0 ||
				 strcmp(field, "state") == 0 || strcmp(field, "revision") == 0 ||
				 strcmp(field, "created_at") == 0 ||
				 strcmp(field, "updated_at") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot change \"%s\" of a plugin", field)));
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown plugin field \"%s\"", field),
					 errhint("Changeable fields are package_name, version, options, sub_view, built_in and depends_on.")));
	}
	return c;
}

/* True if the two name lists hold the same names in the same order. */
static bool
same_names(char **a, int na, char **b, int nb)
{
	int			i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

/*
 * Raise an error unless the real caller (not the function's owner) is a
 * superuser or the owner of the extension: only they may mark a plugin
 * built-in or take the mark away, since it is what protects a plugin from
 * being disabled or removed.
 */
static void
check_may_change_built_in(const char *name)
{
	Oid			caller = GetOuterUserId();

	/*
	 * NB: the lifecycle functions are SECURITY DEFINER functions of the
	 * extension, so the current user is the extension's owner.
	 */
	if (superuser_arg(caller) || has_privs_of_role(caller, GetUserId()))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to change built_in of plugin \"%s\"", name),
			 errdetail("Only a superuser or the owner of extension tego can mark a plugin built-in or unmark it.")));
}

/*
 * tego.plugin_update(name text, changes jsonb,
 *					  expected_revision bigint DEFAULT NULL)
 *		RETURNS SETOF tego.plugins
 *
 * Changes the descriptive fields of a plugin.  With expected_revision, the
 * change applies only if the plugin's revision is still that one.
 */
Datum
plugin_update(PG_FUNCTION_ARGS)
{
	char	   *name;
	Changes		c;
	Output		out;
	Plugin	   *p;
	Oid			types[8] = {INT8OID, TEXTOID, TEXTOID, JSONBOID, BOOLOID,
	BOOLOID, TEXTARRAYOID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	require_arg(fcinfo, 0, "plugin name");
	require_arg(fcinfo, 1, "changes");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	check_name(name, "plugin");
	c = parse_changes(name, PG_GETARG_JSONB_P(1));
	out = output_begin(fcinfo);

	spi_begin();
	p = load_targets(&name, 1, LOCK_NO_KEY_UPDATE)[0];

	if (!PG_ARGISNULL(2))
	{
		int64		expected = PG_GETARG_INT64(2);

		if (!p->has_revision)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("plugin \"%s\" has changed since revision " INT64_FORMAT,
							name, expected),
					 errdetail("Its latest change is not committed yet.")));
		if (p->revision != expected)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("plugin \"%s\" has changed since revision " INT64_FORMAT,
							name, expected),
					 errdetail("Its current revision is " INT64_FORMAT ".",
							   p->revision),
					 errhint("Read the plugin again and retry with its current revision.")));
	}

	if (c.built_in >= 0 && (c.built_in == 1) != p->built_in)
		check_may_change_built_in(name);

	if (c.package_name_set && c.package_name &&
		(p->package_name == NULL || strcmp(p->package_name, c.package_name) != 0))
		check_package_free(c.package_name);

	if (c.deps_set && !same_names(c.deps, c.ndeps, p->deps, p->ndeps))
	{
		lock_graph();
		check_cycle(name, c.deps, c.ndeps);
		if (p->enabled)
			check_deps_enabled(name, c.deps, c.ndeps, NULL, 0, true);
	}

	values[0] = Int64GetDatum(p->id);
	if (c.package_name_set ? c.package_name != NULL : p->package_name != NULL)
		values[1] = CStringGetTextDatum(c.package_name_set ? c.package_name : p->package_name);
	else
		nulls[1] = 'n';
	if (c.version_set ? c.version != NULL : p->version != NULL)
		values[2] = CStringGetTextDatum(c.version_set ? c.version : p->version);
	else
		nulls[2] = 'n';
	values[3] = JsonbPGetDatum(c.options ? c.options : p->options);
	values[4] = BoolGetDatum(c.sub_view >= 0 ? c.sub_view == 1 : p->sub_view);
	values[5] = BoolGetDatum(c.built_in >= 0 ? c.built_in == 1 : p->built_in);
	values[6] = c.deps_set ? tego_text_array(c.deps, c.ndeps) :
		tego_text_array(p->deps, p->ndeps);
	values[7] = CStringGetTextDatum("update");

	/* the WHERE clause makes a change that changes nothing a no-op */
	tego_exec(&plan_update,
			  "UPDATE tego.plugins p SET package_name = $2, version = $3, "
			  "options = $4, sub_view = $5, built_in = $6, depends_on = $7, "
			  "updated_at = pg_catalog.now(), revision = NULL "
			  "WHERE p.id OPERATOR(pg_catalog.=) $1 AND "
			  "(p.package_name, p.version, p.options, p.sub_view, p.built_in, p.depends_on) "
			  "IS DISTINCT FROM ($2, $3, $4, $5, $6, $7) "
			  "RETURNING p.*, " PAYLOAD_SQL("$8", "p.state", "p.state"),
			  8, types, values, nulls, TEGO_SNAPSHOT_WRITE, 0);
	if (SPI_processed == 1)
		emit_change(&out, true);

	SPI_finish();
	return (Datum) 0;
}

/* Order plugins by id, for load_order(). */
static int
plugin_id_cmp(const void *a, const void *b)
{
	int64		x = (*(Plugin *const *) a)->id;
	int64		y = (*(Plugin *const *) b)->id;

	return (x > y) - (x < y);
}

/*
 * plugin_list from the registry mirror: the same rows in the same order as
 * from the table.  False when the table must be read instead.
 */
static bool
list_from_mirror(Output out, bool enabled_only)
{
	Oid			rowtype = tego_plugins_rowtype();
	Datum	   *rows;
	int			n;
	int			i;
	TupleDesc	desc;
	Plugin	  **all;
	HeapTupleData *tuples;
	int		   *order;

	if (!tego_mirror_list(rowtype, &rows, &n))
		return false;
	desc = lookup_rowtype_tupdesc_copy(rowtype, -1);
	all = palloc(sizeof(Plugin *) * Max(n, 1));
	tuples = palloc0(sizeof(HeapTupleData) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTupleHeader hdr = DatumGetHeapTupleHeader(rows[i]);

		tuples[i].t_len = HeapTupleHeaderGetDatumLength(hdr);
		tuples[i].t_data = hdr;
		ItemPointerSetInvalid(&tuples[i].t_self);
		tuples[i].t_tableOid = InvalidOid;
		all[i] = plugin_from_tuple(&tuples[i], desc);
		all[i]->tuple_index = i;
	}
	qsort(all, n, sizeof(Plugin *), plugin_id_cmp);
	order = load_order(all, n);
	for (i = 0; i < n; i++)
	{
		Plugin	   *p = all[order[i]];
		Datum		values[NUM_PLUGIN_ATTS];
		bool		nulls[NUM_PLUGIN_ATTS];

		if (enabled_only && !p->enabled)
			continue;
		heap_deform_tuple(&tuples[p->tuple_index], desc, values, nulls);
		tuplestore_putvalues(out.store, out.desc, values, nulls);
	}
	return true;
}

/* tego.plugin_get(name text) RETURNS tego.plugins */
Datum
plugin_get(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	Datum		result;

	require_arg(fcinfo, 0, "plugin name");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	check_name(name, "plugin");

	if (tego_registry_source == TEGO_REGISTRY_MEMORY)
	{
		bool		found;

		if (tego_mirror_get(name, tego_plugins_rowtype(), &result, &found))
		{
			if (!found)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("plugin \"%s\" does not exist", name)));
			PG_RETURN_DATUM(result);
		}
	}

	spi_begin();
	values[0] = CStringGetTextDatum(name);
	tego_exec(&plan_get,
			  "SELECT p.* FROM tego.plugins p WHERE p.name OPERATOR(pg_catalog.=) $1",
			  1, types, values, NULL, TEGO_SNAPSHOT_READ_ONLY, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("plugin \"%s\" does not exist", name)));
	result = PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc));
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * tego.plugin_list(enabled_only boolean DEFAULT false)
 *		RETURNS SETOF tego.plugins
 *
 * All plugins (or the enabled ones) in load order: dependencies first,
 * then by id.
 */
Datum
plugin_list(PG_FUNCTION_ARGS)
{
	bool		enabled_only;
	Output		out;
	Plugin	  **all;
	int		   *order;
	int			n;
	int			i;

	require_arg(fcinfo, 0, "enabled_only");
	enabled_only = PG_GETARG_BOOL(0);
	out = output_begin(fcinfo);

	if (tego_registry_source == TEGO_REGISTRY_MEMORY &&
		list_from_mirror(out, enabled_only))
		return (Datum) 0;

	spi_begin();
	tego_exec(&plan_all, "SELECT p.* FROM tego.plugins p ORDER BY p.id",
			  0, NULL, NULL, NULL, TEGO_SNAPSHOT_READ_ONLY, 0);
	n = SPI_processed;
	all = palloc(sizeof(Plugin *) * Max(n, 1));
	for (i = 0; i < n; i++)
		all[i] = plugin_from_spi(i);
	order = load_order(all, n);

	for (i = 0; i < n; i++)
	{
		int			r = order[i];
		Datum		values[NUM_PLUGIN_ATTS];
		bool		nulls[NUM_PLUGIN_ATTS];

		if (enabled_only && !all[r]->enabled)
			continue;
		heap_deform_tuple(SPI_tuptable->vals[r], SPI_tuptable->tupdesc,
						  values, nulls);
		tuplestore_putvalues(out.store, out.desc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * tego._read_plugin_source(source regclass, by_id boolean) RETURNS jsonb
 *
 * The rows of a TachyBase applicationPlugins table (or view) as a JSON
 * array of objects with its columns, ordered by id (by_id) or name, read
 * with the rights of the real caller.  NB: import_plugins() runs as the
 * extension's owner, and reading the source evaluates whatever the source
 * holds (a view's expressions, a column type's cast to json): that is the
 * caller's code, and it must run as the caller, never as the owner.  Only
 * the plain values come back inward.
 */
Datum
read_plugin_source(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *relname;
	char	   *nspname;
	StringInfoData sql;
	Oid			save_userid;
	int			save_sec_context;
	Datum		result;
	bool		isnull;

	require_arg(fcinfo, 0, "source");
	require_arg(fcinfo, 1, "by_id");
	relid = PG_GETARG_OID(0);
	relname = get_rel_name(relid);
	nspname = relname ? get_namespace_name(get_rel_namespace(relid)) : NULL;
	if (relname == NULL || nspname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
					 "'name', s.name, 'packageName', s.\"packageName\","
					 " 'version', s.version, 'enabled', s.enabled,"
					 " 'installed', s.installed, 'builtIn', s.\"builtIn\","
					 " 'options', s.options, 'subView', s.\"subView\") ORDER BY %s)"
					 " FROM %s s",
					 PG_GETARG_BOOL(1) ? "s.id, s.name" : "s.name",
					 quote_qualified_identifier(nspname, relname));

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(GetOuterUserId(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(sql.data, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read %s", sql.data);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						   &isnull);
	if (!isnull)
		result = SPI_datumTransfer(result, false, -1);
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);

	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
