/* pbjson_test: the proto3 JSON converter on real Envoy messages. */
#include <math.h>
#include <stdlib.h>

#include "test.h"
#include "skiff_protos.h"
#include "xds/pbjson.h"
#include "xds/proto_registry.h"

static char err[1024];

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *d, const char *text,
				struct sk_pbjson_decode_opts *o)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	ProtobufCMessage *m;

	if (j == NULL) {
		snprintf(err, sizeof(err), "test JSON: %s", je.text);
		return NULL;
	}
	m = sk_pbjson_decode(d, j, o, err, sizeof(err));
	json_decref(j);
	return m;
}

/* Encodes m compactly with sorted keys, for comparisons. */
static char *encode(const ProtobufCMessage *m, struct sk_pbjson_encode_opts *o)
{
	json_t *j = sk_pbjson_encode(m, o);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

	json_decref(j);
	return s;
}

static void test_names_and_scalars(void)
{
	const ProtobufCMessageDescriptor *d = &envoy__config__cluster__v3__cluster__descriptor;
	Envoy__Config__Cluster__V3__Cluster *c;
	char *s;

	c = (void *)decode(d, "{\"name\":\"a\",\"connectTimeout\":\"0.250s\",\"lb_policy\":\"RING_HASH\","
			      "\"perConnectionBufferLimitBytes\":32768,\"type\":\"STRICT_DNS\"}", NULL);
	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK_STR(c->name, "a");
	CHECK(c->connect_timeout && c->connect_timeout->seconds == 0 &&
	      c->connect_timeout->nanos == 250000000);
	CHECK(c->lb_policy == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__RING_HASH);
	CHECK(c->per_connection_buffer_limit_bytes && c->per_connection_buffer_limit_bytes->value == 32768);
	CHECK(c->type == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__STRICT_DNS);
	s = encode(&c->base, NULL);
	CHECK_STR(s, "{\"connect_timeout\":\"0.250s\",\"lb_policy\":\"RING_HASH\",\"name\":\"a\","
		     "\"per_connection_buffer_limit_bytes\":32768,\"type\":\"STRICT_DNS\"}");
	free(s);
	protobuf_c_message_free_unpacked(&c->base, NULL);

	/* enums by number; integers as strings */
	c = (void *)decode(d, "{\"lb_policy\":1,\"per_connection_buffer_limit_bytes\":\"1024\"}", NULL);
	CHECK(c && c->lb_policy == ENVOY__CONFIG__CLUSTER__V3__CLUSTER__LB_POLICY__LEAST_REQUEST);
	CHECK(c && c->per_connection_buffer_limit_bytes->value == 1024);
	if (c)
		protobuf_c_message_free_unpacked(&c->base, NULL);

	CHECK(decode(d, "{\"lb_policy\":\"FASTEST\"}", NULL) == NULL);
	CHECK_CONTAINS(err, "lb_policy: 'FASTEST' is not a value of enum");
	CHECK(decode(d, "{\"name\":{}}", NULL) == NULL);
	CHECK_CONTAINS(err, "name: expected a string, got an object");
	CHECK(decode(d, "{\"connect_timeout\":5}", NULL) == NULL);
	CHECK_CONTAINS(err, "connect_timeout: expected a duration string");
	CHECK(decode(d, "{\"per_connection_buffer_limit_bytes\":4294967296}", NULL) == NULL);
	CHECK_CONTAINS(err, "per_connection_buffer_limit_bytes: value 4294967296 out of range");
	CHECK(decode(d, "{\"per_connection_buffer_limit_bytes\":-1}", NULL) == NULL);
	CHECK(decode(d, "{\"per_connection_buffer_limit_bytes\":1.5}", NULL) == NULL);
	CHECK(decode(d, "{\"load_assignment\":{\"endpoints\":{}}}", NULL) == NULL);
	CHECK_CONTAINS(err, "load_assignment.endpoints: expected an array, got an object");
	CHECK(decode(d, "[1]", NULL) == NULL);
	CHECK_CONTAINS(err, "expected an object for envoy.config.cluster.v3.Cluster");
	CHECK(decode(d, "{\"ignore_health_on_host_removal\":\"yes\"}", NULL) == NULL);
	CHECK_CONTAINS(err, "expected a boolean");
}

static void test_int64_and_huge_numbers(void)
{
	const ProtobufCMessageDescriptor *d = &envoy__config__route__v3__retry_policy__descriptor;
	const ProtobufCMessageDescriptor *b = &envoy__config__bootstrap__v3__bootstrap__descriptor;
	Envoy__Config__Route__V3__RetryPolicy *r;
	Envoy__Config__Bootstrap__V3__Bootstrap *bs;
	char *s;

	r = (void *)decode(d, "{\"host_selection_retry_max_attempts\":\"5\"}", NULL);
	CHECK(r && r->host_selection_retry_max_attempts == 5);
	s = r ? encode(&r->base, NULL) : NULL;
	CHECK_STR(s, "{\"host_selection_retry_max_attempts\":\"5\"}");
	free(s);
	if (r)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	r = (void *)decode(d, "{\"host_selection_retry_max_attempts\":-9223372036854775808}", NULL);
	CHECK(r && r->host_selection_retry_max_attempts == INT64_MIN);
	if (r)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	CHECK(decode(d, "{\"host_selection_retry_max_attempts\":\"9223372036854775808\"}", NULL) == NULL);
	CHECK_CONTAINS(err, "not an integer in range");
	CHECK(decode(d, "{\"host_selection_retry_max_attempts\":\"12abc\"}", NULL) == NULL);

	/* uint64 beyond int64 only fits as a string */
	bs = (void *)decode(b, "{\"stats_server_version_override\":\"18446744073709551615\"}", NULL);
	CHECK(bs && bs->stats_server_version_override &&
	      bs->stats_server_version_override->value == UINT64_MAX);
	s = bs ? encode(&bs->base, NULL) : NULL;
	CHECK_STR(s, "{\"stats_server_version_override\":\"18446744073709551615\"}");
	free(s);
	if (bs)
		protobuf_c_message_free_unpacked(&bs->base, NULL);
	CHECK(decode(b, "{\"stats_server_version_override\":\"18446744073709551616\"}", NULL) == NULL);
	CHECK(decode(b, "{\"stats_server_version_override\":\"-1\"}", NULL) == NULL);
	CHECK_CONTAINS(err, "negative for an unsigned field");
}

static void test_bytes(void)
{
	const ProtobufCMessageDescriptor *d = &envoy__config__core__v3__data_source__descriptor;
	Envoy__Config__Core__V3__DataSource *ds;
	char *s;

	ds = (void *)decode(d, "{\"inline_bytes\":\"aGVsbG8=\"}", NULL);
	CHECK(ds && ds->inline_bytes.len == 5 && memcmp(ds->inline_bytes.data, "hello", 5) == 0);
	s = ds ? encode(&ds->base, NULL) : NULL;
	CHECK_STR(s, "{\"inline_bytes\":\"aGVsbG8=\"}");
	free(s);
	if (ds)
		protobuf_c_message_free_unpacked(&ds->base, NULL);
	/* URL-safe alphabet and missing padding are accepted */
	ds = (void *)decode(d, "{\"inlineBytes\":\"-_8\"}", NULL);
	CHECK(ds && ds->inline_bytes.len == 2 && ds->inline_bytes.data[0] == 0xfb &&
	      ds->inline_bytes.data[1] == 0xff);
	if (ds)
		protobuf_c_message_free_unpacked(&ds->base, NULL);
	CHECK(decode(d, "{\"inline_bytes\":\"a$bc\"}", NULL) == NULL);
	CHECK_CONTAINS(err, "inline_bytes: invalid base64");
	CHECK(decode(d, "{\"inline_bytes\":\"abcde\"}", NULL) == NULL);
	/* a oneof takes one member */
	CHECK(decode(d, "{\"inline_bytes\":\"aGk=\",\"filename\":\"/x\"}", NULL) == NULL);
	CHECK_CONTAINS(err, "only one of a oneof may be set");
}

static void test_duration_timestamp(void)
{
	const ProtobufCMessageDescriptor *d = &google__protobuf__duration__descriptor;
	const ProtobufCMessageDescriptor *t = &google__protobuf__timestamp__descriptor;
	Google__Protobuf__Duration *du;
	Google__Protobuf__Timestamp *ts;
	int64_t sec;
	int32_t ns;
	char buf[64], *s;

	CHECK(sk_pbjson_parse_duration("5s", &sec, &ns) == 0 && sec == 5 && ns == 0);
	CHECK(sk_pbjson_parse_duration("0.250s", &sec, &ns) == 0 && sec == 0 && ns == 250000000);
	CHECK(sk_pbjson_parse_duration("-1.5s", &sec, &ns) == 0 && sec == -1 && ns == -500000000);
	CHECK(sk_pbjson_parse_duration("1.000000001s", &sec, &ns) == 0 && ns == 1);
	CHECK(sk_pbjson_parse_duration("5", &sec, &ns) < 0);
	CHECK(sk_pbjson_parse_duration("5ms", &sec, &ns) < 0);
	CHECK(sk_pbjson_parse_duration("1.0000000001s", &sec, &ns) < 0);
	CHECK(sk_pbjson_parse_duration("s", &sec, &ns) < 0);
	CHECK(sk_pbjson_parse_duration("999999999999s", &sec, &ns) < 0);
	sk_pbjson_format_duration(0, 250000000, buf, sizeof(buf));
	CHECK_STR(buf, "0.250s");
	sk_pbjson_format_duration(1, 1000, buf, sizeof(buf));
	CHECK_STR(buf, "1.000001s");
	sk_pbjson_format_duration(-3, 0, buf, sizeof(buf));
	CHECK_STR(buf, "-3s");

	du = (void *)decode(d, "\"2.5s\"", NULL);
	CHECK(du && du->seconds == 2 && du->nanos == 500000000);
	s = du ? encode(&du->base, NULL) : NULL;
	CHECK_STR(s, "\"2.500s\"");
	free(s);
	if (du)
		protobuf_c_message_free_unpacked(&du->base, NULL);

	ts = (void *)decode(t, "\"2022-03-04T10:22:24Z\"", NULL);
	CHECK(ts && ts->seconds == 1646389344 && ts->nanos == 0);
	s = ts ? encode(&ts->base, NULL) : NULL;
	CHECK_STR(s, "\"2022-03-04T10:22:24Z\"");
	free(s);
	if (ts)
		protobuf_c_message_free_unpacked(&ts->base, NULL);
	ts = (void *)decode(t, "\"2022-03-04T12:22:24.5+02:00\"", NULL);
	CHECK(ts && ts->seconds == 1646389344 && ts->nanos == 500000000);
	s = ts ? encode(&ts->base, NULL) : NULL;
	CHECK_STR(s, "\"2022-03-04T10:22:24.500Z\"");
	free(s);
	if (ts)
		protobuf_c_message_free_unpacked(&ts->base, NULL);
	CHECK(decode(t, "\"yesterday\"", NULL) == NULL);
	CHECK_CONTAINS(err, "invalid timestamp");
}

static void test_struct_and_wrappers(void)
{
	const ProtobufCMessageDescriptor *n = &envoy__config__core__v3__node__descriptor;
	const ProtobufCMessageDescriptor *l = &envoy__config__listener__v3__listener__descriptor;
	ProtobufCMessage *m;
	char *s;

	m = decode(n, "{\"id\":\"x\",\"metadata\":{\"PORT\":15090,\"F\":1.5,\"L\":[1,\"a\",true,null,{\"k\":{}}],"
		      "\"N\":null,\"B\":false}}", NULL);
	CHECK(m != NULL);
	s = m ? encode(m, NULL) : NULL;
	CHECK_STR(s, "{\"id\":\"x\",\"metadata\":{\"B\":false,\"F\":1.5,\"L\":[1,\"a\",true,null,"
		     "{\"k\":{}}],\"N\":null,\"PORT\":15090}}");
	free(s);
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);

	m = decode(l, "{\"use_original_dst\":true,\"per_connection_buffer_limit_bytes\":\"0\","
		      "\"bind_to_port\":false}", NULL);
	CHECK(m != NULL);
	s = m ? encode(m, NULL) : NULL;
	/* wrappers keep their presence even when they hold the default value */
	CHECK_STR(s, "{\"bind_to_port\":false,\"per_connection_buffer_limit_bytes\":0,"
		     "\"use_original_dst\":true}");
	free(s);
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	CHECK(decode(l, "{\"use_original_dst\":{\"value\":true}}", NULL) == NULL);
	CHECK_CONTAINS(err, "use_original_dst: expected a boolean");
}

static void test_any(void)
{
	const ProtobufCMessageDescriptor *f = &envoy__config__listener__v3__filter__descriptor;
	struct sk_pbjson_decode_opts lenient = {.allow_unknown = true};
	struct sk_pbjson_encode_opts eo = {0};
	Envoy__Config__Listener__V3__Filter *flt;
	ProtobufCMessage *inner;
	char *s;

	flt = (void *)decode(f, "{\"name\":\"envoy.filters.network.tcp_proxy\",\"typed_config\":{"
				"\"stat_prefix\":\"s\",\"@type\":\"type.googleapis.com/"
				"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\",\"cluster\":\"c\"}}", NULL);
	CHECK(flt && flt->typed_config);
	if (flt && flt->typed_config) {
		inner = protobuf_c_message_unpack(
			&envoy__extensions__filters__network__tcp_proxy__v3__tcp_proxy__descriptor, NULL,
			flt->typed_config->value.len, flt->typed_config->value.data);
		CHECK(inner != NULL);
		CHECK_STR(((Envoy__Extensions__Filters__Network__TcpProxy__V3__TcpProxy *)inner)->stat_prefix, "s");
		protobuf_c_message_free_unpacked(inner, NULL);
		s = encode(&flt->base, NULL);
		CHECK_STR(s, "{\"name\":\"envoy.filters.network.tcp_proxy\",\"typed_config\":{\"@type\":"
			     "\"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\","
			     "\"cluster\":\"c\",\"stat_prefix\":\"s\"}}");
		free(s);
	}
	if (flt)
		protobuf_c_message_free_unpacked(&flt->base, NULL);

	/* an unknown field inside an Any names the whole path */
	CHECK(decode(f, "{\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.filters."
			"network.tcp_proxy.v3.TcpProxy\",\"clusterr\":\"c\"}}", NULL) == NULL);
	CHECK_STR(err, "typed_config.clusterr: unknown field");

	/* unknown type: an error when strict, counted when lenient */
	CHECK(decode(f, "{\"typed_config\":{\"@type\":\"type.googleapis.com/acme.Widget\",\"x\":1}}", NULL) == NULL);
	CHECK_CONTAINS(err, "typed_config: unknown type 'type.googleapis.com/acme.Widget'");
	flt = (void *)decode(f, "{\"typed_config\":{\"@type\":\"type.googleapis.com/acme.Widget\",\"x\":1}}",
			     &lenient);
	CHECK(flt != NULL && lenient.unknown_fields == 1);
	if (flt)
		protobuf_c_message_free_unpacked(&flt->base, NULL);

	/* an unknown type given as raw bytes is kept as raw bytes, and written back so */
	flt = (void *)decode(f, "{\"typed_config\":{\"@type\":\"type.googleapis.com/acme.Widget\","
				"\"value\":\"CAE=\"}}", NULL);
	CHECK(flt && flt->typed_config && flt->typed_config->value.len == 2);
	s = flt ? encode(&flt->base, &eo) : NULL;
	CHECK_STR(s, "{\"typed_config\":{\"@type\":\"type.googleapis.com/acme.Widget\",\"value\":\"CAE=\"}}");
	CHECK(eo.unknown_anys == 1);
	free(s);
	if (flt)
		protobuf_c_message_free_unpacked(&flt->base, NULL);

	/* a well-known type inside an Any uses "value" */
	inner = decode(&google__protobuf__any__descriptor,
		       "{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"1s\"}", NULL);
	s = inner ? encode(inner, NULL) : NULL;
	CHECK_STR(s, "{\"@type\":\"type.googleapis.com/google.protobuf.Duration\",\"value\":\"1s\"}");
	free(s);
	if (inner)
		protobuf_c_message_free_unpacked(inner, NULL);
	CHECK(decode(&google__protobuf__any__descriptor, "{\"value\":\"x\"}", NULL) == NULL);
	CHECK_CONTAINS(err, "Any without '@type'");
}

static void test_maps_and_unknown(void)
{
	const ProtobufCMessageDescriptor *d = &envoy__config__cluster__v3__cluster__descriptor;
	struct sk_pbjson_decode_opts lenient = {.allow_unknown = true};
	Envoy__Config__Cluster__V3__Cluster *c;
	char *s;

	c = (void *)decode(d, "{\"typed_extension_protocol_options\":{\"envoy.extensions.upstreams.http.v3."
			      "HttpProtocolOptions\":{\"@type\":\"type.googleapis.com/envoy.extensions.upstreams."
			      "http.v3.HttpProtocolOptions\",\"explicit_http_config\":{\"http2_protocol_options\":{}}}}}",
			   NULL);
	CHECK(c && c->n_typed_extension_protocol_options == 1);
	s = c ? encode(&c->base, NULL) : NULL;
	CHECK_STR(s, "{\"typed_extension_protocol_options\":{\"envoy.extensions.upstreams.http.v3."
		     "HttpProtocolOptions\":{\"@type\":\"type.googleapis.com/envoy.extensions.upstreams."
		     "http.v3.HttpProtocolOptions\",\"explicit_http_config\":{\"http2_protocol_options\":{}}}}}");
	free(s);
	if (c)
		protobuf_c_message_free_unpacked(&c->base, NULL);

	CHECK(decode(d, "{\"name\":\"a\",\"load_assignment\":{\"endpoints\":[{},{\"bogus\":1}]}}", NULL) == NULL);
	CHECK_STR(err, "load_assignment.endpoints[1].bogus: unknown field");
	c = (void *)decode(d, "{\"name\":\"a\",\"bogus\":1,\"load_assignment\":{\"endpoints\":[{\"x\":2}]}}",
			   &lenient);
	CHECK(c && lenient.unknown_fields == 2);
	CHECK(c && c->load_assignment && c->load_assignment->n_endpoints == 1);
	if (c)
		protobuf_c_message_free_unpacked(&c->base, NULL);
	/* camelCase with an underscore is not a JSON name */
	CHECK(decode(d, "{\"connect_Timeout\":\"1s\"}", NULL) == NULL);
}

static void test_depth_limit(void)
{
	static char text[8192];
	char *p = text;
	int i;

	/* A Struct nested 150 objects deep, beyond SK_PBJSON_MAX_DEPTH. */
	p += sprintf(p, "{\"metadata\":");
	for (i = 0; i < 150; i++)
		p += sprintf(p, "{\"a\":");
	p += sprintf(p, "1");
	for (i = 0; i < 150; i++)
		*p++ = '}';
	sprintf(p, "}");
	CHECK(decode(&envoy__config__core__v3__node__descriptor, text, NULL) == NULL);
	CHECK_CONTAINS(err, "nesting deeper than 100 levels");
}

static void test_merge(void)
{
	const ProtobufCMessageDescriptor *d = &envoy__config__cluster__v3__cluster__descriptor;
	ProtobufCMessage *a = decode(d, "{\"name\":\"a\",\"connect_timeout\":\"1s\",\"dns_lookup_family\":"
				       "\"V4_ONLY\",\"transport_socket_matches\":[{\"name\":\"m1\"}]}", NULL);
	ProtobufCMessage *b = decode(d, "{\"connect_timeout\":\"2s\",\"transport_socket_matches\":"
				       "[{\"name\":\"m2\"}]}", NULL);
	ProtobufCMessage *m = (a && b) ? sk_pbjson_merge(a, b) : NULL;
	char *s = m ? encode(m, NULL) : NULL;

	/* scalars overwrite, repeated fields append, unset fields keep the base */
	CHECK_STR(s, "{\"connect_timeout\":\"2s\",\"dns_lookup_family\":\"V4_ONLY\",\"name\":\"a\","
		     "\"transport_socket_matches\":[{\"name\":\"m1\"},{\"name\":\"m2\"}]}");
	free(s);
	if (a)
		protobuf_c_message_free_unpacked(a, NULL);
	if (b)
		protobuf_c_message_free_unpacked(b, NULL);
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

static void test_redaction(void)
{
	ProtobufCMessage *m = decode(&envoy__extensions__transport_sockets__tls__v3__secret__descriptor,
				     "{\"name\":\"default\",\"tls_certificate\":{\"certificate_chain\":"
				     "{\"inline_string\":\"CERT\"},\"private_key\":{\"inline_bytes\":\"S0VZ\"}}}",
				     NULL);
	struct sk_pbjson_encode_opts eo = {.redact = true};
	char *s = m ? encode(m, &eo) : NULL;

	CHECK_STR(s, "{\"name\":\"default\",\"tls_certificate\":{\"certificate_chain\":{\"inline_string\":"
		     "\"CERT\"},\"private_key\":{\"inline_bytes\":\"W3JlZGFjdGVkXQ==\"}}}");
	free(s);
	s = m ? encode(m, NULL) : NULL;
	CHECK_CONTAINS(s, "S0VZ");
	free(s);
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

static void test_registry(void)
{
	CHECK(sk_proto_registry_find("envoy.config.cluster.v3.Cluster") ==
	      &envoy__config__cluster__v3__cluster__descriptor);
	CHECK(sk_proto_registry_find_url("type.googleapis.com/envoy.config.listener.v3.Listener") ==
	      &envoy__config__listener__v3__listener__descriptor);
	CHECK(sk_proto_registry_find_url("type.googleapis.com/stats.PluginConfig") != NULL);
	CHECK(sk_proto_registry_find_url("type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange") != NULL);
	CHECK(sk_proto_registry_find_url("type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig") != NULL);
	CHECK(sk_proto_registry_find_url("type.googleapis.com/udpa.type.v1.TypedStruct") != NULL);
	CHECK(sk_proto_registry_find("acme.Widget") == NULL);
	CHECK(sk_proto_registry_count() > 100);
}

int main(void)
{
	test_names_and_scalars();
	test_int64_and_huge_numbers();
	test_bytes();
	test_duration_timestamp();
	test_struct_and_wrappers();
	test_any();
	test_maps_and_unknown();
	test_depth_limit();
	test_merge();
	test_redaction();
	test_registry();
	return TEST_SUMMARY();
}
