/* Search attributes on the client side: packing dur_search_attr arrays into the wire's map
 * name -> {type, value} (daemon/visibility.h), for starts and for the workflow's
 * UpsertWorkflowSearchAttributes command. */

#include "libclient/visibility.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "libclient/buf.h"
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

/* ---- ListWorkflows with a query ---- */

DUR_PUBLIC void dur_list_page_done(dur_list_page *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++) {
                free(p->items[i].workflow_id);
                free(p->items[i].run_id);
                free(p->items[i].workflow_type);
                free(p->items[i].task_queue);
                free(p->items[i].status);
        }
        free(p->items);
        free(p->next_page_token);
        *p = (dur_list_page){};
}

static int str_dup(const msgpack_object *o, char **ret) {
        if (!o || o->type != MSGPACK_OBJECT_STR)
                return -EBADMSG;
        *ret = strndup(o->via.str.ptr, o->via.str.size);
        return *ret ? 0 : -ENOMEM;
}

static uint64_t uint_of(const msgpack_object *o) {
        return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

static int entry_parse(const msgpack_object *m, dur_list_entry *e) {
        int r = str_dup(msg_get(m, "workflow_id"), &e->workflow_id);

        if (r >= 0)
                r = str_dup(msg_get(m, "run_id"), &e->run_id);
        if (r >= 0)
                r = str_dup(msg_get(m, "workflow_type"), &e->workflow_type);
        if (r >= 0)
                r = str_dup(msg_get(m, "task_queue"), &e->task_queue);
        if (r >= 0)
                r = str_dup(msg_get(m, "status"), &e->status);
        e->start_time = uint_of(msg_get(m, "start_time"));
        e->close_time = uint_of(msg_get(m, "close_time"));
        return r;
}

static int page_parse(const msgpack_object *answer, dur_list_page *p) {
        const msgpack_object *w = msg_get(answer, "workflows"), *t;
        int r = 0;

        if (!w || w->type != MSGPACK_OBJECT_ARRAY)
                return -EBADMSG;
        p->items = calloc(w->via.array.size ? w->via.array.size : 1, sizeof(*p->items));
        if (!p->items)
                return -ENOMEM;
        for (uint32_t i = 0; r >= 0 && i < w->via.array.size; i++, p->n++)
                r = entry_parse(&w->via.array.ptr[i], &p->items[i]);
        t = msg_get(answer, "next_page_token");
        if (r >= 0 && t)
                r = str_dup(t, &p->next_page_token);
        return r;
}

DUR_PUBLIC int dur_client_list(dur_client *c,
                               const char *query,
                               const char *page_token,
                               uint64_t page_size,
                               dur_list_page *ret) {
        _cleanup_(dur_buf_freep) dur_buf *answer = NULL;
        dur_list_page p = {};
        msgpack_unpacked u;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        int r;

        assert_return(c && ret, -EINVAL);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        (void) msgpack_pack_map(&pk, 2 + !!page_token + (page_size > 0));
        (void) msg_pack_kv_str(&pk, "op", "ListWorkflows");
        /* An empty query lists everything, and still takes the filter's path (page tokens). */
        (void) msg_pack_kv_str(&pk, "query", query ? query : "");
        if (page_token)
                (void) msg_pack_kv_str(&pk, "page_token", page_token);
        if (page_size > 0)
                (void) msg_pack_kv_uint(&pk, "limit", page_size);
        r = dur_client_call(c, &(dur_buf){ sb.data, sb.size }, &answer);
        msgpack_sbuffer_destroy(&sb);
        if (r < 0)
                return r;
        msgpack_unpacked_init(&u);
        r = msg_decode(answer->data, answer->size, &u);
        if (r >= 0)
                r = page_parse(&u.data, &p);
        msgpack_unpacked_destroy(&u);
        if (r < 0) {
                dur_list_page_done(&p);
                return r;
        }
        *ret = p;
        return 0;
}
