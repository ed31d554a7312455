/*
 * revo error codes: one enum for every component, one strerror table.
 *
 * Functions return 0 (REVO_OK) or a negative revo_err. Codes from LMDB, OpenSSL and
 * libcurl are translated once, where they enter our code. Callers that want the human
 * sentence ("issuer 'corp' has no certificate with serial 0A") pass a revo_errmsg_t;
 * it may be NULL. The first message set wins, so the deepest (most specific) one stays.
 */
#ifndef REVO_PKI_ERR_H
#define REVO_PKI_ERR_H

#include <stddef.h>

enum revo_err {
	REVO_OK = 0,
	REVO_ENOMEM = -1,    /* out of memory */
	REVO_EINVAL = -2,    /* invalid input (parse error, bad value) */
	REVO_ENOTFOUND = -3, /* no such issuer / certificate / entry */
	REVO_EEXIST = -4,    /* already exists */
	REVO_EIO = -5,       /* I/O error (read, write, fsync) */
	REVO_ENOSTORE = -6,  /* directory is not a revo store */
	REVO_EVERSION = -7,  /* store written by a newer schema */
	REVO_EACCES = -8,    /* permission denied / read-only */
	REVO_ECRYPTO = -9,   /* signature does not verify, key mismatch, OpenSSL failure */
	REVO_ECORRUPT = -10, /* stored value cannot be decoded */
	REVO_ESTATE =
	    -11, /* operation not allowed in this state (unhold of a permanent revocation) */
	REVO_EINTERNAL = -12,
};

/** Static description of a revo_err code; never NULL. */
const char *revo_strerror(int err);

/** Optional, caller-owned detail for an error: one human sentence, no newline. */
typedef struct revo_errmsg {
	char msg[512];
} revo_errmsg_t;

/**
 * Record a detail message (printf format) in @em unless one is already there, and
 * return @err, so that `return revo_err_set(em, REVO_EINVAL, "...")` reads naturally.
 * @em may be NULL.
 */
int revo_err_set(revo_errmsg_t *em, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Clear @em (may be NULL). */
void revo_err_clear(revo_errmsg_t *em);

/**
 * Like revo_err_set, but appends OpenSSL's first queued error reason (and clears the
 * OpenSSL error queue), e.g. "CA.pem: not a certificate (PEM: no start line)".
 */
int revo_err_set_ssl(revo_errmsg_t *em, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
