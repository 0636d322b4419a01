/* yaml_json_test: YAML -> JSON with the YAML 1.2 core schema, anchors, and errors. */
#include <stdlib.h>

#include "test.h"
#include "xds/yaml_json.h"

static char *convert(const char *yaml, char *err, size_t errlen)
{
	json_t *j = sk_yaml_parse(yaml, strlen(yaml), err, errlen);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;

	json_decref(j);
	return s;
}

int main(void)
{
	char err[256], *s;

	s = convert("a: 1\nb: -2\nc: 1.5\nd: true\ne: False\nf: ~\ng: null\nh: hello\ni: '42'\nj: \"true\"\n"
		    "k: 0x1F\nl: 0o17\nm: .inf\nn: -.Inf\no: .nan\np: 1e3\nq: 18446744073709551615\nr: 10.0.0.1\n"
		    "s: 0.250s\nt:\n", err, sizeof(err));
	CHECK_STR(s, "{\"a\":1,\"b\":-2,\"c\":1.5,\"d\":true,\"e\":false,\"f\":null,\"g\":null,\"h\":\"hello\","
		     "\"i\":\"42\",\"j\":\"true\",\"k\":31,\"l\":15,\"m\":\"Infinity\",\"n\":\"-Infinity\","
		     "\"o\":\"NaN\",\"p\":1000.0,\"q\":\"18446744073709551615\",\"r\":\"10.0.0.1\","
		     "\"s\":\"0.250s\",\"t\":null}");
	free(s);

	s = convert("list:\n- a\n- {x: 1, y: [1, 2]}\n- - nested\n", err, sizeof(err));
	CHECK_STR(s, "{\"list\":[\"a\",{\"x\":1,\"y\":[1,2]},[\"nested\"]]}");
	free(s);

	s = convert("base: &b {port: 80}\ncopy: *b\n", err, sizeof(err));
	CHECK_STR(s, "{\"base\":{\"port\":80},\"copy\":{\"port\":80}}");
	free(s);

	/* an anchor defined twice: the alias takes the latest (and nothing leaks) */
	s = convert("a: &c {x: 1}\nb: &c {y: 2}\nd: *c\n", err, sizeof(err));
	CHECK_STR(s, "{\"a\":{\"x\":1},\"b\":{\"y\":2},\"d\":{\"y\":2}}");
	free(s);

	s = convert("", err, sizeof(err));
	CHECK_STR(s, "{}");
	free(s);

	s = convert("{\"json\": [1, 2, {\"ok\": true}]}", err, sizeof(err));
	CHECK_STR(s, "{\"json\":[1,2,{\"ok\":true}]}");
	free(s);

	s = convert("a: [1, 2\nb: 3\n", err, sizeof(err));
	CHECK(s == NULL);
	CHECK_CONTAINS(err, "line ");
	free(s);

	s = convert("a: *missing\n", err, sizeof(err));
	CHECK(s == NULL);
	free(s);

	s = convert("? [complex, key]\n: v\n", err, sizeof(err));
	CHECK(s == NULL);
	CHECK_CONTAINS(err, "mapping keys must be scalars");

	{
		/* nesting is bounded */
		char deep[1024];
		int i;

		for (i = 0; i < 300; i++)
			deep[i] = '[';
		deep[300] = '\0';
		s = convert(deep, err, sizeof(err));
		CHECK(s == NULL);
		free(s);
	}
	return TEST_SUMMARY();
}
