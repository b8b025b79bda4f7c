"""Small helpers shared by the server-drawn SVGs (diagrams and charts): building elements,
estimating text widths and wrapping labels (Latin and CJK) without a font engine.

Elements are built with lxml, so every label and attribute is escaped by the serializer;
control characters that XML cannot carry are dropped first.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Any

from lxml import etree

SVG_NS = "http://www.w3.org/2000/svg"
# Traditional Chinese first (the campaign's labels), then the common system fonts of office PCs.
FONT_FAMILY = ("'Noto Sans CJK TC', 'Noto Sans TC', 'Source Han Sans TC', 'Microsoft JhengHei', "
               "'PingFang TC', 'Heiti TC', Arial, Helvetica, sans-serif")
INK = "#22242a"
MUTED = "#5f6370"

_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Characters that must not start a line (closing punctuation), Chinese and Latin.
_NO_LINE_START = set("，。、：；！？）」』】〉》”’,.;:!?)]}%")
_NO_LINE_END = set("（「『【〈《“‘([{")


def clean(text: object) -> str:
    """The text with characters XML cannot carry removed."""
    return _BAD_XML_CHARS.sub("", str(text))


def fmt(value: float) -> str:
    """A coordinate written compactly (no trailing zeros)."""
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: Any) -> etree._Element:
    """Append an SVG child; attribute names use '_' for '-' (``stroke_width``); None is skipped."""
    el = etree.SubElement(parent, tag)
    for key, value in attrs.items():
        if value is None:
            continue
        name = "class" if key == "cls" else key.rstrip("_").replace("_", "-")
        el.set(name, fmt(value) if isinstance(value, (int, float)) and not isinstance(value, bool)
               else clean(value))
    if text is not None:
        el.text = clean(text)
    return el


def new_svg(width: float, height: float, min_x: float = 0, min_y: float = 0,
            **attrs: Any) -> etree._Element:
    """A standalone root <svg> with a viewBox and the font stack."""
    root = etree.Element(f"{{{SVG_NS}}}svg", nsmap={None: SVG_NS})  # type: ignore[dict-item]
    root.set("version", "1.1")
    root.set("width", fmt(width))
    root.set("height", fmt(height))
    root.set("viewBox", f"{fmt(min_x)} {fmt(min_y)} {fmt(width)} {fmt(height)}")
    root.set("font-family", FONT_FAMILY)
    for key, value in attrs.items():
        if value is not None:
            root.set("class" if key == "cls" else key.replace("_", "-"), clean(value))
    return root


def serialize(root: etree._Element) -> str:
    """The SVG as a string without an XML declaration (inline in HTML or saved as a file)."""
    return etree.tostring(root, encoding="unicode")


def is_wide(char: str) -> bool:
    """Whether the character takes a full em (CJK ideographs, kana, full-width forms)."""
    return unicodedata.east_asian_width(char) in ("W", "F")


@cache
def char_width(char: str) -> float:
    """Approximate advance of one character in em, for a sans-serif font."""
    if is_wide(char):
        return 1.0
    if char in "iljI.,:;'|!`":
        return 0.28
    if char == " ":
        return 0.28
    if char in "mwMW":
        return 0.85
    if char.isupper() or char in "&%@#":
        return 0.68
    if char.isdigit():
        return 0.56
    return 0.52


def text_width(text: str, size: float) -> float:
    """Approximate rendered width of a line in user units."""
    return sum(char_width(c) for c in text) * size


def _tokens(text: str) -> list[str]:
    """Break opportunities: Latin words (with their trailing space) and single wide characters."""
    out: list[str] = []
    word = ""
    for char in text:
        if is_wide(char):
            if word:
                out.append(word)
                word = ""
            out.append(char)
        elif char == " ":
            out.append(word + " ")
            word = ""
        else:
            word += char
    if word:
        out.append(word)
    return out


def _split_long(token: str, width: float, size: float) -> list[str]:
    """A word longer than the line is cut where it overflows."""
    parts: list[str] = []
    cur = ""
    for char in token:
        if cur and text_width(cur + char, size) > width:
            parts.append(cur)
            cur = ""
        cur += char
    if cur:
        parts.append(cur)
    return parts


def wrap(text: str, width: float, size: float, max_lines: int | None = None,
         balance: bool = False, first_width: float | None = None) -> list[str]:
    """Wrap ``text`` into lines at most ``width`` wide; the last kept line ends in an ellipsis
    when the text does not fit in ``max_lines``. Explicit newlines are kept. With ``balance``,
    the lines are made about equally long (no lone character on the last line). With
    ``first_width``, the first line is that narrow (room left for an icon beside it)."""
    lines = _wrap(text, width, size, first_width)
    if balance and first_width is None and 1 < len(lines) <= (max_lines or len(lines)):
        narrower = width
        # Never narrower than the longest word: balancing must not cut words.
        floor = max([width / 2] + [text_width(t.rstrip(), size) for t in _tokens(text) if len(t) > 1])
        while narrower - size / 2 >= floor:
            trial = _wrap(text, narrower - size / 2, size)
            if len(trial) > len(lines):
                break
            narrower -= size / 2
        lines = _wrap(text, narrower, size)
    if max_lines is not None and len(lines) > max_lines:
        kept = lines[:max(max_lines, 1)]
        last = kept[-1]
        while last and text_width(last + "…", size) > width:
            last = last[:-1]
        kept[-1] = last.rstrip() + "…"
        return kept
    return lines


def _wrap(text: str, width: float, size: float, first_width: float | None = None) -> list[str]:
    lines: list[str] = []
    for para in clean(text).replace("\r", "").split("\n"):
        cur, cur_w = "", 0.0
        for token in _tokens(para):
            pieces = _split_long(token, width, size) if text_width(token.rstrip(), size) > width else [token]
            for piece in pieces:
                limit = first_width if first_width is not None and not lines else width
                piece_w = text_width(piece.rstrip(), size)
                if not cur and piece_w > limit:
                    lines.append("")  # the narrow first line stays empty rather than overflow
                    limit = width
                # Widths add up: the line so far (with its trailing space) plus the new piece.
                if not cur or cur_w + piece_w <= limit:
                    cur += piece
                    cur_w = text_width(cur, size)
                    continue
                # Keep closing punctuation on the line before, opening punctuation on the next.
                if piece[0] in _NO_LINE_START and len(cur) > 1 or cur[-1] in _NO_LINE_END and len(cur) > 1:
                    piece, cur = cur[-1] + piece, cur[:-1]
                lines.append(cur.rstrip())
                cur = piece
                cur_w = text_width(cur, size)
        lines.append(cur.rstrip())
    while len(lines) > 1 and not lines[-1]:
        lines.pop()
    return lines


def text_block(parent: etree._Element, lines: list[str], cx: float, top: float, size: float,
               line_height: float, anchor: str = "middle", **attrs: Any) -> etree._Element:
    """Draw lines of text from ``top`` (the top of the first line), one <tspan> per line."""
    node = sub(parent, "text", font_size=size, text_anchor=anchor, fill=attrs.pop("fill", INK), **attrs)
    for i, line in enumerate(lines):
        # The baseline sits about 0.8 em below the top of a line box.
        baseline = top + i * line_height + (line_height - size) / 2 + size * 0.85
        sub(node, "tspan", line, x=cx, y=baseline)
    return node
