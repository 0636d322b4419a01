/* container_of: the struct that embeds a member (libev watchers live inside their owner). */
#ifndef SKIFF_PROXY_CONTAINER_OF_H
#define SKIFF_PROXY_CONTAINER_OF_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#endif
