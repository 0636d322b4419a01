/* ads: the xDS client protocol on one stream — SotW (StreamAggregatedResources) or Delta
 * (DeltaAggregatedResources), also usable for SDS (StreamSecrets / DeltaSecrets) — with
 * Envoy's behaviour: node on the first request, subscriptions by type URL in Envoy's order,
 * ACK / NACK with version, nonce and error_detail, Delta resource versions and
 * initial_resource_versions on reconnect, jittered exponential back-off, counters for stats.
 *
 * The owner (the server's config manager, or a test driver) decides what to subscribe and
 * gets every update through `apply` on the loop thread, as decoded protobuf messages;
 * translation and validation are its business. The client owns its state; the messages it
 * passes to apply are freed after apply returns unless the owner takes them. */
#ifndef SKIFF_XDS_ADS_H
#define SKIFF_XDS_ADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "skiff_protos.h"
#include "xds/bootstrap.h"
#include "xds/grpc_bridge.h"
#include "xds/resource.h"

struct ev_loop;
struct sk_ads;

#define SK_ADS_METHOD_SOTW "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define SK_ADS_METHOD_DELTA "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
#define SK_SDS_METHOD_SOTW "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets"
#define SK_SDS_METHOD_DELTA "/envoy.service.secret.v3.SecretDiscoveryService/DeltaSecrets"

/* What skiff says it is in node.user_agent_build_version: the Envoy release whose API and
 * behaviour it follows. */
#define SK_ADS_ENVOY_MAJOR 1
#define SK_ADS_ENVOY_MINOR 36
#define SK_ADS_ENVOY_PATCH 0

enum sk_ads_api_type {
	SK_ADS_SOTW,    /* api_type GRPC / AGGREGATED_GRPC */
	SK_ADS_DELTA,   /* api_type DELTA_GRPC / AGGREGATED_DELTA_GRPC */
};

/* One resource of an update. */
struct sk_ads_resource {
	const char *name;
	const char *version;        /* Delta: the resource's version; SotW: the update's version */
	ProtobufCMessage *msg;      /* decoded (the Any unpacked); set it to NULL to keep it, then
				     * free it with protobuf_c_message_free_unpacked(msg, NULL) */
	const uint8_t *bytes;       /* its serialized form (valid during apply): equal bytes, same
				     * resource */
	size_t len;
};

/* One DiscoveryResponse / DeltaDiscoveryResponse, decoded and checked. */
struct sk_ads_update {
	const char *type_url;
	bool delta;
	const char *version;        /* version_info / system_version_info */
	const char *nonce;
	struct sk_ads_resource *resources;
	size_t n_resources;         /* SotW: the whole state of the type (absence = removal for
				     * LDS/CDS, not for RDS/EDS) */
	const char *const *removed; /* Delta: removed_resources (and removed_resource_names) */
	size_t n_removed;
};

/* Accept (0) or reject (-1, with a message naming the resource and the field in err, which
 * becomes the NACK's error_detail). May call sk_ads_subscribe: the requests it causes go out
 * after this update's ACK / NACK. Must not destroy the client (nor may on_event). */
typedef int (*sk_ads_apply_cb)(void *ctx, struct sk_ads_update *u, char *err, size_t errlen);

enum sk_ads_event_kind {
	SK_ADS_EV_CONNECTED,        /* the stream is up (its headers went out) */
	SK_ADS_EV_DISCONNECTED,     /* it ended: grpc_status, details; retry after retry_ms */
	SK_ADS_EV_BAD_MESSAGE,      /* a response was NACKed or dropped before apply: details */
};

struct sk_ads_event {
	enum sk_ads_event_kind kind;
	int grpc_status;
	const char *details;
	uint32_t retry_ms;
};

/* The stream underneath: gRPC (the default) or, in unit tests, a fake. A transport reports
 * back through sk_ads_transport_ready / _message / _closed, on the loop thread. */
struct sk_ads_transport {
	/* Starts a stream; NULL when it cannot (then retried after back-off, no callback). */
	void *(*open)(void *tctx, struct sk_ads *ads, const char *method);
	int (*send)(void *tctx, void *stream, const uint8_t *data, size_t len);
	/* No report follows. */
	void (*close)(void *tctx, void *stream);
	void *tctx;
};

struct sk_ads_config {
	enum sk_ads_api_type api_type;
	bool set_node_on_first_message_only;
	const Envoy__Config__Core__V3__Node *node;  /* copied; user agent and client features are
						     * filled in as Envoy does */
	const char *method;         /* NULL: the ADS method of api_type */
	/* gRPC transport (ignored with a custom transport) */
	struct sk_grpc_bridge *bridge;
	const char *target;
	const char *authority;      /* NULL: derived from the target */
	const struct sk_grpc_creds *creds;         /* NULL: insecure; borrowed, must outlive the client */
	const struct sk_grpc_metadata *metadata;   /* initial_metadata, copied */
	size_t n_metadata;
	size_t max_receive_bytes;   /* 0: SK_GRPC_MAX_RECEIVE_DEFAULT */
	const struct sk_ads_transport *transport;  /* NULL: gRPC through `bridge` */
	uint32_t backoff_base_ms;   /* 0: 500 */
	uint32_t backoff_max_ms;    /* 0: 30000 */
	uint64_t backoff_seed;      /* 0: from the clock */
	sk_ads_apply_cb apply;
	void (*on_event)(void *ctx, const struct sk_ads_event *ev);  /* may be NULL */
	void *ctx;
};

/* Per type URL, Envoy's subscription stats (<prefix>.update_attempt, ...). */
struct sk_ads_type_stats {
	uint64_t update_attempt;    /* responses and stream failures seen */
	uint64_t update_success;
	uint64_t update_rejected;   /* NACKed */
	uint64_t update_failure;    /* the stream broke */
	uint64_t update_empty;      /* SotW responses with no resources, accepted */
	uint64_t update_time;       /* ms since the epoch of the last accepted update */
	const char *version_text;   /* the last accepted version ("" before), owned by the client */
};

/* control_plane.* */
struct sk_ads_stats {
	uint64_t connected_state;       /* gauge 0/1 */
	uint64_t rate_limit_enforced;   /* counter; skiff does not rate-limit requests: 0 */
	uint64_t pending_requests;      /* gauge: requests accepted and not yet written */
	const char *identifier;         /* control_plane.identifier of the last response, or "" */
};

/* Creates an idle client; nothing is sent before sk_ads_start. NULL with err on bad config. */
struct sk_ads *sk_ads_create(struct ev_loop *loop, const struct sk_ads_config *cfg, char *err, size_t errlen);

/* Opens the stream (asynchronously) and sends a request for every subscribed type. */
int sk_ads_start(struct sk_ads *ads);

/* Closes the stream (no callback), stops the retry timer, frees everything. NULL: no-op. */
void sk_ads_destroy(struct sk_ads *ads);

/* Sets the subscription of a type: `names` (copied) and/or the wildcard (all resources).
 * n == 0 && !wildcard unsubscribes. Sends a request when something changed (or after the
 * current update, from inside apply). Returns 0, -EINVAL for a type URL outside skiff's
 * proto registry, -ENOMEM. */
int sk_ads_subscribe(struct sk_ads *ads, const char *type_url, const char *const *names, size_t n,
		     bool wildcard);

/* Stats, read by the owner when it renders them. -ENOENT for a type never subscribed. */
int sk_ads_type_stats(const struct sk_ads *ads, const char *type_url, struct sk_ads_type_stats *out);
void sk_ads_stats(const struct sk_ads *ads, struct sk_ads_stats *out);

/* Delta: the version of an accepted resource (NULL when unknown). SotW: NULL. */
const char *sk_ads_resource_version(const struct sk_ads *ads, const char *type_url, const char *name);

/* The delay of the retry in progress, in ms; 0 when none is scheduled. */
uint32_t sk_ads_retry_ms(const struct sk_ads *ads);

/* Reports of a custom transport (the gRPC one calls them itself). */
void sk_ads_transport_ready(struct sk_ads *ads);
void sk_ads_transport_message(struct sk_ads *ads, const uint8_t *data, size_t len);
void sk_ads_transport_closed(struct sk_ads *ads, int grpc_status, const char *details);

/* What a bootstrap's dynamic_resources.ads_config says: API type, node rule, the gRPC target
 * of its cluster (sk_grpc_target_from_cluster) or google_grpc.target_uri, :authority and
 * initial metadata. Borrowed strings point into the bootstrap; free with
 * sk_ads_bootstrap_clear. Returns 0, -ENOENT (no ads_config), -EINVAL / -ENOTSUP with err. */
struct sk_ads_bootstrap {
	enum sk_ads_api_type api_type;
	bool set_node_on_first_message_only;
	const char *cluster_name;           /* envoy_grpc.cluster_name, or NULL */
	char target[512];
	const char *authority;              /* envoy_grpc.authority, else the cluster name */
	struct sk_grpc_metadata *metadata;  /* malloc'd array of borrowed strings */
	size_t n_metadata;
	size_t max_receive_bytes;           /* envoy_grpc.max_receive_message_length, or 0 */
};

int sk_ads_bootstrap_read(const sk_bootstrap_pb *b, struct sk_ads_bootstrap *out, char *err, size_t errlen);
void sk_ads_bootstrap_clear(struct sk_ads_bootstrap *out);

#endif
