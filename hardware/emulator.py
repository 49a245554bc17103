"""A chain of Dynamixel X-series servos emulated on a pseudo-terminal, byte-exact Protocol 2.0, with fault injection.

:class:`DynamixelEmulator` opens a pty (``os.openpty()``); its :attr:`~DynamixelEmulator.port` (the slave tty path)
is what :class:`facetwin.hardware.serial_bus.DynamixelBus` or ``serial.Serial(port)`` opens. A background thread
reads the master side, frames instruction packets (:class:`facetwin.hardware.dynamixel.PacketReader`) and answers
with status packets as the servos would: correct CRC and byte stuffing, one reply per id for SYNC_READ, none for
SYNC_WRITE or broadcasts. Each servo keeps a control table; its present position moves toward the goal at ``speed``
ticks per second while torque is on and stays put while limp.

| instruction | emulated reply |
|---|---|
| PING (id or broadcast) | model number (2 bytes) + firmware version |
| READ | the bytes of the control table; Access Error past its end, Data Length Error for a malformed packet |
| WRITE | empty status; Access Error for read-only addresses (0-6, 120-147) and for EEPROM (7-63) with torque on; Data Limit Error for a goal outside Min/Max Position Limit (48, 52) |
| SYNC_READ | one status per listed id of this chain, in order |
| SYNC_WRITE | none (goals outside the limits ignored, as a servo does) |
| a packet with a bad CRC | CRC Error status |
| any other instruction | Instruction Error status |

| fault (:meth:`~DynamixelEmulator.inject`) | effect on the next ``count`` packets / replies |
|---|---|
| ``"crc"`` | the reply's CRC is flipped |
| ``"drop"`` | the instruction is swallowed: no reply (the bus times out) |
| ``"error"`` | the reply carries error byte ``error`` (default 0x80, hardware alert) |
| ``"wrong_id"`` | the reply comes from another id |
| ``"truncate"`` | only the first half of the reply is sent |
| ``"close"`` | the port closes when the instruction arrives (:meth:`~DynamixelEmulator.close_port` does it now) |

Lasting servo faults, until undone:

| method | effect |
|---|---|
| :meth:`~DynamixelEmulator.fail` ``(id, hardware_error)`` | a hardware alert (default overheating): Hardware Error Status (70) set, torque off and refused, every status from the servo carries the alert bit 0x80, as an X-series servo does after a shutdown; :meth:`~DynamixelEmulator.reboot` clears it |
| :meth:`~DynamixelEmulator.disconnect` ``(id)`` | the servo hears and answers nothing (a broken cable or a dead servo): no replies, writes not applied; :meth:`~DynamixelEmulator.reconnect` undoes it |

Every instruction received is logged in :attr:`~DynamixelEmulator.received` ``(id, instruction, params)`` and every
goal position written (accepted or not) in :attr:`~DynamixelEmulator.goal_log` ``(id, position)``: what the
safety-layer and deploy tests assert on ("nothing outside the calibrated range reached the bus"). A packet that gets
no reply (SYNC_WRITE) reaches the servos a moment after the write returns: :meth:`~DynamixelEmulator.settle` waits
until the line has been quiet before such an assertion.

>>> from facetwin.hardware.serial_bus import DynamixelBus
>>> with DynamixelEmulator(ids=range(1, 27)) as emu, DynamixelBus(emu.port, ids=range(1, 27)) as bus:
...     bus.write([1], [2100])
...     emu.settle()
...     emu.goal(1)
2100

For a dry run by hand: ``facetwin emulate --ids 1-26`` prints the port and serves until Ctrl-C
(or SIGTERM).
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import struct
import threading
import time
import tty
from collections.abc import Iterable

from facetwin.hardware.dynamixel import (
    ADDR_GOAL_POSITION,
    ADDR_HARDWARE_ERROR_STATUS,
    ADDR_MODEL_NUMBER,
    ADDR_PRESENT_POSITION,
    ADDR_RETURN_DELAY_TIME,
    ADDR_TORQUE_ENABLE,
    BROADCAST_ID,
    ERROR_ALERT,
    PING,
    READ,
    SYNC_READ,
    SYNC_WRITE,
    WRITE,
    Packet,
    PacketReader,
    build_status,
)

TABLE_SIZE = 148  # up to Present Temperature (146) and a spare byte; the indirect area is not emulated
ADDR_FIRMWARE = 6
ADDR_ID = 7
ADDR_MAX_POSITION = 48
ADDR_MIN_POSITION = 52
ADDR_STATUS_RETURN_LEVEL = 68
ADDR_MOVING = 122
_READ_ONLY = (range(0, 7), range(120, 148))
_EEPROM_END = 64
ERR_INSTRUCTION, ERR_CRC, ERR_LENGTH, ERR_LIMIT, ERR_ACCESS = 0x02, 0x03, 0x05, 0x06, 0x07
FAULTS = ("crc", "drop", "error", "wrong_id", "truncate", "close")
HW_OVERHEATING = 0x04  # Hardware Error Status bit 2


class _Servo:
    """One emulated servo: its control table and the continuous position behind Present Position."""

    def __init__(self, servo_id: int, model_number: int, position: int, now: float) -> None:
        self.table = bytearray(TABLE_SIZE)
        struct.pack_into("<H", self.table, ADDR_MODEL_NUMBER, model_number)
        self.table[ADDR_FIRMWARE] = 45
        self.table[ADDR_ID] = servo_id
        struct.pack_into("<i", self.table, ADDR_MAX_POSITION, 4095)
        struct.pack_into("<i", self.table, ADDR_MIN_POSITION, 0)
        self.table[ADDR_STATUS_RETURN_LEVEL] = 2
        struct.pack_into("<i", self.table, ADDR_GOAL_POSITION, position)
        struct.pack_into("<i", self.table, ADDR_PRESENT_POSITION, position)
        self.position = float(position)
        self.t = now

    def get(self, address: int, size: int = 4) -> int:
        return struct.unpack_from({1: "<B", 2: "<H", 4: "<i"}[size], self.table, address)[0]

    def advance(self, now: float, speed: float) -> None:
        """Move toward the goal at ``speed`` ticks/s since the last call (torque on), else stay."""
        dt, self.t = now - self.t, now
        if self.table[ADDR_TORQUE_ENABLE]:
            delta = self.get(ADDR_GOAL_POSITION) - self.position
            step = math.inf if math.isinf(speed) else speed * max(dt, 0.0)
            self.position += max(-step, min(step, delta))
        present = round(self.position)
        struct.pack_into("<i", self.table, ADDR_PRESENT_POSITION, present)
        self.table[ADDR_MOVING] = int(present != self.get(ADDR_GOAL_POSITION) and bool(self.table[ADDR_TORQUE_ENABLE]))


class DynamixelEmulator:
    """Dynamixel servos on a pseudo-terminal (see the module docstring).

    ``ids``: the servo ids on the chain. ``model_number``: what PING answers (1020 = XM430-W350).
    ``position``: the initial present (and goal) position. ``speed``: ticks per second toward the goal (3000 is
    about an XM430 at no load; ``float("inf")`` jumps). ``reply_delay_s``: the servo's Return Delay Time.
    """

    def __init__(self, ids: Iterable[int] = range(1, 27), *, model_number: int = 1020, position: int = 2048,
                 speed: float = 3000.0, reply_delay_s: float = 0.0) -> None:
        ids = [int(i) for i in ids]
        if not ids or len(set(ids)) != len(ids) or not all(0 <= i <= 252 for i in ids):
            raise ValueError(f"ids: distinct servo ids in 0-252, got {ids}")
        if not speed > 0:
            raise ValueError(f"speed: ticks per second must be > 0, got {speed}")
        now = time.monotonic()
        self.speed = float(speed)
        self.reply_delay_s = float(reply_delay_s)
        self.servos = {i: _Servo(i, model_number, position, now) for i in ids}
        for sv in self.servos.values():  # Return Delay Time in 2 us units, as the servos would report it
            sv.table[ADDR_RETURN_DELAY_TIME] = min(254, round(self.reply_delay_s / 2e-6))
        self.failed: set[int] = set()  # servos in a hardware alert (fail)
        self.disconnected: set[int] = set()  # servos that hear nothing (disconnect)
        self.received: list[tuple[int, int, bytes]] = []
        self.goal_log: list[tuple[int, int]] = []
        self.bad_packets = 0
        self._faults: dict[str, int] = {}
        self._fault_error = 0x80
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline, before any client opens it
        self._port = os.ttyname(self._slave)
        self._closed = False
        self._last_rx = time.monotonic()

    @property
    def port(self) -> str:
        """The slave tty path (``/dev/pts/N``) to open with pyserial."""
        return self._port

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> DynamixelEmulator:
        """Start answering on the pty (a daemon thread)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="dynamixel-emulator", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the pty. Idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self.close_port()

    def __enter__(self) -> DynamixelEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def close_port(self) -> None:
        """Close both ends of the pty now: the client's next read or write fails (the cable pulled)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)

    # -- inspection and faults -------------------------------------------------------------------------------------

    def inject(self, fault: str, count: int = 1, error: int = 0x80) -> None:
        """Apply ``fault`` (one of :data:`FAULTS`) to the next ``count`` packets or replies."""
        if fault not in FAULTS:
            raise ValueError(f"fault: one of {FAULTS}, got {fault!r}")
        if count < 1:
            raise ValueError(f"count: must be >= 1, got {count}")
        if fault == "error" and not 1 <= error <= 0xFF:
            raise ValueError(f"error: a non-zero error byte, got {error}")
        with self._lock:
            self._faults[fault] = self._faults.get(fault, 0) + count
            self._fault_error = error

    def fail(self, servo_id: int, hardware_error: int = HW_OVERHEATING) -> None:
        """Put a servo in a hardware alert (see the module docstring); ``hardware_error``: the bits of address 70."""
        if not 1 <= hardware_error <= 0xFF:
            raise ValueError(f"hardware_error: a non-zero status byte, got {hardware_error}")
        with self._lock:
            s = self.servos[servo_id]
            s.advance(time.monotonic(), self.speed)
            s.table[ADDR_HARDWARE_ERROR_STATUS] = hardware_error
            s.table[ADDR_TORQUE_ENABLE] = 0
            self.failed.add(servo_id)

    def reboot(self, servo_id: int) -> None:
        """Clear a servo's hardware alert (torque stays off)."""
        with self._lock:
            self.servos[servo_id].table[ADDR_HARDWARE_ERROR_STATUS] = 0
            self.failed.discard(servo_id)

    def disconnect(self, servo_id: int) -> None:
        """The servo hears and answers nothing until :meth:`reconnect`."""
        with self._lock:
            self.servos[servo_id]  # KeyError for an id not on the chain
            self.disconnected.add(servo_id)

    def reconnect(self, servo_id: int) -> None:
        with self._lock:
            self.disconnected.discard(servo_id)

    def goal(self, servo_id: int) -> int:
        """Goal Position of a servo (ticks)."""
        with self._lock:
            return self.servos[servo_id].get(ADDR_GOAL_POSITION)

    def position(self, servo_id: int) -> int:
        """Present Position of a servo (ticks), moved up to now."""
        with self._lock:
            s = self.servos[servo_id]
            s.advance(time.monotonic(), self.speed)
            return s.get(ADDR_PRESENT_POSITION)

    def set_position(self, servo_id: int, position: int) -> None:
        """Put a servo somewhere (an outside push, or the pose it was left in before power-up)."""
        with self._lock:
            s = self.servos[servo_id]
            s.advance(time.monotonic(), self.speed)
            s.position = float(position)
            s.advance(s.t, self.speed)

    def torque(self, servo_id: int) -> bool:
        """Whether a servo's torque is enabled."""
        with self._lock:
            return bool(self.servos[servo_id].table[ADDR_TORQUE_ENABLE])

    def settle(self, quiet_s: float = 0.02, timeout_s: float = 2.0) -> None:
        """Wait until the line has been quiet for ``quiet_s`` (every packet sent so far handled): a packet that
        gets no reply (SYNC_WRITE, the torque-off on close) reaches the emulated servos a moment after the write."""
        start = time.monotonic()
        while time.monotonic() - max(self._last_rx, start) < quiet_s and time.monotonic() < start + timeout_s:
            time.sleep(quiet_s / 4)

    def _take(self, fault: str) -> bool:
        if self._faults.get(fault, 0) > 0:
            self._faults[fault] -= 1
            return True
        return False

    # -- the servo side --------------------------------------------------------------------------------------------

    def _serve(self) -> None:
        reader = PacketReader()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.02)
                if not ready:
                    continue
                with self._lock:  # fd reads and writes only while the pty is known open (fd numbers get reused)
                    if self._closed:
                        return
                    chunk = os.read(self._master, 4096)
            except (OSError, ValueError):  # the pty was closed under us
                return
            self._last_rx = time.monotonic()
            reader.feed(chunk)
            while not self._closed and (packet := reader.next()) is not None:
                for reply in self._handle(packet):
                    if self.reply_delay_s:
                        time.sleep(self.reply_delay_s)
                    with self._lock, contextlib.suppress(OSError):
                        if self._closed:
                            return
                        os.write(self._master, reply)
            self._last_rx = time.monotonic()

    def _handle(self, packet: Packet) -> list[bytes]:
        """The status packets (raw bytes, faults applied) that the chain sends back for one instruction packet."""
        with self._lock:
            if self._take("close"):
                self.close_port()
                return []
            if not packet.crc_ok:
                self.bad_packets += 1
                if packet.servo_id in self.servos and packet.servo_id not in self.disconnected:
                    return self._faulted([(packet.servo_id, ERR_CRC, b"")])
                return []
            self.received.append((packet.servo_id, packet.instruction, packet.params))
            if self._take("drop"):
                return []
            now = time.monotonic()
            for s in self.servos.values():
                s.advance(now, self.speed)
            return self._faulted(self._execute(packet))

    def _execute(self, p: Packet) -> list[tuple[int, int, bytes]]:
        """``(id, error, data)`` of each status the instruction calls for."""
        inst, params, target = p.instruction, p.params, p.servo_id
        live = [i for i in self.servos if i not in self.disconnected]
        if inst == PING:
            ids = live if target == BROADCAST_ID else [target] if target in live else []
            return [(i, 0, self.servos[i].table[0:2] + self.servos[i].table[ADDR_FIRMWARE:ADDR_FIRMWARE + 1])
                    for i in ids]
        if inst == SYNC_WRITE and target == BROADCAST_ID and len(params) >= 4:
            address, size = struct.unpack_from("<HH", params)
            for k in range(4, len(params) - size, size + 1):
                servo_id, data = params[k], params[k + 1:k + 1 + size]
                if servo_id in live and len(data) == size:
                    self._write(servo_id, address, data)
            return []
        if inst == SYNC_READ and target == BROADCAST_ID and len(params) >= 4:
            address, size = struct.unpack_from("<HH", params)
            return [self._read(i, address, size) for i in params[4:] if i in live]
        if target not in live:
            return []
        if inst == READ:
            if len(params) != 4:
                return [(target, ERR_LENGTH, b"")]
            address, size = struct.unpack_from("<HH", params)
            return [self._read(target, address, size)]
        if inst == WRITE:
            if len(params) < 3:
                return [(target, ERR_LENGTH, b"")]
            address = struct.unpack_from("<H", params)[0]
            return [(target, self._write(target, address, params[2:]), b"")]
        return [(target, ERR_INSTRUCTION, b"")]

    def _read(self, servo_id: int, address: int, size: int) -> tuple[int, int, bytes]:
        if size < 1 or address + size > TABLE_SIZE:
            return servo_id, ERR_ACCESS, b""
        return servo_id, 0, bytes(self.servos[servo_id].table[address:address + size])

    def _write(self, servo_id: int, address: int, data: bytes) -> int:
        """Apply a write to one servo's table; returns the error byte it answers with."""
        s = self.servos[servo_id]
        span = range(address, address + len(data))
        if address == ADDR_GOAL_POSITION and len(data) == 4:
            self.goal_log.append((servo_id, struct.unpack("<i", data)[0]))
        if not data or span.stop > TABLE_SIZE or any(a in r for r in _READ_ONLY for a in span):
            return ERR_ACCESS
        if span.start < _EEPROM_END and s.table[ADDR_TORQUE_ENABLE]:
            return ERR_ACCESS
        if address == ADDR_GOAL_POSITION and len(data) == 4:
            goal = struct.unpack("<i", data)[0]
            if not s.get(ADDR_MIN_POSITION) <= goal <= s.get(ADDR_MAX_POSITION):
                return ERR_LIMIT
        s.table[address:address + len(data)] = data
        if servo_id in self.failed:  # after a shutdown the torque stays off until a reboot
            s.table[ADDR_TORQUE_ENABLE] = 0
        return 0

    def _faulted(self, replies: list[tuple[int, int, bytes]]) -> list[bytes]:
        out = []
        for servo_id, error, data in replies:
            if servo_id in self.failed:
                error |= ERROR_ALERT
            if self._take("error"):
                error = self._fault_error
            if self._take("wrong_id"):
                servo_id = (servo_id + 1) % 253
            raw = bytearray(build_status(servo_id, error, data))
            if self._take("crc"):
                raw[-1] ^= 0xFF
            if self._take("truncate"):
                raw = raw[:len(raw) // 2]
            out.append(bytes(raw))
        return out


__all__ = ["FAULTS", "DynamixelEmulator"]

