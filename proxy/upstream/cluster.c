/* cluster: see cluster.h. */
#include "proxy/upstream/cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log/log.h"
#include "proxy/upstream/dns.h"

#define OVERPROVISIONING 1.4   /* Envoy's default overprovisioning_factor (140) */

/* ---------------------------------------------------------------------------------- */
/* host sets                                                                           */

struct sk_host_set *sk_host_set_ref(struct sk_host_set *hs)
{
	if (hs)
		atomic_fetch_add_explicit(&hs->refcnt, 1, memory_order_relaxed);
	return hs;
}

void sk_host_set_unref(struct sk_host_set *hs)
{
	size_t p;

	if (hs == NULL || atomic_fetch_sub_explicit(&hs->refcnt, 1, memory_order_acq_rel) != 1)
		return;
	for (p = 0; p < hs->n_priorities; p++) {
		for (size_t g = 0; g < hs->priorities[p].n_groups; g++) {
			free(hs->priorities[p].groups[g].healthy);
			sk_lb_table_free(hs->priorities[p].groups[g].table);
		}
		free(hs->priorities[p].groups);
	}
	free(hs->priorities);
	free(hs->hosts);
	free(hs);
}

static bool is_healthy(enum sk_health h)
{
	return h == SK_HEALTH_UNKNOWN || h == SK_HEALTH_HEALTHY;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Fills group g with the hosts of priority prio (and locality loc, unless loc < 0). */
static int build_group(struct sk_host_set *hs, struct sk_host_group *g, uint32_t prio, long loc,
		       const struct sk_lb_config *lbc, char *err, size_t errlen)
{
	struct sk_lb_host *lh = calloc(hs->n_hosts ? hs->n_hosts : 1, sizeof(*lh));
	size_t i;

	g->healthy = calloc(hs->n_hosts ? hs->n_hosts : 1, sizeof(*g->healthy));
	if (lh == NULL || g->healthy == NULL) {
		free(lh);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < hs->n_hosts; i++) {
		const struct sk_host *h = &hs->hosts[i];

		if (h->priority != prio || (loc >= 0 && h->locality != (uint32_t)loc))
			continue;
		g->weight = h->locality_weight;
		g->n_hosts++;
		if (!is_healthy(h->health))
			continue;
		lh[g->n_healthy].key = h->key;
		lh[g->n_healthy].weight = h->weight;
		g->healthy[g->n_healthy++] = (uint32_t)i;
	}
	g->table = sk_lb_table_new(lbc, lh, g->n_healthy, err, errlen);
	free(lh);
	return g->table ? 0 : -EINVAL;
}

/* Builds a host set from hosts[0..n) (copied), grouped by priority (and by locality when
 * locality weighting is on), with a balancer table per group over its healthy hosts. */
static struct sk_host_set *host_set_new(const struct sk_host *hosts, size_t n, const struct sk_lb_config *lbc,
					bool by_locality, uint64_t generation, char *err, size_t errlen)
{
	struct sk_host_set *hs = calloc(1, sizeof(*hs));
	uint32_t *prios = calloc(n ? n : 1, sizeof(*prios));
	size_t i, p, np = 0;

	if (hs == NULL || prios == NULL)
		goto oom;
	atomic_init(&hs->refcnt, 1);
	hs->generation = generation;
	hs->hosts = calloc(n ? n : 1, sizeof(*hs->hosts));
	if (hs->hosts == NULL)
		goto oom;
	for (i = 0; i < n; i++) {
		hs->hosts[i] = hosts[i];
		atomic_init(&hs->hosts[i].cx_total, 0);
		atomic_init(&hs->hosts[i].cx_connect_fail, 0);
		atomic_init(&hs->hosts[i].cx_active, 0);
		prios[i] = hosts[i].priority;
	}
	hs->n_hosts = n;
	qsort(prios, n, sizeof(*prios), cmp_u32);
	for (i = 0; i < n; i++)
		if (i == 0 || prios[i] != prios[i - 1])
			prios[np++] = prios[i];
	hs->priorities = calloc(np ? np : 1, sizeof(*hs->priorities));
	if (hs->priorities == NULL)
		goto oom;
	hs->n_priorities = np;
	for (p = 0; p < np; p++) {
		struct sk_priority_set *ps = &hs->priorities[p];
		uint32_t locs[256];
		size_t nloc = 0, g, k;

		ps->priority = prios[p];
		if (by_locality) {
			for (i = 0; i < n && nloc < 256; i++) {
				if (hs->hosts[i].priority != ps->priority)
					continue;
				for (k = 0; k < nloc && locs[k] != hs->hosts[i].locality; k++)
					;
				if (k == nloc)
					locs[nloc++] = hs->hosts[i].locality;
			}
		}
		ps->n_groups = by_locality ? nloc : 1;
		ps->groups = calloc(ps->n_groups ? ps->n_groups : 1, sizeof(*ps->groups));
		if (ps->groups == NULL)
			goto oom;
		for (g = 0; g < ps->n_groups; g++) {
			if (build_group(hs, &ps->groups[g], ps->priority, by_locality ? (long)locs[g] : -1, lbc,
					err, errlen) < 0) {
				free(prios);
				sk_host_set_unref(hs);
				return NULL;
			}
			ps->groups[g].lb_index = hs->n_groups++;
			ps->n_hosts += ps->groups[g].n_hosts;
			ps->n_healthy += ps->groups[g].n_healthy;
		}
	}
	free(prios);
	return hs;
oom:
	free(prios);
	sk_host_set_unref(hs);
	snprintf(err, errlen, "out of memory");
	return NULL;
}

static void count_membership(struct sk_cluster *c, struct sk_stats_shard *shard, const struct sk_host_set *hs)
{
	size_t p, healthy = 0;

	for (p = 0; p < hs->n_priorities; p++)
		healthy += hs->priorities[p].n_healthy;
	sk_stat_set(shard, c->st.membership_total, hs->n_hosts);
	sk_stat_set(shard, c->st.membership_healthy, healthy);
}

/* Main thread: makes hs the cluster's host set (taking the caller's reference). */
static void publish(struct sk_cluster *c, struct sk_host_set *hs, struct sk_stats_shard *shard)
{
	struct sk_host_set *old;

	pthread_mutex_lock(&c->hosts_lock);
	old = atomic_exchange(&c->hosts, hs);
	pthread_mutex_unlock(&c->hosts_lock);
	count_membership(c, shard, hs);
	if (old != NULL)
		sk_stat_inc(shard, c->st.membership_change);
	sk_host_set_unref(old);
}

struct sk_host_set *sk_cluster_hosts(struct sk_cluster *c)
{
	struct sk_host_set *hs;

	pthread_mutex_lock(&c->hosts_lock);
	hs = sk_host_set_ref(atomic_load(&c->hosts));
	pthread_mutex_unlock(&c->hosts_lock);
	return hs;
}

static void fill_host(struct sk_host *h, const struct sk_endpoint_config *ep, const struct sk_locality_config *loc,
		      uint32_t locality)
{
	memset(h, 0, sizeof(*h));
	h->weight = ep->weight ? ep->weight : 1;
	h->priority = loc->priority;
	h->locality = locality;
	h->locality_weight = loc->weight;
	h->health = ep->health;
	h->tls = ep->tls;
	h->tls_istio = ep->tls_istio;
	h->hostname = ep->hostname ? ep->hostname : "";
}

/* The host set of the configured endpoints (STATIC, EDS until xDS delivers it). */
static struct sk_host_set *static_hosts(const struct sk_cluster_config *cc, char *err, size_t errlen)
{
	struct sk_host *hosts;
	size_t n = 0, l, e, total = 0;
	struct sk_host_set *hs;

	for (l = 0; l < cc->n_localities; l++)
		total += cc->localities[l].n_endpoints;
	hosts = calloc(total ? total : 1, sizeof(*hosts));
	if (hosts == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (l = 0; l < cc->n_localities; l++) {
		for (e = 0; e < cc->localities[l].n_endpoints; e++) {
			const struct sk_endpoint_config *ep = &cc->localities[l].endpoints[e];

			fill_host(&hosts[n], ep, &cc->localities[l], (uint32_t)l);
			hosts[n].addr = ep->addr;
			sk_addr_format(&ep->addr, hosts[n].key, sizeof(hosts[n].key));
			n++;
		}
	}
	hs = host_set_new(hosts, n, &cc->lb, cc->locality_weighted, 1, err, errlen);
	free(hosts);
	return hs;
}

int sk_cluster_set_localities(struct sk_cluster *c, struct sk_locality_config *locs, size_t n, char *err,
			      size_t errlen)
{
	struct sk_cluster_config *cc = c->config;
	struct sk_locality_config *old = cc->localities;
	size_t n_old = cc->n_localities;
	struct sk_host_set *hs;

	cc->localities = locs;
	cc->n_localities = n;
	hs = static_hosts(cc, err, errlen);
	if (hs == NULL) {
		cc->localities = old;
		cc->n_localities = n_old;
		sk_localities_free(locs, n);
		return -ENOMEM;
	}
	publish(c, hs, c->main_shard);
	sk_localities_free(old, n_old);
	/* the host set holds every endpoint now: the config keeps only the localities' names
	 * (for /clusters), not a second copy of each endpoint */
	for (size_t l = 0; l < n; l++) {
		free(locs[l].endpoints);
		locs[l].endpoints = NULL;
		locs[l].n_endpoints = 0;
	}
	return 0;
}

void sk_cluster_retire(struct sk_cluster *c)
{
	size_t q, total = 0, l;

	if (c->queries == NULL)
		return;
	for (l = 0; l < c->config->n_localities; l++)
		total += c->config->localities[l].n_endpoints;
	for (q = 0; q < total; q++)
		if (c->queries[q]) {
			sk_dns_cancel(c->queries[q]);
			c->queries[q] = NULL;
		}
	ev_timer_stop(c->loop, &c->refresh);
	free(c->queries);
	c->queries = NULL;
}

/* ---------------------------------------------------------------------------------- */
/* DNS clusters                                                                        */

static void dns_round(struct sk_cluster *c);

static enum sk_dns_family dns_family(const struct sk_cluster_config *cc)
{
	switch (cc->dns_family) {
	case SK_DNS_FAMILY_V4_ONLY:
		return SK_DNS_V4_ONLY;
	case SK_DNS_FAMILY_V6_ONLY:
		return SK_DNS_V6_ONLY;
	case SK_DNS_FAMILY_V4_PREFERRED:
		return SK_DNS_V4_PREFERRED;
	case SK_DNS_FAMILY_ALL:
		return SK_DNS_ALL;
	default:
		return SK_DNS_AUTO;
	}
}

struct dns_ctx {
	struct sk_cluster *c;
	size_t locality, endpoint, index;
};

static void add_resolved(struct sk_cluster *c, const struct sk_host *h)
{
	if (c->n_resolved == c->cap_resolved) {
		size_t cap = c->cap_resolved ? c->cap_resolved * 2 : 8;
		struct sk_host *grown = realloc(c->resolved, cap * sizeof(*grown));

		if (grown == NULL)
			return;
		c->resolved = grown;
		c->cap_resolved = cap;
	}
	c->resolved[c->n_resolved++] = *h;
}

static void on_resolved(void *arg, const struct sk_dns_result *r)
{
	struct dns_ctx *ctx = arg;
	struct sk_cluster *c = ctx->c;
	const struct sk_cluster_config *cc = c->config;
	const struct sk_locality_config *loc = &cc->localities[ctx->locality];
	const struct sk_endpoint_config *ep = &loc->endpoints[ctx->endpoint];
	size_t i, take;

	c->queries[ctx->index] = NULL;
	if (r->error != 0) {
		sk_log_warn(SK_LOG_UPSTREAM, "cluster '%s': DNS resolution of '%s' failed: %s", cc->name,
			    ep->hostname, gai_strerror(r->error));
	} else {
		/* LOGICAL_DNS uses the first address only, as Envoy. */
		take = cc->type == SK_CLUSTER_LOGICAL_DNS ? (r->n > 0) : r->n;
		for (i = 0; i < take; i++) {
			struct sk_host h;

			fill_host(&h, ep, loc, (uint32_t)ctx->locality);
			h.addr.ss = r->addrs[i];
			h.addr.len = r->addrs[i].ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								       : sizeof(struct sockaddr_in);
			sk_addr_format(&h.addr, h.key, sizeof(h.key));
			add_resolved(c, &h);
		}
	}
	free(ctx);
	if (--c->pending > 0)
		return;
	{
		char err[256];
		struct sk_host_set *old = sk_cluster_hosts(c);
		struct sk_host_set *hs = host_set_new(c->resolved, c->n_resolved, &cc->lb, cc->locality_weighted,
						      old ? old->generation + 1 : 1, err, sizeof(err));

		sk_host_set_unref(old);
		if (hs == NULL) {
			sk_log_error(SK_LOG_UPSTREAM, "cluster '%s': %s", cc->name, err);
		} else {
			publish(c, hs, c->main_shard);
			sk_log_debug(SK_LOG_UPSTREAM, "cluster '%s': %zu hosts after DNS", cc->name, hs->n_hosts);
		}
		c->n_resolved = 0;
	}
	ev_timer_set(&c->refresh, cc->dns_refresh_rate, 0.);
	ev_timer_start(c->loop, &c->refresh);
}

static void on_refresh(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	dns_round(w->data);
}

static void dns_round(struct sk_cluster *c)
{
	const struct sk_cluster_config *cc = c->config;
	size_t l, e, q = 0;

	c->pending = 0;
	for (l = 0; l < cc->n_localities; l++)
		c->pending += cc->localities[l].n_endpoints;
	if (c->pending == 0)
		return;
	for (l = 0; l < cc->n_localities; l++) {
		for (e = 0; e < cc->localities[l].n_endpoints; e++, q++) {
			struct dns_ctx *ctx = malloc(sizeof(*ctx));

			if (ctx == NULL) {
				c->pending--;
				continue;
			}
			*ctx = (struct dns_ctx){c, l, e, q};
			c->queries[q] = sk_dns_resolve(c->dns, cc->localities[l].endpoints[e].hostname,
						       cc->localities[l].endpoints[e].port, dns_family(cc),
						       on_resolved, ctx);
			if (c->queries[q] == NULL) {
				free(ctx);
				c->pending--;
			}
		}
	}
}

/* ---------------------------------------------------------------------------------- */
/* lifecycle                                                                           */

const uint16_t sk_http_codes[] = {100, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401,
				   403, 404, 405, 408, 409, 413, 429, 431, 500, 501, 502, 503, 504, 0};

int sk_http_code_index(unsigned code)
{
	for (int i = 0; sk_http_codes[i]; i++)
		if (sk_http_codes[i] == code)
			return i;
	return -1;
}

static void register_stats(struct sk_cluster *c, struct sk_stats_store *st)
{
	const char *n = c->config->stat_name;
	struct sk_cluster_stats *s = &c->st;

#define C(field) s->field = sk_stats_counterf(st, "cluster.%s." #field, n)
#define G(field) s->field = sk_stats_gaugef(st, SK_GAUGE_SUM, "cluster.%s." #field, n)
	C(upstream_cx_total);
	G(upstream_cx_active);
	C(upstream_cx_connect_fail);
	C(upstream_cx_connect_timeout);
	C(upstream_cx_connect_attempts_exceeded);
	C(upstream_cx_overflow);
	C(upstream_cx_none_healthy);
	C(upstream_cx_destroy);
	C(upstream_cx_destroy_local);
	C(upstream_cx_destroy_remote);
	C(upstream_cx_rx_bytes_total);
	C(upstream_cx_tx_bytes_total);
	G(membership_total);
	G(membership_healthy);
	C(membership_change);
	C(update_success);
	C(update_failure);
	C(update_attempt);
	C(update_rejected);
	C(update_empty);
	C(upstream_rq_total);
	G(upstream_rq_active);
	C(upstream_rq_completed);
	C(upstream_rq_timeout);
	C(upstream_rq_retry);
	C(upstream_rq_retry_success);
	C(upstream_rq_retry_overflow);
	C(upstream_rq_retry_limit_exceeded);
	C(upstream_rq_per_try_timeout);
	C(upstream_rq_pending_total);
	C(upstream_cx_http1_total);
	C(upstream_cx_http2_total);
	C(upstream_rq_rx_reset);
	C(upstream_rq_tx_reset);
	C(upstream_cx_protocol_error);
	C(upstream_cx_idle_timeout);
	C(upstream_rq_pending_overflow);
	G(upstream_rq_pending_active);
	for (int k = 1; k <= 5; k++)
		s->upstream_rq_class[k] = sk_stats_counterf(st, "cluster.%s.upstream_rq_%dxx", n, k);
	s->circuit_breakers_cx_open = sk_stats_gaugef(st, SK_GAUGE_MAIN_ONLY,
						      "cluster.%s.circuit_breakers.default.cx_open", n);
#undef C
#undef G
	{
		char name[512];

		snprintf(name, sizeof(name), "cluster.%s.upstream_cx_length_ms", n);
		s->upstream_cx_length_ms = sk_stats_histogram(st, name);
		snprintf(name, sizeof(name), "cluster.%s.upstream_rq_time", n);
		s->upstream_rq_time = sk_stats_histogram(st, name);
	}
	/* membership gauges are written by the main thread only */
	s->membership_total = sk_stats_gaugef(st, SK_GAUGE_MAIN_ONLY, "cluster.%s.membership_total", n);
	s->membership_healthy = sk_stats_gaugef(st, SK_GAUGE_MAIN_ONLY, "cluster.%s.membership_healthy", n);
}

/* The client contexts of the cluster's TLS sockets whose certificates are in the config
 * (inline or files, read now); one that needs an SDS secret stays NULL and its hosts are
 * refused until SDS serves it. -EINVAL with err when a certificate cannot be loaded. */
static int build_tls(struct sk_cluster *c, struct sk_stats_store *stats, char *err, size_t errlen)
{
	const struct sk_cluster_config *cc = c->config;
	const struct sk_tls_context_config *cfgs[2] = {cc->tls_default_ctx, cc->tls_istio_ctx};
	static const char *const where[2] = {"transport_socket", "transport_socket_matches (tlsMode istio)"};
	char why[512], scope[512];
	int i;

	if (cfgs[0] == NULL && cfgs[1] == NULL)
		return 0;
	snprintf(scope, sizeof(scope), "cluster.%s", cc->stat_name);
	sk_tls_stats_register(&c->tls_st, stats, scope);
	c->ssl_context_update_by_sds = sk_stats_counterf(
		stats, "cluster.%s.client_ssl_socket_factory.ssl_context_update_by_sds", cc->stat_name);
	c->upstream_context_secrets_not_ready = sk_stats_counterf(
		stats, "cluster.%s.client_ssl_socket_factory.upstream_context_secrets_not_ready", cc->stat_name);
	(void)sk_stats_counterf(stats, "cluster.%s.client_ssl_socket_factory.downstream_context_secrets_not_ready",
				cc->stat_name); /* Envoy registers it in both scopes */
	for (i = 0; i < 2; i++) {
		if (cfgs[i] == NULL)
			continue;
		if (cfgs[i]->has_cert_sds || cfgs[i]->has_validation_sds) {
			sk_log_debug(SK_LOG_UPSTREAM, "cluster '%s': %s waits for SDS secret '%s': its TLS "
				     "hosts refuse connections until it arrives", cc->name, where[i],
				     cfgs[i]->has_cert_sds ? cfgs[i]->cert_sds.name : cfgs[i]->validation_sds.name);
			continue;
		}
		c->tls_ctx[i] = sk_tls_ctx_new(cfgs[i], NULL, NULL, why, sizeof(why));
		if (c->tls_ctx[i] == NULL) {
			snprintf(err, errlen, "cluster '%s': %s: %s", cc->name, where[i], why);
			return -EINVAL;
		}
	}
	return 0;
}

static void pending_release(struct sk_tls_pending *p)
{
	if (p->set) {
		if (p->cert.release)
			p->cert.release(p->cert.h);
		if (p->val.release)
			p->val.release(p->val.h);
	}
	memset(p, 0, sizeof(*p));
}

struct sk_tls_ctx *sk_cluster_tls_ctx_acquire(struct sk_cluster *c, bool istio)
{
	static const char *const where[2] = {"transport_socket", "transport_socket_matches (tlsMode istio)"};
	const struct sk_cluster_config *cc = c->config;
	int i = istio ? 1 : 0;
	struct sk_tls_pending pend = {0};
	struct sk_tls_ctx *ctx, *old = NULL;

	pthread_mutex_lock(&c->tls_lock);
	if (c->tls_pend[i].set) {
		/* the first connection since the secrets changed builds the context (the others
		 * wait on the lock for it) */
		const struct sk_tls_context_config *cfg = i ? cc->tls_istio_ctx : cc->tls_default_ctx;
		char why[512];

		pend = c->tls_pend[i];
		memset(&c->tls_pend[i], 0, sizeof(c->tls_pend[i]));
		ctx = sk_tls_ctx_new(cfg, pend.cert.secret, pend.val.secret, why, sizeof(why));
		if (ctx == NULL) {
			sk_log_error(SK_LOG_UPSTREAM, "cluster '%s': %s: the TLS context does not build from its SDS "
				     "secrets: %s (keeping the previous one)", cc->name, where[i], why);
		} else {
			old = c->tls_ctx[i];
			__atomic_store_n(&c->tls_ctx[i], ctx, __ATOMIC_RELEASE);
			sk_log_debug(SK_LOG_UPSTREAM, "cluster '%s': %s: TLS context %s from SDS", cc->name,
				     where[i], old != NULL ? "rebuilt" : "built");
		}
	}
	ctx = c->tls_ctx[i];
	if (ctx != NULL)
		sk_tls_ctx_ref(ctx);
	pthread_mutex_unlock(&c->tls_lock);
	sk_tls_ctx_unref(old); /* connections that started on it hold their own references */
	pending_release(&pend);
	return ctx;
}

int sk_cluster_tls_update(struct sk_cluster *c, const char *changed, sk_tls_secret_hold_fn hold, void *arg)
{
	const struct sk_cluster_config *cc = c->config;
	const struct sk_tls_context_config *cfgs[2] = {cc->tls_default_ctx, cc->tls_istio_ctx};
	int i, n = 0;

	for (i = 0; i < 2; i++) {
		const struct sk_tls_context_config *cfg = cfgs[i];
		struct sk_tls_pending p = {.set = true}, old;
		bool built;

		if (cfg == NULL || (!cfg->has_cert_sds && !cfg->has_validation_sds))
			continue;
		pthread_mutex_lock(&c->tls_lock);
		built = c->tls_ctx[i] != NULL || c->tls_pend[i].set;
		pthread_mutex_unlock(&c->tls_lock);
		if (changed == NULL ? built
				    : !(cfg->has_cert_sds && strcmp(cfg->cert_sds.name, changed) == 0) &&
					      !(cfg->has_validation_sds && strcmp(cfg->validation_sds.name, changed) == 0))
			continue;
		if ((cfg->has_cert_sds && !hold(arg, cfg->cert_sds.name, &p.cert)) ||
		    (cfg->has_validation_sds && !hold(arg, cfg->validation_sds.name, &p.val))) {
			pending_release(&p); /* a secret is still missing */
			continue;
		}
		pthread_mutex_lock(&c->tls_lock);
		old = c->tls_pend[i];
		c->tls_pend[i] = p;
		pthread_mutex_unlock(&c->tls_lock);
		pending_release(&old);
		if (changed != NULL && c->main_shard != NULL)
			sk_stat_inc(c->main_shard, c->ssl_context_update_by_sds);
		n++;
	}
	return n;
}

struct sk_cluster *sk_cluster_new(struct sk_cluster_config *cc, struct sk_stats_store *stats,
				  struct sk_stats_shard *main_shard, struct sk_dns *dns,
				  struct ev_loop *loop, uint32_t n_workers, char *err, size_t errlen)
{
	struct sk_cluster *c = calloc(1, sizeof(*c));
	struct sk_host_set *hs = NULL;
	uint32_t i;

	if (c == NULL) {
		sk_cluster_config_free(cc);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&c->refcnt, 1);
	atomic_init(&c->active_cx, 0);
	c->config = cc;
	c->loop = loop;
	c->dns = dns;
	c->main_shard = main_shard;
	pthread_mutex_init(&c->hosts_lock, NULL);
	pthread_mutex_init(&c->tls_lock, NULL);
	register_stats(c, stats);
	if (build_tls(c, stats, err, errlen) < 0)
		goto fail;
	c->n_slots = n_workers;
	c->slots = calloc(n_workers ? n_workers : 1, sizeof(*c->slots));
	if (c->slots == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < n_workers; i++)
		c->slots[i].seed = 0x9e3779b97f4a7c15ULL * (i + 1) ^ (uint64_t)(uintptr_t)c;
	if (cc->type == SK_CLUSTER_STRICT_DNS || cc->type == SK_CLUSTER_LOGICAL_DNS)
		hs = host_set_new(NULL, 0, &cc->lb, false, 0, err, errlen);
	else
		hs = static_hosts(cc, err, errlen);
	if (hs == NULL)
		goto fail;
	atomic_init(&c->hosts, NULL);
	publish(c, hs, main_shard);
	if ((cc->type == SK_CLUSTER_STRICT_DNS || cc->type == SK_CLUSTER_LOGICAL_DNS) && dns != NULL) {
		size_t total = 0, l;

		for (l = 0; l < cc->n_localities; l++)
			total += cc->localities[l].n_endpoints;
		c->queries = calloc(total ? total : 1, sizeof(*c->queries));
		if (c->queries == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		ev_init(&c->refresh, on_refresh);
		c->refresh.data = c;
		dns_round(c);
	}
	return c;
fail:
	sk_cluster_unref(c);
	return NULL;
}

void sk_cluster_sync_stats(struct sk_cluster *c, struct sk_stats_store *stats, struct sk_stats_shard *shard)
{
	for (int k = 0; sk_http_codes[k]; k++) {
		sk_stat_id id = atomic_load_explicit(&c->code_id[k], memory_order_relaxed);
		uint64_t n;

		if (id == SK_STAT_NONE) {
			if (c->code_tried[k] || atomic_load_explicit(&c->code_pending[k], memory_order_relaxed) == 0)
				continue;
			c->code_tried[k] = true; /* a stats_matcher may refuse it: then it stays unkept */
			id = sk_stats_counterf(stats, "cluster.%s.upstream_rq_%u", c->config->stat_name,
					       (unsigned)sk_http_codes[k]);
			if (id == SK_STAT_NONE)
				continue;
			atomic_store_explicit(&c->code_id[k], id, memory_order_release);
		}
		n = atomic_exchange_explicit(&c->code_pending[k], 0, memory_order_relaxed);
		if (n)
			sk_stat_add(shard, id, n);
	}
}

struct sk_cluster *sk_cluster_ref(struct sk_cluster *c)
{
	atomic_fetch_add_explicit(&c->refcnt, 1, memory_order_relaxed);
	return c;
}

void sk_cluster_unref(struct sk_cluster *c)
{
	uint32_t i;

	if (c == NULL || atomic_fetch_sub_explicit(&c->refcnt, 1, memory_order_acq_rel) != 1)
		return;
	sk_cluster_retire(c);
	for (i = 0; i < c->n_slots; i++)
		sk_cluster_slot_release(c, i);
	free(c->slots);
	free(c->resolved);
	sk_host_set_unref(atomic_load(&c->hosts));
	pthread_mutex_destroy(&c->hosts_lock);
	pthread_mutex_destroy(&c->tls_lock);
	sk_tls_stats_free(&c->tls_st);
	sk_tls_ctx_unref(c->tls_ctx[0]);
	sk_tls_ctx_unref(c->tls_ctx[1]);
	pending_release(&c->tls_pend[0]);
	pending_release(&c->tls_pend[1]);
	sk_cluster_config_free(c->config);
	free(c);
}

/* ---------------------------------------------------------------------------------- */
/* picking                                                                             */

void sk_cluster_slot_release(struct sk_cluster *c, uint32_t slot)
{
	struct sk_cluster_slot *s = &c->slots[slot];
	size_t p;

	if (s->hosts == NULL)
		return;
	for (p = 0; p < s->hosts->n_groups; p++)
		sk_lb_free(s->lbs[p]);
	free(s->lbs);
	s->lbs = NULL;
	sk_host_set_unref(s->hosts);
	s->hosts = NULL;
}

/* Takes the worker's view up to the cluster's current host set. */
static bool refresh_slot(struct sk_cluster *c, struct sk_cluster_slot *s)
{
	struct sk_host_set *hs = sk_cluster_hosts(c);
	size_t p;

	sk_cluster_slot_release(c, (uint32_t)(s - c->slots));
	if (hs == NULL)
		return false;
	s->lbs = calloc(hs->n_groups ? hs->n_groups : 1, sizeof(*s->lbs));
	if (s->lbs == NULL) {
		sk_host_set_unref(hs);
		return false;
	}
	for (p = 0; p < hs->n_priorities; p++)
		for (size_t g = 0; g < hs->priorities[p].n_groups; g++)
			s->lbs[hs->priorities[p].groups[g].lb_index] =
				sk_lb_new(hs->priorities[p].groups[g].table, s->seed + p * 131 + g);
	s->hosts = hs;
	return true;
}

static uint64_t next_random(struct sk_cluster_slot *s)
{
	s->seed ^= s->seed << 13;
	s->seed ^= s->seed >> 7;
	s->seed ^= s->seed << 17;
	return s->seed;
}

/* Envoy's priority load: each level takes min(its health * 1.4, what is left) of the
 * traffic, in order; a random draw in [0, 100) picks the level. */
static int pick_priority(const struct sk_host_set *hs, uint64_t r)
{
	double left = 100.0, draw = (double)(r % 10000) / 100.0, acc = 0;
	size_t p;
	int fallback = -1;

	for (p = 0; p < hs->n_priorities && left > 0; p++) {
		const struct sk_priority_set *ps = &hs->priorities[p];
		double health, load;

		if (ps->n_hosts == 0 || ps->n_healthy == 0)
			continue;
		if (fallback < 0)
			fallback = (int)p;
		health = 100.0 * OVERPROVISIONING * (double)ps->n_healthy / (double)ps->n_hosts;
		load = health < left ? health : left;
		acc += load;
		left -= load;
		if (draw < acc)
			return (int)p;
	}
	/* total health under 100%: Envoy normalizes; the first level with a host takes the rest */
	return fallback;
}

/* Locality weighting (Envoy): a locality's effective weight is its weight scaled by its
 * health, min(1, 1.4 * healthy / total); a weighted draw picks one. */
static const struct sk_host_group *pick_group(const struct sk_priority_set *ps, uint64_t r)
{
	double total = 0, eff[256], draw;
	size_t g, n = ps->n_groups < 256 ? ps->n_groups : 256;

	if (ps->n_groups == 1)
		return &ps->groups[0];
	for (g = 0; g < n; g++) {
		const struct sk_host_group *hg = &ps->groups[g];
		double health = hg->n_hosts ? OVERPROVISIONING * (double)hg->n_healthy / (double)hg->n_hosts : 0;

		eff[g] = hg->n_healthy ? (double)hg->weight * (health < 1.0 ? health : 1.0) : 0;
		total += eff[g];
	}
	if (total <= 0) {
		for (g = 0; g < n; g++)
			if (ps->groups[g].n_healthy)
				return &ps->groups[g];
		return NULL;
	}
	draw = (double)(r % 1000000) / 1000000.0 * total;
	for (g = 0; g < n; g++) {
		if (draw < eff[g])
			return &ps->groups[g];
		draw -= eff[g];
	}
	return &ps->groups[n - 1];
}

#define LR_ACTIVE_MAX 256

struct sk_host *sk_cluster_pick(struct sk_cluster *c, uint32_t slot, uint64_t hash, bool has_hash,
				 struct sk_host_set **set_out)
{
	struct sk_cluster_slot *s = &c->slots[slot];
	struct sk_host_set *hs = atomic_load_explicit(&c->hosts, memory_order_acquire);
	const struct sk_host_group *g;
	uint32_t active[LR_ACTIVE_MAX];
	const uint32_t *act = NULL;
	int p, idx;

	if (hs != s->hosts && !refresh_slot(c, s))
		return NULL;
	p = pick_priority(s->hosts, next_random(s));
	if (p < 0)
		return NULL;
	g = pick_group(&s->hosts->priorities[p], next_random(s));
	if (g == NULL)
		return NULL;
	/* least request compares outstanding connections, counted by every worker */
	if (c->config->lb.policy == SK_LB_LEAST_REQUEST && g->n_healthy <= LR_ACTIVE_MAX) {
		for (size_t i = 0; i < g->n_healthy; i++)
			active[i] = (uint32_t)atomic_load_explicit(&s->hosts->hosts[g->healthy[i]].cx_active,
								   memory_order_relaxed);
		act = active;
	}
	idx = sk_lb_pick(s->lbs[g->lb_index], hash, has_hash, act, NULL);
	if (idx < 0)
		return NULL;
	if (set_out)
		*set_out = s->hosts;
	return &s->hosts->hosts[g->healthy[idx]];
}
