/*
 * Import formats: OpenSSL's `ca` database (index.txt). One line is
 *   status \t expiry \t revocation \t serial \t file \t subject
 * with status V, R or E, times as YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ, and for R lines a
 * revocation field "time[,reason[,extra]]". This parser reads untrusted files: it
 * never reads past @len and is fuzzed (tests/fuzz/fuzz_index_line.c).
 */
#include "store/store.h"

#include "pki/reason.h"
#include "pki/timefmt.h"

#include <string.h>
#include <strings.h>

/* Split the next tab-separated field of [*p, end) into (f, fl). */
static void next_field(const char **p, const char *end, const char **f, size_t *fl)
{
	const char *s = *p, *t = s;
	while (t < end && *t != '\t')
		t++;
	*f = s;
	*fl = (size_t)(t - s);
	*p = t < end ? t + 1 : end;
}

int revo_index_parse_line(const char *line, size_t len, uint32_t issuer_id, int64_t now,
			  revo_index_line_t *out, revo_errmsg_t *em)
{
	const char *p = line, *end = line + len, *f[6];
	size_t fl[6];
	int nf = 0;
	while (p < end && nf < 6) {
		next_field(&p, end, &f[nf], &fl[nf]);
		nf++;
	}
	if (nf < 6 || p < end)
		return revo_err_set(em, REVO_EINVAL, "expected 6 tab-separated fields");
	memset(out, 0, sizeof(*out));
	if (fl[0] != 1 || (f[0][0] != 'V' && f[0][0] != 'R' && f[0][0] != 'E'))
		return revo_err_set(em, REVO_EINVAL, "status '%.*s' is not V, R or E", (int)fl[0],
				    f[0]);
	if (revo_time_parse_asn1_text(f[1], fl[1], &out->cert.not_after))
		return revo_err_set(em, REVO_EINVAL, "bad expiry time '%.*s'", (int)fl[1], f[1]);
	char sbuf[128];
	if (fl[3] == 0 || fl[3] >= sizeof(sbuf))
		return revo_err_set(em, REVO_EINVAL, "bad serial '%.*s'", (int)fl[3], f[3]);
	memcpy(sbuf, f[3], fl[3]);
	sbuf[fl[3]] = '\0';
	int rc = revo_serial_parse(sbuf, &out->cert.serial, em);
	if (rc)
		return rc;
	out->cert.issuer_id = issuer_id;
	revo_oneline_cn(f[5], fl[5], out->cert.cn, sizeof(out->cert.cn));

	if (f[0][0] != 'R') {
		if (fl[2] != 0)
			return revo_err_set(em, REVO_EINVAL, "revocation field on a %c line",
					    f[0][0]);
		return REVO_OK;
	}
	/* time[,reason[,extra]] */
	const char *r = f[2], *rend = f[2] + fl[2];
	const char *c1 = memchr(r, ',', fl[2]);
	size_t tl = c1 ? (size_t)(c1 - r) : fl[2];
	if (revo_time_parse_asn1_text(r, tl, &out->rev.revoked_at))
		return revo_err_set(em, REVO_EINVAL, "bad revocation time '%.*s'", (int)tl, r);
	if (out->rev.revoked_at > now)
		return revo_err_set(em, REVO_EINVAL, "revocation time '%.*s' is in the future",
				    (int)tl, r);
	out->rev.reason = REVO_REASON_UNSPECIFIED;
	if (c1) {
		const char *rs = c1 + 1;
		const char *c2 = memchr(rs, ',', (size_t)(rend - rs));
		size_t rl = (size_t)((c2 ? c2 : rend) - rs);
		char name[64];
		if (rl == 0 || rl >= sizeof(name))
			return revo_err_set(em, REVO_EINVAL, "bad revocation reason '%.*s'",
					    (int)rl, rs);
		memcpy(name, rs, rl);
		name[rl] = '\0';
		bool has_time = false;
		if (strcasecmp(name, "holdInstruction") == 0) {
			out->rev.reason = REVO_REASON_CERTIFICATE_HOLD;
		} else if (strcasecmp(name, "keyTime") == 0) {
			out->rev.reason = REVO_REASON_KEY_COMPROMISE;
			has_time = true;
		} else if (strcasecmp(name, "CAkeyTime") == 0) {
			out->rev.reason = REVO_REASON_CA_COMPROMISE;
			has_time = true;
		} else if (revo_reason_parse(name, &out->rev.reason, NULL) != 0) {
			return revo_err_set(em, REVO_EINVAL, "unknown revocation reason '%s'",
					    name);
		} else {
			has_time = out->rev.reason == REVO_REASON_KEY_COMPROMISE ||
				   out->rev.reason == REVO_REASON_CA_COMPROMISE;
		}
		if (c2 && has_time) {
			const char *ts = c2 + 1;
			if (revo_time_parse_asn1_text(ts, (size_t)(rend - ts),
						      &out->rev.invalidity))
				return revo_err_set(em, REVO_EINVAL, "bad compromise time '%.*s'",
						    (int)(rend - ts), ts);
			if (out->rev.invalidity > now)
				return revo_err_set(em, REVO_EINVAL,
						    "compromise time is in the future");
		} else if (c2 && out->rev.reason != REVO_REASON_CERTIFICATE_HOLD) {
			return revo_err_set(em, REVO_EINVAL, "unexpected field after reason '%s'",
					    name);
		}
	}
	if (out->rev.reason == REVO_REASON_REMOVE_FROM_CRL)
		return REVO_OK; /* taken off hold: issued and not revoked */
	out->revoked = true;
	out->rev.issuer_id = issuer_id;
	out->rev.serial = out->cert.serial;
	out->rev.at_explicit = true;
	return REVO_OK;
}
