"""What prefaulting costs against touching page by page, for a fresh anonymous mapping of SIZE bytes
(default 80 MB) with 4 KiB pages (huge pages refused with MADV_NOHUGEPAGE): touched page by page on
one thread (`plain`, what the alloc+touch reference of the harness does) and on two (`touch2`), and
prefaulted with `madvise(MADV_POPULATE_WRITE)` (Linux 5.14+) in one call (`pw1`) and in two halves on
two threads (`pw2`), with and without a 0.2 s pause before each. Medians of 15. Run from the
repository root with the bench environment: `.venv-bench/bin/python bench/probes/prefault.py [SIZE]`
(design/decisions.md D37)."""
import mmap, time, statistics, ctypes, sys, threading
import numpy as np
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PROT = 3; FLAGS = 0x22; POPULATE = 0x8000; MADV_POPULATE_WRITE = 23; MADV_NOHUGEPAGE = 15
size = int(sys.argv[1]) if len(sys.argv) > 1 else 80_000_000; size = (size + 4095)//4096*4096
def mk(flags=FLAGS):
    p = libc.mmap(None, size, PROT, flags, -1, 0); libc.madvise(p, size, MADV_NOHUGEPAGE); return p
def touch(p, a=0, b=size):
    arr = np.ctypeslib.as_array((ctypes.c_uint8 * (b - a)).from_address(p + a)); arr[::4096] = 1
def plain():
    p = mk(); touch(p); libc.munmap(p, size)
def touch2():
    p = mk(); h = size // 2 // 4096 * 4096
    t = threading.Thread(target=touch, args=(p, h, size)); t.start(); touch(p, 0, h); t.join(); libc.munmap(p, size)
def pw1():
    p = mk(); r = libc.madvise(p, size, MADV_POPULATE_WRITE); assert r == 0, ctypes.get_errno(); touch(p); libc.munmap(p, size)
def pw2():
    p = mk(); h = size // 2 // 4096 * 4096
    t = threading.Thread(target=libc.madvise, args=(p + h, size - h, MADV_POPULATE_WRITE)); t.start()
    libc.madvise(p, h, MADV_POPULATE_WRITE); t.join(); touch(p); libc.munmap(p, size)
fs = (plain, touch2, pw1, pw2)
for pause in (0, 0.2):
    res = {f.__name__: [] for f in fs}
    for _ in range(15):
        for f in fs:
            if pause: time.sleep(pause)
            t = time.perf_counter(); f(); res[f.__name__].append(time.perf_counter() - t)
    print(pause, {k: f"{statistics.median(v)*1e3:.2f} ms" for k, v in res.items()})
