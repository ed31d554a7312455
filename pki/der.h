/*
 * A small DER writer for the structures revo builds itself (CRLs, and later OCSP
 * responses): a growable buffer with sticky out-of-memory, TLV helpers, and the few
 * primitive encodings needed (INTEGER from a magnitude, times). Constructed values are
 * built inside-out: encode the content into one buffer, then wrap it with a tag.
 */
#ifndef REVO_PKI_DER_H
#define REVO_PKI_DER_H

#include "pki/serial.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REVO_DER_SEQUENCE     0x30
#define REVO_DER_INTEGER      0x02
#define REVO_DER_BIT_STRING   0x03
#define REVO_DER_OCTET_STRING 0x04
#define REVO_DER_OID          0x06
#define REVO_DER_ENUMERATED   0x0a
#define REVO_DER_UTCTIME      0x17
#define REVO_DER_GENTIME      0x18
#define REVO_DER_BOOLEAN      0x01
#define REVO_DER_CTX(n)       (0xa0 | (n)) /* [n] constructed */
#define REVO_DER_CTX_PRIM(n)  (0x80 | (n)) /* [n] primitive */

typedef struct revo_der {
	uint8_t *p;
	size_t len, cap;
	bool oom;
} revo_der_t;

void revo_der_init(revo_der_t *d);
void revo_der_free(revo_der_t *d);
void revo_der_reset(revo_der_t *d);

/** Number of octets of the header (tag and length) of a value of @len octets. */
size_t revo_der_hdr_size(size_t len);
/** Write tag and length at @out; returns the octets written (<= 6). */
size_t revo_der_hdr(uint8_t *out, uint8_t tag, size_t len);

void revo_der_raw(revo_der_t *d, const void *p, size_t n);
void revo_der_tlv(revo_der_t *d, uint8_t tag, const void *p, size_t n);
/** Append @content wrapped in @tag. */
void revo_der_wrap(revo_der_t *d, uint8_t tag, const revo_der_t *content);
/** Append an INTEGER holding a non-negative value. */
void revo_der_uint(revo_der_t *d, uint64_t v);

/**
 * Encode the INTEGER of a serial (a leading 0x00 when the top bit is set) at @out;
 * returns its size (<= 23).
 */
size_t revo_der_serial(uint8_t *out, const revo_serial_t *s);

/**
 * Encode a Time (RFC 5280 4.1.2.5: UTCTime for 1950-2049, GeneralizedTime otherwise;
 * @generalized forces GeneralizedTime) at @out; returns its size (15 or 17).
 */
size_t revo_der_time(uint8_t *out, int64_t t, bool generalized);

/* ---- reading ---- */

/** A cursor over DER input; reading never goes past p + len. */
typedef struct revo_der_in {
	const uint8_t *p;
	size_t len;
} revo_der_in_t;

/**
 * Read the next TLV of @in: single-octet tags only, definite lengths of at most 4
 * octets in minimal form. On success *@tag, *@val, *@vlen are set, @in advances past the
 * value, and 0 is returned; -1 on malformed or truncated input (@in is then unchanged).
 */
int revo_der_next(revo_der_in_t *in, uint8_t *tag, const uint8_t **val, size_t *vlen);

/** Like revo_der_next, but the tag must be @want. */
int revo_der_expect(revo_der_in_t *in, uint8_t want, const uint8_t **val, size_t *vlen);

#endif
