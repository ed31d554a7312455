/*
 * A small HTTP/1.0 and 1.1 request-head parser for the responder: request line, and the
 * few headers that matter (Content-Length, Content-Type, Transfer-Encoding, Connection,
 * If-None-Match). It reads only the @len octets given, accepts CRLF or bare LF line
 * ends, refuses obsolete line folding, conflicting lengths and heads over the limit.
 */
#include "ocsp/ocsp_internal.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

static bool token_eq(const char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n == l && strncasecmp(p, lit, l) == 0;
}

/* Does the comma-separated header value contain @tok (case-insensitive)? */
static bool list_has(const char *v, size_t n, const char *tok)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (token_eq(v + s, e - s, tok))
			return true;
	}
	return false;
}

/* Does @p (@n octets) hold a control character, space or DEL? Eight octets at a time. */
static bool has_ctl(const char *p, size_t n)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x, del;
		memcpy(&x, p + i, 8);
		del = x ^ (ones * 0x7f);
		/* nonzero iff an octet is below 0x21 / an octet of del is zero (is 0x7f) */
		if (((x - ones * 0x21) & ~x & highs) | ((del - ones) & ~del & highs))
			return true;
	}
	for (; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f)
			return true;
	return false;
}

int revo_http_parse(const char *buf, size_t len, size_t max_head, revo_http_req_t *out)
{
	memset(out, 0, sizeof(*out));
	/* find the end of the head: an empty line */
	size_t end = 0;
	bool found = false;
	size_t limit = len < max_head ? len : max_head;
	for (const char *nl = buf; (nl = memchr(nl, '\n', (size_t)(buf + limit - nl))) != NULL;
	     nl++) {
		size_t i = (size_t)(nl - buf);
		if (i + 1 < len && buf[i + 1] == '\n') {
			end = i + 2;
			found = true;
			break;
		}
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
			end = i + 3;
			found = true;
			break;
		}
	}
	if (!found)
		return len >= max_head ? REVO_HTTP_TOO_LARGE : REVO_HTTP_NEED_MORE;
	if (end > max_head)
		return REVO_HTTP_TOO_LARGE;
	out->head_len = end;

	/* request line: METHOD SP target SP HTTP/1.x */
	const char *p = buf, *le = memchr(buf, '\n', end);
	size_t ll = (size_t)(le - p);
	if (ll && p[ll - 1] == '\r')
		ll--;
	const char *sp1 = memchr(p, ' ', ll);
	if (!sp1 || sp1 == p)
		return REVO_HTTP_BAD;
	const char *t = sp1 + 1;
	const char *sp2 = memchr(t, ' ', (size_t)(p + ll - t));
	if (!sp2 || sp2 == t)
		return REVO_HTTP_BAD;
	size_t ml = (size_t)(sp1 - p);
	if (ml == 3 && memcmp(p, "GET", 3) == 0)
		out->method = REVO_HTTP_GET;
	else if (ml == 4 && memcmp(p, "POST", 4) == 0)
		out->method = REVO_HTTP_POST;
	else if (ml == 4 && memcmp(p, "HEAD", 4) == 0)
		out->method = REVO_HTTP_HEAD;
	else
		out->method = REVO_HTTP_OTHER;
	out->target = t;
	out->target_len = (size_t)(sp2 - t);
	const char *ver = sp2 + 1;
	size_t vl = (size_t)(p + ll - ver);
	if (vl != 8 || memcmp(ver, "HTTP/1.", 7) != 0) {
		if (vl >= 5 && memcmp(ver, "HTTP/", 5) == 0)
			return REVO_HTTP_VERSION;
		return REVO_HTTP_BAD;
	}
	if (ver[7] == '0')
		out->minor = 0;
	else if (ver[7] == '1')
		out->minor = 1;
	else
		return REVO_HTTP_VERSION;
	if (has_ctl(t, out->target_len))
		return REVO_HTTP_BAD;
	/* path of an absolute-form target */
	out->path = t;
	out->path_len = out->target_len;
	if (out->target_len > 7 && (strncasecmp(t, "http://", 7) == 0 ||
				    (out->target_len > 8 && strncasecmp(t, "https://", 8) == 0))) {
		const char *h = memchr(t, ':', out->target_len) + 3;
		const char *slash = memchr(h, '/', (size_t)(t + out->target_len - h));
		out->path = slash ? slash : "/";
		out->path_len = slash ? (size_t)(t + out->target_len - slash) : 1;
	} else if (t[0] != '/') {
		return REVO_HTTP_BAD;
	}

	/* headers */
	p = le + 1;
	while (p < buf + end) {
		le = memchr(p, '\n', (size_t)(buf + end - p));
		size_t hl = (size_t)(le - p);
		if (hl && p[hl - 1] == '\r')
			hl--;
		if (hl == 0)
			break;
		if (p[0] == ' ' || p[0] == '\t')
			return REVO_HTTP_BAD; /* obsolete line folding */
		const char *colon = memchr(p, ':', hl);
		if (!colon || colon == p)
			return REVO_HTTP_BAD;
		size_t nl = (size_t)(colon - p);
		for (size_t i = 0; i < nl; i++)
			if (p[i] == ' ' || p[i] == '\t')
				return REVO_HTTP_BAD;
		const char *v = colon + 1, *ve = p + hl;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		size_t vlen = (size_t)(ve - v);
		if (token_eq(p, nl, "Content-Length")) {
			size_t cl = 0;
			if (vlen == 0)
				return REVO_HTTP_BAD;
			for (size_t i = 0; i < vlen; i++) {
				if (v[i] < '0' || v[i] > '9')
					return REVO_HTTP_BAD;
				/* saturate: any length this large is refused as too large */
				cl = cl > SIZE_MAX / 16 ? SIZE_MAX / 16
							: cl * 10 + (size_t)(v[i] - '0');
			}
			if (out->has_length && cl != out->content_length)
				return REVO_HTTP_BAD;
			out->has_length = true;
			out->content_length = cl;
		} else if (token_eq(p, nl, "Content-Type")) {
			out->has_type = true;
			size_t tl = vlen;
			const char *semi = memchr(v, ';', vlen);
			if (semi)
				tl = (size_t)(semi - v);
			while (tl && (v[tl - 1] == ' ' || v[tl - 1] == '\t'))
				tl--;
			out->type_ocsp = token_eq(v, tl, "application/ocsp-request");
		} else if (token_eq(p, nl, "Transfer-Encoding")) {
			out->chunked = true; /* any transfer coding: refused by the caller */
		} else if (token_eq(p, nl, "Connection")) {
			if (list_has(v, vlen, "close"))
				out->conn_close = true;
			if (list_has(v, vlen, "keep-alive"))
				out->conn_keep_alive = true;
		} else if (token_eq(p, nl, "Host")) {
			out->has_host = true;
		} else if (token_eq(p, nl, "If-None-Match")) {
			out->if_none_match = v;
			out->if_none_match_len = vlen;
		}
		p = le + 1;
	}
	if (out->minor == 1 && !out->has_host)
		return REVO_HTTP_BAD; /* RFC 9112 3.2 */
	return 0;
}
