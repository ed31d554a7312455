/*
 * DER writing. Lengths use the definite form, minimal octets, as DER requires.
 */
#include "pki/der.h"

#include <stdlib.h>
#include <string.h>

void revo_der_init(revo_der_t *d)
{
	memset(d, 0, sizeof(*d));
}

void revo_der_free(revo_der_t *d)
{
	free(d->p);
	memset(d, 0, sizeof(*d));
}

void revo_der_reset(revo_der_t *d)
{
	d->len = 0;
}

int revo_der_next(revo_der_in_t *in, uint8_t *tag, const uint8_t **val, size_t *vlen)
{
	const uint8_t *p = in->p;
	size_t n = in->len;
	if (n < 2 || (p[0] & 0x1f) == 0x1f)
		return -1;
	size_t len, hl;
	if (p[1] < 0x80) {
		len = p[1];
		hl = 2;
	} else {
		size_t k = p[1] & 0x7f;
		if (k == 0 || k > 4 || n < 2 + k || p[2] == 0)
			return -1; /* indefinite, too long, or not minimal */
		len = 0;
		for (size_t i = 0; i < k; i++)
			len = len << 8 | p[2 + i];
		if (len < 0x80)
			return -1; /* not minimal */
		hl = 2 + k;
	}
	if (len > n - hl)
		return -1;
	*tag = p[0];
	*val = p + hl;
	*vlen = len;
	in->p = p + hl + len;
	in->len = n - hl - len;
	return 0;
}

int revo_der_expect(revo_der_in_t *in, uint8_t want, const uint8_t **val, size_t *vlen)
{
	revo_der_in_t save = *in;
	uint8_t tag;
	if (revo_der_next(in, &tag, val, vlen) != 0)
		return -1;
	if (tag != want) {
		*in = save;
		return -1;
	}
	return 0;
}

size_t revo_der_hdr_size(size_t len)
{
	if (len < 0x80)
		return 2;
	size_t n = 0;
	while (len) {
		n++;
		len >>= 8;
	}
	return 2 + n;
}

size_t revo_der_hdr(uint8_t *out, uint8_t tag, size_t len)
{
	out[0] = tag;
	if (len < 0x80) {
		out[1] = (uint8_t)len;
		return 2;
	}
	size_t n = revo_der_hdr_size(len) - 2;
	out[1] = (uint8_t)(0x80 | n);
	for (size_t i = 0; i < n; i++)
		out[2 + i] = (uint8_t)(len >> (8 * (n - 1 - i)));
	return 2 + n;
}

static bool reserve(revo_der_t *d, size_t n)
{
	if (d->oom)
		return false;
	if (d->len + n <= d->cap)
		return true;
	size_t cap = d->cap ? d->cap : 256;
	while (cap < d->len + n)
		cap *= 2;
	uint8_t *np = realloc(d->p, cap);
	if (!np) {
		d->oom = true;
		return false;
	}
	d->p = np;
	d->cap = cap;
	return true;
}

void revo_der_raw(revo_der_t *d, const void *p, size_t n)
{
	if (n && reserve(d, n)) {
		memcpy(d->p + d->len, p, n);
		d->len += n;
	}
}

void revo_der_tlv(revo_der_t *d, uint8_t tag, const void *p, size_t n)
{
	uint8_t h[8];
	size_t hl = revo_der_hdr(h, tag, n);
	revo_der_raw(d, h, hl);
	revo_der_raw(d, p, n);
}

void revo_der_wrap(revo_der_t *d, uint8_t tag, const revo_der_t *content)
{
	if (content->oom) {
		d->oom = true;
		return;
	}
	revo_der_tlv(d, tag, content->p, content->len);
}

void revo_der_uint(revo_der_t *d, uint64_t v)
{
	uint8_t b[9];
	size_t n = 0;
	uint8_t tmp[8];
	size_t k = 0;
	do {
		tmp[k++] = (uint8_t)v;
		v >>= 8;
	} while (v);
	if (tmp[k - 1] & 0x80)
		b[n++] = 0;
	while (k)
		b[n++] = tmp[--k];
	revo_der_tlv(d, REVO_DER_INTEGER, b, n);
}

size_t revo_der_serial(uint8_t *out, const revo_serial_t *s)
{
	size_t pad = (s->mag[0] & 0x80) ? 1 : 0;
	size_t n = s->len + pad;
	out[0] = REVO_DER_INTEGER;
	out[1] = (uint8_t)n;
	if (pad)
		out[2] = 0;
	memcpy(out + 2 + pad, s->mag, s->len);
	return 2 + n;
}

static void two(uint8_t *p, int v)
{
	p[0] = (uint8_t)('0' + v / 10);
	p[1] = (uint8_t)('0' + v % 10);
}

size_t revo_der_time(uint8_t *out, int64_t t, bool generalized)
{
	int64_t days = t / 86400, rem = t % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	/* civil from days (Hinnant) */
	days += 719468;
	const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
	const int64_t doe = days - era * 146097;
	const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const int64_t mp = (5 * doy + 2) / 153;
	int d = (int)(doy - (153 * mp + 2) / 5 + 1);
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);
	int64_t y = yoe + era * 400 + (m <= 2);
	if (y < 0)
		y = 0;
	if (y > 9999)
		y = 9999;
	bool gen = generalized || y < 1950 || y >= 2050;
	uint8_t *p = out + 2;
	if (gen) {
		two(p, (int)(y / 100));
		p += 2;
	}
	two(p, (int)(y % 100));
	two(p + 2, m);
	two(p + 4, d);
	two(p + 6, (int)(rem / 3600));
	two(p + 8, (int)(rem % 3600 / 60));
	two(p + 10, (int)(rem % 60));
	p[12] = 'Z';
	out[0] = gen ? REVO_DER_GENTIME : REVO_DER_UTCTIME;
	out[1] = gen ? 15 : 13;
	return 2 + out[1];
}
