/*
 * ocsp_latency: an open-loop HTTP/1.1 load generator for the OCSP benchmark
 * (bench/ocsp_bench.py). It sends one fixed request at a fixed rate over several keep-alive
 * connections and measures each answer from the time the request was *meant* to be sent,
 * so that a slow server cannot hide its queueing (no coordinated omission).
 *
 * Request i is due at t0 + i / rate. Whenever a connection is idle and the oldest unsent
 * request is due, it goes out on that connection (one request in flight per connection, no
 * pipelining), taken round-robin. If every connection is busy, due requests wait in the
 * queue and their wait counts. Latency = time the whole response was read - intended send
 * time. After an answer without keep-alive (HTTP/1.0, "Connection: close") the connection
 * is closed and opened again only when a request is due for it, as a real client would:
 * the connect time then counts in that request's latency (and a server that handles one
 * connection at a time is never handed an idle one).
 *
 * Usage: ocsp_latency --port P --rate R --duration S (--request FILE | --get-list FILE)
 *                     [--host 127.0.0.1] [--conns 32] [--warmup 1] [--drain 2]
 * --request FILE holds one raw HTTP request (request line, headers, blank line, body), sent
 * every time. --get-list FILE holds many body-less requests one after the other (each ends
 * with its blank line); request i is entry i modulo their number.
 * Output: one JSON object on stdout (latencies in microseconds).
 *
 * Build: cc -O2 -o ocsp_latency ocsp_latency.c -lm
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define RBUF 65536

enum cstate { C_CONNECTING, C_IDLE, C_WRITING, C_READING, C_DEAD };

struct conn {
	int fd;
	enum cstate st;
	uint64_t idx;      /* request in flight */
	size_t woff;       /* request octets written */
	char rbuf[RBUF];
	size_t rlen;
	int64_t need;      /* total response octets (head + body) once known, else -1 */
	bool close_after;  /* server will close: reconnect after this answer */
	bool pending;      /* request idx waits for the connect to complete */
	int status;
};

static const char *host = "127.0.0.1";
static int port, nconns = 32;
static double rate, duration, warmup = 1.0, drain = 2.0;
static char *req;
static size_t reqlen;
static const char **reqv; /* the requests: start and length of each */
static size_t *reqvlen, nreqv;
static struct sockaddr_in sa;
static int ep;

static uint64_t *lat; /* recorded latencies, ns */
static size_t nlat, caplat;
static uint64_t completed, errors, non200, reconnects, connect_fail;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "ocsp_latency: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void open_conn(struct conn *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket");
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->rlen = 0;
	c->need = -1;
	c->close_after = false;
	c->pending = false;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		c->st = C_IDLE;
	} else if (errno == EINPROGRESS) {
		c->st = C_CONNECTING;
	} else {
		connect_fail++;
		close(c->fd);
		c->fd = -1;
		c->st = C_DEAD;
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl");
}

static void close_conn(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->st = C_DEAD;
	c->pending = false;
}

/* Write request c->idx (the rest waits for EPOLLOUT). */
static void send_req(struct conn *c)
{
	const char *rq = reqv[c->idx % nreqv];
	size_t rl = reqvlen[c->idx % nreqv];
	c->woff = 0;
	c->rlen = 0;
	c->need = -1;
	c->st = C_WRITING;
	ssize_t w = write(c->fd, rq, rl);
	if (w > 0)
		c->woff = (size_t)w;
	if (c->woff == rl)
		c->st = C_READING;
	else if (w < 0 && errno != EAGAIN) {
		errors++;
		close_conn(c);
	}
}

/* Parse the response head once it is complete: status, Content-Length, keep-alive. */
static bool parse_head(struct conn *c)
{
	char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
	if (!end)
		return false;
	size_t head = (size_t)(end - c->rbuf) + 4;
	bool http10 = c->rlen >= 8 && memcmp(c->rbuf, "HTTP/1.0", 8) == 0;
	c->status = 0;
	if (c->rlen > 12)
		c->status = atoi(c->rbuf + 9);
	long clen = -1;
	bool ka = !http10, cl = false;
	for (char *p = memchr(c->rbuf, '\n', head); p && p + 1 < c->rbuf + head; p = memchr(p + 1, '\n', (size_t)(c->rbuf + head - p - 1))) {
		char *l = p + 1;
		if (strncasecmp(l, "content-length:", 15) == 0)
			clen = strtol(l + 15, NULL, 10);
		else if (strncasecmp(l, "connection:", 11) == 0) {
			char *v = l + 11;
			while (*v == ' ')
				v++;
			if (strncasecmp(v, "close", 5) == 0)
				cl = true;
			else if (strncasecmp(v, "keep-alive", 10) == 0)
				ka = true;
		}
	}
	if (clen < 0) { /* no length: not something our peers send */
		clen = 0;
		cl = true;
	}
	c->need = (int64_t)head + clen;
	c->close_after = cl || !ka;
	return true;
}

static void record(uint64_t intended, uint64_t t, double t0_ns)
{
	completed++;
	if ((double)intended < t0_ns + warmup * 1e9)
		return;
	if (nlat == caplat) {
		caplat = caplat ? caplat * 2 : 1 << 16;
		lat = realloc(lat, caplat * sizeof *lat);
		if (!lat)
			die("realloc");
	}
	lat[nlat++] = t > intended ? t - intended : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	if (!nlat)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)(nlat - 1) + 0.5);
	if (i >= nlat)
		i = nlat - 1;
	return (double)lat[i] / 1000.0;
}

int main(int argc, char **argv)
{
	const char *reqfile = NULL;
	bool list = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			goto usage;
		if (!strcmp(a, "--host"))
			host = v;
		else if (!strcmp(a, "--port"))
			port = atoi(v);
		else if (!strcmp(a, "--rate"))
			rate = atof(v);
		else if (!strcmp(a, "--duration"))
			duration = atof(v);
		else if (!strcmp(a, "--warmup"))
			warmup = atof(v);
		else if (!strcmp(a, "--drain"))
			drain = atof(v);
		else if (!strcmp(a, "--conns"))
			nconns = atoi(v);
		else if (!strcmp(a, "--request"))
			reqfile = v;
		else if (!strcmp(a, "--get-list")) {
			reqfile = v;
			list = true;
		}
		else
			goto usage;
		i++;
	}
	if (!port || rate <= 0 || duration <= 0 || !reqfile || nconns < 1)
		goto usage;

	FILE *f = fopen(reqfile, "rb");
	if (!f)
		die(reqfile);
	fseek(f, 0, SEEK_END);
	long fsz = ftell(f);
	rewind(f);
	req = malloc((size_t)fsz + 1);
	if (!req || fsz <= 0)
		die("request file");
	reqlen = fread(req, 1, (size_t)fsz, f);
	fclose(f);
	if (list) {
		size_t cap = 1024;
		reqv = malloc(cap * sizeof *reqv);
		reqvlen = malloc(cap * sizeof *reqvlen);
		for (char *p = req, *e; p < req + reqlen; p = e + 4) {
			e = memmem(p, (size_t)(req + reqlen - p), "\r\n\r\n", 4);
			if (!e)
				break;
			if (nreqv == cap) {
				cap *= 2;
				reqv = realloc(reqv, cap * sizeof *reqv);
				reqvlen = realloc(reqvlen, cap * sizeof *reqvlen);
			}
			reqv[nreqv] = p;
			reqvlen[nreqv++] = (size_t)(e + 4 - p);
		}
	} else {
		reqv = malloc(sizeof *reqv);
		reqvlen = malloc(sizeof *reqvlen);
		reqv[0] = req;
		reqvlen[0] = reqlen;
		nreqv = 1;
	}
	if (!nreqv) {
		fprintf(stderr, "ocsp_latency: no request in %s\n", reqfile);
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "ocsp_latency: bad host %s\n", host);
		return 2;
	}
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	ep = epoll_create1(EPOLL_CLOEXEC);
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ep < 0 || tfd < 0)
		die("epoll/timerfd");
	struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

	struct conn *cs = calloc((size_t)nconns, sizeof *cs);
	for (int i = 0; i < nconns; i++)
		open_conn(&cs[i]);

	/* Wait (up to 2 s) for the connections to be up before the clock starts. */
	uint64_t wait_until = now_ns() + 2000000000u;
	for (;;) {
		int up = 0;
		for (int i = 0; i < nconns; i++)
			up += cs[i].st == C_IDLE;
		if (up == nconns || now_ns() > wait_until)
			break;
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 10);
		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			if (c && c->st == C_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof err;
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err) {
					connect_fail++;
					close_conn(c);
				} else
					c->st = C_IDLE;
			}
		}
	}

	const uint64_t t0 = now_ns();
	const double t0d = (double)t0;
	const uint64_t total = (uint64_t)(rate * duration + 0.5);
	const double step = 1e9 / rate;
	const uint64_t t_end = t0 + (uint64_t)(duration * 1e9);
	const uint64_t t_stop = t_end + (uint64_t)(drain * 1e9);
	uint64_t next = 0; /* oldest unsent request */
	bool timer_armed = false;
	int rr = 0;
	uint64_t timer_at = 0;
	struct epoll_event evs[256];

	for (;;) {
		uint64_t t = now_ns();
		if (t >= t_stop)
			break;
		/* Send every due request: on the next idle connection (round-robin), else on a
		 * closed one, opened now. */
		while (next < total && t0 + (uint64_t)((double)next * step) <= t) {
			struct conn *c = NULL;
			for (int k = 0; k < nconns && !c; k++)
				if (cs[(rr + k) % nconns].st == C_IDLE)
					c = &cs[(rr + k) % nconns];
			for (int k = 0; k < nconns && !c; k++)
				if (cs[(rr + k) % nconns].st == C_DEAD)
					c = &cs[(rr + k) % nconns];
			if (!c)
				break;
			rr = (int)(c - cs + 1) % nconns;
			c->idx = next++;
			if (c->st == C_DEAD) {
				open_conn(c);
				if (c->st == C_DEAD) { /* connect refused: the request is lost */
					errors++;
					continue;
				}
				if (c->st == C_CONNECTING) {
					c->pending = true;
					continue;
				}
			}
			send_req(c);
		}
		bool inflight = false, idle = false;
		for (int i = 0; i < nconns; i++) {
			inflight |= cs[i].st == C_WRITING || cs[i].st == C_READING || cs[i].pending;
			idle |= cs[i].st == C_IDLE || cs[i].st == C_DEAD;
		}
		if (next >= total && !inflight)
			break;
		/* Arm the timer for the next due request when a connection is idle to send it;
		 * otherwise the next answer (or a connect) frees one and we look again then. */
		int timeout_ms = (int)((t_stop - t) / 1000000u) + 1;
		if (next < total && idle) {
			uint64_t due = t0 + (uint64_t)((double)next * step);
			if (!timer_armed || timer_at != due) {
				struct itimerspec its = {0};
				its.it_value.tv_sec = (time_t)(due / 1000000000u);
				its.it_value.tv_nsec = (long)(due % 1000000000u);
				if (due <= t)
					its.it_value.tv_nsec += 1; /* already due: fire at once */
				timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
				timer_armed = true;
				timer_at = due;
			}
		}
		int n = epoll_wait(ep, evs, 256, timeout_ms);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			if (!c) {
				uint64_t x;
				if (read(tfd, &x, sizeof x) < 0) { /* spurious */ }
				timer_armed = false;
				continue;
			}
			if (c->st == C_DEAD)
				continue;
			if (c->st == C_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof err;
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err) {
					connect_fail++;
					if (c->pending)
						errors++;
					close_conn(c);
					continue;
				}
				c->st = C_IDLE;
				if (c->pending) {
					c->pending = false;
					send_req(c);
					if (c->st == C_DEAD)
						continue;
				}
			}
			if (c->st == C_WRITING && (evs[k].events & EPOLLOUT)) {
				const char *rq = reqv[c->idx % nreqv];
				size_t rl = reqvlen[c->idx % nreqv];
				ssize_t w = write(c->fd, rq + c->woff, rl - c->woff);
				if (w > 0)
					c->woff += (size_t)w;
				if (c->woff == rl)
					c->st = C_READING;
				else if (w < 0 && errno != EAGAIN) {
					errors++;
					close_conn(c);
					continue;
				}
			}
			if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				for (;;) {
					if (c->rlen == RBUF) { /* larger than we expect: give up on it */
						errors++;
						close_conn(c);
						break;
					}
					ssize_t r = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
					if (r < 0 && errno == EAGAIN)
						break;
					if (r <= 0) { /* closed by the server */
						if (c->st == C_WRITING || c->st == C_READING)
							errors++;
						close_conn(c);
						reconnects++;
						break;
					}
					c->rlen += (size_t)r;
					if (c->st != C_READING)
						continue;
					if (c->need < 0 && !parse_head(c))
						continue;
					if ((int64_t)c->rlen >= c->need) {
						uint64_t intended = t0 + (uint64_t)((double)c->idx * step);
						record(intended, now_ns(), t0d);
						if (c->status != 200)
							non200++;
						size_t extra = c->rlen - (size_t)c->need;
						if (extra)
							memmove(c->rbuf, c->rbuf + c->need, extra);
						c->rlen = extra;
						c->need = -1;
						if (c->close_after) {
							close_conn(c);
							reconnects++;
							break;
						}
						c->st = C_IDLE;
					}
				}
			}
		}
	}
	uint64_t t_done = now_ns();
	uint64_t lost = 0;
	for (int i = 0; i < nconns; i++)
		if (cs[i].st == C_WRITING || cs[i].st == C_READING || cs[i].pending)
			lost++;

	qsort(lat, nlat, sizeof *lat, cmp_u64);
	printf("{\"rate\": %.1f, \"duration\": %.3f, \"warmup\": %.3f, \"conns\": %d, "
	       "\"scheduled\": %llu, \"sent\": %llu, \"completed\": %llu, \"recorded\": %zu, "
	       "\"unsent\": %llu, \"timed_out\": %llu, \"errors\": %llu, \"non200\": %llu, "
	       "\"reconnects\": %llu, \"connect_failures\": %llu, \"throughput\": %.1f, "
	       "\"elapsed\": %.3f, \"distinct_requests\": %zu, \"percentiles_us\": {",
	       rate, duration, warmup, nconns, (unsigned long long)total, (unsigned long long)next,
	       (unsigned long long)completed, nlat, (unsigned long long)(total - next),
	       (unsigned long long)lost, (unsigned long long)errors, (unsigned long long)non200,
	       (unsigned long long)reconnects, (unsigned long long)connect_fail,
	       (double)completed / ((double)(t_done - t0) / 1e9), (double)(t_done - t0) / 1e9, nreqv);
	static const double ps[] = {0,  10, 25,   50,   75,    90,    95,     99,
				    99.5, 99.9, 99.95, 99.99, 99.995, 99.999, 100};
	for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
		printf("%s\"%g\": %.1f", i ? ", " : "", ps[i], pct(ps[i]));
	printf("}}\n");
	return 0;

usage:
	fprintf(stderr, "usage: ocsp_latency --port P --rate R --duration S "
			"(--request FILE | --get-list FILE) "
			"[--host H] [--conns N] [--warmup S] [--drain S]\n");
	return 2;
}
