/* Admin output of the stats store in Envoy's three formats: /stats (text), /stats?format=json
 * and /stats/prometheus. Main thread only; the result is one malloc'd string. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/stats/stats_internal.h"

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->oom || b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		buf_add(b, tmp, (size_t)n);
		return;
	}
	buf_reserve(b, (size_t)n);
	if (b->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Shortest text that reads back as the same double, in fixed notation where %g allows
 * (what fmt's "{}" prints for the magnitudes histograms hold). */
static void fmt_double(char *out, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(out, len, "nan");
		return;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, len, "%.0f", v);
		return;
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(out, len, "%.*g", p, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static void buf_json_string(struct buf *b, const char *s)
{
	buf_add(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': buf_add(b, "\\\"", 2); break;
		case '\\': buf_add(b, "\\\\", 2); break;
		case '\n': buf_add(b, "\\n", 2); break;
		case '\r': buf_add(b, "\\r", 2); break;
		case '\t': buf_add(b, "\\t", 2); break;
		default:
			if (*p < 0x20)
				buf_printf(b, "\\u%04x", *p);
			else
				buf_add(b, (const char *)p, 1);
		}
	}
	buf_add(b, "\"", 1);
}

/* ---- selection ---- */

struct selection {
	bool counters, gauges, histograms;
	bool usedonly;
	pcre2_code *filter;
};

static bool shown(struct sk_stats_store *store, const struct selection *sel, const struct sk__stat *st)
{
	switch (st->type) {
	case SK_STAT_COUNTER:
		if (!sel->counters)
			return false;
		break;
	case SK_STAT_GAUGE:
		if (!sel->gauges)
			return false;
		break;
	case SK_STAT_HISTOGRAM:
		if (!sel->histograms)
			return false;
		break;
	}
	if (sel->usedonly && !sk__slot_used(store, st->id))
		return false;
	if (sel->filter &&
	    pcre2_match(sel->filter, (PCRE2_SPTR)st->name, strlen(st->name), 0, 0, store->md, NULL) < 0)
		return false;
	return true;
}

static int cmp_name(const void *a, const void *b, void *arg)
{
	const struct sk__stat *stats = arg;
	return strcmp(stats[*(const uint32_t *)a].name, stats[*(const uint32_t *)b].name);
}

static int cmp_extracted(const void *a, const void *b, void *arg)
{
	const struct sk__stat *stats = arg;
	const struct sk__stat *x = &stats[*(const uint32_t *)a], *y = &stats[*(const uint32_t *)b];
	int c = strcmp(x->tag_extracted, y->tag_extracted);
	return c ? c : strcmp(x->name, y->name);
}

/* Collects the indices of shown stats of the given types, sorted by cmp. */
static uint32_t *collect(struct sk_stats_store *store, const struct selection *sel, bool counters, bool gauges,
			 bool histograms, int (*cmp)(const void *, const void *, void *), size_t *n_out)
{
	uint32_t *idx = malloc((store->n_stats + 1) * sizeof(*idx));
	size_t n = 0;
	if (!idx)
		return NULL;
	for (uint32_t i = 1; i < store->n_stats; i++) {
		const struct sk__stat *st = &store->stats[i];
		bool want = (st->type == SK_STAT_COUNTER && counters) || (st->type == SK_STAT_GAUGE && gauges) ||
			    (st->type == SK_STAT_HISTOGRAM && histograms);
		if (want && shown(store, sel, st))
			idx[n++] = i;
	}
	qsort_r(idx, n, sizeof(*idx), cmp, store->stats);
	*n_out = n;
	return idx;
}

static uint64_t numeric_value(struct sk_stats_store *store, const struct sk__stat *st)
{
	return sk_stats_value(store, st->id);
}

/* ---- text ---- */

static const char *const quantile_labels[SK__QUANTILES] = { "0", "25", "50", "75", "90", "95", "99", "99.5", "99.9", "100" };

static void hist_summary(struct sk_stats_store *store, const struct sk__stat *st, struct buf *b)
{
	if (!sk__slot_used(store, st->id)) {
		buf_str(b, "No recorded values");
		return;
	}
	struct sk__hist_snapshot h;
	sk__hist_snapshot(store, st->id, &h);
	for (size_t q = 0; q < SK__QUANTILES; q++) {
		char v[40];
		fmt_double(v, sizeof(v), h.quantiles[q]);
		buf_printf(b, "%sP%s(%s,%s)", q ? " " : "", quantile_labels[q], v, v);
	}
}

static int render_text(struct sk_stats_store *store, const struct selection *sel, struct buf *b)
{
	size_t n;
	uint32_t *idx = collect(store, sel, true, true, false, cmp_name, &n);
	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct sk__stat *st = &store->stats[idx[i]];
		buf_printf(b, "%s: %" PRIu64 "\n", st->name, numeric_value(store, st));
	}
	free(idx);
	if (!(idx = collect(store, sel, false, false, true, cmp_name, &n)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct sk__stat *st = &store->stats[idx[i]];
		buf_printf(b, "%s: ", st->name);
		hist_summary(store, st, b);
		buf_add(b, "\n", 1);
	}
	free(idx);
	return 0;
}

/* ---- JSON ---- */

static void json_number(struct buf *b, double v)
{
	char tmp[40];
	if (isnan(v)) {
		buf_str(b, "null");
		return;
	}
	fmt_double(tmp, sizeof(tmp), v);
	buf_str(b, tmp);
}

static int render_json(struct sk_stats_store *store, const struct selection *sel, struct buf *b)
{
	size_t n;
	uint32_t *idx = collect(store, sel, true, true, false, cmp_name, &n);
	if (!idx)
		return -ENOMEM;
	buf_str(b, "{\"stats\":[");
	for (size_t i = 0; i < n; i++) {
		const struct sk__stat *st = &store->stats[idx[i]];
		buf_str(b, i ? ",{\"name\":" : "{\"name\":");
		buf_json_string(b, st->name);
		buf_printf(b, ",\"value\":%" PRIu64 "}", numeric_value(store, st));
	}
	bool any = n > 0;
	free(idx);
	if (!(idx = collect(store, sel, false, false, true, cmp_name, &n)))
		return -ENOMEM;
	if (n) {
		buf_str(b, any ? ",{\"histograms\":{\"supported_quantiles\":[" : "{\"histograms\":{\"supported_quantiles\":[");
		for (size_t q = 0; q < SK__QUANTILES; q++)
			buf_printf(b, "%s%s", q ? "," : "", quantile_labels[q]);
		buf_str(b, "],\"computed_quantiles\":[");
		for (size_t i = 0; i < n; i++) {
			const struct sk__stat *st = &store->stats[idx[i]];
			struct sk__hist_snapshot h;
			sk__hist_snapshot(store, st->id, &h);
			buf_str(b, i ? ",{\"name\":" : "{\"name\":");
			buf_json_string(b, st->name);
			buf_str(b, ",\"values\":[");
			for (size_t q = 0; q < SK__QUANTILES; q++) {
				buf_str(b, q ? ",{\"interval\":" : "{\"interval\":");
				json_number(b, h.quantiles[q]);
				buf_str(b, ",\"cumulative\":");
				json_number(b, h.quantiles[q]);
				buf_str(b, "}");
			}
			buf_str(b, "]}");
		}
		buf_str(b, "]}}");
	}
	buf_str(b, "]}\n");
	free(idx);
	return 0;
}

/* ---- Prometheus ---- */

static void sanitize(struct buf *b, const char *s)
{
	for (; *s; s++) {
		char c = *s;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
		buf_add(b, ok ? &c : "_", 1);
	}
}

/* Envoy's PrometheusStatsFormatter::metricName: "envoy_" + sanitized name, or, for a name in a
 * registered custom namespace, the sanitized rest (dropped when empty or starting with a
 * digit). Returns false when the metric is dropped. */
static bool metric_name(const struct sk_stats_store *store, const char *extracted, struct buf *out)
{
	out->len = 0;
	for (size_t i = 0; i < store->n_namespaces; i++) {
		size_t l = strlen(store->namespaces[i]);
		if (strncmp(extracted, store->namespaces[i], l) == 0 && extracted[l] == '.') {
			const char *rest = extracted + l + 1;
			if (!*rest || (*rest >= '0' && *rest <= '9'))
				return false;
			sanitize(out, rest);
			return !out->oom;
		}
	}
	buf_str(out, "envoy_");
	sanitize(out, extracted);
	return !out->oom;
}

static void prom_labels(struct buf *b, const struct sk__stat *st)
{
	for (size_t t = 0; t < st->n_tags; t++) {
		if (t)
			buf_add(b, ",", 1);
		sanitize(b, st->tags[t].name);
		buf_add(b, "=\"", 2);
		for (const char *v = st->tags[t].value; *v; v++) {
			if (*v == '\\')
				buf_add(b, "\\\\", 2);
			else if (*v == '"')
				buf_add(b, "\\\"", 2);
			else if (*v == '\n')
				buf_add(b, "\\n", 2);
			else
				buf_add(b, v, 1);
		}
		buf_add(b, "\"", 1);
	}
}

static void prom_histogram(struct sk_stats_store *store, const struct sk__stat *st, const char *name,
			   struct buf *b)
{
	struct sk__hist_snapshot h;
	sk__hist_snapshot(store, st->id, &h);
	struct buf labels = { 0 };
	prom_labels(&labels, st);
	const char *l = labels.p ? labels.p : "";
	const char *sep = st->n_tags ? "," : "";
	for (size_t i = 0; i < SK__HIST_BUCKETS; i++) {
		char bound[40];
		snprintf(bound, sizeof(bound), "%.32g", sk__hist_bounds[i]);
		buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, l, sep, bound, h.buckets[i]);
	}
	buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, l, sep, h.count);
	buf_printf(b, "%s_sum{%s} %.32g\n", name, l, (double)h.sum);
	buf_printf(b, "%s_count{%s} %" PRIu64 "\n", name, l, h.count);
	if (labels.oom)
		b->oom = true;
	free(labels.p);
}

static int prom_section(struct sk_stats_store *store, const struct selection *sel, enum sk_stat_type type,
			struct buf *b)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	size_t n;
	uint32_t *idx = collect(store, sel, type == SK_STAT_COUNTER, type == SK_STAT_GAUGE,
				type == SK_STAT_HISTOGRAM, cmp_extracted, &n);
	if (!idx)
		return -ENOMEM;
	struct buf name = { 0 };
	const char *group = NULL;
	bool keep = false;
	for (size_t i = 0; i < n; i++) {
		const struct sk__stat *st = &store->stats[idx[i]];
		if (!group || strcmp(group, st->tag_extracted) != 0) {
			group = st->tag_extracted;
			keep = metric_name(store, group, &name);
			if (keep)
				buf_printf(b, "# TYPE %s %s\n", name.p, type_names[type]);
		}
		if (!keep)
			continue;
		if (type == SK_STAT_HISTOGRAM) {
			prom_histogram(store, st, name.p, b);
			continue;
		}
		buf_printf(b, "%s{", name.p);
		prom_labels(b, st);
		buf_printf(b, "} %" PRIu64 "\n", numeric_value(store, st));
	}
	if (name.oom)
		b->oom = true;
	free(name.p);
	free(idx);
	return 0;
}

static int render_prometheus(struct sk_stats_store *store, const struct selection *sel, struct buf *b)
{
	int rc = prom_section(store, sel, SK_STAT_COUNTER, b);
	if (!rc)
		rc = prom_section(store, sel, SK_STAT_GAUGE, b);
	if (!rc)
		rc = prom_section(store, sel, SK_STAT_HISTOGRAM, b);
	return rc;
}

char *sk_stats_render(struct sk_stats_store *store, const struct sk_stats_query *q, char *err, size_t errlen)
{
	struct selection sel = { .counters = true, .gauges = true, .histograms = true, .usedonly = q->usedonly };
	if (q->type && strcmp(q->type, "All") != 0) {
		sel.counters = strcmp(q->type, "Counters") == 0;
		sel.gauges = strcmp(q->type, "Gauges") == 0;
		sel.histograms = strcmp(q->type, "Histograms") == 0;
		if (!sel.counters && !sel.gauges && !sel.histograms && strcmp(q->type, "TextReadouts") != 0) {
			sk__err(err, errlen, "invalid type=%s", q->type);
			return NULL;
		}
	}
	if (q->filter && *q->filter) {
		int ec;
		PCRE2_SIZE off;
		sel.filter = pcre2_compile((PCRE2_SPTR)q->filter, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
		if (!sel.filter) {
			PCRE2_UCHAR msg[160];
			pcre2_get_error_message(ec, msg, sizeof(msg));
			sk__err(err, errlen, "Invalid regex: %s at offset %zu", (const char *)msg, (size_t)off);
			return NULL;
		}
	}
	struct buf b = { 0 };
	buf_reserve(&b, 0);
	if (b.p)
		b.p[0] = '\0';
	int rc = -EINVAL;
	switch (q->format) {
	case SK_STATS_TEXT:
		rc = render_text(store, &sel, &b);
		break;
	case SK_STATS_JSON:
		rc = render_json(store, &sel, &b);
		break;
	case SK_STATS_PROMETHEUS:
		rc = render_prometheus(store, &sel, &b);
		break;
	}
	pcre2_code_free(sel.filter);
	if (rc == 0 && b.oom)
		rc = -ENOMEM;
	if (rc) {
		sk__err(err, errlen, rc == -ENOMEM ? "out of memory" : "unknown format");
		free(b.p);
		return NULL;
	}
	return b.p;
}
