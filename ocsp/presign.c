/*
 * Pre-signing: one response per (unexpired certificate or revoked serial, CertID hash),
 * written to the store in batches, each its own short write transaction, so that a
 * revocation never waits behind a long pre-signing run.
 */
#include "ocsp/ocsp.h"

#include "pki/timefmt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#define BATCH 256

struct presign_ctx {
	revo_store_t *st;
	const revo_issuer_t *is;
	const revo_ocsp_signer_t *s;
	int64_t now;
	revo_ocsp_resp_rec_t recs[BATCH];
	uint8_t *ders[BATCH];
	size_t n;
	revo_presign_stats_t *stats;
	revo_errmsg_t *em;
};

static int flush_batch(struct presign_ctx *c)
{
	int rc = revo_store_responses_put(c->st, c->recs, c->n, c->em);
	for (size_t i = 0; i < c->n; i++)
		OPENSSL_free(c->ders[i]);
	c->n = 0;
	return rc;
}

static int presign_cb(void *vctx, const revo_cert_rec_t *cert, const revo_revocation_t *rev)
{
	struct presign_ctx *c = vctx;
	if (cert && cert->not_after <= c->now && !rev)
		return 0;
	if (cert && cert->not_after <= c->now)
		return 0; /* expired: RFC 5019 lets a responder stop answering for it */
	const revo_serial_t *serial = cert ? &cert->serial : &rev->serial;
	c->stats->certs++;
	if (rev)
		c->stats->revoked++;
	static const int hashes[] = {REVO_HASH_SHA1, REVO_HASH_SHA256};
	for (size_t h = 0; h < 2; h++) {
		uint8_t cid[160];
		revo_ocsp_single_t one = {
		    .certid_der = cid,
		    .certid_len = revo_ocsp_certid(hashes[h], &c->s->hashes, serial, cid),
		    .status = rev ? REVO_STATUS_REVOKED : REVO_STATUS_GOOD,
		    .revoked_at = rev ? rev->revoked_at : 0,
		    .reason = rev ? rev->reason : -1,
		    .this_update = c->now,
		    .next_update = c->now + c->is->ocsp_validity,
		};
		uint8_t *der;
		size_t len;
		int rc = revo_ocsp_sign(c->s, &one, 1, false, NULL, 0, &der, &len, c->em);
		if (rc)
			return rc;
		revo_ocsp_resp_rec_t *r = &c->recs[c->n];
		memset(r, 0, sizeof(*r));
		r->issuer_id = c->is->id;
		r->serial = *serial;
		r->hash = hashes[h];
		r->status = one.status;
		r->rev_seq = rev ? rev->seq : 0;
		r->produced_at = c->now;
		r->this_update = one.this_update;
		r->next_update = one.next_update;
		uint8_t md[32];
		EVP_Digest(der, len, md, NULL, EVP_sha256(), NULL);
		memcpy(r->etag, md, sizeof(r->etag));
		r->der = der;
		r->der_len = len;
		c->ders[c->n++] = der;
		c->stats->responses++;
		if (c->n == BATCH && (rc = flush_batch(c)) != 0)
			return rc;
	}
	return 0;
}

/* One piece of the walk: copies of up to CHUNK (certificate, revocation) pairs. */
#define CHUNK 128

struct chunk {
	revo_cert_rec_t certs[CHUNK];
	revo_revocation_t revs[CHUNK];
	bool has_cert[CHUNK], has_rev[CHUNK];
	size_t n;
	revo_serial_t last;
};

static int chunk_cb(void *ctx, const revo_cert_rec_t *cert, const revo_revocation_t *rev)
{
	struct chunk *ch = ctx;
	ch->has_cert[ch->n] = cert != NULL;
	ch->has_rev[ch->n] = rev != NULL;
	if (cert)
		ch->certs[ch->n] = *cert;
	if (rev)
		ch->revs[ch->n] = *rev;
	ch->last = cert ? cert->serial : rev->serial;
	return ++ch->n == CHUNK ? 1 : 0; /* 1 stops the walk: the chunk is full */
}

int revo_ocsp_presign(revo_store_t *st, const revo_issuer_t *is, const revo_ocsp_signer_t *s,
		      revo_presign_stats_t *stats, revo_errmsg_t *em)
{
	static struct presign_ctx zero;
	struct presign_ctx *c = OPENSSL_malloc(sizeof(*c));
	struct chunk *ch = OPENSSL_malloc(sizeof(*ch));
	if (!c || !ch) {
		OPENSSL_free(c);
		OPENSSL_free(ch);
		return REVO_ENOMEM;
	}
	*c = zero;
	c->st = st;
	c->is = is;
	c->s = s;
	c->now = revo_now();
	c->stats = stats;
	c->em = em;
	memset(stats, 0, sizeof(*stats));
	/*
	 * The walk goes in pieces, each in its own read snapshot that ends before the
	 * responses are written: no read transaction stays open across the writes (a long
	 * one would keep LMDB from reusing pages, and the map cannot grow under it).
	 */
	int rc = 0;
	bool first = true;
	for (;;) {
		ch->n = 0;
		rc = revo_store_list_after(st, is->id, first ? NULL : &ch->last, false, chunk_cb,
					   ch, em);
		if (rc == 1)
			rc = 0;
		if (rc || ch->n == 0)
			break;
		first = false;
		for (size_t i = 0; i < ch->n && !rc; i++)
			rc = presign_cb(c, ch->has_cert[i] ? &ch->certs[i] : NULL,
					ch->has_rev[i] ? &ch->revs[i] : NULL);
		if (rc || ch->n < CHUNK)
			break;
	}
	if (rc == 0 && c->n)
		rc = flush_batch(c);
	for (size_t i = 0; i < c->n; i++)
		OPENSSL_free(c->ders[i]);
	if (rc == 0)
		rc = revo_store_sync(st, em);
	OPENSSL_free(c);
	OPENSSL_free(ch);
	return rc;
}

int revo_ocsp_presign_serials(revo_store_t *st, const revo_issuer_t *is,
			      const revo_ocsp_signer_t *s, const revo_serial_t *serials, size_t n,
			      revo_presign_stats_t *stats, revo_errmsg_t *em)
{
	static struct presign_ctx zero;
	struct presign_ctx *c = OPENSSL_malloc(sizeof(*c));
	if (!c)
		return REVO_ENOMEM;
	*c = zero;
	c->st = st;
	c->is = is;
	c->s = s;
	c->now = revo_now();
	c->stats = stats;
	c->em = em;
	memset(stats, 0, sizeof(*stats));
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		revo_cert_rec_t cert;
		revo_revocation_t rev;
		bool hc, hr;
		rc = revo_store_lookup(st, is->id, &serials[i], &cert, &hc, &rev, &hr, em);
		if (rc || (!hc && !hr))
			continue;
		rc = presign_cb(c, hc ? &cert : NULL, hr ? &rev : NULL);
	}
	if (rc == 0 && c->n)
		rc = flush_batch(c);
	for (size_t i = 0; i < c->n; i++)
		OPENSSL_free(c->ders[i]);
	OPENSSL_free(c);
	return rc;
}
