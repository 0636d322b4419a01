/* snapshot: one immutable version of the configuration — listeners, clusters and the route
 * configurations RDS delivered — built on the main thread and read by every worker.
 * Refcounted: workers hold the current one, connections the one they started on, requests
 * the one they were routed with; the last reference frees it. What did not change between
 * two versions (a listener, a cluster, a route configuration) is shared, not copied. */
#ifndef SKIFF_PROXY_SERVER_SNAPSHOT_H
#define SKIFF_PROXY_SERVER_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>

#include "proxy/listener/listener.h"
#include "proxy/upstream/cluster.h"
#include "xds/translate/hcm.h"

/* One RouteConfiguration from RDS, compiled, with the per-route fault configs it carries. */
struct sk_rds_route {
	atomic_uint refcnt;
	char *name;
	struct sk_route_config *rc;         /* owned */
	struct sk_route_fault *faults;      /* owned; see sk_hcm_route_faults */
	unsigned n_faults;
};

/* Takes ownership of rc; NULL when out of memory (rc is freed). */
struct sk_rds_route *sk_rds_route_new(const char *name, struct sk_route_config *rc, char *err, size_t errlen);
struct sk_rds_route *sk_rds_route_ref(struct sk_rds_route *r);
void sk_rds_route_unref(struct sk_rds_route *r);

struct sk_snapshot {
	atomic_uint refcnt;
	uint64_t version;
	size_t n_listeners;
	struct sk_listener **listeners;     /* owned */
	size_t n_clusters;
	struct sk_cluster **clusters;       /* referenced, sorted by name */
	size_t n_routes;
	struct sk_rds_route **routes;       /* referenced, sorted by name */
};

/* Takes ownership of the arrays and of the references they hold (routes may be NULL). */
struct sk_snapshot *sk_snapshot_new(uint64_t version, struct sk_listener **listeners, size_t n_listeners,
				    struct sk_cluster **clusters, size_t n_clusters,
				    struct sk_rds_route **routes, size_t n_routes);
struct sk_snapshot *sk_snapshot_ref(struct sk_snapshot *s);
void sk_snapshot_unref(struct sk_snapshot *s);

/* The cluster named name, or NULL. */
struct sk_cluster *sk_snapshot_cluster(const struct sk_snapshot *s, const char *name);

/* The route configuration named name, or NULL. */
const struct sk_rds_route *sk_snapshot_route(const struct sk_snapshot *s, const char *name);

/* The listener that owns destination dst for use_original_dst hand-off: an exact address
 * match first, then a wildcard listener (0.0.0.0 / ::) on the same port. NULL when none. */
struct sk_listener *sk_snapshot_listener_for(const struct sk_snapshot *s, const struct sk_addr *dst);

#endif
