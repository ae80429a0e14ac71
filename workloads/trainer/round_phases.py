"""Where a round's time goes, from what each side measured on its own clock: nothing is
estimated, and no two clocks are compared (only durations cross between them).

On the node, the ClientApp's outermost mod (`time_task`) adds to each reply's metrics:
    task-setup-seconds  its process's start until the handler began: under Flower's
                        per-message processes the interpreter, the imports, the FAB install,
                        loading the app and pulling the message; forked warm from the
                        node's ClientApp runner, little more than pulling the message
    task-seconds        its process's start until the reply was ready (setup, evaluation of
                        the received model, training, encoding)
    task-pid, task-parent-pid   which process answered, and which started it
and the train handler adds evaluate-seconds and train-seconds.
On the server (grids.Exchange): how long pushing the round's messages took, and when each
region's reply was pulled after that. From the two:
    transport = reply wait - task-seconds: everything between the server and the ClientApp
        process: the SuperNode's poll for the message, fetching it, handing it to a ClientApp
        process, returning the reply, and the server's poll for it
The round record's seconds: round (configure_train until aggregate_train is done), local (the
slowest region's evaluation + training), overhead = round - local, and phases: push,
waiting_for_replies (push done until the last reply), aggregation (decode, validate, aggregate).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flwr.app import Context, Message, MetricRecord
from flwr.clientapp.typing import ClientAppCallable

from workloads.trainer.task import record_number

TASK_SETUP_SECONDS = "task-setup-seconds"
TASK_SECONDS = "task-seconds"
TASK_PID = "task-pid"
TASK_PARENT_PID = "task-parent-pid"
EVALUATE_SECONDS = "evaluate-seconds"
TRAIN_SECONDS = "train-seconds"


def process_age() -> float:
    """Seconds since this process started (a forked child: since the fork), from Linux's
    /proc; 0.0 where that is not available."""
    try:
        stat = Path("/proc/self/stat").read_text()
    except OSError:
        return 0.0
    start_ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, after the command name
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


def time_task(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """ClientApp mod, outermost: this task's timings and process ids, into the reply's metrics."""
    setup = process_age()
    entered = time.monotonic()
    reply = call_next(msg, context)
    if reply.has_error():
        return reply
    metrics = reply.content.metric_records["metrics"]
    metrics[TASK_SETUP_SECONDS] = setup
    metrics[TASK_SECONDS] = setup + time.monotonic() - entered
    metrics[TASK_PID] = os.getpid()
    metrics[TASK_PARENT_PID] = os.getppid()
    return reply


@dataclass(frozen=True)
class TaskTimes:
    """A train reply's timings, as its node measured them."""

    pid: int
    parent_pid: int
    setup: float
    evaluate: float
    train: float
    task: float

    @property
    def local(self) -> float:
        """The region's own work on the model: evaluating what it received, and training."""
        return self.evaluate + self.train

    def to_json(self, reply_wait: float | None) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "parent_pid": self.parent_pid,
            "setup_seconds": self.setup,
            "evaluate_seconds": self.evaluate,
            "train_seconds": self.train,
            "task_seconds": self.task,
            "reply_wait_seconds": reply_wait,
            "transport_seconds": None if reply_wait is None else reply_wait - self.task,
        }


def read_task_times(metrics: MetricRecord) -> TaskTimes | None:
    """None when the reply carries no timings; ValueError (naming the key) for a bad one."""
    if TASK_SECONDS not in metrics:
        return None
    return TaskTimes(
        pid=int(record_number(metrics, TASK_PID)),
        parent_pid=int(record_number(metrics, TASK_PARENT_PID)),
        setup=record_number(metrics, TASK_SETUP_SECONDS),
        evaluate=record_number(metrics, EVALUATE_SECONDS),
        train=record_number(metrics, TRAIN_SECONDS),
        task=record_number(metrics, TASK_SECONDS),
    )


@dataclass(frozen=True)
class ServerPhases:
    push: float
    waiting_for_replies: float
    aggregation: float
