/* tls_stats: Envoy's ssl.* counters of one TLS context's scope (cluster.<name>.ssl.*,
 * listener.<addr>.ssl.*) and the outcome of a handshake counted into them. The ids belong to
 * the listener or cluster that registered them (main thread). */
#ifndef SKIFF_PROXY_NETWORK_TLS_STATS_H
#define SKIFF_PROXY_NETWORK_TLS_STATS_H

#include <stdbool.h>

#include "proxy/network/tls.h"
#include "proxy/stats/stats.h"

struct sk_tls_stats {
	sk_stat_id handshake, connection_error, no_certificate, session_reused, fail_verify_no_cert,
		fail_verify_error, fail_verify_san;
};

/* Main thread: registers "<scope>.ssl.*" (scope: "cluster.x", "listener.0.0.0.0_15006"). */
void sk_tls_stats_register(struct sk_tls_stats *ts, struct sk_stats_store *store, const char *scope);

/* A finished handshake of c: ssl.handshake (+ no_certificate, session_reused) when it
 * succeeded, else the counter of sk_tls_failure(c). */
void sk_tls_stats_count(struct sk_stats_shard *shard, const struct sk_tls_stats *ts, const struct sk_tls_conn *c,
			bool ok);

#endif
