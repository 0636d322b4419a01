/* route_table: matching a request against a translated route configuration (virtual host by
 * domain, then the first route whose match holds) and picking among weighted clusters. Pure:
 * no I/O, no allocation; everything returned points into the sk_route_config, which the
 * caller keeps alive (the snapshot holding it). */
#ifndef SKIFF_PROXY_HTTP_ROUTE_TABLE_H
#define SKIFF_PROXY_HTTP_ROUTE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xds/translate/route.h"

/* Bytes owned by someone else; ptr == NULL means "absent" (an empty value has ptr != NULL). */
struct sk_slice {
	const char *ptr;
	size_t len;
};

struct sk_http_header {
	struct sk_slice name;        /* any case; matched case-insensitively */
	struct sk_slice value;
};

/* The request as the router sees it: views into the codec's buffers, borrowed for one call.
 * Header matchers naming ":authority", ":path", ":method" or ":scheme" read the fields below;
 * other names are looked up in `headers` (repeated headers are joined with ',', as Envoy). */
struct sk_route_request {
	struct sk_slice method;
	struct sk_slice authority;   /* :authority or Host */
	struct sk_slice path;        /* :path as received, query included; absent for CONNECT */
	struct sk_slice scheme;
	const struct sk_http_header *headers;
	size_t n_headers;
	bool is_grpc;                /* see sk_route_is_grpc_content_type */
	char *scratch;               /* optional: room to join repeated headers; without it (or when */
	size_t scratch_len;          /* too small) a 2 KiB stack buffer is used, and a longer join */
				     /* matches as a value that fits nothing (before invert_match) */
};

/* The virtual host for req's authority (or RouteConfiguration.vhost_header), with Envoy's
 * precedence: exact domain, then the longest "*suffix", then the longest "prefix*", then "*".
 * Case-insensitive. The port is part of the host unless ignore_port_in_host_matching is set
 * (Envoy does not retry without it; the HCM's strip_*_host_port options rewrite the host
 * before routing, see sk_route_host_strip_port). NULL when nothing matches or the request has
 * no host while the config has non-"*" domains. */
const struct sk_virtual_host *sk_route_table_find_vhost(const struct sk_route_config *rc,
							 const struct sk_route_request *req);

/* The first route of the virtual host that matches req, or NULL (404). route->vhost is the
 * virtual host. `random` decides runtime_fraction matches (Envoy's stream random value). */
const struct sk_route *sk_route_table_match(const struct sk_route_config *rc, const struct sk_route_request *req,
					    uint64_t random);

/* Whether one route's match (path, headers, query parameters, grpc, runtime fraction) holds. */
bool sk_route_matches(const struct sk_route *r, const struct sk_route_request *req, uint64_t random);

/* All of m[0..n) hold on req's headers (true for n == 0). Also for retriable_headers on a
 * response: pass its headers in a request view. */
bool sk_header_matchers_match(const struct sk_header_matcher *m, size_t n, const struct sk_route_request *req);

bool sk_string_matcher_match(const struct sk_string_matcher *m, const char *s, size_t n);

/* The weighted cluster for a random value: (value % total_weight) falls in the cluster's
 * [begin, begin + weight) interval, in configuration order, so a 0-weight cluster is never
 * chosen. When weighted_clusters.header_name is set and req carries exactly one such header
 * holding an unsigned integer, that value is used instead (Envoy). NULL if f is not weighted. */
const struct sk_route_weighted_cluster *sk_route_pick_weighted(const struct sk_route_forward *f,
								const struct sk_route_request *req,
								uint64_t random);

/* True when random % denominator < numerator (Envoy's fractional percent evaluation). */
bool sk_fraction_hit(struct sk_fraction f, uint64_t random);

/* content-type "application/grpc" exactly or "application/grpc+...": what Envoy calls gRPC. */
bool sk_route_is_grpc_content_type(struct sk_slice content_type);

/* Where ":port" starts in host ("h:80" -> 1, "[::1]:80" -> 5), SIZE_MAX when none. */
size_t sk_route_host_port_start(struct sk_slice host);

/* host without its port, as the HCM's strip_any_host_port (listener_port 0) or
 * strip_matching_host_port (only when the port equals listener_port) do; host unchanged when
 * there is no port or it is not a number. */
struct sk_slice sk_route_host_strip_port(struct sk_slice host, uint32_t listener_port);

/* The first value of header `name` (lower-case) in req, absent slice when missing. */
struct sk_slice sk_route_request_header(const struct sk_route_request *req, const char *name, size_t name_len);

#endif
