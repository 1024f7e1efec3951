"""unsloth-doctor: diagnose and repair Unsloth fine-tuning setups.

Importing this package stays light: no torch, transformers or unsloth. `DoctorCallback`
(the training watchdog) is loaded only when asked for, inside the user's training process.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["DoctorCallback", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "DoctorCallback":
        from doctor.watchdog import DoctorCallback

        return DoctorCallback
    raise AttributeError(f"module 'doctor' has no attribute {name!r}")
