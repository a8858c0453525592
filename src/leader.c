/*-------------------------------------------------------------------------
 *
 * leader.c
 *	  Fencing: confirm with an outside authority that this server is still
 *	  the leader before firing jobs or committing events.
 *
 *	  Under a high-availability manager such as Patroni, the primary whose
 *	  manager died keeps running while a replica is promoted: two primaries
 *	  (split brain).  With tego.leader_check set to an HTTP endpoint that
 *	  answers 200 only on the leader (Patroni: http://127.0.0.1:8008/primary),
 *	  the scheduler asks it every tego.leader_check_interval and records the
 *	  answer in shared memory; leadership counts as confirmed for two
 *	  intervals after a successful answer.  Past that time the scheduler fires nothing and a
 *	  commit that has tego events fails, so a primary that has lost its
 *	  manager stops acting well before the manager's leader key expires.
 *
 *	  The check is a plain HTTP/1.0 GET over a non-blocking socket, waited
 *	  for with WaitLatchOrSocket and bounded by tego.leader_check_timeout;
 *	  only the status line of the answer is read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include "miscadmin.h"
#include "port.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "leader.h"
#include "scheduler.h"

char	   *tego_leader_check = NULL;
int			tego_leader_check_interval = 1000;
int			tego_leader_check_timeout = 500;

/* Longest host name, port and path of a leader check URL. */
#define LEADER_URL_MAX		1024

/* A leader check URL, split. */
typedef struct LeaderUrl
{
	char		host[LEADER_URL_MAX];
	char		port[16];
	char		path[LEADER_URL_MAX];
} LeaderUrl;

/*
 * Split url (http://host[:port][/path]; host may be [IPv6]) into *out.
 * Returns NULL, or what is wrong with it.
 */
static const char *
parse_url(const char *url, LeaderUrl *out)
{
	const char *p;
	const char *host_end;
	const char *slash;
	size_t		len;

	if (strncmp(url, "http://", 7) != 0)
		return "it does not begin with http://";
	for (p = url; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == 0x7f)
			return "it contains a space or a control character";
	p = url + 7;
	slash = strchr(p, '/');
	if (slash == NULL)
		slash = p + strlen(p);
	if (strlen(slash) >= sizeof(out->path) - 1)
		return "its path is too long";
	strcpy(out->path, *slash ? slash : "/");

	if (*p == '[')
	{
		host_end = memchr(p, ']', slash - p);
		if (host_end == NULL)
			return "its IPv6 address has no closing bracket";
		len = host_end - p - 1;
		if (len == 0 || len >= sizeof(out->host))
			return "its host is empty or too long";
		memcpy(out->host, p + 1, len);
		out->host[len] = '\0';
		p = host_end + 1;
	}
	else
	{
		host_end = p;
		while (host_end < slash && *host_end != ':')
			host_end++;
		len = host_end - p;
		if (len == 0 || len >= sizeof(out->host))
			return "its host is empty or too long";
		memcpy(out->host, p, len);
		out->host[len] = '\0';
		p = host_end;
	}

	if (p < slash && *p == ':')
	{
		const char *d;

		p++;
		len = slash - p;
		if (len == 0 || len > 5)
			return "its port is not a number from 1 to 65535";
		for (d = p; d < slash; d++)
			if (*d < '0' || *d > '9')
				return "its port is not a number from 1 to 65535";
		memcpy(out->port, p, len);
		out->port[len] = '\0';
		if (atoi(out->port) < 1 || atoi(out->port) > 65535)
			return "its port is not a number from 1 to 65535";
	}
	else if (p != slash)
		return "its host is followed by something other than a port or a path";
	else
		strcpy(out->port, "80");
	return NULL;
}

/* GUC check hook of tego.leader_check: empty, or a URL parse_url accepts. */
bool
tego_check_leader_check(char **newval, void **extra, GucSource source)
{
	LeaderUrl	url;
	const char *problem;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	problem = parse_url(*newval, &url);
	if (problem != NULL)
	{
		GUC_check_errdetail("tego.leader_check must be an http:// URL, and %s.", problem);
		return false;
	}
	return true;
}

/*
 * Wait until sock is ready for events (WL_SOCKET_READABLE or
 * WL_SOCKET_WRITEABLE) or deadline passes.  Returns false on timeout.
 */
static bool
wait_socket(pgsocket sock, int events, TimestampTz deadline)
{
	for (;;)
	{
		long		ms = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		int			rc;

		if (ms <= 0)
			return false;
		rc = WaitLatchOrSocket(NULL, events | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   sock, ms, PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
		if (rc & events)
			return true;
	}
}

/*
 * A non-blocking socket connected to ai before deadline, or
 * PGINVALID_SOCKET with the reason in why.
 */
static pgsocket
try_connect(const struct addrinfo *ai, TimestampTz deadline, char *why, size_t whylen)
{
	pgsocket	sock;
	int			so_error = 0;
	socklen_t	so_len = sizeof(so_error);

	sock = socket(ai->ai_family, SOCK_STREAM, 0);
	if (sock == PGINVALID_SOCKET)
	{
		snprintf(why, whylen, "could not create a socket: %m");
		return PGINVALID_SOCKET;
	}
	if (!pg_set_noblock(sock))
	{
		snprintf(why, whylen, "could not make a socket non-blocking: %m");
		closesocket(sock);
		return PGINVALID_SOCKET;
	}
	if (connect(sock, ai->ai_addr, ai->ai_addrlen) == 0)
		return sock;
	if (errno != EINPROGRESS && errno != EINTR)
		snprintf(why, whylen, "could not connect: %m");
	else if (!wait_socket(sock, WL_SOCKET_WRITEABLE, deadline))
		snprintf(why, whylen, "no connection within %d ms", tego_leader_check_timeout);
	else if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &so_error, &so_len) < 0)
		snprintf(why, whylen, "could not connect: %m");
	else if (so_error != 0)
	{
		errno = so_error;
		snprintf(why, whylen, "could not connect: %m");
	}
	else
		return sock;
	closesocket(sock);
	return PGINVALID_SOCKET;
}

/*
 * Ask the endpoint at url whether this server is the leader.  Returns true
 * when it answered 200; otherwise false, with the reason in why.
 */
static bool
ask_leader(const char *url_text, char *why, size_t whylen)
{
	LeaderUrl	url;
	const char *problem;
	struct addrinfo hints;
	struct addrinfo *addrs = NULL;
	struct addrinfo *ai;
	pgsocket	sock = PGINVALID_SOCKET;
	TimestampTz deadline;
	char		request[LEADER_URL_MAX * 2 + 128];
	char		answer[128];
	size_t		got = 0;
	int			err;
	bool		leader = false;

	deadline = GetCurrentTimestamp() +
		(TimestampTz) tego_leader_check_timeout * 1000;

	problem = parse_url(url_text, &url);
	if (problem != NULL)
	{
		snprintf(why, whylen, "the URL is not valid: %s", problem);
		return false;
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	err = getaddrinfo(url.host, url.port, &hints, &addrs);
	if (err != 0 || addrs == NULL)
	{
		snprintf(why, whylen, "could not resolve \"%s\": %s", url.host,
				 gai_strerror(err));
		return false;
	}

	/* the first address that accepts a connection */
	for (ai = addrs; ai != NULL && sock == PGINVALID_SOCKET; ai = ai->ai_next)
	{
		sock = try_connect(ai, deadline, why, whylen);
		if (sock == PGINVALID_SOCKET && GetCurrentTimestamp() >= deadline)
			break;
	}
	if (sock == PGINVALID_SOCKET)
		goto done;

	snprintf(request, sizeof(request),
			 "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: tego\r\nConnection: close\r\n\r\n",
			 url.path, url.host);
	/* NB: a request this small fits in an empty socket buffer */
	if (send(sock, request, strlen(request), MSG_NOSIGNAL) != (ssize_t) strlen(request))
	{
		snprintf(why, whylen, "could not send the request: %m");
		goto done;
	}

	/* read up to the end of the status line */
	while (got < sizeof(answer) - 1 && memchr(answer, '\n', got) == NULL)
	{
		ssize_t		n = recv(sock, answer + got, sizeof(answer) - 1 - got, 0);

		if (n > 0)
		{
			got += n;
			continue;
		}
		if (n == 0)
			break;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		{
			snprintf(why, whylen, "could not read the answer: %m");
			goto done;
		}
		if (!wait_socket(sock, WL_SOCKET_READABLE, deadline))
		{
			snprintf(why, whylen, "no answer within %d ms", tego_leader_check_timeout);
			goto done;
		}
	}
	answer[got] = '\0';
	if (strncmp(answer, "HTTP/1.", 7) == 0 && strncmp(answer + 8, " 200", 4) == 0)
		leader = true;
	else
	{
		char	   *eol = strpbrk(answer, "\r\n");

		if (eol)
			*eol = '\0';
		snprintf(why, whylen, "the answer was \"%s\"", answer);
	}

done:
	if (sock != PGINVALID_SOCKET)
		closesocket(sock);
	freeaddrinfo(addrs);
	return leader;
}

/*
 * Run the leader check when one is configured and due (called by the
 * scheduler each time round its loop).  Returns when the next one is due
 * (DT_NOEND when none is configured).
 */
TimestampTz
tego_leader_check_run(void)
{
	static TimestampTz next_check = 0;
	static bool last_ok = true;
	TimestampTz now = GetCurrentTimestamp();
	char		why[TEGO_LEADER_PROBLEM_BYTES];
	bool		ok;

	if (tego_leader_check == NULL || tego_leader_check[0] == '\0')
	{
		next_check = 0;
		return DT_NOEND;
	}
	if (now < next_check)
		return next_check;

	why[0] = '\0';
	ok = ask_leader(tego_leader_check, why, sizeof(why));
	now = GetCurrentTimestamp();
	LWLockAcquire(tego_shared->lock, LW_EXCLUSIVE);
	if (ok)
	{
		tego_shared->leader_confirmed_at = now;
		tego_shared->leader_problem[0] = '\0';
	}
	else
		strlcpy(tego_shared->leader_problem, why, sizeof(tego_shared->leader_problem));
	tego_shared->leader_checked_at = now;
	LWLockRelease(tego_shared->lock);

	if (ok != last_ok)
		ereport(LOG,
				ok ? errmsg("tego leader check: this server is the leader again")
				: errmsg("tego leader check failed: %s", why),
				errdetail("tego.leader_check is \"%s\".", tego_leader_check));
	last_ok = ok;
	next_check = now + (TimestampTz) tego_leader_check_interval * 1000;
	return next_check;
}

/*
 * Is this server's leadership confirmed now (always, when no leader check
 * is configured)?  When not, *problem (palloc'd) says why.
 */
bool
tego_leader_confirmed(char **problem)
{
	TimestampTz confirmed;
	TimestampTz checked;
	char		why[TEGO_LEADER_PROBLEM_BYTES];

	if (tego_leader_check == NULL || tego_leader_check[0] == '\0' ||
		tego_shared == NULL)
		return true;
	LWLockAcquire(tego_shared->lock, LW_SHARED);
	confirmed = tego_shared->leader_confirmed_at;
	checked = tego_shared->leader_checked_at;
	strlcpy(why, tego_shared->leader_problem, sizeof(why));
	LWLockRelease(tego_shared->lock);
	if (confirmed != 0 &&
		GetCurrentTimestamp() < confirmed + (TimestampTz) tego_leader_check_interval * 2 * 1000)
		return true;
	if (problem)
	{
		if (checked == 0)
			*problem = pstrdup("The tego scheduler has not checked yet.");
		else if (why[0] != '\0')
			*problem = psprintf("The last check, at %s, failed: %s.",
								timestamptz_to_str(checked), why);
		else
			*problem = psprintf("The last successful check was at %s.",
								timestamptz_to_str(confirmed));
	}
	return false;
}
