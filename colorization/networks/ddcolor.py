"""DDColor (Kang et al., "DDColor: Towards Photo-Realistic Image Colorization via Dual Decoders", ICCV 2023).

    gray sRGB (B, 3, H, W) in [0, 1] --ImageNet normalisation--> x
    ConvNeXt encoder -> four layer-normed features at strides 4, 8, 16, 32
    pixel decoder: three `UnetBlockWide` (x2 pixel-shuffle up, skip from the encoder) -> strides 16, 8, 4,
                   then a x4 pixel shuffle -> (B, nf/2, H, W) image features
    colour decoder: learnable colour queries attend, layer by layer, to the pixel decoder's three
                    scales (cross-attention -> self-attention -> FFN, post-norm), then a 3-layer MLP
                    gives one embedding per query; its dot product with the image features -> (B, Q, H, W)
    refine_net: a 1x1 conv on [Q maps, x] -> (B, 2, H, W) a*, b* in Lab units

Parameter names and shapes are those of the authors' release, so their ``pytorch_model.pt`` files
load strictly (tested against `tests/reference/ddcolor_{tiny,large}_state_dict.tsv`). The
convolutions of the pixel decoder, `refine_net` and the discriminator are spectrally normalised
with `torch.nn.utils.spectral_norm`, whose ``weight_orig``/``weight_u``/``weight_v`` entries are
the release's. Sides must be multiples of 32 (the encoder's stride).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.color.spaces import IMAGENET_MEAN, IMAGENET_STD
from colorization.networks.base import Network
from colorization.networks.convnext import ConvNeXt

SIZES = ("tiny", "large")
"""DDColor-T (ConvNeXt-T encoder) and DDColor-L (ConvNeXt-L), the released variants."""
STRIDE = 32
NUM_SCALES = 3
"""The colour decoder attends to the pixel decoder's outputs at strides 16, 8 and 4."""
HIDDEN_DIM, NUM_HEADS, FFN_DIM = 256, 8, 2048
POSITION_TEMPERATURE = 10000.0
POWER_ITERATIONS = 20
"""Power iterations that settle spectral norm's singular vectors on a new network's weights."""
BN_BIAS_INIT = 1e-3
"""The skip connections' BatchNorm starts with bias 1e-3 (fastai's `batchnorm_2d`)."""


def spectral_norm(module: nn.Module) -> nn.Module:
    """`torch.nn.utils.spectral_norm`, its singular vectors u, v settled on the initial weight.

    PyTorch starts u, v at random and refines them by one power iteration per training forward,
    so a network fresh from construction would divide its weights by a poor estimate of their
    spectral norm in eval mode (random, far too small: activations explode). A few iterations
    at construction make a new network usable at once; loaded weights bring their own u, v.
    """
    module = nn.utils.spectral_norm(module)
    if module.weight_orig.is_meta:
        return module
    with torch.no_grad():
        matrix, u = module.weight_orig.flatten(1), module.weight_u
        for _ in range(POWER_ITERATIONS):
            v = F.normalize(matrix.T @ u, dim=0)
            u = F.normalize(matrix @ v, dim=0)
        module.weight_u.copy_(u)
        module.weight_v.copy_(v)
    return module


def spectral_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int | None = None,
    bias: bool | None = None,
    relu: bool = True,
    batch_norm: bool = False,
    icnr_scale: int | None = None,
) -> nn.Sequential:
    """Spectrally normalised conv (Kaiming-normal init), then ReLU, then BatchNorm, each optional.

    `padding` None keeps the size at stride 1 ((k - 1) / 2); `bias` None has one unless a
    BatchNorm follows; `icnr_scale` initialises the weight for a following pixel shuffle
    (`icnr_`). The layers sit at indices 0, 1, 2 of the returned `nn.Sequential` (the BatchNorm
    at 1 without ReLU), as in the release's layout.
    """
    bias = not batch_norm if bias is None else bias
    padding = (kernel_size - 1) // 2 if padding is None else padding
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
    nn.init.kaiming_normal_(conv.weight)
    if icnr_scale is not None:
        icnr_(conv.weight, icnr_scale)
    if bias:
        nn.init.zeros_(conv.bias)
    layers: list[nn.Module] = [spectral_norm(conv)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    return nn.Sequential(*layers)


def icnr_(weight: Tensor, scale: int) -> None:
    """ICNR init (Aitken et al. 2017): the `scale`**2 sub-pixel filters of each output channel start equal.

    After `nn.PixelShuffle(scale)` the layer then begins as a nearest-neighbour upsampling of a
    Kaiming-initialised conv, free of checkerboard artefacts. `weight`: (C * scale**2, in, k, k).
    """
    out_channels, *rest = weight.shape
    sub = torch.empty(out_channels // scale**2, *rest, device=weight.device, dtype=weight.dtype)
    nn.init.kaiming_normal_(sub)
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(scale**2, dim=0))


class PixelShuffleICNR(nn.Module):
    """x`scale` upsampling: 1x1 spectral conv to C * scale**2 channels, ReLU, pixel shuffle, 2x2 blur.

    The blur (replication-pad one pixel top/left, 2x2 mean; Sugawara et al. 2018) smooths what
    remains of the shuffle's checkerboard. `batch_norm` adds a BatchNorm after the conv.
    """

    def __init__(
        self, in_channels: int, out_channels: int, scale: int = 2, blur: bool = True, batch_norm: bool = False
    ):
        super().__init__()
        self.conv = spectral_conv(
            in_channels, out_channels * scale**2, kernel_size=1, relu=False, batch_norm=batch_norm, icnr_scale=scale
        )
        self.shuf = nn.PixelShuffle(scale)
        self.blur = blur

    def forward(self, x: Tensor) -> Tensor:
        """(B, in, H, W) -> (B, out, scale H, scale W)."""
        x = self.shuf(F.relu(self.conv(x)))
        return F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1) if self.blur else x


class UnetBlockWide(nn.Module):
    """One x2 decoder step: upsample the input, join the BatchNormed skip feature, ReLU, 3x3 conv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.shuf = PixelShuffleICNR(in_channels, out_channels, batch_norm=True)
        self.bn = nn.BatchNorm2d(skip_channels)
        nn.init.constant_(self.bn.bias, BN_BIAS_INIT)
        self.conv = spectral_conv(out_channels + skip_channels, out_channels, batch_norm=True)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """(B, in, H, W), (B, skip, 2H, 2W) -> (B, out, 2H, 2W)."""
        return self.conv(F.relu(torch.cat([self.shuf(x), self.bn(skip)], dim=1)))


def sine_position_encoding(
    height: int, width: int, dim: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """DETR's normalised sine encoding of pixel positions: (dim, height, width), dim/2 channels for y then x.

    Row y (1-based) has the angle y / (height + 1e-6) * 2pi, divided by 10000**(2 floor(i/2) / (dim/2))
    for channel i; even channels take the sine, odd ones the cosine (likewise for x).
    """
    half, eps = dim // 2, 1e-6
    y = torch.arange(1, height + 1, dtype=dtype, device=device) / (height + eps) * 2 * math.pi
    x = torch.arange(1, width + 1, dtype=dtype, device=device) / (width + eps) * 2 * math.pi
    i = torch.arange(half, dtype=dtype, device=device)
    frequencies = POSITION_TEMPERATURE ** (2 * torch.div(i, 2, rounding_mode="floor") / half)

    def encode(angles: Tensor) -> Tensor:  # (n,) -> (half, n)
        phase = angles[None, :] / frequencies[:, None]
        return torch.where((i % 2 == 0)[:, None], phase.sin(), phase.cos())

    pos_y, pos_x = encode(y), encode(x)
    return torch.cat([pos_y[:, :, None].expand(-1, -1, width), pos_x[:, None, :].expand(-1, height, -1)])


class CrossAttentionLayer(nn.Module):
    """queries <- LayerNorm(queries + MHA(queries + query_pos, memory + memory_pos, memory))."""

    def __init__(self, dim: int = HIDDEN_DIM, heads: int = NUM_HEADS) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, queries: Tensor, query_pos: Tensor, memory: Tensor, memory_pos: Tensor) -> Tensor:
        """(B, Q, dim) queries attend to (B, N, dim) memory; positions are added to queries and keys only."""
        attended = self.multihead_attn(queries + query_pos, memory + memory_pos, memory, need_weights=False)[0]
        return self.norm(queries + attended)


class SelfAttentionLayer(nn.Module):
    """queries <- LayerNorm(queries + MHA(queries + query_pos, queries + query_pos, queries))."""

    def __init__(self, dim: int = HIDDEN_DIM, heads: int = NUM_HEADS) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, queries: Tensor, query_pos: Tensor) -> Tensor:
        """(B, Q, dim) -> (B, Q, dim)."""
        with_pos = queries + query_pos
        return self.norm(queries + self.self_attn(with_pos, with_pos, queries, need_weights=False)[0])


class FFNLayer(nn.Module):
    """x <- LayerNorm(x + W2 ReLU(W1 x + b1) + b2)."""

    def __init__(self, dim: int = HIDDEN_DIM, hidden: int = FFN_DIM) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.linear2(F.relu(self.linear1(x))))


class MLP(nn.Module):
    """`num_layers` linear layers with ReLU between them."""

    def __init__(self, dim: int, hidden: int, out: int, num_layers: int) -> None:
        super().__init__()
        sizes = [dim] + [hidden] * (num_layers - 1) + [out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class MultiScaleColorDecoder(nn.Module):
    """`num_queries` learnable colour queries refined over `num_layers` layers cycling through 3 scales.

    Each scale is projected to `HIDDEN_DIM` channels (1x1 conv), gets its level embedding added and
    the sine position encoding as its keys' position; the queries carry a learnable position
    (`query_embed`). Layer i attends to scale i mod 3 (the coarsest first).
    """

    def __init__(self, in_channels: tuple[int, ...], num_queries: int = 100, num_layers: int = 9) -> None:
        super().__init__()
        self.num_layers = num_layers
        # registered in the order of the release's state dict
        self.query_feat = nn.Embedding(num_queries, HIDDEN_DIM)
        self.query_embed = nn.Embedding(num_queries, HIDDEN_DIM)
        self.level_embed = nn.Embedding(len(in_channels), HIDDEN_DIM)
        self.input_proj = nn.ModuleList(nn.Conv2d(c, HIDDEN_DIM, kernel_size=1) for c in in_channels)
        for proj in self.input_proj:
            nn.init.kaiming_uniform_(proj.weight, a=1)
            nn.init.zeros_(proj.bias)
        self.transformer_self_attention_layers = nn.ModuleList(SelfAttentionLayer() for _ in range(num_layers))
        self.transformer_cross_attention_layers = nn.ModuleList(CrossAttentionLayer() for _ in range(num_layers))
        self.transformer_ffn_layers = nn.ModuleList(FFNLayer() for _ in range(num_layers))
        for layers in (
            self.transformer_self_attention_layers,
            self.transformer_cross_attention_layers,
            self.transformer_ffn_layers,
        ):
            for p in layers.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        self.decoder_norm = nn.LayerNorm(HIDDEN_DIM)
        self.color_embed = MLP(HIDDEN_DIM, HIDDEN_DIM, HIDDEN_DIM, 3)

    def forward(self, scales: list[Tensor], image_features: Tensor) -> Tensor:
        """Three (B, C_i, H_i, W_i) maps and (B, 256, H, W) image features -> (B, num_queries, H, W)."""
        memories, positions = [], []
        for i, x in enumerate(scales):
            # float32 at least: half-precision angles would blur neighbouring positions
            precision = torch.float64 if x.dtype == torch.float64 else torch.float32
            pos = sine_position_encoding(*x.shape[-2:], HIDDEN_DIM, x.device, precision).to(x.dtype)
            positions.append(pos.flatten(1).T[None])  # (1, H_i W_i, 256)
            memories.append(
                (self.input_proj[i](x).flatten(2) + self.level_embed.weight[i][None, :, None]).transpose(1, 2)
            )
        batch = image_features.shape[0]
        # copies, not views: a view of a parameter made under no_grad counts as a leaf that requires
        # grad, which torch's module tracker (FLOP counting in the model summary) cannot hook
        query_pos = self.query_embed.weight[None].repeat(batch, 1, 1)
        queries = self.query_feat.weight[None].repeat(batch, 1, 1)
        for i in range(self.num_layers):
            level = i % len(scales)
            queries = self.transformer_cross_attention_layers[i](queries, query_pos, memories[level], positions[level])
            queries = self.transformer_self_attention_layers[i](queries, query_pos)
            queries = self.transformer_ffn_layers[i](queries)
        colour_embeddings = self.color_embed(self.decoder_norm(queries))  # (B, Q, 256)
        return torch.einsum("bqc,bchw->bqhw", colour_embeddings, image_features)


class Decoder(nn.Module):
    """Pixel decoder (three `UnetBlockWide`, then x4 shuffle) feeding the multi-scale colour decoder."""

    def __init__(self, encoder_dims: tuple[int, ...], nf: int = 512, num_queries: int = 100, num_layers: int = 9):
        super().__init__()
        outs = (nf, nf, nf // 2)
        ins = (encoder_dims[3], *outs[:-1])
        skips = encoder_dims[2::-1]
        self.layers = nn.ModuleList(UnetBlockWide(i, s, o) for i, s, o in zip(ins, skips, outs, strict=True))
        self.last_shuf = PixelShuffleICNR(nf // 2, nf // 2, scale=4)
        self.color_decoder = MultiScaleColorDecoder(outs, num_queries, num_layers)

    def forward(self, features: list[Tensor]) -> Tensor:
        """The encoder's four features -> (B, num_queries, H, W) at the input's resolution."""
        x, scales = features[3], []
        for layer, skip in zip(self.layers, features[2::-1], strict=True):
            x = layer(x, skip)
            scales.append(x)
        return self.color_decoder(scales, self.last_shuf(x))


class DDColorNet(Network):
    """DDColor-T (`size` 'tiny') or DDColor-L ('large'): gray sRGB in [0, 1] -> a*, b* in Lab units.

    `num_queries` colour queries and `num_layers` colour-decoder layers (the release: 100 and 9).
    """

    size_multiple = STRIDE
    min_size = STRIDE

    def __init__(self, size: str = "tiny", num_queries: int = 100, num_layers: int = 9, nf: int = 512) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"DDColor size {size!r}: expected one of {list(SIZES)}")
        self.size = size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        # the release nests the ConvNeXt one level down ("encoder.arch.*")
        self.encoder = nn.ModuleDict({"arch": ConvNeXt(size)})
        self.decoder = Decoder(self.encoder["arch"].dims, nf, num_queries, num_layers)
        self.refine_net = nn.Sequential(spectral_conv(num_queries + 3, 2, kernel_size=1, relu=False))

    def forward(self, rgb: Tensor) -> Tensor:
        """(B, 3, H, W) sRGB in [0, 1] (gray: R = G = B), H and W multiples of 32 -> (B, 2, H, W) ab."""
        if rgb.dim() != 4 or rgb.shape[1] != 3:
            raise ValueError(f"DDColor expects (B, 3, H, W) sRGB, got {tuple(rgb.shape)}")
        self.check_input(rgb)
        x = (rgb - self.mean) / self.std
        maps = self.decoder(self.encoder["arch"](x))
        return self.refine_net(torch.cat([maps, x], dim=1))
