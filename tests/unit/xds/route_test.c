/* route_test: RouteConfiguration protos -> struct sk_route_config: real istiod output from the
 * conformance corpus, an Istio-shaped config with every action Istio emits, defaults, and what
 * is refused with a message naming the place. */
#include <stdlib.h>
#include <unistd.h>

#ifndef SKIFF_CONFORMANCE_DIR
#define SKIFF_CONFORMANCE_DIR "../shared/conformance"
#endif
#include "test.h"
#include "xds/bootstrap.h"
#include "xds/pbjson.h"
#include "xds/translate/route.h"

static char err[1024];

/* JSON with ' for " so that the configs below stay readable. */
static json_t *q(const char *text)
{
	char *s = strdup(text);
	json_error_t je;
	json_t *j;

	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(s, 0, &je);
	if (j == NULL)
		fprintf(stderr, "test input: bad JSON at %d: %s\n", je.position, je.text);
	free(s);
	return j;
}

static struct sk_route_config *route(const char *text)
{
	json_t *j = q(text);
	ProtobufCMessage *m = j ? sk_pbjson_decode(&envoy__config__route__v3__route_configuration__descriptor, j, NULL,
						   err, sizeof(err))
				: NULL;
	struct sk_route_config *rc = m ? sk_route_config_new((void *)m, err, sizeof(err)) : NULL;

	if (j && m == NULL)
		fprintf(stderr, "test input: %s\n", err);
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	json_decref(j);
	return rc;
}

/* A route config with one virtual host "v" (domains ["*"]) holding `routes`. */
#define ONE_VHOST(routes) "{'name':'r','virtual_hosts':[{'name':'v','domains':['*'],'routes':[" routes "]}]}"
#define FWD(extra) "{'match':{'prefix':'/'},'route':{'cluster':'c'" extra "}}"

static const char *fault_any =
	"{'@type':'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',"
	"'abort':{'http_status':503,'percentage':{'numerator':10}}}";

/* ---- the conformance corpus ------------------------------------------------------------- */

static void check_bookinfo(const struct sk_route_config *rc)
{
	const struct sk_route *r;

	CHECK_STR(rc->name, "http.8080");
	CHECK(rc->n_vhosts == 1 && rc->default_vhost == &rc->vhosts[0]);
	CHECK(rc->validate_clusters == 0);
	if (rc->n_vhosts != 1 || rc->vhosts[0].n_routes != 5)
		return;
	CHECK_STR(rc->vhosts[0].name, "*:80");
	CHECK(rc->vhosts[0].include_request_attempt_count);
	r = &rc->vhosts[0].routes[0];
	CHECK(r->path_kind == SK_PATH_EXACT && r->case_sensitive);
	CHECK_STR(r->path, "/productpage");
	CHECK(r->action == SK_ROUTE_FORWARD && r->fwd.cluster_kind == SK_ROUTE_CLUSTER_NAME);
	CHECK_STR(r->fwd.cluster, "outbound|9080||productpage.default.svc.cluster.local");
	CHECK(r->fwd.timeout == 0);                    /* "0s": no route timeout */
	CHECK(r->fwd.max_grpc_timeout == 0);           /* set, and 0: grpc-timeout unbounded */
	CHECK(r->fwd.idle_timeout == SK_ROUTE_UNSET);
	CHECK(r->fwd.has_retry);
	CHECK(r->fwd.retry.retry_on == (SK_RETRY_CONNECT_FAILURE | SK_RETRY_REFUSED_STREAM | SK_RETRY_GRPC_UNAVAILABLE |
					SK_RETRY_GRPC_CANCELLED | SK_RETRY_RETRIABLE_STATUS_CODES));
	CHECK(r->fwd.retry.num_retries == 2 && r->fwd.retry.previous_hosts);
	CHECK(r->fwd.retry.host_selection_max_attempts == 5);
	CHECK(r->fwd.retry.n_status_codes == 1 && r->fwd.retry.status_codes[0] == 503);
	CHECK(r->fwd.retry.back_off_base == 0.025 && r->fwd.retry.back_off_max == 0.25);
	CHECK_STR(r->istio_config, "/apis/networking.istio.io/v1alpha3/namespaces/default/virtual-service/bookinfo");
	CHECK_STR(r->decorator_operation, "productpage.default.svc.cluster.local:9080/productpage");
	CHECK(rc->vhosts[0].routes[1].path_kind == SK_PATH_PREFIX);
	CHECK_STR(rc->vhosts[0].routes[1].path, "/static");
}

static void test_configdump(void)
{
	char path[512];
	json_error_t je;
	json_t *dump, *configs, *c;
	size_t i, translated = 0;

	snprintf(path, sizeof(path), "%s/istio/configdump/http_config.json", sk_test_conformance_dir());
	if (access(path, R_OK) != 0) {
		SKIP("%s: not found", path);
		return;
	}
	dump = json_load_file(path, 0, &je);
	CHECK(dump != NULL);
	configs = json_object_get(dump, "configs");
	json_array_foreach(configs, i, c) {
		Google__Protobuf__Any *any = (void *)sk_pbjson_decode(&google__protobuf__any__descriptor, c, NULL, err,
								      sizeof(err));
		Envoy__Admin__V3__RoutesConfigDump *rd;

		CHECK(any != NULL);
		if (any == NULL || strstr(any->type_url, "RoutesConfigDump") == NULL) {
			if (any)
				protobuf_c_message_free_unpacked(&any->base, NULL);
			continue;
		}
		rd = (void *)protobuf_c_message_unpack(&envoy__admin__v3__routes_config_dump__descriptor, NULL,
						       any->value.len, any->value.data);
		CHECK(rd != NULL && rd->n_dynamic_route_configs > 0);
		for (size_t k = 0; rd && k < rd->n_dynamic_route_configs + rd->n_static_route_configs; k++) {
			Google__Protobuf__Any *ra = k < rd->n_dynamic_route_configs
				? rd->dynamic_route_configs[k]->route_config
				: rd->static_route_configs[k - rd->n_dynamic_route_configs]->route_config;
			Envoy__Config__Route__V3__RouteConfiguration *p = (void *)protobuf_c_message_unpack(
				&envoy__config__route__v3__route_configuration__descriptor, NULL, ra->value.len,
				ra->value.data);
			struct sk_route_config *rc = p ? sk_route_config_new(p, err, sizeof(err)) : NULL;

			CHECK(rc != NULL);
			if (rc == NULL)
				fprintf(stderr, "%s\n", err);
			else if (strcmp(rc->name, "http.8080") == 0)
				check_bookinfo(rc);
			translated += rc != NULL;
			sk_route_config_free(rc);
			if (p)
				protobuf_c_message_free_unpacked(&p->base, NULL);
		}
		if (rd)
			protobuf_c_message_free_unpacked(&rd->base, NULL);
		protobuf_c_message_free_unpacked(&any->base, NULL);
	}
	CHECK(translated == 1);
	json_decref(dump);
}

/* The inline route configs of the bootstrap's static listeners (15090 and 15021). */
static void test_bootstrap_routes(void)
{
	char path[512];
	struct sk_bootstrap_load_opts o = {0};
	sk_bootstrap_pb *b = NULL;
	size_t found = 0;

	snprintf(path, sizeof(path), "%s/istio/bootstrap/all_golden.json", sk_test_conformance_dir());
	if (access(path, R_OK) != 0) {
		SKIP("%s: not found", path);
		return;
	}
	o.path = path;
	CHECK(sk_bootstrap_load(&o, &b, NULL, err, sizeof(err)) == 0);
	for (size_t i = 0; b && b->static_resources && i < b->static_resources->n_listeners; i++) {
		const Envoy__Config__Listener__V3__Listener *l = b->static_resources->listeners[i];

		for (size_t k = 0; k < l->n_filter_chains; k++) {
			for (size_t f = 0; f < l->filter_chains[k]->n_filters; f++) {
				const Google__Protobuf__Any *a = l->filter_chains[k]->filters[f]->typed_config;
				Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h;
				struct sk_route_config *rc;

				if (a == NULL || strstr(a->type_url, "HttpConnectionManager") == NULL)
					continue;
				h = (void *)protobuf_c_message_unpack(
					&envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor,
					NULL, a->value.len, a->value.data);
				CHECK(h != NULL);
				if (h && h->route_specifier_case ==
					     ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__ROUTE_SPECIFIER_ROUTE_CONFIG) {
					rc = sk_route_config_new(h->route_config, err, sizeof(err));
					CHECK(rc != NULL && rc->n_vhosts == 1 && rc->default_vhost != NULL);
					CHECK(rc && rc->vhosts[0].n_routes == 1 &&
					      rc->vhosts[0].routes[0].path_kind == SK_PATH_PREFIX);
					CHECK(rc && rc->vhosts[0].routes[0].fwd.timeout == 15.0); /* Envoy's default */
					found++;
					sk_route_config_free(rc);
				}
				if (h)
					protobuf_c_message_free_unpacked(&h->base, NULL);
			}
		}
	}
	CHECK(found == 2);
	sk_bootstrap_free(b);
}

/* ---- an Istio-shaped config ------------------------------------------------------------- */

/* What istiod sends for reviews:9080 with a VirtualService (jason -> v2 with a fault; else
 * 90/10 v1/v3 with header changes) plus the outbound catch-all. */
static const char *istio_9080 =
	"{'name':'9080','validate_clusters':false,'ignore_port_in_host_matching':false,'virtual_hosts':["
	" {'name':'reviews.default.svc.cluster.local:9080','domains':['reviews.default.svc.cluster.local',"
	"  'reviews.default.svc.cluster.local:9080','reviews','reviews:9080','reviews.default','reviews.default:9080',"
	"  '10.96.0.7','10.96.0.7:9080'],'include_request_attempt_count':true,"
	"  'retry_policy':{'retry_on':'5xx','num_retries':7},"
	"  'routes':["
	"   {'name':'jason','match':{'prefix':'/','case_sensitive':true,'headers':[{'name':'end-user','string_match':"
	"     {'exact':'jason'}}]},"
	"    'route':{'cluster':'outbound|9080|v2|reviews.default.svc.cluster.local','timeout':'0s','retry_policy':"
	"     {'retry_on':'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes','num_retries':2,"
	"      'retry_host_predicate':[{'name':'envoy.retry_host_predicates.previous_hosts','typed_config':{'@type':"
	"      'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate'}}],"
	"      'host_selection_retry_max_attempts':'5','retriable_status_codes':[503],'per_try_timeout':'2s',"
	"      'retry_back_off':{'base_interval':'0.1s'}},'max_grpc_timeout':'0s'},"
	"    'metadata':{'filter_metadata':{'istio':{'config':'/apis/networking.istio.io/v1alpha3/namespaces/default/"
	"virtual-service/reviews'}}},'decorator':{'operation':'reviews.default.svc.cluster.local:9080/*'},"
	"    'typed_per_filter_config':{'envoy.filters.http.fault':%FAULT%}},"
	"   {'name':'default','match':{'prefix':'/'},"
	"    'route':{'weighted_clusters':{'clusters':["
	"      {'name':'outbound|9080|v1|reviews.default.svc.cluster.local','weight':90,'request_headers_to_add':"
	"       [{'header':{'key':'X-Subset','value':'v1'},'append_action':'OVERWRITE_IF_EXISTS_OR_ADD'}]},"
	"      {'name':'outbound|9080|v3|reviews.default.svc.cluster.local','weight':10,'response_headers_to_remove':"
	"       ['x-internal']}],'total_weight':100},"
	"     'timeout':'3s','idle_timeout':'60s','hash_policy':[{'cookie':{'name':'user','ttl':'0s','path':'/'}},"
	"      {'connection_properties':{'source_ip':true},'terminal':true}],"
	"     'request_mirror_policies':[{'cluster':'outbound|9080||mirror.default.svc.cluster.local',"
	"      'runtime_fraction':{'default_value':{'numerator':25,'denominator':'TEN_THOUSAND'}}}],"
	"     'upgrade_configs':[{'upgrade_type':'WebSocket'}],'max_stream_duration':{'max_stream_duration':'0s',"
	"      'grpc_timeout_header_max':'0s'}},"
	"    'request_headers_to_add':[{'header':{'key':'x-peer','value':'%DOWNSTREAM_REMOTE_ADDRESS%'},"
	"     'append':false},{'header':{'key':'x-empty','value':''},'keep_empty_value':true}],"
	"    'request_headers_to_remove':['X-Debug'],'response_headers_to_add':[{'header':{'key':'x-via',"
	"     'value':'skiff'},'append_action':'ADD_IF_ABSENT'}]}]},"
	" {'name':'allow_any','domains':['*'],'routes':[{'name':'allow_any','match':{'prefix':'/'},"
	"  'route':{'cluster':'PassthroughCluster','timeout':'0s','max_grpc_timeout':'0s'}}],"
	"  'include_request_attempt_count':true}]}";

static void test_istio_shaped(void)
{
	char text[8192], *at;
	const struct sk_route_config *rc;
	struct sk_route_config *own;
	const struct sk_virtual_host *v;
	const struct sk_route *r;
	const struct sk_route_forward *f;

	snprintf(text, sizeof(text), "%s", istio_9080);
	at = strstr(text, "%FAULT%");
	memmove(at + strlen(fault_any), at + 7, strlen(at + 7) + 1);
	memcpy(at, fault_any, strlen(fault_any));
	rc = own = route(text);
	CHECK(rc != NULL);
	if (rc == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	CHECK(rc->n_vhosts == 2 && rc->n_exact == 8 && rc->n_suffix == 0 && rc->default_vhost == &rc->vhosts[1]);
	v = &rc->vhosts[0];
	CHECK(v->n_routes == 2 && v->config == rc);
	r = &v->routes[0];
	CHECK_STR(r->name, "jason");
	CHECK(r->vhost == v && r->n_headers == 1 && r->headers[0].kind == SK_HEADER_STRING);
	CHECK(r->headers[0].str.kind == SK_STRING_EXACT);
	CHECK_STR(r->headers[0].name, "end-user");
	CHECK_STR(r->headers[0].str.value, "jason");
	/* the route's own retry policy, not the virtual host's */
	CHECK(r->fwd.retry.num_retries == 2 && r->fwd.retry.per_try_timeout == 2.0 && r->fwd.retry.previous_hosts);
	CHECK(r->fwd.retry.back_off_base == 0.1 && r->fwd.retry.back_off_max > 0.999 && r->fwd.retry.back_off_max < 1.001);
	CHECK(r->filter_configs.n == 1);
	CHECK_STR(r->filter_configs.v[0].filter, "envoy.filters.http.fault");
	CHECK_STR(r->filter_configs.v[0].type, "envoy.extensions.filters.http.fault.v3.HTTPFault");
	CHECK(r->filter_configs.v[0].value_len > 0);
	if (r->filter_configs.n == 1) { /* the bytes decode as the filter will decode them */
		Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *hf = (void *)protobuf_c_message_unpack(
			&envoy__extensions__filters__http__fault__v3__httpfault__descriptor, NULL,
			r->filter_configs.v[0].value_len, r->filter_configs.v[0].value);

		CHECK(hf && hf->abort && hf->abort->http_status == 503);
		if (hf)
			protobuf_c_message_free_unpacked(&hf->base, NULL);
	}

	r = &v->routes[1];
	f = &r->fwd;
	CHECK(r->case_sensitive);               /* default */
	CHECK(r->istio_config == NULL && r->decorator_operation == NULL);
	CHECK(f->cluster_kind == SK_ROUTE_CLUSTER_WEIGHTED && f->n_weighted == 2 && f->total_weight == 100);
	CHECK(f->weighted[0].weight == 90 && f->weighted[1].weight == 10);
	CHECK(f->weighted[0].mutations.request.n_add == 1 &&
	      f->weighted[0].mutations.request.add[0].append == SK_OVERWRITE_IF_EXISTS_OR_ADD);
	CHECK_STR(f->weighted[0].mutations.request.add[0].key, "x-subset");
	CHECK(f->weighted[1].mutations.response.n_remove == 1);
	CHECK(f->timeout == 3.0 && f->idle_timeout == 60.0);
	CHECK(f->max_stream_duration == 0 && f->grpc_timeout_header_max == 0 &&
	      f->grpc_timeout_header_offset == SK_ROUTE_UNSET && f->max_grpc_timeout == SK_ROUTE_UNSET);
	/* no retry policy on the route: the virtual host's applies */
	CHECK(f->has_retry && f->retry.retry_on == SK_RETRY_5XX && f->retry.num_retries == 7);
	CHECK(f->n_hash == 2 && f->hash[0].kind == SK_HASH_COOKIE && f->hash[0].cookie_ttl == 0);
	CHECK_STR(f->hash[0].cookie_path, "/");
	CHECK(f->hash[1].kind == SK_HASH_SOURCE_IP && f->hash[1].terminal);
	CHECK(f->n_mirrors == 1 && f->mirrors[0].fraction.numerator == 25 && f->mirrors[0].fraction.denominator == 10000);
	CHECK(f->n_upgrades == 1 && f->upgrades[0].enabled);
	CHECK_STR(f->upgrades[0].type, "websocket");
	CHECK(r->mutations.request.n_add == 2 && r->mutations.request.add[0].append == SK_OVERWRITE_IF_EXISTS_OR_ADD);
	CHECK_STR(r->mutations.request.add[0].value, "%DOWNSTREAM_REMOTE_ADDRESS%"); /* raw: formatted later */
	CHECK(r->mutations.request.add[1].keep_empty_value && r->mutations.request.add[1].append == SK_APPEND_IF_EXISTS_OR_ADD);
	CHECK(r->mutations.request.n_remove == 1);
	CHECK_STR(r->mutations.request.remove[0], "x-debug");
	CHECK(r->mutations.response.n_add == 1 && r->mutations.response.add[0].append == SK_ADD_IF_ABSENT);
	CHECK(r->fwd.cluster_not_found_code == 503);

	v = &rc->vhosts[1];
	CHECK_STR(v->routes[0].fwd.cluster, "PassthroughCluster");
	CHECK(!v->routes[0].fwd.has_retry && v->routes[0].fwd.n_mirrors == 0);
	sk_route_config_free(own);
}

/* Redirects, direct responses, regexes and the other matchers. */
static void test_actions(void)
{
	struct sk_route_config *rc;
	const struct sk_route *r;
	char out[128];

	rc = route(ONE_VHOST(
		"{'match':{'path':'/old'},'redirect':{'https_redirect':true,'host_redirect':'new.example.com',"
		" 'port_redirect':8443,'prefix_rewrite':'/new','response_code':'PERMANENT_REDIRECT','strip_query':true}},"
		"{'match':{'safe_regex':{'google_re2':{},'regex':'/api/v[0-9]+/.*'}},'route':{'cluster':'api',"
		" 'regex_rewrite':{'pattern':{'regex':'^/api/(v[0-9]+)/'},'substitution':'/\\\\1/'},"
		" 'host_rewrite_literal':'api.internal'}},"
		"{'match':{'path_separated_prefix':'/docs','case_sensitive':false},'direct_response':{'status':200,"
		" 'body':{'inline_string':'hello'}}},"
		"{'match':{'connect_matcher':{}},'route':{'cluster_header':'X-Target','cluster_not_found_response_code':"
		" 'NOT_FOUND','auto_host_rewrite':true}},"
		"{'match':{'prefix':'/g','grpc':{},'query_parameters':[{'name':'debug','present_match':true},"
		" {'name':'v','string_match':{'prefix':'1','ignore_case':true}}],'runtime_fraction':{'default_value':"
		" {'numerator':50}}},'direct_response':{'status':503}}"));
	CHECK(rc != NULL);
	if (rc == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	r = &rc->vhosts[0].routes[0];
	CHECK(r->action == SK_ROUTE_REDIRECT && r->redirect.code == 308 && r->redirect.port == 8443);
	CHECK_STR(r->redirect.scheme, "https");
	CHECK_STR(r->redirect.host, "new.example.com");
	CHECK_STR(r->redirect.prefix_rewrite, "/new");
	CHECK(r->redirect.strip_query && r->redirect.path == NULL);
	r++;
	CHECK(r->path_kind == SK_PATH_REGEX && r->path_re != NULL);
	CHECK(sk_regex_match(r->path_re, "/api/v2/x", 9) && !sk_regex_match(r->path_re, "/x/api/v2/x", 11));
	CHECK(r->fwd.regex_rewrite != NULL);
	if (r->fwd.regex_rewrite) {
		long n = sk_regex_replace(r->fwd.regex_rewrite, "/api/v2/users", 13, out, sizeof(out));

		CHECK(n == 9);
		CHECK_STR(out, "/v2/users");
	}
	CHECK_STR(r->fwd.host_rewrite_literal, "api.internal");
	r++;
	CHECK(r->action == SK_ROUTE_DIRECT && r->direct.status == 200 && r->direct.body_len == 5);
	CHECK(r->path_kind == SK_PATH_SEPARATED_PREFIX && !r->case_sensitive);
	r++;
	CHECK(r->path_kind == SK_PATH_CONNECT && r->fwd.cluster_kind == SK_ROUTE_CLUSTER_HEADER);
	CHECK_STR(r->fwd.cluster_header, "x-target");
	CHECK(r->fwd.cluster_not_found_code == 404 && r->fwd.auto_host_rewrite);
	r++;
	CHECK(r->grpc && r->n_query == 2 && r->query[0].present_only && !r->query[1].present_only);
	CHECK(r->has_runtime_fraction && r->runtime_fraction.numerator == 50 && r->runtime_fraction.denominator == 100);
	CHECK(r->direct.body == NULL);
	sk_route_config_free(rc);

	/* a deprecated-form HeaderMatcher bag: what older istiod versions send */
	rc = route(ONE_VHOST("{'match':{'prefix':'/','headers':[{'name':':method','exact_match':'GET'},"
			     "{'name':'x-a','prefix_match':'p'},{'name':'x-b','suffix_match':'s'},{'name':'x-c',"
			     "'contains_match':'c'},{'name':'x-d','safe_regex_match':{'regex':'a+'}},{'name':'x-e',"
			     "'present_match':true,'invert_match':true},{'name':'x-f','range_match':{'start':'1',"
			     "'end':'10'}},{'name':'x-g'},{'name':'X-H','exact_match':''}]},"
			     "'route':{'cluster':'c'}}"));
	CHECK(rc != NULL);
	if (rc) {
		r = &rc->vhosts[0].routes[0];
		CHECK(r->n_headers == 9);
		CHECK(r->headers[1].str.kind == SK_STRING_PREFIX && r->headers[2].str.kind == SK_STRING_SUFFIX);
		CHECK(r->headers[3].str.kind == SK_STRING_CONTAINS && r->headers[4].str.kind == SK_STRING_REGEX);
		CHECK(r->headers[5].kind == SK_HEADER_PRESENT && r->headers[5].invert);
		CHECK(r->headers[6].kind == SK_HEADER_RANGE && r->headers[6].range_end == 10);
		CHECK(r->headers[7].kind == SK_HEADER_PRESENT && r->headers[7].present);
		CHECK_STR(r->headers[8].name, "x-h");
		CHECK(r->headers[8].str.kind == SK_STRING_PREFIX && r->headers[8].str.len == 0); /* any value */
		sk_route_config_free(rc);
	}

	/* FilterConfig wrappers: optional unknown filters are kept, not refused */
	rc = route(ONE_VHOST("{'match':{'prefix':'/'},'route':{'cluster':'c'},'typed_per_filter_config':{"
			     "'x.custom':{'@type':'type.googleapis.com/envoy.config.route.v3.FilterConfig',"
			     "'is_optional':true,'config':{'@type':'type.googleapis.com/google.protobuf.Empty','value':{}}},"
			     "'envoy.filters.http.fault':{'@type':'type.googleapis.com/envoy.config.route.v3.FilterConfig',"
			     "'disabled':true}}}"));
	CHECK(rc != NULL);
	if (rc) {
		r = &rc->vhosts[0].routes[0];
		CHECK(r->filter_configs.n == 2);
		CHECK(r->filter_configs.v[0].is_optional);
		CHECK_STR(r->filter_configs.v[0].type, "google.protobuf.Empty");
		CHECK(r->filter_configs.v[1].disabled);
		sk_route_config_free(rc);
	}
}

static void test_retry_on(void)
{
	unsigned unknown = 9;

	CHECK(sk_retry_on_parse(" 5xx , gateway-error,,reset ", 28, &unknown) ==
	      (SK_RETRY_5XX | SK_RETRY_GATEWAY_ERROR | SK_RETRY_RESET));
	CHECK(unknown == 0);
	CHECK(sk_retry_on_parse("retriable-4xx,deadline-exceeded,resource-exhausted,internal,envoy-ratelimited,bogus",
				82, &unknown) ==
	      (SK_RETRY_RETRIABLE_4XX | SK_RETRY_GRPC_DEADLINE_EXCEEDED | SK_RETRY_GRPC_RESOURCE_EXHAUSTED |
	       SK_RETRY_GRPC_INTERNAL | SK_RETRY_ENVOY_RATE_LIMITED));
	CHECK(unknown == 1); /* ignored, as Envoy does */
	CHECK(sk_retry_on_parse("5XX", 3, NULL) == 0); /* tokens are case-sensitive */
}

/* The retry policy fields the router applies per request (proxy/http/retry.c): retry_on with
 * retriable-headers and reset-before-request, the response and request header matchers. */
static void test_retry_policy(void)
{
	struct sk_route_config *rc = route(ONE_VHOST(FWD(
		",'retry_policy':{'retry_on':'retriable-headers,reset-before-request,unavailable','num_retries':4,"
		"'retriable_headers':[{'name':'X-Upstream-Busy','present_match':true},{'name':'x-reason',"
		"'string_match':{'prefix':'retry'}}],'retriable_request_headers':[{'name':':method','exact_match':'GET'}],"
		"'per_try_timeout':'0.5s'}")));
	const struct sk_retry_policy *p;

	CHECK(rc != NULL);
	if (rc == NULL)
		return;
	CHECK(rc->vhosts[0].routes[0].fwd.has_retry);
	p = &rc->vhosts[0].routes[0].fwd.retry;
	CHECK(p->retry_on == (SK_RETRY_RETRIABLE_HEADERS | SK_RETRY_RESET_BEFORE_REQUEST | SK_RETRY_GRPC_UNAVAILABLE));
	CHECK(p->num_retries == 4 && p->per_try_timeout == 0.5);
	CHECK(p->n_retriable_headers == 2 && p->n_retriable_request_headers == 1);
	if (p->n_retriable_headers == 2) {
		CHECK_STR(p->retriable_headers[0].name, "x-upstream-busy"); /* lower-cased */
		CHECK(p->retriable_headers[0].kind == SK_HEADER_PRESENT && p->retriable_headers[0].present);
		CHECK(p->retriable_headers[1].kind == SK_HEADER_STRING && p->retriable_headers[1].str.kind == SK_STRING_PREFIX);
	}
	sk_route_config_free(rc);
	/* a virtual host's policy is the route's when the route has none */
	rc = route("{'name':'r','virtual_hosts':[{'name':'v','domains':['*'],'retry_policy':{'retry_on':'reset'},"
		   "'routes':[" FWD("") "]}]}");
	CHECK(rc && rc->vhosts[0].routes[0].fwd.has_retry &&
	      rc->vhosts[0].routes[0].fwd.retry.retry_on == SK_RETRY_RESET && rc->vhosts[0].routes[0].fwd.retry.num_retries == 1);
	sk_route_config_free(rc);
}

/* ---- CORS policies ---------------------------------------------------------------------- */

#define CORS_ANY "'@type':'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy'"

static void test_cors(void)
{
	struct sk_route_config *rc = route(
		"{'name':'r','typed_per_filter_config':{'envoy.filters.http.cors':{" CORS_ANY ",'max_age':'60'}},"
		"'virtual_hosts':[{'name':'v','domains':['*'],"
		"'typed_per_filter_config':{'envoy.filters.http.cors':{" CORS_ANY ",'allow_origin_string_match':["
		"{'exact':'https://a.example'},{'suffix':'.B.example','ignore_case':true},{'safe_regex':{'regex':'https://[a-z]+\\\\.c'}}],"
		"'allow_methods':'GET,POST','allow_headers':'x-a','expose_headers':'x-e','allow_credentials':true,"
		"'filter_enabled':{'default_value':{'numerator':50,'denominator':'TEN_THOUSAND'},'runtime_key':'k'},"
		"'shadow_enabled':{'default_value':{'numerator':100}},'forward_not_matching_preflights':false,"
		"'allow_private_network_access':true}},"
		"'routes':[{'match':{'prefix':'/r'},'route':{'cluster':'c'},'typed_per_filter_config':{'cors':{"
		CORS_ANY ",'allow_methods':'PUT'}}},"
		"{'match':{'prefix':'/off'},'route':{'cluster':'c'},'typed_per_filter_config':{'envoy.filters.http.cors':{"
		"'@type':'type.googleapis.com/envoy.config.route.v3.FilterConfig','disabled':true}}},"
		"{'match':{'prefix':'/'},'route':{'cluster':'c'}}]},"
		"{'name':'legacy','domains':['l.example'],'cors':{'allow_origin_string_match':[{'prefix':'https://'}],"
		"'allow_methods':'GET','filter_enabled':{'default_value':{'numerator':0}}},"
		"'routes':[{'match':{'prefix':'/'},'route':{'cluster':'c','cors':{'expose_headers':'x-l',"
		"'allow_credentials':false}}}]}]}");
	const struct sk_cors_policy *p;

	CHECK(rc != NULL);
	if (rc == NULL) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	/* route configuration level */
	CHECK(rc->cors && rc->cors->max_age && strcmp(rc->cors->max_age, "60") == 0 && rc->cors->n_origins == 0);
	CHECK(rc->cors && rc->cors->allow_credentials == -1 && rc->cors->forward_not_matching_preflights == -1);
	CHECK(rc->cors && !rc->cors->has_filter_enabled && !rc->cors->has_shadow_enabled && !rc->cors->disabled);
	/* virtual host: every field */
	p = rc->vhosts[0].cors;
	CHECK(p != NULL && p->n_origins == 3);
	if (p && p->n_origins == 3) {
		CHECK(p->origins[0].kind == SK_STRING_EXACT && strcmp(p->origins[0].value, "https://a.example") == 0);
		CHECK(p->origins[1].kind == SK_STRING_SUFFIX && p->origins[1].ignore_case);
		CHECK(p->origins[2].kind == SK_STRING_REGEX && p->origins[2].re != NULL);
		CHECK_STR(p->allow_methods, "GET,POST");
		CHECK_STR(p->allow_headers, "x-a");
		CHECK_STR(p->expose_headers, "x-e");
		CHECK(p->max_age == NULL);
		CHECK(p->allow_credentials == 1 && p->allow_private_network_access == 1);
		CHECK(p->forward_not_matching_preflights == 0);
		CHECK(p->has_filter_enabled && p->filter_enabled.numerator == 50 && p->filter_enabled.denominator == 10000);
		CHECK(p->has_shadow_enabled && p->shadow_enabled.numerator == 100 && p->shadow_enabled.denominator == 100);
	}
	CHECK(rc->vhosts[0].cors_legacy == NULL);
	/* routes: under any key; a FilterConfig that disables the filter; none */
	p = rc->vhosts[0].routes[0].cors;
	CHECK(p && p->allow_methods && strcmp(p->allow_methods, "PUT") == 0 && p->allow_headers == NULL);
	CHECK(rc->vhosts[0].routes[1].cors && rc->vhosts[0].routes[1].cors->disabled);
	CHECK(rc->vhosts[0].routes[2].cors == NULL && rc->vhosts[0].routes[2].cors_legacy == NULL);
	/* the deprecated cors fields */
	p = rc->vhosts[1].cors_legacy;
	CHECK(rc->vhosts[1].cors == NULL && p != NULL);
	CHECK(p && p->n_origins == 1 && p->origins[0].kind == SK_STRING_PREFIX && p->has_filter_enabled &&
	      p->filter_enabled.numerator == 0);
	p = rc->vhosts[1].routes[0].cors_legacy;
	CHECK(p && p->expose_headers && strcmp(p->expose_headers, "x-l") == 0 && p->allow_credentials == 0);
	sk_route_config_free(rc);
}

/* ---- refused, with the place named ------------------------------------------------------ */

static void refused(const char *text, const char *want)
{
	struct sk_route_config *rc = route(text);

	CHECK(rc == NULL);
	if (rc) {
		fprintf(stderr, "  accepted, wanted: %s\n", want);
		sk_route_config_free(rc);
		return;
	}
	CHECK_CONTAINS(err, want);
}

static void test_errors(void)
{
	refused(ONE_VHOST("{'match':{'prefix':'/'},'route':{'cluster_specifier_plugin':'p'}}"),
		"route config 'r': virtual_hosts[0].routes[0].route.cluster_specifier_plugin: not supported");
	refused("{'name':'r','vhds':{'config_source':{'ads':{}}}}", "route config 'r': vhds: not supported");
	refused(ONE_VHOST("{'match':{'prefix':'/'},'route':{'weighted_clusters':{'clusters':[{'name':'a','weight':0},"
			  "{'name':'b'}]}}}"),
		"virtual_hosts[0].routes[0].route.weighted_clusters: the sum of the weights must be greater than 0");
	refused(ONE_VHOST("{'match':{'prefix':'/'},'route':{'weighted_clusters':{'clusters':[{'name':'a','weight':60},"
			  "{'name':'b','weight':30}],'total_weight':100}}}"),
		"weighted_clusters: total_weight 100 differs from the sum of the weights 90");
	refused(ONE_VHOST("{'match':{'prefix':'/'},'route':{'weighted_clusters':{'clusters':[{'name':'a','weight':1,"
			  "'cluster_header':'x'}]}}}"),
		"weighted_clusters.clusters[0]: only one of name or cluster_header can be specified");
	refused(ONE_VHOST("{'match':{'safe_regex':{'regex':'(unclosed'}},'route':{'cluster':'c'}}"),
		"virtual_hosts[0].routes[0].match.safe_regex: regex '(unclosed': missing closing parenthesis");
	refused(ONE_VHOST("{'match':{'safe_regex':{'regex':'/(?!admin).*'}},'route':{'cluster':'c'}}"),
		"lookaround assertions are not supported");
	refused(ONE_VHOST("{'match':{'prefix':'/','headers':[{'name':'x','safe_regex_match':{'regex':'(a)\\\\1'}}]},"
			  "'route':{'cluster':'c'}}"),
		"match.headers[0].safe_regex_match: regex '(a)\\1': backreferences are not supported");
	refused(ONE_VHOST("{'match':{'prefix':'/','headers':[{'name':'x','string_match':{'safe_regex':{'regex':'a'},"
			  "'ignore_case':true}}]},'route':{'cluster':'c'}}"),
		"match.headers[0].string_match: ignore_case has no effect for safe_regex");
	refused(ONE_VHOST("{'match':{'prefix':'/'},'route':{'cluster':'c','regex_rewrite':{'pattern':{'regex':'(a)'},"
			  "'substitution':'\\\\2'}}}"),
		"route.regex_rewrite: substitution refers to \\2 but the pattern has 1 groups");
	refused("{'name':'r','virtual_hosts':[{'name':'a','domains':['x.com','*'],'routes':[]},"
		"{'name':'b','domains':['X.com']}]}",
		"route config 'r': only unique values for domains are permitted: 'x.com' is in virtual hosts 'a' and 'b'");
	refused("{'name':'r','virtual_hosts':[{'name':'a','domains':['*.x.com']},{'name':'b','domains':['*.X.COM']}]}",
		"'*.x.com' is in virtual hosts 'a' and 'b'");
	refused("{'name':'r','virtual_hosts':[{'name':'a','domains':['*']},{'name':'b','domains':['*']}]}",
		"only a single wildcard domain is permitted (virtual hosts 'a' and 'b')");
	refused("{'name':'r','virtual_hosts':[{'name':'a','domains':[]}]}", "virtual_hosts[0].domains: must not be empty");
	refused("{'name':'r','virtual_hosts':[{'name':'a','domains':['*'],'require_tls':'ALL'}]}",
		"virtual_hosts[0].require_tls: not supported");
	refused("{'name':'r','virtual_hosts':[{'name':'a','domains':['*'],'hedge_policy':{}}]}",
		"virtual_hosts[0].hedge_policy: not supported");
	refused(ONE_VHOST("{'match':{'prefix':'/'}}"), "virtual_hosts[0].routes[0]: no action");
	refused(ONE_VHOST("{'route':{'cluster':'c'}}"), "virtual_hosts[0].routes[0].match: required");
	refused(ONE_VHOST("{'match':{'prefix':'/','tls_context':{'presented':true}},'route':{'cluster':'c'}}"),
		"routes[0].match.tls_context: not supported");
	refused(ONE_VHOST(FWD(",'metadata_match':{'filter_metadata':{'envoy.lb':{'version':'v1'}}}")),
		"routes[0].route.metadata_match: not supported");
	refused(ONE_VHOST(FWD(",'hash_policy':[{'filter_state':{'key':'k'}}]")),
		"routes[0].route.hash_policy[0].filter_state: not supported");
	refused(ONE_VHOST(FWD(",'retry_policy':{'retry_host_predicate':[{'name':'envoy.retry_host_predicates."
			      "omit_canary_hosts'}]}")),
		"route.retry_policy.retry_host_predicate[0]: 'envoy.retry_host_predicates.omit_canary_hosts' is not "
		"supported (only previous_hosts)");
	refused(ONE_VHOST(FWD(",'retry_policy':{'retry_back_off':{'base_interval':'1s','max_interval':'0.5s'}}")),
		"route.retry_policy.retry_back_off: max_interval must be greater than or equal to the base_interval");
	refused(ONE_VHOST(FWD(",'prefix_rewrite':'/a','regex_rewrite':{'pattern':{'regex':'a'},'substitution':'b'}")),
		"specify only one of prefix_rewrite, regex_rewrite or path_rewrite_policy");
	refused(ONE_VHOST("{'match':{'prefix':'/'},'route':{'cluster':'c'},'request_headers_to_add':[{'header':"
			  "{'key':'Host','value':'h'}}]}"),
		"routes[0].request_headers_to_add[0]: header.key 'Host': :-prefixed or host headers may not be modified");
	refused(ONE_VHOST("{'match':{'prefix':'/'},'route':{'cluster':'c'},'response_headers_to_remove':[':status']}"),
		"routes[0].response_headers_to_remove[0]: ':status': :-prefixed or host headers may not be removed");
	refused(ONE_VHOST("{'match':{'prefix':'/'},'route':{'cluster':'c'},'request_headers_to_add':[{'header':"
			  "{'key':'x','value':'v'},'append':true,'append_action':'ADD_IF_ABSENT'}]}"),
		"both append and append_action are set");
	refused(ONE_VHOST("{'match':{'prefix':'/'},'route':{'cluster':'c'},'typed_per_filter_config':{"
			  "'envoy.filters.http.rbac':{'@type':'type.googleapis.com/envoy.extensions.filters.http.rbac.v3."
			  "RBACPerRoute'}}}"),
		"routes[0].typed_per_filter_config['envoy.filters.http.rbac']: per-route config of type "
		"'envoy.extensions.filters.http.rbac.v3.RBACPerRoute' is not supported");
	refused(ONE_VHOST("{'match':{'prefix':'/'},'direct_response':{'status':200,'body':{'filename':'/etc/x'}}}"),
		"routes[0].direct_response.body.filename: not supported (inline the body)");
	refused("{'name':'r','max_direct_response_body_size_bytes':4,'virtual_hosts':[{'name':'v','domains':['*'],"
		"'routes':[{'match':{'prefix':'/'},'direct_response':{'status':200,'body':{'inline_string':'hello'}}}]}]}",
		"direct_response: body size is 5 bytes; maximum is 4");
	refused(ONE_VHOST("{'match':{'prefix':'/'},'direct_response':{'status':99}}"),
		"direct_response: status 99: must be in [200, 600)");
	refused(ONE_VHOST("{'match':{'path_separated_prefix':'/a/'},'route':{'cluster':'c'}}"),
		"path_separated_prefix '/a/': must start with '/', not end with '/'");
	refused(ONE_VHOST(FWD(",'request_mirror_policies':[{'cluster':'a','cluster_header':'b'}]")),
		"route.request_mirror_policies[0]: exactly one of cluster or cluster_header must be set");
	refused(ONE_VHOST(FWD(",'internal_redirect_policy':{}")), "route: internal redirects: not supported");
	refused(ONE_VHOST(FWD(",'rate_limits':[{'actions':[{'remote_address':{}}]}]")),
		"route.rate_limits: not supported");
	refused(ONE_VHOST(FWD(",'timeout':'-1s'")), "route.timeout: invalid duration");
	refused(ONE_VHOST("{'match':{'prefix':'/'},'route':{'cluster':'c'},'typed_per_filter_config':{"
			  "'envoy.filters.http.cors':{" CORS_ANY ",'allow_origin_string_match':[{'exact':'a'},"
			  "{'safe_regex':{'regex':'b'},'ignore_case':true}]}}}"),
		"routes[0].typed_per_filter_config['envoy.filters.http.cors'].allow_origin_string_match[1]: "
		"ignore_case has no effect for safe_regex");
	refused("{'name':'r','virtual_hosts':[{'name':'a','domains':['*'],'cors':{'allow_origin_string_match':"
		"[{'prefix':''}]}}]}",
		"virtual_hosts[0].cors.allow_origin_string_match[0]: must not be empty");
	refused(ONE_VHOST(FWD(",'cors':{'filter_enabled':{'default_value':{'numerator':1,'denominator':7}}}")),
		"routes[0].route.cors.filter_enabled: unknown denominator");
	refused(ONE_VHOST("{'match':{'prefix':'/'},'route':{'cluster':''}}"), "route.cluster: must not be empty");
}

int main(void)
{
	test_configdump();
	test_bootstrap_routes();
	test_istio_shaped();
	test_actions();
	test_retry_on();
	test_retry_policy();
	test_cors();
	test_errors();
	sk_regex_thread_free();
	return TEST_SUMMARY();
}
