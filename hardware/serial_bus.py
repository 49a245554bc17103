"""Serial bus servos: Dynamixel Protocol 2.0 over pyserial, byte-exact (X-series control table).

:class:`DynamixelBus` is the ``"serial"`` backend of :class:`facetwin.hardware.bus.ServoBus`: channels are servo ids
(0-252), values are position ticks (``units = "position"``, 4096 per turn, 2048 = centre). The packets are
:mod:`facetwin.hardware.dynamixel`'s, shared with the pty emulator (:mod:`facetwin.hardware.emulator`).

The packets (layout, CRC, byte stuffing) are :mod:`facetwin.hardware.dynamixel`'s.

| instruction | code | parameters | reply |
|---|---|---|---|
| PING | 0x01 | - | model number (2), firmware (1) |
| READ | 0x02 | address (2), length (2) | the data |
| WRITE | 0x03 | address (2), data | empty |
| SYNC_READ | 0x82 | address (2), length (2), id ... (to id 0xFE) | one status packet per id, in that order |
| SYNC_WRITE | 0x83 | address (2), length (2), then id + data per servo (to id 0xFE) | none |

| X-series address | size | use here |
|---|---|---|
| 0 Model Number | 2 | checked by PING on open |
| 9 Return Delay Time | 1 | read on open (2 us units): what a reply costs on the wire (:meth:`DynamixelBus.health_cost_s`) |
| 70 Hardware Error Status | 1 | read when a status carries the hardware alert bit, to name the fault (:data:`HARDWARE_ERRORS`) |
| 64 Torque Enable | 1 | 1 on open (after Goal Position = Present Position: no jump), 0 in relax and close |
| 116 Goal Position | 4 | :meth:`DynamixelBus.write`: one SYNC_WRITE for all ids |
| 132 Present Position | 4 | :meth:`DynamixelBus.read`: one SYNC_READ (or a READ per id) |

Every reply is checked: header, length, CRC, instruction 0x55, the id asked, the data length, and the error byte
(bit 7 = hardware alert, bits 0-6 = Result Fail / Instruction / CRC / Data Range / Data Length / Data Limit /
Access error). Anything wrong, no reply within ``timeout_s``, or a serial I/O failure raises
:class:`facetwin.hardware.bus.BusError` naming the servo and the fault; a hardware alert is named from the servo's
Hardware Error Status (overheating, overload, input voltage, encoder, electrical shock: the servo has switched its
torque off and needs a reboot). There are no retries: the safety layer
decides what a fault means (a clean stop). Servos must answer every instruction (Status Return Level 2, the default).
Before each transaction the input buffer is flushed, so a late reply to an earlier fault cannot pass as this one's.
A SYNC_WRITE gets no reply: a servo that went dead or raised an alert shows at the next read, which is why the
safety layer polls :meth:`DynamixelBus.health` while streaming (a SYNC_READ of a rotating share of the servos,
sized by :meth:`DynamixelBus.health_cost_s` to fit the control period).

Bytes on the wire per 30 Hz tick for the 26 face servos (10 bits per byte; each status also waits the servo's
Return Delay Time, 500 us at the factory setting, 0 after setting address 9 to 0):

| exchange | bytes | 57600 baud (factory) | 1 Mbaud |
|---|---|---|---|
| SYNC_WRITE of 26 goals | 144 | 25.0 ms | 1.4 ms |
| SYNC_READ of 26 positions (request + 26 replies) | 40 + 390 | 74.7 ms | 4.3 ms (+ 13 ms at the factory delay) |

so a 33 ms tick that also reads back needs 1 Mbaud (and preferably Return Delay Time 0).

>>> bus = DynamixelBus("/dev/ttyUSB0", ids=range(1, 27), baudrate=1_000_000)
>>> with bus:
...     bus.write([1, 2], [2048, 2100])
...     bus.read([1, 2])
[2048.0, 2100.0]
"""

from __future__ import annotations

import contextlib
import math
import struct
import termios
import time
from collections.abc import Iterable, Sequence

from facetwin.hardware.bus import BusError, ServoBus, checked_values
from facetwin.hardware.dynamixel import (
    ADDR_GOAL_POSITION,
    ADDR_HARDWARE_ERROR_STATUS,
    ADDR_PRESENT_POSITION,
    ADDR_RETURN_DELAY_TIME,
    ADDR_TORQUE_ENABLE,
    BROADCAST_ID,
    ERROR_ALERT,
    INSTRUCTION_BYTES,
    MAX_ID,
    PING,
    READ,
    STATUS,
    STATUS_BYTES,
    SYNC_READ,
    SYNC_WRITE,
    WRITE,
    Packet,
    PacketReader,
    build_packet,
    describe_error,
    describe_hardware_error,
)

FACTORY_BAUDRATE = 57600  # X-series as shipped; 1 Mbaud leaves room to poll every servo's health each 100 ms
IO_ERRORS = (OSError, termios.error)  # serial.SerialException is an OSError; tcflush on a dead tty raises termios.error


class ServoStatusError(BusError):
    """A servo answered with a non-zero error byte (``servo_id``, ``error``)."""

    def __init__(self, message: str, servo_id: int, error: int) -> None:
        super().__init__(message)
        self.servo_id, self.error = servo_id, error


class DynamixelBus(ServoBus):
    """Dynamixel Protocol 2.0 servos (X-series control table) as a :class:`ServoBus` (see the module docstring).

    ``port``: a device path or pyserial URL (``serial.serial_for_url``), or pass an open ``serial=`` object (any
    with ``read``, ``write``, ``flush``, ``reset_input_buffer``, ``close``). ``ids``: the servos on the chain
    (pinged and torque-enabled on open; the only channels accepted). ``timeout_s``: the wait for each status packet.
    ``limits``: the goal positions this driver ever sends (default the 0-4095 of one turn). ``sync_read``: read
    positions with one SYNC_READ (else one READ per id, for servos without it).
    """

    units = "position"
    name = "serial"

    def __init__(self, port: str | None = None, *, ids: Iterable[int], baudrate: int = FACTORY_BAUDRATE,
                 timeout_s: float = 0.05, serial=None, limits: tuple[int, int] = (0, 4095),
                 sync_read: bool = True) -> None:
        if (port is None) == (serial is None):
            raise ValueError("port: give exactly one of port or serial")
        self.ids = [int(i) for i in ids]
        if not self.ids:
            raise ValueError("ids: at least one servo id")
        for i in self.ids:
            if not 0 <= i <= MAX_ID:
                raise ValueError(f"ids: servo ids are 0-252, got {i}")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"ids: repeated id in {self.ids}")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s: must be > 0, got {timeout_s}")
        if not limits[0] < limits[1]:
            raise ValueError(f"limits: need min < max, got {limits}")
        self.port = port
        self.baudrate = baudrate
        self.timeout_s = float(timeout_s)
        self.limits = (int(limits[0]), int(limits[1]))
        self.use_sync_read = sync_read
        self.model_numbers: dict[int, int] = {}
        self.return_delay_s = 500e-6  # the factory Return Delay Time until open reads the servos' own
        self._ser = serial
        self._own_serial = serial is None
        self._open = False
        self._torque: dict[int, bool] = {}

    # -- wire ------------------------------------------------------------------------------------------------------

    def _send(self, packet: bytes) -> None:
        if self._ser is None:
            raise BusError(f"{self.name}: port is not open")
        try:
            self._ser.reset_input_buffer()  # a late reply to an earlier timeout must not pass as this one's
            self._ser.write(packet)
        except IO_ERRORS as e:
            raise BusError(f"{self.name}: write to {self.port or 'port'} failed: {e}") from e

    def _receive(self, servo_id: int, what: str, allow_alert: bool = False) -> Packet:
        """The next status packet, which must come from ``servo_id``, be intact and carry no error (``allow_alert``:
        except the hardware alert bit alone)."""
        reader = PacketReader()
        deadline = time.monotonic() + self.timeout_s
        while True:
            packet = reader.next()
            if packet is not None:
                break
            if time.monotonic() > deadline:
                got = f"; got {len(reader.buf)} bytes {bytes(reader.buf[:16]).hex(' ')}" if reader.buf else ""
                raise BusError(f"{self.name}: no reply from servo {servo_id} to {what} within "
                               f"{self.timeout_s * 1e3:.0f} ms{got}")
            try:
                chunk = self._ser.read(reader.need())
            except IO_ERRORS as e:
                raise BusError(f"{self.name}: read from {self.port or 'port'} failed: {e}") from e
            reader.feed(chunk)
        if not packet.crc_ok:
            raise BusError(f"{self.name}: corrupted reply (CRC mismatch) from servo {servo_id} to {what}: "
                           f"{packet.raw.hex(' ')}")
        if packet.instruction != STATUS or not packet.params:
            raise BusError(f"{self.name}: reply to {what} is not a status packet: {packet.raw.hex(' ')}")
        if packet.servo_id != servo_id:
            raise BusError(f"{self.name}: servo {servo_id} did not answer {what}: the reply came from servo "
                           f"{packet.servo_id}")
        if packet.error and not (allow_alert and packet.error == ERROR_ALERT):
            raise ServoStatusError(f"{self.name}: servo {servo_id} reports {describe_error(packet.error)} on {what}",
                                   servo_id, packet.error)
        return packet

    def _transact(self, servo_id: int, instruction: int, params: bytes, what: str, n_data: int,
                  allow_alert: bool = False) -> bytes:
        self._send(build_packet(servo_id, instruction, params))
        data = self._receive(servo_id, what, allow_alert).data
        if len(data) != n_data:
            raise BusError(f"{self.name}: servo {servo_id} answered {what} with {len(data)} data bytes, "
                           f"expected {n_data}")
        return data

    # -- instructions ----------------------------------------------------------------------------------------------

    def ping(self, servo_id: int) -> int:
        """PING one servo; returns its model number (1020 = XM430-W350, 1060 = XL430-W250, ...)."""
        data = self._transact(servo_id, PING, b"", "PING", 3)
        return data[0] | data[1] << 8

    def read_register(self, servo_id: int, address: int, size: int, *, allow_alert: bool = False) -> int:
        """READ ``size`` (1, 2 or 4) bytes at ``address``; 4-byte values are signed (as positions are).
        ``allow_alert``: accept a reply that carries the hardware alert bit (reading what the alert is)."""
        data = self._transact(servo_id, READ, struct.pack("<HH", address, size), f"READ {address}", size,
                              allow_alert)
        return struct.unpack({1: "<B", 2: "<H", 4: "<i"}[size], data)[0]

    def hardware_error_status(self, servo_id: int) -> int:
        """Hardware Error Status (address 70) of a servo: the bits of :data:`HARDWARE_ERRORS`."""
        return self.read_register(servo_id, ADDR_HARDWARE_ERROR_STATUS, 1, allow_alert=True)

    def write_register(self, servo_id: int, address: int, size: int, value: int) -> None:
        """WRITE ``size`` (1, 2 or 4) bytes at ``address`` and check the servo's acknowledgement."""
        data = struct.pack({1: "<B", 2: "<H", 4: "<i"}[size], value)
        self._transact(servo_id, WRITE, struct.pack("<H", address) + data, f"WRITE {address}", 0)

    def sync_write(self, address: int, size: int, values: dict[int, int]) -> None:
        """SYNC_WRITE one register of many servos in one broadcast packet (no reply)."""
        fmt = {1: "<B", 2: "<H", 4: "<i"}[size]
        params = bytearray(struct.pack("<HH", address, size))
        for servo_id, value in values.items():
            params += bytes([servo_id]) + struct.pack(fmt, value)
        self._send(build_packet(BROADCAST_ID, SYNC_WRITE, params))

    def sync_read(self, address: int, size: int, ids: Sequence[int]) -> list[int]:
        """SYNC_READ one 4-byte (signed) register of many servos: one packet out, one status per id back in order."""
        self._send(build_packet(BROADCAST_ID, SYNC_READ, struct.pack("<HH", address, size) + bytes(ids)))
        values = []
        status_error: ServoStatusError | None = None
        for servo_id in ids:
            try:
                data = self._receive(servo_id, f"SYNC_READ {address}").data
            except ServoStatusError as e:  # take the other servos' replies off the line, then report the first
                status_error = status_error or e
                continue
            if len(data) != size:
                raise BusError(f"{self.name}: servo {servo_id} answered SYNC_READ {address} with {len(data)} data "
                               f"bytes, expected {size}")
            values.append(struct.unpack("<i", data)[0])
        if status_error is not None:
            raise status_error
        return values

    # -- ServoBus --------------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the port, PING every id, set Goal Position = Present Position (no jump) and enable torque."""
        if self._open:
            return
        if self._ser is None:
            import serial

            try:
                self._ser = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=self.timeout_s,
                                                  write_timeout=self.timeout_s)
            except (OSError, ValueError) as e:
                self._ser = None
                raise BusError(f"{self.name}: cannot open {self.port}: {e}") from e
        self._open = True
        try:
            for servo_id in self.ids:
                self.model_numbers[servo_id] = self.ping(servo_id)
            self.return_delay_s = 2e-6 * max(self.read_register(i, ADDR_RETURN_DELAY_TIME, 1) for i in self.ids)
            for servo_id in self.ids:
                here = self.read_register(servo_id, ADDR_PRESENT_POSITION, 4)
                self.write_register(servo_id, ADDR_GOAL_POSITION, 4, here)
                self.write_register(servo_id, ADDR_TORQUE_ENABLE, 1, 1)
                self._torque[servo_id] = True
        except BusError:
            with contextlib.suppress(BusError):  # the first fault is the one to report
                self.close()
            raise

    def close(self) -> None:
        """Torque off on every id (one SYNC_WRITE), then close the port (if this bus opened it). Idempotent; the
        port is closed even when the torque-off write fails (then :class:`BusError` is raised)."""
        if not self._open:
            return
        self._open = False
        try:
            self.sync_write(ADDR_TORQUE_ENABLE, 1, {i: 0 for i in self.ids})
            self._torque = {i: False for i in self.ids}
            try:
                self._ser.flush()  # tcdrain: the torque-off packet leaves before the port closes
            except IO_ERRORS as e:
                raise BusError(f"{self.name}: flush of {self.port or 'port'} failed: {e}") from e
        finally:
            if self._own_serial and self._ser is not None:
                with contextlib.suppress(*IO_ERRORS):  # a port already gone has nothing left to release
                    self._ser.close()
                self._ser = None

    def _check(self, channels: Sequence[int]) -> list[int]:
        if not self._open:
            raise BusError(f"{self.name}: bus is not open")
        chans = [int(c) for c in channels]
        for c in chans:
            if c not in self._torque:
                raise ValueError(f"channels: servo {c} is not in ids {self.ids}")
        if len(set(chans)) != len(chans):
            raise ValueError(f"channels: repeated id in {chans}")
        return chans

    def write(self, channels: Sequence[int], values: Sequence[float]) -> None:
        """Goal positions (ticks) in one SYNC_WRITE; relaxed servos get torque back first."""
        vals = checked_values(channels, values, self.limits, "servo {c} goal {v} outside limits [{lo}, {hi}]")
        chans = self._check(channels)
        if not chans:
            return
        limp = [c for c in chans if not self._torque[c]]
        if limp:
            self.sync_write(ADDR_TORQUE_ENABLE, 1, {c: 1 for c in limp})
            for c in limp:
                self._torque[c] = True
        self.sync_write(ADDR_GOAL_POSITION, 4, {c: round(v) for c, v in zip(chans, vals)})

    def read(self, channels: Sequence[int]) -> list[float | None]:
        """Present positions (ticks) by SYNC_READ, or one READ per id with ``sync_read=False``. A servo in a
        hardware alert raises :class:`BusError` naming its Hardware Error Status."""
        chans = self._check(channels)
        if not chans:
            return []
        try:
            if self.use_sync_read:
                return [float(v) for v in self.sync_read_positions(chans)]
            return [float(self.read_register(c, ADDR_PRESENT_POSITION, 4)) for c in chans]
        except ServoStatusError as e:
            if not e.error & ERROR_ALERT:
                raise
            try:
                status = self.hardware_error_status(e.servo_id)
            except BusError:
                raise e from None
            if not status:  # the alert is gone already: report the status as it came
                raise e from None
            raise ServoStatusError(f"{self.name}: servo {e.servo_id} hardware alert: {describe_hardware_error(status)}"
                                   " (it has switched its torque off; power-cycle or reboot it)",
                                   e.servo_id, e.error) from e

    def health(self, channels: Sequence[int]) -> list[float | None]:
        """Present positions of ``channels`` (:meth:`read`): a dead servo (no reply), a corrupted reply or a
        servo's error status (hardware alerts named) raise :class:`BusError`."""
        return self.read(channels)

    def health_cost_s(self, n: int) -> float:
        """Seconds on the wire for :meth:`health` of ``n`` servos at this baud rate and Return Delay Time."""
        byte_s = 10.0 / self.baudrate
        if self.use_sync_read:  # request: address, length, n ids; n statuses with 4 data bytes
            return (INSTRUCTION_BYTES + 4 + n + n * (STATUS_BYTES + 4)) * byte_s + n * self.return_delay_s
        return n * ((INSTRUCTION_BYTES + 4 + STATUS_BYTES + 4) * byte_s + self.return_delay_s)

    def sync_read_positions(self, ids: Sequence[int]) -> list[int]:
        """Present Position of many servos by one SYNC_READ."""
        return self.sync_read(ADDR_PRESENT_POSITION, 4, ids)

    def relax(self, channels: Sequence[int]) -> None:
        """Torque off (address 64 = 0) on each id, in one SYNC_WRITE (it reaches every servo even if one is dead)."""
        chans = self._check(channels)
        if chans:
            self.sync_write(ADDR_TORQUE_ENABLE, 1, {c: 0 for c in chans})
            for c in chans:
                self._torque[c] = False


__all__ = ["FACTORY_BAUDRATE", "IO_ERRORS", "DynamixelBus", "ServoStatusError"]
