/* hcm_test: HttpConnectionManager protos -> struct sk_hcm_config: Envoy's defaults, Istio's
 * shapes (the 15021 listener, its observe-only filters), and what is refused with a message
 * naming the place. */
#include <stdlib.h>

#include "test.h"
#include "proxy/network/access_log.h"
#include "xds/pbjson.h"
#include "xds/translate/hcm.h"

static char err[1024];

static struct sk_hcm_config *hcm(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	ProtobufCMessage *m = j ? sk_pbjson_decode(
		&envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__descriptor,
		j, NULL, err, sizeof(err)) : NULL;
	struct sk_hcm_config *hc;

	json_decref(j);
	if (m == NULL) {
		fprintf(stderr, "test input: %s\n", err);
		return NULL;
	}
	err[0] = '\0';
	hc = sk_hcm_config_from_pb((void *)m, err, sizeof(err));
	protobuf_c_message_free_unpacked(m, NULL);
	return hc;
}

#define ROUTES "\"route_config\":{\"virtual_hosts\":[{\"name\":\"b\",\"domains\":[\"*\"],\"routes\":[" \
	"{\"match\":{\"prefix\":\"/\"},\"route\":{\"cluster\":\"c\"}}]}]}"
#define ROUTER "{\"name\":\"envoy.filters.http.router\",\"typed_config\":{\"@type\":" \
	"\"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\"}}"
#define FILTER(name, type) "{\"name\":\"" name "\",\"typed_config\":{\"@type\":\"type.googleapis.com/" type "\"}}"
#define WITH_FILTERS(...) "{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" __VA_ARGS__ "]}"

static void test_defaults(void)
{
	struct sk_hcm_config *hc = hcm(WITH_FILTERS(ROUTER));

	CHECK(hc != NULL);
	if (hc == NULL)
		return;
	CHECK_STR(hc->stat_prefix, "p");
	CHECK(hc->codec == SK_HCM_CODEC_AUTO);
	CHECK(hc->routes != NULL && hc->routes->n_vhosts == 1);
	CHECK(hc->generate_request_id);             /* default true */
	CHECK(!hc->use_remote_address && !hc->skip_xff_append && hc->xff_num_trusted_hops == 0);
	CHECK(hc->stream_idle_timeout == 300.0);    /* 5 min */
	CHECK(hc->idle_timeout == 3600.0);          /* 1 h */
	CHECK(hc->request_timeout == 0 && hc->request_headers_timeout == 0);
	CHECK(hc->max_headers_count == 100 && hc->max_request_headers_kb == 60);
	CHECK_STR(hc->server_name, "envoy");
	CHECK(hc->server_header == SK_SERVER_OVERWRITE);
	CHECK(!hc->normalize_path && !hc->merge_slashes);
	CHECK(hc->n_access_logs == 0 && hc->observe_only == 0);
	sk_hcm_config_free(hc);
	sk_hcm_config_free(NULL);
}

static void test_fields(void)
{
	struct sk_hcm_config *hc = hcm(
		"{\"stat_prefix\":\"in\",\"codec_type\":\"HTTP1\"," ROUTES ",\"http_filters\":[" ROUTER "],"
		"\"use_remote_address\":true,\"xff_num_trusted_hops\":2,\"skip_xff_append\":true,"
		"\"generate_request_id\":false,\"server_name\":\"skiff\",\"server_header_transformation\":\"PASS_THROUGH\","
		"\"stream_idle_timeout\":\"10s\",\"request_timeout\":\"30s\",\"request_headers_timeout\":\"2.5s\","
		"\"common_http_protocol_options\":{\"idle_timeout\":\"60s\",\"max_headers_count\":50,"
		"\"headers_with_underscores_action\":\"REJECT_REQUEST\",\"max_requests_per_connection\":7},"
		"\"max_request_headers_kb\":96,\"normalize_path\":true,\"merge_slashes\":true,"
		"\"access_log\":[{\"name\":\"envoy.access_loggers.file\",\"typed_config\":{\"@type\":"
		"\"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\",\"path\":\"/dev/stdout\","
		"\"log_format\":{\"text_format\":\"%RESPONSE_CODE% %REQ(:PATH)%\\n\"}}}]}");

	CHECK(hc != NULL);
	if (hc == NULL)
		return;
	CHECK(hc->codec == SK_HCM_CODEC_HTTP1);
	CHECK(hc->use_remote_address && hc->xff_num_trusted_hops == 2 && hc->skip_xff_append);
	CHECK(!hc->generate_request_id);
	CHECK_STR(hc->server_name, "skiff");
	CHECK(hc->server_header == SK_SERVER_PASS_THROUGH);
	CHECK(hc->stream_idle_timeout == 10.0 && hc->request_timeout == 30.0 && hc->request_headers_timeout == 2.5);
	CHECK(hc->idle_timeout == 60.0 && hc->max_headers_count == 50 && hc->max_requests_per_connection == 7);
	CHECK(hc->underscores == SK_UNDERSCORES_REJECT);
	CHECK(hc->max_request_headers_kb == 96);
	CHECK(hc->normalize_path && hc->merge_slashes);
	CHECK(hc->n_access_logs == 1);
	if (hc->n_access_logs == 1) {
		CHECK_STR(hc->access_logs[0].path, "/dev/stdout");
		CHECK_STR(hc->access_logs[0].format->text, "%RESPONSE_CODE% %REQ(:PATH)%\n");
	}
	sk_hcm_config_free(hc);

	/* a FileAccessLog without format gets Envoy's default */
	hc = hcm("{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" ROUTER "],\"access_log\":[{\"name\":\"f\","
		 "\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.access_loggers.file.v3."
		 "FileAccessLog\",\"path\":\"/tmp/x\"}}]}");
	CHECK(hc && hc->n_access_logs == 1);
	if (hc && hc->n_access_logs == 1)
		CHECK_CONTAINS(hc->access_logs[0].format->text, "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%");
	sk_hcm_config_free(hc);
}

/* Istio's 15021 health listener (default_golden.json) and a sidecar's inbound filter chain. */
static void test_istio_shapes(void)
{
	struct sk_hcm_config *hc = hcm(
		"{\"codec_type\":\"AUTO\",\"stat_prefix\":\"agent\",\"route_config\":{\"virtual_hosts\":[{"
		"\"name\":\"backend\",\"domains\":[\"*\"],\"routes\":[{\"match\":{\"prefix\":\"/healthz/ready\"},"
		"\"route\":{\"cluster\":\"agent\"}}]}]},\"http_filters\":[" ROUTER "]}");

	CHECK(hc != NULL);
	sk_hcm_config_free(hc);

	/* Istio's 15090 listener: compressors, accepted without effect */
	hc = hcm(WITH_FILTERS(
		"{\"name\":\"envoy.filters.http.compressor.gzip\",\"typed_config\":{\"@type\":\"type.googleapis.com/"
		"envoy.extensions.filters.http.compressor.v3.Compressor\",\"compressor_library\":{\"name\":\"g\","
		"\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3."
		"Gzip\"}}}}," ROUTER));
	CHECK(hc && hc->compressors == 1);
	sk_hcm_config_free(hc);

	hc = hcm(WITH_FILTERS(
		FILTER("istio.metadata_exchange", "io.istio.http.peer_metadata.Config") ","
		FILTER("envoy.filters.http.grpc_stats", "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig") ","
		FILTER("istio.alpn", "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig") ","
		FILTER("envoy.filters.http.fault", "envoy.extensions.filters.http.fault.v3.HTTPFault") ","
		FILTER("envoy.filters.http.cors", "envoy.extensions.filters.http.cors.v3.Cors") ","
		FILTER("istio.stats", "stats.PluginConfig") ","
		"{\"name\":\"istio.stats\",\"typed_config\":{\"@type\":\"type.googleapis.com/udpa.type.v1.TypedStruct\","
		"\"type_url\":\"type.googleapis.com/stats.PluginConfig\",\"value\":{}}},"
		ROUTER));
	CHECK(hc != NULL);
	if (hc) {
		CHECK(hc->observe_only == 4);
		CHECK(hc->cors && hc->fault);
		CHECK(hc->alpn_filter && hc->alpn_override[SK_ALPN_HTTP11][0] == '\0');
	}
	sk_hcm_config_free(hc);

	/* istio.alpn as Istio sends it: the lists per upstream HTTP version */
	hc = hcm(WITH_FILTERS(
		"{\"name\":\"istio.alpn\",\"typed_config\":{\"@type\":\"type.googleapis.com/istio.envoy.config.filter."
		"http.alpn.v2alpha1.FilterConfig\",\"alpn_override\":[{\"alpn_override\":[\"istio-http/1.0\",\"istio\"]},"
		"{\"upstream_protocol\":\"HTTP11\",\"alpn_override\":[\"istio-http/1.1\",\"istio\"]},"
		"{\"upstream_protocol\":\"HTTP2\",\"alpn_override\":[\"istio-h2\",\"istio\"]}]}}," ROUTER));
	CHECK(hc != NULL);
	if (hc) {
		CHECK(hc->alpn_filter);
		CHECK_STR(hc->alpn_override[SK_ALPN_HTTP10], "istio-http/1.0,istio");
		CHECK_STR(hc->alpn_override[SK_ALPN_HTTP11], "istio-http/1.1,istio");
		CHECK_STR(hc->alpn_override[SK_ALPN_HTTP2], "istio-h2,istio");
	}
	sk_hcm_config_free(hc);
	hc = hcm(WITH_FILTERS(
		"{\"name\":\"istio.alpn\",\"typed_config\":{\"@type\":\"type.googleapis.com/istio.envoy.config.filter."
		"http.alpn.v2alpha1.FilterConfig\",\"alpn_override\":[{\"alpn_override\":[\"a,b\"]}]}}," ROUTER));
	CHECK(hc == NULL);
	CHECK_CONTAINS(err, "http_filters[0] (istio.alpn): alpn_override: a protocol name");
	sk_hcm_config_free(hc);

	/* per-route fault configs: translated (applied by http_conn) */
	hc = hcm("{\"stat_prefix\":\"p\",\"http_filters\":[" FILTER("envoy.filters.http.fault",
		 "envoy.extensions.filters.http.fault.v3.HTTPFault") "," ROUTER "],\"route_config\":{\"virtual_hosts\":[{"
		 "\"name\":\"b\",\"domains\":[\"*\"],\"routes\":[{\"match\":{\"prefix\":\"/\"},\"route\":{\"cluster\":\"c\"},"
		 "\"typed_per_filter_config\":{\"envoy.filters.http.fault\":{\"@type\":\"type.googleapis.com/"
		 "envoy.extensions.filters.http.fault.v3.HTTPFault\",\"abort\":{\"http_status\":503,\"percentage\":"
		 "{\"numerator\":10}}}}}]}]}}");
	CHECK(hc && hc->per_route_faults == 1);
	if (hc && hc->per_route_faults == 1) {
		const struct sk_fault *f = &hc->route_faults[0].fault;

		CHECK(hc->route_faults[0].fc == &hc->routes->vhosts[0].routes[0].filter_configs);
		CHECK(f->has_abort && f->abort_status == 503 && !f->has_delay);
		CHECK(f->abort_pct.numerator == 10 && f->abort_pct.denominator == 100);
		CHECK(!hc->fault_cfg.has_abort && !hc->fault_cfg.has_delay);
	}
	sk_hcm_config_free(hc);

	/* filter-level abort and delay with FractionalPercent */
	hc = hcm(WITH_FILTERS("{\"name\":\"envoy.filters.http.fault\",\"typed_config\":{\"@type\":\"type.googleapis.com/"
			      "envoy.extensions.filters.http.fault.v3.HTTPFault\",\"abort\":{\"http_status\":418,"
			      "\"percentage\":{\"numerator\":2500,\"denominator\":\"TEN_THOUSAND\"}},\"delay\":{"
			      "\"fixed_delay\":\"0.25s\",\"percentage\":{\"numerator\":7,\"denominator\":\"MILLION\"}}}}," ROUTER));
	CHECK(hc && hc->fault);
	if (hc) {
		CHECK(hc->fault_cfg.has_abort && hc->fault_cfg.abort_status == 418);
		CHECK(hc->fault_cfg.abort_pct.numerator == 2500 && hc->fault_cfg.abort_pct.denominator == 10000);
		CHECK(hc->fault_cfg.has_delay && hc->fault_cfg.delay > 0.2499 && hc->fault_cfg.delay < 0.2501);
		CHECK(hc->fault_cfg.delay_pct.numerator == 7 && hc->fault_cfg.delay_pct.denominator == 1000000);
	}
	sk_hcm_config_free(hc);

	/* an abort without a percentage is 100% */
	hc = hcm(WITH_FILTERS("{\"name\":\"envoy.filters.http.fault\",\"typed_config\":{\"@type\":\"type.googleapis.com/"
			      "envoy.extensions.filters.http.fault.v3.HTTPFault\",\"abort\":{\"http_status\":503}}}," ROUTER));
	CHECK(hc && hc->fault_cfg.has_abort && hc->fault_cfg.abort_pct.numerator == 100 &&
	      hc->fault_cfg.abort_pct.denominator == 100);
	sk_hcm_config_free(hc);

	/* an unknown optional filter is skipped and counted */
	hc = hcm(WITH_FILTERS("{\"name\":\"x\",\"is_optional\":true,\"typed_config\":{\"@type\":"
			      "\"type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb\"}}," ROUTER));
	CHECK(hc && hc->skipped_optional == 1);
	sk_hcm_config_free(hc);
}

#define FILE_LOG(fields) "{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" ROUTER "],\"access_log\":[{" \
	"\"name\":\"envoy.access_loggers.file\",\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions." \
	"access_loggers.file.v3.FileAccessLog\",\"path\":\"/tmp/a.log\"," fields "}}]}"

/* json_format in its three places: log_format.json_format (typed, omit_empty_values,
 * sort_properties), typed_json_format, and the deprecated json_format (all strings). */
static void test_access_log_json(void)
{
	struct sk_hcm_config *hc = hcm(FILE_LOG(
		"\"log_format\":{\"json_format\":{\"code\":\"%RESPONSE_CODE%\",\"path\":\"%REQ(:PATH)%\","
		"\"up\":{\"host\":\"%UPSTREAM_HOST%\",\"tags\":[\"a\",\"%PROTOCOL%\"]},\"v\":2},"
		"\"omit_empty_values\":true}"));
	const struct sk_log_format *f;

	CHECK(hc && hc->n_access_logs == 1);
	if (hc == NULL || hc->n_access_logs != 1)
		return;
	f = hc->access_logs[0].format;
	CHECK(f->text == NULL && f->json != NULL && f->typed && f->omit_empty_values);
	CHECK(f->json->kind == SK_LOG_JSON_OBJECT && f->json->n == 4);
	if (f->json->n == 4) {
		const struct sk_log_json *up = &f->json->items[2];

		/* keys in the Struct's order */
		CHECK_STR(f->json->items[0].key, "code");
		CHECK_STR(f->json->items[0].format, "%RESPONSE_CODE%");
		CHECK_STR(f->json->items[1].key, "path");
		CHECK(up->kind == SK_LOG_JSON_OBJECT && up->n == 2);
		CHECK_STR(up->key, "up");
		if (up->n == 2) {
			CHECK_STR(up->items[0].format, "%UPSTREAM_HOST%");
			CHECK(up->items[1].kind == SK_LOG_JSON_LIST && up->items[1].n == 2);
			CHECK(up->items[1].n == 2 && up->items[1].items[0].key == NULL);
		}
		CHECK(f->json->items[3].kind == SK_LOG_JSON_NUMBER && f->json->items[3].number == 2);
	}
	sk_hcm_config_free(hc);

	hc = hcm(FILE_LOG("\"log_format\":{\"json_format\":{\"z\":\"%PROTOCOL%\",\"a\":{\"y\":\"1\",\"b\":\"2\"}},"
			  "\"json_format_options\":{\"sort_properties\":true}}"));
	CHECK(hc && hc->n_access_logs == 1);
	if (hc && hc->n_access_logs == 1) {
		f = hc->access_logs[0].format;
		CHECK(f->json->n == 2 && !f->omit_empty_values);
		CHECK_STR(f->json->items[0].key, "a");
		CHECK_STR(f->json->items[0].items[0].key, "b");
		CHECK_STR(f->json->items[1].key, "z");
	}
	sk_hcm_config_free(hc);

	hc = hcm(FILE_LOG("\"json_format\":{\"code\":\"%RESPONSE_CODE%\"}"));
	CHECK(hc && hc->n_access_logs == 1 && hc->access_logs[0].format->json &&
	      !hc->access_logs[0].format->typed);
	sk_hcm_config_free(hc);
	hc = hcm(FILE_LOG("\"typed_json_format\":{\"code\":\"%RESPONSE_CODE%\"}"));
	CHECK(hc && hc->n_access_logs == 1 && hc->access_logs[0].format->typed);
	sk_hcm_config_free(hc);

	/* text formats keep omit_empty_values; an empty format string is Envoy's default */
	hc = hcm(FILE_LOG("\"log_format\":{\"text_format_source\":{\"inline_string\":\"%ROUTE_NAME%\\n\"},"
			  "\"omit_empty_values\":true}"));
	CHECK(hc && hc->access_logs[0].format->omit_empty_values);
	CHECK(hc && hc->access_logs[0].format->text && strcmp(hc->access_logs[0].format->text, "%ROUTE_NAME%\n") == 0);
	sk_hcm_config_free(hc);
	hc = hcm(FILE_LOG("\"format\":\"\""));
	CHECK(hc && hc->access_logs[0].format->text && strstr(hc->access_logs[0].format->text, "%START_TIME%"));
	sk_hcm_config_free(hc);

	/* Envoy's structured formatter takes strings, numbers, objects and lists only */
	hc = hcm(FILE_LOG("\"log_format\":{\"json_format\":{\"ok\":\"%PROTOCOL%\",\"flag\":true}}"));
	CHECK(hc == NULL);
	CHECK_CONTAINS(err, "http_connection_manager.access_log[0]: only string values, nested structs, list "
		       "values and number values");
	hc = hcm(FILE_LOG("\"json_format\":{\"n\":{\"x\":null}}"));
	CHECK(hc == NULL);
	CHECK_CONTAINS(err, "access_log[0]: only string values");
	hc = hcm(FILE_LOG("\"log_format\":{\"text_format_source\":{\"filename\":\"/etc/f\"}}"));
	CHECK(hc == NULL);
	CHECK_CONTAINS(err, "access_log[0].log_format.text_format_source: only inline_string");
}

static void refused(const char *text, const char *want)
{
	struct sk_hcm_config *hc = hcm(text);

	CHECK(hc == NULL);
	CHECK_CONTAINS(err, want);
	sk_hcm_config_free(hc);
}

static void test_refusals(void)
{
	refused("{\"stat_prefix\":\"p\",\"codec_type\":\"HTTP3\"," ROUTES ",\"http_filters\":[" ROUTER "]}",
		"codec_type: HTTP3 is not supported");
	refused("{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" ROUTER "],\"http2_protocol_options\":"
		"{\"initial_stream_window_size\":1000}}", "http2_protocol_options.initial_stream_window_size: 1000 is outside");
	refused("{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" ROUTER "],\"http2_protocol_options\":"
		"{\"allow_connect\":true}}", "http2_protocol_options.allow_connect: extended CONNECT is not supported");
	{
		struct sk_hcm_config *c = hcm("{\"stat_prefix\":\"p\",\"codec_type\":\"HTTP2\"," ROUTES ",\"http_filters\":["
					      ROUTER "],\"http2_protocol_options\":{\"max_concurrent_streams\":7}}");

		CHECK(c != NULL && c->codec == SK_HCM_CODEC_HTTP2);
		CHECK(c != NULL && c->h2.max_concurrent_streams == 7);
		CHECK(c != NULL && c->h2.initial_stream_window_size == 256 * 1024);
		CHECK(c != NULL && c->h2.max_outbound_control_frames == 1000);
		sk_hcm_config_free(c);
	}
	refused("{\"stat_prefix\":\"p\",\"rds\":{\"route_config_name\":\"9080\"},\"http_filters\":[" ROUTER "]}",
		"rds ('9080').config_source: only ads is supported");
	/* rds over ADS: the routes come from the snapshot, by name */
	{
		struct sk_hcm_config *c = hcm("{\"stat_prefix\":\"p\",\"rds\":{\"route_config_name\":\"9080\","
					      "\"config_source\":{\"ads\":{}}},\"http_filters\":[" ROUTER "]}");

		CHECK(c != NULL && c->routes == NULL && c->rds_name && strcmp(c->rds_name, "9080") == 0);
		sk_hcm_config_free(c);
	}
	refused("{\"stat_prefix\":\"p\",\"rds\":{\"config_source\":{\"ads\":{}}},\"http_filters\":[" ROUTER "]}",
		"rds.route_config_name: missing");
	refused("{\"stat_prefix\":\"p\",\"http_filters\":[" ROUTER "]}", "route_config: missing");
	refused("{" ROUTES ",\"http_filters\":[" ROUTER "]}", "stat_prefix: must not be empty");
	refused(WITH_FILTERS(""), "http_filters: envoy.filters.http.router is required");
	refused(WITH_FILTERS(ROUTER "," FILTER("envoy.filters.http.cors", "envoy.extensions.filters.http.cors.v3.Cors")),
		"http_filters[1] (envoy.filters.http.cors): envoy.filters.http.router must be the last filter");
	refused(WITH_FILTERS(FILTER("envoy.filters.http.rbac", "envoy.extensions.filters.http.rbac.v3.RBAC") "," ROUTER),
		"http_filters[0] (envoy.filters.http.rbac): security filter 'envoy.extensions.filters.http.rbac.v3.RBAC'");
	refused(WITH_FILTERS(FILTER("envoy.filters.http.ext_authz", "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz")
			     "," ROUTER), "security filter 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz'");
	refused(WITH_FILTERS(FILTER("envoy.filters.http.jwt_authn",
				    "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication") "," ROUTER),
		"security filter 'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication'");
	refused(WITH_FILTERS(FILTER("my.filter", "envoy.extensions.filters.http.grpc_web.v3.GrpcWeb") "," ROUTER),
		"http_filters[0] (my.filter): HTTP filter 'envoy.extensions.filters.http.grpc_web.v3.GrpcWeb' is not supported");
	refused(WITH_FILTERS("{\"name\":\"envoy.filters.http.fault\",\"typed_config\":{\"@type\":\"type.googleapis.com/"
			     "envoy.extensions.filters.http.fault.v3.HTTPFault\",\"abort\":{\"header_abort\":{}}}}," ROUTER),
		"http_filters[0] (envoy.filters.http.fault): abort: only http_status is supported");
	refused(WITH_FILTERS("{\"name\":\"envoy.filters.http.fault\",\"typed_config\":{\"@type\":\"type.googleapis.com/"
			     "envoy.extensions.filters.http.fault.v3.HTTPFault\",\"delay\":{\"header_delay\":{}}}}," ROUTER),
		"http_filters[0] (envoy.filters.http.fault): delay: only fixed_delay is supported");
	refused(WITH_FILTERS("{\"name\":\"envoy.filters.http.fault\",\"typed_config\":{\"@type\":\"type.googleapis.com/"
			     "envoy.extensions.filters.http.fault.v3.HTTPFault\",\"response_rate_limit\":{\"fixed_limit\":{\"limit_kbps\":1}}}}," ROUTER),
		"response_rate_limit is not supported");
	refused("{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" ROUTER "],\"max_request_headers_kb\":9000}",
		"max_request_headers_kb: 9000 is outside 1..8192");
	refused("{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" ROUTER "],\"upgrade_configs\":[{\"upgrade_type\":"
		"\"CONNECT\"}]}", "upgrade_configs[0]: CONNECT is not supported");
	refused("{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" ROUTER "],\"upgrade_configs\":[{\"upgrade_type\":"
		"\"websocket\"},{\"upgrade_type\":\"WebSocket\"}]}", "upgrade_configs[1]: duplicate upgrade_type");
	{
		struct sk_hcm_config *c = hcm("{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" ROUTER "],"
					      "\"upgrade_configs\":[{\"upgrade_type\":\"WebSocket\"},"
					      "{\"upgrade_type\":\"spdy/3.1\",\"enabled\":false}]}");

		CHECK(c != NULL);
		if (c != NULL) {
			CHECK(c->n_upgrades == 2);
			CHECK_STR(c->upgrades[0].type, "websocket");
			CHECK(c->upgrades[0].enabled);
			CHECK_STR(c->upgrades[1].type, "spdy/3.1");
			CHECK(!c->upgrades[1].enabled);
			sk_hcm_config_free(c);
		}
	}
	refused("{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" ROUTER "],\"forward_client_cert_details\":"
		"9}", "forward_client_cert_details: unknown value 9");
	{
		/* Istio's inbound HCM: append this hop's element with the subject, URI and DNS */
		struct sk_hcm_config *c = hcm("{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" ROUTER "],"
					      "\"forward_client_cert_details\":\"APPEND_FORWARD\","
					      "\"set_current_client_cert_details\":{\"subject\":true,\"dns\":true,\"uri\":true}}");

		CHECK(c != NULL);
		if (c) {
			CHECK(c->xfcc == SK_XFCC_APPEND_FORWARD);
			CHECK(c->xfcc_subject && c->xfcc_dns && c->xfcc_uri && !c->xfcc_cert && !c->xfcc_chain);
		}
		sk_hcm_config_free(c);
		c = hcm("{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" ROUTER "]}");
		CHECK(c && c->xfcc == SK_XFCC_SANITIZE);
		sk_hcm_config_free(c);
	}
	refused("{\"stat_prefix\":\"p\",\"route_config\":{\"virtual_hosts\":[{\"name\":\"b\",\"domains\":[\"*\"],"
		"\"routes\":[{\"match\":{\"safe_regex\":{\"regex\":\"(a)\\\\1\"}},\"route\":{\"cluster\":\"c\"}}]}]},"
		"\"http_filters\":[" ROUTER "]}", "route_config: ");
	refused("{\"stat_prefix\":\"p\"," ROUTES ",\"http_filters\":[" ROUTER "],\"access_log\":[{\"name\":\"g\","
		"\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\"}}]}",
		"access logger 'envoy.extensions.filters.http.router.v3.Router' is not supported");
}

int main(void)
{
	test_defaults();
	test_fields();
	test_istio_shapes();
	test_access_log_json();
	test_refusals();
	return TEST_SUMMARY();
}
