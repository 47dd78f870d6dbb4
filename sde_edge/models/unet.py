"""A compact time-conditioned UNet (DDPM / NCSN++ family, our own small version)."""
import math

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels, groups):
    return nn.GroupNorm(math.gcd(groups, channels), channels)


def timestep_embedding(t, dim, scale=1000.0):
    """Sinusoidal features of t in [0, 1] (scaled so that t = i / N looks like DDPM's step i)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    angles = scale * t[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, in_channels, out_channels, embed_dim, dropout, groups):
        super().__init__()
        self.norm1, self.conv1 = _norm(in_channels, groups), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embed = nn.Linear(embed_dim, out_channels)
        self.norm2, self.conv2 = _norm(out_channels, groups), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x, embedding):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.embed(embedding)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    def __init__(self, channels, groups):
        super().__init__()
        self.norm = _norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        attended = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj(attended.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """UNet(x, t) -> tensor shaped like x. ``ch_mult`` sets the channels per resolution level,
    ``attn_resolutions`` the feature-map sizes that get self-attention."""

    def __init__(self, in_channels=1, image_size=16, nf=32, ch_mult=(1, 2, 2), num_res_blocks=1,
                 attn_resolutions=(8,), dropout=0.0, num_groups=8):
        super().__init__()
        self.in_channels, self.nf, embed_dim = in_channels, nf, 4 * nf
        self.embed = nn.Sequential(nn.Linear(nf, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        self.stem = nn.Conv2d(in_channels, nf, 3, padding=1)
        block = lambda cin, cout: ResBlock(cin, cout, embed_dim, dropout, num_groups)  # noqa: E731

        self.down, skip_channels, channels, size = nn.ModuleList(), [nf], nf, image_size
        for level, mult in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                self.down.append(
                    nn.ModuleList(
                        [block(channels, nf * mult), self._attention(nf * mult, size, attn_resolutions, num_groups)]
                    )
                )
                channels = nf * mult
                skip_channels.append(channels)
            if level < len(ch_mult) - 1:
                self.down.append(nn.Conv2d(channels, channels, 3, stride=2, padding=1))
                skip_channels.append(channels)
                size //= 2
        self.middle = nn.ModuleList(
            [block(channels, channels), AttentionBlock(channels, num_groups), block(channels, channels)]
        )

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks + 1):
                self.up.append(nn.ModuleList([block(channels + skip_channels.pop(), nf * mult),
                                              self._attention(nf * mult, size, attn_resolutions, num_groups)]))
                channels = nf * mult
            if level > 0:
                self.up.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(channels, channels, 3, padding=1)
                    )
                )
                size *= 2
        self.head = nn.Sequential(
            _norm(channels, num_groups), nn.SiLU(), nn.Conv2d(channels, in_channels, 3, padding=1)
        )
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    @staticmethod
    def _attention(channels, size, attn_resolutions, groups):
        return AttentionBlock(channels, groups) if size in attn_resolutions else nn.Identity()

    def forward(self, x, t):
        embedding = self.embed(timestep_embedding(t, self.nf))
        h = self.stem(x)
        skips = [h]
        for layer in self.down:
            if isinstance(layer, nn.ModuleList):
                h = layer[1](layer[0](h, embedding))
            else:
                h = layer(h)
            skips.append(h)
        h = self.middle[2](self.middle[1](self.middle[0](h, embedding)), embedding)
        for layer in self.up:
            if isinstance(layer, nn.ModuleList):
                h = layer[1](layer[0](torch.cat([h, skips.pop()], dim=1), embedding))
            else:
                h = layer(h)
        return self.head(h)
