/* dns internals: the family policy applied to a getaddrinfo answer, shared by dns.c and its
 * unit test (a dual-stack answer cannot be had from /etc/hosts in every sandbox). */
#ifndef SKIFF_PROXY_UPSTREAM_DNS_INTERNAL_H
#define SKIFF_PROXY_UPSTREAM_DNS_INTERNAL_H

#include <netdb.h>

#include "proxy/upstream/dns.h"

/* Fills out->addrs/n from `res` as `family` asks (AUTO: the v6 addresses if any, else v4;
 * V4_PREFERRED the reverse; ALL both; *_ONLY one), deduplicated, in `res` order, at most 16,
 * each with `port`; out->error = 0, or EAI_NONAME when nothing is left. */
void sk__dns_collect(struct sk_dns_result *out, const struct addrinfo *res,
		     enum sk_dns_family family, uint16_t port);

#endif
