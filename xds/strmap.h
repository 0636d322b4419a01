/* strmap: a small string -> string hash map (open addressing, linear probing) for the xDS
 * client and server: subscribed names, resource versions. The map owns copies of its keys
 * and values; values may be NULL (a set). Not thread-safe. */
#ifndef SKIFF_XDS_STRMAP_H
#define SKIFF_XDS_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct sk_strmap_entry {
	char *key;      /* NULL: an empty slot */
	char *value;    /* may be NULL */
};

struct sk_strmap {
	struct sk_strmap_entry *slots;
	size_t cap;     /* a power of two, or 0 */
	size_t n;
};

/* A zeroed struct is an empty map. */
void sk_strmap_clear(struct sk_strmap *m);

/* Inserts or replaces (copies both). Returns 0 or -ENOMEM. */
int sk_strmap_put(struct sk_strmap *m, const char *key, const char *value);

/* The entry for key, or NULL. The pointers stay valid until the map changes. */
const struct sk_strmap_entry *sk_strmap_find(const struct sk_strmap *m, const char *key);

static inline bool sk_strmap_has(const struct sk_strmap *m, const char *key)
{
	return sk_strmap_find(m, key) != NULL;
}

/* Removes key; returns whether it was there. */
bool sk_strmap_del(struct sk_strmap *m, const char *key);

/* Iteration: for (i = 0; (e = sk_strmap_next(m, &i)) != NULL;) — in slot order. */
const struct sk_strmap_entry *sk_strmap_next(const struct sk_strmap *m, size_t *i);

/* The keys as a malloc'd array of borrowed pointers, sorted by strcmp (caller frees the array
 * only). NULL when empty or out of memory; *n set. */
const char **sk_strmap_sorted_keys(const struct sk_strmap *m, size_t *n);

/* dst becomes a copy of src. Returns 0 or -ENOMEM (dst is then empty). */
int sk_strmap_copy(struct sk_strmap *dst, const struct sk_strmap *src);

#endif
