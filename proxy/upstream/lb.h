/* lb: Envoy's load balancers over one host set: ROUND_ROBIN (smooth weighted), LEAST_REQUEST
 * (power of N choices, weighted), RANDOM, RING_HASH (ketama-style ring, xxHash64 as Envoy),
 * MAGLEV (table of 65537 by default). The table (rings, maglev lookup) is immutable and
 * shared by the workers; each worker has its own sk_lb with its own mutable state (round
 * robin weights, random state), so picking takes no lock.
 * Ownership: sk_lb_table_new copies what it needs from the hosts; callers free with
 * sk_lb_table_free (after every sk_lb built on it is freed). */
#ifndef SKIFF_PROXY_UPSTREAM_LB_H
#define SKIFF_PROXY_UPSTREAM_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sk_lb_policy {
	SK_LB_ROUND_ROBIN,
	SK_LB_LEAST_REQUEST,
	SK_LB_RANDOM,
	SK_LB_RING_HASH,
	SK_LB_MAGLEV,
};

struct sk_lb_config {
	enum sk_lb_policy policy;
	uint32_t choice_count;          /* LEAST_REQUEST: candidates per pick (default 2) */
	uint64_t ring_min_size;         /* RING_HASH: minimum_ring_size (default 1024) */
	uint64_t ring_max_size;         /* RING_HASH: maximum_ring_size (default 8M) */
	uint64_t maglev_table_size;     /* MAGLEV: prime, default 65537 */
};

/* One host as the balancer sees it. `key` is what hash-based policies hash (Envoy hashes
 * the address string "ip:port", or the hostname when use_hostname_for_hashing). */
struct sk_lb_host {
	const char *key;
	uint32_t weight;                /* load_balancing_weight, >= 1 */
};

struct sk_lb_table;                     /* immutable, shared across workers */
struct sk_lb;                           /* one per worker */

/* Builds the shared part for `hosts` (n may be 0). Returns NULL with err set on a bad
 * configuration (e.g. maglev table size not prime, ring min > max). */
struct sk_lb_table *sk_lb_table_new(const struct sk_lb_config *cfg, const struct sk_lb_host *hosts,
				    size_t n, char *err, size_t errlen);
void sk_lb_table_free(struct sk_lb_table *t);

/* Per-worker balancer over a table; `seed` makes RANDOM/LEAST_REQUEST reproducible in tests. */
struct sk_lb *sk_lb_new(const struct sk_lb_table *t, uint64_t seed);
void sk_lb_free(struct sk_lb *lb);

/* Picks a host index in [0, n), or -1 when there is none. `hash` is used by RING_HASH and
 * MAGLEV when has_hash (else they pick at random, as Envoy does without a hash). `active`
 * (may be NULL) gives each host's outstanding requests for LEAST_REQUEST. `excluded` (may
 * be NULL) marks hosts to avoid (retries' previous hosts, unhealthy ones): a pick never
 * returns one while another host is available (a bounded number of re-picks, then a scan
 * of the rest); -1 when all are excluded. */
int sk_lb_pick(struct sk_lb *lb, uint64_t hash, bool has_hash, const uint32_t *active,
	       const bool *excluded);

/* xxHash64 of bytes with seed 0 — Envoy's HashUtil::xxHash64, used for hash policies. */
uint64_t sk_lb_hash(const void *data, size_t len);

#endif
