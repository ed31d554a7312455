/*
 * revo ocsp presign and revo ocsp serve.
 *
 * presign runs where the keys are (the CA host): it signs with the issuer's delegated
 * responder key when there is one, else with the CA key. serve is the network-facing
 * process: it opens the store read-only and loads no key but the delegated ones (and
 * none with --no-keys).
 */
#include "cli/cli.h"

#include "ocsp/ocsp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct presign_opts {
	const char *issuer, *pass_file;
	bool force;
};

static int presign_opt(cli_t *cli, int opt, const char *arg, void *vctx)
{
	struct presign_opts *o = vctx;
	(void)cli;
	switch (opt) {
	case 'i': o->issuer = arg; break;
	case 'p': o->pass_file = arg; break;
	case 'f': o->force = true; break;
	}
	return 0;
}

int cmd_ocsp_presign(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"issuer", required_argument, NULL, 'i'},
	    {"pass-file", required_argument, NULL, 'p'},
	    {"force", no_argument, NULL, 'f'},
	    {0},
	};
	struct presign_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, opts, presign_opt, &o, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	if ((r = cli_open_store(cli, false)) || (r = cli_load_issuers(cli)))
		return r;
	if (o.issuer && !cli_issuer_pick(cli, o.issuer, &r))
		return r;
	if (cli->n_issuers == 0)
		return cli_failf(cli, "the store has no issuer yet (see 'revo issuer add')");
	json_t *arr = json_array();
	for (size_t i = 0; i < cli->n_issuers; i++) {
		const revo_issuer_t *is = &cli->issuers[i];
		if (o.issuer && strcmp(is->name, o.issuer) != 0)
			continue;
		revo_errmsg_t em = {{0}};
		revo_ocsp_signer_t signer;
		if ((r = revo_ocsp_signer_load(is, false, o.pass_file, o.force, &signer, &em)) !=
		    0) {
			json_decref(arr);
			return cli_fail(cli, r, &em);
		}
		bool delegated = signer.cert != signer.ca;
		revo_presign_stats_t st;
		r = revo_ocsp_presign(cli->store, is, &signer, &st, &em);
		revo_ocsp_signer_free(&signer);
		if (r) {
			json_decref(arr);
			return cli_fail(cli, r, &em);
		}
		json_array_append_new(
		    arr,
		    json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "issuer", is->name, "signer",
			      delegated ? "delegated" : "ca", "certs", (json_int_t)st.certs,
			      "revoked", (json_int_t)st.revoked, "responses",
			      (json_int_t)st.responses, "validity", (json_int_t)is->ocsp_validity));
		if (!cli->json)
			printf(
			    "issuer '%s': %zu responses signed (%s key) for %zu certificates, %zu "
			    "of them revoked; valid %llds\n",
			    is->name, st.responses, delegated ? "delegated responder" : "CA",
			    st.certs, st.revoked, (long long)is->ocsp_validity);
	}
	if (cli->json)
		return cli_json_print(cli, json_pack("{s:o}", "issuers", arr));
	json_decref(arr);
	return EXIT_OK;
}

struct serve_opts {
	const char *listen[16];
	size_t n_listen;
	revo_ocsp_server_cfg_t cfg;
	bool bad_listen;
	const char *bad;
};

static int parse_num(cli_t *cli, const char *opt, const char *arg, long min, long max, long *out)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (*arg == '\0' || *end != '\0' || v < min || v > max)
		return cli_misuse(cli, "--%s '%s' is not a number from %ld to %ld", opt, arg, min,
				  max);
	*out = v;
	return 0;
}

static int serve_opt(cli_t *cli, int opt, const char *arg, void *vctx)
{
	struct serve_opts *o = vctx;
	revo_ocsp_server_cfg_t *c = &o->cfg;
	long v;
	int r = 0;
	switch (opt) {
	case 'l':
		if (o->n_listen == 16)
			return cli_misuse(cli, "at most 16 --listen addresses");
		o->listen[o->n_listen++] = arg;
		break;
	case 't':
		if (!(r = parse_num(cli, "threads", arg, 1, 256, &v)))
			c->threads = (int)v;
		break;
	case 'n':
		if (strcmp(arg, "unknown") == 0)
			c->non_issued = REVO_NONISSUED_UNKNOWN;
		else if (strcmp(arg, "revoked") == 0)
			c->non_issued = REVO_NONISSUED_REVOKED;
		else if (strcmp(arg, "good") == 0)
			c->non_issued = REVO_NONISSUED_GOOD;
		else
			return cli_misuse(cli, "--non-issued is unknown, revoked or good, not '%s'",
					  arg);
		break;
	case 'K': c->sign = false; break;
	case 'p': c->pass_file = arg; break;
	case 'f': c->force_perms = true; break;
	case 'm':
		if (!(r = parse_num(cli, "max-certids", arg, 1, REVO_OCSP_MAX_IDS, &v)))
			c->max_ids = (size_t)v;
		break;
	case 'b':
		if (!(r = parse_num(cli, "max-body", arg, 256, 16384, &v)))
			c->max_body = (size_t)v;
		break;
	case 'H':
		if (!(r = parse_num(cli, "max-header", arg, 256, 65536, &v)))
			c->max_header = (size_t)v;
		break;
	case 'C':
		if (!(r = parse_num(cli, "max-conns", arg, 1, 1000000, &v)))
			c->max_conns = (int)v;
		break;
	case 'I':
		if (!(r = parse_num(cli, "idle-timeout", arg, 1, 3600, &v)))
			c->idle_timeout = (int)v;
		break;
	case 'R':
		if (!(r = parse_num(cli, "read-timeout", arg, 1, 3600, &v)))
			c->read_timeout = (int)v;
		break;
	case 'A':
		if (!(r = parse_num(cli, "max-age", arg, 0, 7 * 86400, &v)))
			c->max_age_cap = v;
		break;
	}
	return r;
}

static void on_ready(void *ctx, const char *const *bound, size_t n)
{
	(void)ctx;
	for (size_t i = 0; i < n; i++)
		printf("listening on %s\n", bound[i]);
	fflush(stdout);
}

int cmd_ocsp_serve(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"threads", required_argument, NULL, 't'},
	    {"non-issued", required_argument, NULL, 'n'},
	    {"no-keys", no_argument, NULL, 'K'},
	    {"pass-file", required_argument, NULL, 'p'},
	    {"force", no_argument, NULL, 'f'},
	    {"max-certids", required_argument, NULL, 'm'},
	    {"max-body", required_argument, NULL, 'b'},
	    {"max-header", required_argument, NULL, 'H'},
	    {"max-conns", required_argument, NULL, 'C'},
	    {"idle-timeout", required_argument, NULL, 'I'},
	    {"read-timeout", required_argument, NULL, 'R'},
	    {"max-age", required_argument, NULL, 'A'},
	    {0},
	};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct serve_opts o = {.cfg = {
				   .threads = ncpu > 0 ? (int)ncpu : 1,
				   .non_issued = REVO_NONISSUED_UNKNOWN,
				   .sign = true,
				   .max_ids = 16,
				   .max_body = 16384,
				   .max_header = 8192,
				   .max_conns = 10000,
				   .idle_timeout = 30,
				   .read_timeout = 10,
				   .max_age_cap = 86400,
			       }};
	int first;
	int r = cli_parse(cli, argc, argv, opts, serve_opt, &o, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	if (o.n_listen == 0)
		return cli_misuse(cli, "give at least one --listen HOST:PORT");
	o.cfg.store_dir = cli->store_dir;
	o.cfg.listen = o.listen;
	o.cfg.n_listen = o.n_listen;
	o.cfg.ready = on_ready;
	revo_errmsg_t em = {{0}};
	r = revo_ocsp_serve(&o.cfg, &em);
	return r ? cli_fail(cli, r, &em) : EXIT_OK;
}
