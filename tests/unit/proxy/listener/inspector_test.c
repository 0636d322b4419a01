/* inspector_test: tls_inspector on ClientHellos captured from openssl s_client (OpenSSL 3.0,
 * loopback) and on hellos built here to hit each rule; http_inspector on request lines and
 * the h2c preface. Every input is copied into an exact-size heap buffer so that ASan sees a
 * read past the bytes the caller peeked. */
#include "test.h"
#include "proxy/listener/inspector.h"

#include <stdint.h>

struct len_field {
	size_t off;
	int width;
	char kind; /* 's': breaks the structure when changed; 'a': inside ALPN (ignored list) */
};

/* openssl s_client (OpenSSL 3.0) captured on loopback: tls13_sni_alpn_istio */
static const uint8_t hello_istio[] = {
	0x16, 0x03, 0x01, 0x01, 0x6e, 0x01, 0x00, 0x01, 0x6a, 0x03, 0x03, 0x76,
	0x64, 0x96, 0x99, 0x00, 0xe6, 0x76, 0x17, 0xd1, 0x6b, 0x0a, 0xa1, 0xc3,
	0x68, 0x5f, 0xfc, 0xe8, 0xe6, 0x72, 0xb6, 0x24, 0x35, 0x5c, 0x19, 0x25,
	0xbb, 0x1d, 0x27, 0x35, 0xf0, 0xf2, 0x0a, 0x20, 0xd1, 0xd0, 0xfa, 0x1f,
	0xa1, 0x4f, 0x99, 0x5b, 0x43, 0x33, 0x22, 0xa4, 0x8c, 0xe2, 0x53, 0x0b,
	0xfa, 0xf9, 0xe9, 0xd9, 0x7f, 0x14, 0x51, 0x9d, 0xc6, 0xff, 0x5e, 0x93,
	0x88, 0x1e, 0xf8, 0xb1, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
	0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
	0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b,
	0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
	0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
	0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xe3,
	0x00, 0x00, 0x00, 0x26, 0x00, 0x24, 0x00, 0x00, 0x21, 0x52, 0x65, 0x76,
	0x69, 0x65, 0x77, 0x73, 0x2e, 0x44, 0x65, 0x66, 0x61, 0x75, 0x6c, 0x74,
	0x2e, 0x73, 0x76, 0x63, 0x2e, 0x63, 0x6c, 0x75, 0x73, 0x74, 0x65, 0x72,
	0x2e, 0x6c, 0x6f, 0x63, 0x61, 0x6c, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00,
	0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17,
	0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02,
	0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x10, 0x00, 0x1c,
	0x00, 0x1a, 0x13, 0x69, 0x73, 0x74, 0x69, 0x6f, 0x2d, 0x70, 0x65, 0x65,
	0x72, 0x2d, 0x65, 0x78, 0x63, 0x68, 0x61, 0x6e, 0x67, 0x65, 0x05, 0x69,
	0x73, 0x74, 0x69, 0x6f, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00,
	0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03,
	0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04,
	0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03,
	0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b,
	0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00,
	0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00,
	0x1d, 0x00, 0x20, 0xae, 0xcf, 0x22, 0x6a, 0x97, 0xf9, 0x0f, 0xde, 0x71,
	0x5e, 0x3d, 0x64, 0xa1, 0xca, 0x31, 0x67, 0x2f, 0x7c, 0xc3, 0x66, 0x79,
	0x2c, 0x19, 0x79, 0x43, 0x1a, 0xf1, 0x01, 0xed, 0x21, 0x99, 0x3b,
};
static const struct len_field hello_istio_fields[] = {
	{3, 2, 's'}, {6, 3, 's'}, {43, 1, 's'}, {76, 2, 's'}, {140, 1, 's'}, {142, 2, 's'},
	{146, 2, 's'}, {148, 2, 's'}, {151, 2, 's'}, {188, 2, 's'}, {196, 2, 's'}, {222, 2, 's'},
	{226, 2, 's'}, {228, 2, 'a'}, {230, 1, 'a'}, {250, 1, 'a'}, {258, 2, 's'}, {262, 2, 's'},
	{266, 2, 's'}, {312, 2, 's'}, {314, 1, 's'}, {325, 2, 's'}, {331, 2, 's'},
};

/* openssl s_client (OpenSSL 3.0) captured on loopback: tls13_sni_alpn_h2 */
static const uint8_t hello_h2[] = {
	0x16, 0x03, 0x01, 0x01, 0x4e, 0x01, 0x00, 0x01, 0x4a, 0x03, 0x03, 0x70,
	0xbe, 0x36, 0x7a, 0x58, 0xb8, 0xe9, 0xc1, 0x7a, 0xe7, 0xd7, 0x2a, 0xf2,
	0x6f, 0xde, 0x8c, 0x83, 0x18, 0x4c, 0xce, 0xb8, 0xd2, 0xd4, 0x60, 0xc2,
	0x63, 0xd0, 0x8e, 0x3e, 0x71, 0x91, 0x23, 0x20, 0x73, 0xee, 0x7b, 0x09,
	0x64, 0x78, 0x36, 0x7b, 0x0d, 0x3f, 0x61, 0x91, 0x5a, 0xde, 0xc1, 0xa3,
	0x40, 0xd0, 0xbe, 0xa3, 0xa1, 0x28, 0xe1, 0x23, 0x96, 0xb5, 0x47, 0x03,
	0xdb, 0xc1, 0x9a, 0xb1, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
	0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
	0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b,
	0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
	0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
	0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xc3,
	0x00, 0x00, 0x00, 0x14, 0x00, 0x12, 0x00, 0x00, 0x0f, 0x66, 0x6f, 0x6f,
	0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d,
	0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16,
	0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18,
	0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23,
	0x00, 0x00, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, 0x68, 0x32, 0x08,
	0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, 0x00, 0x16, 0x00, 0x00,
	0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03,
	0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a,
	0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01,
	0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02,
	0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03,
	0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00,
	0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x23, 0x7f, 0xb9, 0x39, 0x5b,
	0x38, 0x04, 0x3a, 0xec, 0xdc, 0x04, 0x20, 0x74, 0x48, 0xc9, 0x68, 0x70,
	0x9b, 0xff, 0x1f, 0xe0, 0x01, 0x57, 0xfd, 0x5d, 0x6a, 0x28, 0x83, 0x75,
	0x7e, 0x41, 0x30,
};
static const struct len_field hello_h2_fields[] = {
	{3, 2, 's'}, {6, 3, 's'}, {43, 1, 's'}, {76, 2, 's'}, {140, 1, 's'}, {142, 2, 's'},
	{146, 2, 's'}, {148, 2, 's'}, {151, 2, 's'}, {170, 2, 's'}, {178, 2, 's'}, {204, 2, 's'},
	{208, 2, 's'}, {210, 2, 'a'}, {212, 1, 'a'}, {215, 1, 'a'}, {226, 2, 's'}, {230, 2, 's'},
	{234, 2, 's'}, {280, 2, 's'}, {282, 1, 's'}, {293, 2, 's'}, {299, 2, 's'},
};

/* openssl s_client (OpenSSL 3.0) captured on loopback: tls13_no_sni */
static const uint8_t hello_no_sni[] = {
	0x16, 0x03, 0x01, 0x01, 0x24, 0x01, 0x00, 0x01, 0x20, 0x03, 0x03, 0xfd,
	0x82, 0x75, 0xc1, 0xc7, 0xe7, 0x72, 0x1d, 0x9f, 0xb0, 0x14, 0x45, 0xa3,
	0x22, 0x92, 0x5f, 0xb8, 0x41, 0xa3, 0xcc, 0x67, 0x83, 0xe7, 0x48, 0x08,
	0x72, 0x57, 0xbb, 0x29, 0xc3, 0x7d, 0x03, 0x20, 0x72, 0xec, 0x53, 0x72,
	0x29, 0x97, 0xe0, 0x5f, 0x87, 0x1b, 0x52, 0x59, 0xe7, 0x02, 0xbb, 0xd8,
	0xaa, 0x4d, 0x4a, 0x43, 0xc4, 0x9b, 0xf0, 0x2f, 0x5e, 0x27, 0x44, 0xdf,
	0x4a, 0x9d, 0x34, 0x64, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
	0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
	0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b,
	0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
	0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
	0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x99,
	0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16,
	0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18,
	0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23,
	0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d,
	0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07,
	0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05,
	0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01,
	0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09,
	0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00,
	0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00,
	0x20, 0x24, 0x8a, 0xdd, 0xf1, 0x62, 0x9f, 0x0e, 0xcd, 0xc7, 0x36, 0x95,
	0x7e, 0x81, 0x3e, 0xaa, 0x9e, 0x0d, 0xb6, 0x89, 0x9b, 0x56, 0x15, 0xe3,
	0x0a, 0x63, 0x3b, 0x6e, 0x4b, 0x31, 0x69, 0xdf, 0x65,
};
static const struct len_field hello_no_sni_fields[] = {
	{3, 2, 's'}, {6, 3, 's'}, {43, 1, 's'}, {76, 2, 's'}, {140, 1, 's'}, {142, 2, 's'},
	{146, 2, 's'}, {154, 2, 's'}, {180, 2, 's'}, {184, 2, 's'}, {188, 2, 's'}, {192, 2, 's'},
	{238, 2, 's'}, {240, 1, 's'}, {251, 2, 's'}, {257, 2, 's'},
};

/* openssl s_client (OpenSSL 3.0) captured on loopback: tls12_only */
static const uint8_t hello_tls12[] = {
	0x16, 0x03, 0x01, 0x00, 0xe1, 0x01, 0x00, 0x00, 0xdd, 0x03, 0x03, 0xb2,
	0xdb, 0x07, 0x9c, 0x3e, 0x71, 0x7f, 0x5b, 0x7c, 0xcc, 0x25, 0x5c, 0x7d,
	0xb1, 0x4a, 0x1c, 0x53, 0xa8, 0x00, 0xf3, 0x44, 0x87, 0x91, 0x3f, 0xeb,
	0x36, 0x32, 0xde, 0xfb, 0x91, 0x51, 0x91, 0x00, 0x00, 0x38, 0xc0, 0x2c,
	0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa, 0xc0, 0x2b,
	0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23,
	0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09,
	0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c,
	0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x7c, 0x00, 0x00,
	0x00, 0x17, 0x00, 0x15, 0x00, 0x00, 0x12, 0x6c, 0x65, 0x67, 0x61, 0x63,
	0x79, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f,
	0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00,
	0x0c, 0x00, 0x0a, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00,
	0x18, 0x00, 0x23, 0x00, 0x00, 0x00, 0x10, 0x00, 0x0b, 0x00, 0x09, 0x08,
	0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, 0x00, 0x16, 0x00, 0x00,
	0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03,
	0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a,
	0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01,
	0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02,
	0x06, 0x02,
};
static const struct len_field hello_tls12_fields[] = {
	{3, 2, 's'}, {6, 3, 's'}, {43, 1, 's'}, {44, 2, 's'}, {102, 1, 's'}, {104, 2, 's'},
	{108, 2, 's'}, {110, 2, 's'}, {113, 2, 's'}, {135, 2, 's'}, {143, 2, 's'}, {159, 2, 's'},
	{163, 2, 's'}, {165, 2, 'a'}, {167, 1, 'a'}, {178, 2, 's'}, {182, 2, 's'}, {186, 2, 's'},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct sk_tls_hello hello;

static enum sk_inspect_result tls(const uint8_t *b, size_t n)
{
	uint8_t *copy = malloc(n ? n : 1);
	enum sk_inspect_result r;

	if (n > 0)
		memcpy(copy, b, n);
	memset(&hello, 0xa5, sizeof(hello)); /* DONE must write every field */
	r = sk_tls_inspect(n ? copy : NULL, n, &hello);
	free(copy);
	return r;
}

static enum sk_inspect_result http(const void *b, size_t n, const char **proto)
{
	uint8_t *copy = malloc(n ? n : 1);
	enum sk_inspect_result r;

	if (n > 0)
		memcpy(copy, b, n);
	*proto = NULL;
	r = sk_http_inspect(n ? copy : NULL, n, proto);
	free(copy);
	return r;
}

static const char *http_s(const char *s, enum sk_inspect_result want)
{
	const char *proto;
	enum sk_inspect_result r = http(s, strlen(s), &proto);

	if (r != want)
		fprintf(stderr, "http %d, want %d for \"%s\"\n", r, want, s);
	CHECK(r == want);
	return r == SK_INSPECT_DONE ? proto : NULL;
}

/* Every proper prefix of b[0..n) is undecided, and the whole is DONE. */
static bool prefixes_need_more(const uint8_t *b, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++) {
		if (tls(b, k) != SK_INSPECT_NEED_MORE) {
			fprintf(stderr, "prefix %zu of %zu: not NEED_MORE\n", k, n);
			return false;
		}
	}
	return tls(b, n) == SK_INSPECT_DONE;
}

static bool sane_done(void)
{
	size_t i;

	if (strlen(hello.sni) > 255 || hello.n_alpn > SK_TLS_MAX_ALPN)
		return false;
	for (i = 0; hello.sni[i]; i++)
		if (hello.sni[i] >= 'A' && hello.sni[i] <= 'Z')
			return false;
	for (i = 0; i < hello.n_alpn; i++)
		if (hello.alpn[i][0] == '\0' || strlen(hello.alpn[i]) > 255)
			return false;
	return true;
}

/* ---- building ClientHellos ---- */

struct buf {
	uint8_t b[80000];
	size_t n;
};

static void put(struct buf *w, const void *p, size_t n)
{
	if (n > 0)
		memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void put8(struct buf *w, unsigned v)
{
	w->b[w->n++] = (uint8_t)v;
}

static void put16(struct buf *w, unsigned v)
{
	put8(w, v >> 8);
	put8(w, v);
}

static void ext(struct buf *w, unsigned type, const void *body, size_t n)
{
	put16(w, type);
	put16(w, (unsigned)n);
	put(w, body, n);
}

static void ext_sni(struct buf *w, const char *name, size_t n)
{
	struct buf *e = calloc(1, sizeof(*e));

	put16(e, (unsigned)n + 3);
	put8(e, 0);
	put16(e, (unsigned)n);
	put(e, name, n);
	ext(w, 0, e->b, e->n);
	free(e);
}

static void ext_alpn(struct buf *w, const char *const *names, size_t count)
{
	struct buf *e = calloc(1, sizeof(*e));
	size_t i, total = 0;

	for (i = 0; i < count; i++)
		total += 1 + strlen(names[i]);
	put16(e, (unsigned)total);
	for (i = 0; i < count; i++) {
		put8(e, (unsigned)strlen(names[i]));
		put(e, names[i], strlen(names[i]));
	}
	ext(w, 16, e->b, e->n);
	free(e);
}

static const uint8_t tls13_only[] = {2, 0x03, 0x04};

/* A ClientHello body: version, random, empty session id, the suites, compression methods,
 * then `exts` (NULL: no extension block at all). */
static void body(struct buf *w, unsigned version, const uint8_t *suites, size_t n_suites,
		 const uint8_t *comp, size_t n_comp, const struct buf *exts)
{
	uint8_t random[32];

	memset(random, 0x42, sizeof(random));
	put16(w, version);
	put(w, random, 32);
	put8(w, 0);
	put16(w, (unsigned)n_suites);
	put(w, suites, n_suites);
	put8(w, (unsigned)n_comp);
	put(w, comp, n_comp);
	if (exts) {
		put16(w, (unsigned)exts->n);
		put(w, exts->b, exts->n);
	}
}

/* Frames a handshake message of type 1 around `b` in records of at most `frag` bytes. */
static void frame(struct buf *out, const struct buf *b, size_t frag)
{
	struct buf *hs = calloc(1, sizeof(*hs));
	size_t off;

	put8(hs, 1);
	put8(hs, (unsigned)(b->n >> 16));
	put16(hs, (unsigned)(b->n & 0xffff));
	put(hs, b->b, b->n);
	out->n = 0;
	for (off = 0; off < hs->n; off += frag) {
		size_t k = hs->n - off < frag ? hs->n - off : frag;

		put8(out, 22);
		put16(out, 0x0301);
		put16(out, (unsigned)k);
		put(out, hs->b + off, k);
	}
	free(hs);
}

static const uint8_t suites_std[] = {0x13, 0x01, 0xc0, 0x2f};
static const uint8_t comp_null[] = {0};

/* A TLS 1.3 hello with `exts` plus supported_versions {1.3}, framed in one record. */
static enum sk_inspect_result hello13(const struct buf *extra)
{
	struct buf *e = calloc(1, sizeof(*e)), *b = calloc(1, sizeof(*b));
	struct buf *rec = calloc(1, sizeof(*rec));
	enum sk_inspect_result r;

	if (extra)
		put(e, extra->b, extra->n);
	ext(e, 43, tls13_only, sizeof(tls13_only));
	body(b, 0x0303, suites_std, sizeof(suites_std), comp_null, 1, e);
	frame(rec, b, 16384);
	r = tls(rec->b, rec->n);
	free(e);
	free(b);
	free(rec);
	return r;
}

/* ---- TLS tests ---- */

static void test_captured(void)
{
	CHECK(tls(hello_istio, sizeof(hello_istio)) == SK_INSPECT_DONE);
	CHECK_STR(hello.sni, "reviews.default.svc.cluster.local"); /* sent mixed-case */
	CHECK(hello.n_alpn == 2);
	CHECK_STR(hello.alpn[0], "istio-peer-exchange");
	CHECK_STR(hello.alpn[1], "istio");
	CHECK(hello.has_supported_versions_13);
	CHECK(hello.legacy_version == 0x0303);

	CHECK(tls(hello_h2, sizeof(hello_h2)) == SK_INSPECT_DONE);
	CHECK_STR(hello.sni, "foo.example.com");
	CHECK(hello.n_alpn == 2);
	CHECK_STR(hello.alpn[0], "h2");
	CHECK_STR(hello.alpn[1], "http/1.1");
	CHECK(hello.has_supported_versions_13);

	CHECK(tls(hello_no_sni, sizeof(hello_no_sni)) == SK_INSPECT_DONE);
	CHECK_STR(hello.sni, "");
	CHECK(hello.n_alpn == 0);
	CHECK(hello.has_supported_versions_13);

	CHECK(tls(hello_tls12, sizeof(hello_tls12)) == SK_INSPECT_DONE);
	CHECK_STR(hello.sni, "legacy.example.com");
	CHECK(hello.n_alpn == 1);
	CHECK_STR(hello.alpn[0], "http/1.1");
	CHECK(!hello.has_supported_versions_13);
	CHECK(hello.legacy_version == 0x0303);
}

static void test_every_split_point(void)
{
	CHECK(prefixes_need_more(hello_istio, sizeof(hello_istio)));
	CHECK_STR(hello.sni, "reviews.default.svc.cluster.local");
	CHECK(prefixes_need_more(hello_h2, sizeof(hello_h2)));
	CHECK(prefixes_need_more(hello_no_sni, sizeof(hello_no_sni)));
	CHECK(prefixes_need_more(hello_tls12, sizeof(hello_tls12)));
	CHECK_STR(hello.alpn[0], "http/1.1");
}

/* The captured hello re-framed into two records at every split of the handshake message,
 * and into many small ones. */
static void test_multi_record(void)
{
	const uint8_t *hs = hello_h2 + 5;
	size_t hs_len = sizeof(hello_h2) - 5, k, bad = 0;
	struct buf *w = calloc(1, sizeof(*w)), *b = calloc(1, sizeof(*b));

	for (k = 1; k < hs_len; k++) {
		w->n = 0;
		put8(w, 22), put16(w, 0x0301), put16(w, (unsigned)k), put(w, hs, k);
		put8(w, 22), put16(w, 0x0303), put16(w, (unsigned)(hs_len - k)), put(w, hs + k, hs_len - k);
		if (tls(w->b, w->n) != SK_INSPECT_DONE || strcmp(hello.sni, "foo.example.com") != 0 ||
		    hello.n_alpn != 2 || strcmp(hello.alpn[1], "http/1.1") != 0)
			bad++;
	}
	CHECK(bad == 0);
	/* Every prefix of one such split (at the middle) is undecided. */
	w->n = 0;
	k = hs_len / 2;
	put8(w, 22), put16(w, 0x0301), put16(w, (unsigned)k), put(w, hs, k);
	put8(w, 22), put16(w, 0x0301), put16(w, (unsigned)(hs_len - k)), put(w, hs + k, hs_len - k);
	CHECK(prefixes_need_more(w->b, w->n));

	/* One byte per record, an SSL 3.0 record version (BoringSSL checks only the major). */
	memcpy(b->b, hs + 4, hs_len - 4);
	b->n = hs_len - 4;
	frame(w, b, 1);
	w->b[2] = 0x00;
	CHECK(prefixes_need_more(w->b, w->n));
	CHECK_STR(hello.sni, "foo.example.com");
	w->b[1] = 0x02; /* major version 2 */
	CHECK(tls(w->b, w->n) == SK_INSPECT_NOT_FOUND);
	CHECK(tls(w->b, 2) == SK_INSPECT_NOT_FOUND);

	/* A record of something else in the middle of the hello. */
	frame(w, b, 100);
	w->b[105] = 23;
	CHECK(tls(w->b, w->n) == SK_INSPECT_NOT_FOUND);
	CHECK(tls(w->b, 106) == SK_INSPECT_NOT_FOUND);

	/* Empty records: 32 in a row are tolerated, 33 are not (kMaxEmptyRecords). */
	w->n = 0;
	for (k = 0; k < 32; k++)
		put8(w, 22), put16(w, 0x0301), put16(w, 0);
	put(w, hello_h2, sizeof(hello_h2));
	CHECK(tls(w->b, w->n) == SK_INSPECT_DONE);
	w->n = 0;
	for (k = 0; k < 33; k++)
		put8(w, 22), put16(w, 0x0301), put16(w, 0);
	CHECK(tls(w->b, w->n) == SK_INSPECT_NOT_FOUND);
	free(w);
	free(b);
}

/* What follows the ClientHello's record is not looked at; more bytes inside it are. */
static void test_after_hello(void)
{
	uint8_t *w = malloc(sizeof(hello_h2) + 6);

	memcpy(w, hello_h2, sizeof(hello_h2));
	memcpy(w + sizeof(hello_h2), "\x14\x03\x03\x00\x01\x01", 6); /* ChangeCipherSpec */
	CHECK(tls(w, sizeof(hello_h2) + 6) == SK_INSPECT_DONE);
	CHECK(tls(w, sizeof(hello_h2) + 1) == SK_INSPECT_DONE);
	/* The same byte inside the record: excess handshake data. */
	w[4]++;
	CHECK(tls(w, sizeof(hello_h2) + 1) == SK_INSPECT_NOT_FOUND);
	CHECK(tls(w, sizeof(hello_h2)) == SK_INSPECT_NOT_FOUND); /* judged before it arrives */
	free(w);
}

/* Each length field changed in several ways, on the whole hello and on prefixes: never a
 * read out of bounds (ASan); DONE only where the changed bytes still happen to form a valid
 * hello (an extension absorbing the next one's header), and then never with an invented
 * SNI; a broken ALPN list is ignored as Envoy's onALPN does. */
static void mutate_fields(const uint8_t *orig, size_t n, const struct len_field *f, size_t nf,
			  const char *sni)
{
	static const int deltas[] = {1, -1, 2, -2, 0x100, -0x100, 0x7f};
	uint8_t *w = malloc(n);
	size_t i, d, k, bad = 0, alpn_done = 0, n_alpn_fields = 0, struct_done = 0, tried = 0;

	for (i = 0; i < nf; i++) {
		for (d = 0; d < N(deltas) + 2; d++) {
			unsigned long v = 0, max = f[i].width == 1 ? 0xff : f[i].width == 2 ? 0xffff : 0xffffff;
			enum sk_inspect_result r;
			int j;

			memcpy(w, orig, n);
			for (j = 0; j < f[i].width; j++)
				v = v << 8 | w[f[i].off + j];
			if (d < N(deltas))
				v = (v + (unsigned long)(long)deltas[d]) & max;
			else
				v = d == N(deltas) ? 0 : max;
			if (v == ((unsigned long)orig[f[i].off + f[i].width - 1] |
				  (f[i].width > 1 ? (unsigned long)orig[f[i].off + f[i].width - 2] << 8 : 0) |
				  (f[i].width > 2 ? (unsigned long)orig[f[i].off] << 16 : 0)))
				continue; /* unchanged */
			for (j = f[i].width - 1; j >= 0; j--, v >>= 8)
				w[f[i].off + (size_t)j] = (uint8_t)v;
			r = tls(w, n);
			tried++;
			if (r == SK_INSPECT_DONE && (!sane_done() ||
						     (strcmp(hello.sni, sni) != 0 && hello.sni[0] != '\0')))
				bad++;
			if (f[i].kind == 's' && r == SK_INSPECT_DONE)
				struct_done++;
			if (f[i].kind == 'a' && r == SK_INSPECT_DONE) {
				alpn_done++;
				if (hello.n_alpn != 0)
					bad++;
			}
			for (k = 0; k < n; k += 7) {
				r = tls(w, k);
				if (r != SK_INSPECT_NEED_MORE && r != SK_INSPECT_NOT_FOUND)
					bad++;
			}
		}
	}
	for (i = 0; i < nf; i++)
		n_alpn_fields += f[i].kind == 'a';
	CHECK(bad == 0);
	CHECK(n_alpn_fields == 0 || alpn_done > 0);
	CHECK(struct_done * 20 < tried); /* accidents stay rare */
	free(w);
}

static void test_corrupted_lengths(void)
{
	mutate_fields(hello_istio, sizeof(hello_istio), hello_istio_fields, N(hello_istio_fields),
		      "reviews.default.svc.cluster.local");
	mutate_fields(hello_h2, sizeof(hello_h2), hello_h2_fields, N(hello_h2_fields),
		      "foo.example.com");
	mutate_fields(hello_no_sni, sizeof(hello_no_sni), hello_no_sni_fields,
		      N(hello_no_sni_fields), "");
	mutate_fields(hello_tls12, sizeof(hello_tls12), hello_tls12_fields, N(hello_tls12_fields),
		      "legacy.example.com");
}

/* Any byte flipped anywhere: no overread; a DONE carries a sane answer. */
static void test_every_byte(void)
{
	uint8_t *w = malloc(sizeof(hello_istio));
	size_t i, bad = 0;
	unsigned x;

	for (i = 0; i < sizeof(hello_istio); i++) {
		for (x = 1; x < 256; x <<= 1) {
			enum sk_inspect_result r;

			memcpy(w, hello_istio, sizeof(hello_istio));
			w[i] ^= (uint8_t)x;
			r = tls(w, sizeof(hello_istio));
			if (r == SK_INSPECT_DONE && !sane_done())
				bad++;
			if (r == SK_INSPECT_ERROR)
				bad++;
			if (tls(w, i + 1) == SK_INSPECT_DONE && i + 1 < sizeof(hello_istio))
				bad++;
		}
	}
	CHECK(bad == 0);
	free(w);
}

static void test_size_limits(void)
{
	struct buf *w = calloc(1, sizeof(*w));
	size_t k;

	/* A 16384-byte hello sent one byte per record needs ~98 KiB: the 64 KiB limit. */
	put8(w, 22), put16(w, 0x0301), put16(w, 4);
	put8(w, 1), put8(w, 0), put16(w, 0x4000);
	while (w->n + 6 <= sizeof(w->b))
		put8(w, 22), put16(w, 0x0301), put16(w, 1), put8(w, 0x00);
	CHECK(tls(w->b, SK_TLS_MAX_CLIENT_HELLO - 1) == SK_INSPECT_NEED_MORE);
	CHECK(tls(w->b, SK_TLS_MAX_CLIENT_HELLO) == SK_INSPECT_ERROR);
	CHECK(tls(w->b, w->n) == SK_INSPECT_ERROR);

	/* A message over BoringSSL's 16384 is refused as soon as its length is seen. */
	w->n = 0;
	put8(w, 22), put16(w, 0x0301), put16(w, 100);
	put8(w, 1), put8(w, 0), put16(w, 0x4001);
	CHECK(tls(w->b, w->n) == SK_INSPECT_NOT_FOUND);
	w->b[7] = 0x40, w->b[8] = 0x00;
	CHECK(tls(w->b, w->n) == SK_INSPECT_NEED_MORE);
	w->b[6] = 0x01;
	CHECK(tls(w->b, w->n) == SK_INSPECT_NOT_FOUND);

	/* A record over 16384 bytes. */
	w->n = 0;
	put8(w, 22), put16(w, 0x0301), put16(w, 16385);
	CHECK(tls(w->b, w->n) == SK_INSPECT_NOT_FOUND);
	w->b[4] = 0x00; /* 16384 */
	CHECK(tls(w->b, w->n) == SK_INSPECT_NEED_MORE);

	/* A hello whose records fill exactly up to the limit still completes. */
	for (k = 0; k < 3; k++)
		CHECK(tls(hello_h2, sizeof(hello_h2)) == SK_INSPECT_DONE);
	free(w);
}

static void test_not_tls(void)
{
	static const char *const plain[] = {"GET / HTTP/1.1\r\n", "POST", "\x17\x03\x03", "SSH-2.0",
					    "*1\r\n$4\r\nPING\r\n", "\0\0\0\x10"};
	static const uint8_t server_hello[] = {22, 3, 3, 0, 4, 2, 0, 0, 0};
	size_t i;

	for (i = 0; i < N(plain); i++) {
		CHECK(tls((const uint8_t *)plain[i], 1) == SK_INSPECT_NOT_FOUND);
		CHECK(tls((const uint8_t *)plain[i], strlen(plain[i]) + 1) == SK_INSPECT_NOT_FOUND);
	}
	CHECK(tls(server_hello, 5) == SK_INSPECT_NEED_MORE);
	CHECK(tls(server_hello, 6) == SK_INSPECT_NOT_FOUND); /* not a ClientHello */
	CHECK(tls(NULL, 0) == SK_INSPECT_NEED_MORE);
}

static void test_sni_rules(void)
{
	struct buf *e = calloc(1, sizeof(*e));
	char name[300];
	static const uint8_t two_names[] = {0, 10, 0, 0, 2, 'a', 'b', 0, 0, 2, 'c', 'd'};
	static const uint8_t other_type[] = {0, 5, 1, 0, 2, 'a', 'b'};
	static const uint8_t empty_sni[] = {0, 0};

	memset(name, 'a', sizeof(name));
	memcpy(name, "Www.Example.COM", 15);
	ext_sni(e, name, 255);
	CHECK(hello13(e) == SK_INSPECT_DONE);
	CHECK(strlen(hello.sni) == 255 && strncmp(hello.sni, "www.example.com", 15) == 0);
	e->n = 0;
	ext_sni(e, name, 256);
	CHECK(hello13(e) == SK_INSPECT_NOT_FOUND); /* over TLSEXT_MAXLEN_host_name */
	e->n = 0;
	ext_sni(e, "a\0b.com", 7);
	CHECK(hello13(e) == SK_INSPECT_NOT_FOUND);
	e->n = 0;
	ext_sni(e, "", 0);
	CHECK(hello13(e) == SK_INSPECT_NOT_FOUND);
	e->n = 0;
	ext(e, 0, two_names, sizeof(two_names));
	CHECK(hello13(e) == SK_INSPECT_NOT_FOUND);
	e->n = 0;
	ext(e, 0, other_type, sizeof(other_type));
	CHECK(hello13(e) == SK_INSPECT_NOT_FOUND);
	e->n = 0;
	ext(e, 0, empty_sni, sizeof(empty_sni));
	CHECK(hello13(e) == SK_INSPECT_NOT_FOUND);
	e->n = 0;
	ext(e, 0, NULL, 0);
	CHECK(hello13(e) == SK_INSPECT_NOT_FOUND);
	/* The same extension twice. */
	e->n = 0;
	ext_sni(e, "a.com", 5);
	ext_sni(e, "b.com", 5);
	CHECK(hello13(e) == SK_INSPECT_NOT_FOUND);
	e->n = 0;
	ext(e, 0x1234, NULL, 0);
	ext(e, 0x1234, NULL, 0);
	CHECK(hello13(e) == SK_INSPECT_NOT_FOUND);
	e->n = 0;
	ext(e, 0x1234, NULL, 0);
	ext(e, 0x0a0a, "\0", 1); /* GREASE and unknown extensions are fine */
	CHECK(hello13(e) == SK_INSPECT_DONE);
	CHECK_STR(hello.sni, "");
	free(e);
}

static void test_alpn_rules(void)
{
	static const char *const many[] = {"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8",
					   "p9", "p10", "p11", "p12", "p13", "p14", "p15", "p16"};
	static const char *const with_empty[] = {"h2", "", "http/1.1"};
	static const uint8_t nul_name[] = {0, 8, 3, 'a', 0, 'b', 3, 'h', '2', 'c'};
	static const uint8_t short_list[] = {0, 1, 0};
	static const uint8_t overlong_list[] = {0, 4, 2, 'h', '2'};
	struct buf *e = calloc(1, sizeof(*e));

	ext_alpn(e, many, N(many));
	CHECK(hello13(e) == SK_INSPECT_DONE);
	CHECK(hello.n_alpn == SK_TLS_MAX_ALPN);
	CHECK_STR(hello.alpn[15], "p15");
	e->n = 0;
	ext_alpn(e, with_empty, N(with_empty));
	CHECK(hello13(e) == SK_INSPECT_DONE); /* still TLS: the real handshake will refuse it */
	CHECK(hello.n_alpn == 0);
	e->n = 0;
	ext(e, 16, nul_name, sizeof(nul_name));
	CHECK(hello13(e) == SK_INSPECT_DONE);
	CHECK(hello.n_alpn == 1);
	CHECK_STR(hello.alpn[0], "h2c");
	e->n = 0;
	ext(e, 16, short_list, sizeof(short_list));
	CHECK(hello13(e) == SK_INSPECT_DONE);
	CHECK(hello.n_alpn == 0);
	e->n = 0;
	ext(e, 16, overlong_list, sizeof(overlong_list));
	CHECK(hello13(e) == SK_INSPECT_DONE);
	CHECK(hello.n_alpn == 0);
	free(e);
}

static void test_version_rules(void)
{
	struct buf *e = calloc(1, sizeof(*e)), *b = calloc(1, sizeof(*b));
	struct buf *rec = calloc(1, sizeof(*rec));
	static const uint8_t v12_only[] = {2, 0x03, 0x03};
	static const uint8_t v30_only[] = {2, 0x03, 0x00};
	static const uint8_t grease_13[] = {4, 0x7a, 0x7a, 0x03, 0x04};
	static const uint8_t empty[] = {0};
	static const uint8_t odd_match[] = {3, 0x03, 0x04, 0x03};
	static const uint8_t odd_none[] = {3, 0x7f, 0x1c, 0x03};
	static const uint8_t suites_fallback[] = {0xc0, 0x2f, 0x56, 0x00};
	static const uint8_t comp_two[] = {1, 0};
	static const uint8_t comp_no_null[] = {1};
	static const uint8_t ech_outer_ok[] = {0, 0, 1, 0, 1, 7, 0, 1, 0xaa, 0, 2, 0xbb, 0xcc};
	static const uint8_t ech_outer_bad[] = {0, 0, 1, 0, 1, 7, 0, 1, 0xaa, 0, 3, 0xbb, 0xcc};
	static const uint8_t ech_inner[] = {1};
	static const uint8_t ech_inner_bad[] = {1, 0};

#define TRY(version, suites, comp, exts, want)                                          \
	do {                                                                            \
		b->n = 0;                                                               \
		body(b, version, suites, sizeof(suites), comp, sizeof(comp), exts);     \
		frame(rec, b, 16384);                                                   \
		CHECK(tls(rec->b, rec->n) == (want));                                   \
	} while (0)

	/* No supported_versions: legacy_version is the offer (TLS 1.0 is Envoy's floor). */
	TRY(0x0303, suites_std, comp_null, NULL, SK_INSPECT_DONE);
	CHECK(!hello.has_supported_versions_13 && hello.legacy_version == 0x0303);
	TRY(0x0301, suites_std, comp_null, NULL, SK_INSPECT_DONE);
	TRY(0x0300, suites_std, comp_null, NULL, SK_INSPECT_NOT_FOUND);
	TRY(0x0303, suites_fallback, comp_null, NULL, SK_INSPECT_NOT_FOUND);
	TRY(0x0303, suites_std, comp_no_null, NULL, SK_INSPECT_NOT_FOUND);
	TRY(0x0303, suites_std, comp_two, NULL, SK_INSPECT_DONE);
	e->n = 0;
	TRY(0x0303, suites_std, comp_null, e, SK_INSPECT_DONE); /* an empty extension block */

#define TRY_SV(list, suites, comp, want)                                                \
	do {                                                                            \
		e->n = 0;                                                               \
		ext(e, 43, list, sizeof(list));                                         \
		TRY(0x0303, suites, comp, e, want);                                     \
	} while (0)

	TRY_SV(tls13_only, suites_std, comp_null, SK_INSPECT_DONE);
	CHECK(hello.has_supported_versions_13);
	TRY_SV(grease_13, suites_std, comp_null, SK_INSPECT_DONE);
	CHECK(hello.has_supported_versions_13);
	TRY_SV(v12_only, suites_std, comp_null, SK_INSPECT_DONE);
	CHECK(!hello.has_supported_versions_13);
	TRY_SV(v30_only, suites_std, comp_null, SK_INSPECT_NOT_FOUND);
	TRY_SV(empty, suites_std, comp_null, SK_INSPECT_NOT_FOUND);
	TRY_SV(odd_match, suites_std, comp_null, SK_INSPECT_DONE); /* as BoringSSL: 1.3 found first */
	TRY_SV(odd_none, suites_std, comp_null, SK_INSPECT_NOT_FOUND);
	TRY_SV(tls13_only, suites_fallback, comp_null, SK_INSPECT_DONE); /* fallback to the top: fine */
	TRY_SV(v12_only, suites_fallback, comp_null, SK_INSPECT_NOT_FOUND);
	TRY_SV(tls13_only, suites_std, comp_two, SK_INSPECT_NOT_FOUND); /* 1.3: only null */
	TRY_SV(v12_only, suites_std, comp_two, SK_INSPECT_DONE);

	/* Encrypted ClientHello, without keys: must be well-formed. */
#define TRY_ECH(ech, want)                                                              \
	do {                                                                            \
		e->n = 0;                                                               \
		ext(e, 0xfe0d, ech, sizeof(ech));                                       \
		CHECK(hello13(e) == (want));                                            \
	} while (0)
	TRY_ECH(ech_outer_ok, SK_INSPECT_DONE);
	TRY_ECH(ech_outer_bad, SK_INSPECT_NOT_FOUND);
	TRY_ECH(ech_inner, SK_INSPECT_DONE);
	TRY_ECH(ech_inner_bad, SK_INSPECT_NOT_FOUND);
	e->n = 0;
	ext(e, 0xfe0d, NULL, 0);
	CHECK(hello13(e) == SK_INSPECT_NOT_FOUND);

	/* Structure: a session id over 32 bytes, an odd cipher list, trailing bytes. */
	b->n = 0;
	body(b, 0x0303, suites_std, sizeof(suites_std), comp_null, 1, NULL);
	b->b[34] = 33;
	frame(rec, b, 16384);
	CHECK(tls(rec->b, rec->n) == SK_INSPECT_NOT_FOUND);
	b->n = 0;
	body(b, 0x0303, suites_std, 3, comp_null, 1, NULL);
	frame(rec, b, 16384);
	CHECK(tls(rec->b, rec->n) == SK_INSPECT_NOT_FOUND);
	b->n = 0;
	body(b, 0x0303, suites_std, sizeof(suites_std), comp_null, 1, NULL);
	put8(b, 0);
	frame(rec, b, 16384);
	CHECK(tls(rec->b, rec->n) == SK_INSPECT_NOT_FOUND);
#undef TRY
#undef TRY_SV
#undef TRY_ECH
	free(e);
	free(b);
	free(rec);
}

/* SSLv2-compatible ClientHello: BoringSSL accepts it (TLS 1.0+), Envoy reports "tls". */
static void test_v2_hello(void)
{
	uint8_t v2[] = {0x80, 0x1f, 0x01, 0x03, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00, 0x10,
			0x00, 0x00, 0x2f, 0x07, 0x00, 0xc0, /* TLS_RSA_WITH_AES_128_CBC_SHA, an SSLv2 suite */
			1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	size_t k;
	bool ok = true;

	for (k = 0; k < sizeof(v2); k++)
		ok = ok && tls(v2, k) == SK_INSPECT_NEED_MORE;
	CHECK(ok);
	CHECK(tls(v2, sizeof(v2)) == SK_INSPECT_DONE);
	CHECK_STR(hello.sni, "");
	CHECK(hello.n_alpn == 0 && hello.legacy_version == 0x0301 && !hello.has_supported_versions_13);
	v2[4] = 0x00; /* SSL 3.0 */
	CHECK(tls(v2, sizeof(v2)) == SK_INSPECT_NOT_FOUND);
	v2[4] = 0x01;
	v2[11] = 0x01; /* only SSLv2 suites left */
	CHECK(tls(v2, sizeof(v2)) == SK_INSPECT_NOT_FOUND);
	v2[11] = 0x00, v2[12] = 0x56, v2[13] = 0x00; /* FALLBACK_SCSV */
	CHECK(tls(v2, sizeof(v2)) == SK_INSPECT_NOT_FOUND);
	v2[12] = 0x00, v2[13] = 0x2f;
	CHECK(tls(v2, sizeof(v2)) == SK_INSPECT_DONE);
	v2[1] = 0x20; /* a length past the fields */
	CHECK(tls(v2, sizeof(v2)) == SK_INSPECT_NEED_MORE);
	v2[1] = 0x1e;
	CHECK(tls(v2, sizeof(v2)) == SK_INSPECT_NOT_FOUND);
	v2[1] = 0x1f;
	v2[2] = 0x02; /* not msg_type ClientHello */
	CHECK(tls(v2, 3) == SK_INSPECT_NOT_FOUND);
	v2[2] = 0x01;
	v2[3] = 0x02;
	CHECK(tls(v2, 4) == SK_INSPECT_NOT_FOUND);
	v2[3] = 0x03;
	v2[0] = 0x90; /* 4 KiB + : over read_v2_client_hello's limit */
	CHECK(tls(v2, sizeof(v2)) == SK_INSPECT_NOT_FOUND);
}

/* ---- HTTP tests ---- */

static void test_http_versions(void)
{
	CHECK_STR(http_s("GET / HTTP/1.1\r\nHost: a\r\n\r\n", SK_INSPECT_DONE), "http/1.1");
	CHECK_STR(http_s("POST /submit?x=1 HTTP/1.0\r\n", SK_INSPECT_DONE), "http/1.0");
	CHECK_STR(http_s("HEAD /x HTTP/1.1\r\n", SK_INSPECT_DONE), "http/1.1");
	CHECK_STR(http_s("PUT /x HTTP/1.1\r\n", SK_INSPECT_DONE), "http/1.1");
	CHECK_STR(http_s("DELETE /x HTTP/1.1\r\n", SK_INSPECT_DONE), "http/1.1");
	CHECK_STR(http_s("OPTIONS * HTTP/1.1\r\n", SK_INSPECT_DONE), "http/1.1");
	CHECK_STR(http_s("PATCH /a HTTP/1.1\r\n", SK_INSPECT_DONE), "http/1.1");
	CHECK_STR(http_s("CONNECT example.com:443 HTTP/1.1\r\n", SK_INSPECT_DONE), "http/1.1");
	CHECK_STR(http_s("GET http://example.com:80/a?b HTTP/1.1\r\n", SK_INSPECT_DONE), "http/1.1");
	CHECK_STR(http_s("GET / HTTP/1.1\n", SK_INSPECT_DONE), "http/1.1"); /* bare LF */
	CHECK_STR(http_s("GET  /  HTTP/1.1  \r\n", SK_INSPECT_DONE), "http/1.1");
	/* Balsa (allow_custom_methods) takes any token as a method. */
	CHECK_STR(http_s("PROPFIND /dav HTTP/1.1\r\n", SK_INSPECT_DONE), "http/1.1");
	CHECK_STR(http_s("X-CUSTOM~ /a HTTP/1.1\r\n", SK_INSPECT_DONE), "http/1.1");
	/* Every other HTTP/d.d, and HTTP/0.9 (no version), is http/1.0 in Envoy. */
	CHECK_STR(http_s("GET / HTTP/1.2\r\n", SK_INSPECT_DONE), "http/1.0");
	CHECK_STR(http_s("GET / HTTP/2.0\r\n", SK_INSPECT_DONE), "http/1.0");
	CHECK_STR(http_s("GET /\r\n", SK_INSPECT_DONE), "http/1.0");
	CHECK_STR(http_s("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", SK_INSPECT_DONE), "http/1.0");
}

static void test_h2c(void)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	char with_frames[64];
	const char *proto;
	size_t k;
	bool ok = true;

	for (k = 0; k < 24; k++)
		ok = ok && http(preface, k, &proto) == SK_INSPECT_NEED_MORE;
	CHECK(ok);
	CHECK(http(preface, 24, &proto) == SK_INSPECT_DONE);
	CHECK_STR(proto, "h2c");
	memcpy(with_frames, preface, 24);
	memcpy(with_frames + 24, "\0\0\0\4\0\0\0\0\0", 9); /* an empty SETTINGS */
	CHECK(http(with_frames, 33, &proto) == SK_INSPECT_DONE);
	CHECK_STR(proto, "h2c");
}

static void test_http_split(void)
{
	static const char req[] = "GET /productpage?u=normal HTTP/1.1\r\nHost: productpage:9080\r\n\r\n";
	const char *proto;
	size_t k, nl = strchr(req, '\n') - req;
	bool ok = true;

	for (k = 0; k <= nl; k++)
		ok = ok && http(req, k, &proto) == SK_INSPECT_NEED_MORE;
	CHECK(ok);
	for (k = nl + 1; k <= strlen(req); k++)
		ok = ok && http(req, k, &proto) == SK_INSPECT_DONE && strcmp(proto, "http/1.1") == 0;
	CHECK(ok);
}

static void test_http_not_found(void)
{
	const char *proto;
	static const uint8_t tls_bytes[] = {0x16, 0x03, 0x01, 0x00, 0xe1};

	CHECK(http(tls_bytes, 1, &proto) == SK_INSPECT_NOT_FOUND);
	CHECK(http(tls_bytes, sizeof(tls_bytes), &proto) == SK_INSPECT_NOT_FOUND);
	CHECK(http(hello_h2, sizeof(hello_h2), &proto) == SK_INSPECT_NOT_FOUND);
	http_s("\r\nGET / HTTP/1.1\r\n", SK_INSPECT_NOT_FOUND);
	http_s("\n", SK_INSPECT_NOT_FOUND);
	http_s(" GET / HTTP/1.1\r\n", SK_INSPECT_NOT_FOUND);
	http_s("GET\r\n", SK_INSPECT_NOT_FOUND);                  /* no target */
	http_s("GET / HTTP/1.1x\r\n", SK_INSPECT_NOT_FOUND);
	http_s("GET / HTTP/1.1 extra\r\n", SK_INSPECT_NOT_FOUND);
	http_s("GET / HTTP/11\r\n", SK_INSPECT_NOT_FOUND);
	http_s("GET / HTTP/1.\r\n", SK_INSPECT_NOT_FOUND);
	http_s("GET example.com HTTP/1.1\r\n", SK_INSPECT_NOT_FOUND); /* no scheme, not CONNECT */
	http_s("GET http://a@@b/ HTTP/1.1\r\n", SK_INSPECT_NOT_FOUND);
	http_s("GET 1http://a/ HTTP/1.1\r\n", SK_INSPECT_NOT_FOUND);
	http_s("GET http://a<b/ HTTP/1.1\r\n", SK_INSPECT_NOT_FOUND);
	http_s("CONNECT @@a:1 HTTP/1.1\r\n", SK_INSPECT_NOT_FOUND);
	http_s("*1\r\n$4\r\nPING\r\n", SK_INSPECT_NOT_FOUND);   /* redis */
	/* Decided before the line ends. */
	http_s("GE(T", SK_INSPECT_NOT_FOUND);
	http_s("GET / http/1.1", SK_INSPECT_NOT_FOUND);
	http_s("GET / HTTP/1.1 x", SK_INSPECT_NOT_FOUND);
	http_s("GET /\x80", SK_INSPECT_NOT_FOUND);
	http_s("SSH-2.0-OpenSSH_9.6", SK_INSPECT_NEED_MORE);    /* a token so far */
	http_s("SSH-2.0-OpenSSH_9.6\r\n", SK_INSPECT_NOT_FOUND);
	http_s("GET / HTTP/1.1", SK_INSPECT_NEED_MORE);
	http_s("PRI * HTTP/2.0\r\n", SK_INSPECT_NEED_MORE);       /* still the h2 preface */
}

static void test_http_too_long(void)
{
	size_t n = SK_HTTP_INSPECT_MAX + 100;
	char *line = malloc(n);
	const char *proto;

	memcpy(line, "GET /", 5);
	memset(line + 5, 'a', n - 5);
	CHECK(http(line, SK_HTTP_INSPECT_MAX - 1, &proto) == SK_INSPECT_NEED_MORE);
	CHECK(http(line, SK_HTTP_INSPECT_MAX, &proto) == SK_INSPECT_ERROR);
	CHECK(http(line, n, &proto) == SK_INSPECT_ERROR);
	/* The '\n' as the last byte within the limit still counts; one past it does not. */
	memcpy(line + SK_HTTP_INSPECT_MAX - 10, " HTTP/1.1\n", 10);
	CHECK(http(line, SK_HTTP_INSPECT_MAX, &proto) == SK_INSPECT_DONE);
	CHECK_STR(proto, "http/1.1");
	memset(line + 5, 'a', n - 5);
	memcpy(line + SK_HTTP_INSPECT_MAX - 9, " HTTP/1.1\n", 10);
	CHECK(http(line, n, &proto) == SK_INSPECT_ERROR);
	free(line);
}

int main(void)
{
	test_captured();
	test_every_split_point();
	test_multi_record();
	test_after_hello();
	test_corrupted_lengths();
	test_every_byte();
	test_size_limits();
	test_not_tls();
	test_sni_rules();
	test_alpn_rules();
	test_version_rules();
	test_v2_hello();
	test_http_versions();
	test_h2c();
	test_http_split();
	test_http_not_found();
	test_http_too_long();
	return TEST_SUMMARY();
}
