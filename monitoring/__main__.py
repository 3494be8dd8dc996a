"""python -m monitoring generate|check: write, or verify, every file made from the monitoring source
(the rules, the dashboards, the mixin, the chart's rule template and its prometheusRule.config)."""

from __future__ import annotations

import sys

from monitoring.outputs import ROOT, generate, stale, strays


def main(argv: list[str]) -> int:
    if argv == ["generate"]:
        for path in strays():
            path.unlink()
        for path in generate():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if argv == ["check"]:
        bad = [*stale(), *strays()]
        for path in bad:
            print(
                f"{path.relative_to(ROOT)} is not what the source makes: run python -m monitoring generate",
                file=sys.stderr,
            )
        return 1 if bad else 0
    print("usage: python -m monitoring generate|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
