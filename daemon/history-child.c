/* Child workflows: the parent's commands StartChildWorkflowExecution and
 * RequestCancelExternalWorkflowExecution, the child's outcome reported back to its parent, and
 * the parent close policy (Temporal's model, SEMANTICS.md b.8; doc/protocol.md).
 *
 * A child is an ordinary run of its own workflow id, owned by the parent's owner, created in the
 * same transaction as its StartChildWorkflowExecutionInitiated; ChildWorkflowExecutionStarted
 * reaches the parent as an external event (buffered behind the task that started it). The table
 * children holds one row per child that has not closed: the child's closing finds its parent
 * there, the parent's closing finds its children. A child that continues as new keeps its row
 * (run_id follows the chain), so the parent hears of the chain's last run only.
 *
 * Ordering matters when a parent closes: its children's rows are deleted before they are
 * terminated or asked to cancel, so that a child closing here does not write to the parent row
 * that the caller holds in memory. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/history-internal.h"
#include "proto/event.h"
#include "proto/policy.h"

typedef struct ChildCommand {
        const char *workflow_id;
        const char *workflow_type;
        const char *task_queue;
        MsgBin input;
        uint64_t task_timeout_usec;
        uint64_t execution_timeout_usec;
        uint64_t run_timeout_usec;
        const msgpack_object *retry_policy;
        const char *parent_close_policy;
        uint64_t priority;
        const char *fairness_key;
        double fairness_weight;
} ChildCommand;

static const MsgField child_fields[] = {
        { "workflow_id", MSG_STR, offsetof(ChildCommand, workflow_id), true, NAME_MAX_LEN },
        { "workflow_type", MSG_STR, offsetof(ChildCommand, workflow_type), true, NAME_MAX_LEN },
        { "task_queue", MSG_STR, offsetof(ChildCommand, task_queue), false, NAME_MAX_LEN },
        { "input", MSG_BIN, offsetof(ChildCommand, input), false, PAYLOAD_SIZE_MAX },
        { "task_timeout_usec", MSG_UINT, offsetof(ChildCommand, task_timeout_usec) },
        { "execution_timeout_usec", MSG_UINT, offsetof(ChildCommand, execution_timeout_usec) },
        { "run_timeout_usec", MSG_UINT, offsetof(ChildCommand, run_timeout_usec) },
        { "retry_policy", MSG_MAP, offsetof(ChildCommand, retry_policy) },
        { "priority", MSG_UINT, offsetof(ChildCommand, priority) },
        { "fairness_key", MSG_STR, offsetof(ChildCommand, fairness_key), false,
          TASK_FAIRNESS_KEY_MAX },
        { "fairness_weight", MSG_DOUBLE, offsetof(ChildCommand, fairness_weight) },
        { "parent_close_policy", MSG_STR, offsetof(ChildCommand, parent_close_policy), false, 64 },
        {},
};

static int check_child(const ChildCommand *c, ParentClosePolicy *ret, char *err, size_t errlen) {
        if (!*c->workflow_id || !*c->workflow_type || (c->task_queue && !*c->task_queue)) {
                snprintf(err, errlen,
                         "fields \"workflow_id\", \"workflow_type\" and \"task_queue\" must not "
                         "be empty");
                return -EINVAL;
        }
        *ret = PARENT_CLOSE_TERMINATE; /* Temporal's default */
        if (!c->parent_close_policy)
                return 0;
        *ret = parent_close_policy_from_string(c->parent_close_policy);
        if (*ret < 0) {
                snprintf(err, errlen,
                         "field \"parent_close_policy\": unknown policy '%s' "
                         "(" PARENT_CLOSE_POLICY_NAMES ")",
                         c->parent_close_policy);
                return -EINVAL;
        }
        return 0;
}

/* StartChildWorkflowExecutionFailed, @cause: WorkflowAlreadyExists (the id is running already;
 * a child's id conflict policy is Fail) or PendingChildWorkflowsLimitExceeded. */
static int start_child_failed(
        Manager *m, RunRow *run, const ChildCommand *c, uint64_t initiated, const char *cause) {
        msgpack_packer *pk;
        Attrs a;
        int r;

        pk = attrs_begin(&a, 4);
        (void) msg_pack_kv_str(pk, "workflow_id", c->workflow_id);
        (void) msg_pack_kv_str(pk, "workflow_type", c->workflow_type);
        (void) msg_pack_kv_str(pk, "cause", cause);
        (void) msg_pack_kv_uint(pk, "initiated_event_id", initiated);
        r = append_external(m, run, EVENT_START_CHILD_WORKFLOW_EXECUTION_FAILED, &a, false);
        attrs_done(&a);
        return r;
}

int history_apply_start_child(Manager *m,
                              RunRow *run,
                              const msgpack_object *attrs,
                              uint64_t completed_id,
                              msgpack_zone *z,
                              bool dry,
                              char *err,
                              size_t errlen) {
        ChildCommand c = {};
        ParentClosePolicy policy;
        RunRow existing = {};
        ChildRow link = {};
        StartRequest req;
        msgpack_packer *pk;
        uint64_t initiated;
        Attrs a;
        int r;

        r = msg_parse(attrs, z, child_fields, &c, err, errlen);
        if (r >= 0)
                r = check_child(&c, &policy, err, errlen);
        if (r >= 0)
                r = history_check_priority(c.priority, c.fairness_weight, err, errlen);
        if (r >= 0 && c.retry_policy) {
                RetryPolicy p;

                r = retry_policy_parse(c.retry_policy, z, &p, err, errlen);
        }
        if (r < 0 || dry)
                return r;
        if (!c.task_queue)
                c.task_queue = run->task_queue;

        pk = attrs_begin(&a, 6);
        (void) msg_pack_kv_str(pk, "workflow_id", c.workflow_id);
        (void) msg_pack_kv_str(pk, "workflow_type", c.workflow_type);
        (void) msg_pack_kv_str(pk, "task_queue", c.task_queue);
        (void) pack_kv_payload(pk, "input", c.input.ptr, c.input.size);
        (void) msg_pack_kv_str(pk, "parent_close_policy", parent_close_policy_to_string(policy));
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", completed_id);
        r = append_event(m, run, EVENT_START_CHILD_WORKFLOW_EXECUTION_INITIATED, &a, &initiated);
        attrs_done(&a);
        if (r < 0)
                return r;

        /* DESIGN.md §10: a limit on what one run may hold (run-limit.h). Temporal fails the
         * workflow task instead, which a deterministic workflow would repeat; here the child's
         * future fails. */
        r = run_limit_check(m, run, RUN_LIMIT_PENDING_CHILDREN, 1, err, errlen);
        if (r == -ENOBUFS)
                return start_child_failed(m, run, &c, initiated,
                                          run_limit_cause(RUN_LIMIT_PENDING_CHILDREN));
        if (r < 0)
                return r;
        r = store_run_find_running(m->store, c.workflow_id, &existing);
        if (r >= 0) {
                run_row_done(&existing);
                return start_child_failed(m, run, &c, initiated, "WorkflowAlreadyExists");
        }
        if (r != -ENOENT)
                return r;

        memcpy(link.parent_run_id, run->run_id, 37);
        link.initiated_id = initiated;
        link.parent_workflow_id = run->workflow_id;
        link.workflow_id = (char *) c.workflow_id;
        link.policy = policy;
        run_id_new(link.run_id);
        req = (StartRequest){
                .workflow_id = c.workflow_id,
                .workflow_type = c.workflow_type,
                .task_queue = c.task_queue,
                .input = c.input,
                .task_timeout_usec = c.task_timeout_usec,
                .execution_timeout_usec = c.execution_timeout_usec,
                .run_timeout_usec = c.run_timeout_usec,
                .retry_policy = c.retry_policy,
                .priority = c.priority ? (unsigned) c.priority : run->priority, /* inherited */
                .fairness_key = c.fairness_key ? c.fairness_key : run->fairness_key,
                .fairness_weight = c.fairness_key ? c.fairness_weight : run->fairness_weight,
                .parent = &link,
        };
        r = create_run(m, &req, run->uid, NULL, link.run_id);
        if (r >= 0)
                r = store_child_insert(m->store, &link);
        if (r < 0)
                return r;

        pk = attrs_begin(&a, 4);
        (void) msg_pack_kv_str(pk, "workflow_id", c.workflow_id);
        (void) msg_pack_kv_str(pk, "run_id", link.run_id);
        (void) msg_pack_kv_str(pk, "workflow_type", c.workflow_type);
        (void) msg_pack_kv_uint(pk, "initiated_event_id", initiated);
        r = append_external(m, run, EVENT_CHILD_WORKFLOW_EXECUTION_STARTED, &a, false);
        attrs_done(&a);
        return r;
}

typedef struct CancelCommand {
        const char *workflow_id;
        const char *run_id;
} CancelCommand;

static const MsgField cancel_fields[] = {
        { "workflow_id", MSG_STR, offsetof(CancelCommand, workflow_id), true, NAME_MAX_LEN },
        { "run_id", MSG_STR, offsetof(CancelCommand, run_id), false, 36 },
        {},
};

/* The run a RequestCancelExternalWorkflowExecution names, if it runs, belongs to the same owner
 * (DESIGN.md §10: others' runs do not exist) and is not the requesting run itself. */
static int find_cancel_target(Manager *m, const RunRow *run, const CancelCommand *c, RunRow *ret) {
        int r;

        r = c->run_id ? store_run_get(m->store, c->run_id, ret)
                      : store_run_find_running(m->store, c->workflow_id, ret);
        if (r < 0)
                return r;
        if (ret->status != WORKFLOW_STATUS_RUNNING || ret->uid != run->uid ||
            !streq(ret->workflow_id, c->workflow_id) || streq(ret->run_id, run->run_id)) {
                run_row_done(ret);
                return -ENOENT;
        }
        return 0;
}

int history_apply_request_cancel_external(Manager *m,
                                          RunRow *run,
                                          const msgpack_object *attrs,
                                          uint64_t completed_id,
                                          msgpack_zone *z,
                                          bool dry,
                                          char *err,
                                          size_t errlen) {
        _cleanup_(run_row_done) RunRow target = {};
        CancelCommand c = {};
        msgpack_packer *pk;
        uint64_t initiated;
        char reason[256];
        ApiError e = {};
        bool found;
        Attrs a;
        int r;

        r = msg_parse(attrs, z, cancel_fields, &c, err, errlen);
        if (r < 0 || dry)
                return r;
        pk = attrs_begin(&a, c.run_id ? 3 : 2);
        (void) msg_pack_kv_str(pk, "workflow_id", c.workflow_id);
        if (c.run_id)
                (void) msg_pack_kv_str(pk, "run_id", c.run_id);
        (void) msg_pack_kv_uint(pk, "workflow_task_completed_event_id", completed_id);
        r = append_event(m, run, EVENT_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED, &a,
                         &initiated);
        attrs_done(&a);
        if (r < 0)
                return r;

        r = find_cancel_target(m, run, &c, &target);
        if (r < 0 && r != -ENOENT)
                return r;
        found = r >= 0;
        if (found) {
                (void) snprintf(reason, sizeof(reason), "requested by workflow '%s'",
                                run->workflow_id);
                r = history_request_cancel(m, target.run_id, reason, &e);
                if (r < 0)
                        return r;
        }
        pk = attrs_begin(&a, found ? 3 : 4);
        (void) msg_pack_kv_str(pk, "workflow_id", c.workflow_id);
        (void) msg_pack_kv_str(pk, "run_id", found ? target.run_id : (c.run_id ? c.run_id : ""));
        (void) msg_pack_kv_uint(pk, "initiated_event_id", initiated);
        if (!found)
                (void) msg_pack_kv_str(pk, "cause", "ExternalWorkflowExecutionNotFound");
        r = append_external(m, run,
                            found ? EVENT_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED
                                  : EVENT_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
                            &a, false);
        attrs_done(&a);
        return r;
}

/* ---- closing ---- */

typedef struct Orphans {
        ChildRow *rows; /* strings not owned: only run_id and policy are used */
        size_t n, alloc;
} Orphans;

static int collect_child(const ChildRow *c, void *userdata) {
        Orphans *o = userdata;

        if (o->n == o->alloc) {
                size_t n = o->alloc ? 2 * o->alloc : 8;
                ChildRow *p = reallocarray(o->rows, n, sizeof(*p));
                if (!p)
                        return -ENOMEM;
                o->rows = p;
                o->alloc = n;
        }
        o->rows[o->n++] = (ChildRow){ .initiated_id = c->initiated_id, .policy = c->policy };
        memcpy(o->rows[o->n - 1].run_id, c->run_id, 37);
        return 0;
}

/* The parent close policy of each child still running: Terminate (the default), RequestCancel or
 * Abandon. A child that closed meanwhile is no error. */
static int apply_parent_close_policies(Manager *m, const RunRow *run) {
        _cleanup_free_ ChildRow *rows = NULL;
        Orphans o = {};
        char reason[256];
        int r;

        r = store_children_foreach(m->store, run->run_id, collect_child, &o);
        rows = o.rows;
        if (r < 0)
                return r;
        for (size_t i = 0; i < o.n; i++) {
                r = store_child_delete(m->store, run->run_id, rows[i].initiated_id);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < o.n; i++) {
                ApiError e = {};

                (void) snprintf(reason, sizeof(reason),
                                "parent workflow '%s' closed (parent close policy %s)",
                                run->workflow_id,
                                parent_close_policy_to_string((ParentClosePolicy) rows[i].policy));
                if (rows[i].policy == PARENT_CLOSE_ABANDON)
                        continue;
                if (rows[i].policy == PARENT_CLOSE_REQUEST_CANCEL)
                        r = history_request_cancel(m, rows[i].run_id, reason, &e);
                else
                        r = history_terminate(m, rows[i].run_id, reason, NULL, &e);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 0;
}

static EventType child_event_of(WorkflowStatus s) {
        switch (s) {
        case WORKFLOW_STATUS_COMPLETED:
                return EVENT_CHILD_WORKFLOW_EXECUTION_COMPLETED;
        case WORKFLOW_STATUS_FAILED:
                return EVENT_CHILD_WORKFLOW_EXECUTION_FAILED;
        case WORKFLOW_STATUS_CANCELED:
                return EVENT_CHILD_WORKFLOW_EXECUTION_CANCELED;
        case WORKFLOW_STATUS_TIMED_OUT:
                return EVENT_CHILD_WORKFLOW_EXECUTION_TIMED_OUT;
        default:
                return EVENT_CHILD_WORKFLOW_EXECUTION_TERMINATED;
        }
}

/* Tells the parent of child run @run how it closed: Child...Completed (result), ...Failed (the
 * child's failure, whose cause chain is kept as is), ...Canceled, ...TimedOut, ...Terminated. */
static int report_to_parent(Manager *m, const RunRow *run) {
        _cleanup_(run_row_done) RunRow parent = {};
        ChildRow link = {};
        msgpack_packer *pk;
        EventType type = child_event_of(run->status);
        uint64_t initiated;
        Attrs a;
        int r;

        r = store_child_get_by_run(m->store, run->run_id, &link);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        initiated = link.initiated_id;
        r = store_child_delete(m->store, link.parent_run_id, link.initiated_id);
        if (r >= 0)
                r = store_run_get(m->store, link.parent_run_id, &parent);
        child_row_done(&link);
        if (r == -ENOENT)
                return 0;
        if (r < 0 || parent.status != WORKFLOW_STATUS_RUNNING)
                return r < 0 ? r : 0;
        pk = attrs_begin(&a, 5);
        (void) msg_pack_kv_str(pk, "workflow_id", run->workflow_id);
        (void) msg_pack_kv_str(pk, "run_id", run->run_id);
        (void) msg_pack_kv_str(pk, "workflow_type", run->workflow_type);
        (void) msg_pack_kv_uint(pk, "initiated_event_id", initiated);
        if (type == EVENT_CHILD_WORKFLOW_EXECUTION_COMPLETED)
                (void) pack_kv_payload(pk, "result", run->result.ptr, run->result.size);
        else
                (void) pack_kv_raw(pk, "failure", &run->failure);
        r = append_external(m, &parent, type, &a, false);
        attrs_done(&a);
        if (r < 0)
                return r;
        return store_run_update(m->store, &parent);
}

int history_children_on_close(Manager *m, RunRow *run, bool continued) {
        int r;

        r = apply_parent_close_policies(m, run);
        if (r < 0 || continued)
                return r;
        return report_to_parent(m, run);
}
