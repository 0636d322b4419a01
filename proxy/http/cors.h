/* cors: Envoy's CORS filter (envoy.filters.http.cors) for one request: the policies that apply
 * to its route, whether its Origin is allowed, whether it is a preflight skiff answers itself,
 * and the Access-Control-* headers of that answer or of the response. Pure: no I/O, no
 * allocation; an sk_cors points into the route configuration and the request's headers, which
 * the caller keeps alive while it uses it. */
#ifndef SKIFF_PROXY_HTTP_CORS_H
#define SKIFF_PROXY_HTTP_CORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/http/route_table.h"

#define SK_CORS_MAX_POLICIES 3

/* What the filter decided for one request. */
struct sk_cors {
	const struct sk_cors_policy *p[SK_CORS_MAX_POLICIES]; /* most specific first */
	size_t n;
	struct sk_slice origin, method, acrm, acrh, pna;       /* the request's headers */
	bool checked;        /* the origin was checked: count cors.origin_valid / origin_invalid */
	bool allowed;        /* ... and allow_origin_string_match allowed it */
	bool cors_request;   /* the policy is enforced: responses get the headers (when allowed) */
	bool preflight;      /* a preflight skiff answers (200, sk_cors_headers with preflight) */
};

/* The policies of route r, most specific first, as Envoy collects them: the CorsPolicy
 * typed_per_filter_config of the route, its virtual host and its route configuration; when none
 * of those levels has one, the deprecated `cors` of the route, then of the virtual host. The
 * most specific level that disables the filter (FilterConfig.disabled) turns it off: 0. */
size_t sk_cors_policies(const struct sk_route *r, const struct sk_cors_policy **out);

/* Runs the filter's decision for a request routed to r (NULL: no route, nothing applies).
 * origin, method, acrm (access-control-request-method), acrh (access-control-request-headers)
 * and pna (access-control-request-private-network): the request's values, ptr NULL when absent.
 * rnd_enabled / rnd_shadow decide filter_enabled / shadow_enabled (fractional percents). */
void sk_cors_evaluate(struct sk_cors *cs, const struct sk_route *r, struct sk_slice origin,
		      struct sk_slice method, struct sk_slice acrm, struct sk_slice acrh, struct sk_slice pna,
		      uint64_t rnd_enabled, uint64_t rnd_shadow);

/* Whether origin is allowed by the most specific allow_origin_string_match list (a matcher
 * that matches "*" allows every origin). */
bool sk_cors_origin_allowed(const struct sk_cors *cs, struct sk_slice origin);

/* The Access-Control-* headers the response carries, each through emit (lower-case name and
 * value): for a preflight answer (preflight true) allow-origin when allowed, allow-credentials,
 * allow-methods and allow-headers ("*" echoes the request's), max-age, allow-private-network
 * and expose-headers; for any other response of a CORS request with an allowed origin
 * allow-origin, allow-credentials and expose-headers. Nothing otherwise. */
void sk_cors_headers(const struct sk_cors *cs, bool preflight,
		     void (*emit)(void *ctx, const char *name, const char *value, size_t len), void *ctx);

/* Whether a response header of this name is replaced by one sk_cors_headers sets (the
 * upstream's copy is dropped, as Envoy's setInline replaces it). */
bool sk_cors_overrides(const struct sk_cors *cs, const char *name, size_t len);

#endif
