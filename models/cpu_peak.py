"""This CPU's theoretical peak FLOP/s in fp32 and bf16, from /proc/cpuinfo and a small table of core designs.

    peak = theoretical_peak(cores=torch.get_num_threads())   # peak.fp32, peak.bf16: FLOP/s, or None with a reason
    print("\\n".join(peak.describe()))

peak = cores x clock x FLOP per cycle per core, where FLOP per cycle = FMA pipes x fp32 lanes per pipe x 2 (a fused
multiply-add is two FLOPs). The lanes are those of the pipe's physical width, not of the instruction: Zen 4 runs a
512-bit instruction as two 256-bit halves, so it gets 8 fp32 lanes per pipe, not 16. bf16 is counted only where the
flags show bfloat16 instructions (AVX512_BF16, AMX-BF16): a vdpbf16ps does two bf16 products per fp32 lane in one
FMA slot, twice the fp32 FLOPs; AMX tiles do 1024 bf16 FLOP per cycle per core. Without them bf16 is emulated and
has no peak of its own.

The clock is /proc/cpuinfo's `cpu MHz` (or lscpu's `CPU max MHz` where it exists). Under a hypervisor `cpu MHz` is
usually the nominal (base or TSC) clock, while the cores boost above it: a measured rate can then beat this "peak",
and `over_peak_warning` says so instead of printing a fraction above 1. Pass the real all-core clock
(`clock_mhz=`) when it is known. A CPU the table does not know gets no peak and a sentence saying why; guessing a
FLOP/cycle figure would make every fraction meaningless.

Standard library only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says about the first processor, and the physical core count over all of them."""

    vendor: str = ""  # "AuthenticAMD", "GenuineIntel"; empty on ARM (which names an implementer instead)
    family: int | None = None
    model: int | None = None
    model_name: str = ""
    flags: frozenset[str] = field(default_factory=frozenset)
    mhz: float | None = None  # `cpu MHz` of the first processor
    physical_cores: int | None = None  # distinct (physical id, core id) pairs; None where not listed
    arm_part: str = ""  # "implementer 0x41, part 0xd0c" on ARM

    @property
    def has_bf16(self) -> bool:
        return "avx512_bf16" in self.flags or "amx_bf16" in self.flags


@dataclass(frozen=True)
class CoreDesign:
    """FLOP per cycle of one core of a design, and the fact it rests on."""

    name: str
    fma_pipes: int
    fp32_lanes: int  # per pipe: the pipe's physical width / 32 bits
    basis: str
    bf16_flop_per_cycle: int | None = None  # None: twice fp32 (vdpbf16ps) where the CPU has AVX512_BF16

    @property
    def fp32_flop_per_cycle(self) -> int:
        return self.fma_pipes * self.fp32_lanes * 2

    def bf16_per_cycle(self, info: CpuInfo) -> int | None:
        if "amx_bf16" in info.flags and self.bf16_flop_per_cycle is not None:
            return self.bf16_flop_per_cycle
        return 2 * self.fp32_flop_per_cycle if "avx512_bf16" in info.flags else None


ZEN = CoreDesign("AMD Zen / Zen+", 2, 4, "two 128-bit FMA pipes; a 256-bit AVX2 op runs as two halves")
ZEN2 = CoreDesign("AMD Zen 2", 2, 8, "two 256-bit FMA pipes")
ZEN3 = CoreDesign("AMD Zen 3", 2, 8, "two 256-bit FMA pipes")
ZEN4 = CoreDesign("AMD Zen 4", 2, 8, "two 256-bit FMA pipes; a 512-bit op runs as two halves; vdpbf16ps doubles bf16")
INTEL_AVX2 = CoreDesign("Intel Haswell..Comet Lake", 2, 8, "two 256-bit FMA units (ports 0 and 1)")
INTEL_AVX512_TWO = CoreDesign("Intel Xeon, two AVX-512 FMA units", 2, 16, "two 512-bit FMA units (ports 0+1 and 5)")
INTEL_AVX512_ONE = CoreDesign("Intel Xeon, one AVX-512 FMA unit", 1, 16, "one 512-bit FMA unit (ports 0+1 fused)")
INTEL_AMX = CoreDesign(
    "Intel Xeon with AMX", 2, 16, "two 512-bit FMA units; AMX-BF16 tiles: 1024 bf16 FLOP/cycle", 1024
)

# Intel family 6 models whose cores all have two 256-bit FMA units and no AVX-512 (client Haswell to Comet Lake
# and their Xeon E3/E5 siblings without AVX-512). Hybrid parts (Alder Lake on) mix in E-cores with half that.
INTEL_AVX2_MODELS = {60, 63, 69, 70, 61, 71, 79, 86, 78, 94, 142, 158, 165, 166}
INTEL_SKYLAKE_SP = 85  # Skylake-SP, Cascade Lake, Cooper Lake: one or two AVX-512 FMA units, by SKU
INTEL_ICE_LAKE_SP = {106, 108}  # every Ice Lake Xeon has two AVX-512 FMA units


def _number(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


def parse_cpuinfo(text: str) -> CpuInfo:
    """A CpuInfo from the text of /proc/cpuinfo (x86 or ARM)."""
    blocks = [block for block in re.split(r"\n\s*\n", text) if block.strip()]
    first: dict[str, str] = {}
    cores: set[tuple[str, str]] = set()
    for index, block in enumerate(blocks):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if index == 0:
            first = fields
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    flags = first.get("flags") or first.get("Features") or ""
    mhz = first.get("cpu MHz")
    arm = ""
    if "CPU implementer" in first:
        arm = f"implementer {first['CPU implementer']}, part {first.get('CPU part', '?')}"
    return CpuInfo(
        vendor=first.get("vendor_id", ""),
        family=_number(first.get("cpu family", "")),
        model=_number(first.get("model", "")),
        model_name=first.get("model name", ""),
        flags=frozenset(flags.split()),
        mhz=float(mhz) if mhz and re.fullmatch(r"[0-9.]+", mhz) else None,
        physical_cores=len(cores) or None,
        arm_part=arm,
    )


def read_cpu_info(path: Path = CPUINFO) -> CpuInfo:
    """This machine's CpuInfo; an empty one where /proc/cpuinfo does not exist (macOS, Windows)."""
    try:
        return parse_cpuinfo(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return CpuInfo()


def lscpu_max_mhz(text: str) -> float | None:
    """lscpu's `CPU max MHz` (the highest boost clock, from cpufreq), None where it is not listed (most VMs)."""
    match = re.search(r"^CPU max MHz:\s*([0-9.]+)", text, flags=re.MULTILINE)
    return float(match.group(1)) if match else None


def _run_lscpu() -> str:
    if shutil.which("lscpu") is None:
        return ""
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def core_design(info: CpuInfo) -> CoreDesign | str:
    """The design of this CPU's cores, or a sentence saying why the table cannot tell."""
    what = f"{info.model_name or 'this CPU'} (vendor {info.vendor or '?'}, family {info.family}, model {info.model})"
    if info.vendor == "AuthenticAMD":
        if info.family == 23:
            return ZEN2 if (info.model or 0) >= 0x30 else ZEN
        if info.family == 25:
            return ZEN4 if "avx512f" in info.flags else ZEN3
        if info.family == 26:
            return (
                f"{what} is a Zen 5, whose FMA pipes are 512 bits wide on server and desktop parts and 256 bits on "
                "some laptop parts, and /proc/cpuinfo does not tell them apart"
            )
    if info.vendor == "GenuineIntel" and info.family == 6:
        if "amx_bf16" in info.flags:
            return INTEL_AMX
        if info.model in INTEL_ICE_LAKE_SP:
            return INTEL_AVX512_TWO
        if info.model == INTEL_SKYLAKE_SP:
            # Platinum 8xxx and Gold 6xxx have the second 512-bit unit; Gold 5xxx, Silver and Bronze do not
            if re.search(r"Platinum|Gold 6\d|Gold 5[12]22", info.model_name):  # 5122 and 5222 have both
                return INTEL_AVX512_TWO
            if re.search(r"Silver|Bronze|Gold 5\d", info.model_name):
                return INTEL_AVX512_ONE
            return (
                f"{what} is a Skylake-SP/X or Cascade Lake core with one or two AVX-512 FMA units depending on the "
                "SKU, and its model name does not say which"
            )
        if info.model in INTEL_AVX2_MODELS and "avx512f" not in info.flags:
            return INTEL_AVX2
    if info.arm_part:
        return f"this is an ARM CPU ({info.arm_part}); the table holds only x86 designs, whose FMA widths it knows"
    if not info.vendor:
        return "/proc/cpuinfo is missing or names no CPU vendor, so the core design is unknown"
    return f"{what} is not in models.cpu_peak's table of core designs (FMA pipes and their width are unknown)"


@dataclass(frozen=True)
class TheoreticalPeak:
    """fp32 / bf16 peak FLOP/s of `cores` cores (None with the reason where there is none), and how it was derived."""

    cores: int
    clock_mhz: float | None
    clock_source: str
    design: CoreDesign | None
    fp32: float | None
    bf16: float | None
    bf16_per_cycle: int | None = None
    fp32_reason: str | None = None  # why fp32 is None
    bf16_reason: str | None = None  # why bf16 is None
    cores_note: str = ""

    def of(self, precision: str) -> float | None:
        return self.bf16 if precision == "bf16" else self.fp32

    def describe(self) -> list[str]:
        """Lines saying what the peak is and where each factor came from."""
        if self.design is None or self.fp32 is None:
            return [f"theoretical peak: unavailable: {self.fp32_reason}"]
        d = self.design
        lines = [
            f"core design: {d.name} ({d.basis}): {d.fma_pipes} FMA pipe(s) x {d.fp32_lanes} fp32 lanes x 2 = "
            f"{d.fp32_flop_per_cycle} fp32 FLOP/cycle/core",
            f"clock: {self.clock_mhz:.0f} MHz from {self.clock_source}",
            f"cores: {self.cores}{self.cores_note}",
            f"theoretical fp32 peak: {self.cores} x {self.clock_mhz / 1000:.3f} GHz x {d.fp32_flop_per_cycle} = "
            f"{self.fp32 / 1e9:.0f} GFLOP/s",
        ]
        if self.bf16 is not None:
            lines.append(
                f"theoretical bf16 peak: {self.cores} x {self.clock_mhz / 1000:.3f} GHz x {self.bf16_per_cycle} = "
                f"{self.bf16 / 1e9:.0f} GFLOP/s"
            )
        else:
            lines.append(f"theoretical bf16 peak: unavailable: {self.bf16_reason}")
        return lines


def theoretical_peak(
    cores: int,
    *,
    info: CpuInfo | None = None,
    lscpu_text: str | None = None,
    clock_mhz: float | None = None,
) -> TheoreticalPeak:
    """The peak of `cores` threads (torch.get_num_threads()) on this CPU, from /proc/cpuinfo and lscpu unless
    `info` / `lscpu_text` are given; `clock_mhz` overrides the clock (the real all-core clock, where known)."""
    info = read_cpu_info() if info is None else info
    note = ""
    if info.physical_cores and cores > info.physical_cores:
        note = f" (of {cores} threads: SMT siblings share a core's FMA pipes)"
        cores = info.physical_cores
    if clock_mhz is not None:
        source = "the clock passed in (--clock_mhz)"
    else:
        clock_mhz = lscpu_max_mhz(_run_lscpu() if lscpu_text is None else lscpu_text)
        source = "lscpu 'CPU max MHz' (the highest boost clock)"
        if clock_mhz is None and info.mhz is not None:
            clock_mhz = info.mhz
            source = (
                "/proc/cpuinfo 'cpu MHz' (the clock when read; a VM usually reports its nominal clock, "
                "and the cores may boost above it)"
            )
    design = core_design(info)
    reason = None
    if isinstance(design, str):
        reason, design = design, None
    elif clock_mhz is None:
        reason = "neither /proc/cpuinfo ('cpu MHz') nor lscpu ('CPU max MHz') gives the clock; pass --clock_mhz"
    if reason is not None:
        return TheoreticalPeak(
            cores, clock_mhz, source, design, None, None, fp32_reason=reason, bf16_reason=reason, cores_note=note
        )
    per_second = cores * clock_mhz * 1e6
    bf16_per_cycle = design.bf16_per_cycle(info)
    bf16_reason = None
    if bf16_per_cycle is None:
        bf16_reason = "no bfloat16 instructions in the CPU flags (avx512_bf16, amx_bf16): bf16 would be emulated"
    return TheoreticalPeak(
        cores=cores,
        clock_mhz=clock_mhz,
        clock_source=source,
        design=design,
        fp32=per_second * design.fp32_flop_per_cycle,
        bf16=None if bf16_per_cycle is None else per_second * bf16_per_cycle,
        bf16_per_cycle=bf16_per_cycle,
        bf16_reason=bf16_reason,
        cores_note=note,
    )


def over_peak_warning(rate: float, peak: float | None, what: str, clock_mhz: float | None = None) -> str | None:
    """A warning sentence when `rate` (FLOP/s) beats the theoretical `peak` (computed at `clock_mhz`, if given),
    which only a wrong clock or a wrong table entry can explain; None otherwise."""
    if peak is None or rate <= peak:
        return None
    implied = f" (the table's figures would need at least {clock_mhz * rate / peak:.0f} MHz)" if clock_mhz else ""
    return (
        f"WARNING: {what} runs at {rate / 1e9:.0f} GFLOP/s, {rate / peak:.2f}x the theoretical peak "
        f"({peak / 1e9:.0f} GFLOP/s): the clock or models.cpu_peak's table is wrong for this CPU{implied}; a VM's "
        "'cpu MHz' is often the nominal clock, below the boost clock: pass --clock_mhz with the all-core boost clock."
    )
