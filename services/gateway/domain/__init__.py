"""The gateway's pure core: FHIR R4 JSON to the NTX events it means, and CDS Hooks
cards from the intake rules. No Kafka, no database, no HTTP: the service, the CLI and
the unit tests run this same code; state (identities, held lab results) goes through
small repository protocols."""
