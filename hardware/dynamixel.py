"""Dynamixel Protocol 2.0 on the wire (X-series): packet layout, CRC, byte stuffing, instruction and status
packets, the error bits, and a reader that frames packets from a byte stream. Shared by the driver
(:mod:`facetwin.hardware.serial_bus`) and the pty emulator (:mod:`facetwin.hardware.emulator`); nothing here does I/O.

Instruction packet (status packets carry instruction ``0x55`` and an error byte before the parameters)::

    FF FF FD 00 | ID | LEN_L LEN_H | INST | PARAM ... | CRC_L CRC_H
    LEN = 1 (INST) + len(stuffed PARAMs) + 2 (CRC); CRC-16 (poly 0x8005, init 0) over everything before it, stuffed

Byte stuffing: inside INST + PARAMs every ``FF FF FD`` is sent as ``FF FF FD FD`` (so a header never appears in
the body), and undone on receipt.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
MAX_ID = 252
MAX_LENGTH = 1024  # longest LEN field accepted from the wire (a 26-servo SYNC_WRITE is ~140)

PING = 0x01
READ = 0x02
WRITE = 0x03
STATUS = 0x55
SYNC_READ = 0x82
SYNC_WRITE = 0x83

ADDR_MODEL_NUMBER = 0
ADDR_RETURN_DELAY_TIME = 9
ADDR_HARDWARE_ERROR_STATUS = 70
ADDR_TORQUE_ENABLE = 64
ADDR_GOAL_POSITION = 116
ADDR_PRESENT_POSITION = 132

ERROR_ALERT = 0x80
ERRORS = {1: "Result Fail", 2: "Instruction Error", 3: "CRC Error", 4: "Data Range Error", 5: "Data Length Error",
          6: "Data Limit Error", 7: "Access Error"}
#: bits of Hardware Error Status (address 70) of X-series servos
HARDWARE_ERRORS = {0: "Input Voltage Error", 2: "Overheating Error", 3: "Motor Encoder Error",
                   4: "Electrical Shock Error", 5: "Overload Error"}
STATUS_BYTES = 11  # a status packet without data: header 4, id, length 2, instruction, error, CRC 2
INSTRUCTION_BYTES = 10  # an instruction packet without parameters: header 4, id, length 2, instruction, CRC 2


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray, crc: int = 0) -> int:
    """Dynamixel CRC-16 (polynomial 0x8005, MSB first, initial value 0, no final XOR)."""
    for b in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes | bytearray) -> bytes:
    """Byte stuffing: every ``FF FF FD`` in ``body`` (instruction + parameters) gets an extra ``FD``."""
    out = bytearray()
    for i, b in enumerate(body):
        out.append(b)
        if b == 0xFD and i >= 2 and body[i - 2] == 0xFF and body[i - 1] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes | bytearray) -> bytes:
    """Undo :func:`stuff`: every ``FF FF FD FD`` becomes ``FF FF FD``."""
    out = bytearray()
    i = 0
    while i < len(body):
        out.append(body[i])
        if body[i] == 0xFD and out[-3:] == b"\xff\xff\xfd" and i + 1 < len(body) and body[i + 1] == 0xFD:
            i += 1
        i += 1
    return bytes(out)


def build_packet(servo_id: int, instruction: int, params: bytes | bytearray = b"") -> bytes:
    """A complete, stuffed, CRC-terminated packet (status packets: ``instruction = 0x55``, error byte first in
    ``params``)."""
    if not 0 <= servo_id <= BROADCAST_ID:
        raise ValueError(f"servo_id: 0-252 or 0xFE (broadcast), got {servo_id}")
    body = stuff(bytes([instruction]) + bytes(params))
    head = HEADER + bytes([servo_id]) + struct.pack("<H", len(body) + 2)
    crc = crc16(head + body)
    return head + body + struct.pack("<H", crc)


def build_status(servo_id: int, error: int = 0, params: bytes | bytearray = b"") -> bytes:
    """A status packet: instruction 0x55, error byte, parameters."""
    return build_packet(servo_id, STATUS, bytes([error]) + bytes(params))


def describe_hardware_error(status: int) -> str:
    """Name the bits of Hardware Error Status, e.g. ``"Overheating Error (0x04)"``."""
    parts = [HARDWARE_ERRORS.get(b, f"bit {b}") for b in range(8) if status >> b & 1]
    return f"{' + '.join(parts) or 'no hardware error'} (0x{status:02x})"


def describe_error(error: int) -> str:
    """Name the bits of a status error byte, e.g. ``"hardware alert + Data Limit Error (0x86)"``."""
    parts = []
    if error & ERROR_ALERT:
        parts.append("hardware alert")
    if error & 0x7F:
        parts.append(ERRORS.get(error & 0x7F, f"unknown error {error & 0x7F}"))
    return f"{' + '.join(parts) or 'no error'} (0x{error:02x})"


@dataclass(frozen=True)
class Packet:
    """A received packet, unstuffed: ``params`` of a status packet start with the error byte."""

    servo_id: int
    instruction: int
    params: bytes
    crc_ok: bool
    raw: bytes

    @property
    def error(self) -> int:
        """The error byte of a status packet."""
        return self.params[0] if self.instruction == STATUS and self.params else 0

    @property
    def data(self) -> bytes:
        """The parameters of a status packet after its error byte."""
        return self.params[1:] if self.instruction == STATUS else self.params


class PacketReader:
    """Incremental packet framing over a byte stream: :meth:`feed` bytes, :meth:`next` returns a :class:`Packet`
    (CRC checked, ``crc_ok`` says) or ``None`` until one is complete. Bytes before a header are skipped; a LEN
    above :data:`MAX_LENGTH` or below 3 is garbage, and the search restarts after that header."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes | bytearray) -> None:
        self.buf += data

    def need(self) -> int:
        """How many more bytes the packet in progress needs at least (1 while hunting for a header)."""
        i = self.buf.find(HEADER)
        if i < 0 or len(self.buf) < i + 7:
            return 1 if i < 0 else i + 7 - len(self.buf)
        length = self.buf[i + 5] | self.buf[i + 6] << 8
        return max(1, i + 7 + length - len(self.buf)) if 3 <= length <= MAX_LENGTH else 1

    def next(self) -> Packet | None:
        while True:
            i = self.buf.find(HEADER)
            if i < 0:
                del self.buf[:max(0, len(self.buf) - 3)]  # keep a possible partial header
                return None
            del self.buf[:i]
            if len(self.buf) < 7:
                return None
            length = self.buf[5] | self.buf[6] << 8
            if not 3 <= length <= MAX_LENGTH:
                del self.buf[:4]
                continue
            if len(self.buf) < 7 + length:
                return None
            raw = bytes(self.buf[:7 + length])
            del self.buf[:7 + length]
            crc_ok = crc16(raw[:-2]) == (raw[-2] | raw[-1] << 8)
            body = unstuff(raw[7:-2])
            return Packet(servo_id=raw[4], instruction=body[0], params=body[1:], crc_ok=crc_ok, raw=raw)


__all__ = ["ADDR_GOAL_POSITION", "ADDR_HARDWARE_ERROR_STATUS", "ADDR_MODEL_NUMBER", "ADDR_PRESENT_POSITION",
           "ADDR_RETURN_DELAY_TIME", "ADDR_TORQUE_ENABLE", "BROADCAST_ID", "ERRORS", "ERROR_ALERT", "HARDWARE_ERRORS",
           "HEADER", "INSTRUCTION_BYTES", "MAX_ID", "MAX_LENGTH", "PING", "READ", "STATUS", "STATUS_BYTES",
           "SYNC_READ", "SYNC_WRITE", "WRITE", "Packet", "PacketReader", "build_packet", "build_status", "crc16",
           "describe_error", "describe_hardware_error", "stuff", "unstuff"]
