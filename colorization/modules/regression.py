"""`RegressionColorizer`: a network regressed onto the colour space's target (CNN, U-Nets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from colorization.errors import check_choice
from colorization.inference.direct import DirectColorizer, direct_config
from colorization.modules.base import ColorizerModule, OptimizerFactory, SchedulerFactory

LOSSES: dict[str, Callable[[], nn.Module]] = {"mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss}


class RegressionColorizer(ColorizerModule):
    """Trains a `DirectColorizer`: ``net(normalize_l(L)) ~ colorspace.encode(L, ab)`` with a pixel loss.

    `net` builds the network (``model.net``, a partial carrying the network's own settings such
    as ``model.net.filters``); it is called with ``out_channels``/``out_range`` from the colour
    space. `optimizer` and `scheduler` take the parameters / the optimizer.
    """

    def __init__(
        self,
        net: Callable[..., nn.Module],
        optimizer: OptimizerFactory,
        colorspace: str = "lab",
        loss: str = "mse",
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__()
        check_choice("model.loss", loss, LOSSES)
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=True)
        self.use_colorizer(DirectColorizer(net, colorspace))
        self.loss_fn = LOSSES[loss]()
        self.use_optimizer(optimizer, scheduler)

    def colorizer_config(self) -> dict[str, Any] | None:
        if self.model_config is None:  # built by hand, not from a config: nothing to rebuild it from
            return None
        return direct_config(self.model_config["net"], self.colorspace.name)

    def forward(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100] -> (B, channels, H, W) prediction in the colour space."""
        return self.colorizer.predict(l)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        l, ab = batch["l"], batch["ab"]
        loss = self.loss_fn(self(l), self.colorspace.encode(l, ab))
        # sync_dist: under DDP the epoch value averages every process, not rank 0 alone
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=l.shape[0], sync_dist=True)
        return loss
