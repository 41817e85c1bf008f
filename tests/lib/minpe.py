"""A minimal valid PE32+ (x86-64) image for the Authenticode tests
(tests/compat/run-compat, tests/api/run-oidc): headers and one .text
section, small enough to build in memory."""

import struct


def minimal_pe():
    """A minimal valid PE32+ (x86-64) image: headers and one .text section."""
    dos = bytearray(0x40)
    dos[0:2] = b'MZ'
    struct.pack_into('<I', dos, 0x3c, 0x40)
    coff = struct.pack('<4sHHIIIHH', b'PE\0\0', 0x8664, 1, 0, 0, 0, 240, 0x0022)
    opt = bytearray(240)
    struct.pack_into('<HBBIIIIIQIIHHHHHHIIIIHHQQQQII', opt, 0,
                     0x20b, 14, 0, 0x200, 0, 0, 0x1000, 0x1000, 0x140000000,
                     0x1000, 0x200, 6, 0, 0, 0, 6, 0, 0, 0x2000, 0x200, 0, 3, 0x8160,
                     0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    sec = struct.pack('<8sIIIIIIHHI', b'.text', 0x200, 0x1000, 0x200, 0x200, 0, 0, 0, 0,
                      0x60000020)
    hdr = bytes(dos) + coff + bytes(opt) + sec
    hdr += b'\0' * (0x200 - len(hdr))
    return hdr + b'\xc3' + b'rsign compatibility test image'.ljust(0x1ff, b'\0')
