/* listener: binding (main thread), then accept -> original_dst -> inspectors -> filter chain
 * -> network filter on the workers. See listener.h. */
#include "proxy/listener/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proxy/log/log.h"
#include "proxy/network/http_conn.h"
#include "proxy/network/tcp_proxy.h"
#include "proxy/network/tls.h"
#include "proxy/server/snapshot.h"
#include "proxy/server/workers.h"
#include "xds/translate/hcm.h"

#define INSPECT_BUF_MAX SK_TLS_MAX_CLIENT_HELLO
#define INSPECT_BUF_FIRST 4096   /* most hellos and request lines fit; grown on demand */

static atomic_uint_fast64_t next_conn_id = 1;

/* ---------------------------------------------------------------------------------- */
/* main thread: stats and sockets                                                      */

static void register_tcp_stats(struct sk_tcp_stats *t, struct sk_stats_store *st, const char *prefix)
{
#define C(field) t->field = sk_stats_counterf(st, "tcp.%s." #field, prefix)
	C(downstream_cx_total);
	C(downstream_cx_no_route);
	C(downstream_cx_rx_bytes_total);
	C(downstream_cx_tx_bytes_total);
	C(downstream_flow_control_paused_reading_total);
	C(idle_timeout);
	C(max_downstream_connection_duration);
#undef C
	t->upstream_flush_active = sk_stats_gaugef(st, SK_GAUGE_SUM, "tcp.%s.upstream_flush_active", prefix);
}

/* The server contexts of the chains whose DownstreamTlsContext has its certificates in the
 * config. A chain that waits for an SDS secret, or whose certificate cannot be loaded (logged:
 * files are read only here), refuses its connections rather than serving them in clear. */
static void build_tls(struct sk_listener *l, struct sk_stats_store *st)
{
	const struct sk_listener_config *cfg = l->cfg;
	bool any = false;
	char why[512];
	size_t i;

	for (i = 0; i <= cfg->n_chains; i++) {
		const struct sk_filter_chain_config *ch = i < cfg->n_chains ? &cfg->chains[i] : cfg->default_chain;
		const struct sk_tls_context_config *tc = ch != NULL ? ch->tls_ctx : NULL;

		if (tc == NULL)
			continue;
		any = true;
		if (tc->has_cert_sds || tc->has_validation_sds) {
			sk_log_debug(SK_LOG_CONFIG, "listener '%s': filter chain '%s' waits for SDS secret '%s': "
				     "its connections are refused until it arrives", cfg->name, ch->name,
				     tc->has_cert_sds ? tc->cert_sds.name : tc->validation_sds.name);
			continue;
		}
		l->chain_tls[i] = sk_tls_ctx_new(tc, NULL, NULL, why, sizeof(why));
		if (l->chain_tls[i] == NULL)
			sk_log_error(SK_LOG_CONFIG, "listener '%s': filter chain '%s': transport_socket: %s: its "
				     "connections are refused", cfg->name, ch->name, why);
	}
	if (any) {
		char scope[512];

		snprintf(scope, sizeof(scope), "listener.%s", cfg->stat_name);
		sk_tls_stats_register(&l->tls_st, st, scope);
		l->ssl_context_update_by_sds = sk_stats_counterf(
			st, "listener.%s.server_ssl_socket_factory.ssl_context_update_by_sds", cfg->stat_name);
		l->downstream_context_secrets_not_ready = sk_stats_counterf(
			st, "listener.%s.server_ssl_socket_factory.downstream_context_secrets_not_ready", cfg->stat_name);
		(void)sk_stats_counterf(st, "listener.%s.server_ssl_socket_factory.upstream_context_secrets_not_ready",
					cfg->stat_name); /* Envoy registers it in both scopes */
	}
}

int sk_listener_tls_update(struct sk_listener *l, struct sk_stats_shard *shard, const char *changed,
			   sk_tls_secret_lookup_fn lookup, void *arg)
{
	const struct sk_listener_config *cfg = l->cfg;
	char why[512];
	size_t i;
	int n = 0;

	for (i = 0; i <= cfg->n_chains; i++) {
		const struct sk_filter_chain_config *ch = i < cfg->n_chains ? &cfg->chains[i] : cfg->default_chain;
		struct sk_tls_ctx *ctx, *old;
		int rc;

		if (ch == NULL || ch->tls_ctx == NULL)
			continue;
		if (changed == NULL && l->chain_tls[i] != NULL)
			continue; /* built already: only a change rebuilds it */
		rc = sk_tls_ctx_from_sds(ch->tls_ctx, changed, lookup, arg, &ctx, why, sizeof(why));
		if (rc < 0)
			sk_log_error(SK_LOG_CONFIG, "listener '%s': filter chain '%s': SDS secret update: %s "
				     "(keeping the previous context)", cfg->name, ch->name, why);
		if (rc <= 0)
			continue;
		pthread_mutex_lock(&l->tls_lock);
		old = l->chain_tls[i];
		l->chain_tls[i] = ctx;
		pthread_mutex_unlock(&l->tls_lock);
		sk_tls_ctx_unref(old); /* connections that started on it keep their references */
		if (changed != NULL && shard != NULL)
			sk_stat_inc(shard, l->ssl_context_update_by_sds);
		sk_log_info(SK_LOG_CONFIG, "listener '%s': filter chain '%s': TLS context %s from SDS", cfg->name,
			    ch->name, old != NULL ? "rebuilt" : "built");
		n++;
	}
	return n;
}

struct sk_listener *sk_listener_new(struct sk_listener_config *cfg, struct sk_stats_store *st)
{
	struct sk_listener *l = calloc(1, sizeof(*l));
	const char *n = cfg->stat_name;
	size_t i;

	if (l == NULL)
		return NULL;
	atomic_init(&l->refcnt, 1);
	atomic_init(&l->draining, false);
	pthread_mutex_init(&l->tls_lock, NULL);
	l->cfg = cfg;
	l->chain_st = calloc(cfg->n_chains + 1, sizeof(*l->chain_st));
	l->chain_hst = calloc(cfg->n_chains + 1, sizeof(*l->chain_hst));
	l->chain_tls = calloc(cfg->n_chains + 1, sizeof(*l->chain_tls));
	if (l->chain_st == NULL || l->chain_hst == NULL || l->chain_tls == NULL) {
		free(l->chain_st);
		free(l->chain_hst);
		free(l->chain_tls);
		free(l);
		return NULL;
	}
#define C(field) l->st.field = sk_stats_counterf(st, "listener.%s." #field, n)
#define G(field) l->st.field = sk_stats_gaugef(st, SK_GAUGE_SUM, "listener.%s." #field, n)
	C(downstream_cx_total);
	G(downstream_cx_active);
	C(downstream_cx_destroy);
	C(no_filter_chain_match);
	G(downstream_pre_cx_active);
	C(downstream_pre_cx_timeout);
	C(downstream_listener_filter_error);
	C(downstream_cx_overflow);
#undef C
#undef G
	{
		char name[512];

		snprintf(name, sizeof(name), "listener.%s.downstream_cx_length_ms", n);
		l->st.downstream_cx_length_ms = sk_stats_histogram(st, name);
	}
	for (i = 0; i < cfg->n_chains; i++)
		if (cfg->chains[i].tcp_proxy)
			register_tcp_stats(&l->chain_st[i], st, cfg->chains[i].tcp.stat_prefix);
	if (cfg->default_chain && cfg->default_chain->tcp_proxy)
		register_tcp_stats(&l->chain_st[cfg->n_chains], st, cfg->default_chain->tcp.stat_prefix);
	for (i = 0; i < cfg->n_chains; i++)
		if (cfg->chains[i].http)
			sk_http_stats_register(&l->chain_hst[i], st, cfg->chains[i].hcm->stat_prefix);
	if (cfg->default_chain && cfg->default_chain->http)
		sk_http_stats_register(&l->chain_hst[cfg->n_chains], st, cfg->default_chain->hcm->stat_prefix);
	build_tls(l, st);
	return l;
}

static int bind_one(const struct sk_addr *a, bool reuseport, bool listen_now, char *err, size_t errlen)
{
	char text[SK_ADDR_TEXT_MAX];
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, e;

	sk_addr_format(a, text, sizeof(text));
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "cannot bind '%s': socket: %s", text, strerror(e));
		return -e;
	}
	if (a->ss.ss_family != AF_UNIX) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (reuseport)
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		if (a->ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	} else {
		unlink(((const struct sockaddr_un *)&a->ss)->sun_path);
	}
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || (listen_now && listen(fd, SK_LISTEN_BACKLOG) < 0)) {
		e = errno;
		snprintf(err, errlen, "cannot bind '%s': %s", text, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

int sk_listener_bind(struct sk_listener *l, uint32_t n, bool listen_now, char *err, size_t errlen)
{
	struct sk_addr a = l->cfg->addr;
	bool pipe = a.ss.ss_family == AF_UNIX;
	uint32_t i;

	if (!l->cfg->bind_to_port)
		return 0;
	if (!l->cfg->served) {
		sk_log_warn(SK_LOG_CONFIG, "listener '%s': not bound: a filter chain has no terminal "
			    "filter this build serves", l->cfg->name);
		return 0;
	}
	l->fds = malloc((n ? n : 1) * sizeof(*l->fds));
	if (l->fds == NULL)
		return -ENOMEM;
	l->n_fds = n;
	for (i = 0; i < n; i++)
		l->fds[i] = -1;
	for (i = 0; i < n; i++) {
		int fd = pipe && i > 0 ? l->fds[0] : bind_one(&a, true, listen_now, err, errlen);

		if (fd < 0)
			return fd;
		l->fds[i] = fd;
		/* port 0: the kernel chose one; the other workers' sockets take the same */
		if (i == 0 && !pipe && sk_addr_port(&a) == 0) {
			socklen_t len = sizeof(a.ss);

			getsockname(fd, (struct sockaddr *)&a.ss, &len);
			a.len = len;
		}
	}
	l->bound = true;
	l->listening = listen_now;
	return 0;
}

int sk_listener_listen(struct sk_listener *l, char *err, size_t errlen)
{
	char text[SK_ADDR_TEXT_MAX];

	if (!l->bound || l->listening)
		return 0;
	for (uint32_t i = 0; i < l->n_fds; i++) {
		if (l->fds[i] < 0 || (i > 0 && l->fds[i] == l->fds[0]))
			continue;
		if (listen(l->fds[i], SK_LISTEN_BACKLOG) < 0) {
			int e = errno;

			sk_addr_format(&l->cfg->addr, text, sizeof(text));
			snprintf(err, errlen, "cannot listen on '%s': %s", text, strerror(e));
			return -e;
		}
	}
	l->listening = true;
	return 0;
}

struct sk_listener *sk_listener_ref(struct sk_listener *l)
{
	atomic_fetch_add_explicit(&l->refcnt, 1, memory_order_relaxed);
	return l;
}

void sk_listener_unref(struct sk_listener *l)
{
	uint32_t i;

	if (l == NULL || atomic_fetch_sub_explicit(&l->refcnt, 1, memory_order_acq_rel) != 1)
		return;
	for (i = 0; i < l->n_fds; i++)
		if (l->fds[i] >= 0 && (i == 0 || l->fds[i] != l->fds[0]))
			close(l->fds[i]);
	free(l->fds);
	for (i = 0; i <= l->cfg->n_chains; i++)
		sk_tls_ctx_unref(l->chain_tls[i]);
	pthread_mutex_destroy(&l->tls_lock);
	sk_tls_stats_free(&l->tls_st);
	free(l->chain_tls);
	free(l->chain_st);
	free(l->chain_hst);
	sk_listener_config_free(l->cfg);
	free(l);
}

/* ---------------------------------------------------------------------------------- */
/* worker: connections                                                                 */

static void conn_link(struct sk_worker *w, struct sk_conn *c)
{
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	__atomic_fetch_add(&w->n_conns, 1, __ATOMIC_RELAXED);
}

static void conn_unlink(struct sk_worker *w, struct sk_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	__atomic_fetch_sub(&w->n_conns, 1, __ATOMIC_RELAXED);
}

static void on_reap(struct ev_loop *loop, ev_idle *i, int revents)
{
	struct sk_worker *w = i->data;

	(void)revents;
	while (w->dead) {
		struct sk_conn *c = w->dead;

		w->dead = c->next;
		sk_snapshot_unref(c->snap);
		free(c->inspected);
		free(c->hello);
		free(c->sni);
		free(c->peer_uri_san);
		free(c->xfcc);
		free(c);
	}
	ev_idle_stop(loop, i);
}

int sk_conn_keep_inspected(struct sk_conn *c, const uint8_t *p, size_t n)
{
	if (c->cap_inspected - c->n_inspected < n) {
		size_t cap = c->n_inspected + n;
		uint8_t *grown = realloc(c->inspected, cap);

		if (grown == NULL)
			return -ENOMEM;
		c->inspected = grown;
		c->cap_inspected = cap;
	}
	memcpy(c->inspected + c->n_inspected, p, n);
	c->n_inspected += n;
	return 0;
}

void sk_conn_close(struct sk_conn *c)
{
	struct sk_worker *w = c->w;

	ev_io_stop(w->loop, &c->io);
	ev_timer_stop(w->loop, &c->timer);
	if (c->tp) {
		sk_tcp_proxy_free(c->tp);
		c->tp = NULL;
	}
	if (c->hc) {
		sk_http_conn_free(c->hc);
		c->hc = NULL;
	}
	if (c->h2) {
		sk_h2_conn_free(c->h2);
		c->h2 = NULL;
	}
	if (c->tls != NULL) {
		(void)sk_tls_shutdown(c->tls); /* close_notify, best effort: the socket closes now */
		sk_tls_conn_free(c->tls);
		c->tls = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->active_counted) {
		double ms = (ev_now(w->loop) - c->start) * 1000.0;

		sk_stat_sub(w->shard, c->l->st.downstream_cx_active, 1);
		sk_stat_inc(w->shard, c->l->st.downstream_cx_destroy);
		sk_stat_record(w->shard, c->l->st.downstream_cx_length_ms, ms > 0 ? (uint64_t)ms : 0);
	} else {
		sk_stat_sub(w->shard, c->l->st.downstream_pre_cx_active, 1);
	}
	conn_unlink(w, c);
	c->next = w->dead;
	w->dead = c;
	if (!ev_is_active(&w->reaper)) {
		ev_idle_init(&w->reaper, on_reap);
		w->reaper.data = w;
		ev_idle_start(w->loop, &w->reaper);
	}
}

/* SO_ORIGINAL_DST: where the client meant to go before iptables REDIRECT. */
static bool original_dst(int fd, struct sk_addr *out)
{
	struct sk_addr a = {0};
	socklen_t len = sizeof(a.ss);

	if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &a.ss, &len) == 0 && a.ss.ss_family == AF_INET) {
		a.len = len;
		*out = a;
		return true;
	}
	len = sizeof(a.ss);
	if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &a.ss, &len) == 0 && a.ss.ss_family == AF_INET6) {
		a.len = len;
		*out = a;
		return true;
	}
	return false;
}

/* The chain for the connection, or NULL (no match: counted, closed by the caller). */
static const struct sk_filter_chain_config *choose_chain(struct sk_conn *c, const struct sk_tcp_stats **tst,
							 const struct sk_http_stats **hst)
{
	const struct sk_listener_config *lc = c->l->cfg;
	const char *protos[SK_TLS_MAX_ALPN + 1];
	struct sk_fcm_conn m = {0};
	int idx;

	m.dst = c->local.ss;
	m.src = c->peer.ss;
	m.direct_src = c->peer.ss;
	m.transport_protocol = c->is_tls ? "tls" : "raw_buffer";
	m.server_name = c->is_tls ? c->hello->sni : NULL;
	if (c->is_tls) {
		for (size_t i = 0; i < c->hello->n_alpn; i++)
			protos[i] = c->hello->alpn[i];
		m.n_application_protocols = c->hello->n_alpn;
	} else if (c->http_proto) {
		protos[0] = c->http_proto;
		m.n_application_protocols = 1;
	}
	m.application_protocols = protos;
	idx = sk_fcm_match(lc->fcm, &m);
	if (idx == SK_FCM_DEFAULT && lc->default_chain) {
		*tst = &c->l->chain_st[lc->n_chains];
		*hst = &c->l->chain_hst[lc->n_chains];
		return lc->default_chain;
	}
	if (idx < 0)
		return NULL;
	*tst = &c->l->chain_st[idx];
	*hst = &c->l->chain_hst[idx];
	return &lc->chains[idx];
}

/* The downstream TLS handshake of a chain with a DownstreamTlsContext: done, it hands the
 * connection to the chain's network filter (tcp_proxy or the HTTP connection manager, which
 * then reads and writes through c->tls). The chain's transport_socket_connect_timeout bounds
 * it; without one (Envoy has none) skiff's own bound on how long a client may take. */
#define DOWNSTREAM_HANDSHAKE_TIMEOUT 10.0

static void tls_failed(struct sk_conn *c, const char *why)
{
	sk_log_debug(SK_LOG_FILTER, "[C%llu] listener '%s': chain '%s': TLS handshake failed: %s",
		     (unsigned long long)c->id, c->l->cfg->name, c->chain->name, why);
	sk_conn_close(c);
}

static void on_tls_handshake(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_conn *c = io->data;
	enum sk_tls_status st = sk_tls_handshake(c->tls);

	(void)revents;
	switch (st) {
	case SK_TLS_DONE:
		ev_io_stop(loop, io);
		ev_timer_stop(loop, &c->timer);
		sk_tls_stats_count(c->w->shard, &c->l->tls_st, c->tls, true);
		if (c->chain->http)
			sk_http_conn_start(c);
		else
			sk_tcp_proxy_start(c);
		return;
	case SK_TLS_WANT_READ:
	case SK_TLS_WANT_WRITE:
		if ((io->events & (EV_READ | EV_WRITE)) != (st == SK_TLS_WANT_READ ? EV_READ : EV_WRITE)) {
			ev_io_stop(loop, io);
			ev_io_set(io, c->fd, st == SK_TLS_WANT_READ ? EV_READ : EV_WRITE);
		}
		ev_io_start(loop, io);
		return;
	default:
		sk_tls_stats_count(c->w->shard, &c->l->tls_st, c->tls, false);
		tls_failed(c, sk_tls_failure_reason(c->tls));
		return;
	}
}

static void on_tls_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_conn *c = t->data;

	(void)loop;
	(void)revents;
	sk_stat_inc(c->w->shard, c->l->tls_st.connection_error);
	tls_failed(c, "timed out");
}

static void start_tls(struct sk_conn *c)
{
	const struct sk_listener_config *lc = c->l->cfg;
	size_t idx = c->chain == lc->default_chain ? lc->n_chains : (size_t)(c->chain - lc->chains);
	struct sk_tls_ctx *ctx;
	struct sk_worker *w = c->w;

	/* the context current now: an SDS rotation swaps it (main thread) for later connections */
	pthread_mutex_lock(&c->l->tls_lock);
	ctx = c->l->chain_tls[idx];
	if (ctx != NULL)
		sk_tls_ctx_ref(ctx);
	pthread_mutex_unlock(&c->l->tls_lock);
	if (ctx == NULL) {
		/* never serve in clear what the config says must be TLS (why: logged at config) */
		sk_log_debug(SK_LOG_FILTER, "[C%llu] listener '%s': chain '%s' has no TLS context (its SDS "
			     "secret has not arrived, or its certificate did not load): closing",
			     (unsigned long long)c->id, lc->name, c->chain->name);
		sk_stat_inc(w->shard, c->l->downstream_context_secrets_not_ready);
		sk_conn_close(c);
		return;
	}
	c->tls = sk_tls_conn_new(ctx, c->fd, true, NULL);
	sk_tls_ctx_unref(ctx); /* the connection holds its own */
	/* the inspectors consumed the ClientHello: OpenSSL reads it first */
	if (c->tls == NULL || sk_tls_conn_set_prefix(c->tls, c->inspected, c->n_inspected) < 0) {
		sk_conn_close(c);
		return;
	}
	free(c->inspected);
	c->inspected = NULL;
	c->n_inspected = c->cap_inspected = 0;
	ev_io_init(&c->io, on_tls_handshake, c->fd, EV_READ);
	c->io.data = c;
	ev_timer_init(&c->timer, on_tls_timeout,
		      c->chain->tls_timeout > 0 ? c->chain->tls_timeout : DOWNSTREAM_HANDSHAKE_TIMEOUT, 0.);
	c->timer.data = c;
	ev_timer_start(w->loop, &c->timer);
	on_tls_handshake(w->loop, &c->io, 0);
}

/* Listener filters are done: pick the chain and start its network filter. */
static void dispatch(struct sk_conn *c)
{
	struct sk_worker *w = c->w;
	const struct sk_filter_chain_config *chain;

	ev_io_stop(w->loop, &c->io);
	ev_timer_stop(w->loop, &c->timer);
	sk_stat_sub(w->shard, c->l->st.downstream_pre_cx_active, 1);
	chain = choose_chain(c, &c->tst, &c->hst);
	/* the hello is big (ALPN names) and no longer needed: keep only the SNI */
	if (c->hello != NULL) {
		if (c->is_tls && c->hello->sni[0])
			c->sni = strdup(c->hello->sni);
		free(c->hello);
		c->hello = NULL;
	}
	if (chain == NULL) {
		char peer[SK_ADDR_TEXT_MAX], local[SK_ADDR_TEXT_MAX];

		sk_addr_format(&c->peer, peer, sizeof(peer));
		sk_addr_format(&c->local, local, sizeof(local));
		sk_log_debug(SK_LOG_FILTER, "[C%llu] listener '%s': no filter chain matches %s -> %s",
			     (unsigned long long)c->id, c->l->cfg->name, peer, local);
		sk_stat_inc(w->shard, c->l->st.no_filter_chain_match);
		sk_stat_add(w->shard, c->l->st.downstream_pre_cx_active, 1); /* undone by close */
		sk_conn_close(c);
		return;
	}
	c->chain = chain;
	c->active_counted = true;
	sk_stat_inc(w->shard, c->l->st.downstream_cx_total);
	sk_stat_add(w->shard, c->l->st.downstream_cx_active, 1);
	if (chain->tls) {
		start_tls(c);
		return;
	}
	if (chain->http)
		sk_http_conn_start(c);
	else
		sk_tcp_proxy_start(c);
}

static bool inspection_done(const struct sk_conn *c)
{
	return (!c->l->cfg->tls_inspector || c->tls_done) && (!c->l->cfg->http_inspector || c->http_done);
}

/* Reads more of the connection's first bytes and runs the inspectors over them. The bytes
 * are consumed (not peeked) so that a client that stops mid-hello cannot make the loop
 * spin; tcp_proxy sends them upstream first. */
static void on_inspect(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_conn *c = io->data;
	const struct sk_listener_config *lc = c->l->cfg;
	ssize_t n;

	(void)loop;
	(void)revents;
	if (c->n_inspected == c->cap_inspected) {
		size_t cap = c->cap_inspected ? c->cap_inspected * 2 : INSPECT_BUF_FIRST;
		uint8_t *grown = realloc(c->inspected, cap < INSPECT_BUF_MAX ? cap : INSPECT_BUF_MAX);

		if (grown == NULL) {
			sk_conn_close(c);
			return;
		}
		c->inspected = grown;
		c->cap_inspected = cap < INSPECT_BUF_MAX ? cap : INSPECT_BUF_MAX;
	}
	if (lc->tls_inspector && c->hello == NULL && (c->hello = calloc(1, sizeof(*c->hello))) == NULL) {
		sk_conn_close(c);
		return;
	}
	n = read(c->fd, c->inspected + c->n_inspected, c->cap_inspected - c->n_inspected);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		/* closed before a chain could be chosen: Envoy decides with what it has */
		c->tls_done = c->http_done = true;
		if (c->n_inspected == 0) {
			sk_conn_close(c);
			return;
		}
	} else if (n < 0) {
		return;
	} else {
		c->n_inspected += (size_t)n;
	}
	if (lc->tls_inspector && !c->tls_done) {
		switch (sk_tls_inspect(c->inspected, c->n_inspected, c->hello)) {
		case SK_INSPECT_DONE:
			c->is_tls = true;
			c->tls_done = true;
			c->http_done = true; /* TLS is not plaintext HTTP */
			break;
		case SK_INSPECT_NEED_MORE:
			break;
		case SK_INSPECT_ERROR:
			/* undecided at the size limit: Envoy closes the connection */
			sk_stat_inc(c->w->shard, c->l->st.downstream_listener_filter_error);
			sk_conn_close(c);
			return;
		default:
			c->tls_done = true;
			break;
		}
	}
	if (lc->http_inspector && !c->http_done && !c->is_tls) {
		switch (sk_http_inspect(c->inspected, c->n_inspected, &c->http_proto)) {
		case SK_INSPECT_NEED_MORE:
			break;
		case SK_INSPECT_ERROR:
			sk_stat_inc(c->w->shard, c->l->st.downstream_listener_filter_error);
			sk_conn_close(c);
			return;
		default:
			c->http_done = true;
			break;
		}
	}
	if (c->n_inspected == INSPECT_BUF_MAX)
		c->tls_done = c->http_done = true;
	if (inspection_done(c))
		dispatch(c);
}

static void on_inspect_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_conn *c = t->data;

	(void)loop;
	(void)revents;
	sk_stat_inc(c->w->shard, c->l->st.downstream_pre_cx_timeout);
	if (c->l->cfg->continue_on_timeout) {
		c->tls_done = c->http_done = true;
		dispatch(c);
		return;
	}
	sk_log_debug(SK_LOG_FILTER, "[C%llu] listener '%s': listener filters timed out",
		     (unsigned long long)c->id, c->l->cfg->name);
	sk_conn_close(c);
}

static void start_conn(struct sk_worker *w, struct sk_listener *l, int fd, const struct sk_addr *peer)
{
	struct sk_conn *c = calloc(1, sizeof(*c));
	socklen_t len;
	int one = 1;

	if (c == NULL) {
		close(fd);
		return;
	}
	c->id = atomic_fetch_add_explicit(&next_conn_id, 1, memory_order_relaxed);
	c->w = w;
	c->snap = sk_snapshot_ref(w->snapshot);
	c->l = l;
	c->fd = fd;
	c->peer = *peer;
	c->start = ev_now(w->loop);
	len = sizeof(c->local.ss);
	getsockname(fd, (struct sockaddr *)&c->local.ss, &len);
	c->local.len = len;
	if (c->local.ss.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn_link(w, c);
	sk_stat_add(w->shard, l->st.downstream_pre_cx_active, 1);

	/* original_dst: restore the destination; use_original_dst: hand off to the listener
	 * that owns it (bind_to_port: false listeners live only for this). */
	if ((l->cfg->original_dst || l->cfg->use_original_dst) && c->local.ss.ss_family != AF_UNIX) {
		struct sk_addr dst;

		if (original_dst(fd, &dst))
			c->local = dst;
		if (l->cfg->use_original_dst) {
			struct sk_listener *to = sk_snapshot_listener_for(c->snap, &c->local);

			if (to != NULL && to != l) {
				sk_stat_sub(w->shard, l->st.downstream_pre_cx_active, 1);
				c->l = l = to;
				sk_stat_add(w->shard, l->st.downstream_pre_cx_active, 1);
			}
		}
	}
	ev_io_init(&c->io, on_inspect, fd, EV_READ);
	c->io.data = c;
	ev_init(&c->timer, on_inspect_timeout);
	c->timer.data = c;
	if (inspection_done(c)) {
		dispatch(c);
		return;
	}
	ev_io_start(w->loop, &c->io);
	if (l->cfg->filters_timeout > 0) {
		ev_timer_set(&c->timer, l->cfg->filters_timeout, 0.);
		ev_timer_start(w->loop, &c->timer);
	}
}

/* When accept4 fails for want of descriptors or memory, the connection stays in the
 * backlog and the (level-triggered) watcher would fire again at once: a busy loop with a
 * warning per turn. The worker stops accepting on that listener instead, and its
 * accept_resume timer starts again, a moment later, every watcher still on its list. */
#define ACCEPT_PAUSE_S 0.1

static void on_accept_resume(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_worker *w = t->data;
	struct sk_worker_listen *wl;

	(void)revents;
	for (wl = w->listens; wl != NULL; wl = wl->next)
		if (!ev_is_active(&wl->io))
			ev_io_start(loop, &wl->io);
}

static void pause_accept(struct sk_worker_listen *wl, int err)
{
	struct sk_worker *w = wl->w;

	ev_io_stop(w->loop, &wl->io);
	if (ev_is_active(&w->accept_resume))
		return;
	sk_log_warn(SK_LOG_CONN_HANDLER, "listener '%s': accept: %s: not accepting for %.0f ms",
		    wl->l->cfg->name, strerror(err), ACCEPT_PAUSE_S * 1000);
	ev_timer_init(&w->accept_resume, on_accept_resume, ACCEPT_PAUSE_S, 0.);
	w->accept_resume.data = w;
	ev_timer_start(w->loop, &w->accept_resume);
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_worker_listen *wl = io->data;
	int i;

	(void)loop;
	(void)revents;
	for (i = 0; i < 64; i++) {
		struct sk_addr peer = {0};
		socklen_t len = sizeof(peer.ss);
		int fd = accept4(wl->fd, (struct sockaddr *)&peer.ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				pause_accept(wl, errno);
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				sk_log_warn(SK_LOG_CONN_HANDLER, "listener '%s': accept: %s", wl->l->cfg->name,
					    strerror(errno));
			return;
		}
		peer.len = len;
		start_conn(wl->w, wl->l, fd, &peer);
	}
}

void sk_listener_start_accept(struct sk_worker *w, struct sk_worker_listen *wl)
{
	wl->w = w;
	ev_io_init(&wl->io, on_accept, wl->fd, EV_READ);
	wl->io.data = wl;
	ev_io_start(w->loop, &wl->io);
	wl->next = w->listens;
	w->listens = wl;
}

void sk_listener_stop_accept(struct sk_worker *w, bool inbound_only)
{
	if (!inbound_only)
		ev_timer_stop(w->loop, &w->accept_resume);
	struct sk_worker_listen **pp = &w->listens;

	while (*pp) {
		struct sk_worker_listen *wl = *pp;

		if (inbound_only && wl->l->cfg->direction != SK_DIR_INBOUND) {
			pp = &wl->next;
			continue;
		}
		ev_io_stop(w->loop, &wl->io);
		if (wl->owns_fd)
			close(wl->fd);
		*pp = wl->next;
		free(wl);
	}
}

void sk_listener_close_all(struct sk_worker *w)
{
	while (w->conns)
		sk_conn_close(w->conns);
	sk_http_pool_close_all(w);
}
