/* shadow: see shadow.h.
 *
 * A shadow is one short connection: connect, write the request (it says connection: close),
 * read until the peer closes, keeping only the status code for the cluster's stats. No
 * downstream waits for it, so it never holds more than its request and one read buffer. */
#include "proxy/network/shadow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/log/log.h"
#include "proxy/network/http_internal.h"
#include "proxy/server/workers.h"

struct sk_shadow {
	struct sk_worker *w;
	struct sk_cluster *cluster;     /* referenced */
	struct sk_host_set *hs;         /* referenced: host points into it */
	struct sk_host *host;
	int fd;
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
	if ((revents & EV_WRITE) && sh->off < sh->len) {
		ssize_t n = send(sh->fd, sh->req + sh->off, sh->len - sh->off, MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EINTR) {
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
	if (revents & EV_READ) {
		char buf[4096];
		ssize_t n = recv(sh->fd, buf, sizeof(buf), 0);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
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
	struct sk_shadow *sh;
	int fd;

	if (host == NULL || host->tls) {
		sk_stat_inc(w->shard, cl->st.upstream_cx_none_healthy);
		free(req);
		return -EHOSTUNREACH;
	}
	fd = sk_http_up_socket(cl->config, &host->addr);
	if (fd < 0) {
		free(req);
		return fd;
	}
	if (connect(fd, (const struct sockaddr *)&host->addr.ss, host->addr.len) < 0 && errno != EINPROGRESS) {
		int err = errno;

		close(fd);
		free(req);
		sk_stat_inc(w->shard, cl->st.upstream_cx_connect_fail);
		return -err;
	}
	sh = calloc(1, sizeof(*sh));
	if (sh == NULL) {
		close(fd);
		free(req);
		return -ENOMEM;
	}
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
