/* relay_test: the relay between two real socket pairs (AF_UNIX socketpair and TCP on
 * loopback), in splice and read/write mode: bulk bytes both ways, half-close in both
 * orders, backpressure and resume, idle timeout, resets, stop, byte counters; and with TLS
 * sides, two relays back to back as two sidecars (raw | TLS client -> TLS server | raw). The test's
 * own endpoints (the "client" and the "server" application) run on the same loop. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <stdarg.h>
#include <stdlib.h>

#include "test.h"
#include "proxy/network/relay.h"
#include "proxy/network/tls.h"
#include "xds/pbjson.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

enum transport { UNIX_PAIR, TCP_LOOPBACK };

/* The byte at `off` of the stream with `seed`: a hash, so a lost, repeated or reordered
 * chunk shows up as a mismatch. */
static uint8_t pattern(uint8_t seed, uint64_t off)
{
	uint64_t x = off * 0x9E3779B97F4A7C15ull + seed;

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	return (uint8_t)(x >> 40);
}

/* An application endpoint: sends `to_send` bytes of its pattern, checks what it reads
 * against the peer's. */
struct ep {
	struct ev_loop *loop;
	int fd;
	ev_io rw, ww;
	uint8_t seed, peer_seed;
	uint64_t to_send, sent;
	bool send_after_eof;    /* start sending only once EOF was read */
	bool shut_when_done;    /* shutdown(SHUT_WR) after the last byte */
	bool shut;
	bool reading;
	double last_send;
	uint64_t received, bad;
	bool eof;
	int err;
};

static bool ep_wants_write(const struct ep *e)
{
	if (e->fd < 0 || e->err || (e->send_after_eof && !e->eof))
		return false;
	return e->sent < e->to_send || (e->shut_when_done && !e->shut);
}

static void ep_update(struct ep *e)
{
	if (e->fd >= 0 && e->reading && !e->eof && !e->err)
		ev_io_start(e->loop, &e->rw);
	else
		ev_io_stop(e->loop, &e->rw);
	if (ep_wants_write(e))
		ev_io_start(e->loop, &e->ww);
	else
		ev_io_stop(e->loop, &e->ww);
}

static void ep_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ep *e = container_of(w, struct ep, rw);
	uint8_t buf[65536];
	ssize_t n, i;

	(void)loop;
	(void)revents;
	n = read(e->fd, buf, sizeof(buf));
	if (n < 0 && errno != EAGAIN)
		e->err = errno;
	if (n == 0)
		e->eof = true;
	for (i = 0; i < n; i++)
		if (buf[i] != pattern(e->peer_seed, e->received + (uint64_t)i))
			e->bad++;
	if (n > 0)
		e->received += (uint64_t)n;
	ep_update(e);
}

static void ep_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ep *e = container_of(w, struct ep, ww);
	uint8_t buf[65536];
	uint64_t len = e->to_send - e->sent;
	ssize_t n;
	size_t i;

	(void)revents;
	if (len == 0) {
		shutdown(e->fd, SHUT_WR);
		e->shut = true;
		ep_update(e);
		return;
	}
	if (len > sizeof(buf))
		len = sizeof(buf);
	for (i = 0; i < len; i++)
		buf[i] = pattern(e->seed, e->sent + i);
	n = send(e->fd, buf, len, MSG_NOSIGNAL);
	if (n > 0) {
		e->sent += (uint64_t)n;
		e->last_send = ev_now(loop);
	} else if (errno != EAGAIN) {
		e->err = errno;
	}
	ep_update(e);
}

/* One relay between a client (downstream) and a server (upstream) application. */
struct fix {
	struct ev_loop *loop;
	struct ep client, server;
	int down_fd, up_fd;             /* the relay's ends (owned by the relay) */
	struct sk_relay *r;
	int done_calls;
	enum sk_relay_end why;
	int err;
	double started, done_at;
	uint64_t cb_bytes[2], final_bytes[2];
	uint64_t stop_after;            /* sk_relay_stop from on_bytes past this total */
	bool in_start;
};

static void on_bytes(void *ctx, enum sk_relay_dir dir, size_t n)
{
	struct fix *f = ctx;

	f->cb_bytes[dir] += n;
	if (f->stop_after && f->cb_bytes[0] + f->cb_bytes[1] > f->stop_after)
		sk_relay_stop(f->r);
}

static void on_done(void *ctx, enum sk_relay_end why, int err)
{
	struct fix *f = ctx;

	if (f->in_start)
		f->done_calls += 1000;  /* would be a synchronous call: fails every check */
	f->done_calls++;
	f->why = why;
	f->err = err;
	f->done_at = ev_now(f->loop);
	f->final_bytes[0] = sk_relay_bytes(f->r, SK_RELAY_DOWN_TO_UP);
	f->final_bytes[1] = sk_relay_bytes(f->r, SK_RELAY_UP_TO_DOWN);
	sk_relay_free(f->r);            /* allowed inside the done callback */
	f->r = NULL;
}

static void set_bufs(int fd, int size)
{
	if (size > 0) {
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
}

static int make_pair(enum transport t, int bufsize, int fds[2])
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int l, i;

	if (t == UNIX_PAIR) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
			return -1;
		set_bufs(fds[0], bufsize);
		set_bufs(fds[1], bufsize);
		return 0;
	}
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	set_bufs(l, bufsize);
	set_bufs(fds[0], bufsize);
	if (l < 0 || fds[0] < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(l, 1) < 0 || getsockname(l, (struct sockaddr *)&sa, &len) < 0 ||
	    connect(fds[0], (struct sockaddr *)&sa, len) < 0)
		return -1;
	fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	if (fds[1] < 0)
		return -1;
	for (i = 0; i < 2; i++)
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	return 0;
}

static void ep_init(struct fix *f, struct ep *e, int fd, uint8_t seed, uint8_t peer_seed)
{
	e->loop = f->loop;
	e->fd = fd;
	e->seed = seed;
	e->peer_seed = peer_seed;
	e->reading = true;
	ev_io_init(&e->rw, ep_read_cb, fd, EV_READ);
	ev_io_init(&e->ww, ep_write_cb, fd, EV_WRITE);
}

/* Builds client <-> [down_fd relay up_fd] <-> server; the endpoints start idle. */
static bool fix_open(struct fix *f, enum transport t, int bufsize)
{
	int down[2], up[2];

	memset(f, 0, sizeof(*f));
	f->loop = ev_loop_new(EVFLAG_AUTO);
	if (f->loop == NULL || make_pair(t, bufsize, down) < 0 || make_pair(t, bufsize, up) < 0)
		return false;
	ep_init(f, &f->client, down[0], 1, 2);
	ep_init(f, &f->server, up[1], 2, 1);
	f->down_fd = down[1];
	f->up_fd = up[0];
	return true;
}

static bool fix_start(struct fix *f, bool splice, uint32_t limit, double idle)
{
	struct sk_relay_opts o = {.use_splice = splice, .buffer_limit = limit,
				  .idle_timeout = idle};

	ev_now_update(f->loop);
	f->started = ev_now(f->loop);
	f->in_start = true;
	f->r = sk_relay_start(f->loop, f->down_fd, f->up_fd, &o, on_bytes, on_done, f);
	f->in_start = false;
	ep_update(&f->client);
	ep_update(&f->server);
	return f->r != NULL;
}

static void fix_close(struct fix *f)
{
	ev_io_stop(f->loop, &f->client.rw);
	ev_io_stop(f->loop, &f->client.ww);
	ev_io_stop(f->loop, &f->server.rw);
	ev_io_stop(f->loop, &f->server.ww);
	sk_relay_free(f->r);
	if (f->client.fd >= 0)
		close(f->client.fd);
	if (f->server.fd >= 0)
		close(f->server.fd);
	ev_loop_destroy(f->loop);
}

/* Runs the loop until pred holds or `seconds` pass; a ticker re-checks even when idle. */
struct runner {
	ev_check check;
	ev_timer tick, watchdog;
	bool (*pred)(struct fix *);
	struct fix *f;
	bool met;
};

static void run_check_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	struct runner *ru = container_of(w, struct runner, check);

	(void)revents;
	if (ru->pred(ru->f)) {
		ru->met = true;
		ev_break(loop, EVBREAK_ONE);
	}
}

static void run_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

static void run_watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ONE);
}

static bool run_until(struct fix *f, bool (*pred)(struct fix *), double seconds)
{
	struct runner ru = {.pred = pred, .f = f};

	if (pred(f))
		return true;
	ev_check_init(&ru.check, run_check_cb);
	ev_timer_init(&ru.tick, run_tick_cb, 0.02, 0.02);
	ev_timer_init(&ru.watchdog, run_watchdog_cb, seconds, 0.);
	ev_check_start(f->loop, &ru.check);
	ev_timer_start(f->loop, &ru.tick);
	ev_timer_start(f->loop, &ru.watchdog);
	ev_run(f->loop, 0);
	ev_check_stop(f->loop, &ru.check);
	ev_timer_stop(f->loop, &ru.tick);
	ev_timer_stop(f->loop, &ru.watchdog);
	return ru.met;
}

static bool relay_done(struct fix *f)
{
	return f->done_calls > 0;
}

static bool all_done(struct fix *f)
{
	return f->done_calls > 0 && f->client.eof && f->server.eof;
}

static const char *mode_name(enum transport t, bool splice)
{
	return t == UNIX_PAIR ? (splice ? "unix/splice" : "unix/rw")
			      : (splice ? "tcp/splice" : "tcp/rw");
}

/* Several MB each way at once, every byte checked; counters agree with what arrived. */
static void test_bulk(enum transport t, bool splice)
{
	struct fix f;
	bool ok;

	CHECK(fix_open(&f, t, 0));
	f.client.to_send = 5u << 20;
	f.server.to_send = (3u << 20) + 12345;
	f.client.shut_when_done = f.server.shut_when_done = true;
	CHECK(fix_start(&f, splice, 256 << 10, 0));
	ok = run_until(&f, all_done, 20);
	CHECK(ok);
	if (!ok)
		printf("bulk %s: timed out\n", mode_name(t, splice));
	CHECK(f.done_calls == 1);
	CHECK(f.why == SK_RELAY_END_CLOSED);
	CHECK(f.server.received == f.client.to_send);
	CHECK(f.client.received == f.server.to_send);
	CHECK(f.server.bad == 0 && f.client.bad == 0);
	CHECK(f.final_bytes[SK_RELAY_DOWN_TO_UP] == f.client.to_send);
	CHECK(f.final_bytes[SK_RELAY_UP_TO_DOWN] == f.server.to_send);
	CHECK(f.cb_bytes[SK_RELAY_DOWN_TO_UP] == f.client.to_send);
	CHECK(f.cb_bytes[SK_RELAY_UP_TO_DOWN] == f.server.to_send);
	fix_close(&f);
}

/* Client sends its request and shuts down writing; the server sees EOF, then replies; the
 * client still gets the whole reply. And the other order: the server speaks and closes
 * first, the client then talks. */
static void test_half_close(enum transport t, bool splice, bool client_first)
{
	struct fix f;
	struct ep *first, *second;

	CHECK(fix_open(&f, t, 0));
	first = client_first ? &f.client : &f.server;
	second = client_first ? &f.server : &f.client;
	first->to_send = 100000;
	second->to_send = 300000;
	first->shut_when_done = second->shut_when_done = true;
	second->send_after_eof = true;
	CHECK(fix_start(&f, splice, 0, 0));
	CHECK(run_until(&f, all_done, 10));
	CHECK(f.done_calls == 1 && f.why == SK_RELAY_END_CLOSED);
	CHECK(second->received == first->to_send && first->received == second->to_send);
	CHECK(f.client.bad == 0 && f.server.bad == 0);
	CHECK(f.client.err == 0 && f.server.err == 0);
	fix_close(&f);
}

/* A one-byte limit still moves everything (pause at 1, resume at 0). */
static void test_tiny_limit(enum transport t, bool splice)
{
	struct fix f;

	CHECK(fix_open(&f, t, 0));
	f.client.to_send = 20000;
	f.server.to_send = 30000;
	f.client.shut_when_done = f.server.shut_when_done = true;
	CHECK(fix_start(&f, splice, 1, 0));
	CHECK(run_until(&f, all_done, 20));
	CHECK(f.why == SK_RELAY_END_CLOSED);
	CHECK(f.server.received == 20000 && f.client.received == 30000);
	CHECK(f.server.bad == 0 && f.client.bad == 0);
	fix_close(&f);
}

static bool client_stalled(struct fix *f)
{
	return f->client.sent > 0 && ev_now(f->loop) - f->client.last_send > 0.3;
}

/* A server that does not read: the relay stops reading the client once `limit` bytes are
 * in flight, so the client's writes stall (0.3 s without room) while the relay's source
 * socket holds data it leaves unread; the bytes read but not delivered stay <= limit
 * (counted exactly: client sent - still in the client's send queue - in the relay's
 * receive queue - delivered). Once the server reads, everything arrives intact. */
static void test_backpressure(enum transport t, bool splice)
{
	const uint32_t limit = 16 << 10;  /* below the default pipe and ring sizes */
	struct fix f;
	int inq = -1, outq = 0;
	uint64_t moved, inflight;

	CHECK(fix_open(&f, t, 32 << 10));
	f.client.to_send = 32u << 20;
	f.client.shut_when_done = f.server.shut_when_done = true;
	f.server.reading = false;
	CHECK(fix_start(&f, splice, limit, 0));
	CHECK(run_until(&f, client_stalled, 10));
	CHECK(f.client.sent < f.client.to_send);
	/* The client has been waiting for room to write, in vain, while the loop ran. */
	CHECK(ev_is_active(&f.client.ww));
	CHECK(ioctl(f.down_fd, FIONREAD, &inq) == 0);
	CHECK(inq > 0);                 /* data waiting that the relay does not read */
	if (t == TCP_LOOPBACK)          /* sent but not yet in the relay's receive queue */
		CHECK(ioctl(f.client.fd, SIOCOUTQ, &outq) == 0);
	moved = sk_relay_bytes(f.r, SK_RELAY_DOWN_TO_UP);
	inflight = f.client.sent - (uint64_t)inq - (uint64_t)outq - moved;
	CHECK(inflight <= limit);
	CHECK(f.server.received == 0);
	if (inflight > limit || inq <= 0)
		printf("backpressure %s: sent %llu inq %d outq %d moved %llu inflight %llu\n",
		       mode_name(t, splice), (unsigned long long)f.client.sent, inq, outq,
		       (unsigned long long)moved, (unsigned long long)inflight);

	f.server.reading = true;        /* drain: the relay resumes */
	ep_update(&f.server);
	CHECK(run_until(&f, all_done, 20));
	CHECK(f.why == SK_RELAY_END_CLOSED);
	CHECK(f.server.received == f.client.to_send && f.server.bad == 0);
	CHECK(f.client.received == 0);
	fix_close(&f);
}

/* Nothing moves: the idle timeout ends the relay after about 0.2 s. */
static void test_idle(enum transport t, bool splice)
{
	struct fix f;
	double took;

	CHECK(fix_open(&f, t, 0));
	CHECK(fix_start(&f, splice, 0, 0.2));
	CHECK(run_until(&f, relay_done, 5));
	took = f.done_at - f.started;
	CHECK(f.why == SK_RELAY_END_IDLE_TIMEOUT && f.err == 0);
	CHECK(took >= 0.19 && took < 1.5);
	fix_close(&f);
}

struct trickle {
	ev_timer t;
	struct fix *f;
	int left;
};

static void trickle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct trickle *tr = container_of(w, struct trickle, t);

	(void)revents;
	if (tr->left-- <= 0) {
		ev_timer_stop(loop, w);
		return;
	}
	CHECK(write(tr->f->client.fd, "x", 1) == 1);
}

/* A byte every 0.1 s for 0.6 s keeps a 0.2 s idle timer from firing; it fires after. */
static void test_idle_reset_by_traffic(enum transport t, bool splice)
{
	struct trickle tr = {.left = 6};
	struct fix f;
	double took;

	CHECK(fix_open(&f, t, 0));
	tr.f = &f;
	CHECK(fix_start(&f, splice, 0, 0.2));
	ev_timer_init(&tr.t, trickle_cb, 0.1, 0.1);
	ev_timer_start(f.loop, &tr.t);
	CHECK(run_until(&f, relay_done, 5));
	ev_timer_stop(f.loop, &tr.t);
	took = f.done_at - f.started;
	CHECK(f.why == SK_RELAY_END_IDLE_TIMEOUT);
	CHECK(f.server.received == 6);
	CHECK(took >= 0.75 && took < 2.5);
	fix_close(&f);
}

static bool server_has_1000(struct fix *f)
{
	return f->r && sk_relay_bytes(f->r, SK_RELAY_DOWN_TO_UP) == 1000;
}

/* One side closes abortively (SO_LINGER 0 on TCP; unread data on AF_UNIX): the relay ends
 * with that side's *_RESET and the errno. */
static void test_reset(enum transport t, bool splice, bool upstream)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct fix f;
	struct ep *victim;

	CHECK(fix_open(&f, t, 0));
	victim = upstream ? &f.server : &f.client;
	/* Leave unread data in the victim's receive queue: on AF_UNIX that is what makes
	 * its close a reset. */
	(upstream ? &f.client : &f.server)->to_send = 1000;
	victim->reading = false;
	CHECK(fix_start(&f, splice, 0, 0));
	if (upstream) {
		CHECK(run_until(&f, server_has_1000, 5));
	} else {
		CHECK(run_until(&f, relay_done, 0.3) == false);
		f.client.to_send = 0;
	}
	if (!upstream) {
		/* downstream victim: the server sent 1000 bytes the client has not read */
		CHECK(f.r && sk_relay_bytes(f.r, SK_RELAY_UP_TO_DOWN) == 1000);
	}
	ev_io_stop(f.loop, &victim->rw);
	ev_io_stop(f.loop, &victim->ww);
	setsockopt(victim->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(victim->fd);
	victim->fd = -1;
	CHECK(run_until(&f, relay_done, 5));
	CHECK(f.done_calls == 1);
	CHECK(f.why == (upstream ? SK_RELAY_END_UP_RESET : SK_RELAY_END_DOWN_RESET));
	CHECK(f.err == ECONNRESET || f.err == EPIPE);
	if (f.why != (upstream ? SK_RELAY_END_UP_RESET : SK_RELAY_END_DOWN_RESET))
		printf("reset %s %s: why %d err %d\n", mode_name(t, splice),
		       upstream ? "up" : "down", (int)f.why, f.err);
	fix_close(&f);
}

/* sk_relay_stop never calls back synchronously; the loop delivers STOPPED once. */
static void test_stop(enum transport t, bool splice)
{
	struct fix f;

	CHECK(fix_open(&f, t, 0));
	CHECK(fix_start(&f, splice, 0, 0));
	sk_relay_stop(f.r);
	sk_relay_stop(f.r);             /* twice: still one callback */
	CHECK(f.done_calls == 0);
	CHECK(run_until(&f, relay_done, 5));
	CHECK(f.done_calls == 1 && f.why == SK_RELAY_END_STOPPED);
	fix_close(&f);

	/* From the byte callback, in the middle of a transfer. */
	CHECK(fix_open(&f, t, 0));
	f.client.to_send = 8u << 20;
	f.stop_after = 1u << 20;
	CHECK(fix_start(&f, splice, 0, 0));
	CHECK(run_until(&f, relay_done, 10));
	CHECK(f.done_calls == 1 && f.why == SK_RELAY_END_STOPPED);
	CHECK(f.cb_bytes[0] == f.final_bytes[0] && f.final_bytes[0] > (1u << 20));
	CHECK(f.final_bytes[0] < f.client.to_send);
	CHECK(run_until(&f, relay_done, 0.1));  /* nothing more after the end */
	CHECK(f.done_calls == 1 && f.cb_bytes[0] == f.final_bytes[0]);
	fix_close(&f);
}

/* Both peers already shut down: the relay ends CLOSED, from the loop, not from start. */
static void test_both_eof_at_start(enum transport t, bool splice)
{
	struct fix f;

	CHECK(fix_open(&f, t, 0));
	shutdown(f.client.fd, SHUT_WR);
	shutdown(f.server.fd, SHUT_WR);
	CHECK(fix_start(&f, splice, 0, 0));
	CHECK(f.done_calls == 0);
	CHECK(run_until(&f, all_done, 5));
	CHECK(f.done_calls == 1 && f.why == SK_RELAY_END_CLOSED);
	CHECK(f.final_bytes[0] == 0 && f.final_bytes[1] == 0);
	fix_close(&f);
}

/* ---- TLS sides -------------------------------------------------------------------------- */

static char pki[256], tls_err[1024];
static struct sk_tls_ctx *tls_client_ctx, *tls_server_ctx;

static struct sk_tls_ctx *tls_ctx(bool upstream, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A context from the JSON of a TransportSocket's typed_config fields ('...' quotes). */
static struct sk_tls_ctx *tls_ctx(bool upstream, const char *fmt, ...)
{
	char body[4096], text[8192];
	struct sk_tls_context_config *cfg = NULL;
	struct sk_tls_ctx *ctx = NULL;
	ProtobufCMessage *m;
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(text, sizeof(text),
		 "{'name':'envoy.transport_sockets.tls','typed_config':{'@type':'type.googleapis.com/"
		 "envoy.extensions.transport_sockets.tls.v3.%s',%s}}",
		 upstream ? "UpstreamTlsContext" : "DownstreamTlsContext", body);
	for (char *p = text; *p; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(text, 0, NULL);
	m = j ? sk_pbjson_decode(&envoy__config__core__v3__transport_socket__descriptor, j, NULL, tls_err,
				 sizeof(tls_err)) : NULL;
	json_decref(j);
	if (m != NULL && sk_tls_transport_socket_translate((void *)m, upstream, &cfg, tls_err, sizeof(tls_err)) == 0)
		ctx = sk_tls_ctx_new(cfg, NULL, NULL, tls_err, sizeof(tls_err));
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
	sk_tls_context_config_free(cfg);
	if (ctx == NULL)
		fprintf(stderr, "tls context: %s\n", tls_err);
	return ctx;
}

/* A test CA and two SPIFFE workloads (tests/tls/ca.sh), and Istio-like contexts over them. */
static bool tls_setup(void)
{
	const char *src = getenv("SKIFF_SRC") ? getenv("SKIFF_SRC") : SKIFF_SOURCE_DIR;
	char cmd[2048];

	snprintf(pki, sizeof(pki), "/tmp/skiff-relay-tls.XXXXXX");
	if (mkdtemp(pki) == NULL)
		return false;
	snprintf(cmd, sizeof(cmd),
		 "set -e; ca='%s/tests/tls/ca.sh'; d='%s'; bash \"$ca\" $d ca; "
		 "bash \"$ca\" $d workload server default server; bash \"$ca\" $d workload client default client",
		 src, pki);
	if (system(cmd) != 0)
		return false;
	tls_client_ctx = tls_ctx(true,
				 "'common_tls_context':{'tls_certificates':[{'certificate_chain':{'filename':"
				 "'%s/client-chain.crt'},'private_key':{'filename':'%s/client.key'}}],"
				 "'validation_context':{'trusted_ca':{'filename':'%s/root.crt'},"
				 "'match_subject_alt_names':[{'exact':'spiffe://cluster.local/ns/default/sa/server'}]}}",
				 pki, pki, pki);
	tls_server_ctx = tls_ctx(false,
				 "'require_client_certificate':true,'common_tls_context':{'tls_certificates':[{"
				 "'certificate_chain':{'filename':'%s/server-chain.crt'},'private_key':{'filename':"
				 "'%s/server.key'}}],'validation_context':{'trusted_ca':{'filename':'%s/root.crt'}}}",
				 pki, pki, pki);
	return tls_client_ctx != NULL && tls_server_ctx != NULL;
}

static void tls_teardown(void)
{
	char cmd[512];

	sk_tls_ctx_unref(tls_client_ctx);
	sk_tls_ctx_unref(tls_server_ctx);
	if (pki[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", pki);
	}
}

/* client -> [relay A: raw | TLS client] -> [relay B: TLS server | raw] -> server: the
 * endpoints' pattern checks see every byte that crossed both TLS sides. */
struct tls_fix {
	struct fix f;                   /* the endpoints and relay A (f.r) */
	struct sk_relay *b;
	int b_done;
	enum sk_relay_end b_why;
};

static void on_done_b(void *ctx, enum sk_relay_end why, int err)
{
	struct tls_fix *t = ctx;

	(void)err;
	t->b_done++;
	t->b_why = why;
	sk_relay_free(t->b);
	t->b = NULL;
}

static bool tls_fix_start(struct tls_fix *t, enum transport tr, uint32_t limit, const void *first, size_t n_first)
{
	enum sk_tls_status a = SK_TLS_WANT_WRITE, b = SK_TLS_WANT_READ;
	struct sk_tls_conn *cc, *sc;
	int mid[2], i;

	memset(t, 0, sizeof(*t));
	if (!fix_open(&t->f, tr, 0) || make_pair(tr, 0, mid) < 0)
		return false;
	cc = sk_tls_conn_new(tls_client_ctx, mid[0], false, NULL);
	sc = sk_tls_conn_new(tls_server_ctx, mid[1], true, NULL);
	for (i = 0; i < 2000 && cc && sc && (a != SK_TLS_DONE || b != SK_TLS_DONE); i++) {
		if (a != SK_TLS_DONE)
			a = sk_tls_handshake(cc);
		if (b != SK_TLS_DONE)
			b = sk_tls_handshake(sc);
		if (a == SK_TLS_FAILED || b == SK_TLS_FAILED)
			break;
		if (a != SK_TLS_DONE || b != SK_TLS_DONE)
			usleep(500);
	}
	if (a != SK_TLS_DONE || b != SK_TLS_DONE) {
		fprintf(stderr, "handshake: %s / %s\n", cc ? sk_tls_failure_reason(cc) : "-",
			sc ? sk_tls_failure_reason(sc) : "-");
		sk_tls_conn_free(cc);
		sk_tls_conn_free(sc);
		close(mid[0]);
		close(mid[1]);
		return false;
	}
	struct sk_relay_opts oa = {.buffer_limit = limit, .up_tls = cc, .first = first, .n_first = n_first};
	struct sk_relay_opts ob = {.buffer_limit = limit, .down_tls = sc};

	ev_now_update(t->f.loop);
	t->f.r = sk_relay_start(t->f.loop, t->f.down_fd, mid[0], &oa, on_bytes, on_done, &t->f);
	t->b = sk_relay_start(t->f.loop, mid[1], t->f.up_fd, &ob, NULL, on_done_b, t);
	ep_update(&t->f.client);
	ep_update(&t->f.server);
	return t->f.r != NULL && t->b != NULL;
}

static void tls_fix_close(struct tls_fix *t)
{
	sk_relay_free(t->b);
	t->b = NULL;
	fix_close(&t->f);
}

static struct tls_fix *tls_cur;

static bool tls_all_done(struct fix *f)
{
	return all_done(f) && tls_cur->b_done > 0;
}

/* Bulk both ways with half-close (close_notify, then FIN) through both TLS sides; with a
 * tiny limit, TLS records (16 KiB) are bigger than the ring: decrypted bytes wait inside
 * OpenSSL with no socket readiness to announce them. `first`: the bytes an inspector read
 * go ahead of the client's (a ring bigger than the limit holds them). */
static void test_tls(enum transport tr, uint32_t limit, size_t n_first)
{
	static uint8_t first[100000];
	struct tls_fix t;
	bool ok;

	for (size_t i = 0; i < n_first; i++)
		first[i] = pattern(1, i);
	tls_cur = &t;
	CHECK(tls_fix_start(&t, tr, limit, first, n_first));
	t.f.client.sent = n_first;       /* the client's stream goes on after what was inspected */
	t.f.client.to_send = n_first + (2u << 20) + 777;
	t.f.server.to_send = (3u << 20) + 12345;
	t.f.client.shut_when_done = t.f.server.shut_when_done = true;
	ep_update(&t.f.client);
	ep_update(&t.f.server);
	ok = run_until(&t.f, tls_all_done, 20);
	CHECK(ok);
	if (!ok)
		printf("tls %s limit %u first %zu: timed out (server got %llu, client got %llu)\n",
		       mode_name(tr, false), limit, n_first, (unsigned long long)t.f.server.received,
		       (unsigned long long)t.f.client.received);
	CHECK(t.f.done_calls == 1 && t.b_done == 1);
	CHECK(t.f.why == SK_RELAY_END_CLOSED && t.b_why == SK_RELAY_END_CLOSED);
	CHECK(t.f.server.received == t.f.client.to_send);
	CHECK(t.f.client.received == t.f.server.to_send);
	CHECK(t.f.server.bad == 0 && t.f.client.bad == 0);
	CHECK(t.f.final_bytes[SK_RELAY_DOWN_TO_UP] == t.f.client.to_send);
	CHECK(t.f.final_bytes[SK_RELAY_UP_TO_DOWN] == t.f.server.to_send);
	tls_fix_close(&t);
}

static bool tls_both_received(struct fix *f)
{
	return f->server.received == f->client.to_send && f->client.received == f->server.to_send;
}

/* A ring far smaller than a TLS record, and no EOF behind the data to wake anyone: each
 * record is handed out in 256-byte pieces while the rest waits decrypted inside OpenSSL,
 * and every byte still arrives. */
static void test_tls_pending(enum transport tr)
{
	struct tls_fix t;
	bool ok;

	tls_cur = &t;
	CHECK(tls_fix_start(&t, tr, 256, NULL, 0));
	t.f.client.to_send = 50000;
	t.f.server.to_send = 30000;
	ep_update(&t.f.client);
	ep_update(&t.f.server);
	ok = run_until(&t.f, tls_both_received, 10);
	CHECK(ok);
	if (!ok)
		printf("tls pending %s: server got %llu, client got %llu\n", mode_name(tr, false),
		       (unsigned long long)t.f.server.received, (unsigned long long)t.f.client.received);
	CHECK(t.f.server.bad == 0 && t.f.client.bad == 0);
	tls_fix_close(&t);
}

/* The server answers only after the client's EOF crossed TLS (close_notify passed on as a
 * FIN), and the client still gets the whole answer. */
static void test_tls_half_close(enum transport tr)
{
	struct tls_fix t;
	bool ok;

	tls_cur = &t;
	CHECK(tls_fix_start(&t, tr, 0, NULL, 0));
	t.f.client.to_send = 1000;
	t.f.client.shut_when_done = true;
	t.f.server.to_send = 70000;
	t.f.server.send_after_eof = true;
	t.f.server.shut_when_done = true;
	ep_update(&t.f.client);
	ep_update(&t.f.server);
	ok = run_until(&t.f, tls_all_done, 10);
	CHECK(ok);
	CHECK(t.f.server.received == 1000 && t.f.client.received == 70000);
	CHECK(t.f.server.bad == 0 && t.f.client.bad == 0);
	CHECK(t.f.why == SK_RELAY_END_CLOSED && t.b_why == SK_RELAY_END_CLOSED);
	tls_fix_close(&t);
}

int main(void)
{
	static const enum transport ts[] = {UNIX_PAIR, TCP_LOOPBACK};
	size_t i;
	int s;

	signal(SIGPIPE, SIG_IGN);       /* splice(2) into a reset socket raises it */
	sk_relay_free(NULL);
	for (i = 0; i < 2; i++) {
		for (s = 0; s < 2; s++) {
			int before = sk_test_failed;

			test_bulk(ts[i], s);
			test_half_close(ts[i], s, true);
			test_half_close(ts[i], s, false);
			test_tiny_limit(ts[i], s);
			test_backpressure(ts[i], s);
			test_idle(ts[i], s);
			test_idle_reset_by_traffic(ts[i], s);
			test_reset(ts[i], s, true);
			test_reset(ts[i], s, false);
			test_stop(ts[i], s);
			test_both_eof_at_start(ts[i], s);
			printf("%s: %s\n", mode_name(ts[i], s),
			       sk_test_failed == before ? "ok" : "FAILED");
		}
	}
	if (tls_setup()) {
		for (i = 0; i < 2; i++) {
			int before = sk_test_failed;

			test_tls(ts[i], 256 << 10, 0);
			test_tls(ts[i], 4096, 0);
			test_tls(ts[i], 256 << 10, 100000);
			test_tls_half_close(ts[i]);
			test_tls_pending(ts[i]);
			printf("%s+tls: %s\n", mode_name(ts[i], false), sk_test_failed == before ? "ok" : "FAILED");
		}
	} else {
		CHECK(!"tls fixtures (tests/tls/ca.sh, contexts)");
	}
	tls_teardown();
	return TEST_SUMMARY();
}
