"""Tasks: data + model + train + evaluate behind one protocol (see README.md)."""

from workloads.tasks.base import Shard, Task
from workloads.tasks.loading import builtin_task_names, load_task
from workloads.tasks.training import Evaluation, TrainResult, evaluate, train

__all__ = [
    "Evaluation",
    "Shard",
    "Task",
    "TrainResult",
    "builtin_task_names",
    "evaluate",
    "load_task",
    "train",
]
