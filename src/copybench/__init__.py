"""copybench: what each way of copying a PyTorch tensor or model costs, and what it does."""

from __future__ import annotations

__version__ = "0.1.0"
