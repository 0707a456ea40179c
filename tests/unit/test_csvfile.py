from __future__ import annotations

import io

from dunning.ingest.csvfile import RejectReport, open_text, read_records, safe_cell


def test_records_report_the_line_they_start_on() -> None:
    text = open_text(io.BytesIO(b'a,b\n1,"x\ny"\n\n2,z\r\n3,w'))
    assert [(r.line, r.values) for r in read_records(text)] == [
        (1, ["a", "b"]),
        (2, ["1", "x\ny"]),
        (5, ["2", "z"]),
        (6, ["3", "w"]),
    ]


def test_byte_order_mark_is_dropped() -> None:
    records = list(read_records(open_text(io.BytesIO("\ufeffinvoice_id\nX\n".encode()))))
    assert records[0].values == ["invoice_id"]


def test_formula_like_cells_are_written_as_text() -> None:
    assert safe_cell("=1+1") == "'=1+1"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-2") == "'-2"
    assert safe_cell("plain") == "plain"


def test_reject_report_round_trips_unicode() -> None:
    report = RejectReport()
    report.add(3, "customer_name", "Építő Kft.", "too long")
    data = report.stream().read().decode("utf-8")
    report.close()
    assert data == "row,field,value,error\r\n3,customer_name,Építő Kft.,too long\r\n"
