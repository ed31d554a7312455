/*
 * Internals of ocsp/: the HTTP/1.x request-head parser the responder uses (pure, so
 * that it can be unit-tested and fuzzed apart from the sockets).
 */
#ifndef REVO_OCSP_INTERNAL_H
#define REVO_OCSP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

enum revo_http_method { REVO_HTTP_GET = 1, REVO_HTTP_POST, REVO_HTTP_HEAD, REVO_HTTP_OTHER };

typedef struct revo_http_req {
	int method;
	const char *target; /* request-target as sent (origin- or absolute-form) */
	size_t target_len;
	const char *path; /* the path part of the target */
	size_t path_len;
	int minor; /* HTTP/1.minor */
	bool has_length;
	size_t content_length;
	bool chunked;
	bool has_type;
	bool type_ocsp; /* Content-Type: application/ocsp-request */
	bool conn_close;
	bool conn_keep_alive;
	bool has_host;
	const char *if_none_match;
	size_t if_none_match_len;
	size_t head_len; /* octets of the request line and headers, with the blank line */
} revo_http_req_t;

/* revo_http_parse results besides 0 (complete head) */
#define REVO_HTTP_NEED_MORE 1
#define REVO_HTTP_BAD       (-400)
#define REVO_HTTP_TOO_LARGE (-431)
#define REVO_HTTP_VERSION   (-505)

/**
 * Parse the request head at the start of @buf (@len octets available). Returns 0 with
 * @out filled (pointers borrow from @buf), REVO_HTTP_NEED_MORE when the head is not
 * complete yet and fits in @max_head, or a negative HTTP status for a bad head.
 */
int revo_http_parse(const char *buf, size_t len, size_t max_head, revo_http_req_t *out);

#endif
