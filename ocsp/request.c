/*
 * OCSP request decoding without allocation: the DER is walked with pki/der.h and the
 * result borrows from it. GET requests are percent-decoded and base64-decoded here too.
 * This is the responder's exposure to the network, so it is strict about lengths,
 * lenient about what RFC 6960 leaves optional, and fuzzed (tests/fuzz/fuzz_ocsp_request.c).
 */
#include "ocsp/ocsp.h"

#include "pki/der.h"

#include <string.h>

static const uint8_t OID_SHA1[] = {0x2b, 0x0e, 0x03, 0x02, 0x1a};
static const uint8_t OID_SHA256[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};
static const uint8_t OID_NONCE[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02};

static const uint8_t ERRORS[7][5] = {
    {0x30, 0x03, 0x0a, 0x01, 0x00}, {0x30, 0x03, 0x0a, 0x01, 0x01}, {0x30, 0x03, 0x0a, 0x01, 0x02},
    {0x30, 0x03, 0x0a, 0x01, 0x03}, {0x30, 0x03, 0x0a, 0x01, 0x04}, {0x30, 0x03, 0x0a, 0x01, 0x05},
    {0x30, 0x03, 0x0a, 0x01, 0x06},
};

const uint8_t *revo_ocsp_error_response(int status, size_t *len)
{
	if (status < 1 || status > 6 || status == 4)
		status = REVO_OCSP_INTERNAL;
	*len = 5;
	return ERRORS[status];
}

static int parse_certid(const uint8_t *p, size_t n, revo_ocsp_certid_t *id)
{
	revo_der_in_t outer = {p, n}, in, alg;
	const uint8_t *v;
	size_t vl;
	memset(id, 0, sizeof(*id));
	if (revo_der_expect(&outer, REVO_DER_SEQUENCE, &v, &vl) || outer.len)
		return -1;
	in = (revo_der_in_t){v, vl};
	if (revo_der_expect(&in, REVO_DER_SEQUENCE, &v, &vl))
		return -1;
	alg = (revo_der_in_t){v, vl};
	if (revo_der_expect(&alg, REVO_DER_OID, &v, &vl))
		return -1;
	if (vl == sizeof(OID_SHA1) && memcmp(v, OID_SHA1, vl) == 0)
		id->hash = REVO_HASH_SHA1;
	else if (vl == sizeof(OID_SHA256) && memcmp(v, OID_SHA256, vl) == 0)
		id->hash = REVO_HASH_SHA256;
	/* parameters: absent or NULL or anything; not interpreted */
	if (revo_der_expect(&in, REVO_DER_OCTET_STRING, &id->name_hash, &id->name_hash_len) ||
	    revo_der_expect(&in, REVO_DER_OCTET_STRING, &id->key_hash, &id->key_hash_len) ||
	    revo_der_expect(&in, REVO_DER_INTEGER, &v, &vl) || in.len != 0 || vl == 0)
		return -1;
	id->der = p;
	id->der_len = n;
	id->serial_ok = !(v[0] & 0x80) && revo_serial_from_bytes(v, vl, &id->serial, NULL) == 0;
	return 0;
}

/* requestExtensions: find the nonce */
static int parse_extensions(const uint8_t *p, size_t n, revo_ocsp_request_t *out)
{
	revo_der_in_t in = {p, n}, exts;
	const uint8_t *v;
	size_t vl;
	if (revo_der_expect(&in, REVO_DER_SEQUENCE, &v, &vl) || in.len)
		return -1;
	exts = (revo_der_in_t){v, vl};
	while (exts.len) {
		const uint8_t *e, *oid, *val;
		size_t el, ol, vall;
		if (revo_der_expect(&exts, REVO_DER_SEQUENCE, &e, &el))
			return -1;
		revo_der_in_t ext = {e, el};
		if (revo_der_expect(&ext, REVO_DER_OID, &oid, &ol))
			return -1;
		const uint8_t *b;
		size_t bl;
		revo_der_expect(&ext, REVO_DER_BOOLEAN, &b, &bl);
		if (revo_der_expect(&ext, REVO_DER_OCTET_STRING, &val, &vall) || ext.len)
			return -1;
		if (ol == sizeof(OID_NONCE) && memcmp(oid, OID_NONCE, ol) == 0) {
			if (out->has_nonce)
				return -1;
			out->has_nonce = true;
			out->nonce_ext = val;
			out->nonce_ext_len = vall;
			/* RFC 9654: Nonce ::= OCTET STRING (SIZE(1..128)); tolerate a bare value */
			revo_der_in_t nv = {val, vall};
			const uint8_t *nn;
			size_t nl;
			if (revo_der_expect(&nv, REVO_DER_OCTET_STRING, &nn, &nl) == 0 &&
			    nv.len == 0)
				out->nonce_len = nl;
			else
				out->nonce_len = vall;
			if (out->nonce_len < 1 || out->nonce_len > 128)
				return -1;
		}
	}
	return 0;
}

int revo_ocsp_request_parse(const uint8_t *der, size_t len, size_t max_ids,
			    revo_ocsp_request_t *out)
{
	revo_der_in_t in = {der, len}, req, tbs, list;
	const uint8_t *v;
	size_t vl;
	uint8_t tag;
	out->n = 0;
	out->has_nonce = false;
	out->nonce_ext = NULL;
	out->nonce_ext_len = out->nonce_len = 0;
	out->signed_request = false;
	if (max_ids > REVO_OCSP_MAX_IDS)
		max_ids = REVO_OCSP_MAX_IDS;
	if (revo_der_expect(&in, REVO_DER_SEQUENCE, &v, &vl) || in.len)
		return REVO_EINVAL;
	req = (revo_der_in_t){v, vl};
	if (revo_der_expect(&req, REVO_DER_SEQUENCE, &v, &vl))
		return REVO_EINVAL;
	tbs = (revo_der_in_t){v, vl};
	if (req.len) {
		if (revo_der_expect(&req, REVO_DER_CTX(0), &v, &vl) || req.len)
			return REVO_EINVAL;
		out->signed_request = true;
	}
	/* [0] version (v1 only), [1] requestorName */
	if (revo_der_expect(&tbs, REVO_DER_CTX(0), &v, &vl) == 0) {
		static const uint8_t v1[] = {0x02, 0x01, 0x00};
		if (vl != sizeof(v1) || memcmp(v, v1, vl) != 0)
			return REVO_EINVAL;
	}
	revo_der_expect(&tbs, REVO_DER_CTX(1), &v, &vl);
	if (revo_der_expect(&tbs, REVO_DER_SEQUENCE, &v, &vl))
		return REVO_EINVAL;
	list = (revo_der_in_t){v, vl};
	while (list.len) {
		const uint8_t *r;
		size_t rl;
		if (revo_der_expect(&list, REVO_DER_SEQUENCE, &r, &rl))
			return REVO_EINVAL;
		if (out->n == max_ids)
			return REVO_EINVAL;
		revo_der_in_t one = {r, rl};
		const uint8_t *cid_start = one.p;
		if (revo_der_next(&one, &tag, &v, &vl) || tag != REVO_DER_SEQUENCE)
			return REVO_EINVAL;
		if (parse_certid(cid_start, (size_t)(one.p - cid_start), &out->ids[out->n]))
			return REVO_EINVAL;
		/* singleRequestExtensions [0]: ignored */
		if (one.len && (revo_der_expect(&one, REVO_DER_CTX(0), &v, &vl) || one.len))
			return REVO_EINVAL;
		out->n++;
	}
	if (out->n == 0)
		return REVO_EINVAL;
	if (tbs.len) {
		if (revo_der_expect(&tbs, REVO_DER_CTX(2), &v, &vl) || tbs.len)
			return REVO_EINVAL;
		if (parse_extensions(v, vl, out))
			return REVO_EINVAL;
	}
	return REVO_OK;
}

/* the slow path refuses paths that decode to more than this */
#define PATH_DEC_MAX 8192

/* The value of base64 digit @c (either alphabet), or -1. */
#define B64_VAL(c)                                                                                 \
	((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                    \
	 : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                               \
	 : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                               \
	 : (c) == '+' || (c) == '-' ? 62                                                           \
	 : (c) == '/' || (c) == '_' ? 63                                                           \
				    : -1)
/*
 * GET decoding tables, computed by the compiler: each octet's digit value already
 * shifted to its place in a group of four (so a group is four lookups ORed), B64_BAD
 * for an octet that is no digit ('=' included: padding is stripped before).
 */
#define B64_BAD        0x80000000u
#define B64_AT(sh, c)  (B64_VAL(c) < 0 ? B64_BAD : (uint32_t)B64_VAL(c) << (sh))
#define B64_R4(sh, c)  B64_AT(sh, c), B64_AT(sh, c + 1), B64_AT(sh, c + 2), B64_AT(sh, c + 3)
#define B64_R16(sh, c) B64_R4(sh, c), B64_R4(sh, c + 4), B64_R4(sh, c + 8), B64_R4(sh, c + 12)
#define B64_R64(sh, c) B64_R16(sh, c), B64_R16(sh, c + 16), B64_R16(sh, c + 32), B64_R16(sh, c + 48)
#define B64_R256(sh)   B64_R64(sh, 0), B64_R64(sh, 64), B64_R64(sh, 128), B64_R64(sh, 192)
static const uint32_t B64_0[256] = {B64_R256(18)}, B64_1[256] = {B64_R256(12)},
		      B64_2[256] = {B64_R256(6)}, B64_3[256] = {B64_R256(0)};

/* a hex digit's value plus one, 0 for anything else */
static const uint8_t HEX[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static int hexval(int c)
{
	return (int)HEX[c & 0xff] - 1;
}

static int b64val(int c)
{
	uint32_t v = B64_3[c & 0xff];
	return v & B64_BAD ? -1 : (int)v;
}

/*
 * Decode base64 (either alphabet, padding optional) of @s into @out; -1 when invalid.
 * Whole groups of four digits at a time; @out may be @s (decoding in place).
 */
static long b64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
	while (n && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -1;
	size_t i = 0, o = 0;
	for (; n - i >= 4; i += 4) {
		uint32_t v = B64_0[(unsigned char)s[i]] | B64_1[(unsigned char)s[i + 1]] |
			     B64_2[(unsigned char)s[i + 2]] | B64_3[(unsigned char)s[i + 3]];
		if ((v & B64_BAD) || cap - o < 3)
			return -1;
		out[o] = (uint8_t)(v >> 16);
		out[o + 1] = (uint8_t)(v >> 8);
		out[o + 2] = (uint8_t)v;
		o += 3;
	}
	uint32_t acc = 0;
	int bits = 0;
	for (; i < n; i++) {
		int v = b64val((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return (long)o;
}

/*
 * The general decoder: percent-decode the whole path, then try the segment after the
 * last literal '/', then the segment after every other '/', leftmost first.
 */
static int from_path_slow(const char *path, size_t path_len, uint8_t *buf, size_t cap,
			  size_t max_ids, revo_ocsp_request_t *out)
{
	char dec[PATH_DEC_MAX];
	size_t n = 0, last_literal = 0;
	bool have_literal = false;
	for (size_t i = 0; i < path_len && path[i] != '?' && path[i] != '#'; i++) {
		if (n == sizeof(dec))
			return REVO_EINVAL;
		if (path[i] == '/') {
			last_literal = n;
			have_literal = true;
		}
		if (path[i] == '%') {
			if (i + 2 >= path_len)
				return REVO_EINVAL;
			int h = hexval((unsigned char)path[i + 1]),
			    l = hexval((unsigned char)path[i + 2]);
			if (h < 0 || l < 0)
				return REVO_EINVAL;
			dec[n++] = (char)(h << 4 | l);
			i += 2;
		} else {
			dec[n++] = path[i];
		}
	}
	if (have_literal) {
		long dl = b64_decode(dec + last_literal + 1, n - last_literal - 1, buf, cap);
		if (dl > 0 && revo_ocsp_request_parse(buf, (size_t)dl, max_ids, out) == 0)
			return REVO_OK;
	}
	for (size_t i = 0; i < n; i++) {
		if (dec[i] != '/' || (have_literal && i == last_literal))
			continue;
		long dl = b64_decode(dec + i + 1, n - i - 1, buf, cap);
		if (dl > 0 && revo_ocsp_request_parse(buf, (size_t)dl, max_ids, out) == 0)
			return REVO_OK;
	}
	return REVO_EINVAL;
}

/* Percent-decode @s (@n octets) into @out; -1 for a bad escape or no room. */
static long pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (;;) {
		const char *pc = memchr(s, '%', n);
		size_t run = pc ? (size_t)(pc - s) : n;
		if (run > cap - o)
			return -1;
		memcpy(out + o, s, run);
		o += run;
		if (!pc)
			return (long)o;
		s += run;
		n -= run;
		if (n < 3 || o == cap || !HEX[(unsigned char)s[1]] || !HEX[(unsigned char)s[2]])
			return -1;
		out[o++] =
		    (char)((HEX[(unsigned char)s[1]] - 1) << 4 | (HEX[(unsigned char)s[2]] - 1));
		s += 3;
		n -= 3;
	}
}

int revo_ocsp_request_from_path(const char *path, size_t path_len, uint8_t *buf, size_t cap,
				size_t max_ids, revo_ocsp_request_t *out)
{
	/*
	 * Clients that follow RFC 6960 A.1 percent-encode the base64, so the request is
	 * what follows the last literal '/': percent-decode that segment into @buf, then
	 * base64-decode it there in place (no copy of the path, no allocation). Anything
	 * else (no literal '/', an escape in the prefix, a path the slow path refuses as
	 * too long, a segment that is not one request) takes the slow path, which also
	 * tries the segments after the other slashes (clients that leave '/' of the base64
	 * as is) and decides exactly as before.
	 */
	size_t end = path_len;
	const char *q = memchr(path, '?', end);
	if (q)
		end = (size_t)(q - path);
	q = memchr(path, '#', end);
	if (q)
		end = (size_t)(q - path);
	const char *slash = end <= PATH_DEC_MAX ? memrchr(path, '/', end) : NULL;
	if (slash && !memchr(path, '%', (size_t)(slash - path))) {
		size_t seg = (size_t)(slash + 1 - path);
		long m = pct_decode(path + seg, end - seg, (char *)buf, cap);
		long dl = m > 0 ? b64_decode((const char *)buf, (size_t)m, buf, cap) : -1;
		if (dl > 0 && revo_ocsp_request_parse(buf, (size_t)dl, max_ids, out) == 0)
			return REVO_OK;
	}
	return from_path_slow(path, path_len, buf, cap, max_ids, out);
}
