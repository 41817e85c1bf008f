/* The one rule for the server URL that the PKCS#11 module and rsignctl send
 * their credentials to. Header-only because it parses with libcurl's URL API
 * (curl_url), which both of them link and common/ must not (rsignd does not
 * use libcurl): include it only where libcurl is linked.
 *
 * The URL is judged as libcurl will use it, after parsing, never by its
 * text: https anywhere; http only when the parsed host is a loopback one
 * (localhost, 127.0.0.0/8, [::1]), since tokens travel in clear there; never
 * user information ("user:password@"), which is not how rsign
 * authenticates and lets a URL read as one host and go to another
 * (http://localhost:1@10.0.0.2/ goes to 10.0.0.2); no query or fragment,
 * since the API paths are appended to the URL. */
#ifndef RS_URL_H
#define RS_URL_H
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

static inline int rs_url_host_is_loopback(const char *host)
{
	struct in_addr a;

	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
		return 1;
	return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* 0 when url may be used, *plain_http set when it is http://; else -1 with
 * a sentence saying why in why (-2: out of memory). */
static inline int rs_url_check(const char *url, int *plain_http, char *why, size_t whylen)
{
	static const CURLUPart hidden[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS};
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *part = NULL;
	size_t i;
	int ret = -1;

	*plain_http = 0;
	if (!u) {
		snprintf(why, whylen, "out of memory");
		return -2;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(why, whylen, "not a valid URL (https://host[:port])");
		goto out;
	}
	for (i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
		if (curl_url_get(u, hidden[i], &part, 0) == CURLUE_OK) {
			snprintf(why, whylen,
				 "user information (user:password@) is not allowed in the URL");
			goto out;
		}
	}
	if (curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) {
		snprintf(why, whylen, "the URL must not have a query or fragment");
		goto out;
	}
	if (strcmp(scheme, "https") == 0) {
		ret = 0;
	} else if (strcmp(scheme, "http") != 0) {
		snprintf(why, whylen, "the URL must start with https://");
	} else if (!rs_url_host_is_loopback(host)) {
		snprintf(why, whylen,
			 "plain http is allowed only to a loopback host (%s is not one)", host);
	} else {
		*plain_http = 1;
		ret = 0;
	}
out:
	curl_free(part);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

#endif
