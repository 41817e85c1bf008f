/* Table-driven "name = value" configuration: parsing, defaults, loading. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsign/conf.h"
#include "rsign/util.h"

#define CONF_FILE_MAX (64 * 1024)

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void trim(const char **p, size_t *n)
{
	while (*n && is_space(**p)) {
		(*p)++;
		(*n)--;
	}
	while (*n && is_space((*p)[*n - 1]))
		(*n)--;
}

/* Unwraps an optional double-quoted value, or cuts an unquoted one at '#'.
 * Quotes have no escapes: a quoted value runs to the next '"'. */
static int conf_unquote(const char **v, size_t *vlen, const char **why)
{
	const char *p = *v, *close, *q;
	size_t n = *vlen;

	if (n && p[0] == '"') {
		close = memchr(p + 1, '"', n - 1);
		if (!close) {
			*why = "has an unterminated quote";
			return -1;
		}
		for (q = close + 1; q < p + n && is_space(*q); q++)
			;
		if (q < p + n && *q != '#') {
			*why = "has characters after the closing quote";
			return -1;
		}
		*v = p + 1;
		*vlen = (size_t)(close - p - 1);
		return 0;
	}
	close = memchr(p, '#', n);
	if (close)
		n = (size_t)(close - p);
	trim(&p, &n);
	*v = p;
	*vlen = n;
	return 0;
}

/* Sets one table row from value text. where is "file:line" for errors. */
static int conf_set(const rs_conf_item *it, void *obj, const char *v, size_t vlen,
		    const char *where, char *err, size_t errlen)
{
	char *field = (char *)obj + it->offset;
	char tmp[64];
	const char *why = NULL;
	size_t i;

	trim(&v, &vlen);
	if (conf_unquote(&v, &vlen, &why) < 0) {
		rs_errf(err, errlen, "%s: value of %s %s", where, it->name, why);
		return -1;
	}

	if (it->type == RS_CONF_STR) {
		char *s, **dst = (char **)(void *)field;

		if (it->max > 0 && vlen > (unsigned long long)it->max) {
			rs_errf(err, errlen, "%s: %s must be at most %lld bytes", where, it->name,
				it->max);
			return -1;
		}
		s = malloc(vlen + 1);
		if (!s) {
			rs_errf(err, errlen, "%s: out of memory", where);
			return -1;
		}
		memcpy(s, v, vlen);
		s[vlen] = '\0';
		rs_free_secret(*dst); /* an earlier source set it: later wins */
		*dst = s;
		return 0;
	}

	/* The other types are short words or numbers; anything longer than tmp
	 * is invalid, so it is emptied and fails every check below. */
	if (vlen >= sizeof(tmp))
		vlen = 0;
	memcpy(tmp, v, vlen);
	tmp[vlen] = '\0';

	switch (it->type) {
	case RS_CONF_INT: {
		char *end;
		long long x;

		errno = 0;
		x = strtoll(tmp, &end, 10);
		if (vlen == 0 || *end || errno || x < it->min || x > it->max) {
			rs_errf(err, errlen, "%s: %s must be between %lld and %lld", where,
				it->name, it->min, it->max);
			return -1;
		}
		*(long long *)(void *)field = x;
		return 0;
	}
	case RS_CONF_BOOL: {
		static const char *const yes[] = {"true", "yes", "on", "1"};
		static const char *const no[] = {"false", "no", "off", "0"};

		for (i = 0; i < 4; i++) {
			if (strcmp(tmp, yes[i]) == 0 || strcmp(tmp, no[i]) == 0) {
				*(int *)(void *)field = strcmp(tmp, yes[i]) == 0;
				return 0;
			}
		}
		rs_errf(err, errlen, "%s: %s must be true or false", where, it->name);
		return -1;
	}
	case RS_CONF_ENUM: {
		char list[256];
		size_t off = 0;

		for (i = 0; it->values && it->values[i]; i++) {
			if (strcmp(tmp, it->values[i]) == 0) {
				*(int *)(void *)field = (int)i;
				return 0;
			}
		}
		list[0] = '\0';
		for (i = 0; it->values && it->values[i] && off < sizeof(list); i++) {
			int n = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
					 it->values[i]);
			if (n < 0)
				break;
			off += (size_t)n;
		}
		rs_errf(err, errlen, "%s: %s must be one of %s", where, it->name, list);
		return -1;
	}
	default:
		rs_errf(err, errlen, "%s: %s has an unknown type", where, it->name);
		return -1;
	}
}

static size_t conf_rows(const rs_conf_item *tab)
{
	size_t n = 0;

	while (tab[n].name)
		n++;
	return n;
}

int rs_conf_defaults(const rs_conf_item *tab, void *obj, char *err, size_t errlen)
{
	char where[128];
	size_t i;

	for (i = 0; tab[i].name; i++) {
		if (!tab[i].def)
			continue;
		snprintf(where, sizeof(where), "default for %s", tab[i].name);
		if (conf_set(&tab[i], obj, tab[i].def, strlen(tab[i].def), where, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int rs_conf_parse(const char *name, const char *text, size_t len, const rs_conf_item *tab,
		  void *obj, char *err, size_t errlen)
{
	size_t rows = conf_rows(tab), pos = 0;
	unsigned char *seen;
	unsigned line = 0;
	char where[PATH_MAX + 32];
	int ret = -1;

	seen = calloc(rows + 1, 1);
	if (!seen) {
		rs_errf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	while (pos < len) {
		const char *l = text + pos, *eq, *nl, *key, *val;
		size_t llen, klen, vlen, i;

		line++;
		nl = memchr(l, '\n', len - pos);
		llen = nl ? (size_t)(nl - l) : len - pos;
		pos += llen + (nl ? 1 : 0);
		snprintf(where, sizeof(where), "%s:%u", name, line);

		if (memchr(l, '\0', llen)) {
			rs_errf(err, errlen, "%s: NUL byte in line", where);
			goto out;
		}
		trim(&l, &llen);
		if (llen == 0 || l[0] == '#')
			continue;
		eq = memchr(l, '=', llen);
		key = l;
		klen = eq ? (size_t)(eq - l) : 0;
		trim(&key, &klen);
		if (!eq || klen == 0) {
			rs_errf(err, errlen, "%s: expected \"name = value\"", where);
			goto out;
		}
		for (i = 0; i < rows; i++)
			if (strlen(tab[i].name) == klen && memcmp(tab[i].name, key, klen) == 0)
				break;
		if (i == rows) {
			rs_errf(err, errlen, "%s: unknown setting \"%.*s\"", where,
				klen > 64 ? 64 : (int)klen, key);
			goto out;
		}
		if (seen[i]) {
			rs_errf(err, errlen, "%s: duplicate setting \"%s\"", where, tab[i].name);
			goto out;
		}
		seen[i] = 1;
		val = eq + 1;
		vlen = llen - (size_t)(val - l);
		if (conf_set(&tab[i], obj, val, vlen, where, err, errlen) < 0)
			goto out;
	}
	ret = 0;
out:
	free(seen);
	return ret;
}

int rs_conf_load(const char *path, int strict_perms, const rs_conf_item *tab, void *obj, char *err,
		 size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	struct stat st;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rs_errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		rs_errf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rs_errf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	/* The file may hold secrets (PINs, database passwords). */
	if (strict_perms && (st.st_mode & (S_IWGRP | S_IWOTH))) {
		rs_errf(err, errlen,
			"%s: refusing a configuration file writable by group or others", path);
		goto out;
	}
	text = malloc(CONF_FILE_MAX + 1);
	if (!text) {
		rs_errf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	/* Read one byte past the limit rather than trusting st_size. */
	while (len <= CONF_FILE_MAX) {
		ssize_t n = read(fd, text + len, CONF_FILE_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rs_errf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > CONF_FILE_MAX) {
		rs_errf(err, errlen, "%s: larger than %d bytes", path, CONF_FILE_MAX);
		goto out;
	}
	ret = rs_conf_parse(path, text, len, tab, obj, err, errlen);
out:
	if (text) {
		rs_wipe(text, len);
		free(text);
	}
	close(fd);
	return ret;
}

void rs_conf_free(const rs_conf_item *tab, void *obj)
{
	size_t i;

	if (!tab || !obj)
		return;
	for (i = 0; tab[i].name; i++) {
		char **p;

		if (tab[i].type != RS_CONF_STR)
			continue;
		p = (char **)(void *)((char *)obj + tab[i].offset);
		rs_free_secret(*p);
		*p = NULL;
	}
}
