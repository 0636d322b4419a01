/* l7load: the HTTP load tool of bench/l7.sh. One thread, epoll, keep-alive connections.
 *
 *   l7load [--h2] [--streams N] [--rate RPS] [--warmup SECS] [--samples FILE]
 *          HOST:PORT/PATH CONNS SECONDS
 *
 * Without --rate: closed loop. Every connection keeps N requests in flight (HTTP/1.1: one,
 * no pipelining; --h2: N streams, default 1) and sends the next as soon as a response ends.
 * Throughput counts the responses that end in the timed window (after the warm-up).
 *
 * With --rate RPS: open loop at a fixed rate. Request k is due at t0 + k/RPS; it is sent on
 * the next connection (round robin) that has room, and its latency is counted from its due
 * time, not from when it could be sent, so a stall of the server shows in the percentiles
 * instead of slowing the load down (no coordinated omission). "late" counts requests sent
 * more than 1 ms after they were due.
 *
 * Responses: HTTP/1.1 with Content-Length or chunked (Connection: close is followed by a
 * reconnect, counted); --h2 is HTTP/2 with prior knowledge (h2c, nghttp2). A non-2xx status
 * or a broken connection counts as an error. Output is one line of key=value pairs:
 *   total   every response received, warm-up and drain included (what the proxy served
 *           while the script measured its CPU)
 *   n rps   responses in the timed window, and per second
 *   p50_us p90_us p99_us p999_us max_us   latency of the timed responses
 *   cpu_ms  this tool's own CPU time (user + system)
 * --samples FILE appends every timed latency (us) to FILE, one a line (to pool runs).
 * Exit status 0 when every request got a 2xx answer. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define RBUF (256 * 1024)
#define HEAD_MAX 16384
#define DRAIN_SECS 5.0 /* how long in-flight requests may take to finish at the end */

enum h1_state { H_IDLE, H_HEAD, H_BODY, H_CHUNK_SIZE, H_CHUNK_DATA, H_TRAILER };

struct conn;

struct req {
	double due;  /* rate mode: when it was due; closed mode: when it was sent */
	double sent;
	int status;
	bool used;
	struct conn *c;
};

struct conn {
	int fd;
	int inflight;
	bool want_write; /* waiting for EPOLLOUT */
	bool need_send;  /* h2: frames submitted, nghttp2_session_send pending */
	/* HTTP/1.1 */
	struct req r1;
	size_t out_off; /* bytes of the request already written */
	enum h1_state st;
	char head[HEAD_MAX];
	size_t head_len;
	long long left; /* body bytes or chunk bytes (+CRLF) still to come */
	long long chunk;
	bool chunk_ext, close_after;
	int line_len;
	/* HTTP/2 */
	nghttp2_session *h2;
	struct req *slots;
};

static struct {
	struct sockaddr_in sa;
	char authority[64];
	char path[512];
	char req[1024];
	size_t req_len;
	bool h2;
	int streams;
	double rate; /* 0: closed loop */
	int nconns;
	double secs, warmup;
	const char *samples;
} opt = {.streams = 1, .warmup = 0};

static struct conn *conns;
static int ep;
static char rbuf[RBUF];
static double t0, t_warm, t_end;
static bool stopping;
static long long total, ok, n_timed, err_status, err_conn, reconnects, late;
static long long k_planned, k_due, k_sent, max_backlog; /* rate mode */
static int rr;                              /* rate mode: next connection to try */
static double *lat;
static size_t lat_n, lat_cap;

static void die(const char *what)
{
	fprintf(stderr, "l7load: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sample(double us)
{
	if (lat_n == lat_cap) {
		lat_cap = lat_cap ? lat_cap * 2 : 65536;
		lat = realloc(lat, lat_cap * sizeof(*lat));
		if (lat == NULL)
			die("realloc");
	}
	lat[lat_n++] = us;
}

static void issue(struct conn *c, double due);
static void conn_open(struct conn *c);
static void conn_close(struct conn *c);

/* One response ended (or its stream/connection failed: status 0). */
static void complete(struct conn *c, struct req *r, int status)
{
	double t = now();

	r->used = false;
	c->inflight--;
	if (status == 0) {
		err_conn++;
		return;
	}
	total++;
	if (status >= 200 && status < 300)
		ok++;
	else
		err_status++;
	if (opt.rate > 0 ? r->due >= t_warm : (r->sent >= t_warm && t <= t_end)) {
		n_timed++;
		sample((t - r->due) * 1e6);
	}
}

/* ------------------------------------------------------------------ HTTP/1.1 */

static void h1_flush(struct conn *c)
{
	while (c->out_off < opt.req_len) {
		ssize_t w = send(c->fd, opt.req + c->out_off, opt.req_len - c->out_off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};

			if (!c->want_write)
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
			c->want_write = true;
			return;
		}
		if (w < 0)
			return; /* the read side sees the error */
		c->out_off += (size_t)w;
	}
	if (c->want_write) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->want_write = false;
	}
}

static bool header_is(const char *line, const char *name, const char **value)
{
	size_t n = strlen(name);

	if (strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	*value = line + n + 1;
	return true;
}

/* The head (status line and headers, NUL-terminated) of a response: 0, or -1. */
static int h1_head(struct conn *c)
{
	char *line = c->head, *end;
	bool has_len = false;

	if (strncmp(line, "HTTP/1.", 7) != 0)
		return -1;
	c->r1.status = atoi(line + 9);
	c->chunk = 0;
	c->chunk_ext = false;
	c->close_after = line[7] == '0';
	c->left = 0;
	c->st = H_IDLE;
	while ((end = strstr(line, "\r\n")) != NULL && end != line) {
		const char *v;

		*end = 0;
		if (header_is(line, "content-length", &v)) {
			c->left = atoll(v);
			has_len = true;
		} else if (header_is(line, "transfer-encoding", &v) && strcasestr(v, "chunked")) {
			c->st = H_CHUNK_SIZE;
		} else if (header_is(line, "connection", &v)) {
			if (strcasestr(v, "close"))
				c->close_after = true;
			else if (strcasestr(v, "keep-alive"))
				c->close_after = false;
		}
		line = end + 2;
	}
	if (c->st == H_CHUNK_SIZE)
		return 0;
	if (!has_len)
		return -1; /* a body delimited by close: not a keep-alive benchmark */
	c->st = c->left > 0 ? H_BODY : H_IDLE;
	return 0;
}

/* Feeds bytes of the response in flight: 1 when it ended (with no byte left over), 0 when
 * more is needed, -1 on a protocol error. */
static int h1_feed(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		switch (c->st) {
		case H_IDLE:
			return -1; /* bytes with no request in flight */
		case H_HEAD: {
			size_t old = c->head_len, take = n, from = old > 3 ? old - 3 : 0;
			char *e;

			if (take > HEAD_MAX - 1 - old)
				take = HEAD_MAX - 1 - old;
			memcpy(c->head + old, p, take);
			c->head_len += take;
			c->head[c->head_len] = 0;
			e = strstr(c->head + from, "\r\n\r\n");
			if (e == NULL) {
				if (c->head_len == HEAD_MAX - 1)
					return -1;
				p += take;
				n -= take;
				break;
			}
			take = (size_t)(e + 4 - c->head) - old;
			e[2] = 0; /* keep the last header's CRLF */
			p += take;
			n -= take;
			c->head_len = 0;
			if (h1_head(c) < 0)
				return -1;
			if (c->r1.status >= 100 && c->r1.status < 200) {
				c->st = H_HEAD; /* an interim response: the real one follows */
				break;
			}
			if (c->st == H_IDLE)
				return n == 0 ? 1 : -1;
			break;
		}
		case H_BODY:
		case H_CHUNK_DATA: {
			size_t take = (long long)n < c->left ? n : (size_t)c->left;

			c->left -= (long long)take;
			p += take;
			n -= take;
			if (c->left == 0) {
				if (c->st == H_BODY) {
					c->st = H_IDLE;
					return n == 0 ? 1 : -1;
				}
				c->st = H_CHUNK_SIZE;
			}
			break;
		}
		case H_CHUNK_SIZE: {
			char ch = *p++;

			n--;
			if (ch == '\n') {
				if (c->chunk == 0) {
					c->st = H_TRAILER;
					c->line_len = 0;
				} else {
					c->st = H_CHUNK_DATA;
					c->left = c->chunk + 2;
				}
				c->chunk = 0;
				c->chunk_ext = false;
			} else if (ch == ';') {
				c->chunk_ext = true;
			} else if (!c->chunk_ext && isxdigit((unsigned char)ch)) {
				c->chunk = c->chunk * 16 + (isdigit((unsigned char)ch) ? ch - '0' : (tolower(ch) - 'a' + 10));
			} else if (!c->chunk_ext && ch != '\r' && ch != ' ') {
				return -1;
			}
			break;
		}
		case H_TRAILER: {
			char ch = *p++;

			n--;
			if (ch == '\n') {
				if (c->line_len == 0) {
					c->st = H_IDLE;
					return n == 0 ? 1 : -1;
				}
				c->line_len = 0;
			} else if (ch != '\r') {
				c->line_len++;
			}
			break;
		}
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ HTTP/2 */

static ssize_t h2_send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
	struct conn *c = ud;
	ssize_t w;

	(void)s;
	(void)flags;
	do
		w = send(c->fd, data, len, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno == EAGAIN) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};

		if (!c->want_write)
			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->want_write = true;
		return NGHTTP2_ERR_WOULDBLOCK;
	}
	if (w < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return w;
}

static int h2_header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
			const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	struct req *r;

	(void)flags;
	(void)ud;
	(void)valuelen;
	if (f->hd.type != NGHTTP2_HEADERS || namelen != 7 || memcmp(name, ":status", 7) != 0)
		return 0;
	r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (r != NULL)
		r->status = atoi((const char *)value);
	return 0;
}

static int h2_close_cb(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct req *r = nghttp2_session_get_stream_user_data(s, id);

	if (r != NULL && r->used)
		complete(ud, r, code == NGHTTP2_NO_ERROR ? r->status : 0);
	return 0;
}

static void h2_start(struct conn *c)
{
	static nghttp2_session_callbacks *cbs;
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24},
	};

	if (cbs == NULL) {
		nghttp2_session_callbacks_new(&cbs);
		nghttp2_session_callbacks_set_send_callback(cbs, h2_send_cb);
		nghttp2_session_callbacks_set_on_header_callback(cbs, h2_header_cb);
		nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_close_cb);
	}
	if (nghttp2_session_client_new(&c->h2, cbs, c) != 0) {
		fprintf(stderr, "l7load: nghttp2_session_client_new failed\n");
		exit(1);
	}
	nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
	nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 1 << 30);
	c->need_send = true;
}

static int h2_flush(struct conn *c)
{
	int rv;

	c->need_send = false;
	rv = nghttp2_session_send(c->h2);
	if (rv != 0)
		return -1;
	if (c->want_write && !nghttp2_session_want_write(c->h2)) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->want_write = false;
	}
	return 0;
}

/* ------------------------------------------------------------------ connections */

static void conn_open(struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)&opt.sa, sizeof(opt.sa)) < 0)
		die("connect");
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl");
	c->inflight = 0;
	c->want_write = false;
	c->st = H_IDLE;
	c->head_len = 0;
	c->r1.used = false;
	if (opt.h2) {
		int i;

		for (i = 0; i < opt.streams; i++)
			c->slots[i].used = false;
		h2_start(c);
	}
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
	if (c->h2 != NULL) {
		nghttp2_session_del(c->h2);
		c->h2 = NULL;
	}
}

/* The connection broke, or the server closes it after this response: count the requests
 * it took with it, open a new one and (closed loop) fill it again. */
static void conn_reset(struct conn *c)
{
	int i;

	if (c->r1.used)
		complete(c, &c->r1, 0);
	for (i = 0; opt.h2 && i < opt.streams; i++)
		if (c->slots[i].used)
			complete(c, &c->slots[i], 0);
	conn_close(c);
	if (stopping)
		return;
	reconnects++;
	conn_open(c);
	if (opt.rate == 0)
		for (i = 0; i < opt.streams; i++)
			issue(c, now());
}

static void issue(struct conn *c, double due)
{
	double t = now();
	struct req *r = NULL;
	int i;

	if (!opt.h2) {
		r = &c->r1;
		*r = (struct req){.due = opt.rate > 0 ? due : t, .sent = t, .used = true, .c = c};
		c->inflight++;
		c->st = H_HEAD;
		c->head_len = 0;
		c->out_off = 0;
		h1_flush(c);
		return;
	}
	for (i = 0; i < opt.streams; i++)
		if (!c->slots[i].used) {
			r = &c->slots[i];
			break;
		}
	if (r == NULL)
		return;
	*r = (struct req){.due = opt.rate > 0 ? due : t, .sent = t, .used = true, .c = c};
	{
		const nghttp2_nv nva[] = {
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
			NV(":method", "GET"),
			NV(":scheme", "http"),
			NV(":authority", opt.authority),
			NV(":path", opt.path),
			NV("user-agent", "l7load"),
			NV("accept", "*/*"),
#undef NV
		};
		if (nghttp2_submit_request(c->h2, NULL, nva, sizeof(nva) / sizeof(nva[0]), NULL, r) < 0) {
			r->used = false;
			err_conn++;
			return;
		}
	}
	c->inflight++;
	c->need_send = true;
}

/* Rate mode: send what is due on connections with room, round robin. */
static void issue_due(void)
{
	double t = now();
	long long due;

	/* requests 0 .. k_planned-1 are due before t_end */
	due = (long long)floor((t - t0) * opt.rate) + 1;
	if (due > k_planned)
		due = k_planned;
	if (due > k_due)
		k_due = due;
	while (k_sent < k_due) {
		double d = t0 + (double)k_sent / opt.rate;
		int i;
		struct conn *c = NULL;

		for (i = 0; i < opt.nconns; i++) {
			struct conn *x = &conns[(rr + i) % opt.nconns];

			if (x->fd >= 0 && x->inflight < opt.streams) {
				c = x;
				rr = (rr + i + 1) % opt.nconns;
				break;
			}
		}
		if (c == NULL)
			break;
		if (t - d > 0.001)
			late++;
		issue(c, d);
		k_sent++;
	}
	if (k_due - k_sent > max_backlog)
		max_backlog = k_due - k_sent;
}

static void on_event(struct conn *c, uint32_t events)
{
	if (opt.h2 && (events & EPOLLOUT) && h2_flush(c) < 0) {
		conn_reset(c);
		return;
	}
	if (!opt.h2 && (events & EPOLLOUT))
		h1_flush(c);
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	for (;;) {
		ssize_t r = recv(c->fd, rbuf, sizeof(rbuf), 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			conn_reset(c);
			return;
		}
		if (opt.h2) {
			if (nghttp2_session_mem_recv(c->h2, (const uint8_t *)rbuf, (size_t)r) < 0 || h2_flush(c) < 0) {
				conn_reset(c);
				return;
			}
			if (opt.rate == 0 && !stopping)
				while (c->inflight < opt.streams && c->fd >= 0) {
					int before = c->inflight;

					issue(c, 0);
					if (c->inflight == before)
						break;
				}
		} else {
			int f = h1_feed(c, rbuf, (size_t)r);

			if (f < 0) {
				fprintf(stderr, "l7load: bad HTTP/1.1 response\n");
				conn_reset(c);
				return;
			}
			if (f == 1) {
				complete(c, &c->r1, c->r1.status);
				if (c->close_after) {
					conn_reset(c);
					return;
				}
				if (opt.rate == 0 && !stopping)
					issue(c, 0);
			}
		}
		if ((size_t)r < sizeof(rbuf))
			return; /* level-triggered: epoll says when there is more */
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double q)
{
	size_t i;

	if (lat_n == 0)
		return 0;
	i = (size_t)((double)lat_n * q);
	return lat[i < lat_n ? i : lat_n - 1];
}

static void parse_target(const char *s)
{
	char host[64];
	const char *colon = strchr(s, ':'), *slash;

	slash = colon ? strchr(colon, '/') : NULL;
	if (colon == NULL || (size_t)(colon - s) >= sizeof(host)) {
		fprintf(stderr, "l7load: bad target %s (want HOST:PORT/PATH)\n", s);
		exit(2);
	}
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	memset(&opt.sa, 0, sizeof(opt.sa));
	opt.sa.sin_family = AF_INET;
	opt.sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &opt.sa.sin_addr) != 1) {
		fprintf(stderr, "l7load: bad host %s\n", host);
		exit(2);
	}
	snprintf(opt.authority, sizeof(opt.authority), "%.*s", (int)(slash ? slash - s : (long)strlen(s)), s);
	snprintf(opt.path, sizeof(opt.path), "%s", slash ? slash : "/");
	opt.req_len = (size_t)snprintf(opt.req, sizeof(opt.req),
				       "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: l7load\r\nAccept: */*\r\n\r\n",
				       opt.path, opt.authority);
}

static void usage(void)
{
	fprintf(stderr, "usage: l7load [--h2] [--streams N] [--rate RPS] [--warmup SECS] [--samples FILE] "
			"HOST:PORT/PATH CONNS SECONDS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"h2", no_argument, NULL, '2'},      {"streams", required_argument, NULL, 's'},
		{"rate", required_argument, NULL, 'r'}, {"warmup", required_argument, NULL, 'w'},
		{"samples", required_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	struct epoll_event evs[256];
	struct rlimit rl;
	double t_drain, t;
	int o, i, tfd = -1;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case '2': opt.h2 = true; break;
		case 's': opt.streams = atoi(optarg); break;
		case 'r': opt.rate = atof(optarg); break;
		case 'w': opt.warmup = atof(optarg); break;
		case 'f': opt.samples = optarg; break;
		default: usage();
		}
	}
	if (argc - optind != 3)
		usage();
	parse_target(argv[optind]);
	opt.nconns = atoi(argv[optind + 1]);
	opt.secs = atof(argv[optind + 2]);
	if (opt.nconns <= 0 || opt.secs <= 0 || opt.streams <= 0 || opt.warmup < 0 || opt.rate < 0)
		usage();
	if (!opt.h2)
		opt.streams = 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	conns = calloc((size_t)opt.nconns, sizeof(*conns));
	if (conns == NULL)
		die("calloc");
	for (i = 0; i < opt.nconns; i++) {
		conns[i].fd = -1;
		if (opt.h2 && (conns[i].slots = calloc((size_t)opt.streams, sizeof(struct req))) == NULL)
			die("calloc");
		conn_open(&conns[i]);
	}
	if (opt.rate > 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (tfd < 0)
			die("timerfd_create");
		epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	}

	t0 = now();
	t_warm = t0 + opt.warmup;
	t_end = t_warm + opt.secs;
	t_drain = t_end + DRAIN_SECS;
	k_planned = (long long)ceil((t_end - t0) * opt.rate - 1e-6);
	if (opt.rate == 0)
		for (i = 0; i < opt.nconns; i++)
			for (o = 0; o < opt.streams; o++)
				issue(&conns[i], 0);

	for (;;) {
		int n, timeout_ms = 100;
		int inflight = 0;

		t = now();
		if (opt.rate > 0)
			issue_due(); /* first: what fell due just before t_end is still sent */
		if (!stopping && t >= t_end)
			stopping = true;
		if (opt.rate > 0) {
			if (!stopping) {
				double next = t0 + (double)k_due / opt.rate;
				struct itimerspec its = {0};

				if (next > t_end)
					next = t_end;
				its.it_value.tv_sec = (time_t)next;
				its.it_value.tv_nsec = (long)((next - (double)(time_t)next) * 1e9);
				timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
				timeout_ms = -1;
			}
		} else if (!stopping) {
			timeout_ms = (int)((t_end - t) * 1000) + 1;
		}
		for (i = 0; i < opt.nconns; i++) {
			if (conns[i].fd >= 0 && conns[i].need_send && h2_flush(&conns[i]) < 0)
				conn_reset(&conns[i]);
			inflight += conns[i].fd >= 0 ? conns[i].inflight : 0;
		}
		if (stopping && (inflight == 0 || t >= t_drain))
			break;
		n = epoll_wait(ep, evs, 256, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				uint64_t x;

				if (read(tfd, &x, sizeof(x)) < 0 && errno != EAGAIN)
					die("timerfd read");
				continue;
			}
			if (((struct conn *)evs[i].data.ptr)->fd >= 0)
				on_event(evs[i].data.ptr, evs[i].events);
		}
	}
	{
		long long unfinished = 0;

		for (i = 0; i < opt.nconns; i++) {
			if (conns[i].fd >= 0)
				unfinished += conns[i].inflight;
			if (conns[i].fd >= 0)
				conn_close(&conns[i]);
		}
		if (opt.rate > 0)
			unfinished += k_due - k_sent;
		if (opt.samples != NULL) {
			FILE *f = fopen(opt.samples, "a");
			size_t j;

			if (f == NULL)
				die(opt.samples);
			for (j = 0; j < lat_n; j++)
				fprintf(f, "%.1f\n", lat[j]);
			fclose(f);
		}
		qsort(lat, lat_n, sizeof(*lat), cmp_double);
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		printf("proto=%s conns=%d streams=%d mode=%s rate=%.0f secs=%.3f total=%lld n=%lld rps=%.1f "
		       "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f errors=%lld unfinished=%lld "
		       "reconnects=%lld late=%lld max_backlog=%lld cpu_ms=%.0f\n",
		       opt.h2 ? "h2c" : "http/1.1", opt.nconns, opt.streams, opt.rate > 0 ? "rate" : "closed", opt.rate,
		       opt.secs, total, n_timed, (double)n_timed / opt.secs, pct(0.5), pct(0.9), pct(0.99), pct(0.999),
		       lat_n ? lat[lat_n - 1] : 0.0, err_status + err_conn, unfinished, reconnects, late, max_backlog,
		       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
			       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3);
		return total > 0 && err_status + err_conn + unfinished == 0 ? 0 : 1;
	}
}
