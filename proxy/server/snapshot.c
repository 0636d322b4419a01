/* snapshot: see snapshot.h. */
#include "proxy/server/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xds/translate/route.h"

static int by_name(const void *a, const void *b)
{
	const struct sk_cluster *x = *(struct sk_cluster *const *)a, *y = *(struct sk_cluster *const *)b;

	return strcmp(x->config->name, y->config->name);
}

static int route_by_name(const void *a, const void *b)
{
	return strcmp((*(struct sk_rds_route *const *)a)->name, (*(struct sk_rds_route *const *)b)->name);
}

struct sk_rds_route *sk_rds_route_new(const char *name, struct sk_route_config *rc, char *err, size_t errlen)
{
	struct sk_rds_route *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->name = strdup(name)) == NULL) {
		free(r);
		sk_route_config_free(rc);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&r->refcnt, 1);
	r->rc = rc;
	if (sk_hcm_route_faults(rc, &r->faults, &r->n_faults, err, errlen) < 0) {
		sk_rds_route_unref(r);
		return NULL;
	}
	return r;
}

struct sk_rds_route *sk_rds_route_ref(struct sk_rds_route *r)
{
	atomic_fetch_add_explicit(&r->refcnt, 1, memory_order_relaxed);
	return r;
}

void sk_rds_route_unref(struct sk_rds_route *r)
{
	if (r == NULL || atomic_fetch_sub_explicit(&r->refcnt, 1, memory_order_acq_rel) != 1)
		return;
	sk_route_config_free(r->rc);
	free(r->faults);
	free(r->name);
	free(r);
}

struct sk_snapshot *sk_snapshot_new(uint64_t version, struct sk_listener **listeners, size_t n_listeners,
				    struct sk_cluster **clusters, size_t n_clusters,
				    struct sk_rds_route **routes, size_t n_routes)
{
	struct sk_snapshot *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	atomic_init(&s->refcnt, 1);
	s->version = version;
	s->listeners = listeners;
	s->n_listeners = n_listeners;
	s->clusters = clusters;
	s->n_clusters = n_clusters;
	s->routes = routes;
	s->n_routes = n_routes;
	if (n_clusters > 1)
		qsort(clusters, n_clusters, sizeof(*clusters), by_name);
	if (n_routes > 1)
		qsort(routes, n_routes, sizeof(*routes), route_by_name);
	return s;
}

struct sk_snapshot *sk_snapshot_ref(struct sk_snapshot *s)
{
	if (s)
		atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed);
	return s;
}

void sk_snapshot_unref(struct sk_snapshot *s)
{
	size_t i;

	if (s == NULL || atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) != 1)
		return;
	for (i = 0; i < s->n_listeners; i++)
		sk_listener_unref(s->listeners[i]);
	for (i = 0; i < s->n_clusters; i++)
		sk_cluster_unref(s->clusters[i]);
	for (i = 0; i < s->n_routes; i++)
		sk_rds_route_unref(s->routes[i]);
	free(s->routes);
	free(s->listeners);
	free(s->clusters);
	free(s);
}

struct sk_cluster *sk_snapshot_cluster(const struct sk_snapshot *s, const char *name)
{
	size_t lo = 0, hi = s->n_clusters;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, s->clusters[mid]->config->name);

		if (c == 0)
			return s->clusters[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct sk_rds_route *sk_snapshot_route(const struct sk_snapshot *s, const char *name)
{
	size_t lo = 0, hi = s->n_routes;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, s->routes[mid]->name);

		if (c == 0)
			return s->routes[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

struct sk_listener *sk_snapshot_listener_for(const struct sk_snapshot *s, const struct sk_addr *dst)
{
	struct sk_listener *wildcard = NULL;
	size_t i;

	for (i = 0; i < s->n_listeners; i++) {
		const struct sk_addr *a = &s->listeners[i]->cfg->addr;

		if (sk_addr_equal(a, dst))
			return s->listeners[i];
		if (wildcard == NULL && a->ss.ss_family == dst->ss.ss_family && sk_addr_is_any(a) &&
		    sk_addr_port(a) == sk_addr_port(dst))
			wildcard = s->listeners[i];
	}
	return wildcard;
}
