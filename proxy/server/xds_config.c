/* xds_config: see xds_config.h.
 *
 * Each resource type is a table of entries sorted by name. An update is turned into a
 * `change` — the next table, the entries it creates, the entries it lets go — without
 * touching what serves; only when every resource of the update is valid is the change
 * committed, and then a new snapshot goes to the workers if what they see changed. */
#include "proxy/server/xds_config.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "proxy/listener/listener.h"
#include "proxy/log/log.h"
#include "proxy/server/listener_manager.h"
#include "proxy/server/secrets.h"
#include "proxy/server/server.h"
#include "proxy/server/snapshot.h"
#include "proxy/server/workers.h"
#include "proxy/upstream/cluster.h"
#include "xds/ads.h"
#include "xds/pbjson.h"
#include "xds/resource.h"
#include "xds/translate/route.h"

#define WARM_POLL_SECONDS 0.25
#define TRIM_AFTER_RESOURCES 1000
#define DEFAULT_INITIAL_FETCH_TIMEOUT 15.0

typedef Envoy__Config__Endpoint__V3__ClusterLoadAssignment cla_pb;
typedef Envoy__Config__Cluster__V3__Cluster cluster_pb;
typedef Envoy__Config__Listener__V3__Listener listener_pb;
typedef Envoy__Config__Route__V3__RouteConfiguration route_pb;

/* What every entry starts with: the resource as it was accepted. */
struct res {
	char *name;
	char *version;
	uint8_t *bytes;
	size_t len;
	time_t updated;
};

struct dcluster {
	struct res r;
	struct sk_cluster_config *cc;       /* until the cluster is built (commit) */
	struct sk_cluster *c;               /* this version */
	struct sk_cluster *prev;            /* the version it replaces, serving while it warms */
	bool warming;                       /* eds_wait || sds_wait */
	bool eds_wait;                      /* EDS: its endpoints have not arrived */
	double deadline;                    /* ... the wait ends anyway (ev_now); 0: never */
	bool sds_wait;                      /* an SDS secret its TLS contexts name has not arrived */
	double sds_since;                   /* ... since (ev_now) */
	double sds_deadline;                /* ... the wait ends anyway (ev_now); 0: never */
};

struct dlistener {
	struct res r;
	struct sk_listener *l;              /* this version */
	struct sk_listener *prev;           /* serving while this one warms */
	bool warming;                       /* a route configuration missing, or sds_wait */
	bool sds_wait;                      /* an SDS secret its filter chains name has not arrived */
	double sds_since;                   /* ... since (ev_now) */
	double sds_deadline;                /* ... the wait ends anyway (ev_now); 0: never */
	size_t n_rds;
	char **rds;                         /* the route configurations its HCMs name */
	struct rds_stats *rds_st;           /* per rds: http.<stat_prefix>.rds.<name>.* */
};

struct rds_stats {
	sk_stat_id update_attempt, update_success, update_rejected, update_empty;
};

struct droute {
	struct res r;
	struct sk_rds_route *rt;
};

struct dcla {
	struct res r;                       /* the ClusterLoadAssignment's bytes */
	const cla_pb *msg;                  /* decoded, during the update that brought it only */
};

struct eds_user {
	const char *name;                   /* the cluster's eds_service_name */
	struct dcluster *e;
};

struct table {
	void **v;                           /* entries (struct res first), sorted by name */
	size_t n;
};

enum kind { K_CLUSTER, K_ENDPOINT, K_LISTENER, K_ROUTE, K_COUNT };

struct change {
	struct table next;
	void **fresh;                       /* created by this update */
	size_t n_fresh;
	void **dropped;                     /* current entries replaced or removed */
	size_t n_dropped;
};

/* Listeners that left the configuration: their connections close at the deadline. */
struct drain {
	struct drain *next;
	double deadline;
	size_t n;
	struct sk_listener **ls;            /* referenced */
};

struct close_task {
	atomic_uint pending;                /* workers that have not run it yet */
	size_t n;
	struct sk_listener **ls;            /* referenced; released by the last worker */
};

struct sk_xds_config {
	struct sk_server *s;
	struct sk_grpc_bridge *bridge;
	struct sk_ads *ads;
	bool cds_ads, lds_ads;
	double cds_timeout, lds_timeout;    /* initial_fetch_timeout of CDS / LDS; 0: forever */
	bool cds_done, lds_done;            /* first update seen (accepted or not) or timed out */
	bool cm_initialized, initialized;
	double started;
	struct table t[K_COUNT];
	size_t n_static_clusters, n_static_listeners;
	struct sk_cluster **static_clusters;   /* referenced */
	struct sk_listener **static_listeners; /* referenced */
	uint64_t version;
	ev_timer warm_timer;                /* cluster warming deadlines, CDS/LDS initial fetch */
	ev_timer drain_timer;
	struct drain *drains, **drains_tail;
	size_t n_draining;
	struct eds_user *eds_ix;            /* EDS clusters by service name (sorted), rebuilt by CDS */
	size_t n_eds_ix;
	struct {
		sk_stat_id cds_update_empty, cds_update_time, lds_update_empty, lds_update_time,
			cluster_modified, cluster_removed, listener_modified, listener_removed,
			listener_create_success, listener_create_failure, rate_limit_enforced;
	} st;
};

static const char *const kind_name[K_COUNT] = {"cluster", "ClusterLoadAssignment", "listener", "route configuration"};

/* ---------------------------------------------------------------------------------- */
/* tables                                                                              */

static int res_cmp(const void *a, const void *b)
{
	return strcmp((*(struct res *const *)a)->name, (*(struct res *const *)b)->name);
}

static void *tab_find(const struct table *t, const char *name)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, ((struct res *)t->v[mid])->name);

		if (c == 0)
			return t->v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool in_sorted(const char *const *v, size_t n, const char *name)
{
	return n > 0 && bsearch(&name, v, n, sizeof(*v), str_cmp) != NULL;
}

static int res_init(struct res *r, const struct sk_ads_resource *ar, const char *version)
{
	r->name = strdup(ar->name);
	r->version = strdup(version ? version : "");
	r->bytes = malloc(ar->len ? ar->len : 1);
	r->len = ar->len;
	r->updated = time(NULL);
	if (r->name == NULL || r->version == NULL || r->bytes == NULL)
		return -ENOMEM;
	memcpy(r->bytes, ar->bytes, ar->len);
	return 0;
}

static void res_clear(struct res *r)
{
	free(r->name);
	free(r->version);
	free(r->bytes);
}

static bool res_same(const struct res *r, const struct sk_ads_resource *ar)
{
	return r->len == ar->len && memcmp(r->bytes, ar->bytes, ar->len) == 0;
}

/* ---------------------------------------------------------------------------------- */
/* entries of each type                                                                */

static struct sk_cluster *serving_cluster(const struct dcluster *e)
{
	return e->warming ? e->prev : e->c;
}

static struct sk_listener *serving_listener(const struct dlistener *e)
{
	return e->warming ? e->prev : e->l;
}

static void entry_free(struct sk_xds_config *x, enum kind k, void *p, bool retire)
{
	(void)x;
	if (p == NULL)
		return;
	switch (k) {
	case K_CLUSTER: {
		struct dcluster *e = p;

		if (retire) {
			if (e->c)
				sk_cluster_retire(e->c);
			if (e->prev)
				sk_cluster_retire(e->prev);
		}
		sk_cluster_config_free(e->cc);
		sk_cluster_unref(e->c);
		sk_cluster_unref(e->prev);
		break;
	}
	case K_LISTENER: {
		struct dlistener *e = p;

		sk_listener_unref(e->l);
		sk_listener_unref(e->prev);
		for (size_t i = 0; i < e->n_rds; i++)
			free(e->rds[i]);
		free(e->rds);
		free(e->rds_st);
		break;
	}
	case K_ROUTE:
		sk_rds_route_unref(((struct droute *)p)->rt);
		break;
	case K_ENDPOINT:
	case K_COUNT:
		break;
	}
	res_clear(p);
	free(p);
}

static bool is_static_cluster(const struct sk_xds_config *x, const char *name)
{
	for (size_t i = 0; i < x->n_static_clusters; i++)
		if (strcmp(x->static_clusters[i]->config->name, name) == 0)
			return true;
	return false;
}

static bool is_static_listener(const struct sk_xds_config *x, const char *name)
{
	for (size_t i = 0; i < x->n_static_listeners; i++)
		if (strcmp(x->static_listeners[i]->cfg->name, name) == 0)
			return true;
	return false;
}

static void *make_cluster(struct sk_xds_config *x, const struct sk_ads_resource *ar, const char *version,
			  void *oldp, char *err, size_t errlen)
{
	struct dcluster *e = calloc(1, sizeof(*e)), *old = oldp;

	if (e == NULL || res_init(&e->r, ar, version) < 0)
		goto oom;
	if (is_static_cluster(x, ar->name)) {
		snprintf(err, errlen, "cluster '%s': a static cluster cannot be added or updated by CDS", ar->name);
		goto fail;
	}
	e->cc = sk_cluster_config_new((const cluster_pb *)ar->msg, err, errlen);
	if (e->cc == NULL)
		goto fail;
	/* as Envoy creating the transport socket factories: the secrets are asked for now (a
	 * rejected update leaves them subscribed, unused) */
	if (x->s->secrets && sk_secrets_subscribe_cluster(x->s->secrets, e->cc, err, errlen) < 0)
		goto fail;
	if (old && serving_cluster(old))
		e->prev = sk_cluster_ref(serving_cluster(old));
	return e;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	entry_free(x, K_CLUSTER, e, false);
	return NULL;
}

static int collect_rds(struct sk_xds_config *x, struct dlistener *e)
{
	const struct sk_listener_config *lc = e->l->cfg;

	for (size_t i = 0; i <= lc->n_chains; i++) {
		const struct sk_filter_chain_config *fc = i < lc->n_chains ? &lc->chains[i] : lc->default_chain;
		const char *name = fc && fc->http && fc->hcm ? fc->hcm->rds_name : NULL;
		size_t k;

		if (name == NULL)
			continue;
		for (k = 0; k < e->n_rds && strcmp(e->rds[k], name) != 0; k++)
			;
		if (k < e->n_rds)
			continue;
		char **v = realloc(e->rds, (e->n_rds + 1) * sizeof(*v));
		struct rds_stats *rs;

		if (v == NULL)
			return -ENOMEM;
		e->rds = v;
		rs = realloc(e->rds_st, (e->n_rds + 1) * sizeof(*rs));
		if (rs == NULL)
			return -ENOMEM;
		e->rds_st = rs;
		if ((v[e->n_rds] = strdup(name)) == NULL)
			return -ENOMEM;
		rs += e->n_rds;
#define R(f) rs->f = sk_stats_counterf(x->s->stats, "http.%s.rds.%s." #f, fc->hcm->stat_prefix, name)
		R(update_attempt);
		R(update_success);
		R(update_rejected);
		R(update_empty);
#undef R
		e->n_rds++;
	}
	return 0;
}

static void *make_listener(struct sk_xds_config *x, const struct sk_ads_resource *ar, const char *version,
			   void *oldp, char *err, size_t errlen)
{
	struct dlistener *e = calloc(1, sizeof(*e)), *old = oldp;
	struct sk_listener_config *lc;

	if (e == NULL || res_init(&e->r, ar, version) < 0)
		goto oom;
	if (is_static_listener(x, ar->name)) {
		snprintf(err, errlen, "listener '%s': a static listener cannot be added or updated by LDS", ar->name);
		goto fail;
	}
	lc = sk_listener_config_new((const listener_pb *)ar->msg, err, errlen);
	if (lc == NULL)
		goto fail;
	e->l = sk_listener_new(lc, x->s->stats);
	if (e->l == NULL) {
		sk_listener_config_free(lc);
		goto oom;
	}
	if (collect_rds(x, e) < 0)
		goto oom;
	if (x->s->secrets && sk_secrets_subscribe_listener(x->s->secrets, e->l->cfg, err, errlen) < 0)
		goto fail;
	if (old && serving_listener(old))
		e->prev = sk_listener_ref(serving_listener(old));
	return e;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	entry_free(x, K_LISTENER, e, false);
	return NULL;
}

static void *make_route(struct sk_xds_config *x, const struct sk_ads_resource *ar, const char *version,
			void *oldp, char *err, size_t errlen)
{
	struct droute *e = calloc(1, sizeof(*e));
	struct sk_route_config *rc;
	char why[1024];

	(void)oldp;
	if (e == NULL || res_init(&e->r, ar, version) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	rc = sk_route_config_new((const route_pb *)ar->msg, why, sizeof(why));
	if (rc == NULL) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	e->rt = sk_rds_route_new(ar->name, rc, why, sizeof(why));
	if (e->rt == NULL) {
		snprintf(err, errlen, "route config '%s': %s", ar->name, why);
		goto fail;
	}
	return e;
fail:
	entry_free(x, K_ROUTE, e, false);
	return NULL;
}

static int eds_user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct eds_user *)a)->name, ((const struct eds_user *)b)->name);
}

/* The index of EDS clusters by service name, after the cluster table changed. */
static void eds_index(struct sk_xds_config *x)
{
	const struct table *t = &x->t[K_CLUSTER];
	struct eds_user *v = malloc((t->n + 1) * sizeof(*v));
	size_t n = 0;

	if (v == NULL) {
		sk_log_error(SK_LOG_UPSTREAM, "out of memory indexing EDS clusters");
		return;
	}
	for (size_t i = 0; i < t->n; i++) {
		struct dcluster *e = t->v[i];

		if (e->c && e->c->config->eds_service_name)
			v[n++] = (struct eds_user){e->c->config->eds_service_name, e};
	}
	qsort(v, n, sizeof(*v), eds_user_cmp);
	free(x->eds_ix);
	x->eds_ix = v;
	x->n_eds_ix = n;
}

/* The clusters (dynamic entries, current table) whose EDS service name is name. */
static size_t eds_users(const struct sk_xds_config *x, const char *name, struct dcluster **out, size_t max)
{
	size_t lo = 0, hi = x->n_eds_ix, n = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(x->eds_ix[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < x->n_eds_ix && n < max && strcmp(x->eds_ix[lo].name, name) == 0; lo++)
		out[n++] = x->eds_ix[lo].e;
	return n;
}

static void *make_cla(struct sk_xds_config *x, const struct sk_ads_resource *ar, const char *version, void *oldp,
		      char *err, size_t errlen)
{
	struct dcla *e = calloc(1, sizeof(*e));
	static const struct sk_cluster_config generic = {.type = SK_CLUSTER_EDS};
	struct sk_locality_config *locs;
	size_t n;
	char why[512];

	(void)x;
	(void)oldp;
	if (e == NULL || res_init(&e->r, ar, version) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* checked the way an EDS cluster reads it; the cluster's own TLS settings only choose
	 * flags, not validity */
	if (sk_endpoints_translate((const cla_pb *)ar->msg, &generic, &locs, &n, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "ClusterLoadAssignment '%s': %s", ar->name, why);
		goto fail;
	}
	sk_localities_free(locs, n);
	e->msg = (const cla_pb *)ar->msg;
	return e;
fail:
	entry_free(x, K_ENDPOINT, e, false);
	return NULL;
}

typedef void *(*make_fn)(struct sk_xds_config *x, const struct sk_ads_resource *ar, const char *version,
			 void *old, char *err, size_t errlen);

static const make_fn makers[K_COUNT] = {make_cluster, make_cla, make_listener, make_route};

/* ---------------------------------------------------------------------------------- */
/* building a change                                                                   */

static void change_abort(struct sk_xds_config *x, enum kind k, struct change *ch)
{
	for (size_t i = 0; i < ch->n_fresh; i++)
		entry_free(x, k, ch->fresh[i], false);
	free(ch->fresh);
	free(ch->dropped);
	free(ch->next.v);
	memset(ch, 0, sizeof(*ch));
}

/* SotW: the update is the whole set (for LDS and CDS; for RDS and EDS absence is not
 * removal, as in Envoy) and one invalid resource rejects all of it. Delta: additions,
 * updates and removed names; as in Envoy, an invalid resource is rejected alone (its
 * previous version stays) and the rest applies: returns 1 with the rejections in err,
 * and the caller commits and then NACKs. */
static int change_build(struct sk_xds_config *x, enum kind k, const struct sk_ads_update *u, struct change *ch,
			char *err, size_t errlen)
{
	struct table *cur = &x->t[k];
	bool full = !u->delta && (k == K_CLUSTER || k == K_LISTENER);
	size_t n = u->n_resources, i, used = 0;
	int rc = 0;
	const char **names = calloc(n + 1, sizeof(*names)), **removed = NULL;

	memset(ch, 0, sizeof(*ch));
	ch->next.v = calloc(cur->n + n + 1, sizeof(void *));
	ch->fresh = calloc(n + 1, sizeof(void *));
	ch->dropped = calloc(cur->n + 1, sizeof(void *));
	if (u->n_removed)
		removed = malloc(u->n_removed * sizeof(*removed));
	if (names == NULL || ch->next.v == NULL || ch->fresh == NULL || ch->dropped == NULL ||
	    (u->n_removed && removed == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < n; i++)
		names[i] = u->resources[i].name;
	qsort(names, n, sizeof(*names), str_cmp);
	for (i = 1; i < n; i++)
		if (strcmp(names[i], names[i - 1]) == 0) {
			snprintf(err, errlen, "%s '%s': duplicate name in one update", kind_name[k], names[i]);
			goto fail;
		}
	for (i = 0; i < u->n_removed; i++)
		removed[i] = u->removed[i];
	if (u->n_removed)
		qsort(removed, u->n_removed, sizeof(*removed), str_cmp);

	/* what stays as it is */
	for (i = 0; i < cur->n; i++) {
		struct res *r = cur->v[i];

		if (in_sorted(names, n, r->name))
			continue; /* decided below */
		if (full || in_sorted(removed, u->n_removed, r->name))
			ch->dropped[ch->n_dropped++] = r;
		else
			ch->next.v[ch->next.n++] = r;
	}
	/* what the update brings */
	for (i = 0; i < n; i++) {
		const struct sk_ads_resource *ar = &u->resources[i];
		struct res *old = tab_find(cur, ar->name), *e;

		if (old && res_same(old, ar)) {
			ch->next.v[ch->next.n++] = old;
			continue;
		}
		if (used + 2 >= errlen)
			used = errlen > 2 ? errlen - 2 : 0;
		e = makers[k](x, ar, u->delta ? ar->version : u->version, old, err + used, errlen - used);
		if (e == NULL && !u->delta)
			goto fail;
		if (e == NULL) {
			rc = 1;
			used += strlen(err + used);
			if (used + 2 < errlen) {
				memcpy(err + used, "; ", 3);
				used += 2;
			}
			if (old)
				ch->next.v[ch->next.n++] = old;
			continue;
		}
		ch->fresh[ch->n_fresh++] = e;
		ch->next.v[ch->next.n++] = e;
		if (old)
			ch->dropped[ch->n_dropped++] = old;
	}
	qsort(ch->next.v, ch->next.n, sizeof(void *), res_cmp);
	free(names);
	free(removed);
	if (rc == 1 && used >= 2 && strcmp(err + used - 2, "; ") == 0)
		err[used - 2] = '\0';
	return rc;
fail:
	free(names);
	free(removed);
	change_abort(x, k, ch);
	return -1;
}

/* The change becomes the table; what it replaced is released (retire: removed clusters
 * stop resolving). */
static void change_commit(struct sk_xds_config *x, enum kind k, struct change *ch)
{
	struct table *cur = &x->t[k];

	for (size_t i = 0; i < ch->n_dropped; i++)
		entry_free(x, k, ch->dropped[i], true);
	free(cur->v);
	*cur = ch->next;
	free(ch->fresh);
	free(ch->dropped);
	memset(ch, 0, sizeof(*ch));
}

/* ---------------------------------------------------------------------------------- */
/* endpoints into clusters                                                             */

static cla_pb *cla_decode(const struct dcla *e)
{
	return (cla_pb *)protobuf_c_message_unpack(&envoy__config__endpoint__v3__cluster_load_assignment__descriptor,
						   NULL, e->r.len, e->r.bytes);
}

/* A warming cluster that waits for nothing any more becomes the one that serves (its
 * predecessor is released). True when it did. */
static bool cluster_warmed(struct dcluster *e)
{
	if (!e->warming || e->eds_wait || e->sds_wait)
		return false;
	e->warming = false;
	if (e->prev) {
		if (e->prev != e->c)
			sk_cluster_retire(e->prev);
		sk_cluster_unref(e->prev);
		e->prev = NULL;
	}
	return true;
}

/* ---------------------------------------------------------------------------------- */
/* SDS secrets that clusters and listeners wait for                                    */

/* The secrets of cfg without a version yet: counted into *missing (the first one's name in
 * *first); *wait becomes the longest initial_fetch_timeout among them, < 0 once one of them
 * waits forever (timeout 0). */
/* A new cluster or listener waits for the secrets that are not here yet, as Envoy's SDS init
 * targets: each until it arrives or its initial_fetch_timeout (counted from now) passes. Sets
 * *sds_wait, *since and *deadline: when the longest timeout of those missing ends (0: one of
 * them waits forever; sds_still recomputes it as secrets arrive). */
static void sds_begin(struct sk_xds_config *x, const char *what, const char *name, size_t missing, double wait,
		      const char *first, bool *sds_wait, double *since, double *deadline)
{
	*sds_wait = missing > 0;
	*since = ev_now(x->s->loop);
	*deadline = missing > 0 && wait > 0 ? *since + wait : 0;
	if (missing > 0)
		sk_log_info(SK_LOG_CONFIG, "%s '%s': warming until SDS secret '%s'%s arrives%s", what, name, first,
			    missing > 1 ? " (and another)" : "", wait > 0 ? "" : " (no initial fetch timeout)");
}

/* After a secret arrived: false when none is missing any more; else the deadline follows
 * the timeouts of those still missing (a secret without timeout may have been the one that
 * arrived). */
static bool sds_still(size_t missing, double wait, double since, double *deadline)
{
	if (missing == 0)
		return false;
	*deadline = wait > 0 ? since + wait : 0;
	return true;
}

/* Gives cluster e the endpoints of la (NULL: none). The cluster stops waiting for EDS. */
static void assign(struct sk_xds_config *x, struct dcluster *e, const cla_pb *la)
{
	struct sk_locality_config *locs = NULL;
	size_t n = 0;
	char err[512];

	if (la && sk_endpoints_translate(la, e->c->config, &locs, &n, err, sizeof(err)) < 0) {
		/* validated already; only memory can fail here */
		sk_log_error(SK_LOG_UPSTREAM, "cluster '%s': endpoints: %s", e->r.name, err);
		sk_stat_inc(x->s->shard, e->c->st.update_failure);
		return;
	}
	if (sk_cluster_set_localities(e->c, locs, n, err, sizeof(err)) < 0) {
		sk_log_error(SK_LOG_UPSTREAM, "cluster '%s': endpoints: %s", e->r.name, err);
		sk_stat_inc(x->s->shard, e->c->st.update_failure);
		return;
	}
	e->eds_wait = false;
	cluster_warmed(e);
}

/* ---------------------------------------------------------------------------------- */
/* snapshots                                                                           */

static size_t count_warming(const struct sk_xds_config *x, enum kind k)
{
	size_t n = 0;

	for (size_t i = 0; i < x->t[k].n; i++)
		n += k == K_CLUSTER ? ((struct dcluster *)x->t[k].v[i])->warming
				    : ((struct dlistener *)x->t[k].v[i])->warming;
	return n;
}

static void refresh_gauges(struct sk_xds_config *x)
{
	struct sk_server *s = x->s;
	size_t wc = count_warming(x, K_CLUSTER), wl = count_warming(x, K_LISTENER), active_l = x->n_static_listeners;

	for (size_t i = 0; i < x->t[K_LISTENER].n; i++)
		active_l += serving_listener(x->t[K_LISTENER].v[i]) != NULL;
	sk_stat_set(s->shard, s->st.warming_clusters, wc);
	sk_stat_set(s->shard, s->st.active_clusters, s->snapshot ? s->snapshot->n_clusters : 0);
	sk_stat_set(s->shard, s->st.total_listeners_warming, wl);
	sk_stat_set(s->shard, s->st.total_listeners_active, active_l);
	sk_stat_set(s->shard, s->st.total_listeners_draining, x->n_draining);
}

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t p = (uintptr_t)*(void *const *)a, q = (uintptr_t)*(void *const *)b;

	return p < q ? -1 : p > q;
}

static bool has_ptr(void *const *sorted, size_t n, const void *p)
{
	return n > 0 && bsearch(&p, sorted, n, sizeof(void *), ptr_cmp) != NULL;
}

static void close_task_run(struct sk_worker *w, void *arg)
{
	struct close_task *t = arg;
	struct sk_conn *c, *next;

	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		for (size_t i = 0; i < t->n; i++)
			if (c->l == t->ls[i]) {
				sk_conn_close(c);
				break;
			}
	}
	if (atomic_fetch_sub(&t->pending, 1) != 1)
		return;
	for (size_t i = 0; i < t->n; i++)
		sk_listener_unref(t->ls[i]);
	free(t->ls);
	free(t);
}

static void on_drain_timer(struct ev_loop *loop, ev_timer *tm, int revents)
{
	struct sk_xds_config *x = tm->data;
	double now = ev_now(loop);

	(void)revents;
	while (x->drains && x->drains->deadline <= now) {
		struct drain *d = x->drains;
		uint32_t nw = x->s->workers ? sk_workers_count(x->s->workers) : 0;

		x->drains = d->next;
		if (x->drains == NULL)
			x->drains_tail = &x->drains;
		x->n_draining -= d->n;
		if (nw > 0) {
			struct close_task *t = malloc(sizeof(*t));

			if (t != NULL) {
				atomic_init(&t->pending, nw);
				t->n = d->n;
				t->ls = d->ls;
				d->ls = NULL;
				for (uint32_t i = 0; i < nw; i++)
					sk_worker_post(sk_workers_get(x->s->workers, i), close_task_run, t);
			}
		}
		for (size_t i = 0; d->ls && i < d->n; i++)
			sk_listener_unref(d->ls[i]);
		free(d->ls);
		free(d);
	}
	ev_timer_stop(loop, tm);
	if (x->drains) {
		ev_timer_set(tm, x->drains->deadline - now, 0.);
		ev_timer_start(loop, tm);
	}
	refresh_gauges(x);
}

static void drain_listeners(struct sk_xds_config *x, struct sk_listener **ls, size_t n)
{
	struct drain *d = calloc(1, sizeof(*d));
	struct ev_loop *loop = x->s->loop;

	if (d == NULL) {
		for (size_t i = 0; i < n; i++)
			sk_listener_unref(ls[i]);
		free(ls);
		return;
	}
	d->deadline = ev_now(loop) + x->s->opts->drain_time_s;
	d->n = n;
	d->ls = ls;
	*x->drains_tail = d;
	x->drains_tail = &d->next;
	x->n_draining += n;
	if (!ev_is_active(&x->drain_timer)) {
		ev_timer_set(&x->drain_timer, d->deadline - ev_now(loop), 0.);
		ev_timer_start(loop, &x->drain_timer);
	}
}

static bool same_address(const struct sk_listener *a, const struct sk_listener *b)
{
	const struct sk_addr *p = &a->cfg->addr, *q = &b->cfg->addr;

	if (p->ss.ss_family != q->ss.ss_family)
		return false;
	if (p->ss.ss_family == AF_UNIX)
		return p->len == q->len && memcmp(&p->ss, &q->ss, p->len) == 0;
	return sk_addr_equal(p, q);
}

/* Builds the snapshot of what serves now and, once workers run, hands it to them: new
 * listeners take over the sockets of the ones they replace (same address) or bring their
 * own; listeners that left drain. sk_lm_install (here, or sk_lm_start_workers at init) builds
 * the SDS TLS contexts of the clusters and listeners that join from the secret store before
 * any worker sees them; later rotations rebuild them through the server's secret watcher. */
static void publish(struct sk_xds_config *x)
{
	struct sk_server *s = x->s;
	const struct table *tc = &x->t[K_CLUSTER], *tl = &x->t[K_LISTENER], *tr = &x->t[K_ROUTE];
	size_t nc = 0, nl = 0, nr = 0, i, k;
	struct sk_cluster **cs = calloc(x->n_static_clusters + tc->n + 1, sizeof(*cs));
	struct sk_listener **ls = calloc(x->n_static_listeners + tl->n + 1, sizeof(*ls));
	struct sk_rds_route **rs = calloc(tr->n + 1, sizeof(*rs));
	struct sk_snapshot *snap, *old = s->snapshot;

	if (cs == NULL || ls == NULL || rs == NULL)
		goto oom;
	for (i = 0; i < x->n_static_clusters; i++)
		cs[nc++] = sk_cluster_ref(x->static_clusters[i]);
	for (i = 0; i < tc->n; i++)
		if (serving_cluster(tc->v[i]))
			cs[nc++] = sk_cluster_ref(serving_cluster(tc->v[i]));
	for (i = 0; i < x->n_static_listeners; i++)
		ls[nl++] = sk_listener_ref(x->static_listeners[i]);
	for (i = 0; i < tl->n; i++)
		if (serving_listener(tl->v[i]))
			ls[nl++] = sk_listener_ref(serving_listener(tl->v[i]));
	for (i = 0; i < tr->n; i++)
		rs[nr++] = sk_rds_route_ref(((struct droute *)tr->v[i])->rt);
	snap = sk_snapshot_new(++x->version, ls, nl, cs, nc, rs, nr);
	if (snap == NULL) {
		for (i = 0; i < nc; i++)
			sk_cluster_unref(cs[i]);
		for (i = 0; i < nl; i++)
			sk_listener_unref(ls[i]);
		for (i = 0; i < nr; i++)
			sk_rds_route_unref(rs[i]);
		goto oom;
	}
	if (x->initialized && s->workers) {
		void **was = malloc((old->n_listeners + 1) * sizeof(void *));
		void **now = malloc((nl + 1) * sizeof(void *));
		struct sk_listener **take = malloc((2 * nl + 1) * sizeof(*take));
		struct sk_listener **gone = malloc((old->n_listeners + 1) * sizeof(*gone));
		size_t n_take = 0, n_gone = 0;

		if (was == NULL || now == NULL || take == NULL || gone == NULL) {
			free(was);
			free(now);
			free(take);
			free(gone);
			sk_snapshot_unref(snap);
			goto oom;
		}
		memcpy(was, old->listeners, old->n_listeners * sizeof(void *));
		memcpy(now, snap->listeners, nl * sizeof(void *));
		qsort(was, old->n_listeners, sizeof(void *), ptr_cmp);
		qsort(now, nl, sizeof(void *), ptr_cmp);
		for (i = 0; i < old->n_listeners; i++)
			if (!has_ptr(now, nl, old->listeners[i]))
				gone[n_gone++] = old->listeners[i];
		for (i = 0; i < nl; i++) {
			struct sk_listener *l = snap->listeners[i];
			char err[512];

			if (has_ptr(was, old->n_listeners, l) || !l->cfg->bind_to_port || l->bound)
				continue;
			for (k = 0; k < n_gone; k++)
				if (gone[k]->bound && same_address(gone[k], l))
					break;
			if (k < n_gone) {
				take[2 * n_take] = gone[k];
				take[2 * n_take + 1] = l;
				n_take++;
				l->bound = l->listening = true;
				continue;
			}
			if (sk_listener_bind(l, s->concurrency, true, err, sizeof(err)) < 0) {
				sk_log_error(SK_LOG_CONFIG, "listener '%s': %s", l->cfg->name, err);
				sk_stat_inc(s->shard, x->st.listener_create_failure);
			}
		}
		for (i = 0; i < nl; i++) {
			struct sk_listener *l = snap->listeners[i];
			char err[512];

			if (l->bound && !l->listening && l->n_fds > 0 && sk_listener_listen(l, err, sizeof(err)) < 0)
				sk_log_error(SK_LOG_CONFIG, "listener '%s': %s", l->cfg->name, err);
		}
		for (i = 0; i < n_gone; i++)
			atomic_store(&gone[i]->draining, true);
		if (sk_lm_install(s, snap, take, n_take, gone, n_gone) < 0)
			sk_log_error(SK_LOG_CONFIG, "out of memory handing a configuration to the workers");
		if (n_gone > 0) {
			for (i = 0; i < n_gone; i++)
				sk_listener_ref(gone[i]);
			drain_listeners(x, gone, n_gone);
		} else {
			free(gone);
		}
		free(was);
		free(now);
		free(take);
	}
	s->snapshot = snap;
	sk_snapshot_unref(old);
	refresh_gauges(x);
	return;
oom:
	free(cs);
	free(ls);
	free(rs);
	sk_log_error(SK_LOG_CONFIG, "out of memory building configuration version %llu",
		     (unsigned long long)x->version);
}

/* ---------------------------------------------------------------------------------- */
/* subscriptions and initialization                                                    */

static void subscribe_eds(struct sk_xds_config *x)
{
	const struct table *t = &x->t[K_CLUSTER];
	const char **names = calloc(t->n + x->n_static_clusters + 1, sizeof(*names));
	size_t n = 0, i, u = 0;

	if (names == NULL)
		return;
	for (i = 0; i < x->n_static_clusters; i++)
		if (x->static_clusters[i]->config->type == SK_CLUSTER_EDS)
			names[n++] = x->static_clusters[i]->config->eds_service_name;
	for (i = 0; i < t->n; i++) {
		const struct dcluster *e = t->v[i];

		if (e->c && e->c->config->type == SK_CLUSTER_EDS)
			names[n++] = e->c->config->eds_service_name;
		if (e->prev && e->prev->config->type == SK_CLUSTER_EDS)
			names[n++] = e->prev->config->eds_service_name;
	}
	qsort(names, n, sizeof(*names), str_cmp);
	for (i = 0; i < n; i++)
		if (u == 0 || strcmp(names[u - 1], names[i]) != 0)
			names[u++] = names[i];
	sk_ads_subscribe(x->ads, SK_TYPE_URL_ENDPOINT, names, u, false);
	free(names);
}

static void subscribe_rds(struct sk_xds_config *x)
{
	const struct table *t = &x->t[K_LISTENER];
	size_t total = 0, n = 0, i, u = 0;
	const char **names;

	for (i = 0; i < t->n; i++)
		total += ((struct dlistener *)t->v[i])->n_rds;
	names = calloc(total + 1, sizeof(*names));
	if (names == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		const struct dlistener *e = t->v[i];

		for (size_t k = 0; k < e->n_rds; k++)
			names[n++] = e->rds[k];
	}
	qsort(names, n, sizeof(*names), str_cmp);
	for (i = 0; i < n; i++)
		if (u == 0 || strcmp(names[u - 1], names[i]) != 0)
			names[u++] = names[i];
	sk_ads_subscribe(x->ads, SK_TYPE_URL_ROUTE, names, u, false);
	free(names);
}

/* Listeners whose route configurations are all here stop warming. True when one did. */
static bool warm_listeners(struct sk_xds_config *x)
{
	const struct table *t = &x->t[K_LISTENER];
	bool changed = false;

	for (size_t i = 0; i < t->n; i++) {
		struct dlistener *e = t->v[i];
		size_t k;

		if (!e->warming || e->sds_wait)
			continue;
		for (k = 0; k < e->n_rds && tab_find(&x->t[K_ROUTE], e->rds[k]); k++)
			;
		if (k < e->n_rds)
			continue;
		e->warming = false;
		sk_listener_unref(e->prev);
		e->prev = NULL;
		changed = true;
	}
	return changed;
}

static void arm_warm_timer(struct sk_xds_config *x)
{
	bool need = (!x->cds_done && x->cds_timeout > 0) || (!x->lds_done && x->lds_timeout > 0);

	for (size_t i = 0; !need && i < x->t[K_CLUSTER].n; i++) {
		const struct dcluster *e = x->t[K_CLUSTER].v[i];

		need = e->warming && ((e->eds_wait && e->deadline > 0) || (e->sds_wait && e->sds_deadline > 0));
	}
	for (size_t i = 0; !need && i < x->t[K_LISTENER].n; i++) {
		const struct dlistener *e = x->t[K_LISTENER].v[i];

		need = e->warming && e->sds_wait && e->sds_deadline > 0;
	}
	if (need && !ev_is_active(&x->warm_timer))
		ev_timer_again(x->s->loop, &x->warm_timer);
	else if (!need && ev_is_active(&x->warm_timer))
		ev_timer_stop(x->s->loop, &x->warm_timer);
}

/* Envoy's initialization: clusters first (CDS and their EDS), then listeners (LDS and their
 * RDS); the server goes LIVE once both are in. */
static void progress(struct sk_xds_config *x)
{
	struct sk_server *s = x->s;
	char err[512];

	if (!x->cm_initialized && x->cds_done && count_warming(x, K_CLUSTER) == 0) {
		x->cm_initialized = true;
		sk_log_info(SK_LOG_UPSTREAM, "cm init: all clusters initialized");
		if (x->lds_ads) {
			sk_ads_subscribe(x->ads, SK_TYPE_URL_LISTENER, NULL, 0, true);
			x->started = ev_now(s->loop); /* LDS's initial fetch timeout counts from here */
		}
	}
	if (x->cm_initialized && !x->initialized && x->lds_done && count_warming(x, K_LISTENER) == 0) {
		x->initialized = true;
		sk_log_info(SK_LOG_MAIN, "all dependencies initialized. starting workers");
		if (sk_server_initialized(s, err, sizeof(err)) < 0)
			sk_log_critical(SK_LOG_MAIN, "cannot start the workers: %s", err);
		refresh_gauges(x);
	}
	arm_warm_timer(x);
}

static void on_warm_timer(struct ev_loop *loop, ev_timer *tm, int revents)
{
	struct sk_xds_config *x = tm->data;
	double now = ev_now(loop);
	bool changed = false;

	(void)revents;
	if (!x->cds_done && x->cds_timeout > 0 && now - x->started >= x->cds_timeout) {
		sk_log_warn(SK_LOG_CONFIG, "CDS: no response within the initial fetch timeout (%.1f s)", x->cds_timeout);
		x->cds_done = true;
		x->started = now;
	}
	if (x->cm_initialized && !x->lds_done && x->lds_timeout > 0 && now - x->started >= x->lds_timeout) {
		sk_log_warn(SK_LOG_CONFIG, "LDS: no response within the initial fetch timeout (%.1f s)", x->lds_timeout);
		x->lds_done = true;
	}
	for (size_t i = 0; i < x->t[K_CLUSTER].n; i++) {
		struct dcluster *e = x->t[K_CLUSTER].v[i];

		if (e->warming && e->eds_wait && e->deadline > 0 && now >= e->deadline) {
			sk_log_warn(SK_LOG_UPSTREAM, "cluster '%s': endpoints did not arrive within the initial fetch "
				    "timeout; serving it without endpoints", e->r.name);
			assign(x, e, NULL);
			changed = true;
		}
		if (e->warming && e->sds_wait && e->sds_deadline > 0 && now >= e->sds_deadline) {
			sk_log_warn(SK_LOG_UPSTREAM, "cluster '%s': SDS secrets did not arrive within the initial fetch "
				    "timeout; its TLS hosts refuse connections until they do", e->r.name);
			e->sds_wait = false;
			changed |= cluster_warmed(e);
		}
	}
	for (size_t i = 0; i < x->t[K_LISTENER].n; i++) {
		struct dlistener *e = x->t[K_LISTENER].v[i];

		if (e->warming && e->sds_wait && e->sds_deadline > 0 && now >= e->sds_deadline) {
			sk_log_warn(SK_LOG_CONFIG, "listener '%s': SDS secrets did not arrive within the initial fetch "
				    "timeout; its TLS filter chains refuse connections until they do", e->r.name);
			e->sds_wait = false;
		}
	}
	changed |= warm_listeners(x);
	if (changed)
		publish(x);
	progress(x);
}

/* ---------------------------------------------------------------------------------- */
/* applying updates                                                                    */

static int apply_clusters(struct sk_xds_config *x, struct sk_ads_update *u, char *err, size_t errlen)
{
	struct sk_server *s = x->s;
	double now = ev_now(s->loop);
	struct change ch;
	struct dcluster **fresh;
	size_t i, n_fresh, added = 0, modified = 0;

	int partial = change_build(x, K_CLUSTER, u, &ch, err, errlen);
	bool changed;

	if (partial < 0)
		return -1;
	changed = ch.n_fresh > 0 || ch.n_dropped > 0;
	for (i = 0; i < ch.n_fresh; i++) {
		struct dcluster *e = ch.fresh[i];
		char why[512];

		e->c = sk_cluster_new(e->cc, s->stats, s->shard, s->dns, s->loop, s->concurrency, why, sizeof(why));
		e->cc = NULL; /* the cluster owns it, or freed it */
		if (e->c == NULL) {
			snprintf(err, errlen, "cluster '%s': %s", e->r.name, why);
			change_abort(x, K_CLUSTER, &ch);
			return -1;
		}
		e->c->added_via_api = true;
	}
	for (i = 0; i < ch.n_dropped; i++)
		if (tab_find(&ch.next, ((struct res *)ch.dropped[i])->name) == NULL)
			sk_stat_inc(s->shard, x->st.cluster_removed);
	fresh = (struct dcluster **)ch.fresh;
	n_fresh = ch.n_fresh;
	ch.fresh = NULL; /* kept for below; commit frees only the arrays it owns */
	change_commit(x, K_CLUSTER, &ch);
	eds_index(x);
	for (i = 0; i < n_fresh; i++) {
		struct dcluster *e = fresh[i];
		struct dcla *known;
		double wait = 0;
		const char *first = NULL;
		size_t missing = sk_secrets_missing_cluster(x->s->secrets, e->c->config, &wait, &first);

		if (e->prev)
			modified++;
		else
			added++;
		sds_begin(x, "cluster", e->r.name, missing, wait, first, &e->sds_wait, &e->sds_since, &e->sds_deadline);
		e->warming = e->sds_wait;
		if (e->c->config->type != SK_CLUSTER_EDS) {
			if (!e->warming) {
				sk_cluster_unref(e->prev);
				e->prev = NULL;
			}
			continue;
		}
		known = tab_find(&x->t[K_ENDPOINT], e->c->config->eds_service_name);
		e->warming = e->eds_wait = true;
		if (known) {
			cla_pb *la = cla_decode(known);

			assign(x, e, la);
			if (la)
				protobuf_c_message_free_unpacked(&la->base, NULL);
		} else if (e->c->config->eds_initial_fetch_timeout > 0) {
			e->deadline = now + e->c->config->eds_initial_fetch_timeout;
		}
	}
	free(fresh);
	sk_stat_add(s->shard, s->st.cluster_added, added);
	sk_stat_add(s->shard, x->st.cluster_modified, modified);
	if (added || modified || x->t[K_CLUSTER].n != 0 || u->n_removed)
		sk_log_info(SK_LOG_UPSTREAM, "cds: %zu clusters (%zu added, %zu modified), version %s",
			    x->t[K_CLUSTER].n, added, modified, u->version ? u->version : "");
	subscribe_eds(x);
	if (changed)
		publish(x);
	return partial ? -1 : 0;
}

/* Endpoints: validated as a whole first, then given to the clusters that use them. */
static int apply_endpoints(struct sk_xds_config *x, struct sk_ads_update *u, char *err, size_t errlen)
{
	struct change ch;
	struct dcla **fresh;
	size_t i, n_fresh, max = x->t[K_CLUSTER].n + 1;
	struct dcluster **users = malloc(max * sizeof(*users));
	bool warmed = false;

	if (users == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int partial = change_build(x, K_ENDPOINT, u, &ch, err, errlen);

	if (partial < 0) {
		free(users);
		return -1;
	}
	/* Delta removed a ClusterLoadAssignment: its clusters have no endpoints any more */
	for (i = 0; i < ch.n_dropped; i++) {
		struct res *d = ch.dropped[i];
		size_t n;

		if (tab_find(&ch.next, d->name) != NULL)
			continue;
		n = eds_users(x, d->name, users, max);
		for (size_t k = 0; k < n; k++)
			assign(x, users[k], NULL);
	}
	fresh = (struct dcla **)ch.fresh;
	n_fresh = ch.n_fresh;
	ch.fresh = NULL;
	change_commit(x, K_ENDPOINT, &ch);
	for (i = 0; i < n_fresh; i++) {
		struct dcla *e = fresh[i];
		size_t n = eds_users(x, e->r.name, users, max);
		cla_pb *la;

		la = (cla_pb *)e->msg;
		e->msg = NULL; /* the update's message: gone after it */
		for (size_t k = 0; k < n; k++) {
			bool was = users[k]->warming;

			assign(x, users[k], la);
			warmed |= was && !users[k]->warming;
		}
	}
	free(fresh);
	free(users);
	if (warmed)
		publish(x);
	return partial ? -1 : 0;
}

/* Two listeners may not share an address (a listener and its own previous version may). */
static int check_addresses(struct sk_xds_config *x, const struct table *next, char *err, size_t errlen)
{
	size_t n = next->n + x->n_static_listeners, i, k = 0;
	struct sk_listener **v = malloc((n + 1) * sizeof(*v));

	if (v == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < x->n_static_listeners; i++)
		v[k++] = x->static_listeners[i];
	for (i = 0; i < next->n; i++)
		v[k++] = ((struct dlistener *)next->v[i])->l;
	for (i = 0; i < k; i++) {
		if (!v[i]->cfg->bind_to_port)
			continue;
		for (size_t j = i + 1; j < k; j++) {
			char a[SK_ADDR_TEXT_MAX];

			if (!v[j]->cfg->bind_to_port || !same_address(v[i], v[j]))
				continue;
			sk_addr_format(&v[j]->cfg->addr, a, sizeof(a));
			snprintf(err, errlen, "listener '%s': address %s is already used by listener '%s'",
				 v[j]->cfg->name, a, v[i]->cfg->name);
			free(v);
			return -1;
		}
	}
	free(v);
	return 0;
}

/* A new listener binds its own sockets unless one serving now has its address: then it
 * takes that one's sockets when it replaces it (publish). */
static int bind_fresh(struct sk_xds_config *x, struct change *ch, char *err, size_t errlen)
{
	const struct sk_snapshot *cur = x->s->snapshot;

	for (size_t i = 0; i < ch->n_fresh; i++) {
		struct dlistener *e = ch->fresh[i];
		char why[512];
		size_t k;

		if (!e->l->cfg->bind_to_port)
			continue;
		for (k = 0; cur && k < cur->n_listeners; k++)
			if (cur->listeners[k]->bound && same_address(cur->listeners[k], e->l))
				break;
		if (cur && k < cur->n_listeners)
			continue;
		if (sk_listener_bind(e->l, x->s->concurrency, false, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "listener '%s': %s", e->r.name, why);
			sk_stat_inc(x->s->shard, x->st.listener_create_failure);
			return -1;
		}
	}
	return 0;
}

static int apply_listeners(struct sk_xds_config *x, struct sk_ads_update *u, char *err, size_t errlen)
{
	struct sk_server *s = x->s;
	struct change ch;
	struct dlistener **fresh;
	size_t i, n_fresh, added = 0, modified = 0, removed = 0;

	int partial = change_build(x, K_LISTENER, u, &ch, err, errlen);
	bool changed;

	if (partial < 0)
		return -1;
	changed = ch.n_fresh > 0 || ch.n_dropped > 0;
	if (check_addresses(x, &ch.next, err, errlen) < 0 || bind_fresh(x, &ch, err, errlen) < 0) {
		change_abort(x, K_LISTENER, &ch);
		return -1;
	}
	for (i = 0; i < ch.n_dropped; i++)
		removed += tab_find(&ch.next, ((struct res *)ch.dropped[i])->name) == NULL;
	fresh = (struct dlistener **)ch.fresh;
	n_fresh = ch.n_fresh;
	ch.fresh = NULL;
	change_commit(x, K_LISTENER, &ch);
	for (i = 0; i < n_fresh; i++) {
		struct dlistener *e = fresh[i];
		double wait = 0;
		const char *first = NULL;
		size_t k, missing = sk_secrets_missing_listener(x->s->secrets, e->l->cfg, &wait, &first);

		if (e->prev)
			modified++;
		else
			added++;
		sk_stat_inc(s->shard, x->st.listener_create_success);
		sds_begin(x, "listener", e->r.name, missing, wait, first, &e->sds_wait, &e->sds_since,
			  &e->sds_deadline);
		for (k = 0; k < e->n_rds && tab_find(&x->t[K_ROUTE], e->rds[k]); k++)
			;
		e->warming = k < e->n_rds || e->sds_wait;
		if (!e->warming) {
			sk_listener_unref(e->prev);
			e->prev = NULL;
		}
	}
	free(fresh);
	sk_stat_add(s->shard, s->st.listener_added, added);
	sk_stat_add(s->shard, x->st.listener_modified, modified);
	sk_stat_add(s->shard, x->st.listener_removed, removed);
	sk_log_info(SK_LOG_CONFIG, "lds: %zu listeners (%zu added, %zu modified, %zu removed), version %s",
		    x->t[K_LISTENER].n, added, modified, removed, u->version ? u->version : "");
	subscribe_rds(x);
	if (changed)
		publish(x);
	return partial ? -1 : 0;
}

static int apply_routes(struct sk_xds_config *x, struct sk_ads_update *u, char *err, size_t errlen)
{
	struct change ch;

	int partial = change_build(x, K_ROUTE, u, &ch, err, errlen);
	bool changed = ch.n_fresh > 0 || ch.n_dropped > 0;

	if (partial < 0)
		return -1;
	change_commit(x, K_ROUTE, &ch);
	if (changed) {
		warm_listeners(x);
		publish(x);
	}
	return partial ? -1 : 0;
}

/* ---------------------------------------------------------------------------------- */
/* the ADS client's callbacks                                                          */

/* Fields skiff's protos do not know, anywhere in msg (not inside Any payloads). */
static unsigned unknown_fields(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	unsigned n = m->n_unknown_fields;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (*(const uint32_t *)(const void *)(base + f->quantifier_offset) != f->id)
				continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t cnt = *(const size_t *)(const void *)(base + f->quantifier_offset);
			ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)(const void *)(base + f->offset);

			for (size_t k = 0; k < cnt; k++)
				n += unknown_fields(v[k]);
		} else {
			const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(const void *)(base + f->offset);

			if (sub)
				n += unknown_fields(sub);
		}
	}
	return n;
}

/* Envoy counts EDS updates per cluster (cluster.<name>.update_*) and RDS updates per
 * connection manager (http.<stat_prefix>.rds.<name>.update_*). */
static void count_update(struct sk_xds_config *x, enum kind k, const struct sk_ads_update *u, int rc)
{
	struct sk_stats_shard *sh = x->s->shard;
	size_t i;

	if (k == K_ENDPOINT) {
		size_t max = x->t[K_CLUSTER].n + 1;
		struct dcluster **users = malloc(max * sizeof(*users));

		for (i = 0; users && i < u->n_resources; i++) {
			size_t n = eds_users(x, u->resources[i].name, users, max);
			const cla_pb *la = (const cla_pb *)u->resources[i].msg;

			for (size_t j = 0; j < n; j++) {
				const struct sk_cluster_stats *st = &users[j]->c->st;

				sk_stat_inc(sh, st->update_attempt);
				sk_stat_inc(sh, rc == 0 ? st->update_success : st->update_rejected);
				if (rc == 0 && la && la->n_endpoints == 0)
					sk_stat_inc(sh, st->update_empty);
			}
		}
		free(users);
		return;
	}
	for (size_t l = 0; l < x->t[K_LISTENER].n; l++) {
		const struct dlistener *e = x->t[K_LISTENER].v[l];

		for (size_t r = 0; r < e->n_rds; r++)
			for (i = 0; i < u->n_resources; i++) {
				if (strcmp(e->rds[r], u->resources[i].name) != 0)
					continue;
				sk_stat_inc(sh, e->rds_st[r].update_attempt);
				sk_stat_inc(sh, rc == 0 ? e->rds_st[r].update_success : e->rds_st[r].update_rejected);
			}
	}
}

static int on_apply(void *ctx, struct sk_ads_update *u, char *err, size_t errlen)
{
	struct sk_xds_config *x = ctx;
	struct sk_server *s = x->s;
	int k = -1, rc;
	unsigned unknown = 0;
	bool strict = false;

	if (strcmp(u->type_url, SK_TYPE_URL_SECRET) == 0 && s->secrets != NULL) {
		/* SDS over ADS: the store checks and counts them; warming follows (on_secret) */
		rc = sk_secrets_apply_ads(s->secrets, u, err, errlen);
		if (rc < 0)
			sk_log_warn(SK_LOG_CONFIG, "SDS (ADS) update version %s rejected: %s", u->version ? u->version : "",
				    err);
		progress(x);
		return rc;
	}
	if (strcmp(u->type_url, SK_TYPE_URL_CLUSTER) == 0)
		k = K_CLUSTER;
	else if (strcmp(u->type_url, SK_TYPE_URL_ENDPOINT) == 0)
		k = K_ENDPOINT;
	else if (strcmp(u->type_url, SK_TYPE_URL_LISTENER) == 0)
		k = K_LISTENER;
	else if (strcmp(u->type_url, SK_TYPE_URL_ROUTE) == 0)
		k = K_ROUTE;
	if (k < 0) {
		snprintf(err, errlen, "type %s: not subscribed", u->type_url);
		return -1;
	}
	for (size_t i = 0; i < u->n_resources; i++) {
		unsigned n = u->resources[i].msg ? unknown_fields(u->resources[i].msg) : 0;

		if (n > 0 && s->opts->reject_unknown_dynamic_fields) {
			/* --reject-unknown-dynamic-fields: Envoy's strict mode for xDS */
			snprintf(err, errlen, "%s '%s': %u unknown field%s (--reject-unknown-dynamic-fields)",
				 kind_name[k], u->resources[i].name, n, n == 1 ? "" : "s");
			strict = true;
			break;
		}
		unknown += n;
	}
	switch (k) {
	case K_CLUSTER:
		sk_stat_inc(s->shard, s->st.cds_update_attempt);
		rc = strict ? -1 : apply_clusters(x, u, err, errlen);
		sk_stat_inc(s->shard, rc == 0 ? s->st.cds_update_success : s->st.cds_update_rejected);
		if (rc == 0 && u->n_resources == 0 && u->n_removed == 0)
			sk_stat_inc(s->shard, x->st.cds_update_empty);
		if (rc == 0)
			sk_stat_set(s->shard, x->st.cds_update_time, (uint64_t)time(NULL) * 1000);
		x->cds_done = true;
		break;
	case K_ENDPOINT:
		rc = strict ? -1 : apply_endpoints(x, u, err, errlen);
		count_update(x, K_ENDPOINT, u, rc);
		break;
	case K_LISTENER:
		sk_stat_inc(s->shard, s->st.lds_update_attempt);
		rc = strict ? -1 : apply_listeners(x, u, err, errlen);
		sk_stat_inc(s->shard, rc == 0 ? s->st.lds_update_success : s->st.lds_update_rejected);
		if (rc == 0 && u->n_resources == 0 && u->n_removed == 0)
			sk_stat_inc(s->shard, x->st.lds_update_empty);
		if (rc == 0)
			sk_stat_set(s->shard, x->st.lds_update_time, (uint64_t)time(NULL) * 1000);
		x->lds_done = true;
		break;
	default:
		rc = strict ? -1 : apply_routes(x, u, err, errlen);
		count_update(x, K_ROUTE, u, rc);
		break;
	}
	if (rc == 0 && unknown > 0 && !s->opts->ignore_unknown_dynamic_fields) {
		sk_stat_add(s->shard, s->st.dynamic_unknown_fields, unknown);
		sk_log_debug(SK_LOG_CONFIG, "%s: %u fields unknown to skiff were ignored", sk_xds_type_short(u->type_url),
			     unknown);
	}
	if (rc < 0)
		sk_log_warn(SK_LOG_CONFIG, "%s update version %s rejected: %s", sk_xds_type_short(u->type_url),
			    u->version ? u->version : "", err);
	progress(x);
	if (u->n_resources + u->n_removed >= TRIM_AFTER_RESOURCES)
		malloc_trim(0); /* a large update leaves its decoded messages' memory free in the heap */
	return rc;
}

static void on_event(void *ctx, const struct sk_ads_event *ev)
{
	struct sk_xds_config *x = ctx;
	struct sk_server *s = x->s;

	switch (ev->kind) {
	case SK_ADS_EV_CONNECTED:
		sk_stat_set(s->shard, s->st.connected_state, 1);
		break;
	case SK_ADS_EV_DISCONNECTED:
		sk_stat_set(s->shard, s->st.connected_state, 0);
		if (x->cds_ads) {
			sk_stat_inc(s->shard, s->st.cds_update_attempt);
			sk_stat_inc(s->shard, s->st.cds_update_failure);
		}
		if (x->lds_ads && x->cm_initialized) {
			sk_stat_inc(s->shard, s->st.lds_update_attempt);
			sk_stat_inc(s->shard, s->st.lds_update_failure);
		}
		sk_log_warn(SK_LOG_CONFIG, "xDS stream closed: grpc status %d: %s; retrying in %u ms",
			    ev->grpc_status, ev->details ? ev->details : "", ev->retry_ms);
		break;
	case SK_ADS_EV_BAD_MESSAGE:
		sk_log_warn(SK_LOG_CONFIG, "xDS: %s", ev->details ? ev->details : "bad message");
		break;
	}
}

/* A secret got a version: the clusters and listeners that waited only for secrets now
 * present stop warming. */
static void on_secret(void *ctx, const char *name)
{
	struct sk_xds_config *x = ctx;
	bool changed = false;

	(void)name;
	for (size_t i = 0; i < x->t[K_CLUSTER].n; i++) {
		struct dcluster *e = x->t[K_CLUSTER].v[i];
		double wait = 0;
		const char *first = NULL;
		size_t missing;

		if (!e->warming || !e->sds_wait)
			continue;
		missing = sk_secrets_missing_cluster(x->s->secrets, e->c->config, &wait, &first);
		if (sds_still(missing, wait, e->sds_since, &e->sds_deadline))
			continue;
		e->sds_wait = false;
		sk_log_info(SK_LOG_UPSTREAM, "cluster '%s': its SDS secrets are here", e->r.name);
		changed |= cluster_warmed(e);
	}
	for (size_t i = 0; i < x->t[K_LISTENER].n; i++) {
		struct dlistener *e = x->t[K_LISTENER].v[i];
		double wait = 0;
		const char *first = NULL;
		size_t missing;

		if (!e->warming || !e->sds_wait)
			continue;
		missing = sk_secrets_missing_listener(x->s->secrets, e->l->cfg, &wait, &first);
		if (sds_still(missing, wait, e->sds_since, &e->sds_deadline))
			continue;
		e->sds_wait = false;
		sk_log_info(SK_LOG_CONFIG, "listener '%s': its SDS secrets are here", e->r.name);
	}
	changed |= warm_listeners(x);
	if (changed)
		publish(x);
	progress(x);
}

/* How the secret store asks for its SDS-over-ADS secrets on this stream. */
static int subscribe_secrets(void *ctx, const char *const *names, size_t n)
{
	struct sk_xds_config *x = ctx;

	return sk_ads_subscribe(x->ads, SK_TYPE_URL_SECRET, names, n, false);
}

/* ---------------------------------------------------------------------------------- */
/* life                                                                                */

static void register_stats(struct sk_xds_config *x)
{
	struct sk_stats_store *st = x->s->stats;

#define C(f, name) x->st.f = sk_stats_counter(st, name)
#define G(f, name) x->st.f = sk_stats_gauge(st, name, SK_GAUGE_MAIN_ONLY)
	C(cds_update_empty, "cluster_manager.cds.update_empty");
	G(cds_update_time, "cluster_manager.cds.update_time");
	C(lds_update_empty, "listener_manager.lds.update_empty");
	G(lds_update_time, "listener_manager.lds.update_time");
	C(cluster_modified, "cluster_manager.cluster_modified");
	C(cluster_removed, "cluster_manager.cluster_removed");
	C(listener_modified, "listener_manager.listener_modified");
	C(listener_removed, "listener_manager.listener_removed");
	C(listener_create_success, "listener_manager.listener_create_success");
	C(listener_create_failure, "listener_manager.listener_create_failure");
	C(rate_limit_enforced, "control_plane.rate_limit_enforced");
#undef C
#undef G
}

static bool is_ads(const Envoy__Config__Core__V3__ConfigSource *c)
{
	return c && c->config_source_specifier_case == ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS;
}

struct sk_xds_config *sk_xds_config_start(struct sk_server *s, int *rc, char *err, size_t errlen)
{
	const sk_bootstrap_pb *b = s->bootstrap;
	const Envoy__Config__Bootstrap__V3__Bootstrap__DynamicResources *dr = b->dynamic_resources;
	struct sk_ads_bootstrap ab;
	struct sk_ads_config cfg = {0};
	struct sk_xds_config *x;
	size_t i;

	*rc = 0;
	if (dr == NULL || (dr->lds_config == NULL && dr->cds_config == NULL))
		return NULL;
	if (dr->cds_config && !is_ads(dr->cds_config)) {
		snprintf(err, errlen, "dynamic_resources.cds_config: only ads is supported");
		*rc = -ENOTSUP;
		return NULL;
	}
	if (dr->lds_config && !is_ads(dr->lds_config)) {
		snprintf(err, errlen, "dynamic_resources.lds_config: only ads is supported");
		*rc = -ENOTSUP;
		return NULL;
	}
	if ((*rc = sk_ads_bootstrap_read(b, &ab, err, errlen)) < 0) {
		if (*rc == -ENOENT)
			snprintf(err, errlen, "dynamic_resources: cds_config/lds_config use ads, but ads_config is missing");
		*rc = *rc == -ENOENT ? -EINVAL : *rc;
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		sk_ads_bootstrap_clear(&ab);
		snprintf(err, errlen, "out of memory");
		*rc = -ENOMEM;
		return NULL;
	}
	x->s = s;
	x->cds_ads = dr->cds_config != NULL;
	x->lds_ads = dr->lds_config != NULL;
	x->cds_done = !x->cds_ads;
	x->lds_done = !x->lds_ads;
	x->cds_timeout = x->cds_ads ? sk_duration_seconds(dr->cds_config->initial_fetch_timeout,
							  DEFAULT_INITIAL_FETCH_TIMEOUT) : 0;
	x->lds_timeout = x->lds_ads ? sk_duration_seconds(dr->lds_config->initial_fetch_timeout,
							  DEFAULT_INITIAL_FETCH_TIMEOUT) : 0;
	x->started = ev_now(s->loop);
	x->drains_tail = &x->drains;
	register_stats(x);
	x->n_static_clusters = s->snapshot->n_clusters;
	x->n_static_listeners = s->snapshot->n_listeners;
	x->static_clusters = calloc(x->n_static_clusters + 1, sizeof(*x->static_clusters));
	x->static_listeners = calloc(x->n_static_listeners + 1, sizeof(*x->static_listeners));
	if (x->static_clusters == NULL || x->static_listeners == NULL)
		goto oom;
	for (i = 0; i < x->n_static_clusters; i++)
		x->static_clusters[i] = sk_cluster_ref(s->snapshot->clusters[i]);
	for (i = 0; i < x->n_static_listeners; i++)
		x->static_listeners[i] = sk_listener_ref(s->snapshot->listeners[i]);
	ev_init(&x->warm_timer, on_warm_timer);
	x->warm_timer.repeat = WARM_POLL_SECONDS;
	x->warm_timer.data = x;
	ev_init(&x->drain_timer, on_drain_timer);
	x->drain_timer.data = x;

	x->bridge = sk_grpc_bridge_create(s->loop);
	if (x->bridge == NULL)
		goto oom;
	cfg.api_type = ab.api_type;
	cfg.set_node_on_first_message_only = ab.set_node_on_first_message_only;
	cfg.node = sk_server_node(s);
	cfg.bridge = x->bridge;
	cfg.target = ab.target;
	cfg.authority = ab.authority;
	cfg.metadata = ab.metadata;
	cfg.n_metadata = ab.n_metadata;
	cfg.max_receive_bytes = ab.max_receive_bytes;
	cfg.apply = on_apply;
	cfg.on_event = on_event;
	cfg.ctx = x;
	x->ads = sk_ads_create(s->loop, &cfg, err, errlen);
	sk_ads_bootstrap_clear(&ab);
	if (x->ads == NULL) {
		*rc = -EINVAL;
		sk_xds_config_free(x);
		return NULL;
	}
	sk_stat_set(s->shard, s->st.connected_state, 0);
	if (s->secrets != NULL) {
		if (sk_secrets_watch(s->secrets, on_secret, x) < 0) {
			snprintf(err, errlen, "out of memory");
			*rc = -ENOMEM;
			sk_xds_config_free(x);
			return NULL;
		}
		sk_secrets_set_ads(s->secrets, subscribe_secrets, x);
	}
	if (x->cds_ads)
		sk_ads_subscribe(x->ads, SK_TYPE_URL_CLUSTER, NULL, 0, true);
	progress(x); /* without CDS, LDS is subscribed at once */
	sk_ads_start(x->ads);
	sk_log_info(SK_LOG_CONFIG, "xDS: %s ADS to %s", ab.api_type == SK_ADS_DELTA ? "delta" : "state-of-the-world",
		    cfg.target);
	return x;
oom:
	sk_ads_bootstrap_clear(&ab);
	snprintf(err, errlen, "out of memory");
	*rc = -ENOMEM;
	sk_xds_config_free(x);
	return NULL;
}

void sk_xds_config_free(struct sk_xds_config *x)
{
	size_t i;

	if (x == NULL)
		return;
	if (x->s->secrets != NULL) {
		sk_secrets_unwatch(x->s->secrets, on_secret, x);
		sk_secrets_set_ads(x->s->secrets, NULL, NULL);
	}
	sk_ads_destroy(x->ads);
	sk_grpc_bridge_destroy(x->bridge);
	ev_timer_stop(x->s->loop, &x->warm_timer);
	ev_timer_stop(x->s->loop, &x->drain_timer);
	while (x->drains) {
		struct drain *d = x->drains;

		x->drains = d->next;
		for (i = 0; i < d->n; i++)
			sk_listener_unref(d->ls[i]);
		free(d->ls);
		free(d);
	}
	for (int k = 0; k < K_COUNT; k++) {
		for (i = 0; i < x->t[k].n; i++)
			entry_free(x, (enum kind)k, x->t[k].v[i], true);
		free(x->t[k].v);
	}
	for (i = 0; x->static_clusters && i < x->n_static_clusters; i++)
		sk_cluster_unref(x->static_clusters[i]);
	for (i = 0; x->static_listeners && i < x->n_static_listeners; i++)
		sk_listener_unref(x->static_listeners[i]);
	free(x->static_clusters);
	free(x->static_listeners);
	free(x->eds_ix);
	free(x);
}

/* ---------------------------------------------------------------------------------- */
/* /config_dump                                                                        */

static json_t *entry_json(const struct res *r, const char *key, const ProtobufCMessageDescriptor *d)
{
	json_t *e = json_object();

	json_object_set_new(e, "version_info", json_string(r->version));
	json_object_set_new(e, key, sk_pbjson_any_json_bytes(d, r->bytes, r->len));
	json_object_set_new(e, "last_updated", sk_pbjson_timestamp(r->updated));
	return e;
}

static void add_list(json_t *dump, const char *field, json_t *arr)
{
	if (json_array_size(arr) > 0)
		json_object_set_new(dump, field, arr);
	else
		json_decref(arr);
}

void sk_xds_config_dump(const struct sk_xds_config *x, enum sk_xds_dump what, json_t *dump)
{
	json_t *a = json_array(), *b = json_array();
	size_t i;

	switch (what) {
	case SK_XDS_DUMP_CLUSTERS: {
		struct sk_ads_type_stats ts;

		if (sk_ads_type_stats(x->ads, SK_TYPE_URL_CLUSTER, &ts) == 0 && ts.version_text && ts.version_text[0])
			json_object_set_new(dump, "version_info", json_string(ts.version_text));
		for (i = 0; i < x->t[K_CLUSTER].n; i++) {
			const struct dcluster *e = x->t[K_CLUSTER].v[i];

			json_array_append_new(e->warming ? b : a,
					      entry_json(&e->r, "cluster", &envoy__config__cluster__v3__cluster__descriptor));
		}
		add_list(dump, "dynamic_active_clusters", a);
		add_list(dump, "dynamic_warming_clusters", b);
		return;
	}
	case SK_XDS_DUMP_ENDPOINTS:
		for (i = 0; i < x->t[K_ENDPOINT].n; i++)
			json_array_append_new(a, entry_json(x->t[K_ENDPOINT].v[i], "endpoint_config",
							    &envoy__config__endpoint__v3__cluster_load_assignment__descriptor));
		add_list(dump, "dynamic_endpoint_configs", a);
		break;
	case SK_XDS_DUMP_LISTENERS: {
		struct sk_ads_type_stats ts;

		if (sk_ads_type_stats(x->ads, SK_TYPE_URL_LISTENER, &ts) == 0 && ts.version_text && ts.version_text[0])
			json_object_set_new(dump, "version_info", json_string(ts.version_text));
		for (i = 0; i < x->t[K_LISTENER].n; i++) {
			const struct dlistener *e = x->t[K_LISTENER].v[i];
			json_t *o = json_object();

			json_object_set_new(o, "name", json_string(e->r.name));
			json_object_set_new(o, e->warming ? "warming_state" : "active_state",
					    entry_json(&e->r, "listener", &envoy__config__listener__v3__listener__descriptor));
			json_array_append_new(a, o);
		}
		add_list(dump, "dynamic_listeners", a);
		break;
	}
	case SK_XDS_DUMP_ROUTES:
		for (i = 0; i < x->t[K_ROUTE].n; i++)
			json_array_append_new(a, entry_json(x->t[K_ROUTE].v[i], "route_config",
							    &envoy__config__route__v3__route_configuration__descriptor));
		add_list(dump, "dynamic_route_configs", a);
		break;
	}
	json_decref(b);
}
