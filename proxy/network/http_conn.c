/* http_conn: the HTTP/1.1 connection manager and router. See http_conn.h.
 *
 * One request at a time per downstream connection: pipelined requests wait, unparsed, in
 * the read buffer until the response before them is complete, so responses leave in order.
 * A stream (the request being served) is embedded in the connection and reset between
 * requests; its buffers are kept and reused, so a keep-alive connection allocates nothing
 * per request once warm.
 *
 * Flow control: the downstream read buffer, the upstream write buffer and the downstream
 * write buffer are each bounded by the listener's per_connection_buffer_limit_bytes; when
 * one is full the side that fills it stops reading until it drains.
 *
 * Upstream connections come from a per-worker pool keyed by (cluster, host address): an
 * idle connection is reused for the next request to the same host, watched for the peer
 * closing it, and closed after SK_HTTP_POOL_IDLE_TIMEOUT. A connection goes back to the pool
 * only after a complete exchange (request written whole, response read whole, no stray
 * bytes, both sides willing to keep it alive).
 *
 * Retries follow the route's retry_policy as Envoy's router does for HTTP/1.1 (maybe_retry),
 * merged with the request's x-envoy-retry-on / -retry-grpc-on / -max-retries /
 * -retriable-status-codes / -retriable-header-names / -upstream-rq-timeout-ms /
 * -upstream-rq-per-try-timeout-ms headers when the request is internal (retry_begin,
 * proxy/http/retry.c; those headers never go upstream): connect failures, resets (the
 * upstream closed before answering; reset-before-request only when no request byte of the try
 * went out), per-try timeouts and retriable responses (5xx, gateway-error, retriable-4xx,
 * retriable-status-codes, retriable-headers, gRPC statuses) are retried
 * up to num_retries after a jittered exponential back-off, with the previous_hosts predicate
 * re-picking up to host_selection_retry_max_attempts times, within the cluster's max_retries
 * circuit breaker. Only before any response byte went downstream, with the request whole and
 * its body (if any) kept in body_buf, which holds at most the listener's buffer limit: a
 * longer body is not retried. A retried response is read no further (its connection closes).
 * Independently, a bodiless request whose pooled connection turned out to be closed by the
 * upstream is sent again once on a new connection (not a policy retry).
 * hash_policy (header, cookie, query_parameter, source_ip; terminal) feeds RING_HASH/MAGLEV.
 * envoy.filters.http.fault: delay then abort, per route or at filter level (fault_begin).
 * envoy.filters.http.cors: preflights answered, Access-Control-* on responses (cors_begin,
 * cors_response_headers; the decision is proxy/http/cors.c).
 *
 * Upgrades (upgrade_configs, websocket): the request goes upstream with its Upgrade; a 101
 * turns both sides into a raw tunnel (tunnel_begin); anything else is answered and closes.
 * HTTP/2 downstream: each stream is an sk_http_conn driven by http2.c (h2 set); the code
 * below is shared, the emit_* functions choose the framing.
 *
 * Circuit breakers: max_connections (a request that finds them all busy waits, in order,
 * for one of this worker's: Envoy's pending requests), max_pending_requests and max_requests
 * (503 UO, upstream_rq_pending_overflow), max_retries. Mirroring: request_mirror_policies
 * send a copy through shadow.c once the request is whole.
 *
 * Not yet: CORS policies at weighted-cluster level. */
#include "proxy/network/http_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proxy/http/h1_parser.h"
#include "proxy/http/route_table.h"
#include "proxy/listener/listener.h"
#include "proxy/log/log.h"
#include "proxy/network/access_log.h"
#include "proxy/network/http_internal.h"
#include "proxy/network/shadow.h"
#include "proxy/network/tls.h"
#include "proxy/network/tls_stats.h"
#include "proxy/server/snapshot.h"
#include "proxy/server/workers.h"
#include "xds/translate/hcm.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* Envoy's cluster default for common_http_protocol_options.idle_timeout. */
#define SK_HTTP_POOL_IDLE_TIMEOUT 3600.0
#define READ_CHUNK 16384
#define MAX_IDLE_PER_WORKER 4096

/* ---------------------------------------------------------------------------------- */
/* small helpers                                                                       */

static _Thread_local uint64_t rng_state;

/* splitmix64: per worker thread, seeded from the clock and the thread's stack address. */
static uint64_t rnd(void)
{
	uint64_t z;

	if (rng_state == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		rng_state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
	}
	z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void uuid4(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t a = rnd(), b = rnd();
	uint8_t x[16];
	int i, j = 0;

	memcpy(x, &a, 8);
	memcpy(x + 8, &b, 8);
	x[6] = (uint8_t)((x[6] & 0x0f) | 0x40);
	x[8] = (uint8_t)((x[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[x[i] >> 4];
		out[j++] = hex[x[i] & 15];
	}
	out[j] = '\0';
}

static bool ieq(const char *a, size_t an, const char *b)
{
	size_t bn = strlen(b);

	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++) {
		char x = a[i], y = b[i];

		if (x >= 'A' && x <= 'Z')
			x = (char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (char)(y + 32);
		if (x != y)
			return false;
	}
	return true;
}

static const char *reason_phrase(unsigned code)
{
	switch (code) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* Hop-by-hop fields and the framing skiff redoes: never copied through. */
static bool hop_by_hop(const char *n, size_t len)
{
	return sk_http_connection_specific(n, len) || ieq(n, len, "content-length");
}

/* ---------------------------------------------------------------------------------- */
/* stats                                                                               */

void sk_http_stats_register(struct sk_http_stats *t, struct sk_stats_store *st, const char *prefix)
{
#define C(field) t->field = sk_stats_counterf(st, "http.%s." #field, prefix)
#define G(field) t->field = sk_stats_gaugef(st, SK_GAUGE_SUM, "http.%s." #field, prefix)
	C(downstream_cx_total);
	G(downstream_cx_active);
	C(downstream_cx_http1_total);
	G(downstream_cx_http1_active);
	C(downstream_cx_destroy);
	C(downstream_cx_protocol_error);
	C(downstream_cx_idle_timeout);
	C(downstream_rq_total);
	C(downstream_rq_http1_total);
	G(downstream_rq_active);
	C(downstream_rq_completed);
	C(downstream_rq_timeout);
	C(downstream_rq_idle_timeout);
	C(downstream_rq_rx_reset);
	C(downstream_rq_tx_reset);
	C(downstream_rq_too_large);
	C(downstream_cx_rx_bytes_total);
	C(downstream_cx_tx_bytes_total);
	C(no_route);
	C(no_cluster);
	C(rq_redirect);
	C(rq_direct_response);
	C(rq_total);
	C(downstream_cx_upgrades_total);
	G(downstream_cx_upgrades_active);
	C(downstream_rq_ws_on_non_ws_route);
	C(downstream_cx_http2_total);
	G(downstream_cx_http2_active);
	C(downstream_rq_http2_total);
	C(downstream_rq_too_many_premature_resets);
	/* skiff's own: HTTP filters accepted without effect on this chain */
	G(filters_accepted_without_effect);
#undef C
#undef G
#define H2(field, name) t->field = sk_stats_counter(st, "http2." name)
	H2(h2_rx_reset, "rx_reset");
	H2(h2_tx_reset, "tx_reset");
	H2(h2_header_overflow, "header_overflow");
	H2(h2_headers_cb_no_stream, "headers_cb_no_stream");
	H2(h2_inbound_empty_frames_flood, "inbound_empty_frames_flood");
	H2(h2_inbound_priority_frames_flood, "inbound_priority_frames_flood");
	H2(h2_inbound_window_update_frames_flood, "inbound_window_update_frames_flood");
	H2(h2_outbound_flood, "outbound_flood");
	H2(h2_outbound_control_flood, "outbound_control_flood");
	H2(h2_rx_messaging_error, "rx_messaging_error");
	H2(h2_trailers, "trailers");
	H2(h2_goaway_sent, "goaway_sent");
#undef H2
	t->h2_streams_active = sk_stats_gauge(st, "http2.streams_active", SK_GAUGE_SUM);
	t->fault_aborts_injected = sk_stats_counterf(st, "http.%s.fault.aborts_injected", prefix);
	t->fault_delays_injected = sk_stats_counterf(st, "http.%s.fault.delays_injected", prefix);
	t->cors_origin_valid = sk_stats_counterf(st, "http.%s.cors.origin_valid", prefix);
	t->cors_origin_invalid = sk_stats_counterf(st, "http.%s.cors.origin_invalid", prefix);
	for (int k = 1; k <= 5; k++)
		t->downstream_rq_class[k] = sk_stats_counterf(st, "http.%s.downstream_rq_%dxx", prefix, k);
	{
		char name[512];

		snprintf(name, sizeof(name), "http.%s.downstream_rq_time", prefix);
		t->downstream_rq_time = sk_stats_histogram(st, name);
	}
}

static void stream_end(struct sk_http_conn *hc);
static void h2_pump(struct sk_http_conn *hc);
static void process(struct sk_http_conn *hc);
static void update_io(struct sk_http_conn *hc);
static void up_process(struct sk_http_conn *hc);
static void up_eof(struct sk_http_conn *hc, int err);
static void forward(struct sk_http_conn *hc);
static void process(struct sk_http_conn *hc);
static void finish_callback(struct sk_http_conn *hc);
static void q_kick_soon(struct sk_worker *w);
static void up_write(struct upconn *u);
static void up_read(struct upconn *u);

/* ---------------------------------------------------------------------------------- */
/* the per-worker pool                                                                 */

static void on_up_read(struct ev_loop *loop, ev_io *io, int revents);
static void on_up_connect_timeout(struct ev_loop *loop, ev_timer *t, int revents);

static _Thread_local struct upconn *idle_list;
static _Thread_local size_t n_idle;

static void idle_unlink(struct upconn *u)
{
	if (u->prev)
		u->prev->next = u->next;
	else if (idle_list == u)
		idle_list = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->prev = u->next = NULL;
	n_idle--;
}

void sk_http_up_count_open(struct sk_worker *w, struct sk_cluster *cl, struct sk_host *host, bool http2)
{
	atomic_fetch_add(&cl->active_cx, 1);
	cl->slots[w->index].n_cx++;
	sk_stat_inc(w->shard, cl->st.upstream_cx_total);
	sk_stat_inc(w->shard, http2 ? cl->st.upstream_cx_http2_total : cl->st.upstream_cx_http1_total);
	sk_stat_add(w->shard, cl->st.upstream_cx_active, 1);
	if (host) {
		atomic_fetch_add(&host->cx_total, 1);
		atomic_fetch_add(&host->cx_active, 1);
	}
}

/* local: we closed it (not the peer). connected_at: 0 when it never connected. */
void sk_http_up_count_close(struct sk_worker *w, struct sk_cluster *cl, struct sk_host *host,
			    double connected_at, bool local)
{
	const struct sk_cluster_stats *st = &cl->st;

	if (connected_at > 0) {
		double ms = (ev_now(w->loop) - connected_at) * 1000.0;

		sk_stat_record(w->shard, st->upstream_cx_length_ms, ms > 0 ? (uint64_t)ms : 0);
	}
	atomic_fetch_sub(&cl->active_cx, 1);
	cl->slots[w->index].n_cx--;
	sk_stat_sub(w->shard, st->upstream_cx_active, 1);
	sk_stat_inc(w->shard, st->upstream_cx_destroy);
	sk_stat_inc(w->shard, local ? st->upstream_cx_destroy_local : st->upstream_cx_destroy_remote);
	if (host)
		atomic_fetch_sub(&host->cx_active, 1);
}

int sk_http_up_socket(const struct sk_cluster_config *cc, const struct sk_addr *addr)
{
	int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	if (addr->ss.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (cc->has_bind && cc->bind.ss.ss_family == addr->ss.ss_family) {
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&cc->bind.ss, cc->bind.len) < 0) {
			int err = errno;

			close(fd);
			return -err;
		}
	}
	return fd;
}

/* Closes u and undoes its counts. local: we closed it (not the peer). */
static void up_destroy(struct upconn *u, bool local)
{
	struct sk_worker *w = u->w;

	ev_io_stop(w->loop, &u->rio);
	ev_io_stop(w->loop, &u->wio);
	ev_timer_stop(w->loop, &u->timer);
	if (u->h2)
		sk_h2_up_detach(u);
	sk_h1_parser_free(u->wp);
	buf_free(&u->body);
	buf_free(&u->rhead);
	buf_free(&u->rtrailers);
	free(u->peer_san);
	if (u->tls != NULL) {
		/* close_notify on our own close of an established connection (best effort: a
		 * full socket is not waited for) */
		if (local && u->connected)
			(void)sk_tls_shutdown(u->tls);
		sk_tls_conn_free(u->tls);
	}
	sk_tls_ctx_unref(u->tls_ctx);
	if (u->fd >= 0)
		close(u->fd);
	if (u->counted) {
		sk_http_up_count_close(w, u->cluster, u->host, u->connected_at, local);
		q_kick_soon(w);
	}
	sk_host_set_unref(u->hs);
	sk_cluster_unref(u->cluster);
	sk_h1_parser_free(u->rp);
	buf_free(&u->in);
	buf_free(&u->out);
	free(u);
}

static void on_idle_event(struct ev_loop *loop, ev_io *io, int revents)
{
	struct upconn *u = io->data;
	char b[1];
	ssize_t n;

	(void)loop;
	(void)revents;
	if (u->tls != NULL) {
		/* TLS records that carry no data (a TLS 1.3 session ticket, a key update) keep it;
		 * data, close_notify or an error end it (its bytes are lost anyway: it closes) */
		n = sk_tls_read(u->tls, b, sizeof(b));
		if (n == -EAGAIN && sk_tls_want(u->tls) == SK_TLS_WANT_READ)
			return;
		idle_unlink(u);
		up_destroy(u, n > 0 || n == -EAGAIN);
		return;
	}
	n = recv(u->fd, b, sizeof(b), MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* the upstream closed it, or sent bytes nobody asked for: either way it is done */
	idle_unlink(u);
	up_destroy(u, n > 0);
}

static void on_idle_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct upconn *u = t->data;

	(void)loop;
	(void)revents;
	sk_stat_inc(u->w->shard, u->cluster->st.upstream_cx_idle_timeout);
	idle_unlink(u);
	up_destroy(u, true);
}

/* Puts u back in the pool after a complete exchange. */
static void pool_put(struct upconn *u)
{
	struct sk_worker *w = u->w;

	u->hc = NULL;
	u->tls_rd_wants_write = u->tls_wr_wants_read = false;
	ev_io_stop(w->loop, &u->wio);
	ev_timer_stop(w->loop, &u->timer);
	if (n_idle >= MAX_IDLE_PER_WORKER) {
		up_destroy(u, true);
		return;
	}
	/* an idle connection keeps no buffer */
	buf_free(&u->in);
	buf_free(&u->out);
	/* the read watcher stays armed (only its callback changes): stopping and starting it
	 * again would cost epoll_ctl calls on every request */
	ev_set_cb(&u->rio, on_idle_event);
	if (!ev_is_active(&u->rio))
		ev_io_start(w->loop, &u->rio);
	ev_timer_init(&u->timer, on_idle_timeout, SK_HTTP_POOL_IDLE_TIMEOUT, 0.);
	u->timer.data = u;
	ev_timer_start(w->loop, &u->timer);
	u->next = idle_list;
	if (idle_list)
		idle_list->prev = u;
	idle_list = u;
	n_idle++;
	q_kick_soon(w);
}

/* tls_ctx: the context a new connection would use (NULL: raw); a pooled connection made
 * with another (the host's TLS mode or its certificates changed) is not taken. */
static struct upconn *pool_get(struct sk_cluster *cl, const struct sk_addr *addr, const struct sk_tls_ctx *tls_ctx,
			       const char *alpn)
{
	for (struct upconn *u = idle_list; u != NULL; u = u->next) {
		if (u->cluster == cl && sk_http_same_addr(&u->addr, addr) && u->tls_ctx == tls_ctx &&
		    strcmp(u->alpn, alpn ? alpn : "") == 0) {
			idle_unlink(u);
			ev_timer_stop(u->w->loop, &u->timer);
			ev_set_cb(&u->rio, on_up_read); /* still armed: see pool_put */
			ev_init(&u->timer, on_up_connect_timeout);
			u->timer.data = u;
			u->reused = true;
			return u;
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------------------------- */
/* requests waiting for a connection (Envoy's pending requests)                        */

/* When a cluster's max_connections are all open, a request waits here, in order, until a
 * connection of this worker frees up (pooled again or closed), within the cluster's
 * max_pending_requests. Its body stays unread meanwhile. */
static _Thread_local struct sk_http_conn *q_head, *q_tail;
static _Thread_local size_t q_len;
static _Thread_local ev_timer q_kick;
static _Thread_local bool q_kick_ready;

static void q_unlink(struct sk_http_conn *hc)
{
	if (!hc->queued)
		return;
	if (hc->q_prev)
		hc->q_prev->q_next = hc->q_next;
	else
		q_head = hc->q_next;
	if (hc->q_next)
		hc->q_next->q_prev = hc->q_prev;
	else
		q_tail = hc->q_prev;
	hc->q_prev = hc->q_next = NULL;
	hc->queued = false;
	q_len--;
	atomic_fetch_sub(&hc->cluster->pending_rq, 1);
	sk_stat_sub(hc->w->shard, hc->cluster->st.upstream_rq_pending_active, 1);
}

static void q_push(struct sk_http_conn *hc)
{
	hc->queued = true;
	hc->q_next = NULL;
	hc->q_prev = q_tail;
	if (q_tail)
		q_tail->q_next = hc;
	else
		q_head = hc;
	q_tail = hc;
	q_len++;
	atomic_fetch_add(&hc->cluster->pending_rq, 1);
	if (!hc->dequeued)
		sk_stat_inc(hc->w->shard, hc->cluster->st.upstream_rq_pending_total);
	sk_stat_add(hc->w->shard, hc->cluster->st.upstream_rq_pending_active, 1);
}

/* Whether a request of cl may find a connection on this worker now. */
static bool q_may_go(const struct sk_cluster *cl, uint32_t worker)
{
	if (atomic_load(&cl->active_cx) < cl->config->cb[0].max_connections || cl->slots[worker].n_cx == 0)
		return true;
	for (const struct upconn *u = idle_list; u != NULL; u = u->next)
		if (u->cluster == cl)
			return true;
	return false;
}

/* The waiting requests whose cluster has a connection free try again, in order; one that
 * still finds none (another host's connection was free) goes back to the end of the line. */
static void on_q_kick(struct ev_loop *loop, ev_timer *t, int revents)
{
	static _Thread_local uint32_t gen;
	size_t n = q_len;

	(void)loop;
	(void)t;
	(void)revents;
	gen++;
	while (n-- > 0) {
		struct sk_http_conn *hc = q_head;

		/* from the head each time: dispatching one may end others (an HTTP/2 connection) */
		while (hc != NULL && (hc->q_gen == gen || !q_may_go(hc->cluster, hc->w->index)))
			hc = hc->q_next;
		if (hc == NULL)
			break;
		hc->q_gen = gen;
		q_unlink(hc);
		hc->in_callback = true;
		hc->dequeued = true;
		forward(hc);
		hc->dequeued = false;
		if (!hc->must_close && hc->active && !hc->req_done && !hc->queued)
			process(hc); /* the body held while it waited */
		finish_callback(hc);
	}
}

/* A connection of this worker became free: the waiting requests try again, from the loop
 * (not from inside the stream that freed it). */
static void q_kick_soon(struct sk_worker *w)
{
	if (q_head == NULL)
		return;
	if (!q_kick_ready) {
		ev_timer_init(&q_kick, on_q_kick, 0., 0.);
		q_kick_ready = true;
	}
	if (!ev_is_active(&q_kick))
		ev_timer_start(w->loop, &q_kick);
}

void sk_http_pool_retire(struct sk_worker *w, const struct sk_snapshot *snap)
{
	struct upconn *u = idle_list, *next;

	sk_h2_up_retire(w, snap);
	for (; u != NULL; u = next) {
		next = u->next;
		if (u->w != w || sk_snapshot_cluster(snap, u->cluster->config->name) == u->cluster)
			continue;
		idle_unlink(u);
		up_destroy(u, true);
	}
}

void sk_http_pool_close_all(struct sk_worker *w)
{
	struct upconn *u = idle_list, *next;

	sk_shadow_close_all(w);
	sk_h2_up_close_all(w);
	for (; u != NULL; u = next) {
		next = u->next;
		if (u->w != w)
			continue;
		idle_unlink(u);
		up_destroy(u, true);
	}
}

/* ---------------------------------------------------------------------------------- */
/* downstream I/O                                                                      */

static void on_down_write(struct ev_loop *loop, ev_io *io, int revents);
static void on_down_read(struct ev_loop *loop, ev_io *io, int revents);

/* Writes what dout holds (through c->tls when the listener terminated TLS); sets
 * must_close on an error or when a closing response is out. */
static void d_flush(struct sk_http_conn *hc)
{
	while (pending(&hc->dout) > 0) {
		ssize_t n = sk_tls_io_write(hc->c->tls, hc->c->fd, hc->dout.p + hc->dout.off, pending(&hc->dout),
					    &hc->tls_wr_wants_read);

		if (n < 0) {
			if (n == -EAGAIN)
				break;
			hc->must_close = true;
			return;
		}
		sk_stat_add(hc->w->shard, hc->st->downstream_cx_tx_bytes_total, (uint64_t)n);
		consume(&hc->dout, (size_t)n);
	}
	if (pending(&hc->dout) == 0 && hc->close_after && !hc->active)
		hc->must_close = true;
}

/* The response goes downstream through these: HTTP/1.1 text into dout, or HTTP/2 frames
 * through the stream's nghttp2 session (resp_head is always built as HTTP/1.1 text: the
 * access log and the header rules read it; http2.c turns it into a HEADERS frame). */
static void emit_head(struct sk_http_conn *hc, bool body)
{
	if (hc->h2)
		sk_h2_submit_head(hc, body);
	else
		append(&hc->dout, hc->resp_head.p, hc->resp_head.len);
}

static void emit_body(struct sk_http_conn *hc, const char *p, size_t n)
{
	hc->tx_body += n;
	if (hc->h2) {
		append(&hc->dout, p, n);
		sk_h2_data_ready(hc);
	} else if (hc->down_framing == DOWN_CHUNKED) {
		appendf(&hc->dout, "%zx\r\n", n);
		append(&hc->dout, p, n);
		appends(&hc->dout, "\r\n");
	} else {
		append(&hc->dout, p, n);
	}
}

static void emit_trailers(struct sk_http_conn *hc, const struct sk_h1_field *t, size_t n)
{
	if (hc->h2) {
		for (size_t i = 0; i < n; i++) {
			append(&hc->h2_trailers, t[i].name.p, t[i].name.len);
			append(&hc->h2_trailers, "", 1);
			append(&hc->h2_trailers, t[i].value.p, t[i].value.len);
			append(&hc->h2_trailers, "", 1);
		}
		return;
	}
	if (hc->down_framing != DOWN_CHUNKED)
		return; /* HTTP/1.0 or a close-delimited body: trailers cannot be carried */
	appends(&hc->dout, "0\r\n");
	for (size_t i = 0; i < n; i++) {
		append(&hc->dout, t[i].name.p, t[i].name.len);
		appends(&hc->dout, ": ");
		append(&hc->dout, t[i].value.p, t[i].value.len);
		appends(&hc->dout, "\r\n");
	}
	appends(&hc->dout, "\r\n");
	hc->resp_done = true; /* the terminator is written */
}

/* The response is whole (call before resp_done is set). */
static void emit_end(struct sk_http_conn *hc)
{
	if (hc->h2) {
		hc->h2_resp_eof = true;
		sk_h2_data_ready(hc);
	} else if (hc->down_framing == DOWN_CHUNKED && !hc->resp_done) {
		appends(&hc->dout, "0\r\n\r\n");
	}
}

static void cors_emit(void *ctx, const char *name, const char *value, size_t len)
{
	struct buf *b = ctx;

	appends(b, name);
	appends(b, ": ");
	append(b, value, len);
	appends(b, "\r\n");
}

/* envoy.filters.http.cors on a response head being built in out: the Access-Control-*
 * headers its decision calls for (none unless this request was a CORS request). */
static void cors_response_headers(struct sk_http_conn *hc, struct buf *out)
{
	if (hc->cfg->cors && hc->cors.cors_request)
		sk_cors_headers(&hc->cors, hc->cors.preflight, cors_emit, out);
}

/* Local reply (Envoy's sendLocalReply): status, a text body, the response header mutations
 * of the route when there is one. The stream's response is complete afterwards. */
static void local_reply(struct sk_http_conn *hc, unsigned code, const char *flags, const char *body,
			const char *location)
{
	size_t blen = body ? strlen(body) : 0;

	hc->code = code;
	if (flags)
		hc->flags = flags;
	if (hc->ws_wait) {
		/* an upgrade refused or failed: the bytes after its head are not HTTP */
		hc->ws_wait = false;
		hc->req_done = true;
		hc->keep_alive = false;
	}
	if (!hc->req_done)
		hc->discard_body = true;
	if (!hc->keep_alive || code == 400 || code == 431 || code == 413 || code == 408 || code == 501 ||
	    code == 505)
		hc->close_after = true;
	hc->resp_head.off = hc->resp_head.len = 0;
	appendf(&hc->resp_head, "HTTP/1.1 %u %s\r\n", code, reason_phrase(code));
	if (location)
		appendf(&hc->resp_head, "location: %s\r\n", location);
	if (blen)
		appendf(&hc->resp_head, "content-length: %zu\r\ncontent-type: text/plain\r\n", blen);
	else
		appends(&hc->resp_head, "content-length: 0\r\n");
	if (hc->cfg->server_header != SK_SERVER_PASS_THROUGH)
		appendf(&hc->resp_head, "server: %s\r\n", hc->cfg->server_name);
	cors_response_headers(hc, &hc->resp_head);
	if (hc->close_after)
		appends(&hc->resp_head, "connection: close\r\n");
	appends(&hc->resp_head, "\r\n");
	if (hc->method_id == SK_H1_M_HEAD)
		blen = 0;
	emit_head(hc, blen > 0);
	if (blen > 0)
		emit_body(hc, body, blen);
	emit_end(hc);
	hc->resp_started = hc->resp_done = true;
	hc->down_close = hc->close_after;
}

/* ---------------------------------------------------------------------------------- */
/* access log and header values                                                        */

/* Finds name (lower-case) in a serialized head "Name: value\r\n..." after its first line. */
static const char *find_in_head(const struct buf *h, const char *name, size_t n, size_t *vlen)
{
	const char *p = h->p, *end = h->p ? h->p + h->len : NULL;

	if (p == NULL)
		return NULL;
	p = memchr(p, '\n', (size_t)(end - p));
	while (p && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *colon;

		if (eol == NULL)
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon && ieq(p, (size_t)(colon - p), name) && (size_t)(colon - p) == n) {
			const char *v = colon + 1, *ve = eol > v && eol[-1] == '\r' ? eol - 1 : eol;

			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(ve - v);
			return v;
		}
		p = eol;
	}
	return NULL;
}

static const char *header_lookup(void *ctx, bool resp, const char *name, size_t n, size_t *vlen)
{
	struct sk_http_conn *hc = ctx;
	const char *v;

	if (resp)
		return find_in_head(&hc->resp_head, name, n, vlen);
	if (strcmp(name, ":method") == 0 && hc->method.p) {
		*vlen = hc->method.len;
		return hc->method.p;
	}
	if (strcmp(name, ":path") == 0 && hc->path.p) {
		*vlen = hc->path.len;
		return hc->path.p;
	}
	if ((strcmp(name, ":authority") == 0 || strcmp(name, "host") == 0) && hc->authority.p) {
		*vlen = hc->authority.len;
		return hc->authority.p;
	}
	if (strcmp(name, ":scheme") == 0) {
		*vlen = 4;
		return "http";
	}
	/* what skiff added or replaced ("name: value\r\n" lines), then what the client sent */
	for (const char *p = hc->extra.p, *end = hc->extra.p + hc->extra.len; p != NULL && p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *colon;

		if (eol == NULL)
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon && (size_t)(colon - p) == n && ieq(p, n, name)) {
			*vlen = (size_t)(eol - 1 - (colon + 2));
			return colon + 2;
		}
		p = eol + 1;
	}
	for (size_t i = 0; i < hc->n_fields; i++) {
		if (ieq(hc->fields[i].name.p, hc->fields[i].name.len, name)) {
			*vlen = hc->fields[i].value.len;
			v = hc->fields[i].value.p;
			return v;
		}
	}
	return NULL;
}

/* The upstream connection's TLS facts, for %UPSTREAM_PEER_URI_SAN% / %UPSTREAM_TLS_VERSION%
 * (copied: the connection may close before the request is logged). */
static void note_up_tls(struct sk_http_conn *hc, const struct upconn *u)
{
	free(hc->up_san);
	hc->up_san = u->peer_san != NULL ? strdup(u->peer_san) : NULL;
	hc->up_tls_version = u->tls != NULL ? sk_tls_version(u->tls) : NULL;
}

static void fill_entry(struct sk_http_conn *hc, struct sk_access_log_entry *e)
{
	struct sk_conn *c = hc->c;

	if (c->tls != NULL && !c->peer_uri_san_done) {
		char san[1024];

		c->peer_uri_san_done = true;
		if (sk_tls_peer_uri_san(c->tls, san, sizeof(san)) > 0)
			c->peer_uri_san = strdup(san);
	}

	memset(e, 0, sizeof(*e));
	e->start = hc->wall_start;
	e->duration_ms = (ev_now(hc->w->loop) - hc->start) * 1000.0;
	e->downstream_remote = &c->peer;
	e->downstream_local = &c->local;
	e->upstream_host = hc->up_addr.len ? &hc->up_addr : NULL;
	e->upstream_local = hc->up_local.len ? &hc->up_local : NULL;
	e->upstream_cluster = hc->cluster ? hc->cluster->config->name : NULL;
	e->response_flags = hc->flags ? hc->flags : "-";
	e->bytes_received = hc->rx_body;
	e->bytes_sent = hc->tx_body;
	e->connection_id = c->id;
	e->protocol = hc->h2 ? "HTTP/2" : hc->minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
	e->response_code = hc->code;
	e->route_name = hc->route && hc->route->name && hc->route->name[0] ? hc->route->name : NULL;
	e->server_name = c->sni;
	e->downstream_peer_uri_san = c->peer_uri_san;
	e->downstream_tls_version = c->tls != NULL ? sk_tls_version(c->tls) : NULL;
	e->upstream_peer_uri_san = hc->up_san;
	e->upstream_tls_version = hc->up_tls_version;
	e->header = header_lookup;
	e->header_ctx = hc;
}

/* A header value with %COMMAND%s expanded (Envoy's header formatter), in hc->scratch. */
static const char *format_value(struct sk_http_conn *hc, const char *value)
{
	struct sk_access_log_entry e;
	size_t cap;

	if (strchr(value, '%') == NULL)
		return value;
	fill_entry(hc, &e);
	hc->scratch.off = hc->scratch.len = 0;
	cap = strlen(value) + 512;
	if (reserve(&hc->scratch, cap) < 0)
		return "";
	sk_access_log_format(value, &e, hc->scratch.p, cap);
	return hc->scratch.p;
}

/* ---------------------------------------------------------------------------------- */
/* header mutations                                                                    */

/* The levels of header changes that apply, most specific first (Envoy applies the route's,
 * then the virtual host's, then the route configuration's; with the default
 * most_specific_header_mutations_wins false, a later level overrides an earlier one). */
static size_t mutation_levels(const struct sk_http_conn *hc, const struct sk_header_mutations **lv)
{
	size_t n = 0;
	const struct sk_route *r = hc->route;

	if (r == NULL)
		return 0;
	if (hc->wc)
		lv[n++] = &hc->wc->mutations;
	lv[n++] = &r->mutations;
	lv[n++] = &r->vhost->mutations;
	lv[n++] = &r->vhost->config->mutations;
	return n;
}

static bool removed(const struct sk_header_mutations **lv, size_t nl, bool resp, const char *name, size_t n)
{
	for (size_t i = 0; i < nl; i++) {
		const struct sk_header_ops *o = resp ? &lv[i]->response : &lv[i]->request;

		for (size_t k = 0; k < o->n_remove; k++)
			if (ieq(name, n, o->remove[k]))
				return true;
		for (size_t k = 0; k < o->n_add; k++)
			if ((o->add[k].append == SK_OVERWRITE_IF_EXISTS_OR_ADD ||
			     o->add[k].append == SK_OVERWRITE_IF_EXISTS) && ieq(name, n, o->add[k].key))
				return true;
	}
	return false;
}

/* Appends the added headers of every level to out. present(name) says whether the message
 * (before changes) had the header, for ADD_IF_ABSENT and OVERWRITE_IF_EXISTS. */
static void add_headers(struct sk_http_conn *hc, struct buf *out, const struct sk_header_mutations **lv,
			size_t nl, bool resp, bool (*present)(struct sk_http_conn *, const char *))
{
	/* least specific last but winning: apply from the least specific level, and skip an
	 * overwrite that a less specific level also overwrites */
	for (size_t i = nl; i-- > 0;) {
		const struct sk_header_ops *o = resp ? &lv[i]->response : &lv[i]->request;

		for (size_t k = 0; k < o->n_add; k++) {
			const struct sk_header_add *a = &o->add[k];
			const char *v;
			bool overridden = false;

			if (a->append == SK_ADD_IF_ABSENT && present(hc, a->key))
				continue;
			if (a->append == SK_OVERWRITE_IF_EXISTS && !present(hc, a->key))
				continue;
			if (a->append == SK_OVERWRITE_IF_EXISTS_OR_ADD || a->append == SK_OVERWRITE_IF_EXISTS) {
				for (size_t j = i + 1; j < nl && !overridden; j++) {
					const struct sk_header_ops *p = resp ? &lv[j]->response : &lv[j]->request;

					for (size_t m = 0; m < p->n_add; m++)
						if (strcmp(p->add[m].key, a->key) == 0 &&
						    p->add[m].append == SK_OVERWRITE_IF_EXISTS_OR_ADD)
							overridden = true;
				}
			}
			if (overridden)
				continue;
			v = format_value(hc, a->value);
			if (v[0] == '\0' && !a->keep_empty_value)
				continue;
			appendf(out, "%s: %s\r\n", a->key, v);
		}
	}
}

static bool req_present(struct sk_http_conn *hc, const char *name)
{
	size_t vlen;

	return header_lookup(hc, false, name, strlen(name), &vlen) != NULL;
}

static bool resp_present(struct sk_http_conn *hc, const char *name)
{
	size_t vlen;

	return find_in_head(&hc->resp_head, name, strlen(name), &vlen) != NULL;
}

/* ---------------------------------------------------------------------------------- */
/* paths                                                                               */

/* merge_slashes and RFC 3986 dot-segment removal on the path part (query kept as is). */
static void normalize(struct sk_http_conn *hc, struct buf *out, const char *p, size_t n)
{
	const char *q = memchr(p, '?', n);
	size_t plen = q ? (size_t)(q - p) : n;
	size_t start = out->len;

	for (size_t i = 0; i < plen; i++) {
		if (hc->cfg->merge_slashes && p[i] == '/' && out->len > start && out->p[out->len - 1] == '/')
			continue;
		append(out, &p[i], 1);
	}
	if (hc->cfg->normalize_path) {
		/* remove "." and ".." segments in place */
		char *s = out->p + start, *w = s;
		size_t len = out->len - start, i = 0;

		while (i < len) {
			if (s[i] == '/' && i + 1 < len && s[i + 1] == '.' && (i + 2 == len || s[i + 2] == '/')) {
				i += 2;
				if (i == len) {
					*w++ = '/';
				}
				continue;
			}
			if (s[i] == '/' && i + 2 < len && s[i + 1] == '.' && s[i + 2] == '.' &&
			    (i + 3 == len || s[i + 3] == '/')) {
				while (w > s && *--w != '/') {
				}
				i += 3;
				if (i == len)
					*w++ = '/';
				continue;
			}
			*w++ = s[i++];
		}
		if (w == s)
			*w++ = '/';
		out->len = start + (size_t)(w - s);
	}
	if (q)
		append(out, q, n - plen);
}

/* The request's head, copied: the parser's slices die with the next parse call. */
static int copy_head(struct sk_http_conn *hc, const struct sk_h1_head *h, const char *base)
{
	size_t i;
	const char *hbase;

	hc->head.off = hc->head.len = 0;
	if (append(&hc->head, base, h->head_len) < 0)
		return -ENOMEM;
	hbase = hc->head.p;
#define REBASE(s) ((struct sk_h1_slice){ (s).p ? hbase + ((s).p - base) : NULL, (s).len })
	if (h->n_fields > hc->cap_fields) {
		struct sk_h1_field *f = realloc(hc->fields, h->n_fields * sizeof(*f));

		if (f == NULL)
			return -ENOMEM;
		hc->fields = f;
		hc->cap_fields = h->n_fields;
	}
	for (i = 0; i < h->n_fields; i++) {
		hc->fields[i].name = REBASE(h->fields[i].name);
		hc->fields[i].value = REBASE(h->fields[i].value);
	}
	hc->n_fields = h->n_fields;
	hc->method = REBASE(h->method);
	hc->authority = h->form == SK_H1_ABSOLUTE_FORM && h->authority.len ? REBASE(h->authority) : REBASE(h->host);
	{
		struct sk_h1_slice p = REBASE(h->path);

		hc->path_buf.off = hc->path_buf.len = 0;
		if (p.len == 0 || p.p[0] != '/')
			appends(&hc->path_buf, "/");
		if (hc->cfg->merge_slashes || hc->cfg->normalize_path)
			normalize(hc, &hc->path_buf, p.p ? p.p : "", p.len);
		else
			append(&hc->path_buf, p.p ? p.p : "", p.len);
		hc->path = (struct sk_h1_slice){ hc->path_buf.p, hc->path_buf.len };
	}
#undef REBASE
	return 0;
}

/* ---------------------------------------------------------------------------------- */
/* stream lifecycle                                                                    */

static void stream_begin(struct sk_http_conn *hc)
{
	struct sk_worker *w = hc->w;

	hc->active = true;
	hc->req_done = hc->discard_body = hc->resp_started = hc->resp_done = hc->down_close = false;
	hc->upgrade = hc->ws_wait = hc->tunnel = hc->tunnel_up = false;
	hc->upgrade_proto[0] = '\0';
	hc->forwarding = hc->replayable = hc->timer_is_route = hc->upstream_rq_counted = false;
	hc->route = NULL;
	hc->wc = NULL;
	hc->cluster = NULL;
	hc->u = NULL;
	hc->up_addr.len = hc->up_local.len = 0;
	hc->flags = NULL;
	hc->code = 0;
	hc->rx_body = hc->tx_body = 0;
	hc->service_ms = 0;
	hc->rp = NULL;
	hc->internal = hc->try_sent = false;
	memset(&hc->cors, 0, sizeof(hc->cors));
	hc->retries = 0;
	hc->body_ok = true;
	hc->retry_exhausted = hc->retry_held = hc->retrying = hc->has_hash = false;
	hc->backoff = 0;
	hc->body_buf.off = hc->body_buf.len = 0;
	hc->n_tried = 0;
	hc->hash = 0;
	hc->extra.off = hc->extra.len = 0;
	hc->resp_head.off = hc->resp_head.len = 0;
	hc->start = ev_now(w->loop);
	hc->wall_start = ev_time();
	hc->n_requests++;
	sk_stat_inc(w->shard, hc->st->downstream_rq_total);
	sk_stat_inc(w->shard, hc->h2 ? hc->st->downstream_rq_http2_total : hc->st->downstream_rq_http1_total);
	sk_stat_add(w->shard, hc->st->downstream_rq_active, 1);
	if (hc->cfg->request_timeout > 0) {
		ev_timer_set(&hc->rq_timer, hc->cfg->request_timeout, 0.);
		ev_timer_start(w->loop, &hc->rq_timer);
	}
}

/* Releases the upstream connection: to the pool after a clean exchange, else closed. */
static void up_release(struct sk_http_conn *hc, bool reusable)
{
	struct upconn *u = hc->u;

	if (u == NULL)
		return;
	hc->u = NULL;
	if (hc->upstream_rq_counted) {
		sk_stat_sub(hc->w->shard, u->cluster->st.upstream_rq_active, 1);
		atomic_fetch_sub(&u->cluster->active_rq, 1);
		hc->upstream_rq_counted = false;
	}
	if (reusable && u->connected && pending(&u->out) == 0 && pending(&u->in) == 0 && u->fd >= 0 &&
	    (u->tls == NULL || sk_tls_pending(u->tls) == 0))
		pool_put(u);
	else
		up_destroy(u, true);
}

/* Both halves are done (or the stream is abandoned): log, count, reset for the next one. */
static void stream_end(struct sk_http_conn *hc)
{
	struct sk_worker *w = hc->w;
	const struct sk_hcm_config *cfg = hc->cfg;
	double ms = (ev_now(w->loop) - hc->start) * 1000.0;
	size_t i;

	if (!hc->active)
		return;
	ev_timer_stop(w->loop, &hc->rq_timer);
	ev_timer_stop(w->loop, &hc->try_timer);
	ev_timer_stop(w->loop, &hc->retry_timer);
	ev_timer_stop(w->loop, &hc->fault_timer);
	hc->fault_delaying = false;
	q_unlink(hc);
	if (hc->retry_held && hc->cluster) {
		atomic_fetch_sub(&hc->cluster->active_retries, 1);
		hc->retry_held = false;
	}
	up_release(hc, false);
	if (hc->upgrade)
		sk_stat_sub(w->shard, hc->st->downstream_cx_upgrades_active, 1);
	if (hc->code >= 100 && hc->code < 600)
		sk_stat_inc(w->shard, hc->st->downstream_rq_class[hc->code / 100]);
	sk_stat_inc(w->shard, hc->st->downstream_rq_completed);
	sk_stat_sub(w->shard, hc->st->downstream_rq_active, 1);
	sk_stat_record(w->shard, hc->st->downstream_rq_time, ms > 0 ? (uint64_t)ms : 0);
	for (i = 0; i < cfg->n_access_logs; i++) {
		struct sk_access_log_entry e;

		fill_entry(hc, &e);
		sk_access_log_write(cfg->access_logs[i].path, cfg->access_logs[i].format, &e);
	}
	if (hc->cluster) {
		sk_cluster_unref(hc->cluster);
		hc->cluster = NULL;
	}
	hc->active = false;
	if (hc->h2)
		return; /* the stream lives on until nghttp2 has sent it and closes it */
	if (hc->down_close || !hc->keep_alive)
		hc->close_after = true;
	if (cfg->max_requests_per_connection && hc->n_requests >= cfg->max_requests_per_connection)
		hc->close_after = true;
	hc->route = NULL;
	sk_snapshot_unref(hc->snap);
	hc->snap = NULL;
	hc->rds = NULL;
	hc->n_fields = 0;
	hc->method.p = hc->path.p = hc->authority.p = NULL;
	if (hc->close_after && pending(&hc->dout) == 0)
		hc->must_close = true;
}

/* A protocol error in the request (the parser's ERROR): answered, then the connection
 * closes. The request must not reach the upstream. */
static void request_error(struct sk_http_conn *hc, int status, const char *reason)
{
	struct sk_worker *w = hc->w;

	sk_log_debug(SK_LOG_HTTP, "[C%llu] http: bad request: %s (%d)", (unsigned long long)hc->c->id,
		     reason ? reason : "?", status);
	sk_stat_inc(w->shard, hc->st->downstream_cx_protocol_error);
	if (status == 413)
		sk_stat_inc(w->shard, hc->st->downstream_rq_too_large);
	hc->close_after = true;
	hc->keep_alive = false;
	if (!hc->active) {
		stream_begin(hc);
		hc->minor = 1;
	}
	if (hc->u) {
		/* mid-body: the upstream got part of a request; that connection is spoilt */
		sk_stat_inc(w->shard, hc->u->cluster->st.upstream_rq_tx_reset);
		up_release(hc, false);
	}
	hc->req_done = true;
	if (hc->resp_started) {
		hc->must_close = true;
		stream_end(hc);
		return;
	}
	local_reply(hc, status ? (unsigned)status : 400, "DPE", reason_phrase(status ? (unsigned)status : 400), NULL);
	stream_end(hc);
}

/* An upstream failure before the response started: local reply; after: the downstream
 * connection is cut (the client sees a truncated response, as Envoy does). */
static void upstream_failure(struct sk_http_conn *hc, unsigned code, const char *flags, const char *body)
{
	up_release(hc, false);
	if (hc->resp_started) {
		hc->flags = flags;
		hc->must_close = true;
		hc->down_close = true;
		stream_end(hc);
		return;
	}
	local_reply(hc, code, flags, body, NULL);
	if (hc->req_done)
		stream_end(hc);
}

/* ---------------------------------------------------------------------------------- */
/* timers                                                                              */

static void finish_callback(struct sk_http_conn *hc);

static void on_rq_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_http_conn *hc = t->data;

	(void)loop;
	(void)revents;
	hc->in_callback = true;
	if (hc->timer_is_route) {
		sk_log_debug(SK_LOG_HTTP, "[C%llu] http: upstream request timeout", (unsigned long long)hc->c->id);
		if (hc->cluster)
			sk_stat_inc(hc->w->shard, hc->cluster->st.upstream_rq_timeout);
		if (hc->u && !hc->resp_started)
			sk_stat_inc(hc->w->shard, hc->u->cluster->st.upstream_rq_class[5]);
		upstream_failure(hc, 504, "UT", "upstream request timeout");
	} else {
		/* request_timeout: the whole request did not arrive in time */
		sk_stat_inc(hc->w->shard, hc->st->downstream_rq_timeout);
		hc->keep_alive = false;
		hc->req_done = true;
		upstream_failure(hc, 408, "DT", "request timeout");
		stream_end(hc);
	}
	finish_callback(hc);
}

static void arm_idle(struct sk_http_conn *hc)
{
	double t;

	if (hc->active)
		t = hc->cfg->stream_idle_timeout;
	else if (pending(&hc->din) > 0 && hc->cfg->request_headers_timeout > 0)
		t = hc->cfg->request_headers_timeout;
	else
		t = hc->cfg->idle_timeout;
	ev_timer_stop(hc->w->loop, &hc->idle_timer);
	if (t > 0) {
		ev_timer_set(&hc->idle_timer, t, 0.);
		ev_timer_start(hc->w->loop, &hc->idle_timer);
	}
}

static void on_idle_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_http_conn *hc = t->data;

	(void)loop;
	(void)revents;
	hc->in_callback = true;
	if (hc->h2 && !hc->active) {
		finish_callback(hc); /* an HTTP/2 stream being sent out: nghttp2 ends it */
		return;
	}
	if (hc->active) {
		sk_stat_inc(hc->w->shard, hc->st->downstream_rq_idle_timeout);
		hc->keep_alive = false;
		if (!hc->req_done)
			hc->req_done = true;
		upstream_failure(hc, 408, "SI", "stream timeout");
		stream_end(hc);
	} else if (pending(&hc->din) > 0) {
		/* request_headers_timeout (or idle) with a partial head */
		hc->keep_alive = false;
		stream_begin(hc);
		hc->minor = 1;
		hc->req_done = true;
		local_reply(hc, 408, "DT", "request timeout", NULL);
		stream_end(hc);
	} else {
		sk_stat_inc(hc->w->shard, hc->st->downstream_cx_idle_timeout);
		hc->must_close = true;
	}
	finish_callback(hc);
}

/* ---------------------------------------------------------------------------------- */
/* upstream connections                                                                */

static void on_up_read(struct ev_loop *loop, ev_io *io, int revents);
static void on_up_write(struct ev_loop *loop, ev_io *io, int revents);

/* ---------------------------------------------------------------------------------- */
/* retries (Envoy's RetryStateImpl for HTTP/1.1)                                       */

enum try_failure { TRY_CONNECT_FAILURE, TRY_RESET, TRY_TIMEOUT, TRY_STATUS };

/* Whether the upstream's response head h is one the retry policy retries (status, retriable
 * headers, gRPC status, x-envoy-ratelimited: sk_retry_response_retriable). */
static bool retriable_response(const struct sk_http_conn *hc, const struct sk_h1_head *h)
{
	struct sk_http_header local[32], *view = local;
	struct sk_route_request resp = {0};
	bool retry;

	if (h->n_fields > sizeof(local) / sizeof(local[0]) && (view = malloc(h->n_fields * sizeof(*view))) == NULL)
		return false;
	for (size_t i = 0; i < h->n_fields; i++) {
		view[i].name = (struct sk_slice){h->fields[i].name.p, h->fields[i].name.len};
		view[i].value = (struct sk_slice){h->fields[i].value.p, h->fields[i].value.len};
	}
	resp.headers = view;
	resp.n_headers = h->n_fields;
	retry = sk_retry_response_retriable(&hc->rr, (unsigned)h->status, &resp);
	if (view != local)
		free(view);
	return retry;
}

/* A try failed (its connection is still hc->u, or NULL). When the policy wants a retry and
 * one is allowed, the try's connection is closed, the back-off timer armed, and true is
 * returned: the caller stops. Retries happen only before any response byte went downstream,
 * with the whole request received and its body (if any) kept in body_buf. */
static bool maybe_retry(struct sk_http_conn *hc, enum try_failure why, unsigned status)
{
	const struct sk_retry_policy *rp = hc->rp;
	struct sk_worker *w = hc->w;
	struct sk_cluster *cl = hc->cluster;
	uint32_t on, max_retries;
	bool want;
	double ceil_ms, delay;

	if (rp == NULL || cl == NULL || hc->resp_started || !hc->body_ok || hc->must_close ||
	    (!hc->req_done && hc->req_framing != SK_H1_BODY_NONE))
		return false;
	on = rp->retry_on;
	switch (why) {
	case TRY_CONNECT_FAILURE:
		/* nothing was sent: reset-before-request applies too */
		want = on & (SK_RETRY_5XX | SK_RETRY_GATEWAY_ERROR | SK_RETRY_CONNECT_FAILURE | SK_RETRY_RESET |
			     SK_RETRY_RESET_BEFORE_REQUEST);
		break;
	case TRY_RESET:
	case TRY_TIMEOUT:
		/* reset-before-request: only when no byte of this try's request went out */
		want = (on & (SK_RETRY_5XX | SK_RETRY_GATEWAY_ERROR | SK_RETRY_RESET)) ||
		       ((on & SK_RETRY_RESET_BEFORE_REQUEST) && !hc->try_sent);
		break;
	default:
		want = true; /* the caller checked the response (retriable_response) */
		break;
	}
	if (!want)
		return false;
	if (hc->retries >= rp->num_retries) {
		hc->retry_exhausted = true;
		sk_stat_inc(w->shard, cl->st.upstream_rq_retry_limit_exceeded);
		return false;
	}
	max_retries = cl->config->cb[hc->route && hc->route->fwd.priority_high ? 1 : 0].max_retries;
	if (atomic_load(&cl->active_retries) >= max_retries) {
		sk_stat_inc(w->shard, cl->st.upstream_rq_retry_overflow);
		return false;
	}
	atomic_fetch_add(&cl->active_retries, 1);
	hc->retry_held = true;
	hc->retries++;
	sk_stat_inc(w->shard, cl->st.upstream_rq_retry);
	ev_timer_stop(w->loop, &hc->try_timer);
	up_release(hc, false);
	/* jittered exponential back-off: uniform in [0, ceiling), the ceiling doubling up to max */
	if (hc->backoff <= 0)
		hc->backoff = rp->back_off_base > 0 ? rp->back_off_base : 0.025;
	ceil_ms = hc->backoff * 1000.0;
	delay = ceil_ms >= 1.0 ? (double)(rnd() % (uint64_t)ceil_ms) / 1000.0 : 0.0;
	hc->backoff *= 2;
	{
		double mx = rp->back_off_max > 0 ? rp->back_off_max : 10 * (rp->back_off_base > 0 ? rp->back_off_base : 0.025);

		if (hc->backoff > mx)
			hc->backoff = mx;
	}
	sk_log_debug(SK_LOG_HTTP, "[C%llu] http: retry %u of %u in %.0f ms (%s%.0u)", (unsigned long long)hc->c->id,
		     hc->retries, rp->num_retries, delay * 1000.0,
		     why == TRY_CONNECT_FAILURE ? "connect failure" : why == TRY_RESET ? "reset"
		     : why == TRY_TIMEOUT ? "per-try timeout" : "response ", status);
	ev_timer_set(&hc->retry_timer, delay, 0.);
	ev_timer_start(w->loop, &hc->retry_timer);
	return true;
}

static void on_retry_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_http_conn *hc = t->data;

	(void)loop;
	(void)revents;
	hc->in_callback = true;
	if (hc->retry_held) {
		atomic_fetch_sub(&hc->cluster->active_retries, 1);
		hc->retry_held = false;
	}
	hc->up_addr.len = 0;
	hc->retrying = true;
	forward(hc);
	hc->retrying = false;
	finish_callback(hc);
}

static void on_try_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_http_conn *hc = t->data;

	(void)loop;
	(void)revents;
	hc->in_callback = true;
	sk_log_debug(SK_LOG_HTTP, "[C%llu] http: per-try timeout", (unsigned long long)hc->c->id);
	if (hc->cluster)
		sk_stat_inc(hc->w->shard, hc->cluster->st.upstream_rq_per_try_timeout);
	if (hc->u && !hc->resp_started)
		sk_stat_inc(hc->w->shard, hc->u->cluster->st.upstream_rq_class[5]);
	if (!maybe_retry(hc, TRY_TIMEOUT, 0))
		upstream_failure(hc, 504, hc->retry_exhausted ? "UT,URX" : "UT", "upstream request timeout");
	finish_callback(hc);
}

static void up_connect_failed(struct sk_http_conn *hc, bool timeout, int err)
{
	struct upconn *u = hc->u;
	struct sk_worker *w = hc->w;
	char up[SK_ADDR_TEXT_MAX];

	sk_addr_format(&u->addr, up, sizeof(up));
	sk_log_debug(SK_LOG_UPSTREAM, "[C%llu] http: connect to %s (cluster '%s') %s%s",
		     (unsigned long long)hc->c->id, up, u->cluster->config->name,
		     timeout ? "timed out" : "failed: ", timeout ? "" : strerror(err));
	if (timeout)
		sk_stat_inc(w->shard, u->cluster->st.upstream_cx_connect_timeout);
	sk_stat_inc(w->shard, u->cluster->st.upstream_cx_connect_fail);
	if (u->host)
		atomic_fetch_add(&u->host->cx_connect_fail, 1);
	sk_stat_inc(w->shard, u->cluster->st.upstream_rq_class[5]);
	{
		int k = sk_http_code_index(503);

		if (k >= 0)
			sk_cluster_count_code(w->shard, u->cluster, k);
	}
	if (maybe_retry(hc, TRY_CONNECT_FAILURE, 0))
		return;
	upstream_failure(hc, 503, hc->retry_exhausted ? "UF,URX" : "UF",
			 timeout ? "upstream connect error or disconnect/reset before headers. reset reason: "
				   "connection timeout"
				 : "upstream connect error or disconnect/reset before headers. reset reason: "
				   "connection failure");
}

static void on_up_connect_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct upconn *u = t->data;
	struct sk_http_conn *hc = u->hc;

	(void)loop;
	(void)revents;
	hc->in_callback = true;
	up_connect_failed(hc, true, ETIMEDOUT);
	finish_callback(hc);
}

/* Opens a new connection to addr for the stream; NULL after answering (503) on failure. */
static struct upconn *up_open(struct sk_http_conn *hc, struct sk_cluster *cl, struct sk_host *host,
			      struct sk_host_set *hs, const struct sk_addr *addr, struct sk_tls_ctx *tls_ctx)
{
	struct sk_worker *w = hc->w;
	const struct sk_cluster_config *cc = cl->config;
	struct upconn *u;
	int fd;

	if (atomic_load(&cl->active_cx) >= cc->cb[0].max_connections) {
		/* as Envoy: over the limit, a worker without any connection to the cluster still
		 * opens one, or its waiting requests could never go */
		sk_stat_inc(w->shard, cl->st.upstream_cx_overflow);
		if (cl->slots[w->index].n_cx > 0) {
			local_reply(hc, 503, "UO", "upstream connect error or disconnect/reset before headers. "
				    "reset reason: overflow", NULL);
			return NULL;
		}
	}
	u = calloc(1, sizeof(*u));
	if (u == NULL) {
		local_reply(hc, 503, "UF", "out of memory", NULL);
		return NULL;
	}
	u->fd = -1;
	u->w = w;
	u->cluster = sk_cluster_ref(cl);
	u->host = host;
	u->hs = hs ? sk_host_set_ref(hs) : NULL;
	u->addr = *addr;
	u->tls_ctx = tls_ctx ? sk_tls_ctx_ref(tls_ctx) : NULL;
	snprintf(u->alpn, sizeof(u->alpn), "%s", hc->up_alpn ? hc->up_alpn : "");
	u->rp = sk_h1_parser_new(SK_H1_RESPONSE, NULL);
	ev_init(&u->rio, on_up_read);
	ev_init(&u->wio, on_up_write);
	ev_init(&u->timer, on_up_connect_timeout);
	u->rio.data = u->wio.data = u->timer.data = u;
	u->hc = hc;
	hc->u = u;
	if (u->rp == NULL) {
		hc->u = NULL;
		up_destroy(u, true);
		local_reply(hc, 503, "UF", "out of memory", NULL);
		return NULL;
	}
	fd = sk_http_up_socket(cc, addr);
	if (fd < 0) {
		up_connect_failed(hc, false, -fd);
		return NULL;
	}
	u->fd = fd;
	sk_http_up_count_open(w, cl, host, false);
	u->counted = true;
	if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 && errno != EINPROGRESS) {
		up_connect_failed(hc, false, errno);
		return NULL;
	}
	ev_io_set(&u->rio, fd, EV_READ);
	ev_io_set(&u->wio, fd, EV_WRITE);
	ev_timer_set(&u->timer, cc->connect_timeout, 0.);
	ev_timer_start(w->loop, &u->timer);
	ev_io_start(w->loop, &u->wio);
	return u;
}

/* A stream on a pooled HTTP/2 connection to addr (http2_up.c), as an upconn without a
 * socket of its own; NULL after answering (503) or scheduling a retry on failure. */
static struct upconn *h2_open(struct sk_http_conn *hc, struct sk_cluster *cl, struct sk_host *host,
			      struct sk_host_set *hs, const struct sk_addr *addr, struct sk_tls_ctx *tls_ctx)
{
	static const struct sk_h1_options trusted = { .max_headers_kb = 8192, .max_headers_count = 100000 };
	struct upconn *u = calloc(1, sizeof(*u));
	int rc;

	if (u == NULL) {
		local_reply(hc, 503, "UF", "out of memory", NULL);
		return NULL;
	}
	u->fd = -1;
	u->w = hc->w;
	u->cluster = sk_cluster_ref(cl);
	u->host = host;
	u->hs = hs ? sk_host_set_ref(hs) : NULL;
	u->addr = *addr;
	u->tls_ctx = tls_ctx ? sk_tls_ctx_ref(tls_ctx) : NULL; /* the pooled connection's key */
	snprintf(u->alpn, sizeof(u->alpn), "%s", hc->up_alpn ? hc->up_alpn : "");
	u->rp = sk_h1_parser_new(SK_H1_RESPONSE, NULL);
	u->wp = sk_h1_parser_new(SK_H1_REQUEST, &trusted); /* reads skiff's own request text */
	ev_init(&u->rio, on_up_read);
	ev_init(&u->wio, on_up_write);
	ev_init(&u->timer, on_up_connect_timeout);
	u->rio.data = u->wio.data = u->timer.data = u;
	u->hc = hc;
	hc->u = u;
	rc = u->rp && u->wp ? sk_h2_up_attach(u) : -ENOMEM;
	if (rc == -EBUSY) {
		sk_stat_inc(hc->w->shard, cl->st.upstream_cx_overflow);
		hc->u = NULL;
		up_destroy(u, true);
		local_reply(hc, 503, "UO", "upstream connect error or disconnect/reset before headers. reset "
			    "reason: overflow", NULL);
		return NULL;
	}
	if (rc < 0) {
		up_connect_failed(hc, false, -rc);
		return NULL;
	}
	return u;
}

void sk_http_up_connected(struct upconn *u)
{
	struct sk_http_conn *hc = u->hc;

	hc->in_callback = true;
	u->connected = true;
	hc->up_local = u->local;
	up_write(u);
	finish_callback(hc);
}

void sk_http_up_connect_failed(struct upconn *u, bool timeout, int err)
{
	struct sk_http_conn *hc = u->hc;

	hc->in_callback = true;
	up_connect_failed(hc, timeout, err);
	finish_callback(hc);
}

void sk_http_up_input(struct upconn *u)
{
	struct sk_http_conn *hc = u->hc;

	hc->in_callback = true;
	hc->replayable = false;
	arm_idle(hc);
	up_process(hc);
	finish_callback(hc);
}

void sk_http_up_reset(struct upconn *u, int err)
{
	struct sk_http_conn *hc = u->hc;

	hc->in_callback = true;
	up_eof(hc, err);
	finish_callback(hc);
}

/* Advances the TLS handshake of a connecting u (connect_timeout still runs: it covers the
 * handshake, as Envoy's "connected" comes once TLS is up). true once established; false while
 * it waits for the socket, or after failing it as a connect failure (u may be gone then). */
static bool up_tls_handshake(struct upconn *u)
{
	struct sk_http_conn *hc = u->hc;
	struct sk_worker *w = u->w;
	enum sk_tls_status st = sk_tls_handshake(u->tls);
	char up[SK_ADDR_TEXT_MAX];

	switch (st) {
	case SK_TLS_DONE: {
		char san[1024];

		sk_tls_stats_count(w->shard, &u->cluster->tls_st, u->tls, true);
		if (sk_tls_peer_uri_san(u->tls, san, sizeof(san)) > 0)
			u->peer_san = strdup(san);
		return true;
	}
	case SK_TLS_WANT_READ:
		ev_io_stop(w->loop, &u->wio);
		ev_io_start(w->loop, &u->rio);
		return false;
	case SK_TLS_WANT_WRITE:
		ev_io_stop(w->loop, &u->rio);
		ev_io_start(w->loop, &u->wio);
		return false;
	default:
		break;
	}
	sk_tls_stats_count(w->shard, &u->cluster->tls_st, u->tls, false);
	sk_addr_format(&u->addr, up, sizeof(up));
	sk_log_debug(SK_LOG_UPSTREAM, "[C%llu] http: TLS handshake with %s (cluster '%s') failed: %s",
		     (unsigned long long)hc->c->id, up, u->cluster->config->name, sk_tls_failure_reason(u->tls));
	ev_io_stop(w->loop, &u->rio);
	ev_io_stop(w->loop, &u->wio);
	up_connect_failed(hc, false, EPROTO);
	return false;
}

/* Writes u->out; on the first writability after connect, checks the connect result (and
 * runs the TLS handshake when the host's socket is TLS). */
static void up_write(struct upconn *u)
{
	struct sk_http_conn *hc = u->hc;
	struct sk_worker *w = u->w;

	if (u->h2) {
		hc->try_sent = true; /* the stream's HEADERS go out on the connection */
		sk_h2_up_write(u);
		return;
	}
	if (!u->connected) {
		if (u->tls == NULL) {
			int err = 0;
			socklen_t len = sizeof(err);

			if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
			if (err == EINPROGRESS)
				return;
			if (err != 0) {
				up_connect_failed(hc, false, err);
				return;
			}
			u->connected_at = ev_now(w->loop);
			len = sizeof(u->local.ss);
			getsockname(u->fd, (struct sockaddr *)&u->local.ss, &len);
			u->local.len = len;
			if (u->tls_ctx != NULL) {
				u->tls = sk_tls_conn_new(u->tls_ctx, u->fd, false, NULL);
				if (u->tls == NULL || sk_tls_conn_set_alpn_list(u->tls, u->alpn) < 0) {
					up_connect_failed(hc, false, ENOMEM);
					return;
				}
			}
		}
		if (u->tls != NULL && !up_tls_handshake(u))
			return;
		ev_timer_stop(w->loop, &u->timer);
		u->connected = true;
		hc->up_local = u->local;
		note_up_tls(hc, u);
		ev_io_start(w->loop, &u->rio);
	}
	u->tls_wr_wants_read = false;
	while (pending(&u->out) > 0) {
		ssize_t n = sk_tls_io_write(u->tls, u->fd, u->out.p + u->out.off, pending(&u->out),
					    &u->tls_wr_wants_read);
		int e = n < 0 ? (int)-n : 0;

		if (u->tls_wr_wants_read) {
			/* renegotiation-like traffic first: go on when readable (the read watcher
			 * runs while a stream uses the connection) */
			ev_io_start(w->loop, &u->rio);
			ev_io_stop(w->loop, &u->wio);
			return;
		}
		if (n < 0) {
			if (e == EAGAIN)
				break;
			/* the response may still come (an early reply); reading tells */
			sk_log_debug(SK_LOG_HTTP, "[C%llu] http: upstream write: %s", (unsigned long long)hc->c->id,
				     strerror(e));
			u->out.off = u->out.len = 0;
			hc->replayable = hc->replayable && !hc->resp_started;
			ev_io_stop(w->loop, &u->wio);
			ev_io_start(w->loop, &u->rio);
			return;
		}
		sk_stat_add(w->shard, u->cluster->st.upstream_cx_tx_bytes_total, (uint64_t)n);
		consume(&u->out, (size_t)n);
		hc->try_sent = true;
	}
	if (pending(&u->out) > 0) {
		ev_io_start(w->loop, &u->wio);
	} else {
		if (!u->tls_rd_wants_write)
			ev_io_stop(w->loop, &u->wio);
		if (u->shut_wr) {
			if (u->tls != NULL)
				(void)sk_tls_shutdown(u->tls);
			shutdown(u->fd, SHUT_WR);
		}
	}
}

static void on_up_write(struct ev_loop *loop, ev_io *io, int revents)
{
	struct upconn *u = io->data;
	struct sk_http_conn *hc = u->hc;
	bool was_over;

	(void)loop;
	(void)revents;
	hc->in_callback = true;
	was_over = pending(&u->out) > hc->limit;
	if (u->tls_rd_wants_write && u->connected) {
		/* a TLS read waited for the socket to become writable */
		u->tls_rd_wants_write = false;
		up_write(u);
		if (hc->u == u && !hc->must_close)
			up_read(u);
		if (hc->u != u) {
			finish_callback(hc);
			return;
		}
	} else {
		up_write(u);
	}
	if (!hc->must_close && hc->u == u && was_over && pending(&u->out) <= hc->limit)
		process(hc); /* room again: the request body may continue */
	finish_callback(hc);
}

/* The response head from upstream -> the head written downstream. */
static void response_head(struct sk_http_conn *hc, const struct sk_h1_head *h, bool counted)
{
	struct sk_worker *w = hc->w;
	const struct sk_header_mutations *lv[4];
	size_t nl = mutation_levels(hc, lv), i;
	struct upconn *u = hc->u;
	bool server_seen = false;
	int k;

	hc->code = (unsigned)h->status;
	hc->up_keep_alive = h->keep_alive;
	hc->service_ms = (ev_now(w->loop) - hc->up_start) * 1000.0;
	ev_timer_stop(w->loop, &hc->try_timer);
	if (!counted) {
		sk_stat_inc(w->shard, u->cluster->st.upstream_rq_class[h->status / 100]);
		if ((k = sk_http_code_index((unsigned)h->status)) >= 0)
			sk_cluster_count_code(w->shard, u->cluster, k);
	}
	if (hc->retry_exhausted)
		hc->flags = "URX";
	else if (hc->retries > 0)
		sk_stat_inc(w->shard, u->cluster->st.upstream_rq_retry_success);
	if (h->status == 101)
		hc->down_framing = DOWN_TUNNEL;
	else if (h->framing == SK_H1_BODY_CHUNKED)
		hc->down_framing = hc->minor >= 1 ? DOWN_CHUNKED : DOWN_CLOSE;
	else if (h->framing == SK_H1_BODY_UNTIL_CLOSE)
		hc->down_framing = DOWN_CLOSE;
	else if (h->framing == SK_H1_BODY_LENGTH)
		hc->down_framing = DOWN_LENGTH;
	else
		hc->down_framing = DOWN_NONE;
	hc->down_close = !hc->keep_alive || hc->down_framing == DOWN_CLOSE || !hc->req_done || hc->close_after;
	if (!hc->req_done && h->status != 101)
		hc->discard_body = true;

	hc->resp_head.off = hc->resp_head.len = 0;
	if (h->reason.len > 0)
		appendf(&hc->resp_head, "HTTP/1.1 %d %.*s\r\n", h->status, (int)h->reason.len, h->reason.p);
	else /* an empty reason (HTTP/2 has none): the standard one */
		appendf(&hc->resp_head, "HTTP/1.1 %d %s\r\n", h->status, reason_phrase((unsigned)h->status));
	for (i = 0; i < h->n_fields; i++) {
		const struct sk_h1_field *f = &h->fields[i];

		if (hop_by_hop(f->name.p, f->name.len))
			continue;
		if (ieq(f->name.p, f->name.len, "server")) {
			server_seen = true;
			if (hc->cfg->server_header == SK_SERVER_OVERWRITE)
				continue;
		}
		if (ieq(f->name.p, f->name.len, "x-envoy-upstream-service-time"))
			continue;
		if (nl && removed(lv, nl, true, f->name.p, f->name.len))
			continue;
		if (hc->cors.cors_request && sk_cors_overrides(&hc->cors, f->name.p, f->name.len))
			continue; /* replaced by the CORS filter's */
		append(&hc->resp_head, f->name.p, f->name.len);
		appends(&hc->resp_head, ": ");
		append(&hc->resp_head, f->value.p, f->value.len);
		appends(&hc->resp_head, "\r\n");
	}
	if (h->has_content_length && h->status != 304 && (h->status >= 200 && h->status != 204))
		appendf(&hc->resp_head, "content-length: %" PRIu64 "\r\n", h->content_length);
	else if (hc->down_framing == DOWN_CHUNKED)
		appends(&hc->resp_head, "transfer-encoding: chunked\r\n");
	else if (hc->down_framing == DOWN_TUNNEL)
		appendf(&hc->resp_head, "connection: upgrade\r\nupgrade: %s\r\n", hc->upgrade_proto);
	if (hc->cfg->server_header == SK_SERVER_OVERWRITE ||
	    (hc->cfg->server_header == SK_SERVER_APPEND_IF_ABSENT && !server_seen))
		appendf(&hc->resp_head, "server: %s\r\n", hc->cfg->server_name);
	appendf(&hc->resp_head, "x-envoy-upstream-service-time: %.0f\r\n", hc->service_ms);
	if (nl) {
		/* adds see the response as it came, plus what was already written */
		add_headers(hc, &hc->resp_head, lv, nl, true, resp_present);
	}
	cors_response_headers(hc, &hc->resp_head);
	if (hc->down_close && hc->down_framing != DOWN_TUNNEL)
		appends(&hc->resp_head, "connection: close\r\n");
	appends(&hc->resp_head, "\r\n");
	emit_head(hc, hc->down_framing != DOWN_NONE);
	hc->resp_started = true;
}

/* The upstream accepted the upgrade (101): from here bytes flow raw both ways until one
 * side closes; the route timeout no longer applies, the stream idle timeout does. */
static void tunnel_begin(struct sk_http_conn *hc)
{
	struct sk_worker *w = hc->w;

	hc->tunnel = true;
	ev_timer_stop(w->loop, &hc->rq_timer);
	ev_timer_stop(w->loop, &hc->try_timer);
}


static void response_done(struct sk_http_conn *hc, bool reusable)
{
	struct sk_worker *w = hc->w;
	struct upconn *u = hc->u;
	double ms = (ev_now(w->loop) - hc->up_start) * 1000.0;

	emit_end(hc);
	hc->resp_done = true;
	sk_stat_inc(w->shard, u->cluster->st.upstream_rq_completed);
	sk_stat_record(w->shard, u->cluster->st.upstream_rq_time, ms > 0 ? (uint64_t)ms : 0);
	up_release(hc, reusable && hc->req_done);
	if (!hc->req_done) {
		/* an early response: the rest of the request body goes nowhere; close after */
		hc->close_after = true;
	}
	stream_end(hc);
}

/* Parses what the upstream sent and streams it downstream. */
static void up_process(struct sk_http_conn *hc)
{
	struct upconn *u = hc->u;
	struct sk_h1_event ev;
	bool response_head_counted = false;

	while (hc->u == u && u != NULL && !hc->must_close) {
		if (pending(&hc->dout) > hc->limit) {
			ev_io_stop(hc->w->loop, &u->rio); /* resumed when dout drains */
			hc->up_paused = true;
			return;
		}
		sk_h1_parse(u->rp, u->in.p ? u->in.p + u->in.off : "", pending(&u->in), &ev);
		switch (ev.type) {
		case SK_H1_EV_NEED_MORE:
			consume(&u->in, ev.consumed);
			return;
		case SK_H1_EV_HEAD:
			if (ev.head->status == 101 && hc->upgrade) {
				response_head(hc, ev.head, false);
				tunnel_begin(hc);
				consume(&u->in, ev.consumed);
				break;
			}
			if (ev.head->status < 200) {
				/* interim responses (100 Continue) are not forwarded: skiff answered
				 * Expect itself */
				consume(&u->in, ev.consumed);
				break;
			}
			if (hc->rp && retriable_response(hc, ev.head)) {
				unsigned st = (unsigned)ev.head->status;
				int k;

				sk_stat_inc(hc->w->shard, u->cluster->st.upstream_rq_class[st / 100]);
				if ((k = sk_http_code_index(st)) >= 0)
					sk_cluster_count_code(hc->w->shard, u->cluster, k);
				if (maybe_retry(hc, TRY_STATUS, st))
					return;
				/* this response goes downstream: its stats are already counted */
				response_head_counted = true;
			}
			response_head(hc, ev.head, response_head_counted);
			consume(&u->in, ev.consumed);
			break;
		case SK_H1_EV_BODY:
			if (hc->resp_started)
				emit_body(hc, ev.data.p, ev.data.len);
			consume(&u->in, ev.consumed);
			break;
		case SK_H1_EV_TRAILERS:
			if (hc->resp_started)
				emit_trailers(hc, ev.trailers, ev.n_trailers);
			consume(&u->in, ev.consumed);
			break;
		case SK_H1_EV_DONE:
			consume(&u->in, ev.consumed);
			if (hc->tunnel && !hc->tunnel_up) {
				/* the 101 is whole: the client's waiting bytes may go */
				hc->tunnel_up = true;
				hc->ws_wait = false;
				process(hc);
				break;
			}
			/* reusable when the response allowed it and nothing follows it unasked */
			response_done(hc, hc->up_keep_alive && pending(&u->in) == 0);
			return;
		case SK_H1_EV_ERROR:
			sk_log_debug(SK_LOG_HTTP, "[C%llu] http: bad response from upstream: %s",
				     (unsigned long long)hc->c->id, ev.reason ? ev.reason : "?");
			sk_stat_inc(hc->w->shard, u->cluster->st.upstream_cx_protocol_error);
			upstream_failure(hc, 502, "UPE", "upstream connect error or disconnect/reset before "
				"headers. reset reason: protocol error");
			return;
		}
	}
}

/* Envoy charges the upstream codes of locally generated upstream failures (UF, UT, UC, UPE). */
static void charge(struct sk_http_conn *hc, unsigned code)
{
	int k;

	if (hc->cluster == NULL)
		return;
	sk_stat_inc(hc->w->shard, hc->cluster->st.upstream_rq_class[code / 100]);
	if ((k = sk_http_code_index(code)) >= 0)
		sk_cluster_count_code(hc->w->shard, hc->cluster, k);
}

static void up_eof(struct sk_http_conn *hc, int err)
{
	struct upconn *u = hc->u;
	struct sk_h1_event ev;

	if (sk_h1_parse_eof(u->rp, &ev) == SK_H1_EV_DONE && hc->resp_started) {
		/* a close-delimited body ends here */
		response_done(hc, false);
		return;
	}
	sk_log_debug(SK_LOG_HTTP, "[C%llu] http: upstream closed%s%s (%s response)", (unsigned long long)hc->c->id,
		     err ? ": " : "", err ? strerror(err) : "", hc->resp_started ? "mid" : "before the");
	if (!hc->resp_started && hc->replayable && u->reused && pending(&u->in) == 0) {
		/* a pooled connection the upstream had closed as we picked it: the request (no
		 * body, nothing answered) goes again on a new connection, once */
		hc->replayable = false;
		up_release(hc, false);
		hc->up_addr.len = 0;
		forward(hc);
		return;
	}
	sk_stat_inc(hc->w->shard, u->cluster->st.upstream_rq_rx_reset);
	if (!hc->resp_started)
		charge(hc, 503);
	if (maybe_retry(hc, TRY_RESET, 0))
		return;
	upstream_failure(hc, 503, hc->retry_exhausted ? "UC,URX" : "UC", "upstream connect error or disconnect/reset before headers. reset "
		"reason: connection termination");
}

/* Bytes TLS already decrypted raise no readiness on the socket: come back for them. */
static void up_tls_kick(struct upconn *u)
{
	if (u->tls != NULL && u->connected && ev_is_active(&u->rio) && sk_tls_pending(u->tls) > 0)
		ev_feed_event(u->w->loop, &u->rio, EV_READ);
}

/* One read from the upstream into u->in, then the response parser. */
static void up_read(struct upconn *u)
{
	struct sk_http_conn *hc = u->hc;
	ssize_t n;
	int e;

	if (reserve(&u->in, READ_CHUNK) < 0) {
		upstream_failure(hc, 503, "UF", "out of memory");
		return;
	}
	n = sk_tls_io_read(u->tls, u->fd, u->in.p + u->in.len, u->in.cap - u->in.len, &u->tls_rd_wants_write);
	e = n < 0 ? (int)-n : 0;
	if (u->tls_rd_wants_write) {
		ev_io_start(u->w->loop, &u->wio); /* on_up_write reads again */
		return;
	}
	if (n == -EPROTO && u->tls != NULL)
		sk_log_debug(SK_LOG_HTTP, "[C%llu] http: upstream TLS: %s", (unsigned long long)hc->c->id,
			     sk_tls_failure_reason(u->tls));
	if (n > 0) {
		u->in.len += (size_t)n;
		sk_stat_add(hc->w->shard, u->cluster->st.upstream_cx_rx_bytes_total, (uint64_t)n);
		hc->replayable = false;
		arm_idle(hc);
		up_process(hc);
		if (hc->u == u)
			up_tls_kick(u);
	} else if (n == 0 || (e != EAGAIN && e != EINTR)) {
		up_eof(hc, n == 0 ? 0 : e);
	}
}

static void on_up_read(struct ev_loop *loop, ev_io *io, int revents)
{
	struct upconn *u = io->data;
	struct sk_http_conn *hc = u->hc;

	(void)loop;
	(void)revents;
	hc->in_callback = true;
	if (!u->connected || u->tls_wr_wants_read) {
		/* the TLS handshake, or a TLS write, waited for the socket to become readable */
		bool connecting = !u->connected;

		up_write(u);
		if (connecting || hc->u != u) {
			finish_callback(hc);
			return;
		}
	}
	up_read(u);
	finish_callback(hc);
}

/* ---------------------------------------------------------------------------------- */
/* forwarding                                                                          */

static void start_route_timer(struct sk_http_conn *hc)
{
	double t = hc->route ? hc->rr.timeout : 15.0; /* the route's, or x-envoy-upstream-rq-timeout-ms */

	if (!hc->timer_is_route) {
		/* the route timeout spans every try */
		ev_timer_stop(hc->w->loop, &hc->rq_timer);
		hc->timer_is_route = true;
		if (t > 0) {
			ev_timer_set(&hc->rq_timer, t, 0.);
			ev_timer_start(hc->w->loop, &hc->rq_timer);
		}
	}
	ev_timer_stop(hc->w->loop, &hc->try_timer);
	if (hc->u && hc->rp && hc->rp->per_try_timeout > 0) {
		ev_timer_set(&hc->try_timer, hc->rp->per_try_timeout, 0.);
		ev_timer_start(hc->w->loop, &hc->try_timer);
	}
}

/* The path as forwarded: prefix_rewrite / regex_rewrite of the route. */
static void rewrite_path(struct sk_http_conn *hc, struct buf *out)
{
	const struct sk_route *r = hc->route;
	const char *p = hc->path.p;
	size_t n = hc->path.len;

	if (r->fwd.prefix_rewrite && r->path_kind != SK_PATH_REGEX && r->path_len <= n) {
		appends(out, r->fwd.prefix_rewrite);
		append(out, p + r->path_len, n - r->path_len);
		return;
	}
	if (r->fwd.regex_rewrite) {
		const char *q = memchr(p, '?', n);
		size_t plen = q ? (size_t)(q - p) : n;
		long m;

		if (reserve(out, plen * 2 + 1024) == 0) {
			m = sk_regex_replace(r->fwd.regex_rewrite, p, plen, out->p + out->len, out->cap - out->len);
			if (m >= 0) {
				out->len += (size_t)m;
				append(out, p + plen, n - plen);
				return;
			}
		}
	}
	append(out, p, n);
}

/* Request headers the upstream never sees: the x-envoy-* control headers the connection
 * manager strips from external requests or the router consumes, and the route
 * configuration's internal_only_headers on external requests. */
static bool envoy_header_dropped(const struct sk_http_conn *hc, const char *n, size_t len)
{
	const struct sk_route_config *rc = hc->route->vhost->config;

	if (sk_retry_header_stripped(n, len, hc->internal, hc->cfg->use_remote_address && !hc->internal))
		return true;
	for (size_t i = 0; !hc->internal && rc && i < rc->n_internal_only_headers; i++)
		if (ieq(n, len, rc->internal_only_headers[i]))
			return true;
	return false;
}

/* The request head for the upstream, in hc->up_head. */
static void build_request(struct sk_http_conn *hc, const struct sk_host *host)
{
	struct buf *b = &hc->up_head;
	const struct sk_header_mutations *lv[4];
	size_t nl = mutation_levels(hc, lv), i;
	const struct sk_route_forward *f = &hc->route->fwd;
	const char *host_rw = hc->wc && hc->wc->host_rewrite_literal ? hc->wc->host_rewrite_literal
									: f->host_rewrite_literal;
	size_t path_start;

	b->off = b->len = 0;
	append(b, hc->method.p, hc->method.len);
	appends(b, " ");
	path_start = b->len;
	rewrite_path(hc, b);
	if (b->len - path_start != hc->path.len || memcmp(b->p + path_start, hc->path.p, hc->path.len) != 0)
		appendf(&hc->extra, "x-envoy-original-path: %.*s\r\n", (int)hc->path.len, hc->path.p);
	appends(b, " HTTP/1.1\r\n");
	if (host_rw)
		appendf(b, "host: %s\r\n", host_rw);
	else if (f->auto_host_rewrite && host && host->hostname && host->hostname[0])
		appendf(b, "host: %s\r\n", host->hostname);
	else
		appendf(b, "host: %.*s\r\n", (int)hc->authority.len, hc->authority.p ? hc->authority.p : "");
	for (i = 0; i < hc->n_fields; i++) {
		const struct sk_h1_field *fl = &hc->fields[i];
		const char *n = fl->name.p;
		size_t len = fl->name.len;

		if (ieq(n, len, "host") || hop_by_hop(n, len))
			continue;
		if (ieq(n, len, "expect") && hc->expect_continue)
			continue;
		if (ieq(n, len, "x-forwarded-for") || ieq(n, len, "x-forwarded-proto") ||
		    ieq(n, len, "x-request-id") || ieq(n, len, "x-envoy-original-path") ||
		    ieq(n, len, "x-forwarded-client-cert"))
			continue; /* re-emitted from extra */
		if (hc->cfg->underscores == SK_UNDERSCORES_DROP && memchr(n, '_', len))
			continue;
		if (nl && removed(lv, nl, false, n, len))
			continue;
		if (envoy_header_dropped(hc, n, len))
			continue;
		append(b, n, len);
		appends(b, ": ");
		append(b, fl->value.p, fl->value.len);
		appends(b, "\r\n");
	}
	append(b, hc->extra.p, hc->extra.len);
	if (hc->upgrade)
		appendf(b, "connection: upgrade\r\nupgrade: %s\r\n", hc->upgrade_proto);
	if (nl)
		add_headers(hc, b, lv, nl, false, req_present);
	if (hc->req_framing == SK_H1_BODY_LENGTH) {
		const struct sk_h1_field *cl = sk_h1_field_find(hc->fields, hc->n_fields, "content-length");

		appendf(b, "content-length: %.*s\r\n", cl ? (int)cl->value.len : 1, cl ? cl->value.p : "0");
	} else if (hc->req_framing == SK_H1_BODY_CHUNKED) {
		appends(b, "transfer-encoding: chunked\r\n");
	} else if (hc->method_id == SK_H1_M_POST || hc->method_id == SK_H1_M_PUT) {
		appends(b, "content-length: 0\r\n");
	}
	appends(b, "\r\n");
}

/* Picks the host, takes a pooled connection or opens one, and sends the request head. */
/* A circuit breaker (max_requests, max_pending_requests) refuses the request: 503 UO. */
static void rq_overflow(struct sk_http_conn *hc, struct sk_cluster *cl)
{
	sk_stat_inc(hc->w->shard, cl->st.upstream_rq_pending_overflow);
	local_reply(hc, 503, "UO", "upstream connect error or disconnect/reset before headers. reset reason: "
		    "overflow", NULL);
}

static void forward(struct sk_http_conn *hc)
{
	struct sk_conn *c = hc->c;
	struct sk_worker *w = hc->w;
	struct sk_cluster *cl = hc->cluster;
	struct sk_host *host = NULL;
	struct sk_host_set *hs = NULL;
	struct sk_addr addr;
	struct upconn *u;
	struct sk_tls_ctx *tls_ctx = NULL;
	bool want_h2, needs_tls;

	if (atomic_load(&cl->active_rq) >= cl->config->cb[0].max_requests) {
		rq_overflow(hc, cl);
		return;
	}
	want_h2 = cl->config->http_protocol == SK_UPSTREAM_HTTP2 ||
		  (cl->config->http_protocol == SK_UPSTREAM_DOWNSTREAM && hc->h2 != NULL);
	if (cl->config->type == SK_CLUSTER_ORIGINAL_DST) {
		/* the destination the client asked for, over the cluster's transport_socket */
		addr = c->local;
		needs_tls = cl->config->tls_default_ctx != NULL;
		if (needs_tls)
			tls_ctx = sk_cluster_tls_ctx_acquire(cl, false);
	} else {
		uint64_t h = hc->has_hash ? hc->hash : rnd();

		host = sk_cluster_pick(cl, w->index, h, hc->has_hash, &hs);
		if (host && hc->retries > 0 && hc->rp && hc->rp->previous_hosts) {
			/* retry_host_predicate previous_hosts: pick again (up to
			 * host_selection_retry_max_attempts times) while the host was tried */
			uint32_t a, max = hc->rp->host_selection_max_attempts ? hc->rp->host_selection_max_attempts : 1;

			for (a = 1; host && a <= max; a++) {
				size_t i;
				bool seen = false;

				for (i = 0; i < hc->n_tried && !seen; i++)
					seen = sk_http_same_addr(&hc->tried[i], &host->addr);
				if (!seen)
					break;
				h = hc->has_hash ? hc->hash + a * 0x9E3779B97F4A7C15ull : rnd();
				host = sk_cluster_pick(cl, w->index, h, hc->has_hash, &hs);
			}
		}
		if (host == NULL) {
			sk_stat_inc(w->shard, cl->st.upstream_cx_none_healthy);
			local_reply(hc, 503, "UH", "no healthy upstream", NULL);
			return;
		}
		needs_tls = host->tls;
		if (needs_tls)
			tls_ctx = sk_cluster_tls_ctx_acquire(cl, host->tls_istio);
		addr = host->addr;
	}
	if (needs_tls && tls_ctx == NULL) {
		/* never send in clear what the config says must be TLS */
		char up[SK_ADDR_TEXT_MAX];

		sk_addr_format(&addr, up, sizeof(up));
		sk_log_warn(SK_LOG_UPSTREAM, "[C%llu] cluster '%s': %s needs a TLS transport socket %s",
			    (unsigned long long)c->id, cl->config->name, up,
			    "whose certificates wait for SDS (not served yet)");
		sk_stat_inc(w->shard, cl->upstream_context_secrets_not_ready);
		sk_stat_inc(w->shard, cl->st.upstream_cx_connect_fail);
		local_reply(hc, 503, "UF", "upstream connect error or disconnect/reset before headers. "
			    "reset reason: connection failure", NULL);
		sk_tls_ctx_unref(tls_ctx);
		return;
	}
	hc->up_addr = addr;
	hc->try_sent = false;
	if (hc->n_tried < sizeof(hc->tried) / sizeof(hc->tried[0]))
		hc->tried[hc->n_tried++] = addr;
	if (!hc->forwarding) {
		/* first attempt: the head, the counts */
		build_request(hc, host);
		sk_stat_inc(w->shard, hc->st->rq_total);
		sk_stat_inc(w->shard, cl->st.upstream_rq_total);
		hc->up_start = ev_now(w->loop);
		hc->forwarding = true;
		hc->replayable = hc->req_framing == SK_H1_BODY_NONE && !hc->upgrade;
		if (hc->expect_continue && !hc->req_done && hc->h2 == NULL)
			appends(&hc->dout, "HTTP/1.1 100 Continue\r\n\r\n");
	} else if (!hc->retrying && !hc->dequeued) {
		/* a stale pooled connection's request sent again (not a policy retry) */
		sk_stat_inc(w->shard, cl->st.upstream_rq_retry);
	}
	/* istio.alpn: what a TLS connection offers depends on the HTTP version it will speak */
	hc->up_alpn = NULL;
	if (tls_ctx != NULL && hc->cfg->alpn_filter) {
		int v = want_h2 ? SK_ALPN_HTTP2
			: cl->config->http_protocol == SK_UPSTREAM_DOWNSTREAM && hc->minor == 0 ? SK_ALPN_HTTP10
												 : SK_ALPN_HTTP11;

		hc->up_alpn = hc->cfg->alpn_override[v];
	}
	u = want_h2 ? NULL : pool_get(cl, &addr, tls_ctx, hc->up_alpn);
	if (u == NULL && !want_h2 && atomic_load(&cl->active_cx) >= cl->config->cb[0].max_connections &&
	    cl->slots[w->index].n_cx > 0) {
		/* every connection the cluster may open is open: wait for one, if the line is
		 * not full (max_pending_requests) */
		sk_tls_ctx_unref(tls_ctx);
		if (atomic_load(&cl->pending_rq) >= cl->config->cb[0].max_pending_requests) {
			rq_overflow(hc, cl);
			return;
		}
		q_push(hc);
		if (hc->req_done)
			start_route_timer(hc);
		return;
	}
	if (u != NULL) {
		sk_tls_ctx_unref(tls_ctx);
		u->hc = hc;
		hc->u = u;
		hc->up_local = u->local;
		note_up_tls(hc, u);
		ev_io_start(w->loop, &u->rio);
	} else {
		u = want_h2 ? h2_open(hc, cl, host, hs, &addr, tls_ctx) : up_open(hc, cl, host, hs, &addr, tls_ctx);
		sk_tls_ctx_unref(tls_ctx); /* up_open and h2_open took their own */
		if (u == NULL)
			return;
	}
	sk_stat_add(w->shard, cl->st.upstream_rq_active, 1);
	atomic_fetch_add(&cl->active_rq, 1);
	hc->upstream_rq_counted = true;
	sk_h1_parser_expect_response(u->rp, hc->method_id, hc->upgrade);
	append(&u->out, hc->up_head.p, hc->up_head.len);
	if (pending(&hc->body_buf) > 0)
		append(&u->out, hc->body_buf.p + hc->body_buf.off, pending(&hc->body_buf)); /* a retry */
	if (hc->req_done)
		start_route_timer(hc);
	if (u->connected)
		up_write(u);
}

/* ---------------------------------------------------------------------------------- */
/* requests                                                                            */

/* Percent-encodes a PEM for XFCC's Cert= and Chain= (all but RFC 3986's unreserved). */
static void append_pem_encoded(struct buf *b, const char *pem)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)pem; *p; p++) {
		char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};

		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~')
			append(b, p, 1);
		else
			append(b, e, 3);
	}
}

/* Appends ";<key>=<item>" (no ';' first) for each item of a comma-joined list. */
static void append_each(struct buf *b, size_t start, const char *key, char *list)
{
	for (char *tok = list, *end; tok != NULL; tok = end) {
		end = strchr(tok, ',');
		if (end != NULL)
			*end++ = '\0';
		appendf(b, "%s%s=%s", b->len > start ? ";" : "", key, tok);
	}
}

/* This hop's x-forwarded-client-cert element for an mTLS connection, malloc'd (NULL when out
 * of memory): By (our URI SANs), Hash (SHA-256 of the client's certificate), then what
 * set_current_client_cert_details asks: Cert, Chain, Subject, URI, DNS. The same for every
 * request of the connection: made once (sk_conn's xfcc). */
static char *xfcc_element(const struct sk_hcm_config *cfg, const struct sk_tls_conn *t)
{
	struct buf e = {0};
	char s[1024], digest[65];

#define SEP() (e.len > 0 ? ";" : "")
	if (sk_tls_local_uri_san(t, s, sizeof(s)) > 0)
		append_each(&e, 0, "By", s);
	if (sk_tls_peer_cert_digest(t, digest) == 0)
		appendf(&e, "%sHash=%s", SEP(), digest);
	for (int k = 0; k < 2; k++) {
		char *pem;

		if (!(k == 0 ? cfg->xfcc_cert : cfg->xfcc_chain) || (pem = sk_tls_peer_pem(t, k == 1)) == NULL)
			continue;
		appendf(&e, "%s%s=\"", SEP(), k == 0 ? "Cert" : "Chain");
		append_pem_encoded(&e, pem);
		appends(&e, "\"");
		free(pem);
	}
	if (cfg->xfcc_subject) {
		sk_tls_peer_subject(t, s, sizeof(s));
		appendf(&e, "%sSubject=\"%s\"", SEP(), s);
	}
	if (cfg->xfcc_uri) {
		/* the key is there even when the certificate has no URI SAN; the first one */
		char *comma;

		if (sk_tls_peer_uri_san(t, s, sizeof(s)) < 0)
			s[0] = '\0';
		if ((comma = strchr(s, ',')) != NULL)
			*comma = '\0';
		appendf(&e, "%sURI=%s", SEP(), s);
	}
	if (cfg->xfcc_dns && sk_tls_peer_dns_san(t, s, sizeof(s)) > 0)
		append_each(&e, 0, "DNS", s);
#undef SEP
	if (append(&e, "", 1) < 0) {
		buf_free(&e);
		return NULL;
	}
	return (char *)e.p;
}

/* x-forwarded-client-cert as Envoy's forward_client_cert_details: without a client
 * certificate the client's header is dropped (kept only by ALWAYS_FORWARD_ONLY); with one,
 * FORWARD_ONLY keeps it, SANITIZE drops it, APPEND_FORWARD appends and SANITIZE_SET sets
 * this hop's element (xfcc_element). */
static void add_xfcc(struct sk_http_conn *hc)
{
	const struct sk_hcm_config *cfg = hc->cfg;
	struct sk_tls_conn *t = hc->c->tls;
	bool mtls = t != NULL && sk_tls_peer_has_cert(t), any = false;
	struct buf *b = &hc->extra;
	size_t i;

	if ((!mtls && cfg->xfcc == SK_XFCC_ALWAYS_FORWARD_ONLY) ||
	    (mtls && (cfg->xfcc == SK_XFCC_FORWARD_ONLY || cfg->xfcc == SK_XFCC_ALWAYS_FORWARD_ONLY ||
		      cfg->xfcc == SK_XFCC_APPEND_FORWARD))) {
		for (i = 0; i < hc->n_fields; i++) {
			const struct sk_h1_field *f = &hc->fields[i];

			if (!ieq(f->name.p, f->name.len, "x-forwarded-client-cert"))
				continue;
			appends(b, any ? "," : "x-forwarded-client-cert: ");
			append(b, f->value.p, f->value.len);
			any = true;
		}
	}
	if (!mtls || cfg->xfcc == SK_XFCC_SANITIZE || cfg->xfcc == SK_XFCC_FORWARD_ONLY ||
	    cfg->xfcc == SK_XFCC_ALWAYS_FORWARD_ONLY) {
		if (any)
			appends(b, "\r\n");
		return;
	}
	if (hc->c->xfcc == NULL && (hc->c->xfcc = xfcc_element(cfg, t)) == NULL) {
		if (any)
			appends(b, "\r\n");
		return;
	}
	appends(b, any ? "," : "x-forwarded-client-cert: ");
	appends(b, hc->c->xfcc);
	appends(b, "\r\n");
}

static void add_forwarding_headers(struct sk_http_conn *hc)
{
	const struct sk_hcm_config *cfg = hc->cfg;
	struct sk_conn *c = hc->c;
	const struct sk_h1_field *rid = sk_h1_field_find(hc->fields, hc->n_fields, "x-request-id");
	const struct sk_h1_field *xfp = sk_h1_field_find(hc->fields, hc->n_fields, "x-forwarded-proto");
	size_t i;
	bool any = false;

	/* x-forwarded-for: the client's values (all of them, joined), plus the peer with
	 * use_remote_address unless skip_xff_append */
	for (i = 0; i < hc->n_fields; i++) {
		const struct sk_h1_field *f = &hc->fields[i];

		if (!ieq(f->name.p, f->name.len, "x-forwarded-for"))
			continue;
		appends(&hc->extra, any ? "," : "x-forwarded-for: ");
		append(&hc->extra, f->value.p, f->value.len);
		any = true;
	}
	if (cfg->use_remote_address && !cfg->skip_xff_append && c->peer.ss.ss_family != AF_UNIX) {
		char ip[SK_ADDR_TEXT_MAX];
		struct sk_access_log_entry e = { .downstream_remote = &c->peer };

		sk_access_log_format("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", &e, ip, sizeof(ip));
		appends(&hc->extra, any ? "," : "x-forwarded-for: ");
		appends(&hc->extra, ip);
		any = true;
	}
	if (any)
		appends(&hc->extra, "\r\n");
	/* x-forwarded-proto: ours at the edge, else the client's when it sent one */
	if (xfp && !cfg->use_remote_address)
		appendf(&hc->extra, "x-forwarded-proto: %.*s\r\n", (int)xfp->value.len, xfp->value.p);
	else
		appends(&hc->extra, c->tls != NULL ? "x-forwarded-proto: https\r\n" : "x-forwarded-proto: http\r\n");
	add_xfcc(hc);
	/* x-request-id: kept unless an edge proxy should not trust it */
	if (rid && (cfg->preserve_external_request_id || !cfg->use_remote_address || !cfg->generate_request_id)) {
		appendf(&hc->extra, "x-request-id: %.*s\r\n", (int)rid->value.len, rid->value.p);
	} else if (cfg->generate_request_id) {
		char id[37];

		uuid4(id);
		appendf(&hc->extra, "x-request-id: %s\r\n", id);
	}
}

static void redirect(struct sk_http_conn *hc)
{
	const struct sk_route_redirect *rd = &hc->route->redirect;
	struct buf loc = {0};
	struct sk_slice auth = { hc->authority.p ? hc->authority.p : "", hc->authority.len };
	const char *p = hc->path.p;
	size_t n = hc->path.len;
	const char *q = memchr(p, '?', n);
	size_t plen = q ? (size_t)(q - p) : n;

	appends(&loc, rd->scheme ? rd->scheme : "http");
	appends(&loc, "://");
	if (rd->host) {
		appends(&loc, rd->host);
	} else {
		size_t ps = sk_route_host_port_start(auth);

		append(&loc, auth.ptr, ps == SIZE_MAX || rd->port || rd->scheme ? (ps == SIZE_MAX ? auth.len : ps) : auth.len);
	}
	if (rd->port)
		appendf(&loc, ":%u", rd->port);
	if (rd->path) {
		appends(&loc, rd->path);
	} else if (rd->prefix_rewrite && hc->route->path_len <= plen) {
		appends(&loc, rd->prefix_rewrite);
		append(&loc, p + hc->route->path_len, plen - hc->route->path_len);
	} else {
		append(&loc, p, plen);
	}
	if (q && !rd->strip_query && !(rd->path && strchr(rd->path, '?')))
		append(&loc, q, n - plen);
	append(&loc, "", 1);
	sk_stat_inc(hc->w->shard, hc->st->rq_redirect);
	local_reply(hc, rd->code ? rd->code : 301, NULL, NULL, loc.p ? loc.p : "/");
	buf_free(&loc);
}

/* Response header mutations on local replies of a route (direct responses, redirects). */
static void direct_response(struct sk_http_conn *hc)
{
	const struct sk_route_direct *d = &hc->route->direct;
	const struct sk_header_mutations *lv[4];
	size_t nl = mutation_levels(hc, lv);
	unsigned code = d->status;

	sk_stat_inc(hc->w->shard, hc->st->rq_direct_response);
	hc->code = code;
	if (!hc->req_done)
		hc->discard_body = true;
	if (!hc->keep_alive)
		hc->close_after = true;
	hc->resp_head.off = hc->resp_head.len = 0;
	appendf(&hc->resp_head, "HTTP/1.1 %u %s\r\n", code, reason_phrase(code));
	appendf(&hc->resp_head, "content-length: %zu\r\n", d->body ? d->body_len : 0);
	if (d->body && d->body_len)
		appends(&hc->resp_head, "content-type: text/plain\r\n");
	if (hc->cfg->server_header != SK_SERVER_PASS_THROUGH)
		appendf(&hc->resp_head, "server: %s\r\n", hc->cfg->server_name);
	if (nl)
		add_headers(hc, &hc->resp_head, lv, nl, true, resp_present);
	if (hc->close_after)
		appends(&hc->resp_head, "connection: close\r\n");
	appends(&hc->resp_head, "\r\n");
	{
		bool body = d->body && d->body_len > 0 && hc->method_id != SK_H1_M_HEAD;

		emit_head(hc, body);
		if (body)
			emit_body(hc, d->body, d->body_len);
		emit_end(hc);
	}
	hc->resp_started = hc->resp_done = true;
	hc->down_close = hc->close_after;
}

/* A new request's head: copy it, check it, route it, and start forwarding or answer. */
/* The value of cookie `name` in the request's cookie headers, or {NULL, 0}. */
static struct sk_slice find_cookie(const struct sk_http_conn *hc, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < hc->n_fields; i++) {
		const char *p, *end;

		if (!ieq(hc->fields[i].name.p, hc->fields[i].name.len, "cookie"))
			continue;
		p = hc->fields[i].value.p;
		end = p + hc->fields[i].value.len;
		while (p < end) {
			const char *semi = memchr(p, ';', (size_t)(end - p)), *e = semi ? semi : end, *eq;

			while (p < e && (*p == ' ' || *p == '\t'))
				p++;
			eq = memchr(p, '=', (size_t)(e - p));
			if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
				const char *v = eq + 1, *ve = e;

				while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
					ve--;
				if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
					v++;
					ve--;
				}
				return (struct sk_slice){ v, (size_t)(ve - v) };
			}
			p = semi ? semi + 1 : end;
		}
	}
	return (struct sk_slice){ NULL, 0 };
}

/* The first value of query parameter `name` in the request's path, or {NULL, 0}. */
static struct sk_slice find_query(const struct sk_http_conn *hc, const char *name)
{
	const char *p = memchr(hc->path.p, '?', hc->path.len), *end = hc->path.p + hc->path.len;
	size_t nl = strlen(name);

	if (p == NULL)
		return (struct sk_slice){ NULL, 0 };
	for (p++; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end, *eq;
		const char *ne;

		eq = memchr(p, '=', (size_t)(e - p));
		ne = eq ? eq : e;
		if ((size_t)(ne - p) == nl && memcmp(p, name, nl) == 0)
			return eq ? (struct sk_slice){ eq + 1, (size_t)(e - eq - 1) } : (struct sk_slice){ e, 0 };
		p = amp ? amp + 1 : end;
	}
	return (struct sk_slice){ NULL, 0 };
}

/* The route's hash_policy (Envoy's HashPolicyImpl::generateHash): each policy that yields a
 * value is folded in (rotate left by one, xor); a terminal policy with a hash so far stops.
 * Used by RING_HASH and MAGLEV clusters (the other balancers ignore it). */
static void route_hash(struct sk_http_conn *hc, const struct sk_route_request *rq)
{
	const struct sk_route_forward *f = &hc->route->fwd;
	bool have = false;
	uint64_t hash = 0;

	for (size_t i = 0; i < f->n_hash; i++) {
		const struct sk_hash_policy *hp = &f->hash[i];
		struct sk_slice v = { NULL, 0 };
		char ip[INET6_ADDRSTRLEN];
		uint64_t nh;

		switch (hp->kind) {
		case SK_HASH_HEADER:
			v = sk_route_request_header(rq, hp->name, strlen(hp->name));
			break;
		case SK_HASH_COOKIE:
			v = find_cookie(hc, hp->name); /* an existing cookie only: none is generated */
			break;
		case SK_HASH_SOURCE_IP: {
			const struct sk_addr *a = &hc->c->peer;

			if (a->ss.ss_family == AF_INET &&
			    inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, ip, sizeof(ip)))
				v = (struct sk_slice){ ip, strlen(ip) };
			else if (a->ss.ss_family == AF_INET6 &&
				 inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, ip, sizeof(ip)))
				v = (struct sk_slice){ ip, strlen(ip) };
			break;
		}
		case SK_HASH_QUERY_PARAMETER:
			v = find_query(hc, hp->name);
			break;
		}
		if (v.ptr != NULL) {
			nh = sk_lb_hash(v.ptr, v.len);
			hash = have ? ((hash << 1) | (hash >> 63)) ^ nh : nh;
			have = true;
		}
		if (hp->terminal && have)
			break;
	}
	hc->hash = hash;
	hc->has_hash = have;
}

/* ---------------------------------------------------------------------------------- */
/* envoy.filters.http.fault                                                            */

static void route_continue(struct sk_http_conn *hc);

static bool fault_hit(const struct sk_fraction *f)
{
	return f->denominator > 0 && rnd() % f->denominator < f->numerator;
}

/* The fault config for this request: the most specific per-route one (weighted cluster,
 * route, virtual host, route config), else the filter's. */
static const struct sk_fault *fault_config(const struct sk_http_conn *hc)
{
	const struct sk_hcm_config *cfg = hc->cfg;
	const struct sk_route *r = hc->route;
	const struct sk_filter_configs *lv[4] = { hc->wc ? &hc->wc->filter_configs : NULL, &r->filter_configs,
						  &r->vhost->filter_configs, &r->vhost->config->filter_configs };
	const struct sk_route_fault *rf = hc->rds ? hc->rds->faults : cfg->route_faults;
	unsigned n = hc->rds ? hc->rds->n_faults : cfg->per_route_faults;

	for (size_t l = 0; n > 0 && l < 4; l++)
		for (size_t i = 0; lv[l] && i < n; i++)
			if (rf[i].fc == lv[l])
				return &rf[i].fault;
	return &cfg->fault_cfg;
}

/* The abort's dice (once per request): true when the request was answered. */
static bool fault_abort(struct sk_http_conn *hc)
{
	const struct sk_fault *ft = fault_config(hc);

	if (ft->has_abort && fault_hit(&ft->abort_pct)) {
		sk_stat_inc(hc->w->shard, hc->st->fault_aborts_injected);
		local_reply(hc, ft->abort_status, hc->flags && strcmp(hc->flags, "DI") == 0 ? "DI,FI" : "FI",
			    "fault filter abort", NULL);
		if (hc->req_done)
			stream_end(hc);
		return true;
	}
	return false;
}

static void on_fault_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_http_conn *hc = t->data;

	(void)loop;
	(void)revents;
	hc->in_callback = true;
	hc->fault_delaying = false;
	if (!fault_abort(hc))
		route_continue(hc);
	if (!hc->must_close && hc->active && !hc->req_done)
		process(hc); /* the request's body, held during the delay */
	finish_callback(hc);
}

/* The fault filter's decodeHeaders: a delay (the request waits, its body unread), then an
 * abort (a local reply). True when the request is delayed or answered. */
static bool fault_begin(struct sk_http_conn *hc)
{
	const struct sk_fault *ft = fault_config(hc);

	if (ft->has_delay && fault_hit(&ft->delay_pct)) {
		sk_stat_inc(hc->w->shard, hc->st->fault_delays_injected);
		hc->flags = "DI";
		hc->fault_delaying = true;
		ev_timer_set(&hc->fault_timer, ft->delay, 0.);
		ev_timer_start(hc->w->loop, &hc->fault_timer);
		return true;
	}
	return fault_abort(hc);
}

/* envoy.filters.http.cors's decodeHeaders on a routed request: decides (hc->cors), counts
 * cors.origin_valid / origin_invalid, and answers a preflight itself. Direct responses and
 * redirects have no route entry: the filter leaves them alone, as Envoy's. True when answered. */
static bool cors_begin(struct sk_http_conn *hc)
{
	const struct sk_route_request *rq = &hc->rq;

	if (hc->route->action != SK_ROUTE_FORWARD)
		return false;
	sk_cors_evaluate(&hc->cors, hc->route, sk_route_request_header(rq, "origin", 6), rq->method,
			 sk_route_request_header(rq, "access-control-request-method", 29),
			 sk_route_request_header(rq, "access-control-request-headers", 30),
			 sk_route_request_header(rq, "access-control-request-private-network", 38), rnd(), rnd());
	if (hc->cors.checked)
		sk_stat_inc(hc->w->shard, hc->cors.allowed ? hc->st->cors_origin_valid : hc->st->cors_origin_invalid);
	if (!hc->cors.preflight)
		return false;
	local_reply(hc, 200, NULL, NULL, NULL);
	return true;
}

/* The router's retry and timeout state of a forwarded request: whether it is internal (Envoy's
 * rule: then its x-envoy-* retry and timeout headers count, and the upstream sees
 * x-envoy-internal), and the route's retry policy and timeout with those headers merged. */
static void retry_begin(struct sk_http_conn *hc, const struct sk_route_forward *f, const struct sk_route_request *rq)
{
	struct sk_slice xff = {NULL, 0};
	size_t n_xff = 0;

	for (size_t i = 0; i < hc->n_fields; i++) {
		if (ieq(hc->fields[i].name.p, hc->fields[i].name.len, "x-forwarded-for")) {
			xff = (struct sk_slice){hc->fields[i].value.p, hc->fields[i].value.len};
			n_xff++;
		}
	}
	hc->internal = sk_retry_request_internal(hc->cfg->use_remote_address, hc->cfg->xff_num_trusted_hops,
						 &hc->c->peer, xff, n_xff);
	sk_retry_request_init(&hc->rr, f, rq, hc->internal);
	hc->rp = hc->rr.has_policy ? &hc->rr.policy : NULL;
	if (hc->internal)
		appends(&hc->extra, "x-envoy-internal: true\r\n");
}

/* Envoy: the HCM must list the upgrade type; a route's own upgrade_configs entry for it
 * overrides the HCM's enabled flag. */
static bool upgrade_allowed(const struct sk_http_conn *hc)
{
	const struct sk_hcm_config *cfg = hc->cfg;
	const struct sk_route *r = hc->route;
	size_t i;

	for (i = 0; i < cfg->n_upgrades; i++)
		if (strcmp(cfg->upgrades[i].type, hc->upgrade_proto) == 0)
			break;
	if (i == cfg->n_upgrades || r->action != SK_ROUTE_FORWARD)
		return false;
	for (size_t k = 0; k < r->fwd.n_upgrades; k++)
		if (strcmp(r->fwd.upgrades[k].type, hc->upgrade_proto) == 0)
			return r->fwd.upgrades[k].enabled;
	return cfg->upgrades[i].enabled;
}

static void request_route(struct sk_http_conn *hc);

/* An HTTP/1.x request head: copied out of the parser's buffer, then routed. */
static void request_head(struct sk_http_conn *hc, const struct sk_h1_head *h, const char *base)
{
	size_t i;

	stream_begin(hc);
	hc->minor = h->minor;
	hc->method_id = h->method_id;
	hc->keep_alive = h->keep_alive;
	hc->req_framing = h->framing;
	hc->expect_continue = h->expect_continue;
	hc->req_term_written = false;
	if (copy_head(hc, h, base) < 0) {
		hc->keep_alive = false;
		local_reply(hc, 503, "DPE", "out of memory", NULL);
		return;
	}
	if (h->tunnel && h->method_id == SK_H1_M_CONNECT) {
		/* CONNECT: no route has a connect_matcher (refused at translation) */
		hc->keep_alive = false;
		local_reply(hc, 404, "NR", NULL, NULL);
		return;
	}
	if (h->tunnel) {
		size_t n = h->upgrade_proto.len < sizeof(hc->upgrade_proto) - 1 ? h->upgrade_proto.len
										: sizeof(hc->upgrade_proto) - 1;

		for (i = 0; i < n; i++) {
			char ch = h->upgrade_proto.p[i];

			hc->upgrade_proto[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
		}
		hc->upgrade_proto[n] = '\0';
	}
	request_route(hc);
}

/* The request's fields are in place (either codec): check them, route, act. */
static void request_route(struct sk_http_conn *hc)
{
	struct sk_worker *w = hc->w;
	const struct sk_hcm_config *cfg = hc->cfg;
	const struct sk_route_config *rc;
	struct sk_route_request rq = {0};
	size_t i, n = 0;

	/* Routes and clusters come from the worker's newest configuration, so a long-lived
	 * connection sees RDS and CDS updates from its next request on (as in Envoy). */
	sk_snapshot_unref(hc->snap);
	hc->snap = sk_snapshot_ref(w->snapshot);
	hc->rds = cfg->routes ? NULL : sk_snapshot_route(hc->snap, cfg->rds_name);
	if (atomic_load_explicit(&hc->c->l->draining, memory_order_relaxed)) {
		/* the listener was replaced, removed or drained: this connection winds down */
		if (hc->h2)
			sk_h2_drain(hc->h2);
		else
			hc->keep_alive = false;
	}
	rc = cfg->routes ? cfg->routes : hc->rds ? hc->rds->rc : NULL;

	if (cfg->underscores == SK_UNDERSCORES_REJECT) {
		for (i = 0; i < hc->n_fields; i++)
			if (memchr(hc->fields[i].name.p, '_', hc->fields[i].name.len)) {
				hc->keep_alive = false;
				local_reply(hc, 400, "DPE", "Bad Request", NULL);
				return;
			}
	}
	if (hc->n_fields > hc->cap_rh) {
		struct sk_http_header *rh = realloc(hc->rh, hc->n_fields * sizeof(*rh));

		if (rh == NULL) {
			local_reply(hc, 503, "DPE", "out of memory", NULL);
			return;
		}
		hc->rh = rh;
		hc->cap_rh = hc->n_fields;
	}
	for (i = 0; i < hc->n_fields; i++) {
		if (cfg->underscores == SK_UNDERSCORES_DROP && memchr(hc->fields[i].name.p, '_', hc->fields[i].name.len))
			continue;
		hc->rh[n].name = (struct sk_slice){ hc->fields[i].name.p, hc->fields[i].name.len };
		hc->rh[n].value = (struct sk_slice){ hc->fields[i].value.p, hc->fields[i].value.len };
		n++;
	}
	rq.method = (struct sk_slice){ hc->method.p, hc->method.len };
	rq.authority = (struct sk_slice){ hc->authority.p ? hc->authority.p : "", hc->authority.len };
	if (cfg->strip_any_host_port)
		rq.authority = sk_route_host_strip_port(rq.authority, 0);
	else if (cfg->strip_matching_host_port)
		rq.authority = sk_route_host_strip_port(rq.authority, sk_addr_port(&hc->c->local));
	rq.path = (struct sk_slice){ hc->path.p, hc->path.len };
	rq.scheme = (struct sk_slice){ "http", 4 };
	rq.headers = hc->rh;
	rq.n_headers = n;
	rq.is_grpc = sk_route_is_grpc_content_type(sk_route_request_header(&rq, "content-type", 12));
	add_forwarding_headers(hc);

	hc->route = rc ? sk_route_table_match(rc, &rq, rnd()) : NULL;
	if (hc->route == NULL) {
		sk_log_debug(SK_LOG_HTTP, "[C%llu] http: no route for %.*s%.*s", (unsigned long long)hc->c->id,
			     (int)hc->authority.len, hc->authority.p ? hc->authority.p : "", (int)hc->path.len,
			     hc->path.p);
		sk_stat_inc(w->shard, hc->st->no_route);
		local_reply(hc, 404, "NR", NULL, NULL);
		return;
	}
	hc->rq = rq;
	if (hc->upgrade_proto[0] && !upgrade_allowed(hc)) {
		sk_stat_inc(w->shard, hc->st->downstream_rq_ws_on_non_ws_route);
		hc->keep_alive = false;
		local_reply(hc, 403, "UPGRADE_FAILED", NULL, NULL);
		return;
	}
	if (hc->upgrade_proto[0]) {
		/* Envoy counts an upgrade when the connection manager accepts it */
		hc->upgrade = true;
		sk_stat_inc(w->shard, hc->st->downstream_cx_upgrades_total);
		sk_stat_add(w->shard, hc->st->downstream_cx_upgrades_active, 1);
	}
	if (cfg->cors && cfg->cors_first && cors_begin(hc))
		return;
	if (cfg->fault && hc->route->action == SK_ROUTE_FORWARD &&
	    hc->route->fwd.cluster_kind == SK_ROUTE_CLUSTER_WEIGHTED) {
		/* as Envoy: the weighted cluster is chosen with the route, so its own
		 * typed_per_filter_config is the most specific one the filters see */
		hc->wc = sk_route_pick_weighted(&hc->route->fwd, &hc->rq, rnd());
	}
	if (cfg->fault && fault_begin(hc))
		return;
	route_continue(hc);
}

/* After the fault filter: the route's action. */
static void route_continue(struct sk_http_conn *hc)
{
	struct sk_worker *w = hc->w;
	struct sk_route_request rq = hc->rq;
	const struct sk_route_forward *f;
	const char *cname = NULL;

	if (hc->cfg->cors && !hc->cfg->cors_first && cors_begin(hc))
		return; /* the CORS filter comes after the fault filter here */
	if (hc->route->action == SK_ROUTE_DIRECT) {
		direct_response(hc);
		return;
	}
	if (hc->route->action == SK_ROUTE_REDIRECT) {
		redirect(hc);
		return;
	}
	f = &hc->route->fwd;
	switch (f->cluster_kind) {
	case SK_ROUTE_CLUSTER_NAME:
		cname = f->cluster;
		break;
	case SK_ROUTE_CLUSTER_WEIGHTED:
		if (hc->wc == NULL) /* picked before the filters when a fault filter runs */
			hc->wc = sk_route_pick_weighted(f, &rq, rnd());
		if (hc->wc && hc->wc->name)
			cname = hc->wc->name;
		else if (hc->wc && hc->wc->cluster_header) {
			struct sk_slice v = sk_route_request_header(&rq, hc->wc->cluster_header,
								    strlen(hc->wc->cluster_header));
			hc->scratch.off = hc->scratch.len = 0;
			append(&hc->scratch, v.ptr ? v.ptr : "", v.len);
			append(&hc->scratch, "", 1);
			cname = hc->scratch.p;
		}
		break;
	case SK_ROUTE_CLUSTER_HEADER: {
		struct sk_slice v = sk_route_request_header(&rq, f->cluster_header, strlen(f->cluster_header));

		hc->scratch.off = hc->scratch.len = 0;
		append(&hc->scratch, v.ptr ? v.ptr : "", v.len);
		append(&hc->scratch, "", 1);
		cname = hc->scratch.p;
		break;
	}
	}
	hc->cluster = cname && cname[0] ? sk_snapshot_cluster(hc->snap, cname) : NULL;
	if (hc->cluster == NULL) {
		sk_log_debug(SK_LOG_HTTP, "[C%llu] http: route '%s': unknown cluster '%s'",
			     (unsigned long long)hc->c->id, hc->route->name, cname ? cname : "");
		sk_stat_inc(w->shard, hc->st->no_cluster);
		local_reply(hc, f->cluster_not_found_code ? f->cluster_not_found_code : 503, "NC", NULL, NULL);
		return;
	}
	sk_cluster_ref(hc->cluster);
	retry_begin(hc, f, &rq);
	if (f->n_hash > 0)
		route_hash(hc, &rq);
	forward(hc);
}

/* The request as a shadow sends it: the head as sent upstream with the host rewritten
 * (the literal, or "-shadow" appended to the host name) and connection: close, then the
 * body as sent. malloc'd; NULL when out of memory. */
static char *shadow_request(const struct sk_http_conn *hc, const struct sk_mirror_policy *m, size_t *len)
{
	const char *p = hc->up_head.p + hc->up_head.off, *end = p + pending(&hc->up_head);
	struct buf b = {0};
	bool first = true;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = eol ? (size_t)(eol - p) + 1 : (size_t)(end - p);

		if (n <= 2 && !first) {
			appends(&b, "connection: close\r\n\r\n");
			break;
		}
		if (!first && n > 5 && strncasecmp(p, "host:", 5) == 0) {
			const char *v = p + 5, *ve = p + n;

			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == '\n' || ve[-1] == ' '))
				ve--;
			appends(&b, "host: ");
			if (m->host_rewrite_literal) {
				appends(&b, m->host_rewrite_literal);
			} else {
				const char *colon = memrchr(v, ':', (size_t)(ve - v));

				if (colon == NULL || memchr(colon, ']', (size_t)(ve - colon)))
					colon = ve; /* no port (or an IPv6 literal's last colon) */
				append(&b, v, (size_t)(colon - v));
				if (!m->disable_shadow_host_suffix_append)
					appends(&b, "-shadow");
				append(&b, colon, (size_t)(ve - colon));
			}
			appends(&b, "\r\n");
		} else if (first || !((n > 11 && strncasecmp(p, "connection:", 11) == 0) ||
				      (n > 11 && strncasecmp(p, "keep-alive:", 11) == 0))) {
			append(&b, p, n);
		}
		first = false;
		p += n;
	}
	if (pending(&hc->body_buf) > 0)
		append(&b, hc->body_buf.p + hc->body_buf.off, pending(&hc->body_buf));
	*len = pending(&b);
	if (b.p != NULL && b.off > 0)
		memmove(b.p, b.p + b.off, *len);
	return b.p;
}

/* request_mirror_policies: once the request is whole, a copy goes to each policy's cluster
 * (within its fraction). A body longer than the buffer limit is not mirrored. */
static void mirror(struct sk_http_conn *hc)
{
	const struct sk_route_forward *f = &hc->route->fwd;
	bool body = hc->req_framing != SK_H1_BODY_NONE;

	if (body && !hc->body_ok) {
		sk_log_debug(SK_LOG_HTTP, "[C%llu] http: request body over the buffer limit: not mirrored",
			     (unsigned long long)hc->c->id);
		return;
	}
	for (size_t i = 0; i < f->n_mirrors; i++) {
		const struct sk_mirror_policy *m = &f->mirrors[i];
		char name[256];
		struct sk_cluster *cl;
		char *req;
		size_t len;

		if (m->fraction.denominator == 0 || rnd() % m->fraction.denominator >= m->fraction.numerator)
			continue;
		if (m->cluster) {
			snprintf(name, sizeof(name), "%s", m->cluster);
		} else {
			struct sk_slice v = sk_route_request_header(&hc->rq, m->cluster_header, strlen(m->cluster_header));

			snprintf(name, sizeof(name), "%.*s", (int)v.len, v.ptr ? v.ptr : "");
		}
		cl = name[0] ? sk_snapshot_cluster(hc->snap, name) : NULL;
		if (cl == NULL) {
			sk_log_debug(SK_LOG_HTTP, "[C%llu] http: mirror cluster '%s' not found",
				     (unsigned long long)hc->c->id, name);
			continue;
		}
		req = shadow_request(hc, m, &len);
		if (req != NULL)
			sk_shadow_send(hc->w, cl, req, len, hc->rr.timeout, rnd());
	}
}

/* Keeps what is sent upstream after the head, for a retry, while it fits the buffer limit. */
static void keep_body(struct sk_http_conn *hc, const char *p, size_t n)
{
	if ((hc->rp == NULL && !(hc->route && hc->route->fwd.n_mirrors > 0)) || !hc->body_ok)
		return;
	if (pending(&hc->body_buf) + n > hc->limit || append(&hc->body_buf, p, n) < 0) {
		hc->body_ok = false;
		buf_free(&hc->body_buf);
	}
}

static void request_body(struct sk_http_conn *hc, const char *p, size_t n)
{
	struct upconn *u = hc->u;

	hc->rx_body += n;
	if (hc->discard_body || u == NULL)
		return;
	hc->replayable = false;
	if (hc->req_framing == SK_H1_BODY_CHUNKED) {
		char sz[24];
		int k = snprintf(sz, sizeof(sz), "%zx\r\n", n);

		append(&u->out, sz, (size_t)k);
		append(&u->out, p, n);
		appends(&u->out, "\r\n");
		keep_body(hc, sz, (size_t)k);
		keep_body(hc, p, n);
		keep_body(hc, "\r\n", 2);
	} else {
		append(&u->out, p, n);
		keep_body(hc, p, n);
	}
	if (u->connected)
		up_write(u);
}

static void request_trailers(struct sk_http_conn *hc, const struct sk_h1_field *t, size_t n)
{
	struct upconn *u = hc->u;

	size_t from;

	if (hc->discard_body || u == NULL || hc->req_framing != SK_H1_BODY_CHUNKED)
		return;
	from = u->out.len;
	appends(&u->out, "0\r\n");
	for (size_t i = 0; i < n; i++) {
		if (hop_by_hop(t[i].name.p, t[i].name.len))
			continue; /* as Envoy: connection-specific fields are not forwarded */
		append(&u->out, t[i].name.p, t[i].name.len);
		appends(&u->out, ": ");
		append(&u->out, t[i].value.p, t[i].value.len);
		appends(&u->out, "\r\n");
	}
	appends(&u->out, "\r\n");
	if (u->out.len >= from)
		keep_body(hc, u->out.p + from, u->out.len - from);
	hc->req_term_written = true;
}

static void request_done(struct sk_http_conn *hc)
{
	struct upconn *u = hc->u;

	hc->req_done = true;
	if (u != NULL && !hc->discard_body) {
		if (hc->req_framing == SK_H1_BODY_CHUNKED && !hc->req_term_written) {
			appends(&u->out, "0\r\n\r\n");
			keep_body(hc, "0\r\n\r\n", 5);
		}
		start_route_timer(hc);
		if (u->connected)
			up_write(u);
	} else if (hc->forwarding && !hc->resp_done) {
		/* no upstream connection (being replaced): the timer starts with it */
		start_route_timer(hc);
	}
	if (hc->forwarding && hc->route && hc->route->fwd.n_mirrors > 0)
		mirror(hc);
	if (hc->resp_done)
		stream_end(hc);
	else if (hc->cfg->request_timeout > 0 && !hc->timer_is_route)
		ev_timer_stop(hc->w->loop, &hc->rq_timer);
}

/* Parses the downstream bytes: heads, bodies, the end of requests; stops when the current
 * request is whole (the next one waits for its response), on backpressure, or on close. */
static void process(struct sk_http_conn *hc)
{
	struct sk_h1_event ev;

	if (hc->h2) {
		h2_pump(hc);
		return;
	}
	while (!hc->must_close) {
		if (hc->active && (hc->req_done || hc->fault_delaying || hc->ws_wait || hc->queued))
			return; /* a fault delay: the body waits in din until the request goes on */
		if (!hc->active && (hc->close_after || pending(&hc->dout) > hc->limit))
			return;
		if (hc->active && hc->u && pending(&hc->u->out) > hc->limit)
			return; /* resumed by on_up_write */
		sk_h1_parse(hc->parser, hc->din.p ? hc->din.p + hc->din.off : "", pending(&hc->din), &ev);
		switch (ev.type) {
		case SK_H1_EV_NEED_MORE:
			consume(&hc->din, ev.consumed);
			return;
		case SK_H1_EV_HEAD:
			request_head(hc, ev.head, hc->din.p + hc->din.off);
			consume(&hc->din, ev.consumed);
			break;
		case SK_H1_EV_BODY:
			request_body(hc, ev.data.p, ev.data.len);
			consume(&hc->din, ev.consumed);
			break;
		case SK_H1_EV_TRAILERS:
			request_trailers(hc, ev.trailers, ev.n_trailers);
			consume(&hc->din, ev.consumed);
			break;
		case SK_H1_EV_DONE:
			consume(&hc->din, ev.consumed);
			if (hc->upgrade && !hc->tunnel && !hc->resp_started && hc->forwarding) {
				hc->ws_wait = true; /* an upgrade: what follows is not HTTP */
				start_route_timer(hc);
				break;
			}
			request_done(hc);
			break;
		case SK_H1_EV_ERROR:
			request_error(hc, ev.status, ev.reason);
			return;
		}
	}
}

/* ---------------------------------------------------------------------------------- */
/* downstream callbacks                                                                */

static void update_io(struct sk_http_conn *hc)
{
	struct ev_loop *loop = hc->w->loop;
	bool want_read = !hc->read_eof && !hc->close_after && pending(&hc->din) < hc->limit &&
			 !(hc->active && hc->u && pending(&hc->u->out) > hc->limit);

	bool want_write = pending(&hc->dout) > 0 || (want_read && hc->tls_rd_wants_write);

	want_read = want_read || (want_write && hc->tls_wr_wants_read);
	if (want_read && !ev_is_active(&hc->c->io))
		ev_io_start(loop, &hc->c->io);
	else if (!want_read && ev_is_active(&hc->c->io))
		ev_io_stop(loop, &hc->c->io);
	if (want_write && !ev_is_active(&hc->wio))
		ev_io_start(loop, &hc->wio);
	else if (!want_write && ev_is_active(&hc->wio))
		ev_io_stop(loop, &hc->wio);
	/* bytes TLS decrypted already raise no readiness on the socket: come back for them */
	if (want_read && hc->c->tls != NULL && sk_tls_pending(hc->c->tls) > 0)
		ev_feed_event(loop, &hc->c->io, EV_READ);
	if (!hc->active && !ev_is_active(&hc->idle_timer))
		arm_idle(hc);
}

/* Every callback ends here: serve what waits, write what is ready, close when it is time.
 * hc may be freed on return. */
static void finish_callback(struct sk_http_conn *hc)
{
	hc->in_callback = false;
	if (hc->h2) {
		sk_h2_stream_after(hc);
		return;
	}
	if (!hc->must_close && !hc->active && pending(&hc->din) > 0 && !hc->close_after)
		process(hc);
	if (!hc->must_close)
		d_flush(hc);
	if (hc->must_close) {
		sk_conn_close(hc->c); /* frees hc */
		return;
	}
	update_io(hc);
}

static void on_down_read(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_http_conn *hc = io->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	hc->in_callback = true;
	if (hc->tls_wr_wants_read) {
		/* a TLS write waited for the socket to become readable */
		d_flush(hc);
		if (hc->must_close || hc->read_eof || hc->close_after) {
			finish_callback(hc);
			return;
		}
	}
	if (reserve(&hc->din, READ_CHUNK) < 0) {
		hc->must_close = true;
		finish_callback(hc);
		return;
	}
	n = sk_tls_io_read(hc->c->tls, hc->c->fd, hc->din.p + hc->din.len, hc->din.cap - hc->din.len,
			   &hc->tls_rd_wants_write);
	if (n == -EAGAIN) {
		finish_callback(hc);
		return;
	}
	if (n > 0) {
		hc->din.len += (size_t)n;
		sk_stat_add(hc->w->shard, hc->st->downstream_cx_rx_bytes_total, (uint64_t)n);
		if (hc->active || pending(&hc->din) == (size_t)n)
			arm_idle(hc);
		process(hc);
	} else {
		if (n < 0 && hc->c->tls != NULL && n != -ECONNRESET)
			sk_log_debug(SK_LOG_HTTP, "[C%llu] http: downstream TLS: %s", (unsigned long long)hc->c->id,
				     sk_tls_failure_reason(hc->c->tls));
		hc->read_eof = true;
		if (!hc->active) {
			hc->must_close = true;
		} else if (hc->tunnel && !hc->req_done) {
			/* the client finished its side of the tunnel: FIN upstream, await its close */
			hc->req_done = true;
			if (hc->u) {
				hc->u->shut_wr = true;
				if (hc->u->connected)
					up_write(hc->u);
			}
		} else if (!hc->req_done) {
			/* the client went away mid-request */
			sk_stat_inc(hc->w->shard, hc->st->downstream_rq_rx_reset);
			hc->flags = "DC";
			hc->must_close = true;
			stream_end(hc);
		} else {
			/* the request is whole: answer it, then close */
			hc->close_after = true;
		}
	}
	finish_callback(hc);
}

static void on_down_write(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_http_conn *hc = io->data;

	(void)loop;
	(void)revents;
	if (hc->tls_rd_wants_write) {
		/* a TLS read waited for the socket to become writable: read now (and flush) */
		on_down_read(loop, &hc->c->io, EV_READ);
		return;
	}
	hc->in_callback = true;
	d_flush(hc);
	if (!hc->must_close)
		sk_http_stream_resume(hc);
	finish_callback(hc);
}

/* ---------------------------------------------------------------------------------- */
/* start and end                                                                       */

static struct sk_http_conn *conn_new(struct sk_conn *c, uint32_t limit)
{
	struct sk_http_conn *hc = calloc(1, sizeof(*hc));

	if (hc == NULL)
		return NULL;
	hc->c = c;
	hc->w = c->w;
	hc->cfg = c->chain->hcm;
	hc->st = c->hst;
	hc->limit = limit;
	ev_init(&hc->rq_timer, on_rq_timer);
	hc->rq_timer.data = hc;
	ev_init(&hc->idle_timer, on_idle_timer);
	hc->idle_timer.data = hc;
	ev_init(&hc->retry_timer, on_retry_timer);
	hc->retry_timer.data = hc;
	ev_init(&hc->try_timer, on_try_timer);
	hc->try_timer.data = hc;
	ev_init(&hc->fault_timer, on_fault_timer);
	hc->fault_timer.data = hc;
	return hc;
}

static void conn_free(struct sk_http_conn *hc)
{
	struct sk_worker *w = hc->w;

	up_release(hc, false);
	q_unlink(hc);
	sk_snapshot_unref(hc->snap);
	ev_io_stop(w->loop, &hc->wio);
	ev_timer_stop(w->loop, &hc->rq_timer);
	ev_timer_stop(w->loop, &hc->idle_timer);
	ev_timer_stop(w->loop, &hc->retry_timer);
	ev_timer_stop(w->loop, &hc->try_timer);
	ev_timer_stop(w->loop, &hc->fault_timer);
	sk_h1_parser_free(hc->parser);
	buf_free(&hc->din);
	buf_free(&hc->dout);
	buf_free(&hc->head);
	buf_free(&hc->path_buf);
	buf_free(&hc->extra);
	buf_free(&hc->resp_head);
	buf_free(&hc->scratch);
	buf_free(&hc->up_head);
	buf_free(&hc->body_buf);
	buf_free(&hc->h2_trailers);
	buf_free(&hc->h2_req_trailers);
	free(hc->fields);
	free(hc->rh);
	free(hc->up_san);
	free(hc);
}

static uint32_t conn_limit(const struct sk_conn *c)
{
	return c->l->cfg->buffer_limit < 16384 ? 16384 : c->l->cfg->buffer_limit;
}

/* HTTP/1.1 on c; what was read already (inspectors, codec detection) is in c->inspected. */
static void http1_start(struct sk_conn *c)
{
	struct sk_http_conn *hc = conn_new(c, conn_limit(c));
	struct sk_worker *w = c->w;
	struct sk_h1_options opts = {0};

	if (hc == NULL) {
		sk_conn_close(c);
		return;
	}
	opts.max_headers_kb = hc->cfg->max_request_headers_kb;
	opts.max_headers_count = hc->cfg->max_headers_count;
	hc->parser = sk_h1_parser_new(SK_H1_REQUEST, &opts);
	c->hc = hc;
	sk_stat_inc(w->shard, hc->st->downstream_cx_total);
	sk_stat_add(w->shard, hc->st->downstream_cx_active, 1);
	sk_stat_inc(w->shard, hc->st->downstream_cx_http1_total);
	sk_stat_add(w->shard, hc->st->downstream_cx_http1_active, 1);
	sk_stat_set(w->shard, hc->st->filters_accepted_without_effect, hc->cfg->observe_only);
	ev_io_init(&c->io, on_down_read, c->fd, EV_READ);
	c->io.data = hc;
	ev_io_init(&hc->wio, on_down_write, c->fd, EV_WRITE);
	hc->wio.data = hc;
	if (hc->parser == NULL) {
		sk_conn_close(c);
		return;
	}
	hc->in_callback = true;
	if (c->n_inspected > 0) {
		/* what the inspectors read is the start of the first request */
		append(&hc->din, c->inspected, c->n_inspected);
		sk_stat_add(w->shard, hc->st->downstream_cx_rx_bytes_total, c->n_inspected);
		process(hc);
	}
	arm_idle(hc);
	finish_callback(hc);
}

/* codec_type AUTO on cleartext: HTTP/2 with prior knowledge begins with the connection
 * preface, which no HTTP/1.x request can; anything else is HTTP/1.x. */
static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* 1: HTTP/2, 0: HTTP/1.x, -1: the bytes so far do not tell yet. */
static int detect(const uint8_t *p, size_t n)
{
	size_t k = n < sizeof(h2_preface) - 1 ? n : sizeof(h2_preface) - 1;

	if (memcmp(p, h2_preface, k) != 0)
		return 0;
	return k == sizeof(h2_preface) - 1 ? 1 : -1;
}

static void codec_start(struct sk_conn *c, bool h2)
{
	ev_io_stop(c->w->loop, &c->io);
	ev_timer_stop(c->w->loop, &c->timer);
	if (h2)
		sk_h2_conn_start(c);
	else
		http1_start(c);
}

static void on_detect_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_conn *c = t->data;

	(void)loop;
	(void)revents;
	codec_start(c, false); /* a partial preface: HTTP/1.1 answers it with a 400 */
}

static void on_detect_read(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_conn *c = io->data;
	uint8_t b[sizeof(h2_preface)];
	size_t want = sizeof(h2_preface) - 1 - c->n_inspected;
	bool wants_write;
	ssize_t n;
	int d;

	(void)loop;
	(void)revents;
	n = sk_tls_io_read(c->tls, c->fd, b, want, &wants_write);
	if (n == -EAGAIN) {
		/* a TLS read may wait for writability (rare): the watcher follows */
		int ev = wants_write ? EV_WRITE : EV_READ;

		if ((c->io.events & (EV_READ | EV_WRITE)) != ev) {
			ev_io_stop(c->w->loop, &c->io);
			ev_io_set(&c->io, c->fd, ev);
			ev_io_start(c->w->loop, &c->io);
		}
		return;
	}
	if (n <= 0) {
		sk_conn_close(c);
		return;
	}
	if (sk_conn_keep_inspected(c, b, (size_t)n) < 0) {
		sk_conn_close(c);
		return;
	}
	d = detect(c->inspected, c->n_inspected);
	if (d >= 0)
		codec_start(c, d == 1);
}

void sk_http_conn_start(struct sk_conn *c)
{
	const struct sk_hcm_config *cfg = c->chain->hcm;
	int d;

	if (cfg->codec == SK_HCM_CODEC_HTTP1) {
		http1_start(c);
		return;
	}
	if (cfg->codec == SK_HCM_CODEC_HTTP2) {
		sk_h2_conn_start(c);
		return;
	}
	if (c->http_proto && strcmp(c->http_proto, "h2c") == 0) {
		sk_h2_conn_start(c);
		return;
	}
	if (c->tls != NULL) {
		/* over TLS the negotiated ALPN says which; without one (the client offered only
		 * Istio's names, say) the first bytes do, as on cleartext */
		const char *alpn = sk_tls_alpn(c->tls, NULL);

		if (strcmp(alpn, "h2") == 0 || strcmp(alpn, "http/1.1") == 0 || strcmp(alpn, "http/1.0") == 0) {
			codec_start(c, alpn[1] == '2');
			return;
		}
	}
	d = c->n_inspected > 0 ? detect(c->inspected, c->n_inspected) : -1;
	if (d >= 0) {
		codec_start(c, d == 1);
		return;
	}
	/* wait for enough bytes to tell (bounded by the idle timeout) */
	ev_io_init(&c->io, on_detect_read, c->fd, EV_READ);
	c->io.data = c;
	ev_io_start(c->w->loop, &c->io);
	ev_timer_init(&c->timer, on_detect_timeout, cfg->idle_timeout > 0 ? cfg->idle_timeout : 60., 0.);
	c->timer.data = c;
	ev_timer_start(c->w->loop, &c->timer);
	if (c->tls != NULL && sk_tls_pending(c->tls) > 0)
		ev_feed_event(c->w->loop, &c->io, EV_READ); /* decrypted with the handshake's last flight */
}

void sk_http_conn_free(struct sk_http_conn *hc)
{
	struct sk_worker *w;

	if (hc == NULL)
		return;
	w = hc->w;
	if (hc->active) {
		if (hc->flags == NULL && !hc->resp_done)
			hc->flags = "DC";
		stream_end(hc);
	}
	sk_stat_sub(w->shard, hc->st->downstream_cx_active, 1);
	sk_stat_sub(w->shard, hc->st->downstream_cx_http1_active, 1);
	sk_stat_inc(w->shard, hc->st->downstream_cx_destroy);
	conn_free(hc);
}

/* ---------------------------------------------------------------------------------- */
/* HTTP/2 streams (driven by http2.c)                                                  */

struct sk_http_conn *sk_http_stream_new(struct sk_conn *c, struct sk_h2_conn *h2, int32_t id, uint32_t limit)
{
	struct sk_http_conn *hc = conn_new(c, limit);

	if (hc == NULL)
		return NULL;
	hc->h2 = h2;
	hc->stream_id = id;
	hc->minor = 1;
	hc->keep_alive = true;
	stream_begin(hc);
	arm_idle(hc);
	return hc;
}

int sk_http_stream_header(struct sk_http_conn *hc, const uint8_t *name, size_t nlen, const uint8_t *value,
			  size_t vlen)
{
	const struct sk_hcm_config *cfg = hc->cfg;
	struct sk_h1_field *f;

	hc->h2_hdr_bytes += (uint32_t)(nlen + vlen);
	if (hc->h2_too_large || hc->h2_hdr_bytes > cfg->max_request_headers_kb * 1024u ||
	    hc->n_fields >= cfg->max_headers_count + 4u) {
		hc->h2_too_large = true; /* answered 431 when the block ends; nothing more is kept */
		return 0;
	}
	if (hc->n_fields == hc->cap_fields) {
		size_t cap = hc->cap_fields ? hc->cap_fields * 2 : 16;

		f = realloc(hc->fields, cap * sizeof(*f));
		if (f == NULL)
			return -1;
		hc->fields = f;
		hc->cap_fields = cap;
	}
	/* offsets into head until the block is whole (head may move as it grows) */
	f = &hc->fields[hc->n_fields++];
	f->name = (struct sk_h1_slice){ (const char *)(uintptr_t)hc->head.len, nlen };
	append(&hc->head, name, nlen);
	f->value = (struct sk_h1_slice){ (const char *)(uintptr_t)hc->head.len, vlen };
	append(&hc->head, value, vlen);
	return 0;
}

void sk_http_stream_request(struct sk_http_conn *hc, bool end)
{
	const char *base = hc->head.p ? hc->head.p : "";
	struct sk_h1_slice path = {0}, host = {0};
	size_t i, n = 0;
	bool has_length = false;

	hc->in_callback = true;
	for (i = 0; i < hc->n_fields; i++) {
		struct sk_h1_field f = hc->fields[i];

		f.name.p = base + (uintptr_t)f.name.p;
		f.value.p = base + (uintptr_t)f.value.p;
		if (f.name.len > 0 && f.name.p[0] == ':') {
			if (ieq(f.name.p, f.name.len, ":method"))
				hc->method = f.value;
			else if (ieq(f.name.p, f.name.len, ":path"))
				path = f.value;
			else if (ieq(f.name.p, f.name.len, ":authority"))
				hc->authority = f.value;
			continue;
		}
		if (ieq(f.name.p, f.name.len, "host"))
			host = f.value;
		if (ieq(f.name.p, f.name.len, "content-length"))
			has_length = true;
		hc->fields[n++] = f;
	}
	hc->n_fields = n;
	hc->h2_headers_done = true;
	if (hc->authority.p == NULL)
		hc->authority = host;
	hc->method_id = sk_h1_method_id(hc->method.p ? hc->method.p : "", hc->method.len);
	hc->req_framing = end ? SK_H1_BODY_NONE : has_length ? SK_H1_BODY_LENGTH : SK_H1_BODY_CHUNKED;
	hc->h2_end_in = end;
	hc->path_buf.off = hc->path_buf.len = 0;
	if (path.len == 0 || path.p[0] != '/')
		appends(&hc->path_buf, "/");
	if (hc->cfg->merge_slashes || hc->cfg->normalize_path)
		normalize(hc, &hc->path_buf, path.p ? path.p : "", path.len);
	else
		append(&hc->path_buf, path.p ? path.p : "", path.len);
	hc->path = (struct sk_h1_slice){ hc->path_buf.p, hc->path_buf.len };
	if (hc->h2_too_large) {
		sk_stat_inc(hc->w->shard, hc->st->h2_header_overflow);
		hc->h2_end_in = true;
		local_reply(hc, 431, "DPE", reason_phrase(431), NULL);
	} else if (hc->method_id == SK_H1_M_CONNECT) {
		local_reply(hc, 404, "NR", NULL, NULL); /* no route has a connect_matcher */
	} else {
		request_route(hc);
	}
	if (!hc->must_close && hc->active)
		process(hc);
	finish_callback(hc);
}

void sk_http_stream_data(struct sk_http_conn *hc, const uint8_t *p, size_t n)
{
	hc->in_callback = true;
	if (!hc->active || hc->req_done) {
		sk_h2_consumed(hc, n); /* nobody wants it: give the window back */
	} else {
		arm_idle(hc);
		append(&hc->din, p, n);
		process(hc);
	}
	finish_callback(hc);
}

void sk_http_stream_end(struct sk_http_conn *hc)
{
	hc->in_callback = true;
	hc->h2_end_in = true;
	if (hc->active)
		process(hc);
	finish_callback(hc);
}

void sk_http_stream_resume(struct sk_http_conn *hc)
{
	struct upconn *u = hc->u;

	if (hc->up_paused && u && pending(&hc->dout) <= hc->limit) {
		hc->up_paused = false;
		if (u->h2 == NULL) /* an HTTP/2 stream has no socket: its window reopens instead */
			ev_io_start(hc->w->loop, &u->rio);
		up_process(hc);
		if (hc->u == u && u->h2 == NULL)
			up_tls_kick(u);
		if (hc->u == u && u->h2)
			sk_h2_up_consumed(u);
	}
}

void sk_http_stream_closed(struct sk_http_conn *hc, uint32_t error_code)
{
	if (!hc->h2_headers_done)
		hc->n_fields = 0; /* reset in the middle of its header block: nothing to log */
	if (hc->active) {
		if (!hc->resp_done || !hc->h2_resp_eof) {
			/* reset before the response was whole: by the client, or by us */
			if (hc->flags == NULL)
				hc->flags = "DR";
			if (error_code != 0)
				sk_stat_inc(hc->w->shard, hc->st->downstream_rq_rx_reset);
		}
		hc->req_done = true;
		stream_end(hc);
	}
	conn_free(hc);
}

/* The request trailers http2.c kept ("name\0value\0"...) go upstream after the body. */
static void h2_request_trailers(struct sk_http_conn *hc)
{
	const char *p = hc->h2_req_trailers.p, *end = p + hc->h2_req_trailers.len;
	struct sk_h1_field *t = calloc(hc->cfg->max_headers_count + 1u, sizeof(*t));
	size_t n = 0;

	if (t == NULL)
		return;
	while (p < end && n <= hc->cfg->max_headers_count) {
		size_t nl = strlen(p), vl = strlen(p + nl + 1);

		t[n++] = (struct sk_h1_field){ { p, nl }, { p + nl + 1, vl } };
		p += nl + vl + 2;
	}
	request_trailers(hc, t, n);
	free(t);
}

/* The request body of an HTTP/2 stream, from din to the upstream, as far as the upstream
 * takes it; flow-control credit returns as it goes. The request ends when its END_STREAM
 * came and din is empty. */
static void h2_pump(struct sk_http_conn *hc)
{
	while (!hc->must_close && hc->active && !hc->req_done) {
		size_t n = pending(&hc->din);

		if (hc->fault_delaying || hc->queued || (hc->u && pending(&hc->u->out) > hc->limit))
			return;
		if (n == 0)
			break;
		request_body(hc, hc->din.p + hc->din.off, n);
		consume(&hc->din, n);
		sk_h2_consumed(hc, n);
	}
	if (!hc->must_close && hc->active && !hc->req_done && hc->h2_end_in && pending(&hc->din) == 0) {
		if (hc->h2_req_trailers.len > 0)
			h2_request_trailers(hc);
		request_done(hc);
	}
}
