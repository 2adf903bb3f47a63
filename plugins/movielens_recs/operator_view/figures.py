"""Charts drawn on the server as SVG, so that pages need neither the internet nor a script.

matplotlib's object API (Figure, not pyplot) holds no global state, so the API server's threads
and a Spark driver can draw at the same time. Each chart is embedded as a data: URI, which keeps
the SVGs' internal ids apart and the pages self-contained.
"""

from __future__ import annotations

import base64
import io

import matplotlib
from matplotlib.figure import Figure

# one palette for every chart: the model, its baseline, the published lists
MODEL, BASELINE, PUBLISHED = "#1f77b4", "#9a9a9a", "#2ca02c"


def figure(width: float = 6.4, height: float = 3.2) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def svg(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # text stays text (the browser's sans-serif draws it): a tenth of the size of glyph paths,
    # and the labels can be read by a screen reader or a test
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def data_uri(fig: Figure) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg(fig)).decode()


def grouped_bars(ax, labels: list[str], series: dict[str, tuple[list, str]], ylabel: str) -> None:
    """Bars side by side per label; a missing value (None) leaves a gap, not a zero."""
    width = 0.8 / max(1, len(series))
    for i, (name, (values, color)) in enumerate(series.items()):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
        ax.bar([x for x, v in zip(xs, values) if v is not None], [v for v in values if v is not None],
               width=width, color=color, label=name)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize="small")
    ax.grid(axis="y", alpha=0.3)
