/* http_conn: Envoy's envoy.filters.network.http_connection_manager for HTTP/1.1 on one
 * downstream connection, with the router: requests parsed with sk_h1_parser (pipelined
 * requests are served one after the other, in order), routed with the chain's route table,
 * forwarded over pooled keep-alive upstream connections (a per-worker pool keyed by cluster
 * and host), responses parsed as strictly and streamed back, then logged and counted.
 * An sk_http_conn is owned by its connection (sk_conn) and runs on the connection's worker;
 * pooled upstream connections belong to the worker (sk_http_pool_close_all). */
#ifndef SKIFF_PROXY_NETWORK_HTTP_CONN_H
#define SKIFF_PROXY_NETWORK_HTTP_CONN_H

#include "proxy/stats/stats.h"

struct sk_conn;
struct sk_worker;
struct sk_http_conn;

/* http.<stat_prefix>.* of one HCM chain (Envoy's names). */
struct sk_http_stats {
	sk_stat_id downstream_cx_total, downstream_cx_active, downstream_cx_http1_total,
		downstream_cx_http1_active, downstream_cx_destroy, downstream_cx_protocol_error,
		downstream_cx_idle_timeout, downstream_rq_total, downstream_rq_http1_total,
		downstream_rq_active, downstream_rq_completed, downstream_rq_time, downstream_rq_timeout,
		downstream_rq_idle_timeout, downstream_rq_rx_reset, downstream_rq_tx_reset,
		downstream_rq_too_large, downstream_cx_rx_bytes_total, downstream_cx_tx_bytes_total,
		no_route, no_cluster, rq_redirect, rq_direct_response, rq_total,
		filters_accepted_without_effect, fault_aborts_injected, fault_delays_injected,
		downstream_cx_upgrades_total, downstream_cx_upgrades_active, downstream_rq_ws_on_non_ws_route,
		downstream_cx_http2_total, downstream_cx_http2_active, downstream_rq_http2_total,
		downstream_rq_too_many_premature_resets, cors_origin_valid, cors_origin_invalid;
	/* http2.* (Envoy's HTTP/2 codec stats; one set for every HCM) */
	sk_stat_id h2_rx_reset, h2_tx_reset, h2_header_overflow, h2_headers_cb_no_stream,
		h2_inbound_empty_frames_flood, h2_inbound_priority_frames_flood,
		h2_inbound_window_update_frames_flood, h2_outbound_flood, h2_outbound_control_flood,
		h2_rx_messaging_error, h2_trailers, h2_goaway_sent, h2_streams_active;
	sk_stat_id downstream_rq_class[6]; /* [1..5]: downstream_rq_1xx .. _5xx */
};

/* Main thread: registers http.<prefix>.* into st. */
void sk_http_stats_register(struct sk_http_stats *st, struct sk_stats_store *store, const char *prefix);

/* Starts serving c (its chain has an HCM config; c->hst its stats). May close c. */
void sk_http_conn_start(struct sk_conn *c);

/* Stops everything (called from sk_conn_close): an upstream connection in the middle of an
 * exchange is closed, never pooled. */
void sk_http_conn_free(struct sk_http_conn *hc);

/* Ends an HTTP/2 connection (called from sk_conn_close): every open stream is reset. */
struct sk_h2_conn;
void sk_h2_conn_free(struct sk_h2_conn *h2);

/* Worker: closes the worker's pooled upstream connections (drain end, shutdown). */
void sk_http_pool_close_all(struct sk_worker *w);

/* Worker: closes the idle pooled upstream connections of clusters a new configuration
 * removed or replaced (snap: the worker's new snapshot). */
struct sk_snapshot;
void sk_http_pool_retire(struct sk_worker *w, const struct sk_snapshot *snap);

/* Worker thread ending: frees the thread's nghttp2 callback tables. */
void sk_h2_thread_cleanup(void);
void sk_h2_up_thread_cleanup(void);

/* Worker: an HTTP/2 connection of a draining listener sends a graceful GOAWAY now. */
struct sk_conn;
void sk_h2_conn_drain(struct sk_conn *c);

#endif
