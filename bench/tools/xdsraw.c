/* xdsraw: proto3 JSON resources -> the test xDS server's raw form, for bench/xds.sh.
 *
 *   xdsraw IN.jsonl OUT.json
 *
 * IN has one resource a line, an object with "@type" (what bench/tools/xdsgen.py writes).
 * Each is encoded once, here, with the same proto3 JSON decoder the server uses
 * (xds/pbjson.c), and written as {"@type": URL, "@name": NAME, "@bytes": BASE64} into
 * {"resources": [...]}. build/xds/server/skiff-xds-server then serves the bytes as they are:
 * it loads 10k clusters in a fraction of a second instead of re-decoding tens of MB of JSON
 * on every SIGHUP (which took several seconds here and would swamp a 1 s churn period). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "skiff_protos.h"
#include "xds/base64.h"
#include "xds/pbjson.h"

int main(int argc, char **argv)
{
	FILE *in, *out;
	char *line = NULL, err[512];
	size_t cap = 0, n = 0;
	ssize_t len;

	if (argc != 3) {
		fprintf(stderr, "usage: xdsraw IN.jsonl OUT.json\n");
		return 2;
	}
	if ((in = fopen(argv[1], "r")) == NULL || (out = fopen(argv[2], "w")) == NULL) {
		fprintf(stderr, "xdsraw: %s\n", strerror(errno));
		return 1;
	}
	fputs("{\"resources\": [\n", out);
	while ((len = getline(&line, &cap, in)) > 0) {
		struct sk_pbjson_decode_opts opts = {0};
		json_error_t jerr;
		json_t *j, *nm;
		Google__Protobuf__Any *any;
		const char *name;
		char *b64, *name_json;

		if (len <= 1)
			continue;
		if ((j = json_loadb(line, (size_t)len, 0, &jerr)) == NULL) {
			fprintf(stderr, "xdsraw: line %zu: %s\n", n + 1, jerr.text);
			return 1;
		}
		nm = json_object_get(j, "name");
		if (nm == NULL)
			nm = json_object_get(j, "cluster_name");
		name = json_string_value(nm);
		any = (Google__Protobuf__Any *)sk_pbjson_decode(&google__protobuf__any__descriptor, j, &opts, err,
								sizeof(err));
		if (any == NULL || name == NULL) {
			fprintf(stderr, "xdsraw: line %zu: %s\n", n + 1, any ? "no name" : err);
			return 1;
		}
		b64 = sk_base64_encode(any->value.data, any->value.len);
		name_json = json_dumps(json_pack("[s]", name), JSON_COMPACT);
		if (b64 == NULL || name_json == NULL) {
			fprintf(stderr, "xdsraw: out of memory\n");
			return 1;
		}
		/* name_json is ["NAME"]: the string, escaped, between the brackets */
		name_json[strlen(name_json) - 1] = '\0';
		fprintf(out, "%s{\"@type\": \"%s\", \"@name\": %s, \"@bytes\": \"%s\"}\n", n ? "," : "", any->type_url,
			name_json + 1, b64);
		free(b64);
		free(name_json);
		protobuf_c_message_free_unpacked(&any->base, NULL);
		json_decref(j);
		n++;
	}
	fputs("]}\n", out);
	free(line);
	fclose(in);
	if (fclose(out) != 0) {
		fprintf(stderr, "xdsraw: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	return 0;
}
