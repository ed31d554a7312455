/*
 * The revo store: one LMDB environment holding the issuers, every certificate they
 * issued, the revocations, a journal of every change, and metadata (schema version).
 *
 * Everything here is transactional: each write function is one LMDB write transaction
 * that either commits whole or leaves the store as it was. Readers see consistent
 * snapshots. The map grows by itself when full. Layout: docs/store.md.
 *
 * Thread safety: a revo_store_t may be used from one thread at a time.
 */
#ifndef REVO_STORE_STORE_H
#define REVO_STORE_STORE_H

#include "pki/cert.h"
#include "pki/err.h"
#include "pki/serial.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The schema version this code writes and the newest it can read. */
#define REVO_STORE_SCHEMA_VERSION 1

typedef struct revo_store revo_store_t;

/** Who makes a change; recorded in every journal entry. */
typedef struct revo_actor {
	char user[64];
	uint32_t uid;
	char host[256];
	char sudo_user[64]; /* "" when not under sudo */
} revo_actor_t;

/** Fill @out for the calling process: user name of the real uid, uid, host, SUDO_USER. */
void revo_actor_self(revo_actor_t *out);

enum revo_store_open_flags {
	REVO_STORE_READONLY = 1 << 0, /* open for reading only (MDB_RDONLY) */
};

/**
 * Create a store in @dir (the directory is created when missing) or check that the
 * one there is usable. *@created (may be NULL) tells which. Journals an "init" entry
 * when created. Errors: REVO_EIO, REVO_EACCES, REVO_ENOSTORE (a non-empty directory that
 * holds something else), REVO_EVERSION.
 */
int revo_store_init(const char *dir, bool *created, revo_errmsg_t *em);

/**
 * Open the store in @dir. Nothing is created: a directory that is not a store is
 * refused untouched. The environment variable REVO_MAP_SIZE (bytes) sets the initial
 * map size (default 16 GiB of address space; the map doubles when full).
 * Errors: REVO_ENOSTORE, REVO_EVERSION, REVO_EACCES, REVO_EIO, REVO_ENOMEM.
 * Caller closes *@out with revo_store_close.
 */
int revo_store_open(const char *dir, unsigned flags, revo_store_t **out, revo_errmsg_t *em);

/** Close @st (may be NULL). */
void revo_store_close(revo_store_t *st);

/** Record @actor instead of the calling process in journal entries from now on. */
void revo_store_set_actor(revo_store_t *st, const revo_actor_t *actor);

/* ---- issuers ---- */

#define REVO_ISSUER_NAME_MAX 63

typedef struct revo_issuer {
	uint32_t id; /* assigned by the store, from 1 */
	char name[REVO_ISSUER_NAME_MAX + 1];
	uint8_t *cert_der; /* the CA certificate */
	size_t cert_len;
	revo_issuer_hashes_t hashes; /* OCSP CertID lookup keys */
	char *key_ref;               /* absolute path or pkcs11: URI */
	uint8_t *ocsp_cert_der;      /* delegated responder certificate, or NULL */
	size_t ocsp_cert_len;
	char *ocsp_key_ref;    /* or NULL */
	int64_t crl_validity;  /* seconds */
	int64_t crl_every;     /* seconds */
	int64_t ocsp_validity; /* seconds */
	int64_t created;       /* time of registration */
	char *crl_url;         /* the full CRL's URL (Issuing Distribution Point), or NULL */
	char *delta_url;       /* the delta CRL's URL (Freshest CRL in full CRLs), or NULL */
} revo_issuer_t;

/**
 * Register an issuer; @in->id and @in->created are ignored and set in *@id_out and by
 * the store. Errors: REVO_EEXIST (the name, or the same certificate, is registered),
 * REVO_EINVAL (bad name).
 */
int revo_store_issuer_add(revo_store_t *st, const revo_issuer_t *in, uint32_t *id_out,
			  revo_errmsg_t *em);

/**
 * Replace the settings of the existing issuer @in->id (its name, certificate and hashes
 * are kept): key references, delegated OCSP certificate, validities, URLs. Journals an
 * "issuer-set" entry with @detail. Errors: REVO_ENOTFOUND.
 */
int revo_store_issuer_set(revo_store_t *st, const revo_issuer_t *in, const char *detail,
			  revo_errmsg_t *em);

/**
 * All issuers, by id. *@out is a new array of *@n entries (possibly 0, then *@out may be
 * NULL); the caller frees it with revo_issuers_free.
 */
int revo_store_issuers(revo_store_t *st, revo_issuer_t **out, size_t *n, revo_errmsg_t *em);

/** Free an array from revo_store_issuers. */
void revo_issuers_free(revo_issuer_t *v, size_t n);

/* ---- certificates and revocations ---- */

typedef struct revo_cert_rec {
	uint32_t issuer_id;
	revo_serial_t serial;
	int64_t not_before; /* 0 when unknown (index.txt imports) */
	int64_t not_after;
	char cn[REVO_CN_MAX + 1]; /* "" when none */
	bool has_sha256;
	uint8_t sha256[32]; /* certificate fingerprint, when known */
} revo_cert_rec_t;

typedef struct revo_revocation {
	uint32_t issuer_id;
	revo_serial_t serial;
	int64_t revoked_at;
	int reason;             /* enum revo_reason, never removeFromCRL */
	int64_t invalidity;     /* invalidity date, 0 when none */
	int64_t cert_not_after; /* notAfter of the certificate when registered, else 0
				   (kept by the store; lets a CRL scan prune expired entries) */
	bool at_explicit;       /* in: revoked_at was chosen by the user (see apply) */
	uint64_t seq;           /* out: journal sequence of the revocation */
} revo_revocation_t;

/** One change: register a certificate, revoke one, or both (same issuer and serial). */
typedef struct revo_change {
	const revo_cert_rec_t *cert;     /* may be NULL */
	const revo_revocation_t *revoke; /* may be NULL */
} revo_change_t;

enum revo_cert_result { REVO_CERT_NONE = 0, REVO_CERT_ADDED, REVO_CERT_PRESENT };
enum revo_rev_result {
	REVO_REV_NONE = 0,
	REVO_REV_REVOKED,       /* newly revoked */
	REVO_REV_ALREADY,       /* already revoked: nothing changed */
	REVO_REV_HOLD_REPLACED, /* certificateHold replaced by a permanent reason */
};

typedef struct revo_change_result {
	int cert;                  /* enum revo_cert_result */
	int rev;                   /* enum revo_rev_result */
	bool issued;               /* the store knows the certificate (after the change) */
	revo_revocation_t current; /* the revocation in force after the change (rev != NONE) */
} revo_change_result_t;

enum revo_apply_flags {
	REVO_APPLY_NOSYNC = 1 << 0, /* commit without fsync (batch imports; sync at the end) */
	REVO_APPLY_DRYRUN = 1 << 1, /* compute the results, then abort */
};

/**
 * Apply @n changes in one write transaction, journaling each real change with @detail
 * (may be NULL). A certificate already registered is left alone (REVO_CERT_PRESENT);
 * one registered with a different fingerprint is an error. A serial already revoked
 * keeps its revocation (REVO_REV_ALREADY) unless it is on hold and the new reason is
 * permanent: then the reason and invalidity date are replaced, and the revocation time
 * too when at_explicit (REVO_REV_HOLD_REPLACED). Without REVO_APPLY_NOSYNC the function
 * returns only after the commit is on disk. @results (n entries, may be NULL) are set.
 * Errors: REVO_EINVAL (removeFromCRL or a bad reason, a time in the future, mismatched
 * cert/revoke pair, unknown issuer id), REVO_EEXIST (fingerprint conflict), REVO_EIO,
 * REVO_EACCES.
 */
int revo_store_apply(revo_store_t *st, const revo_change_t *changes, size_t n, unsigned flags,
		     const char *detail, revo_change_result_t *results, revo_errmsg_t *em);

/**
 * Take a certificate off hold: removes a certificateHold revocation and journals it
 * with @detail (may be NULL).
 * *@seq (may be NULL) gets the journal sequence. Errors: REVO_ENOTFOUND (not revoked),
 * REVO_ESTATE (revoked for a permanent reason).
 */
int revo_store_unhold(revo_store_t *st, uint32_t issuer_id, const revo_serial_t *serial,
		      const char *detail, uint64_t *seq, revo_errmsg_t *em);

/**
 * Look up one serial in one snapshot: *@has_cert / *@has_rev tell what was found and
 * @cert / @rev (either may be NULL) are filled. Errors: REVO_ECORRUPT, REVO_EIO.
 */
int revo_store_lookup(revo_store_t *st, uint32_t issuer_id, const revo_serial_t *serial,
		      revo_cert_rec_t *cert, bool *has_cert, revo_revocation_t *rev, bool *has_rev,
		      revo_errmsg_t *em);

/**
 * Every registered certificate whose subject CN is @cn, of @issuer_id (0: of every
 * issuer). *@out is a new array (caller frees with free()); *@n may be 0.
 */
int revo_store_find_cn(revo_store_t *st, const char *cn, uint32_t issuer_id, revo_cert_rec_t **out,
		       size_t *n, revo_errmsg_t *em);

/**
 * Called per serial in issuer then serial order. @cert is NULL for a revoked serial
 * the store never registered; @rev is NULL when not revoked. Both are borrowed for the
 * call. Return 0 to go on, anything else to stop (returned by revo_store_list).
 */
typedef int (*revo_list_cb)(void *ctx, const revo_cert_rec_t *cert, const revo_revocation_t *rev);

/** Walk certificates (or only revocations) of @issuer_id (0: all) in one snapshot. */
int revo_store_list(revo_store_t *st, uint32_t issuer_id, bool revoked_only, revo_list_cb cb,
		    void *ctx, revo_errmsg_t *em);

/**
 * The same, starting after serial @after (NULL: from the first) of @issuer_id (not 0
 * when @after is given), so that a long walk can be done in pieces, each its own
 * snapshot, with writes in between.
 */
int revo_store_list_after(revo_store_t *st, uint32_t issuer_id, const revo_serial_t *after,
			  bool revoked_only, revo_list_cb cb, void *ctx, revo_errmsg_t *em);

/* ---- journal ---- */

enum revo_op {
	REVO_OP_INIT = 1,
	REVO_OP_ISSUER_ADD = 2,
	REVO_OP_CERT_ADD = 3,
	REVO_OP_REVOKE = 4,
	REVO_OP_UNHOLD = 5,
	REVO_OP_TARGET_ADD = 6,
	REVO_OP_ISSUER_SET = 7,
	REVO_OP_TARGET_REMOVE = 8,
};

/** "init", "issuer-add", "cert-add", "revoke", "unhold", "target-add", "issuer-set",
 * "target-remove", or "?" */
const char *revo_op_name(int op);

typedef struct revo_journal_entry {
	uint64_t seq;
	int64_t time_us;    /* microseconds since the epoch */
	int op;             /* enum revo_op */
	uint32_t issuer_id; /* 0 when none */
	bool has_serial;
	revo_serial_t serial;
	int reason;         /* -1 when none */
	int64_t revoked_at; /* 0 when none */
	int64_t invalidity; /* 0 when none */
	uint32_t uid;
	const char *user; /* borrowed: valid during the callback */
	const char *host;
	const char *sudo_user; /* "" when none */
	const char *detail;    /* "" when none */
} revo_journal_entry_t;

typedef int (*revo_journal_cb)(void *ctx, const revo_journal_entry_t *e);

/** Walk journal entries with seq > @since, oldest first, in one snapshot. */
int revo_store_journal(revo_store_t *st, uint64_t since, revo_journal_cb cb, void *ctx,
		       revo_errmsg_t *em);

/* ---- imports ---- */

/** One line of an OpenSSL index.txt, ready for revo_store_apply. */
typedef struct revo_index_line {
	revo_cert_rec_t cert;
	bool revoked; /* R line (not removeFromCRL): @rev is set */
	revo_revocation_t rev;
} revo_index_line_t;

/**
 * Parse one index.txt line of @len octets (without its newline) for @issuer_id. V, R
 * and E lines register the certificate (notAfter, subject CN); R lines also revoke it
 * with the revocation time, reason and, for keyCompromise / cACompromise (and OpenSSL's
 * keyTime / CAkeyTime spellings), the compromise time as invalidity date. OpenSSL's
 * holdInstruction is certificateHold; a removeFromCRL line leaves the certificate
 * unrevoked. Times after @now are refused. Errors: REVO_EINVAL with a detail in @em.
 */
int revo_index_parse_line(const char *line, size_t len, uint32_t issuer_id, int64_t now,
			  revo_index_line_t *out, revo_errmsg_t *em);

/* ---- CRL state (meta) ---- */

typedef struct revo_crl_state {
	uint64_t last_number;     /* highest CRL number allocated (0: none yet) */
	uint64_t base_number;     /* number of the last full CRL written (0: none) */
	uint64_t base_seq;        /* journal sequence that full CRL was built at */
	int64_t base_this_update; /* its thisUpdate */
	int64_t last_this_update; /* thisUpdate of the last CRL written, full or delta */
} revo_crl_state_t;

/** Read the CRL state of @issuer_id (all zero when no CRL was ever made). */
int revo_store_crl_state(revo_store_t *st, uint32_t issuer_id, revo_crl_state_t *out,
			 revo_errmsg_t *em);

/**
 * Allocate the next CRL number of @issuer_id in a synced write transaction, so that
 * numbers strictly increase even across crashes (a crash leaves a gap, never a repeat).
 * *@number gets it. Errors: REVO_EINVAL (unknown issuer), REVO_EIO, REVO_EACCES.
 */
int revo_store_crl_allocate(revo_store_t *st, uint32_t issuer_id, uint64_t *number,
			    revo_errmsg_t *em);

/**
 * Record that CRL @number of @issuer_id was written: a full CRL (@full) built at journal
 * sequence @seq becomes the base for delta CRLs; @this_update is kept for pruning.
 */
int revo_store_crl_written(revo_store_t *st, uint32_t issuer_id, uint64_t number, bool full,
			   uint64_t seq, int64_t this_update, revo_errmsg_t *em);

/* ---- snapshots: several consistent passes over one point in time ---- */

typedef struct revo_snapshot revo_snapshot_t;

/** Begin a read snapshot. Caller ends it with revo_snapshot_end. */
int revo_store_snapshot(revo_store_t *st, revo_snapshot_t **out, revo_errmsg_t *em);
void revo_snapshot_end(revo_snapshot_t *snap);

/** The last journal sequence visible in @snap (0 for an empty journal). */
uint64_t revo_snapshot_seq(const revo_snapshot_t *snap);

/** Called per revocation, in serial order; @rv is borrowed. Nonzero stops the walk. */
typedef int (*revo_rev_cb)(void *ctx, const revo_revocation_t *rv);

/** Walk the revocations of @issuer_id in @snap. */
int revo_snapshot_revoked(revo_snapshot_t *snap, uint32_t issuer_id, revo_rev_cb cb, void *ctx,
			  revo_errmsg_t *em);

/** Look up one revocation in @snap: 0 and *@out, or REVO_ENOTFOUND. */
int revo_snapshot_revocation(revo_snapshot_t *snap, uint32_t issuer_id, const revo_serial_t *serial,
			     revo_revocation_t *out, revo_errmsg_t *em);

/** Walk journal entries with seq > @since in @snap. */
int revo_snapshot_journal(revo_snapshot_t *snap, uint64_t since, revo_journal_cb cb, void *ctx,
			  revo_errmsg_t *em);

/** The CRL state of @issuer_id as of @snap. */
int revo_snapshot_crl_state(revo_snapshot_t *snap, uint32_t issuer_id, revo_crl_state_t *out,
			    revo_errmsg_t *em);

/* ---- pre-signed OCSP responses ---- */

enum revo_ocsp_hash { REVO_HASH_SHA1 = 1, REVO_HASH_SHA256 = 2 };
enum revo_cert_status { REVO_STATUS_GOOD = 0, REVO_STATUS_REVOKED = 1, REVO_STATUS_UNKNOWN = 2 };

/** A pre-signed OCSP response for one (issuer, serial, CertID hash algorithm). */
typedef struct revo_ocsp_resp_rec {
	uint32_t issuer_id;
	revo_serial_t serial;
	int hash;         /* enum revo_ocsp_hash */
	int status;       /* enum revo_cert_status */
	uint64_t rev_seq; /* journal sequence of the revocation it states (0: good) */
	int64_t produced_at;
	int64_t this_update;
	int64_t next_update;
	uint8_t etag[16];   /* entity tag for HTTP caches */
	const uint8_t *der; /* the OCSPResponse; borrowed (see the function) */
	size_t der_len;
} revo_ocsp_resp_rec_t;

/** Store @n pre-signed responses in one transaction (no fsync: they can be made again). */
int revo_store_responses_put(revo_store_t *st, const revo_ocsp_resp_rec_t *recs, size_t n,
			     revo_errmsg_t *em);

/*
 * A reader is one renewable read transaction, for a thread that makes many short reads
 * (an OCSP responder worker): begin, look up, end, per request. Readers of one store may
 * be used from different threads at once, one reader per thread. Pointers returned
 * between begin and end are borrowed from the memory map and valid until end.
 */
typedef struct revo_reader revo_reader_t;

int revo_reader_open(revo_store_t *st, revo_reader_t **out, revo_errmsg_t *em);
void revo_reader_close(revo_reader_t *r);
/** Start seeing the newest committed state. Errors: REVO_EIO. */
int revo_reader_begin(revo_reader_t *r, revo_errmsg_t *em);
void revo_reader_end(revo_reader_t *r);

/** The pre-signed response of (issuer, serial, hash): 0, or REVO_ENOTFOUND. */
int revo_reader_response(revo_reader_t *r, uint32_t issuer_id, const revo_serial_t *serial,
			 int hash, revo_ocsp_resp_rec_t *out, revo_errmsg_t *em);

/** Registration and revocation of one serial (either out pointer may be NULL). */
int revo_reader_status(revo_reader_t *r, uint32_t issuer_id, const revo_serial_t *serial,
		       revo_cert_rec_t *cert, bool *has_cert, revo_revocation_t *rev, bool *has_rev,
		       revo_errmsg_t *em);

/** The revocation of one serial: 0 and *@out, or REVO_ENOTFOUND. */
int revo_reader_revocation(revo_reader_t *r, uint32_t issuer_id, const revo_serial_t *serial,
			   revo_revocation_t *out, revo_errmsg_t *em);

typedef int (*revo_resp_cb)(void *ctx, const revo_ocsp_resp_rec_t *rec);

/** Walk every pre-signed response (all issuers). */
int revo_reader_responses(revo_reader_t *r, revo_resp_cb cb, void *ctx, revo_errmsg_t *em);

/** Walk the registered certificates of @issuer_id (callback's @rev is NULL). */
int revo_reader_certs(revo_reader_t *r, uint32_t issuer_id, revo_list_cb cb, void *ctx,
		      revo_errmsg_t *em);

/* ---- publication targets ---- */

#define REVO_TARGET_NAME_MAX 63

enum revo_target_flags {
	REVO_TARGET_PUBLIC_READ = 1 << 0, /* S3: send x-amz-acl: public-read */
};

/** A publication target: its configuration and what the publisher knows of it. */
typedef struct revo_target {
	char name[REVO_TARGET_NAME_MAX + 1];
	char *url;          /* s3://, rolesanywhere://, file://, http(s):// */
	uint32_t issuer_id; /* the issuer whose CRL it receives */
	char *region;       /* or NULL */
	char *endpoint;     /* or NULL */
	char *profile;      /* AWS profile name, or NULL; never credentials */
	char *trust_anchor; /* Roles Anywhere trust anchor ARN, or NULL */
	unsigned flags;     /* enum revo_target_flags */
	/* state */
	int64_t last_attempt;
	int64_t last_success;
	uint64_t crl_number; /* CRL number the target holds (0: none known) */
	uint64_t crl_seq;    /* journal sequence that CRL reflects */
	bool has_sha256;
	uint8_t sha256[32]; /* of the DER it holds */
	char *remote_id;    /* Roles Anywhere crlId, or NULL */
	char *remote_etag;  /* S3 ETag of the object, or NULL */
	char *last_error;   /* or NULL */
	uint32_t failures;  /* consecutive failed attempts */
} revo_target_t;

/** Add a target (its state empty) and journal it. Errors: REVO_EEXIST, REVO_EINVAL. */
int revo_store_target_add(revo_store_t *st, const revo_target_t *t, revo_errmsg_t *em);

/** Remove the target @name and journal it. Errors: REVO_ENOTFOUND. */
int revo_store_target_remove(revo_store_t *st, const char *name, revo_errmsg_t *em);

/** All targets, by name. Caller frees with revo_targets_free. */
int revo_store_targets(revo_store_t *st, revo_target_t **out, size_t *n, revo_errmsg_t *em);
void revo_targets_free(revo_target_t *v, size_t n);
/** Free the fields of one target (not the struct). */
void revo_target_clear(revo_target_t *t);

/**
 * Record the state fields of @t (found by name; its configuration is kept). A CRL
 * number lower than the recorded one is refused (REVO_ESTATE): the record of what a
 * target holds never goes back. Not journaled. Errors: REVO_ENOTFOUND, REVO_ESTATE.
 */
int revo_store_target_state(revo_store_t *st, const revo_target_t *t, revo_errmsg_t *em);

/** The id of the last committed transaction (any process): a cheap change detector. */
uint64_t revo_store_txn_id(revo_store_t *st);

/** The store's directory (borrowed). */
const char *revo_store_dir(const revo_store_t *st);

/** Flush everything committed with REVO_APPLY_NOSYNC to disk. Errors: REVO_EIO. */
int revo_store_sync(revo_store_t *st, revo_errmsg_t *em);

#endif
