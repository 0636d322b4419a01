/* flags: istio-iptables' flags (tools/istio-iptables/pkg/cmd/root.go) and the environment
 * variables bound to them (pkg/flag.BindEnv: the long name upper-cased, '-' -> '_'). */
#include "iptables/flags.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "iptables/cidr.h"

enum kind { K_STR, K_BOOL };

struct flag_def {
	char short_name;     /* 0: long only */
	const char *name;    /* long name */
	const char *env;     /* bound environment variable, or NULL */
	const char *env2;    /* a second one that overrides it (flag.AdditionalEnv), or NULL */
	enum kind kind;
	size_t off;
	const char *help;
};

#define S(field) K_STR, offsetof(struct sk_ipt_config, field)
#define B(field) K_BOOL, offsetof(struct sk_ipt_config, field)

static const struct flag_def flags[] = {
	{ 'p', "envoy-port", NULL, NULL, S(proxy_port), "outbound capture port (15001)" },
	{ 'z', "inbound-capture-port", "INBOUND_CAPTURE_PORT", NULL, S(inbound_capture_port),
	  "inbound capture port (15006)" },
	{ 'e', "inbound-tunnel-port", "INBOUND_TUNNEL_PORT", NULL, S(inbound_tunnel_port),
	  "inbound tunnel port, never captured (15008)" },
	{ 'u', "proxy-uid", "PROXY_UID", NULL, S(proxy_uid),
	  "proxy UIDs whose traffic is not captured (ENVOY_USER's uid, else 1337)" },
	{ 'g', "proxy-gid", "PROXY_GID", NULL, S(proxy_gid), "proxy GIDs (default: -u)" },
	{ 'm', "istio-inbound-interception-mode", "ISTIO_INBOUND_INTERCEPTION_MODE", NULL, S(mode),
	  "REDIRECT (TPROXY is not supported yet)" },
	{ 't', "istio-inbound-tproxy-mark", "ISTIO_INBOUND_TPROXY_MARK", NULL, S(tproxy_mark),
	  "TPROXY mark (TPROXY only)" },
	{ 'r', "istio-inbound-tproxy-route-table", "ISTIO_INBOUND_TPROXY_ROUTE_TABLE", NULL,
	  S(tproxy_route_table), "TPROXY route table (TPROXY only)" },
	{ 'b', "istio-inbound-ports", "ISTIO_INBOUND_PORTS", NULL, S(inbound_ports_include),
	  "inbound ports to capture: '*' or a list; empty captures none" },
	{ 'd', "istio-local-exclude-ports", "ISTIO_LOCAL_EXCLUDE_PORTS", NULL,
	  S(inbound_ports_exclude), "inbound ports not captured (with -b '*')" },
	{ 'c', "istio-exclude-interfaces", "ISTIO_EXCLUDE_INTERFACES", NULL, S(exclude_interfaces),
	  "interfaces whose traffic is never captured" },
	{ 'i', "istio-service-cidr", "ISTIO_SERVICE_CIDR", NULL, S(ip_ranges_include),
	  "outbound CIDRs to capture: '*' or a list; empty captures none" },
	{ 'x', "istio-service-exclude-cidr", "ISTIO_SERVICE_EXCLUDE_CIDR", NULL,
	  S(ip_ranges_exclude), "outbound CIDRs not captured" },
	{ 'q', "istio-outbound-ports", "ISTIO_OUTBOUND_PORTS", NULL, S(outbound_ports_include),
	  "outbound ports always captured" },
	{ 'o', "istio-local-outbound-ports-exclude", "ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE", NULL,
	  S(outbound_ports_exclude), "outbound ports never captured" },
	{ 'k', "kube-virt-interfaces", "KUBE_VIRT_INTERFACES", NULL, S(kube_virt_interfaces),
	  "virtual interfaces whose inbound traffic is treated as outbound" },
	{ 'n', "dry-run", "DRY_RUN", NULL, B(dry_run), "print the rules, change nothing" },
	{ 0, "iptables-probe-port", "IPTABLES_PROBE_PORT", NULL, S(probe_port),
	  "validation probe port (accepted, unused)" },
	{ 0, "probe-timeout", "PROBE_TIMEOUT", NULL, S(probe_timeout),
	  "validation probe timeout (accepted, unused)" },
	{ 0, "skip-rule-apply", "SKIP_RULE_APPLY", NULL, B(skip_rule_apply),
	  "do nothing (istio's validation container sets it)" },
	{ 0, "run-validation", "RUN_VALIDATION", NULL, B(run_validation), "not supported" },
	{ 0, "redirect-dns", "REDIRECT_DNS", "ISTIO_META_DNS_CAPTURE", B(redirect_dns),
	  "send DNS (port 53) to pilot-agent on 15053" },
	{ 0, "drop-invalid", "DROP_INVALID", "INVALID_DROP", B(drop_invalid),
	  "drop conntrack-INVALID packets (mangle ISTIO_DROP)" },
	{ 0, "dual-stack", "DUAL_STACK", "ISTIO_DUAL_STACK", B(dual_stack),
	  "IPv6 rules too (ip6tables-restore)" },
	{ 0, "capture-all-dns", "CAPTURE_ALL_DNS", NULL, B(capture_all_dns),
	  "with --redirect-dns: all port 53 traffic, not only to resolv.conf's servers" },
	{ 0, "network-namespace", "NETWORK_NAMESPACE", NULL, S(network_namespace),
	  "apply inside this network namespace (a path, or a name under /var/run/netns)" },
	{ 0, "cni-mode", "CNI_MODE", NULL, B(cni_mode), "accepted, no effect" },
	{ 0, "reconcile", "RECONCILE", NULL, B(reconcile),
	  "replace different ISTIO_* rules already present" },
	{ 0, "cleanup-only", "CLEANUP_ONLY", NULL, B(cleanup_only),
	  "remove the ISTIO_* chains and the rules that lead to them" },
	{ 0, "force-apply", "FORCE_APPLY", NULL, B(force_apply),
	  "apply even if the same rules are already present" },
	{ 0, "native-nftables", "NATIVE_NFTABLES", NULL, B(native_nftables), "not supported" },
	{ 0, "force-iptables-binary", "FORCE_IPTABLES_BINARY", NULL, S(force_iptables_binary),
	  "legacy or nft: use iptables-legacy-* or iptables-nft-*" },
	{ 'h', "help", NULL, NULL, B(help), "this text" },
};

#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

void sk_ipt_flags_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: skiff-iptables [flags]\n"
		   "Sets up the capture rules of an Istio sidecar (istio-iptables' flags).\n");
	for (i = 0; i < NFLAGS; i++) {
		char lhs[64];

		if (flags[i].short_name)
			snprintf(lhs, sizeof(lhs), "-%c, --%s", flags[i].short_name, flags[i].name);
		else
			snprintf(lhs, sizeof(lhs), "    --%s", flags[i].name);
		fprintf(f, "  %-42s %s\n", lhs, flags[i].help);
	}
}

/* strconv.ParseBool */
static int parse_bool(const char *s, bool *out)
{
	static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const f[] = { "0", "f", "F", "FALSE", "false", "False" };
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (strcmp(s, t[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, f[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static const char **str_field(struct sk_ipt_config *cfg, const struct flag_def *d)
{
	return (const char **)(void *)((char *)cfg + d->off);
}

static bool *bool_field(struct sk_ipt_config *cfg, const struct flag_def *d)
{
	return (bool *)(void *)((char *)cfg + d->off);
}

static void flag_label(const struct flag_def *d, char *out, size_t outlen)
{
	if (d->short_name)
		snprintf(out, outlen, "-%c/--%s", d->short_name, d->name);
	else
		snprintf(out, outlen, "--%s", d->name);
}

/* Sets the flag's field; err may be NULL (the environment: a bad value is dropped). */
static int set_value(struct sk_ipt_config *cfg, const struct flag_def *d, const char *v,
		     char *err, size_t errlen)
{
	char label[64];

	if (d->kind == K_STR) {
		*str_field(cfg, d) = v;
		return 0;
	}
	if (parse_bool(v, bool_field(cfg, d)) == 0)
		return 0;
	if (err) {
		flag_label(d, label, sizeof(label));
		snprintf(err, errlen, "%s: '%s' is not a boolean", label, v);
	}
	return -EINVAL;
}

/* The environment first, as flag.BindEnv sets it before the command line is parsed; an
 * unparsable boolean is ignored there, as pflag's error is dropped. */
static void apply_env(struct sk_ipt_config *cfg)
{
	size_t i;

	for (i = 0; i < NFLAGS; i++) {
		const char *names[2] = { flags[i].env, flags[i].env2 };
		size_t j;

		for (j = 0; j < 2; j++) {
			const char *v = names[j] ? getenv(names[j]) : NULL;

			if (v)
				(void)set_value(cfg, &flags[i], v, NULL, 0);
		}
	}
	if (getenv("ISTIO_OUTBOUND_OWNER_GROUPS"))
		cfg->owner_groups_include = getenv("ISTIO_OUTBOUND_OWNER_GROUPS");
	if (getenv("ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE"))
		cfg->owner_groups_exclude = getenv("ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE");
	if (getenv("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR"))
		cfg->host_ipv4_loopback_cidr = getenv("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR");
}

static const struct flag_def *find_long(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NFLAGS; i++)
		if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
			return &flags[i];
	return NULL;
}

static const struct flag_def *find_short(char c)
{
	size_t i;

	for (i = 0; i < NFLAGS; i++)
		if (flags[i].short_name == c)
			return &flags[i];
	return NULL;
}

/* istio's logging flags (pkg/log: --log_output_level=default:info, ...) are accepted and
 * ignored: skiff-iptables writes its few lines to stderr. */
static bool is_log_flag(const char *name, size_t len, bool *takes_value)
{
	if (len < 4 || strncmp(name, "log_", 4) != 0)
		return false;
	*takes_value = !(len == 11 && strncmp(name, "log_as_json", 11) == 0);
	return true;
}

static int parse_argv(int argc, char **argv, struct sk_ipt_config *cfg, char *err, size_t errlen)
{
	int i, positional = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *value = NULL;
		const struct flag_def *d;

		if (a[0] != '-' || a[1] == '\0') {
			/* pilot-agent runs it as "pilot-agent istio-iptables <flags>": allow that
			 * one word first; anything else is a mistake. */
			if (positional++ == 0 && strcmp(a, "istio-iptables") == 0)
				continue;
			snprintf(err, errlen, "unexpected argument '%s'", a);
			return -EINVAL;
		}
		if (a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			bool log_value;

			if (len == 0) {
				snprintf(err, errlen, "unexpected argument '--'");
				return -EINVAL;
			}
			if (is_log_flag(name, len, &log_value)) {
				if (!eq && log_value)
					i++;
				continue;
			}
			d = find_long(name, len);
			if (!d) {
				snprintf(err, errlen, "unknown flag: --%.*s", (int)len, name);
				return -EINVAL;
			}
			if (eq)
				value = eq + 1;
		} else {
			d = find_short(a[1]);
			if (!d) {
				snprintf(err, errlen, "unknown shorthand flag: '%c' in %s", a[1], a);
				return -EINVAL;
			}
			if (a[2] != '\0') {
				if (d->kind == K_BOOL) {
					snprintf(err, errlen, "-%c takes no value (in %s)", a[1], a);
					return -EINVAL;
				}
				value = a[2] == '=' ? a + 3 : a + 2;
			}
		}
		if (!value) {
			if (d->kind == K_BOOL) {
				value = "true";
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				char label[64];

				flag_label(d, label, sizeof(label));
				snprintf(err, errlen, "flag needs an argument: %s", label);
				return -EINVAL;
			}
		}
		if (set_value(cfg, d, value, err, errlen) < 0)
			return -EINVAL;
	}
	return 0;
}

int sk_ipt_list_each(const char *list, int (*fn)(const char *item, void *ctx), void *ctx)
{
	const char *p = list ? list : "";

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char item[128];
		int rc;

		if (len > 0) {
			if (len >= sizeof(item))
				len = sizeof(item) - 1;
			memcpy(item, p, len);
			item[len] = '\0';
			rc = fn(item, ctx);
			if (rc)
				return rc;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

/* ---- checks: a bad value fails here, with the flag's name, and never reaches iptables. */

struct check {
	const char *label;
	char *err;
	size_t errlen;
};

static bool is_port(const char *s)
{
	unsigned long v;
	char *end;

	if (s[0] < '0' || s[0] > '9' || strlen(s) > 5)
		return false;
	v = strtoul(s, &end, 10);
	return *end == '\0' && v >= 1 && v <= 65535;
}

static int check_item_length(const char *item, struct check *c)
{
	if (strlen(item) < 127)
		return 0;
	snprintf(c->err, c->errlen, "%s: '%.40s...' is too long", c->label, item);
	return -EINVAL;
}

/* A port, or a range "low:high" as iptables' --dport takes it. */
static int check_port_item(const char *item, void *ctx)
{
	struct check *c = ctx;
	const char *colon = strchr(item, ':');
	char low[8];
	size_t n = colon ? (size_t)(colon - item) : 0;

	if (check_item_length(item, c) < 0)
		return -EINVAL;
	if (!colon && is_port(item))
		return 0;
	if (colon && n > 0 && n < sizeof(low)) {
		memcpy(low, item, n);
		low[n] = '\0';
		if (is_port(low) && is_port(colon + 1) && atoi(low) <= atoi(colon + 1))
			return 0;
	}
	snprintf(c->err, c->errlen, "%s: '%s' is not a port (1-65535) or a range low:high",
		 c->label, item);
	return -EINVAL;
}

static int check_cidr_item(const char *item, void *ctx)
{
	struct check *c = ctx;
	struct sk_ipt_addr a;
	char text[SK_IPT_CIDR_MAX];

	if (check_item_length(item, c) < 0)
		return -EINVAL;
	if (sk_ipt_cidr_parse(item, &a, text, sizeof(text)) == 0)
		return 0;
	snprintf(c->err, c->errlen, "%s: '%s' is not an IP prefix (address/bits)", c->label, item);
	return -EINVAL;
}

static int check_iface_item(const char *item, void *ctx)
{
	struct check *c = ctx;
	const char *p;

	for (p = item; *p; p++)
		if (*p <= ' ' || *p == '/' || *p == '"' || *p == '\'' || *p == 0x7f)
			break;
	if (*p == '\0' && strlen(item) < IFNAMSIZ)
		return 0;
	snprintf(c->err, c->errlen, "%s: '%s' is not an interface name", c->label, item);
	return -EINVAL;
}

/* A user or group: a number or a name, as iptables' owner match takes it. */
static int check_owner_item(const char *item, void *ctx)
{
	struct check *c = ctx;
	const char *p;

	if (check_item_length(item, c) < 0)
		return -EINVAL;
	for (p = item; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == '-' || *p == '.'))
			break;
	if (*p == '\0')
		return 0;
	snprintf(c->err, c->errlen, "%s: '%s' is not a user or group name or id", c->label, item);
	return -EINVAL;
}

static int check_list(const char *list, const char *label, int (*fn)(const char *, void *),
		      bool wildcard_ok, char *err, size_t errlen)
{
	struct check c = { label, err, errlen };

	if (wildcard_ok && list && strcmp(list, "*") == 0)
		return 0;
	return sk_ipt_list_each(list, fn, &c);
}

static int count_item(const char *item, void *ctx)
{
	(void)item;
	(*(size_t *)ctx)++;
	return 0;
}

static int check_single_port(const char *v, const char *label, char *err, size_t errlen)
{
	if (v && is_port(v))
		return 0;
	snprintf(err, errlen, "%s: '%s' is not a port (1-65535)", label, v ? v : "");
	return -EINVAL;
}

static int check_values(struct sk_ipt_config *cfg, char *err, size_t errlen)
{
	struct sk_ipt_addr a;
	char text[SK_IPT_CIDR_MAX];
	size_t n = 0;

	if (check_single_port(cfg->proxy_port, "-p/--envoy-port", err, errlen) < 0 ||
	    check_single_port(cfg->inbound_capture_port, "-z/--inbound-capture-port", err,
			      errlen) < 0 ||
	    check_single_port(cfg->inbound_tunnel_port, "-e/--inbound-tunnel-port", err,
			      errlen) < 0)
		return -EINVAL;
	if (check_list(cfg->proxy_uid, "-u/--proxy-uid", check_owner_item, false, err, errlen) ||
	    check_list(cfg->proxy_gid, "-g/--proxy-gid", check_owner_item, false, err, errlen) ||
	    check_list(cfg->inbound_ports_include, "-b/--istio-inbound-ports", check_port_item,
		       true, err, errlen) ||
	    check_list(cfg->inbound_ports_exclude, "-d/--istio-local-exclude-ports",
		       check_port_item, false, err, errlen) ||
	    check_list(cfg->outbound_ports_include, "-q/--istio-outbound-ports", check_port_item,
		       false, err, errlen) ||
	    check_list(cfg->outbound_ports_exclude, "-o/--istio-local-outbound-ports-exclude",
		       check_port_item, false, err, errlen) ||
	    check_list(cfg->ip_ranges_include, "-i/--istio-service-cidr", check_cidr_item, true,
		       err, errlen) ||
	    check_list(cfg->kube_virt_interfaces, "-k/--kube-virt-interfaces", check_iface_item,
		       false, err, errlen) ||
	    check_list(cfg->exclude_interfaces, "-c/--istio-exclude-interfaces", check_iface_item,
		       false, err, errlen) ||
	    check_list(cfg->owner_groups_include, "ISTIO_OUTBOUND_OWNER_GROUPS", check_owner_item,
		       true, err, errlen) ||
	    check_list(cfg->owner_groups_exclude, "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE",
		       check_owner_item, false, err, errlen))
		return -EINVAL;
	if (cfg->ip_ranges_exclude && strcmp(cfg->ip_ranges_exclude, "*") == 0) {
		/* as istio-iptables: excluding everything is not a thing; use -i "" */
		snprintf(err, errlen, "-x/--istio-service-exclude-cidr: '*' is not allowed "
			 "(invalid value for OUTBOUND_IP_RANGES_EXCLUDE); to capture no outbound "
			 "traffic give -i \"\"");
		return -EINVAL;
	}
	if (check_list(cfg->ip_ranges_exclude, "-x/--istio-service-exclude-cidr", check_cidr_item,
		       false, err, errlen))
		return -EINVAL;
	/* config.ValidateOwnerGroups: the include list becomes one rule of N matches. */
	if (strcmp(cfg->owner_groups_include, "*") != 0) {
		sk_ipt_list_each(cfg->owner_groups_include, count_item, &n);
		if (n > 64) {
			snprintf(err, errlen, "ISTIO_OUTBOUND_OWNER_GROUPS: at most 64 groups, got %zu",
				 n);
			return -EINVAL;
		}
	}
	/* config.ValidateIPv4LoopbackCidr */
	if (sk_ipt_cidr_parse(cfg->host_ipv4_loopback_cidr, &a, text, sizeof(text)) < 0 || a.v6 ||
	    !sk_ipt_addr_is_loopback(&a) ||
	    atoi(strchr(cfg->host_ipv4_loopback_cidr, '/') + 1) < 8) {
		snprintf(err, errlen, "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '%s' is not an IPv4 "
			 "loopback prefix with 8 to 32 bits", cfg->host_ipv4_loopback_cidr);
		return -EINVAL;
	}
	if (cfg->force_iptables_binary[0] && strcmp(cfg->force_iptables_binary, "legacy") != 0 &&
	    strcmp(cfg->force_iptables_binary, "nft") != 0) {
		snprintf(err, errlen, "--force-iptables-binary: '%s' is neither legacy nor nft",
			 cfg->force_iptables_binary);
		return -EINVAL;
	}
	if (cfg->mode[0] && strcmp(cfg->mode, "REDIRECT") != 0 && strcmp(cfg->mode, "TPROXY") != 0) {
		snprintf(err, errlen, "-m/--istio-inbound-interception-mode: '%s' is neither "
			 "REDIRECT nor TPROXY", cfg->mode);
		return -EINVAL;
	}
	return 0;
}

/* config.getLocalIP: istio turns IPv6 on when the pod's first global address is IPv6 (an
 * IPv6-only pod), or with --dual-stack. */
static bool first_address_is_v6(void)
{
	struct ifaddrs *ifa, *it;
	bool v6 = false;

	if (getifaddrs(&ifa) < 0)
		return false;
	for (it = ifa; it; it = it->ifa_next) {
		const struct sockaddr *sa = it->ifa_addr;

		if (!sa)
			continue;
		if (sa->sa_family == AF_INET) {
			const struct sockaddr_in *s4 = (const void *)sa;
			const uint8_t *b = (const uint8_t *)&s4->sin_addr;

			if (b[0] == 127 || (b[0] == 169 && b[1] == 254))
				continue;
			break;
		}
		if (sa->sa_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const void *)sa;

			if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
			    IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr) ||
			    IN6_IS_ADDR_MC_LINKLOCAL(&s6->sin6_addr))
				continue;
			v6 = !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr);
			break;
		}
	}
	freeifaddrs(ifa);
	return v6;
}

static void default_uid(struct sk_ipt_config *cfg)
{
	const char *user = getenv("ENVOY_USER");
	struct passwd *pw = getpwnam(user && *user ? user : "istio-proxy");

	if (pw)
		snprintf(cfg->uid_buf, sizeof(cfg->uid_buf), "%u", (unsigned)pw->pw_uid);
	else
		snprintf(cfg->uid_buf, sizeof(cfg->uid_buf), "1337");
	cfg->proxy_uid = cfg->uid_buf;
}

int sk_ipt_flags_parse(int argc, char **argv, struct sk_ipt_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->proxy_port = "15001";
	cfg->inbound_capture_port = "15006";
	cfg->inbound_tunnel_port = "15008";
	cfg->proxy_uid = "";
	cfg->proxy_gid = "";
	cfg->mode = "";
	cfg->tproxy_mark = "1337";
	cfg->tproxy_route_table = "133";
	cfg->inbound_ports_include = "";
	cfg->inbound_ports_exclude = "";
	cfg->outbound_ports_include = "";
	cfg->outbound_ports_exclude = "";
	cfg->ip_ranges_include = "";
	cfg->ip_ranges_exclude = "";
	cfg->kube_virt_interfaces = "";
	cfg->exclude_interfaces = "";
	cfg->owner_groups_include = "*";
	cfg->owner_groups_exclude = "";
	cfg->host_ipv4_loopback_cidr = "127.0.0.1/32";
	cfg->network_namespace = "";
	cfg->force_iptables_binary = "";
	cfg->probe_port = "15002";
	cfg->probe_timeout = "5s";

	apply_env(cfg);
	if (parse_argv(argc, argv, cfg, err, errlen) < 0)
		return -EINVAL;
	if (cfg->help)
		return 0;
	if (!cfg->proxy_uid[0])
		default_uid(cfg);
	if (!cfg->proxy_gid[0])
		cfg->proxy_gid = cfg->proxy_uid;
	if (check_values(cfg, err, errlen) < 0)
		return -EINVAL;
	cfg->enable_ipv6 = cfg->dual_stack || first_address_is_v6();
	return 0;
}

static void append_item(char *list, size_t size, const char *item)
{
	size_t n = strlen(list);

	if (n + strlen(item) + 2 > size)
		return; /* more servers than any resolv.conf has (glibc reads 3) */
	snprintf(list + n, size - n, "%s%s", n ? "," : "", item);
}

int sk_ipt_flags_load_dns(struct sk_ipt_config *cfg, const char *path)
{
	char line[512];
	FILE *f;
	int lines = 0;

	cfg->dns_servers_v4[0] = cfg->dns_servers_v6[0] = '\0';
	if (!cfg->redirect_dns || cfg->capture_all_dns)
		return 0;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (lines++ < 10000 && fgets(line, sizeof(line), f)) {
		char *save = NULL, *key = strtok_r(line, " \t\r\n", &save), *val;
		struct sk_ipt_addr a;
		char text[SK_IPT_CIDR_MAX];

		if (!key || strcmp(key, "nameserver") != 0)
			continue;
		val = strtok_r(NULL, " \t\r\n", &save);
		if (!val || sk_ipt_addr_parse(val, &a) < 0)
			continue; /* as istio: an unparsable address is ignored */
		sk_ipt_addr_format(&a, text, sizeof(text));
		if (a.v6)
			append_item(cfg->dns_servers_v6, sizeof(cfg->dns_servers_v6), text);
		else
			append_item(cfg->dns_servers_v4, sizeof(cfg->dns_servers_v4), text);
	}
	fclose(f);
	return 0;
}
