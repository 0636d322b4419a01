/* listener: a listener at run time — its translated config, its stats, the sockets the main
 * thread bound for it — and the per-connection work on a worker: accept, original_dst,
 * the inspectors, filter-chain selection, then the chain's network filter.
 * sk_listener objects are refcounted: every snapshot that holds one keeps a reference (an
 * LDS update that leaves a listener unchanged passes it on). Connections belong to their
 * worker. */
#ifndef SKIFF_PROXY_LISTENER_LISTENER_H
#define SKIFF_PROXY_LISTENER_LISTENER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "proxy/listener/inspector.h"
#include "proxy/network/tls.h"
#include "proxy/network/tls_stats.h"
#include "proxy/stats/stats.h"
#include "xds/translate/listener.h"

struct sk_worker;
struct sk_worker_listen;
struct sk_snapshot;
struct sk_tcp_proxy;
struct sk_tls_conn;
struct sk_tls_ctx;
struct sk_http_conn;
struct sk_h2_conn;
struct sk_http_stats;

struct sk_listener_stats {
	sk_stat_id downstream_cx_total, downstream_cx_active, downstream_cx_destroy,
		downstream_cx_length_ms, no_filter_chain_match, downstream_pre_cx_active,
		downstream_pre_cx_timeout, downstream_listener_filter_error,
		downstream_cx_overflow;
};

/* tcp.<stat_prefix>.* of one tcp_proxy chain. */
struct sk_tcp_stats {
	sk_stat_id downstream_cx_total, downstream_cx_no_route, downstream_cx_rx_bytes_total,
		downstream_cx_tx_bytes_total, downstream_flow_control_paused_reading_total,
		idle_timeout, upstream_flush_active, max_downstream_connection_duration;
};

struct sk_listener {
	atomic_uint refcnt;
	struct sk_listener_config *cfg;     /* owned */
	struct sk_listener_stats st;
	struct sk_tcp_stats *chain_st;      /* per chain; [n_chains] is the default chain's */
	struct sk_http_stats *chain_hst;    /* likewise, for HCM chains */
	/* likewise: server contexts of chains with a DownstreamTlsContext whose certificates
	 * are in the config (owned references); NULL when raw, waiting for SDS, or unloadable */
	struct sk_tls_ctx **chain_tls;      /* SDS rotations swap them (main thread) under tls_lock */
	pthread_mutex_t tls_lock;
	struct sk_tls_stats tls_st;         /* listener.<addr>.ssl.* (registered when a chain is TLS) */
	sk_stat_id ssl_context_update_by_sds; /* server_ssl_socket_factory.* (registered likewise) */
	sk_stat_id downstream_context_secrets_not_ready; /* a connection closed: no context yet */
	int *fds;                           /* per worker, -1 when not bound (main thread) */
	uint32_t n_fds;
	bool bound;
	bool listening;                     /* listen() was called on the sockets */
	/* Set when an update replaced or removed it: its connections are draining (HTTP/1.1
	 * answers with connection: close, HTTP/2 sends GOAWAY) until the drain time ends. */
	atomic_bool draining;
};

/* Builds the run-time listener (stats registered), taking ownership of cfg; one reference. */
struct sk_listener *sk_listener_new(struct sk_listener_config *cfg, struct sk_stats_store *stats);
struct sk_listener *sk_listener_ref(struct sk_listener *l);
/* Main thread: (re)builds the server contexts of TCP chains whose SDS secrets include
 * `changed` (NULL: every SDS chain not built yet, as at start or in a new configuration) once all the secrets they name are present
 * (lookup) and swaps them in for new connections (a connection keeps the context it started
 * with); each rebuild counts listener.<addr>.server_ssl_socket_factory.ssl_context_update_by_sds
 * on shard when `changed` is set. A context that does not build is logged and the previous
 * one kept. Returns how many were swapped in. */
int sk_listener_tls_update(struct sk_listener *l, struct sk_stats_shard *shard, const char *changed,
			   sk_tls_secret_lookup_fn lookup, void *arg);
/* Binds the listener's sockets for n workers: SO_REUSEPORT sockets, one per worker, for IP
 * addresses; one shared socket for a pipe. Returns 0 or -errno with err ("cannot bind
 * '0.0.0.0:15001': Address already in use"). Listeners that do not bind (bind_to_port:
 * false) or that skiff cannot serve yet are left unbound (0). */
int sk_listener_bind(struct sk_listener *l, uint32_t n_workers, bool listen_now, char *err, size_t errlen);
/* Starts listening on sockets bound without listen_now (a listener that warmed: until then
 * connections to its address are refused, as in Envoy). Returns 0 or -errno with err. */
int sk_listener_listen(struct sk_listener *l, char *err, size_t errlen);

#define SK_LISTEN_BACKLOG 1024
/* Drops a reference; the last one closes what the main thread still holds of the sockets
 * (after workers took theirs) and frees. NULL: no-op. */
void sk_listener_unref(struct sk_listener *l);

/* One downstream connection on a worker. */
struct sk_conn {
	uint64_t id;
	struct sk_worker *w;
	struct sk_snapshot *snap;           /* referenced: the config it started on */
	struct sk_listener *l;              /* the listener handling it (after hand-off) */
	int fd;
	struct sk_addr local, peer;         /* local: the original destination when restored */
	ev_io io;
	ev_timer timer;
	double start;
	uint8_t *inspected;                 /* bytes read by the inspectors, sent upstream first */
	size_t n_inspected, cap_inspected;
	bool tls_done, http_done, is_tls;
	struct sk_tls_hello *hello;         /* while inspecting only: freed once a chain is chosen */
	char *sni;                          /* what the hello named, for the access log */
	char *peer_uri_san;                 /* over TLS: the client's URI SANs (the HTTP access log
					     * asks once: peer_uri_san_done) */
	bool peer_uri_san_done;
	char *xfcc;                         /* over mTLS: this hop's x-forwarded-client-cert element
					     * (made by the first request that forwards it) */
	const char *http_proto;
	const struct sk_filter_chain_config *chain;
	const struct sk_tcp_stats *tst;
	const struct sk_http_stats *hst;
	struct sk_tls_conn *tls;            /* the chain terminates TLS: from the handshake until
					     * tcp_proxy's relay takes it */
	struct sk_tcp_proxy *tp;
	struct sk_http_conn *hc;            /* HTTP/1.x */
	struct sk_h2_conn *h2;              /* HTTP/2 */
	bool active_counted;
	struct sk_conn *prev, *next;        /* the worker's list */
};

/* Worker: starts accepting on ws (a socket of one listener). */
void sk_listener_start_accept(struct sk_worker *w, struct sk_worker_listen *wl);
/* Worker: stops accepting on every socket (drain). */
void sk_listener_stop_accept(struct sk_worker *w, bool inbound_only);
/* Worker: closes every connection now (end of drain, shutdown). */
void sk_listener_close_all(struct sk_worker *w);

/* Keeps n more bytes read before the connection's filter took over (they are given to it
 * first). -ENOMEM when out of memory. */
int sk_conn_keep_inspected(struct sk_conn *c, const uint8_t *p, size_t n);

/* Ends a connection: closes the socket, counts, frees later from the reaper. */
void sk_conn_close(struct sk_conn *c);

#endif
