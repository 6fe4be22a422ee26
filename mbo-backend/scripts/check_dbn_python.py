#!/usr/bin/env python3
"""Reads an MBO DBN file with Databento's own Python decoder and checks it.

Usage: check_dbn_python.py FILE|- [EXPECTED_RECORDS]

FILE is plain (uncompressed) DBN, or `-` for DBN bytes on standard input. zstd files need
the `zstandard` package (pip install zstandard); `mbo`'s tests decompress them first.

Checks: the metadata (schema mbo, dataset, symbols, one symbol -> instrument id mapping per
symbol, start <= first record, end > last record); every record is an MBO record of a mapped
instrument with a known action and side; ts_recv never decreases; the records of each event
share one instrument; the last record carries F_LAST; the count (if given). Prints one JSON
line describing the file and exits 0, or prints the first problem to stderr and exits 1
(2 when databento_dbn itself is missing).
"""

import json
import sys

try:
    import databento_dbn as dbn
except ImportError:
    print(
        "check_dbn_python: the Python package databento_dbn is missing: "
        "pip install databento-dbn",
        file=sys.stderr,
    )
    sys.exit(2)


def text(value):
    """Enum members and plain strings alike, as their DBN code (e.g. 'A', 'mbo')."""
    value = getattr(value, "value", value)
    return chr(value) if isinstance(value, int) else str(value)


def fail(message):
    print(f"check_dbn_python: {message}", file=sys.stderr)
    sys.exit(1)


def read(path):
    data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    if data[:4] == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard
        except ImportError:
            fail("zstd-compressed input needs the zstandard package (pip install zstandard)")
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    decoder = dbn.DBNDecoder()
    decoder.write(data)
    items = decoder.decode()
    if not items or not isinstance(items[0], dbn.Metadata):
        fail("no DBN metadata")
    return items[0], items[1:]


def main():
    if len(sys.argv) not in (2, 3):
        fail("usage: check_dbn_python.py FILE|- [EXPECTED_RECORDS]")
    metadata, records = read(sys.argv[1])
    if text(metadata.schema) != "mbo":
        fail(f"schema is {text(metadata.schema)}, expected mbo")
    mapped = {}
    for symbol in metadata.symbols:
        intervals = metadata.mappings.get(symbol)
        if not intervals:
            fail(f"symbol {symbol} has no mapping")
        mapped[int(intervals[0]["symbol"])] = symbol
    if len(sys.argv) == 3 and len(records) != int(sys.argv[2]):
        fail(f"{len(records)} records, expected {sys.argv[2]}")
    if not records:
        fail("no records")

    actions = {}
    events = 0
    event_instrument = None
    last_ts_recv = 0
    for i, r in enumerate(records):
        if not isinstance(r, dbn.MBOMsg):
            fail(f"record {i} is a {type(r).__name__}, expected MBOMsg")
        if r.instrument_id not in mapped:
            fail(f"record {i}: instrument {r.instrument_id} is not in the symbol mappings")
        action, side = text(r.action), text(r.side)
        if action not in "ACMRTFN" or side not in "ABN":
            fail(f"record {i}: action {action!r} side {side!r}")
        actions[action] = actions.get(action, 0) + 1
        if r.ts_recv < last_ts_recv:
            fail(f"record {i}: ts_recv goes backwards")
        last_ts_recv = r.ts_recv
        if event_instrument is None:
            event_instrument = r.instrument_id
        elif r.instrument_id != event_instrument:
            fail(f"record {i}: an event mixes instruments")
        if r.flags & dbn.F_LAST:
            events += 1
            event_instrument = None
    if not records[-1].flags & dbn.F_LAST:
        fail("the last record lacks F_LAST")
    if metadata.start > records[0].ts_recv:
        fail("metadata start is after the first record")
    if metadata.end is not None and metadata.end <= records[-1].ts_recv:
        fail("metadata end is not after the last record")

    print(
        json.dumps(
            {
                "dataset": metadata.dataset,
                "schema": text(metadata.schema),
                "version": metadata.version,
                "symbols": list(metadata.symbols),
                "instruments": {str(k): v for k, v in sorted(mapped.items())},
                "start": metadata.start,
                "end": metadata.end,
                "records": len(records),
                "events": events,
                "actions": dict(sorted(actions.items())),
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
