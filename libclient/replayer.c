/* The replayer: runs a workflow definition against exported histories, without a daemon, and
 * reports the first non-determinism (libdurable(3), "Replay testing"), as Temporal's
 * WorkflowReplayer does with `temporal workflow show --output json` files.
 *
 * A history file is what `durablectl history ID --json` prints: a JSON array of events
 * {event_id, event_type, time, attributes}. durablectl shows payloads as the JSON of their
 * content, so loading turns them back into payloads (a bin holding msgpack): the attributes
 * input, result, details and heartbeat_details, also inside failure and cause maps. A null
 * payload is left out, which the replay engine reads as nil. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "libclient/replay-internal.h"
#include "libclient/replay.h"
#include "proto/json.h"
#include "proto/msg.h"

static bool is_payload_key(const char *key) {
        return streq(key, "input") || streq(key, "result") || streq(key, "details") ||
               streq(key, "heartbeat_details");
}

static int pack_attrs(msgpack_packer *pk, const json_t *obj, unsigned depth);

static int pack_attr(msgpack_packer *pk, const char *key, const json_t *v, unsigned depth) {
        if (is_payload_key(key))
                return json_pack_payload(v, pk);
        if ((streq(key, "failure") || streq(key, "cause")) && json_is_object(v) && depth < 32)
                return pack_attrs(pk, v, depth + 1);
        return json_to_msgpack(v, pk);
}

static int pack_attrs(msgpack_packer *pk, const json_t *obj, unsigned depth) {
        const char *key;
        json_t *v;
        size_t n = 0;
        int r = 0;

        json_object_foreach((json_t *) obj, key, v) n += !(is_payload_key(key) && json_is_null(v));
        (void) msgpack_pack_map(pk, n);
        json_object_foreach((json_t *) obj, key, v) {
                if (is_payload_key(key) && json_is_null(v))
                        continue;
                (void) msg_pack_str(pk, key);
                r = pack_attr(pk, key, v, depth);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int fail(dur_replay_report *rep, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(dur_replay_report *rep, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        free(rep->message);
        if (vasprintf(&rep->message, fmt, ap) < 0)
                rep->message = NULL;
        va_end(ap);
        return r;
}

/* Packs the JSON history @j as the msgpack array of events the replay engine reads. */
static int pack_history(const json_t *j, msgpack_sbuffer *sb, dur_replay_report *rep) {
        msgpack_packer pk;
        size_t i;
        json_t *ev;
        int r;

        if (!json_is_array(j) || json_array_size(j) == 0)
                return fail(rep, -EBADMSG,
                            "%s: not a history (a JSON array of events, as "
                            "\"durablectl history ID --json\" prints)",
                            rep->path);
        msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
        (void) msgpack_pack_array(&pk, json_array_size(j));
        json_array_foreach(j, i, ev) {
                const char *key;
                json_t *v;

                if (!json_is_object(ev) || !json_is_integer(json_object_get(ev, "event_id")) ||
                    !json_is_string(json_object_get(ev, "event_type")))
                        return fail(rep, -EBADMSG,
                                    "%s: element %zu is not an event with event_id and "
                                    "event_type",
                                    rep->path, i);
                (void) msgpack_pack_map(&pk, json_object_size(ev));
                json_object_foreach(ev, key, v) {
                        (void) msg_pack_str(&pk, key);
                        r = streq(key, "attributes") && json_is_object(v) ? pack_attrs(&pk, v, 0)
                                                                          : json_to_msgpack(v, &pk);
                        if (r < 0)
                                return fail(rep, r, "%s: event %zu cannot be converted", rep->path,
                                            i);
                }
        }
        return 0;
}

static const char *closing_event(const msgpack_object *events) {
        const msgpack_object *last = &events->via.array.ptr[events->via.array.size - 1];
        const msgpack_object *t = msg_get(last, "event_type");
        static const char *const closes[] = { "WorkflowExecutionCompleted",
                                              "WorkflowExecutionFailed",
                                              "WorkflowExecutionCanceled" };

        for (size_t i = 0; t && i < ELEMENTSOF(closes); i++)
                if (msg_str_eq(t, closes[i]))
                        return closes[i];
        return NULL;
}

/* Replays the decoded history; fills the report on a mismatch. */
static int
replay_events(const dur_workflow_def *def, const msgpack_object *events, dur_replay_report *rep) {
        _cleanup_(run_freep) Run *run = NULL;
        const char *closed;
        int r;

        r = run_new(&run, def, "replay", "00000000-0000-0000-0000-000000000000");
        if (r < 0)
                return r;
        r = run_apply_events(run, events, false, NULL);
        if (r == -EPROTO || r == -EBADMSG || r == -ENODATA || r == -ESTALE) {
                rep->event_id = run_next_event_id(run);
                free(rep->cause);
                rep->cause = run_error_cause(run) ? strdup(run_error_cause(run)) : NULL;
                return fail(rep, r == -EPROTO ? -EPROTO : -EBADMSG, "%s: %s", rep->path,
                            run_error_message(run));
        }
        if (r < 0)
                return r;
        /* Code that issues more than a closed history holds (a step added before the end) has
         * nothing left to mismatch with: the commands still queued say so. */
        closed = closing_event(events);
        if (closed && run->commands) {
                rep->event_id = run_next_event_id(run) - 1;
                rep->cause = strdup("NonDeterministicError");
                return fail(rep, -EPROTO,
                            "%s: non-deterministic workflow: the history ends with %s but the "
                            "code issued %s after it",
                            rep->path, closed, command_type_to_string(run->commands->type));
        }
        return 0;
}

DUR_PUBLIC void dur_replay_report_done(dur_replay_report *rep) {
        if (!rep)
                return;
        free(rep->path);
        free(rep->cause);
        free(rep->message);
        *rep = (dur_replay_report){};
}

DUR_PUBLIC int
dur_replay_file(const dur_workflow_def *def, const char *path, dur_replay_report *ret) {
        dur_replay_report rep = {};
        msgpack_unpacked u;
        msgpack_sbuffer sb;
        json_error_t jerr;
        json_t *j;
        int r;

        assert_return(def && def->run && path && ret, -EINVAL);
        rep.path = strdup(path);
        if (!rep.path)
                return -ENOMEM;
        j = json_load_file(path, JSON_DECODE_ANY, &jerr);
        if (!j) {
                r = fail(&rep, -EBADMSG, "%s:%d: %s", path, jerr.line, jerr.text);
                *ret = rep;
                return r;
        }
        msgpack_sbuffer_init(&sb);
        msgpack_unpacked_init(&u);
        r = pack_history(j, &sb, &rep);
        if (r >= 0 && (msg_validate(sb.data, sb.size) < 0 ||
                       msgpack_unpack_next(&u, sb.data, sb.size, NULL) != MSGPACK_UNPACK_SUCCESS))
                r = fail(&rep, -EBADMSG, "%s: the history does not convert", path);
        if (r >= 0)
                r = replay_events(def, &u.data, &rep);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
        json_decref(j);
        *ret = rep;
        return r;
}

DUR_PUBLIC int dur_replay_files(const dur_workflow_def *def,
                                const char *const *paths,
                                size_t n,
                                dur_replay_report *ret) {
        int r = 0;

        assert_return(def && (paths || n == 0) && ret, -EINVAL);
        *ret = (dur_replay_report){};
        for (size_t i = 0; i < n; i++) {
                dur_replay_report_done(ret);
                r = dur_replay_file(def, paths[i], ret);
                if (r < 0)
                        return r;
        }
        return r;
}
