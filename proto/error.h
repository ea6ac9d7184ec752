#pragma once
/* The one table between negative errno values and the protocol's stable error codes
 * (doc/protocol.md "Error codes"). */

#include <errno.h>

/* A workflow's update validator rejected the update (code "update_rejected"). */
#define EUPDATEREJECTED EBADRQC

int wire_code_to_errno(const char *code);      /* unknown codes map to -EPROTO */
const char *errno_to_wire_code(int error);     /* takes -errno or errno */
