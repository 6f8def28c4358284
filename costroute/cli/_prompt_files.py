"""Reading prompt files for the ``costroute`` command: UTF-8 text (one prompt per line) or CSV.

A file whose name ends in ``.csv``, or any input when a column is named, is CSV: a header row,
then one row per prompt, with the quoting and multi-line fields of Python's :mod:`csv` module.
Any other input holds one prompt per line. Blank and whitespace-only lines are skipped, in
either form; a CSV row whose prompt field is empty or whitespace-only (while the row holds
other values) is an error naming its line. ``-`` is standard input. Every problem is an
:class:`InputError` naming the file (and line) and what to do.
"""

from __future__ import annotations

import codecs
import csv
import io
import sys


class InputError(Exception):
    """Bad input or arguments found while running a command (exit status 2)."""


def _read_bytes(source: str) -> tuple[bytes, str]:
    """The raw input and the name to report it by."""
    if source == "-":
        return sys.stdin.buffer.read(), "standard input"
    try:
        with open(source, "rb") as fh:
            return fh.read(), repr(source)
    except OSError as exc:
        raise InputError(f"cannot read the prompts file {source!r}: {exc.strerror or exc}") from None


def _decode(data: bytes, where: str) -> str:
    """``data`` as UTF-8 text (a byte-order mark dropped), or an error naming the line."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(
            f"{where} starts with a UTF-16 byte-order mark; expected UTF-8. Convert it, e.g. `iconv -f UTF-16 -t UTF-8`"
        )
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(
            f"{where}, line {line}: byte 0x{data[exc.start]:02x} (byte {column} of the line) is not "
            "valid UTF-8; expected UTF-8 text. Re-save it as UTF-8, e.g. `iconv -f LATIN1 -t UTF-8`"
        ) from None


def _text_prompts(text: str) -> list[str]:
    """One prompt per line; blank and whitespace-only lines (anywhere) are skipped alike."""
    lines = (line.rstrip("\r\n") for line in io.StringIO(text, newline=""))
    return [line for line in lines if line.strip()]


def _csv_prompts(text: str, where: str, column: str | None) -> list[str]:
    reader = csv.reader(io.StringIO(text, newline=""))
    prompts: list[str] = []
    index = None
    try:
        for row in reader:
            if index is None:
                if not row:
                    continue  # blank lines before the header
                header = row
                index = _pick_column(header, where, column)
                continue
            if not any(field.strip() for field in row):
                continue  # a blank or whitespace-only line, skipped as in a text file
            if index >= len(row):
                raise InputError(
                    f"{where}, line {reader.line_num}: {len(row)} field(s), so no {header[index]!r} value "
                    f"(the header has {len(header)} columns)"
                )
            if not row[index].strip():
                raise InputError(
                    f"{where}, line {reader.line_num}: the {header[index]!r} field is "
                    f"{'empty' if not row[index] else 'whitespace only'}; every prompt must hold some text. "
                    "Fill it or remove the row"
                )
            prompts.append(row[index])
    except csv.Error as exc:
        raise InputError(f"{where}, line {reader.line_num}: not valid CSV: {exc}") from None
    return prompts


def _pick_column(header: list[str], where: str, column: str | None) -> int:
    names = [name.strip() for name in header]
    wanted = column if column is not None else "prompt"
    if names.count(wanted) > 1:
        raise InputError(f"{where} has {names.count(wanted)} columns named {wanted!r}; rename one")
    if wanted in names:
        return names.index(wanted)
    if column is not None:
        raise InputError(f"{where} has no column {column!r}; its columns are {names}")
    if len(names) == 1:
        return 0
    raise InputError(f"{where} has the columns {names} and none is named 'prompt'; choose one with --column")


def read_prompts(source: str, column: str | None = None) -> list[str]:
    """The prompts of a text or CSV file (``-`` for standard input); see the module docstring."""
    data, where = _read_bytes(source)
    text = _decode(data, where)
    if column is not None or source.lower().endswith(".csv"):
        prompts = _csv_prompts(text, where, column)
        what = "one row per prompt under a header"
    else:
        prompts = _text_prompts(text)
        what = "one prompt per line"
    if not prompts:
        raise InputError(f"no prompts in {where} ({what})")
    return prompts
