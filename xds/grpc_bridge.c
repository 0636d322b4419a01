/* grpc_bridge: gRPC core streams on a completion-queue thread, delivered to a libev loop.
 * See grpc_bridge.h.
 *
 * Every operation a stream starts carries a tag: one of its four `struct op` (start, recv,
 * send, status), each in flight at most once. The thread moves completed ops onto the
 * bridge's intrusive FIFO under a mutex and wakes the loop with ev_async_send; the loop
 * takes the whole FIFO and dispatches it. So the thread never allocates, and a stream is
 * freed only on the loop, once its owner has closed it and no op is in flight. */
#include "xds/grpc_bridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>
#include <grpc/support/time.h>

#include "skiff_protos.h"

enum op_kind { OP_START, OP_RECV, OP_SEND, OP_STATUS };

struct op {
	struct sk_grpc_stream *s;
	enum op_kind kind;
	bool success;         /* set by the thread when the op completes */
	struct op *next;      /* in the bridge's completed FIFO */
};

struct send_item {
	grpc_byte_buffer *buf;
	struct send_item *next;
};

/* One call and its channel. Owned by the bridge (on its list) until freed. */
struct sk_grpc_stream {
	struct sk_grpc_bridge *b;
	struct sk_grpc_stream *prev, *next;
	grpc_channel *channel;
	grpc_call *call;
	struct op op_start, op_recv, op_send, op_status;
	int in_flight;                 /* ops started and not yet dispatched */
	bool closed;                   /* the owner let go: no more callbacks */
	bool finished;                 /* the status arrived */
	bool in_callback;              /* a callback of this stream is running */
	grpc_metadata *md;             /* initial metadata, kept until op_start completes */
	size_t n_md;
	grpc_metadata_array recv_md, trailing_md;
	grpc_byte_buffer *recv_buf;
	grpc_status_code status;
	grpc_slice status_details;
	const char *error_string;      /* gpr_malloc'd by gRPC */
	grpc_byte_buffer *sending;     /* the one SEND_MESSAGE in flight */
	struct send_item *queue_head, *queue_tail;
	size_t queued;
	struct sk_grpc_stream_callbacks cb;
	void *ctx;
};

struct sk_grpc_bridge {
	struct ev_loop *loop;
	ev_async wake;
	grpc_completion_queue *cq;
	pthread_t thread;
	pthread_mutex_t mu;
	struct op *done_head, *done_tail;  /* completed ops, under mu */
	struct sk_grpc_stream *streams;
};

/* ---------------------------------------------------------------- the thread */

/* The completion-queue thread: waits on gRPC and queues each completion for the loop. */
static void *cq_thread(void *arg)
{
	struct sk_grpc_bridge *b = arg;

	for (;;) {
		grpc_event ev = grpc_completion_queue_next(b->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		struct op *op;

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		op = ev.tag;
		op->success = ev.success != 0;
		op->next = NULL;
		pthread_mutex_lock(&b->mu);
		if (b->done_tail)
			b->done_tail->next = op;
		else
			b->done_head = op;
		b->done_tail = op;
		pthread_mutex_unlock(&b->mu);
		ev_async_send(b->loop, &b->wake);
	}
	return NULL;
}

/* ---------------------------------------------------------------- streams */

static void free_send_queue(struct sk_grpc_stream *s)
{
	struct send_item *it, *next;

	for (it = s->queue_head; it; it = next) {
		next = it->next;
		grpc_byte_buffer_destroy(it->buf);
		free(it);
	}
	s->queue_head = s->queue_tail = NULL;
	s->queued = 0;
}

static void free_md(struct sk_grpc_stream *s)
{
	size_t i;

	for (i = 0; i < s->n_md; i++) {
		grpc_slice_unref(s->md[i].key);
		grpc_slice_unref(s->md[i].value);
	}
	free(s->md);
	s->md = NULL;
	s->n_md = 0;
}

/* Releases everything of a stream whose ops have all come back. */
static void stream_free(struct sk_grpc_stream *s)
{
	struct sk_grpc_bridge *b = s->b;

	if (s->prev)
		s->prev->next = s->next;
	else
		b->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free_send_queue(s);
	free_md(s);
	if (s->sending)
		grpc_byte_buffer_destroy(s->sending);
	if (s->recv_buf)
		grpc_byte_buffer_destroy(s->recv_buf);
	grpc_metadata_array_destroy(&s->recv_md);
	grpc_metadata_array_destroy(&s->trailing_md);
	grpc_slice_unref(s->status_details);
	gpr_free((void *)s->error_string);
	if (s->call)
		grpc_call_unref(s->call);
	if (s->channel)
		grpc_channel_destroy(s->channel);
	free(s);
}

/* Frees a stream its owner closed, once gRPC holds none of its ops and no callback runs. */
static void maybe_free(struct sk_grpc_stream *s)
{
	if (s->closed && s->in_flight == 0 && !s->in_callback)
		stream_free(s);
}

/* Starts a batch tagged with one of the stream's ops and counts it in flight. */
static grpc_call_error start_ops(struct sk_grpc_stream *s, const grpc_op *ops, size_t n, struct op *tag)
{
	grpc_call_error rc = grpc_call_start_batch(s->call, ops, n, tag, NULL);

	if (rc == GRPC_CALL_OK)
		s->in_flight++;
	return rc;
}

/* Starts the next RECV_MESSAGE (with RECV_INITIAL_METADATA the first time). */
static grpc_call_error start_recv(struct sk_grpc_stream *s, bool first)
{
	grpc_op ops[2];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	if (first) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n].data.recv_initial_metadata.recv_initial_metadata = &s->recv_md;
		n++;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n].data.recv_message.recv_message = &s->recv_buf;
	n++;
	return start_ops(s, ops, n, &s->op_recv);
}

/* Writes the oldest queued message if no send is in flight. */
static void pump_send(struct sk_grpc_stream *s)
{
	struct send_item *it = s->queue_head;
	grpc_op op;

	if (s->sending || it == NULL || s->closed || s->finished)
		return;
	s->queue_head = it->next;
	if (s->queue_head == NULL)
		s->queue_tail = NULL;
	s->queued--;
	s->sending = it->buf;
	free(it);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = s->sending;
	if (start_ops(s, &op, 1, &s->op_send) != GRPC_CALL_OK) {
		/* Only possible when the call is already over: the status will follow. */
		grpc_byte_buffer_destroy(s->sending);
		s->sending = NULL;
		free_send_queue(s);
	}
}

/* A message arrived: hand it over contiguous, then ask for the next one. */
static void on_recv(struct sk_grpc_stream *s, bool success)
{
	grpc_byte_buffer_reader r;
	grpc_slice all;

	if (!success || s->recv_buf == NULL)
		return; /* the stream is over; the status tells why */
	if (!grpc_byte_buffer_reader_init(&r, s->recv_buf)) {
		grpc_byte_buffer_destroy(s->recv_buf);
		s->recv_buf = NULL;
		grpc_call_cancel_with_status(s->call, GRPC_STATUS_INTERNAL, "undecompressable message", NULL);
		return;
	}
	all = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	grpc_byte_buffer_destroy(s->recv_buf);
	s->recv_buf = NULL;
	if (!s->closed && s->cb.on_message)
		s->cb.on_message(s->ctx, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
	grpc_slice_unref(all);
	if (!s->closed && !s->finished && start_recv(s, false) != GRPC_CALL_OK)
		grpc_call_cancel(s->call, NULL);
}

/* The final status: the last callback of the stream. */
static void on_status(struct sk_grpc_stream *s)
{
	char *details;

	s->finished = true;
	free_send_queue(s);
	if (s->closed || s->cb.on_close == NULL)
		return;
	details = grpc_slice_to_c_string(s->status_details);
	if (details && details[0] == '\0' && s->error_string) {
		gpr_free(details);
		details = gpr_strdup(s->error_string);
	}
	s->cb.on_close(s->ctx, s->status, details ? details : "");
	gpr_free(details);
}

/* Runs on the loop for one completed op. */
static void dispatch(struct op *op)
{
	struct sk_grpc_stream *s = op->s;

	s->in_flight--;
	s->in_callback = true;
	switch (op->kind) {
	case OP_START:
		free_md(s);
		if (op->success && !s->closed && !s->finished && s->cb.on_ready)
			s->cb.on_ready(s->ctx);
		break;
	case OP_RECV:
		on_recv(s, op->success);
		break;
	case OP_SEND:
		grpc_byte_buffer_destroy(s->sending);
		s->sending = NULL;
		if (op->success)
			pump_send(s);
		else
			free_send_queue(s);
		break;
	case OP_STATUS:
		on_status(s);
		break;
	}
	s->in_callback = false;
	maybe_free(s);
}

/* Takes the completed ops off the thread's FIFO. */
static struct op *take_done(struct sk_grpc_bridge *b)
{
	struct op *head;

	pthread_mutex_lock(&b->mu);
	head = b->done_head;
	b->done_head = b->done_tail = NULL;
	pthread_mutex_unlock(&b->mu);
	return head;
}

/* The loop side of ev_async: dispatch everything the thread queued, in order. */
static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	struct sk_grpc_bridge *b = (struct sk_grpc_bridge *)((char *)w - offsetof(struct sk_grpc_bridge, wake));
	struct op *op, *next;

	(void)loop;
	(void)revents;
	for (op = take_done(b); op; op = next) {
		next = op->next;
		dispatch(op);
	}
}

/* ---------------------------------------------------------------- bridge */

struct sk_grpc_bridge *sk_grpc_bridge_create(struct ev_loop *loop)
{
	struct sk_grpc_bridge *b = calloc(1, sizeof(*b));
	sigset_t all, old;
	int rc;

	if (b == NULL)
		return NULL;
	grpc_init();
	b->loop = loop;
	b->cq = grpc_completion_queue_create_for_next(NULL);
	pthread_mutex_init(&b->mu, NULL);
	ev_async_init(&b->wake, on_wake);
	ev_async_start(loop, &b->wake);
	/* Signals belong to the loop's thread, not to ours. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&b->thread, NULL, cq_thread, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		ev_async_stop(loop, &b->wake);
		grpc_completion_queue_shutdown(b->cq);
		grpc_completion_queue_destroy(b->cq);
		pthread_mutex_destroy(&b->mu);
		free(b);
		grpc_shutdown_blocking();
		return NULL;
	}
	return b;
}

void sk_grpc_bridge_destroy(struct sk_grpc_bridge *b)
{
	struct sk_grpc_stream *s, *next;
	struct op *op, *onext;

	if (b == NULL)
		return;
	for (s = b->streams; s; s = s->next) {
		s->closed = true;
		if (s->call && !s->finished)
			grpc_call_cancel(s->call, NULL);
	}
	/* Every op of a cancelled call completes; then the queue reports its shutdown. */
	grpc_completion_queue_shutdown(b->cq);
	pthread_join(b->thread, NULL);
	ev_async_stop(b->loop, &b->wake);
	for (op = take_done(b); op; op = onext) {
		onext = op->next;
		dispatch(op);
	}
	for (s = b->streams; s; s = next) { /* none left in practice */
		next = s->next;
		stream_free(s);
	}
	grpc_completion_queue_destroy(b->cq);
	pthread_mutex_destroy(&b->mu);
	free(b);
	grpc_shutdown_blocking();
}

/* ---------------------------------------------------------------- open, send, close */

static grpc_channel_credentials *make_creds(const struct sk_grpc_creds *c, char *err, size_t errlen)
{
	grpc_ssl_pem_key_cert_pair pair;
	grpc_channel_credentials *creds;

	if (c == NULL || c->kind == SK_GRPC_CREDS_INSECURE)
		return grpc_insecure_credentials_create();
	if ((c->cert_chain_pem == NULL) != (c->private_key_pem == NULL)) {
		snprintf(err, errlen, "a client certificate needs both its chain and its private key");
		return NULL;
	}
	pair.cert_chain = c->cert_chain_pem;
	pair.private_key = c->private_key_pem;
	creds = grpc_ssl_credentials_create(c->root_certs_pem, c->cert_chain_pem ? &pair : NULL, NULL, NULL);
	if (creds == NULL)
		snprintf(err, errlen, "invalid TLS credentials");
	return creds;
}

/* A channel of its own per stream: the target, the credentials, the receive limit. */
static grpc_channel *make_channel(const struct sk_grpc_stream_opts *o, char *err, size_t errlen)
{
	grpc_arg args[2];
	grpc_channel_args cargs = {.num_args = 0, .args = args};
	grpc_channel_credentials *creds = make_creds(o->creds, err, errlen);
	grpc_channel *ch;
	size_t max = o->max_receive_bytes ? o->max_receive_bytes : SK_GRPC_MAX_RECEIVE_DEFAULT;

	if (creds == NULL)
		return NULL;
	memset(args, 0, sizeof(args));
	args[cargs.num_args].type = GRPC_ARG_INTEGER;
	args[cargs.num_args].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[cargs.num_args].value.integer = max > 0x7fffffff ? 0x7fffffff : (int)max;
	cargs.num_args++;
	if (o->authority) {
		args[cargs.num_args].type = GRPC_ARG_STRING;
		args[cargs.num_args].key = GRPC_ARG_DEFAULT_AUTHORITY;
		args[cargs.num_args].value.string = (char *)o->authority;
		cargs.num_args++;
	}
	ch = grpc_channel_create(o->target, creds, &cargs);
	grpc_channel_credentials_release(creds);
	if (ch == NULL)
		snprintf(err, errlen, "cannot create a gRPC channel to '%s'", o->target);
	return ch;
}

/* Copies the initial metadata into slices that live until the start op completes. */
static int copy_md(struct sk_grpc_stream *s, const struct sk_grpc_stream_opts *o, char *err, size_t errlen)
{
	size_t i;

	if (o->n_metadata == 0)
		return 0;
	s->md = calloc(o->n_metadata, sizeof(*s->md));
	if (s->md == NULL)
		return -ENOMEM;
	for (i = 0; i < o->n_metadata; i++) {
		s->md[i].key = grpc_slice_from_copied_string(o->metadata[i].key);
		s->md[i].value = grpc_slice_from_copied_string(o->metadata[i].value ? o->metadata[i].value : "");
		s->n_md = i + 1;
		if (!grpc_header_key_is_legal(s->md[i].key) ||
		    (!grpc_is_binary_header(s->md[i].key) && !grpc_header_nonbin_value_is_legal(s->md[i].value))) {
			snprintf(err, errlen, "initial_metadata[%zu]: invalid header '%s'", i, o->metadata[i].key);
			return -EINVAL;
		}
	}
	return 0;
}

/* The three batches of a client stream: send headers; wait for the status; receive. */
static int start_call(struct sk_grpc_stream *s)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	op.data.send_initial_metadata.count = s->n_md;
	op.data.send_initial_metadata.metadata = s->md;
	if (start_ops(s, &op, 1, &s->op_start) != GRPC_CALL_OK)
		return -EIO;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op.data.recv_status_on_client.trailing_metadata = &s->trailing_md;
	op.data.recv_status_on_client.status = &s->status;
	op.data.recv_status_on_client.status_details = &s->status_details;
	op.data.recv_status_on_client.error_string = &s->error_string;
	if (start_ops(s, &op, 1, &s->op_status) != GRPC_CALL_OK)
		return -EIO;
	if (start_recv(s, true) != GRPC_CALL_OK)
		return -EIO;
	return 0;
}

static struct sk_grpc_stream *stream_new(struct sk_grpc_bridge *b, const struct sk_grpc_stream_opts *o)
{
	struct sk_grpc_stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->b = b;
	s->cb = o->cb;
	s->ctx = o->ctx;
	s->op_start = (struct op){.s = s, .kind = OP_START};
	s->op_recv = (struct op){.s = s, .kind = OP_RECV};
	s->op_send = (struct op){.s = s, .kind = OP_SEND};
	s->op_status = (struct op){.s = s, .kind = OP_STATUS};
	s->status_details = grpc_empty_slice();
	grpc_metadata_array_init(&s->recv_md);
	grpc_metadata_array_init(&s->trailing_md);
	s->next = b->streams;
	if (b->streams)
		b->streams->prev = s;
	b->streams = s;
	return s;
}

struct sk_grpc_stream *sk_grpc_stream_open(struct sk_grpc_bridge *b, const struct sk_grpc_stream_opts *o,
					   char *err, size_t errlen)
{
	struct sk_grpc_stream *s;
	grpc_slice method;

	if (o->target == NULL || o->target[0] == '\0' || o->method == NULL || o->method[0] != '/') {
		snprintf(err, errlen, "a gRPC stream needs a target and a method '/package.Service/Method'");
		return NULL;
	}
	s = stream_new(b, o);
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (copy_md(s, o, err, errlen) < 0 || (s->channel = make_channel(o, err, errlen)) == NULL) {
		s->closed = true;
		maybe_free(s);
		return NULL;
	}
	method = grpc_slice_from_copied_string(o->method);
	s->call = grpc_channel_create_call(s->channel, NULL, GRPC_PROPAGATE_DEFAULTS, b->cq, method, NULL,
					   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_slice_unref(method);
	if (s->call == NULL || start_call(s) < 0) {
		snprintf(err, errlen, "cannot start the gRPC call %s on '%s'", o->method, o->target);
		s->closed = true;
		if (s->call)
			grpc_call_cancel(s->call, NULL);
		maybe_free(s); /* or later, once the started ops come back */
		return NULL;
	}
	return s;
}

int sk_grpc_stream_send(struct sk_grpc_stream *s, const void *data, size_t len)
{
	struct send_item *it;
	grpc_slice slice;

	if (s->closed || s->finished)
		return -EPIPE;
	it = calloc(1, sizeof(*it));
	if (it == NULL)
		return -ENOMEM;
	slice = grpc_slice_from_copied_buffer(data, len);
	it->buf = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	if (s->queue_tail)
		s->queue_tail->next = it;
	else
		s->queue_head = it;
	s->queue_tail = it;
	s->queued++;
	pump_send(s);
	return 0;
}

size_t sk_grpc_stream_pending(const struct sk_grpc_stream *s)
{
	return s->queued + (s->sending != NULL);
}

void sk_grpc_stream_close(struct sk_grpc_stream *s)
{
	if (s == NULL || s->closed)
		return;
	s->closed = true;
	free_send_queue(s);
	if (s->call && !s->finished)
		grpc_call_cancel(s->call, NULL);
	maybe_free(s);
}

/* ---------------------------------------------------------------- targets */

typedef Envoy__Config__Cluster__V3__Cluster cluster_pb;
typedef Envoy__Config__Core__V3__Address address_pb;

/* The address of the cluster's first endpoint, or NULL with err. */
static const address_pb *first_endpoint(const cluster_pb *c, char *err, size_t errlen)
{
	const Envoy__Config__Endpoint__V3__ClusterLoadAssignment *la = c->load_assignment;
	size_t i, j;

	for (i = 0; la != NULL && i < la->n_endpoints; i++) {
		for (j = 0; j < la->endpoints[i]->n_lb_endpoints; j++) {
			const Envoy__Config__Endpoint__V3__LbEndpoint *lb = la->endpoints[i]->lb_endpoints[j];

			if (lb->host_identifier_case == ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT &&
			    lb->endpoint->address != NULL)
				return lb->endpoint->address;
		}
	}
	snprintf(err, errlen, "cluster '%s': load_assignment has no endpoint address", c->name);
	return NULL;
}

/* socket_address -> ipv4:/ipv6:/dns: target. */
static int socket_target(const cluster_pb *c, const Envoy__Config__Core__V3__SocketAddress *sa, char *buf,
			 size_t len, char *err, size_t errlen)
{
	unsigned char tmp[sizeof(struct in6_addr)];
	int n;

	if (sa->port_specifier_case != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE ||
	    sa->port_value == 0 || sa->port_value > 65535) {
		snprintf(err, errlen, "cluster '%s': endpoint socket_address needs a port_value", c->name);
		return -EINVAL;
	}
	if (inet_pton(AF_INET, sa->address, tmp) == 1)
		n = snprintf(buf, len, "ipv4:%s:%u", sa->address, sa->port_value);
	else if (inet_pton(AF_INET6, sa->address, tmp) == 1)
		n = snprintf(buf, len, "ipv6:[%s]:%u", sa->address, sa->port_value);
	else if (sa->address[0] != '\0')
		n = snprintf(buf, len, "dns:///%s:%u", sa->address, sa->port_value);
	else {
		snprintf(err, errlen, "cluster '%s': endpoint socket_address has no address", c->name);
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= len) {
		snprintf(err, errlen, "cluster '%s': target too long", c->name);
		return -EINVAL;
	}
	return 0;
}

int sk_grpc_target_from_cluster(const cluster_pb *c, char *buf, size_t len, char *err, size_t errlen)
{
	const address_pb *a;
	int n;

	if (c->transport_socket != NULL && strcmp(c->transport_socket->name, "envoy.transport_sockets.raw_buffer") != 0) {
		snprintf(err, errlen, "cluster '%s': transport_socket '%s' on an xDS cluster is not supported yet",
			 c->name, c->transport_socket->name);
		return -ENOTSUP;
	}
	if ((a = first_endpoint(c, err, errlen)) == NULL)
		return -EINVAL;
	switch (a->address_case) {
	case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE:
		if (a->pipe->path[0] == '\0') {
			snprintf(err, errlen, "cluster '%s': endpoint pipe has no path", c->name);
			return -EINVAL;
		}
		if (a->pipe->path[0] == '@')
			n = snprintf(buf, len, "unix-abstract:%s", a->pipe->path + 1);
		else
			n = snprintf(buf, len, "unix:%s", a->pipe->path);
		if (n < 0 || (size_t)n >= len) {
			snprintf(err, errlen, "cluster '%s': target too long", c->name);
			return -EINVAL;
		}
		return 0;
	case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS:
		return socket_target(c, a->socket_address, buf, len, err, errlen);
	default:
		snprintf(err, errlen, "cluster '%s': endpoint address must be a pipe or a socket_address", c->name);
		return -EINVAL;
	}
}
