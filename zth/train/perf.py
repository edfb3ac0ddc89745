"""Throughput bookkeeping: device peak FLOPs and model FLOPs utilization (MFU)."""

from __future__ import annotations

import time

import torch

# Dense (no sparsity) peak TFLOP/s per device from the vendors' datasheets, by precision:
# (bf16, fp16, tf32, fp32) with fp32 accumulation; None where the device has no such unit.
# Matched by substring of ``torch.cuda.get_device_name()``; the first match wins, so a longer
# name comes before any name it contains. A device that is not listed gets no MFU at all.
PEAK_TFLOPS: list[tuple[str, tuple[float | None, float | None, float | None, float]]] = [
    ("H100 PCIe", (756.0, 756.0, 378.0, 51.2)),
    ("H100 NVL", (835.0, 835.0, 417.5, 60.0)),
    ("H100", (989.4, 989.4, 494.7, 66.9)),  # SXM ("NVIDIA H100 80GB HBM3")
    ("GH200", (989.4, 989.4, 494.7, 66.9)),
    ("H200 NVL", (835.0, 835.0, 417.5, 60.0)),
    ("H200", (989.4, 989.4, 494.7, 66.9)),
    ("A100", (312.0, 312.0, 156.0, 19.5)),
    ("L40S", (362.05, 362.05, 183.0, 91.6)),
    ("L40", (181.05, 181.05, 90.5, 90.5)),
    ("L4", (121.0, 121.0, 60.0, 30.3)),
    ("V100-SXM", (None, 125.0, None, 15.7)),
    ("V100-PCIE", (None, 112.0, None, 14.0)),
    ("T4", (None, 65.0, None, 8.1)),
    ("RTX 4090", (165.2, 165.2, 82.6, 82.6)),
    ("RTX 3090", (71.0, 71.0, 35.6, 35.6)),
]
_PRECISIONS = ("bf16", "fp16", "tf32", "fp32")


def peak_flops(device: str | torch.device, precision: str = "bf16") -> float | None:
    """The datasheet dense peak in FLOP/s of a known GPU for ``precision``; None if unknown."""
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return peak_for_name(torch.cuda.get_device_name(device), precision)


def peak_for_name(name: str, precision: str = "bf16") -> float | None:
    """The table's peak (FLOP/s) for a GPU named ``name``; None for an unlisted device or unit."""
    for key, peaks in PEAK_TFLOPS:
        if key in name:
            tflops = peaks[_PRECISIONS.index(precision)]
            return None if tflops is None else tflops * 1e12
    return None


def mfu(flops_per_token: float, tokens_per_s: float, peak: float | None) -> float | None:
    """Model FLOPs utilization: achieved model FLOP/s over the peak (per device)."""
    return None if not peak else flops_per_token * tokens_per_s / peak


def measure_matmul_flops(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                         n: int = 1024, seconds: float = 0.5) -> float:
    """Achieved FLOP/s of an ``n x n`` matmul: a practical peak where no datasheet applies (CPUs)."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm up
    iters, t0 = 0, time.perf_counter()
    while True:
        a @ b
        iters += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return 2 * n**3 * iters / dt
