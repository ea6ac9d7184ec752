/* Search attributes on the client side: packing dur_search_attr arrays into the wire's map
 * name -> {type, value} (daemon/visibility.h), for starts and for the workflow's
 * UpsertWorkflowSearchAttributes command. */

#include "libclient/visibility.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "libclient/replay-internal.h"
#include "proto/msg.h"

static const char *const type_names[] = {
        [DUR_SA_KEYWORD] = "Keyword",
        [DUR_SA_TEXT] = "Text",
        [DUR_SA_INT] = "Int",
        [DUR_SA_DOUBLE] = "Double",
        [DUR_SA_BOOL] = "Bool",
        [DUR_SA_DATETIME] = "Datetime",
        [DUR_SA_KEYWORD_LIST] = "KeywordList",
};

static int pack_one(msgpack_packer *pk, const dur_search_attr *a, bool upsert) {
        if (!a->name || a->type < DUR_SA_KEYWORD || a->type > DUR_SA_UNSET ||
            (a->type == DUR_SA_UNSET && !upsert))
                return -EINVAL;
        if ((a->type == DUR_SA_KEYWORD || a->type == DUR_SA_TEXT) && !a->str)
                return -EINVAL;
        (void) msg_pack_str(pk, a->name);
        if (a->type == DUR_SA_UNSET)
                return msgpack_pack_nil(pk);
        (void) msgpack_pack_map(pk, 2);
        (void) msg_pack_kv_str(pk, "type", type_names[a->type]);
        (void) msg_pack_str(pk, "value");
        switch (a->type) {
        case DUR_SA_KEYWORD:
        case DUR_SA_TEXT:
                return msg_pack_str(pk, a->str);
        case DUR_SA_INT:
                return msgpack_pack_int64(pk, a->num);
        case DUR_SA_DOUBLE:
                return msgpack_pack_double(pk, a->dbl);
        case DUR_SA_BOOL:
                return a->num ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        case DUR_SA_DATETIME:
                return a->num < 0 ? -EINVAL : msgpack_pack_uint64(pk, (uint64_t) a->num);
        default:
                (void) msgpack_pack_array(pk, a->list_len);
                for (size_t i = 0; i < a->list_len; i++)
                        if (!a->list[i] || msg_pack_str(pk, a->list[i]) < 0)
                                return -EINVAL;
                return 0;
        }
}

int search_attrs_pack(msgpack_sbuffer *sb, const dur_search_attr *attrs, size_t n, bool upsert) {
        msgpack_packer pk;
        int k = 0;

        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        (void) msgpack_pack_map(&pk, n);
        for (size_t i = 0; k >= 0 && i < n; i++)
                k = pack_one(&pk, &attrs[i], upsert);
        return k < 0 ? -EINVAL : 0;
}

DUR_PUBLIC int dur_upsert_search_attributes(dur_wf *wf, const dur_search_attr *attrs, size_t n) {
        Command tmpl = { .type = COMMAND_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES };
        msgpack_sbuffer sb, cmd;
        msgpack_packer pk;
        int k;

        assert_return(wf && (attrs || n == 0), -EINVAL);
        if (!run_can_issue(wf))
                return -EDEADLK; /* from a query handler or a predicate */
        msgpack_sbuffer_init(&sb);
        msgpack_sbuffer_init(&cmd);
        k = search_attrs_pack(&sb, attrs, n, true);
        if (k >= 0) {
                msgpack_packer_init(&pk, &cmd, msgpack_sbuffer_write);
                (void) msgpack_pack_map(&pk, 1);
                (void) msg_pack_str(&pk, "search_attributes");
                k = msg_pack_raw(&pk, sb.data, sb.size);
        }
        if (k >= 0)
                k = run_add_command(wf, &tmpl, cmd.data, cmd.size);
        msgpack_sbuffer_destroy(&sb);
        msgpack_sbuffer_destroy(&cmd);
        return k < 0 ? k : 0;
}
