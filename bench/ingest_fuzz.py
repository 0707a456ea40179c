"""Ingest fuzz: `python -m bench.ingest_fuzz [--files N] [--seed S]` (`make bench`; BENCH_QUICK: 1,000).

Generates N upload files (our invoice format, Xero exports, payments; seeded, reproducible) of good rows
at known lines mixed with mutated ones: huge numbers, spreadsheet formulas, values over the field limit,
stray quotes, NUL bytes, Latin-1 bytes, impossible dates, extra or missing values, garbage lines; and
whole-file damage: repeated and mid-file byte-order marks, CR/LF/CRLF mixes, blank lines, a truncated
last line, and now and then the whole file in UTF-16. Each file goes through the real `Ingestor.ingest`
(reader, formats, validation and the import service), with DynamoDB and S3 replaced by in-memory fakes
so that 10,000 files take seconds rather than the hours moto would (tests/integration/test_ingest_fuzz.py
also sends a sample through the embedded AWS, the deployed handler included). Prints files tried,
crashes, good rows lost and bad rows unreported; exits 1 if any of the last three is not zero.

The oracle: no exception; every good row imported; every bad line reported in the reject report, by its
own line number or, when the CSV reader read it as part of a multi-line record (two stray quotes that
pair up across lines are a legal CSV value), by that record's first line; a file in UTF-16 gets exactly
one report line, row 0.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any, cast

from dunning.adapters.ingest_ledger import DynamoIngestLedger
from dunning.adapters.ledger import Ledger, due_keys
from dunning.domain.policy import DEFAULT_POLICY
from dunning.ingest.csvfile import open_text, read_records
from dunning.ingest.service import Ingestor
from dunning.ports import StoredObject, UploadStore

UPLOADED_AT = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
PAYER, PAYER_INVOICE = "PAYER", "P-1"
KINDS = ("invoices", "xero", "payments")
MUTATIONS = (
    "huge_number",
    "formula",
    "long_field",
    "stray_quote",
    "nul",
    "latin1",
    "bad_date",
    "extra_values",
    "truncated",
    "garbage",
)
_FORMULAS = ("=1+2", "+12", "@SUM(A1)", "=HYPERLINK(\\x\\)", "-5", "=cmd|' /C calc'!A0")


@dataclass(frozen=True)
class Layout:
    """One upload format: the columns in file order; `free` is the one the format ignores."""

    kind: str
    columns: tuple[str, ...]
    identity: str  # the column holding each row's unique id (what "imported" is checked by)
    amount: str
    dates: tuple[str, ...]
    free: str = "memo"


def _layout(kind: str, rng: random.Random) -> Layout:
    if kind == "invoices":
        required = ["invoice_id", "account_id", "customer_name", "customer_email", "currency", "amount"]
        required += ["issued_on", "due_on"]
        rng.shuffle(required)
        return Layout(kind, ("memo", *required), "invoice_id", "amount", ("issued_on", "due_on"))
    if kind == "xero":
        required = ["ContactName", "EmailAddress", "InvoiceNumber", "InvoiceDate", "DueDate", "Total"]
        required += ["Currency"]
        rng.shuffle(required)
        # Optional columns first: a truncated row then always loses a column it cannot do without.
        columns = ("Description", "Type", "Status", *required)
        return Layout(kind, columns, "InvoiceNumber", "Total", ("InvoiceDate", "DueDate"), "Description")
    required = ["account_id", "invoice_id", "amount", "paid_on"]
    rng.shuffle(required)
    return Layout(kind, ("memo", "payment_id", "reference", *required), "reference", "amount", ("paid_on",))


def _good_values(layout: Layout, rng: random.Random, n: str) -> dict[str, str]:
    amount = f"{rng.randint(1, 99_999)}.{rng.randint(0, 99):02d}"
    memo = rng.choice(["", "note", "see PO 17", "Ünïcödé ✓", "=SUM(A1)", "tab\there"])
    if layout.kind == "invoices":
        account = f"ACC-{rng.randint(1, 5)}"
        return {
            "memo": memo,
            "invoice_id": f"G-{n}",
            "account_id": account,
            "customer_name": rng.choice([f"Customer {account}", "Építő Kft.", "Ōsaka KK"]),
            "customer_email": rng.choice(["ap@example.com", "a@b.example; c@d.example", "ivan@пример.рф"]),
            "currency": rng.choice(["EUR", "USD", "GBP"]),
            "amount": amount,
            "issued_on": "2027-01-01",
            "due_on": f"2027-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        }
    if layout.kind == "xero":
        contact = f"Contact {rng.randint(1, 5)}"
        return {
            "Description": memo,
            "Type": rng.choice(["ACCREC", "Sales invoice", ""]),
            "Status": rng.choice(["AUTHORISED", "Awaiting Payment", ""]),
            "ContactName": contact,
            "EmailAddress": "ap@example.com",
            "InvoiceNumber": f"G-{n}",
            "InvoiceDate": "01/01/2027",
            "DueDate": f"1{rng.randint(0, 9)}/0{rng.randint(1, 9)}/2027",
            "Total": amount,
            "Currency": "EUR",
        }
    return {
        "memo": memo,
        "payment_id": rng.choice(["", f"TX-{n}"]),
        "reference": f"G-{n}",
        "account_id": PAYER,
        "invoice_id": PAYER_INVOICE,
        "amount": amount,
        "paid_on": "2027-01-10",
    }


def _line(values: Sequence[str]) -> bytes:
    return ",".join(values).encode()


def _bad_line(layout: Layout, rng: random.Random, n: str, mutation: str) -> bytes:
    values = _good_values(layout, rng, n)
    values[layout.identity] = f"B-{n}"
    if layout.kind == "payments":
        values["payment_id"] = ""
    # The columns whose damage the format must notice (not the free text, not Xero's optional ones).
    ignored = {layout.free, "Type", "Status", "payment_id"} | (
        {"reference"} if layout.kind == "payments" else set()
    )
    used = [column for column in layout.columns if column not in ignored]
    column = rng.choice(used)
    if mutation == "huge_number":
        values[layout.amount] = "9" * rng.randint(16, 80) + rng.choice(["", ".5", ".00"])
    elif mutation == "formula":
        values[layout.amount] = rng.choice(_FORMULAS)
    elif mutation == "long_field":
        values[column] = "x" * rng.randint(100_001, 150_000)
    elif mutation == "stray_quote":
        # In a column the format reads: there a line break is never valid, so a stray quote that pairs
        # with a later one still makes a row that is rejected (see the module docstring).
        values[column] = '"' + values[column]
    elif mutation == "bad_date":
        values[rng.choice(layout.dates)] = rng.choice(["2027-02-30", "31/11/2027", "2027-13-01", "yesterday"])
    elif mutation == "extra_values":
        return _line([values[c] for c in layout.columns]) + b",x,y"
    elif mutation == "truncated":
        line = _line([values[c] for c in layout.columns])
        # Past Xero's Type and Status (a cut Type reads as a bill, rightly skipped), before the last column.
        shortest = len(_line([values[c] for c in layout.columns[:3]])) + 1 if layout.kind == "xero" else 1
        # ... and holding some value: a row of nothing but commas is a blank row, rightly passed over.
        shortest = max(shortest, len(line) - len(line.lstrip(b", ")) + 1)
        return line[: rng.randint(shortest, line.rfind(b","))]
    elif mutation == "garbage":
        junk = bytes(rng.choice(b"abcxyz;:|\t\x01\x7f\xc3\xa9\xff") for _ in range(rng.randint(1, 60)))
        return b"zz" + junk
    line = _line([values[c] for c in layout.columns])
    if mutation == "nul":
        target = values[column].encode()
        return line.replace(target, target[:1] + b"\x00" + target[1:], 1)
    if mutation == "latin1":
        target = values[column].encode()
        return line.replace(target, bytes([rng.randint(0xC0, 0xFF)]) + b"-" + target, 1)
    return line


@dataclass
class FuzzFile:
    kind: str
    name: str
    body: bytes
    good: set[str] = field(default_factory=set)  # ids of the good rows
    bad_lines: list[int] = field(default_factory=list)
    unreadable: bool = False  # the whole file is in the wrong encoding


def generate(rng: random.Random, index: int) -> FuzzFile:
    kind = rng.choice(KINDS)
    layout = _layout(kind, rng)
    fuzz = FuzzFile("invoices" if kind == "xero" else kind, f"fuzz-{index}.csv", b"")
    endings = [b"\n", b"\r\n", b"\r"]
    mixed = rng.random() < 0.3
    fixed = rng.choice(endings)
    lines: list[bytes] = [_line([c if rng.random() < 0.8 else c.upper() for c in layout.columns])]
    if rng.random() < 0.2:
        lines[0] = "\ufeff".encode() * rng.randint(1, 3) + lines[0]
    for n in range(rng.randint(1, 30)):
        roll = rng.random()
        if roll < 0.08:
            # Never empty: after a line ending in CR, an empty line's LF would merge into CRLF.
            lines.append(rng.choice([b" ", b"   ", b",,,", b"\t"]))
        elif roll < 0.6:
            values = _good_values(layout, rng, f"{index}-{n}")
            prefix = "\ufeff".encode() if rng.random() < 0.05 else b""
            lines.append(prefix + _line([values[c] for c in layout.columns]))
            fuzz.good.add(values[layout.identity])
        else:
            lines.append(_bad_line(layout, rng, f"{index}-{n}", rng.choice(MUTATIONS)))
            fuzz.bad_lines.append(len(lines))
    truncated_end = rng.random() < 0.15
    if truncated_end:
        lines.append(_bad_line(layout, rng, f"{index}-end", "truncated"))
        fuzz.bad_lines.append(len(lines))
    body = b"".join(line + (rng.choice(endings) if mixed else fixed) for line in lines)
    if truncated_end:
        body = body.rstrip(b"\r\n")
    if rng.random() < 0.02:
        encoding = rng.choice(["utf-16", "utf-16-le", "utf-16-be"])
        body = body.decode("utf-8", errors="replace").encode(encoding)
        fuzz.good, fuzz.bad_lines, fuzz.unreadable = set(), [], True
    fuzz.body = body
    return fuzz


@dataclass
class Outcome:
    crash: str = ""
    lost: list[str] = field(default_factory=list)
    unreported: list[int] = field(default_factory=list)


def check(fuzz: FuzzFile, imported: set[str], report: list[dict[str, str]], crash: str = "") -> Outcome:
    if crash:
        return Outcome(crash=crash)
    reported = {int(row["row"]) for row in report}
    if fuzz.unreadable:
        return Outcome(unreported=[] if [r["row"] for r in report] == ["0"] else [0])
    starts = [record.line for record in read_records(open_text(io.BytesIO(fuzz.body)))]
    unreported = []
    for line in fuzz.bad_lines:
        start = max((s for s in starts if s <= line), default=0)
        if line not in reported and start not in reported:
            unreported.append(line)
    return Outcome(lost=sorted(fuzz.good - imported), unreported=unreported)


# --- the ingest service on in-memory fakes -------------------------------------------------------------


class MemoryLedger:
    """The Ledger calls the ingest makes, on a dict (conditions honoured where ingest relies on them)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        invoice = {
            "PK": f"ACCOUNT#{PAYER}",
            "SK": f"INVOICE#{PAYER_INVOICE}",
            "kind": "invoice",
            "account_id": PAYER,
            "invoice_id": PAYER_INVOICE,
            "currency": "EUR",
            "amount": Decimal("100000.00"),
            "amount_paid": Decimal(0),
            "status": "open",
            "issued_on": "2027-01-01",
            "due_on": "2027-01-31",
            "row_hash": "h",
            **due_keys(PAYER, PAYER_INVOICE, datetime(2027, 1, 31).date()),
        }
        self.items[(invoice["PK"], invoice["SK"])] = invoice

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self.items.get((pk, sk))

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {key: dict(self.items[key]) for key in keys if key in self.items}

    def write_batch(self, items: Sequence[dict[str, Any]]) -> None:
        for item in items:
            self.items[(item["PK"], item["SK"])] = dict(item)

    def put_new(self, item: dict[str, Any]) -> bool:
        if (item["PK"], item["SK"]) in self.items:
            return False
        self.write_batch([item])
        return True

    def replace(self, item: dict[str, Any], *, expected_row_hash: str) -> bool:
        current = self.items.get((item["PK"], item["SK"]))
        if current is None or current.get("row_hash") != expected_row_hash:
            return False
        self.write_batch([item])
        return True

    def update(self, key: tuple[str, str], **kwargs: Any) -> bool:
        return key in self.items  # only the due index and reversal marks: nothing the oracle reads

    def drop_from_due_index(self, account_id: str, invoice_id: str, *, row_hash: str) -> bool:
        return True

    def query_partition(self, pk: str, sk_prefix: str = "") -> Iterator[dict[str, Any]]:
        for (p, s), item in sorted(self.items.items()):
            if p == pk and s.startswith(sk_prefix):
                yield dict(item)

    def payments_total(self, account_id: str, invoice_id: str) -> Decimal:
        prefix = f"PAYMENT#{invoice_id}#"
        pk = f"ACCOUNT#{account_id}"
        return sum(
            (Decimal(i["amount"]) for (p, s), i in self.items.items() if p == pk and s.startswith(prefix)),
            Decimal(0),
        )

    def append_events(self, events: Iterable[Any]) -> None:
        list(events)


class MemoryStore:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.objects: dict[str, bytes] = {}

    def open(self, obj: StoredObject) -> IO[bytes]:
        return io.BytesIO(self.body)

    def put(self, bucket: str, key: str, body: IO[bytes], content_type: str) -> None:
        self.objects[key] = body.read()

    def exists(self, bucket: str, key: str) -> bool:
        return key in self.objects

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop(key, None)


def imported_ids(items: Iterable[dict[str, Any]], kind: str) -> set[str]:
    if kind == "payments":
        return {str(i["reference"]) for i in items if i.get("kind") == "payment"}
    return {str(i["invoice_id"]) for i in items if i.get("kind") == "invoice"}


def run_in_memory(fuzz: FuzzFile) -> Outcome:
    ledger, store = MemoryLedger(), MemoryStore(fuzz.body)
    ingestor = Ingestor(DynamoIngestLedger(cast(Ledger, ledger)), cast(UploadStore, store), DEFAULT_POLICY)
    source = StoredObject("bucket", f"incoming/{fuzz.kind}/{fuzz.name}", "etag", UPLOADED_AT)
    try:
        ingestor.ingest(source)
    except Exception as exc:  # the very thing being counted
        return Outcome(crash=f"{type(exc).__name__}: {exc}")
    raw = store.objects.get(f"rejected/{fuzz.name}.errors.csv", b"row,field,value,error\r\n")
    report = list(csv.DictReader(io.StringIO(raw.decode())))
    return check(fuzz, imported_ids(ledger.items.values(), fuzz.kind), report)


@dataclass
class Totals:
    files: int = 0
    crashes: int = 0
    good_rows: int = 0
    lost: int = 0
    bad_rows: int = 0
    unreported: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, fuzz: FuzzFile, outcome: Outcome, seed: int) -> None:
        self.files += 1
        self.good_rows += len(fuzz.good)
        self.bad_rows += len(fuzz.bad_lines)
        self.crashes += bool(outcome.crash)
        self.lost += len(outcome.lost)
        self.unreported += len(outcome.unreported)
        if (outcome.crash or outcome.lost or outcome.unreported) and len(self.examples) < 10:
            self.examples.append(f"seed {seed} file {fuzz.name}: {outcome}")

    @property
    def clean(self) -> bool:
        return not (self.crashes or self.lost or self.unreported)


def fuzz_files(files: int, seed: int, run: Callable[[FuzzFile], Outcome] = run_in_memory) -> Totals:
    totals = Totals()
    rng = random.Random(seed)
    for index in range(files):
        fuzz = generate(rng, index)
        totals.add(fuzz, run(fuzz), seed)
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="how many files to generate (10,000)")
    parser.add_argument("--seed", type=int, default=9, help="random seed (the same seed, the same files)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    totals = fuzz_files(args.files, args.seed)
    elapsed = time.perf_counter() - started
    print(f"files tried:          {totals.files:,}")
    print(f"good rows / bad rows: {totals.good_rows:,} / {totals.bad_rows:,}")
    print(f"crashes:              {totals.crashes:,}")
    print(f"good rows lost:       {totals.lost:,}")
    print(f"bad rows unreported:  {totals.unreported:,}")
    print(f"runtime:              {elapsed:.1f} s (seed {args.seed})")
    for example in totals.examples:
        print(example)
    return 0 if totals.clean else 1


if __name__ == "__main__":
    sys.exit(main())
