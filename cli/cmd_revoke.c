/*
 * revo revoke and revo unhold.
 *
 * revoke resolves its target (--serial, --cert or --cn) to a list of (issuer, serial)
 * pairs, then applies them as one write transaction committed with fsync: when the
 * command says "revoked", the revocation is on disk. --dry-run runs the same
 * transaction and aborts it, so it reports exactly what a real run would do.
 */
#include "cli/cli.h"

#include "pki/cert.h"
#include "pki/reason.h"
#include "pki/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct revoke_opts {
	const char *serial, *cert, *cn, *issuer, *reason, *at, *invalidity;
	bool dry_run, publish, wait;
};

static int revoke_opt(cli_t *cli, int opt, const char *arg, void *vctx)
{
	struct revoke_opts *o = vctx;
	(void)cli;
	switch (opt) {
	case 's': o->serial = arg; break;
	case 'c': o->cert = arg; break;
	case 'n': o->cn = arg; break;
	case 'i': o->issuer = arg; break;
	case 'r': o->reason = arg; break;
	case 'a': o->at = arg; break;
	case 'd': o->invalidity = arg; break;
	case 'D': o->dry_run = true; break;
	case 'P': o->publish = true; break;
	case 'W': o->wait = true; break;
	}
	return 0;
}

/*
 * Find which issuer holds @serial (certificate or revocation). Returns the number of
 * issuers that do (0, 1 or more); *@out is the first one.
 */
static int locate(cli_t *cli, const revo_serial_t *serial, const revo_issuer_t **out,
		  revo_errmsg_t *em, int *err)
{
	int found = 0;
	*err = 0;
	for (size_t i = 0; i < cli->n_issuers; i++) {
		bool hc, hr;
		int rc = revo_store_lookup(cli->store, cli->issuers[i].id, serial, NULL, &hc, NULL,
					   &hr, em);
		if (rc) {
			*err = rc;
			return 0;
		}
		if (hc || hr) {
			if (!found)
				*out = &cli->issuers[i];
			found++;
		}
	}
	return found;
}

static json_t *result_json(cli_t *cli, const revo_change_t *ch, const revo_change_result_t *res,
			   const char *cn, bool dry_run)
{
	const revo_revocation_t *cur = &res->current;
	const revo_issuer_t *is = cli_issuer_by_id(cli, ch->revoke->issuer_id);
	const char *result = res->rev == REVO_REV_ALREADY         ? "already-revoked"
			     : dry_run                            ? "would-revoke"
			     : res->rev == REVO_REV_HOLD_REPLACED ? "hold-replaced"
								  : "revoked";
	return json_pack("{s:o, s:s, s:o, s:b, s:s, s:o, s:o, s:o, s:o}", "serial",
			 cli_json_serial(&ch->revoke->serial), "issuer", is ? is->name : "?", "cn",
			 cli_json_str(cn), "issued", res->issued, "result", result, "reason",
			 cli_json_reason(cur->reason), "revoked_at", cli_json_time(cur->revoked_at),
			 "invalidity_date", cli_json_time(cur->invalidity), "seq",
			 (dry_run && res->rev != REVO_REV_ALREADY) || !cur->seq
			     ? json_null()
			     : json_integer((json_int_t)cur->seq));
}

int cmd_revoke(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"serial", required_argument, NULL, 's'},
	    {"cert", required_argument, NULL, 'c'},
	    {"cn", required_argument, NULL, 'n'},
	    {"issuer", required_argument, NULL, 'i'},
	    {"reason", required_argument, NULL, 'r'},
	    {"at", required_argument, NULL, 'a'},
	    {"invalidity-date", required_argument, NULL, 'd'},
	    {"dry-run", no_argument, NULL, 'D'},
	    {"publish", no_argument, NULL, 'P'},
	    {"wait", required_argument, NULL, 'W'},
	    {0},
	};
	struct revoke_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, opts, revoke_opt, &o, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	if (o.publish || o.wait)
		return cli_misuse(cli,
				  "--publish and --wait need the publisher, which this build of "
				  "revo does not include; revoke without them");
	if (!!o.serial + !!o.cert + !!o.cn != 1)
		return cli_misuse(cli, "give exactly one of --serial, --cert or --cn");

	revo_revocation_t tmpl = {.reason = REVO_REASON_UNSPECIFIED};
	int64_t now = revo_now();
	if (o.reason && (r = cli_reason_arg(cli, o.reason, &tmpl.reason)))
		return r;
	if (o.at) {
		if ((r = cli_time_arg(cli, "at", o.at, &tmpl.revoked_at)))
			return r;
		if (tmpl.revoked_at > now)
			return cli_failf(
			    cli, "--at %s is in the future: a revocation time cannot be", o.at);
		tmpl.at_explicit = true;
	} else {
		tmpl.revoked_at = now;
	}
	if (o.invalidity) {
		if ((r = cli_time_arg(cli, "invalidity-date", o.invalidity, &tmpl.invalidity)))
			return r;
		if (tmpl.invalidity > now)
			return cli_failf(cli, "--invalidity-date %s is in the future",
					 o.invalidity);
	}
	revo_serial_t serial;
	if (o.serial && (r = cli_serial_arg(cli, o.serial, &serial)))
		return r;
	if ((r = cli_open_store(cli, false)) || (r = cli_load_issuers(cli)))
		return r;
	const revo_issuer_t *only = NULL;
	if (o.issuer && !(only = cli_issuer_pick(cli, o.issuer, &r)))
		return r;

	revo_errmsg_t em = {{0}};
	revo_cert_rec_t *targets = NULL; /* for --cn and --cert: what is revoked */
	revo_cert_rec_t one;
	size_t n = 0;
	bool register_cert = false;
	int ret = EXIT_FAIL;
	char sx[REVO_SERIAL_HEX_MAX];

	if (o.serial) {
		const revo_issuer_t *is = only;
		memset(&one, 0, sizeof(one));
		if (!is) {
			int err;
			int found = locate(cli, &serial, &is, &em, &err);
			if (err)
				return cli_fail(cli, err, &em);
			if (found == 0)
				return cli_failf(
				    cli,
				    "serial %s is not in the store; give --issuer NAME to "
				    "revoke a certificate the store does not know",
				    revo_serial_format(&serial, sx));
			if (found > 1)
				return cli_misuse(
				    cli, "serial %s exists under %d issuers: give --issuer",
				    revo_serial_format(&serial, sx), found);
		}
		bool hc, hr;
		if ((r = revo_store_lookup(cli->store, is->id, &serial, &one, &hc, NULL, &hr, &em)))
			return cli_fail(cli, r, &em);
		if (!hc)
			one.cn[0] = '\0';
		one.issuer_id = is->id;
		one.serial = serial;
		targets = &one;
		n = 1;
	} else if (o.cert) {
		STACK_OF(X509) * sk;
		if ((r = revo_cert_load(o.cert, &sk, &em)))
			return cli_fail(cli, r, &em);
		if (sk_X509_num(sk) != 1) {
			int k = sk_X509_num(sk);
			sk_X509_pop_free(sk, X509_free);
			return cli_failf(cli, "--cert %s holds %d certificates; give one", o.cert,
					 k);
		}
		const revo_issuer_t *is;
		revo_cert_info_t info;
		X509 *x = sk_X509_value(sk, 0);
		r = cli_issuer_of(cli, x, only, &is, &em);
		if (!r)
			r = revo_cert_info(x, &info, &em);
		sk_X509_pop_free(sk, X509_free);
		if (r)
			return cli_failf(cli, "--cert %s: %s", o.cert,
					 em.msg[0] ? em.msg : revo_strerror(r));
		memset(&one, 0, sizeof(one));
		one.issuer_id = is->id;
		one.serial = info.serial;
		one.not_before = info.not_before;
		one.not_after = info.not_after;
		memcpy(one.cn, info.cn, sizeof(one.cn));
		one.has_sha256 = true;
		memcpy(one.sha256, info.sha256, 32);
		targets = &one;
		n = 1;
		register_cert = true;
	} else {
		revo_cert_rec_t *all;
		size_t na;
		if ((r = revo_store_find_cn(cli->store, o.cn, only ? only->id : 0, &all, &na, &em)))
			return cli_fail(cli, r, &em);
		size_t expired = 0;
		for (size_t i = 0; i < na; i++) {
			if (all[i].not_after > now)
				all[n++] = all[i];
			else
				expired++;
		}
		if (n == 0) {
			free(all);
			if (expired)
				return cli_failf(
				    cli, "no unexpired certificate has CN '%s' (%zu expired)", o.cn,
				    expired);
			return cli_failf(cli, "no certificate has CN '%s'%s", o.cn,
					 only ? " under this issuer" : "");
		}
		targets = all;
	}

	revo_revocation_t *revs = calloc(n, sizeof(*revs));
	revo_change_t *ch = calloc(n, sizeof(*ch));
	revo_change_result_t *res = calloc(n, sizeof(*res));
	if (!revs || !ch || !res) {
		cli_failf(cli, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		revs[i] = tmpl;
		revs[i].issuer_id = targets[i].issuer_id;
		revs[i].serial = targets[i].serial;
		ch[i].revoke = &revs[i];
		ch[i].cert = register_cert ? &targets[i] : NULL;
	}
	r = revo_store_apply(cli->store, ch, n, o.dry_run ? REVO_APPLY_DRYRUN : 0, cli->cmdline,
			     res, &em);
	if (r) {
		cli_fail(cli, r, &em);
		goto out;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr,
				      result_json(cli, &ch[i], &res[i], targets[i].cn, o.dry_run));
	if (cli->json) {
		ret = cli_json_print(cli,
				     json_pack("{s:b, s:o}", "dry_run", o.dry_run, "certs", arr));
	} else {
		for (size_t i = 0; i < n; i++) {
			json_t *e = json_array_get(arr, i);
			const char *inv = json_string_value(json_object_get(e, "invalidity_date"));
			printf("%-15s %s %s cn=%s reason=%s revoked_at=%s%s%s%s\n",
			       json_string_value(json_object_get(e, "result")),
			       json_string_value(json_object_get(e, "issuer")),
			       json_string_value(json_object_get(e, "serial")),
			       targets[i].cn[0] ? targets[i].cn : "-",
			       json_string_value(json_object_get(e, "reason")),
			       json_string_value(json_object_get(e, "revoked_at")),
			       inv ? " invalidity_date=" : "", inv ? inv : "",
			       res[i].issued ? "" : " (not issued: unknown to the store)");
		}
		json_decref(arr);
		if (o.dry_run)
			printf("dry run: nothing was written\n");
		ret = EXIT_OK;
	}
out:
	free(revs);
	free(ch);
	free(res);
	if (targets != &one)
		free(targets);
	return ret;
}

struct serial_opts {
	const char *serial, *issuer;
};

static int serial_opt(cli_t *cli, int opt, const char *arg, void *vctx)
{
	struct serial_opts *o = vctx;
	(void)cli;
	if (opt == 's')
		o->serial = arg;
	else if (opt == 'i')
		o->issuer = arg;
	return 0;
}

static const struct option SERIAL_OPTS[] = {
    {"serial", required_argument, NULL, 's'},
    {"issuer", required_argument, NULL, 'i'},
    {0},
};

int cmd_unhold(cli_t *cli, int argc, char **argv)
{
	struct serial_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, SERIAL_OPTS, serial_opt, &o, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	if (!o.serial)
		return cli_misuse(cli, "--serial is required");
	revo_serial_t serial;
	if ((r = cli_serial_arg(cli, o.serial, &serial)))
		return r;
	if ((r = cli_open_store(cli, false)) || (r = cli_load_issuers(cli)))
		return r;
	const revo_issuer_t *is = NULL;
	revo_errmsg_t em = {{0}};
	char sx[REVO_SERIAL_HEX_MAX];
	if (o.issuer) {
		if (!(is = cli_issuer_pick(cli, o.issuer, &r)))
			return r;
	} else {
		int err;
		int found = locate(cli, &serial, &is, &em, &err);
		if (err)
			return cli_fail(cli, err, &em);
		if (found == 0)
			return cli_failf(cli, "serial %s is not in the store",
					 revo_serial_format(&serial, sx));
		if (found > 1)
			return cli_misuse(cli, "serial %s exists under %d issuers: give --issuer",
					  revo_serial_format(&serial, sx), found);
	}
	uint64_t seq = 0;
	if ((r = revo_store_unhold(cli->store, is->id, &serial, cli->cmdline, &seq, &em)))
		return cli_fail(cli, r, &em);
	if (cli->json)
		return cli_json_print(cli, json_pack("{s:o, s:s, s:s, s:I}", "serial",
						     cli_json_serial(&serial), "issuer", is->name,
						     "result", "unheld", "seq", (json_int_t)seq));
	printf("unheld %s %s: no longer revoked\n", is->name, revo_serial_format(&serial, sx));
	return EXIT_OK;
}
