/*
 * The OCSP component (RFC 6960, with the RFC 5019 / RFC 9919 lightweight profile):
 * request decoding, response signing, pre-signing into the store, and the responder.
 *
 * The responder answers from pre-signed responses and holds no key unless it is given
 * the delegated responder key, which it then uses only for what cannot be pre-signed
 * (nonces, several CertIDs, missing or stale responses).
 */
#ifndef REVO_OCSP_OCSP_H
#define REVO_OCSP_OCSP_H

#include "pki/err.h"
#include "pki/serial.h"
#include "store/store.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard cap on CertIDs per request (the responder's --max-certids is at most this). */
#define REVO_OCSP_MAX_IDS 64

/* OCSPResponseStatus */
enum revo_ocsp_status {
	REVO_OCSP_SUCCESSFUL = 0,
	REVO_OCSP_MALFORMED = 1,
	REVO_OCSP_INTERNAL = 2,
	REVO_OCSP_TRY_LATER = 3,
	REVO_OCSP_SIG_REQUIRED = 5,
	REVO_OCSP_UNAUTHORIZED = 6,
};

/** One CertID of a request; pointers borrow from the request's DER. */
typedef struct revo_ocsp_certid {
	int hash;           /* enum revo_ocsp_hash, or 0 for another algorithm */
	const uint8_t *der; /* the whole CertID */
	size_t der_len;
	const uint8_t *name_hash;
	size_t name_hash_len;
	const uint8_t *key_hash;
	size_t key_hash_len;
	bool serial_ok; /* false: zero, negative or longer than 20 octets */
	revo_serial_t serial;
} revo_ocsp_certid_t;

typedef struct revo_ocsp_request {
	size_t n;
	revo_ocsp_certid_t ids[REVO_OCSP_MAX_IDS];
	bool has_nonce;
	const uint8_t *nonce_ext; /* the nonce extension's extnValue, echoed as is */
	size_t nonce_ext_len;
	size_t nonce_len; /* octets of the nonce itself */
	bool signed_request;
} revo_ocsp_request_t;

/**
 * Decode a DER OCSPRequest of @len octets (no allocation; @out borrows from @der).
 * Errors: REVO_EINVAL (malformed, no CertID, more than @max_ids CertIDs, a nonce that
 * is empty or longer than 128 octets: all answered with malformedRequest).
 */
int revo_ocsp_request_parse(const uint8_t *der, size_t len, size_t max_ids,
			    revo_ocsp_request_t *out);

/**
 * Decode the request of an HTTP GET path (RFC 6960 A.1): percent-decoding, then
 * base64 (standard or URL-safe, padding optional) of the DER, found after any path
 * prefix. @buf (@cap octets) receives the DER, which @out borrows. Errors: REVO_EINVAL.
 */
int revo_ocsp_request_from_path(const char *path, size_t path_len, uint8_t *buf, size_t cap,
				size_t max_ids, revo_ocsp_request_t *out);

/** The fixed DER of an unsuccessful OCSPResponse with @status (5 octets). */
const uint8_t *revo_ocsp_error_response(int status, size_t *len);

/* ---- signing ---- */

/** Who signs responses: the CA itself or a delegated responder. */
typedef struct revo_ocsp_signer {
	X509 *ca;   /* the issuer */
	X509 *cert; /* the signing certificate (== ca, or the delegated one) */
	EVP_PKEY *key;
	uint32_t issuer_id;
	revo_issuer_hashes_t hashes;
	/* prepared once by revo_ocsp_signer_load: what every response repeats */
	uint8_t key_id[20]; /* responderID byKey: SHA-1 of the signer's public key */
	uint8_t *alg_der;   /* signatureAlgorithm */
	size_t alg_len;
	uint8_t *certs_der; /* certs [0]: the signer certificate (and the CA's) */
	size_t certs_len;
	const EVP_MD *md; /* NULL for EdDSA */
	bool pss;
} revo_ocsp_signer_t;

/** One answer of a response. */
typedef struct revo_ocsp_single {
	const uint8_t *certid_der; /* the CertID to answer for */
	size_t certid_len;
	int status; /* enum revo_cert_status */
	int64_t revoked_at;
	int reason; /* -1: no reason */
	int64_t this_update, next_update;
} revo_ocsp_single_t;

/**
 * Build and sign a successful BasicOCSPResponse (responderID byKey; the signer
 * certificate included when delegated). @extended_revoke adds the RFC 6960 2.2 extended
 * revoked definition extension; @nonce_ext (may be NULL) is echoed; producedAt is now.
 * *@der is allocated
 * (caller frees with OPENSSL_free). Errors: REVO_ECRYPTO, REVO_ENOMEM.
 */
int revo_ocsp_sign(const revo_ocsp_signer_t *s, const revo_ocsp_single_t *singles, size_t n,
		   bool extended_revoke, const uint8_t *nonce_ext, size_t nonce_len, uint8_t **der,
		   size_t *der_len, revo_errmsg_t *em);

/** The DER CertID of (@hash, issuer @hashes, @serial) into @out (<= 160 octets). */
size_t revo_ocsp_certid(int hash, const revo_issuer_hashes_t *hashes, const revo_serial_t *serial,
			uint8_t *out);

/**
 * Load the signer of @is: its delegated responder certificate and key when it has
 * them (and @prefer_ca is false), else the CA certificate and key. Caller frees with
 * revo_ocsp_signer_free. Errors: key loading errors, REVO_ECRYPTO (mismatch, a delegated
 * certificate without id-kp-OCSPSigning).
 */
int revo_ocsp_signer_load(const revo_issuer_t *is, bool prefer_ca, const char *pass_file,
			  bool force_perms, revo_ocsp_signer_t *out, revo_errmsg_t *em);
void revo_ocsp_signer_free(revo_ocsp_signer_t *s);

/* ---- pre-signing ---- */

typedef struct revo_presign_stats {
	size_t certs;     /* unexpired certificates answered for */
	size_t revoked;   /* of which revoked (plus revoked serials never registered) */
	size_t responses; /* responses signed (one per CertID hash) */
} revo_presign_stats_t;

/**
 * Sign a response for every unexpired registered certificate of the signer's issuer
 * and every revoked serial, for SHA-1 and SHA-256 CertIDs, valid for the issuer's OCSP
 * validity, into the store in batches (each a short write transaction).
 */
int revo_ocsp_presign(revo_store_t *st, const revo_issuer_t *is, const revo_ocsp_signer_t *s,
		      revo_presign_stats_t *stats, revo_errmsg_t *em);

/**
 * Re-sign the responses of @n serials of @is (after a revocation, an unhold or a new
 * certificate): one batch, one transaction.
 */
int revo_ocsp_presign_serials(revo_store_t *st, const revo_issuer_t *is,
			      const revo_ocsp_signer_t *s, const revo_serial_t *serials, size_t n,
			      revo_presign_stats_t *stats, revo_errmsg_t *em);

/* ---- the responder ---- */

enum revo_non_issued { REVO_NONISSUED_UNKNOWN = 0, REVO_NONISSUED_REVOKED, REVO_NONISSUED_GOOD };

typedef struct revo_ocsp_server_cfg {
	const char *store_dir;
	const char *const *listen; /* "HOST:PORT", "[V6]:PORT" */
	size_t n_listen;
	int threads;
	int non_issued; /* enum revo_non_issued */
	bool sign;      /* load signers (delegated keys) for on-demand answers */
	const char *pass_file;
	bool force_perms;
	size_t max_ids;
	size_t max_body;
	size_t max_header;
	int max_conns;       /* per worker */
	int idle_timeout;    /* seconds */
	int read_timeout;    /* seconds */
	int64_t max_age_cap; /* seconds: cap on Cache-Control max-age */
	void (*ready)(void *ctx, const char *const *bound, size_t n); /* after binding */
	void *ready_ctx;
} revo_ocsp_server_cfg_t;

/**
 * Run the responder until SIGTERM or SIGINT (then drain and return 0). SIGHUP reloads
 * issuers, certificates and keys. Errors: bind failures, store errors.
 */
int revo_ocsp_serve(const revo_ocsp_server_cfg_t *cfg, revo_errmsg_t *em);

#endif
