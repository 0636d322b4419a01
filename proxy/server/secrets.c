/* secrets: see secrets.h.
 *
 * Envoy gives every SDS secret its own subscription; skiff multiplexes the secrets of one
 * cluster and API type on one stream (pilot-agent serves several names per stream), and keeps
 * Envoy's per-secret behaviour on top of it: a response that lacks a name leaves that secret
 * as it is, each secret is accepted or rejected on its own (the response is NACKed when any
 * is rejected), and stats are per secret (sds.<name>.*). */
#include "proxy/server/secrets.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "proxy/log/log.h"
#include "proxy/network/tls.h"
#include "xds/pbjson.h"
#include "xds/resource.h"

#define MAX_PEM_FILE (16u << 20)

typedef Envoy__Extensions__TransportSockets__Tls__V3__Secret secret_pb;
typedef Envoy__Config__Cluster__V3__Cluster cluster_pb;

/* One accepted version of a secret: shared by the store and whoever acquired it. */
struct sk_secret_version {
	atomic_int refs;
	struct sk_tls_secret *secret;
	uint8_t *bytes;            /* the Secret as it arrived (static: as the bootstrap has it) */
	size_t len;
	char *version_info;
	time_t last_updated;
	time_t first_expiry;       /* the earliest notAfter of its certificates; 0: none */
};

/* One SDS stream: a cluster and an API type; or the server's ADS stream (ads_stream). */
struct client {
	struct sk_secrets *sec;
	char *cluster;             /* "ADS" for the ADS stream */
	bool delta;
	bool ads_stream;           /* secrets over ADS: the stream belongs to xds_config */
	struct sk_ads *ads;        /* NULL for the ADS stream */
};

/* One secret name. */
struct entry {
	char *name;
	struct client *client;     /* NULL: static */
	struct sk_secret_version *cur; /* NULL: warming (or an invalid static secret) */
	char *invalid;             /* static: why its PEM does not check, or NULL */
	uint64_t generation;
	sk_stat_id update_attempt, update_success, update_rejected, update_failure, update_time;
};

struct watcher {
	sk_secrets_watch_cb cb;
	void *ctx;
};

struct sk_secrets {
	struct sk_secrets_env env;
	struct sk_grpc_bridge *bridge; /* created with the first gRPC stream */
	struct entry **e;
	size_t n_e;
	struct client **c;
	size_t n_c;
	struct watcher *w;
	size_t n_w;
	struct client *ads;        /* SDS over ADS, created with its first secret */
	sk_secrets_ads_subscribe_fn ads_fn; /* how to change the ADS stream's Secret names */
	void *ads_ctx;
	sk_stat_id days_until_expiry;
	bool started;              /* streams open as they are created (else: at the end of
				    * sk_secrets_subscribe_bootstrap, one request for all names) */
};

/* ---- versions ---------------------------------------------------------------------------- */

static void version_unref(struct sk_secret_version *v)
{
	if (v == NULL || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	sk_tls_secret_free(v->secret);
	free(v->bytes);
	free(v->version_info);
	free(v);
}

void sk_secret_version_unref(struct sk_secret_version *v)
{
	version_unref(v);
}

const struct sk_tls_secret *sk_secret_version_secret(const struct sk_secret_version *v)
{
	return v ? v->secret : NULL;
}

/* The PEM bytes of a data source (inline or file); NULL when there are none. */
static char *source_bytes(const struct sk_data_source *d, size_t *len)
{
	char err[256];

	if (d->kind == SK_DATA_INLINE) {
		char *p = malloc(d->len + 1);

		if (p) {
			memcpy(p, d->data, d->len);
			p[d->len] = '\0';
			*len = d->len;
		}
		return p;
	}
	if (d->kind == SK_DATA_FILE)
		return sk_file_read(d->name, MAX_PEM_FILE, len, err, sizeof(err));
	return NULL;
}

/* The earliest notAfter among the PEM certificates of d (keeps *first when earlier). */
static void earliest_expiry(const struct sk_data_source *d, time_t *first)
{
	size_t len = 0;
	char *pem = source_bytes(d, &len);
	BIO *bio = pem ? BIO_new_mem_buf(pem, (int)len) : NULL;
	X509 *x;

	while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		struct tm tm;

		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
			time_t t = timegm(&tm);

			if (*first == 0 || t < *first)
				*first = t;
		}
		X509_free(x);
	}
	ERR_clear_error();
	BIO_free(bio);
	free(pem);
}

/* Takes ownership of secret; copies bytes and version. */
static struct sk_secret_version *version_new(struct sk_tls_secret *secret, const uint8_t *bytes, size_t len,
					     const char *version_info)
{
	struct sk_secret_version *v = calloc(1, sizeof(*v));

	if (v == NULL || (v->bytes = malloc(len ? len : 1)) == NULL ||
	    (v->version_info = strdup(version_info ? version_info : "")) == NULL) {
		if (v)
			free(v->bytes);
		free(v);
		sk_tls_secret_free(secret);
		return NULL;
	}
	atomic_init(&v->refs, 1);
	v->secret = secret;
	memcpy(v->bytes, bytes, len);
	v->len = len;
	v->last_updated = time(NULL);
	if (secret->kind == SK_TLS_SECRET_CERTIFICATE)
		earliest_expiry(&secret->cert.chain, &v->first_expiry);
	else
		earliest_expiry(&secret->validation.trusted_ca, &v->first_expiry);
	return v;
}

/* ---- entries ---------------------------------------------------------------------------- */

static struct entry *find(const struct sk_secrets *sec, const char *name)
{
	for (size_t i = 0; i < sec->n_e; i++)
		if (strcmp(sec->e[i]->name, name) == 0)
			return sec->e[i];
	return NULL;
}

static struct entry *entry_add(struct sk_secrets *sec, const char *name, struct client *c)
{
	struct entry **v = realloc(sec->e, (sec->n_e + 1) * sizeof(*v)), *e;
	struct sk_stats_store *st = sec->env.stats;

	if (v == NULL)
		return NULL;
	sec->e = v;
	e = calloc(1, sizeof(*e));
	if (e == NULL || (e->name = strdup(name)) == NULL) {
		free(e);
		return NULL;
	}
	e->client = c;
	if (c != NULL) {
		/* Envoy's SubscriptionStats under sds.<name>. */
		e->update_attempt = sk_stats_counterf(st, "sds.%s.update_attempt", name);
		e->update_success = sk_stats_counterf(st, "sds.%s.update_success", name);
		e->update_rejected = sk_stats_counterf(st, "sds.%s.update_rejected", name);
		e->update_failure = sk_stats_counterf(st, "sds.%s.update_failure", name);
		e->update_time = sk_stats_gaugef(st, SK_GAUGE_MAIN_ONLY, "sds.%s.update_time", name);
	}
	sec->e[sec->n_e++] = e;
	return e;
}

long sk_secrets_days_until_first_cert_expiring(const struct sk_secrets *sec, time_t now)
{
	time_t first = 0;

	for (size_t i = 0; i < sec->n_e; i++) {
		const struct sk_secret_version *v = sec->e[i]->cur;

		if (v && v->first_expiry && (first == 0 || v->first_expiry < first))
			first = v->first_expiry;
	}
	if (first == 0)
		return -1;
	return first <= now ? 0 : (long)((first - now) / 86400);
}

static void refresh_expiry(struct sk_secrets *sec)
{
	long days = sk_secrets_days_until_first_cert_expiring(sec, time(NULL));

	if (days >= 0)
		sk_stat_set(sec->env.shard, sec->days_until_expiry, (uint64_t)days);
}

/* Makes v (owned) the current version of e; watchers hear of it unless the bytes are the
 * same as before. */
static void entry_set(struct sk_secrets *sec, struct entry *e, struct sk_secret_version *v)
{
	bool same = e->cur && e->cur->len == v->len && memcmp(e->cur->bytes, v->bytes, v->len) == 0;

	version_unref(e->cur);
	e->cur = v;
	if (same)
		return;
	e->generation++;
	refresh_expiry(sec);
	for (size_t i = 0; i < sec->n_w; i++)
		sec->w[i].cb(sec->w[i].ctx, e->name);
}

/* A Secret message -> a checked version (NULL with err). */
static struct sk_secret_version *version_from(const secret_pb *m, const uint8_t *bytes, size_t len,
					      const char *version_info, char *err, size_t errlen)
{
	struct sk_tls_secret *t = sk_tls_secret_new(m, err, errlen);

	if (t == NULL)
		return NULL;
	if (sk_tls_secret_check(t, err, errlen) < 0) {
		sk_tls_secret_free(t);
		return NULL;
	}
	return version_new(t, bytes, len, version_info);
}

/* ---- SDS streams ------------------------------------------------------------------------- */

static int apply(struct sk_secrets *sec, struct client *c, const struct sk_ads_update *u, char *err, size_t errlen)
{
	int rc = 0;
	time_t now = time(NULL);

	for (size_t i = 0; i < u->n_resources; i++) {
		const struct sk_ads_resource *r = &u->resources[i];
		struct entry *e = find(sec, r->name);
		const char *version = r->version ? r->version : u->version;
		struct sk_secret_version *v;
		char why[1024];

		if (e == NULL || e->client != c) {
			sk_log_debug(SK_LOG_CONFIG, "SDS: secret '%s' was not asked for: ignored", r->name);
			continue;
		}
		sk_stat_inc(sec->env.shard, e->update_attempt);
		if (r->msg == NULL) {
			snprintf(why, sizeof(why), "secret '%s': does not decode", r->name);
			v = NULL;
		} else {
			v = version_from((const secret_pb *)r->msg, r->bytes, r->len, version, why, sizeof(why));
		}
		if (v == NULL) {
			sk_stat_inc(sec->env.shard, e->update_rejected);
			sk_log_warn(SK_LOG_CONFIG, "SDS: secret '%s' version %s rejected: %s", r->name,
				    version ? version : "", why);
			if (rc == 0)
				snprintf(err, errlen, "%s", why);
			rc = -1;
			continue;
		}
		sk_stat_inc(sec->env.shard, e->update_success);
		sk_stat_set(sec->env.shard, e->update_time, (uint64_t)now * 1000);
		sk_log_info(SK_LOG_CONFIG, "SDS: secret '%s' version %s accepted", r->name, version ? version : "");
		entry_set(sec, e, v);
	}
	/* Envoy keeps a secret the server stops sending (SotW) or removes (Delta). */
	for (size_t i = 0; i < u->n_removed; i++)
		sk_log_info(SK_LOG_CONFIG, "SDS: secret '%s' removed by the server: the last version is kept",
			    u->removed[i]);
	return rc;
}

static int on_apply(void *ctx, struct sk_ads_update *u, char *err, size_t errlen)
{
	struct client *c = ctx;

	if (strcmp(u->type_url, SK_TYPE_URL_SECRET) != 0) {
		snprintf(err, errlen, "type %s: not subscribed", u->type_url);
		return -1;
	}
	return apply(c->sec, c, u, err, errlen);
}

static void on_event(void *ctx, const struct sk_ads_event *ev)
{
	struct client *c = ctx;
	struct sk_secrets *sec = c->sec;

	if (ev->kind == SK_ADS_EV_CONNECTED) {
		sk_log_debug(SK_LOG_CONFIG, "SDS: stream to cluster '%s' is up", c->cluster);
	} else if (ev->kind == SK_ADS_EV_DISCONNECTED) {
		for (size_t i = 0; i < sec->n_e; i++)
			if (sec->e[i]->client == c) {
				sk_stat_inc(sec->env.shard, sec->e[i]->update_attempt);
				sk_stat_inc(sec->env.shard, sec->e[i]->update_failure);
			}
		sk_log_warn(SK_LOG_CONFIG, "SDS stream to cluster '%s' closed: grpc status %d: %s; retrying in %u ms",
			    c->cluster, ev->grpc_status, ev->details ? ev->details : "", ev->retry_ms);
	} else {
		sk_log_warn(SK_LOG_CONFIG, "SDS (cluster '%s'): %s", c->cluster, ev->details ? ev->details : "bad message");
	}
}

static const cluster_pb *static_cluster(const sk_bootstrap_pb *b, const char *name)
{
	for (size_t i = 0; b->static_resources != NULL && i < b->static_resources->n_clusters; i++)
		if (strcmp(b->static_resources->clusters[i]->name, name) == 0)
			return b->static_resources->clusters[i];
	return NULL;
}

static void client_free(struct client *c)
{
	if (c == NULL)
		return;
	sk_ads_destroy(c->ads);
	free(c->cluster);
	free(c);
}

/* The stream for (cluster, delta), started on first use. */
static struct client *client_get(struct sk_secrets *sec, const struct sk_sds_ref *ref, int *rc, char *err,
				 size_t errlen)
{
	const cluster_pb *cl = static_cluster(sec->env.bootstrap, ref->cluster);
	struct sk_ads_config cfg = {0};
	struct client *c, **v;
	char target[512], why[512];

	for (size_t i = 0; i < sec->n_c; i++)
		if (strcmp(sec->c[i]->cluster, ref->cluster) == 0 && sec->c[i]->delta == ref->delta)
			return sec->c[i];
	*rc = -ENOENT;
	if (cl == NULL) {
		snprintf(err, errlen, "secret '%s': sds_config: unknown static cluster '%s'", ref->name, ref->cluster);
		return NULL;
	}
	*rc = -EINVAL;
	if (sec->env.transport == NULL &&
	    sk_grpc_target_from_cluster(cl, target, sizeof(target), why, sizeof(why)) < 0) {
		snprintf(err, errlen, "secret '%s': sds_config: cluster '%s': %s", ref->name, ref->cluster, why);
		return NULL;
	}
	*rc = -ENOMEM;
	snprintf(err, errlen, "out of memory");
	if (sec->env.transport == NULL && sec->bridge == NULL &&
	    (sec->bridge = sk_grpc_bridge_create(sec->env.loop)) == NULL)
		return NULL;
	v = realloc(sec->c, (sec->n_c + 1) * sizeof(*v));
	if (v == NULL)
		return NULL;
	sec->c = v;
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->cluster = strdup(ref->cluster)) == NULL) {
		free(c);
		return NULL;
	}
	c->sec = sec;
	c->delta = ref->delta;
	cfg.api_type = ref->delta ? SK_ADS_DELTA : SK_ADS_SOTW;
	cfg.method = ref->delta ? SK_SDS_METHOD_DELTA : SK_SDS_METHOD_SOTW;
	cfg.node = sec->env.bootstrap->node;
	cfg.bridge = sec->bridge;
	cfg.target = target;
	cfg.authority = ref->cluster;
	cfg.transport = sec->env.transport;
	cfg.apply = on_apply;
	cfg.on_event = on_event;
	cfg.ctx = c;
	c->ads = sk_ads_create(sec->env.loop, &cfg, why, sizeof(why));
	if (c->ads == NULL) {
		snprintf(err, errlen, "secret '%s': SDS stream to cluster '%s': %s", ref->name, ref->cluster, why);
		*rc = -EINVAL;
		client_free(c);
		return NULL;
	}
	sec->c[sec->n_c++] = c;
	if (sec->started)
		sk_ads_start(c->ads);
	sk_log_info(SK_LOG_CONFIG, "SDS: %s stream to cluster '%s' (%s)", ref->delta ? "delta" : "state-of-the-world",
		    ref->cluster, sec->env.transport ? "custom transport" : target);
	*rc = 0;
	return c;
}

/* Sends the client's names (every entry it serves) as its subscription. */
static int client_resubscribe(struct sk_secrets *sec, struct client *c)
{
	const char **names = malloc((sec->n_e + 1) * sizeof(*names));
	size_t n = 0;
	int rc;

	if (names == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sec->n_e; i++)
		if (sec->e[i]->client == c)
			names[n++] = sec->e[i]->name;
	rc = sk_ads_subscribe(c->ads, SK_TYPE_URL_SECRET, names, n, false);
	free(names);
	return rc;
}

/* Sends the ADS stream's Secret names (when the stream's owner has said how). */
static int ads_resubscribe(struct sk_secrets *sec)
{
	const char **names;
	size_t n = 0;
	int rc;

	if (sec->ads_fn == NULL || sec->ads == NULL)
		return 0;
	names = malloc((sec->n_e + 1) * sizeof(*names));
	if (names == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sec->n_e; i++)
		if (sec->e[i]->client == sec->ads)
			names[n++] = sec->e[i]->name;
	rc = sec->ads_fn(sec->ads_ctx, names, n);
	free(names);
	return rc;
}

static int subscribe_ads(struct sk_secrets *sec, struct entry *e, const struct sk_sds_ref *ref, char *err,
			 size_t errlen)
{
	const sk_bootstrap_pb *b = sec->env.bootstrap;

	if (e != NULL) {
		if (sec->ads != NULL && e->client == sec->ads)
			return 0;
		snprintf(err, errlen, "secret '%s': already %s", ref->name,
			 e->client ? "subscribed from another SDS source" : "a static secret");
		return -EEXIST;
	}
	if (b->dynamic_resources == NULL || b->dynamic_resources->ads_config == NULL) {
		snprintf(err, errlen, "secret '%s': sds_config: ads, but the bootstrap has no "
			 "dynamic_resources.ads_config", ref->name);
		return -ENOTSUP;
	}
	if (sec->ads == NULL) {
		struct client *c = calloc(1, sizeof(*c));

		if (c == NULL || (c->cluster = strdup("ADS")) == NULL) {
			free(c);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		c->sec = sec;
		c->ads_stream = true;
		sec->ads = c;
	}
	if (entry_add(sec, ref->name, sec->ads) == NULL || ads_resubscribe(sec) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sk_log_debug(SK_LOG_CONFIG, "SDS: secret '%s' (over ADS) is warming", ref->name);
	return 0;
}

void sk_secrets_set_ads(struct sk_secrets *sec, sk_secrets_ads_subscribe_fn fn, void *ctx)
{
	sec->ads_fn = fn;
	sec->ads_ctx = ctx;
	if (ads_resubscribe(sec) < 0)
		sk_log_error(SK_LOG_CONFIG, "SDS over ADS: out of memory subscribing the secrets");
}

int sk_secrets_apply_ads(struct sk_secrets *sec, struct sk_ads_update *u, char *err, size_t errlen)
{
	if (sec->ads == NULL) {
		snprintf(err, errlen, "type %s: not subscribed", u->type_url);
		return -1;
	}
	return apply(sec, sec->ads, u, err, errlen);
}

int sk_secrets_subscribe(struct sk_secrets *sec, const struct sk_sds_ref *ref, char *err, size_t errlen)
{
	struct entry *e = find(sec, ref->name);
	struct client *c;
	int rc = 0;

	switch (ref->source) {
	case SK_SDS_STATIC:
		if (e == NULL || e->client != NULL) {
			snprintf(err, errlen, "secret '%s': no static secret of that name", ref->name);
			return -ENOENT;
		}
		if (e->invalid) {
			snprintf(err, errlen, "%s", e->invalid);
			return -EINVAL;
		}
		return 0;
	case SK_SDS_ADS:
		return subscribe_ads(sec, e, ref, err, errlen);
	case SK_SDS_GRPC:
		break;
	}
	if (e != NULL) {
		if (e->client != NULL && !e->client->ads_stream && strcmp(e->client->cluster, ref->cluster) == 0 &&
		    e->client->delta == ref->delta)
			return 0;
		snprintf(err, errlen, "secret '%s': already %s", ref->name,
			 e->client ? "subscribed from another SDS source" : "a static secret");
		return -EEXIST;
	}
	c = client_get(sec, ref, &rc, err, errlen);
	if (c == NULL)
		return rc;
	if (entry_add(sec, ref->name, c) == NULL || client_resubscribe(sec, c) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sk_log_debug(SK_LOG_CONFIG, "SDS: secret '%s' is warming", ref->name);
	return 0;
}

/* ---- what clusters and listeners name ---------------------------------------------------- */

int sk_secrets_subscribe_context(struct sk_secrets *sec, const struct sk_tls_context_config *cfg, const char *where,
				 char *err, size_t errlen)
{
	char why[1024];
	int rc = 0;

	if (cfg == NULL)
		return 0;
	if (cfg->has_cert_sds)
		rc = sk_secrets_subscribe(sec, &cfg->cert_sds, why, sizeof(why));
	if (rc == 0 && cfg->has_validation_sds)
		rc = sk_secrets_subscribe(sec, &cfg->validation_sds, why, sizeof(why));
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", where, why);
	return rc;
}

int sk_secrets_subscribe_cluster(struct sk_secrets *sec, const struct sk_cluster_config *cc, char *err,
				 size_t errlen)
{
	char where[512];
	int rc;

	snprintf(where, sizeof(where), "cluster '%s': transport_socket", cc->name);
	rc = sk_secrets_subscribe_context(sec, cc->tls_default_ctx, where, err, errlen);
	if (rc < 0)
		return rc;
	snprintf(where, sizeof(where), "cluster '%s': transport_socket_matches (tlsMode istio)", cc->name);
	return sk_secrets_subscribe_context(sec, cc->tls_istio_ctx, where, err, errlen);
}

int sk_secrets_subscribe_listener(struct sk_secrets *sec, const struct sk_listener_config *lc, char *err,
				  size_t errlen)
{
	char where[512];
	int rc = 0;

	for (size_t i = 0; rc == 0 && i <= lc->n_chains; i++) {
		const struct sk_filter_chain_config *ch = i < lc->n_chains ? &lc->chains[i] : lc->default_chain;

		if (ch == NULL)
			continue;
		snprintf(where, sizeof(where), "listener '%s': filter chain '%s': transport_socket", lc->name,
			 ch->name ? ch->name : "");
		rc = sk_secrets_subscribe_context(sec, ch->tls_ctx, where, err, errlen);
	}
	return rc;
}

/* A bootstrap transport socket: translated here (the store has the bootstrap, not the static
 * clusters and listeners built from it), then as any context. */
static int subscribe_socket(struct sk_secrets *sec, const Envoy__Config__Core__V3__TransportSocket *ts,
			    bool upstream, const char *where, char *err, size_t errlen)
{
	struct sk_tls_context_config *cfg = NULL;
	char why[1024];
	int rc;

	if (ts == NULL)
		return 0;
	if (sk_tls_transport_socket_translate(ts, upstream, &cfg, why, sizeof(why)) < 0) {
		/* the cluster or listener translation reports it */
		sk_log_debug(SK_LOG_CONFIG, "SDS: %s: %s", where, why);
		return 0;
	}
	rc = sk_secrets_subscribe_context(sec, cfg, where, err, errlen);
	if (rc == -ENOTSUP) {
		sk_log_warn(SK_LOG_CONFIG, "%s", err);
		rc = 0;
	}
	sk_tls_context_config_free(cfg);
	return rc;
}

int sk_secrets_subscribe_bootstrap(struct sk_secrets *sec, char *err, size_t errlen)
{
	const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = sec->env.bootstrap->static_resources;
	char where[512];
	int rc = 0;

	for (size_t i = 0; sr && rc == 0 && i < sr->n_clusters; i++) {
		const cluster_pb *c = sr->clusters[i];

		snprintf(where, sizeof(where), "static_resources.clusters[%zu].transport_socket", i);
		rc = subscribe_socket(sec, c->transport_socket, true, where, err, errlen);
		for (size_t m = 0; rc == 0 && m < c->n_transport_socket_matches; m++) {
			snprintf(where, sizeof(where), "static_resources.clusters[%zu].transport_socket_matches[%zu]", i,
				 m);
			rc = subscribe_socket(sec, c->transport_socket_matches[m]->transport_socket, true, where, err,
					      errlen);
		}
	}
	for (size_t i = 0; sr && rc == 0 && i < sr->n_listeners; i++) {
		const Envoy__Config__Listener__V3__Listener *l = sr->listeners[i];

		for (size_t f = 0; rc == 0 && f < l->n_filter_chains; f++) {
			snprintf(where, sizeof(where), "static_resources.listeners[%zu].filter_chains[%zu].transport_socket",
				 i, f);
			rc = subscribe_socket(sec, l->filter_chains[f]->transport_socket, false, where, err, errlen);
		}
		if (rc == 0 && l->default_filter_chain) {
			snprintf(where, sizeof(where), "static_resources.listeners[%zu].default_filter_chain.transport_socket",
				 i);
			rc = subscribe_socket(sec, l->default_filter_chain->transport_socket, false, where, err, errlen);
		}
	}
	if (rc == 0 && !sec->started) {
		/* every stream's first request names all its secrets at once */
		sec->started = true;
		for (size_t i = 0; i < sec->n_c; i++)
			sk_ads_start(sec->c[i]->ads);
	}
	return rc;
}

/* ---- life -------------------------------------------------------------------------------- */

/* static_resources.secrets, each translated and checked. */
static int load_static(struct sk_secrets *sec, char *err, size_t errlen)
{
	const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = sec->env.bootstrap->static_resources;
	char why[1024];

	for (size_t i = 0; sr && i < sr->n_secrets; i++) {
		const secret_pb *m = sr->secrets[i];
		size_t len = protobuf_c_message_get_packed_size(&m->base);
		uint8_t *bytes = malloc(len ? len : 1);
		struct sk_tls_secret *t;
		struct sk_secret_version *v = NULL;
		struct entry *e;

		if (bytes == NULL) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		protobuf_c_message_pack(&m->base, bytes);
		t = sk_tls_secret_new(m, why, sizeof(why));
		if (t == NULL) {
			free(bytes);
			snprintf(err, errlen, "static_resources.secrets[%zu]: %s", i, why);
			return -EINVAL;
		}
		if (find(sec, m->name) != NULL) {
			free(bytes);
			sk_tls_secret_free(t);
			snprintf(err, errlen, "static_resources.secrets[%zu]: secret '%s': duplicate name", i, m->name);
			return -EINVAL;
		}
		/* As Envoy, a static secret's PEM matters once something uses it: an invalid one is
		 * an error for whoever subscribes it (sk_secrets_subscribe), not for the bootstrap. */
		if (sk_tls_secret_check(t, why, sizeof(why)) < 0) {
			sk_tls_secret_free(t);
			t = NULL;
			sk_log_warn(SK_LOG_CONFIG, "static_resources.secrets[%zu]: %s", i, why);
		} else if ((v = version_new(t, bytes, len, "")) == NULL) {
			free(bytes);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		free(bytes);
		if ((e = entry_add(sec, m->name, NULL)) == NULL || (v == NULL && (e->invalid = strdup(why)) == NULL)) {
			version_unref(v);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		if (v)
			entry_set(sec, e, v);
	}
	return 0;
}

struct sk_secrets *sk_secrets_new(const struct sk_secrets_env *env, char *err, size_t errlen)
{
	struct sk_secrets *sec = calloc(1, sizeof(*sec));

	if (sec == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sec->env = *env;
	sec->days_until_expiry = sk_stats_gauge(env->stats, "server.days_until_first_cert_expiring", SK_GAUGE_MAIN_ONLY);
	if (load_static(sec, err, errlen) < 0) {
		sk_secrets_free(sec);
		return NULL;
	}
	return sec;
}

void sk_secrets_free(struct sk_secrets *sec)
{
	if (sec == NULL)
		return;
	for (size_t i = 0; i < sec->n_c; i++)
		client_free(sec->c[i]);
	client_free(sec->ads);
	sk_grpc_bridge_destroy(sec->bridge);
	for (size_t i = 0; i < sec->n_e; i++) {
		version_unref(sec->e[i]->cur);
		free(sec->e[i]->name);
		free(sec->e[i]->invalid);
		free(sec->e[i]);
	}
	free(sec->c);
	free(sec->e);
	free(sec->w);
	free(sec);
}

const struct sk_tls_secret *sk_secrets_get(struct sk_secrets *sec, const char *name, uint64_t *generation)
{
	const struct entry *e = find(sec, name);

	if (generation)
		*generation = e ? e->generation : 0;
	return e && e->cur ? e->cur->secret : NULL;
}

struct sk_secret_version *sk_secrets_acquire(struct sk_secrets *sec, const char *name)
{
	const struct entry *e = find(sec, name);

	if (e == NULL || e->cur == NULL)
		return NULL;
	atomic_fetch_add(&e->cur->refs, 1);
	return e->cur;
}

int sk_secrets_watch(struct sk_secrets *sec, sk_secrets_watch_cb cb, void *ctx)
{
	struct watcher *w = realloc(sec->w, (sec->n_w + 1) * sizeof(*w));

	if (w == NULL)
		return -ENOMEM;
	sec->w = w;
	sec->w[sec->n_w].cb = cb;
	sec->w[sec->n_w].ctx = ctx;
	sec->n_w++;
	return 0;
}

void sk_secrets_unwatch(struct sk_secrets *sec, sk_secrets_watch_cb cb, void *ctx)
{
	for (size_t i = 0; i < sec->n_w; i++)
		if (sec->w[i].cb == cb && sec->w[i].ctx == ctx) {
			memmove(&sec->w[i], &sec->w[i + 1], (sec->n_w - i - 1) * sizeof(*sec->w));
			sec->n_w--;
			return;
		}
}

/* ---- /config_dump ------------------------------------------------------------------------ */

#define secret_pb_descriptor envoy__extensions__transport_sockets__tls__v3__secret__descriptor

void sk_secrets_config_dump(const struct sk_secrets *sec, json_t *dump)
{
	json_t *active = json_array(), *warming = json_array();

	for (size_t i = 0; sec && i < sec->n_e; i++) {
		const struct entry *e = sec->e[i];
		json_t *o;

		if (e->client == NULL)
			continue; /* static: the bootstrap's static_secrets */
		o = json_object();
		json_object_set_new(o, "name", json_string(e->name));
		if (e->cur) {
			json_object_set_new(o, "version_info", json_string(e->cur->version_info));
			json_object_set_new(o, "last_updated", sk_pbjson_timestamp(e->cur->last_updated));
			json_object_set_new(o, "secret", sk_pbjson_any_json_bytes(&secret_pb_descriptor, e->cur->bytes,
										      e->cur->len));
		}
		json_array_append_new(e->cur ? active : warming, o);
	}
	if (json_array_size(active))
		json_object_set_new(dump, "dynamic_active_secrets", active);
	else
		json_decref(active);
	if (json_array_size(warming))
		json_object_set_new(dump, "dynamic_warming_secrets", warming);
	else
		json_decref(warming);
}

/* ---- what is still missing ---------------------------------------------------------------- */

static void missing_ctx(struct sk_secrets *sec, const struct sk_tls_context_config *cfg, size_t *missing,
			double *wait, const char **first)
{
	const struct sk_sds_ref *refs[2] = {NULL, NULL};

	if (cfg == NULL)
		return;
	if (cfg->has_cert_sds)
		refs[0] = &cfg->cert_sds;
	if (cfg->has_validation_sds)
		refs[1] = &cfg->validation_sds;
	for (int i = 0; i < 2; i++) {
		if (refs[i] == NULL || sk_secrets_get(sec, refs[i]->name, NULL) != NULL)
			continue;
		if (*missing == 0)
			*first = refs[i]->name;
		(*missing)++;
		if (refs[i]->initial_fetch_timeout <= 0)
			*wait = -1;
		else if (*wait >= 0 && refs[i]->initial_fetch_timeout > *wait)
			*wait = refs[i]->initial_fetch_timeout;
	}
}

size_t sk_secrets_missing_cluster(struct sk_secrets *sec, const struct sk_cluster_config *cc, double *wait,
				  const char **first)
{
	size_t n = 0;

	if (sec == NULL)
		return 0;
	missing_ctx(sec, cc->tls_default_ctx, &n, wait, first);
	missing_ctx(sec, cc->tls_istio_ctx, &n, wait, first);
	return n;
}

size_t sk_secrets_missing_listener(struct sk_secrets *sec, const struct sk_listener_config *lc, double *wait,
				   const char **first)
{
	size_t n = 0;

	if (sec == NULL)
		return 0;
	for (size_t i = 0; i <= lc->n_chains; i++) {
		const struct sk_filter_chain_config *ch = i < lc->n_chains ? &lc->chains[i] : lc->default_chain;

		if (ch != NULL)
			missing_ctx(sec, ch->tls_ctx, &n, wait, first);
	}
	return n;
}
