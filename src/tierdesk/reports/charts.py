"""Charts as SVG text, drawn on the server with pygal: for the monthly client report (HTML
and PDF) and the console's dashboard.

What pygal draws for a browser is changed in three ways, so that a chart works on a page
under tierdesk's Content-Security-Policy and in WeasyPrint's PDF:

- no JavaScript: pygal's tooltips load a script from a CDN by default (``js=[]`` turns that
  off) and still write an inline ``<script>`` with the chart's configuration; both are
  removed, with the tooltip layer they would drive. Nothing is loaded from elsewhere;
- no ``style`` attributes (the policy refuses them); the chart's CSS stays in one ``<style>``
  element inside the SVG, scoped to the chart's id, carrying the page's CSP ``nonce`` when
  one is given (the page's policy must allow ``style-src 'nonce-…'``);
- the SVG is an image with a name (``role="img"``, ``aria-label``: its title). Its numbers
  are not readable from it: every chart is shown beside a table of the same figures.

Colours differ in lightness as well as hue and bars carry their values, so that a chart
printed in black and white still reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from xml.etree import ElementTree

import pygal
from django.conf import settings
from django.utils.csp import CSP
from pygal.style import Style

# Dark to light: neighbouring series stay apart in greyscale.
PALETTE = ("#1f3b73", "#e08a1e", "#6d9ad4", "#8c2d2d", "#b9b9b9", "#3d7a3d")
FONT = '"DejaVu Sans", "Liberation Sans", Arial, sans-serif'
WIDTH, HEIGHT = 720, 290

Kind = Literal["line", "bar", "stacked_bar", "horizontal_bar"]
Formatter = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Chart:
    """What a chart shows; ``svg()`` draws it. Kept as data so that a page draws it with
    its own CSP nonce."""

    kind: Kind
    title: str
    labels: Sequence[str]
    series: Sequence[Series]
    y_title: str = ""
    percent: bool = False  # values are fractions 0-1, shown as percentages
    colors: Sequence[str] = field(default=PALETTE)

    @property
    def has_data(self) -> bool:
        """Some value is neither missing nor zero (else a table says it better)."""
        return any(v for s in self.series for v in s.values)

    def svg(self, *, nonce: str | None = None) -> str:
        return _draw(self, nonce)


_CLASSES: dict[Kind, Any] = {
    "line": pygal.Line,
    "bar": pygal.Bar,
    "stacked_bar": pygal.StackedBar,
    "horizontal_bar": pygal.HorizontalBar,
}


def _style(colors: Sequence[str]) -> Style:
    return Style(
        font_family=FONT,
        background="#ffffff",
        plot_background="#ffffff",
        foreground="#222222",
        foreground_strong="#000000",
        foreground_subtle="#b0b0b0",  # the guide lines
        opacity=".9",
        opacity_hover=".9",
        transition="0ms",
        colors=tuple(colors),
        title_font_size=15,
        label_font_size=12,
        major_label_font_size=12,
        legend_font_size=12,
        value_font_size=11,
        tooltip_font_size=12,
        no_data_font_size=18,
    )


def _y_labels(chart: Chart) -> list[int] | None:
    """Whole-number steps for counts (pygal would mark 0.5 tickets); None (pygal's own)
    for percentages and fractional values."""
    values = [v for s in chart.series for v in s.values if v is not None]
    if chart.percent or any(not float(v).is_integer() for v in values):
        return None
    if chart.kind == "stacked_bar":
        top = max((sum(s.values[i] or 0 for s in chart.series) for i in range(len(chart.labels))),
                  default=0)  # fmt: skip
    else:
        top = max(values, default=0)
    top = max(top, 1)
    step = next(step for step in _steps() if top / step <= 8)  # at most nine labels
    return list(range(0, int(top) + step, step))


def _steps() -> Iterator[int]:
    """1, 2, 5, 10, 20, 50, 100…"""
    scale = 1
    while True:
        yield from (scale, 2 * scale, 5 * scale)
        scale *= 10


def _draw(chart: Chart, nonce: str | None) -> str:
    def percent(value: float | None) -> str:
        if value is None:
            return ""
        return f"{value * 100:.1f}".removesuffix(".0") + " %"

    def plain(value: float | None) -> str:
        return "" if value is None else f"{value:g}"

    graph = _CLASSES[chart.kind](
        title=chart.title,
        y_title=chart.y_title or None,
        width=WIDTH,
        height=HEIGHT,
        style=_style(chart.colors),
        js=[],  # nothing from a CDN
        disable_xml_declaration=True,  # inline in HTML
        print_values=chart.kind != "line",
        print_zeroes=False,
        show_dots=True,
        dots_size=3,
        stroke_style={"width": 2},
        legend_at_bottom=True,
        legend_at_bottom_columns=min(len(chart.series), 4) or 1,
        truncate_legend=40,
        truncate_label=24,
        x_label_rotation=0 if len(chart.labels) <= 8 else 45,
        include_x_axis=True,
        range=(0, 1) if chart.percent else None,
        value_formatter=percent if chart.percent else plain,
        y_labels=_y_labels(chart),
        no_data_text="No data",
        margin=12,
    )
    graph.x_labels = list(chart.labels)
    for s in chart.series:
        graph.add(s.name, list(s.values))
    graph.add_xml_filter(lambda root: _clean(root, chart.title, nonce))
    svg: str = graph.render(is_unicode=True)
    return svg


def _name(element: ElementTree.Element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _clean(root: ElementTree.Element, title: str, nonce: str | None) -> ElementTree.Element:
    """Take out what a strict page refuses or does not need: scripts, the tooltip layer
    and the ids they would drive (repeated in every chart of a page), ``style`` attributes
    and pygal's comments; give the stylesheet the nonce; name the image."""
    for parent in root.iter():
        for child in list(parent):
            name = _name(child)
            classes = child.get("class", "").split() if name else []
            if not name or name == "script" or "tooltip-overlay" in classes:
                parent.remove(child)  # comments have no name (a function as their tag)
    for element in root.iter():
        element.attrib.pop("style", None)
        if element is not root:
            element.attrib.pop("id", None)  # the scripts' handles, the same in every chart
        if _name(element) == "style":
            element.attrib.pop("type", None)
            if nonce:
                element.set("nonce", nonce)
    root.set("role", "img")
    root.set("aria-label", title)
    return root


def page_csp() -> dict[str, Any]:
    """The Content-Security-Policy of a page that shows charts (the dashboard, the monthly
    report): the site's, with ``<style>`` elements allowed when they carry the response's
    nonce (the charts' own, and the report's). Style attributes stay refused."""
    return {**settings.SECURE_CSP, "style-src": [CSP.SELF, CSP.NONCE]}
