"""Small SVG charts drawn by the server for the report dashboard: bar charts (horizontal or
vertical), stacked bars, a line chart (by month), a progress bar.

Pure functions: data in as lists of ``(label, value)``, a standalone ``<svg>`` string out, with
labeled axes, the values written on the bars, a <title> tooltip per bar or point, CJK labels
wrapped or shortened to fit, and no script.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from lxml import etree

from engine.errors import InputError

from ._svg import INK, MUTED, new_svg, serialize, sub, text_block, text_width, wrap

PALETTE = ("#3b6fb6", "#e08a3c", "#4e9a5b", "#c9504c", "#8067b7", "#4fa3b5", "#b58c3a", "#7a7f87")
GRID = "#e3e5e9"
AXIS = "#9aa0a8"
FONT = 12.0
Series = Sequence[tuple[str, float]]
Formatter = Callable[[float], str]


def _check(values: Sequence[float], what: str) -> None:
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise InputError(f"{what}: every value must be a finite number, got {v!r}")


def _default_format(unit: str) -> Formatter:
    def fmt(v: float) -> str:
        text = f"{int(v):,}" if float(v).is_integer() else f"{v:,.1f}"
        return f"{text}{unit}"
    return fmt


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high == low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    v = start
    while v < high + step * 0.999:
        ticks.append(round(v, 10))
        v += step
    return ticks


def _frame(width: float, height: float, title: str | None, cls: str) -> tuple[etree._Element, float]:
    root = new_svg(width, height, cls=f"tigao-chart {cls}", role="img", aria_label=title or "chart")
    sub(root, "title", title or "chart")
    sub(root, "rect", x=0, y=0, width=width, height=height, fill="#ffffff")
    top = 10.0
    if title:
        text_block(root, [title], 12, 8, 14, 18, anchor="start", font_weight="bold", cls="chart-title")
        top = 34.0
    return root, top


def _empty(width: float, title: str | None, text: str, cls: str) -> str:
    root, top = _frame(width, 90 if title else 60, title, cls)
    text_block(root, [text], width / 2, top + 12, 13, 18, fill=MUTED, cls="empty")
    return serialize(root)


def _legend(root: etree._Element, names: Sequence[str], colors: Sequence[str], x: float, y: float,
            width: float) -> float:
    """Legend entries flowing left to right; returns the height used."""
    cx, cy = x, y
    for name, color in zip(names, colors):
        w = 18 + text_width(name, FONT) + 16
        if cx + w > x + width and cx > x:
            cx, cy = x, cy + 18
        item = sub(root, "g", cls="legend-item")
        sub(item, "rect", x=cx, y=cy + 3, width=11, height=11, rx=2, fill=color)
        text_block(item, [name], cx + 16, cy, FONT, 17, anchor="start")
        cx += w
    return cy - y + 20


def _short(label: str, width: float, lines: int = 1) -> list[str]:
    return wrap(label, width, FONT, max_lines=lines, balance=lines > 1)


def _first_seen(groups: Sequence[Sequence[tuple[str, float]]], what: str) -> list[str]:
    """The names of every group's (name, value) pairs, in order of first appearance; values checked."""
    names: list[str] = []
    for pairs in groups:
        _check([v for _, v in pairs], what)
        for name, _ in pairs:
            if name not in names:
                names.append(name)
    return names


def _axis_title(root: etree._Element, text: str, x: float, y: float, anchor: str = "middle") -> None:
    text_block(root, [text], x, y, 11, 14, anchor=anchor, fill=MUTED, cls="axis-title")


def _tick_width(ticks: Sequence[float], fmt: Formatter, size: float = 11) -> float:
    return max(text_width(fmt(t), size) for t in ticks) + 10


def _value_rows(root: etree._Element, ticks: Sequence[float], fmt: Formatter, lo: float, scale: float,
                plot_x: float, plot_w: float, bottom: float) -> None:
    """A value axis on the left: a grid line across the plot per tick, its value beside it."""
    axis = sub(root, "g", cls="axis y-axis")
    for t in ticks:
        y = bottom - (t - lo) * scale
        sub(axis, "line", x1=plot_x, y1=round(y, 2), x2=plot_x + plot_w, y2=round(y, 2),
            stroke=GRID if t else AXIS, stroke_width=1)
        text_block(axis, [fmt(t)], plot_x - 6, y - 7, 11, 14, anchor="end", fill=MUTED)


def _value_columns(root: etree._Element, ticks: Sequence[float], fmt: Formatter, lo: float, scale: float,
                   plot_x: float, top: float, bottom: float) -> None:
    """A value axis below: a grid line down the plot per tick, its value under it."""
    axis = sub(root, "g", cls="axis x-axis")
    for t in ticks:
        x = plot_x + (t - lo) * scale
        sub(axis, "line", x1=round(x, 2), y1=top, x2=round(x, 2), y2=bottom, stroke=GRID if t else AXIS,
            stroke_width=1)
        text_block(axis, [fmt(t)], x, bottom + 4, 11, 14, fill=MUTED)


def bar_chart(data: Series, *, title: str | None = None, horizontal: bool = True, width: float = 560,
              unit: str = "", value_format: Formatter | None = None, color: str = PALETTE[0],
              x_label: str | None = None, y_label: str | None = None, empty_text: str = "No data") -> str:
    """A bar per (label, value): horizontal (labels on the left) or vertical (labels below).

    Args:
        data: the bars, in order.
        title: the chart's heading.
        horizontal: bars left to right; False for columns.
        width: the SVG width; the height follows from the number of bars.
        unit: appended to the values written (``"%"``); ignored when ``value_format`` is given.
        value_format: how to write a value.
        color: the bars' fill.
        x_label, y_label: the axis titles.
        empty_text: shown when ``data`` is empty.
    """
    return stacked_bar_chart([(label, [("", value)]) for label, value in data], title=title,
                             horizontal=horizontal, width=width, unit=unit, value_format=value_format,
                             colors=[color], x_label=x_label, y_label=y_label, empty_text=empty_text,
                             show_legend=False, cls="bar-chart")


def stacked_bar_chart(data: Sequence[tuple[str, Sequence[tuple[str, float]]]], *, title: str | None = None,
                      horizontal: bool = True, width: float = 560, unit: str = "",
                      value_format: Formatter | None = None, colors: Sequence[str] | None = None,
                      x_label: str | None = None, y_label: str | None = None, empty_text: str = "No data",
                      show_legend: bool = True, cls: str = "stacked-bar-chart") -> str:
    """Bars made of segments: ``data`` is a list of (label, [(series name, value), ...]).

    Series are matched by name across bars and coloured alike, in order of first appearance;
    each bar's total is written at its end. Negative values are not stacked: they are refused.
    """
    fmt = value_format or _default_format(unit)
    if not data:
        return _empty(width, title, empty_text, cls)
    # Labels may come as numbers or dates from a query: they are written as text.
    data = [(str(label), [(str(name), value) for name, value in parts]) for label, parts in data]
    names = _first_seen([parts for _, parts in data], title or "chart")
    stacked = len(names) > 1
    if stacked and any(v < 0 for _, parts in data for _, v in parts):
        raise InputError(f"{title or 'chart'}: stacked bars cannot have negative values")
    palette = list(colors or PALETTE)
    color_of = {n: palette[i % len(palette)] for i, n in enumerate(names)}
    totals = [sum(v for _, v in parts) for _, parts in data]
    lows = [min([0.0] + [v for _, v in parts]) for _, parts in data]
    ticks = nice_ticks(min(lows), max(totals + [0.0]))
    lo, hi = ticks[0], ticks[-1]
    if horizontal:
        return _horizontal(data, names, color_of, totals, ticks, lo, hi, fmt, title, width, x_label, y_label,
                           show_legend and stacked, cls)
    return _vertical(data, names, color_of, totals, ticks, lo, hi, fmt, title, width, x_label, y_label,
                     show_legend and stacked, cls)


def _segments(g: etree._Element, label: str, parts: Sequence[tuple[str, float]], color_of: dict[str, str],
              fmt: Formatter, place: Callable[[float, float], tuple[float, float, float, float]]) -> None:
    base_pos, base_neg = 0.0, 0.0
    for name, value in parts:
        if value >= 0:
            start, base_pos = base_pos, base_pos + value
        else:
            start, base_neg = base_neg + value, base_neg + value
        x, y, w, h = place(start, abs(value))
        seg = sub(g, "g", cls="segment", data_series=name or None, data_value=fmt(value))
        sub(seg, "title", f"{label}{' · ' + name if name else ''}: {fmt(value)}")
        sub(seg, "rect", x=round(x, 2), y=round(y, 2), width=round(max(w, 0), 2), height=round(max(h, 0), 2),
            fill=color_of[name], rx=2)


def _bar_frame(width: float, height: float, title: str | None, cls: str, names: Sequence[str],
               color_of: dict[str, str], legend: bool, y_label: str | None, y_label_top: float) -> etree._Element:
    """A bar chart's frame: title, the legend under it, the value axis' title."""
    root, top = _frame(width, height, title, cls)
    if legend:
        _legend(root, names, [color_of[n] for n in names], 12, top, width - 24)
    if y_label:
        _axis_title(root, y_label, 8, y_label_top, anchor="start")
    return root


def _horizontal(data, names, color_of, totals, ticks, lo, hi, fmt, title, width, x_label, y_label,
                legend, cls) -> str:  # type: ignore[no-untyped-def]
    label_w = min(max(text_width(label, FONT) for label, _ in data) + 12, width * 0.35)
    value_w = _tick_width(totals + ticks, fmt, FONT)
    row = 26.0
    legend_h = 20 * (1 + len(names) // 5) if legend else 0
    top0 = (34.0 if title else 10.0) + legend_h + (16 if y_label else 0)
    plot_x, plot_w = 8 + label_w, width - 8 - label_w - value_w - 8
    height = top0 + row * len(data) + 26 + (20 if x_label else 0) + 6
    root = _bar_frame(width, height, title, cls, names, color_of, legend, y_label, top0 - 18)
    scale = plot_w / (hi - lo)
    bottom = top0 + row * len(data)
    _value_columns(root, ticks, fmt, lo, scale, plot_x, top0, bottom)
    if x_label:
        _axis_title(root, x_label, plot_x + plot_w / 2, bottom + 22)
    zero = plot_x - lo * scale
    for i, ((label, parts), total) in enumerate(zip(data, totals)):
        y = top0 + i * row
        g = sub(root, "g", cls="bar", data_label=label, data_value=fmt(total))
        text_block(g, _short(label, label_w - 10), plot_x - 8, y + 5, FONT, 16, anchor="end")
        _segments(g, label, parts, color_of, fmt,
                  lambda start, size, y=y: (zero + start * scale, y + 5, size * scale,  # type: ignore[misc]
                                            row - 10))
        if total >= 0:
            text_block(g, [fmt(total)], zero + total * scale + 5, y + 5, FONT, 16, anchor="start", cls="value")
        else:
            text_block(g, [fmt(total)], zero + total * scale - 5, y + 5, FONT, 16, anchor="end", cls="value")
    return serialize(root)


def _vertical(data, names, color_of, totals, ticks, lo, hi, fmt, title, width, x_label, y_label,
              legend, cls) -> str:  # type: ignore[no-untyped-def]
    tick_w = _tick_width(ticks, fmt)
    legend_h = 20 * (1 + len(names) // 5) if legend else 0
    top0 = (34.0 if title else 10.0) + legend_h + (16 if y_label else 0) + 16
    plot_x = 8 + tick_w
    plot_w = width - plot_x - 12
    slot = plot_w / len(data)
    lines = 2 if any(text_width(label, FONT) > slot - 6 for label, _ in data) else 1
    plot_h = 180.0
    bottom = top0 + plot_h
    height = bottom + 8 + lines * 15 + (20 if x_label else 0) + 8
    root = _bar_frame(width, height, title, cls, names, color_of, legend, y_label, top0 - 34)
    scale = plot_h / (hi - lo)
    _value_rows(root, ticks, fmt, lo, scale, plot_x, plot_w, bottom)
    if x_label:
        _axis_title(root, x_label, plot_x + plot_w / 2, bottom + 8 + lines * 15 + 2)
    zero = bottom + lo * scale
    bar_w = min(slot * 0.62, 56)
    for i, ((label, parts), total) in enumerate(zip(data, totals)):
        cx = plot_x + slot * (i + 0.5)
        g = sub(root, "g", cls="bar", data_label=label, data_value=fmt(total))
        _segments(g, label, parts, color_of, fmt,
                  lambda start, size, cx=cx: (cx - bar_w / 2,  # type: ignore[misc]
                                              zero - (start + size) * scale, bar_w, size * scale))
        value_top = zero - total * scale - 17 if total >= 0 else zero - total * scale + 2
        text_block(g, [fmt(total)], cx, value_top, 11, 15, cls="value")
        text_block(g, _short(label, slot - 6, lines), cx, bottom + 6, FONT, 15)
    return serialize(root)


def line_chart(series: Series | Sequence[tuple[str, Series]], *, title: str | None = None,
               width: float = 600, height: float = 280, unit: str = "", value_format: Formatter | None = None,
               colors: Sequence[str] | None = None, x_label: str | None = None, y_label: str | None = None,
               empty_text: str = "No data") -> str:
    """Lines over shared x labels (months, in order), one or several series.

    ``series`` is either one list of (x label, value), or a list of (series name, that list).
    A series without a value for some x label has a gap there.
    """
    fmt = value_format or _default_format(unit)
    many = bool(series) and isinstance(series[0][1], (list, tuple))
    named: list[tuple[str, Series]] = (list(series) if many  # type: ignore[arg-type]
                                       else [("", series)])  # type: ignore[list-item]
    named = [(str(name), [(str(x), v) for x, v in points]) for name, points in named]
    xs = _first_seen([points for _, points in named], title or "chart")
    if not xs:
        return _empty(width, title, empty_text, "line-chart")
    palette = list(colors or PALETTE)
    values = [v for _, points in named for _, v in points]
    ticks = nice_ticks(min(values), max(values))
    lo, hi = ticks[0], ticks[-1]
    legend = many and len(named) > 1
    root, top = _frame(width, height, title, "line-chart")
    if legend:
        top += _legend(root, [n for n, _ in named], palette, 12, top, width - 24)
    if y_label:
        _axis_title(root, y_label, 8, top, anchor="start")
        top += 16
    tick_w = _tick_width(ticks + [0.0], fmt)
    tick_w = max(tick_w, text_width(xs[0], 11) / 2)
    # The first and last x labels are centred on the ends of the plot: leave room for them.
    plot_x, plot_w = 8 + tick_w, width - 8 - tick_w - max(16.0, text_width(xs[-1], 11) / 2 + 6)
    bottom = height - 26 - (20 if x_label else 0)
    plot_top = top + 10
    scale = (bottom - plot_top) / (hi - lo)
    _value_rows(root, ticks, fmt, lo, scale, plot_x, plot_w, bottom)
    step = plot_w / max(len(xs) - 1, 1)
    every = max(1, math.ceil(max(text_width(x, 11) for x in xs) / max(step - 4, 1)))
    xaxis = sub(root, "g", cls="axis x-axis")
    for i, label in enumerate(xs):
        if i % every == 0:
            text_block(xaxis, [label], plot_x + i * step if len(xs) > 1 else plot_x + plot_w / 2, bottom + 6,
                       11, 14, fill=MUTED)
    if x_label:
        _axis_title(root, x_label, plot_x + plot_w / 2, bottom + 24)
    write_values = len(named) == 1 and len(xs) <= 12
    for k, (name, points) in enumerate(named):
        color = palette[k % len(palette)]
        g = sub(root, "g", cls="series", data_series=name or None)
        by_x = dict(points)
        coords = [(plot_x + i * step if len(xs) > 1 else plot_x + plot_w / 2,
                   bottom - (by_x[x] - lo) * scale if x in by_x else None) for i, x in enumerate(xs)]
        runs: list[list[tuple[float, float]]] = [[]]
        for px, py in coords:
            if py is None:
                runs.append([])
            else:
                runs[-1].append((px, py))
        for run in runs:
            if len(run) > 1:
                sub(g, "polyline", points=" ".join(f"{x:.1f},{y:.1f}" for x, y in run), fill="none",
                    stroke=color, stroke_width=2.2, stroke_linejoin="round")
        for label, (x, maybe_y) in zip(xs, coords):
            if maybe_y is None:
                continue
            y = maybe_y
            point = sub(g, "g", cls="point", data_label=label, data_value=fmt(by_x[label]))
            sub(point, "title", f"{name + ' · ' if name else ''}{label}: {fmt(by_x[label])}")
            sub(point, "circle", cx=round(x, 1), cy=round(y, 1), r=3.5, fill="#ffffff", stroke=color,
                stroke_width=2)
            if write_values:
                text_block(point, [fmt(by_x[label])], x, y - 21, 11, 14, cls="value")
    return serialize(root)


def progress_bar(value: float, total: float, *, label: str | None = None, width: float = 320,
                 color: str = PALETTE[2], value_format: Formatter | None = None) -> str:
    """A bar filled to value / total, with the label, the figures and the percentage.

    Raises:
        InputError: a value that is not a finite number, or a negative total.
    """
    _check([value, total], label or "progress")
    if total < 0:
        raise InputError(f"{label or 'progress'}: the total cannot be negative")
    fmt = value_format or _default_format("")
    share = 0.0 if total == 0 else max(0.0, min(value / total, 1.0))
    percent = f"{round(100 * share)}%"
    figures = f"{fmt(value)} / {fmt(total)} ({percent})"
    height = 46.0 if label else 28.0
    root = new_svg(width, height, cls="tigao-chart progress-bar", role="img",
                   aria_label=f"{label + ': ' if label else ''}{figures}")
    sub(root, "title", f"{label + ': ' if label else ''}{figures}")
    top = 0.0
    if label:
        text_block(root, _short(label, width - text_width(figures, FONT) - 16), 2, 0, FONT, 16, anchor="start")
        text_block(root, [figures], width - 2, 0, FONT, 16, anchor="end", fill=MUTED, cls="value")
        top = 20.0
    sub(root, "rect", cls="track", x=1, y=top + 4, width=width - 2, height=14, rx=7, fill="#e8eaee")
    if share > 0:
        sub(root, "rect", cls="fill", x=1, y=top + 4, width=round(max((width - 2) * share, 14), 2), height=14,
            rx=7, fill=color, data_value=percent)
    if not label:
        text_block(root, [percent], width / 2, top + 3, 11, 16, fill=INK, font_weight="bold", cls="value")
    return serialize(root)
