/*
 * Internals of the store shared by its source files: the value codec and the key
 * encodings. Values are a version octet followed by fixed-width big-endian integers and
 * length-prefixed (u32) byte strings, in an order fixed per record type (docs/store.md).
 */
#ifndef REVO_STORE_INTERNAL_H
#define REVO_STORE_INTERNAL_H

#include "pki/serial.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* issuer id (4) + length (1) + magnitude (<= 20) */
#define REVO_SKEY_MAX (4 + 1 + REVO_SERIAL_MAX)

/** Encode the key of (issuer, serial) into @out; returns its length. */
size_t revo_skey_encode(uint32_t issuer_id, const revo_serial_t *s, uint8_t *out);

/** Decode a key; false when malformed. */
bool revo_skey_decode(const uint8_t *p, size_t n, uint32_t *issuer_id, revo_serial_t *s);

/* A writer into a growable buffer; errors are sticky (oom). */
typedef struct revo_wbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
	uint8_t inline_buf[1024];
} revo_wbuf_t;

void revo_wbuf_init(revo_wbuf_t *w);
void revo_wbuf_free(revo_wbuf_t *w);
void revo_wbuf_u8(revo_wbuf_t *w, uint8_t v);
void revo_wbuf_u32(revo_wbuf_t *w, uint32_t v);
void revo_wbuf_u64(revo_wbuf_t *w, uint64_t v);
void revo_wbuf_bytes(revo_wbuf_t *w, const void *p, size_t n); /* u32 length + data */
void revo_wbuf_str(revo_wbuf_t *w, const char *s);             /* NULL writes length 0xffffffff */
void revo_wbuf_raw(revo_wbuf_t *w, const void *p, size_t n);   /* no length */

/* A reader; any short read makes it bad (sticky), and later reads return zeros. */
typedef struct revo_rbuf {
	const uint8_t *p;
	size_t len, off;
	bool bad;
} revo_rbuf_t;

void revo_rbuf_init(revo_rbuf_t *r, const void *p, size_t n);
uint8_t revo_rbuf_u8(revo_rbuf_t *r);
uint32_t revo_rbuf_u32(revo_rbuf_t *r);
uint64_t revo_rbuf_u64(revo_rbuf_t *r);
/** Borrow a length-prefixed byte string; *n gets its length. NULL for a NULL string. */
const uint8_t *revo_rbuf_bytes(revo_rbuf_t *r, size_t *n);
/** Borrow @n raw octets. */
const uint8_t *revo_rbuf_raw(revo_rbuf_t *r, size_t n);

static inline void revo_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t revo_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void revo_be64(uint8_t *p, uint64_t v)
{
	revo_be32(p, (uint32_t)(v >> 32));
	revo_be32(p + 4, (uint32_t)v);
}

static inline uint64_t revo_get_be64(const uint8_t *p)
{
	return (uint64_t)revo_get_be32(p) << 32 | revo_get_be32(p + 4);
}

#endif
