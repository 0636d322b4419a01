/* grpc_bridge_test: xds/grpc_bridge.c against the real gRPC core, with xds/server's ADS
 * server on a unix socket in a thread of this process: messages both ways with queued sends,
 * initial metadata and :authority, UNIMPLEMENTED and UNAVAILABLE as on_close, close and
 * destroy with streams open (ASan checks that nothing leaks); the ADS client over it; and the
 * cluster -> gRPC target mapping. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "skiff_protos.h"
#include "test.h"
#include "xds/ads.h"
#include "xds/grpc_bridge.h"
#include "xds/server/ads_server.h"

/* ---------------------------------------------------------------- the server thread */

struct server_thread {
	struct sk_xds_server *srv;
	pthread_t thread;
	atomic_bool stop;
	char dir[64], sock[128], target[160], log_path[160], res_path[160];
	FILE *log;
};

static void *serve(void *arg)
{
	struct server_thread *st = arg;

	while (!atomic_load(&st->stop))
		sk_xds_server_poll(st->srv, 20);
	return NULL;
}

static const char resources_json[] =
	"[{\"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\", \"name\": \"c1\", \"type\": \"EDS\"},"
	" {\"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\", \"name\": \"c2\"},"
	" {\"@type\": \"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment\", \"cluster_name\": \"c1\"},"
	" {\"@type\": \"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret\", \"name\": \"default\"},"
	" {\"@type\": \"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret\", \"name\": \"ROOTCA\"}]";

static int server_start(struct server_thread *st)
{
	const char *listen[1];
	struct sk_xds_server_opts o = {.listen = listen, .n_listen = 1};
	struct sk_xds_store *store;
	char err[512];
	FILE *f;

	snprintf(st->dir, sizeof(st->dir), "/tmp/skiff-bridge.XXXXXX");
	if (mkdtemp(st->dir) == NULL)
		return -1;
	snprintf(st->sock, sizeof(st->sock), "%s/xds.sock", st->dir);
	snprintf(st->target, sizeof(st->target), "unix:%s", st->sock);
	snprintf(st->log_path, sizeof(st->log_path), "%s/server.log", st->dir);
	snprintf(st->res_path, sizeof(st->res_path), "%s/res.json", st->dir);
	if ((f = fopen(st->res_path, "w")) == NULL)
		return -1;
	fputs(resources_json, f);
	fclose(f);
	if (sk_xds_store_load((const char *const[]){st->res_path}, 1, "v1", false, &store, err, sizeof(err)) < 0) {
		fprintf(stderr, "store: %s\n", err);
		return -1;
	}
	st->log = fopen(st->log_path, "w");
	listen[0] = st->target;
	o.log = st->log;
	st->srv = sk_xds_server_create(&o, err, sizeof(err));
	if (st->srv == NULL) {
		fprintf(stderr, "server: %s\n", err);
		sk_xds_store_free(store);
		return -1;
	}
	sk_xds_server_set_store(st->srv, store);
	atomic_store(&st->stop, false);
	return pthread_create(&st->thread, NULL, serve, st) == 0 ? 0 : -1;
}

static void server_stop(struct server_thread *st)
{
	atomic_store(&st->stop, true);
	pthread_join(st->thread, NULL);
	sk_xds_server_destroy(st->srv);
	fclose(st->log);
}

/* The server's log (after server_stop), malloc'd. */
static char *server_log(struct server_thread *st)
{
	FILE *f = fopen(st->log_path, "r");
	char *buf = calloc(1, 1 << 16);

	if (f && buf)
		buf[fread(buf, 1, (1 << 16) - 1, f)] = '\0';
	if (f)
		fclose(f);
	return buf;
}

static void server_cleanup(struct server_thread *st)
{
	unlink(st->res_path);
	unlink(st->log_path);
	unlink(st->sock);
	rmdir(st->dir);
}

/* ---------------------------------------------------------------- loop helpers */

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* Runs the loop until *flag is set or `seconds` pass. Returns whether the flag was set. */
static bool run_until(struct ev_loop *loop, const int *flag, int want, double seconds)
{
	ev_timer tick;
	ev_tstamp end = ev_time() + seconds;

	ev_timer_init(&tick, on_tick, 0.02, 0.02);
	ev_timer_start(loop, &tick);
	while (*flag < want && ev_time() < end)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &tick);
	return *flag >= want;
}

/* ---------------------------------------------------------------- a raw stream */

struct client {
	int ready, messages, closes;
	grpc_status_code status;
	char details[256];
	char types[1024];
	struct sk_grpc_stream *s;
	bool close_in_on_message;
};

static void c_ready(void *ctx)
{
	((struct client *)ctx)->ready++;
}

static void c_message(void *ctx, const uint8_t *data, size_t len)
{
	struct client *c = ctx;
	Envoy__Service__Discovery__V3__DiscoveryResponse *r =
		envoy__service__discovery__v3__discovery_response__unpack(NULL, len, data);

	c->messages++;
	if (r) {
		size_t used = strlen(c->types);

		snprintf(c->types + used, sizeof(c->types) - used, "%s:%zu;", r->type_url, r->n_resources);
		envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
	}
	if (c->close_in_on_message && c->s) {
		sk_grpc_stream_close(c->s);
		c->s = NULL;
	}
}

static void c_close(void *ctx, grpc_status_code status, const char *details)
{
	struct client *c = ctx;

	c->closes++;
	c->status = status;
	snprintf(c->details, sizeof(c->details), "%s", details);
}

static int send_request(struct sk_grpc_stream *s, const char *type_url, const char *name)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest r = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
	char *names[1] = {(char *)name};
	uint8_t buf[512];
	size_t len;

	r.type_url = (char *)type_url;
	r.resource_names = names;
	r.n_resource_names = name ? 1 : 0;
	len = protobuf_c_message_pack(&r.base, buf);
	return sk_grpc_stream_send(s, buf, len);
}

static struct sk_grpc_stream *open_stream(struct sk_grpc_bridge *b, const char *target, const char *method,
					  struct client *c)
{
	static const struct sk_grpc_metadata md[] = {{"x-test-header", "hello"}};
	struct sk_grpc_stream_opts o = {
		.target = target,
		.method = method,
		.authority = "xds-grpc",
		.metadata = md,
		.n_metadata = 1,
		.cb = {.on_ready = c_ready, .on_message = c_message, .on_close = c_close},
		.ctx = c,
	};
	char err[256];

	return sk_grpc_stream_open(b, &o, err, sizeof(err));
}

static void test_stream(struct ev_loop *loop, struct server_thread *st)
{
	struct sk_grpc_bridge *b = sk_grpc_bridge_create(loop);
	struct client c = {0}, bad = {0}, none = {0}, early = {0};
	struct sk_grpc_stream_opts o = {0};
	char err[256], target[200];
	char *log;

	CHECK(b != NULL);
	c.s = open_stream(b, st->target, SK_ADS_METHOD_SOTW, &c);
	CHECK(c.s != NULL);
	/* Three sends at once: gRPC takes one at a time, the bridge queues the others. */
	CHECK(send_request(c.s, SK_TYPE_URL_CLUSTER, NULL) == 0);
	CHECK(send_request(c.s, SK_TYPE_URL_ENDPOINT, "c1") == 0);
	CHECK(send_request(c.s, SK_TYPE_URL_LISTENER, NULL) == 0);
	CHECK(sk_grpc_stream_pending(c.s) >= 1);
	CHECK(run_until(loop, &c.messages, 3, 10));
	CHECK(c.ready == 1);
	CHECK_CONTAINS(c.types, SK_TYPE_URL_CLUSTER ":2;");
	CHECK_CONTAINS(c.types, SK_TYPE_URL_ENDPOINT ":1;");
	CHECK_CONTAINS(c.types, SK_TYPE_URL_LISTENER ":0;");
	CHECK(sk_grpc_stream_pending(c.s) == 0);

	/* A method the server does not serve; a socket nobody listens on. */
	bad.s = open_stream(b, st->target, "/skiff.test.Nope/Call", &bad);
	snprintf(target, sizeof(target), "unix:%s/nobody.sock", st->dir);
	none.s = open_stream(b, target, SK_ADS_METHOD_SOTW, &none);
	CHECK(bad.s != NULL && none.s != NULL);
	CHECK(run_until(loop, &bad.closes, 1, 10));
	CHECK(bad.status == GRPC_STATUS_UNIMPLEMENTED);
	CHECK(run_until(loop, &none.closes, 1, 10));
	CHECK(none.status == GRPC_STATUS_UNAVAILABLE);
	CHECK(none.details[0] != '\0');
	CHECK(sk_grpc_stream_send(none.s, "x", 1) == -EPIPE);
	sk_grpc_stream_close(bad.s);
	sk_grpc_stream_close(none.s);

	/* Closing from inside on_message: no callback after. */
	early.close_in_on_message = true;
	early.s = open_stream(b, st->target, SK_ADS_METHOD_SOTW, &early);
	send_request(early.s, SK_TYPE_URL_CLUSTER, NULL);
	send_request(early.s, SK_TYPE_URL_LISTENER, NULL);
	CHECK(run_until(loop, &early.messages, 1, 10));
	run_until(loop, &early.closes, 1, 0.3);
	CHECK(early.messages == 1 && early.closes == 0);

	/* Opening without a method fails at once, with no callback. */
	o.target = st->target;
	CHECK(sk_grpc_stream_open(b, &o, err, sizeof(err)) == NULL);
	CHECK_CONTAINS(err, "method");

	/* c stays open: destroy cancels it and joins the thread. */
	sk_grpc_bridge_destroy(b);
	CHECK(c.closes == 0);
	server_stop(st);
	log = server_log(st);
	CHECK_CONTAINS(log, "authority=xds-grpc");
	CHECK_CONTAINS(log, "x-test-header=hello");
	CHECK_CONTAINS(log, "method=/skiff.test.Nope/Call");
	CHECK_CONTAINS(log, "REQUEST stream=1 mode=sotw type=" SK_TYPE_URL_ENDPOINT " version= nonce= names=c1");
	free(log);
}

/* ---------------------------------------------------------------- ADS over gRPC */

struct ads_owner {
	int applies;
	char names[256];
};

static int ads_apply(void *ctx, struct sk_ads_update *u, char *err, size_t errlen)
{
	struct ads_owner *o = ctx;
	size_t i;

	(void)err;
	(void)errlen;
	o->applies++;
	for (i = 0; i < u->n_resources; i++) {
		size_t used = strlen(o->names);

		snprintf(o->names + used, sizeof(o->names) - used, "%s;", u->resources[i].name);
	}
	return 0;
}

static void test_ads_over_grpc(struct ev_loop *loop, struct server_thread *st, enum sk_ads_api_type api)
{
	struct sk_grpc_bridge *b = sk_grpc_bridge_create(loop);
	struct ads_owner o = {0};
	struct sk_ads_config cfg = {.api_type = api, .set_node_on_first_message_only = true, .bridge = b,
				    .target = st->target, .apply = ads_apply, .ctx = &o};
	/* SDS rides on the same client: another method, the Secret type, names. */
	struct ads_owner so = {0};
	struct sk_ads_config scfg = {.api_type = api, .method = api == SK_ADS_DELTA ? SK_SDS_METHOD_DELTA
									  : SK_SDS_METHOD_SOTW,
				     .bridge = b, .target = st->target, .apply = ads_apply, .ctx = &so};
	const char *secrets[] = {"default"};
	struct sk_ads *sds;
	struct sk_ads_stats cs;
	struct sk_ads *ads;
	char err[256], *log;

	ads = sk_ads_create(loop, &cfg, err, sizeof(err));
	CHECK(ads != NULL);
	sk_ads_subscribe(ads, SK_TYPE_URL_CLUSTER, NULL, 0, true);
	sk_ads_start(ads);
	CHECK(run_until(loop, &o.applies, 1, 10));
	CHECK_CONTAINS(o.names, "c1;");
	CHECK_CONTAINS(o.names, "c2;");
	sk_ads_stats(ads, &cs);
	CHECK(cs.connected_state == 1);
	CHECK_STR(cs.identifier, "skiff-xds-server");
	sds = sk_ads_create(loop, &scfg, err, sizeof(err));
	CHECK(sds != NULL);
	sk_ads_subscribe(sds, SK_TYPE_URL_SECRET, secrets, 1, false);
	sk_ads_start(sds);
	CHECK(run_until(loop, &so.applies, 1, 10));
	CHECK_STR(so.names, "default;");
	/* Let the ACK reach the server before everything stops. */
	{
		int never = 0;

		run_until(loop, &never, 1, 0.3);
	}
	sk_ads_destroy(ads);
	sk_ads_destroy(sds);
	sk_grpc_bridge_destroy(b);
	server_stop(st);
	log = server_log(st);
	CHECK_CONTAINS(log, api == SK_ADS_DELTA ? "ACK stream=1 mode=delta type=" SK_TYPE_URL_CLUSTER " version=v1 nonce=1"
						: "ACK stream=1 mode=sotw type=" SK_TYPE_URL_CLUSTER " version=v1 nonce=1");
	CHECK_CONTAINS(log, api == SK_ADS_DELTA ? "method=" SK_SDS_METHOD_DELTA : "method=" SK_SDS_METHOD_SOTW);
	CHECK_CONTAINS(log, " type=" SK_TYPE_URL_SECRET " version=v1 nonce=1 resources=default");
	free(log);
}

/* ---------------------------------------------------------------- targets */

static void test_targets(void)
{
	Envoy__Config__Cluster__V3__Cluster c = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
	Envoy__Config__Endpoint__V3__ClusterLoadAssignment la = ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
	Envoy__Config__Endpoint__V3__LocalityLbEndpoints loc = ENVOY__CONFIG__ENDPOINT__V3__LOCALITY_LB_ENDPOINTS__INIT;
	Envoy__Config__Endpoint__V3__LbEndpoint lb = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__INIT;
	Envoy__Config__Endpoint__V3__Endpoint ep = ENVOY__CONFIG__ENDPOINT__V3__ENDPOINT__INIT;
	Envoy__Config__Core__V3__Address addr = ENVOY__CONFIG__CORE__V3__ADDRESS__INIT;
	Envoy__Config__Core__V3__Pipe pipe = ENVOY__CONFIG__CORE__V3__PIPE__INIT;
	Envoy__Config__Core__V3__SocketAddress sa = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__INIT;
	Envoy__Config__Core__V3__TransportSocket ts = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__INIT;
	Envoy__Config__Endpoint__V3__LocalityLbEndpoints *locs[] = {&loc};
	Envoy__Config__Endpoint__V3__LbEndpoint *lbs[] = {&lb};
	char buf[256], err[256];

	c.name = "xds-grpc";
	CHECK(sk_grpc_target_from_cluster(&c, buf, sizeof(buf), err, sizeof(err)) == -EINVAL);
	CHECK_CONTAINS(err, "no endpoint");
	c.load_assignment = &la;
	la.endpoints = locs;
	la.n_endpoints = 1;
	loc.lb_endpoints = lbs;
	loc.n_lb_endpoints = 1;
	lb.host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
	lb.endpoint = &ep;
	ep.address = &addr;
	addr.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE;
	addr.pipe = &pipe;
	pipe.path = "./etc/istio/proxy/XDS";
	CHECK(sk_grpc_target_from_cluster(&c, buf, sizeof(buf), err, sizeof(err)) == 0);
	CHECK_STR(buf, "unix:./etc/istio/proxy/XDS");
	pipe.path = "@abstract";
	CHECK(sk_grpc_target_from_cluster(&c, buf, sizeof(buf), err, sizeof(err)) == 0);
	CHECK_STR(buf, "unix-abstract:abstract");
	addr.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
	addr.socket_address = &sa;
	sa.address = "127.0.0.1";
	sa.port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
	sa.port_value = 15010;
	CHECK(sk_grpc_target_from_cluster(&c, buf, sizeof(buf), err, sizeof(err)) == 0);
	CHECK_STR(buf, "ipv4:127.0.0.1:15010");
	sa.address = "::1";
	CHECK(sk_grpc_target_from_cluster(&c, buf, sizeof(buf), err, sizeof(err)) == 0);
	CHECK_STR(buf, "ipv6:[::1]:15010");
	sa.address = "istiod.istio-system.svc";
	CHECK(sk_grpc_target_from_cluster(&c, buf, sizeof(buf), err, sizeof(err)) == 0);
	CHECK_STR(buf, "dns:///istiod.istio-system.svc:15010");
	sa.port_value = 0;
	CHECK(sk_grpc_target_from_cluster(&c, buf, sizeof(buf), err, sizeof(err)) == -EINVAL);
	CHECK_CONTAINS(err, "port_value");
	sa.port_value = 15012;
	ts.name = "envoy.transport_sockets.tls";
	c.transport_socket = &ts;
	CHECK(sk_grpc_target_from_cluster(&c, buf, sizeof(buf), err, sizeof(err)) == -ENOTSUP);
	CHECK_CONTAINS(err, "not supported");
}

int main(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct server_thread st;

	test_targets();
	memset(&st, 0, sizeof(st));
	if (server_start(&st) == 0) {
		test_stream(loop, &st);
		server_cleanup(&st);
	} else {
		CHECK(!"the test server starts");
	}
	memset(&st, 0, sizeof(st));
	if (server_start(&st) == 0) {
		test_ads_over_grpc(loop, &st, SK_ADS_SOTW);
		server_cleanup(&st);
	}
	memset(&st, 0, sizeof(st));
	if (server_start(&st) == 0) {
		test_ads_over_grpc(loop, &st, SK_ADS_DELTA);
		server_cleanup(&st);
	}
	ev_loop_destroy(loop);
	return TEST_SUMMARY();
}
