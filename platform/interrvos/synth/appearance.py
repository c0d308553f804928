"""How synthetic things look: the named colour palette, sprite textures and frame backgrounds.

Textures shift brightness around an object's base colour (never its hue) so the colour name in
the ground truth stays true of the pixels. Backgrounds use muted tones so that every palette
colour stands out against them.
"""

from __future__ import annotations

import cv2
import numpy as np

# Object colours by name; the names go into the ground truth and into referring expressions.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (50, 170, 60),
    "blue": (40, 90, 225),
    "yellow": (240, 215, 40),
    "orange": (245, 135, 25),
    "purple": (135, 60, 190),
    "pink": (245, 125, 185),
    "cyan": (40, 205, 215),
    "white": (245, 245, 245),
    "brown": (125, 75, 35),
    "black": (25, 25, 25),
}

TEXTURES: tuple[str, ...] = ("solid", "stripes", "dots", "checker", "noise", "gradient")
BACKGROUNDS: tuple[str, ...] = ("gradient", "stripes", "noise", "checker", "plain")

# Muted, mid-brightness tones: far from every palette colour, including white and black.
BACKGROUND_TONES: dict[str, tuple[int, int, int]] = {
    "grey": (118, 118, 118),
    "beige": (165, 155, 130),
    "slate": (88, 98, 112),
    "olive": (112, 116, 86),
    "sand": (150, 136, 108),
    "sage": (110, 132, 118),
}

TEXTURE_AMPLITUDE = 45.0  # +- brightness a texture adds to the base colour


def _coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled smoothly."""
    coarse = rng.standard_normal((max(2, cells), max(2, cells))).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    peak = float(np.abs(field).max()) or 1.0
    return np.clip(field / peak, -1.0, 1.0)


def texture_field(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) pattern in [-1, 1]; 0 means the plain base colour."""
    xs, ys = _coords(size, size)
    period = max(3.0, size * float(rng.uniform(0.22, 0.4)))
    angle = float(rng.uniform(0, np.pi))
    along = xs * np.cos(angle) + ys * np.sin(angle)
    if kind == "solid":
        return np.zeros((size, size), np.float32)
    if kind == "stripes":
        return np.where(np.sin(2 * np.pi * along / period) >= 0, 1.0, -1.0).astype(np.float32)
    if kind == "dots":
        cell = period
        dx = (xs % cell) - cell / 2
        dy = (ys % cell) - cell / 2
        return np.where(dx * dx + dy * dy <= (cell * 0.3) ** 2, -1.0, 0.4).astype(np.float32)
    if kind == "checker":
        cell = max(2, int(period / 2))
        return ((((xs // cell) + (ys // cell)) % 2) * 2 - 1).astype(np.float32)
    if kind == "noise":
        return _smooth_noise(rng, size, size, cells=4)
    if kind == "gradient":
        span = float(along.max() - along.min()) or 1.0
        return ((along - along.min()) / span * 2 - 1).astype(np.float32)
    raise ValueError(f"unknown texture {kind!r}: use one of {TEXTURES}")


def textured(colour: tuple[int, int, int], field: np.ndarray, amplitude: float = TEXTURE_AMPLITUDE) -> np.ndarray:
    """(H, W, 3) uint8 RGB: the base colour brightened/darkened by the pattern."""
    base = np.asarray(colour, np.float32)[None, None, :]
    return np.clip(base + amplitude * field[..., None], 0, 255).astype(np.uint8)


def render_background(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, str]:
    """A (H, W, 3) RGB background and its description (e.g. 'sand stripes')."""
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    names = list(BACKGROUND_TONES)
    tone = names[int(rng.integers(len(names)))]
    base = np.asarray(BACKGROUND_TONES[tone], np.float32)
    xs, ys = _coords(height, width)
    scale = float(min(height, width))
    angle = float(rng.uniform(0, np.pi))
    along = xs * np.cos(angle) + ys * np.sin(angle)
    if kind == "gradient":
        span = float(along.max() - along.min()) or 1.0
        field = (along - along.min()) / span * 2 - 1
    elif kind == "stripes":
        period = scale * float(rng.uniform(0.12, 0.3))
        field = np.where(np.sin(2 * np.pi * along / period) >= 0, 0.5, -0.5)
    elif kind == "checker":
        cell = max(2, int(scale * float(rng.uniform(0.08, 0.2))))
        field = ((((xs // cell) + (ys // cell)) % 2) - 0.5).astype(np.float32)
    elif kind == "noise":
        field = _smooth_noise(rng, height, width, cells=int(rng.integers(4, 9)))
    else:  # plain, with a soft vignette so it is not perfectly flat
        cx, cy = width / 2, height / 2
        r = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) / (np.hypot(cx, cy) or 1.0)
        field = 0.6 - 1.2 * r
    image = np.clip(base[None, None, :] + 28.0 * np.asarray(field, np.float32)[..., None], 0, 255)
    return image.astype(np.uint8), f"{tone} {kind}"
