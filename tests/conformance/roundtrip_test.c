/* roundtrip_test: real istiod/pilot-agent output (../shared/conformance) decodes strictly
 * through the converter and encodes back unchanged in meaning.
 *
 * "Unchanged in meaning": the same members with equal values, where a member absent on one
 * side must hold a proto3 default (0, false, "", [], {}) on the other, and numbers compare by
 * value whether written as numbers or as strings (64-bit integers). */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>

#include "test.h"
#include "skiff_protos.h"
#include "xds/pbjson.h"
#include "xds/proto_registry.h"

static char where[1024];

static bool is_default(json_t *v)
{
	return json_is_null(v) || json_is_false(v) ||
	       (json_is_integer(v) && json_integer_value(v) == 0) ||
	       (json_is_real(v) && json_real_value(v) == 0) ||
	       (json_is_string(v) && (json_string_length(v) == 0 || strcmp(json_string_value(v), "0") == 0)) ||
	       (json_is_array(v) && json_array_size(v) == 0) ||
	       (json_is_object(v) && json_object_size(v) == 0);
}

static bool number_of(json_t *v, double *out)
{
	char *end;

	if (json_is_number(v)) {
		*out = json_number_value(v);
		return true;
	}
	if (json_is_string(v)) {
		*out = strtod(json_string_value(v), &end);
		return *json_string_value(v) && *end == '\0';
	}
	return false;
}

/* Durations: "0.250s" == "0.25s". */
static bool same_duration(json_t *a, json_t *b)
{
	int64_t sa, sb;
	int32_t na, nb;

	return json_is_string(a) && json_is_string(b) &&
	       sk_pbjson_parse_duration(json_string_value(a), &sa, &na) == 0 &&
	       sk_pbjson_parse_duration(json_string_value(b), &sb, &nb) == 0 && sa == sb && na == nb;
}

/* An enum written by name is the default when its number is 0. */
static bool is_default_enum(const ProtobufCFieldDescriptor *f, json_t *v)
{
	const ProtobufCEnumValue *ev;

	if (f == NULL || f->type != PROTOBUF_C_TYPE_ENUM || !json_is_string(v))
		return false;
	ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, json_string_value(v));
	return ev != NULL && ev->value == 0;
}

/* The message type of a member: the field's, or the Any's "@type". */
static const ProtobufCMessageDescriptor *member_type(const ProtobufCFieldDescriptor *f, json_t *v)
{
	json_t *t = json_is_object(v) ? json_object_get(v, "@type") : NULL;

	if (json_is_string(t))
		return sk_proto_registry_find_url(json_string_value(t));
	return f && f->type == PROTOBUF_C_TYPE_MESSAGE ? f->descriptor : NULL;
}

static bool same_meaning(json_t *a, json_t *b, const char *path, const ProtobufCMessageDescriptor *d)
{
	double x, y;
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(a) && json_is_object(b)) {
		const ProtobufCMessageDescriptor *self = member_type(NULL, a);

		if (self != NULL)
			d = self;
		json_object_foreach(a, k, v) {
			char sub[1024];
			json_t *w = json_object_get(b, k);
			const ProtobufCFieldDescriptor *f = d ? protobuf_c_message_descriptor_get_field_by_name(d, k) : NULL;
			const ProtobufCMessageDescriptor *cd = member_type(f, v);

			/* map<string, Message>: the values are of the entry's value type */
			if (cd && cd->n_fields == 2 && strcmp(cd->fields[0].name, "key") == 0 &&
			    json_is_object(v))
				cd = NULL;
			snprintf(sub, sizeof(sub), "%.900s.%.100s", path, k);
			if (w == NULL) {
				if (!is_default(v) && !is_default_enum(f, v)) {
					snprintf(where, sizeof(where), "%.1000s: missing", sub);
					return false;
				}
			} else if (!same_meaning(v, w, sub, cd)) {
				return false;
			}
		}
		json_object_foreach(b, k, v) {
			if (json_object_get(a, k) == NULL && !is_default(v)) {
				snprintf(where, sizeof(where), "%s.%s: added", path, k);
				return false;
			}
		}
		return true;
	}
	if (json_is_array(a) && json_is_array(b)) {
		if (json_array_size(a) != json_array_size(b)) {
			snprintf(where, sizeof(where), "%s: %zu elements became %zu", path,
				 json_array_size(a), json_array_size(b));
			return false;
		}
		json_array_foreach(a, i, v) {
			char sub[1024];

			snprintf(sub, sizeof(sub), "%.1000s[%zu]", path, i);
			if (!same_meaning(v, json_array_get(b, i), sub, d))
				return false;
		}
		return true;
	}
	if (json_equal(a, b) || same_duration(a, b))
		return true;
	if (number_of(a, &x) && number_of(b, &y) && (x == y || (isnan(x) && isnan(y))))
		return true;
	snprintf(where, sizeof(where), "%s: values differ", path);
	return false;
}

/* Decodes file as `desc` strictly, re-encodes, compares; counts one check per file. */
static void roundtrip(const char *path, const ProtobufCMessageDescriptor *desc)
{
	json_error_t je;
	json_t *in = json_load_file(path, 0, &je), *out;
	ProtobufCMessage *m;
	char err[1024];

	if (in == NULL) {
		SKIP("%s: %s", path, je.text);
		return;
	}
	m = sk_pbjson_decode(desc, in, NULL, err, sizeof(err));
	CHECK(m != NULL);
	if (m == NULL) {
		fprintf(stderr, "  %s: %s\n", path, err);
		json_decref(in);
		return;
	}
	out = sk_pbjson_encode(m, NULL);
	where[0] = '\0';
	CHECK(same_meaning(in, out, "", desc));
	if (where[0])
		fprintf(stderr, "  %s: %s\n", path, where);
	/* and the binary form survives a pack/unpack cycle with the same JSON */
	{
		size_t n = protobuf_c_message_get_packed_size(m);
		uint8_t *buf = malloc(n + 1);
		ProtobufCMessage *again;
		json_t *out2;

		protobuf_c_message_pack(m, buf);
		again = protobuf_c_message_unpack(desc, NULL, n, buf);
		out2 = again ? sk_pbjson_encode(again, NULL) : NULL;
		CHECK(out2 && json_equal(out, out2));
		json_decref(out2);
		if (again)
			protobuf_c_message_free_unpacked(again, NULL);
		free(buf);
	}
	json_decref(out);
	json_decref(in);
	protobuf_c_message_free_unpacked(m, NULL);
}

static void each_file(const char *dir, const char *suffix, const ProtobufCMessageDescriptor *desc)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), i;

	if (n < 0) {
		SKIP("%s: not found", dir);
		return;
	}
	for (i = 0; i < n; i++) {
		size_t len = strlen(names[i]->d_name), sl = strlen(suffix);
		char path[1024];

		if (len > sl && strcmp(names[i]->d_name + len - sl, suffix) == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			roundtrip(path, desc);
		}
		free(names[i]);
	}
	free(names);
}

int main(void)
{
	char dir[1024];

	snprintf(dir, sizeof(dir), "%s/istio/bootstrap", sk_test_conformance_dir());
	each_file(dir, "_golden.json", &envoy__config__bootstrap__v3__bootstrap__descriptor);
	snprintf(dir, sizeof(dir), "%s/istio/configdump", sk_test_conformance_dir());
	each_file(dir, ".json", &envoy__admin__v3__config_dump__descriptor);
	return TEST_SUMMARY();
}
