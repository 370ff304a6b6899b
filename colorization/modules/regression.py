"""`RegressionColorizer`: a network regressed onto the colour space's target (CNN, U-Nets)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from colorization.color.spaces import normalize_l
from colorization.errors import check_choice
from colorization.modules.base import ColorizerModule, OptimizerFactory, SchedulerFactory

LOSSES: dict[str, Callable[[], nn.Module]] = {"mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss}


class RegressionColorizer(ColorizerModule):
    """Trains ``net(normalize_l(L)) ~ colorspace.encode(L, ab)`` with a pixel loss.

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
        super().__init__(colorspace)
        check_choice("model.loss", loss, LOSSES)
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=True)
        self.net = net(out_channels=self.colorspace.channels, out_range=self.colorspace.output_range)
        self.size_multiple = self.net.working_multiple
        self.loss_fn = LOSSES[loss]()
        self.use_optimizer(optimizer, scheduler)

    def forward(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100] -> (B, channels, H, W) prediction in the colour space."""
        return self.net(normalize_l(l))

    def colorize(self, l: Tensor) -> Tensor:
        return self.colorspace.decode_lab(l, self(l))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        l, ab = batch["l"], batch["ab"]
        loss = self.loss_fn(self(l), self.colorspace.encode(l, ab))
        # sync_dist: under DDP the epoch value averages every process, not rank 0 alone
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=l.shape[0], sync_dist=True)
        return loss
