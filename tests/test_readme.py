"""The README's parameter table is generated from the spec, and its two commands match .ci/run."""

import re
from pathlib import Path

import pytest

from milvus_lab.spec import parameter_table_markdown

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
TEST_COMMAND = "pip install -e '.[test,server]' && python -m pytest -q"


def test_parameter_table_is_generated_from_the_spec():
    blocks = re.findall(r"<!-- spec-table -->\n(.*?)<!-- /spec-table -->", README, re.DOTALL)
    assert len(blocks) == 1, "README.md needs exactly one <!-- spec-table --> ... <!-- /spec-table --> block"
    assert blocks[0].strip() == parameter_table_markdown().strip(), (
        "README parameter table is stale: run `python scripts/update_readme_table.py`"
    )


def test_two_commands_come_first_and_ci_runs_the_same_tests():
    commands = README.split("## Two commands", 1)[1].split("```", 2)[1]
    assert "pip install . && milvus-lab demo && milvus-lab compare" in commands
    assert TEST_COMMAND in commands
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_example_runs():
    """The README's example, as printed, runs against the facade (IVF_FLAT with nlist 16384: ~15-40 s)."""
    example = re.search(r"## Example\n\n```python\n(.*?)```", README, re.DOTALL)
    assert example, "README.md has no ```python block under '## Example'"
    namespace: dict = {}
    exec(compile(example.group(1), "README.md example", "exec"), namespace)  # noqa: S102 - the point
    assert namespace["status"].OK()
    results, ids = namespace["results"], namespace["ids"]
    assert results.shape == (5, 10)
    assert [row[0] for row in results.id_array] == ids[:5]
