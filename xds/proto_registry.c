/* proto_registry: binary search over the generated, name-sorted descriptor table. */
#include "xds/proto_registry.h"

#include <string.h>

extern const ProtobufCMessageDescriptor *const sk__proto_descriptors[];
extern const size_t sk__proto_descriptor_count;

const ProtobufCMessageDescriptor *sk_proto_registry_find(const char *full_name)
{
	size_t lo = 0, hi = sk__proto_descriptor_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(full_name, sk__proto_descriptors[mid]->name);

		if (c == 0)
			return sk__proto_descriptors[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const ProtobufCMessageDescriptor *sk_proto_registry_find_url(const char *type_url)
{
	const char *slash = strrchr(type_url, '/');

	return sk_proto_registry_find(slash ? slash + 1 : type_url);
}

size_t sk_proto_registry_count(void)
{
	return sk__proto_descriptor_count;
}

const ProtobufCMessageDescriptor *sk_proto_registry_at(size_t i)
{
	return i < sk__proto_descriptor_count ? sk__proto_descriptors[i] : NULL;
}
