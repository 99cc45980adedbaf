"""Notifier (DESIGN.md §9): signed webhook delivery of notification requests."""
