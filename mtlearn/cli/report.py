"""``python -m mtlearn report``: the course's key measurements, one JSON file for the class.

    python -m mtlearn report                  # a few minutes; writes mtlearn-reports/*.json, *.png
    python -m mtlearn report --quick          # seconds (tests): same fields, tiny workloads
    python -m mtlearn report --label "Ada's laptop" --out class/

Notebook 12 loads a folder of such files and draws them together.
"""

from __future__ import annotations

import sys

DEFAULT_FOLDER = "mtlearn-reports"


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="measure this machine for the class: one JSON file + PNG",
                       description="Run the GIL lab, sync and process scaling and one training "
                                   "step (a few minutes), and write them with the machine's "
                                   "facts and your saved predictions as one JSON file and a "
                                   "PNG summary.")
    p.add_argument("--quick", action="store_true",
                   help="seconds instead of minutes: tiny workloads, 1 and 2 threads")
    p.add_argument("--out", default=DEFAULT_FOLDER,
                   help=f"folder to write into (default: ./{DEFAULT_FOLDER})")
    p.add_argument("--label", default=None,
                   help="how this machine is named in the class's figures "
                        "(default: cores, CPU, OS and Python)")
    p.add_argument("--no-other-python", action="store_true",
                   help="do not run the GIL lab on a free-threaded Python found here")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..course import calibration, report

    if args.label is not None and not args.label.strip():
        print("mtlearn report: --label must not be empty", file=sys.stderr)
        return 2
    doc = report.run(args.quick, label=args.label,
                     others=False if args.no_other_python else None,
                     progress=lambda text: print(f"[report] {text}", file=sys.stderr, flush=True))
    path, png = report.write(doc, args.out)
    print(report.table([doc]))
    print(calibration.Calibration.from_dict(doc["calibration"]).sentence())
    for name, why in doc["errors"].items():
        print(f"not measured: {name}: {why}")
    print(f"wrote {path}\n  and {png}")
    return 0
