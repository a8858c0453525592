/*
 * output.c - results as an aligned table (psql's aligned format: a header,
 * a separator line, the rows, "(N rows)") or as JSON (an array of objects,
 * one object a line, values typed by the column's type OID).
 */
#define _XOPEN_SOURCE 700		/* wcwidth() */

#include "tego_cli.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* type OIDs (catalog/pg_type.dat) */
#define BOOLOID        16
#define INT8OID        20
#define INT2OID        21
#define INT4OID        23
#define OIDOID         26
#define JSONOID        114
#define FLOAT4OID      700
#define FLOAT8OID      701
#define NUMERICOID     1700
#define JSONBOID       3802
#define BOOLARRAYOID   1000
#define INT2ARRAYOID   1005
#define INT4ARRAYOID   1007
#define TEXTARRAYOID   1009
#define BPCHARARRAYOID 1014
#define VARCHARARRAYOID 1015
#define INT8ARRAYOID   1016
#define FLOAT4ARRAYOID 1021
#define FLOAT8ARRAYOID 1022
#define NUMERICARRAYOID 1231
#define NAMEARRAYOID   1003

static bool utf8_locale;

void
output_init(void)
{
	/* wcwidth() needs a UTF-8 LC_CTYPE to measure what the server sends */
	const char *l = setlocale(LC_CTYPE, "");

	utf8_locale = (l != NULL && MB_CUR_MAX > 1);
	if (!utf8_locale)
	{
		l = setlocale(LC_CTYPE, "C.UTF-8");
		utf8_locale = (l != NULL && MB_CUR_MAX > 1);
	}
}

/* ---- JSON ------------------------------------------------------------ */

void
json_write_string_n(FILE *out, const char *s, size_t len)
{
	size_t		i;

	fputc('"', out);
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		switch (c)
		{
			case '"':
				fputs("\\\"", out);
				break;
			case '\\':
				fputs("\\\\", out);
				break;
			case '\n':
				fputs("\\n", out);
				break;
			case '\r':
				fputs("\\r", out);
				break;
			case '\t':
				fputs("\\t", out);
				break;
			case '\b':
				fputs("\\b", out);
				break;
			case '\f':
				fputs("\\f", out);
				break;
			default:
				if (c < 0x20 || c == 0x7f)
					fprintf(out, "\\u%04x", c);
				else
					fputc(c, out);
		}
	}
	fputc('"', out);
}

void
json_write_string(FILE *out, const char *s)
{
	json_write_string_n(out, s, strlen(s));
}

/* Is s, all of it, a JSON number? (numeric and float also print NaN etc.) */
static bool
is_json_number(const char *s)
{
	const char *p = s;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return false;
	if (*p == '.')
	{
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E')
	{
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

static Oid
array_element_type(Oid type)
{
	switch (type)
	{
		case BOOLARRAYOID:
			return BOOLOID;
		case INT2ARRAYOID:
			return INT2OID;
		case INT4ARRAYOID:
			return INT4OID;
		case INT8ARRAYOID:
			return INT8OID;
		case FLOAT4ARRAYOID:
			return FLOAT4OID;
		case FLOAT8ARRAYOID:
			return FLOAT8OID;
		case NUMERICARRAYOID:
			return NUMERICOID;
		case TEXTARRAYOID:
		case BPCHARARRAYOID:
		case VARCHARARRAYOID:
		case NAMEARRAYOID:
			return 25;			/* text */
		default:
			return 0;
	}
}

/*
 * A one-dimensional array in PostgreSQL's text form ({a,"b c",NULL}) as a
 * JSON array; false (nothing written) when it is not one we can read
 * (several dimensions, explicit bounds).
 */
static bool
json_write_array(FILE *out, const char *s, Oid elemtype)
{
	const char *p = s;
	char	   *buf;
	char	  **items;
	bool	   *isnull;
	int			n = 0;
	int			i;
	size_t		len = strlen(s);
	char	   *w;

	if (*p != '{')
		return false;
	p++;
	buf = xmalloc(len + 1);
	items = xmalloc(sizeof(char *) * (len + 1));
	isnull = xmalloc(sizeof(bool) * (len + 1));
	w = buf;
	if (*p == '}')
		p++;
	else
	{
		for (;;)
		{
			bool		quoted = false;
			const char *start = p;

			items[n] = w;
			if (*p == '{')
				goto fail;		/* a nested dimension */
			if (*p == '"')
			{
				quoted = true;
				p++;
				while (*p && *p != '"')
				{
					if (*p == '\\' && p[1])
						p++;
					*w++ = *p++;
				}
				if (*p != '"')
					goto fail;
				p++;
			}
			else
			{
				while (*p && *p != ',' && *p != '}')
				{
					if (*p == '\\' && p[1])
						p++;
					*w++ = *p++;
				}
			}
			*w++ = '\0';
			isnull[n] = (!quoted && p - start == 4 && strncmp(start, "NULL", 4) == 0);
			n++;
			if (*p == ',')
			{
				p++;
				continue;
			}
			if (*p == '}')
			{
				p++;
				break;
			}
			goto fail;
		}
	}
	if (*p != '\0')
		goto fail;

	fputc('[', out);
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			fputc(',', out);
		json_write_value(out, isnull[i] ? NULL : items[i], elemtype);
	}
	fputc(']', out);
	free(buf);
	free(items);
	free(isnull);
	return true;

fail:
	free(buf);
	free(items);
	free(isnull);
	return false;
}

void
json_write_value(FILE *out, const char *value, Oid type)
{
	Oid			elem;

	if (value == NULL)
	{
		fputs("null", out);
		return;
	}
	switch (type)
	{
		case BOOLOID:
			fputs(value[0] == 't' ? "true" : "false", out);
			return;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case NUMERICOID:
		case FLOAT4OID:
		case FLOAT8OID:
			/* NaN and Infinity have no JSON number: keep them strings */
			if (is_json_number(value))
				fputs(value, out);
			else
				json_write_string(out, value);
			return;
		case JSONOID:
		case JSONBOID:
			fputs(value, out);
			return;
		default:
			break;
	}
	elem = array_element_type(type);
	if (elem && json_write_array(out, value, elem))
		return;
	json_write_string(out, value);
}

/* ---- aligned table ---------------------------------------------------- */

/*
 * The text shown for a cell: control characters escaped (\n, \t, \r,
 * \xNN) so that a row stays on one line.  malloc'd.
 */
static char *
cell_text(const char *s)
{
	size_t		len = strlen(s);
	char	   *out = xmalloc(len * 4 + 1);
	char	   *w = out;

	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '\n')
			w += sprintf(w, "\\n");
		else if (c == '\t')
			w += sprintf(w, "\\t");
		else if (c == '\r')
			w += sprintf(w, "\\r");
		else if (c < 0x20 || c == 0x7f)
			w += sprintf(w, "\\x%02x", c);
		else
			*w++ = (char) c;
	}
	*w = '\0';
	return out;
}

/* Display width of UTF-8 text on a terminal. */
static int
display_width(const char *s)
{
	int			width = 0;
	const unsigned char *p = (const unsigned char *) s;

	while (*p)
	{
		uint32_t	cp;
		int			extra;
		int			w;

		if (*p < 0x80)
		{
			width++;
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0)
		{
			cp = *p & 0x1f;
			extra = 1;
		}
		else if ((*p & 0xf0) == 0xe0)
		{
			cp = *p & 0x0f;
			extra = 2;
		}
		else if ((*p & 0xf8) == 0xf0)
		{
			cp = *p & 0x07;
			extra = 3;
		}
		else
		{
			width++;			/* not UTF-8: one column per byte */
			p++;
			continue;
		}
		p++;
		while (extra > 0 && (*p & 0xc0) == 0x80)
		{
			cp = (cp << 6) | (*p & 0x3f);
			p++;
			extra--;
		}
		w = utf8_locale ? wcwidth((wchar_t) cp) : 1;
		width += (w < 0) ? 1 : w;
	}
	return width;
}

static bool
is_numeric_type(Oid type)
{
	return type == INT2OID || type == INT4OID || type == INT8OID ||
		type == OIDOID || type == NUMERICOID || type == FLOAT4OID ||
		type == FLOAT8OID;
}

static void
put_spaces(int n)
{
	while (n-- > 0)
		fputc(' ', stdout);
}

/* One table line: cells[i] with widths[i]; the last cell not padded right. */
static void
print_line(char **cells, const int *widths, const int *alignment, int ncols)
{
	int			i;

	for (i = 0; i < ncols; i++)
	{
		int			pad = widths[i] - display_width(cells[i]);
		bool		last = (i == ncols - 1);

		fputs(i == 0 ? " " : " | ", stdout);
		if (alignment[i] > 0)
		{
			put_spaces(pad);
			fputs(cells[i], stdout);
		}
		else if (alignment[i] == 0)
		{
			/* centered (headers) */
			put_spaces(pad / 2);
			fputs(cells[i], stdout);
			if (!last)
				put_spaces(pad - pad / 2);
		}
		else
		{
			fputs(cells[i], stdout);
			if (!last)
				put_spaces(pad);
		}
	}
	fputc('\n', stdout);
}

static void
print_json(PGresult *const *res, int nres)
{
	int			r,
				row,
				col;
	int			nfields = PQnfields(res[0]);
	bool		first = true;

	fputc('[', stdout);
	for (r = 0; r < nres; r++)
	{
		for (row = 0; row < PQntuples(res[r]); row++)
		{
			fputs(first ? "\n  {" : ",\n  {", stdout);
			first = false;
			for (col = 0; col < nfields; col++)
			{
				if (col > 0)
					fputs(", ", stdout);
				json_write_string(stdout, PQfname(res[r], col));
				fputs(": ", stdout);
				json_write_value(stdout,
								 PQgetisnull(res[r], row, col) ? NULL :
								 PQgetvalue(res[r], row, col),
								 PQftype(res[r], col));
			}
			fputc('}', stdout);
		}
	}
	fputs(first ? "]\n" : "\n]\n", stdout);
}

void
print_results(PGresult *const *res, int nres, const char *const *table_cols,
			  bool json)
{
	int		   *cols;
	int			ncols = 0;
	int			nfields;
	int		   *widths;
	int		   *align;
	char	  **cells;
	long		nrows = 0;
	int			r,
				row,
				i;

	if (nres == 0)
	{
		fputs(json ? "[]\n" : "(0 rows)\n", stdout);
		return;
	}
	if (json)
	{
		print_json(res, nres);
		return;
	}

	nfields = PQnfields(res[0]);
	cols = xmalloc(sizeof(int) * (nfields + 1));
	if (table_cols)
	{
		for (i = 0; table_cols[i]; i++)
		{
			int			c = PQfnumber(res[0], table_cols[i]);

			if (c >= 0)
				cols[ncols++] = c;
		}
	}
	else
		for (i = 0; i < nfields; i++)
			cols[ncols++] = i;

	widths = xmalloc(sizeof(int) * (ncols + 1));
	align = xmalloc(sizeof(int) * (ncols + 1));
	cells = xmalloc(sizeof(char *) * (ncols + 1));

	for (i = 0; i < ncols; i++)
	{
		widths[i] = display_width(PQfname(res[0], cols[i]));
		align[i] = is_numeric_type(PQftype(res[0], cols[i])) ? 1 : -1;
	}
	for (r = 0; r < nres; r++)
		for (row = 0; row < PQntuples(res[r]); row++)
		{
			nrows++;
			for (i = 0; i < ncols; i++)
			{
				char	   *t = cell_text(PQgetvalue(res[r], row, cols[i]));
				int			w = display_width(t);

				if (w > widths[i])
					widths[i] = w;
				free(t);
			}
		}

	/* header, centered as psql does */
	{
		int		   *center = xmalloc(sizeof(int) * (ncols + 1));

		for (i = 0; i < ncols; i++)
		{
			center[i] = 0;
			cells[i] = (char *) PQfname(res[0], cols[i]);
		}
		print_line(cells, widths, center, ncols);
		free(center);
	}
	for (i = 0; i < ncols; i++)
	{
		int			k;

		fputs(i == 0 ? "-" : "-+-", stdout);
		for (k = 0; k < widths[i]; k++)
			fputc('-', stdout);
	}
	fputs("-\n", stdout);

	for (r = 0; r < nres; r++)
		for (row = 0; row < PQntuples(res[r]); row++)
		{
			for (i = 0; i < ncols; i++)
				cells[i] = cell_text(PQgetvalue(res[r], row, cols[i]));
			print_line(cells, widths, align, ncols);
			for (i = 0; i < ncols; i++)
				free(cells[i]);
		}
	printf("(%ld %s)\n", nrows, nrows == 1 ? "row" : "rows");

	free(cols);
	free(widths);
	free(align);
	free(cells);
}

void
print_record(PGresult *res, bool json)
{
	int			nfields = PQnfields(res);
	int			width = 0;
	int			row,
				i;

	if (json)
	{
		print_json(&res, 1);
		return;
	}
	for (i = 0; i < nfields; i++)
	{
		int			w = display_width(PQfname(res, i));

		if (w > width)
			width = w;
	}
	for (row = 0; row < PQntuples(res); row++)
	{
		if (row > 0)
			fputc('\n', stdout);
		for (i = 0; i < nfields; i++)
		{
			const char *name = PQfname(res, i);
			char	   *t = cell_text(PQgetvalue(res, row, i));

			printf(" %s", name);
			put_spaces(width - display_width(name));
			if (*t)
				printf(" | %s\n", t);
			else
				fputs(" |\n", stdout);
			free(t);
		}
	}
}

char *
pg_text_array_literal(char *const *items, int n)
{
	size_t		len = 3;
	int			i;
	char	   *out;
	char	   *w;

	for (i = 0; i < n; i++)
		len += strlen(items[i]) * 2 + 3;
	out = xmalloc(len);
	w = out;
	*w++ = '{';
	for (i = 0; i < n; i++)
	{
		const char *s;

		if (i > 0)
			*w++ = ',';
		*w++ = '"';
		for (s = items[i]; *s; s++)
		{
			if (*s == '"' || *s == '\\')
				*w++ = '\\';
			*w++ = *s;
		}
		*w++ = '"';
	}
	*w++ = '}';
	*w = '\0';
	return out;
}
