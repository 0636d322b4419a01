/* cors: see cors.h.
 *
 * Each policy field comes from the most specific policy that sets it (allow origins, methods,
 * headers, expose headers, max age, credentials, private network access, forwarding of
 * preflights that do not match); filter_enabled and shadow_enabled are the most specific
 * policy's. A preflight is OPTIONS with a non-empty Origin and Access-Control-Request-Method;
 * one whose origin is not allowed goes upstream unless forward_not_matching_preflights is
 * false (then skiff answers 200 without access-control-allow-origin). */
#include "proxy/http/cors.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

size_t sk_cors_policies(const struct sk_route *r, const struct sk_cors_policy **out)
{
	const struct sk_cors_policy *typed[SK_CORS_MAX_POLICIES] = {
		r->cors, r->vhost->cors, r->vhost->config ? r->vhost->config->cors : NULL};
	size_t n = 0;

	for (size_t i = 0; i < SK_CORS_MAX_POLICIES; i++) {
		if (typed[i] == NULL)
			continue;
		if (typed[i]->disabled) {
			if (n == 0)
				return 0; /* the most specific level that names the filter turns it off */
			continue;
		}
		out[n++] = typed[i];
	}
	if (n > 0)
		return n;
	/* no typed policy at any level: the deprecated cors fields, the route's then the host's */
	if (r->cors_legacy != NULL)
		out[n++] = r->cors_legacy;
	if (r->vhost->cors_legacy != NULL)
		out[n++] = r->vhost->cors_legacy;
	return n;
}

static bool enabled(const struct sk_cors_policy *p, uint64_t rnd)
{
	return !p->has_filter_enabled || sk_fraction_hit(p->filter_enabled, rnd);
}

static bool shadow(const struct sk_cors_policy *p, uint64_t rnd)
{
	return p->has_shadow_enabled && sk_fraction_hit(p->shadow_enabled, rnd);
}

bool sk_cors_origin_allowed(const struct sk_cors *cs, struct sk_slice origin)
{
	for (size_t i = 0; i < cs->n; i++) {
		const struct sk_cors_policy *p = cs->p[i];

		if (p->n_origins == 0)
			continue;
		for (size_t k = 0; k < p->n_origins; k++)
			if (sk_string_matcher_match(&p->origins[k], "*", 1) ||
			    sk_string_matcher_match(&p->origins[k], origin.ptr, origin.len))
				return true;
		return false; /* the most specific list decides */
	}
	return false;
}

/* The most specific policy's value of a field: NULL / -1 mean "not set here". */
static const char *first_str(const struct sk_cors *cs, size_t off)
{
	for (size_t i = 0; i < cs->n; i++) {
		const char *v = *(char *const *)((const char *)cs->p[i] + off);

		if (v != NULL)
			return v;
	}
	return NULL;
}

static int first_bool(const struct sk_cors *cs, size_t off, int dflt)
{
	for (size_t i = 0; i < cs->n; i++) {
		int v = *(const int *)((const char *)cs->p[i] + off);

		if (v >= 0)
			return v;
	}
	return dflt;
}

#define STR(cs, field) first_str(cs, offsetof(struct sk_cors_policy, field))
#define BOOL(cs, field, dflt) first_bool(cs, offsetof(struct sk_cors_policy, field), dflt)

void sk_cors_evaluate(struct sk_cors *cs, const struct sk_route *r, struct sk_slice origin,
		      struct sk_slice method, struct sk_slice acrm, struct sk_slice acrh, struct sk_slice pna,
		      uint64_t rnd_enabled, uint64_t rnd_shadow)
{
	bool on, shadow_only;

	memset(cs, 0, sizeof(*cs));
	cs->origin = origin;
	cs->method = method;
	cs->acrm = acrm;
	cs->acrh = acrh;
	cs->pna = pna;
	if (r == NULL || (cs->n = sk_cors_policies(r, cs->p)) == 0)
		return;
	on = enabled(cs->p[0], rnd_enabled);
	shadow_only = !on && shadow(cs->p[0], rnd_shadow);
	if ((!on && !shadow_only) || origin.ptr == NULL || origin.len == 0)
		return;
	cs->checked = true;
	cs->allowed = sk_cors_origin_allowed(cs, origin);
	if (shadow_only)
		return; /* counted, never enforced */
	cs->cors_request = true;
	if (method.len != 7 || memcmp(method.ptr, "OPTIONS", 7) != 0 || acrm.ptr == NULL || acrm.len == 0)
		return;
	if (!cs->allowed && BOOL(cs, forward_not_matching_preflights, 1))
		return; /* Envoy's default: such a preflight goes upstream */
	cs->preflight = true;
}

static void emit_str(void (*emit)(void *, const char *, const char *, size_t), void *ctx, const char *name,
		     const char *v)
{
	emit(ctx, name, v, strlen(v));
}

void sk_cors_headers(const struct sk_cors *cs, bool preflight,
		     void (*emit)(void *ctx, const char *name, const char *value, size_t len), void *ctx)
{
	const char *v;

	if (!cs->cors_request)
		return;
	if (preflight) {
		if (cs->allowed)
			emit(ctx, "access-control-allow-origin", cs->origin.ptr, cs->origin.len);
		if (BOOL(cs, allow_credentials, 0))
			emit_str(emit, ctx, "access-control-allow-credentials", "true");
		if ((v = STR(cs, allow_methods)) != NULL) {
			if (strcmp(v, "*") == 0)
				emit(ctx, "access-control-allow-methods", cs->acrm.ptr ? cs->acrm.ptr : "", cs->acrm.len);
			else
				emit_str(emit, ctx, "access-control-allow-methods", v);
		}
		if ((v = STR(cs, allow_headers)) != NULL) {
			if (strcmp(v, "*") == 0)
				emit(ctx, "access-control-allow-headers", cs->acrh.ptr ? cs->acrh.ptr : "", cs->acrh.len);
			else
				emit_str(emit, ctx, "access-control-allow-headers", v);
		}
		if ((v = STR(cs, max_age)) != NULL)
			emit_str(emit, ctx, "access-control-max-age", v);
		if (BOOL(cs, allow_private_network_access, 0) && cs->pna.len == 4 && memcmp(cs->pna.ptr, "true", 4) == 0)
			emit_str(emit, ctx, "access-control-allow-private-network", "true");
		/* the answer passes through the filter's response path too: expose-headers when the
		 * origin is allowed */
		if (cs->allowed && (v = STR(cs, expose_headers)) != NULL)
			emit_str(emit, ctx, "access-control-expose-headers", v);
		return;
	}
	if (!cs->allowed)
		return;
	emit(ctx, "access-control-allow-origin", cs->origin.ptr, cs->origin.len);
	if (BOOL(cs, allow_credentials, 0))
		emit_str(emit, ctx, "access-control-allow-credentials", "true");
	if ((v = STR(cs, expose_headers)) != NULL)
		emit_str(emit, ctx, "access-control-expose-headers", v);
}

bool sk_cors_overrides(const struct sk_cors *cs, const char *name, size_t len)
{
#define NAMED(s) (len == sizeof(s) - 1 && strncasecmp(name, s, len) == 0)
	if (!cs->cors_request || !cs->allowed)
		return false;
	if (NAMED("access-control-allow-origin"))
		return true;
	if (NAMED("access-control-allow-credentials"))
		return BOOL(cs, allow_credentials, 0) == 1;
	if (NAMED("access-control-expose-headers"))
		return STR(cs, expose_headers) != NULL;
	return false;
#undef NAMED
}
