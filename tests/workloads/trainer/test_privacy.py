"""Privacy you can state: DP-SGD per region within (ε, δ), update-level DP at the aggregator,
and SecAgg+ refused for a reason that holds.

The runs are the real ServerApp and ClientApp in one process (conftest.in_process): each node
keeps one Context across messages, as a SuperNode keeps a run's node state, which is where a
region's privacy account lives.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.supercore.task_identity import TaskIdentity
from prometheus_client import CollectorRegistry

from tests.workloads.trainer.conftest import REGIONS
from workloads.contract import SECURE_AGGREGATION_REFUSED
from workloads.tasks import Shard, load_task
from workloads.tasks.__main__ import prepare_data
from workloads.tasks.private import UnsupportedModel, check_model, epsilon, sample_rate
from workloads.trainer.client_app import app as client_app
from workloads.trainer.metrics import FederationMetrics
from workloads.trainer.node_metrics import TrainingCollector
from workloads.trainer.privacy import (
    EPSILON_TOLERANCE,
    BudgetExhausted,
    RegionAccount,
    noise_multiplier_for,
    planned_steps,
)
from workloads.trainer.records import Privacy, RegionRound, RoundRecord, Seconds, Status
from workloads.trainer.settings import SettingsError, TrainerSettings
from workloads.trainer.training_log import TrainingRecord, append


@pytest.mark.parametrize("target", [1.0, 3.0, 8.0])
@pytest.mark.parametrize("examples", [300, 1600])
def test_the_derived_noise_spends_the_target_epsilon_over_the_planned_run(target, examples):
    settings = TrainerSettings(dp_epsilon=target, rounds=5, local_epochs=2, batch_size=32)
    sigma = noise_multiplier_for(settings, examples)
    planned = [(sigma, sample_rate(examples, 32), planned_steps(settings, examples))]
    spent = epsilon(planned, settings.dp_delta)
    assert target - EPSILON_TOLERANCE <= spent <= target  # within the accountant's tolerance, never above
    # One more round's steps would overspend: the plan is tight.
    extra = planned_steps(TrainerSettings(rounds=1, local_epochs=2, batch_size=32), examples)
    assert epsilon([(sigma, planned[0][1], planned[0][2] + extra)], settings.dp_delta) > target


def test_a_model_opacus_cannot_train_is_refused_naming_the_layer():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    with pytest.raises(UnsupportedModel, match=r"layer '1' \(BatchNorm1d\): BatchNorm cannot support training"):
        check_model(model)
    check_model(load_task("credit").build_model())  # the built-in tasks' MLP is fine
    check_model(load_task("digits").build_model())


def test_private_runs_record_each_regions_spent_epsilon_and_stay_within_it(in_process):
    run = in_process({"rounds": 2, "compression": "int8", "dp-epsilon": 8.0, "local-epochs": 1})
    assert [r["round"] for r in run.records] == [1, 2] and run.info["stopped"] is None
    first, last = run.records
    assert set(first["epsilon"]) == set(REGIONS)
    for region in REGIONS:
        assert 0 < first["epsilon"][region] < last["epsilon"][region] <= 8.0
        dp = last["regions"][region]["dp"]
        assert dp["target_epsilon"] == 8.0 and dp["delta"] == 1e-5 and dp["noise_multiplier"] > 0
        # Calibrated for exactly the planned rounds: the last one ends within tolerance of the budget.
        assert last["epsilon"][region] >= 8.0 - EPSILON_TOLERANCE
    assert run.info["privacy"]["epsilon_spent"] == last["epsilon"]


def test_a_run_stops_cleanly_before_a_region_would_overspend(in_process):
    # A fixed noise multiplier too small for 5 rounds within ε = 6: the run trains as long as
    # every region's budget allows, then ends, saying why, with a final model.
    run = in_process({"rounds": 5, "compression": "none", "dp-epsilon": 6.0, "dp-noise-multiplier": 1.0})
    assert 1 <= len(run.records) < 5
    last = run.records[-1]
    assert "privacy budget" in last["stopped"] and f"after round {last['round']} of 5" in last["stopped"]
    assert run.info["stopped"] == last["stopped"] and run.info["round"] == last["round"]
    for record in run.records:
        assert all(spent <= 6.0 for spent in record["epsilon"].values())
    over = [r for r in REGIONS if last["regions"][r]["dp"]["epsilon_next"] > 6.0]
    assert over and all(r in last["stopped"] for r in over)
    assert last["global"]["accuracy"] is not None  # the final model was evaluated
    assert (run.out_dir / "model.safetensors").exists()


def test_a_region_refuses_by_itself_a_fit_that_would_overspend(digits_data, monkeypatch):
    """Defence in depth: asked to train past its budget (a server that does not stop), a
    region raises before training; on a SuperNode Flower sends that back as an error reply."""
    for attribute in ("_run_id", "_node_id", "_task_id"):
        monkeypatch.setattr(TaskIdentity, attribute, 1)
    run_config = {"dp-epsilon": 1.0, "dp-noise-multiplier": 0.5, "rounds": 1}
    context = Context(
        run_id=1,
        node_id=11,
        node_config={"region": "eu", "data-dir": str(digits_data / "eu")},
        state=RecordDict(),
        run_config=run_config,
    )
    model = load_task("digits").build_model()
    content = RecordDict(
        {
            "arrays": ArrayRecord({k: v.detach() for k, v in model.state_dict().items()}),
            "config": ConfigRecord({"server-round": 1}),
        }
    )
    message = Message(content, dst_node_id=11, message_type=MessageType.TRAIN)
    with pytest.raises(BudgetExhausted, match=r"privacy budget: this fit would take the region to .*not training"):
        client_app(message, context)
    assert "meridian-dp" not in context.state.config_records  # nothing was spent


def test_the_account_carries_over_in_the_nodes_context(digits_data):
    settings = TrainerSettings(dp_epsilon=8.0, rounds=3)
    examples = len(Shard.load(digits_data / "eu").x_train)
    context = Context(run_id=1, node_id=11, node_config={}, state=RecordDict(), run_config={})
    account = RegionAccount.load(context, settings, examples)
    account.history = [(account.noise_multiplier, sample_rate(examples, 32), 40)]
    account.save(context)
    again = RegionAccount.load(context, settings, examples)
    assert again == account and math.isclose(again.spent(1e-5), account.spent(1e-5))


@pytest.fixture(scope="module")
def credit_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("credit-data")
    prepare_data("credit", REGIONS, out, seed=0, alpha=0.5)
    return out


def test_dp_training_still_converges_on_credit_at_epsilon_8(in_process, credit_data):
    common = {"task": "credit", "rounds": 4, "compression": "none", "local-epochs": 1, "batch-size": 64}
    plain = in_process(common, data=credit_data)
    private = in_process({**common, "dp-epsilon": 8.0, "learning-rate": 0.2}, data=credit_data)
    assert all(spent <= 8.0 for spent in private.records[-1]["epsilon"].values())
    assert private.accuracy >= plain.accuracy - 0.03, (private.accuracy, plain.accuracy)


@pytest.mark.parametrize(("clipping", "side"), [("fixed", "server"), ("adaptive", "client")])
def test_update_level_dp_wraps_the_strategy(in_process, clipping, side):
    config = {
        "rounds": 2,
        "compression": "none",
        "aggregate-clipping": clipping,
        "aggregate-side": side,
        # Tiny noise: this checks the wiring. (At sigma 0.1 and C 5 the noise's std is 0.25 on every
        # weight, with min-regions 2: digits falls to ~0.19 accuracy. With a handful of regions,
        # update-level noise that means anything drowns the model.)
        "aggregate-noise-multiplier": 0.001,
        "aggregate-clipping-norm": 5.0,
    }
    run = in_process(config)
    assert [r["aggregated"] for r in run.records] == [sorted(REGIONS)] * 2
    assert run.info["privacy"]["aggregate"]["clipping"] == clipping
    assert run.accuracy > 0.5  # small noise, generous norm: it still learns


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"strategy": "fedmedian", "aggregate-clipping": "fixed"}, "privacy.aggregate.clipping: .*fedmedian"),
        ({"compression": "int8", "aggregate-clipping": "fixed", "aggregate-side": "client"}, "privacy.aggregate.side"),
        ({"aggregate-clipping": "gaussian"}, "aggregate-clipping=gaussian"),
        ({"dp-delta": 1.0}, "dp-delta=1.0"),
    ],
)
def test_the_run_config_refuses_what_the_stack_config_refuses(config, message):
    with pytest.raises(SettingsError, match=message):
        TrainerSettings.from_run_config(config)


def test_secagg_plus_needs_the_legacy_api_our_server_app_does_not_use():
    """The reason secureAggregation is refused, checked against Flower itself: its SecAgg+
    workflow takes only a LegacyContext (a legacy Strategy), not a message-API Context."""
    context = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    with pytest.raises(TypeError, match="Expect a LegacyContext"):
        SecAggPlusWorkflow(num_shares=3, reconstruction_threshold=2)(None, context)  # type: ignore[arg-type]
    assert "legacy workflow API" in SECURE_AGGREGATION_REFUSED


def test_the_superlink_exports_each_regions_spent_epsilon():
    metrics = FederationMetrics()
    record = RoundRecord(
        round=3, run_id=1, strategy="fedavg", compression="none", skipped=None, seconds=Seconds(1, 1, 0)
    )
    for region, spent in (("eu", 2.5), ("us", 3.0)):
        record.regions[region] = RegionRound(Status.AGGREGATED, privacy=Privacy(spent, spent + 1, 1.1, 8.0, 1e-5))
    metrics.observe_round(record)
    sample = metrics.registry.get_sample_value
    assert sample("meridian_federated_region_epsilon_spent", {"region": "eu"}) == 2.5
    assert sample("meridian_federated_region_epsilon_spent", {"region": "us"}) == 3.0
    assert sample("meridian_federated_stopped_for_privacy_budget") == 0


def test_a_supernode_exports_its_spent_epsilon(tmp_path):
    records = tmp_path / "training.jsonl"
    fit = TrainingRecord(
        time=1.0, run_id=7, round=2, region="eu", loss=0.5, examples=500, fit_seconds=0.4, uplink_bytes=10, epsilon=2.75
    )
    append(records, fit)
    # A record written before DP existed (no `epsilon`) still reads, as not private.
    legacy = {k: v for k, v in json.loads(fit.to_line()).items() if k != "epsilon"}
    assert TrainingRecord.from_line(json.dumps(legacy).encode()).epsilon is None
    registry = CollectorRegistry()
    registry.register(TrainingCollector(records))
    assert registry.get_sample_value("meridian_training_epsilon_spent") == 2.75
