/*
 * json.c - just enough of a JSON reader for notification payloads: find a
 * top-level member of an object and decode a string.  The server builds
 * these payloads, so the reader is strict but small; malformed input makes
 * it return false, never read past the terminating NUL.
 */
#include "tego_cli.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 256

static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* p at a '"': returns the position after the closing quote, or NULL. */
static const char *
skip_string(const char *p)
{
	p++;
	while (*p && *p != '"')
	{
		if (*p == '\\')
		{
			p++;
			if (*p == '\0')
				return NULL;
		}
		p++;
	}
	return *p == '"' ? p + 1 : NULL;
}

/* Skip one value starting at p (no leading space); NULL if malformed. */
static const char *
skip_value(const char *p, int depth)
{
	if (depth > MAX_DEPTH)
		return NULL;
	switch (*p)
	{
		case '"':
			return skip_string(p);
		case '{':
		case '[':
			{
				char		close = (*p == '{') ? '}' : ']';
				bool		object = (*p == '{');

				p = skip_ws(p + 1);
				if (*p == close)
					return p + 1;
				for (;;)
				{
					if (object)
					{
						if (*p != '"' || (p = skip_string(p)) == NULL)
							return NULL;
						p = skip_ws(p);
						if (*p != ':')
							return NULL;
						p = skip_ws(p + 1);
					}
					if ((p = skip_value(p, depth + 1)) == NULL)
						return NULL;
					p = skip_ws(p);
					if (*p == ',')
					{
						p = skip_ws(p + 1);
						continue;
					}
					if (*p == close)
						return p + 1;
					return NULL;
				}
			}
		default:
			/* number, true, false, null */
			if (!((*p >= '0' && *p <= '9') || *p == '-' ||
				  (*p >= 'a' && *p <= 'z')))
				return NULL;
			while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
				   *p == '-' || *p == '+' || *p == '.' || *p == 'E')
				p++;
			return p;
	}
}

bool
json_get_member(const char *obj, const char *key, const char **start,
				const char **end)
{
	const char *p = skip_ws(obj);

	if (*p != '{')
		return false;
	p = skip_ws(p + 1);
	if (*p == '}')
		return false;
	for (;;)
	{
		const char *kstart = p;
		const char *kend;
		const char *vstart;
		bool		match;

		if (*p != '"' || (kend = skip_string(p)) == NULL)
			return false;
		{
			char	   *k = json_decode_string(kstart, kend);

			match = (k != NULL && strcmp(k, key) == 0);
			free(k);
		}
		p = skip_ws(kend);
		if (*p != ':')
			return false;
		vstart = skip_ws(p + 1);
		if ((p = skip_value(vstart, 1)) == NULL)
			return false;
		if (match)
		{
			*start = vstart;
			*end = p;
			return true;
		}
		p = skip_ws(p);
		if (*p != ',')
			return false;
		p = skip_ws(p + 1);
	}
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
read_hex4(const char *p, const char *end, unsigned *out)
{
	unsigned	v = 0;
	int			i;

	if (end - p < 4)
		return false;
	for (i = 0; i < 4; i++)
	{
		int			h = hexval(p[i]);

		if (h < 0)
			return false;
		v = (v << 4) | (unsigned) h;
	}
	*out = v;
	return true;
}

static char *
put_utf8(char *w, unsigned cp)
{
	if (cp < 0x80)
		*w++ = (char) cp;
	else if (cp < 0x800)
	{
		*w++ = (char) (0xc0 | (cp >> 6));
		*w++ = (char) (0x80 | (cp & 0x3f));
	}
	else if (cp < 0x10000)
	{
		*w++ = (char) (0xe0 | (cp >> 12));
		*w++ = (char) (0x80 | ((cp >> 6) & 0x3f));
		*w++ = (char) (0x80 | (cp & 0x3f));
	}
	else
	{
		*w++ = (char) (0xf0 | (cp >> 18));
		*w++ = (char) (0x80 | ((cp >> 12) & 0x3f));
		*w++ = (char) (0x80 | ((cp >> 6) & 0x3f));
		*w++ = (char) (0x80 | (cp & 0x3f));
	}
	return w;
}

char *
json_decode_string(const char *start, const char *end)
{
	const char *p = start;
	char	   *out;
	char	   *w;

	if (end - start < 2 || *p != '"' || end[-1] != '"')
		return NULL;
	out = xmalloc((size_t) (end - start) + 1);
	w = out;
	p++;
	end--;
	while (p < end)
	{
		unsigned	cp,
					lo;

		if (*p != '\\')
		{
			*w++ = *p++;
			continue;
		}
		p++;
		if (p >= end)
			break;
		switch (*p)
		{
			case 'n':
				*w++ = '\n';
				break;
			case 't':
				*w++ = '\t';
				break;
			case 'r':
				*w++ = '\r';
				break;
			case 'b':
				*w++ = '\b';
				break;
			case 'f':
				*w++ = '\f';
				break;
			case 'u':
				if (!read_hex4(p + 1, end, &cp))
				{
					free(out);
					return NULL;
				}
				p += 4;
				if (cp >= 0xd800 && cp < 0xdc00 && p + 2 < end &&
					p[1] == '\\' && p[2] == 'u' && read_hex4(p + 3, end, &lo) &&
					lo >= 0xdc00 && lo < 0xe000)
				{
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
				if (cp == 0)
					cp = 0xfffd;	/* no NUL inside a C string */
				w = put_utf8(w, cp);
				break;
			default:
				*w++ = *p;		/* \" \\ \/ */
		}
		p++;
	}
	*w = '\0';
	return out;
}
