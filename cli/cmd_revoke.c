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
#include "uploader/uploader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct revoke_opts {
	const char *serial, *cert, *cn, *issuer, *reason, *at, *invalidity;
	const char *wait;
	const char *pass_file;
	bool dry_run, publish, force;
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
	case 'W': o->wait = arg; break;
	case 'k': o->pass_file = arg; break;
	case 'f': o->force = true; break;
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

static void print_results(json_t *arr, const revo_cert_rec_t *targets,
			  const revo_change_result_t *res, size_t n);
static json_t *publish_and_wait(cli_t *cli, const revo_change_t *ch,
				const revo_change_result_t *res, size_t n, long wait_s,
				const char *pass_file, bool force, bool *ok);

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
	    {"pass-file", required_argument, NULL, 'k'},
	    {"force", no_argument, NULL, 'f'},
	    {0},
	};
	struct revoke_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, opts, revoke_opt, &o, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	long wait_s = 60;
	if (o.wait) {
		char *end;
		wait_s = strtol(o.wait, &end, 10);
		if (!o.publish)
			return cli_misuse(cli, "--wait goes with --publish");
		if (*o.wait == '\0' || *end != '\0' || wait_s < 1 || wait_s > 86400)
			return cli_misuse(cli, "--wait '%s' is not a number of seconds (1-86400)",
					  o.wait);
	}
	if (o.publish && o.dry_run)
		return cli_misuse(cli, "--publish and --dry-run do not go together");
	if (!!o.serial + !!o.cert + !!o.cn != 1)
		return cli_misuse(cli, "give exactly one of --serial, --cert or --cn");

	revo_revocation_t tmpl = {.reason = REVO_REASON_UNSPECIFIED};
	int64_t now = revo_now();
	if (o.reason && (r = cli_reason_arg(cli, o.reason, &tmpl.reason)))
		return r;
	if (o.at) {
		if ((r = cli_time_arg(cli, "at", o.at, &tmpl.revoked_at)))
			return r;
		if (tmpl.revoked_at <= 0)
			return cli_failf(cli, "--at %s is not after 1970-01-01T00:00:00Z", o.at);
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
	json_t *pub = NULL;
	bool pub_ok = true;
	if (o.publish) {
		if (!cli->json)
			print_results(arr, targets, res, n);
		pub = publish_and_wait(cli, ch, res, n, wait_s, o.pass_file, o.force, &pub_ok);
	}
	if (cli->json) {
		json_t *doc = json_pack("{s:b, s:o}", "dry_run", o.dry_run, "certs", arr);
		if (pub)
			json_object_set_new(doc, "publish", pub);
		ret = cli_json_print(cli, doc);
		if (ret == EXIT_OK && !pub_ok)
			ret = EXIT_FAIL;
	} else if (o.publish) {
		json_decref(arr);
		json_decref(pub);
		ret = pub_ok ? EXIT_OK : EXIT_FAIL;
	} else {
		print_results(arr, targets, res, n);
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

static void print_results(json_t *arr, const revo_cert_rec_t *targets,
			  const revo_change_result_t *res, size_t n)
{
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
	fflush(stdout);
}

/* ---- --publish: the emergency timeline ---- */

struct timeline {
	cli_t *cli;
	int64_t t0_ms;
	json_t *events;
	bool failed;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tl_event(struct timeline *tl, const char *event, const char *target, const char *msg)
{
	int64_t ms = mono_ms() - tl->t0_ms;
	json_array_append_new(tl->events,
			      json_pack("{s:I, s:s, s:o, s:s}", "ms", (json_int_t)ms, "event",
					event, "target", cli_json_str(target), "message", msg));
	if (!tl->cli->json) {
		printf("%6lld ms  %-9s %s%s%s\n", (long long)ms, event, target ? target : "",
		       target ? ": " : "", msg);
		fflush(stdout);
	}
}

static void tl_cb(void *ctx, int ev, const char *target, const char *msg)
{
	static const char *const names[] = {"committed", "ocsp",    "crl", "uploaded",
					    "failed",    "skipped", "info"};
	struct timeline *tl = ctx;
	/* a failed attempt is reported, but only the final outcome (retries included) counts */
	tl_event(tl, names[ev], target, msg);
}

/*
 * Make sure every target of the revoked certificates' issuers has a CRL listing them
 * and their OCSP responses are re-signed: by publishing here when no publisher runs,
 * else by watching the store while the running publisher does it.
 */
static json_t *publish_and_wait(cli_t *cli, const revo_change_t *ch,
				const revo_change_result_t *res, size_t n, long wait_s,
				const char *pass_file, bool force, bool *ok)
{
	struct timeline tl = {.cli = cli, .t0_ms = cli->t0_ms, .events = json_array()};
	char msg[256];
	uint64_t max_seq = 0;
	for (size_t i = 0; i < n; i++)
		if (res[i].current.seq > max_seq)
			max_seq = res[i].current.seq;
	snprintf(msg, sizeof(msg), "%zu revocation%s durably committed (journal %llu)", n,
		 n == 1 ? "" : "s", (unsigned long long)max_seq);
	tl_event(&tl, "committed", NULL, msg);
	int64_t deadline = cli->t0_ms + wait_s * 1000;
	*ok = true;

	/* the issuers involved, one at a time (usually one) */
	for (size_t i = 0; i < n; i++) {
		uint32_t id = ch[i].revoke->issuer_id;
		bool seen = false;
		for (size_t k = 0; k < i; k++)
			seen |= ch[k].revoke->issuer_id == id;
		if (seen)
			continue;
		revo_serial_t *serials = calloc(n, sizeof(*serials));
		uint64_t need_seq = 0;
		size_t ns = 0;
		for (size_t k = 0; serials && k < n; k++)
			if (ch[k].revoke->issuer_id == id) {
				serials[ns++] = ch[k].revoke->serial;
				if (res[k].current.seq > need_seq)
					need_seq = res[k].current.seq;
			}
		const revo_issuer_t *is = cli_issuer_by_id(cli, id);
		revo_errmsg_t em = {{0}};
		bool ran = false;
		int rc = revo_publish_now(cli->store, cli->store_dir, id, serials, ns, pass_file,
					  force, deadline, tl_cb, &tl, &ran, &em);
		if (ran) {
			if (rc) {
				*ok = false;
				tl_event(&tl, "failed", NULL,
					 em.msg[0] ? em.msg : revo_strerror(rc));
			}
		} else {
			/* a publisher runs: watch the store until it has done the work */
			long pid = 0;
			revo_publish_running(cli->store_dir, &pid);
			snprintf(msg, sizeof(msg), "publisher pid %ld is running: waiting for it",
				 pid);
			tl_event(&tl, "info", NULL, msg);
			bool ocsp_done = false, crl_seen = false;
			revo_target_t *ts = NULL;
			size_t nt = 0;
			bool *done = NULL;
			revo_reader_t *rd = NULL;
			revo_reader_open(cli->store, &rd, NULL);
			for (;;) {
				if (!ocsp_done && rd && revo_reader_begin(rd, NULL) == 0) {
					bool all = true;
					for (size_t k = 0; k < n; k++) {
						if (ch[k].revoke->issuer_id != id)
							continue;
						revo_ocsp_resp_rec_t rec;
						all &= revo_reader_response(
							   rd, id, &ch[k].revoke->serial,
							   REVO_HASH_SHA1, &rec, NULL) == 0 &&
						       rec.status == REVO_STATUS_REVOKED &&
						       rec.rev_seq == res[k].current.seq;
					}
					revo_reader_end(rd);
					if (all) {
						ocsp_done = true;
						tl_event(&tl, "ocsp", NULL,
							 "OCSP responses re-signed");
					}
				}
				revo_crl_state_t cs;
				if (!crl_seen &&
				    revo_store_crl_state(cli->store, id, &cs, NULL) == 0 &&
				    cs.base_seq >= need_seq) {
					crl_seen = true;
					snprintf(msg, sizeof(msg),
						 "CRL %llu built by the publisher",
						 (unsigned long long)cs.base_number);
					tl_event(&tl, "crl", NULL, msg);
				}
				revo_targets_free(ts, nt);
				ts = NULL;
				nt = 0;
				revo_store_targets(cli->store, &ts, &nt, NULL);
				if (!done)
					done = calloc(nt + 1, sizeof(*done));
				bool all_targets = true;
				for (size_t k = 0; done && k < nt; k++) {
					if (ts[k].issuer_id != id)
						continue;
					if (ts[k].crl_seq >= need_seq && !done[k]) {
						done[k] = true;
						snprintf(msg, sizeof(msg), "CRL %llu uploaded",
							 (unsigned long long)ts[k].crl_number);
						tl_event(&tl, "uploaded", ts[k].name, msg);
					}
					all_targets &= done[k];
				}
				if ((ocsp_done && all_targets) || mono_ms() >= deadline)
					break;
				struct timespec sl = {0, 20 * 1000000L};
				nanosleep(&sl, NULL);
			}
			if (!ocsp_done) {
				*ok = false;
				tl_event(&tl, "failed", NULL,
					 "OCSP responses not re-signed in time");
			}
			for (size_t k = 0; done && k < nt; k++) {
				if (ts[k].issuer_id != id || done[k])
					continue;
				*ok = false;
				snprintf(msg, sizeof(msg),
					 "no CRL listing the revocation in time%s%s",
					 ts[k].last_error ? ": " : "",
					 ts[k].last_error ? ts[k].last_error : "");
				tl_event(&tl, "failed", ts[k].name, msg);
			}
			free(done);
			revo_targets_free(ts, nt);
			revo_reader_close(rd);
		}
		if (tl.failed)
			*ok = false;
		if (mono_ms() > deadline) {
			*ok = false;
			snprintf(msg, sizeof(msg), "took longer than --wait %ld s", wait_s);
			tl_event(&tl, "failed", NULL, msg);
		}
		(void)is;
		free(serials);
	}
	if (!*ok)
		fprintf(stderr,
			"revo: revoke: committed, but not published everywhere within %ld s "
			"(see the timeline and 'revo target list')\n",
			wait_s);
	return json_pack("{s:o, s:b, s:i}", "events", tl.events, "ok", *ok, "wait", (int)wait_s);
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
