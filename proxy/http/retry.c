/* retry: see retry.h. The rules follow Envoy's RetryStateImpl (source/common/router/
 * retry_state_impl.cc), FilterUtility::finalTimeout (router.cc) and
 * ConnectionManagerUtility::mutateRequestHeaders / cleanInternalHeaders. */
#include "proxy/http/retry.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

/* The gRPC retry_on tokens (x-envoy-retry-grpc-on); the others are the router's. */
#define GRPC_FLAGS                                                                                 \
	(SK_RETRY_GRPC_CANCELLED | SK_RETRY_GRPC_DEADLINE_EXCEEDED | SK_RETRY_GRPC_RESOURCE_EXHAUSTED | \
	 SK_RETRY_GRPC_UNAVAILABLE | SK_RETRY_GRPC_INTERNAL)

static bool internal_v4(const uint8_t *b)
{
	return b[0] == 10 || (b[0] == 192 && b[1] == 168) || (b[0] == 172 && b[1] >= 16 && b[1] <= 31) ||
	       (b[0] == 127 && b[1] == 0 && b[2] == 0 && b[3] == 1);
}

static bool internal_v6(const struct in6_addr *a)
{
	return a->s6_addr[0] == 0xfd || memcmp(a, &in6addr_loopback, sizeof(*a)) == 0;
}

static bool internal_addr(const struct sk_addr *a)
{
	if (a == NULL || a->len == 0)
		return false;
	if (a->ss.ss_family == AF_INET)
		return internal_v4((const uint8_t *)&((const struct sockaddr_in *)&a->ss)->sin_addr);
	if (a->ss.ss_family == AF_INET6)
		return internal_v6(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
	return false; /* unix sockets: internal_address_config.unix_sockets defaults to false */
}

static struct sk_slice trim(struct sk_slice s)
{
	while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t'))
		s.ptr++, s.len--;
	while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
		s.len--;
	return s;
}

bool sk_retry_request_internal(bool use_remote_address, uint32_t xff_num_trusted_hops, const struct sk_addr *peer,
			       struct sk_slice xff_last, size_t xff_count)
{
	struct sk_slice s = xff_last;
	char text[64];
	uint8_t ip[16];
	bool single;
	size_t i;

	if (use_remote_address)
		return xff_count == 0 && internal_addr(peer); /* appending makes any XFF two addresses */
	if (xff_count == 0 || s.ptr == NULL)
		return false; /* no XFF: external, whatever the peer */
	/* the last address after skipping xff_num_trusted_hops from the end */
	for (uint32_t k = 0; k < xff_num_trusted_hops; k++) {
		for (i = s.len; i > 0 && s.ptr[i - 1] != ','; i--)
			;
		if (i == 0)
			return false;
		s.len = i - 1;
	}
	for (i = s.len; i > 0 && s.ptr[i - 1] != ','; i--)
		;
	single = i == 0 && xff_num_trusted_hops == 0 && xff_count == 1;
	s = trim((struct sk_slice){s.ptr + i, s.len - i});
	if (!single || s.len == 0 || s.len >= sizeof(text))
		return false;
	memcpy(text, s.ptr, s.len);
	text[s.len] = '\0';
	if (inet_pton(AF_INET, text, ip) == 1)
		return internal_v4(ip);
	if (inet_pton(AF_INET6, text, ip) == 1)
		return internal_v6((const struct in6_addr *)ip);
	return false;
}

bool sk_retry_header_stripped(const char *name, size_t len, bool internal, bool edge)
{
	/* consumed by the router (internal requests) and stripped by the connection manager */
	static const char *const router[] = {
		"x-envoy-retry-on", "x-envoy-retry-grpc-on", "x-envoy-max-retries",
		"x-envoy-retriable-status-codes", "x-envoy-retriable-header-names",
		"x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-rq-per-try-timeout-ms",
		"x-envoy-hedge-on-per-try-timeout", "x-envoy-upstream-alt-stat-name",
	};
	/* stripped from external requests only */
	static const char *const external[] = {
		"x-envoy-upstream-rq-timeout-alt-response", "x-envoy-expected-rq-timeout-ms",
		"x-envoy-force-trace", "x-envoy-ip-tags", "x-envoy-original-url",
	};
	static const char *const edge_only[] = {
		"x-envoy-decorator-operation", "x-envoy-downstream-service-cluster",
		"x-envoy-downstream-service-node",
	};
	size_t i;

	if (len < 8 || strncasecmp(name, "x-envoy-", 8) != 0)
		return false;
#define IN(list)                                                                     \
	for (i = 0; i < sizeof(list) / sizeof(list[0]); i++)                         \
		if (strlen(list[i]) == len && strncasecmp(name, list[i], len) == 0) \
			return true
	if (len == 16 && strncasecmp(name, "x-envoy-internal", 16) == 0)
		return true; /* always: the connection manager sets its own for internal requests */
	IN(router);
	if (internal)
		return false;
	IN(external);
	if (edge)
		IN(edge_only);
	return false;
#undef IN
}

/* absl::SimpleAtoi for an unsigned decimal (surrounding whitespace allowed). */
static bool parse_u64(struct sk_slice s, uint64_t *out)
{
	uint64_t v = 0;

	s = trim(s);
	if (s.ptr == NULL || s.len == 0)
		return false;
	if (s.ptr[0] == '+')
		s.ptr++, s.len--;
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (s.ptr[i] < '0' || s.ptr[i] > '9' || v > (UINT64_MAX - (uint64_t)(s.ptr[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s.ptr[i] - '0');
	}
	*out = v;
	return true;
}

/* Calls fn on each ','-separated, trimmed, non-empty token of s. */
static void tokens(struct sk_slice s, void (*fn)(struct sk_retry_request *rr, struct sk_slice t),
		   struct sk_retry_request *rr)
{
	size_t i = 0;

	while (s.ptr && i < s.len) {
		size_t j = i;

		while (j < s.len && s.ptr[j] != ',')
			j++;
		{
			struct sk_slice t = trim((struct sk_slice){s.ptr + i, j - i});

			if (t.len > 0)
				fn(rr, t);
		}
		i = j + 1;
	}
}

static void add_code(struct sk_retry_request *rr, struct sk_slice t)
{
	uint64_t v;

	if (rr->n_codes < SK_RETRY_MAX_HEADER_CODES && parse_u64(t, &v) && v <= UINT32_MAX)
		rr->codes[rr->n_codes++] = (uint32_t)v;
}

static void add_name(struct sk_retry_request *rr, struct sk_slice t)
{
	if (rr->n_names < SK_RETRY_MAX_HEADER_NAMES)
		rr->names[rr->n_names++] = t;
}

void sk_retry_request_init(struct sk_retry_request *rr, const struct sk_route_forward *f,
			   const struct sk_route_request *req, bool internal)
{
	struct sk_retry_policy *p = &rr->policy;
	struct sk_slice v;
	uint64_t n;
	bool any_header = false;

	memset(rr, 0, sizeof(*rr));
	rr->timeout = f->timeout;
	if (f->has_retry) {
		*p = f->retry;
	} else {
		/* no policy: what Envoy's default RetryPolicyImpl holds, for x-envoy-retry-on */
		p->num_retries = 1;
		p->host_selection_max_attempts = 1;
		p->back_off_base = 0.025;
		p->back_off_max = 0.25;
	}
	if (internal) {
		v = sk_route_request_header(req, "x-envoy-retry-on", 16);
		if (v.ptr) {
			p->retry_on |= sk_retry_on_parse(v.ptr, v.len, NULL) & ~(uint32_t)GRPC_FLAGS;
			any_header = true;
		}
		v = sk_route_request_header(req, "x-envoy-retry-grpc-on", 21);
		if (v.ptr) {
			p->retry_on |= sk_retry_on_parse(v.ptr, v.len, NULL) & (uint32_t)GRPC_FLAGS;
			any_header = true;
		}
	}
	if (p->n_retriable_request_headers > 0) {
		/* the route retries only requests that match one of these */
		bool match = false;

		for (size_t i = 0; i < p->n_retriable_request_headers && !match; i++)
			match = sk_header_matchers_match(&p->retriable_request_headers[i], 1, req);
		if (!match)
			p->retry_on = 0;
	}
	if (internal) {
		if (p->retry_on != 0 && parse_u64(sk_route_request_header(req, "x-envoy-max-retries", 19), &n))
			p->num_retries = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
		tokens(sk_route_request_header(req, "x-envoy-retriable-status-codes", 30), add_code, rr);
		tokens(sk_route_request_header(req, "x-envoy-retriable-header-names", 30), add_name, rr);
		if (parse_u64(sk_route_request_header(req, "x-envoy-upstream-rq-timeout-ms", 30), &n))
			rr->timeout = (double)n / 1000.0;
		if (parse_u64(sk_route_request_header(req, "x-envoy-upstream-rq-per-try-timeout-ms", 38), &n))
			p->per_try_timeout = (double)n / 1000.0;
	}
	/* a per-try timeout as long as the route's (when there is one) is no per-try timeout */
	if (rr->timeout > 0 && p->per_try_timeout >= rr->timeout)
		p->per_try_timeout = 0;
	rr->has_policy = f->has_retry || any_header || p->per_try_timeout > 0;
}

static bool header_present(const struct sk_route_request *resp, struct sk_slice name)
{
	for (size_t i = 0; i < resp->n_headers; i++)
		if (resp->headers[i].name.len == name.len &&
		    strncasecmp(resp->headers[i].name.ptr, name.ptr, name.len) == 0)
			return true;
	return false;
}

bool sk_retry_response_retriable(const struct sk_retry_request *rr, unsigned status,
				 const struct sk_route_request *resp)
{
	const struct sk_retry_policy *p = &rr->policy;
	uint32_t on = p->retry_on;
	struct sk_slice g;
	uint64_t gs;

	/* from an upstream Envoy's rate limiter: retried only under envoy-ratelimited */
	if (sk_route_request_header(resp, "x-envoy-ratelimited", 19).ptr != NULL)
		return (on & SK_RETRY_ENVOY_RATE_LIMITED) != 0;
	if ((on & SK_RETRY_5XX) && status >= 500 && status <= 599)
		return true;
	if ((on & SK_RETRY_GATEWAY_ERROR) && status >= 502 && status <= 504)
		return true;
	if ((on & SK_RETRY_RETRIABLE_4XX) && status == 409)
		return true;
	if (on & SK_RETRY_RETRIABLE_STATUS_CODES) {
		for (size_t i = 0; i < p->n_status_codes; i++)
			if (p->status_codes[i] == status)
				return true;
		for (size_t i = 0; i < rr->n_codes; i++)
			if (rr->codes[i] == status)
				return true;
	}
	if (on & SK_RETRY_RETRIABLE_HEADERS) {
		for (size_t i = 0; i < p->n_retriable_headers; i++)
			if (sk_header_matchers_match(&p->retriable_headers[i], 1, resp))
				return true;
		for (size_t i = 0; i < rr->n_names; i++)
			if (header_present(resp, rr->names[i]))
				return true;
	}
	if ((on & GRPC_FLAGS) && (g = sk_route_request_header(resp, "grpc-status", 11)).ptr != NULL &&
	    parse_u64(g, &gs)) {
		if ((gs == 1 && (on & SK_RETRY_GRPC_CANCELLED)) || (gs == 4 && (on & SK_RETRY_GRPC_DEADLINE_EXCEEDED)) ||
		    (gs == 8 && (on & SK_RETRY_GRPC_RESOURCE_EXHAUSTED)) ||
		    (gs == 14 && (on & SK_RETRY_GRPC_UNAVAILABLE)) || (gs == 13 && (on & SK_RETRY_GRPC_INTERNAL)))
			return true;
	}
	return false;
}
