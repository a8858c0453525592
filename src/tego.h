/*-------------------------------------------------------------------------
 *
 * tego.h
 *	  Shared declarations of the tego extension: settings, the SPI helpers,
 *	  the event queue and the custom SQLSTATEs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TEGO_H
#define TEGO_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/jsonb.h"

/* SQLSTATE raised when a client asks for events that were compacted away. */
#define ERRCODE_TEGO_EVENTS_COMPACTED	MAKE_SQLSTATE('T','G','0','0','1')

/* Longest plugin or package name, as npm allows. */
#define TEGO_MAX_NAME_BYTES		214

/* Longest version string. */
#define TEGO_MAX_VERSION_BYTES	256

/* Largest options object of a plugin (as jsonb), and longest depends_on. */
#define TEGO_MAX_OPTIONS_BYTES	(1024 * 1024)
#define TEGO_MAX_DEPENDENCIES	1000

/* Longest topic: a NOTIFY channel name is at most NAMEDATALEN - 1 bytes. */
#define TEGO_MAX_TOPIC_BYTES	(NAMEDATALEN - 1)

/*
 * Largest NOTIFY payload we send.  PostgreSQL refuses payloads of 8000
 * bytes or more; larger event payloads are shrunk and flagged.
 */
#define TEGO_MAX_NOTIFY_BYTES	7900

/* Built-in topics. */
#define TEGO_TOPIC_PLUGINS		"tego_plugins"
#define TEGO_TOPIC_APPS			"tego_apps"

/* settings (tego.c) */
extern char *tego_client_id;
extern int	tego_event_retention;
extern int	tego_max_publish_bytes;

/* How tego_exec() runs a statement. */
typedef enum TegoSnapshot
{
	TEGO_SNAPSHOT_WRITE,		/* read-write, with the usual snapshot */
	TEGO_SNAPSHOT_READ_ONLY,	/* read-only, with the caller's snapshot */
	TEGO_SNAPSHOT_LATEST		/* read-write, seeing every commit so far */
} TegoSnapshot;

/* spi_util.c */
extern int	tego_plan_options;
extern SPIPlanPtr tego_prepare(SPIPlanPtr *slot, const char *sql,
							   int nargs, Oid *argtypes);
extern int	tego_exec(SPIPlanPtr *slot, const char *sql, int nargs,
					  Oid *argtypes, Datum *values, const char *nulls,
					  TegoSnapshot snapshot, long count);
extern Datum tego_text_array(char **items, int n);
extern char **tego_deconstruct_text_array(ArrayType *arr, int *n,
										  const char *what);

/*
 * The lock that orders a database's event commits (events.c): an advisory
 * lock tag (database, TEGO_EVENTS_LOCK_KEY, 0) whose fourth field no SQL
 * advisory lock function uses (they use 1 and 2), so no role can take it
 * from SQL.  pg_locks shows it as locktype advisory, objsubid 29799.
 */
#define TEGO_EVENTS_LOCK_KEY	0x7465676F	/* "tego" */
#define TEGO_EVENTS_LOCK_FIELD4	0x7467

/* events.c */
extern void tego_events_init(void);
extern void tego_events_lock(void);
extern void tego_events_unlock(void);
extern void tego_event_queue(const char *topic, const char *event,
							 const char *key, Jsonb *payload,
							 const char *revision_of);
extern char *tego_publisher_id(void);
extern char *tego_notify_text(int64 seq, const char *topic, const char *event,
							  const char *key, Jsonb *payload);

#endif							/* TEGO_H */
