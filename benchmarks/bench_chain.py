#!/usr/bin/env python3
"""Generated stacks per second through real libpam (lab) and the model, side by side.

The differential pipeline of ``tests/test_chain_lab.py`` without hypothesis' search:
stacks are drawn from the same strategies, then checked in batches (one tar, one agent
batch, every primitive with ``--keep-going``).  Prints generation, lab and model
rates separately and the end-to-end figure; needs a Docker engine.

    python3 benchmarks/bench_chain.py [--stacks 2000] [--batch 100] [--single-file]
                                      [--jobs 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis.errors import NonInteractiveExampleWarning

from pamconform.lab.stack import ALL_STEPS, STACK_ROOT, StackLab
from pamconform.lab.stack_differential import (
    batch_files,
    check_batch,
    lab_modules,
    stacks,
)
from pamconform.model.linux_pam import run
from pamconform.model.parser import DictSource, Layout, load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=8, help="pamdrive runs at once")
    parser.add_argument("--single-file", action="store_true",
                        help="the /etc/pam.conf form (a container without /etc/pam.d)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    warnings.simplefilter("ignore", NonInteractiveExampleWarning)
    start = time.monotonic()
    strategy = stacks()
    generated = [strategy.example() for _ in range(args.stacks)]
    gen_s = time.monotonic() - start

    start = time.monotonic()
    directory = f"{STACK_ROOT}/bench"
    layout = Layout.single_file() if args.single_file else Layout.confdir(directory)
    for i in range(0, len(generated), args.batch):
        files, names = batch_files(generated[i:i + args.batch], directory,
                                   single_file=args.single_file)
        source = DictSource(files)
        for name in names:
            run(load(name, source, layout), lab_modules(), ALL_STEPS, keep_going=True)
    model_s = time.monotonic() - start

    divergences = 0
    with StackLab.open(single_file=args.single_file, say=lambda _l: None,
                       jobs=args.jobs) as lab:
        start = time.monotonic()
        for i in range(0, len(generated), args.batch):
            result = check_batch(lab, generated[i:i + args.batch], f"bench{i}")
            divergences += len(result.divergences)
        lab_s = time.monotonic() - start
    report = {
        "stacks": args.stacks, "batch": args.batch, "jobs": args.jobs,
        "form": "pam.conf" if args.single_file else "pam.d",
        "generation_per_s": round(args.stacks / gen_s, 1),
        "model_per_s": round(args.stacks / model_s, 1),
        "lab_and_model_per_s": round(args.stacks / lab_s, 1),
        "end_to_end_per_s": round(args.stacks / (gen_s + lab_s), 1),
        "divergences": divergences,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.stacks} stacks ({report['form']}, batches of {args.batch}, "
              f"{args.jobs} jobs): generation {report['generation_per_s']}/s, model alone "
              f"{report['model_per_s']}/s, lab + model {report['lab_and_model_per_s']}/s, "
              f"end to end {report['end_to_end_per_s']}/s; {divergences} divergences")
    return 1 if divergences else 0


if __name__ == "__main__":
    sys.exit(main())
