"""The hidden attributes of demo items and the reference captions stated from them.

An item is a (category, style, occasion, material, colour) tuple. The picture draws all five;
the title reveals none; the reference caption states all five in plain English.
"""

from __future__ import annotations

from dataclasses import dataclass

#: category -> (caption noun, materials that make sense for it)
CATEGORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "shoe": ("pair of shoes", ("leather", "canvas", "suede")),
    "bag": ("handbag", ("leather", "canvas", "straw")),
    "dress": ("dress", ("cotton", "silk", "linen")),
    "hat": ("hat", ("wool", "straw", "cotton")),
    "watch": ("wristwatch", ("metal", "leather")),
    "shirt": ("shirt", ("cotton", "linen", "denim")),
    "scarf": ("scarf", ("silk", "wool")),
    "jacket": ("jacket", ("denim", "leather", "wool")),
}
STYLES: tuple[str, ...] = ("classic", "vintage", "sporty", "minimalist", "bohemian")
OCCASIONS: dict[str, str] = {
    "casual": "casual everyday wear",
    "office": "the office",
    "evening": "evening wear",
    "outdoor": "outdoor activities",
}
#: colour name -> base RGB
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "blue": (40, 80, 200),
    "green": (40, 150, 70),
    "black": (35, 35, 35),
    "white": (235, 235, 230),
    "yellow": (230, 200, 40),
    "pink": (235, 130, 170),
    "brown": (130, 80, 40),
    "grey": (130, 130, 135),
    "orange": (240, 130, 30),
}
MATERIALS: tuple[str, ...] = tuple(sorted({m for _, ms in CATEGORIES.values() for m in ms}))


@dataclass(frozen=True)
class ItemAttributes:
    category: str
    style: str
    occasion: str
    material: str
    colour: str

    def caption(self, variant: int = 0) -> str:
        """One sentence naming every attribute; ``variant`` picks among equivalent phrasings."""
        noun = CATEGORIES[self.category][0]
        occ = OCCASIONS[self.occasion]
        colour, material, style = self.colour, self.material, self.style
        article = _article(colour)
        templates = (
            f"{article.capitalize()} {colour} {material} {noun} in a {style} style, suited for {occ}.",
            f"This {noun} is made of {colour} {material} with a {style} look, a good fit for {occ}.",
            f"{_article(style).capitalize()} {style} {noun} in {colour} {material}, designed for {occ}.",
        )
        return templates[variant % len(templates)]

    def as_dict(self) -> dict[str, str]:
        return {
            "category": self.category,
            "style": self.style,
            "occasion": self.occasion,
            "material": self.material,
            "colour": self.colour,
        }


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"
