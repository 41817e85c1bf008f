/* The API's JSON error body for the requests libmicrohttpd refuses by
 * itself, before rsignd sees them: a request line or header that does not
 * parse or a bad chunk (400), a Content-Length past 64 bits (413), a
 * request line or head too large (414, 431), HTTP/2.0 (505). It answers
 * those with HTML, and 0.9.75 has no hook for its error bodies.
 *
 * How: libmicrohttpd's internal calls of MHD_queue_response go through its
 * PLT (`readelf -r libmicrohttpd.so.12` lists an R_X86_64_JUMP_SLOT for
 * MHD_queue_response), so the dynamic linker binds them to the first
 * definition in the process: this one, when the executable exports it
 * (Makefile.am links rsignd with -Wl,--export-dynamic-symbol). Every
 * response rsignd makes carries X-Request-Id (srv_json_response); one
 * without it is libmicrohttpd's own, and goes out as the API's error body
 * with the same status instead. Whether the connection is closed after it
 * is the connection's state in libmicrohttpd, not the response's, so that
 * is kept. test_http checks the bodies: if this stops being reached, they
 * are HTML again and it fails. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/http/http_int.h"

typedef enum MHD_Result (*queue_fn)(struct MHD_Connection *, unsigned int, struct MHD_Response *);

static queue_fn real_queue;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void find_real(void)
{
	real_queue = (queue_fn)dlsym(RTLD_NEXT, "MHD_queue_response");
}

__attribute__((visibility("default"))) enum MHD_Result
MHD_queue_response(struct MHD_Connection *c, unsigned int status, struct MHD_Response *resp)
{
	pthread_once(&real_once, find_real);
	if (!real_queue)
		return MHD_NO;
	if (!resp || MHD_get_response_header(resp, "X-Request-Id"))
		return real_queue(c, status, resp);
	char req_id[33], ip[48];
	if (rs_random_hex(16, req_id) != 0)
		rs_strlcpy(req_id, "0", sizeof(req_id));
	srv_reason why = srv_reason_for_status((int)status);
	static const struct {
		srv_reason why;
		const char *msg;
	} messages[] = {
		{SRV_R_MALFORMED_REQUEST,
		 "the request line, a header or a chunk of the body is not valid HTTP/1.1"},
		{SRV_R_BODY_TOO_LARGE, "the request's body length is too large"},
		{SRV_R_URI_TOO_LONG, "the request line is too long"},
		{SRV_R_HEADERS_TOO_LARGE, "the request's headers are too large"},
		{SRV_R_HTTP_VERSION, "rsignd speaks HTTP/1.1 and HTTP/1.0 only"},
	};
	const char *msg = "the request cannot be served";
	for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++)
		if (messages[i].why == why)
			msg = messages[i].msg;
	char *text = srv_error_body(why, msg, req_id);
	struct MHD_Response *json = text ? srv_json_response(text, req_id, 0) : NULL;
	if (!json) /* out of memory: its own body rather than none */
		return real_queue(c, status, resp);
	enum MHD_Result ret = real_queue(c, status, json);
	MHD_destroy_response(json);
	srv_client_ip(c, ip, sizeof(ip));
	rs_info("microhttpd refused a request from %s: %u %s req=%s", ip[0] ? ip : "-", status,
		srv_reason_name(why), req_id);
	return ret;
}
