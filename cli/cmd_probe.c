/*
 * revo probe crl and revo probe ocsp: monitoring-plugin checks (Nagios, Icinga, Sensu,
 * and Prometheus through --prometheus). One status line "STATUS - summary | perfdata",
 * exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (including misuse); --json prints the
 * same as a JSON document. Each check can only make the status worse.
 */
#include "cli/cli.h"
#include "cli/probe.h"

#include "crl/crl.h"
#include "pki/cert.h"
#include "pki/timefmt.h"
#include "uploader/uploader.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static X509 *load_ca(const char *path, char *err, size_t errlen)
{
	revo_errmsg_t em = {{0}};
	STACK_OF(X509) * sk;
	if (revo_cert_load(path, &sk, &em) != 0) {
		snprintf(err, errlen, "%s", em.msg);
		return NULL;
	}
	X509 *x = sk_X509_shift(sk);
	sk_X509_pop_free(sk, X509_free);
	return x;
}

struct probe_opts {
	const char *ca, *issuer, *warn, *crit, *state, *serial, *cert, *expect, *region, *endpoint,
	    *profile, *prom;
	bool nonce, post, sha256;
};

static int probe_opt(cli_t *cli, int opt, const char *arg, void *vctx)
{
	struct probe_opts *o = vctx;
	(void)cli;
	switch (opt) {
	case 'c': o->ca = arg; break;
	case 'i': o->issuer = arg; break;
	case 'w': o->warn = arg; break;
	case 'C': o->crit = arg; break;
	case 's': o->state = arg; break;
	case 'S': o->serial = arg; break;
	case 'f': o->cert = arg; break;
	case 'e': o->expect = arg; break;
	case 'r': o->region = arg; break;
	case 'E': o->endpoint = arg; break;
	case 'p': o->profile = arg; break;
	case 'P': o->prom = arg; break;
	case 'n': o->nonce = true; break;
	case 'o': o->post = true; break;
	case '2': o->sha256 = true; break;
	}
	return 0;
}

/* ---- probe crl ---- */

static uint64_t state_read(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned long long v = 0;
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static void state_write(const char *path, uint64_t v)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%llu\n", (unsigned long long)v);
	if (fclose(f) == 0)
		rename(tmp, path);
	else
		unlink(tmp);
}

int cmd_probe_crl(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"ca", required_argument, NULL, 'c'},
	    {"warn", required_argument, NULL, 'w'},
	    {"crit", required_argument, NULL, 'C'},
	    {"state", required_argument, NULL, 's'},
	    {"serial", required_argument, NULL, 'S'},
	    {"cert", required_argument, NULL, 'f'},
	    {"region", required_argument, NULL, 'r'},
	    {"endpoint", required_argument, NULL, 'E'},
	    {"profile", required_argument, NULL, 'p'},
	    {"prometheus", required_argument, NULL, 'P'},
	    {0},
	};
	struct probe_opts o = {0};
	int first;
	int r = probe_args(cli, argc, argv, opts, probe_opt, &o, &first, 1);
	if (r >= 0)
		return r;
	if (argc - first != 1)
		return probe_misuse(cli, "give the CRL URL");
	if (!o.ca)
		return probe_misuse(cli, "--ca CA.pem is required");
	int64_t warn = 48 * 3600, crit = 12 * 3600;
	revo_errmsg_t em = {{0}};
	if ((o.warn && revo_duration_parse(o.warn, &warn, &em)) ||
	    (o.crit && revo_duration_parse(o.crit, &crit, &em)))
		return probe_misuse(cli, "%s", em.msg);
	revo_serial_t want;
	bool want_serial = false;
	if (o.serial) {
		if (revo_serial_parse(o.serial, &want, &em))
			return probe_misuse(cli, "%s", em.msg);
		want_serial = true;
	}
	char err[512];
	X509 *ca = load_ca(o.ca, err, sizeof(err));
	if (!ca)
		return probe_misuse(cli, "--ca: %s", err);
	if (o.cert) {
		STACK_OF(X509) * sk;
		if (revo_cert_load(o.cert, &sk, &em)) {
			X509_free(ca);
			return probe_misuse(cli, "--cert: %s", em.msg);
		}
		revo_serial_from_asn1(X509_get0_serialNumber(sk_X509_value(sk, 0)), &want, NULL);
		want_serial = true;
		sk_X509_pop_free(sk, X509_free);
	}
	const char *url = argv[first];
	probe_t p = {.cli = cli,
		     .checks = json_array(),
		     .perfj = json_object(),
		     .prom_path = o.prom,
		     .prom_name = "crl",
		     .target = url};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint8_t *body = NULL;
	size_t len = 0;
	int status = 0;
	r = revo_fetch(url, o.region, o.endpoint, o.profile, &body, &len, &status, &em);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double fetch_ms =
	    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	probe_perf(&p, "fetch_ms", (double)(int)(fetch_ms * 10) / 10, "ms");
	char facts[512] = "";
	if (r) {
		probe_problem(&p, P_CRITICAL, "cannot fetch the CRL: %s",
			      em.msg[0] ? em.msg : revo_strerror(r));
		X509_free(ca);
		return probe_finish(&p, "");
	}
	X509_CRL *crl = NULL;
	const unsigned char *q = body;
	if (len > 10 && memmem(body, len < 4096 ? len : 4096, "-----BEGIN", 10)) {
		BIO *b = BIO_new_mem_buf(body, (int)len);
		crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
	} else {
		crl = d2i_X509_CRL(NULL, &q, (long)len);
	}
	if (!crl) {
		ERR_clear_error();
		probe_problem(&p, P_CRITICAL, "what %s serves is not a CRL (%zu octets)", url, len);
		free(body);
		X509_free(ca);
		return probe_finish(&p, "");
	}
	unsigned char *der = NULL;
	int dl = i2d_X509_CRL(crl, &der);
	size_t der_len = dl > 0 ? (size_t)dl : len;
	OPENSSL_free(der);
	free(body);

	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0)
		probe_problem(&p, P_CRITICAL, "the CRL's issuer is not the CA's subject");
	if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1)
		probe_problem(&p, P_CRITICAL, "the CRL signature does not verify with the CA key");
	ERR_clear_error();
	int64_t now = revo_now(), tu = 0, nu = 0;
	revo_time_from_asn1(X509_CRL_get0_lastUpdate(crl), &tu);
	if (tu > now + 300)
		probe_problem(&p, P_CRITICAL, "thisUpdate is %llds in the future",
			      (long long)(tu - now));
	if (!X509_CRL_get0_nextUpdate(crl)) {
		probe_problem(&p, P_WARNING, "the CRL has no nextUpdate");
	} else {
		revo_time_from_asn1(X509_CRL_get0_nextUpdate(crl), &nu);
		char d[32];
		probe_fmt_dur(nu - now, d, sizeof(d));
		if (nu <= now)
			probe_problem(&p, P_CRITICAL, "the CRL expired %s ago", d + 1);
		else if (nu - now < crit)
			probe_problem(&p, P_CRITICAL, "nextUpdate in %s (critical below %llds)", d,
				      (long long)crit);
		else if (nu - now < warn)
			probe_problem(&p, P_WARNING, "nextUpdate in %s (warning below %llds)", d,
				      (long long)warn);
		probe_perf(&p, "next_update_seconds", (double)(nu - now), "s");
	}
	uint64_t number = 0;
	ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	if (num) {
		ASN1_INTEGER_get_uint64(&number, num);
		ASN1_INTEGER_free(num);
	} else {
		probe_problem(&p, P_WARNING, "the CRL has no CRL number");
	}
	probe_perf(&p, "crl_number", (double)number, "");
	if (o.state) {
		uint64_t last = state_read(o.state);
		if (number < last)
			probe_problem(
			    &p, P_CRITICAL,
			    "CRL number %llu is lower than %llu seen before: an old CRL is being "
			    "served (replay or rollback)",
			    (unsigned long long)number, (unsigned long long)last);
		else
			state_write(o.state, number);
	}
	STACK_OF(X509_REVOKED) *rv = X509_CRL_get_REVOKED(crl);
	int entries = rv ? sk_X509_REVOKED_num(rv) : 0;
	probe_perf(&p, "entries", entries, "");
	size_t crldata = revo_crl_crldata_len(der_len);
	double pct = 100.0 * (double)crldata / REVO_CRLDATA_LIMIT;
	probe_perf(&p, "crldata_percent", (double)(int)(pct * 10) / 10, "%");
	if (crldata > REVO_CRLDATA_LIMIT)
		probe_problem(&p, P_WARNING, "too large for Roles Anywhere (crlData %zu > %d)",
			      crldata, REVO_CRLDATA_LIMIT);
	else if (pct > 80)
		probe_problem(&p, P_WARNING, "crlData at %.0f%% of the Roles Anywhere limit", pct);
	if (want_serial) {
		bool listed = false;
		for (int i = 0; i < entries && !listed; i++) {
			revo_serial_t s;
			if (revo_serial_from_asn1(
				X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rv, i)), &s,
				NULL) == 0)
				listed = revo_serial_cmp(&s, &want) == 0;
		}
		char sx[REVO_SERIAL_HEX_MAX];
		if (!listed)
			probe_problem(&p, P_CRITICAL, "serial %s is not on the CRL",
				      revo_serial_format(&want, sx));
		else
			snprintf(facts + strlen(facts), sizeof(facts) - strlen(facts),
				 "serial %s listed; ", revo_serial_format(&want, sx));
	}
	char d[32] = "?";
	if (nu)
		probe_fmt_dur(nu - now, d, sizeof(d));
	snprintf(facts + strlen(facts), sizeof(facts) - strlen(facts),
		 "CRL %llu, %d entries, next update in %s", (unsigned long long)number, entries, d);
	X509_CRL_free(crl);
	X509_free(ca);
	return probe_finish(&p, facts);
}

/* ---- probe ocsp ---- */

int cmd_probe_ocsp(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"issuer", required_argument, NULL, 'i'},
	    {"cert", required_argument, NULL, 'f'},
	    {"serial", required_argument, NULL, 'S'},
	    {"expect", required_argument, NULL, 'e'},
	    {"nonce", no_argument, NULL, 'n'},
	    {"post", no_argument, NULL, 'o'},
	    {"sha256", no_argument, NULL, '2'},
	    {"warn", required_argument, NULL, 'w'},
	    {"prometheus", required_argument, NULL, 'P'},
	    {0},
	};
	struct probe_opts o = {0};
	int first;
	int r = probe_args(cli, argc, argv, opts, probe_opt, &o, &first, 1);
	if (r >= 0)
		return r;
	if (argc - first != 1)
		return probe_misuse(cli, "give the responder URL");
	if (!o.issuer)
		return probe_misuse(cli, "--issuer CA.pem is required");
	if (!!o.cert + !!o.serial != 1)
		return probe_misuse(cli, "give --cert FILE or --serial S");
	int expect = -1;
	if (o.expect) {
		if (strcmp(o.expect, "good") == 0)
			expect = V_OCSP_CERTSTATUS_GOOD;
		else if (strcmp(o.expect, "revoked") == 0)
			expect = V_OCSP_CERTSTATUS_REVOKED;
		else if (strcmp(o.expect, "unknown") == 0)
			expect = V_OCSP_CERTSTATUS_UNKNOWN;
		else
			return probe_misuse(cli, "--expect is good, revoked or unknown");
	}
	int64_t warn_next = 3600;
	revo_errmsg_t em = {{0}};
	if (o.warn && revo_duration_parse(o.warn, &warn_next, &em))
		return probe_misuse(cli, "%s", em.msg);
	char err[512];
	X509 *ca = load_ca(o.issuer, err, sizeof(err));
	if (!ca)
		return probe_misuse(cli, "--issuer: %s", err);
	ASN1_INTEGER *sn = NULL;
	if (o.cert) {
		STACK_OF(X509) * sk;
		if (revo_cert_load(o.cert, &sk, &em)) {
			X509_free(ca);
			return probe_misuse(cli, "--cert: %s", em.msg);
		}
		sn = ASN1_INTEGER_dup(X509_get0_serialNumber(sk_X509_value(sk, 0)));
		sk_X509_pop_free(sk, X509_free);
	} else {
		revo_serial_t s;
		if (revo_serial_parse(o.serial, &s, &em)) {
			X509_free(ca);
			return probe_misuse(cli, "%s", em.msg);
		}
		BIGNUM *bn = BN_bin2bn(s.mag, s.len, NULL);
		sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
		BN_free(bn);
	}
	const char *url = argv[first];
	probe_t p = {.cli = cli,
		     .checks = json_array(),
		     .perfj = json_object(),
		     .prom_path = o.prom,
		     .prom_name = "ocsp",
		     .target = url};
	const EVP_MD *md = o.sha256 ? EVP_sha256() : EVP_sha1();
	OCSP_CERTID *id =
	    OCSP_cert_id_new(md, X509_get_subject_name(ca), X509_get0_pubkey_bitstr(ca), sn);
	OCSP_CERTID *id_copy = OCSP_CERTID_dup(id);
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_request_add0_id(req, id);
	if (o.nonce)
		OCSP_request_add1_nonce(req, NULL, 16);
	unsigned char *der = NULL;
	int dl = i2d_OCSP_REQUEST(req, &der);
	uint8_t *body = NULL;
	size_t len = 0;
	int status = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (o.post) {
		r = revo_http_exchange("POST", url, der, (size_t)dl, "application/ocsp-request",
				       &body, &len, &status, &em);
	} else {
		char b64[4096], full[8192];
		EVP_EncodeBlock((unsigned char *)b64, der, dl);
		size_t ul = (size_t)snprintf(full, sizeof(full), "%s%s", url,
					     url[strlen(url) - 1] == '/' ? "" : "/");
		for (const char *c = b64; *c && ul + 4 < sizeof(full); c++)
			ul += (size_t)(*c == '+' || *c == '/' || *c == '='
					   ? snprintf(full + ul, sizeof(full) - ul, "%%%02X", *c)
					   : snprintf(full + ul, sizeof(full) - ul, "%c", *c));
		r = revo_http_exchange("GET", full, NULL, 0, NULL, &body, &len, &status, &em);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	OPENSSL_free(der);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	probe_perf(&p, "latency_ms", (double)(int)(ms * 100) / 100, "ms");
	char facts[512] = "";
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	if (r) {
		probe_problem(&p, P_CRITICAL, "the responder did not answer: %s", em.msg);
		goto done;
	}
	if (status != 200) {
		probe_problem(&p, P_CRITICAL, "HTTP %d from the responder", status);
		goto done;
	}
	const unsigned char *q = body;
	resp = d2i_OCSP_RESPONSE(NULL, &q, (long)len);
	if (!resp) {
		probe_problem(&p, P_CRITICAL, "the answer is not an OCSP response");
		goto done;
	}
	int rs = OCSP_response_status(resp);
	if (rs != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		probe_problem(&p, P_CRITICAL, "response status %s", OCSP_response_status_str(rs));
		goto done;
	}
	bs = OCSP_response_get1_basic(resp);
	X509_STORE *store = X509_STORE_new();
	STACK_OF(X509) *trusted = sk_X509_new_null();
	X509_STORE_add_cert(store, ca);
	sk_X509_push(trusted, ca);
	/* the CA itself or a delegated responder it issued (id-kp-OCSPSigning) */
	int v = bs ? OCSP_basic_verify(bs, trusted, store, OCSP_TRUSTOTHER | OCSP_NOCHAIN) : -1;
	if (v != 1) {
		ERR_clear_error();
		v = bs ? OCSP_basic_verify(bs, NULL, store, 0) : -1;
	}
	sk_X509_free(trusted);
	X509_STORE_free(store);
	ERR_clear_error();
	if (v != 1)
		probe_problem(&p, P_CRITICAL,
			      "the response signature does not verify (CA or a delegated "
			      "responder of the CA)");
	if (o.nonce && OCSP_check_nonce(req, bs) != 1)
		probe_problem(&p, P_CRITICAL, "the nonce was not echoed");
	int cs = -1, reason = -1;
	ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
	if (!bs || !OCSP_resp_find_status(bs, id_copy, &cs, &reason, &rev, &thisupd, &nextupd)) {
		probe_problem(&p, P_CRITICAL, "the response does not answer for the CertID asked");
		goto done;
	}
	if (!OCSP_check_validity(thisupd, nextupd, 300, -1)) {
		ERR_clear_error();
		probe_problem(&p, P_CRITICAL, "the response is not fresh (thisUpdate/nextUpdate)");
	}
	int64_t now = revo_now(), nu = 0, pa = 0;
	if (nextupd && revo_time_from_asn1(nextupd, &nu) == 0) {
		probe_perf(&p, "next_update_seconds", (double)(nu - now), "s");
		if (nu > now && nu - now < warn_next)
			probe_problem(&p, P_WARNING, "nextUpdate in %llds", (long long)(nu - now));
	}
	if (revo_time_from_asn1(OCSP_resp_get0_produced_at(bs), &pa) == 0 && pa > now + 300)
		probe_problem(&p, P_CRITICAL, "producedAt is in the future");
	const char *names[] = {"good", "revoked", "unknown"};
	if (expect >= 0 && cs != expect)
		probe_problem(&p, P_CRITICAL, "status %s, expected %s", names[cs], names[expect]);
	snprintf(facts, sizeof(facts), "status %s%s%s, %.1f ms", names[cs],
		 cs == V_OCSP_CERTSTATUS_REVOKED && reason >= 0 ? " reason " : "",
		 cs == V_OCSP_CERTSTATUS_REVOKED && reason >= 0 ? OCSP_crl_reason_str(reason) : "",
		 ms);
done:
	free(body);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(id_copy);
	ASN1_INTEGER_free(sn);
	X509_free(ca);
	return probe_finish(&p, facts);
}

/* ---- probe rolesanywhere ---- */

struct ra_opts {
	const char *anchor, *region, *endpoint, *profile, *issuer, *warn, *crit, *prom, *max_lag;
};

static int ra_opt(cli_t *cli, int opt, const char *arg, void *vctx)
{
	struct ra_opts *o = vctx;
	(void)cli;
	switch (opt) {
	case 't': o->anchor = arg; break;
	case 'r': o->region = arg; break;
	case 'E': o->endpoint = arg; break;
	case 'p': o->profile = arg; break;
	case 'i': o->issuer = arg; break;
	case 'w': o->warn = arg; break;
	case 'C': o->crit = arg; break;
	case 'P': o->prom = arg; break;
	case 'L': o->max_lag = arg; break;
	}
	return 0;
}

/* The X509_CRL in a CrlDetail's crlData (base64 of the PEM). */
static X509_CRL *ra_crl(json_t *detail, size_t *der_len)
{
	const char *data = json_string_value(json_object_get(detail, "crlData"));
	if (!data)
		return NULL;
	size_t n = strlen(data);
	unsigned char *pem = malloc(n + 4);
	if (!pem)
		return NULL;
	int pl = EVP_DecodeBlock(pem, (const unsigned char *)data, (int)n);
	while (pl > 0 && n && data[n - 1] == '=') {
		n--;
		pl--;
	}
	X509_CRL *crl = NULL;
	if (pl > 0) {
		BIO *b = BIO_new_mem_buf(pem, pl);
		crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (!crl) {
			const unsigned char *q = pem;
			crl = d2i_X509_CRL(NULL, &q, pl);
		}
	}
	free(pem);
	if (crl) {
		unsigned char *der = NULL;
		int dl = i2d_X509_CRL(crl, &der);
		*der_len = dl > 0 ? (size_t)dl : 0;
		OPENSSL_free(der);
	}
	ERR_clear_error();
	return crl;
}

int cmd_probe_rolesanywhere(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"trust-anchor", required_argument, NULL, 't'},
	    {"region", required_argument, NULL, 'r'},
	    {"endpoint", required_argument, NULL, 'E'},
	    {"profile", required_argument, NULL, 'p'},
	    {"issuer", required_argument, NULL, 'i'},
	    {"warn", required_argument, NULL, 'w'},
	    {"crit", required_argument, NULL, 'C'},
	    {"prometheus", required_argument, NULL, 'P'},
	    {"max-lag", required_argument, NULL, 'L'},
	    {0},
	};
	struct ra_opts o = {0};
	int first;
	int r = probe_args(cli, argc, argv, opts, ra_opt, &o, &first, 0);
	if (r >= 0)
		return r;
	if (!o.anchor || !strstr(o.anchor, ":trust-anchor/"))
		return probe_misuse(cli, "--trust-anchor ARN (arn:aws:rolesanywhere:REGION:ACCOUNT:"
					 "trust-anchor/ID) is required");
	int64_t warn = 48 * 3600, crit = 12 * 3600, max_lag = 15 * 60;
	revo_errmsg_t em = {{0}};
	if ((o.warn && revo_duration_parse(o.warn, &warn, &em)) ||
	    (o.crit && revo_duration_parse(o.crit, &crit, &em)) ||
	    (o.max_lag && revo_duration_parse(o.max_lag, &max_lag, &em)))
		return probe_misuse(cli, "%s", em.msg);
	/* the region is the ARN's fourth field unless given */
	char region[64] = "";
	if (o.region) {
		snprintf(region, sizeof(region), "%s", o.region);
	} else {
		const char *p = o.anchor;
		for (int k = 0; k < 3 && p; k++) {
			p = strchr(p, ':');
			if (p)
				p++;
		}
		const char *e = p ? strchr(p, ':') : NULL;
		if (p && e && (size_t)(e - p) < sizeof(region)) {
			memcpy(region, p, (size_t)(e - p));
			region[e - p] = 0;
		}
	}
	const char *anchor_id = strstr(o.anchor, ":trust-anchor/") + 14;
	probe_t p = {.cli = cli,
		     .checks = json_array(),
		     .perfj = json_object(),
		     .prom_path = o.prom,
		     .prom_name = "rolesanywhere",
		     .target = o.anchor};
	char path[512], facts[512] = "", behind[128] = "";
	json_t *ans = NULL;
	int status = 0;
	X509_CRL *crl = NULL;
	X509 *ca = NULL;

	/* the trust anchor */
	snprintf(path, sizeof(path), "/trustanchor/%s", anchor_id);
	r = revo_ra_get(region, o.endpoint, o.profile, path, &ans, &status, &em);
	if (r || status != 200) {
		probe_problem(&p, status == 404 ? P_CRITICAL : P_UNKNOWN, "GetTrustAnchor: %s",
			      r               ? (em.msg[0] ? em.msg : revo_strerror(r))
			      : status == 404 ? "no such trust anchor"
					      : "HTTP error");
		json_decref(ans);
		return probe_finish(&p, "");
	}
	json_t *ta = json_object_get(ans, "trustAnchor");
	if (!json_is_true(json_object_get(ta, "enabled")))
		probe_problem(&p, P_CRITICAL, "the trust anchor is disabled");
	json_decref(ans);
	ans = NULL;

	/* its CRLs (ListCrls, all pages) */
	json_t *mine = json_array();
	char token[2048] = "";
	for (int page = 0; page < 100; page++) {
		if (token[0]) {
			char *enc = curl_easy_escape(NULL, token, 0);
			snprintf(path, sizeof(path), "/crls?nextToken=%s", enc ? enc : "");
			curl_free(enc);
		} else {
			snprintf(path, sizeof(path), "/crls");
		}
		r = revo_ra_get(region, o.endpoint, o.profile, path, &ans, &status, &em);
		if (r || status != 200) {
			probe_problem(&p, P_UNKNOWN, "ListCrls: %s", r ? em.msg : "HTTP error");
			json_decref(ans);
			json_decref(mine);
			return probe_finish(&p, "");
		}
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(ans, "crls"), i, c)
		{
			const char *ta_arn =
			    json_string_value(json_object_get(c, "trustAnchorArn"));
			if (ta_arn && strcmp(ta_arn, o.anchor) == 0)
				json_array_append(mine, c);
		}
		const char *next = json_string_value(json_object_get(ans, "nextToken"));
		snprintf(token, sizeof(token), "%s", next ? next : "");
		json_decref(ans);
		ans = NULL;
		if (!token[0])
			break;
	}
	probe_perf(&p, "crls", (double)json_array_size(mine), "");
	json_t *use = NULL;
	size_t i;
	json_t *c;
	json_array_foreach(mine, i, c)
	{
		if (json_is_true(json_object_get(c, "enabled")))
			use = c;
	}
	if (json_array_size(mine) == 0) {
		probe_problem(
		    &p, P_CRITICAL,
		    "no CRL is imported for this trust anchor: revocation is not enforced");
		json_decref(mine);
		return probe_finish(&p, "");
	}
	if (!use) {
		probe_problem(
		    &p, P_CRITICAL,
		    "the CRL imported for this trust anchor is disabled: revocation is not "
		    "enforced");
		json_decref(mine);
		return probe_finish(&p, "");
	}
	size_t der_len = 0;
	crl = ra_crl(use, &der_len);
	if (!crl) {
		probe_problem(&p, P_CRITICAL, "the imported crlData is not a CRL");
		json_decref(mine);
		return probe_finish(&p, "");
	}
	/* against the store: the issuer whose CA signed it, and its newest CRL */
	revo_errmsg_t sem = {{0}};
	if (revo_store_open(cli->store_dir, REVO_STORE_READONLY, &cli->store, &sem) == 0 &&
	    revo_store_issuers(cli->store, &cli->issuers, &cli->n_issuers, &sem) == 0) {
		const revo_issuer_t *is = NULL;
		for (size_t k = 0; k < cli->n_issuers && !is; k++) {
			const revo_issuer_t *cand = &cli->issuers[k];
			if (o.issuer && strcmp(cand->name, o.issuer) != 0)
				continue;
			const unsigned char *q = cand->cert_der;
			X509 *x = d2i_X509(NULL, &q, (long)cand->cert_len);
			if (x && X509_NAME_cmp(X509_get_subject_name(x),
					       X509_CRL_get_issuer(crl)) == 0) {
				is = cand;
				ca = x;
			} else {
				X509_free(x);
			}
		}
		if (!is) {
			probe_problem(&p, P_CRITICAL,
				      "the imported CRL's issuer is not an issuer of this store");
		} else {
			if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1)
				probe_problem(
				    &p, P_CRITICAL,
				    "the imported CRL's signature does not verify with issuer '%s'",
				    is->name);
			ERR_clear_error();
			uint64_t number = 0;
			ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
			if (num) {
				ASN1_INTEGER_get_uint64(&number, num);
				ASN1_INTEGER_free(num);
			}
			revo_crl_state_t cs;
			if (revo_store_crl_state(cli->store, is->id, &cs, NULL) == 0) {
				probe_perf(&p, "crl_number", (double)number, "");
				probe_perf(&p, "store_crl_number", (double)cs.base_number, "");
				int64_t lag =
				    number < cs.base_number ? revo_now() - cs.base_this_update : 0;
				char age[32];
				probe_fmt_dur(lag, age, sizeof(age));
				probe_perf(&p, "publish_lag_seconds", (double)lag, "s");
				if (number + 1 < cs.base_number)
					probe_problem(
					    &p, P_WARNING,
					    "the imported CRL is number %llu, the store's "
					    "newest is %llu (built %s ago)",
					    (unsigned long long)number,
					    (unsigned long long)cs.base_number, age);
				else if (number + 1 == cs.base_number && lag > max_lag)
					probe_problem(&p, P_WARNING,
						      "one publish behind for %s: the store's CRL "
						      "%llu has not reached Roles Anywhere (see "
						      "'revo target list')",
						      age, (unsigned long long)cs.base_number);
				else if (number > cs.base_number)
					probe_problem(
					    &p, P_WARNING,
					    "Roles Anywhere holds CRL %llu, newer than the store's "
					    "newest %llu: is this store restored from an old "
					    "backup?",
					    (unsigned long long)number,
					    (unsigned long long)cs.base_number);
				else if (number + 1 == cs.base_number)
					snprintf(behind, sizeof(behind),
						 "one publish behind (CRL %llu built %s ago), ",
						 (unsigned long long)cs.base_number, age);
				snprintf(facts, sizeof(facts),
					 "issuer '%s', CRL %llu (store %llu), %s", is->name,
					 (unsigned long long)number,
					 (unsigned long long)cs.base_number, behind);
			}
		}
	} else {
		/* no store here: what Roles Anywhere holds is still checked, without the number */
		snprintf(facts, sizeof(facts), "no store to compare the CRL number with, ");
	}
	int64_t now = revo_now(), nu = 0;
	if (X509_CRL_get0_nextUpdate(crl) &&
	    revo_time_from_asn1(X509_CRL_get0_nextUpdate(crl), &nu) == 0) {
		char d[32];
		probe_fmt_dur(nu - now, d, sizeof(d));
		if (nu <= now)
			probe_problem(
			    &p, P_CRITICAL,
			    "the imported CRL expired %s ago (Roles Anywhere sends no notice)",
			    d + 1);
		else if (nu - now < crit)
			probe_problem(&p, P_CRITICAL, "the imported CRL's nextUpdate is in %s", d);
		else if (nu - now < warn)
			probe_problem(&p, P_WARNING, "the imported CRL's nextUpdate is in %s", d);
		probe_perf(&p, "next_update_seconds", (double)(nu - now), "s");
		snprintf(facts + strlen(facts), sizeof(facts) - strlen(facts), "next update in %s",
			 d);
	}
	size_t crldata = revo_crl_crldata_len(der_len);
	double pct = 100.0 * (double)crldata / REVO_CRLDATA_LIMIT;
	probe_perf(&p, "crldata_percent", (double)(int)(pct * 10) / 10, "%");
	if (pct > 80)
		probe_problem(&p, P_WARNING, "crlData at %.0f%% of the 300000-character limit",
			      pct);
	X509_CRL_free(crl);
	X509_free(ca);
	json_decref(mine);
	return probe_finish(&p, facts);
}
