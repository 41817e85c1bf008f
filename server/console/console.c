/* Which embedded console file answers a path: the page paths (each served
 * index.html, whose script routes by location, so that every page has a
 * stable URL to paste into chat) and /console/assets/NAME. Page paths
 * never collide with the API, which lives under /api/v1 (and /health,
 * /ready, /metrics). */
#include <string.h>
#include "server/console/console.h"

#define ASSETS "/console/assets/"

/* The console's pages: "P" exactly, or "P/" followed by one segment of
 * 1..128 characters without another slash when sub is ONE, or by such a
 * segment and an optional "/edit" when sub is EDIT. */
enum { NONE, ONE, EDIT };
static const struct {
	const char *prefix;
	int sub;
} pages[] = {
	{"/", NONE},	   {"/signin", NONE},	   {"/requests", ONE}, {"/signers", ONE},
	{"/grants", NONE}, {"/policies", EDIT},	   {"/people", NONE},  {"/audit", NONE},
	{"/keys", ONE},	   {"/certificates", ONE},
};

static const srv_console_asset *named(const char *name)
{
	for (const srv_console_asset *a = srv_console_assets; a->name; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

static int is_page(const char *path)
{
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		size_t n = strlen(pages[i].prefix);
		if (strncmp(path, pages[i].prefix, n) != 0)
			continue;
		const char *rest = path + n;
		if (*rest == '\0')
			return 1;
		if (pages[i].sub != NONE && rest[0] == '/') {
			const char *slash = strchr(rest + 1, '/');
			size_t seg = slash ? (size_t)(slash - (rest + 1)) : strlen(rest + 1);
			if (seg < 1 || seg > 128)
				continue;
			if (!slash || (pages[i].sub == EDIT && strcmp(slash, "/edit") == 0))
				return 1;
		}
	}
	return 0;
}

const srv_console_asset *srv_console_find(const char *path)
{
	if (!path)
		return NULL;
	if (strncmp(path, ASSETS, strlen(ASSETS)) == 0) {
		const char *name = path + strlen(ASSETS);
		if (strcmp(name, "index.html") == 0)
			return NULL; /* the page is served at page paths only */
		return named(name);
	}
	return is_page(path) ? named("index.html") : NULL;
}
