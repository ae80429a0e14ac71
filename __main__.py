"""Meridian's Pulumi program: validate the stack's config, build the fleet, export its endpoints.

Everything of substance lives in components/; this file only wires config to the Fleet.
"""

import pulumi

from components.config import ConfigError, namespace_values, parse, stack_file
from components.fleet import Fleet, FleetArgs
from components.pulumi_internals import stack_config_values

stack = pulumi.get_stack()
try:
    config = parse(
        namespace_values(stack_config_values()),
        source=str(stack_file(stack).relative_to(stack_file(stack).parent.parent)),
    )
except ConfigError as err:
    raise pulumi.RunError(str(err)) from None  # a config mistake is a message, not a traceback

fleet = Fleet("meridian", FleetArgs(config=config, stack=stack))
for key, value in fleet.exports.items():
    pulumi.export(key, value)
