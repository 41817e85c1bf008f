/* Table-driven "name = value" configuration files. Each table row gives the
 * name, type, default, bounds and where the value lands in the caller's
 * struct. Every error names file:line. */
#ifndef RSIGN_CONF_H
#define RSIGN_CONF_H
#include <stddef.h>

typedef enum {
	RS_CONF_STR,  /* char * (malloc'd), at most max bytes when max > 0 */
	RS_CONF_INT,  /* long long within [min, max] */
	RS_CONF_BOOL, /* int: true/false/yes/no/on/off/1/0 */
	RS_CONF_ENUM, /* int: index into values[] */
} rs_conf_type;

typedef struct {
	const char *name;
	rs_conf_type type;
	size_t offset;	 /* offsetof(struct, field) */
	const char *def; /* default as text; NULL = unset (STR stays NULL) */
	long long min, max;
	const char *const *values; /* ENUM only, NULL-terminated */
} rs_conf_item;

#define RS_CONF_ERRLEN 512

/* Applies every default. 0 or -1 with err filled. */
int rs_conf_defaults(const rs_conf_item *tab, void *obj, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Parses text (named name in errors) on top of obj. Unknown names, bad values,
 * duplicates and lines without '=' are errors. */
int rs_conf_parse(const char *name, const char *text, size_t len, const rs_conf_item *tab,
		  void *obj, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Reads path (at most 64 KiB) then rs_conf_parse. When strict_perms, refuses
 * a file writable by group or others. */
int rs_conf_load(const char *path, int strict_perms, const rs_conf_item *tab, void *obj, char *err,
		 size_t errlen) __attribute__((warn_unused_result));
/* Frees the STR fields. */
void rs_conf_free(const rs_conf_item *tab, void *obj);

#endif
