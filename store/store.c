/*
 * The store on LMDB. One environment, six named databases (issuers, certs, revoked,
 * by_cn, journal, meta; docs/store.md). Every write goes through run_write(): one write
 * transaction built by a callback that can be re-run, so that when the map is full the
 * transaction is aborted, the map doubled and the whole change retried; no MDB_MAP_FULL
 * reaches a caller. LMDB return codes are translated to revo_err in lmdb_err() only.
 */
#include "store/store.h"
#include "store/store_internal.h"

#include "pki/reason.h"
#include "pki/timefmt.h"

#include <errno.h>
#include <lmdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>

#define VALUE_VERSION 1
/* Address space is cheap on 64-bit: a large map makes growth (which must wait for every
 * read transaction of the process to end) rare; the file grows only as pages are used. */
#define DEFAULT_MAP_SIZE ((size_t)16 << 30)
#define MAX_MAP_SIZE     ((size_t)1 << 40)
/* Internal: the map is full; abort, grow and retry. Never returned to callers. */
#define RETRY_GROW 1

struct revo_store {
	MDB_env *env;
	atomic_int reads;          /* read transactions active in this process */
	pthread_rwlock_t map_lock; /* readers hold it shared; a map resize exclusive */
	MDB_dbi issuers, certs, revoked, by_cn, journal, meta, responses, targets;
	bool readonly;
	char *dir;
	revo_actor_t actor;
};

/* A write transaction in progress. */
typedef struct wtx {
	revo_store_t *st;
	MDB_txn *txn;
	uint64_t next_seq; /* 0 until loaded */
	int64_t now_us;
} wtx_t;

typedef int (*write_fn)(wtx_t *w, void *ctx, revo_errmsg_t *em);

static int lmdb_err(int rc, revo_errmsg_t *em, const char *what)
{
	switch (rc) {
	case 0: return REVO_OK;
	case MDB_MAP_FULL: return RETRY_GROW;
	case EACCES:
	case EPERM:
	case EROFS:
		return revo_err_set(em, REVO_EACCES, "%s: %s (read-only store?)", what,
				    strerror(rc));
	case ENOMEM: return revo_err_set(em, REVO_ENOMEM, "%s: out of memory", what);
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return revo_err_set(em, REVO_ENOSTORE, "%s: not an LMDB environment (%s)", what,
				    mdb_strerror(rc));
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
		return revo_err_set(em, REVO_ECORRUPT, "%s: %s", what, mdb_strerror(rc));
	case MDB_READERS_FULL: return revo_err_set(em, REVO_EIO, "%s: too many readers", what);
	default: return revo_err_set(em, REVO_EIO, "%s: %s", what, mdb_strerror(rc));
	}
}

/* ---- actor ---- */

void revo_actor_self(revo_actor_t *out)
{
	memset(out, 0, sizeof(*out));
	out->uid = (uint32_t)getuid();
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(out->user, sizeof(out->user), "%s", res->pw_name);
	else
		snprintf(out->user, sizeof(out->user), "uid%u", out->uid);
	if (gethostname(out->host, sizeof(out->host) - 1) != 0)
		snprintf(out->host, sizeof(out->host), "unknown");
	const char *su = getenv("SUDO_USER");
	if (su)
		snprintf(out->sudo_user, sizeof(out->sudo_user), "%s", su);
}

void revo_store_set_actor(revo_store_t *st, const revo_actor_t *actor)
{
	st->actor = *actor;
}

/* ---- transactions ---- */

static int begin(revo_store_t *st, unsigned flags, MDB_txn **txn, revo_errmsg_t *em)
{
	for (int i = 0; i < 4; i++) {
		int rc = mdb_txn_begin(st->env, NULL, flags, txn);
		if (rc == MDB_MAP_RESIZED) {
			/* another process grew the map: adopt its size, which LMDB allows only
			 * while no transaction of this process is active */
			if (atomic_load(&st->reads) != 0)
				return revo_err_set(em, REVO_EIO,
						    "%s: the store was resized by another process "
						    "during a read; try again",
						    st->dir);
			pthread_rwlock_wrlock(&st->map_lock);
			mdb_env_set_mapsize(st->env, 0);
			pthread_rwlock_unlock(&st->map_lock);
			continue;
		}
		if (rc == 0 && (flags & MDB_RDONLY))
			atomic_fetch_add(&st->reads, 1);
		return lmdb_err(rc, em, st->dir);
	}
	return revo_err_set(em, REVO_EIO, "%s: map keeps being resized", st->dir);
}

/* End a read transaction begun with begin(). */
static void end_read(revo_store_t *st, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	atomic_fetch_sub(&st->reads, 1);
}

static int grow(revo_store_t *st, revo_errmsg_t *em)
{
	if (atomic_load(&st->reads) != 0)
		return revo_err_set(em, REVO_EIO,
				    "%s: the store is full and cannot grow while a read is in "
				    "progress; try again",
				    st->dir);
	MDB_envinfo info;
	mdb_env_info(st->env, &info);
	size_t size = info.me_mapsize * 2;
	if (size > MAX_MAP_SIZE)
		return revo_err_set(em, REVO_EIO, "%s: store is larger than %zu bytes", st->dir,
				    (size_t)MAX_MAP_SIZE);
	int rc = mdb_env_set_mapsize(st->env, size);
	return rc ? lmdb_err(rc, em, st->dir) : REVO_OK;
}

static int run_write(revo_store_t *st, write_fn fn, void *ctx, unsigned flags, revo_errmsg_t *em)
{
	if (st->readonly)
		return revo_err_set(em, REVO_EACCES, "%s: store is open read-only", st->dir);
	for (int attempt = 0; attempt < 40; attempt++) {
		wtx_t w = {.st = st, .next_seq = 0, .now_us = revo_now_us()};
		int rc = begin(st, 0, &w.txn, em);
		if (rc)
			return rc;
		rc = fn(&w, ctx, em);
		if (rc == 0 && (flags & REVO_APPLY_DRYRUN)) {
			mdb_txn_abort(w.txn);
			return REVO_OK;
		}
		if (rc == 0) {
			if (flags & REVO_APPLY_NOSYNC)
				mdb_env_set_flags(st->env, MDB_NOSYNC, 1);
			int mrc = mdb_txn_commit(w.txn);
			if (flags & REVO_APPLY_NOSYNC)
				mdb_env_set_flags(st->env, MDB_NOSYNC, 0);
			if (mrc == 0)
				return REVO_OK;
			rc = lmdb_err(mrc, em, st->dir);
		} else {
			mdb_txn_abort(w.txn);
		}
		if (rc != RETRY_GROW)
			return rc;
		if ((rc = grow(st, em)) != 0)
			return rc;
	}
	return revo_err_set(em, REVO_EIO, "%s: cannot grow the map enough", st->dir);
}

static int put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *v, size_t vl,
	       unsigned flags, revo_errmsg_t *em)
{
	MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
	int rc = mdb_put(txn, dbi, &key, &val, flags);
	if (rc == MDB_KEYEXIST)
		return REVO_EEXIST;
	return lmdb_err(rc, em, "store write");
}

/* 0 and *val set; REVO_ENOTFOUND; or an error */
static int get(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, MDB_val *val, revo_errmsg_t *em)
{
	MDB_val key = {kl, (void *)k};
	int rc = mdb_get(txn, dbi, &key, val);
	if (rc == MDB_NOTFOUND)
		return REVO_ENOTFOUND;
	return lmdb_err(rc, em, "store read");
}

/* ---- value codecs ---- */

static int check_version(revo_rbuf_t *r, revo_errmsg_t *em, const char *what)
{
	uint8_t v = revo_rbuf_u8(r);
	if (r->bad || v == 0)
		return revo_err_set(em, REVO_ECORRUPT, "corrupt %s record", what);
	if (v > VALUE_VERSION)
		return revo_err_set(em, REVO_EVERSION,
				    "%s record has version %u, newer than this revo reads (%u)",
				    what, v, VALUE_VERSION);
	return REVO_OK;
}

static void enc_cert(revo_wbuf_t *w, const revo_cert_rec_t *c)
{
	revo_wbuf_u8(w, VALUE_VERSION);
	revo_wbuf_u8(w, c->has_sha256 ? 1 : 0);
	revo_wbuf_u64(w, (uint64_t)c->not_before);
	revo_wbuf_u64(w, (uint64_t)c->not_after);
	revo_wbuf_str(w, c->cn);
	if (c->has_sha256)
		revo_wbuf_raw(w, c->sha256, 32);
}

static int dec_cert(const MDB_val *v, revo_cert_rec_t *c, revo_errmsg_t *em)
{
	revo_rbuf_t r;
	revo_rbuf_init(&r, v->mv_data, v->mv_size);
	int rc = check_version(&r, em, "certificate");
	if (rc)
		return rc;
	uint8_t fl = revo_rbuf_u8(&r);
	c->not_before = (int64_t)revo_rbuf_u64(&r);
	c->not_after = (int64_t)revo_rbuf_u64(&r);
	size_t n;
	const uint8_t *cn = revo_rbuf_bytes(&r, &n);
	if (n > REVO_CN_MAX)
		n = REVO_CN_MAX;
	memcpy(c->cn, cn ? cn : (const uint8_t *)"", n);
	c->cn[n] = '\0';
	c->has_sha256 = fl & 1;
	if (c->has_sha256) {
		const uint8_t *h = revo_rbuf_raw(&r, 32);
		if (h)
			memcpy(c->sha256, h, 32);
	}
	return r.bad ? revo_err_set(em, REVO_ECORRUPT, "corrupt certificate record") : REVO_OK;
}

static void enc_rev(revo_wbuf_t *w, const revo_revocation_t *rv)
{
	revo_wbuf_u8(w, VALUE_VERSION);
	revo_wbuf_u64(w, (uint64_t)rv->revoked_at);
	revo_wbuf_u8(w, (uint8_t)rv->reason);
	revo_wbuf_u64(w, (uint64_t)rv->invalidity);
	revo_wbuf_u64(w, (uint64_t)rv->cert_not_after);
	revo_wbuf_u64(w, rv->seq);
}

static int dec_rev(const MDB_val *v, revo_revocation_t *rv, revo_errmsg_t *em)
{
	revo_rbuf_t r;
	revo_rbuf_init(&r, v->mv_data, v->mv_size);
	int rc = check_version(&r, em, "revocation");
	if (rc)
		return rc;
	rv->revoked_at = (int64_t)revo_rbuf_u64(&r);
	rv->reason = revo_rbuf_u8(&r);
	rv->invalidity = (int64_t)revo_rbuf_u64(&r);
	rv->cert_not_after = (int64_t)revo_rbuf_u64(&r);
	rv->seq = revo_rbuf_u64(&r);
	rv->at_explicit = false;
	return r.bad ? revo_err_set(em, REVO_ECORRUPT, "corrupt revocation record") : REVO_OK;
}

static void wbuf_opt_bytes(revo_wbuf_t *w, const void *p, size_t n)
{
	if (!p)
		revo_wbuf_u32(w, 0xffffffffu);
	else
		revo_wbuf_bytes(w, p, n);
}

static void enc_issuer(revo_wbuf_t *w, const revo_issuer_t *is)
{
	revo_wbuf_u8(w, VALUE_VERSION);
	revo_wbuf_str(w, is->name);
	revo_wbuf_bytes(w, is->cert_der, is->cert_len);
	revo_wbuf_raw(w, is->hashes.name_sha1, 20);
	revo_wbuf_raw(w, is->hashes.key_sha1, 20);
	revo_wbuf_raw(w, is->hashes.name_sha256, 32);
	revo_wbuf_raw(w, is->hashes.key_sha256, 32);
	revo_wbuf_str(w, is->key_ref);
	wbuf_opt_bytes(w, is->ocsp_cert_der, is->ocsp_cert_len);
	revo_wbuf_str(w, is->ocsp_key_ref);
	revo_wbuf_u64(w, (uint64_t)is->crl_validity);
	revo_wbuf_u64(w, (uint64_t)is->crl_every);
	revo_wbuf_u64(w, (uint64_t)is->ocsp_validity);
	revo_wbuf_u64(w, (uint64_t)is->created);
	revo_wbuf_str(w, is->crl_url);
	revo_wbuf_str(w, is->delta_url);
}

static void issuer_free_fields(revo_issuer_t *is)
{
	free(is->cert_der);
	free(is->key_ref);
	free(is->ocsp_cert_der);
	free(is->ocsp_key_ref);
	free(is->crl_url);
	free(is->delta_url);
	memset(is, 0, sizeof(*is));
}

static void *dup_bytes(const uint8_t *p, size_t n, bool nul, bool *oom)
{
	if (!p)
		return NULL;
	uint8_t *d = malloc(n + 1);
	if (!d) {
		*oom = true;
		return NULL;
	}
	memcpy(d, p, n);
	if (nul)
		d[n] = 0;
	return d;
}

static int dec_issuer(uint32_t id, const MDB_val *v, revo_issuer_t *is, revo_errmsg_t *em)
{
	revo_rbuf_t r;
	bool oom = false;
	memset(is, 0, sizeof(*is));
	revo_rbuf_init(&r, v->mv_data, v->mv_size);
	int rc = check_version(&r, em, "issuer");
	if (rc)
		return rc;
	is->id = id;
	size_t n;
	const uint8_t *p = revo_rbuf_bytes(&r, &n);
	if (!p || n > REVO_ISSUER_NAME_MAX)
		r.bad = true;
	else
		memcpy(is->name, p, n);
	p = revo_rbuf_bytes(&r, &n);
	is->cert_der = dup_bytes(p, n, false, &oom);
	is->cert_len = n;
	const uint8_t *h;
	if ((h = revo_rbuf_raw(&r, 20)))
		memcpy(is->hashes.name_sha1, h, 20);
	if ((h = revo_rbuf_raw(&r, 20)))
		memcpy(is->hashes.key_sha1, h, 20);
	if ((h = revo_rbuf_raw(&r, 32)))
		memcpy(is->hashes.name_sha256, h, 32);
	if ((h = revo_rbuf_raw(&r, 32)))
		memcpy(is->hashes.key_sha256, h, 32);
	p = revo_rbuf_bytes(&r, &n);
	is->key_ref = dup_bytes(p, n, true, &oom);
	p = revo_rbuf_bytes(&r, &n);
	is->ocsp_cert_der = dup_bytes(p, n, false, &oom);
	is->ocsp_cert_len = n;
	p = revo_rbuf_bytes(&r, &n);
	is->ocsp_key_ref = dup_bytes(p, n, true, &oom);
	is->crl_validity = (int64_t)revo_rbuf_u64(&r);
	is->crl_every = (int64_t)revo_rbuf_u64(&r);
	is->ocsp_validity = (int64_t)revo_rbuf_u64(&r);
	is->created = (int64_t)revo_rbuf_u64(&r);
	p = revo_rbuf_bytes(&r, &n);
	is->crl_url = dup_bytes(p, n, true, &oom);
	p = revo_rbuf_bytes(&r, &n);
	is->delta_url = dup_bytes(p, n, true, &oom);
	if (oom || r.bad || !is->cert_der || !is->key_ref) {
		issuer_free_fields(is);
		return oom ? REVO_ENOMEM : revo_err_set(em, REVO_ECORRUPT, "corrupt issuer record");
	}
	return REVO_OK;
}

/* ---- journal ---- */

const char *revo_op_name(int op)
{
	switch (op) {
	case REVO_OP_INIT: return "init";
	case REVO_OP_ISSUER_ADD: return "issuer-add";
	case REVO_OP_CERT_ADD: return "cert-add";
	case REVO_OP_REVOKE: return "revoke";
	case REVO_OP_UNHOLD: return "unhold";
	case REVO_OP_TARGET_ADD: return "target-add";
	case REVO_OP_ISSUER_SET: return "issuer-set";
	case REVO_OP_TARGET_REMOVE: return "target-remove";
	}
	return "?";
}

static int journal_append(wtx_t *w, revo_journal_entry_t *e, revo_errmsg_t *em)
{
	revo_store_t *st = w->st;
	if (w->next_seq == 0) {
		MDB_cursor *c;
		MDB_val k, v;
		int rc = mdb_cursor_open(w->txn, st->journal, &c);
		if (rc)
			return lmdb_err(rc, em, "journal");
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		mdb_cursor_close(c);
		if (rc == MDB_NOTFOUND)
			w->next_seq = 1;
		else if (rc)
			return lmdb_err(rc, em, "journal");
		else if (k.mv_size != 8)
			return revo_err_set(em, REVO_ECORRUPT, "corrupt journal key");
		else
			w->next_seq = revo_get_be64(k.mv_data) + 1;
	}
	e->seq = w->next_seq;
	e->time_us = w->now_us;
	revo_wbuf_t b;
	revo_wbuf_init(&b);
	revo_wbuf_u8(&b, VALUE_VERSION);
	revo_wbuf_u64(&b, (uint64_t)e->time_us);
	revo_wbuf_u8(&b, (uint8_t)e->op);
	revo_wbuf_u32(&b, e->issuer_id);
	revo_wbuf_u8(&b, e->has_serial ? e->serial.len : 0);
	if (e->has_serial)
		revo_wbuf_raw(&b, e->serial.mag, e->serial.len);
	revo_wbuf_u8(&b, e->reason < 0 ? 0xff : (uint8_t)e->reason);
	revo_wbuf_u64(&b, (uint64_t)e->revoked_at);
	revo_wbuf_u64(&b, (uint64_t)e->invalidity);
	revo_wbuf_u32(&b, st->actor.uid);
	revo_wbuf_str(&b, st->actor.user);
	revo_wbuf_str(&b, st->actor.host);
	revo_wbuf_str(&b, st->actor.sudo_user);
	revo_wbuf_str(&b, e->detail ? e->detail : "");
	uint8_t key[8];
	revo_be64(key, e->seq);
	int rc = b.oom ? REVO_ENOMEM : put(w->txn, st->journal, key, 8, b.p, b.len, MDB_APPEND, em);
	revo_wbuf_free(&b);
	if (rc == REVO_EEXIST)
		return revo_err_set(em, REVO_ECORRUPT, "journal sequence out of order");
	if (rc == 0)
		w->next_seq++;
	return rc;
}

static int dec_journal(const MDB_val *k, const MDB_val *v, revo_journal_entry_t *e, char *strs,
		       size_t strs_len, revo_errmsg_t *em)
{
	revo_rbuf_t r;
	memset(e, 0, sizeof(*e));
	if (k->mv_size != 8)
		return revo_err_set(em, REVO_ECORRUPT, "corrupt journal key");
	e->seq = revo_get_be64(k->mv_data);
	revo_rbuf_init(&r, v->mv_data, v->mv_size);
	int rc = check_version(&r, em, "journal");
	if (rc)
		return rc;
	e->time_us = (int64_t)revo_rbuf_u64(&r);
	e->op = revo_rbuf_u8(&r);
	e->issuer_id = revo_rbuf_u32(&r);
	uint8_t sl = revo_rbuf_u8(&r);
	if (sl > REVO_SERIAL_MAX)
		r.bad = true;
	else if (sl) {
		const uint8_t *m = revo_rbuf_raw(&r, sl);
		if (m) {
			e->has_serial = true;
			e->serial.len = sl;
			memcpy(e->serial.mag, m, sl);
		}
	}
	uint8_t reason = revo_rbuf_u8(&r);
	e->reason = reason == 0xff ? -1 : reason;
	e->revoked_at = (int64_t)revo_rbuf_u64(&r);
	e->invalidity = (int64_t)revo_rbuf_u64(&r);
	e->uid = revo_rbuf_u32(&r);
	/* the four strings are copied NUL-terminated into @strs */
	const char **dst[4] = {&e->user, &e->host, &e->sudo_user, &e->detail};
	size_t off = 0;
	for (int i = 0; i < 4; i++) {
		size_t n;
		const uint8_t *p = revo_rbuf_bytes(&r, &n);
		if (off + n + 1 > strs_len)
			n = strs_len - off - 1;
		memcpy(strs + off, p ? p : (const uint8_t *)"", n);
		strs[off + n] = '\0';
		*dst[i] = strs + off;
		off += n + 1;
	}
	return r.bad ? revo_err_set(em, REVO_ECORRUPT, "corrupt journal entry %llu",
				    (unsigned long long)e->seq)
		     : REVO_OK;
}

/* ---- open / init ---- */

static const char *const DB_NAMES[] = {"meta",  "issuers", "certs",     "revoked",
				       "by_cn", "journal", "responses", "targets"};

static int open_dbis(revo_store_t *st, MDB_txn *txn, bool create, revo_errmsg_t *em)
{
	MDB_dbi *dbis[] = {&st->meta,  &st->issuers, &st->certs,     &st->revoked,
			   &st->by_cn, &st->journal, &st->responses, &st->targets};
	for (size_t i = 0; i < 8; i++) {
		unsigned fl = create ? MDB_CREATE : 0;
		if (i == 4)
			fl |= MDB_DUPSORT;
		int rc = mdb_dbi_open(txn, DB_NAMES[i], fl, dbis[i]);
		if (rc == MDB_NOTFOUND)
			return revo_err_set(
			    em, REVO_ENOSTORE,
			    "%s is not a revo store (no '%s' database; run 'revo init')", st->dir,
			    DB_NAMES[i]);
		if (rc == MDB_INCOMPATIBLE)
			return revo_err_set(em, REVO_ENOSTORE,
					    "%s is not a revo store ('%s' has other flags)",
					    st->dir, DB_NAMES[i]);
		if (rc)
			return lmdb_err(rc, em, st->dir);
		if (i == 0 && !create) {
			/* check the schema before touching anything else */
			MDB_val v;
			rc = get(txn, st->meta, "schema_version", 14, &v, em);
			if (rc == REVO_ENOTFOUND)
				return revo_err_set(em, REVO_ENOSTORE,
						    "%s is not a revo store (no schema version)",
						    st->dir);
			if (rc)
				return rc;
			if (v.mv_size != 4)
				return revo_err_set(em, REVO_ECORRUPT, "%s: corrupt schema version",
						    st->dir);
			uint32_t ver = revo_get_be32(v.mv_data);
			if (ver > REVO_STORE_SCHEMA_VERSION)
				return revo_err_set(
				    em, REVO_EVERSION,
				    "%s has schema version %u, newer than this revo "
				    "supports (%u): upgrade revo",
				    st->dir, ver, REVO_STORE_SCHEMA_VERSION);
			if (ver == 0)
				return revo_err_set(em, REVO_ECORRUPT, "%s: corrupt schema version",
						    st->dir);
		}
	}
	return REVO_OK;
}

static size_t initial_map_size(void)
{
	const char *s = getenv("REVO_MAP_SIZE");
	if (s && *s) {
		char *end;
		unsigned long long v = strtoull(s, &end, 10);
		if (*end == '\0' && v >= 65536 && v <= MAX_MAP_SIZE)
			return (size_t)v;
	}
	return DEFAULT_MAP_SIZE;
}

static int env_open(const char *dir, unsigned flags, revo_store_t **out, revo_errmsg_t *em)
{
	revo_store_t *st = calloc(1, sizeof(*st));
	if (!st)
		return REVO_ENOMEM;
	st->dir = strdup(dir);
	st->readonly = flags & REVO_STORE_READONLY;
	atomic_init(&st->reads, 0);
	pthread_rwlock_init(&st->map_lock, NULL);
	revo_actor_self(&st->actor);
	int rc = st->dir ? mdb_env_create(&st->env) : ENOMEM;
	if (rc == 0)
		rc = mdb_env_set_maxdbs(st->env, 16);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(st->env, 1022);
	if (rc == 0)
		rc = mdb_env_set_mapsize(st->env, initial_map_size());
	if (rc == 0)
		rc = mdb_env_open(st->env, dir, MDB_NOTLS | (st->readonly ? MDB_RDONLY : 0), 0660);
	if (rc) {
		int err = (rc == ENOENT)
			      ? revo_err_set(em, REVO_ENOSTORE, "%s is not a revo store", dir)
			      : lmdb_err(rc, em, dir);
		revo_store_close(st);
		return err;
	}
	*out = st;
	return REVO_OK;
}

/* Open the named databases in a transaction of their own (handles outlive it). */
static int load_dbis(revo_store_t *st, bool create, revo_errmsg_t *em)
{
	MDB_txn *txn;
	bool ro = st->readonly || !create;
	int rc = begin(st, ro ? MDB_RDONLY : 0, &txn, em);
	if (rc)
		return rc;
	rc = open_dbis(st, txn, create, em);
	if (rc) {
		mdb_txn_abort(txn);
	} else {
		rc = mdb_txn_commit(txn);
		rc = rc ? lmdb_err(rc, em, st->dir) : REVO_OK;
	}
	if (ro)
		atomic_fetch_sub(&st->reads, 1);
	return rc;
}

static int check_dir(const char *dir, bool *has_data, revo_errmsg_t *em)
{
	struct stat sb;
	char path[4096];
	if (stat(dir, &sb) != 0) {
		if (errno == ENOENT)
			return revo_err_set(em, REVO_ENOSTORE,
					    "store %s does not exist (run 'revo init')", dir);
		return revo_err_set(em, errno == EACCES ? REVO_EACCES : REVO_EIO, "%s: %s", dir,
				    strerror(errno));
	}
	if (!S_ISDIR(sb.st_mode))
		return revo_err_set(em, REVO_ENOSTORE, "%s is not a directory, so not a revo store",
				    dir);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	*has_data = stat(path, &sb) == 0;
	if (!*has_data && errno == EACCES)
		return revo_err_set(em, REVO_EACCES, "%s: %s", dir, strerror(errno));
	return REVO_OK;
}

int revo_store_open(const char *dir, unsigned flags, revo_store_t **out, revo_errmsg_t *em)
{
	bool has_data;
	int rc = check_dir(dir, &has_data, em);
	if (rc)
		return rc;
	if (!has_data)
		return revo_err_set(em, REVO_ENOSTORE,
				    "%s is not a revo store (no data.mdb; run 'revo init')", dir);
	revo_store_t *st;
	if ((rc = env_open(dir, flags, &st, em)) != 0)
		return rc;
	if ((rc = load_dbis(st, false, em)) != 0) {
		revo_store_close(st);
		return rc;
	}
	*out = st;
	return REVO_OK;
}

void revo_store_close(revo_store_t *st)
{
	if (!st)
		return;
	if (st->env)
		mdb_env_close(st->env);
	pthread_rwlock_destroy(&st->map_lock);
	free(st->dir);
	free(st);
}

static bool dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	struct dirent *de;
	bool empty = true;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = false;
			break;
		}
	}
	closedir(d);
	return empty;
}

static int init_fn(wtx_t *w, void *ctx, revo_errmsg_t *em)
{
	bool *created = ctx;
	revo_store_t *st = w->st;
	int rc = open_dbis(st, w->txn, true, em);
	if (rc)
		return rc;
	MDB_val v;
	rc = get(w->txn, st->meta, "schema_version", 14, &v, em);
	if (rc == 0) {
		*created = false;
		if (v.mv_size == 4 && revo_get_be32(v.mv_data) > REVO_STORE_SCHEMA_VERSION)
			return revo_err_set(
			    em, REVO_EVERSION,
			    "%s has schema version %u, newer than this revo supports "
			    "(%u): upgrade revo",
			    st->dir, revo_get_be32(v.mv_data), REVO_STORE_SCHEMA_VERSION);
		return REVO_OK;
	}
	if (rc != REVO_ENOTFOUND)
		return rc;
	*created = true;
	uint8_t ver[4];
	revo_be32(ver, REVO_STORE_SCHEMA_VERSION);
	if ((rc = put(w->txn, st->meta, "schema_version", 14, ver, 4, 0, em)) != 0)
		return rc;
	revo_journal_entry_t e = {.op = REVO_OP_INIT, .reason = -1, .detail = "store created"};
	return journal_append(w, &e, em);
}

int revo_store_init(const char *dir, bool *created, revo_errmsg_t *em)
{
	bool has_data = false, made = false;
	struct stat sb;
	if (stat(dir, &sb) != 0 && errno == ENOENT) {
		if (mkdir(dir, 0770) != 0)
			return revo_err_set(em, errno == EACCES ? REVO_EACCES : REVO_EIO,
					    "cannot create %s: %s", dir, strerror(errno));
	}
	int rc = check_dir(dir, &has_data, em);
	if (rc)
		return rc;
	if (!has_data && !dir_is_empty(dir))
		return revo_err_set(
		    em, REVO_ENOSTORE,
		    "%s is not empty and holds no revo store: use an empty directory", dir);
	if (has_data) {
		/* an existing store (or one whose creation was interrupted): check, complete */
		revo_store_t *probe;
		rc = revo_store_open(dir, REVO_STORE_READONLY, &probe, em);
		if (rc == 0) {
			revo_store_close(probe);
			if (created)
				*created = false;
			return REVO_OK;
		}
		if (rc != REVO_ENOSTORE)
			return rc;
		/* only an LMDB environment with nothing in it may be completed */
		revo_errmsg_t em2 = {{0}};
		revo_store_t *st;
		if (env_open(dir, 0, &st, &em2) != 0)
			return rc;
		MDB_stat ms;
		int empty = mdb_env_stat(st->env, &ms) == 0 && ms.ms_entries == 0;
		revo_store_close(st);
		if (!empty)
			return rc;
		revo_err_clear(em);
	}
	revo_store_t *st;
	if ((rc = env_open(dir, 0, &st, em)) != 0)
		return rc;
	rc = run_write(st, init_fn, &made, 0, em);
	revo_store_close(st);
	if (rc == 0 && created)
		*created = made;
	return rc;
}

int revo_store_sync(revo_store_t *st, revo_errmsg_t *em)
{
	int rc = mdb_env_sync(st->env, 1);
	return rc ? lmdb_err(rc, em, st->dir) : REVO_OK;
}

/* ---- issuers ---- */

static bool valid_issuer_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > REVO_ISSUER_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

struct issuer_add_ctx {
	const revo_issuer_t *in;
	uint32_t id;
};

static int issuer_add_fn(wtx_t *w, void *vctx, revo_errmsg_t *em)
{
	struct issuer_add_ctx *ctx = vctx;
	revo_store_t *st = w->st;
	MDB_cursor *c;
	MDB_val k, v;
	uint32_t max_id = 0;
	int rc = mdb_cursor_open(w->txn, st->issuers, &c);
	if (rc)
		return lmdb_err(rc, em, "issuers");
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		revo_issuer_t is;
		if (k.mv_size != 4) {
			mdb_cursor_close(c);
			return revo_err_set(em, REVO_ECORRUPT, "corrupt issuer key");
		}
		uint32_t id = revo_get_be32(k.mv_data);
		int drc = dec_issuer(id, &v, &is, em);
		if (drc) {
			mdb_cursor_close(c);
			return drc;
		}
		int dup_name = strcmp(is.name, ctx->in->name) == 0;
		int dup_cert = is.cert_len == ctx->in->cert_len &&
			       memcmp(is.cert_der, ctx->in->cert_der, is.cert_len) == 0;
		char other[REVO_ISSUER_NAME_MAX + 1];
		memcpy(other, is.name, sizeof(other));
		issuer_free_fields(&is);
		if (dup_name || dup_cert) {
			mdb_cursor_close(c);
			if (dup_name)
				return revo_err_set(em, REVO_EEXIST, "issuer '%s' already exists",
						    ctx->in->name);
			return revo_err_set(
			    em, REVO_EEXIST,
			    "this CA certificate is already registered as issuer '%s'", other);
		}
		if (id > max_id)
			max_id = id;
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return lmdb_err(rc, em, "issuers");
	revo_issuer_t is = *ctx->in;
	is.id = max_id + 1;
	is.created = w->now_us / 1000000;
	revo_wbuf_t b;
	revo_wbuf_init(&b);
	enc_issuer(&b, &is);
	uint8_t key[4];
	revo_be32(key, is.id);
	rc =
	    b.oom ? REVO_ENOMEM : put(w->txn, st->issuers, key, 4, b.p, b.len, MDB_NOOVERWRITE, em);
	revo_wbuf_free(&b);
	if (rc)
		return rc == REVO_EEXIST ? revo_err_set(em, REVO_ECORRUPT, "issuer id reused") : rc;
	ctx->id = is.id;
	revo_journal_entry_t e = {
	    .op = REVO_OP_ISSUER_ADD, .issuer_id = is.id, .reason = -1, .detail = is.name};
	return journal_append(w, &e, em);
}

int revo_store_issuer_add(revo_store_t *st, const revo_issuer_t *in, uint32_t *id_out,
			  revo_errmsg_t *em)
{
	if (!valid_issuer_name(in->name))
		return revo_err_set(em, REVO_EINVAL,
				    "issuer name '%s' is not valid (1-63 of A-Z a-z 0-9 . _ -)",
				    in->name);
	if (!in->cert_der || !in->key_ref)
		return revo_err_set(em, REVO_EINVAL,
				    "issuer needs a certificate and a key reference");
	struct issuer_add_ctx ctx = {.in = in};
	int rc = run_write(st, issuer_add_fn, &ctx, 0, em);
	if (rc == 0 && id_out)
		*id_out = ctx.id;
	return rc;
}

struct issuer_set_ctx {
	const revo_issuer_t *in;
	const char *detail;
};

static int issuer_set_fn(wtx_t *w, void *vctx, revo_errmsg_t *em)
{
	struct issuer_set_ctx *ctx = vctx;
	uint8_t key[4];
	MDB_val v;
	revo_be32(key, ctx->in->id);
	int rc = get(w->txn, w->st->issuers, key, 4, &v, em);
	if (rc == REVO_ENOTFOUND)
		return revo_err_set(em, REVO_ENOTFOUND, "no issuer with id %u", ctx->in->id);
	if (rc)
		return rc;
	revo_issuer_t old;
	if ((rc = dec_issuer(ctx->in->id, &v, &old, em)) != 0)
		return rc;
	revo_issuer_t is = *ctx->in;
	/* identity stays */
	memcpy(is.name, old.name, sizeof(is.name));
	is.cert_der = old.cert_der;
	is.cert_len = old.cert_len;
	is.hashes = old.hashes;
	is.created = old.created;
	revo_wbuf_t b;
	revo_wbuf_init(&b);
	enc_issuer(&b, &is);
	rc = b.oom ? REVO_ENOMEM : put(w->txn, w->st->issuers, key, 4, b.p, b.len, 0, em);
	revo_wbuf_free(&b);
	issuer_free_fields(&old);
	if (rc)
		return rc;
	revo_journal_entry_t e = {.op = REVO_OP_ISSUER_SET,
				  .issuer_id = ctx->in->id,
				  .reason = -1,
				  .detail = ctx->detail};
	return journal_append(w, &e, em);
}

int revo_store_issuer_set(revo_store_t *st, const revo_issuer_t *in, const char *detail,
			  revo_errmsg_t *em)
{
	struct issuer_set_ctx ctx = {.in = in, .detail = detail};
	return run_write(st, issuer_set_fn, &ctx, 0, em);
}

int revo_store_issuers(revo_store_t *st, revo_issuer_t **out, size_t *n, revo_errmsg_t *em)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	*out = NULL;
	*n = 0;
	int rc = begin(st, MDB_RDONLY, &txn, em);
	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(txn, st->issuers, &c)) != 0) {
		end_read(st, txn);
		return lmdb_err(rc, em, "issuers");
	}
	revo_issuer_t *arr = NULL;
	size_t cnt = 0, cap = 0;
	int err = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 4) {
			err = revo_err_set(em, REVO_ECORRUPT, "corrupt issuer key");
			break;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 4;
			revo_issuer_t *na = realloc(arr, cap * sizeof(*arr));
			if (!na) {
				err = REVO_ENOMEM;
				break;
			}
			arr = na;
		}
		if ((err = dec_issuer(revo_get_be32(k.mv_data), &v, &arr[cnt], em)) != 0)
			break;
		cnt++;
	}
	if (!err && rc != MDB_NOTFOUND)
		err = lmdb_err(rc, em, "issuers");
	mdb_cursor_close(c);
	end_read(st, txn);
	if (err) {
		revo_issuers_free(arr, cnt);
		return err;
	}
	*out = arr;
	*n = cnt;
	return REVO_OK;
}

void revo_issuers_free(revo_issuer_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		issuer_free_fields(&v[i]);
	free(v);
}

/* ---- apply: register and revoke ---- */

struct apply_ctx {
	const revo_change_t *changes;
	size_t n;
	const char *detail;
	revo_change_result_t *results;
};

static int issuer_exists(wtx_t *w, uint32_t id, revo_errmsg_t *em)
{
	uint8_t key[4];
	MDB_val v;
	revo_be32(key, id);
	int rc = get(w->txn, w->st->issuers, key, 4, &v, em);
	if (rc == REVO_ENOTFOUND)
		return revo_err_set(em, REVO_EINVAL, "no issuer with id %u", id);
	return rc;
}

/* Record @not_after in an existing revocation of @key that lacks it. */
static int set_rev_not_after(wtx_t *w, const uint8_t *key, size_t kl, int64_t not_after,
			     revo_errmsg_t *em)
{
	MDB_val v;
	int rc = get(w->txn, w->st->revoked, key, kl, &v, em);
	if (rc == REVO_ENOTFOUND)
		return REVO_OK;
	if (rc)
		return rc;
	revo_revocation_t old;
	if ((rc = dec_rev(&v, &old, em)) != 0)
		return rc;
	if (old.cert_not_after == not_after)
		return REVO_OK;
	old.cert_not_after = not_after;
	revo_wbuf_t b;
	revo_wbuf_init(&b);
	enc_rev(&b, &old);
	rc = b.oom ? REVO_ENOMEM : put(w->txn, w->st->revoked, key, kl, b.p, b.len, 0, em);
	revo_wbuf_free(&b);
	return rc;
}

static int apply_one(wtx_t *w, const revo_change_t *ch, const char *detail,
		     revo_change_result_t *res, revo_errmsg_t *em)
{
	revo_store_t *st = w->st;
	char sx[REVO_SERIAL_HEX_MAX];
	const revo_cert_rec_t *cert = ch->cert;
	const revo_revocation_t *rq = ch->revoke;
	uint32_t issuer_id = cert ? cert->issuer_id : rq->issuer_id;
	const revo_serial_t *serial = cert ? &cert->serial : &rq->serial;
	uint8_t key[REVO_SKEY_MAX];
	MDB_val v;
	int rc;

	int64_t known_not_after = 0;
	memset(res, 0, sizeof(*res));
	if (cert && rq &&
	    (cert->issuer_id != rq->issuer_id || revo_serial_cmp(&cert->serial, &rq->serial) != 0))
		return revo_err_set(em, REVO_EINVAL, "certificate and revocation do not match");
	if (serial->len == 0 || serial->len > REVO_SERIAL_MAX || serial->mag[0] == 0)
		return revo_err_set(em, REVO_EINVAL, "invalid serial");
	size_t kl = revo_skey_encode(issuer_id, serial, key);
	revo_serial_format(serial, sx);

	if (cert) {
		rc = get(w->txn, st->certs, key, kl, &v, em);
		if (rc == 0) {
			revo_cert_rec_t old;
			if ((rc = dec_cert(&v, &old, em)) != 0)
				return rc;
			if (old.has_sha256 && cert->has_sha256 &&
			    memcmp(old.sha256, cert->sha256, 32) != 0)
				return revo_err_set(
				    em, REVO_EEXIST,
				    "serial %s is already registered for a different "
				    "certificate of this issuer",
				    sx);
			res->cert = REVO_CERT_PRESENT;
			known_not_after = old.not_after;
		} else if (rc == REVO_ENOTFOUND) {
			revo_wbuf_t b;
			revo_wbuf_init(&b);
			enc_cert(&b, cert);
			rc = b.oom ? REVO_ENOMEM
				   : put(w->txn, st->certs, key, kl, b.p, b.len, 0, em);
			revo_wbuf_free(&b);
			if (rc)
				return rc;
			if (cert->cn[0]) {
				size_t cl = strlen(cert->cn);
				if ((rc = put(w->txn, st->by_cn, cert->cn, cl, key, kl, 0, em)) !=
					0 &&
				    rc != REVO_EEXIST)
					return rc;
			}
			revo_journal_entry_t e = {.op = REVO_OP_CERT_ADD,
						  .issuer_id = issuer_id,
						  .has_serial = true,
						  .serial = *serial,
						  .reason = -1,
						  .detail = detail};
			if ((rc = journal_append(w, &e, em)) != 0)
				return rc;
			res->cert = REVO_CERT_ADDED;
			known_not_after = cert->not_after;
			/* revoked before it was registered: the revocation learns its notAfter */
			if ((rc = set_rev_not_after(w, key, kl, cert->not_after, em)) != 0)
				return rc;
		} else {
			return rc;
		}
		res->issued = true;
	} else {
		rc = get(w->txn, st->certs, key, kl, &v, em);
		if (rc != 0 && rc != REVO_ENOTFOUND)
			return rc;
		res->issued = rc == 0;
		if (rc == 0) {
			revo_cert_rec_t old;
			if ((rc = dec_cert(&v, &old, em)) != 0)
				return rc;
			known_not_after = old.not_after;
		}
	}
	if (!rq)
		return REVO_OK;

	if (!revo_reason_valid(rq->reason))
		return revo_err_set(em, REVO_EINVAL, "invalid reason code %d", rq->reason);
	if (rq->reason == REVO_REASON_REMOVE_FROM_CRL)
		return revo_err_set(em, REVO_EINVAL,
				    "removeFromCRL is not a revocation reason (use 'revo unhold')");
	int64_t now = w->now_us / 1000000;
	if (rq->revoked_at > now)
		return revo_err_set(em, REVO_EINVAL, "revocation time of %s is in the future", sx);
	if (rq->revoked_at <= 0)
		return revo_err_set(em, REVO_EINVAL, "revocation time of %s is not set", sx);
	if (rq->invalidity > now)
		return revo_err_set(em, REVO_EINVAL, "invalidity date of %s is in the future", sx);

	revo_revocation_t cur = *rq;
	cur.at_explicit = false;
	cur.cert_not_after = known_not_after;
	rc = get(w->txn, st->revoked, key, kl, &v, em);
	const char *jdetail = detail;
	if (rc == 0) {
		revo_revocation_t old;
		if ((rc = dec_rev(&v, &old, em)) != 0)
			return rc;
		old.issuer_id = issuer_id;
		old.serial = *serial;
		if (!(old.reason == REVO_REASON_CERTIFICATE_HOLD &&
		      rq->reason != REVO_REASON_CERTIFICATE_HOLD)) {
			res->rev = REVO_REV_ALREADY;
			res->current = old;
			return REVO_OK;
		}
		if (!rq->at_explicit)
			cur.revoked_at = old.revoked_at;
		res->rev = REVO_REV_HOLD_REPLACED;
		if (!jdetail)
			jdetail = "replaces certificateHold";
	} else if (rc == REVO_ENOTFOUND) {
		res->rev = REVO_REV_REVOKED;
	} else {
		return rc;
	}
	revo_journal_entry_t e = {.op = REVO_OP_REVOKE,
				  .issuer_id = issuer_id,
				  .has_serial = true,
				  .serial = *serial,
				  .reason = cur.reason,
				  .revoked_at = cur.revoked_at,
				  .invalidity = cur.invalidity,
				  .detail = jdetail};
	if ((rc = journal_append(w, &e, em)) != 0)
		return rc;
	cur.seq = e.seq;
	revo_wbuf_t b;
	revo_wbuf_init(&b);
	enc_rev(&b, &cur);
	rc = b.oom ? REVO_ENOMEM : put(w->txn, st->revoked, key, kl, b.p, b.len, 0, em);
	revo_wbuf_free(&b);
	if (rc)
		return rc;
	res->current = cur;
	return REVO_OK;
}

static int apply_fn(wtx_t *w, void *vctx, revo_errmsg_t *em)
{
	struct apply_ctx *ctx = vctx;
	uint32_t checked = 0;
	for (size_t i = 0; i < ctx->n; i++) {
		const revo_change_t *ch = &ctx->changes[i];
		if (!ch->cert && !ch->revoke)
			continue;
		uint32_t id = ch->cert ? ch->cert->issuer_id : ch->revoke->issuer_id;
		if (id != checked) {
			int rc = issuer_exists(w, id, em);
			if (rc)
				return rc;
			checked = id;
		}
		revo_change_result_t tmp;
		int rc = apply_one(w, ch, ctx->detail, ctx->results ? &ctx->results[i] : &tmp, em);
		if (rc)
			return rc;
	}
	return REVO_OK;
}

int revo_store_apply(revo_store_t *st, const revo_change_t *changes, size_t n, unsigned flags,
		     const char *detail, revo_change_result_t *results, revo_errmsg_t *em)
{
	struct apply_ctx ctx = {.changes = changes, .n = n, .detail = detail, .results = results};
	if (n == 0)
		return REVO_OK;
	return run_write(st, apply_fn, &ctx, flags, em);
}

struct unhold_ctx {
	uint32_t issuer_id;
	const revo_serial_t *serial;
	const char *detail;
	uint64_t seq;
};

static int unhold_fn(wtx_t *w, void *vctx, revo_errmsg_t *em)
{
	struct unhold_ctx *ctx = vctx;
	uint8_t key[REVO_SKEY_MAX];
	char sx[REVO_SERIAL_HEX_MAX];
	MDB_val v;
	size_t kl = revo_skey_encode(ctx->issuer_id, ctx->serial, key);
	revo_serial_format(ctx->serial, sx);
	int rc = issuer_exists(w, ctx->issuer_id, em);
	if (rc)
		return rc;
	rc = get(w->txn, w->st->revoked, key, kl, &v, em);
	if (rc == REVO_ENOTFOUND)
		return revo_err_set(em, REVO_ENOTFOUND, "serial %s is not revoked", sx);
	if (rc)
		return rc;
	revo_revocation_t old;
	if ((rc = dec_rev(&v, &old, em)) != 0)
		return rc;
	if (old.reason != REVO_REASON_CERTIFICATE_HOLD)
		return revo_err_set(em, REVO_ESTATE,
				    "serial %s is revoked for %s, which is permanent: only "
				    "certificateHold can be undone",
				    sx, revo_reason_name(old.reason));
	MDB_val k = {kl, key};
	if ((rc = mdb_del(w->txn, w->st->revoked, &k, NULL)) != 0)
		return lmdb_err(rc, em, "store write");
	revo_journal_entry_t e = {.op = REVO_OP_UNHOLD,
				  .issuer_id = ctx->issuer_id,
				  .has_serial = true,
				  .serial = *ctx->serial,
				  .reason = REVO_REASON_CERTIFICATE_HOLD,
				  .revoked_at = old.revoked_at,
				  .detail = ctx->detail ? ctx->detail : "taken off hold"};
	if ((rc = journal_append(w, &e, em)) != 0)
		return rc;
	ctx->seq = e.seq;
	return REVO_OK;
}

int revo_store_unhold(revo_store_t *st, uint32_t issuer_id, const revo_serial_t *serial,
		      const char *detail, uint64_t *seq, revo_errmsg_t *em)
{
	struct unhold_ctx ctx = {.issuer_id = issuer_id, .serial = serial, .detail = detail};
	int rc = run_write(st, unhold_fn, &ctx, 0, em);
	if (rc == 0 && seq)
		*seq = ctx.seq;
	return rc;
}

/* ---- reads ---- */

int revo_store_lookup(revo_store_t *st, uint32_t issuer_id, const revo_serial_t *serial,
		      revo_cert_rec_t *cert, bool *has_cert, revo_revocation_t *rev, bool *has_rev,
		      revo_errmsg_t *em)
{
	MDB_txn *txn;
	uint8_t key[REVO_SKEY_MAX];
	MDB_val v;
	size_t kl = revo_skey_encode(issuer_id, serial, key);
	revo_cert_rec_t ctmp;
	revo_revocation_t rtmp;
	*has_cert = *has_rev = false;
	int rc = begin(st, MDB_RDONLY, &txn, em);
	if (rc)
		return rc;
	rc = get(txn, st->certs, key, kl, &v, em);
	if (rc == 0) {
		rc = dec_cert(&v, cert ? cert : &ctmp, em);
		if (cert) {
			cert->issuer_id = issuer_id;
			cert->serial = *serial;
		}
		*has_cert = rc == 0;
	}
	if (rc == 0 || rc == REVO_ENOTFOUND) {
		rc = get(txn, st->revoked, key, kl, &v, em);
		if (rc == 0) {
			rc = dec_rev(&v, rev ? rev : &rtmp, em);
			if (rev) {
				rev->issuer_id = issuer_id;
				rev->serial = *serial;
			}
			*has_rev = rc == 0;
		}
	}
	end_read(st, txn);
	return rc == REVO_ENOTFOUND ? REVO_OK : rc;
}

int revo_store_find_cn(revo_store_t *st, const char *cn, uint32_t issuer_id, revo_cert_rec_t **out,
		       size_t *n, revo_errmsg_t *em)
{
	MDB_txn *txn;
	MDB_cursor *c;
	*out = NULL;
	*n = 0;
	size_t cl = strlen(cn);
	if (cl == 0 || cl > REVO_CN_MAX)
		return REVO_OK;
	int rc = begin(st, MDB_RDONLY, &txn, em);
	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(txn, st->by_cn, &c)) != 0) {
		end_read(st, txn);
		return lmdb_err(rc, em, "by_cn");
	}
	revo_cert_rec_t *arr = NULL;
	size_t cnt = 0, cap = 0;
	int err = 0;
	MDB_val k = {cl, (void *)cn}, v;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
		uint32_t id;
		revo_serial_t s;
		if (!revo_skey_decode(v.mv_data, v.mv_size, &id, &s)) {
			err = revo_err_set(em, REVO_ECORRUPT, "corrupt by_cn entry");
			break;
		}
		if (issuer_id && id != issuer_id)
			continue;
		MDB_val cv;
		int grc = get(txn, st->certs, v.mv_data, v.mv_size, &cv, em);
		if (grc == REVO_ENOTFOUND)
			continue;
		if (grc) {
			err = grc;
			break;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 8;
			revo_cert_rec_t *na = realloc(arr, cap * sizeof(*arr));
			if (!na) {
				err = REVO_ENOMEM;
				break;
			}
			arr = na;
		}
		if ((err = dec_cert(&cv, &arr[cnt], em)) != 0)
			break;
		arr[cnt].issuer_id = id;
		arr[cnt].serial = s;
		cnt++;
	}
	if (!err && rc != MDB_NOTFOUND)
		err = lmdb_err(rc, em, "by_cn");
	mdb_cursor_close(c);
	end_read(st, txn);
	if (err) {
		free(arr);
		return err;
	}
	*out = arr;
	*n = cnt;
	return REVO_OK;
}

/* Position @c at the first key of @issuer_id (or the very first when 0). */
static int seek_issuer(MDB_cursor *c, uint32_t issuer_id, MDB_val *k, MDB_val *v)
{
	uint8_t prefix[4];
	if (issuer_id == 0)
		return mdb_cursor_get(c, k, v, MDB_FIRST);
	revo_be32(prefix, issuer_id);
	k->mv_size = 4;
	k->mv_data = prefix;
	return mdb_cursor_get(c, k, v, MDB_SET_RANGE);
}

static bool in_scope(const MDB_val *k, uint32_t issuer_id)
{
	return k->mv_size >= 4 && (issuer_id == 0 || revo_get_be32(k->mv_data) == issuer_id);
}

static int key_cmp(const MDB_val *a, const MDB_val *b)
{
	size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
	int r = memcmp(a->mv_data, b->mv_data, n);
	if (r)
		return r;
	return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

int revo_store_list(revo_store_t *st, uint32_t issuer_id, bool revoked_only, revo_list_cb cb,
		    void *ctx, revo_errmsg_t *em)
{
	return revo_store_list_after(st, issuer_id, NULL, revoked_only, cb, ctx, em);
}

/* Position @c at the first key of @issuer_id greater than @after's key. */
static int seek_after(MDB_cursor *c, uint32_t issuer_id, const revo_serial_t *after, MDB_val *k,
		      MDB_val *v, uint8_t *keybuf)
{
	size_t kl = revo_skey_encode(issuer_id, after, keybuf);
	k->mv_size = kl;
	k->mv_data = keybuf;
	int rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
	if (rc == 0 && k->mv_size == kl && memcmp(k->mv_data, keybuf, kl) == 0)
		rc = mdb_cursor_get(c, k, v, MDB_NEXT);
	return rc;
}

int revo_store_list_after(revo_store_t *st, uint32_t issuer_id, const revo_serial_t *after,
			  bool revoked_only, revo_list_cb cb, void *ctx, revo_errmsg_t *em)
{
	uint8_t kb1[REVO_SKEY_MAX], kb2[REVO_SKEY_MAX];
	MDB_txn *txn;
	MDB_cursor *cc = NULL, *rcur = NULL;
	MDB_val ck, cv, rk, rv;
	int rc = begin(st, MDB_RDONLY, &txn, em);
	if (rc)
		return rc;
	int err = 0, crc = MDB_NOTFOUND, rrc;
	if ((rc = mdb_cursor_open(txn, st->revoked, &rcur)) != 0 ||
	    (!revoked_only && (rc = mdb_cursor_open(txn, st->certs, &cc)) != 0)) {
		err = lmdb_err(rc, em, "store read");
		goto out;
	}
	if (after && issuer_id) {
		rrc = seek_after(rcur, issuer_id, after, &rk, &rv, kb1);
		if (!revoked_only)
			crc = seek_after(cc, issuer_id, after, &ck, &cv, kb2);
	} else {
		rrc = seek_issuer(rcur, issuer_id, &rk, &rv);
		if (!revoked_only)
			crc = seek_issuer(cc, issuer_id, &ck, &cv);
	}
	for (;;) {
		bool have_c = crc == 0 && in_scope(&ck, issuer_id);
		bool have_r = rrc == 0 && in_scope(&rk, issuer_id);
		if ((crc && crc != MDB_NOTFOUND) || (rrc && rrc != MDB_NOTFOUND)) {
			err = lmdb_err(crc && crc != MDB_NOTFOUND ? crc : rrc, em, "store read");
			break;
		}
		if (!have_c && !have_r)
			break;
		int cmp = !have_c ? 1 : !have_r ? -1 : key_cmp(&ck, &rk);
		revo_cert_rec_t crec;
		revo_revocation_t rrec;
		const MDB_val *key = cmp <= 0 ? &ck : &rk;
		uint32_t id;
		revo_serial_t s;
		if (!revo_skey_decode(key->mv_data, key->mv_size, &id, &s)) {
			err = revo_err_set(em, REVO_ECORRUPT, "corrupt serial key");
			break;
		}
		const revo_cert_rec_t *cp = NULL;
		const revo_revocation_t *rp = NULL;
		if (cmp <= 0) {
			if ((err = dec_cert(&cv, &crec, em)) != 0)
				break;
			crec.issuer_id = id;
			crec.serial = s;
			cp = &crec;
		}
		if (cmp >= 0) {
			if ((err = dec_rev(&rv, &rrec, em)) != 0)
				break;
			rrec.issuer_id = id;
			rrec.serial = s;
			rp = &rrec;
		}
		if (revoked_only && !cp) {
			MDB_val v2;
			int grc = get(txn, st->certs, rk.mv_data, rk.mv_size, &v2, em);
			if (grc == 0) {
				if ((err = dec_cert(&v2, &crec, em)) != 0)
					break;
				crec.issuer_id = id;
				crec.serial = s;
				cp = &crec;
			} else if (grc != REVO_ENOTFOUND) {
				err = grc;
				break;
			}
		}
		if ((err = cb(ctx, cp, rp)) != 0)
			break;
		if (cmp <= 0)
			crc = mdb_cursor_get(cc, &ck, &cv, MDB_NEXT);
		if (cmp >= 0)
			rrc = mdb_cursor_get(rcur, &rk, &rv, MDB_NEXT);
	}
out:
	if (cc)
		mdb_cursor_close(cc);
	if (rcur)
		mdb_cursor_close(rcur);
	end_read(st, txn);
	return err;
}

static int journal_walk(revo_store_t *st, MDB_txn *txn, uint64_t since, revo_journal_cb cb,
			void *ctx, revo_errmsg_t *em)
{
	MDB_cursor *c;
	uint8_t key[8];
	char strs[2048];
	int rc = mdb_cursor_open(txn, st->journal, &c);
	if (rc)
		return lmdb_err(rc, em, "journal");
	revo_be64(key, since + 1);
	MDB_val k = {8, key}, v;
	int err = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		revo_journal_entry_t e;
		if ((err = dec_journal(&k, &v, &e, strs, sizeof(strs), em)) != 0)
			break;
		if ((err = cb(ctx, &e)) != 0)
			break;
	}
	if (!err && rc != MDB_NOTFOUND)
		err = lmdb_err(rc, em, "journal");
	mdb_cursor_close(c);
	return err;
}

int revo_store_journal(revo_store_t *st, uint64_t since, revo_journal_cb cb, void *ctx,
		       revo_errmsg_t *em)
{
	MDB_txn *txn;
	int rc = begin(st, MDB_RDONLY, &txn, em);
	if (rc)
		return rc;
	rc = journal_walk(st, txn, since, cb, ctx, em);
	end_read(st, txn);
	return rc;
}

/* ---- CRL state ---- */

#define CRL_STATE_KEY_LEN 8

static void crl_state_key(uint32_t issuer_id, uint8_t *key)
{
	memcpy(key, "crl/", 4);
	revo_be32(key + 4, issuer_id);
}

static int crl_state_get(revo_store_t *st, MDB_txn *txn, uint32_t issuer_id, revo_crl_state_t *out,
			 revo_errmsg_t *em)
{
	uint8_t key[CRL_STATE_KEY_LEN];
	MDB_val v;
	memset(out, 0, sizeof(*out));
	crl_state_key(issuer_id, key);
	int rc = get(txn, st->meta, key, sizeof(key), &v, em);
	if (rc == REVO_ENOTFOUND)
		return REVO_OK;
	if (rc)
		return rc;
	revo_rbuf_t r;
	revo_rbuf_init(&r, v.mv_data, v.mv_size);
	if ((rc = check_version(&r, em, "CRL state")) != 0)
		return rc;
	out->last_number = revo_rbuf_u64(&r);
	out->base_number = revo_rbuf_u64(&r);
	out->base_seq = revo_rbuf_u64(&r);
	out->base_this_update = (int64_t)revo_rbuf_u64(&r);
	out->last_this_update = (int64_t)revo_rbuf_u64(&r);
	return r.bad ? revo_err_set(em, REVO_ECORRUPT, "corrupt CRL state") : REVO_OK;
}

static int crl_state_put(wtx_t *w, uint32_t issuer_id, const revo_crl_state_t *s, revo_errmsg_t *em)
{
	uint8_t key[CRL_STATE_KEY_LEN];
	crl_state_key(issuer_id, key);
	revo_wbuf_t b;
	revo_wbuf_init(&b);
	revo_wbuf_u8(&b, VALUE_VERSION);
	revo_wbuf_u64(&b, s->last_number);
	revo_wbuf_u64(&b, s->base_number);
	revo_wbuf_u64(&b, s->base_seq);
	revo_wbuf_u64(&b, (uint64_t)s->base_this_update);
	revo_wbuf_u64(&b, (uint64_t)s->last_this_update);
	int rc =
	    b.oom ? REVO_ENOMEM : put(w->txn, w->st->meta, key, sizeof(key), b.p, b.len, 0, em);
	revo_wbuf_free(&b);
	return rc;
}

int revo_store_crl_state(revo_store_t *st, uint32_t issuer_id, revo_crl_state_t *out,
			 revo_errmsg_t *em)
{
	MDB_txn *txn;
	int rc = begin(st, MDB_RDONLY, &txn, em);
	if (rc)
		return rc;
	rc = crl_state_get(st, txn, issuer_id, out, em);
	end_read(st, txn);
	return rc;
}

struct crl_alloc_ctx {
	uint32_t issuer_id;
	uint64_t number;
	bool written, full;
	uint64_t seq;
	int64_t this_update;
};

static int crl_alloc_fn(wtx_t *w, void *vctx, revo_errmsg_t *em)
{
	struct crl_alloc_ctx *ctx = vctx;
	revo_crl_state_t s;
	int rc = issuer_exists(w, ctx->issuer_id, em);
	if (rc || (rc = crl_state_get(w->st, w->txn, ctx->issuer_id, &s, em)) != 0)
		return rc;
	if (!ctx->written) {
		s.last_number++;
		ctx->number = s.last_number;
	} else {
		if (ctx->number > s.last_number)
			s.last_number = ctx->number;
		if (ctx->full) {
			s.base_number = ctx->number;
			s.base_seq = ctx->seq;
			s.base_this_update = ctx->this_update;
		}
		s.last_this_update = ctx->this_update;
	}
	return crl_state_put(w, ctx->issuer_id, &s, em);
}

int revo_store_crl_allocate(revo_store_t *st, uint32_t issuer_id, uint64_t *number,
			    revo_errmsg_t *em)
{
	struct crl_alloc_ctx ctx = {.issuer_id = issuer_id};
	int rc = run_write(st, crl_alloc_fn, &ctx, 0, em);
	if (rc == 0)
		*number = ctx.number;
	return rc;
}

int revo_store_crl_written(revo_store_t *st, uint32_t issuer_id, uint64_t number, bool full,
			   uint64_t seq, int64_t this_update, revo_errmsg_t *em)
{
	struct crl_alloc_ctx ctx = {.issuer_id = issuer_id,
				    .number = number,
				    .written = true,
				    .full = full,
				    .seq = seq,
				    .this_update = this_update};
	return run_write(st, crl_alloc_fn, &ctx, 0, em);
}

/* ---- snapshots ---- */

struct revo_snapshot {
	revo_store_t *st;
	MDB_txn *txn;
	uint64_t seq;
};

int revo_store_snapshot(revo_store_t *st, revo_snapshot_t **out, revo_errmsg_t *em)
{
	revo_snapshot_t *s = calloc(1, sizeof(*s));
	if (!s)
		return REVO_ENOMEM;
	s->st = st;
	int rc = begin(st, MDB_RDONLY, &s->txn, em);
	if (rc) {
		free(s);
		return rc;
	}
	MDB_cursor *c;
	MDB_val k, v;
	if ((rc = mdb_cursor_open(s->txn, st->journal, &c)) == 0) {
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		if (rc == 0 && k.mv_size == 8)
			s->seq = revo_get_be64(k.mv_data);
		mdb_cursor_close(c);
	}
	if (rc && rc != MDB_NOTFOUND) {
		rc = lmdb_err(rc, em, "journal");
		revo_snapshot_end(s);
		return rc;
	}
	*out = s;
	return REVO_OK;
}

void revo_snapshot_end(revo_snapshot_t *snap)
{
	if (!snap)
		return;
	end_read(snap->st, snap->txn);
	free(snap);
}

uint64_t revo_snapshot_seq(const revo_snapshot_t *snap)
{
	return snap->seq;
}

int revo_snapshot_revoked(revo_snapshot_t *snap, uint32_t issuer_id, revo_rev_cb cb, void *ctx,
			  revo_errmsg_t *em)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(snap->txn, snap->st->revoked, &c);
	if (rc)
		return lmdb_err(rc, em, "revoked");
	int err = 0;
	for (rc = seek_issuer(c, issuer_id, &k, &v); rc == 0 && in_scope(&k, issuer_id);
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		revo_revocation_t r;
		if (!revo_skey_decode(k.mv_data, k.mv_size, &r.issuer_id, &r.serial)) {
			err = revo_err_set(em, REVO_ECORRUPT, "corrupt serial key");
			break;
		}
		if ((err = dec_rev(&v, &r, em)) != 0)
			break;
		if ((err = cb(ctx, &r)) != 0)
			break;
	}
	if (!err && rc != 0 && rc != MDB_NOTFOUND)
		err = lmdb_err(rc, em, "revoked");
	mdb_cursor_close(c);
	return err;
}

int revo_snapshot_revocation(revo_snapshot_t *snap, uint32_t issuer_id, const revo_serial_t *serial,
			     revo_revocation_t *out, revo_errmsg_t *em)
{
	uint8_t key[REVO_SKEY_MAX];
	MDB_val v;
	size_t kl = revo_skey_encode(issuer_id, serial, key);
	int rc = get(snap->txn, snap->st->revoked, key, kl, &v, em);
	if (rc)
		return rc;
	if ((rc = dec_rev(&v, out, em)) != 0)
		return rc;
	out->issuer_id = issuer_id;
	out->serial = *serial;
	return REVO_OK;
}

int revo_snapshot_journal(revo_snapshot_t *snap, uint64_t since, revo_journal_cb cb, void *ctx,
			  revo_errmsg_t *em)
{
	return journal_walk(snap->st, snap->txn, since, cb, ctx, em);
}

int revo_snapshot_crl_state(revo_snapshot_t *snap, uint32_t issuer_id, revo_crl_state_t *out,
			    revo_errmsg_t *em)
{
	return crl_state_get(snap->st, snap->txn, issuer_id, out, em);
}

/* ---- pre-signed OCSP responses ---- */

#define RESP_KEY_MAX (REVO_SKEY_MAX + 1)

static size_t resp_key(uint32_t issuer_id, const revo_serial_t *s, int hash, uint8_t *out)
{
	size_t n = revo_skey_encode(issuer_id, s, out);
	out[n] = (uint8_t)hash;
	return n + 1;
}

struct resp_put_ctx {
	const revo_ocsp_resp_rec_t *recs;
	size_t n;
};

static int resp_put_fn(wtx_t *w, void *vctx, revo_errmsg_t *em)
{
	struct resp_put_ctx *ctx = vctx;
	revo_wbuf_t b;
	revo_wbuf_init(&b);
	int rc = 0;
	for (size_t i = 0; i < ctx->n && !rc; i++) {
		const revo_ocsp_resp_rec_t *r = &ctx->recs[i];
		uint8_t key[RESP_KEY_MAX];
		size_t kl = resp_key(r->issuer_id, &r->serial, r->hash, key);
		b.len = 0;
		revo_wbuf_u8(&b, VALUE_VERSION);
		revo_wbuf_u8(&b, (uint8_t)r->status);
		revo_wbuf_u64(&b, r->rev_seq);
		revo_wbuf_u64(&b, (uint64_t)r->produced_at);
		revo_wbuf_u64(&b, (uint64_t)r->this_update);
		revo_wbuf_u64(&b, (uint64_t)r->next_update);
		revo_wbuf_raw(&b, r->etag, sizeof(r->etag));
		revo_wbuf_bytes(&b, r->der, r->der_len);
		rc =
		    b.oom ? REVO_ENOMEM : put(w->txn, w->st->responses, key, kl, b.p, b.len, 0, em);
	}
	revo_wbuf_free(&b);
	return rc;
}

int revo_store_responses_put(revo_store_t *st, const revo_ocsp_resp_rec_t *recs, size_t n,
			     revo_errmsg_t *em)
{
	struct resp_put_ctx ctx = {.recs = recs, .n = n};
	if (n == 0)
		return REVO_OK;
	/* pre-signed responses can always be made again: no fsync per batch */
	return run_write(st, resp_put_fn, &ctx, REVO_APPLY_NOSYNC, em);
}

static int dec_resp(const MDB_val *v, revo_ocsp_resp_rec_t *r, revo_errmsg_t *em)
{
	revo_rbuf_t rb;
	revo_rbuf_init(&rb, v->mv_data, v->mv_size);
	int rc = check_version(&rb, em, "OCSP response");
	if (rc)
		return rc;
	r->status = revo_rbuf_u8(&rb);
	r->rev_seq = revo_rbuf_u64(&rb);
	r->produced_at = (int64_t)revo_rbuf_u64(&rb);
	r->this_update = (int64_t)revo_rbuf_u64(&rb);
	r->next_update = (int64_t)revo_rbuf_u64(&rb);
	const uint8_t *e = revo_rbuf_raw(&rb, sizeof(r->etag));
	if (e)
		memcpy(r->etag, e, sizeof(r->etag));
	r->der = revo_rbuf_bytes(&rb, &r->der_len);
	return (rb.bad || !r->der) ? revo_err_set(em, REVO_ECORRUPT, "corrupt OCSP response record")
				   : REVO_OK;
}

/* ---- readers: one renewable read transaction per thread ---- */

struct revo_reader {
	revo_store_t *st;
	MDB_txn *txn;
	bool active;
};

int revo_reader_open(revo_store_t *st, revo_reader_t **out, revo_errmsg_t *em)
{
	revo_reader_t *r = calloc(1, sizeof(*r));
	if (!r)
		return REVO_ENOMEM;
	r->st = st;
	pthread_rwlock_rdlock(&st->map_lock);
	int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &r->txn);
	if (rc == 0)
		mdb_txn_reset(r->txn);
	pthread_rwlock_unlock(&st->map_lock);
	if (rc) {
		free(r);
		return lmdb_err(rc, em, st->dir);
	}
	*out = r;
	return REVO_OK;
}

void revo_reader_close(revo_reader_t *r)
{
	if (!r)
		return;
	revo_reader_end(r);
	mdb_txn_abort(r->txn);
	free(r);
}

/*
 * Readers of one store may run in several threads. A map grown by another process
 * (MDB_MAP_RESIZED) may be adopted only while no transaction of this process is
 * active: readers hold map_lock shared while their transaction is live, and the one
 * that adopts the new size takes it exclusively.
 */
int revo_reader_begin(revo_reader_t *r, revo_errmsg_t *em)
{
	if (r->active)
		return REVO_OK;
	pthread_rwlock_rdlock(&r->st->map_lock);
	int rc = mdb_txn_renew(r->txn);
	if (rc == MDB_MAP_RESIZED) {
		pthread_rwlock_unlock(&r->st->map_lock);
		pthread_rwlock_wrlock(&r->st->map_lock);
		if (atomic_load(&r->st->reads) == 0)
			mdb_env_set_mapsize(r->st->env, 0);
		pthread_rwlock_unlock(&r->st->map_lock);
		pthread_rwlock_rdlock(&r->st->map_lock);
		rc = mdb_txn_renew(r->txn);
	}
	if (rc) {
		pthread_rwlock_unlock(&r->st->map_lock);
		return lmdb_err(rc, em, r->st->dir);
	}
	r->active = true;
	atomic_fetch_add(&r->st->reads, 1);
	return REVO_OK;
}

void revo_reader_end(revo_reader_t *r)
{
	if (r->active) {
		mdb_txn_reset(r->txn);
		r->active = false;
		atomic_fetch_sub(&r->st->reads, 1);
		pthread_rwlock_unlock(&r->st->map_lock);
	}
}

int revo_reader_response(revo_reader_t *r, uint32_t issuer_id, const revo_serial_t *serial,
			 int hash, revo_ocsp_resp_rec_t *out, revo_errmsg_t *em)
{
	uint8_t key[RESP_KEY_MAX];
	MDB_val v;
	size_t kl = resp_key(issuer_id, serial, hash, key);
	int rc = get(r->txn, r->st->responses, key, kl, &v, em);
	if (rc)
		return rc;
	out->issuer_id = issuer_id;
	out->serial = *serial;
	out->hash = hash;
	return dec_resp(&v, out, em);
}

int revo_reader_status(revo_reader_t *r, uint32_t issuer_id, const revo_serial_t *serial,
		       revo_cert_rec_t *cert, bool *has_cert, revo_revocation_t *rev, bool *has_rev,
		       revo_errmsg_t *em)
{
	uint8_t key[REVO_SKEY_MAX];
	MDB_val v;
	size_t kl = revo_skey_encode(issuer_id, serial, key);
	*has_cert = *has_rev = false;
	int rc = get(r->txn, r->st->certs, key, kl, &v, em);
	if (rc == 0 && cert) {
		rc = dec_cert(&v, cert, em);
		cert->issuer_id = issuer_id;
		cert->serial = *serial;
	}
	if (rc == 0)
		*has_cert = true;
	else if (rc != REVO_ENOTFOUND)
		return rc;
	rc = get(r->txn, r->st->revoked, key, kl, &v, em);
	if (rc == REVO_ENOTFOUND)
		return REVO_OK;
	if (rc)
		return rc;
	if (rev) {
		if ((rc = dec_rev(&v, rev, em)) != 0)
			return rc;
		rev->issuer_id = issuer_id;
		rev->serial = *serial;
	}
	*has_rev = true;
	return REVO_OK;
}

int revo_reader_revocation(revo_reader_t *r, uint32_t issuer_id, const revo_serial_t *serial,
			   revo_revocation_t *out, revo_errmsg_t *em)
{
	uint8_t key[REVO_SKEY_MAX];
	MDB_val v;
	size_t kl = revo_skey_encode(issuer_id, serial, key);
	int rc = get(r->txn, r->st->revoked, key, kl, &v, em);
	if (rc)
		return rc;
	if ((rc = dec_rev(&v, out, em)) != 0)
		return rc;
	out->issuer_id = issuer_id;
	out->serial = *serial;
	return REVO_OK;
}

int revo_reader_responses(revo_reader_t *r, revo_resp_cb cb, void *ctx, revo_errmsg_t *em)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(r->txn, r->st->responses, &c);
	if (rc)
		return lmdb_err(rc, em, "responses");
	int err = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		revo_ocsp_resp_rec_t rec;
		if (k.mv_size < 2 ||
		    !revo_skey_decode(k.mv_data, k.mv_size - 1, &rec.issuer_id, &rec.serial)) {
			err = revo_err_set(em, REVO_ECORRUPT, "corrupt response key");
			break;
		}
		rec.hash = ((const uint8_t *)k.mv_data)[k.mv_size - 1];
		if ((err = dec_resp(&v, &rec, em)) != 0 || (err = cb(ctx, &rec)) != 0)
			break;
	}
	if (!err && rc != MDB_NOTFOUND)
		err = lmdb_err(rc, em, "responses");
	mdb_cursor_close(c);
	return err;
}

int revo_reader_certs(revo_reader_t *r, uint32_t issuer_id, revo_list_cb cb, void *ctx,
		      revo_errmsg_t *em)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(r->txn, r->st->certs, &c);
	if (rc)
		return lmdb_err(rc, em, "certs");
	int err = 0;
	for (rc = seek_issuer(c, issuer_id, &k, &v); rc == 0 && in_scope(&k, issuer_id);
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		revo_cert_rec_t rec;
		if (!revo_skey_decode(k.mv_data, k.mv_size, &rec.issuer_id, &rec.serial)) {
			err = revo_err_set(em, REVO_ECORRUPT, "corrupt serial key");
			break;
		}
		if ((err = dec_cert(&v, &rec, em)) != 0 || (err = cb(ctx, &rec, NULL)) != 0)
			break;
	}
	if (!err && rc != 0 && rc != MDB_NOTFOUND)
		err = lmdb_err(rc, em, "certs");
	mdb_cursor_close(c);
	return err;
}

/* ---- targets ---- */

static void enc_target(revo_wbuf_t *b, const revo_target_t *t)
{
	revo_wbuf_u8(b, VALUE_VERSION);
	revo_wbuf_str(b, t->url);
	revo_wbuf_u32(b, t->issuer_id);
	revo_wbuf_str(b, t->region);
	revo_wbuf_str(b, t->endpoint);
	revo_wbuf_str(b, t->profile);
	revo_wbuf_str(b, t->trust_anchor);
	revo_wbuf_u32(b, t->flags);
	revo_wbuf_u64(b, (uint64_t)t->last_attempt);
	revo_wbuf_u64(b, (uint64_t)t->last_success);
	revo_wbuf_u64(b, t->crl_number);
	revo_wbuf_u64(b, t->crl_seq);
	revo_wbuf_u8(b, t->has_sha256);
	revo_wbuf_raw(b, t->sha256, 32);
	revo_wbuf_str(b, t->remote_id);
	revo_wbuf_str(b, t->remote_etag);
	revo_wbuf_str(b, t->last_error);
	revo_wbuf_u32(b, t->failures);
}

void revo_target_clear(revo_target_t *t)
{
	free(t->url);
	free(t->region);
	free(t->endpoint);
	free(t->profile);
	free(t->trust_anchor);
	free(t->remote_id);
	free(t->remote_etag);
	free(t->last_error);
	memset(t, 0, sizeof(*t));
}

static int dec_target(const MDB_val *k, const MDB_val *v, revo_target_t *t, revo_errmsg_t *em)
{
	revo_rbuf_t r;
	bool oom = false;
	memset(t, 0, sizeof(*t));
	if (k->mv_size == 0 || k->mv_size > REVO_TARGET_NAME_MAX)
		return revo_err_set(em, REVO_ECORRUPT, "corrupt target key");
	memcpy(t->name, k->mv_data, k->mv_size);
	revo_rbuf_init(&r, v->mv_data, v->mv_size);
	int rc = check_version(&r, em, "target");
	if (rc)
		return rc;
	size_t n;
	const uint8_t *p;
#define TSTR(field) (p = revo_rbuf_bytes(&r, &n), t->field = dup_bytes(p, n, true, &oom))
	TSTR(url);
	t->issuer_id = revo_rbuf_u32(&r);
	TSTR(region);
	TSTR(endpoint);
	TSTR(profile);
	TSTR(trust_anchor);
	t->flags = revo_rbuf_u32(&r);
	t->last_attempt = (int64_t)revo_rbuf_u64(&r);
	t->last_success = (int64_t)revo_rbuf_u64(&r);
	t->crl_number = revo_rbuf_u64(&r);
	t->crl_seq = revo_rbuf_u64(&r);
	t->has_sha256 = revo_rbuf_u8(&r);
	const uint8_t *h = revo_rbuf_raw(&r, 32);
	if (h)
		memcpy(t->sha256, h, 32);
	TSTR(remote_id);
	TSTR(remote_etag);
	TSTR(last_error);
	t->failures = revo_rbuf_u32(&r);
#undef TSTR
	if (oom || r.bad || !t->url) {
		revo_target_clear(t);
		return oom ? REVO_ENOMEM : revo_err_set(em, REVO_ECORRUPT, "corrupt target record");
	}
	return REVO_OK;
}

struct target_ctx {
	const revo_target_t *t;
	bool add;
};

static int target_fn(wtx_t *w, void *vctx, revo_errmsg_t *em)
{
	struct target_ctx *ctx = vctx;
	const revo_target_t *t = ctx->t;
	size_t kl = strlen(t->name);
	MDB_val v;
	int rc = get(w->txn, w->st->targets, t->name, kl, &v, em);
	revo_target_t merged;
	const revo_target_t *out = t;
	if (ctx->add) {
		if (rc == 0)
			return revo_err_set(em, REVO_EEXIST, "target '%s' already exists", t->name);
		if (rc != REVO_ENOTFOUND)
			return rc;
		if ((rc = issuer_exists(w, t->issuer_id, em)) != 0)
			return rc;
	} else {
		if (rc == REVO_ENOTFOUND)
			return revo_err_set(em, REVO_ENOTFOUND, "no target named '%s'", t->name);
		if (rc)
			return rc;
		MDB_val k = {kl, (void *)t->name};
		if ((rc = dec_target(&k, &v, &merged, em)) != 0)
			return rc;
		if (t->crl_number < merged.crl_number) {
			revo_target_clear(&merged);
			return revo_err_set(
			    em, REVO_ESTATE,
			    "target '%s' is recorded with CRL %llu; %llu would go back", t->name,
			    (unsigned long long)merged.crl_number,
			    (unsigned long long)t->crl_number);
		}
		/* keep the configuration, take the state */
		revo_target_t tmp = *t;
		tmp.url = merged.url;
		tmp.issuer_id = merged.issuer_id;
		tmp.region = merged.region;
		tmp.endpoint = merged.endpoint;
		tmp.profile = merged.profile;
		tmp.trust_anchor = merged.trust_anchor;
		tmp.flags = merged.flags;
		revo_wbuf_t b;
		revo_wbuf_init(&b);
		enc_target(&b, &tmp);
		rc = b.oom ? REVO_ENOMEM
			   : put(w->txn, w->st->targets, t->name, kl, b.p, b.len, 0, em);
		revo_wbuf_free(&b);
		revo_target_clear(&merged);
		return rc;
	}
	(void)out;
	revo_wbuf_t b;
	revo_wbuf_init(&b);
	enc_target(&b, t);
	rc = b.oom ? REVO_ENOMEM : put(w->txn, w->st->targets, t->name, kl, b.p, b.len, 0, em);
	revo_wbuf_free(&b);
	if (rc)
		return rc;
	revo_journal_entry_t e = {
	    .op = REVO_OP_TARGET_ADD, .issuer_id = t->issuer_id, .reason = -1, .detail = t->name};
	return journal_append(w, &e, em);
}

int revo_store_target_add(revo_store_t *st, const revo_target_t *t, revo_errmsg_t *em)
{
	size_t n = strlen(t->name);
	if (n == 0 || n > REVO_TARGET_NAME_MAX || !valid_issuer_name(t->name))
		return revo_err_set(em, REVO_EINVAL,
				    "target name '%s' is not valid (1-63 of A-Z a-z 0-9 . _ -)",
				    t->name);
	if (!t->url)
		return revo_err_set(em, REVO_EINVAL, "target needs a URL");
	struct target_ctx ctx = {.t = t, .add = true};
	return run_write(st, target_fn, &ctx, 0, em);
}

int revo_store_target_state(revo_store_t *st, const revo_target_t *t, revo_errmsg_t *em)
{
	struct target_ctx ctx = {.t = t, .add = false};
	return run_write(st, target_fn, &ctx, 0, em);
}

int revo_store_targets(revo_store_t *st, revo_target_t **out, size_t *n, revo_errmsg_t *em)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	*out = NULL;
	*n = 0;
	int rc = begin(st, MDB_RDONLY, &txn, em);
	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(txn, st->targets, &c)) != 0) {
		end_read(st, txn);
		return lmdb_err(rc, em, "targets");
	}
	revo_target_t *arr = NULL;
	size_t cnt = 0, cap = 0;
	int err = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 4;
			revo_target_t *na = realloc(arr, cap * sizeof(*arr));
			if (!na) {
				err = REVO_ENOMEM;
				break;
			}
			arr = na;
		}
		if ((err = dec_target(&k, &v, &arr[cnt], em)) != 0)
			break;
		cnt++;
	}
	if (!err && rc != MDB_NOTFOUND)
		err = lmdb_err(rc, em, "targets");
	mdb_cursor_close(c);
	end_read(st, txn);
	if (err) {
		revo_targets_free(arr, cnt);
		return err;
	}
	*out = arr;
	*n = cnt;
	return REVO_OK;
}

void revo_targets_free(revo_target_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		revo_target_clear(&v[i]);
	free(v);
}

uint64_t revo_store_txn_id(revo_store_t *st)
{
	MDB_envinfo info;
	if (mdb_env_info(st->env, &info) != 0)
		return 0;
	return (uint64_t)info.me_last_txnid;
}

const char *revo_store_dir(const revo_store_t *st)
{
	return st->dir;
}

static int target_remove_fn(wtx_t *w, void *vctx, revo_errmsg_t *em)
{
	const char *name = vctx;
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(w->txn, w->st->targets, &k, &v);
	if (rc == MDB_NOTFOUND)
		return revo_err_set(em, REVO_ENOTFOUND, "no target named '%s'", name);
	if (rc)
		return lmdb_err(rc, em, "targets");
	revo_target_t t;
	if ((rc = dec_target(&k, &v, &t, em)) != 0)
		return rc;
	uint32_t issuer = t.issuer_id;
	revo_target_clear(&t);
	if ((rc = mdb_del(w->txn, w->st->targets, &k, NULL)) != 0)
		return lmdb_err(rc, em, "targets");
	revo_journal_entry_t e = {
	    .op = REVO_OP_TARGET_REMOVE, .issuer_id = issuer, .reason = -1, .detail = name};
	return journal_append(w, &e, em);
}

int revo_store_target_remove(revo_store_t *st, const char *name, revo_errmsg_t *em)
{
	return run_write(st, target_remove_fn, (void *)name, 0, em);
}
