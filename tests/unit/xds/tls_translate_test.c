/* tls_translate_test: Upstream/DownstreamTlsContext and SDS Secrets -> struct
 * sk_tls_context_config / sk_tls_secret: Istio's exact contexts (the conformance cluster and
 * bootstrap, ISTIO_CONTRACT.md's inbound chain), Envoy's defaults, SAN matcher semantics, the
 * combined validation merge, and refusals that name the field. */
#include <errno.h>
#include <stdlib.h>

#include "test.h"
#include "xds/pbjson.h"
#include "xds/translate/tls.h"

static char err[1024];

/* JSON with ' for " (readable literals). */
static json_t *jload(const char *text)
{
	char *s = strdup(text);
	json_t *j;

	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(s, 0, NULL);
	free(s);
	return j;
}

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *d, json_t *j)
{
	ProtobufCMessage *m = j ? sk_pbjson_decode(d, j, NULL, err, sizeof(err)) : NULL;

	if (m == NULL)
		fprintf(stderr, "test input: %s\n", j ? err : "bad JSON");
	return m;
}

/* A TransportSocket whose typed_config is `type` with the given body, translated. rc is
 * the translation's result; err holds its message. */
static struct sk_tls_context_config *socket_of(const char *type, const char *body, bool upstream, int *rc)
{
	char text[8192];
	json_t *j;
	ProtobufCMessage *m;
	struct sk_tls_context_config *cfg = NULL;

	snprintf(text, sizeof(text),
		 "{'name':'envoy.transport_sockets.tls','typed_config':{'@type':'type.googleapis.com/"
		 "envoy.extensions.transport_sockets.tls.v3.%s'%s%s}}",
		 type, body[0] ? "," : "", body);
	j = jload(text);
	m = decode(&envoy__config__core__v3__transport_socket__descriptor, j);
	json_decref(j);
	*rc = -1;
	err[0] = '\0';
	if (m != NULL) {
		*rc = sk_tls_transport_socket_translate((void *)m, upstream, &cfg, err, sizeof(err));
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return cfg;
}

static struct sk_tls_context_config *up(const char *body)
{
	int rc;

	return socket_of("UpstreamTlsContext", body, true, &rc);
}

static struct sk_tls_context_config *down(const char *body)
{
	int rc;

	return socket_of("DownstreamTlsContext", body, false, &rc);
}

static struct sk_tls_secret *secret(const char *text)
{
	json_t *j = jload(text);
	ProtobufCMessage *m = decode(&envoy__extensions__transport_sockets__tls__v3__secret__descriptor, j);
	struct sk_tls_secret *s = NULL;

	json_decref(j);
	err[0] = '\0';
	if (m != NULL) {
		s = sk_tls_secret_new((void *)m, err, sizeof(err));
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return s;
}

/* Istio's SDS config source (pilot-agent's sds-grpc cluster). */
#define ISTIO_SDS(name)                                                                                   \
	"{'name':'" name "','sds_config':{'api_config_source':{'api_type':'GRPC','grpc_services':[{'envoy_grpc':" \
	"{'cluster_name':'sds-grpc'}}],'set_node_on_first_message_only':true,'transport_api_version':'V3'},"     \
	"'initial_fetch_timeout':'0s','resource_api_version':'V3'}}"

/* ISTIO_CONTRACT.md's outbound context (reviews v1). */
#define ISTIO_UPSTREAM                                                                                     \
	"'common_tls_context':{'tls_params':{'tls_minimum_protocol_version':'TLSv1_2',"                        \
	"'tls_maximum_protocol_version':'TLSv1_3'},'alpn_protocols':['istio-peer-exchange','istio'],"          \
	"'tls_certificate_sds_secret_configs':[" ISTIO_SDS("default") "],'combined_validation_context':{"       \
	"'default_validation_context':{'match_subject_alt_names':[{'exact':'spiffe://cluster.local/ns/default/" \
	"sa/bookinfo-reviews'}]},'validation_context_sds_secret_config':" ISTIO_SDS("ROOTCA") "}},"             \
	"'sni':'outbound_.9080_.v1_.reviews.default.svc.cluster.local'"

/* ISTIO_CONTRACT.md's inbound context: client certificate required, any identity of the
 * trust domain, h2 and http/1.1, Istio's server cipher list. */
#define ISTIO_DOWNSTREAM                                                                                     \
	"'common_tls_context':{'tls_params':{'tls_minimum_protocol_version':'TLSv1_2',"                          \
	"'tls_maximum_protocol_version':'TLSv1_3','cipher_suites':['ECDHE-ECDSA-AES256-GCM-SHA384',"             \
	"'ECDHE-RSA-AES256-GCM-SHA384','ECDHE-ECDSA-AES128-GCM-SHA256','ECDHE-RSA-AES128-GCM-SHA256',"           \
	"'AES256-GCM-SHA384','AES128-GCM-SHA256']},'alpn_protocols':['h2','http/1.1'],"                          \
	"'tls_certificate_sds_secret_configs':[" ISTIO_SDS("default") "],'combined_validation_context':{"         \
	"'default_validation_context':{'match_subject_alt_names':[{'prefix':'spiffe://cluster.local/'}]},"       \
	"'validation_context_sds_secret_config':" ISTIO_SDS("ROOTCA") "}},'require_client_certificate':true"

static void check_istio_sds(const struct sk_sds_ref *r, const char *name)
{
	CHECK_STR(r->name, name);
	CHECK(r->source == SK_SDS_GRPC);
	CHECK_STR(r->cluster, "sds-grpc");
	CHECK(!r->delta);
	CHECK(r->initial_fetch_timeout == 0.0); /* "0s": wait forever */
}

static void test_istio_upstream(void)
{
	struct sk_tls_context_config *cfg = up(ISTIO_UPSTREAM);

	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK(!cfg->server);
	CHECK(cfg->min_version == SK_TLS_VERSION_1_2 && cfg->max_version == SK_TLS_VERSION_1_3);
	CHECK(cfg->cipher_list == NULL && cfg->curves == NULL); /* Envoy's defaults */
	CHECK(cfg->n_alpn == 2);
	if (cfg->n_alpn == 2) {
		CHECK_STR(cfg->alpn[0], "istio-peer-exchange");
		CHECK_STR(cfg->alpn[1], "istio");
	}
	CHECK(!cfg->has_cert && cfg->has_cert_sds);
	check_istio_sds(&cfg->cert_sds, "default");
	CHECK(cfg->has_validation && cfg->has_validation_sds);
	check_istio_sds(&cfg->validation_sds, "ROOTCA");
	CHECK(cfg->validation.trusted_ca.kind == SK_DATA_NONE); /* comes from ROOTCA */
	CHECK(cfg->validation.n_sans == 1);
	if (cfg->validation.n_sans == 1) {
		const struct sk_san_matcher *m = &cfg->validation.sans[0];

		CHECK(m->type == SK_SAN_ANY && m->kind == SK_SAN_MATCH_EXACT);
		CHECK_STR(m->value, "spiffe://cluster.local/ns/default/sa/bookinfo-reviews");
		CHECK(sk_san_matcher_match(m, SK_SAN_URI, m->value, m->len));
		CHECK(!sk_san_matcher_match(m, SK_SAN_URI, "spiffe://cluster.local/ns/default/sa/other", 41));
	}
	CHECK(!cfg->validation.allow_expired);
	CHECK_STR(cfg->sni, "outbound_.9080_.v1_.reviews.default.svc.cluster.local");
	CHECK(!cfg->require_client_certificate);
	sk_tls_context_config_free(cfg);
}

static void test_istio_downstream(void)
{
	struct sk_tls_context_config *cfg = down(ISTIO_DOWNSTREAM);

	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK(cfg->server);
	CHECK(cfg->require_client_certificate);
	CHECK(cfg->min_version == SK_TLS_VERSION_1_2 && cfg->max_version == SK_TLS_VERSION_1_3);
	CHECK_STR(cfg->cipher_list, "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
				    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:AES256-GCM-SHA384:"
				    "AES128-GCM-SHA256");
	CHECK(cfg->n_alpn == 2 && strcmp(cfg->alpn[0], "h2") == 0 && strcmp(cfg->alpn[1], "http/1.1") == 0);
	check_istio_sds(&cfg->cert_sds, "default");
	check_istio_sds(&cfg->validation_sds, "ROOTCA");
	CHECK(cfg->validation.n_sans == 1);
	if (cfg->validation.n_sans == 1) {
		const struct sk_san_matcher *m = &cfg->validation.sans[0];

		CHECK(m->kind == SK_SAN_MATCH_PREFIX);
		CHECK(sk_san_matcher_match(m, SK_SAN_URI, "spiffe://cluster.local/ns/a/sa/b", 32));
		CHECK(!sk_san_matcher_match(m, SK_SAN_URI, "spiffe://evil.local/ns/a/sa/b", 29));
	}
	CHECK(cfg->sni == NULL);
	sk_tls_context_config_free(cfg);
}

/* The first json object at a '.'-separated path of keys and [indexes]. */
static json_t *dig(json_t *j, const char *path)
{
	char key[128];

	while (j && *path) {
		size_t n = strcspn(path, ".[");

		if (n > 0) {
			snprintf(key, sizeof(key), "%.*s", (int)n, path);
			j = json_object_get(j, key);
			path += n;
		} else if (*path == '[') {
			j = json_array_get(j, strtoul(path + 1, (char **)&path, 10));
			path++; /* ']' */
		}
		if (*path == '.')
			path++;
	}
	return j;
}

/* The real cluster istiod sent (conformance/istio/configdump/http_config.json). */
static void test_conformance_cluster(void)
{
	char path[1024];
	json_t *root, *cl = NULL;
	struct sk_pbjson_decode_opts opts = {.allow_unknown = true};
	ProtobufCMessage *m = NULL;
	size_t i;

	snprintf(path, sizeof(path), "%s/istio/configdump/http_config.json", sk_test_conformance_dir());
	root = json_load_file(path, 0, NULL);
	if (root == NULL) {
		SKIP("no %s", path);
		return;
	}
	for (i = 0; !cl && i < json_array_size(json_object_get(root, "configs")); i++)
		cl = dig(json_array_get(json_object_get(root, "configs"), i), "dynamic_active_clusters[0].cluster");
	CHECK(cl != NULL);
	if (cl != NULL) {
		cl = json_deep_copy(cl);
		json_object_del(cl, "@type");
		m = sk_pbjson_decode(&envoy__config__cluster__v3__cluster__descriptor, cl, &opts, err, sizeof(err));
		json_decref(cl);
	}
	CHECK(m != NULL);
	if (m != NULL) {
		const Envoy__Config__Cluster__V3__Cluster *c = (void *)m;
		struct sk_tls_context_config *cfg = NULL;

		CHECK(c->n_transport_socket_matches == 2);
		for (i = 0; i < c->n_transport_socket_matches; i++) {
			const Envoy__Config__Cluster__V3__Cluster__TransportSocketMatch *tm = c->transport_socket_matches[i];
			int rc = sk_tls_transport_socket_translate(tm->transport_socket, true, &cfg, err, sizeof(err));

			CHECK(rc == 0);
			if (strcmp(tm->name, "tlsMode-disabled") == 0) {
				CHECK(cfg == NULL); /* raw_buffer */
				continue;
			}
			CHECK_STR(tm->name, "tlsMode-istio");
			CHECK(cfg != NULL);
			if (cfg == NULL) {
				fprintf(stderr, "  %s\n", err);
				continue;
			}
			CHECK_STR(cfg->sni, "outbound_.9080_.v1_.productpage.default.svc.cluster.local");
			CHECK(cfg->min_version == SK_TLS_VERSION_1_2 && cfg->max_version == SK_TLS_VERSION_1_3);
			CHECK(cfg->n_alpn == 2 && strcmp(cfg->alpn[0], "istio-peer-exchange") == 0);
			check_istio_sds(&cfg->cert_sds, "default");
			check_istio_sds(&cfg->validation_sds, "ROOTCA");
			CHECK(cfg->validation.n_sans == 2);
			if (cfg->validation.n_sans == 2) {
				CHECK_STR(cfg->validation.sans[0].value,
					  "spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
				CHECK_STR(cfg->validation.sans[1].value, "spiffe://cluster.local/ns/default/sa/default");
			}
			sk_tls_context_config_free(cfg);
			cfg = NULL;
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
	json_decref(root);
}

/* pilot-agent's own mTLS listeners in the bootstrap (secure_metrics_golden.json). */
static void test_conformance_bootstrap(void)
{
	char path[1024];
	json_t *root, *ts;
	ProtobufCMessage *m;

	snprintf(path, sizeof(path), "%s/istio/bootstrap/secure_metrics_golden.json", sk_test_conformance_dir());
	root = json_load_file(path, 0, NULL);
	if (root == NULL) {
		SKIP("no %s", path);
		return;
	}
	ts = dig(root, "static_resources.listeners[1].filter_chains[0].transport_socket");
	CHECK(ts != NULL);
	m = ts ? decode(&envoy__config__core__v3__transport_socket__descriptor, ts) : NULL;
	if (m != NULL) {
		struct sk_tls_context_config *cfg = NULL;

		CHECK(sk_tls_transport_socket_translate((void *)m, false, &cfg, err, sizeof(err)) == 0);
		CHECK(cfg != NULL);
		if (cfg != NULL) {
			CHECK(cfg->server && cfg->require_client_certificate);
			CHECK(cfg->max_version == SK_TLS_VERSION_1_3); /* a server's default */
			CHECK(cfg->has_validation && cfg->validation.n_sans == 0);
			CHECK(cfg->cert_sds.source == SK_SDS_GRPC && cfg->cert_sds.initial_fetch_timeout == 15.0);
			CHECK_STR(cfg->validation_sds.name, "ROOTCA");
		}
		sk_tls_context_config_free(cfg);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	json_decref(root);
}

static void test_defaults_and_sources(void)
{
	struct sk_tls_context_config *cfg;

	cfg = up("");
	CHECK(cfg != NULL);
	if (cfg) {
		/* Envoy: TLS 1.2 minimum; a client's maximum is 1.2 unless told */
		CHECK(cfg->min_version == SK_TLS_VERSION_1_2 && cfg->max_version == SK_TLS_VERSION_1_2);
		CHECK(!cfg->has_cert && !cfg->has_cert_sds && !cfg->has_validation && !cfg->has_validation_sds);
		CHECK(cfg->sni == NULL && cfg->n_alpn == 0);
		sk_tls_context_config_free(cfg);
	}

	/* every DataSource form; inline_bytes is base64 in JSON */
	cfg = down("'common_tls_context':{'tls_certificates':[{'certificate_chain':{'filename':'/etc/c.pem'},"
		   "'private_key':{'inline_bytes':'LS0tLS1CRUdJTg=='},'password':{'environment_variable':'PW'}}],"
		   "'validation_context':{'trusted_ca':{'inline_string':'CA PEM'},'crl':{'filename':'/etc/crl.pem'},"
		   "'allow_expired_certificate':true,'only_verify_leaf_cert_crl':true,'max_verify_depth':3}},"
		   "'disable_stateless_session_resumption':true,'disable_stateful_session_resumption':true,"
		   "'session_timeout':'300s','prefer_client_ciphers':true");
	CHECK(cfg != NULL);
	if (cfg) {
		CHECK(cfg->max_version == SK_TLS_VERSION_1_3);
		CHECK(cfg->has_cert && cfg->cert.chain.kind == SK_DATA_FILE);
		CHECK_STR(cfg->cert.chain.name, "/etc/c.pem");
		CHECK(cfg->cert.key.kind == SK_DATA_INLINE && cfg->cert.key.len == 10);
		CHECK_STR((char *)cfg->cert.key.data, "-----BEGIN");
		CHECK(cfg->cert.password.kind == SK_DATA_ENV);
		CHECK_STR(cfg->cert.password.name, "PW");
		CHECK(cfg->validation.trusted_ca.kind == SK_DATA_INLINE);
		CHECK_STR((char *)cfg->validation.trusted_ca.data, "CA PEM");
		CHECK(cfg->validation.crl.kind == SK_DATA_FILE);
		CHECK(cfg->validation.allow_expired && cfg->validation.only_verify_leaf_cert_crl);
		CHECK(cfg->validation.max_verify_depth == 3);
		CHECK(cfg->disable_stateless_resumption && cfg->disable_stateful_resumption);
		CHECK(cfg->session_timeout == 300.0 && cfg->prefer_client_ciphers);
		CHECK(!cfg->require_client_certificate);
		sk_tls_context_config_free(cfg);
	}

	/* SDS sources: ADS, self, none (static), delta gRPC, Envoy's 15 s initial fetch timeout */
	cfg = down("'common_tls_context':{'tls_certificate_sds_secret_configs':[{'name':'a','sds_config':{'ads':{}}}],"
		   "'validation_context_sds_secret_config':{'name':'b'}}");
	CHECK(cfg != NULL);
	if (cfg) {
		CHECK(cfg->cert_sds.source == SK_SDS_ADS && cfg->cert_sds.initial_fetch_timeout == 15.0);
		CHECK(!cfg->has_validation && cfg->has_validation_sds);
		CHECK(cfg->validation_sds.source == SK_SDS_STATIC);
		CHECK_STR(cfg->validation_sds.name, "b");
		sk_tls_context_config_free(cfg);
	}
	cfg = up("'common_tls_context':{'tls_certificate_sds_secret_configs':[{'name':'a','sds_config':"
		 "{'self':{}}}],'validation_context_sds_secret_config':{'name':'b','sds_config':{'api_config_source':"
		 "{'api_type':'DELTA_GRPC','grpc_services':[{'envoy_grpc':{'cluster_name':'sds'}}]}}}}");
	CHECK(cfg != NULL);
	if (cfg) {
		CHECK(cfg->cert_sds.source == SK_SDS_ADS);
		CHECK(cfg->validation_sds.source == SK_SDS_GRPC && cfg->validation_sds.delta);
		sk_tls_context_config_free(cfg);
	}

	/* BoringSSL equal-preference groups are flattened; curves and signature algorithms kept */
	cfg = up("'common_tls_context':{'tls_params':{'cipher_suites':['[ECDHE-ECDSA-AES128-GCM-SHA256|"
		 "ECDHE-ECDSA-CHACHA20-POLY1305]','ECDHE-RSA-AES256-GCM-SHA384'],'ecdh_curves':['X25519','P-256'],"
		 "'signature_algorithms':['ecdsa_secp256r1_sha256','rsa_pss_rsae_sha256']}}");
	CHECK(cfg != NULL);
	if (cfg) {
		CHECK_STR(cfg->cipher_list,
			  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384");
		CHECK_STR(cfg->curves, "X25519:P-256");
		CHECK_STR(cfg->sigalgs, "ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256");
		sk_tls_context_config_free(cfg);
	}

	/* accepted without effect */
	cfg = up("'max_session_keys':5,'enforce_rsa_key_usage':false,'allow_renegotiation':false,'auto_host_sni':true");
	CHECK(cfg != NULL && cfg->auto_host_sni);
	sk_tls_context_config_free(cfg);
	cfg = down("'common_tls_context':{'tls_certificate_sds_secret_configs':[{'name':'default'}]},"
		   "'ocsp_staple_policy':'STRICT_STAPLING','full_scan_certs_on_sni_mismatch':true,'require_sni':false");
	CHECK(cfg != NULL);
	sk_tls_context_config_free(cfg);

	/* no socket: plaintext */
	CHECK(sk_tls_transport_socket_translate(NULL, true, &cfg, err, sizeof(err)) == 0 && cfg == NULL);
}

/* Typed matchers over their SAN type; untyped ones over all; DNS exact with wildcards. */
static void test_san_matchers(void)
{
	struct sk_tls_context_config *cfg = up(
		"'common_tls_context':{'validation_context':{'trusted_ca':{'filename':'/ca'},"
		"'match_typed_subject_alt_names':["
		"{'san_type':'URI','matcher':{'prefix':'spiffe://td/ns/prod/'}},"
		"{'san_type':'DNS','matcher':{'exact':'api.example.com'}},"
		"{'san_type':'EMAIL','matcher':{'suffix':'@EXAMPLE.com','ignore_case':true}},"
		"{'san_type':'IP_ADDRESS','matcher':{'exact':'10.0.0.1'}},"
		"{'san_type':'URI','matcher':{'safe_regex':{'regex':'spiffe://td/ns/[a-z]+/sa/reviews'}}},"
		"{'san_type':'DNS','matcher':{'contains':'.internal.'}}],"
		"'match_subject_alt_names':[{'exact':'ignored when typed ones exist'}]}}");
	const struct sk_san_matcher *m;

	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK(cfg->validation.n_sans == 6);
	if (cfg->validation.n_sans != 6) {
		sk_tls_context_config_free(cfg);
		return;
	}
	m = cfg->validation.sans;
	CHECK(sk_san_matcher_match(&m[0], SK_SAN_URI, "spiffe://td/ns/prod/sa/x", 24));
	CHECK(!sk_san_matcher_match(&m[0], SK_SAN_DNS, "spiffe://td/ns/prod/sa/x", 24)); /* wrong type */
	CHECK(sk_san_matcher_match(&m[1], SK_SAN_DNS, "api.example.com", 15));
	CHECK(sk_san_matcher_match(&m[1], SK_SAN_DNS, "*.example.com", 13));   /* wildcard SAN */
	CHECK(sk_san_matcher_match(&m[1], SK_SAN_DNS, "API.Example.COM", 15)); /* DNS is case-free */
	CHECK(!sk_san_matcher_match(&m[1], SK_SAN_DNS, "*.com", 5));           /* one label only */
	CHECK(!sk_san_matcher_match(&m[1], SK_SAN_DNS, "other.example.com", 17));
	CHECK(sk_san_matcher_match(&m[2], SK_SAN_EMAIL, "a@example.COM", 13));
	CHECK(sk_san_matcher_match(&m[3], SK_SAN_IP, "10.0.0.1", 8));
	CHECK(!sk_san_matcher_match(&m[3], SK_SAN_IP, "10.0.0.10", 9));
	CHECK(sk_san_matcher_match(&m[4], SK_SAN_URI, "spiffe://td/ns/default/sa/reviews", 33));
	CHECK(!sk_san_matcher_match(&m[4], SK_SAN_URI, "spiffe://td/ns/default/sa/reviews2", 34)); /* whole value */
	CHECK(sk_san_matcher_match(&m[5], SK_SAN_DNS, "a.internal.x", 12));
	CHECK(!sk_san_matcher_match(&m[5], SK_SAN_DNS, "internal", 8));
	sk_tls_context_config_free(cfg);

	/* untyped: one matcher, every SAN type */
	cfg = up("'common_tls_context':{'validation_context':{'trusted_ca':{'filename':'/ca'},"
		 "'match_subject_alt_names':[{'suffix':'.example.com'}]}}");
	CHECK(cfg != NULL && cfg->validation.n_sans == 1);
	if (cfg && cfg->validation.n_sans == 1) {
		m = cfg->validation.sans;
		CHECK(m->type == SK_SAN_ANY);
		CHECK(sk_san_matcher_match(m, SK_SAN_DNS, "a.example.com", 13));
		CHECK(sk_san_matcher_match(m, SK_SAN_URI, "spiffe://a.example.com", 22));
		CHECK(!sk_san_matcher_match(m, SK_SAN_URI, "spiffe://a.example.org", 22));
	}
	sk_tls_context_config_free(cfg);
}

/* combined_validation_context: the SDS context (ROOTCA) merged over the default one. */
static void test_merge(void)
{
	struct sk_tls_context_config *cfg = up(ISTIO_UPSTREAM);
	struct sk_tls_secret *root = secret("{'name':'ROOTCA','validation_context':{'trusted_ca':{'inline_bytes':"
					    "'Q0EgUEVN'},'allow_expired_certificate':true,"
					    "'match_subject_alt_names':[{'exact':'spiffe://x'}]}}");
	struct sk_tls_validation v;

	CHECK(cfg != NULL && root != NULL);
	if (cfg == NULL || root == NULL) {
		sk_tls_context_config_free(cfg);
		sk_tls_secret_free(root);
		return;
	}
	CHECK(root->kind == SK_TLS_SECRET_VALIDATION);
	CHECK(sk_tls_validation_merge(&cfg->validation, &root->validation, &v) == 0);
	CHECK(v.trusted_ca.kind == SK_DATA_INLINE && v.trusted_ca.len == 6);
	CHECK_STR((char *)v.trusted_ca.data, "CA PEM");
	CHECK(v.n_sans == 2); /* repeated fields append */
	if (v.n_sans == 2) {
		CHECK_STR(v.sans[0].value, "spiffe://cluster.local/ns/default/sa/bookinfo-reviews");
		CHECK_STR(v.sans[1].value, "spiffe://x");
	}
	CHECK(v.allow_expired); /* booleans OR */
	sk_tls_validation_clear(&v);
	sk_tls_validation_clear(&v); /* cleared twice: harmless */
	CHECK(sk_tls_validation_merge(NULL, NULL, &v) == 0 && v.n_sans == 0 && v.trusted_ca.kind == SK_DATA_NONE);
	sk_tls_context_config_free(cfg);
	sk_tls_secret_free(root);
}

/* The secrets pilot-agent serves: `default` (chain + key) and `ROOTCA`. */
static void test_secrets(void)
{
	struct sk_tls_secret *s;

	s = secret("{'name':'default','tls_certificate':{'certificate_chain':{'inline_bytes':'Q0hBSU4='},"
		   "'private_key':{'inline_bytes':'S0VZ'}}}");
	CHECK(s != NULL);
	if (s) {
		CHECK_STR(s->name, "default");
		CHECK(s->kind == SK_TLS_SECRET_CERTIFICATE);
		CHECK(s->cert.chain.len == 5 && memcmp(s->cert.chain.data, "CHAIN", 5) == 0);
		CHECK(s->cert.key.len == 3 && memcmp(s->cert.key.data, "KEY", 3) == 0);
		sk_tls_secret_free(s);
	}
	s = secret("{'name':'ROOTCA','validation_context':{'trusted_ca':{'inline_bytes':'Q0E='}}}");
	CHECK(s != NULL && s->kind == SK_TLS_SECRET_VALIDATION && s->validation.trusted_ca.len == 2);
	sk_tls_secret_free(s);

	CHECK(secret("{'name':'k','session_ticket_keys':{'keys':[{'inline_string':'x'}]}}") == NULL);
	CHECK_STR(err, "secret 'k': session_ticket_keys: not supported");
	CHECK(secret("{'name':'g','generic_secret':{'secret':{'inline_string':'x'}}}") == NULL);
	CHECK_STR(err, "secret 'g': generic_secret: not supported");
	CHECK(secret("{'name':'e'}") == NULL);
	CHECK_CONTAINS(err, "secret 'e': no tls_certificate or validation_context");
	CHECK(secret("{'tls_certificate':{}}") == NULL);
	CHECK_CONTAINS(err, "name: must not be empty");
	CHECK(secret("{'name':'p','tls_certificate':{'pkcs12':{'filename':'/x.p12'}}}") == NULL);
	CHECK_CONTAINS(err, "secret 'p': tls_certificate.pkcs12: not supported");
	CHECK(secret("{'name':'m','tls_certificate':{'certificate_chain':{'filename':'/c'}}}") == NULL);
	CHECK_STR(err, "secret 'm': tls_certificate.private_key: missing");
}

/* Refusals: fail closed, naming the field. */
static void refuses(bool upstream, const char *body, const char *want)
{
	int rc;
	struct sk_tls_context_config *cfg =
		socket_of(upstream ? "UpstreamTlsContext" : "DownstreamTlsContext", body, upstream, &rc);

	CHECK(cfg == NULL && rc == -EINVAL);
	CHECK_CONTAINS(err, want);
	sk_tls_context_config_free(cfg);
}

#define CT(...) "'common_tls_context':{" __VA_ARGS__ "}"
#define CERT "'tls_certificate_sds_secret_configs':[{'name':'default'}]"
#define VC(...) CT("'validation_context':{" __VA_ARGS__ "}")

static void test_refusals(void)
{
	refuses(true, CT("'tls_certificate_provider_instance':{'instance_name':'x'}"),
		"typed_config (UpstreamTlsContext): common_tls_context.tls_certificate_provider_instance: not supported");
	refuses(true, CT("'tls_params':{'tls_minimum_protocol_version':'TLSv1_0'}"),
		"common_tls_context.tls_params.tls_minimum_protocol_version: TLSv1_0 is not supported (TLS 1.2 and 1.3 only)");
	refuses(true, CT("'tls_params':{'tls_maximum_protocol_version':'TLSv1_1'}"),
		"common_tls_context.tls_params.tls_maximum_protocol_version: TLSv1_1 is not supported");
	refuses(true, CT("'tls_params':{'tls_minimum_protocol_version':'TLSv1_3','tls_maximum_protocol_version':'TLSv1_2'}"),
		"common_tls_context.tls_params: tls_minimum_protocol_version is above tls_maximum_protocol_version");
	refuses(true, CT("'tls_params':{'cipher_suites':['ECDHE-RSA-AES128-GCM-SHA256','NO-SUCH-CIPHER']}"),
		"common_tls_context.tls_params.cipher_suites[1]: 'NO-SUCH-CIPHER' is not a TLS 1.2 cipher suite");
	refuses(true, CT("'tls_params':{'ecdh_curves':['P-256','P-999']}"),
		"common_tls_context.tls_params.ecdh_curves[1]: 'P-999' is not a curve");
	refuses(true, CT("'tls_params':{'signature_algorithms':['nope']}"),
		"common_tls_context.tls_params.signature_algorithms[0]: 'nope'");
	refuses(true, CT("'tls_params':{'compliance_policies':['FIPS_202205']}"),
		"common_tls_context.tls_params.compliance_policies: not supported");
	refuses(true, "'allow_renegotiation':true", "allow_renegotiation: renegotiation is not supported");
	refuses(true, "'auto_sni_san_validation':true", "auto_sni_san_validation: not supported");
	refuses(true, "'enforce_rsa_key_usage':true", "enforce_rsa_key_usage: not supported");
	refuses(true, CT("'tls_certificates':[{'pkcs12':{'filename':'/x'}}]"),
		"common_tls_context.tls_certificates[0].pkcs12: not supported");
	refuses(true, CT("'tls_certificates':[{'certificate_chain':{'filename':'/c'},'private_key_provider':"
			 "{'provider_name':'qat'}}]"),
		"common_tls_context.tls_certificates[0].private_key_provider: not supported");
	refuses(true, CT("'tls_certificates':[{'certificate_chain':{'filename':'/c'}}]"),
		"common_tls_context.tls_certificates[0].private_key: missing");
	refuses(true, CT("'tls_certificates':[{'certificate_chain':{'filename':'/c'},'private_key':{'filename':'/k'},"
			 "'ocsp_staple':{'filename':'/o'}}]"),
		"common_tls_context.tls_certificates[0].ocsp_staple: not supported");
	refuses(true, CT("'tls_certificates':[{'certificate_chain':{'filename':'/c'},'private_key':{'filename':'/k',"
			 "'watched_directory':{'path':'/'}}}]"),
		"common_tls_context.tls_certificates[0].private_key: watched_directory: not supported");
	refuses(true, CT("'tls_certificates':[{'certificate_chain':{'filename':'/c'},'private_key':{'filename':'/k'}},"
			 "{'certificate_chain':{'filename':'/c'},'private_key':{'filename':'/k'}}]"),
		"common_tls_context.tls_certificates: only one certificate is supported");
	refuses(true, CT("'tls_certificate_sds_secret_configs':[{'name':'a'},{'name':'b'}]"),
		"common_tls_context.tls_certificate_sds_secret_configs: only one certificate is supported");
	refuses(true, CT("'tls_certificate_sds_secret_configs':[{'name':''}]"),
		"common_tls_context.tls_certificate_sds_secret_configs[0].name: must not be empty");
	refuses(true, CT("'tls_certificate_sds_secret_configs':[{'name':'a','sds_config':{'api_config_source':"
			 "{'api_type':'REST','cluster_names':['x']}}}]"),
		"common_tls_context.tls_certificate_sds_secret_configs[0].sds_config.api_config_source.api_type: only "
		"GRPC and DELTA_GRPC are supported");
	refuses(true, CT("'tls_certificate_sds_secret_configs':[{'name':'a','sds_config':{'api_config_source':"
			 "{'api_type':'GRPC','grpc_services':[{'google_grpc':{'target_uri':'x','stat_prefix':'s'}}]}}}]"),
		"common_tls_context.tls_certificate_sds_secret_configs[0].sds_config.api_config_source.grpc_services[0]: "
		"only envoy_grpc");
	refuses(true, CT("'tls_certificate_sds_secret_configs':[{'name':'a','sds_config':{'path':'/s.yaml'}}]"),
		"common_tls_context.tls_certificate_sds_secret_configs[0].sds_config: file-based SDS");
	refuses(true, CT("'custom_handshaker':{'name':'h'}"), "common_tls_context.custom_handshaker: not supported");
	refuses(true, CT("'key_log':{'path':'/tmp/keys'}"), "common_tls_context.key_log: not supported");
	refuses(true, CT("'custom_tls_certificate_selector':{'name':'s'}"),
		"common_tls_context.custom_tls_certificate_selector: not supported");
	refuses(true, CT("'validation_context_certificate_provider_instance':{'instance_name':'x'}"),
		"common_tls_context.validation_context_certificate_provider_instance: not supported");
	refuses(true, CT("'combined_validation_context':{'default_validation_context':{}}"),
		"common_tls_context.combined_validation_context.validation_context_sds_secret_config: missing");
	refuses(true, CT("'alpn_protocols':['h2','']"), "common_tls_context.alpn_protocols[1]: must be 1 to 255 bytes");
	refuses(true, VC("'trusted_ca':{'filename':'/ca'},'verify_certificate_spki':['NvqYIYSbgK2vCJpQhObf77vv+bQWtc5ek5RIOwPiC9A=']"),
		"common_tls_context.validation_context.verify_certificate_spki: not supported");
	refuses(true, VC("'verify_certificate_hash':['df6ff72fe9116521268f6f2dd4966f51df479883fe7037b39f75916ac3049d1a']"),
		"common_tls_context.validation_context.verify_certificate_hash: not supported");
	refuses(true, VC("'trust_chain_verification':'ACCEPT_UNTRUSTED'"),
		"common_tls_context.validation_context.trust_chain_verification: ACCEPT_UNTRUSTED is not supported");
	refuses(true, VC("'custom_validator_config':{'name':'envoy.tls.cert_validator.spiffe'}"),
		"common_tls_context.validation_context.custom_validator_config: 'envoy.tls.cert_validator.spiffe' is not supported");
	refuses(true, VC("'system_root_certs':{}"), "common_tls_context.validation_context.system_root_certs: not supported");
	refuses(true, VC("'require_signed_certificate_timestamp':true"),
		"common_tls_context.validation_context.require_signed_certificate_timestamp: not supported");
	refuses(true, VC("'trusted_ca':{'filename':'/ca'},'max_verify_depth':0"),
		"common_tls_context.validation_context.max_verify_depth: 0 is not supported");
	refuses(true, VC("'match_subject_alt_names':[{'exact':'spiffe://td/ns/a/sa/b'}]"),
		"common_tls_context.validation_context.trusted_ca: required with subject alt name matchers");
	refuses(true, VC("'trusted_ca':{'filename':'/ca'},'match_typed_subject_alt_names':[{'san_type':'OTHER_NAME',"
			 "'matcher':{'exact':'x'},'oid':'1.2.3'}]"),
		"common_tls_context.validation_context.match_typed_subject_alt_names[0]: san_type: OTHER_NAME is not supported");
	refuses(true, VC("'trusted_ca':{'filename':'/ca'},'match_typed_subject_alt_names':[{'matcher':{'exact':'x'}}]"),
		"common_tls_context.validation_context.match_typed_subject_alt_names[0]: san_type: must be");
	refuses(true, VC("'trusted_ca':{'filename':'/ca'},'match_typed_subject_alt_names':[{'san_type':'URI',"
			 "'matcher':{'safe_regex':{'regex':'spiffe://(?=x).*'}}}]"),
		"common_tls_context.validation_context.match_typed_subject_alt_names[0].matcher.safe_regex: regex "
		"'spiffe://(?=x).*': lookaround assertions are not supported");
	refuses(true, VC("'trusted_ca':{'filename':'/ca'},'match_subject_alt_names':[{'safe_regex':{'regex':'a'},"
			 "'ignore_case':true}]"),
		"common_tls_context.validation_context.match_subject_alt_names[0].ignore_case: has no effect for safe_regex");
	refuses(true, VC("'trusted_ca':{'filename':'/ca'},'match_subject_alt_names':[{'prefix':''}]"),
		"common_tls_context.validation_context.match_subject_alt_names[0]: the pattern must not be empty");
	refuses(true, VC("'trusted_ca':{'filename':'/ca'},'match_subject_alt_names':[{'safe_regex':{'regex':'('}}]"),
		"common_tls_context.validation_context.match_subject_alt_names[0].safe_regex: regex '('");
	refuses(true, VC("'trusted_ca':{'filename':''}"), "common_tls_context.validation_context.trusted_ca: filename: must not be empty");

	refuses(false, "", "common_tls_context: a server context needs a certificate");
	refuses(false, CT(CERT) ",'require_sni':true", "require_sni: not supported");
	refuses(false, CT(CERT) ",'session_ticket_keys':{'keys':[{'inline_string':'k'}]}", "session_ticket_keys: not supported");
	refuses(false, CT(CERT) ",'session_ticket_keys_sds_secret_config':{'name':'t'}",
		"session_ticket_keys_sds_secret_config: not supported");
	refuses(false, CT(CERT) ",'ocsp_staple_policy':'MUST_STAPLE'", "ocsp_staple_policy: MUST_STAPLE is not supported");

	/* the wrong context type for the side, and other transport sockets */
	{
		int rc;

		CHECK(socket_of("DownstreamTlsContext", CT(CERT), true, &rc) == NULL && rc == -EINVAL);
		CHECK_CONTAINS(err, "DownstreamTlsContext is not valid here (UpstreamTlsContext expected)");
		CHECK(socket_of("UpstreamTlsContext", "", false, &rc) == NULL && rc == -EINVAL);
		CHECK_CONTAINS(err, "UpstreamTlsContext is not valid here (DownstreamTlsContext expected)");
	}
	{
		json_t *j = jload("{'name':'pp','typed_config':{'@type':'type.googleapis.com/envoy.extensions."
				  "transport_sockets.raw_buffer.v3.RawBuffer'}}");
		ProtobufCMessage *m = decode(&envoy__config__core__v3__transport_socket__descriptor, j);
		struct sk_tls_context_config *cfg = (void *)1;

		CHECK(m && sk_tls_transport_socket_translate((void *)m, false, &cfg, err, sizeof(err)) == 0 && cfg == NULL);
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		json_decref(j);
		j = jload("{'name':'tap','typed_config':{'@type':'type.googleapis.com/envoy.extensions."
			  "transport_sockets.internal_upstream.v3.InternalUpstreamTransport'}}");
		m = decode(&envoy__config__core__v3__transport_socket__descriptor, j);
		CHECK(m && sk_tls_transport_socket_translate((void *)m, true, &cfg, err, sizeof(err)) == -EINVAL);
		CHECK_CONTAINS(err, "transport socket 'tap' (envoy.extensions.transport_sockets.internal_upstream.v3."
				    "InternalUpstreamTransport) is not supported");
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		json_decref(j);
	}
}

int main(void)
{
	test_istio_upstream();
	test_istio_downstream();
	test_conformance_cluster();
	test_conformance_bootstrap();
	test_defaults_and_sources();
	test_san_matchers();
	test_merge();
	test_secrets();
	test_refusals();
	return TEST_SUMMARY();
}
