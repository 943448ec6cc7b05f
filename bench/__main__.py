"""`python -m bench` (`make bench`): every benchmark in turn, then all their targets together.

python -m bench            # full sizes (ingest: 100,000 events; contact list: 1,000,000 contacts;
                           #   import: a 100,000-row customer sheet)
python -m bench --quick    # a smoke run at small sizes
"""

from __future__ import annotations

import argparse
import time

from bench import broadcasts, contacts_list, delivery, import_contacts, ingest, journeys, recommend, scripts, usermodel
from bench.common import Verdict, banner, print_verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    verdicts: list[Verdict] = []
    verdicts += ingest.run(quick=args.quick)
    contacts = contacts_list.QUICK_CONTACTS if args.quick else contacts_list.DEFAULT_CONTACTS
    verdicts += contacts_list.run(contacts=contacts)
    verdicts += import_contacts.run(quick=args.quick)
    verdicts += usermodel.run(quick=args.quick)
    verdicts += scripts.run(quick=args.quick)
    verdicts += recommend.run(quick=args.quick)
    verdicts += delivery.run(quick=args.quick)
    verdicts += broadcasts.run(quick=args.quick)
    verdicts += journeys.run(quick=args.quick)

    banner(f"all benchmarks done in {time.perf_counter() - start:.0f}s")
    print_verdicts(verdicts, "targets (ratios and medians measured in this run; machines are noisy)")
    met = sum(v.met for v in verdicts)
    print(f"\n{met} of {len(verdicts)} targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
