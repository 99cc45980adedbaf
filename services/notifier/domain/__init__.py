"""Delivery rules, pure: routing, retry schedule, outcome of an attempt, the
delivery state machine and acknowledgements. No HTTP, Kafka or database here."""
