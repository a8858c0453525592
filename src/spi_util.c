/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *	  Small helpers around SPI: saved plans prepared on first use, plan
 *	  execution with an optional fresh snapshot, and text[] conversions.
 *
 *	  Rule checks that must see every committed row (dependents of a plugin
 *	  being disabled, the dependency graph when looking for cycles) run
 *	  with the latest snapshot, so that they are correct in REPEATABLE READ
 *	  and SERIALIZABLE transactions too, whose transaction snapshot may
 *	  predate a concurrent commit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "tego.h"

/*
 * Cursor options of the saved plans.
 *
 * NB: in a backend the plans are generic (CURSOR_OPT_GENERIC_PLAN): the
 * lifecycle statements are small key lookups whose best plan does not
 * depend on the values, and left to itself the plan cache re-plans
 * "name = ANY ($1)" on every call.  The scheduler sets tego_plan_options
 * to 0: its statements scan job tables that grow from empty, where a plan
 * made once would stay a sequential scan.
 */
int			tego_plan_options = CURSOR_OPT_GENERIC_PLAN;

/* Return the saved plan in *slot, preparing and keeping it on first use. */
SPIPlanPtr
tego_prepare(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes,
											  tego_plan_options);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
	}
	return *slot;
}

/*
 * Execute the saved plan in *slot (prepared from sql on first use).
 * TEGO_SNAPSHOT_LATEST makes the statement read the newest committed data
 * instead of the transaction snapshot.  Returns the SPI result code.
 */
int
tego_exec(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes,
		  Datum *values, const char *nulls, TegoSnapshot snapshot, long count)
{
	SPIPlanPtr	plan = tego_prepare(slot, sql, nargs, argtypes);
	int			rc;

	if (snapshot == TEGO_SNAPSHOT_LATEST)
		rc = SPI_execute_snapshot(plan, values, nulls,
								  GetLatestSnapshot(), InvalidSnapshot,
								  false, false, count);
	else
		rc = SPI_execute_plan(plan, values, nulls,
							  snapshot == TEGO_SNAPSHOT_READ_ONLY, count);

	if (rc < 0)
		elog(ERROR, "SPI execution failed for \"%s\": %s",
			 sql, SPI_result_code_string(rc));
	return rc;
}

/* Build a text[] datum from n C strings. */
Datum
tego_text_array(char **items, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/*
 * Deconstruct a one-dimensional text[] into C strings.  NULL elements and
 * arrays of more than one dimension are refused; "what" names the argument
 * in the error message.
 */
char	  **
tego_deconstruct_text_array(ArrayType *arr, int *n, const char *what)
{
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	char	  **out;
	int			i;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &nelems);
	out = palloc(sizeof(char *) * Max(nelems, 1));
	for (i = 0; i < nelems; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain null elements", what)));
		out[i] = TextDatumGetCString(elems[i]);
	}
	*n = nelems;
	return out;
}
