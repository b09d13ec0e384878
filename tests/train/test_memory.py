"""Training memory is bounded by what is kept per poster, not by the posters' pixels: peak RSS of a real
`python -m train` run on two folders of generated posters at the production input size, small vs ten times larger."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.posters import folder
from tests.helpers.server import ROOT

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.timeout(900)

SMALL, LARGE = 40, 600  # posters per folder
# What the job held per poster before it streamed them: the decoded 336x224 RGB uint8 pixels.
DECODED_BYTES = 336 * 224 * 3
RUN = "import resource, sys; from train.__main__ import main; code = main(sys.argv[1:]); " \
      "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)"


def _peak_rss(tmp_path, count: int, recipe) -> int:
    """Peak RSS in bytes of `python -m train --cv-only` on two folders of ``count`` posters each."""
    a = folder(tmp_path / f"a{count}", count, "aa", seed=1)
    b = folder(tmp_path / f"b{count}", count, "bb", seed=2)
    done = subprocess.run([sys.executable, "-c", RUN, "--data", str(a), "--data", str(b), "--out", str(tmp_path / f"out{count}"),
                           "--recipe", str(recipe), "--cv-only"], cwd=ROOT, capture_output=True, text=True, timeout=800, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return 1024 * int(done.stdout.split("peak_rss_kb")[-1].split()[0])


def test_peak_memory_does_not_grow_with_the_number_of_posters(tmp_path):
    """Fifteen times the posters (2 x 600 vs 2 x 40) may add at most half of what their decoded pixels would take (the
    features and the heads' batches grow by a few KB per poster, pixels by 226 KB; the allocator's peaks vary by tens of
    MB between runs of any size)."""
    recipe = tmp_path / "lean.toml"  # tiny.toml, cut to what memory depends on: one head seed, no augmented view, 2 folds
    tiny = (ROOT / "train" / "recipes" / "tiny.toml").read_text()
    recipe.write_text(tiny.replace("augmented = 1", "augmented = 0").replace("seeds = 2", "seeds = 1")
                      .replace("max_epochs = 15", "max_epochs = 2").replace("folds = 3", "folds = 2"))
    small, large = _peak_rss(tmp_path, SMALL, recipe), _peak_rss(tmp_path, LARGE, recipe)
    budget = (2 * LARGE - 2 * SMALL) * DECODED_BYTES / 2
    print(f"peak RSS {small / 2**20:.0f} MiB for 2 x {SMALL} posters, {large / 2**20:.0f} MiB for 2 x {LARGE}")
    assert large - small < budget, (small, large, budget)
