"""lstmkit's benchmarks: one CLI (``python -m benchmarks <workload>``), one timing harness
(:mod:`benchmarks.harness`), the workloads of issue 4 (:mod:`benchmarks.workloads`); the latest
figures live in ``benchmarks/RESULTS.md``."""
