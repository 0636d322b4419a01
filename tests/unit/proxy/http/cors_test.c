/* cors_test: Envoy's CORS decision on translated route configurations: which policies apply
 * (route, virtual host, route configuration; the deprecated fields only without typed ones; a
 * disabled filter), field-by-field precedence, origin matching, preflights answered or passed
 * on, filter_enabled / shadow_enabled, and the headers of the answer and of responses. */
#include <stdlib.h>

#include "proxy/http/cors.h"
#include "test.h"
#include "xds/pbjson.h"

static char err[1024];

static struct sk_route_config *route(const char *text)
{
	json_t *j;
	ProtobufCMessage *m;
	struct sk_route_config *rc = NULL;
	char *s = strdup(text);

	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(s, 0, NULL);
	free(s);
	m = j ? sk_pbjson_decode(&envoy__config__route__v3__route_configuration__descriptor, j, NULL, err, sizeof(err))
	      : NULL;
	if (m)
		rc = sk_route_config_new((void *)m, err, sizeof(err));
	if (rc == NULL)
		fprintf(stderr, "test input: %s\n", j ? err : "bad JSON");
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	json_decref(j);
	return rc;
}

#define CORS "'@type':'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy'"
#define TPFC(...) "'typed_per_filter_config':{'envoy.filters.http.cors':{" CORS __VA_ARGS__ "}}"
#define ROUTE(prefix, ...) "{'match':{'prefix':'" prefix "'},'route':{'cluster':'c'}" __VA_ARGS__ "}"

static struct sk_slice sl(const char *s)
{
	return (struct sk_slice){s, s ? strlen(s) : 0};
}

static void collect(void *ctx, const char *name, const char *value, size_t len)
{
	char *out = ctx;
	size_t n = strlen(out);

	snprintf(out + n, 1024 - n, "%s: %.*s\n", name, (int)len, value);
}

/* The headers for a request to r: the decision, then what the answer or response carries. */
static const char *run(struct sk_cors *cs, const struct sk_route *r, const char *origin, const char *method,
		       const char *acrm, uint64_t rnd)
{
	static char out[1024];

	sk_cors_evaluate(cs, r, sl(origin), sl(method), sl(acrm), sl("x-req-h"), sl("true"), rnd, rnd);
	out[0] = '\0';
	sk_cors_headers(cs, cs->preflight, collect, out);
	return out;
}

static void test_typed(void)
{
	struct sk_route_config *rc = route(
		"{'name':'r'," TPFC(",'max_age':'60'") ",'virtual_hosts':[{'name':'v','domains':['*'],"
		TPFC(",'allow_origin_string_match':[{'exact':'https://a.example'},{'suffix':'.b.example','ignore_case':true},"
		     "{'safe_regex':{'regex':'https://[a-z]+\\\\.c'}}],'allow_methods':'GET,POST','allow_headers':'x-a',"
		     "'expose_headers':'x-e','allow_credentials':true,'allow_private_network_access':true") ",'routes':["
		ROUTE("/r", "," TPFC(",'allow_methods':'PUT'")) ","
		ROUTE("/off", ",'typed_per_filter_config':{'envoy.filters.http.cors':{'@type':'type.googleapis.com/"
			      "envoy.config.route.v3.FilterConfig','disabled':true}}") ","
		ROUTE("/half", "," TPFC(",'filter_enabled':{'default_value':{'numerator':50,'denominator':'TEN_THOUSAND'}},"
					"'shadow_enabled':{'default_value':{'numerator':100}}")) ","
		ROUTE("/strict", "," TPFC(",'forward_not_matching_preflights':false")) ","
		ROUTE("/star", "," TPFC(",'allow_origin_string_match':[{'exact':'*'}],'allow_methods':'*',"
					"'allow_headers':'*','allow_credentials':false")) ","
		ROUTE("/", "") "]}]}");
	const struct sk_virtual_host *v;
	const struct sk_cors_policy *p[SK_CORS_MAX_POLICIES];
	struct sk_cors cs;

	CHECK(rc != NULL);
	if (rc == NULL)
		return;
	v = &rc->vhosts[0];
	/* most specific first: route, virtual host, route configuration */
	CHECK(sk_cors_policies(&v->routes[0], p) == 3 && p[0] == v->routes[0].cors && p[1] == v->cors && p[2] == rc->cors);
	CHECK(sk_cors_policies(&v->routes[5], p) == 2 && p[0] == v->cors);
	CHECK(sk_cors_policies(&v->routes[1], p) == 0); /* the route disables the filter */

	/* a preflight from an allowed origin: answered, each field from the most specific policy
	 * that sets it (methods from the route, the rest from the virtual host, max-age from the
	 * route configuration) */
	CHECK_STR(run(&cs, &v->routes[0], "https://a.example", "OPTIONS", "PUT", 0),
		  "access-control-allow-origin: https://a.example\n"
		  "access-control-allow-credentials: true\n"
		  "access-control-allow-methods: PUT\n"
		  "access-control-allow-headers: x-a\n"
		  "access-control-max-age: 60\n"
		  "access-control-allow-private-network: true\n"
		  "access-control-expose-headers: x-e\n");
	CHECK(cs.checked && cs.allowed && cs.cors_request && cs.preflight);
	/* an ordinary request from an allowed origin: allow-origin, credentials, expose-headers */
	CHECK_STR(run(&cs, &v->routes[5], "https://X.B.EXAMPLE", "GET", NULL, 0),
		  "access-control-allow-origin: https://X.B.EXAMPLE\n"
		  "access-control-allow-credentials: true\n"
		  "access-control-expose-headers: x-e\n");
	CHECK(!cs.preflight);
	CHECK(sk_cors_overrides(&cs, "Access-Control-Allow-Origin", 27));
	CHECK(sk_cors_overrides(&cs, "access-control-expose-headers", 29));
	CHECK(!sk_cors_overrides(&cs, "access-control-max-age", 22));
	CHECK(run(&cs, &v->routes[5], "https://abc.c", "GET", NULL, 0)[0] != '\0'); /* safe_regex */
	/* OPTIONS without access-control-request-method is no preflight */
	run(&cs, &v->routes[5], "https://a.example", "OPTIONS", NULL, 0);
	CHECK(cs.cors_request && !cs.preflight);

	/* an origin that does not match: counted invalid; its preflight goes upstream (Envoy's
	 * default), and no response gets CORS headers */
	CHECK_STR(run(&cs, &v->routes[5], "https://evil.example", "OPTIONS", "GET", 0), "");
	CHECK(cs.checked && !cs.allowed && cs.cors_request && !cs.preflight);
	CHECK(!sk_cors_overrides(&cs, "access-control-allow-origin", 27));
	CHECK_STR(run(&cs, &v->routes[5], "https://a.example.evil", "GET", NULL, 0), "");
	/* ... unless forward_not_matching_preflights is false: answered, without allow-origin */
	CHECK_STR(run(&cs, &v->routes[3], "https://evil.example", "OPTIONS", "GET", 0),
		  "access-control-allow-credentials: true\n"
		  "access-control-allow-methods: GET,POST\n"
		  "access-control-allow-headers: x-a\n"
		  "access-control-max-age: 60\n"
		  "access-control-allow-private-network: true\n");
	CHECK(cs.preflight && !cs.allowed);

	/* no Origin: nothing checked */
	run(&cs, &v->routes[5], NULL, "GET", NULL, 0);
	CHECK(!cs.checked && !cs.cors_request);
	run(&cs, &v->routes[5], "", "GET", NULL, 0);
	CHECK(!cs.checked);

	/* filter_enabled 0.5%: random 10 -> on; random 60 -> off, shadow 100%: checked, not enforced */
	run(&cs, &v->routes[2], "https://a.example", "OPTIONS", "GET", 10);
	CHECK(cs.cors_request && cs.preflight);
	CHECK_STR(run(&cs, &v->routes[2], "https://a.example", "OPTIONS", "GET", 60), "");
	CHECK(cs.checked && cs.allowed && !cs.cors_request && !cs.preflight);

	/* "*": every origin; methods and headers echo the request's */
	CHECK_STR(run(&cs, &v->routes[4], "https://anyone", "OPTIONS", "DELETE", 0),
		  "access-control-allow-origin: https://anyone\n"
		  "access-control-allow-methods: DELETE\n"
		  "access-control-allow-headers: x-req-h\n"
		  "access-control-max-age: 60\n"
		  "access-control-allow-private-network: true\n"
		  "access-control-expose-headers: x-e\n");

	/* the disabled route: nothing */
	CHECK_STR(run(&cs, &v->routes[1], "https://a.example", "OPTIONS", "GET", 0), "");
	CHECK(!cs.checked);
	/* no route */
	sk_cors_evaluate(&cs, NULL, sl("https://a.example"), sl("GET"), sl(NULL), sl(NULL), sl(NULL), 0, 0);
	CHECK(!cs.checked && cs.n == 0);
	sk_route_config_free(rc);
}

static void test_legacy(void)
{
	/* the deprecated cors fields count only when no level has a typed policy */
	struct sk_route_config *rc = route(
		"{'name':'r','virtual_hosts':[{'name':'v','domains':['*'],'cors':{'allow_origin_string_match':"
		"[{'prefix':'https://'}],'allow_methods':'GET','expose_headers':'x-vh'},'routes':["
		"{'match':{'prefix':'/typed'},'route':{'cluster':'c','cors':{'allow_origin_string_match':[{'exact':'x'}]}},"
		TPFC(",'allow_origin_string_match':[{'exact':'https://t'}]") "},"
		"{'match':{'prefix':'/'},'route':{'cluster':'c','cors':{'expose_headers':'x-l'}}}]}]}");
	const struct sk_cors_policy *p[SK_CORS_MAX_POLICIES];
	struct sk_cors cs;

	CHECK(rc != NULL);
	if (rc == NULL)
		return;
	CHECK(sk_cors_policies(&rc->vhosts[0].routes[1], p) == 2 && p[0] == rc->vhosts[0].routes[1].cors_legacy &&
	      p[1] == rc->vhosts[0].cors_legacy);
	CHECK_STR(run(&cs, &rc->vhosts[0].routes[1], "https://l", "GET", NULL, 0),
		  "access-control-allow-origin: https://l\n"
		  "access-control-expose-headers: x-l\n");
	/* a typed policy on the route: the legacy ones are ignored */
	CHECK(sk_cors_policies(&rc->vhosts[0].routes[0], p) == 1 && p[0] == rc->vhosts[0].routes[0].cors);
	CHECK_STR(run(&cs, &rc->vhosts[0].routes[0], "https://l", "GET", NULL, 0), "");
	CHECK(cs.checked && !cs.allowed);
	sk_route_config_free(rc);
}

int main(void)
{
	test_typed();
	test_legacy();
	sk_regex_thread_free();
	return TEST_SUMMARY();
}
