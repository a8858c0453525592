/*-------------------------------------------------------------------------
 *
 * tego.c
 *	  Entry point of the tego extension: module magic, settings and the
 *	  registration of the per-backend machinery (transaction callbacks
 *	  that turn queued state changes into ordered events at commit).
 *
 *	  Everything in this file works whether or not tego is listed in
 *	  shared_preload_libraries: the library is loaded into a backend the
 *	  first time one of its functions is called there.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "tego.h"

PG_MODULE_MAGIC;

/* tego.client_id: publisher id put into published messages. */
char	   *tego_client_id = NULL;

/* tego.event_retention: seconds of events kept by compaction (0 = all). */
int			tego_event_retention = 7 * 24 * 60 * 60;

void		_PG_init(void);

/* Define the settings and install the transaction callbacks. */
void
_PG_init(void)
{
	DefineCustomStringVariable("tego.client_id",
							   "Publisher id written into messages sent with tego.publish().",
							   "Empty means application_name and the backend's process id.",
							   &tego_client_id,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("tego.event_retention",
							"How long tego.compact_events() keeps events.",
							"Zero keeps every event.  The newest event is always kept.",
							&tego_event_retention,
							7 * 24 * 60 * 60,
							0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("tego");

	tego_events_init();
}
