"""Automations on the server: triggers evaluated over the event inbox (`triggers.py`,
`service.py`) and the actions of their firings (`actions.py`)."""
