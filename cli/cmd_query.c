/*
 * revo status, revo list, revo log: read-only views of one snapshot of the store.
 * list and log stream their output (JSON arrays too), so a million entries need no
 * more memory than one.
 */
#include "cli/cli.h"

#include "pki/reason.h"
#include "pki/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct q_opts {
	const char *serial, *issuer, *since;
	bool revoked;
};

static int q_opt(cli_t *cli, int opt, const char *arg, void *vctx)
{
	struct q_opts *o = vctx;
	(void)cli;
	switch (opt) {
	case 's': o->serial = arg; break;
	case 'i': o->issuer = arg; break;
	case 'S': o->since = arg; break;
	case 'R': o->revoked = true; break;
	}
	return 0;
}

static json_t *entry_json(const char *issuer, const revo_serial_t *serial, const revo_cert_rec_t *c,
			  const revo_revocation_t *rv, int64_t now)
{
	json_t *o = json_object();
	json_object_set_new(o, "serial", cli_json_serial(serial));
	json_object_set_new(o, "issuer", cli_json_str(issuer));
	json_object_set_new(o, "status", json_string(rv ? "revoked" : c ? "good" : "unknown"));
	json_object_set_new(o, "issued", json_boolean(c != NULL));
	json_object_set_new(o, "expired", json_boolean(c && c->not_after <= now));
	json_object_set_new(o, "cn", c ? cli_json_str(c->cn) : json_null());
	json_object_set_new(o, "not_before", c ? cli_json_time(c->not_before) : json_null());
	json_object_set_new(o, "not_after", c ? cli_json_time(c->not_after) : json_null());
	json_object_set_new(o, "revoked_at", rv ? cli_json_time(rv->revoked_at) : json_null());
	json_object_set_new(o, "reason", rv ? cli_json_reason(rv->reason) : json_null());
	json_object_set_new(o, "invalidity_date", rv ? cli_json_time(rv->invalidity) : json_null());
	return o;
}

static void entry_print(json_t *o)
{
	const char *cn = json_string_value(json_object_get(o, "cn"));
	const char *na = json_string_value(json_object_get(o, "not_after"));
	const char *ra = json_string_value(json_object_get(o, "revoked_at"));
	const char *inv = json_string_value(json_object_get(o, "invalidity_date"));
	const char *is = json_string_value(json_object_get(o, "issuer"));
	printf("%s %s %s%s%s cn=%s not_after=%s", is ? is : "-",
	       json_string_value(json_object_get(o, "serial")),
	       json_string_value(json_object_get(o, "status")),
	       json_is_true(json_object_get(o, "expired")) ? " (expired)" : "",
	       json_is_true(json_object_get(o, "issued")) ? "" : " (not issued)", cn ? cn : "-",
	       na ? na : "-");
	if (ra)
		printf(" revoked_at=%s reason=%s", ra,
		       json_string_value(json_object_get(o, "reason")));
	if (inv)
		printf(" invalidity_date=%s", inv);
	putchar('\n');
}

int cmd_status(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"serial", required_argument, NULL, 's'},
	    {"issuer", required_argument, NULL, 'i'},
	    {0},
	};
	struct q_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, opts, q_opt, &o, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	if (!o.serial)
		return cli_misuse(cli, "--serial is required");
	revo_serial_t serial;
	if ((r = cli_serial_arg(cli, o.serial, &serial)))
		return r;
	if ((r = cli_open_store(cli, true)) || (r = cli_load_issuers(cli)))
		return r;
	const revo_issuer_t *only = NULL;
	if (o.issuer && !(only = cli_issuer_pick(cli, o.issuer, &r)))
		return r;
	revo_errmsg_t em = {{0}};
	const revo_issuer_t *hit = NULL;
	revo_cert_rec_t c;
	revo_revocation_t rv;
	bool hc = false, hr = false;
	int found = 0;
	for (size_t i = 0; i < cli->n_issuers; i++) {
		const revo_issuer_t *is = &cli->issuers[i];
		if (only && is != only)
			continue;
		revo_cert_rec_t c2;
		revo_revocation_t rv2;
		bool hc2, hr2;
		if ((r = revo_store_lookup(cli->store, is->id, &serial, &c2, &hc2, &rv2, &hr2,
					   &em)))
			return cli_fail(cli, r, &em);
		if (hc2 || hr2) {
			if (!found) {
				hit = is;
				c = c2;
				rv = rv2;
				hc = hc2;
				hr = hr2;
			}
			found++;
		}
	}
	if (found > 1) {
		char sx[REVO_SERIAL_HEX_MAX];
		return cli_misuse(cli, "serial %s exists under %d issuers: give --issuer",
				  revo_serial_format(&serial, sx), found);
	}
	json_t *e = entry_json(hit    ? hit->name
			       : only ? only->name
				      : NULL,
			       &serial, hc ? &c : NULL, hr ? &rv : NULL, revo_now());
	if (cli->json)
		return cli_json_print(cli, e);
	entry_print(e);
	json_decref(e);
	return EXIT_OK;
}

struct list_ctx {
	cli_t *cli;
	size_t count;
	int64_t now;
};

static int list_cb(void *vctx, const revo_cert_rec_t *c, const revo_revocation_t *rv)
{
	struct list_ctx *ctx = vctx;
	uint32_t id = c ? c->issuer_id : rv->issuer_id;
	const revo_issuer_t *is = cli_issuer_by_id(ctx->cli, id);
	json_t *e = entry_json(is ? is->name : NULL, c ? &c->serial : &rv->serial, c, rv, ctx->now);
	if (ctx->cli->json) {
		char *s = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (s) {
			printf("%s\n  %s", ctx->count ? "," : "", s);
			free(s);
		}
	} else {
		entry_print(e);
	}
	json_decref(e);
	ctx->count++;
	return ferror(stdout) ? REVO_EIO : 0;
}

int cmd_list(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"revoked", no_argument, NULL, 'R'},
	    {"issuer", required_argument, NULL, 'i'},
	    {0},
	};
	struct q_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, opts, q_opt, &o, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	if ((r = cli_open_store(cli, true)) || (r = cli_load_issuers(cli)))
		return r;
	const revo_issuer_t *only = NULL;
	if (o.issuer && !(only = cli_issuer_pick(cli, o.issuer, &r)))
		return r;
	struct list_ctx ctx = {.cli = cli, .now = revo_now()};
	revo_errmsg_t em = {{0}};
	if (cli->json)
		fputs("[", stdout);
	r = revo_store_list(cli->store, only ? only->id : 0, o.revoked, list_cb, &ctx, &em);
	if (cli->json)
		fputs(ctx.count ? "\n]\n" : "]\n", stdout);
	if (r)
		return cli_fail(cli, r, &em);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

struct log_ctx {
	cli_t *cli;
	size_t count;
};

static int log_cb(void *vctx, const revo_journal_entry_t *e)
{
	struct log_ctx *ctx = vctx;
	const revo_issuer_t *is = e->issuer_id ? cli_issuer_by_id(ctx->cli, e->issuer_id) : NULL;
	char t[REVO_TIME_STR_MAX];
	json_t *o = json_object();
	json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
	json_object_set_new(o, "time", json_string(revo_time_format_us(e->time_us, t)));
	json_object_set_new(o, "op", json_string(revo_op_name(e->op)));
	json_object_set_new(o, "issuer", is ? json_string(is->name) : json_null());
	json_object_set_new(o, "serial", e->has_serial ? cli_json_serial(&e->serial) : json_null());
	json_object_set_new(o, "reason", e->reason >= 0 ? cli_json_reason(e->reason) : json_null());
	json_object_set_new(o, "revoked_at", cli_json_time(e->revoked_at));
	json_object_set_new(o, "invalidity_date", cli_json_time(e->invalidity));
	json_object_set_new(o, "user", json_string(e->user));
	json_object_set_new(o, "uid", json_integer(e->uid));
	json_object_set_new(o, "host", json_string(e->host));
	json_object_set_new(o, "sudo_user", cli_json_str(e->sudo_user));
	json_object_set_new(o, "detail", cli_json_str(e->detail));
	if (ctx->cli->json) {
		char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (s) {
			printf("%s\n  %s", ctx->count ? "," : "", s);
			free(s);
		}
	} else {
		printf("%llu %s %-10s %s %s", (unsigned long long)e->seq, t, revo_op_name(e->op),
		       is ? is->name : "-",
		       e->has_serial ? json_string_value(json_object_get(o, "serial")) : "-");
		if (e->reason >= 0)
			printf(" reason=%s", revo_reason_name(e->reason));
		if (e->revoked_at)
			printf(" revoked_at=%s",
			       json_string_value(json_object_get(o, "revoked_at")));
		printf(" by %s(%u)@%s", e->user, e->uid, e->host);
		if (e->sudo_user[0])
			printf(" sudo:%s", e->sudo_user);
		if (e->detail[0])
			printf(" \"%s\"", e->detail);
		putchar('\n');
	}
	json_decref(o);
	ctx->count++;
	return ferror(stdout) ? REVO_EIO : 0;
}

int cmd_log(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"since", required_argument, NULL, 'S'},
	    {0},
	};
	struct q_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, opts, q_opt, &o, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	unsigned long long since = 0;
	if (o.since) {
		char *end;
		since = strtoull(o.since, &end, 10);
		if (*o.since == '\0' || *end != '\0' || o.since[0] == '-')
			return cli_failf(cli, "--since '%s' is not a sequence number", o.since);
	}
	if ((r = cli_open_store(cli, true)) || (r = cli_load_issuers(cli)))
		return r;
	struct log_ctx ctx = {.cli = cli};
	revo_errmsg_t em = {{0}};
	if (cli->json)
		fputs("[", stdout);
	r = revo_store_journal(cli->store, since, log_cb, &ctx, &em);
	if (cli->json)
		fputs(ctx.count ? "\n]\n" : "]\n", stdout);
	if (r)
		return cli_fail(cli, r, &em);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}
