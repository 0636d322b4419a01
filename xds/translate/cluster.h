/* cluster: an Envoy v3 Cluster (protobuf) -> struct sk_cluster_config, validated, plain C.
 * The config is immutable once built and owned by whoever holds it (sk_cluster_config_free). */
#ifndef SKIFF_XDS_TRANSLATE_CLUSTER_H
#define SKIFF_XDS_TRANSLATE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/upstream/lb.h"
#include "skiff_protos.h"
#include "xds/translate/address.h"
#include "xds/translate/hcm.h"
#include "xds/translate/tls.h"

enum sk_cluster_type {
	SK_CLUSTER_STATIC,
	SK_CLUSTER_STRICT_DNS,
	SK_CLUSTER_LOGICAL_DNS,
	SK_CLUSTER_EDS,
	SK_CLUSTER_ORIGINAL_DST,
};

enum sk_health {
	SK_HEALTH_UNKNOWN,   /* counts as healthy, as in Envoy */
	SK_HEALTH_HEALTHY,
	SK_HEALTH_UNHEALTHY,
	SK_HEALTH_DRAINING,
	SK_HEALTH_TIMEOUT,
	SK_HEALTH_DEGRADED,
};

/* One lb_endpoint. For DNS clusters `hostname` is what gets resolved and addr is unset. */
struct sk_endpoint_config {
	struct sk_addr addr;
	char *hostname;              /* DNS clusters: the name; NULL otherwise */
	uint16_t port;
	uint32_t weight;             /* load_balancing_weight, default 1 */
	enum sk_health health;
	bool tls_mode_istio;         /* metadata envoy.transport_socket_match.tlsMode == "istio" */
	bool tls;                    /* its transport socket (match or cluster default) is TLS */
	bool tls_istio;              /* ... and it is the tlsMode-istio match's (else the default's) */
};

struct sk_locality_config {
	char *region, *zone, *sub_zone;
	uint32_t weight;             /* 0 = not set */
	uint32_t priority;
	size_t n_endpoints;
	struct sk_endpoint_config *endpoints;
};

/* Thresholds per RoutingPriority (0 DEFAULT, 1 HIGH), Envoy's defaults when unset. */
struct sk_circuit_breakers {
	uint32_t max_connections, max_pending_requests, max_requests, max_retries;
};

struct sk_cluster_config {
	char *name;
	char *stat_name;             /* alt_stat_name, else name */
	enum sk_cluster_type type;
	char *eds_service_name;      /* EDS: eds_cluster_config.service_name, else the name */
	double eds_initial_fetch_timeout; /* EDS: seconds its endpoints may take (0: forever) */
	double connect_timeout;      /* seconds, default 5 */
	uint32_t buffer_limit;       /* per_connection_buffer_limit_bytes, default 1 MiB */
	struct sk_lb_config lb;
	struct sk_circuit_breakers cb[2];
	bool has_bind;
	struct sk_addr bind;         /* upstream_bind_config.source_address (port 0 = any) */
	double dns_refresh_rate;     /* seconds, default 5 */
	enum { SK_DNS_FAMILY_AUTO, SK_DNS_FAMILY_V4_ONLY, SK_DNS_FAMILY_V6_ONLY,
	       SK_DNS_FAMILY_V4_PREFERRED, SK_DNS_FAMILY_ALL } dns_family;
	bool respect_dns_ttl;
	bool locality_weighted;      /* common_lb_config.locality_weighted_lb_config */
	size_t n_localities;
	struct sk_locality_config *localities;
	bool tls_default;            /* the cluster's transport_socket is TLS */
	bool has_istio_match;        /* a transport_socket_match on tlsMode=istio exists ... */
	bool tls_match_istio;        /* ... and selects TLS */
	struct sk_tls_context_config *tls_default_ctx; /* UpstreamTlsContext of transport_socket */
	struct sk_tls_context_config *tls_istio_ctx;   /* ... of the tlsMode-istio match (owned) */
	/* the upstream HTTP protocol (typed_extension_protocol_options
	 * envoy.extensions.upstreams.http.v3.HttpProtocolOptions, or the cluster's deprecated
	 * http2_protocol_options): HTTP/1.1 unless told; DOWNSTREAM follows the request's */
	enum { SK_UPSTREAM_HTTP1, SK_UPSTREAM_HTTP2, SK_UPSTREAM_DOWNSTREAM } http_protocol;
	struct sk_h2_options h2;
};

/* Translates c. Returns NULL with err ("cluster 'x': ...") when it cannot be honoured. */
struct sk_cluster_config *sk_cluster_config_new(const Envoy__Config__Cluster__V3__Cluster *c, char *err,
						size_t errlen);
void sk_cluster_config_free(struct sk_cluster_config *cc);

/* Translates a ClusterLoadAssignment's endpoints for a cluster of config cc (which decides
 * DNS names vs addresses and which endpoints are TLS). *out is NULL with no endpoints.
 * -EINVAL with err ("endpoints[0].lb_endpoints[2].endpoint.address: ..."). */
void sk_localities_free(struct sk_locality_config *locs, size_t n);
int sk_endpoints_translate(const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la,
			   const struct sk_cluster_config *cc, struct sk_locality_config **out, size_t *n_out,
			   char *err, size_t errlen);

#endif
