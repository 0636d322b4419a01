/* server: see server.h. */
#include "proxy/server/server.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/admin/admin.h"
#include "proxy/log/log.h"
#include "proxy/listener/listener.h"
#include "proxy/server/listener_manager.h"
#include "proxy/server/secrets.h"
#include "proxy/server/snapshot.h"
#include "proxy/server/xds_config.h"
#include "xds/translate/route.h"
#include "proxy/server/workers.h"
#include "proxy/upstream/cluster.h"
#include "proxy/upstream/dns.h"

#define TICK_SECONDS 1.0

const char *sk_server_state_name(enum sk_server_state state)
{
	switch (state) {
	case SK_STATE_LIVE:
		return "LIVE";
	case SK_STATE_DRAINING:
		return "DRAINING";
	case SK_STATE_PRE_INITIALIZING:
		return "PRE_INITIALIZING";
	case SK_STATE_INITIALIZING:
		return "INITIALIZING";
	}
	return "UNKNOWN";
}

void sk_server_set_state(struct sk_server *s, enum sk_server_state state)
{
	if (s->state != state)
		sk_log_info(SK_LOG_MAIN, "server state: %s -> %s", sk_server_state_name(s->state),
			    sk_server_state_name(state));
	s->state = state;
	sk_stat_set(s->shard, s->st.state, (uint64_t)sk_server_reported_state(s));
}

enum sk_server_state sk_server_reported_state(const struct sk_server *s)
{
	/* Envoy's Utility::serverState: an initialized server failing health checks is DRAINING. */
	return s->state == SK_STATE_LIVE && s->healthcheck_failed ? SK_STATE_DRAINING : s->state;
}

void sk_server_set_healthcheck_failed(struct sk_server *s, bool failed)
{
	s->healthcheck_failed = failed;
	sk_stat_set(s->shard, s->st.live, !failed && s->state == SK_STATE_LIVE);
	sk_stat_set(s->shard, s->st.state, (uint64_t)sk_server_reported_state(s));
}

const Envoy__Config__Core__V3__Node *sk_server_node(const struct sk_server *s)
{
	return s->bootstrap->node;
}

/* Replaces a protobuf-c string member with a copy of v. */
static void set_string(char **slot, const char *v)
{
	if (*slot != NULL && *slot != protobuf_c_empty_string)
		free(*slot);
	*slot = strdup(v);
}

/* --service-node/--service-cluster/--service-zone win over the bootstrap, as in Envoy;
 * the node also says who we are (user agent), as Envoy fills it in. */
static int apply_node_overrides(struct sk_server *s)
{
	Envoy__Config__Core__V3__Node *node = s->bootstrap->node;

	if (node == NULL) {
		node = calloc(1, sizeof(*node));
		if (node == NULL)
			return -ENOMEM;
		envoy__config__core__v3__node__init(node);
		s->bootstrap->node = node;
	}
	if (s->opts->service_node)
		set_string(&node->id, s->opts->service_node);
	if (s->opts->service_cluster)
		set_string(&node->cluster, s->opts->service_cluster);
	if (s->opts->service_zone) {
		if (node->locality == NULL) {
			node->locality = calloc(1, sizeof(*node->locality));
			if (node->locality == NULL)
				return -ENOMEM;
			envoy__config__core__v3__locality__init(node->locality);
		}
		set_string(&node->locality->zone, s->opts->service_zone);
	}
	if (node->user_agent_name == NULL || node->user_agent_name[0] == '\0')
		set_string(&node->user_agent_name, "envoy");
	return 0;
}

static void register_stats(struct sk_server *s)
{
	struct sk_stats_store *st = s->stats;
	struct sk_server_stats *x = &s->st;

	x->state = sk_stats_gauge(st, "server.state", SK_GAUGE_MAIN_ONLY);
	x->uptime = sk_stats_gauge(st, "server.uptime", SK_GAUGE_MAIN_ONLY);
	x->live = sk_stats_gauge(st, "server.live", SK_GAUGE_MAIN_ONLY);
	x->memory_allocated = sk_stats_gauge(st, "server.memory_allocated", SK_GAUGE_MAIN_ONLY);
	x->memory_heap_size = sk_stats_gauge(st, "server.memory_heap_size", SK_GAUGE_MAIN_ONLY);
	x->memory_physical_size = sk_stats_gauge(st, "server.memory_physical_size", SK_GAUGE_MAIN_ONLY);
	x->concurrency = sk_stats_gauge(st, "server.concurrency", SK_GAUGE_MAIN_ONLY);
	x->total_connections = sk_stats_gauge(st, "server.total_connections", SK_GAUGE_SUM);
	x->hot_restart_epoch = sk_stats_gauge(st, "server.hot_restart_epoch", SK_GAUGE_MAIN_ONLY);
	x->days_until_first_cert_expiring =
		sk_stats_gauge(st, "server.days_until_first_cert_expiring", SK_GAUGE_MAIN_ONLY);
	x->static_unknown_fields = sk_stats_counter(st, "server.static_unknown_fields");
	x->dynamic_unknown_fields = sk_stats_counter(st, "server.dynamic_unknown_fields");
	x->initialization_time_ms = sk_stats_histogram(st, "server.initialization_time_ms");
	x->workers_started = sk_stats_gauge(st, "listener_manager.workers_started", SK_GAUGE_MAIN_ONLY);
	x->total_listeners_active =
		sk_stats_gauge(st, "listener_manager.total_listeners_active", SK_GAUGE_MAIN_ONLY);
	x->total_listeners_warming =
		sk_stats_gauge(st, "listener_manager.total_listeners_warming", SK_GAUGE_MAIN_ONLY);
	x->total_listeners_draining =
		sk_stats_gauge(st, "listener_manager.total_listeners_draining", SK_GAUGE_MAIN_ONLY);
	x->listener_added = sk_stats_counter(st, "listener_manager.listener_added");
	x->active_clusters = sk_stats_gauge(st, "cluster_manager.active_clusters", SK_GAUGE_MAIN_ONLY);
	x->warming_clusters = sk_stats_gauge(st, "cluster_manager.warming_clusters", SK_GAUGE_MAIN_ONLY);
	x->cluster_added = sk_stats_counter(st, "cluster_manager.cluster_added");
	x->cds_update_success = sk_stats_counter(st, "cluster_manager.cds.update_success");
	x->cds_update_rejected = sk_stats_counter(st, "cluster_manager.cds.update_rejected");
	x->cds_update_attempt = sk_stats_counter(st, "cluster_manager.cds.update_attempt");
	x->cds_update_failure = sk_stats_counter(st, "cluster_manager.cds.update_failure");
	x->lds_update_success = sk_stats_counter(st, "listener_manager.lds.update_success");
	x->lds_update_rejected = sk_stats_counter(st, "listener_manager.lds.update_rejected");
	x->lds_update_attempt = sk_stats_counter(st, "listener_manager.lds.update_attempt");
	x->lds_update_failure = sk_stats_counter(st, "listener_manager.lds.update_failure");
	x->connected_state = sk_stats_gauge(st, "control_plane.connected_state", SK_GAUGE_MAIN_ONLY);
}

void sk_server_memory(struct sk_memory *m)
{
	struct mallinfo2 mi = mallinfo2();
	unsigned long pages_total = 0, pages_resident = 0;
	FILE *f;

	m->allocated = mi.uordblks + mi.hblkhd;
	m->heap_size = mi.arena + mi.hblkhd;
	m->free_bytes = mi.fordblks;
	if (m->allocated != 0)
		return;
	f = fopen("/proc/self/statm", "r");
	if (f != NULL) {
		if (fscanf(f, "%lu %lu", &pages_total, &pages_resident) != 2)
			pages_resident = 0;
		fclose(f);
	}
	m->allocated = m->heap_size = pages_resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void refresh_gauges(struct sk_server *s)
{
	struct sk_memory mem;

	sk_server_memory(&mem);
	sk_stat_set(s->shard, s->st.uptime, (uint64_t)(ev_now(s->loop) - s->start_time));
	sk_stat_set(s->shard, s->st.memory_allocated, mem.allocated);
	sk_stat_set(s->shard, s->st.memory_heap_size, mem.heap_size);
	sk_stat_set(s->shard, s->st.memory_physical_size, mem.heap_size);
	sk_stat_set(s->shard, s->st.live, s->healthcheck_failed ? 0 : s->state == SK_STATE_LIVE);
}

void sk_server_sync_stats(struct sk_server *s)
{
	char scope[512];
	size_t i;

	for (i = 0; s->snapshot && i < s->snapshot->n_clusters; i++) {
		struct sk_cluster *c = s->snapshot->clusters[i];

		sk_cluster_sync_stats(c, s->stats, s->shard);
		if (atomic_load(&c->tls_st.named) != NULL) {
			snprintf(scope, sizeof(scope), "cluster.%s", c->config->stat_name);
			sk_tls_stats_sync(&c->tls_st, s->stats, s->shard, scope);
		}
	}
	for (i = 0; s->snapshot && i < s->snapshot->n_listeners; i++) {
		struct sk_listener *l = s->snapshot->listeners[i];

		if (atomic_load(&l->tls_st.named) != NULL) {
			snprintf(scope, sizeof(scope), "listener.%s", l->cfg->stat_name);
			sk_tls_stats_sync(&l->tls_st, s->stats, s->shard, scope);
		}
	}
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sk_server *s = w->data;

	(void)loop;
	(void)revents;
	refresh_gauges(s);
	sk_server_sync_stats(s);
}

/* The first SIGTERM/SIGINT drains (connections get --drain-time-s to finish) and exits
 * when none is left; a second one exits at once. */
static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct sk_server *s = w->data;

	(void)loop;
	(void)revents;
	sk_log_warn(SK_LOG_MAIN, "caught %s", w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
	if (s->exit_after_drain)
		sk_server_request_shutdown(s);
	else
		sk_lm_drain(s, false, true);
}

static void on_shutdown(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)w;
	(void)revents;
	sk_log_info(SK_LOG_MAIN, "shutting down server instance");
	ev_break(loop, EVBREAK_ALL);
}

void sk_server_request_shutdown(struct sk_server *s)
{
	ev_idle_start(s->loop, &s->shutdown);
}

/* Copies stats_config into the store's configuration (the store copies what it keeps). */
struct sk_stats_store *sk_server_stats_store_new(const sk_bootstrap_pb *b, char *err, size_t errlen)
{
	const Envoy__Config__Metrics__V3__StatsConfig *sc = b->stats_config;
	struct sk_stats_config cfg = {.use_all_default_tags = true};
	struct sk_name_pattern *pats = NULL;
	struct sk_tag_spec *tags = NULL;
	const Envoy__Type__Matcher__V3__ListStringMatcher *list = NULL;
	struct sk_stats_store *store;
	size_t i;

	if (sc != NULL) {
		const Envoy__Config__Metrics__V3__StatsMatcher *m = sc->stats_matcher;

		if (sc->use_all_default_tags)
			cfg.use_all_default_tags = sc->use_all_default_tags->value;
		tags = calloc(sc->n_stats_tags + 1, sizeof(*tags));
		for (i = 0; tags && i < sc->n_stats_tags; i++) {
			const Envoy__Config__Metrics__V3__TagSpecifier *t = sc->stats_tags[i];

			tags[i].name = t->tag_name;
			if (t->tag_value_case == ENVOY__CONFIG__METRICS__V3__TAG_SPECIFIER__TAG_VALUE_FIXED_VALUE)
				tags[i].fixed_value = t->fixed_value;
			else if (t->tag_value_case == ENVOY__CONFIG__METRICS__V3__TAG_SPECIFIER__TAG_VALUE_REGEX)
				tags[i].regex = t->regex;
		}
		cfg.tags = tags;
		cfg.n_tags = tags ? sc->n_stats_tags : 0;
		if (m != NULL) {
			switch (m->stats_matcher_case) {
			case ENVOY__CONFIG__METRICS__V3__STATS_MATCHER__STATS_MATCHER_REJECT_ALL:
				cfg.reject_all = m->reject_all;
				break;
			case ENVOY__CONFIG__METRICS__V3__STATS_MATCHER__STATS_MATCHER_INCLUSION_LIST:
				cfg.inclusion = true;
				list = m->inclusion_list;
				break;
			case ENVOY__CONFIG__METRICS__V3__STATS_MATCHER__STATS_MATCHER_EXCLUSION_LIST:
				list = m->exclusion_list;
				break;
			default:
				break;
			}
		}
	}
	if (list != NULL) {
		pats = calloc(list->n_patterns + 1, sizeof(*pats));
		for (i = 0; pats && i < list->n_patterns; i++) {
			const Envoy__Type__Matcher__V3__StringMatcher *p = list->patterns[i];

			pats[i].ignore_case = p->ignore_case;
			switch (p->match_pattern_case) {
			case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
				pats[i].kind = SK_NAME_EXACT;
				pats[i].value = p->exact;
				break;
			case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
				pats[i].kind = SK_NAME_PREFIX;
				pats[i].value = p->prefix;
				break;
			case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
				pats[i].kind = SK_NAME_SUFFIX;
				pats[i].value = p->suffix;
				break;
			case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS:
				pats[i].kind = SK_NAME_CONTAINS;
				pats[i].value = p->contains;
				break;
			case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX:
				pats[i].kind = SK_NAME_REGEX;
				pats[i].value = p->safe_regex ? p->safe_regex->regex : "";
				break;
			default:
				snprintf(err, errlen, "stats_config.stats_matcher: pattern %zu: unsupported "
					 "string matcher", i);
				free(pats);
				free(tags);
				return NULL;
			}
		}
		cfg.patterns = pats;
		cfg.n_patterns = pats ? list->n_patterns : 0;
	}
	store = sk_stats_store_new(&cfg, err, errlen);
	if (store == NULL) {
		char why[512];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "stats_config.%s", why);
	}
	free(pats);
	free(tags);
	return store;
}

static uint32_t default_concurrency(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (uint32_t)n : 1;
}

/* ---- SDS secrets -> TLS contexts --------------------------------------------------------- */

static const struct sk_tls_secret *lookup_secret(void *arg, const char *name)
{
	return sk_secrets_get(arg, name, NULL);
}

static void release_secret(void *h)
{
	sk_secret_version_unref(h);
}

static bool hold_secret(void *arg, const char *name, struct sk_tls_secret_hold *out)
{
	struct sk_secret_version *v = sk_secrets_acquire(arg, name);

	if (v == NULL)
		return false;
	*out = (struct sk_tls_secret_hold){sk_secret_version_secret(v), release_secret, v};
	return true;
}

void sk_server_sds_tls_apply(struct sk_server *s, struct sk_snapshot *snap, const char *changed)
{
	size_t i;

	if (snap == NULL || s->secrets == NULL)
		return;
	for (i = 0; i < snap->n_clusters; i++)
		sk_cluster_tls_update(snap->clusters[i], changed, hold_secret, s->secrets);
	for (i = 0; i < snap->n_listeners; i++)
		sk_listener_tls_update(snap->listeners[i], s->shard, changed, lookup_secret, s->secrets);
}

static int start_serving(struct sk_server *s, char *err, size_t errlen);

/* Whether the static resources still wait for SDS secrets (the first call arms the timer of
 * the longest initial_fetch_timeout among the missing ones; none when one waits forever). */
static bool static_secrets_pending(struct sk_server *s)
{
	struct sk_snapshot *snap = s->init_snap;
	const char *first = NULL;
	double wait = 0;
	size_t i, n = 0;

	if (snap == NULL || s->sds_init_expired)
		return false;
	for (i = 0; i < snap->n_clusters; i++)
		n += sk_secrets_missing_cluster(s->secrets, snap->clusters[i]->config, &wait, &first);
	for (i = 0; i < snap->n_listeners; i++)
		n += sk_secrets_missing_listener(s->secrets, snap->listeners[i]->cfg, &wait, &first);
	if (n > 0 && !ev_is_active(&s->sds_init_timer)) {
		sk_log_info(SK_LOG_MAIN, "the static resources wait for %zu SDS secret(s) ('%s', ...)%s", n, first,
			    wait > 0 ? "" : ", without a timeout");
		if (wait > 0) {
			ev_timer_set(&s->sds_init_timer, wait, 0.);
			ev_timer_start(s->loop, &s->sds_init_timer);
		}
	}
	return n > 0;
}

static void start_when_ready(struct sk_server *s)
{
	char err[512];

	if (!s->init_wanted || s->init_done || static_secrets_pending(s))
		return;
	if (start_serving(s, err, sizeof(err)) < 0)
		sk_log_critical(SK_LOG_MAIN, "cannot start the workers: %s", err);
}

static void on_sds_init_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_server *s = t->data;

	(void)loop;
	(void)revents;
	sk_log_warn(SK_LOG_MAIN, "SDS secrets of the static resources did not all arrive within their "
		    "initial_fetch_timeout: starting; their TLS connections are refused until they do");
	s->sds_init_expired = true;
	start_when_ready(s);
}

static void on_secret_changed(void *ctx, const char *name)
{
	struct sk_server *s = ctx;

	sk_server_sds_tls_apply(s, s->snapshot, name);
	start_when_ready(s);
}

int sk_server_init(struct sk_server *s, const struct sk_options *opts, sk_bootstrap_pb *bootstrap,
		   unsigned static_unknown_fields, char *err, size_t errlen)
{
	const Envoy__Config__Bootstrap__V3__Bootstrap__DynamicResources *dr;
	int rc;

	memset(s, 0, sizeof(*s));
	s->opts = opts;
	s->bootstrap = bootstrap;
	s->state = SK_STATE_PRE_INITIALIZING;
	s->loop = ev_default_loop(EVFLAG_AUTO);
	s->start_time = ev_time();
	s->bootstrap_loaded_at = time(NULL);
	s->concurrency = opts->concurrency ? opts->concurrency : default_concurrency();
	s->stats = sk_server_stats_store_new(bootstrap, err, errlen);
	if (s->stats == NULL)
		return -EINVAL;
	s->shard = sk_stats_main_shard(s->stats);
	if ((rc = apply_node_overrides(s)) < 0) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	register_stats(s);
	sk_stat_add(s->shard, s->st.static_unknown_fields, static_unknown_fields);
	sk_stat_set(s->shard, s->st.concurrency, s->concurrency);
	sk_stat_set(s->shard, s->st.hot_restart_epoch, opts->restart_epoch);
	/* workers_started, the listener gauges and connected_state stay unset ("unused" for
	 * ?usedonly, as in Envoy) until something happens to them. */

	dr = bootstrap->dynamic_resources;
	s->dynamic = dr != NULL && (dr->lds_config != NULL || dr->cds_config != NULL);
	sk_server_set_state(s, SK_STATE_PRE_INITIALIZING);

	if (bootstrap->admin && bootstrap->admin->address) {
		s->admin = sk_admin_new(s, bootstrap->admin->address, err, errlen);
		if (s->admin == NULL)
			return -EINVAL;
	}

	s->dns = sk_dns_new(s->loop);
	s->snapshot = sk_lm_build(bootstrap, s->stats, s->shard, s->dns, s->loop, s->concurrency,
				  opts->mode == SK_MODE_SERVE, err, errlen);
	if (s->snapshot == NULL)
		return -EINVAL;
	sk_stat_add(s->shard, s->st.cluster_added, s->snapshot->n_clusters);
	sk_stat_set(s->shard, s->st.active_clusters, s->snapshot->n_clusters);
	sk_stat_add(s->shard, s->st.listener_added, s->snapshot->n_listeners);

	ev_signal_init(&s->sigterm, on_signal, SIGTERM);
	ev_signal_init(&s->sigint, on_signal, SIGINT);
	s->sigterm.data = s->sigint.data = s;
	ev_signal_start(s->loop, &s->sigterm);
	ev_signal_start(s->loop, &s->sigint);
	ev_timer_init(&s->tick, on_tick, TICK_SECONDS, TICK_SECONDS);
	s->tick.data = s;
	ev_timer_start(s->loop, &s->tick);
	ev_idle_init(&s->shutdown, on_shutdown);
	s->shutdown.data = s;

	{
		struct sk_secrets_env env = {.loop = s->loop, .stats = s->stats, .shard = s->shard,
					     .bootstrap = bootstrap};

		s->secrets = sk_secrets_new(&env, err, errlen);
		if (s->secrets == NULL)
			return -EINVAL;
		if (sk_secrets_watch(s->secrets, on_secret_changed, s) < 0) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}

	/* Static resources are ready at once, unless they name SDS secrets: then, as Envoy's
	 * init manager, the server stays INITIALIZING (workers and listeners not started) until
	 * the secrets arrive or their initial_fetch_timeout ends (static_secrets_pending). With
	 * LDS/CDS over xDS it also waits for the xDS client to deliver them; dynamic clusters and
	 * listeners subscribe their secrets and warm in xds_config. */
	sk_server_set_state(s, SK_STATE_INITIALIZING);
	ev_init(&s->sds_init_timer, on_sds_init_timeout);
	s->sds_init_timer.data = s;
	if (opts->mode == SK_MODE_SERVE) {
		if ((rc = sk_secrets_subscribe_bootstrap(s->secrets, err, errlen)) < 0)
			return rc;
		sk_server_sds_tls_apply(s, s->snapshot, NULL);
		s->init_snap = sk_snapshot_ref(s->snapshot);
	}
	if (s->dynamic && opts->mode == SK_MODE_SERVE) {
		s->xds = sk_xds_config_start(s, &rc, err, errlen);
		if (s->xds == NULL && rc < 0)
			return rc;
	}
	if (!s->dynamic && (rc = sk_server_initialized(s, err, errlen)) < 0)
		return rc;
	refresh_gauges(s);
	return 0;
}

int sk_server_initialized(struct sk_server *s, char *err, size_t errlen)
{
	s->init_wanted = true;
	if (static_secrets_pending(s))
		return 0; /* start_when_ready, once they are in */
	return start_serving(s, err, errlen);
}

static int start_serving(struct sk_server *s, char *err, size_t errlen)
{
	s->init_done = true;
	ev_timer_stop(s->loop, &s->sds_init_timer);
	sk_snapshot_unref(s->init_snap);
	s->init_snap = NULL;
	if (s->opts->mode == SK_MODE_SERVE) {
		s->workers = sk_workers_start(s->stats, s->concurrency, err, errlen);
		if (s->workers == NULL)
			return -EAGAIN;
		if (sk_workers_running(s->workers) != s->concurrency) {
			snprintf(err, errlen, "only %u of %u workers started",
				 sk_workers_running(s->workers), s->concurrency);
			return -EAGAIN;
		}
		sk_log_info(SK_LOG_MAIN, "all %u workers started", s->concurrency);
		sk_stat_set(s->shard, s->st.workers_started, 1);
		if (sk_lm_start_workers(s) < 0) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	sk_stat_record(s->shard, s->st.initialization_time_ms,
		       (uint64_t)((ev_time() - s->start_time) * 1000));
	sk_server_set_state(s, SK_STATE_LIVE);
	return 0;
}

void sk_server_run(struct sk_server *s)
{
	ev_run(s->loop, 0);
}

void sk_server_destroy(struct sk_server *s)
{
	if (s->loop) {
		ev_signal_stop(s->loop, &s->sigterm);
		ev_signal_stop(s->loop, &s->sigint);
		ev_timer_stop(s->loop, &s->tick);
		ev_idle_stop(s->loop, &s->shutdown);
		ev_timer_stop(s->loop, &s->drain_timer);
		ev_timer_stop(s->loop, &s->sds_init_timer);
	}
	sk_snapshot_unref(s->init_snap);
	sk_lm_stop_workers(s);
	sk_workers_stop(s->workers);
	sk_xds_config_free(s->xds);
	sk_secrets_free(s->secrets);
	sk_snapshot_unref(s->snapshot);
	sk_dns_free(s->dns);
	sk_admin_free(s->admin);
	sk_stats_store_free(s->stats);
	sk_bootstrap_free(s->bootstrap);
	sk_regex_thread_free();
	memset(s, 0, sizeof(*s));
}
