"""The theoretical peak table and /proc/cpuinfo parsing (models.cpu_peak), on synthetic cpuinfo texts.

.venv/bin/python -m pytest tests/test_cpu_peak.py -q
"""

from __future__ import annotations

import pytest

from models.cpu_peak import over_peak_warning, parse_cpuinfo, theoretical_peak

AVX512 = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl"


def x86_cpuinfo(vendor: str, family: int, model: int, name: str, flags: str, mhz: str, cores: int, threads: int = 1):
    """/proc/cpuinfo of `cores` cores with `threads` SMT siblings each, as Linux writes it."""
    blocks = []
    for number in range(cores * threads):
        blocks.append(
            f"processor\t: {number}\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n"
            f"model name\t: {name}\nstepping\t: 1\ncpu MHz\t\t: {mhz}\ncache size\t: 1024 KB\nphysical id\t: 0\n"
            f"siblings\t: {cores * threads}\ncore id\t\t: {number % cores}\ncpu cores\t: {cores}\n"
            f"flags\t\t: {flags}\nbogomips\t: 5192.29\n"
        )
    return "\n".join(blocks) + "\n"


ZEN4 = x86_cpuinfo("AuthenticAMD", 25, 17, "AMD EPYC", f"{AVX512} avx512_bf16 avx512_vnni", "2596.148", cores=2)
ICE_LAKE_SP = x86_cpuinfo(
    "GenuineIntel", 6, 106, "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", AVX512, "2900.000", cores=2, threads=2
)
SKYLAKE_CLIENT = x86_cpuinfo(
    "GenuineIntel", 6, 94, "Intel(R) Core(TM) i7-6700 CPU @ 3.40GHz", "sse4_2 avx avx2 fma", "3400.0", 4
)
ZEN3 = x86_cpuinfo("AuthenticAMD", 25, 1, "AMD EPYC 7R13 Processor", "sse4_2 avx fma avx2", "2650.000", cores=2)
NEOVERSE_N1 = (
    "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp\n"
    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
    "processor\t: 1\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n"
)


def test_zen4_has_32_fp32_and_64_bf16_flop_per_cycle_per_core_at_the_cpuinfo_clock():
    info = parse_cpuinfo(ZEN4)
    assert (info.vendor, info.family, info.model, info.physical_cores, info.mhz) == (
        "AuthenticAMD",
        25,
        17,
        2,
        2596.148,
    )
    peak = theoretical_peak(2, info=info, lscpu_text="")  # a VM: lscpu lists no 'CPU max MHz'
    assert peak.design.name == "AMD Zen 4"
    assert peak.fp32 == pytest.approx(2 * 2596.148e6 * 32)  # 2 pipes x 8 fp32 lanes (256-bit halves) x 2
    assert peak.bf16 == pytest.approx(2 * 2596.148e6 * 64)  # vdpbf16ps: two bf16 products per fp32 lane
    text = "\n".join(peak.describe())
    assert "/proc/cpuinfo 'cpu MHz'" in text and "nominal clock" in text  # says which field, and the VM caveat
    assert "166 GFLOP/s" in text and "332 GFLOP/s" in text


def test_one_thread_counts_one_core_and_a_given_clock_wins():
    peak = theoretical_peak(1, info=parse_cpuinfo(ZEN4), lscpu_text="", clock_mhz=3700)
    assert peak.fp32 == pytest.approx(3.7e9 * 32) and "--clock_mhz" in peak.clock_source


def test_lscpu_max_clock_is_preferred_to_the_current_one():
    lscpu = "Model name:    AMD EPYC\nCPU max MHz:   3700.0000\nCPU min MHz:   400.0000\n"
    peak = theoretical_peak(2, info=parse_cpuinfo(ZEN4), lscpu_text=lscpu)
    assert peak.clock_mhz == 3700.0 and "CPU max MHz" in peak.clock_source


def test_intel_avx512_xeon_with_two_fma_units_counts_physical_cores_not_smt_threads():
    peak = theoretical_peak(4, info=parse_cpuinfo(ICE_LAKE_SP), lscpu_text="")
    assert peak.cores == 2 and "SMT" in peak.cores_note  # 4 threads on 2 cores: siblings share the FMA units
    assert peak.design.fp32_flop_per_cycle == 64  # 2 units x 16 fp32 lanes x 2
    assert peak.fp32 == pytest.approx(2 * 2.9e9 * 64)
    assert peak.bf16 is None and "no bfloat16 instructions" in peak.bf16_reason


@pytest.mark.parametrize(
    ("name", "one_unit"),
    [("Intel(R) Xeon(R) Platinum 8175M CPU @ 2.50GHz", False), ("Intel(R) Xeon(R) Silver 4114 CPU @ 2.20GHz", True)],
)
def test_skylake_sp_fma_units_follow_the_sku(name, one_unit):
    info = parse_cpuinfo(x86_cpuinfo("GenuineIntel", 6, 85, name, AVX512, "2500.000", cores=2))
    assert theoretical_peak(2, info=info, lscpu_text="").design.fp32_flop_per_cycle == (32 if one_unit else 64)


def test_a_skylake_sp_whose_name_hides_the_sku_gets_no_peak():
    info = parse_cpuinfo(x86_cpuinfo("GenuineIntel", 6, 85, "Intel Xeon Processor (Skylake)", AVX512, "2000", 2))
    peak = theoretical_peak(2, info=info, lscpu_text="")
    assert peak.fp32 is None and "one or two AVX-512 FMA units" in peak.fp32_reason


@pytest.mark.parametrize(("text", "design"), [(SKYLAKE_CLIENT, "Intel Haswell..Comet Lake"), (ZEN3, "AMD Zen 3")])
def test_avx2_only_parts_have_32_fp32_flop_per_cycle_and_no_bf16(text, design):
    info = parse_cpuinfo(text)
    peak = theoretical_peak(info.physical_cores, info=info, lscpu_text="")
    assert peak.design.name == design
    assert peak.fp32 == pytest.approx(info.physical_cores * info.mhz * 1e6 * 32)
    assert peak.bf16 is None
    assert "theoretical bf16 peak: unavailable: no bfloat16 instructions" in "\n".join(peak.describe())


def test_an_unknown_arm_part_gets_no_peak_and_says_why():
    info = parse_cpuinfo(NEOVERSE_N1)
    assert "asimd" in info.flags and info.vendor == ""
    peak = theoretical_peak(2, info=info, lscpu_text="")
    assert peak.fp32 is None and peak.bf16 is None
    assert "ARM CPU (implementer 0x41, part 0xd0c)" in peak.fp32_reason
    assert peak.describe() == [f"theoretical peak: unavailable: {peak.fp32_reason}"]


def test_a_known_design_without_any_clock_gets_no_peak():
    info = parse_cpuinfo(ZEN4.replace("cpu MHz\t\t: 2596.148\n", ""))
    peak = theoretical_peak(2, info=info, lscpu_text="")
    assert peak.fp32 is None and "pass --clock_mhz" in peak.fp32_reason


def test_no_cpuinfo_at_all_gets_no_peak():
    peak = theoretical_peak(2, info=parse_cpuinfo(""), lscpu_text="")
    assert peak.fp32 is None and "/proc/cpuinfo is missing" in peak.fp32_reason


def test_a_rate_above_the_theoretical_peak_is_a_warning_not_a_fraction():
    assert over_peak_warning(300e9, 332e9, "bf16 GEMM") is None
    assert over_peak_warning(300e9, None, "bf16 GEMM") is None  # no peak: nothing to compare with
    warning = over_peak_warning(350e9, 332e9, "bf16 GEMM")
    assert warning.startswith("WARNING: bf16 GEMM runs at 350 GFLOP/s, 1.05x the theoretical peak (332 GFLOP/s)")
    assert "--clock_mhz" in warning
    implied = over_peak_warning(350e9, 332e9, "bf16 GEMM", clock_mhz=2596)
    assert "would need at least 2737 MHz" in implied  # 2596 MHz x 350 / 332
