/* rules: the capture rule set of istio-iptables (tools/istio-iptables/pkg/capture/run.go),
 * in the same tables, chains and order, for IPv4 and (with IPv6 on) IPv6, and its texts:
 * iptables-restore input and istio's cleanup commands. A ruleset owns its rules' specs. */
#ifndef SKIFF_IPTABLES_RULES_H
#define SKIFF_IPTABLES_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "iptables/flags.h"

/* In the order istio-iptables writes them (sorted by name). */
enum sk_ipt_table { SK_IPT_FILTER, SK_IPT_MANGLE, SK_IPT_NAT, SK_IPT_RAW, SK_IPT_NTABLES };
enum sk_ipt_family { SK_IPT_V4, SK_IPT_V6 };

extern const char *const sk_ipt_table_names[SK_IPT_NTABLES];

struct sk_ipt_rule {
	enum sk_ipt_table table;
	const char *chain;  /* a string constant */
	int insert_pos;     /* 0: appended (-A chain); n: inserted (-I chain n) */
	char *spec;         /* matches and target, tokens separated by one space; owned */
};

struct sk_ipt_ruleset {
	struct sk_ipt_rule *rules[2]; /* by enum sk_ipt_family, in the order they are applied */
	size_t n[2], cap[2];
	bool ipv6;                    /* IPv6 rules are built (cfg->enable_ipv6) */
};

/* Builds the rules for cfg (checked by sk_ipt_flags_parse; TPROXY is not handled). Returns
 * 0, -ENOMEM, or -EINVAL with a message in err. rs is always safe to free afterwards. */
int sk_ipt_rules_build(const struct sk_ipt_config *cfg, struct sk_ipt_ruleset *rs, char *err,
		       size_t errlen);

void sk_ipt_rules_free(struct sk_ipt_ruleset *rs);

/* INPUT, OUTPUT, FORWARD, PREROUTING, POSTROUTING and the built-in targets ACCEPT, RETURN,
 * DROP: istio-iptables never creates or deletes these. */
bool sk_ipt_builtin(const char *name);

/* Writes one family's iptables-restore input exactly as istio-iptables builds it ("* nat",
 * the -N lines of the chains it uses, the rules, "COMMIT", table by table). prefix, if not
 * NULL, holds for each table lines to write before its -N lines (a cleanup); a table with
 * only a prefix is written too. */
void sk_ipt_rules_write_restore(const struct sk_ipt_ruleset *rs, enum sk_ipt_family fam,
				const char *const prefix[SK_IPT_NTABLES], FILE *out);

/* Writes istio-iptables' cleanup commands for one family, one a line, each starting with
 * binary ("iptables -t nat -D PREROUTING ...", then -F and -X of its chains). */
void sk_ipt_rules_write_cleanup_cmds(const struct sk_ipt_ruleset *rs, enum sk_ipt_family fam,
				     const char *binary, FILE *out);

/* Writes rule r as iptables-save lists it: "-A chain spec" (an inserted rule too). */
void sk_ipt_rule_saved_form(const struct sk_ipt_rule *r, char *out, size_t outlen);

#endif
