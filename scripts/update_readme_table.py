"""Rewrite the README's parameter tables from milvus_lab.spec: `python scripts/update_readme_table.py`.

The block between `<!-- spec-table -->` and `<!-- /spec-table -->` gets the default profile's table (Milvus
0.10, in memory); a block opened with `<!-- spec-table milvus-2.3 -->` gets that profile's table.
`--check` only reports whether the README is up to date (exit status 1 if not).
`--print [PROFILE]` prints one profile's table instead of touching the README.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- spec-table(?: (?P<profile>[\w.-]+))? -->\n)(.*?)(<!-- /spec-table -->)", re.DOTALL)


def render(readme: str, table: Callable[[str | None], str]) -> str:
    """``readme`` with the text of each spec-table block replaced by ``table(profile)`` (None: the default)."""
    if sum(1 for m in BLOCK.finditer(readme) if m.group("profile") is None) != 1:
        raise SystemExit(f"{README.name}: expected one <!-- spec-table --> ... <!-- /spec-table --> block")
    return BLOCK.sub(lambda m: m.group(1) + table(m.group("profile")).strip() + "\n" + m.group(4), readme)


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from milvus_lab import spec

    def table(profile: str | None) -> str:
        return spec.parameter_table_markdown(profile=profile or spec.DEFAULT_PROFILE)

    if "--print" in argv:
        rest = argv[argv.index("--print") + 1:]
        print(table(rest[0] if rest else None))
        return 0
    old = README.read_text()
    new = render(old, table)
    if "--check" in argv:
        print("README table is up to date" if new == old else "README table is out of date")
        return int(new != old)
    README.write_text(new)
    print("README table rewritten" if new != old else "README table already up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
