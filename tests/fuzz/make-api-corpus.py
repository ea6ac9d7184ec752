#!/usr/bin/env python3
# Writes the seed corpus of fuzz-api (tests/fuzz/corpus/api/): for every op of daemon/api-sock.c
# one well-formed request, one with a field of the wrong type, plus sessions that start a
# workflow, poll its task and complete it with commands (RUN is fuzz-api.c's run id placeholder).
# The first byte of a seed picks the caller (0 administrator, 1 uid 65534). Run it from the source
# tree after adding an op: python3 tests/fuzz/make-api-corpus.py
# Python has no msgpack module here: the few types the requests use are packed by hand.
import os
import struct
import sys

RUN = "RRRRRRRR-RRRR-RRRR-RRRR-RRRRRRRRRRRR"


class Bin(bytes):
    pass


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if v < 0:
            return b"\xd3" + struct.pack(">q", v)
        return b"\xcf" + struct.pack(">Q", v) if v > 0xFFFFFFFF else (
            bytes([v]) if v < 128 else b"\xce" + struct.pack(">I", v))
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, Bin):
        return b"\xc6" + struct.pack(">I", len(v)) + bytes(v)
    if isinstance(v, str):
        b = v.encode()
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(v, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(
            pack(k) + pack(x) for k, x in v.items())
    raise TypeError(v)


def frame(op, id_, **fields):
    body = pack(dict({"op": op, "id": id_}, **fields))
    return struct.pack(">I", len(body)) + body


P = Bin(b"\x81\xa1k\xa1v")  # a msgpack payload: {"k": "v"}
START = dict(workflow_id="w", workflow_type="T", task_queue="q", input=P)
TARGET = dict(workflow_id="w")
ACT = dict(activity_id="a1", activity_type="A", task_queue="q", start_to_close_usec=60000000,
           input=P)
SCHED = dict(schedule_id="s", calendars=["*-*-* 03:00"], intervals=[{"every_usec": 3600000000}],
             workflow_type="T", task_queue="q", input=P)
FAILURE = {"type": "Boom", "message": "it broke", "non_retryable": True}
WTOKEN = Bin(("W/" + RUN + "/3").encode())
ATOKEN = Bin(("A/" + RUN + "/5/1").encode())

# Each op: a well-formed request's fields, and one field to give the wrong type.
OPS = {
    "BackfillSchedule": (dict(schedule_id="s", start_time_usec=0, end_time_usec=10**15), "schedule_id"),
    "BackupDatabase": (dict(path="/nonexistent/backup.db"), "path"),
    "CancelActivityTask": (dict(task_token=ATOKEN, details=P), "task_token"),
    "CancelWorkflow": (dict(TARGET, reason="why"), "reason"),
    "CompleteActivityTask": (dict(workflow_id="w", activity_id="a1", result=P), "activity_id"),
    "CompleteWorkflowTask": (dict(task_token=WTOKEN, commands=[]), "commands"),
    "CountWorkflows": (dict(query="ExecutionStatus = 'Running' GROUP BY ExecutionStatus"), "query"),
    "CreateSchedule": (SCHED, "calendars"),
    "DeleteSchedule": (dict(schedule_id="s"), "schedule_id"),
    "DescribeSchedule": (dict(schedule_id="s", next=3), "next"),
    "DescribeWorkflow": (dict(TARGET, run_id=RUN), "run_id"),
    "FailActivityTask": (dict(task_token=ATOKEN, failure=FAILURE, next_retry_delay_usec=5), "failure"),
    "FailWorkflowTask": (dict(task_token=WTOKEN, cause="Bad", failure=FAILURE), "cause"),
    "GetHistory": (dict(TARGET, from_event_id=1, wait=True, timeout_usec=1), "from_event_id"),
    "GetResult": (dict(TARGET, wait=True, timeout_usec=1, follow_runs=False), "wait"),
    "GetStats": ({}, "id"),
    "HeartbeatActivity": (dict(task_token=ATOKEN, details=P), "details"),
    "ListActivityTypes": ({}, "id"),
    "ListSchedules": ({}, "id"),
    "ListWorkflows": (dict(query="WorkflowType = 'T' ORDER BY StartTime", limit=2), "limit"),
    "PauseSchedule": (dict(schedule_id="s", note="n"), "note"),
    "PollActivityTask": (dict(task_queue="q", identity="me", timeout_usec=1), "task_queue"),
    "PollWorkflowTask": (dict(task_queue="q", identity="me", timeout_usec=1), "timeout_usec"),
    "QueryWorkflow": (dict(TARGET, query_type="state", timeout_usec=1), "query_type"),
    "Reload": ({}, "id"),
    "RespondQueryTask": (dict(query_id=1, result=P), "query_id"),
    "ShutdownWorker": ({}, "id"),
    "SignalWithStart": (dict(START, signal_name="s", signal_input=P), "signal_name"),
    "SignalWorkflow": (dict(TARGET, signal_name="s", input=P), "signal_name"),
    "StartActivity": (dict(ACT, request_id="r"), "activity_type"),
    "StartWorkflow": (dict(START, memo={"m": 1}, search_attributes={"CustomKeywordField": {"type": "Keyword", "value": "x"}},
                           retry_policy={"maximum_attempts": 2}, request_id="r"), "memo"),
    "TerminateWorkflow": (dict(TARGET, reason="why", details=P), "details"),
    "TriggerSchedule": (dict(schedule_id="s", overlap="allow_all"), "overlap"),
    "UnpauseSchedule": (dict(schedule_id="s"), "schedule_id"),
    "UpdateWithStart": (dict(START, id_conflict_policy="UseExisting", update_name="u",
                             update_input=P, update_id="u1", wait_for_stage="Accepted",
                             timeout_usec=1), "update_name"),
    "UpdateWorkflow": (dict(TARGET, update_name="u", input=P, update_id="u1",
                            wait_for_stage="Completed", timeout_usec=1), "wait_for_stage"),
    "PollWorkflowUpdate": (dict(TARGET, update_id="u1", wait=False), "update_id"),
    "VerifyHistory": (dict(workflow_ids=["w"]), "workflow_ids"),
    "ConfigureTaskQueue": (dict(task_queue="q", concurrency_limit=2, rate_limit=10,
                                rate_period_usec=1000000, rate_burst=2), "rate_limit"),
    "DescribeTaskQueue": (dict(task_queue="q"), "task_queue"),
    "PauseWorkflow": (dict(TARGET, reason="why", identity="me"), "reason"),
    "UnpauseWorkflow": (dict(TARGET, reason="why"), "identity"),
    "DeleteWorkflow": (dict(TARGET, reason="why"), "workflow_id"),
    "ResetWorkflow": (dict(TARGET, reason="why", to="first", reapply_exclude=["Signal"]),
                      "reapply_exclude"),
    "RedriveWorkflow": (dict(TARGET, reason="why"), "run_id"),
    "ForkWorkflow": (dict(TARGET, new_workflow_id="w2", step=2), "step"),
    "PauseActivity": (dict(TARGET, activity_id="a1", reason="why"), "activity_id"),
    "UnpauseActivity": (dict(TARGET, activity_id="a1"), "activity_id"),
    "ResetActivity": (dict(TARGET, activity_id="a1"), "reason"),
    "StartBatchOperation": (dict(operation="Signal", query="WorkflowType = 'T'", rps=100,
                                 signal_name="s", input=P), "operation"),
    "DescribeBatchOperation": (dict(batch_id="b"), "batch_id"),
    "ListBatchOperations": ({}, "id"),
}

COMMANDS = [
    {"command_type": "ScheduleActivityTask", "attributes": ACT},
    {"command_type": "StartTimer", "attributes": {"timer_id": "t", "start_to_fire_usec": 1}},
    {"command_type": "CancelTimer", "attributes": {"timer_id": "t"}},
    {"command_type": "UpsertWorkflowSearchAttributes",
     "attributes": {"search_attributes": {"CustomIntField": {"type": "Int", "value": 3}}}},
    {"command_type": "StartChildWorkflowExecution",
     "attributes": {"workflow_id": "child", "workflow_type": "T", "parent_close_policy": "Abandon"}},
    {"command_type": "RequestCancelExternalWorkflowExecution",
     "attributes": {"workflow_id": "child"}},
]
UPDATE_COMMAND = {"command_type": "CompleteWorkflowUpdate", "attributes": {"update_id": "u1", "result": P}}
CANCEL_ACTIVITY = {"command_type": "RequestCancelActivityTask", "attributes": {"scheduled_event_id": 5}}
CLOSES = [
    {"command_type": "CompleteWorkflowExecution", "attributes": {"result": P}},
    {"command_type": "FailWorkflowExecution", "attributes": {"failure": FAILURE}},
    {"command_type": "CancelWorkflowExecution", "attributes": {"details": P}},
    {"command_type": "ContinueAsNewWorkflowExecution", "attributes": {"input": P}},
]


def main():
    ops_c = open("daemon/api-sock.c").read()
    missing = [op for op in ops_c.split("static const Op ops[] = {")[1].split("};")[0].split('"')[1::2]
               if op not in OPS]
    if missing:
        sys.exit("make-api-corpus.py: no seed for " + ", ".join(missing))
    out = "tests/fuzz/corpus/api"
    os.makedirs(out, exist_ok=True)
    seeds = {}
    for op, (fields, bad) in OPS.items():
        seeds["op-" + op] = b"\0" + frame(op, 1, **fields)
        seeds["bad-" + op] = b"\1" + frame(op, 2, **dict(fields, **{bad: [None, 1.5]}))
    # Polls wait 10 s: a task that is there is handed out in the same pass; the harness closes
    # the connection (and its polls) at the end of the input.
    start = frame("StartWorkflow", 1, **START) + frame("PollWorkflowTask", 2, task_queue="q",
                                                       timeout_usec=10**7)
    seeds["session-commands"] = b"\0" + start + frame(
        "CompleteWorkflowTask", 3, task_token=WTOKEN, commands=COMMANDS) + frame(
        "PollActivityTask", 4, task_queue="q", timeout_usec=10**7) + frame(
        "HeartbeatActivity", 5, task_token=ATOKEN, details=P) + frame(
        "CompleteActivityTask", 6, task_token=ATOKEN, result=P) + frame(
        "DescribeWorkflow", 7, workflow_id="w", run_id=RUN) + frame(
        "GetHistory", 8, workflow_id="w") + frame("VerifyHistory", 9)
    seeds["session-cancel-activity"] = b"\0" + start + frame(
        "CompleteWorkflowTask", 3, task_token=WTOKEN, commands=COMMANDS[:1]) + frame(
        "SignalWorkflow", 4, workflow_id="w", signal_name="s") + frame(
        "PollWorkflowTask", 5, task_queue="q", timeout_usec=10**7) + frame(
        "CompleteWorkflowTask", 6, task_token=Bin(("W/" + RUN + "/8").encode()),
        commands=[CANCEL_ACTIVITY])
    seeds["session-update"] = b"\0" + start + frame(
        "UpdateWorkflow", 3, workflow_id="w", update_name="u", update_id="u1",
        wait_for_stage="Accepted", timeout_usec=1) + frame(
        "CompleteWorkflowTask", 4, task_token=WTOKEN, commands=[UPDATE_COMMAND]) + frame(
        "PollWorkflowUpdate", 5, workflow_id="w", update_id="u1")
    for i, close in enumerate(CLOSES):
        seeds["session-close-%d" % i] = b"\0" + start + frame(
            "CompleteWorkflowTask", 3, task_token=WTOKEN, commands=[close]) + frame(
            "GetResult", 4, workflow_id="w", wait=False)
    seeds["session-fail-task"] = b"\1" + start + frame(
        "FailWorkflowTask", 3, task_token=WTOKEN, cause="Panic", failure=FAILURE) + frame(
        "SignalWorkflow", 4, workflow_id="w", signal_name="s") + frame(
        "CancelWorkflow", 5, workflow_id="w") + frame("TerminateWorkflow", 6, workflow_id="w")
    seeds["session-activity-fail"] = b"\0" + frame("StartActivity", 1, **ACT) + frame(
        "PollActivityTask", 2, task_queue="q", timeout_usec=10**7) + frame(
        "FailActivityTask", 3, workflow_id="a1", run_id=RUN, activity_id="a1", failure=FAILURE)
    seeds["session-schedule"] = b"\0" + frame("CreateSchedule", 1, **SCHED) + frame(
        "TriggerSchedule", 2, schedule_id="s") + frame(
        "BackfillSchedule", 3, schedule_id="s", start_time_usec=0, end_time_usec=86400 * 10**6 * 3) + frame(
        "DescribeSchedule", 4, schedule_id="s") + frame("PauseSchedule", 5, schedule_id="s") + frame(
        "ListSchedules", 6) + frame("DeleteSchedule", 7, schedule_id="s")
    seeds["session-query"] = b"\0" + start + frame(
        "QueryWorkflow", 3, workflow_id="w", query_type="q", timeout_usec=1) + frame(
        "RespondQueryTask", 4, query_id=1, result=P) + frame("ShutdownWorker", 5)
    seeds["not-a-map"] = b"\0" + struct.pack(">I", 3) + pack([1, 2])[:3]
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("make-api-corpus.py: %d seeds in %s" % (len(seeds), out))


main()
