"""Suite-wide settings, loaded before any test module imports torch."""

import os

# The tests' models are tiny: torch's thread pool costs far more than it gains on them, and on a
# loaded 2-core machine it slows them 50-100x. Subprocesses the tests start inherit this too.
# Benchmarks (benchmarks/) are unaffected and use every core.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
