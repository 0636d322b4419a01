/* ads: the xDS client protocol (SotW and Delta) on one stream. See ads.h.
 *
 * State per type URL outlives streams: the subscription the owner wants, the last accepted
 * version (SotW) or the accepted resources' versions (Delta), the stats. State per stream is
 * reset when a stream ends: the nonce, what the server was told (Delta's subscription diffs
 * are computed against it), whether the node went out. Requests caused by the owner while an
 * update is being applied are deferred until that update's ACK/NACK has been sent, so the
 * server always sees the answer to its response first. */
#include "xds/ads.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "xds/backoff.h"
#include "xds/proto_registry.h"
#include "xds/strmap.h"

typedef Envoy__Config__Core__V3__Node node_pb;
typedef Envoy__Service__Discovery__V3__DiscoveryRequest sotw_req_pb;
typedef Envoy__Service__Discovery__V3__DiscoveryResponse sotw_resp_pb;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest delta_req_pb;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryResponse delta_resp_pb;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry irv_pb;

#define GRPC_STATUS_INVALID_ARGUMENT_CODE 3
#define ERR_MAX 1024

/* Envoy's well-known client features (envoy.lb.*, envoy.lrs.*), sent as Envoy does. */
static const char *const client_features[] = {
	"envoy.lb.does_not_support_overprovisioning",
	"envoy.lrs.supports_send_all_clusters",
};

struct ads_type {
	char *type_url;
	int rank;                    /* sk_xds_type_rank */
	unsigned seq;                /* first-subscription order, among equal ranks */
	bool wildcard;
	struct sk_strmap names;      /* what the owner wants */
	bool dirty;                  /* a subscription request is owed */
	bool requested;              /* a request for this type went out on this stream */
	char *version;               /* SotW: the last accepted version_info */
	char *nonce;                 /* the last nonce of this stream */
	struct sk_strmap versions;   /* Delta: accepted resources -> versions */
	struct sk_strmap sent_names; /* Delta: the subscription the server has (this stream) */
	bool sent_wildcard;
	struct sk_ads_type_stats st;
	char *version_text;
};

struct sk_ads {
	struct ev_loop *loop;
	enum sk_ads_api_type api_type;
	bool node_first_only;
	node_pb *node;               /* ours, with user agent and features */
	char *method, *target, *authority;
	struct sk_grpc_metadata *md;
	size_t n_md;
	const struct sk_grpc_creds *creds;
	size_t max_receive_bytes;
	struct sk_grpc_bridge *bridge;
	struct sk_ads_transport transport;
	bool grpc_transport;
	sk_ads_apply_cb apply;
	void (*on_event)(void *ctx, const struct sk_ads_event *ev);
	void *ctx;

	struct ads_type **types;     /* sorted by (rank, seq) */
	size_t n_types;
	unsigned seq;

	void *stream;                /* transport handle, NULL between streams */
	bool started;
	bool node_sent;              /* on this stream */
	bool connected;
	int in_apply;
	ev_timer retry;
	uint32_t retry_ms;
	struct sk_backoff backoff;
	char *identifier;
};

static int send_request(struct sk_ads *ads, struct ads_type *t, const char *nonce, const char *err);
static void stream_failed(struct sk_ads *ads, int status, const char *details);

/* ---------------------------------------------------------------- small helpers */

static int set_str(char **slot, const char *v)
{
	char *c = strdup(v ? v : "");

	if (c == NULL)
		return -ENOMEM;
	free(*slot);
	*slot = c;
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void emit(struct sk_ads *ads, enum sk_ads_event_kind kind, int status, const char *details)
{
	struct sk_ads_event ev = {.kind = kind, .grpc_status = status, .details = details ? details : "",
				  .retry_ms = ads->retry_ms};

	if (ads->on_event)
		ads->on_event(ads->ctx, &ev);
}

static bool is_delta(const struct sk_ads *ads)
{
	return ads->api_type == SK_ADS_DELTA;
}

/* ---------------------------------------------------------------- types */

static struct ads_type *find_type(const struct sk_ads *ads, const char *type_url)
{
	size_t i;

	for (i = 0; i < ads->n_types; i++)
		if (strcmp(ads->types[i]->type_url, type_url) == 0)
			return ads->types[i];
	return NULL;
}

static int type_cmp(const void *a, const void *b)
{
	const struct ads_type *x = *(const struct ads_type *const *)a, *y = *(const struct ads_type *const *)b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* New state for a type URL, kept in Envoy's order. */
static struct ads_type *add_type(struct sk_ads *ads, const char *type_url)
{
	struct ads_type **grown, *t = calloc(1, sizeof(*t));

	if (t == NULL || (t->type_url = strdup(type_url)) == NULL || set_str(&t->version_text, "") < 0)
		goto fail;
	grown = realloc(ads->types, (ads->n_types + 1) * sizeof(*grown));
	if (grown == NULL)
		goto fail;
	ads->types = grown;
	t->rank = sk_xds_type_rank(type_url);
	t->seq = ads->seq++;
	t->st.version_text = t->version_text;
	ads->types[ads->n_types++] = t;
	qsort(ads->types, ads->n_types, sizeof(*ads->types), type_cmp);
	return t;
fail:
	if (t) {
		free(t->type_url);
		free(t->version_text);
	}
	free(t);
	return NULL;
}

static void free_type(struct ads_type *t)
{
	sk_strmap_clear(&t->names);
	sk_strmap_clear(&t->versions);
	sk_strmap_clear(&t->sent_names);
	free(t->type_url);
	free(t->version);
	free(t->nonce);
	free(t->version_text);
	free(t);
}

/* A type is worth a request on a new stream when the owner wants something of it. */
static bool type_wanted(const struct ads_type *t)
{
	return t->wildcard || t->names.n > 0;
}

/* The state a stream had with the server goes with the stream. */
static void reset_stream_state(struct ads_type *t)
{
	t->requested = false;
	free(t->nonce);
	t->nonce = NULL;
	sk_strmap_clear(&t->sent_names);
	t->sent_wildcard = false;
	t->dirty = type_wanted(t);
}

/* ---------------------------------------------------------------- node */

/* A copy of the bootstrap's node with what Envoy adds: user agent "envoy", its build version
 * and the client features, unless the bootstrap already says otherwise. */
static node_pb *prepare_node(const node_pb *in)
{
	node_pb n = ENVOY__CONFIG__CORE__V3__NODE__INIT, *out;
	Envoy__Config__Core__V3__BuildVersion bv = ENVOY__CONFIG__CORE__V3__BUILD_VERSION__INIT;
	Envoy__Type__V3__SemanticVersion sv = ENVOY__TYPE__V3__SEMANTIC_VERSION__INIT;
	size_t nf = sizeof(client_features) / sizeof(client_features[0]), i, j, len;
	char **features;
	uint8_t *buf;

	if (in)
		n = *in;
	features = malloc((n.n_client_features + nf) * sizeof(*features));
	if (features == NULL)
		return NULL;
	if (n.n_client_features > 0)
		memcpy(features, n.client_features, n.n_client_features * sizeof(*features));
	for (i = 0, len = n.n_client_features; i < nf; i++) {
		for (j = 0; j < n.n_client_features && strcmp(n.client_features[j], client_features[i]) != 0; j++)
			;
		if (j == n.n_client_features)
			features[len++] = (char *)client_features[i];
	}
	n.client_features = features;
	n.n_client_features = len;
	if (n.user_agent_name == NULL || n.user_agent_name[0] == '\0')
		n.user_agent_name = "envoy";
	if (n.user_agent_version_type_case == ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE__NOT_SET) {
		sv.major_number = SK_ADS_ENVOY_MAJOR;
		sv.minor_number = SK_ADS_ENVOY_MINOR;
		sv.patch = SK_ADS_ENVOY_PATCH;
		bv.version = &sv;
		n.user_agent_version_type_case = ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE_USER_AGENT_BUILD_VERSION;
		n.user_agent_build_version = &bv;
	}
	len = protobuf_c_message_get_packed_size(&n.base);
	buf = malloc(len ? len : 1);
	out = NULL;
	if (buf) {
		protobuf_c_message_pack(&n.base, buf);
		out = envoy__config__core__v3__node__unpack(NULL, len, buf);
	}
	free(buf);
	free(features);
	return out;
}

/* ---------------------------------------------------------------- requests */

/* Packs and hands one request to the transport. */
static int send_packed(struct sk_ads *ads, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	int rc;

	if (buf == NULL)
		return -ENOMEM;
	protobuf_c_message_pack(m, buf);
	rc = ads->transport.send(ads->transport.tctx, ads->stream, buf, len);
	free(buf);
	return rc;
}

/* The node for the next request: always, or on the stream's first only. */
static node_pb *node_for_request(struct sk_ads *ads)
{
	bool with = !ads->node_sent || !ads->node_first_only;

	ads->node_sent = true;
	return with ? ads->node : NULL;
}

/* SotW: the whole subscription, the last accepted version and the latest nonce, every time. */
static int send_sotw(struct sk_ads *ads, const char *type_url, struct ads_type *t, const char *nonce,
		     const char *err)
{
	sotw_req_pb req = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	const char **names = NULL, **all = NULL;
	size_t n = 0;
	int rc;

	req.type_url = (char *)type_url;
	req.version_info = t && t->version ? t->version : "";
	req.response_nonce = (char *)(nonce ? nonce : t && t->nonce ? t->nonce : "");
	if (t) {
		names = sk_strmap_sorted_keys(&t->names, &n);
		if (t->wildcard && n > 0) { /* names and everything: the explicit wildcard "*" */
			all = malloc((n + 1) * sizeof(*all));
			if (all == NULL) {
				free(names);
				return -ENOMEM;
			}
			all[0] = "*";
			memcpy(all + 1, names, n * sizeof(*names));
			free(names);
			names = all;
			n++;
		}
	}
	req.resource_names = (char **)names;
	req.n_resource_names = n;
	if (err) {
		st.code = GRPC_STATUS_INVALID_ARGUMENT_CODE;
		st.message = (char *)err;
		req.error_detail = &st;
	}
	req.node = node_for_request(ads);
	rc = send_packed(ads, &req.base);
	free(names);
	return rc;
}

/* Delta: the names to (un)subscribe since the server last heard from us. */
struct delta_diff {
	const char **sub, **unsub;
	size_t n_sub, n_unsub;
};

/* Fills d from the wanted names vs. those the server has on this stream. */
static int diff_names(struct ads_type *t, struct delta_diff *d)
{
	const struct sk_strmap_entry *e;
	size_t i = 0, cap = t->names.n + t->sent_names.n + 2;

	d->sub = malloc(cap * sizeof(*d->sub));
	d->unsub = malloc(cap * sizeof(*d->unsub));
	d->n_sub = d->n_unsub = 0;
	if (d->sub == NULL || d->unsub == NULL)
		return -ENOMEM;
	while ((e = sk_strmap_next(&t->names, &i)) != NULL)
		if (!sk_strmap_has(&t->sent_names, e->key))
			d->sub[d->n_sub++] = e->key;
	i = 0;
	while ((e = sk_strmap_next(&t->sent_names, &i)) != NULL)
		if (!sk_strmap_has(&t->names, e->key))
			d->unsub[d->n_unsub++] = e->key;
	/* Wildcard alone on a first request is the legacy (implicit) wildcard: no names. With
	 * names, or added later, it is the explicit "*". */
	if (t->wildcard && !t->sent_wildcard && (t->requested || t->names.n > 0))
		d->sub[d->n_sub++] = "*";
	if (!t->wildcard && t->sent_wildcard)
		d->unsub[d->n_unsub++] = "*";
	return 0;
}

/* initial_resource_versions: what we hold, so that a new stream resends only changes. */
static int initial_versions(struct ads_type *t, irv_pb ***out, size_t *n)
{
	const struct sk_strmap_entry *e;
	irv_pb **arr;
	size_t i = 0, k = 0;

	*out = NULL;
	*n = 0;
	if (t->versions.n == 0)
		return 0;
	arr = calloc(t->versions.n, sizeof(*arr) + sizeof(irv_pb));
	if (arr == NULL)
		return -ENOMEM;
	while ((e = sk_strmap_next(&t->versions, &i)) != NULL) {
		irv_pb *entry = (irv_pb *)(arr + t->versions.n) + k;

		envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(entry);
		entry->key = e->key;
		entry->value = e->value ? e->value : "";
		arr[k++] = entry;
	}
	*out = arr;
	*n = k;
	return 0;
}

/* The server now knows the subscription as it is. */
static int commit_sent(struct ads_type *t)
{
	t->sent_wildcard = t->wildcard;
	return sk_strmap_copy(&t->sent_names, &t->names);
}

/* Delta: subscription changes (all of it on the stream's first request for the type, with
 * initial_resource_versions), plus the ACK/NACK of `nonce` when given. Nothing to say: no
 * message. */
static int send_delta(struct sk_ads *ads, const char *type_url, struct ads_type *t, const char *nonce,
		      const char *err)
{
	delta_req_pb req = ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	struct delta_diff d = {0};
	irv_pb **irv = NULL;
	bool first = t != NULL && !t->requested;
	int rc = 0;

	req.type_url = (char *)type_url;
	req.response_nonce = (char *)(nonce ? nonce : "");
	if (t != NULL && ((rc = diff_names(t, &d)) < 0 ||
			  (first && (rc = initial_versions(t, &irv, &req.n_initial_resource_versions)) < 0)))
		goto out;
	if (!first && nonce == NULL && d.n_sub == 0 && d.n_unsub == 0)
		goto out;
	req.resource_names_subscribe = (char **)d.sub;
	req.n_resource_names_subscribe = d.n_sub;
	req.resource_names_unsubscribe = (char **)d.unsub;
	req.n_resource_names_unsubscribe = d.n_unsub;
	req.initial_resource_versions = irv;
	if (err) {
		st.code = GRPC_STATUS_INVALID_ARGUMENT_CODE;
		st.message = (char *)err;
		req.error_detail = &st;
	}
	req.node = node_for_request(ads);
	rc = send_packed(ads, &req.base);
	if (rc == 0 && t != NULL)
		rc = commit_sent(t);
out:
	free(d.sub);
	free(d.unsub);
	free(irv);
	return rc;
}

/* One request for type t (t may be NULL for a type we hold no state for: a bare NACK). */
static int send_request(struct sk_ads *ads, struct ads_type *t, const char *nonce, const char *err)
{
	const char *url = t ? t->type_url : NULL;
	int rc;

	if (ads->stream == NULL)
		return 0; /* the next stream sends the whole state */
	if (t) {
		if (!t->requested && !type_wanted(t) && nonce == NULL)
			return 0; /* never asked for, nothing to withdraw */
		t->dirty = false;
	}
	rc = is_delta(ads) ? send_delta(ads, url, t, nonce, err) : send_sotw(ads, url, t, nonce, err);
	if (t)
		t->requested = true;
	return rc;
}

/* A NACK for a response we cannot attach to any type state. */
static int send_bare_nack(struct sk_ads *ads, const char *type_url, const char *nonce, const char *err)
{
	if (ads->stream == NULL)
		return 0;
	return is_delta(ads) ? send_delta(ads, type_url, NULL, nonce, err) : send_sotw(ads, type_url, NULL, nonce, err);
}

/* Sends what the owner's subscription changes owe, in Envoy's order (CDS, EDS, LDS, RDS, SDS). */
static void flush(struct sk_ads *ads)
{
	size_t i;

	if (ads->in_apply || ads->stream == NULL)
		return;
	for (i = 0; i < ads->n_types && ads->stream; i++)
		if (ads->types[i]->dirty)
			send_request(ads, ads->types[i], NULL, NULL);
}

/* ---------------------------------------------------------------- responses */

/* Decoded resources of one response, freed together. */
struct batch {
	struct sk_ads_resource *res;
	size_t n;
	const char **removed;
	size_t n_removed;
};

static void batch_free(struct batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (b->res[i].msg)
			protobuf_c_message_free_unpacked(b->res[i].msg, NULL);
	free(b->res);
	free(b->removed);
	memset(b, 0, sizeof(*b));
}

/* Unpacks one Any of the response's type into r. Returns 0 or -EINVAL with err. */
static int decode_one(const ProtobufCMessageDescriptor *desc, const char *type_url, const Google__Protobuf__Any *any,
		      size_t i, struct sk_ads_resource *r, char *err, size_t errlen)
{
	if (any == NULL) {
		snprintf(err, errlen, "resources[%zu]: empty", i);
		return -EINVAL;
	}
	if (strcmp(any->type_url, type_url) != 0) {
		snprintf(err, errlen, "resources[%zu]: type '%s' does not match the response's type '%s'", i,
			 any->type_url, type_url);
		return -EINVAL;
	}
	r->bytes = any->value.data;
	r->len = any->value.len;
	r->msg = protobuf_c_message_unpack(desc, NULL, any->value.len, any->value.data);
	if (r->msg == NULL) {
		snprintf(err, errlen, "resources[%zu]%s%s: cannot decode %s", i, r->name ? " " : "",
			 r->name ? r->name : "", desc->name);
		return -EINVAL;
	}
	if (r->name == NULL && (r->name = sk_xds_resource_name(r->msg)) == NULL) {
		snprintf(err, errlen, "resources[%zu]: %s without a name", i, desc->name);
		return -EINVAL;
	}
	return 0;
}

/* Accepted: remember the version, count it, ACK. */
static void accept_update(struct sk_ads *ads, struct ads_type *t, const struct sk_ads_update *u,
			  const struct batch *b)
{
	size_t i;

	if (is_delta(ads)) {
		for (i = 0; i < b->n; i++)
			sk_strmap_put(&t->versions, b->res[i].name, b->res[i].version);
		for (i = 0; i < b->n_removed; i++)
			sk_strmap_del(&t->versions, b->removed[i]);
	} else {
		set_str(&t->version, u->version);
		if (b->n == 0)
			t->st.update_empty++;
	}
	set_str(&t->version_text, u->version);
	t->st.version_text = t->version_text;
	t->st.update_success++;
	t->st.update_time = now_ms();
	send_request(ads, t, u->nonce, NULL);
}

/* Decoded: hand to the owner, then ACK or NACK. err holds a decode failure, if any. */
static void finish_update(struct sk_ads *ads, struct ads_type *t, struct sk_ads_update *u, struct batch *b,
			  char *err, bool decoded)
{
	int rc = -1;

	t->st.update_attempt++;
	if (decoded) {
		err[0] = '\0';
		u->resources = b->res;
		u->n_resources = b->n;
		u->removed = b->removed;
		u->n_removed = b->n_removed;
		ads->in_apply++;
		rc = ads->apply(ads->ctx, u, err, ERR_MAX);
		ads->in_apply--;
		if (rc != 0 && err[0] == '\0')
			snprintf(err, ERR_MAX, "%s update rejected", u->type_url);
	}
	if (rc == 0) {
		accept_update(ads, t, u, b);
	} else {
		t->st.update_rejected++;
		emit(ads, SK_ADS_EV_BAD_MESSAGE, 0, err);
		send_request(ads, t, u->nonce, err);
	}
}

/* The type state of a response, or NULL after NACKing it (a type URL outside the registry)
 * or ignoring it (a type we do not subscribe to, as Envoy ignores it). */
static struct ads_type *response_type(struct sk_ads *ads, const char *type_url, const char *nonce)
{
	struct ads_type *t = find_type(ads, type_url);
	char err[ERR_MAX];

	if (sk_proto_registry_find_url(type_url) == NULL) {
		snprintf(err, sizeof(err), "unknown type URL '%s'", type_url);
		emit(ads, SK_ADS_EV_BAD_MESSAGE, 0, err);
		send_bare_nack(ads, type_url, nonce, err);
		return NULL;
	}
	if (t != NULL && (t->requested || type_wanted(t)))
		return t;
	snprintf(err, sizeof(err), "ignoring a response of type '%s': not subscribed", type_url);
	emit(ads, SK_ADS_EV_BAD_MESSAGE, 0, err);
	return NULL;
}

static void remember_nonce(struct ads_type *t, const char *nonce)
{
	set_str(&t->nonce, nonce);
}

/* SotW: the whole state of a type; decode every resource, then apply and ACK/NACK. */
static void on_sotw_response(struct sk_ads *ads, sotw_resp_pb *resp)
{
	struct sk_ads_update u = {.type_url = resp->type_url, .delta = false, .version = resp->version_info,
				  .nonce = resp->nonce};
	const ProtobufCMessageDescriptor *desc = sk_proto_registry_find_url(resp->type_url);
	struct ads_type *t = response_type(ads, resp->type_url, resp->nonce);
	struct batch b = {0};
	char err[ERR_MAX] = "";
	bool ok = true;
	size_t i;

	if (t == NULL)
		return;
	remember_nonce(t, resp->nonce);
	if (resp->n_resources > 0 && (b.res = calloc(resp->n_resources, sizeof(*b.res))) == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		ok = false;
	}
	for (i = 0; ok && i < resp->n_resources; i++) {
		b.res[i].version = resp->version_info;
		b.n = i + 1;
		ok = decode_one(desc, resp->type_url, resp->resources[i], i, &b.res[i], err, sizeof(err)) == 0;
	}
	finish_update(ads, t, &u, &b, err, ok);
	batch_free(&b);
}

/* Delta resources: name, version and body; a resource without a body (a TTL heartbeat) is
 * left out; aliases are not used. */
static bool decode_delta(const ProtobufCMessageDescriptor *desc, delta_resp_pb *resp, struct batch *b, char *err)
{
	size_t i;

	if (resp->n_resources > 0 && (b->res = calloc(resp->n_resources, sizeof(*b->res))) == NULL)
		return snprintf(err, ERR_MAX, "out of memory"), false;
	for (i = 0; i < resp->n_resources; i++) {
		Envoy__Service__Discovery__V3__Resource *r = resp->resources[i];
		struct sk_ads_resource *out = &b->res[b->n];

		if (r->resource == NULL)
			continue;
		out->name = r->name[0] ? r->name : r->resource_name ? r->resource_name->name : NULL;
		if (out->name != NULL && out->name[0] == '\0')
			out->name = NULL;
		out->version = r->version;
		b->n++;
		if (decode_one(desc, resp->type_url, r->resource, i, out, err, ERR_MAX) < 0)
			return false;
	}
	b->removed = malloc((resp->n_removed_resources + resp->n_removed_resource_names + 1) * sizeof(*b->removed));
	if (b->removed == NULL)
		return snprintf(err, ERR_MAX, "out of memory"), false;
	for (i = 0; i < resp->n_removed_resources; i++)
		b->removed[b->n_removed++] = resp->removed_resources[i];
	for (i = 0; i < resp->n_removed_resource_names; i++)
		if (resp->removed_resource_names[i]->name[0])
			b->removed[b->n_removed++] = resp->removed_resource_names[i]->name;
	return true;
}

/* Delta: changed resources and removed names; decode, apply, ACK/NACK. */
static void on_delta_response(struct sk_ads *ads, delta_resp_pb *resp)
{
	struct sk_ads_update u = {.type_url = resp->type_url, .delta = true, .version = resp->system_version_info,
				  .nonce = resp->nonce};
	const ProtobufCMessageDescriptor *desc = sk_proto_registry_find_url(resp->type_url);
	struct ads_type *t = response_type(ads, resp->type_url, resp->nonce);
	struct batch b = {0};
	char err[ERR_MAX] = "";
	bool ok;

	if (t == NULL)
		return;
	remember_nonce(t, resp->nonce);
	ok = decode_delta(desc, resp, &b, err);
	finish_update(ads, t, &u, &b, err, ok);
	batch_free(&b);
}

/* A message that is not a response at all: NACK it if its type URL and nonce can be read
 * from the wire, else it is a protocol error and the stream starts over. */
static void on_garbage(struct sk_ads *ads, const uint8_t *data, size_t len)
{
	const uint8_t *url, *nonce;
	size_t url_len, nonce_len;
	char type_url[512], nonce_s[256], err[ERR_MAX];
	struct ads_type *t;

	snprintf(err, sizeof(err), "cannot decode %s", is_delta(ads) ? "DeltaDiscoveryResponse" : "DiscoveryResponse");
	if (sk_xds_wire_find_bytes(data, len, 4, &url, &url_len) < 0 || url_len == 0 || url_len >= sizeof(type_url) ||
	    memchr(url, 0, url_len) != NULL) {
		emit(ads, SK_ADS_EV_BAD_MESSAGE, 0, err);
		stream_failed(ads, 13 /* INTERNAL */, err);
		return;
	}
	memcpy(type_url, url, url_len);
	type_url[url_len] = '\0';
	nonce_s[0] = '\0';
	if (sk_xds_wire_find_bytes(data, len, 5, &nonce, &nonce_len) == 0 && nonce_len < sizeof(nonce_s) &&
	    memchr(nonce, 0, nonce_len) == NULL) {
		memcpy(nonce_s, nonce, nonce_len);
		nonce_s[nonce_len] = '\0';
	}
	emit(ads, SK_ADS_EV_BAD_MESSAGE, 0, err);
	t = find_type(ads, type_url);
	if (t == NULL) {
		send_bare_nack(ads, type_url, nonce_s, err);
		return;
	}
	remember_nonce(t, nonce_s);
	t->st.update_attempt++;
	t->st.update_rejected++;
	send_request(ads, t, nonce_s, err);
}

/* Identifies the control plane, for control_plane.identifier. */
static void note_identifier(struct sk_ads *ads, const Envoy__Config__Core__V3__ControlPlane *cp)
{
	if (cp != NULL && cp->identifier[0] != '\0')
		set_str(&ads->identifier, cp->identifier);
}

void sk_ads_transport_message(struct sk_ads *ads, const uint8_t *data, size_t len)
{
	if (ads->stream == NULL)
		return;
	sk_backoff_reset(&ads->backoff); /* a stream that delivers is a good one, as in Envoy */
	if (is_delta(ads)) {
		delta_resp_pb *resp = envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len, data);

		if (resp == NULL) {
			on_garbage(ads, data, len);
		} else {
			note_identifier(ads, resp->control_plane);
			on_delta_response(ads, resp);
			envoy__service__discovery__v3__delta_discovery_response__free_unpacked(resp, NULL);
		}
	} else {
		sotw_resp_pb *resp = envoy__service__discovery__v3__discovery_response__unpack(NULL, len, data);

		if (resp == NULL) {
			on_garbage(ads, data, len);
		} else {
			note_identifier(ads, resp->control_plane);
			on_sotw_response(ads, resp);
			envoy__service__discovery__v3__discovery_response__free_unpacked(resp, NULL);
		}
	}
	flush(ads);
}

/* ---------------------------------------------------------------- the stream */

static void open_stream(struct sk_ads *ads);

/* Arms the retry timer with the next back-off delay. */
static void schedule_retry(struct sk_ads *ads)
{
	ads->retry_ms = sk_backoff_next_ms(&ads->backoff);
	ev_timer_stop(ads->loop, &ads->retry);
	ev_timer_set(&ads->retry, ads->retry_ms / 1000.0, 0.);
	ev_timer_start(ads->loop, &ads->retry);
}

/* The back-off is over: try a new stream. */
static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sk_ads *ads = (struct sk_ads *)((char *)w - offsetof(struct sk_ads, retry));

	(void)loop;
	(void)revents;
	ads->retry_ms = 0;
	open_stream(ads);
}

/* A new stream: the node and every wanted type again, in order (Delta: with versions). */
static void open_stream(struct sk_ads *ads)
{
	size_t i;

	ads->node_sent = false;
	for (i = 0; i < ads->n_types; i++)
		reset_stream_state(ads->types[i]);
	ads->stream = ads->transport.open(ads->transport.tctx, ads, ads->method);
	if (ads->stream == NULL) {
		schedule_retry(ads);
		emit(ads, SK_ADS_EV_DISCONNECTED, 14 /* UNAVAILABLE */, "cannot open the stream");
		return;
	}
	flush(ads);
}

/* The stream is gone (or must go): keep every accepted config, count the failure for each
 * subscription as Envoy does, and retry after back-off. */
static void stream_failed(struct sk_ads *ads, int status, const char *details)
{
	size_t i;

	if (ads->stream == NULL)
		return;
	ads->transport.close(ads->transport.tctx, ads->stream);
	ads->stream = NULL;
	ads->connected = false;
	for (i = 0; i < ads->n_types; i++) {
		struct ads_type *t = ads->types[i];

		if (type_wanted(t)) {
			t->st.update_attempt++;
			t->st.update_failure++;
		}
		reset_stream_state(t);
	}
	schedule_retry(ads);
	emit(ads, SK_ADS_EV_DISCONNECTED, status, details);
}

void sk_ads_transport_closed(struct sk_ads *ads, int grpc_status, const char *details)
{
	stream_failed(ads, grpc_status, details);
}

void sk_ads_transport_ready(struct sk_ads *ads)
{
	if (ads->stream == NULL || ads->connected)
		return;
	ads->connected = true;
	emit(ads, SK_ADS_EV_CONNECTED, 0, "");
}

/* ---------------------------------------------------------------- the gRPC transport */

static void grpc_on_ready(void *ctx)
{
	sk_ads_transport_ready(ctx);
}

static void grpc_on_message(void *ctx, const uint8_t *data, size_t len)
{
	sk_ads_transport_message(ctx, data, len);
}

static void grpc_on_close(void *ctx, grpc_status_code status, const char *details)
{
	sk_ads_transport_closed(ctx, (int)status, details);
}

static void *grpc_open(void *tctx, struct sk_ads *ads, const char *method)
{
	struct sk_grpc_stream_opts o = {
		.target = ads->target,
		.creds = ads->creds,
		.method = method,
		.authority = ads->authority,
		.metadata = ads->md,
		.n_metadata = ads->n_md,
		.max_receive_bytes = ads->max_receive_bytes,
		.cb = {.on_ready = grpc_on_ready, .on_message = grpc_on_message, .on_close = grpc_on_close},
		.ctx = ads,
	};
	char err[256];
	void *s;

	(void)tctx;
	s = sk_grpc_stream_open(ads->bridge, &o, err, sizeof(err));
	if (s == NULL)
		emit(ads, SK_ADS_EV_BAD_MESSAGE, 0, err);
	return s;
}

static int grpc_send(void *tctx, void *stream, const uint8_t *data, size_t len)
{
	(void)tctx;
	return sk_grpc_stream_send(stream, data, len);
}

static void grpc_close(void *tctx, void *stream)
{
	(void)tctx;
	sk_grpc_stream_close(stream);
}

/* ---------------------------------------------------------------- public */

static int copy_transport_config(struct sk_ads *ads, const struct sk_ads_config *cfg, char *err, size_t errlen)
{
	size_t i;

	if (cfg->transport) {
		ads->transport = *cfg->transport;
		return 0;
	}
	if (cfg->bridge == NULL || cfg->target == NULL || cfg->target[0] == '\0') {
		snprintf(err, errlen, "ads: a gRPC bridge and a target are needed");
		return -EINVAL;
	}
	ads->grpc_transport = true;
	ads->transport = (struct sk_ads_transport){.open = grpc_open, .send = grpc_send, .close = grpc_close};
	ads->bridge = cfg->bridge;
	ads->creds = cfg->creds;
	ads->max_receive_bytes = cfg->max_receive_bytes;
	if ((ads->target = strdup(cfg->target)) == NULL ||
	    (cfg->authority && (ads->authority = strdup(cfg->authority)) == NULL))
		return -ENOMEM;
	if (cfg->n_metadata && (ads->md = calloc(cfg->n_metadata, sizeof(*ads->md))) == NULL)
		return -ENOMEM;
	for (i = 0; i < cfg->n_metadata; i++) {
		ads->md[i].key = strdup(cfg->metadata[i].key);
		ads->md[i].value = strdup(cfg->metadata[i].value ? cfg->metadata[i].value : "");
		ads->n_md = i + 1;
		if (ads->md[i].key == NULL || ads->md[i].value == NULL)
			return -ENOMEM;
	}
	return 0;
}

struct sk_ads *sk_ads_create(struct ev_loop *loop, const struct sk_ads_config *cfg, char *err, size_t errlen)
{
	struct sk_ads *ads = calloc(1, sizeof(*ads));
	const char *method = cfg->method ? cfg->method
			     : cfg->api_type == SK_ADS_DELTA ? SK_ADS_METHOD_DELTA : SK_ADS_METHOD_SOTW;

	err[0] = '\0';
	if (ads == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ads->loop = loop;
	ads->api_type = cfg->api_type;
	ads->node_first_only = cfg->set_node_on_first_message_only;
	ads->apply = cfg->apply;
	ads->on_event = cfg->on_event;
	ads->ctx = cfg->ctx;
	ev_init(&ads->retry, on_retry);
	sk_backoff_init(&ads->backoff, cfg->backoff_base_ms, cfg->backoff_max_ms, cfg->backoff_seed);
	if (cfg->apply == NULL) {
		snprintf(err, errlen, "ads: an apply callback is needed");
		goto fail;
	}
	if (copy_transport_config(ads, cfg, err, errlen) < 0 || (ads->method = strdup(method)) == NULL ||
	    (ads->node = prepare_node(cfg->node)) == NULL || set_str(&ads->identifier, "") < 0) {
		if (err[0] == '\0')
			snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return ads;
fail:
	sk_ads_destroy(ads);
	return NULL;
}

int sk_ads_start(struct sk_ads *ads)
{
	if (ads->started)
		return 0;
	ads->started = true;
	open_stream(ads);
	return 0;
}

void sk_ads_destroy(struct sk_ads *ads)
{
	size_t i;

	if (ads == NULL)
		return;
	if (ads->stream)
		ads->transport.close(ads->transport.tctx, ads->stream);
	ev_timer_stop(ads->loop, &ads->retry);
	for (i = 0; i < ads->n_types; i++)
		free_type(ads->types[i]);
	free(ads->types);
	if (ads->node)
		envoy__config__core__v3__node__free_unpacked(ads->node, NULL);
	for (i = 0; i < ads->n_md; i++) {
		free((char *)ads->md[i].key);
		free((char *)ads->md[i].value);
	}
	free(ads->md);
	free(ads->method);
	free(ads->target);
	free(ads->authority);
	free(ads->identifier);
	free(ads);
}

/* Replaces the wanted names; Delta forgets the versions of names given up (as Envoy does). */
static int set_names(struct sk_ads *ads, struct ads_type *t, const char *const *names, size_t n, bool *changed)
{
	struct sk_strmap next = {0};
	const struct sk_strmap_entry *e;
	size_t i;

	for (i = 0; i < n; i++) {
		if (sk_strmap_put(&next, names[i], NULL) < 0) {
			sk_strmap_clear(&next);
			return -ENOMEM;
		}
	}
	*changed = next.n != t->names.n;
	for (i = 0; !*changed && (e = sk_strmap_next(&next, &i)) != NULL;)
		*changed = !sk_strmap_has(&t->names, e->key);
	if (is_delta(ads) && !t->wildcard) {
		for (i = 0; (e = sk_strmap_next(&t->names, &i)) != NULL;)
			if (!sk_strmap_has(&next, e->key))
				sk_strmap_del(&t->versions, e->key);
	}
	sk_strmap_clear(&t->names);
	t->names = next;
	return 0;
}

int sk_ads_subscribe(struct sk_ads *ads, const char *type_url, const char *const *names, size_t n, bool wildcard)
{
	struct ads_type *t = find_type(ads, type_url);
	bool changed;
	int rc;

	if (sk_proto_registry_find_url(type_url) == NULL)
		return -EINVAL;
	if (t == NULL && (t = add_type(ads, type_url)) == NULL)
		return -ENOMEM;
	if ((rc = set_names(ads, t, names, n, &changed)) < 0)
		return rc;
	if (wildcard != t->wildcard) {
		changed = true;
		t->wildcard = wildcard;
	}
	if (!changed && t->requested)
		return 0;
	if (!t->requested && !type_wanted(t))
		return 0;
	t->dirty = true;
	flush(ads);
	return 0;
}

int sk_ads_type_stats(const struct sk_ads *ads, const char *type_url, struct sk_ads_type_stats *out)
{
	const struct ads_type *t = find_type(ads, type_url);

	if (t == NULL)
		return -ENOENT;
	*out = t->st;
	out->version_text = t->version_text;
	return 0;
}

void sk_ads_stats(const struct sk_ads *ads, struct sk_ads_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->connected_state = ads->connected;
	out->rate_limit_enforced = 0;
	out->pending_requests = ads->grpc_transport && ads->stream ? sk_grpc_stream_pending(ads->stream) : 0;
	out->identifier = ads->identifier;
}

const char *sk_ads_resource_version(const struct sk_ads *ads, const char *type_url, const char *name)
{
	const struct ads_type *t = find_type(ads, type_url);
	const struct sk_strmap_entry *e;

	if (t == NULL || !is_delta(ads) || (e = sk_strmap_find(&t->versions, name)) == NULL)
		return NULL;
	return e->value ? e->value : "";
}

uint32_t sk_ads_retry_ms(const struct sk_ads *ads)
{
	return ev_is_active(&ads->retry) ? ads->retry_ms : 0;
}
