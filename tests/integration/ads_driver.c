/* ads_driver: a tiny xDS client for tests/integration/ads_test.sh. It reads ads_config from
 * a bootstrap (so the target comes from the xds-grpc cluster, as in skiff), then subscribes
 * as Envoy does: CDS (wildcard), then EDS for the EDS clusters once CDS is in, LDS once the
 * first EDS is in (or at once when there is no EDS cluster), RDS for the route names the
 * listeners' connection managers use. Its apply accepts everything except resources whose
 * name is given with --reject; it logs one line per event:
 *   APPLY type=<url> version=<v> nonce=<n> resources=a,b removed=c -> ACK|NACK
 *   CONNECTED / DISCONNECTED status=<n> retry_ms=<ms> details=<text> / BAD_MESSAGE details=<text>
 *   STATS <name>=<value> ... (on SIGUSR1 and at exit)
 * SIGTERM stops it cleanly (every gRPC and xDS object freed, so that ASan can vouch); it also
 * stops by itself after --max-seconds (default 60). */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "skiff_protos.h"
#include "xds/ads.h"
#include "xds/bootstrap.h"
#include "xds/strmap.h"

typedef Envoy__Config__Cluster__V3__Cluster cluster_pb;
typedef Envoy__Config__Listener__V3__Listener listener_pb;
typedef Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager hcm_pb;

#define HCM_URL SK_TYPE_URL_PREFIX "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

struct driver {
	struct ev_loop *loop;
	struct sk_ads *ads;
	FILE *log;
	const char *reject[16];
	size_t n_reject;
	struct sk_strmap eds_names;     /* cluster -> EDS service name ("" for non-EDS clusters) */
	struct sk_strmap rds_names;     /* listener -> its route names, comma-joined */
	bool lds_started;
	ev_signal sigterm, sigint, sigusr1;
	ev_timer deadline;
};

static void logf_(struct driver *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logf_(struct driver *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(d->log, fmt, ap);
	va_end(ap);
	fputc('\n', d->log);
	fflush(d->log);
}

/* ---------------------------------------------------------------- subscriptions */

/* The distinct non-empty values of a map, comma lists split. */
static void collect_values(const struct sk_strmap *m, struct sk_strmap *out)
{
	const struct sk_strmap_entry *e;
	char *copy, *tok, *save;
	size_t i = 0;

	while ((e = sk_strmap_next(m, &i)) != NULL) {
		if (e->value == NULL || (copy = strdup(e->value)) == NULL)
			continue;
		for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			sk_strmap_put(out, tok, NULL);
		free(copy);
	}
}

/* Subscribes `type_url` to the values of m; returns how many names that is. */
static size_t subscribe_values(struct driver *d, const char *type_url, const struct sk_strmap *m)
{
	struct sk_strmap set = {0};
	const char **names;
	size_t n;

	collect_values(m, &set);
	names = sk_strmap_sorted_keys(&set, &n);
	sk_ads_subscribe(d->ads, type_url, names, n, false);
	free(names);
	sk_strmap_clear(&set);
	return n;
}

static void start_lds(struct driver *d)
{
	if (d->lds_started)
		return;
	d->lds_started = true;
	sk_ads_subscribe(d->ads, SK_TYPE_URL_LISTENER, NULL, 0, true);
}

/* ---------------------------------------------------------------- what resources refer to */

static const char *eds_name(const cluster_pb *c)
{
	if (c->cluster_discovery_type_case != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_TYPE ||
	    c->type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS)
		return "";
	if (c->eds_cluster_config && c->eds_cluster_config->service_name[0])
		return c->eds_cluster_config->service_name;
	return c->name;
}

static void add_rds_of_chain(const Envoy__Config__Listener__V3__FilterChain *fc, char *buf, size_t len)
{
	size_t i, used = strlen(buf);

	for (i = 0; fc && i < fc->n_filters; i++) {
		const Envoy__Config__Listener__V3__Filter *f = fc->filters[i];
		hcm_pb *h;

		if (f->config_type_case != ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG ||
		    strcmp(f->typed_config->type_url, HCM_URL) != 0)
			continue;
		h = envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
			NULL, f->typed_config->value.len, f->typed_config->value.data);
		if (h == NULL)
			continue;
		if (h->route_specifier_case ==
		    ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_RDS &&
		    used + strlen(h->rds->route_config_name) + 2 < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "," : "", h->rds->route_config_name);
		envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__free_unpacked(h, NULL);
	}
}

static void rds_names_of(const listener_pb *l, char *buf, size_t len)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < l->n_filter_chains; i++)
		add_rds_of_chain(l->filter_chains[i], buf, len);
	add_rds_of_chain(l->default_filter_chain, buf, len);
}

/* ---------------------------------------------------------------- apply */

static const char *rejected(struct driver *d, const struct sk_ads_update *u)
{
	size_t i, j;

	for (i = 0; i < u->n_resources; i++)
		for (j = 0; j < d->n_reject; j++)
			if (strcmp(u->resources[i].name, d->reject[j]) == 0)
				return u->resources[i].name;
	return NULL;
}

/* Tracks what CDS and LDS refer to, then moves the subscriptions on, Envoy's way. */
static void follow(struct driver *d, const struct sk_ads_update *u)
{
	char buf[1024];
	size_t i;

	if (strcmp(u->type_url, SK_TYPE_URL_CLUSTER) == 0) {
		if (!u->delta)
			sk_strmap_clear(&d->eds_names);
		for (i = 0; i < u->n_resources; i++)
			sk_strmap_put(&d->eds_names, u->resources[i].name, eds_name((const cluster_pb *)u->resources[i].msg));
		for (i = 0; i < u->n_removed; i++)
			sk_strmap_del(&d->eds_names, u->removed[i]);
		if (subscribe_values(d, SK_TYPE_URL_ENDPOINT, &d->eds_names) == 0)
			start_lds(d); /* no EDS cluster: nothing to wait for */
	} else if (strcmp(u->type_url, SK_TYPE_URL_ENDPOINT) == 0) {
		start_lds(d);
	} else if (strcmp(u->type_url, SK_TYPE_URL_LISTENER) == 0) {
		if (!u->delta)
			sk_strmap_clear(&d->rds_names);
		for (i = 0; i < u->n_resources; i++) {
			rds_names_of((const listener_pb *)u->resources[i].msg, buf, sizeof(buf));
			sk_strmap_put(&d->rds_names, u->resources[i].name, buf);
		}
		for (i = 0; i < u->n_removed; i++)
			sk_strmap_del(&d->rds_names, u->removed[i]);
		subscribe_values(d, SK_TYPE_URL_ROUTE, &d->rds_names);
	}
}

static int apply(void *ctx, struct sk_ads_update *u, char *err, size_t errlen)
{
	struct driver *d = ctx;
	const char *bad = rejected(d, u), *names[64];
	char list[2048] = "", rm[1024] = "";
	size_t i, used = 0;

	for (i = 0; i < u->n_resources && i < 64; i++)
		names[i] = u->resources[i].name;
	for (i = 0; i < u->n_resources && i < 64 && used + strlen(names[i]) + 2 < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? "," : "", names[i]);
	for (i = 0, used = 0; i < u->n_removed && used + strlen(u->removed[i]) + 2 < sizeof(rm); i++)
		used += (size_t)snprintf(rm + used, sizeof(rm) - used, "%s%s", i ? "," : "", u->removed[i]);
	logf_(d, "APPLY type=%s version=%s nonce=%s resources=%s removed=%s -> %s", u->type_url, u->version,
	      u->nonce, list, rm, bad ? "NACK" : "ACK");
	if (bad) {
		snprintf(err, errlen, "%s '%s': rejected by the test rule (name)", sk_xds_type_short(u->type_url)
			 ? sk_xds_type_short(u->type_url) : "resource", bad);
		return -1;
	}
	follow(d, u);
	return 0;
}

static void on_event(void *ctx, const struct sk_ads_event *ev)
{
	struct driver *d = ctx;

	if (ev->kind == SK_ADS_EV_CONNECTED)
		logf_(d, "CONNECTED");
	else if (ev->kind == SK_ADS_EV_DISCONNECTED)
		logf_(d, "DISCONNECTED status=%d retry_ms=%u details=%s", ev->grpc_status, ev->retry_ms, ev->details);
	else
		logf_(d, "BAD_MESSAGE details=%s", ev->details);
}

/* ---------------------------------------------------------------- stats, signals */

static void dump_stats(struct driver *d)
{
	static const char *const types[] = {SK_TYPE_URL_CLUSTER, SK_TYPE_URL_ENDPOINT, SK_TYPE_URL_LISTENER,
					    SK_TYPE_URL_ROUTE};
	struct sk_ads_type_stats ts;
	struct sk_ads_stats cs;
	char line[2048];
	size_t i, used;

	sk_ads_stats(d->ads, &cs);
	used = (size_t)snprintf(line, sizeof(line), "STATS control_plane.connected_state=%llu "
				"control_plane.rate_limit_enforced=%llu control_plane.pending_requests=%llu",
				(unsigned long long)cs.connected_state, (unsigned long long)cs.rate_limit_enforced,
				(unsigned long long)cs.pending_requests);
	for (i = 0; i < sizeof(types) / sizeof(types[0]) && used < sizeof(line); i++) {
		const char *p = sk_xds_type_short(types[i]);

		if (sk_ads_type_stats(d->ads, types[i], &ts) < 0)
			continue;
		used += (size_t)snprintf(line + used, sizeof(line) - used,
					 " %s.update_attempt=%llu %s.update_success=%llu %s.update_rejected=%llu"
					 " %s.update_failure=%llu %s.version_text=%s",
					 p, (unsigned long long)ts.update_attempt, p, (unsigned long long)ts.update_success,
					 p, (unsigned long long)ts.update_rejected, p, (unsigned long long)ts.update_failure,
					 p, ts.version_text);
	}
	logf_(d, "%s", line);
}

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct driver *d = w->data;

	(void)revents;
	logf_(d, "DEADLINE");
	ev_break(loop, EVBREAK_ALL);
}

static void on_usr1(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	dump_stats(w->data);
}

/* ---------------------------------------------------------------- main */

static int run(struct driver *d, const sk_bootstrap_pb *b)
{
	struct sk_ads_bootstrap ab;
	struct sk_grpc_bridge *bridge;
	struct sk_ads_config cfg = {0};
	char err[512];

	if (sk_ads_bootstrap_read(b, &ab, err, sizeof(err)) < 0) {
		logf_(d, "ERROR %s", err);
		return 1;
	}
	logf_(d, "TARGET %s authority=%s mode=%s", ab.target, ab.authority ? ab.authority : "",
	      ab.api_type == SK_ADS_DELTA ? "delta" : "sotw");
	bridge = sk_grpc_bridge_create(d->loop);
	cfg.api_type = ab.api_type;
	cfg.set_node_on_first_message_only = ab.set_node_on_first_message_only;
	cfg.node = b->node;
	cfg.bridge = bridge;
	cfg.target = ab.target;
	cfg.authority = ab.authority;
	cfg.metadata = ab.metadata;
	cfg.n_metadata = ab.n_metadata;
	cfg.apply = apply;
	cfg.on_event = on_event;
	cfg.ctx = d;
	d->ads = bridge ? sk_ads_create(d->loop, &cfg, err, sizeof(err)) : NULL;
	sk_ads_bootstrap_clear(&ab);
	if (d->ads == NULL) {
		logf_(d, "ERROR %s", bridge ? err : "no gRPC bridge");
		sk_grpc_bridge_destroy(bridge);
		return 1;
	}
	sk_ads_subscribe(d->ads, SK_TYPE_URL_CLUSTER, NULL, 0, true);
	sk_ads_start(d->ads);
	ev_run(d->loop, 0);
	dump_stats(d);
	sk_ads_destroy(d->ads);
	sk_grpc_bridge_destroy(bridge);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"bootstrap", required_argument, NULL, 'c'},
		{"reject", required_argument, NULL, 'r'},
		{"max-seconds", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	struct driver d = {.log = stdout};
	struct sk_bootstrap_load_opts lo = {0};
	sk_bootstrap_pb *b;
	double max_seconds = 60;
	char err[1024];
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:r:t:", opts, NULL)) != -1) {
		if (c == 'c')
			lo.path = optarg;
		else if (c == 'r' && d.n_reject < sizeof(d.reject) / sizeof(d.reject[0]))
			d.reject[d.n_reject++] = optarg;
		else if (c == 't')
			max_seconds = atof(optarg);
		else
			return 2;
	}
	if (lo.path == NULL || sk_bootstrap_load(&lo, &b, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "ads_driver: %s\n", lo.path ? err : "--bootstrap FILE is needed");
		return 2;
	}
	d.loop = ev_default_loop(0);
	ev_signal_init(&d.sigterm, on_stop, SIGTERM);
	ev_signal_init(&d.sigint, on_stop, SIGINT);
	ev_signal_init(&d.sigusr1, on_usr1, SIGUSR1);
	d.sigusr1.data = &d;
	ev_signal_start(d.loop, &d.sigterm);
	ev_signal_start(d.loop, &d.sigint);
	ev_signal_start(d.loop, &d.sigusr1);
	ev_timer_init(&d.deadline, on_deadline, max_seconds, 0.);
	d.deadline.data = &d;
	ev_timer_start(d.loop, &d.deadline);
	rc = run(&d, b);
	ev_signal_stop(d.loop, &d.sigterm);
	ev_signal_stop(d.loop, &d.sigint);
	ev_signal_stop(d.loop, &d.sigusr1);
	ev_timer_stop(d.loop, &d.deadline);
	sk_strmap_clear(&d.eds_names);
	sk_strmap_clear(&d.rds_names);
	sk_bootstrap_free(b);
	ev_loop_destroy(d.loop);
	logf_(&d, "EXIT %d", rc);
	return rc;
}
