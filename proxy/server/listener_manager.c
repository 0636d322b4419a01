/* listener_manager: see listener_manager.h. */
#include "proxy/server/listener_manager.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/listener/listener.h"
#include "proxy/network/http_conn.h"
#include "proxy/network/relay.h"
#include "proxy/log/log.h"
#include "proxy/server/server.h"
#include "proxy/server/snapshot.h"
#include "proxy/server/workers.h"
#include "xds/translate/route.h"

#define DRAIN_POLL_SECONDS 0.1

struct sk_snapshot *sk_lm_build(const sk_bootstrap_pb *b, struct sk_stats_store *stats,
				struct sk_stats_shard *shard, struct sk_dns *dns, struct ev_loop *loop,
				uint32_t n_workers, bool bind, char *err, size_t errlen)
{
	const Envoy__Config__Bootstrap__V3__Bootstrap__StaticResources *sr = b->static_resources;
	size_t nc = sr ? sr->n_clusters : 0, nl = sr ? sr->n_listeners : 0, i, built_c = 0, built_l = 0;
	struct sk_cluster **clusters = calloc(nc ? nc : 1, sizeof(*clusters));
	struct sk_listener **listeners = calloc(nl ? nl : 1, sizeof(*listeners));
	struct sk_snapshot *snap;
	char why[1024];

	if (clusters == NULL || listeners == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (; built_c < nc; built_c++) {
		struct sk_cluster_config *cc = sk_cluster_config_new(sr->clusters[built_c], why, sizeof(why));

		clusters[built_c] = cc ? sk_cluster_new(cc, stats, shard, dns, loop, n_workers, why, sizeof(why))
				       : NULL;
		if (clusters[built_c] == NULL) {
			snprintf(err, errlen, "static_resources.clusters[%zu]: %s", built_c, why);
			goto fail;
		}
	}
	for (; built_l < nl; built_l++) {
		struct sk_listener_config *lc = sk_listener_config_new(sr->listeners[built_l], why, sizeof(why));

		if (lc == NULL) {
			snprintf(err, errlen, "static_resources.listeners[%zu]: %s", built_l, why);
			goto fail;
		}
		listeners[built_l] = sk_listener_new(lc, stats);
		if (listeners[built_l] == NULL) {
			sk_listener_config_free(lc);
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		/* bound now (an address in use fails the bootstrap), listening once the workers
		 * start: until the server is initialized connections are refused, as Envoy's */
		if (bind && sk_listener_bind(listeners[built_l], n_workers, false, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "listener '%s': %s", lc->name, why);
			built_l++;
			goto fail;
		}
	}
	snap = sk_snapshot_new(1, listeners, nl, clusters, nc, NULL, 0);
	if (snap != NULL)
		return snap;
	snprintf(err, errlen, "out of memory");
fail:
	for (i = 0; clusters && i < built_c; i++)
		sk_cluster_unref(clusters[i]);
	for (i = 0; listeners && i < built_l; i++)
		sk_listener_unref(listeners[i]);
	free(clusters);
	free(listeners);
	return NULL;
}

/* ---------------------------------------------------------------------------------- */
/* worker tasks                                                                        */

struct install {
	struct sk_snapshot *snap;            /* a reference for the worker */
	size_t n_take, n_gone;
	struct sk_listener **take;           /* pairs (old, new): new takes over old's sockets */
	struct sk_listener **gone;           /* listeners leaving: their sockets close */
	int fds[];                           /* per snapshot listener: this worker's socket or -1 */
};

static bool listed(struct sk_listener *const *v, size_t n, const struct sk_listener *l)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == l)
			return true;
	return false;
}

/* The worker's side of a new configuration: sockets change hands (a replaced listener's go
 * to its successor, so not one connection in an accept queue is lost), leaving listeners
 * stop accepting, new ones start, and new connections get the new snapshot. Connections
 * keep the snapshot they started on. */
static void install_task(struct sk_worker *w, void *arg)
{
	struct install *in = arg;
	struct sk_snapshot *snap = in->snap;
	struct sk_worker_listen **pp = &w->listens;
	size_t i;

	while (*pp) {
		struct sk_worker_listen *wl = *pp;
		bool moved = false;

		for (i = 0; i < in->n_take; i++)
			if (wl->l == in->take[2 * i]) {
				wl->l = in->take[2 * i + 1];
				moved = true;
				break;
			}
		if (!moved && listed(in->gone, in->n_gone, wl->l)) {
			ev_io_stop(w->loop, &wl->io);
			if (wl->owns_fd)
				close(wl->fd);
			*pp = wl->next;
			free(wl);
			continue;
		}
		pp = &wl->next;
	}
	for (i = 0; i < snap->n_listeners; i++) {
		struct sk_worker_listen *wl;

		if (in->fds[i] < 0)
			continue;
		wl = calloc(1, sizeof(*wl));
		if (wl == NULL) {
			close(in->fds[i]);
			continue;
		}
		wl->l = snap->listeners[i];
		wl->fd = in->fds[i];
		wl->owns_fd = true;
		sk_listener_start_accept(w, wl);
	}
	sk_snapshot_unref(w->snapshot);
	w->snapshot = snap;
	if (in->n_take || in->n_gone) {
		/* HTTP/2 connections of draining listeners say GOAWAY now; HTTP/1.1 ones answer
		 * their next request with connection: close */
		for (struct sk_conn *c = w->conns; c != NULL; c = c->next)
			if (c->h2 && atomic_load_explicit(&c->l->draining, memory_order_relaxed))
				sk_h2_conn_drain(c);
	}
	sk_http_pool_retire(w, snap);
	free(in);
}

/* Hands each worker the snapshot and the sockets of its new listeners. From here the
 * workers own the sockets: one SO_REUSEPORT socket each, or, for a pipe, its single
 * socket goes to worker 0. */
int sk_lm_install(struct sk_server *s, struct sk_snapshot *snap, struct sk_listener *const *take, size_t n_take,
		  struct sk_listener *const *gone, size_t n_gone)
{
	uint32_t i, n = sk_workers_count(s->workers);
	size_t k, extra = (2 * n_take + n_gone) * sizeof(struct sk_listener *);

	sk_server_sds_tls_apply(s, snap, NULL); /* contexts whose SDS secrets are here already */
	for (i = 0; i < n; i++) {
		size_t head = sizeof(struct install) + (snap->n_listeners + 1) * sizeof(int);
		struct install *in;

		head = (head + sizeof(void *) - 1) / sizeof(void *) * sizeof(void *);
		in = malloc(head + extra);
		if (in == NULL)
			return -ENOMEM;
		in->snap = sk_snapshot_ref(snap);
		in->n_take = n_take;
		in->n_gone = n_gone;
		in->take = (struct sk_listener **)(void *)((char *)in + head);
		in->gone = in->take + 2 * n_take;
		if (n_take)
			memcpy(in->take, take, 2 * n_take * sizeof(*take));
		if (n_gone)
			memcpy(in->gone, gone, n_gone * sizeof(*gone));
		for (k = 0; k < snap->n_listeners; k++) {
			struct sk_listener *l = snap->listeners[k];
			bool pipe = l->cfg->addr.ss.ss_family == AF_UNIX;

			in->fds[k] = -1;
			if (!l->bound || i >= l->n_fds || (pipe && i > 0))
				continue;
			in->fds[k] = l->fds[i];
			l->fds[i] = -1;
		}
		sk_worker_post(sk_workers_get(s->workers, i), install_task, in);
	}
	for (k = 0; k < snap->n_listeners; k++) {
		struct sk_listener *l = snap->listeners[k];

		if (l->cfg->addr.ss.ss_family == AF_UNIX)
			for (i = 1; i < l->n_fds; i++)
				l->fds[i] = -1; /* the same socket as worker 0's */
	}
	return 0;
}

int sk_lm_start_workers(struct sk_server *s)
{
	uint64_t active = 0;
	char err[512];

	for (size_t k = 0; k < s->snapshot->n_listeners; k++) {
		struct sk_listener *l = s->snapshot->listeners[k];

		active += l->bound;
		if (sk_listener_listen(l, err, sizeof(err)) < 0)
			sk_log_error(SK_LOG_CONFIG, "listener '%s': %s", l->cfg->name, err);
	}
	sk_stat_set(s->shard, s->st.total_listeners_active, active);
	return sk_lm_install(s, s->snapshot, NULL, 0, NULL, 0);
}

static void stop_accept_task(struct sk_worker *w, void *arg)
{
	sk_listener_stop_accept(w, arg != NULL);
	for (struct sk_conn *c = w->conns; c != NULL; c = c->next)
		if (c->h2 && atomic_load_explicit(&c->l->draining, memory_order_relaxed))
			sk_h2_conn_drain(c);
}

/* End of the drain time: closes the connections of the drained listeners. After
 * ?inboundonly the worker still accepts on its other listeners, and their connections
 * (the app's outbound calls while the pod terminates) are left alone; once nothing
 * accepts any more (a drain of all listeners, or SIGTERM), every connection goes. */
static void close_drained_task(struct sk_worker *w, void *arg)
{
	struct sk_conn *c, *next;

	(void)arg;
	if (w->listens == NULL) {
		sk_listener_close_all(w);
		return;
	}
	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		if (c->l->cfg->direction == SK_DIR_INBOUND)
			sk_conn_close(c);
	}
}

static void release_task(struct sk_worker *w, void *arg)
{
	size_t i;

	(void)arg;
	sk_listener_stop_accept(w, false);
	sk_listener_close_all(w);
	while (w->dead) {
		struct sk_conn *c = w->dead;

		w->dead = c->next;
		sk_snapshot_unref(c->snap);
		free(c->inspected);
		free(c);
	}
	ev_idle_stop(w->loop, &w->reaper);
	sk_relay_thread_cleanup();
	sk_regex_thread_free();
	sk_h2_thread_cleanup();
	sk_h2_up_thread_cleanup();
	if (w->snapshot) {
		for (i = 0; i < w->snapshot->n_clusters; i++)
			sk_cluster_slot_release(w->snapshot->clusters[i], w->index);
		sk_snapshot_unref(w->snapshot);
		w->snapshot = NULL;
	}
}

static void post_all(struct sk_server *s, sk_worker_task_fn fn, void *arg)
{
	uint32_t i, n = sk_workers_count(s->workers);

	for (i = 0; i < n; i++)
		sk_worker_post(sk_workers_get(s->workers, i), fn, arg);
}

void sk_lm_stop_workers(struct sk_server *s)
{
	if (s->workers)
		post_all(s, release_task, NULL);
}

uint64_t sk_lm_active_connections(struct sk_server *s)
{
	uint32_t i, n = sk_workers_count(s->workers);
	uint64_t total = 0;

	for (i = 0; i < n; i++)
		total += __atomic_load_n(&sk_workers_get(s->workers, i)->n_conns, __ATOMIC_RELAXED);
	return total;
}

/* ---------------------------------------------------------------------------------- */
/* drain                                                                               */

static void on_drain_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_server *s = t->data;
	bool deadline = ev_now(loop) >= s->drain_deadline;

	(void)revents;
	if (s->exit_after_drain && sk_lm_active_connections(s) == 0) {
		sk_log_info(SK_LOG_MAIN, "drained: no connection left");
		ev_timer_stop(loop, t);
		sk_server_request_shutdown(s);
		return;
	}
	if (!deadline)
		return;
	ev_timer_stop(loop, t);
	sk_log_info(SK_LOG_MAIN, "drain time over: closing the remaining connections");
	post_all(s, close_drained_task, NULL);
	if (s->exit_after_drain)
		sk_server_request_shutdown(s);
}

void sk_lm_drain(struct sk_server *s, bool inbound_only, bool exit)
{
	sk_log_info(SK_LOG_MAIN, "draining %s listeners for %u s%s", inbound_only ? "inbound" : "all",
		    s->opts->drain_time_s, exit ? ", then exiting" : "");
	sk_server_set_state(s, SK_STATE_DRAINING);
	s->exit_after_drain |= exit;
	/* HTTP connections wind down: connection: close on HTTP/1.1, GOAWAY on HTTP/2 */
	for (size_t i = 0; s->snapshot && i < s->snapshot->n_listeners; i++) {
		struct sk_listener *l = s->snapshot->listeners[i];

		if (!inbound_only || l->cfg->direction == SK_DIR_INBOUND)
			atomic_store(&l->draining, true);
	}
	if (s->workers == NULL) {
		if (exit)
			sk_server_request_shutdown(s);
		return;
	}
	post_all(s, stop_accept_task, inbound_only ? (void *)1 : NULL);
	if (!ev_is_active(&s->drain_timer)) {
		s->drain_deadline = ev_now(s->loop) + s->opts->drain_time_s;
		ev_timer_init(&s->drain_timer, on_drain_poll, DRAIN_POLL_SECONDS, DRAIN_POLL_SECONDS);
		s->drain_timer.data = s;
		ev_timer_start(s->loop, &s->drain_timer);
	}
}
