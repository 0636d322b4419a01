/* filter_chain: Envoy's filter-chain precedence, one table per level, each row a connection
 * and the chain Envoy would pick; Istio's virtualInbound; configuration errors. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <jansson.h>

#include "proxy/listener/filter_chain.h"
#include "test.h"
#include "xds/pbjson.h"

#define NM SK_FCM_NO_MATCH
#define DF SK_FCM_DEFAULT

/* Builds the matcher from a Listener in proto3 JSON and frees the proto at once, so every
 * match below also checks that the matcher keeps nothing pointing into it. */
static struct sk_fcm *build(const char *json, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loads(json, 0, &je);
	Envoy__Config__Listener__V3__Listener *l;
	struct sk_fcm *m;

	if (!j) {
		fprintf(stderr, "bad test JSON: %s\n%s\n", je.text, json);
		exit(2);
	}
	l = (Envoy__Config__Listener__V3__Listener *)sk_pbjson_decode(
		&envoy__config__listener__v3__listener__descriptor, j, NULL, err, errlen);
	json_decref(j);
	if (!l) {
		fprintf(stderr, "test JSON does not decode: %s\n%s\n", err, json);
		exit(2);
	}
	err[0] = '\0';
	m = sk_fcm_build(l, err, errlen);
	protobuf_c_message_free_unpacked(&l->base, NULL);
	return m;
}

/* "10.0.0.1:80", "[fd00::1]:80" or "unix" (a pipe); NULL leaves the family unset. */
static void addr(struct sockaddr_storage *ss, const char *s)
{
	char host[64];
	const char *colon;

	memset(ss, 0, sizeof(*ss));
	if (!s)
		return;
	if (strcmp(s, "unix") == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;

		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, "/tmp/sock");
		return;
	}
	colon = strrchr(s, ':');
	if (s[0] == '[') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - s - 2), s + 1);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			exit(2);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			exit(2);
	}
}

/* One row: the connection and the expected chain. dsrc NULL means the same as src. */
struct row {
	const char *dst, *src, *dsrc, *sni, *tp, *alpn; /* alpn: comma-separated */
	int want;
};

static int match_row(const struct sk_fcm *m, const struct row *r)
{
	struct sk_fcm_conn c;
	char alpn_buf[256];
	const char *alpn[8];
	size_t n = 0;

	memset(&c, 0, sizeof(c));
	addr(&c.dst, r->dst);
	addr(&c.src, r->src ? r->src : "1.2.3.4:40000");
	addr(&c.direct_src, r->dsrc ? r->dsrc : r->src ? r->src : "1.2.3.4:40000");
	c.server_name = r->sni;
	c.transport_protocol = r->tp;
	if (r->alpn) {
		snprintf(alpn_buf, sizeof(alpn_buf), "%s", r->alpn);
		for (char *t = strtok(alpn_buf, ","); t && n < 8; t = strtok(NULL, ","))
			alpn[n++] = t;
	}
	c.application_protocols = alpn;
	c.n_application_protocols = n;
	return sk_fcm_match(m, &c);
}

static void run_table(const char *name, const struct sk_fcm *m, const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int got = match_row(m, &rows[i]);

		if (got != rows[i].want)
			fprintf(stderr, "%s row %zu (dst %s src %s dsrc %s sni %s tp %s alpn %s): "
				"got %d want %d\n", name, i, rows[i].dst, rows[i].src ? rows[i].src : "-",
				rows[i].dsrc ? rows[i].dsrc : "-", rows[i].sni ? rows[i].sni : "-",
				rows[i].tp ? rows[i].tp : "-", rows[i].alpn ? rows[i].alpn : "-", got,
				rows[i].want);
		CHECK(got == rows[i].want);
	}
}

#define TABLE(name, m, rows) run_table(name, m, rows, sizeof(rows) / sizeof(rows[0]))

static struct sk_fcm *must_build(const char *json)
{
	char err[512];
	struct sk_fcm *m = build(json, err, sizeof(err));

	if (!m) {
		fprintf(stderr, "build failed: %s\n", err);
		exit(2);
	}
	return m;
}

/* A destination port with chains of its own is final: when none of them matches, the
 * default chain is used, not the port-less chains. */
static void test_destination_port(void)
{
	struct sk_fcm *m = must_build("{\"filter_chains\":["
		"{\"name\":\"p8080-tls\",\"filter_chain_match\":{\"destination_port\":8080,\"transport_protocol\":\"tls\"}},"
		"{\"name\":\"any\"},"
		"{\"name\":\"p9090\",\"filter_chain_match\":{\"destination_port\":9090}}],"
		"\"default_filter_chain\":{\"name\":\"dflt\"}}");
	static const struct row rows[] = {
		{ "10.0.0.1:8080", NULL, NULL, NULL, "tls", NULL, 0 },
		{ "10.0.0.1:8080", NULL, NULL, NULL, "raw_buffer", NULL, DF },
		{ "10.0.0.1:9090", NULL, NULL, NULL, "tls", NULL, 2 },
		{ "10.0.0.1:7070", NULL, NULL, NULL, "tls", NULL, 1 },
		{ "[fd00::1]:8080", NULL, NULL, NULL, "tls", NULL, 0 },
		{ "[::ffff:10.0.0.1]:9090", NULL, NULL, NULL, NULL, NULL, 2 },
		{ "unix", NULL, NULL, NULL, "tls", NULL, 1 },   /* a pipe has no port: port-less chains */
	};

	TABLE("destination_port", m, rows);
	sk_fcm_free(m);
}

/* Longest prefix wins; the chosen range is final (no fallback to a wider range or to the
 * chains without prefix_ranges when a later criterion fails). */
static void test_destination_ip(void)
{
	struct sk_fcm *m = must_build("{\"filter_chains\":["
		"{\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"10.0.0.0\",\"prefix_len\":8}]}},"
		"{\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"10.1.0.0\",\"prefix_len\":16}],\"server_names\":[\"a.com\"]}},"
		"{\"name\":\"no-ranges\"},"
		"{\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"192.168.1.1\",\"prefix_len\":32}]}},"
		"{\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"fd00::\",\"prefix_len\":8}]}},"
		"{\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"2001:db8::1\",\"prefix_len\":128}]}},"
		"{\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"172.16.77.1\",\"prefix_len\":12},"
		"{\"address_prefix\":\"100.64.0.0\",\"prefix_len\":10}]}}]}");
	static const struct row rows[] = {
		{ "10.2.3.4:80", NULL, NULL, NULL, NULL, NULL, 0 },
		{ "10.1.2.3:80", NULL, NULL, "a.com", NULL, NULL, 1 },
		{ "10.1.2.3:80", NULL, NULL, "b.com", NULL, NULL, NM },  /* /16 chosen; no fallback to /8 */
		{ "10.1.2.3:80", NULL, NULL, NULL, NULL, NULL, NM },
		{ "11.0.0.1:80", NULL, NULL, NULL, NULL, NULL, 2 },
		{ "192.168.1.1:80", NULL, NULL, NULL, NULL, NULL, 3 },
		{ "192.168.1.2:80", NULL, NULL, NULL, NULL, NULL, 2 },
		{ "[fd12::1]:80", NULL, NULL, NULL, NULL, NULL, 4 },
		{ "[2001:db8::1]:80", NULL, NULL, NULL, NULL, NULL, 5 },
		{ "[2001:db8::2]:80", NULL, NULL, NULL, NULL, NULL, 2 },
		{ "[::ffff:10.2.3.4]:80", NULL, NULL, NULL, NULL, NULL, 0 },    /* v4-mapped is v4 */
		{ "[::ffff:192.168.1.1]:80", NULL, NULL, NULL, NULL, NULL, 3 },
		{ "172.31.0.9:80", NULL, NULL, NULL, NULL, NULL, 6 },   /* host bits of 172.16.77.1/12 ignored */
		{ "172.32.0.9:80", NULL, NULL, NULL, NULL, NULL, 2 },
		{ "100.127.255.255:80", NULL, NULL, NULL, NULL, NULL, 6 },
		{ "unix", NULL, NULL, NULL, NULL, NULL, 2 },  /* a pipe matches only the catch-all */
	};

	TABLE("destination_ip", m, rows);
	sk_fcm_free(m);
}

/* prefix_len absent is 0 (Envoy reads prefix_len().value()): the range covers its whole family
 * and, being explicit, takes precedence over chains without prefix_ranges for that family. */
static void test_prefix_len_absent(void)
{
	struct sk_fcm *m = must_build("{\"filter_chains\":["
		"{\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"172.16.5.5\"}]}},"
		"{\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"10.0.0.0\",\"prefix_len\":8}]}},"
		"{\"filter_chain_match\":{\"transport_protocol\":\"tls\"}}]}");
	static const struct row rows[] = {
		{ "8.8.8.8:80", NULL, NULL, NULL, "tls", NULL, 0 },
		{ "10.1.1.1:80", NULL, NULL, NULL, NULL, NULL, 1 },
		{ "[2001::1]:80", NULL, NULL, NULL, "tls", NULL, 2 },
		{ "[2001::1]:80", NULL, NULL, NULL, "raw_buffer", NULL, NM },
	};

	TABLE("prefix_len_absent", m, rows);
	sk_fcm_free(m);
}

/* Exact name, then wildcard suffixes longest first, then chains without server_names; the
 * chosen name is final. Names compare lowercased. */
static void test_server_names(void)
{
	struct sk_fcm *m = must_build("{\"filter_chains\":["
		"{\"filter_chain_match\":{\"server_names\":[\"www.example.com\"]}},"
		"{\"filter_chain_match\":{\"server_names\":[\"*.example.com\"]}},"
		"{\"filter_chain_match\":{\"server_names\":[\"*.com\"]}},"
		"{\"name\":\"no-sni\"},"
		"{\"filter_chain_match\":{\"server_names\":[\"API.Example.ORG\"],\"transport_protocol\":\"tls\"}},"
		"{\"filter_chain_match\":{\"server_names\":[\"*.b.example.com\"],\"transport_protocol\":\"tls\"}},"
		"{\"filter_chain_match\":{\"server_names\":[\"x.net\",\"y.net\"]}},"
		"{\"filter_chain_match\":{\"server_names\":[\"*.\"]}}]}");
	static const struct row rows[] = {
		{ "10.0.0.1:443", NULL, NULL, "www.example.com", "tls", NULL, 0 },
		{ "10.0.0.1:443", NULL, NULL, "WWW.Example.com", "tls", NULL, 0 },
		{ "10.0.0.1:443", NULL, NULL, "foo.example.com", "tls", NULL, 1 },
		{ "10.0.0.1:443", NULL, NULL, "a.foo.example.com", "tls", NULL, 1 },
		{ "10.0.0.1:443", NULL, NULL, "example.com", "tls", NULL, 2 },  /* "*.example.com" needs a label */
		{ "10.0.0.1:443", NULL, NULL, "a.b.example.com", "tls", NULL, 5 },
		{ "10.0.0.1:443", NULL, NULL, "a.b.example.com", "raw_buffer", NULL, NM }, /* no fallback to *.example.com */
		{ "10.0.0.1:443", NULL, NULL, "b.example.com", "raw_buffer", NULL, 1 },
		{ "10.0.0.1:443", NULL, NULL, "api.example.org", "tls", NULL, 4 },
		{ "10.0.0.1:443", NULL, NULL, "api.example.org", "raw_buffer", NULL, NM },
		{ "10.0.0.1:443", NULL, NULL, "foo.org", "tls", NULL, 3 },
		{ "10.0.0.1:443", NULL, NULL, "com", "tls", NULL, 3 },
		{ "10.0.0.1:443", NULL, NULL, "x.", "tls", NULL, 3 },  /* the lone final dot is no suffix */
		{ "10.0.0.1:443", NULL, NULL, ".", "tls", NULL, 7 },   /* but "*." is keyed "." exactly */
		{ "10.0.0.1:443", NULL, NULL, "", "tls", NULL, 3 },
		{ "10.0.0.1:443", NULL, NULL, NULL, NULL, NULL, 3 },
		{ "10.0.0.1:443", NULL, NULL, "y.net", NULL, NULL, 6 },
		{ "10.0.0.1:443", NULL, NULL, "x.net", NULL, NULL, 6 },
	};

	TABLE("server_names", m, rows);
	sk_fcm_free(m);
}

/* transport_protocol exact, then empty; application_protocols: the connection's first protocol
 * that some chain names, then chains without any. */
static void test_transport_and_alpn(void)
{
	struct sk_fcm *m = must_build("{\"filter_chains\":["
		"{\"filter_chain_match\":{\"transport_protocol\":\"tls\",\"application_protocols\":[\"h2\",\"http/1.1\"]}},"
		"{\"filter_chain_match\":{\"transport_protocol\":\"tls\"}},"
		"{\"filter_chain_match\":{\"application_protocols\":[\"h2c\"]}},"
		"{\"name\":\"any\"},"
		"{\"filter_chain_match\":{\"transport_protocol\":\"raw_buffer\",\"application_protocols\":[\"http/1.1\"]}}]}");
	static const struct row rows[] = {
		{ "10.0.0.1:80", NULL, NULL, NULL, "tls", "h2", 0 },
		{ "10.0.0.1:80", NULL, NULL, NULL, "tls", "foo,http/1.1", 0 },
		{ "10.0.0.1:80", NULL, NULL, NULL, "tls", "foo", 1 },
		{ "10.0.0.1:80", NULL, NULL, NULL, "tls", NULL, 1 },
		{ "10.0.0.1:80", NULL, NULL, NULL, "tls", "h2c", 1 },    /* tls branch is final */
		{ "10.0.0.1:80", NULL, NULL, NULL, "raw_buffer", "http/1.1", 4 },
		{ "10.0.0.1:80", NULL, NULL, NULL, "raw_buffer", "h2c", NM }, /* raw_buffer branch is final */
		{ "10.0.0.1:80", NULL, NULL, NULL, "raw_buffer", NULL, NM },
		{ "10.0.0.1:80", NULL, NULL, NULL, NULL, "http/1.1", 4 },  /* none detected = raw_buffer */
		{ "10.0.0.1:80", NULL, NULL, NULL, "", "http/1.1", 4 },
		{ "10.0.0.1:80", NULL, NULL, NULL, "other", "h2c", 2 },
		{ "10.0.0.1:80", NULL, NULL, NULL, "other", "h2", 3 },
		{ "10.0.0.1:80", NULL, NULL, NULL, "other", NULL, 3 },
		{ "10.0.0.1:80", NULL, NULL, NULL, "TLS", "h2", 3 },  /* exact, case-sensitive */
	};
	struct sk_fcm *order = must_build("{\"filter_chains\":["
		"{\"filter_chain_match\":{\"application_protocols\":[\"h2\"]}},"
		"{\"filter_chain_match\":{\"application_protocols\":[\"http/1.1\"]}}]}");
	static const struct row order_rows[] = {
		{ "10.0.0.1:80", NULL, NULL, NULL, "tls", "http/1.1,h2", 1 },  /* the connection's order */
		{ "10.0.0.1:80", NULL, NULL, NULL, "tls", "h2,http/1.1", 0 },
		{ "10.0.0.1:80", NULL, NULL, NULL, "tls", "spdy/3", NM },
	};

	TABLE("transport_alpn", m, rows);
	TABLE("alpn_order", order, order_rows);
	sk_fcm_free(m);
	sk_fcm_free(order);
}

/* direct_source_prefix_ranges, then source_type (a SAME_IP_OR_LOOPBACK or EXTERNAL branch that
 * applies is final; ANY otherwise), then source_prefix_ranges, then source_ports (exact, then
 * chains without ports). */
static void test_sources(void)
{
	struct sk_fcm *m = must_build("{\"filter_chains\":["
		"{\"filter_chain_match\":{\"direct_source_prefix_ranges\":[{\"address_prefix\":\"10.0.0.0\",\"prefix_len\":8}],"
		"\"source_type\":\"SAME_IP_OR_LOOPBACK\"}},"
		"{\"filter_chain_match\":{\"direct_source_prefix_ranges\":[{\"address_prefix\":\"10.0.0.0\",\"prefix_len\":8}]}},"
		"{\"filter_chain_match\":{\"source_type\":\"EXTERNAL\",\"source_prefix_ranges\":[{\"address_prefix\":\"192.168.0.0\",\"prefix_len\":16}]}},"
		"{\"filter_chain_match\":{\"source_type\":\"EXTERNAL\",\"source_prefix_ranges\":[{\"address_prefix\":\"192.168.0.0\",\"prefix_len\":16}],"
		"\"source_ports\":[5000]}},"
		"{\"filter_chain_match\":{\"source_prefix_ranges\":[{\"address_prefix\":\"172.16.0.0\",\"prefix_len\":12}],\"source_ports\":[1234,4321]}},"
		"{\"name\":\"any\"}]}");
	static const struct row rows[] = {
		/* direct source 10/8: the LOCAL branch exists, EXTERNAL does not */
		{ "10.9.9.9:80", "10.1.1.1:7000", NULL, NULL, NULL, NULL, 1 },
		{ "10.9.9.9:80", "10.9.9.9:7000", NULL, NULL, NULL, NULL, 0 },        /* same IP as local */
		{ "10.9.9.9:80", "127.0.0.1:7000", "10.1.1.1:7000", NULL, NULL, NULL, 0 }, /* source (not direct) is loopback */
		{ "10.9.9.9:80", "[::1]:7000", "10.1.1.1:7000", NULL, NULL, NULL, 0 },
		/* other direct sources: EXTERNAL and ANY branches */
		{ "10.9.9.9:80", "192.168.1.1:6000", NULL, NULL, NULL, NULL, 2 },
		{ "10.9.9.9:80", "192.168.1.1:5000", NULL, NULL, NULL, NULL, 3 },
		{ "10.9.9.9:80", "8.8.8.8:5000", NULL, NULL, NULL, NULL, NM },    /* EXTERNAL is final */
		{ "10.9.9.9:80", "127.0.0.2:5000", NULL, NULL, NULL, NULL, NM },  /* only 127.0.0.1 is loopback */
		{ "10.9.9.9:80", "127.0.0.1:5000", NULL, NULL, NULL, NULL, 5 },   /* local: ANY */
		{ "172.16.3.3:80", "172.16.3.3:1234", NULL, NULL, NULL, NULL, 4 },
		{ "172.16.3.3:80", "172.16.3.3:4321", NULL, NULL, NULL, NULL, 4 },
		{ "172.16.3.3:80", "172.16.3.3:999", NULL, NULL, NULL, NULL, NM }, /* /12 chosen, no port-less chain there */
		{ "[fd00::5]:80", "[fd00::5]:999", NULL, NULL, NULL, NULL, 5 },
		{ "[::ffff:172.16.3.3]:80", "[::ffff:172.16.3.3]:4321", NULL, NULL, NULL, NULL, 4 },
		{ "10.9.9.9:80", "unix", "unix", NULL, NULL, NULL, 5 },            /* a pipe peer is local */
	};

	struct sk_fcm *local = must_build("{\"filter_chains\":["
		"{\"filter_chain_match\":{\"source_type\":\"SAME_IP_OR_LOOPBACK\",\"source_ports\":[7000]}},"
		"{\"name\":\"any\"}]}");
	static const struct row local_rows[] = {
		{ "10.9.9.9:80", "127.0.0.1:7000", NULL, NULL, NULL, NULL, 0 },
		{ "10.9.9.9:80", "127.0.0.1:8000", NULL, NULL, NULL, NULL, NM },  /* LOCAL is final */
		{ "10.9.9.9:80", "10.9.9.9:8000", NULL, NULL, NULL, NULL, NM },
		{ "10.9.9.9:80", "10.9.9.8:8000", NULL, NULL, NULL, NULL, 1 },    /* external: ANY */
		{ "[fd00::1]:80", "[fd00::2]:7000", NULL, NULL, NULL, NULL, 1 },
	};

	TABLE("sources", m, rows);
	TABLE("source_type_local", local, local_rows);
	sk_fcm_free(m);
	sk_fcm_free(local);
}

/* An explicit 0.0.0.0/0 beside chains without prefix_ranges: Envoy's trie holds both for the
 * same range and which it returns is unspecified; skiff takes the explicit range. */
static void test_explicit_catch_all(void)
{
	struct sk_fcm *m = must_build("{\"filter_chains\":["
		"{\"filter_chain_match\":{\"transport_protocol\":\"tls\"}},"
		"{\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"0.0.0.0\",\"prefix_len\":0}]}}]}");
	static const struct row rows[] = {
		{ "10.0.0.1:80", NULL, NULL, NULL, "tls", NULL, 1 },
		{ "[fd00::1]:80", NULL, NULL, NULL, "tls", NULL, 0 },
		{ "[fd00::1]:80", NULL, NULL, NULL, "raw_buffer", NULL, NM },
	};

	TABLE("explicit_catch_all", m, rows);
	sk_fcm_free(m);
}

#define ISTIO_ALPN "[\"istio-peer-exchange\",\"istio\",\"istio-http/1.0\",\"istio-http/1.1\",\"istio-h2\"]"

/* The shape of Istio's virtualInbound (0.0.0.0:15006): a blackhole chain for traffic sent to
 * 15006 itself, per-port chains for mTLS and plaintext, and passthrough chains for the rest. */
static void test_istio_virtual_inbound(void)
{
	struct sk_fcm *m = must_build("{\"name\":\"virtualInbound\",\"filter_chains\":["
		"{\"name\":\"virtualInbound-blackhole\",\"filter_chain_match\":{\"destination_port\":15006}},"
		"{\"name\":\"virtualInbound\",\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"0.0.0.0\",\"prefix_len\":0}],"
		"\"transport_protocol\":\"tls\",\"application_protocols\":" ISTIO_ALPN "}},"
		"{\"name\":\"virtualInbound\",\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"0.0.0.0\",\"prefix_len\":0}],"
		"\"transport_protocol\":\"raw_buffer\"}},"
		"{\"name\":\"virtualInbound\",\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"::\",\"prefix_len\":0}],"
		"\"transport_protocol\":\"tls\",\"application_protocols\":" ISTIO_ALPN "}},"
		"{\"name\":\"virtualInbound\",\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"::\",\"prefix_len\":0}],"
		"\"transport_protocol\":\"raw_buffer\"}},"
		"{\"name\":\"0.0.0.0_8080\",\"filter_chain_match\":{\"destination_port\":8080,\"transport_protocol\":\"tls\","
		"\"application_protocols\":" ISTIO_ALPN "}},"
		"{\"name\":\"0.0.0.0_8080\",\"filter_chain_match\":{\"destination_port\":8080,\"transport_protocol\":\"raw_buffer\"}},"
		"{\"name\":\"virtualInbound-catchall-http\",\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"0.0.0.0\",\"prefix_len\":0}],"
		"\"transport_protocol\":\"raw_buffer\",\"application_protocols\":[\"http/1.1\",\"http/1.0\",\"h2c\"]}}]}");
	static const struct row rows[] = {
		{ "10.44.0.7:8080", "10.44.0.9:51000", NULL, "outbound_.8080_._.app.ns.svc.cluster.local", "tls",
		  "istio-peer-exchange,istio", 5 },
		{ "10.44.0.7:8080", "10.44.0.9:51000", NULL, NULL, "tls", "istio-http/1.1", 5 },
		{ "10.44.0.7:8080", "10.44.0.9:51000", NULL, NULL, "tls", "istio-h2", 5 },
		{ "10.44.0.7:8080", "10.44.0.9:51000", NULL, NULL, "raw_buffer", "http/1.1", 6 },
		{ "10.44.0.7:8080", "10.44.0.9:51000", NULL, NULL, NULL, NULL, 6 },
		/* TLS without Istio's ALPN to a known port: no passthrough fallback */
		{ "10.44.0.7:8080", "10.44.0.9:51000", NULL, "example.com", "tls", "h2,http/1.1", NM },
		{ "10.44.0.7:15006", "10.44.0.9:51000", NULL, NULL, "raw_buffer", NULL, 0 },
		{ "10.44.0.7:15006", "10.44.0.9:51000", NULL, NULL, "tls", "istio", 0 },
		/* unknown ports: passthrough */
		{ "10.44.0.7:9999", "10.44.0.9:51000", NULL, NULL, "tls", "istio", 1 },
		{ "10.44.0.7:9999", "10.44.0.9:51000", NULL, NULL, "raw_buffer", NULL, 2 },
		{ "10.44.0.7:9999", "10.44.0.9:51000", NULL, NULL, "raw_buffer", "h2c", 7 },
		{ "10.44.0.7:9999", "10.44.0.9:51000", NULL, NULL, "raw_buffer", "http/1.0", 7 },
		{ "10.44.0.7:9999", "10.44.0.9:51000", NULL, NULL, "tls", "h2", NM },
		{ "[fd00:10:44::7]:9999", "[fd00:10:44::9]:51000", NULL, NULL, "tls", "istio-h2", 3 },
		{ "[fd00:10:44::7]:9999", "[fd00:10:44::9]:51000", NULL, NULL, "raw_buffer", "http/1.1", 4 },
		{ "[fd00:10:44::7]:8080", "[fd00:10:44::9]:51000", NULL, NULL, "raw_buffer", NULL, 6 },
		{ "[::ffff:10.44.0.7]:9999", "[::ffff:10.44.0.9]:51000", NULL, NULL, "raw_buffer", NULL, 2 },
	};

	TABLE("istio_virtual_inbound", m, rows);
	CHECK(sk_fcm_uses_transport_protocol(m));
	CHECK(sk_fcm_uses_application_protocols(m));
	CHECK(!sk_fcm_uses_server_names(m));
	sk_fcm_free(m);
}

static void test_default_chain(void)
{
	struct sk_fcm *m = must_build("{\"filter_chains\":[{\"filter_chain_match\":{\"destination_port\":80}}],"
		"\"default_filter_chain\":{\"filter_chain_match\":{\"destination_port\":81}}}");
	static const struct row rows[] = {
		{ "10.0.0.1:80", NULL, NULL, NULL, NULL, NULL, 0 },
		{ "10.0.0.1:81", NULL, NULL, NULL, NULL, NULL, DF },  /* the default's own match is ignored */
		{ "unix", NULL, NULL, NULL, NULL, NULL, DF },
	};
	struct sk_fcm *only_default = must_build("{\"default_filter_chain\":{}}");
	struct sk_fcm *empty = must_build("{\"name\":\"x\"}");
	struct sk_fcm *none = must_build("{\"filter_chains\":[{\"filter_chain_match\":{\"destination_port\":80}}]}");
	static const struct row any_rows[] = { { "10.0.0.1:443", NULL, NULL, NULL, NULL, NULL, DF } };
	static const struct row nm_rows[] = { { "10.0.0.1:443", NULL, NULL, NULL, NULL, NULL, NM } };

	TABLE("default", m, rows);
	TABLE("only_default", only_default, any_rows);
	TABLE("empty", empty, nm_rows);
	TABLE("no_default", none, nm_rows);
	CHECK(!sk_fcm_uses_transport_protocol(m));
	CHECK(!sk_fcm_uses_application_protocols(m));
	CHECK(!sk_fcm_uses_server_names(m));
	sk_fcm_free(m);
	sk_fcm_free(only_default);
	sk_fcm_free(empty);
	sk_fcm_free(none);
	sk_fcm_free(NULL);
}

static void test_uses_flags(void)
{
	struct sk_fcm *m = must_build("{\"filter_chains\":[{\"filter_chain_match\":{\"server_names\":[\"a.com\"]}}]}");

	CHECK(sk_fcm_uses_server_names(m));
	CHECK(!sk_fcm_uses_transport_protocol(m));
	CHECK(!sk_fcm_uses_application_protocols(m));
	sk_fcm_free(m);
}

/* A listener that must be refused, and what the message must name. */
static void expect_error(const char *json, const char *what1, const char *what2)
{
	char err[512];
	struct sk_fcm *m = build(json, err, sizeof(err));

	CHECK(m == NULL);
	CHECK_CONTAINS(err, what1);
	if (what2)
		CHECK_CONTAINS(err, what2);
	sk_fcm_free(m);
}

static void test_errors(void)
{
	/* identical matchers (Envoy's whole-message comparison) */
	expect_error("{\"filter_chains\":[{\"name\":\"a\",\"filter_chain_match\":{\"destination_port\":80,\"server_names\":[\"a.com\"]}},"
		     "{\"name\":\"b\",\"filter_chain_match\":{\"destination_port\":80,\"server_names\":[\"a.com\"]}}]}",
		     "filter_chains[1]: multiple filter chains with the same matching rules are defined",
		     "filter_chains[0] 'a'");
	expect_error("{\"filter_chains\":[{\"name\":\"a\"},{\"name\":\"b\",\"filter_chain_match\":{}}]}",
		     "filter_chains[1]: multiple filter chains with the same matching rules", "'b'");
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"transport_protocol\":\"tls\"}},"
		     "{\"filter_chain_match\":{\"destination_port\":80}},"
		     "{\"filter_chain_match\":{\"destination_port\":80}}]}",
		     "filter_chains[2]: multiple filter chains with the same matching rules", "filter_chains[1]");
	/* overlapping matchers: found when two chains claim one leaf of the tree */
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"server_names\":[\"a.com\",\"b.com\"]}},"
		     "{\"filter_chain_match\":{\"server_names\":[\"b.com\"]}}]}",
		     "filter_chains[1]: multiple filter chains with overlapping matching rules",
		     "overlaps filter_chains[0]");
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"server_names\":[\"A.com\"]}},"
		     "{\"filter_chain_match\":{\"server_names\":[\"a.com\"]}}]}",
		     "filter_chains[1]: multiple filter chains with overlapping", NULL);
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"10.0.0.0\",\"prefix_len\":8}]}},"
		     "{\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"10.1.2.3\",\"prefix_len\":8}]}}]}",
		     "filter_chains[1]: multiple filter chains with overlapping", NULL);
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"server_names\":[\"*.a.com\"]}},"
		     "{\"filter_chain_match\":{\"server_names\":[\".a.com\"]}}]}",
		     "filter_chains[1]: multiple filter chains with overlapping", NULL);
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"application_protocols\":[\"h2\",\"h2\"]}}]}",
		     "filter_chains[0]: multiple filter chains with overlapping", "repeats");
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"source_ports\":[80,81]}},"
		     "{\"filter_chain_match\":{\"source_ports\":[81]}}]}",
		     "filter_chains[1]: multiple filter chains with overlapping", NULL);
	/* invalid values */
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"server_names\":[\"*w.example.com\"]}}]}",
		     "filter_chains[0].filter_chain_match.server_names[0]: partial wildcards", NULL);
	expect_error("{\"filter_chains\":[{},{\"filter_chain_match\":{\"server_names\":[\"a.com\",\"*\"]}}]}",
		     "filter_chains[1].filter_chain_match.server_names[1]: partial wildcards", NULL);
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"prefix_ranges\":[{\"address_prefix\":\"10.0.0.256\",\"prefix_len\":8}]}}]}",
		     "filter_chains[0].filter_chain_match.prefix_ranges[0]: malformed IP address: 10.0.0.256", NULL);
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"source_prefix_ranges\":[{\"address_prefix\":\"\"}]}}]}",
		     "source_prefix_ranges[0]: malformed IP address", NULL);
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"direct_source_prefix_ranges\":"
		     "[{\"address_prefix\":\"fd00::\",\"prefix_len\":129}]}}]}",
		     "direct_source_prefix_ranges[0].prefix_len", NULL);
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"destination_port\":0}}]}",
		     "filter_chains[0].filter_chain_match.destination_port", NULL);
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"destination_port\":65536}}]}",
		     "destination_port", NULL);
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"source_ports\":[80,0]}}]}",
		     "filter_chains[0].filter_chain_match.source_ports[1]", NULL);
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"address_suffix\":\"::1\"}}]}",
		     "unimplemented fields", NULL);
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"suffix_len\":8}}]}",
		     "unimplemented fields", NULL);
	expect_error("{\"filter_chains\":[{\"name\":\"a\"}],\"filter_chain_matcher\":{}}",
		     "filter_chain_matcher: not supported", NULL);
}

/* Different repeated-field order is a different message to Envoy's duplicate check, and the
 * chains do overlap — so the overlap check catches them. Distinct orders of disjoint keys
 * remain accepted. */
static void test_accepted_near_duplicates(void)
{
	char err[512];
	struct sk_fcm *m = build("{\"filter_chains\":["
		"{\"filter_chain_match\":{\"server_names\":[\"a.com\"],\"transport_protocol\":\"tls\"}},"
		"{\"filter_chain_match\":{\"server_names\":[\"a.com\"]}},"
		"{\"filter_chain_match\":{\"server_names\":[\"*.a.com\"]}},"
		"{\"filter_chain_match\":{\"destination_port\":80,\"server_names\":[\"a.com\"]}}]}", err, sizeof(err));

	CHECK(m != NULL);
	sk_fcm_free(m);
	expect_error("{\"filter_chains\":[{\"filter_chain_match\":{\"server_names\":[\"a.com\",\"b.com\"]}},"
		     "{\"filter_chain_match\":{\"server_names\":[\"b.com\",\"a.com\"]}}]}",
		     "filter_chains[1]: multiple filter chains with overlapping", NULL);
}

int main(void)
{
	test_destination_port();
	test_destination_ip();
	test_prefix_len_absent();
	test_server_names();
	test_transport_and_alpn();
	test_sources();
	test_explicit_catch_all();
	test_istio_virtual_inbound();
	test_default_chain();
	test_uses_flags();
	test_errors();
	test_accepted_near_duplicates();
	return TEST_SUMMARY();
}
