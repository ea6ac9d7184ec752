#pragma once
/* The Unix-socket API (doc/protocol.md): one call per received frame. */

#include <stddef.h>

typedef struct Manager Manager;
typedef struct Conn Conn;

void api_handle_frame(Manager *m, Conn *c, const char *body, size_t len);
