"""DDColor's networks: the release's exact layout, and every submodule against the paper's equations.
Its losses (perceptual, colourfulness) are tested in test_losses.py.

The reference computations below are written from the equations (explicit sums over kernel
offsets, per-head softmax attention, per-pixel layer norms), not with the layers under test; all
run in float64 on random weights, so agreement is to rounding.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.networks.convnext import ConvNeXt, ConvNeXtBlock, LayerNorm2d
from colorization.networks.ddcolor import (
    CrossAttentionLayer,
    DDColorNet,
    FFNLayer,
    MultiScaleColorDecoder,
    PixelShuffleICNR,
    SelfAttentionLayer,
    UnetBlockWide,
    sine_position_encoding,
    spectral_conv,
)
from colorization.networks.unet_discriminator import SelfAttention, UNetDiscriminator
from colorization.networks.vgg import VGG16BNFeatures
from tests.helpers.weights import VGG_CONVS, torchvision_vgg16_bn_layout

REFERENCE = Path(__file__).parent / "reference"
PARAMETERS = {"tiny": 55_006_640, "large": 227_869_328}
"""The released networks' parameter counts (buffers such as spectral norm's u, v excluded)."""
TOL = {"atol": 1e-9, "rtol": 1e-9}


def release_layout(size: str) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of the authors' state dict, in order, from tests/reference/ddcolor_<size>_state_dict.tsv."""
    rows = (REFERENCE / f"ddcolor_{size}_state_dict.tsv").read_text().splitlines()[1:]
    layout = []
    for row in rows:
        key, shape, _ = row.split("\t")
        layout.append((key, tuple(int(n) for n in shape.strip("()").split(",") if n.strip())))
    return layout


@pytest.mark.parametrize("size", ["tiny", "large"])
def test_state_dict_is_the_release_layout(size):
    # large is built on the meta device: shapes without 0.9 GB of weights
    with torch.device("meta"):
        net = DDColorNet(size)
    layout = [(k, tuple(v.shape)) for k, v in net.state_dict().items()]
    assert layout == release_layout(size)
    assert sum(p.numel() for p in net.parameters()) == PARAMETERS[size]


# ---- reference computations ------------------------------------------------------------------


def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random float64 weights and BatchNorm statistics; spectral norm's u, v set to the exact singular pair."""
    generator = torch.Generator().manual_seed(seed)
    module.double()
    with torch.no_grad():
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if not tensor.is_floating_point() or name.endswith(("weight_u", "weight_v")):
                continue
            noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            tensor.copy_(1 + 0.5 * noise.abs() if name.endswith("running_var") else tensor + 0.3 * noise)
        for sub in module.modules():
            if hasattr(sub, "weight_orig"):
                u, _, vh = torch.linalg.svd(sub.weight_orig.flatten(1))
                sub.weight_u.copy_(u[:, 0])
                sub.weight_v.copy_(vh[0])
    return module.eval()


def spectral_weight(conv: nn.Module) -> Tensor:
    """W / sigma with sigma = u^T W v (the stored singular vectors)."""
    w = conv.weight_orig
    return w / torch.dot(conv.weight_u, w.flatten(1) @ conv.weight_v)


def conv_reference(x: Tensor, w: Tensor, b: Tensor | None, stride: int = 1, padding: int = 0, depthwise: bool = False):
    """Convolution as an explicit sum over kernel offsets of zero-padded input."""
    _, _, kh, kw = w.shape
    xp = F.pad(x, (padding,) * 4)
    ho, wo = (xp.shape[2] - kh) // stride + 1, (xp.shape[3] - kw) // stride + 1
    out = torch.zeros(x.shape[0], w.shape[0], ho, wo, dtype=x.dtype)
    for dy in range(kh):
        for dx in range(kw):
            patch = xp[:, :, dy : dy + stride * (ho - 1) + 1 : stride, dx : dx + stride * (wo - 1) + 1 : stride]
            if depthwise:
                out += w[:, 0, dy, dx][None, :, None, None] * patch
            else:
                out += torch.einsum("oc,bchw->bohw", w[:, :, dy, dx], patch)
    return out if b is None else out + b[None, :, None, None]


def layer_norm_reference(x: Tensor, weight: Tensor, bias: Tensor, eps: float, dim: int = -1) -> Tensor:
    mean = x.mean(dim, keepdim=True)
    var = ((x - mean) ** 2).mean(dim, keepdim=True)
    shape = [1] * x.dim()
    shape[dim] = -1
    return (x - mean) / torch.sqrt(var + eps) * weight.view(shape) + bias.view(shape)


def batch_norm_reference(x: Tensor, bn: nn.BatchNorm2d) -> Tensor:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean[None, :, None, None]) * scale[None, :, None, None] + bn.bias[None, :, None, None]


def gelu_reference(x: Tensor) -> Tensor:
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def pixel_shuffle_reference(x: Tensor, s: int) -> Tensor:
    """Channel c * s^2 + i * s + j becomes sub-pixel (i, j) of output channel c."""
    b, c, h, w = x.shape
    out = torch.zeros(b, c // s**2, h * s, w * s, dtype=x.dtype)
    for i in range(s):
        for j in range(s):
            out[:, :, i::s, j::s] = x[:, i * s + j :: s * s]
    return out


def blur_reference(z: Tensor) -> Tensor:
    """Mean of each pixel with its upper, left and upper-left neighbours (edges repeated)."""
    up = torch.cat([z[:, :, :1], z[:, :, :-1]], dim=2)
    left = lambda t: torch.cat([t[:, :, :, :1], t[:, :, :, :-1]], dim=3)  # noqa: E731
    return (z + up + left(z) + left(up)) / 4


def attention_reference(query: Tensor, key: Tensor, value: Tensor, mha: nn.MultiheadAttention) -> Tensor:
    """softmax(Q K^T / sqrt(d_head)) V per head, heads concatenated, then the output projection."""
    heads, d = mha.num_heads, mha.embed_dim
    wq, wk, wv = mha.in_proj_weight.chunk(3)
    bq, bk, bv = mha.in_proj_bias.chunk(3)

    def split(t: Tensor) -> Tensor:  # (B, N, d) -> (B, heads, N, d / heads)
        return t.view(t.shape[0], t.shape[1], heads, d // heads).transpose(1, 2)

    q, k, v = split(query @ wq.T + bq), split(key @ wk.T + bk), split(value @ wv.T + bv)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(query.shape)
    return merged @ mha.out_proj.weight.T + mha.out_proj.bias


def position_reference(height: int, width: int, dim: int) -> Tensor:
    half, out = dim // 2, torch.zeros(dim, height, width, dtype=torch.float64)
    for c in range(dim):
        k = c % half
        frequency = 10000 ** (2 * (k // 2) / half)
        for y in range(height):
            for x in range(width):
                t = (y + 1) / (height + 1e-6) if c < half else (x + 1) / (width + 1e-6)
                angle = t * 2 * math.pi / frequency
                out[c, y, x] = math.sin(angle) if k % 2 == 0 else math.cos(angle)
    return out


def convnext_block_reference(block: ConvNeXtBlock, x: Tensor) -> Tensor:
    y = conv_reference(x, block.dwconv.weight, block.dwconv.bias, padding=3, depthwise=True)
    y = layer_norm_reference(y, block.norm.weight, block.norm.bias, block.norm.eps, dim=1)
    y = torch.einsum("oc,bchw->bohw", block.pwconv1.weight, y) + block.pwconv1.bias[None, :, None, None]
    y = torch.einsum("oc,bchw->bohw", block.pwconv2.weight, gelu_reference(y)) + block.pwconv2.bias[None, :, None, None]
    return x + block.gamma[None, :, None, None] * y


def shuffle_reference(layer: PixelShuffleICNR, x: Tensor, scale: int) -> Tensor:
    conv = layer.conv[0]
    y = conv_reference(x, spectral_weight(conv), conv.bias)
    if len(layer.conv) > 1:
        y = batch_norm_reference(y, layer.conv[1])
    return blur_reference(pixel_shuffle_reference(torch.relu(y), scale))


def unet_block_reference(block: UnetBlockWide, x: Tensor, skip: Tensor) -> Tensor:
    joined = torch.relu(torch.cat([shuffle_reference(block.shuf, x, 2), batch_norm_reference(skip, block.bn)], dim=1))
    y = conv_reference(joined, spectral_weight(block.conv[0]), None, padding=1)
    return batch_norm_reference(torch.relu(y), block.conv[2])


def cross_reference(layer: CrossAttentionLayer, q: Tensor, q_pos: Tensor, memory: Tensor, m_pos: Tensor) -> Tensor:
    out = q + attention_reference(q + q_pos, memory + m_pos, memory, layer.multihead_attn)
    return layer_norm_reference(out, layer.norm.weight, layer.norm.bias, layer.norm.eps)


def self_reference(layer: SelfAttentionLayer, q: Tensor, q_pos: Tensor) -> Tensor:
    out = q + attention_reference(q + q_pos, q + q_pos, q, layer.self_attn)
    return layer_norm_reference(out, layer.norm.weight, layer.norm.bias, layer.norm.eps)


def ffn_reference(layer: FFNLayer, x: Tensor) -> Tensor:
    hidden = torch.relu(x @ layer.linear1.weight.T + layer.linear1.bias)
    out = x + hidden @ layer.linear2.weight.T + layer.linear2.bias
    return layer_norm_reference(out, layer.norm.weight, layer.norm.bias, layer.norm.eps)


def colour_decoder_reference(decoder: MultiScaleColorDecoder, scales: list[Tensor], image: Tensor) -> Tensor:
    memories, positions = [], []
    for i, x in enumerate(scales):
        proj = decoder.input_proj[i]
        y = torch.einsum("oc,bchw->bohw", proj.weight[:, :, 0, 0], x) + proj.bias[None, :, None, None]
        memories.append((y + decoder.level_embed.weight[i][None, :, None, None]).flatten(2).transpose(1, 2))
        positions.append(position_reference(*x.shape[-2:], 256).flatten(1).T[None])
    q_pos = decoder.query_embed.weight[None].expand(image.shape[0], -1, -1)
    q = decoder.query_feat.weight[None].expand(image.shape[0], -1, -1)
    for i in range(decoder.num_layers):
        level = i % len(scales)
        q = cross_reference(decoder.transformer_cross_attention_layers[i], q, q_pos, memories[level], positions[level])
        q = self_reference(decoder.transformer_self_attention_layers[i], q, q_pos)
        q = ffn_reference(decoder.transformer_ffn_layers[i], q)
    q = layer_norm_reference(q, decoder.decoder_norm.weight, decoder.decoder_norm.bias, decoder.decoder_norm.eps)
    mlp = decoder.color_embed.layers
    q = torch.relu(q @ mlp[0].weight.T + mlp[0].bias)
    q = torch.relu(q @ mlp[1].weight.T + mlp[1].bias)
    embeddings = q @ mlp[2].weight.T + mlp[2].bias  # (B, Q, C)
    out = torch.zeros(image.shape[0], embeddings.shape[1], *image.shape[-2:], dtype=image.dtype)
    for query in range(embeddings.shape[1]):  # each map: the query's embedding dotted with every pixel's features
        out[:, query] = (embeddings[:, query, :, None, None] * image).sum(1)
    return out


def sagan_reference(layer: SelfAttention, x: Tensor) -> Tensor:
    flat = x.flatten(2)
    f, g, h = (spectral_weight(c)[:, :, 0] @ flat for c in (layer.query, layer.key, layer.value))
    beta = torch.softmax(f.transpose(1, 2) @ g, dim=1)
    return (layer.gamma * (h @ beta) + flat).view_as(x)


def _rand(*shape: int, seed: int = 1) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _case_layer_norm():
    layer = randomize_(LayerNorm2d(6))
    x = _rand(2, 6, 5, 4)
    return layer(x), layer_norm_reference(x, layer.weight, layer.bias, layer.eps, dim=1)


def _case_convnext_block():
    block = randomize_(ConvNeXtBlock(8))
    with torch.no_grad():
        block.gamma.copy_(_rand(8, seed=3))  # the release's gamma is far from its 1e-6 start
    x = _rand(2, 8, 9, 10)
    return block(x), convnext_block_reference(block, x)


def _case_pixel_shuffle_icnr():
    layer = randomize_(PixelShuffleICNR(6, 5, scale=4))
    x = _rand(2, 6, 3, 4)
    return layer(x), shuffle_reference(layer, x, 4)


def _case_unet_block():
    block = randomize_(UnetBlockWide(12, 5, 8))
    x, skip = _rand(2, 12, 3, 4), _rand(2, 5, 6, 8, seed=2)
    return block(x, skip), unet_block_reference(block, x, skip)


def _case_cross_attention():
    layer = randomize_(CrossAttentionLayer())
    q, q_pos, memory, m_pos = (
        _rand(2, 7, 256),
        _rand(2, 7, 256, seed=2),
        _rand(2, 12, 256, seed=3),
        _rand(1, 12, 256, seed=4),
    )
    return layer(q, q_pos, memory, m_pos), cross_reference(layer, q, q_pos, memory, m_pos)


def _case_self_attention():
    layer = randomize_(SelfAttentionLayer())
    q, q_pos = _rand(2, 7, 256), _rand(2, 7, 256, seed=2)
    return layer(q, q_pos), self_reference(layer, q, q_pos)


def _case_ffn():
    layer = randomize_(FFNLayer())
    x = _rand(2, 7, 256)
    return layer(x), ffn_reference(layer, x)


def _case_position_encoding():
    return sine_position_encoding(3, 5, 256, dtype=torch.float64), position_reference(3, 5, 256)


def _case_colour_decoder():
    decoder = randomize_(MultiScaleColorDecoder((16, 12, 8), num_queries=5, num_layers=4))
    scales = [_rand(2, 16, 1, 2, seed=2), _rand(2, 12, 2, 4, seed=3), _rand(2, 8, 4, 8, seed=4)]
    image = _rand(2, 256, 16, 32, seed=5)
    return decoder(scales, image), colour_decoder_reference(decoder, scales, image)


def _case_refine_net():
    refine = randomize_(spectral_conv(13, 2, kernel_size=1, relu=False))
    x = _rand(2, 13, 4, 4)
    return refine(x), conv_reference(x, spectral_weight(refine[0]), refine[0].bias)


def _case_discriminator_attention():
    layer = randomize_(SelfAttention(16))
    x = _rand(2, 16, 3, 5)
    return layer(x), sagan_reference(layer, x)


CASES = {name.removeprefix("_case_"): case for name, case in globals().items() if name.startswith("_case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_submodule_matches_reference(name):
    with torch.no_grad():
        out, expected = CASES[name]()
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, **TOL)


def test_encoder_outputs_the_normed_stage_features_and_feeds_the_raw_ones_on():
    net = randomize_(ConvNeXt("tiny"))
    x = _rand(1, 3, 64, 64)
    with torch.no_grad():
        features = net(x)
        raw = net.stages[0](net.downsample_layers[0](x))
        second = net.stages[1](net.downsample_layers[1](raw))
    assert [f.shape[1:] for f in features] == [(96, 16, 16), (192, 8, 8), (384, 4, 4), (768, 2, 2)]
    torch.testing.assert_close(features[0], net.norm0(raw), **TOL)
    torch.testing.assert_close(features[1], net.norm1(second), **TOL)


def test_icnr_starts_as_nearest_upsampling():
    layer = PixelShuffleICNR(4, 3, scale=2, blur=False)
    x = torch.randn(1, 4, 5, 6)
    with torch.no_grad():
        out = layer(x)
    nearest = F.interpolate(out[:, :, ::2, ::2], scale_factor=2, mode="nearest")
    torch.testing.assert_close(out, nearest)


@pytest.fixture(scope="module")
def tiny() -> DDColorNet:
    torch.manual_seed(0)
    return DDColorNet("tiny").eval()


@pytest.mark.parametrize("size", [(256, 256), (512, 512), (96, 160)])
def test_network_runs_at_multiples_of_32(tiny, size):
    with torch.no_grad():
        ab = tiny(torch.rand(1, 3, *size))
    # a fresh network is usable at once: spectral norm's estimates are settled, activations stay in range
    assert ab.shape == (1, 2, *size) and ab.abs().max() < 128


def test_network_refuses_sides_that_are_not_multiples_of_32(tiny):
    with pytest.raises(ValueError, match="input of 100x96 pixels does not fit: sides must be a multiple of 32"):
        tiny(torch.rand(1, 3, 100, 96))


# ---- discriminator, VGG16-BN ----------------------------------------------------------------


@pytest.mark.parametrize(("side", "patches"), [(64, 1), (128, 25), (256, 169)])
def test_discriminator_gives_one_logit_per_patch(side, patches):
    d = UNetDiscriminator(nf=8)
    assert d(torch.rand(2, 3, side, side)).shape == (2, patches)


def test_discriminator_refuses_images_below_its_minimum():
    with pytest.raises(ValueError, match="input of 48x64 pixels does not fit: sides must be >= 64"):
        UNetDiscriminator(nf=8)(torch.rand(1, 3, 48, 64))


def test_vgg_layers_sit_where_torchvision_has_them():
    vgg = VGG16BNFeatures()
    expected = torchvision_vgg16_bn_layout()
    assert list(vgg.conv_index.values()) == list(VGG_CONVS[:11])
    for key, value in vgg.state_dict().items():
        assert expected[key].shape == value.shape, key
