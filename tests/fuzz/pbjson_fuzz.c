/* pbjson_fuzz: JSON text -> Bootstrap through the converter (strict and lenient), then back
 * to JSON, and the result must decode again. */
#include <stdint.h>
#include <stdlib.h>

#include "skiff_protos.h"
#include "xds/pbjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *d = &envoy__config__bootstrap__v3__bootstrap__descriptor;
	struct sk_pbjson_decode_opts lenient = {.allow_unknown = true};
	json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	ProtobufCMessage *m;
	char err[512];

	if (j == NULL)
		return 0;
	m = sk_pbjson_decode(d, j, NULL, err, sizeof(err));
	if (m == NULL)
		m = sk_pbjson_decode(d, j, &lenient, err, sizeof(err));
	if (m != NULL) {
		json_t *out = sk_pbjson_encode(m, NULL);
		ProtobufCMessage *again = sk_pbjson_decode(d, out, &lenient, err, sizeof(err));

		/* What we write, we read. */
		if (again == NULL)
			abort();
		protobuf_c_message_free_unpacked(again, NULL);
		json_decref(out);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	json_decref(j);
	return 0;
}
