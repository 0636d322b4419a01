/* translate_test: Cluster and Listener protos -> the data plane's structs: defaults, what
 * is honoured, and what is refused with a message naming the place. */
#include <stdlib.h>
#include <string.h>

#include "proxy/network/access_log.h"
#include "test.h"
#include "xds/pbjson.h"
#include "xds/translate/cluster.h"
#include "xds/translate/listener.h"

static char err[1024];

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *d, const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	ProtobufCMessage *m = j ? sk_pbjson_decode(d, j, NULL, err, sizeof(err)) : NULL;

	if (m == NULL)
		fprintf(stderr, "test input: %s\n", j ? err : "bad JSON");
	json_decref(j);
	return m;
}

static struct sk_cluster_config *cluster(const char *text)
{
	ProtobufCMessage *m = decode(&envoy__config__cluster__v3__cluster__descriptor, text);
	struct sk_cluster_config *cc = m ? sk_cluster_config_new((void *)m, err, sizeof(err)) : NULL;

	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	return cc;
}

static struct sk_listener_config *listener(const char *text)
{
	ProtobufCMessage *m = decode(&envoy__config__listener__v3__listener__descriptor, text);
	struct sk_listener_config *lc = m ? sk_listener_config_new((void *)m, err, sizeof(err)) : NULL;

	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	return lc;
}

#define EP(ip, port, extra) \
	"{\"endpoint\":{\"address\":{\"socket_address\":{\"address\":\"" ip "\",\"port_value\":" #port "}}}" extra "}"

static void test_clusters(void)
{
	struct sk_cluster_config *cc;

	cc = cluster("{\"name\":\"a\",\"type\":\"STATIC\",\"load_assignment\":{\"endpoints\":[{\"lb_endpoints\":["
		     EP("10.0.0.1", 80, "") "," EP("10.0.0.2", 80, ",\"load_balancing_weight\":3,"
						   "\"health_status\":\"UNHEALTHY\"") "]}]}}");
	CHECK(cc != NULL);
	if (cc) {
		CHECK(cc->connect_timeout == 5.0);             /* Envoy's default */
		CHECK(cc->buffer_limit == 1024 * 1024);
		CHECK(cc->cb[0].max_connections == 1024 && cc->cb[0].max_retries == 3);
		CHECK(cc->lb.policy == SK_LB_ROUND_ROBIN);
		CHECK(cc->n_localities == 1 && cc->localities[0].n_endpoints == 2);
		CHECK(cc->localities[0].endpoints[1].weight == 3);
		CHECK(cc->localities[0].endpoints[1].health == SK_HEALTH_UNHEALTHY);
		CHECK_STR(cc->stat_name, "a");
		sk_cluster_config_free(cc);
	}

	/* Istio's inbound passthrough: ORIGINAL_DST from 127.0.0.6, alt_stat_name */
	cc = cluster("{\"name\":\"InboundPassthroughCluster\",\"alt_stat_name\":\"InboundPassthroughCluster;\","
		     "\"type\":\"ORIGINAL_DST\",\"lb_policy\":\"CLUSTER_PROVIDED\",\"connect_timeout\":\"10s\","
		     "\"upstream_bind_config\":{\"source_address\":{\"address\":\"127.0.0.6\",\"port_value\":0}},"
		     "\"circuit_breakers\":{\"thresholds\":[{\"max_connections\":4294967295,\"max_retries\":7},"
		     "{\"priority\":\"HIGH\",\"max_connections\":9}]}}");
	CHECK(cc != NULL);
	if (cc) {
		CHECK(cc->type == SK_CLUSTER_ORIGINAL_DST && cc->connect_timeout == 10.0);
		CHECK(cc->has_bind && cc->bind.ss.ss_family == AF_INET);
		CHECK_STR(cc->stat_name, "InboundPassthroughCluster;");
		CHECK(cc->cb[0].max_connections == 4294967295u && cc->cb[0].max_retries == 7);
		CHECK(cc->cb[1].max_connections == 9 && cc->cb[1].max_requests == 1024);
		sk_cluster_config_free(cc);
	}

	/* tlsMode-istio endpoints take the TLS match; others the plaintext default */
	cc = cluster("{\"name\":\"outbound|9080||r\",\"type\":\"EDS\",\"eds_cluster_config\":{\"eds_config\":"
		     "{\"ads\":{}}},\"transport_socket_matches\":["
		     "{\"name\":\"tlsMode-istio\",\"match\":{\"tlsMode\":\"istio\"},\"transport_socket\":{\"name\":"
		     "\"envoy.transport_sockets.tls\",\"typed_config\":{\"@type\":\"type.googleapis.com/envoy."
		     "extensions.transport_sockets.tls.v3.UpstreamTlsContext\",\"sni\":\"x\"}}},"
		     "{\"name\":\"tlsMode-disabled\",\"match\":{},\"transport_socket\":{\"name\":"
		     "\"envoy.transport_sockets.raw_buffer\"}}],"
		     "\"load_assignment\":{\"endpoints\":[{\"lb_endpoints\":["
		     EP("10.1.0.1", 9080, ",\"metadata\":{\"filter_metadata\":{\"envoy.transport_socket_match\":"
					  "{\"tlsMode\":\"istio\"}}}") "," EP("10.1.0.2", 9080, "") "]}]}}");
	CHECK(cc != NULL);
	if (cc) {
		CHECK(cc->localities[0].endpoints[0].tls_mode_istio && cc->localities[0].endpoints[0].tls);
		CHECK(cc->localities[0].endpoints[0].tls_istio);
		CHECK(!cc->localities[0].endpoints[1].tls);
		/* the match's UpstreamTlsContext is kept; raw_buffer translates to none */
		CHECK(cc->tls_istio_ctx != NULL && !cc->tls_istio_ctx->server);
		CHECK(cc->tls_istio_ctx && cc->tls_istio_ctx->sni && strcmp(cc->tls_istio_ctx->sni, "x") == 0);
		CHECK(cc->tls_default_ctx == NULL);
		sk_cluster_config_free(cc);
	}

	/* a TLS context skiff cannot honour rejects the cluster, naming the field */
	cc = cluster("{\"name\":\"t\",\"transport_socket_matches\":[{\"name\":\"m\",\"match\":{\"tlsMode\":"
		     "\"istio\"},\"transport_socket\":{\"name\":\"envoy.transport_sockets.tls\",\"typed_config\":"
		     "{\"@type\":\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\","
		     "\"common_tls_context\":{\"tls_params\":{\"tls_minimum_protocol_version\":\"TLSv1_0\"}}}}}]}");
	CHECK(cc == NULL);
	CHECK(strstr(err, "cluster 't': transport_socket_matches[0].transport_socket: ") == err);
	sk_cluster_config_free(cc);
	cc = cluster("{\"name\":\"d\",\"transport_socket\":{\"name\":\"envoy.transport_sockets.tls\","
		     "\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
		     "DownstreamTlsContext\"}}}");
	CHECK(cc == NULL);
	CHECK(strstr(err, "cluster 'd': transport_socket: ") == err);
	sk_cluster_config_free(cc);
	cc = cluster("{\"name\":\"u\",\"transport_socket\":{\"name\":\"envoy.transport_sockets.tls\","
		     "\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
		     "UpstreamTlsContext\",\"sni\":\"s\"}}}");
	CHECK(cc && cc->tls_default && cc->tls_default_ctx && cc->tls_istio_ctx == NULL);
	sk_cluster_config_free(cc);

	/* LB policies, including Istio's typed load_balancing_policy with override_host */
	cc = cluster("{\"name\":\"m\",\"lb_policy\":\"MAGLEV\",\"maglev_lb_config\":{\"table_size\":\"17\"}}");
	CHECK(cc && cc->lb.policy == SK_LB_MAGLEV && cc->lb.maglev_table_size == 17);
	sk_cluster_config_free(cc);
	cc = cluster("{\"name\":\"lr\",\"lb_policy\":\"LOAD_BALANCING_POLICY_CONFIG\",\"load_balancing_policy\":"
		     "{\"policies\":[{\"typed_extension_config\":{\"name\":\"x\",\"typed_config\":{\"@type\":"
		     "\"type.googleapis.com/envoy.extensions.load_balancing_policies.override_host.v3."
		     "OverrideHost\",\"fallback_policy\":{\"policies\":[{\"typed_extension_config\":{\"name\":"
		     "\"y\",\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions."
		     "load_balancing_policies.round_robin.v3.RoundRobin\"}}}]}}}}]}}");
	CHECK(cc && cc->lb.policy == SK_LB_ROUND_ROBIN);
	sk_cluster_config_free(cc);
	cc = cluster("{\"name\":\"rh\",\"lb_policy\":\"RING_HASH\",\"ring_hash_lb_config\":{\"minimum_ring_size\":"
		     "\"100\",\"maximum_ring_size\":\"10\"}}");
	CHECK(cc == NULL);
	CHECK_CONTAINS(err, "cluster 'rh': ring_hash_lb_config: minimum_ring_size (100) > maximum_ring_size (10)");

	/* refused, with the place named */
	CHECK(cluster("{\"name\":\"agg\",\"cluster_type\":{\"name\":\"envoy.clusters.aggregate\"}}") == NULL);
	CHECK_CONTAINS(err, "cluster 'agg': custom cluster type 'envoy.clusters.aggregate' is not supported");
	CHECK(cluster("{\"name\":\"h\",\"type\":\"STATIC\",\"load_assignment\":{\"endpoints\":[{\"lb_endpoints\":["
		      EP("backend.local", 80, "") "]}]}}") == NULL);
	CHECK_CONTAINS(err, "cluster 'h': load_assignment.endpoints[0].lb_endpoints[0].endpoint.address: "
			    "'backend.local' is not an IP address");
	CHECK(cluster("{\"name\":\"w\",\"load_assignment\":{\"endpoints\":[{\"lb_endpoints\":["
		      EP("10.0.0.1", 80, ",\"load_balancing_weight\":0") "]}]}}") == NULL);
	CHECK_CONTAINS(err, "load_balancing_weight: must be at least 1");

	/* DNS clusters keep the names to resolve */
	cc = cluster("{\"name\":\"d\",\"type\":\"STRICT_DNS\",\"dns_lookup_family\":\"V4_ONLY\",\"dns_refresh_rate\":"
		     "\"30s\",\"load_assignment\":{\"endpoints\":[{\"lb_endpoints\":[" EP("zipkin", 9411, "") "]}]}}");
	CHECK(cc && cc->type == SK_CLUSTER_STRICT_DNS && cc->dns_refresh_rate == 30.0);
	CHECK(cc && cc->dns_family == SK_DNS_FAMILY_V4_ONLY);
	CHECK(cc && strcmp(cc->localities[0].endpoints[0].hostname, "zipkin") == 0 &&
	      cc->localities[0].endpoints[0].port == 9411);
	sk_cluster_config_free(cc);
}

#define TCP_PROXY(extra)                                                                       \
	"{\"name\":\"envoy.filters.network.tcp_proxy\",\"typed_config\":{\"@type\":\"type.googleapis.com/" \
	"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\",\"stat_prefix\":\"s\"" extra "}}"

static void test_listeners(void)
{
	struct sk_listener_config *lc;

	lc = listener("{\"name\":\"virtualOutbound\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\","
		      "\"port_value\":15001}},\"use_original_dst\":true,\"traffic_direction\":\"OUTBOUND\","
		      "\"listener_filters\":[{\"name\":\"envoy.filters.listener.original_dst\",\"typed_config\":"
		      "{\"@type\":\"type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3."
		      "OriginalDst\"}}],\"filter_chains\":[{\"filters\":[{\"name\":\"istio.stats\","
		      "\"typed_config\":{\"@type\":\"type.googleapis.com/stats.PluginConfig\"}},"
		      TCP_PROXY(",\"cluster\":\"PassthroughCluster\"") "]}]}");
	CHECK(lc != NULL);
	if (lc) {
		CHECK_STR(lc->stat_name, "0.0.0.0_15001");
		CHECK(lc->use_original_dst && lc->original_dst && lc->bind_to_port);
		CHECK(lc->direction == SK_DIR_OUTBOUND);
		CHECK(lc->filters_timeout == 15.0 && !lc->continue_on_timeout);
		CHECK(lc->n_chains == 1 && lc->chains[0].tcp_proxy && lc->chains[0].observe_only == 1);
		CHECK_STR(lc->chains[0].tcp.cluster, "PassthroughCluster");
		CHECK(lc->chains[0].tcp.idle_timeout == 3600.0);      /* 1 h default */
		CHECK(lc->chains[0].tcp.max_connect_attempts == 1);
		CHECK(lc->served);
		sk_listener_config_free(lc);
	}

	/* a chain keeps its DownstreamTlsContext; an UpstreamTlsContext there is refused */
	lc = listener("{\"name\":\"in\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\","
		      "\"port_value\":15006}},\"filter_chains\":[{\"transport_socket\":{\"name\":"
		      "\"envoy.transport_sockets.tls\",\"typed_config\":{\"@type\":\"type.googleapis.com/envoy."
		      "extensions.transport_sockets.tls.v3.DownstreamTlsContext\",\"require_client_certificate\":"
		      "true,\"common_tls_context\":{\"tls_certificate_sds_secret_configs\":[{\"name\":\"default\"}]}}},\"filters\":[" TCP_PROXY(",\"cluster\":\"c\"") "]},{\"transport_socket\":{\"name\":"
		      "\"envoy.transport_sockets.raw_buffer\"},\"filter_chain_match\":{\"destination_port\":1},"
		      "\"filters\":[" TCP_PROXY(",\"cluster\":\"c\"") "]}]}");
	CHECK(lc != NULL);
	if (lc) {
		CHECK(lc->chains[0].tls && lc->chains[0].tls_ctx && lc->chains[0].tls_ctx->server);
		CHECK(lc->chains[0].tls_ctx && lc->chains[0].tls_ctx->require_client_certificate);
		CHECK(!lc->chains[1].tls && lc->chains[1].tls_ctx == NULL);
		sk_listener_config_free(lc);
	}
	lc = listener("{\"name\":\"bad\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\","
		      "\"port_value\":15006}},\"filter_chains\":[{\"transport_socket\":{\"name\":"
		      "\"envoy.transport_sockets.tls\",\"typed_config\":{\"@type\":\"type.googleapis.com/envoy."
		      "extensions.transport_sockets.tls.v3.UpstreamTlsContext\"}},\"filters\":["
		      TCP_PROXY(",\"cluster\":\"c\"") "]}]}");
	CHECK(lc == NULL);
	CHECK(strstr(err, "filter_chains[0].transport_socket: ") != NULL);
	sk_listener_config_free(lc);

	lc = listener("{\"name\":\"w\",\"address\":{\"socket_address\":{\"address\":\"::\",\"port_value\":8080}},"
		      "\"bind_to_port\":false,\"filter_chains\":[{\"filters\":[" TCP_PROXY(",\"idle_timeout\":\"0s\","
		      "\"max_connect_attempts\":3,\"weighted_clusters\":{\"clusters\":[{\"name\":\"v1\",\"weight\":"
		      "95},{\"name\":\"v2\",\"weight\":5}]},\"access_log\":[{\"name\":\"f\",\"typed_config\":"
		      "{\"@type\":\"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\","
		      "\"path\":\"/dev/stdout\",\"log_format\":{\"text_format\":\"%UPSTREAM_HOST%\\n\"}}}]") "]}]}");
	CHECK(lc != NULL);
	if (lc) {
		CHECK_STR(lc->stat_name, "[::]_8080");
		CHECK(!lc->bind_to_port);
		CHECK(lc->chains[0].tcp.n_weighted == 2 && lc->chains[0].tcp.total_weight == 100);
		CHECK(lc->chains[0].tcp.idle_timeout == 0 && lc->chains[0].tcp.max_connect_attempts == 3);
		CHECK(lc->chains[0].tcp.n_access_logs == 1);
		CHECK_STR(lc->chains[0].tcp.access_logs[0].format->text, "%UPSTREAM_HOST%\n");
		sk_listener_config_free(lc);
	}

	/* an HTTP listener: the HCM is translated and kept on the chain, and it is served */
	lc = listener("{\"name\":\"h\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":"
		      "15021}},\"filter_chains\":[{\"filters\":[{\"name\":\"hcm\",\"typed_config\":{\"@type\":"
		      "\"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
		      "HttpConnectionManager\",\"stat_prefix\":\"agent\",\"route_config\":{\"virtual_hosts\":[{"
		      "\"name\":\"b\",\"domains\":[\"*\"],\"routes\":[{\"match\":{\"prefix\":\"/healthz/ready\"},"
		      "\"route\":{\"cluster\":\"agent\"}}]}]},\"http_filters\":[{\"name\":\"envoy.filters.http.router\","
		      "\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\"}}]}}]}]}");
	CHECK(lc && lc->chains[0].http && lc->chains[0].hcm != NULL && lc->served);
	sk_listener_config_free(lc);
	/* an HCM skiff cannot honour makes the listener fail, naming the filter */
	CHECK(listener("{\"name\":\"h\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":"
		       "1}},\"filter_chains\":[{\"filters\":[{\"name\":\"hcm\",\"typed_config\":{\"@type\":"
		       "\"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
		       "HttpConnectionManager\",\"stat_prefix\":\"x\",\"rds\":{\"route_config_name\":\"80\"}}}]}]}") == NULL);
	CHECK_CONTAINS(err, "listener 'h': filter_chains[0].filters[0] (hcm): rds ('80').config_source: only ads is "
		       "supported");

	/* refused: security filters skiff cannot enforce, unknown listener filters, bad weights */
	CHECK(listener("{\"name\":\"r\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":1}},"
		       "\"filter_chains\":[{\"filters\":[{\"name\":\"envoy.filters.network.rbac\",\"typed_config\":"
		       "{\"@type\":\"type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC\","
		       "\"stat_prefix\":\"x\"}}," TCP_PROXY(",\"cluster\":\"c\"") "]}]}") == NULL);
	CHECK_CONTAINS(err, "listener 'r': filter_chains[0].filters[0] (envoy.filters.network.rbac): network "
			    "filter 'envoy.extensions.filters.network.rbac.v3.RBAC' is not supported");
	CHECK(listener("{\"name\":\"p\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":1}},"
		       "\"listener_filters\":[{\"name\":\"pp\",\"typed_config\":{\"@type\":\"type.googleapis.com/"
		       "envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol\"}}],"
		       "\"filter_chains\":[{\"filters\":[" TCP_PROXY(",\"cluster\":\"c\"") "]}]}") == NULL);
	CHECK_CONTAINS(err, "listener 'p': listener_filters[0] (pp): 'envoy.extensions.filters.listener."
			    "proxy_protocol.v3.ProxyProtocol' is not supported");
	CHECK(listener("{\"name\":\"z\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":1}},"
		       "\"filter_chains\":[{\"filters\":[" TCP_PROXY(",\"weighted_clusters\":{\"clusters\":"
		       "[{\"name\":\"a\",\"weight\":0}]}") "]}]}") == NULL);
	CHECK_CONTAINS(err, "filter_chains[0].filters[0].weighted_clusters: the weights sum to 0");
	CHECK(listener("{\"name\":\"t\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":1}},"
		       "\"filter_chains\":[{\"filters\":[" TCP_PROXY(",\"cluster\":\"c\"") "," TCP_PROXY(",\"cluster\":"
		       "\"c\"") "]}]}") == NULL);
	CHECK_CONTAINS(err, "filter_chains[0].filters[0]: tcp_proxy must be the last filter");
	CHECK(listener("{\"name\":\"e\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":1}}}") == NULL);
	CHECK_CONTAINS(err, "listener 'e': no filter chains");
	CHECK(listener("{\"name\":\"n\",\"address\":{\"socket_address\":{\"address\":\"localhost\",\"port_value\":1}},"
		       "\"filter_chains\":[{\"filters\":[" TCP_PROXY(",\"cluster\":\"c\"") "]}]}") == NULL);
	CHECK_CONTAINS(err, "listener 'n': address: 'localhost' is not an IP address");
}

int main(void)
{
	test_clusters();
	test_listeners();
	return TEST_SUMMARY();
}
