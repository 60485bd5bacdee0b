"""Real-data benchmark: TSCNN and its peers on a folder of onset->apex flows, one honest protocol.

A thin caller of ``tscnn.bench`` (the same as ``tscnn bench``), kept for its defaults: the data is the
real ``../shared/real/megc2019-flow28`` beside the repository (CASME II and SMIC-HS parts of the MEGC2019
composite, 309 clips, 40 subjects) unless ``--data`` or ``--synthetic`` is given, and the summary goes to
``benchmarks/flow_benchmark-<data>.json`` (``--json FILE``), where the stored figures live. It is licensed
data: it is read where it lies and nothing derived from it is kept but metrics.

Usage: python benchmarks/flow_benchmark.py [--synthetic] [--rows tscnn-plus ststnet ...]
       [--protocols loso cross] [--pairs casme2:smic casme2+smic:samm] [--seeds 0 1 2 3 4] [--data DIR]
       [--out results/flow-benchmark] [--json benchmarks/flow_benchmark-<data>.json] [--threads N] [--jobs N]
       python benchmarks/flow_benchmark.py --paired linear   (compare finished rows; trains nothing)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tscnn.bench import bench_main
from tscnn.bench_rows import add_bench_arguments

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "real" / "megc2019-flow28"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bench_arguments(parser, summary_option="--json")
    args = parser.parse_args()
    try:
        return bench_main(args, default_data=REAL_DATA,
                          summary_default=lambda tag: Path(f"benchmarks/flow_benchmark-{tag}.json"))
    except ValueError as err:
        print(f"flow benchmark: {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
