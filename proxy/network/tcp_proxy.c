/* tcp_proxy: see tcp_proxy.h. */
#include "proxy/network/tcp_proxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/listener/listener.h"
#include "proxy/log/log.h"
#include "proxy/network/access_log.h"
#include "proxy/network/relay.h"
#include "proxy/network/tls.h"
#include "proxy/server/snapshot.h"
#include "proxy/server/workers.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

struct sk_tcp_proxy {
	struct sk_conn *c;
	struct sk_cluster *cluster;       /* referenced */
	struct sk_host_set *hs;           /* referenced while host points into it */
	struct sk_host *host;
	struct sk_addr upstream;          /* where we connect (the host, or the original dst) */
	struct sk_addr upstream_local;
	int up_fd;
	struct sk_tls_ctx *tls_ctx;       /* the host's socket is TLS (a reference) ... */
	struct sk_tls_conn *up_tls;       /* ... and its connection, from connect to the relay */
	ev_io up_io;
	ev_timer connect_timer;
	uint32_t attempts;
	size_t sent_inspected;
	bool cx_counted;                  /* cluster active/total counted for this upstream */
	struct sk_relay *relay;
	uint64_t rx, tx;                  /* downstream bytes received / sent */
	const char *flags;                /* Envoy's response flags for the access log */
	char *down_san, *up_san;          /* peers' URI SANs once verified (access log) */
	const char *down_version, *up_version; /* "TLSv1.3" (OpenSSL's static strings) */
	double connected_at;              /* loop time the upstream connected, 0 before */
	double wall_start;
};

#define W(tp) ((tp)->c->w)

static void finish(struct sk_tcp_proxy *tp);

/* The peer's URI SANs of an established connection, for the access log (NULL: none). */
static char *peer_uri_san(const struct sk_tls_conn *t)
{
	char small[256], *s;
	int n = sk_tls_peer_uri_san(t, small, sizeof(small));

	if (n < 0)
		return NULL;
	if ((size_t)n < sizeof(small))
		return strdup(small);
	s = malloc((size_t)n + 1);
	if (s != NULL)
		sk_tls_peer_uri_san(t, s, (size_t)n + 1);
	return s;
}
static void try_connect(struct sk_tcp_proxy *tp);

static uint64_t worker_random(void)
{
	static _Thread_local uint64_t state;

	if (state == 0)
		state = (uint64_t)(uintptr_t)&state ^ 0x9e3779b97f4a7c15ULL ^ (uint64_t)ev_time();
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

static const char *cluster_name(struct sk_conn *c)
{
	const struct sk_tcp_proxy_config *cfg = &c->chain->tcp;
	uint64_t r, acc = 0;
	size_t i;

	if (cfg->cluster)
		return cfg->cluster;
	/* weighted_clusters: a random draw over the weights (random() takes a lock: each
	 * worker has its own generator) */
	r = worker_random() % cfg->total_weight;
	for (i = 0; i < cfg->n_weighted; i++) {
		acc += cfg->weighted[i].weight;
		if (r < acc)
			return cfg->weighted[i].name;
	}
	return cfg->weighted[cfg->n_weighted - 1].name;
}

static uint64_t source_hash(const struct sk_conn *c)
{
	if (c->peer.ss.ss_family == AF_INET)
		return sk_lb_hash(&((const struct sockaddr_in *)&c->peer.ss)->sin_addr, 4);
	if (c->peer.ss.ss_family == AF_INET6)
		return sk_lb_hash(&((const struct sockaddr_in6 *)&c->peer.ss)->sin6_addr, 16);
	return 0;
}

static void close_upstream(struct sk_tcp_proxy *tp)
{
	struct sk_worker *w = W(tp);

	ev_io_stop(w->loop, &tp->up_io);
	ev_timer_stop(w->loop, &tp->connect_timer);
	sk_tls_conn_free(tp->up_tls);
	tp->up_tls = NULL;
	if (tp->up_fd >= 0)
		close(tp->up_fd);
	tp->up_fd = -1;
}

/* The upstream connection went away: undo the cluster's active count. */
static void upstream_gone(struct sk_tcp_proxy *tp, bool local)
{
	struct sk_worker *w = W(tp);
	const struct sk_cluster_stats *st;

	if (!tp->cx_counted)
		return;
	tp->cx_counted = false;
	st = &tp->cluster->st;
	if (tp->connected_at > 0) {
		double ms = (ev_now(w->loop) - tp->connected_at) * 1000.0;

		sk_stat_record(w->shard, st->upstream_cx_length_ms, ms > 0 ? (uint64_t)ms : 0);
	}
	atomic_fetch_sub(&tp->cluster->active_cx, 1);
	sk_stat_sub(w->shard, st->upstream_cx_active, 1);
	sk_stat_inc(w->shard, st->upstream_cx_destroy);
	sk_stat_inc(w->shard, local ? st->upstream_cx_destroy_local : st->upstream_cx_destroy_remote);
	if (tp->host)
		atomic_fetch_sub(&tp->host->cx_active, 1);
}

static void on_bytes(void *ctx, enum sk_relay_dir dir, size_t n)
{
	struct sk_tcp_proxy *tp = ctx;
	struct sk_worker *w = W(tp);
	const struct sk_tcp_stats *ts = tp->c->tst;

	if (dir == SK_RELAY_DOWN_TO_UP) {
		tp->rx += n;
		sk_stat_add(w->shard, ts->downstream_cx_rx_bytes_total, n);
		sk_stat_add(w->shard, tp->cluster->st.upstream_cx_tx_bytes_total, n);
	} else {
		tp->tx += n;
		sk_stat_add(w->shard, ts->downstream_cx_tx_bytes_total, n);
		sk_stat_add(w->shard, tp->cluster->st.upstream_cx_rx_bytes_total, n);
	}
}

static void on_relay_done(void *ctx, enum sk_relay_end why, int err)
{
	struct sk_tcp_proxy *tp = ctx;
	struct sk_conn *c = tp->c;

	if (why == SK_RELAY_END_IDLE_TIMEOUT) {
		sk_stat_inc(c->w->shard, c->tst->idle_timeout);
		sk_log_debug(SK_LOG_FILTER, "[C%llu] tcp_proxy: idle timeout", (unsigned long long)c->id);
	} else if (why == SK_RELAY_END_DOWN_RESET || why == SK_RELAY_END_UP_RESET) {
		sk_log_debug(SK_LOG_FILTER, "[C%llu] tcp_proxy: %s reset: %s", (unsigned long long)c->id,
			     why == SK_RELAY_END_UP_RESET ? "upstream" : "downstream", strerror(err));
	}
	upstream_gone(tp, why != SK_RELAY_END_UP_RESET && why != SK_RELAY_END_CLOSED);
	finish(tp);
}

/* SKIFF_RELAY=splice selects splice(2) (for benchmarks; read/write is the default). */
static bool use_splice(void)
{
	static int cached = -1; /* read by every worker: atomics keep it race-free */
	int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);

	if (v < 0) {
		const char *e = getenv("SKIFF_RELAY");

		v = e != NULL && strcmp(e, "splice") == 0;
		__atomic_store_n(&cached, v, __ATOMIC_RELAXED);
	}
	return v;
}

static void start_relay(struct sk_tcp_proxy *tp)
{
	struct sk_conn *c = tp->c;
	/* read/write by default: in bench/RESULTS.md splice moves the same MB/s with less CPU
	 * per GiB, but holds two pipes (4 fds, ~30 KiB of kernel memory) per connection from
	 * the start and charges them to the uid's pipe quota, which a sidecar with thousands
	 * of idle connections cannot afford */
	struct sk_relay_opts o = {
		.use_splice = use_splice(),
		.buffer_limit = c->l->cfg->buffer_limit,
		.idle_timeout = c->chain->tcp.idle_timeout,
		.down_tls = c->tls,
		.up_tls = tp->up_tls,
	};

	/* with TLS on a side the relay sends what the inspectors read (through TLS when
	 * upstream is); a TLS downstream already gave them to its TLS connection */
	if (o.down_tls != NULL || o.up_tls != NULL) {
		o.first = c->inspected;
		o.n_first = c->n_inspected;
	}
	ev_io_stop(c->w->loop, &tp->up_io);
	/* the relay owns both sockets (and TLS connections) from here */
	tp->relay = sk_relay_start(c->w->loop, c->fd, tp->up_fd, &o, on_bytes, on_relay_done, tp);
	if (tp->relay == NULL) {
		close_upstream(tp);
		upstream_gone(tp, true);
		finish(tp);
		return;
	}
	c->fd = -1;
	c->tls = NULL;
	tp->up_fd = -1;
	tp->up_tls = NULL;
	free(c->inspected);
	c->inspected = NULL;
	c->n_inspected = c->cap_inspected = 0;
}

/* Sends the bytes the inspectors consumed, then starts the relay. */
static void on_upstream_writable(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_tcp_proxy *tp = io->data;
	struct sk_conn *c = tp->c;

	(void)loop;
	(void)revents;
	while (tp->sent_inspected < c->n_inspected) {
		ssize_t n = send(tp->up_fd, c->inspected + tp->sent_inspected,
				 c->n_inspected - tp->sent_inspected, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			close_upstream(tp);
			upstream_gone(tp, false);
			tp->flags = "UF";
			finish(tp);
			return;
		}
		tp->sent_inspected += (size_t)n;
		on_bytes(tp, SK_RELAY_DOWN_TO_UP, (size_t)n);
	}
	/* delivered: the connection keeps no inspection buffer while it lives */
	free(c->inspected);
	c->inspected = NULL;
	c->n_inspected = c->cap_inspected = 0;
	start_relay(tp);
}

static void connect_failed(struct sk_tcp_proxy *tp, bool timeout, int err)
{
	struct sk_conn *c = tp->c;
	struct sk_worker *w = c->w;
	const struct sk_cluster_stats *st = &tp->cluster->st;
	char up[SK_ADDR_TEXT_MAX];

	sk_addr_format(&tp->upstream, up, sizeof(up));
	sk_log_debug(SK_LOG_UPSTREAM, "[C%llu] tcp_proxy: connect to %s (cluster '%s') %s%s",
		     (unsigned long long)c->id, up, tp->cluster->config->name,
		     timeout ? "timed out" : "failed: ", timeout ? "" : strerror(err));
	if (timeout)
		sk_stat_inc(w->shard, st->upstream_cx_connect_timeout);
	sk_stat_inc(w->shard, st->upstream_cx_connect_fail);
	if (tp->host)
		atomic_fetch_add(&tp->host->cx_connect_fail, 1);
	close_upstream(tp);
	upstream_gone(tp, true);
	if (tp->attempts < c->chain->tcp.max_connect_attempts) {
		try_connect(tp);
		return;
	}
	/* Envoy counts running out of attempts whatever max_connect_attempts is (1 by default)
	 * and flags it URX next to UF: Istio's access logs show "UF,URX" */
	sk_stat_inc(w->shard, st->upstream_cx_connect_attempts_exceeded);
	tp->flags = "UF,URX";
	finish(tp);
}

/* Advances the upstream TLS handshake (the connect timer still runs: connect_timeout covers
 * it, as Envoy raises "connected" only once TLS is up). */
static void on_upstream_handshake(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_tcp_proxy *tp = io->data;
	struct sk_conn *c = tp->c;
	struct sk_worker *w = c->w;
	enum sk_tls_status st = sk_tls_handshake(tp->up_tls);
	char up[SK_ADDR_TEXT_MAX];

	(void)revents;
	switch (st) {
	case SK_TLS_DONE:
		sk_tls_stats_count(w->shard, &tp->cluster->tls_st, tp->up_tls, true);
		ev_timer_stop(loop, &tp->connect_timer);
		free(tp->up_san);
		tp->up_san = peer_uri_san(tp->up_tls);
		tp->up_version = sk_tls_version(tp->up_tls);
		start_relay(tp);
		return;
	case SK_TLS_WANT_READ:
	case SK_TLS_WANT_WRITE:
		ev_io_stop(loop, io);
		ev_io_set(io, tp->up_fd, st == SK_TLS_WANT_READ ? EV_READ : EV_WRITE);
		ev_io_start(loop, io);
		return;
	default:
		break;
	}
	sk_tls_stats_count(w->shard, &tp->cluster->tls_st, tp->up_tls, false);
	sk_addr_format(&tp->upstream, up, sizeof(up));
	sk_log_debug(SK_LOG_UPSTREAM, "[C%llu] tcp_proxy: TLS handshake with %s (cluster '%s') failed: %s",
		     (unsigned long long)c->id, up, tp->cluster->config->name, sk_tls_failure_reason(tp->up_tls));
	connect_failed(tp, false, EPROTO);
}

static void on_connected(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_tcp_proxy *tp = io->data;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)loop;
	(void)revents;
	if (getsockopt(tp->up_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS)
		return;
	if (err != 0) {
		connect_failed(tp, false, err);
		return;
	}
	tp->connected_at = ev_now(tp->c->w->loop);
	len = sizeof(tp->upstream_local.ss);
	getsockname(tp->up_fd, (struct sockaddr *)&tp->upstream_local.ss, &len);
	tp->upstream_local.len = len;
	ev_io_stop(tp->c->w->loop, &tp->up_io);
	if (tp->tls_ctx != NULL) {
		tp->up_tls = sk_tls_conn_new(tp->tls_ctx, tp->up_fd, false, NULL);
		if (tp->up_tls == NULL) {
			connect_failed(tp, false, ENOMEM);
			return;
		}
		ev_io_init(&tp->up_io, on_upstream_handshake, tp->up_fd, EV_WRITE);
		tp->up_io.data = tp;
		on_upstream_handshake(tp->c->w->loop, &tp->up_io, 0);
		return;
	}
	ev_timer_stop(tp->c->w->loop, &tp->connect_timer);
	ev_io_init(&tp->up_io, on_upstream_writable, tp->up_fd, EV_WRITE);
	tp->up_io.data = tp;
	if (tp->c->n_inspected > 0 && tp->c->tls == NULL)
		ev_io_start(tp->c->w->loop, &tp->up_io);
	else
		start_relay(tp);
}

static void on_connect_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	connect_failed(t->data, true, ETIMEDOUT);
}

/* One connection attempt: circuit breaker, host, socket, connect. */
static void try_connect(struct sk_tcp_proxy *tp)
{
	struct sk_conn *c = tp->c;
	struct sk_worker *w = c->w;
	struct sk_cluster *cl = tp->cluster;
	const struct sk_cluster_config *cc = cl->config;
	const struct sk_cluster_stats *st = &cl->st;
	int fd, one = 1;

	tp->attempts++;
	/* a retry picks again: let go of the previous attempt's host set */
	tp->host = NULL;
	sk_host_set_unref(tp->hs);
	tp->hs = NULL;
	if (atomic_load(&cl->active_cx) >= cc->cb[0].max_connections) {
		sk_stat_inc(w->shard, st->upstream_cx_overflow);
		tp->flags = "UO";
		finish(tp);
		return;
	}
	sk_tls_ctx_unref(tp->tls_ctx);
	tp->tls_ctx = NULL;
	if (cc->type == SK_CLUSTER_ORIGINAL_DST) {
		/* the destination the client asked for (restored by original_dst), over the
		 * cluster's transport_socket */
		tp->upstream = c->local;
		if (cc->tls_default_ctx != NULL && (tp->tls_ctx = sk_cluster_tls_ctx_acquire(cl, false)) == NULL) {
			sk_log_warn(SK_LOG_UPSTREAM, "[C%llu] cluster '%s': its TLS transport socket waits for "
				    "SDS (not served yet): closing", (unsigned long long)c->id, cc->name);
			sk_stat_inc(w->shard, cl->upstream_context_secrets_not_ready);
			sk_stat_inc(w->shard, st->upstream_cx_connect_fail);
			tp->flags = "UF";
			finish(tp);
			return;
		}
	} else {
		tp->host = sk_cluster_pick(cl, w->index, source_hash(c), true, &tp->hs);
		if (tp->host == NULL) {
			sk_stat_inc(w->shard, st->upstream_cx_none_healthy);
			tp->flags = "UH";
			finish(tp);
			return;
		}
		sk_host_set_ref(tp->hs);
		tp->upstream = tp->host->addr;
		if (tp->host->tls && (tp->tls_ctx = sk_cluster_tls_ctx_acquire(cl, tp->host->tls_istio)) == NULL) {
			/* never send in clear what the config says must be TLS */
			sk_log_warn(SK_LOG_UPSTREAM, "[C%llu] cluster '%s': host %s needs a TLS transport "
				    "socket whose certificates wait for SDS (not served yet): closing",
				    (unsigned long long)c->id, cc->name, tp->host->key);
			sk_stat_inc(w->shard, cl->upstream_context_secrets_not_ready);
			sk_stat_inc(w->shard, st->upstream_cx_connect_fail);
			tp->flags = "UF";
			finish(tp);
			return;
		}
	}
	fd = socket(tp->upstream.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		connect_failed(tp, false, errno);
		return;
	}
	tp->up_fd = fd;
	if (tp->upstream.ss.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (cc->has_bind && cc->bind.ss.ss_family == tp->upstream.ss.ss_family) {
		/* upstream_bind_config: Istio's inbound clusters leave from 127.0.0.6 */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&cc->bind.ss, cc->bind.len) < 0) {
			connect_failed(tp, false, errno);
			return;
		}
	}
	atomic_fetch_add(&cl->active_cx, 1);
	tp->cx_counted = true;
	sk_stat_inc(w->shard, st->upstream_cx_total);
	sk_stat_add(w->shard, st->upstream_cx_active, 1);
	if (tp->host) {
		atomic_fetch_add(&tp->host->cx_total, 1);
		atomic_fetch_add(&tp->host->cx_active, 1);
	}
	ev_io_init(&tp->up_io, on_connected, fd, EV_WRITE);
	tp->up_io.data = tp;
	if (connect(fd, (const struct sockaddr *)&tp->upstream.ss, tp->upstream.len) < 0 &&
	    errno != EINPROGRESS) {
		connect_failed(tp, false, errno);
		return;
	}
	ev_timer_init(&tp->connect_timer, on_connect_timeout, cc->connect_timeout, 0.);
	tp->connect_timer.data = tp;
	ev_timer_start(w->loop, &tp->connect_timer);
	ev_io_start(w->loop, &tp->up_io);
}

/* The connection is over: access log, then close the downstream. */
static void finish(struct sk_tcp_proxy *tp)
{
	struct sk_conn *c = tp->c;
	const struct sk_tcp_proxy_config *cfg = &c->chain->tcp;
	size_t i;

	for (i = 0; i < cfg->n_access_logs; i++) {
		struct sk_access_log_entry e = {
			.start = tp->wall_start,
			.duration_ms = (ev_now(c->w->loop) - c->start) * 1000.0,
			.downstream_remote = &c->peer,
			.downstream_local = &c->local,
			.upstream_host = tp->upstream.len ? &tp->upstream : NULL,
			.upstream_local = tp->upstream_local.len ? &tp->upstream_local : NULL,
			.upstream_cluster = tp->cluster ? tp->cluster->config->name : NULL,
			.response_flags = tp->flags ? tp->flags : "-",
			.server_name = c->sni,
			.downstream_peer_uri_san = tp->down_san,
			.upstream_peer_uri_san = tp->up_san,
			.downstream_tls_version = tp->down_version,
			.upstream_tls_version = tp->up_version,
			.bytes_received = tp->rx,
			.bytes_sent = tp->tx,
			.connection_id = c->id,
		};

		sk_access_log_write(cfg->access_logs[i].path, cfg->access_logs[i].format, &e);
	}
	sk_conn_close(c); /* frees tp through sk_tcp_proxy_free */
}

void sk_tcp_proxy_start(struct sk_conn *c)
{
	struct sk_tcp_proxy *tp = calloc(1, sizeof(*tp));
	const char *name;

	if (tp == NULL) {
		sk_conn_close(c);
		return;
	}
	tp->c = c;
	tp->up_fd = -1;
	tp->wall_start = ev_time() - (ev_now(c->w->loop) - c->start);
	c->tp = tp;
	if (c->tls != NULL) {
		tp->down_san = peer_uri_san(c->tls);
		tp->down_version = sk_tls_version(c->tls);
	}
	sk_stat_inc(c->w->shard, c->tst->downstream_cx_total);
	name = cluster_name(c);
	tp->cluster = sk_snapshot_cluster(c->snap, name);
	if (tp->cluster == NULL) {
		sk_log_debug(SK_LOG_FILTER, "[C%llu] tcp_proxy: unknown cluster '%s'", (unsigned long long)c->id,
			     name);
		sk_stat_inc(c->w->shard, c->tst->downstream_cx_no_route);
		tp->flags = "NR";
		finish(tp);
		return;
	}
	sk_cluster_ref(tp->cluster);
	try_connect(tp);
}

void sk_tcp_proxy_free(struct sk_tcp_proxy *tp)
{
	if (tp == NULL)
		return;
	if (tp->relay) {
		sk_relay_free(tp->relay);
		upstream_gone(tp, true);
	}
	close_upstream(tp);
	upstream_gone(tp, true);
	sk_host_set_unref(tp->hs);
	sk_tls_ctx_unref(tp->tls_ctx);
	if (tp->cluster)
		sk_cluster_unref(tp->cluster);
	free(tp->down_san);
	free(tp->up_san);
	free(tp);
}
