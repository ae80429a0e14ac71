"""Each ArrayRecord crosses the network as one array: exactly the same record comes out."""

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from workloads.trainer.packing import (
    LAYOUT_SUFFIX,
    PACKED_KEY,
    MalformedPacking,
    pack,
    packed_transport,
    unpack,
)


@pytest.fixture(autouse=True)
def a_serverapp_task(monkeypatch):
    """Messages are created inside a task (Flower reads its run and node from TaskIdentity)."""
    for attribute in ("_run_id", "_node_id", "_task_id"):
        monkeypatch.setattr(TaskIdentity, attribute, 1)


def _model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "fc1.weight": rng.standard_normal((64, 32)).astype(np.float32),
        "fc1.bias": rng.standard_normal(64).astype(np.float32),
        "fc2.weight::q": rng.integers(-127, 128, (10, 64)).astype(np.int8),
        "fc2.weight::scale": rng.random(10).astype(np.float16),
        "steps": np.array(7, dtype=np.int64),  # a scalar
        "empty": np.zeros((0, 3), dtype=np.float64),
    }


def _content() -> RecordDict:
    return RecordDict(
        {
            "arrays": ArrayRecord({key: Array(value) for key, value in _model().items()}),
            "config": ConfigRecord({"lr": 0.1}),
            "metrics": MetricRecord({"loss": 1.5}),
        }
    )


def _assert_same(record: ArrayRecord, expected: dict[str, np.ndarray]) -> None:
    assert list(record) == list(expected)  # same keys, same order
    for key, value in expected.items():
        got = record[key].numpy()
        assert got.dtype == value.dtype and got.shape == value.shape
        assert got.tobytes() == value.tobytes()


def test_a_record_of_many_arrays_becomes_one_flat_array_and_its_layout():
    content = _content()
    pack(content)
    assert list(content.array_records["arrays"]) == [PACKED_KEY]
    packed = content.array_records["arrays"][PACKED_KEY].numpy()
    assert packed.dtype == np.uint8 and packed.ndim == 1
    assert packed.size == sum(v.nbytes for v in _model().values())
    assert list(content.config_records["arrays" + LAYOUT_SUFFIX]["keys"]) == list(_model())  # type: ignore[arg-type]


def test_unpacking_restores_every_key_dtype_shape_and_byte_and_drops_the_layout():
    content = _content()
    pack(content)
    unpack(content)
    _assert_same(content.array_records["arrays"], _model())
    assert "arrays" + LAYOUT_SUFFIX not in content
    assert content.config_records["config"]["lr"] == 0.1 and content.metric_records["metrics"]["loss"] == 1.5


def test_a_single_array_record_and_unpacked_content_pass_through():
    single = RecordDict({"arrays": ArrayRecord({"topk": Array(np.arange(5, dtype=np.uint8))})})
    pack(single)
    assert list(single.array_records["arrays"]) == ["topk"] and not single.config_records
    plain = _content()
    unpack(plain)  # no layout: nothing to do
    _assert_same(plain.array_records["arrays"], _model())


@pytest.mark.parametrize(
    ("break_it", "says"),
    [
        (lambda layout: layout.__setitem__("keys", ["only-one"]), "different lengths"),
        (lambda layout: layout.__setitem__("shapes", ["64,32", "65", "10,64", "10", "", "0,3"]), "runs past"),
        (lambda layout: layout.__setitem__("shapes", ["64,32", "63", "10,64", "10", "", "0,3"]), "left over"),
        (
            lambda layout: layout.__setitem__("dtypes", ["<f4", "<f4", "|i1", "<f2", "<i8", "no-such-type"]),
            "not understood",
        ),
        (lambda layout: layout.__setitem__("dtypes", ["<f4", "<f4", "|i1", "<f2", "|O", "<f8"]), "not a number type"),
        (lambda layout: layout.__setitem__("shapes", ["64,32", "-1", "10,64", "10", "", "0,3"]), "negative"),
        (lambda layout: layout.__delitem__("dtypes"), "dtypes"),
    ],
)
def test_a_layout_that_does_not_add_up_is_refused_naming_the_record(break_it, says):
    content = _content()
    pack(content)
    break_it(content.config_records["arrays" + LAYOUT_SUFFIX])
    with pytest.raises(MalformedPacking, match=rf"packed record 'arrays':.*{says}"):
        unpack(content)


def _train_message() -> Message:
    return Message(_content(), dst_node_id=5, message_type="train")


def test_the_node_mod_hands_the_app_the_arrays_and_packs_its_reply():
    seen: list[list[str]] = []

    def app(msg: Message, _context: Context) -> Message:
        seen.append(list(msg.content.array_records["arrays"]))
        return Message(_content(), reply_to=msg)

    message = _train_message()
    pack(message.content)
    reply = packed_transport(message, Context(1, 5, {}, RecordDict(), {}), app)
    assert seen == [list(_model())]
    assert list(reply.content.array_records["arrays"]) == [PACKED_KEY]
    unpack(reply.content)
    _assert_same(reply.content.array_records["arrays"], _model())


def test_an_error_reply_goes_back_as_it_is():
    message = _train_message()
    reply = packed_transport(
        message, Context(1, 5, {}, RecordDict(), {}), lambda m, _c: Message(Error(1, "no"), reply_to=m)
    )
    assert reply.has_error() and reply.error.reason == "no"
