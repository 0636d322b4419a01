/* ads_bootstrap: where the ADS stream goes and how, read from a bootstrap's
 * dynamic_resources.ads_config. See sk_ads_bootstrap_read in ads.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xds/ads.h"

typedef Envoy__Config__Core__V3__ApiConfigSource api_config_pb;
typedef Envoy__Config__Core__V3__GrpcService grpc_service_pb;

static const Envoy__Config__Cluster__V3__Cluster *static_cluster(const sk_bootstrap_pb *b, const char *name)
{
	size_t i;

	for (i = 0; b->static_resources != NULL && i < b->static_resources->n_clusters; i++)
		if (strcmp(b->static_resources->clusters[i]->name, name) == 0)
			return b->static_resources->clusters[i];
	return NULL;
}

static int read_api_type(const api_config_pb *a, struct sk_ads_bootstrap *out, char *err, size_t errlen)
{
	switch (a->api_type) {
	case ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC:
	case ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__AGGREGATED_GRPC:
		out->api_type = SK_ADS_SOTW;
		return 0;
	case ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__DELTA_GRPC:
	case ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__AGGREGATED_DELTA_GRPC:
		out->api_type = SK_ADS_DELTA;
		return 0;
	default:
		snprintf(err, errlen, "dynamic_resources.ads_config.api_type: must be GRPC or DELTA_GRPC");
		return -EINVAL;
	}
}

/* envoy_grpc: a static cluster of the bootstrap; its endpoint becomes the target. */
static int read_envoy_grpc(const sk_bootstrap_pb *b, const grpc_service_pb *g, struct sk_ads_bootstrap *out,
			   char *err, size_t errlen)
{
	const Envoy__Config__Core__V3__GrpcService__EnvoyGrpc *e = g->envoy_grpc;
	const Envoy__Config__Cluster__V3__Cluster *c = static_cluster(b, e->cluster_name);
	char why[400];

	if (c == NULL) {
		snprintf(err, errlen, "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: "
			 "unknown static cluster '%s'", e->cluster_name);
		return -EINVAL;
	}
	out->cluster_name = e->cluster_name;
	out->authority = e->authority[0] ? e->authority : e->cluster_name;
	if (e->max_receive_message_length)
		out->max_receive_bytes = e->max_receive_message_length->value;
	if (sk_grpc_target_from_cluster(c, out->target, sizeof(out->target), why, sizeof(why)) < 0) {
		snprintf(err, errlen, "dynamic_resources.ads_config: %s", why);
		return strstr(why, "not supported") ? -ENOTSUP : -EINVAL;
	}
	return 0;
}

/* google_grpc: the target URI as is, insecure only (credentials are not supported yet). */
static int read_google_grpc(const grpc_service_pb *g, struct sk_ads_bootstrap *out, char *err, size_t errlen)
{
	const Envoy__Config__Core__V3__GrpcService__GoogleGrpc *gg = g->google_grpc;

	if (gg->channel_credentials != NULL || gg->n_call_credentials > 0) {
		snprintf(err, errlen, "dynamic_resources.ads_config.grpc_services[0].google_grpc: "
			 "credentials are not supported yet");
		return -ENOTSUP;
	}
	if (gg->target_uri[0] == '\0' || strlen(gg->target_uri) >= sizeof(out->target)) {
		snprintf(err, errlen, "dynamic_resources.ads_config.grpc_services[0].google_grpc.target_uri: "
			 "missing or too long");
		return -EINVAL;
	}
	strcpy(out->target, gg->target_uri);
	return 0;
}

/* grpc_services[0].initial_metadata as call metadata (borrowed strings). */
static int read_metadata(const grpc_service_pb *g, struct sk_ads_bootstrap *out)
{
	size_t i;

	if (g->n_initial_metadata == 0)
		return 0;
	out->metadata = calloc(g->n_initial_metadata, sizeof(*out->metadata));
	if (out->metadata == NULL)
		return -ENOMEM;
	for (i = 0; i < g->n_initial_metadata; i++) {
		out->metadata[i].key = g->initial_metadata[i]->key;
		out->metadata[i].value = g->initial_metadata[i]->value;
	}
	out->n_metadata = g->n_initial_metadata;
	return 0;
}

int sk_ads_bootstrap_read(const sk_bootstrap_pb *b, struct sk_ads_bootstrap *out, char *err, size_t errlen)
{
	const api_config_pb *a = b->dynamic_resources ? b->dynamic_resources->ads_config : NULL;
	const grpc_service_pb *g;
	int rc;

	memset(out, 0, sizeof(*out));
	if (a == NULL) {
		snprintf(err, errlen, "no dynamic_resources.ads_config");
		return -ENOENT;
	}
	if ((rc = read_api_type(a, out, err, errlen)) < 0)
		return rc;
	out->set_node_on_first_message_only = a->set_node_on_first_message_only;
	if (a->n_grpc_services != 1) {
		snprintf(err, errlen, "dynamic_resources.ads_config.grpc_services: exactly one is needed, got %zu",
			 a->n_grpc_services);
		return -EINVAL;
	}
	g = a->grpc_services[0];
	if (g->target_specifier_case == ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC)
		rc = read_envoy_grpc(b, g, out, err, errlen);
	else if (g->target_specifier_case == ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_GOOGLE_GRPC)
		rc = read_google_grpc(g, out, err, errlen);
	else
		rc = (snprintf(err, errlen, "dynamic_resources.ads_config.grpc_services[0]: envoy_grpc or google_grpc "
			       "is needed"), -EINVAL);
	if (rc == 0 && read_metadata(g, out) < 0) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
	}
	if (rc < 0)
		sk_ads_bootstrap_clear(out);
	return rc;
}

void sk_ads_bootstrap_clear(struct sk_ads_bootstrap *out)
{
	free(out->metadata);
	out->metadata = NULL;
	out->n_metadata = 0;
}
