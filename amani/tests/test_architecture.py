"""docs/architecture.md quotes the import contract that `make lint` enforces, word for word."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_architecture_doc_quotes_the_import_contract():
    doc = (REPO / "docs" / "architecture.md").read_text()
    contract = (REPO / ".importlinter").read_text()
    assert f"```ini\n{contract}```\n" in doc
