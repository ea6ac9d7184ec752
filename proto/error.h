#pragma once
/* The one table between negative errno values and the protocol's stable error codes
 * (doc/protocol.md "Error codes"). */

int wire_code_to_errno(const char *code);      /* unknown codes map to -EPROTO */
const char *errno_to_wire_code(int error);     /* takes -errno or errno */
