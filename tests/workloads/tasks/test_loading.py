"""Tasks are found by built-in name or by dotted path, and a bad reference says what is wrong."""

from pathlib import Path

import pytest

from workloads.tasks import Task, builtin_task_names, load_task

USER_TASKS = Path(__file__).parent / "user_tasks"


def test_built_in_tasks_are_found_by_name():
    assert builtin_task_names() == ["credit", "digits", "digits-large"]
    for name in builtin_task_names():
        task = load_task(name)
        assert isinstance(task, Task) and task.name == name


def test_a_user_task_is_found_by_dotted_path(monkeypatch):
    monkeypatch.syspath_prepend(str(USER_TASKS))
    task = load_task("iris:TASK")
    shards = task.partition(["a", "b"], seed=0, alpha=1.0)
    assert task.name == "iris" and set(shards) == {"a", "b"}


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("mnist", "unknown task 'mnist': use one of credit, digits, digits-large"),
        ("no_such_module_here:TASK", "task module 'no_such_module_here' not found"),
        ("workloads.tasks.digits:NOPE", "has no attribute 'NOPE'"),
        ("workloads.tasks.digits:np", "is not a Task: it lacks name, input_shape"),
        (":TASK", "must look like 'package.module:TASK'"),
    ],
)
def test_a_bad_reference_says_what_is_wrong(reference, message):
    with pytest.raises(ValueError, match=message):
        load_task(reference)
