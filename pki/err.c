/*
 * The one strerror table and the detail-message helpers.
 */
#include "pki/err.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *revo_strerror(int err)
{
	switch (err) {
	case REVO_OK: return "success";
	case REVO_ENOMEM: return "out of memory";
	case REVO_EINVAL: return "invalid input";
	case REVO_ENOTFOUND: return "not found";
	case REVO_EEXIST: return "already exists";
	case REVO_EIO: return "input/output error";
	case REVO_ENOSTORE: return "not a revo store";
	case REVO_EVERSION: return "store schema is newer than this revo";
	case REVO_EACCES: return "permission denied";
	case REVO_ECRYPTO: return "cryptographic check failed";
	case REVO_ECORRUPT: return "store value is corrupt";
	case REVO_ESTATE: return "not allowed in this state";
	case REVO_EINTERNAL: return "internal error";
	}
	return "unknown error";
}

static void vset(revo_errmsg_t *em, const char *fmt, va_list ap)
{
	vsnprintf(em->msg, sizeof(em->msg), fmt, ap);
	for (char *p = em->msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

int revo_err_set(revo_errmsg_t *em, int err, const char *fmt, ...)
{
	if (em && em->msg[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vset(em, fmt, ap);
		va_end(ap);
	}
	return err;
}

int revo_err_set_ssl(revo_errmsg_t *em, int err, const char *fmt, ...)
{
	unsigned long e = ERR_peek_last_error();
	if (em && em->msg[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vset(em, fmt, ap);
		va_end(ap);
		if (e != 0) {
			size_t n = strlen(em->msg);
			const char *r = ERR_reason_error_string(e);
			if (r && n + 4 < sizeof(em->msg))
				snprintf(em->msg + n, sizeof(em->msg) - n, " (%s)", r);
		}
	}
	ERR_clear_error();
	return err;
}

void revo_err_clear(revo_errmsg_t *em)
{
	if (em)
		em->msg[0] = '\0';
}
