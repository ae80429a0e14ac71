"""Pod hardening rules, container by container."""

from __future__ import annotations

import pytest

from policy.rules.kubernetes.pods import (
    CAPABILITIES_DROPPED,
    NO_PRIVILEGE_ESCALATION,
    POLICIES,
    PROBES_SET,
    READ_ONLY_ROOT_FILESYSTEM,
    RESOURCES_SET,
    RUN_AS_NON_ROOT,
)
from tests.policy.checks import assert_complies, assert_violates, check
from tests.policy.rules.kubernetes.workloads import deployment, hardened_container, with_security


@pytest.mark.parametrize("rule", POLICIES, ids=lambda p: p.name)
def test_the_hardened_deployment_complies(rule) -> None:
    assert_complies(rule, deployment())


def test_root_violates() -> None:
    assert_violates(RUN_AS_NON_ROOT, deployment(with_security(runAsNonRoot=None)), containing="runAsNonRoot")
    assert_violates(RUN_AS_NON_ROOT, deployment(with_security(runAsUser=0)), containing="runAsUser is 0")


def test_non_root_may_come_from_the_pod_security_context() -> None:
    pod_level = deployment(with_security(runAsNonRoot=None), securityContext={"runAsNonRoot": True})
    assert_complies(RUN_AS_NON_ROOT, pod_level)


def test_a_writable_root_filesystem_violates() -> None:
    assert_violates(
        READ_ONLY_ROOT_FILESYSTEM,
        deployment(with_security(readOnlyRootFilesystem=False)),
        containing="readOnlyRootFilesystem",
    )


def test_privilege_escalation_violates() -> None:
    assert_violates(
        NO_PRIVILEGE_ESCALATION,
        deployment(with_security(allowPrivilegeEscalation=None)),
        containing="allowPrivilegeEscalation",
    )
    assert_violates(NO_PRIVILEGE_ESCALATION, deployment(with_security(privileged=True)), containing="privileged")


def test_kept_capabilities_violate() -> None:
    assert_violates(
        CAPABILITIES_DROPPED,
        deployment(with_security(capabilities={"drop": ["NET_RAW"]})),
        containing="drop must include ALL",
    )
    added = with_security(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]})
    assert_violates(CAPABILITIES_DROPPED, deployment(added), containing="SYS_ADMIN")


def test_net_bind_service_may_be_added_back() -> None:
    assert_complies(
        CAPABILITIES_DROPPED, deployment(with_security(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}))
    )


def test_missing_limits_violate() -> None:
    container = hardened_container(resources={"requests": {"cpu": "1", "memory": "1Gi"}})
    assert_violates(RESOURCES_SET, deployment(container), containing="resources.limits lacks cpu, memory")


def test_missing_probes_violate() -> None:
    container = hardened_container()
    del container["livenessProbe"]
    assert_violates(PROBES_SET, deployment(container), containing="no livenessProbe")


def test_init_containers_are_checked_for_hardening_but_need_no_probes() -> None:
    init = hardened_container(name="fetch")
    del init["livenessProbe"], init["readinessProbe"]
    assert_complies(PROBES_SET, deployment(initContainers=[init]))
    root_init = init | {"securityContext": {}}
    assert_violates(RUN_AS_NON_ROOT, deployment(initContainers=[root_init]), containing="container fetch")


def test_exempt_namespaces_are_not_applicable() -> None:
    report = check(
        RUN_AS_NON_ROOT, deployment(with_security(runAsUser=0)), config={"exemptNamespaces": ["meridian-inference"]}
    )
    assert not report.violations
    assert report.not_applicable
