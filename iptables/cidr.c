/* cidr: address and prefix text as Go's net/netip reads and writes it. */
#include "iptables/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int sk_ipt_addr_parse(const char *s, struct sk_ipt_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (strchr(s, ':')) {
		if (strchr(s, '%'))
			return -EINVAL; /* netip.ParsePrefix refuses zones */
		if (inet_pton(AF_INET6, s, out->bytes) != 1)
			return -EINVAL;
		out->v6 = true;
		return 0;
	}
	/* glibc's inet_pton takes exactly four decimal parts and refuses leading zeros, as
	 * netip.ParseAddr does. */
	if (inet_pton(AF_INET, s, out->bytes) != 1)
		return -EINVAL;
	return 0;
}

static void format_v4(const uint8_t *b, char *out, size_t outlen)
{
	snprintf(out, outlen, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

void sk_ipt_addr_format(const struct sk_ipt_addr *a, char *out, size_t outlen)
{
	uint16_t g[8];
	int zs = -1, ze = -1, i, j;
	size_t n = 0;

	if (!a->v6) {
		format_v4(a->bytes, out, outlen);
		return;
	}
	if (memcmp(a->bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
		char v4[16];

		format_v4(a->bytes + 12, v4, sizeof(v4));
		snprintf(out, outlen, "::ffff:%s", v4);
		return;
	}
	for (i = 0; i < 8; i++)
		g[i] = (uint16_t)(a->bytes[2 * i] << 8 | a->bytes[2 * i + 1]);
	/* The longest run of two or more zero groups becomes "::"; the first wins a tie. */
	for (i = 0; i < 8; i++) {
		for (j = i; j < 8 && g[j] == 0; j++)
			;
		if (j - i >= 2 && j - i > ze - zs) {
			zs = i;
			ze = j;
		}
	}
	out[0] = '\0';
	for (i = 0; i < 8 && n < outlen; i++) {
		if (i == zs) {
			n += (size_t)snprintf(out + n, outlen - n, "::");
			i = ze - 1;
			continue;
		}
		if (i > 0 && i != ze)
			n += (size_t)snprintf(out + n, outlen - n, ":");
		if (n < outlen)
			n += (size_t)snprintf(out + n, outlen - n, "%x", g[i]);
	}
}

bool sk_ipt_addr_is_loopback(const struct sk_ipt_addr *a)
{
	static const uint8_t v6_loopback[16] = { [15] = 1 };

	if (!a->v6)
		return a->bytes[0] == 127;
	if (memcmp(a->bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0)
		return a->bytes[12] == 127;
	return memcmp(a->bytes, v6_loopback, sizeof(v6_loopback)) == 0;
}

int sk_ipt_cidr_parse(const char *s, struct sk_ipt_addr *addr, char *out, size_t outlen)
{
	char buf[SK_IPT_CIDR_MAX], text[SK_IPT_CIDR_MAX];
	const char *slash = strrchr(s, '/'), *p;
	unsigned bits = 0;
	size_t alen;

	if (!slash || slash[1] == '\0')
		return -EINVAL;
	alen = (size_t)(slash - s);
	if (alen == 0 || alen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (sk_ipt_addr_parse(buf, addr) < 0)
		return -EINVAL;
	if (slash[1] == '0' && slash[2] != '\0')
		return -EINVAL; /* leading zeros */
	for (p = slash + 1; *p; p++) {
		if (*p < '0' || *p > '9' || p - slash > 3)
			return -EINVAL;
		bits = bits * 10 + (unsigned)(*p - '0');
	}
	if (bits > (addr->v6 ? 128u : 32u))
		return -EINVAL;
	sk_ipt_addr_format(addr, text, sizeof(text));
	if ((size_t)snprintf(out, outlen, "%s/%u", text, bits) >= outlen)
		return -EINVAL;
	return 0;
}
