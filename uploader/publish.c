/*
 * The publisher. One process per store holds DIR/publish.lock (flock). Its main thread
 * watches the store (the last transaction id, then the journal since the last sequence
 * it saw: no file polling, no IPC), re-signs the OCSP responses of every serial a change
 * touched, rebuilds the issuer's CRL and hands it to the issuer's targets. Each target
 * has a thread of its own that uploads the newest CRL it was given, retrying with
 * exponential backoff and full jitter, so one target that is down never delays another.
 * Every attempt is recorded in the store (revo target list). CRLs are also rebuilt on
 * the issuer's schedule, and all responses re-signed at half their validity.
 */
#include "uploader/uploader.h"

#include "crl/crl.h"
#include "ocsp/ocsp.h"
#include "pki/key.h"
#include "pki/notify.h"
#include "pki/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS         50
#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS  60000

/* ---- the lock ---- */

static int lock_path(const char *dir, char *buf, size_t len)
{
	return snprintf(buf, len, "%s/publish.lock", dir) < (int)len ? 0 : -1;
}

static long lock_holder(int fd)
{
	char buf[32] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

/* Take the publish lock: the fd, or -1 (busy: *@pid names the holder) or -2 (error). */
static int lock_take(const char *dir, long *pid, revo_errmsg_t *em)
{
	char path[4200];
	if (lock_path(dir, path, sizeof(path)))
		return -2;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
	if (fd < 0) {
		revo_err_set(em, REVO_EACCES, "%s: %s", path, strerror(errno));
		return -2;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		*pid = lock_holder(fd);
		close(fd);
		return -1;
	}
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		/* the pid is informative only */
	}
	return fd;
}

bool revo_publish_running(const char *dir, long *pid)
{
	char path[4200];
	if (lock_path(dir, path, sizeof(path)))
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool busy = flock(fd, LOCK_SH | LOCK_NB) != 0;
	if (busy && pid)
		*pid = lock_holder(fd);
	close(fd);
	return busy;
}

/* ---- shared CRLs ---- */

typedef struct blob_ref {
	revo_crl_blob_t b;
	uint8_t *der;
	char issuer[REVO_ISSUER_NAME_MAX + 1];
	atomic_int refs;
} blob_ref_t;

static void blob_unref(blob_ref_t *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
		free(r->der);
		free(r);
	}
}

/* ---- per issuer ---- */

typedef struct issuer_ctx {
	revo_issuer_t *is; /* borrowed from the issuer array */
	EVP_PKEY *ca_key;
	revo_ocsp_signer_t signer;
	int64_t last_crl;     /* when the last CRL was built */
	int64_t last_presign; /* when every response was last re-signed */
	blob_ref_t *crl;
} issuer_ctx_t;

typedef struct pub pub_t;

typedef struct target_worker {
	pub_t *p;
	revo_target_t t; /* configuration and state; the worker owns the state */
	pthread_t tid;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	blob_ref_t *pending;  /* newest CRL to deliver */
	uint64_t done_number; /* last CRL number attempted to completion */
	int64_t next_attempt_ms;
	int attempts_for_pending;
	bool finished_pending; /* --once: the pending CRL got a final outcome */
	bool ok;               /* ... and it was a success */
	bool stop;
} target_worker_t;

struct pub {
	const revo_publish_cfg_t *cfg;
	revo_store_t *st;
	pthread_mutex_t store_mu; /* store writes from several threads */
	pthread_mutex_t cb_mu;
	revo_issuer_t *issuers;
	size_t n_issuers;
	issuer_ctx_t *ictx;
	target_worker_t **workers;
	size_t n_workers;
	target_worker_t **retired; /* removed targets' workers, finishing what they do */
	size_t n_retired;
	bool reload;             /* issuers or targets changed: reload them */
	bool reload_all;         /* ... and publish every issuer again (or too many) */
	uint32_t reload_ids[16]; /* ... and publish these issuers again */
	size_t n_reload_ids;
	uint64_t last_seq;
	uint64_t last_txn;
};

static volatile sig_atomic_t stop_flag, reload_flag;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_flag = 1;
	else
		stop_flag = 1;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void emit(pub_t *p, int ev, const char *target, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void emit(pub_t *p, int ev, const char *target, const char *fmt, ...)
{
	if (!p->cfg->cb)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&p->cb_mu);
	p->cfg->cb(p->cfg->cb_ctx, ev, target, msg);
	pthread_mutex_unlock(&p->cb_mu);
}

/* ---- target workers ---- */

static int64_t backoff_ms(int failures)
{
	int64_t d = BACKOFF_BASE_MS;
	for (int i = 1; i < failures && d < BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	uint32_t r = 0;
	RAND_bytes((unsigned char *)&r, sizeof(r));
	return d / 2 + (int64_t)(r % (uint32_t)(d / 2 + 1)); /* jitter in [d/2, d] */
}

static void record(pub_t *p, target_worker_t *w)
{
	revo_errmsg_t em = {{0}};
	pthread_mutex_lock(&p->store_mu);
	int rc = revo_store_target_state(p->st, &w->t, &em);
	pthread_mutex_unlock(&p->store_mu);
	if (rc)
		emit(p, REVO_EV_INFO, w->t.name, "cannot record the target's state: %s",
		     em.msg[0] ? em.msg : revo_strerror(rc));
}

/* One attempt to deliver @b; true when the CRL needs no further attempt. */
static bool attempt(pub_t *p, target_worker_t *w, blob_ref_t *b)
{
	revo_upload_result_t res;
	revo_errmsg_t em = {{0}};
	w->t.last_attempt = revo_now();
	int rc = revo_upload_crl(&w->t, &b->b, &res, &em);
	if (res.remote_id[0]) {
		free(w->t.remote_id);
		w->t.remote_id = strdup(res.remote_id);
	}
	if (rc == 0) {
		w->t.last_success = revo_now();
		w->t.crl_number = b->b.number;
		w->t.crl_seq = b->b.seq;
		w->t.has_sha256 = true;
		memcpy(w->t.sha256, res.sha256, 32);
		free(w->t.remote_etag);
		w->t.remote_etag = res.etag[0] ? strdup(res.etag) : NULL;
		free(w->t.last_error);
		w->t.last_error = NULL;
		w->t.failures = 0;
		record(p, w);
		emit(p, REVO_EV_UPLOADED, w->t.name, "CRL %llu of issuer '%s' uploaded",
		     (unsigned long long)b->b.number, b->issuer);
		return true;
	}
	const char *why = em.msg[0] ? em.msg : revo_strerror(rc);
	free(w->t.last_error);
	w->t.last_error = strdup(why);
	if (res.skipped) {
		/* the target holds a newer CRL: the record follows the target, never back */
		if (res.remote_number > w->t.crl_number)
			w->t.crl_number = res.remote_number;
		record(p, w);
		emit(p, REVO_EV_SKIPPED, w->t.name, "%s", why);
		return true;
	}
	w->t.failures++;
	record(p, w);
	emit(p, REVO_EV_UPLOAD_FAILED, w->t.name, "%s%s", why,
	     res.retryable ? "" : " (not retried until the next CRL)");
	return !res.retryable;
}

static void *worker_main(void *arg)
{
	target_worker_t *w = arg;
	pub_t *p = w->p;
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		blob_ref_t *b = w->pending;
		int64_t now = mono_ms();
		if (b && b->b.number > w->done_number && now >= w->next_attempt_ms) {
			atomic_fetch_add(&b->refs, 1);
			pthread_mutex_unlock(&w->mu);
			bool final = attempt(p, w, b);
			pthread_mutex_lock(&w->mu);
			w->attempts_for_pending++;
			if (final) {
				w->done_number = b->b.number;
				w->finished_pending = true;
				w->ok = w->t.failures == 0 && w->t.crl_number == b->b.number;
				w->next_attempt_ms = 0;
			} else {
				w->next_attempt_ms = mono_ms() + backoff_ms((int)w->t.failures);
				if (p->cfg->once && w->attempts_for_pending >= 4) {
					/* --once: a few quick retries, then report */
					w->done_number = b->b.number;
					w->finished_pending = true;
					w->ok = false;
				}
			}
			blob_unref(b);
			pthread_cond_broadcast(&w->cv);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t wait_ms = 1000;
		if (b && b->b.number > w->done_number && w->next_attempt_ms > now)
			wait_ms = w->next_attempt_ms - now;
		ts.tv_sec += wait_ms / 1000;
		ts.tv_nsec += (wait_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void hand(target_worker_t *w, blob_ref_t *b)
{
	pthread_mutex_lock(&w->mu);
	if (!w->pending || w->pending->b.number < b->b.number) {
		atomic_fetch_add(&b->refs, 1);
		blob_unref(w->pending);
		w->pending = b;
		w->next_attempt_ms = 0;
		w->attempts_for_pending = 0;
		w->finished_pending = false;
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static int workers_start(pub_t *p, revo_errmsg_t *em)
{
	revo_target_t *ts;
	size_t n;
	int rc = revo_store_targets(p->st, &ts, &n, em);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		bool known = false;
		for (size_t k = 0; k < p->n_workers; k++)
			known |= strcmp(p->workers[k]->t.name, ts[i].name) == 0;
		bool wanted = !p->cfg->issuer;
		for (size_t k = 0; k < p->n_issuers; k++)
			if (p->issuers[k].id == ts[i].issuer_id)
				wanted = true;
		if (known || !wanted) {
			revo_target_clear(&ts[i]);
			continue;
		}
		target_worker_t *w = calloc(1, sizeof(*w));
		target_worker_t **nw = realloc(p->workers, (p->n_workers + 1) * sizeof(*nw));
		if (!w || !nw) {
			free(w);
			revo_target_clear(&ts[i]);
			continue;
		}
		p->workers = nw;
		w->p = p;
		w->t = ts[i]; /* takes the fields */
		w->done_number = w->t.crl_number;
		pthread_mutex_init(&w->mu, NULL);
		pthread_cond_init(&w->cv, NULL);
		p->workers[p->n_workers++] = w;
		w->started = pthread_create(&w->tid, NULL, worker_main, w) == 0;
		/* a target added while running gets the newest CRL now, not the next one */
		for (size_t k = 0; p->ictx && k < p->n_issuers; k++)
			if (p->ictx[k].is->id == w->t.issuer_id && p->ictx[k].crl)
				hand(w, p->ictx[k].crl);
	}
	free(ts);
	return REVO_OK;
}

static void worker_signal_stop(target_worker_t *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void worker_join_free(target_worker_t *w)
{
	if (w->started)
		pthread_join(w->tid, NULL);
	blob_unref(w->pending);
	revo_target_clear(&w->t);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

static void workers_stop(pub_t *p)
{
	for (size_t i = 0; i < p->n_workers; i++)
		worker_signal_stop(p->workers[i]);
	for (size_t i = 0; i < p->n_retired; i++)
		worker_signal_stop(p->retired[i]);
	for (size_t i = 0; i < p->n_workers; i++)
		worker_join_free(p->workers[i]);
	for (size_t i = 0; i < p->n_retired; i++)
		worker_join_free(p->retired[i]);
	free(p->workers);
	free(p->retired);
	p->workers = p->retired = NULL;
	p->n_workers = p->n_retired = 0;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* The same target, configured the same way (removed and added again differently: not). */
static bool target_same(const revo_target_t *a, const revo_target_t *b)
{
	return strcmp(a->name, b->name) == 0 && a->issuer_id == b->issuer_id &&
	       a->flags == b->flags && same_str(a->url, b->url) && same_str(a->region, b->region) &&
	       same_str(a->endpoint, b->endpoint) && same_str(a->profile, b->profile) &&
	       same_str(a->trust_anchor, b->trust_anchor);
}

/*
 * Retire the workers of targets that were removed (or changed): they are told to stop,
 * and an upload in flight ends on its own (its state write then finds no target), so a
 * hanging target never holds the publisher. They are joined when the publisher stops.
 */
static void workers_prune(pub_t *p)
{
	revo_target_t *ts;
	size_t n;
	if (revo_store_targets(p->st, &ts, &n, NULL) != 0)
		return;
	size_t k = 0;
	for (size_t i = 0; i < p->n_workers; i++) {
		target_worker_t *w = p->workers[i];
		bool keep = false;
		for (size_t j = 0; j < n && !keep; j++)
			keep = target_same(&ts[j], &w->t);
		target_worker_t **nr =
		    keep ? NULL : realloc(p->retired, (p->n_retired + 1) * sizeof(*nr));
		if (keep || !nr) {
			p->workers[k++] = w;
			continue;
		}
		emit(p, REVO_EV_INFO, w->t.name, "target removed: no more uploads to it");
		worker_signal_stop(w);
		p->retired = nr;
		p->retired[p->n_retired++] = w;
	}
	p->n_workers = k;
	revo_targets_free(ts, n);
}

/* ---- issuers: keys, CRLs, OCSP ---- */

static int issuers_load(pub_t *p, revo_errmsg_t *em)
{
	int rc = revo_store_issuers(p->st, &p->issuers, &p->n_issuers, em);
	if (rc)
		return rc;
	if (p->cfg->issuer) {
		size_t k = 0;
		for (size_t i = 0; i < p->n_issuers; i++) {
			if (strcmp(p->issuers[i].name, p->cfg->issuer) == 0) {
				if (i != k) {
					revo_issuer_t tmp = p->issuers[k];
					p->issuers[k] = p->issuers[i];
					p->issuers[i] = tmp;
				}
				k++;
			}
		}
		if (k == 0)
			return revo_err_set(em, REVO_ENOTFOUND, "no issuer named '%s'",
					    p->cfg->issuer);
		/* keep the array whole for freeing; use only the first k */
		for (size_t i = k; i < p->n_issuers; i++)
			p->issuers[i].id = 0;
	}
	p->ictx = calloc(p->n_issuers ? p->n_issuers : 1, sizeof(*p->ictx));
	if (!p->ictx)
		return REVO_ENOMEM;
	revo_key_opts_t ko = {.pass_file = p->cfg->pass_file, .force_perms = p->cfg->force_perms};
	for (size_t i = 0; i < p->n_issuers; i++) {
		issuer_ctx_t *c = &p->ictx[i];
		c->is = &p->issuers[i];
		if (!c->is->id)
			continue;
		if ((rc = revo_key_load(c->is->key_ref, &ko, &c->ca_key, em)) != 0)
			return revo_err_set(em, rc, "issuer '%s': %s", c->is->name, em->msg);
		if ((rc = revo_ocsp_signer_load(c->is, false, p->cfg->pass_file,
						p->cfg->force_perms, &c->signer, em)) != 0)
			return rc;
	}
	return REVO_OK;
}

static void issuers_free(pub_t *p)
{
	for (size_t i = 0; p->ictx && i < p->n_issuers; i++) {
		EVP_PKEY_free(p->ictx[i].ca_key);
		if (p->ictx[i].signer.ca)
			revo_ocsp_signer_free(&p->ictx[i].signer);
		blob_unref(p->ictx[i].crl);
	}
	free(p->ictx);
	revo_issuers_free(p->issuers, p->n_issuers);
}

/* Load issuers and keys again; on failure the ones loaded stay in use. */
static int issuers_reload(pub_t *p, revo_errmsg_t *em)
{
	pub_t fresh = {.cfg = p->cfg, .st = p->st};
	int rc = issuers_load(&fresh, em);
	if (rc) {
		issuers_free(&fresh);
		return rc;
	}
	/* what was done for an issuer still holds: its schedule and its newest CRL */
	for (size_t i = 0; i < fresh.n_issuers; i++)
		for (size_t k = 0; k < p->n_issuers; k++)
			if (fresh.ictx[i].is->id && fresh.ictx[i].is->id == p->ictx[k].is->id) {
				fresh.ictx[i].last_crl = p->ictx[k].last_crl;
				fresh.ictx[i].last_presign = p->ictx[k].last_presign;
				fresh.ictx[i].crl = p->ictx[k].crl;
				p->ictx[k].crl = NULL;
			}
	issuers_free(p);
	p->issuers = fresh.issuers;
	p->n_issuers = fresh.n_issuers;
	p->ictx = fresh.ictx;
	return REVO_OK;
}

/* Build the issuer's CRL into DIR/crl/NAME.crl and hand it to its targets. */
static int publish_crl(pub_t *p, issuer_ctx_t *c, revo_errmsg_t *em)
{
	char dir[4200], path[4400];
	snprintf(dir, sizeof(dir), "%s/crl", p->cfg->store_dir);
	mkdir(dir, 0770);
	snprintf(path, sizeof(path), "%s/%s.crl", dir, c->is->name);
	revo_crl_opts_t o = {0};
	revo_crl_info_t info;
	pthread_mutex_lock(&p->store_mu);
	int rc = revo_crl_build(p->st, c->is, c->ca_key, &o, path, &info, em);
	pthread_mutex_unlock(&p->store_mu);
	if (rc)
		return rc;
	blob_ref_t *b = calloc(1, sizeof(*b));
	FILE *f = b ? fopen(path, "rb") : NULL;
	if (b)
		b->der = malloc(info.der_size ? info.der_size : 1);
	if (!f || !b->der || fread(b->der, 1, info.der_size, f) != info.der_size) {
		if (f)
			fclose(f);
		if (b)
			free(b->der);
		free(b);
		return revo_err_set(em, REVO_EIO, "cannot read back %s", path);
	}
	fclose(f);
	atomic_init(&b->refs, 1);
	snprintf(b->issuer, sizeof(b->issuer), "%s", c->is->name);
	b->b = (revo_crl_blob_t){.der = b->der,
				 .der_len = info.der_size,
				 .number = info.number,
				 .seq = info.seq,
				 .this_update = info.this_update,
				 .next_update = info.next_update,
				 .entries = info.entries,
				 .issuer = b->issuer};
	blob_unref(c->crl);
	c->crl = b;
	c->last_crl = revo_now();
	emit(p, REVO_EV_CRL_BUILT, NULL, "CRL %llu of issuer '%s' built: %zu entries, %zu octets",
	     (unsigned long long)info.number, c->is->name, info.entries, info.der_size);
	for (size_t i = 0; i < p->n_workers; i++)
		if (p->workers[i]->t.issuer_id == c->is->id)
			hand(p->workers[i], b);
	return REVO_OK;
}

static int presign_all(pub_t *p, issuer_ctx_t *c, revo_errmsg_t *em)
{
	revo_presign_stats_t st;
	pthread_mutex_lock(&p->store_mu);
	int rc = revo_ocsp_presign(p->st, c->is, &c->signer, &st, em);
	pthread_mutex_unlock(&p->store_mu);
	if (rc == 0) {
		c->last_presign = revo_now();
		emit(p, REVO_EV_OCSP_SIGNED, NULL, "%zu OCSP responses of issuer '%s' re-signed",
		     st.responses, c->is->name);
	}
	return rc;
}

/* ---- change feed ---- */

typedef struct changes {
	pub_t *p;
	uint64_t last;
	bool issuers_changed, targets_changed, targets_removed;
	struct {
		uint32_t issuer;
		bool listed; /* a revocation or unhold: the CRL changes */
		revo_serial_t serial;
	} * v;
	size_t n, cap;
	bool oom;
} changes_t;

static int change_cb(void *ctx, const revo_journal_entry_t *e)
{
	changes_t *ch = ctx;
	ch->last = e->seq;
	if (e->op == REVO_OP_ISSUER_ADD || e->op == REVO_OP_ISSUER_SET) {
		pub_t *p = ch->p;
		ch->issuers_changed = true;
		if (p->n_reload_ids < sizeof(p->reload_ids) / sizeof(p->reload_ids[0]))
			p->reload_ids[p->n_reload_ids++] = e->issuer_id;
		else
			p->reload_all = true;
	}
	if (e->op == REVO_OP_TARGET_REMOVE)
		ch->targets_removed = true;
	if (e->op == REVO_OP_TARGET_ADD)
		ch->targets_changed = true;
	if ((e->op == REVO_OP_REVOKE || e->op == REVO_OP_UNHOLD || e->op == REVO_OP_CERT_ADD) &&
	    e->has_serial) {
		if (ch->n == ch->cap) {
			size_t cap = ch->cap ? ch->cap * 2 : 64;
			void *nv = realloc(ch->v, cap * sizeof(*ch->v));
			if (!nv) {
				ch->oom = true;
				return 0;
			}
			ch->v = nv;
			ch->cap = cap;
		}
		ch->v[ch->n].issuer = e->issuer_id;
		ch->v[ch->n].listed = e->op != REVO_OP_CERT_ADD;
		ch->v[ch->n].serial = e->serial;
		ch->n++;
	}
	return 0;
}

/* React to what changed since the last sequence seen. */
static int on_changes(pub_t *p, revo_errmsg_t *em)
{
	changes_t ch = {.p = p, .last = p->last_seq};
	int rc = revo_store_journal(p->st, p->last_seq, change_cb, &ch, em);
	if (rc) {
		free(ch.v);
		return rc;
	}
	p->last_seq = ch.last;
	if (ch.issuers_changed || ch.targets_removed)
		p->reload = true; /* after this round: its serials are signed with what is loaded */
	else if (ch.targets_changed)
		workers_start(p, em);
	for (size_t i = 0; i < p->n_issuers; i++) {
		issuer_ctx_t *c = &p->ictx[i];
		if (!c->is->id)
			continue;
		revo_serial_t *serials = malloc((ch.n ? ch.n : 1) * sizeof(*serials));
		size_t k = 0;
		bool crl_changed = false;
		for (size_t j = 0; serials && j < ch.n; j++)
			if (ch.v[j].issuer == c->is->id) {
				serials[k++] = ch.v[j].serial;
				crl_changed |= ch.v[j].listed;
			}
		if (k) {
			/* OCSP first: it is the faster path to "revoked" */
			revo_presign_stats_t st;
			pthread_mutex_lock(&p->store_mu);
			rc = revo_ocsp_presign_serials(p->st, c->is, &c->signer, serials, k, &st,
						       em);
			pthread_mutex_unlock(&p->store_mu);
			if (rc == 0)
				emit(p, REVO_EV_OCSP_SIGNED, NULL,
				     "%zu OCSP responses of issuer '%s' re-signed", st.responses,
				     c->is->name);
			/* a new certificate needs an OCSP answer, not a new CRL */
			if (rc == 0 && crl_changed)
				rc = publish_crl(p, c, em);
		}
		free(serials);
		if (rc)
			break;
	}
	free(ch.v);
	return rc;
}

static int round_all(pub_t *p, revo_errmsg_t *em)
{
	for (size_t i = 0; i < p->n_issuers; i++) {
		issuer_ctx_t *c = &p->ictx[i];
		if (!c->is->id)
			continue;
		int rc = presign_all(p, c, em);
		if (rc == 0)
			rc = publish_crl(p, c, em);
		if (rc)
			return rc;
	}
	return REVO_OK;
}

/*
 * Issuers, keys or targets changed (issuer add/set and target remove seen in the
 * journal, or SIGHUP): load them again without giving up the lock, retire the workers of
 * removed targets, start those of new ones, and publish what changed (everything after
 * SIGHUP: a key on disk may have been replaced).
 */
static void reload(pub_t *p)
{
	revo_notify("RELOADING=1\nSTATUS=reloading issuers, keys and targets");
	revo_errmsg_t e2 = {{0}};
	if (issuers_reload(p, &e2) != 0) {
		emit(p, REVO_EV_INFO, NULL, "reload failed, the issuers and keys loaded stay: %s",
		     e2.msg);
		p->reload_all = false;
		p->n_reload_ids = 0;
	} else {
		emit(p, REVO_EV_INFO, NULL, "reloaded issuers, keys and targets");
	}
	workers_prune(p);
	workers_start(p, &e2);
	for (size_t i = 0; i < p->n_issuers; i++) {
		issuer_ctx_t *c = &p->ictx[i];
		bool again = p->reload_all;
		for (size_t k = 0; k < p->n_reload_ids && !again; k++)
			again = p->reload_ids[k] == c->is->id;
		if (!c->is->id || !again)
			continue;
		revo_errmsg_t e3 = {{0}};
		if (presign_all(p, c, &e3) != 0 || publish_crl(p, c, &e3) != 0)
			emit(p, REVO_EV_INFO, NULL,
			     "publishing issuer '%s' after the reload failed: %s", c->is->name,
			     e3.msg);
	}
	p->reload = p->reload_all = false;
	p->n_reload_ids = 0;
	revo_notifyf("READY=1\nSTATUS=publishing %zu target(s); watching the store", p->n_workers);
}

int revo_publish_run(const revo_publish_cfg_t *cfg, revo_errmsg_t *em)
{
	pub_t p = {.cfg = cfg};
	pthread_mutex_init(&p.store_mu, NULL);
	pthread_mutex_init(&p.cb_mu, NULL);
	long holder = 0;
	int lock_fd = lock_take(cfg->store_dir, &holder, em);
	if (lock_fd == -1)
		return revo_err_set(
		    em, REVO_ESTATE,
		    "another publisher (pid %ld) holds %s/publish.lock: only one may "
		    "publish a store",
		    holder, cfg->store_dir);
	if (lock_fd < 0)
		return REVO_EACCES;
	int rc = revo_store_open(cfg->store_dir, 0, &p.st, em);
	if (rc == 0)
		rc = issuers_load(&p, em);
	if (rc == 0) {
		p.last_seq = 0;
		/* start from now: the first round covers everything before */
		changes_t ch = {.p = &p};
		rc = revo_store_journal(p.st, 0, change_cb, &ch, em);
		free(ch.v);
		p.last_seq = ch.last;
		p.last_txn = revo_store_txn_id(p.st);
		p.n_reload_ids = 0; /* history: what is loaded now is current */
		p.reload_all = false;
	}
	if (rc == 0)
		rc = workers_start(&p, em);
	struct sigaction sa = {.sa_handler = on_signal}, old_term, old_int, old_hup;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGHUP, &sa, &old_hup);
	stop_flag = reload_flag = 0;
	if (rc == 0)
		rc = round_all(&p, em);
	if (rc == 0 && cfg->once) {
		/* wait for every target to reach a final outcome for its CRL */
		bool failed = false;
		for (size_t i = 0; i < p.n_workers && !stop_flag; i++) {
			target_worker_t *w = p.workers[i];
			pthread_mutex_lock(&w->mu);
			while (w->pending && !w->finished_pending && !stop_flag) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += 1;
				pthread_cond_timedwait(&w->cv, &w->mu, &ts);
			}
			if (w->pending && !w->ok)
				failed = true;
			pthread_mutex_unlock(&w->mu);
		}
		if (failed)
			rc = revo_err_set(em, REVO_EIO,
					  "at least one target failed (see 'revo target "
					  "list')");
	} else if (rc == 0) {
		emit(&p, REVO_EV_INFO, NULL, "publishing; watching the store for changes");
		revo_notifyf("READY=1\nSTATUS=publishing %zu target(s); watching the store",
			     p.n_workers);
		while (!stop_flag) {
			struct timespec ts = {0, POLL_MS * 1000000L};
			nanosleep(&ts, NULL);
			uint64_t txn = revo_store_txn_id(p.st);
			if (txn != p.last_txn) {
				p.last_txn = txn;
				revo_errmsg_t e2 = {{0}};
				if (on_changes(&p, &e2) != 0)
					emit(&p, REVO_EV_INFO, NULL,
					     "publishing a change failed: %s", e2.msg);
			}
			if (reload_flag) {
				reload_flag = 0;
				p.reload = p.reload_all = true;
			}
			if (p.reload)
				reload(&p);
			int64_t now = revo_now();
			for (size_t i = 0; i < p.n_issuers; i++) {
				issuer_ctx_t *c = &p.ictx[i];
				if (!c->is->id)
					continue;
				revo_errmsg_t e2 = {{0}};
				if (now - c->last_presign >= c->is->ocsp_validity / 2 &&
				    presign_all(&p, c, &e2) != 0)
					emit(&p, REVO_EV_INFO, NULL, "re-signing OCSP failed: %s",
					     e2.msg);
				if (now - c->last_crl >= c->is->crl_every &&
				    publish_crl(&p, c, &e2) != 0)
					emit(&p, REVO_EV_INFO, NULL, "scheduled CRL failed: %s",
					     e2.msg);
			}
		}
		emit(&p, REVO_EV_INFO, NULL, "stopping: finishing uploads in flight");
		revo_notify("STOPPING=1\nSTATUS=finishing uploads in flight");
	}
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	workers_stop(&p);
	issuers_free(&p);
	revo_store_close(p.st);
	close(lock_fd);
	pthread_mutex_destroy(&p.store_mu);
	pthread_mutex_destroy(&p.cb_mu);
	return rc;
}

/* ---- emergency: publish one issuer now, in this process ---- */

typedef struct now_job {
	pub_t *p;
	target_worker_t *w;
	blob_ref_t *b;
	int64_t deadline_ms;
	bool ok;
} now_job_t;

static void *now_main(void *arg)
{
	now_job_t *j = arg;
	revo_upload_set_deadline(j->deadline_ms);
	int64_t backoff = 200;
	for (;;) {
		if (attempt(j->p, j->w, j->b)) {
			j->ok = j->w->t.failures == 0 && j->w->t.crl_number == j->b->b.number;
			break;
		}
		/* retryable: again until the deadline (or three times without one) */
		int64_t left = j->deadline_ms ? j->deadline_ms - mono_ms() : 0;
		if ((!j->deadline_ms && j->w->t.failures >= 3) || (j->deadline_ms && left <= 100))
			break;
		int64_t pause = j->deadline_ms && left - 100 < backoff ? left - 100 : backoff;
		struct timespec ts = {(time_t)(pause / 1000), (long)(pause % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		if (backoff < 2000)
			backoff *= 2;
	}
	revo_upload_set_deadline(0);
	return NULL;
}

int revo_publish_now(revo_store_t *st, const char *store_dir, uint32_t issuer_id,
		     const revo_serial_t *serials, size_t n_serials, const char *pass_file,
		     bool force_perms, int64_t deadline_ms, revo_publish_cb cb, void *cb_ctx,
		     bool *ran, revo_errmsg_t *em)
{
	*ran = false;
	long holder = 0;
	revo_publish_cfg_t cfg = {.store_dir = store_dir,
				  .pass_file = pass_file,
				  .force_perms = force_perms,
				  .cb = cb,
				  .cb_ctx = cb_ctx};
	int lock_fd = lock_take(store_dir, &holder, em);
	if (lock_fd == -1)
		return REVO_OK; /* a publisher runs: the caller watches the store */
	if (lock_fd < 0)
		return REVO_EACCES;
	*ran = true;
	pub_t p = {.cfg = &cfg, .st = st};
	pthread_mutex_init(&p.store_mu, NULL);
	pthread_mutex_init(&p.cb_mu, NULL);
	int rc = revo_store_issuers(st, &p.issuers, &p.n_issuers, em);
	issuer_ctx_t c = {0};
	for (size_t i = 0; rc == 0 && i < p.n_issuers; i++)
		if (p.issuers[i].id == issuer_id)
			c.is = &p.issuers[i];
	if (rc == 0 && !c.is)
		rc = revo_err_set(em, REVO_ENOTFOUND, "no issuer with id %u", issuer_id);
	revo_key_opts_t ko = {.pass_file = pass_file, .force_perms = force_perms};
	if (rc == 0)
		rc = revo_key_load(c.is->key_ref, &ko, &c.ca_key, em);
	if (rc == 0)
		rc = revo_ocsp_signer_load(c.is, false, pass_file, force_perms, &c.signer, em);
	if (rc == 0) {
		revo_presign_stats_t pst;
		rc = revo_ocsp_presign_serials(st, c.is, &c.signer, serials, n_serials, &pst, em);
		if (rc == 0)
			emit(&p, REVO_EV_OCSP_SIGNED, NULL, "%zu OCSP responses re-signed",
			     pst.responses);
	}
	/* the targets of this issuer, each attempted in its own thread */
	revo_target_t *ts = NULL;
	size_t nt = 0;
	if (rc == 0)
		rc = revo_store_targets(st, &ts, &nt, em);
	if (rc == 0)
		rc = publish_crl(&p, &c, em);
	size_t nj = 0;
	now_job_t *jobs = calloc(nt ? nt : 1, sizeof(*jobs));
	target_worker_t *ws = calloc(nt ? nt : 1, sizeof(*ws));
	pthread_t *tids = calloc(nt ? nt : 1, sizeof(*tids));
	bool all_ok = true;
	for (size_t i = 0; rc == 0 && jobs && ws && tids && i < nt; i++) {
		if (ts[i].issuer_id != issuer_id)
			continue;
		ws[nj].p = &p;
		ws[nj].t = ts[i];
		memset(&ts[i], 0, sizeof(ts[i]));
		jobs[nj] =
		    (now_job_t){.p = &p, .w = &ws[nj], .b = c.crl, .deadline_ms = deadline_ms};
		if (pthread_create(&tids[nj], NULL, now_main, &jobs[nj]) != 0)
			now_main(&jobs[nj]);
		else
			nj++;
	}
	for (size_t i = 0; i < nj; i++) {
		pthread_join(tids[i], NULL);
		all_ok &= jobs[i].ok;
		revo_target_clear(&ws[i].t);
	}
	if (rc == 0 && !all_ok)
		rc = revo_err_set(em, REVO_EIO, "not every target has the new CRL");
	free(jobs);
	free(ws);
	free(tids);
	revo_targets_free(ts, nt);
	EVP_PKEY_free(c.ca_key);
	if (c.signer.ca)
		revo_ocsp_signer_free(&c.signer);
	blob_unref(c.crl);
	revo_issuers_free(p.issuers, p.n_issuers);
	close(lock_fd);
	pthread_mutex_destroy(&p.store_mu);
	pthread_mutex_destroy(&p.cb_mu);
	return rc;
}
