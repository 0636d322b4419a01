/* http_inspect_fuzz: http_inspector on arbitrary bytes, fed as the peeked prefix grows. No
 * read outside the bytes given; DONE names one of the three protocols; a decision, once
 * made, is the one every longer prefix gets; ERROR only at the size limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/listener/inspector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum sk_inspect_result run(const uint8_t *data, size_t n, const char **proto)
{
	uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
	enum sk_inspect_result r;

	if (n > 0)
		memcpy(copy, data, n);
	*proto = NULL;
	r = sk_http_inspect(copy, n, proto);
	free(copy);
	if (r == SK_INSPECT_DONE &&
	    (*proto == NULL || (strcmp(*proto, "http/1.0") != 0 && strcmp(*proto, "http/1.1") != 0 &&
				strcmp(*proto, "h2c") != 0)))
		abort();
	if (r == SK_INSPECT_ERROR && n < SK_HTTP_INSPECT_MAX)
		abort();
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum sk_inspect_result decided = SK_INSPECT_NEED_MORE, r;
	const char *first = NULL, *proto;
	size_t step = size <= 512 ? 1 : size / 128, n;

	for (n = 0;; n += step) {
		if (n > size)
			n = size;
		r = run(data, n, &proto);
		if (decided == SK_INSPECT_NEED_MORE && r != SK_INSPECT_NEED_MORE) {
			decided = r;
			first = proto;
		} else if (decided != SK_INSPECT_NEED_MORE && decided != SK_INSPECT_ERROR) {
			if (r != decided || (r == SK_INSPECT_DONE && strcmp(first, proto) != 0))
				abort();
		}
		if (n == size)
			break;
	}
	return 0;
}
