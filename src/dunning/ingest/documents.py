"""Document uploads: invoice PDFs under incoming/documents/, attached to the notices and case packets of
the invoices that look for them (the rule of whose a document is: the docstring of adapters/storage.py)."""

from __future__ import annotations

import hashlib

from dunning.ingest import formats, records
from dunning.ingest.run import Run
from dunning.ports import DOCUMENTS_PREFIX, UploadStore, document_account

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
_PDF_MAGIC = b"%PDF-"


def ingest_document(run: Run, store: UploadStore) -> None:
    run.summary.format = "pdf"
    body = store.open(run.source)
    digest = hashlib.sha256()
    size = 0
    head = b""
    while chunk := body.read(1024 * 1024):
        head = head or chunk[: len(_PDF_MAGIC)]
        digest.update(chunk)
        size += len(chunk)
    if not head.startswith(_PDF_MAGIC):
        run.reject(formats.Rejection(0, "", run.source.file_name, "is not a PDF document"))
        return
    if size > MAX_DOCUMENT_BYTES:
        limit = MAX_DOCUMENT_BYTES // (1024 * 1024)
        error = f"is larger than {limit} MB, too large to attach to an email"
        run.reject(formats.Rejection(0, "", run.source.file_name, error))
        return
    name = run.source.file_name
    account = document_account(run.source.key)
    if account is None:
        others = sorted(run.ledger.document_claimants(name))
        if len(others) > 1:
            # Attaching it to any of them could send one customer another's invoice (module docstring of
            # adapters/storage.py); invoices that claim it later make it ambiguous the same way.
            error = (
                f"invoices of several accounts ({', '.join(others)}) look for this file, so it is "
                f"attached to none of them; upload it as {DOCUMENTS_PREFIX}<account_id>/{name}"
            )
            run.reject(formats.Rejection(0, "", name, error))
            return
    run.ledger.record_document(records.document(run.source, digest.hexdigest(), size), account)
    run.summary.imported = 1
