"""Transports the tests bring from outside the project (`TOKENWIRE_TRANSPORTS`)."""
