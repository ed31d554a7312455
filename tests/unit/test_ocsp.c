/*
 * Unit tests for ocsp/: request decoding (DER from OpenSSL, GET paths in every
 * spelling RFC 6960 A.1 clients use, nonces, limits) and the HTTP head parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "ocsp/ocsp.h"
#include "ocsp/ocsp_internal.h"

/* Build a DER request for serials 1..n with OpenSSL, optionally with a nonce. */
static size_t make_request(int n, int nonce_len, const EVP_MD *md, uint8_t *out, size_t cap)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	X509_NAME *name = X509_NAME_new();
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"CA", -1, -1,
				   0);
	ASN1_BIT_STRING *key = ASN1_BIT_STRING_new();
	ASN1_BIT_STRING_set(key, (unsigned char *)"0123456789", 10);
	for (int i = 1; i <= n; i++) {
		ASN1_INTEGER *sn = ASN1_INTEGER_new();
		ASN1_INTEGER_set(sn, i);
		OCSP_CERTID *id = OCSP_cert_id_new(md, name, key, sn);
		OCSP_request_add0_id(req, id);
		ASN1_INTEGER_free(sn);
	}
	if (nonce_len >= 0) {
		unsigned char nv[256];
		memset(nv, 0xab, sizeof(nv));
		OCSP_request_add1_nonce(req, nonce_len ? nv : NULL, nonce_len ? nonce_len : -1);
	}
	unsigned char *der = NULL;
	int len = i2d_OCSP_REQUEST(req, &der);
	assert_true(len > 0 && (size_t)len <= cap);
	memcpy(out, der, (size_t)len);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	X509_NAME_free(name);
	ASN1_BIT_STRING_free(key);
	return (size_t)len;
}

static void decodes_openssl_requests(void **state)
{
	(void)state;
	uint8_t der[8192];
	static revo_ocsp_request_t r;
	size_t n = make_request(1, -1, EVP_sha1(), der, sizeof(der));
	assert_int_equal(revo_ocsp_request_parse(der, n, 16, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ids[0].hash, REVO_HASH_SHA1);
	assert_int_equal(r.ids[0].name_hash_len, 20);
	assert_true(r.ids[0].serial_ok);
	assert_int_equal(r.ids[0].serial.len, 1);
	assert_int_equal(r.ids[0].serial.mag[0], 1);
	assert_false(r.has_nonce);

	n = make_request(3, 16, EVP_sha256(), der, sizeof(der));
	assert_int_equal(revo_ocsp_request_parse(der, n, 16, &r), 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.ids[2].hash, REVO_HASH_SHA256);
	assert_int_equal(r.ids[2].key_hash_len, 32);
	assert_true(r.has_nonce);
	assert_int_equal(r.nonce_len, 16);

	/* over the CertID limit, and trailing garbage */
	n = make_request(17, -1, EVP_sha1(), der, sizeof(der));
	assert_int_equal(revo_ocsp_request_parse(der, n, 16, &r), REVO_EINVAL);
	n = make_request(1, -1, EVP_sha1(), der, sizeof(der));
	der[n] = 0;
	assert_int_equal(revo_ocsp_request_parse(der, n + 1, 16, &r), REVO_EINVAL);
	/* truncated anywhere */
	for (size_t k = 0; k < n; k++)
		assert_int_equal(revo_ocsp_request_parse(der, k, 16, &r), REVO_EINVAL);
}

static void refuses_bad_nonces(void **state)
{
	(void)state;
	uint8_t der[8192];
	static revo_ocsp_request_t r;
	size_t n = make_request(1, 128, EVP_sha1(), der, sizeof(der));
	assert_int_equal(revo_ocsp_request_parse(der, n, 16, &r), 0);
	n = make_request(1, 129, EVP_sha1(), der, sizeof(der));
	assert_int_equal(revo_ocsp_request_parse(der, n, 16, &r), REVO_EINVAL);
}

static void decodes_get_paths(void **state)
{
	(void)state;
	uint8_t der[512], buf[1024];
	static revo_ocsp_request_t r;
	size_t n = make_request(1, -1, EVP_sha1(), der, sizeof(der));
	char b64[1024], path[2048];
	EVP_EncodeBlock((unsigned char *)b64, der, (int)n);
	const char *prefixes[] = {"/", "/ocsp/", "/a/b/c/"};
	for (size_t p = 0; p < 3; p++) {
		/* as is (may hold '/' and '+') */
		snprintf(path, sizeof(path), "%s%s", prefixes[p], b64);
		assert_int_equal(
		    revo_ocsp_request_from_path(path, strlen(path), buf, sizeof(buf), 16, &r), 0);
		/* percent-encoded */
		size_t o = (size_t)snprintf(path, sizeof(path), "%s", prefixes[p]);
		for (const char *c = b64; *c; c++)
			o += (size_t)(*c == '/' || *c == '+' || *c == '='
					  ? snprintf(path + o, sizeof(path) - o, "%%%02X", *c)
					  : snprintf(path + o, sizeof(path) - o, "%c", *c));
		assert_int_equal(revo_ocsp_request_from_path(path, o, buf, sizeof(buf), 16, &r), 0);
		/* URL-safe alphabet, no padding */
		o = (size_t)snprintf(path, sizeof(path), "%s", prefixes[p]);
		for (const char *c = b64; *c && *c != '='; c++)
			path[o++] = *c == '+' ? '-' : *c == '/' ? '_' : *c;
		assert_int_equal(revo_ocsp_request_from_path(path, o, buf, sizeof(buf), 16, &r), 0);
		assert_int_equal(r.n, 1);
	}
	assert_int_equal(revo_ocsp_request_from_path("/ocsp/%zz", 9, buf, sizeof(buf), 16, &r),
			 REVO_EINVAL);
	assert_int_equal(revo_ocsp_request_from_path("/healthz", 8, buf, sizeof(buf), 16, &r),
			 REVO_EINVAL);
}

/* The one-pass GET decoder falls back to the general one and decides the same way. */
static void get_path_fast_and_slow_paths_agree(void **state)
{
	(void)state;
	uint8_t der[512], buf[1024];
	static revo_ocsp_request_t r;
	size_t n = make_request(1, -1, EVP_sha1(), der, sizeof(der));
	char b64[1024], enc[2048], path[2100];
	int bl = EVP_EncodeBlock((unsigned char *)b64, der, (int)n);
	size_t el = 0;
	for (const char *c = b64; *c; c++)
		el += (size_t)(*c == '/' || *c == '+' || *c == '='
				   ? snprintf(enc + el, sizeof(enc) - el, "%%%02x", *c)
				   : snprintf(enc + el, sizeof(enc) - el, "%c", *c));
	/* a query or a fragment ends the path */
	int pl = snprintf(path, sizeof(path), "/%s?nonce=1", enc);
	assert_int_equal(revo_ocsp_request_from_path(path, (size_t)pl, buf, sizeof(buf), 16, &r),
			 0);
	assert_int_equal(r.n, 1);
	pl = snprintf(path, sizeof(path), "/ocsp/%s#x", enc);
	assert_int_equal(revo_ocsp_request_from_path(path, (size_t)pl, buf, sizeof(buf), 16, &r),
			 0);
	/* an escape in the prefix: decoded by the slow path; a bad one refuses the path */
	pl = snprintf(path, sizeof(path), "/oc%%73p/%s", enc);
	assert_int_equal(revo_ocsp_request_from_path(path, (size_t)pl, buf, sizeof(buf), 16, &r),
			 0);
	pl = snprintf(path, sizeof(path), "/%%zz/%s", enc);
	assert_int_equal(revo_ocsp_request_from_path(path, (size_t)pl, buf, sizeof(buf), 16, &r),
			 REVO_EINVAL);
	/* a bad escape in the request itself */
	pl = snprintf(path, sizeof(path), "/%s%%4", enc);
	assert_int_equal(revo_ocsp_request_from_path(path, (size_t)pl, buf, sizeof(buf), 16, &r),
			 REVO_EINVAL);
	/* "=" inside, a digit too many, a buffer too small: not a request */
	pl = snprintf(path, sizeof(path), "/%.8s=%s", b64, b64 + 8);
	assert_int_equal(revo_ocsp_request_from_path(path, (size_t)pl, buf, sizeof(buf), 16, &r),
			 REVO_EINVAL);
	pl = snprintf(path, sizeof(path), "/%.*sA",
		      bl - (b64[bl - 1] == '=') - (b64[bl - 2] == '='), b64);
	assert_int_equal(revo_ocsp_request_from_path(path, (size_t)pl, buf, sizeof(buf), 16, &r),
			 REVO_EINVAL);
	pl = snprintf(path, sizeof(path), "/%s", enc);
	assert_int_equal(revo_ocsp_request_from_path(path, (size_t)pl, buf, n - 1, 16, &r),
			 REVO_EINVAL);
	assert_int_equal(revo_ocsp_request_from_path(path, (size_t)pl, buf, n, 16, &r), 0);
}

/* Control characters and DEL are refused anywhere in the target, other octets kept. */
static void http_target_control_characters(void **state)
{
	(void)state;
	revo_http_req_t h;
	char req[128];
	const unsigned char bad[] = {0x00, 0x01, 0x09, 0x1f, 0x7f};
	for (size_t pos = 1; pos < 40; pos++) {
		for (size_t b = 0; b < sizeof(bad); b++) {
			char target[41];
			memset(target, 'A', 40);
			target[0] = '/';
			target[40] = '\0';
			target[pos] = (char)bad[b];
			memcpy(req, "GET ", 4);
			memcpy(req + 4, target, 40);
			int n = 44 + snprintf(req + 44, sizeof(req) - 44,
					      " HTTP/1.1\r\nHost: x\r\n\r\n");
			assert_int_equal(revo_http_parse(req, (size_t)n, 8192, &h), REVO_HTTP_BAD);
		}
		char ok[128];
		int n = snprintf(ok, sizeof(ok), "GET /%.*s\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
				 (int)pos, "~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
		assert_int_equal(revo_http_parse(ok, (size_t)n, 8192, &h), 0);
	}
}

static void http_heads(void **state)
{
	(void)state;
	revo_http_req_t h;
	const char *get = "GET /ocsp/abc HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"e\"\r\n\r\nrest";
	assert_int_equal(revo_http_parse(get, strlen(get), 8192, &h), 0);
	assert_int_equal(h.method, REVO_HTTP_GET);
	assert_int_equal(h.minor, 1);
	assert_int_equal(h.path_len, 9);
	assert_int_equal(h.head_len, strlen(get) - 4);
	assert_int_equal(h.if_none_match_len, 3);

	const char *post =
	    "POST http://ocsp.example/x HTTP/1.0\nContent-Type: application/ocsp-request; "
	    "charset=x\nContent-Length: 12\nConnection: Keep-Alive\n\n";
	assert_int_equal(revo_http_parse(post, strlen(post), 8192, &h), 0);
	assert_int_equal(h.method, REVO_HTTP_POST);
	assert_true(h.type_ocsp);
	assert_int_equal(h.content_length, 12);
	assert_true(h.conn_keep_alive);
	assert_int_equal(h.path_len, 2);

	assert_int_equal(revo_http_parse(get, 20, 8192, &h), REVO_HTTP_NEED_MORE);
	assert_int_equal(revo_http_parse(get, strlen(get), 16, &h), REVO_HTTP_TOO_LARGE);
	const char *bad[] = {"GET  HTTP/1.1\r\n\r\n",
			     "GET / HTTP/2.0\r\n\r\n",
			     "GET nopath HTTP/1.1\r\n\r\n",
			     "GET / HTTP/1.1\r\n folded\r\n\r\n",
			     "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
			     "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_true(revo_http_parse(bad[i], strlen(bad[i]), 8192, &h) < 0);
}

static void error_responses_are_fixed_der(void **state)
{
	(void)state;
	size_t n;
	const uint8_t *p = revo_ocsp_error_response(REVO_OCSP_UNAUTHORIZED, &n);
	const unsigned char *q = p;
	OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &q, (long)n);
	assert_non_null(r);
	assert_int_equal(OCSP_response_status(r), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	OCSP_RESPONSE_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(decodes_openssl_requests),
	    cmocka_unit_test(refuses_bad_nonces),
	    cmocka_unit_test(decodes_get_paths),
	    cmocka_unit_test(get_path_fast_and_slow_paths_agree),
	    cmocka_unit_test(http_heads),
	    cmocka_unit_test(http_target_control_characters),
	    cmocka_unit_test(error_responses_are_fixed_der),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
