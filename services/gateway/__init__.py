"""The integration gateway (DESIGN.md §8): FHIR R4 in, NTX events out, CDS Hooks answered.

``domain/`` is the pure core (no Kafka, no database, no HTTP); ``codes/`` holds the
documented code tables it reads; ``cli.py`` is ``ntx fhir translate`` and
``ntx cds evaluate``.
"""
