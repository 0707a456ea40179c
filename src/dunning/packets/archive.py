"""The legal case packet (CONTRACT section 6): one ZIP that holds the whole file of a debt and proves itself.

Contents, every path listed with its SHA-256 and size in `manifest.json`:
- `README.txt`: what the packet is and how to check the hashes;
- `case_summary.pdf`: creditor and debtor, invoices, payments, fees and interest, the total claimed, the
  timeline of every notice and the promises and disputes;
- `statement_of_account.csv`: every debit and credit with a running balance that ends at the total claimed;
- `contact_log.jsonl`: the account's events (CONTRACT 5) as given, one per line;
- `invoices/<invoice id>/<file>`: the uploaded document, else `generated-copy.pdf` from the ledger;
- `notices/<eml>`: every notice exactly as SES received it;
- `policy.json`: the policy in force.

Deterministic, so a packet can be rebuilt and compared byte for byte: entries are written in sorted path
order with `manifest.json` last (it needs the other files' hashes, and writing it last lets every entry be
hashed while it is written, one at a time); every entry has the hand-off instant (UTC) as its timestamp,
mode 0644, Unix as the creating system, and deflate at level 6; no extra fields. The PDFs take fpdf2's
deterministic path (creation date fixed to the hand-off date, file id a hash of the content). The same
CaseFile gives the same bytes with the same zlib and fpdf2 versions.

The packet is written entry by entry into the caller's seekable stream (a SpooledTemporaryFile that goes
to S3 as a multipart upload): only one entry is generated at a time, and the notices and documents are
written from the caller's bytes without being copied.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal
from typing import Any, BinaryIO

from dunning.domain.account import InvoiceState
from dunning.domain.money import format_amount
from dunning.notices.context import notice_invoice
from dunning.notices.pdf import invoice_copy_pdf
from dunning.packets.case import (
    CONTACT_LOG,
    FORMAT_VERSION,
    MANIFEST,
    POLICY,
    README,
    STATEMENT,
    SUMMARY,
    SUMMARY_LOCALE,
    CaseFile,
    clean,
    plain,
    utc_stamp,
)
from dunning.packets.statement import StatementLine, statement_csv, statement_lines
from dunning.packets.summary_pdf import summary_pdf

_COMPRESS_LEVEL = 6
_FILE_MODE = 0o644 << 16
_UNIX = 3
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@+=-]+")
_NAME_MAX = 120
_NAME_IN_COPY = 300


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    sha256: str
    bytes: int


def write_packet(case: CaseFile, out: BinaryIO) -> dict[str, Any]:
    """Write the packet of `case` as a ZIP to `out` (seekable, left positioned at the end) and return the
    manifest. ValueError when the case contradicts itself (a naive created_at, or invoices and charges that
    do not add up to amount_due), because a packet that does not add up is worse than none."""
    if case.created_at.tzinfo is None:
        raise ValueError("created_at must be time-zone aware")
    lines = statement_lines(case)
    entries = _entries(case, lines)
    stamp = case.created_at.astimezone(UTC)
    date_time = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    listed: list[ManifestEntry] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_COMPRESS_LEVEL) as zf:
        for path in sorted(entries):
            data = entries[path]()
            listed.append(ManifestEntry(path, hashlib.sha256(data).hexdigest(), len(data)))
            _write(zf, path, data, date_time)
            del data  # the next generated entry must not sit beside this one
        manifest = _manifest(case, listed)
        _write(zf, MANIFEST, _json_bytes(manifest), date_time)
    return manifest


def verify_packet(data: BinaryIO) -> list[str]:
    """The problems of a packet: [] when every file the manifest lists is there with its SHA-256 and size,
    and nothing else is in the zip."""
    try:
        zf = zipfile.ZipFile(data)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return [f"not a readable zip file: {exc}"]
    with zf:
        names = [info.filename for info in zf.infolist()]
        problems = [f"{name}: appears more than once in the zip" for name in _duplicates(names)]
        if MANIFEST not in names:
            return [*problems, f"{MANIFEST} is missing"]
        try:
            manifest = json.loads(zf.read(MANIFEST))
            files = manifest["files"]
            listed = {str(item["path"]): (str(item["sha256"]), int(item["bytes"])) for item in files}
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            return [*problems, f"{MANIFEST} cannot be read: {exc!r}"]
        problems += [f"{path}: listed more than once in {MANIFEST}" for path in _duplicates(
            [str(item["path"]) for item in files]
        )]  # fmt: skip
        present = set(names)
        for path, (sha256, size) in sorted(listed.items()):
            if path not in present:
                problems.append(f"{path}: listed in {MANIFEST} but missing from the zip")
                continue
            problems += _check(zf, path, sha256, size)
        problems += [
            f"{name}: in the zip but not listed in {MANIFEST}"
            for name in sorted(present - set(listed) - {MANIFEST})
        ]
    return problems


def _check(zf: zipfile.ZipFile, path: str, sha256: str, size: int) -> list[str]:
    digest = hashlib.sha256()
    length = 0
    try:
        with zf.open(path) as stream:
            while chunk := stream.read(1024 * 1024):
                digest.update(chunk)
                length += len(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        # A changed byte in the compressed data usually breaks the deflate stream or the CRC first.
        return [f"{path}: cannot be read, the zip entry is damaged ({exc})"]
    problems = []
    if length != size:
        problems.append(f"{path}: {length} bytes, the manifest says {size}")
    if digest.hexdigest() != sha256.lower():
        problems.append(f"{path}: SHA-256 {digest.hexdigest()} does not match the manifest's {sha256}")
    return problems


def _duplicates(names: Sequence[str]) -> list[str]:
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _write(
    zf: zipfile.ZipFile, path: str, data: bytes, date_time: tuple[int, int, int, int, int, int]
) -> None:
    info = zipfile.ZipInfo(path, date_time=date_time)
    info.external_attr = _FILE_MODE
    info.create_system = _UNIX
    zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=_COMPRESS_LEVEL)


def _entries(case: CaseFile, lines: Sequence[StatementLine]) -> dict[str, Callable[[], bytes]]:
    """Every file but the manifest, by path; each generated only when it is written."""
    entries: dict[str, Callable[[], bytes]] = {
        README: lambda: _readme(case).encode(),
        SUMMARY: lambda: summary_pdf(case, lines),
        STATEMENT: lambda: statement_csv(case, lines),
        CONTACT_LOG: lambda: _contact_log(case.events),
        POLICY: lambda: case.policy_json.encode(),
    }
    for name, content in case.notices:
        entries[_unique(f"notices/{_safe_name(name, 'notice.eml')}", entries)] = _constant(content)
    for invoice in case.invoices:
        folder = f"invoices/{_safe_name(invoice.invoice_id, 'invoice')}"
        if invoice.invoice_id in case.documents:
            name, content = case.documents[invoice.invoice_id]
            entries[_unique(f"{folder}/{_safe_name(name, 'document.pdf')}", entries)] = _constant(content)
        else:
            entries[_unique(f"{folder}/generated-copy.pdf", entries)] = _copy_maker(case, invoice)
    return entries


def _constant(content: bytes) -> Callable[[], bytes]:
    return lambda: content


def _copy_maker(case: CaseFile, invoice: InvoiceState) -> Callable[[], bytes]:
    def make() -> bytes:
        return invoice_copy_pdf(
            business=case.business,
            # invoice_copy_pdf puts the name in a table cell, which fpdf2 refuses once it is taller than a
            # page: a pasted essay as the name must not stop the packet.
            customer_name=plain(case.customer.get("customer_name") or case.account_id)[:_NAME_IN_COPY],
            account_id=case.account_id,
            invoice=notice_invoice(invoice, case.created_at.astimezone(UTC).date()),
            amount=invoice.amount,
            issued_on=invoice.issued_on,
            locale=str(case.customer.get("locale") or SUMMARY_LOCALE),
        )

    return make


def _safe_name(name: str, fallback: str) -> str:
    """One path segment that cannot climb out of its folder or surprise an unzip tool."""
    base = re.split(r"[/\\]", name)[-1]
    cleaned = _UNSAFE_NAME.sub("_", base).lstrip(".")[:_NAME_MAX]
    return cleaned or fallback


def _unique(path: str, taken: Mapping[str, object]) -> str:
    if path not in taken:
        return path
    stem, dot, extension = path.rpartition(".")
    if not dot or "/" in extension:
        stem, extension = path, ""
    number = 2
    while (candidate := f"{stem}-{number}{'.' + extension if extension else ''}") in taken:
        number += 1
    return candidate


def _manifest(case: CaseFile, files: Sequence[ManifestEntry]) -> dict[str, Any]:
    charges = case.total_charges
    return {
        "case_id": case.case_id,
        "account_id": case.account_id,
        "created_at": utc_stamp(case.created_at),
        "amount_due": format_amount(case.amount_due, case.currency),
        "currency": case.currency,
        "charges": format_amount(charges, case.currency),
        "total_claimed": format_amount(case.amount_due + charges, case.currency),
        "interest_per_day": format_amount(case.daily_interest, case.currency),
        "format_version": FORMAT_VERSION,
        "files": [{"path": f.path, "sha256": f.sha256, "bytes": f.bytes} for f in sorted(files, key=_path)],
    }


def _path(entry: ManifestEntry) -> str:
    return entry.path


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def _json_default(value: object) -> str:
    # Events are JSON already (CONTRACT 5); a Decimal or date from a caller is written as its exact text.
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _contact_log(events: Iterable[Mapping[str, Any]]) -> bytes:
    out = io.BytesIO()
    for event in events:
        text = json.dumps(dict(event), ensure_ascii=False, separators=(",", ":"), default=_json_default)
        # JSON leaves U+2028/U+2029 raw, and some line readers split on them: one event must stay one line.
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        out.write(text.encode() + b"\n")
    return out.getvalue()


def _readme(case: CaseFile) -> str:
    return f"""Legal case packet {clean(case.case_id)}
Account {clean(case.account_id)}, handed off {utc_stamp(case.created_at)}.

This packet holds the complete file of the debt as it stood at the hand-off:

  case_summary.pdf           creditor and debtor, invoices, payments, fees and interest, the total
                             claimed, the timeline of every notice, promises and disputes
  statement_of_account.csv   every debit and credit with a running balance (UTF-8, comma separated);
                             the last balance is the total claimed. Cells that a spreadsheet would run
                             as a formula are prefixed with an apostrophe.
  contact_log.jsonl          every event of the account, one JSON object per line, oldest first
  notices/                   every notice sent by email, byte for byte as handed to the mail service
                             (open a .eml file with any mail program)
  invoices/                  each invoice of the case: the uploaded document, or generated-copy.pdf
                             produced from the ledger where none was uploaded
  policy.json                the collection policy (stages, fees, interest) in force
  manifest.json              the case figures and the SHA-256 and size of every other file

How to check that nothing was changed: every file except manifest.json itself is listed in manifest.json
with its SHA-256. In the unzipped folder:

  jq -r '.files[] | "\\(.sha256)  \\(.path)"' manifest.json | sha256sum -c -

or, without jq:

  python3 -c "import json,hashlib; [print(f['path'], 'OK' if hashlib.sha256(open(f['path'],'rb').read())\\
.hexdigest() == f['sha256'] else 'CHANGED') for f in json.load(open('manifest.json'))['files']]"

Every line must say OK. `dunning cases download` performs the same check after downloading.
"""


# --- the statement of account -----------------------------------------------------------------------------
