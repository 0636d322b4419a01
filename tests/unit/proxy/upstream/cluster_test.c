/* cluster_test: host selection as Envoy does it — health, priorities with the 1.4
 * overprovisioning factor, locality weights — over real translated clusters. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "proxy/upstream/cluster.h"
#include "xds/pbjson.h"

static struct sk_stats_store *store;

#define UPSTREAM_TLS "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"

static struct sk_cluster *make(const char *text)
{
	char err[512];
	json_t *j = json_loads(text, 0, NULL);
	ProtobufCMessage *m = j ? sk_pbjson_decode(&envoy__config__cluster__v3__cluster__descriptor, j, NULL,
						   err, sizeof(err)) : NULL;
	struct sk_cluster_config *cc = m ? sk_cluster_config_new((void *)m, err, sizeof(err)) : NULL;
	struct sk_cluster *c = cc ? sk_cluster_new(cc, store, sk_stats_main_shard(store), NULL, NULL, 1, err,
						   sizeof(err)) : NULL;

	if (c == NULL)
		fprintf(stderr, "cluster: %s\n", err);
	json_decref(j);
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	return c;
}

/* Picks n times; counts per last octet of the host address (10.0.0.X). */
static void count(struct sk_cluster *c, int n, int counts[256])
{
	int i;

	memset(counts, 0, 256 * sizeof(int));
	for (i = 0; i < n; i++) {
		struct sk_host *h = sk_cluster_pick(c, 0, 0, false, NULL);

		if (h)
			counts[ntohl(((struct sockaddr_in *)&h->addr.ss)->sin_addr.s_addr) & 0xff]++;
		else
			counts[0]++;
	}
}

#define EP(ip, extra) "{\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"10.0.0." ip \
	"\",\"port_value\":80}}}" extra "}"
#define UNHEALTHY ",\"health_status\":\"UNHEALTHY\""

int main(void)
{
	struct sk_cluster *c;
	int n[256];

	store = sk_stats_store_new(NULL, NULL, 0);

	/* unhealthy and draining hosts are skipped */
	c = make("{\"name\":\"h\",\"load_assignment\":{\"endpoints\":[{\"lb_endpoints\":[" EP("1", UNHEALTHY) ","
		 EP("2", "") "," EP("3", ",\"health_status\":\"DRAINING\"") "]}]}}");
	count(c, 100, n);
	CHECK(n[2] == 100 && n[1] == 0 && n[3] == 0);
	sk_cluster_unref(c);

	/* priority 0 all unhealthy: everything fails over to priority 1 */
	c = make("{\"name\":\"p\",\"load_assignment\":{\"endpoints\":[{\"priority\":0,\"lb_endpoints\":["
		 EP("1", UNHEALTHY) "]},{\"priority\":1,\"lb_endpoints\":[" EP("2", "") "]}]}}");
	count(c, 100, n);
	CHECK(n[2] == 100);
	sk_cluster_unref(c);

	/* priority 0 half healthy: 0.5 * 1.4 = 70% stays, 30% spills to priority 1 */
	c = make("{\"name\":\"s\",\"load_assignment\":{\"endpoints\":[{\"priority\":0,\"lb_endpoints\":["
		 EP("1", UNHEALTHY) "," EP("2", "") "]},{\"priority\":1,\"lb_endpoints\":[" EP("3", "") "]}]}}");
	count(c, 20000, n);
	CHECK(n[2] > 13200 && n[2] < 14800);   /* 70% +- 4% */
	CHECK(n[3] > 5200 && n[3] < 6800);
	sk_cluster_unref(c);

	/* without locality weighting, locality weights are ignored (hosts weigh equally) */
	c = make("{\"name\":\"n\",\"load_assignment\":{\"endpoints\":["
		 "{\"load_balancing_weight\":1,\"lb_endpoints\":[" EP("1", "") "]},"
		 "{\"load_balancing_weight\":3,\"lb_endpoints\":[" EP("2", "") "]}]}}");
	count(c, 1000, n);
	CHECK(n[1] == 500 && n[2] == 500);
	sk_cluster_unref(c);

	/* with it, localities weigh 1:3 */
	c = make("{\"name\":\"l\",\"common_lb_config\":{\"locality_weighted_lb_config\":{}},"
		 "\"load_assignment\":{\"endpoints\":["
		 "{\"locality\":{\"zone\":\"a\"},\"load_balancing_weight\":1,\"lb_endpoints\":[" EP("1", "") "]},"
		 "{\"locality\":{\"zone\":\"b\"},\"load_balancing_weight\":3,\"lb_endpoints\":[" EP("2", "") ","
		 EP("3", "") "]}]}}");
	count(c, 20000, n);
	CHECK(n[1] > 4400 && n[1] < 5600);     /* 25% */
	CHECK(n[2] + n[3] > 14400 && n[2] + n[3] < 15600);
	CHECK(abs(n[2] - n[3]) < 200);           /* round robin inside the locality */
	sk_cluster_unref(c);

	/* a locality's weight scales with its health: zone b at 1/2 healthy -> 3 * 0.7 = 2.1 */
	c = make("{\"name\":\"lh\",\"common_lb_config\":{\"locality_weighted_lb_config\":{}},"
		 "\"load_assignment\":{\"endpoints\":["
		 "{\"load_balancing_weight\":1,\"lb_endpoints\":[" EP("1", "") "]},"
		 "{\"load_balancing_weight\":3,\"lb_endpoints\":[" EP("2", "") "," EP("3", UNHEALTHY) "]}]}}");
	count(c, 31000, n);
	CHECK(n[1] > 9000 && n[1] < 11000);    /* 1 / 3.1 = 32% */
	CHECK(n[3] == 0);
	sk_cluster_unref(c);

	/* no endpoints at all (BlackHoleCluster): nothing to pick */
	c = make("{\"name\":\"BlackHoleCluster\",\"type\":\"STATIC\"}");
	CHECK(c != NULL && sk_cluster_pick(c, 0, 0, false, NULL) == NULL);
	sk_cluster_unref(c);

	/* weights inside a round robin cluster */
	c = make("{\"name\":\"w\",\"load_assignment\":{\"endpoints\":[{\"lb_endpoints\":["
		 EP("1", ",\"load_balancing_weight\":1") "," EP("2", ",\"load_balancing_weight\":3") "]}]}}");
	count(c, 400, n);
	CHECK(n[1] == 100 && n[2] == 300);
	sk_cluster_unref(c);

	/* TLS sockets: one waiting for SDS builds no context (its hosts are refused, never served
	 * in clear); the raw default leaves plain hosts alone; a certificate file that cannot be
	 * read rejects the cluster, naming the socket */
	c = make("{\"name\":\"t\",\"transport_socket_matches\":[{\"name\":\"m\",\"match\":{\"tlsMode\":"
		 "\"istio\"},\"transport_socket\":{\"name\":\"envoy.transport_sockets.tls\",\"typed_config\":"
		 "{\"@type\":\"" UPSTREAM_TLS "\",\"common_tls_context\":{\"tls_certificate_sds_secret_configs\":"
		 "[{\"name\":\"default\"}]}}}}],\"load_assignment\":{\"endpoints\":[{\"lb_endpoints\":["
		 EP("1", ",\"metadata\":{\"filter_metadata\":{\"envoy.transport_socket_match\":{\"tlsMode\":"
			 "\"istio\"}}}") "]}]}}");
	CHECK(c != NULL);
	if (c) {
		struct sk_host *h = sk_cluster_pick(c, 0, 0, false, NULL);

		CHECK(h && h->tls && h->tls_istio && sk_cluster_tls_ctx(c, h) == NULL);
		CHECK(c->tls_ctx[0] == NULL && c->tls_ctx[1] == NULL);
		sk_cluster_unref(c);
	}
	{
		char err[512];
		json_t *j = json_loads("{\"name\":\"f\",\"transport_socket\":{\"name\":\"envoy.transport_sockets.tls\","
				       "\"typed_config\":{\"@type\":\"" UPSTREAM_TLS "\",\"common_tls_context\":"
				       "{\"tls_certificates\":[{\"certificate_chain\":{\"filename\":\"/nonexistent/c.pem\"},"
				       "\"private_key\":{\"filename\":\"/nonexistent/k.pem\"}}]}}}}", 0, NULL);
		ProtobufCMessage *m = j ? sk_pbjson_decode(&envoy__config__cluster__v3__cluster__descriptor, j, NULL,
							   err, sizeof(err)) : NULL;
		struct sk_cluster_config *cc = m ? sk_cluster_config_new((void *)m, err, sizeof(err)) : NULL;

		CHECK(cc != NULL);
		c = cc ? sk_cluster_new(cc, store, sk_stats_main_shard(store), NULL, NULL, 1, err, sizeof(err)) : NULL;
		CHECK(c == NULL);
		CHECK(strstr(err, "cluster 'f': transport_socket: ") == err);
		json_decref(j);
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
	}

	sk_stats_store_free(store);
	return TEST_SUMMARY();
}
