/*
 * Signing OCSP responses with OpenSSL's OCSP module: the CertIDs are echoed from their
 * DER, the responder is identified by key hash (RFC 5019), and a delegated responder's
 * certificate travels in the response so clients can check id-kp-OCSPSigning.
 */
#include "ocsp/ocsp.h"

#include "pki/der.h"
#include "pki/key.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <string.h>

size_t revo_ocsp_certid(int hash, const revo_issuer_hashes_t *hashes, const revo_serial_t *serial,
			uint8_t *out)
{
	static const uint8_t alg_sha1[] = {0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
					   0x03, 0x02, 0x1a, 0x05, 0x00};
	static const uint8_t alg_sha256[] = {0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
					     0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00};
	uint8_t body[128];
	size_t n = 0;
	const uint8_t *nh = hash == REVO_HASH_SHA1 ? hashes->name_sha1 : hashes->name_sha256;
	const uint8_t *kh = hash == REVO_HASH_SHA1 ? hashes->key_sha1 : hashes->key_sha256;
	size_t hl = hash == REVO_HASH_SHA1 ? 20 : 32;
	if (hash == REVO_HASH_SHA1) {
		memcpy(body, alg_sha1, sizeof(alg_sha1));
		n = sizeof(alg_sha1);
	} else {
		memcpy(body, alg_sha256, sizeof(alg_sha256));
		n = sizeof(alg_sha256);
	}
	body[n++] = REVO_DER_OCTET_STRING;
	body[n++] = (uint8_t)hl;
	memcpy(body + n, nh, hl);
	n += hl;
	body[n++] = REVO_DER_OCTET_STRING;
	body[n++] = (uint8_t)hl;
	memcpy(body + n, kh, hl);
	n += hl;
	n += revo_der_serial(body + n, serial);
	size_t h = revo_der_hdr(out, REVO_DER_SEQUENCE, n);
	memcpy(out + h, body, n);
	return h + n;
}

/* Add the extension @oid (dotted) with the DER value @v to the response extensions. */
static int add_octet_ext(OCSP_BASICRESP *bs, const char *oid, const uint8_t *v, size_t n)
{
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	X509_EXTENSION *ext = NULL;
	int ok = os && obj && ASN1_OCTET_STRING_set(os, v, (int)n) &&
		 (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) != NULL &&
		 OCSP_BASICRESP_add_ext(bs, ext, -1);
	X509_EXTENSION_free(ext);
	ASN1_OBJECT_free(obj);
	ASN1_OCTET_STRING_free(os);
	return ok;
}

int revo_ocsp_sign(const revo_ocsp_signer_t *s, const revo_ocsp_single_t *singles, size_t n,
		   bool extended_revoke, const uint8_t *nonce_ext, size_t nonce_len, uint8_t **der,
		   size_t *der_len, revo_errmsg_t *em)
{
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	OCSP_RESPONSE *resp = NULL;
	EVP_MD_CTX *mctx = NULL;
	int rc = REVO_ECRYPTO;
	if (!bs)
		return REVO_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const revo_ocsp_single_t *one = &singles[i];
		const unsigned char *p = one->certid_der;
		OCSP_CERTID *cid = d2i_OCSP_CERTID(NULL, &p, (long)one->certid_len);
		ASN1_TIME *tu = ASN1_TIME_set(NULL, (time_t)one->this_update);
		ASN1_TIME *nu = ASN1_TIME_set(NULL, (time_t)one->next_update);
		ASN1_TIME *rt = one->status == REVO_STATUS_REVOKED
				    ? ASN1_TIME_set(NULL, (time_t)one->revoked_at)
				    : NULL;
		int status = one->status == REVO_STATUS_GOOD      ? V_OCSP_CERTSTATUS_GOOD
			     : one->status == REVO_STATUS_REVOKED ? V_OCSP_CERTSTATUS_REVOKED
								  : V_OCSP_CERTSTATUS_UNKNOWN;
		int reason = one->status == REVO_STATUS_REVOKED && one->reason > 0
				 ? one->reason
				 : OCSP_REVOKED_STATUS_NOSTATUS;
		int ok = cid && tu && nu && (one->status != REVO_STATUS_REVOKED || rt) &&
			 OCSP_basic_add1_status(bs, cid, status, reason, rt, tu, nu) != NULL;
		OCSP_CERTID_free(cid);
		ASN1_TIME_free(tu);
		ASN1_TIME_free(nu);
		ASN1_TIME_free(rt);
		if (!ok) {
			rc = revo_err_set_ssl(em, REVO_ECRYPTO, "cannot build the OCSP answer");
			goto out;
		}
	}
	/* RFC 6960 2.2 id-pkix-ocsp-extended-revoke (OpenSSL's NID for .8 is another one) */
	static const uint8_t null_value[] = {0x05, 0x00};
	if (extended_revoke &&
	    !add_octet_ext(bs, "1.3.6.1.5.5.7.48.1.9", null_value, sizeof(null_value))) {
		rc = revo_err_set_ssl(em, REVO_ECRYPTO, "cannot add the extended revoke extension");
		goto out;
	}
	if (nonce_ext && !add_octet_ext(bs, "1.3.6.1.5.5.7.48.1.2", nonce_ext, nonce_len)) {
		rc = revo_err_set_ssl(em, REVO_ECRYPTO, "cannot add the nonce");
		goto out;
	}
	mctx = EVP_MD_CTX_new();
	/*
	 * The signer certificate travels in the response, the CA's too: GnuTLS and nginx
	 * look for a key-hash responder only among the response's certificates.
	 */
	unsigned long flags = OCSP_RESPID_KEY;
	if (!mctx || EVP_DigestSignInit(mctx, NULL, revo_key_digest(s->key), NULL, s->key) != 1 ||
	    OCSP_basic_sign_ctx(bs, s->cert, mctx, NULL, flags) != 1) {
		rc = revo_err_set_ssl(em, REVO_ECRYPTO, "signing the OCSP response failed");
		goto out;
	}
	resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	unsigned char *out = NULL;
	int len = resp ? i2d_OCSP_RESPONSE(resp, &out) : -1;
	if (len <= 0) {
		rc = revo_err_set_ssl(em, REVO_ECRYPTO, "cannot encode the OCSP response");
		goto out;
	}
	*der = out;
	*der_len = (size_t)len;
	rc = REVO_OK;
out:
	EVP_MD_CTX_free(mctx);
	OCSP_RESPONSE_free(resp);
	OCSP_BASICRESP_free(bs);
	return rc;
}

int revo_ocsp_signer_load(const revo_issuer_t *is, bool prefer_ca, const char *pass_file,
			  bool force_perms, revo_ocsp_signer_t *out, revo_errmsg_t *em)
{
	memset(out, 0, sizeof(*out));
	out->issuer_id = is->id;
	out->hashes = is->hashes;
	const unsigned char *p = is->cert_der;
	out->ca = d2i_X509(NULL, &p, (long)is->cert_len);
	if (!out->ca)
		return revo_err_set(em, REVO_ECORRUPT, "issuer '%s': unreadable certificate",
				    is->name);
	bool delegated = is->ocsp_cert_der && is->ocsp_key_ref && !prefer_ca;
	const char *ref = delegated ? is->ocsp_key_ref : is->key_ref;
	if (delegated) {
		p = is->ocsp_cert_der;
		out->cert = d2i_X509(NULL, &p, (long)is->ocsp_cert_len);
		if (!out->cert) {
			revo_ocsp_signer_free(out);
			return revo_err_set(em, REVO_ECORRUPT,
					    "issuer '%s': unreadable OCSP certificate", is->name);
		}
		if (!(X509_get_extension_flags(out->cert) & EXFLAG_XKUSAGE) ||
		    !(X509_get_extended_key_usage(out->cert) & XKU_OCSP_SIGN)) {
			revo_ocsp_signer_free(out);
			return revo_err_set(
			    em, REVO_ECRYPTO,
			    "issuer '%s': the OCSP certificate lacks id-kp-OCSPSigning", is->name);
		}
	} else {
		out->cert = out->ca;
	}
	revo_key_opts_t ko = {.pass_file = pass_file, .force_perms = force_perms};
	int rc = revo_key_load(ref, &ko, &out->key, em);
	if (rc == 0 && (rc = revo_key_matches(out->key, out->cert, em)) != 0)
		revo_err_set(em, rc, "issuer '%s': the %s key does not match its certificate",
			     is->name, delegated ? "OCSP" : "CA");
	if (rc)
		revo_ocsp_signer_free(out);
	return rc;
}

void revo_ocsp_signer_free(revo_ocsp_signer_t *s)
{
	if (s->cert && s->cert != s->ca)
		X509_free(s->cert);
	X509_free(s->ca);
	EVP_PKEY_free(s->key);
	memset(s, 0, sizeof(*s));
}
