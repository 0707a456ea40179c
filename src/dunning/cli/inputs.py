"""What the local commands upload, found the way an accountant lays files out."""

from __future__ import annotations

from pathlib import Path


def invoice_documents(invoice_files: list[Path], extra: list[Path]) -> list[Path]:
    """Invoice PDFs beside the invoice CSVs or in a documents/ folder beside them, plus those given
    explicitly (files, or folders of them)."""
    folders = {path.parent for path in invoice_files} | {path.parent / "documents" for path in invoice_files}
    found = {pdf for folder in folders if folder.is_dir() for pdf in folder.glob("*.pdf")}
    for path in extra:
        found |= {file for file in path.iterdir() if file.is_file()} if path.is_dir() else {path}
    return sorted(found)
