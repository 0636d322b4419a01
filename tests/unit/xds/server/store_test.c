/* store_test: xds/server/store.c — resource files (lists in JSON and YAML, raw entries,
 * config dumps) become sorted, named, versioned resources; errors name the file and the
 * entry; plus xds/strmap.c, which the server and the client keep their state in. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "xds/server/store.h"
#include "xds/strmap.h"

static char dir[64];

static const char *write_file(const char *name, const char *text)
{
	static char path[8][160];
	static int next;
	char *p = path[next++ % 8];
	FILE *f;

	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	return p;
}

static void test_lists(void)
{
	const char *json = write_file("a.json",
		"[{\"@type\": \"type.googleapis.com/envoy.config.listener.v3.Listener\", \"name\": \"l1\"},"
		" {\"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\", \"name\": \"z\"},"
		" {\"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\", \"name\": \"a\","
		"  \"connect_timeout\": \"1s\"},"
		" {\"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\", \"@name\": \"raw\","
		"  \"@bytes\": \"CiA=\"}]");
	const char *yaml = write_file("b.yaml",
		"resources:\n"
		"- \"@type\": type.googleapis.com/envoy.config.route.v3.RouteConfiguration\n"
		"  name: \"9080\"\n"
		"- \"@type\": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment\n"
		"  cluster_name: a\n");
	const char *paths[] = {json, yaml};
	struct sk_xds_store *s, *s2;
	size_t first, count;
	char err[512];

	CHECK(sk_xds_store_load(paths, 2, "v1", false, &s, err, sizeof(err)) == 0);
	if (s == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	CHECK(s->n == 6);
	CHECK_STR(s->version, "v1");
	sk_xds_store_range(s, SK_TYPE_URL_CLUSTER, &first, &count);
	CHECK(count == 3);
	CHECK_STR(s->res[first].name, "a");
	CHECK_STR(s->res[first + 1].name, "raw");
	CHECK(s->res[first + 1].len == 2 && s->res[first + 1].bytes[0] == 0x0a);
	CHECK_STR(s->res[first + 2].name, "z");
	CHECK(sk_xds_store_find(s, SK_TYPE_URL_ROUTE, "9080") != NULL);
	CHECK(sk_xds_store_find(s, SK_TYPE_URL_ENDPOINT, "a") != NULL);
	CHECK(sk_xds_store_find(s, SK_TYPE_URL_ROUTE, "nope") == NULL);
	sk_xds_store_range(s, SK_TYPE_URL_SECRET, &first, &count);
	CHECK(count == 0);
	/* Same bytes, same version; different bytes, another. */
	CHECK(sk_xds_store_load(paths, 1, "v2", false, &s2, err, sizeof(err)) == 0);
	if (s2) {
		CHECK_STR(sk_xds_store_find(s2, SK_TYPE_URL_CLUSTER, "a")->version,
			  sk_xds_store_find(s, SK_TYPE_URL_CLUSTER, "a")->version);
		CHECK(strcmp(sk_xds_store_find(s2, SK_TYPE_URL_CLUSTER, "a")->version,
			     sk_xds_store_find(s2, SK_TYPE_URL_CLUSTER, "z")->version) != 0);
	}
	sk_xds_store_free(s2);
	sk_xds_store_free(s);
}

static void test_errors(void)
{
	const char *dup = write_file("dup.json",
		"[{\"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\", \"name\": \"a\"},"
		" {\"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\", \"name\": \"a\"}]");
	const char *unnamed = write_file("unnamed.json",
		"[{\"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\", \"type\": \"EDS\"}]");
	const char *unknown = write_file("unknown.json",
		"[{\"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\", \"name\": \"a\", \"nope\": 1}]");
	const char *broken = write_file("broken.json", "[{\"@type\": ");
	struct sk_xds_store *s;
	char err[512];

	CHECK(sk_xds_store_load(&dup, 1, "v1", false, &s, err, sizeof(err)) == -EINVAL && s == NULL);
	CHECK_CONTAINS(err, "duplicate");
	CHECK(sk_xds_store_load(&unnamed, 1, "v1", false, &s, err, sizeof(err)) == -EINVAL);
	CHECK_CONTAINS(err, "unnamed.json: [0]: a type.googleapis.com/envoy.config.cluster.v3.Cluster resource needs a name");
	CHECK(sk_xds_store_load(&unknown, 1, "v1", false, &s, err, sizeof(err)) == -EINVAL);
	CHECK_CONTAINS(err, "nope");
	CHECK(sk_xds_store_load(&unknown, 1, "v1", true, &s, err, sizeof(err)) == 0 && s && s->n == 1);
	sk_xds_store_free(s);
	CHECK(sk_xds_store_load(&broken, 1, "v1", false, &s, err, sizeof(err)) == -EINVAL);
	CHECK_CONTAINS(err, "broken.json");
}

/* Istio's config dumps: the dynamic resources are found, static ones left out. */
static void test_config_dump(void)
{
	char path[1024], err[1024];
	const char *p = path;
	struct sk_xds_store *s;
	size_t first, count;

	snprintf(path, sizeof(path), "%s/istio/configdump/http_config.json", sk_test_conformance_dir());
	if (access(path, R_OK) != 0) {
		SKIP("no conformance config dump");
		return;
	}
	CHECK(sk_xds_store_load(&p, 1, "v1", true, &s, err, sizeof(err)) == 0);
	if (s == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	sk_xds_store_range(s, SK_TYPE_URL_CLUSTER, &first, &count);
	CHECK(count > 0);
	sk_xds_store_range(s, SK_TYPE_URL_ROUTE, &first, &count);
	CHECK(count > 0);
	sk_xds_store_free(s);
	/* Endpoints: the dynamic ones only. */
	snprintf(path, sizeof(path), "%s/istio/configdump/endpoint_configdump.json", sk_test_conformance_dir());
	CHECK(sk_xds_store_load(&p, 1, "v1", true, &s, err, sizeof(err)) == 0);
	if (s == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	sk_xds_store_range(s, SK_TYPE_URL_ENDPOINT, &first, &count);
	CHECK(count == 32);
	sk_xds_store_free(s);
}

static void test_strmap(void)
{
	struct sk_strmap m = {0}, c = {0};
	const struct sk_strmap_entry *e;
	const char **keys;
	char k[32], v[32];
	size_t i, n, seen = 0;
	int ok = 1;

	for (i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "key-%zu", i);
		snprintf(v, sizeof(v), "v%zu", i);
		ok &= sk_strmap_put(&m, k, v) == 0;
	}
	CHECK(ok && m.n == 1000);
	for (i = 0; i < 1000; i += 2) {
		snprintf(k, sizeof(k), "key-%zu", i);
		ok &= sk_strmap_del(&m, k);
	}
	CHECK(ok && m.n == 500);
	for (i = 0; i < 1000; i++) { /* every odd key is still found after the shifts */
		snprintf(k, sizeof(k), "key-%zu", i);
		snprintf(v, sizeof(v), "v%zu", i);
		e = sk_strmap_find(&m, k);
		ok &= (i % 2) ? e != NULL && strcmp(e->value, v) == 0 : e == NULL;
	}
	CHECK(ok);
	CHECK(!sk_strmap_del(&m, "key-0"));
	CHECK(sk_strmap_put(&m, "key-1", NULL) == 0 && sk_strmap_find(&m, "key-1")->value == NULL && m.n == 500);
	for (i = 0; (e = sk_strmap_next(&m, &i)) != NULL;)
		seen++;
	CHECK(seen == 500);
	CHECK(sk_strmap_copy(&c, &m) == 0 && c.n == 500 && sk_strmap_has(&c, "key-999"));
	keys = sk_strmap_sorted_keys(&c, &n);
	CHECK(n == 500 && keys && strcmp(keys[0], "key-1") == 0 && strcmp(keys[1], "key-101") == 0);
	free(keys);
	sk_strmap_clear(&m);
	sk_strmap_clear(&c);
	CHECK(m.n == 0 && sk_strmap_find(&m, "key-1") == NULL && sk_strmap_sorted_keys(&m, &n) == NULL && n == 0);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/skiff-store.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	test_lists();
	test_errors();
	test_config_dump();
	test_strmap();
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return TEST_SUMMARY();
}
