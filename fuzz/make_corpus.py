#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/corpus/ (checked in; rerun after changing it).

frame/: real MessagePack frames of every request type the contract has, batches, and
malformed ones. operation/: inputs in fuzz_operation.cpp's byte layout.
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


class Raw(bytes):
    """Bytes put into a frame as they are (bin values are `bytes`)."""


class Ext:
    def __init__(self, type_, data):
        self.type, self.data = type_, data


def pack(v):
    """A small MessagePack encoder: enough for the corpus (Python has no msgpack here)."""
    if isinstance(v, Raw):
        return bytes(v)
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 0x80:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v <= 0xFF:
            return b"\xcc" + struct.pack(">B", v)
        if 0 <= v <= 0xFFFF:
            return b"\xcd" + struct.pack(">H", v)
        if 0 <= v <= 0xFFFFFFFF:
            return b"\xce" + struct.pack(">I", v)
        if 0 <= v:
            return b"\xcf" + struct.pack(">Q", v)
        if v >= -0x80:
            return b"\xd0" + struct.pack(">b", v)
        if v >= -0x8000:
            return b"\xd1" + struct.pack(">h", v)
        if v >= -0x80000000:
            return b"\xd2" + struct.pack(">i", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        return pack_str(v.encode())
    if isinstance(v, bytes):
        n = len(v)
        head = b"\xc4" + bytes([n]) if n < 0x100 else b"\xc5" + struct.pack(">H", n)
        return head + v
    if isinstance(v, Ext):
        return b"\xc7" + bytes([len(v.data)]) + struct.pack("b", v.type) + v.data
    if isinstance(v, (list, tuple)):
        n = len(v)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return head + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(v)


def pack_str(b):
    n = len(b)
    if n < 32:
        return bytes([0xA0 | n]) + b
    if n < 0x100:
        return b"\xd9" + bytes([n]) + b
    if n < 0x10000:
        return b"\xda" + struct.pack(">H", n) + b
    return b"\xdb" + struct.pack(">I", n) + b


def raw_str(b):
    """A str value holding bytes that need not be UTF-8."""
    return Raw(pack_str(b))


TOKEN = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInJvb21zIjpbImxvYmJ5Il19."
         "c2lnbmF0dXJl")


def frames():
    f = {}
    # Every request type, well formed.
    f["connect"] = [{"t": "connect", "id": 1}]
    f["connect_token"] = [{"t": "connect", "id": 1, "token": TOKEN}]
    f["connect_user"] = [{"t": "connect", "id": 1, "user": "alice", "name": "Alice \u00e9\U0001f600"}]
    f["sub"] = [{"t": "sub", "id": 2, "room": "lobby"}]
    f["sub_since"] = [{"t": "sub", "id": 2, "room": "team-42:chat", "since": {"seq": 17, "epoch": "e1a2"}}]
    f["sub_since_nil"] = [{"t": "sub", "id": 2, "room": "a.b@c_d", "since": None}]
    f["unsub"] = [{"t": "unsub", "id": 3, "room": "lobby"}]
    f["pub"] = [{"t": "pub", "id": 4, "room": "lobby", "data": {"text": "hi", "n": 3}}]
    f["pub_key"] = [{"t": "pub", "id": 4, "room": "lobby", "data": "hello", "key": "k-1"}]
    f["pub_values"] = [{"t": "pub", "id": 5, "room": "lobby",
                        "data": [None, True, False, -1, -200, 70000, 2**40, -2**40, 1.5,
                                 b"\x00\x01bin", Ext(3, b"xyz"), {"nested": [[{}], []]}]}]
    f["history"] = [{"t": "history", "id": 6, "room": "lobby", "since": 0}]
    f["history_limit"] = [{"t": "history", "id": 6, "room": "lobby", "since": 100, "limit": 50}]
    f["presence"] = [{"t": "presence", "id": 7, "room": "lobby"}]
    f["pset"] = [{"t": "pset", "id": 8, "room": "lobby", "state": {"status": "away", "cursor": 12}}]
    f["typing_on"] = [{"t": "typing", "room": "lobby", "on": True}]
    f["typing_off"] = [{"t": "typing", "room": "lobby", "on": False}]
    f["open"] = [{"t": "open", "id": 9, "room": "doc"}]
    f["open_since"] = [{"t": "open", "id": 9, "room": "doc", "since": {"rev": 3, "epoch": "e"}}]
    f["op"] = [{"t": "op", "id": 10, "room": "doc", "rev": 0, "op": ["hello"], "key": "c1:1"}]
    f["op_mixed"] = [{"t": "op", "id": 11, "room": "doc", "rev": 5,
                      "op": [3, "\u00e9\u4e2d\U0001f600", -2, 0, "", 4], "key": "c1:2"}]
    f["close"] = [{"t": "close", "id": 12, "room": "doc"}]
    f["ping"] = [{"t": "ping", "id": 13}]
    f["unknown_keys"] = [{"t": "ping", "id": 13, "future": [1, 2, 3], "x": {"y": None}}]
    # Batches: several maps in one frame.
    f["batch_session"] = [f["connect"][0], f["sub"][0], f["pub_key"][0], f["typing_on"][0],
                          f["open"][0], f["op"][0], f["ping"][0]]
    f["batch_all"] = [m[0] for k, m in sorted(f.items()) if not k.startswith("batch")]
    # Malformed: each must become a decode_error, never a crash.
    f["bad_missing_id"] = [{"t": "sub", "room": "lobby"}]
    f["bad_zero_id"] = [{"t": "pub", "id": 0, "room": "lobby", "data": 1}]
    f["bad_negative_id"] = [{"t": "ping", "id": -5}]
    f["bad_unknown_type"] = [{"t": "explode", "id": 1}]
    f["bad_type_not_string"] = [{"t": 7, "id": 1}]
    f["bad_room_chars"] = [{"t": "sub", "id": 1, "room": "no spaces/allowed"}]
    f["bad_room_long"] = [{"t": "sub", "id": 1, "room": "r" * 129}]
    f["bad_room_empty"] = [{"t": "sub", "id": 1, "room": ""}]
    f["bad_since_type"] = [{"t": "sub", "id": 1, "room": "lobby", "since": 3}]
    f["bad_since_fields"] = [{"t": "open", "id": 1, "room": "d", "since": {"rev": -1, "epoch": 2}}]
    f["bad_history_limit0"] = [{"t": "history", "id": 1, "room": "lobby", "since": 0, "limit": 0}]
    f["bad_history_huge_limit"] = [{"t": "history", "id": 1, "room": "lobby", "since": 0, "limit": 2**64 - 1}]
    f["bad_pset_not_map"] = [{"t": "pset", "id": 1, "room": "lobby", "state": [1, 2]}]
    f["bad_pset_too_large"] = [{"t": "pset", "id": 1, "room": "lobby", "state": {"s": "x" * 1100}}]
    f["bad_typing_on"] = [{"t": "typing", "room": "lobby", "on": 1}]
    f["bad_op_not_array"] = [{"t": "op", "id": 1, "room": "d", "rev": 0, "op": "abc", "key": "k"}]
    f["bad_op_component"] = [{"t": "op", "id": 1, "room": "d", "rev": 0, "op": [1.5, None], "key": "k"}]
    f["bad_op_extremes"] = [{"t": "op", "id": 1, "room": "d", "rev": 0,
                             "op": [2**63 - 1, -2**63, 2**64 - 1, -(2**63 - 1)], "key": "k"}]
    f["bad_op_utf8"] = [{"t": "op", "id": 1, "room": "d", "rev": 0,
                         "op": [raw_str(b"\xc0\xaf"), raw_str(b"\xed\xa0\x80"), raw_str(b"\xf4\x90\x80\x80")],
                         "key": "k"}]
    f["bad_op_no_key"] = [{"t": "op", "id": 1, "room": "d", "rev": 0, "op": [1]}]
    f["bad_key_long"] = [{"t": "pub", "id": 1, "room": "lobby", "data": 1, "key": "k" * 300}]
    f["bad_not_map"] = [[1, 2, 3]]
    f["bad_scalar"] = [42]
    f["bad_then_good"] = [{"t": "nope"}, "str", f["ping"][0]]
    raw = {k: b"".join(pack(m) for m in maps) for k, maps in f.items()}
    # Byte-level damage.
    raw["bad_truncated"] = raw["pub_values"][:-7]
    raw["bad_trailing_garbage"] = raw["ping"] + b"\xc1\xff"
    raw["bad_never_used_byte"] = b"\xc1"
    raw["bad_deep"] = b"\x91" * 40 + b"\xc0"
    raw["bad_deep_map"] = b"\x81\xa1t" * 40 + b"\xc0"
    raw["bad_huge_array"] = b"\xdd\xff\xff\xff\xff"
    raw["bad_huge_map"] = b"\xdf\x7f\xff\xff\xff\xa1t"
    raw["bad_huge_str"] = b"\x82\xa1t\xa3pub\xa4data\xdb\xff\xff\xff\xf0abc"
    raw["bad_huge_bin"] = b"\x81\xa1t\xc6\x7f\xff\xff\xff"
    raw["bad_ext_len"] = b"\x81\xa1t\xc9\xff\xff\xff\xff\x01"
    raw["bad_key_not_string"] = pack({1: "ping", "id": 1})
    return raw


def operations():
    """fuzz_operation.cpp's layout: extra length byte, tags; 0xFF starts operation b."""
    def ret(n):
        return bytes([n]) if n < 32 else bytes([0x40]) + struct.pack("<H", n)

    def rem(n):
        return bytes([0x20 | n]) if n < 32 else bytes([0x50]) + struct.pack("<H", n)

    def ins(text):
        b = text.encode()
        return bytes([0x80 | len(b)]) + b

    def ins_cp(codes):  # each byte: top 2 bits pick 1..4 UTF-8 bytes
        return bytes([0xC0 | len(codes)]) + bytes(codes)

    def raw64(v):
        return bytes([0x60]) + struct.pack("<q", v)

    B = b"\xff"
    o = {}
    o["empty"] = b"\x00"
    o["insert_both_start"] = b"\x05" + ins("abc") + B + ins("xyz")
    o["insert_tie_middle"] = b"\x03" + ret(4) + ins("A") + B + ret(4) + ins("B")
    o["remove_overlap"] = b"\x00" + ret(2) + rem(5) + B + ret(4) + rem(6)
    o["remove_vs_insert"] = b"\x02" + ret(1) + rem(8) + B + ret(3) + ins("in") + ret(2)
    o["multibyte"] = b"\x07" + ret(3) + ins_cp([0x41, 0x81, 0xC1, 0x01]) + rem(2) + B + \
        rem(1) + ins_cp([0xFF, 0xFE]) + ret(5) + rem(3)
    o["zero_components"] = b"\x01" + ret(0) + ins("") + rem(0) + ret(2) + B + ret(0)
    o["remove_then_insert"] = b"\x04" + ret(2) + rem(3) + ins("xy") + rem(1) + ins("z") + B + \
        ret(6) + ins("q")
    o["chunk_crossing"] = b"\x10" + ret(1000) + ins("x" * 50) + rem(900) + B + ret(700) + \
        rem(1200) + ins_cp([0x81] * 40)
    o["big_document"] = b"\xff" + ret(5000) + ins("end") + B + rem(4000) + ret(100) + ins("mid")
    o["bad_utf8"] = b"\x00" + bytes([0x82]) + b"\xc3\x28" + B + ins("ok")
    o["bad_surrogate"] = b"\x00" + bytes([0x83]) + b"\xed\xa0\x80" + B + ret(1)
    o["extremes"] = b"\x00" + raw64(-2**63) + B + raw64(2**63 - 1)
    o["span_limit"] = b"\x00" + raw64(2**48) + B + raw64(2**48) + raw64(1)
    o["negative_big"] = b"\x00" + raw64(-2**47) + ins("x") + B + raw64(-5)
    return o


def write(folder, items):
    path = os.path.join(HERE, "corpus", folder)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    for name, data in items.items():
        with open(os.path.join(path, name), "wb") as out:
            out.write(data)


if __name__ == "__main__":
    write("frame", frames())
    write("operation", operations())
