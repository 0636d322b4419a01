/* ads_test: the ADS client's protocol state machine (xds/ads.c) over a fake transport that
 * records every request: SotW and Delta initial requests in Envoy's order, the node rule,
 * ACK / NACK contents, undecodable and unknown responses, subscription changes (deferred
 * while an update is applied), Delta versions and initial_resource_versions across a
 * reconnect, back-off; plus xds/backoff.c, xds/resource.c and the bootstrap reading. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "skiff_protos.h"
#include "test.h"
#include "xds/ads.h"
#include "xds/backoff.h"
#include "xds/resource.h"

typedef Envoy__Service__Discovery__V3__DiscoveryRequest sotw_req_pb;
typedef Envoy__Service__Discovery__V3__DeltaDiscoveryRequest delta_req_pb;

/* ---------------------------------------------------------------- the fake transport */

#define MAX_SENT 64

struct fake {
	int opens, closes;
	bool open_fails;
	int token;
	const char *method;
	uint8_t *sent[MAX_SENT];
	size_t sent_len[MAX_SENT];
	size_t n_sent;
};

static void *f_open(void *tctx, struct sk_ads *ads, const char *method)
{
	struct fake *f = tctx;

	(void)ads;
	f->opens++;
	f->method = method;
	return f->open_fails ? NULL : &f->token;
}

static int f_send(void *tctx, void *stream, const uint8_t *data, size_t len)
{
	struct fake *f = tctx;

	CHECK(stream == &f->token);
	if (f->n_sent == MAX_SENT)
		return -ENOBUFS;
	f->sent[f->n_sent] = malloc(len ? len : 1);
	memcpy(f->sent[f->n_sent], data, len);
	f->sent_len[f->n_sent++] = len;
	return 0;
}

static void f_close(void *tctx, void *stream)
{
	struct fake *f = tctx;

	(void)stream;
	f->closes++;
}

static void fake_clear(struct fake *f)
{
	size_t i;

	for (i = 0; i < f->n_sent; i++)
		free(f->sent[i]);
	f->n_sent = 0;
}

static sotw_req_pb *sotw_sent(struct fake *f, size_t i)
{
	return i < f->n_sent ? envoy__service__discovery__v3__discovery_request__unpack(NULL, f->sent_len[i], f->sent[i])
			     : NULL;
}

static delta_req_pb *delta_sent(struct fake *f, size_t i)
{
	return i < f->n_sent
		       ? envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, f->sent_len[i], f->sent[i])
		       : NULL;
}

/* ---------------------------------------------------------------- the owner */

struct owner {
	int applies;
	char last_type[256];
	char last_version[64];
	char names[512];            /* resources of the last update, comma-joined */
	char removed[512];
	const char *reject;         /* reject updates holding this name */
	struct sk_ads *ads;
	bool subscribe_eds_in_apply;
	int events[3];
};

static void join_into(char *buf, size_t len, const char *name)
{
	size_t used = strlen(buf);

	snprintf(buf + used, len - used, "%s%s", used ? "," : "", name);
}

static int apply(void *ctx, struct sk_ads_update *u, char *err, size_t errlen)
{
	struct owner *o = ctx;
	size_t i;

	o->applies++;
	snprintf(o->last_type, sizeof(o->last_type), "%s", u->type_url);
	snprintf(o->last_version, sizeof(o->last_version), "%s", u->version);
	o->names[0] = o->removed[0] = '\0';
	for (i = 0; i < u->n_resources; i++) {
		CHECK(u->resources[i].msg != NULL && u->resources[i].bytes != NULL);
		join_into(o->names, sizeof(o->names), u->resources[i].name);
		if (o->reject && strcmp(u->resources[i].name, o->reject) == 0) {
			snprintf(err, errlen, "cluster '%s': field 'name': rejected", o->reject);
			return -1;
		}
	}
	for (i = 0; i < u->n_removed; i++)
		join_into(o->removed, sizeof(o->removed), u->removed[i]);
	if (o->subscribe_eds_in_apply) {
		const char *eds[] = {"e1"};

		sk_ads_subscribe(o->ads, SK_TYPE_URL_ENDPOINT, eds, 1, false);
	}
	return 0;
}

static void on_event(void *ctx, const struct sk_ads_event *ev)
{
	struct owner *o = ctx;

	o->events[ev->kind]++;
}

/* ---------------------------------------------------------------- responses */

/* Serialized bytes of a resource whose field 1 (name / cluster_name) is `name`. */
static size_t name_bytes(const char *name, uint8_t *buf)
{
	size_t n = strlen(name);

	buf[0] = 0x0a;
	buf[1] = (uint8_t)n;
	memcpy(buf + 2, name, n);
	return n + 2;
}

static const uint8_t garbage[] = {0x0a, 0x20, 'x'}; /* a name of 32 bytes, 1 present */

/* A SotW response of `type_url` with resources named names[] ("!garbage" = undecodable,
 * "!mismatch" = an Any of another type). */
static void deliver_sotw(struct sk_ads *ads, const char *type_url, const char *version, const char *nonce,
			 const char *const *names, size_t n)
{
	Envoy__Service__Discovery__V3__DiscoveryResponse r = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
	Google__Protobuf__Any anys[8], *ptrs[8];
	uint8_t bufs[8][64], *out;
	size_t i, len;

	for (i = 0; i < n; i++) {
		google__protobuf__any__init(&anys[i]);
		anys[i].type_url = strcmp(names[i], "!mismatch") == 0 ? SK_TYPE_URL_LISTENER : (char *)type_url;
		if (strcmp(names[i], "!garbage") == 0) {
			anys[i].value.data = (uint8_t *)garbage;
			anys[i].value.len = sizeof(garbage);
		} else {
			anys[i].value.data = bufs[i];
			anys[i].value.len = name_bytes(names[i], bufs[i]);
		}
		ptrs[i] = &anys[i];
	}
	r.type_url = (char *)type_url;
	r.version_info = (char *)version;
	r.nonce = (char *)nonce;
	r.resources = ptrs;
	r.n_resources = n;
	len = protobuf_c_message_get_packed_size(&r.base);
	out = malloc(len + 1);
	protobuf_c_message_pack(&r.base, out);
	sk_ads_transport_message(ads, out, len);
	free(out);
}

/* A Delta response: resources "name:version", removed names. */
static void deliver_delta(struct sk_ads *ads, const char *type_url, const char *nonce, const char *const *res,
			  size_t n, const char *const *removed, size_t n_removed)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse r =
		ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
	Envoy__Service__Discovery__V3__Resource rs[8], *ptrs[8];
	Google__Protobuf__Any anys[8];
	char names[8][32], *alias = "an-alias";
	uint8_t bufs[8][64], *out;
	size_t i, len;

	for (i = 0; i < n; i++) {
		const char *colon = strchr(res[i], ':');

		snprintf(names[i], sizeof(names[i]), "%.*s", (int)(colon - res[i]), res[i]);
		envoy__service__discovery__v3__resource__init(&rs[i]);
		google__protobuf__any__init(&anys[i]);
		anys[i].type_url = (char *)type_url;
		if (strcmp(names[i], "garbled") == 0) {
			anys[i].value.data = (uint8_t *)garbage;
			anys[i].value.len = sizeof(garbage);
		} else {
			anys[i].value.data = bufs[i];
			anys[i].value.len = name_bytes(names[i], bufs[i]);
		}
		rs[i].name = names[i];
		rs[i].version = (char *)colon + 1;
		rs[i].resource = strcmp(names[i], "heartbeat") == 0 ? NULL : &anys[i];
		rs[i].aliases = &alias;
		rs[i].n_aliases = 1;
		ptrs[i] = &rs[i];
	}
	r.type_url = (char *)type_url;
	r.system_version_info = "sys-1";
	r.nonce = (char *)nonce;
	r.resources = ptrs;
	r.n_resources = n;
	r.removed_resources = (char **)removed;
	r.n_removed_resources = n_removed;
	len = protobuf_c_message_get_packed_size(&r.base);
	out = malloc(len + 1);
	protobuf_c_message_pack(&r.base, out);
	sk_ads_transport_message(ads, out, len);
	free(out);
}

/* ---------------------------------------------------------------- setup */

struct env {
	struct ev_loop *loop;
	struct fake f;
	struct owner o;
	struct sk_ads_transport t;
	struct sk_ads *ads;
	Envoy__Config__Core__V3__Node node;
};

static void env_init(struct env *e, enum sk_ads_api_type api, bool node_first_only, uint32_t backoff_base)
{
	struct sk_ads_config cfg = {0};
	char err[256];

	memset(e, 0, sizeof(*e));
	e->loop = ev_loop_new(EVFLAG_AUTO);
	envoy__config__core__v3__node__init(&e->node);
	e->node.id = "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local";
	e->node.cluster = "pod.ns";
	e->t = (struct sk_ads_transport){.open = f_open, .send = f_send, .close = f_close, .tctx = &e->f};
	cfg.api_type = api;
	cfg.set_node_on_first_message_only = node_first_only;
	cfg.node = &e->node;
	cfg.transport = &e->t;
	cfg.apply = apply;
	cfg.on_event = on_event;
	cfg.ctx = &e->o;
	cfg.backoff_base_ms = backoff_base;
	cfg.backoff_seed = 42;
	e->ads = sk_ads_create(e->loop, &cfg, err, sizeof(err));
	e->o.ads = e->ads;
	CHECK(e->ads != NULL);
}

static void env_free(struct env *e)
{
	sk_ads_destroy(e->ads);
	fake_clear(&e->f);
	ev_loop_destroy(e->loop);
}

static const char *type_of_sotw(struct fake *f, size_t i, char *buf, size_t len)
{
	sotw_req_pb *r = sotw_sent(f, i);

	snprintf(buf, len, "%s", r ? r->type_url : "(none)");
	if (r)
		envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	return buf;
}

/* ---------------------------------------------------------------- SotW */

static void test_sotw_initial(void)
{
	const char *eds[] = {"outbound|9080||b", "outbound|9080||a"}, *rds[] = {"9080"};
	struct env e;
	sotw_req_pb *r;
	char buf[256];
	size_t i;

	env_init(&e, SK_ADS_SOTW, true, 0);
	/* Subscribed out of order before the start: the requests still go CDS, EDS, LDS, RDS. */
	sk_ads_subscribe(e.ads, SK_TYPE_URL_ROUTE, rds, 1, false);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_LISTENER, NULL, 0, true);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_ENDPOINT, eds, 2, false);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_CLUSTER, NULL, 0, true);
	CHECK(e.f.n_sent == 0);
	CHECK(sk_ads_start(e.ads) == 0);
	CHECK_STR(e.f.method, SK_ADS_METHOD_SOTW);
	CHECK(e.f.n_sent == 4);
	CHECK_STR(type_of_sotw(&e.f, 0, buf, sizeof(buf)), SK_TYPE_URL_CLUSTER);
	CHECK_STR(type_of_sotw(&e.f, 1, buf, sizeof(buf)), SK_TYPE_URL_ENDPOINT);
	CHECK_STR(type_of_sotw(&e.f, 2, buf, sizeof(buf)), SK_TYPE_URL_LISTENER);
	CHECK_STR(type_of_sotw(&e.f, 3, buf, sizeof(buf)), SK_TYPE_URL_ROUTE);
	r = sotw_sent(&e.f, 0);
	CHECK(r && r->node != NULL);
	if (r && r->node) {
		CHECK_STR(r->node->id, "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local");
		CHECK_STR(r->node->user_agent_name, "envoy");
		CHECK(r->node->user_agent_version_type_case ==
		      ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE_USER_AGENT_BUILD_VERSION);
		CHECK(r->node->user_agent_build_version && r->node->user_agent_build_version->version &&
		      r->node->user_agent_build_version->version->major_number == SK_ADS_ENVOY_MAJOR);
		CHECK(r->node->n_client_features == 2);
		CHECK(r->node->n_client_features > 0 &&
		      strcmp(r->node->client_features[0], "envoy.lb.does_not_support_overprovisioning") == 0);
	}
	CHECK(r && r->n_resource_names == 0 && r->version_info[0] == '\0' && r->response_nonce[0] == '\0');
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	for (i = 1; i < 4; i++) { /* set_node_on_first_message_only */
		r = sotw_sent(&e.f, i);
		CHECK(r && r->node == NULL);
		if (i == 1) { /* names sorted */
			CHECK(r && r->n_resource_names == 2 && strcmp(r->resource_names[0], "outbound|9080||a") == 0);
		}
		envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	}
	env_free(&e);
}

static void test_sotw_ack_nack(void)
{
	const char *good[] = {"a", "b"}, *bad[] = {"a", "bad"};
	struct sk_ads_type_stats st;
	struct env e;
	sotw_req_pb *r;

	env_init(&e, SK_ADS_SOTW, true, 0);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_CLUSTER, NULL, 0, true);
	sk_ads_start(e.ads);
	fake_clear(&e.f);
	deliver_sotw(e.ads, SK_TYPE_URL_CLUSTER, "v1", "n1", good, 2);
	CHECK(e.o.applies == 1);
	CHECK_STR(e.o.names, "a,b");
	CHECK_STR(e.o.last_version, "v1");
	CHECK(e.f.n_sent == 1);
	r = sotw_sent(&e.f, 0);
	CHECK(r != NULL);
	if (r) {
		CHECK_STR(r->type_url, SK_TYPE_URL_CLUSTER);
		CHECK_STR(r->version_info, "v1");
		CHECK_STR(r->response_nonce, "n1");
		CHECK(r->error_detail == NULL);
		CHECK(r->node == NULL);
	}
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	/* Rejected: NACK keeps the last good version, names the resource, code 3. */
	fake_clear(&e.f);
	e.o.reject = "bad";
	deliver_sotw(e.ads, SK_TYPE_URL_CLUSTER, "v2", "n2", bad, 2);
	CHECK(e.f.n_sent == 1);
	r = sotw_sent(&e.f, 0);
	CHECK(r != NULL && r->error_detail != NULL);
	if (r && r->error_detail) {
		CHECK_STR(r->version_info, "v1");
		CHECK_STR(r->response_nonce, "n2");
		CHECK(r->error_detail->code == 3);
		CHECK_CONTAINS(r->error_detail->message, "cluster 'bad'");
	}
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	CHECK(sk_ads_type_stats(e.ads, SK_TYPE_URL_CLUSTER, &st) == 0);
	CHECK(st.update_attempt == 2 && st.update_success == 1 && st.update_rejected == 1 && st.update_failure == 0);
	CHECK_STR(st.version_text, "v1");
	CHECK(st.update_time > 0);
	/* An empty response is an accepted, empty update. */
	e.o.reject = NULL;
	deliver_sotw(e.ads, SK_TYPE_URL_CLUSTER, "v3", "n3", NULL, 0);
	CHECK(sk_ads_type_stats(e.ads, SK_TYPE_URL_CLUSTER, &st) == 0 && st.update_empty == 1);
	CHECK_STR(st.version_text, "v3");
	CHECK(sk_ads_type_stats(e.ads, SK_TYPE_URL_ROUTE, &st) == -ENOENT);
	CHECK(sk_ads_subscribe(e.ads, "type.googleapis.com/skiff.test.Nope", NULL, 0, true) == -EINVAL);
	env_free(&e);
}

/* Undecodable resources, a mismatched Any, unknown types and garbage: NACKs, no apply. */
static void test_sotw_bad_responses(void)
{
	const char *garbled[] = {"a", "!garbage"}, *mismatch[] = {"!mismatch"};
	struct sk_ads_stats cs;
	struct env e;
	sotw_req_pb *r;
	uint8_t junk[64];
	size_t n;

	env_init(&e, SK_ADS_SOTW, true, 20);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_CLUSTER, NULL, 0, true);
	sk_ads_start(e.ads);
	fake_clear(&e.f);
	deliver_sotw(e.ads, SK_TYPE_URL_CLUSTER, "v1", "n1", garbled, 2);
	CHECK(e.o.applies == 0);
	r = sotw_sent(&e.f, 0);
	CHECK(r && r->error_detail && strstr(r->error_detail->message, "resources[1]: cannot decode") != NULL);
	CHECK(r && strcmp(r->response_nonce, "n1") == 0 && r->version_info[0] == '\0');
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);

	fake_clear(&e.f);
	deliver_sotw(e.ads, SK_TYPE_URL_CLUSTER, "v1", "n2", mismatch, 1);
	r = sotw_sent(&e.f, 0);
	CHECK(r && r->error_detail && strstr(r->error_detail->message, "does not match") != NULL);
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);

	/* A type URL outside the registry: NACK under that type URL. */
	fake_clear(&e.f);
	deliver_sotw(e.ads, "type.googleapis.com/skiff.test.Nope", "x", "n3", NULL, 0);
	r = sotw_sent(&e.f, 0);
	CHECK(r && r->error_detail && strcmp(r->type_url, "type.googleapis.com/skiff.test.Nope") == 0 &&
	      strcmp(r->response_nonce, "n3") == 0 && strstr(r->error_detail->message, "unknown type URL"));
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);

	/* A known type nobody subscribed to: ignored, as Envoy does. */
	fake_clear(&e.f);
	deliver_sotw(e.ads, SK_TYPE_URL_SECRET, "x", "n4", NULL, 0);
	CHECK(e.f.n_sent == 0);

	/* Not a response, but its type URL and nonce are readable: NACK. */
	n = 0;
	junk[n++] = 4 << 3 | 2;
	junk[n++] = (uint8_t)strlen(SK_TYPE_URL_CLUSTER);
	memcpy(junk + n, SK_TYPE_URL_CLUSTER, strlen(SK_TYPE_URL_CLUSTER));
	n += strlen(SK_TYPE_URL_CLUSTER);
	junk[n++] = 5 << 3 | 2;
	junk[n++] = 2;
	junk[n++] = 'g';
	junk[n++] = '1';
	junk[n++] = 2 << 3 | 2;
	junk[n++] = 100;
	sk_ads_transport_message(e.ads, junk, n);
	r = sotw_sent(&e.f, 0);
	CHECK(r && r->error_detail && strcmp(r->response_nonce, "g1") == 0 &&
	      strstr(r->error_detail->message, "cannot decode DiscoveryResponse"));
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	CHECK(e.o.applies == 0);

	/* Unreadable bytes: the stream starts over after back-off. */
	sk_ads_transport_ready(e.ads);
	sk_ads_stats(e.ads, &cs);
	CHECK(cs.connected_state == 1 && cs.rate_limit_enforced == 0);
	junk[0] = 0xff;
	sk_ads_transport_message(e.ads, junk, 1);
	CHECK(e.f.closes == 1);
	sk_ads_stats(e.ads, &cs);
	CHECK(cs.connected_state == 0);
	CHECK(sk_ads_retry_ms(e.ads) >= 10 && sk_ads_retry_ms(e.ads) < 20);
	CHECK(e.o.events[SK_ADS_EV_DISCONNECTED] == 1 && e.o.events[SK_ADS_EV_BAD_MESSAGE] >= 5);
	env_free(&e);
}

/* Subscription changes: a request with the new names, the last version and the latest nonce;
 * no request when nothing changed; changes made inside apply go out after the ACK. */
static void test_sotw_subscriptions(void)
{
	const char *one[] = {"a"}, *two[] = {"b", "a"}, *clusters[] = {"c1"};
	struct env e;
	sotw_req_pb *r;
	char buf[256];

	env_init(&e, SK_ADS_SOTW, false, 0);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_CLUSTER, NULL, 0, true);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_ENDPOINT, one, 1, false);
	sk_ads_start(e.ads);
	deliver_sotw(e.ads, SK_TYPE_URL_ENDPOINT, "e1", "n1", one, 1);
	fake_clear(&e.f);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_ENDPOINT, two, 2, false);
	CHECK(e.f.n_sent == 1);
	r = sotw_sent(&e.f, 0);
	CHECK(r && r->n_resource_names == 2 && strcmp(r->version_info, "e1") == 0 && strcmp(r->response_nonce, "n1") == 0);
	CHECK(r && r->node != NULL); /* set_node_on_first_message_only: false */
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	fake_clear(&e.f);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_ENDPOINT, two, 2, false);
	CHECK(e.f.n_sent == 0);
	/* Unsubscribing everything of a named type sends the empty list once. */
	sk_ads_subscribe(e.ads, SK_TYPE_URL_ENDPOINT, NULL, 0, false);
	CHECK(e.f.n_sent == 1);
	fake_clear(&e.f);
	/* From inside apply: the CDS ACK first, then the EDS request. */
	e.o.subscribe_eds_in_apply = true;
	deliver_sotw(e.ads, SK_TYPE_URL_CLUSTER, "c-v1", "n2", clusters, 1);
	CHECK(e.f.n_sent == 2);
	CHECK_STR(type_of_sotw(&e.f, 0, buf, sizeof(buf)), SK_TYPE_URL_CLUSTER);
	CHECK_STR(type_of_sotw(&e.f, 1, buf, sizeof(buf)), SK_TYPE_URL_ENDPOINT);
	r = sotw_sent(&e.f, 1);
	CHECK(r && r->n_resource_names == 1 && strcmp(r->resource_names[0], "e1") == 0);
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	env_free(&e);
}

/* The stream breaks: failures counted, back-off, a new stream with the node and the last
 * accepted version. */
static void test_sotw_reconnect(void)
{
	const char *names[] = {"a"};
	struct sk_ads_type_stats st;
	struct env e;
	sotw_req_pb *r;
	int i;

	env_init(&e, SK_ADS_SOTW, true, 20);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_CLUSTER, NULL, 0, true);
	sk_ads_start(e.ads);
	deliver_sotw(e.ads, SK_TYPE_URL_CLUSTER, "v7", "n1", names, 1);
	fake_clear(&e.f);
	sk_ads_transport_closed(e.ads, 14, "connection reset");
	CHECK(e.f.closes == 1);
	CHECK(sk_ads_type_stats(e.ads, SK_TYPE_URL_CLUSTER, &st) == 0 && st.update_failure == 1 &&
	      st.update_attempt == 2);
	CHECK_STR(st.version_text, "v7");
	CHECK(sk_ads_retry_ms(e.ads) >= 10 && sk_ads_retry_ms(e.ads) < 20);
	for (i = 0; i < 50 && e.f.opens < 2; i++)
		ev_run(e.loop, EVRUN_ONCE);
	CHECK(e.f.opens == 2);
	CHECK(e.f.n_sent == 1);
	r = sotw_sent(&e.f, 0);
	CHECK(r && r->node != NULL && strcmp(r->version_info, "v7") == 0 && r->response_nonce[0] == '\0');
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	/* A stream that cannot even open is retried too, with a longer back-off. */
	e.f.open_fails = true;
	sk_ads_transport_closed(e.ads, 14, "again");
	CHECK(sk_ads_retry_ms(e.ads) >= 20 && sk_ads_retry_ms(e.ads) < 40);
	for (i = 0; i < 50 && e.f.opens < 3; i++)
		ev_run(e.loop, EVRUN_ONCE);
	CHECK(e.f.opens == 3);
	CHECK(sk_ads_retry_ms(e.ads) >= 40 && sk_ads_retry_ms(e.ads) < 80);
	env_free(&e);
}

/* ---------------------------------------------------------------- Delta */

static void test_delta_protocol(void)
{
	const char *eds[] = {"a", "b"}, *eds2[] = {"b", "c"}, *both[] = {"a:1", "b:1"}, *one[] = {"b:2"};
	const char *rm[] = {"a"}, *bad[] = {"bad:1"}, *odd[] = {"x:1", "heartbeat:9"};
	struct env e;
	delta_req_pb *r;

	env_init(&e, SK_ADS_DELTA, true, 20);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_CLUSTER, NULL, 0, true);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_ENDPOINT, eds, 2, false);
	sk_ads_start(e.ads);
	CHECK_STR(e.f.method, SK_ADS_METHOD_DELTA);
	CHECK(e.f.n_sent == 2);
	r = delta_sent(&e.f, 0);
	CHECK(r && strcmp(r->type_url, SK_TYPE_URL_CLUSTER) == 0 && r->node != NULL &&
	      r->n_resource_names_subscribe == 0 && r->n_initial_resource_versions == 0); /* legacy wildcard */
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);
	r = delta_sent(&e.f, 1);
	CHECK(r && r->node == NULL && r->n_resource_names_subscribe == 2);
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);

	/* Resources with versions (aliases ignored), then an ACK carrying only the nonce. */
	fake_clear(&e.f);
	deliver_delta(e.ads, SK_TYPE_URL_ENDPOINT, "d1", both, 2, NULL, 0);
	CHECK_STR(e.o.names, "a,b");
	CHECK_STR(e.o.last_version, "sys-1");
	CHECK_STR(sk_ads_resource_version(e.ads, SK_TYPE_URL_ENDPOINT, "a"), "1");
	r = delta_sent(&e.f, 0);
	CHECK(r && strcmp(r->response_nonce, "d1") == 0 && r->error_detail == NULL &&
	      r->n_resource_names_subscribe == 0 && r->n_initial_resource_versions == 0);
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);

	/* An update and a removal. */
	fake_clear(&e.f);
	deliver_delta(e.ads, SK_TYPE_URL_ENDPOINT, "d2", one, 1, rm, 1);
	CHECK_STR(e.o.names, "b");
	CHECK_STR(e.o.removed, "a");
	CHECK(sk_ads_resource_version(e.ads, SK_TYPE_URL_ENDPOINT, "a") == NULL);
	CHECK_STR(sk_ads_resource_version(e.ads, SK_TYPE_URL_ENDPOINT, "b"), "2");

	/* Rejected: NACK with error_detail, versions untouched. */
	fake_clear(&e.f);
	e.o.reject = "bad";
	deliver_delta(e.ads, SK_TYPE_URL_CLUSTER, "d3", bad, 1, NULL, 0);
	r = delta_sent(&e.f, 0);
	CHECK(r && r->error_detail && r->error_detail->code == 3 && strcmp(r->response_nonce, "d3") == 0 &&
	      strstr(r->error_detail->message, "'bad'"));
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);
	CHECK(sk_ads_resource_version(e.ads, SK_TYPE_URL_CLUSTER, "bad") == NULL);
	e.o.reject = NULL;

	/* A heartbeat (no body) is skipped; x is applied. */
	deliver_delta(e.ads, SK_TYPE_URL_CLUSTER, "d4", odd, 2, NULL, 0);
	CHECK_STR(e.o.names, "x");

	/* Subscription diff: a, b -> b, c. */
	fake_clear(&e.f);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_ENDPOINT, eds2, 2, false);
	r = delta_sent(&e.f, 0);
	CHECK(r && r->n_resource_names_subscribe == 1 && strcmp(r->resource_names_subscribe[0], "c") == 0 &&
	      r->n_resource_names_unsubscribe == 1 && strcmp(r->resource_names_unsubscribe[0], "a") == 0 &&
	      r->response_nonce[0] == '\0');
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);

	/* Reconnect: everything again, with initial_resource_versions. */
	fake_clear(&e.f);
	sk_ads_transport_closed(e.ads, 14, "gone");
	while (e.f.opens < 2)
		ev_run(e.loop, EVRUN_ONCE);
	CHECK(e.f.n_sent == 2);
	r = delta_sent(&e.f, 0);
	CHECK(r && r->node != NULL && r->n_initial_resource_versions == 1 &&
	      strcmp(r->initial_resource_versions[0]->key, "x") == 0 &&
	      strcmp(r->initial_resource_versions[0]->value, "1") == 0);
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);
	r = delta_sent(&e.f, 1);
	CHECK(r && r->n_resource_names_subscribe == 2 && r->n_initial_resource_versions == 1 &&
	      strcmp(r->initial_resource_versions[0]->key, "b") == 0);
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);
	env_free(&e);
}

static void test_delta_wildcard_and_garbage(void)
{
	const char *names[] = {"extra"}, *garbled[] = {"garbled:1"};
	struct env e;
	delta_req_pb *r;

	env_init(&e, SK_ADS_DELTA, true, 0);
	sk_ads_subscribe(e.ads, SK_TYPE_URL_LISTENER, names, 1, true);
	sk_ads_start(e.ads);
	r = delta_sent(&e.f, 0);
	/* Wildcard with names: the explicit "*". */
	CHECK(r && r->n_resource_names_subscribe == 2);
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);
	fake_clear(&e.f);
	deliver_delta(e.ads, SK_TYPE_URL_LISTENER, "g1", garbled, 1, NULL, 0);
	r = delta_sent(&e.f, 0);
	CHECK(r && r->error_detail && strstr(r->error_detail->message, "garbled: cannot decode"));
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);
	CHECK(e.o.applies == 0);
	env_free(&e);
}

/* ---------------------------------------------------------------- helpers */

static void test_backoff(void)
{
	struct sk_backoff b;
	uint32_t d, ceiling = 500;
	int i;

	sk_backoff_init(&b, 0, 0, 7);
	for (i = 0; i < 12; i++) {
		d = sk_backoff_next_ms(&b);
		CHECK(d >= ceiling / 2 && d < ceiling);
		ceiling = ceiling * 2 > 30000 ? 30000 : ceiling * 2;
	}
	CHECK(ceiling == 30000);
	sk_backoff_reset(&b);
	d = sk_backoff_next_ms(&b);
	CHECK(d >= 250 && d < 500);
}

static void test_resource_helpers(void)
{
	Envoy__Config__Cluster__V3__Cluster c = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__INIT;
	Envoy__Config__Endpoint__V3__ClusterLoadAssignment la = ENVOY__CONFIG__ENDPOINT__V3__CLUSTER_LOAD_ASSIGNMENT__INIT;
	const uint8_t msg[] = {0x22, 0x03, 'a', 'b', 'c', 0x2a, 0x01, 'n', 0x12, 0x50};
	const uint8_t *p;
	size_t n;
	char v1[SK_XDS_VERSION_HEX_LEN], v2[SK_XDS_VERSION_HEX_LEN];

	c.name = "outbound|80||x";
	la.cluster_name = "eds-x";
	CHECK_STR(sk_xds_resource_name(&c.base), "outbound|80||x");
	CHECK_STR(sk_xds_resource_name(&la.base), "eds-x");
	CHECK(sk_xds_type_rank(SK_TYPE_URL_CLUSTER) < sk_xds_type_rank(SK_TYPE_URL_ENDPOINT));
	CHECK(sk_xds_type_rank(SK_TYPE_URL_LISTENER) < sk_xds_type_rank(SK_TYPE_URL_ROUTE));
	CHECK(sk_xds_type_rank(SK_TYPE_URL_ROUTE) < sk_xds_type_rank(SK_TYPE_URL_SECRET));
	CHECK(sk_xds_type_rank(SK_TYPE_URL_SECRET) < sk_xds_type_rank(SK_TYPE_URL_ECDS));
	CHECK_STR(sk_xds_type_short(SK_TYPE_URL_LISTENER), "lds");
	CHECK(sk_xds_type_is_wildcard(SK_TYPE_URL_CLUSTER) && !sk_xds_type_is_wildcard(SK_TYPE_URL_ROUTE));
	CHECK(sk_xds_wire_find_bytes(msg, sizeof(msg), 4, &p, &n) == 0 && n == 3 && memcmp(p, "abc", 3) == 0);
	CHECK(sk_xds_wire_find_bytes(msg, sizeof(msg), 5, &p, &n) == 0 && n == 1 && p[0] == 'n');
	CHECK(sk_xds_wire_find_bytes(msg, sizeof(msg), 2, &p, &n) == -EINVAL); /* truncated */
	CHECK(sk_xds_wire_find_bytes(msg, 5, 7, &p, &n) == -ENOENT);
	sk_xds_resource_version_of((const uint8_t *)"abc", 3, v1);
	sk_xds_resource_version_of((const uint8_t *)"abd", 3, v2);
	CHECK(strlen(v1) == 16 && strcmp(v1, v2) != 0);
}

/* The golden Istio bootstrap: Delta, node once, the xds-grpc pipe as a unix: target. */
static void test_bootstrap_read(void)
{
	char path[1024], err[512];
	struct sk_bootstrap_load_opts lo = {.path = path};
	struct sk_ads_bootstrap ab;
	sk_bootstrap_pb *b;

	snprintf(path, sizeof(path), "%s/istio/bootstrap/default_golden.json", sk_test_conformance_dir());
	if (sk_bootstrap_load(&lo, &b, NULL, err, sizeof(err)) < 0) {
		SKIP("no conformance bootstrap: %s", err);
		return;
	}
	CHECK(sk_ads_bootstrap_read(b, &ab, err, sizeof(err)) == 0);
	CHECK(ab.api_type == SK_ADS_DELTA && ab.set_node_on_first_message_only);
	CHECK_STR(ab.cluster_name, "xds-grpc");
	CHECK_STR(ab.authority, "xds-grpc");
	CHECK(strncmp(ab.target, "unix:", 5) == 0 && strstr(ab.target, "XDS") != NULL);
	sk_ads_bootstrap_clear(&ab);
	b->dynamic_resources->ads_config->api_type = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__REST;
	CHECK(sk_ads_bootstrap_read(b, &ab, err, sizeof(err)) == -EINVAL);
	CHECK_CONTAINS(err, "api_type");
	b->dynamic_resources->ads_config->api_type = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC;
	b->dynamic_resources->ads_config->grpc_services[0]->envoy_grpc->cluster_name[0] = 'X';
	CHECK(sk_ads_bootstrap_read(b, &ab, err, sizeof(err)) == -EINVAL);
	CHECK_CONTAINS(err, "unknown static cluster");
	sk_bootstrap_free(b);
}

int main(void)
{
	test_sotw_initial();
	test_sotw_ack_nack();
	test_sotw_bad_responses();
	test_sotw_subscriptions();
	test_sotw_reconnect();
	test_delta_protocol();
	test_delta_wildcard_and_garbage();
	test_backoff();
	test_resource_helpers();
	test_bootstrap_read();
	return TEST_SUMMARY();
}
