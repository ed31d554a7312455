/*
 * Streaming CRL builder.
 *
 * Pass 1 walks the issuer's revocations in one LMDB snapshot and adds up the size of
 * revokedCertificates; pass 2 walks the same snapshot again and writes the DER into a
 * temporary file through a fixed buffer, feeding every TBSCertList octet to
 * EVP_DigestSignUpdate on the way (EdDSA cannot stream: its one-shot signature reads the
 * written TBS back through mmap). Memory therefore does not depend on the number of
 * entries. The outer SEQUENCE header is reserved for the longest signature the key can
 * make and rewritten once the signature is known. The finished file is verified with the
 * issuer certificate's public key before it is fsynced and renamed over the output.
 */
#include "crl/crl.h"

#include "pki/cert.h"
#include "pki/der.h"
#include "pki/key.h"
#include "pki/reason.h"
#include "pki/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_BUF   (256u << 10)
#define ENTRY_MAX 128
/*
 * CRLs up to this size are also parsed back with OpenSSL as a structural check. The
 * bound keeps that check's heap constant (d2i allocates per entry); it covers every CRL
 * that fits Roles Anywhere (about 160 kB of DER). Larger CRLs get the signature check.
 */
#define PARSE_CHECK_MAX (256u << 10)

typedef struct unheld {
	revo_serial_t serial;
	int64_t held_at;
} unheld_t;

typedef struct builder {
	const char *out_path;
	const revo_issuer_t *is;
	const revo_crl_opts_t *o;
	revo_snapshot_t *snap;
	revo_crl_state_t state;
	int64_t prune_before;
	unheld_t *unheld; /* delta: certificates taken off hold since the base */
	size_t n_unheld, cap_unheld;
	/* pass 1 */
	size_t count, pruned, entries_len;
	/* pass 2 */
	int fd;
	EVP_MD_CTX *mctx;
	bool stream_sign;
	uint8_t *buf;
	size_t blen;
	int err;
	revo_errmsg_t *em;
} builder_t;

static const uint8_t OID_AKI[] = {0x06, 0x03, 0x55, 0x1d, 0x23};
static const uint8_t OID_CRL_NUMBER[] = {0x06, 0x03, 0x55, 0x1d, 0x14};
static const uint8_t OID_DELTA[] = {0x06, 0x03, 0x55, 0x1d, 0x1b};
static const uint8_t OID_IDP[] = {0x06, 0x03, 0x55, 0x1d, 0x1c};
static const uint8_t OID_FRESHEST[] = {0x06, 0x03, 0x55, 0x1d, 0x2e};
static const uint8_t CRITICAL[] = {0x01, 0x01, 0xff};

size_t revo_crl_crldata_len(size_t der_size)
{
	size_t b64 = 4 * ((der_size + 2) / 3);
	size_t lines = (b64 + 63) / 64;
	size_t pem = sizeof("-----BEGIN X509 CRL-----\n") - 1 + b64 + lines +
		     sizeof("-----END X509 CRL-----\n") - 1;
	return 4 * ((pem + 2) / 3);
}

/* One revokedCertificates entry at @out (ENTRY_MAX octets); returns its size. */
static size_t encode_entry(uint8_t *out, const revo_serial_t *s, int64_t at, int reason,
			   int64_t invalidity)
{
	uint8_t body[ENTRY_MAX], ext[64];
	size_t n = 0, e = 0;
	n += revo_der_serial(body, s);
	n += revo_der_time(body + n, at, false);
	if (reason != REVO_REASON_UNSPECIFIED) {
		static const uint8_t r[] = {0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d,
					    0x15, 0x04, 0x03, 0x0a, 0x01};
		memcpy(ext, r, sizeof(r));
		e = sizeof(r);
		ext[e++] = (uint8_t)reason;
	}
	if (invalidity) {
		static const uint8_t h[] = {0x30, 0x18, 0x06, 0x03, 0x55, 0x1d, 0x18, 0x04, 0x11};
		memcpy(ext + e, h, sizeof(h));
		e += sizeof(h);
		e += revo_der_time(ext + e, invalidity, true);
	}
	if (e) {
		n += revo_der_hdr(body + n, REVO_DER_SEQUENCE, e);
		memcpy(body + n, ext, e);
		n += e;
	}
	size_t h = revo_der_hdr(out, REVO_DER_SEQUENCE, n);
	memcpy(out + h, body, n);
	return h + n;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void flush(builder_t *b)
{
	if (b->err || b->blen == 0)
		return;
	if (b->stream_sign && EVP_DigestSignUpdate(b->mctx, b->buf, b->blen) != 1)
		b->err = revo_err_set_ssl(b->em, REVO_ECRYPTO, "signing failed");
	else if (write_all(b->fd, b->buf, b->blen) != 0)
		b->err = revo_err_set(b->em, REVO_EIO, "cannot write %s: %s", b->out_path,
				      strerror(errno));
	b->blen = 0;
}

static void emit(builder_t *b, const void *p, size_t n)
{
	const uint8_t *s = p;
	while (n && !b->err) {
		size_t k = OUT_BUF - b->blen < n ? OUT_BUF - b->blen : n;
		memcpy(b->buf + b->blen, s, k);
		b->blen += k;
		s += k;
		n -= k;
		if (b->blen == OUT_BUF)
			flush(b);
	}
}

/* Is this revocation on the CRL? */
static bool wanted(builder_t *b, const revo_revocation_t *rv, bool count_pruned)
{
	if (b->o->delta && rv->seq <= b->state.base_seq)
		return false;
	if (!b->o->keep_expired && b->prune_before && rv->cert_not_after &&
	    rv->cert_not_after < b->prune_before && rv->seq <= b->state.base_seq) {
		if (count_pruned)
			b->pruned++;
		return false;
	}
	return true;
}

static int pass1_cb(void *ctx, const revo_revocation_t *rv)
{
	builder_t *b = ctx;
	uint8_t tmp[ENTRY_MAX];
	if (!wanted(b, rv, true))
		return 0;
	b->entries_len +=
	    encode_entry(tmp, &rv->serial, rv->revoked_at, rv->reason, rv->invalidity);
	b->count++;
	return 0;
}

static int pass2_cb(void *ctx, const revo_revocation_t *rv)
{
	builder_t *b = ctx;
	uint8_t tmp[ENTRY_MAX];
	if (!wanted(b, rv, false))
		return 0;
	emit(b, tmp, encode_entry(tmp, &rv->serial, rv->revoked_at, rv->reason, rv->invalidity));
	return b->err;
}

/* Delta CRLs: collect certificates taken off hold since the base and not revoked again. */
static int unhold_cb(void *ctx, const revo_journal_entry_t *e)
{
	builder_t *b = ctx;
	if (e->op != REVO_OP_UNHOLD || e->issuer_id != b->is->id || !e->has_serial)
		return 0;
	for (size_t i = 0; i < b->n_unheld; i++)
		if (revo_serial_cmp(&b->unheld[i].serial, &e->serial) == 0)
			return 0;
	revo_revocation_t now;
	int rc = revo_snapshot_revocation(b->snap, b->is->id, &e->serial, &now, NULL);
	if (rc == 0)
		return 0; /* revoked again: the revocation walk lists it */
	if (rc != REVO_ENOTFOUND)
		return rc;
	if (b->n_unheld == b->cap_unheld) {
		size_t cap = b->cap_unheld ? b->cap_unheld * 2 : 16;
		unheld_t *nu = realloc(b->unheld, cap * sizeof(*nu));
		if (!nu)
			return REVO_ENOMEM;
		b->unheld = nu;
		b->cap_unheld = cap;
	}
	b->unheld[b->n_unheld++] = (unheld_t){.serial = e->serial, .held_at = e->revoked_at};
	return 0;
}

/* The AlgorithmIdentifier the signing context will produce, DER, into @out. */
static int sig_algorithm(EVP_PKEY_CTX *pctx, EVP_PKEY *key, const EVP_MD *md, revo_der_t *out,
			 revo_errmsg_t *em)
{
	unsigned char aid[256];
	OSSL_PARAM params[] = {
	    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, aid, sizeof(aid)),
	    OSSL_PARAM_END,
	};
	if (pctx && EVP_PKEY_CTX_get_params(pctx, params) == 1 && OSSL_PARAM_modified(&params[0]) &&
	    params[0].return_size > 0) {
		revo_der_raw(out, aid, params[0].return_size);
		return REVO_OK;
	}
	ERR_clear_error();
	/* legacy keys (a PKCS#11 token through the engine): ECDSA and RSA PKCS#1 v1.5 */
	int sig_nid, base = EVP_PKEY_get_base_id(key);
	if (!md || !OBJ_find_sigid_by_algs(&sig_nid, EVP_MD_get_type(md), base))
		return revo_err_set(em, REVO_ECRYPTO, "no signature algorithm for this key type");
	X509_ALGOR *a = X509_ALGOR_new();
	unsigned char *der = NULL;
	int n = -1;
	if (a && X509_ALGOR_set0(a, OBJ_nid2obj(sig_nid),
				 base == EVP_PKEY_RSA ? V_ASN1_NULL : V_ASN1_UNDEF, NULL))
		n = i2d_X509_ALGOR(a, &der);
	X509_ALGOR_free(a);
	if (n <= 0)
		return revo_err_set_ssl(em, REVO_ECRYPTO, "cannot encode the signature algorithm");
	revo_der_raw(out, der, (size_t)n);
	OPENSSL_free(der);
	return REVO_OK;
}

static int setup_pss(EVP_PKEY_CTX *pctx, EVP_PKEY *key, bool want)
{
	int id = EVP_PKEY_get_base_id(key);
	if (id == EVP_PKEY_RSA_PSS || (id == EVP_PKEY_RSA && want))
		return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
		       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
	return 1;
}

/* One extension: SEQUENCE { oid, [critical], OCTET STRING { value } } */
static void add_ext(revo_der_t *exts, const uint8_t *oid, size_t oidlen, bool critical,
		    const revo_der_t *value)
{
	revo_der_t e;
	revo_der_init(&e);
	revo_der_raw(&e, oid, oidlen);
	if (critical)
		revo_der_raw(&e, CRITICAL, sizeof(CRITICAL));
	revo_der_wrap(&e, REVO_DER_OCTET_STRING, value);
	revo_der_wrap(exts, REVO_DER_SEQUENCE, &e);
	revo_der_free(&e);
}

/* DistributionPointName fullName with one URI: [0] { [0] { [6] uri } } */
static void add_dp_name(revo_der_t *out, const char *uri)
{
	revo_der_t gn, full;
	revo_der_init(&gn);
	revo_der_init(&full);
	revo_der_tlv(&gn, REVO_DER_CTX_PRIM(6), uri, strlen(uri));
	revo_der_wrap(&full, REVO_DER_CTX(0), &gn);
	revo_der_wrap(out, REVO_DER_CTX(0), &full);
	revo_der_free(&gn);
	revo_der_free(&full);
}

static void build_extensions(const builder_t *b, X509 *ca, uint64_t number, revo_der_t *out)
{
	revo_der_t exts, v, tmp;
	revo_der_init(&exts);
	revo_der_init(&v);
	revo_der_init(&tmp);

	/* Authority Key Identifier: the CA's SKI, else SHA-1 of its public key */
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
	if (ski)
		revo_der_tlv(&tmp, REVO_DER_CTX_PRIM(0), ASN1_STRING_get0_data(ski),
			     (size_t)ASN1_STRING_length(ski));
	else
		revo_der_tlv(&tmp, REVO_DER_CTX_PRIM(0), b->is->hashes.key_sha1, 20);
	revo_der_wrap(&v, REVO_DER_SEQUENCE, &tmp);
	add_ext(&exts, OID_AKI, sizeof(OID_AKI), false, &v);

	revo_der_reset(&v);
	revo_der_uint(&v, number);
	add_ext(&exts, OID_CRL_NUMBER, sizeof(OID_CRL_NUMBER), false, &v);

	if (b->o->delta) {
		revo_der_reset(&v);
		revo_der_uint(&v, b->state.base_number);
		add_ext(&exts, OID_DELTA, sizeof(OID_DELTA), true, &v);
	}
	/*
	 * RFC 5280 5.2.4: a delta applies to a full CRL of the same scope, that is the same
	 * Issuing Distribution Point (or none in both): both carry the full CRL's URL. Where
	 * deltas are published is said by Freshest CRL, in full CRLs only.
	 */
	const char *idp = b->is->crl_url;
	if (idp) {
		revo_der_reset(&v);
		revo_der_reset(&tmp);
		add_dp_name(&tmp, idp);
		revo_der_wrap(&v, REVO_DER_SEQUENCE, &tmp);
		add_ext(&exts, OID_IDP, sizeof(OID_IDP), true, &v);
	}
	if (!b->o->delta && b->is->delta_url) {
		revo_der_t dp;
		revo_der_init(&dp);
		revo_der_reset(&v);
		revo_der_reset(&tmp);
		add_dp_name(&dp, b->is->delta_url);
		revo_der_wrap(&tmp, REVO_DER_SEQUENCE, &dp);
		revo_der_wrap(&v, REVO_DER_SEQUENCE, &tmp);
		add_ext(&exts, OID_FRESHEST, sizeof(OID_FRESHEST), false, &v);
		revo_der_free(&dp);
	}
	revo_der_reset(&tmp);
	revo_der_wrap(&tmp, REVO_DER_SEQUENCE, &exts);
	revo_der_wrap(out, REVO_DER_CTX(0), &tmp);
	if (exts.oom || v.oom || tmp.oom)
		out->oom = true;
	revo_der_free(&exts);
	revo_der_free(&v);
	revo_der_free(&tmp);
}

static int fsync_dir(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return -1;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* Copy [off, off+n) of @src to the end of @dst. */
static int copy_range(int src, off_t off, size_t n, int dst)
{
	uint8_t buf[65536];
	while (n) {
		ssize_t r = pread(src, buf, n < sizeof(buf) ? n : sizeof(buf), off);
		if (r <= 0)
			return -1;
		if (write_all(dst, buf, (size_t)r) != 0)
			return -1;
		off += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Remove OUT.tmp.PID.* and OUT.pem.PID.* files whose process no longer exists. */
static void remove_stale_temps(const char *out_path)
{
	char *copy = strdup(out_path), *copy2 = strdup(out_path);
	if (!copy || !copy2) {
		free(copy);
		free(copy2);
		return;
	}
	const char *dir = dirname(copy), *base = basename(copy2);
	size_t bl = strlen(base);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		if (strncmp(nm, base, bl) != 0 ||
		    (strncmp(nm + bl, ".tmp.", 5) != 0 && strncmp(nm + bl, ".pem.", 5) != 0))
			continue;
		char *end;
		long pid = strtol(nm + bl + 5, &end, 10);
		if (pid <= 0 || *end != '.' || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		char full[4096];
		if (snprintf(full, sizeof(full), "%s/%s", dir, nm) < (int)sizeof(full))
			unlink(full);
	}
	if (d)
		closedir(d);
	free(copy);
	free(copy2);
}

/* The output must be absent or a regular file: never replace a symlink or a device. */
static int check_out_path(const char *out_path, revo_errmsg_t *em)
{
	struct stat sb;
	if (!*out_path)
		return revo_err_set(em, REVO_EINVAL, "the output path is empty");
	if (lstat(out_path, &sb) == 0 && !S_ISREG(sb.st_mode))
		return revo_err_set(em, REVO_EINVAL,
				    "%s exists and is not a regular file: refusing to replace it",
				    out_path);
	return REVO_OK;
}

static int make_temp(const char *out_path, const char *suffix, char **path, int *fd,
		     revo_errmsg_t *em)
{
	size_t n = strlen(out_path) + strlen(suffix) + 40;
	*path = malloc(n);
	if (!*path)
		return REVO_ENOMEM;
	/* the pid in the name lets a later build remove what a killed one left */
	snprintf(*path, n, "%s%s.%ld.XXXXXX", out_path, suffix, (long)getpid());
	*fd = mkostemp(*path, O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;
		free(*path);
		*path = NULL;
		return revo_err_set(em, e == EACCES || e == EROFS ? REVO_EACCES : REVO_EIO,
				    "cannot write %s: %s", out_path, strerror(e));
	}
	fchmod(*fd, 0644);
	return REVO_OK;
}

/* Write the PEM form of @der to @fd. */
static int write_pem(int fd, const uint8_t *der, size_t n)
{
	static const char head[] = "-----BEGIN X509 CRL-----\n",
			  tail[] = "-----END X509 CRL-----\n";
	if (write_all(fd, (const uint8_t *)head, sizeof(head) - 1))
		return -1;
	uint8_t line[66];
	for (size_t off = 0; off < n; off += 48) {
		size_t k = n - off < 48 ? n - off : 48;
		int w = EVP_EncodeBlock(line, der + off, (int)k);
		line[w] = '\n';
		if (write_all(fd, line, (size_t)w + 1))
			return -1;
	}
	return write_all(fd, (const uint8_t *)tail, sizeof(tail) - 1);
}

static int verify_crl(const uint8_t *der, size_t n, size_t tbs_off, size_t tbs_len,
		      const uint8_t *sig, size_t siglen, X509 *ca, EVP_PKEY *key, const EVP_MD *md,
		      bool pss, revo_errmsg_t *em)
{
	EVP_MD_CTX *v = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = v && EVP_DigestVerifyInit(v, &pctx, md, NULL, X509_get0_pubkey(ca)) == 1 &&
		 setup_pss(pctx, key, pss) &&
		 EVP_DigestVerify(v, sig, siglen, der + tbs_off, tbs_len) == 1;
	EVP_MD_CTX_free(v);
	if (!ok)
		return revo_err_set_ssl(em, REVO_ECRYPTO,
					"the new CRL's signature does not verify with the issuer "
					"certificate; nothing written");
	if (n <= PARSE_CHECK_MAX) {
		const unsigned char *p = der;
		X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)n);
		ok = crl && p == der + n && X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1;
		X509_CRL_free(crl);
		if (!ok)
			return revo_err_set_ssl(em, REVO_EINTERNAL,
						"the new CRL does not parse back; nothing written");
	}
	return REVO_OK;
}

int revo_crl_build(revo_store_t *st, const revo_issuer_t *is, EVP_PKEY *key,
		   const revo_crl_opts_t *o, const char *out_path, revo_crl_info_t *info,
		   revo_errmsg_t *em)
{
	builder_t b = {.out_path = out_path, .is = is, .o = o, .fd = -1, .em = em};
	X509 *ca = NULL;
	char *tmp_path = NULL, *pem_path = NULL;
	int pem_fd = -1, rc;
	uint8_t *map = NULL;
	size_t map_len = 0;
	revo_der_t head, exts, aid;
	revo_der_init(&head);
	revo_der_init(&exts);
	revo_der_init(&aid);

	const unsigned char *cp = is->cert_der;
	ca = d2i_X509(NULL, &cp, (long)is->cert_len);
	if (!ca) {
		rc = revo_err_set(em, REVO_ECORRUPT, "issuer '%s' has an unreadable certificate",
				  is->name);
		goto out;
	}
	if ((rc = revo_key_matches(key, ca, em)) != 0) {
		revo_err_set(em, rc, "the key does not match issuer '%s''s certificate", is->name);
		goto out;
	}
	const EVP_MD *md = revo_key_digest(key);
	EVP_PKEY_CTX *pctx = NULL;
	b.mctx = EVP_MD_CTX_new();
	if (!b.mctx || EVP_DigestSignInit(b.mctx, &pctx, md, NULL, key) != 1 ||
	    !setup_pss(pctx, key, o->rsa_pss)) {
		rc = revo_err_set_ssl(em, REVO_ECRYPTO, "cannot sign with this key");
		goto out;
	}
	if ((rc = sig_algorithm(pctx, key, md, &aid, em)) != 0)
		goto out;
	b.stream_sign = md != NULL;

	if ((rc = revo_store_snapshot(st, &b.snap, em)) != 0)
		goto out;
	if ((rc = revo_snapshot_crl_state(b.snap, is->id, &b.state, em)) != 0)
		goto out;
	if (o->delta && b.state.base_number == 0) {
		rc = revo_err_set(em, REVO_ESTATE,
				  "issuer '%s' has no full CRL yet: build one before a delta",
				  is->name);
		goto out;
	}
	/* entries of certificates expired before the last full CRL, and listed on it */
	b.prune_before = b.state.base_this_update;
	if ((rc = check_out_path(out_path, em)) != 0)
		goto out;
	remove_stale_temps(out_path);
	if ((rc = make_temp(out_path, ".tmp", &tmp_path, &b.fd, em)) != 0)
		goto out;

	/* pass 1: size the entries */
	if ((rc = revo_snapshot_revoked(b.snap, is->id, pass1_cb, &b, em)) != 0)
		goto out;
	if (o->delta) {
		if ((rc = revo_snapshot_journal(b.snap, b.state.base_seq, unhold_cb, &b, em)) != 0)
			goto out;
		uint8_t tmp[ENTRY_MAX];
		for (size_t i = 0; i < b.n_unheld; i++)
			b.entries_len += encode_entry(tmp, &b.unheld[i].serial, b.unheld[i].held_at,
						      REVO_REASON_REMOVE_FROM_CRL, 0);
	}

	/* the CRL number: only now, after every check that can fail on bad input */
	uint64_t number;
	if ((rc = revo_store_crl_allocate(st, is->id, &number, em)) != 0)
		goto out;

	int64_t now = o->now ? o->now : revo_now();
	int64_t next = now + is->crl_validity;
	uint8_t t[32];
	static const uint8_t version[] = {0x02, 0x01, 0x01};
	revo_der_raw(&head, version, sizeof(version));
	revo_der_raw(&head, aid.p, aid.len);
	const unsigned char *name_der = NULL;
	size_t name_len = 0;
	X509_NAME_get0_der(X509_get_subject_name(ca), &name_der, &name_len);
	revo_der_raw(&head, name_der, name_len);
	revo_der_raw(&head, t, revo_der_time(t, now, false));
	revo_der_raw(&head, t, revo_der_time(t, next, false));
	size_t n_entries = b.count + b.n_unheld;
	if (n_entries) {
		revo_der_raw(&head, t, revo_der_hdr(t, REVO_DER_SEQUENCE, b.entries_len));
	}
	build_extensions(&b, ca, number, &exts);
	if (head.oom || exts.oom || aid.oom) {
		rc = REVO_ENOMEM;
		goto out;
	}
	size_t tbs_content = head.len + (n_entries ? b.entries_len : 0) + exts.len;
	size_t tbs_len = revo_der_hdr_size(tbs_content) + tbs_content;
	size_t max_sig = (size_t)EVP_PKEY_get_size(key);
	size_t bits_max = revo_der_hdr_size(max_sig + 1) + 1 + max_sig;
	size_t hdr_reserved = revo_der_hdr_size(tbs_len + aid.len + bits_max);

	/* pass 2: write and sign */
	b.buf = malloc(OUT_BUF);
	if (!b.buf) {
		rc = REVO_ENOMEM;
		goto out;
	}
	if (lseek(b.fd, (off_t)hdr_reserved, SEEK_SET) < 0) {
		rc = revo_err_set(em, REVO_EIO, "cannot write %s: %s", tmp_path, strerror(errno));
		goto out;
	}
	revo_der_hdr(t, REVO_DER_SEQUENCE, tbs_content);
	emit(&b, t, revo_der_hdr_size(tbs_content));
	emit(&b, head.p, head.len);
	if ((rc = revo_snapshot_revoked(b.snap, is->id, pass2_cb, &b, em)) != 0)
		goto out;
	for (size_t i = 0; i < b.n_unheld; i++) {
		uint8_t e[ENTRY_MAX];
		emit(&b, e,
		     encode_entry(e, &b.unheld[i].serial, b.unheld[i].held_at,
				  REVO_REASON_REMOVE_FROM_CRL, 0));
	}
	emit(&b, exts.p, exts.len);
	flush(&b);
	if ((rc = b.err) != 0)
		goto out;

	uint8_t *sig = malloc(max_sig ? max_sig : 1);
	size_t siglen = max_sig;
	if (!sig) {
		rc = REVO_ENOMEM;
		goto out;
	}
	int signed_ok;
	if (b.stream_sign) {
		signed_ok = EVP_DigestSignFinal(b.mctx, sig, &siglen) == 1;
	} else {
		/* EdDSA: one shot over the TBS as written */
		map_len = hdr_reserved + tbs_len;
		map = mmap(NULL, map_len, PROT_READ, MAP_SHARED, b.fd, 0);
		if (map == MAP_FAILED) {
			map = NULL;
			free(sig);
			rc = revo_err_set(em, REVO_EIO, "mmap: %s", strerror(errno));
			goto out;
		}
		signed_ok = EVP_DigestSign(b.mctx, sig, &siglen, map + hdr_reserved, tbs_len) == 1;
		munmap(map, map_len);
		map = NULL;
	}
	if (!signed_ok) {
		free(sig);
		rc = revo_err_set_ssl(em, REVO_ECRYPTO, "signing the CRL failed");
		goto out;
	}
	/* signatureAlgorithm, signatureValue */
	revo_der_t tail;
	revo_der_init(&tail);
	revo_der_raw(&tail, aid.p, aid.len);
	revo_der_raw(&tail, t, revo_der_hdr(t, REVO_DER_BIT_STRING, siglen + 1));
	revo_der_raw(&tail, "", 1);
	revo_der_raw(&tail, sig, siglen);
	free(sig);
	int werr = tail.oom ? ENOMEM : write_all(b.fd, tail.p, tail.len) ? errno : 0;
	size_t total_content = tbs_len + tail.len;
	revo_der_free(&tail);
	if (werr) {
		rc = revo_err_set(em, REVO_EIO, "cannot write %s: %s", tmp_path, strerror(werr));
		goto out;
	}
	size_t hdr_actual = revo_der_hdr_size(total_content);
	revo_der_hdr(t, REVO_DER_SEQUENCE, total_content);
	if (hdr_actual == hdr_reserved) {
		if (pwrite(b.fd, t, hdr_actual, 0) != (ssize_t)hdr_actual) {
			rc = revo_err_set(em, REVO_EIO, "cannot write %s: %s", tmp_path,
					  strerror(errno));
			goto out;
		}
	} else {
		/* a shorter signature crossed a length boundary: rewrite with the right header */
		char *p2;
		int fd2;
		if ((rc = make_temp(out_path, ".tmp", &p2, &fd2, em)) != 0)
			goto out;
		if (write_all(fd2, t, hdr_actual) ||
		    copy_range(b.fd, (off_t)hdr_reserved, total_content, fd2)) {
			rc = revo_err_set(em, REVO_EIO, "cannot write %s: %s", p2, strerror(errno));
			close(fd2);
			unlink(p2);
			free(p2);
			goto out;
		}
		close(b.fd);
		unlink(tmp_path);
		free(tmp_path);
		tmp_path = p2;
		b.fd = fd2;
	}
	size_t der_size = hdr_actual + total_content;

	/* verify what is in the file before it is put in place */
	map_len = der_size;
	map = mmap(NULL, map_len, PROT_READ, MAP_SHARED, b.fd, 0);
	if (map == MAP_FAILED) {
		map = NULL;
		rc = revo_err_set(em, REVO_EIO, "mmap: %s", strerror(errno));
		goto out;
	}
	/* the BIT STRING follows the TBS and the AlgorithmIdentifier */
	size_t bs_off = hdr_actual + tbs_len + aid.len;
	{
		/* parse the BIT STRING header we wrote */
		const uint8_t *q = map + bs_off;
		size_t hl = 2, l = q[1];
		if (q[1] & 0x80) {
			size_t k = q[1] & 0x7f;
			l = 0;
			for (size_t i = 0; i < k; i++)
				l = l << 8 | q[2 + i];
			hl = 2 + k;
		}
		rc = verify_crl(map, der_size, hdr_actual, tbs_len, q + hl + 1, l - 1, ca, key, md,
				o->rsa_pss, em);
	}
	if (rc)
		goto out;

	size_t file_size = der_size;
	int final_fd = b.fd;
	const char *final_tmp = tmp_path;
	if (o->pem) {
		if ((rc = make_temp(out_path, ".pem", &pem_path, &pem_fd, em)) != 0)
			goto out;
		if (write_pem(pem_fd, map, der_size)) {
			rc = revo_err_set(em, REVO_EIO, "cannot write %s: %s", pem_path,
					  strerror(errno));
			goto out;
		}
		file_size = (size_t)lseek(pem_fd, 0, SEEK_CUR);
		final_fd = pem_fd;
		final_tmp = pem_path;
	}
	if (fsync(final_fd) != 0 || rename(final_tmp, out_path) != 0) {
		rc = revo_err_set(em, REVO_EIO, "cannot write %s: %s", out_path, strerror(errno));
		goto out;
	}
	if (final_tmp == pem_path) {
		free(pem_path);
		pem_path = NULL;
	} else {
		free(tmp_path);
		tmp_path = NULL;
	}
	fsync_dir(out_path);

	rc = revo_store_crl_written(st, is->id, number, !o->delta, revo_snapshot_seq(b.snap), now,
				    em);
	if (rc) {
		revo_err_set(em, rc,
			     "CRL %llu was written to %s, but the store could not record it",
			     (unsigned long long)number, out_path);
		goto out;
	}
	if (info) {
		memset(info, 0, sizeof(*info));
		info->number = number;
		info->base_number = o->delta ? b.state.base_number : 0;
		info->entries = n_entries;
		info->pruned = b.pruned;
		info->der_size = der_size;
		info->file_size = file_size;
		info->crldata_len = revo_crl_crldata_len(der_size);
		info->this_update = now;
		info->next_update = next;
		info->seq = revo_snapshot_seq(b.snap);
	}
out:
	if (map)
		munmap(map, map_len);
	if (b.fd >= 0)
		close(b.fd);
	if (pem_fd >= 0)
		close(pem_fd);
	if (tmp_path) {
		unlink(tmp_path);
		free(tmp_path);
	}
	if (pem_path) {
		unlink(pem_path);
		free(pem_path);
	}
	revo_snapshot_end(b.snap);
	EVP_MD_CTX_free(b.mctx);
	X509_free(ca);
	free(b.buf);
	free(b.unheld);
	revo_der_free(&head);
	revo_der_free(&exts);
	revo_der_free(&aid);
	return rc;
}
