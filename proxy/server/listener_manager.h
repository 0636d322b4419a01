/* listener_manager: turns the bootstrap's static resources into a configuration snapshot
 * (clusters and listeners, translated and validated), binds the listeners' sockets, hands
 * sockets and snapshot to the workers, and drains. Main thread only; state lives in the
 * server. */
#ifndef SKIFF_PROXY_SERVER_LISTENER_MANAGER_H
#define SKIFF_PROXY_SERVER_LISTENER_MANAGER_H

#include <stdbool.h>
#include <stddef.h>

#include "xds/bootstrap.h"

struct ev_loop;
struct sk_dns;
struct sk_server;
struct sk_snapshot;
struct sk_stats_shard;
struct sk_stats_store;

/* Translates static_resources into a snapshot. With bind, listeners get their sockets
 * (errors such as "cannot bind '0.0.0.0:15001': Address already in use" fail). dns and loop
 * may be NULL (validation: DNS clusters are not resolved). */
struct sk_snapshot *sk_lm_build(const sk_bootstrap_pb *b, struct sk_stats_store *stats,
				struct sk_stats_shard *shard, struct sk_dns *dns, struct ev_loop *loop,
				uint32_t n_workers, bool bind, char *err, size_t errlen);

/* Gives every worker the snapshot and its listening sockets. */
int sk_lm_start_workers(struct sk_server *s);

/* Gives every running worker a new snapshot: the sockets its listeners bound, take (pairs
 * old, new: the new listener takes over the old one's sockets, same address) and gone
 * (listeners that stop accepting; their connections drain). Main thread. */
struct sk_listener;
int sk_lm_install(struct sk_server *s, struct sk_snapshot *snap, struct sk_listener *const *take, size_t n_take,
		  struct sk_listener *const *gone, size_t n_gone);

/* Stops accepting (all listeners, or only inbound ones) and, when --drain-time-s runs out,
 * closes the drained listeners' connections (all of them once nothing accepts any more).
 * With exit, the process ends once no connection is left (or at the deadline).
 * server.state is DRAINING meanwhile. */
void sk_lm_drain(struct sk_server *s, bool inbound_only, bool exit);

/* Closes every connection and releases every worker's hold on the configuration; called
 * before the workers stop. */
void sk_lm_stop_workers(struct sk_server *s);

/* Connections open on all workers (approximate while they change). */
uint64_t sk_lm_active_connections(struct sk_server *s);

#endif
