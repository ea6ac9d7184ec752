/* orders-worker: the C twins of the Temporal order examples, in one worker process polling the
 * task queue "order-processing".
 *
 *   OrderWorkflow      create_order, then process_payment and reserve_inventory in parallel;
 *                      query "get_status"; signal "cancel_order" runs cancel_order_activity.
 *   OrderSagaWorkflow  reserve_inventory, charge_payment, create_shipment; on a final failure
 *                      the compensations of the steps that succeeded run in reverse order
 *                      (refund_payment, release_inventory), in a detached scope that a cancel
 *                      request does not interrupt, and the workflow fails with the original
 *                      failure.
 *   ApprovalWorkflow   waits up to 24 h (or "timeout_ms") for signal "approve" with a boolean;
 *                      query "get_status"; update "comment" {"comment": TEXT} keeps the
 *                      reviewer's comment and returns {"status", "comment"} (its validator
 *                      refuses an empty comment).
 *
 * Inputs are maps such as {"order_id": "42", "amount": 100}; "card": "declined" makes the
 * payment fail for good (type PaymentDeclined). Test knobs: "delay_ms" makes every activity
 * sleep that long, "fail_times": N makes the first N attempts of every activity fail retryably,
 * "start_to_close_ms" replaces the start-to-close timeout of every activity (so that an attempt
 * lost in a crash is retried after that, not after minutes), and "activities": {"<activity
 * type>": {"delay_ms": ..., "fail_times": ..., "start_to_close_ms": ...}} sets them for one
 * activity type only, e.g. {"order_id": "7", "activities": {"create_shipment": {"fail_times": 9}}}
 * exhausts the saga's three attempts and triggers its compensations.
 *
 * Workflow code talks to the world only through dur_* calls: it keeps its state in
 * dur_wf_state(), and prints only when it is not replaying, so a line appears once per decision
 * however often the history is replayed. */

#include <durable/durable.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#define DEFAULT_TASK_QUEUE "order-processing"

static dur_worker *worker; /* for the signal handler */
static bool arg_verbose;

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        fputs("orders-worker: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

/* ---- Activities ------------------------------------------------------------------------------- */

/* Sleeps @delay_ms in slices of at most a second, heartbeating between them, so that a long
 * simulated job still learns when its workflow cancels it. */
static int simulate_work(dur_actx *ctx, uint64_t delay_ms) {
        while (delay_ms > 0) {
                uint64_t slice = delay_ms < 1000 ? delay_ms : 1000;
                struct timespec ts = { .tv_sec = (time_t) (slice / 1000),
                                       .tv_nsec = (long) (slice % 1000) * 1000000 };

                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                delay_ms -= slice;
                if (delay_ms > 0 && dur_actx_heartbeat(ctx, NULL) == DUR_CANCELED)
                        return DUR_CANCELED;
        }
        return 0;
}

/* What every activity does first: log its idempotency key (the key a real service would dedup
 * on), simulate work, and fail on purpose while the "fail_times" knob says so. */
static int activity_begin(dur_actx *ctx, const msgpack_object *in, const char *name) {
        unsigned attempt = dur_actx_attempt(ctx), fail_times = 0;
        uint64_t delay_ms = 0;
        int r;

        if (dur_unpack(in, "{s?U, s?u}", "delay_ms", &delay_ms, "fail_times", &fail_times) < 0)
                return dur_actx_fail(ctx, "InvalidInput", true,
                                     "%s: input must be a map; delay_ms and fail_times unsigned",
                                     name);
        say("%s: attempt %u, idempotency key %s", name, attempt, dur_actx_idempotency_key(ctx));
        r = simulate_work(ctx, delay_ms);
        if (r < 0)
                return r;
        if (attempt <= fail_times)
                return dur_actx_fail(ctx, "SimulatedFailure", false,
                                     "%s: attempt %u fails on purpose (fail_times %u)", name,
                                     attempt, fail_times);
        return 0;
}

static int input_string(dur_actx *ctx,
                        const msgpack_object *in,
                        const char *name,
                        const char *key,
                        const char **ret) {
        if (dur_unpack(in, "{s:s}", key, ret) < 0)
                return dur_actx_fail(ctx, "InvalidInput", true, "%s: input needs a string \"%s\"",
                                     name, key);
        return 0;
}

/* The result {"<key>": "<prefix>-<order id>"}: ids derived from the order id make every
 * attempt answer the same, as an idempotent service would. */
static int
derived_id(msgpack_packer *out, const char *key, const char *prefix, const char *order_id) {
        char id[256];

        snprintf(id, sizeof(id), "%s-%s", prefix, order_id);
        return dur_pack(out, "{s:s}", key, id);
}

static int create_order(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        const char *order_id;

        DUR_TRY(activity_begin(ctx, in, "create_order"));
        DUR_TRY(input_string(ctx, in, "create_order", "order_id", &order_id));
        return dur_pack(out, "{s:s}", "order_id", order_id);
}

/* process_payment (OrderWorkflow) and charge_payment (OrderSagaWorkflow). */
static int charge(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out, const char *name) {
        const char *order_id, *card = NULL;

        DUR_TRY(activity_begin(ctx, in, name));
        DUR_TRY(input_string(ctx, in, name, "order_id", &order_id));
        (void) dur_unpack(in, "{s?s}", "card", &card);
        if (card && streq(card, "declined"))
                return dur_actx_fail(ctx, "PaymentDeclined", true, "Payment declined for order %s",
                                     order_id);
        return derived_id(out, "payment_id", "pay", order_id);
}

static int process_payment(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        return charge(ctx, in, out, "process_payment");
}

static int charge_payment(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        return charge(ctx, in, out, "charge_payment");
}

static int reserve_inventory(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        const char *order_id;

        DUR_TRY(activity_begin(ctx, in, "reserve_inventory"));
        DUR_TRY(input_string(ctx, in, "reserve_inventory", "order_id", &order_id));
        return derived_id(out, "reservation_id", "res", order_id);
}

static int create_shipment(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        const char *order_id;

        DUR_TRY(activity_begin(ctx, in, "create_shipment"));
        DUR_TRY(input_string(ctx, in, "create_shipment", "order_id", &order_id));
        return derived_id(out, "shipment_id", "ship", order_id);
}

static int cancel_order_activity(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        const char *order_id;

        DUR_TRY(activity_begin(ctx, in, "cancel_order_activity"));
        DUR_TRY(input_string(ctx, in, "cancel_order_activity", "order_id", &order_id));
        say("cancel_order_activity: order %s cancelled", order_id);
        return dur_pack(out, "{s:s, s:b}", "order_id", order_id, "cancelled", true);
}

/* Compensations of the saga: undo by the id the step returned. */
static int undo(dur_actx *ctx,
                const msgpack_object *in,
                msgpack_packer *out,
                const char *name,
                const char *key,
                const char *done_key) {
        const char *id;

        DUR_TRY(activity_begin(ctx, in, name));
        DUR_TRY(input_string(ctx, in, name, key, &id));
        say("%s: %s", name, id);
        return dur_pack(out, "{s:s}", done_key, id);
}

static int release_inventory(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        return undo(ctx, in, out, "release_inventory", "reservation_id", "released");
}

static int refund_payment(dur_actx *ctx, const msgpack_object *in, msgpack_packer *out) {
        return undo(ctx, in, out, "refund_payment", "payment_id", "refunded");
}

static const dur_activity_def activities[] = {
        { "create_order", create_order },
        { "process_payment", process_payment },
        { "reserve_inventory", reserve_inventory },
        { "cancel_order_activity", cancel_order_activity },
        { "charge_payment", charge_payment },
        { "create_shipment", create_shipment },
        { "release_inventory", release_inventory },
        { "refund_payment", refund_payment },
};

/* ---- Workflow helpers ------------------------------------------------------------------------- */

/* The fields of an order input that workflows forward to activities. Pointers into the input,
 * which stays valid for the whole run. */
typedef struct order_input {
        const char *order_id;
        const msgpack_object *amount; /* any number, or NULL */
        const char *card;             /* or NULL */
} order_input;

static int order_input_parse(dur_wf *wf, const msgpack_object *in, order_input *ret) {
        order_input o = { NULL };

        if (dur_unpack(in, "{s:s, s?o, s?s}", "order_id", &o.order_id, "amount", &o.amount, "card",
                       &o.card) < 0)
                return dur_fail(wf, "InvalidInput", true,
                                "input must be a map with a string \"order_id\"");
        *ret = o;
        return 0;
}

/* Test knobs for one activity type (see the top of this file). */
typedef struct knobs {
        uint64_t delay_ms;
        unsigned fail_times;
        uint64_t start_to_close_ms; /* 0: the activity's own timeout */
} knobs;

static knobs knobs_for(const msgpack_object *in, const char *activity) {
        const msgpack_object *own = NULL;
        knobs k = { 0 };

        (void) dur_unpack(in, "{s?U, s?u, s?U}", "delay_ms", &k.delay_ms, "fail_times",
                          &k.fail_times, "start_to_close_ms", &k.start_to_close_ms);
        if (dur_unpack(in, "{s?{s?o}}", "activities", activity, &own) == 0 && own)
                (void) dur_unpack(own, "{s?U, s?u, s?U}", "delay_ms", &k.delay_ms, "fail_times",
                                  &k.fail_times, "start_to_close_ms", &k.start_to_close_ms);
        return k;
}

/* The options of @activity: @base, or a copy in @buf with the "start_to_close_ms" knob. */
static const dur_activity_opts *opts_for(const msgpack_object *in,
                                         const char *activity,
                                         const dur_activity_opts *base,
                                         dur_activity_opts *buf) {
        knobs k = knobs_for(in, activity);

        if (k.start_to_close_ms == 0 || k.start_to_close_ms > UINT64_MAX / DUR_MSEC)
                return base;
        *buf = *base;
        buf->start_to_close = k.start_to_close_ms * DUR_MSEC;
        return buf;
}

/* The arguments of an order activity: the order's fields plus its knobs. */
static dur_buf *order_args(const msgpack_object *in, const order_input *o, const char *activity) {
        knobs k = knobs_for(in, activity);

        return dur_args("{s:s, s:o?, s:s?, s:U, s:u}", "order_id", o->order_id, "amount", o->amount,
                        "card", o->card, "delay_ms", k.delay_ms, "fail_times", k.fail_times);
}

/* The string at @key of an activity result; a malformed result fails the workflow. */
static int result_string(dur_wf *wf,
                         const msgpack_object *result,
                         const char *activity,
                         const char *key,
                         const char **ret) {
        if (!result || dur_unpack(result, "{s:s}", key, ret) < 0)
                return dur_fail(wf, "BadActivityResult", true, "%s returned no string \"%s\"",
                                activity, key);
        return 0;
}

static int get_result_string(
        dur_wf *wf, dur_future *f, const char *activity, const char *key, const char **ret) {
        return result_string(wf, dur_future_result(f), activity, key, ret);
}

/* ---- OrderWorkflow ---------------------------------------------------------------------------- */

static const dur_activity_opts create_order_opts = {
        .start_to_close = 30 * DUR_SEC,
        .retry = { .maximum_attempts = 3, .initial_interval = DUR_SEC },
};
static const dur_activity_opts payment_opts = { .start_to_close = 5 * DUR_MIN };
static const dur_activity_opts inventory_opts = { .start_to_close = 2 * DUR_MIN };
static const dur_activity_opts cancel_opts = { .start_to_close = 30 * DUR_SEC };

typedef struct order {
        const char *status; /* pending, processing, completed, cancelling, cancelled */
        const msgpack_object *input;
        order_input fields;
        const char *order_id; /* from create_order; NULL until then */
        bool cancel_requested;
        bool cancel_done;
} order;

static bool order_created(dur_wf *wf, void *arg) {
        return ((order *) arg)->order_id != NULL;
}

static bool order_cancel_done(dur_wf *wf, void *arg) {
        return ((order *) arg)->cancel_done;
}

/* After a cancel_order signal the run does not go on: it waits for the compensation the signal
 * handler runs and completes with {"order_id", "status": "cancelled"}. */
static int order_finish_cancelled(dur_wf *wf, order *st, msgpack_packer *out) {
        int r = dur_wait_condition(wf, order_cancel_done, st, 0);

        if (r < 0)
                return r;
        return dur_pack(out, "{s:s, s:s}", "order_id", st->order_id, "status", "cancelled");
}

static int order_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        order *st = dur_wf_state(wf, sizeof(*st));
        const msgpack_object *created = NULL;
        const char *payment_id, *reservation_id;
        dur_activity_opts o1, o2, o3;
        dur_future *pay, *inv;
        int r;

        if (!st->status) /* a cancel signal may have been handled first */
                st->status = "pending";
        st->input = in;
        DUR_TRY(order_input_parse(wf, in, &st->fields));
        DUR_TRY(dur_execute_activity(
                wf, "create_order", order_args(in, &st->fields, "create_order"),
                opts_for(in, "create_order", &create_order_opts, &o1), &created));
        DUR_TRY(result_string(wf, created, "create_order", "order_id", &st->order_id));
        st->fields.order_id = st->order_id;
        if (st->cancel_requested)
                return order_finish_cancelled(wf, st, out);

        st->status = "processing";
        pay = dur_start_activity(wf, "process_payment",
                                 order_args(in, &st->fields, "process_payment"),
                                 opts_for(in, "process_payment", &payment_opts, &o2));
        inv = dur_start_activity(wf, "reserve_inventory",
                                 order_args(in, &st->fields, "reserve_inventory"),
                                 opts_for(in, "reserve_inventory", &inventory_opts, &o3));
        if (!pay || !inv)
                return -ENOMEM;
        r = DUR_AWAIT_ALL(wf, pay, inv);
        if (st->cancel_requested) /* the cancellation is the compensation; it wins */
                return order_finish_cancelled(wf, st, out);
        DUR_TRY(r);
        DUR_TRY(get_result_string(wf, pay, "process_payment", "payment_id", &payment_id));
        DUR_TRY(get_result_string(wf, inv, "reserve_inventory", "reservation_id", &reservation_id));
        st->status = "completed";
        return dur_pack(out, "{s:s, s:s, s:s}", "order_id", st->order_id, "payment_id", payment_id,
                        "reservation_id", reservation_id);
}

static int order_status(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        order *st = dur_wf_state(wf, sizeof(*st));

        return dur_pack(out, "s", st->status ? st->status : "pending");
}

/* Signal cancel_order (optional argument: a reason string). Runs the compensating activity once
 * the order exists; a second signal, or one after completion, changes nothing. */
static int order_cancel(dur_wf *wf, const msgpack_object *args) {
        order *st = dur_wf_state(wf, sizeof(*st));
        const char *reason = "no reason given";
        dur_activity_opts o;
        int r;

        if (st->cancel_requested || (st->status && streq(st->status, "completed")))
                return 0;
        st->cancel_requested = true;
        st->status = "cancelling";
        r = dur_wait_condition(wf, order_created, st, 0);
        if (r < 0)
                return r;
        if (!dur_is_replaying(wf)) {
                if (args)
                        (void) dur_unpack(args, "s", &reason);
                say("OrderWorkflow %s: cancelling order %s (%s)", dur_wf_id(wf), st->order_id,
                    reason);
        }
        r = dur_execute_activity(wf, "cancel_order_activity",
                                 order_args(st->input, &st->fields, "cancel_order_activity"),
                                 opts_for(st->input, "cancel_order_activity", &cancel_opts, &o),
                                 NULL);
        if (r < 0)
                return r;
        st->status = "cancelled";
        st->cancel_done = true;
        return 0;
}

/* ---- OrderSagaWorkflow ------------------------------------------------------------------------ */

/* Three attempts per step, so that a step that keeps failing ends the saga instead of retrying
 * for ever; compensations retry until they succeed (the default policy). */
static const dur_activity_opts saga_step_opts = {
        .start_to_close = 2 * DUR_MIN,
        .retry = { .maximum_attempts = 3, .initial_interval = DUR_SEC },
};
static const dur_activity_opts saga_payment_opts = {
        .start_to_close = 5 * DUR_MIN,
        .retry = { .maximum_attempts = 3, .initial_interval = DUR_SEC },
};
static const dur_activity_opts saga_shipment_opts = {
        .start_to_close = 3 * DUR_MIN,
        .retry = { .maximum_attempts = 3, .initial_interval = DUR_SEC },
};
static const dur_activity_opts compensation_opts = { .start_to_close = 2 * DUR_MIN };

typedef struct compensation {
        const char *activity;
        const char *key; /* the argument it undoes by */
        const char *id;
} compensation;

typedef struct saga {
        compensation done[2];
        unsigned n_done;
        /* The failure that ended the saga, kept because compensations overwrite
         * dur_wf_failure(). */
        char failure_type[128];
        char failure_message[512];
        bool failure_non_retryable;
} saga;

static int saga_step(dur_wf *wf,
                     const msgpack_object *in,
                     const order_input *o,
                     const char *activity,
                     const dur_activity_opts *opts,
                     const char *key,
                     const char **ret_id) {
        const msgpack_object *result = NULL;
        dur_activity_opts buf;

        DUR_TRY(dur_execute_activity(wf, activity, order_args(in, o, activity),
                                     opts_for(in, activity, opts, &buf), &result));
        return result_string(wf, result, activity, key, ret_id);
}

static void saga_push(saga *st, const char *activity, const char *key, const char *id) {
        st->done[st->n_done++] = (compensation){ activity, key, id };
}

/* The failure to report: an activity failure may wrap the application error as its cause. */
static const dur_failure *application_failure(const dur_failure *f) {
        while (f && !*dur_failure_type(f) && dur_failure_cause(f))
                f = dur_failure_cause(f);
        return f;
}

static void saga_remember_failure(dur_wf *wf, saga *st) {
        const dur_failure *f = application_failure(dur_wf_failure(wf));

        snprintf(st->failure_type, sizeof(st->failure_type), "%s",
                 f ? dur_failure_type(f) : "SagaFailed");
        snprintf(st->failure_message, sizeof(st->failure_message), "%s",
                 f ? dur_failure_message(f) : "saga step failed");
        st->failure_non_retryable = f && dur_failure_non_retryable(f);
}

typedef struct saga_undo {
        saga *st;
        const msgpack_object *in;
        const order_input *o;
} saga_undo;

/* Runs in dur_detached(): a cancel request that comes now must not stop the undoing half-way. */
static int saga_run_compensations(dur_wf *wf, void *arg) {
        const saga_undo *u = arg;
        saga *st = u->st;
        const msgpack_object *in = u->in;
        const order_input *o = u->o;

        for (unsigned i = st->n_done; i-- > 0;) {
                const compensation *c = &st->done[i];
                knobs k = knobs_for(in, c->activity);
                dur_buf *args = dur_args("{s:s, s:s, s:U, s:u}", "order_id", o->order_id, c->key,
                                         c->id, "delay_ms", k.delay_ms, "fail_times", k.fail_times);
                dur_activity_opts buf;
                int r = dur_execute_activity(wf, c->activity, args,
                                             opts_for(in, c->activity, &compensation_opts, &buf),
                                             NULL);

                if (r == DUR_FAILED && !dur_is_replaying(wf))
                        say("Compensation %s failed: %s", c->activity,
                            dur_failure_message(dur_wf_failure(wf)));
                else if (r < 0 && r != DUR_FAILED)
                        return r; /* the worker is going away */
        }
        return 0;
}

static int saga_compensate(dur_wf *wf, saga *st, const msgpack_object *in, const order_input *o) {
        saga_undo u = { st, in, o };

        saga_remember_failure(wf, st);
        if (!dur_is_replaying(wf))
                say("OrderSagaWorkflow %s failed (%s: %s), running %u compensations", dur_wf_id(wf),
                    st->failure_type, st->failure_message, st->n_done);
        DUR_TRY(dur_detached(wf, saga_run_compensations, &u));
        return dur_fail(wf, st->failure_type, st->failure_non_retryable, "%s", st->failure_message);
}

static int saga_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        saga *st = dur_wf_state(wf, sizeof(*st));
        const char *reservation_id = NULL, *payment_id = NULL, *shipment_id = NULL;
        order_input o;
        int r;

        DUR_TRY(order_input_parse(wf, in, &o));
        r = saga_step(wf, in, &o, "reserve_inventory", &saga_step_opts, "reservation_id",
                      &reservation_id);
        if (r == 0) {
                saga_push(st, "release_inventory", "reservation_id", reservation_id);
                r = saga_step(wf, in, &o, "charge_payment", &saga_payment_opts, "payment_id",
                              &payment_id);
        }
        if (r == 0) {
                saga_push(st, "refund_payment", "payment_id", payment_id);
                r = saga_step(wf, in, &o, "create_shipment", &saga_shipment_opts, "shipment_id",
                              &shipment_id);
        }
        if (r == DUR_FAILED)
                return saga_compensate(wf, st, in, &o);
        DUR_TRY(r);
        return dur_pack(out, "{s:s, s:s, s:s, s:s}", "order_id", o.order_id, "reservation_id",
                        reservation_id, "payment_id", payment_id, "shipment_id", shipment_id);
}

/* ---- ApprovalWorkflow ------------------------------------------------------------------------- */

typedef struct approval {
        const char *status;  /* pending, approved, rejected, auto_rejected */
        const char *comment; /* the last "comment" update's, valid for the run */
        bool decided;
        bool approved;
} approval;

static bool approval_decided(dur_wf *wf, void *arg) {
        return ((approval *) arg)->decided;
}

static int approval_run(dur_wf *wf, const msgpack_object *in, msgpack_packer *out) {
        approval *st = dur_wf_state(wf, sizeof(*st));
        uint64_t timeout_ms = 0, timeout = 24 * DUR_HOUR;
        int r;

        if (in && in->type != MSGPACK_OBJECT_NIL &&
            dur_unpack(in, "{s?U}", "timeout_ms", &timeout_ms) < 0)
                return dur_fail(wf, "InvalidInput", true,
                                "input must be nil or a map with an unsigned \"timeout_ms\"");
        if (timeout_ms > UINT64_MAX / DUR_MSEC)
                return dur_fail(wf, "InvalidInput", true, "\"timeout_ms\" is too large");
        if (timeout_ms > 0)
                timeout = timeout_ms * DUR_MSEC;
        if (!st->status)
                st->status = "pending";

        r = dur_wait_condition(wf, approval_decided, st, timeout);
        if (r < 0)
                return r;
        st->status = r == 0 ? "auto_rejected" : st->approved ? "approved" : "rejected";
        return dur_pack(out, "{s:s}", "status", st->status);
}

static int approval_status(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        approval *st = dur_wf_state(wf, sizeof(*st));

        return dur_pack(out, "s", st->status ? st->status : "pending");
}

/* The decision of an "approve" signal: true, [true] or {"approved": true}. */
static bool approve_arg(const msgpack_object *args, bool *ret) {
        return args && (dur_unpack(args, "b", ret) == 0 || dur_unpack(args, "[b]", ret) == 0 ||
                        dur_unpack(args, "{s:b}", "approved", ret) == 0);
}

/* Signal approve: the first decision stands; later ones are ignored. */
static int approval_approve(dur_wf *wf, const msgpack_object *args) {
        approval *st = dur_wf_state(wf, sizeof(*st));
        bool approved;

        if (st->decided)
                return 0;
        if (!approve_arg(args, &approved)) {
                if (!dur_is_replaying(wf))
                        say("ApprovalWorkflow %s: ignoring an approve signal without a boolean",
                            dur_wf_id(wf));
                return 0;
        }
        st->approved = approved;
        st->decided = true;
        return 0;
}

/* Update "comment": validated before anything is recorded, so an empty comment never reaches the
 * history; the handler could block (an activity, a timer) like a signal handler. */
static int approval_comment_validate(dur_wf *wf, const msgpack_object *args) {
        const char *comment = NULL;

        if (dur_unpack(args, "{s:s}", "comment", &comment) < 0 || !*comment)
                return dur_fail(wf, "InvalidComment", true,
                                "a comment must be {\"comment\": \"non-empty text\"}");
        return 0;
}

static int approval_comment(dur_wf *wf, const msgpack_object *args, msgpack_packer *out) {
        approval *st = dur_wf_state(wf, sizeof(*st));

        (void) dur_unpack(args, "{s:s}", "comment", &st->comment);
        return dur_pack(out, "{s:s, s:s}", "status", st->status ? st->status : "pending",
                        "comment", st->comment);
}

static const dur_workflow_def workflows[] = {
        {
                .name = "OrderWorkflow",
                .run = order_run,
                .queries = DUR_QUERIES({ "get_status", order_status }),
                .signals = DUR_SIGNALS({ "cancel_order", order_cancel }),
        },
        {
                .name = "OrderSagaWorkflow",
                .run = saga_run,
        },
        {
                .name = "ApprovalWorkflow",
                .run = approval_run,
                .queries = DUR_QUERIES({ "get_status", approval_status }),
                .signals = DUR_SIGNALS({ "approve", approval_approve }),
                .updates = DUR_UPDATES({ "comment", approval_comment, approval_comment_validate }),
        },
};

/* ---- main ------------------------------------------------------------------------------------- */

static void log_to_stderr(int level, const char *message, void *userdata) {
        if (level <= LOG_INFO || arg_verbose)
                say("libdurable: %s", message);
}

static void on_stop_signal(int sig) {
        dur_worker_stop(worker); /* async-signal-safe */
}

/* @handler is on_stop_signal while the worker runs, SIG_DFL before it is freed. */
static int set_stop_handlers(void (*handler)(int)) {
        struct sigaction sa = { .sa_handler = handler };

        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
                return -errno;
        return 0;
}

static void help(void) {
        printf("Usage: orders-worker [OPTIONS]\n\n"
               "Runs OrderWorkflow, OrderSagaWorkflow, ApprovalWorkflow and their activities.\n\n"
               "  -s --socket=PATH       durabled's socket (default: $DURABLED_SOCKET, else the\n"
               "                         default socket of the caller's mode)\n"
               "  -q --task-queue=NAME   task queue to poll (default: " DEFAULT_TASK_QUEUE ")\n"
               "  -v --verbose           also show libdurable's debug messages\n"
               "  -h --help              show this help\n");
}

/* Returns 1 to go on, 0 to exit successfully (--help), -EINVAL on a bad option. */
static int parse_argv(int argc, char *argv[], dur_worker_opts *opts) {
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },
                { "task-queue", required_argument, NULL, 'q' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        int c;

        while ((c = getopt_long(argc, argv, "s:q:vh", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        opts->socket_path = optarg;
                        break;
                case 'q':
                        opts->task_queue = optarg;
                        break;
                case 'v':
                        arg_verbose = true;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                say("unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int register_all(dur_worker *w) {
        int r;

        for (size_t i = 0; i < sizeof(workflows) / sizeof(workflows[0]); i++) {
                r = dur_worker_register_workflow(w, &workflows[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < sizeof(activities) / sizeof(activities[0]); i++) {
                r = dur_worker_register_activity(w, &activities[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        dur_worker_opts opts = { .task_queue = DEFAULT_TASK_QUEUE };
        int r;

        r = parse_argv(argc, argv, &opts);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        dur_set_log_func(log_to_stderr, NULL);

        r = dur_worker_new(&worker, &opts);
        if (r < 0) {
                say("failed to create the worker: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        r = register_all(worker);
        if (r >= 0)
                r = set_stop_handlers(on_stop_signal);
        if (r >= 0) {
                say("polling task queue '%s'", opts.task_queue);
                r = dur_worker_run(worker);
        }
        if (r < 0)
                say("worker failed: %s", strerror(-r));
        (void) set_stop_handlers(SIG_DFL);
        worker = dur_worker_free(worker);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
