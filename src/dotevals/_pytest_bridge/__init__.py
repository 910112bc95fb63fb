"""dotevals inside pytest: the session's evaluations, their deferred set-up, and pytest's
private API behind one module (:mod:`~dotevals._pytest_bridge.internals`).

PYTEST_DONT_REWRITE
"""
