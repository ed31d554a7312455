/*
 * Certificate serial numbers: positive DER INTEGERs of at most 20 octets (RFC 5280
 * 4.1.2.2), held as their big-endian magnitude without leading zeros. Text form is
 * hexadecimal: "0x" prefix, colons and case are accepted on input; output is upper-case
 * hex with an even number of digits ("0A1B").
 */
#ifndef REVO_PKI_SERIAL_H
#define REVO_PKI_SERIAL_H

#include "pki/err.h"

#include <openssl/asn1.h>
#include <stdbool.h>
#include <stdint.h>

#define REVO_SERIAL_MAX 20
/* Upper-case hex of 20 octets and a NUL. */
#define REVO_SERIAL_HEX_MAX (2 * REVO_SERIAL_MAX + 1)

typedef struct revo_serial {
	uint8_t len;                  /* 1..20 */
	uint8_t mag[REVO_SERIAL_MAX]; /* big-endian, mag[0] != 0 */
} revo_serial_t;

/**
 * Parse a hexadecimal serial. Errors: REVO_EINVAL (empty, not hex, negative, zero,
 * longer than 20 octets), with a detail in @em.
 */
int revo_serial_parse(const char *text, revo_serial_t *out, revo_errmsg_t *em);

/** Set @out from a big-endian magnitude; leading zero octets are skipped. Same errors. */
int revo_serial_from_bytes(const uint8_t *p, size_t n, revo_serial_t *out, revo_errmsg_t *em);

/** Set @out from an ASN1_INTEGER (certificate or CRL entry). Same errors. */
int revo_serial_from_asn1(const ASN1_INTEGER *ai, revo_serial_t *out, revo_errmsg_t *em);

/** Write the text form into @buf (at least REVO_SERIAL_HEX_MAX bytes). Returns @buf. */
char *revo_serial_format(const revo_serial_t *s, char *buf);

/** Numeric comparison: <0, 0, >0. */
int revo_serial_cmp(const revo_serial_t *a, const revo_serial_t *b);

#endif
