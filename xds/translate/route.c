/* route: RouteConfiguration proto -> struct sk_route_config. See route.h.
 *
 * Everything the router needs is copied out (the proto can be freed afterwards) and every
 * regex is compiled here, once. What skiff cannot honour with Envoy's meaning is refused with
 * the path of the field (fail closed); fields that only feed observability (tracing,
 * virtual_clusters, stat_prefix, metadata, decorator) are accepted. Refused, among others:
 * vhds, cluster_specifier_plugins, virtual host matcher/require_tls/rate_limits/
 * hedge_policy, route filter_action/non_forwarding_action, match path_match_policy/cookies/
 * tls_context/dynamic_metadata/filter_state, metadata_match (subsets), rate_limits,
 * internal redirects, hedging, retry priority/options predicates/rate-limited back-off,
 * hash policies on filter state or with a regex rewrite, direct_response bodies from files.
 * CORS policies (typed_per_filter_config CorsPolicy at the route configuration, virtual host
 * and route levels, and the deprecated cors fields) are decoded into sk_cors_policy here.
 *
 * Regexes are PCRE2 standing in for Envoy's RE2: full-match patterns are compiled anchored
 * at both ends (RE2::FullMatch), `$` matches only at the end (as RE2 without multi-line), and
 * constructs RE2 rejects (backreferences, lookaround, atomic groups) are refused. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "xds/translate/route.h"

#include <ctype.h>
#include <errno.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_ROUTE_TIMEOUT 15.0
#define DEFAULT_MAX_DIRECT_BODY 4096
#define DEFAULT_BACK_OFF_BASE 0.025
#define WHERE_MAX 384

typedef Envoy__Config__Route__V3__RouteConfiguration route_config_pb;
typedef Envoy__Config__Route__V3__VirtualHost vhost_pb;
typedef Envoy__Config__Route__V3__Route route_pb;
typedef Envoy__Config__Route__V3__RouteAction action_pb;
typedef Envoy__Config__Core__V3__HeaderValueOption hvo_pb;

struct sk_regex {
	pcre2_code *code;
	char *pattern;
	char *subst;       /* rewrite patterns: the substitution in pcre2_substitute syntax */
};

/* The state of one translation: where errors go, and whether an allocation failed (checked
 * once at the end, so that the code below reads as the happy path). */
struct tctx {
	char *err;
	size_t errlen;
	const char *rc_name;
	bool oom;
	uint32_t max_body;
};

static int fail(struct tctx *c, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct tctx *c, const char *where, const char *fmt, ...)
{
	char what[512];
	size_t k;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	/* "field: why" continues the path: "routes[0].route" + "cluster_specifier_plugin: ..." */
	k = strspn(what, "abcdefghijklmnopqrstuvwxyz0123456789_.[]");
	snprintf(c->err, c->errlen, "route config '%s': %s%s%s", c->rc_name, where,
		 !where[0] ? "" : k > 0 && what[k] == ':' ? "." : ": ", what);
	return -EINVAL;
}

/* buf = where + the formatted suffix: the path of a nested field, for messages (truncated
 * rather than overflowing when absurdly deep). */
static void at(char *buf, size_t len, const char *where, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void at(char *buf, size_t len, const char *where, const char *fmt, ...)
{
	size_t n = strnlen(where, len - 1);
	va_list ap;

	memcpy(buf, where, n);
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

static char *dup_n(struct tctx *c, const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d == NULL) {
		c->oom = true;
		return NULL;
	}
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static char *dup(struct tctx *c, const char *s)
{
	return dup_n(c, s ? s : "", s ? strlen(s) : 0);
}

/* NULL for NULL or "" (fields where empty means "not set"). */
static char *dup_opt(struct tctx *c, const char *s)
{
	return s && s[0] ? dup(c, s) : NULL;
}

static char *dup_lower(struct tctx *c, const char *s)
{
	char *d = dup(c, s);

	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static void *alloc(struct tctx *c, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
		c->oom = true;
	return p;
}

static int duration(struct tctx *c, const Google__Protobuf__Duration *d, double dflt, double *out,
		    const char *where, const char *field)
{
	if (d == NULL) {
		*out = dflt;
		return 0;
	}
	if (d->seconds < 0 || d->nanos < 0 || d->nanos > 999999999)
		return fail(c, where, "%s: invalid duration", field);
	*out = (double)d->seconds + d->nanos / 1e9;
	return 0;
}

static int fraction(struct tctx *c, const Envoy__Type__V3__FractionalPercent *f, struct sk_fraction *out,
		    const char *where)
{
	static const uint32_t denominators[] = {100, 10000, 1000000};

	if (f == NULL) {
		out->numerator = 0;
		out->denominator = 100;
		return 0;
	}
	if ((unsigned)f->denominator > 2)
		return fail(c, where, "unknown denominator %d", (int)f->denominator);
	out->numerator = f->numerator;
	out->denominator = denominators[f->denominator];
	if (out->numerator > out->denominator)
		out->numerator = out->denominator; /* Envoy clamps to 100% */
	return 0;
}

/* The message type in an Any, looking through udpa/xds TypedStruct: "a.b.C", "" when none. */
static void any_type(const Google__Protobuf__Any *any, char *buf, size_t len)
{
	const char *slash;

	buf[0] = '\0';
	if (any == NULL || any->type_url == NULL)
		return;
	slash = strrchr(any->type_url, '/');
	snprintf(buf, len, "%s", slash ? slash + 1 : any->type_url);
	if (strcmp(buf, "udpa.type.v1.TypedStruct") == 0 || strcmp(buf, "xds.type.v3.TypedStruct") == 0) {
		Udpa__Type__V1__TypedStruct *ts = (void *)protobuf_c_message_unpack(
			&udpa__type__v1__typed_struct__descriptor, NULL, any->value.len, any->value.data);

		buf[0] = '\0';
		if (ts != NULL) {
			slash = strrchr(ts->type_url, '/');
			snprintf(buf, len, "%s", slash ? slash + 1 : ts->type_url);
			protobuf_c_message_free_unpacked(&ts->base, NULL);
		}
	}
}

static const char *metadata_string(const Envoy__Config__Core__V3__Metadata *md, const char *ns,
				   const char *key)
{
	for (size_t i = 0; md && i < md->n_filter_metadata; i++) {
		const Google__Protobuf__Struct *st = md->filter_metadata[i]->value;

		if (strcmp(md->filter_metadata[i]->key, ns) != 0 || st == NULL)
			continue;
		for (size_t k = 0; k < st->n_fields; k++) {
			const Google__Protobuf__Value *v = st->fields[k]->value;

			if (strcmp(st->fields[k]->key, key) == 0 && v &&
			    v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
				return v->string_value;
		}
	}
	return NULL;
}

/* ---- regexes ---------------------------------------------------------------------------- */

/* Constructs PCRE2 has and RE2 lacks: refused, so that a pattern means what it means in Envoy. */
const char *sk_regex_re2_unsupported(const char *p, const pcre2_code *code)
{
	uint32_t backrefs = 0;
	bool in_class = false;

	pcre2_pattern_info(code, PCRE2_INFO_BACKREFMAX, &backrefs);
	if (backrefs > 0)
		return "backreferences";
	for (; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
		} else if (in_class) {
			in_class = *p != ']';
		} else if (*p == '[') {
			in_class = true;
			if (p[1] == ']' || (p[1] == '^' && p[2] == ']'))
				p += p[1] == '^' ? 2 : 1;
		} else if (*p == '(' && p[1] == '?') {
			if (p[2] == '=' || p[2] == '!' || (p[2] == '<' && (p[3] == '=' || p[3] == '!')))
				return "lookaround assertions";
			if (p[2] == '>')
				return "atomic groups";
		} else if ((*p == '+' || *p == '*' || *p == '?' || *p == '}') && p[1] == '+') {
			return "possessive quantifiers";
		}
	}
	return NULL;
}

static void regex_free(struct sk_regex *re)
{
	if (re == NULL)
		return;
	pcre2_code_free(re->code);
	free(re->pattern);
	free(re->subst);
	free(re);
}

/* RE2 rewrite syntax (\0..\9, \\) -> pcre2_substitute's ($0..$9, literal '\', $$). */
static char *convert_substitution(struct tctx *c, const char *s, uint32_t groups, const char *where)
{
	size_t n = strlen(s);
	char *out = malloc(n * 4 + 1), *o = out;

	if (out == NULL) {
		c->oom = true;
		return NULL;
	}
	for (; *s; s++) {
		if (*s == '\\') {
			if (s[1] == '\\') {
				*o++ = '\\';
				s++;
			} else if (s[1] >= '0' && s[1] <= '9') {
				if ((uint32_t)(s[1] - '0') > groups) {
					fail(c, where, "substitution refers to \\%c but the pattern has %u groups",
					     s[1], groups);
					free(out);
					return NULL;
				}
				o += sprintf(o, "${%c}", s[1]);
				s++;
			} else {
				fail(c, where, "substitution: invalid escape (use \\0..\\9 or \\\\)");
				free(out);
				return NULL;
			}
		} else if (*s == '$') {
			*o++ = '$';
			*o++ = '$';
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
}

/* Compiles m. `full`: whole-subject matching; `subst`: a regex_rewrite substitution. */
static struct sk_regex *regex_new(struct tctx *c, const Envoy__Type__Matcher__V3__RegexMatcher *m, bool full,
				  const char *subst, const char *where)
{
	uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY;
	struct sk_regex *re;
	PCRE2_SIZE off;
	const char *why;
	int ec;

	if (m == NULL || m->regex == NULL || m->regex[0] == '\0') {
		fail(c, where, "regex: must not be empty");
		return NULL;
	}
	re = calloc(1, sizeof(*re));
	if (re == NULL) {
		c->oom = true;
		return NULL;
	}
	if (full)
		opts |= PCRE2_ANCHORED | PCRE2_ENDANCHORED;
	re->pattern = dup(c, m->regex);
	re->code = pcre2_compile((PCRE2_SPTR)m->regex, PCRE2_ZERO_TERMINATED, opts, &ec, &off, NULL);
	if (re->code == NULL) {
		PCRE2_UCHAR msg[160];

		pcre2_get_error_message(ec, msg, sizeof(msg));
		fail(c, where, "regex '%s': %s at offset %zu", m->regex, (char *)msg, (size_t)off);
		regex_free(re);
		return NULL;
	}
	why = sk_regex_re2_unsupported(m->regex, re->code);
	if (why != NULL) {
		fail(c, where, "regex '%s': %s are not supported (Envoy's RE2 has none)", m->regex, why);
		regex_free(re);
		return NULL;
	}
	pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* optional: the interpreter also works */
	if (subst != NULL) {
		uint32_t groups = 0;

		pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &groups);
		re->subst = convert_substitution(c, subst, groups, where);
		if (re->subst == NULL) {
			regex_free(re);
			return NULL;
		}
	}
	return re;
}

static _Thread_local pcre2_match_data *tl_match_data;

bool sk_regex_match(const struct sk_regex *re, const char *s, size_t n)
{
	if (tl_match_data == NULL)
		tl_match_data = pcre2_match_data_create(1, NULL);
	if (tl_match_data == NULL)
		return false;
	/* 0 means "matched, ovector too small": still a match */
	return pcre2_match(re->code, (PCRE2_SPTR)(s ? s : ""), n, 0, 0, tl_match_data, NULL) >= 0;
}

long sk_regex_replace(const struct sk_regex *re, const char *s, size_t n, char *out, size_t outlen)
{
	PCRE2_SIZE len = outlen;
	int rc;

	if (re->subst == NULL || outlen == 0)
		return -1;
	rc = pcre2_substitute(re->code, (PCRE2_SPTR)(s ? s : ""), n, 0, PCRE2_SUBSTITUTE_GLOBAL, NULL, NULL,
			      (PCRE2_SPTR)re->subst, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)out, &len);
	return rc < 0 ? -1 : (long)len;
}

const char *sk_regex_pattern(const struct sk_regex *re)
{
	return re ? re->pattern : "";
}

void sk_regex_thread_free(void)
{
	pcre2_match_data_free(tl_match_data);
	tl_match_data = NULL;
}

/* ---- matchers --------------------------------------------------------------------------- */

static int string_matcher(struct tctx *c, const Envoy__Type__Matcher__V3__StringMatcher *m,
			  struct sk_string_matcher *out, const char *where)
{
	const char *v = NULL;

	if (m == NULL)
		return fail(c, where, "string matcher missing");
	out->ignore_case = m->ignore_case;
	switch (m->match_pattern_case) {
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
		out->kind = SK_STRING_EXACT;
		v = m->exact;
		break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
		out->kind = SK_STRING_PREFIX;
		v = m->prefix;
		break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
		out->kind = SK_STRING_SUFFIX;
		v = m->suffix;
		break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS:
		out->kind = SK_STRING_CONTAINS;
		v = m->contains;
		break;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX:
		if (m->ignore_case)
			return fail(c, where, "ignore_case has no effect for safe_regex");
		out->kind = SK_STRING_REGEX;
		out->re = regex_new(c, m->safe_regex, true, NULL, where);
		return out->re ? 0 : -EINVAL;
	case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CUSTOM:
		return fail(c, where, "custom: not supported");
	default:
		return fail(c, where, "no match pattern");
	}
	if (out->kind != SK_STRING_EXACT && (v == NULL || v[0] == '\0'))
		return fail(c, where, "must not be empty");
	out->value = dup(c, v);
	out->len = strlen(v ? v : "");
	return 0;
}

static void string_matcher_free(struct sk_string_matcher *m)
{
	free(m->value);
	regex_free(m->re);
}

static int header_matcher(struct tctx *c, const Envoy__Config__Route__V3__HeaderMatcher *h,
			  struct sk_header_matcher *out, const char *where)
{
	char w[WHERE_MAX];
	const char *v = NULL;
	enum sk_string_match_kind kind = SK_STRING_EXACT;

	if (h->name == NULL || h->name[0] == '\0')
		return fail(c, where, "name: must not be empty");
	out->name = dup_lower(c, h->name);
	out->name_len = strlen(h->name);
	out->invert = h->invert_match;
	out->treat_missing_as_empty = h->treat_missing_header_as_empty;
	out->kind = SK_HEADER_STRING;
	switch (h->header_match_specifier_case) {
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_EXACT_MATCH:
		/* deprecated exact_match: "" matches any value (Envoy's HeaderDataExactMatch) */
		v = h->exact_match;
		kind = v[0] ? SK_STRING_EXACT : SK_STRING_PREFIX;
		break;
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH:
		v = h->prefix_match;
		kind = SK_STRING_PREFIX;
		break;
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SUFFIX_MATCH:
		v = h->suffix_match;
		kind = SK_STRING_SUFFIX;
		break;
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_CONTAINS_MATCH:
		v = h->contains_match;
		kind = SK_STRING_CONTAINS;
		break;
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_SAFE_REGEX_MATCH:
		at(w, sizeof(w), where, ".safe_regex_match");
		out->str.kind = SK_STRING_REGEX;
		out->str.re = regex_new(c, h->safe_regex_match, true, NULL, w);
		return out->str.re ? 0 : -EINVAL;
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_STRING_MATCH:
		at(w, sizeof(w), where, ".string_match");
		return string_matcher(c, h->string_match, &out->str, w);
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_RANGE_MATCH:
		out->kind = SK_HEADER_RANGE;
		out->range_start = h->range_match->start;
		out->range_end = h->range_match->end;
		return 0;
	case ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PRESENT_MATCH:
		out->kind = SK_HEADER_PRESENT;
		out->present = h->present_match;
		return 0;
	default: /* no specifier: the header must be present */
		out->kind = SK_HEADER_PRESENT;
		out->present = true;
		return 0;
	}
	if (kind != SK_STRING_EXACT && kind != SK_STRING_PREFIX && v[0] == '\0')
		return fail(c, where, "match value must not be empty");
	if (kind == SK_STRING_PREFIX && v[0] == '\0' &&
	    h->header_match_specifier_case == ENVOY__CONFIG__ROUTE__V3__HEADER_MATCHER__HEADER_MATCH_SPECIFIER_PREFIX_MATCH)
		return fail(c, where, "prefix_match: must not be empty");
	out->str.kind = kind;
	out->str.value = dup(c, v);
	out->str.len = strlen(v);
	return 0;
}

static void header_matcher_free(struct sk_header_matcher *m)
{
	free(m->name);
	string_matcher_free(&m->str);
}

static int header_matchers(struct tctx *c, Envoy__Config__Route__V3__HeaderMatcher **in, size_t n,
			   struct sk_header_matcher **out, size_t *nout, const char *where, const char *field)
{
	char w[WHERE_MAX];

	*out = alloc(c, n, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		at(w, sizeof(w), where, ".%s[%zu]", field, i);
		*nout = i + 1;
		if (header_matcher(c, in[i], &(*out)[i], w) < 0)
			return -EINVAL;
	}
	return 0;
}

static void header_matchers_free(struct sk_header_matcher *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		header_matcher_free(&m[i]);
	free(m);
}

/* ---- header mutations ------------------------------------------------------------------- */

static bool is_token_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", ch);
}

static bool valid_header_name(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return false;
	for (const char *p = s; *p; p++)
		if (!is_token_char((unsigned char)*p))
			return false;
	return true;
}

/* Envoy's isModifiableHeader/isRemovableHeader: not a pseudo-header, not Host. */
static bool modifiable_header(const char *s)
{
	return s[0] != ':' && strcasecmp(s, "host") != 0;
}

static int header_adds(struct tctx *c, hvo_pb **in, size_t n, struct sk_header_ops *ops, const char *where,
		       const char *field)
{
	char w[WHERE_MAX];

	ops->add = alloc(c, n, sizeof(*ops->add));
	if (ops->add == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const hvo_pb *o = in[i];
		struct sk_header_add *a = &ops->add[i];
		const char *key = o->header ? o->header->key : NULL;
		const char *val = o->header ? o->header->value : "";
		size_t vlen;

		at(w, sizeof(w), where, ".%s[%zu]", field, i);
		ops->n_add = i + 1;
		if (o->header == NULL)
			return fail(c, w, "header: missing");
		if (key == NULL || (key[0] != ':' && !valid_header_name(key)))
			return fail(c, w, "header.key '%s': not a valid header name", key ? key : "");
		if (!modifiable_header(key))
			return fail(c, w, "header.key '%s': :-prefixed or host headers may not be modified", key);
		if ((val == NULL || val[0] == '\0') && o->header->raw_value.len > 0) {
			a->value = dup_n(c, (const char *)o->header->raw_value.data, o->header->raw_value.len);
			vlen = o->header->raw_value.len;
		} else {
			a->value = dup(c, val);
			vlen = strlen(val ? val : "");
		}
		if (a->value && (memchr(a->value, '\r', vlen) || memchr(a->value, '\n', vlen) ||
				 strlen(a->value) != vlen))
			return fail(c, w, "header.value: CR, LF and NUL are not allowed");
		a->key = dup_lower(c, key);
		a->keep_empty_value = o->keep_empty_value;
		if (o->append != NULL) {
			if (o->append_action != ENVOY__CONFIG__CORE__V3__HEADER_VALUE_OPTION__HEADER_APPEND_ACTION__APPEND_IF_EXISTS_OR_ADD)
				return fail(c, w, "both append and append_action are set, which is not allowed");
			a->append = o->append->value ? SK_APPEND_IF_EXISTS_OR_ADD : SK_OVERWRITE_IF_EXISTS_OR_ADD;
		} else {
			if ((unsigned)o->append_action > 3)
				return fail(c, w, "append_action: unknown value %d", (int)o->append_action);
			a->append = (enum sk_header_append)o->append_action;
		}
	}
	return 0;
}

static int header_removes(struct tctx *c, char **in, size_t n, struct sk_header_ops *ops, const char *where,
			  const char *field)
{
	char w[WHERE_MAX];

	ops->remove = alloc(c, n, sizeof(*ops->remove));
	if (ops->remove == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		at(w, sizeof(w), where, ".%s[%zu]", field, i);
		if (!valid_header_name(in[i]) && !(in[i] && in[i][0] == ':'))
			return fail(c, w, "'%s': not a valid header name", in[i] ? in[i] : "");
		if (!modifiable_header(in[i]))
			return fail(c, w, "'%s': :-prefixed or host headers may not be removed", in[i]);
		ops->remove[i] = dup_lower(c, in[i]);
		ops->n_remove = i + 1;
	}
	return 0;
}

/* The four header-mutation fields every level has (they share names across messages). */
#define MUTATIONS(c, pb, out, where)                                                                     \
	(header_adds(c, (pb)->request_headers_to_add, (pb)->n_request_headers_to_add, &(out)->request,  \
		     where, "request_headers_to_add") < 0 ||                                              \
	 header_removes(c, (pb)->request_headers_to_remove, (pb)->n_request_headers_to_remove,          \
			&(out)->request, where, "request_headers_to_remove") < 0 ||                       \
	 header_adds(c, (pb)->response_headers_to_add, (pb)->n_response_headers_to_add, &(out)->response, \
		     where, "response_headers_to_add") < 0 ||                                             \
	 header_removes(c, (pb)->response_headers_to_remove, (pb)->n_response_headers_to_remove,        \
			&(out)->response, where, "response_headers_to_remove") < 0)

static void ops_free(struct sk_header_ops *o)
{
	for (size_t i = 0; i < o->n_add; i++) {
		free(o->add[i].key);
		free(o->add[i].value);
	}
	free(o->add);
	for (size_t i = 0; i < o->n_remove; i++)
		free(o->remove[i]);
	free(o->remove);
}

static void mutations_free(struct sk_header_mutations *m)
{
	ops_free(&m->request);
	ops_free(&m->response);
}

/* ---- typed_per_filter_config ------------------------------------------------------------ */

/* Per-route configs of the filters skiff runs. Envoy refuses a per-route config whose type has
 * no registered filter unless it is optional; so does skiff. */
static bool known_per_route_type(const char *type)
{
	static const char *const types[] = {
		"envoy.extensions.filters.http.fault.v3.HTTPFault",
		"envoy.extensions.filters.http.cors.v3.CorsPolicy",
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i]) == 0)
			return true;
	return false;
}

static int filter_config(struct tctx *c, const char *key, const Google__Protobuf__Any *any,
			 struct sk_filter_config_ref *out, const char *where)
{
	char type[256];
	const Google__Protobuf__Any *inner = any;
	Envoy__Config__Route__V3__FilterConfig *fc = NULL;
	int rc = 0;

	any_type(any, type, sizeof(type));
	if (strcmp(type, "envoy.config.route.v3.FilterConfig") == 0) {
		fc = (void *)protobuf_c_message_unpack(&envoy__config__route__v3__filter_config__descriptor, NULL,
						       any->value.len, any->value.data);
		if (fc == NULL)
			return fail(c, where, "invalid FilterConfig");
		out->is_optional = fc->is_optional;
		out->disabled = fc->disabled;
		inner = fc->config;
		any_type(inner, type, sizeof(type));
	}
	out->filter = dup(c, key);
	out->type = dup(c, type);
	if (inner != NULL) {
		out->type_url = dup(c, inner->type_url);
		out->value_len = inner->value.len;
		out->value = malloc(inner->value.len ? inner->value.len : 1);
		if (out->value == NULL)
			c->oom = true;
		else if (inner->value.len)
			memcpy(out->value, inner->value.data, inner->value.len);
	}
	if (type[0] == '\0' && !out->disabled)
		rc = fail(c, where, "no config");
	else if (type[0] != '\0' && !known_per_route_type(type) && !out->is_optional)
		rc = fail(c, where, "per-route config of type '%s' is not supported", type);
	if (fc)
		protobuf_c_message_free_unpacked(&fc->base, NULL);
	return rc;
}

/* The map entries of the three messages share one layout: base, key, value. */
struct any_entry {
	ProtobufCMessage base;
	char *key;
	Google__Protobuf__Any *value;
};

static int filter_configs(struct tctx *c, void *const *entries, size_t n, struct sk_filter_configs *out,
			  const char *where)
{
	char w[WHERE_MAX];

	out->v = alloc(c, n, sizeof(*out->v));
	if (out->v == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct any_entry *e = entries[i];

		at(w, sizeof(w), where, ".typed_per_filter_config['%s']", e->key);
		out->n = i + 1;
		if (filter_config(c, e->key, e->value, &out->v[i], w) < 0)
			return -EINVAL;
	}
	return 0;
}

static void filter_configs_free(struct sk_filter_configs *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].filter);
		free(f->v[i].type);
		free(f->v[i].type_url);
		free(f->v[i].value);
	}
	free(f->v);
}

/* ---- CORS ------------------------------------------------------------------------------- */

/* The fields the two CorsPolicy messages share (the filter's and the deprecated route one). */
struct cors_fields {
	Envoy__Type__Matcher__V3__StringMatcher **origins;
	size_t n_origins;
	const char *allow_methods, *allow_headers, *expose_headers, *max_age;
	const Google__Protobuf__BoolValue *allow_credentials, *allow_pna, *forward;
	const Envoy__Config__Core__V3__RuntimeFractionalPercent *enabled, *shadow;
};

static int bool_value(const Google__Protobuf__BoolValue *b)
{
	return b ? (int)b->value : -1;
}

/* *out = the policy (allocated even when a field is bad, for the caller's config to free). */
static int cors_policy(struct tctx *c, const struct cors_fields *f, struct sk_cors_policy **out, const char *where)
{
	struct sk_cors_policy *p = *out = alloc(c, 1, sizeof(*p));
	char w[WHERE_MAX];

	if (p == NULL)
		return -ENOMEM;
	p->origins = alloc(c, f->n_origins, sizeof(*p->origins));
	for (size_t i = 0; p->origins && i < f->n_origins; i++) {
		at(w, sizeof(w), where, ".allow_origin_string_match[%zu]", i);
		p->n_origins = i + 1;
		if (string_matcher(c, f->origins[i], &p->origins[i], w) < 0)
			return -EINVAL;
	}
	p->allow_methods = dup_opt(c, f->allow_methods);
	p->allow_headers = dup_opt(c, f->allow_headers);
	p->expose_headers = dup_opt(c, f->expose_headers);
	p->max_age = dup_opt(c, f->max_age);
	p->allow_credentials = bool_value(f->allow_credentials);
	p->allow_private_network_access = bool_value(f->allow_pna);
	p->forward_not_matching_preflights = bool_value(f->forward);
	if (f->enabled) {
		at(w, sizeof(w), where, ".filter_enabled");
		p->has_filter_enabled = true;
		if (fraction(c, f->enabled->default_value, &p->filter_enabled, w) < 0)
			return -EINVAL;
	}
	if (f->shadow) {
		at(w, sizeof(w), where, ".shadow_enabled");
		p->has_shadow_enabled = true;
		if (fraction(c, f->shadow->default_value, &p->shadow_enabled, w) < 0)
			return -EINVAL;
	}
	return c->oom ? -ENOMEM : 0;
}

static void cors_free(struct sk_cors_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_origins; i++)
		string_matcher_free(&p->origins[i]);
	free(p->origins);
	free(p->allow_methods);
	free(p->allow_headers);
	free(p->expose_headers);
	free(p->max_age);
	free(p);
}

/* The level's CorsPolicy among its typed_per_filter_config entries (any key; a FilterConfig
 * with disabled, under the key envoy.filters.http.cors when it has no config, turns the filter
 * off there). 0 with *out NULL when there is none. */
static int cors_typed(struct tctx *c, const struct sk_filter_configs *fc, struct sk_cors_policy **out,
		      const char *where)
{
	char w[WHERE_MAX];

	*out = NULL;
	for (size_t i = 0; i < fc->n; i++) {
		const struct sk_filter_config_ref *r = &fc->v[i];
		Envoy__Extensions__Filters__Http__Cors__V3__CorsPolicy *pb;
		struct cors_fields f;
		int rc;

		/* a FilterConfig that only disables carries no config: known by the filter's name */
		if (!(r->type && strcmp(r->type, "envoy.extensions.filters.http.cors.v3.CorsPolicy") == 0) &&
		    !(r->disabled && strcmp(r->filter, "envoy.filters.http.cors") == 0))
			continue;
		at(w, sizeof(w), where, ".typed_per_filter_config['%s']", r->filter);
		if (r->disabled) {
			if ((*out = alloc(c, 1, sizeof(**out))) != NULL)
				(*out)->disabled = true;
			return c->oom ? -ENOMEM : 0;
		}
		if (strstr(r->type_url ? r->type_url : "", "TypedStruct") != NULL)
			return fail(c, w, "a CorsPolicy wrapped in a TypedStruct is not supported");
		pb = (void *)protobuf_c_message_unpack(&envoy__extensions__filters__http__cors__v3__cors_policy__descriptor,
						       NULL, r->value_len, r->value);
		if (pb == NULL)
			return fail(c, w, "invalid CorsPolicy");
		f = (struct cors_fields){pb->allow_origin_string_match, pb->n_allow_origin_string_match,
					 pb->allow_methods, pb->allow_headers, pb->expose_headers, pb->max_age,
					 pb->allow_credentials, pb->allow_private_network_access,
					 pb->forward_not_matching_preflights, pb->filter_enabled, pb->shadow_enabled};
		rc = cors_policy(c, &f, out, w);
		protobuf_c_message_free_unpacked(&pb->base, NULL);
		return rc;
	}
	return 0;
}

/* The deprecated `cors` field of a virtual host or route action. */
static int cors_legacy(struct tctx *c, const Envoy__Config__Route__V3__CorsPolicy *pb, struct sk_cors_policy **out,
		       const char *where)
{
	char w[WHERE_MAX];
	struct cors_fields f;

	*out = NULL;
	if (pb == NULL)
		return 0;
	at(w, sizeof(w), where, ".cors");
	f = (struct cors_fields){pb->allow_origin_string_match, pb->n_allow_origin_string_match, pb->allow_methods,
				 pb->allow_headers, pb->expose_headers, pb->max_age, pb->allow_credentials,
				 pb->allow_private_network_access, pb->forward_not_matching_preflights,
				 pb->enabled_specifier_case == ENVOY__CONFIG__ROUTE__V3__CORS_POLICY__ENABLED_SPECIFIER_FILTER_ENABLED
					 ? pb->filter_enabled : NULL,
				 pb->shadow_enabled};
	return cors_policy(c, &f, out, w);
}

/* ---- retry, hash, mirror ---------------------------------------------------------------- */

uint32_t sk_retry_on_parse(const char *s, size_t len, unsigned *unknown)
{
	static const struct {
		const char *token;
		uint32_t flag;
	} tokens[] = {
		{"5xx", SK_RETRY_5XX},
		{"gateway-error", SK_RETRY_GATEWAY_ERROR},
		{"connect-failure", SK_RETRY_CONNECT_FAILURE},
		{"envoy-ratelimited", SK_RETRY_ENVOY_RATE_LIMITED},
		{"retriable-4xx", SK_RETRY_RETRIABLE_4XX},
		{"refused-stream", SK_RETRY_REFUSED_STREAM},
		{"retriable-status-codes", SK_RETRY_RETRIABLE_STATUS_CODES},
		{"retriable-headers", SK_RETRY_RETRIABLE_HEADERS},
		{"reset", SK_RETRY_RESET},
		{"reset-before-request", SK_RETRY_RESET_BEFORE_REQUEST},
		{"http3-post-connect-failure", SK_RETRY_HTTP3_POST_CONNECT_FAILURE},
		{"cancelled", SK_RETRY_GRPC_CANCELLED},
		{"deadline-exceeded", SK_RETRY_GRPC_DEADLINE_EXCEEDED},
		{"resource-exhausted", SK_RETRY_GRPC_RESOURCE_EXHAUSTED},
		{"unavailable", SK_RETRY_GRPC_UNAVAILABLE},
		{"internal", SK_RETRY_GRPC_INTERNAL},
	};
	const char *p = s, *end = s + len;
	uint32_t flags = 0;

	if (unknown)
		*unknown = 0;
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *te = comma ? comma : end, *tb = p;
		size_t i;

		while (tb < te && isspace((unsigned char)*tb))
			tb++;
		while (te > tb && isspace((unsigned char)te[-1]))
			te--;
		if (te > tb) {
			for (i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
				if (strlen(tokens[i].token) == (size_t)(te - tb) &&
				    memcmp(tokens[i].token, tb, (size_t)(te - tb)) == 0) {
					flags |= tokens[i].flag;
					break;
				}
			}
			if (i == sizeof(tokens) / sizeof(tokens[0]) && unknown)
				(*unknown)++;
		}
		p = comma ? comma + 1 : end;
	}
	return flags;
}

static int retry_policy(struct tctx *c, const Envoy__Config__Route__V3__RetryPolicy *p, struct sk_retry_policy *out,
			const char *where)
{
	char w[WHERE_MAX];

	out->retry_on = sk_retry_on_parse(p->retry_on, strlen(p->retry_on), NULL);
	out->num_retries = p->num_retries ? p->num_retries->value : 1;
	if (duration(c, p->per_try_timeout, 0, &out->per_try_timeout, where, "per_try_timeout") < 0 ||
	    duration(c, p->per_try_idle_timeout, 0, &out->per_try_idle_timeout, where, "per_try_idle_timeout") < 0)
		return -EINVAL;
	if (p->retry_priority != NULL && p->retry_priority->name && p->retry_priority->name[0])
		return fail(c, where, "retry_priority '%s': not supported", p->retry_priority->name);
	if (p->n_retry_options_predicates > 0)
		return fail(c, where, "retry_options_predicates: not supported");
	if (p->rate_limited_retry_back_off != NULL)
		return fail(c, where, "rate_limited_retry_back_off: not supported");
	for (size_t i = 0; i < p->n_retry_host_predicate; i++) {
		const Envoy__Config__Route__V3__RetryPolicy__RetryHostPredicate *h = p->retry_host_predicate[i];
		char type[256] = "";

		if (h->config_type_case == ENVOY__CONFIG__ROUTE__V3__RETRY_POLICY__RETRY_HOST_PREDICATE__CONFIG_TYPE_TYPED_CONFIG)
			any_type(h->typed_config, type, sizeof(type));
		if (strcmp(type, "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate") == 0 ||
		    (type[0] == '\0' && strcmp(h->name, "envoy.retry_host_predicates.previous_hosts") == 0))
			out->previous_hosts = true;
		else
			return fail(c, where, "retry_host_predicate[%zu]: '%s' is not supported (only previous_hosts)", i,
				    type[0] ? type : h->name);
	}
	if (p->host_selection_retry_max_attempts < 0 || p->host_selection_retry_max_attempts > UINT32_MAX)
		return fail(c, where, "host_selection_retry_max_attempts: out of range");
	out->host_selection_max_attempts = p->host_selection_retry_max_attempts
						   ? (uint32_t)p->host_selection_retry_max_attempts : 1;
	out->status_codes = alloc(c, p->n_retriable_status_codes, sizeof(uint32_t));
	if (out->status_codes == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_retriable_status_codes; i++)
		out->status_codes[i] = p->retriable_status_codes[i];
	out->n_status_codes = p->n_retriable_status_codes;
	out->back_off_base = DEFAULT_BACK_OFF_BASE;
	out->back_off_max = SK_ROUTE_UNSET;
	if (p->retry_back_off != NULL) {
		at(w, sizeof(w), where, ".retry_back_off");
		if (p->retry_back_off->base_interval == NULL)
			return fail(c, w, "base_interval: required");
		if (duration(c, p->retry_back_off->base_interval, 0, &out->back_off_base, w, "base_interval") < 0 ||
		    duration(c, p->retry_back_off->max_interval, SK_ROUTE_UNSET, &out->back_off_max, w,
			     "max_interval") < 0)
			return -EINVAL;
		if (out->back_off_base < 0.001) /* Envoy rounds sub-millisecond intervals up */
			out->back_off_base = 0.001;
		if (out->back_off_max != SK_ROUTE_UNSET && out->back_off_max < 0.001)
			out->back_off_max = 0.001;
		if (out->back_off_max != SK_ROUTE_UNSET && out->back_off_max < out->back_off_base)
			return fail(c, w, "max_interval must be greater than or equal to the base_interval");
	}
	if (out->back_off_max == SK_ROUTE_UNSET)
		out->back_off_max = out->back_off_base * 10;
	if (header_matchers(c, p->retriable_headers, p->n_retriable_headers, &out->retriable_headers,
			    &out->n_retriable_headers, where, "retriable_headers") < 0 ||
	    header_matchers(c, p->retriable_request_headers, p->n_retriable_request_headers,
			    &out->retriable_request_headers, &out->n_retriable_request_headers, where,
			    "retriable_request_headers") < 0)
		return -EINVAL;
	return 0;
}

static void retry_policy_free(struct sk_retry_policy *r)
{
	free(r->status_codes);
	header_matchers_free(r->retriable_headers, r->n_retriable_headers);
	header_matchers_free(r->retriable_request_headers, r->n_retriable_request_headers);
}

static int hash_policies(struct tctx *c, const action_pb *a, struct sk_route_forward *f, const char *where)
{
	char w[WHERE_MAX];

	f->hash = alloc(c, a->n_hash_policy, sizeof(*f->hash));
	if (f->hash == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < a->n_hash_policy; i++) {
		const Envoy__Config__Route__V3__RouteAction__HashPolicy *h = a->hash_policy[i];
		struct sk_hash_policy *o = &f->hash[i];

		at(w, sizeof(w), where, ".hash_policy[%zu]", i);
		f->n_hash = i + 1;
		o->terminal = h->terminal;
		o->cookie_ttl = SK_ROUTE_UNSET;
		switch (h->policy_specifier_case) {
		case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_HEADER:
			if (h->header->regex_rewrite != NULL)
				return fail(c, w, "header.regex_rewrite: not supported");
			if (!valid_header_name(h->header->header_name) && h->header->header_name[0] != ':')
				return fail(c, w, "header.header_name: not a valid header name");
			o->kind = SK_HASH_HEADER;
			o->name = dup_lower(c, h->header->header_name);
			break;
		case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_COOKIE:
			if (h->cookie->name[0] == '\0')
				return fail(c, w, "cookie.name: must not be empty");
			if (h->cookie->n_attributes > 0)
				return fail(c, w, "cookie.attributes: not supported");
			o->kind = SK_HASH_COOKIE;
			o->name = dup(c, h->cookie->name);
			o->cookie_path = dup_opt(c, h->cookie->path);
			if (duration(c, h->cookie->ttl, SK_ROUTE_UNSET, &o->cookie_ttl, w, "cookie.ttl") < 0)
				return -EINVAL;
			break;
		case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_CONNECTION_PROPERTIES:
			if (!h->connection_properties->source_ip)
				return fail(c, w, "connection_properties: only source_ip is supported");
			o->kind = SK_HASH_SOURCE_IP;
			break;
		case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_QUERY_PARAMETER:
			if (h->query_parameter->name[0] == '\0')
				return fail(c, w, "query_parameter.name: must not be empty");
			o->kind = SK_HASH_QUERY_PARAMETER;
			o->name = dup(c, h->query_parameter->name);
			break;
		case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HASH_POLICY__POLICY_SPECIFIER_FILTER_STATE:
			return fail(c, w, "filter_state: not supported");
		default:
			return fail(c, w, "no policy specifier");
		}
	}
	return 0;
}

static int mirror_policies(struct tctx *c, Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy **in, size_t n,
			   struct sk_mirror_policy **out, size_t *nout, const char *where)
{
	char w[WHERE_MAX];

	*out = alloc(c, n, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const Envoy__Config__Route__V3__RouteAction__RequestMirrorPolicy *m = in[i];
		struct sk_mirror_policy *o = &(*out)[i];

		at(w, sizeof(w), where, ".request_mirror_policies[%zu]", i);
		*nout = i + 1;
		if ((m->cluster[0] != '\0') == (m->cluster_header[0] != '\0'))
			return fail(c, w, "exactly one of cluster or cluster_header must be set");
		if (m->n_request_headers_mutations > 0)
			return fail(c, w, "request_headers_mutations: not supported");
		o->cluster = dup_opt(c, m->cluster);
		o->cluster_header = m->cluster_header[0] ? dup_lower(c, m->cluster_header) : NULL;
		o->host_rewrite_literal = dup_opt(c, m->host_rewrite_literal);
		o->disable_shadow_host_suffix_append = m->disable_shadow_host_suffix_append;
		o->fraction.numerator = 100; /* no runtime_fraction: every request */
		o->fraction.denominator = 100;
		if (m->runtime_fraction != NULL &&
		    fraction(c, m->runtime_fraction->default_value, &o->fraction, w) < 0)
			return -EINVAL;
	}
	return 0;
}

static void mirrors_free(struct sk_mirror_policy *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].cluster);
		free(m[i].cluster_header);
		free(m[i].host_rewrite_literal);
	}
	free(m);
}

/* ---- route action ----------------------------------------------------------------------- */

static int weighted_clusters(struct tctx *c, const Envoy__Config__Route__V3__WeightedCluster *wc,
			     struct sk_route_forward *f, const char *where)
{
	char w[WHERE_MAX];

	if (wc->n_clusters == 0)
		return fail(c, where, "clusters: must not be empty");
	if (wc->random_value_specifier_case == ENVOY__CONFIG__ROUTE__V3__WEIGHTED_CLUSTER__RANDOM_VALUE_SPECIFIER_USE_HASH_POLICY &&
	    wc->use_hash_policy && wc->use_hash_policy->value)
		return fail(c, where, "use_hash_policy: not supported");
	if (wc->random_value_specifier_case == ENVOY__CONFIG__ROUTE__V3__WEIGHTED_CLUSTER__RANDOM_VALUE_SPECIFIER_HEADER_NAME &&
	    wc->header_name[0])
		f->random_value_header = dup_lower(c, wc->header_name);
	/* runtime_key_prefix: weights are overridable by runtime keys; skiff has no runtime
	 * overrides, so the configured weights are what Envoy would use */
	f->weighted = alloc(c, wc->n_clusters, sizeof(*f->weighted));
	if (f->weighted == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < wc->n_clusters; i++) {
		const Envoy__Config__Route__V3__WeightedCluster__ClusterWeight *cw = wc->clusters[i];
		struct sk_route_weighted_cluster *o = &f->weighted[i];

		at(w, sizeof(w), where, ".clusters[%zu]", i);
		f->n_weighted = i + 1;
		if ((cw->name[0] != '\0') == (cw->cluster_header[0] != '\0'))
			return fail(c, w, cw->name[0] ? "only one of name or cluster_header can be specified"
						      : "at least one of name or cluster_header need to be specified");
		if (cw->metadata_match != NULL)
			return fail(c, w, "metadata_match: not supported (subset load balancing)");
		o->name = dup_opt(c, cw->name);
		o->cluster_header = cw->cluster_header[0] ? dup_lower(c, cw->cluster_header) : NULL;
		o->weight = cw->weight ? cw->weight->value : 0;
		o->host_rewrite_literal = dup_opt(c, cw->host_rewrite_literal);
		if (MUTATIONS(c, cw, &o->mutations, w) ||
		    filter_configs(c, (void *const *)cw->typed_per_filter_config, cw->n_typed_per_filter_config,
				   &o->filter_configs, w) < 0)
			return -EINVAL;
		f->total_weight += o->weight;
		if (f->total_weight > UINT32_MAX)
			return fail(c, where, "the sum of the weights exceeds %u", UINT32_MAX);
	}
	if (f->total_weight == 0)
		return fail(c, where, "the sum of the weights must be greater than 0");
	/* total_weight is deprecated: older Envoy required it to equal the sum, newer ignores it */
	if (wc->total_weight != NULL && wc->total_weight->value != f->total_weight)
		return fail(c, where, "total_weight %u differs from the sum of the weights %llu",
			    wc->total_weight->value, (unsigned long long)f->total_weight);
	return 0;
}

/* Fields of RouteAction skiff refuses: they would change where or how a request goes. */
static int refuse_action_fields(struct tctx *c, const action_pb *a, const char *where)
{
	if (a->metadata_match != NULL)
		return fail(c, where, "metadata_match: not supported (subset load balancing)");
	if (a->path_rewrite_policy != NULL)
		return fail(c, where, "path_rewrite_policy: not supported");
	if (a->path_rewrite && a->path_rewrite[0])
		return fail(c, where, "path_rewrite: not supported");
	if (a->flush_timeout != NULL)
		return fail(c, where, "flush_timeout: not supported");
	if (a->early_data_policy != NULL)
		return fail(c, where, "early_data_policy: not supported");
	if (a->retry_policy_typed_config != NULL)
		return fail(c, where, "retry_policy_typed_config: not supported");
	if (a->n_rate_limits > 0)
		return fail(c, where, "rate_limits: not supported");
	if (a->internal_redirect_policy != NULL ||
	    a->internal_redirect_action == ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__INTERNAL_REDIRECT_ACTION__HANDLE_INTERNAL_REDIRECT)
		return fail(c, where, "internal redirects: not supported");
	if (a->hedge_policy != NULL)
		return fail(c, where, "hedge_policy: not supported");
	return 0;
}

static int route_action(struct tctx *c, const action_pb *a, const vhost_pb *vh, const route_config_pb *rc,
			struct sk_route_forward *f, const char *where)
{
	char w[WHERE_MAX];
	int nrewrites = 0;

	if (refuse_action_fields(c, a, where) < 0)
		return -EINVAL;
	switch (a->cluster_specifier_case) {
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER:
		if (a->cluster[0] == '\0')
			return fail(c, where, "cluster: must not be empty");
		f->cluster_kind = SK_ROUTE_CLUSTER_NAME;
		f->cluster = dup(c, a->cluster);
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER_HEADER:
		if (!valid_header_name(a->cluster_header))
			return fail(c, where, "cluster_header: not a valid header name");
		f->cluster_kind = SK_ROUTE_CLUSTER_HEADER;
		f->cluster_header = dup_lower(c, a->cluster_header);
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_WEIGHTED_CLUSTERS:
		f->cluster_kind = SK_ROUTE_CLUSTER_WEIGHTED;
		at(w, sizeof(w), where, ".weighted_clusters");
		if (weighted_clusters(c, a->weighted_clusters, f, w) < 0)
			return -EINVAL;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_CLUSTER_SPECIFIER_PLUGIN:
		return fail(c, where, "cluster_specifier_plugin: not supported");
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_SPECIFIER_INLINE_CLUSTER_SPECIFIER_PLUGIN:
		return fail(c, where, "inline_cluster_specifier_plugin: not supported");
	default:
		return fail(c, where, "no cluster specifier (cluster, cluster_header or weighted_clusters)");
	}
	switch (a->cluster_not_found_response_code) {
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_NOT_FOUND_RESPONSE_CODE__NOT_FOUND:
		f->cluster_not_found_code = 404;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__CLUSTER_NOT_FOUND_RESPONSE_CODE__INTERNAL_SERVER_ERROR:
		f->cluster_not_found_code = 500;
		break;
	default:
		f->cluster_not_found_code = 503;
	}
	if (a->prefix_rewrite && a->prefix_rewrite[0]) {
		f->prefix_rewrite = dup(c, a->prefix_rewrite);
		nrewrites++;
	}
	if (a->regex_rewrite != NULL) {
		at(w, sizeof(w), where, ".regex_rewrite");
		f->regex_rewrite = regex_new(c, a->regex_rewrite->pattern, false, a->regex_rewrite->substitution, w);
		if (f->regex_rewrite == NULL)
			return -EINVAL;
		nrewrites++;
	}
	if (nrewrites > 1)
		return fail(c, where, "specify only one of prefix_rewrite, regex_rewrite or path_rewrite_policy");
	switch (a->host_rewrite_specifier_case) {
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL:
		f->host_rewrite_literal = dup_opt(c, a->host_rewrite_literal);
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_AUTO_HOST_REWRITE:
		f->auto_host_rewrite = a->auto_host_rewrite && a->auto_host_rewrite->value;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_HEADER:
		f->host_rewrite_header = dup_opt(c, a->host_rewrite_header);
		for (char *p = f->host_rewrite_header; p && *p; p++)
			*p = (char)tolower((unsigned char)*p);
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_PATH_REGEX:
		return fail(c, where, "host_rewrite_path_regex: not supported");
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE:
		return fail(c, where, "host_rewrite: not supported");
	default:
		break;
	}
	f->append_x_forwarded_host = a->append_x_forwarded_host;
	if (duration(c, a->timeout, DEFAULT_ROUTE_TIMEOUT, &f->timeout, where, "timeout") < 0 ||
	    duration(c, a->idle_timeout, SK_ROUTE_UNSET, &f->idle_timeout, where, "idle_timeout") < 0 ||
	    duration(c, a->max_grpc_timeout, SK_ROUTE_UNSET, &f->max_grpc_timeout, where, "max_grpc_timeout") < 0 ||
	    duration(c, a->grpc_timeout_offset, SK_ROUTE_UNSET, &f->grpc_timeout_offset, where,
		     "grpc_timeout_offset") < 0)
		return -EINVAL;
	f->max_stream_duration = f->grpc_timeout_header_max = f->grpc_timeout_header_offset = SK_ROUTE_UNSET;
	if (a->max_stream_duration != NULL) {
		const Envoy__Config__Route__V3__RouteAction__MaxStreamDuration *m = a->max_stream_duration;

		at(w, sizeof(w), where, ".max_stream_duration");
		if (duration(c, m->max_stream_duration, SK_ROUTE_UNSET, &f->max_stream_duration, w,
			     "max_stream_duration") < 0 ||
		    duration(c, m->grpc_timeout_header_max, SK_ROUTE_UNSET, &f->grpc_timeout_header_max, w,
			     "grpc_timeout_header_max") < 0 ||
		    duration(c, m->grpc_timeout_header_offset, SK_ROUTE_UNSET, &f->grpc_timeout_header_offset, w,
			     "grpc_timeout_header_offset") < 0)
			return -EINVAL;
	}
	/* the route's retry policy wins, else the virtual host's (Envoy's buildRetryPolicy) */
	if (a->retry_policy != NULL) {
		at(w, sizeof(w), where, ".retry_policy");
		f->has_retry = true;
		if (retry_policy(c, a->retry_policy, &f->retry, w) < 0)
			return -EINVAL;
	} else if (vh->retry_policy != NULL) {
		f->has_retry = true;
		if (retry_policy(c, vh->retry_policy, &f->retry, "retry_policy (of the virtual host)") < 0)
			return -EINVAL;
	}
	if (hash_policies(c, a, f, where) < 0)
		return -EINVAL;
	/* mirrors: the route's, else the virtual host's, else the route config's */
	if (a->n_request_mirror_policies > 0) {
		if (mirror_policies(c, a->request_mirror_policies, a->n_request_mirror_policies, &f->mirrors,
				    &f->n_mirrors, where) < 0)
			return -EINVAL;
	} else if (vh->n_request_mirror_policies > 0) {
		if (mirror_policies(c, vh->request_mirror_policies, vh->n_request_mirror_policies, &f->mirrors,
				    &f->n_mirrors, "virtual host") < 0)
			return -EINVAL;
	} else if (mirror_policies(c, rc->request_mirror_policies, rc->n_request_mirror_policies, &f->mirrors,
				   &f->n_mirrors, "route config") < 0) {
		return -EINVAL;
	}
	f->priority_high = a->priority == ENVOY__CONFIG__CORE__V3__ROUTING_PRIORITY__HIGH;
	f->upgrades = alloc(c, a->n_upgrade_configs, sizeof(*f->upgrades));
	if (f->upgrades == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < a->n_upgrade_configs; i++) {
		const Envoy__Config__Route__V3__RouteAction__UpgradeConfig *u = a->upgrade_configs[i];

		at(w, sizeof(w), where, ".upgrade_configs[%zu]", i);
		if (u->connect_config != NULL)
			return fail(c, w, "connect_config: not supported");
		if (u->upgrade_type[0] == '\0')
			return fail(c, w, "upgrade_type: must not be empty");
		for (size_t k = 0; k < i; k++)
			if (strcasecmp(f->upgrades[k].type, u->upgrade_type) == 0)
				return fail(c, w, "duplicate upgrade %s", u->upgrade_type);
		f->upgrades[i].type = dup_lower(c, u->upgrade_type);
		f->upgrades[i].enabled = u->enabled == NULL || u->enabled->value;
		f->n_upgrades = i + 1;
	}
	return 0;
}

static void forward_free(struct sk_route_forward *f)
{
	free(f->cluster);
	free(f->cluster_header);
	for (size_t i = 0; i < f->n_weighted; i++) {
		free(f->weighted[i].name);
		free(f->weighted[i].cluster_header);
		free(f->weighted[i].host_rewrite_literal);
		mutations_free(&f->weighted[i].mutations);
		filter_configs_free(&f->weighted[i].filter_configs);
	}
	free(f->weighted);
	free(f->random_value_header);
	free(f->prefix_rewrite);
	regex_free(f->regex_rewrite);
	free(f->host_rewrite_literal);
	free(f->host_rewrite_header);
	if (f->has_retry)
		retry_policy_free(&f->retry);
	for (size_t i = 0; i < f->n_hash; i++) {
		free(f->hash[i].name);
		free(f->hash[i].cookie_path);
	}
	free(f->hash);
	mirrors_free(f->mirrors, f->n_mirrors);
	for (size_t i = 0; i < f->n_upgrades; i++)
		free(f->upgrades[i].type);
	free(f->upgrades);
}

static int redirect_action(struct tctx *c, const Envoy__Config__Route__V3__RedirectAction *r,
			   struct sk_route_redirect *o, const char *where)
{
	static const uint16_t codes[] = {301, 302, 303, 307, 308};
	char w[WHERE_MAX];

	if (r->scheme_rewrite_specifier_case == ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_HTTPS_REDIRECT) {
		if (r->https_redirect)
			o->scheme = dup(c, "https");
	} else if (r->scheme_rewrite_specifier_case ==
		   ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__SCHEME_REWRITE_SPECIFIER_SCHEME_REDIRECT) {
		o->scheme = dup_opt(c, r->scheme_redirect);
	}
	o->host = dup_opt(c, r->host_redirect);
	if (r->port_redirect > 65535)
		return fail(c, where, "port_redirect: out of range");
	o->port = r->port_redirect;
	switch (r->path_rewrite_specifier_case) {
	case ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PATH_REDIRECT:
		o->path = dup_opt(c, r->path_redirect);
		break;
	case ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_PREFIX_REWRITE:
		o->prefix_rewrite = dup_opt(c, r->prefix_rewrite);
		break;
	case ENVOY__CONFIG__ROUTE__V3__REDIRECT_ACTION__PATH_REWRITE_SPECIFIER_REGEX_REWRITE:
		at(w, sizeof(w), where, ".regex_rewrite");
		o->regex_rewrite = regex_new(c, r->regex_rewrite->pattern, false, r->regex_rewrite->substitution, w);
		if (o->regex_rewrite == NULL)
			return -EINVAL;
		break;
	default:
		break;
	}
	if ((unsigned)r->response_code > 4)
		return fail(c, where, "response_code: unknown value %d", (int)r->response_code);
	o->code = codes[r->response_code];
	o->strip_query = r->strip_query;
	return 0;
}

static int direct_response(struct tctx *c, const Envoy__Config__Route__V3__DirectResponseAction *d,
			   struct sk_route_direct *o, const char *where)
{
	const char *body = NULL;
	size_t len = 0;

	if (d->status < 200 || d->status >= 600)
		return fail(c, where, "status %u: must be in [200, 600)", d->status);
	if (d->body_format != NULL)
		return fail(c, where, "body_format: not supported");
	o->status = (uint16_t)d->status;
	if (d->body == NULL)
		return 0;
	switch (d->body->specifier_case) {
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING:
		body = d->body->inline_string;
		len = strlen(body);
		break;
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES:
		body = (const char *)d->body->inline_bytes.data;
		len = d->body->inline_bytes.len;
		break;
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_FILENAME:
		return fail(c, where, "body.filename: not supported (inline the body)");
	case ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_ENVIRONMENT_VARIABLE:
		return fail(c, where, "body.environment_variable: not supported (inline the body)");
	default:
		return 0;
	}
	if (len > c->max_body)
		return fail(c, where, "body size is %zu bytes; maximum is %u", len, c->max_body);
	o->body = dup_n(c, body ? body : "", len);
	o->body_len = len;
	return 0;
}

/* ---- routes, virtual hosts -------------------------------------------------------------- */

static int route_match(struct tctx *c, const Envoy__Config__Route__V3__RouteMatch *m, struct sk_route *r,
		       const char *where)
{
	char w[WHERE_MAX];
	const char *path = NULL;

	switch (m->path_specifier_case) {
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PREFIX:
		r->path_kind = SK_PATH_PREFIX;
		path = m->prefix;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH:
		r->path_kind = SK_PATH_EXACT;
		path = m->path;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH_SEPARATED_PREFIX:
		r->path_kind = SK_PATH_SEPARATED_PREFIX;
		path = m->path_separated_prefix;
		/* Envoy's validation: starts with '/', no trailing '/', no '?' or '#' */
		if (path[0] != '/' || (strlen(path) > 1 && path[strlen(path) - 1] == '/') || strpbrk(path, "?#"))
			return fail(c, where, "path_separated_prefix '%s': must start with '/', not end with "
				    "'/' and hold no '?' or '#'", path);
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_SAFE_REGEX:
		r->path_kind = SK_PATH_REGEX;
		at(w, sizeof(w), where, ".safe_regex");
		r->path_re = regex_new(c, m->safe_regex, true, NULL, w);
		if (r->path_re == NULL)
			return -EINVAL;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_CONNECT_MATCHER:
		r->path_kind = SK_PATH_CONNECT;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE_MATCH__PATH_SPECIFIER_PATH_MATCH_POLICY:
		return fail(c, where, "path_match_policy: not supported");
	default:
		return fail(c, where, "no path specifier (prefix, path, safe_regex, path_separated_prefix)");
	}
	if (path != NULL) {
		r->path = dup(c, path);
		r->path_len = strlen(path);
	}
	r->case_sensitive = m->case_sensitive == NULL || m->case_sensitive->value;
	if (m->runtime_fraction != NULL) {
		/* the runtime key cannot be overridden in skiff: the default is the value */
		at(w, sizeof(w), where, ".runtime_fraction");
		r->has_runtime_fraction = true;
		if (fraction(c, m->runtime_fraction->default_value, &r->runtime_fraction, w) < 0)
			return -EINVAL;
	}
	if (m->n_cookies > 0)
		return fail(c, where, "cookies: not supported");
	if (m->tls_context != NULL)
		return fail(c, where, "tls_context: not supported");
	if (m->n_dynamic_metadata > 0)
		return fail(c, where, "dynamic_metadata: not supported");
	if (m->n_filter_state > 0)
		return fail(c, where, "filter_state: not supported");
	r->grpc = m->grpc != NULL;
	if (header_matchers(c, m->headers, m->n_headers, &r->headers, &r->n_headers, where, "headers") < 0)
		return -EINVAL;
	r->query = alloc(c, m->n_query_parameters, sizeof(*r->query));
	if (r->query == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_query_parameters; i++) {
		const Envoy__Config__Route__V3__QueryParameterMatcher *q = m->query_parameters[i];
		struct sk_query_matcher *o = &r->query[i];

		at(w, sizeof(w), where, ".query_parameters[%zu]", i);
		r->n_query = i + 1;
		if (q->name[0] == '\0' || strlen(q->name) > 1024)
			return fail(c, w, "name: must be 1 to 1024 bytes");
		o->name = dup(c, q->name);
		o->name_len = strlen(q->name);
		if (q->query_parameter_match_specifier_case ==
		    ENVOY__CONFIG__ROUTE__V3__QUERY_PARAMETER_MATCHER__QUERY_PARAMETER_MATCH_SPECIFIER_STRING_MATCH) {
			snprintf(w + strlen(w), sizeof(w) - strlen(w), ".string_match");
			if (string_matcher(c, q->string_match, &o->str, w) < 0)
				return -EINVAL;
		} else {
			o->present_only = true; /* present_match (true or false) or nothing: presence */
		}
	}
	return 0;
}

static int translate_route(struct tctx *c, const route_pb *p, const vhost_pb *vh, const route_config_pb *rc,
			   struct sk_route *r, const char *where)
{
	char w[WHERE_MAX];
	const char *istio;

	r->name = dup(c, p->name);
	if (p->match == NULL)
		return fail(c, where, "match: required");
	at(w, sizeof(w), where, ".match");
	if (route_match(c, p->match, r, w) < 0)
		return -EINVAL;
	switch (p->action_case) {
	case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE:
		r->action = SK_ROUTE_FORWARD;
		at(w, sizeof(w), where, ".route");
		if (route_action(c, p->route, vh, rc, &r->fwd, w) < 0)
			return -EINVAL;
		if (r->fwd.prefix_rewrite && r->path_kind == SK_PATH_CONNECT)
			return fail(c, w, "prefix_rewrite: cannot be used with connect_matcher");
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_REDIRECT:
		r->action = SK_ROUTE_REDIRECT;
		at(w, sizeof(w), where, ".redirect");
		if (redirect_action(c, p->redirect, &r->redirect, w) < 0)
			return -EINVAL;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_DIRECT_RESPONSE:
		r->action = SK_ROUTE_DIRECT;
		at(w, sizeof(w), where, ".direct_response");
		if (direct_response(c, p->direct_response, &r->direct, w) < 0)
			return -EINVAL;
		break;
	case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_FILTER_ACTION:
		return fail(c, where, "filter_action: not supported");
	case ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_NON_FORWARDING_ACTION:
		return fail(c, where, "non_forwarding_action: not supported");
	default:
		return fail(c, where, "no action (route, redirect or direct_response)");
	}
	if (MUTATIONS(c, p, &r->mutations, where) ||
	    filter_configs(c, (void *const *)p->typed_per_filter_config, p->n_typed_per_filter_config,
			   &r->filter_configs, where) < 0 ||
	    cors_typed(c, &r->filter_configs, &r->cors, where) < 0)
		return -EINVAL;
	if (p->action_case == ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE &&
	    cors_legacy(c, p->route->cors, &r->cors_legacy, w) < 0)
		return -EINVAL;
	if (p->decorator != NULL) {
		r->decorator_operation = dup(c, p->decorator->operation);
		r->decorator_propagate = p->decorator->propagate == NULL || p->decorator->propagate->value;
	}
	istio = metadata_string(p->metadata, "istio", "config");
	r->istio_config = istio ? dup(c, istio) : NULL;
	r->stat_prefix = dup_opt(c, p->stat_prefix);
	r->per_request_buffer_limit = p->per_request_buffer_limit_bytes ? p->per_request_buffer_limit_bytes->value
		: vh->per_request_buffer_limit_bytes ? vh->per_request_buffer_limit_bytes->value : UINT32_MAX;
	return 0;
}

static void route_free(struct sk_route *r)
{
	free(r->name);
	free(r->path);
	regex_free(r->path_re);
	header_matchers_free(r->headers, r->n_headers);
	for (size_t i = 0; i < r->n_query; i++) {
		free(r->query[i].name);
		string_matcher_free(&r->query[i].str);
	}
	free(r->query);
	if (r->action == SK_ROUTE_FORWARD)
		forward_free(&r->fwd);
	free(r->redirect.scheme);
	free(r->redirect.host);
	free(r->redirect.path);
	free(r->redirect.prefix_rewrite);
	regex_free(r->redirect.regex_rewrite);
	free(r->direct.body);
	mutations_free(&r->mutations);
	filter_configs_free(&r->filter_configs);
	cors_free(r->cors);
	cors_free(r->cors_legacy);
	free(r->decorator_operation);
	free(r->istio_config);
	free(r->stat_prefix);
}

static int translate_vhost(struct tctx *c, const vhost_pb *p, const route_config_pb *rc, struct sk_virtual_host *v,
			   const char *where)
{
	char w[WHERE_MAX];

	if (p->name == NULL || p->name[0] == '\0')
		return fail(c, where, "name: must not be empty");
	v->name = dup(c, p->name);
	if (p->n_domains == 0)
		return fail(c, where, "domains: must not be empty");
	if (p->matcher != NULL)
		return fail(c, where, "matcher: not supported (use routes)");
	if (p->require_tls != ENVOY__CONFIG__ROUTE__V3__VIRTUAL_HOST__TLS_REQUIREMENT_TYPE__NONE)
		return fail(c, where, "require_tls: not supported");
	if (p->n_rate_limits > 0)
		return fail(c, where, "rate_limits: not supported");
	if (p->retry_policy_typed_config != NULL)
		return fail(c, where, "retry_policy_typed_config: not supported");
	if (p->hedge_policy != NULL)
		return fail(c, where, "hedge_policy: not supported");
	v->domains = alloc(c, p->n_domains, sizeof(*v->domains));
	if (v->domains == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_domains; i++) {
		v->domains[i] = dup_lower(c, p->domains[i]);
		v->n_domains = i + 1;
	}
	if (MUTATIONS(c, p, &v->mutations, where) ||
	    filter_configs(c, (void *const *)p->typed_per_filter_config, p->n_typed_per_filter_config,
			   &v->filter_configs, where) < 0 ||
	    cors_typed(c, &v->filter_configs, &v->cors, where) < 0 || cors_legacy(c, p->cors, &v->cors_legacy, where) < 0)
		return -EINVAL;
	v->include_request_attempt_count = p->include_request_attempt_count;
	v->include_attempt_count_in_response = p->include_attempt_count_in_response;
	v->include_is_timeout_retry_header = p->include_is_timeout_retry_header;
	v->per_request_buffer_limit = p->per_request_buffer_limit_bytes ? p->per_request_buffer_limit_bytes->value
									: UINT32_MAX;
	/* the virtual host's own retry and mirror policies are checked once here, so that a bad
	 * one is reported even when every route has its own */
	if (p->retry_policy != NULL) {
		struct sk_retry_policy tmp = {0};
		int rc2;

		at(w, sizeof(w), where, ".retry_policy");
		rc2 = retry_policy(c, p->retry_policy, &tmp, w);
		retry_policy_free(&tmp);
		if (rc2 < 0)
			return -EINVAL;
	}
	if (p->n_request_mirror_policies > 0) {
		struct sk_mirror_policy *tmp = NULL;
		size_t n = 0;
		int rc2 = mirror_policies(c, p->request_mirror_policies, p->n_request_mirror_policies, &tmp, &n, where);

		mirrors_free(tmp, n);
		if (rc2 < 0)
			return -EINVAL;
	}
	v->routes = alloc(c, p->n_routes, sizeof(*v->routes));
	if (v->routes == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_routes; i++) {
		at(w, sizeof(w), where, ".routes[%zu]", i);
		v->n_routes = i + 1;
		v->routes[i].vhost = v;
		if (translate_route(c, p->routes[i], p, rc, &v->routes[i], w) < 0)
			return -EINVAL;
	}
	return 0;
}

static void vhost_free(struct sk_virtual_host *v)
{
	free(v->name);
	for (size_t i = 0; i < v->n_domains; i++)
		free(v->domains[i]);
	free(v->domains);
	for (size_t i = 0; i < v->n_routes; i++)
		route_free(&v->routes[i]);
	free(v->routes);
	mutations_free(&v->mutations);
	filter_configs_free(&v->filter_configs);
	cors_free(v->cors);
	cors_free(v->cors_legacy);
}

/* ---- the domain index ------------------------------------------------------------------- */

static int entry_cmp_text(const struct sk_domain_entry *a, const struct sk_domain_entry *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int d = memcmp(a->text, b->text, n);

	return d ? d : (a->len > b->len) - (a->len < b->len);
}

static int exact_cmp(const void *a, const void *b)
{
	return entry_cmp_text(a, b);
}

/* Longest first (Envoy scans wildcards by decreasing length), then by text. */
static int wildcard_cmp(const void *pa, const void *pb)
{
	const struct sk_domain_entry *a = pa, *b = pb;

	if (a->len != b->len)
		return a->len > b->len ? -1 : 1;
	return entry_cmp_text(a, b);
}

static int build_domain_index(struct tctx *c, struct sk_route_config *rc)
{
	size_t total = 0;

	for (size_t i = 0; i < rc->n_vhosts; i++)
		total += rc->vhosts[i].n_domains;
	rc->exact = alloc(c, total, sizeof(*rc->exact));
	rc->suffix = alloc(c, total, sizeof(*rc->suffix));
	rc->prefix = alloc(c, total, sizeof(*rc->prefix));
	if (c->oom)
		return -ENOMEM;
	for (size_t i = 0; i < rc->n_vhosts; i++) {
		const struct sk_virtual_host *v = &rc->vhosts[i];

		for (size_t k = 0; k < v->n_domains; k++) {
			const char *d = v->domains[k];
			size_t len = strlen(d);

			if (strcmp(d, "*") == 0) {
				if (rc->default_vhost != NULL)
					return fail(c, "", "only a single wildcard domain is permitted "
						    "(virtual hosts '%s' and '%s')", rc->default_vhost->name, v->name);
				rc->default_vhost = v;
			} else if (len > 0 && d[0] == '*') {
				rc->suffix[rc->n_suffix++] = (struct sk_domain_entry){d + 1, len - 1, v};
			} else if (len > 0 && d[len - 1] == '*') {
				rc->prefix[rc->n_prefix++] = (struct sk_domain_entry){d, len - 1, v};
			} else {
				rc->exact[rc->n_exact++] = (struct sk_domain_entry){d, len, v};
			}
		}
	}
	qsort(rc->exact, rc->n_exact, sizeof(*rc->exact), exact_cmp);
	qsort(rc->suffix, rc->n_suffix, sizeof(*rc->suffix), wildcard_cmp);
	qsort(rc->prefix, rc->n_prefix, sizeof(*rc->prefix), wildcard_cmp);
	for (int kind = 0; kind < 3; kind++) {
		const struct sk_domain_entry *e = kind == 0 ? rc->exact : kind == 1 ? rc->suffix : rc->prefix;
		size_t n = kind == 0 ? rc->n_exact : kind == 1 ? rc->n_suffix : rc->n_prefix;

		for (size_t i = 1; i < n; i++)
			if (entry_cmp_text(&e[i - 1], &e[i]) == 0)
				return fail(c, "", "only unique values for domains are permitted: '%s%.*s%s' is in "
					    "virtual hosts '%s' and '%s'", kind == 1 ? "*" : "", (int)e[i].len,
					    e[i].text, kind == 2 ? "*" : "", e[i - 1].vhost->name, e[i].vhost->name);
	}
	return 0;
}

/* ---- the route configuration ------------------------------------------------------------ */

static int translate_config(struct tctx *c, const route_config_pb *p, struct sk_route_config *rc)
{
	char w[WHERE_MAX];

	if (p->vhds != NULL)
		return fail(c, "vhds", "not supported");
	if (p->n_cluster_specifier_plugins > 0)
		return fail(c, "cluster_specifier_plugins", "not supported");
	rc->max_direct_response_body_size = c->max_body =
		p->max_direct_response_body_size_bytes ? p->max_direct_response_body_size_bytes->value
						       : DEFAULT_MAX_DIRECT_BODY;
	if (MUTATIONS(c, p, &rc->mutations, "") ||
	    filter_configs(c, (void *const *)p->typed_per_filter_config, p->n_typed_per_filter_config,
			   &rc->filter_configs, "") < 0 ||
	    cors_typed(c, &rc->filter_configs, &rc->cors, "") < 0)
		return -EINVAL;
	rc->internal_only_headers = alloc(c, p->n_internal_only_headers, sizeof(char *));
	if (rc->internal_only_headers == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_internal_only_headers; i++) {
		rc->internal_only_headers[i] = dup_lower(c, p->internal_only_headers[i]);
		rc->n_internal_only_headers = i + 1;
	}
	rc->most_specific_header_mutations_wins = p->most_specific_header_mutations_wins;
	rc->validate_clusters = p->validate_clusters ? p->validate_clusters->value : -1;
	rc->ignore_port_in_host_matching = p->ignore_port_in_host_matching;
	rc->ignore_path_parameters = p->ignore_path_parameters_in_path_matching;
	if (p->vhost_header && p->vhost_header[0]) {
		if (!valid_header_name(p->vhost_header) && p->vhost_header[0] != ':')
			return fail(c, "vhost_header", "'%s': not a valid header name", p->vhost_header);
		rc->vhost_header = dup_lower(c, p->vhost_header);
	}
	if (p->n_request_mirror_policies > 0) { /* checked once; routes copy them */
		struct sk_mirror_policy *tmp = NULL;
		size_t n = 0;
		int rc2 = mirror_policies(c, p->request_mirror_policies, p->n_request_mirror_policies, &tmp, &n, "");

		mirrors_free(tmp, n);
		if (rc2 < 0)
			return -EINVAL;
	}
	rc->vhosts = alloc(c, p->n_virtual_hosts, sizeof(*rc->vhosts));
	if (rc->vhosts == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_virtual_hosts; i++) {
		snprintf(w, sizeof(w), "virtual_hosts[%zu]", i);
		rc->n_vhosts = i + 1;
		rc->vhosts[i].config = rc;
		if (translate_vhost(c, p->virtual_hosts[i], p, &rc->vhosts[i], w) < 0)
			return -EINVAL;
		if (c->oom)
			return -ENOMEM;
	}
	return build_domain_index(c, rc);
}

struct sk_route_config *sk_route_config_new(const route_config_pb *p, char *err, size_t errlen)
{
	struct tctx c = {.err = err, .errlen = errlen, .rc_name = p && p->name ? p->name : ""};
	struct sk_route_config *rc = calloc(1, sizeof(*rc));

	if (err && errlen)
		err[0] = '\0';
	if (rc == NULL || p == NULL) {
		snprintf(err, errlen, "%s", rc ? "route config: missing" : "out of memory");
		free(rc);
		return NULL;
	}
	rc->name = dup(&c, p->name);
	if (translate_config(&c, p, rc) < 0 || c.oom) {
		if (c.oom)
			snprintf(err, errlen, "route config '%s': out of memory", c.rc_name);
		sk_route_config_free(rc);
		return NULL;
	}
	return rc;
}

void sk_route_config_free(struct sk_route_config *rc)
{
	if (rc == NULL)
		return;
	for (size_t i = 0; i < rc->n_vhosts; i++)
		vhost_free(&rc->vhosts[i]);
	free(rc->vhosts);
	mutations_free(&rc->mutations);
	filter_configs_free(&rc->filter_configs);
	cors_free(rc->cors);
	for (size_t i = 0; i < rc->n_internal_only_headers; i++)
		free(rc->internal_only_headers[i]);
	free(rc->internal_only_headers);
	free(rc->vhost_header);
	free(rc->exact);
	free(rc->suffix);
	free(rc->prefix);
	free(rc->name);
	free(rc);
}
