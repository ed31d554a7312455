/*
 * What every command shares: option parsing with the global options folded in, the
 * error-line format, opening the store, finding issuers, and JSON output.
 */
#include "cli/cli.h"

#include "pki/reason.h"
#include "pki/timefmt.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPT_JSON  1001
#define OPT_STORE 1002

int cli_fail(cli_t *cli, int rc, const revo_errmsg_t *em)
{
	const char *why = (em && em->msg[0]) ? em->msg : revo_strerror(rc);
	fprintf(stderr, "revo: %s: %s\n", cli->cmd, why);
	return EXIT_FAIL;
}

int cli_failf(cli_t *cli, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "revo: %s: %s\n", cli->cmd, buf);
	return EXIT_FAIL;
}

int cli_misuse(cli_t *cli, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (cli->probe) {
		printf("UNKNOWN - %s (see 'revo %s --help')\n", buf, cli->cmd);
		fflush(stdout);
	} else {
		fprintf(stderr, "revo: %s: %s (see 'revo %s --help')\n", cli->cmd, buf, cli->cmd);
	}
	return EXIT_MISUSE;
}

int cli_parse(cli_t *cli, int argc, char **argv, const struct option *longopts, cli_opt_fn on_opt,
	      void *ctx, int *optind_out)
{
	size_t n = 0;
	while (longopts && longopts[n].name)
		n++;
	struct option *all = calloc(n + 4, sizeof(*all));
	if (!all)
		return cli_failf(cli, "out of memory");
	if (n)
		memcpy(all, longopts, n * sizeof(*all));
	all[n] = (struct option){"json", no_argument, NULL, OPT_JSON};
	all[n + 1] = (struct option){"store", required_argument, NULL, OPT_STORE};
	all[n + 2] = (struct option){"help", no_argument, NULL, 'h'};
	int ret = -1;
	optind = 1;
	opterr = 0;
	for (;;) {
		int li = -1;
		int o = getopt_long(argc, argv, ":h", all, &li);
		if (o == -1)
			break;
		if (o == OPT_JSON) {
			cli->json = true;
		} else if (o == OPT_STORE) {
			cli->store_dir = optarg;
		} else if (o == 'h') {
			printf("usage: %s\n", cli->usage);
			ret = EXIT_OK;
			break;
		} else if (o == ':') {
			ret = cli_misuse(cli, "option '%s' needs a value", argv[optind - 1]);
			break;
		} else if (o == '?') {
			ret = cli_misuse(cli, "unknown option '%s'", argv[optind - 1]);
			break;
		} else {
			int r = on_opt(cli, o, optarg, ctx);
			if (r) {
				ret = r;
				break;
			}
		}
	}
	free(all);
	*optind_out = optind;
	return ret;
}

int cli_open_store(cli_t *cli, bool readonly)
{
	revo_errmsg_t em = {{0}};
	int rc =
	    revo_store_open(cli->store_dir, readonly ? REVO_STORE_READONLY : 0, &cli->store, &em);
	if (rc)
		return cli_fail(cli, rc, &em);
	return 0;
}

int cli_load_issuers(cli_t *cli)
{
	revo_errmsg_t em = {{0}};
	int rc = revo_store_issuers(cli->store, &cli->issuers, &cli->n_issuers, &em);
	return rc ? cli_fail(cli, rc, &em) : 0;
}

const revo_issuer_t *cli_issuer_by_name(cli_t *cli, const char *name)
{
	for (size_t i = 0; i < cli->n_issuers; i++)
		if (strcmp(cli->issuers[i].name, name) == 0)
			return &cli->issuers[i];
	return NULL;
}

const revo_issuer_t *cli_issuer_by_id(cli_t *cli, uint32_t id)
{
	for (size_t i = 0; i < cli->n_issuers; i++)
		if (cli->issuers[i].id == id)
			return &cli->issuers[i];
	return NULL;
}

const revo_issuer_t *cli_issuer_pick(cli_t *cli, const char *name, int *exit_code)
{
	if (name) {
		const revo_issuer_t *is = cli_issuer_by_name(cli, name);
		if (!is)
			*exit_code =
			    cli_failf(cli, "no issuer named '%s' (see 'revo issuer list')", name);
		return is;
	}
	if (cli->n_issuers == 1)
		return &cli->issuers[0];
	if (cli->n_issuers == 0)
		*exit_code = cli_failf(cli, "the store has no issuer yet (see 'revo issuer add')");
	else
		*exit_code = cli_misuse(cli, "the store has %zu issuers: give --issuer NAME",
					cli->n_issuers);
	return NULL;
}

static X509 *issuer_x509(const revo_issuer_t *is)
{
	const unsigned char *p = is->cert_der;
	return d2i_X509(NULL, &p, (long)is->cert_len);
}

int cli_issuer_of(cli_t *cli, X509 *x, const revo_issuer_t *only, const revo_issuer_t **out,
		  revo_errmsg_t *em)
{
	const ASN1_OCTET_STRING *aki_kid = X509_get0_authority_key_id(x);
	bool name_match = false;
	for (size_t i = 0; i < cli->n_issuers; i++) {
		const revo_issuer_t *is = &cli->issuers[i];
		if (only && is != only)
			continue;
		X509 *ca = issuer_x509(is);
		if (!ca)
			continue;
		bool ok = X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(x)) == 0;
		if (ok) {
			name_match = true;
			const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
			if (aki_kid && ski && ASN1_OCTET_STRING_cmp(aki_kid, ski) != 0)
				ok = false;
		}
		if (ok) {
			EVP_PKEY *pk = X509_get0_pubkey(ca);
			ok = pk && X509_verify(x, pk) == 1;
		}
		ERR_clear_error();
		X509_free(ca);
		if (ok) {
			*out = is;
			return REVO_OK;
		}
	}
	char name[512];
	revo_name_text(X509_get_issuer_name(x), name, sizeof(name));
	if (only)
		return revo_err_set(em, REVO_ENOTFOUND,
				    "certificate is not signed by issuer '%s' (its issuer is '%s')",
				    only->name, name);
	if (name_match)
		return revo_err_set(
		    em, REVO_ENOTFOUND,
		    "certificate names issuer '%s' but its signature does not verify "
		    "with that issuer's key",
		    name);
	return revo_err_set(em, REVO_ENOTFOUND,
			    "certificate's issuer '%s' is not in the store (see 'revo issuer add')",
			    name);
}

int cli_time_arg(cli_t *cli, const char *opt, const char *arg, int64_t *out)
{
	revo_errmsg_t em = {{0}};
	int rc = revo_time_parse(arg, out, &em);
	if (rc)
		return cli_failf(cli, "--%s: %s", opt, em.msg);
	return 0;
}

int cli_duration_arg(cli_t *cli, const char *opt, const char *arg, int64_t *out)
{
	revo_errmsg_t em = {{0}};
	int rc = revo_duration_parse(arg, out, &em);
	if (rc)
		return cli_failf(cli, "--%s: %s", opt, em.msg);
	return 0;
}

int cli_serial_arg(cli_t *cli, const char *arg, revo_serial_t *out)
{
	revo_errmsg_t em = {{0}};
	int rc = revo_serial_parse(arg, out, &em);
	return rc ? cli_fail(cli, rc, &em) : 0;
}

int cli_reason_arg(cli_t *cli, const char *arg, int *out)
{
	revo_errmsg_t em = {{0}};
	int rc = revo_reason_parse(arg, out, &em);
	if (rc)
		return cli_fail(cli, rc, &em);
	if (*out == REVO_REASON_REMOVE_FROM_CRL)
		return cli_failf(cli, "removeFromCRL is not a revocation reason (use 'revo unhold' "
				      "to take a certificate off hold)");
	return 0;
}

int cli_json_print(cli_t *cli, json_t *v)
{
	(void)cli;
	if (!v)
		return cli_failf(cli, "out of memory");
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	json_decref(v);
	if (!s)
		return cli_failf(cli, "out of memory");
	puts(s);
	free(s);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

json_t *cli_json_str(const char *s)
{
	return (s && *s) ? json_string(s) : json_null();
}

json_t *cli_json_time(int64_t t)
{
	char buf[REVO_TIME_STR_MAX];
	return t ? json_string(revo_time_format(t, buf)) : json_null();
}

json_t *cli_json_serial(const revo_serial_t *s)
{
	char buf[REVO_SERIAL_HEX_MAX];
	return json_string(revo_serial_format(s, buf));
}

json_t *cli_json_reason(int reason)
{
	const char *n = revo_reason_name(reason);
	return n ? json_string(n) : json_null();
}

void cli_cleanup(cli_t *cli)
{
	revo_issuers_free(cli->issuers, cli->n_issuers);
	cli->issuers = NULL;
	cli->n_issuers = 0;
	revo_store_close(cli->store);
	cli->store = NULL;
}
