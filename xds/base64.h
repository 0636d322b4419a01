/* base64: RFC 4648 encoding (standard alphabet, padded) and a decoder that accepts the
 * standard and URL-safe alphabets, with or without padding, as proto3 JSON requires. */
#ifndef SKIFF_XDS_BASE64_H
#define SKIFF_XDS_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Encodes len bytes; returns a malloc'd NUL-terminated string (caller frees) or NULL. */
char *sk_base64_encode(const uint8_t *data, size_t len);

/* Decodes a NUL-terminated string into a malloc'd buffer (caller frees; *out_len set).
 * Returns NULL on an invalid character, bad padding or allocation failure. */
uint8_t *sk_base64_decode(const char *s, size_t *out_len);

#endif
