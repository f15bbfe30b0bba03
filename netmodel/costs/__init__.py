"""Costs: the sourced profile and the pure functions that turn it into hop times."""
