/* route: an Envoy v3 RouteConfiguration (protobuf) -> struct sk_route_config: virtual hosts,
 * routes in order, their matchers (regexes compiled once) and actions, validated, plain C.
 * Immutable once built; owned by whoever holds it (sk_route_config_free). Matching a request
 * against it is proxy/http/route_table.h. */
#ifndef SKIFF_XDS_TRANSLATE_ROUTE_H
#define SKIFF_XDS_TRANSLATE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skiff_protos.h"

/* A duration field that was not set (durations are seconds; 0 is a real value: "disabled"). */
#define SK_ROUTE_UNSET (-1.0)

/* A compiled PCRE2 pattern. `full` patterns match the whole subject, as Envoy's safe_regex
 * (RE2 FullMatch); the others search (regex_rewrite). Owned by the config that holds it. */
struct sk_regex;

/* True when re matches s[0..n) (whole subject for full patterns). Allocates nothing after a
 * thread's first call (per-thread match data; sk_regex_thread_free releases it). */
bool sk_regex_match(const struct sk_regex *re, const char *s, size_t n);
/* The construct of a compiled pattern that PCRE2 has and RE2 (Envoy's engine) lacks, named
 * ("backreferences", "lookaround assertions", ...), or NULL: such patterns are refused, so a
 * pattern means what it means in Envoy. */
struct pcre2_real_code_8;
const char *sk_regex_re2_unsupported(const char *pattern, const struct pcre2_real_code_8 *code);
/* Replaces every match in s[0..n) with the rewrite's substitution (RE2 syntax: \0..\9, \\),
 * as Envoy's regex_rewrite. Writes at most outlen bytes (NUL-terminated); returns the length
 * of the result, or -1 (then the caller keeps the original). */
long sk_regex_replace(const struct sk_regex *re, const char *s, size_t n, char *out, size_t outlen);
const char *sk_regex_pattern(const struct sk_regex *re);
void sk_regex_thread_free(void);

enum sk_string_match_kind {
	SK_STRING_EXACT,
	SK_STRING_PREFIX,
	SK_STRING_SUFFIX,
	SK_STRING_CONTAINS,
	SK_STRING_REGEX,
};

/* envoy.type.matcher.v3.StringMatcher */
struct sk_string_matcher {
	enum sk_string_match_kind kind;
	bool ignore_case;          /* ASCII case folding; never with REGEX */
	char *value;               /* not REGEX */
	size_t len;
	struct sk_regex *re;       /* REGEX (full match) */
};

enum sk_header_match_kind {
	SK_HEADER_PRESENT,         /* present_match (and a matcher with no specifier: present) */
	SK_HEADER_STRING,          /* exact/prefix/suffix/contains/safe_regex/string_match */
	SK_HEADER_RANGE,           /* range_match: [start, end) on a decimal int64 */
};

/* envoy.config.route.v3.HeaderMatcher. Repeated request headers are joined with ','. */
struct sk_header_matcher {
	char *name;                /* lower-cased; ":authority", ":path", ":method", ":scheme" too */
	size_t name_len;
	enum sk_header_match_kind kind;
	bool present;              /* PRESENT: the wanted presence */
	struct sk_string_matcher str;
	int64_t range_start, range_end;
	bool invert;
	bool treat_missing_as_empty;
};

/* envoy.config.route.v3.QueryParameterMatcher: on the first value of the parameter. */
struct sk_query_matcher {
	char *name;
	size_t name_len;
	bool present_only;
	struct sk_string_matcher str;
};

/* FractionalPercent: numerator out of 100, 10000 or 1000000. */
struct sk_fraction {
	uint32_t numerator;
	uint32_t denominator;
};

enum sk_header_append {
	SK_APPEND_IF_EXISTS_OR_ADD,
	SK_ADD_IF_ABSENT,
	SK_OVERWRITE_IF_EXISTS_OR_ADD,
	SK_OVERWRITE_IF_EXISTS,
};

/* One HeaderValueOption. The value is raw: it may hold %DOWNSTREAM_REMOTE_ADDRESS%-style
 * commands, expanded by the caller's formatter for each request. */
struct sk_header_add {
	char *key;                 /* lower-cased */
	char *value;
	enum sk_header_append append;
	bool keep_empty_value;
};

struct sk_header_ops {
	size_t n_add;
	struct sk_header_add *add;
	size_t n_remove;
	char **remove;             /* lower-cased */
};

/* Header changes at one level (route config, virtual host, route, weighted cluster). */
struct sk_header_mutations {
	struct sk_header_ops request, response;
};

/* One typed_per_filter_config entry: the filter's config name, the message type (seen
 * through TypedStruct and FilterConfig wrappers) and the serialized Any value, for the filter
 * (fault, cors, ...) to decode when it builds its per-route config. */
struct sk_filter_config_ref {
	char *filter;              /* map key: "envoy.filters.http.fault" */
	char *type;                /* "envoy.extensions.filters.http.fault.v3.HTTPFault" */
	char *type_url;            /* of the (unwrapped) Any */
	uint8_t *value;
	size_t value_len;
	bool is_optional;          /* FilterConfig.is_optional */
	bool disabled;             /* FilterConfig.disabled */
};

struct sk_filter_configs {
	size_t n;
	struct sk_filter_config_ref *v;
};

/* A CORS policy of one level (envoy.extensions.filters.http.cors.v3.CorsPolicy in
 * typed_per_filter_config, or the deprecated envoy.config.route.v3.CorsPolicy `cors` field).
 * Unset fields are NULL / -1: Envoy takes each field from the most specific level that sets
 * it (see proxy/http/cors.h). */
struct sk_cors_policy {
	size_t n_origins;
	struct sk_string_matcher *origins;   /* allow_origin_string_match */
	char *allow_methods;                 /* NULL when empty */
	char *allow_headers;
	char *expose_headers;
	char *max_age;
	int allow_credentials;               /* -1 unset, 0, 1 */
	int allow_private_network_access;    /* -1 unset, 0, 1 */
	int forward_not_matching_preflights; /* -1 unset (Envoy: true), 0, 1 */
	bool has_filter_enabled;             /* unset: enabled */
	struct sk_fraction filter_enabled;   /* its default_value (no runtime layer) */
	bool has_shadow_enabled;             /* unset: no shadow */
	struct sk_fraction shadow_enabled;
	bool disabled;                       /* FilterConfig.disabled: the filter is off here */
};

/* retry_on flags (Envoy's RetryPolicy::RETRY_ON_*; router and gRPC tokens). */
enum {
	SK_RETRY_5XX = 1u << 0,
	SK_RETRY_GATEWAY_ERROR = 1u << 1,
	SK_RETRY_CONNECT_FAILURE = 1u << 2,
	SK_RETRY_RETRIABLE_4XX = 1u << 3,
	SK_RETRY_REFUSED_STREAM = 1u << 4,
	SK_RETRY_RETRIABLE_STATUS_CODES = 1u << 5,
	SK_RETRY_RESET = 1u << 6,
	SK_RETRY_RETRIABLE_HEADERS = 1u << 7,
	SK_RETRY_ENVOY_RATE_LIMITED = 1u << 8,
	SK_RETRY_RESET_BEFORE_REQUEST = 1u << 9,
	SK_RETRY_HTTP3_POST_CONNECT_FAILURE = 1u << 10,
	SK_RETRY_GRPC_CANCELLED = 1u << 11,
	SK_RETRY_GRPC_DEADLINE_EXCEEDED = 1u << 12,
	SK_RETRY_GRPC_RESOURCE_EXHAUSTED = 1u << 13,
	SK_RETRY_GRPC_UNAVAILABLE = 1u << 14,
	SK_RETRY_GRPC_INTERNAL = 1u << 15,
};

/* Parses a retry_on / x-envoy-retry-on list into SK_RETRY_* flags; unknown tokens are ignored,
 * as Envoy does (*unknown, if not NULL, counts them). */
uint32_t sk_retry_on_parse(const char *s, size_t len, unsigned *unknown);

struct sk_retry_policy {
	uint32_t retry_on;
	uint32_t num_retries;          /* default 1 */
	double per_try_timeout;        /* 0 = none */
	double per_try_idle_timeout;   /* 0 = none */
	bool previous_hosts;           /* retry_host_predicate previous_hosts */
	uint32_t host_selection_max_attempts; /* default 1 */
	size_t n_status_codes;
	uint32_t *status_codes;
	double back_off_base;          /* default 0.025 s */
	double back_off_max;           /* default 10 x base */
	size_t n_retriable_headers;    /* on the response */
	struct sk_header_matcher *retriable_headers;
	size_t n_retriable_request_headers;
	struct sk_header_matcher *retriable_request_headers;
};

enum sk_hash_kind { SK_HASH_HEADER, SK_HASH_COOKIE, SK_HASH_SOURCE_IP, SK_HASH_QUERY_PARAMETER };

struct sk_hash_policy {
	enum sk_hash_kind kind;
	char *name;                    /* header (lower-cased), cookie or query parameter */
	double cookie_ttl;             /* SK_ROUTE_UNSET when not set */
	char *cookie_path;             /* NULL when empty */
	bool terminal;
};

/* request_mirror_policies: shadow a fraction of requests to another cluster. */
struct sk_mirror_policy {
	char *cluster;                 /* exactly one of cluster ... */
	char *cluster_header;          /* ... and cluster_header (lower-cased) */
	struct sk_fraction fraction;   /* default 100% */
	char *host_rewrite_literal;    /* NULL when none */
	bool disable_shadow_host_suffix_append;
};

struct sk_route_weighted_cluster {
	char *name;                    /* NULL when cluster_header is used */
	char *cluster_header;          /* lower-cased */
	uint32_t weight;               /* 0: never selected */
	char *host_rewrite_literal;    /* NULL when none */
	struct sk_header_mutations mutations;
	struct sk_filter_configs filter_configs;
};

struct sk_upgrade_config {
	char *type;                    /* lower-cased: "websocket" */
	bool enabled;
};

enum sk_route_cluster_kind {
	SK_ROUTE_CLUSTER_NAME,
	SK_ROUTE_CLUSTER_HEADER,
	SK_ROUTE_CLUSTER_WEIGHTED,
};

/* RouteAction: forward upstream. */
struct sk_route_forward {
	enum sk_route_cluster_kind cluster_kind;
	char *cluster;                 /* NAME */
	char *cluster_header;          /* HEADER, lower-cased */
	size_t n_weighted;             /* WEIGHTED */
	struct sk_route_weighted_cluster *weighted;
	uint64_t total_weight;         /* sum of the weights (= total_weight when that is set) */
	char *random_value_header;     /* weighted_clusters.header_name, NULL when unset */
	uint16_t cluster_not_found_code; /* 503 (default), 404, 500 */
	char *prefix_rewrite;          /* NULL when none */
	struct sk_regex *regex_rewrite; /* NULL when none */
	char *host_rewrite_literal;    /* NULL when none */
	bool auto_host_rewrite;
	char *host_rewrite_header;     /* NULL when none; lower-cased */
	bool append_x_forwarded_host;
	double timeout;                /* default 15 s; 0 disables */
	double idle_timeout;           /* SK_ROUTE_UNSET: the HCM's stream_idle_timeout */
	double max_stream_duration;    /* max_stream_duration.*: SK_ROUTE_UNSET when unset */
	double grpc_timeout_header_max;
	double grpc_timeout_header_offset;
	double max_grpc_timeout;       /* deprecated forms Istio still sends */
	double grpc_timeout_offset;
	bool has_retry;                /* the route's retry_policy, else the virtual host's */
	struct sk_retry_policy retry;
	size_t n_hash;
	struct sk_hash_policy *hash;
	size_t n_mirrors;              /* the route's, else the virtual host's, else the config's */
	struct sk_mirror_policy *mirrors;
	bool priority_high;            /* RoutingPriority HIGH */
	size_t n_upgrades;
	struct sk_upgrade_config *upgrades;
};

struct sk_route_redirect {
	char *scheme;                  /* NULL: keep ("https" for https_redirect) */
	char *host;                    /* NULL: keep */
	uint32_t port;                 /* 0: keep */
	char *path;                    /* path_redirect, NULL when none */
	char *prefix_rewrite;          /* NULL when none */
	struct sk_regex *regex_rewrite; /* NULL when none */
	uint16_t code;                 /* 301 (default), 302, 303, 307, 308 */
	bool strip_query;
};

struct sk_route_direct {
	uint16_t status;
	char *body;                    /* NULL when none; may hold NULs (body_len) */
	size_t body_len;
};

enum sk_path_match_kind {
	SK_PATH_PREFIX,
	SK_PATH_EXACT,
	SK_PATH_REGEX,
	SK_PATH_SEPARATED_PREFIX,
	SK_PATH_CONNECT,               /* connect_matcher: CONNECT requests */
};

enum sk_route_action_kind { SK_ROUTE_FORWARD, SK_ROUTE_REDIRECT, SK_ROUTE_DIRECT };

struct sk_virtual_host;
struct sk_route_config;

struct sk_route {
	char *name;                    /* "" when unnamed */
	const struct sk_virtual_host *vhost;
	/* match */
	enum sk_path_match_kind path_kind;
	char *path;                    /* PREFIX, EXACT, SEPARATED_PREFIX */
	size_t path_len;
	struct sk_regex *path_re;      /* REGEX, on the path without query */
	bool case_sensitive;           /* default true; not for REGEX */
	bool has_runtime_fraction;     /* runtime_fraction.default_value (no runtime layer) */
	struct sk_fraction runtime_fraction;
	size_t n_headers;
	struct sk_header_matcher *headers;
	size_t n_query;
	struct sk_query_matcher *query;
	bool grpc;
	/* action */
	enum sk_route_action_kind action;
	struct sk_route_forward fwd;   /* FORWARD */
	struct sk_route_redirect redirect; /* REDIRECT */
	struct sk_route_direct direct; /* DIRECT */
	/* the rest */
	struct sk_header_mutations mutations;
	struct sk_filter_configs filter_configs;
	struct sk_cors_policy *cors;   /* typed_per_filter_config CorsPolicy, NULL when none */
	struct sk_cors_policy *cors_legacy; /* route.cors (deprecated), NULL when none */
	char *decorator_operation;     /* NULL when no decorator */
	bool decorator_propagate;      /* default true */
	char *istio_config;            /* metadata filter_metadata["istio"].config, NULL when none */
	char *stat_prefix;             /* NULL when none */
	uint32_t per_request_buffer_limit; /* the route's, else the virtual host's */
};

struct sk_virtual_host {
	char *name;
	size_t n_domains;
	char **domains;                /* lower-cased, as configured */
	size_t n_routes;
	struct sk_route *routes;
	const struct sk_route_config *config;
	struct sk_header_mutations mutations;
	struct sk_filter_configs filter_configs;
	struct sk_cors_policy *cors;   /* as the route's */
	struct sk_cors_policy *cors_legacy;
	bool include_request_attempt_count;
	bool include_attempt_count_in_response;
	bool include_is_timeout_retry_header;
	uint32_t per_request_buffer_limit; /* default UINT32_MAX */
};

/* The domain index (route_table.c reads it): `text` is the domain without its '*'. */
struct sk_domain_entry {
	const char *text;
	size_t len;
	const struct sk_virtual_host *vhost;
};

struct sk_route_config {
	char *name;
	size_t n_vhosts;
	struct sk_virtual_host *vhosts;
	struct sk_header_mutations mutations;
	struct sk_filter_configs filter_configs;
	struct sk_cors_policy *cors;   /* typed_per_filter_config CorsPolicy, NULL when none */
	size_t n_internal_only_headers;
	char **internal_only_headers;  /* lower-cased */
	bool most_specific_header_mutations_wins;
	int validate_clusters;         /* -1 unset (Envoy: true inline, false RDS), 0, 1 */
	bool ignore_port_in_host_matching;
	bool ignore_path_parameters;   /* ignore_path_parameters_in_path_matching */
	char *vhost_header;            /* NULL: :authority; else that header, lower-cased */
	uint32_t max_direct_response_body_size; /* default 4096 */
	/* domain index: exact sorted by text; wildcards longest first */
	size_t n_exact, n_suffix, n_prefix;
	struct sk_domain_entry *exact, *suffix, *prefix;
	const struct sk_virtual_host *default_vhost; /* domain "*", NULL when none */
};

/* Translates rc. NULL with err ("route config 'x': virtual_hosts[2].routes[0].route...: ...")
 * when it cannot be honoured. */
struct sk_route_config *sk_route_config_new(const Envoy__Config__Route__V3__RouteConfiguration *rc,
					    char *err, size_t errlen);
void sk_route_config_free(struct sk_route_config *rc);

#endif
