/*
 * Reason names. The table is indexed by the RFC 5280 code.
 */
#include "pki/reason.h"

#include <strings.h>

static const char *const names[] = {
    "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
    "superseded",    "cessationOfOperation", "certificateHold", NULL,
    "removeFromCRL", "privilegeWithdrawn",   "aACompromise",
};

const char *revo_reason_name(int code)
{
	if (code < 0 || code >= (int)(sizeof(names) / sizeof(names[0])))
		return NULL;
	return names[code];
}

int revo_reason_valid(int code)
{
	return revo_reason_name(code) != NULL;
}

int revo_reason_parse(const char *name, int *code, revo_errmsg_t *em)
{
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
		if (names[i] && strcasecmp(names[i], name) == 0) {
			*code = i;
			return REVO_OK;
		}
	}
	return revo_err_set(
	    em, REVO_EINVAL,
	    "unknown reason '%s' (one of unspecified, keyCompromise, cACompromise, "
	    "affiliationChanged, superseded, cessationOfOperation, certificateHold, "
	    "privilegeWithdrawn, aACompromise)",
	    name);
}
