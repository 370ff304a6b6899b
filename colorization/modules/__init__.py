"""LightningModules: how each model family trains. All share `ColorizerModule`'s evaluation."""

from colorization.modules.base import ColorizerModule
from colorization.modules.ddcolor import DDColorModule
from colorization.modules.gan import GANColorizer
from colorization.modules.regression import RegressionColorizer
from colorization.modules.zhang import ECCV16Module, SIGGRAPH17Module

__all__ = [
    "ColorizerModule",
    "DDColorModule",
    "ECCV16Module",
    "GANColorizer",
    "RegressionColorizer",
    "SIGGRAPH17Module",
]
