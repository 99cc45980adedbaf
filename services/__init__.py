"""The three NTX services and the ``ntx`` command line that wires them."""
