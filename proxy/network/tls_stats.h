/* tls_stats: Envoy's ssl.* counters of one TLS context's scope (cluster.<name>.ssl.*,
 * listener.<addr>.ssl.*) and the outcome of a handshake counted into them. The ids belong to
 * the listener or cluster that registered them (main thread).
 *
 * What a handshake negotiated is counted as Envoy does, under names that exist once used:
 * ssl.versions.<TLSv1.3>, ssl.ciphers.<TLS_AES_128_GCM_SHA256>, ssl.curves.<X25519>,
 * ssl.sigalgs.<ecdsa_secp256r1_sha256> (the peer's signature). Workers count into a table
 * made on the scope's first handshake; the main thread registers the names seen
 * (sk_tls_stats_sync) and adds what was counted before. */
#ifndef SKIFF_PROXY_NETWORK_TLS_STATS_H
#define SKIFF_PROXY_NETWORK_TLS_STATS_H

#include <stdbool.h>

#include "proxy/network/tls.h"
#include "proxy/stats/stats.h"

struct sk_tls_named;

struct sk_tls_stats {
	sk_stat_id handshake, connection_error, no_certificate, session_reused, fail_verify_no_cert,
		fail_verify_error, fail_verify_san;
	struct sk_tls_named *_Atomic named; /* versions, ciphers, curves, sigalgs; NULL until used */
};

/* Main thread: registers "<scope>.ssl.*" (scope: "cluster.x", "listener.0.0.0.0_15006"). */
void sk_tls_stats_register(struct sk_tls_stats *ts, struct sk_stats_store *store, const char *scope);

/* A finished handshake of c: ssl.handshake (+ no_certificate, session_reused) when it
 * succeeded, else the counter of sk_tls_failure(c). */
void sk_tls_stats_count(struct sk_stats_shard *shard, struct sk_tls_stats *ts, const struct sk_tls_conn *c,
			bool ok);

/* Main thread: registers "<scope>.ssl.<kind>.<name>" for the names counted since the last
 * call and adds their counts (before rendering stats, and every tick). */
void sk_tls_stats_sync(struct sk_tls_stats *ts, struct sk_stats_store *store, struct sk_stats_shard *shard,
		       const char *scope);
/* Frees the table (the owner's end; no worker may count any more). */
void sk_tls_stats_free(struct sk_tls_stats *ts);

#endif
