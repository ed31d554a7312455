/*
 * The OCSP responder: N worker threads, each with its own event_base, its own
 * listening sockets on the shared port (SO_REUSEPORT), its own store reader and its own
 * counters. A request flows: one read() into the worker's input buffer -> revo_http_parse
 * -> decode (GET path or POST body, in place) -> answer() -> the header (per-second and
 * per-response parts formatted once) and the body in the worker's output buffer -> one
 * send(). Only what stays (a partial request, an answer the socket did not take) is
 * copied into the connection's evbuffers, so a request costs no allocation.
 *
 * answer() serves the pre-signed response when it is fresh and agrees with the store's
 * revocation state; otherwise it signs on demand with the delegated key when it has one,
 * and never serves a response that contradicts the store (tryLater instead). The main
 * thread owns signals: SIGTERM/SIGINT drain and stop, SIGHUP reloads issuers and keys.
 * A maintenance thread recounts stale or missing pre-signed responses for /healthz.
 */
#include "ocsp/ocsp.h"
#include "ocsp/ocsp_internal.h"

#include "pki/notify.h"
#include "pki/reason.h"
#include "pki/timefmt.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTEN    16
#define PATH_MAX_LEN  8192 /* request paths this long are refused (400) */
#define DRAIN_SECONDS 10
#define N_BUCKETS     11

static const double BUCKETS[N_BUCKETS] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
					  0.005,   0.01,   0.05,    0.1,    1.0};

enum outcome {
	OUT_PRESIGNED,
	OUT_SIGNED,
	OUT_NOT_MODIFIED,
	OUT_MALFORMED,
	OUT_UNAUTHORIZED,
	OUT_TRY_LATER,
	OUT_INTERNAL,
	OUT_HTTP_ERROR,
	OUT_HEALTH,
	OUT_METRICS,
	N_OUTCOMES
};
static const char *const OUTCOME_NAMES[N_OUTCOMES] = {
    "presigned", "signed",         "not_modified", "malformed", "unauthorized",
    "try_later", "internal_error", "http_error",   "healthz",   "metrics"};

typedef struct counters {
	_Atomic uint64_t req[3][N_OUTCOMES]; /* method GET, POST, other */
	_Atomic uint64_t bucket[N_BUCKETS + 1];
	_Atomic uint64_t sum_ns;
	_Atomic uint64_t signatures;
	_Atomic uint64_t errors;
	_Atomic int64_t conns;
} counters_t;

typedef struct issuer_entry {
	uint32_t id;
	revo_issuer_hashes_t h;
	int64_t validity;
	bool has_signer;
	revo_ocsp_signer_t signer;
} issuer_entry_t;

/* Issuers and keys; immutable once built, replaced whole on SIGHUP. */
typedef struct generation {
	issuer_entry_t *v;
	size_t n;
	_Atomic int refs;
} generation_t;

typedef struct server server_t;
typedef struct worker worker_t;

/* cacheable header blocks kept per worker (a power of two), indexed by ETag */
#define HDR_CACHE 16

/*
 * The RFC 5019 cache headers of one pre-signed response (Cache-Control, Last-Modified,
 * Expires, ETag) as of one second: they depend on the response and, through max-age,
 * on the time only. A worker formats them once per response and second.
 */
typedef struct hdr_cache {
	uint8_t etag[16];
	int64_t this_update, next_update;
	int64_t at; /* the second max-age was computed for; 0: unused */
	size_t len;
	char text[256];
} hdr_cache_t;

/*
 * A connection: its socket, one persistent read event, a write event added only while
 * output is pending (so a request answered at once costs no epoll_ctl), one timer for
 * the idle, read and write timeouts, and its input and output buffers.
 */
typedef struct conn {
	worker_t *w;
	evutil_socket_t fd;
	struct event *rev, *wev, *tev;
	struct evbuffer *in, *out;
	struct conn *prev, *next;
	int64_t started_ms; /* first octet of the request being read, 0 when idle */
	int64_t due_ms;     /* the idle, read or write deadline (monotonic) */
	int64_t armed_ms;   /* when tev fires, at or before due_ms; 0: not armed */
	bool reading;       /* rev is added */
	bool writing;       /* wev is added */
	bool paused;        /* reading stopped until the client reads its answers */
	bool closing;
} conn_t;

struct worker {
	server_t *srv;
	int index;
	pthread_t tid;
	struct event_base *base;
	struct evconnlistener *listeners[MAX_LISTEN];
	size_t n_listeners;
	struct event *stop_ev, *reload_ev, *drain_timer;
	revo_reader_t *reader;
	generation_t *gen;
	conn_t *conns;
	int n_conns;
	bool draining;
	counters_t c;
	char date[40];    /* IMF-fixdate of date_at */
	char head200[96]; /* "HTTP/1.1 200 OK", Date and Server lines as of date_at */
	size_t head200_len;
	int64_t date_at;
	hdr_cache_t hdrs[HDR_CACHE];
	revo_ocsp_request_t req;
	uint8_t reqbuf[16384];
	/*
	 * One read and the answers to it pass through these buffers without allocation;
	 * only what stays (a partial request, answers the socket did not take) moves to
	 * the connection's evbuffers. in_conn/out_conn: the connection they hold data of.
	 */
	conn_t *in_conn, *out_conn;
	const char *in_p;
	size_t in_n, out_n;
	char in[65536];
	char out[65536];
};

struct server {
	const revo_ocsp_server_cfg_t *cfg;
	revo_store_t *st;
	pthread_mutex_t lock;
	generation_t *gen; /* current; guarded by lock */
	worker_t *workers;
	int n_workers;
	struct sockaddr_storage addrs[MAX_LISTEN];
	socklen_t addr_lens[MAX_LISTEN];
	char bound[MAX_LISTEN][80];
	size_t n_addrs;
	/* health, updated by the maintenance thread */
	_Atomic int store_ok;
	_Atomic int64_t stale_or_missing;
	_Atomic int64_t responses;
	_Atomic int64_t earliest_next_update;
	pthread_t maint;
	pthread_mutex_t maint_lock;
	pthread_cond_t maint_cond;
	bool maint_stop;
	revo_errmsg_t load_em;
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- generations ---- */

static void gen_unref(generation_t *g)
{
	if (!g || atomic_fetch_sub(&g->refs, 1) != 1)
		return;
	for (size_t i = 0; i < g->n; i++)
		if (g->v[i].has_signer)
			revo_ocsp_signer_free(&g->v[i].signer);
	free(g->v);
	free(g);
}

static generation_t *gen_get(server_t *s)
{
	pthread_mutex_lock(&s->lock);
	generation_t *g = s->gen;
	if (g)
		atomic_fetch_add(&g->refs, 1);
	pthread_mutex_unlock(&s->lock);
	return g;
}

static int gen_load(server_t *s, generation_t **out, revo_errmsg_t *em)
{
	revo_issuer_t *is;
	size_t n;
	int rc = revo_store_issuers(s->st, &is, &n, em);
	if (rc)
		return rc;
	generation_t *g = calloc(1, sizeof(*g));
	if (g)
		g->v = calloc(n ? n : 1, sizeof(*g->v));
	if (!g || !g->v) {
		free(g);
		revo_issuers_free(is, n);
		return REVO_ENOMEM;
	}
	atomic_init(&g->refs, 1);
	for (size_t i = 0; i < n; i++) {
		issuer_entry_t *e = &g->v[g->n++];
		e->id = is[i].id;
		e->h = is[i].hashes;
		e->validity = is[i].ocsp_validity;
		/* only a delegated responder key: the network-facing process never holds the CA key
		 */
		if (s->cfg->sign && is[i].ocsp_cert_der && is[i].ocsp_key_ref) {
			rc = revo_ocsp_signer_load(&is[i], false, s->cfg->pass_file,
						   s->cfg->force_perms, &e->signer, em);
			if (rc) {
				revo_issuers_free(is, n);
				gen_unref(g);
				return rc;
			}
			e->has_signer = true;
		}
	}
	revo_issuers_free(is, n);
	*out = g;
	return REVO_OK;
}

static const issuer_entry_t *find_issuer(const generation_t *g, const revo_ocsp_certid_t *id)
{
	size_t hl = id->hash == REVO_HASH_SHA1 ? 20 : id->hash == REVO_HASH_SHA256 ? 32 : 0;
	if (!hl || id->name_hash_len != hl || id->key_hash_len != hl)
		return NULL;
	for (size_t i = 0; i < g->n; i++) {
		const revo_issuer_hashes_t *h = &g->v[i].h;
		const uint8_t *nh = id->hash == REVO_HASH_SHA1 ? h->name_sha1 : h->name_sha256;
		const uint8_t *kh = id->hash == REVO_HASH_SHA1 ? h->key_sha1 : h->key_sha256;
		if (memcmp(nh, id->name_hash, hl) == 0 && memcmp(kh, id->key_hash, hl) == 0)
			return &g->v[i];
	}
	return NULL;
}

/* ---- HTTP output ---- */

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), without locale, time zone or printf. */
static void http_date(int64_t t, char *buf, size_t len)
{
	static const char days[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	if (len < 30)
		return;
	int64_t d = t / 86400, rem = t % 86400;
	if (rem < 0) {
		rem += 86400;
		d--;
	}
	int wday = (int)(((d % 7) + 7) % 7);
	int64_t z = d + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	int mon = (int)(mp < 10 ? mp + 3 : mp - 9);
	int y = (int)(yoe + era * 400 + (mon <= 2));
	int hh = (int)(rem / 3600), mm = (int)(rem % 3600 / 60), ss = (int)(rem % 60);
	if (y < 0)
		y = 0;
	if (y > 9999)
		y = 9999;
	char *p = buf;
	memcpy(p, days[wday], 3);
	p[3] = ',';
	p[4] = ' ';
	p[5] = (char)('0' + mday / 10);
	p[6] = (char)('0' + mday % 10);
	p[7] = ' ';
	memcpy(p + 8, months[mon - 1], 3);
	p[11] = ' ';
	p[12] = (char)('0' + y / 1000);
	p[13] = (char)('0' + y / 100 % 10);
	p[14] = (char)('0' + y / 10 % 10);
	p[15] = (char)('0' + y % 10);
	p[16] = ' ';
	p[17] = (char)('0' + hh / 10);
	p[18] = (char)('0' + hh % 10);
	p[19] = ':';
	p[20] = (char)('0' + mm / 10);
	p[21] = (char)('0' + mm % 10);
	p[22] = ':';
	p[23] = (char)('0' + ss / 10);
	p[24] = (char)('0' + ss % 10);
	memcpy(p + 25, " GMT", 5);
}

typedef struct reply {
	int http;            /* status code */
	const uint8_t *body; /* borrowed until the reply is queued */
	size_t body_len;
	const char *type;
	bool cacheable; /* a pre-signed GET answer */
	int64_t this_update, next_update;
	uint8_t etag[16];
	bool close;
	const char *extra; /* extra header lines ("Allow: GET, POST\r\n") */
} reply_t;

static const char *reason_phrase(int code)
{
	switch (code) {
	case 200: return "OK";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Error";
}

/* A header being assembled: appends without format parsing (the hot path). */
typedef struct hbuf {
	char *p;
	size_t n, cap;
} hbuf_t;

static void hb_str(hbuf_t *h, const char *s, size_t n)
{
	if (h->n + n < h->cap) {
		memcpy(h->p + h->n, s, n);
		h->n += n;
	}
}

#define HB_LIT(h, lit) hb_str((h), (lit), sizeof(lit) - 1)

static void hb_cstr(hbuf_t *h, const char *s)
{
	hb_str(h, s, strlen(s));
}

static void hb_uint(hbuf_t *h, uint64_t v)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	hb_str(h, tmp + sizeof(tmp) - n, n);
}

static void hb_hex(hbuf_t *h, const uint8_t *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n && h->n + 2 < h->cap; i++) {
		h->p[h->n++] = hx[p[i] >> 4];
		h->p[h->n++] = hx[p[i] & 15];
	}
}

/* The Date line and the start of every 200 answer, once per second. */
static void set_date(worker_t *w, int64_t now)
{
	hbuf_t h = {w->head200, 0, sizeof(w->head200)};
	http_date(now, w->date, sizeof(w->date));
	w->date_at = now;
	HB_LIT(&h, "HTTP/1.1 200 OK\r\nDate: ");
	hb_cstr(&h, w->date);
	HB_LIT(&h, "\r\nServer: revo\r\n");
	w->head200_len = h.n;
}

/*
 * The cache headers of @r's pre-signed response at @now: max-age bounded by nextUpdate
 * and --max-age, Last-Modified = thisUpdate, Expires = nextUpdate, ETag. Borrowed from
 * @w until its next call.
 */
static const hdr_cache_t *cache_headers(worker_t *w, const reply_t *r, int64_t now)
{
	hdr_cache_t *e = &w->hdrs[r->etag[0] & (HDR_CACHE - 1)];
	if (e->at == now && e->this_update == r->this_update && e->next_update == r->next_update &&
	    memcmp(e->etag, r->etag, sizeof(e->etag)) == 0)
		return e;
	int64_t max_age = r->next_update - now;
	if (max_age > w->srv->cfg->max_age_cap)
		max_age = w->srv->cfg->max_age_cap;
	if (max_age < 0)
		max_age = 0;
	char d[40];
	hbuf_t h = {e->text, 0, sizeof(e->text)};
	HB_LIT(&h, "Cache-Control: max-age=");
	hb_uint(&h, (uint64_t)max_age);
	HB_LIT(&h, ", public, no-transform, must-revalidate\r\nLast-Modified: ");
	http_date(r->this_update, d, sizeof(d));
	hb_cstr(&h, d);
	HB_LIT(&h, "\r\nExpires: ");
	http_date(r->next_update, d, sizeof(d));
	hb_cstr(&h, d);
	HB_LIT(&h, "\r\nETag: \"");
	hb_hex(&h, r->etag, 16);
	HB_LIT(&h, "\"\r\n");
	e->len = h.n;
	memcpy(e->etag, r->etag, sizeof(e->etag));
	e->this_update = r->this_update;
	e->next_update = r->next_update;
	e->at = now;
	return e;
}

static void close_when_flushed(conn_t *c);

/*
 * Move the worker's pending output to its connection's evbuffer, ahead of anything
 * newer. Only when it is full: process() and flush() run in pairs for one connection.
 */
static void out_spill(worker_t *w)
{
	conn_t *c = w->out_conn;
	if (!c)
		return;
	if (evbuffer_add(c->out, w->out, w->out_n) != 0)
		close_when_flushed(c); /* out of memory: no half answer */
	w->out_conn = NULL;
	w->out_n = 0;
}

/* Octets of answers queued for @c and not written yet. */
static size_t out_pending(const conn_t *c)
{
	return evbuffer_get_length(c->out) + (c->w->out_conn == c ? c->w->out_n : 0);
}

/*
 * Queue the head and body of @r: in the worker's output buffer while nothing older is
 * pending for @c (flush() writes it with one send and keeps what the socket did not
 * take in @c's evbuffer), else in one contiguous piece of @c's evbuffer.
 */
static void queue_reply(worker_t *w, conn_t *c, const reply_t *r, bool head_only)
{
	char hdr[1024];
	hbuf_t h = {hdr, 0, sizeof(hdr)};
	int64_t now = revo_now();
	if (now != w->date_at)
		set_date(w, now);
	if (r->http == 200) {
		hb_str(&h, w->head200, w->head200_len);
	} else {
		HB_LIT(&h, "HTTP/1.1 ");
		hb_uint(&h, (uint64_t)r->http);
		HB_LIT(&h, " ");
		hb_cstr(&h, reason_phrase(r->http));
		HB_LIT(&h, "\r\nDate: ");
		hb_cstr(&h, w->date);
		HB_LIT(&h, "\r\nServer: revo\r\n");
	}
	if (r->type) {
		HB_LIT(&h, "Content-Type: ");
		hb_cstr(&h, r->type);
		HB_LIT(&h, "\r\n");
	}
	if (r->http != 304) {
		HB_LIT(&h, "Content-Length: ");
		hb_uint(&h, r->body_len);
		HB_LIT(&h, "\r\n");
	}
	if (r->cacheable) {
		const hdr_cache_t *hc = cache_headers(w, r, now);
		hb_str(&h, hc->text, hc->len);
	} else if (r->http == 200) {
		HB_LIT(&h, "Cache-Control: no-store\r\n");
	}
	if (r->extra)
		hb_cstr(&h, r->extra);
	if (r->close)
		HB_LIT(&h, "Connection: close\r\n");
	HB_LIT(&h, "\r\n");
	size_t body = r->body_len && r->http != 304 && !head_only ? r->body_len : 0;
	if (w->out_conn && (w->out_conn != c || h.n + body > sizeof(w->out) - w->out_n))
		out_spill(w);
	if (evbuffer_get_length(c->out) == 0 && h.n + body <= sizeof(w->out) - w->out_n) {
		/* nothing older pending: the worker's buffer, written by flush() */
		memcpy(w->out + w->out_n, h.p, h.n);
		if (body)
			memcpy(w->out + w->out_n + h.n, r->body, body);
		w->out_n += h.n + body;
		w->out_conn = c;
		return;
	}
	struct evbuffer_iovec v;
	if (evbuffer_reserve_space(c->out, (ev_ssize_t)(h.n + body), &v, 1) != 1) {
		close_when_flushed(c); /* out of memory: no half answer */
		return;
	}
	memcpy(v.iov_base, h.p, h.n);
	if (body)
		memcpy((char *)v.iov_base + h.n, r->body, body);
	v.iov_len = h.n + body;
	evbuffer_commit_space(c->out, &v, 1);
}

/* ---- answering ---- */

static bool etag_matches(const revo_http_req_t *h, const uint8_t *etag)
{
	if (!h->if_none_match)
		return false;
	static const char hx[] = "0123456789abcdef";
	char et[32];
	for (int i = 0; i < 16; i++) {
		et[2 * i] = hx[etag[i] >> 4];
		et[2 * i + 1] = hx[etag[i] & 15];
	}
	const char *v = h->if_none_match;
	size_t n = h->if_none_match_len;
	if (n == 1 && v[0] == '*')
		return true;
	for (size_t i = 0; i + 32 <= n; i++)
		if (memcmp(v + i, et, 32) == 0)
			return true;
	return false;
}

/* Sign an answer for every CertID of @req with @e's delegated key. */
static int sign_answer(worker_t *w, const issuer_entry_t *e, const revo_ocsp_request_t *req,
		       uint8_t **der, size_t *len)
{
	revo_ocsp_single_t singles[REVO_OCSP_MAX_IDS];
	bool ext_revoke = false;
	int64_t now = revo_now();
	for (size_t i = 0; i < req->n; i++) {
		const revo_ocsp_certid_t *id = &req->ids[i];
		revo_ocsp_single_t *s = &singles[i];
		memset(s, 0, sizeof(*s));
		s->certid_der = id->der;
		s->certid_len = id->der_len;
		s->this_update = now;
		s->next_update = now + e->validity;
		s->reason = -1;
		const issuer_entry_t *ie = find_issuer(w->gen, id);
		if (ie != e || !id->serial_ok) {
			s->status = REVO_STATUS_UNKNOWN;
			continue;
		}
		bool hc, hr;
		revo_cert_rec_t cert;
		revo_revocation_t rev;
		if (revo_reader_status(w->reader, e->id, &id->serial, &cert, &hc, &rev, &hr, NULL))
			return REVO_OCSP_INTERNAL;
		if (hr) {
			s->status = REVO_STATUS_REVOKED;
			s->revoked_at = rev.revoked_at;
			s->reason = rev.reason;
		} else if (hc) {
			s->status = REVO_STATUS_GOOD;
		} else if (w->srv->cfg->non_issued == REVO_NONISSUED_REVOKED) {
			/* RFC 6960 2.2: extended revoked definition */
			s->status = REVO_STATUS_REVOKED;
			s->revoked_at = 0;
			s->reason = REVO_REASON_CERTIFICATE_HOLD;
			ext_revoke = true;
		} else if (w->srv->cfg->non_issued == REVO_NONISSUED_GOOD) {
			s->status = REVO_STATUS_GOOD;
		} else {
			s->status = REVO_STATUS_UNKNOWN;
		}
	}
	int rc = revo_ocsp_sign(&e->signer, singles, req->n, ext_revoke,
				req->has_nonce ? req->nonce_ext : NULL, req->nonce_ext_len, der,
				len, NULL);
	atomic_fetch_add_explicit(&w->c.signatures, 1, memory_order_relaxed);
	return rc ? REVO_OCSP_INTERNAL : 0;
}

/*
 * Answer @req; fills @r (body borrowed from the reader or @signed_der, which the
 * caller frees). Returns the outcome.
 */
static int answer(worker_t *w, const revo_ocsp_request_t *req, const revo_http_req_t *h,
		  bool is_get, reply_t *r, uint8_t **signed_der)
{
	size_t el;
	r->http = 200;
	r->type = "application/ocsp-response";
	const revo_ocsp_certid_t *id = &req->ids[0];
	const issuer_entry_t *e = find_issuer(w->gen, id);
	if (!e) {
		r->body = revo_ocsp_error_response(REVO_OCSP_UNAUTHORIZED, &el);
		r->body_len = el;
		return OUT_UNAUTHORIZED;
	}
	bool can_sign = e->has_signer;
	if (req->n == 1 && !(req->has_nonce && can_sign) && id->serial_ok && id->hash) {
		revo_ocsp_resp_rec_t rec;
		bool hr;
		revo_revocation_t rev;
		int rc = revo_reader_response(w->reader, e->id, &id->serial, id->hash, &rec, NULL);
		if (rc != 0 && rc != REVO_ENOTFOUND)
			goto internal;
		int src = revo_reader_revocation(w->reader, e->id, &id->serial, &rev, NULL);
		if (src != 0 && src != REVO_ENOTFOUND)
			goto internal;
		hr = src == 0;
		if (rc == 0) {
			int64_t now = revo_now();
			bool fresh = rec.next_update > now && rec.this_update <= now + 300;
			bool agrees =
			    hr ? (rec.status == REVO_STATUS_REVOKED && rec.rev_seq == rev.seq)
			       : rec.status == REVO_STATUS_GOOD;
			if (fresh && agrees) {
				r->body = rec.der;
				r->body_len = rec.der_len;
				if (is_get) {
					r->cacheable = true;
					r->this_update = rec.this_update;
					r->next_update = rec.next_update;
					memcpy(r->etag, rec.etag, sizeof(r->etag));
					if (etag_matches(h, rec.etag)) {
						r->http = 304;
						r->type = NULL;
						return OUT_NOT_MODIFIED;
					}
				}
				return OUT_PRESIGNED;
			}
			if (!can_sign) {
				/* never serve an answer the store contradicts */
				r->body = revo_ocsp_error_response(REVO_OCSP_TRY_LATER, &el);
				r->body_len = el;
				return OUT_TRY_LATER;
			}
		}
	}
	if (!can_sign) {
		r->body = revo_ocsp_error_response(REVO_OCSP_UNAUTHORIZED, &el);
		r->body_len = el;
		return OUT_UNAUTHORIZED;
	}
	size_t len;
	if (sign_answer(w, e, req, signed_der, &len) != 0)
		goto internal;
	r->body = *signed_der;
	r->body_len = len;
	return OUT_SIGNED;
internal:
	atomic_fetch_add_explicit(&w->c.errors, 1, memory_order_relaxed);
	r->body = revo_ocsp_error_response(REVO_OCSP_INTERNAL, &el);
	r->body_len = el;
	return OUT_INTERNAL;
}

static void count(worker_t *w, int method, int outcome, int64_t t0)
{
	int m = method == REVO_HTTP_GET ? 0 : method == REVO_HTTP_POST ? 1 : 2;
	atomic_fetch_add_explicit(&w->c.req[m][outcome], 1, memory_order_relaxed);
	int64_t dt = mono_ns() - t0;
	double s = (double)dt / 1e9;
	int b = 0;
	while (b < N_BUCKETS && s > BUCKETS[b])
		b++;
	atomic_fetch_add_explicit(&w->c.bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->c.sum_ns, (uint64_t)dt, memory_order_relaxed);
}

static void healthz(worker_t *w, struct evbuffer *body, reply_t *r)
{
	server_t *s = w->srv;
	int64_t now = revo_now();
	int ok = atomic_load(&s->store_ok);
	int64_t stale = atomic_load(&s->stale_or_missing);
	int64_t earliest = atomic_load(&s->earliest_next_update);
	bool can_sign = false;
	for (size_t i = 0; i < w->gen->n; i++)
		can_sign |= w->gen->v[i].has_signer;
	/* responses expire between counts: the earliest nextUpdate says so at once */
	bool expired = earliest && earliest <= now;
	bool healthy = ok && w->gen->n > 0 && ((stale == 0 && !expired) || can_sign);
	evbuffer_add_printf(body,
			    "{\"status\":\"%s\",\"store_readable\":%s,\"issuers\":%zu,"
			    "\"presigned_responses\":%lld,\"stale_or_missing\":%lld,"
			    "\"seconds_to_earliest_next_update\":%lld,\"on_demand_signing\":%s}\n",
			    healthy ? "ok" : "degraded", ok ? "true" : "false", w->gen->n,
			    (long long)atomic_load(&s->responses), (long long)stale,
			    earliest ? (long long)(earliest - now) : -1LL,
			    can_sign ? "true" : "false");
	r->http = healthy ? 200 : 503;
	r->type = "application/json";
}

static void metrics(worker_t *w, struct evbuffer *body, reply_t *r)
{
	server_t *s = w->srv;
	static const char *const methods[3] = {"GET", "POST", "other"};
	evbuffer_add_printf(body, "# HELP revo_ocsp_requests_total OCSP HTTP requests by method "
				  "and outcome.\n# TYPE revo_ocsp_requests_total counter\n");
	for (int m = 0; m < 3; m++)
		for (int o = 0; o < N_OUTCOMES; o++) {
			uint64_t v = 0;
			for (int i = 0; i < s->n_workers; i++)
				v += atomic_load_explicit(&s->workers[i].c.req[m][o],
							  memory_order_relaxed);
			evbuffer_add_printf(
			    body,
			    "revo_ocsp_requests_total{method=\"%s\",outcome=\"%s\"} "
			    "%llu\n",
			    methods[m], OUTCOME_NAMES[o], (unsigned long long)v);
		}
	evbuffer_add_printf(body, "# HELP revo_ocsp_request_duration_seconds Time from request "
				  "parsed to answer queued.\n# TYPE "
				  "revo_ocsp_request_duration_seconds histogram\n");
	uint64_t cum = 0, sum = 0;
	for (int b = 0; b <= N_BUCKETS; b++) {
		for (int i = 0; i < s->n_workers; i++)
			cum +=
			    atomic_load_explicit(&s->workers[i].c.bucket[b], memory_order_relaxed);
		if (b < N_BUCKETS)
			evbuffer_add_printf(body,
					    "revo_ocsp_request_duration_seconds_bucket{le=\"%g\"} "
					    "%llu\n",
					    BUCKETS[b], (unsigned long long)cum);
		else
			evbuffer_add_printf(
			    body,
			    "revo_ocsp_request_duration_seconds_bucket{le=\"+Inf\"} "
			    "%llu\n",
			    (unsigned long long)cum);
	}
	uint64_t sig = 0, err = 0, hits = 0;
	int64_t conns = 0;
	for (int i = 0; i < s->n_workers; i++) {
		sum += atomic_load_explicit(&s->workers[i].c.sum_ns, memory_order_relaxed);
		sig += atomic_load_explicit(&s->workers[i].c.signatures, memory_order_relaxed);
		err += atomic_load_explicit(&s->workers[i].c.errors, memory_order_relaxed);
		conns += atomic_load_explicit(&s->workers[i].c.conns, memory_order_relaxed);
		for (int m = 0; m < 3; m++)
			hits += atomic_load_explicit(&s->workers[i].c.req[m][OUT_PRESIGNED],
						     memory_order_relaxed) +
				atomic_load_explicit(&s->workers[i].c.req[m][OUT_NOT_MODIFIED],
						     memory_order_relaxed);
	}
	evbuffer_add_printf(
	    body,
	    "revo_ocsp_request_duration_seconds_sum %.9f\n"
	    "revo_ocsp_request_duration_seconds_count %llu\n"
	    "# HELP revo_ocsp_presigned_hits_total Answers served from pre-signed responses.\n"
	    "# TYPE revo_ocsp_presigned_hits_total counter\nrevo_ocsp_presigned_hits_total %llu\n"
	    "# HELP revo_ocsp_signatures_total Responses signed on demand.\n"
	    "# TYPE revo_ocsp_signatures_total counter\nrevo_ocsp_signatures_total %llu\n"
	    "# HELP revo_ocsp_errors_total Internal errors.\n"
	    "# TYPE revo_ocsp_errors_total counter\nrevo_ocsp_errors_total %llu\n"
	    "# HELP revo_ocsp_connections Open client connections.\n"
	    "# TYPE revo_ocsp_connections gauge\nrevo_ocsp_connections %lld\n"
	    "# HELP revo_ocsp_stale_or_missing Unexpired certificates without a fresh pre-signed "
	    "response.\n# TYPE revo_ocsp_stale_or_missing gauge\nrevo_ocsp_stale_or_missing "
	    "%lld\n",
	    (double)sum / 1e9, (unsigned long long)cum, (unsigned long long)hits,
	    (unsigned long long)sig, (unsigned long long)err, (long long)conns,
	    (long long)atomic_load(&s->stale_or_missing));
	r->http = 200;
	r->type = "text/plain; version=0.0.4";
}

/* ---- connections ---- */

static void conn_free(conn_t *c)
{
	worker_t *w = c->w;
	if (w->out_conn == c) {
		w->out_conn = NULL;
		w->out_n = 0;
	}
	if (w->in_conn == c) {
		w->in_conn = NULL;
		w->in_n = 0;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->n_conns--;
	atomic_fetch_sub_explicit(&w->c.conns, 1, memory_order_relaxed);
	event_free(c->rev);
	event_free(c->wev);
	event_free(c->tev);
	evbuffer_free(c->in);
	evbuffer_free(c->out);
	evutil_closesocket(c->fd);
	free(c);
	if (w->draining && w->n_conns == 0)
		event_base_loopbreak(w->base);
}

static void arm_timer(conn_t *c, int64_t now_ms, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	event_add(c->tev, &tv);
	c->armed_ms = now_ms + ms;
}

/*
 * The connection's deadline is now + @ms. Lazily: a later deadline than the armed
 * timer's (the idle timeout renewed after every answer) only is noted, and timer_cb
 * re-arms for the rest, so a request costs no timer re-insertion.
 */
static void set_timer(conn_t *c, int64_t ms)
{
	int64_t now_ms = mono_ns() / 1000000;
	c->due_ms = now_ms + ms;
	if (c->armed_ms && c->armed_ms <= c->due_ms)
		return;
	arm_timer(c, now_ms, ms);
}

static void stop_reading(conn_t *c)
{
	if (c->reading) {
		event_del(c->rev);
		c->reading = false;
	}
}

/* Mark @c to close once its output is written; the caller then calls flush(). */
static void close_when_flushed(conn_t *c)
{
	c->closing = true;
	stop_reading(c);
}

/* Output above this stops reading (back-pressure); below OUT_LOW reading resumes. */
#define OUT_HIGH (256u << 10)
#define OUT_LOW  (64u << 10)

static void process(conn_t *c);

/*
 * Write what can be written now (one write or writev for everything queued). Returns
 * false when the connection was freed.
 */
static bool flush(conn_t *c)
{
	worker_t *w = c->w;
	size_t left = evbuffer_get_length(c->out);
	if (w->out_conn == c) {
		/* answers queued in the worker's buffer (c->out is empty then): one write */
		ssize_t n = send(c->fd, w->out, w->out_n, MSG_NOSIGNAL);
		bool failed = n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
		size_t sent = n > 0 ? (size_t)n : 0;
		if (!failed && sent < w->out_n)
			failed = evbuffer_add(c->out, w->out + sent, w->out_n - sent) != 0;
		w->out_conn = NULL;
		w->out_n = 0;
		if (failed) {
			conn_free(c);
			return false;
		}
		left = evbuffer_get_length(c->out);
	} else if (left) {
		int n = evbuffer_write(c->out, c->fd);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			conn_free(c);
			return false;
		}
		left = evbuffer_get_length(c->out);
	}
	if (left && !c->writing) {
		event_add(c->wev, NULL);
		c->writing = true;
	} else if (!left && c->writing) {
		event_del(c->wev);
		c->writing = false;
	}
	if (!left && c->closing) {
		conn_free(c);
		return false;
	}
	return true;
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_t *c = arg;
	(void)fd;
	(void)what;
	if (!flush(c))
		return;
	const revo_ocsp_server_cfg_t *cfg = c->w->srv->cfg;
	if (c->writing) {
		set_timer(c,
			  (int64_t)cfg->read_timeout * 1000); /* a client that reads too slowly */
		return;
	}
	if (c->paused && evbuffer_get_length(c->out) <= OUT_LOW) {
		c->paused = false;
		event_add(c->rev, NULL);
		c->reading = true;
		process(c); /* requests already buffered */
		if (!flush(c))
			return;
	}
	if (!c->started_ms)
		set_timer(c, (int64_t)cfg->idle_timeout * 1000);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_t *c = arg;
	(void)fd;
	(void)what;
	int64_t now_ms = mono_ns() / 1000000;
	c->armed_ms = 0;
	if (c->due_ms > now_ms) {
		arm_timer(c, now_ms, c->due_ms - now_ms); /* the deadline moved on */
		return;
	}
	conn_free(c); /* idle, too slow to send a request, or too slow to read answers */
}

static void http_error(worker_t *w, conn_t *c, int code, bool close, const char *extra)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", code, reason_phrase(code));
	reply_t r = {.http = code,
		     .type = "text/plain",
		     .body = (const uint8_t *)body,
		     .body_len = (size_t)n,
		     .close = close,
		     .extra = extra};
	queue_reply(w, c, &r, false);
	if (close)
		close_when_flushed(c);
}

static bool looks_like_ocsp_path(const char *p, size_t n)
{
	/* the last segment: long and made of base64 / percent-encoding characters */
	size_t i = n;
	while (i > 0 && p[i - 1] != '/')
		i--;
	size_t seg = n - i;
	if (seg < 8)
		return false;
	for (; i < n; i++) {
		char ch = p[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '+' || ch == '=' || ch == '%' ||
		      ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

/*
 * A request has started arriving: the read timeout becomes what is left of
 * --read-timeout for the whole request, so a client sending a byte now and then
 * (slow-loris) cannot hold the connection longer than that.
 */
static void arm_read_deadline(conn_t *c, int64_t now_ms)
{
	const revo_ocsp_server_cfg_t *cfg = c->w->srv->cfg;
	int64_t left = (int64_t)cfg->read_timeout * 1000 - (now_ms - c->started_ms);
	set_timer(c, left < 1 ? 1 : left);
}

/*
 * The input of @c as one piece: the worker's read buffer when this read went there,
 * else @c's evbuffer (partial requests and pipelined leftovers), made contiguous.
 */
static const char *in_view(conn_t *c, size_t *avail)
{
	worker_t *w = c->w;
	if (w->in_conn == c) {
		*avail = w->in_n;
		return w->in_p;
	}
	*avail = evbuffer_get_length(c->in);
	return *avail ? (const char *)evbuffer_pullup(c->in, -1) : NULL;
}

static void in_consume(conn_t *c, size_t n)
{
	worker_t *w = c->w;
	if (w->in_conn == c) {
		w->in_p += n;
		w->in_n -= n;
	} else {
		evbuffer_drain(c->in, n);
	}
}

/* After process(): what is left of the worker's read buffer goes to @c's evbuffer. */
static void in_keep(conn_t *c)
{
	worker_t *w = c->w;
	if (w->in_conn != c)
		return;
	if (w->in_n)
		evbuffer_add(c->in, w->in_p, w->in_n);
	w->in_conn = NULL;
	w->in_n = 0;
}

/*
 * Answer the complete request @h (its body of @body_len octets at @body), borrowed
 * from @c's input until the caller consumes it. Returns false when @c is to close.
 */
static bool handle_request(conn_t *c, revo_http_req_t *h, const uint8_t *body, size_t body_len,
			   bool close, int64_t t0)
{
	worker_t *w = c->w;
	const revo_ocsp_server_cfg_t *cfg = w->srv->cfg;
	bool keep_alive_10 = h->minor == 0 && h->conn_keep_alive && !close;
	const char *path = h->path;
	size_t path_len = h->path_len;
	/* an If-None-Match this long is no ETag of ours: as if absent */
	if (h->if_none_match_len == 0 || h->if_none_match_len >= 128) {
		h->if_none_match = NULL;
		h->if_none_match_len = 0;
	}
	reply_t r = {0};
	struct evbuffer *text = NULL;
	uint8_t *signed_der = NULL;
	int outcome;
	const char *extra = keep_alive_10 ? "Connection: keep-alive\r\n" : NULL;
	if (h->method != REVO_HTTP_GET && h->method != REVO_HTTP_POST) {
		count(w, h->method, OUT_HTTP_ERROR, t0);
		http_error(w, c, 405, close, "Allow: GET, POST\r\n");
		return !close;
	}
	if (path_len >= PATH_MAX_LEN) {
		count(w, h->method, OUT_HTTP_ERROR, t0);
		http_error(w, c, 400, true, NULL);
		return false;
	}
	bool is_health = path_len == 8 && memcmp(path, "/healthz", 8) == 0;
	bool is_metrics = path_len == 8 && memcmp(path, "/metrics", 8) == 0;
	if ((is_health || is_metrics) && h->method == REVO_HTTP_GET) {
		text = evbuffer_new();
		if (is_health)
			healthz(w, text, &r);
		else
			metrics(w, text, &r);
		r.body_len = evbuffer_get_length(text);
		r.body = evbuffer_pullup(text, -1);
		outcome = is_health ? OUT_HEALTH : OUT_METRICS;
	} else if (is_health || is_metrics) {
		count(w, h->method, OUT_HTTP_ERROR, t0);
		http_error(w, c, 405, close, "Allow: GET\r\n");
		return !close;
	} else {
		revo_ocsp_request_t *req = &w->req;
		int drc;
		if (h->method == REVO_HTTP_POST) {
			if (!h->type_ocsp) {
				count(w, h->method, OUT_HTTP_ERROR, t0);
				http_error(w, c, 415, close, NULL);
				return !close;
			}
			/* the request borrows from the input, which stays until answered */
			drc = body_len <= sizeof(w->reqbuf)
				  ? revo_ocsp_request_parse(body, body_len, cfg->max_ids, req)
				  : REVO_EINVAL;
		} else {
			drc = revo_ocsp_request_from_path(path, path_len, w->reqbuf,
							  sizeof(w->reqbuf), cfg->max_ids, req);
			if (drc && !looks_like_ocsp_path(path, path_len)) {
				count(w, h->method, OUT_HTTP_ERROR, t0);
				http_error(w, c, 404, close, NULL);
				return !close;
			}
		}
		if (drc) {
			size_t el;
			r.http = 200;
			r.type = "application/ocsp-response";
			r.body = revo_ocsp_error_response(REVO_OCSP_MALFORMED, &el);
			r.body_len = el;
			outcome = OUT_MALFORMED;
		} else if (revo_reader_begin(w->reader, NULL) != 0) {
			size_t el;
			r.http = 200;
			r.type = "application/ocsp-response";
			r.body = revo_ocsp_error_response(REVO_OCSP_TRY_LATER, &el);
			r.body_len = el;
			outcome = OUT_TRY_LATER;
		} else {
			outcome = answer(w, req, h, h->method == REVO_HTTP_GET, &r, &signed_der);
		}
	}
	r.close = close;
	r.extra = extra;
	queue_reply(w, c, &r, false);
	revo_reader_end(w->reader); /* after the body (borrowed from the map) is copied */
	OPENSSL_free(signed_der);
	if (text)
		evbuffer_free(text);
	count(w, h->method, outcome, t0);
	if (close) {
		close_when_flushed(c);
		return false;
	}
	return true;
}

/* Handle every complete request in @c's input, in order (pipelining). */
static void process(conn_t *c)
{
	worker_t *w = c->w;
	const revo_ocsp_server_cfg_t *cfg = w->srv->cfg;
	while (!c->closing) {
		if (out_pending(c) > OUT_HIGH) {
			/* the client does not read its answers: stop reading its requests */
			c->paused = true;
			stop_reading(c);
			return;
		}
		size_t avail;
		const char *buf = in_view(c, &avail);
		if (avail == 0) {
			if (c->started_ms)
				set_timer(c, (int64_t)cfg->idle_timeout * 1000);
			c->started_ms = 0;
			return;
		}
		int64_t now_ms = mono_ns() / 1000000;
		if (!c->started_ms)
			c->started_ms = now_ms;
		size_t look = avail < cfg->max_header ? avail : cfg->max_header;
		revo_http_req_t h;
		int prc = revo_http_parse(buf, look, cfg->max_header, &h);
		if (prc == REVO_HTTP_NEED_MORE) {
			if (now_ms - c->started_ms > (int64_t)cfg->read_timeout * 1000)
				http_error(w, c, 408, true, NULL);
			else
				arm_read_deadline(c, now_ms);
			return;
		}
		int64_t t0 = mono_ns();
		if (prc < 0) {
			count(w, REVO_HTTP_OTHER, OUT_HTTP_ERROR, t0);
			http_error(w, c, -prc, true, NULL);
			return;
		}
		bool close = h.conn_close || (h.minor == 0 && !h.conn_keep_alive) || w->draining;
		size_t body_len = 0;
		if (h.method == REVO_HTTP_POST) {
			if (h.chunked) {
				count(w, h.method, OUT_HTTP_ERROR, t0);
				http_error(w, c, 411, true, NULL);
				return;
			}
			if (!h.has_length) {
				count(w, h.method, OUT_HTTP_ERROR, t0);
				http_error(w, c, 411, true, NULL);
				return;
			}
			if (h.content_length > cfg->max_body) {
				count(w, h.method, OUT_HTTP_ERROR, t0);
				http_error(w, c, 413, true, NULL);
				return;
			}
			body_len = h.content_length;
			if (avail < h.head_len + body_len) {
				if (now_ms - c->started_ms > (int64_t)cfg->read_timeout * 1000)
					http_error(w, c, 408, true, NULL);
				else
					arm_read_deadline(c, now_ms);
				return; /* wait for the body */
			}
		} else if (h.has_length && h.content_length > 0) {
			/* a body on GET: read and ignore it (bounded) */
			if (h.content_length > cfg->max_body) {
				http_error(w, c, 413, true, NULL);
				return;
			}
			body_len = h.content_length;
			if (avail < h.head_len + body_len)
				return;
		} else if (h.chunked) {
			count(w, h.method, OUT_HTTP_ERROR, t0);
			http_error(w, c, 501, true, NULL);
			return;
		}
		c->started_ms = 0;
		bool go_on =
		    handle_request(c, &h, (const uint8_t *)buf + h.head_len, body_len, close, t0);
		in_consume(c, h.head_len + body_len); /* the request is answered: let it go */
		if (!go_on)
			return;
	}
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_t *c = arg;
	worker_t *w = c->w;
	(void)what;
	const revo_ocsp_server_cfg_t *cfg = w->srv->cfg;
	/* never buffer more than one request's worth: the rest waits in the socket */
	size_t cap = cfg->max_header + cfg->max_body + 4096, have = evbuffer_get_length(c->in);
	if (have >= cap) {
		stop_reading(c);
		return;
	}
	size_t want = cap - have < sizeof(w->in) ? cap - have : sizeof(w->in);
	ssize_t n;
	if (have == 0) {
		/* the usual case, whole requests: read into the worker's buffer, no copy */
		n = read(fd, w->in, want);
		if (n > 0) {
			w->in_conn = c;
			w->in_p = w->in;
			w->in_n = (size_t)n;
		}
	} else {
		n = evbuffer_read(c->in, fd, (int)want);
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		/* end of input (half-closed) or an error: answer what arrived, then close */
		stop_reading(c);
		if (n < 0) {
			conn_free(c);
			return;
		}
		process(c);
		close_when_flushed(c);
		flush(c);
		return;
	}
	process(c);
	in_keep(c);
	if (!flush(c))
		return;
	if (!c->started_ms && !c->writing && !c->closing)
		set_timer(c, (int64_t)cfg->idle_timeout * 1000);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int slen,
		      void *arg)
{
	worker_t *w = arg;
	(void)l;
	(void)sa;
	(void)slen;
	if (w->n_conns >= w->srv->cfg->max_conns || w->draining) {
		evutil_closesocket(fd);
		return;
	}
	conn_t *c = calloc(1, sizeof(*c));
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	c->w = w;
	c->fd = fd;
	c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, read_cb, c);
	c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, write_cb, c);
	c->tev = evtimer_new(w->base, timer_cb, c);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	if (!c->rev || !c->wev || !c->tev || !c->in || !c->out) {
		if (c->rev)
			event_free(c->rev);
		if (c->wev)
			event_free(c->wev);
		if (c->tev)
			event_free(c->tev);
		if (c->in)
			evbuffer_free(c->in);
		if (c->out)
			evbuffer_free(c->out);
		free(c);
		evutil_closesocket(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
	atomic_fetch_add_explicit(&w->c.conns, 1, memory_order_relaxed);
	event_add(c->rev, NULL);
	c->reading = true;
	set_timer(c, (int64_t)w->srv->cfg->idle_timeout * 1000);
}

/* ---- workers ---- */

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;
	(void)fd;
	(void)what;
	event_base_loopbreak(w->base);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;
	(void)fd;
	(void)what;
	w->draining = true;
	for (size_t i = 0; i < w->n_listeners; i++) {
		evconnlistener_free(w->listeners[i]);
		w->listeners[i] = NULL;
	}
	w->n_listeners = 0;
	/* idle keep-alive connections go now; busy ones after their answer */
	for (conn_t *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (!c->started_ms && evbuffer_get_length(c->in) == 0 && !c->closing) {
			close_when_flushed(c);
			flush(c);
		}
	}
	if (w->n_conns == 0) {
		event_base_loopbreak(w->base);
		return;
	}
	/* a request still arriving has its read timeout; answers get a moment to flush */
	int secs = w->srv->cfg->read_timeout + 1;
	struct timeval tv = {secs < DRAIN_SECONDS ? secs : DRAIN_SECONDS, 0};
	w->drain_timer = evtimer_new(w->base, drain_timeout_cb, w);
	evtimer_add(w->drain_timer, &tv);
}

static void reload_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;
	(void)fd;
	(void)what;
	generation_t *g = gen_get(w->srv);
	if (g) {
		gen_unref(w->gen);
		w->gen = g;
	}
}

static void *worker_main(void *arg)
{
	worker_t *w = arg;
	event_base_dispatch(w->base);
	return NULL;
}

static int make_socket(const struct sockaddr *sa, socklen_t len, revo_errmsg_t *em,
		       const char *name)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return revo_err_set(em, REVO_EIO, "socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, len) != 0 || listen(fd, 1024) != 0) {
		int e = errno;
		close(fd);
		return revo_err_set(em, e == EACCES ? REVO_EACCES : REVO_EIO,
				    "cannot listen on %s: %s", name, strerror(e));
	}
	return fd;
}

/* Resolve "HOST:PORT" / "[V6]:PORT" into @ss. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len,
			revo_errmsg_t *em)
{
	char host[256];
	const char *port;
	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - spec - 1) >= sizeof(host))
			return revo_err_set(em, REVO_EINVAL, "--listen '%s' is not [V6]:PORT",
					    spec);
		memcpy(host, spec + 1, (size_t)(rb - spec - 1));
		host[rb - spec - 1] = '\0';
		port = rb + 2;
	} else {
		const char *colon = strrchr(spec, ':');
		if (!colon || (size_t)(colon - spec) >= sizeof(host))
			return revo_err_set(em, REVO_EINVAL, "--listen '%s' is not HOST:PORT",
					    spec);
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		port = colon + 1;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (g != 0 || !ai)
		return revo_err_set(em, REVO_EINVAL, "--listen '%s': %s", spec, gai_strerror(g));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = (socklen_t)ai->ai_addrlen;
	freeaddrinfo(ai);
	return REVO_OK;
}

static void addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[64] = "?";
	int port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(buf, len, "%s:%d", host, port);
	} else {
		const struct sockaddr_in6 *a = (const void *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(buf, len, "[%s]:%d", host, port);
	}
}

/* ---- maintenance: counts for /healthz ---- */

struct health_scan {
	server_t *s;
	int64_t now, stale, count, earliest;
	revo_reader_t *r;
};

static int health_resp_cb(void *ctx, const revo_ocsp_resp_rec_t *rec)
{
	struct health_scan *h = ctx;
	h->count++;
	if (rec->hash != REVO_HASH_SHA1)
		return 0;
	bool hc, hr;
	revo_revocation_t rev;
	if (revo_reader_status(h->r, rec->issuer_id, &rec->serial, NULL, &hc, &rev, &hr, NULL))
		return 0;
	bool agrees = hr ? (rec->status == REVO_STATUS_REVOKED && rec->rev_seq == rev.seq)
			 : rec->status == REVO_STATUS_GOOD;
	if (rec->next_update <= h->now || !agrees)
		h->stale++;
	if (!h->earliest || rec->next_update < h->earliest)
		h->earliest = rec->next_update;
	return 0;
}

static int health_cert_cb(void *ctx, const revo_cert_rec_t *c, const revo_revocation_t *rv)
{
	struct health_scan *h = ctx;
	(void)rv;
	if (c->not_after <= h->now)
		return 0;
	revo_ocsp_resp_rec_t rec;
	if (revo_reader_response(h->r, c->issuer_id, &c->serial, REVO_HASH_SHA1, &rec, NULL) ==
	    REVO_ENOTFOUND)
		h->stale++;
	return 0;
}

static void health_scan(server_t *s, revo_reader_t *r)
{
	struct health_scan h = {.s = s, .now = revo_now(), .r = r};
	generation_t *g = gen_get(s);
	int ok = revo_reader_begin(r, NULL) == 0 &&
		 revo_reader_responses(r, health_resp_cb, &h, NULL) == 0;
	for (size_t i = 0; ok && g && i < g->n; i++)
		ok = revo_reader_certs(r, g->v[i].id, health_cert_cb, &h, NULL) == 0;
	revo_reader_end(r);
	gen_unref(g);
	atomic_store(&s->store_ok, ok);
	if (ok) {
		atomic_store(&s->stale_or_missing, h.stale);
		atomic_store(&s->responses, h.count);
		atomic_store(&s->earliest_next_update, h.earliest);
	}
}

static void *maint_main(void *arg)
{
	server_t *s = arg;
	revo_reader_t *r;
	if (revo_reader_open(s->st, &r, NULL) != 0) {
		atomic_store(&s->store_ok, 0);
		return NULL;
	}
	pthread_mutex_lock(&s->maint_lock);
	while (!s->maint_stop) {
		pthread_mutex_unlock(&s->maint_lock);
		health_scan(s, r);
		pthread_mutex_lock(&s->maint_lock);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 15;
		if (!s->maint_stop)
			pthread_cond_timedwait(&s->maint_cond, &s->maint_lock, &ts);
	}
	pthread_mutex_unlock(&s->maint_lock);
	revo_reader_close(r);
	return NULL;
}

/* ---- main thread ---- */

struct main_ctx {
	server_t *s;
	struct event_base *base;
	bool stop;
};

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct main_ctx *m = arg;
	(void)what;
	server_t *s = m->s;
	if (sig == SIGHUP) {
		generation_t *g;
		revo_errmsg_t em = {{0}};
		revo_notify("RELOADING=1\nSTATUS=reloading issuers and keys");
		if (gen_load(s, &g, &em) == 0) {
			pthread_mutex_lock(&s->lock);
			generation_t *old = s->gen;
			s->gen = g;
			pthread_mutex_unlock(&s->lock);
			gen_unref(old);
			for (int i = 0; i < s->n_workers; i++)
				event_active(s->workers[i].reload_ev, EV_READ, 0);
			fprintf(stderr, "revo: ocsp serve: reloaded issuers and keys\n");
		} else {
			fprintf(stderr,
				"revo: ocsp serve: reload failed, keeping the old keys: %s\n",
				em.msg[0] ? em.msg : revo_strerror(REVO_EIO));
		}
		revo_notify("READY=1\nSTATUS=serving");
		pthread_mutex_lock(&s->maint_lock);
		pthread_cond_signal(&s->maint_cond);
		pthread_mutex_unlock(&s->maint_lock);
		return;
	}
	revo_notify("STOPPING=1\nSTATUS=draining connections");
	for (int i = 0; i < s->n_workers; i++)
		event_active(s->workers[i].stop_ev, EV_READ, 0);
	event_base_loopbreak(m->base);
}

int revo_ocsp_serve(const revo_ocsp_server_cfg_t *cfg, revo_errmsg_t *em)
{
	static bool threads_on;
	if (!threads_on) {
		if (evthread_use_pthreads() != 0)
			return revo_err_set(em, REVO_EINTERNAL, "libevent has no pthreads support");
		threads_on = true;
	}
	server_t *s = calloc(1, sizeof(*s));
	if (!s)
		return REVO_ENOMEM;
	s->cfg = cfg;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->maint_lock, NULL);
	pthread_cond_init(&s->maint_cond, NULL);
	int rc = revo_store_open(cfg->store_dir, REVO_STORE_READONLY, &s->st, em);
	int n_threads = cfg->threads > 0 ? cfg->threads : 1;
	struct event_base *mbase = NULL;
	struct event *sigs[3] = {0};
	if (rc)
		goto out_free;
	if ((rc = gen_load(s, &s->gen, em)) != 0)
		goto out_free;
	if (cfg->n_listen == 0 || cfg->n_listen > MAX_LISTEN) {
		rc = revo_err_set(em, REVO_EINVAL, "give 1 to %d --listen addresses", MAX_LISTEN);
		goto out_free;
	}
	for (size_t i = 0; i < cfg->n_listen; i++)
		if ((rc = parse_listen(cfg->listen[i], &s->addrs[i], &s->addr_lens[i], em)) != 0)
			goto out_free;
	s->n_addrs = cfg->n_listen;
	s->workers = calloc((size_t)n_threads, sizeof(worker_t));
	if (!s->workers) {
		rc = REVO_ENOMEM;
		goto out_free;
	}
	s->n_workers = n_threads;

	/* signals belong to the main thread: block them before the workers start */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &old);

	for (int i = 0; i < n_threads && !rc; i++) {
		worker_t *w = &s->workers[i];
		w->srv = s;
		w->index = i;
		w->base = event_base_new();
		if (!w->base) {
			rc = revo_err_set(em, REVO_ENOMEM, "cannot create an event base");
			break;
		}
		if ((rc = revo_reader_open(s->st, &w->reader, em)) != 0)
			break;
		w->gen = gen_get(s);
		w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
		w->reload_ev = event_new(w->base, -1, 0, reload_cb, w);
		for (size_t a = 0; a < s->n_addrs; a++) {
			char name[80];
			addr_text(&s->addrs[a], name, sizeof(name));
			int fd =
			    make_socket((struct sockaddr *)&s->addrs[a], s->addr_lens[a], em, name);
			if (fd < 0) {
				rc = fd;
				break;
			}
			if (i == 0) {
				/* port 0: the kernel's choice is used by every other worker */
				getsockname(fd, (struct sockaddr *)&s->addrs[a], &s->addr_lens[a]);
				addr_text(&s->addrs[a], s->bound[a], sizeof(s->bound[a]));
			}
			w->listeners[w->n_listeners++] = evconnlistener_new(
			    w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
		}
	}
	if (rc) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		goto out_workers;
	}
	atomic_store(&s->store_ok, 1);
	{
		/* the first count before the first answer: /healthz is right from the start */
		revo_reader_t *r0;
		if (revo_reader_open(s->st, &r0, NULL) == 0) {
			health_scan(s, r0);
			revo_reader_close(r0);
		}
	}
	pthread_create(&s->maint, NULL, maint_main, s);
	for (int i = 0; i < n_threads; i++)
		pthread_create(&s->workers[i].tid, NULL, worker_main, &s->workers[i]);

	/* the signal events first: a SIGHUP or SIGTERM sent as soon as we say we are
	   ready (systemd may) must not meet the default action */
	mbase = event_base_new();
	struct main_ctx m = {.s = s, .base = mbase};
	int signos[3] = {SIGTERM, SIGINT, SIGHUP};
	for (int i = 0; i < 3; i++) {
		sigs[i] = evsignal_new(mbase, signos[i], signal_cb, &m);
		event_add(sigs[i], NULL);
	}
	signal(SIGPIPE, SIG_IGN);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	const char *bound[MAX_LISTEN];
	for (size_t a = 0; a < s->n_addrs; a++)
		bound[a] = s->bound[a];
	if (cfg->ready)
		cfg->ready(cfg->ready_ctx, bound, s->n_addrs);
	/* listening, and /healthz already counted: tell systemd (Type=notify) */
	revo_notifyf("READY=1\nSTATUS=serving on %s", bound[0]);
	event_base_dispatch(mbase);

	for (int i = 0; i < n_threads; i++)
		pthread_join(s->workers[i].tid, NULL);
	pthread_mutex_lock(&s->maint_lock);
	s->maint_stop = true;
	pthread_cond_signal(&s->maint_cond);
	pthread_mutex_unlock(&s->maint_lock);
	pthread_join(s->maint, NULL);
	rc = REVO_OK;
out_workers:
	for (int i = 0; i < s->n_workers; i++) {
		worker_t *w = &s->workers[i];
		while (w->conns)
			conn_free(w->conns);
		for (size_t a = 0; a < w->n_listeners; a++)
			if (w->listeners[a])
				evconnlistener_free(w->listeners[a]);
		if (w->stop_ev)
			event_free(w->stop_ev);
		if (w->reload_ev)
			event_free(w->reload_ev);
		if (w->drain_timer)
			event_free(w->drain_timer);
		revo_reader_close(w->reader);
		gen_unref(w->gen);
		if (w->base)
			event_base_free(w->base);
	}
	for (int i = 0; i < 3; i++)
		if (sigs[i])
			event_free(sigs[i]);
	if (mbase)
		event_base_free(mbase);
	free(s->workers);
out_free:
	gen_unref(s->gen);
	revo_store_close(s->st);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->maint_lock);
	pthread_cond_destroy(&s->maint_cond);
	free(s);
	return rc;
}
