/*
 * Certificate and CRL helpers shared by the components: loading PEM/DER files, the
 * fields the store keeps (serial, validity, subject CN, fingerprint) and the OCSP
 * CertID hashes of an issuer (RFC 6960 4.1.1: hash of the subject name DER and of the
 * subjectPublicKey BIT STRING value).
 */
#ifndef REVO_PKI_CERT_H
#define REVO_PKI_CERT_H

#include "pki/err.h"
#include "pki/serial.h"

#include <openssl/x509.h>
#include <stdint.h>

/* Longest subject CN kept, in octets of UTF-8 (X.520 allows 64 characters). */
#define REVO_CN_MAX 255

typedef struct revo_cert_info {
	revo_serial_t serial;
	int64_t not_before;
	int64_t not_after;
	char cn[REVO_CN_MAX + 1]; /* UTF-8; "" when the subject has no CN */
	uint8_t sha256[32];       /* fingerprint of the DER */
} revo_cert_info_t;

typedef struct revo_issuer_hashes {
	uint8_t name_sha1[20];
	uint8_t key_sha1[20];
	uint8_t name_sha256[32];
	uint8_t key_sha256[32];
} revo_issuer_hashes_t;

/**
 * Load every certificate of @path: a PEM file with one or more CERTIFICATE blocks, or
 * one DER certificate. On success *@out is a new stack (caller frees with
 * sk_X509_pop_free(*out, X509_free)) holding at least one certificate.
 * Errors: REVO_EIO (cannot read), REVO_EINVAL (not a certificate).
 */
int revo_cert_load(const char *path, STACK_OF(X509) * *out, revo_errmsg_t *em);

/** Load one CRL (PEM or DER). Caller frees with X509_CRL_free. Errors as above. */
int revo_crl_load(const char *path, X509_CRL **out, revo_errmsg_t *em);

/** Fill @out from @x. Errors: REVO_EINVAL (bad serial or validity). */
int revo_cert_info(X509 *x, revo_cert_info_t *out, revo_errmsg_t *em);

/** Copy the last CN of @name into @buf as UTF-8 ("" when none). Truncated to @len-1. */
void revo_name_cn(const X509_NAME *name, char *buf, size_t len);

/**
 * Copy the last CN of an OpenSSL one-line subject ("/C=US/O=Corp/CN=host-1") into
 * @buf, undoing "\/" escapes. "" when none.
 */
void revo_oneline_cn(const char *subject, size_t n, char *buf, size_t len);

/** The CertID hashes of the issuer certificate @ca. Errors: REVO_ECRYPTO. */
int revo_cert_issuer_hashes(X509 *ca, revo_issuer_hashes_t *out, revo_errmsg_t *em);

/** Lower-case hex of @n octets into @buf (2n+1 bytes). Returns @buf. */
char *revo_hex(const uint8_t *p, size_t n, char *buf);

/** One-line RFC 2253 form of @name into @buf. Returns @buf. */
char *revo_name_text(const X509_NAME *name, char *buf, size_t len);

#endif
