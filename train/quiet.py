"""Hide TensorFlow's native log lines (oneDNN notices, converter chatter) unless something fails.

TensorFlow and the TFLite converter write from C++ straight to file descriptor 2, some of it
before TF_CPP_MIN_LOG_LEVEL is read, so the only reliable filter is the descriptor itself: the
output is captured and replayed if the block raises.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
