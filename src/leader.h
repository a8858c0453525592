/*-------------------------------------------------------------------------
 *
 * leader.h
 *	  Fencing with an outside leader check (see leader.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TEGO_LEADER_H
#define TEGO_LEADER_H

#include "utils/guc.h"
#include "utils/timestamp.h"

extern char *tego_leader_check;
extern int	tego_leader_check_interval;
extern int	tego_leader_check_timeout;

extern bool tego_check_leader_check(char **newval, void **extra, GucSource source);
extern TimestampTz tego_leader_check_run(void);
extern bool tego_leader_confirmed(char **problem);

#endif							/* TEGO_LEADER_H */
