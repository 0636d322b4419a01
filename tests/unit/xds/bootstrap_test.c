/* bootstrap_test: loading, merging and validating bootstraps; each error class with its
 * message. */
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "xds/bootstrap.h"

static char err[2048];
static char dir[] = "/tmp/skiff-bootstrap-test-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads JSON text (strict unless allow_unknown); returns the rc, frees the result. */
static int load_text(const char *name, const char *text, const char *overlay, bool allow_unknown,
		     unsigned *unknown)
{
	struct sk_bootstrap_load_opts o = {.allow_unknown = allow_unknown};
	sk_bootstrap_pb *b = NULL;
	int rc;

	o.path = text ? write_file(name, text) : NULL;
	o.config_yaml = overlay;
	rc = sk_bootstrap_load(&o, &b, unknown, err, sizeof(err));
	sk_bootstrap_free(b);
	return rc;
}

#define CLUSTER(name, type, addr) \
	"{\"name\":\"" name "\",\"type\":\"" type "\",\"load_assignment\":{\"cluster_name\":\"" name "\"," \
	"\"endpoints\":[{\"lb_endpoints\":[{\"endpoint\":{\"address\":{\"socket_address\":" \
	"{\"address\":\"" addr "\",\"port_value\":80}}}}]}]}}"

static void test_errors(void)
{
	unsigned unknown = 0;

	CHECK(load_text("ok.json", "{\"static_resources\":{\"clusters\":[" CLUSTER("a", "STATIC", "127.0.0.1") "]}}",
			NULL, false, NULL) == 0);

	CHECK(load_text("u.json", "{\"static_resources\":{\"clusters\":[" CLUSTER("a", "STATIC", "127.0.0.1")
			","  "{\"name\":\"b\",\"foo\":1}]}}", NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "u.json: static_resources.clusters[1].foo: unknown field");

	/* lenient: one warning per unknown field, counted */
	CHECK(load_text("u2.json", "{\"bar\":true,\"static_resources\":{\"clusters\":[{\"name\":\"b\",\"foo\":1}]}}",
			NULL, true, &unknown) == 0);
	CHECK(unknown == 2);

	CHECK(load_text("dup.json", "{\"static_resources\":{\"clusters\":[" CLUSTER("a", "STATIC", "127.0.0.1") ","
			CLUSTER("a", "STATIC", "127.0.0.2") "]}}", NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "static_resources.clusters[1].name: duplicate cluster 'a'");

	CHECK(load_text("host.json", "{\"static_resources\":{\"clusters\":[" CLUSTER("a", "STATIC", "example.com")
			"]}}", NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "'example.com' is not an IP address");
	CHECK(load_text("dns.json", "{\"static_resources\":{\"clusters\":[" CLUSTER("a", "STRICT_DNS", "example.com")
			"]}}", NULL, false, NULL) == 0);

	CHECK(load_text("odst.json", "{\"static_resources\":{\"clusters\":[" CLUSTER("a", "ORIGINAL_DST", "127.0.0.1")
			"]}}", NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "ORIGINAL_DST clusters must have no load assignment");

	CHECK(load_text("ldns.json", "{\"static_resources\":{\"clusters\":[{\"name\":\"a\",\"type\":\"LOGICAL_DNS\","
			"\"load_assignment\":{\"endpoints\":[]}}]}}", NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "LOGICAL_DNS clusters must have a single locality_lb_endpoint");

	CHECK(load_text("noaddr.json", "{\"static_resources\":{\"listeners\":[{\"name\":\"l\"}]}}", NULL, false,
			NULL) < 0);
	CHECK_CONTAINS(err, "static_resources.listeners[0] (l): listener has no address");

	CHECK(load_text("dupl.json", "{\"static_resources\":{\"listeners\":["
			"{\"name\":\"l\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":1}}},"
			"{\"name\":\"l\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":2}}}]}}",
			NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "static_resources.listeners[1].name: duplicate listener 'l'");

	CHECK(load_text("samea.json", "{\"static_resources\":{\"listeners\":["
			"{\"name\":\"l1\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":1}}},"
			"{\"name\":\"l2\",\"address\":{\"socket_address\":{\"address\":\"0.0.0.0\",\"port_value\":1}}}]}}",
			NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "address already used by listener 'l1'");

	CHECK(load_text("port.json", "{\"admin\":{\"address\":{\"socket_address\":{\"address\":\"127.0.0.1\","
			"\"port_value\":70000}}}}", NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "admin.address.socket_address.port_value: 70000 is not a valid port");

	CHECK(load_text("ads.json", "{\"dynamic_resources\":{\"ads_config\":{\"api_type\":\"GRPC\",\"grpc_services\":"
			"[{\"envoy_grpc\":{\"cluster_name\":\"xds-grpc\"}}]}}}", NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: unknown "
			    "cluster 'xds-grpc'");

	CHECK(load_text("noads.json", "{\"dynamic_resources\":{\"lds_config\":{\"ads\":{}}}}", NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "dynamic_resources.lds_config.ads: ADS is used but dynamic_resources.ads_config is not set");

	CHECK(load_text("bad.json", "{\"node\": {\"id\": }", NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "bad.json: line 1 column");

	CHECK(load_text("arr.json", "[]", NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "the bootstrap must be an object");

	{
		struct sk_bootstrap_load_opts o = {.path = "/nonexistent/boot.json"};
		sk_bootstrap_pb *b;

		CHECK(sk_bootstrap_load(&o, &b, NULL, err, sizeof(err)) < 0);
		CHECK_CONTAINS(err, "/nonexistent/boot.json: cannot open");
	}
	CHECK(load_text(NULL, NULL, NULL, false, NULL) < 0);
	CHECK_CONTAINS(err, "no bootstrap");
}

static void test_yaml_and_overlay(void)
{
	struct sk_bootstrap_load_opts o = {0};
	sk_bootstrap_pb *b = NULL;

	o.path = write_file("b.yaml",
			    "node:\n  id: n1\n  cluster: c1\n"
			    "admin:\n  address:\n    socket_address: {address: 127.0.0.1, port_value: 15000}\n"
			    "static_resources:\n  clusters:\n  - name: a\n    connect_timeout: 0.25s\n"
			    "    load_assignment:\n      cluster_name: a\n      endpoints:\n"
			    "      - lb_endpoints:\n        - endpoint:\n            address:\n"
			    "              socket_address: {address: 127.0.0.1, port_value: 8080}\n");
	o.config_yaml = "{\"node\":{\"id\":\"n2\"},\"admin\":{\"address\":{\"socket_address\":{\"port_value\":15999}}},"
			"\"static_resources\":{\"clusters\":[{\"name\":\"b\",\"type\":\"STRICT_DNS\"}]}}";
	CHECK(sk_bootstrap_load(&o, &b, NULL, err, sizeof(err)) == 0);
	if (b == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	CHECK_STR(b->node->id, "n2");           /* overlay wins */
	CHECK_STR(b->node->cluster, "c1");      /* base kept */
	CHECK(b->admin->address->socket_address->port_value == 15999);
	CHECK_STR(b->admin->address->socket_address->address, "127.0.0.1");
	CHECK(b->static_resources->n_clusters == 2); /* repeated fields append */
	CHECK(b->static_resources->clusters[0]->connect_timeout->nanos == 250000000);
	sk_bootstrap_free(b);

	/* the overlay is validated with the rest: a duplicate cluster is an error */
	o.config_yaml = "static_resources: {clusters: [{name: a}]}";
	CHECK(sk_bootstrap_load(&o, &b, NULL, err, sizeof(err)) < 0);
	CHECK_CONTAINS(err, "duplicate cluster 'a'");
	o.config_yaml = "{not yaml: [";
	CHECK(sk_bootstrap_load(&o, &b, NULL, err, sizeof(err)) < 0);
	CHECK_CONTAINS(err, "--config-yaml:");
	o.config_yaml = "{\"admin\":{\"bogus\":1}}";
	CHECK(sk_bootstrap_load(&o, &b, NULL, err, sizeof(err)) < 0);
	CHECK_CONTAINS(err, "--config-yaml: admin.bogus: unknown field");
}

static void test_goldens(void)
{
	static const char *const goldens[] = {"all_golden.json", "default_golden.json",
					      "secure_metrics_golden.json", "tracing_zipkin_golden.json"};
	size_t i;

	for (i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
		struct sk_bootstrap_load_opts o = {0};
		sk_bootstrap_pb *b = NULL;
		char path[512];

		snprintf(path, sizeof(path), "%s/istio/bootstrap/%s", sk_test_conformance_dir(), goldens[i]);
		if (access(path, R_OK) != 0) {
			SKIP("%s: not found", path);
			continue;
		}
		o.path = path;
		CHECK(sk_bootstrap_load(&o, &b, NULL, err, sizeof(err)) == 0);
		if (b == NULL) {
			fprintf(stderr, "%s\n", err);
			continue;
		}
		CHECK(b->dynamic_resources && b->dynamic_resources->ads_config);
		CHECK(b->static_resources && b->static_resources->n_clusters >= 4);
		sk_bootstrap_free(b);
	}
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	test_errors();
	test_yaml_and_overlay();
	test_goldens();
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup of %s failed\n", dir);
	}
	return TEST_SUMMARY();
}
