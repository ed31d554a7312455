/*
 * Key encodings and the value codec. A serial key is
 *   issuer_id (4 octets, big-endian) || length (1 octet) || magnitude (no leading zeros)
 * so that memcmp order is issuer order, then numeric serial order.
 */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

size_t revo_skey_encode(uint32_t issuer_id, const revo_serial_t *s, uint8_t *out)
{
	revo_be32(out, issuer_id);
	out[4] = s->len;
	memcpy(out + 5, s->mag, s->len);
	return 5 + (size_t)s->len;
}

bool revo_skey_decode(const uint8_t *p, size_t n, uint32_t *issuer_id, revo_serial_t *s)
{
	if (n < 6 || p[4] == 0 || p[4] > REVO_SERIAL_MAX || n != 5 + (size_t)p[4] || p[5] == 0)
		return false;
	*issuer_id = revo_get_be32(p);
	memset(s, 0, sizeof(*s));
	s->len = p[4];
	memcpy(s->mag, p + 5, s->len);
	return true;
}

void revo_wbuf_init(revo_wbuf_t *w)
{
	w->p = w->inline_buf;
	w->len = 0;
	w->cap = sizeof(w->inline_buf);
	w->oom = false;
}

void revo_wbuf_free(revo_wbuf_t *w)
{
	if (w->p != w->inline_buf)
		free(w->p);
	revo_wbuf_init(w);
}

static bool reserve(revo_wbuf_t *w, size_t n)
{
	if (w->oom)
		return false;
	if (w->len + n <= w->cap)
		return true;
	size_t cap = w->cap * 2;
	while (cap < w->len + n)
		cap *= 2;
	uint8_t *np = malloc(cap);
	if (!np) {
		w->oom = true;
		return false;
	}
	memcpy(np, w->p, w->len);
	if (w->p != w->inline_buf)
		free(w->p);
	w->p = np;
	w->cap = cap;
	return true;
}

void revo_wbuf_raw(revo_wbuf_t *w, const void *p, size_t n)
{
	if (n && reserve(w, n)) {
		memcpy(w->p + w->len, p, n);
		w->len += n;
	}
}

void revo_wbuf_u8(revo_wbuf_t *w, uint8_t v)
{
	revo_wbuf_raw(w, &v, 1);
}

void revo_wbuf_u32(revo_wbuf_t *w, uint32_t v)
{
	uint8_t b[4];
	revo_be32(b, v);
	revo_wbuf_raw(w, b, 4);
}

void revo_wbuf_u64(revo_wbuf_t *w, uint64_t v)
{
	uint8_t b[8];
	revo_be64(b, v);
	revo_wbuf_raw(w, b, 8);
}

void revo_wbuf_bytes(revo_wbuf_t *w, const void *p, size_t n)
{
	revo_wbuf_u32(w, (uint32_t)n);
	revo_wbuf_raw(w, p, n);
}

void revo_wbuf_str(revo_wbuf_t *w, const char *s)
{
	if (!s)
		revo_wbuf_u32(w, 0xffffffffu);
	else
		revo_wbuf_bytes(w, s, strlen(s));
}

void revo_rbuf_init(revo_rbuf_t *r, const void *p, size_t n)
{
	r->p = p;
	r->len = n;
	r->off = 0;
	r->bad = false;
}

const uint8_t *revo_rbuf_raw(revo_rbuf_t *r, size_t n)
{
	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t revo_rbuf_u8(revo_rbuf_t *r)
{
	const uint8_t *p = revo_rbuf_raw(r, 1);
	return p ? p[0] : 0;
}

uint32_t revo_rbuf_u32(revo_rbuf_t *r)
{
	const uint8_t *p = revo_rbuf_raw(r, 4);
	return p ? revo_get_be32(p) : 0;
}

uint64_t revo_rbuf_u64(revo_rbuf_t *r)
{
	const uint8_t *p = revo_rbuf_raw(r, 8);
	return p ? revo_get_be64(p) : 0;
}

const uint8_t *revo_rbuf_bytes(revo_rbuf_t *r, size_t *n)
{
	uint32_t len = revo_rbuf_u32(r);
	*n = 0;
	if (r->bad || len == 0xffffffffu)
		return NULL;
	const uint8_t *p = revo_rbuf_raw(r, len);
	if (p)
		*n = len;
	return p;
}
