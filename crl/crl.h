/*
 * The CRL builder: RFC 5280 v2 CRLs (full and delta) for one issuer, built from one
 * snapshot of the store and streamed, so memory does not grow with the number of
 * entries. Output is verified, then written atomically (temporary file, fsync, rename).
 */
#ifndef REVO_CRL_CRL_H
#define REVO_CRL_CRL_H

#include "pki/err.h"
#include "store/store.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Roles Anywhere accepts crlData (base64 of the PEM CRL) of at most this many characters. */
#define REVO_CRLDATA_LIMIT 300000

typedef struct revo_crl_opts {
	bool delta;        /* a delta CRL against the last full CRL */
	bool keep_expired; /* keep entries whose certificate expired before the previous CRL */
	bool pem;          /* write PEM instead of DER */
	bool rsa_pss;      /* sign with RSASSA-PSS when the key is an rsaEncryption key */
	int64_t now;       /* thisUpdate; 0: the current time */
} revo_crl_opts_t;

typedef struct revo_crl_info {
	uint64_t number;      /* CRL Number */
	uint64_t base_number; /* delta CRLs: the base CRL they name */
	size_t entries;       /* revokedCertificates entries */
	size_t pruned;        /* entries left out: certificate expired before the previous CRL */
	size_t der_size;      /* octets of the DER CRL */
	size_t file_size;     /* octets written (DER or PEM) */
	size_t crldata_len;   /* length of base64(PEM): Roles Anywhere's crlData */
	int64_t this_update;
	int64_t next_update;
	uint64_t seq; /* journal sequence of the snapshot the CRL reflects */
} revo_crl_info_t;

/**
 * Build and sign the CRL of @is with @key and write it to @out_path.
 *
 * Checks first (nothing allocated or written on failure): @key matches the issuer
 * certificate, the output directory is writable, a delta has a base. Then a CRL number
 * is allocated (synced), the CRL is built in one read snapshot, its signature is
 * verified, and the file is renamed into place; the store then records the CRL as
 * written (the base of later deltas, and the reference time for pruning).
 *
 * @info (may be NULL) is filled on success. Errors: REVO_ECRYPTO (key mismatch,
 * signing or verification failed), REVO_EIO (output), REVO_ESTATE (delta without a
 * base), store errors.
 */
int revo_crl_build(revo_store_t *st, const revo_issuer_t *is, EVP_PKEY *key,
		   const revo_crl_opts_t *opts, const char *out_path, revo_crl_info_t *info,
		   revo_errmsg_t *em);

/** The length of base64(PEM of a DER CRL of @der_size octets), as Roles Anywhere counts. */
size_t revo_crl_crldata_len(size_t der_size);

#endif
