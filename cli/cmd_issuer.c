/*
 * revo init, revo issuer add, revo issuer list.
 *
 * An issuer is registered with its certificate and references to its keys; the key
 * files are checked to exist but never read: the store holds no key material.
 */
#include "cli/cli.h"

#include "pki/cert.h"
#include "pki/key.h"
#include "pki/timefmt.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_init(cli_t *cli, int argc, char **argv)
{
	int first;
	int r = cli_parse(cli, argc, argv, NULL, NULL, NULL, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	revo_errmsg_t em = {{0}};
	bool created = false;
	int rc = revo_store_init(cli->store_dir, &created, &em);
	if (rc)
		return cli_fail(cli, rc, &em);
	if (cli->json)
		return cli_json_print(cli, json_pack("{s:s, s:b, s:i}", "store", cli->store_dir,
						     "created", created, "schema_version",
						     REVO_STORE_SCHEMA_VERSION));
	printf("%s store %s (schema version %d)\n",
	       created ? "created" : "already initialised:", cli->store_dir,
	       REVO_STORE_SCHEMA_VERSION);
	return EXIT_OK;
}

static json_t *issuer_json(const revo_issuer_t *is)
{
	char subj[1024] = "", osubj[1024] = "", h1[65], h2[65], h3[65], h4[65];
	const unsigned char *p = is->cert_der;
	X509 *ca = d2i_X509(NULL, &p, (long)is->cert_len);
	int64_t not_after = 0;
	if (ca) {
		revo_name_text(X509_get_subject_name(ca), subj, sizeof(subj));
		revo_time_from_asn1(X509_get0_notAfter(ca), &not_after);
		X509_free(ca);
	}
	if (is->ocsp_cert_der) {
		p = is->ocsp_cert_der;
		X509 *oc = d2i_X509(NULL, &p, (long)is->ocsp_cert_len);
		if (oc) {
			revo_name_text(X509_get_subject_name(oc), osubj, sizeof(osubj));
			X509_free(oc);
		}
	}
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(is->id));
	json_object_set_new(o, "name", json_string(is->name));
	json_object_set_new(o, "subject", json_string(subj));
	json_object_set_new(o, "not_after", cli_json_time(not_after));
	json_object_set_new(o, "sha1_name_hash",
			    json_string(revo_hex(is->hashes.name_sha1, 20, h1)));
	json_object_set_new(o, "sha1_key_hash", json_string(revo_hex(is->hashes.key_sha1, 20, h2)));
	json_object_set_new(o, "sha256_name_hash",
			    json_string(revo_hex(is->hashes.name_sha256, 32, h3)));
	json_object_set_new(o, "sha256_key_hash",
			    json_string(revo_hex(is->hashes.key_sha256, 32, h4)));
	json_object_set_new(o, "key", json_string(is->key_ref));
	json_object_set_new(o, "ocsp_cert_subject",
			    is->ocsp_cert_der ? json_string(osubj) : json_null());
	json_object_set_new(o, "ocsp_key", cli_json_str(is->ocsp_key_ref));
	json_object_set_new(o, "crl_validity", json_integer(is->crl_validity));
	json_object_set_new(o, "crl_every", json_integer(is->crl_every));
	json_object_set_new(o, "ocsp_validity", json_integer(is->ocsp_validity));
	json_object_set_new(o, "created", cli_json_time(is->created));
	json_object_set_new(o, "crl_url", cli_json_str(is->crl_url));
	json_object_set_new(o, "delta_url", cli_json_str(is->delta_url));
	return o;
}

static void issuer_print(const revo_issuer_t *is)
{
	json_t *o = issuer_json(is);
	printf("%s (id %u)\n", is->name, is->id);
	printf("  subject        %s\n", json_string_value(json_object_get(o, "subject")));
	printf("  not after      %s\n", json_string_value(json_object_get(o, "not_after")));
	printf("  key            %s\n", is->key_ref);
	if (is->ocsp_cert_der)
		printf("  ocsp responder %s, key %s\n",
		       json_string_value(json_object_get(o, "ocsp_cert_subject")),
		       is->ocsp_key_ref ? is->ocsp_key_ref : "-");
	printf("  crl validity   %llds, every %llds; ocsp validity %llds\n",
	       (long long)is->crl_validity, (long long)is->crl_every, (long long)is->ocsp_validity);
	printf("  sha256 name    %s\n", json_string_value(json_object_get(o, "sha256_name_hash")));
	printf("  sha256 key     %s\n", json_string_value(json_object_get(o, "sha256_key_hash")));
	json_decref(o);
}

struct issuer_add_opts {
	const char *cert, *key, *ocsp_cert, *ocsp_key;
	const char *crl_validity, *crl_every, *ocsp_validity;
	const char *crl_url, *delta_url;
	bool no_ocsp;
};

static int issuer_add_opt(cli_t *cli, int opt, const char *arg, void *vctx)
{
	struct issuer_add_opts *o = vctx;
	(void)cli;
	switch (opt) {
	case 'c': o->cert = arg; break;
	case 'k': o->key = arg; break;
	case 'C': o->ocsp_cert = arg; break;
	case 'K': o->ocsp_key = arg; break;
	case 'v': o->crl_validity = arg; break;
	case 'e': o->crl_every = arg; break;
	case 'V': o->ocsp_validity = arg; break;
	case 'u': o->crl_url = arg; break;
	case 'U': o->delta_url = arg; break;
	case 'N': o->no_ocsp = true; break;
	}
	return 0;
}

/*
 * When the key file can be read now (not encrypted, or REVO_KEY_PASS set), check that it
 * is @cert's key, so that a mismatch shows at registration rather than at the first CRL.
 */
static int check_key_matches(cli_t *cli, const char *opt, const char *path, X509 *cert)
{
	if (strncmp(path, "pkcs11:", 7) == 0)
		return 0;
	revo_key_opts_t ko = {.force_perms = true};
	revo_errmsg_t em = {{0}};
	EVP_PKEY *k = NULL;
	if (revo_key_load(path, &ko, &k, &em) != 0)
		return 0; /* encrypted without a passphrase here: checked when first used */
	int rc = revo_key_matches(k, cert, &em);
	EVP_PKEY_free(k);
	return rc ? cli_failf(cli, "--%s %s is not the key of the certificate", opt, path) : 0;
}

/* A key reference: a pkcs11: URI as given, or a readable file, stored as absolute path. */
static int key_ref(cli_t *cli, const char *opt, const char *ref, char **out)
{
	if (strncmp(ref, "pkcs11:", 7) == 0) {
		*out = strdup(ref);
	} else {
		char path[PATH_MAX];
		if (!realpath(ref, path))
			return cli_failf(cli, "--%s %s: %s", opt, ref, strerror(errno));
		if (access(path, R_OK) != 0)
			return cli_failf(cli, "--%s %s: %s", opt, ref, strerror(errno));
		*out = strdup(path);
	}
	return *out ? 0 : cli_failf(cli, "out of memory");
}

static int load_one_cert(cli_t *cli, const char *opt, const char *path, X509 **out)
{
	revo_errmsg_t em = {{0}};
	STACK_OF(X509) * sk;
	int rc = revo_cert_load(path, &sk, &em);
	if (rc)
		return cli_failf(cli, "--%s: %s", opt, em.msg);
	if (sk_X509_num(sk) != 1) {
		int n = sk_X509_num(sk);
		sk_X509_pop_free(sk, X509_free);
		return cli_failf(cli, "--%s: %s holds %d certificates; give exactly one", opt, path,
				 n);
	}
	*out = sk_X509_shift(sk);
	sk_X509_free(sk);
	return 0;
}

static int der_of(X509 *x, uint8_t **der, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_X509(x, &p);
	if (n <= 0)
		return -1;
	*der = p;
	*len = (size_t)n;
	return 0;
}

/* The validity options of @o into @is (its values are the defaults); checks their order. */
static int validities(cli_t *cli, const struct issuer_add_opts *o, revo_issuer_t *is)
{
	int r;
	if ((o->crl_validity &&
	     (r = cli_duration_arg(cli, "crl-validity", o->crl_validity, &is->crl_validity))) ||
	    (o->crl_every &&
	     (r = cli_duration_arg(cli, "crl-every", o->crl_every, &is->crl_every))) ||
	    (o->ocsp_validity &&
	     (r = cli_duration_arg(cli, "ocsp-validity", o->ocsp_validity, &is->ocsp_validity))))
		return r;
	if (is->crl_every >= is->crl_validity)
		return cli_failf(cli,
				 "--crl-every (%llds) must be shorter than --crl-validity (%llds), "
				 "or CRLs would expire before the next one",
				 (long long)is->crl_every, (long long)is->crl_validity);
	return 0;
}

/* A delegated responder certificate: issued by @ca, with id-kp-OCSPSigning. */
static int load_ocsp_cert(cli_t *cli, const char *path, X509 *ca, X509 **out)
{
	X509 *oc;
	if (load_one_cert(cli, "ocsp-cert", path, &oc))
		return EXIT_FAIL;
	if (X509_NAME_cmp(X509_get_issuer_name(oc), X509_get_subject_name(ca)) != 0 ||
	    X509_verify(oc, X509_get0_pubkey(ca)) != 1) {
		ERR_clear_error();
		X509_free(oc);
		return cli_failf(cli, "--ocsp-cert %s is not signed by the issuer's CA", path);
	}
	if (!(X509_get_extension_flags(oc) & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(oc) & XKU_OCSP_SIGN)) {
		X509_free(oc);
		return cli_failf(cli, "--ocsp-cert %s lacks extended key usage id-kp-OCSPSigning",
				 path);
	}
	*out = oc;
	return 0;
}

/* --crl-url and --delta-url are http(s):// or ldap:// URLs; "" (which removes one) only
 * where @allow_empty (issuer set). */
static int check_urls(cli_t *cli, const struct issuer_add_opts *o, bool allow_empty)
{
	for (int k = 0; k < 2; k++) {
		const char *u = k ? o->delta_url : o->crl_url;
		if (u && (*u || !allow_empty) && strncmp(u, "http://", 7) != 0 &&
		    strncmp(u, "https://", 8) != 0 && strncmp(u, "ldap://", 7) != 0)
			return cli_failf(cli, "--%s '%s' is not an http(s):// or ldap:// URL",
					 k ? "delta-url" : "crl-url", u);
	}
	return 0;
}

int cmd_issuer_add(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},
	    {"ocsp-cert", required_argument, NULL, 'C'},
	    {"ocsp-key", required_argument, NULL, 'K'},
	    {"crl-validity", required_argument, NULL, 'v'},
	    {"crl-every", required_argument, NULL, 'e'},
	    {"ocsp-validity", required_argument, NULL, 'V'},
	    {"crl-url", required_argument, NULL, 'u'},
	    {"delta-url", required_argument, NULL, 'U'},
	    {0},
	};
	struct issuer_add_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, opts, issuer_add_opt, &o, &first);
	if (r >= 0)
		return r;
	if (first >= argc)
		return cli_misuse(cli, "missing issuer NAME");
	if (first + 1 < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first + 1]);
	if (!o.cert || !o.key)
		return cli_misuse(cli, "--cert and --key are required");
	if (!o.ocsp_cert != !o.ocsp_key)
		return cli_misuse(cli, "--ocsp-cert and --ocsp-key go together");

	revo_issuer_t is = {
	    .crl_validity = 7 * 86400, .crl_every = 3600, .ocsp_validity = 4 * 86400};
	const char *name = argv[first];
	if (strlen(name) > REVO_ISSUER_NAME_MAX)
		return cli_failf(cli, "issuer name '%s' is longer than %d characters", name,
				 REVO_ISSUER_NAME_MAX);
	memcpy(is.name, name, strlen(name) + 1);
	if ((r = validities(cli, &o, &is)) || (r = check_urls(cli, &o, false)))
		return r;

	X509 *ca = NULL, *oc = NULL;
	int ret = EXIT_FAIL;
	revo_errmsg_t em = {{0}};
	if ((r = load_one_cert(cli, "cert", o.cert, &ca)) != 0)
		return r;
	if (!(X509_get_extension_flags(ca) & EXFLAG_CA)) {
		ret = cli_failf(
		    cli, "--cert %s is not a CA certificate (basicConstraints cA is not TRUE)",
		    o.cert);
		goto out;
	}
	if (o.ocsp_cert && load_ocsp_cert(cli, o.ocsp_cert, ca, &oc))
		goto out;
	if ((r = revo_cert_issuer_hashes(ca, &is.hashes, &em)) != 0) {
		cli_fail(cli, r, &em);
		goto out;
	}
	if (key_ref(cli, "key", o.key, &is.key_ref) ||
	    (o.ocsp_key && key_ref(cli, "ocsp-key", o.ocsp_key, &is.ocsp_key_ref)))
		goto out;
	if (check_key_matches(cli, "key", is.key_ref, ca) ||
	    (oc && check_key_matches(cli, "ocsp-key", is.ocsp_key_ref, oc)))
		goto out;
	if (der_of(ca, &is.cert_der, &is.cert_len) ||
	    (oc && der_of(oc, &is.ocsp_cert_der, &is.ocsp_cert_len))) {
		cli_failf(cli, "cannot encode certificate");
		goto out;
	}
	is.crl_url = o.crl_url && *o.crl_url ? (char *)o.crl_url : NULL;
	is.delta_url = o.delta_url && *o.delta_url ? (char *)o.delta_url : NULL;
	if (cli_open_store(cli, false))
		goto out;
	if ((r = revo_store_issuer_add(cli->store, &is, &is.id, &em)) != 0) {
		cli_fail(cli, r, &em);
		goto out;
	}
	is.created = revo_now();
	if (cli->json) {
		ret = cli_json_print(cli, issuer_json(&is));
	} else {
		printf("added issuer ");
		issuer_print(&is);
		ret = EXIT_OK;
	}
out:
	X509_free(ca);
	X509_free(oc);
	OPENSSL_free(is.cert_der);
	OPENSSL_free(is.ocsp_cert_der);
	free(is.key_ref);
	free(is.ocsp_key_ref);
	return ret;
}

int cmd_issuer_list(cli_t *cli, int argc, char **argv)
{
	int first;
	int r = cli_parse(cli, argc, argv, NULL, NULL, NULL, &first);
	if (r >= 0)
		return r;
	if (first < argc)
		return cli_misuse(cli, "unexpected argument '%s'", argv[first]);
	if ((r = cli_open_store(cli, true)) || (r = cli_load_issuers(cli)))
		return r;
	if (cli->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < cli->n_issuers; i++)
			json_array_append_new(a, issuer_json(&cli->issuers[i]));
		return cli_json_print(cli, a);
	}
	if (cli->n_issuers == 0)
		printf("no issuers (see 'revo issuer add')\n");
	for (size_t i = 0; i < cli->n_issuers; i++)
		issuer_print(&cli->issuers[i]);
	return EXIT_OK;
}

/*
 * revo issuer set: change an issuer's keys and settings (rotate the delegated responder
 * certificate, move the CA key to a token, change validities). Its certificate stays.
 */
int cmd_issuer_set(cli_t *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"ocsp-cert", required_argument, NULL, 'C'},
	    {"ocsp-key", required_argument, NULL, 'K'},
	    {"no-ocsp-signer", no_argument, NULL, 'N'},
	    {"crl-validity", required_argument, NULL, 'v'},
	    {"crl-every", required_argument, NULL, 'e'},
	    {"ocsp-validity", required_argument, NULL, 'V'},
	    {"crl-url", required_argument, NULL, 'u'},
	    {"delta-url", required_argument, NULL, 'U'},
	    {0},
	};
	struct issuer_add_opts o = {0};
	int first;
	int r = cli_parse(cli, argc, argv, opts, issuer_add_opt, &o, &first);
	if (r >= 0)
		return r;
	if (argc - first != 1)
		return cli_misuse(cli, "give the issuer NAME");
	if (!o.ocsp_cert != !o.ocsp_key)
		return cli_misuse(cli, "--ocsp-cert and --ocsp-key go together");
	if (o.no_ocsp && o.ocsp_cert)
		return cli_misuse(cli, "--no-ocsp-signer and --ocsp-cert do not go together");
	if ((r = cli_open_store(cli, false)) || (r = cli_load_issuers(cli)))
		return r;
	const revo_issuer_t *cur = cli_issuer_pick(cli, argv[first], &r);
	if (!cur)
		return r;
	revo_issuer_t is = *cur; /* fields borrowed from cli->issuers unless replaced */
	char *key = NULL, *okey = NULL;
	uint8_t *oder = NULL;
	X509 *ca = NULL, *oc = NULL;
	int ret = EXIT_FAIL;
	revo_errmsg_t em = {{0}};
	const unsigned char *p = cur->cert_der;
	ca = d2i_X509(NULL, &p, (long)cur->cert_len);
	if (validities(cli, &o, &is) || check_urls(cli, &o, true))
		goto out;
	if (o.key) {
		if (key_ref(cli, "key", o.key, &key) || check_key_matches(cli, "key", key, ca))
			goto out;
		is.key_ref = key;
	}
	if (o.no_ocsp) {
		is.ocsp_cert_der = NULL;
		is.ocsp_cert_len = 0;
		is.ocsp_key_ref = NULL;
	}
	if (o.ocsp_cert) {
		if (load_ocsp_cert(cli, o.ocsp_cert, ca, &oc))
			goto out;
		if (key_ref(cli, "ocsp-key", o.ocsp_key, &okey) ||
		    check_key_matches(cli, "ocsp-key", okey, oc) ||
		    der_of(oc, &oder, &is.ocsp_cert_len))
			goto out;
		is.ocsp_cert_der = oder;
		is.ocsp_key_ref = okey;
	}
	/* an empty URL removes it */
	if (o.crl_url)
		is.crl_url = *o.crl_url ? (char *)o.crl_url : NULL;
	if (o.delta_url)
		is.delta_url = *o.delta_url ? (char *)o.delta_url : NULL;
	if ((r = revo_store_issuer_set(cli->store, &is, cli->cmdline, &em)) != 0) {
		cli_fail(cli, r, &em);
		goto out;
	}
	if (cli->json) {
		ret = cli_json_print(cli, issuer_json(&is));
	} else {
		printf("updated issuer ");
		issuer_print(&is);
		ret = EXIT_OK;
	}
out:
	X509_free(ca);
	X509_free(oc);
	OPENSSL_free(oder);
	free(key);
	free(okey);
	return ret;
}
