"""Fonts for the figures: trait names in any script draw without "Glyph missing" warnings.

Matplotlib (>= 3.6) falls back glyph by glyph along the ``font.family`` list. :func:`families`
is DejaVu Sans (matplotlib's own, Latin/Greek/Cyrillic and many symbols) followed by the
CJK and symbol fonts of :data:`FALLBACK_FONTS` that are installed on this machine (e.g.
Debian's ``fonts-noto-cjk``). :func:`drawable` replaces a character that none of them has
(an emoji on a machine without a monochrome emoji font, say) by ``?``, so the figure is drawn
with a visible stand-in rather than an empty box and a warning. Colour (bitmap) emoji fonts
are not used: matplotlib cannot scale them.
"""

from __future__ import annotations

import contextlib
import functools
import unicodedata

import matplotlib
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.text import Text

PRIMARY_FONT = "DejaVu Sans"
FALLBACK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK KR", "Noto Sans SC", "Noto Sans JP",
    "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN",
    "Noto Sans", "Noto Sans Symbols", "Noto Sans Symbols 2", "Noto Emoji", "Symbola",
)
MISSING = "?"


@functools.lru_cache(maxsize=1)
def families() -> tuple[str, ...]:
    """The font family list used by the figures: DejaVu Sans, then the installed fallbacks."""
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return (PRIMARY_FONT, *(name for name in FALLBACK_FONTS if name in installed))


@functools.lru_cache(maxsize=1)
def _covered() -> frozenset[int]:
    """Code points that at least one font of :func:`families` can draw."""
    points: set[int] = set()
    for family in families():
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
            points.update(FT2Font(path).get_charmap())
        except (ValueError, RuntimeError, OSError):  # a font that cannot be read adds nothing
            continue
    return frozenset(points)


def drawable(text: str) -> str:
    """``text`` with every character that no figure font has replaced by ``?`` (whitespace and
    control characters are kept; mathtext between ``$`` signs is left alone)."""
    text = str(text)
    if text.count("$") >= 2:
        return text
    covered = _covered()
    return "".join(
        ch if ord(ch) in covered or ch.isspace() or unicodedata.category(ch).startswith("C") else MISSING for ch in text
    )


def sanitise(fig: Figure) -> Figure:
    """Make every text of ``fig`` :func:`drawable` (call before layout and saving)."""
    for artist in fig.findobj(Text):
        text = artist.get_text()
        if text:
            clean = drawable(text)
            if clean != text:
                artist.set_text(clean)
    return fig


@contextlib.contextmanager
def figure_fonts():
    """Matplotlib settings for drawing a figure with the fallback font list."""
    with matplotlib.rc_context({"font.family": list(families())}):
        yield


def with_figure_fonts(draw):
    """Decorate a function returning a Figure: draw it under :func:`figure_fonts` and
    :func:`sanitise` its texts (functions that lay out their figure call :func:`tidy` first,
    since measuring text already warns about missing glyphs)."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with figure_fonts():
            fig = draw(*args, **kwargs)
            return sanitise(fig)

    return wrapper


def tidy(fig: Figure) -> Figure:
    """:func:`sanitise` the texts of ``fig``, then ``tight_layout`` it."""
    sanitise(fig)
    fig.tight_layout()
    # tight_layout leaves a placeholder layout engine, which makes every savefig draw the whole
    # figure once more (without output) before drawing it for real; the layout is done.
    fig.set_layout_engine(None)
    return fig
