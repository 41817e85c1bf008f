/* What http.c shares with mhd_errors.c, the other file of server/http/
 * that speaks libmicrohttpd: how a JSON response and an error body are
 * made, in one place each. */
#ifndef SRV_HTTP_INT_H
#define SRV_HTTP_INT_H
#include <stddef.h>
#include <microhttpd.h>
#include "server/http/errors.h"

/* The API's error body for why, with message (made valid UTF-8 here,
 * whatever bytes it echoes) and req_id; malloc'd JSON text or NULL. */
char *srv_error_body(srv_reason why, const char *message, const char *req_id);
/* A response with text (taken, freed with the response) and the API's
 * headers: Content-Type, Cache-Control, X-Request-Id, and Retry-After
 * when retry_after > 0. NULL when out of memory. */
struct MHD_Response *srv_json_response(char *text, const char *req_id, long retry_after);
/* The client's address as text ("" when unknown). */
void srv_client_ip(struct MHD_Connection *c, char *out, size_t outlen);

#endif
