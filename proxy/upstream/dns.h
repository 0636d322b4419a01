/* dns: asynchronous name resolution for STRICT_DNS/LOGICAL_DNS clusters, never blocking an
 * event loop: a small resolver thread runs getaddrinfo and posts results back to the loop
 * that asked (ev_async). Owned by the server's main loop; results are delivered on it. */
#ifndef SKIFF_PROXY_UPSTREAM_DNS_H
#define SKIFF_PROXY_UPSTREAM_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

enum sk_dns_family { SK_DNS_AUTO, SK_DNS_V4_ONLY, SK_DNS_V6_ONLY, SK_DNS_V4_PREFERRED, SK_DNS_ALL };

struct sk_dns_result {
	int error;                       /* 0, or a getaddrinfo EAI_* code */
	size_t n;                        /* addresses, in resolver order, family-filtered */
	struct sockaddr_storage addrs[16];
};

struct sk_dns;
struct sk_dns_query;

typedef void (*sk_dns_cb)(void *ctx, const struct sk_dns_result *result);

/* Starts the resolver thread for `loop`. NULL on failure. */
struct sk_dns *sk_dns_new(struct ev_loop *loop);
/* Cancels pending queries (their callbacks never run), joins the thread, frees. A lookup
 * already inside getaddrinfo cannot be interrupted: this waits for it (at worst the
 * resolv.conf timeout). Not from inside a sk_dns_cb. NULL: no-op. */
void sk_dns_free(struct sk_dns *dns);

/* Resolves host:port; cb runs later on the loop (never inside this call). The returned
 * handle cancels with sk_dns_cancel until the callback has run. NULL on allocation failure.
 * A pending query keeps the loop alive (ev_ref); an idle resolver does not. Loop thread
 * only, like sk_dns_cancel; both may be called from inside a sk_dns_cb. */
struct sk_dns_query *sk_dns_resolve(struct sk_dns *dns, const char *host, uint16_t port,
				    enum sk_dns_family family, sk_dns_cb cb, void *ctx);
void sk_dns_cancel(struct sk_dns_query *q);

#endif
