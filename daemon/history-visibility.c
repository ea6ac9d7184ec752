/* The UpsertWorkflowSearchAttributes command: the workflow merges attributes into its run's
 * search attributes (daemon/visibility.h); the event records what it asked for, so that replay
 * sees the command's event. */

#include <errno.h>
#include <stdio.h>

#include "daemon/history-internal.h"
#include "daemon/visibility.h"

int history_apply_upsert_search_attributes(Manager *m,
                                           RunRow *run,
                                           const msgpack_object *attrs,
                                           uint64_t completed_id,
                                           bool dry,
                                           char *err,
                                           size_t errlen) {
        const msgpack_object *sa = msg_get(attrs, "search_attributes");
        msgpack_packer *pk;
        Attrs a;
        int r;

        if (!sa) {
                snprintf(err, errlen, "field \"search_attributes\" must be a map");
                return -EINVAL;
        }
        r = visibility_check(m->store, NULL, sa, true, err, errlen);
        if (r < 0 || dry)
                return r;
        r = visibility_upsert(m->store, run->run_id, sa, err, errlen);
        if (r < 0)
                return r;
        pk = attrs_begin(&a, 2);
        (void) msg_pack_str(pk, "search_attributes");
        (void) msgpack_pack_object(pk, *sa);
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", completed_id);
        r = append_event(m, run, EVENT_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, &a, NULL);
        attrs_done(&a);
        return r;
}
