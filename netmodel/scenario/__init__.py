"""Scenarios: the schema, YAML loading with line-numbered errors, sweep expansion."""
