/* retry: the router's retry and timeout state for one request, as Envoy builds it
 * (RetryStateImpl, FilterUtility::finalTimeout): the route's retry_policy and timeout merged
 * with the request's x-envoy-retry-on, x-envoy-retry-grpc-on, x-envoy-max-retries,
 * x-envoy-retriable-status-codes, x-envoy-retriable-header-names,
 * x-envoy-upstream-rq-timeout-ms and x-envoy-upstream-rq-per-try-timeout-ms, which count only
 * for internal requests (the connection manager strips them from external ones); and the
 * decision whether a response is retried. Pure: no I/O; an sk_retry_request points into the
 * route configuration and the request's headers, which outlive it. */
#ifndef SKIFF_PROXY_HTTP_RETRY_H
#define SKIFF_PROXY_HTTP_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/http/route_table.h"
#include "xds/translate/address.h"

#define SK_RETRY_MAX_HEADER_CODES 16
#define SK_RETRY_MAX_HEADER_NAMES 8

struct sk_retry_request {
	struct sk_retry_policy policy;   /* the route's (shallow copy: its arrays stay the route's)
					  * with the request's headers merged in */
	bool has_policy;                 /* a retry policy or a per-try timeout is in effect */
	uint32_t codes[SK_RETRY_MAX_HEADER_CODES]; /* x-envoy-retriable-status-codes */
	size_t n_codes;
	struct sk_slice names[SK_RETRY_MAX_HEADER_NAMES]; /* x-envoy-retriable-header-names */
	size_t n_names;
	double timeout;                  /* the route timeout, seconds; 0: none */
};

/* Whether the request is internal as Envoy's connection manager decides it (before it appends
 * to x-forwarded-for): with use_remote_address, no x-forwarded-for and a peer in an internal
 * range; without it, an x-forwarded-for of exactly one address, internal (xff_last: the last
 * x-forwarded-for header's value, ptr NULL when there is none; xff_count: how many there are).
 * Internal ranges (Envoy's default): 10/8, 172.16/12, 192.168/16, 127.0.0.1, fd00::/8, ::1. */
bool sk_retry_request_internal(bool use_remote_address, uint32_t xff_num_trusted_hops, const struct sk_addr *peer,
			       struct sk_slice xff_last, size_t xff_count);

/* True when name is one of the x-envoy-* request headers the connection manager strips from
 * external requests (edge: use_remote_address too) or the router consumes from internal ones:
 * never forwarded upstream. */
bool sk_retry_header_stripped(const char *name, size_t len, bool internal, bool edge);

/* Builds rr for a request routed to f. route_timeout is f's timeout; req its headers (read only
 * when internal). */
void sk_retry_request_init(struct sk_retry_request *rr, const struct sk_route_forward *f,
			   const struct sk_route_request *req, bool internal);

/* Whether a response with this status and these headers (a request view of the response's
 * headers) is retried under rr: x-envoy-ratelimited (only with envoy-ratelimited), 5xx,
 * gateway-error, retriable-4xx (409), retriable-status-codes (the policy's and the header's),
 * retriable-headers (the policy's matchers and the header's names), and the gRPC statuses of a
 * grpc-status header (cancelled, deadline-exceeded, resource-exhausted, unavailable, internal). */
bool sk_retry_response_retriable(const struct sk_retry_request *rr, unsigned status,
				 const struct sk_route_request *resp);

#endif
