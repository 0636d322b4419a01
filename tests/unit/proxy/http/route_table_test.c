/* route_table_test: which virtual host and route a request gets, with Envoy's rules: domain
 * precedence and ports, each path, header and query matcher, gRPC, runtime fractions, and
 * weighted cluster picks over every value of the weight range. */
#include <stdlib.h>

#include "proxy/http/route_table.h"
#include "test.h"
#include "xds/pbjson.h"

static char err[1024];

static struct sk_route_config *route(const char *text)
{
	char *s = strdup(text);
	json_t *j;
	ProtobufCMessage *m = NULL;
	struct sk_route_config *rc = NULL;

	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(s, 0, NULL);
	if (j)
		m = sk_pbjson_decode(&envoy__config__route__v3__route_configuration__descriptor, j, NULL, err, sizeof(err));
	if (m)
		rc = sk_route_config_new((void *)m, err, sizeof(err));
	if (rc == NULL)
		fprintf(stderr, "test input: %s\n", j ? err : "bad JSON");
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	json_decref(j);
	free(s);
	return rc;
}

static struct sk_slice sl(const char *s)
{
	struct sk_slice v = {s, s ? strlen(s) : 0};

	return v;
}

/* A GET request for host/path with up to 8 "name: value" headers. */
struct req {
	struct sk_route_request r;
	struct sk_http_header h[8];
};

static struct sk_route_request *mkreq(struct req *q, const char *host, const char *path, const char *const *hdrs)
{
	memset(q, 0, sizeof(*q));
	q->r.method = sl("GET");
	q->r.authority = sl(host);
	q->r.path = sl(path);
	q->r.scheme = sl("http");
	for (size_t i = 0; hdrs && hdrs[2 * i]; i++) {
		q->h[i].name = sl(hdrs[2 * i]);
		q->h[i].value = sl(hdrs[2 * i + 1]);
		q->r.n_headers = i + 1;
	}
	q->r.headers = q->h;
	return &q->r;
}

static const char *vhost_for(const struct sk_route_config *rc, const char *host)
{
	struct req q;
	const struct sk_virtual_host *v = sk_route_table_find_vhost(rc, mkreq(&q, host, "/", NULL));

	return v ? v->name : "(none)";
}

/* The name of the route (of the only virtual host) that a request gets, "(none)" for 404. */
static const char *route_for(const struct sk_route_config *rc, const char *path, const char *const *hdrs)
{
	struct req q;
	const struct sk_route *r = sk_route_table_match(rc, mkreq(&q, "h", path, hdrs), 0);

	return r ? r->name : "(none)";
}

#define VH(name, domains) "{'name':'" name "','domains':[" domains "],'routes':[{'match':{'prefix':'/'},'route':{'cluster':'c'}}]}"

static void test_domains(void)
{
	static const struct {
		const char *host, *vhost;
	} table[] = {
		{"foo.example.com", "exact"},
		{"FOO.Example.COM", "exact"},            /* hosts are case-insensitive */
		{"foo.example.com:8080", "exact-port"},   /* a port must be in the domain ... */
		{"foo.example.com:9090", "prefix-foo"},   /* ... Envoy does not retry without it */
		{"a-bar.example.com", "suffix-bar"},      /* the longest suffix wins */
		{"x.example.com", "suffix-example"},
		{"example.com", "suffix-com"},
		{".example.com", "suffix-com"},           /* "*.example.com" needs at least one char */
		{"foo.x.com", "suffix-com"},              /* suffixes before prefixes */
		{"foo.bar.baz", "prefix-foobar"},         /* the longest prefix wins */
		{"foo.other", "prefix-foo"},
		{"foo.", "default"},                      /* "foo.*" needs at least one char */
		{"other.org", "default"},
		{"10.96.0.7:9080", "ip"},
		{"[::1]:80", "v6"},
	};
	struct sk_route_config *rc = route(
		"{'name':'r','virtual_hosts':[" VH("default", "'*'") "," VH("exact", "'foo.example.com'") ","
		VH("exact-port", "'foo.example.com:8080'") "," VH("suffix-example", "'*.example.com'") ","
		VH("suffix-bar", "'*-bar.example.com'") "," VH("suffix-com", "'*.com'") ","
		VH("prefix-foo", "'foo.*'") "," VH("prefix-foobar", "'foo.bar.*'") ","
		VH("ip", "'10.96.0.7','10.96.0.7:9080'") "," VH("v6", "'[::1]:80'") "]}");
	struct req q;

	CHECK(rc != NULL);
	if (rc == NULL)
		return;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const char *got = vhost_for(rc, table[i].host);

		if (strcmp(got, table[i].vhost) != 0)
			fprintf(stderr, "host %s\n", table[i].host);
		CHECK_STR(got, table[i].vhost);
	}
	/* no host at all: nothing (Envoy's early-reply case) */
	CHECK(sk_route_table_find_vhost(rc, mkreq(&q, NULL, "/", NULL)) == NULL);
	sk_route_config_free(rc);

	/* only "*": every request, even without a host */
	rc = route("{'name':'r','virtual_hosts':[" VH("any", "'*'") "]}");
	CHECK(rc && sk_route_table_find_vhost(rc, mkreq(&q, NULL, "/", NULL)) == &rc->vhosts[0]);
	sk_route_config_free(rc);

	/* no "*": unknown hosts get nothing */
	rc = route("{'name':'r','virtual_hosts':[" VH("a", "'a.com'") "]}");
	CHECK(rc && sk_route_table_find_vhost(rc, mkreq(&q, "b.com", "/", NULL)) == NULL);
	CHECK(rc && sk_route_table_match(rc, mkreq(&q, "b.com", "/", NULL), 0) == NULL);
	sk_route_config_free(rc);

	/* ignore_port_in_host_matching */
	rc = route("{'name':'r','ignore_port_in_host_matching':true,'virtual_hosts':[" VH("a", "'a.com'") ","
		   VH("v6", "'[::1]'") "," VH("default", "'*'") "]}");
	if (rc) {
		CHECK_STR(vhost_for(rc, "a.com:80"), "a");
		CHECK_STR(vhost_for(rc, "A.COM"), "a");
		CHECK_STR(vhost_for(rc, "[::1]:8080"), "v6");
		CHECK_STR(vhost_for(rc, "[::1]"), "v6");
	}
	sk_route_config_free(rc);

	/* vhost_header: another header names the host */
	rc = route("{'name':'r','vhost_header':'X-Host','virtual_hosts':[" VH("a", "'a.com'") "," VH("default", "'*'") "]}");
	if (rc) {
		static const char *const hdrs[] = {"x-host", "A.com", NULL};

		CHECK(sk_route_table_find_vhost(rc, mkreq(&q, "b.com", "/", hdrs)) == &rc->vhosts[0]);
		CHECK(sk_route_table_find_vhost(rc, mkreq(&q, "a.com", "/", NULL)) == NULL);
	}
	sk_route_config_free(rc);
}

static void test_ports(void)
{
	struct sk_slice s;

	CHECK(sk_route_host_port_start(sl("h:80")) == 1);
	CHECK(sk_route_host_port_start(sl("[::1]:80")) == 5);
	CHECK(sk_route_host_port_start(sl("[::1]")) == SIZE_MAX);
	CHECK(sk_route_host_port_start(sl("h")) == SIZE_MAX);
	s = sk_route_host_strip_port(sl("h:80"), 0);
	CHECK(s.len == 1);
	s = sk_route_host_strip_port(sl("h:80"), 80);
	CHECK(s.len == 1);
	s = sk_route_host_strip_port(sl("h:80"), 81);     /* strip_matching_host_port: other port */
	CHECK(s.len == 4);
	s = sk_route_host_strip_port(sl("h:x"), 0);       /* not a port */
	CHECK(s.len == 3);
	s = sk_route_host_strip_port(sl("[::1]:443"), 0);
	CHECK(s.len == 5);
}

static void test_paths(void)
{
	struct sk_route_config *rc = route(
		"{'name':'r','virtual_hosts':[{'name':'v','domains':['*'],'routes':["
		"{'name':'exact','match':{'path':'/exact'},'route':{'cluster':'c'}},"
		"{'name':'ci','match':{'prefix':'/CI','case_sensitive':false},'route':{'cluster':'c'}},"
		"{'name':'ci-exact','match':{'path':'/Exact-CI','case_sensitive':false},'route':{'cluster':'c'}},"
		"{'name':'regex','match':{'safe_regex':{'regex':'/re/[0-9]+'}},'route':{'cluster':'c'}},"
		"{'name':'sep','match':{'path_separated_prefix':'/docs'},'route':{'cluster':'c'}},"
		"{'name':'api','match':{'prefix':'/api'},'route':{'cluster':'c'}},"
		"{'name':'connect','match':{'connect_matcher':{}},'route':{'cluster':'c'}},"
		"{'name':'all','match':{'prefix':'/'},'route':{'cluster':'c'}}]}]}");
	static const struct {
		const char *path, *route;
	} table[] = {
		{"/exact", "exact"},
		{"/exact?x=1", "exact"},      /* the query is not part of the path */
		{"/exact#frag", "exact"},
		{"/exact/", "all"},
		{"/Exact", "all"},            /* case-sensitive by default */
		{"/ci/x", "ci"},
		{"/cI", "ci"},
		{"/exact-ci", "ci-exact"},
		{"/re/123", "regex"},
		{"/re/123?q", "regex"},
		{"/re/123/x", "all"},         /* safe_regex is a full match */
		{"/x/re/1", "all"},
		{"/docs", "sep"},
		{"/docs/a", "sep"},
		{"/docs?a", "sep"},
		{"/docsx", "all"},
		{"/api", "api"},
		{"/apix", "api"},
		{"/Api", "all"},
		{"", "(none)"},               /* "" matches no "/" prefix */
	};
	struct req q;

	CHECK(rc != NULL);
	if (rc == NULL)
		return;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const char *got = route_for(rc, table[i].path, NULL);

		if (strcmp(got, table[i].route) != 0)
			fprintf(stderr, "path %s\n", table[i].path);
		CHECK_STR(got, table[i].route);
	}
	/* CONNECT: no path; only the connect route takes it */
	mkreq(&q, "h", NULL, NULL);
	q.r.method = sl("CONNECT");
	CHECK(sk_route_table_match(rc, &q.r, 0) == &rc->vhosts[0].routes[6]);
	mkreq(&q, "h", NULL, NULL);
	CHECK(sk_route_table_match(rc, &q.r, 0) == NULL); /* a GET without path matches nothing */
	sk_route_config_free(rc);

	/* ignore_path_parameters_in_path_matching */
	rc = route("{'name':'r','ignore_path_parameters_in_path_matching':true,'virtual_hosts':[{'name':'v',"
		   "'domains':['*'],'routes':[{'name':'p','match':{'path':'/p'},'route':{'cluster':'c'}}]}]}");
	if (rc) {
		CHECK_STR(route_for(rc, "/p;jsessionid=1", NULL), "p");
		CHECK_STR(route_for(rc, "/p;x?y=1", NULL), "p");
	}
	sk_route_config_free(rc);
	rc = route("{'name':'r','virtual_hosts':[{'name':'v','domains':['*'],'routes':[{'name':'p','match':"
		   "{'path':'/p'},'route':{'cluster':'c'}}]}]}");
	CHECK(rc && strcmp(route_for(rc, "/p;jsessionid=1", NULL), "(none)") == 0);
	sk_route_config_free(rc);
}

#define HR(name, matcher) "{'name':'" name "','match':{'prefix':'/','headers':[" matcher "]},'route':{'cluster':'c'}}"

static void test_headers(void)
{
	struct sk_route_config *rc = route(
		"{'name':'r','virtual_hosts':[{'name':'v','domains':['*'],'routes':["
		HR("exact", "{'name':'x-exact','string_match':{'exact':'Yes'}}") ","
		HR("exact-ci", "{'name':'x-ci','string_match':{'exact':'yes','ignore_case':true}}") ","
		HR("prefix", "{'name':'x-prefix','prefix_match':'ab'}") ","
		HR("suffix", "{'name':'x-suffix','suffix_match':'yz'}") ","
		HR("contains", "{'name':'x-contains','contains_match':'mid'}") ","
		HR("regex", "{'name':'x-regex','safe_regex_match':{'regex':'v[0-9]'}}") ","
		HR("range", "{'name':'x-range','range_match':{'start':'-5','end':'10'}}") ","
		HR("not-beta", "{'name':'x-channel','exact_match':'beta','invert_match':true}") ","
		HR("absent", "{'name':'x-absent','present_match':true,'invert_match':true}") ","
		HR("missing-empty", "{'name':'x-me','string_match':{'exact':''},'treat_missing_header_as_empty':true}") ","
		HR("method", "{'name':':method','exact_match':'POST'}") ","
		HR("joined", "{'name':'x-multi','exact_match':'a,b'}") ","
		HR("both", "{'name':'x-one','present_match':true},{'name':'x-two','present_match':true}") ","
		HR("any-value", "{'name':'x-any','exact_match':''}") ","
		"{'name':'fallback','match':{'prefix':'/'},'route':{'cluster':'c'}}]}]}");
	static const struct {
		const char *hdrs[12];
		const char *route;
	} table[] = {
		{{"x-exact", "Yes"}, "exact"},
		{{"X-EXACT", "Yes"}, "exact"},              /* names are case-insensitive */
		{{"x-exact", "yes"}, "absent"},             /* values are not; an absent x-channel does not
							 * match the inverted "not-beta" (Envoy) */
		{{"x-ci", "YES"}, "exact-ci"},
		{{"x-prefix", "abc"}, "prefix"},
		{{"x-prefix", "xab"}, "absent"},
		{{"x-suffix", "xyz"}, "suffix"},
		{{"x-contains", "amidst"}, "contains"},
		{{"x-regex", "v1"}, "regex"},
		{{"x-regex", "v12"}, "absent"},           /* full match */
		{{"x-range", "-5"}, "range"},
		{{"x-range", " 9 "}, "range"},              /* SimpleAtoi trims whitespace */
		{{"x-range", "10"}, "absent"},            /* [start, end) */
		{{"x-range", "1.5"}, "absent"},
		{{"x-range", "99999999999999999999"}, "absent"}, /* overflow */
		{{"x-channel", "stable"}, "not-beta"},
		{{"x-channel", "beta"}, "absent"},          /* inverted; x-absent is absent */
		{{"x-channel", "beta", "x-absent", "1"}, "missing-empty"},
		{{"x-channel", "beta", "x-absent", "1", "x-me", "v"}, "fallback"},
		{{"x-channel", "beta", "x-absent", "1", "x-multi", "a", "x-me", "v"}, "fallback"},
	};
	struct req q;

	CHECK(rc != NULL);
	if (rc == NULL)
		return;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const char *got = route_for(rc, "/", table[i].hdrs);

		if (strcmp(got, table[i].route) != 0)
			fprintf(stderr, "case %zu\n", i);
		CHECK_STR(got, table[i].route);
	}
	/* repeated headers are joined with ',' before matching */
	{
		static const char *const h[] = {"x-channel", "beta", "x-absent", "1", "x-me", "v", "x-multi", "a",
						"x-multi", "b", NULL};

		CHECK_STR(route_for(rc, "/", h), "joined");
	}
	{
		static const char *const h[] = {"x-channel", "beta", "x-absent", "1", "x-me", "v", "x-one", "",
						"x-two", "2", NULL};

		CHECK_STR(route_for(rc, "/", h), "both");
	}
	{
		static const char *const h[] = {"x-channel", "beta", "x-absent", "1", "x-me", "v", "x-any", "whatever",
						NULL};

		CHECK_STR(route_for(rc, "/", h), "any-value");
	}
	/* pseudo-headers come from the request line */
	{
		static const char *const h[] = {"x-channel", "beta", "x-absent", "1", "x-me", "v", NULL};

		mkreq(&q, "h", "/", h);
		q.r.method = sl("POST");
		CHECK(sk_route_table_match(rc, &q.r, 0) == &rc->vhosts[0].routes[10]);
	}
	/* a join longer than the scratch space matches nothing, and is not mistaken for absent */
	{
		static char big[3000];
		static const char *h[] = {"x-channel", "beta", "x-absent", "1", "x-me", "v", "x-multi", big, "x-multi",
					  "b", NULL};

		memset(big, 'a', sizeof(big) - 1);
		CHECK_STR(route_for(rc, "/", h), "fallback");
	}
	sk_route_config_free(rc);

	/* an inverted value matcher does not match an absent header (Envoy) */
	rc = route("{'name':'r','virtual_hosts':[{'name':'v','domains':['*'],'routes':["
		   HR("inv", "{'name':'x','string_match':{'exact':'a'},'invert_match':true}") ","
		   HR("inv-empty", "{'name':'x','string_match':{'exact':'a'},'invert_match':true,"
			"'treat_missing_header_as_empty':true}") "]}]}");
	if (rc) {
		static const char *const a[] = {"x", "a", NULL}, *const b[] = {"x", "b", NULL};

		CHECK_STR(route_for(rc, "/", NULL), "inv-empty");
		CHECK_STR(route_for(rc, "/", a), "(none)");
		CHECK_STR(route_for(rc, "/", b), "inv");
	}
	sk_route_config_free(rc);
}

static void test_query_and_grpc(void)
{
	struct sk_route_config *rc = route(
		"{'name':'r','virtual_hosts':[{'name':'v','domains':['*'],'routes':["
		"{'name':'debug','match':{'prefix':'/','query_parameters':[{'name':'debug','present_match':true}]},"
		" 'route':{'cluster':'c'}},"
		"{'name':'v1','match':{'prefix':'/','query_parameters':[{'name':'v','string_match':{'exact':'one',"
		" 'ignore_case':true}}]},'route':{'cluster':'c'}},"
		"{'name':'grpc','match':{'prefix':'/','grpc':{}},'route':{'cluster':'c'}},"
		"{'name':'half','match':{'prefix':'/half','runtime_fraction':{'default_value':{'numerator':50}}},"
		" 'route':{'cluster':'c'}},"
		"{'name':'all','match':{'prefix':'/'},'route':{'cluster':'c'}}]}]}");
	static const struct {
		const char *path, *route;
	} table[] = {
		{"/?debug", "debug"},
		{"/?a=1&debug=0", "debug"},
		{"/?debugx=1", "all"},
		{"/debug", "all"},
		{"/?v=ONE", "v1"},
		{"/?v=one&v=two", "v1"},
		{"/?v=two&v=one", "all"},     /* the first value counts */
		{"/?v=on", "all"},
		{"/?v", "all"},               /* present without '=': value "" */
	};
	struct req q;

	CHECK(rc != NULL);
	if (rc == NULL)
		return;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		CHECK_STR(route_for(rc, table[i].path, NULL), table[i].route);
	mkreq(&q, "h", "/svc.Greeter/Hello", NULL);
	q.r.is_grpc = true;
	CHECK(sk_route_table_match(rc, &q.r, 0) == &rc->vhosts[0].routes[2]);
	CHECK(sk_route_is_grpc_content_type(sl("application/grpc")));
	CHECK(sk_route_is_grpc_content_type(sl("application/grpc+proto")));
	CHECK(!sk_route_is_grpc_content_type(sl("application/grpc-web")));
	CHECK(!sk_route_is_grpc_content_type(sl("application/json")));
	CHECK(!sk_route_is_grpc_content_type(sl(NULL)));
	/* runtime_fraction 50%: random % 100 < 50 */
	mkreq(&q, "h", "/half", NULL);
	CHECK(sk_route_table_match(rc, &q.r, 49) == &rc->vhosts[0].routes[3]);
	CHECK(sk_route_table_match(rc, &q.r, 50) == &rc->vhosts[0].routes[4]);
	CHECK(sk_route_table_match(rc, &q.r, 1049) == &rc->vhosts[0].routes[3]);
	sk_route_config_free(rc);
}

static void test_weighted(void)
{
	struct sk_route_config *rc = route(
		"{'name':'r','virtual_hosts':[{'name':'v','domains':['*'],'routes':["
		"{'match':{'prefix':'/a'},'route':{'weighted_clusters':{'clusters':[{'name':'v1','weight':90},"
		" {'name':'v2','weight':10}],'total_weight':100}}},"
		"{'match':{'prefix':'/b'},'route':{'weighted_clusters':{'clusters':[{'name':'x','weight':3},"
		" {'name':'zero','weight':0},{'name':'y','weight':5},{'name':'zero2'}],"
		" 'header_name':'x-random'}}},"
		"{'match':{'prefix':'/c'},'route':{'weighted_clusters':{'clusters':[{'name':'off','weight':0},"
		" {'name':'on','weight':100}]}}},"
		"{'match':{'prefix':'/'},'route':{'cluster':'plain'}}]}]}");
	const struct sk_route_forward *f;
	unsigned counts[4] = {0};
	bool ok = true;
	struct req q;

	CHECK(rc != NULL);
	if (rc == NULL)
		return;
	f = &rc->vhosts[0].routes[0].fwd;
	CHECK(f->total_weight == 100);
	for (uint64_t v = 0; v < 100; v++) /* [0, 90) -> v1, [90, 100) -> v2 */
		ok &= sk_route_pick_weighted(f, NULL, v) == &f->weighted[v < 90 ? 0 : 1];
	CHECK(ok);
	CHECK(sk_route_pick_weighted(f, NULL, 190) == &f->weighted[1]); /* modulo the total */
	CHECK(sk_route_pick_weighted(f, NULL, UINT64_MAX) == &f->weighted[UINT64_MAX % 100 < 90 ? 0 : 1]);

	f = &rc->vhosts[0].routes[1].fwd;
	CHECK(f->total_weight == 8);
	for (uint64_t v = 0; v < 8 * 1000; v++) {
		const struct sk_route_weighted_cluster *w = sk_route_pick_weighted(f, NULL, v);

		ok &= w == &f->weighted[v % 8 < 3 ? 0 : 2]; /* [0, 3) x, [3, 8) y */
		if (w)
			counts[w - f->weighted]++;
	}
	CHECK(ok);
	CHECK(counts[0] == 3000 && counts[1] == 0 && counts[2] == 5000 && counts[3] == 0);
	/* the random value from a header, when there is exactly one */
	{
		static const char *const one[] = {"x-random", "4", NULL};
		static const char *const two[] = {"x-random", "4", "x-random", "0", NULL};
		static const char *const bad[] = {"x-random", "-4", NULL};

		CHECK(sk_route_pick_weighted(f, mkreq(&q, "h", "/b", one), 0) == &f->weighted[2]);
		CHECK(sk_route_pick_weighted(f, mkreq(&q, "h", "/b", two), 0) == &f->weighted[0]);
		CHECK(sk_route_pick_weighted(f, mkreq(&q, "h", "/b", bad), 0) == &f->weighted[0]);
	}
	/* 0/100 sends nothing to the zero-weight cluster */
	f = &rc->vhosts[0].routes[2].fwd;
	ok = true;
	for (uint64_t v = 0; v < 100; v++)
		ok &= sk_route_pick_weighted(f, NULL, v) == &f->weighted[1];
	CHECK(ok);
	CHECK(sk_route_pick_weighted(&rc->vhosts[0].routes[3].fwd, NULL, 0) == NULL); /* not weighted */
	sk_route_config_free(rc);
}

/* Routes are tried in order: the first match wins even when a later one is more specific. */
static void test_order(void)
{
	struct sk_route_config *rc = route(
		"{'name':'r','virtual_hosts':[{'name':'v','domains':['*'],'routes':["
		"{'name':'first','match':{'prefix':'/'},'route':{'cluster':'c'}},"
		"{'name':'second','match':{'path':'/exact'},'route':{'cluster':'c'}}]}]}");

	CHECK(rc && strcmp(route_for(rc, "/exact", NULL), "first") == 0);
	sk_route_config_free(rc);
}

int main(void)
{
	test_domains();
	test_ports();
	test_paths();
	test_headers();
	test_query_and_grpc();
	test_weighted();
	test_order();
	sk_regex_thread_free();
	return TEST_SUMMARY();
}
