/* apply: puts a ruleset into the kernel with iptables-restore --noflush (one transaction a
 * family), checks what is already there with iptables-save, and removes it again. Nothing
 * here keeps state between calls; the caller owns cfg and rs. */
#ifndef SKIFF_IPTABLES_APPLY_H
#define SKIFF_IPTABLES_APPLY_H

#include "iptables/flags.h"
#include "iptables/rules.h"

/* Applies rs: nothing is changed when ISTIO_* chains exist and differ, unless --reconcile or
 * --force-apply, which replace them in the same transaction; nothing is done when the same
 * rules are there already. With IPv6, a failed IPv6 restore removes the IPv4 rules it just
 * added. Returns 0 or -1 (the reason is on stderr). */
int sk_ipt_apply(const struct sk_ipt_config *cfg, const struct sk_ipt_ruleset *rs);

/* Removes, in one transaction a family, every ISTIO_* chain, every rule elsewhere that jumps
 * into one, and the non-jump rules rs puts into built-in chains (-c and -k RETURNs). Absent
 * rules and chains are fine. Returns 0 or -1. */
int sk_ipt_cleanup(const struct sk_ipt_config *cfg, const struct sk_ipt_ruleset *rs);

/* Enters the network namespace at path (or /var/run/netns/<name>). Returns 0 or -errno. */
int sk_ipt_enter_netns(const char *path_or_name);

#endif
