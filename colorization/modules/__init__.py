"""LightningModules: how each model family trains. All share `ColorizerModule`'s evaluation."""

from colorization.modules.base import ColorizerModule
from colorization.modules.regression import RegressionColorizer

__all__ = ["ColorizerModule", "RegressionColorizer"]
