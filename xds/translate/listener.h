/* listener: an Envoy v3 Listener (protobuf) -> struct sk_listener_config: its address, the
 * listener filters skiff runs, the filter-chain matcher and each chain's network filter,
 * validated. Immutable once built; owned by the snapshot that holds it. */
#ifndef SKIFF_XDS_TRANSLATE_LISTENER_H
#define SKIFF_XDS_TRANSLATE_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/listener/filter_chain.h"
#include "skiff_protos.h"
#include "xds/translate/address.h"

struct sk_weighted_cluster {
	char *name;
	uint32_t weight;
};

struct sk_log_format; /* proxy/network/access_log.h */

/* A file access log: path ("/dev/stdout" works) and its format (text, or JSON). */
struct sk_access_log_config {
	char *path;
	struct sk_log_format *format;         /* owned (sk_log_format_free) */
};

struct sk_tcp_proxy_config {
	char *stat_prefix;
	char *cluster;                        /* NULL when weighted */
	size_t n_weighted;
	struct sk_weighted_cluster *weighted;
	uint64_t total_weight;
	double idle_timeout;                  /* seconds; default 3600; 0 disables */
	uint32_t max_connect_attempts;        /* default 1 */
	size_t n_access_logs;
	struct sk_access_log_config *access_logs;
};

struct sk_hcm_config;
struct sk_tls_context_config;

struct sk_filter_chain_config {
	char *name;
	bool tcp_proxy;                       /* the terminal filter is tcp_proxy ... */
	struct sk_tcp_proxy_config tcp;
	bool http;                            /* ... or http_connection_manager: */
	struct sk_hcm_config *hcm;            /* owned; set when http */
	bool tls;                             /* transport_socket is TLS ... */
	struct sk_tls_context_config *tls_ctx; /* ... its DownstreamTlsContext (owned) */
	double tls_timeout;                   /* transport_socket_connect_timeout, seconds; 0: skiff's
					       * own bound (10 s) */
	unsigned observe_only;                /* filters accepted without effect (istio.stats, ...) */
};

enum sk_direction { SK_DIR_UNSPECIFIED, SK_DIR_INBOUND, SK_DIR_OUTBOUND };

struct sk_listener_config {
	char *name;
	char *stat_name;                      /* listener.<stat_name>.*: stat_prefix or "0.0.0.0_15001" */
	struct sk_addr addr;
	bool bind_to_port;
	bool use_original_dst;
	enum sk_direction direction;
	uint32_t buffer_limit;                /* per_connection_buffer_limit_bytes, default 1 MiB */
	double filters_timeout;               /* listener_filters_timeout, default 15 s; 0 = none */
	bool continue_on_timeout;
	bool original_dst;                    /* envoy.filters.listener.original_dst */
	bool tls_inspector;
	bool http_inspector;
	struct sk_fcm *fcm;
	size_t n_chains;
	struct sk_filter_chain_config *chains;
	struct sk_filter_chain_config *default_chain; /* NULL when none */
	bool served;                          /* every chain has a filter skiff serves (tcp_proxy, HCM) */
};

/* Translates l; NULL with err ("listener 'x': filter_chains[2].filters[0]: ...") when it
 * cannot be honoured. *observe_only counts filters accepted without effect. */
struct sk_listener_config *sk_listener_config_new(const Envoy__Config__Listener__V3__Listener *l,
						  char *err, size_t errlen);
void sk_listener_config_free(struct sk_listener_config *lc);

/* Internal (shared with hcm.c): FileAccessLog configs -> *out_logs (allocated, *n_out
 * entries), Envoy's default format when none is given. 0, or -EINVAL with err. Freed with
 * sk__access_logs_free. */
void sk__access_logs_free(struct sk_access_log_config *logs, size_t n);
int sk__access_logs_translate(Envoy__Config__Accesslog__V3__AccessLog **logs, size_t n,
			      struct sk_access_log_config **out_logs, size_t *n_out, const char *where,
			      char *err, size_t errlen);

/* The message type inside an Any, looking through udpa/xds TypedStruct wrappers:
 * "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy". "" when none. */
const char *sk_typed_config_name(const Google__Protobuf__Any *any, char *buf, size_t len);

#endif
