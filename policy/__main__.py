"""The Meridian policy pack. Only builds the PolicyPack (which serves the engine and never
returns); the rules live in `rules/`, importable and tested offline (policy/harness.py)."""

from pulumi_policy import EnforcementLevel, PolicyPack

from rules import POLICIES

PolicyPack(name="meridian", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
