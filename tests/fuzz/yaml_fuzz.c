/* yaml_fuzz: YAML text -> JSON tree, bounded and leak-free whatever the input. */
#include <stdint.h>

#include "xds/yaml_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *j = sk_yaml_parse((const char *)data, size, err, sizeof(err));

	json_decref(j);
	return 0;
}
