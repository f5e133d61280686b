"""How large a shadow test the final check (CheckShadowTest / ConcludeShadowTest Lambda) can read (audit row 8).

    .venv/bin/python bench/capture_limits.py [--records 50000] [--memory-mb 512] [--read-seconds 60]

Measures, on this machine's one core, the capture path the final msprt check runs per record (JSON Lines parse
-> sample by request id -> cap, functions.capture) and the memory one kept record costs (tracemalloc), then scales
to Lambda: CPU is proportional to memory (1,769 MB = one vCPU, AWS Lambda docs "Configure Lambda function
memory"). Prints the records both variants can be read in `--read-seconds` (Settings.capture_read_seconds), the
largest test read in full (requests/s x hours, every request captured for both variants), and the cap that fits
in memory (Settings.capture_max_records). Above that size the read is sampled (same requests in both variants)
and stopped at the deadline, never an out-of-memory or a Lambda timeout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from functions.capture import ReadBudget, bounded, capture_line, read_capture_lines

FEATURES = ",".join(f"{0.1 * i:.3f}" for i in range(20))  # the bank-marketing models' width


def lines(n: int) -> list[str]:
    return [capture_line(f"e-{i}", FEATURES, "0.4321", inference_id=f"req-{i}") for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--memory-mb", type=int, default=512)
    parser.add_argument("--read-seconds", type=float, default=60.0)
    args = parser.parse_args()
    data = lines(args.records)
    line_bytes = sum(len(x) for x in data) / len(data)

    budget = ReadBudget(max_records=10**9, deadline=float("inf"))
    began = time.perf_counter()
    kept = sum(1 for _ in bounded(read_capture_lines(iter(data)), budget))
    elapsed = time.perf_counter() - began
    per_core = kept / elapsed

    tracemalloc.start()
    held = list(bounded(read_capture_lines(iter(data)), ReadBudget(max_records=10**9, deadline=float("inf"))))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_record = peak / len(held)

    vcpu = args.memory_mb / 1769
    readable = per_core * vcpu * args.read_seconds  # both variants together
    per_variant = readable / 2
    usable = args.memory_mb * 1024 * 1024 * 0.5  # half the function's memory for the kept shadow records
    result = {
        "records_measured": args.records,
        "capture_line_bytes": round(line_bytes),
        "records_per_s_one_core": round(per_core),
        "lambda_memory_mb": args.memory_mb,
        "lambda_vcpu": round(vcpu, 3),
        "read_seconds": args.read_seconds,
        "records_readable_both_variants": round(readable),
        "largest_full_read_req_s_x_hours": round(per_variant / 3600, 1),
        "bytes_per_kept_record": round(per_record),
        "max_kept_records_in_half_memory": int(usable / per_record),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
