/*
 * tego_json.h - the little JSON reading that the test tools need: find a
 * top-level member of an object in a NOTIFY payload.  Static functions,
 * included by each tool.
 */
#ifndef TEGO_JSON_H
#define TEGO_JSON_H

#include <string.h>

/* Skip JSON whitespace. */
static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Skip a JSON string starting at its opening quote; NULL if unterminated. */
static const char *
skip_string(const char *p)
{
	for (p++; *p; p++)
	{
		if (*p == '\\')
		{
			if (p[1] == '\0')
				return NULL;
			p++;
		}
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* Skip one JSON value of any kind; NULL if malformed. */
static const char *
skip_value(const char *p)
{
	p = skip_ws(p);
	if (*p == '"')
		return skip_string(p);
	if (*p == '{' || *p == '[')
	{
		int			depth = 0;

		while (*p)
		{
			if (*p == '"')
			{
				p = skip_string(p);
				if (p == NULL)
					return NULL;
				continue;
			}
			if (*p == '{' || *p == '[')
				depth++;
			else if (*p == '}' || *p == ']')
			{
				if (--depth == 0)
					return p + 1;
			}
			p++;
		}
		return NULL;
	}
	else
	{
		const char *start = p;

		while (*p && *p != ',' && *p != '}' && *p != ']' &&
			   *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		return p == start ? NULL : p;
	}
}

/*
 * Find member "key" of the top-level JSON object in json; set [*vs, *ve) to
 * its value text.  Returns 1 if found.
 */
static int
json_member(const char *json, const char *key, const char **vs, const char **ve)
{
	const char *p = skip_ws(json);
	size_t		keylen = strlen(key);

	if (*p != '{')
		return 0;
	p++;
	for (;;)
	{
		const char *ks,
				   *q,
				   *e;

		p = skip_ws(p);
		if (*p != '"')
			return 0;
		ks = p + 1;
		q = skip_string(p);
		if (q == NULL)
			return 0;
		p = skip_ws(q);
		if (*p != ':')
			return 0;
		p = skip_ws(p + 1);
		e = skip_value(p);
		if (e == NULL)
			return 0;
		if ((size_t) (q - 1 - ks) == keylen && memcmp(ks, key, keylen) == 0)
		{
			*vs = p;
			*ve = e;
			return 1;
		}
		p = skip_ws(e);
		if (*p != ',')
			return 0;
		p++;
	}
}

#endif							/* TEGO_JSON_H */
