"""Find a task by name: a built-in (`digits`) or a user's object by dotted path
(`mypackage.mymodule:TASK`), so users bring their own model without editing Meridian."""

from __future__ import annotations

import importlib
from typing import cast

from workloads.tasks.base import Task


def _builtins() -> dict[str, Task]:
    # Imported here: a node running a user task never loads the built-ins' code.
    from workloads.tasks.credit import CREDIT
    from workloads.tasks.digits import DIGITS, DIGITS_LARGE

    builtins: list[Task] = [DIGITS, DIGITS_LARGE, CREDIT]
    return {task.name: task for task in builtins}


def builtin_task_names() -> list[str]:
    return sorted(_builtins())


def load_task(reference: str) -> Task:
    """`digits`, `digits-large`, `credit`, or `package.module:ATTRIBUTE` naming an object
    that satisfies the Task protocol (see workloads/tasks/README.md)."""
    if ":" not in reference:
        task = _builtins().get(reference)
        if task is None:
            raise ValueError(
                f"unknown task {reference!r}: use one of {', '.join(builtin_task_names())} "
                "or a dotted path 'package.module:TASK'"
            )
        return task
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"task reference {reference!r} must look like 'package.module:TASK'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ValueError(f"task module {module_name!r} not found ({err}); is it on PYTHONPATH?") from None
    try:
        task = getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None
    missing = [
        member
        for member in ("name", "input_shape", "num_classes", "build_model", "partition")
        if not hasattr(task, member)
    ]
    if missing:
        raise ValueError(f"{reference} is not a Task: it lacks {', '.join(missing)} (see workloads/tasks/README.md)")
    return cast(Task, task)
