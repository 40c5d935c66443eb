"""Run every benchmark: ``python -m bench [name ...]``."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import (
    access_bench,
    api_bench,
    api_cost_bench,
    audit_bench,
    audit_http_bench,
    evidence_bench,
    ledger_bench,
    report_bench,
    screening_bench,
)

BENCHES: dict[str, Callable[[], None]] = {
    "append": ledger_bench.bench_append,
    "latency": ledger_bench.bench_latency,
    "verify": ledger_bench.bench_verify,
    "screening": screening_bench.bench_screening,
    "report": report_bench.bench_report,
    "access": access_bench.bench_access,
    "audit": audit_bench.bench_audit,
    "audit-http": audit_http_bench.bench_audit_http,
    "evidence": evidence_bench.bench_evidence,
    "api": api_bench.bench_api,
    "api-cost": api_cost_bench.bench_api_cost,
}


def main(argv: list[str]) -> None:
    names = argv or list(BENCHES)
    for name in names:
        if name not in BENCHES:
            raise SystemExit(f"unknown benchmark {name!r}; known: {', '.join(BENCHES)}")
        BENCHES[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
