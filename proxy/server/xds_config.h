/* xds_config: the configuration the ADS stream delivers — clusters (CDS), their endpoints
 * (EDS), listeners (LDS) and route configurations (RDS) — turned into snapshots for the
 * workers, with Envoy's order and rules:
 *
 * - subscriptions: CDS (wildcard) first; EDS for the EDS clusters' service names; LDS
 *   (wildcard) once the first clusters are initialized; RDS for the route_config_names the
 *   listeners' connection managers reference;
 * - warming: an EDS cluster until its endpoints arrive (or its initial_fetch_timeout), a
 *   listener until every route configuration it names has arrived; a cluster or listener
 *   whose TLS contexts name SDS secrets (subscribed in the server's secret store when it is
 *   accepted) until they have arrived (or their sds_config's initial_fetch_timeout); the
 *   version it replaces keeps serving meanwhile; the first complete CDS+LDS makes the server
 *   LIVE; each new snapshot's SDS TLS contexts are built before the workers see it;
 * - SDS over ADS: secrets whose sds_config is `ads` are asked for on this stream and handed to
 *   the secret store (proxy/server/secrets.h), which checks them (ACK / NACK);
 * - all or nothing: every resource of an update is translated and checked before anything
 *   changes; one invalid resource NACKs the update with a message naming it, and the
 *   previous configuration keeps serving;
 * - no request lost: an unchanged resource (same bytes) is kept as it is; a changed listener
 *   takes over its predecessor's sockets and the old one drains for --drain-time-s; an
 *   EDS-only change swaps the host set of the same cluster (its pooled connections stay).
 *
 * Main thread only. Owned by the server (s->xds). */
#ifndef SKIFF_PROXY_SERVER_XDS_CONFIG_H
#define SKIFF_PROXY_SERVER_XDS_CONFIG_H

#include <stddef.h>

#include <jansson.h>

struct sk_server;
struct sk_xds_config;

/* Reads dynamic_resources and, when CDS or LDS come over ADS, starts the stream. NULL with
 * *rc 0 when the bootstrap has no dynamic resources; NULL with *rc < 0 and err when they
 * cannot be served ("lds_config: only ads is supported"). */
struct sk_xds_config *sk_xds_config_start(struct sk_server *s, int *rc, char *err, size_t errlen);

/* Stops the stream and releases every dynamic resource. NULL: no-op. */
void sk_xds_config_free(struct sk_xds_config *x);

/* /config_dump: adds the dynamic entries of one dump message (Envoy's field names:
 * dynamic_active_clusters / dynamic_warming_clusters and version_info, dynamic_listeners,
 * dynamic_route_configs, dynamic_endpoint_configs). */
enum sk_xds_dump { SK_XDS_DUMP_CLUSTERS, SK_XDS_DUMP_ENDPOINTS, SK_XDS_DUMP_LISTENERS, SK_XDS_DUMP_ROUTES };
void sk_xds_config_dump(const struct sk_xds_config *x, enum sk_xds_dump what, json_t *dump);

#endif
