/* pbjson: proto3 JSON <-> protobuf-c, driven by descriptors.
 *
 * Messages are built with malloc'd members exactly as protobuf_c_message_unpack() would
 * build them, so protobuf_c_message_free_unpacked() frees what we build. Well-known types
 * (Any, Duration, Timestamp, Struct, Value, ListValue, wrappers, Empty, FieldMask) have
 * their special JSON forms; everything else is generic. */
#include "xds/pbjson.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skiff_protos.h"
#include "xds/base64.h"
#include "xds/proto_registry.h"

#define TYPE_URL_PREFIX "type.googleapis.com/"

enum wkt {
	WKT_NONE,
	WKT_ANY,
	WKT_DURATION,
	WKT_TIMESTAMP,
	WKT_STRUCT,
	WKT_VALUE,
	WKT_LIST_VALUE,
	WKT_WRAPPER,
	WKT_EMPTY,
	WKT_FIELD_MASK,
};

static enum wkt wkt_of(const ProtobufCMessageDescriptor *d)
{
	static const struct {
		const char *name;
		enum wkt wkt;
	} table[] = {
		{"google.protobuf.Any", WKT_ANY},
		{"google.protobuf.Duration", WKT_DURATION},
		{"google.protobuf.Timestamp", WKT_TIMESTAMP},
		{"google.protobuf.Struct", WKT_STRUCT},
		{"google.protobuf.Value", WKT_VALUE},
		{"google.protobuf.ListValue", WKT_LIST_VALUE},
		{"google.protobuf.Empty", WKT_EMPTY},
		{"google.protobuf.FieldMask", WKT_FIELD_MASK},
		{"google.protobuf.DoubleValue", WKT_WRAPPER},
		{"google.protobuf.FloatValue", WKT_WRAPPER},
		{"google.protobuf.Int64Value", WKT_WRAPPER},
		{"google.protobuf.UInt64Value", WKT_WRAPPER},
		{"google.protobuf.Int32Value", WKT_WRAPPER},
		{"google.protobuf.UInt32Value", WKT_WRAPPER},
		{"google.protobuf.BoolValue", WKT_WRAPPER},
		{"google.protobuf.StringValue", WKT_WRAPPER},
		{"google.protobuf.BytesValue", WKT_WRAPPER},
	};
	size_t i;

	if (strncmp(d->name, "google.protobuf.", 16) != 0)
		return WKT_NONE;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(d->name, table[i].name) == 0)
			return table[i].wkt;
	return WKT_NONE;
}

/* A map<K,V> field is a repeated message whose type is a synthesized "...Entry" with
 * exactly key = 1 and value = 2 (protobuf-c keeps no flag for it). */
static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
	size_t n = strlen(d->short_name);

	return d->n_fields == 2 && n > 5 && strcmp(d->short_name + n - 5, "Entry") == 0 &&
	       d->fields[0].id == 1 && strcmp(d->fields[0].name, "key") == 0 &&
	       d->fields[1].id == 2 && strcmp(d->fields[1].name, "value") == 0;
}

static size_t field_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

#define MEMBER(msg, off) ((void *)((char *)(msg) + (off)))
#define CMEMBER(msg, off) ((const void *)((const char *)(msg) + (off)))

/* ------------------------------------------------------------------------------------ */
/* decoding                                                                              */

struct dec {
	struct sk_pbjson_decode_opts *opts;
	char path[1024];
	size_t plen;
	char *err;
	size_t errlen;
	int depth;
};

static int fail(struct dec *d, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (d->err != NULL && d->errlen > 0) {
		if (d->plen > 0)
			snprintf(d->err, d->errlen, "%s: %s", d->path, what);
		else
			snprintf(d->err, d->errlen, "%s", what);
	}
	return -EINVAL;
}

/* Appends ".name" (or "name" at the root) or "[i]" to the path; returns the old length. */
static size_t push_name(struct dec *d, const char *name)
{
	size_t old = d->plen;
	int n = snprintf(d->path + d->plen, sizeof(d->path) - d->plen, "%s%s",
			 d->plen ? "." : "", name);

	if (n > 0)
		d->plen = d->plen + (size_t)n < sizeof(d->path) ? d->plen + (size_t)n
							       : sizeof(d->path) - 1;
	return old;
}

static size_t push_index(struct dec *d, size_t i)
{
	size_t old = d->plen;
	int n = snprintf(d->path + d->plen, sizeof(d->path) - d->plen, "[%zu]", i);

	if (n > 0)
		d->plen = d->plen + (size_t)n < sizeof(d->path) ? d->plen + (size_t)n
							       : sizeof(d->path) - 1;
	return old;
}

static void pop(struct dec *d, size_t old)
{
	d->plen = old;
	d->path[old] = '\0';
}

static const char *json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "a value";
}

static ProtobufCMessage *decode_message(struct dec *d, const ProtobufCMessageDescriptor *desc,
					json_t *j);

/* Integer from a JSON integer, an integral real, or a decimal string. */
static int get_int(struct dec *d, json_t *j, bool is_signed, int64_t min, uint64_t max,
		   uint64_t *out)
{
	if (json_is_integer(j)) {
		json_int_t v = json_integer_value(j);

		if (v < 0 && (!is_signed || v < min))
			return fail(d, "value %lld out of range", (long long)v);
		if (v >= 0 && (uint64_t)v > max)
			return fail(d, "value %lld out of range", (long long)v);
		*out = (uint64_t)v;
		return 0;
	}
	if (json_is_real(j)) {
		double v = json_real_value(j);

		if (v != floor(v) || v < (double)min || v > (double)max)
			return fail(d, "%g is not an integer in range", v);
		*out = v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v;
		return 0;
	}
	if (json_is_string(j)) {
		const char *s = json_string_value(j);
		char *end;

		errno = 0;
		if (*s == '\0' || *s == ' ')
			return fail(d, "'%s' is not an integer", s);
		if (is_signed) {
			long long v = strtoll(s, &end, 10);

			if (*end != '\0' || errno == ERANGE || v < min ||
			    (v > 0 && (uint64_t)v > max))
				return fail(d, "'%s' is not an integer in range", s);
			*out = (uint64_t)v;
		} else {
			unsigned long long v;

			if (*s == '-')
				return fail(d, "'%s' is negative for an unsigned field", s);
			v = strtoull(s, &end, 10);
			if (*end != '\0' || errno == ERANGE || v > max)
				return fail(d, "'%s' is not an integer in range", s);
			*out = v;
		}
		return 0;
	}
	return fail(d, "expected an integer, got %s", json_kind(j));
}

static int get_double(struct dec *d, json_t *j, double *out)
{
	if (json_is_number(j)) {
		*out = json_number_value(j);
		return 0;
	}
	if (json_is_string(j)) {
		const char *s = json_string_value(j);
		char *end;

		if (strcmp(s, "NaN") == 0) {
			*out = NAN;
			return 0;
		}
		if (strcmp(s, "Infinity") == 0) {
			*out = INFINITY;
			return 0;
		}
		if (strcmp(s, "-Infinity") == 0) {
			*out = -INFINITY;
			return 0;
		}
		*out = strtod(s, &end);
		if (*s != '\0' && *end == '\0')
			return 0;
		return fail(d, "'%s' is not a number", s);
	}
	return fail(d, "expected a number, got %s", json_kind(j));
}

/* Text of a scalar JSON value for a string field. YAML plain scalars such as `name: 9080`
 * arrive as numbers; like Envoy we take their text. */
static int get_string(struct dec *d, json_t *j, char **out)
{
	char buf[64];
	const char *s = buf;

	if (json_is_string(j))
		s = json_string_value(j);
	else if (json_is_integer(j))
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(j));
	else if (json_is_real(j))
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(j));
	else if (json_is_boolean(j))
		s = json_is_true(j) ? "true" : "false";
	else
		return fail(d, "expected a string, got %s", json_kind(j));
	*out = strdup(s);
	return *out ? 0 : fail(d, "out of memory");
}

static int get_enum(struct dec *d, const ProtobufCEnumDescriptor *ed, json_t *j, int32_t *out)
{
	if (json_is_string(j)) {
		const ProtobufCEnumValue *v =
			protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(j));

		if (v == NULL)
			return fail(d, "'%s' is not a value of enum %s", json_string_value(j),
				    ed->name);
		*out = v->value;
		return 0;
	}
	if (json_is_integer(j)) {
		json_int_t v = json_integer_value(j);

		/* Proto3 enums are open: unknown numbers are kept. */
		if (v < INT32_MIN || v > INT32_MAX)
			return fail(d, "enum value %lld out of range", (long long)v);
		*out = (int32_t)v;
		return 0;
	}
	return fail(d, "expected an enum name or number for %s, got %s", ed->name, json_kind(j));
}

/* Decodes one value of field f into `slot` (storage of field_size(f) bytes). */
static int decode_value(struct dec *d, const ProtobufCFieldDescriptor *f, json_t *j, void *slot)
{
	uint64_t u;
	double dv;
	int rc;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if ((rc = get_int(d, j, true, INT32_MIN, INT32_MAX, &u)) < 0)
			return rc;
		*(int32_t *)slot = (int32_t)(int64_t)u;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if ((rc = get_int(d, j, false, 0, UINT32_MAX, &u)) < 0)
			return rc;
		*(uint32_t *)slot = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if ((rc = get_int(d, j, true, INT64_MIN, INT64_MAX, &u)) < 0)
			return rc;
		*(int64_t *)slot = (int64_t)u;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if ((rc = get_int(d, j, false, 0, UINT64_MAX, &u)) < 0)
			return rc;
		*(uint64_t *)slot = u;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
		if ((rc = get_double(d, j, &dv)) < 0)
			return rc;
		*(float *)slot = (float)dv;
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		if ((rc = get_double(d, j, &dv)) < 0)
			return rc;
		*(double *)slot = dv;
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(j))
			return fail(d, "expected a boolean, got %s", json_kind(j));
		*(protobuf_c_boolean *)slot = json_is_true(j);
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		return get_enum(d, f->descriptor, j, (int32_t *)slot);
	case PROTOBUF_C_TYPE_STRING:
		return get_string(d, j, (char **)slot);
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = slot;

		if (!json_is_string(j))
			return fail(d, "expected base64 bytes, got %s", json_kind(j));
		b->data = sk_base64_decode(json_string_value(j), &b->len);
		if (b->data == NULL)
			return fail(d, "invalid base64");
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *m = decode_message(d, f->descriptor, j);

		if (m == NULL)
			return -EINVAL;
		*(ProtobufCMessage **)slot = m;
		return 0;
	}
	}
	return fail(d, "unsupported field type");
}

/* Appends one element to the repeated field f of msg. */
static int append_element(struct dec *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
			  json_t *j)
{
	size_t *n = MEMBER(msg, f->quantifier_offset);
	void **arr = MEMBER(msg, f->offset);
	size_t sz = field_size(f);
	char *grown = realloc(*arr, (*n + 1) * sz);

	if (grown == NULL)
		return fail(d, "out of memory");
	*arr = grown;
	memset(grown + *n * sz, 0, sz);
	if (decode_value(d, f, j, grown + *n * sz) < 0)
		return -EINVAL;
	(*n)++;
	return 0;
}

static int decode_map(struct dec *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
		      json_t *j)
{
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
	const char *key;
	json_t *val;

	if (!json_is_object(j))
		return fail(d, "expected an object for a map, got %s", json_kind(j));
	json_object_foreach(j, key, val) {
		size_t *n = MEMBER(msg, f->quantifier_offset);
		ProtobufCMessage ***arr = MEMBER(msg, f->offset);
		ProtobufCMessage **grown, *entry;
		json_t *jkey;
		size_t old;
		int rc;

		if (json_is_null(val) &&
		    !(vf->type == PROTOBUF_C_TYPE_MESSAGE && wkt_of(vf->descriptor) == WKT_VALUE))
			continue;
		grown = realloc(*arr, (*n + 1) * sizeof(*grown));
		if (grown == NULL)
			return fail(d, "out of memory");
		*arr = grown;
		entry = calloc(1, ed->sizeof_message);
		if (entry == NULL)
			return fail(d, "out of memory");
		protobuf_c_message_init(ed, entry);
		grown[(*n)++] = entry;
		old = push_name(d, key);
		/* Map keys are strings in JSON whatever their proto type ("true", "42", ...). */
		if (kf->type == PROTOBUF_C_TYPE_BOOL) {
			if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0)
				return fail(d, "map key '%s' is not a boolean", key);
			*(protobuf_c_boolean *)MEMBER(entry, kf->offset) = strcmp(key, "true") == 0;
			rc = 0;
		} else {
			jkey = json_string(key);
			rc = decode_value(d, kf, jkey, MEMBER(entry, kf->offset));
			json_decref(jkey);
		}
		if (rc == 0)
			rc = decode_value(d, vf, val, MEMBER(entry, vf->offset));
		if (rc < 0)
			return rc;
		pop(d, old);
	}
	return 0;
}

/* Finds a field by its proto name or its lowerCamelCase JSON name. */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
						  const char *key)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
	char snake[256];
	size_t o = 0;

	if (f != NULL)
		return f;
	for (; *key && o + 2 < sizeof(snake); key++) {
		if (*key >= 'A' && *key <= 'Z') {
			snake[o++] = '_';
			snake[o++] = (char)(*key - 'A' + 'a');
		} else if (*key == '_') {
			return NULL; /* a JSON name never has underscores */
		} else {
			snake[o++] = *key;
		}
	}
	snake[o] = '\0';
	return *key ? NULL : protobuf_c_message_descriptor_get_field_by_name(desc, snake);
}

static void warn(struct dec *d, const char *what)
{
	if (d->opts && d->opts->warn)
		d->opts->warn(d->opts->warn_ctx, d->path, what);
}

static int unknown_field(struct dec *d, const char *key)
{
	size_t old = push_name(d, key);
	int rc = 0;

	if (d->opts && d->opts->allow_unknown) {
		d->opts->unknown_fields++;
		warn(d, "unknown field");
	} else {
		rc = fail(d, "unknown field");
	}
	pop(d, old);
	return rc;
}

static int set_field(struct dec *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
		     json_t *val)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	void *slot = MEMBER(msg, f->offset);

	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t i;
		json_t *el;

		if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor) &&
		    json_is_object(val))
			return decode_map(d, msg, f, val);
		if (!json_is_array(val))
			return fail(d, "expected an array, got %s", json_kind(val));
		json_array_foreach(val, i, el) {
			size_t old = push_index(d, i);

			if (append_element(d, msg, f, el) < 0)
				return -EINVAL;
			pop(d, old);
		}
		return 0;
	}

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *which = MEMBER(msg, f->quantifier_offset);
		size_t k;

		if (*which != 0) {
			for (k = 0; k < desc->n_fields; k++)
				if (desc->fields[k].id == *which)
					break;
			if (*which == f->id)
				return fail(d, "field set twice");
			return fail(d, "conflicts with '%s' (only one of a oneof may be set)",
				    k < desc->n_fields ? desc->fields[k].name : "?");
		}
		if (decode_value(d, f, val, slot) < 0)
			return -EINVAL;
		*which = f->id;
		return 0;
	}

	/* A value already present (duplicate key in YAML, say) is replaced. */
	if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(ProtobufCMessage **)slot) {
		protobuf_c_message_free_unpacked(*(ProtobufCMessage **)slot, NULL);
		*(ProtobufCMessage **)slot = NULL;
	} else if (f->type == PROTOBUF_C_TYPE_STRING && *(char **)slot != f->default_value) {
		free(*(char **)slot);
		*(const void **)slot = f->default_value;
	}
	if (decode_value(d, f, val, slot) < 0)
		return -EINVAL;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
		*(protobuf_c_boolean *)MEMBER(msg, f->quantifier_offset) = 1;
	return 0;
}

/* Fills msg (already initialized) from the members of object j. */
static int decode_fields(struct dec *d, ProtobufCMessage *msg, json_t *j)
{
	const char *key;
	json_t *val;

	json_object_foreach(j, key, val) {
		const ProtobufCFieldDescriptor *f;
		size_t old;

		f = find_field(msg->descriptor, key);
		if (f == NULL) {
			if (unknown_field(d, key) < 0)
				return -EINVAL;
			continue;
		}
		/* null means "not set" for every field but google.protobuf.Value. */
		if (json_is_null(val) &&
		    !(f->type == PROTOBUF_C_TYPE_MESSAGE && wkt_of(f->descriptor) == WKT_VALUE))
			continue;
		old = push_name(d, f->name);
		if (set_field(d, msg, f, val) < 0)
			return -EINVAL;
		pop(d, old);
	}
	return 0;
}

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m = calloc(1, desc->sizeof_message);

	if (m != NULL)
		protobuf_c_message_init(desc, m);
	return m;
}

static const ProtobufCFieldDescriptor *field_named(const ProtobufCMessageDescriptor *desc,
						   const char *name)
{
	return protobuf_c_message_descriptor_get_field_by_name(desc, name);
}

static int decode_duration(struct dec *d, ProtobufCMessage *m, json_t *j)
{
	int64_t s;
	int32_t ns;

	if (!json_is_string(j))
		return fail(d, "expected a duration string such as \"1.5s\", got %s", json_kind(j));
	if (sk_pbjson_parse_duration(json_string_value(j), &s, &ns) < 0)
		return fail(d, "invalid duration '%s'", json_string_value(j));
	*(int64_t *)MEMBER(m, field_named(m->descriptor, "seconds")->offset) = s;
	*(int32_t *)MEMBER(m, field_named(m->descriptor, "nanos")->offset) = ns;
	return 0;
}

static int decode_timestamp(struct dec *d, ProtobufCMessage *m, json_t *j)
{
	const char *s, *p;
	struct tm tm = {0};
	int64_t secs;
	int32_t ns = 0;
	int digits = 0, off = 0;

	if (!json_is_string(j))
		return fail(d, "expected an RFC 3339 timestamp, got %s", json_kind(j));
	s = json_string_value(j);
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return fail(d, "invalid timestamp '%s'", s);
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 9)
				ns = ns * 10 + (*p - '0');
		if (digits == 0)
			return fail(d, "invalid timestamp '%s'", s);
		for (; digits < 9; digits++)
			ns *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		if (*p == '-')
			off = -off;
		p += 6;
	}
	if (*p != '\0')
		return fail(d, "invalid timestamp '%s'", s);
	secs = (int64_t)timegm(&tm) - off;
	*(int64_t *)MEMBER(m, field_named(m->descriptor, "seconds")->offset) = secs;
	*(int32_t *)MEMBER(m, field_named(m->descriptor, "nanos")->offset) = ns;
	return 0;
}

static int decode_wkt_value(struct dec *d, ProtobufCMessage *m, json_t *j);

static int decode_struct(struct dec *d, ProtobufCMessage *m, json_t *j)
{
	if (!json_is_object(j))
		return fail(d, "expected an object for a Struct, got %s", json_kind(j));
	return decode_map(d, m, field_named(m->descriptor, "fields"), j);
}

static int decode_list_value(struct dec *d, ProtobufCMessage *m, json_t *j)
{
	const ProtobufCFieldDescriptor *f = field_named(m->descriptor, "values");
	size_t i;
	json_t *el;

	if (!json_is_array(j))
		return fail(d, "expected an array for a ListValue, got %s", json_kind(j));
	json_array_foreach(j, i, el) {
		size_t old = push_index(d, i);

		if (append_element(d, m, f, el) < 0)
			return -EINVAL;
		pop(d, old);
	}
	return 0;
}

/* google.protobuf.Value: whatever JSON it holds. */
static int decode_wkt_value(struct dec *d, ProtobufCMessage *m, json_t *j)
{
	const ProtobufCMessageDescriptor *desc = m->descriptor;
	const ProtobufCFieldDescriptor *f;
	uint32_t *which;

	switch (json_typeof(j)) {
	case JSON_NULL:
		f = field_named(desc, "null_value");
		*(int32_t *)MEMBER(m, f->offset) = 0;
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		f = field_named(desc, "bool_value");
		*(protobuf_c_boolean *)MEMBER(m, f->offset) = json_is_true(j);
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		f = field_named(desc, "number_value");
		*(double *)MEMBER(m, f->offset) = json_number_value(j);
		break;
	case JSON_STRING:
		f = field_named(desc, "string_value");
		if (get_string(d, j, MEMBER(m, f->offset)) < 0)
			return -EINVAL;
		break;
	case JSON_OBJECT:
		f = field_named(desc, "struct_value");
		if (decode_value(d, f, j, MEMBER(m, f->offset)) < 0)
			return -EINVAL;
		break;
	case JSON_ARRAY:
		f = field_named(desc, "list_value");
		if (decode_value(d, f, j, MEMBER(m, f->offset)) < 0)
			return -EINVAL;
		break;
	default:
		return fail(d, "unsupported JSON value");
	}
	which = MEMBER(m, f->quantifier_offset);
	*which = f->id;
	return 0;
}

static int decode_wrapper(struct dec *d, ProtobufCMessage *m, json_t *j)
{
	const ProtobufCFieldDescriptor *f = field_named(m->descriptor, "value");

	return decode_value(d, f, j, MEMBER(m, f->offset));
}

static int decode_field_mask(struct dec *d, ProtobufCMessage *m, json_t *j)
{
	const ProtobufCFieldDescriptor *f = field_named(m->descriptor, "paths");
	char *copy, *tok, *save = NULL;
	int rc = 0;

	if (!json_is_string(j))
		return fail(d, "expected a comma-separated FieldMask string, got %s", json_kind(j));
	copy = strdup(json_string_value(j));
	if (copy == NULL)
		return fail(d, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
		json_t *js = json_string(tok);

		rc = append_element(d, m, f, js);
		json_decref(js);
	}
	free(copy);
	return rc;
}

/* Any: "@type" names the message; the other members are its fields, or "value" for a
 * well-known type. A type outside our subset is accepted only as raw bytes
 * ({"@type": ..., "value": "<base64>"}), which is how we write such an Any back. */
static int decode_any(struct dec *d, ProtobufCMessage *m, json_t *j)
{
	const ProtobufCFieldDescriptor *tf = field_named(m->descriptor, "type_url");
	const ProtobufCFieldDescriptor *vf = field_named(m->descriptor, "value");
	const ProtobufCMessageDescriptor *inner_desc;
	ProtobufCMessage *inner;
	json_t *jt, *jv;
	const char *url;
	int rc;

	if (!json_is_object(j))
		return fail(d, "expected an object for an Any, got %s", json_kind(j));
	jt = json_object_get(j, "@type");
	if (jt == NULL)
		return json_object_size(j) == 0 ? 0 : fail(d, "Any without '@type'");
	if (!json_is_string(jt))
		return fail(d, "'@type' must be a string");
	url = json_string_value(jt);
	if (strchr(url, '/') == NULL)
		return fail(d, "invalid type URL '%s'", url);
	*(char **)MEMBER(m, tf->offset) = strdup(url);
	inner_desc = sk_proto_registry_find_url(url);
	jv = json_object_get(j, "value");
	if (inner_desc == NULL) {
		ProtobufCBinaryData *b = MEMBER(m, vf->offset);

		if (jv && json_is_string(jv) && json_object_size(j) == 2) {
			b->data = sk_base64_decode(json_string_value(jv), &b->len);
			if (b->data == NULL)
				return fail(d, "invalid base64 in Any value");
			return 0;
		}
		if (d->opts && d->opts->allow_unknown) {
			d->opts->unknown_fields++;
			warn(d, "Any of an unknown type kept without its fields");
			return 0;
		}
		return fail(d, "unknown type '%s'", url);
	}
	if (wkt_of(inner_desc) != WKT_NONE) {
		if (jv == NULL)
			return fail(d, "Any of %s needs a 'value'", inner_desc->name);
		inner = decode_message(d, inner_desc, jv);
	} else {
		json_t *copy = json_copy(j);

		json_object_del(copy, "@type");
		inner = decode_message(d, inner_desc, copy);
		json_decref(copy);
	}
	if (inner == NULL)
		return -EINVAL;
	{
		ProtobufCBinaryData *b = MEMBER(m, vf->offset);
		size_t n = protobuf_c_message_get_packed_size(inner);

		b->data = malloc(n ? n : 1);
		rc = b->data ? 0 : fail(d, "out of memory");
		if (rc == 0)
			b->len = protobuf_c_message_pack(inner, b->data);
	}
	protobuf_c_message_free_unpacked(inner, NULL);
	return rc;
}

/* The special JSON forms of the well-known types. */
static int (*const wkt_decoders[])(struct dec *, ProtobufCMessage *, json_t *) = {
	[WKT_ANY] = decode_any,
	[WKT_DURATION] = decode_duration,
	[WKT_TIMESTAMP] = decode_timestamp,
	[WKT_STRUCT] = decode_struct,
	[WKT_VALUE] = decode_wkt_value,
	[WKT_LIST_VALUE] = decode_list_value,
	[WKT_WRAPPER] = decode_wrapper,
	[WKT_FIELD_MASK] = decode_field_mask,
	[WKT_EMPTY] = NULL,
};

static ProtobufCMessage *decode_message(struct dec *d, const ProtobufCMessageDescriptor *desc,
					json_t *j)
{
	ProtobufCMessage *m;
	enum wkt w = wkt_of(desc);
	int rc;

	if (++d->depth > SK_PBJSON_MAX_DEPTH) {
		fail(d, "nesting deeper than %d levels", SK_PBJSON_MAX_DEPTH);
		d->depth--;
		return NULL;
	}
	m = new_message(desc);
	if (m == NULL) {
		fail(d, "out of memory");
		d->depth--;
		return NULL;
	}
	if (wkt_decoders[w] != NULL)
		rc = wkt_decoders[w](d, m, j);
	else if (!json_is_object(j))
		rc = fail(d, "expected an object for %s, got %s", desc->name, json_kind(j));
	else
		rc = decode_fields(d, m, j);
	d->depth--;
	if (rc < 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		return NULL;
	}
	return m;
}

ProtobufCMessage *sk_pbjson_decode(const ProtobufCMessageDescriptor *desc, json_t *json,
				   struct sk_pbjson_decode_opts *opts, char *err, size_t errlen)
{
	struct dec d = {.opts = opts, .err = err, .errlen = errlen};

	if (err && errlen)
		err[0] = '\0';
	return decode_message(&d, desc, json);
}

/* ------------------------------------------------------------------------------------ */
/* durations                                                                             */

double sk_duration_seconds(const struct Google__Protobuf__Duration *d, double dflt)
{
	return d ? (double)d->seconds + d->nanos / 1e9 : dflt;
}

int sk_pbjson_parse_duration(const char *s, int64_t *seconds, int32_t *nanos)
{
	bool neg = false;
	int64_t sec = 0;
	int32_t ns = 0;
	int digits = 0;
	const char *p = s;

	if (*p == '-') {
		neg = true;
		p++;
	}
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (sec > (315576000000LL - (*p - '0')) / 10)
			return -EINVAL; /* beyond +-10000 years */
		sec = sec * 10 + (*p - '0');
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
			if (digits >= 9)
				return -EINVAL;
			ns = ns * 10 + (*p - '0');
		}
		if (digits == 0)
			return -EINVAL;
		for (; digits < 9; digits++)
			ns *= 10;
	}
	if (strcmp(p, "s") != 0)
		return -EINVAL;
	*seconds = neg ? -sec : sec;
	*nanos = neg ? -ns : ns;
	return 0;
}

void sk_pbjson_format_duration(int64_t seconds, int32_t nanos, char *buf, size_t len)
{
	bool neg = seconds < 0 || nanos < 0;
	uint64_t s = (uint64_t)(seconds < 0 ? -seconds : seconds);
	uint32_t ns = (uint32_t)(nanos < 0 ? -nanos : nanos);

	if (ns == 0)
		snprintf(buf, len, "%s%" PRIu64 "s", neg ? "-" : "", s);
	else if (ns % 1000000 == 0)
		snprintf(buf, len, "%s%" PRIu64 ".%03us", neg ? "-" : "", s, ns / 1000000);
	else if (ns % 1000 == 0)
		snprintf(buf, len, "%s%" PRIu64 ".%06us", neg ? "-" : "", s, ns / 1000);
	else
		snprintf(buf, len, "%s%" PRIu64 ".%09us", neg ? "-" : "", s, ns);
}

/* ------------------------------------------------------------------------------------ */
/* encoding                                                                              */

struct enc {
	struct sk_pbjson_encode_opts *opts;
	int depth;
};

static json_t *encode_message(struct enc *e, const ProtobufCMessage *m);

static json_t *encode_double(double v)
{
	if (isnan(v))
		return json_string("NaN");
	if (isinf(v))
		return json_string(v > 0 ? "Infinity" : "-Infinity");
	/* Integral values print without a fraction, as protobuf's JSON printer does. */
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		return json_integer((json_int_t)v);
	return json_real(v);
}

static json_t *encode_u64(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return json_string(buf);
}

static json_t *encode_i64(int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return json_string(buf);
}

static json_t *encode_bytes(const ProtobufCBinaryData *b)
{
	char *s = sk_base64_encode(b->data, b->len);
	json_t *j = s ? json_string(s) : NULL;

	free(s);
	return j;
}

static json_t *encode_value(struct enc *e, const ProtobufCFieldDescriptor *f, const void *slot)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)slot);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)slot);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return encode_i64(*(const int64_t *)slot);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return encode_u64(*(const uint64_t *)slot);
	case PROTOBUF_C_TYPE_FLOAT:
		return encode_double(*(const float *)slot);
	case PROTOBUF_C_TYPE_DOUBLE:
		return encode_double(*(const double *)slot);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)slot);
	case PROTOBUF_C_TYPE_ENUM: {
		int32_t v = *(const int32_t *)slot;
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);

		return ev ? json_string(ev->name) : json_integer(v);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)slot;

		return json_string(s ? s : "");
	}
	case PROTOBUF_C_TYPE_BYTES:
		return encode_bytes(slot);
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;

		return sub ? encode_message(e, sub) : json_null();
	}
	}
	return json_null();
}

/* proto3: a singular non-oneof scalar is present when it differs from its zero value. */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *slot)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return *(const uint32_t *)slot == 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)slot == 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)slot == 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)slot == 0;
	case PROTOBUF_C_TYPE_BOOL:
		return !*(const protobuf_c_boolean *)slot;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)slot;

		return s == NULL || *s == '\0';
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)slot)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *)slot == NULL;
	}
	return true;
}

static bool is_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const void *slot = CMEMBER(m, f->offset);

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)CMEMBER(m, f->quantifier_offset) > 0;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)CMEMBER(m, f->quantifier_offset) == f->id;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
		return *(const protobuf_c_boolean *)CMEMBER(m, f->quantifier_offset);
	return !is_default(f, slot);
}

/* Fields whose values are secrets: config_dump shows "[redacted]" instead. */
static bool is_sensitive(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
	static const char *const fields[][2] = {
		{"envoy.extensions.transport_sockets.tls.v3.TlsCertificate", "private_key"},
		{"envoy.extensions.transport_sockets.tls.v3.TlsCertificate", "password"},
		{"envoy.extensions.transport_sockets.tls.v3.TlsSessionTicketKeys", "keys"},
		{"envoy.extensions.transport_sockets.tls.v3.GenericSecret", "secret"},
		{"envoy.extensions.transport_sockets.tls.v3.GenericSecret", "secrets"},
	};
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strcmp(d->name, fields[i][0]) == 0 && strcmp(f->name, fields[i][1]) == 0)
			return true;
	return false;
}

/* Envoy's redaction: every string or bytes leaf of a sensitive value becomes "[redacted]". */
static void redact(json_t *j, const char *key)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach(j, k, v) {
			if (json_is_string(v))
				json_object_set_new(j, k, json_string(strcmp(k, "inline_bytes") == 0
									       ? "W3JlZGFjdGVkXQ=="
									       : "[redacted]"));
			else
				redact(v, k);
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			redact(v, key);
	}
}

static json_t *encode_map(struct enc *e, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	size_t n = *(const size_t *)CMEMBER(m, f->quantifier_offset), i;
	ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)CMEMBER(m, f->offset);
	json_t *obj = json_object();

	for (i = 0; i < n; i++) {
		const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
		json_t *k = encode_value(e, kf, CMEMBER(arr[i], kf->offset));
		char buf[32];
		const char *key = buf;

		if (json_is_string(k))
			key = json_string_value(k);
		else if (json_is_integer(k))
			snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(k));
		else
			key = json_is_true(k) ? "true" : "false";
		json_object_set_new(obj, key, encode_value(e, vf, CMEMBER(arr[i], vf->offset)));
		json_decref(k);
	}
	return obj;
}

static json_t *encode_fields(struct enc *e, const ProtobufCMessage *m, json_t *obj)
{
	const ProtobufCMessageDescriptor *desc = m->descriptor;
	unsigned i;

	for (i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		json_t *v;

		if (!is_present(m, f) &&
		    !(e->opts && e->opts->always_print_primitives &&
		      !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		      (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)))
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)CMEMBER(m, f->quantifier_offset), k;
			const char *arr = *(const char *const *)CMEMBER(m, f->offset);

			if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor)) {
				v = encode_map(e, f, m);
			} else {
				v = json_array();
				for (k = 0; k < n; k++)
					json_array_append_new(v, encode_value(e, f, arr + k * field_size(f)));
			}
		} else {
			v = encode_value(e, f, CMEMBER(m, f->offset));
		}
		if (e->opts && e->opts->redact && is_sensitive(desc, f)) {
			if (json_is_string(v)) {
				json_decref(v);
				v = json_string("[redacted]");
			} else {
				redact(v, f->name);
			}
		}
		json_object_set_new(obj, f->name, v);
	}
	return obj;
}

static const void *wkt_field(const ProtobufCMessage *m, const char *name)
{
	return CMEMBER(m, field_named(m->descriptor, name)->offset);
}

static json_t *encode_any(struct enc *e, const ProtobufCMessage *m)
{
	const char *url = *(char *const *)wkt_field(m, "type_url");
	const ProtobufCBinaryData *b = wkt_field(m, "value");
	const ProtobufCMessageDescriptor *inner_desc;
	ProtobufCMessage *inner;
	json_t *obj, *body;

	if (url == NULL || *url == '\0')
		return json_object();
	inner_desc = sk_proto_registry_find_url(url);
	inner = inner_desc ? protobuf_c_message_unpack(inner_desc, NULL, b->len, b->data) : NULL;
	if (inner == NULL) {
		/* Unknown type (or undecodable bytes): keep them as they are. */
		if (e->opts)
			e->opts->unknown_anys++;
		obj = json_object();
		json_object_set_new(obj, "@type", json_string(url));
		json_object_set_new(obj, "value", encode_bytes(b));
		return obj;
	}
	body = encode_message(e, inner);
	protobuf_c_message_free_unpacked(inner, NULL);
	if (wkt_of(inner_desc) != WKT_NONE) {
		obj = json_object();
		json_object_set_new(obj, "@type", json_string(url));
		json_object_set_new(obj, "value", body);
		return obj;
	}
	obj = json_object();
	json_object_set_new(obj, "@type", json_string(url));
	json_object_update(obj, body);
	json_decref(body);
	return obj;
}

static json_t *encode_timestamp(const ProtobufCMessage *m)
{
	int64_t s = *(const int64_t *)wkt_field(m, "seconds");
	int32_t ns = *(const int32_t *)wkt_field(m, "nanos");
	time_t t = (time_t)s;
	struct tm tm;
	char buf[64], frac[16] = "";

	gmtime_r(&t, &tm);
	if (ns > 0) {
		if (ns % 1000000 == 0)
			snprintf(frac, sizeof(frac), ".%03d", ns / 1000000);
		else if (ns % 1000 == 0)
			snprintf(frac, sizeof(frac), ".%06d", ns / 1000);
		else
			snprintf(frac, sizeof(frac), ".%09d", ns);
	}
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	return json_string(buf);
}

static json_t *encode_wkt_value(struct enc *e, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *desc = m->descriptor;
	unsigned i;

	for (i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];

		if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || !is_present(m, f))
			continue;
		if (strcmp(f->name, "null_value") == 0)
			return json_null();
		return encode_value(e, f, CMEMBER(m, f->offset));
	}
	return json_null();
}

static json_t *encode_message(struct enc *e, const ProtobufCMessage *m)
{
	json_t *out;
	char buf[64];

	if (++e->depth > SK_PBJSON_MAX_DEPTH) {
		e->depth--;
		return json_null();
	}
	switch (wkt_of(m->descriptor)) {
	case WKT_ANY:
		out = encode_any(e, m);
		break;
	case WKT_DURATION:
		sk_pbjson_format_duration(*(const int64_t *)wkt_field(m, "seconds"),
					  *(const int32_t *)wkt_field(m, "nanos"), buf, sizeof(buf));
		out = json_string(buf);
		break;
	case WKT_TIMESTAMP:
		out = encode_timestamp(m);
		break;
	case WKT_STRUCT:
		out = encode_map(e, field_named(m->descriptor, "fields"), m);
		break;
	case WKT_VALUE:
		out = encode_wkt_value(e, m);
		break;
	case WKT_LIST_VALUE: {
		const ProtobufCFieldDescriptor *f = field_named(m->descriptor, "values");
		size_t n = *(const size_t *)CMEMBER(m, f->quantifier_offset), k;
		ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)CMEMBER(m, f->offset);

		out = json_array();
		for (k = 0; k < n; k++)
			json_array_append_new(out, encode_message(e, arr[k]));
		break;
	}
	case WKT_WRAPPER: {
		const ProtobufCFieldDescriptor *f = field_named(m->descriptor, "value");

		out = encode_value(e, f, CMEMBER(m, f->offset));
		break;
	}
	case WKT_FIELD_MASK: {
		const ProtobufCFieldDescriptor *f = field_named(m->descriptor, "paths");
		size_t n = *(const size_t *)CMEMBER(m, f->quantifier_offset), k, len = 0;
		char *const *arr = *(char *const *const *)CMEMBER(m, f->offset);
		char *s;

		for (k = 0; k < n; k++)
			len += strlen(arr[k]) + 1;
		s = calloc(1, len + 1);
		for (k = 0; s && k < n; k++) {
			if (k)
				strcat(s, ",");
			strcat(s, arr[k]);
		}
		out = json_string(s ? s : "");
		free(s);
		break;
	}
	default:
		out = encode_fields(e, m, json_object());
		break;
	}
	e->depth--;
	return out;
}

json_t *sk_pbjson_encode(const ProtobufCMessage *msg, struct sk_pbjson_encode_opts *opts)
{
	struct enc e = {.opts = opts};

	return encode_message(&e, msg);
}

int sk_pbjson_pack_any(const ProtobufCMessage *msg, char **type_url, ProtobufCBinaryData *value)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	size_t ulen = strlen(TYPE_URL_PREFIX) + strlen(msg->descriptor->name) + 1;

	*type_url = malloc(ulen);
	value->data = malloc(n ? n : 1);
	if (*type_url == NULL || value->data == NULL) {
		free(*type_url);
		free(value->data);
		return -ENOMEM;
	}
	snprintf(*type_url, ulen, "%s%s", TYPE_URL_PREFIX, msg->descriptor->name);
	value->len = protobuf_c_message_pack(msg, value->data);
	return 0;
}

/* Deep copy through the wire format (protobuf-c has no copy function). */
static ProtobufCMessage *copy_message(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	ProtobufCMessage *out;

	if (buf == NULL)
		return NULL;
	protobuf_c_message_pack(m, buf);
	out = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
	free(buf);
	return out;
}

/* Copies one value of field f from src slot to dst slot (dst holds nothing to free). */
static int copy_value(const ProtobufCFieldDescriptor *f, void *dst, const void *src)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		*(char **)dst = strdup(*(char *const *)src ? *(char *const *)src : "");
		return *(char **)dst ? 0 : -ENOMEM;
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *s = src;
		ProtobufCBinaryData *d = dst;

		d->len = s->len;
		d->data = malloc(s->len ? s->len : 1);
		if (d->data == NULL)
			return -ENOMEM;
		if (s->len)
			memcpy(d->data, s->data, s->len);
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		*(ProtobufCMessage **)dst = copy_message(*(ProtobufCMessage *const *)src);
		return *(ProtobufCMessage **)dst ? 0 : -ENOMEM;
	default:
		memcpy(dst, src, field_size(f));
		return 0;
	}
}

/* Frees the value held in one slot of field f (string, bytes or message). */
static void free_slot(const ProtobufCFieldDescriptor *f, void *slot)
{
	if (f->type == PROTOBUF_C_TYPE_STRING) {
		if (*(char **)slot != f->default_value)
			free(*(char **)slot);
	} else if (f->type == PROTOBUF_C_TYPE_BYTES) {
		free(((ProtobufCBinaryData *)slot)->data);
	} else if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(ProtobufCMessage **)slot) {
		protobuf_c_message_free_unpacked(*(ProtobufCMessage **)slot, NULL);
	}
	memset(slot, 0, field_size(f));
}

static int merge_into(ProtobufCMessage *dst, const ProtobufCMessage *src);

static int merge_field(ProtobufCMessage *dst, const ProtobufCMessage *src, const ProtobufCFieldDescriptor *f)
{
	const void *sslot = CMEMBER(src, f->offset);
	void *dslot = MEMBER(dst, f->offset);

	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t ns = *(const size_t *)CMEMBER(src, f->quantifier_offset), k;
		size_t *nd = MEMBER(dst, f->quantifier_offset), sz = field_size(f);
		const char *sarr = *(const char *const *)sslot;
		char *grown;

		if (ns == 0)
			return 0;
		grown = realloc(*(char **)dslot, (*nd + ns) * sz);
		if (grown == NULL)
			return -ENOMEM;
		*(char **)dslot = grown;
		for (k = 0; k < ns; k++) {
			if (copy_value(f, grown + (*nd) * sz, sarr + k * sz) < 0)
				return -ENOMEM;
			(*nd)++;
		}
		return 0;
	}
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *dcase = MEMBER(dst, f->quantifier_offset);
		unsigned k;

		if (*(const uint32_t *)CMEMBER(src, f->quantifier_offset) != f->id)
			return 0;
		if (*dcase == f->id && f->type == PROTOBUF_C_TYPE_MESSAGE && *(ProtobufCMessage **)dslot)
			return merge_into(*(ProtobufCMessage **)dslot, *(ProtobufCMessage *const *)sslot);
		for (k = 0; *dcase && k < dst->descriptor->n_fields; k++)
			if (dst->descriptor->fields[k].id == *dcase)
				free_slot(&dst->descriptor->fields[k], MEMBER(dst, f->offset));
		*dcase = f->id;
		return copy_value(f, dslot, sslot);
	}
	if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		if (*(ProtobufCMessage *const *)sslot == NULL)
			return 0;
		if (*(ProtobufCMessage **)dslot)
			return merge_into(*(ProtobufCMessage **)dslot, *(ProtobufCMessage *const *)sslot);
		return copy_value(f, dslot, sslot);
	}
	if (!is_present(src, f))
		return 0; /* proto3: a default scalar does not overwrite */
	free_slot(f, dslot);
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
		*(protobuf_c_boolean *)MEMBER(dst, f->quantifier_offset) = 1;
	return copy_value(f, dslot, sslot);
}

static int merge_into(ProtobufCMessage *dst, const ProtobufCMessage *src)
{
	unsigned i;

	for (i = 0; i < src->descriptor->n_fields; i++)
		if (merge_field(dst, src, &src->descriptor->fields[i]) < 0)
			return -ENOMEM;
	return 0;
}

/* MergeFrom on protobuf-c structs. (Parsing concatenated serializations is not enough:
 * protobuf-c replaces a oneof member instead of merging it.) */
ProtobufCMessage *sk_pbjson_merge(const ProtobufCMessage *base, const ProtobufCMessage *overlay)
{
	ProtobufCMessage *out;

	if (base->descriptor != overlay->descriptor)
		return NULL;
	out = copy_message(base);
	if (out != NULL && merge_into(out, overlay) < 0) {
		protobuf_c_message_free_unpacked(out, NULL);
		return NULL;
	}
	return out;
}

json_t *sk_pbjson_any_json(const ProtobufCMessage *msg)
{
	struct sk_pbjson_encode_opts eo = {.redact = true};
	json_t *body = sk_pbjson_encode(msg, &eo), *out = json_object();
	char url[256];

	snprintf(url, sizeof(url), "type.googleapis.com/%s", msg->descriptor->name);
	json_object_set_new(out, "@type", json_string(url));
	json_object_update(out, body);
	json_decref(body);
	return out;
}

json_t *sk_pbjson_any_json_bytes(const ProtobufCMessageDescriptor *d, const uint8_t *bytes, size_t len)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, bytes);
	json_t *out;
	char url[256];

	if (m == NULL) {
		snprintf(url, sizeof(url), "type.googleapis.com/%s", d->name);
		out = json_object();
		json_object_set_new(out, "@type", json_string(url));
		return out;
	}
	out = sk_pbjson_any_json(m);
	protobuf_c_message_free_unpacked(m, NULL);
	return out;
}

json_t *sk_pbjson_timestamp(time_t t)
{
	struct tm tm;
	char buf[64];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}
