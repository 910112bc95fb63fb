"""The dotevals benchmark harness: ``python -m bench`` (or ``make bench``)."""
