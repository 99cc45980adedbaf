"""Intake rules, pure: who may start naltrexone, and why (DESIGN.md §4.1)."""
