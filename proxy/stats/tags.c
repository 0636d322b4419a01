/* Tag extraction as Envoy's TagProducerImpl: every extractor looks at the original full name;
 * the characters of each match's first capture group are removed at the end; among
 * extractors sharing a tag name the first that matches wins. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/stats/stats_internal.h"

/* Envoy's regex building blocks (well_known_names.cc expandRegex). PCRE2 rejects a hyphen
 * after a class escape inside [...] unless it is last, so "[\w-\./]" is written "[\w./-]". */
#define V "[^\\.]+"
#define ADDR "(?:(?:\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}|\\[[a-fA-F_\\d]+\\])_\\d+)"
#define CIPHER "[\\w-]+"
#define TLS_VERSION "TLSv\\d\\.\\d"
#define ROUTE_CONFIG_NAME "[\\w./-]+"
#define SCOPED_ROUTE_CONFIG_NAME "[\\w.-]+"
#define LISTENER_OR_CLUSTER_WITH_NAME "(?:listener|cluster)\\..*?"

struct default_regex {
	const char *name, *regex, *substr, *negative;
};

/* Envoy's TagNameValues regex descriptors, in Envoy's order. */
static const struct default_regex default_regexes[] = {
	{ "envoy.response_code", "_rq(_(\\d{3}))$", "_rq_", "" },
	{ "envoy.response_code_class", "_rq_((\\d))xx$", "_rq_", "" },
	{ "envoy.dynamo_partition_id",
	  "^http\\." V "\\.dynamodb\\.table\\." V "\\.capacity\\." V "(\\.__partition_id=(\\w{7}))$",
	  ".dynamodb.table.", "" },
	{ "envoy.dynamo_operation",
	  "^http\\." V "\\.dynamodb.(?:operation|table\\." V "\\.capacity)(\\.(" V "))(?:\\.|$)",
	  ".dynamodb.", "" },
	{ "envoy.dynamo_table", "^http\\." V "\\.dynamodb.(?:table|error)\\.((" V ")\\.)", ".dynamodb.", "" },
	{ "envoy.ssl_cipher", "^listener\\..*?\\.ssl\\.ciphers(\\.(" CIPHER "))$", ".ssl.ciphers.", "" },
	{ "envoy.ssl_curve", "^" LISTENER_OR_CLUSTER_WITH_NAME "\\.ssl\\.curves(\\.(" CIPHER "))$",
	  ".ssl.curves.", "" },
	{ "envoy.ssl_sigalg", "^" LISTENER_OR_CLUSTER_WITH_NAME "\\.ssl\\.sigalgs(\\.(" CIPHER "))$",
	  ".ssl.sigalgs.", "" },
	{ "envoy.ssl_version", "^" LISTENER_OR_CLUSTER_WITH_NAME "\\.ssl\\.versions(\\.(" TLS_VERSION "))$",
	  ".ssl.versions.", "" },
	{ "cipher_suite", "^cluster\\." V "\\.ssl\\.ciphers(\\.(" CIPHER "))$", ".ssl.ciphers.", "" },
	{ "envoy.http_conn_manager_prefix", "^listener\\..*?\\.http\\.((" V ")\\.)", ".http.", "" },
	{ "envoy.worker_id",
	  "^(?:listener\\.(?:" ADDR "|" V ")|server|listener_manager|thread_local_cluster_manager)"
	  "\\.worker_((\\d+)\\.)",
	  "", "" },
	{ "envoy.listener_address", "^listener\\.((" ADDR "|" V ")\\.)", "", "admin" },
	{ "envoy.rds_route_config", "^http\\." V "\\.rds\\.((" ROUTE_CONFIG_NAME ")\\.)\\w+?$", ".rds.", "" },
	{ "envoy.scoped_rds_config", "^http\\." V "\\.scoped_rds\\.((" SCOPED_ROUTE_CONFIG_NAME ")\\.)\\w+?$",
	  ".scoped_rds.", "" },
	{ "envoy.rbac_policy_name",
	  "^http\\." V "\\.rbac\\.(?:" V "\\.)?policy\\.((" V ")\\.)(allowed|shadow_allowed|denied|shadow_denied)$",
	  "", "" },
	{ "envoy.rbac_http_prefix", "^http\\." V "\\.rbac\\.((" V ")\\.).*?", "", "policy" },
	{ "envoy.proxy_protocol_prefix", "^proxy_proto\\.((" V ")\\.).+$", "", "versions" },
	{ "envoy.proxy_protocol_version", "^proxy_proto\\.((?:" V "\\.)?versions\\.v(\\d)\\.)\\w+$", "", "" },
	{ "envoy.tls_certificate", "^" LISTENER_OR_CLUSTER_WITH_NAME "\\.ssl\\.certificate\\.((" V ")\\.).*$",
	  ".ssl.certificate", "" },
	{ "envoy.xds_resource_name", "^sds\\.((" V ")\\.).+", "", "" },
};

/* Envoy's tokenized descriptors: '.'-separated tokens; "$" is the tag value, "*" any one
 * token, "**" any number of tokens. */
static const struct {
	const char *name, *pattern;
} default_tokens[] = {
	{ "envoy.mongo_callsite", "mongo.*.collection.*.callsite.$.query.**" },
	{ "envoy.mongo_collection", "mongo.*.collection.$.**.query.*" },
	{ "envoy.mongo_cmd", "mongo.*.cmd.$.**" },
	{ "envoy.grpc_bridge_method", "cluster.*.grpc.*.$.**" },
	{ "envoy.http_user_agent", "http.*.user_agent.$.**" },
	{ "envoy.virtual_cluster", "vhost.*.vcluster.$.**" },
	{ "envoy.fault_downstream_cluster", "http.*.fault.$.**" },
	{ "envoy.grpc_bridge_service", "cluster.*.grpc.$.**" },
	{ "envoy.tcp_prefix", "tcp.$.**" },
	{ "envoy.udp_prefix", "udp.$.**" },
	{ "envoy.clientssl_prefix", "auth.clientssl.$.**" },
	{ "envoy.ratelimit_prefix", "ratelimit.$.**" },
	{ "envoy.cluster_name", "cluster.$.**" },
	{ "envoy.ext_authz_prefix", "cluster.*.ext_authz.$.**" },
	{ "envoy.ext_authz_prefix", "http.*.ext_authz.$.**" },
	{ "envoy.http_conn_manager_prefix", "http.$.**" },
	{ "envoy.virtual_host", "vhost.$.**" },
	{ "envoy.mongo_prefix", "mongo.$.**" },
	{ "envoy.route", "vhost.*.route.$.**" },
	{ "envoy.thrift_prefix", "thrift.$.**" },
	{ "envoy.redis_prefix", "redis.$.**" },
	{ "envoy.local_http_ratelimit_prefix", "$.http_local_rate_limit.**" },
	{ "envoy.local_network_ratelimit_prefix", "local_rate_limit.$.**" },
	{ "envoy.local_listener_ratelimit_prefix", "listener_local_ratelimit.$.**" },
	{ "envoy.dns_filter_prefix", "dns_filter.$.**" },
	{ "envoy.connection_limit_prefix", "connection_limit.$.**" },
	{ "envoy.rbac_prefix", "$.rbac.**" },
	{ "envoy.google_grpc_client_prefix", "grpc.$.**" },
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static bool is_word(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Envoy's extractRegexPrefix: "^word\." or "^word(?=\.)" or "^word$" gives "word". */
static char *regex_prefix(const char *re)
{
	if (re[0] != '^')
		return strdup("");
	size_t i = 1;
	while (re[i] && is_word(re[i]))
		i++;
	bool ok = false;
	if (i > 1 && re[i]) {
		bool last = re[i + 1] == '\0';
		ok = last ? re[i] == '$' : (strncmp(re + i, "\\.", 2) == 0 || strncmp(re + i, "(?=\\.)", 6) == 0);
	}
	return ok ? strndup(re + 1, i - 1) : strdup("");
}

static int add_regex(struct sk_stats_store *store, const char *name, const char *re, const char *substr,
		     const char *negative, char *err, size_t errlen)
{
	struct sk__extractor *x = &store->extractors[store->n_extractors];
	memset(x, 0, sizeof(*x));
	x->kind = SK__EXTRACT_REGEX;
	int ec;
	PCRE2_SIZE off;
	x->re = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
	if (!x->re) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(ec, msg, sizeof(msg));
		sk__err(err, errlen, "stats_tags[%s].regex: %s at offset %zu", name, (const char *)msg,
			(size_t)off);
		return -EINVAL;
	}
	pcre2_pattern_info(x->re, PCRE2_INFO_CAPTURECOUNT, &x->n_groups);
	x->name = strdup(name);
	x->prefix = regex_prefix(re);
	x->substr = strdup(substr);
	x->negative = strdup(negative);
	store->n_extractors++;
	if (!x->name || !x->prefix || !x->substr || !x->negative)
		return -ENOMEM;
	if (x->n_groups < 1) {
		sk__err(err, errlen, "stats_tags[%s].regex: needs a capture group", name);
		return -EINVAL;
	}
	return 0;
}

static int add_tokens(struct sk_stats_store *store, const char *name, const char *pattern)
{
	struct sk__extractor *x = &store->extractors[store->n_extractors++];
	memset(x, 0, sizeof(*x));
	x->kind = SK__EXTRACT_TOKENS;
	x->name = strdup(name);
	size_t n = 1;
	for (const char *p = pattern; *p; p++)
		n += *p == '.';
	x->tokens = calloc(n, sizeof(*x->tokens));
	if (!x->name || !x->tokens)
		return -ENOMEM;
	const char *start = pattern;
	for (size_t i = 0; i < n; i++) {
		const char *dot = strchr(start, '.');
		size_t len = dot ? (size_t)(dot - start) : strlen(start);
		if (!(x->tokens[i] = strndup(start, len)))
			return -ENOMEM;
		x->n_tokens = i + 1;
		if (strcmp(x->tokens[i], "$") == 0)
			x->match_index = i;
		start = dot ? dot + 1 : start + len;
	}
	const char *first = x->tokens[0];
	bool wild = strcmp(first, "$") == 0 || strcmp(first, "*") == 0 || strcmp(first, "**") == 0;
	x->prefix = strdup(wild ? "" : first);
	return x->prefix ? 0 : -ENOMEM;
}

static int add_fixed(struct sk_stats_store *store, const char *name, const char *value)
{
	struct sk__extractor *x = &store->extractors[store->n_extractors++];
	memset(x, 0, sizeof(*x));
	x->kind = SK__EXTRACT_FIXED;
	x->name = strdup(name);
	x->fixed_value = strdup(value);
	/* Envoy derives a fixed extractor's prefix from its value as if it were a regex. */
	x->prefix = regex_prefix(value);
	return x->name && x->fixed_value && x->prefix ? 0 : -ENOMEM;
}

/* Envoy's addExtractorsMatching: a stats_tags entry with only a tag_name selects the built-in
 * extractors of that name. Returns how many were added, or a negative code. */
static int add_defaults_named(struct sk_stats_store *store, const char *name, char *err, size_t errlen)
{
	int found = 0, rc;
	for (size_t i = 0; i < N_ELEMS(default_regexes); i++) {
		const struct default_regex *d = &default_regexes[i];
		if (name && strcmp(d->name, name) != 0)
			continue;
		if ((rc = add_regex(store, d->name, d->regex, d->substr, d->negative, err, errlen)))
			return rc;
		found++;
	}
	for (size_t i = 0; i < N_ELEMS(default_tokens); i++) {
		if (name && strcmp(default_tokens[i].name, name) != 0)
			continue;
		if ((rc = add_tokens(store, default_tokens[i].name, default_tokens[i].pattern)))
			return rc;
		found++;
	}
	return found;
}

/* Whether stats_tags[i]'s name is already used by an earlier entry or, with
 * use_all_default_tags, by a built-in extractor. */
static bool tag_name_taken(const struct sk_stats_store *store, const struct sk_stats_config *c, size_t i)
{
	const char *name = c->tags[i].name;

	(void)store;
	for (size_t k = 0; k < i; k++)
		if (strcmp(c->tags[k].name, name) == 0)
			return true;
	if (!c->use_all_default_tags)
		return false;
	for (size_t k = 0; k < N_ELEMS(default_regexes); k++)
		if (strcmp(default_regexes[k].name, name) == 0)
			return true;
	for (size_t k = 0; k < N_ELEMS(default_tokens); k++)
		if (strcmp(default_tokens[k].name, name) == 0)
			return true;
	return false;
}

int sk__tags_init(struct sk_stats_store *store, const struct sk_stats_config *c, char *err, size_t errlen)
{
	size_t max = N_ELEMS(default_regexes) + N_ELEMS(default_tokens);
	max += c->n_tags * max; /* worst case: every spec names a default tag */
	store->extractors = calloc(max, sizeof(*store->extractors));
	if (!store->extractors)
		return -ENOMEM;
	int rc;
	if (c->use_all_default_tags && (rc = add_defaults_named(store, NULL, err, errlen)) < 0)
		return rc;
	for (size_t i = 0; i < c->n_tags; i++) {
		const struct sk_tag_spec *t = &c->tags[i];
		if (!t->name || !*t->name) {
			sk__err(err, errlen, "stats_tags[%zu]: tag_name cannot be empty", i);
			return -EINVAL;
		}
		/* Envoy's TagProducerImpl: a name may be given once, defaults included. */
		if (tag_name_taken(store, c, i)) {
			sk__err(err, errlen, "stats_tags[%zu]: Tag name '%s' specified twice.", i, t->name);
			return -EINVAL;
		}
		if (t->fixed_value) {
			rc = add_fixed(store, t->name, t->fixed_value);
		} else if (t->regex && *t->regex) {
			rc = add_regex(store, t->name, t->regex, "", "", err, errlen);
		} else {
			rc = add_defaults_named(store, t->name, err, errlen);
			if (rc == 0) {
				sk__err(err, errlen,
					"No regex specified for tag specifier and no default regex for name: '%s'",
					t->name);
				rc = -EINVAL;
			}
			rc = rc > 0 ? 0 : rc;
		}
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < store->n_extractors; i++) {
		for (size_t k = i + 1; k < store->n_extractors; k++) {
			if (strcmp(store->extractors[i].name, store->extractors[k].name) == 0)
				store->extractors[i].other_same_name = store->extractors[k].other_same_name = true;
		}
	}
	return 0;
}

void sk__tags_free(struct sk_stats_store *store)
{
	for (size_t i = 0; i < store->n_extractors; i++) {
		struct sk__extractor *x = &store->extractors[i];
		free(x->name);
		free(x->prefix);
		pcre2_code_free(x->re);
		free(x->substr);
		free(x->negative);
		for (size_t t = 0; t < x->n_tokens; t++)
			free(x->tokens[t]);
		free(x->tokens);
		free(x->fixed_value);
	}
	free(store->extractors);
}

/* ---- extraction ---- */

struct span {
	size_t start, end;
};

struct found_tag {
	const char *name;
	const char *value;
	size_t value_len;
};

struct extraction {
	const char *full;
	size_t len;
	struct span tokens[256]; /* the name's '.'-separated tokens, split on first use */
	size_t n_tokens;
	bool tokens_split;
	struct span remove[SK__MAX_TAGS];
	size_t n_remove;
	struct found_tag tags[SK__MAX_TAGS];
	size_t n_tags;
};

static void split_tokens(struct extraction *ex)
{
	if (ex->tokens_split)
		return;
	ex->tokens_split = true;
	size_t start = 0;
	for (size_t i = 0; i <= ex->len && ex->n_tokens < N_ELEMS(ex->tokens); i++) {
		if (i == ex->len || ex->full[i] == '.') {
			ex->tokens[ex->n_tokens++] = (struct span){ start, i };
			start = i + 1;
		}
	}
}

static bool token_eq(const struct extraction *ex, size_t t, const char *s)
{
	size_t n = ex->tokens[t].end - ex->tokens[t].start;
	return strlen(s) == n && memcmp(ex->full + ex->tokens[t].start, s, n) == 0;
}

/* Envoy's TagExtractorTokensImpl::searchTags. */
static bool search_tokens(const struct sk__extractor *x, const struct extraction *ex, size_t in, size_t pi,
			  size_t *match_in)
{
	for (; in < ex->n_tokens && pi < x->n_tokens; in++, pi++) {
		if (pi == x->match_index) {
			*match_in = in;
			continue;
		}
		const char *expected = x->tokens[pi];
		if (strcmp(expected, "**") == 0) {
			if (pi == x->n_tokens - 1)
				return true;
			for (pi++; in < ex->n_tokens; in++) {
				if (search_tokens(x, ex, in, pi, match_in))
					return true;
			}
			return false;
		}
		if (strcmp(expected, "*") != 0 && !token_eq(ex, in, expected))
			return false;
	}
	return pi == x->n_tokens && in == ex->n_tokens;
}

static bool add_found(struct extraction *ex, const char *name, const char *value, size_t value_len,
		      size_t rm_start, size_t rm_end)
{
	if (ex->n_tags == SK__MAX_TAGS)
		return false;
	ex->tags[ex->n_tags++] = (struct found_tag){ name, value, value_len };
	if (rm_end > rm_start)
		ex->remove[ex->n_remove++] = (struct span){ rm_start, rm_end };
	return true;
}

static bool run_extractor(struct sk_stats_store *store, const struct sk__extractor *x, struct extraction *ex)
{
	switch (x->kind) {
	case SK__EXTRACT_FIXED:
		return add_found(ex, x->name, x->fixed_value, strlen(x->fixed_value), 0, 0);
	case SK__EXTRACT_TOKENS: {
		split_tokens(ex);
		size_t m = ex->n_tokens;
		if (!search_tokens(x, ex, 0, 0, &m) || m >= ex->n_tokens)
			return false;
		size_t start = ex->tokens[m].start, end = ex->tokens[m].end;
		if (m < ex->n_tokens - 1)
			end++; /* "ab." at the start or "cd." in the middle */
		else if (start > 0)
			start--; /* ".ef" at the end */
		return add_found(ex, x->name, ex->full + ex->tokens[m].start, ex->tokens[m].end - ex->tokens[m].start,
				 start, end);
	}
	case SK__EXTRACT_REGEX: {
		if (x->substr[0] && !strstr(ex->full, x->substr))
			return false;
		if (pcre2_match(x->re, (PCRE2_SPTR)ex->full, ex->len, 0, 0, store->md, NULL) < 0)
			return false;
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(store->md);
		if (ov[2] == PCRE2_UNSET || ov[3] <= ov[2])
			return false;
		size_t vs = ov[2], ve = ov[3];
		if (x->n_groups >= 2 && ov[4] != PCRE2_UNSET && ov[5] > ov[4]) {
			vs = ov[4];
			ve = ov[5];
		}
		if (x->negative[0] && strlen(x->negative) == ve - vs && memcmp(ex->full + vs, x->negative, ve - vs) == 0)
			return false;
		return add_found(ex, x->name, ex->full + vs, ve - vs, ov[2], ov[3]);
	}
	}
	return false;
}

static bool name_seen(const struct extraction *ex, const char *name)
{
	for (size_t i = 0; i < ex->n_tags; i++) {
		if (strcmp(ex->tags[i].name, name) == 0)
			return true;
	}
	return false;
}

/* Envoy runs the extractors without a prefix token first, then those whose prefix is the
 * name's first token, each in configuration order. */
static void extract(struct sk_stats_store *store, const char *full, struct extraction *ex)
{
	ex->full = full;
	ex->len = strlen(full);
	ex->n_tokens = 0;
	ex->tokens_split = false;
	ex->n_remove = 0;
	ex->n_tags = 0;
	const char *dot = strchr(full, '.');
	size_t first_len = dot ? (size_t)(dot - full) : 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < store->n_extractors; i++) {
			const struct sk__extractor *x = &store->extractors[i];
			if (pass == 0 ? x->prefix[0] != '\0'
				      : !(dot && strlen(x->prefix) == first_len && memcmp(x->prefix, full, first_len) == 0))
				continue;
			if (x->other_same_name && name_seen(ex, x->name))
				continue;
			run_extractor(store, x, ex);
		}
	}
}

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Writes the name minus the union of removed spans into out (truncated to outlen). Returns
 * the full length. */
static size_t stripped_name(struct extraction *ex, char *out, size_t outlen)
{
	qsort(ex->remove, ex->n_remove, sizeof(ex->remove[0]), span_cmp);
	size_t o = 0, pos = 0, r = 0;
	while (pos < ex->len) {
		while (r < ex->n_remove && ex->remove[r].end <= pos)
			r++;
		if (r < ex->n_remove && ex->remove[r].start <= pos) {
			pos = ex->remove[r].end;
			continue;
		}
		if (out && o + 1 < outlen)
			out[o] = ex->full[pos];
		o++;
		pos++;
	}
	if (out && outlen)
		out[o < outlen ? o : outlen - 1] = '\0';
	return o;
}

static uint64_t intern_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

static int intern_grow(struct sk_stats_store *store)
{
	size_t cap = store->cap_interned ? store->cap_interned * 2 : 256;
	char **v = calloc(cap, sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < store->cap_interned; i++) {
		char *s = store->interned[i];
		size_t j;

		if (s == NULL)
			continue;
		for (j = intern_hash(s, strlen(s)) & (cap - 1); v[j]; j = (j + 1) & (cap - 1))
			;
		v[j] = s;
	}
	free(store->interned);
	store->interned = v;
	store->cap_interned = cap;
	return 0;
}

const char *sk__intern(struct sk_stats_store *store, const char *s, size_t n)
{
	size_t j;

	if ((store->n_interned + 1) * 10 > store->cap_interned * 7 && intern_grow(store) < 0)
		return NULL;
	for (j = intern_hash(s, n) & (store->cap_interned - 1); store->interned[j];
	     j = (j + 1) & (store->cap_interned - 1))
		if (strncmp(store->interned[j], s, n) == 0 && store->interned[j][n] == '\0')
			return store->interned[j];
	if ((store->interned[j] = strndup(s, n)) == NULL)
		return NULL;
	store->n_interned++;
	return store->interned[j];
}

void sk__intern_free(struct sk_stats_store *store)
{
	for (size_t i = 0; i < store->cap_interned; i++)
		free(store->interned[i]);
	free(store->interned);
	store->interned = NULL;
	store->n_interned = store->cap_interned = 0;
}

int sk__tags_assign(struct sk_stats_store *store, struct sk__stat *st)
{
	struct extraction *ex = malloc(sizeof(*ex));
	char buf[512], *name = buf;
	if (!ex)
		return -ENOMEM;
	extract(store, st->name, ex);
	size_t n = stripped_name(ex, NULL, 0);
	if (n >= sizeof(buf) && (name = malloc(n + 1)) == NULL) {
		free(ex);
		return -ENOMEM;
	}
	stripped_name(ex, name, n + 1);
	st->tag_extracted = sk__intern(store, name, n);
	if (name != buf)
		free(name);
	st->tags = ex->n_tags ? calloc(ex->n_tags, sizeof(*st->tags)) : NULL;
	if (!st->tag_extracted || (ex->n_tags && !st->tags)) {
		free(ex);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ex->n_tags; i++) {
		st->tags[i].name = sk__intern(store, ex->tags[i].name, strlen(ex->tags[i].name));
		st->tags[i].value = sk__intern(store, ex->tags[i].value, ex->tags[i].value_len);
		st->n_tags = i + 1;
		if (!st->tags[i].name || !st->tags[i].value) {
			free(ex);
			return -ENOMEM;
		}
	}
	free(ex);
	return 0;
}

size_t sk_stats_extract_tags(struct sk_stats_store *store, const char *full_name, char *tag_extracted,
			     size_t len, struct sk_stat_tag *tags, size_t max_tags)
{
	struct extraction *ex = malloc(sizeof(*ex));
	if (!ex)
		return 0;
	extract(store, full_name, ex);
	if (tag_extracted)
		stripped_name(ex, tag_extracted, len);
	for (size_t i = 0; i < ex->n_tags && i < max_tags; i++) {
		snprintf(tags[i].name, sizeof(tags[i].name), "%s", ex->tags[i].name);
		size_t vl = ex->tags[i].value_len < sizeof(tags[i].value) - 1 ? ex->tags[i].value_len
									       : sizeof(tags[i].value) - 1;
		memcpy(tags[i].value, ex->tags[i].value, vl);
		tags[i].value[vl] = '\0';
	}
	size_t n = ex->n_tags;
	free(ex);
	return n;
}
