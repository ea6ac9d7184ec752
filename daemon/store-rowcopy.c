/* Deep copies and comparisons of the rows the store caches (store-rowcache.h), and of blobs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store-internal.h"

static int copy_str(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int blob_copy(const void *ptr, size_t size, Blob *ret) {
        *ret = (Blob){ NULL, 0 };
        if (!ptr)
                return 0;
        ret->ptr = malloc(size ? size : 1);
        if (!ret->ptr)
                return -ENOMEM;
        memcpy(ret->ptr, ptr, size);
        ret->size = size;
        return 0;
}

static int copy_blob(const Blob *b, Blob *ret) {
        return blob_copy(b->ptr, b->size, ret);
}

static bool str_equal(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

static bool blob_equal(const Blob *a, const Blob *b) {
        return !a->ptr == !b->ptr && a->size == b->size &&
               (a->size == 0 || memcmp(a->ptr, b->ptr, a->size) == 0);
}

static size_t str_bytes(const char *s) {
        return s ? strlen(s) + 1 : 0;
}

size_t run_row_bytes(const RunRow *r) {
        return str_bytes(r->workflow_id) + str_bytes(r->workflow_type) + str_bytes(r->task_queue) +
               str_bytes(r->request_id) + str_bytes(r->fairness_key) + r->result.size +
               r->failure.size;
}

size_t activity_row_bytes(const ActivityRow *a) {
        return str_bytes(a->activity_id) + str_bytes(a->activity_type) + str_bytes(a->task_queue) +
               str_bytes(a->identity) + str_bytes(a->fairness_key) + a->input.size +
               a->retry_non_retryable.size + a->heartbeat_details.size + a->last_failure.size;
}

int run_row_copy(const RunRow *src, RunRow *ret) {
        RunRow r = *src;
        int k;

        /* The pointers are the source's until each is replaced by its copy (or NULL). */
        r.workflow_id = r.workflow_type = r.task_queue = r.request_id = r.fairness_key = NULL;
        r.result = r.failure = (Blob){ NULL, 0 };
        k = copy_str(src->workflow_id, &r.workflow_id);
        if (k >= 0)
                k = copy_str(src->workflow_type, &r.workflow_type);
        if (k >= 0)
                k = copy_str(src->task_queue, &r.task_queue);
        if (k >= 0)
                k = copy_str(src->request_id, &r.request_id);
        if (k >= 0)
                k = copy_str(src->fairness_key, &r.fairness_key);
        if (k >= 0)
                k = copy_blob(&src->result, &r.result);
        if (k >= 0)
                k = copy_blob(&src->failure, &r.failure);
        if (k < 0) {
                run_row_done(&r);
                *ret = (RunRow){};
                return k;
        }
        *ret = r;
        return 0;
}

bool run_row_equal(const RunRow *a, const RunRow *b) {
        return strcmp(a->run_id, b->run_id) == 0 && str_equal(a->workflow_id, b->workflow_id) &&
               str_equal(a->workflow_type, b->workflow_type) &&
               str_equal(a->task_queue, b->task_queue) && str_equal(a->request_id, b->request_id) &&
               a->status == b->status && a->start_time == b->start_time &&
               a->close_time == b->close_time && a->uid == b->uid &&
               a->next_event_id == b->next_event_id &&
               a->task_timeout_usec == b->task_timeout_usec && a->wft_state == b->wft_state &&
               a->wft_scheduled_id == b->wft_scheduled_id &&
               a->wft_started_id == b->wft_started_id && a->wft_attempt == b->wft_attempt &&
               a->cancel_requested == b->cancel_requested && a->sticky_conn == b->sticky_conn &&
               a->sticky_next_id == b->sticky_next_id && blob_equal(&a->result, &b->result) &&
               blob_equal(&a->failure, &b->failure) && a->priority == b->priority &&
               str_equal(a->fairness_key, b->fairness_key) &&
               a->fairness_weight == b->fairness_weight && a->paused == b->paused;
}

int activity_row_copy(const ActivityRow *src, ActivityRow *ret) {
        ActivityRow a = *src;
        int k;

        a.activity_id = a.activity_type = a.task_queue = a.identity = a.fairness_key = NULL;
        a.input = a.retry_non_retryable = a.heartbeat_details = a.last_failure = (Blob){ NULL, 0 };
        k = copy_str(src->activity_id, &a.activity_id);
        if (k >= 0)
                k = copy_str(src->activity_type, &a.activity_type);
        if (k >= 0)
                k = copy_str(src->task_queue, &a.task_queue);
        if (k >= 0)
                k = copy_str(src->identity, &a.identity);
        if (k >= 0)
                k = copy_str(src->fairness_key, &a.fairness_key);
        if (k >= 0)
                k = copy_blob(&src->input, &a.input);
        if (k >= 0)
                k = copy_blob(&src->retry_non_retryable, &a.retry_non_retryable);
        if (k >= 0)
                k = copy_blob(&src->heartbeat_details, &a.heartbeat_details);
        if (k >= 0)
                k = copy_blob(&src->last_failure, &a.last_failure);
        if (k < 0) {
                activity_row_done(&a);
                *ret = (ActivityRow){};
                return k;
        }
        *ret = a;
        return 0;
}

bool activity_row_equal(const ActivityRow *a, const ActivityRow *b) {
        return strcmp(a->run_id, b->run_id) == 0 && a->scheduled_id == b->scheduled_id &&
               str_equal(a->activity_id, b->activity_id) &&
               str_equal(a->activity_type, b->activity_type) &&
               str_equal(a->task_queue, b->task_queue) && blob_equal(&a->input, &b->input) &&
               a->state == b->state && a->attempt == b->attempt &&
               a->scheduled_time == b->scheduled_time && a->attempt_time == b->attempt_time &&
               a->started_time == b->started_time &&
               a->schedule_to_close_usec == b->schedule_to_close_usec &&
               a->schedule_to_start_usec == b->schedule_to_start_usec &&
               a->start_to_close_usec == b->start_to_close_usec &&
               a->heartbeat_usec == b->heartbeat_usec &&
               a->retry_initial_usec == b->retry_initial_usec &&
               a->retry_backoff == b->retry_backoff &&
               a->retry_max_interval_usec == b->retry_max_interval_usec &&
               a->retry_max_attempts == b->retry_max_attempts &&
               blob_equal(&a->retry_non_retryable, &b->retry_non_retryable) &&
               blob_equal(&a->heartbeat_details, &b->heartbeat_details) &&
               blob_equal(&a->last_failure, &b->last_failure) &&
               a->cancel_requested == b->cancel_requested && str_equal(a->identity, b->identity) &&
               a->priority == b->priority && str_equal(a->fairness_key, b->fairness_key) &&
               a->fairness_weight == b->fairness_weight && a->paused == b->paused;
}
