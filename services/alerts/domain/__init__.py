"""Alert rules, pure: blockade coverage, deadlines and the alert lifecycle (§4.3)."""
