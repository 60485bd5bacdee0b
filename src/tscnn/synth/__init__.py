"""Synthetic micro-expression databases written in the real CASME II / SAMM on-disk layouts."""

from tscnn.synth.database import SynthSettings, write_database

__all__ = ["SynthSettings", "write_database"]
