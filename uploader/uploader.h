/*
 * Publishing CRLs: targets (S3 and S3-compatible stores, AWS IAM Roles Anywhere, local
 * files, plain HTTP PUT), AWS credentials, and the publisher that keeps every target
 * current. Uploads go through libcurl with SigV4 (CURLOPT_AWS_SIGV4), bodies from memory.
 *
 * Invariants: a target never receives a CRL whose number is lower than the one it holds
 * (checked at the target itself before every upload, and in the store's record of it);
 * every upload is read back and compared; secrets never leave this module (not in
 * errors, logs, JSON or the store).
 */
#ifndef REVO_UPLOADER_UPLOADER_H
#define REVO_UPLOADER_UPLOADER_H

#include "pki/err.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- credentials ---- */

typedef struct revo_aws_creds {
	char access_key[128];
	char secret[256];
	char token[4096]; /* session token, or "" */
	int64_t expires;  /* 0: does not expire */
	char region[64];  /* region from the profile, or "" */
	char source[64];  /* "environment", "profile NAME", "credential_process" (no secrets) */
} revo_aws_creds_t;

/**
 * Resolve AWS credentials: @profile (or, when NULL, the environment variables
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then AWS_PROFILE or
 * "default") from the shared credentials and config files (AWS_SHARED_CREDENTIALS_FILE,
 * AWS_CONFIG_FILE, else ~/.aws/), including credential_process, whose answer is cached
 * in this process until shortly before it expires. Errors: REVO_ENOTFOUND, REVO_EINVAL.
 */
int revo_aws_creds_get(const char *profile, revo_aws_creds_t *out, revo_errmsg_t *em);

/* ---- uploads ---- */

/** The CRL to publish. */
typedef struct revo_crl_blob {
	const uint8_t *der;
	size_t der_len;
	uint64_t number;
	uint64_t seq; /* journal sequence the CRL reflects */
	int64_t this_update;
	int64_t next_update;
	size_t entries;
	const char *issuer; /* issuer name (Roles Anywhere CRL name) */
} revo_crl_blob_t;

typedef struct revo_upload_result {
	int http_status;        /* the last HTTP status (0: none) */
	bool retryable;         /* a later attempt may succeed */
	bool skipped;           /* the target already holds this CRL or a newer one */
	uint64_t remote_number; /* CRL number found at the target first (0: none) */
	char remote_id[128];    /* Roles Anywhere crlId */
	char etag[128];         /* S3 ETag after the upload */
	uint8_t sha256[32];     /* of what the target holds now */
} revo_upload_result_t;

/**
 * Upload @crl to target @t (its state tells the known crlId and ETag). Before writing,
 * the CRL the target holds is read and never replaced by a lower number; after, what
 * the target holds is read back and its SHA-256 compared. Errors: REVO_EIO (network,
 * 5xx, 429: retryable), REVO_EACCES (403), REVO_EINVAL (400, bad URL, too large for
 * Roles Anywhere), REVO_ESTATE (the target holds a newer CRL), REVO_ECRYPTO (read-back
 * differs). @res is filled in all cases.
 */
int revo_upload_crl(const revo_target_t *t, const revo_crl_blob_t *crl, revo_upload_result_t *res,
		    revo_errmsg_t *em);

/**
 * `revo upload FILE URL`: the same, for a CRL file (DER or PEM) and a URL with optional
 * region, endpoint and profile.
 */
int revo_upload_file(const char *path, const char *url, const char *region, const char *endpoint,
		     const char *profile, const char *trust_anchor, revo_upload_result_t *res,
		     revo_errmsg_t *em);

/**
 * Fetch @url (http(s)://, s3:// with SigV4, file://) into *@out (caller frees with free()),
 * for probes. *@status gets the HTTP status (200 for files). Errors: REVO_EIO
 * (unreachable), REVO_EINVAL (bad URL), REVO_ENOTFOUND (404).
 */
int revo_fetch(const char *url, const char *region, const char *endpoint, const char *profile,
	       uint8_t **out, size_t *len, int *status, revo_errmsg_t *em);

/**
 * POST or GET to an http(s) URL with optional body and content type, for the OCSP probe.
 * *@out (caller frees) gets the body. Errors: REVO_EIO.
 */
int revo_http_exchange(const char *method, const char *url, const uint8_t *body, size_t len,
		       const char *content_type, uint8_t **out, size_t *out_len, int *status,
		       revo_errmsg_t *em);

/**
 * A signed GET to the Roles Anywhere API of @region (or @endpoint) at @path, for probes;
 * *@out gets the JSON answer (caller json_decref's it; NULL when not JSON), *@status the
 * HTTP status. CRL calls are paced one per second like uploads. Errors: REVO_EIO, and
 * credential errors.
 */
struct json_t;
int revo_ra_get(const char *region, const char *endpoint, const char *profile, const char *path,
		struct json_t **out, int *status, revo_errmsg_t *em);

/**
 * One AWS JSON 1.1 call (CloudTrail and the like): a SigV4-signed POST / to @endpoint or
 * https://SERVICE.REGION.amazonaws.com with X-Amz-Target @target and the JSON @body.
 * *@out gets the JSON answer (caller json_decref's it; NULL when not JSON), *@status the
 * HTTP status, @error_type the AWS error name without its namespace ("" when none).
 * Errors: REVO_EIO (no answer), and credential errors.
 */
int revo_aws_json(const char *service, const char *target, const char *region,
		  const char *endpoint, const char *profile, struct json_t *body,
		  struct json_t **out, int *status, char *error_type, size_t error_len,
		  revo_errmsg_t *em);

/** Check a target URL and its options; fills a readable error. */
int revo_target_check(const revo_target_t *t, revo_errmsg_t *em);

/* ---- the publisher ---- */

/** Progress events, for the emergency timeline and logs. */
enum revo_publish_event {
	REVO_EV_COMMITTED,
	REVO_EV_OCSP_SIGNED,
	REVO_EV_CRL_BUILT,
	REVO_EV_UPLOADED,
	REVO_EV_UPLOAD_FAILED,
	REVO_EV_SKIPPED,
	REVO_EV_INFO,
};

typedef void (*revo_publish_cb)(void *ctx, int event, const char *target, const char *msg);

typedef struct revo_publish_cfg {
	const char *store_dir;
	const char *issuer; /* only this issuer (NULL: all) */
	bool once;          /* one round, then exit */
	const char *pass_file;
	bool force_perms;
	revo_publish_cb cb; /* may be NULL */
	void *cb_ctx;
} revo_publish_cfg_t;

/**
 * Run the publisher: take the store's publish lock (REVO_EBUSY-like REVO_ESTATE when
 * another publisher holds it, naming its pid), then keep CRLs and pre-signed OCSP
 * responses current at every target until SIGTERM/SIGINT (or one round with @once;
 * then non-zero when a target failed). Errors: REVO_ESTATE (lock held), store and key
 * errors, REVO_EIO (with @once, a target failed).
 */
int revo_publish_run(const revo_publish_cfg_t *cfg, revo_errmsg_t *em);

/**
 * For `revo revoke --publish`: when no publisher runs, do one round for @issuer_id here
 * (taking the lock), retrying each target until @deadline_ms (monotonic ms), and return
 * 0; *@ran tells whether it did. When a publisher holds the
 * lock, return 0 with *@ran false and let the caller watch the store.
 */
int revo_publish_now(revo_store_t *st, const char *store_dir, uint32_t issuer_id,
		     const revo_serial_t *serials, size_t n_serials, const char *pass_file,
		     bool force_perms, int64_t deadline_ms, revo_publish_cb cb, void *cb_ctx,
		     bool *ran, revo_errmsg_t *em);

/**
 * Bound every HTTP exchange of the calling thread by @deadline_ms (CLOCK_MONOTONIC
 * milliseconds; 0: no bound): `revo revoke --publish --wait` returns in time even when a
 * target stalls.
 */
void revo_upload_set_deadline(int64_t deadline_ms);

/** Whether a publisher holds the lock of @store_dir; *@pid gets its pid when known. */
bool revo_publish_running(const char *store_dir, long *pid);

#endif
