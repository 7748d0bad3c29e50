"""The run engine: state machine, drivers, recorder, crash detection, timeouts."""
