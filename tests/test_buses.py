"""The servo bus backends speak the real protocols: PCA9685 registers, Dynamixel Protocol 2.0 bytes over a pty."""

import math
import random
import time

import pytest
import serial

from facetwin.hardware.bus import BusError
from facetwin.hardware.dynamixel import (
    ADDR_GOAL_POSITION,
    ADDR_TORQUE_ENABLE,
    PacketReader,
    build_packet,
    build_status,
    crc16,
    describe_error,
    stuff,
    unstuff,
)
from facetwin.hardware.emulator import DynamixelEmulator
from facetwin.hardware.pca9685 import (
    ALL_LED_OFF_H,
    FULL_BIT,
    LED0_ON_L,
    MODE1,
    MODE1_AI,
    MODE1_ALLCALL,
    MODE1_SLEEP,
    MODE2,
    MODE2_OUTDRV,
    PRESCALE,
    FakeI2C,
    PCA9685Bus,
    frame_period_us,
    prescale_for,
    us_to_ticks,
)
from facetwin.hardware.serial_bus import DynamixelBus

IDS = list(range(1, 27))


# -- PCA9685 ---------------------------------------------------------------------------------------------------------

def test_prescale_and_frame_period():
    assert prescale_for(50) == 121  # round(25e6 / (4096 * 50)) - 1 = round(122.07) - 1
    assert prescale_for(60) == 101
    assert frame_period_us(121) == pytest.approx(19988.48)  # 50.03 Hz actual
    assert us_to_ticks(1500, frame_period_us(121)) == 307
    assert us_to_ticks(1000, frame_period_us(121)) == 205
    assert us_to_ticks(2000, frame_period_us(121)) == 410
    for bad in (10, 2000, 0, math.nan):
        with pytest.raises(ValueError, match="freq_hz"):
            prescale_for(bad)


def test_pca9685_open_sets_registers():
    i2c = FakeI2C()
    with PCA9685Bus(0x41, i2c=i2c) as board:
        regs = i2c.registers[0x41]
        assert board.name == "pca9685@0x41" and board.units == "us"
        assert regs[PRESCALE] == 121  # accepted: the fake ignores PRESCALE unless MODE1.SLEEP, so it was asleep
        assert regs[MODE1] == MODE1_AI | MODE1_ALLCALL  # awake, auto-increment, RESTART cleared
        assert regs[MODE2] == MODE2_OUTDRV
        assert all(i2c.channel(0x41, c)[3] for c in range(16))  # every channel full off
        assert board.read(list(range(16))) == [None] * 16
        assert i2c.registers[0x42][MODE1] == MODE1_SLEEP | MODE1_ALLCALL  # the other board untouched
    assert not i2c.closed  # an injected adapter is the caller's


def test_pca9685_pulse_width_registers():
    i2c = FakeI2C()
    with PCA9685Bus(0x41, i2c=i2c) as board:
        board.write([0, 1, 2, 5], [1500.0, 1000.0, 2000.0, 1234.5])
        # LEDn at 0x06 + 4n: ON_L, ON_H, OFF_L, OFF_H; 307 = 0x133
        assert list(i2c.registers[0x41][LED0_ON_L:LED0_ON_L + 4]) == [0x00, 0x00, 0x33, 0x01]
        assert i2c.channel(0x41, 1) == (0, 205, False, False)
        assert i2c.channel(0x41, 2) == (0, 410, False, False)
        assert i2c.channel(0x41, 5)[1] == round(1234.5 / 19988.48 * 4096) == 253
        assert i2c.pulse_us(0x41, 0) == pytest.approx(1498.16)
        assert board.read([0, 1, 2, 3]) == pytest.approx([1498.16, 1000.4, 2000.8, None])
        # contiguous channels 0-2 in one auto-increment block, channel 5 alone
        blocks = [(reg, len(data)) for kind, addr, reg, data in i2c.log[-2:]]
        assert blocks == [(0x06, 12), (0x06 + 4 * 5, 4)]
        i2c.log.clear()
        board.write(list(range(16)), [1500.0] * 16)
        assert [(reg, len(data)) for _, _, reg, data in i2c.log] == [(0x06, 32), (0x26, 32)]  # SMBus max 32 bytes
        assert all(i2c.channel(0x41, c) == (0, 307, False, False) for c in range(16))


def test_pca9685_relax_is_full_off_and_close_turns_all_off():
    i2c = FakeI2C()
    board = PCA9685Bus(0x42, i2c=i2c)
    board.open()
    board.write([3, 4], [1500.0, 1600.0])
    board.relax([3])
    assert i2c.channel(0x42, 3)[3] and i2c.pulse_us(0x42, 3) == 0.0
    assert i2c.log[-1] == ("w", 0x42, LED0_ON_L + 4 * 3 + 3, [FULL_BIT])
    assert i2c.pulse_us(0x42, 4) == pytest.approx(1600.0, abs=2.5)  # one tick is 4.88 us
    board.write([3], [1500.0])  # a new pulse clears full off
    assert i2c.channel(0x42, 3) == (0, 307, False, False)
    board.close()
    assert ("w", 0x42, ALL_LED_OFF_H, [FULL_BIT]) in i2c.log
    assert all(i2c.channel(0x42, c)[3] for c in range(16))
    assert i2c.registers[0x42][MODE1] & MODE1_SLEEP
    n = len(i2c.log)
    board.close()  # idempotent
    assert len(i2c.log) == n
    with pytest.raises(BusError, match="not open"):
        board.write([0], [1500.0])


def test_pca9685_refuses_bad_values_before_the_bus():
    i2c = FakeI2C()
    with PCA9685Bus(0x41, i2c=i2c) as board:
        n = len(i2c.log)
        for chans, vals, field in (([0], [2600.0], "values"), ([0], [math.nan], "values"), ([0], [400.0], "values"),
                                   ([16], [1500.0], "channels"), ([0, 0], [1500.0, 1500.0], "channels"),
                                   ([0, 1], [1500.0], "values")):
            with pytest.raises(ValueError, match=field):
                board.write(chans, vals)
        assert len(i2c.log) == n  # nothing reached the chip
    with pytest.raises(ValueError, match="address"):
        PCA9685Bus(0x20, i2c=i2c)
    with pytest.raises(ValueError, match="limits_us"):
        PCA9685Bus(0x41, i2c=i2c, limits_us=(2000.0, 1000.0))


def test_pca9685_i2c_errors_are_bus_errors():
    i2c = FakeI2C(addresses=(0x41,))
    with pytest.raises(BusError, match=r"pca9685@0x42.*register 0xfd"):
        PCA9685Bus(0x42, i2c=i2c).open()  # no board there: NACK
    board = PCA9685Bus(0x41, i2c=i2c)
    board.open()
    i2c.fail(count=1)
    with pytest.raises(BusError, match=r"pca9685@0x41: I2C block write at register 0x06"):
        board.write([0], [1500.0])
    board.write([0], [1500.0])  # the adapter recovers
    i2c.fail(count=1)
    with pytest.raises(BusError, match="register 0x09"):
        board.relax([0])
    i2c.fail(count=5)
    with pytest.raises(BusError):
        board.close()
    board.close()  # closed anyway: a second close is a no-op
    i2c.fail(count=1, after=3)  # fails during open, after a few writes
    with pytest.raises(BusError):
        PCA9685Bus(0x41, i2c=i2c).open()


def test_fake_i2c_models_chip_rules():
    i2c = FakeI2C()
    i2c.write_byte_data(0x41, PRESCALE, 50)  # awake? no: power-on MODE1 has SLEEP, so this is accepted
    assert i2c.registers[0x41][PRESCALE] == 50
    i2c.write_byte_data(0x41, MODE1, 0x00)
    i2c.write_byte_data(0x41, PRESCALE, 121)  # blocked while awake
    assert i2c.registers[0x41][PRESCALE] == 50
    i2c.write_i2c_block_data(0x41, LED0_ON_L, [1, 2, 3, 4])  # no auto-increment: all bytes land on one register
    assert list(i2c.registers[0x41][LED0_ON_L:LED0_ON_L + 4]) == [4, 0, 0, FULL_BIT]
    assert i2c.read_byte_data(0x41, ALL_LED_OFF_H) == 0  # ALL_LED registers read 0


# -- Dynamixel Protocol 2.0: packets ---------------------------------------------------------------------------------

# Examples from the ROBOTIS Dynamixel Protocol 2.0 e-manual.
EMANUAL = [
    ("PING id 1", build_packet(1, 0x01), "FF FF FD 00 01 03 00 01 19 4E"),
    ("PING status", build_status(1, 0, bytes([0x06, 0x04, 0x26])), "FF FF FD 00 01 07 00 55 00 06 04 26 65 5D"),
    ("READ 132 x4", build_packet(1, 0x02, bytes([0x84, 0x00, 0x04, 0x00])),
     "FF FF FD 00 01 07 00 02 84 00 04 00 1D 15"),
    ("READ status", build_status(1, 0, bytes([0xA6, 0, 0, 0])), "FF FF FD 00 01 08 00 55 00 A6 00 00 00 8C C0"),
    ("WRITE 116 = 512", build_packet(1, 0x03, bytes([0x74, 0x00, 0x00, 0x02, 0x00, 0x00])),
     "FF FF FD 00 01 09 00 03 74 00 00 02 00 00 CA 89"),
    ("SYNC_READ 132 ids 1,2", build_packet(0xFE, 0x82, bytes([0x84, 0x00, 0x04, 0x00, 0x01, 0x02])),
     "FF FF FD 00 FE 09 00 82 84 00 04 00 01 02 CE FA"),
    ("SYNC_WRITE 116 ids 1,2", build_packet(0xFE, 0x83, bytes([0x74, 0, 4, 0, 1, 0x96, 0, 0, 0, 2, 0xAA, 0, 0, 0])),
     "FF FF FD 00 FE 11 00 83 74 00 04 00 01 96 00 00 00 02 AA 00 00 00 82 87"),
]


@pytest.mark.parametrize("what,built,reference", EMANUAL, ids=[e[0] for e in EMANUAL])
def test_packets_match_the_emanual(what, built, reference):
    assert built == bytes.fromhex(reference)
    assert crc16(built[:-2]) == built[-2] | built[-1] << 8


def test_crc16_check_value():
    assert crc16(b"123456789") == 0xFEE8  # CRC-16/BUYPASS (poly 0x8005, init 0): the standard check value


def test_byte_stuffing():
    assert stuff(bytes.fromhex("03 FF FF FD 00")) == bytes.fromhex("03 FF FF FD FD 00")
    assert stuff(bytes.fromhex("FF FF FD FF FF FD")) == bytes.fromhex("FF FF FD FD FF FF FD FD")
    assert unstuff(bytes.fromhex("FF FF FD FD FD")) == bytes.fromhex("FF FF FD FD")
    rng = random.Random(0)
    for _ in range(3000):
        body = bytes(rng.choice((0xFF, 0xFD, 0x00, 0x55)) for _ in range(rng.randrange(40)))
        s = stuff(body)
        assert unstuff(s) == body
        assert b"\xff\xff\xfd\x00" not in s  # a header never appears inside a stuffed body
    # a WRITE whose data holds FF FF FD: LEN counts the stuffed bytes, the CRC covers them, parsing restores them
    packet = build_packet(3, 0x03, bytes([0x74, 0x00, 0xFF, 0xFF, 0xFD, 0x00]))
    assert packet[5:7] == bytes([10, 0]) and packet[7:15] == bytes.fromhex("03 74 00 FF FF FD FD 00")
    reader = PacketReader()
    reader.feed(b"\x00\xff\x17" + packet[:5])  # noise first, the packet split over two reads
    assert reader.next() is None
    reader.feed(packet[5:])
    p = reader.next()
    assert (p.servo_id, p.instruction, p.params, p.crc_ok) == (3, 0x03, bytes([0x74, 0, 0xFF, 0xFF, 0xFD, 0]), True)


def test_error_byte_names():
    assert describe_error(0x80) == "hardware alert (0x80)"
    assert describe_error(0x86) == "hardware alert + Data Limit Error (0x86)"
    assert describe_error(0x03) == "CRC Error (0x03)"


# -- Dynamixel over the pty emulator ---------------------------------------------------------------------------------

class Tap:
    """A pyserial port that records every write (the exact bytes on the wire)."""

    def __init__(self, port: str) -> None:
        self.ser = serial.Serial(port, timeout=0.05)
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.sent.append(bytes(data))
        return self.ser.write(data)

    def __getattr__(self, name):
        return getattr(self.ser, name)


@pytest.fixture
def emu():
    with DynamixelEmulator(ids=IDS, speed=math.inf) as e:
        yield e


def test_open_pings_holds_pose_and_enables_torque(emu):
    emu.set_position(7, 1000)  # left somewhere else before power-up
    bus = DynamixelBus(emu.port, ids=IDS)
    assert bus.units == "position" and bus.name == "serial"
    with bus:
        assert bus.model_numbers == {i: 1020 for i in IDS}
        assert all(emu.torque(i) for i in IDS)
        assert emu.goal(7) == 1000 and emu.position(7) == 1000  # goal = present before torque: no jump
        assert emu.goal(1) == 2048
    emu.settle()
    assert not any(emu.torque(i) for i in IDS)  # torque off on close
    assert emu.received[-1] == (0xFE, 0x83, bytes([ADDR_TORQUE_ENABLE, 0, 1, 0]) + b"".join(bytes([i, 0]) for i in IDS))


def test_sync_write_bytes_exact_and_read_back(emu):
    tap = Tap(emu.port)
    with DynamixelBus(serial=tap, ids=[1, 2]) as bus:
        tap.sent.clear()
        bus.write([1, 2], [150.0, 170.0])
        assert tap.sent == [bytes.fromhex("FF FF FD 00 FE 11 00 83 74 00 04 00 01 96 00 00 00 02 AA 00 00 00 82 87")]
        assert bus.read([1, 2]) == [150.0, 170.0]
        assert tap.sent[-1] == bytes.fromhex("FF FF FD 00 FE 09 00 82 84 00 04 00 01 02 CE FA")
        assert bus.read([2]) == [170.0]
    tap.ser.close()


def test_positions_through_the_pty(emu):
    with DynamixelBus(emu.port, ids=IDS) as bus:
        goals = [1500.0 + 40 * k for k in range(26)]
        bus.write(IDS, goals)
        emu.settle()  # a SYNC_WRITE gets no reply: wait until the servos have it
        assert [emu.goal(i) for i in IDS] == goals
        assert bus.read(IDS) == goals
        assert bus.read(IDS[::-1]) == goals[::-1]
        bus.write([5], [1999.6])
        assert bus.read([5]) == [2000.0]  # rounded to a tick
    with DynamixelBus(emu.port, ids=[3, 4], sync_read=False) as per_id:  # one READ per servo
        assert per_id.read([3, 4]) == [1580.0, 1620.0]
        assert [(i, inst) for i, inst, _ in emu.received[-2:]] == [(3, 0x02), (4, 0x02)]


def test_emulated_servo_moves_at_its_speed():
    with DynamixelEmulator(ids=[1], speed=1000.0) as emu, DynamixelBus(emu.port, ids=[1]) as bus:
        bus.write([1], [3048.0])  # 1000 ticks: one second at 1000 ticks/s
        first = bus.read([1])[0]
        assert 2048 <= first < 2548
        time.sleep(0.1)
        later = bus.read([1])[0]
        assert first < later < 3048
        bus.relax([1])  # limp: it stays where it is
        emu.settle()
        limp = emu.position(1)
        time.sleep(0.05)
        assert emu.position(1) == limp and not emu.torque(1)
        bus.write([1], [limp])  # a write gives the torque back
        emu.settle()
        assert emu.torque(1)


def test_relax_and_close_turn_torque_off(emu):
    bus = DynamixelBus(emu.port, ids=[1, 2, 3])
    bus.open()
    bus.relax([2])
    emu.settle()
    assert [emu.torque(i) for i in (1, 2, 3)] == [True, False, True]
    bus.close()
    emu.settle()
    assert not any(emu.torque(i) for i in (1, 2, 3))
    bus.close()  # idempotent
    with pytest.raises(BusError, match="not open"):
        bus.read([1])


def test_bus_refuses_bad_commands_before_the_wire(emu):
    with DynamixelBus(emu.port, ids=[1, 2], limits=(1000, 3000)) as bus:
        n = len(emu.received)
        for chans, vals, field in (([1], [3001.0], "values"), ([1], [math.inf], "values"), ([1], [-5.0], "values"),
                                   ([9], [2000.0], "channels"), ([1, 1], [2000.0, 2000.0], "channels"),
                                   ([1, 2], [2000.0], "values")):
            with pytest.raises(ValueError, match=field):
                bus.write(chans, vals)
        assert len(emu.received) == n and emu.goal_log == [(1, 2048), (2, 2048)]  # only open's hold-pose writes
    with pytest.raises(ValueError, match="ids"):
        DynamixelBus(emu.port, ids=[300])
    with pytest.raises(ValueError, match="port"):
        DynamixelBus(ids=[1])


@pytest.mark.parametrize("fault,message", [
    ("crc", "CRC mismatch"),
    ("drop", "no reply from servo 1 to SYNC_READ 132 within 50 ms"),
    ("error", r"servo 1 reports hardware alert \(0x80\)"),
    ("wrong_id", "servo 1 did not answer .* came from servo 2"),
    ("truncate", "servo 1"),
])
def test_injected_faults_raise_bus_errors_in_bounded_time(emu, fault, message):
    with DynamixelBus(emu.port, ids=[1, 2], timeout_s=0.05) as bus:
        bus.write([1, 2], [2000.0, 2100.0])
        emu.settle()  # the fault is for the read, not for this SYNC_WRITE
        emu.inject(fault)
        t0 = time.monotonic()
        with pytest.raises(BusError, match=message):
            bus.read([1, 2])
        assert time.monotonic() - t0 < 0.5  # bounded by the timeout, never a hang
        emu.settle()  # let the rest of the faulty exchange (a second reply) arrive
        assert bus.read([1, 2]) == [2000.0, 2100.0]  # stale bytes flushed: the next transaction is clean


def test_servo_error_bits_are_named(emu):
    with DynamixelBus(emu.port, ids=[1]) as bus:
        emu.inject("error", error=0x86)
        with pytest.raises(BusError, match=r"hardware alert \+ Data Limit Error \(0x86\) on READ 132"):
            bus.read_register(1, 132, 4)
        with pytest.raises(BusError, match="Data Limit Error"):  # the emulated servo checks its position limits
            bus.write_register(1, ADDR_GOAL_POSITION, 4, 5000)
        with pytest.raises(BusError, match="Access Error"):  # EEPROM (ID) is locked while torque is on
            bus.write_register(1, 7, 1, 9)
        with pytest.raises(BusError, match="Access Error"):  # Present Position is read-only
            bus.write_register(1, 132, 4, 0)
        assert emu.goal(1) == 2048


def test_emulator_answers_a_corrupted_instruction_with_crc_error(emu):
    port = serial.Serial(emu.port, timeout=0.2)
    bad = bytearray(build_packet(4, 0x01))
    bad[-1] ^= 0x55
    port.write(bad)
    assert port.read(11) == build_status(4, 0x03)  # the servo's CRC Error status
    port.write(build_packet(0xFE, 0x01))  # broadcast PING: every servo answers, in id order
    replies = port.read(14 * 26)
    assert replies == b"".join(build_status(i, 0, bytes([0xFC, 0x03, 45])) for i in IDS)
    port.close()
    assert emu.bad_packets == 1


def test_port_closed_mid_run_ends_in_bus_error(emu):
    bus = DynamixelBus(emu.port, ids=[1, 2], timeout_s=0.05)
    bus.open()
    emu.inject("close")  # the port closes when the next packet arrives
    bus.write([1, 2], [2000.0, 2010.0])  # a SYNC_WRITE gets no reply: the loss shows at the next read
    t0 = time.monotonic()
    with pytest.raises(BusError, match="serial: (read from|write to|no reply)"):
        bus.read([1, 2])
    assert time.monotonic() - t0 < 0.5
    assert emu.goal(1) == 2048 and emu.received[-1][1] == 0x03  # the packet that met the closed port did nothing
    with pytest.raises(BusError, match="write to"):
        bus.close()  # torque-off cannot reach the servos any more ...
    assert bus._ser is None  # ... but the port is released either way
    with pytest.raises(BusError, match="not open"):
        bus.write([1], [2000.0])


def test_open_fails_cleanly_on_a_missing_servo(emu):
    bus = DynamixelBus(emu.port, ids=[1, 40], timeout_s=0.03)
    with pytest.raises(BusError, match="no reply from servo 40 to PING"):
        bus.open()
    emu.settle()
    assert bus._ser is None and not emu.torque(1)
    with pytest.raises(BusError, match="cannot open"):
        DynamixelBus("/dev/nonexistent-tty", ids=[1]).open()
