/* secrets: the TLS secrets skiff holds — bootstrap static_resources.secrets and secrets
 * delivered by SDS (StreamSecrets / DeltaSecrets over a gRPC cluster such as Istio's
 * `sds-grpc`, or on the server's ADS stream), translated (xds/translate/tls.h) and checked
 * (sk_tls_secret_check) before they replace what was there. A name subscribed and not yet
 * received is warming, as in Envoy; the static and dynamic clusters and listeners that name
 * it subscribe it (dynamic ones also warm until it arrives: proxy/server/xds_config.h).
 *
 * One per server (s->secrets), main thread only. The store owns every secret; what
 * sk_secrets_get returns is borrowed until the next update is applied (take a reference with
 * sk_secrets_acquire to keep a version longer). */
#ifndef SKIFF_PROXY_SERVER_SECRETS_H
#define SKIFF_PROXY_SERVER_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "proxy/stats/stats.h"
#include "xds/ads.h"
#include "xds/bootstrap.h"
#include "xds/translate/cluster.h"
#include "xds/translate/listener.h"
#include "xds/translate/tls.h"

struct ev_loop;
struct sk_secrets;
struct sk_secret_version;

/* What the store needs from its owner; everything is borrowed and must outlive the store. */
struct sk_secrets_env {
	struct ev_loop *loop;
	struct sk_stats_store *stats;
	struct sk_stats_shard *shard;       /* the main thread's */
	const sk_bootstrap_pb *bootstrap;   /* static secrets, the SDS clusters, the node */
	const struct sk_ads_transport *transport; /* NULL: gRPC (tests pass a fake) */
};

/* Loads bootstrap static_resources.secrets. NULL with err ("static_resources.secrets[1]:
 * secret 'x': tls_certificate.pkcs12: not supported") when one does not translate or a name
 * repeats. One whose PEM does not check (sk_tls_secret_check) is only logged, as Envoy reads
 * a static secret when something uses it: sk_secrets_subscribe of it fails. */
struct sk_secrets *sk_secrets_new(const struct sk_secrets_env *env, char *err, size_t errlen);

/* Stops every SDS stream and frees every secret (references taken with sk_secrets_acquire
 * stay valid until released). NULL: no-op. */
void sk_secrets_free(struct sk_secrets *sec);

/* Asks for the secret ref->name from ref's source: SK_SDS_GRPC opens (or reuses) one SDS
 * stream per cluster and API type — the cluster must be a static cluster of the bootstrap —
 * and the secret is warming until it arrives; SK_SDS_ADS asks for it on the server's ADS
 * stream (sk_secrets_set_ads; the bootstrap must have dynamic_resources.ads_config);
 * SK_SDS_STATIC must name a bootstrap secret. Subscribing a name again from the same source
 * is a no-op. Streams open once sk_secrets_subscribe_bootstrap has run (the first request
 * then names every secret). Returns 0, or with err: -ENOENT (unknown static secret or
 * cluster), -EEXIST (the name comes from another source already), -ENOTSUP (ads without an
 * ads_config), -EINVAL (a static secret whose PEM does not check, or a cluster that gives no
 * gRPC target), -ENOMEM. */
int sk_secrets_subscribe(struct sk_secrets *sec, const struct sk_sds_ref *ref, char *err, size_t errlen);

/* Subscribes the secrets (certificate, validation context) one translated TLS context names;
 * cfg NULL: 0. err starts with `where` ("cluster 'x': transport_socket"). Returns as
 * sk_secrets_subscribe. */
int sk_secrets_subscribe_context(struct sk_secrets *sec, const struct sk_tls_context_config *cfg, const char *where,
				 char *err, size_t errlen);

/* The same for every TLS context of a translated cluster (transport_socket, the tlsMode-istio
 * match) or listener (each filter chain, the default chain): what a cluster or listener
 * accepted from CDS / LDS names, as Envoy subscribes when it creates the transport socket
 * factories. 0 or the first error (err names the cluster or listener and the chain). */
int sk_secrets_subscribe_cluster(struct sk_secrets *sec, const struct sk_cluster_config *cc, char *err,
				 size_t errlen);
int sk_secrets_subscribe_listener(struct sk_secrets *sec, const struct sk_listener_config *lc, char *err,
				  size_t errlen);

/* SDS over ADS. The owner of the ADS stream sets how the stream's Secret subscription is
 * changed: fn(ctx, names, n) runs at once with the names subscribed so far (from the
 * bootstrap too) and again whenever one is added. fn NULL: the stream is gone (the names stay
 * warming). */
typedef int (*sk_secrets_ads_subscribe_fn)(void *ctx, const char *const *names, size_t n);
void sk_secrets_set_ads(struct sk_secrets *sec, sk_secrets_ads_subscribe_fn fn, void *ctx);

/* A Secret update that arrived on the ADS stream, applied as one from an SDS stream: each
 * secret translated and checked (sk_tls_secret_check) alone, stats under sds.<name>.*,
 * watchers told. 0, or -1 with err ("secret 'x': ...", the NACK's error_detail) when one was
 * rejected (the others still apply). */
int sk_secrets_apply_ads(struct sk_secrets *sec, struct sk_ads_update *u, char *err, size_t errlen);

/* Subscribes every secret (SDS or static) that the bootstrap's static clusters (transport_socket,
 * transport_socket_matches) and static listeners (filter chains, default_filter_chain) name,
 * as Envoy does for static resources. Sockets that do not translate are left to the cluster
 * and listener translation to report. Then opens the streams. Returns 0 or the first
 * sk_secrets_subscribe error. */
int sk_secrets_subscribe_bootstrap(struct sk_secrets *sec, char *err, size_t errlen);

/* How many of the secrets a cluster's (listener's) TLS contexts name have not arrived; *first
 * gets the first one's name, *wait the longest initial_fetch_timeout among them (seconds; -1
 * once one of them waits forever; start it at 0). sec NULL: 0. */
size_t sk_secrets_missing_cluster(struct sk_secrets *sec, const struct sk_cluster_config *cc, double *wait,
				  const char **first);
size_t sk_secrets_missing_listener(struct sk_secrets *sec, const struct sk_listener_config *lc, double *wait,
				   const char **first);

/* The current version of a secret, NULL while it is warming or unknown. *generation (may be
 * NULL) changes whenever the secret does (1 for the first version). */
const struct sk_tls_secret *sk_secrets_get(struct sk_secrets *sec, const char *name, uint64_t *generation);

/* A reference on the current version (NULL as sk_secrets_get), for a holder that outlives the
 * next update; release it with sk_secret_version_unref (NULL: no-op). */
struct sk_secret_version *sk_secrets_acquire(struct sk_secrets *sec, const char *name);
const struct sk_tls_secret *sk_secret_version_secret(const struct sk_secret_version *v);
void sk_secret_version_unref(struct sk_secret_version *v);

/* cb(ctx, name) runs on the loop thread after a secret got a new version (not when the same
 * bytes arrive again), so that the TLS wiring can rebuild its contexts; it must not free the
 * store nor (un)register watchers. 0 or -ENOMEM. */
typedef void (*sk_secrets_watch_cb)(void *ctx, const char *name);
int sk_secrets_watch(struct sk_secrets *sec, sk_secrets_watch_cb cb, void *ctx);
void sk_secrets_unwatch(struct sk_secrets *sec, sk_secrets_watch_cb cb, void *ctx);

/* Days until the first certificate of the current secrets (chains and CAs) expires, as
 * server.days_until_first_cert_expiring: 0 once expired, -1 with no certificate. */
long sk_secrets_days_until_first_cert_expiring(const struct sk_secrets *sec, time_t now);

/* /config_dump: adds dynamic_active_secrets and dynamic_warming_secrets (Envoy's
 * SecretsConfigDump.DynamicSecret: name, version_info, last_updated, secret with private keys
 * redacted) to a SecretsConfigDump object. */
void sk_secrets_config_dump(const struct sk_secrets *sec, json_t *dump);

#endif
