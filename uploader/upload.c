/*
 * One upload of one CRL to one target. Every scheme follows the same steps: find out
 * which CRL the target holds (and never go back from it), write, read back and compare
 * SHA-256. HTTP goes through libcurl easy handles with bodies from memory, so that the
 * SigV4 payload hash (x-amz-content-sha256, which libcurl 7.88 does not add by itself)
 * is the hash of what is sent.
 */
#include "uploader/uploader.h"

#include "crl/crl.h"
#include "pki/timefmt.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY ((size_t)256 << 20)

/* ---- small helpers ---- */

typedef struct buf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
} buf_t;

static void buf_free(buf_t *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void buf_add(buf_t *b, const void *p, size_t n)
{
	if (b->oom || n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *np = realloc(b->p, cap + 1);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
	EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = 0;
}

/* PEM of a DER CRL, NUL-terminated; caller frees. */
static char *crl_pem(const uint8_t *der, size_t n, size_t *len)
{
	size_t b64 = 4 * ((n + 2) / 3), lines = (b64 + 63) / 64;
	size_t cap = 25 + b64 + lines + 23 + 1;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	size_t o = (size_t)sprintf(out, "-----BEGIN X509 CRL-----\n");
	for (size_t off = 0; off < n; off += 48) {
		size_t k = n - off < 48 ? n - off : 48;
		o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, der + off, (int)k);
		out[o++] = '\n';
	}
	o += (size_t)sprintf(out + o, "-----END X509 CRL-----\n");
	*len = o;
	return out;
}

/*
 * The CRL number of a CRL in @p (DER or PEM); 0 when it is not a CRL or has none.
 * *@der_sha gets the SHA-256 of its DER.
 */
static uint64_t crl_number_of(const uint8_t *p, size_t n, uint8_t der_sha[32])
{
	X509_CRL *crl = NULL;
	const unsigned char *q = p;
	if (n > 10 && memmem(p, n < 4096 ? n : 4096, "-----BEGIN", 10)) {
		BIO *b = BIO_new_mem_buf(p, (int)n);
		crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
	} else {
		crl = d2i_X509_CRL(NULL, &q, (long)n);
	}
	if (!crl)
		return 0;
	uint64_t v = 0;
	unsigned char *der = NULL;
	int dl = i2d_X509_CRL(crl, &der);
	if (dl > 0 && der_sha)
		sha256(der, (size_t)dl, der_sha);
	OPENSSL_free(der);
	ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	if (num) {
		uint64_t u;
		if (ASN1_INTEGER_get_uint64(&u, num))
			v = u;
		ASN1_INTEGER_free(num);
	}
	X509_CRL_free(crl);
	return v;
}

/* ---- HTTP ---- */

typedef struct http_resp {
	long status;
	buf_t body;
	char etag[128];
	char crl_number[32];
	char error_code[128]; /* S3 <Code> or AWS JSON __type */
} http_resp_t;

static size_t write_cb(char *p, size_t size, size_t n, void *u)
{
	http_resp_t *r = u;
	if (r->body.len + size * n > MAX_BODY)
		return 0;
	buf_add(&r->body, p, size * n);
	return r->body.oom ? 0 : size * n;
}

static void header_value(const char *line, size_t n, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return;
	const char *v = line + nl + 1;
	size_t vl = n - nl - 1;
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	if (vl >= cap)
		vl = cap - 1;
	memcpy(out, v, vl);
	out[vl] = 0;
}

static size_t header_cb(char *p, size_t size, size_t n, void *u)
{
	http_resp_t *r = u;
	size_t len = size * n;
	header_value(p, len, "ETag", r->etag, sizeof(r->etag));
	header_value(p, len, "x-amz-meta-revo-crl-number", r->crl_number, sizeof(r->crl_number));
	return len;
}

typedef struct http_req {
	const char *method;
	const char *url;
	const uint8_t *body;
	size_t body_len;
	const char *const *headers;    /* NULL-terminated */
	const revo_aws_creds_t *creds; /* SigV4 when set */
	const char *region, *service;
} http_req_t;

static __thread int64_t tl_deadline_ms;

void revo_upload_set_deadline(int64_t deadline_ms)
{
	tl_deadline_ms = deadline_ms;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int http_do(const http_req_t *q, http_resp_t *r, revo_errmsg_t *em)
{
	memset(r, 0, sizeof(*r));
	long timeout_ms = 300000, connect_ms = 10000;
	if (tl_deadline_ms) {
		int64_t left = tl_deadline_ms - mono_ms();
		if (left <= 0)
			return revo_err_set(em, REVO_EIO, "%s %s: out of time", q->method, q->url);
		if (left < timeout_ms)
			timeout_ms = (long)left;
		if (left < connect_ms)
			connect_ms = (long)left;
	}
	CURL *c = curl_easy_init();
	if (!c)
		return REVO_ENOMEM;
	struct curl_slist *hl = NULL;
	char line[4200], sig[128];
	for (const char *const *h = q->headers; h && *h; h++)
		hl = curl_slist_append(hl, *h);
	if (q->creds) {
		uint8_t md[32];
		char hx[65];
		sha256(q->body ? q->body : (const uint8_t *)"", q->body_len, md);
		hex(md, 32, hx);
		snprintf(line, sizeof(line), "x-amz-content-sha256: %s", hx);
		hl = curl_slist_append(hl, line);
		if (q->creds->token[0]) {
			snprintf(line, sizeof(line), "x-amz-security-token: %s", q->creds->token);
			hl = curl_slist_append(hl, line);
		}
		snprintf(sig, sizeof(sig), "aws:amz:%s:%s", q->region, q->service);
		curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sig);
		curl_easy_setopt(c, CURLOPT_USERNAME, q->creds->access_key);
		curl_easy_setopt(c, CURLOPT_PASSWORD, q->creds->secret);
	}
	curl_easy_setopt(c, CURLOPT_URL, q->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 20L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "revo/" REVO_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (strcmp(q->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(q->method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body ? (const char *)q->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	CURLcode cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(c);
	/* the slist holds the security token: wipe it */
	for (struct curl_slist *s = hl; s; s = s->next)
		if (strncasecmp(s->data, "x-amz-security-token", 20) == 0)
			memset(s->data, 0, strlen(s->data));
	curl_slist_free_all(hl);
	memset(line, 0, sizeof(line));
	if (cc != CURLE_OK)
		return revo_err_set(em, REVO_EIO, "%s %s: %s", q->method, q->url,
				    curl_easy_strerror(cc));
	/* S3 XML error code */
	if (r->status >= 300 && r->body.p) {
		const char *s = strstr((const char *)r->body.p, "<Code>");
		if (s) {
			s += 6;
			const char *e = strstr(s, "</Code>");
			if (e && (size_t)(e - s) < sizeof(r->error_code)) {
				memcpy(r->error_code, s, (size_t)(e - s));
				r->error_code[e - s] = 0;
			}
		} else {
			json_t *j = json_loadb((const char *)r->body.p, r->body.len, 0, NULL);
			const char *t = json_string_value(json_object_get(j, "__type"));
			if (!t)
				t = json_string_value(json_object_get(j, "code"));
			if (t)
				snprintf(r->error_code, sizeof(r->error_code), "%s", t);
			json_decref(j);
		}
	}
	return REVO_OK;
}

static void http_resp_free(http_resp_t *r)
{
	buf_free(&r->body);
}

/* An upload's HTTP exchange: no answer at all (network, timeout) is worth a retry. */
static int http_try(const http_req_t *q, http_resp_t *r, revo_upload_result_t *res,
		    revo_errmsg_t *em)
{
	int rc = http_do(q, r, em);
	if (rc)
		res->retryable = true;
	return rc;
}

/* Map an HTTP failure to an error, with what an operator can do about it. */
static int http_fail(const char *what, const http_resp_t *r, revo_upload_result_t *res,
		     revo_errmsg_t *em)
{
	res->http_status = (int)r->status;
	const char *code = r->error_code[0] ? r->error_code : "";
	if (r->status == 429 || r->status >= 500 || strstr(code, "Throttl") ||
	    strcmp(code, "SlowDown") == 0 || r->status == 412 || r->status == 409) {
		res->retryable = true;
		return revo_err_set(em, REVO_EIO, "%s: HTTP %ld %s (will retry)", what, r->status,
				    code);
	}
	if (strcmp(code, "AccessControlListNotSupported") == 0)
		return revo_err_set(
		    em, REVO_EINVAL,
		    "%s: the bucket refuses ACLs (object ownership is bucket owner "
		    "enforced): drop public-read and grant read with a bucket policy "
		    "or serve the CRL through a CDN",
		    what);
	if (strcmp(code, "NoSuchBucket") == 0)
		return revo_err_set(em, REVO_EINVAL, "%s: the bucket does not exist", what);
	if (strcmp(code, "SignatureDoesNotMatch") == 0 || strcmp(code, "InvalidAccessKeyId") == 0)
		return revo_err_set(
		    em, REVO_EACCES,
		    "%s: HTTP %ld %s: the credentials are wrong (check the secret key "
		    "and the clock)",
		    what, r->status, code);
	if (strcmp(code, "RequestTimeTooSkewed") == 0)
		return revo_err_set(em, REVO_EACCES, "%s: HTTP %ld %s: the clock is off", what,
				    r->status, code);
	if (r->status == 403)
		return revo_err_set(
		    em, REVO_EACCES,
		    "%s: HTTP 403%s%s: access denied (check the credentials, the clock "
		    "and the bucket policy)",
		    what, code[0] ? " " : "", code);
	return revo_err_set(em, REVO_EINVAL, "%s: HTTP %ld%s%s", what, r->status,
			    code[0] ? " " : "", code);
}

/* ---- URL forms ---- */

typedef struct target_url {
	int scheme; /* 1 s3, 2 rolesanywhere, 3 file, 4 http(s) */
	char bucket[256], key[1024];
	char region[64], crl_id[128];
	char path[4096];
} target_url_t;

static int parse_url(const char *url, target_url_t *u, revo_errmsg_t *em)
{
	memset(u, 0, sizeof(*u));
	if (strncmp(url, "s3://", 5) == 0) {
		const char *b = url + 5, *slash = strchr(b, '/');
		if (!slash || slash == b || !slash[1] || (size_t)(slash - b) >= sizeof(u->bucket) ||
		    strlen(slash + 1) >= sizeof(u->key))
			return revo_err_set(em, REVO_EINVAL, "'%s' is not s3://BUCKET/KEY", url);
		u->scheme = 1;
		memcpy(u->bucket, b, (size_t)(slash - b));
		snprintf(u->key, sizeof(u->key), "%s", slash + 1);
		return REVO_OK;
	}
	if (strncmp(url, "rolesanywhere://", 16) == 0) {
		const char *r = url + 16, *slash = strchr(r, '/');
		size_t rl = slash ? (size_t)(slash - r) : strlen(r);
		if (rl == 0 || rl >= sizeof(u->region))
			return revo_err_set(em, REVO_EINVAL,
					    "'%s' is not rolesanywhere://REGION[/CRL-ID]", url);
		u->scheme = 2;
		memcpy(u->region, r, rl);
		if (slash && slash[1])
			snprintf(u->crl_id, sizeof(u->crl_id), "%s", slash + 1);
		return REVO_OK;
	}
	if (strncmp(url, "file://", 7) == 0) {
		if (url[7] != '/')
			return revo_err_set(em, REVO_EINVAL, "'%s' is not file:///ABSOLUTE/PATH",
					    url);
		u->scheme = 3;
		snprintf(u->path, sizeof(u->path), "%s", url + 7);
		return REVO_OK;
	}
	if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
		u->scheme = 4;
		return REVO_OK;
	}
	return revo_err_set(em, REVO_EINVAL,
			    "'%s': the URL must be s3://, rolesanywhere://, file:// or http(s)://",
			    url);
}

int revo_target_check(const revo_target_t *t, revo_errmsg_t *em)
{
	target_url_t u;
	int rc = parse_url(t->url, &u, em);
	if (rc)
		return rc;
	if (u.scheme == 2 && !u.crl_id[0] && !t->trust_anchor)
		return revo_err_set(
		    em, REVO_EINVAL,
		    "rolesanywhere://%s needs --trust-anchor ARN (or a CRL id in the "
		    "URL)",
		    u.region);
	if (t->trust_anchor && strncmp(t->trust_anchor, "arn:", 4) != 0)
		return revo_err_set(em, REVO_EINVAL, "--trust-anchor '%s' is not an ARN",
				    t->trust_anchor);
	if (t->endpoint && strncmp(t->endpoint, "http://", 7) != 0 &&
	    strncmp(t->endpoint, "https://", 8) != 0)
		return revo_err_set(em, REVO_EINVAL, "--endpoint '%s' is not an http(s) URL",
				    t->endpoint);
	return REVO_OK;
}

/* S3 object key, each octet outside the unreserved set percent-encoded ('/' kept). */
static void s3_key_path(const char *key, char *out, size_t cap)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)key; *p && o + 4 < cap; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
		    *p == '/')
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
	}
	out[o] = 0;
}

/* No region given: AWS_REGION, AWS_DEFAULT_REGION, the profile's, else us-east-1. */
static const char *default_region(const revo_aws_creds_t *c)
{
	const char *e = getenv("AWS_REGION");
	if (!e || !*e)
		e = getenv("AWS_DEFAULT_REGION");
	if (e && *e)
		return e;
	if (c && c->region[0])
		return c->region;
	return "us-east-1";
}

static const char *region_of(const revo_target_t *t, const revo_aws_creds_t *c,
			     const target_url_t *u)
{
	if (u->region[0])
		return u->region;
	if (t->region)
		return t->region;
	return default_region(c);
}

static void trim_slash(char *s)
{
	size_t n = strlen(s);
	while (n && s[n - 1] == '/')
		s[--n] = 0;
}

/* ---- s3 ---- */

static int upload_s3(const revo_target_t *t, const target_url_t *u, const revo_crl_blob_t *crl,
		     revo_upload_result_t *res, revo_errmsg_t *em)
{
	revo_aws_creds_t creds;
	int rc = revo_aws_creds_get(t->profile, &creds, em);
	if (rc)
		return rc;
	const char *region = region_of(t, &creds, u);
	char keypath[3200], url[4096];
	s3_key_path(u->key, keypath, sizeof(keypath));
	if (t->endpoint) {
		char ep[1024];
		snprintf(ep, sizeof(ep), "%s", t->endpoint);
		trim_slash(ep);
		snprintf(url, sizeof(url), "%s/%s/%s", ep, u->bucket, keypath);
	} else {
		snprintf(url, sizeof(url), "https://%s.s3.%s.amazonaws.com/%s", u->bucket, region,
			 keypath);
	}
	http_req_t q = {.url = url, .creds = &creds, .region = region, .service = "s3"};
	http_resp_t r;
	char what[1400];
	snprintf(what, sizeof(what), "s3://%s/%s", u->bucket, u->key);

	/* what is there */
	q.method = "HEAD";
	if ((rc = http_try(&q, &r, res, em)) != 0)
		goto out_creds;
	char remote_etag[128] = "";
	if (r.status == 200) {
		snprintf(remote_etag, sizeof(remote_etag), "%s", r.etag);
		if (r.crl_number[0]) {
			res->remote_number = strtoull(r.crl_number, NULL, 10);
		} else {
			http_resp_free(&r);
			q.method = "GET";
			if ((rc = http_try(&q, &r, res, em)) != 0)
				goto out_creds;
			if (r.status == 200)
				res->remote_number = crl_number_of(r.body.p, r.body.len, NULL);
		}
	} else if (r.status != 404) {
		rc = http_fail(what, &r, res, em);
		http_resp_free(&r);
		goto out_creds;
	}
	http_resp_free(&r);
	if (res->remote_number > crl->number) {
		res->skipped = true;
		rc = revo_err_set(em, REVO_ESTATE, "%s holds CRL %llu, newer than %llu: left alone",
				  what, (unsigned long long)res->remote_number,
				  (unsigned long long)crl->number);
		goto out_creds;
	}

	/* write */
	uint8_t md[32];
	sha256(crl->der, crl->der_len, md);
	char b64[64], cache[128], meta[80], metasha[120], ifm[160], expires[64];
	EVP_EncodeBlock((unsigned char *)b64, md, 32);
	int64_t now = revo_now();
	int64_t max_age = crl->next_update - now;
	if (max_age > 300)
		max_age = 300;
	if (max_age < 0)
		max_age = 0;
	snprintf(cache, sizeof(cache), "Cache-Control: public, max-age=%lld, must-revalidate",
		 (long long)max_age);
	char hexsha[65];
	hex(md, 32, hexsha);
	snprintf(meta, sizeof(meta), "x-amz-meta-revo-crl-number: %llu",
		 (unsigned long long)crl->number);
	snprintf(metasha, sizeof(metasha), "x-amz-meta-revo-crl-sha256: %s", hexsha);
	char checksum[120];
	snprintf(checksum, sizeof(checksum), "x-amz-checksum-sha256: %s", b64);
	struct tm tm;
	time_t nu = (time_t)crl->next_update;
	gmtime_r(&nu, &tm);
	strftime(expires, sizeof(expires), "Expires: %a, %d %b %Y %H:%M:%S GMT", &tm);
	const char *headers[10];
	int nh = 0;
	headers[nh++] = "Content-Type: application/pkix-crl";
	headers[nh++] = cache;
	headers[nh++] = expires;
	headers[nh++] = checksum;
	headers[nh++] = meta;
	headers[nh++] = metasha;
	if (t->flags & REVO_TARGET_PUBLIC_READ)
		headers[nh++] = "x-amz-acl: public-read";
	if (remote_etag[0]) {
		snprintf(ifm, sizeof(ifm), "If-Match: %s", remote_etag);
		headers[nh++] = ifm;
	}
	headers[nh] = NULL;
	q.method = "PUT";
	q.body = crl->der;
	q.body_len = crl->der_len;
	q.headers = headers;
	if ((rc = http_try(&q, &r, res, em)) != 0)
		goto out_creds;
	if (r.status == 412 && remote_etag[0]) {
		/*
		 * If-Match refused. Either the object changed since it was read (someone else
		 * wrote: read it again next attempt), or the store does not honour If-Match on
		 * PUT (Ceph radosgw answers 412 whatever the ETag). Read it again now: unchanged,
		 * and still not newer than ours, means the latter, and the PUT goes without it.
		 */
		http_resp_free(&r);
		http_req_t h2 = {.method = "HEAD",
				 .url = url,
				 .creds = &creds,
				 .region = region,
				 .service = "s3"};
		if ((rc = http_try(&h2, &r, res, em)) != 0)
			goto out_creds;
		bool unchanged = r.status == 200 && strcmp(r.etag, remote_etag) == 0 &&
				 strtoull(r.crl_number, NULL, 10) <= crl->number;
		http_resp_free(&r);
		if (!unchanged) {
			res->retryable = true;
			rc = revo_err_set(
			    em, REVO_EIO,
			    "%s changed while uploading (If-Match failed): will retry", what);
			goto out_creds;
		}
		headers[--nh] = NULL; /* drop If-Match, the last header */
		if ((rc = http_try(&q, &r, res, em)) != 0)
			goto out_creds;
	}
	if (r.status != 200) {
		rc = http_fail(what, &r, res, em);
		http_resp_free(&r);
		goto out_creds;
	}
	snprintf(res->etag, sizeof(res->etag), "%s", r.etag);
	http_resp_free(&r);

	/* read back */
	q.method = "GET";
	q.body = NULL;
	q.body_len = 0;
	q.headers = NULL;
	if ((rc = http_try(&q, &r, res, em)) != 0)
		goto out_creds;
	if (r.status != 200) {
		rc = http_fail(what, &r, res, em);
		http_resp_free(&r);
		goto out_creds;
	}
	sha256(r.body.p ? r.body.p : (const uint8_t *)"", r.body.len, res->sha256);
	http_resp_free(&r);
	res->http_status = 200;
	if (memcmp(res->sha256, md, 32) != 0) {
		res->retryable = true;
		rc = revo_err_set(em, REVO_ECRYPTO,
				  "%s: the object read back differs from the CRL uploaded", what);
	}
out_creds:
	memset(&creds, 0, sizeof(creds));
	return rc;
}

/* ---- Roles Anywhere ---- */

/* The CRL API allows one call per second (all CRL calls together). */
static pthread_mutex_t ra_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timespec ra_last;

static void ra_pace(void)
{
	pthread_mutex_lock(&ra_lock);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double since =
	    (double)(now.tv_sec - ra_last.tv_sec) + (double)(now.tv_nsec - ra_last.tv_nsec) / 1e9;
	if (ra_last.tv_sec && since < 1.05) {
		double wait = 1.05 - since;
		struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
		nanosleep(&ts, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &ra_last);
	pthread_mutex_unlock(&ra_lock);
}

static int ra_call(const char *method, const char *base, const char *path, json_t *body,
		   const revo_aws_creds_t *creds, const char *region, http_resp_t *r, json_t **out,
		   revo_errmsg_t *em)
{
	char url[2048];
	snprintf(url, sizeof(url), "%s%s", base, path);
	char *js = body ? json_dumps(body, JSON_COMPACT) : NULL;
	const char *headers[] = {"Content-Type: application/json", NULL};
	http_req_t q = {.method = method,
			.url = url,
			.body = (const uint8_t *)js,
			.body_len = js ? strlen(js) : 0,
			.headers = body ? headers : NULL,
			.creds = creds,
			.region = region,
			.service = "rolesanywhere"};
	ra_pace();
	int rc = http_do(&q, r, em);
	free(js);
	*out = NULL;
	if (rc == 0 && r->body.p)
		*out = json_loadb((const char *)r->body.p, r->body.len, 0, NULL);
	return rc;
}

/* From a CrlDetail: SHA-256 of the DER of its crlData (base64 of the PEM) and its number. */
static uint64_t ra_crl_of(json_t *crl, uint8_t sha[32])
{
	const char *data = json_string_value(json_object_get(crl, "crlData"));
	if (!data)
		return 0;
	size_t n = strlen(data);
	uint8_t *pem = malloc(n + 4);
	if (!pem)
		return 0;
	int pl = EVP_DecodeBlock(pem, (const unsigned char *)data, (int)n);
	uint64_t v = 0;
	if (pl > 0) {
		while (n && data[n - 1] == '=') {
			n--;
			pl--;
		}
		v = crl_number_of(pem, (size_t)pl, sha);
	}
	free(pem);
	return v;
}

static int upload_ra(const revo_target_t *t, const target_url_t *u, const revo_crl_blob_t *crl,
		     revo_upload_result_t *res, revo_errmsg_t *em)
{
	size_t crldata = revo_crl_crldata_len(crl->der_len);
	if (crldata > REVO_CRLDATA_LIMIT) {
		/* how many entries would fit, at this CRL's size per entry */
		size_t fit = 0;
		if (crl->entries) {
			/* the largest DER whose base64(PEM) fits: PEM is 48 octets of armour, the
			 * base64 of the DER and a newline per 64 characters */
			double limit_der =
			    ((double)REVO_CRLDATA_LIMIT * 3 / 4 - 48) * 3 / 4 * 64 / 65;
			double fixed = 512; /* header, extensions, signature: not per entry */
			double per = ((double)crl->der_len - fixed) / (double)crl->entries;
			if (per > 0 && limit_der > fixed)
				fit = (size_t)((limit_der - fixed) / per);
		}
		return revo_err_set(
		    em, REVO_EINVAL,
		    "CRL %llu is too large for Roles Anywhere: crlData would be %zu "
		    "characters, over the limit of %d (about %zu of its %zu entries "
		    "would fit)",
		    (unsigned long long)crl->number, crldata, REVO_CRLDATA_LIMIT, fit,
		    crl->entries);
	}
	revo_aws_creds_t creds;
	int rc = revo_aws_creds_get(t->profile, &creds, em);
	if (rc)
		return rc;
	const char *region = region_of(t, &creds, u);
	char base[1024];
	if (t->endpoint)
		snprintf(base, sizeof(base), "%s", t->endpoint);
	else
		snprintf(base, sizeof(base), "https://rolesanywhere.%s.amazonaws.com", region);
	trim_slash(base);
	char id[128];
	snprintf(id, sizeof(id), "%s", u->crl_id[0] ? u->crl_id : t->remote_id ? t->remote_id : "");
	size_t pem_len;
	char *pem = crl_pem(crl->der, crl->der_len, &pem_len);
	char *data = pem ? malloc(4 * ((pem_len + 2) / 3) + 1) : NULL;
	if (!data) {
		free(pem);
		memset(&creds, 0, sizeof(creds));
		return REVO_ENOMEM;
	}
	EVP_EncodeBlock((unsigned char *)data, (const unsigned char *)pem, (int)pem_len);
	free(pem);
	http_resp_t r = {0};
	json_t *ans = NULL, *body = NULL;
	char path[512], what[256];
	snprintf(what, sizeof(what), "rolesanywhere://%s/%s", region, id[0] ? id : "(import)");

	/* what it holds, when our record does not say */
	if (id[0] && t->crl_number == 0) {
		snprintf(path, sizeof(path), "/crl/%s", id);
		if ((rc = ra_call("GET", base, path, NULL, &creds, region, &r, &ans, em)) != 0) {
			res->retryable = true;
			goto out;
		}
		if (r.status != 200) {
			rc = http_fail(what, &r, res, em);
			goto out;
		}
		res->remote_number = ra_crl_of(json_object_get(ans, "crl"), NULL);
		http_resp_free(&r);
		json_decref(ans);
		ans = NULL;
	} else if (id[0]) {
		res->remote_number = t->crl_number;
	}
	if (res->remote_number > crl->number) {
		res->skipped = true;
		rc = revo_err_set(em, REVO_ESTATE, "%s holds CRL %llu, newer than %llu: left alone",
				  what, (unsigned long long)res->remote_number,
				  (unsigned long long)crl->number);
		goto out;
	}
	if (id[0]) {
		snprintf(path, sizeof(path), "/crl/%s", id);
		body = json_pack("{s:s}", "crlData", data);
		rc = ra_call("PATCH", base, path, body, &creds, region, &r, &ans, em);
	} else {
		/* the API allows [ a-zA-Z0-9-_] in names */
		char name[128];
		snprintf(name, sizeof(name), "revo-%s", crl->issuer ? crl->issuer : "crl");
		for (char *c = name; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == ' '))
				*c = '-';
		body = json_pack("{s:s, s:s, s:s, s:b}", "name", name, "crlData", data,
				 "trustAnchorArn", t->trust_anchor, "enabled", 1);
		rc = ra_call("POST", base, "/crls", body, &creds, region, &r, &ans, em);
	}
	if (rc) {
		res->retryable = true;
		goto out;
	}
	if (r.status != 200 && r.status != 201) {
		rc = http_fail(what, &r, res, em);
		goto out;
	}
	json_t *detail = json_object_get(ans, "crl");
	const char *got_id = json_string_value(json_object_get(detail, "crlId"));
	if (!got_id) {
		rc = revo_err_set(em, REVO_EIO, "%s: the answer holds no crl.crlId", what);
		res->retryable = true;
		goto out;
	}
	snprintf(res->remote_id, sizeof(res->remote_id), "%s", got_id);
	uint8_t md[32];
	sha256(crl->der, crl->der_len, md);
	uint64_t held = ra_crl_of(detail, res->sha256);
	if (held != crl->number || memcmp(res->sha256, md, 32) != 0) {
		res->retryable = true;
		rc = revo_err_set(em, REVO_ECRYPTO,
				  "%s: the CRL in the answer is not the one uploaded", what);
		goto out;
	}
	if (!json_is_true(json_object_get(detail, "enabled"))) {
		/* imported CRLs have been seen to come back disabled */
		http_resp_free(&r);
		json_decref(ans);
		ans = NULL;
		snprintf(path, sizeof(path), "/crl/%s/enable", res->remote_id);
		if ((rc = ra_call("POST", base, path, NULL, &creds, region, &r, &ans, em)) != 0) {
			res->retryable = true;
			goto out;
		}
		if (r.status != 200) {
			rc = http_fail(what, &r, res, em);
			goto out;
		}
		if (!json_is_true(json_object_get(json_object_get(ans, "crl"), "enabled"))) {
			res->retryable = true;
			rc = revo_err_set(em, REVO_EIO,
					  "%s: the CRL is still disabled after EnableCrl", what);
			goto out;
		}
	}
	res->http_status = (int)r.status;
out:
	http_resp_free(&r);
	json_decref(ans);
	json_decref(body);
	free(data);
	memset(&creds, 0, sizeof(creds));
	return rc;
}

/* ---- file ---- */

static int read_all(const char *path, buf_t *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	uint8_t tmp[65536];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof(tmp))) > 0 && b->len < MAX_BODY)
		buf_add(b, tmp, (size_t)n);
	close(fd);
	return n < 0 || b->oom ? -1 : 0;
}

static int upload_file(const target_url_t *u, const revo_crl_blob_t *crl, revo_upload_result_t *res,
		       revo_errmsg_t *em)
{
	buf_t old = {0};
	if (read_all(u->path, &old) == 0)
		res->remote_number = crl_number_of(old.p, old.len, NULL);
	else if (errno != ENOENT) {
		buf_free(&old);
		return revo_err_set(em, REVO_EIO, "%s: %s", u->path, strerror(errno));
	}
	buf_free(&old);
	if (res->remote_number > crl->number) {
		res->skipped = true;
		return revo_err_set(
		    em, REVO_ESTATE, "%s holds CRL %llu, newer than %llu: left alone", u->path,
		    (unsigned long long)res->remote_number, (unsigned long long)crl->number);
	}
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", u->path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return revo_err_set(em, errno == EACCES ? REVO_EACCES : REVO_EIO, "%s: %s", u->path,
				    strerror(errno));
	fchmod(fd, 0644);
	const uint8_t *p = crl->der;
	size_t n = crl->der_len;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;
			close(fd);
			unlink(tmp);
			res->retryable = e == ENOSPC;
			return revo_err_set(em, REVO_EIO, "%s: %s", u->path, strerror(e));
		}
		p += w;
		n -= (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, u->path) != 0) {
		int e = errno;
		unlink(tmp);
		return revo_err_set(em, REVO_EIO, "%s: %s", u->path, strerror(e));
	}
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s", u->path);
	int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	buf_t back = {0};
	if (read_all(u->path, &back) != 0) {
		buf_free(&back);
		return revo_err_set(em, REVO_EIO, "%s: cannot read back", u->path);
	}
	uint8_t md[32];
	sha256(crl->der, crl->der_len, md);
	sha256(back.p ? back.p : (const uint8_t *)"", back.len, res->sha256);
	buf_free(&back);
	if (memcmp(md, res->sha256, 32) != 0)
		return revo_err_set(em, REVO_ECRYPTO, "%s: the file read back differs", u->path);
	return REVO_OK;
}

/* ---- plain HTTP PUT ---- */

static int upload_http(const char *url, const revo_crl_blob_t *crl, revo_upload_result_t *res,
		       revo_errmsg_t *em)
{
	http_req_t q = {.method = "GET", .url = url};
	http_resp_t r;
	int rc = http_try(&q, &r, res, em);
	if (rc)
		return rc;
	if (r.status == 200)
		res->remote_number = crl_number_of(r.body.p, r.body.len, NULL);
	http_resp_free(&r);
	if (res->remote_number > crl->number) {
		res->skipped = true;
		return revo_err_set(
		    em, REVO_ESTATE, "%s holds CRL %llu, newer than %llu: left alone", url,
		    (unsigned long long)res->remote_number, (unsigned long long)crl->number);
	}
	const char *headers[] = {"Content-Type: application/pkix-crl", NULL};
	q = (http_req_t){.method = "PUT",
			 .url = url,
			 .body = crl->der,
			 .body_len = crl->der_len,
			 .headers = headers};
	if ((rc = http_try(&q, &r, res, em)) != 0)
		return rc;
	if (r.status < 200 || r.status >= 300) {
		rc = http_fail(url, &r, res, em);
		http_resp_free(&r);
		return rc;
	}
	http_resp_free(&r);
	q = (http_req_t){.method = "GET", .url = url};
	if ((rc = http_try(&q, &r, res, em)) != 0)
		return rc;
	uint8_t md[32];
	sha256(crl->der, crl->der_len, md);
	sha256(r.body.p ? r.body.p : (const uint8_t *)"", r.body.len, res->sha256);
	res->http_status = (int)r.status;
	http_resp_free(&r);
	if (res->http_status != 200 || memcmp(md, res->sha256, 32) != 0) {
		res->retryable = true;
		return revo_err_set(em, REVO_ECRYPTO, "%s: what was read back differs (HTTP %d)",
				    url, res->http_status);
	}
	return REVO_OK;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int revo_upload_crl(const revo_target_t *t, const revo_crl_blob_t *crl, revo_upload_result_t *res,
		    revo_errmsg_t *em)
{
	memset(res, 0, sizeof(*res));
	target_url_t u;
	int rc = parse_url(t->url, &u, em);
	if (rc)
		return rc;
	pthread_once(&curl_once, curl_init);
	switch (u.scheme) {
	case 1: return upload_s3(t, &u, crl, res, em);
	case 2: return upload_ra(t, &u, crl, res, em);
	case 3: return upload_file(&u, crl, res, em);
	default: return upload_http(t->url, crl, res, em);
	}
}

int revo_upload_file(const char *path, const char *url, const char *region, const char *endpoint,
		     const char *profile, const char *trust_anchor, revo_upload_result_t *res,
		     revo_errmsg_t *em)
{
	buf_t b = {0};
	if (read_all(path, &b) != 0) {
		buf_free(&b);
		return revo_err_set(em, REVO_EIO, "%s: %s", path, strerror(errno));
	}
	/* PEM in, DER out: targets receive DER */
	X509_CRL *crl = NULL;
	const unsigned char *q = b.p;
	if (b.len > 10 && memmem(b.p, b.len < 4096 ? b.len : 4096, "-----BEGIN", 10)) {
		BIO *bio = BIO_new_mem_buf(b.p, (int)b.len);
		crl = bio ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
	} else {
		crl = d2i_X509_CRL(NULL, &q, (long)b.len);
	}
	buf_free(&b);
	if (!crl)
		return revo_err_set(em, REVO_EINVAL, "%s is not a CRL (PEM or DER)", path);
	unsigned char *der = NULL;
	int dl = i2d_X509_CRL(crl, &der);
	revo_crl_blob_t blob = {.der = der, .der_len = dl > 0 ? (size_t)dl : 0};
	ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	uint64_t v = 0;
	if (num) {
		ASN1_INTEGER_get_uint64(&v, num);
		ASN1_INTEGER_free(num);
	}
	blob.number = v;
	revo_time_from_asn1(X509_CRL_get0_lastUpdate(crl), &blob.this_update);
	if (X509_CRL_get0_nextUpdate(crl))
		revo_time_from_asn1(X509_CRL_get0_nextUpdate(crl), &blob.next_update);
	STACK_OF(X509_REVOKED) *rv = X509_CRL_get_REVOKED(crl);
	blob.entries = rv ? (size_t)sk_X509_REVOKED_num(rv) : 0;
	blob.issuer = "upload";
	revo_target_t t = {.url = (char *)url,
			   .region = (char *)region,
			   .endpoint = (char *)endpoint,
			   .profile = (char *)profile,
			   .trust_anchor = (char *)trust_anchor};
	int rc = revo_target_check(&t, em);
	if (rc == 0)
		rc = revo_upload_crl(&t, &blob, res, em);
	OPENSSL_free(der);
	X509_CRL_free(crl);
	return rc;
}

int revo_http_exchange(const char *method, const char *url, const uint8_t *body, size_t len,
		       const char *content_type, uint8_t **out, size_t *out_len, int *status,
		       revo_errmsg_t *em)
{
	pthread_once(&curl_once, curl_init);
	char ct[160];
	const char *headers[2] = {NULL, NULL};
	if (content_type) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
		headers[0] = ct;
	}
	http_req_t q = {
	    .method = method, .url = url, .body = body, .body_len = len, .headers = headers};
	http_resp_t r;
	int rc = http_do(&q, &r, em);
	*status = (int)r.status;
	if (rc) {
		http_resp_free(&r);
		return rc;
	}
	*out = r.body.p ? r.body.p : calloc(1, 1);
	*out_len = r.body.len;
	return *out ? REVO_OK : REVO_ENOMEM;
}

int revo_fetch(const char *url, const char *region, const char *endpoint, const char *profile,
	       uint8_t **out, size_t *len, int *status, revo_errmsg_t *em)
{
	pthread_once(&curl_once, curl_init);
	target_url_t u;
	*out = NULL;
	*len = 0;
	*status = 0;
	int rc = parse_url(url, &u, em);
	if (rc)
		return rc;
	if (u.scheme == 2)
		return revo_err_set(em, REVO_EINVAL, "%s: use 'revo probe rolesanywhere'", url);
	if (u.scheme == 3) {
		buf_t b = {0};
		if (read_all(u.path, &b) != 0) {
			int e = errno;
			buf_free(&b);
			return revo_err_set(em, e == ENOENT ? REVO_ENOTFOUND : REVO_EIO, "%s: %s",
					    u.path, strerror(e));
		}
		*status = 200;
		*out = b.p ? b.p : calloc(1, 1);
		*len = b.len;
		return REVO_OK;
	}
	http_req_t q = {.method = "GET", .url = url};
	revo_aws_creds_t creds;
	char s3url[4096];
	revo_target_t t = {
	    .region = (char *)region, .endpoint = (char *)endpoint, .profile = (char *)profile};
	if (u.scheme == 1) {
		if ((rc = revo_aws_creds_get(profile, &creds, em)) != 0)
			return rc;
		const char *reg = region_of(&t, &creds, &u);
		char keypath[3200];
		s3_key_path(u.key, keypath, sizeof(keypath));
		if (endpoint) {
			char ep[1024];
			snprintf(ep, sizeof(ep), "%s", endpoint);
			trim_slash(ep);
			snprintf(s3url, sizeof(s3url), "%s/%s/%s", ep, u.bucket, keypath);
		} else {
			snprintf(s3url, sizeof(s3url), "https://%s.s3.%s.amazonaws.com/%s",
				 u.bucket, reg, keypath);
		}
		q.url = s3url;
		q.creds = &creds;
		q.region = reg;
		q.service = "s3";
	}
	http_resp_t r;
	rc = http_do(&q, &r, em);
	if (u.scheme == 1)
		memset(&creds, 0, sizeof(creds));
	*status = (int)r.status;
	if (rc) {
		http_resp_free(&r);
		return rc;
	}
	if (r.status != 200) {
		http_resp_free(&r);
		return revo_err_set(em, r.status == 404 ? REVO_ENOTFOUND : REVO_EIO, "%s: HTTP %ld",
				    url, r.status);
	}
	*out = r.body.p ? r.body.p : calloc(1, 1);
	*len = r.body.len;
	return REVO_OK;
}

int revo_ra_get(const char *region, const char *endpoint, const char *profile, const char *path,
		json_t **out, int *status, revo_errmsg_t *em)
{
	pthread_once(&curl_once, curl_init);
	revo_aws_creds_t creds;
	*out = NULL;
	*status = 0;
	int rc = revo_aws_creds_get(profile, &creds, em);
	if (rc)
		return rc;
	if (!region || !*region)
		region = default_region(&creds);
	char base[1024];
	if (endpoint)
		snprintf(base, sizeof(base), "%s", endpoint);
	else
		snprintf(base, sizeof(base), "https://rolesanywhere.%s.amazonaws.com", region);
	trim_slash(base);
	http_resp_t r;
	rc = ra_call("GET", base, path, NULL, &creds, region, &r, out, em);
	*status = (int)r.status;
	http_resp_free(&r);
	memset(&creds, 0, sizeof(creds));
	return rc;
}

int revo_aws_json(const char *service, const char *target, const char *region, const char *endpoint,
		  const char *profile, json_t *body, json_t **out, int *status, char *error_type,
		  size_t error_len, revo_errmsg_t *em)
{
	pthread_once(&curl_once, curl_init);
	revo_aws_creds_t creds;
	*out = NULL;
	*status = 0;
	if (error_len)
		error_type[0] = 0;
	int rc = revo_aws_creds_get(profile, &creds, em);
	if (rc)
		return rc;
	if (!region || !*region)
		region = default_region(&creds);
	char url[1024];
	if (endpoint)
		snprintf(url, sizeof(url), "%s", endpoint);
	else
		snprintf(url, sizeof(url), "https://%s.%s.amazonaws.com", service, region);
	trim_slash(url);
	strcat(url, "/");
	char target_h[256];
	snprintf(target_h, sizeof(target_h), "X-Amz-Target: %s", target);
	const char *headers[] = {"Content-Type: application/x-amz-json-1.1", target_h, NULL};
	char *js = json_dumps(body, JSON_COMPACT);
	if (!js) {
		memset(&creds, 0, sizeof(creds));
		return REVO_ENOMEM;
	}
	http_req_t q = {.method = "POST",
			.url = url,
			.body = (const uint8_t *)js,
			.body_len = strlen(js),
			.headers = headers,
			.creds = &creds,
			.region = region,
			.service = service};
	http_resp_t r;
	rc = http_do(&q, &r, em);
	free(js);
	memset(&creds, 0, sizeof(creds));
	*status = (int)r.status;
	if (rc == 0 && r.body.p)
		*out = json_loadb((const char *)r.body.p, r.body.len, 0, NULL);
	if (rc == 0 && error_len && r.error_code[0]) {
		/* "com.amazonaws.cloudtrail.v20131101#ThrottlingException" -> the name */
		const char *h = strrchr(r.error_code, '#');
		snprintf(error_type, error_len, "%s", h ? h + 1 : r.error_code);
	}
	http_resp_free(&r);
	return rc;
}
