/* snapshot: one immutable version of the configuration — listeners and clusters — built on
 * the main thread and read by every worker. Refcounted: workers hold the current one,
 * connections the one they started on; the last reference frees it. */
#ifndef SKIFF_PROXY_SERVER_SNAPSHOT_H
#define SKIFF_PROXY_SERVER_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>

#include "proxy/listener/listener.h"
#include "proxy/upstream/cluster.h"

struct sk_snapshot {
	atomic_uint refcnt;
	uint64_t version;
	size_t n_listeners;
	struct sk_listener **listeners;     /* owned */
	size_t n_clusters;
	struct sk_cluster **clusters;       /* referenced, sorted by name */
};

/* Takes ownership of the arrays and what they hold. */
struct sk_snapshot *sk_snapshot_new(uint64_t version, struct sk_listener **listeners, size_t n_listeners,
				    struct sk_cluster **clusters, size_t n_clusters);
struct sk_snapshot *sk_snapshot_ref(struct sk_snapshot *s);
void sk_snapshot_unref(struct sk_snapshot *s);

/* The cluster named name, or NULL. */
struct sk_cluster *sk_snapshot_cluster(const struct sk_snapshot *s, const char *name);

/* The listener that owns destination dst for use_original_dst hand-off: an exact address
 * match first, then a wildcard listener (0.0.0.0 / ::) on the same port. NULL when none. */
struct sk_listener *sk_snapshot_listener_for(const struct sk_snapshot *s, const struct sk_addr *dst);

#endif
