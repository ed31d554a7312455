/*
 * revo probe sessions: did a revoked certificate get AWS credentials after all?
 *
 * Reads CloudTrail (LookupEvents, EventName CreateSession, AWS JSON 1.1, SigV4 service
 * "cloudtrail"), keeps the records of IAM Roles Anywhere (eventSource
 * rolesanywhere.amazonaws.com: S3 Express has a CreateSession too) and matches each
 * session's certificate serial with the store. The serial comes from the certificate
 * recorded in the event when there is one, else from the role session name, which Roles
 * Anywhere sets to the certificate's serial in hex unless the client chose another.
 *
 *   a session by a revoked certificate at or after its revocation  CRITICAL
 *   a serial the store has never seen (foreign or compromised CA)    WARNING
 *   a session whose serial cannot be told (custom session name)      WARNING
 *   a failed attempt (errorCode in the record)                       counted as refused
 */
#include "cli/cli.h"
#include "cli/probe.h"

#include "pki/cert.h"
#include "pki/timefmt.h"
#include "uploader/uploader.h"

#include <ctype.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CT_TARGET   "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"
#define RA_SOURCE   "rolesanywhere.amazonaws.com"
#define PAGE_GAP_MS 500 /* LookupEvents: 2 requests per second per account and region */
#define TRIES       5

struct sess_opts {
	const char *since, *region, *endpoint, *profile, *anchor, *issuer, *max_events, *prom;
};

static int sess_opt(cli_t *cli, int opt, const char *arg, void *vctx)
{
	struct sess_opts *o = vctx;
	(void)cli;
	switch (opt) {
	case 's': o->since = arg; break;
	case 'r': o->region = arg; break;
	case 'E': o->endpoint = arg; break;
	case 'p': o->profile = arg; break;
	case 't': o->anchor = arg; break;
	case 'i': o->issuer = arg; break;
	case 'm': o->max_events = arg; break;
	case 'P': o->prom = arg; break;
	}
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* A certificate as CloudTrail may record it: base64 of DER, PEM, or base64 of PEM. */
static X509 *cert_from_text(const char *text)
{
	if (!text || !*text)
		return NULL;
	X509 *x = NULL;
	if (strstr(text, "-----BEGIN")) {
		BIO *b = BIO_new_mem_buf(text, -1);
		x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		ERR_clear_error();
		return x;
	}
	size_t n = strlen(text);
	if (n > 64 * 1024)
		return NULL;
	unsigned char *raw = malloc(n + 4);
	if (!raw)
		return NULL;
	int len = EVP_DecodeBlock(raw, (const unsigned char *)text, (int)n);
	for (size_t k = n; len > 0 && k && text[k - 1] == '='; k--)
		len--;
	if (len > 0) {
		const unsigned char *q = raw;
		x = d2i_X509(NULL, &q, len);
		if (!x) {
			BIO *b = BIO_new_mem_buf(raw, len);
			x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
			BIO_free(b);
		}
	}
	free(raw);
	ERR_clear_error();
	return x;
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The certificate recorded in a CreateSession record, if any. */
static X509 *event_cert(json_t *ev)
{
	static const char *const keys[] = {"x509Certificate", "certificate", "cert"};
	json_t *places[] = {json_object_get(ev, "additionalEventData"),
			    json_object_get(ev, "requestParameters")};
	for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++)
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			X509 *x = cert_from_text(jstr(places[i], keys[k]));
			if (x)
				return x;
		}
	return NULL;
}

/* The role session name: asked for, or the last element of the assumed-role ARN. */
static const char *session_name(json_t *ev)
{
	const char *n = jstr(json_object_get(ev, "requestParameters"), "roleSessionName");
	if (n && *n)
		return n;
	json_t *cs = json_array_get(
	    json_object_get(json_object_get(ev, "responseElements"), "credentialSet"), 0);
	json_t *aru = json_object_get(cs, "assumedRoleUser");
	const char *arn = jstr(aru, "arn");
	if (arn && strrchr(arn, '/'))
		return strrchr(arn, '/') + 1;
	const char *id = jstr(aru, "assumedRoleId");
	if (id && strchr(id, ':'))
		return strchr(id, ':') + 1;
	return NULL;
}

/* A serial from a session name: 1-42 hex digits (colons allowed between octets). */
static bool serial_from_name(const char *name, revo_serial_t *out)
{
	if (!name)
		return false;
	char hex[64];
	size_t n = 0;
	for (const char *p = name; *p; p++) {
		if (*p == ':')
			continue;
		if (!isxdigit((unsigned char)*p) || n + 1 >= sizeof(hex))
			return false;
		hex[n++] = *p;
	}
	hex[n] = 0;
	return n >= 1 && n <= 42 && revo_serial_parse(hex, out, NULL) == 0;
}

/* "CN=build-07,O=Corp" -> "build-07" */
static void cn_from_identity(const char *id, char *out, size_t cap)
{
	out[0] = 0;
	if (!id)
		return;
	const char *p = strstr(id, "CN=");
	if (!p)
		return;
	p += 3;
	size_t n = strcspn(p, ",/+");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = 0;
}

static bool same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

typedef struct tally {
	size_t sessions, after, unknown, unidentified, refused, before, ignored, scanned;
} tally_t;

typedef struct sess_ctx {
	cli_t *cli;
	probe_t *p;
	const struct sess_opts *o;
	const revo_issuer_t *only; /* --issuer */
	X509 **issuer_certs;       /* parallel to cli->issuers */
	json_t *list;
	tally_t t;
	int64_t now;
} sess_ctx_t;

/* Match one Roles Anywhere record with the store; adds to the list and the problems. */
static void judge(sess_ctx_t *c, json_t *ev, const char *event_id, int64_t fallback_time)
{
	cli_t *cli = c->cli;
	int64_t when = fallback_time;
	const char *ts = jstr(ev, "eventTime");
	if (ts)
		revo_time_parse(ts, &when, NULL);
	const char *ip = jstr(ev, "sourceIPAddress");
	const char *error = jstr(ev, "errorCode");
	const char *anchor = jstr(json_object_get(ev, "requestParameters"), "trustAnchorArn");
	json_t *cs = json_array_get(
	    json_object_get(json_object_get(ev, "responseElements"), "credentialSet"), 0);
	char cn[REVO_CN_MAX + 1];
	cn_from_identity(jstr(cs, "sourceIdentity"), cn, sizeof(cn));

	revo_serial_t serial;
	bool have_serial = false;
	const revo_issuer_t *cert_issuer = NULL; /* from the recorded certificate */
	X509 *x = event_cert(ev);
	if (x) {
		have_serial = revo_serial_from_asn1(X509_get0_serialNumber(x), &serial, NULL) == 0;
		for (size_t k = 0; k < cli->n_issuers; k++)
			if (c->issuer_certs[k] &&
			    X509_NAME_cmp(X509_get_subject_name(c->issuer_certs[k]),
					  X509_get_issuer_name(x)) == 0)
				cert_issuer = &cli->issuers[k];
		if (!cn[0]) {
			int i = X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_commonName,
							   -1);
			ASN1_STRING *d = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(
						      X509_get_subject_name(x), i))
						: NULL;
			if (d && (size_t)ASN1_STRING_length(d) < sizeof(cn)) {
				memcpy(cn, ASN1_STRING_get0_data(d), (size_t)ASN1_STRING_length(d));
				cn[ASN1_STRING_length(d)] = 0;
			}
		}
		X509_free(x);
	}
	if (!have_serial)
		have_serial = serial_from_name(session_name(ev), &serial);

	/* the store's view: every issuer (or the one named), revocations first */
	const revo_issuer_t *found = NULL;
	bool has_rev = false;
	revo_revocation_t rev = {0};
	if (have_serial) {
		for (size_t k = 0; k < cli->n_issuers; k++) {
			const revo_issuer_t *is = &cli->issuers[k];
			if ((c->only && is != c->only) || (cert_issuer && is != cert_issuer))
				continue;
			revo_cert_rec_t rec;
			revo_revocation_t r;
			bool hc = false, hr = false;
			if (revo_store_lookup(cli->store, is->id, &serial, &rec, &hc, &r, &hr,
					      NULL) != 0)
				continue;
			if (hc && rec.cn[0])
				snprintf(cn, sizeof(cn), "%s", rec.cn);
			if ((hc || hr) && (!found || (hr && !has_rev))) {
				found = is;
				if (hr) {
					has_rev = true;
					rev = r;
				}
			}
		}
	}
	char sx[REVO_SERIAL_HEX_MAX], tw[REVO_TIME_STR_MAX], tr[REVO_TIME_STR_MAX];
	if (have_serial)
		revo_serial_format(&serial, sx);
	revo_time_format(when, tw);
	if (has_rev)
		revo_time_format(rev.revoked_at, tr);
	const char *verdict;
	c->t.sessions++;
	if (error) {
		verdict = "refused";
		c->t.refused++;
	} else if (!have_serial) {
		verdict = "unidentified";
		c->t.unidentified++;
	} else if (!found) {
		verdict = "unknown";
		c->t.unknown++;
		probe_problem(c->p, P_WARNING,
			      "session by unknown serial %s (CN=%s) at %s from %s: not a "
			      "certificate of this store",
			      sx, cn[0] ? cn : "?", tw, ip ? ip : "?");
	} else if (has_rev && when >= rev.revoked_at) {
		verdict = "after-revocation";
		c->t.after++;
		probe_problem(c->p, P_CRITICAL,
			      "session by revoked certificate %s (CN=%s) at %s from %s, revoked %s",
			      sx, cn[0] ? cn : "?", tw, ip ? ip : "?", tr);
	} else if (has_rev) {
		verdict = "before-revocation";
		c->t.before++;
	} else {
		verdict = "ok";
	}
	json_t *j = json_object();
	json_object_set_new(j, "event_id", event_id ? json_string(event_id) : json_null());
	json_object_set_new(j, "time", json_string(tw));
	json_object_set_new(j, "source_ip", ip ? json_string(ip) : json_null());
	json_object_set_new(j, "serial", have_serial ? json_string(sx) : json_null());
	json_object_set_new(j, "cn", cn[0] ? json_string(cn) : json_null());
	json_object_set_new(j, "issuer", found ? json_string(found->name) : json_null());
	json_object_set_new(j, "trust_anchor", anchor ? json_string(anchor) : json_null());
	json_object_set_new(j, "verdict", json_string(verdict));
	json_object_set_new(j, "revoked_at", has_rev ? json_string(tr) : json_null());
	if (error)
		json_object_set_new(j, "error", json_string(error));
	json_array_append_new(c->list, j);
}

/* One page of LookupEvents, retried on throttling. *@ans gets the answer. */
static int lookup_page(sess_ctx_t *c, int64_t start, const char *token, json_t **ans, char *err,
		       size_t errlen)
{
	static int64_t last_ms;
	const struct sess_opts *o = c->o;
	json_t *body =
	    json_pack("{s:[{s:s, s:s}], s:I, s:I, s:i}", "LookupAttributes", "AttributeKey",
		      "EventName", "AttributeValue", "CreateSession", "StartTime",
		      (json_int_t)start, "EndTime", (json_int_t)c->now, "MaxResults", 50);
	if (token)
		json_object_set_new(body, "NextToken", json_string(token));
	long backoff = 500;
	int rc = 0;
	for (int attempt = 1; attempt <= TRIES; attempt++) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		if (last_ms && now_ms - last_ms < PAGE_GAP_MS)
			sleep_ms((long)(PAGE_GAP_MS - (now_ms - last_ms)));
		clock_gettime(CLOCK_MONOTONIC, &ts);
		last_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

		revo_errmsg_t em = {{0}};
		int status = 0;
		char etype[128];
		*ans = NULL;
		rc = revo_aws_json("cloudtrail", CT_TARGET, o->region, o->endpoint, o->profile,
				   body, ans, &status, etype, sizeof(etype), &em);
		if (rc) {
			snprintf(err, errlen, "LookupEvents: %s",
				 em.msg[0] ? em.msg : revo_strerror(rc));
			break;
		}
		if (status == 200 && json_is_object(*ans))
			break;
		bool throttled = status == 429 || status == 503 ||
				 strcmp(etype, "ThrottlingException") == 0 ||
				 strcmp(etype, "ThrottledException") == 0;
		const char *msg = jstr(*ans, "message");
		if (!msg)
			msg = jstr(*ans, "Message");
		snprintf(err, errlen, "LookupEvents: HTTP %d%s%s%s%s", status, etype[0] ? " " : "",
			 etype, msg ? ": " : "", msg ? msg : "");
		json_decref(*ans);
		*ans = NULL;
		rc = REVO_EIO;
		if (!throttled || attempt == TRIES)
			break;
		sleep_ms(backoff);
		backoff *= 2;
	}
	json_decref(body);
	return rc;
}

int cmd_probe_sessions(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"since", required_argument, NULL, 's'},
	    {"region", required_argument, NULL, 'r'},
	    {"endpoint", required_argument, NULL, 'E'},
	    {"profile", required_argument, NULL, 'p'},
	    {"trust-anchor", required_argument, NULL, 't'},
	    {"issuer", required_argument, NULL, 'i'},
	    {"max-events", required_argument, NULL, 'm'},
	    {"prometheus", required_argument, NULL, 'P'},
	    {0},
	};
	struct sess_opts o = {0};
	int first;
	int r = probe_args(cli, argc, argv, opts, sess_opt, &o, &first, 0);
	if (r >= 0)
		return r;
	int64_t since = 24 * 3600;
	revo_errmsg_t em = {{0}};
	if (o.since && revo_duration_parse(o.since, &since, &em))
		return probe_misuse(cli, "--since: %s", em.msg);
	long max_events = 10000;
	if (o.max_events) {
		char *end;
		max_events = strtol(o.max_events, &end, 10);
		if (*end || max_events < 1 || max_events > 1000000)
			return probe_misuse(cli, "--max-events must be 1 to 1000000, not '%s'",
					    o.max_events);
	}
	if (o.anchor && !strstr(o.anchor, ":trust-anchor/"))
		return probe_misuse(cli,
				    "--trust-anchor ARN (arn:aws:rolesanywhere:REGION:ACCOUNT:"
				    "trust-anchor/ID) expected, not '%s'",
				    o.anchor);
	probe_t p = {.cli = cli,
		     .checks = json_array(),
		     .perfj = json_object(),
		     .prom_path = o.prom,
		     .prom_name = "sessions",
		     .target = o.anchor ? o.anchor : (o.region ? o.region : "cloudtrail")};
	sess_ctx_t c = {.cli = cli, .p = &p, .o = &o, .list = json_array(), .now = revo_now()};
	char facts[512] = "", err[700] = "";

	/* the store first: without it nothing can be matched */
	if (revo_store_open(cli->store_dir, REVO_STORE_READONLY, &cli->store, &em) != 0 ||
	    revo_store_issuers(cli->store, &cli->issuers, &cli->n_issuers, &em) != 0) {
		probe_problem(&p, P_UNKNOWN, "cannot read the store: %s",
			      em.msg[0] ? em.msg : "unknown error");
		json_decref(c.list);
		return probe_finish(&p, "");
	}
	if (o.issuer && !(c.only = cli_issuer_by_name(cli, o.issuer))) {
		json_decref(c.list);
		json_decref(p.checks);
		json_decref(p.perfj);
		return probe_misuse(cli, "no issuer '%s' in the store", o.issuer);
	}
	c.issuer_certs = calloc(cli->n_issuers ? cli->n_issuers : 1, sizeof(X509 *));
	for (size_t k = 0; c.issuer_certs && k < cli->n_issuers; k++) {
		const unsigned char *q = cli->issuers[k].cert_der;
		c.issuer_certs[k] = d2i_X509(NULL, &q, (long)cli->issuers[k].cert_len);
	}

	/* every page of CreateSession events in the window, newest first */
	int64_t start = c.now - since;
	char token[4096] = "";
	bool truncated = false, failed = false;
	for (;;) {
		json_t *ans = NULL;
		if (lookup_page(&c, start, token[0] ? token : NULL, &ans, err, sizeof(err))) {
			failed = true;
			break;
		}
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(ans, "Events"), i, e)
		{
			if (c.t.scanned >= (size_t)max_events) {
				truncated = true;
				break;
			}
			c.t.scanned++;
			const char *src = jstr(e, "EventSource");
			json_t *ev = NULL;
			const char *text = jstr(e, "CloudTrailEvent");
			if (text)
				ev = json_loads(text, 0, NULL);
			const char *isrc = jstr(ev, "eventSource");
			if (!(isrc ? strcmp(isrc, RA_SOURCE) == 0
				   : src && strcmp(src, RA_SOURCE) == 0) ||
			    !ev ||
			    (o.anchor &&
			     !same(jstr(json_object_get(ev, "requestParameters"), "trustAnchorArn"),
				   o.anchor))) {
				c.t.ignored++;
				json_decref(ev);
				continue;
			}
			json_t *et = json_object_get(e, "EventTime");
			judge(&c, ev, jstr(e, "EventId"),
			      json_is_number(et) ? (int64_t)json_number_value(et) : 0);
			json_decref(ev);
		}
		const char *next = jstr(ans, "NextToken");
		snprintf(token, sizeof(token), "%s", next ? next : "");
		json_decref(ans);
		if (truncated || !token[0])
			break;
	}
	char t0[REVO_TIME_STR_MAX];
	revo_time_format(start, t0);
	if (failed) {
		probe_problem(&p, P_UNKNOWN, "%s", err);
	} else {
		if (truncated)
			probe_problem(
			    &p, P_WARNING,
			    "more than %ld events, only the newest %ld checked (since %s; "
			    "narrow --since or raise --max-events)",
			    max_events, max_events, t0);
		if (c.t.unidentified)
			probe_problem(
			    &p, P_WARNING,
			    "%zu session(s) could not be matched to a certificate serial "
			    "(a custom role session name and no certificate in the record)",
			    c.t.unidentified);
		snprintf(facts, sizeof(facts), "%zu session%s since %s%s", c.t.sessions,
			 c.t.sessions == 1 ? "" : "s", t0,
			 p.status == P_OK ? ", none by a revoked or unknown certificate" : "");
		if (c.t.refused)
			snprintf(facts + strlen(facts), sizeof(facts) - strlen(facts),
				 "; %zu refused", c.t.refused);
	}
	probe_perf(&p, "sessions", (double)c.t.sessions, "");
	probe_perf(&p, "after_revocation", (double)c.t.after, "");
	probe_perf(&p, "unknown", (double)c.t.unknown, "");
	probe_perf(&p, "unidentified", (double)c.t.unidentified, "");
	probe_perf(&p, "refused", (double)c.t.refused, "");
	probe_perf(&p, "before_revocation", (double)c.t.before, "");
	p.extra = json_pack("{s:s, s:o}", "since", t0, "sessions", c.list);
	for (size_t k = 0; c.issuer_certs && k < cli->n_issuers; k++)
		X509_free(c.issuer_certs[k]);
	free(c.issuer_certs);
	return probe_finish(&p, facts);
}
