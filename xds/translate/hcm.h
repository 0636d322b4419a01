/* hcm: an Envoy v3 HttpConnectionManager (the typed_config of a chain's terminal filter) ->
 * struct sk_hcm_config: codec, inline routes, the HTTP filter chain skiff honours, limits,
 * timeouts, forwarding headers and access logs, validated. Immutable once built; owned by the
 * filter chain config that holds it (sk_hcm_config_free). */
#ifndef SKIFF_XDS_TRANSLATE_HCM_H
#define SKIFF_XDS_TRANSLATE_HCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skiff_protos.h"
#include "xds/translate/listener.h"
#include "xds/translate/route.h"

/* Envoy's defaults. */
#define SK_HCM_DEFAULT_STREAM_IDLE_TIMEOUT 300.0 /* 5 min */
#define SK_HCM_DEFAULT_IDLE_TIMEOUT 3600.0       /* common_http_protocol_options.idle_timeout */
#define SK_HCM_DEFAULT_MAX_HEADERS_COUNT 100
#define SK_HCM_DEFAULT_MAX_HEADERS_KB 60

enum sk_hcm_codec { SK_HCM_CODEC_AUTO, SK_HCM_CODEC_HTTP1, SK_HCM_CODEC_HTTP2 };

enum sk_hcm_server_header { SK_SERVER_OVERWRITE, SK_SERVER_APPEND_IF_ABSENT, SK_SERVER_PASS_THROUGH };

enum sk_hcm_underscores { SK_UNDERSCORES_ALLOW, SK_UNDERSCORES_REJECT, SK_UNDERSCORES_DROP };

/* Http2ProtocolOptions (HCM http2_protocol_options; a cluster's explicit_http_config). Envoy's
 * defaults except where noted in sk_h2_options_default. */
struct sk_h2_options {
	uint32_t hpack_table_size;                    /* 4096 */
	uint32_t max_concurrent_streams;              /* skiff: 1024 (Envoy: 2^31-1) */
	uint32_t initial_stream_window_size;          /* skiff: 256 KiB (Envoy: 256 MiB) */
	uint32_t initial_connection_window_size;      /* skiff: 1 MiB (Envoy: 256 MiB) */
	uint32_t max_outbound_frames;                 /* 10000 */
	uint32_t max_outbound_control_frames;         /* 1000 */
	uint32_t max_consecutive_inbound_frames_with_empty_payload; /* 1 */
	uint32_t max_inbound_priority_frames_per_stream;            /* 100 */
	uint32_t max_inbound_window_update_frames_per_data_frame_sent; /* 10 */
};

void sk_h2_options_default(struct sk_h2_options *o);
/* o = the defaults overridden by pb (may be NULL); -1 with err naming the field. */
int sk_h2_options_from_pb(struct sk_h2_options *o, const Envoy__Config__Core__V3__Http2ProtocolOptions *pb,
			  const char *where, char *err, size_t errlen);

/* envoy.filters.http.fault's HTTPFault: abort and delay with their percentages. */
struct sk_fault {
	bool has_abort, has_delay;
	uint32_t abort_status;
	struct sk_fraction abort_pct;
	double delay;                         /* fixed_delay, seconds */
	struct sk_fraction delay_pct;
};

/* A per-route fault (typed_per_filter_config) and the filter_configs it came from. */
struct sk_route_fault {
	const struct sk_filter_configs *fc;
	struct sk_fault fault;
};

/* forward_client_cert_details, Envoy's values */
enum sk_xfcc_mode {
	SK_XFCC_SANITIZE = 0,
	SK_XFCC_FORWARD_ONLY = 1,
	SK_XFCC_APPEND_FORWARD = 2,
	SK_XFCC_SANITIZE_SET = 3,
	SK_XFCC_ALWAYS_FORWARD_ONLY = 4,
};

enum { SK_ALPN_HTTP10, SK_ALPN_HTTP11, SK_ALPN_HTTP2 };

struct sk_hcm_config {
	char *stat_prefix;                    /* http.<stat_prefix>.* */
	enum sk_hcm_codec codec;              /* AUTO: HTTP/2 by preface (h2c) or ALPN, else HTTP/1.1 */
	struct sk_h2_options h2;              /* http2_protocol_options */
	struct sk_route_config *routes;       /* owned: the inline route_config, or NULL with rds */
	char *rds_name;                       /* rds.route_config_name (routes come from the snapshot) */
	/* forwarding headers */
	bool use_remote_address;
	uint32_t xff_num_trusted_hops;
	bool skip_xff_append;
	bool generate_request_id;             /* default true */
	bool preserve_external_request_id;
	bool always_set_request_id_in_response;
	char *server_name;                    /* default "envoy" */
	enum sk_hcm_server_header server_header;
	char *via;                            /* NULL when none */
	bool strip_any_host_port;
	bool strip_matching_host_port;
	/* timeouts, seconds; 0 disables */
	double stream_idle_timeout;           /* default 300 */
	double request_timeout;               /* default 0 */
	double request_headers_timeout;       /* default 0 */
	double idle_timeout;                  /* connection idle, default 3600 */
	double max_connection_duration;       /* default 0 */
	/* limits */
	uint32_t max_headers_count;           /* default 100 */
	uint32_t max_request_headers_kb;      /* default 60 */
	uint32_t max_requests_per_connection; /* 0: unlimited */
	enum sk_hcm_underscores underscores;
	bool normalize_path;                  /* RFC 3986 normalization (default false) */
	bool merge_slashes;
	/* access logs (FileAccessLog) */
	size_t n_access_logs;
	struct sk_access_log_config *access_logs;
	/* what the filter chain held */
	unsigned observe_only;                /* filters accepted without effect (istio.stats, ...) */
	unsigned skipped_optional;            /* unknown filters marked is_optional: skipped */
	unsigned compressors;                 /* envoy.filters.http.compressor: not applied */
	bool cors;                            /* envoy.filters.http.cors present: route, virtual host and
					       * route config CorsPolicy applied (proxy/http/cors.h) */
	bool cors_first;                      /* ... before envoy.filters.http.fault (Istio's order) */
	bool fault;                           /* envoy.filters.http.fault present */
	struct sk_fault fault_cfg;            /* its filter-level abort/delay */
	unsigned per_route_faults;            /* routes/vhosts/weighted clusters carrying a fault config */
	struct sk_route_fault *route_faults;  /* per_route_faults of them, applied when fault is present */
	unsigned per_route_cors;              /* ... a CORS policy (applied when cors is set) */
	/* x-forwarded-client-cert (forward_client_cert_details, set_current_client_cert_details) */
	enum sk_xfcc_mode xfcc;
	bool xfcc_subject, xfcc_cert, xfcc_chain, xfcc_dns, xfcc_uri;
	/* istio.alpn: the ALPN a TLS upstream connection offers per upstream HTTP version
	 * (comma joined, index SK_ALPN_HTTP10/11/2; "" keeps the cluster's alpn_protocols) */
	bool alpn_filter;
	char alpn_override[3][64];
	/* upgrade_configs: the upgrade types (websocket, ...) this HCM tunnels; enabled false
	 * means only on routes whose own upgrade_configs enable it */
	size_t n_upgrades;
	struct sk_upgrade_config *upgrades;
};

/* Translates the HttpConnectionManager inside any. NULL with err ("http_connection_manager:
 * http_filters[2] (envoy.filters.http.rbac): ...") when it cannot be honoured. */
struct sk_hcm_config *sk_hcm_config_new(const Google__Protobuf__Any *any, char *err, size_t errlen);
/* Same from the decoded message (tests). */
struct sk_hcm_config *sk_hcm_config_from_pb(
	const Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager *h,
	char *err, size_t errlen);
void sk_hcm_config_free(struct sk_hcm_config *hc);

/* The fault configs a route configuration carries in typed_per_filter_config (route config,
 * virtual hosts, routes, weighted clusters), parsed: for route configurations RDS delivers.
 * *faults is malloc'd (NULL when none). -1 with err on an invalid one. */
int sk_hcm_route_faults(const struct sk_route_config *rc, struct sk_route_fault **faults, unsigned *n,
			char *err, size_t errlen);

#endif
