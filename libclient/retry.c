/* See retry.h. */

#include "libclient/retry.h"

#include "proto/msg.h"

static int pack_kv_usec(msgpack_packer *pk, const char *key, uint64_t usec) {
        return usec > 0 ? msg_pack_kv_uint(pk, key, usec) : 0;
}

size_t retry_policy_fields(const dur_retry_policy *p) {
        return (p->initial_interval > 0) + (p->backoff_coefficient > 0) +
               (p->maximum_interval > 0) + (p->maximum_attempts > 0) +
               (p->non_retryable_error_types != NULL);
}

int retry_policy_pack(msgpack_packer *pk, const dur_retry_policy *p) {
        size_t n = 0;
        int k;

        k = msgpack_pack_map(pk, retry_policy_fields(p));
        if (k >= 0)
                k = pack_kv_usec(pk, "initial_interval_usec", p->initial_interval);
        if (k >= 0 && p->backoff_coefficient > 0) {
                k = msg_pack_str(pk, "backoff_coefficient");
                if (k >= 0)
                        k = msgpack_pack_double(pk, p->backoff_coefficient);
        }
        if (k >= 0)
                k = pack_kv_usec(pk, "maximum_interval_usec", p->maximum_interval);
        if (k >= 0)
                k = pack_kv_usec(pk, "maximum_attempts", p->maximum_attempts);
        if (k < 0 || !p->non_retryable_error_types)
                return k;
        while (p->non_retryable_error_types[n])
                n++;
        k = msg_pack_str(pk, "non_retryable_error_types");
        if (k >= 0)
                k = msgpack_pack_array(pk, n);
        for (size_t i = 0; k >= 0 && i < n; i++)
                k = msg_pack_str(pk, p->non_retryable_error_types[i]);
        return k;
}
