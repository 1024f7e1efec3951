"""One line of a console report, wrapped to the terminal with its indentation kept.

Shared by the scan report and explain's; a pipe or a file (soft wrap) gets the line whole."""
from __future__ import annotations

from typing import Any


def say(console: Any, markup: str, indent: int = 0, hang: int = 0) -> None:
    """One line of the report; wrapped lines keep its indentation, `hang` more for a line
    whose continuation belongs under its text rather than under its mark."""
    if console.soft_wrap:
        console.print(" " * indent + markup)
        return
    from rich.text import Text

    # wrapped here rather than by a Padding, which fills every line with trailing spaces
    for i, line in enumerate(Text.from_markup(markup).wrap(console, max(console.width - indent - hang, 20))):
        line.rstrip()
        console.print(Text(" " * (indent + (hang if i else 0))) + line, soft_wrap=True)
