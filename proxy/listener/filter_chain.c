/* Filter-chain matching as Envoy's FilterChainManagerImpl (filter_chain_manager_impl.cc): the
 * chains are inserted into a tree with one level per criterion, and a connection walks down
 * it taking, at each level, the single most specific branch that matches — never trying a
 * less specific sibling when the chosen branch fails further down. Keys are the values the
 * chains name; a chain that leaves a criterion empty sits under that level's catch-all key
 * (port 0, the "any" CIDR, ""), exactly as Envoy's maps use EMPTY_STRING and port 0. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/listener/filter_chain.h"

typedef Envoy__Config__Listener__V3__FilterChainMatch fc_match_pb;
typedef Envoy__Config__Core__V3__CidrRange cidr_pb;

/* The levels, in Envoy's order of precedence. */
enum fc_depth {
	D_DST_PORT,
	D_DST_IP,
	D_SERVER_NAME,
	D_TRANSPORT,
	D_ALPN,
	D_DIRECT_SRC_IP,
	D_SRC_TYPE,
	D_SRC_IP,
	D_SRC_PORT,   /* leaves: the chain index */
	D_COUNT,
};

enum fc_key_kind { K_NUM, K_NAME, K_CIDR };

static const enum fc_key_kind depth_kind[D_COUNT] = {
	[D_DST_PORT] = K_NUM,      [D_DST_IP] = K_CIDR,        [D_SERVER_NAME] = K_NAME,
	[D_TRANSPORT] = K_NAME,    [D_ALPN] = K_NAME,          [D_DIRECT_SRC_IP] = K_CIDR,
	[D_SRC_TYPE] = K_NUM,      [D_SRC_IP] = K_CIDR,        [D_SRC_PORT] = K_NUM,
};

/* A CIDR with its host bits cleared. family 0 is the catch-all of chains without ranges: Envoy
 * inserts it as 0.0.0.0/0 and ::/0 under one key, so it matches any address at length 0. */
struct cidr {
	uint8_t family;   /* 0, 4 or 6 */
	uint8_t len;
	uint8_t addr[16];
};

union fc_key {
	uint32_t num;
	const char *name;
	struct cidr cidr;
};

struct fc_level;

struct fc_entry {
	union fc_key key;  /* names are owned (strdup) */
	union {
		struct fc_level *child;
		int chain;
	} to;
};

struct fc_level {
	size_t n;
	struct fc_entry *e;
};

/* Owner: the caller of sk_fcm_build; shared read-only by every worker. */
struct sk_fcm {
	struct fc_level root;   /* destination ports, sorted by port */
	int fallback;           /* SK_FCM_DEFAULT or SK_FCM_NO_MATCH */
	bool uses_server_names, uses_transport, uses_alpn;
};

/* One chain's criteria, normalized; an empty list means the level's catch-all key. */
struct fc_spec {
	uint32_t dst_port;
	struct cidr *dst;
	size_t n_dst;
	char **names;        /* lowercased; "*.b.com" stored as ".b.com" (Envoy's map key) */
	size_t n_names;
	const char *transport;
	char *const *alpn;
	size_t n_alpn;
	struct cidr *dsrc;
	size_t n_dsrc;
	uint32_t src_type;
	struct cidr *src;
	size_t n_src;
	const uint32_t *src_ports;
	size_t n_src_ports;
};

/* ---- tree ---- */

static void level_free(struct fc_level *lv, int depth)
{
	for (size_t i = 0; i < lv->n; i++) {
		if (depth_kind[depth] == K_NAME)
			free((char *)lv->e[i].key.name);
		if (depth < D_SRC_PORT && lv->e[i].to.child) {
			level_free(lv->e[i].to.child, depth + 1);
			free(lv->e[i].to.child);
		}
	}
	free(lv->e);
	lv->e = NULL;
	lv->n = 0;
}

static bool key_eq(int depth, const union fc_key *a, const union fc_key *b)
{
	switch (depth_kind[depth]) {
	case K_NUM:
		return a->num == b->num;
	case K_NAME:
		return strcmp(a->name, b->name) == 0;
	case K_CIDR:
		return a->cidr.family == b->cidr.family && a->cidr.len == b->cidr.len &&
		       memcmp(a->cidr.addr, b->cidr.addr, sizeof(a->cidr.addr)) == 0;
	}
	return false;
}

static size_t spec_count(const struct fc_spec *s, int depth)
{
	static const size_t one = 1;
	const size_t *n[D_COUNT] = {
		[D_DST_PORT] = &one,         [D_DST_IP] = &s->n_dst,    [D_SERVER_NAME] = &s->n_names,
		[D_TRANSPORT] = &one,        [D_ALPN] = &s->n_alpn,     [D_DIRECT_SRC_IP] = &s->n_dsrc,
		[D_SRC_TYPE] = &one,         [D_SRC_IP] = &s->n_src,    [D_SRC_PORT] = &s->n_src_ports,
	};

	return *n[depth] ? *n[depth] : 1;
}

/* The i-th key of `s` at `depth`; with an empty list, the catch-all key. */
static union fc_key spec_key(const struct fc_spec *s, int depth, size_t i)
{
	union fc_key k;

	memset(&k, 0, sizeof(k));
	switch (depth) {
	case D_DST_PORT: k.num = s->dst_port; break;
	case D_DST_IP: if (s->n_dst) k.cidr = s->dst[i]; break;
	case D_SERVER_NAME: k.name = s->n_names ? s->names[i] : ""; break;
	case D_TRANSPORT: k.name = s->transport; break;
	case D_ALPN: k.name = s->n_alpn ? s->alpn[i] : ""; break;
	case D_DIRECT_SRC_IP: if (s->n_dsrc) k.cidr = s->dsrc[i]; break;
	case D_SRC_TYPE: k.num = s->src_type; break;
	case D_SRC_IP: if (s->n_src) k.cidr = s->src[i]; break;
	case D_SRC_PORT: k.num = s->n_src_ports ? s->src_ports[i] : 0; break;
	}
	return k;
}

/* Adds chain `idx` under every combination of its keys from `depth` down. Reaching an occupied
 * leaf means two chains (or one chain with a repeated value) claim the same connections:
 * Envoy's "overlapping matching rules" error. Returns 0, or -1 with err set. */
static int insert(struct fc_level *lv, int depth, const struct fc_spec *s, int idx, char *err,
		  size_t errlen)
{
	size_t nk = spec_count(s, depth);

	for (size_t i = 0; i < nk; i++) {
		union fc_key k = spec_key(s, depth, i);
		struct fc_entry *e = NULL;

		for (size_t j = 0; j < lv->n; j++)
			if (key_eq(depth, &lv->e[j].key, &k)) {
				e = &lv->e[j];
				break;
			}
		if (e && depth == D_SRC_PORT) {
			if (e->to.chain == idx)
				snprintf(err, errlen, "filter_chains[%d]: multiple filter chains with "
					 "overlapping matching rules are defined (a value repeats within "
					 "the chain)", idx);
			else
				snprintf(err, errlen, "filter_chains[%d]: multiple filter chains with "
					 "overlapping matching rules are defined (overlaps "
					 "filter_chains[%d])", idx, e->to.chain);
			return -1;
		}
		if (!e) {
			struct fc_entry *ne = realloc(lv->e, (lv->n + 1) * sizeof(*ne));

			if (!ne)
				goto oom;
			lv->e = ne;
			e = &lv->e[lv->n];
			memset(e, 0, sizeof(*e));
			if (depth_kind[depth] == K_NAME) {
				if (!(k.name = strdup(k.name)))
					goto oom;
			}
			e->key = k;
			lv->n++;
			if (depth == D_SRC_PORT) {
				e->to.chain = idx;
				continue;
			}
			if (!(e->to.child = calloc(1, sizeof(struct fc_level))))
				goto oom;
		}
		if (insert(e->to.child, depth + 1, s, idx, err, errlen) < 0)
			return -1;
	}
	return 0;
oom:
	snprintf(err, errlen, "filter_chains[%d]: out of memory", idx);
	return -1;
}

static int port_cmp(const void *a, const void *b)
{
	const struct fc_entry *x = a, *y = b;

	return (x->key.num > y->key.num) - (x->key.num < y->key.num);
}

/* ---- config parsing ---- */

/* CidrRange as Envoy's CidrRange::create: the address must parse as an IP (no port, no
 * brackets); an absent prefix_len is 0 — the range then matches every address of its family;
 * lengths beyond the family's width are clamped (PGV caps them at 128). */
static int parse_cidr(const cidr_pb *pb, struct cidr *out, const char *path, char *err,
		      size_t errlen)
{
	uint32_t len = pb->prefix_len ? pb->prefix_len->value : 0;
	unsigned bits;

	memset(out, 0, sizeof(*out));
	if (len > 128) {
		snprintf(err, errlen, "%s.prefix_len: value must be less than or equal to 128", path);
		return -1;
	}
	if (inet_pton(AF_INET, pb->address_prefix, out->addr) == 1) {
		out->family = 4;
		bits = 32;
	} else if (inet_pton(AF_INET6, pb->address_prefix, out->addr) == 1) {
		out->family = 6;
		bits = 128;
	} else {
		snprintf(err, errlen, "%s: malformed IP address: %s", path, pb->address_prefix);
		return -1;
	}
	if (len > bits)
		len = bits;
	out->len = (uint8_t)len;
	for (unsigned b = len; b < bits; b++)
		out->addr[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
	return 0;
}

static int parse_cidrs(cidr_pb *const *v, size_t n, struct cidr **out, const char *path,
		       char *err, size_t errlen)
{
	char p[160];

	*out = NULL;
	if (!n)
		return 0;
	if (!(*out = calloc(n, sizeof(**out)))) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		if (parse_cidr(v[i], &(*out)[i], p, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static void spec_free(struct fc_spec *s)
{
	free(s->dst);
	free(s->dsrc);
	free(s->src);
	for (size_t i = 0; i < s->n_names; i++)
		free(s->names[i]);
	free(s->names);
}

/* Validates one chain's match (the PGV rules of listener_components.proto and the checks of
 * Envoy's setupFilterChainMatcher) and normalizes it into *s. */
static int spec_build(const fc_match_pb *m, size_t idx, struct fc_spec *s, char *err, size_t errlen)
{
	char path[96], p[128];

	memset(s, 0, sizeof(*s));
	s->transport = "";
	if (!m)
		return 0;
	snprintf(path, sizeof(path), "filter_chains[%zu].filter_chain_match", idx);
	if ((m->address_suffix && *m->address_suffix) || m->suffix_len) {
		snprintf(err, errlen, "%s: contains unimplemented fields (address_suffix, suffix_len)", path);
		return -1;
	}
	if (m->destination_port) {
		if (m->destination_port->value < 1 || m->destination_port->value > 65535) {
			snprintf(err, errlen, "%s.destination_port: value must be inside range [1, 65535]", path);
			return -1;
		}
		s->dst_port = m->destination_port->value;
	}
	for (size_t i = 0; i < m->n_source_ports; i++)
		if (m->source_ports[i] < 1 || m->source_ports[i] > 65535) {
			snprintf(err, errlen, "%s.source_ports[%zu]: value must be inside range [1, 65535]",
				 path, i);
			return -1;
		}
	s->src_ports = m->source_ports;
	s->n_src_ports = m->n_source_ports;
	switch (m->source_type) {
	case ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__CONNECTION_SOURCE_TYPE__ANY:
	case ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__CONNECTION_SOURCE_TYPE__SAME_IP_OR_LOOPBACK:
	case ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__CONNECTION_SOURCE_TYPE__EXTERNAL:
		s->src_type = (uint32_t)m->source_type;
		break;
	default:
		snprintf(err, errlen, "%s.source_type: value must be one of the defined enum values", path);
		return -1;
	}
	snprintf(p, sizeof(p), "%s.prefix_ranges", path);
	if (parse_cidrs(m->prefix_ranges, m->n_prefix_ranges, &s->dst, p, err, errlen) < 0)
		return -1;
	s->n_dst = m->n_prefix_ranges;
	snprintf(p, sizeof(p), "%s.source_prefix_ranges", path);
	if (parse_cidrs(m->source_prefix_ranges, m->n_source_prefix_ranges, &s->src, p, err, errlen) < 0)
		return -1;
	s->n_src = m->n_source_prefix_ranges;
	snprintf(p, sizeof(p), "%s.direct_source_prefix_ranges", path);
	if (parse_cidrs(m->direct_source_prefix_ranges, m->n_direct_source_prefix_ranges, &s->dsrc, p,
			err, errlen) < 0)
		return -1;
	s->n_dsrc = m->n_direct_source_prefix_ranges;

	if (m->n_server_names && !(s->names = calloc(m->n_server_names, sizeof(char *))))
		goto oom;
	for (size_t i = 0; i < m->n_server_names; i++) {
		const char *sn = m->server_names[i];
		bool wildcard = strncmp(sn, "*.", 2) == 0;

		if (strchr(sn, '*') && !wildcard) {
			snprintf(err, errlen, "%s.server_names[%zu]: partial wildcards are not supported "
				 "in \"server_names\" (%s)", path, i, sn);
			return -1;
		}
		/* Envoy keys a wildcard "*.b.com" as ".b.com" in the same map as exact names. */
		if (!(s->names[i] = strdup(wildcard ? sn + 1 : sn)))
			goto oom;
		s->n_names = i + 1;
		for (char *c = s->names[i]; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
	}
	s->transport = m->transport_protocol ? m->transport_protocol : "";
	s->alpn = m->application_protocols;
	s->n_alpn = m->n_application_protocols;
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", path);
	return -1;
}

/* Serialized FilterChainMatch, for Envoy's first duplicate check (whole-message equality). */
static uint8_t *pack_match(const fc_match_pb *m, size_t *len)
{
	uint8_t *buf;

	*len = m ? protobuf_c_message_get_packed_size(&m->base) : 0;
	if (!(buf = malloc(*len ? *len : 1)))
		return NULL;
	if (m)
		protobuf_c_message_pack(&m->base, buf);
	return buf;
}

struct sk_fcm *sk_fcm_build(const Envoy__Config__Listener__V3__Listener *l, char *err, size_t errlen)
{
	struct sk_fcm *m = calloc(1, sizeof(*m));
	uint8_t **packed = NULL;
	size_t *packed_len = NULL;
	size_t n = l->n_filter_chains;

	if (!m)
		goto oom;
	m->fallback = l->default_filter_chain ? SK_FCM_DEFAULT : SK_FCM_NO_MATCH;
	if (l->filter_chain_matcher) {
		/* Envoy then ignores filter_chain_match entirely; skiff cannot evaluate the
		 * generic matcher tree, so it refuses rather than choose chains differently. */
		snprintf(err, errlen, "filter_chain_matcher: not supported");
		goto fail;
	}
	if (n && (!(packed = calloc(n, sizeof(*packed))) ||
		  !(packed_len = calloc(n, sizeof(*packed_len)))))
		goto oom;
	for (size_t i = 0; i < n; i++) {
		const Envoy__Config__Listener__V3__FilterChain *fc = l->filter_chains[i];
		const fc_match_pb *fm = fc->filter_chain_match;
		struct fc_spec s;

		if (!(packed[i] = pack_match(fm, &packed_len[i])))
			goto oom;
		if (spec_build(fm, i, &s, err, errlen) < 0) {
			spec_free(&s);
			goto fail;
		}
		for (size_t j = 0; j < i; j++)
			if (packed_len[j] == packed_len[i] &&
			    memcmp(packed[j], packed[i], packed_len[i]) == 0) {
				snprintf(err, errlen, "filter_chains[%zu]: multiple filter chains with the same "
					 "matching rules are defined (filter chain '%s' has the same matching "
					 "rules as filter_chains[%zu] '%s')", i, fc->name ? fc->name : "", j,
					 l->filter_chains[j]->name ? l->filter_chains[j]->name : "");
				spec_free(&s);
				goto fail;
			}
		m->uses_server_names |= s.n_names > 0;
		m->uses_transport |= *s.transport != '\0';
		m->uses_alpn |= s.n_alpn > 0;
		int rc = insert(&m->root, D_DST_PORT, &s, (int)i, err, errlen);

		spec_free(&s);
		if (rc < 0)
			goto fail;
	}
	if (m->root.n)
		qsort(m->root.e, m->root.n, sizeof(*m->root.e), port_cmp);
	for (size_t i = 0; i < n; i++)
		free(packed[i]);
	free(packed);
	free(packed_len);
	return m;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	for (size_t i = 0; packed && i < n; i++)
		free(packed[i]);
	free(packed);
	free(packed_len);
	sk_fcm_free(m);
	return NULL;
}

void sk_fcm_free(struct sk_fcm *m)
{
	if (!m)
		return;
	level_free(&m->root, D_DST_PORT);
	free(m);
}

bool sk_fcm_uses_server_names(const struct sk_fcm *m)
{
	return m->uses_server_names;
}

bool sk_fcm_uses_transport_protocol(const struct sk_fcm *m)
{
	return m->uses_transport;
}

bool sk_fcm_uses_application_protocols(const struct sk_fcm *m)
{
	return m->uses_alpn;
}

/* ---- matching: no allocation ---- */

struct conn_addr {
	bool is_ip;
	uint8_t family;   /* 4 or 6 */
	uint8_t addr[16];
	uint16_t port;
};

/* Normalizes a socket address: v4-mapped v6 becomes v4 (Envoy builds an Ipv4Instance for it on
 * dual-stack sockets); anything not IP becomes Envoy's fakeAddress() 255.255.255.255:0, which
 * only ranges covering it — in practice the catch-all — match. */
static void conn_addr_of(const struct sockaddr_storage *ss, struct conn_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (ss && ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		a->is_ip = true;
		a->family = 4;
		memcpy(a->addr, &in->sin_addr, 4);
		a->port = ntohs(in->sin_port);
	} else if (ss && ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		a->is_ip = true;
		a->port = ntohs(in6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			a->family = 4;
			memcpy(a->addr, &in6->sin6_addr.s6_addr[12], 4);
		} else {
			a->family = 6;
			memcpy(a->addr, &in6->sin6_addr, 16);
		}
	} else {
		a->family = 4;
		memset(a->addr, 0xff, 4);
	}
}

static bool cidr_contains(const struct cidr *c, const struct conn_addr *a)
{
	unsigned full, rest;

	if (c->family == 0)
		return true;
	if (c->family != a->family)
		return false;
	full = c->len / 8;
	rest = c->len % 8;
	if (memcmp(c->addr, a->addr, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff00u >> rest);

		return (a->addr[full] & mask) == c->addr[full];
	}
	return true;
}

/* Envoy's exclusive LC trie: the branch of the longest range containing the address. The
 * catch-all and an explicit 0.0.0.0/0 (or ::/0) are the one tie possible; Envoy's trie then
 * holds both and which it returns is unspecified — skiff takes the explicit range. */
static const struct fc_level *ip_lookup(const struct fc_level *lv, const struct conn_addr *a)
{
	const struct fc_entry *best = NULL;

	for (size_t i = 0; i < lv->n; i++) {
		const struct fc_entry *e = &lv->e[i];

		if (!cidr_contains(&e->key.cidr, a))
			continue;
		if (!best || e->key.cidr.len > best->key.cidr.len ||
		    (e->key.cidr.len == best->key.cidr.len && best->key.cidr.family == 0))
			best = e;
	}
	return best ? best->to.child : NULL;
}

static const struct fc_level *name_lookup(const struct fc_level *lv, const char *name)
{
	for (size_t i = 0; i < lv->n; i++)
		if (strcmp(lv->e[i].key.name, name) == 0)
			return lv->e[i].to.child;
	return NULL;
}

/* Like name_lookup for the first len bytes of an SNI, compared case-insensitively (the keys
 * are lowercase; tls_inspector lowercases too, so this only matters for other callers). */
static const struct fc_level *sni_lookup(const struct fc_level *lv, const char *name, size_t len)
{
	for (size_t i = 0; i < lv->n; i++) {
		const char *k = lv->e[i].key.name;
		size_t j = 0;

		for (; j < len; j++) {
			char c = name[j];

			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			if (k[j] != c)
				break;
		}
		if (j == len && k[len] == '\0')
			return lv->e[i].to.child;
	}
	return NULL;
}

static const struct fc_entry *num_lookup(const struct fc_level *lv, uint32_t num)
{
	for (size_t i = 0; i < lv->n; i++)
		if (lv->e[i].key.num == num)
			return &lv->e[i];
	return NULL;
}

static bool same_ip_or_loopback(const struct conn_addr *dst, const struct conn_addr *src)
{
	static const uint8_t v4_loopback[4] = { 127, 0, 0, 1 };
	static const uint8_t v6_loopback[16] = { [15] = 1 };

	/* Envoy's Utility::isSameIpOrLoopback: a pipe peer, exactly 127.0.0.1 or ::1, or the
	 * same address (ignoring port) as the local end. */
	if (!src->is_ip)
		return true;
	if (src->family == 4 && memcmp(src->addr, v4_loopback, 4) == 0)
		return true;
	if (src->family == 6 && memcmp(src->addr, v6_loopback, 16) == 0)
		return true;
	return dst->is_ip && dst->family == src->family &&
	       memcmp(dst->addr, src->addr, src->family == 4 ? 4 : 16) == 0;
}

static int match_src(const struct fc_level *lv, const struct conn_addr *src)
{
	const struct fc_level *ports = ip_lookup(lv, src);
	const struct fc_entry *e;

	if (!ports)
		return SK_FCM_NO_MATCH;
	if ((e = num_lookup(ports, src->port)))
		return e->to.chain;
	if (src->port != 0 && (e = num_lookup(ports, 0)))
		return e->to.chain;
	return SK_FCM_NO_MATCH;
}

static int match_src_type(const struct fc_level *lv, const struct conn_addr *dst,
			  const struct conn_addr *src)
{
	const struct fc_entry *local = num_lookup(lv,
		ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__CONNECTION_SOURCE_TYPE__SAME_IP_OR_LOOPBACK);
	const struct fc_entry *external = num_lookup(lv,
		ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__CONNECTION_SOURCE_TYPE__EXTERNAL);
	const struct fc_entry *any = num_lookup(lv,
		ENVOY__CONFIG__LISTENER__V3__FILTER_CHAIN_MATCH__CONNECTION_SOURCE_TYPE__ANY);

	if (local || external) {
		/* A branch for the connection's kind is taken without falling back to ANY. */
		if (same_ip_or_loopback(dst, src)) {
			if (local)
				return match_src(local->to.child, src);
		} else if (external) {
			return match_src(external->to.child, src);
		}
	}
	return any ? match_src(any->to.child, src) : SK_FCM_NO_MATCH;
}

static int match_alpn(const struct fc_level *lv, const struct sk_fcm_conn *c,
		      const struct conn_addr *dst, const struct conn_addr *src,
		      const struct conn_addr *dsrc)
{
	const struct fc_level *next = NULL;

	/* The first of the connection's protocols (in its order) that some chain names. */
	for (size_t i = 0; i < c->n_application_protocols && !next; i++)
		if (c->application_protocols[i])
			next = name_lookup(lv, c->application_protocols[i]);
	if (!next && !(next = name_lookup(lv, "")))
		return SK_FCM_NO_MATCH;
	if (!(next = ip_lookup(next, dsrc)))
		return SK_FCM_NO_MATCH;
	return match_src_type(next, dst, src);
}

static int match_transport(const struct fc_level *lv, const struct sk_fcm_conn *c,
			   const struct conn_addr *dst, const struct conn_addr *src,
			   const struct conn_addr *dsrc)
{
	/* Envoy sets "raw_buffer" before matching when no listener filter detected one. */
	const char *tp = c->transport_protocol && *c->transport_protocol ? c->transport_protocol
									   : "raw_buffer";
	const struct fc_level *next = name_lookup(lv, tp);

	if (!next && !(next = name_lookup(lv, "")))
		return SK_FCM_NO_MATCH;
	return match_alpn(next, c, dst, src, dsrc);
}

static int match_server_name(const struct fc_level *lv, const struct sk_fcm_conn *c,
			     const struct conn_addr *dst, const struct conn_addr *src,
			     const struct conn_addr *dsrc)
{
	const char *sn = c->server_name ? c->server_name : "";
	size_t len = strlen(sn);
	const struct fc_level *next = sni_lookup(lv, sn, len);
	const char *dot = len > 1 ? strchr(sn + 1, '.') : NULL;

	/* Then every wildcard suffix, longest first: ".b.com", ".com" for "a.b.com" (a suffix
	 * must be longer than the lone final dot). */
	for (; !next && dot; dot = strchr(dot + 1, '.')) {
		size_t sl = len - (size_t)(dot - sn);

		if (sl < 2)
			break;
		next = sni_lookup(lv, dot, sl);
	}
	if (!next && !(next = name_lookup(lv, "")))
		return SK_FCM_NO_MATCH;
	return match_transport(next, c, dst, src, dsrc);
}

static int match_port(const struct fc_entry *port, const struct sk_fcm_conn *c,
		      const struct conn_addr *dst)
{
	const struct fc_level *names = ip_lookup(port->to.child, dst);
	struct conn_addr src, dsrc;

	if (!names)
		return SK_FCM_NO_MATCH;
	conn_addr_of(&c->src, &src);
	conn_addr_of(&c->direct_src, &dsrc);
	return match_server_name(names, c, dst, &src, &dsrc);
}

int sk_fcm_match(const struct sk_fcm *m, const struct sk_fcm_conn *c)
{
	struct conn_addr dst;
	struct fc_entry key = { .key.num = 0 };
	const struct fc_entry *port;
	int r;

	if (!m->root.n)
		return m->fallback;
	conn_addr_of(&c->dst, &dst);
	/* A port with its own chains is final: no fallback to the port-less chains. */
	if (dst.is_ip) {
		key.key.num = dst.port;
		port = bsearch(&key, m->root.e, m->root.n, sizeof(*m->root.e), port_cmp);
		if (port) {
			r = match_port(port, c, &dst);
			return r >= 0 ? r : m->fallback;
		}
	}
	key.key.num = 0;
	port = bsearch(&key, m->root.e, m->root.n, sizeof(*m->root.e), port_cmp);
	r = port ? match_port(port, c, &dst) : SK_FCM_NO_MATCH;
	return r >= 0 ? r : m->fallback;
}
