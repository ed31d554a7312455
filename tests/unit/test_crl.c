/*
 * Unit tests for crl/: a CRL built from a fresh store parses with OpenSSL, verifies
 * with the CA key, and carries exactly the store's revocations (serials with the top
 * bit set, reasons, invalidity dates, reasonCode left out for unspecified), CRL numbers
 * increase across full and delta CRLs, and the crlData length formula matches PEM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crl/crl.h"
#include "pki/reason.h"
#include "pki/timefmt.h"
#include "store/store.h"

struct fx {
	char dir[64], store[96], out[96];
	revo_store_t *st;
	EVP_PKEY *key;
	X509 *ca;
	revo_issuer_t is;
};

static X509 *make_ca(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
	X509_set_pubkey(x, key);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"Unit CA", -1, -1,
				   0);
	X509_set_issuer_name(x, n);
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	X509_EXTENSION *e =
	    X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	X509_sign(x, key, EVP_sha256());
	return x;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/revo-crl-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
	snprintf(f->out, sizeof(f->out), "%s/out.crl", f->dir);
	if (revo_store_init(f->store, NULL, NULL) || revo_store_open(f->store, 0, &f->st, NULL))
		return -1;
	f->key = EVP_EC_gen("P-256");
	f->ca = make_ca(f->key);
	unsigned char *der = NULL;
	int n = i2d_X509(f->ca, &der);
	f->is.cert_der = der;
	f->is.cert_len = (size_t)n;
	f->is.key_ref = "/unused";
	f->is.crl_validity = 7 * 86400;
	f->is.crl_every = 3600;
	strcpy(f->is.name, "unit");
	revo_cert_issuer_hashes(f->ca, &f->is.hashes, NULL);
	if (revo_store_issuer_add(f->st, &f->is, &f->is.id, NULL))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	revo_store_close(f->st);
	EVP_PKEY_free(f->key);
	X509_free(f->ca);
	OPENSSL_free(f->is.cert_der);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void add_revocation(struct fx *f, const char *serial, int reason, int64_t at, int64_t inv)
{
	revo_revocation_t r = {
	    .issuer_id = f->is.id, .reason = reason, .revoked_at = at, .invalidity = inv};
	assert_int_equal(revo_serial_parse(serial, &r.serial, NULL), 0);
	revo_change_t ch = {.revoke = &r};
	assert_int_equal(revo_store_apply(f->st, &ch, 1, 0, NULL, NULL, NULL), 0);
}

static X509_CRL *load(const char *path, bool pem)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	X509_CRL *c = pem ? PEM_read_X509_CRL(fp, NULL, NULL, NULL) : d2i_X509_CRL_fp(fp, NULL);
	fclose(fp);
	assert_non_null(c);
	return c;
}

static long crl_number(X509_CRL *c)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(c, NID_crl_number, NULL, NULL);
	assert_non_null(n);
	long v = ASN1_INTEGER_get(n);
	ASN1_INTEGER_free(n);
	return v;
}

static int entry_reason(X509_REVOKED *r)
{
	int crit;
	ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
	if (!e)
		return -1;
	int v = (int)ASN1_ENUMERATED_get(e);
	ASN1_ENUMERATED_free(e);
	return v;
}

static void empty_crl_has_no_revoked_certificates(void **state)
{
	struct fx *f = *state;
	revo_crl_opts_t o = {0};
	revo_crl_info_t info;
	assert_int_equal(revo_crl_build(f->st, &f->is, f->key, &o, f->out, &info, NULL), 0);
	assert_int_equal(info.entries, 0);
	assert_int_equal(info.number, 1);
	X509_CRL *c = load(f->out, false);
	assert_int_equal(X509_CRL_verify(c, f->key), 1);
	assert_null(X509_CRL_get_REVOKED(c));
	assert_int_equal(X509_CRL_get_version(c), 1);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_subject_name(f->ca)), 0);
	X509_CRL_free(c);
}

static void entries_match_the_store(void **state)
{
	struct fx *f = *state;
	int64_t now = revo_now();
	add_revocation(f, "80", REVO_REASON_KEY_COMPROMISE, now - 100, now - 86400);
	add_revocation(f, "05", REVO_REASON_UNSPECIFIED, now - 50, 0);
	add_revocation(f, "FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00", REVO_REASON_CERTIFICATE_HOLD,
		       now, 0);
	revo_crl_opts_t o = {.pem = true};
	revo_crl_info_t info;
	assert_int_equal(revo_crl_build(f->st, &f->is, f->key, &o, f->out, &info, NULL), 0);
	assert_int_equal(info.entries, 3);
	X509_CRL *c = load(f->out, true);
	assert_int_equal(X509_CRL_verify(c, f->key), 1);
	STACK_OF(X509_REVOKED) *rs = X509_CRL_get_REVOKED(c);
	assert_int_equal(sk_X509_REVOKED_num(rs), 3);
	/* serial order: 05, 80, FF00... */
	X509_REVOKED *r0 = sk_X509_REVOKED_value(rs, 0), *r1 = sk_X509_REVOKED_value(rs, 1),
		     *r2 = sk_X509_REVOKED_value(rs, 2);
	assert_int_equal(ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(r0)), 5);
	assert_int_equal(ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(r1)), 0x80);
	assert_int_equal(entry_reason(r0), -1); /* unspecified: no reasonCode */
	assert_int_equal(entry_reason(r1), REVO_REASON_KEY_COMPROMISE);
	assert_int_equal(entry_reason(r2), REVO_REASON_CERTIFICATE_HOLD);
	int64_t t;
	assert_int_equal(revo_time_from_asn1(X509_REVOKED_get0_revocationDate(r1), &t), 0);
	assert_int_equal(t, now - 100);
	ASN1_GENERALIZEDTIME *inv = X509_REVOKED_get_ext_d2i(r1, NID_invalidity_date, NULL, NULL);
	assert_non_null(inv);
	assert_int_equal(revo_time_from_asn1(inv, &t), 0);
	assert_int_equal(t, now - 86400);
	ASN1_GENERALIZEDTIME_free(inv);
	/* the PEM's base64 is what Roles Anywhere counts */
	struct stat sb;
	assert_int_equal(stat(f->out, &sb), 0);
	assert_int_equal(info.file_size, (size_t)sb.st_size);
	assert_int_equal(info.crldata_len, 4 * (((size_t)sb.st_size + 2) / 3));
	X509_CRL_free(c);
}

static void numbers_increase_across_full_and_delta(void **state)
{
	struct fx *f = *state;
	revo_crl_opts_t full = {0}, delta = {.delta = true};
	revo_crl_info_t info;
	/* no delta without a base, and no number consumed by the refusal */
	assert_int_equal(revo_crl_build(f->st, &f->is, f->key, &delta, f->out, &info, NULL),
			 REVO_ESTATE);
	add_revocation(f, "01", REVO_REASON_SUPERSEDED, revo_now(), 0);
	assert_int_equal(revo_crl_build(f->st, &f->is, f->key, &full, f->out, &info, NULL), 0);
	assert_int_equal(info.number, 1);
	add_revocation(f, "02", REVO_REASON_KEY_COMPROMISE, revo_now(), 0);
	assert_int_equal(revo_crl_build(f->st, &f->is, f->key, &delta, f->out, &info, NULL), 0);
	assert_int_equal(info.number, 2);
	assert_int_equal(info.base_number, 1);
	assert_int_equal(info.entries, 1);
	X509_CRL *c = load(f->out, false);
	assert_int_equal(crl_number(c), 2);
	int crit = 0;
	ASN1_INTEGER *base = X509_CRL_get_ext_d2i(c, NID_delta_crl, &crit, NULL);
	assert_non_null(base);
	assert_int_equal(crit, 1);
	assert_int_equal(ASN1_INTEGER_get(base), 1);
	ASN1_INTEGER_free(base);
	X509_CRL_free(c);
	assert_int_equal(revo_crl_build(f->st, &f->is, f->key, &full, f->out, &info, NULL), 0);
	assert_int_equal(info.number, 3);
	assert_int_equal(info.entries, 2);
}

static void wrong_key_refused_before_a_number_is_used(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *other = EVP_EC_gen("P-256");
	revo_crl_opts_t o = {0};
	revo_crl_info_t info;
	revo_errmsg_t em = {{0}};
	assert_int_equal(revo_crl_build(f->st, &f->is, other, &o, f->out, &info, &em),
			 REVO_ECRYPTO);
	assert_non_null(strstr(em.msg, "does not match"));
	EVP_PKEY_free(other);
	assert_int_not_equal(access(f->out, F_OK), 0);
	assert_int_equal(revo_crl_build(f->st, &f->is, f->key, &o, f->out, &info, NULL), 0);
	assert_int_equal(info.number, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(empty_crl_has_no_revoked_certificates, setup, teardown),
	    cmocka_unit_test_setup_teardown(entries_match_the_store, setup, teardown),
	    cmocka_unit_test_setup_teardown(numbers_increase_across_full_and_delta, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(wrong_key_refused_before_a_number_is_used, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
