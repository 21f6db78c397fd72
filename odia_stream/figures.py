"""Writing matplotlib figures the same way everywhere (benchmarks, the demo report)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["save_figure"]


def save_figure(fig: Figure, path: Path, *, dpi: int = 110) -> Path:
    """Lay ``fig`` out tightly, write it to ``path`` as a PNG (creating the folder) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
