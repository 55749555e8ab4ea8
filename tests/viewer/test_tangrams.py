"""The tangram library: import_tangrams, generated silhouettes, the image endpoint."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image, ImageDraw
from scipy import ndimage

from games.models import Tangram
from games.silhouettes import (
    TANS,
    convex_intersection_area,
    generate_layout,
    render_layout,
    silhouette_png,
)
from games.tangrams import generate_demo_tangrams
from tests.viewer.helpers import png_bytes, stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def tangram_dir(tmp_path):
    """Three PNGs (page1-1, page1-2, page-A), a stray text file, and a splits file beside."""
    directory = tmp_path / "kilogram" / "tangrams"
    directory.mkdir(parents=True)
    for shade, name in ((0, "page1-1"), (40, "page1-2"), (80, "page-A")):
        (directory / f"{name}.png").write_bytes(png_bytes(shade))
    (directory / "README.txt").write_text("not an image, ignored")
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"splits": {"dev": ["page-A"], "train": ["page1-1"]}}))
    return directory


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_tangrams", *args, stdout=out)
    return out.getvalue()


def rows() -> dict[str, tuple[str, str]]:
    return {t.name: (t.split, t.source) for t in Tangram.objects.all()}


def test_import_loads_images_with_splits_and_is_idempotent(tangram_dir, tmp_path, media_root):
    output = run(str(tangram_dir), "--splits", str(tmp_path / "splits.json"))
    assert "3 created, 0 updated, 0 unchanged" in output
    assert rows() == {
        "page-A": ("dev", "kilogram"),
        "page1-1": ("train", "kilogram"),
        "page1-2": ("", "kilogram"),
    }
    stored = Tangram.objects.get(name="page1-2")
    with stored.image.open("rb") as handle:
        assert handle.read() == (tangram_dir / "page1-2.png").read_bytes()
    files = stored_files(media_root)
    assert len(files) == 3 and all(f.startswith("tangrams/") for f in files)

    output = run(str(tangram_dir), "--splits", str(tmp_path / "splits.json"))
    assert "0 created, 0 updated, 3 unchanged" in output
    assert stored_files(media_root) == files


def test_changed_image_and_split_update_in_place(
    tangram_dir, tmp_path, media_root, django_capture_on_commit_callbacks
):
    run(str(tangram_dir), "--no-splits")
    before = Tangram.objects.get(name="page1-1").image.name
    (tangram_dir / "page1-1.png").write_bytes(png_bytes(200))
    with django_capture_on_commit_callbacks(execute=True):
        # The replaced file is deleted once the new rows are committed.
        output = run(str(tangram_dir), "--splits", str(tmp_path / "splits.json"))
    # page1-1 has a new image and a split, page-A only a split, page1-2 nothing new.
    assert "0 created, 2 updated, 1 unchanged" in output
    after = Tangram.objects.get(name="page1-1")
    assert after.image.name != before
    assert before not in stored_files(media_root)
    assert after.image.name in stored_files(media_root)
    assert len(stored_files(media_root)) == 3
    with after.image.open("rb") as handle:
        assert handle.read() == png_bytes(200)


def test_rows_deleted_but_files_kept_are_reused(tangram_dir, media_root):
    run(str(tangram_dir), "--no-splits")
    files = stored_files(media_root)
    Tangram.objects.all().delete()  # deleting rows leaves their files in storage
    assert "3 created" in run(str(tangram_dir), "--no-splits")
    assert "3 unchanged" in run(str(tangram_dir), "--no-splits")
    assert stored_files(media_root) == files
    assert sorted(t.image.name for t in Tangram.objects.all()) == files


def test_splits_file_beside_the_directory_is_found(tangram_dir, tmp_path):
    (tangram_dir.parent / "splits.json").write_text(json.dumps({"splits": {"test": ["page1-2"]}}))
    output = run(str(tangram_dir))
    assert f"with splits from {tangram_dir.parent / 'splits.json'}" in output
    assert rows()["page1-2"] == ("test", "kilogram")


def test_directory_defaults_to_setting(tangram_dir, settings):
    settings.TANGRAM_DIR = str(tangram_dir)
    run("--no-splits")
    assert Tangram.objects.count() == 3


def test_no_directory_and_no_setting_is_an_error():
    with pytest.raises(CommandError, match="TANGRAM_DIR"):
        run()


def test_missing_directory_is_an_error(tmp_path, media_root):
    with pytest.raises(CommandError, match=r"nowhere does not exist \(nothing was changed\)"):
        run(str(tmp_path / "nowhere"))
    assert Tangram.objects.count() == 0


def test_unreadable_image_changes_nothing(tangram_dir, media_root):
    (tangram_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but then garbage")
    with pytest.raises(CommandError, match=r"broken\.png is not a readable PNG"):
        run(str(tangram_dir), "--no-splits")
    assert Tangram.objects.count() == 0
    assert stored_files(media_root) == []


def test_a_jpeg_named_png_is_rejected(tangram_dir, media_root):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    (tangram_dir / "photo.png").write_bytes(buffer.getvalue())
    with pytest.raises(CommandError, match=r"photo\.png is a JPEG file, not a PNG"):
        run(str(tangram_dir), "--no-splits")
    assert Tangram.objects.count() == 0


def test_unknown_ids_in_splits_file_change_nothing(tangram_dir, tmp_path, media_root):
    splits = tmp_path / "bad-splits.json"
    splits.write_text(json.dumps({"splits": {"train": ["page1-1", "page9-99", "page0-0"]}}))
    with pytest.raises(CommandError, match=r"names 2 ids with no image in .*: page0-0, page9-99"):
        run(str(tangram_dir), "--splits", str(splits))
    assert Tangram.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not readable JSON"),
        (json.dumps({"train": []}), "expected an object with key 'splits'"),
        (json.dumps({"splits": {"validation": []}}), "unknown split 'validation'"),
        (json.dumps({"splits": {"dev": "page1-1"}}), "'splits.dev' must be a list of ids"),
        (
            json.dumps({"splits": {"dev": ["page1-1"], "test": ["page1-1"]}}),
            "page1-1 is in both dev and test",
        ),
    ],
)
def test_malformed_splits_files(tangram_dir, tmp_path, content, message):
    splits = tmp_path / "splits-case.json"
    splits.write_text(content)
    with pytest.raises(CommandError, match=message):
        run(str(tangram_dir), "--splits", str(splits))
    assert Tangram.objects.count() == 0


# --- generated silhouettes --------------------------------------------------------------------


def dark_mask(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L")) < 128


def test_same_seed_gives_identical_png_bytes():
    assert silhouette_png(1234) == silhouette_png(1234)


def test_different_seeds_give_different_figures():
    masks = {dark_mask(silhouette_png(seed)).tobytes() for seed in range(20)}
    assert len(masks) == 20


@pytest.mark.parametrize("seed", range(12))
def test_silhouette_is_one_dark_region_of_reasonable_area(seed):
    png = silhouette_png(seed)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (224, 224)
    mask = dark_mask(png)
    _, regions = ndimage.label(mask)  # 4-connectivity: touching corners do not count
    assert regions == 1
    assert 0.08 < mask.mean() < 0.75
    # A white frame all round: the figure is centred and never cut off.
    assert not mask[:4].any() and not mask[-4:].any()
    assert not mask[:, :4].any() and not mask[:, -4:].any()


def shoelace(points) -> float:
    xs, ys = np.array(points).T
    return 0.5 * abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1)))


@pytest.mark.parametrize("seed", [0, 7, 99])
def test_layout_is_the_seven_tans_without_overlap(seed):
    pieces = generate_layout(seed).pieces
    areas = sorted(round(shoelace(p), 6) for p in pieces)
    assert areas == [0.5, 0.5, 1.0, 1.0, 1.0, 2.0, 2.0]
    # Drawn together at a fine scale, the union covers the summed area: nothing overlaps.
    scale, size = 100, 1400
    xs = [x for p in pieces for x, _ in p]
    ys = [y for p in pieces for _, y in p]
    image = Image.new("1", (size, size), 0)
    draw = ImageDraw.Draw(image)
    for piece in pieces:
        draw.polygon(
            [((x - min(xs)) * scale + 10, (y - min(ys)) * scale + 10) for x, y in piece], fill=1
        )
    covered = np.asarray(image).sum() / scale**2
    assert covered == pytest.approx(8.0, rel=0.02)


def test_convex_intersection_area():
    square = TANS["square"]
    shifted = tuple((x + 0.5, y) for x, y in square)
    assert convex_intersection_area(square, shifted) == pytest.approx(0.5)
    apart = tuple((x + 1, y) for x, y in square)  # shares an edge only
    assert convex_intersection_area(square, apart) == pytest.approx(0.0)
    assert convex_intersection_area(TANS["small"], square) == pytest.approx(0.5)


def test_render_is_deterministic_for_a_layout():
    layout = generate_layout(5)
    assert render_layout(layout) == render_layout(layout)


def test_generate_demo_tangrams_rows_and_idempotence(media_root):
    result = generate_demo_tangrams(count=20, seed=3)
    assert len(result.created) == 20
    tangrams = list(Tangram.objects.order_by("name"))
    assert [t.name for t in tangrams][:3] == ["demo-001", "demo-002", "demo-003"]
    assert {t.source for t in tangrams} == {"generated"}
    splits = [t.split for t in tangrams]
    assert splits.count("dev") == 2 and splits.count("train") == 10 and splits.count("test") == 8
    files = stored_files(media_root)
    again = generate_demo_tangrams(count=20, seed=3)
    assert len(again.unchanged) == 20 and stored_files(media_root) == files


# --- the image endpoint -----------------------------------------------------------------------


def test_image_endpoint_serves_stored_bytes_with_cache_headers(client, tangram_dir):
    run(str(tangram_dir), "--no-splits")
    response = client.get("/tangrams/page1-2.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == (tangram_dir / "page1-2.png").read_bytes()
    assert response["Cache-Control"] == "public, max-age=86400"
    again = client.get("/tangrams/page1-2.png", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def test_image_endpoint_404s(client):
    Tangram.objects.create(name="page5-5")  # a row without an image
    assert client.get("/tangrams/page5-5.png").status_code == 404
    assert client.get("/tangrams/page0-404.png").status_code == 404
