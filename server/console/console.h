/* The web console's files, embedded in rsignd at build time
 * (scripts/embed-assets writes console_assets.c from server/console/web/),
 * and which of them answers a path outside the API. */
#ifndef SRV_CONSOLE_H
#define SRV_CONSOLE_H
#include <stddef.h>

typedef struct {
	const char *name; /* "index.html", "app.js", ... */
	const char *content_type;
	const unsigned char *data;
	size_t len;
	const char *etag; /* quoted: a prefix of the SHA-256 of data */
} srv_console_asset;

/* Generated; ends with a NULL name. */
extern const srv_console_asset srv_console_assets[];

/* The file served at path (no query): index.html for every console page
 * path ("/", "/requests/{id}", "/signers/...", ...: the page's script
 * routes), the file NAME at "/console/assets/NAME"; NULL for any other
 * path (the API's, or none). */
const srv_console_asset *srv_console_find(const char *path);

#endif
