/* skiff-iptables: istio-iptables for a skiff sidecar. It builds the same capture rules from
 * the same flags and applies them with iptables-restore --noflush (ip6tables-restore too
 * with IPv6); -n prints what istio-iptables' dry run prints; --cleanup-only removes them. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iptables/apply.h"
#include "iptables/flags.h"
#include "iptables/rules.h"

/* istio-iptables' dry run records the commands it would run (dependencies.DependenciesStub):
 * the two state reads, each restore input line, then the final state read(s). */
static void print_dry_run(const struct sk_ipt_config *cfg, const struct sk_ipt_ruleset *rs)
{
	puts("iptables-save");
	puts("ip6tables-save");
	if (cfg->cleanup_only) {
		sk_ipt_rules_write_cleanup_cmds(rs, SK_IPT_V4, "iptables", stdout);
		if (cfg->enable_ipv6)
			sk_ipt_rules_write_cleanup_cmds(rs, SK_IPT_V6, "ip6tables", stdout);
	} else {
		sk_ipt_rules_write_restore(rs, SK_IPT_V4, NULL, stdout);
		if (cfg->enable_ipv6)
			sk_ipt_rules_write_restore(rs, SK_IPT_V6, NULL, stdout);
	}
	puts("iptables-save");
	if (cfg->enable_ipv6)
		puts("ip6tables-save");
}

/* Features istio-iptables has and skiff-iptables does not: refused before anything runs. */
static int refuse_unsupported(const struct sk_ipt_config *cfg)
{
	const char *what = NULL;

	if (strcmp(cfg->mode, "TPROXY") == 0)
		what = "TPROXY mode is not supported yet (-m TPROXY); use -m REDIRECT";
	else if (cfg->native_nftables)
		what = "--native-nftables is not supported: skiff-iptables writes iptables rules";
	else if (cfg->run_validation)
		what = "--run-validation is not supported: skiff-iptables does not probe the "
		       "redirection";
	if (!what)
		return 0;
	fprintf(stderr, "skiff-iptables: %s\n", what);
	return -ENOTSUP;
}

int main(int argc, char **argv)
{
	struct sk_ipt_config cfg;
	struct sk_ipt_ruleset rs;
	char err[512];
	int rc;

	if (sk_ipt_flags_parse(argc, argv, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "skiff-iptables: %s\n(skiff-iptables --help lists the flags)\n", err);
		return SK_IPT_EXIT_USAGE;
	}
	if (cfg.help) {
		sk_ipt_flags_usage(stdout);
		return 0;
	}
	if (refuse_unsupported(&cfg) < 0)
		return SK_IPT_EXIT_USAGE;
	if (cfg.skip_rule_apply)
		return 0;
	rc = sk_ipt_flags_load_dns(&cfg, "/etc/resolv.conf");
	if (rc < 0) {
		fprintf(stderr, "skiff-iptables: --redirect-dns: cannot read /etc/resolv.conf: %s\n",
			strerror(-rc));
		return SK_IPT_EXIT_FAIL;
	}
	if (sk_ipt_rules_build(&cfg, &rs, err, sizeof(err)) < 0) {
		fprintf(stderr, "skiff-iptables: %s\n", err);
		sk_ipt_rules_free(&rs);
		return SK_IPT_EXIT_USAGE;
	}
	if (cfg.dry_run) {
		print_dry_run(&cfg, &rs);
		sk_ipt_rules_free(&rs);
		return fflush(stdout) == 0 ? 0 : SK_IPT_EXIT_FAIL;
	}
	signal(SIGPIPE, SIG_IGN); /* a restore that dies early must not take us with it */
	if (cfg.network_namespace[0] && (rc = sk_ipt_enter_netns(cfg.network_namespace)) < 0) {
		fprintf(stderr, "skiff-iptables: --network-namespace %s: %s\n", cfg.network_namespace,
			strerror(-rc));
		sk_ipt_rules_free(&rs);
		return SK_IPT_EXIT_FAIL;
	}
	rc = cfg.cleanup_only ? sk_ipt_cleanup(&cfg, &rs) : sk_ipt_apply(&cfg, &rs);
	sk_ipt_rules_free(&rs);
	return rc == 0 ? 0 : SK_IPT_EXIT_FAIL;
}
