/* resource: xDS type URLs, names and content versions. See resource.h. */
#include "xds/resource.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *url;
	const char *shortname;
	bool wildcard;
} known_types[] = {
	{SK_TYPE_URL_CLUSTER, "cds", true},
	{SK_TYPE_URL_ENDPOINT, "eds", false},
	{SK_TYPE_URL_LISTENER, "lds", true},
	{SK_TYPE_URL_ROUTE, "rds", false},
	{SK_TYPE_URL_SECRET, "sds", false},
	{SK_TYPE_URL_ECDS, "ecds", false},
};

#define N_KNOWN_TYPES (sizeof(known_types) / sizeof(known_types[0]))

static int known_index(const char *type_url)
{
	size_t i;

	for (i = 0; type_url != NULL && i < N_KNOWN_TYPES; i++)
		if (strcmp(type_url, known_types[i].url) == 0)
			return (int)i;
	return -1;
}

int sk_xds_type_rank(const char *type_url)
{
	int i = known_index(type_url);

	return i < 0 || i > 4 ? 5 : i;
}

const char *sk_xds_type_short(const char *type_url)
{
	int i = known_index(type_url);

	return i < 0 ? NULL : known_types[i].shortname;
}

bool sk_xds_type_is_wildcard(const char *type_url)
{
	int i = known_index(type_url);

	return i >= 0 && known_types[i].wildcard;
}

const char *sk_xds_resource_name(const ProtobufCMessage *msg)
{
	static const char *const fields[] = {"name", "cluster_name"};
	const ProtobufCFieldDescriptor *f;
	const char *s;
	size_t i;

	if (msg == NULL)
		return NULL;
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		f = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, fields[i]);
		if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
			continue;
		s = *(const char *const *)((const char *)msg + f->offset);
		return s != NULL && s[0] != '\0' ? s : NULL;
	}
	return NULL;
}

void sk_xds_resource_version_of(const uint8_t *data, size_t len, char out[SK_XDS_VERSION_HEX_LEN])
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= data[i];
		h *= 0x100000001b3ull;
	}
	snprintf(out, SK_XDS_VERSION_HEX_LEN, "%016llx", (unsigned long long)h);
}

/* Reads a base-128 varint at *p (< end). Returns 0 or -EINVAL. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	unsigned shift;

	*v = 0;
	for (shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -EINVAL;
		*v |= (uint64_t)(**p & 0x7f) << shift;
		if ((*(*p)++ & 0x80) == 0)
			return 0;
	}
	return -EINVAL;
}

/* Skips the value of one field of wire type `wt`. Returns 0 or -EINVAL. */
static int skip_value(const uint8_t **p, const uint8_t *end, unsigned wt)
{
	uint64_t v;

	switch (wt) {
	case 0:
		return read_varint(p, end, &v);
	case 1:
		if (end - *p < 8)
			return -EINVAL;
		*p += 8;
		return 0;
	case 2:
		if (read_varint(p, end, &v) < 0 || v > (uint64_t)(end - *p))
			return -EINVAL;
		*p += v;
		return 0;
	case 5:
		if (end - *p < 4)
			return -EINVAL;
		*p += 4;
		return 0;
	default: /* groups (3, 4) are not used by any xDS message */
		return -EINVAL;
	}
}

int sk_xds_wire_find_bytes(const uint8_t *data, size_t len, uint32_t field, const uint8_t **out,
			   size_t *out_len)
{
	const uint8_t *p = data, *end = data + len;
	uint64_t key, n;

	while (p < end) {
		if (read_varint(&p, end, &key) < 0)
			return -EINVAL;
		if ((key >> 3) == field && (key & 7) == 2) {
			if (read_varint(&p, end, &n) < 0 || n > (uint64_t)(end - p))
				return -EINVAL;
			*out = p;
			*out_len = (size_t)n;
			return 0;
		}
		if (skip_value(&p, end, (unsigned)(key & 7)) < 0)
			return -EINVAL;
	}
	return -ENOENT;
}
