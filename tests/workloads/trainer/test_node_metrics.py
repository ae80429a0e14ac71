"""A SuperNode's training metrics: the ClientApp appends a record per local fit to the file
$MERIDIAN_TRAINING_RECORDS names, and the exporter (`python -m workloads.trainer.node_metrics`)
serves counters from it, reading only what is new, across rotations and its own restarts.
(The real federation writes and serves them too: test_federation.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from tests.workloads.trainer.node_exporter import node_exporter, scrape
from workloads import contract
from workloads.trainer.node_metrics import TrainingCollector
from workloads.trainer.training_log import RecordFollower, TrainingRecord, append, rotated


def record(round_: int, **changes: object) -> TrainingRecord:
    values: dict = {
        "time": 1764500000.0 + round_,
        "run_id": 7,
        "round": round_,
        "region": "eu",
        "loss": 1.0 / round_,
        "examples": 500,
        "fit_seconds": 0.4,
        "uplink_bytes": 20_000,
        **changes,
    }
    return TrainingRecord(**values)


def test_the_exporter_serves_a_hand_written_file_and_waits_for_a_partial_last_line(tmp_path: Path) -> None:
    records = tmp_path / "training.jsonl"
    third = record(3, loss=0.25, fit_seconds=3.0).to_line()
    records.write_bytes(
        record(1).to_line()
        + b'{"this is": "not a record"}\n'  # skipped, with a warning
        + record(2, fit_seconds=1.5, uplink_bytes=5_000).to_line()
        + third[:25]  # a writer in the middle of its line
    )
    with node_exporter(records) as url:
        first = scrape(url)
        with records.open("ab") as f:
            f.write(third[25:])
        second = scrape(url)
    assert first["meridian_training_rounds_total"] == 2
    assert first["meridian_training_examples_total"] == 1000
    assert first["meridian_training_uplink_bytes_total"] == 25_000
    assert first["meridian_training_last_round"] == 2 and first["meridian_training_local_loss"] == 0.5
    assert first['meridian_training_fit_seconds_bucket{le="0.5"}'] == 1
    assert first['meridian_training_fit_seconds_bucket{le="2.5"}'] == 2
    assert first["meridian_training_fit_seconds_count"] == 2 and first["meridian_training_fit_seconds_sum"] == 1.9
    assert second["meridian_training_rounds_total"] == 3, "the line counts once it is complete"
    assert second["meridian_training_last_round"] == 3 and second["meridian_training_local_loss"] == 0.25
    assert second['meridian_training_fit_seconds_bucket{le="2.5"}'] == 2
    assert second['meridian_training_fit_seconds_bucket{le="5"}'] == 3


def test_before_any_fit_the_counters_are_zero_and_the_last_round_unknown(tmp_path: Path) -> None:
    with node_exporter(tmp_path / "not-yet.jsonl") as url:
        metrics = scrape(url)
    assert metrics["meridian_training_rounds_total"] == 0 and metrics["meridian_training_uplink_bytes_total"] == 0
    assert "meridian_training_last_round" not in metrics and "meridian_training_local_loss" not in metrics


def test_a_restarted_exporter_reads_the_file_again(tmp_path: Path) -> None:
    records = tmp_path / "training.jsonl"
    for n in range(1, 4):
        append(records, record(n))
    with node_exporter(records) as url:
        before = scrape(url)
    with node_exporter(records) as url:
        after = scrape(url)
    assert before["meridian_training_rounds_total"] == after["meridian_training_rounds_total"] == 3


def test_the_file_rotates_at_its_bound_and_the_follower_loses_no_record(tmp_path: Path) -> None:
    records = tmp_path / "training.jsonl"
    bound = 3 * len(record(1, loss=0.5).to_line())  # three records per generation (all of one length)
    collector = TrainingCollector(records)
    counted = []
    for n in range(1, 10):
        append(records, record(n, loss=0.5), max_bytes=bound)
        if n % 2:  # scrapes now and then: some records are read only after their file rotated
            counted.append(_rounds(collector))
    assert counted == [1, 3, 5, 7, 9]
    assert records.stat().st_size == rotated(records).stat().st_size == bound
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training.jsonl", "training.jsonl.1"]
    # A new follower (a restarted exporter) reads what is retained: both generations.
    assert [r.round for r in RecordFollower(records).read_new()] == [4, 5, 6, 7, 8, 9]


def test_a_torn_line_is_closed_off_by_the_next_writer_and_skipped(tmp_path: Path) -> None:
    records = tmp_path / "training.jsonl"
    records.write_bytes(record(1).to_line() + record(2).to_line()[:30])  # its writer was killed
    append(records, record(3))
    assert [r.round for r in RecordFollower(records).read_new()] == [1, 3]


def test_the_client_app_appends_one_record_per_fit_with_the_update_as_sent(
    in_process, tmp_path: Path, monkeypatch
) -> None:
    records = tmp_path / "records" / "training.jsonl"
    monkeypatch.setenv(contract.ENV_TRAINING_RECORDS, str(records))
    run = in_process({"rounds": 2, "compression": "int8"})
    written = [json.loads(line) for line in records.read_text().splitlines()]
    assert sorted((w["round"], w["region"]) for w in written) == sorted(
        (r, region) for r in (1, 2) for region in ("eu", "us", "apac")
    )
    for w in written:
        part = run.records[w["round"] - 1]["regions"][w["region"]]
        # What the SuperLink counted for this region and round: the int8-encoded update.
        assert w["uplink_bytes"] == part["uplink_payload_bytes"]
        assert w["examples"] == part["examples"] and w["loss"] == part["train_loss"] and w["run_id"] == 1


def _rounds(collector: TrainingCollector) -> float:
    family = next(f for f in collector.collect() if f.name == "meridian_training_rounds")
    return family.samples[0].value
