/* proto_fuzz: arbitrary bytes as a DiscoveryResponse (what a control plane sends) and as a
 * Bootstrap, written as proto3 JSON the way /config_dump does (Any resources unpacked
 * through the registry, secrets redacted). */
#include <stdint.h>

#include "skiff_protos.h"
#include "xds/pbjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size, data);
	struct sk_pbjson_encode_opts eo = {.redact = true};

	if (m != NULL) {
		json_decref(sk_pbjson_encode(m, &eo));
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(&envoy__service__discovery__v3__discovery_response__descriptor, data, size);
	one(&envoy__config__bootstrap__v3__bootstrap__descriptor, data, size);
	return 0;
}
