#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

Seeds are small and deterministic; record checksums are left zero because
the targets rewrite them (FixRecordChecksums) when the input asks for it.
Run from anywhere: python3 fuzz/make_corpus.py
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

PUT, DELETE, BATCH, PADDING, IGNORABLE = 1, 2, 3, 4, 64


def record(rtype, seq, key=b"", value=b""):
    # checksum(8) sequence(8) value_len(4) key_len(2) type(1) flags(1)
    return struct.pack("<QQIHBB", 0, seq, len(value), len(key), rtype, 0) + key + value


def batch(entries):
    out = struct.pack("<I", len(entries))
    for t, k, v in entries:
        out += struct.pack("<BHI", t, len(k), len(v)) + k + v
    return out


def segment_header(shard, seg_id, align=4096, size=4 << 20):
    # magic version shard id alignment reserved size checksum(0: fixed by the target)
    return b"DMALOGSG" + struct.pack("<IIQIIQQ", 1, shard, seg_id, align, 0, size, 0)


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def log_body(seq0):
    return (record(PUT, seq0, b"alpha", b"one") + record(PUT, seq0 + 1, b"beta", b"two" * 10)
            + record(DELETE, seq0 + 2, b"alpha")
            + record(BATCH, seq0 + 3, b"", batch([(PUT, b"{t}a", b"x"), (DELETE, b"{t}b", b""),
                                                  (PUT, b"gamma", b"three")]))
            + record(PADDING, 0, b"", bytes(40)) + record(IGNORABLE, seq0 + 7, b"", b"future"))


def record_corpus():
    body = log_body(1)
    write("record_fuzz", "chain_fixed", bytes([1, 7]) + body)
    write("record_fuzz", "chain_raw", bytes([0, 7]) + body)
    write("record_fuzz", "header", bytes([2, 0]) + segment_header(0, 3))
    write("record_fuzz", "batch_payload", bytes([0, 0]) + batch([(PUT, b"k", b"v"), (DELETE, b"d", b"")]))
    write("record_fuzz", "zeros", bytes([1, 1]) + bytes(64))


def recovery_input(mode_flags, segments):
    """segments: list of (control, body). Layout: nsegs_flags(1), then per
    segment control(1) body_len(2) body; see fuzz/recovery_fuzz.cc."""
    out = bytes([mode_flags | (len(segments) - 1)])
    for control, body in segments:
        out += bytes([control]) + struct.pack("<H", len(body)) + body
    return out


def recovery_corpus():
    # control bit 0: fix record checksums; bit 1: raw header from the body.
    write("recovery_fuzz", "one_segment", recovery_input(0, [(1, log_body(1))]))
    write("recovery_fuzz", "two_segments", recovery_input(0, [(1, log_body(1)), (1, log_body(20))]))
    write("recovery_fuzz", "torn_tail", recovery_input(0, [(1, log_body(1)[:-7])]))
    damaged = bytearray(log_body(1))
    damaged[30] ^= 1
    write("recovery_fuzz", "middle_damage",
          recovery_input(0, [(0, bytes(damaged)), (1, log_body(20))]))
    write("recovery_fuzz", "stale_sequence", recovery_input(0, [(1, log_body(20)), (1, log_body(1))]))
    write("recovery_fuzz", "raw_header", recovery_input(0, [(3, segment_header(0, 1) + log_body(1))]))
    write("recovery_fuzz", "empty", recovery_input(0, [(1, b"")]))


def api_corpus():
    # op(1) then operands; see fuzz/api_fuzz.cc.
    def put(k, v, sync=0): return bytes([0 | sync << 7, len(k), len(v)]) + k + v
    def get(k): return bytes([1, len(k)]) + k
    def delete(k): return bytes([2, len(k)]) + k
    def scan(f, t, n): return bytes([3, len(f), len(t), n]) + f + t
    def reopen(): return bytes([5])
    def sync(): return bytes([6])
    def batch_op(entries):
        out = bytes([4, len(entries)])
        for is_put, k, v in entries:
            out += bytes([1 if is_put else 0, len(k), len(v)]) + k + v
        return out
    write("api_fuzz", "basic", put(b"a", b"1") + put(b"b", b"2") + get(b"a") + delete(b"a")
          + get(b"a") + scan(b"", b"", 10))
    write("api_fuzz", "reopen", put(b"k", b"v", 1) + reopen() + get(b"k") + delete(b"k") + reopen()
          + get(b"k") + scan(b"", b"", 5))
    write("api_fuzz", "sync", put(b"u", b"1") + sync() + reopen() + get(b"u"))
    write("api_fuzz", "batch", batch_op([(1, b"x", b"1"), (1, b"y", b"2"), (0, b"x", b"")])
          + scan(b"a", b"z", 3) + reopen() + scan(b"", b"", 100))


def api_async_corpus():
    """The asynchronous forms (opcode bit 6) and huge values (vlen 254: a size
    byte and a fill byte follow; see fuzz/api_fuzz.cc)."""
    ASYNC, SYNC = 0x40, 0x80

    def op(kind, flags=0):
        # The smallest opcode of `kind` with `flags` (bit 6 async, bit 7 sync).
        base = flags & 0x40
        x = next(c for c in range(base, base + 7) if (c & 0x7F) % 7 == kind)
        return bytes([x | (flags & 0x80)])

    def val(v):
        if isinstance(v, tuple):  # ("huge", size, fill)
            return bytes([254, v[1], v[2]])
        return bytes([len(v)]) + v

    def put(k, v, flags=0): return op(0, flags) + bytes([len(k)]) + k + val(v)
    def get(k, flags=0): return op(1, flags) + bytes([len(k)]) + k
    def delete(k, flags=0): return op(2, flags) + bytes([len(k)]) + k
    def scan(f, t, n, flags=0): return op(3, flags) + bytes([len(f), len(t), n]) + f + t
    def reopen(): return op(5)
    def sync(flags=0): return op(6, flags)

    def batch(entries, flags=0):
        b = op(4, flags) + bytes([len(entries)])
        for is_put, k, v in entries:
            b += bytes([1 if is_put else 0, len(k)]) + k + val(v)
        return b

    def huge(size=0, fill=ord("H")): return ("huge", size, fill)

    write("api_fuzz", "async_basic",
          put(b"a", b"1", ASYNC) + put(b"b", b"2", ASYNC | SYNC) + get(b"a", ASYNC)
          + delete(b"a", ASYNC) + get(b"a", ASYNC) + get(b"a")
          + batch([(1, b"x", b"1"), (0, b"b", b"")], ASYNC) + get(b"x", ASYNC)
          + scan(b"", b"", 10) + reopen() + get(b"x", ASYNC) + get(b"b", ASYNC))
    # Each huge put may stall (batch buffer full, or a segment roll) while the
    # small put after it to the same key fits at once: the small one must win
    # (session 10's reorder bug; both fail at 8a6b8d9).
    reorder = b""
    sync_reorder = b""
    for i in range(8):
        reorder += put(b"k", huge(0, ord("A") + i), ASYNC) + put(b"k", b"s%d" % i, ASYNC)
        reorder += get(b"k", ASYNC)
        sync_reorder += put(b"k", huge(0, ord("A") + i), ASYNC | SYNC)
        sync_reorder += put(b"k", b"s%d" % i, ASYNC | SYNC)
    write("api_fuzz", "async_reorder", reorder + get(b"k"))
    write("api_fuzz", "async_reorder_sync", sync_reorder + reopen() + get(b"k"))
    # A batch near the 2 MiB limit fills the buffer by itself.
    write("api_fuzz", "async_huge_batch",
          batch([(1, b"{t}a", huge(0)), (1, b"{t}b", huge(40)), (1, b"{t}c", huge(255))], ASYNC)
          + delete(b"{t}a", ASYNC) + put(b"{t}b", b"small", ASYNC) + get(b"{t}b", ASYNC)
          + put(b"v", huge(255), ASYNC) + get(b"v", ASYNC) + scan(b"", b"", 10))
    # ScanAsync and SyncAsync see the writes issued before them, stalled or
    # not, and none issued after.
    write("api_fuzz", "async_scan_sync",
          put(b"a", huge(0), ASYNC) + put(b"b", b"2", ASYNC) + scan(b"", b"", 10, ASYNC)
          + delete(b"a", ASYNC) + put(b"c", huge(3), ASYNC | SYNC) + scan(b"b", b"", 1, ASYNC)
          + sync(ASYNC) + scan(b"", b"", 10, ASYNC) + put(b"d", b"4") + sync(ASYNC) + reopen()
          + scan(b"", b"", 10, ASYNC))


def hint(entries, shard=0, seg_id=2, size=4 << 20, end=None, version=1, first=None, last=None,
         last_checksum=0x1234):
    """A hint file (engine/hint_format.h) with a zero trailer: the target
    rewrites it when flags bit 0 is set. entries: (type, seq, offset, nbytes, key)."""
    body = b""
    for t, seq, off, n, key in entries:
        body += struct.pack("<QIIHBB", seq, off, n, len(key), t, 0) + key
    if end is None:
        end = max([off + n for _, _, off, n, _ in entries], default=4096)
    first = entries[0][1] if entries and first is None else (first or 0)
    last = entries[-1][1] if entries and last is None else (last or 0)
    last_off = entries[-1][2] if entries else 0
    header = b"DMALOGHT" + struct.pack("<IIQQQQQIIQQQ", version, shard, seg_id, size, end, first,
                                       last, len(entries), 0, last_off,
                                       last_checksum if entries else 0, 0)
    return header + body + bytes(8)


def hint_corpus():
    entries = [(PUT, 10, 4096, 40, b"alpha"), (PUT, 11, 4136, 60, b"beta"),
               (DELETE, 12, 4196, 29, b"alpha"),
               (PUT, 13, 4225, 80, b"{t}a"), (DELETE, 14, 4225, 80, b"{t}b"),
               (PUT, 15, 4225, 80, b"gamma")]
    write("hint_fuzz", "valid", bytes([1]) + hint(entries))
    write("hint_fuzz", "valid_raw", bytes([0]) + hint(entries))
    write("hint_fuzz", "empty", bytes([1]) + hint([]))
    write("hint_fuzz", "one", bytes([1]) + hint([(PUT, 1, 4096, 4096 + 24, b"k" * 4096)]))
    write("hint_fuzz", "newer_version", bytes([1]) + hint(entries, version=2))
    write("hint_fuzz", "out_of_order", bytes([1]) + hint(list(reversed(entries))))
    write("hint_fuzz", "truncated", bytes([1]) + hint(entries)[:-20])
    write("hint_fuzz", "end_short", bytes([1]) + hint(entries, end=4200))


def cli_corpus():
    seeds = {
        "put": "--db=db\nput\nkey\nvalue",
        "put_hex": "--hex\n--db=db\nput\n0x6B6579\n0x76",
        "get_key_hex": "--key_hex\nget\n0x6b",
        "scan": "--from=a\n--to=z\n--max_keys=10\nscan",
        "tail": "--from_seq=5\n--shard=1\n--max_records=3\ntail",
        "demo": "--threads=2\n--num=100\n--shards=2\n--segment_size_bytes=4194304\ndemo",
        "recovery": "--recovery_mode=point_in_time\n--nosync\n--nocreate_if_missing\nstats",
        "dashdash": "--\ndelete\n--weird",
        "stress": "--ops=10\n--keys=5\n--batch_percent=20\n--delete_percent=30\n--verify\nstress",
        "bad_hex": "--value_hex\nput\nk\n0xZZ",
    }
    for name, text in seeds.items():
        write("cli_fuzz", name, text.encode())


if __name__ == "__main__":
    record_corpus()
    recovery_corpus()
    api_corpus()
    api_async_corpus()
    cli_corpus()
    hint_corpus()
