/*
 * RFC 5280 CRLReason codes and their names (5.3.1). Value 7 is unused by the RFC.
 */
#ifndef REVO_PKI_REASON_H
#define REVO_PKI_REASON_H

#include "pki/err.h"

enum revo_reason {
	REVO_REASON_UNSPECIFIED = 0,
	REVO_REASON_KEY_COMPROMISE = 1,
	REVO_REASON_CA_COMPROMISE = 2,
	REVO_REASON_AFFILIATION_CHANGED = 3,
	REVO_REASON_SUPERSEDED = 4,
	REVO_REASON_CESSATION_OF_OPERATION = 5,
	REVO_REASON_CERTIFICATE_HOLD = 6,
	REVO_REASON_REMOVE_FROM_CRL = 8,
	REVO_REASON_PRIVILEGE_WITHDRAWN = 9,
	REVO_REASON_AA_COMPROMISE = 10,
};

/**
 * Parse an RFC 5280 reason name, case-insensitive ("keyCompromise"). removeFromCRL is
 * parsed (CRL import needs it); callers that revoke refuse it themselves.
 * Errors: REVO_EINVAL with the list of valid names in @em.
 */
int revo_reason_parse(const char *name, int *code, revo_errmsg_t *em);

/** The RFC 5280 name of @code, or NULL for a value that is not a reason. */
const char *revo_reason_name(int code);

/** True for a code RFC 5280 defines (0-6, 8-10). */
int revo_reason_valid(int code);

#endif
