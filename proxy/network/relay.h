/* relay: moves bytes both ways between two connected non-blocking sockets on one libev
 * loop — the engine of tcp_proxy. splice(2) through a pipe per direction, or read/write
 * through a bounded buffer per direction. Backpressure: a direction stops reading its
 * source while its buffered bytes exceed the limit. Half-close: EOF from one side is
 * passed on as shutdown(SHUT_WR) to the other, and the other direction keeps flowing until
 * it ends too (over TLS: close_notify, then shutdown). Either side may be a TLS connection
 * whose handshake is done: bytes then go through sk_tls_read/sk_tls_write (read/write mode
 * only), and a side waits for whichever readiness its TLS layer asks for. The relay owns
 * both fds and both TLS connections from sk_relay_start on (frees them in sk_relay_free). The done callback runs once, from the loop, never from sk_relay_start. */
#ifndef SKIFF_PROXY_NETWORK_RELAY_H
#define SKIFF_PROXY_NETWORK_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

enum sk_relay_end {
	SK_RELAY_END_CLOSED,        /* both directions finished (EOF passed on both ways) */
	SK_RELAY_END_IDLE_TIMEOUT,  /* no byte moved for idle_timeout seconds */
	SK_RELAY_END_DOWN_RESET,    /* downstream error (ECONNRESET, ...), `err` has errno */
	SK_RELAY_END_UP_RESET,      /* upstream error */
	SK_RELAY_END_STOPPED,       /* sk_relay_stop() (drain deadline, shutdown) */
};

enum sk_relay_dir { SK_RELAY_DOWN_TO_UP, SK_RELAY_UP_TO_DOWN };

struct sk_relay_opts {
	bool use_splice;            /* else read/write. splice(2) cannot pass MSG_NOSIGNAL:
				     * the process must ignore SIGPIPE. */
	uint32_t buffer_limit;      /* bytes in flight per direction before reading pauses
				     * (per_connection_buffer_limit_bytes; default 1 MiB) */
	double idle_timeout;        /* seconds; 0 disables */
	struct sk_tls_conn *down_tls, *up_tls; /* NULL: raw socket; else established TLS on that
				     * side's fd (forces read/write mode) */
	const void *first;          /* bytes to send upstream before any read from downstream */
	size_t n_first;             /* (copied; read/write mode only) */
};

struct sk_relay;
struct sk_tls_conn;

/* Called with each chunk moved (for the rx/tx byte counters), on the loop's thread, as the
 * chunk is written to its destination. It may call sk_relay_stop, not sk_relay_free. */
typedef void (*sk_relay_bytes_cb)(void *ctx, enum sk_relay_dir dir, size_t n);
typedef void (*sk_relay_done_cb)(void *ctx, enum sk_relay_end why, int err);

/* Starts relaying; returns NULL (and closes and frees nothing) on allocation or pipe failure. */
struct sk_relay *sk_relay_start(struct ev_loop *loop, int down_fd, int up_fd,
				const struct sk_relay_opts *opts, sk_relay_bytes_cb on_bytes,
				sk_relay_done_cb on_done, void *ctx);

/* Ends the relay now (the done callback runs with SK_RELAY_END_STOPPED from the loop). */
void sk_relay_stop(struct sk_relay *r);

/* Totals so far, per direction. */
uint64_t sk_relay_bytes(const struct sk_relay *r, enum sk_relay_dir dir);

/* Stops the watchers, closes both fds, frees. Safe inside the done callback. NULL: no-op. */
void sk_relay_free(struct sk_relay *r);

/* Frees the calling thread's cache of relay buffers (before the thread ends). */
void sk_relay_thread_cleanup(void);

#endif
