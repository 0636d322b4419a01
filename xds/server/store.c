/* store: resource files -> serialized resources. See store.h. */
#include "xds/server/store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "skiff_protos.h"
#include "xds/base64.h"
#include "xds/bootstrap.h"
#include "xds/pbjson.h"
#include "xds/proto_registry.h"

#define STORE_MAX_FILE (256u << 20)

/* The types a config dump's objects are served as. */
static const char *const served_types[] = {
	SK_TYPE_URL_CLUSTER, SK_TYPE_URL_ENDPOINT, SK_TYPE_URL_LISTENER, SK_TYPE_URL_ROUTE, SK_TYPE_URL_SECRET,
};

struct loader {
	struct sk_xds_store *s;
	size_t cap;
	bool lenient;
	const char *file;
	char *err;
	size_t errlen;
};

static int failf(struct loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int failf(struct loader *l, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(l->err, l->errlen, "%s: %s", l->file, msg);
	return -EINVAL;
}

/* Appends one resource (takes ownership of bytes). */
static int add(struct loader *l, const char *type_url, const char *name, uint8_t *bytes, size_t len)
{
	struct sk_xds_store *s = l->s;
	struct sk_xds_res *r;

	if (s->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct sk_xds_res *grown = realloc(s->res, cap * sizeof(*grown));

		if (grown == NULL) {
			free(bytes);
			return failf(l, "out of memory");
		}
		s->res = grown;
		l->cap = cap;
	}
	r = &s->res[s->n];
	memset(r, 0, sizeof(*r));
	r->type_url = strdup(type_url);
	r->name = strdup(name);
	r->bytes = bytes;
	r->len = len;
	s->n++;
	if (r->type_url == NULL || r->name == NULL)
		return failf(l, "out of memory");
	sk_xds_resource_version_of(bytes, len, r->version);
	return 0;
}

/* {"@type": URL, "@name": NAME, "@bytes": BASE64}: served as is. */
static int add_raw(struct loader *l, json_t *j, const char *where)
{
	const char *url = json_string_value(json_object_get(j, "@type"));
	const char *name = json_string_value(json_object_get(j, "@name"));
	const char *b64 = json_string_value(json_object_get(j, "@bytes"));
	uint8_t *bytes;
	size_t len;

	if (url == NULL || name == NULL || b64 == NULL)
		return failf(l, "%s: a raw resource needs '@type', '@name' and '@bytes'", where);
	if ((bytes = sk_base64_decode(b64, &len)) == NULL)
		return failf(l, "%s.@bytes: invalid base64", where);
	return add(l, url, name, bytes, len);
}

/* One object with "@type": proto3 JSON -> serialized bytes, named by its name field. */
static int add_json(struct loader *l, json_t *j, const char *where)
{
	struct sk_pbjson_decode_opts opts = {.allow_unknown = l->lenient};
	Google__Protobuf__Any *any;
	ProtobufCMessage *m;
	const ProtobufCMessageDescriptor *desc;
	const char *name;
	char msg[512];
	int rc;

	if (json_object_get(j, "@bytes") != NULL)
		return add_raw(l, j, where);
	any = (Google__Protobuf__Any *)sk_pbjson_decode(&google__protobuf__any__descriptor, j, &opts, msg, sizeof(msg));
	if (any == NULL)
		return failf(l, "%s%s", where, msg);
	desc = sk_proto_registry_find_url(any->type_url);
	m = desc ? protobuf_c_message_unpack(desc, NULL, any->value.len, any->value.data) : NULL;
	name = sk_xds_resource_name(m);
	if (name == NULL) {
		rc = failf(l, "%s: a %s resource needs a name", where, any->type_url);
	} else {
		rc = add(l, any->type_url, name, any->value.data, any->value.len);
		any->value.data = NULL; /* now the store's */
		any->value.len = 0;
	}
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	protobuf_c_message_free_unpacked(&any->base, NULL);
	return rc;
}

static bool is_served_type(const char *url)
{
	size_t i;

	for (i = 0; url && i < sizeof(served_types) / sizeof(served_types[0]); i++)
		if (strcmp(url, served_types[i]) == 0)
			return true;
	return false;
}

/* Anything else: every served resource inside, except static and bootstrap parts. */
static int walk(struct loader *l, json_t *j, const char *where, unsigned depth)
{
	char path[512];
	const char *key;
	json_t *v;
	size_t i;
	int rc;

	if (depth > 64)
		return 0;
	if (json_is_object(j)) {
		if (is_served_type(json_string_value(json_object_get(j, "@type"))))
			return add_json(l, j, where);
		json_object_foreach(j, key, v) {
			if (strncmp(key, "static_", 7) == 0 || strcmp(key, "bootstrap") == 0)
				continue;
			snprintf(path, sizeof(path), "%s.%s", where, key);
			if ((rc = walk(l, v, path, depth + 1)) < 0)
				return rc;
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			snprintf(path, sizeof(path), "%s[%zu]", where, i);
			if ((rc = walk(l, v, path, depth + 1)) < 0)
				return rc;
		}
	}
	return 0;
}

/* A list of resources (top-level array, or "resources"), else a walk. */
static int load_json(struct loader *l, json_t *j)
{
	json_t *list = json_is_array(j) ? j : json_is_object(j) ? json_object_get(j, "resources") : NULL;
	char where[64];
	json_t *v;
	size_t i;
	int rc;

	if (list == NULL || !json_is_array(list))
		return walk(l, j, "", 0);
	json_array_foreach(list, i, v) {
		snprintf(where, sizeof(where), "[%zu]", i);
		if (!json_is_object(v) || !json_is_string(json_object_get(v, "@type")))
			return failf(l, "%s: a resource is an object with '@type'", where);
		if ((rc = add_json(l, v, where)) < 0)
			return rc;
	}
	return 0;
}

/* One file: JSON or YAML (by extension, or by content). */
static int load_file(struct loader *l, const char *path)
{
	size_t len = 0, plen = strlen(path);
	bool yaml = (plen > 5 && strcasecmp(path + plen - 5, ".yaml") == 0) ||
		    (plen > 4 && strcasecmp(path + plen - 4, ".yml") == 0);
	char *text, msg[512];
	json_t *j;
	int rc;

	l->file = path;
	text = sk_file_read(path, STORE_MAX_FILE, &len, msg, sizeof(msg));
	if (text == NULL) {
		snprintf(l->err, l->errlen, "%s", msg);
		return -EINVAL;
	}
	j = sk_config_text_parse(text, len, yaml, msg, sizeof(msg));
	free(text);
	if (j == NULL)
		return failf(l, "%s", msg);
	rc = load_json(l, j);
	json_decref(j);
	return rc;
}

static int res_cmp(const void *a, const void *b)
{
	const struct sk_xds_res *x = a, *y = b;
	int c = strcmp(x->type_url, y->type_url);

	return c ? c : strcmp(x->name, y->name);
}

int sk_xds_store_load(const char *const *paths, size_t n, const char *version, bool lenient,
		      struct sk_xds_store **out, char *err, size_t errlen)
{
	struct sk_xds_store *s = calloc(1, sizeof(*s));
	struct loader l = {.s = s, .lenient = lenient, .file = "store", .err = err, .errlen = errlen};
	size_t i;
	int rc = 0;

	*out = NULL;
	if (s == NULL || (s->version = strdup(version ? version : "")) == NULL) {
		sk_xds_store_free(s);
		return failf(&l, "out of memory");
	}
	for (i = 0; rc == 0 && i < n; i++)
		rc = load_file(&l, paths[i]);
	if (rc == 0 && s->n > 1)
		qsort(s->res, s->n, sizeof(*s->res), res_cmp);
	for (i = 1; rc == 0 && i < s->n; i++)
		if (res_cmp(&s->res[i - 1], &s->res[i]) == 0)
			rc = failf(&l, "duplicate %s '%s'", s->res[i].type_url, s->res[i].name);
	if (rc < 0) {
		sk_xds_store_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void sk_xds_store_range(const struct sk_xds_store *s, const char *type_url, size_t *first, size_t *count)
{
	size_t lo = 0, hi = s ? s->n : 0, end;

	while (lo < hi) { /* the first resource of type_url or later */
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(s->res[mid].type_url, type_url) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; s && end < s->n && strcmp(s->res[end].type_url, type_url) == 0; end++)
		;
	*first = lo;
	*count = end - lo;
}

const struct sk_xds_res *sk_xds_store_find(const struct sk_xds_store *s, const char *type_url, const char *name)
{
	struct sk_xds_res key = {.type_url = (char *)type_url, .name = (char *)name};

	if (s == NULL || s->n == 0)
		return NULL;
	return bsearch(&key, s->res, s->n, sizeof(*s->res), res_cmp);
}

void sk_xds_store_free(struct sk_xds_store *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++) {
		free(s->res[i].type_url);
		free(s->res[i].name);
		free(s->res[i].bytes);
	}
	free(s->res);
	free(s->version);
	free(s);
}
