/*
 * Private keys from files or PKCS#11 tokens. Tokens go through the libp11 engine: the
 * OpenSSL 3 PKCS#11 provider is not packaged in Debian 12, so this file uses the
 * (deprecated) ENGINE API, with the deprecation warnings silenced here only.
 */
#include "pki/key.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <openssl/engine.h>
#include <openssl/ui.h>

struct pass_ctx {
	const char *pass;
	bool asked;
};

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
	struct pass_ctx *pc = u;
	(void)rwflag;
	pc->asked = true;
	if (!pc->pass)
		return -1;
	int n = (int)strlen(pc->pass);
	if (n > size)
		n = size;
	memcpy(buf, pc->pass, (size_t)n);
	return n;
}

static int read_pass_file(const char *path, char *buf, size_t len, revo_errmsg_t *em)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return revo_err_set(em, REVO_EIO, "pass file %s: %s", path, strerror(errno));
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return REVO_OK;
}

static int load_pkcs11(const char *uri, EVP_PKEY **out, revo_errmsg_t *em)
{
	ENGINE *e = ENGINE_by_id("pkcs11");
	if (!e)
		return revo_err_set_ssl(em, REVO_ECRYPTO,
					"%s: the pkcs11 engine is not available (install "
					"libengine-pkcs11-openssl)",
					uri);
	const char *pin = getenv("REVO_PKCS11_PIN");
	bool uri_pin = strstr(uri, "pin-value=") || strstr(uri, "pin-source=");
	if (!uri_pin && !(pin && *pin)) {
		ENGINE_free(e);
		return revo_err_set(em, REVO_ECRYPTO,
				    "%s: no PIN: set REVO_PKCS11_PIN, or add pin-source to the URI",
				    uri);
	}
	/* libp11 prints its own diagnostics on stderr unless told not to */
	ENGINE_ctrl_cmd_string(e, "QUIET", NULL, 1);
	const char *module = getenv("REVO_PKCS11_MODULE");
	if (module && *module && !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0)) {
		ENGINE_free(e);
		return revo_err_set_ssl(em, REVO_ECRYPTO, "cannot use PKCS#11 module %s", module);
	}
	if (!uri_pin)
		ENGINE_ctrl_cmd_string(e, "PIN", pin, 0);
	if (!ENGINE_init(e)) {
		ENGINE_free(e);
		return revo_err_set_ssl(em, REVO_ECRYPTO, "%s: cannot initialise the pkcs11 engine",
					uri);
	}
	/* never prompt: a UI that reads nothing */
	EVP_PKEY *k = ENGINE_load_private_key(e, uri, (UI_METHOD *)UI_null(), NULL);
	ENGINE_finish(e);
	ENGINE_free(e);
	if (!k)
		return revo_err_set_ssl(em, REVO_ECRYPTO,
					"%s: cannot load the key from the token (wrong PIN, or no "
					"such object?)",
					uri);
	*out = k;
	return REVO_OK;
}

#pragma GCC diagnostic pop

int revo_key_load(const char *ref, const revo_key_opts_t *o, EVP_PKEY **out, revo_errmsg_t *em)
{
	ERR_clear_error();
	if (strncmp(ref, "pkcs11:", 7) == 0)
		return load_pkcs11(ref, out, em);

	struct stat sb;
	if (stat(ref, &sb) != 0)
		return revo_err_set(em, REVO_EIO, "key %s: %s", ref, strerror(errno));
	if ((sb.st_mode & 077) && !(o && o->force_perms))
		return revo_err_set(
		    em, REVO_EACCES,
		    "key %s is readable by group or others (mode %04o): chmod 600 it, "
		    "or pass --force to accept it",
		    ref, (unsigned)(sb.st_mode & 07777));
	char passbuf[1024];
	struct pass_ctx pc = {.pass = getenv("REVO_KEY_PASS")};
	if (o && o->pass_file) {
		int rc = read_pass_file(o->pass_file, passbuf, sizeof(passbuf), em);
		if (rc)
			return rc;
		pc.pass = passbuf;
	}
	BIO *b = BIO_new_file(ref, "rb");
	if (!b)
		return revo_err_set_ssl(em, REVO_EIO, "key %s: cannot read", ref);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, pass_cb, &pc);
	if (!k && !pc.asked) {
		/* not PEM: DER, PKCS#8 (possibly encrypted) or traditional */
		ERR_clear_error();
		BIO_reset(b);
		k = d2i_PKCS8PrivateKey_bio(b, NULL, pass_cb, &pc);
		if (!k && !pc.asked) {
			BIO_reset(b);
			k = d2i_PrivateKey_bio(b, NULL);
		}
	}
	BIO_free(b);
	OPENSSL_cleanse(passbuf, sizeof(passbuf));
	if (!k) {
		if (pc.asked && !pc.pass)
			return revo_err_set(
			    em, REVO_ECRYPTO,
			    "key %s is encrypted: set REVO_KEY_PASS or give --pass-file", ref);
		if (pc.asked)
			return revo_err_set(em, REVO_ECRYPTO, "key %s: wrong passphrase", ref);
		return revo_err_set_ssl(em, REVO_ECRYPTO, "key %s: not a private key", ref);
	}
	ERR_clear_error();
	*out = k;
	return REVO_OK;
}

const EVP_MD *revo_key_digest(EVP_PKEY *key)
{
	int id = EVP_PKEY_get_base_id(key);
	if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448)
		return NULL;
	if (id == EVP_PKEY_EC) {
		int bits = EVP_PKEY_get_bits(key);
		if (bits > 384)
			return EVP_sha512();
		if (bits > 256)
			return EVP_sha384();
	}
	return EVP_sha256();
}

int revo_key_matches(EVP_PKEY *key, X509 *cert, revo_errmsg_t *em)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	if (!pub)
		return revo_err_set_ssl(em, REVO_ECRYPTO, "certificate has no usable public key");
	int eq = EVP_PKEY_eq(key, pub);
	ERR_clear_error();
	if (eq == 1)
		return REVO_OK;
	if (eq == 0)
		return revo_err_set(em, REVO_ECRYPTO,
				    "the key does not match the issuer certificate");
	/* cannot compare (a token key): sign a random message and verify it */
	unsigned char msg[32], sig[1024];
	size_t siglen = sizeof(sig);
	RAND_bytes(msg, sizeof(msg));
	const EVP_MD *md = revo_key_digest(key);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestSignInit(c, NULL, md, NULL, key) == 1 &&
		 EVP_DigestSign(c, sig, &siglen, msg, sizeof(msg)) == 1;
	EVP_MD_CTX_free(c);
	c = EVP_MD_CTX_new();
	ok = ok && c && EVP_DigestVerifyInit(c, NULL, md, NULL, pub) == 1 &&
	     EVP_DigestVerify(c, sig, siglen, msg, sizeof(msg)) == 1;
	EVP_MD_CTX_free(c);
	ERR_clear_error();
	return ok ? REVO_OK
		  : revo_err_set(em, REVO_ECRYPTO, "the key does not match the issuer certificate");
}
