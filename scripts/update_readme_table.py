"""Rewrite the README's parameter table from milvus_lab.spec: `python scripts/update_readme_table.py`.

`--check` only reports whether the README is up to date (exit status 1 if not).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- spec-table -->\n)(.*?)(<!-- /spec-table -->)", re.DOTALL)


def render(readme: str, table: str) -> str:
    """``readme`` with the text between the spec-table markers replaced by ``table``."""
    if len(BLOCK.findall(readme)) != 1:
        raise SystemExit(f"{README.name}: expected one <!-- spec-table --> ... <!-- /spec-table --> block")
    return BLOCK.sub(lambda m: m.group(1) + table.strip() + "\n" + m.group(3), readme)


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from milvus_lab.spec import parameter_table_markdown

    old = README.read_text()
    new = render(old, parameter_table_markdown())
    if "--check" in argv:
        print("README table is up to date" if new == old else "README table is out of date")
        return int(new != old)
    README.write_text(new)
    print("README table rewritten" if new != old else "README table already up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
