"""Count the CPU instructions this thread retires in user space (Linux `perf_event_open`).

On a shared machine, CPU time per call moves by tens of percent with the neighbours' load;
the number of instructions a call executes barely moves. The benchmarks report both: time
is what users feel, instructions are the stable figure to compare instrumentations by.

    counter = InstructionCounter.open()   # None where the kernel does not allow it
    before = counter.read()
    ...
    executed = counter.read() - before

Needs Linux and `kernel.perf_event_paranoid` <= 2 (the default allows counting one's own
user-space instructions); elsewhere `open()` returns None and the column is left out.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import struct

_PERF_TYPE_HARDWARE = 0
_PERF_COUNT_HW_INSTRUCTIONS = 1
_SYSCALL_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241}
# perf_event_attr flag bits (see linux/perf_event.h): disabled, exclude_kernel, exclude_hv.
_DISABLED, _EXCLUDE_KERNEL, _EXCLUDE_HV = 1 << 0, 1 << 5, 1 << 6
_IOC_ENABLE = 0x2400  # PERF_EVENT_IOC_ENABLE


class _PerfEventAttr(ctypes.Structure):
    # The fields up to `config2` (PERF_ATTR_SIZE_VER1, 72 bytes): all this counter needs.
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
        ("config2", ctypes.c_uint64),
    ]


class InstructionCounter:
    """A user-space instruction counter for the calling thread."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def open(cls) -> InstructionCounter | None:
        number = _SYSCALL_PERF_EVENT_OPEN.get(platform.machine())
        libc_name = ctypes.util.find_library("c")
        if number is None or libc_name is None:
            return None
        libc = ctypes.CDLL(libc_name, use_errno=True)
        attr = _PerfEventAttr(
            type=_PERF_TYPE_HARDWARE,
            size=ctypes.sizeof(_PerfEventAttr),
            config=_PERF_COUNT_HW_INSTRUCTIONS,
            flags=_DISABLED | _EXCLUDE_KERNEL | _EXCLUDE_HV,
        )
        # pid 0, cpu -1: this thread, on whichever CPU it runs; no group, no flags.
        fd = libc.syscall(number, ctypes.byref(attr), 0, -1, -1, 0)
        if fd < 0:
            return None
        if libc.ioctl(fd, _IOC_ENABLE, 0) != 0:
            os.close(fd)
            return None
        counter = cls(fd)
        if counter.read() == counter.read():  # a counter that does not count (some VMs)
            counter.close()
            return None
        return counter

    def read(self) -> int:
        value: int = struct.unpack("Q", os.read(self._fd, 8))[0]
        return value

    def close(self) -> None:
        os.close(self._fd)
