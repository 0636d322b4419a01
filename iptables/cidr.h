/* cidr: parses the IP prefixes and addresses istio-iptables is given (-i, -x, resolv.conf)
 * and prints them the way istio-iptables does (Go's net/netip), so rules match its output.
 * Everything here works on caller-owned buffers; nothing allocates. */
#ifndef SKIFF_IPTABLES_CIDR_H
#define SKIFF_IPTABLES_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest text of an address or a prefix ("ffff:...:ffff/128" plus the NUL). */
#define SK_IPT_CIDR_MAX 64

struct sk_ipt_addr {
	bool v6;           /* false: an IPv4 address in bytes[0..3] */
	uint8_t bytes[16];
};

/* Parses a bare address (no zone). Returns 0 or -EINVAL. */
int sk_ipt_addr_parse(const char *s, struct sk_ipt_addr *out);

/* Writes the address as netip.Addr.String() does (RFC 5952, "::ffff:a.b.c.d" for mapped). */
void sk_ipt_addr_format(const struct sk_ipt_addr *a, char *out, size_t outlen);

/* true for 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8 (netip.Addr.IsLoopback). */
bool sk_ipt_addr_is_loopback(const struct sk_ipt_addr *a);

/* Parses "addr/bits" as netip.ParsePrefix does (bits required, no leading zeros, the address
 * is kept unmasked) and writes its canonical text to out. Returns 0 or -EINVAL. */
int sk_ipt_cidr_parse(const char *s, struct sk_ipt_addr *addr, char *out, size_t outlen);

#endif
