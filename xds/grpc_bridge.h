/* grpc_bridge: gRPC core bidirectional streams driven from a libev loop. A dedicated thread
 * runs grpc_completion_queue_next and hands every completion to the loop through ev_async;
 * all callbacks run on the loop thread, the loop never blocks on gRPC, and gRPC never calls
 * into the caller from its own threads. The bridge owns its streams; a stream's owner holds
 * it until it calls sk_grpc_stream_close (exactly once, also after on_close). */
#ifndef SKIFF_XDS_GRPC_BRIDGE_H
#define SKIFF_XDS_GRPC_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>

struct ev_loop;
struct sk_grpc_bridge;
struct sk_grpc_stream;
struct Envoy__Config__Cluster__V3__Cluster;

/* Received messages larger than this end the stream with RESOURCE_EXHAUSTED. */
#define SK_GRPC_MAX_RECEIVE_DEFAULT (512u << 20)

struct sk_grpc_metadata {
	const char *key;     /* lowercase, a legal HTTP/2 header name */
	const char *value;
};

enum sk_grpc_creds_kind {
	SK_GRPC_CREDS_INSECURE,
	SK_GRPC_CREDS_SSL,   /* grpc_ssl_credentials_create: the TLS of an xDS cluster */
};

/* Channel credentials. The strings are read during sk_grpc_stream_open only. */
struct sk_grpc_creds {
	enum sk_grpc_creds_kind kind;
	const char *root_certs_pem;   /* SSL: trusted CAs; NULL = gRPC's default roots */
	const char *cert_chain_pem;   /* SSL: client certificate chain (with private_key_pem) */
	const char *private_key_pem;
};

struct sk_grpc_stream_callbacks {
	/* The call's initial metadata went out: a transport to the server exists. May be NULL. */
	void (*on_ready)(void *ctx);
	/* One message; data is valid during the call only. */
	void (*on_message)(void *ctx, const uint8_t *data, size_t len);
	/* The call ended with this status (details never NULL). The last callback. */
	void (*on_close)(void *ctx, grpc_status_code status, const char *details);
};

struct sk_grpc_stream_opts {
	const char *target;        /* "unix:/path", "ipv4:127.0.0.1:15010", "dns:///host:port" */
	const struct sk_grpc_creds *creds;  /* NULL = insecure */
	const char *method;        /* "/envoy.service.discovery.v3.AggregatedDiscoveryService/..." */
	const char *authority;     /* :authority; NULL = derived from the target */
	const struct sk_grpc_metadata *metadata;  /* initial metadata, copied */
	size_t n_metadata;
	size_t max_receive_bytes;  /* 0 = SK_GRPC_MAX_RECEIVE_DEFAULT */
	struct sk_grpc_stream_callbacks cb;
	void *ctx;
};

/* Initializes gRPC (grpc_init) and starts the completion-queue thread. NULL on failure. */
struct sk_grpc_bridge *sk_grpc_bridge_create(struct ev_loop *loop);

/* Cancels every stream still open (their owners must not use them any more, and get no
 * callback), joins the thread, frees everything and releases gRPC (grpc_shutdown). Not from
 * inside a bridge callback. NULL is a no-op. */
void sk_grpc_bridge_destroy(struct sk_grpc_bridge *b);

/* Starts a call on a new channel. Returns NULL with a message in err when the call cannot
 * start (no callback follows); otherwise every outcome, including a server that is not
 * there, arrives as on_close. */
struct sk_grpc_stream *sk_grpc_stream_open(struct sk_grpc_bridge *b, const struct sk_grpc_stream_opts *o,
					   char *err, size_t errlen);

/* Queues a copy of one message; gRPC allows one send in flight, the rest wait in order.
 * Returns 0, -EPIPE once the stream has ended or is closed, -ENOMEM. */
int sk_grpc_stream_send(struct sk_grpc_stream *s, const void *data, size_t len);

/* Messages accepted by send and not yet written to the transport. */
size_t sk_grpc_stream_pending(const struct sk_grpc_stream *s);

/* Cancels the call if it is still running; no callback follows. The memory goes once gRPC
 * has returned every operation. Safe from inside this stream's callbacks. NULL: no-op. */
void sk_grpc_stream_close(struct sk_grpc_stream *s);

/* The gRPC target of a static cluster (the one ads_config.grpc_services[].envoy_grpc names):
 * its first endpoint's pipe -> "unix:<path>" ("unix-abstract:" for "@name"), an IPv4 / IPv6
 * literal -> "ipv4:a:p" / "ipv6:[a]:p", a hostname -> "dns:///host:port". Returns 0, or
 * -EINVAL / -ENOTSUP (TLS on the cluster: not supported yet) with err naming the field. */
int sk_grpc_target_from_cluster(const struct Envoy__Config__Cluster__V3__Cluster *c, char *buf,
				size_t len, char *err, size_t errlen);

#endif
