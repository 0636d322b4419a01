/* cluster: a cluster at run time — its config, its current host set (replaced whole when
 * DNS or EDS changes it, never edited in place), its circuit-breaker counters and stats,
 * and each worker's load balancer over the host set. Clusters are refcounted: they outlive
 * config snapshots and live as long as a connection uses them.
 * Threads: the main thread creates clusters and publishes host sets; workers pick hosts,
 * each through its own slot (no lock on the hot path). */
#ifndef SKIFF_PROXY_UPSTREAM_CLUSTER_H
#define SKIFF_PROXY_UPSTREAM_CLUSTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "proxy/stats/stats.h"
#include "proxy/network/tls.h"
#include "proxy/network/tls_stats.h"
#include "proxy/upstream/lb.h"
#include "xds/translate/cluster.h"

struct sk_dns;

/* One upstream endpoint. Counters are updated by every worker (atomics). */
struct sk_host {
	struct sk_addr addr;
	char key[SK_ADDR_TEXT_MAX];       /* "ip:port": hash key and /clusters name */
	const char *hostname;             /* DNS clusters: the name it came from (in the cluster's
					   * config, which such clusters never replace); else "" */
	uint32_t weight;
	uint32_t priority;
	uint32_t locality;                /* index into the config's localities */
	uint32_t locality_weight;         /* that locality's load_balancing_weight (0: none) */
	enum sk_health health;
	bool tls;                         /* its transport socket is TLS ... */
	bool tls_istio;                   /* ... the tlsMode-istio match's (else the default's):
					   * sk_cluster_tls_ctx() tells which context */
	atomic_uint_fast64_t cx_total, cx_connect_fail;
	atomic_uint_fast32_t cx_active;
};

/* The hosts one balancer picks among: a priority's healthy hosts, or with locality
 * weighting, one locality's healthy hosts within the priority. */
struct sk_host_group {
	uint32_t weight;                  /* locality weight (locality weighting only) */
	size_t n_hosts, n_healthy;
	uint32_t *healthy;                /* indexes into the host set's hosts */
	struct sk_lb_table *table;        /* over the healthy hosts, in that order */
	size_t lb_index;                  /* this group's balancer in a worker's slot */
};

struct sk_priority_set {
	uint32_t priority;
	size_t n_hosts, n_healthy;
	size_t n_groups;
	struct sk_host_group *groups;     /* one, or one per locality */
};

/* Immutable once published; freed when its last holder releases it. */
struct sk_host_set {
	atomic_uint refcnt;
	uint64_t generation;
	size_t n_hosts;
	struct sk_host *hosts;
	size_t n_priorities;
	struct sk_priority_set *priorities;  /* ascending priority */
	size_t n_groups;                  /* over all priorities: a worker's balancer count */
};

struct sk_cluster_stats {
	sk_stat_id upstream_cx_total, upstream_cx_active, upstream_cx_connect_fail,
		upstream_cx_connect_timeout, upstream_cx_connect_attempts_exceeded,
		upstream_cx_overflow, upstream_cx_none_healthy, upstream_cx_destroy,
		upstream_cx_destroy_local, upstream_cx_destroy_remote, upstream_cx_rx_bytes_total,
		upstream_cx_tx_bytes_total, upstream_cx_length_ms, membership_total,
		membership_healthy, membership_change, update_success, update_failure,
		update_attempt, update_rejected, update_empty,
		circuit_breakers_cx_open, upstream_cx_tls_not_supported;
	/* HTTP (the router): upstream_rq_<class> for 1xx..5xx, upstream_rq_<code> for the codes
	 * of SK_HTTP_CODES (registered up front: stats are registered on the main thread only) */
	sk_stat_id upstream_rq_total, upstream_rq_active, upstream_rq_completed, upstream_rq_time,
		upstream_rq_timeout, upstream_rq_retry, upstream_rq_retry_success,
		upstream_rq_retry_overflow, upstream_rq_retry_limit_exceeded, upstream_rq_per_try_timeout,
		upstream_rq_pending_total,
		upstream_cx_http1_total, upstream_cx_http2_total, upstream_rq_rx_reset, upstream_rq_tx_reset,
		upstream_cx_protocol_error, upstream_cx_idle_timeout, upstream_rq_pending_overflow,
		upstream_rq_pending_active;
	sk_stat_id upstream_rq_class[6];   /* [1..5] */
};

/* The status codes that get an upstream_rq_<code> stat (0-terminated). */
extern const uint16_t sk_http_codes[];
/* Index of code in sk_http_codes, -1 when it has no stat of its own. */
int sk_http_code_index(unsigned code);

/* What one worker keeps for a cluster: its view of the host set and its balancers. */
struct sk_cluster_slot {
	struct sk_host_set *hosts;        /* referenced */
	struct sk_lb **lbs;               /* one per host group */
	uint64_t seed;
	uint32_t n_cx;                    /* this worker's open HTTP connections to the cluster */
};

struct sk_cluster {
	atomic_uint refcnt;
	struct sk_cluster_config *config; /* owned */
	struct sk_cluster_stats st;
	pthread_mutex_t hosts_lock;       /* taken only to swap or to take a reference */
	struct sk_host_set *_Atomic hosts;
	atomic_uint active_cx;            /* circuit breaker: open upstream connections */
	atomic_uint active_retries;       /* circuit breaker max_retries: retries waiting to start */
	atomic_uint active_rq;            /* circuit breaker max_requests: requests upstream */
	/* upstream_rq_<code> (parallel to sk_http_codes) exist once a code was seen, as in Envoy:
	 * workers count into code_pending until the main thread registers the stat */
	_Atomic sk_stat_id code_id[32];
	atomic_uint_fast64_t code_pending[32];
	bool code_tried[32];              /* main thread: registration attempted */
	/* TLS contexts of the default transport socket [0] and of the tlsMode-istio match [1]
	 * (owned references); NULL when raw, or when it needs an SDS secret (not served yet).
	 * Swapped by the main thread when SDS secrets change: read them with
	 * sk_cluster_tls_ctx_acquire (tls_lock) */
	struct sk_tls_ctx *tls_ctx[2];
	pthread_mutex_t tls_lock;
	/* SDS contexts are built when a connection first needs them (most of a mesh's clusters
	 * are never used by one pod): tls_pend holds the secrets of the next build (tls_lock) */
	struct sk_tls_pending {
		bool set;
		struct sk_tls_secret_hold cert, val;
	} tls_pend[2];
	sk_stat_id ssl_context_update_by_sds; /* client_ssl_socket_factory.* (0: no TLS) ... */
	sk_stat_id upstream_context_secrets_not_ready; /* ... a connection refused: no context yet */
	struct sk_tls_stats tls_st;       /* cluster.<name>.ssl.* (registered when TLS) */
	atomic_uint pending_rq;           /* circuit breaker max_pending_requests: waiting for a
					   * connection */
	bool added_via_api;               /* CDS (not the bootstrap) */
	uint32_t n_slots;
	struct sk_cluster_slot *slots;    /* one per worker */
	/* DNS clusters (main thread only) */
	struct sk_dns *dns;
	struct ev_loop *loop;
	struct sk_stats_shard *main_shard;
	ev_timer refresh;
	size_t pending;                   /* queries in flight for this round */
	struct sk_dns_query **queries;
	struct sk_host *resolved;         /* hosts gathered in this round */
	size_t n_resolved, cap_resolved;
};

/* Counts a response code (index k of sk_http_codes) in upstream_rq_<code>. Any thread. */
static inline void sk_cluster_count_code(struct sk_stats_shard *shard, struct sk_cluster *c, int k)
{
	sk_stat_id id = atomic_load_explicit(&c->code_id[k], memory_order_acquire);

	if (id != SK_STAT_NONE)
		sk_stat_inc(shard, id);
	else
		atomic_fetch_add_explicit(&c->code_pending[k], 1, memory_order_relaxed);
}

/* Main thread: registers the upstream_rq_<code> stats of the codes seen since the last call
 * and adds what was counted before (before rendering stats, and every tick). */
void sk_cluster_sync_stats(struct sk_cluster *c, struct sk_stats_store *stats, struct sk_stats_shard *shard);

/* Creates the cluster for cc (taking ownership of it), registers its stats, builds the
 * host set of STATIC/EDS endpoints, and starts resolution for DNS clusters on `loop`.
 * n_workers slots are prepared. Returns NULL with err set. */
struct sk_cluster *sk_cluster_new(struct sk_cluster_config *cc, struct sk_stats_store *stats,
				  struct sk_stats_shard *main_shard, struct sk_dns *dns,
				  struct ev_loop *loop, uint32_t n_workers, char *err, size_t errlen);
/* Main thread: EDS — makes locs (taking ownership) the cluster's endpoints and publishes
 * their host set; workers pick from it on their next request. -ENOMEM with err. */
int sk_cluster_set_localities(struct sk_cluster *c, struct sk_locality_config *locs, size_t n, char *err,
			      size_t errlen);
/* Main thread: the cluster left the configuration — stops its DNS resolution, so that the
 * last reference may be dropped on any thread. */
void sk_cluster_retire(struct sk_cluster *c);
struct sk_cluster *sk_cluster_ref(struct sk_cluster *c);
/* Drops a reference; the last one stops DNS (main thread) and frees. */
void sk_cluster_unref(struct sk_cluster *c);

/* Picks a healthy host for worker `slot` (Envoy's priority load with overprovisioning 1.4,
 * then the cluster's balancer). `hash`: tcp_proxy passes the source IP's. Returns NULL when
 * no host is healthy. The host stays valid while the worker's slot holds its host set:
 * callers keep a reference with sk_host_set_ref when they hold the host longer. */
struct sk_host *sk_cluster_pick(struct sk_cluster *c, uint32_t slot, uint64_t hash, bool has_hash,
				 struct sk_host_set **set_out);

/* The context host h connects with as built so far, borrowed, or NULL (raw, SDS secrets not
 * in, or not built yet: sk_cluster_tls_ctx_acquire builds it). Tests only. */
static inline struct sk_tls_ctx *sk_cluster_tls_ctx(const struct sk_cluster *c, const struct sk_host *h)
{
	return __atomic_load_n(&c->tls_ctx[h->tls_istio ? 1 : 0], __ATOMIC_ACQUIRE);
}

/* A reference on the context of the default socket (istio false) or of the tlsMode-istio
 * match (true), for a new connection (release with sk_tls_ctx_unref); NULL when that socket
 * is raw, its SDS secrets have not arrived, or they do not build a context (logged). Any
 * thread; the first connection after a secret change builds the context from the secrets
 * sk_cluster_tls_update held (a connection keeps the context it started with). */
struct sk_tls_ctx *sk_cluster_tls_ctx_acquire(struct sk_cluster *c, bool istio);

/* Main thread: for the SDS contexts whose secrets include `changed` (NULL: every SDS context
 * neither built nor pending, as at start or in a new configuration), once every secret they
 * name is present, holds those secret versions for the next connection to build the context
 * from (the one before stays in use until then); each such change counts
 * cluster.<name>.client_ssl_socket_factory.ssl_context_update_by_sds when `changed` is set.
 * Returns how many were scheduled. */
int sk_cluster_tls_update(struct sk_cluster *c, const char *changed, sk_tls_secret_hold_fn hold, void *arg);

struct sk_host_set *sk_host_set_ref(struct sk_host_set *hs);
void sk_host_set_unref(struct sk_host_set *hs);

/* The current host set, referenced (for /clusters). */
struct sk_host_set *sk_cluster_hosts(struct sk_cluster *c);

/* Releases a worker's slot (worker thread, on shutdown). */
void sk_cluster_slot_release(struct sk_cluster *c, uint32_t slot);

#endif
