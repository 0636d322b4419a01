/* bootstrap: load (JSON/YAML), merge --config-yaml, validate. See bootstrap.h. */
#include "xds/bootstrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xds/yaml_json.h"

#define BOOTSTRAP_MAX_BYTES (64u << 20)

typedef Envoy__Config__Cluster__V3__Cluster cluster_pb;
typedef Envoy__Config__Listener__V3__Listener listener_pb;
typedef Envoy__Config__Core__V3__Address address_pb;

static int errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool looks_like_json(const char *text, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')
			continue;
		return text[i] == '{' || text[i] == '['; /* an object, or a list of resources */
	}
	return false;
}

json_t *sk_config_text_parse(const char *text, size_t len, bool yaml, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j;

	if (yaml || !looks_like_json(text, len))
		return sk_yaml_parse(text, len, err, errlen);
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL)
		errf(err, errlen, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
	return j;
}

char *sk_file_read(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL) {
		errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t got;

		if (n + 4096 + 1 > cap) {
			char *grown;

			cap = cap ? cap * 2 : 65536;
			grown = cap <= max ? realloc(buf, cap) : NULL;
			if (grown == NULL) {
				errf(err, errlen, "%s: larger than %zu bytes", path, max);
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = grown;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		errf(err, errlen, "%s: read error", path);
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* Parses text (named `what` in errors) into a Bootstrap message. */
static sk_bootstrap_pb *decode_text(const char *what, const char *text, size_t len, bool yaml,
				    struct sk_pbjson_decode_opts *dopts, char *err, size_t errlen)
{
	char msg[1024];
	json_t *j = sk_config_text_parse(text, len, yaml, msg, sizeof(msg));
	ProtobufCMessage *m;

	if (j == NULL) {
		errf(err, errlen, "%s: %s", what, msg);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		errf(err, errlen, "%s: the bootstrap must be an object", what);
		return NULL;
	}
	m = sk_pbjson_decode(&envoy__config__bootstrap__v3__bootstrap__descriptor, j, dopts, msg,
			     sizeof(msg));
	json_decref(j);
	if (m == NULL)
		errf(err, errlen, "%s: %s", what, msg);
	return (sk_bootstrap_pb *)m;
}

int sk_bootstrap_load(const struct sk_bootstrap_load_opts *opts, sk_bootstrap_pb **out,
		      unsigned *unknown_fields, char *err, size_t errlen)
{
	struct sk_pbjson_decode_opts dopts = {
		.allow_unknown = opts->allow_unknown,
		.warn = opts->warn,
		.warn_ctx = opts->warn_ctx,
	};
	sk_bootstrap_pb *b = NULL, *overlay, *merged;

	*out = NULL;
	if (opts->path == NULL && opts->config_yaml == NULL)
		return errf(err, errlen, "no bootstrap: give -c FILE and/or --config-yaml");
	if (opts->path != NULL) {
		size_t len;
		char *text = sk_file_read(opts->path, BOOTSTRAP_MAX_BYTES, &len, err, errlen);

		if (text == NULL)
			return -EINVAL;
		b = decode_text(opts->path, text, len,
				has_suffix(opts->path, ".yaml") || has_suffix(opts->path, ".yml"),
				&dopts, err, errlen);
		free(text);
		if (b == NULL)
			return -EINVAL;
	}
	if (opts->config_yaml != NULL) {
		overlay = decode_text("--config-yaml", opts->config_yaml, strlen(opts->config_yaml),
				      false, &dopts, err, errlen);
		if (overlay == NULL) {
			sk_bootstrap_free(b);
			return -EINVAL;
		}
		if (b == NULL) {
			b = overlay;
		} else {
			merged = (sk_bootstrap_pb *)sk_pbjson_merge(&b->base, &overlay->base);
			sk_bootstrap_free(b);
			sk_bootstrap_free(overlay);
			if (merged == NULL)
				return errf(err, errlen, "--config-yaml: merge failed");
			b = merged;
		}
	}
	if (unknown_fields)
		*unknown_fields = dopts.unknown_fields;
	if (sk_bootstrap_validate(b, err, errlen) < 0) {
		sk_bootstrap_free(b);
		return -EINVAL;
	}
	*out = b;
	return 0;
}

void sk_bootstrap_free(sk_bootstrap_pb *b)
{
	if (b != NULL)
		protobuf_c_message_free_unpacked(&b->base, NULL);
}

/* ------------------------------------------------------------------------------------ */
/* validation                                                                            */

static bool is_ip(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

/* Checks one address; `path` names it in errors. need_ip: a STATIC endpoint or a bound
 * listener must be a literal IP (Envoy does not resolve names there). */
static int check_address(const address_pb *a, const char *path, bool need_ip, char *err,
			 size_t errlen)
{
	const Envoy__Config__Core__V3__SocketAddress *sa;

	switch (a->address_case) {
	case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS:
		sa = a->socket_address;
		if (sa->address == NULL || sa->address[0] == '\0')
			return errf(err, errlen, "%s.socket_address.address: must not be empty", path);
		if (sa->port_specifier_case ==
			    ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE &&
		    sa->port_value > 65535)
			return errf(err, errlen, "%s.socket_address.port_value: %u is not a valid port",
				    path, sa->port_value);
		if (need_ip && !is_ip(sa->address))
			return errf(err, errlen,
				    "%s.socket_address.address: '%s' is not an IP address", path,
				    sa->address);
		return 0;
	case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE:
		if (a->pipe->path == NULL || a->pipe->path[0] == '\0')
			return errf(err, errlen, "%s.pipe.path: must not be empty", path);
		if (strlen(a->pipe->path) >= 108)
			return errf(err, errlen, "%s.pipe.path: longer than a unix socket path may be",
				    path);
		return 0;
	case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_ENVOY_INTERNAL_ADDRESS:
		return 0;
	default:
		return errf(err, errlen, "%s: no address set", path);
	}
}

static int discovery_type(const cluster_pb *c)
{
	if (c->cluster_discovery_type_case ==
	    ENVOY__CONFIG__CLUSTER__V3__CLUSTER__CLUSTER_DISCOVERY_TYPE_CLUSTER_TYPE)
		return -1; /* custom cluster type */
	return (int)c->type;
}

static const char *discovery_type_name(int t)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		&envoy__config__cluster__v3__cluster__discovery_type__descriptor, t);

	return v ? v->name : "?";
}

static int check_cluster(const cluster_pb *c, size_t i, char *err, size_t errlen)
{
	const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la = c->load_assignment;
	int type = discovery_type(c);
	size_t hosts = 0, l, e;
	char path[160];

	if (c->name == NULL || c->name[0] == '\0')
		return errf(err, errlen, "static_resources.clusters[%zu].name: must not be empty", i);
	if (type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__ORIGINAL_DST && la != NULL &&
	    la->n_endpoints > 0)
		return errf(err, errlen,
			    "static_resources.clusters[%zu] (%s): ORIGINAL_DST clusters must have no "
			    "load assignment configured", i, c->name);
	if (la == NULL)
		return 0;
	for (l = 0; l < la->n_endpoints; l++) {
		const Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle = la->endpoints[l];

		for (e = 0; e < lle->n_lb_endpoints; e++) {
			const Envoy__Config__Endpoint__V3__LbEndpoint *lbe = lle->lb_endpoints[e];

			snprintf(path, sizeof(path),
				 "static_resources.clusters[%zu].load_assignment.endpoints[%zu]"
				 ".lb_endpoints[%zu].endpoint.address", i, l, e);
			if (lbe->host_identifier_case !=
				    ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT ||
			    lbe->endpoint == NULL || lbe->endpoint->address == NULL) {
				if (type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS)
					continue;
				return errf(err, errlen, "%s: missing (cluster '%s')", path, c->name);
			}
			if (check_address(lbe->endpoint->address, path,
					  type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC,
					  err, errlen) < 0)
				return -EINVAL;
			if (type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STATIC &&
			    type != ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__EDS &&
			    lbe->endpoint->address->address_case !=
				    ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS)
				return errf(err, errlen, "%s: a %s cluster ('%s') needs socket addresses",
					    path, discovery_type_name(type), c->name);
			hosts++;
		}
	}
	if (type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS && hosts != 1)
		return errf(err, errlen,
			    "static_resources.clusters[%zu] (%s): LOGICAL_DNS clusters must have a "
			    "single locality_lb_endpoint and a single lb_endpoint", i, c->name);
	return 0;
}

static const cluster_pb *find_cluster(const sk_bootstrap_pb *b, const char *name)
{
	size_t i;

	if (b->static_resources == NULL)
		return NULL;
	for (i = 0; i < b->static_resources->n_clusters; i++)
		if (strcmp(b->static_resources->clusters[i]->name, name) == 0)
			return b->static_resources->clusters[i];
	return NULL;
}

/* Every gRPC service of an API config source must name a static cluster. */
static int check_api_source(const sk_bootstrap_pb *b, const Envoy__Config__Core__V3__ApiConfigSource *s,
			    const char *path, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < s->n_grpc_services; i++) {
		const Envoy__Config__Core__V3__GrpcService *g = s->grpc_services[i];

		if (g->target_specifier_case !=
		    ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC)
			continue;
		if (find_cluster(b, g->envoy_grpc->cluster_name) == NULL)
			return errf(err, errlen,
				    "%s.grpc_services[%zu].envoy_grpc.cluster_name: unknown cluster '%s' "
				    "(it must be a static cluster)", path, i, g->envoy_grpc->cluster_name);
	}
	return 0;
}

static int check_config_source(const sk_bootstrap_pb *b, const Envoy__Config__Core__V3__ConfigSource *cs,
			       const char *path, char *err, size_t errlen)
{
	char sub[128];

	if (cs == NULL)
		return 0;
	if (cs->config_source_specifier_case ==
	    ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_ADS) {
		if (b->dynamic_resources == NULL || b->dynamic_resources->ads_config == NULL)
			return errf(err, errlen, "%s.ads: ADS is used but dynamic_resources.ads_config "
				    "is not set", path);
	} else if (cs->config_source_specifier_case ==
		   ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE) {
		snprintf(sub, sizeof(sub), "%s.api_config_source", path);
		return check_api_source(b, cs->api_config_source, sub, err, errlen);
	}
	return 0;
}

static bool same_socket(const address_pb *a, const address_pb *b)
{
	if (a->address_case != b->address_case)
		return false;
	if (a->address_case == ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE)
		return strcmp(a->pipe->path, b->pipe->path) == 0;
	if (a->address_case == ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS)
		return a->socket_address->port_value == b->socket_address->port_value &&
		       a->socket_address->port_value != 0 &&
		       strcmp(a->socket_address->address, b->socket_address->address) == 0;
	return false;
}

static bool binds(const listener_pb *l)
{
	return l->bind_to_port == NULL || l->bind_to_port->value;
}

int sk_bootstrap_validate(const sk_bootstrap_pb *b, char *err, size_t errlen)
{
	const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
	const Envoy__Config__Bootstrap__V3__Bootstrap__DynamicResources *dr = b->dynamic_resources;
	size_t i, j;
	char path[128];

	if (b->admin != NULL && b->admin->address != NULL &&
	    check_address(b->admin->address, "admin.address", true, err, errlen) < 0)
		return -EINVAL;
	if (sr != NULL) {
		for (i = 0; i < sr->n_clusters; i++) {
			if (check_cluster(sr->clusters[i], i, err, errlen) < 0)
				return -EINVAL;
			for (j = 0; j < i; j++)
				if (strcmp(sr->clusters[i]->name, sr->clusters[j]->name) == 0)
					return errf(err, errlen,
						    "static_resources.clusters[%zu].name: duplicate cluster "
						    "'%s' (also clusters[%zu])", i, sr->clusters[i]->name, j);
		}
		for (i = 0; i < sr->n_listeners; i++) {
			const listener_pb *l = sr->listeners[i];

			if (l->name == NULL || l->name[0] == '\0')
				return errf(err, errlen,
					    "static_resources.listeners[%zu].name: must not be empty", i);
			if (l->address == NULL && l->api_listener == NULL &&
			    l->internal_listener == NULL)
				return errf(err, errlen,
					    "static_resources.listeners[%zu] (%s): listener has no address",
					    i, l->name);
			if (l->address != NULL) {
				snprintf(path, sizeof(path), "static_resources.listeners[%zu].address", i);
				if (check_address(l->address, path, true, err, errlen) < 0)
					return -EINVAL;
			}
			for (j = 0; j < i; j++) {
				const listener_pb *o = sr->listeners[j];

				if (strcmp(l->name, o->name) == 0)
					return errf(err, errlen,
						    "static_resources.listeners[%zu].name: duplicate listener "
						    "'%s' (also listeners[%zu])", i, l->name, j);
				if (l->address && o->address && binds(l) && binds(o) &&
				    same_socket(l->address, o->address))
					return errf(err, errlen,
						    "static_resources.listeners[%zu] (%s): address already "
						    "used by listener '%s'", i, l->name, o->name);
			}
		}
	}
	if (dr != NULL) {
		if (dr->ads_config != NULL &&
		    check_api_source(b, dr->ads_config, "dynamic_resources.ads_config", err, errlen) < 0)
			return -EINVAL;
		if (check_config_source(b, dr->lds_config, "dynamic_resources.lds_config", err, errlen) < 0 ||
		    check_config_source(b, dr->cds_config, "dynamic_resources.cds_config", err, errlen) < 0)
			return -EINVAL;
	}
	return 0;
}
