/* The deadline of a request head. From accept, or from the end of the
 * previous response on a kept-alive connection, a client has
 * request_header_timeout seconds to finish the TLS handshake and send a
 * whole request head; trickling a byte now and then does not move it.
 * (libmicrohttpd's own idle timeout restarts with every byte, and 0.9.75
 * has no deadline of this kind.) Time the daemon thread that owns the
 * connection spends in a handler does not count. A reaper thread shuts down the sockets
 * past their deadline; libmicrohttpd then sees the connection end and
 * closes it as usual. Nothing here knows libmicrohttpd: http.c feeds it
 * the daemon's notifications. */
#ifndef SRV_CONNS_H
#define SRV_CONNS_H
#include <stddef.h>

typedef struct srv_conns srv_conns;

/* Starts the reaper. header_timeout in seconds (> 0). */
srv_conns *srv_conns_new(double header_timeout);
/* Stops the reaper; after the daemon has stopped (no connection left). */
void srv_conns_free(srv_conns *g);

/* A connection on fd was accepted: its deadline starts. *ctx (the
 * daemon's per-connection pointer) receives its entry. */
void srv_conns_started(srv_conns *g, int fd, void **ctx);
/* Its request head is complete: no deadline while the request runs. */
void srv_conns_head_done(srv_conns *g, void *ctx);
/* A response was sent: the next head's deadline starts, unless the head
 * of this one never completed (its own deadline stands). */
void srv_conns_response_done(srv_conns *g, void *ctx);
/* The calling daemon thread begins (busy 1) or ends (0) a handler: while
 * it is busy, the deadlines of the connections it accepted wait. */
void srv_conns_busy(srv_conns *g, int busy);
/* It is closed: forgotten, before the daemon closes fd (so the reaper
 * never shuts down a number the kernel gave to a new socket). */
void srv_conns_closed(srv_conns *g, void **ctx);

#endif
