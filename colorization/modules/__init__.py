"""LightningModules: how each model family trains. All share `ColorizerModule`'s evaluation."""

from colorization.modules.base import ColorizerModule
from colorization.modules.regression import RegressionColorizer
from colorization.modules.zhang import ECCV16Module, SIGGRAPH17Module

__all__ = ["ColorizerModule", "ECCV16Module", "RegressionColorizer", "SIGGRAPH17Module"]
