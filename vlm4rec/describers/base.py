"""The describer interface: a batch of catalogue items in, one description (or error) each out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from vlm4rec.prompts import DEFAULT_PROMPT, PromptTemplate, get_prompt
from vlm4rec.records import DescriptionResult, ItemRecord

if TYPE_CHECKING:
    import torch


class Describer(ABC):
    """Turns item images (and catalogue fields) into text.

    ``identity()`` lists everything that changes the output (it keys the description cache);
    ``setup(device)`` loads heavy state once per process (Lightning calls it on each rank with
    that rank's device); ``describe(batch)`` returns one result per record, in order, and never
    raises for one bad item: the item gets ``error`` instead.
    """

    kind: str = "base"
    #: False for describers that do not look at the image (precomputed text)
    needs_image: bool = True

    def __init__(self, prompt: PromptTemplate | str = DEFAULT_PROMPT) -> None:
        self.prompt = get_prompt(prompt) if isinstance(prompt, str) else prompt

    def identity(self) -> dict[str, Any]:
        return {
            "describer": self.kind,
            "prompt": {"name": self.prompt.name, "version": self.prompt.version, "sha256": self.prompt.sha256},
        }

    def setup(self, device: torch.device | None = None) -> None:
        """Load models/clients; called once per process before the first batch."""
        return None  # optional hook: describers without state to load keep this default

    @abstractmethod
    def describe(self, batch: list[ItemRecord]) -> list[DescriptionResult]: ...

    def rendered_prompt(self, record: ItemRecord) -> str:
        """The instruction for one item (what the prompt hash in the cache key covers)."""
        return self.prompt.render(record.fields)
