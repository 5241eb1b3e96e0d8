"""Draw a demo item's picture from its hidden attributes (PIL only, deterministic given the rng).

What encodes what:
- category → silhouette (shoe, handbag, dress, hat, watch, shirt, scarf, jacket);
- material → texture inside the silhouette (grain, grid, weave, sheen, …);
- colour   → fill colour (jittered a little per item);
- style    → marks: classic double outline, vintage dotted frame, sporty stripes,
             bohemian zigzag band, minimalist none;
- occasion → a small dark-grey icon in the top-right corner (casual dot, office square,
             evening crescent, outdoor triangle).
Pictures are drawn at 128 px and downsampled, so small marks survive as visible detail.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from benchmark.demo.attributes import COLOURS, ItemAttributes

CANVAS = 128
ICON = (60, 60, 60)
Point = tuple[float, float]


class _Frame:
    """Per-item jitter: scale about the centre plus a small shift."""

    def __init__(self, rng: np.random.Generator):
        self.s = float(rng.uniform(0.9, 1.04))
        self.dx = float(rng.uniform(-4, 4))
        self.dy = float(rng.uniform(-4, 4))

    def pt(self, x: float, y: float) -> Point:
        c = CANVAS / 2
        return (c + self.s * (x - c) + self.dx, c + self.s * (y - c) + self.dy)

    def pts(self, points: Sequence[Point]) -> list[Point]:
        return [self.pt(x, y) for x, y in points]

    def box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        a, b = self.pt(x0, y0), self.pt(x1, y1)
        return [a[0], a[1], b[0], b[1]]


# ------------------------------------------------------------------------------------- silhouettes
def _shoe(d: ImageDraw.ImageDraw, f: _Frame) -> None:
    d.polygon(f.pts([(20, 88), (24, 60), (50, 56), (66, 70), (100, 76), (108, 88)]), fill=255)
    d.rectangle(f.box(18, 86, 110, 98), fill=255)


def _bag(d: ImageDraw.ImageDraw, f: _Frame) -> None:
    d.rounded_rectangle(f.box(28, 50, 100, 104), radius=8, fill=255)
    d.arc(f.box(44, 24, 84, 72), 180, 360, fill=255, width=7)


def _dress(d: ImageDraw.ImageDraw, f: _Frame) -> None:
    d.polygon(
        f.pts([(50, 16), (58, 16), (60, 24), (68, 24), (70, 16), (78, 16), (74, 50), (104, 110), (24, 110), (54, 50)]),
        fill=255,
    )


def _hat(d: ImageDraw.ImageDraw, f: _Frame) -> None:
    d.rounded_rectangle(f.box(40, 36, 88, 82), radius=14, fill=255)
    d.ellipse(f.box(12, 72, 116, 96), fill=255)


def _watch(d: ImageDraw.ImageDraw, f: _Frame) -> None:
    d.rectangle(f.box(52, 10, 76, 118), fill=255)
    d.ellipse(f.box(34, 38, 94, 98), fill=255)


def _shirt(d: ImageDraw.ImageDraw, f: _Frame) -> None:
    d.polygon(
        f.pts(
            [
                (40, 24),
                (56, 20),
                (64, 30),
                (72, 20),
                (88, 24),
                (112, 46),
                (100, 60),
                (90, 52),
                (90, 108),
                (38, 108),
                (38, 52),
                (28, 60),
                (16, 46),
            ]
        ),
        fill=255,
    )


def _scarf(d: ImageDraw.ImageDraw, f: _Frame) -> None:
    d.polygon(f.pts([(18, 34), (34, 20), (110, 92), (94, 106)]), fill=255)
    for k in range(5):  # fringe
        x0, y0 = f.pt(96 + 3 * k, 104 - 3 * k)
        x1, y1 = f.pt(102 + 3 * k, 112 - 3 * k)
        d.line([(x0, y0), (x1, y1)], fill=255, width=2)


def _jacket(d: ImageDraw.ImageDraw, f: _Frame) -> None:
    d.polygon(
        f.pts(
            [
                (40, 18),
                (58, 16),
                (64, 42),
                (70, 16),
                (88, 18),
                (110, 40),
                (116, 104),
                (100, 106),
                (92, 58),
                (92, 112),
                (36, 112),
                (36, 58),
                (28, 106),
                (12, 104),
                (18, 40),
            ]
        ),
        fill=255,
    )


SHAPES: dict[str, Callable[[ImageDraw.ImageDraw, _Frame], None]] = {
    "shoe": _shoe,
    "bag": _bag,
    "dress": _dress,
    "hat": _hat,
    "watch": _watch,
    "shirt": _shirt,
    "scarf": _scarf,
    "jacket": _jacket,
}


# ------------------------------------------------------------------------------------- textures
def _shade(base: np.ndarray, k: float) -> tuple[int, int, int]:
    """k < 0 darkens towards black, k > 0 lightens towards white."""
    v = base * (1 + k) if k < 0 else base + (255 - base) * k
    r, g, b = (int(c) for c in np.clip(v, 0, 255))
    return r, g, b


def _contrast(base: np.ndarray, amount: float = 0.45) -> tuple[int, int, int]:
    lum = 0.299 * base[0] + 0.587 * base[1] + 0.114 * base[2]
    return _shade(base, amount if lum < 110 else -amount)


def _tex_leather(d: ImageDraw.ImageDraw, base: np.ndarray, rng: np.random.Generator) -> None:
    c = _contrast(base, 0.25)
    d.point([(int(x), int(y)) for x, y in rng.integers(0, CANVAS, (400, 2))], fill=c)
    d.polygon([(20, 0), (40, 0), (0, 40), (0, 20)], fill=_shade(base, 0.35))


def _tex_suede(d: ImageDraw.ImageDraw, base: np.ndarray, rng: np.random.Generator) -> None:
    dark, light = _shade(base, -0.2), _shade(base, 0.2)
    pts = [(int(x), int(y)) for x, y in rng.integers(0, CANVAS, (2400, 2))]
    d.point(pts[1::2], fill=dark)
    d.point(pts[0::2], fill=light)


def _tex_canvas(d: ImageDraw.ImageDraw, base: np.ndarray, rng: np.random.Generator) -> None:
    c = _contrast(base, 0.3)
    for v in range(0, CANVAS, 5):
        d.line([(v, 0), (v, CANVAS)], fill=c)
        d.line([(0, v), (CANVAS, v)], fill=c)


def _tex_cotton(d: ImageDraw.ImageDraw, base: np.ndarray, rng: np.random.Generator) -> None:
    c = _contrast(base, 0.35)
    for y in range(2, CANVAS, 6):
        for x in range(2 + (y // 6) % 2 * 3, CANVAS, 6):
            d.rectangle([x, y, x + 1, y + 1], fill=c)


def _tex_silk(d: ImageDraw.ImageDraw, base: np.ndarray, rng: np.random.Generator) -> None:
    c = _shade(base, 0.45)
    phase = float(rng.uniform(0, 2 * math.pi))
    for y0 in range(4, CANVAS, 14):
        d.line([(x, y0 + 4 * math.sin(x / 9 + phase)) for x in range(0, CANVAS + 1, 4)], fill=c, width=2)


def _tex_linen(d: ImageDraw.ImageDraw, base: np.ndarray, rng: np.random.Generator) -> None:
    c = _contrast(base, 0.3)
    for x, y, n in zip(rng.integers(0, CANVAS, 220), rng.integers(0, CANVAS, 220), rng.integers(6, 20, 220)):
        d.line([(int(x), int(y)), (int(x + n), int(y))], fill=c)


def _tex_wool(d: ImageDraw.ImageDraw, base: np.ndarray, rng: np.random.Generator) -> None:
    c = _contrast(base, 0.35)
    for y0 in range(0, CANVAS, 8):
        d.line([(x, y0 + (4 if (x // 4) % 2 else 0)) for x in range(0, CANVAS + 1, 4)], fill=c, width=2)


def _tex_straw(d: ImageDraw.ImageDraw, base: np.ndarray, rng: np.random.Generator) -> None:
    dark, light = _shade(base, -0.3), _shade(base, 0.3)
    for by in range(0, CANVAS, 8):
        for bx in range(0, CANVAS, 8):
            horizontal = ((bx + by) // 8) % 2 == 0
            for k in range(0, 8, 3):
                if horizontal:
                    d.line([(bx, by + k), (bx + 7, by + k)], fill=dark)
                else:
                    d.line([(bx + k, by), (bx + k, by + 7)], fill=light)


def _tex_metal(d: ImageDraw.ImageDraw, base: np.ndarray, rng: np.random.Generator) -> None:
    for x in range(CANVAS):
        k = 0.35 * math.sin(x / 10.0)
        d.line([(x, 0), (x, CANVAS)], fill=_shade(base, k))
    d.line([(30, 0), (30, CANVAS)], fill=(250, 250, 250), width=3)


def _tex_denim(d: ImageDraw.ImageDraw, base: np.ndarray, rng: np.random.Generator) -> None:
    c = _contrast(base, 0.3)
    for k in range(-CANVAS, CANVAS, 4):
        d.line([(k, 0), (k + CANVAS, CANVAS)], fill=c)


TEXTURES: dict[str, Callable[[ImageDraw.ImageDraw, np.ndarray, np.random.Generator], None]] = {
    "leather": _tex_leather,
    "suede": _tex_suede,
    "canvas": _tex_canvas,
    "cotton": _tex_cotton,
    "silk": _tex_silk,
    "linen": _tex_linen,
    "wool": _tex_wool,
    "straw": _tex_straw,
    "metal": _tex_metal,
    "denim": _tex_denim,
}


# ------------------------------------------------------------------------------------- style, occasion
def _dilate(mask: Image.Image, width: int) -> Image.Image:
    # A box blur then "any coverage" threshold: a dilation, much cheaper than a rank filter.
    return mask.filter(ImageFilter.BoxBlur(width)).point(lambda v: 255 if v > 0 else 0)


def _erode(mask: Image.Image, width: int) -> Image.Image:
    return mask.filter(ImageFilter.BoxBlur(width)).point(lambda v: 255 if v >= 255 else 0)


def _outline(img: Image.Image, mask: Image.Image, width: int, colour: tuple[int, int, int]) -> None:
    ring = ImageChops.subtract(_dilate(mask, width), mask)
    img.paste(colour, (0, 0), ring)


def _style_marks(img: Image.Image, mask: Image.Image, style: str, base: np.ndarray) -> None:
    d = ImageDraw.Draw(img)
    if style == "classic":
        _outline(img, mask, 3, (25, 25, 25))
        inner = ImageChops.subtract(mask, _erode(mask, 2))
        img.paste(_contrast(base, 0.6), (0, 0), inner)
    elif style == "vintage":
        for t in range(6, CANVAS - 6, 8):
            for x, y in ((t, 5), (t, CANVAS - 6), (5, t), (CANVAS - 6, t)):
                d.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=(120, 85, 50))
    elif style == "sporty":
        stripes = Image.new("L", img.size, 0)
        sd = ImageDraw.Draw(stripes)
        for off in (0, 14):
            sd.line([(0, 70 + off), (CANVAS, 30 + off)], fill=255, width=5)
        img.paste(_contrast(base, 0.85), (0, 0), ImageChops.multiply(stripes, mask))
    elif style == "bohemian":
        pts = [(x, 114 if (x // 6) % 2 else 122) for x in range(0, CANVAS + 1, 6)]
        d.line(pts, fill=(150, 60, 120), width=3)
        d.line([(x, y - 6) for x, y in pts], fill=(30, 140, 140), width=2)
    elif style != "minimalist":
        raise ValueError(f"unknown style {style!r}")


def _occasion_icon(img: Image.Image, occasion: str, bg: tuple[int, ...]) -> None:
    d = ImageDraw.Draw(img)
    box = (108, 4, 124, 20)
    if occasion == "casual":
        d.ellipse(box, fill=ICON)
    elif occasion == "office":
        d.rectangle((109, 5, 123, 19), fill=ICON)
    elif occasion == "evening":
        d.ellipse(box, fill=ICON)
        d.ellipse((113, 2, 129, 18), fill=bg)  # bite out a crescent
    elif occasion == "outdoor":
        d.polygon([(116, 3), (125, 20), (107, 20)], fill=ICON)
    else:
        raise ValueError(f"unknown occasion {occasion!r}")


def render_item(attrs: ItemAttributes, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """The RGB picture of an item with ``attrs``; ``rng`` supplies the per-item jitter."""
    bg = tuple(int(v) for v in 244 + rng.integers(-6, 7, 3))
    base = np.clip(np.array(COLOURS[attrs.colour], dtype=float) + rng.integers(-15, 16, 3), 0, 255)
    frame = _Frame(rng)
    img = Image.new("RGB", (CANVAS, CANVAS), bg)
    mask = Image.new("L", (CANVAS, CANVAS), 0)
    SHAPES[attrs.category](ImageDraw.Draw(mask), frame)
    fill = Image.new("RGB", (CANVAS, CANVAS), tuple(int(c) for c in base))
    TEXTURES[attrs.material](ImageDraw.Draw(fill), base, rng)
    img.paste(fill, (0, 0), mask)
    _outline(img, mask, 1, _shade(base, -0.5))
    _style_marks(img, mask, attrs.style, base)
    _occasion_icon(img, attrs.occasion, bg)
    return img.resize((size, size), Image.Resampling.LANCZOS)
