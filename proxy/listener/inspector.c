/* inspector: see inspector.h. Both inspectors decide what Envoy decides, and no later.
 *
 * tls_inspector: Envoy feeds the peeked bytes to BoringSSL as a server and stops the
 * handshake in the SNI callback. Whatever BoringSSL rejects before that callback is "not
 * TLS" for Envoy (tls_not_found; the connection goes on as plaintext) and NOT_FOUND here;
 * only a ClientHello still incomplete at the 64 KiB peek limit closes the connection
 * (client_hello_too_large), ERROR here. The checks below are the ones BoringSSL makes
 * before that callback: record layer (handshake records of version 3.x, at most 16384
 * bytes, at most 32 empty ones in a row), one ClientHello message of at most 16384 bytes
 * ending exactly at a record boundary, its structure, no duplicate extensions, the SNI
 * extension holding exactly one host_name of 1..255 bytes without NUL, a well-formed outer
 * ECH extension, a shared version in TLS 1.0..1.3, FALLBACK_SCSV only at the top version,
 * and null compression. SSLv2-compatible ClientHellos are accepted as BoringSSL does.
 * Not replicated: the per-extension parsers BoringSSL runs for other extensions (key_share,
 * supported_groups, ...), so a hello malformed only there is DONE here but not TLS for Envoy.
 *
 * http_inspector: Envoy (1.39+) matches the h2 preface, else runs its Balsa HTTP/1 parser
 * over the first line: a method of token characters, a target that http-parser would
 * accept, and a version that is empty (HTTP/0.9) or "HTTP/d.d"; HTTP/1.1 says "http/1.1"
 * and every other accepted version "http/1.0". A line still open after 8 KiB closes the
 * connection in Envoy, ERROR here. Bytes that can no longer become a valid line answer
 * NOT_FOUND at once instead of at the end of the line (the answer Envoy gives later). */
#include "proxy/listener/inspector.h"

#include <string.h>

#define TLS_CT_HANDSHAKE 22
#define TLS_HS_CLIENT_HELLO 1
#define TLS_RECORD_HEADER 5
#define TLS_MAX_RECORD 16384          /* SSL3_RT_MAX_PLAIN_LENGTH */
#define TLS_MAX_HELLO 16384           /* BoringSSL's kMaxMessageLen for a server */
#define TLS_MAX_EMPTY_RECORDS 32      /* kMaxEmptyRecords */
#define TLS_V2_MAX_HELLO 4096         /* read_v2_client_hello's limit */

#define TLS_EXT_SERVER_NAME 0
#define TLS_EXT_ALPN 16
#define TLS_EXT_SUPPORTED_VERSIONS 43
#define TLS_EXT_ECH 0xfe0d
#define TLS_FALLBACK_SCSV 0x5600

#define TLS1_0 0x0301
#define TLS1_3 0x0304

/* A bounds-checked reader over bytes, as BoringSSL's CBS: every get fails rather than
 * reading past the end. */
struct rd {
	const uint8_t *p;
	size_t n;
};

static bool rd_bytes(struct rd *r, size_t n, struct rd *out)
{
	if (r->n < n)
		return false;
	out->p = r->p;
	out->n = n;
	r->p += n;
	r->n -= n;
	return true;
}

static bool rd_u8(struct rd *r, uint8_t *v)
{
	if (r->n < 1)
		return false;
	*v = r->p[0];
	r->p++;
	r->n--;
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	if (r->n < 2)
		return false;
	*v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	r->n -= 2;
	return true;
}

static bool rd_u8_prefixed(struct rd *r, struct rd *out)
{
	uint8_t n;

	return rd_u8(r, &n) && rd_bytes(r, n, out);
}

static bool rd_u16_prefixed(struct rd *r, struct rd *out)
{
	uint16_t n;

	return rd_u16(r, &n) && rd_bytes(r, n, out);
}

static bool list_has_u16(struct rd list, uint16_t v)
{
	uint16_t x;

	while (rd_u16(&list, &x))
		if (x == v)
			return true;
	return false;
}

/* BoringSSL's negotiate_version with Envoy's range TLS 1.0..1.3: the highest of our
 * versions the peer lists, scanning the peer's list once per version of ours (so an odd
 * trailing byte is a decode error only if it is reached). 0 when none. */
static uint16_t negotiate_version(struct rd peer)
{
	uint16_t v, x;

	for (v = TLS1_3; v >= TLS1_0; v--) {
		struct rd l = peer;

		while (l.n > 0) {
			if (!rd_u16(&l, &x))
				return 0;
			if (x == v)
				return v;
		}
	}
	return 0;
}

/* extract_sni: exactly one name, of type host_name, 1..255 bytes, no NUL. */
static bool parse_sni(struct rd ext, char *sni)
{
	struct rd list, name;
	uint8_t type;
	size_t i;

	if (!rd_u16_prefixed(&ext, &list) || ext.n != 0 || !rd_u8(&list, &type) ||
	    !rd_u16_prefixed(&list, &name) || list.n != 0)
		return false;
	if (type != 0 || name.n == 0 || name.n > 255 || memchr(name.p, 0, name.n) != NULL)
		return false;
	for (i = 0; i < name.n; i++) {
		uint8_t c = name.p[i];

		sni[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	sni[name.n] = '\0';
	return true;
}

/* decrypt_ech and ext_ech_parse_clienthello, without keys: an outer extension must be
 * well-formed, an inner one is the single type byte. */
static bool ech_well_formed(struct rd ext)
{
	struct rd enc, payload, skip;
	uint8_t type;

	if (!rd_u8(&ext, &type))
		return false;
	if (type == 1)
		return ext.n == 0;
	if (type != 0)
		return false;
	return rd_bytes(&ext, 5, &skip) && rd_u16_prefixed(&ext, &enc) &&
	       rd_u16_prefixed(&ext, &payload) && ext.n == 0;
}

/* Envoy's onALPN: a malformed list is ignored (the real handshake reports it), leaving no
 * ALPN. Names with a NUL byte could only match by truncation, so they are left out; past
 * SK_TLS_MAX_ALPN names the rest are dropped. */
static void parse_alpn(struct rd ext, struct sk_tls_hello *out)
{
	struct rd list, check, name;

	if (!rd_u16_prefixed(&ext, &list) || ext.n != 0 || list.n < 2)
		return;
	check = list;
	while (check.n > 0)
		if (!rd_u8_prefixed(&check, &name) || name.n == 0)
			return;
	while (rd_u8_prefixed(&list, &name) && out->n_alpn < SK_TLS_MAX_ALPN) {
		if (memchr(name.p, 0, name.n) != NULL)
			continue;
		memcpy(out->alpn[out->n_alpn], name.p, name.n);
		out->alpn[out->n_alpn][name.n] = '\0';
		out->n_alpn++;
	}
}

/* The body of a ClientHello handshake message: DONE or NOT_FOUND. */
static enum sk_inspect_result parse_client_hello(const uint8_t *p, size_t n,
						 struct sk_tls_hello *out)
{
	struct rd r = {p, n}, rnd, session_id, suites, compression, exts = {NULL, 0};
	struct rd sni = {NULL, 0}, alpn = {NULL, 0}, versions = {NULL, 0}, ech = {NULL, 0};
	bool has_sni = false, has_alpn = false, has_versions = false, has_ech = false;
	uint8_t seen[65536 / 8];
	uint16_t legacy, version;

	if (!rd_u16(&r, &legacy) || !rd_bytes(&r, 32, &rnd) ||
	    !rd_u8_prefixed(&r, &session_id) || session_id.n > 32 ||
	    !rd_u16_prefixed(&r, &suites) || suites.n < 2 || suites.n % 2 != 0 ||
	    !rd_u8_prefixed(&r, &compression) || compression.n < 1)
		return SK_INSPECT_NOT_FOUND;
	if (r.n > 0 && (!rd_u16_prefixed(&r, &exts) || r.n != 0))
		return SK_INSPECT_NOT_FOUND;

	memset(seen, 0, sizeof(seen));
	while (exts.n > 0) {
		uint16_t type;
		struct rd body;

		if (!rd_u16(&exts, &type) || !rd_u16_prefixed(&exts, &body))
			return SK_INSPECT_NOT_FOUND;
		if (seen[type / 8] & (1u << (type % 8)))
			return SK_INSPECT_NOT_FOUND; /* duplicate extension */
		seen[type / 8] |= (uint8_t)(1u << (type % 8));
		switch (type) {
		case TLS_EXT_SERVER_NAME:
			sni = body;
			has_sni = true;
			break;
		case TLS_EXT_ALPN:
			alpn = body;
			has_alpn = true;
			break;
		case TLS_EXT_SUPPORTED_VERSIONS:
			versions = body;
			has_versions = true;
			break;
		case TLS_EXT_ECH:
			ech = body;
			has_ech = true;
			break;
		default:
			break;
		}
	}

	memset(out, 0, sizeof(*out));
	out->legacy_version = legacy;
	if (has_ech && !ech_well_formed(ech))
		return SK_INSPECT_NOT_FOUND;
	if (has_sni && !parse_sni(sni, out->sni))
		return SK_INSPECT_NOT_FOUND;
	if (has_versions) {
		struct rd list;

		if (!rd_u8_prefixed(&versions, &list) || versions.n != 0 || list.n == 0)
			return SK_INSPECT_NOT_FOUND;
		out->has_supported_versions_13 = list_has_u16(list, TLS1_3);
		version = negotiate_version(list);
	} else {
		/* Without the extension, legacy_version is the highest version offered. */
		version = legacy >= 0x0303 ? 0x0303 : legacy >= TLS1_0 ? legacy : 0;
	}
	if (version == 0)
		return SK_INSPECT_NOT_FOUND;
	if (version < TLS1_3 && list_has_u16(suites, TLS_FALLBACK_SCSV))
		return SK_INSPECT_NOT_FOUND; /* inappropriate_fallback */
	if (memchr(compression.p, 0, compression.n) == NULL ||
	    (version == TLS1_3 && compression.n != 1))
		return SK_INSPECT_NOT_FOUND;
	if (has_alpn)
		parse_alpn(alpn, out);
	return SK_INSPECT_DONE;
}

/* An SSLv2-compatible ClientHello (read_v2_client_hello): two length bytes with the top bit
 * set, then msg_type 1, version, three lengths and their bytes. BoringSSL turns it into a
 * ClientHello without extensions, keeping only the 3-byte cipher specs that name TLS
 * suites; Envoy then reports "tls" without SNI or ALPN. */
static enum sk_inspect_result inspect_v2(const uint8_t *buf, size_t len,
					 struct sk_tls_hello *out)
{
	struct rd r, specs, skip;
	uint16_t version, specs_len, session_len, challenge_len;
	size_t msg_len;
	bool has_suite = false, fallback = false;
	uint8_t type;

	if ((len > 2 && buf[2] != 1) || (len > 3 && buf[3] != 3))
		return SK_INSPECT_NOT_FOUND;
	if (len < 2)
		return SK_INSPECT_NEED_MORE;
	msg_len = (size_t)(buf[0] & 0x7f) << 8 | buf[1];
	if (msg_len > TLS_V2_MAX_HELLO || msg_len < TLS_RECORD_HEADER - 2)
		return SK_INSPECT_NOT_FOUND;
	if (len < 2 + msg_len)
		return SK_INSPECT_NEED_MORE;

	r.p = buf + 2;
	r.n = msg_len;
	if (!rd_u8(&r, &type) || !rd_u16(&r, &version) || !rd_u16(&r, &specs_len) ||
	    !rd_u16(&r, &session_len) || !rd_u16(&r, &challenge_len) ||
	    !rd_bytes(&r, specs_len, &specs) || !rd_bytes(&r, session_len, &skip) ||
	    !rd_bytes(&r, challenge_len, &skip) || r.n != 0 || specs.n % 3 != 0)
		return SK_INSPECT_NOT_FOUND;
	for (; specs.n > 0; specs.p += 3, specs.n -= 3) {
		if (specs.p[0] != 0)
			continue; /* an SSLv2 cipher */
		has_suite = true;
		if ((specs.p[1] << 8 | specs.p[2]) == TLS_FALLBACK_SCSV)
			fallback = true;
	}
	/* Without extensions the version is at most TLS 1.2, so FALLBACK_SCSV always fails. */
	if (!has_suite || version < TLS1_0 || fallback)
		return SK_INSPECT_NOT_FOUND;
	memset(out, 0, sizeof(*out));
	out->legacy_version = version;
	return SK_INSPECT_DONE;
}

/* The handshake bytes gathered so far, hs[0..n): DONE/NOT_FOUND once the ClientHello is
 * whole, NEED_MORE before. `final` is how many bytes there will be once the record being
 * read is complete (== n between records): a record may not carry bytes past the message. */
static enum sk_inspect_result check_handshake(const uint8_t *hs, size_t n, size_t final,
					      bool record_done, struct sk_tls_hello *out)
{
	size_t msg_len;

	if (n >= 1 && hs[0] != TLS_HS_CLIENT_HELLO)
		return SK_INSPECT_NOT_FOUND;
	if (n < 4)
		return SK_INSPECT_NEED_MORE;
	msg_len = (size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3];
	if (msg_len > TLS_MAX_HELLO || final > 4 + msg_len)
		return SK_INSPECT_NOT_FOUND; /* too long, or data after the ClientHello */
	if (!record_done || n < 4 + msg_len)
		return SK_INSPECT_NEED_MORE;
	return parse_client_hello(hs + 4, msg_len, out);
}

enum sk_inspect_result sk_tls_inspect(const uint8_t *buf, size_t len, struct sk_tls_hello *out)
{
	/* The ClientHello reassembled from its records: at most one message of TLS_MAX_HELLO. */
	uint8_t hs[4 + TLS_MAX_HELLO];
	size_t n = len < SK_TLS_MAX_CLIENT_HELLO ? len : SK_TLS_MAX_CLIENT_HELLO;
	size_t pos = 0, hs_len = 0;
	unsigned empty_run = 0;
	enum sk_inspect_result res;

	if (n == 0)
		return SK_INSPECT_NEED_MORE;
	if (buf[0] & 0x80) {
		res = inspect_v2(buf, n, out);
		goto out;
	}
	for (;;) {
		size_t avail = n - pos, rec_len, take;

		res = check_handshake(hs, hs_len, hs_len, true, out);
		if (res != SK_INSPECT_NEED_MORE)
			return res;
		if (avail >= 1 && buf[pos] != TLS_CT_HANDSHAKE)
			return SK_INSPECT_NOT_FOUND;
		if (avail >= 2 && buf[pos + 1] != 3)
			return SK_INSPECT_NOT_FOUND; /* only the major version is checked */
		if (avail < TLS_RECORD_HEADER)
			break;
		rec_len = (size_t)buf[pos + 3] << 8 | buf[pos + 4];
		if (rec_len > TLS_MAX_RECORD || hs_len + rec_len > sizeof(hs))
			return SK_INSPECT_NOT_FOUND;
		take = avail - TLS_RECORD_HEADER < rec_len ? avail - TLS_RECORD_HEADER : rec_len;
		memcpy(hs + hs_len, buf + pos + TLS_RECORD_HEADER, take);
		if (take < rec_len) {
			/* A partial record: judge what can be judged already. */
			res = check_handshake(hs, hs_len + take, hs_len + rec_len, false, out);
			if (res != SK_INSPECT_NEED_MORE)
				return res;
			break;
		}
		hs_len += rec_len;
		empty_run = rec_len == 0 ? empty_run + 1 : 0;
		if (empty_run > TLS_MAX_EMPTY_RECORDS)
			return SK_INSPECT_NOT_FOUND;
		pos += TLS_RECORD_HEADER + rec_len;
	}
	res = SK_INSPECT_NEED_MORE;
out:
	if (res == SK_INSPECT_NEED_MORE && len >= SK_TLS_MAX_CLIENT_HELLO)
		return SK_INSPECT_ERROR;
	return res;
}

/* ---- http_inspector ---- */

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(h2_preface) - 1)

/* Balsa splits the first line at any byte <= 0x20 ('\n' ends it). */
static bool is_ws(uint8_t c)
{
	return c <= ' ';
}

static bool is_tchar(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_alpha(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static bool is_host_char(uint8_t c)
{
	return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!$%&'()*+,-.:;=@[]_~", c) != NULL);
}

/* Envoy's isUrlValid (balsa_parser.cc), for a target whose bytes are all 0x21..0x7e: a path
 * ("/..." or "*..."), else [scheme "://"] host [path-or-query], the scheme absent only for
 * CONNECT. */
static bool url_valid(const uint8_t *u, size_t n, bool is_connect)
{
	size_t i = 0, host;

	if (n == 0)
		return false;
	if (u[0] == '/' || u[0] == '*')
		return true;
	if (!is_connect) {
		if (!is_alpha(u[0]))
			return false;
		for (i = 1; i < n && (is_alpha(u[i]) || is_digit(u[i]) || u[i] == '+' ||
				      u[i] == '-' || u[i] == '.');
		     i++)
			;
		if (n - i < 3 || memcmp(u + i, "://", 3) != 0)
			return false;
		i += 3;
	}
	for (host = i; i < n && u[i] != '/' && u[i] != '?'; i++) {
		if (!is_host_char(u[i]) || (u[i] == '@' && i > host && u[i - 1] == '@'))
			return false;
	}
	return true;
}

/* The request line p[0..n), without its '\n' when `complete`; else the bytes so far.
 * Returns NOT_FOUND as soon as no continuation could be valid, NEED_MORE while incomplete,
 * DONE with *proto for a valid complete line. */
static enum sk_inspect_result request_line(const uint8_t *p, size_t n, bool complete,
					   const char **proto)
{
	static const char version_form[] = "HTTP/d.d";
	size_t i = 0, method_len, t0, t1, v0, k;

	while (i < n && !is_ws(p[i])) {
		if (!is_tchar(p[i]))
			return SK_INSPECT_NOT_FOUND;
		i++;
	}
	if (i == 0)
		return SK_INSPECT_NOT_FOUND; /* the line must start with the method */
	method_len = i;
	while (i < n && is_ws(p[i]))
		i++;
	t0 = i;
	while (i < n && !is_ws(p[i])) {
		if (p[i] > '~')
			return SK_INSPECT_NOT_FOUND;
		i++;
	}
	t1 = i;
	if (i == n && !complete)
		return SK_INSPECT_NEED_MORE; /* the target may go on */
	if (!url_valid(p + t0, t1 - t0, method_len == 7 && memcmp(p, "CONNECT", 7) == 0))
		return SK_INSPECT_NOT_FOUND;
	while (i < n && is_ws(p[i]))
		i++;
	/* The version: exactly "HTTP/d.d" then only whitespace, or nothing (HTTP/0.9). */
	for (v0 = i; i < n; i++) {
		k = i - v0;
		if (k >= 8 ? !is_ws(p[i])
			   : version_form[k] == 'd' ? !is_digit(p[i]) : p[i] != (uint8_t)version_form[k])
			return SK_INSPECT_NOT_FOUND;
	}
	if (!complete)
		return SK_INSPECT_NEED_MORE;
	if (n == v0) {
		*proto = "http/1.0";
	} else if (n - v0 < 8) {
		return SK_INSPECT_NOT_FOUND;
	} else {
		*proto = memcmp(p + v0, "HTTP/1.1", 8) == 0 ? "http/1.1" : "http/1.0";
	}
	return SK_INSPECT_DONE;
}

enum sk_inspect_result sk_http_inspect(const uint8_t *buf, size_t len, const char **proto)
{
	size_t n = len < SK_HTTP_INSPECT_MAX ? len : SK_HTTP_INSPECT_MAX;
	const uint8_t *nl;
	enum sk_inspect_result res;

	if (len == 0)
		return SK_INSPECT_NEED_MORE;
	if (memcmp(buf, h2_preface, len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN) == 0) {
		if (len < H2_PREFACE_LEN)
			return SK_INSPECT_NEED_MORE;
		*proto = "h2c";
		return SK_INSPECT_DONE;
	}
	if (buf[0] == '\r' || buf[0] == '\n')
		return SK_INSPECT_NOT_FOUND;
	nl = memchr(buf, '\n', n);
	if (nl != NULL)
		return request_line(buf, (size_t)(nl - buf), true, proto);
	res = request_line(buf, n, false, proto);
	if (res == SK_INSPECT_NEED_MORE && len >= SK_HTTP_INSPECT_MAX)
		return SK_INSPECT_ERROR; /* Envoy: "reached max buffer", closes the connection */
	return res;
}
