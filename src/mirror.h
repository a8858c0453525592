/*-------------------------------------------------------------------------
 *
 * mirror.h
 *	  The memory-backed registry (mirror.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TEGO_MIRROR_H
#define TEGO_MIRROR_H

#include "postgres.h"

#include "storage/lwlock.h"

/* tego.registry_source */
typedef enum TegoRegistrySource
{
	TEGO_REGISTRY_TABLE,
	TEGO_REGISTRY_MEMORY
} TegoRegistrySource;

extern int	tego_max_plugins;
extern int	tego_registry_source;

extern Size tego_mirror_shmem_size(void);
extern void tego_mirror_shmem_init(LWLock *lock);
extern bool tego_mirror_wanted(void);
extern void tego_mirror_queue(const char *name, int64 revision, Datum row,
							  bool isnull);
extern void tego_mirror_xact_end(bool commit);
extern bool tego_mirror_get(const char *name, Oid rowtype, Datum *row,
							bool *found);
extern bool tego_mirror_list(Oid rowtype, Datum **rows, int *nrows);
extern Oid	tego_plugins_rowtype(void);

#endif							/* TEGO_MIRROR_H */
