/* filter_chain: Envoy's filter-chain matching for one listener, built once per config
 * snapshot from the listener's FilterChainMatch entries and read by every worker.
 *
 * Precedence is Envoy's (listener_components.proto / filter_chain_manager_impl): a
 * connection descends the criteria in this order, at each level keeping only the chains
 * with the most specific match and falling back to chains that leave the criterion empty:
 * destination_port, destination IP (prefix_ranges, longest prefix), server_names (exact,
 * then the longest wildcard suffix "*.example.com", then empty), transport_protocol,
 * application_protocols, direct_source_prefix_ranges, source_type, source_prefix_ranges,
 * source_ports. Two chains with identical match criteria are a configuration error.
 * Ownership: the matcher copies what it needs; it does not point into the proto. */
#ifndef SKIFF_PROXY_LISTENER_FILTER_CHAIN_H
#define SKIFF_PROXY_LISTENER_FILTER_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "skiff_protos.h"

struct sk_fcm;

/* What is known of a connection when its chain is chosen. Addresses are AF_INET or
 * AF_INET6 (v4-mapped v6 compares as v4); a pipe listener has family AF_UNIX and matches
 * only chains without IP criteria. */
struct sk_fcm_conn {
	struct sockaddr_storage dst;     /* local address, after original_dst restoration */
	struct sockaddr_storage src;     /* remote address (after proxy protocol, if any) */
	struct sockaddr_storage direct_src; /* the peer of the socket itself */
	const char *server_name;         /* SNI from tls_inspector, "" or NULL when none */
	const char *transport_protocol;  /* "tls" or "raw_buffer"; NULL or "" counts as
					  * "raw_buffer", Envoy's default before matching */
	const char *const *application_protocols; /* from ALPN or http_inspector */
	size_t n_application_protocols;
};

#define SK_FCM_NO_MATCH (-1)
#define SK_FCM_DEFAULT (-2)              /* the listener's default_filter_chain */

/* Builds the matcher for `l` (its filter_chains and default_filter_chain). NULL with err
 * naming the chain ("filter_chains[3]: multiple filter chains with the same matching rules
 * are defined") on an invalid configuration. */
struct sk_fcm *sk_fcm_build(const Envoy__Config__Listener__V3__Listener *l, char *err, size_t errlen);
void sk_fcm_free(struct sk_fcm *m);

/* The index into l->filter_chains of the chain for c, SK_FCM_DEFAULT, or SK_FCM_NO_MATCH. */
int sk_fcm_match(const struct sk_fcm *m, const struct sk_fcm_conn *c);

/* Which criteria the listener's chains use: lets the listener skip inspectors nobody needs
 * (Envoy only waits for tls_inspector data when some chain needs it). */
bool sk_fcm_uses_server_names(const struct sk_fcm *m);
bool sk_fcm_uses_transport_protocol(const struct sk_fcm *m);
bool sk_fcm_uses_application_protocols(const struct sk_fcm *m);

#endif
