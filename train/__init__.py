"""Offline training job: posters in, a calibrated fp16 TFLite artifact out.

The function's own decoder is imported (one-way dependency: train -> function), so the pixels
used for training and for the parity check come from the serving code itself.
"""

import sys
from pathlib import Path

FUNCTION_DIR = Path(__file__).resolve().parent.parent / "function"
if str(FUNCTION_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTION_DIR))

import imaging  # noqa: E402  (the function's module, see above)

__all__ = ["imaging", "FUNCTION_DIR"]
