#!/usr/bin/env python3
"""Set an ELF shared library's RUNPATH to `$ORIGIN` alone, in place: the installed libcomir.so
must find libtorch next to itself and carry no path of the machine it was built on.

The new value is never longer than the old one (which starts with `$ORIGIN`), so the string is
overwritten inside .dynstr and padded with NUL bytes; nothing else in the file moves.

    scripts/runpath-origin.py build/fiji/lib/linux64/libcomir.so
"""
import struct
import sys

DT_NULL, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 5, 15, 29


def main(path):
    data = bytearray(open(path, "rb").read())
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit(f"{path}: not a 64-bit little-endian ELF file")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        sys.exit(f"{path}: no dynamic section")
    entries = []
    for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, val = struct.unpack_from("<qQ", data, off)
        if tag == DT_NULL:
            break
        entries.append((tag, val))
    strtab_vaddr = next(v for t, v in entries if t == DT_STRTAB)
    strtab = next(off + strtab_vaddr - va for va, off, size in loads if va <= strtab_vaddr < va + size)
    changed = 0
    for tag, val in entries:
        if tag in (DT_RPATH, DT_RUNPATH):
            start = strtab + val
            end = data.index(0, start)
            old = data[start:end].decode()
            if not old.startswith("$ORIGIN"):
                sys.exit(f"{path}: RUNPATH {old!r} does not start with $ORIGIN")
            data[start:end] = b"$ORIGIN" + b"\0" * (end - start - len("$ORIGIN"))
            changed += 1
    if not changed:
        sys.exit(f"{path}: no RUNPATH")
    open(path, "wb").write(data)


if __name__ == "__main__":
    main(sys.argv[1])
