/* ads_server: ADS / SDS over gRPC core's server API, single-threaded. See ads_server.h.
 *
 * Every call is a `struct srv_stream` whose operations (send headers, receive, send, wait
 * for the close, send the status) carry tags pointing at the stream's own `struct sop`s; one
 * completion queue serves the server and all calls; sk_xds_server_poll drains it. A stream is
 * freed once gRPC has reported its close and nothing of it is in flight. */
#include "xds/server/ads_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "skiff_protos.h"
#include "xds/ads.h"
#include "xds/strmap.h"

#define MAX_LISTEN 8
#define UNKNOWN_TYPE_URL SK_TYPE_URL_PREFIX "skiff.test.v1.Unknown"

enum sop_kind { SOP_NEW_CALL, SOP_META, SOP_RECV, SOP_SEND, SOP_CLOSE, SOP_STATUS, SOP_SHUTDOWN };

struct sop {
	enum sop_kind kind;
	struct srv_stream *st;
};

/* What one stream subscribed to of one type, and what it was sent. */
struct srv_type {
	char *type_url;
	bool seen;                 /* a request of this type arrived on the stream */
	bool wildcard;
	struct sk_strmap names;
	struct sk_strmap known;    /* name -> version the client holds (as far as we know) */
	char *last_nonce;
	char *last_version;
};

struct send_item {
	grpc_byte_buffer *buf;
	struct send_item *next;
};

struct srv_stream {
	struct sk_xds_server *srv;
	struct srv_stream *prev, *next;
	unsigned id;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	bool delta;
	struct sop op_new, op_meta, op_recv, op_send, op_close, op_status;
	int in_flight;
	bool closed;               /* gRPC reported the call over */
	int cancelled;
	grpc_byte_buffer *recv_buf;
	grpc_byte_buffer *sending;
	struct send_item *q_head, *q_tail;
	struct srv_type **types;
	size_t n_types;
	unsigned nonce_seq;
};

struct sk_xds_server {
	grpc_server *server;
	grpc_completion_queue *cq;
	FILE *log;
	bool log_times;
	struct sk_xds_store *store;
	struct srv_stream *streams;   /* calls in progress */
	struct srv_stream *waiting;   /* the one waiting for grpc_server_request_call */
	struct sop op_shutdown;
	bool stopping;                /* no new calls */
	bool shut_down;               /* gRPC confirmed the server's shutdown */
	unsigned next_id, garbage_seq, unknown_seq;
	int ports[MAX_LISTEN];
	size_t n_ports;
};

/* ---------------------------------------------------------------- log */

static void logf_(struct sk_xds_server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void sk_xds_log_time(FILE *f)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(f, "%lld.%06ld ", (long long)ts.tv_sec, ts.tv_nsec / 1000);
}

/* One event line, flushed at once: tests read the log while the server runs. With
 * log_times (--log-times), the line starts with the wall-clock time (bench/xds.sh). */
static void logf_(struct sk_xds_server *srv, const char *fmt, ...)
{
	va_list ap;

	if (srv->log == NULL)
		return;
	if (srv->log_times)
		sk_xds_log_time(srv->log);
	va_start(ap, fmt);
	vfprintf(srv->log, fmt, ap);
	va_end(ap);
	fputc('\n', srv->log);
	fflush(srv->log);
}

/* A log-safe copy of a control-plane string: no newlines, bounded. */
static void clean(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src && src[i] && i + 1 < len; i++)
		dst[i] = src[i] == '\n' || src[i] == '\r' ? ' ' : src[i];
	dst[i] = '\0';
}

/* Joins strings with commas into buf (truncated with "..."). */
static const char *join(char *buf, size_t len, const char *const *items, size_t n)
{
	size_t used = 0, i;
	int w;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		w = snprintf(buf + used, len - used, "%s%s", i ? "," : "", items[i]);
		if (w < 0 || (size_t)w >= len - used) {
			if (len > 4)
				strcpy(buf + len - 4, "...");
			break;
		}
		used += (size_t)w;
	}
	return buf;
}

static const char *mode_name(const struct srv_stream *st)
{
	return st->delta ? "delta" : "sotw";
}

/* ---------------------------------------------------------------- stream types */

static struct srv_type *get_type(struct srv_stream *st, const char *type_url)
{
	struct srv_type **grown, *t;
	size_t i;

	for (i = 0; i < st->n_types; i++)
		if (strcmp(st->types[i]->type_url, type_url) == 0)
			return st->types[i];
	t = calloc(1, sizeof(*t));
	grown = t ? realloc(st->types, (st->n_types + 1) * sizeof(*grown)) : NULL;
	if (grown == NULL || (t->type_url = strdup(type_url)) == NULL) {
		if (grown)
			st->types = grown;
		free(t);
		return NULL;
	}
	st->types = grown;
	st->types[st->n_types++] = t;
	return t;
}

static void free_type(struct srv_type *t)
{
	sk_strmap_clear(&t->names);
	sk_strmap_clear(&t->known);
	free(t->type_url);
	free(t->last_nonce);
	free(t->last_version);
	free(t);
}

static void set_str(char **slot, const char *v)
{
	free(*slot);
	*slot = strdup(v ? v : "");
}

/* Does the subscription cover this resource? */
static bool wants(const struct srv_type *t, const char *name)
{
	return t->wildcard || sk_strmap_has(&t->names, name);
}

/* ---------------------------------------------------------------- sending */

static void start_batch(struct srv_stream *st, const grpc_op *ops, size_t n, struct sop *tag)
{
	if (grpc_call_start_batch(st->call, ops, n, tag, NULL) == GRPC_CALL_OK)
		st->in_flight++;
}

/* Writes the oldest queued message when no send is in flight (one at a time). */
static void pump(struct srv_stream *st)
{
	struct send_item *it = st->q_head;
	grpc_op op;

	if (st->sending || it == NULL || st->closed)
		return;
	st->q_head = it->next;
	if (st->q_head == NULL)
		st->q_tail = NULL;
	st->sending = it->buf;
	free(it);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = st->sending;
	start_batch(st, &op, 1, &st->op_send);
}

/* Queues bytes as one message of the stream. */
static void send_bytes(struct srv_stream *st, const uint8_t *data, size_t len)
{
	struct send_item *it = calloc(1, sizeof(*it));
	grpc_slice slice;

	if (it == NULL || st->closed) {
		free(it);
		return;
	}
	slice = grpc_slice_from_copied_buffer((const char *)data, len);
	it->buf = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	if (st->q_tail)
		st->q_tail->next = it;
	else
		st->q_head = it;
	st->q_tail = it;
	pump(st);
}

static void send_message(struct srv_stream *st, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);

	if (buf == NULL)
		return;
	protobuf_c_message_pack(m, buf);
	send_bytes(st, buf, len);
	free(buf);
}

static void next_nonce(struct srv_stream *st, char *buf, size_t len)
{
	snprintf(buf, len, "%u", ++st->nonce_seq);
}

/* ---------------------------------------------------------------- SotW */

/* The resources a SotW subscription covers, as indexes into the store. */
static size_t sotw_select(struct sk_xds_server *srv, const struct srv_type *t, size_t *idx)
{
	size_t first, count, i, n = 0;

	sk_xds_store_range(srv->store, t->type_url, &first, &count);
	for (i = first; i < first + count; i++)
		if (wants(t, srv->store->res[i].name))
			idx[n++] = i;
	return n;
}

/* Would the subscription's answer differ from what was last sent? */
static bool sotw_changed(struct sk_xds_server *srv, const struct srv_type *t, const size_t *idx, size_t n)
{
	const struct sk_strmap_entry *e;
	size_t i;

	if (n != t->known.n)
		return true;
	for (i = 0; i < n; i++) {
		e = sk_strmap_find(&t->known, srv->store->res[idx[i]].name);
		if (e == NULL || strcmp(e->value, srv->store->res[idx[i]].version) != 0)
			return true;
	}
	return false;
}

/* The whole state of the subscription, with a new nonce. force: even if unchanged. */
static void sotw_send(struct srv_stream *st, struct srv_type *t, bool force)
{
	struct sk_xds_server *srv = st->srv;
	Envoy__Service__Discovery__V3__DiscoveryResponse resp = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
	Envoy__Config__Core__V3__ControlPlane cp = ENVOY__CONFIG__CORE__V3__CONTROL_PLANE__INIT;
	size_t cap = srv->store ? srv->store->n : 0, n, i;
	size_t *idx = malloc((cap + 1) * sizeof(*idx));
	Google__Protobuf__Any *anys = calloc(cap + 1, sizeof(*anys)), **ptrs = calloc(cap + 1, sizeof(*ptrs));
	const char **names = calloc(cap + 1, sizeof(*names));
	char nonce[32], list[2048];

	if (idx == NULL || anys == NULL || ptrs == NULL || names == NULL)
		goto out;
	n = sotw_select(srv, t, idx);
	if (!force && !sotw_changed(srv, t, idx, n))
		goto out;
	sk_strmap_clear(&t->known);
	for (i = 0; i < n; i++) {
		const struct sk_xds_res *r = &srv->store->res[idx[i]];

		google__protobuf__any__init(&anys[i]);
		anys[i].type_url = r->type_url;
		anys[i].value.data = r->bytes;
		anys[i].value.len = r->len;
		ptrs[i] = &anys[i];
		names[i] = r->name;
		sk_strmap_put(&t->known, r->name, r->version);
	}
	next_nonce(st, nonce, sizeof(nonce));
	cp.identifier = "skiff-xds-server";
	resp.version_info = srv->store ? srv->store->version : "";
	resp.type_url = t->type_url;
	resp.nonce = nonce;
	resp.resources = ptrs;
	resp.n_resources = n;
	resp.control_plane = &cp;
	send_message(st, &resp.base);
	set_str(&t->last_nonce, nonce);
	set_str(&t->last_version, resp.version_info);
	logf_(srv, "SEND stream=%u mode=sotw type=%s version=%s nonce=%s resources=%s", st->id, t->type_url,
	      resp.version_info, nonce, join(list, sizeof(list), names, n));
out:
	free(idx);
	free(anys);
	free(ptrs);
	free(names);
}

/* SotW names: "*" or none on a wildcard type means everything. */
static bool sotw_set_names(struct srv_type *t, char **names, size_t n)
{
	struct sk_strmap next = {0};
	bool wildcard = n == 0 && sk_xds_type_is_wildcard(t->type_url), changed;
	const struct sk_strmap_entry *e;
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(names[i], "*") == 0)
			wildcard = true;
		else
			sk_strmap_put(&next, names[i], NULL);
	}
	changed = wildcard != t->wildcard || next.n != t->names.n;
	for (i = 0; !changed && (e = sk_strmap_next(&next, &i)) != NULL;)
		changed = !sk_strmap_has(&t->names, e->key);
	sk_strmap_clear(&t->names);
	t->names = next;
	t->wildcard = wildcard;
	return changed;
}

/* SotW: a first request (no nonce) is answered; an ACK/NACK is logged, and a changed
 * subscription in an ACK answered; stale nonces are logged as such and not acted on. */
static void on_sotw_request(struct srv_stream *st, Envoy__Service__Discovery__V3__DiscoveryRequest *req)
{
	struct sk_xds_server *srv = st->srv;
	struct srv_type *t = get_type(st, req->type_url);
	char list[2048], detail[1024];
	bool stale, changed;

	if (t == NULL)
		return;
	stale = t->last_nonce == NULL || strcmp(req->response_nonce, t->last_nonce) != 0;
	if (req->error_detail) {
		clean(detail, sizeof(detail), req->error_detail->message);
		logf_(srv, "NACK stream=%u mode=sotw type=%s version=%s nonce=%s code=%d error_detail=%s%s", st->id,
		      req->type_url, req->version_info, req->response_nonce, req->error_detail->code, detail,
		      stale ? " stale=1" : "");
		return;
	}
	if (req->response_nonce[0] != '\0') {
		logf_(srv, "ACK stream=%u mode=sotw type=%s version=%s nonce=%s%s", st->id, req->type_url,
		      req->version_info, req->response_nonce, stale ? " stale=1" : "");
		/* a stale request is not acted on at all (its names included): the ACK of the
		 * current nonce that follows carries the subscription again */
		changed = !stale && sotw_set_names(t, req->resource_names, req->n_resource_names);
		if (changed) {
			logf_(srv, "REQUEST stream=%u mode=sotw type=%s version=%s nonce=%s names=%s node=%s", st->id,
			      req->type_url, req->version_info, req->response_nonce,
			      join(list, sizeof(list), (const char *const *)req->resource_names, req->n_resource_names),
			      req->node ? req->node->id : "-");
			sotw_send(st, t, true);
		}
		return;
	}
	logf_(srv, "REQUEST stream=%u mode=sotw type=%s version=%s nonce= names=%s node=%s", st->id, req->type_url,
	      req->version_info, join(list, sizeof(list), (const char *const *)req->resource_names, req->n_resource_names),
	      req->node ? req->node->id : "-");
	t->seen = true;
	sotw_set_names(t, req->resource_names, req->n_resource_names);
	sotw_send(st, t, true);
}

/* ---------------------------------------------------------------- Delta */

/* What the client lacks (new or changed resources it wants) and what it holds in vain. */
static void delta_send(struct srv_stream *st, struct srv_type *t, bool force)
{
	struct sk_xds_server *srv = st->srv;
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse resp =
		ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
	Envoy__Config__Core__V3__ControlPlane cp = ENVOY__CONFIG__CORE__V3__CONTROL_PLANE__INIT;
	size_t first, count, i, n = 0, n_rm = 0, cap;
	Envoy__Service__Discovery__V3__Resource *res, **ptrs;
	Google__Protobuf__Any *anys;
	const char **names, **removed;
	const struct sk_strmap_entry *e;
	char nonce[32], list[2048], rmlist[1024];

	sk_xds_store_range(srv->store, t->type_url, &first, &count);
	cap = count + t->known.n + 1;
	res = calloc(cap, sizeof(*res));
	ptrs = calloc(cap, sizeof(*ptrs));
	anys = calloc(cap, sizeof(*anys));
	names = calloc(cap, sizeof(*names));
	removed = calloc(cap, sizeof(*removed));
	if (res == NULL || ptrs == NULL || anys == NULL || names == NULL || removed == NULL)
		goto out;
	for (i = first; i < first + count; i++) {
		const struct sk_xds_res *r = &srv->store->res[i];

		e = sk_strmap_find(&t->known, r->name);
		if (!wants(t, r->name) || (e && e->value && strcmp(e->value, r->version) == 0))
			continue;
		envoy__service__discovery__v3__resource__init(&res[n]);
		google__protobuf__any__init(&anys[n]);
		anys[n].type_url = r->type_url;
		anys[n].value.data = r->bytes;
		anys[n].value.len = r->len;
		res[n].name = r->name;
		res[n].version = (char *)r->version;
		res[n].resource = &anys[n];
		ptrs[n] = &res[n];
		names[n++] = r->name;
	}
	for (i = 0; (e = sk_strmap_next(&t->known, &i)) != NULL;) {
		const struct sk_xds_res *r = sk_xds_store_find(srv->store, t->type_url, e->key);

		if (r == NULL || !wants(t, e->key))
			removed[n_rm++] = e->key;
	}
	if (!force && n == 0 && n_rm == 0)
		goto out;
	next_nonce(st, nonce, sizeof(nonce));
	cp.identifier = "skiff-xds-server";
	resp.system_version_info = srv->store ? srv->store->version : "";
	resp.type_url = t->type_url;
	resp.nonce = nonce;
	resp.resources = ptrs;
	resp.n_resources = n;
	resp.removed_resources = (char **)removed;
	resp.n_removed_resources = n_rm;
	resp.control_plane = &cp;
	send_message(st, &resp.base);
	logf_(srv, "SEND stream=%u mode=delta type=%s version=%s nonce=%s resources=%s removed=%s", st->id,
	      t->type_url, resp.system_version_info, nonce, join(list, sizeof(list), names, n),
	      join(rmlist, sizeof(rmlist), removed, n_rm));
	set_str(&t->last_nonce, nonce);
	set_str(&t->last_version, resp.system_version_info);
	for (i = 0; i < n; i++)
		sk_strmap_put(&t->known, res[i].name, res[i].version);
	for (i = n_rm; i > 0; i--) { /* removed[] points into known: delete from a copy of the key */
		char *k = strdup(removed[i - 1]);

		if (k)
			sk_strmap_del(&t->known, k);
		free(k);
	}
out:
	free(res);
	free(ptrs);
	free(anys);
	free(names);
	free(removed);
}

/* Applies (un)subscriptions; returns whether the subscription changed. */
static bool delta_subscribe(struct srv_type *t, const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req,
			    bool first)
{
	bool changed = false;
	size_t i;

	if (first && req->n_resource_names_subscribe == 0 && sk_xds_type_is_wildcard(t->type_url))
		t->wildcard = changed = true; /* the legacy wildcard */
	for (i = 0; i < req->n_resource_names_subscribe; i++) {
		const char *n = req->resource_names_subscribe[i];

		if (strcmp(n, "*") == 0) {
			changed = changed || !t->wildcard;
			t->wildcard = true;
		} else if (!sk_strmap_has(&t->names, n)) {
			changed = true;
			sk_strmap_put(&t->names, n, NULL);
		}
	}
	for (i = 0; i < req->n_resource_names_unsubscribe; i++) {
		const char *n = req->resource_names_unsubscribe[i];

		if (strcmp(n, "*") == 0) {
			changed = changed || t->wildcard;
			t->wildcard = false;
		} else if (sk_strmap_del(&t->names, n)) {
			changed = true;
			sk_strmap_del(&t->known, n);
		}
	}
	return changed;
}

static void log_delta_request(struct srv_stream *st, const Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req)
{
	char sub[2048], unsub[1024], irv[2048];
	size_t used = 0, i;
	int w;

	irv[0] = '\0';
	for (i = 0; i < req->n_initial_resource_versions; i++) {
		w = snprintf(irv + used, sizeof(irv) - used, "%s%s=%s", i ? "," : "", req->initial_resource_versions[i]->key,
			     req->initial_resource_versions[i]->value);
		if (w < 0 || (size_t)w >= sizeof(irv) - used)
			break;
		used += (size_t)w;
	}
	logf_(st->srv, "REQUEST stream=%u mode=delta type=%s nonce=%s subscribe=%s unsubscribe=%s "
	      "initial_resource_versions=%s node=%s", st->id, req->type_url, req->response_nonce,
	      join(sub, sizeof(sub), (const char *const *)req->resource_names_subscribe, req->n_resource_names_subscribe),
	      join(unsub, sizeof(unsub), (const char *const *)req->resource_names_unsubscribe,
		   req->n_resource_names_unsubscribe),
	      irv, req->node ? req->node->id : "-");
}

/* Delta: ACK/NACK logged; the first request of a type (with initial_resource_versions)
 * and every subscription change answered with what the client lacks. */
static void on_delta_request(struct srv_stream *st, Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req)
{
	struct sk_xds_server *srv = st->srv;
	struct srv_type *t = get_type(st, req->type_url);
	char detail[1024];
	bool stale, first, changed;
	size_t i;

	if (t == NULL)
		return;
	if (req->response_nonce[0] != '\0') {
		stale = t->last_nonce == NULL || strcmp(req->response_nonce, t->last_nonce) != 0;
		if (req->error_detail) {
			clean(detail, sizeof(detail), req->error_detail->message);
			logf_(srv, "NACK stream=%u mode=delta type=%s version=%s nonce=%s code=%d error_detail=%s%s", st->id,
			      req->type_url, stale || !t->last_version ? "" : t->last_version, req->response_nonce,
			      req->error_detail->code, detail, stale ? " stale=1" : "");
		} else {
			logf_(srv, "ACK stream=%u mode=delta type=%s version=%s nonce=%s%s", st->id, req->type_url,
			      stale || !t->last_version ? "" : t->last_version, req->response_nonce, stale ? " stale=1" : "");
		}
	}
	first = !t->seen;
	if (!first && req->n_resource_names_subscribe == 0 && req->n_resource_names_unsubscribe == 0)
		return;
	log_delta_request(st, req);
	t->seen = true;
	if (first)
		for (i = 0; i < req->n_initial_resource_versions; i++)
			sk_strmap_put(&t->known, req->initial_resource_versions[i]->key,
				      req->initial_resource_versions[i]->value);
	changed = delta_subscribe(t, req, first);
	if (first || changed)
		delta_send(st, t, first);
}

/* ---------------------------------------------------------------- calls */

static void on_request_bytes(struct srv_stream *st, const uint8_t *data, size_t len)
{
	if (st->delta) {
		Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req =
			envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, len, data);

		if (req == NULL) {
			logf_(st->srv, "BAD_REQUEST stream=%u bytes=%zu", st->id, len);
			return;
		}
		on_delta_request(st, req);
		envoy__service__discovery__v3__delta_discovery_request__free_unpacked(req, NULL);
	} else {
		Envoy__Service__Discovery__V3__DiscoveryRequest *req =
			envoy__service__discovery__v3__discovery_request__unpack(NULL, len, data);

		if (req == NULL) {
			logf_(st->srv, "BAD_REQUEST stream=%u bytes=%zu", st->id, len);
			return;
		}
		on_sotw_request(st, req);
		envoy__service__discovery__v3__discovery_request__free_unpacked(req, NULL);
	}
}

static void start_recv(struct srv_stream *st)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &st->recv_buf;
	start_batch(st, &op, 1, &st->op_recv);
}

/* The client half-closed: answer with OK. */
static void send_status(struct srv_stream *st, grpc_status_code code, const char *details, bool with_headers)
{
	grpc_op ops[3];
	grpc_slice d = grpc_slice_from_static_string(details);
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	if (with_headers) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
		ops[n++].data.recv_close_on_server.cancelled = &st->cancelled;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n].data.send_status_from_server.status_details = &d;
	n++;
	start_batch(st, ops, n, &st->op_status);
}

/* One request in; the next receive out. A NULL message is the client's half-close. */
static void on_recv(struct srv_stream *st, bool success)
{
	grpc_byte_buffer_reader r;
	grpc_slice all;

	if (!success || st->closed)
		return;
	if (st->recv_buf == NULL) {
		send_status(st, GRPC_STATUS_OK, "", false);
		return;
	}
	if (grpc_byte_buffer_reader_init(&r, st->recv_buf)) {
		all = grpc_byte_buffer_reader_readall(&r);
		grpc_byte_buffer_reader_destroy(&r);
		on_request_bytes(st, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
		grpc_slice_unref(all);
	}
	grpc_byte_buffer_destroy(st->recv_buf);
	st->recv_buf = NULL;
	start_recv(st);
}

static struct srv_stream *stream_alloc(struct sk_xds_server *srv)
{
	struct srv_stream *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->srv = srv;
	st->op_new = (struct sop){SOP_NEW_CALL, st};
	st->op_meta = (struct sop){SOP_META, st};
	st->op_recv = (struct sop){SOP_RECV, st};
	st->op_send = (struct sop){SOP_SEND, st};
	st->op_close = (struct sop){SOP_CLOSE, st};
	st->op_status = (struct sop){SOP_STATUS, st};
	grpc_call_details_init(&st->details);
	grpc_metadata_array_init(&st->md);
	return st;
}

/* Releases a call gRPC is done with. */
static void stream_free(struct srv_stream *st)
{
	struct send_item *it, *next;
	size_t i;

	if (st->prev)
		st->prev->next = st->next;
	else if (st->srv->streams == st)
		st->srv->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	for (it = st->q_head; it; it = next) {
		next = it->next;
		grpc_byte_buffer_destroy(it->buf);
		free(it);
	}
	if (st->sending)
		grpc_byte_buffer_destroy(st->sending);
	if (st->recv_buf)
		grpc_byte_buffer_destroy(st->recv_buf);
	for (i = 0; i < st->n_types; i++)
		free_type(st->types[i]);
	free(st->types);
	grpc_call_details_destroy(&st->details);
	grpc_metadata_array_destroy(&st->md);
	if (st->call)
		grpc_call_unref(st->call);
	free(st);
}

/* Asks gRPC for the next incoming call. */
static void request_call(struct sk_xds_server *srv)
{
	struct srv_stream *st;

	if (srv->stopping || (st = stream_alloc(srv)) == NULL)
		return;
	if (grpc_server_request_call(srv->server, &st->call, &st->details, &st->md, srv->cq, srv->cq, &st->op_new) !=
	    GRPC_CALL_OK) {
		stream_free(st);
		return;
	}
	srv->waiting = st;
}

/* Which protocol a method speaks; -1 when we do not serve it. */
static int method_mode(grpc_slice method)
{
	static const struct {
		const char *name;
		bool delta;
	} methods[] = {
		{SK_ADS_METHOD_SOTW, false}, {SK_ADS_METHOD_DELTA, true},
		{SK_SDS_METHOD_SOTW, false}, {SK_SDS_METHOD_DELTA, true},
	};
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (grpc_slice_str_cmp(method, methods[i].name) == 0)
			return methods[i].delta;
	return -1;
}

/* The call's metadata as "key=value,...", without gRPC's own headers. */
static const char *metadata_text(const struct srv_stream *st, char *buf, size_t len)
{
	size_t used = 0, i;
	int w;

	buf[0] = '\0';
	for (i = 0; i < st->md.count; i++) {
		const grpc_metadata *m = &st->md.metadata[i];

		if (GRPC_SLICE_LENGTH(m->key) >= 5 && memcmp(GRPC_SLICE_START_PTR(m->key), "grpc-", 5) == 0)
			continue;
		w = snprintf(buf + used, len - used, "%s%.*s=%.*s", used ? "," : "", (int)GRPC_SLICE_LENGTH(m->key),
			     (const char *)GRPC_SLICE_START_PTR(m->key), (int)GRPC_SLICE_LENGTH(m->value),
			     (const char *)GRPC_SLICE_START_PTR(m->value));
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
	return buf;
}

/* A call arrived: ask for the next, then serve this one if its method is ours. */
static void on_new_call(struct sk_xds_server *srv, struct srv_stream *st, bool success)
{
	char *method, *authority, md[1024];
	grpc_op op;
	int mode;

	srv->waiting = NULL;
	if (!success) {
		stream_free(st);
		return;
	}
	st->id = ++srv->next_id;
	st->next = srv->streams;
	if (srv->streams)
		srv->streams->prev = st;
	srv->streams = st;
	request_call(srv);
	mode = method_mode(st->details.method);
	method = grpc_slice_to_c_string(st->details.method);
	authority = grpc_slice_to_c_string(st->details.host);
	logf_(srv, "STREAM stream=%u method=%s authority=%s metadata=%s", st->id, method ? method : "?",
	      authority ? authority : "?", metadata_text(st, md, sizeof(md)));
	gpr_free(method);
	gpr_free(authority);
	if (mode < 0) {
		send_status(st, GRPC_STATUS_UNIMPLEMENTED, "unknown method", true);
		return;
	}
	st->delta = mode == 1;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	start_batch(st, &op, 1, &st->op_meta);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &st->cancelled;
	start_batch(st, &op, 1, &st->op_close);
	start_recv(st);
}

/* One completion. */
static void dispatch(struct sk_xds_server *srv, struct sop *op, bool success)
{
	struct srv_stream *st = op->st;

	if (op->kind == SOP_SHUTDOWN) {
		srv->shut_down = true;
		return;
	}
	if (op->kind == SOP_NEW_CALL) {
		on_new_call(srv, st, success);
		return;
	}
	st->in_flight--;
	switch (op->kind) {
	case SOP_RECV:
		on_recv(st, success);
		break;
	case SOP_SEND:
		grpc_byte_buffer_destroy(st->sending);
		st->sending = NULL;
		if (success)
			pump(st);
		break;
	case SOP_CLOSE:
		st->closed = true;
		logf_(srv, "STREAM_END stream=%u cancelled=%d", st->id, st->cancelled);
		break;
	case SOP_STATUS:
		if (st->in_flight == 0) /* unknown method: this batch also waited for the close */
			st->closed = true;
		break;
	default:
		break;
	}
	if (st->closed && st->in_flight == 0)
		stream_free(st);
}

/* ---------------------------------------------------------------- public */

/* After grpc_completion_queue_shutdown: waits for the queue to report it. */
static void drain_queue(grpc_completion_queue *cq)
{
	grpc_event ev;

	do
		ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	while (ev.type != GRPC_QUEUE_SHUTDOWN);
}

struct sk_xds_server *sk_xds_server_create(const struct sk_xds_server_opts *o, char *err, size_t errlen)
{
	struct sk_xds_server *srv = calloc(1, sizeof(*srv));
	grpc_server_credentials *creds;
	size_t i;

	if (srv == NULL || o->n_listen == 0 || o->n_listen > MAX_LISTEN) {
		snprintf(err, errlen, "between 1 and %d listen addresses", MAX_LISTEN);
		free(srv);
		return NULL;
	}
	grpc_init();
	srv->log = o->log;
	srv->log_times = o->log_times;
	srv->op_shutdown.kind = SOP_SHUTDOWN;
	srv->cq = grpc_completion_queue_create_for_next(NULL);
	srv->server = grpc_server_create(NULL, NULL);
	grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
	for (i = 0; i < o->n_listen; i++) {
		creds = grpc_insecure_server_credentials_create();
		srv->ports[i] = grpc_server_add_http2_port(srv->server, o->listen[i], creds);
		grpc_server_credentials_release(creds);
		if (srv->ports[i] == 0) {
			snprintf(err, errlen, "cannot listen on '%s'", o->listen[i]);
			grpc_server_destroy(srv->server); /* never started: no shutdown needed */
			grpc_completion_queue_shutdown(srv->cq);
			drain_queue(srv->cq);
			grpc_completion_queue_destroy(srv->cq);
			free(srv);
			grpc_shutdown_blocking();
			return NULL;
		}
		srv->n_ports++;
	}
	grpc_server_start(srv->server);
	request_call(srv);
	return srv;
}

int sk_xds_server_port(const struct sk_xds_server *srv, size_t i)
{
	return i < srv->n_ports && srv->ports[i] > 0 && srv->ports[i] != 1 ? srv->ports[i] : 0;
}

void sk_xds_server_set_store(struct sk_xds_server *srv, struct sk_xds_store *store)
{
	struct srv_stream *st;
	size_t i;

	sk_xds_store_free(srv->store);
	srv->store = store;
	logf_(srv, "STORE version=%s resources=%zu", store ? store->version : "", store ? store->n : 0);
	for (st = srv->streams; st; st = st->next) {
		if (st->closed)
			continue;
		for (i = 0; i < st->n_types; i++) {
			if (!st->types[i]->seen)
				continue;
			if (st->delta)
				delta_send(st, st->types[i], false);
			else
				sotw_send(st, st->types[i], false);
		}
	}
}

int sk_xds_server_poll(struct sk_xds_server *srv, int timeout_ms)
{
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
	int handled = 0;

	for (;;) {
		grpc_event ev = grpc_completion_queue_next(srv->cq, deadline, NULL);

		if (ev.type != GRPC_OP_COMPLETE)
			return handled;
		dispatch(srv, ev.tag, ev.success != 0);
		handled++;
	}
}

/* Appends a length-delimited field to buf. */
static size_t put_field(uint8_t *buf, size_t at, unsigned field, const char *s)
{
	size_t len = strlen(s);

	buf[at++] = (uint8_t)(field << 3 | 2);
	buf[at++] = (uint8_t)len; /* callers keep strings under 128 bytes */
	memcpy(buf + at, s, len);
	return at + len;
}

void sk_xds_server_send_garbage(struct sk_xds_server *srv)
{
	struct srv_stream *st;
	uint8_t buf[512];
	char nonce[32];
	size_t n;

	for (st = srv->streams; st; st = st->next) {
		const char *url = st->n_types ? st->types[0]->type_url : SK_TYPE_URL_CLUSTER;
		struct srv_type *t = get_type(st, url);

		if (st->closed || strlen(url) > 120 || t == NULL)
			continue;
		snprintf(nonce, sizeof(nonce), "garbage-%u", ++srv->garbage_seq);
		n = put_field(buf, 0, 4, url);
		n = put_field(buf, n, 5, nonce);
		buf[n++] = 2 << 3 | 2; /* resources: 100 bytes announced, 2 present */
		buf[n++] = 100;
		buf[n++] = 0x0a;
		buf[n++] = 0x01;
		send_bytes(st, buf, n);
		set_str(&t->last_nonce, nonce);
		logf_(srv, "SEND_GARBAGE stream=%u type=%s nonce=%s", st->id, url, nonce);
	}
}

void sk_xds_server_send_unknown_type(struct sk_xds_server *srv)
{
	Envoy__Service__Discovery__V3__DiscoveryResponse sotw = ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse delta =
		ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
	struct srv_stream *st;
	struct srv_type *t;
	char nonce[32];

	for (st = srv->streams; st; st = st->next) {
		if (st->closed || (t = get_type(st, UNKNOWN_TYPE_URL)) == NULL)
			continue;
		snprintf(nonce, sizeof(nonce), "unknown-%u", ++srv->unknown_seq);
		if (st->delta) {
			delta.type_url = UNKNOWN_TYPE_URL;
			delta.nonce = nonce;
			delta.system_version_info = "unknown";
			send_message(st, &delta.base);
		} else {
			sotw.type_url = UNKNOWN_TYPE_URL;
			sotw.nonce = nonce;
			sotw.version_info = "unknown";
			send_message(st, &sotw.base);
		}
		set_str(&t->last_nonce, nonce);
		set_str(&t->last_version, "unknown");
		logf_(srv, "SEND_UNKNOWN stream=%u mode=%s type=%s nonce=%s", st->id, mode_name(st), UNKNOWN_TYPE_URL,
		      nonce);
	}
}

size_t sk_xds_server_streams(const struct sk_xds_server *srv)
{
	const struct srv_stream *st;
	size_t n = 0;

	for (st = srv->streams; st; st = st->next)
		n += !st->closed;
	return n;
}

/* Drains the queue until the server's shutdown and every call are accounted for (bounded). */
static void drain(struct sk_xds_server *srv)
{
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(10000, GPR_TIMESPAN));

	while (!srv->shut_down || srv->streams != NULL || srv->waiting != NULL) {
		grpc_event ev = grpc_completion_queue_next(srv->cq, deadline, NULL);

		if (ev.type != GRPC_OP_COMPLETE)
			break;
		dispatch(srv, ev.tag, ev.success != 0);
	}
}

void sk_xds_server_destroy(struct sk_xds_server *srv)
{
	if (srv == NULL)
		return;
	srv->stopping = true;
	grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->op_shutdown);
	grpc_server_cancel_all_calls(srv->server);
	drain(srv);
	grpc_server_destroy(srv->server);
	grpc_completion_queue_shutdown(srv->cq);
	drain_queue(srv->cq);
	grpc_completion_queue_destroy(srv->cq);
	sk_xds_store_free(srv->store);
	free(srv);
	grpc_shutdown_blocking();
}
