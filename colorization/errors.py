"""The project's own error types.

Entry points catch `ColorizationError` and print its one-line message instead of a traceback:
these errors describe bad input (a config value, a data file), never a bug in the code.
"""


class ColorizationError(Exception):
    """Bad input that the user can fix; the message names the key/path/value and what was expected."""


class ConfigError(ColorizationError):
    """A configuration value is missing, unknown or out of range."""


class DataError(ColorizationError):
    """A data file is missing or has the wrong dtype, shape or count."""
