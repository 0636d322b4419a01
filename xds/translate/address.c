/* address: see address.h. */
#include "xds/translate/address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

int sk_addr_from_socket_address(const Envoy__Config__Core__V3__SocketAddress *sa, struct sk_addr *out,
				char *err, size_t errlen)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;

	memset(out, 0, sizeof(*out));
	if (sa->port_specifier_case != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE &&
	    sa->port_specifier_case != ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER__NOT_SET) {
		snprintf(err, errlen, "named ports are not supported");
		return -EINVAL;
	}
	if (sa->port_value > 65535) {
		snprintf(err, errlen, "port %u out of range", sa->port_value);
		return -EINVAL;
	}
	if (inet_pton(AF_INET, sa->address, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)sa->port_value);
		out->len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, sa->address, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)sa->port_value);
		out->len = sizeof(*in6);
		return 0;
	}
	snprintf(err, errlen, "'%s' is not an IP address", sa->address);
	return -EINVAL;
}

int sk_addr_from_pb(const Envoy__Config__Core__V3__Address *a, struct sk_addr *out, char *err,
		    size_t errlen)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;

	if (a == NULL) {
		snprintf(err, errlen, "no address");
		return -EINVAL;
	}
	switch (a->address_case) {
	case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS:
		return sk_addr_from_socket_address(a->socket_address, out, err, errlen);
	case ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_PIPE:
		memset(out, 0, sizeof(*out));
		if (strlen(a->pipe->path) >= sizeof(un->sun_path)) {
			snprintf(err, errlen, "pipe path too long");
			return -EINVAL;
		}
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, a->pipe->path);
		out->len = sizeof(*un);
		return 0;
	default:
		snprintf(err, errlen, "unsupported address type (internal listeners are not supported)");
		return -EINVAL;
	}
}

uint16_t sk_addr_port(const struct sk_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return 0;
}

static void ip_text(const struct sk_addr *a, char *buf, size_t len)
{
	const void *src = a->ss.ss_family == AF_INET
				  ? (const void *)&((const struct sockaddr_in *)&a->ss)->sin_addr
				  : (const void *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;

	if (inet_ntop(a->ss.ss_family, src, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
}

void sk_addr_format(const struct sk_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->ss.ss_family == AF_UNIX) {
		snprintf(buf, len, "%s", ((const struct sockaddr_un *)&a->ss)->sun_path);
		return;
	}
	ip_text(a, ip, sizeof(ip));
	snprintf(buf, len, a->ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, sk_addr_port(a));
}

void sk_addr_stat_name(const struct sk_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->ss.ss_family == AF_UNIX) {
		snprintf(buf, len, "%s", ((const struct sockaddr_un *)&a->ss)->sun_path);
		return;
	}
	ip_text(a, ip, sizeof(ip));
	/* Envoy: "[::]_80" for IPv6, "0.0.0.0_80" for IPv4 */
	snprintf(buf, len, a->ss.ss_family == AF_INET6 ? "[%s]_%u" : "%s_%u", ip, sk_addr_port(a));
}

bool sk_addr_is_any(const struct sk_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
	return false;
}

bool sk_addr_equal(const struct sk_addr *a, const struct sk_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return strcmp(((const struct sockaddr_un *)&a->ss)->sun_path,
		      ((const struct sockaddr_un *)&b->ss)->sun_path) == 0;
}
