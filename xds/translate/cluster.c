/* cluster: Cluster proto -> struct sk_cluster_config. Everything the data plane needs is
 * copied out; the proto can be freed afterwards. */
#include "xds/pbjson.h"
#include "xds/translate/cluster.h"
#include "xds/translate/listener.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONNECT_TIMEOUT 5.0
#define DEFAULT_BUFFER_LIMIT (1024 * 1024)
#define DEFAULT_DNS_REFRESH 5.0

typedef Envoy__Config__Cluster__V3__Cluster cluster_pb;

static int cfail(char *err, size_t errlen, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int cfail(char *err, size_t errlen, const char *name, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "cluster '%s': %s", name, what);
	return -EINVAL;
}

/* The value of filter_metadata[ns].key when it is a string, else NULL. */
static const char *metadata_string(const Envoy__Config__Core__V3__Metadata *md, const char *ns,
				   const char *key)
{
	size_t i, k;

	for (i = 0; md && i < md->n_filter_metadata; i++) {
		const Google__Protobuf__Struct *st = md->filter_metadata[i]->value;

		if (strcmp(md->filter_metadata[i]->key, ns) != 0 || st == NULL)
			continue;
		for (k = 0; k < st->n_fields; k++) {
			const Google__Protobuf__Value *v = st->fields[k]->value;

			if (strcmp(st->fields[k]->key, key) == 0 && v &&
			    v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
				return v->string_value;
		}
	}
	return NULL;
}

static const char *type_name(const Google__Protobuf__Any *any)
{
	const char *slash = any && any->type_url ? strrchr(any->type_url, '/') : NULL;

	return slash ? slash + 1 : "";
}

/* load_balancing_policy: the first policy skiff knows, as Envoy takes the first it
 * supports. override_host (Istio) is a wrapper whose fallback is the real policy. */
static int lb_from_policy(const Envoy__Config__Cluster__V3__LoadBalancingPolicy *p, struct sk_lb_config *lb,
			  const char *name, char *err, size_t errlen)
{
	static const struct {
		const char *type;
		enum sk_lb_policy policy;
	} known[] = {
		{"envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin", SK_LB_ROUND_ROBIN},
		{"envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest", SK_LB_LEAST_REQUEST},
		{"envoy.extensions.load_balancing_policies.random.v3.Random", SK_LB_RANDOM},
		{"envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash", SK_LB_RING_HASH},
		{"envoy.extensions.load_balancing_policies.maglev.v3.Maglev", SK_LB_MAGLEV},
	};
	size_t i, k;

	for (i = 0; p && i < p->n_policies; i++) {
		const Envoy__Config__Core__V3__TypedExtensionConfig *tc = p->policies[i]->typed_extension_config;
		const char *t = tc ? type_name(tc->typed_config) : "";

		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
			if (strcmp(t, known[k].type) == 0) {
				lb->policy = known[k].policy;
				return 0;
			}
		}
		if (strcmp(t, "envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost") == 0 &&
		    tc->typed_config) {
			Envoy__Extensions__LoadBalancingPolicies__OverrideHost__V3__OverrideHost *oh =
				(void *)protobuf_c_message_unpack(
					&envoy__extensions__load_balancing_policies__override_host__v3__override_host__descriptor,
					NULL, tc->typed_config->value.len, tc->typed_config->value.data);
			int rc;

			if (oh == NULL)
				return cfail(err, errlen, name, "load_balancing_policy: invalid OverrideHost");
			rc = lb_from_policy(oh->fallback_policy, lb, name, err, errlen);
			protobuf_c_message_free_unpacked(&oh->base, NULL);
			return rc;
		}
	}
	return cfail(err, errlen, name, "load_balancing_policy: no supported policy");
}

static int translate_lb(const cluster_pb *c, struct sk_lb_config *lb, char *err, size_t errlen)
{
	lb->choice_count = 2;
	lb->ring_min_size = 1024;
	lb->ring_max_size = 8 * 1024 * 1024;
	lb->maglev_table_size = 65537;
	switch (c->lb_policy) {
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__ROUND_ROBIN:
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__CLUSTER_PROVIDED:
		lb->policy = SK_LB_ROUND_ROBIN;
		break;
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST:
		lb->policy = SK_LB_LEAST_REQUEST;
		break;
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH:
		lb->policy = SK_LB_RING_HASH;
		break;
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RANDOM:
		lb->policy = SK_LB_RANDOM;
		break;
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__MAGLEV:
		lb->policy = SK_LB_MAGLEV;
		break;
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LOAD_BALANCING_POLICY_CONFIG:
		if (lb_from_policy(c->load_balancing_policy, lb, c->name, err, errlen) < 0)
			return -EINVAL;
		break;
	default:
		return cfail(err, errlen, c->name, "lb_policy %d is not supported", (int)c->lb_policy);
	}
	if (c->lb_config_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_RING_HASH_LB_CONFIG &&
	    c->ring_hash_lb_config) {
		if (c->ring_hash_lb_config->minimum_ring_size)
			lb->ring_min_size = c->ring_hash_lb_config->minimum_ring_size->value;
		if (c->ring_hash_lb_config->maximum_ring_size)
			lb->ring_max_size = c->ring_hash_lb_config->maximum_ring_size->value;
	} else if (c->lb_config_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_MAGLEV_LB_CONFIG &&
		   c->maglev_lb_config && c->maglev_lb_config->table_size) {
		lb->maglev_table_size = c->maglev_lb_config->table_size->value;
	} else if (c->lb_config_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_CONFIG_LEAST_REQUEST_LB_CONFIG &&
		   c->least_request_lb_config && c->least_request_lb_config->choice_count) {
		lb->choice_count = c->least_request_lb_config->choice_count->value;
	}
	if (lb->ring_min_size > lb->ring_max_size)
		return cfail(err, errlen, c->name, "ring_hash_lb_config: minimum_ring_size (%llu) > "
			     "maximum_ring_size (%llu)", (unsigned long long)lb->ring_min_size,
			     (unsigned long long)lb->ring_max_size);
	if (lb->choice_count < 2)
		return cfail(err, errlen, c->name, "least_request_lb_config.choice_count must be >= 2");
	return 0;
}

static void translate_breakers(const cluster_pb *c, struct sk_circuit_breakers cb[2])
{
	size_t i;

	for (i = 0; i < 2; i++)
		cb[i] = (struct sk_circuit_breakers){1024, 1024, 1024, 3};
	for (i = 0; c->circuit_breakers && i < c->circuit_breakers->n_thresholds; i++) {
		const Envoy__Config__Cluster__V3__CircuitBreakers__Thresholds *t = c->circuit_breakers->thresholds[i];
		struct sk_circuit_breakers *b;

		if ((unsigned)t->priority > 1)
			continue;
		b = &cb[t->priority];
		if (t->max_connections)
			b->max_connections = t->max_connections->value;
		if (t->max_pending_requests)
			b->max_pending_requests = t->max_pending_requests->value;
		if (t->max_requests)
			b->max_requests = t->max_requests->value;
		if (t->max_retries)
			b->max_retries = t->max_retries->value;
	}
}

static enum sk_health health_of(Envoy__Config__Core__V3__HealthStatus h)
{
	switch (h) {
	case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__HEALTHY:
		return SK_HEALTH_HEALTHY;
	case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__UNHEALTHY:
		return SK_HEALTH_UNHEALTHY;
	case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DRAINING:
		return SK_HEALTH_DRAINING;
	case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__TIMEOUT:
		return SK_HEALTH_TIMEOUT;
	case ENVOY__CONFIG__CORE__V3__HEALTH_STATUS__DEGRADED:
		return SK_HEALTH_DEGRADED;
	default:
		return SK_HEALTH_UNKNOWN;
	}
}

static bool is_tls_socket(const Envoy__Config__Core__V3__TransportSocket *ts)
{
	return ts && ts->name && *ts->name && strcmp(ts->name, "envoy.transport_sockets.raw_buffer") != 0;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

void sk_localities_free(struct sk_locality_config *locs, size_t n)
{
	for (size_t l = 0; l < n; l++) {
		for (size_t e = 0; e < locs[l].n_endpoints; e++)
			free(locs[l].endpoints[e].hostname);
		free(locs[l].endpoints);
		free(locs[l].region);
		free(locs[l].zone);
		free(locs[l].sub_zone);
	}
	free(locs);
}

static int efail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int efail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int sk_endpoints_translate(const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la,
			   const struct sk_cluster_config *cc, struct sk_locality_config **out, size_t *n_out,
			   char *err, size_t errlen)
{
	bool dns = cc->type == SK_CLUSTER_STRICT_DNS || cc->type == SK_CLUSTER_LOGICAL_DNS;
	struct sk_locality_config *locs;
	size_t l, e;

	*out = NULL;
	*n_out = 0;
	if (la == NULL || la->n_endpoints == 0)
		return 0;
	locs = calloc(la->n_endpoints, sizeof(*locs));
	if (locs == NULL)
		return efail(err, errlen, "out of memory");
	for (l = 0; l < la->n_endpoints; l++) {
		const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle = la->endpoints[l];
		struct sk_locality_config *loc = &locs[l];

		loc->priority = lle->priority;
		loc->weight = lle->load_balancing_weight ? lle->load_balancing_weight->value : 0;
		if (lle->locality) {
			loc->region = dup_or_null(lle->locality->region);
			loc->zone = dup_or_null(lle->locality->zone);
			loc->sub_zone = dup_or_null(lle->locality->sub_zone);
		}
		loc->endpoints = calloc(lle->n_lb_endpoints ? lle->n_lb_endpoints : 1, sizeof(*loc->endpoints));
		if (loc->endpoints == NULL) {
			sk_localities_free(locs, l + 1);
			return efail(err, errlen, "out of memory");
		}
		for (e = 0; e < lle->n_lb_endpoints; e++) {
			const Envoy__Config__Endpoint__V3__LbEndpoint *lbe = lle->lb_endpoints[e];
			struct sk_endpoint_config *ep = &loc->endpoints[loc->n_endpoints];
			const Envoy__Config__Core__V3__Address *a;
			const char *mode;
			char why[256];
			int rc = 0;

			if (lbe->host_identifier_case != ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT ||
			    lbe->endpoint == NULL || lbe->endpoint->address == NULL) {
				rc = efail(err, errlen, "endpoints[%zu].lb_endpoints[%zu]: no endpoint address", l, e);
				goto fail;
			}
			a = lbe->endpoint->address;
			ep->weight = lbe->load_balancing_weight ? lbe->load_balancing_weight->value : 1;
			if (ep->weight == 0) {
				rc = efail(err, errlen, "endpoints[%zu].lb_endpoints[%zu].load_balancing_weight: must be "
					   "at least 1", l, e);
				goto fail;
			}
			ep->health = health_of(lbe->health_status);
			mode = metadata_string(lbe->metadata, "envoy.transport_socket_match", "tlsMode");
			if (mode == NULL)
				mode = metadata_string(lle->metadata, "envoy.transport_socket_match", "tlsMode");
			ep->tls_mode_istio = mode && strcmp(mode, "istio") == 0;
			ep->tls_istio = ep->tls_mode_istio && cc->has_istio_match;
			ep->tls = ep->tls_istio ? cc->tls_match_istio : cc->tls_default;
			if (dns) {
				if (a->address_case != ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS) {
					rc = efail(err, errlen, "endpoints[%zu].lb_endpoints[%zu]: DNS clusters need socket "
						   "addresses", l, e);
					goto fail;
				}
				ep->hostname = strdup(a->socket_address->address);
				ep->port = (uint16_t)a->socket_address->port_value;
			} else if (sk_addr_from_pb(a, &ep->addr, why, sizeof(why)) < 0) {
				rc = efail(err, errlen, "endpoints[%zu].lb_endpoints[%zu].endpoint.address: %s", l, e, why);
				goto fail;
			}
			loc->n_endpoints++;
			continue;
fail:
			sk_localities_free(locs, l + 1);
			return rc;
		}
	}
	*out = locs;
	*n_out = la->n_endpoints;
	return 0;
}

static int translate_endpoints(const cluster_pb *c, struct sk_cluster_config *cc, char *err, size_t errlen)
{
	char why[512];

	if (sk_endpoints_translate(c->load_assignment, cc, &cc->localities, &cc->n_localities, why, sizeof(why)) < 0)
		return cfail(err, errlen, c->name, "load_assignment.%s", why);
	return 0;
}

#define HTTP_OPTIONS "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
typedef Envoy__Extensions__Upstreams__Http__V3__HttpProtocolOptions http_options_pb;
#define EXPLICIT(x) ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__EXPLICIT_HTTP_CONFIG__##x

/* Which HTTP version to speak upstream, and its HTTP/2 settings. auto_config picks by ALPN,
 * which needs TLS: on cleartext it is HTTP/1.1, as Envoy does. */
static int translate_protocol(const cluster_pb *c, struct sk_cluster_config *cc, char *err, size_t errlen)
{
	const Envoy__Config__Core__V3__Http2ProtocolOptions *h2 = c->http2_protocol_options;
	char why[300];

	cc->http_protocol = h2 ? SK_UPSTREAM_HTTP2 : SK_UPSTREAM_HTTP1;
	for (size_t i = 0; i < c->n_typed_extension_protocol_options; i++) {
		const Google__Protobuf__Any *any = c->typed_extension_protocol_options[i]->value;
		char type[256];
		http_options_pb *o;

		if (any == NULL)
			continue;
		sk_typed_config_name(any, type, sizeof(type));
		if (strcmp(type, HTTP_OPTIONS) != 0)
			continue; /* other protocol options (tcp_proxy's, ...) are not about HTTP */
		o = (void *)protobuf_c_message_unpack(&envoy__extensions__upstreams__http__v3__http_protocol_options__descriptor,
						      NULL, any->value.len, any->value.data);
		if (o == NULL) {
			cfail(err, errlen, c->name, "typed_extension_protocol_options: invalid HttpProtocolOptions");
			return -1;
		}
		switch (o->upstream_protocol_options_case) {
		case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_EXPLICIT_HTTP_CONFIG:
			switch (o->explicit_http_config->protocol_config_case) {
			case EXPLICIT(PROTOCOL_CONFIG_HTTP3_PROTOCOL_OPTIONS):
				protobuf_c_message_free_unpacked(&o->base, NULL);
				cfail(err, errlen, c->name, "explicit_http_config: HTTP/3 is not supported");
				return -1;
			case EXPLICIT(PROTOCOL_CONFIG_HTTP2_PROTOCOL_OPTIONS):
				h2 = o->explicit_http_config->http2_protocol_options;
				cc->http_protocol = SK_UPSTREAM_HTTP2;
				break;
			default:
				h2 = NULL;
				cc->http_protocol = SK_UPSTREAM_HTTP1;
				break;
			}
			break;
		case ENVOY__EXTENSIONS__UPSTREAMS__HTTP__V3__HTTP_PROTOCOL_OPTIONS__UPSTREAM_PROTOCOL_OPTIONS_USE_DOWNSTREAM_PROTOCOL_CONFIG:
			h2 = o->use_downstream_protocol_config->http2_protocol_options;
			cc->http_protocol = SK_UPSTREAM_DOWNSTREAM;
			break;
		default:
			cc->http_protocol = SK_UPSTREAM_HTTP1;
			break;
		}
		if (sk_h2_options_from_pb(&cc->h2, h2, "http2_protocol_options", why, sizeof(why)) < 0) {
			protobuf_c_message_free_unpacked(&o->base, NULL);
			cfail(err, errlen, c->name, "%s", why);
			return -1;
		}
		protobuf_c_message_free_unpacked(&o->base, NULL);
		return 0;
	}
	if (sk_h2_options_from_pb(&cc->h2, h2, "http2_protocol_options", why, sizeof(why)) < 0) {
		cfail(err, errlen, c->name, "%s", why);
		return -1;
	}
	return 0;
}

struct sk_cluster_config *sk_cluster_config_new(const cluster_pb *c, char *err, size_t errlen)
{
	struct sk_cluster_config *cc = calloc(1, sizeof(*cc));

	if (cc == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	cc->name = strdup(c->name);
	cc->stat_name = strdup(c->alt_stat_name && c->alt_stat_name[0] ? c->alt_stat_name : c->name);
	if (c->cluster_discovery_type_case == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_CLUSTER_TYPE) {
		cfail(err, errlen, c->name, "custom cluster type '%s' is not supported",
		      c->cluster_type ? c->cluster_type->name : "?");
		goto fail;
	}
	switch (c->type) {
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC:
		cc->type = SK_CLUSTER_STATIC;
		break;
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS:
		cc->type = SK_CLUSTER_STRICT_DNS;
		break;
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS:
		cc->type = SK_CLUSTER_LOGICAL_DNS;
		break;
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS: {
		const Envoy__Config__Cluster__V3__Cluster__EdsClusterConfig *eds = c->eds_cluster_config;
		const Envoy__Config__Core__V3__ConfigSource *src = eds ? eds->eds_config : NULL;

		cc->type = SK_CLUSTER_EDS;
		if (src == NULL || src->config_source_specifier_case !=
					   ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS) {
			cfail(err, errlen, c->name, "eds_cluster_config.eds_config: only ads is supported");
			goto fail;
		}
		cc->eds_service_name = strdup(eds->service_name && eds->service_name[0] ? eds->service_name : c->name);
		cc->eds_initial_fetch_timeout = sk_duration_seconds(src->initial_fetch_timeout, 15.0);
		break;
	}
	case ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST:
		cc->type = SK_CLUSTER_ORIGINAL_DST;
		break;
	default:
		cfail(err, errlen, c->name, "unknown cluster type %d", (int)c->type);
		goto fail;
	}
	cc->connect_timeout = sk_duration_seconds(c->connect_timeout, DEFAULT_CONNECT_TIMEOUT);
	cc->buffer_limit = c->per_connection_buffer_limit_bytes ? c->per_connection_buffer_limit_bytes->value
								 : DEFAULT_BUFFER_LIMIT;
	cc->dns_refresh_rate = sk_duration_seconds(c->dns_refresh_rate, DEFAULT_DNS_REFRESH);
	cc->respect_dns_ttl = c->respect_dns_ttl;
	cc->dns_family = (int)c->dns_lookup_family;
	if (translate_lb(c, &cc->lb, err, errlen) < 0)
		goto fail;
	translate_breakers(c, cc->cb);
	cc->locality_weighted = c->common_lb_config &&
				c->common_lb_config->locality_config_specifier_case ==
					ENVOY__CONFIG__CLUSTER__V3__CLUSTER__COMMON_LB_CONFIG__LOCALITY_CONFIG_SPECIFIER_LOCALITY_WEIGHTED_LB_CONFIG;
	if (c->upstream_bind_config && c->upstream_bind_config->source_address) {
		char why[256];

		if (sk_addr_from_socket_address(c->upstream_bind_config->source_address, &cc->bind, why,
						sizeof(why)) < 0) {
			cfail(err, errlen, c->name, "upstream_bind_config.source_address: %s", why);
			goto fail;
		}
		cc->has_bind = true;
	}
	if (c->transport_socket != NULL) {
		char why[512];

		if (sk_tls_transport_socket_translate(c->transport_socket, true, &cc->tls_default_ctx, why,
						      sizeof(why)) < 0) {
			cfail(err, errlen, c->name, "transport_socket: %s", why);
			goto fail;
		}
	}
	cc->tls_default = is_tls_socket(c->transport_socket);
	for (size_t m = 0; m < c->n_transport_socket_matches; m++) {
		const Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch *tm = c->transport_socket_matches[m];
		const Google__Protobuf__Struct *st = tm->match;
		bool istio = false;

		for (size_t k = 0; st && k < st->n_fields; k++)
			if (strcmp(st->fields[k]->key, "tlsMode") == 0 && st->fields[k]->value &&
			    st->fields[k]->value->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE &&
			    strcmp(st->fields[k]->value->string_value, "istio") == 0)
				istio = true;
		/* the first tlsMode-istio match wins, as Envoy takes the first that matches */
		if (!istio || cc->has_istio_match)
			continue;
		cc->has_istio_match = true;
		cc->tls_match_istio = is_tls_socket(tm->transport_socket);
		if (tm->transport_socket != NULL) {
			char why[512];

			if (sk_tls_transport_socket_translate(tm->transport_socket, true, &cc->tls_istio_ctx, why,
							      sizeof(why)) < 0) {
				cfail(err, errlen, c->name, "transport_socket_matches[%zu].transport_socket: %s", m, why);
				goto fail;
			}
		}
	}
	if (translate_protocol(c, cc, err, errlen) < 0)
		goto fail;
	if (translate_endpoints(c, cc, err, errlen) < 0)
		goto fail;
	return cc;
fail:
	sk_cluster_config_free(cc);
	return NULL;
}

void sk_cluster_config_free(struct sk_cluster_config *cc)
{
	if (cc == NULL)
		return;
	sk_localities_free(cc->localities, cc->n_localities);
	free(cc->eds_service_name);
	free(cc->name);
	free(cc->stat_name);
	sk_tls_context_config_free(cc->tls_default_ctx);
	sk_tls_context_config_free(cc->tls_istio_ctx);
	free(cc);
}
