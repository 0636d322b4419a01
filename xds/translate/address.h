/* address: Envoy's core.v3.Address as a plain sockaddr (IPv4, IPv6 or unix path), and the
 * two ways Envoy writes one: "10.0.0.1:80" / "[::1]:80" / "/path", and the stat form
 * "10.0.0.1_80" used in listener.<addr>.* names. */
#ifndef SKIFF_XDS_TRANSLATE_ADDRESS_H
#define SKIFF_XDS_TRANSLATE_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "skiff_protos.h"

struct sk_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

#define SK_ADDR_TEXT_MAX 128

/* A literal IP socket address or a pipe. -EINVAL with err ("'x' is not an IP address") for
 * names (those are resolved by DNS clusters, not here). */
int sk_addr_from_pb(const Envoy__Config__Core__V3__Address *a, struct sk_addr *out, char *err,
		    size_t errlen);
int sk_addr_from_socket_address(const Envoy__Config__Core__V3__SocketAddress *sa, struct sk_addr *out,
				char *err, size_t errlen);

void sk_addr_format(const struct sk_addr *a, char *buf, size_t len);      /* 1.2.3.4:80 */
void sk_addr_stat_name(const struct sk_addr *a, char *buf, size_t len);   /* 1.2.3.4_80 */
uint16_t sk_addr_port(const struct sk_addr *a);
bool sk_addr_is_any(const struct sk_addr *a);                             /* 0.0.0.0 or :: */
bool sk_addr_equal(const struct sk_addr *a, const struct sk_addr *b);      /* ip and port */

#endif
