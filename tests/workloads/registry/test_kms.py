"""Artifact signing by a cloud KMS: `awskms:///<arn>` and `gcpkms://<key version>` sign manifests
whose signatures verify with the key's public key alone, as a PEM key's do.

These run against protocol doubles (tests/workloads/registry/kms_doubles.py), not emulators: no
emulator signs Ed25519 (moto 5.2.5 has no ECC_NIST_EDWARDS25519; there is no Cloud KMS
emulator). The doubles sign with a real Ed25519 key over each cloud's wire protocol; the clients
are the real ones (botocore's KMS client, google-auth's AuthorizedSession), so the requests
checked here are the ones the pods send.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from torch import nn

from tests.workloads.registry.kms_doubles import (
    ACCESS_TOKEN,
    AWS_KEY_ARN,
    GCP_KEY_VERSION,
    KmsDouble,
    aws_kms,
    cloud_kms,
    service_account_file,
)
from workloads.registry import (
    ArtifactId,
    SigningKeyError,
    Variant,
    fetch_verified,
    load_signer,
    load_trusted_key,
    publish,
)
from workloads.registry.signing import sign_manifest, verify_signature
from workloads.tasks import Task

AWS_REF = f"awskms:///{AWS_KEY_ARN}"
GCP_REF = f"gcpkms://{GCP_KEY_VERSION}"
ARTIFACT = ArtifactId("model", "20261130.061500", "eu-west-1", Variant.FP32)


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Static credentials and no profile, as botocore's default chain finds them in a pod."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.fixture
def aws(aws_environment: None) -> Iterator[KmsDouble]:
    with aws_kms(KmsDouble()) as double:
        yield double


@pytest.fixture
def gcp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[KmsDouble]:
    """Cloud KMS, with Application Default Credentials that refresh their token from the double."""
    with cloud_kms(KmsDouble()) as double:
        monkeypatch.setenv(
            "GOOGLE_APPLICATION_CREDENTIALS", str(service_account_file(tmp_path, f"{double.endpoint}/token"))
        )
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "meridian")
        yield double


def _sign_and_verify(ref: str, double: KmsDouble) -> None:
    signer = load_signer(ref, kms_endpoint=double.endpoint)
    assert signer.ref == ref
    signature = sign_manifest(b'{"model": "m"}', signer)
    verify_signature(b'{"model": "m"}', signature, double.key.public_key(), "m")  # type: ignore[arg-type]
    assert json.loads(signature)["algorithm"] == "ed25519"


# -- AWS KMS ----------------------------------------------------------------------------------


def test_an_aws_kms_key_signs_with_pure_ed25519_over_the_raw_manifest(aws: KmsDouble) -> None:
    _sign_and_verify(AWS_REF, aws)
    read_key, sign = aws.requests
    assert read_key["headers"]["x-amz-target"] == "TrentService.GetPublicKey"
    assert sign["headers"]["x-amz-target"] == "TrentService.Sign"
    assert json.loads(sign["raw"]) == {
        "KeyId": AWS_KEY_ARN,
        "Message": base64.b64encode(b'{"model": "m"}').decode(),
        "MessageType": "RAW",
        "SigningAlgorithm": "ED25519_SHA_512",
    }
    # Signed for the key's own region, taken from its ARN (SigV4 credential scope).
    assert "/eu-west-1/kms/aws4_request" in sign["headers"]["authorization"]


def test_publish_signs_through_kms_and_readers_verify_with_the_public_key(
    aws: KmsDouble, monkeypatch: pytest.MonkeyPatch, digits: Task, variants: dict[Variant, nn.Module], tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", aws.endpoint)  # botocore's own endpoint override
    publish(
        variants[Variant.FP32], digits, f"file://{tmp_path}/registry", AWS_REF, artifact=ARTIFACT, parent_version="1"
    )
    verified = fetch_verified(f"file://{tmp_path}/registry", ARTIFACT, aws.key.public_key(), tmp_path / "cache")  # type: ignore[arg-type]
    assert verified.manifest.version == ARTIFACT.version


def test_aws_access_denied_names_the_key_and_the_clouds_message(aws: KmsDouble) -> None:
    aws.deny = True
    with pytest.raises(
        SigningKeyError,
        match=rf"{AWS_REF}: AWS KMS GetPublicKey failed: AccessDeniedException: .*not authorized to perform: kms:GetPublicKey",
    ):
        load_signer(AWS_REF, kms_endpoint=aws.endpoint)


def test_an_aws_key_of_another_spec_is_refused_before_any_work(aws_environment: None) -> None:
    with aws_kms(KmsDouble(key=ec.generate_private_key(ec.SECP256R1()))) as double:
        with pytest.raises(
            SigningKeyError, match=rf"{AWS_REF}: key spec ECC_NIST_P256 .*KeySpec ECC_NIST_EDWARDS25519"
        ):
            load_signer(AWS_REF, kms_endpoint=double.endpoint)
        assert [r["headers"]["x-amz-target"] for r in double.requests] == ["TrentService.GetPublicKey"]


def test_a_manifest_over_the_raw_limit_is_refused_and_nothing_is_written(
    aws: KmsDouble, digits: Task, variants: dict[Variant, nn.Module], tmp_path: Path
) -> None:
    signer = load_signer(AWS_REF, kms_endpoint=aws.endpoint)
    with pytest.raises(SigningKeyError, match=rf"{AWS_REF}: AWS KMS signs at most 4096 bytes .* 4097 bytes"):
        signer.sign(b"x" * 4097)
    aws.deny = True  # KMS refuses at publish time: the artifact must not appear half-written
    with pytest.raises(SigningKeyError, match="AccessDeniedException"):
        publish(
            variants[Variant.FP32], digits, f"file://{tmp_path}/registry", signer, artifact=ARTIFACT, parent_version="1"
        )
    assert not (tmp_path / "registry").exists()


@pytest.mark.parametrize(
    "ref", ["awskms://arn:aws:kms:eu-west-1:123456789012:key/k", "awskms:///arn:aws:s3:::bucket", "awskms:///k"]
)
def test_a_malformed_aws_ref_says_what_is_expected(ref: str) -> None:
    with pytest.raises(SigningKeyError, match=r"expected awskms:///arn:aws:kms:<region>:<account>:key/<key id>"):
        load_signer(ref)


# -- Cloud KMS --------------------------------------------------------------------------------


def test_a_cloud_kms_key_signs_with_pure_ed25519_over_the_data(gcp: KmsDouble) -> None:
    _sign_and_verify(GCP_REF, gcp)
    token, read_key, sign = gcp.requests
    assert token["path"] == "/token"  # Application Default Credentials: a token exchange first
    assert (read_key["method"], read_key["path"]) == ("GET", f"/v1/{GCP_KEY_VERSION}/publicKey")
    assert (sign["method"], sign["path"]) == ("POST", f"/v1/{GCP_KEY_VERSION}:asymmetricSign")
    assert sign["headers"]["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert json.loads(sign["raw"]) == {"data": base64.b64encode(b'{"model": "m"}').decode()}


def test_cloud_kms_permission_denied_names_the_key_and_the_clouds_message(gcp: KmsDouble) -> None:
    gcp.deny = True
    with pytest.raises(
        SigningKeyError, match=rf"{GCP_REF}: Cloud KMS getPublicKey failed: PERMISSION_DENIED: .*useToSign"
    ):
        load_signer(GCP_REF, kms_endpoint=gcp.endpoint)


def test_a_cloud_kms_key_of_another_algorithm_is_refused(gcp: KmsDouble) -> None:
    gcp.key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SigningKeyError, match=rf"{GCP_REF}: algorithm EC_SIGN_P256_SHA256 cannot sign Ed25519"):
        load_signer(GCP_REF, kms_endpoint=gcp.endpoint)


def test_a_malformed_gcp_ref_says_what_is_expected() -> None:
    with pytest.raises(SigningKeyError, match=r"expected gcpkms://projects/<p>/.*/cryptoKeyVersions/<n>"):
        load_signer("gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k")  # no key version


def test_a_pem_path_still_signs(keys: tuple[Path, Path]) -> None:
    private, public = keys
    signer = load_signer(str(private))
    assert signer.ref == str(private)
    verify_signature(b"m", sign_manifest(b"m", signer), load_trusted_key(public), "m")
