/* The RecordMarker command: workflow code records a value in its history (Temporal's
 * MarkerRecorded, event 25), for libdurable's side effects, mutable side effects and patches
 * (libdurable(3)). The daemon does not interpret markers: it checks their shape and appends the
 * event, which replay reads back instead of running the code again. */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#include "daemon/history-internal.h"

typedef struct MarkerCommand {
        const char *marker_name;
        const char *marker_id;
        MsgBin details;
        bool deprecated;
} MarkerCommand;

static const MsgField marker_fields[] = {
        { "marker_name", MSG_STR, offsetof(MarkerCommand, marker_name), true, NAME_MAX_LEN },
        { "marker_id", MSG_STR, offsetof(MarkerCommand, marker_id), false, NAME_MAX_LEN },
        { "details", MSG_BIN, offsetof(MarkerCommand, details), false, PAYLOAD_SIZE_MAX },
        { "deprecated", MSG_BOOL, offsetof(MarkerCommand, deprecated) },
        {},
};

int history_apply_record_marker(Manager *m,
                                RunRow *run,
                                const msgpack_object *attrs,
                                uint64_t completed_id,
                                msgpack_zone *z,
                                bool dry,
                                char *err,
                                size_t errlen) {
        MarkerCommand c = { .marker_id = "" };
        msgpack_packer *pk;
        Attrs a;
        int r;

        r = msg_parse(attrs, z, marker_fields, &c, err, errlen);
        if (r < 0)
                return r;
        if (!*c.marker_name) {
                snprintf(err, errlen, "field \"marker_name\" must not be empty");
                return -EINVAL;
        }
        if (dry)
                return 0;
        pk = attrs_begin(&a, 4 + !!msg_get(attrs, "deprecated"));
        (void) msg_pack_kv_str(pk, "marker_name", c.marker_name);
        (void) msg_pack_kv_str(pk, "marker_id", c.marker_id);
        (void) pack_kv_payload(pk, "details", c.details.ptr, c.details.size);
        if (msg_get(attrs, "deprecated"))
                (void) msg_pack_kv_bool(pk, "deprecated", c.deprecated);
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", completed_id);
        r = append_event(m, run, EVENT_MARKER_RECORDED, &a, NULL);
        attrs_done(&a);
        return r;
}
