/* /config_dump: envoy.admin.v3.ConfigDump as proto3 JSON — Bootstrap, Clusters, Listeners,
 * ScopedRoutes, Routes, Secrets (and Endpoints with ?include_eds) — with ?resource=,
 * ?mask= and ?name_regex= as Envoy implements them. Private keys are redacted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "proxy/admin/admin.h"
#include "proxy/server/secrets.h"
#include "proxy/server/server.h"
#include "proxy/server/xds_config.h"
#include "xds/pbjson.h"

#define ADMIN_TYPE "type.googleapis.com/envoy.admin.v3."

typedef Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources static_resources;

static json_t *typed(const char *type)
{
	json_t *o = json_object();
	char url[256];

	snprintf(url, sizeof(url), ADMIN_TYPE "%s", type);
	json_object_set_new(o, "@type", json_string(url));
	return o;
}

static json_t *static_entry(const char *key, const ProtobufCMessage *msg, time_t at)
{
	json_t *e = json_object();

	json_object_set_new(e, key, sk_pbjson_any_json(msg));
	json_object_set_new(e, "last_updated", sk_pbjson_timestamp(at));
	return e;
}

/* The HttpConnectionManager of a filter, decoded, or NULL. */
static Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *
filter_hcm(const Envoy__Config__Listener__V3__Filter *f)
{
	const ProtobufCMessageDescriptor *d =
		&envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor;
	const Google__Protobuf__Any *any;
	const char *slash;

	if (f->config_type_case != ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG ||
	    (any = f->typed_config) == NULL || any->type_url == NULL)
		return NULL;
	slash = strrchr(any->type_url, '/');
	if (slash == NULL || strcmp(slash + 1, d->name) != 0)
		return NULL;
	return (void *)protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data);
}

/* Inline route configurations of static listeners are Envoy's static_route_configs. */
static json_t *static_routes(const static_resources *sr, time_t at)
{
	json_t *arr = json_array();
	size_t i, c, f;

	for (i = 0; sr && i < sr->n_listeners; i++) {
		const Envoy__Config__Listener__V3__Listener *l = sr->listeners[i];

		for (c = 0; c < l->n_filter_chains; c++) {
			for (f = 0; f < l->filter_chains[c]->n_filters; f++) {
				Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h =
					filter_hcm(l->filter_chains[c]->filters[f]);

				if (h == NULL)
					continue;
				if (h->route_specifier_case ==
				    ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG)
					json_array_append_new(arr, static_entry("route_config",
										&h->route_config->base, at));
				protobuf_c_message_free_unpacked(&h->base, NULL);
			}
		}
	}
	return arr;
}

static json_t *build_dump(const struct sk_server *s, bool include_eds)
{
	const sk_bootstrap_pb *b = s->bootstrap;
	const static_resources *sr = b->static_resources;
	time_t at = s->bootstrap_loaded_at;
	json_t *configs = json_array(), *o, *arr;
	size_t i;

	o = typed("BootstrapConfigDump");
	{
		struct sk_pbjson_encode_opts eo = {.redact = true};

		json_object_set_new(o, "bootstrap", sk_pbjson_encode(&b->base, &eo));
	}
	json_object_set_new(o, "last_updated", sk_pbjson_timestamp(at));
	json_array_append_new(configs, o);

	o = typed("ClustersConfigDump");
	arr = json_array();
	for (i = 0; sr && i < sr->n_clusters; i++)
		json_array_append_new(arr, static_entry("cluster", &sr->clusters[i]->base, at));
	json_object_set_new(o, "static_clusters", arr);
	if (s->xds)
		sk_xds_config_dump(s->xds, SK_XDS_DUMP_CLUSTERS, o);
	json_array_append_new(configs, o);

	if (include_eds) {
		o = typed("EndpointsConfigDump");
		arr = json_array();
		for (i = 0; sr && i < sr->n_clusters; i++)
			if (sr->clusters[i]->load_assignment)
				json_array_append_new(arr, static_entry("endpoint_config",
									&sr->clusters[i]->load_assignment->base,
									at));
		json_object_set_new(o, "static_endpoint_configs", arr);
		if (s->xds)
			sk_xds_config_dump(s->xds, SK_XDS_DUMP_ENDPOINTS, o);
		json_array_append_new(configs, o);
	}

	o = typed("ListenersConfigDump");
	arr = json_array();
	for (i = 0; sr && i < sr->n_listeners; i++)
		json_array_append_new(arr, static_entry("listener", &sr->listeners[i]->base, at));
	json_object_set_new(o, "static_listeners", arr);
	if (s->xds)
		sk_xds_config_dump(s->xds, SK_XDS_DUMP_LISTENERS, o);
	json_array_append_new(configs, o);

	json_array_append_new(configs, typed("ScopedRoutesConfigDump"));

	o = typed("RoutesConfigDump");
	json_object_set_new(o, "static_route_configs", static_routes(sr, at));
	if (s->xds)
		sk_xds_config_dump(s->xds, SK_XDS_DUMP_ROUTES, o);
	json_array_append_new(configs, o);

	o = typed("SecretsConfigDump");
	arr = json_array();
	for (i = 0; sr && i < sr->n_secrets; i++) {
		json_t *e = json_object();

		json_object_set_new(e, "name", json_string(sr->secrets[i]->name));
		json_object_set_new(e, "last_updated", sk_pbjson_timestamp(at));
		json_object_set_new(e, "secret", sk_pbjson_any_json(&sr->secrets[i]->base));
		json_array_append_new(arr, e);
	}
	json_object_set_new(o, "static_secrets", arr);
	if (s->secrets)
		sk_secrets_config_dump(s->secrets, o);
	json_array_append_new(configs, o);

	/* Empty lists are omitted, as proto3 JSON omits empty repeated fields. */
	{
		json_t *c;
		size_t k;

		json_array_foreach(configs, k, c) {
			const char *key;
			json_t *v;
			void *tmp;

			json_object_foreach_safe(c, tmp, key, v)
				if (json_is_array(v) && json_array_size(v) == 0)
					json_object_del(c, key);
		}
	}
	o = json_object();
	json_object_set_new(o, "configs", configs);
	return o;
}

/* The element message of a repeated dump field, for ?resource= ("@type" of each entry). */
static const char *element_type(const char *dump_type, const char *field)
{
	static const char *const map[][3] = {
		{"ClustersConfigDump", "static_clusters", "ClustersConfigDump.StaticCluster"},
		{"ClustersConfigDump", "dynamic_active_clusters", "ClustersConfigDump.DynamicCluster"},
		{"ClustersConfigDump", "dynamic_warming_clusters", "ClustersConfigDump.DynamicCluster"},
		{"ListenersConfigDump", "static_listeners", "ListenersConfigDump.StaticListener"},
		{"ListenersConfigDump", "dynamic_listeners", "ListenersConfigDump.DynamicListener"},
		{"RoutesConfigDump", "static_route_configs", "RoutesConfigDump.StaticRouteConfig"},
		{"RoutesConfigDump", "dynamic_route_configs", "RoutesConfigDump.DynamicRouteConfig"},
		{"SecretsConfigDump", "static_secrets", "SecretsConfigDump.StaticSecret"},
		{"SecretsConfigDump", "dynamic_active_secrets", "SecretsConfigDump.DynamicSecret"},
		{"SecretsConfigDump", "dynamic_warming_secrets", "SecretsConfigDump.DynamicSecret"},
		{"EndpointsConfigDump", "static_endpoint_configs", "EndpointsConfigDump.StaticEndpointConfig"},
		{"EndpointsConfigDump", "dynamic_endpoint_configs", "EndpointsConfigDump.DynamicEndpointConfig"},
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i][0], dump_type) == 0 && strcmp(map[i][1], field) == 0)
			return map[i][2];
	return NULL;
}

/* The repeated fields that ?resource= may name, per dump type (present or not). */
static bool known_resource(const char *dump_type, const char *field)
{
	return element_type(dump_type, field) != NULL;
}

/* Keeps only the masked paths of obj ("a.b,c"); arrays apply the mask to each element. */
static void apply_mask(json_t *obj, char **paths, size_t n, size_t depth_off)
{
	const char *key;
	json_t *v;
	void *tmp;

	if (json_is_array(obj)) {
		size_t i;

		json_array_foreach(obj, i, v)
			apply_mask(v, paths, n, depth_off);
		return;
	}
	if (!json_is_object(obj))
		return;
	json_object_foreach_safe(obj, tmp, key, v) {
		size_t klen = strlen(key), i;
		bool keep = strcmp(key, "@type") == 0, whole = false;
		char *sub[64];
		size_t nsub = 0;

		for (i = 0; i < n; i++) {
			const char *p = paths[i] + depth_off;

			if (strncmp(p, key, klen) != 0)
				continue;
			if (p[klen] == '\0') {
				keep = whole = true;
			} else if (p[klen] == '.' && nsub < 64) {
				keep = true;
				sub[nsub++] = paths[i];
			}
		}
		if (!keep)
			json_object_del(obj, key);
		else if (!whole && nsub)
			apply_mask(v, sub, nsub, depth_off + klen + 1);
	}
}

static char *element_name(json_t *e)
{
	static const char *const keys[] = {"cluster", "listener", "route_config", "endpoint_config", "secret"};
	size_t i;
	json_t *n = json_object_get(e, "name");

	if (json_is_string(n))
		return (char *)json_string_value(n);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *inner = json_object_get(e, keys[i]);
		json_t *nm = inner ? json_object_get(inner, "name") : NULL;

		if (json_is_string(nm))
			return (char *)json_string_value(nm);
		nm = inner ? json_object_get(inner, "cluster_name") : NULL;
		if (json_is_string(nm))
			return (char *)json_string_value(nm);
	}
	return NULL;
}

void sk_admin_config_dump(const struct sk_admin_request *req, struct sk_admin_response *resp)
{
	char *resource = NULL, *mask = NULL, *name_regex = NULL;
	bool include_eds = sk_admin_query_param(req, "include_eds", NULL);
	char *paths[64];
	size_t npaths = 0;
	pcre2_code *re = NULL;
	pcre2_match_data *md = NULL;
	json_t *dump, *configs, *c;
	size_t i;

	sk_admin_query_param(req, "resource", &resource);
	sk_admin_query_param(req, "mask", &mask);
	sk_admin_query_param(req, "name_regex", &name_regex);
	if (name_regex && name_regex[0]) {
		int ec;
		PCRE2_SIZE eo;

		re = pcre2_compile((PCRE2_SPTR)name_regex, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
		if (re == NULL) {
			sk_admin_respond(resp, 400, SK_CT_TEXT, "Error while parsing name_regex '%s'\n",
					 name_regex);
			goto out;
		}
		md = pcre2_match_data_create_from_pattern(re, NULL);
	}
	if (mask) {
		char *tok, *save = NULL;

		for (tok = strtok_r(mask, ",", &save); tok && npaths < 64; tok = strtok_r(NULL, ",", &save))
			paths[npaths++] = tok;
	}
	dump = build_dump(req->server, include_eds || (resource && strstr(resource, "endpoint")));
	configs = json_object_get(dump, "configs");

	if (resource && resource[0]) {
		json_t *out = json_array(), *root;
		bool known = false;

		json_array_foreach(configs, i, c) {
			const char *type = strrchr(json_string_value(json_object_get(c, "@type")), '.') + 1;
			json_t *list = json_object_get(c, resource), *e;
			const char *et;
			size_t k;

			if (!known_resource(type, resource))
				continue;
			known = true;
			et = element_type(type, resource);
			json_array_foreach(list, k, e) {
				json_t *item = typed(et);
				const char *nm = element_name(e);

				if (re && (nm == NULL ||
					   pcre2_match(re, (PCRE2_SPTR)nm, strlen(nm), 0, 0, md, NULL) < 0))
					continue;
				json_object_update(item, e);
				if (npaths)
					apply_mask(item, paths, npaths, 0);
				json_array_append_new(out, item);
			}
		}
		json_decref(dump);
		if (!known) {
			json_decref(out);
			sk_admin_respond(resp, 404, SK_CT_TEXT, "The resource %s in the mask was not found.\n",
					 resource);
			goto out;
		}
		root = json_object();
		json_object_set_new(root, "configs", out);
		sk_admin_respond_json(resp, 200, root);
		goto out;
	}
	if (npaths) {
		json_array_foreach(configs, i, c)
			apply_mask(c, paths, npaths, 0);
	}
	sk_admin_respond_json(resp, 200, dump);
out:
	pcre2_match_data_free(md);
	if (re)
		pcre2_code_free(re);
	free(resource);
	free(mask);
	free(name_regex);
}
