/* server: the process — main libev loop, bootstrap, stats store, admin, lifecycle and the
 * server-wide stats pilot-agent reads. One per process; owns everything it points to
 * except the options. */
#ifndef SKIFF_PROXY_SERVER_H
#define SKIFF_PROXY_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <ev.h>

#include "proxy/server/options.h"
#include "proxy/stats/stats.h"
#include "xds/bootstrap.h"

/* Envoy's envoy.admin.v3.ServerInfo.State numbering, which is also server.state. */
enum sk_server_state {
	SK_STATE_LIVE = 0,
	SK_STATE_DRAINING = 1,
	SK_STATE_PRE_INITIALIZING = 2,
	SK_STATE_INITIALIZING = 3,
};

struct sk_admin;
struct sk_workers;
struct sk_snapshot;
struct sk_dns;
struct sk_xds_config;
struct sk_secrets;

struct sk_server_stats {
	sk_stat_id state, uptime, live, memory_allocated, memory_heap_size, memory_physical_size,
		concurrency, total_connections, hot_restart_epoch, days_until_first_cert_expiring,
		static_unknown_fields, dynamic_unknown_fields, workers_started,
		total_listeners_active, total_listeners_warming, total_listeners_draining,
		listener_added, active_clusters, warming_clusters, cluster_added,
		cds_update_success, cds_update_rejected, cds_update_attempt, cds_update_failure,
		lds_update_success, lds_update_rejected, lds_update_attempt, lds_update_failure,
		connected_state, initialization_time_ms;
};

struct sk_server {
	struct ev_loop *loop;
	const struct sk_options *opts;
	sk_bootstrap_pb *bootstrap;       /* owned */
	struct sk_stats_store *stats;     /* owned */
	struct sk_stats_shard *shard;     /* the main thread's shard */
	struct sk_server_stats st;
	enum sk_server_state state;
	bool healthcheck_failed;
	bool dynamic;                     /* LDS or CDS come from xDS: wait for them */
	uint32_t concurrency;
	ev_tstamp start_time;
	time_t bootstrap_loaded_at;       /* for config_dump's last_updated */
	struct sk_admin *admin;           /* owned; NULL without an admin address */
	struct sk_workers *workers;       /* owned; started once initialized */
	struct sk_snapshot *snapshot;     /* the newest configuration (referenced) */
	struct sk_xds_config *xds;        /* owned; NULL without dynamic resources */
	struct sk_secrets *secrets;       /* owned: static secrets and SDS subscriptions */
	/* Static clusters and listeners naming SDS secrets hold initialization (Envoy's init
	 * manager): the first snapshot is kept until they arrived or sds_init_timer ended */
	struct sk_snapshot *init_snap;
	bool init_wanted, init_done, sds_init_expired;
	ev_timer sds_init_timer;
	struct sk_dns *dns;               /* resolver for DNS clusters */
	ev_timer drain_timer;             /* polls the drain (listener_manager.c) */
	ev_tstamp drain_deadline;
	bool exit_after_drain;
	ev_signal sigterm, sigint;
	ev_timer tick;                    /* refreshes uptime and memory gauges */
	ev_idle shutdown;                 /* deferred exit requested by /quitquitquit */
};

/* Builds the server from a loaded bootstrap (takes ownership of it): stats from
 * stats_config, the admin listener, signals. Returns 0 or -errno with err set. */
int sk_server_init(struct sk_server *s, const struct sk_options *opts, sk_bootstrap_pb *bootstrap,
		   unsigned static_unknown_fields, char *err, size_t errlen);

/* The stats store the bootstrap's stats_config describes (also how --mode validate checks
 * stats_config). NULL with err set ("stats_config.stats_tags[1]: ...") when invalid. */
struct sk_stats_store *sk_server_stats_store_new(const sk_bootstrap_pb *b, char *err, size_t errlen);

/* Main thread: (re)builds the TLS contexts of snap's clusters and listeners that use SDS
 * secret `changed` (NULL: those not built yet) once every secret they name is in the store
 * (s->secrets), and swaps them in for new connections. The store's watch calls it on every
 * secret change; sk_lm_install on every new configuration. */
struct sk_snapshot;
void sk_server_sds_tls_apply(struct sk_server *s, struct sk_snapshot *snap, const char *changed);

/* Runs the loop until shutdown. */
void sk_server_run(struct sk_server *s);

/* Asks the loop to stop after the current callback (signals, /quitquitquit). */
void sk_server_request_shutdown(struct sk_server *s);

void sk_server_set_state(struct sk_server *s, enum sk_server_state state);

/* The end of initialization: workers start, then the server is LIVE (Envoy's order).
 * Returns 0 or -errno with err set. */
int sk_server_initialized(struct sk_server *s, char *err, size_t errlen);
/* The state Envoy reports (/ready, /server_info, server.state): DRAINING while an initialized
 * server fails health checks (/healthcheck/fail), else the lifecycle state. */
enum sk_server_state sk_server_reported_state(const struct sk_server *s);
/* /healthcheck/fail (true) and /healthcheck/ok (false): updates server.live and server.state. */
void sk_server_set_healthcheck_failed(struct sk_server *s, bool failed);
const char *sk_server_state_name(enum sk_server_state state);

/* The node after --service-node/--service-cluster/--service-zone overrides. */
const Envoy__Config__Core__V3__Node *sk_server_node(const struct sk_server *s);

/* Allocator figures for server.memory_* and /memory. glibc's mallinfo2; when the allocator
 * reports nothing (a sanitizer build replaces malloc) the resident set stands in. */
struct sk_memory {
	size_t allocated, heap_size, free_bytes;
};
void sk_server_memory(struct sk_memory *m);

/* Registers the stats created on first use (a cluster's upstream_rq_<code>) and folds in
 * what was counted before; before stats are rendered, and every tick. */
void sk_server_sync_stats(struct sk_server *s);

/* Frees everything; the loop itself is left to the caller. */
void sk_server_destroy(struct sk_server *s);

#endif
