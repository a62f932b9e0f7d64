"""Test support shared by the whole suite: schema validation, stream invariants and SDK replay."""
