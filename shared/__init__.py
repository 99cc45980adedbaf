"""What the three NTX services share: event contracts, settings, clock and the
Kafka/PostgreSQL plumbing (outbox, inbox, dead letters). No clinical rules."""
