"""Top frames of a py-spy raw (collapsed stacks) profile: where the service spends its time.

    .venv/bin/python bench/profile_top.py bench/results/profile.txt [--top 25]

Frames are grouped by function (line numbers dropped). Prints, per function, the share of
samples in which it is the innermost frame (self) and the share in which it is anywhere on the
stack (total).
"""

import argparse
import re
from collections import Counter
from pathlib import Path

LINE = re.compile(r":\d+\)$")  # "handler (api/routes/x.py:42)" -> "handler (api/routes/x.py)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in args.raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [LINE.sub(")", frame) for frame in stack.split(";")]
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    if not samples:
        print("no samples")
        return
    for title, counter in (("self", own), ("total (self + callees)", total)):
        print(f"\ntop {args.top} frames by {title} time, of {samples} samples:")
        for frame, n in counter.most_common(args.top):
            print(f"{100 * n / samples:6.1f} %  {frame}")


if __name__ == "__main__":
    main()
