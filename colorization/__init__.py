"""Automatic colorization of black-and-white photos: data, colour spaces, models, training."""

from colorization.errors import ColorizationError, ConfigError, DataError

__all__ = ["ColorizationError", "ConfigError", "DataError"]
