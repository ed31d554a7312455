/*
 * Signing OCSP responses with OpenSSL's OCSP module: the CertIDs are echoed from their
 * DER, the responder is identified by key hash (RFC 5019), and a delegated responder's
 * certificate travels in the response so clients can check id-kp-OCSPSigning.
 */
#include "ocsp/ocsp.h"

#include "pki/der.h"
#include "pki/key.h"
#include "pki/timefmt.h"

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

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
/*
 * BasicOCSPResponse encoded by hand (RFC 6960 4.2.1, EXPLICIT TAGS): this is the signing
 * path of every on-demand answer and of pre-signing, and OpenSSL's object model costs
 * about as much as the signature itself. Everything that repeats (responder key hash,
 * algorithm, certificates) is prepared once per signer.
 */
static const uint8_t OID_NONCE[] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x05,
				    0x05, 0x07, 0x30, 0x01, 0x02};
static const uint8_t OID_EXT_REVOKE[] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x05,
					 0x05, 0x07, 0x30, 0x01, 0x09};
static const uint8_t OID_BASIC[] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x05,
				    0x05, 0x07, 0x30, 0x01, 0x01};

static void gentime(revo_der_t *d, int64_t t)
{
	uint8_t b[32];
	revo_der_raw(d, b, revo_der_time(b, t, true));
}

static void add_ext(revo_der_t *exts, const uint8_t *oid, size_t oidlen, const uint8_t *v, size_t n)
{
	revo_der_t e;
	revo_der_init(&e);
	revo_der_raw(&e, oid, oidlen);
	revo_der_tlv(&e, REVO_DER_OCTET_STRING, v, n);
	revo_der_wrap(exts, REVO_DER_SEQUENCE, &e);
	revo_der_free(&e);
}

int revo_ocsp_sign(const revo_ocsp_signer_t *s, const revo_ocsp_single_t *singles, size_t n,
		   bool extended_revoke, const uint8_t *nonce_ext, size_t nonce_len, uint8_t **der,
		   size_t *der_len, revo_errmsg_t *em)
{
	revo_der_t rd, resp, tmp, one, basic, out;
	revo_der_init(&rd);
	revo_der_init(&resp);
	revo_der_init(&tmp);
	revo_der_init(&one);
	revo_der_init(&basic);
	revo_der_init(&out);
	int rc = REVO_OK;
	int64_t now = revo_now();

	/* responderID byKey [2] EXPLICIT KeyHash, producedAt */
	revo_der_tlv(&tmp, REVO_DER_OCTET_STRING, s->key_id, sizeof(s->key_id));
	revo_der_wrap(&rd, REVO_DER_CTX(2), &tmp);
	gentime(&rd, now);
	for (size_t i = 0; i < n; i++) {
		const revo_ocsp_single_t *sr = &singles[i];
		revo_der_reset(&one);
		revo_der_raw(&one, sr->certid_der, sr->certid_len);
		if (sr->status == REVO_STATUS_GOOD) {
			static const uint8_t good[] = {0x80, 0x00};
			revo_der_raw(&one, good, 2);
		} else if (sr->status == REVO_STATUS_REVOKED) {
			revo_der_reset(&tmp);
			gentime(&tmp, sr->revoked_at);
			if (sr->reason > 0) {
				uint8_t r[] = {0xa0, 0x03, 0x0a, 0x01, (uint8_t)sr->reason};
				revo_der_raw(&tmp, r, sizeof(r));
			}
			revo_der_wrap(&one, REVO_DER_CTX(1), &tmp);
		} else {
			static const uint8_t unknown[] = {0x82, 0x00};
			revo_der_raw(&one, unknown, 2);
		}
		gentime(&one, sr->this_update);
		revo_der_reset(&tmp);
		gentime(&tmp, sr->next_update);
		revo_der_wrap(&one, REVO_DER_CTX(0), &tmp);
		revo_der_wrap(&resp, REVO_DER_SEQUENCE, &one);
	}
	revo_der_wrap(&rd, REVO_DER_SEQUENCE, &resp);
	if (extended_revoke || nonce_ext) {
		static const uint8_t null_value[] = {0x05, 0x00};
		revo_der_t exts;
		revo_der_init(&exts);
		if (nonce_ext)
			add_ext(&exts, OID_NONCE, sizeof(OID_NONCE), nonce_ext, nonce_len);
		if (extended_revoke) /* RFC 6960 2.2 id-pkix-ocsp-extended-revoke */
			add_ext(&exts, OID_EXT_REVOKE, sizeof(OID_EXT_REVOKE), null_value, 2);
		revo_der_reset(&tmp);
		revo_der_wrap(&tmp, REVO_DER_SEQUENCE, &exts);
		revo_der_wrap(&rd, REVO_DER_CTX(1), &tmp);
		revo_der_free(&exts);
	}
	/* tbsResponseData */
	revo_der_wrap(&basic, REVO_DER_SEQUENCE, &rd);
	if (basic.oom) {
		rc = REVO_ENOMEM;
		goto out;
	}
	size_t tbs_len = basic.len;
	uint8_t sig[1024];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = mctx && EVP_DigestSignInit(mctx, &pctx, s->md, NULL, s->key) == 1;
	if (ok && s->pss)
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
	ok = ok && EVP_DigestSign(mctx, sig, &siglen, basic.p, tbs_len) == 1;
	EVP_MD_CTX_free(mctx);
	if (!ok) {
		rc = revo_err_set_ssl(em, REVO_ECRYPTO, "signing the OCSP response failed");
		goto out;
	}
	revo_der_raw(&basic, s->alg_der, s->alg_len);
	uint8_t h[8];
	revo_der_raw(&basic, h, revo_der_hdr(h, REVO_DER_BIT_STRING, siglen + 1));
	revo_der_raw(&basic, "", 1);
	revo_der_raw(&basic, sig, siglen);
	revo_der_raw(&basic, s->certs_der, s->certs_len);
	/* OCSPResponse { successful, [0] ResponseBytes { id-pkix-ocsp-basic, OCTET STRING } } */
	revo_der_reset(&tmp);
	revo_der_wrap(&tmp, REVO_DER_SEQUENCE, &basic);
	revo_der_reset(&one);
	revo_der_raw(&one, OID_BASIC, sizeof(OID_BASIC));
	revo_der_wrap(&one, REVO_DER_OCTET_STRING, &tmp);
	revo_der_reset(&tmp);
	revo_der_wrap(&tmp, REVO_DER_SEQUENCE, &one);
	revo_der_reset(&resp);
	static const uint8_t successful[] = {0x0a, 0x01, 0x00};
	revo_der_raw(&resp, successful, sizeof(successful));
	revo_der_wrap(&resp, REVO_DER_CTX(0), &tmp);
	revo_der_wrap(&out, REVO_DER_SEQUENCE, &resp);
	if (out.oom || tmp.oom || one.oom || resp.oom) {
		rc = REVO_ENOMEM;
		goto out;
	}
	*der = OPENSSL_malloc(out.len);
	if (!*der) {
		rc = REVO_ENOMEM;
		goto out;
	}
	memcpy(*der, out.p, out.len);
	*der_len = out.len;
out:
	revo_der_free(&rd);
	revo_der_free(&resp);
	revo_der_free(&tmp);
	revo_der_free(&one);
	revo_der_free(&basic);
	revo_der_free(&out);
	return rc;
}

/* Prepare what every response of @s repeats. */
static int signer_prepare(revo_ocsp_signer_t *s, revo_errmsg_t *em)
{
	unsigned int kl = 0;
	if (!X509_pubkey_digest(s->cert, EVP_sha1(), s->key_id, &kl) || kl != 20)
		return revo_err_set_ssl(em, REVO_ECRYPTO, "cannot hash the responder key");
	s->md = revo_key_digest(s->key);
	s->pss = EVP_PKEY_get_base_id(s->key) == EVP_PKEY_RSA_PSS;
	/* the AlgorithmIdentifier the signing context produces (as for CRLs) */
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char aid[256];
	OSSL_PARAM params[] = {
	    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, aid, sizeof(aid)),
	    OSSL_PARAM_END,
	};
	int ok = m && EVP_DigestSignInit(m, &pctx, s->md, NULL, s->key) == 1;
	if (ok && EVP_PKEY_CTX_get_params(pctx, params) == 1 && OSSL_PARAM_modified(&params[0])) {
		s->alg_der = OPENSSL_memdup(aid, params[0].return_size);
		s->alg_len = params[0].return_size;
	} else {
		int sig_nid, base = EVP_PKEY_get_base_id(s->key);
		X509_ALGOR *a = X509_ALGOR_new();
		unsigned char *d = NULL;
		int n = -1;
		if (a && s->md && OBJ_find_sigid_by_algs(&sig_nid, EVP_MD_get_type(s->md), base) &&
		    X509_ALGOR_set0(a, OBJ_nid2obj(sig_nid),
				    base == EVP_PKEY_RSA ? V_ASN1_NULL : V_ASN1_UNDEF, NULL))
			n = i2d_X509_ALGOR(a, &d);
		X509_ALGOR_free(a);
		if (n > 0) {
			s->alg_der = OPENSSL_memdup(d, (size_t)n);
			s->alg_len = (size_t)n;
		}
		OPENSSL_free(d);
	}
	EVP_MD_CTX_free(m);
	ERR_clear_error();
	if (!s->alg_der)
		return revo_err_set(em, REVO_ECRYPTO,
				    "no signature algorithm for the responder key");
	/*
	 * certs [0] EXPLICIT SEQUENCE OF Certificate: the signer's certificate, the CA's own
	 * too when the CA signs (GnuTLS and nginx look for a key-hash responder only among
	 * these); a delegated responder's CA is the one the client already has.
	 */
	revo_der_t list, wrapped, seq;
	revo_der_init(&list);
	revo_der_init(&wrapped);
	revo_der_init(&seq);
	X509 *certs[2] = {s->cert, NULL};
	for (int i = 0; i < 2 && certs[i]; i++) {
		unsigned char *d = NULL;
		int n = i2d_X509(certs[i], &d);
		if (n > 0)
			revo_der_raw(&list, d, (size_t)n);
		OPENSSL_free(d);
	}
	revo_der_wrap(&seq, REVO_DER_SEQUENCE, &list);
	revo_der_wrap(&wrapped, REVO_DER_CTX(0), &seq);
	if (!wrapped.oom) {
		s->certs_der = OPENSSL_memdup(wrapped.p, wrapped.len);
		s->certs_len = wrapped.len;
	}
	revo_der_free(&list);
	revo_der_free(&wrapped);
	revo_der_free(&seq);
	return s->certs_der ? REVO_OK : REVO_ENOMEM;
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
	if (rc == 0)
		rc = signer_prepare(out, em);
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
	OPENSSL_free(s->alg_der);
	OPENSSL_free(s->certs_der);
	memset(s, 0, sizeof(*s));
}
