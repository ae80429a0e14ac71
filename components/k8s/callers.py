"""Who may call a region's inference API, and how much: what its servers and edges are given.

- API keys: each key id the stack lists (`auth.apiKeys`) has its secret in the stack's secret
  config `meridian:apiKeys` ({id: secret}, `pulumi config set --secret --path
  'meridian:apiKeys.<id>' <secret>`), read here as a Pulumi secret and never written anywhere
  in plain text. The clusters get only salted SHA-256 hashes (contract.api_key_record), as the
  JSON file the servers read (contract.API_KEYS_FILE), in one Secret per region's namespace;
  each key's salt is pulumi-random's, kept in the stack's state, so a `pulumi up` that changes
  nothing rewrites nothing. A changed secret changes the file in place: the servers re-read it,
  no restart (contract: API keys).
- OIDC: the issuer, audience and JWKS URL of `auth.oidc`, as environment.
- Per-caller token buckets: `auth.rateLimit` and `auth.callers` as contract.ENV_RATE_LIMITS JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components.config import NAMESPACE, Auth, RateLimit
from components.k8s.pods import SecretFiles
from components.k8s.serving import PodAdditions
from components.k8s.target import Target
from components.k8s.workload import Workload
from workloads import contract

API_KEYS_CONFIG = "apiKeys"  # the secret config key (components/config.py SECRET_KEYS)
API_KEYS_SECRET = "api-keys"  # the Secret (and the owner label of it)
SALT_BYTES = 16


class MissingApiKeySecret(pulumi.RunError):
    """A listed API key id has no secret in the stack's secret config (a message, no traceback)."""


def api_key_secrets(auth: Auth) -> dict[str, pulumi.Output[str]]:
    """Every listed key id's secret, as a Pulumi secret (`require_secret_object`: secret from
    the moment the program holds it). Which ids are set is checked first, synchronously, so a
    missing one stops the program before any resource; that list is not itself secret."""
    config = pulumi.Config(NAMESPACE)
    given = config.get_object(API_KEYS_CONFIG)
    missing = [key_id for key_id in auth.api_keys if not (isinstance(given, dict) and given.get(key_id))]
    if missing:
        raise MissingApiKeySecret(
            "auth.apiKeys: no secret for "
            + ", ".join(
                f"{key_id!r} (set it: pulumi config set --secret --path '{NAMESPACE}:{API_KEYS_CONFIG}.{key_id}' <secret>)"
                for key_id in missing
            )
        )
    if not auth.api_keys:
        return {}
    secrets = config.require_secret_object(API_KEYS_CONFIG)
    return {key_id: secrets.apply(lambda keys, key_id=key_id: str(keys[key_id])) for key_id in auth.api_keys}


def rate_limits(auth: Auth) -> str:
    """contract.ENV_RATE_LIMITS: the default bucket and the per-caller overrides."""

    def bucket(limit: RateLimit) -> dict[str, object]:
        return limit.model_dump(mode="json", by_alias=True)

    return json.dumps(
        {"default": bucket(auth.rate_limit), "callers": {c: bucket(limit) for c, limit in auth.callers.items()}},
        sort_keys=True,
    )


def oidc_environment(auth: Auth) -> dict[str, str]:
    if auth.oidc is None:
        return {}
    return {
        contract.ENV_OIDC_ISSUER: auth.oidc.issuer,
        contract.ENV_OIDC_AUDIENCE: auth.oidc.audience,
        contract.ENV_OIDC_JWKS_URL: auth.oidc.jwks_url,
    }


def _keys_file(records: list[dict[str, str]]) -> str:
    return json.dumps({"keys": records}, sort_keys=True)


@dataclass(frozen=True, kw_only=True)
class CallersArgs:
    target: Target


class Callers(pulumi.ComponentResource):
    """The region's API key hashes (one Secret) and the callers' environment of its servers."""

    pod: PodAdditions  # what every server and edge of the region mounts and reads

    def __init__(self, name: str, args: CallersArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:k8s:Callers", name, None, opts)
        target = args.target
        auth = target.config.auth
        environment = {contract.ENV_RATE_LIMITS: rate_limits(auth), **oidc_environment(auth)}
        files: list[SecretFiles] = []
        if auth.api_keys:
            records = [self._record(name, key_id, secret) for key_id, secret in api_key_secrets(auth).items()]
            # Secret twice over: the SDK marks a Secret's data, and the records come from secrets.
            keys_file = pulumi.Output.secret(pulumi.Output.all(*records).apply(_keys_file))
            secret = Workload(target, API_KEYS_SECRET, self).secret(
                f"{name}-api-keys", API_KEYS_SECRET, {contract.API_KEYS_FILE: keys_file}
            )
            files.append(
                SecretFiles(
                    secret.metadata.name,
                    API_KEYS_SECRET,
                    contract.API_KEYS_MOUNT,
                    {contract.ENV_API_KEYS_FILE: contract.API_KEYS_FILE},
                )
            )
        self.pod = PodAdditions(environment, files)
        self.register_outputs({"keyIds": list(auth.api_keys), "oidc": auth.oidc is not None})

    def _record(self, name: str, key_id: str, secret: pulumi.Output[str]) -> pulumi.Output[dict[str, str]]:
        """One key's entry of the keys file, under a salt of its own."""
        salt = random.RandomBytes(f"{name}-salt-{key_id}", length=SALT_BYTES, opts=pulumi.ResourceOptions(parent=self))
        return pulumi.Output.all(salt.hex, secret).apply(
            lambda parts: contract.api_key_record(key_id, bytes.fromhex(parts[0]), parts[1])
        )
