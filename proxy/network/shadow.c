/* shadow: see shadow.h.
 *
 * A shadow is one short connection: connect (and, when the host's transport socket is TLS,
 * a handshake with the cluster's context: a mirror never goes in clear where the config says
 * TLS), write the request (it says connection: close), read until the peer closes, keeping
 * only the status code for the cluster's stats. No downstream waits for it, so it never holds
 * more than its request and one read buffer. */
#include "proxy/network/shadow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/log/log.h"
#include "proxy/network/http_internal.h"
#include "proxy/network/tls.h"
#include "proxy/network/tls_stats.h"
#include "proxy/server/workers.h"

struct sk_shadow {
	struct sk_worker *w;
	struct sk_cluster *cluster;     /* referenced */
	struct sk_host_set *hs;         /* referenced: host points into it */
	struct sk_host *host;
	int fd;
	struct sk_tls_conn *tls;        /* the host's socket is TLS */
	bool handshaken;
	ev_io io;
	ev_timer timer;
	char *req;
	size_t len, off;
	char status[16];                /* the first bytes of the answer */
	size_t n_status;
	bool connected;
	double connected_at;
	struct sk_shadow *prev, *next;
};

static _Thread_local struct sk_shadow *shadows;

static void shadow_end(struct sk_shadow *sh, bool local)
{
	struct sk_worker *w = sh->w;
	const struct sk_cluster_stats *st = &sh->cluster->st;

	ev_io_stop(w->loop, &sh->io);
	ev_timer_stop(w->loop, &sh->timer);
	if (sh->n_status >= 12 && memcmp(sh->status, "HTTP/1.", 7) == 0) {
		unsigned code = (unsigned)atoi(sh->status + 9);
		int k = sk_http_code_index(code);

		if (code >= 100 && code < 600)
			sk_stat_inc(w->shard, st->upstream_rq_class[code / 100]);
		if (k >= 0)
			sk_cluster_count_code(w->shard, sh->cluster, k);
		sk_stat_inc(w->shard, st->upstream_rq_completed);
	}
	sk_stat_sub(w->shard, st->upstream_rq_active, 1);
	sk_tls_conn_free(sh->tls);
	close(sh->fd);
	sk_http_up_count_close(w, sh->cluster, sh->host, sh->connected_at, local);
	if (sh->prev)
		sh->prev->next = sh->next;
	else
		shadows = sh->next;
	if (sh->next)
		sh->next->prev = sh->prev;
	sk_host_set_unref(sh->hs);
	sk_cluster_unref(sh->cluster);
	free(sh->req);
	free(sh);
}

static void on_io(struct ev_loop *loop, ev_io *io, int revents)
{
	struct sk_shadow *sh = io->data;

	if (!sh->connected) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(sh->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			sk_stat_inc(sh->w->shard, sh->cluster->st.upstream_cx_connect_fail);
			shadow_end(sh, false);
			return;
		}
		sh->connected = true;
		sh->connected_at = ev_now(loop);
	}
	if (sh->tls != NULL && !sh->handshaken) {
		enum sk_tls_status st = sk_tls_handshake(sh->tls);

		if (st == SK_TLS_WANT_READ || st == SK_TLS_WANT_WRITE) {
			ev_io_stop(loop, io);
			ev_io_set(io, sh->fd, st == SK_TLS_WANT_READ ? EV_READ : EV_WRITE);
			ev_io_start(loop, io);
			return;
		}
		sk_tls_stats_count(sh->w->shard, &sh->cluster->tls_st, sh->tls, st == SK_TLS_DONE);
		if (st != SK_TLS_DONE) {
			sk_stat_inc(sh->w->shard, sh->cluster->st.upstream_cx_connect_fail);
			shadow_end(sh, false);
			return;
		}
		sh->handshaken = true;
		revents = EV_WRITE;
	}
	if (sh->off < sh->len) {
		ssize_t n;

		if (sh->tls != NULL) {
			n = sk_tls_write(sh->tls, sh->req + sh->off, sh->len - sh->off);
			if (n == -EAGAIN) {
				ev_io_stop(loop, io);
				ev_io_set(io, sh->fd, sk_tls_want(sh->tls) == SK_TLS_WANT_READ ? EV_READ : EV_WRITE);
				ev_io_start(loop, io);
				return;
			}
		} else {
			if (!(revents & EV_WRITE))
				return;
			n = send(sh->fd, sh->req + sh->off, sh->len - sh->off, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
		}
		if (n < 0) {
			shadow_end(sh, false);
			return;
		}
		if (n > 0) {
			sk_stat_add(sh->w->shard, sh->cluster->st.upstream_cx_tx_bytes_total, (uint64_t)n);
			sh->off += (size_t)n;
		}
		if (sh->off == sh->len) {
			ev_io_stop(loop, io);
			ev_io_set(io, sh->fd, EV_READ);
			ev_io_start(loop, io);
		}
		return;
	}
	for (int round = 0; round < 16; round++) {
		char buf[4096];
		ssize_t n;

		if (sh->tls != NULL) {
			n = sk_tls_read(sh->tls, buf, sizeof(buf));
			if (n == -EAGAIN) {
				int ev = sk_tls_want(sh->tls) == SK_TLS_WANT_WRITE ? EV_WRITE : EV_READ;

				if ((io->events & (EV_READ | EV_WRITE)) != ev) {
					ev_io_stop(loop, io);
					ev_io_set(io, sh->fd, ev);
					ev_io_start(loop, io);
				}
				return;
			}
		} else {
			if (!(revents & EV_READ))
				return;
			n = recv(sh->fd, buf, sizeof(buf), 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
		}
		if (n <= 0) {
			shadow_end(sh, false); /* the answer is whole (connection: close) or broken */
			return;
		}
		sk_stat_add(sh->w->shard, sh->cluster->st.upstream_cx_rx_bytes_total, (uint64_t)n);
		if (sh->n_status < sizeof(sh->status)) {
			size_t k = sizeof(sh->status) - sh->n_status < (size_t)n ? sizeof(sh->status) - sh->n_status
										  : (size_t)n;

			memcpy(sh->status + sh->n_status, buf, k);
			sh->n_status += k;
		}
		if (sh->tls == NULL || sk_tls_pending(sh->tls) == 0)
			return; /* decrypted bytes raise no readiness: read them now */
	}
}

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sk_shadow *sh = t->data;

	(void)loop;
	(void)revents;
	sk_stat_inc(sh->w->shard, sh->connected ? sh->cluster->st.upstream_rq_timeout
						: sh->cluster->st.upstream_cx_connect_timeout);
	shadow_end(sh, true);
}

int sk_shadow_send(struct sk_worker *w, struct sk_cluster *cl, char *req, size_t len, double timeout, uint64_t rnd)
{
	struct sk_host_set *hs = NULL;
	struct sk_host *host = sk_cluster_pick(cl, w->index, rnd, false, &hs);
	struct sk_tls_ctx *tls_ctx = NULL;
	struct sk_shadow *sh;
	int fd;

	if (host == NULL) {
		sk_stat_inc(w->shard, cl->st.upstream_cx_none_healthy);
		free(req);
		return -EHOSTUNREACH;
	}
	if (host->tls && (tls_ctx = sk_cluster_tls_ctx_acquire(cl, host->tls_istio)) == NULL) {
		/* its certificates wait for SDS: never mirror in clear */
		sk_stat_inc(w->shard, cl->upstream_context_secrets_not_ready);
		sk_stat_inc(w->shard, cl->st.upstream_cx_connect_fail);
		free(req);
		return -EAGAIN;
	}
	fd = sk_http_up_socket(cl->config, &host->addr);
	if (fd < 0) {
		sk_tls_ctx_unref(tls_ctx);
		free(req);
		return fd;
	}
	if (connect(fd, (const struct sockaddr *)&host->addr.ss, host->addr.len) < 0 && errno != EINPROGRESS) {
		int err = errno;

		close(fd);
		sk_tls_ctx_unref(tls_ctx);
		free(req);
		sk_stat_inc(w->shard, cl->st.upstream_cx_connect_fail);
		return -err;
	}
	sh = calloc(1, sizeof(*sh));
	if (sh == NULL || (tls_ctx != NULL && (sh->tls = sk_tls_conn_new(tls_ctx, fd, false, NULL)) == NULL)) {
		free(sh);
		close(fd);
		sk_tls_ctx_unref(tls_ctx);
		free(req);
		return -ENOMEM;
	}
	sk_tls_ctx_unref(tls_ctx); /* the connection holds its own */
	sh->w = w;
	sh->cluster = sk_cluster_ref(cl);
	sh->hs = sk_host_set_ref(hs);
	sh->host = host;
	sh->fd = fd;
	sh->req = req;
	sh->len = len;
	sk_http_up_count_open(w, cl, host, false);
	sk_stat_inc(w->shard, cl->st.upstream_rq_total);
	sk_stat_add(w->shard, cl->st.upstream_rq_active, 1);
	ev_io_init(&sh->io, on_io, fd, EV_WRITE);
	sh->io.data = sh;
	ev_io_start(w->loop, &sh->io);
	ev_timer_init(&sh->timer, on_timeout, timeout > 0 ? timeout : 15.0, 0.);
	sh->timer.data = sh;
	ev_timer_start(w->loop, &sh->timer);
	sh->next = shadows;
	if (shadows)
		shadows->prev = sh;
	shadows = sh;
	return 0;
}

void sk_shadow_close_all(struct sk_worker *w)
{
	struct sk_shadow *sh = shadows, *next;

	for (; sh != NULL; sh = next) {
		next = sh->next;
		if (sh->w == w)
			shadow_end(sh, true);
	}
}
