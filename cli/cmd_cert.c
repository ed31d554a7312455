/*
 * revo cert add, revo import openssl-index, revo import crl.
 *
 * All three check their whole input before writing anything, so bad input leaves the
 * store unchanged. Imports then write in batches of BATCH changes per transaction
 * (committed without fsync, one sync at the end): a revocation from another process
 * never waits long for the write lock, and an interrupted import leaves a consistent
 * prefix that a second run completes (registered certificates are skipped).
 */
#include "cli/cli.h"

#include "pki/cert.h"
#include "pki/reason.h"
#include "pki/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH 1000

static int opt_issuer(cli_t *cli, int opt, const char *arg, void *ctx)
{
	(void)cli;
	if (opt == 'i')
		*(const char **)ctx = arg;
	return 0;
}

static const struct option ISSUER_OPT[] = {
    {"issuer", required_argument, NULL, 'i'},
    {0},
};

/* ---- cert add ---- */

int cmd_cert_add(cli_t *cli, int argc, char **argv)
{
	const char *issuer_name = NULL;
	int first;
	int r = cli_parse(cli, argc, argv, ISSUER_OPT, opt_issuer, &issuer_name, &first);
	if (r >= 0)
		return r;
	if (first >= argc)
		return cli_misuse(cli, "missing certificate files");
	if ((r = cli_open_store(cli, false)) || (r = cli_load_issuers(cli)))
		return r;
	const revo_issuer_t *only = NULL;
	if (issuer_name && !(only = cli_issuer_pick(cli, issuer_name, &r)))
		return r;

	revo_cert_rec_t *recs = NULL;
	size_t n = 0, cap = 0;
	int ret = EXIT_FAIL;
	revo_errmsg_t em = {{0}};
	for (int i = first; i < argc; i++) {
		STACK_OF(X509) * sk;
		if ((r = revo_cert_load(argv[i], &sk, &em)) != 0) {
			cli_fail(cli, r, &em);
			goto out;
		}
		for (int j = 0; j < sk_X509_num(sk); j++) {
			X509 *x = sk_X509_value(sk, j);
			const revo_issuer_t *is;
			revo_cert_info_t info;
			r = cli_issuer_of(cli, x, only, &is, &em);
			if (!r)
				r = revo_cert_info(x, &info, &em);
			if (r) {
				sk_X509_pop_free(sk, X509_free);
				cli_failf(cli, "%s: %s", argv[i],
					  em.msg[0] ? em.msg : revo_strerror(r));
				goto out;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				revo_cert_rec_t *nr = realloc(recs, cap * sizeof(*recs));
				if (!nr) {
					sk_X509_pop_free(sk, X509_free);
					cli_failf(cli, "out of memory");
					goto out;
				}
				recs = nr;
			}
			revo_cert_rec_t *c = &recs[n++];
			memset(c, 0, sizeof(*c));
			c->issuer_id = is->id;
			c->serial = info.serial;
			c->not_before = info.not_before;
			c->not_after = info.not_after;
			memcpy(c->cn, info.cn, sizeof(c->cn));
			c->has_sha256 = true;
			memcpy(c->sha256, info.sha256, 32);
		}
		sk_X509_pop_free(sk, X509_free);
	}
	revo_change_t *ch = calloc(n, sizeof(*ch));
	revo_change_result_t *res = calloc(n, sizeof(*res));
	if (!ch || !res) {
		free(ch);
		free(res);
		cli_failf(cli, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		ch[i].cert = &recs[i];
	r = revo_store_apply(cli->store, ch, n, 0, "cert add", res, &em);
	if (r) {
		free(ch);
		free(res);
		cli_fail(cli, r, &em);
		goto out;
	}
	size_t added = 0;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const revo_cert_rec_t *c = &recs[i];
		const char *result = res[i].cert == REVO_CERT_ADDED ? "added" : "present";
		added += res[i].cert == REVO_CERT_ADDED;
		const revo_issuer_t *is = cli_issuer_by_id(cli, c->issuer_id);
		if (cli->json) {
			json_array_append_new(
			    arr, json_pack("{s:o, s:s, s:o, s:o, s:s}", "serial",
					   cli_json_serial(&c->serial), "issuer", is->name, "cn",
					   cli_json_str(c->cn), "not_after",
					   cli_json_time(c->not_after), "result", result));
		} else {
			char sx[REVO_SERIAL_HEX_MAX], t[REVO_TIME_STR_MAX];
			printf("%-7s %s %s cn=%s not_after=%s\n", result, is->name,
			       revo_serial_format(&c->serial, sx), c->cn[0] ? c->cn : "-",
			       revo_time_format(c->not_after, t));
		}
	}
	free(ch);
	free(res);
	if (cli->json) {
		ret = cli_json_print(cli,
				     json_pack("{s:I, s:I, s:o}", "added", (json_int_t)added,
					       "present", (json_int_t)(n - added), "certs", arr));
	} else {
		json_decref(arr);
		printf("%zu added, %zu already present\n", added, n - added);
		ret = EXIT_OK;
	}
out:
	free(recs);
	return ret;
}

/* ---- import openssl-index ---- */

struct import_stats {
	size_t lines, added, present, revoked, already;
};

static int flush_batch(cli_t *cli, revo_index_line_t *batch, size_t n, revo_change_t *ch,
		       revo_change_result_t *res, struct import_stats *st, revo_errmsg_t *em)
{
	for (size_t i = 0; i < n; i++) {
		ch[i].cert = &batch[i].cert;
		ch[i].revoke = batch[i].revoked ? &batch[i].rev : NULL;
	}
	int rc =
	    revo_store_apply(cli->store, ch, n, REVO_APPLY_NOSYNC, "import openssl-index", res, em);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		st->added += res[i].cert == REVO_CERT_ADDED;
		st->present += res[i].cert == REVO_CERT_PRESENT;
		st->revoked +=
		    res[i].rev == REVO_REV_REVOKED || res[i].rev == REVO_REV_HOLD_REPLACED;
		st->already += res[i].rev == REVO_REV_ALREADY;
	}
	return REVO_OK;
}

int cmd_import_index(cli_t *cli, int argc, char **argv)
{
	const char *issuer_name = NULL;
	int first;
	int r = cli_parse(cli, argc, argv, ISSUER_OPT, opt_issuer, &issuer_name, &first);
	if (r >= 0)
		return r;
	if (first >= argc)
		return cli_misuse(cli, "missing INDEX.txt");
	if (first + 1 < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first + 1]);
	if (!issuer_name)
		return cli_misuse(cli, "--issuer is required");
	const char *path = argv[first];
	if ((r = cli_open_store(cli, false)) || (r = cli_load_issuers(cli)))
		return r;
	const revo_issuer_t *is = cli_issuer_pick(cli, issuer_name, &r);
	if (!is)
		return r;

	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_failf(cli, "%s: %s", path, strerror(errno));
	struct stat sb;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return cli_failf(cli, "%s: not a regular file", path);
	}
	size_t size = (size_t)sb.st_size;
	const char *data = "";
	if (size > 0) {
		data = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (data == MAP_FAILED) {
			close(fd);
			return cli_failf(cli, "%s: %s", path, strerror(errno));
		}
		madvise((void *)data, size, MADV_SEQUENTIAL);
	}
	close(fd);

	int ret = EXIT_FAIL;
	revo_index_line_t *batch = calloc(BATCH, sizeof(*batch));
	revo_change_t *ch = calloc(BATCH, sizeof(*ch));
	revo_change_result_t *res = calloc(BATCH, sizeof(*res));
	struct import_stats st = {0};
	revo_errmsg_t em = {{0}};
	int64_t now = revo_now();
	if (!batch || !ch || !res) {
		cli_failf(cli, "out of memory");
		goto out;
	}
	/* pass 1 checks every line, pass 2 writes */
	for (int pass = 1; pass <= 2; pass++) {
		size_t lineno = 0, nb = 0;
		const char *p = data, *end = data + size;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			const char *next = nl ? nl + 1 : end;
			lineno++;
			if (le > p && le[-1] == '\r')
				le--;
			if (le == p) {
				p = next;
				continue;
			}
			revo_index_line_t *l = &batch[nb];
			r = revo_index_parse_line(p, (size_t)(le - p), is->id, now, l, &em);
			if (r) {
				cli_failf(cli, "%s:%zu: %s; nothing imported", path, lineno,
					  em.msg);
				goto out;
			}
			p = next;
			if (pass == 1) {
				st.lines++;
				continue;
			}
			if (++nb == BATCH) {
				if ((r = flush_batch(cli, batch, nb, ch, res, &st, &em)) != 0) {
					cli_failf(cli, "%s:%zu: %s", path, lineno,
						  em.msg[0] ? em.msg : revo_strerror(r));
					goto out;
				}
				nb = 0;
			}
		}
		if (pass == 2 && nb) {
			if ((r = flush_batch(cli, batch, nb, ch, res, &st, &em)) != 0) {
				cli_failf(cli, "%s: %s", path,
					  em.msg[0] ? em.msg : revo_strerror(r));
				goto out;
			}
		}
	}
	if ((r = revo_store_sync(cli->store, &em)) != 0) {
		cli_fail(cli, r, &em);
		goto out;
	}
	if (cli->json) {
		ret = cli_json_print(
		    cli, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "issuer", is->name, "lines",
				   (json_int_t)st.lines, "added", (json_int_t)st.added, "present",
				   (json_int_t)st.present, "revoked", (json_int_t)st.revoked,
				   "already_revoked", (json_int_t)st.already));
	} else {
		printf("imported %zu lines into issuer '%s': %zu certificates added, %zu already "
		       "present, %zu revoked, %zu already revoked\n",
		       st.lines, is->name, st.added, st.present, st.revoked, st.already);
		ret = EXIT_OK;
	}
out:
	if (size > 0)
		munmap((void *)data, size);
	free(batch);
	free(ch);
	free(res);
	return ret;
}

/* ---- import crl ---- */

static int crl_entry(const X509_REVOKED *e, size_t idx, uint32_t issuer_id, int64_t now,
		     revo_revocation_t *out, bool *skip, revo_errmsg_t *em)
{
	memset(out, 0, sizeof(*out));
	*skip = false;
	int rc = revo_serial_from_asn1(X509_REVOKED_get0_serialNumber(e), &out->serial, em);
	if (rc)
		return revo_err_set(em, rc, "entry %zu has an invalid serial", idx);
	char sx[REVO_SERIAL_HEX_MAX];
	revo_serial_format(&out->serial, sx);
	if (revo_time_from_asn1(X509_REVOKED_get0_revocationDate(e), &out->revoked_at))
		return revo_err_set(em, REVO_EINVAL, "entry %s has an invalid revocation date", sx);
	if (out->revoked_at > now)
		return revo_err_set(em, REVO_EINVAL, "entry %s has a revocation date in the future",
				    sx);
	int crit = 0;
	ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(e, NID_crl_reason, &crit, NULL);
	if (reason) {
		long v = ASN1_ENUMERATED_get(reason);
		ASN1_ENUMERATED_free(reason);
		if (!revo_reason_valid((int)v))
			return revo_err_set(em, REVO_EINVAL, "entry %s has invalid reason code %ld",
					    sx, v);
		out->reason = (int)v;
	} else if (crit != -1) {
		return revo_err_set(em, REVO_EINVAL, "entry %s has a malformed reason code", sx);
	}
	if (out->reason == REVO_REASON_REMOVE_FROM_CRL) {
		*skip = true;
		return REVO_OK;
	}
	ASN1_GENERALIZEDTIME *inv = X509_REVOKED_get_ext_d2i(e, NID_invalidity_date, &crit, NULL);
	if (inv) {
		int irc = revo_time_from_asn1(inv, &out->invalidity);
		ASN1_GENERALIZEDTIME_free(inv);
		if (irc)
			return revo_err_set(em, REVO_EINVAL,
					    "entry %s has an invalid invalidity date", sx);
		if (out->invalidity > now)
			out->invalidity = 0;
	} else if (crit != -1) {
		return revo_err_set(em, REVO_EINVAL, "entry %s has a malformed invalidity date",
				    sx);
	}
	out->issuer_id = issuer_id;
	out->at_explicit = true;
	return REVO_OK;
}

int cmd_import_crl(cli_t *cli, int argc, char **argv)
{
	const char *issuer_name = NULL;
	int first;
	int r = cli_parse(cli, argc, argv, ISSUER_OPT, opt_issuer, &issuer_name, &first);
	if (r >= 0)
		return r;
	if (first >= argc)
		return cli_misuse(cli, "missing CRL file");
	if (first + 1 < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first + 1]);
	if (!issuer_name)
		return cli_misuse(cli, "--issuer is required");
	const char *path = argv[first];
	if ((r = cli_open_store(cli, false)) || (r = cli_load_issuers(cli)))
		return r;
	const revo_issuer_t *is = cli_issuer_pick(cli, issuer_name, &r);
	if (!is)
		return r;

	revo_errmsg_t em = {{0}};
	X509_CRL *crl = NULL;
	X509 *ca = NULL;
	revo_revocation_t *revs = NULL;
	revo_change_t *ch = NULL;
	revo_change_result_t *res = NULL;
	int ret = EXIT_FAIL;
	if ((r = revo_crl_load(path, &crl, &em)) != 0) {
		cli_fail(cli, r, &em);
		goto out;
	}
	const unsigned char *p = is->cert_der;
	ca = d2i_X509(NULL, &p, (long)is->cert_len);
	if (!ca) {
		cli_failf(cli, "issuer '%s' has an unreadable certificate", is->name);
		goto out;
	}
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0) {
		char name[512];
		cli_failf(cli, "%s: CRL issuer '%s' is not issuer '%s'", path,
			  revo_name_text(X509_CRL_get_issuer(crl), name, sizeof(name)), is->name);
		goto out;
	}
	if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1) {
		ERR_clear_error();
		cli_failf(cli, "%s: CRL signature does not verify with the key of issuer '%s'",
			  path, is->name);
		goto out;
	}
	int crit = 0;
	ASN1_INTEGER *delta = X509_CRL_get_ext_d2i(crl, NID_delta_crl, &crit, NULL);
	if (delta) {
		ASN1_INTEGER_free(delta);
		cli_failf(cli, "%s is a delta CRL: import the full (base) CRL", path);
		goto out;
	}
	STACK_OF(X509_REVOKED) *entries = X509_CRL_get_REVOKED(crl);
	size_t n = entries ? (size_t)sk_X509_REVOKED_num(entries) : 0, nrev = 0, skipped = 0;
	revs = calloc(n ? n : 1, sizeof(*revs));
	ch = calloc(BATCH, sizeof(*ch));
	res = calloc(BATCH, sizeof(*res));
	if (!revs || !ch || !res) {
		cli_failf(cli, "out of memory");
		goto out;
	}
	int64_t now = revo_now();
	for (size_t i = 0; i < n; i++) {
		bool skip;
		r = crl_entry(sk_X509_REVOKED_value(entries, (int)i), i + 1, is->id, now,
			      &revs[nrev], &skip, &em);
		if (r) {
			cli_failf(cli, "%s: %s; nothing imported", path, em.msg);
			goto out;
		}
		if (skip)
			skipped++;
		else
			nrev++;
	}
	size_t newly = 0, already = 0;
	for (size_t off = 0; off < nrev; off += BATCH) {
		size_t k = nrev - off < BATCH ? nrev - off : BATCH;
		for (size_t i = 0; i < k; i++)
			ch[i] = (revo_change_t){.revoke = &revs[off + i]};
		r = revo_store_apply(cli->store, ch, k, REVO_APPLY_NOSYNC, "import crl", res, &em);
		if (r) {
			cli_fail(cli, r, &em);
			goto out;
		}
		for (size_t i = 0; i < k; i++) {
			newly +=
			    res[i].rev == REVO_REV_REVOKED || res[i].rev == REVO_REV_HOLD_REPLACED;
			already += res[i].rev == REVO_REV_ALREADY;
		}
	}
	if ((r = revo_store_sync(cli->store, &em)) != 0) {
		cli_fail(cli, r, &em);
		goto out;
	}
	if (cli->json) {
		ret = cli_json_print(
		    cli, json_pack("{s:s, s:I, s:I, s:I, s:I}", "issuer", is->name, "entries",
				   (json_int_t)n, "revoked", (json_int_t)newly, "already_revoked",
				   (json_int_t)already, "skipped", (json_int_t)skipped));
	} else {
		printf(
		    "imported %zu CRL entries into issuer '%s': %zu revoked, %zu already revoked, "
		    "%zu skipped (removeFromCRL)\n",
		    n, is->name, newly, already, skipped);
		ret = EXIT_OK;
	}
out:
	X509_CRL_free(crl);
	X509_free(ca);
	free(revs);
	free(ch);
	free(res);
	return ret;
}
