/* relay: see relay.h. Each direction is a small state machine pumped from its two watchers
 * (EV_READ on the source, EV_WRITE on the destination); both call pump(), which alternates
 * "write what is in flight" and "read more" until neither makes progress or a round limit
 * is hit (fairness between directions and connections on one loop). Watchers are
 * level-triggered, so anything left over is picked up on the next loop iteration.
 *
 * Every ending — natural, error, idle, sk_relay_stop — goes through end(): the watchers
 * stop at once, and the done callback is delivered by an ev_idle watcher of the highest
 * priority, so it never runs inside sk_relay_start/sk_relay_stop nor inside pump(), and
 * the owner may free the relay from it. */
#include "proxy/network/relay.h"
#include "proxy/container_of.h"
#include "proxy/network/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>


#define DEFAULT_LIMIT (1u << 20)
/* read/write mode: the ring buffer of a direction is min(limit, RW_BUF_MAX). A bigger
 * buffer buys no throughput (each read returns at most what the socket holds) and costs
 * memory per connection; Envoy's own buffers are 16 KiB slices. */
#define RW_BUF_MAX (64u << 10)
/* read/write rounds (or splice pairs) per wakeup of one direction before yielding. */
#define PUMP_ROUNDS 16

struct relay_dir {
	ev_io rd;               /* EV_READ on src */
	ev_io wr;               /* EV_WRITE on dst */
	struct sk_relay *r;
	int src, dst;
	struct sk_tls_conn *src_tls, *dst_tls; /* NULL: raw socket (the side's I/O) */
	int rd_ev, wr_ev;       /* what rd/wr wait for on their fd: TLS may turn a read into a
				 * wait for writability and back */
	int pipe[2];            /* splice mode: [0] read end, [1] write end */
	char *buf;              /* read/write mode: ring of `cap` bytes, allocated on first read */
	size_t head;            /* ring: offset of the first byte not yet written to dst */
	size_t inflight;        /* read from src, not yet written to dst */
	size_t cap;             /* reading pauses at this many bytes in flight */
	uint64_t total;         /* written to dst */
	bool eof;               /* src said EOF */
	bool shut;              /* EOF passed on: shutdown(dst, SHUT_WR) done */
	bool paused;            /* hit cap; resumes below cap / 2 */
	bool room_wait;         /* splice EAGAIN with data in the pipe: maybe the pipe is full */
};

/* Owned by the caller of sk_relay_start until sk_relay_free. */
struct sk_relay {
	struct ev_loop *loop;
	struct relay_dir dir[2];        /* indexed by enum sk_relay_dir */
	ev_timer idle;
	ev_idle done_w;
	double idle_timeout;
	double last_active;             /* ev_now() when bytes last moved */
	int down_fd, up_fd;
	bool use_splice;
	bool ended;
	enum sk_relay_end why;
	int err;
	sk_relay_bytes_cb on_bytes;
	sk_relay_done_cb on_done;
	void *ctx;
};

static void done_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct sk_relay *r = container_of(w, struct sk_relay, done_w);

	(void)revents;
	ev_idle_stop(loop, w);
	/* Last thing touching r: the callback may free it. */
	r->on_done(r->ctx, r->why, r->err);
}

static void stop_watchers(struct sk_relay *r)
{
	int i;

	for (i = 0; i < 2; i++) {
		ev_io_stop(r->loop, &r->dir[i].rd);
		ev_io_stop(r->loop, &r->dir[i].wr);
	}
	ev_timer_stop(r->loop, &r->idle);
}

/* Ends the relay once: the first reason wins. */
static void end(struct sk_relay *r, enum sk_relay_end why, int err)
{
	if (r->ended)
		return;
	r->ended = true;
	r->why = why;
	r->err = err;
	stop_watchers(r);
	ev_idle_start(r->loop, &r->done_w);
}

/* An error on fd: whose side it is tells DOWN_RESET from UP_RESET. */
static void end_reset(struct sk_relay *r, int fd, int err)
{
	end(r, fd == r->down_fd ? SK_RELAY_END_DOWN_RESET : SK_RELAY_END_UP_RESET, err);
}

static bool would_block(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK;
}

/* Ring buffers are handed back whenever they empty (idle connections keep none), so a
 * chatty connection would malloc/free one per exchange: each thread keeps a few full-size
 * buffers for reuse instead. */
#define POOL_MAX 32

static _Thread_local struct {
	char *bufs[POOL_MAX];
	int n;
} pool;

static char *buf_get(size_t cap)
{
	if (cap == RW_BUF_MAX && pool.n > 0)
		return pool.bufs[--pool.n];
	return malloc(cap);
}

static void buf_put(char *buf, size_t cap)
{
	if (buf == NULL)
		return;
	if (cap == RW_BUF_MAX && pool.n < POOL_MAX)
		pool.bufs[pool.n++] = buf;
	else
		free(buf);
}

void sk_relay_thread_cleanup(void)
{
	while (pool.n > 0)
		free(pool.bufs[--pool.n]);
}

/* Reads from src into the direction's pipe or ring: >0 bytes, 0 EOF, -errno. */
static ssize_t dir_in(struct sk_relay *r, struct relay_dir *d)
{
	size_t room = d->cap - d->inflight;
	struct iovec iov[2];
	size_t tail;
	ssize_t n;
	int iovcnt;

	if (r->use_splice) {
		do
			n = splice(d->src, NULL, d->pipe[1], NULL, room,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		while (n < 0 && errno == EINTR);
		return n < 0 ? -errno : n;
	}
	if (d->buf == NULL) {
		/* Failing here ends the relay as a reset of the source side, err ENOMEM. */
		d->buf = buf_get(d->cap);
		if (d->buf == NULL)
			return -ENOMEM;
	}
	tail = (d->head + d->inflight) % d->cap;
	if (d->src_tls != NULL) {
		/* one contiguous stretch: TLS hands out a record at a time anyway */
		size_t len = tail >= d->head && d->inflight < d->cap ? d->cap - tail : room;

		n = sk_tls_read(d->src_tls, d->buf + tail, len);
		if (n == -EAGAIN)
			d->rd_ev = sk_tls_want(d->src_tls) == SK_TLS_WANT_WRITE ? EV_WRITE : EV_READ;
		else
			d->rd_ev = EV_READ;
		return n;
	}
	iov[0].iov_base = d->buf + tail;
	if (tail >= d->head && d->inflight < d->cap) {
		iov[0].iov_len = d->cap - tail;
		iov[1].iov_base = d->buf;
		iov[1].iov_len = d->head;
		iovcnt = d->head ? 2 : 1;
	} else {
		iov[0].iov_len = room;
		iovcnt = 1;
	}
	do
		n = readv(d->src, iov, iovcnt);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Writes what is in flight to dst: >0 bytes, -errno. */
static ssize_t dir_out(struct sk_relay *r, struct relay_dir *d)
{
	struct iovec iov[2];
	struct msghdr msg = {.msg_iov = iov};
	size_t first;
	ssize_t n;

	if (r->use_splice) {
		/* A reset peer raises SIGPIPE here: splice has no MSG_NOSIGNAL, so the process
		 * must ignore SIGPIPE (as every proxy does). */
		do
			n = splice(d->pipe[0], NULL, d->dst, NULL, d->inflight,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		while (n < 0 && errno == EINTR);
		return n < 0 ? -errno : n;
	}
	first = d->cap - d->head < d->inflight ? d->cap - d->head : d->inflight;
	if (d->dst_tls != NULL) {
		/* a retry after -EAGAIN starts at the same bytes (head moves only on success) */
		n = sk_tls_write(d->dst_tls, d->buf + d->head, first);
		if (n == -EAGAIN)
			d->wr_ev = sk_tls_want(d->dst_tls) == SK_TLS_WANT_READ ? EV_READ : EV_WRITE;
		else
			d->wr_ev = EV_WRITE;
		return n;
	}
	iov[0].iov_base = d->buf + d->head;
	iov[0].iov_len = first;
	iov[1].iov_base = d->buf;
	iov[1].iov_len = d->inflight - first;
	msg.msg_iovlen = iov[1].iov_len ? 2 : 1;
	do
		n = sendmsg(d->dst, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Arms w for `events` on its fd, or stops it. */
static void watch(struct ev_loop *loop, ev_io *w, bool on, int events)
{
	if (!on) {
		ev_io_stop(loop, w);
		return;
	}
	if ((w->events & (EV_READ | EV_WRITE)) != events) {
		ev_io_stop(loop, w);
		ev_io_set(w, w->fd, events);
	}
	ev_io_start(loop, w);
}

/* Moves what it can in one direction, then arms exactly the watchers still needed. */
static void pump(struct sk_relay *r, struct relay_dir *d)
{
	bool moved = false, progress = true, dry = false;
	int round;
	ssize_t n;

	for (round = 0; progress && round < PUMP_ROUNDS; round++) {
		progress = false;
		if (d->inflight > 0) {
			n = dir_out(r, d);
			if (n > 0) {
				d->inflight -= (size_t)n;
				d->head = d->inflight ? (d->head + (size_t)n) % d->cap : 0;
				d->total += (uint64_t)n;
				d->room_wait = false;
				if (d->paused && d->inflight < (d->cap + 1) / 2)
					d->paused = false;
				progress = moved = true;
				if (r->on_bytes) {
					r->on_bytes(r->ctx, (enum sk_relay_dir)(d - r->dir), (size_t)n);
					if (r->ended)   /* sk_relay_stop from the callback */
						return;
				}
			} else if (!would_block((int)-n)) {
				end_reset(r, d->dst, (int)-n);
				return;
			}
		}
		if (!d->eof && !d->paused && !d->room_wait && !dry && d->inflight < d->cap) {
			size_t room = d->cap - d->inflight;

			n = dir_in(r, d);
			/* a short read or EAGAIN means the socket is empty: no second try in this
			 * round (it would only return EAGAIN) until the next readiness event. A TLS
			 * read is short by nature (one record at a time): only EAGAIN counts */
			dry = n < 0 || ((size_t)n < room && d->src_tls == NULL);
			if (n > 0) {
				d->inflight += (size_t)n;
				if (d->inflight >= d->cap)
					d->paused = true;
				progress = moved = true;
			} else if (n == 0) {
				d->eof = true;
				progress = true;
			} else if (!would_block((int)-n)) {
				end_reset(r, d->src, (int)-n);
				return;
			} else if (r->use_splice && d->inflight > 0) {
				/* EAGAIN means "socket empty" or "pipe full" (its slots can fill
				 * well below its byte size). Like HAProxy, assume full and stop
				 * reading until a write makes room, else a readable socket would
				 * wake us forever. */
				d->room_wait = true;
			}
		}
	}
	if (moved)
		r->last_active = ev_now(r->loop);
	/* An idle connection keeps no buffer: the ring is given back whenever it empties,
	 * which keeps skiff's cost per idle connection to the relay itself. */
	if (d->inflight == 0 && d->buf != NULL) {
		buf_put(d->buf, d->cap);
		d->buf = NULL;
		d->head = 0;
	}
	if (d->eof && d->inflight == 0 && !d->shut) {
		d->shut = true;
		/* TLS: close_notify first. A full socket (-EAGAIN) is not waited for: the alert is
		 * a few bytes and the socket has just taken everything else. */
		if (d->dst_tls != NULL)
			(void)sk_tls_shutdown(d->dst_tls);
		if (shutdown(d->dst, SHUT_WR) < 0 && errno != ENOTCONN) {
			end_reset(r, d->dst, errno);
			return;
		}
		if (r->dir[0].shut && r->dir[1].shut) {
			end(r, SK_RELAY_END_CLOSED, 0);
			return;
		}
	}
	watch(r->loop, &d->rd, !d->eof && !d->paused && !d->room_wait, d->rd_ev);
	watch(r->loop, &d->wr, d->inflight > 0, d->wr_ev);
	/* bytes TLS already decrypted raise no readiness on the socket: come back for them */
	if (d->src_tls != NULL && ev_is_active(&d->rd) && sk_tls_pending(d->src_tls) > 0)
		ev_feed_event(r->loop, &d->rd, EV_READ);
}

static void rd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct relay_dir *d = container_of(w, struct relay_dir, rd);

	(void)loop;
	(void)revents;
	pump(d->r, d);
}

static void wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct relay_dir *d = container_of(w, struct relay_dir, wr);

	(void)loop;
	(void)revents;
	pump(d->r, d);
}

/* One timer, pushed back lazily: bytes moving only store ev_now() (libev's recommended
 * "last activity" idiom, cheaper than ev_timer_again on every chunk). */
static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sk_relay *r = container_of(w, struct sk_relay, idle);
	double left = r->last_active + r->idle_timeout - ev_now(loop);

	(void)revents;
	if (left <= 0) {
		end(r, SK_RELAY_END_IDLE_TIMEOUT, 0);
		return;
	}
	w->repeat = left;
	ev_timer_again(loop, w);
}

/* The pipe of a splice direction, grown toward `want` where the kernel allows: an
 * unprivileged process gets EPERM above /proc/sys/fs/pipe-max-size or once its pipes pass
 * pipe-user-pages-soft, so halve and retry, else keep the default. Returns the capacity,
 * or -errno. */
static long open_pipe(int p[2], size_t want)
{
	long size, got;

	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	if (want > (1u << 30))
		want = 1u << 30;
	size = fcntl(p[1], F_GETPIPE_SZ);
	if (size <= 0)
		return 65536;
	for (; want > (size_t)size; want /= 2) {
		got = fcntl(p[1], F_SETPIPE_SZ, (int)want);
		if (got > 0)
			return got;
		if (errno != EPERM)
			break;
	}
	return size;
}

static void close_pipes(struct sk_relay *r)
{
	int i, j;

	for (i = 0; i < 2; i++)
		for (j = 0; j < 2; j++)
			if (r->dir[i].pipe[j] >= 0)
				close(r->dir[i].pipe[j]);
}

struct sk_relay *sk_relay_start(struct ev_loop *loop, int down_fd, int up_fd,
				const struct sk_relay_opts *opts, sk_relay_bytes_cb on_bytes,
				sk_relay_done_cb on_done, void *ctx)
{
	size_t limit = opts->buffer_limit ? opts->buffer_limit : DEFAULT_LIMIT;
	struct sk_relay *r = calloc(1, sizeof(*r));
	int i;

	if (r == NULL)
		return NULL;
	r->loop = loop;
	r->down_fd = down_fd;
	r->up_fd = up_fd;
	r->use_splice = opts->use_splice && opts->down_tls == NULL && opts->up_tls == NULL && opts->n_first == 0;
	r->idle_timeout = opts->idle_timeout;
	r->on_bytes = on_bytes;
	r->on_done = on_done;
	r->ctx = ctx;
	for (i = 0; i < 2; i++) {
		struct relay_dir *d = &r->dir[i];

		d->r = r;
		d->src = i == SK_RELAY_DOWN_TO_UP ? down_fd : up_fd;
		d->dst = i == SK_RELAY_DOWN_TO_UP ? up_fd : down_fd;
		d->src_tls = i == SK_RELAY_DOWN_TO_UP ? opts->down_tls : opts->up_tls;
		d->dst_tls = i == SK_RELAY_DOWN_TO_UP ? opts->up_tls : opts->down_tls;
		d->rd_ev = EV_READ;
		d->wr_ev = EV_WRITE;
		d->pipe[0] = d->pipe[1] = -1;
		d->cap = limit < RW_BUF_MAX ? limit : RW_BUF_MAX;
		if (i == SK_RELAY_DOWN_TO_UP && opts->n_first > 0) {
			/* what the inspectors read goes first; a ring too small for it grows
			 * (to at most the inspectors' 64 KiB, for this connection) */
			if (d->cap < opts->n_first)
				d->cap = opts->n_first;
			d->buf = buf_get(d->cap);
			if (d->buf == NULL) {
				free(r);
				return NULL;
			}
			memcpy(d->buf, opts->first, opts->n_first);
			d->inflight = opts->n_first;
			d->paused = d->inflight >= d->cap;
		}
		if (r->use_splice) {
			long size = open_pipe(d->pipe, limit);

			if (size < 0) {
				close_pipes(r);
				free(r);
				return NULL;
			}
			/* Never ask for more than the pipe holds: a full pipe and an empty
			 * socket both answer EAGAIN. */
			d->cap = (size_t)size < limit ? (size_t)size : limit;
		}
		ev_io_init(&d->rd, rd_cb, d->src, EV_READ);
		ev_io_init(&d->wr, wr_cb, d->dst, EV_WRITE);
		if (!d->paused)
			ev_io_start(loop, &d->rd);
		if (d->inflight > 0)
			ev_io_start(loop, &d->wr);
	}
	ev_idle_init(&r->done_w, done_cb);
	ev_set_priority(&r->done_w, EV_MAXPRI);
	ev_init(&r->idle, idle_cb);
	if (r->idle_timeout > 0) {
		r->last_active = ev_now(loop);
		r->idle.repeat = r->idle_timeout;
		ev_timer_again(loop, &r->idle);
	}
	return r;
}

void sk_relay_stop(struct sk_relay *r)
{
	end(r, SK_RELAY_END_STOPPED, 0);
}

uint64_t sk_relay_bytes(const struct sk_relay *r, enum sk_relay_dir dir)
{
	return r->dir[dir].total;
}

void sk_relay_free(struct sk_relay *r)
{
	int i;

	if (r == NULL)
		return;
	stop_watchers(r);
	ev_idle_stop(r->loop, &r->done_w);
	close_pipes(r);
	for (i = 0; i < 2; i++)
		buf_put(r->dir[i].buf, r->dir[i].cap);
	sk_tls_conn_free(r->dir[SK_RELAY_DOWN_TO_UP].src_tls);
	sk_tls_conn_free(r->dir[SK_RELAY_UP_TO_DOWN].src_tls);
	close(r->down_fd);
	close(r->up_fd);
	free(r);
}
