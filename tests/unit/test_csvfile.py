from __future__ import annotations

import io

from dunning.domain.models import safe_cell
from dunning.ingest.csvfile import (
    MAX_FIELD_CHARACTERS,
    MAX_RECORD_CHARACTERS,
    MAX_RECORD_LINES,
    RejectReport,
    open_text,
    read_records,
)


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
    assert safe_cell("-2+A1") == "'-2+A1"  # a bare number ("-2") is left a number: see below
    assert safe_cell("plain") == "plain"


def test_reject_report_round_trips_unicode() -> None:
    report = RejectReport()
    report.add(3, "customer_name", "Építő Kft.", "too long")
    data = report.stream().read().decode("utf-8")
    report.close()
    assert data == "row,field,value,error\r\n3,customer_name,Építő Kft.,too long\r\n"


def _read(data: bytes) -> list[tuple[int, list[str], str]]:
    return [(r.line, r.values, r.error) for r in read_records(open_text(io.BytesIO(data)))]


def test_a_value_over_the_field_limit_is_one_broken_record() -> None:
    data = b"a,b\n1,x\n2," + b"y" * (MAX_FIELD_CHARACTERS + 1) + b"\n3,z\n"
    records = _read(data)
    assert [(line, values) for line, values, _ in records] == [
        (1, ["a", "b"]),
        (2, ["1", "x"]),
        (3, []),
        (4, ["3", "z"]),
    ]
    assert "longer than 100,000 characters" in records[2][2]


def test_a_row_over_the_record_limit_is_skipped_without_being_held() -> None:
    data = b"a,b\n1,x\n" + b"y," * (MAX_RECORD_CHARACTERS // 2 + 5) + b"\n3,z\n"
    records = _read(data)
    assert [(line, bool(error)) for line, _, error in records] == [
        (1, False),
        (2, False),
        (3, True),
        (4, False),
    ]


def test_an_unterminated_quote_is_skipped_and_the_next_rows_are_read() -> None:
    data = b'a,b,c\n1,"x,y\n2,p,q\n3,"r\n4,s,t\n'
    records = _read(data)
    assert [(line, values) for line, values, _ in records] == [
        (1, ["a", "b", "c"]),
        (2, []),
        (3, ["2", "p", "q"]),
        (4, []),
        (5, ["4", "s", "t"]),
    ]
    assert "quoted value is not closed" in records[1][2]


def test_real_multi_line_values_are_kept_whole() -> None:
    # Continuation lines that do not look like rows of this file (three values) stay in the value.
    data = b'a,b,c\n1,"first line\nsecond, line\n""quoted"" third",x\n2,y,z\n'
    assert _read(data) == [
        (1, ["a", "b", "c"], ""),
        (2, ["1", 'first line\nsecond, line\n"quoted" third', "x"], ""),
        (5, ["2", "y", "z"], ""),
    ]


def test_a_quote_open_for_too_many_lines_is_unterminated() -> None:
    data = b'a,b,c\n1,"x\n' + b"more\n" * MAX_RECORD_LINES + b'end",y\n'
    records = _read(data)
    assert records[1][0] == 2 and records[1][2]
    assert [line for line, _, error in records if not error][-1] == MAX_RECORD_LINES + 3


def test_quotes_inside_unquoted_values_are_literal_as_in_the_csv_module() -> None:
    assert _read(b'a,b\n5" screen,x\n"a"b,"c""\n"\n') == [
        (1, ["a", "b"], ""),
        (2, ['5" screen', "x"], ""),
        (3, ["ab", 'c"\n'], ""),
    ]


def test_repeated_and_row_leading_byte_order_marks_are_dropped() -> None:
    data = "\ufeff\ufeff\ufeffinvoice_id,x\n\ufeffA,1\n".encode()
    assert [r.values for r in read_records(open_text(io.BytesIO(data)))] == [["invoice_id", "x"], ["A", "1"]]


def test_a_negative_amount_stays_a_number_while_a_formula_is_neutralised() -> None:
    assert safe_cell("-2.39") == "-2.39"
    assert safe_cell("-2") == "-2"
    assert safe_cell("-2+3") == "'-2+3"
    assert safe_cell("-cmd|' /C calc'!A0") == "'-cmd|' /C calc'!A0"
