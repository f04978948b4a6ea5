"""Tests for the open photo corpus: the .rcc / .pzl / .edj readers, the committed manifest and its balance
rule, and a full build from a fake local package cache (no network, no real packages).

Run: .venv/bin/python -m pytest tests/test_corpus.py -q -x
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import subprocess
import tarfile
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from corpus import photos
from corpus.edj import EdjError, jpegs, largest_jpeg, read_edj, write_edj
from corpus.pzl import PzlError, read_pzl, write_pzl
from corpus.rcc import RccError, read_rcc, write_rcc
from corpus.sources import DEB_SOURCES, WHEEL_SOURCES, DebArchive, PackageCache, read_originals

# ----------------------------------------------------------------------------------------------- helpers


def photo(seed: int, size: tuple[int, int] = (320, 240), *, gray: bool = False) -> Image.Image:
    """A colourful, textured stand-in photo; different seeds give visibly different pictures."""
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(40, 230, (6, 8, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    array = np.clip(np.asarray(base, np.int16) + rng.normal(0, 6, (size[1], size[0], 1)), 0, 255).astype(np.uint8)
    if gray:
        array[...] = array.mean(-1, keepdims=True).astype(np.uint8)
    return Image.fromarray(array)


def encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def write_deb(path: Path, files: dict[str, bytes], *, zstd: bool = False) -> None:
    """A minimal Debian package: ar archive with debian-binary, control.tar.gz and data.tar.gz (or .zst)."""

    def tar_gz(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode, **({"compresslevel": 1} if mode == "w:gz" else {})) as tar:
            for name, blob in members.items():
                info = tarfile.TarInfo("./" + name)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
        return buffer.getvalue()

    package, version = path.name.split("_")[:2]
    members = {
        "debian-binary": b"2.0\n",
        "control.tar.gz": tar_gz({"control": f"Package: {package}\nVersion: {version}\n".encode()}),
    }
    if zstd:  # made with the zstd command line tool, as dpkg-deb does
        plain = tar_gz(files, "w")
        members["data.tar.zst"] = subprocess.run(["zstd", "-q", "-c"], input=plain, capture_output=True).stdout
    else:
        members["data.tar.gz"] = tar_gz(files)
    out = bytearray(b"!<arch>\n")
    for name, blob in members.items():
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(blob):<10}`\n".encode() + blob
        out += b"\n" if len(blob) % 2 else b""
    path.write_bytes(bytes(out))


def manifest_line(
    source: str, path: str, data: bytes, licence: str = "CC0-1.0", credit: str = "A. Photographer", **extra: str
) -> dict:
    return {"source": source, "path": path, "sha256": hashlib.sha256(data).hexdigest(), "licence": licence,
            "credit": credit, **extra}  # fmt: skip


def write_manifest(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- rcc reader


def test_rcc_reads_a_hand_assembled_qt_resource_file() -> None:
    """Bytes laid out by hand from the Qt rcc spec (v2, one zlib-compressed file in a folder), not by write_rcc."""
    payload = b"a lion, probably"
    blob = struct.pack(">I", len(payload)) + zlib.compress(payload)  # qCompress layout
    data_section = struct.pack(">I", len(blob)) + blob

    def name(text: str) -> bytes:
        units = text.encode("utf-16-be")
        return struct.pack(">HI", len(units) // 2, 0) + units

    names = name("img") + name("lion.webp")
    mtime = struct.pack(">Q", 0)
    tree = (
        struct.pack(">IHII", 0, 2, 1, 1) + mtime  # root dir: 1 child at index 1
        + struct.pack(">IHII", 0, 2, 1, 2) + mtime  # "img" dir: 1 child at index 2
        + struct.pack(">IHHHI", len(name("img")), 1, 0, 1, 0) + mtime  # "lion.webp", zlib, data offset 0
    )  # fmt: skip
    data_off = 20
    names_off = data_off + len(data_section)
    tree_off = names_off + len(names)
    rcc = b"qres" + struct.pack(">4I", 2, tree_off, data_off, names_off) + data_section + names + tree
    assert read_rcc(rcc) == {"img/lion.webp": payload}


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("compress", [True, False])
def test_rcc_round_trips_nested_folders(version: int, compress: bool) -> None:
    files = {"gcompris/a/lion.webp": b"\x00lion" * 50, "gcompris/a/b/c.svg": b"<svg/>", "top.png": b"png"}
    assert read_rcc(write_rcc(files, compress=compress, version=version)) == files


def test_rcc_suffix_filter_skips_other_files() -> None:
    rcc = write_rcc({"x/photo.webp": b"w", "x/board.qml": b"q", "x/README": b"r"})
    assert read_rcc(rcc, (".webp",)) == {"x/photo.webp": b"w"}


def test_rcc_rejects_files_that_are_not_qt_resources() -> None:
    with pytest.raises(RccError, match="qres"):
        read_rcc(b"PK\x03\x04 a zip file, not a resource bundle")
    with pytest.raises(RccError, match="version"):
        read_rcc(b"qres" + struct.pack(">4I", 9, 0, 0, 0))


# ---------------------------------------------------------------------------------------------- pzl reader


def make_puzzle(picture: Image.Image, box: tuple[int, int]) -> bytes:
    """A jigzo-style puzzle: the uncut picture sits at `box` inside a 1024x1024 atlas, pieces elsewhere."""
    atlas = Image.new("RGB", (1024, 1024), "black")
    atlas.paste(picture, box)
    atlas.paste(picture.crop((0, 0, 100, 100)), (900, 900))  # a "piece"
    map_text = (
        f"#texture map data\ncrop000 900 900 100 100 0 0 0 0 0 0\n"
        f"image {box[0]} {box[1]} {picture.width} {picture.height} 1 1\n"
    )
    return write_pzl(
        "ABC123",
        {
            "ABC123.map": map_text.encode(),
            "ABC123-t.jpg": encoded(picture.resize((64, 48)), "JPEG"),
            "ABC123.png": encoded(Image.new("RGBA", (1024, 1024)), "PNG"),
            "ABC123.jpg": encoded(atlas, "JPEG", quality=100, subsampling=0),
        },
        url="http://example.org/",
    )


def test_pzl_recovers_the_uncut_picture_from_the_atlas() -> None:
    picture = photo(1, (300, 200))
    puzzle = read_pzl(make_puzzle(picture, (10, 20)))
    assert puzzle.name == "ABC123"
    assert list(puzzle.members) == ["ABC123.map", "ABC123-t.jpg", "ABC123.png", "ABC123.jpg"]
    assert puzzle.image_member == "ABC123.jpg"
    assert puzzle.image_box() == (10, 20, 310, 220)
    recovered = np.asarray(puzzle.photo(), dtype=np.float32)
    assert recovered.shape == (200, 300, 3)
    truth = np.asarray(picture, dtype=np.float32)
    error = np.abs(recovered - truth).mean()
    shifted = np.abs(np.asarray(puzzle.photo().crop((0, 0, 290, 190)), np.float32) - truth[10:, 10:]).mean()
    assert error < 2 < shifted  # the right window, up to JPEG loss


def test_pzl_reports_corrupt_files() -> None:
    with pytest.raises(PzlError, match="PzlF"):
        read_pzl(b"GIF89a")
    truncated = write_pzl("x", {"x.map": b"image 0 0 1 1\n"})[:-3]
    with pytest.raises(PzlError, match="past the end"):
        read_pzl(truncated)
    with pytest.raises(PzlError, match="image X Y W H"):
        read_pzl(write_pzl("x", {"x.map": b"#nothing\n", "x.jpg": b""})).image_box()


# ---------------------------------------------------------------------------------------------- edj reader


def test_edj_reads_a_hand_assembled_eet_file() -> None:
    """Bytes laid out by hand from the Eet format 2 layout (big-endian header, 6-int entries), not by write_edj."""
    jpeg = encoded(photo(3, (64, 48)), "JPEG")
    names = b"edje/images/0\0edje/edje_file\0"
    header_and_directory = 4 * (3 + 2 * 6)
    names_at, data_at = header_and_directory, header_and_directory + len(names)
    blob = (
        struct.pack(">3I", 0x1EE70F42, 2, 0)
        + struct.pack(">6I", data_at, len(jpeg), len(jpeg), names_at, 14, 0)  # plain image entry
        + struct.pack(">6I", data_at + len(jpeg), 5, 40, names_at + 14, 16, 1)  # compressed theme data
        + names + jpeg + b"zlib!"
    )  # fmt: skip
    assert read_edj(blob) == {"edje/images/0": jpeg}
    assert largest_jpeg(blob) == ("edje/images/0", jpeg)


def test_edj_keeps_the_largest_jpeg_and_skips_other_entries() -> None:
    picture = photo(4, (400, 300))
    entries = {
        "edje/images/1": encoded(picture.resize((200, 150)), "JPEG"),
        "edje/images/0": encoded(picture, "JPEG", quality=80),
        "edje/images/2": encoded(picture, "PNG"),  # not a JPEG
        "edje/images/3": b"\xff\xd8\xff not really a JPEG \xff\xd9",
        "edje/edje_file": b"theme data",
    }
    blob = write_edj(entries, compressed=("edje/edje_file",))
    assert set(read_edj(blob)) == set(entries) - {"edje/edje_file"}
    assert set(jpegs(blob)) == {"edje/images/0", "edje/images/1"}
    assert largest_jpeg(blob) == ("edje/images/0", entries["edje/images/0"])


def test_edj_reports_files_it_cannot_read() -> None:
    with pytest.raises(EdjError, match="not an Eet file"):
        read_edj(b"\x89PNG\r\n\x1a\n" + bytes(16))
    with pytest.raises(EdjError, match="past the end"):
        read_edj(write_edj({"edje/images/0": b"x" * 100})[:-10])
    with pytest.raises(EdjError, match="no JPEG"):
        largest_jpeg(write_edj({"edje/edje_file": b"theme"}))


# ------------------------------------------------------------------------------------------------ manifest


def test_committed_manifest_is_a_clean_allow_list() -> None:
    entries = photos.load_manifest()  # also checks fields, sha256 format, duplicates and NC licences
    assert len(entries) >= 480
    photos.check_balance(entries, max_share=0.6)  # no source above 60 %
    assert max(Counter(e.source for e in entries).values()) / len(entries) <= 0.6
    assert len({e.sha256 for e in entries}) == len(entries)
    assert len({(e.source, e.path) for e in entries}) == len(entries)
    assert all(e.licence.strip() and e.credit.strip() and e.category for e in entries)
    assert not any(photos.is_non_commercial(e.licence) for e in entries)
    assert {e.source for e in entries} <= set(DEB_SOURCES + WHEEL_SOURCES)
    assert len({e.source for e in entries}) >= 15
    assert len({e.category for e in entries}) >= 10
    # containers are named container:member; .edj wallpapers keep one (the largest) image per file
    edj = [e.path for e in entries if e.path.partition(":")[0].endswith(".edj")]
    assert edj and len({p.partition(":")[0] for p in edj}) == len(edj)
    # drawings and paintings stay out of the GCompris part
    gcompris = [e.path for e in entries if e.source == "gcompris-qt-data"]
    assert not any("paintings.rcc" in p or p.endswith((".svg", ".svgz")) or "Gogh" in p for p in gcompris)
    assert all(p.count(":") == 1 for p in gcompris)


@pytest.mark.parametrize(
    ("licence", "extra", "problem"),
    [
        ("CC-BY-NC-SA-1.0", {}, "non-commercial"),
        ("", {}, "needs source"),
        ("CC0-1.0", {"category": "Big Cats"}, "one lowercase word"),
        ("CC0-1.0", {"colour": "red"}, "not a manifest entry"),
    ],
)
def test_manifest_rejects_bad_entries(tmp_path: Path, licence: str, extra: dict, problem: str) -> None:
    line = manifest_line("mate-backgrounds", "a.jpg", b"x", licence=licence, **extra)
    path = write_manifest(tmp_path / "m.jsonl", [line])
    with pytest.raises(photos.CorpusError, match=problem):
        photos.load_manifest(path)


def test_manifest_category_is_optional_for_older_manifests(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path / "m.jsonl",
        [manifest_line("scratch", "a.jpg", b"a"), manifest_line("scratch", "b.jpg", b"b", category="landscape")],
    )
    assert [e.category for e in photos.load_manifest(path)] == ["", "landscape"]


def entries_from(sources: list[str]) -> list[photos.Entry]:
    return [photos.Entry(s, f"{i}.jpg", f"{i:064x}", "CC0-1.0", "me", "animal") for i, s in enumerate(sources)]


def test_check_balance_refuses_a_source_above_the_share() -> None:
    photos.check_balance(entries_from(["a"] * 6 + ["b"] * 4))  # exactly 60 % is allowed
    photos.check_balance(entries_from(["a"] * 3 + ["b"]), max_share=0.75)
    with pytest.raises(photos.CorpusError, match=r"a supplies 7 of 10 photos \(70%\), more than the 60%"):
        photos.check_balance(entries_from(["a"] * 7 + ["b"] * 3))
    with pytest.raises(photos.CorpusError, match="no photos"):
        photos.check_balance([])


def test_cli_build_refuses_an_unbalanced_committed_manifest(tmp_path: Path, monkeypatch, capsys) -> None:
    lines = [manifest_line("gcompris-qt-data", f"{i}.jpg", bytes([i])) for i in range(7)]
    lines += [manifest_line("scratch", f"s{i}.jpg", bytes([100 + i])) for i in range(3)]
    manifest = write_manifest(tmp_path / "photos_manifest.jsonl", lines)
    monkeypatch.setattr(photos, "MANIFEST", manifest)
    out = tmp_path / "out"
    assert photos.main(["build", "--out", str(out), "--manifest", str(manifest), "--offline"]) == 2
    assert "gcompris-qt-data supplies 7 of 10 photos (70%)" in capsys.readouterr().err
    assert not out.exists()  # refused before anything was fetched or written


def test_manifest_rejects_duplicate_images(tmp_path: Path) -> None:
    line = manifest_line("mate-backgrounds", "a.jpg", b"same bytes")
    path = write_manifest(tmp_path / "m.jsonl", [line, {**line, "path": "b.jpg"}])
    with pytest.raises(photos.CorpusError, match="repeats sha256"):
        photos.load_manifest(path)


def test_non_commercial_detection() -> None:
    assert photos.is_non_commercial("CC-BY-NC-4.0")
    assert photos.is_non_commercial("cc by-nc-sa 2.0")
    assert not photos.is_non_commercial("CC-BY-SA-4.0")
    assert not photos.is_non_commercial("GPL-2.0-or-later")


# ---------------------------------------------------------------------------------- build from a fake cache


@pytest.fixture(scope="module")
def package_cache(tmp_path_factory) -> tuple[Path, list[dict], dict[str, bytes]]:
    """A package cache holding two .debs and a wheel, and manifest lines for 11 photos inside them."""
    cache = tmp_path_factory.mktemp("cache")
    pictures = {f"p{i}": photo(i) for i in range(8)}
    big = photo(50, (1600, 1000))
    webps = {f"img/{k}.webp": encoded(v, "WEBP", quality=90) for k, v in list(pictures.items())[:4]}
    # the same picture shipped twice at two sizes: must never straddle train and validation
    webps["img/p0_small.webp"] = encoded(pictures["p0"].resize((160, 120)), "WEBP", quality=90)
    webps["img/gray.webp"] = encoded(photo(60, gray=True), "WEBP")
    rcc = write_rcc({f"gcompris/src/{k}": v for k, v in webps.items()})
    pzl = make_puzzle(pictures["p4"], (0, 0))
    wallpaper = {  # an Enlightenment wallpaper: the same photo at two sizes, plus theme data
        "edje/images/0": encoded(pictures["p7"], "JPEG", quality=90),
        "edje/images/1": encoded(pictures["p7"].resize((160, 120)), "JPEG", quality=90),
        "edje/edje_file": b"theme",
    }
    edj = write_edj(wallpaper, compressed=("edje/edje_file",))
    originals = {
        **{f"usr/share/g/x.rcc:gcompris/src/{k}": v for k, v in webps.items()},
        "usr/share/jigzo/horse.pzl:ABC123.jpg": read_pzl(pzl).members["ABC123.jpg"],
        "usr/share/backgrounds/big.png": encoded(big, "PNG"),
        "usr/share/backgrounds/small.jpg": encoded(pictures["p5"], "JPEG", quality=90),
        "usr/share/backgrounds/Wall.edj:edje/images/0": wallpaper["edje/images/0"],
        "skimage/data/p6.png": encoded(pictures["p6"], "PNG"),
    }
    write_deb(
        cache / "gcompris-qt-data_3.1-2_all.deb",
        {"usr/share/g/x.rcc": rcc, "usr/share/jigzo/horse.pzl": pzl},
    )
    write_deb(
        cache / "mate-backgrounds_1.26.0-1_all.deb",
        {"usr/share/backgrounds/big.png": originals["usr/share/backgrounds/big.png"],
         "usr/share/backgrounds/small.jpg": originals["usr/share/backgrounds/small.jpg"],
         "usr/share/backgrounds/Wall.edj": edj},
    )  # fmt: skip
    with zipfile.ZipFile(cache / "scikit_image-0.26.0-cp311-cp311-linux_x86_64.whl", "w") as zf:
        zf.writestr("skimage/data/p6.png", originals["skimage/data/p6.png"])

    def source(path: str) -> str:
        if path.startswith("usr/share/backgrounds/"):
            return "mate-backgrounds"
        return "gcompris-qt-data" if path.startswith("usr/") else "scikit-image"

    lines = [manifest_line(source(p), p, data, credit=f"credit for {p}") for p, data in originals.items()]
    lines[0]["category"] = "animal"  # the others are uncategorised, as in manifests older than categories
    return cache, lines, originals


@pytest.fixture
def fake_packages(package_cache, tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """A private copy of the fake cache (tests may delete packages) and a manifest file."""
    cache, lines, originals = package_cache
    private = tmp_path / "cache"
    shutil.copytree(cache, private)
    return private, write_manifest(tmp_path / "manifest.jsonl", lines), originals


def build(out: Path, cache: Path, manifest: Path, **kwargs) -> list[str]:
    return photos.build(out, manifest=manifest, cache=PackageCache(cache, offline=True), log=lambda _: None, **kwargs)


def read_rows(out: Path) -> dict[str, dict]:
    return {
        row["original_path"]: {**row, "split": split}
        for split in photos.SPLITS
        for row in map(json.loads, (out / split / "metadata.jsonl").read_text().splitlines())
    }


def test_build_writes_an_imagefolder_with_licensed_metadata(tmp_path: Path, fake_packages) -> None:
    cache, manifest, originals = fake_packages
    out = tmp_path / "corpus"
    problems = build(out, cache, manifest, val_fraction=0.3)

    assert problems == [
        "rejected gcompris-qt-data:usr/share/g/x.rcc:gcompris/src/img/gray.webp: it is black and white"
    ]
    rows = read_rows(out)
    assert len(rows) == len(originals) - 1
    for path, row in rows.items():
        assert row["sha256"] == hashlib.sha256(originals[path]).hexdigest()
        assert row["licence"] == "CC0-1.0" and row["credit"] == f"credit for {path}"
        stored = Image.open(out / row["split"] / row["file_name"])
        assert stored.format == "JPEG" and stored.mode == "RGB"
        assert stored.size == (row["stored_width"], row["stored_height"])
        assert max(stored.size) <= photos.MAX_SIDE
    big = rows["usr/share/backgrounds/big.png"]
    assert (big["width"], big["height"], big["stored_width"], big["stored_height"]) == (1600, 1000, 1024, 640)
    small = rows["usr/share/backgrounds/small.jpg"]
    assert (out / small["split"] / small["file_name"]).read_bytes() == originals["usr/share/backgrounds/small.jpg"]
    assert rows["usr/share/jigzo/horse.pzl:ABC123.jpg"]["width"] == 320  # the crop, not the 1024 atlas
    assert rows["usr/share/jigzo/horse.pzl:ABC123.jpg"]["file_name"].startswith("gcompris-qt-data_horse_")
    wall = rows["usr/share/backgrounds/Wall.edj:edje/images/0"]
    assert wall["file_name"].startswith("mate-backgrounds_wall_") and wall["width"] == 320  # the larger copy
    assert (out / wall["split"] / wall["file_name"]).read_bytes() == originals[wall["original_path"]]
    assert [r["category"] for r in rows.values()].count("animal") == 1
    assert {r["category"] for r in rows.values()} == {"animal", "uncategorised"}
    assert {r["package_version"] for r in rows.values()} == {"3.1-2", "1.26.0-1", "0.26.0"}
    duplicate_pair = [r["split"] for p, r in rows.items() if p.endswith(("img/p0.webp", "img/p0_small.webp"))]
    assert len(set(duplicate_pair)) == 1
    assert {r["split"] for r in rows.values()} == {"train", "validation"}

    import datasets

    loaded = datasets.load_dataset("imagefolder", data_dir=str(out))
    assert set(loaded) == {"train", "validation"}
    assert loaded["train"].num_rows + loaded["validation"].num_rows == len(rows)
    assert {"image", "licence", "credit", "category", "source", "package_version", "width", "height"} <= set(
        loaded["train"].column_names
    )
    card = (out / "README.md").read_text()
    assert all(r["credit"] in card and r["file_name"] in card and r["licence"] in card for r in rows.values())
    assert "Categories: animal (1), uncategorised (" in card


def test_split_is_deterministic_and_rebuild_is_idempotent(tmp_path: Path, fake_packages) -> None:
    cache, manifest, _ = fake_packages
    build(tmp_path / "a", cache, manifest, val_fraction=0.3)
    build(tmp_path / "b", cache, manifest, val_fraction=0.3)
    assert read_rows(tmp_path / "a") == read_rows(tmp_path / "b")

    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*.jpg")}
    logs: list[str] = []
    for package in cache.iterdir():  # a rebuild must not need the packages again
        package.unlink()
    photos.build(
        tmp_path / "a", manifest=manifest, cache=PackageCache(cache, offline=True), val_fraction=0.3, log=logs.append
    )
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*.jpg")} == stamps
    assert "0 written" in logs[0]

    # a corrected credit or category reaches the metadata without the package or a re-encode
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    lines[1] |= {"credit": "the right photographer", "category": "plant"}
    write_manifest(manifest, lines)
    logs.clear()
    photos.build(
        tmp_path / "a", manifest=manifest, cache=PackageCache(cache, offline=True), val_fraction=0.3, log=logs.append
    )
    assert "0 written" in logs[0]
    row = read_rows(tmp_path / "a")[lines[1]["path"]]
    assert (row["credit"], row["category"]) == ("the right photographer", "plant")


def test_missing_package_and_changed_file_are_reported_and_the_rest_builds(tmp_path: Path, fake_packages) -> None:
    cache, manifest, originals = fake_packages
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    changed = next(line for line in lines if line["path"].endswith("small.jpg"))
    changed["sha256"] = "0" * 64
    write_manifest(manifest, lines)
    (cache / "scikit_image-0.26.0-cp311-cp311-linux_x86_64.whl").unlink()

    problems = build(tmp_path / "out", cache, manifest)
    assert any(p.startswith("missing package scikit-image:") and "skipped 1 photos" in p for p in problems)
    assert any(p.startswith("changed file mate-backgrounds:usr/share/backgrounds/small.jpg") for p in problems)
    assert len(read_rows(tmp_path / "out")) == len(originals) - 3  # gray, changed and missing left out
    exit_code = photos.main(["build", "--out", str(tmp_path / "out"), "--cache_dir", str(cache), "--offline",
                             "--manifest", str(manifest)])  # fmt: skip
    assert exit_code == 1


def test_cli_list_and_argument_errors(tmp_path: Path, fake_packages, capsys) -> None:
    _, manifest, _ = fake_packages
    assert photos.main(["list", "--manifest", str(manifest)]) == 0
    listing = capsys.readouterr().out
    assert "CC0-1.0" in listing and "by category:" in listing and "uncategorised" in listing
    assert "11 photos in manifest.jsonl" in listing
    assert (
        photos.main(["build", "--out", str(tmp_path / "o"), "--val_fraction", "1.5", "--manifest", str(manifest)]) == 2
    )
    assert "--val_fraction must be in [0, 1)" in capsys.readouterr().err


def test_push_to_hub_uploads_the_folder_as_a_dataset(tmp_path: Path, fake_packages, capsys) -> None:
    cache, manifest, _ = fake_packages
    out = tmp_path / "corpus"
    args = ["build", "--out", str(out), "--cache_dir", str(cache), "--offline", "--manifest", str(manifest)]
    with mock.patch("huggingface_hub.HfApi") as api_class:
        api = api_class.return_value
        api.upload_folder.return_value = mock.Mock(commit_url="https://hf.co/datasets/me/photos/commit/1")
        assert photos.main([*args, "--push_to_hub", "me/photos"]) == 1  # the gray test photo is left out...
        assert "not pushed to me/photos: 1 photos were left out" in capsys.readouterr().out
        api.upload_folder.assert_not_called()  # ...so a partial corpus is not published
        lines = [line for line in manifest.read_text().splitlines() if "gray.webp" not in line]
        manifest.write_text("\n".join(lines) + "\n")
        assert photos.main([*args, "--push_to_hub", "me/photos"]) == 0
    assert "pushed: https://hf.co/datasets/me/photos/commit/1" in capsys.readouterr().out
    api.create_repo.assert_called_once_with("me/photos", repo_type="dataset", exist_ok=True)
    kwargs = api.upload_folder.call_args.kwargs
    assert kwargs["repo_id"] == "me/photos" and kwargs["repo_type"] == "dataset"
    assert Path(kwargs["folder_path"]) == out
    assert "READY" in kwargs["ignore_patterns"]


def test_push_to_hub_refuses_an_unbuilt_folder(tmp_path: Path) -> None:
    with pytest.raises(photos.CorpusError, match=r"run 'python -m corpus\.photos build"):
        photos.push_to_hub(tmp_path, "me/photos")


def test_near_duplicates_share_a_split_and_the_held_out_share_matches() -> None:
    rng = np.random.default_rng(0)
    rows = [{"sha256": f"{i:064x}", "dhash": f"{int(rng.integers(0, 2**63)):016x}"} for i in range(40)]
    rows.append({"sha256": "f" * 64, "dhash": f"{int(rows[0]['dhash'], 16) ^ 1:016x}"})  # row 0, resized: 1 bit off
    pair_held_out = 0
    for seed in range(30):
        splits = photos.assign_splits(rows, 0.1, seed)
        assert splits[rows[0]["sha256"]] == splits["f" * 64]
        assert 4 <= list(splits.values()).count("validation") <= 5  # 10% of 41, whole groups only
        pair_held_out += splits["f" * 64] == "validation"
    assert 0 < pair_held_out < 30  # the pair moves with the seed, so the check above is not vacuous
    assert photos.assign_splits(rows, 0.1, 7) == photos.assign_splits(list(reversed(rows)), 0.1, 7)


# ------------------------------------------------------------------------------------------ zstd packages


@pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd command to make a test package")
def test_deb_with_a_zstd_data_tarball_is_read(tmp_path: Path) -> None:
    jpeg = encoded(photo(9), "JPEG")
    edj = write_edj({"edje/images/0": jpeg})
    deb = tmp_path / "enlightenment-data_0.25.4-2_all.deb"
    write_deb(deb, {"usr/share/e/a.jpg": jpeg, "usr/share/e/W.edj": edj}, zstd=True)
    archive = DebArchive(deb)
    assert archive.read({"usr/share/e/a.jpg"}) == {"usr/share/e/a.jpg": jpeg}
    originals = read_originals(archive, ["usr/share/e/W.edj:edje/images/0", "usr/share/e/a.jpg"])
    assert {p: o.data for p, o in originals.items()} == {"usr/share/e/W.edj:edje/images/0": jpeg,
                                                          "usr/share/e/a.jpg": jpeg}  # fmt: skip
