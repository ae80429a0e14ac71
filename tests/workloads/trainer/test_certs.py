"""The federation's certificates and node keys: signed by the CA, P-384, owner-only, never silently replaced."""

import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

from workloads.trainer.certs import generate, main


def test_the_superlink_certificate_is_signed_by_the_ca_for_loopback_and_extra_names(tmp_path):
    paths = generate(tmp_path, ["eu", "us"], ["superlink.meridian.svc"])
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(paths.superlink_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "superlink.meridian.svc"}
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_each_node_gets_a_p384_key_pair_in_openssh_format_readable_only_by_its_owner(tmp_path):
    paths = generate(tmp_path, ["eu", "us"])
    for node in ("eu", "us"):
        private = load_ssh_private_key(paths.node_private_keys[node].read_bytes(), None)
        public = load_ssh_public_key(paths.node_public_keys[node].read_bytes())
        assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
        assert private.public_key().public_numbers() == public.public_numbers()
        assert stat.S_IMODE(paths.node_private_keys[node].stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.superlink_key.stat().st_mode) == 0o600
    assert paths.node_public_keys["eu"].read_bytes() != paths.node_public_keys["us"].read_bytes()


def test_existing_material_is_not_replaced_without_force(tmp_path):
    first = generate(tmp_path, ["eu"]).ca_cert.read_bytes()
    with pytest.raises(FileExistsError, match="--force"):
        generate(tmp_path, ["eu"])
    assert generate(tmp_path, ["eu"], force=True).ca_cert.read_bytes() != first


def test_the_command_names_nodes_by_count_or_by_name(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "a"), "--nodes", "3"]) == 0
    assert sorted(p.name for p in (tmp_path / "a" / "nodes").glob("*.key")) == [
        "node-0.key",
        "node-1.key",
        "node-2.key",
    ]
    assert main(["--out", str(tmp_path / "b"), "--node-names", "eu,eu"]) == 2
    assert "unique" in capsys.readouterr().err
