/* secrets_test: the secret store as its SDS stream drives it, over a fake transport: static
 * secrets translated at load and checked when used, the bootstrap's SDS references subscribed by name (one request, not
 * a wildcard), warming until a secret arrives, valid secrets replacing their predecessor
 * (generation, watchers, config_dump with the key redacted), the same bytes again changing
 * nothing, an invalid one NACKed by name while the old version stays, a reference that
 * outlives a rotation, and the days until the first certificate expires; SDS over ADS (names
 * handed to the ADS stream's owner, updates checked alike) and the per-context subscription the
 * dynamic clusters and listeners use. Certificates come from tests/tls/ca.sh at test time. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <jansson.h>

#include "proxy/server/secrets.h"
#include "test.h"
#include "xds/pbjson.h"
#include "xds/resource.h"

static char dir[256], err[2048];

typedef Envoy__Service__Discovery__V3__DiscoveryRequest req_pb;

/* ---- fixtures --------------------------------------------------------------------------- */

static bool make_certs(void)
{
	const char *src = getenv("SKIFF_SRC") ? getenv("SKIFF_SRC") : SKIFF_SOURCE_DIR;
	char cmd[2048];

	snprintf(dir, sizeof(dir), "/tmp/skiff-secrets-test.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return false;
	snprintf(cmd, sizeof(cmd),
		 "set -e; ca='%s/tests/tls/ca.sh'; d='%s'; bash \"$ca\" $d ca >/dev/null; "
		 "bash \"$ca\" $d workload w1 default productpage --days 30 >/dev/null & "
		 "bash \"$ca\" $d workload w2 default productpage --days 10 >/dev/null & wait; "
		 "test -s $d/w1-chain.crt; test -s $d/w2-chain.crt",
		 src, dir);
	return system(cmd) == 0;
}

static void remove_certs(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static char *pem(const char *name)
{
	char path[512];
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return sk_file_read(path, 1 << 20, &len, err, sizeof(err));
}

/* A Secret as JSON: a certificate (chain + key files) or, with key NULL, a CA. */
static json_t *secret_json(const char *name, const char *chain, const char *key)
{
	char *c = pem(chain), *k = key ? pem(key) : NULL;
	json_t *j;

	if (key)
		j = json_pack("{s:s, s:{s:{s:s}, s:{s:s}}}", "name", name, "tls_certificate", "certificate_chain",
			      "inline_string", c, "private_key", "inline_string", k);
	else
		j = json_pack("{s:s, s:{s:{s:s}}}", "name", name, "validation_context", "trusted_ca", "inline_string",
			      c);
	free(c);
	free(k);
	return j;
}

/* With ads: dynamic_resources.ads_config too (SDS over ADS needs one). */
static sk_bootstrap_pb *bootstrap_ads(json_t *static_secrets, bool ads)
{
	const char *tmpl =
		"{\"node\": {\"id\": \"sidecar~1\", \"cluster\": \"c\"},"
		" \"static_resources\": {\"clusters\": ["
		"  {\"name\": \"sds-grpc\", \"type\": \"STATIC\", \"connect_timeout\": \"1s\","
		"   \"load_assignment\": {\"cluster_name\": \"sds-grpc\", \"endpoints\": [{\"lb_endpoints\": ["
		"    {\"endpoint\": {\"address\": {\"pipe\": {\"path\": \"/nonexistent/sds\"}}}}]}]}},"
		"  {\"name\": \"out\", \"type\": \"STATIC\", \"connect_timeout\": \"1s\","
		"   \"transport_socket_matches\": [{\"name\": \"tlsMode-istio\", \"match\": {\"tlsMode\": \"istio\"},"
		"    \"transport_socket\": {\"name\": \"envoy.transport_sockets.tls\", \"typed_config\": {"
		"     \"@type\": \"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\","
		"     \"common_tls_context\": {"
		"      \"tls_certificate_sds_secret_configs\": [{\"name\": \"default\", \"sds_config\": {"
		"       \"api_config_source\": {\"api_type\": \"GRPC\", \"grpc_services\": [{\"envoy_grpc\": "
		"        {\"cluster_name\": \"sds-grpc\"}}]}}}],"
		"      \"validation_context_sds_secret_config\": {\"name\": \"ROOTCA\", \"sds_config\": {"
		"       \"api_config_source\": {\"api_type\": \"GRPC\", \"grpc_services\": [{\"envoy_grpc\": "
		"        {\"cluster_name\": \"sds-grpc\"}}]}}}}}}}]}]}}";
	json_t *j = json_loads(tmpl, 0, NULL);
	char *text, path[512];
	struct sk_bootstrap_load_opts o = {0};
	sk_bootstrap_pb *b = NULL;
	unsigned unknown = 0;
	FILE *f;

	json_object_set_new(json_object_get(j, "static_resources"), "secrets", static_secrets);
	if (ads)
		json_object_set_new(j, "dynamic_resources",
				    json_pack("{s:{s:s, s:[{s:{s:s}}]}}", "ads_config", "api_type", "GRPC", "grpc_services",
					      "envoy_grpc", "cluster_name", "sds-grpc"));
	text = json_dumps(j, 0);
	json_decref(j);
	snprintf(path, sizeof(path), "%s/bootstrap.json", dir);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	free(text);
	o.path = path;
	if (sk_bootstrap_load(&o, &b, &unknown, err, sizeof(err)) < 0)
		fprintf(stderr, "bootstrap: %s\n", err);
	return b;
}

static sk_bootstrap_pb *bootstrap(json_t *static_secrets)
{
	return bootstrap_ads(static_secrets, false);
}

/* ---- fake SDS stream ------------------------------------------------------------------- */

#define MAX_SENT 32

struct fake {
	struct sk_ads *ads;
	int token;
	const char *method;
	uint8_t *sent[MAX_SENT];
	size_t sent_len[MAX_SENT];
	size_t n_sent;
};

static void *f_open(void *tctx, struct sk_ads *ads, const char *method)
{
	struct fake *f = tctx;

	f->ads = ads;
	f->method = method;
	return &f->token;
}

static int f_send(void *tctx, void *stream, const uint8_t *data, size_t len)
{
	struct fake *f = tctx;

	(void)stream;
	if (f->n_sent == MAX_SENT)
		return -ENOBUFS;
	f->sent[f->n_sent] = malloc(len ? len : 1);
	memcpy(f->sent[f->n_sent], data, len);
	f->sent_len[f->n_sent++] = len;
	return 0;
}

static void f_close(void *tctx, void *stream)
{
	(void)tctx;
	(void)stream;
}

static req_pb *last_sent(struct fake *f)
{
	return f->n_sent ? envoy__service__discovery__v3__discovery_request__unpack(NULL, f->sent_len[f->n_sent - 1],
										  f->sent[f->n_sent - 1])
			 : NULL;
}

/* Sends a DiscoveryResponse of these Secrets (JSON, consumed) and returns the ACK / NACK. */
static req_pb *respond(struct fake *f, const char *version, const char *nonce, json_t **secrets, size_t n)
{
	Envoy__Service__Discovery__V3__DiscoveryResponse r = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
	Google__Protobuf__Any anys[4], *ptrs[4];
	ProtobufCMessage *msgs[4];
	uint8_t *buf;
	size_t len, i, before = f->n_sent;

	for (i = 0; i < n; i++) {
		msgs[i] = sk_pbjson_decode(&envoy__extensions__transport_sockets__tls__v3__secret__descriptor, secrets[i],
					   NULL, err, sizeof(err));
		json_decref(secrets[i]);
		google__protobuf__any__init(&anys[i]);
		anys[i].type_url = (char *)SK_TYPE_URL_SECRET;
		anys[i].value.len = protobuf_c_message_get_packed_size(msgs[i]);
		anys[i].value.data = malloc(anys[i].value.len + 1);
		protobuf_c_message_pack(msgs[i], anys[i].value.data);
		ptrs[i] = &anys[i];
	}
	r.version_info = (char *)version;
	r.type_url = (char *)SK_TYPE_URL_SECRET;
	r.nonce = (char *)nonce;
	r.resources = ptrs;
	r.n_resources = n;
	len = protobuf_c_message_get_packed_size(&r.base);
	buf = malloc(len + 1);
	protobuf_c_message_pack(&r.base, buf);
	sk_ads_transport_message(f->ads, buf, len);
	free(buf);
	for (i = 0; i < n; i++) {
		free(anys[i].value.data);
		protobuf_c_message_free_unpacked(msgs[i], NULL);
	}
	return f->n_sent > before ? last_sent(f) : NULL;
}

struct watched {
	int calls;
	char last[64];
};

static void on_change(void *ctx, const char *name)
{
	struct watched *w = ctx;

	w->calls++;
	snprintf(w->last, sizeof(w->last), "%s", name);
}

static uint64_t counter(struct sk_stats_store *st, const char *name)
{
	return sk_stats_value(st, sk_stats_counter(st, name));
}

static const char *dump_field(json_t *dump, const char *list, const char *name, const char *field)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(dump, list), i, e)
		if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
			return json_string_value(json_object_get(e, field));
	return NULL;
}

/* ---- cases ------------------------------------------------------------------------------ */

static void test_static(void)
{
	struct sk_stats_store *st = sk_stats_store_new(NULL, err, sizeof(err));
	struct sk_secrets_env env = {.loop = ev_loop_new(EVFLAG_AUTO), .stats = st, .shard = sk_stats_main_shard(st)};
	struct sk_secrets *sec;
	uint64_t gen = 0;
	struct sk_sds_ref ref = {.name = "root", .source = SK_SDS_STATIC};

	/* a valid CA and certificate */
	env.bootstrap = bootstrap(json_pack("[o, o]", secret_json("root", "root.crt", NULL),
					    secret_json("cert", "w1-chain.crt", "w1.key")));
	sec = env.bootstrap ? sk_secrets_new(&env, err, sizeof(err)) : NULL;
	CHECK(sec != NULL);
	if (sec) {
		const struct sk_tls_secret *s = sk_secrets_get(sec, "root", &gen);

		CHECK(s && s->kind == SK_TLS_SECRET_VALIDATION && gen == 1);
		CHECK(sk_secrets_get(sec, "cert", NULL) != NULL);
		CHECK(sk_secrets_get(sec, "nope", &gen) == NULL && gen == 0);
		CHECK(sk_secrets_subscribe(sec, &ref, err, sizeof(err)) == 0);
		ref.name = "nope";
		CHECK(sk_secrets_subscribe(sec, &ref, err, sizeof(err)) == -ENOENT);
		CHECK_CONTAINS(err, "secret 'nope'");
		ref.source = SK_SDS_ADS;
		CHECK(sk_secrets_subscribe(sec, &ref, err, sizeof(err)) == -ENOTSUP);
		ref.source = SK_SDS_GRPC;
		ref.name = "root";
		ref.cluster = "sds-grpc";
		CHECK(sk_secrets_subscribe(sec, &ref, err, sizeof(err)) == -EEXIST);
		ref.name = "x";
		ref.cluster = "no-such-cluster";
		CHECK(sk_secrets_subscribe(sec, &ref, err, sizeof(err)) == -ENOENT);
		CHECK_CONTAINS(err, "unknown static cluster 'no-such-cluster'");
		/* a 30-day leaf and a longer-lived root */
		CHECK(sk_secrets_days_until_first_cert_expiring(sec, time(NULL)) == 29 ||
		      sk_secrets_days_until_first_cert_expiring(sec, time(NULL)) == 30);
		CHECK(sk_stats_value(st, sk_stats_gauge(st, "server.days_until_first_cert_expiring",
							 SK_GAUGE_MAIN_ONLY)) >= 29);
	}
	sk_secrets_free(sec);
	sk_bootstrap_free((sk_bootstrap_pb *)env.bootstrap);

	/* a key that does not match its chain: an error for whoever uses it (as Envoy, which
	 * reads a static secret when a listener or cluster needs it) */
	env.bootstrap = bootstrap(json_pack("[o, o]", secret_json("root", "root.crt", NULL),
					    secret_json("cert", "w1-chain.crt", "w2.key")));
	sec = env.bootstrap ? sk_secrets_new(&env, err, sizeof(err)) : NULL;
	CHECK(sec != NULL);
	if (sec) {
		ref = (struct sk_sds_ref){.name = "cert", .source = SK_SDS_STATIC};
		CHECK(sk_secrets_get(sec, "cert", NULL) == NULL);
		CHECK(sk_secrets_subscribe(sec, &ref, err, sizeof(err)) == -EINVAL);
		CHECK_CONTAINS(err, "secret 'cert': ");
		CHECK_CONTAINS(err, "private key does not match");
		ref.name = "root";
		CHECK(sk_secrets_subscribe(sec, &ref, err, sizeof(err)) == 0);
	}
	sk_secrets_free(sec);
	sk_bootstrap_free((sk_bootstrap_pb *)env.bootstrap);

	/* one that does not translate is a bootstrap error naming it */
	env.bootstrap = bootstrap(json_pack("[{s:s, s:{}}]", "name", "odd", "session_ticket_keys"));
	sec = env.bootstrap ? sk_secrets_new(&env, err, sizeof(err)) : NULL;
	CHECK(env.bootstrap && sec == NULL);
	CHECK_CONTAINS(err, "static_resources.secrets[0]: secret 'odd': session_ticket_keys");
	sk_secrets_free(sec);
	sk_bootstrap_free((sk_bootstrap_pb *)env.bootstrap);
	ev_loop_destroy(env.loop);
	sk_stats_store_free(st);
}

static void test_sds(void)
{
	struct sk_stats_store *st = sk_stats_store_new(NULL, err, sizeof(err));
	struct fake f = {0};
	struct sk_ads_transport t = {.open = f_open, .send = f_send, .close = f_close, .tctx = &f};
	struct sk_secrets_env env = {.loop = ev_loop_new(EVFLAG_AUTO), .stats = st, .shard = sk_stats_main_shard(st),
				     .transport = &t};
	struct watched w = {0};
	struct sk_secrets *sec;
	struct sk_secret_version *held;
	const struct sk_tls_secret *s;
	json_t *dump, *secrets[2];
	req_pb *r;
	uint64_t gen = 0;
	size_t i;

	env.bootstrap = bootstrap(json_array());
	sec = env.bootstrap ? sk_secrets_new(&env, err, sizeof(err)) : NULL;
	CHECK(sec != NULL);
	if (sec == NULL)
		return;
	CHECK(sk_secrets_watch(sec, on_change, &w) == 0);
	CHECK(sk_secrets_subscribe_bootstrap(sec, err, sizeof(err)) == 0);
	CHECK(f.ads != NULL);
	CHECK_STR(f.method, SK_SDS_METHOD_SOTW);
	if (f.ads == NULL)
		goto out;
	sk_ads_transport_ready(f.ads);

	/* one request naming both secrets, not a wildcard */
	r = last_sent(&f);
	CHECK(f.n_sent == 1 && r && strcmp(r->type_url, SK_TYPE_URL_SECRET) == 0 && r->n_resource_names == 2);
	for (i = 0; r && i < r->n_resource_names; i++)
		CHECK(strcmp(r->resource_names[i], "default") == 0 || strcmp(r->resource_names[i], "ROOTCA") == 0);
	if (r)
		envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);

	/* warming */
	CHECK(sk_secrets_get(sec, "default", &gen) == NULL && gen == 0);
	dump = json_object();
	sk_secrets_config_dump(sec, dump);
	CHECK(json_array_size(json_object_get(dump, "dynamic_warming_secrets")) == 2);
	CHECK(json_object_get(dump, "dynamic_active_secrets") == NULL);
	json_decref(dump);

	/* first versions: ACK */
	secrets[0] = secret_json("default", "w1-chain.crt", "w1.key");
	secrets[1] = secret_json("ROOTCA", "root.crt", NULL);
	r = respond(&f, "v1", "n1", secrets, 2);
	CHECK(r && r->error_detail == NULL && strcmp(r->version_info, "v1") == 0 &&
	      strcmp(r->response_nonce, "n1") == 0);
	if (r)
		envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	s = sk_secrets_get(sec, "default", &gen);
	CHECK(s && s->kind == SK_TLS_SECRET_CERTIFICATE && gen == 1);
	CHECK(sk_secrets_get(sec, "ROOTCA", &gen) != NULL && gen == 1);
	CHECK(w.calls == 2);
	CHECK(counter(st, "sds.default.update_success") == 1 && counter(st, "sds.ROOTCA.update_success") == 1);
	CHECK(counter(st, "sds.default.update_attempt") == 1);
	dump = json_object();
	sk_secrets_config_dump(sec, dump);
	CHECK(json_object_get(dump, "dynamic_warming_secrets") == NULL);
	CHECK(json_array_size(json_object_get(dump, "dynamic_active_secrets")) == 2);
	CHECK_STR(dump_field(dump, "dynamic_active_secrets", "default", "version_info"), "v1");
	{
		json_t *e = json_array_get(json_object_get(dump, "dynamic_active_secrets"), 0);
		json_t *sj = json_object_get(e, "secret");
		char *text = json_dumps(dump, 0);

		CHECK_STR(json_string_value(json_object_get(sj, "@type")), SK_TYPE_URL_SECRET);
		CHECK_CONTAINS(text, "\"private_key\": {\"inline_string\": \"[redacted]\"}");
		CHECK(strstr(text, "PRIVATE KEY") == NULL);
		CHECK_CONTAINS(text, "BEGIN CERTIFICATE");
		free(text);
	}
	json_decref(dump);

	held = sk_secrets_acquire(sec, "default");
	CHECK(held != NULL);

	/* the same bytes again: a new version string, nothing changes */
	secrets[0] = secret_json("default", "w1-chain.crt", "w1.key");
	r = respond(&f, "v2", "n2", secrets, 1);
	CHECK(r && r->error_detail == NULL && strcmp(r->version_info, "v2") == 0);
	if (r)
		envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	CHECK(sk_secrets_get(sec, "default", &gen) != NULL && gen == 1);
	CHECK(w.calls == 2);
	CHECK(counter(st, "sds.default.update_success") == 2);

	/* rotation: a new certificate replaces the old one; the holder keeps the old */
	secrets[0] = secret_json("default", "w2-chain.crt", "w2.key");
	r = respond(&f, "v3", "n3", secrets, 1);
	CHECK(r && r->error_detail == NULL);
	if (r)
		envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	s = sk_secrets_get(sec, "default", &gen);
	CHECK(gen == 2 && w.calls == 3 && strcmp(w.last, "default") == 0);
	CHECK(s && sk_secret_version_secret(held) != s);
	CHECK(sk_secret_version_secret(held) && sk_secret_version_secret(held)->cert.chain.len > 0);
	sk_secret_version_unref(held);
	CHECK(sk_secrets_days_until_first_cert_expiring(sec, time(NULL)) == 9 ||
	      sk_secrets_days_until_first_cert_expiring(sec, time(NULL)) == 10);

	/* a key that does not match: NACK naming the secret, the old version stays */
	secrets[0] = secret_json("default", "w1-chain.crt", "w2.key");
	secrets[1] = secret_json("ROOTCA", "root.crt", NULL);
	r = respond(&f, "v4", "n4", secrets, 2);
	CHECK(r && r->error_detail && strcmp(r->version_info, "v3") == 0 && strcmp(r->response_nonce, "n4") == 0);
	if (r && r->error_detail) {
		CHECK_CONTAINS(r->error_detail->message, "secret 'default': ");
		CHECK_CONTAINS(r->error_detail->message, "private key does not match");
	}
	if (r)
		envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	CHECK(sk_secrets_get(sec, "default", &gen) == s && gen == 2);
	CHECK(counter(st, "sds.default.update_rejected") == 1 && counter(st, "sds.default.update_success") == 3);
	CHECK(counter(st, "sds.ROOTCA.update_success") == 2 && counter(st, "sds.ROOTCA.update_rejected") == 0);
	dump = json_object();
	sk_secrets_config_dump(sec, dump);
	CHECK_STR(dump_field(dump, "dynamic_active_secrets", "default", "version_info"), "v3");
	json_decref(dump);

	/* not PEM at all */
	secrets[0] = json_pack("{s:s, s:{s:{s:s}}}", "name", "ROOTCA", "validation_context", "trusted_ca",
			       "inline_string", "not a certificate");
	r = respond(&f, "v5", "n5", secrets, 1);
	CHECK(r && r->error_detail);
	if (r && r->error_detail)
		CHECK_CONTAINS(r->error_detail->message, "secret 'ROOTCA': validation_context.trusted_ca");
	if (r)
		envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	CHECK(sk_secrets_get(sec, "ROOTCA", &gen) != NULL && gen == 1);

	sk_secrets_unwatch(sec, on_change, &w);
out:
	sk_secrets_free(sec);
	for (i = 0; i < f.n_sent; i++)
		free(f.sent[i]);
	sk_bootstrap_free((sk_bootstrap_pb *)env.bootstrap);
	ev_loop_destroy(env.loop);
	sk_stats_store_free(st);
}

/* What the ADS stream's owner was asked to subscribe. */
struct ads_names {
	int calls;
	size_t n;
	char names[4][32];
};

static int on_ads_subscribe(void *ctx, const char *const *names, size_t n)
{
	struct ads_names *a = ctx;

	a->calls++;
	a->n = n;
	for (size_t i = 0; i < n && i < 4; i++)
		snprintf(a->names[i], sizeof(a->names[i]), "%s", names[i]);
	return 0;
}

static bool has_name(const struct ads_names *a, const char *name)
{
	for (size_t i = 0; i < a->n && i < 4; i++)
		if (strcmp(a->names[i], name) == 0)
			return true;
	return false;
}

/* An ADS update of one Secret (JSON, consumed); frees nothing the caller needs. */
static int apply_ads(struct sk_secrets *sec, const char *version, json_t *secret)
{
	ProtobufCMessage *m = sk_pbjson_decode(&envoy__extensions__transport_sockets__tls__v3__secret__descriptor, secret,
					       NULL, err, sizeof(err));
	size_t len = m ? protobuf_c_message_get_packed_size(m) : 0;
	uint8_t *bytes = malloc(len + 1);
	struct sk_ads_resource r = {.name = json_string_value(json_object_get(secret, "name")), .version = version,
				    .msg = m, .bytes = bytes, .len = len};
	struct sk_ads_update u = {.type_url = SK_TYPE_URL_SECRET, .version = version, .nonce = "n",
				  .resources = &r, .n_resources = 1};
	int rc;

	if (m)
		protobuf_c_message_pack(m, bytes);
	rc = sk_secrets_apply_ads(sec, &u, err, sizeof(err));
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	free(bytes);
	json_decref(secret);
	return rc;
}

/* SDS over ADS: names handed to the ADS stream's owner, updates checked as from SDS; and the
 * context helper the dynamic clusters and listeners use. */
static void test_ads(void)
{
	struct sk_stats_store *st = sk_stats_store_new(NULL, err, sizeof(err));
	struct sk_secrets_env env = {.loop = ev_loop_new(EVFLAG_AUTO), .stats = st, .shard = sk_stats_main_shard(st)};
	struct sk_sds_ref ref = {.name = "ads-cert", .source = SK_SDS_ADS};
	struct sk_tls_context_config ctx = {0};
	struct ads_names a = {0};
	struct watched w = {0};
	struct sk_secrets *sec;
	const struct sk_tls_secret *s;
	json_t *dump;
	uint64_t gen = 0;

	env.bootstrap = bootstrap_ads(json_array(), true);
	sec = env.bootstrap ? sk_secrets_new(&env, err, sizeof(err)) : NULL;
	CHECK(sec != NULL);
	if (sec == NULL)
		return;
	CHECK(sk_secrets_watch(sec, on_change, &w) == 0);
	/* before the stream's owner is there: kept, handed over when it comes */
	CHECK(sk_secrets_subscribe(sec, &ref, err, sizeof(err)) == 0);
	sk_secrets_set_ads(sec, on_ads_subscribe, &a);
	CHECK(a.calls == 1 && a.n == 1 && has_name(&a, "ads-cert"));
	ref.name = "ads-root";
	CHECK(sk_secrets_subscribe(sec, &ref, err, sizeof(err)) == 0);
	CHECK(a.calls == 2 && a.n == 2 && has_name(&a, "ads-cert") && has_name(&a, "ads-root"));
	CHECK(sk_secrets_subscribe(sec, &ref, err, sizeof(err)) == 0);
	CHECK(a.calls == 2);
	/* the same name from an SDS cluster is another source */
	ref = (struct sk_sds_ref){.name = "ads-root", .source = SK_SDS_GRPC, .cluster = "sds-grpc"};
	CHECK(sk_secrets_subscribe(sec, &ref, err, sizeof(err)) == -EEXIST);
	CHECK_CONTAINS(err, "secret 'ads-root'");
	CHECK(sk_secrets_get(sec, "ads-cert", &gen) == NULL && gen == 0);
	dump = json_object();
	sk_secrets_config_dump(sec, dump);
	CHECK(json_array_size(json_object_get(dump, "dynamic_warming_secrets")) == 2);
	json_decref(dump);

	/* a valid one is accepted, a bad one rejected by name, the old version kept */
	CHECK(apply_ads(sec, "v1", secret_json("ads-cert", "w1-chain.crt", "w1.key")) == 0);
	s = sk_secrets_get(sec, "ads-cert", &gen);
	CHECK(s && s->kind == SK_TLS_SECRET_CERTIFICATE && gen == 1);
	CHECK(w.calls == 1 && strcmp(w.last, "ads-cert") == 0);
	CHECK(counter(st, "sds.ads-cert.update_success") == 1);
	CHECK(apply_ads(sec, "v2", secret_json("ads-cert", "w1-chain.crt", "w2.key")) == -1);
	CHECK_CONTAINS(err, "secret 'ads-cert': ");
	CHECK_CONTAINS(err, "private key does not match");
	CHECK(sk_secrets_get(sec, "ads-cert", &gen) == s && gen == 1);
	CHECK(counter(st, "sds.ads-cert.update_rejected") == 1);
	/* a secret nobody asked for is ignored */
	CHECK(apply_ads(sec, "v3", secret_json("other", "root.crt", NULL)) == 0);
	CHECK(sk_secrets_get(sec, "other", NULL) == NULL);

	/* the context helper: both references, err prefixed with where it was */
	ctx.has_cert_sds = true;
	ctx.cert_sds = (struct sk_sds_ref){.name = "ctx-cert", .source = SK_SDS_ADS};
	ctx.has_validation_sds = true;
	ctx.validation_sds = (struct sk_sds_ref){.name = "ctx-root", .source = SK_SDS_ADS};
	CHECK(sk_secrets_subscribe_context(sec, &ctx, "cluster 'c': transport_socket", err, sizeof(err)) == 0);
	CHECK(a.n == 4 && has_name(&a, "ctx-cert") && has_name(&a, "ctx-root"));
	ctx.validation_sds = (struct sk_sds_ref){.name = "ctx-x", .source = SK_SDS_GRPC, .cluster = "nope"};
	CHECK(sk_secrets_subscribe_context(sec, &ctx, "cluster 'c': transport_socket", err, sizeof(err)) == -ENOENT);
	CHECK_CONTAINS(err, "cluster 'c': transport_socket: secret 'ctx-x': sds_config: unknown static cluster 'nope'");
	CHECK(sk_secrets_subscribe_context(sec, NULL, "x", err, sizeof(err)) == 0);

	/* the stream's owner gone: nothing is called any more */
	CHECK(a.calls == 4); /* ctx-cert, ctx-root */
	sk_secrets_set_ads(sec, NULL, NULL);
	ref = (struct sk_sds_ref){.name = "late", .source = SK_SDS_ADS};
	CHECK(sk_secrets_subscribe(sec, &ref, err, sizeof(err)) == 0);
	CHECK(a.calls == 4);

	sk_secrets_unwatch(sec, on_change, &w);
	sk_secrets_free(sec);
	sk_bootstrap_free((sk_bootstrap_pb *)env.bootstrap);
	ev_loop_destroy(env.loop);
	sk_stats_store_free(st);
}

int main(void)
{
	if (!make_certs()) {
		fprintf(stderr, "cannot issue test certificates with tests/tls/ca.sh\n");
		remove_certs();
		printf("0 passed, 1 failed\n");
		return 1;
	}
	test_static();
	test_sds();
	test_ads();
	remove_certs();
	printf("%d passed, %d failed, %d skipped\n", sk_test_passed, sk_test_failed, sk_test_skipped);
	return sk_test_failed ? 1 : 0;
}
