/*
 * Loading private keys by reference (KEYREF): a file path (PEM or DER, PKCS#8 or
 * traditional, encrypted or not) or a pkcs11: URI (RFC 7512) served by the libp11
 * engine (Debian libengine-pkcs11-openssl). Passphrases come from REVO_KEY_PASS or a
 * pass file; PINs from the URI (pin-value / pin-source) or REVO_PKCS11_PIN. Key files
 * readable by group or others are refused unless forced.
 */
#ifndef REVO_PKI_KEY_H
#define REVO_PKI_KEY_H

#include "pki/err.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>

typedef struct revo_key_opts {
	const char *pass_file; /* first line is the passphrase; NULL: REVO_KEY_PASS */
	bool force_perms;      /* accept a key file readable by group or others */
} revo_key_opts_t;

/**
 * Load the private key @ref. Caller frees *@out with EVP_PKEY_free.
 * Errors: REVO_EIO (cannot read), REVO_EACCES (file permissions too open),
 * REVO_ECRYPTO (wrong passphrase or PIN, token error, not a key), REVO_EINVAL.
 */
int revo_key_load(const char *ref, const revo_key_opts_t *o, EVP_PKEY **out, revo_errmsg_t *em);

/**
 * Check that @key is the private half of @cert's public key (comparing, or signing and
 * verifying a test message when the key cannot be compared, as with a token).
 * Errors: REVO_ECRYPTO.
 */
int revo_key_matches(EVP_PKEY *key, X509 *cert, revo_errmsg_t *em);

/** The digest to sign with for @key (SHA-256/384/512 by size; NULL for EdDSA). */
const EVP_MD *revo_key_digest(EVP_PKEY *key);

#endif
