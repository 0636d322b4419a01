/* Unit tests for proxy/stats: sharded storage, stats_matcher, tag extraction and the three
 * admin output formats. Prints one line per failure and "N passed, N failed". */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/stats/stats.h"

static int passed, failed;

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (cond) {                                                      \
			passed++;                                                \
		} else {                                                         \
			failed++;                                                \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                \
	} while (0)

#define CHECK_STR(got, want)                                                                     \
	do {                                                                                     \
		const char *g_ = (got), *w_ = (want);                                            \
		if (g_ && strcmp(g_, w_) == 0) {                                                 \
			passed++;                                                                \
		} else {                                                                         \
			failed++;                                                                \
			printf("FAIL %s:%d: %s\n  got:  \"%s\"\n  want: \"%s\"\n", __FILE__, __LINE__, \
			       #got, g_ ? g_ : "(null)", w_);                                    \
		}                                                                                \
	} while (0)

#define CHECK_CONTAINS(hay, needle)                                                          \
	do {                                                                                 \
		const char *h_ = (hay), *n_ = (needle);                                      \
		if (h_ && strstr(h_, n_)) {                                                  \
			passed++;                                                            \
		} else {                                                                     \
			failed++;                                                            \
			printf("FAIL %s:%d: output lacks \"%s\"\n--- output ---\n%s\n---\n", \
			       __FILE__, __LINE__, n_, h_ ? h_ : "(null)");                   \
		}                                                                            \
	} while (0)

/* Istio's bootstrap stats_config (conformance/istio/bootstrap/default_golden.json). */
static const struct sk_tag_spec istio_tags[] = {
	{ "cluster_name", "^cluster(\\.(.+);)", NULL },
	{ "http_conn_manager_prefix",
	  "^http\\.(((?:[_.[:digit:]\\w]*|[_\\[\\]aAbBcCdDeEfF[:digit:]\\w\\:]*));\\.)", NULL },
	{ "thread_name", "^server(\\.(.+))\\.watchdog", NULL },
	{ "tcp_prefix", "^tcp\\.((.*?)\\.)\\w+?$", NULL },
	{ "response_code", "_rq(_(\\d{3}))$", NULL },
	{ "response_code_class", "_rq(_(\\dxx))$", NULL },
	{ "http_conn_manager_listener_prefix",
	  "^listener(?=\\.).*?\\.http\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)", NULL },
	{ "listener_address", "^listener\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)", NULL },
	{ "mongo_prefix", "^mongo\\.(.+?)\\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$", NULL },
	{ "cache", "(cache\\.(.+?)\\.)", NULL },
	{ "component", "(component\\.(.+?)\\.)", NULL },
	{ "tag", "(tag\\.(.+?);\\.)", NULL },
	{ "wasm_filter", "(wasm_filter\\.(.+?)\\.)", NULL },
	{ "authz_enforce_result", "rbac(\\.(allowed|denied))", NULL },
	{ "authz_dry_run_action", "(\\.istio_dry_run_(allow|deny)_)", NULL },
	{ "authz_dry_run_result", "(\\.shadow_(allowed|denied))", NULL },
};

static const struct sk_name_pattern istio_inclusion[] = {
	{ SK_NAME_PREFIX, "reporter=", false },
	{ SK_NAME_PREFIX, "cluster_manager", false },
	{ SK_NAME_PREFIX, "listener_manager", false },
	{ SK_NAME_PREFIX, "server", false },
	{ SK_NAME_PREFIX, "cluster.xds-grpc", false },
	{ SK_NAME_PREFIX, "wasm", false },
	{ SK_NAME_SUFFIX, "rbac.allowed", false },
	{ SK_NAME_SUFFIX, "rbac.denied", false },
	{ SK_NAME_SUFFIX, "shadow_allowed", false },
	{ SK_NAME_SUFFIX, "shadow_denied", false },
	{ SK_NAME_REGEX, "vhost\\..*\\.route\\..*", false },
	{ SK_NAME_PREFIX, "component", false },
	{ SK_NAME_PREFIX, "istio", false },
};

static struct sk_stats_store *istio_store(bool with_matcher)
{
	struct sk_stats_config c = {
		.inclusion = true,
		.patterns = with_matcher ? istio_inclusion : NULL,
		.n_patterns = with_matcher ? sizeof(istio_inclusion) / sizeof(istio_inclusion[0]) : 0,
		.tags = istio_tags,
		.n_tags = sizeof(istio_tags) / sizeof(istio_tags[0]),
		.use_all_default_tags = false,
	};
	if (!with_matcher)
		c.inclusion = false;
	char err[256] = "";
	struct sk_stats_store *s = sk_stats_store_new(&c, err, sizeof(err));
	if (!s)
		printf("istio store: %s\n", err);
	return s;
}

/* ---- sharded counters from real threads ---- */

#define ITERS 200000

struct worker {
	struct sk_stats_shard *shard;
	sk_stat_id counter, gauge, hist;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < ITERS; i++) {
		sk_stat_inc(w->shard, w->counter);
		sk_stat_add(w->shard, w->gauge, 2);
		if (i % 2)
			sk_stat_sub(w->shard, w->gauge, 1);
		if (i % 1000 == 0)
			sk_stat_record(w->shard, w->hist, (uint64_t)(i % 7));
	}
	return NULL;
}

static void test_threads(void)
{
	struct sk_stats_store *s = sk_stats_store_new(NULL, NULL, 0);
	CHECK(s != NULL);
	sk_stat_id c = sk_stats_counter(s, "cluster.a.upstream_rq_total");
	sk_stat_id g = sk_stats_gauge(s, "cluster.a.upstream_cx_active", SK_GAUGE_SUM);
	sk_stat_id h = sk_stats_histogram(s, "cluster.a.upstream_rq_time");
	CHECK(c != SK_STAT_NONE && g != SK_STAT_NONE && h != SK_STAT_NONE);
	struct worker w[2];
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		w[i] = (struct worker){ sk_stats_shard_new(s), c, g, h };
		CHECK(w[i].shard != NULL);
	}
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	/* Registering while workers write: new blocks must not move memory they use. */
	sk_stat_id last = SK_STAT_NONE;
	for (int i = 0; i < 5000; i++)
		last = sk_stats_counterf(s, "filler.%d.count", i);
	CHECK(last != SK_STAT_NONE);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK(sk_stats_value(s, c) == 2u * ITERS);
	CHECK(sk_stats_value(s, g) == 2u * (2u * ITERS - ITERS / 2));
	CHECK(sk_stats_value(s, h) == 2u * (ITERS / 1000));
	/* A worker writes a stat registered after it started. */
	sk_stat_inc(w[0].shard, last);
	sk_stat_inc(sk_stats_main_shard(s), last);
	CHECK(sk_stats_value(s, last) == 2);
	CHECK(sk_stats_counterf(s, "filler.%d.count", 4999) == last);
	sk_stats_store_free(s);
}

static void test_gauges_and_used(void)
{
	struct sk_stats_store *s = sk_stats_store_new(NULL, NULL, 0);
	struct sk_stats_shard *m = sk_stats_main_shard(s), *w = sk_stats_shard_new(s);
	sk_stat_id sum = sk_stats_gauge(s, "listener.0.0.0.0_15001.downstream_cx_active", SK_GAUGE_SUM);
	sk_stat_id main_only = sk_stats_gauge(s, "server.state", SK_GAUGE_MAIN_ONLY);
	sk_stat_id counter = sk_stats_counter(s, "server.x");
	sk_stat_add(m, sum, 3);
	sk_stat_add(w, sum, 4);
	sk_stat_sub(w, sum, 5); /* the worker's shard goes below zero; the sum is still right */
	CHECK(sk_stats_value(s, sum) == 2);
	sk_stat_set(m, main_only, 3);
	sk_stat_set(w, main_only, 7);
	CHECK(sk_stats_value(s, main_only) == 3);
	CHECK(!sk_stats_used(s, counter));
	CHECK(sk_stats_value(s, counter) == 0);
	sk_stat_inc(w, counter);
	CHECK(sk_stats_used(s, counter));
	sk_stat_id zero = sk_stats_gauge(s, "server.zero", SK_GAUGE_MAIN_ONLY);
	CHECK(!sk_stats_used(s, zero));
	sk_stat_set(m, zero, 0);
	CHECK(sk_stats_used(s, zero));
	/* Same name and type: same id; another type is another stat. */
	CHECK(sk_stats_gauge(s, "server.state", SK_GAUGE_MAIN_ONLY) == main_only);
	CHECK(sk_stats_counter(s, "server.state") != main_only);
	CHECK(!sk_stats_used(s, SK_STAT_NONE));
	sk_stats_store_free(s);
}

/* ---- stats_matcher ---- */

static void test_matcher(void)
{
	struct sk_stats_store *s = istio_store(true);
	struct sk_stats_shard *m = sk_stats_main_shard(s);
	CHECK(sk_stats_counter(s, "cluster_manager.cds.update_success") != SK_STAT_NONE);
	CHECK(sk_stats_counter(s, "cluster.xds-grpc;.upstream_cx_total") != SK_STAT_NONE);
	CHECK(sk_stats_counter(s, "cluster.outbound|80||a.svc;.upstream_cx_total") == SK_STAT_NONE);
	CHECK(sk_stats_counter(s, "http.inbound_0.0.0.0_80;.rbac.allowed") != SK_STAT_NONE);
	CHECK(sk_stats_counter(s, "vhost.a.route.b.upstream_rq_completed") != SK_STAT_NONE);
	CHECK(sk_stats_counter(s, "vhost.a.upstream_rq_completed") == SK_STAT_NONE);
	/* Writes to the sink vanish and do not crash. */
	sk_stat_inc(m, SK_STAT_NONE);
	sk_stat_record(m, SK_STAT_NONE, 12345);
	CHECK(sk_stats_value(s, SK_STAT_NONE) == 0);
	sk_stats_store_free(s);

	/* Exclusion list; safe_regex is a full match, not a search. */
	struct sk_name_pattern excl[] = {
		{ SK_NAME_PREFIX, "cluster.", false },
		{ SK_NAME_REGEX, "http\\.[a-z]+\\.rq", false },
		{ SK_NAME_CONTAINS, "DEBUG", true },
		{ SK_NAME_EXACT, "server.noisy", false },
	};
	struct sk_stats_config c = { .inclusion = false, .patterns = excl, .n_patterns = 4 };
	s = sk_stats_store_new(&c, NULL, 0);
	CHECK(s != NULL);
	CHECK(sk_stats_counter(s, "cluster.a.x") == SK_STAT_NONE);
	CHECK(sk_stats_counter(s, "cluster_manager.cds.update_success") != SK_STAT_NONE);
	CHECK(sk_stats_counter(s, "http.abc.rq") == SK_STAT_NONE);
	CHECK(sk_stats_counter(s, "http.abc.rq_total") != SK_STAT_NONE);
	CHECK(sk_stats_counter(s, "xhttp.abc.rq") != SK_STAT_NONE);
	CHECK(sk_stats_counter(s, "a.debug.b") == SK_STAT_NONE);
	CHECK(sk_stats_counter(s, "server.noisy") == SK_STAT_NONE);
	CHECK(sk_stats_counter(s, "server.noisy2") != SK_STAT_NONE);
	sk_stats_store_free(s);

	struct sk_stats_config rej = { .reject_all = true };
	s = sk_stats_store_new(&rej, NULL, 0);
	CHECK(sk_stats_counter(s, "server.state") == SK_STAT_NONE);
	sk_stats_store_free(s);

	struct sk_name_pattern bad[] = { { SK_NAME_REGEX, "(unclosed", false } };
	struct sk_stats_config badc = { .inclusion = true, .patterns = bad, .n_patterns = 1 };
	char err[256] = "";
	CHECK(sk_stats_store_new(&badc, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "stats_matcher.patterns[0]") != NULL);
}

/* ---- tag extraction ---- */

static void check_tags(struct sk_stats_store *s, const char *name, const char *want_name, const char *want_tags)
{
	char out[256], got[8192] = "";
	struct sk_stat_tag tags[16];
	size_t n = sk_stats_extract_tags(s, name, out, sizeof(out), tags, 16);
	for (size_t i = 0; i < n && i < 16; i++) {
		size_t l = strlen(got);
		snprintf(got + l, sizeof(got) - l, "%s%s=%s", i ? "," : "", tags[i].name, tags[i].value);
	}
	if (strcmp(out, want_name) == 0 && strcmp(got, want_tags) == 0) {
		passed++;
	} else {
		failed++;
		printf("FAIL tags of \"%s\"\n  got:  \"%s\" {%s}\n  want: \"%s\" {%s}\n", name, out, got, want_name,
		       want_tags);
	}
}

static void test_tags(void)
{
	struct sk_stats_store *s = istio_store(false);
	check_tags(s, "cluster.xds-grpc;.upstream_cx_total", "cluster.upstream_cx_total", "cluster_name=xds-grpc");
	check_tags(s, "listener.0.0.0.0_15090.downstream_cx_total", "listener.downstream_cx_total",
		   "listener_address=0.0.0.0_15090");
	check_tags(s, "cluster.x;.upstream_rq_200", "cluster.upstream_rq", "cluster_name=x,response_code=200");
	check_tags(s, "cluster.outbound|9080||reviews.default.svc.cluster.local;.upstream_rq_2xx",
		   "cluster.upstream_rq", "cluster_name=outbound|9080||reviews.default.svc.cluster.local,response_code_class=2xx");
	check_tags(s, "http.inbound_0.0.0.0_8080;.downstream_rq_total", "http.downstream_rq_total",
		   "http_conn_manager_prefix=inbound_0.0.0.0_8080");
	check_tags(s, "http.outbound_0.0.0.0_9080;.downstream_rq_503", "http.downstream_rq",
		   "response_code=503,http_conn_manager_prefix=outbound_0.0.0.0_9080");
	check_tags(s, "listener.[__1]_15006.http.10.0.0.1_80.downstream_rq_total",
		   "listener.http.downstream_rq_total",
		   "http_conn_manager_listener_prefix=10.0.0.1_80,listener_address=[__1]_15006");
	check_tags(s, "server.main_thread.watchdog_miss", "server.watchdog_miss", "thread_name=main_thread");
	check_tags(s, "tcp.inbound_passthrough.downstream_cx_total", "tcp.downstream_cx_total",
		   "tcp_prefix=inbound_passthrough");
	check_tags(s, "http.inbound_0.0.0.0_80;.rbac.allowed", "http.rbac",
		   "authz_enforce_result=allowed,http_conn_manager_prefix=inbound_0.0.0.0_80");
	check_tags(s, "server.live", "server.live", "");
	sk_stats_store_free(s);

	/* Envoy's default extractors. */
	s = sk_stats_store_new(NULL, NULL, 0);
	check_tags(s, "cluster.foo.upstream_rq_200", "cluster.upstream_rq",
		   "envoy.response_code=200,envoy.cluster_name=foo");
	check_tags(s, "http.ingress.downstream_rq_2xx", "http.downstream_rq_xx",
		   "envoy.response_code_class=2,envoy.http_conn_manager_prefix=ingress");
	check_tags(s, "listener.0.0.0.0_15001.downstream_cx_total", "listener.downstream_cx_total",
		   "envoy.listener_address=0.0.0.0_15001");
	check_tags(s, "listener.admin.downstream_cx_total", "listener.admin.downstream_cx_total", "");
	check_tags(s, "listener.127.0.0.1_80.http.ingress.downstream_rq_total", "listener.http.downstream_rq_total",
		   "envoy.http_conn_manager_prefix=ingress,envoy.listener_address=127.0.0.1_80");
	/* Envoy's worker_id regex removes only "1.", leaving "worker_" in the name. */
	check_tags(s, "listener_manager.worker_1.dispatcher.loop_duration_us",
		   "listener_manager.worker_dispatcher.loop_duration_us", "envoy.worker_id=1");
	check_tags(s, "vhost.vh1.route.r1.upstream_rq_completed", "vhost.route.upstream_rq_completed",
		   "envoy.virtual_host=vh1,envoy.route=r1");
	check_tags(s, "vhost.vh1.vcluster.vc1.upstream_rq_time", "vhost.vcluster.upstream_rq_time",
		   "envoy.virtual_cluster=vc1,envoy.virtual_host=vh1");
	check_tags(s, "cluster.c1.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256", "cluster.ssl.ciphers",
		   "cipher_suite=ECDHE-RSA-AES128-GCM-SHA256,envoy.cluster_name=c1");
	check_tags(s, "listener.10.0.0.1_443.ssl.versions.TLSv1.3", "listener.ssl.versions",
		   "envoy.ssl_version=TLSv1.3,envoy.listener_address=10.0.0.1_443");
	check_tags(s, "cluster.c1.grpc.svc.method.success", "cluster.grpc.success",
		   "envoy.grpc_bridge_method=method,envoy.grpc_bridge_service=svc,envoy.cluster_name=c1");
	check_tags(s, "http.ingress.rds.my_route.config_reload", "http.rds.config_reload",
		   "envoy.rds_route_config=my_route,envoy.http_conn_manager_prefix=ingress");
	check_tags(s, "tcp.passthrough.downstream_cx_total", "tcp.downstream_cx_total", "envoy.tcp_prefix=passthrough");
	check_tags(s, "redis.cache.command.get.total", "redis.command.get.total", "envoy.redis_prefix=cache");
	check_tags(s, "server.uptime", "server.uptime", "");
	sk_stats_store_free(s);

	/* fixed_value tags; a name-only spec takes Envoy's default regex for that name. */
	struct sk_tag_spec extra[] = {
		{ "mesh", NULL, "m1" },
		{ "envoy.response_code", "_code(_(\\d+))$", NULL },
		{ "envoy.cluster_name", NULL, NULL }, /* name only: Envoy's default regex for it */
	};
	struct sk_stats_config c = { .tags = extra, .n_tags = 3, .use_all_default_tags = false };
	char err[256] = "";
	s = sk_stats_store_new(&c, err, sizeof(err));
	CHECK(s != NULL);
	check_tags(s, "cluster.foo.upstream_code_404", "cluster.upstream_code",
		   "mesh=m1,envoy.response_code=404,envoy.cluster_name=foo");
	sk_stats_store_free(s);
	/* With the defaults on, a configured name that a default has is an error, as in
	 * Envoy's TagProducerImpl ("Tag name '...' specified twice."). */
	c.use_all_default_tags = true;
	CHECK(sk_stats_store_new(&c, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "stats_tags[1]: Tag name 'envoy.response_code' specified twice.") != NULL);
	{
		struct sk_tag_spec twice[] = { { "a", "^a(\\.(.+))$", NULL }, { "a", NULL, "x" } };
		struct sk_stats_config c2 = { .tags = twice, .n_tags = 2 };

		CHECK(sk_stats_store_new(&c2, err, sizeof(err)) == NULL);
		CHECK(strstr(err, "stats_tags[1]: Tag name 'a' specified twice.") != NULL);
	}

	struct sk_tag_spec unknown[] = { { "no_such_default", NULL, NULL } };
	struct sk_stats_config bad = { .tags = unknown, .n_tags = 1 };
	CHECK(sk_stats_store_new(&bad, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "no_such_default") != NULL);
}

/* ---- rendering ---- */

static char *render(struct sk_stats_store *s, enum sk_stats_format f, const char *filter, bool usedonly,
		    const char *type)
{
	struct sk_stats_query q = { f, filter, usedonly, type };
	char err[256] = "";
	char *out = sk_stats_render(s, &q, err, sizeof(err));
	if (!out)
		printf("render: %s\n", err);
	return out;
}

static void test_text(void)
{
	struct sk_stats_store *s = istio_store(true);
	struct sk_stats_shard *m = sk_stats_main_shard(s), *w = sk_stats_shard_new(s);
	sk_stat_id cds_ok = sk_stats_counter(s, "cluster_manager.cds.update_success");
	sk_stat_id cds_rej = sk_stats_counter(s, "cluster_manager.cds.update_rejected");
	sk_stat_id lds_ok = sk_stats_counter(s, "listener_manager.lds.update_success");
	sk_stats_counter(s, "listener_manager.lds.update_rejected");
	sk_stats_counter(s, "listener_manager.lds.update_success_extra");
	sk_stat_id state = sk_stats_gauge(s, "server.state", SK_GAUGE_MAIN_ONLY);
	sk_stat_id started = sk_stats_gauge(s, "listener_manager.workers_started", SK_GAUGE_MAIN_ONLY);
	sk_stat_id uptime = sk_stats_gauge(s, "server.uptime", SK_GAUGE_MAIN_ONLY);
	sk_stats_histogram(s, "server.initialization_time_ms");
	sk_stat_id xds = sk_stats_counter(s, "cluster.xds-grpc;.upstream_cx_total");
	sk_stat_inc(m, cds_ok);
	sk_stat_add(w, cds_ok, 2);
	sk_stat_add(m, cds_rej, 0);
	sk_stat_inc(m, lds_ok);
	sk_stat_set(m, state, 0);
	sk_stat_set(m, started, 1);
	sk_stat_set(m, uptime, 42);
	sk_stat_inc(w, xds);

	char *out = render(s, SK_STATS_TEXT, NULL, false, NULL);
	CHECK_STR(out, "cluster.xds-grpc;.upstream_cx_total: 1\n"
		       "cluster_manager.cds.update_rejected: 0\n"
		       "cluster_manager.cds.update_success: 3\n"
		       "listener_manager.lds.update_rejected: 0\n"
		       "listener_manager.lds.update_success: 1\n"
		       "listener_manager.lds.update_success_extra: 0\n"
		       "listener_manager.workers_started: 1\n"
		       "server.state: 0\n"
		       "server.uptime: 42\n"
		       "server.initialization_time_ms: No recorded values\n");
	free(out);

	/* pilot-agent's readiness queries. */
	out = render(s, SK_STATS_TEXT,
		     "^(cluster_manager\\.cds|listener_manager\\.lds)\\.(update_success|update_rejected)$", true, NULL);
	CHECK_STR(out, "cluster_manager.cds.update_rejected: 0\n"
		       "cluster_manager.cds.update_success: 3\n"
		       "listener_manager.lds.update_success: 1\n");
	free(out);
	out = render(s, SK_STATS_TEXT, "^(server\\.state|listener_manager\\.workers_started)", true, NULL);
	CHECK_STR(out, "listener_manager.workers_started: 1\nserver.state: 0\n");
	free(out);
	/* The filter is a search, not a full match. */
	out = render(s, SK_STATS_TEXT, "update_rej", false, NULL);
	CHECK_STR(out, "cluster_manager.cds.update_rejected: 0\nlistener_manager.lds.update_rejected: 0\n");
	free(out);
	out = render(s, SK_STATS_TEXT, NULL, false, "Gauges");
	CHECK_STR(out, "listener_manager.workers_started: 1\nserver.state: 0\nserver.uptime: 42\n");
	free(out);
	out = render(s, SK_STATS_TEXT, NULL, false, "Histograms");
	CHECK_STR(out, "server.initialization_time_ms: No recorded values\n");
	free(out);
	out = render(s, SK_STATS_TEXT, NULL, true, "Histograms");
	CHECK_STR(out, "");
	free(out);

	struct sk_stats_query bad = { SK_STATS_TEXT, "(", false, NULL };
	char err[128] = "";
	CHECK(sk_stats_render(s, &bad, err, sizeof(err)) == NULL && err[0]);
	struct sk_stats_query badtype = { SK_STATS_TEXT, NULL, false, "Bogus" };
	CHECK(sk_stats_render(s, &badtype, err, sizeof(err)) == NULL);
	sk_stats_store_free(s);
}

static void test_json(void)
{
	struct sk_stats_store *s = sk_stats_store_new(NULL, NULL, 0);
	struct sk_stats_shard *m = sk_stats_main_shard(s);
	sk_stat_id a = sk_stats_counter(s, "b.count");
	sk_stat_id g = sk_stats_gauge(s, "a.\"quoted\"", SK_GAUGE_SUM);
	sk_stat_id h = sk_stats_histogram(s, "c.time");
	sk_stats_histogram(s, "d.unused");
	sk_stat_add(m, a, 5);
	sk_stat_set(m, g, 7);
	for (uint64_t v = 1; v <= 100; v++)
		sk_stat_record(m, h, v);

	char *out = render(s, SK_STATS_JSON, NULL, false, NULL);
	json_error_t jerr;
	json_t *root = out ? json_loads(out, 0, &jerr) : NULL;
	CHECK(root != NULL);
	if (!root)
		printf("json: %s\n%s\n", jerr.text, out ? out : "");
	json_t *stats = json_object_get(root, "stats");
	CHECK(json_is_array(stats) && json_array_size(stats) == 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(stats, 0), "name")), "a.\"quoted\"");
	CHECK(json_integer_value(json_object_get(json_array_get(stats, 0), "value")) == 7);
	CHECK_STR(json_string_value(json_object_get(json_array_get(stats, 1), "name")), "b.count");
	CHECK(json_integer_value(json_object_get(json_array_get(stats, 1), "value")) == 5);
	json_t *hist = json_object_get(json_array_get(stats, 2), "histograms");
	json_t *sq = json_object_get(hist, "supported_quantiles");
	CHECK(json_array_size(sq) == 10 && json_number_value(json_array_get(sq, 7)) == 99.5);
	json_t *cq = json_object_get(hist, "computed_quantiles");
	CHECK(json_array_size(cq) == 2);
	json_t *c0 = json_array_get(cq, 0);
	CHECK_STR(json_string_value(json_object_get(c0, "name")), "c.time");
	json_t *vals = json_object_get(c0, "values");
	CHECK(json_array_size(vals) == 10);
	CHECK(json_number_value(json_object_get(json_array_get(vals, 0), "interval")) == 1);
	CHECK(json_number_value(json_object_get(json_array_get(vals, 9), "cumulative")) == 100);
	json_t *unused = json_array_get(json_object_get(json_array_get(cq, 1), "values"), 0);
	CHECK(json_is_null(json_object_get(unused, "interval")));
	json_decref(root);
	free(out);

	out = render(s, SK_STATS_JSON, "^nothing$", false, NULL);
	CHECK_STR(out, "{\"stats\":[]}\n");
	root = out ? json_loads(out, 0, &jerr) : NULL;
	CHECK(root != NULL);
	json_decref(root);
	free(out);
	sk_stats_store_free(s);
}

static void test_histogram(void)
{
	struct sk_stats_store *s = sk_stats_store_new(NULL, NULL, 0);
	struct sk_stats_shard *m = sk_stats_main_shard(s), *w = sk_stats_shard_new(s);
	sk_stat_id h = sk_stats_histogram(s, "cluster.c.upstream_rq_time");
	CHECK(!sk_stats_used(s, h));
	/* 0 lands in le=0.5; 1 in le=1; 3 in le=5; 7 in le=10; 4000000 only in +Inf. */
	sk_stat_record(m, h, 0);
	sk_stat_record(w, h, 1);
	sk_stat_record(w, h, 3);
	sk_stat_record(m, h, 7);
	sk_stat_record(w, h, 4000000);
	CHECK(sk_stats_used(s, h));
	CHECK(sk_stats_value(s, h) == 5);
	char *out = render(s, SK_STATS_PROMETHEUS, NULL, false, NULL);
	CHECK_STR(out, "# TYPE envoy_cluster_upstream_rq_time histogram\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"0.5\"} 1\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"1\"} 2\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"5\"} 3\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"10\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"25\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"50\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"100\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"250\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"500\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"1000\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"2500\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"5000\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"10000\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"30000\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"60000\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"300000\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"600000\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"1800000\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"3600000\"} 4\n"
		       "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"c\",le=\"+Inf\"} 5\n"
		       "envoy_cluster_upstream_rq_time_sum{envoy_cluster_name=\"c\"} 4000011\n"
		       "envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"c\"} 5\n");
	free(out);
	out = render(s, SK_STATS_TEXT, NULL, false, NULL);
	/* P0 is the minimum and P100 the maximum; others interpolate inside their bucket:
	 * P25 (rank 1.25) in (0.5, 1], P50 (rank 2.5) in (1, 5], P75 (rank 3.75) in (5, 10],
	 * P90 (rank 4.5) in (3600000, max]. */
	CHECK_STR(out, "cluster.c.upstream_rq_time: P0(0,0) P25(0.625,0.625) P50(3,3) P75(8.75,8.75) "
		       "P90(3800000,3800000) P95(3900000,3900000) P99(3980000,3980000) "
		       "P99.5(3990000,3990000) P99.9(3998000,3998000) P100(4000000,4000000)\n");
	free(out);
	sk_stats_store_free(s);

	/* A uniform 1..1000 distribution: percentiles land near the true values. */
	s = sk_stats_store_new(NULL, NULL, 0);
	m = sk_stats_main_shard(s);
	h = sk_stats_histogram(s, "u");
	for (uint64_t v = 1; v <= 1000; v++)
		sk_stat_record(m, h, v);
	out = render(s, SK_STATS_TEXT, NULL, false, NULL);
	CHECK_CONTAINS(out, "u: P0(1,1) P25(250,250) P50(500,500) P75(750,750) P90(900,900)");
	CHECK_CONTAINS(out, "P100(1000,1000)\n");
	free(out);
	sk_stats_store_free(s);
}

static void test_prometheus(void)
{
	struct sk_stats_store *s = istio_store(false);
	struct sk_stats_shard *m = sk_stats_main_shard(s);
	CHECK(sk_stats_register_namespace(s, "istio") == 0);
	sk_stat_id xds = sk_stats_counter(s, "cluster.xds-grpc;.upstream_cx_total");
	sk_stat_id sds = sk_stats_counter(s, "cluster.sds-grpc;.upstream_cx_total");
	sk_stat_id rq = sk_stats_counter(s, "cluster.x;.upstream_rq_200");
	sk_stats_counter(s, "cluster.x;.upstream_rq_503");
	sk_stat_id lst = sk_stats_counter(s, "listener.0.0.0.0_15090.downstream_cx_total");
	sk_stat_id state = sk_stats_gauge(s, "server.state", SK_GAUGE_MAIN_ONLY);
	sk_stat_id esc = sk_stats_gauge(s, "cluster.a\"b\\c;.membership_total", SK_GAUGE_SUM);
	sk_stat_id ist = sk_stats_counter(s, "istio.istio_requests_total");
	sk_stat_inc(m, xds);
	sk_stat_add(m, sds, 3);
	sk_stat_add(m, rq, 9);
	sk_stat_inc(m, lst);
	sk_stat_set(m, state, 0);
	sk_stat_set(m, esc, 2);
	sk_stat_inc(m, ist);

	char *out = render(s, SK_STATS_PROMETHEUS, NULL, false, NULL);
	CHECK_STR(out, "# TYPE envoy_cluster_upstream_cx_total counter\n"
		       "envoy_cluster_upstream_cx_total{cluster_name=\"sds-grpc\"} 3\n"
		       "envoy_cluster_upstream_cx_total{cluster_name=\"xds-grpc\"} 1\n"
		       "# TYPE envoy_cluster_upstream_rq counter\n"
		       "envoy_cluster_upstream_rq{cluster_name=\"x\",response_code=\"200\"} 9\n"
		       "envoy_cluster_upstream_rq{cluster_name=\"x\",response_code=\"503\"} 0\n"
		       "# TYPE istio_requests_total counter\n"
		       "istio_requests_total{} 1\n"
		       "# TYPE envoy_listener_downstream_cx_total counter\n"
		       "envoy_listener_downstream_cx_total{listener_address=\"0.0.0.0_15090\"} 1\n"
		       "# TYPE envoy_cluster_membership_total gauge\n"
		       "envoy_cluster_membership_total{cluster_name=\"a\\\"b\\\\c\"} 2\n"
		       "# TYPE envoy_server_state gauge\n"
		       "envoy_server_state{} 0\n");
	free(out);

	out = render(s, SK_STATS_PROMETHEUS, NULL, true, NULL);
	CHECK(out && !strstr(out, "503"));
	CHECK_CONTAINS(out, "envoy_cluster_upstream_rq{cluster_name=\"x\",response_code=\"200\"} 9\n");
	free(out);
	out = render(s, SK_STATS_PROMETHEUS, "xds-grpc", false, NULL);
	CHECK_STR(out, "# TYPE envoy_cluster_upstream_cx_total counter\n"
		       "envoy_cluster_upstream_cx_total{cluster_name=\"xds-grpc\"} 1\n");
	free(out);
	sk_stats_store_free(s);
}

int main(void)
{
	test_threads();
	test_gauges_and_used();
	test_matcher();
	test_tags();
	test_text();
	test_json();
	test_histogram();
	test_prometheus();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
