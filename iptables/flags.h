/* flags: istio-iptables' command line (short and long flags, the environment variables it
 * also reads, its defaults) parsed and checked into one struct sk_ipt_config. Strings point
 * into argv, the environment, static defaults or the struct itself; the caller owns it. */
#ifndef SKIFF_IPTABLES_FLAGS_H
#define SKIFF_IPTABLES_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct sk_ipt_config {
	const char *proxy_port;               /* -p, --envoy-port (15001) */
	const char *inbound_capture_port;     /* -z, --inbound-capture-port (15006) */
	const char *inbound_tunnel_port;      /* -e, --inbound-tunnel-port (15008) */
	const char *proxy_uid;                /* -u, --proxy-uid: comma list */
	const char *proxy_gid;                /* -g, --proxy-gid: comma list (defaults to -u) */
	const char *mode;                     /* -m: REDIRECT (or empty); TPROXY is refused */
	const char *tproxy_mark;              /* -t (TPROXY only) */
	const char *tproxy_route_table;       /* -r (TPROXY only) */
	const char *inbound_ports_include;    /* -b: '*' or list; empty captures no inbound */
	const char *inbound_ports_exclude;    /* -d: with -b '*' */
	const char *outbound_ports_include;   /* -q */
	const char *outbound_ports_exclude;   /* -o */
	const char *ip_ranges_include;        /* -i: '*' or CIDR list */
	const char *ip_ranges_exclude;        /* -x: CIDR list */
	const char *kube_virt_interfaces;     /* -k */
	const char *exclude_interfaces;       /* -c */
	const char *owner_groups_include;     /* env ISTIO_OUTBOUND_OWNER_GROUPS ('*') */
	const char *owner_groups_exclude;     /* env ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE */
	const char *host_ipv4_loopback_cidr;  /* env ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR */
	const char *network_namespace;        /* --network-namespace: a path under /var/run/netns or any */
	const char *force_iptables_binary;    /* --force-iptables-binary legacy|nft */
	const char *probe_port;               /* --iptables-probe-port (validation only; unused) */
	const char *probe_timeout;            /* --probe-timeout (validation only; unused) */
	bool dry_run;                         /* -n, --dry-run */
	bool cleanup_only;                    /* --cleanup-only */
	bool dual_stack;                      /* --dual-stack */
	bool enable_ipv6;                     /* --dual-stack, or the pod's first address is IPv6 */
	bool redirect_dns;                    /* --redirect-dns */
	bool capture_all_dns;                 /* --capture-all-dns */
	bool drop_invalid;                    /* --drop-invalid */
	bool reconcile;                       /* --reconcile */
	bool force_apply;                     /* --force-apply */
	bool skip_rule_apply;                 /* --skip-rule-apply */
	bool run_validation;                  /* --run-validation (refused) */
	bool native_nftables;                 /* --native-nftables (refused) */
	bool cni_mode;                        /* --cni-mode (no effect here) */
	bool help;                            /* -h, --help */
	char uid_buf[24];                     /* the default -u: ENVOY_USER's uid, or 1337 */
	/* --redirect-dns without --capture-all-dns: resolv.conf's nameservers, comma lists */
	char dns_servers_v4[256];
	char dns_servers_v6[512];
};

/* Exit codes: 2 for a usage error or an unsupported feature, 1 for a failure to apply. */
#define SK_IPT_EXIT_USAGE 2
#define SK_IPT_EXIT_FAIL 1

/* Fills cfg from defaults, the environment, then argv (later wins, as in istio-iptables),
 * and checks every value. Returns 0, or -EINVAL with a message naming the flag in err. */
int sk_ipt_flags_parse(int argc, char **argv, struct sk_ipt_config *cfg, char *err, size_t errlen);

/* With --redirect-dns and not --capture-all-dns, reads the nameservers of path
 * (/etc/resolv.conf) into cfg->dns_servers_v4/v6 as istio-iptables does. Returns 0 or a
 * negative errno (the file cannot be read). */
int sk_ipt_flags_load_dns(struct sk_ipt_config *cfg, const char *path);

/* Prints the flags, one a line. */
void sk_ipt_flags_usage(FILE *f);

/* Calls fn on each non-empty item of a comma-separated list (config.Split). Items longer
 * than 127 bytes are cut; sk_ipt_flags_parse has refused them already. Stops early and
 * returns fn's value if it is non-zero. */
int sk_ipt_list_each(const char *list, int (*fn)(const char *item, void *ctx), void *ctx);

#endif
