#!/usr/bin/env python3
"""validate.py DATA SCHEMA: check a CSV dataset against its schema file.

Checks the header (names and order), every cell's type and range, missing values, uniqueness
and the row count, then prints a short per-column report. Standard library only.

Exit status: 0 the data is valid; 1 it violates the schema (the first violations are listed
on stderr); 2 bad usage, or a data or schema file that cannot be read or is not a valid schema.
"""
import argparse
import csv
import io
import json
import re
import sys

MAX_SCHEMA_BYTES = 64 * 1024
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
MAX_SHOWN = 20

# Strict forms on purpose: float() and int() would also accept " 1", "1_0", "+1", "1e3",
# "nan" and "inf", and Python's \d matches non-ASCII digits. A dataset that needs any of
# those should say so in its schema, not slip through.
INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")

TYPES = ("integer", "number", "category", "string")


class SchemaError(Exception):
    """The schema file itself is unusable (exit status 2)."""


class Violations:
    """Collects every violation, keeps the first MAX_SHOWN for the report."""

    def __init__(self):
        self.count = 0
        self.shown = []

    def add(self, line, column, message):
        self.count += 1
        if len(self.shown) < MAX_SHOWN:
            where = "line %d" % line if line else "file"
            if column:
                where += ", column %s" % column
            self.shown.append("%s: %s" % (where, message))


def fail_usage(message):
    print("validate: %s" % message, file=sys.stderr)
    sys.exit(2)


def read_bytes(path, limit):
    try:
        with open(path, "rb") as f:
            return f.read(limit + 1)
    except OSError as error:
        fail_usage("cannot read %s: %s" % (path, error.strerror or error))


def load_schema(path):
    raw = read_bytes(path, MAX_SCHEMA_BYTES)
    if len(raw) > MAX_SCHEMA_BYTES:
        raise SchemaError("schema is larger than %d bytes" % MAX_SCHEMA_BYTES)
    try:
        schema = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise SchemaError("schema is not valid JSON: %s" % error)
    if not isinstance(schema, dict):
        raise SchemaError("schema must be a JSON object")
    columns = schema.get("columns")
    if not isinstance(columns, list) or not columns:
        raise SchemaError("schema.columns must be a non-empty list")
    names = set()
    for i, column in enumerate(columns):
        check_column(i, column)
        if column["name"] in names:
            raise SchemaError("schema.columns[%d]: duplicate name %r" % (i, column["name"]))
        names.add(column["name"])
    rows = schema.get("rows", {})
    if not isinstance(rows, dict) or not all(is_int(rows.get(k, 0)) for k in ("min", "max")):
        raise SchemaError("schema.rows must be an object with integer min and max")
    delimiter = schema.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise SchemaError("schema.delimiter must be one character")
    if schema.get("encoding", "utf-8") != "utf-8":
        raise SchemaError("only utf-8 data is supported")
    if not is_int(schema.get("max_bytes", DEFAULT_MAX_BYTES)):
        raise SchemaError("schema.max_bytes must be an integer")
    return schema


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_column(i, column):
    where = "schema.columns[%d]" % i
    if not isinstance(column, dict) or not isinstance(column.get("name"), str) or not column["name"]:
        raise SchemaError("%s needs a non-empty string name" % where)
    if column.get("type") not in TYPES:
        raise SchemaError("%s.type must be one of %s" % (where, ", ".join(TYPES)))
    for bound in ("min", "max"):
        if bound in column and not is_number(column[bound]):
            raise SchemaError("%s.%s must be a number" % (where, bound))
    if column["type"] == "category":
        values = column.get("values")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise SchemaError("%s.values must be a non-empty list of strings" % where)
    if not isinstance(column.get("missing_allowed", False), bool):
        raise SchemaError("%s.missing_allowed must be true or false" % where)
    if not isinstance(column.get("unique", False), bool):
        raise SchemaError("%s.unique must be true or false" % where)


class ColumnStats:
    def __init__(self, column):
        self.column = column
        self.missing = 0
        self.low = None
        self.high = None
        self.counts = {}
        self.seen = set()

    def summary(self):
        kind = self.column["type"]
        text = "%-14s %-9s missing %d" % (self.column["name"], kind, self.missing)
        if self.low is not None:
            text += "  min %s  max %s" % (format_value(self.low), format_value(self.high))
        if kind == "category":
            text += "  " + " ".join("%s=%d" % (v, self.counts.get(v, 0)) for v in self.column["values"])
        return text


def format_value(value):
    return ("%d" % value) if isinstance(value, int) else ("%g" % value)


def check_cell(line, stats, cell, violations):
    """Checks one cell; returns nothing, records violations and updates the column statistics."""
    column = stats.column
    name = column["name"]
    if cell == "":
        stats.missing += 1
        if not column.get("missing_allowed", False):
            violations.add(line, name, "missing value")
        return
    kind = column["type"]
    value = None
    if kind == "integer":
        if not INTEGER.fullmatch(cell):
            violations.add(line, name, "%r is not an integer" % cell)
            return
        value = int(cell)
    elif kind == "number":
        if not NUMBER.fullmatch(cell):
            violations.add(line, name, "%r is not a plain decimal number" % cell)
            return
        value = float(cell)
    elif kind == "category":
        if cell not in column["values"]:
            violations.add(line, name, "%r is not one of %s" % (cell, ", ".join(column["values"])))
            return
        stats.counts[cell] = stats.counts.get(cell, 0) + 1
    if value is not None:
        if "min" in column and value < column["min"]:
            violations.add(line, name, "%s is below the minimum %s" % (cell, format_value(column["min"])))
        if "max" in column and value > column["max"]:
            violations.add(line, name, "%s is above the maximum %s" % (cell, format_value(column["max"])))
        stats.low = value if stats.low is None else min(stats.low, value)
        stats.high = value if stats.high is None else max(stats.high, value)
    if column.get("unique", False):
        if cell in stats.seen:
            violations.add(line, name, "%r repeats an earlier row" % cell)
        stats.seen.add(cell)


def validate(raw, schema, violations):
    """Checks the decoded CSV against the schema; returns (data rows, per-column stats)."""
    columns = schema["columns"]
    stats = [ColumnStats(c) for c in columns]
    max_bytes = schema.get("max_bytes", DEFAULT_MAX_BYTES)
    if len(raw) > max_bytes:
        violations.add(0, None, "file is larger than max_bytes (%d)" % max_bytes)
        return 0, stats
    if raw.startswith(b"\xef\xbb\xbf"):
        violations.add(1, None, "file starts with a byte-order mark")
        return 0, stats
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        violations.add(0, None, "not UTF-8 at byte %d" % error.start)
        return 0, stats
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=schema.get("delimiter", ","), strict=True)
    expected = [c["name"] for c in columns]
    rows = 0
    try:
        header = next(reader, None)
        if header != expected:
            violations.add(1, None, "header is %s, expected %s" % (",".join(header or []), ",".join(expected)))
            return 0, stats
        for row in reader:
            line = reader.line_num
            rows += 1
            if len(row) != len(columns):
                violations.add(line, None, "%d fields, expected %d" % (len(row), len(columns)))
                continue
            for column_stats, cell in zip(stats, row):
                check_cell(line, column_stats, cell, violations)
    except csv.Error as error:
        violations.add(reader.line_num, None, "CSV syntax: %s" % error)
    limits = schema.get("rows", {})
    if rows < limits.get("min", 0):
        violations.add(0, None, "%d data rows, fewer than the minimum %d" % (rows, limits["min"]))
    if "max" in limits and rows > limits["max"]:
        violations.add(0, None, "%d data rows, more than the maximum %d" % (rows, limits["max"]))
    return rows, stats


def main(argv):
    parser = argparse.ArgumentParser(prog="validate.py", description="Check a CSV dataset against a schema.")
    parser.add_argument("data", help="the CSV file")
    parser.add_argument("schema", help="the schema (JSON)")
    args = parser.parse_args(argv)
    try:
        schema = load_schema(args.schema)
    except SchemaError as error:
        fail_usage("%s: %s" % (args.schema, error))
    raw = read_bytes(args.data, schema.get("max_bytes", DEFAULT_MAX_BYTES))
    violations = Violations()
    rows, stats = validate(raw, schema, violations)
    print("validate: %s against %s" % (args.data, args.schema))
    print("  rows: %d (allowed %s..%s)" % (rows, schema.get("rows", {}).get("min", 0), schema.get("rows", {}).get("max", "any")))
    for column_stats in stats:
        print("  " + column_stats.summary())
    if violations.count:
        print("FAILED: %d violation(s); the first %d:" % (violations.count, len(violations.shown)), file=sys.stderr)
        for message in violations.shown:
            print("  " + message, file=sys.stderr)
        return 1
    print("OK: %d rows, %d columns, no violations" % (rows, len(stats)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
