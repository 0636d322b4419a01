/* retry_test: the router's retry state for one request: Envoy's internal-request rule (which
 * decides whether x-envoy-* headers count), which x-envoy-* headers never reach the upstream,
 * the route's policy merged with x-envoy-retry-on / -retry-grpc-on / -max-retries /
 * -retriable-status-codes / -retriable-header-names / -upstream-rq-timeout-ms /
 * -upstream-rq-per-try-timeout-ms, retriable_request_headers, and which responses retry. */
#include <arpa/inet.h>
#include <stdlib.h>

#include "proxy/http/retry.h"
#include "test.h"

static struct sk_addr v4(const char *ip)
{
	struct sk_addr a = {.len = sizeof(struct sockaddr_in)};
	struct sockaddr_in *s = (struct sockaddr_in *)&a.ss;

	s->sin_family = AF_INET;
	s->sin_port = htons(1234);
	inet_pton(AF_INET, ip, &s->sin_addr);
	return a;
}

static struct sk_addr v6(const char *ip)
{
	struct sk_addr a = {.len = sizeof(struct sockaddr_in6)};
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a.ss;

	s->sin6_family = AF_INET6;
	inet_pton(AF_INET6, ip, &s->sin6_addr);
	return a;
}

static struct sk_slice sl(const char *s)
{
	return (struct sk_slice){s, s ? strlen(s) : 0};
}

static bool internal(bool use_remote, uint32_t hops, const char *peer, const char *xff, size_t n_xff)
{
	struct sk_addr a = strchr(peer, ':') ? v6(peer) : v4(peer);

	return sk_retry_request_internal(use_remote, hops, &a, sl(xff), xff ? n_xff : 0);
}

static void test_internal(void)
{
	/* use_remote_address: the peer, when the request has no x-forwarded-for */
	CHECK(internal(true, 0, "127.0.0.1", NULL, 0));
	CHECK(internal(true, 0, "10.9.8.7", NULL, 0));
	CHECK(internal(true, 0, "172.31.0.1", NULL, 0));
	CHECK(internal(true, 0, "192.168.0.1", NULL, 0));
	CHECK(internal(true, 0, "fd12::1", NULL, 0));
	CHECK(internal(true, 0, "::1", NULL, 0));
	CHECK(!internal(true, 0, "127.0.0.2", NULL, 0)); /* only 127.0.0.1 is */
	CHECK(!internal(true, 0, "172.32.0.1", NULL, 0));
	CHECK(!internal(true, 0, "8.8.8.8", NULL, 0));
	CHECK(!internal(true, 0, "fe80::1", NULL, 0));
	CHECK(!internal(true, 0, "127.0.0.1", "10.0.0.1", 1)); /* appended to: two addresses */
	{
		struct sk_addr unix_peer = {.len = 2};

		unix_peer.ss.ss_family = AF_UNIX;
		CHECK(!sk_retry_request_internal(true, 0, &unix_peer, sl(NULL), 0));
	}
	/* without: exactly one x-forwarded-for address, internal */
	CHECK(!internal(false, 0, "127.0.0.1", NULL, 0));
	CHECK(internal(false, 0, "8.8.8.8", "10.1.2.3", 1));
	CHECK(internal(false, 0, "8.8.8.8", " 192.168.1.1 ", 1));
	CHECK(internal(false, 0, "8.8.8.8", "fd00::7", 1));
	CHECK(!internal(false, 0, "127.0.0.1", "1.2.3.4", 1));
	CHECK(!internal(false, 0, "127.0.0.1", "10.1.2.3,10.0.0.1", 1));
	CHECK(!internal(false, 0, "127.0.0.1", "10.1.2.3", 2)); /* two headers */
	CHECK(!internal(false, 1, "127.0.0.1", "10.1.2.3,10.0.0.1", 1));
	CHECK(!internal(false, 0, "127.0.0.1", "not-an-ip", 1));
	CHECK(!internal(false, 0, "127.0.0.1", "", 1));
}

static void test_stripped(void)
{
	/* consumed by the router or stripped by the connection manager: never upstream */
	CHECK(sk_retry_header_stripped("x-envoy-retry-on", 16, true, false));
	CHECK(sk_retry_header_stripped("X-Envoy-Max-Retries", 19, false, false));
	CHECK(sk_retry_header_stripped("x-envoy-upstream-rq-timeout-ms", 30, true, false));
	CHECK(sk_retry_header_stripped("x-envoy-upstream-rq-per-try-timeout-ms", 38, false, true));
	CHECK(sk_retry_header_stripped("x-envoy-retriable-header-names", 30, true, false));
	CHECK(sk_retry_header_stripped("x-envoy-internal", 16, true, false));
	/* external requests only */
	CHECK(sk_retry_header_stripped("x-envoy-force-trace", 19, false, false));
	CHECK(!sk_retry_header_stripped("x-envoy-force-trace", 19, true, false));
	CHECK(sk_retry_header_stripped("x-envoy-expected-rq-timeout-ms", 30, false, false));
	/* edge requests only */
	CHECK(sk_retry_header_stripped("x-envoy-decorator-operation", 27, false, true));
	CHECK(!sk_retry_header_stripped("x-envoy-decorator-operation", 27, false, false));
	/* the rest pass */
	CHECK(!sk_retry_header_stripped("x-envoy-original-path", 21, false, true));
	CHECK(!sk_retry_header_stripped("x-request-id", 12, false, true));
	CHECK(!sk_retry_header_stripped("x-envoy", 7, false, true));
}

static struct sk_route_request request(struct sk_http_header *h, size_t n)
{
	return (struct sk_route_request){.method = sl("GET"), .path = sl("/"), .headers = h, .n_headers = n};
}

#define H(n, v) {{n, sizeof(n) - 1}, {v, sizeof(v) - 1}}

static void test_init(void)
{
	struct sk_route_forward f = {.timeout = 15.0};
	struct sk_retry_request rr;
	struct sk_http_header h1[] = {
		H("x-envoy-retry-on", "5xx, bogus,unavailable"), H("x-envoy-retry-grpc-on", "unavailable,5xx"),
		H("x-envoy-max-retries", "3"), H("x-envoy-upstream-rq-timeout-ms", "250"),
		H("x-envoy-upstream-rq-per-try-timeout-ms", "100"), H("x-envoy-retriable-status-codes", "418, 429,x"),
		H("x-envoy-retriable-header-names", " x-try-again ,x-b"),
	};
	struct sk_route_request rq = request(h1, sizeof(h1) / sizeof(h1[0]));

	/* no policy on the route: nothing unless headers ask */
	sk_retry_request_init(&rr, &f, &rq, false);
	CHECK(!rr.has_policy && rr.policy.retry_on == 0 && rr.timeout == 15.0);
	CHECK(rr.n_codes == 0 && rr.n_names == 0);
	/* internal: x-envoy-retry-on takes router tokens, x-envoy-retry-grpc-on gRPC ones */
	sk_retry_request_init(&rr, &f, &rq, true);
	CHECK(rr.has_policy);
	CHECK(rr.policy.retry_on == (SK_RETRY_5XX | SK_RETRY_GRPC_UNAVAILABLE));
	CHECK(rr.policy.num_retries == 3);                 /* x-envoy-max-retries (default 1) */
	CHECK(rr.policy.host_selection_max_attempts == 1 && rr.policy.back_off_base == 0.025);
	CHECK(rr.timeout == 0.25 && rr.policy.per_try_timeout == 0.1);
	CHECK(rr.n_codes == 2 && rr.codes[0] == 418 && rr.codes[1] == 429);
	CHECK(rr.n_names == 2 && rr.names[0].len == 11 && memcmp(rr.names[0].ptr, "x-try-again", 11) == 0);

	/* x-envoy-max-retries alone enables nothing */
	{
		struct sk_http_header h2[] = {H("x-envoy-max-retries", "5"), H("x-envoy-upstream-rq-timeout-ms", "0"),
					      H("x-envoy-upstream-rq-per-try-timeout-ms", "soon")};
		struct sk_route_request r2 = request(h2, 3);

		sk_retry_request_init(&rr, &f, &r2, true);
		CHECK(!rr.has_policy && rr.policy.num_retries == 1);
		CHECK(rr.timeout == 0); /* 0 disables the route timeout */
		CHECK(rr.policy.per_try_timeout == 0);
	}
	/* the route's policy: kept, merged into; a per-try timeout as long as the route's is none */
	f.has_retry = true;
	f.retry = (struct sk_retry_policy){.retry_on = SK_RETRY_CONNECT_FAILURE, .num_retries = 2,
					   .per_try_timeout = 20.0, .host_selection_max_attempts = 1};
	sk_retry_request_init(&rr, &f, &rq, false);
	CHECK(rr.has_policy && rr.policy.retry_on == SK_RETRY_CONNECT_FAILURE && rr.policy.num_retries == 2);
	CHECK(rr.policy.per_try_timeout == 0);
	/* retriable_request_headers: a request that matches none is not retried */
	{
		struct sk_header_matcher m = {.name = "x-retry", .name_len = 7, .kind = SK_HEADER_STRING,
					      .str = {.kind = SK_STRING_EXACT, .value = "yes", .len = 3}};
		struct sk_http_header h3[] = {H("x-retry", "yes"), H("x-envoy-max-retries", "4")};
		struct sk_route_request r3 = request(h3, 2);

		f.retry.retriable_request_headers = &m;
		f.retry.n_retriable_request_headers = 1;
		sk_retry_request_init(&rr, &f, &rq, true);
		CHECK(rr.policy.retry_on == 0 && rr.policy.num_retries == 2); /* max-retries ignored too */
		sk_retry_request_init(&rr, &f, &r3, true);
		CHECK(rr.policy.retry_on == SK_RETRY_CONNECT_FAILURE && rr.policy.num_retries == 4);
	}
}

static void test_response(void)
{
	struct sk_route_forward f = {.timeout = 15.0, .has_retry = true};
	struct sk_header_matcher m = {.name = "x-upstream-busy", .name_len = 15, .kind = SK_HEADER_PRESENT,
				      .present = true};
	uint32_t codes[] = {418};
	struct sk_http_header req[] = {H("x-envoy-retriable-status-codes", "425"),
				       H("x-envoy-retriable-header-names", "x-try-again")};
	struct sk_route_request rq = request(req, 2);
	struct sk_retry_request rr;
	struct sk_http_header busy[] = {H("content-type", "text/plain"), H("X-Upstream-Busy", "1")};
	struct sk_http_header again[] = {H("x-try-again", "")};
	struct sk_http_header limited[] = {H("x-envoy-ratelimited", "true")};
	struct sk_http_header grpc[] = {H("content-type", "application/grpc"), H("grpc-status", "14")};
	struct sk_http_header grpc_ok[] = {H("grpc-status", "0")};
	struct sk_route_request none = request(NULL, 0);
	struct sk_route_request r_busy = request(busy, 2), r_again = request(again, 1), r_lim = request(limited, 1);
	struct sk_route_request r_grpc = request(grpc, 2), r_grpc_ok = request(grpc_ok, 1);

	f.retry = (struct sk_retry_policy){.retry_on = SK_RETRY_RETRIABLE_HEADERS | SK_RETRY_RETRIABLE_STATUS_CODES |
						       SK_RETRY_GATEWAY_ERROR,
					   .num_retries = 1, .status_codes = codes, .n_status_codes = 1,
					   .retriable_headers = &m, .n_retriable_headers = 1};
	sk_retry_request_init(&rr, &f, &rq, true);
	CHECK(sk_retry_response_retriable(&rr, 418, &none));  /* the policy's code */
	CHECK(sk_retry_response_retriable(&rr, 425, &none));  /* x-envoy-retriable-status-codes */
	CHECK(!sk_retry_response_retriable(&rr, 500, &none)); /* gateway-error is 502-504 only */
	CHECK(sk_retry_response_retriable(&rr, 503, &none));
	CHECK(sk_retry_response_retriable(&rr, 200, &r_busy));  /* a retriable_headers matcher */
	CHECK(sk_retry_response_retriable(&rr, 200, &r_again)); /* x-envoy-retriable-header-names */
	CHECK(!sk_retry_response_retriable(&rr, 200, &none));
	/* x-envoy-ratelimited: retried only under envoy-ratelimited, even with a retriable code */
	CHECK(!sk_retry_response_retriable(&rr, 503, &r_lim));
	rr.policy.retry_on |= SK_RETRY_ENVOY_RATE_LIMITED;
	CHECK(sk_retry_response_retriable(&rr, 429, &r_lim));
	/* external: the header's codes and names do not count */
	sk_retry_request_init(&rr, &f, &rq, false);
	CHECK(!sk_retry_response_retriable(&rr, 425, &none));
	CHECK(!sk_retry_response_retriable(&rr, 200, &r_again));
	CHECK(sk_retry_response_retriable(&rr, 200, &r_busy));
	/* retriable-headers off: matchers ignored */
	rr.policy.retry_on = SK_RETRY_5XX | SK_RETRY_RETRIABLE_4XX;
	CHECK(!sk_retry_response_retriable(&rr, 200, &r_busy));
	CHECK(sk_retry_response_retriable(&rr, 409, &none) && !sk_retry_response_retriable(&rr, 404, &none));
	CHECK(sk_retry_response_retriable(&rr, 500, &none));
	/* gRPC: the grpc-status of a trailers-only response */
	rr.policy.retry_on = SK_RETRY_GRPC_UNAVAILABLE;
	CHECK(sk_retry_response_retriable(&rr, 200, &r_grpc));
	CHECK(!sk_retry_response_retriable(&rr, 200, &r_grpc_ok));
	rr.policy.retry_on = SK_RETRY_GRPC_CANCELLED;
	CHECK(!sk_retry_response_retriable(&rr, 200, &r_grpc));
}

int main(void)
{
	test_internal();
	test_stripped();
	test_init();
	test_response();
	return TEST_SUMMARY();
}
