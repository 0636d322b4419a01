/* resource: what the xDS client and server share about resource types: the type URLs istiod
 * pushes, the order Envoy subscribes them in, a resource's name, a content version. Nothing
 * here allocates except sk_xds_resource_version_of (into the caller's buffer). */
#ifndef SKIFF_XDS_RESOURCE_H
#define SKIFF_XDS_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define SK_TYPE_URL_PREFIX "type.googleapis.com/"
#define SK_TYPE_URL_CLUSTER SK_TYPE_URL_PREFIX "envoy.config.cluster.v3.Cluster"
#define SK_TYPE_URL_ENDPOINT SK_TYPE_URL_PREFIX "envoy.config.endpoint.v3.ClusterLoadAssignment"
#define SK_TYPE_URL_LISTENER SK_TYPE_URL_PREFIX "envoy.config.listener.v3.Listener"
#define SK_TYPE_URL_ROUTE SK_TYPE_URL_PREFIX "envoy.config.route.v3.RouteConfiguration"
#define SK_TYPE_URL_SECRET SK_TYPE_URL_PREFIX "envoy.extensions.transport_sockets.tls.v3.Secret"
#define SK_TYPE_URL_ECDS SK_TYPE_URL_PREFIX "envoy.config.core.v3.TypedExtensionConfig"

/* Envoy's subscription order: CDS, EDS, LDS, RDS, SDS, then anything else (ECDS) in the
 * order it was first subscribed. Returns 0..5; 5 for other types. */
int sk_xds_type_rank(const char *type_url);

/* "cds", "eds", "lds", "rds", "sds", "ecds" or NULL: the short names of Envoy's stat
 * prefixes (cluster_manager.cds.*, listener_manager.lds.*). */
const char *sk_xds_type_short(const char *type_url);

/* Types whose subscription with no names means "everything" (CDS, LDS): Envoy's wildcard. */
bool sk_xds_type_is_wildcard(const char *type_url);

/* The name that identifies a decoded resource: its `name` field, or `cluster_name` for a
 * ClusterLoadAssignment. NULL when the message has neither (or it is empty). The string
 * belongs to the message. */
const char *sk_xds_resource_name(const ProtobufCMessage *msg);

/* A content version for serialized bytes: 16 hex digits of a 64-bit FNV-1a hash, the way
 * the test server versions Delta resources so that unchanged bytes keep their version. */
#define SK_XDS_VERSION_HEX_LEN 17
void sk_xds_resource_version_of(const uint8_t *data, size_t len, char out[SK_XDS_VERSION_HEX_LEN]);

/* Reads the first length-delimited field `field` at the top level of a protobuf message's
 * wire bytes (no nested decoding). Returns 0 with *out and *out_len pointing into data, -ENOENT
 * when absent, -EINVAL when the bytes are not a well-formed message up to that point. Used to
 * NACK a response that does not decode as a whole (its type_url and nonce are fields 4, 5 in
 * both DiscoveryResponse and DeltaDiscoveryResponse). */
int sk_xds_wire_find_bytes(const uint8_t *data, size_t len, uint32_t field, const uint8_t **out,
			   size_t *out_len);

#endif
