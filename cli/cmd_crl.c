/*
 * revo crl build: load the issuer's key by its reference, build and sign the CRL
 * (crl/crl.h), and report its number, size and Roles Anywhere headroom.
 */
#include "cli/cli.h"

#include "crl/crl.h"
#include "pki/key.h"
#include "pki/timefmt.h"

#include <stdio.h>
#include <string.h>

struct crl_opts {
	const char *issuer, *out, *pass_file;
	bool pem, delta, keep_expired, rsa_pss, force;
};

static int crl_opt(cli_t *cli, int opt, const char *arg, void *vctx)
{
	struct crl_opts *o = vctx;
	(void)cli;
	switch (opt) {
	case 'i': o->issuer = arg; break;
	case 'o': o->out = arg; break;
	case 'p': o->pass_file = arg; break;
	case 'P': o->pem = true; break;
	case 'd': o->delta = true; break;
	case 'k': o->keep_expired = true; break;
	case 's': o->rsa_pss = true; break;
	case 'f': o->force = true; break;
	}
	return 0;
}

int cmd_crl_build(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"issuer", required_argument, NULL, 'i'},
	    {"out", required_argument, NULL, 'o'},
	    {"pass-file", required_argument, NULL, 'p'},
	    {"pem", no_argument, NULL, 'P'},
	    {"delta", no_argument, NULL, 'd'},
	    {"keep-expired", no_argument, NULL, 'k'},
	    {"rsa-pss", no_argument, NULL, 's'},
	    {"force", no_argument, NULL, 'f'},
	    {0},
	};
	struct crl_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, opts, crl_opt, &o, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	if (!o.out || !*o.out)
		return cli_misuse(cli, "--out FILE is required");
	if ((r = cli_open_store(cli, false)) || (r = cli_load_issuers(cli)))
		return r;
	const revo_issuer_t *is = cli_issuer_pick(cli, o.issuer, &r);
	if (!is)
		return r;

	revo_errmsg_t em = {{0}};
	EVP_PKEY *key = NULL;
	revo_key_opts_t ko = {.pass_file = o.pass_file, .force_perms = o.force};
	if ((r = revo_key_load(is->key_ref, &ko, &key, &em)) != 0)
		return cli_fail(cli, r, &em);
	revo_crl_opts_t co = {
	    .delta = o.delta, .keep_expired = o.keep_expired, .pem = o.pem, .rsa_pss = o.rsa_pss};
	revo_crl_info_t info;
	r = revo_crl_build(cli->store, is, key, &co, o.out, &info, &em);
	EVP_PKEY_free(key);
	if (r)
		return cli_fail(cli, r, &em);

	double pct = 100.0 * (double)info.crldata_len / REVO_CRLDATA_LIMIT;
	char warning[256] = "";
	if (info.crldata_len > REVO_CRLDATA_LIMIT)
		snprintf(warning, sizeof(warning),
			 "too large for Roles Anywhere: crlData would be %zu characters, over the "
			 "limit of %d",
			 info.crldata_len, REVO_CRLDATA_LIMIT);
	else if (pct > 80.0)
		snprintf(warning, sizeof(warning),
			 "crlData is %.0f%% of the Roles Anywhere limit (%zu of %d characters)",
			 pct, info.crldata_len, REVO_CRLDATA_LIMIT);
	char tu[REVO_TIME_STR_MAX], nu[REVO_TIME_STR_MAX];
	revo_time_format(info.this_update, tu);
	revo_time_format(info.next_update, nu);
	if (cli->json) {
		json_t *j = json_object();
		json_object_set_new(j, "issuer", json_string(is->name));
		json_object_set_new(j, "out", json_string(o.out));
		json_object_set_new(j, "format", json_string(o.pem ? "pem" : "der"));
		json_object_set_new(j, "crl_number", json_integer((json_int_t)info.number));
		json_object_set_new(j, "delta", json_boolean(o.delta));
		json_object_set_new(j, "base_crl_number",
				    o.delta ? json_integer((json_int_t)info.base_number)
					    : json_null());
		json_object_set_new(j, "entries", json_integer((json_int_t)info.entries));
		json_object_set_new(j, "pruned_expired", json_integer((json_int_t)info.pruned));
		json_object_set_new(j, "der_size", json_integer((json_int_t)info.der_size));
		json_object_set_new(j, "file_size", json_integer((json_int_t)info.file_size));
		json_object_set_new(j, "this_update", json_string(tu));
		json_object_set_new(j, "next_update", json_string(nu));
		json_object_set_new(j, "journal_seq", json_integer((json_int_t)info.seq));
		json_object_set_new(j, "crldata_length",
				    json_integer((json_int_t)info.crldata_len));
		json_object_set_new(j, "crldata_limit", json_integer(REVO_CRLDATA_LIMIT));
		json_object_set_new(j, "crldata_percent", json_real((double)(int)(pct * 10) / 10));
		json_object_set_new(j, "warning", cli_json_str(warning));
		return cli_json_print(cli, j);
	}
	printf("%s CRL %llu of issuer '%s' -> %s (%s, %zu octets DER)\n",
	       o.delta ? "delta" : "full", (unsigned long long)info.number, is->name, o.out,
	       o.pem ? "PEM" : "DER", info.der_size);
	if (o.delta)
		printf("  base CRL      %llu\n", (unsigned long long)info.base_number);
	printf("  entries       %zu (%zu expired left out)\n", info.entries, info.pruned);
	printf("  this update   %s\n  next update   %s\n", tu, nu);
	printf("  crlData       %zu of %d characters (%.1f%%)\n", info.crldata_len,
	       REVO_CRLDATA_LIMIT, pct);
	if (warning[0])
		fprintf(stderr, "revo: crl build: warning: %s\n", warning);
	return EXIT_OK;
}
