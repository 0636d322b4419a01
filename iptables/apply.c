/* apply: the iptables-save / iptables-restore side of skiff-iptables. Every command runs
 * with fork+exec (no shell); restore input goes in on stdin. */
#include "iptables/apply.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct tools {
	const char *family; /* "IPv4" */
	char save[32], restore[32], cmd[32];
};

static void tools_for(const struct sk_ipt_config *cfg, enum sk_ipt_family fam, struct tools *t)
{
	const char *base = fam == SK_IPT_V6 ? "ip6tables" : "iptables";
	const char *variant = cfg->force_iptables_binary; /* "", legacy or nft */
	const char *dash = variant[0] ? "-" : "";

	t->family = fam == SK_IPT_V6 ? "IPv6" : "IPv4";
	snprintf(t->save, sizeof(t->save), "%s%s%s-save", base, dash, variant);
	snprintf(t->restore, sizeof(t->restore), "%s%s%s-restore", base, dash, variant);
	snprintf(t->cmd, sizeof(t->cmd), "%s%s%s", base, dash, variant);
}

/* Runs argv; feeds it input (if not NULL) on stdin, collects its stdout in *output (if not
 * NULL; the caller frees it). Its stderr is ours. Returns the exit status, or -1 if it could
 * not run or was killed. */
static int run(char *const argv[], const char *input, char **output)
{
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, status;
	pid_t pid;

	if (output)
		*output = NULL;
	if ((input && pipe2(in, O_CLOEXEC) < 0) || (output && pipe2(outp, O_CLOEXEC) < 0)) {
		fprintf(stderr, "skiff-iptables: pipe: %s\n", strerror(errno));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "skiff-iptables: fork: %s\n", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		if (input)
			dup2(in[0], STDIN_FILENO);
		if (output)
			dup2(outp[1], STDOUT_FILENO);
		execvp(argv[0], argv);
		fprintf(stderr, "skiff-iptables: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (input) {
		size_t left = strlen(input);
		const char *p = input;

		close(in[0]);
		in[0] = -1;
		while (left > 0) {
			ssize_t w = write(in[1], p, left);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break; /* the child exited early; its status says why */
			p += w;
			left -= (size_t)w;
		}
		close(in[1]);
		in[1] = -1;
	}
	if (output) {
		size_t len = 0;
		FILE *f = open_memstream(output, &len);
		char buf[8192];
		ssize_t r;

		close(outp[1]);
		outp[1] = -1;
		while ((r = read(outp[0], buf, sizeof(buf))) != 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				break;
			if (f)
				fwrite(buf, 1, (size_t)r, f);
		}
		close(outp[0]);
		outp[0] = -1;
		if (!f || fclose(f) != 0) {
			free(*output);
			*output = NULL;
		}
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (output && !*output)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
fail:
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	if (outp[0] >= 0)
		close(outp[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	return -1;
}

static int save(const struct tools *t, char **text)
{
	char *argv[] = { (char *)t->save, NULL };
	int rc = run(argv, NULL, text);

	if (rc != 0) {
		fprintf(stderr, "skiff-iptables: %s failed (exit %d): cannot read the %s rules\n",
			t->save, rc, t->family);
		free(*text);
		*text = NULL;
		return -1;
	}
	return 0;
}

static int restore(const struct tools *t, const char *input)
{
	char *argv[] = { (char *)t->restore, (char *)"--noflush", NULL };
	int rc = run(argv, input, NULL);

	if (rc != 0) {
		fprintf(stderr, "skiff-iptables: %s --noflush failed (exit %d); the %s rules are "
			"unchanged. Its input was:\n%s", t->restore, rc, t->family, input);
		return -1;
	}
	return 0;
}

/* ---- what iptables-save shows */

static int table_index(const char *name, size_t len)
{
	int t;

	for (t = 0; t < SK_IPT_NTABLES; t++)
		if (strlen(sk_ipt_table_names[t]) == len &&
		    strncmp(sk_ipt_table_names[t], name, len) == 0)
			return t;
	return -1;
}

/* Calls fn for each line of an iptables-save output with the table it is in (-1 outside the
 * four tables istio uses). The line is NUL-terminated in a scratch copy. */
static void each_saved_line(const char *text, void (*fn)(int table, const char *line, void *ctx),
			    void *ctx)
{
	const char *p = text;
	int table = -1;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *line = strndup(p, len);

		if (line) {
			if (line[0] == '*')
				table = table_index(line + 1, len - 1);
			else if (table >= 0 && line[0] != '#')
				fn(table, line, ctx);
			free(line);
		}
		p += len;
		if (*p == '\n')
			p++;
	}
}

static bool jumps_to_istio(const char *line)
{
	return strstr(line, " -j ISTIO_") != NULL;
}

static bool chain_is_istio(const char *rule_line)
{
	return strncmp(rule_line, "-A ISTIO_", 9) == 0;
}

/* A list of chain names (owned copies), each once. */
struct names {
	char **v;
	size_t n;
	bool oom;
};

static bool names_has(const struct names *l, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strlen(l->v[i]) == len && strncmp(l->v[i], name, len) == 0)
			return true;
	return false;
}

static void names_add(struct names *l, const char *name, size_t len)
{
	char **v;

	if (names_has(l, name, len))
		return;
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v || !(v[l->n] = strndup(name, len))) {
		if (v)
			l->v = v;
		l->oom = true;
		return;
	}
	l->v = v;
	l->n++;
}

static void names_free(struct names *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The chain name of a ":NAME POLICY [counters]" line. */
static size_t chain_decl_len(const char *line)
{
	const char *end = strchr(line, ' ');

	return end ? (size_t)(end - line - 1) : strlen(line + 1);
}

/* ---- cleanup */

struct cleanup_ctx {
	const struct sk_ipt_ruleset *rs;
	enum sk_ipt_family fam;
	FILE *del[SK_IPT_NTABLES];         /* the -D lines */
	char *del_text[SK_IPT_NTABLES];
	size_t del_len[SK_IPT_NTABLES];
	struct names chains[SK_IPT_NTABLES]; /* the ISTIO_* chains present */
	size_t changes;
};

static bool ours_in_builtin(const struct cleanup_ctx *c, int table, const char *line)
{
	size_t i;

	for (i = 0; i < c->rs->n[c->fam]; i++) {
		const struct sk_ipt_rule *r = &c->rs->rules[c->fam][i];
		char form[1024];

		if ((int)r->table != table || strncmp(r->chain, "ISTIO_", 6) == 0)
			continue;
		sk_ipt_rule_saved_form(r, form, sizeof(form));
		if (strcmp(form, line) == 0)
			return true;
	}
	return false;
}

static void cleanup_line(int table, const char *line, void *ctx)
{
	struct cleanup_ctx *c = ctx;

	if (strncmp(line, ":ISTIO_", 7) == 0) {
		names_add(&c->chains[table], line + 1, chain_decl_len(line));
		c->changes++;
		return;
	}
	if (strncmp(line, "-A ", 3) != 0 || chain_is_istio(line))
		return; /* rules inside ISTIO_* chains go with the flush */
	if (jumps_to_istio(line) || ours_in_builtin(c, table, line)) {
		fprintf(c->del[table], "-D %s\n", line + 3);
		c->changes++;
	}
}

/* Builds, per table, the restore lines that remove what saved shows: -D of each jump into
 * an ISTIO_* chain (and of rs's own rules in built-in chains), then -F of every ISTIO_*
 * chain, then -X of each (a chain can go only once nothing jumps to it). prefix[t] is NULL
 * or a string the caller frees. Returns the number of changes, or -1 (out of memory). */
static long cleanup_prefix(const char *saved, const struct sk_ipt_ruleset *rs,
			   enum sk_ipt_family fam, char *prefix[SK_IPT_NTABLES])
{
	struct cleanup_ctx c = { .rs = rs, .fam = fam };
	bool ok = true;
	int t;

	for (t = 0; t < SK_IPT_NTABLES; t++) {
		prefix[t] = NULL;
		c.del[t] = open_memstream(&c.del_text[t], &c.del_len[t]);
		ok = ok && c.del[t];
	}
	if (ok)
		each_saved_line(saved, cleanup_line, &c);
	for (t = 0; t < SK_IPT_NTABLES; t++) {
		struct names *ch = &c.chains[t];
		size_t len = 0, i;
		FILE *f;

		if (c.del[t] && fclose(c.del[t]) != 0)
			ok = false;
		ok = ok && !ch->oom;
		if (ok && (f = open_memstream(&prefix[t], &len))) {
			fputs(c.del_text[t], f);
			for (i = 0; i < ch->n; i++)
				fprintf(f, "-F %s\n", ch->v[i]);
			for (i = 0; i < ch->n; i++)
				fprintf(f, "-X %s\n", ch->v[i]);
			ok = fclose(f) == 0;
		} else {
			ok = false;
		}
		free(c.del_text[t]);
		names_free(ch);
	}
	if (!ok) {
		for (t = 0; t < SK_IPT_NTABLES; t++) {
			free(prefix[t]);
			prefix[t] = NULL;
		}
		return -1;
	}
	return (long)c.changes;
}

static void free_prefix(char *prefix[SK_IPT_NTABLES])
{
	int t;

	for (t = 0; t < SK_IPT_NTABLES; t++) {
		free(prefix[t]);
		prefix[t] = NULL;
	}
}

/* Writes the restore input: prefix lines (may be NULL) then rs's rules (if with_rules). */
static char *restore_text(const struct sk_ipt_ruleset *rs, enum sk_ipt_family fam,
			  char *prefix[SK_IPT_NTABLES], bool with_rules)
{
	static const struct sk_ipt_ruleset empty;
	const char *p[SK_IPT_NTABLES];
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int t;

	if (!f)
		return NULL;
	for (t = 0; t < SK_IPT_NTABLES; t++)
		p[t] = prefix ? prefix[t] : NULL;
	sk_ipt_rules_write_restore(with_rules ? rs : &empty, fam, p, f);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static int cleanup_family(const struct sk_ipt_config *cfg, const struct sk_ipt_ruleset *rs,
			  enum sk_ipt_family fam)
{
	char *prefix[SK_IPT_NTABLES], *saved = NULL, *input;
	struct tools t;
	long changes;
	int rc;

	tools_for(cfg, fam, &t);
	if (save(&t, &saved) < 0)
		return -1;
	changes = cleanup_prefix(saved, rs, fam, prefix);
	free(saved);
	if (changes < 0) {
		fprintf(stderr, "skiff-iptables: out of memory\n");
		return -1;
	}
	if (changes == 0) {
		fprintf(stderr, "skiff-iptables: %s: no ISTIO_* chains or jumps: nothing to "
			"remove\n", t.family);
		free_prefix(prefix);
		return 0;
	}
	input = restore_text(rs, fam, prefix, false);
	free_prefix(prefix);
	if (!input)
		return -1;
	rc = restore(&t, input);
	free(input);
	if (rc == 0)
		fprintf(stderr, "skiff-iptables: %s: removed the ISTIO_* chains and the rules "
			"that lead to them\n", t.family);
	return rc;
}

int sk_ipt_cleanup(const struct sk_ipt_config *cfg, const struct sk_ipt_ruleset *rs)
{
	int rc = cleanup_family(cfg, rs, SK_IPT_V4);

	if (cfg->enable_ipv6 && cleanup_family(cfg, rs, SK_IPT_V6) < 0)
		rc = -1;
	return rc;
}

/* ---- apply */

struct state_ctx {
	struct names chains[SK_IPT_NTABLES]; /* the ISTIO_* chains present */
	const char *count_chain;             /* state_count: the chain whose rules are counted */
	int count_table;
	size_t count;
};

static void state_line(int table, const char *line, void *ctx)
{
	struct state_ctx *s = ctx;

	if (strncmp(line, ":ISTIO_", 7) == 0)
		names_add(&s->chains[table], line + 1, chain_decl_len(line));
}

static void count_line(int table, const char *line, void *ctx)
{
	struct state_ctx *s = ctx;
	size_t clen = strlen(s->count_chain);

	if (table == s->count_table && strncmp(line, "-A ", 3) == 0 &&
	    strncmp(line + 3, s->count_chain, clen) == 0 && line[3 + clen] == ' ')
		s->count++;
}

/* The ISTIO_* chains rs uses in table: those with rules and those only jumped to. */
static void planned_chains(const struct sk_ipt_ruleset *rs, enum sk_ipt_family fam, int table,
			   struct names *out)
{
	size_t i;

	for (i = 0; i < rs->n[fam]; i++) {
		const struct sk_ipt_rule *r = &rs->rules[fam][i];
		const char *j = strstr(r->spec, "-j ISTIO_");

		if ((int)r->table != table)
			continue;
		if (strncmp(r->chain, "ISTIO_", 6) == 0)
			names_add(out, r->chain, strlen(r->chain));
		if (j && !strchr(j + 3, ' '))
			names_add(out, j + 3, strlen(j + 3));
	}
}

static bool same_chains(const struct names *a, const struct names *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
		if (!names_has(b, a->v[i], strlen(a->v[i])))
			return false;
	return true;
}

/* `iptables -t table -C chain spec...`: is rule r present? */
static bool rule_present(const struct tools *t, const struct sk_ipt_rule *r)
{
	char *argv[512], *copy = strdup(r->spec), *tok, *save_ptr = NULL;
	size_t argc = 0;
	int rc;

	if (!copy)
		return false;
	argv[argc++] = (char *)t->cmd;
	argv[argc++] = (char *)"-t";
	argv[argc++] = (char *)sk_ipt_table_names[r->table];
	argv[argc++] = (char *)"-C";
	argv[argc++] = (char *)r->chain;
	for (tok = strtok_r(copy, " ", &save_ptr); tok && argc < 511;
	     tok = strtok_r(NULL, " ", &save_ptr))
		argv[argc++] = tok;
	argv[argc] = NULL;
	rc = tok ? -1 : run(argv, NULL, NULL);
	free(copy);
	return rc == 0;
}

/* istio's VerifyIptablesState: the ISTIO_* chains present are exactly rs's, each with as
 * many rules as rs puts there, and each of rs's rules passes `iptables -C`. */
static bool same_as_planned(const struct sk_ipt_ruleset *rs, enum sk_ipt_family fam,
			    const struct tools *t, const char *saved, struct state_ctx *s)
{
	bool same = true;
	size_t i, j;
	int table;

	for (table = 0; table < SK_IPT_NTABLES && same; table++) {
		struct names planned = { 0 };

		planned_chains(rs, fam, table, &planned);
		same = !planned.oom && same_chains(&planned, &s->chains[table]);
		for (i = 0; same && i < planned.n; i++) {
			size_t want = 0;

			for (j = 0; j < rs->n[fam]; j++)
				want += (int)rs->rules[fam][j].table == table &&
					strcmp(rs->rules[fam][j].chain, planned.v[i]) == 0;
			s->count_chain = planned.v[i];
			s->count_table = table;
			s->count = 0;
			each_saved_line(saved, count_line, s);
			same = s->count == want;
		}
		names_free(&planned);
	}
	for (i = 0; same && i < rs->n[fam]; i++)
		same = rule_present(t, &rs->rules[fam][i]);
	return same;
}

enum plan { PLAN_APPLY, PLAN_REPLACE, PLAN_NOTHING };

struct family_plan {
	enum plan plan;
	char *input; /* the restore input (PLAN_APPLY, PLAN_REPLACE) */
};

static int plan_family(const struct sk_ipt_config *cfg, const struct sk_ipt_ruleset *rs,
		       enum sk_ipt_family fam, struct family_plan *out)
{
	char *saved = NULL, *prefix[SK_IPT_NTABLES] = { NULL };
	struct state_ctx s = { 0 };
	bool residue = false, oom = false;
	struct tools t;
	int table, rc = 0;

	out->plan = PLAN_APPLY;
	out->input = NULL;
	tools_for(cfg, fam, &t);
	if (save(&t, &saved) < 0)
		return -1;
	each_saved_line(saved, state_line, &s);
	for (table = 0; table < SK_IPT_NTABLES; table++) {
		residue = residue || s.chains[table].n > 0;
		oom = oom || s.chains[table].oom;
	}
	if (oom) {
		rc = -1;
	} else if (residue) {
		bool same = same_as_planned(rs, fam, &t, saved, &s);

		if (same && !cfg->force_apply) {
			fprintf(stderr, "skiff-iptables: %s: the same ISTIO_* rules are already in "
				"place: nothing to do\n", t.family);
			out->plan = PLAN_NOTHING;
		} else if (!same && !cfg->reconcile && !cfg->force_apply) {
			fprintf(stderr, "skiff-iptables: %s: ISTIO_* chains already exist and differ "
				"from the requested rules; nothing was changed. Rerun with "
				"--reconcile to replace them, or remove them with --cleanup-only\n",
				t.family);
			rc = -1;
		} else {
			out->plan = PLAN_REPLACE;
			if (cleanup_prefix(saved, rs, fam, prefix) < 0)
				rc = -1;
		}
	}
	for (table = 0; table < SK_IPT_NTABLES; table++)
		names_free(&s.chains[table]);
	free(saved);
	if (rc == 0 && out->plan != PLAN_NOTHING) {
		out->input = restore_text(rs, fam, prefix, true);
		if (!out->input)
			rc = -1;
	}
	free_prefix(prefix);
	return rc;
}

static size_t count_rules(const struct sk_ipt_ruleset *rs, enum sk_ipt_family fam)
{
	return rs->n[fam];
}

int sk_ipt_apply(const struct sk_ipt_config *cfg, const struct sk_ipt_ruleset *rs)
{
	struct family_plan plan[2] = { { PLAN_NOTHING, NULL }, { PLAN_NOTHING, NULL } };
	int nfam = cfg->enable_ipv6 ? 2 : 1, fam, rc = 0;

	/* Read both families' state first: a refusal changes nothing anywhere. */
	for (fam = 0; fam < nfam && rc == 0; fam++)
		rc = plan_family(cfg, rs, (enum sk_ipt_family)fam, &plan[fam]);
	for (fam = 0; fam < nfam && rc == 0; fam++) {
		struct tools t;

		tools_for(cfg, (enum sk_ipt_family)fam, &t);
		if (plan[fam].plan == PLAN_NOTHING)
			continue;
		rc = restore(&t, plan[fam].input);
		if (rc == 0) {
			fprintf(stderr, "skiff-iptables: %s: %s %zu rules with %s --noflush\n",
				t.family, plan[fam].plan == PLAN_REPLACE ? "replaced the ISTIO_* rules by"
									 : "applied",
				count_rules(rs, (enum sk_ipt_family)fam), t.restore);
		} else if (fam == SK_IPT_V6 && plan[SK_IPT_V4].plan != PLAN_NOTHING) {
			/* all or nothing: take the IPv4 rules just added out again */
			fprintf(stderr, "skiff-iptables: removing the IPv4 rules again\n");
			(void)cleanup_family(cfg, rs, SK_IPT_V4);
		}
	}
	free(plan[0].input);
	free(plan[1].input);
	return rc;
}

int sk_ipt_enter_netns(const char *path_or_name)
{
	char path[512];
	int fd, rc = 0;

	if (strchr(path_or_name, '/'))
		snprintf(path, sizeof(path), "%s", path_or_name);
	else
		snprintf(path, sizeof(path), "/var/run/netns/%s", path_or_name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET) < 0)
		rc = -errno;
	close(fd);
	return rc;
}
