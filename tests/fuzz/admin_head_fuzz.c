/* admin_head_fuzz: the admin request-head parser on arbitrary bytes. Whatever it accepts
 * must describe bytes inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/admin/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sk_admin_head h;
	char *copy = malloc(size ? size : 1); /* exact size: ASan sees any overread */

	memcpy(copy, data, size);
	if (sk_admin_parse_head(copy, size, 4096, &h) == SK_ADMIN_HEAD_DONE) {
		if (h.head_len > size || h.target < copy || h.target + h.target_len > copy + size ||
		    strlen(h.method) == 0)
			abort();
	}
	free(copy);
	return 0;
}
