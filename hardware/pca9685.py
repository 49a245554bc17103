"""PCA9685 PWM boards over I2C, at the register level: the hobby servos of the physical face.

The physical robot drives its servos from two PCA9685 boards (I2C addresses 0x41 and 0x42, 16 channels each). One
:class:`PCA9685Bus` is one board (``name = "pca9685@0x41"``, as in the calibration file); two boards are two buses on
the same I2C adapter. Commands are pulse widths in microseconds (``units = "us"``), turned into 12-bit PWM ticks
from the *actual* frame period that the prescaler gives (not the nominal frequency).

| register | address | what this driver writes |
|---|---|---|
| ``MODE1`` | 0x00 | open: ``SLEEP`` (to set the prescaler), then ``AI`` (auto-increment) + ``RESTART``; close: ``SLEEP`` |
| ``MODE2`` | 0x01 | ``OUTDRV`` (totem-pole outputs, as servo breakouts are wired) |
| ``LEDn_ON_L/H``, ``LEDn_OFF_L/H`` | 0x06 + 4n .. 0x09 + 4n | ``ON = 0``, ``OFF = ticks``; relax: ``OFF_H`` bit 4 (full off) |
| ``ALL_LED_ON/OFF_L/H`` | 0xFA .. 0xFD | open and close: every channel full off |
| ``PRESCALE`` | 0xFE | ``round(25 MHz / (4096 f)) - 1`` (121 at 50 Hz), read back to check the board answers |

:meth:`PCA9685Bus.health` (polled by the safety layer while streaming) reads ``MODE1``: an I2C failure means the
board is gone; ``SLEEP`` set means it lost power and reset (its outputs are off: the servos went limp while every
write still succeeds). Either raises :class:`facetwin.hardware.bus.BusError`.

| quantity | at 50 Hz with the 25 MHz internal oscillator |
|---|---|
| prescale | 121 |
| actual PWM frequency | 25e6 / (4096 * 122) = 50.03 Hz |
| frame period | 19988.5 us (4096 ticks, 4.88 us each) |
| 1500 us | 307 ticks (1498.2 us) |

Contiguous channels of one :meth:`PCA9685Bus.write` go out as one auto-increment block write (up to 8 channels =
32 bytes per SMBus transfer). The chip cannot report servo positions, so :meth:`PCA9685Bus.read` returns the last
pulse width written (quantized to ticks; ``None`` where never written since open). Any I2C failure (``OSError``:
NACK, bus busy, adapter gone) is raised as :class:`facetwin.hardware.bus.BusError` naming the address and register.
Pulse widths outside ``limits_us`` (default 500-2500 us, the hobby-servo range) are refused with ``ValueError``: the
safety layer clamps to the calibrated range; this is the last line of defence against a programming error.

:class:`FakeI2C` is a register-level PCA9685 double for tests and dry runs without a board: a register file per
address with the chip's write rules (PRESCALE only while asleep, auto-increment only with ``MODE1.AI``,
``ALL_LED`` writes reaching every channel), a log of every transfer, and injectable ``OSError`` failures.

>>> i2c = FakeI2C(addresses=(0x41, 0x42))
>>> with PCA9685Bus(0x41, i2c=i2c) as board:
...     board.write([0, 1], [1500.0, 1200.0])
...     i2c.pulse_us(0x41, 0)
1498.16
"""

from __future__ import annotations

import errno
import math
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

from facetwin.hardware.bus import BusError, ServoBus, checked_values

OSC_HZ = 25_000_000.0
I2C_HZ = 100_000.0  # standard-mode I2C clock: what a health read is budgeted at
N_CHANNELS = 16
TICKS = 4096

MODE1 = 0x00
MODE2 = 0x01
LED0_ON_L = 0x06
ALL_LED_ON_L = 0xFA
ALL_LED_OFF_H = 0xFD
PRESCALE = 0xFE

MODE1_RESTART = 0x80
MODE1_AI = 0x20
MODE1_SLEEP = 0x10
MODE1_ALLCALL = 0x01
MODE2_OUTDRV = 0x04
FULL_BIT = 0x10  # bit 4 of LEDn_ON_H (full on) and LEDn_OFF_H (full off)
_BLOCK_CHANNELS = 8  # 8 channels x 4 registers = 32 bytes, the SMBus block limit


class I2C(Protocol):
    """What :class:`PCA9685Bus` needs from an I2C adapter (``smbus2.SMBus`` or :class:`FakeI2C`)."""

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None: ...


def prescale_for(freq_hz: float, osc_hz: float = OSC_HZ) -> int:
    """The PRESCALE register value for a PWM frequency: ``round(osc / (4096 f)) - 1``, which must lie in 3..255."""
    if not (isinstance(freq_hz, (int, float)) and math.isfinite(freq_hz) and freq_hz > 0):
        raise ValueError(f"freq_hz: must be a positive number, got {freq_hz!r}")
    value = round(osc_hz / (TICKS * freq_hz)) - 1
    if not 3 <= value <= 255:
        lo, hi = osc_hz / (TICKS * 256), osc_hz / (TICKS * 4)
        raise ValueError(f"freq_hz: {freq_hz} Hz needs prescale {value}, outside 3..255 ({lo:.1f}-{hi:.0f} Hz)")
    return value


def frame_period_us(prescale: int, osc_hz: float = OSC_HZ) -> float:
    """The actual PWM frame period (microseconds) that a PRESCALE value gives."""
    return TICKS * (prescale + 1) / osc_hz * 1e6


def us_to_ticks(pulse_us: float, period_us: float) -> int:
    """Pulse width (us) -> the OFF count in 0..4095 (ON at 0)."""
    return min(TICKS - 1, max(0, round(pulse_us / period_us * TICKS)))


class PCA9685Bus(ServoBus):
    """One PCA9685 board as a :class:`ServoBus` (see the module docstring).

    ``address``: the board's 7-bit I2C address (0x40-0x7F). ``i2c``: an SMBus-like adapter (default
    ``smbus2.SMBus(i2c_bus)``, opened in :meth:`open` and closed in :meth:`close`; an injected one is left open).
    ``freq_hz``: PWM frequency (50 Hz for analog hobby servos). ``limits_us``: pulse widths this driver ever sends.
    """

    units = "us"

    def __init__(self, address: int = 0x41, *, i2c: I2C | None = None, i2c_bus: int = 1, freq_hz: float = 50.0,
                 osc_hz: float = OSC_HZ, limits_us: tuple[float, float] = (500.0, 2500.0)) -> None:
        if not (isinstance(address, int) and 0x40 <= address <= 0x7F):
            raise ValueError(f"address: a PCA9685 answers at 0x40-0x7F, got {address!r}")
        self.address = address
        self.name = f"pca9685@0x{address:02x}"
        self.prescale = prescale_for(freq_hz, osc_hz)
        self.period_us = frame_period_us(self.prescale, osc_hz)
        lo, hi = (float(v) for v in limits_us)
        if not 0.0 < lo < hi < self.period_us:
            raise ValueError(f"limits_us: need 0 < min < max < frame period {self.period_us:.0f} us, got {limits_us}")
        self.limits_us = (lo, hi)
        #: the pulse resolution (one of 4096 ticks per frame): the safety layer rounds to it inside the safe range
        self.quantum = self.period_us / TICKS
        self._i2c = i2c
        self._own_i2c = i2c is None
        self._i2c_bus = i2c_bus
        self._open = False
        self._pulse: list[float | None] = [None] * N_CHANNELS

    # -- I2C with errors named -------------------------------------------------------------------------------------

    def _write_byte(self, register: int, value: int) -> None:
        try:
            self._i2c.write_byte_data(self.address, register, value)
        except OSError as e:
            raise BusError(f"{self.name}: I2C write of register 0x{register:02x} failed: {e}") from e

    def _read_byte(self, register: int) -> int:
        try:
            return self._i2c.read_byte_data(self.address, register)
        except OSError as e:
            raise BusError(f"{self.name}: I2C read of register 0x{register:02x} failed: {e}") from e

    def _write_block(self, register: int, data: list[int]) -> None:
        try:
            self._i2c.write_i2c_block_data(self.address, register, data)
        except OSError as e:
            raise BusError(f"{self.name}: I2C block write at register 0x{register:02x} failed: {e}") from e

    # -- ServoBus --------------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Wake the board at ``freq_hz`` with every channel off and auto-increment on; checks PRESCALE reads back."""
        if self._open:
            return
        if self._i2c is None:
            import smbus2

            try:
                self._i2c = smbus2.SMBus(self._i2c_bus)
            except OSError as e:
                raise BusError(f"{self.name}: cannot open I2C bus {self._i2c_bus}: {e}") from e
        self._write_byte(ALL_LED_OFF_H, FULL_BIT)  # outputs off before anything else
        self._write_byte(MODE2, MODE2_OUTDRV)
        self._write_byte(MODE1, MODE1_SLEEP | MODE1_ALLCALL)  # PRESCALE is writable only while asleep
        self._write_byte(PRESCALE, self.prescale)
        self._write_byte(MODE1, MODE1_AI | MODE1_ALLCALL)
        time.sleep(0.0005)  # oscillator start-up (500 us max)
        self._write_byte(MODE1, MODE1_RESTART | MODE1_AI | MODE1_ALLCALL)  # writing 1 clears RESTART
        got = self._read_byte(PRESCALE)
        if got != self.prescale:
            raise BusError(f"{self.name}: PRESCALE reads back {got}, wrote {self.prescale} (is this a PCA9685?)")
        self._pulse = [None] * N_CHANNELS
        self._open = True

    def close(self) -> None:
        """Every channel full off (``ALL_LED_OFF``), the oscillator asleep, the adapter closed if this bus opened it.

        Idempotent. The board is marked closed even when the I2C writes fail (then :class:`BusError` is raised)."""
        if not self._open:
            return
        self._open = False
        try:
            self._write_byte(ALL_LED_OFF_H, FULL_BIT)
            self._write_byte(MODE1, MODE1_SLEEP | MODE1_AI | MODE1_ALLCALL)
        finally:
            if self._own_i2c and self._i2c is not None:
                self._i2c.close()
                self._i2c = None

    def _check_open(self) -> None:
        if not self._open:
            raise BusError(f"{self.name}: bus is not open")

    def _channels(self, channels: Iterable[int]) -> list[int]:
        chans = [int(c) for c in channels]
        for c in chans:
            if not 0 <= c < N_CHANNELS:
                raise ValueError(f"channels: {self.name} has channels 0-15, got {c}")
        if len(set(chans)) != len(chans):
            raise ValueError(f"channels: repeated channel in {chans}")
        return chans

    def write(self, channels: Sequence[int], values: Sequence[float]) -> None:
        """Set pulse widths (us): ``LEDn_ON = 0``, ``LEDn_OFF = ticks``; contiguous channels in one block write."""
        chans = self._channels(channels)
        vals = checked_values(chans, values, self.limits_us, "channel {c} pulse {v} us outside limits_us [{lo}, {hi}]")
        self._check_open()
        ticks = {c: us_to_ticks(v, self.period_us) for c, v in zip(chans, vals)}
        for run in _runs(sorted(ticks)):
            data: list[int] = []
            for c in run:
                data += [0, 0, ticks[c] & 0xFF, ticks[c] >> 8]
            self._write_block(LED0_ON_L + 4 * run[0], data)
            for c in run:
                self._pulse[c] = ticks[c] * self.period_us / TICKS

    def read(self, channels: Sequence[int]) -> list[float | None]:
        """The last pulse width written to each channel (us, as sent in ticks); ``None`` where never written."""
        return [self._pulse[c] for c in self._channels(channels)]

    def health(self, channels: Sequence[int]) -> list[float | None]:
        """The board answers and has not reset: ``MODE1`` read back (see the module docstring); then :meth:`read`."""
        self._check_open()
        mode1 = self._read_byte(MODE1)
        if mode1 & MODE1_SLEEP:
            raise BusError(f"{self.name}: the board has reset (MODE1 0x{mode1:02x}: asleep, every output off; "
                           "a power glitch?)")
        return self.read(channels)

    def health_cost_s(self, n: int) -> float:
        """One byte read on I2C (address + register, repeated start, address + data: 4 bytes of 9 bits)."""
        return 4 * 9 / I2C_HZ

    def relax(self, channels: Sequence[int]) -> None:
        """PWM full off on each channel (``LEDn_OFF_H`` bit 4): no pulses, the servo goes limp."""
        chans = self._channels(channels)
        self._check_open()
        for c in chans:
            self._write_byte(LED0_ON_L + 4 * c + 3, FULL_BIT)


def _runs(chans: list[int]) -> list[list[int]]:
    """Sorted channels -> runs of consecutive channels, each at most 8 long (one 32-byte block write)."""
    runs: list[list[int]] = []
    for c in chans:
        if runs and c == runs[-1][-1] + 1 and len(runs[-1]) < _BLOCK_CHANNELS:
            runs[-1].append(c)
        else:
            runs.append([c])
    return runs


class FakeI2C:
    """A register-level double of PCA9685 boards on one I2C adapter (for tests and dry runs without hardware).

    | attribute / method | meaning |
    |---|---|
    | ``registers[addr]`` | the 256-byte register file of the board at ``addr`` (power-on: ``MODE1 = 0x11``, ``PRESCALE = 0x1E``, all channels full off) |
    | ``log`` | every transfer: ``("w", addr, reg, [bytes])``, ``("r", addr, reg, [byte])`` |
    | ``fail(count, after)`` | the ``count`` transfers after the next ``after`` ones raise ``OSError`` (EIO) |
    | ``power_cycle(addr)`` | the board loses power and comes back in its power-on state (a brown-out) |
    | ``pulse_us(addr, ch)`` | the pulse width channel ``ch`` outputs (0 when full off or asleep, the frame period when full on) |

    Chip rules modelled: a transfer to an absent address raises ``OSError`` (EREMOTEIO, as a NACK does through
    smbus2); PRESCALE writes are ignored unless ``MODE1.SLEEP`` is set; a block write auto-increments only with
    ``MODE1.AI`` (else every byte lands on the first register); writes to ``ALL_LED_*`` reach every channel's
    registers and those registers read 0.
    """

    def __init__(self, addresses: Sequence[int] = (0x41, 0x42), osc_hz: float = OSC_HZ) -> None:
        self.osc_hz = osc_hz
        self.registers: dict[int, bytearray] = {}
        for a in addresses:
            self.registers[a] = bytearray(256)
            self.power_cycle(a)
        self.log: list[tuple[str, int, int, list[int]]] = []
        self.closed = False
        self._fail_after = 0
        self._fail_count = 0

    def power_cycle(self, addr: int) -> None:
        """The board at ``addr`` loses power and comes back: its registers return to the power-on state (asleep,
        every channel full off)."""
        regs = self.registers[addr]
        regs[:] = bytearray(256)
        regs[MODE1] = MODE1_SLEEP | MODE1_ALLCALL
        regs[PRESCALE] = 0x1E
        for c in range(N_CHANNELS):
            regs[LED0_ON_L + 4 * c + 3] = FULL_BIT

    def fail(self, count: int = 1, after: int = 0) -> None:
        """Make ``count`` transfers fail with ``OSError`` after ``after`` more succeed."""
        self._fail_after, self._fail_count = after, count

    def _transfer(self, addr: int, register: int) -> bytearray:
        if self._fail_count > 0:
            if self._fail_after > 0:
                self._fail_after -= 1
            else:
                self._fail_count -= 1
                raise OSError(errno.EIO, "Input/output error (injected)")
        if addr not in self.registers:
            raise OSError(errno.EREMOTEIO, f"Remote I/O error (no device at 0x{addr:02x})")
        if not 0 <= register <= 0xFF:
            raise ValueError(f"register: 0x{register:x} is not a byte")
        return self.registers[addr]

    def _store(self, regs: bytearray, register: int, value: int) -> None:
        if not 0 <= value <= 0xFF:
            raise ValueError(f"value: {value} is not a byte")
        if register == PRESCALE and not regs[MODE1] & MODE1_SLEEP:
            return
        if register == MODE1 and value & MODE1_RESTART:
            value &= ~MODE1_RESTART  # writing 1 clears RESTART
        if ALL_LED_ON_L <= register <= ALL_LED_OFF_H:
            for c in range(N_CHANNELS):
                regs[LED0_ON_L + 4 * c + (register - ALL_LED_ON_L)] = value
            return
        regs[register] = value

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        regs = self._transfer(i2c_addr, register)
        self.log.append(("w", i2c_addr, register, [value]))
        self._store(regs, register, value)

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None:
        regs = self._transfer(i2c_addr, register)
        if len(data) > 32:
            raise ValueError(f"data: SMBus block writes carry at most 32 bytes, got {len(data)}")
        self.log.append(("w", i2c_addr, register, list(data)))
        step = 1 if regs[MODE1] & MODE1_AI else 0
        for k, value in enumerate(data):
            self._store(regs, (register + step * k) & 0xFF, value)

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        regs = self._transfer(i2c_addr, register)
        value = 0 if ALL_LED_ON_L <= register <= ALL_LED_OFF_H else regs[register]
        self.log.append(("r", i2c_addr, register, [value]))
        return value

    def close(self) -> None:
        self.closed = True

    def channel(self, addr: int, ch: int) -> tuple[int, int, bool, bool]:
        """``(on, off, full_on, full_off)`` of a channel, decoded from its four registers."""
        r = self.registers[addr][LED0_ON_L + 4 * ch: LED0_ON_L + 4 * ch + 4]
        return r[0] | (r[1] & 0x0F) << 8, r[2] | (r[3] & 0x0F) << 8, bool(r[1] & FULL_BIT), bool(r[3] & FULL_BIT)

    def pulse_us(self, addr: int, ch: int) -> float:
        """The high time per frame that channel ``ch`` of board ``addr`` outputs, in microseconds."""
        regs = self.registers[addr]
        period = frame_period_us(regs[PRESCALE], self.osc_hz)
        on, off, full_on, full_off = self.channel(addr, ch)
        if full_off or regs[MODE1] & MODE1_SLEEP:
            return 0.0
        if full_on:
            return period
        return ((off - on) % TICKS) * period / TICKS


__all__ = ["FakeI2C", "PCA9685Bus", "frame_period_us", "prescale_for", "us_to_ticks"]
