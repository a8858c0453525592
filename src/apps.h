/*-------------------------------------------------------------------------
 *
 * apps.h
 *	  The application status store (apps.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TEGO_APPS_H
#define TEGO_APPS_H

#include "postgres.h"

#include "storage/lwlock.h"

/* settings (apps.c; defined in tego.c at preload) */
extern int	tego_max_apps;
extern int	tego_max_message_bytes;

extern void tego_apps_define_settings(void);
extern Size tego_apps_shmem_size(void);
extern void tego_apps_shmem_init(LWLock *lock);
extern PGDLLEXPORT void tego_notifier_main(Datum main_arg);
extern void tego_apps_usage(int *apps, int *max_apps, int *notifiers,
							int *max_notifiers);

#endif							/* TEGO_APPS_H */
