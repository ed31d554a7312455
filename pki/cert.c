/*
 * Loading certificates and CRLs, and the few fields the store keeps of them. Files are
 * read whole (certificates and CRLs are small next to a store) and decoded from memory:
 * PEM when a "-----BEGIN" marker is present, DER otherwise.
 */
#include "pki/cert.h"
#include "pki/timefmt.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Cap on a certificate or CRL file (a 1M-entry CRL is about 35 MB). */
#define MAX_FILE (256u << 20)

static int read_file(const char *path, uint8_t **out, size_t *len, revo_errmsg_t *em)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return revo_err_set(em, REVO_EIO, "%s: %s", path, strerror(errno));
	size_t cap = 65536, n = 0;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		fclose(f);
		return REVO_ENOMEM;
	}
	for (;;) {
		if (n == cap) {
			if (cap >= MAX_FILE) {
				free(buf);
				fclose(f);
				return revo_err_set(em, REVO_EINVAL, "%s: file too large", path);
			}
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				fclose(f);
				return REVO_ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return revo_err_set(em, REVO_EIO, "%s: read error", path);
	}
	*out = buf;
	*len = n;
	return REVO_OK;
}

static int is_pem(const uint8_t *p, size_t n)
{
	static const char marker[] = "-----BEGIN";
	for (size_t i = 0; i + sizeof(marker) - 1 <= n && i < 65536; i++)
		if (memcmp(p + i, marker, sizeof(marker) - 1) == 0)
			return 1;
	return 0;
}

int revo_cert_load(const char *path, STACK_OF(X509) * *out, revo_errmsg_t *em)
{
	uint8_t *buf;
	size_t n;
	int rc = read_file(path, &buf, &n, em);
	if (rc)
		return rc;
	STACK_OF(X509) *sk = sk_X509_new_null();
	if (!sk) {
		free(buf);
		return REVO_ENOMEM;
	}
	ERR_clear_error();
	if (is_pem(buf, n)) {
		BIO *b = BIO_new_mem_buf(buf, (int)n);
		X509 *x;
		while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
			if (!sk_X509_push(sk, x)) {
				X509_free(x);
				break;
			}
		}
		unsigned long e = ERR_peek_last_error();
		/* running out of PEM blocks is the normal end; anything else is a bad block */
		if (e &&
		    !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
			rc = revo_err_set_ssl(em, REVO_EINVAL, "%s: malformed PEM certificate",
					      path);
		BIO_free(b);
		ERR_clear_error();
		if (!rc && sk_X509_num(sk) == 0)
			rc = revo_err_set(em, REVO_EINVAL, "%s: no certificate in PEM file", path);
	} else {
		const uint8_t *p = buf;
		X509 *x = d2i_X509(NULL, &p, (long)n);
		if (!x)
			rc = revo_err_set_ssl(em, REVO_EINVAL, "%s: not a PEM or DER certificate",
					      path);
		else if (p != buf + n) {
			X509_free(x);
			rc = revo_err_set(em, REVO_EINVAL,
					  "%s: trailing data after DER certificate", path);
		} else if (!sk_X509_push(sk, x)) {
			X509_free(x);
			rc = REVO_ENOMEM;
		}
	}
	free(buf);
	if (rc) {
		sk_X509_pop_free(sk, X509_free);
		return rc;
	}
	*out = sk;
	return REVO_OK;
}

int revo_crl_load(const char *path, X509_CRL **out, revo_errmsg_t *em)
{
	uint8_t *buf;
	size_t n;
	int rc = read_file(path, &buf, &n, em);
	if (rc)
		return rc;
	X509_CRL *crl = NULL;
	ERR_clear_error();
	if (is_pem(buf, n)) {
		BIO *b = BIO_new_mem_buf(buf, (int)n);
		crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
	} else {
		const uint8_t *p = buf;
		crl = d2i_X509_CRL(NULL, &p, (long)n);
		if (crl && p != buf + n) {
			X509_CRL_free(crl);
			crl = NULL;
		}
	}
	free(buf);
	if (!crl)
		return revo_err_set_ssl(em, REVO_EINVAL, "%s: not a PEM or DER CRL", path);
	*out = crl;
	return REVO_OK;
}

void revo_name_cn(const X509_NAME *name, char *buf, size_t len)
{
	buf[0] = '\0';
	int idx = -1, last = -1;
	while ((idx = X509_NAME_get_index_by_NID(name, NID_commonName, idx)) >= 0)
		last = idx;
	if (last < 0)
		return;
	X509_NAME_ENTRY *e = X509_NAME_get_entry(name, last);
	unsigned char *utf8 = NULL;
	int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
	if (n < 0)
		return;
	size_t k = (size_t)n < len - 1 ? (size_t)n : len - 1;
	memcpy(buf, utf8, k);
	buf[k] = '\0';
	OPENSSL_free(utf8);
}

void revo_oneline_cn(const char *s, size_t n, char *buf, size_t len)
{
	buf[0] = '\0';
	/* find the last "/CN=" that is not escaped */
	size_t start = n;
	for (size_t i = 0; i + 4 <= n; i++) {
		if (s[i] == '\\') {
			i++;
			continue;
		}
		if (s[i] == '/' && memcmp(s + i + 1, "CN=", 3) == 0)
			start = i + 4;
	}
	if (start == n)
		return;
	size_t o = 0;
	for (size_t i = start; i < n && s[i] != '/' && o + 1 < len; i++) {
		if (s[i] == '\\' && i + 1 < n)
			i++;
		buf[o++] = s[i];
	}
	buf[o] = '\0';
}

int revo_cert_info(X509 *x, revo_cert_info_t *out, revo_errmsg_t *em)
{
	memset(out, 0, sizeof(*out));
	int rc = revo_serial_from_asn1(X509_get0_serialNumber(x), &out->serial, em);
	if (rc)
		return rc;
	if (revo_time_from_asn1(X509_get0_notBefore(x), &out->not_before) ||
	    revo_time_from_asn1(X509_get0_notAfter(x), &out->not_after))
		return revo_err_set(em, REVO_EINVAL, "certificate has an invalid validity period");
	revo_name_cn(X509_get_subject_name(x), out->cn, sizeof(out->cn));
	unsigned int mdlen = 0;
	if (!X509_digest(x, EVP_sha256(), out->sha256, &mdlen))
		return revo_err_set_ssl(em, REVO_ECRYPTO, "cannot hash certificate");
	return REVO_OK;
}

int revo_cert_issuer_hashes(X509 *ca, revo_issuer_hashes_t *out, revo_errmsg_t *em)
{
	unsigned char *der = NULL;
	int n = i2d_X509_NAME(X509_get_subject_name(ca), &der);
	if (n <= 0)
		return revo_err_set_ssl(em, REVO_ECRYPTO, "cannot encode issuer name");
	int ok = EVP_Digest(der, (size_t)n, out->name_sha1, NULL, EVP_sha1(), NULL) &&
		 EVP_Digest(der, (size_t)n, out->name_sha256, NULL, EVP_sha256(), NULL);
	OPENSSL_free(der);
	const ASN1_BIT_STRING *key = X509_get0_pubkey_bitstr(ca);
	ok = ok && key &&
	     EVP_Digest(key->data, (size_t)key->length, out->key_sha1, NULL, EVP_sha1(), NULL) &&
	     EVP_Digest(key->data, (size_t)key->length, out->key_sha256, NULL, EVP_sha256(), NULL);
	if (!ok)
		return revo_err_set_ssl(em, REVO_ECRYPTO, "cannot hash issuer name or key");
	return REVO_OK;
}

char *revo_hex(const uint8_t *p, size_t n, char *buf)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		buf[2 * i] = hx[p[i] >> 4];
		buf[2 * i + 1] = hx[p[i] & 15];
	}
	buf[2 * n] = '\0';
	return buf;
}

char *revo_name_text(const X509_NAME *name, char *buf, size_t len)
{
	buf[0] = '\0';
	BIO *b = BIO_new(BIO_s_mem());
	if (!b)
		return buf;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		int n = BIO_read(b, buf, (int)len - 1);
		buf[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
	return buf;
}
