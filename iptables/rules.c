/* rules: what istio-iptables' IptablesConfigurator.Run() builds in REDIRECT mode, rule for
 * rule, and how its IptablesRuleBuilder turns that into iptables-restore input. */
#include "iptables/rules.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "iptables/cidr.h"

const char *const sk_ipt_table_names[SK_IPT_NTABLES] = { "filter", "mangle", "nat", "raw" };

#define ISTIO_INBOUND "ISTIO_INBOUND"
#define ISTIO_REDIRECT "ISTIO_REDIRECT"
#define ISTIO_IN_REDIRECT "ISTIO_IN_REDIRECT"
#define ISTIO_OUTPUT "ISTIO_OUTPUT"
#define ISTIO_OUTPUT_DNS "ISTIO_OUTPUT_DNS"
#define ISTIO_DROP "ISTIO_DROP"
#define AGENT_DNS_PORT "15053" /* pilot-agent's DNS proxy */
#define V6_LOOPBACK "::1/128"
#define V6_INBOUND_PASSTHROUGH "::6/128"
#define V4_INBOUND_PASSTHROUGH "127.0.0.6/32"

enum { V4 = 1, V6 = 2, BOTH = 3 };

bool sk_ipt_builtin(const char *name)
{
	static const char *const builtin[] = { "INPUT", "OUTPUT", "FORWARD", "PREROUTING",
					       "POSTROUTING", "ACCEPT", "RETURN", "DROP" };
	size_t i;

	for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		if (strcmp(name, builtin[i]) == 0)
			return true;
	return false;
}

/* ---- string lists (config.Split: comma-separated, empty items dropped) */

struct strv {
	char **v;
	size_t n;
};

static void strv_free(struct strv *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int strv_push(struct strv *l, const char *s)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	l->v = v;
	v[l->n] = strdup(s);
	if (!v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

static int push_item(const char *item, void *ctx)
{
	return strv_push(ctx, item);
}

static int split(const char *s, struct strv *out)
{
	out->v = NULL;
	out->n = 0;
	return sk_ipt_list_each(s, push_item, out);
}

/* config.NetworkRange for one family */
struct range {
	bool wildcard;
	bool loopback; /* a loopback prefix is listed */
	struct strv cidrs; /* canonical text, as netip.Prefix.String() */
};

/* config.SeparateV4V6 */
static int separate(const char *list, struct range *v4, struct range *v6)
{
	struct strv items;
	size_t i;
	int rc;

	memset(v4, 0, sizeof(*v4));
	memset(v6, 0, sizeof(*v6));
	if (list && strcmp(list, "*") == 0) {
		v4->wildcard = v6->wildcard = true;
		return 0;
	}
	rc = split(list, &items);
	for (i = 0; rc == 0 && i < items.n; i++) {
		struct sk_ipt_addr a;
		char text[SK_IPT_CIDR_MAX];
		struct range *r;

		if (sk_ipt_cidr_parse(items.v[i], &a, text, sizeof(text)) < 0) {
			rc = -EINVAL;
			break;
		}
		r = a.v6 ? v6 : v4;
		r->loopback = r->loopback || sk_ipt_addr_is_loopback(&a);
		rc = strv_push(&r->cidrs, text);
	}
	strv_free(&items);
	return rc;
}

/* ---- the builder */

struct builder {
	const struct sk_ipt_config *cfg;
	struct sk_ipt_ruleset *rs;
	int rc; /* the first error; later adds are no-ops */
};

static void push_rule(struct builder *b, enum sk_ipt_family fam, enum sk_ipt_table table,
		      const char *chain, int pos, const char *spec)
{
	struct sk_ipt_ruleset *rs = b->rs;
	struct sk_ipt_rule *r;

	if (rs->n[fam] == rs->cap[fam]) {
		size_t cap = rs->cap[fam] ? rs->cap[fam] * 2 : 32;
		struct sk_ipt_rule *v = realloc(rs->rules[fam], cap * sizeof(*v));

		if (!v) {
			b->rc = -ENOMEM;
			return;
		}
		rs->rules[fam] = v;
		rs->cap[fam] = cap;
	}
	r = &rs->rules[fam][rs->n[fam]];
	r->spec = strdup(spec);
	if (!r->spec) {
		b->rc = -ENOMEM;
		return;
	}
	r->table = table;
	r->chain = chain;
	r->insert_pos = pos;
	rs->n[fam]++;
}

/* Adds a rule to the families in fams (IPv6 only when it is on): appended when pos is 0,
 * else inserted at pos. */
__attribute__((format(printf, 6, 7))) static void add(struct builder *b, unsigned fams,
						      enum sk_ipt_table table, const char *chain,
						      int pos, const char *fmt, ...)
{
	char *spec;
	va_list ap;
	int n;

	if (b->rc)
		return;
	va_start(ap, fmt);
	n = vasprintf(&spec, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->rc = -ENOMEM;
		return;
	}
	if (fams & V4)
		push_rule(b, SK_IPT_V4, table, chain, pos, spec);
	if ((fams & V6) && b->rs->ipv6)
		push_rule(b, SK_IPT_V6, table, chain, pos, spec);
	free(spec);
}

#define append(b, fams, table, chain, ...) add(b, fams, table, chain, 0, __VA_ARGS__)

/* The loopback destination the app uses to reach itself, per family. */
static const char *loopback(const struct builder *b, unsigned fam)
{
	return fam == V4 ? b->cfg->host_ipv4_loopback_cidr : V6_LOOPBACK;
}

/* handleInboundPortsInclude, REDIRECT mode: nothing is captured inbound when -b is empty. */
static void inbound(struct builder *b, const struct strv *include, const struct strv *exclude)
{
	size_t i;

	if (!b->cfg->inbound_ports_include[0])
		return;
	append(b, BOTH, SK_IPT_NAT, "PREROUTING", "-p tcp -j " ISTIO_INBOUND);
	if (strcmp(b->cfg->inbound_ports_include, "*") == 0) {
		for (i = 0; i < exclude->n; i++)
			append(b, BOTH, SK_IPT_NAT, ISTIO_INBOUND, "-p tcp --dport %s -j RETURN",
			       exclude->v[i]);
		append(b, BOTH, SK_IPT_NAT, ISTIO_INBOUND, "-p tcp -j " ISTIO_IN_REDIRECT);
		return;
	}
	for (i = 0; i < include->n; i++)
		append(b, BOTH, SK_IPT_NAT, ISTIO_INBOUND, "-p tcp --dport %s -j " ISTIO_IN_REDIRECT,
		       include->v[i]);
}

/* The proxy's own traffic, for one -u or -g value (owner is "uid" or "gid"): sent back to
 * itself through the inbound port when it targets the pod over lo, returned otherwise. */
static void proxy_owner(struct builder *b, const char *owner, const char *id, bool dns_variant,
			bool loopback_included, bool redirect_dns)
{
	unsigned fam;

	for (fam = V4; fam <= V6; fam++) {
		if (dns_variant)
			append(b, fam, SK_IPT_NAT, ISTIO_OUTPUT,
			       "-o lo ! -d %s -p tcp -m multiport ! --dports 53,%s -m owner "
			       "--%s-owner %s -j " ISTIO_IN_REDIRECT,
			       loopback(b, fam), b->cfg->inbound_tunnel_port, owner, id);
		else
			append(b, fam, SK_IPT_NAT, ISTIO_OUTPUT,
			       "-o lo ! -d %s -p tcp ! --dport %s -m owner --%s-owner %s -j "
			       ISTIO_IN_REDIRECT,
			       loopback(b, fam), b->cfg->inbound_tunnel_port, owner, id);
	}
	/* An app calling itself over lo stays direct, unless a loopback range was asked for. */
	if (!loopback_included) {
		if (redirect_dns)
			append(b, BOTH, SK_IPT_NAT, ISTIO_OUTPUT,
			       "-o lo -p tcp ! --dport 53 -m owner ! --%s-owner %s -j RETURN", owner,
			       id);
		else
			append(b, BOTH, SK_IPT_NAT, ISTIO_OUTPUT,
			       "-o lo -m owner ! --%s-owner %s -j RETURN", owner, id);
	}
	append(b, BOTH, SK_IPT_NAT, ISTIO_OUTPUT, "-m owner --%s-owner %s -j RETURN", owner, id);
}

/* handleCaptureByOwnerGroup (ISTIO_OUTBOUND_OWNER_GROUPS[_EXCLUDE]) */
static void owner_groups(struct builder *b)
{
	const struct sk_ipt_config *cfg = b->cfg;
	struct strv groups;
	size_t i;

	if (strcmp(cfg->owner_groups_include, "*") == 0) {
		if ((b->rc = b->rc ? b->rc : split(cfg->owner_groups_exclude, &groups)))
			return;
		for (i = 0; i < groups.n; i++)
			append(b, BOTH, SK_IPT_NAT, ISTIO_OUTPUT, "-m owner --gid-owner %s -j RETURN",
			       groups.v[i]);
	} else {
		char *spec = NULL;
		size_t len = 0;
		FILE *f;

		if ((b->rc = b->rc ? b->rc : split(cfg->owner_groups_include, &groups)))
			return;
		f = open_memstream(&spec, &len);
		if (!f) {
			b->rc = -ENOMEM;
			strv_free(&groups);
			return;
		}
		/* one rule: traffic of none of these groups is not captured */
		for (i = 0; i < groups.n; i++)
			fprintf(f, "-m owner ! --gid-owner %s ", groups.v[i]);
		fputs("-j RETURN", f);
		if (fclose(f) != 0)
			b->rc = -ENOMEM;
		else
			append(b, BOTH, SK_IPT_NAT, ISTIO_OUTPUT, "%s", spec);
		free(spec);
	}
	strv_free(&groups);
}

/* SetupDNSRedir and addDNSConntrackZones: DNS to pilot-agent's port 15053, and the
 * conntrack zones that keep the proxy's and the app's UDP DNS flows apart. */
static void dns(struct builder *b, const struct strv *uids, const struct strv *gids,
		const struct strv *servers4, const struct strv *servers6)
{
	bool all = b->cfg->capture_all_dns;
	size_t i;

	append(b, BOTH, SK_IPT_RAW, "OUTPUT", "-j " ISTIO_OUTPUT_DNS);
	if (all || servers4->n)
		append(b, V4, SK_IPT_NAT, ISTIO_OUTPUT, "-j " ISTIO_OUTPUT_DNS);
	if (all || servers6->n)
		append(b, V6, SK_IPT_NAT, ISTIO_OUTPUT, "-j " ISTIO_OUTPUT_DNS);
	if (all) {
		append(b, BOTH, SK_IPT_NAT, ISTIO_OUTPUT_DNS,
		       "-p tcp --dport 53 -j REDIRECT --to-ports " AGENT_DNS_PORT);
	} else {
		for (i = 0; i < servers4->n; i++)
			append(b, V4, SK_IPT_NAT, ISTIO_OUTPUT_DNS,
			       "-p tcp --dport 53 -d %s/32 -j REDIRECT --to-ports " AGENT_DNS_PORT,
			       servers4->v[i]);
		for (i = 0; i < servers6->n; i++)
			append(b, V6, SK_IPT_NAT, ISTIO_OUTPUT_DNS,
			       "-p tcp --dport 53 -d %s/128 -j REDIRECT --to-ports " AGENT_DNS_PORT,
			       servers6->v[i]);
	}
	/* istio writes --to-port (singular) for UDP; iptables takes both spellings */
	if (all) {
		append(b, BOTH, SK_IPT_NAT, ISTIO_OUTPUT_DNS,
		       "-p udp --dport 53 -j REDIRECT --to-port " AGENT_DNS_PORT);
	} else {
		for (i = 0; i < servers4->n; i++)
			append(b, V4, SK_IPT_NAT, ISTIO_OUTPUT_DNS,
			       "-p udp --dport 53 -d %s/32 -j REDIRECT --to-port " AGENT_DNS_PORT,
			       servers4->v[i]);
		for (i = 0; i < servers6->n; i++)
			append(b, V6, SK_IPT_NAT, ISTIO_OUTPUT_DNS,
			       "-p udp --dport 53 -d %s/128 -j REDIRECT --to-port " AGENT_DNS_PORT,
			       servers6->v[i]);
	}
	/* zone 1: the proxy and the upstream resolvers; zone 2: the app and the proxy */
	for (i = 0; i < uids->n; i++) {
		append(b, BOTH, SK_IPT_RAW, ISTIO_OUTPUT_DNS,
		       "-p udp --dport 53 -m owner --uid-owner %s -j CT --zone 1", uids->v[i]);
		append(b, BOTH, SK_IPT_RAW, ISTIO_OUTPUT_DNS,
		       "-p udp --sport " AGENT_DNS_PORT " -m owner --uid-owner %s -j CT --zone 2",
		       uids->v[i]);
	}
	for (i = 0; i < gids->n; i++) {
		append(b, BOTH, SK_IPT_RAW, ISTIO_OUTPUT_DNS,
		       "-p udp --dport 53 -m owner --gid-owner %s -j CT --zone 1", gids->v[i]);
		append(b, BOTH, SK_IPT_RAW, ISTIO_OUTPUT_DNS,
		       "-p udp --sport " AGENT_DNS_PORT " -m owner --gid-owner %s -j CT --zone 2",
		       gids->v[i]);
	}
	if (all) {
		append(b, BOTH, SK_IPT_RAW, "PREROUTING", "-j " ISTIO_INBOUND);
		append(b, BOTH, SK_IPT_RAW, ISTIO_OUTPUT_DNS, "-p udp --dport 53 -j CT --zone 2");
		append(b, BOTH, SK_IPT_RAW, ISTIO_INBOUND, "-p udp --sport 53 -j CT --zone 1");
		return;
	}
	if (servers4->n)
		append(b, V4, SK_IPT_RAW, "PREROUTING", "-j " ISTIO_INBOUND);
	for (i = 0; i < servers4->n; i++) {
		append(b, V4, SK_IPT_RAW, ISTIO_OUTPUT_DNS, "-p udp --dport 53 -d %s/32 -j CT --zone 2",
		       servers4->v[i]);
		append(b, V4, SK_IPT_RAW, ISTIO_INBOUND, "-p udp --sport 53 -s %s/32 -j CT --zone 1",
		       servers4->v[i]);
	}
	if (servers6->n)
		append(b, V6, SK_IPT_RAW, "PREROUTING", "-j " ISTIO_INBOUND);
	for (i = 0; i < servers6->n; i++) {
		append(b, V6, SK_IPT_RAW, ISTIO_OUTPUT_DNS,
		       "-p udp --dport 53 -d %s/128 -j CT --zone 2", servers6->v[i]);
		append(b, V6, SK_IPT_RAW, ISTIO_INBOUND, "-p udp --sport 53 -s %s/128 -j CT --zone 1",
		       servers6->v[i]);
	}
}

/* handleOutboundIncludeRules for one family */
static void outbound_include(struct builder *b, unsigned fam, const struct range *r,
			     const struct strv *virt)
{
	size_t i, j;

	if (r->wildcard) {
		append(b, fam, SK_IPT_NAT, ISTIO_OUTPUT, "-j " ISTIO_REDIRECT);
		for (j = 0; j < virt->n; j++)
			add(b, fam, SK_IPT_NAT, "PREROUTING", 1, "-i %s -j " ISTIO_REDIRECT, virt->v[j]);
		return;
	}
	for (i = 0; i < r->cidrs.n; i++) {
		for (j = 0; j < virt->n; j++)
			add(b, fam, SK_IPT_NAT, "PREROUTING", 1, "-i %s -d %s -j " ISTIO_REDIRECT,
			    virt->v[j], r->cidrs.v[i]);
		append(b, fam, SK_IPT_NAT, ISTIO_OUTPUT, "-d %s -j " ISTIO_REDIRECT, r->cidrs.v[i]);
	}
}

struct lists {
	struct strv excl_ifaces, virt, in_include, in_exclude, out_include, out_exclude;
	struct strv uids, gids, dns4, dns6;
	struct range ex4, ex6, in4, in6;
};

static void lists_free(struct lists *l)
{
	strv_free(&l->excl_ifaces);
	strv_free(&l->virt);
	strv_free(&l->in_include);
	strv_free(&l->in_exclude);
	strv_free(&l->out_include);
	strv_free(&l->out_exclude);
	strv_free(&l->uids);
	strv_free(&l->gids);
	strv_free(&l->dns4);
	strv_free(&l->dns6);
	strv_free(&l->ex4.cidrs);
	strv_free(&l->ex6.cidrs);
	strv_free(&l->in4.cidrs);
	strv_free(&l->in6.cidrs);
}

static int lists_split(const struct sk_ipt_config *cfg, struct lists *l)
{
	int rc = 0;

	memset(l, 0, sizeof(*l));
	rc = rc ? rc : split(cfg->exclude_interfaces, &l->excl_ifaces);
	rc = rc ? rc : split(cfg->kube_virt_interfaces, &l->virt);
	rc = rc ? rc : split(cfg->inbound_ports_include, &l->in_include);
	rc = rc ? rc : split(cfg->inbound_ports_exclude, &l->in_exclude);
	rc = rc ? rc : split(cfg->outbound_ports_include, &l->out_include);
	rc = rc ? rc : split(cfg->outbound_ports_exclude, &l->out_exclude);
	rc = rc ? rc : split(cfg->proxy_uid, &l->uids);
	rc = rc ? rc : split(cfg->proxy_gid, &l->gids);
	rc = rc ? rc : split(cfg->dns_servers_v4, &l->dns4);
	rc = rc ? rc : split(cfg->dns_servers_v6, &l->dns6);
	rc = rc ? rc : separate(cfg->ip_ranges_exclude, &l->ex4, &l->ex6);
	rc = rc ? rc : separate(cfg->ip_ranges_include, &l->in4, &l->in6);
	return rc;
}

int sk_ipt_rules_build(const struct sk_ipt_config *cfg, struct sk_ipt_ruleset *rs, char *err,
		       size_t errlen)
{
	struct builder b = { cfg, rs, 0 };
	bool redirect_dns = cfg->redirect_dns, no_loopback;
	struct lists l;
	size_t i;
	unsigned fam;

	memset(rs, 0, sizeof(*rs));
	rs->ipv6 = cfg->enable_ipv6;
	if (strcmp(cfg->mode, "TPROXY") == 0) {
		snprintf(err, errlen, "TPROXY mode is not supported yet");
		return -ENOTSUP;
	}
	b.rc = lists_split(cfg, &l);
	if (b.rc == -EINVAL)
		snprintf(err, errlen, "-i/-x: not a list of IP prefixes");
	if (b.rc) {
		lists_free(&l);
		return b.rc;
	}
	if (l.ex4.wildcard) {
		snprintf(err, errlen, "invalid value for OUTBOUND_IP_RANGES_EXCLUDE");
		lists_free(&l);
		return -EINVAL;
	}
	/* istio turns DNS capture off when there is nothing to capture (and warns) */
	if (redirect_dns && !cfg->capture_all_dns && !l.dns4.n && !l.dns6.n) {
		fprintf(stderr, "skiff-iptables: --redirect-dns without --capture-all-dns and no "
			"nameserver found: DNS capture disabled\n");
		redirect_dns = false;
	}
	no_loopback = !l.in4.loopback && !l.in6.loopback;

	/* shortCircuitExcludeInterfaces, shortCircuitKubeInternalInterface */
	for (i = 0; i < l.excl_ifaces.n; i++) {
		append(&b, BOTH, SK_IPT_NAT, "PREROUTING", "-i %s -j RETURN", l.excl_ifaces.v[i]);
		append(&b, BOTH, SK_IPT_NAT, "OUTPUT", "-o %s -j RETURN", l.excl_ifaces.v[i]);
	}
	for (i = 0; i < l.virt.n; i++)
		add(&b, BOTH, SK_IPT_NAT, "PREROUTING", 1, "-i %s -j RETURN", l.virt.v[i]);
	if (cfg->drop_invalid) {
		append(&b, BOTH, SK_IPT_MANGLE, "PREROUTING",
		       "-m conntrack --ctstate INVALID -j " ISTIO_DROP);
		append(&b, BOTH, SK_IPT_MANGLE, ISTIO_DROP, "-j DROP");
	}
	append(&b, BOTH, SK_IPT_NAT, ISTIO_INBOUND, "-p tcp --dport %s -j RETURN",
	       cfg->inbound_tunnel_port);
	append(&b, BOTH, SK_IPT_NAT, ISTIO_REDIRECT, "-p tcp -j REDIRECT --to-ports %s",
	       cfg->proxy_port);
	append(&b, BOTH, SK_IPT_NAT, ISTIO_IN_REDIRECT, "-p tcp -j REDIRECT --to-ports %s",
	       cfg->inbound_capture_port);
	inbound(&b, &l.in_include, &l.in_exclude);

	append(&b, BOTH, SK_IPT_NAT, "OUTPUT", "-j " ISTIO_OUTPUT);
	for (i = 0; i < l.out_exclude.n; i++) {
		append(&b, BOTH, SK_IPT_NAT, ISTIO_OUTPUT, "-p tcp --dport %s -j RETURN",
		       l.out_exclude.v[i]);
		append(&b, BOTH, SK_IPT_NAT, ISTIO_OUTPUT, "-p udp --dport %s -j RETURN",
		       l.out_exclude.v[i]);
	}
	/* 127.0.0.6 (::6) is where the inbound passthrough cluster connects from */
	append(&b, V4, SK_IPT_NAT, ISTIO_OUTPUT, "-o lo -s " V4_INBOUND_PASSTHROUGH " -j RETURN");
	append(&b, V6, SK_IPT_NAT, ISTIO_OUTPUT, "-o lo -s " V6_INBOUND_PASSTHROUGH " -j RETURN");
	for (i = 0; i < l.uids.n; i++)
		proxy_owner(&b, "uid", l.uids.v[i], redirect_dns, !no_loopback, redirect_dns);
	for (i = 0; i < l.gids.n; i++)
		proxy_owner(&b, "gid", l.gids.v[i], false, !no_loopback, redirect_dns);
	owner_groups(&b);
	if (redirect_dns)
		dns(&b, &l.uids, &l.gids, &l.dns4, &l.dns6);

	/* localhost traffic (Envoy-aware apps, container to container) stays direct */
	for (fam = V4; fam <= V6; fam++)
		append(&b, fam, SK_IPT_NAT, ISTIO_OUTPUT, "-d %s -j RETURN", loopback(&b, fam));
	for (i = 0; i < l.ex4.cidrs.n; i++)
		append(&b, V4, SK_IPT_NAT, ISTIO_OUTPUT, "-d %s -j RETURN", l.ex4.cidrs.v[i]);
	for (i = 0; i < l.ex6.cidrs.n; i++)
		append(&b, V6, SK_IPT_NAT, ISTIO_OUTPUT, "-d %s -j RETURN", l.ex6.cidrs.v[i]);
	for (i = 0; i < l.out_include.n; i++)
		append(&b, BOTH, SK_IPT_NAT, ISTIO_OUTPUT, "-p tcp --dport %s -j " ISTIO_REDIRECT,
		       l.out_include.v[i]);
	outbound_include(&b, V4, &l.in4, &l.virt);
	outbound_include(&b, V6, &l.in6, &l.virt);

	lists_free(&l);
	if (b.rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	return b.rc;
}

void sk_ipt_rules_free(struct sk_ipt_ruleset *rs)
{
	int fam;
	size_t i;

	if (!rs)
		return;
	for (fam = 0; fam < 2; fam++) {
		for (i = 0; i < rs->n[fam]; i++)
			free(rs->rules[fam][i].spec);
		free(rs->rules[fam]);
		rs->rules[fam] = NULL;
		rs->n[fam] = rs->cap[fam] = 0;
	}
}

/* ---- texts */

/* The jump target when the spec ends in "-j TARGET" (as istio checks: the last two tokens). */
static const char *final_jump(const char *spec, size_t *len)
{
	const char *last = strrchr(spec, ' ');

	if (!last || last - spec < 2 || strncmp(last - 2, "-j", 2) != 0 ||
	    (last - spec > 2 && last[-3] != ' '))
		return NULL;
	*len = strlen(last + 1);
	return last + 1;
}

struct chain_seen {
	enum sk_ipt_table table;
	const char *name;
	size_t len;
};

static bool seen_add(struct chain_seen *seen, size_t *n, size_t cap, enum sk_ipt_table table,
		     const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (seen[i].table == table && seen[i].len == len &&
		    strncmp(seen[i].name, name, len) == 0)
			return false;
	if (*n < cap)
		seen[(*n)++] = (struct chain_seen){ table, name, len };
	return true;
}

static bool is_builtin_n(const char *name, size_t len)
{
	char buf[32];

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, name, len);
	buf[len] = '\0';
	return sk_ipt_builtin(buf);
}

static void write_rule(const struct sk_ipt_rule *r, const char *op_append, FILE *out)
{
	if (r->insert_pos)
		fprintf(out, "-I %s %d %s\n", r->chain, r->insert_pos, r->spec);
	else
		fprintf(out, "%s %s %s\n", op_append, r->chain, r->spec);
}

void sk_ipt_rules_write_restore(const struct sk_ipt_ruleset *rs, enum sk_ipt_family fam,
				const char *const prefix[SK_IPT_NTABLES], FILE *out)
{
	const struct sk_ipt_rule *rules = rs->rules[fam];
	size_t n = rs->n[fam], i, nseen = 0, cap = 2 * n + 1;
	struct chain_seen *seen = calloc(cap, sizeof(*seen));
	int t;

	if (!seen) {
		fputs("# out of memory\n", out); /* refused by iptables-restore: nothing applied */
		return;
	}
	/* Creation order: each chain that holds rules, in order of its first rule; then the
	 * chains that are only jumped to. Both lists skip the built-in chains. */
	for (t = 0; t < SK_IPT_NTABLES; t++) {
		bool any = prefix && prefix[t] && prefix[t][0];

		for (i = 0; i < n && !any; i++)
			any = rules[i].table == (enum sk_ipt_table)t;
		if (!any)
			continue;
		fprintf(out, "* %s\n", sk_ipt_table_names[t]);
		if (prefix && prefix[t])
			fputs(prefix[t], out);
		nseen = 0;
		for (i = 0; i < n; i++) {
			const struct sk_ipt_rule *r = &rules[i];

			if (r->table != (enum sk_ipt_table)t)
				continue;
			if (seen_add(seen, &nseen, cap, r->table, r->chain, strlen(r->chain)) &&
			    !sk_ipt_builtin(r->chain))
				fprintf(out, "-N %s\n", r->chain);
		}
		for (i = 0; i < n; i++) {
			const struct sk_ipt_rule *r = &rules[i];
			const char *target;
			size_t len;

			if (r->table != (enum sk_ipt_table)t || !(target = final_jump(r->spec, &len)))
				continue;
			if (seen_add(seen, &nseen, cap, r->table, target, len) &&
			    !is_builtin_n(target, len))
				fprintf(out, "-N %.*s\n", (int)len, target);
		}
		for (i = 0; i < n; i++)
			if (rules[i].table == (enum sk_ipt_table)t)
				write_rule(&rules[i], "-A", out);
		fputs("COMMIT\n", out);
	}
	free(seen);
}

/* UndoRules over the reversed rules: every rule outside the ISTIO_* chains and every jump
 * into one becomes -D (the rest goes with the flush); then -F and -X of each chain. */
void sk_ipt_rules_write_cleanup_cmds(const struct sk_ipt_ruleset *rs, enum sk_ipt_family fam,
				     const char *binary, FILE *out)
{
	const struct sk_ipt_rule *rules = rs->rules[fam];
	size_t n = rs->n[fam], i, nseen = 0;
	struct chain_seen *seen = calloc(n + 1, sizeof(*seen));

	for (i = n; i-- > 0;) {
		const struct sk_ipt_rule *r = &rules[i];
		const char *target;
		size_t len;

		if (strncmp(r->chain, "ISTIO_", 6) == 0 &&
		    !((target = final_jump(r->spec, &len)) && strncmp(target, "ISTIO_", 6) == 0))
			continue;
		fprintf(out, "%s -t %s -D %s %s\n", binary, sk_ipt_table_names[r->table], r->chain,
			r->spec);
	}
	for (i = n; seen && i-- > 0;) {
		const struct sk_ipt_rule *r = &rules[i];

		if (seen_add(seen, &nseen, n + 1, r->table, r->chain, strlen(r->chain)) &&
		    !sk_ipt_builtin(r->chain)) {
			fprintf(out, "%s -t %s -F %s\n", binary, sk_ipt_table_names[r->table], r->chain);
			fprintf(out, "%s -t %s -X %s\n", binary, sk_ipt_table_names[r->table], r->chain);
		}
	}
	free(seen);
}

void sk_ipt_rule_saved_form(const struct sk_ipt_rule *r, char *out, size_t outlen)
{
	snprintf(out, outlen, "-A %s %s", r->chain, r->spec);
}
